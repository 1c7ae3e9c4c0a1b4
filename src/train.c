/* The training loop: learn w by minimizing sum_i L_i(x*_i(w)).
 *
 * A step takes the next mini-batch of the (per-epoch shuffled) examples and,
 * for each one, in parallel over the trainer's worker threads with one
 * solver per thread:
 *   x*_i = argmin_x E_i(x; w)      warm-started from the example's last x*
 *   g_i  = dL_i/dw = -B_i^T v,     (H_i + lambda I) v = dL_i/dx (x*_i)
 * (or central differences of L_i in w: 2p more solves). Per-example results
 * land in fixed slots and are summed in batch order, so the run is
 * bit-identical whatever the thread count. Examples whose solve, loss or
 * derivative fails are skipped and counted, never averaged in. The mean
 * gradient feeds SGD / momentum / Adam; w is projected onto [lower, upper].
 * All memory is sized (and every thread started) at create: a step
 * allocates nothing.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#endif
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wb_train.h"

void wbi_tmsg(wb_trainer *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->msg, sizeof t->msg, fmt, ap);
    va_end(ap);
}

const char *wb_trainer_message(const wb_trainer *t) {
    return t ? t->msg : "no trainer";
}

/* Every public call on t runs between enter and leave. The trainer was
   allocated writable by wb_trainer_create, so the const calls may flip the
   flag through a cast. */
int wbi_trainer_enter(const wb_trainer *tc, const char *fn) {
    if (wbi_guard_take(&((wb_trainer *)tc)->busy)) return 1;
    wbi_busy(fn, "trainer");
    return 0;
}

