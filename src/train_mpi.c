/* The trainer across MPI ranks (built with -DWIBERG_MPI=ON; see
 * include/wiberg_mpi.h for the contract).
 *
 * Every rank holds the whole training state. A step, with the static
 * schedule (WB_MPI_STATIC):
 *   1. assigns the batch's slots to ranks, the same way on every rank:
 *      slots by the expected cost n_i + 64 of their example, largest first
 *      (ties: lower slot), each onto the rank with the least expected load
 *      so far (ties: lower rank) -- longest-processing-time-first;
 *   2. moves warm starts: example i's last minimizer lives on holder[i]
 *      (-1: on every rank, after create or load); when the slot's rank is
 *      another one, holder[i] sends x_i to it (point to point);
 *   3. solves and differentiates the rank's slots on its threads
 *      (wbi_trainer_run_slots: the same per-example code as one process);
 *   4. one MPI_Iallgatherv gives every rank every slot's (ok, L_b, g_b),
 *      bytes as computed, plus each rank's inner-solve count;
 * With the dynamic schedule (WB_MPI_DYNAMIC, the default):
 *   1. orders the slots by expected cost n_i + 64, largest first (ties:
 *      lower slot), the same on every rank: order[0 .. nb);
 *   2. each rank, while the counter has slots left, takes the next T of
 *      them (T = its threads): v = fetch-and-add(counter, T) on rank 0's
 *      one-word window (MPI_Rget_accumulate, MPI_SUM, passive target
 *      under MPI_Win_lock_all), slots order[v - base .. + T) where base is
 *      the counter's value when the step began; for each slot whose warm
 *      start x_i lives on another rank (holder[i]), MPI_Rget from that
 *      rank's window over its xs; then runs the T slots on its threads
 *      (wbi_trainer_run_slots, which takes them one at a time per thread);
 *      a fetch that returns v - base >= nb ends its share;
 *   3. one MPI_Iallgather of each rank's byte count, then one
 *      MPI_Iallgatherv of every slot's (slot, ok, L_b, g_b) records (in
 *      the order the rank took them) and each rank's solve count and
 *      counter increments; every rank then knows every slot's rank
 *      (the new holders) and result, and base += the sum of increments
 *      (so the counter is never reset: base is the same on every rank).
 * A holder's x_i is read only by the one rank that takes i's slot, and
 * written (by a successful solve) only by that rank, into its own copy:
 * no two accesses of a step touch the same x_i on the same rank except
 * the holder's read, and the holder does not write x_i that step. The
 * exchange orders the steps: a rank's Iallgatherv completes only after
 * every rank has finished its gets of the step.
 * Both schedules end the same way: train.c sums g_b in slot order on every
 * rank, as one process does:
 *   g = (sum_{b = 0..nb-1, ok_b} g_b) / used    (left to right)
 * so w is bit-identical for any number of ranks, threads and schedule,
 * whichever rank took which slot and when.
 *
 * Evaluation: static, rank r takes the examples [cnt r / R, cnt (r + 1) / R)
 * and an MPI_Iallgatherv gives every rank every loss; dynamic, the
 * examples (largest n first) are taken from the counter as a batch's slots
 * are, and the exchange carries (i, L_i) records; either way the mean is
 * then summed in example order (train.c).
 *
 * Checkpoints: rank 0 gathers the warm starts held elsewhere (MPI_Gatherv,
 * example order) and writes; every rank returns rank 0's status and
 * message. Load: rank 0 reads the file, MPI_Bcast sends the bytes, every
 * rank checks and commits them (the same checks, the same answer).
 */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mpi.h>

#include "wb_train.h"
#include "wiberg_mpi.h"

struct wbi_mpi {
    MPI_Comm comm;          /* the trainer's duplicate                      */
    int rank, size;
    int *holder;            /* [count] rank holding x_i's warm start; -1:
                               every rank                                  */
    int *owner;             /* [batch] the rank of each slot this step      */
    int *order;             /* [batch] slots by n, largest first            */
    int *mine;              /* [batch] this rank's slots, increasing        */
    double *load;           /* [size] total n assigned so far               */
    int *cnt, *disp;        /* [size] counts and offsets of an Allgatherv   */
    long long *rsolves;     /* [size] each rank's inner solves              */
    unsigned char *pk;      /* [batch * rec + 8 * size] the results         */
    size_t rec;             /* bytes per slot: ok, L, g[p] (doubles)        */
    MPI_Request *req;       /* [2 * batch]                                  */
    double *xsbuf;          /* [total_n] warm starts on their way to rank 0 */
    double *tsec;           /* [2 * nthreads] solve, adjoint s per thread   */
    double *cost;           /* [batch] the slots' expected costs (scratch)  */
    int dynamic;            /* WB_MPI_DYNAMIC in use                        */
    int wins;               /* cwin and xwin exist on every rank           */
    MPI_Win cwin;           /* the slot counter: one long long on rank 0   */
    MPI_Win xwin;           /* this rank's xs (the warm starts); none on
                               one rank (nothing to fetch there)            */
    long long *ctr;         /* cwin's memory (rank 0)                       */
    long long base;         /* the counter when this step began (all ranks) */
    char nowin[400];        /* why the windows could not be made            */
    long long steps, examples;
    double gather_s, warm_s, exchange_bytes;
};

/* ---- waiting without taking a core ----------------------------------------
 *
 * A rank that finishes its share first waits for the others. MPI libraries
 * wait by polling (Open MPI's shared-memory transport spins): on a machine
 * whose cores are shared -- with other ranks, the trainer's threads, or
 * other people's work -- that spinning takes the CPU from the ranks still
 * computing. So the trainer posts its collectives non-blocking and polls
 * them with growing sleeps (spinning only the first 50 us, then sleeping
 * 2 us doubling up to 50 us, or 1/20 of the wait so far when that is
 * longer, up to 1 ms). The cost: a round of a collective (log2 R of them
 * for the small messages here) may start up to 50 us late (5 % of the
 * wait in a long one).
 */
