#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* sched_setaffinity, CPU_SET */
#endif
#define _POSIX_C_SOURCE 200809L
/* The training loop: recovers a known w, is deterministic across thread
 * counts and across checkpoint/resume, refuses corrupt checkpoints, skips
 * failing examples, and its finite-difference mode agrees with the implicit
 * gradient. */
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* _GNU_SOURCE makes glibc's <sys/types.h> name a type quad_t:
   energies.h's own goes by another name in this file */
#include <sys/types.h>
#define quad_t test_quad_t
#include "energies.h"

/* Example i: E_i(x; w) = 1/2 x'Q_i x - x'(C_i w + d_i) (Q_i SPD), so
   x*_i(w) = Q_i^-1 (C_i w + d_i); target y_i = x*_i(w_true);
   loss L_i = 1/2 ||x - y_i||^2. The training objective is a convex quadratic
   in w with minimum 0 at w_true. */
enum { NX = 3, PW = 2, NEX = 24 };
typedef struct {
    quad_t q[NEX];
    double y[NEX][NX];
    int fail_example; /* energy callback of this example fails (-1: none) */
    int nan_loss;     /* the loss of this example is NaN (-1: none)       */
    int nan_mixed;    /* its mixed derivative B holds NaN (-1: none)      */
    int fail_all;     /* 1: every example's energy callback fails         */
    double loss_scale; /* every loss (and its gradient) times this; 1     */
    void (*hook)(void *arg); /* called from every loss callback (NULL)   */
    void *hook_arg;
} qset_t;

static void qset_init(qset_t *S, const double *w_true) {
    S->fail_example = -1;
    S->nan_loss = -1;
    S->nan_mixed = -1;
    S->fail_all = 0;
    S->loss_scale = 1.0;
    S->hook = NULL;
    S->hook_arg = NULL;
    for (int i = 0; i < NEX; i++) {
        quad_init(&S->q[i], NX, PW, 100 + (uint64_t)i);
        double *y = S->y[i];
        for (int r = 0; r < NX; r++) {
            y[r] = S->q[i].d[r];
            for (int j = 0; j < PW; j++) y[r] += S->q[i].C[j * NX + r] * w_true[j];
        }
        assert_int_equal(ref_spd_solve(NX, S->q[i].A, 0.0, 1, y), 0);
    }
}
static void qset_free(qset_t *S) {
    for (int i = 0; i < NEX; i++) quad_free(&S->q[i]);
}
static int fail_vg(void *u, const double *x, const double *w, double *e,
                   double *g) {
    (void)u; (void)x; (void)w; (void)e; (void)g;
    return 5;
}
static int nan_mixed(void *u, const double *x, const double *w, double *B) {
    quad_mixed(u, x, w, B);
    B[0] = NAN;
    return 0;
}
static int qs_energy(void *u, int i, wb_energy *e) {
    qset_t *S = u;
    *e = quad_energy(&S->q[i]);
    if (i == S->fail_example || S->fail_all) e->value_grad = fail_vg;
    if (i == S->nan_mixed) {
        e->mixed = nan_mixed;
        e->mixed_vjp = NULL;
    }
    return 0;
}
static int qs_start(void *u, int i, double *x0) {
    (void)u; (void)i;
    for (int r = 0; r < NX; r++) x0[r] = 0.0;
    return 0;
}
static int qs_loss(void *u, int i, const double *x, double *l, double *dl) {
    qset_t *S = u;
    if (S->hook) S->hook(S->hook_arg);
    sq_loss(NX, x, S->y[i], l, dl);
    *l *= S->loss_scale;
    if (dl)
        for (int r = 0; r < NX; r++) dl[r] *= S->loss_scale;
    if (i == S->nan_loss) *l = NAN;
    return 0;
}
static wb_dataset qs_dataset(qset_t *S, int count) {
    wb_dataset d = {count, S, qs_energy, qs_start, qs_loss};
    return d;
}

static const double W_TRUE[PW] = {1.7, -0.6};

static void base_settings(wb_train_settings *s) {
    wb_train_settings_default(s);
    s->solver.lambda = 0.01;
    s->optimizer = WB_OPT_ADAM;
    s->lr = 0.05;
    s->batch_size = 5;
    s->epochs = 4;
    s->seed = 42;
}

/* the data set of all NEX examples of W_TRUE into *S, and (s not NULL) the
   base settings */
static wb_dataset qs_setup(qset_t *S, wb_train_settings *s) {
    qset_init(S, W_TRUE);
    if (s) base_settings(s);
    return qs_dataset(S, NEX);
}

/* path: a mkstemp template, made an empty file of that name */
static void temp_file(char *path) {
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
}

/* dir: a mkdtemp template, made a new directory; ck = dir/ckpt */
static void temp_dir(char *dir, char *ck, size_t cap) {
    assert_non_null(mkdtemp(dir));
    snprintf(ck, cap, "%s/ckpt", dir);
}

static void training_recovers_the_generating_parameters(void **st) {
    (void)st;
    qset_t S;
    wb_dataset d = qs_setup(&S, NULL);
    wb_train_settings s;
    wb_train_settings_default(&s);
    s.solver.lambda = 0.0;       /* exact gradient: H = Q_i is SPD */
    s.solver.grad_tol = 1e-12;
    s.optimizer = WB_OPT_ADAM;
    s.lr = 0.05;
    s.schedule = WB_LR_COSINE;
    s.batch_size = 6;
    s.epochs = 150;
    double w0[PW] = {0, 0}, w[PW];
    wb_trainer *t = NULL;
    assert_int_equal(wb_trainer_create(&t, &d, w0, &s), WB_OK);
    wb_train_info info;
    assert_int_equal(wb_train(t, &info), WB_OK);
    assert_int_equal(wb_trainer_w(t, w), WB_OK);
    printf("    recovered w = (%.8f, %.8f), true (%.1f, %.1f), %lld steps, "
           "%lld solves\n", w[0], w[1], W_TRUE[0], W_TRUE[1], info.step,
           info.inner_solves);
    for (int j = 0; j < PW; j++) wb_assert_close(w[j], W_TRUE[j], 1e-4, 0);
    assert_int_equal(info.skipped_total, 0);
    assert_int_equal(info.step, 150 * 4);
    assert_int_equal(wb_trainer_step(t, NULL), WB_DONE);
    wb_trainer_destroy(t);
    qset_free(&S);
}

static void run_steps(wb_trainer *t, int k) {
    for (int i = 0; i < k; i++) {
        wb_status r = wb_trainer_step(t, NULL);
        assert_true(r == WB_OK || r == WB_DONE);
    }
}

/* a new trainer of d from w0, trained to the end: its w (and *info) */
static void train_w(const wb_dataset *d, const double *w0,
                    const wb_train_settings *s, wb_train_info *info,
                    double *w) {
    wb_trainer *t = NULL;
    assert_int_equal(wb_trainer_create(&t, d, w0, s), WB_OK);
    assert_int_equal(wb_train(t, info), WB_OK);
    assert_int_equal(wb_trainer_w(t, w), WB_OK);
    wb_trainer_destroy(t);
}

static void one_and_two_threads_give_identical_weights(void **st) {
    (void)st;
    qset_t S;
    wb_dataset d = qs_setup(&S, NULL);
    double w0[PW] = {0.5, 0.5}, a[PW], b[PW];
    for (int threads = 1; threads <= 2; threads++) {
        wb_train_settings s;
        base_settings(&s);
        s.threads = threads;
        s.optimizer = WB_OPT_MOMENTUM;
        train_w(&d, w0, &s, NULL, threads == 1 ? a : b);
    }
    assert_memory_equal(a, b, sizeof a);
    qset_free(&S);
}