void wbi_trainer_leave(const wb_trainer *tc) {
    wbi_guard_drop(&((wb_trainer *)tc)->busy);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* splitmix64: the trainer's only random source (shuffling). */
static uint64_t rng_next(uint64_t *st) {
    uint64_t z = (*st += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* ---- the worker threads ----------------------------------------------------
 *
 * nthreads - 1 POSIX threads, started at create and stopped at destroy; the
 * calling thread is worker 0. Between jobs, and while a job's last items
 * run elsewhere, a worker sleeps on a condition variable: an idle worker
 * takes no CPU from the ones that work, or from other processes. (OpenMP's
 * libgomp spins instead, by default up to 300000 polls per wait, and a
 * library cannot change that once libgomp runs: on a loaded 2-core machine
 * the trainer with 2 threads ran 2.3x slower than with 1.)
 *
 * A job is items 0 .. count-1, fn(t, job, tid, k) for each. Every worker
 * takes the next item from one atomic counter (dynamic scheduling, one item
 * at a time), so a worker the OS preempts holds up at most the item it has.
 * Each item writes its own result slot: which thread runs an item never
 * changes a result. The job and its results pass between threads under the
 * mutex (the counter itself needs no ordering).
 */
typedef void (*pool_fn)(wb_trainer *t, void *job, int tid, int k);

typedef struct pool_worker {
    struct wbi_pool *pool;
    int tid;               /* 1 .. nworkers                             */
    pthread_t th;
} pool_worker;

struct wbi_pool {
    pthread_mutex_t mu;
    pthread_cond_t wake;   /* workers: a new job (gen changed) or quit   */
    pthread_cond_t idle;   /* the caller: busy fell to 0                 */
    int sync_ok;           /* mu, wake, idle initialized                 */
    unsigned long gen;     /* jobs posted so far                         */
    int quit;
    int busy;              /* workers still inside the current job       */
    int started;           /* threads running (joined at stop)           */
    int nworkers;
    wb_trainer *t;
    pool_fn fn;            /* the current job                            */
    void *job;
    int count;
    atomic_int next;       /* its next item                              */
    pid_t pid;             /* the process that started the threads       */
    pool_worker *w;        /* [nworkers]                                 */
};

static void pool_items(struct wbi_pool *P, pool_fn fn, void *job, int count,
                       int tid) {
    int k;
    while ((k = atomic_fetch_add_explicit(&P->next, 1, memory_order_relaxed)) <
           count)
        fn(P->t, job, tid, k);
}

static void *pool_main(void *arg) {
    pool_worker *me = arg;
    struct wbi_pool *P = me->pool;
    unsigned long seen = 0;
    pthread_mutex_lock(&P->mu);
    for (;;) {
        while (P->gen == seen && !P->quit) pthread_cond_wait(&P->wake, &P->mu);
        if (P->quit) break;
        seen = P->gen;
        pool_fn fn = P->fn;
        void *job = P->job;
        int count = P->count;
        pthread_mutex_unlock(&P->mu);
        pool_items(P, fn, job, count, me->tid);
        pthread_mutex_lock(&P->mu);
        if (--P->busy == 0) pthread_cond_signal(&P->idle);
    }
    pthread_mutex_unlock(&P->mu);
    return NULL;
}

/* Runs items 0 .. count-1 of the job on all workers, the caller included,
   and returns when every one is done. Serially on the caller when there is
   no pool, one item, or in a child of fork (which has no workers). */
static void pool_run(wb_trainer *t, pool_fn fn, void *job, int count) {
    struct wbi_pool *P = t->pool;
    if (!P || count < 2 || P->pid != getpid()) {
        for (int k = 0; k < count; k++) fn(t, job, 0, k);
        return;
    }
    pthread_mutex_lock(&P->mu);
    P->fn = fn;
    P->job = job;
    P->count = count;
    atomic_store_explicit(&P->next, 0, memory_order_relaxed);
    P->busy = P->nworkers;
    P->gen++;
    pthread_cond_broadcast(&P->wake);
    pthread_mutex_unlock(&P->mu);
    pool_items(P, fn, job, count, 0);
    pthread_mutex_lock(&P->mu);
    while (P->busy > 0) pthread_cond_wait(&P->idle, &P->mu);
    pthread_mutex_unlock(&P->mu);
}

/* Stops and joins the threads, frees the pool (any state of a failed
   start; NULL-safe). In a child of fork the threads do not exist and the
   condition variables may still list the parent's waiters: only the
   memory is freed there. */
static void pool_stop(const wb_settings *a, struct wbi_pool *P) {
    if (!P) return;
    if (P->sync_ok && P->pid == getpid()) {
        pthread_mutex_lock(&P->mu);
        P->quit = 1;
        pthread_cond_broadcast(&P->wake);
        pthread_mutex_unlock(&P->mu);
        for (int k = 0; k < P->started; k++) pthread_join(P->w[k].th, NULL);
        pthread_cond_destroy(&P->idle);
        pthread_cond_destroy(&P->wake);
        pthread_mutex_destroy(&P->mu);
    }
    wbi_free(a, P->w);
    wbi_free(a, P);
}

/* Starts nworkers threads into t->pool. WB_ENOMEM with the reason in msg
   when memory or a thread could not be had. The workers block every
   signal: a process's signals go to the program's own threads. */
static wb_status pool_start(wb_trainer *t, int nworkers, char *msg,
                            size_t len) {
    const wb_settings *a = &t->s.solver;
    struct wbi_pool *P = wbi_alloc(a, 1, sizeof *P);
    if (!P) {
        snprintf(msg, len, "out of memory");
        return WB_ENOMEM;
    }
    memset(P, 0, sizeof *P);
    t->pool = P;
    P->t = t;
    P->nworkers = nworkers;
    P->pid = getpid();
    atomic_init(&P->next, 0);
    P->w = wbi_alloc(a, (size_t)nworkers, sizeof *P->w);
    if (!P->w) {
        snprintf(msg, len, "out of memory");
        return WB_ENOMEM;
    }
    int r = pthread_mutex_init(&P->mu, NULL);
    if (r == 0) {
        r = pthread_cond_init(&P->wake, NULL);
        if (r == 0) {
            r = pthread_cond_init(&P->idle, NULL);
            if (r != 0) pthread_cond_destroy(&P->wake);
        }
        if (r != 0) pthread_mutex_destroy(&P->mu);
    }
    if (r != 0) {
        snprintf(msg, len, "could not make the workers' mutex or condition "
                 "variables: %s", strerror(r));
        return WB_ENOMEM;
    }
    P->sync_ok = 1;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (int k = 0; k < nworkers && r == 0; k++) {
        P->w[k].pool = P;
        P->w[k].tid = k + 1;
        r = pthread_create(&P->w[k].th, NULL, pool_main, &P->w[k]);
        if (r == 0) P->started++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        snprintf(msg, len, "could not start worker thread %d of %d (%s): "
                 "lower settings.threads", P->started + 2, nworkers + 1,
                 strerror(r));
        return WB_ENOMEM;
    }
    return WB_OK;
}

/* settings.threads = 0: OMP_NUM_THREADS when it starts with a positive
   integer (programs that limit their threads there keep doing so), else the
   CPUs this process may run on (its affinity mask: taskset, cgroup cpusets),
   else the CPUs online. */
static int default_threads(void) {
    const char *env = getenv("OMP_NUM_THREADS");
    if (env) {
        char *end;
        errno = 0;
        long v = strtol(env, &end, 10);
        if (end != env && errno == 0 && v > 0 && v <= 4096 &&
            (*end == '\0' || *end == ','))
            return (int)v;
    }
#if defined(__linux__) && defined(CPU_COUNT)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int c = CPU_COUNT(&set);
        if (c > 0) return c;
    }
#endif
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c > 0 ? (c < 4096 ? (int)c : 4096) : 1;
}

void wb_train_settings_default(wb_train_settings *s) {
    if (!s) return;
    memset(s, 0, sizeof *s);
    wb_settings_default(&s->solver);
    s->solver.lambda = 1e-3;
    s->optimizer = WB_OPT_ADAM;
    s->lr = 1e-2;
    s->momentum = 0.9;
    s->beta1 = 0.9;
    s->beta2 = 0.999;
    s->eps = 1e-8;
    s->schedule = WB_LR_CONSTANT;
    s->lr_step_every = 100;
    s->lr_decay = 0.5;
    s->lr_min = 0.0;
    s->batch_size = 8;
    s->epochs = 10;
    s->seed = 1;
    s->shuffle = 1;
    s->lower = NULL;
    s->upper = NULL;
    s->threads = 0;
    s->warm_start = 1;
    s->backward = WB_BACKWARD_IMPLICIT;
    s->fd_step = 1e-5;
    s->validation = NULL;
    s->validate_every = 0;
    s->checkpoint_path = NULL;
    s->checkpoint_every = 0;
    s->verbose = 0;
}

#define BAD(...) do { snprintf(msg, len, __VA_ARGS__); return WB_EINVAL; } while (0)

static wb_status check_settings(const wb_train_settings *s, int p, char *msg,
                                size_t len) {
    wb_status st = wbi_settings_check(&s->solver, msg, len);
    if (st != WB_OK) return st;
    if (!(s->lr > 0) || !isfinite(s->lr)) BAD("lr = %g must be finite and > 0", s->lr);
    if (!(s->momentum >= 0 && s->momentum < 1)) BAD("momentum = %g must be in [0, 1)", s->momentum);
    if (!(s->beta1 >= 0 && s->beta1 < 1)) BAD("beta1 = %g must be in [0, 1)", s->beta1);
    if (!(s->beta2 >= 0 && s->beta2 < 1)) BAD("beta2 = %g must be in [0, 1)", s->beta2);
    if (!(s->eps > 0) || !isfinite(s->eps)) BAD("eps = %g must be finite and > 0", s->eps);
    if (s->optimizer < WB_OPT_SGD || s->optimizer > WB_OPT_ADAM)
        BAD("optimizer = %d is not a wb_optimizer", (int)s->optimizer);
    if (s->schedule < WB_LR_CONSTANT || s->schedule > WB_LR_COSINE)
        BAD("schedule = %d is not a wb_lr_schedule", (int)s->schedule);
    if (s->lr_step_every < 1) BAD("lr_step_every = %d must be >= 1", s->lr_step_every);
    if (!(s->lr_decay > 0 && s->lr_decay <= 1)) BAD("lr_decay = %g must be in (0, 1]", s->lr_decay);
    if (!(s->lr_min >= 0 && s->lr_min <= s->lr)) BAD("lr_min = %g must be in [0, lr]", s->lr_min);
    if (s->batch_size < 1) BAD("batch_size = %d must be >= 1", s->batch_size);
    if (s->epochs < 1) BAD("epochs = %d must be >= 1", s->epochs);
    if (s->shuffle != 0 && s->shuffle != 1) BAD("shuffle = %d must be 0 or 1", s->shuffle);
    if (s->threads < 0) BAD("threads = %d must be >= 0", s->threads);
    if (s->warm_start != 0 && s->warm_start != 1) BAD("warm_start = %d must be 0 or 1", s->warm_start);
    if (s->backward != WB_BACKWARD_IMPLICIT && s->backward != WB_BACKWARD_FINITE_DIFF)
        BAD("backward = %d is not a wb_backward", (int)s->backward);
    if (!(s->fd_step > 0 && s->fd_step < 1)) BAD("fd_step = %g must be in (0, 1)", s->fd_step);
    if (s->validate_every < 0) BAD("validate_every = %d must be >= 0", s->validate_every);
    if (s->checkpoint_every < 0) BAD("checkpoint_every = %d must be >= 0", s->checkpoint_every);
    for (int j = 0; j < p; j++) {
        double lo = s->lower ? s->lower[j] : -INFINITY;
        double hi = s->upper ? s->upper[j] : INFINITY;
        if (isnan(lo) || isnan(hi) || lo > hi || lo == INFINITY || hi == -INFINITY)
            BAD("bounds of w[%d] = [%g, %g] are not an interval", j, lo, hi);
    }
    return WB_OK;
}

static wb_status check_dataset(const wb_dataset *d, const char *what, char *msg,
                               size_t len) {
    if (d->count < 1) BAD("%s: count = %d must be >= 1", what, d->count);
    if (!d->energy || !d->start || !d->loss)
        BAD("%s: the energy, start and loss callbacks are required", what);
    return WB_OK;
}

void wb_trainer_destroy(wb_trainer *t) {
    if (!t) return;
    const wb_settings *a = &t->s.solver;
    pool_stop(a, t->pool); /* first: no worker runs while the rest goes */
#ifdef WIBERG_MPI
    wbi_mpi_free(t);
#endif
    if (t->solvers)
        for (int k = 0; k < t->nthreads; k++) wb_solver_destroy(t->solvers[k]);
    double **per[] = {t->xw, t->xw2, t->dlx, t->wtmp};
    for (size_t q = 0; q < 4; q++) {
        if (!per[q]) continue;
        for (int k = 0; k < t->nthreads; k++) wbi_free(a, per[q][k]);
        wbi_free(a, per[q]);
    }
    void *bufs[] = {t->n_of, t->off,    t->xs,   t->has_x, t->w,    t->m,
                    t->r,    t->best_w, t->g,    t->lower, t->upper, t->gbuf,
                    t->lbuf, t->okbuf,  t->vloss, t->perm, t->solvers, t->w1, t->m1,
                    t->r1, t->perm0, t->weval,
                    t->solves, t->ckpt_path};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) wbi_free(a, bufs[i]);
    wb_settings copy = *a;
    wbi_free(&copy, t);
}

static void *zal(const wb_settings *a, size_t count, size_t size, int *ok) {
    void *p = wbi_alloc(a, count, size);
    if (!p) *ok = 0;
    else memset(p, 0, (count ? count : 1) * size);
    return p;
}

/* The examples of data set d (what = its name in messages) against the p of
   example 0 of the training set; *n_max / *e_max = the largest n and its
   example (the running maxima: the caller initializes them). */
static wb_status check_examples(const wb_dataset *d, const char *what, int p,
                                int *n_max, wb_energy *e_max, char *msg,
                                size_t len) {
    for (int i = 0; i < d->count; i++) {
        wb_energy e;
        memset(&e, 0, sizeof e);
        int r = d->energy(d->user, i, &e);
        if (r != 0) {
            snprintf(msg, len, "%s: the energy callback returned %d for "
                     "example %d", what, r, i);
            return WB_ECALLBACK;
        }
        char m[WBI_MSG_LEN];
        if (wbi_energy_check(&e, m, sizeof m) != WB_OK)
            BAD("%s: example %d: %.160s", what, i, m);
        if (e.p != p)
            BAD("%s: example %d has p = %d, the training set's example 0 "
                "has p = %d (p must be the same for all)", what, i, e.p, p);
        if (e.n > *n_max) {
            *n_max = e.n;
            *e_max = e;
        }
    }
    return WB_OK;
}

/* Everything wb_trainer_create checks before it allocates: the arguments,
   the data sets, every example's energy, the settings, w0, and the inner
   solver for the largest example. */
static wb_status create_check(const wb_dataset *d, const double *w0,
                              const wb_train_settings *s, char *msg,
                              size_t len) {
    if (!d) BAD("the data set is NULL");
    if (!w0) BAD("w0 is NULL");
    wb_status st = check_dataset(d, "data set", msg, len);
    if (st == WB_OK && s->validation)
        st = check_dataset(s->validation, "validation set", msg, len);
    if (st != WB_OK) return st;
    wb_energy e0;
    memset(&e0, 0, sizeof e0);
    int r = d->energy(d->user, 0, &e0);
    if (r != 0) {
        snprintf(msg, len, "data set: the energy callback returned %d for "
                 "example 0", r);
        return WB_ECALLBACK;
    }
    int p = e0.p, n_max = 0;
    char m[WBI_MSG_LEN];
    if (wbi_energy_check(&e0, m, sizeof m) != WB_OK)
        BAD("data set: example 0: %.160s", m);
    if (check_settings(s, p, msg, len) != WB_OK) return WB_EINVAL;
    for (int j = 0; j < p; j++) {
        if (!isfinite(w0[j])) BAD("w0[%d] = %g must be finite", j, w0[j]);
        if ((s->lower && w0[j] < s->lower[j]) || (s->upper && w0[j] > s->upper[j]))
            BAD("w0[%d] = %g is outside its bounds [%g, %g]", j, w0[j],
                s->lower ? s->lower[j] : -INFINITY, s->upper ? s->upper[j] : INFINITY);
    }
    wb_energy emax = e0;
    st = check_examples(d, "data set", p, &n_max, &emax, msg, len);
    if (st == WB_OK && s->validation)
        st = check_examples(s->validation, "validation set", p, &n_max, &emax,
                            msg, len);
    if (st != WB_OK) return st;
    if (wb_solver_explain(&emax, &s->solver, m, sizeof m) != WB_OK)
        BAD("inner solver (for the largest example, n = %d): %.160s", emax.n, m);
    return WB_OK;
}

wb_status wb_trainer_explain(const wb_dataset *d, const double *w0,
                             const wb_train_settings *s_in, char *buf,
                             size_t len) {
    char msg[WBI_MSG_LEN];
    wb_train_settings s;
    if (s_in) s = *s_in;
    else wb_train_settings_default(&s);
    wb_status st = create_check(d, w0, &s, msg, sizeof msg);
    if (st == WB_OK) snprintf(msg, sizeof msg, "ok: wb_trainer_create accepts "
                              "these (allocation may still fail)");
    if (buf && len > 0) snprintf(buf, len, "%s", msg);
    if (st != WB_OK) wbi_fail(st, "wb_trainer_explain: %.200s", msg);
    return st;
}

/* a failure of wb_trainer_create after its checks passed: an allocation,
   an inner solver, or a callback whose answer changed between calls */
static wb_status create_fail(wb_trainer *t, wb_status st) {
    wb_trainer_destroy(t);
    return wbi_fail(st, "wb_trainer_create: %s", st == WB_ENOMEM
                    ? "out of memory"
                    : "an energy callback failed or changed its answer "
                      "between calls");
}

/* wb_trainer_create into *out, a local of the caller's wrapper: nothing is
   written where the caller's arguments may lie until everything is read. */
static wb_status create(wb_trainer **out, const wb_dataset *d,
                        const double *w0, const wb_train_settings *s_in) {
    char msg[WBI_MSG_LEN];
    *out = NULL;
    wb_train_settings s;
    if (s_in) s = *s_in;
    else wb_train_settings_default(&s);
    wb_status st0 = create_check(d, w0, &s, msg, sizeof msg);
    if (st0 != WB_OK) return wbi_fail(st0, "wb_trainer_create: %.200s", msg);
    /* sizes from the energies (checked above; the callbacks are asked again
       and a changed answer is still refused) */
    wb_energy e;
    memset(&e, 0, sizeof e);
    if (d->energy(d->user, 0, &e) != 0)
        return wbi_fail(WB_ECALLBACK, "wb_trainer_create: the energy callback "
                        "failed for example 0 on its second call");
    int p = e.p;

    const wb_settings *a = &s.solver;
    wb_trainer *t = wbi_alloc(a, 1, sizeof *t);
    if (!t) return wbi_fail(WB_ENOMEM, "wb_trainer_create: out of memory");
    memset(t, 0, sizeof *t);
    t->s = s;
    t->d = *d;
    t->p = p;
    t->count = d->count;
    int ok = 1;
    t->n_of = zal(a, (size_t)t->count, sizeof(int), &ok);
    t->off = zal(a, (size_t)t->count, sizeof(size_t), &ok);
    if (!ok) return create_fail(t, WB_ENOMEM);
    wb_status st = WB_OK;
    int n_max = 0, e_max = 0;
    size_t total = 0;
    for (int i = 0; i < t->count && st == WB_OK; i++) {
        memset(&e, 0, sizeof e);
        if (d->energy(d->user, i, &e) != 0) st = WB_ECALLBACK;
        else if (wbi_energy_check(&e, msg, sizeof msg) != WB_OK || e.p != p) st = WB_EINVAL;
        else {
            t->n_of[i] = e.n;
            t->off[i] = total;
            total += (size_t)e.n;
            if (e.n > n_max) { n_max = e.n; e_max = i; }
        }
    }
    wb_energy emax;
    memset(&emax, 0, sizeof emax);
    if (st == WB_OK && d->energy(d->user, e_max, &emax) != 0) st = WB_ECALLBACK;
    if (st == WB_OK && s.validation) {
        const wb_dataset *v = s.validation;
        for (int i = 0; i < v->count && st == WB_OK; i++) {
            memset(&e, 0, sizeof e);
            if (v->energy(v->user, i, &e) != 0) st = WB_ECALLBACK;
            else if (wbi_energy_check(&e, msg, sizeof msg) != WB_OK || e.p != p) st = WB_EINVAL;
            else if (e.n > n_max) { n_max = e.n; emax = e; }
        }
        t->val = *v;
        t->has_val = 1;
        t->s.validation = &t->val;
    }
    if (st != WB_OK) return create_fail(t, st);
    t->n_max = n_max;
    t->total_n = total;
    t->batch = s.batch_size < t->count ? s.batch_size : t->count;
    t->steps_per_epoch = (t->count + t->batch - 1) / t->batch;
    t->total_steps = t->steps_per_epoch * (long long)s.epochs;
    t->nthreads = s.threads > 0 ? s.threads : default_threads();
    size_t P = (size_t)(p > 0 ? p : 1);
    t->xs = zal(a, total, sizeof(double), &ok);
    t->has_x = zal(a, (size_t)t->count, 1, &ok);
    t->w = zal(a, P, sizeof(double), &ok);
    t->m = zal(a, P, sizeof(double), &ok);
    t->r = zal(a, P, sizeof(double), &ok);
    t->w1 = zal(a, P, sizeof(double), &ok);
    t->m1 = zal(a, P, sizeof(double), &ok);
    t->r1 = zal(a, P, sizeof(double), &ok);
    t->weval = zal(a, P, sizeof(double), &ok);
    t->best_w = zal(a, P, sizeof(double), &ok);
    t->g = zal(a, P, sizeof(double), &ok);
    t->lower = zal(a, P, sizeof(double), &ok);
    t->upper = zal(a, P, sizeof(double), &ok);
    t->gbuf = zal(a, (size_t)t->batch * P, sizeof(double), &ok);
    t->lbuf = zal(a, (size_t)t->batch, sizeof(double), &ok);
    t->okbuf = zal(a, (size_t)t->batch, sizeof(int), &ok);
    t->vloss = zal(a, (size_t)(t->has_val ? t->val.count : 1), sizeof(double), &ok);
    t->perm = zal(a, (size_t)t->count, sizeof(int), &ok);
    t->perm0 = zal(a, (size_t)t->count, sizeof(int), &ok);
    t->solvers = zal(a, (size_t)t->nthreads, sizeof(wb_solver *), &ok);
    t->xw = zal(a, (size_t)t->nthreads, sizeof(double *), &ok);
    t->xw2 = zal(a, (size_t)t->nthreads, sizeof(double *), &ok);
    t->dlx = zal(a, (size_t)t->nthreads, sizeof(double *), &ok);
    t->wtmp = zal(a, (size_t)t->nthreads, sizeof(double *), &ok);
    t->solves = zal(a, (size_t)t->nthreads, sizeof(long long), &ok);
    if (s.checkpoint_path) {
        size_t L = strlen(s.checkpoint_path) + 1;
        t->ckpt_path = zal(a, L, 1, &ok);
        if (t->ckpt_path) memcpy(t->ckpt_path, s.checkpoint_path, L);
        t->s.checkpoint_path = t->ckpt_path;
    }
    if (!ok) return create_fail(t, WB_ENOMEM);
    for (int k = 0; k < t->nthreads; k++) {
        t->xw[k] = zal(a, (size_t)n_max, sizeof(double), &ok);
        t->xw2[k] = zal(a, (size_t)n_max, sizeof(double), &ok);
        t->dlx[k] = zal(a, (size_t)n_max, sizeof(double), &ok);
        t->wtmp[k] = zal(a, P, sizeof(double), &ok);
        if (!ok) return create_fail(t, WB_ENOMEM);
        st = wb_solver_create(&t->solvers[k], &emax, &s.solver);
        if (st != WB_OK) return create_fail(t, st);
    }
    if (t->nthreads > 1) {
        st = pool_start(t, t->nthreads - 1, msg, sizeof msg);
        if (st != WB_OK) {
            wb_trainer_destroy(t);
            return wbi_fail(st, "wb_trainer_create: %s", msg);
        }
    }
    for (int j = 0; j < p; j++) {
        t->lower[j] = s.lower ? s.lower[j] : -INFINITY;
        t->upper[j] = s.upper ? s.upper[j] : INFINITY;
    }
    t->s.lower = t->lower;
    t->s.upper = t->upper;
    memcpy(t->w, w0, (size_t)p * sizeof(double));
    memcpy(t->best_w, w0, (size_t)p * sizeof(double));
    for (int i = 0; i < t->count; i++) t->perm[i] = i;
    t->rng = (uint64_t)s.seed;
    t->info.total_steps = t->total_steps;
    t->info.val_loss = NAN;
    t->info.best_val_loss = NAN;
    t->info.best_step = -1;
    t->info.epoch_loss = NAN;
    t->info.loss = NAN;
    t->msg[0] = '\0';
    wbi_guard_init(&t->busy);
#ifdef WIBERG_MPI
    /* the process-wide communicator (wb_mpi_set_default_comm), if any */
    st = wbi_mpi_attach_default(t);
    if (st != WB_OK) {
        wbi_fail(st, "wb_trainer_create: %s", t->msg);
        wb_trainer_destroy(t);
        return st;
    }
#endif
    *out = t;
    return WB_OK;
}

wb_status wb_trainer_create(wb_trainer **out, const wb_dataset *d,
                            const double *w0, const wb_train_settings *s) {
    if (!out) return wbi_fail(WB_EINVAL, "%s: out is NULL", __func__);
    wb_trainer *t = NULL;
    wb_status st = create(&t, d, w0, s); /* reads d, w0, s; copies them */
    *out = t;                            /* then the one output         */
    return st;
}

/* ---- one example ------------------------------------------------------- */

/* Solves example i of d at w from x (in/out). 0 ok, else a status. */
static wb_status solve_example(wb_trainer *t, int tid, const wb_dataset *d,
                               int i, const double *w, double *x) {
    wb_energy e;
    memset(&e, 0, sizeof e);
    if (d->energy(d->user, i, &e) != 0) return WB_ECALLBACK;
    wb_solver *sv = t->solvers[tid];
    wb_status st = wb_solver_set_energy(sv, &e);
    if (st != WB_OK) return st;
    t->solves[tid]++;
    if (!t->tsec) return wb_solve(sv, w, x, NULL);
    double t0 = now_s();
    st = wb_solve(sv, w, x, NULL);
    t->tsec[2 * tid] += now_s() - t0;
    return st;
}

/* Loss and gradient of training example i at t->w into *l and g[p]. */
static int train_example(wb_trainer *t, int tid, int i, double *l, double *g) {
    const wb_dataset *d = &t->d;
    int n = t->n_of[i], p = t->p;
    double *x = t->xw[tid], *dl = t->dlx[tid];
    if (t->s.warm_start && t->has_x[i])
        memcpy(x, t->xs + t->off[i], (size_t)n * sizeof(double));
    else if (d->start(d->user, i, x) != 0)
        return 0;
    if (solve_example(t, tid, d, i, t->w, x) != WB_OK) return 0;
    if (d->loss(d->user, i, x, l, dl) != 0 || !isfinite(*l) ||
        !wbi_all_finite((size_t)n, dl))
        return 0;
    if (t->s.backward == WB_BACKWARD_IMPLICIT) {
        double t0 = t->tsec ? now_s() : 0.0;
        wb_status st = wb_implicit_vjp(t->solvers[tid], dl, g);
        if (t->tsec) t->tsec[2 * tid + 1] += now_s() - t0;
        if (st != WB_OK) return 0;
    } else {
        /* g_j = (L(x*(w + h e_j)) - L(x*(w - h e_j))) / 2h, from x* */
        double *wt = t->wtmp[tid], *x2 = t->xw2[tid];
        memcpy(wt, t->w, (size_t)p * sizeof(double));
        for (int j = 0; j < p; j++) {
            double h = t->s.fd_step * fmax(fabs(t->w[j]), 1.0), lp, lm;
            wt[j] = t->w[j] + h;
            memcpy(x2, x, (size_t)n * sizeof(double));
            if (solve_example(t, tid, d, i, wt, x2) != WB_OK ||
                d->loss(d->user, i, x2, &lp, NULL) != 0)
                return 0;
            wt[j] = t->w[j] - h;
            memcpy(x2, x, (size_t)n * sizeof(double));
            if (solve_example(t, tid, d, i, wt, x2) != WB_OK ||
                d->loss(d->user, i, x2, &lm, NULL) != 0)
                return 0;
            wt[j] = t->w[j];
            g[j] = (lp - lm) / (2 * h);
        }
        if (!wbi_all_finite((size_t)p, g)) return 0;
    }
    if (t->s.warm_start) {
        memcpy(t->xs + t->off[i], x, (size_t)n * sizeof(double));
        t->has_x[i] = 1;
    }
    return 1;
}

long long wbi_trainer_solves(const wb_trainer *t) {
    /* solves[0] starts at a loaded count <= WBI_SOLVES_MAX, the others at 0:
       the sum cannot overflow before 2^62 more solves, and is clamped */
    long long s = 0;
    for (int k = 0; k < t->nthreads; k++) s += t->solves[k];
    /* the other ranks' (each <= WBI_SOLVES_MAX, summed with saturation) */
    s = s < WBI_SOLVES_MAX ? s : WBI_SOLVES_MAX;
    s += t->solves_other;
    return s < WBI_SOLVES_MAX ? s : WBI_SOLVES_MAX;
}

/* ---- evaluation ---------------------------------------------------------- */

/* evaluate_into's items: losses[i] = L_i(x*_i(w)) from the example's start,
   or NaN when its start, solve or loss fails */
typedef struct {
    const wb_dataset *d;
    const double *w;   /* [p]     */
    double *losses;    /* [count] */
    int first;         /* item k is example first + k, */
    const int *idx;    /* or idx[k] when idx is set    */
} eval_job;

static void eval_item(wb_trainer *t, void *job, int tid, int k) {
    eval_job *J = job;
    const wb_dataset *d = J->d;
    int i = J->idx ? J->idx[k] : J->first + k;
    double *x = t->xw[tid], l = NAN;
    if (d->start(d->user, i, x) == 0 &&
        solve_example(t, tid, d, i, J->w, x) == WB_OK &&
        d->loss(d->user, i, x, &l, NULL) == 0 && isfinite(l))
        J->losses[i] = l;
    else
        J->losses[i] = NAN;
}

static wb_status evaluate_into(wb_trainer *t, const wb_dataset *d,
                               const double *w, double *losses, double *mean,
                               int *failed) {
    int cnt = d->count, bad = 0;
    /* sizes first (serially), so a misfit is an error, not a skip */
    for (int i = 0; i < cnt; i++) {
        wb_energy e;
        memset(&e, 0, sizeof e);
        if (d->energy(d->user, i, &e) != 0) {
            wbi_tmsg(t, "evaluate: energy callback failed for example %d", i);
            return WB_ECALLBACK;
        }
        if (e.n < 1 || e.n > t->n_max || e.p != t->p) {
            wbi_tmsg(t, "evaluate: example %d has n = %d, p = %d; the trainer "
                 "holds n <= %d, p = %d", i, e.n, e.p, t->n_max, t->p);
            return WB_EINVAL;
        }
    }
#ifdef WIBERG_MPI
    if (t->mpi) wbi_mpi_eval(t, d, w, losses); /* a share per rank */
    else
#endif
    {
        eval_job job = {d, w, losses, 0, NULL};
        pool_run(t, eval_item, &job, cnt);
    }
    double sum = 0.0;
    for (int i = 0; i < cnt; i++) {
        if (isnan(losses[i])) bad++;
        else sum += losses[i];
    }
    if (failed) *failed = bad;
    if (mean) *mean = bad < cnt ? sum / (cnt - bad) : NAN;
    return WB_OK;
}

/* 1 when the byte ranges [a, a + na) and [b, b + nb) share a byte (both
   non-NULL) */
static int overlap(const void *a, size_t na, const void *b, size_t nb) {
    if (!a || !b) return 0;
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return x < y + nb && y < x + na;
}

static wb_status evaluate_locked(wb_trainer *t, const wb_dataset *d,
                                 const double *w, double *mean_loss,
                                 int *failed, double *per_example) {
    char msg[WBI_MSG_LEN];
    if (!d || !w) {
        wbi_tmsg(t, "wb_trainer_evaluate: %s is NULL", !d ? "data set" : "w");
        return WB_EINVAL;
    }
    if (check_dataset(d, "evaluate", msg, sizeof msg) != WB_OK) {
        wbi_tmsg(t, "%s", msg);
        return WB_EINVAL;
    }
    if (!wbi_all_finite((size_t)t->p, w)) {
        wbi_tmsg(t, "wb_trainer_evaluate: w contains NaN or Inf");
        return WB_EINVAL;
    }
    /* outputs must not overlap one another (each is written whole); w may
       overlap anything: it is copied before any output is written */
    size_t pe = (size_t)d->count * sizeof(double);
    if (overlap(mean_loss, sizeof *mean_loss, per_example, pe) ||
        overlap(failed, sizeof *failed, per_example, pe) ||
        overlap(mean_loss, sizeof *mean_loss, failed, sizeof *failed)) {
        wbi_tmsg(t, "wb_trainer_evaluate: the outputs mean_loss, failed and "
                 "per_example[%d] overlap", d->count);
        return WB_EINVAL;
    }
    memcpy(t->weval, w, (size_t)t->p * sizeof(double));
    w = t->weval;
    double *buf = per_example;
    if (!buf) {
        buf = wbi_alloc(&t->s.solver, (size_t)d->count, sizeof(double));
        if (!buf) {
            wbi_tmsg(t, "wb_trainer_evaluate: out of memory");
            return WB_ENOMEM;
        }
    }
    wb_status st = evaluate_into(t, d, w, buf, mean_loss, failed);
    if (buf != per_example) wbi_free(&t->s.solver, buf);
    t->info.inner_solves = wbi_trainer_solves(t);
    return st;
}

wb_status wb_trainer_evaluate(wb_trainer *t, const wb_dataset *d,
                              const double *w, double *mean_loss, int *failed,
                              double *per_example) {
    if (!t) return wbi_fail(WB_EINVAL, "%s: t is NULL", __func__);
    if (!wbi_trainer_enter(t, __func__)) return WB_EBUSY;
    wb_status st = evaluate_locked(t, d, w, mean_loss, failed, per_example);
    wbi_trainer_leave(t);
    return st;
}

/* ---- stepping -------------------------------------------------------------- */

static void validate(wb_trainer *t) {
    if (!t->has_val) return;
    double mean = NAN;
    int failed = 0;
    if (evaluate_into(t, &t->val, t->w, t->vloss, &mean, &failed) != WB_OK) return;
    t->info.val_loss = mean;
    if (isfinite(mean) &&
        (isnan(t->info.best_val_loss) || mean < t->info.best_val_loss)) {
        t->info.best_val_loss = mean;
        t->info.best_step = t->step;
        memcpy(t->best_w, t->w, (size_t)t->p * sizeof(double));
    }
}

/* step_locked's items: slot b of the batch (job: b = slots[k]; NULL:
   b = k), example perm[pos + b] */
static void batch_item(wb_trainer *t, void *job, int tid, int k) {
    int b = job ? ((const int *)job)[k] : k;
    int i = t->perm[t->pos + b];
    t->okbuf[b] = train_example(t, tid, i, &t->lbuf[b],
                                t->gbuf + (size_t)b * t->p);
}

void wbi_trainer_run_slots(wb_trainer *t, const int *slots, int count) {
    pool_run(t, batch_item, (void *)slots, count);
}

void wbi_trainer_run_eval(wb_trainer *t, const wb_dataset *d, const double *w,
                          double *losses, int first, int count) {
    eval_job job = {d, w, losses, first, NULL};
    pool_run(t, eval_item, &job, count);
}

void wbi_trainer_run_eval_list(wb_trainer *t, const wb_dataset *d,
                               const double *w, double *losses,
                               const int *idx, int count) {
    eval_job job = {d, w, losses, 0, idx};
    pool_run(t, eval_item, &job, count);
}

static wb_status step_locked(wb_trainer *t, wb_train_info *info) {
    if (t->step >= t->total_steps) {
        wbi_tmsg(t, "done: %lld steps", t->step);
        if (info) *info = t->info;
        return WB_DONE;
    }
    double t0 = now_s();
    int p = t->p;
    uint64_t rng0 = t->rng; /* the order before this step: a failed step */
    int shuffled = 0;       /* puts it back                              */
    if (t->pos == 0 && t->s.shuffle) {
        memcpy(t->perm0, t->perm, (size_t)t->count * sizeof(int));
        shuffled = 1;
        /* Fisher-Yates with the trainer's generator: a new order per epoch */
        for (int i = t->count - 1; i > 0; i--) {
            int k = (int)(rng_next(&t->rng) % (uint64_t)(i + 1));
            int tmp = t->perm[i];
            t->perm[i] = t->perm[k];
            t->perm[k] = tmp;
        }
    }
    int nb = t->count - t->pos < t->batch ? t->count - t->pos : t->batch;
#ifdef WIBERG_MPI
    if (t->mpi) wbi_mpi_batch(t, nb); /* a share per rank, then every
                                         slot's result on every rank */
    else
#endif
        pool_run(t, batch_item, NULL, nb);
    /* reduce in batch order: identical for any thread count */
    int used = 0;
    double lsum = 0.0;
    for (int j = 0; j < p; j++) t->g[j] = 0.0;
    for (int b = 0; b < nb; b++) {
        if (!t->okbuf[b]) continue;
        used++;
        lsum += t->lbuf[b];
        for (int j = 0; j < p; j++) t->g[j] += t->gbuf[(size_t)b * p + j];
    }
    double lr = wbi_lr_at(&t->s, t->step, t->total_steps);
    double gn = 0.0;
    if (used > 0) {
        /* g = sum_b g_b / used; when the sum overflows (finite gradients
           near DBL_MAX), the mean of the same terms as sum_b (g_b / used) */
        for (int j = 0; j < p; j++) t->g[j] /= used;
        if (!wbi_all_finite((size_t)p, t->g)) {
            for (int j = 0; j < p; j++) t->g[j] = 0.0;
            for (int b = 0; b < nb; b++)
                if (t->okbuf[b])
                    for (int j = 0; j < p; j++)
                        t->g[j] += t->gbuf[(size_t)b * p + j] / used;
        }
        gn = wbi_nrm2(p, t->g); /* scaled: no overflow of sum g^2 */
        /* the new state into scratch; committed only when w (after the
           projection) and every moment are finite */
        wbi_optim_step(&t->s, p, t->step + 1, lr, t->g, t->w, t->m, t->r,
                       t->w1, t->m1, t->r1);
        wbi_project(p, t->w1, t->lower, t->upper);
        if (!wbi_all_finite((size_t)p, t->g) ||
            !wbi_all_finite((size_t)p, t->w1) ||
            !wbi_all_finite((size_t)p, t->m1) ||
            !wbi_all_finite((size_t)p, t->r1)) {
            if (shuffled) {
                memcpy(t->perm, t->perm0, (size_t)t->count * sizeof(int));
                t->rng = rng0;
            }
            wbi_tmsg(t, "step %lld: the %s update at lr = %g (|g| = %g) "
                     "would make %s non-finite; w, the optimizer state and "
                     "the checkpoint are kept as they were (lower lr)",
                     t->step + 1, t->s.optimizer == WB_OPT_SGD ? "SGD"
                     : t->s.optimizer == WB_OPT_MOMENTUM ? "momentum" : "Adam",
                     lr, gn, !wbi_all_finite((size_t)p, t->g) ? "the mean gradient"
                     : !wbi_all_finite((size_t)p, t->w1) ? "w" : "the moments");
            if (info) *info = t->info;
            return WB_ENONFINITE;
        }
        memcpy(t->w, t->w1, (size_t)p * sizeof(double));
        memcpy(t->m, t->m1, (size_t)p * sizeof(double));
        memcpy(t->r, t->r1, (size_t)p * sizeof(double));
    }
    t->step++;
    t->pos += nb;
    t->epoch_loss_sum += lsum;
    t->epoch_used += used;
    wb_train_info *I = &t->info;
    I->step = t->step;
    I->loss = used > 0 ? lsum / used : NAN;
    I->grad_norm = gn;
    I->lr = lr;
    I->used = used;
    I->skipped = nb - used;
    I->skipped_total += nb - used;
    if (used == 0) I->empty_steps++;
    t->examples_done += nb;
    int epoch_end = t->pos >= t->count;
    if (epoch_end) {
        I->epoch_loss = t->epoch_used > 0 ? t->epoch_loss_sum / t->epoch_used : NAN;
        t->epoch_loss_sum = 0.0;
        t->epoch_used = 0;
        t->pos = 0;
        t->epoch++;
    }
    I->epoch = t->epoch;
    int last = t->step >= t->total_steps;
    if (t->s.validate_every > 0 ? (t->step % t->s.validate_every == 0 || last)
                                : (epoch_end || last))
        validate(t);
    if (!t->has_val) {
        memcpy(t->best_w, t->w, (size_t)p * sizeof(double));
        I->best_step = t->step;
    }
    I->seconds += now_s() - t0;
    I->inner_solves = wbi_trainer_solves(t);
    I->examples_per_s = I->seconds > 0 ? (double)t->examples_done / I->seconds : 0.0;
    if (t->s.verbose && (epoch_end || last))
        fprintf(stderr, "epoch %3d/%d  step %6lld  loss %.4e  val %.4e  "
                "lr %.2e  %8.0f ex/s  skipped %lld\n", epoch_end ? t->epoch : t->epoch + 1,
                t->s.epochs, t->step, I->epoch_loss, I->val_loss, lr,
                I->examples_per_s, I->skipped_total);
    if (t->s.checkpoint_path &&
        (t->s.checkpoint_every > 0 ? (t->step % t->s.checkpoint_every == 0 || last)
                                   : (epoch_end || last))) {
        wb_status st = wbi_trainer_save(t, t->s.checkpoint_path);
        if (st != WB_OK) {
            if (info) *info = *I;
            return st;
        }
    }
    if (used == 0)
        wbi_tmsg(t, "step %lld/%lld: all %d examples of the batch were skipped "
                 "(failed solve, loss or derivative): w did not move", t->step,
                 t->total_steps, nb);
    else
        wbi_tmsg(t, "step %lld/%lld: loss %.6g, %d used, %d skipped", t->step,
                 t->total_steps, I->loss, used, nb - used);
    if (info) *info = *I;
    return last ? WB_DONE : WB_OK;
}

wb_status wb_trainer_step(wb_trainer *t, wb_train_info *info) {
    if (!t) return wbi_fail(WB_EINVAL, "%s: t is NULL", __func__);
    if (!wbi_trainer_enter(t, __func__)) return WB_EBUSY;
    wb_status st = step_locked(t, info);
    wbi_trainer_leave(t);
    return st;
}

wb_status wb_train(wb_trainer *t, wb_train_info *info) {
    if (!t) return wbi_fail(WB_EINVAL, "%s: t is NULL", __func__);
    if (!wbi_trainer_enter(t, __func__)) return WB_EBUSY;
    wb_status st;
    do {
        st = step_locked(t, info);
    } while (st == WB_OK);
    wbi_trainer_leave(t);
    return st == WB_DONE ? WB_OK : st;
}

/* The getters take a const trainer but still leave a message on misuse: the
   object was allocated writable by wb_trainer_create, so the cast is
   defined (and only msg changes). */
static wb_status getter_null(const wb_trainer *t, const char *fn, const char *arg) {
    wbi_tmsg((wb_trainer *)t, "%s: %s is NULL", fn, arg);
    return WB_EINVAL;
}

static wb_status w_locked(const wb_trainer *t, double *w) {
    if (!w) return getter_null(t, "wb_trainer_w", "w");
    memcpy(w, t->w, (size_t)t->p * sizeof(double));
    return WB_OK;
}

wb_status wb_trainer_w(const wb_trainer *t, double *w) {
    if (!t) return wbi_fail(WB_EINVAL, "%s: t is NULL", __func__);
    if (!wbi_trainer_enter(t, __func__)) return WB_EBUSY;
    wb_status st = w_locked(t, w);
    wbi_trainer_leave(t);
    return st;
}

static wb_status best_w_locked(const wb_trainer *t, double *w, double *best) {
    size_t P = (size_t)t->p * sizeof(double);
    if (!w) return getter_null(t, "wb_trainer_best_w", "w");
    if (overlap(best, sizeof *best, w, P)) {
        wbi_tmsg((wb_trainer *)t, "wb_trainer_best_w: best_val_loss lies "
                 "inside w[%d]", t->p);
        return WB_EINVAL;
    }
    memcpy(w, t->has_val ? t->best_w : t->w, P);
    if (best) *best = t->info.best_val_loss;
    return WB_OK;
}

wb_status wb_trainer_best_w(const wb_trainer *t, double *w, double *best) {
    if (!t) return wbi_fail(WB_EINVAL, "%s: t is NULL", __func__);
    if (!wbi_trainer_enter(t, __func__)) return WB_EBUSY;
    wb_status st = best_w_locked(t, w, best);
    wbi_trainer_leave(t);
    return st;
}

wb_status wb_trainer_info(const wb_trainer *t, wb_train_info *info) {
    if (!t) return wbi_fail(WB_EINVAL, "%s: t is NULL", __func__);
    if (!wbi_trainer_enter(t, __func__)) return WB_EBUSY;
    wb_status st = WB_OK;
    if (!info) st = getter_null(t, "wb_trainer_info", "info");
    else *info = t->info;
    wbi_trainer_leave(t);
    return st;
}