static void wait_asleep(int n, MPI_Request *rq) {
    double t0 = MPI_Wtime();
    long ns = 2000;
    for (;;) {
        int done = 0;
        MPI_Testall(n, rq, &done, MPI_STATUSES_IGNORE);
        if (done) return;
        double waited = MPI_Wtime() - t0;
        if (waited < 50e-6) continue;
        struct timespec d = {0, ns};
        nanosleep(&d, NULL);
        /* 2 us doubling to 50 us; in a long wait up to 1/20 of the time
           waited so far (at most 5 % later, fewer wake-ups), 1 ms at most */
        long cap = (long)(waited * 1e9 / 20);
        cap = cap < 50000 ? 50000 : cap > 1000000 ? 1000000 : cap;
        ns = 2 * ns < cap ? 2 * ns : cap;
    }
}

/* every rank of the trainer's communicator has arrived (asleep) */
static void barrier_asleep(struct wbi_mpi *M) {
    MPI_Request rq;
    MPI_Ibarrier(M->comm, &rq);
    wait_asleep(1, &rq);
}

/* ---- the process-wide default communicator -------------------------- */

static pthread_mutex_t default_mu = PTHREAD_MUTEX_INITIALIZER;
static MPI_Comm default_comm; /* valid when default_set */
static int default_set;

/* "" when MPI can be used now, else why not */
static const char *mpi_unusable(void) {
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (!init) return "MPI is not initialized (call MPI_Init first)";
    if (fin) return "MPI is already finalized";
    return "";
}

wb_status wb_mpi_set_default_comm(MPI_Comm comm) {
    const char *why = mpi_unusable();
    if (*why) return wbi_fail(WB_EINVAL, "wb_mpi_set_default_comm: %s", why);
    if (comm != MPI_COMM_NULL) {
        int inter = 0;
        MPI_Comm_test_inter(comm, &inter);
        if (inter)
            return wbi_fail(WB_EINVAL, "wb_mpi_set_default_comm: comm is an "
                            "inter-communicator (an intra-communicator is needed)");
    }
    pthread_mutex_lock(&default_mu);
    default_comm = comm;
    default_set = comm != MPI_COMM_NULL;
    pthread_mutex_unlock(&default_mu);
    return WB_OK;
}

/* ---- attach and free ---------------------------------------------------- */

static void mpi_release(wb_trainer *t, struct wbi_mpi *M) {
    if (!M) return;
    const wb_settings *a = &t->s.solver;
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin && M->wins) {
        if (M->size > 1) MPI_Win_free(&M->xwin);
        MPI_Win_free(&M->cwin);
    }
    if (!fin && M->comm != MPI_COMM_NULL) MPI_Comm_free(&M->comm);
    void *bufs[] = {M->holder, M->owner, M->order, M->mine, M->load, M->cnt,
                    M->disp, M->rsolves, M->pk, M->req, M->xsbuf, M->tsec,
                    M->cost};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) wbi_free(a, bufs[i]);
    wbi_free(a, M);
}

void wbi_mpi_free(wb_trainer *t) {
    if (!t->mpi) return;
    t->tsec = NULL;
    mpi_release(t, t->mpi);
    t->mpi = NULL;
}

static uint64_t fnv_add(uint64_t h, const void *src, size_t n) {
    const unsigned char *b = src;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* A hash of what must agree between the ranks' trainers: sizes, the
   settings that shape the run, and the state (threads may differ). */
static uint64_t state_hash(const wb_trainer *t) {
    const wb_train_settings *s = &t->s;
    uint64_t h = 1469598103934665603ULL;
    long long ints[] = {t->p, t->count, (long long)t->total_n, t->n_max,
                        t->batch, t->total_steps, t->step, t->epoch, t->pos,
                        (long long)t->rng, s->optimizer, s->schedule,
                        s->lr_step_every, s->shuffle, s->warm_start,
                        s->backward, t->has_val, t->has_val ? t->val.count : 0,
                        s->solver.max_iter};
    double dbls[] = {s->lr, s->momentum, s->beta1, s->beta2, s->eps,
                     s->lr_decay, s->lr_min, s->fd_step, s->solver.lambda,
                     s->solver.grad_tol};
    size_t P = (size_t)t->p * sizeof(double);
    h = fnv_add(h, ints, sizeof ints);
    h = fnv_add(h, dbls, sizeof dbls);
    h = fnv_add(h, t->w, P);
    h = fnv_add(h, t->m, P);
    h = fnv_add(h, t->r, P);
    h = fnv_add(h, t->lower, P);
    h = fnv_add(h, t->upper, P);
    h = fnv_add(h, t->n_of, (size_t)t->count * sizeof(int));
    h = fnv_add(h, t->perm, (size_t)t->count * sizeof(int));
    h = fnv_add(h, t->has_x, (size_t)t->count);
    h = fnv_add(h, t->xs, t->total_n * sizeof(double));
    return h;
}

static void *zalloc(const wb_settings *a, size_t count, size_t size, int *ok) {
    void *p = wbi_alloc(a, count ? count : 1, size);
    if (!p) *ok = 0;
    else memset(p, 0, (count ? count : 1) * size);
    return p;
}

/* The dynamic schedule's windows (collective over M->comm): the counter,
   one long long on rank 0 (MPI_Win_allocate), and each rank's xs (MPI_Win_create; not on one
   rank, where every warm start is local -- Open MPI cannot make it with
   btl self alone). Where the MPI
   library cannot make them (Open MPI 4.1 over btl tcp has no one-sided
   component for them), the errors are returned, not fatal, here only; the
   trainer then runs the static schedule and M->nowin says why. Sets
   M->wins and M->dynamic. A rank's failure where another succeeded leaves
   that window unfreed (freeing is collective): a few bytes. */
static void make_windows(wb_trainer *t, struct wbi_mpi *M) {
    char why[MPI_MAX_ERROR_STRING];
    int len = 0, e, ok, all;
    M->wins = M->dynamic = 0;
    snprintf(M->nowin, sizeof M->nowin, "no MPI windows");
    MPI_Comm_set_errhandler(M->comm, MPI_ERRORS_RETURN);
    e = MPI_Win_allocate(M->rank == 0 ? (MPI_Aint)sizeof(long long) : 0,
                         (int)sizeof(long long), MPI_INFO_NULL, M->comm,
                         &M->ctr, &M->cwin);
    ok = e == MPI_SUCCESS;
    if (ok && M->rank == 0) {
        /* the counter starts at 0: a store to local window memory, inside
           an exclusive lock of this rank's window */
        MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, M->cwin);
        *M->ctr = 0;
        MPI_Win_unlock(0, M->cwin);
    }
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, M->comm);
    if (all && M->size > 1) {
        e = MPI_Win_create(t->xs, (MPI_Aint)(t->total_n * sizeof(double)),
                           (int)sizeof(double), MPI_INFO_NULL, M->comm, &M->xwin);
        ok = e == MPI_SUCCESS;
        MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, M->comm);
        if (!all) MPI_Win_free(&M->cwin); /* every rank has it */
    }
    if (e != MPI_SUCCESS) {
        MPI_Error_string(e, why, &len);
        snprintf(M->nowin, sizeof M->nowin, "the MPI library could not make "
                 "the one-sided windows: %s", why);
    } else if (!all) {
        snprintf(M->nowin, sizeof M->nowin, "another rank could not make "
                 "the one-sided windows");
    }
    MPI_Comm_set_errhandler(M->comm, MPI_ERRORS_ARE_FATAL);
    if (all) {
        M->wins = M->dynamic = 1;
        M->base = 0;
        M->nowin[0] = '\0';
    }
}