static void resume_from_checkpoint_equals_uninterrupted_run(void **st) {
    (void)st;
    qset_t S;
    wb_train_settings s;
    wb_dataset d = qs_setup(&S, &s);
    double w0[PW] = {0.0, 0.0}, full[PW], resumed[PW];
    char path[] = "/tmp/wb_ckpt_XXXXXX";
    temp_file(path);
    s.threads = 2;
    train_w(&d, w0, &s, NULL, full);

    /* 7 steps (mid-epoch), save, throw away, resume in a new trainer */
    wb_trainer *t = NULL;
    assert_int_equal(wb_trainer_create(&t, &d, w0, &s), WB_OK);
    run_steps(t, 7);
    assert_int_equal(wb_trainer_save(t, path), WB_OK);
    wb_trainer_destroy(t);
    assert_int_equal(wb_trainer_create(&t, &d, w0, &s), WB_OK);
    assert_int_equal(wb_trainer_load(t, path), WB_OK);
    wb_train_info info;
    assert_int_equal(wb_trainer_info(t, &info), WB_OK);
    assert_int_equal(info.step, 7);
    assert_int_equal(wb_train(t, NULL), WB_OK);
    assert_int_equal(wb_trainer_w(t, resumed), WB_OK);
    wb_trainer_destroy(t);
    assert_memory_equal(full, resumed, sizeof full);
    remove(path);
    qset_free(&S);
}

static void corrupt_or_truncated_checkpoint_is_refused(void **st) {
    (void)st;
    qset_t S;
    wb_train_settings s;
    wb_dataset d = qs_setup(&S, &s);
    double w0[PW] = {0.0, 0.0}, before[PW], after[PW];
    char path[] = "/tmp/wb_ckpt_XXXXXX";
    temp_file(path);
    wb_trainer *t = NULL;
    assert_int_equal(wb_trainer_create(&t, &d, w0, &s), WB_OK);
    run_steps(t, 3);
    assert_int_equal(wb_trainer_save(t, path), WB_OK);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char buf[8192];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_true(len > 100 && len < sizeof buf);
    run_steps(t, 2);
    assert_int_equal(wb_trainer_w(t, before), WB_OK);
    /* every truncation and a bit flip at every 7th byte */
    for (size_t cut = 0; cut < len; cut += (cut < 64 ? 1 : 37)) {
        f = fopen(path, "wb");
        fwrite(buf, 1, cut, f);
        fclose(f);
        assert_int_equal(wb_trainer_load(t, path), WB_EFORMAT);
    }
    for (size_t k = 0; k < len; k += 7) {
        buf[k] ^= 0x10;
        f = fopen(path, "wb");
        fwrite(buf, 1, len, f);
        fclose(f);
        buf[k] ^= 0x10;
        assert_int_equal(wb_trainer_load(t, path), WB_EFORMAT);
    }
    assert_non_null(strstr(wb_trainer_message(t), path));
    /* a refused load leaves the trainer as it was */
    assert_int_equal(wb_trainer_w(t, after), WB_OK);
    assert_memory_equal(before, after, sizeof before);
    remove(path);
    assert_int_equal(wb_trainer_load(t, path), WB_EIO);
    assert_int_equal(wb_trainer_load(t, NULL), WB_EINVAL);
    /* a checkpoint of another data set size is refused */
    wb_trainer *t2 = NULL;
    wb_dataset d2 = qs_dataset(&S, NEX - 1);
    assert_int_equal(wb_trainer_create(&t2, &d2, w0, &s), WB_OK);
    assert_int_equal(wb_trainer_save(t2, path), WB_OK);
    assert_int_equal(wb_trainer_load(t, path), WB_EFORMAT);
    wb_trainer_destroy(t2);
    wb_trainer_destroy(t);
    remove(path);
    qset_free(&S);
}

static void failing_examples_are_skipped_and_counted(void **st) {
    (void)st;
    qset_t S;
    qset_init(&S, W_TRUE);
    S.fail_example = 5;
    wb_dataset d = qs_dataset(&S, NEX);
    wb_train_settings s;
    base_settings(&s);
    s.epochs = 3;
    double w0[PW] = {0, 0}, w[PW];
    wb_trainer *t = NULL;
    /* create must survive the failing value_grad (it only reads sizes) */
    assert_int_equal(wb_trainer_create(&t, &d, w0, &s), WB_OK);
    wb_train_info info;
    assert_int_equal(wb_train(t, &info), WB_OK);
    assert_int_equal(info.skipped_total, 3); /* once per epoch */
    assert_int_equal(wb_trainer_w(t, w), WB_OK);
    assert_true(w[0] != 0.0 && isfinite(w[0]) && isfinite(w[1]));
    double mean;
    int failed;
    assert_int_equal(wb_trainer_evaluate(t, &d, w, &mean, &failed, NULL), WB_OK);
    assert_int_equal(failed, 1);
    assert_true(isfinite(mean));
    wb_trainer_destroy(t);
    /* a NaN loss and a NaN in the mixed derivative: two more examples
       skipped and counted every epoch; w stays finite */
    S.nan_loss = 7;
    S.nan_mixed = 11;
    assert_int_equal(wb_trainer_create(&t, &d, w0, &s), WB_OK);
    assert_int_equal(wb_train(t, &info), WB_OK);
    assert_int_equal(info.skipped_total, 9);
    assert_int_equal(wb_trainer_w(t, w), WB_OK);
    assert_true(isfinite(w[0]) && isfinite(w[1]));
    wb_trainer_destroy(t);
    qset_free(&S);
}

/* One SGD step with lr = 1 moves w by minus the mean gradient: the implicit
   and the finite-difference backward agree. */
static void finite_difference_backward_agrees_with_implicit(void **st) {
    (void)st;
    qset_t S;
    wb_dataset d = qs_setup(&S, NULL);
    double w0[PW] = {0.3, 0.9}, wi[PW], wf[PW];
    for (int mode = 0; mode < 2; mode++) {
        wb_train_settings s;
        wb_train_settings_default(&s);
        s.solver.lambda = 0.0;
        s.solver.grad_tol = 1e-13;
        s.optimizer = WB_OPT_SGD;
        s.lr = 1.0;
        s.batch_size = NEX;
        s.epochs = 1;
        s.backward = mode ? WB_BACKWARD_FINITE_DIFF : WB_BACKWARD_IMPLICIT;
        wb_trainer *t = NULL;
        assert_int_equal(wb_trainer_create(&t, &d, w0, &s), WB_OK);
        wb_train_info info;
        assert_int_equal(wb_trainer_step(t, &info), WB_DONE);
        assert_int_equal(info.inner_solves, mode ? NEX * (1 + 2 * PW) : NEX);
        assert_int_equal(wb_trainer_w(t, mode ? wf : wi), WB_OK);
        wb_trainer_destroy(t);
    }
    for (int j = 0; j < PW; j++)
        wb_assert_close(wf[j] - w0[j], wi[j] - w0[j], 1e-8, 1e-6);
    assert_true(fabs(wi[0] - w0[0]) > 1e-3);
    qset_free(&S);
}

static void bounds_hold_and_validation_keeps_best(void **st) {
    (void)st;
    qset_t S;
    qset_init(&S, W_TRUE);
    wb_dataset d = qs_dataset(&S, 16), v = qs_dataset(&S, NEX);
    v.count = NEX; /* validation includes 8 unseen examples */
    wb_train_settings s;
    base_settings(&s);
    double lo[PW] = {0.0, 0.0}, hi[PW] = {1.0, 10.0}, w0[PW] = {0.5, 0.5}, w[PW], b[PW];
    s.lower = lo;
    s.upper = hi;
    s.validation = &v;
    s.validate_every = 2;
    s.epochs = 10;
    wb_trainer *t = NULL;
    assert_int_equal(wb_trainer_create(&t, &d, w0, &s), WB_OK);
    wb_train_info info;
    assert_int_equal(wb_train(t, &info), WB_OK);
    assert_int_equal(wb_trainer_w(t, w), WB_OK);
    /* w_true = (1.7, -0.6) lies outside: the optimum is on the bounds */
    assert_true(w[0] <= 1.0 && w[0] >= 0.0 && w[1] >= 0.0 && w[1] <= 10.0);
    wb_assert_close(w[0], 1.0, 1e-12, 0);
    double best;
    assert_int_equal(wb_trainer_best_w(t, b, &best), WB_OK);
    assert_true(isfinite(best) && info.best_step > 0);
    /* the kept w really has the reported validation loss */
    double mean;
    assert_int_equal(wb_trainer_evaluate(t, &v, b, &mean, NULL, NULL), WB_OK);
    wb_assert_close(mean, best, 1e-12, 1e-9);
    assert_true(best <= info.val_loss + 1e-15);
    wb_trainer_destroy(t);
    /* w0 outside the bounds, and bad settings, are refused */
    w0[0] = 2.0;
    assert_int_equal(wb_trainer_create(&t, &d, w0, &s), WB_EINVAL);
    assert_null(t);
    w0[0] = 0.5;
    s.lr = -1;
    assert_int_equal(wb_trainer_create(&t, &d, w0, &s), WB_EINVAL);
    base_settings(&s);
    s.batch_size = 0;
    assert_int_equal(wb_trainer_create(&t, &d, w0, &s), WB_EINVAL);
    base_settings(&s);
    s.solver.lambda = NAN;
    assert_int_equal(wb_trainer_create(&t, &d, w0, &s), WB_EINVAL);
    wb_dataset bad = d;
    bad.loss = NULL;
    assert_int_equal(wb_trainer_create(&t, &bad, w0, NULL), WB_EINVAL);
    assert_int_equal(wb_trainer_create(&t, NULL, w0, NULL), WB_EINVAL);
    assert_int_equal(wb_trainer_step(NULL, NULL), WB_EINVAL);
    assert_string_equal(wb_trainer_message(NULL), "no trainer");
    wb_trainer_destroy(NULL);
    qset_free(&S);
}