/* wb_trainer_set_comm without the flag; the reason in t->msg */
static wb_status attach(wb_trainer *t, MPI_Comm comm) {
    const char *why = mpi_unusable();
    if (*why) {
        wbi_tmsg(t, "wb_trainer_set_comm: %s", why);
        return WB_EINVAL;
    }
    if (comm == MPI_COMM_NULL) {
        wbi_tmsg(t, "wb_trainer_set_comm: comm is MPI_COMM_NULL");
        return WB_EINVAL;
    }
    int inter = 0;
    MPI_Comm_test_inter(comm, &inter);
    if (inter) {
        wbi_tmsg(t, "wb_trainer_set_comm: comm is an inter-communicator (an "
                 "intra-communicator is needed)");
        return WB_EINVAL;
    }
    const wb_settings *a = &t->s.solver;
    int ok = 1;
    struct wbi_mpi *M = zalloc(a, 1, sizeof *M, &ok);
    if (M) {
        M->comm = MPI_COMM_NULL;
        MPI_Comm_rank(comm, &M->rank);
        MPI_Comm_size(comm, &M->size);
        size_t B = (size_t)t->batch, R = (size_t)M->size;
        /* static: (ok, L, g[p]); dynamic: the slot first */
        M->rec = ((size_t)t->p + 2) * sizeof(double);
        M->holder = zalloc(a, (size_t)t->count, sizeof(int), &ok);
        M->owner = zalloc(a, B, sizeof(int), &ok);
        M->order = zalloc(a, B, sizeof(int), &ok);
        M->mine = zalloc(a, B, sizeof(int), &ok);
        M->load = zalloc(a, R, sizeof(double), &ok);
        M->cnt = zalloc(a, R, sizeof(int), &ok);
        M->disp = zalloc(a, R, sizeof(int), &ok);
        M->rsolves = zalloc(a, R, sizeof(long long), &ok);
        M->pk = zalloc(a, B * (M->rec + 8) + 16 * R, 1, &ok);
        M->req = zalloc(a, 2 * B, sizeof(MPI_Request), &ok);
        M->xsbuf = zalloc(a, t->total_n, sizeof(double), &ok);
        M->tsec = zalloc(a, 2 * (size_t)t->nthreads, sizeof(double), &ok);
        M->cost = zalloc(a, B, sizeof(double), &ok);
        /* MPI counts are int: the largest message must fit */
        if (B * (M->rec + 8) + 16 * R > (size_t)INT_MAX || t->total_n > (size_t)INT_MAX)
            ok = -1;
    }
    /* every rank learns whether every rank could go on, and whether the
       states agree: AND of (ok, h, ~h) -- all equal iff AND h == ~AND ~h */
    uint64_t h = state_hash(t);
    uint64_t mine[2] = {ok == 1 ? 1u : 0u, ok == -1 ? 0u : 1u}, all[2];
    uint64_t hv[2] = {h, ~h}, hall[2];
    MPI_Allreduce(mine, all, 2, MPI_UINT64_T, MPI_BAND, comm);
    MPI_Allreduce(hv, hall, 2, MPI_UINT64_T, MPI_BAND, comm);
    wb_status st = WB_OK;
    if (!all[1]) {
        wbi_tmsg(t, "wb_trainer_set_comm: a batch's results (%d x %zu bytes) "
                 "or the warm starts (%zu doubles) exceed one MPI message "
                 "(INT_MAX)", t->batch, ((size_t)t->p + 2) * sizeof(double),
                 t->total_n);
        st = WB_EINVAL;
    } else if (!all[0]) {
        wbi_tmsg(t, "wb_trainer_set_comm: out of memory (on this or another "
                 "rank)");
        st = WB_ENOMEM;
    } else if (hall[0] != ~hall[1]) {
        wbi_tmsg(t, "wb_trainer_set_comm: the trainers of the ranks differ "
                 "(data set sizes, settings or state: w, step, warm starts); "
                 "every rank must create its trainer alike");
        st = WB_EINVAL;
    }
    if (st == WB_OK) MPI_Comm_dup(comm, &M->comm);
    if (st != WB_OK) {
        mpi_release(t, M);
        return st;
    }
    make_windows(t, M);
    for (int i = 0; i < t->count; i++) M->holder[i] = -1;
    /* the state agrees, so one rank's solve count stands for all */
    if (M->rank != 0)
        for (int k = 0; k < t->nthreads; k++) t->solves[k] = 0;
    t->solves_other = 0;
    wbi_mpi_free(t); /* a communicator set before */
    t->mpi = M;
    t->tsec = M->tsec;
    if (M->rank != 0) t->s.verbose = 0;
    if (M->wins)
        wbi_tmsg(t, "running on rank %d of %d (dynamic schedule)", M->rank, M->size);
    else
        wbi_tmsg(t, "running on rank %d of %d (static schedule: %s)", M->rank,
                 M->size, M->nowin);
    return WB_OK;
}

wb_status wb_trainer_set_comm(wb_trainer *t, MPI_Comm comm) {
    if (!t) return wbi_fail(WB_EINVAL, "%s: t is NULL", __func__);
    if (!wbi_trainer_enter(t, __func__)) return WB_EBUSY;
    wb_status st = attach(t, comm);
    wbi_trainer_leave(t);
    return st;
}

wb_status wbi_mpi_attach_default(wb_trainer *t) {
    pthread_mutex_lock(&default_mu);
    int set = default_set;
    MPI_Comm comm = default_comm;
    pthread_mutex_unlock(&default_mu);
    return set ? attach(t, comm) : WB_OK;
}

wb_status wb_trainer_mpi_times(const wb_trainer *t, wb_mpi_times *out) {
    if (!t) return wbi_fail(WB_EINVAL, "%s: t is NULL", __func__);
    if (!wbi_trainer_enter(t, __func__)) return WB_EBUSY;
    wb_status st = WB_OK;
    wb_trainer *tw = (wb_trainer *)t; /* only the message changes */
    if (!out) {
        wbi_tmsg(tw, "wb_trainer_mpi_times: out is NULL");
        st = WB_EINVAL;
    } else if (!t->mpi) {
        wbi_tmsg(tw, "wb_trainer_mpi_times: the trainer has no communicator "
                 "(wb_trainer_set_comm)");
        st = WB_EINVAL;
    } else {
        const struct wbi_mpi *M = t->mpi;
        memset(out, 0, sizeof *out);
        out->rank = M->rank;
        out->ranks = M->size;
        out->steps = M->steps;
        out->examples = M->examples;
        out->step_s = t->info.seconds;
        for (int k = 0; k < t->nthreads; k++) {
            out->solve_s += M->tsec[2 * k];
            out->adjoint_s += M->tsec[2 * k + 1];
        }
        out->gather_s = M->gather_s;
        out->warm_s = M->warm_s;
        out->exchange_bytes = M->exchange_bytes;
    }
    wbi_trainer_leave(t);
    return st;
}

wb_status wb_trainer_set_mpi_schedule(wb_trainer *t, wb_mpi_schedule s) {
    if (!t) return wbi_fail(WB_EINVAL, "%s: t is NULL", __func__);
    if (!wbi_trainer_enter(t, __func__)) return WB_EBUSY;
    wb_status st = WB_OK;
    struct wbi_mpi *M = t->mpi;
    if (!M) {
        wbi_tmsg(t, "wb_trainer_set_mpi_schedule: the trainer has no "
                 "communicator (wb_trainer_set_comm)");
        st = WB_EINVAL;
    } else {
        /* every rank learns the smallest and largest request (-1: a value
           that is not a schedule) */
        int v = s == WB_MPI_DYNAMIC || s == WB_MPI_STATIC ? (int)s : -1;
        int mm[2] = {v, -v}, all[2];
        MPI_Allreduce(mm, all, 2, MPI_INT, MPI_MIN, M->comm);
        if (all[0] < 0) {
            if (v < 0)
                wbi_tmsg(t, "wb_trainer_set_mpi_schedule: s = %d is not a "
                         "wb_mpi_schedule (WB_MPI_DYNAMIC, WB_MPI_STATIC)", (int)s);
            else
                wbi_tmsg(t, "wb_trainer_set_mpi_schedule: another rank passed "
                         "a value that is not a wb_mpi_schedule");
            st = WB_EINVAL;
        } else if (all[0] != -all[1]) {
            wbi_tmsg(t, "wb_trainer_set_mpi_schedule: the ranks asked for "
                     "different schedules; every rank must pass the same");
            st = WB_EINVAL;
        } else if (s == WB_MPI_DYNAMIC && !M->wins) {
            wbi_tmsg(t, "wb_trainer_set_mpi_schedule: WB_MPI_DYNAMIC is not "
                     "available (%s); the trainer keeps WB_MPI_STATIC", M->nowin);
            st = WB_EINVAL;
        } else {
            M->dynamic = s == WB_MPI_DYNAMIC;
        }
    }
    wbi_trainer_leave(t);
    return st;
}

wb_status wb_trainer_mpi_schedule(const wb_trainer *t, wb_mpi_schedule *out) {
    if (!t) return wbi_fail(WB_EINVAL, "%s: t is NULL", __func__);
    if (!wbi_trainer_enter(t, __func__)) return WB_EBUSY;
    wb_status st = WB_OK;
    wb_trainer *tw = (wb_trainer *)t; /* only the message changes */
    if (!out) {
        wbi_tmsg(tw, "wb_trainer_mpi_schedule: out is NULL");
        st = WB_EINVAL;
    } else if (!t->mpi) {
        wbi_tmsg(tw, "wb_trainer_mpi_schedule: the trainer has no "
                 "communicator (wb_trainer_set_comm)");
        st = WB_EINVAL;
    } else {
        *out = t->mpi->dynamic ? WB_MPI_DYNAMIC : WB_MPI_STATIC;
    }
    wbi_trainer_leave(t);
    return st;
}

/* ---- a step --------------------------------------------------------------- */