/* The k-th allocation of wb_trainer_create fails, for every k: WB_ENOMEM,
   nothing leaks (counted here, and ASan/valgrind in CI). */
static void trainer_create_survives_allocation_failure(void **st) {
    (void)st;
    qset_t S;
    qset_init(&S, W_TRUE);
    wb_dataset d = qs_dataset(&S, NEX), v = qs_dataset(&S, 6);
    double w0[PW] = {0, 0};
    int total = -1;
    for (int k = 1; k < 400; k++) {
        failalloc_t f = {0, k, 0};
        wb_train_settings s;
        base_settings(&s);
        s.threads = 2;
        s.validation = &v;
        s.checkpoint_path = "/tmp/unused-by-this-test";
        s.solver.alloc = fail_alloc;
        s.solver.dealloc = fail_free;
        s.solver.alloc_ctx = &f;
        wb_trainer *t = NULL;
        wb_status r = wb_trainer_create(&t, &d, w0, &s);
        if (r == WB_OK) {
            total = f.count;
            assert_int_equal(wb_trainer_step(t, NULL), WB_OK); /* it works */
            wb_trainer_destroy(t);
            assert_int_equal(f.live, 0);
            break;
        }
        assert_int_equal(r, WB_ENOMEM);
        assert_null(t);
        assert_int_equal(f.live, 0);
    }
    assert_true(total > 10);
    qset_free(&S);
}

/* After create, the k-th allocation fails, for every k, somewhere in a
   script of steps (with checkpoints), an evaluation, a save and a load. The
   failing call returns WB_ENOMEM and changes nothing: retrying it with the
   allocator healed and finishing the script gives bit for bit the w of a run
   without failures. Nothing leaks. */
typedef struct {
    wb_trainer *t;
    const wb_dataset *v;
    const char *ck;
} script_t;
static wb_status script_op(script_t *c, int op) {
    double w[PW], mean;
    int failed;
    switch (op) {
    case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7:
        return wb_trainer_step(c->t, NULL);
    case 8:
        if (wb_trainer_w(c->t, w) != WB_OK) return WB_EINVAL;
        return wb_trainer_evaluate(c->t, c->v, w, &mean, &failed, NULL);
    case 9: return wb_trainer_save(c->t, c->ck);
    case 10: return wb_trainer_load(c->t, c->ck);
    default: return wb_train(c->t, NULL);
    }
}
enum { SCRIPT_OPS = 12 };
static void run_script(const wb_dataset *d, const wb_dataset *v,
                       failalloc_t *f, int k, double *w_out, int *failures) {
    char ck[64];
    snprintf(ck, sizeof ck, "/tmp/wb_alloc_%ld.ckpt", (long)getpid());
    wb_train_settings s;
    base_settings(&s);
    s.validation = v;
    s.checkpoint_path = ck;
    s.solver.alloc = fail_alloc;
    s.solver.dealloc = fail_free;
    s.solver.alloc_ctx = f;
    double w0[PW] = {0, 0};
    wb_trainer *t = NULL;
    assert_int_equal(wb_trainer_create(&t, d, w0, &s), WB_OK);
    f->fail_at = k > 0 ? f->count + k : 0; /* the k-th allocation from here */
    script_t c = {t, v, ck};
    *failures = 0;
    for (int op = 0; op < SCRIPT_OPS; op++) {
        wb_status st = script_op(&c, op);
        if (st == WB_ENOMEM) {
            ++*failures;
            assert_true(strstr(wb_trainer_message(t), "memory") != NULL);
            f->fail_at = 0; /* healed: the same call again */
            st = script_op(&c, op);
        }
        assert_true(st == WB_OK || st == WB_DONE);
    }
    assert_int_equal(wb_trainer_w(t, w_out), WB_OK);
    wb_trainer_destroy(t);
    assert_int_equal(f->live, 0);
    remove(ck);
}
static void training_survives_allocation_failure_after_create(void **st) {
    (void)st;
    qset_t S;
    qset_init(&S, W_TRUE);
    wb_dataset d = qs_dataset(&S, NEX), v = qs_dataset(&S, 6);
    double ref[PW], w[PW];
    failalloc_t f0 = {0, 0, 0};
    int failures;
    run_script(&d, &v, &f0, 0, ref, &failures);
    assert_int_equal(failures, 0);
    int hit = 0;
    for (int k = 1; k < 200; k++) {
        failalloc_t f = {0, 0, 0};
        run_script(&d, &v, &f, k, w, &failures);
        assert_memory_equal(w, ref, sizeof ref);
        if (failures == 0) break; /* k beyond the script's allocations */
        hit++;
    }
    printf("    %d allocation points after create, each failed once: "
           "WB_ENOMEM, nothing lost or leaked\n", hit);
    assert_true(hit >= 2); /* evaluation and load allocate at least */
    qset_free(&S);
}

/* A save removes the path.tmp.PID and path.tmp.PID.COUNTER files of
   processes that no longer run (left by a kill inside a save), and nothing
   else. */
static void save_removes_only_dead_processes_temp_files(void **st) {
    (void)st;
    char dir[] = "/tmp/wb_stale_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char ck[128], dead[160], alive[160], other[160], foreign[160],
        dead2[160], alive2[160], other2[160];
    snprintf(ck, sizeof ck, "%s/ckpt", dir);
    pid_t kid = fork(); /* a process that has ended: its PID is free */
    assert_true(kid >= 0);
    if (kid == 0) _exit(0);
    assert_int_equal(waitpid(kid, NULL, 0), kid);
    snprintf(dead, sizeof dead, "%s.tmp.%ld", ck, (long)kid);
    snprintf(alive, sizeof alive, "%s.tmp.%ld", ck, (long)getppid());
    snprintf(other, sizeof other, "%s.tmp.notapid", ck);
    snprintf(foreign, sizeof foreign, "%s/other.tmp.%ld", dir, (long)kid);
    snprintf(dead2, sizeof dead2, "%s.tmp.%ld.17", ck, (long)kid);
    snprintf(alive2, sizeof alive2, "%s.tmp.%ld.3", ck, (long)getppid());
    snprintf(other2, sizeof other2, "%s.tmp.%ld.x", ck, (long)kid);
    const char *files[] = {dead, dead2, alive, other, foreign, alive2, other2};
    for (int k = 0; k < 7; k++) {
        FILE *f = fopen(files[k], "w");
        assert_non_null(f);
        fclose(f);
    }
    qset_t S;
    wb_train_settings s;
    wb_dataset d = qs_setup(&S, &s);
    double w0[PW] = {0, 0};
    wb_trainer *t = NULL;
    assert_int_equal(wb_trainer_create(&t, &d, w0, &s), WB_OK);
    assert_int_equal(wb_trainer_save(t, ck), WB_OK);
    assert_int_equal(access(dead, F_OK), -1);   /* removed  */
    assert_int_equal(access(dead2, F_OK), -1);
    assert_int_equal(access(alive, F_OK), 0);   /* kept     */
    assert_int_equal(access(alive2, F_OK), 0);
    assert_int_equal(access(other, F_OK), 0);
    assert_int_equal(access(other2, F_OK), 0);
    assert_int_equal(access(foreign, F_OK), 0); /* another file's */
    wb_trainer_destroy(t);
    for (int k = 2; k < 7; k++) remove(files[k]);
    remove(ck);
    assert_int_equal(rmdir(dir), 0);
    qset_free(&S);
}