/* this process's inner solves (its threads), saturated */
static long long local_solves(const wb_trainer *t) {
    long long s = 0;
    for (int k = 0; k < t->nthreads; k++) s += t->solves[k];
    return s < WBI_SOLVES_MAX ? s : WBI_SOLVES_MAX;
}

/* t->solves_other = the sum of the other ranks' counts in M->rsolves */
static void others_from(wb_trainer *t) {
    const struct wbi_mpi *M = t->mpi;
    long long o = 0;
    for (int r = 0; r < M->size; r++) {
        if (r == M->rank) continue;
        o += M->rsolves[r];
        if (o > WBI_SOLVES_MAX) o = WBI_SOLVES_MAX;
    }
    t->solves_other = o;
}

/* Slots to ranks, identically on every rank (see the top of the file):
   largest expected cost first, each onto the least-loaded rank. The cost
   of example i: n_i + 64 (64: a fixed part per example, callbacks and
   small factorizations). Which rank solves a slot never changes a result,
   only the time. (The CPU time an example took the last time it was
   trained was tried as the cost: on OTB-100 it balanced worse than n, see
   docs/PERFORMANCE.md.) */
static void by_cost(wb_trainer *t, int nb) {
    struct wbi_mpi *M = t->mpi;
    const int *ex = t->perm + t->pos;
    double *c = M->cost;
    /* insertion sort of the slots by cost descending, slot ascending */
    for (int b = 0; b < nb; b++) {
        int k = b;
        c[b] = (double)t->n_of[ex[b]] + 64.0;
        while (k > 0 && c[M->order[k - 1]] < c[b]) {
            M->order[k] = M->order[k - 1];
            k--;
        }
        M->order[k] = b;
    }
}

static void assign(wb_trainer *t, int nb) {
    struct wbi_mpi *M = t->mpi;
    const double *c = M->cost;
    by_cost(t, nb);
    for (int r = 0; r < M->size; r++) M->load[r] = 0.0;
    for (int k = 0; k < nb; k++) {
        int b = M->order[k], best = 0;
        for (int r = 1; r < M->size; r++)
            if (M->load[r] < M->load[best]) best = r;
        M->owner[b] = best;
        M->load[best] += c[b];
    }
}

/* Posts the moves of warm starts from their holders to the ranks of their
   slots: receives in M->req[0 .. *nrecv), sends in M->req[batch ..
   batch + *nsend). */
static void move_warm_starts(wb_trainer *t, int nb, int *nrecv, int *nsend) {
    struct wbi_mpi *M = t->mpi;
    *nrecv = *nsend = 0;
    if (!t->s.warm_start) return;
    MPI_Request *sends = M->req + t->batch;
    for (int b = 0; b < nb; b++) {
        int i = t->perm[t->pos + b], src = M->holder[i], dst = M->owner[b];
        if (!t->has_x[i] || src < 0 || src == dst) continue;
        double *x = t->xs + t->off[i];
        if (M->rank == src)
            MPI_Isend(x, t->n_of[i], MPI_DOUBLE, dst, b, M->comm, &sends[(*nsend)++]);
        else if (M->rank == dst) {
            MPI_Irecv(x, t->n_of[i], MPI_DOUBLE, src, b, M->comm, &M->req[(*nrecv)++]);
            M->exchange_bytes += (double)t->n_of[i] * sizeof(double);
        }
    }
}

/* 1 when slot b's warm start comes from another rank this step */
static int arriving(const wb_trainer *t, int b) {
    const struct wbi_mpi *M = t->mpi;
    int i = t->perm[t->pos + b];
    return t->s.warm_start && t->has_x[i] && M->holder[i] >= 0 &&
           M->holder[i] != M->owner[b];
}

/* the end of a step, either schedule: the new holders (a slot that
   succeeded left its minimizer on its rank: train_example writes the warm
   start only then) and the other ranks' solve counts */
static void batch_done(wb_trainer *t, int nb, int nm) {
    struct wbi_mpi *M = t->mpi;
    M->examples += nm;
    M->steps++;
    others_from(t);
    if (t->s.warm_start)
        for (int b = 0; b < nb; b++)
            if (t->okbuf[b]) {
                int i = t->perm[t->pos + b];
                M->holder[i] = M->owner[b];
                t->has_x[i] = 1;
            }
}

/* ---- the dynamic schedule's parts --------------------------------------- */

/* runs the chunk[0..m) of slots or examples this rank took */
typedef void (*take_fn)(wb_trainer *t, void *ctx, const int *chunk, int m);

/* Takes slots from the counter until none is left (see the top of the
   file): T = nthreads at a time, slots order[v - base ..] of order[0..n),
   each chunk run by run(t, ctx, chunk, m) and appended to mine[*nm ..).
   Returns the sum of this rank's increments of the counter; *tw += the
   seconds spent waiting for the counter. Inside MPI_Win_lock_all(cwin). */
static long long take_slots(wb_trainer *t, int n, const int *order, int *mine,
                            int *nm, take_fn run, void *ctx, double *tw) {
    struct wbi_mpi *M = t->mpi;
    long long inc = t->nthreads, v = 0, added = 0;
    int T = t->nthreads;
    for (;;) {
        double t0 = MPI_Wtime();
        MPI_Request rq;
        MPI_Rget_accumulate(&inc, 1, MPI_LONG_LONG, &v, 1, MPI_LONG_LONG, 0, 0,
                            1, MPI_LONG_LONG, MPI_SUM, M->cwin, &rq);
        wait_asleep(1, &rq);
        *tw += MPI_Wtime() - t0;
        added += inc;
        long long k0 = v - M->base;
        if (k0 >= n) break;
        int m = n - k0 < T ? (int)(n - k0) : T;
        int *chunk = mine + *nm;
        for (int j = 0; j < m; j++) chunk[j] = order[k0 + j];
        run(t, ctx, chunk, m);
        *nm += m;
    }
    return added;
}