/* The contents of a file (at most cap bytes); its length, or -1. */
static long slurp(const char *path, unsigned char *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return (long)n;
}

/* A save never writes through a link planted where its temporary file
   goes: the old name path.tmp.PID and the first 512 names
   path.tmp.PID.COUNTER all point at a victim file, which must come out
   byte for byte as it was, while the checkpoint is written and loads. */
static void save_never_follows_a_planted_link(void **st) {
    (void)st;
    char dir[] = "/tmp/wb_link_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char ck[128], victim[128], ln[192];
    snprintf(ck, sizeof ck, "%s/ckpt", dir);
    snprintf(victim, sizeof victim, "%s/victim", dir);
    const char secret[] = "not a checkpoint: must survive";
    FILE *f = fopen(victim, "wb");
    assert_non_null(f);
    fwrite(secret, 1, sizeof secret, f);
    fclose(f);
    enum { NLINK = 512 };
    snprintf(ln, sizeof ln, "%s.tmp.%ld", ck, (long)getpid());
    assert_int_equal(symlink(victim, ln), 0);
    for (int c = 0; c < NLINK; c++) {
        snprintf(ln, sizeof ln, "%s.tmp.%ld.%d", ck, (long)getpid(), c);
        assert_int_equal(symlink(victim, ln), 0);
    }
    qset_t S;
    wb_train_settings s;
    wb_dataset d = qs_setup(&S, &s);
    double w0[PW] = {0.25, -0.5}, w[PW];
    wb_trainer *t = NULL;
    assert_int_equal(wb_trainer_create(&t, &d, w0, &s), WB_OK);
    for (int k = 0; k < 3; k++) assert_int_equal(wb_trainer_save(t, ck), WB_OK);
    unsigned char buf[256];
    assert_int_equal(slurp(victim, buf, sizeof buf), (long)sizeof secret);
    assert_memory_equal(buf, secret, sizeof secret);
    struct stat sb;
    assert_int_equal(lstat(ck, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    assert_int_equal(wb_trainer_load(t, ck), WB_OK);
    assert_int_equal(wb_trainer_w(t, w), WB_OK);
    assert_memory_equal(w, w0, sizeof w);
    wb_trainer_destroy(t);
    /* the links (our own PID's names) are left alone; clean up */
    snprintf(ln, sizeof ln, "%s.tmp.%ld", ck, (long)getpid());
    assert_int_equal(lstat(ln, &sb), 0);
    assert_true(S_ISLNK(sb.st_mode));
    remove(ln);
    for (int c = 0; c < NLINK; c++) {
        snprintf(ln, sizeof ln, "%s.tmp.%ld.%d", ck, (long)getpid(), c);
        remove(ln);
    }
    remove(ck);
    remove(victim);
    assert_int_equal(rmdir(dir), 0);
    qset_free(&S);
}

/* Two trainers of one process save to one path from two threads, 200 times
   each, while a third thread loads that path over and over: every save is
   WB_OK and every load is WB_OK with one of the two trainers' w (the file
   on disk is always a whole checkpoint). */
enum { NSAVE = 200 };
typedef struct {
    wb_trainer *t;
    const char *path;
    int failed;          /* saves (or loads) that did not return WB_OK */
    int loads;
    const double *wa, *wb; /* the loader: the two possible w            */
    atomic_int *stop;
} saver_t;

static void *saver(void *arg) {
    saver_t *a = arg;
    for (int k = 0; k < NSAVE; k++)
        if (wb_trainer_save(a->t, a->path) != WB_OK) a->failed++;
    return NULL;
}

static void *loader(void *arg) {
    saver_t *a = arg;
    double w[PW];
    while (!atomic_load(a->stop)) {
        wb_status r = wb_trainer_load(a->t, a->path);
        if (r != WB_OK) a->failed++;
        else if (wb_trainer_w(a->t, w) != WB_OK ||
                 (memcmp(w, a->wa, sizeof w) != 0 && memcmp(w, a->wb, sizeof w) != 0))
            a->failed++;
        a->loads++;
    }
    return NULL;
}

static void concurrent_saves_to_one_path_all_succeed(void **st) {
    (void)st;
    char dir[] = "/tmp/wb_conc_XXXXXX", ck[128];
    temp_dir(dir, ck, sizeof ck);
    qset_t S;
    wb_train_settings s;
    wb_dataset d = qs_setup(&S, &s);
    const double wa[PW] = {0.5, 0.25}, wb[PW] = {-1.0, 2.0};
    s.threads = 1;
    wb_trainer *ta = NULL, *tb = NULL, *tl = NULL;
    assert_int_equal(wb_trainer_create(&ta, &d, wa, &s), WB_OK);
    assert_int_equal(wb_trainer_create(&tb, &d, wb, &s), WB_OK);
    assert_int_equal(wb_trainer_create(&tl, &d, wa, &s), WB_OK);
    assert_int_equal(wb_trainer_save(ta, ck), WB_OK);
    atomic_int stop = 0;
    saver_t A = {ta, ck, 0, 0, NULL, NULL, &stop};
    saver_t B = {tb, ck, 0, 0, NULL, NULL, &stop};
    saver_t L = {tl, ck, 0, 0, wa, wb, &stop};
    pthread_t th[3];
    assert_int_equal(pthread_create(&th[2], NULL, loader, &L), 0);
    assert_int_equal(pthread_create(&th[0], NULL, saver, &A), 0);
    assert_int_equal(pthread_create(&th[1], NULL, saver, &B), 0);
    pthread_join(th[0], NULL);
    pthread_join(th[1], NULL);
    atomic_store(&stop, 1);
    pthread_join(th[2], NULL);
    print_message("saves failed: %d, %d; loads failed %d of %d\n", A.failed, B.failed, L.failed, L.loads);
    assert_int_equal(A.failed, 0);
    assert_int_equal(B.failed, 0);
    assert_int_equal(L.failed, 0);
    assert_true(L.loads > 0);
    /* no temporary file is left behind */
    DIR *dd = opendir(dir);
    assert_non_null(dd);
    struct dirent *de;
    int files = 0;
    while ((de = readdir(dd)) != NULL)
        if (de->d_name[0] != '.') files++;
    closedir(dd);
    assert_int_equal(files, 1);
    wb_trainer_destroy(ta);
    wb_trainer_destroy(tb);
    wb_trainer_destroy(tl);
    remove(ck);
    assert_int_equal(rmdir(dir), 0);
    qset_free(&S);
}

/* ---- non-finite optimizer steps (issue 11, item 4) ------------------------ */

/* Adam is invariant to the scale of the loss: a loss times 2^665 (~2.5e200,
   gradients ~1e200, g^2 beyond DBL_MAX) moves w exactly as the plain loss
   does (eps = 1e-300 is below both scales' r). The scale is a power of two,
   so every gradient is the plain one times 2^665 exactly. Before: Adam's
   second moment v = ... + g^2 overflowed to inf and w froze at w0. */
static void adam_moves_w_alike_for_gradients_of_1e200(void **st) {
    (void)st;
    qset_t S;
    wb_dataset d = qs_setup(&S, NULL);
    double w0[PW] = {0.0, 0.0}, w1[PW], wbig[PW];
    wb_train_info i1, ibig;
    for (int big = 0; big < 2; big++) {
        S.loss_scale = big ? ldexp(1.0, 665) : 1.0;
        wb_train_settings s;
        base_settings(&s);
        s.eps = 1e-300;
        s.threads = 1;
        train_w(&d, w0, &s, big ? &ibig : &i1, big ? wbig : w1);
    }
    assert_true(ldexp(1.0, 665) > 1e200);
    for (int j = 0; j < PW; j++) {
        assert_true(fabs(w1[j] - w0[j]) > 0.1); /* it moved */
        wb_assert_close(wbig[j], w1[j], 0.0, 1e-12);
    }
    assert_int_equal(ibig.skipped_total, 0);
    assert_true(isfinite(ibig.grad_norm));
    wb_assert_close(ibig.grad_norm, ldexp(i1.grad_norm, 665), 0.0, 1e-12);
    qset_free(&S);
}

/* lr = 1e10: three steps on a loss scaled by 2^-36 move w sensibly; then
   the loss is scaled by 2^1000 (finite gradients ~1e301), so lr g
   overflows. That step must fail with WB_ENONFINITE and keep the last
   finite state: w, step, info and the checkpoint of step 3 (which loads);
   with the scale back, training goes on from step 3. Before: the step
   returned WB_OK with w = -inf and wrote a checkpoint load refuses. */
static void a_step_that_overflows_w_fails_and_keeps_the_last_state(void **st) {
    (void)st;
    char dir[] = "/tmp/wb_inf_XXXXXX", ck[128];
    temp_dir(dir, ck, sizeof ck);
    qset_t S;
    wb_dataset d = qs_setup(&S, NULL);
    const wb_optimizer opts[] = {WB_OPT_SGD, WB_OPT_MOMENTUM};
    for (int o = 0; o < 2; o++) {
        S.loss_scale = ldexp(1.0, -36);
        wb_train_settings s;
        base_settings(&s);
        s.optimizer = opts[o];
        s.lr = 1e10;
        s.checkpoint_path = ck;
        s.checkpoint_every = 1;
        double w0[PW] = {0.0, 0.0}, w3[PW], w[PW];
        wb_trainer *t = NULL;
        assert_int_equal(wb_trainer_create(&t, &d, w0, &s), WB_OK);
        run_steps(t, 3);
        wb_train_info i3, info;
        assert_int_equal(wb_trainer_info(t, &i3), WB_OK);
        assert_int_equal(wb_trainer_w(t, w3), WB_OK);
        assert_true(isfinite(w3[0]) && isfinite(w3[1]) && w3[0] != 0.0);
        S.loss_scale = ldexp(1.0, 1000);
        for (int k = 0; k < 2; k++) { /* and again: the same refusal */
            assert_int_equal(wb_trainer_step(t, &info), WB_ENONFINITE);
            assert_non_null(strstr(wb_trainer_message(t), "non-finite"));
            assert_int_equal(info.step, 3);
            assert_int_equal(wb_trainer_w(t, w), WB_OK);
            assert_memory_equal(w, w3, sizeof w);
        }
        /* the checkpoint on disk is step 3's */
        wb_trainer *t2 = NULL;
        assert_int_equal(wb_trainer_create(&t2, &d, w0, &s), WB_OK);
        assert_int_equal(wb_trainer_load(t2, ck), WB_OK);
        assert_int_equal(wb_trainer_info(t2, &info), WB_OK);
        assert_int_equal(info.step, 3);
        assert_int_equal(wb_trainer_w(t2, w), WB_OK);
        assert_memory_equal(w, w3, sizeof w);
        /* the failed trainer goes on exactly like the one resumed at 3 */
        S.loss_scale = ldexp(1.0, -36);
        double wa[PW], wb[PW];
        assert_int_equal(wb_trainer_step(t, &info), WB_OK);
        assert_int_equal(info.step, 4);
        assert_int_equal(wb_trainer_step(t2, NULL), WB_OK);
        assert_int_equal(wb_trainer_w(t, wa), WB_OK);
        assert_int_equal(wb_trainer_w(t2, wb), WB_OK);
        assert_memory_equal(wa, wb, sizeof wa);
        wb_trainer_destroy(t2);
        wb_trainer_destroy(t);
        remove(ck);
    }
    assert_int_equal(rmdir(dir), 0);
    qset_free(&S);
}

/* A step whose examples all fail does not move w and is counted
   (info.empty_steps) with a message that says so. */
static void a_step_whose_examples_all_fail_is_counted(void **st) {
    (void)st;
    qset_t S;
    wb_train_settings s;
    wb_dataset d = qs_setup(&S, &s);
    double w0[PW] = {0.0, 0.0}, w2[PW], w[PW];
    wb_trainer *t = NULL;
    assert_int_equal(wb_trainer_create(&t, &d, w0, &s), WB_OK);
    run_steps(t, 2);
    assert_int_equal(wb_trainer_w(t, w2), WB_OK);
    S.fail_all = 1;
    wb_train_info info;
    for (int k = 1; k <= 3; k++) {
        assert_int_equal(wb_trainer_step(t, &info), WB_OK);
        assert_int_equal(info.used, 0);
        assert_int_equal(info.empty_steps, k);
        assert_non_null(strstr(wb_trainer_message(t), "examples of the batch were skipped"));
    }
    assert_int_equal(wb_trainer_w(t, w), WB_OK);
    assert_memory_equal(w, w2, sizeof w);
    S.fail_all = 0;
    assert_int_equal(wb_trainer_step(t, &info), WB_OK); /* a new epoch */
    assert_int_equal(info.empty_steps, 3);
    assert_int_equal(info.used, 5);
    assert_int_equal(info.skipped_total, 14);
    wb_trainer_destroy(t);
    qset_free(&S);
}

/* ---- impossible checkpoints (issue 11, item 6) ---------------------------- */

/* The version-2 layout (see src/checkpoint.c), for this file's sizes. */
enum {
    CK_STEP = 36, CK_EPOCH = 44, CK_POS = 48, CK_W = 60,
    CK_M = CK_W + 8 * PW, CK_R = CK_W + 16 * PW, CK_A = CK_W + 32 * PW,
    CK_BEST_STEP = CK_A + 8, CK_LOSS_SUM = CK_A + 24, CK_USED = CK_A + 32,
    CK_SKIPPED = CK_A + 44, CK_EMPTY = CK_A + 52, CK_SOLVES = CK_A + 60,
    CK_PERM = CK_A + 68, CK_HASX = CK_PERM + 4 * NEX,
    CK_LEN = CK_HASX + NEX + 8 * NEX * NX + 8
};

static void fnv_fix(unsigned char *b, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i + 8 < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    memcpy(b + n - 8, &h, 8);
}

static void put_bytes(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Files with a valid checksum but contents no run can produce -- counters
   at INT_MAX, an order that is not a permutation, step 0 at epoch 2, ... --
   are WB_EFORMAT with the reason, and leave the trainer as it was. Before:
   most were accepted (and epoch INT_MAX overflowed on the next epoch). */
static void checkpoint_with_impossible_fields_is_refused(void **st) {
    (void)st;
    qset_t S;
    wb_train_settings s;
    wb_dataset d = qs_setup(&S, &s); /* Adam, batch 5 of 24: 5 steps per epoch */
    char path[] = "/tmp/wb_ckpt_XXXXXX";
    temp_file(path);
    double lo[PW] = {-10, -10}, hi[PW] = {10, 10};
    s.lower = lo;
    s.upper = hi;
    double w0[PW] = {0.0, 0.0}, before[PW], after[PW];
    wb_trainer *t = NULL;
    assert_int_equal(wb_trainer_create(&t, &d, w0, &s), WB_OK);
    run_steps(t, 7); /* epoch 1, position 10 */
    assert_int_equal(wb_trainer_save(t, path), WB_OK);
    unsigned char good[CK_LEN + 16], b[CK_LEN + 16];
    assert_int_equal(slurp(path, good, sizeof good), CK_LEN);
    int64_t step;
    int32_t epoch, pos;
    memcpy(&step, good + CK_STEP, 8);
    memcpy(&epoch, good + CK_EPOCH, 4);
    memcpy(&pos, good + CK_POS, 4);
    assert_int_equal(step, 7); /* the layout is the one read below */
    assert_int_equal(epoch, 1);
    assert_int_equal(pos, 10);
    run_steps(t, 2);
    assert_int_equal(wb_trainer_w(t, before), WB_OK);
    const int32_t i32max = INT32_MAX, m1 = -1, two = 2, eleven = 11, eight = 8;
    const int64_t i64max = INT64_MAX, zero = 0, nine = 9, l8 = 8, lm1 = -1;
    const double neg = -1.0, out = 11.0, nan_ = NAN;
    struct { const char *what; size_t at; const void *val; size_t n;
             const char *why; } cases[] = {
        {"epoch = INT_MAX", CK_EPOCH, &i32max, 4, "do not fit"},
        {"step 0 at epoch 1", CK_STEP, &zero, 8, "do not fit"},
        {"epoch 2 at step 7", CK_EPOCH, &two, 4, "do not fit"},
        {"position 11 (not a batch boundary)", CK_POS, &eleven, 4, "do not fit"},
        {"step = INT64_MAX", CK_STEP, &i64max, 8, "outside"},
        {"order: entry 0 = -1", CK_PERM, &m1, 4, "not a permutation"},
        {"order: a repeated entry", CK_PERM + 4, NULL, 4, "not a permutation"},
        {"Adam sqrt(v) < 0", CK_R, &neg, 8, "moment"},
        {"w outside its bounds", CK_W, &out, 8, "bounds"},
        {"used examples = INT_MAX", CK_USED, &i32max, 4, "used examples"},
        {"epoch loss sum NaN", CK_LOSS_SUM, &nan_, 8, "used examples"},
        {"skipped = INT64_MAX", CK_SKIPPED, &i64max, 8, "skipped"},
        {"empty steps 8 > step 7", CK_EMPTY, &l8, 8, "empty steps"},
        {"inner solves = -1", CK_SOLVES, &lm1, 8, "inner solves"},
        {"best step 9 > step 7", CK_BEST_STEP, &nine, 8, "best step"},
        {"warm-start flag 8", CK_HASX, &eight, 1, "warm-start flag"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        memcpy(b, good, CK_LEN);
        memcpy(b + cases[k].at, cases[k].val ? cases[k].val : b + CK_PERM,
               cases[k].n);
        fnv_fix(b, CK_LEN);
        put_bytes(path, b, CK_LEN);
        wb_status r = wb_trainer_load(t, path);
        if (r != WB_EFORMAT || !strstr(wb_trainer_message(t), cases[k].why))
            print_error("%s: status %d, message \"%s\"\n", cases[k].what, r,
                        wb_trainer_message(t));
        assert_int_equal(r, WB_EFORMAT);
        assert_non_null(strstr(wb_trainer_message(t), cases[k].why));
        assert_int_equal(wb_trainer_w(t, after), WB_OK);
        assert_memory_equal(before, after, sizeof before);
    }
    /* the good file still loads */
    put_bytes(path, good, CK_LEN);
    assert_int_equal(wb_trainer_load(t, path), WB_OK);
    /* the largest solve count a file may hold loads, and after more steps
       the count saturates there, so what is saved then loads too (found by
       fuzzing: the count went past the bound and the next load refused it) */
    const int64_t smax = (int64_t)1 << 62;
    memcpy(b, good, CK_LEN);
    memcpy(b + CK_SOLVES, &smax, 8);
    fnv_fix(b, CK_LEN);
    put_bytes(path, b, CK_LEN);
    assert_int_equal(wb_trainer_load(t, path), WB_OK);
    run_steps(t, 2);
    wb_train_info ti;
    assert_int_equal(wb_trainer_info(t, &ti), WB_OK);
    assert_true(ti.inner_solves == smax);
    assert_int_equal(wb_trainer_save(t, path), WB_OK);
    assert_int_equal(wb_trainer_load(t, path), WB_OK);
    wb_trainer_destroy(t);
    remove(path);
    qset_free(&S);
}

/* A version-1 file (Adam's v itself, no empty-step count) still loads: it
   resumes to the same final w as the version-2 file of the same state, up
   to the rounding of sqrt(v). */
static void version_1_checkpoint_still_loads(void **st) {
    (void)st;
    qset_t S;
    wb_train_settings s;
    wb_dataset d = qs_setup(&S, &s);
    char path[] = "/tmp/wb_ckpt_XXXXXX";
    temp_file(path);
    double w0[PW] = {0.0, 0.0}, w2[PW], w1[PW];
    wb_trainer *t = NULL;
    assert_int_equal(wb_trainer_create(&t, &d, w0, &s), WB_OK);
    run_steps(t, 7);
    assert_int_equal(wb_trainer_save(t, path), WB_OK);
    assert_int_equal(wb_train(t, NULL), WB_OK);
    assert_int_equal(wb_trainer_w(t, w2), WB_OK);
    wb_trainer_destroy(t);
    unsigned char b2[CK_LEN + 16], b1[CK_LEN + 16];
    assert_int_equal(slurp(path, b2, sizeof b2), CK_LEN);
    /* v1: version 1, v = r^2, no empty-step count */
    memcpy(b1, b2, CK_EMPTY);
    uint32_t one = 1;
    memcpy(b1 + 8, &one, 4);
    for (int j = 0; j < PW; j++) {
        double r;
        memcpy(&r, b2 + CK_R + 8 * j, 8);
        r = r * r;
        memcpy(b1 + CK_R + 8 * j, &r, 8);
    }
    memcpy(b1 + CK_EMPTY, b2 + CK_EMPTY + 8, CK_LEN - CK_EMPTY - 8);
    fnv_fix(b1, CK_LEN - 8);
    put_bytes(path, b1, CK_LEN - 8);
    assert_int_equal(wb_trainer_create(&t, &d, w0, &s), WB_OK);
    assert_int_equal(wb_trainer_load(t, path), WB_OK);
    assert_int_equal(wb_train(t, NULL), WB_OK);
    assert_int_equal(wb_trainer_w(t, w1), WB_OK);
    for (int j = 0; j < PW; j++) wb_assert_close(w1[j], w2[j], 0.0, 1e-12);
    wb_trainer_destroy(t);
    remove(path);
    qset_free(&S);
}

/* ---- one call at a time (issue 11, item 5) -------------------------------- */

/* Every public call on a trainer, made while another call on it runs:
   each must be WB_EBUSY, leave the trainer alone, and say why in
   wb_last_error(). Returns the number of calls that were not refused. */
static int calls_while_busy(wb_trainer *t, const wb_dataset *d, const char *ck) {
    double w[PW] = {0, 0}, best, mean;
    int failed, bad = 0;
    wb_train_info info;
    wb_status r[8];
    r[0] = wb_trainer_step(t, &info);
    r[1] = wb_train(t, &info);
    r[2] = wb_trainer_w(t, w);
    r[3] = wb_trainer_best_w(t, w, &best);
    r[4] = wb_trainer_info(t, &info);
    r[5] = wb_trainer_evaluate(t, d, w, &mean, &failed, NULL);
    r[6] = wb_trainer_save(t, ck);
    r[7] = wb_trainer_load(t, ck);
    for (int k = 0; k < 8; k++) bad += r[k] != WB_EBUSY;
    if (!strstr(wb_last_error(), "in use")) bad++;
    return bad;
}

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int inside, done; /* the step is inside a callback; the other thread
                         has made its calls                              */
} rendezvous_t;

/* the loss callback of the running step: the first call lets the other
   thread in and waits until it has made its calls */
static void hold_the_step(void *arg) {
    rendezvous_t *z = arg;
    pthread_mutex_lock(&z->mu);
    if (!z->inside) {
        z->inside = 1;
        pthread_cond_broadcast(&z->cv);
        while (!z->done) pthread_cond_wait(&z->cv, &z->mu);
    }
    pthread_mutex_unlock(&z->mu);
}

typedef struct {
    wb_trainer *t;
    const wb_dataset *d;
    const char *ck;
    rendezvous_t *z;
    int not_refused;
} intruder_t;

static void *intruder(void *arg) {
    intruder_t *a = arg;
    pthread_mutex_lock(&a->z->mu);
    while (!a->z->inside) pthread_cond_wait(&a->z->cv, &a->z->mu);
    pthread_mutex_unlock(&a->z->mu);
    a->not_refused = calls_while_busy(a->t, a->d, a->ck);
    pthread_mutex_lock(&a->z->mu);
    a->z->done = 1;
    pthread_cond_broadcast(&a->z->cv);
    pthread_mutex_unlock(&a->z->mu);
    return NULL;
}

/* re-entry from inside a callback, on the step's own thread */
typedef struct {
    wb_trainer *t;
    const wb_dataset *d;
    const char *ck;
    int calls, not_refused;
} reenter_t;

static void reenter(void *arg) {
    reenter_t *a = arg;
    if (a->calls++ == 0) a->not_refused = calls_while_busy(a->t, a->d, a->ck);
}

/* A second thread calling into a trainer while a step runs (held inside
   its loss callback until the other thread is through) gets WB_EBUSY from
   every call, and so does a callback calling back into its own trainer;
   the step itself finishes exactly as an undisturbed one, and the trainer
   takes calls again afterwards. Before: the calls ran concurrently on the
   same state. */
static void a_call_while_another_runs_is_refused_busy(void **st) {
    (void)st;
    char dir[] = "/tmp/wb_busy_XXXXXX", ck[128];
    temp_dir(dir, ck, sizeof ck);
    qset_t S;
    wb_train_settings s;
    wb_dataset d = qs_setup(&S, &s);
    s.threads = 1;
    double w0[PW] = {0.25, -0.25}, wref[PW], w[PW];
    wb_trainer *t = NULL;
    /* the undisturbed step */
    assert_int_equal(wb_trainer_create(&t, &d, w0, &s), WB_OK);
    assert_int_equal(wb_trainer_save(t, ck), WB_OK);
    assert_int_equal(wb_trainer_step(t, NULL), WB_OK);
    assert_int_equal(wb_trainer_w(t, wref), WB_OK);
    wb_trainer_destroy(t);
    /* another thread */
    assert_int_equal(wb_trainer_create(&t, &d, w0, &s), WB_OK);
    rendezvous_t z = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    intruder_t a = {t, &d, ck, &z, -1};
    S.hook = hold_the_step;
    S.hook_arg = &z;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, intruder, &a), 0);
    assert_int_equal(wb_trainer_step(t, NULL), WB_OK);
    pthread_join(th, NULL);
    S.hook = NULL;
    assert_int_equal(a.not_refused, 0);
    assert_int_equal(wb_trainer_w(t, w), WB_OK); /* free again */
    assert_memory_equal(w, wref, sizeof w);
    wb_trainer_destroy(t);
    /* a callback re-entering on the same thread */
    assert_int_equal(wb_trainer_create(&t, &d, w0, &s), WB_OK);
    reenter_t b = {t, &d, ck, 0, -1};
    S.hook = reenter;
    S.hook_arg = &b;
    assert_int_equal(wb_trainer_step(t, NULL), WB_OK);
    S.hook = NULL;
    assert_int_equal(b.not_refused, 0);
    assert_int_equal(wb_trainer_w(t, w), WB_OK);
    assert_memory_equal(w, wref, sizeof w);
    assert_int_equal(wb_trainer_load(t, ck), WB_OK); /* takes calls again */
    wb_trainer_destroy(t);
    remove(ck);
    assert_int_equal(rmdir(dir), 0);
    qset_free(&S);
}

/* ---- overlapping arguments (issue 11, item 3) ----------------------------- */

/* wb_trainer_evaluate copies w before it writes anything: w may lie inside
   per_example (same results as separate arrays); outputs that overlap one
   another are refused. wb_trainer_best_w refuses best inside w.
   wb_trainer_create reads w0 and the settings before it writes *out, so out
   may point at w0's storage. Before: per_example[0] overwrote w[0] while
   the other examples were solved at it, best overwrote w[1], and *out =
   NULL zeroed w0[0] before it was read. */
static void overlapping_arguments_are_copied_or_refused(void **st) {
    (void)st;
    qset_t S;
    wb_train_settings s;
    wb_dataset d = qs_setup(&S, &s);
    s.threads = 1;
    const double w0[PW] = {0.75, -0.25};
    double w[PW];
    /* create with out on w0's storage */
    union { double w[PW]; wb_trainer *t; } u;
    memcpy(u.w, w0, sizeof w0);
    assert_int_equal(wb_trainer_create((wb_trainer **)&u.w[0], &d, u.w, &s), WB_OK);
    wb_trainer *t = u.t;
    assert_non_null(t);
    assert_int_equal(wb_trainer_w(t, w), WB_OK);
    assert_memory_equal(w, w0, sizeof w);
    /* evaluate: w inside per_example */
    double ref[NEX], buf[NEX], mref, mean;
    int fref, failed;
    assert_int_equal(wb_trainer_evaluate(t, &d, w0, &mref, &fref, ref), WB_OK);
    memcpy(buf, w0, sizeof w0);
    assert_int_equal(wb_trainer_evaluate(t, &d, buf, &mean, &failed, buf), WB_OK);
    assert_memory_equal(buf, ref, sizeof ref);
    assert_true(mean == mref && failed == fref);
    /* the loss at w0 is not the loss at (loss_0, w0[1]): the copy matters */
    assert_true(ref[0] != w0[0]);
    /* outputs overlapping each other */
    assert_int_equal(wb_trainer_evaluate(t, &d, w0, &buf[3], &failed, buf), WB_EINVAL);
    assert_non_null(strstr(wb_trainer_message(t), "overlap"));
    assert_int_equal(wb_trainer_evaluate(t, &d, w0, &mean, (int *)&buf[NEX - 1], buf),
                     WB_EINVAL);
    /* best_w: best inside w */
    double wb[PW] = {9, 9};
    assert_int_equal(wb_trainer_best_w(t, wb, &wb[1]), WB_EINVAL);
    assert_non_null(strstr(wb_trainer_message(t), "inside w"));
    assert_true(wb[0] == 9 && wb[1] == 9);
    double best;
    assert_int_equal(wb_trainer_best_w(t, wb, &best), WB_OK);
    assert_memory_equal(wb, w0, sizeof wb);
    wb_trainer_destroy(t);
    qset_free(&S);
}

/* ---- the worker threads ------------------------------------------------- */

/* The same run with 1, 2, 3 and 7 threads (7 > batch 5: some workers get
   no example of a step) gives the same w bit for bit, and so does
   wb_trainer_evaluate's per-example losses against the losses computed
   from the closed form x*_i = Q_i^-1 (C_i w + d_i). */
static void any_thread_count_gives_identical_weights_and_losses(void **st) {
    (void)st;
    qset_t S;
    wb_dataset d = qs_setup(&S, NULL);
    const int counts[] = {1, 2, 3, 7};
    double w0[PW] = {0.5, 0.5}, w[4][PW], loss[4][NEX];
    for (int c = 0; c < 4; c++) {
        wb_train_settings s;
        base_settings(&s);
        s.threads = counts[c];
        s.solver.grad_tol = 1e-12;
        wb_trainer *t = NULL;
        assert_int_equal(wb_trainer_create(&t, &d, w0, &s), WB_OK);
        assert_int_equal(wb_train(t, NULL), WB_OK);
        assert_int_equal(wb_trainer_w(t, w[c]), WB_OK);
        double mean;
        int failed = -1;
        assert_int_equal(wb_trainer_evaluate(t, &d, w[c], &mean, &failed,
                                             loss[c]), WB_OK);
        assert_int_equal(failed, 0);
        wb_trainer_destroy(t);
        assert_memory_equal(w[c], w[0], sizeof w[0]);
        assert_memory_equal(loss[c], loss[0], sizeof loss[0]);
    }
    for (int i = 0; i < NEX; i++) { /* the losses are right, not only equal */
        quad_t *q = &S.q[i];
        double x[NX], l;
        for (int r = 0; r < NX; r++) {
            x[r] = q->d[r];
            for (int j = 0; j < PW; j++) x[r] += q->C[j * NX + r] * w[0][j];
        }
        assert_int_equal(ref_spd_solve(NX, q->A, 0.0, 1, x), 0);
        sq_loss(NX, x, S.y[i], &l, NULL);
        wb_assert_close(loss[0][i], l, 1e-12, 1e-8);
    }
    qset_free(&S);
}

#ifdef __linux__
/* threads of this process (entries of /proc/self/task) */
static int task_count(void) {
    DIR *dir = opendir("/proc/self/task");
    assert_non_null(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir)))
        if (e->d_name[0] != '.') n++;
    closedir(dir);
    return n;
}