/* Every rank's block to every rank: this rank's bytes, packed at buf,
   move to its offset, and after the call buf holds rank r's block at
   M->disp[r] (M->cnt[r] bytes). Two collectives, waited for asleep: the
   sizes (MPI_Iallgather), then the blocks (MPI_Iallgatherv). Returns the
   bytes received from the other ranks. */
static double exchange_blocks(struct wbi_mpi *M, unsigned char *buf, int bytes) {
    int R = M->size, me = M->rank, off = 0;
    MPI_Request rq;
    MPI_Iallgather(&bytes, 1, MPI_INT, M->cnt, 1, MPI_INT, M->comm, &rq);
    wait_asleep(1, &rq);
    for (int r = 0; r < R; r++) {
        M->disp[r] = off;
        off += M->cnt[r];
    }
    memmove(buf + M->disp[me], buf, (size_t)bytes);
    MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, M->cnt, M->disp,
                    MPI_BYTE, M->comm, &rq);
    wait_asleep(1, &rq);
    return (double)(off - bytes) + 4.0 * (R - 1);
}

/* a received index out of range or seen twice: the one-sided calls broke
   their contract, and no result could be trusted */
static void broken_counter(struct wbi_mpi *M, const char *what, long long k,
                           int from) {
    fprintf(stderr, "libwiberg: rank %d: the dynamic schedule received %s %lld "
            "from rank %d twice or out of range, or missed one (the MPI "
            "library's fetch-and-add is not atomic); aborting\n", M->rank,
            what, k, from);
    MPI_Abort(M->comm, 1);
}

/* a training chunk: the warm starts held by other ranks (MPI_Rget from
   their xs windows, waited for asleep), then the slots on the threads */
static void run_train_chunk(wb_trainer *t, void *ctx, const int *chunk, int m) {
    (void)ctx;
    struct wbi_mpi *M = t->mpi;
    int ng = 0;
    double t0 = MPI_Wtime();
    for (int j = 0; j < m; j++) {
        int b = chunk[j], i = t->perm[t->pos + b], h = M->holder[i];
        if (!t->s.warm_start || !t->has_x[i] || h < 0 || h == M->rank) continue;
        MPI_Rget(t->xs + t->off[i], t->n_of[i], MPI_DOUBLE, h, (MPI_Aint)t->off[i],
                 t->n_of[i], MPI_DOUBLE, M->xwin, &M->req[ng++]);
        M->exchange_bytes += (double)t->n_of[i] * sizeof(double);
    }
    if (ng) wait_asleep(ng, M->req);
    M->warm_s += MPI_Wtime() - t0;
    wbi_trainer_run_slots(t, chunk, m);
}

/* The dynamic schedule of a batch (see the top of the file). Records: the
   slot (a long long), ok, L, g[p]; the block's tail: the rank's solve
   count and the sum of its counter increments. */
static void dynamic_batch(wb_trainer *t, int nb) {
    struct wbi_mpi *M = t->mpi;
    int p = t->p, R = M->size, me = M->rank, nm = 0;
    size_t rec = M->rec + 8, P = (size_t)p * sizeof(double);
    by_cost(t, nb);
    double tw = 0.0;
    MPI_Win_lock_all(MPI_MODE_NOCHECK, M->cwin);
    if (R > 1) {
        MPI_Win_lock_all(MPI_MODE_NOCHECK, M->xwin);
        MPI_Win_sync(M->xwin); /* this rank's stores to xs (the last steps'
                                  solves) into the window's public copy */
    }
    long long added = take_slots(t, nb, M->order, M->mine, &nm, run_train_chunk,
                                 NULL, &tw);
    if (R > 1) MPI_Win_unlock_all(M->xwin);
    MPI_Win_unlock_all(M->cwin);
    M->warm_s += tw;
    /* this rank's block, packed at pk */
    unsigned char *at = M->pk;
    for (int k = 0; k < nm; k++) {
        int b = M->mine[k];
        long long bb = b;
        double ok = t->okbuf[b] ? 1.0 : 0.0;
        memcpy(at, &bb, 8);
        memcpy(at + 8, &ok, 8);
        memcpy(at + 16, &t->lbuf[b], 8);
        memcpy(at + 24, t->gbuf + (size_t)b * p, P);
        at += rec;
    }
    long long tail[2] = {local_solves(t), added};
    memcpy(at, tail, 16);
    double t0 = MPI_Wtime();
    M->exchange_bytes += exchange_blocks(M, M->pk, nm * (int)rec + 16);
    M->gather_s += MPI_Wtime() - t0;
    for (int b = 0; b < nb; b++) M->owner[b] = -1;
    int seen = 0;
    for (int r = 0; r < R; r++) {
        at = M->pk + M->disp[r];
        int k = (M->cnt[r] - 16) / (int)rec;
        for (int j = 0; j < k; j++, at += rec) {
            long long bb;
            memcpy(&bb, at, 8);
            if (bb < 0 || bb >= nb || M->owner[bb] >= 0) broken_counter(M, "slot", bb, r);
            M->owner[bb] = r;
            seen++;
            if (r == me) continue;
            double ok;
            memcpy(&ok, at + 8, 8);
            t->okbuf[bb] = ok != 0.0;
            memcpy(&t->lbuf[bb], at + 16, 8);
            memcpy(t->gbuf + (size_t)bb * p, at + 24, P);
        }
        memcpy(tail, at, 16);
        M->rsolves[r] = tail[0];
        M->base += tail[1];
    }
    if (seen != nb) broken_counter(M, "a batch of slots, size", nb, me);
    batch_done(t, nb, nm);
}