/* trainer with the given settings.threads; after one step and an
   evaluation: the process's threads beyond base */
static int extra_threads(int threads, int base, wb_trainer **out) {
    static qset_t S;
    static int init;
    if (!init) {
        qset_init(&S, W_TRUE);
        init = 1;
    }
    wb_dataset d = qs_dataset(&S, NEX);
    wb_train_settings s;
    base_settings(&s);
    s.threads = threads;
    double w0[PW] = {0, 0}, mean;
    assert_int_equal(wb_trainer_create(out, &d, w0, &s), WB_OK);
    assert_int_equal(wb_trainer_step(*out, NULL), WB_OK);
    assert_int_equal(wb_trainer_evaluate(*out, &d, w0, &mean, NULL, NULL),
                     WB_OK);
    return task_count() - base;
}

/* settings.threads = T runs T - 1 threads of the trainer's own, from
   create to destroy; 0 takes OMP_NUM_THREADS when set, else the CPUs this
   thread may run on (its affinity mask: a process pinned to one CPU runs
   no worker). Counted in /proc/self/task. Before: libgomp's pool took its
   size from the CPUs at program start (2 here, whatever the mask) and its
   threads outlived the trainer. */
static void workers_follow_the_setting_and_end_with_the_trainer(void **st) {
    (void)st;
    char *omp = getenv("OMP_NUM_THREADS");
    char saved[64] = "";
    if (omp) snprintf(saved, sizeof saved, "%s", omp);
    cpu_set_t all, one;
    assert_int_equal(sched_getaffinity(0, sizeof all, &all), 0);
    int ncpu = CPU_COUNT(&all), base = task_count();
    wb_trainer *t = NULL;
    assert_int_equal(extra_threads(3, base, &t), 2);
    wb_trainer_destroy(t);
    assert_int_equal(task_count(), base);
    assert_int_equal(extra_threads(1, base, &t), 0);
    wb_trainer_destroy(t);

    assert_int_equal(setenv("OMP_NUM_THREADS", "4,2", 1), 0);
    assert_int_equal(extra_threads(0, base, &t), 3);
    wb_trainer_destroy(t);
    unsetenv("OMP_NUM_THREADS");
    assert_int_equal(extra_threads(0, base, &t), ncpu - 1);
    wb_trainer_destroy(t);
    CPU_ZERO(&one); /* pinned to its first CPU: no worker */
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &all)) {
            CPU_SET(c, &one);
            break;
        }
    assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
    int pinned = extra_threads(0, base, &t);
    wb_trainer_destroy(t);
    assert_int_equal(sched_setaffinity(0, sizeof all, &all), 0);
    if (omp) setenv("OMP_NUM_THREADS", saved, 1);
    printf("    %d CPUs: threads = 0 ran %d workers; pinned to one CPU, %d\n",
           ncpu, ncpu - 1, pinned);
    assert_int_equal(pinned, 0);
    assert_int_equal(task_count(), base);
}
#endif

/* sleeps ms in the first loss callback after it is armed */
typedef struct {
    atomic_int armed, naps;
    long ms;
} nap_t;
static void nap_once(void *arg) {
    nap_t *z = arg;
    if (atomic_exchange(&z->armed, 0)) {
        struct timespec ts = {0, z->ms * 1000000L};
        while (nanosleep(&ts, &ts) != 0) {}
        atomic_fetch_add(&z->naps, 1);
    }
}
static double cpu_s(void) {
    struct timespec ts;
    assert_int_equal(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts), 0);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The CPU a trainer with `threads` threads uses over 30 steps of 2
   examples; in each, one example sleeps 5 ms in its loss callback (with 2
   threads the other thread waits for it), and the program sleeps 5 ms
   between steps (a worker waits for work): 300 ms of waiting. */
static double cpu_over_30_napping_steps(int threads) {
    qset_t S;
    wb_train_settings s;
    wb_dataset d = qs_setup(&S, &s);
    nap_t z = {0, 0, 5};
    s.threads = threads;
    s.batch_size = 2;
    s.epochs = 10;
    double w0[PW] = {0, 0};
    wb_trainer *t = NULL;
    assert_int_equal(wb_trainer_create(&t, &d, w0, &s), WB_OK);
    assert_int_equal(wb_trainer_step(t, NULL), WB_OK); /* threads warm */
    S.hook = nap_once;
    S.hook_arg = &z;
    double c0 = cpu_s();
    for (int k = 0; k < 30; k++) {
        atomic_store(&z.armed, 1);
        assert_int_equal(wb_trainer_step(t, NULL), WB_OK);
        struct timespec ts = {0, 5000000L};
        while (nanosleep(&ts, &ts) != 0) {}
    }
    double used = cpu_s() - c0;
    assert_int_equal(atomic_load(&z.naps), 30);
    wb_trainer_destroy(t);
    qset_free(&S);
    return used;
}