static void static_batch(wb_trainer *t, int nb) {
    struct wbi_mpi *M = t->mpi;
    int p = t->p, R = M->size, me = M->rank;
    size_t rec = M->rec, P = (size_t)p * sizeof(double);
    assign(t, nb);
    int nrecv, nsend;
    move_warm_starts(t, nb, &nrecv, &nsend);
    /* this rank's slots: first those whose warm start is here, while the
       others' arrive; then those (the order changes no result: each slot
       has its own result, packed below in slot order) */
    int nm = 0, ready;
    for (int b = 0; b < nb; b++)
        if (M->owner[b] == me && !arriving(t, b)) M->mine[nm++] = b;
    ready = nm;
    for (int b = 0; b < nb; b++)
        if (M->owner[b] == me && arriving(t, b)) M->mine[nm++] = b;
    wbi_trainer_run_slots(t, M->mine, ready);
    double t0 = MPI_Wtime();
    if (nrecv) wait_asleep(nrecv, M->req);
    M->warm_s += MPI_Wtime() - t0;
    wbi_trainer_run_slots(t, M->mine + ready, nm - ready);
    /* each rank's block: its slots in increasing order, (ok, L, g) each,
       then its solve count */
    int off = 0;
    for (int r = 0; r < R; r++) {
        int k = 0;
        for (int b = 0; b < nb; b++) k += M->owner[b] == r;
        M->cnt[r] = k * (int)rec + 8;
        M->disp[r] = off;
        off += M->cnt[r];
    }
    /* in increasing slot order, as every rank reads the block back */
    unsigned char *at = M->pk + M->disp[me];
    for (int b = 0; b < nb; b++) {
        if (M->owner[b] != me) continue;
        double ok = t->okbuf[b] ? 1.0 : 0.0;
        memcpy(at, &ok, 8);
        memcpy(at + 8, &t->lbuf[b], 8);
        memcpy(at + 16, t->gbuf + (size_t)b * p, P);
        at += rec;
    }
    long long mys = local_solves(t);
    memcpy(at, &mys, 8);
    /* one collective, waited for asleep: it ends when the slowest share
       is done and sent */
    t0 = MPI_Wtime();
    MPI_Request rq;
    MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, M->pk, M->cnt, M->disp,
                    MPI_BYTE, M->comm, &rq);
    wait_asleep(1, &rq);
    M->gather_s += MPI_Wtime() - t0;
    if (nsend) wait_asleep(nsend, M->req + t->batch); /* long received */
    M->exchange_bytes += (double)(off - M->cnt[me]);
    for (int r = 0; r < R; r++) {
        at = M->pk + M->disp[r];
        for (int b = 0; b < nb; b++) {
            if (M->owner[b] != r) continue;
            if (r != me) {
                double ok;
                memcpy(&ok, at, 8);
                t->okbuf[b] = ok != 0.0;
                memcpy(&t->lbuf[b], at + 8, 8);
                memcpy(t->gbuf + (size_t)b * p, at + 16, P);
            }
            at += rec;
        }
        memcpy(&M->rsolves[r], at, 8);
    }
    batch_done(t, nb, nm);
}

void wbi_mpi_batch(wb_trainer *t, int nb) {
    if (t->mpi->dynamic) dynamic_batch(t, nb);
    else static_batch(t, nb);
}

/* ---- evaluation ----------------------------------------------------------- */

/* an evaluation chunk */
typedef struct {
    const wb_dataset *d;
    const double *w;
    double *losses;
} eval_ctx;

static void run_eval_chunk(wb_trainer *t, void *ctx, const int *chunk, int m) {
    eval_ctx *E = ctx;
    wbi_trainer_run_eval_list(t, E->d, E->w, E->losses, chunk, m);
}

typedef struct {
    double c;
    int i;
} cost_of;

/* cost descending, index ascending: a total order, the same on every rank */
static int by_cost_desc(const void *a, const void *b) {
    const cost_of *x = a, *y = b;
    if (x->c != y->c) return x->c > y->c ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* The dynamic schedule of an evaluation: examples by n + 64, largest
   first, taken from the counter like a batch's slots; records (i, L_i);
   the tail as a batch's. 0 when the scratch could not be had on every
   rank (the caller shares out blocks instead). */
static int dynamic_eval(wb_trainer *t, const wb_dataset *d, const double *w,
                        double *losses) {
    struct wbi_mpi *M = t->mpi;
    const wb_settings *a = &t->s.solver;
    int cnt = d->count, R = M->size, me = M->rank;
    size_t pkn = (size_t)cnt * 16 + 16 * (size_t)R;
    cost_of *co = wbi_alloc(a, (size_t)cnt, sizeof *co);
    int *order = wbi_alloc(a, (size_t)cnt, sizeof(int));
    int *mine = wbi_alloc(a, (size_t)cnt, sizeof(int));
    unsigned char *pk = wbi_alloc(a, pkn, 1);
    int ok = co && order && mine && pk && pkn <= (size_t)INT_MAX, all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, M->comm);
    if (all) {
        for (int i = 0; i < cnt; i++) {
            wb_energy e;
            memset(&e, 0, sizeof e);
            /* the energy callback succeeded for every example just before
               (evaluate_into's checks); n = 0 if it fails now */
            co[i].c = (d->energy(d->user, i, &e) == 0 ? (double)e.n : 0.0) + 64.0;
            co[i].i = i;
        }
        qsort(co, (size_t)cnt, sizeof *co, by_cost_desc);
        for (int k = 0; k < cnt; k++) order[k] = co[k].i;
        eval_ctx E = {d, w, losses};
        int nm = 0;
        double tw = 0.0;
        MPI_Win_lock_all(MPI_MODE_NOCHECK, M->cwin);
        long long added = take_slots(t, cnt, order, mine, &nm, run_eval_chunk, &E, &tw);
        MPI_Win_unlock_all(M->cwin);
        M->warm_s += tw;
        unsigned char *at = pk;
        for (int k = 0; k < nm; k++, at += 16) {
            long long ii = mine[k];
            memcpy(at, &ii, 8);
            memcpy(at + 8, &losses[mine[k]], 8);
        }
        long long tail[2] = {local_solves(t), added};
        memcpy(at, tail, 16);
        M->exchange_bytes += exchange_blocks(M, pk, nm * 16 + 16);
        /* mine as flags now: each example seen once */
        memset(mine, 0, (size_t)cnt * sizeof(int));
        int seen = 0;
        for (int r = 0; r < R; r++) {
            at = pk + M->disp[r];
            int k = (M->cnt[r] - 16) / 16;
            for (int j = 0; j < k; j++, at += 16) {
                long long ii;
                memcpy(&ii, at, 8);
                if (ii < 0 || ii >= cnt || mine[ii]) broken_counter(M, "example", ii, r);
                mine[ii] = 1;
                seen++;
                if (r != me) memcpy(&losses[ii], at + 8, 8);
            }
            memcpy(tail, at, 16);
            M->rsolves[r] = tail[0];
            M->base += tail[1];
        }
        if (seen != cnt) broken_counter(M, "an evaluation of examples, count", cnt, me);
        others_from(t);
    }
    wbi_free(a, co);
    wbi_free(a, order);
    wbi_free(a, mine);
    wbi_free(a, pk);
    return all;
}