/* Waiting takes no CPU: the 2-thread trainer uses at most 100 ms more CPU
   over the 300 ms of waiting than the 1-thread trainer doing the same work
   (no thread of its own waits there); waits that spin add up to 300 ms.
   The work itself (a step's 2 solves of 3 unknowns) is the same on both
   sides, so a slow machine or valgrind raises both alike. Resource use, not
   time. Before: libgomp's waits spun, 227-251 ms of the 300 here. */
static void waiting_workers_take_no_cpu(void **st) {
    (void)st;
    double one = cpu_over_30_napping_steps(1);
    double two = cpu_over_30_napping_steps(2);
    printf("    CPU over 300 ms of waiting: %.1f ms with 1 thread, %.1f ms with 2\n",
           1e3 * one, 1e3 * two);
    assert_true(two - one < 0.100);
}

/* A child of fork has none of its parent's threads: a trainer made before
   the fork runs there serially (no wait for workers that do not exist),
   its step gives the w of the same step in the parent, and it is
   destroyed without joining them. */
static void a_forked_child_runs_the_trainer_serially(void **st) {
    (void)st;
    qset_t S;
    wb_train_settings s;
    wb_dataset d = qs_setup(&S, &s);
    s.threads = 2;
    double w0[PW] = {0, 0}, w[PW], wc[PW];
    wb_trainer *t = NULL;
    assert_int_equal(wb_trainer_create(&t, &d, w0, &s), WB_OK);
    assert_int_equal(wb_trainer_step(t, NULL), WB_OK);
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        alarm(30); /* a hang fails the test instead of blocking it */
        double mean, v[PW];
        int ok = wb_trainer_step(t, NULL) == WB_OK &&
                 wb_trainer_w(t, v) == WB_OK &&
                 wb_trainer_evaluate(t, &d, v, &mean, NULL, NULL) == WB_OK &&
                 write(fd[1], v, sizeof v) == (ssize_t)sizeof v;
        wb_trainer_destroy(t); /* no threads to join there */
        qset_free(&S);         /* (leak checkers watch the child too) */
        close(fd[1]);
        close(fd[0]);
        _exit(ok ? 0 : 1);
    }
    close(fd[1]);
    int status = 0;
    assert_int_equal(waitpid(kid, &status, 0), kid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(read(fd[0], wc, sizeof wc), (ssize_t)sizeof wc);
    close(fd[0]);
    assert_int_equal(wb_trainer_step(t, NULL), WB_OK);
    assert_int_equal(wb_trainer_w(t, w), WB_OK);
    assert_memory_equal(w, wc, sizeof w);
    wb_trainer_destroy(t);
    qset_free(&S);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(training_recovers_the_generating_parameters),
        cmocka_unit_test(one_and_two_threads_give_identical_weights),
        cmocka_unit_test(resume_from_checkpoint_equals_uninterrupted_run),
        cmocka_unit_test(corrupt_or_truncated_checkpoint_is_refused),
        cmocka_unit_test(failing_examples_are_skipped_and_counted),
        cmocka_unit_test(finite_difference_backward_agrees_with_implicit),
        cmocka_unit_test(bounds_hold_and_validation_keeps_best),
        cmocka_unit_test(trainer_create_survives_allocation_failure),
        cmocka_unit_test(training_survives_allocation_failure_after_create),
        cmocka_unit_test(save_removes_only_dead_processes_temp_files),
        cmocka_unit_test(save_never_follows_a_planted_link),
        cmocka_unit_test(concurrent_saves_to_one_path_all_succeed),
        cmocka_unit_test(adam_moves_w_alike_for_gradients_of_1e200),
        cmocka_unit_test(a_step_that_overflows_w_fails_and_keeps_the_last_state),
        cmocka_unit_test(a_step_whose_examples_all_fail_is_counted),
        cmocka_unit_test(checkpoint_with_impossible_fields_is_refused),
        cmocka_unit_test(version_1_checkpoint_still_loads),
        cmocka_unit_test(a_call_while_another_runs_is_refused_busy),
        cmocka_unit_test(overlapping_arguments_are_copied_or_refused),
        cmocka_unit_test(any_thread_count_gives_identical_weights_and_losses),
#ifdef __linux__
        cmocka_unit_test(workers_follow_the_setting_and_end_with_the_trainer),
#endif
        cmocka_unit_test(waiting_workers_take_no_cpu),
        cmocka_unit_test(a_forked_child_runs_the_trainer_serially),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