void wbi_mpi_eval(wb_trainer *t, const wb_dataset *d, const double *w,
                  double *losses) {
    struct wbi_mpi *M = t->mpi;
    if (M->dynamic && dynamic_eval(t, d, w, losses)) return;
    long long cnt = d->count, R = M->size;
    for (int r = 0; r < M->size; r++) {
        int lo = (int)(cnt * r / R), hi = (int)(cnt * (r + 1) / R);
        M->cnt[r] = hi - lo;
        M->disp[r] = lo;
    }
    wbi_trainer_run_eval(t, d, w, losses, M->disp[M->rank], M->cnt[M->rank]);
    MPI_Request rq;
    MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, losses, M->cnt, M->disp,
                    MPI_DOUBLE, M->comm, &rq);
    wait_asleep(1, &rq);
    long long mys = local_solves(t);
    MPI_Allgather(&mys, 1, MPI_LONG_LONG, M->rsolves, 1, MPI_LONG_LONG, M->comm);
    others_from(t);
}

/* ---- checkpoints ---------------------------------------------------------- */

wb_status wbi_mpi_save(wb_trainer *t, const char *path) {
    struct wbi_mpi *M = t->mpi;
    int me = M->rank;
    /* warm starts held by ranks other than 0 (or every rank) go to rank 0,
       each rank's in example order */
    long long total = 0;
    for (int r = 0; r < M->size; r++) M->cnt[r] = 0;
    for (int i = 0; i < t->count; i++) {
        int h = M->holder[i];
        if (h > 0 && t->has_x[i]) M->cnt[h] += t->n_of[i];
    }
    for (int r = 0; r < M->size; r++) {
        M->disp[r] = (int)total;
        total += M->cnt[r];
    }
    if (total > 0) {
        if (me > 0) {
            size_t k = 0;
            for (int i = 0; i < t->count; i++)
                if (M->holder[i] == me && t->has_x[i]) {
                    memcpy(M->xsbuf + k, t->xs + t->off[i],
                           (size_t)t->n_of[i] * sizeof(double));
                    k += (size_t)t->n_of[i];
                }
        }
        MPI_Gatherv(me == 0 ? MPI_IN_PLACE : M->xsbuf, M->cnt[me], MPI_DOUBLE,
                    M->xsbuf, M->cnt, M->disp, MPI_DOUBLE, 0, M->comm);
        if (me == 0) {
            for (int r = 1; r < M->size; r++) {
                size_t k = (size_t)M->disp[r];
                for (int i = 0; i < t->count; i++)
                    if (M->holder[i] == r && t->has_x[i]) {
                        memcpy(t->xs + t->off[i], M->xsbuf + k,
                               (size_t)t->n_of[i] * sizeof(double));
                        k += (size_t)t->n_of[i];
                    }
            }
        }
    }
    int st = me == 0 ? (int)wbi_trainer_save_file(t, path) : 0;
    barrier_asleep(M); /* while rank 0 writes and flushes */
    MPI_Bcast(&st, 1, MPI_INT, 0, M->comm);
    MPI_Bcast(t->msg, WBI_MSG_LEN, MPI_CHAR, 0, M->comm);
    return (wb_status)st;
}

wb_status wbi_mpi_load(wb_trainer *t, const char *path) {
    struct wbi_mpi *M = t->mpi;
    size_t size = wbi_ckpt_bufsize(t);
    unsigned char *buf = wbi_alloc(&t->s.solver, size, 1);
    int ok = buf != NULL, all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, M->comm);
    if (!all) {
        wbi_free(&t->s.solver, buf);
        wbi_tmsg(t, "wb_trainer_load: out of memory (on this or another rank)");
        return WB_ENOMEM;
    }
    long long hdr[2] = {WB_OK, 0};
    if (M->rank == 0) {
        size_t got = 0;
        hdr[0] = wbi_ckpt_read(t, path, buf, &got);
        hdr[1] = (long long)got;
        if (got > (size_t)INT_MAX) {
            wbi_tmsg(t, "wb_trainer_load: %s is larger than one MPI message", path);
            hdr[0] = WB_EFORMAT;
        }
    }
    barrier_asleep(M); /* while rank 0 reads */
    MPI_Bcast(hdr, 2, MPI_LONG_LONG, 0, M->comm);
    wb_status st = (wb_status)hdr[0];
    if (st != WB_OK) {
        MPI_Bcast(t->msg, WBI_MSG_LEN, MPI_CHAR, 0, M->comm);
    } else {
        MPI_Bcast(buf, (int)hdr[1], MPI_BYTE, 0, M->comm);
        /* the same bytes, the same checks: the same answer on every rank */
        st = wbi_ckpt_apply(t, buf, (size_t)hdr[1], path);
    }
    wbi_free(&t->s.solver, buf);
    if (st != WB_OK) return st;
    for (int i = 0; i < t->count; i++) M->holder[i] = -1;
    /* the file's solve count once, on rank 0 */
    if (M->rank != 0) {
        t->solves_other = t->solves[0];
        t->solves[0] = 0;
    }
    return WB_OK;
}
