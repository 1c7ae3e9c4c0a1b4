#define _POSIX_C_SOURCE 200809L
/* The error table: every public function given NULL, wrong sizes, negative
 * or NaN settings, or called out of order returns a documented status and a
 * message -- and none crashes, aborts, prints uninvited or leaks.
 *
 * Each row of CASES is (function, situation, expected status, where the
 * message comes from, a fragment the message must contain) and a small
 * function that makes the call for real on a fresh fixture (a solver, a
 * trainer and a prox object, all on a counting allocator). For every row:
 *   - the status is the expected one;
 *   - the message (wb_solver_message / wb_trainer_message / wb_prox_message,
 *     or wb_solver_explain for wb_solver_create) contains the fragment;
 *     functions without a message channel (no object yet, or none at all)
 *     are marked so and judged by their status alone;
 *   - nothing is written to stdout or stderr (both are redirected to a file
 *     around the call), except in the rows that set `verbose` on purpose,
 *     which must print;
 *   - on an error, the outputs named by the row are left untouched;
 *   - every block the library allocated through the fixture's allocator is
 *     freed once the objects are destroyed (ASan / valgrind cover the rest).
 *
 * `test_errors --markdown FILE` (or WB_ERRORS_MD=FILE) also writes the table
 * for docs/ERRORS.md (scripts/gen-errors-doc.sh regenerates that file).
 */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <stddef.h>
#include <sys/stat.h>
#include <unistd.h>

#include "energies.h"

enum { NX = 3, PW = 2, NEX = 6, PIN = 3, POUT = 2, PM = 4 };
#define SENT 12345.0 /* sentinel for outputs that must stay untouched */

/* ---- the fixture ------------------------------------------------------- */

typedef enum {
    F_NONE, F_VG_FAIL, F_VG_NAN, F_G_INF, F_HESS_FAIL, F_HESS_NAN,
    F_HESS_ASYM, F_MIXED_FAIL, F_MIXED_NAN, F_INDEF, F_SING, F_HESS_HOLE,
    F_REENTER
} fault_t;

typedef enum { CH_LAST, CH_SOLVER, CH_TRAINER, CH_PROX, CH_BUF, CH_RET } chan_t;

typedef struct fx {
    failalloc_t mem; /* every object below allocates through it          */
    fault_t fault;   /* what the energy's callbacks do wrong             */
    quad_t q;        /* E = 1/2 x'Ax - x'Cw (d = 0: x = 0 is stationary
                        at w = 0)                                         */
    wb_energy e;
    wb_settings s;
    wb_solver *sv;
    double x[NX], w[PW], g[NX], out[PW], J[NX * PW];
    /* training */
    quad_t tq[NEX];
    double ty[NEX][NX];
    int ds_fail;     /* data set: the energy callback of this example fails */
    wb_dataset d;
    wb_train_settings ts;
    wb_trainer *t;
    double tw[PW];   /* the trainer's w before the call                   */
    int t_reenter;    /* 1: the next loss callback calls into the trainer  */
    int reenter_fn;  /*    with wb_trainer_w (0) or wb_trainer_step (1)   */
    int reenter_st;  /*    and keeps that call's status here              */
    /* ProxProp */
    wb_prox_settings ps;
    wb_prox *px;
    double A[PIN * PM], Z[POUT * PM], T0[POUT * (PIN + 1)], T[POUT * (PIN + 1)];
    /* F_REENTER: the call value_grad makes on the solver that runs it */
    int reenter, inner_calls;
    wb_status inner;
    /* results of the call */
    char msg[512];
    const char *post; /* a broken post-condition, or NULL */
} fx_t;

static char DIR_[64];     /* a fresh temporary directory for files       */
static char CKPT[128];    /* DIR_/ckpt                                    */

static int fx_vg(void *u, const double *x, const double *w, double *e,
                 double *g) {
    fx_t *f = u;
    if (f->fault == F_VG_FAIL) return 7;
    if (f->fault == F_REENTER && f->inner_calls++ == 0) {
        /* a callback calling back into the solver that runs it */
        double xx[NX] = {0}, ww[PW] = {0}, o[NX * PW], err;
        wb_deriv_info di;
        switch (f->reenter) {
        case 0: f->inner = wb_solve(f->sv, ww, xx, NULL); break;
        case 1: f->inner = wb_implicit_vjp(f->sv, f->g, o); break;
        case 2: f->inner = wb_implicit_jacobian(f->sv, o); break;
        case 3: f->inner = wb_implicit_vjp_at(f->sv, ww, xx, f->g, o); break;
        case 4: f->inner = wb_solver_set_energy(f->sv, &f->e); break;
        case 5: f->inner = wb_solver_set_lambda(f->sv, 1.0); break;
        case 6: f->inner = wb_check_implicit(f->sv, ww, xx, &err); break;
        case 7: wb_solver_deriv_info(f->sv, &di); f->inner = di.status; break;
        }
    }
    quad_vg(&f->q, x, w, e, g);
    if (f->fault == F_VG_NAN) *e = NAN;
    if (f->fault == F_G_INF && g) g[0] = INFINITY;
    return 0;
}
static int fx_hess(void *u, const double *x, const double *w, double *H) {
    fx_t *f = u;
    if (f->fault == F_HESS_FAIL) return -1;
    if (f->fault != F_HESS_HOLE) quad_hess(&f->q, x, w, H);
    if (f->fault == F_HESS_NAN) H[1] = NAN;
    if (f->fault == F_HESS_ASYM) H[1] += 1e-3;
    if (f->fault == F_INDEF) for (int k = 0; k < NX * NX; k++) H[k] = -H[k];
    if (f->fault == F_HESS_HOLE) { /* H(2,1) and H(1,2) never written */
        double keep[NX * NX];
        memcpy(keep, H, sizeof keep);
        quad_hess(&f->q, x, w, keep);
        for (int k = 0; k < NX * NX; k++)
            if (k != 1 * NX + 2 && k != 2 * NX + 1) H[k] = keep[k];
    }
    if (f->fault == F_SING) { /* positive definite, rcond 1e-17 */
        for (int k = 0; k < NX * NX; k++) H[k] = 0.0;
        H[0] = H[4] = 1.0;
        H[8] = 1e-17;
    }
    return 0;
}
static int fx_mixed_vjp(void *u, const double *x, const double *w,
                        const double *v, double *out) {
    fx_t *f = u;
    if (f->fault == F_MIXED_FAIL) return 3;
    return quad_mixed_vjp(&f->q, x, w, v, out);
}
static int fx_mixed(void *u, const double *x, const double *w, double *B) {
    fx_t *f = u;
    if (f->fault == F_MIXED_FAIL) return 3;
    quad_mixed(&f->q, x, w, B);
    if (f->fault == F_MIXED_NAN) B[0] = NAN;
    return 0;
}

static int ds_energy(void *u, int i, wb_energy *e) {
    fx_t *f = u;
    if (i == f->ds_fail) return 4;
    *e = quad_energy(&f->tq[i]);
    return 0;
}
static int ds_start(void *u, int i, double *x0) {
    (void)u; (void)i;
    for (int r = 0; r < NX; r++) x0[r] = 0.0;
    return 0;
}
static int ds_loss(void *u, int i, const double *x, double *l, double *dl) {
    fx_t *f = u;
    if (f->t_reenter == 1) { /* a callback calling back into its own trainer */
        double w[PW];
        f->t_reenter = 2;
        f->reenter_st = f->reenter_fn ? wb_trainer_step(f->t, NULL)
                                      : wb_trainer_w(f->t, w);
    }
    return sq_loss(NX, x, f->ty[i], l, dl);
}

static void train_settings(fx_t *f, wb_train_settings *s) {
    wb_train_settings_default(s);
    s->threads = 1;
    s->epochs = 2;
    s->batch_size = 3; /* 2 steps per epoch, 4 in all */
    s->seed = 1;
    s->solver.alloc = fail_alloc;
    s->solver.dealloc = fail_free;
    s->solver.alloc_ctx = &f->mem;
}

static void fx_setup(fx_t *f) {
    memset(f, 0, sizeof *f);
    quad_init(&f->q, NX, PW, 3);
    for (int i = 0; i < NX; i++) f->q.d[i] = 0.0;
    wb_energy e = {NX, PW, f, fx_vg, fx_hess, fx_mixed_vjp, fx_mixed};
    f->e = e;
    wb_settings_default(&f->s);
    f->s.alloc = fail_alloc;
    f->s.dealloc = fail_free;
    f->s.alloc_ctx = &f->mem;
    assert_int_equal(wb_solver_create(&f->sv, &f->e, &f->s), WB_OK);
    f->w[0] = 1.0;
    f->w[1] = -0.5;
    for (int i = 0; i < NX; i++) f->g[i] = 1.0 + i;
    for (int k = 0; k < PW; k++) f->out[k] = SENT;
    for (int k = 0; k < NX * PW; k++) f->J[k] = SENT;

    static const double w_true[PW] = {1.5, -0.7};
    for (int i = 0; i < NEX; i++) {
        quad_init(&f->tq[i], NX, PW, 100 + (uint64_t)i);
        for (int r = 0; r < NX; r++) {
            f->ty[i][r] = f->tq[i].d[r];
            for (int j = 0; j < PW; j++)
                f->ty[i][r] += f->tq[i].C[j * NX + r] * w_true[j];
        }
        assert_int_equal(ref_spd_solve(NX, f->tq[i].A, 0.0, 1, f->ty[i]), 0);
    }
    f->ds_fail = -1;
    wb_dataset d = {NEX, f, ds_energy, ds_start, ds_loss};
    f->d = d;
    train_settings(f, &f->ts);
    double w0[PW] = {0.5, 0.5};
    assert_int_equal(wb_trainer_create(&f->t, &f->d, w0, &f->ts), WB_OK);
    assert_int_equal(wb_trainer_w(f->t, f->tw), WB_OK);

    wb_prox_settings_default(&f->ps);
    f->ps.alloc = fail_alloc;
    f->ps.dealloc = fail_free;
    f->ps.alloc_ctx = &f->mem;
    assert_int_equal(wb_prox_create(&f->px, POUT, PIN, &f->ps), WB_OK);
    uint64_t seed = 9;
    for (int k = 0; k < PIN * PM; k++) f->A[k] = 2 * wb_test_rand(&seed) - 1;
    for (int k = 0; k < POUT * PM; k++) f->Z[k] = 2 * wb_test_rand(&seed) - 1;
    for (int k = 0; k < POUT * (PIN + 1); k++) {
        f->T0[k] = 2 * wb_test_rand(&seed) - 1;
        f->T[k] = SENT;
    }
}

static void clear_dir(void) {
    DIR *D = opendir(DIR_);
    if (!D) return;
    struct dirent *de;
    char p[512];
    while ((de = readdir(D)) != NULL) {
        if (de->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", DIR_, de->d_name);
        if (rmdir(p) != 0) remove(p);
    }
    closedir(D);
}

static int count_files(void) {
    DIR *D = opendir(DIR_);
    int n = 0;
    struct dirent *de;
    while (D && (de = readdir(D)) != NULL)
        if (de->d_name[0] != '.') n++;
    if (D) closedir(D);
    return n;
}

/* Destroys everything; returns the blocks still live (leaks). */
static int fx_teardown(fx_t *f) {
    wb_solver_destroy(f->sv);
    wb_trainer_destroy(f->t);
    wb_prox_destroy(f->px);
    quad_free(&f->q);
    for (int i = 0; i < NEX; i++) quad_free(&f->tq[i]);
    clear_dir();
    return f->mem.live;
}

/* ---- the rows ---------------------------------------------------------- */

/* What a generic row changes before the call: one field of one struct. */
typedef enum { TG_NONE, TG_E, TG_S, TG_TS, TG_DS, TG_PS, TG_LSQ } target_t;
typedef enum { K_D = 1, K_I, K_NULL } kind_t;

/* Outputs a row checks for being untouched on an error. */
enum { U_OUT = 1, U_J = 2, U_TW = 4, U_T = 8, PRINTS = 16, NO_FILES = 32,
       BANDED = 64 /* r_create: settings.hessian = WB_HESS_BANDED */ };

typedef struct ecase ecase_t;
typedef int (*run_fn)(fx_t *f, const ecase_t *c);
struct ecase {
    const char *fn, *situation;
    run_fn run;
    chan_t ch;
    int expect;        /* wb_status; for CH_RET rows 0 = post-condition held */
    const char *frag;  /* the message must contain it ("" : no check)        */
    int flags;
    const char *ret;   /* CH_RET: what the function returns, for the table    */
    target_t tg;
    size_t off;
    kind_t kind;
    double dv;
    int iv;
};

#define MUT_D(T, tgt, f, v) .tg = tgt, .off = offsetof(T, f), .kind = K_D, .dv = (v)
#define MUT_I(T, tgt, f, v) .tg = tgt, .off = offsetof(T, f), .kind = K_I, .iv = (v)
#define MUT_0(T, tgt, f) .tg = tgt, .off = offsetof(T, f), .kind = K_NULL
#define E_I(f, v) MUT_I(wb_energy, TG_E, f, v)
#define E_0(f) MUT_0(wb_energy, TG_E, f)
#define S_D(f, v) MUT_D(wb_settings, TG_S, f, v)
#define S_I(f, v) MUT_I(wb_settings, TG_S, f, v)
#define S_0(f) MUT_0(wb_settings, TG_S, f)
#define TS_D(f, v) MUT_D(wb_train_settings, TG_TS, f, v)
#define TS_I(f, v) MUT_I(wb_train_settings, TG_TS, f, v)
#define DS_I(f, v) MUT_I(wb_dataset, TG_DS, f, v)
#define DS_0(f) MUT_0(wb_dataset, TG_DS, f)
#define PS_D(f, v) MUT_D(wb_prox_settings, TG_PS, f, v)
#define PS_I(f, v) MUT_I(wb_prox_settings, TG_PS, f, v)
#define PS_0(f) MUT_0(wb_prox_settings, TG_PS, f)
#define L_D(f, v) MUT_D(wb_lsq, TG_LSQ, f, v)
#define L_I(f, v) MUT_I(wb_lsq, TG_LSQ, f, v)
#define L_0(f) MUT_0(wb_lsq, TG_LSQ, f)

/* The runner's own selector: iv, unless iv is the value of a mutated int
   field (then the runner's plain case, 0). */
static int mode_of(const ecase_t *c) { return c->kind == K_I ? 0 : c->iv; }

static void apply(const ecase_t *c, target_t tg, void *base) {
    if (c->tg != tg) return;
    char *p = (char *)base + c->off;
    if (c->kind == K_D) memcpy(p, &c->dv, sizeof(double));
    else if (c->kind == K_I) memcpy(p, &c->iv, sizeof(int));
    else if (c->kind == K_NULL) memset(p, 0, sizeof(void *));
}

/* ---- runners: the solver ------------------------------------------------- */

static int r_create(fx_t *f, const ecase_t *c) {
    wb_energy e = f->e;
    wb_settings s = f->s;
    apply(c, TG_E, &e);
    apply(c, TG_S, &s);
    if (c->flags & BANDED) s.hessian = WB_HESS_BANDED;
    wb_solver *sv = (wb_solver *)&e; /* must come back NULL on failure */
    wb_status st = wb_solver_create(&sv, &e, &s);
    if (st != WB_OK && sv != NULL) f->post = "*out not set to NULL";
    if (st == WB_OK) wb_solver_destroy(sv);
    wb_solver_explain(&e, &s, f->msg, sizeof f->msg);
    return st;
}
static int r_create_out_null(fx_t *f, const ecase_t *c) {
    (void)c;
    return wb_solver_create(NULL, &f->e, &f->s);
}
static int r_create_e_null(fx_t *f, const ecase_t *c) {
    (void)c;
    wb_solver *sv = (wb_solver *)f;
    wb_status st = wb_solver_create(&sv, NULL, &f->s);
    if (sv != NULL) f->post = "*out not set to NULL";
    wb_solver_explain(NULL, &f->s, f->msg, sizeof f->msg);
    return st;
}
static int r_create_huge(fx_t *f, const ecase_t *c) {
    (void)c;
    wb_energy e = f->e;
    e.n = 100000; /* dense n*n beyond LAPACK's int */
    wb_settings s = f->s;
    s.hessian = WB_HESS_DENSE; /* AUTO goes matrix-free at this n */
    wb_solver *sv = NULL;
    wb_status st = wb_solver_create(&sv, &e, &s);
    if (st == WB_OK) wb_solver_destroy(sv);
    wb_solver_explain(&e, &s, f->msg, sizeof f->msg);
    return st;
}
static int r_create_nomem(fx_t *f, const ecase_t *c) {
    (void)c;
    f->mem.fail_at = f->mem.count + 3; /* the third allocation fails */
    wb_solver *sv = (wb_solver *)f;
    wb_status st = wb_solver_create(&sv, &f->e, &f->s);
    if (sv != NULL) f->post = "*out not set to NULL";
    f->mem.fail_at = 0;
    return st;
}

static int r_explain(fx_t *f, const ecase_t *c) {
    wb_energy e = f->e;
    wb_settings s = f->s;
    apply(c, TG_E, &e);
    apply(c, TG_S, &s);
    return wb_solver_explain(&e, &s, f->msg, sizeof f->msg);
}
static int r_explain_null(fx_t *f, const ecase_t *c) {
    (void)c;
    return wb_solver_explain(NULL, NULL, f->msg, sizeof f->msg);
}
static int r_explain_nobuf(fx_t *f, const ecase_t *c) {
    (void)c;
    wb_settings s = f->s;
    s.lambda = -1;
    return wb_solver_explain(&f->e, &s, NULL, 0);
}
static int r_explain_short(fx_t *f, const ecase_t *c) {
    (void)c;
    wb_settings s = f->s;
    s.lambda = -1;
    memset(f->msg, 'x', sizeof f->msg);
    wb_status st = wb_solver_explain(&f->e, &s, f->msg, 8);
    if (strlen(f->msg) != 7) f->post = "not truncated to len - 1 characters";
    return st;
}

static int r_destroy_null(fx_t *f, const ecase_t *c) {
    (void)f; (void)c;
    wb_solver_destroy(NULL);
    snprintf(f->msg, sizeof f->msg, "(nothing)");
    return 0;
}
static int r_message_null(fx_t *f, const ecase_t *c) {
    (void)c;
    snprintf(f->msg, sizeof f->msg, "%s", wb_solver_message(NULL));
    return 0;
}
static int r_message_fresh(fx_t *f, const ecase_t *c) {
    (void)c;
    const char *m = wb_solver_message(f->sv);
    if (!m || m[0] != '\0') f->post = "not empty before any call";
    snprintf(f->msg, sizeof f->msg, "%s", m ? m : "(NULL)");
    return 0;
}
static int r_settings_default_null(fx_t *f, const ecase_t *c) {
    (void)c;
    wb_settings_default(NULL);
    snprintf(f->msg, sizeof f->msg, "(nothing)");
    return 0;
}
static int r_last_error(fx_t *f, const ecase_t *c) {
    /* 1 nothing failed on this thread, 2 after wb_solve(NULL, ...), 3 a
       success after a failure leaves it, 4 wb_last_error_clear */
    double x[NX] = {0}, w[PW] = {0};
    if (mode_of(c) >= 2 && wb_solve(NULL, w, x, NULL) != WB_EINVAL) return -100;
    if (mode_of(c) == 3 && wb_solve(f->sv, w, x, NULL) != WB_OK) return -100;
    if (mode_of(c) == 4) wb_last_error_clear();
    const char *m = wb_last_error();
    if (!m) return -100;
    snprintf(f->msg, sizeof f->msg, "%s", m);
    return 0;
}
static int r_version(fx_t *f, const ecase_t *c) {
    (void)c;
    const char *v = wb_version();
    if (!v || strcmp(v, WB_VERSION_STRING) != 0) f->post = "not WB_VERSION_STRING";
    snprintf(f->msg, sizeof f->msg, "%s", v ? v : "(NULL)");
    return 0;
}
static int r_status_str_unknown(fx_t *f, const ecase_t *c) {
    (void)c;
    const char *s = wb_status_str((wb_status)-99);
    if (!s) f->post = "NULL";
    snprintf(f->msg, sizeof f->msg, "%s", s ? s : "(NULL)");
    return 0;
}
static int r_status_str_all(fx_t *f, const ecase_t *c) {
    (void)c;
    for (int k = -9; k <= 4; k++) {
        const char *s = wb_status_str((wb_status)k);
        if (!s || !s[0] || strcmp(s, "unknown status") == 0)
            f->post = "a status without its own description";
    }
    snprintf(f->msg, sizeof f->msg, "%s", wb_status_str(WB_EFORMAT));
    return 0;
}

static int r_solve_sv_null(fx_t *f, const ecase_t *c) {
    (void)c;
    wb_info info;
    wb_status st = wb_solve(NULL, f->w, f->x, &info);
    if (info.status != st) f->post = "info.status differs from the return";
    return st;
}
static int r_solve_x_null(fx_t *f, const ecase_t *c) {
    (void)c;
    wb_info info;
    wb_status st = wb_solve(f->sv, f->w, NULL, &info);
    if (info.status != st) f->post = "info.status differs from the return";
    return st;
}
static int r_solve_w_null(fx_t *f, const ecase_t *c) {
    (void)c;
    return wb_solve(f->sv, NULL, f->x, NULL);
}
static int r_solve_x_nan(fx_t *f, const ecase_t *c) {
    (void)c;
    f->x[1] = NAN;
    return wb_solve(f->sv, f->w, f->x, NULL);
}
static int r_solve_x_inf(fx_t *f, const ecase_t *c) {
    (void)c;
    f->x[0] = -INFINITY;
    return wb_solve(f->sv, f->w, f->x, NULL);
}
static int r_solve_w_nan(fx_t *f, const ecase_t *c) {
    (void)c;
    f->w[1] = NAN;
    return wb_solve(f->sv, f->w, f->x, NULL);
}
/* a solve with the fixture's fault set; x must stay finite */
static int r_solve_fault(fx_t *f, const ecase_t *c) {
    f->fault = (fault_t)c->iv;
    for (int i = 0; i < NX; i++) f->x[i] = 1.0;
    wb_status st = wb_solve(f->sv, f->w, f->x, NULL);
    for (int i = 0; i < NX; i++)
        if (!isfinite(f->x[i])) f->post = "x not finite after the failure";
    return st;
}
static int r_solve_maxiter(fx_t *f, const ecase_t *c) {
    (void)c;
    wb_solver *sv = NULL;
    wb_settings s = f->s;
    s.max_iter = 1;
    s.grad_tol = 0;
    s.step_tol = 0;
    if (wb_solver_create(&sv, &f->e, &s) != WB_OK) return -100;
    for (int i = 0; i < NX; i++) f->x[i] = 5.0;
    wb_status st = wb_solve(sv, f->w, f->x, NULL);
    snprintf(f->msg, sizeof f->msg, "%s", wb_solver_message(sv));
    wb_solver_destroy(sv);
    return st;
}
static int cancel_progress(void *u, const wb_progress *pr) {
    (void)u; (void)pr;
    return 1;
}
static int r_solve_cancel(fx_t *f, const ecase_t *c) {
    (void)c;
    wb_solver *sv = NULL;
    wb_settings s = f->s;
    s.progress = cancel_progress;
    if (wb_solver_create(&sv, &f->e, &s) != WB_OK) return -100;
    for (int i = 0; i < NX; i++) f->x[i] = 5.0;
    wb_status st = wb_solve(sv, f->w, f->x, NULL);
    snprintf(f->msg, sizeof f->msg, "%s", wb_solver_message(sv));
    wb_solver_destroy(sv);
    return st;
}
static int r_solve_verbose(fx_t *f, const ecase_t *c) {
    (void)c;
    wb_solver *sv = NULL;
    wb_settings s = f->s;
    s.verbose = 1;
    if (wb_solver_create(&sv, &f->e, &s) != WB_OK) return -100;
    for (int i = 0; i < NX; i++) f->x[i] = 5.0;
    wb_status st = wb_solve(sv, f->w, f->x, NULL);
    snprintf(f->msg, sizeof f->msg, "%s", wb_solver_message(sv));
    wb_solver_destroy(sv);
    return st;
}

static int r_set_energy(fx_t *f, const ecase_t *c) {
    wb_energy e = f->e;
    apply(c, TG_E, &e);
    return wb_solver_set_energy(f->sv, &e);
}
static int r_set_energy_sv_null(fx_t *f, const ecase_t *c) {
    (void)c;
    return wb_solver_set_energy(NULL, &f->e);
}
static int r_set_energy_null(fx_t *f, const ecase_t *c) {
    (void)c;
    return wb_solver_set_energy(f->sv, NULL);
}
static int fx_hvp(void *u, const double *x, const double *w, const double *v,
                  double *Hv) {
    fx_t *f = u;
    (void)x; (void)w;
    for (int i = 0; i < NX; i++) {
        double s = 0.0;
        for (int j = 0; j < NX; j++) s += f->q.A[j * NX + i] * v[j];
        Hv[i] = s;
    }
    return 0;
}
static int r_set_energy_kind(fx_t *f, const ecase_t *c) {
    (void)c;
    wb_energy e = f->e;
    e.hess = NULL;
    e.hvp = fx_hvp; /* matrix-free, the solver is dense */
    return wb_solver_set_energy(f->sv, &e);
}

static int r_set_lambda(fx_t *f, const ecase_t *c) {
    return wb_solver_set_lambda(f->sv, c->dv);
}
static int r_set_lambda_null(fx_t *f, const ecase_t *c) {
    (void)f;
    return wb_solver_set_lambda(NULL, c->dv);
}

/* ---- runners: implicit derivatives -------------------------------------- */

static int solve_ok(fx_t *f) {
    for (int i = 0; i < NX; i++) f->x[i] = 0.0;
    return wb_solve(f->sv, f->w, f->x, NULL);
}
/* a solve at w = 0 from x = 0: stationary at once, whatever H is */
static int solve_at_zero(fx_t *f) {
    for (int i = 0; i < NX; i++) f->x[i] = 0.0;
    f->w[0] = f->w[1] = 0.0;
    return wb_solve(f->sv, f->w, f->x, NULL);
}

static int r_vjp_sv_null(fx_t *f, const ecase_t *c) {
    (void)c;
    return wb_implicit_vjp(NULL, f->g, f->out);
}
static int r_vjp_before_solve(fx_t *f, const ecase_t *c) {
    (void)c;
    return wb_implicit_vjp(f->sv, f->g, f->out);
}
static int r_vjp_after_failed_solve(fx_t *f, const ecase_t *c) {
    (void)c;
    f->fault = F_VG_FAIL;
    wb_solve(f->sv, f->w, f->x, NULL);
    f->fault = F_NONE;
    return wb_implicit_vjp(f->sv, f->g, f->out);
}
static int r_vjp_after_set_energy(fx_t *f, const ecase_t *c) {
    (void)c;
    if (solve_ok(f) != WB_OK) return -100;
    if (wb_solver_set_energy(f->sv, &f->e) != WB_OK) return -100;
    return wb_implicit_vjp(f->sv, f->g, f->out);
}
static int r_vjp_after_vjp_at(fx_t *f, const ecase_t *c) {
    (void)c;
    if (solve_ok(f) != WB_OK) return -100;
    double o[PW];
    if (wb_implicit_vjp_at(f->sv, f->w, f->x, f->g, o) != WB_OK) return -100;
    return wb_implicit_vjp(f->sv, f->g, f->out);
}
static int r_vjp_dl_null(fx_t *f, const ecase_t *c) {
    (void)c;
    if (solve_ok(f) != WB_OK) return -100;
    return wb_implicit_vjp(f->sv, NULL, f->out);
}
static int r_vjp_out_null(fx_t *f, const ecase_t *c) {
    (void)c;
    if (solve_ok(f) != WB_OK) return -100;
    return wb_implicit_vjp(f->sv, f->g, NULL);
}
static int r_vjp_dl_nan(fx_t *f, const ecase_t *c) {
    (void)c;
    if (solve_ok(f) != WB_OK) return -100;
    f->g[2] = NAN;
    return wb_implicit_vjp(f->sv, f->g, f->out);
}
/* the fault (c->iv) is on from the solve at w = 0 on */
static int r_vjp_fault(fx_t *f, const ecase_t *c) {
    f->fault = (fault_t)c->iv;
    if (solve_at_zero(f) != WB_OK) return -100;
    return wb_implicit_vjp(f->sv, f->g, f->out);
}
static int r_vjp_unconverged(fx_t *f, const ecase_t *c) {
    (void)c;
    wb_solver *sv = NULL;
    wb_settings s = f->s;
    s.max_iter = 1;
    s.grad_tol = 0;
    s.step_tol = 0;
    if (wb_solver_create(&sv, &f->e, &s) != WB_OK) return -100;
    for (int i = 0; i < NX; i++) f->x[i] = 5.0;
    wb_status st = WB_OK;
    if (wb_solve(sv, f->w, f->x, NULL) != WB_MAXITER) st = -100;
    if (st == WB_OK) st = wb_implicit_vjp(sv, f->g, f->out);
    if (st == WB_MAXITER && !isfinite(f->out[0])) f->post = "outputs not filled";
    snprintf(f->msg, sizeof f->msg, "%s", wb_solver_message(sv));
    wb_solver_destroy(sv);
    return st;
}

static int r_jac_sv_null(fx_t *f, const ecase_t *c) {
    (void)c;
    return wb_implicit_jacobian(NULL, f->J);
}
static int r_jac_before_solve(fx_t *f, const ecase_t *c) {
    (void)c;
    return wb_implicit_jacobian(f->sv, f->J);
}
static int r_jac_null(fx_t *f, const ecase_t *c) {
    (void)c;
    if (solve_ok(f) != WB_OK) return -100;
    return wb_implicit_jacobian(f->sv, NULL);
}
static int r_jac_fault(fx_t *f, const ecase_t *c) {
    f->fault = (fault_t)c->iv;
    if (solve_at_zero(f) != WB_OK) return -100;
    return wb_implicit_jacobian(f->sv, f->J);
}

static int r_vjp_at(fx_t *f, const ecase_t *c) {
    /* iv: which argument is NULL (1 x, 2 w, 3 dl_dx, 4 dl_dw) or NaN (5 x,
       6 w, 7 dl_dx), 8: the energy fails at x, 9: H indefinite at x */
    const double *w = f->w, *x = f->x, *dl = f->g;
    double *o = f->out;
    switch (c->iv) {
    case 1: x = NULL; break;
    case 2: w = NULL; break;
    case 3: dl = NULL; break;
    case 4: o = NULL; break;
    case 5: f->x[0] = NAN; break;
    case 6: f->w[0] = INFINITY; break;
    case 7: f->g[1] = NAN; break;
    case 8: f->fault = F_VG_FAIL; break;
    case 9: f->fault = F_INDEF; break;
    }
    return wb_implicit_vjp_at(f->sv, w, x, dl, o);
}
static int r_vjp_at_sv_null(fx_t *f, const ecase_t *c) {
    (void)c;
    return wb_implicit_vjp_at(NULL, f->w, f->x, f->g, f->out);
}

static int r_deriv_info_null(fx_t *f, const ecase_t *c) {
    wb_deriv_info di;
    memset(&di, 0x5a, sizeof di);
    wb_deriv_info ref = di;
    if (c->iv == 0) wb_solver_deriv_info(NULL, &di);
    else wb_solver_deriv_info(f->sv, NULL);
    if (memcmp(&di, &ref, sizeof di) != 0) f->post = "output written";
    snprintf(f->msg, sizeof f->msg, "(nothing)");
    return 0;
}

/* ---- runners: the checkers ------------------------------------------------ */

static int r_check_energy(fx_t *f, const ecase_t *c) {
    wb_energy e = f->e;
    wb_settings s = f->s;
    apply(c, TG_E, &e);
    apply(c, TG_S, &s);
    wb_check_report rep;
    const double *x = f->x, *w = f->w;
    wb_check_report *r = &rep;
    union { wb_check_report r; double d[64]; } both;
    switch (mode_of(c)) { /* 1 e NULL, 2 x NULL, 3 w NULL, 4 rep NULL, 5 x NaN,
                        6 rep overlaps x, 10+: a fault, 20: the allocation
                        fails */
    case 1: return wb_check_energy(NULL, &s, x, w, r);
    case 6:
        memcpy(both.d + 2, f->x, sizeof f->x);
        x = both.d + 2;
        r = &both.r;
        break;
    case 2: x = NULL; break;
    case 3: w = NULL; break;
    case 4: r = NULL; break;
    case 5: f->x[0] = NAN; break;
    case 20: f->mem.fail_at = f->mem.count + 1; break;
    default:
        if (mode_of(c) >= 10) f->fault = (fault_t)(mode_of(c) - 10);
    }
    wb_status st = wb_check_energy(&e, &s, x, w, r);
    f->mem.fail_at = 0;
    return st;
}

static int r_check_implicit(fx_t *f, const ecase_t *c) {
    double err = SENT;
    const double *w = f->w, *x0 = f->x;
    double *pe = &err;
    switch (c->iv) { /* 1 w NULL, 2 x0 NULL, 3 err NULL, 4 x0 NaN, 5 the
                        energy fails, 6 H indefinite (lambda forced to 0) */
    case 1: w = NULL; break;
    case 2: x0 = NULL; break;
    case 3: pe = NULL; break;
    case 4: f->x[2] = NAN; break;
    case 5: f->fault = F_VG_FAIL; break;
    case 6:
        f->fault = F_INDEF;
        f->w[0] = f->w[1] = 0.0;
        wb_solver_set_lambda(f->sv, 1e3); /* not used by the checker */
        break;
    }
    wb_status st = wb_check_implicit(f->sv, w, x0, pe);
    if (st < 0 && err != SENT) f->post = "max_rel_err written on an error";
    return st;
}
static int r_check_implicit_sv_null(fx_t *f, const ecase_t *c) {
    (void)c;
    double err;
    return wb_check_implicit(NULL, f->w, f->x, &err);
}

/* ---- runners: least squares ------------------------------------------------ */

static int lsq_res(void *u, const double *x, const double *w, double *r,
                   double *J) {
    (void)u;
    for (int i = 0; i < 3; i++) {
        r[i] = x[0] + (i + 1) * x[1] - w[0] * i;
        if (J) {
            J[0 * 3 + i] = 1.0;
            J[1 * 3 + i] = i + 1.0;
        }
    }
    return 0;
}
static const int ROW_PTR[4] = {0, 2, 4, 6}, COL_IDX[6] = {0, 1, 0, 1, 0, 1};
static const int BAD_ROW_PTR[4] = {1, 2, 4, 6}, BAD_COL_IDX[6] = {0, 1, 0, 2, 0, 1};
static const double BAD_WEIGHTS[3] = {1.0, NAN, 1.0}, NEG_WEIGHTS[3] = {1.0, -1.0, 1.0};

static int r_lsq(fx_t *f, const ecase_t *c) {
    wb_lsq ls;
    memset(&ls, 0, sizeof ls);
    ls.n = 2;
    ls.p = 1;
    ls.m = 3;
    ls.dim = 1;
    ls.residual = lsq_res;
    apply(c, TG_LSQ, &ls);
    switch (mode_of(c)) { /* 1 out NULL, 2 ls NULL, 3 e NULL, 4 bad row_ptr,
                        5 bad col_idx, 6 NaN weight, 7 negative weight */
    case 4: ls.nnz = 6; ls.row_ptr = BAD_ROW_PTR; ls.col_idx = COL_IDX; break;
    case 5: ls.nnz = 6; ls.row_ptr = ROW_PTR; ls.col_idx = BAD_COL_IDX; break;
    case 6: ls.weights = BAD_WEIGHTS; break;
    case 7: ls.weights = NEG_WEIGHTS; break;
    }
    wb_lsq_energy *le = (wb_lsq_energy *)f;
    wb_energy e;
    wb_status st;
    if (mode_of(c) == 1) return wb_lsq_energy_create(NULL, &ls, &e);
    if (mode_of(c) == 8) { /* e written over ls */
        union { wb_lsq ls; wb_energy e; } u;
        u.ls = ls;
        st = wb_lsq_energy_create(&le, &u.ls, &u.e);
        if (st != WB_OK && le != NULL) f->post = "*out not set to NULL";
        if (st == WB_OK) wb_lsq_energy_destroy(le);
        return st;
    }
    if (mode_of(c) == 2) st = wb_lsq_energy_create(&le, NULL, &e);
    else if (mode_of(c) == 3) st = wb_lsq_energy_create(&le, &ls, NULL);
    else st = wb_lsq_energy_create(&le, &ls, &e);
    if (st != WB_OK && le != NULL) f->post = "*out not set to NULL";
    if (st == WB_OK) wb_lsq_energy_destroy(le);
    return st;
}
static int r_lsq_destroy_null(fx_t *f, const ecase_t *c) {
    (void)c;
    wb_lsq_energy_destroy(NULL);
    snprintf(f->msg, sizeof f->msg, "(nothing)");
    return 0;
}
static int r_loss(fx_t *f, const ecase_t *c) {
    (void)f;
    double r = SENT, d1 = SENT, d2 = SENT;
    wb_loss loss = c->iv ? (wb_loss)c->iv : WB_LOSS_HUBER;
    double a = 1.0, s = 2.0;
    if (c->kind == K_D && c->off == 1) a = c->dv;
    if (c->kind == K_D && c->off == 2) s = c->dv;
    wb_status st = wb_loss_eval(loss, a, s, &r, &d1, &d2);
    if (st != WB_OK && (r != SENT || d1 != SENT || d2 != SENT))
        f->post = "outputs written on an error";
    return st;
}
static int r_loss_null_outputs(fx_t *f, const ecase_t *c) {
    (void)f; (void)c;
    return wb_loss_eval(WB_LOSS_CAUCHY, 1.0, 4.0, NULL, NULL, NULL);
}

/* ---- runners: training ------------------------------------------------------ */

/* the message of a refused wb_trainer_create: wb_trainer_explain on the same
   arguments, which must return the same status (unless create failed for a
   reason explain does not look at: out = NULL, an allocation) */
static void explain_create(fx_t *f, const wb_dataset *d, const double *w0,
                           const wb_train_settings *s, wb_status st,
                           int other_reason) {
    wb_status ex = wb_trainer_explain(d, w0, s, f->msg, sizeof f->msg);
    if (!other_reason && ex != st)
        f->post = "wb_trainer_explain disagrees with wb_trainer_create";
}
static int r_trainer_explain(fx_t *f, const ecase_t *c) {
    wb_train_settings s = f->ts;
    double w0[PW] = {0.5, 0.5};
    char small[8] = "xxxxxxx";
    switch (c->iv) { /* 1 buf NULL, 2 len 0, 3 len 8, 4 accepted, 5 s NULL */
    case 1: return wb_trainer_explain(&f->d, w0, &s, NULL, 64);
    case 2: {
        wb_status st = wb_trainer_explain(&f->d, NULL, &s, small, 0);
        if (strcmp(small, "xxxxxxx") != 0) f->post = "wrote into a zero-length buffer";
        return st;
    }
    case 3: {
        wb_status st = wb_trainer_explain(&f->d, NULL, &s, small, sizeof small);
        if (strlen(small) != sizeof small - 1) f->post = "not truncated to len - 1";
        snprintf(f->msg, sizeof f->msg, "%s", small);
        return st;
    }
    case 4: return wb_trainer_explain(&f->d, w0, &s, f->msg, sizeof f->msg);
    case 5: return wb_trainer_explain(&f->d, w0, NULL, f->msg, sizeof f->msg);
    }
    return -100;
}
static int r_trainer_create(fx_t *f, const ecase_t *c) {
    wb_train_settings s = f->ts;
    wb_dataset d = f->d, v = f->d;
    double w0[PW] = {0.5, 0.5};
    double lo[PW] = {0.0, 0.0}, hi[PW] = {1.0, 1.0};
    apply(c, TG_TS, &s);
    apply(c, TG_DS, &d);
    switch (mode_of(c)) { /* 1 out NULL, 2 d NULL, 3 w0 NULL, 4 w0 NaN,
                        5 w0 outside the bounds, 6 lower > upper, 7 NaN
                        bound, 8 energy callback fails (example 0),
                        9 (example 4), 10 validation set without a loss,
                        11 the 5th allocation fails */
    case 1: return wb_trainer_create(NULL, &d, w0, &s);
    case 4: w0[1] = NAN; break;
    case 5: w0[0] = 2.0; s.lower = lo; s.upper = hi; break;
    case 6: lo[1] = 3.0; s.lower = lo; s.upper = hi; break;
    case 7: hi[0] = NAN; s.upper = hi; break;
    case 8: f->ds_fail = 0; break;
    case 9: f->ds_fail = 4; break;
    case 10: v.loss = NULL; s.validation = &v; break;
    case 11: f->mem.fail_at = f->mem.count + 5; break;
    }
    wb_trainer *t = (wb_trainer *)f;
    wb_status st = wb_trainer_create(&t, mode_of(c) == 2 ? NULL : &d,
                                     mode_of(c) == 3 ? NULL : w0, &s);
    f->mem.fail_at = 0;
    if (st != WB_OK && t != NULL) f->post = "*out not set to NULL";
    if (st == WB_OK) wb_trainer_destroy(t);
    explain_create(f, mode_of(c) == 2 ? NULL : &d, mode_of(c) == 3 ? NULL : w0, &s, st,
                   mode_of(c) == 1 || mode_of(c) == 11);
    return st;
}
/* energies whose sizes do not fit: example 2 with p = 1, or n = 0 */
static int bad_energy_p(void *u, int i, wb_energy *e) {
    int r = ds_energy(u, i, e);
    if (i == 2) e->p = PW + 1;
    return r;
}
static int bad_energy_n(void *u, int i, wb_energy *e) {
    int r = ds_energy(u, i, e);
    if (i == 3) e->n = 0;
    return r;
}
static int r_trainer_create_sizes(fx_t *f, const ecase_t *c) {
    wb_train_settings s = f->ts;
    wb_dataset d = f->d, v = f->d;
    double w0[PW] = {0.5, 0.5};
    if (c->iv == 1) d.energy = bad_energy_p;
    if (c->iv == 2) d.energy = bad_energy_n;
    if (c->iv == 3) { v.energy = bad_energy_p; s.validation = &v; }
    wb_trainer *t = (wb_trainer *)f;
    wb_status st = wb_trainer_create(&t, &d, w0, &s);
    if (st != WB_OK && t != NULL) f->post = "*out not set to NULL";
    if (st == WB_OK) wb_trainer_destroy(t);
    explain_create(f, &d, w0, &s, st, 0);
    return st;
}
static int r_trainer_destroy_null(fx_t *f, const ecase_t *c) {
    (void)c;
    wb_trainer_destroy(NULL);
    snprintf(f->msg, sizeof f->msg, "(nothing)");
    return 0;
}
static int r_train_settings_default_null(fx_t *f, const ecase_t *c) {
    (void)c;
    wb_train_settings_default(NULL);
    snprintf(f->msg, sizeof f->msg, "(nothing)");
    return 0;
}
static int r_trainer_message_null(fx_t *f, const ecase_t *c) {
    (void)c;
    snprintf(f->msg, sizeof f->msg, "%s", wb_trainer_message(NULL));
    return 0;
}

static int r_step(fx_t *f, const ecase_t *c) {
    wb_train_info info;
    switch (c->iv) { /* 0 t NULL, 1 after the last step, 2 checkpoint
                        directory missing, 3 verbose (prints), 4 SGD at
                        lr = DBL_MAX from w0 = (1e6, -1e6): w - lr g
                        overflows */
    case 0: return wb_trainer_step(NULL, &info);
    case 1: {
        wb_status st;
        while ((st = wb_trainer_step(f->t, NULL)) == WB_OK) {}
        if (st != WB_DONE) return -100;
        assert_int_equal(wb_trainer_w(f->t, f->tw), WB_OK);
        return wb_trainer_step(f->t, &info);
    }
    case 2: case 3: {
        wb_train_settings s = f->ts;
        char bad[256];
        snprintf(bad, sizeof bad, "%s/missing/ckpt", DIR_);
        if (c->iv == 2) s.checkpoint_path = bad;
        else s.verbose = 1;
        wb_trainer_destroy(f->t);
        f->t = NULL;
        double w0[PW] = {0.5, 0.5};
        if (wb_trainer_create(&f->t, &f->d, w0, &s) != WB_OK) return -100;
        wb_status st = wb_trainer_step(f->t, &info);
        if (c->iv == 3 && st == WB_OK) st = wb_trainer_step(f->t, &info);
        /* the first write is at the end of the first epoch; documented: it
           comes after that step, which is kept (info reports it) */
        long long before = 0;
        while (c->iv == 2 && st == WB_OK) {
            before = info.step;
            st = wb_trainer_step(f->t, &info);
        }
        if (c->iv == 2 && st == WB_EIO && info.step != before + 1)
            f->post = "the step before the failed checkpoint write was lost";
        return st;
    }
    case 4: {
        wb_train_settings s = f->ts;
        s.optimizer = WB_OPT_SGD;
        s.lr = DBL_MAX;
        wb_trainer_destroy(f->t);
        f->t = NULL;
        double w0[PW] = {1e6, -1e6}; /* far off: |g| >> 1 */
        if (wb_trainer_create(&f->t, &f->d, w0, &s) != WB_OK) return -100;
        memcpy(f->tw, w0, sizeof w0);
        wb_status st = wb_trainer_step(f->t, &info);
        if (info.step != 0) f->post = "the failed step was counted";
        return st;
    }
    }
    return -100;
}
static int r_train(fx_t *f, const ecase_t *c) {
    wb_train_info info;
    switch (c->iv) { /* 0 t NULL, 1 again after the end, 2 checkpoint
                        directory missing */
    case 0: return wb_train(NULL, &info);
    case 1:
        if (wb_train(f->t, NULL) != WB_OK) return -100;
        return wb_train(f->t, &info);
    case 2: {
        wb_train_settings s = f->ts;
        char bad[256];
        snprintf(bad, sizeof bad, "%s/missing/ckpt", DIR_);
        s.checkpoint_path = bad;
        wb_trainer_destroy(f->t);
        f->t = NULL;
        double w0[PW] = {0.5, 0.5};
        if (wb_trainer_create(&f->t, &f->d, w0, &s) != WB_OK) return -100;
        return wb_train(f->t, &info);
    }
    }
    return -100;
}
static int r_getters(fx_t *f, const ecase_t *c) {
    double w[PW];
    wb_train_info info;
    switch (c->iv) {
    case 0: return wb_trainer_w(NULL, w);
    case 1: return wb_trainer_w(f->t, NULL);
    case 2: return wb_trainer_best_w(NULL, w, NULL);
    case 3: return wb_trainer_best_w(f->t, NULL, NULL);
    case 4: return wb_trainer_info(NULL, &info);
    case 5: return wb_trainer_info(f->t, NULL);
    case 6: {
        double best = SENT;
        wb_status st = wb_trainer_best_w(f->t, w, &best);
        if (!isnan(best)) f->post = "best loss not NaN without validation";
        return st;
    }
    case 7: { /* best_val_loss inside w */
        w[0] = w[1] = SENT;
        wb_status st = wb_trainer_best_w(f->t, w, &w[1]);
        if (w[0] != SENT || w[1] != SENT) f->post = "w written on an error";
        return st;
    }
    }
    return -100;
}

/* a call into the trainer from inside a callback of its running step (on
   this thread: threads = 1), which leaves its sentence in wb_last_error() */
static int r_busy(fx_t *f, const ecase_t *c) {
    f->t_reenter = 1;
    f->reenter_fn = c->iv;
    f->reenter_st = -100;
    wb_status st = wb_trainer_step(f->t, NULL);
    if (st != WB_OK) f->post = "the running step failed";
    if (f->t_reenter != 2) f->post = "no loss callback ran";
    f->t_reenter = 0;
    return f->reenter_st;
}
static int big_energy(void *u, int i, wb_energy *e) {
    int r = ds_energy(u, i, e);
    if (i == 1) e->n = NX + 2; /* larger than the trainer holds */
    return r;
}
static int r_evaluate(fx_t *f, const ecase_t *c) {
    wb_dataset d = f->d;
    double w[PW] = {0.5, 0.5}, mean = SENT;
    int failed = -1;
    switch (c->iv) { /* 0 t NULL, 1 d NULL, 2 w NULL, 3 count 0, 4 an
                        example too large, 5 other p, 6 energy callback
                        fails, 7 w NaN, 8 every output NULL, 9 mean_loss
                        inside per_example, 10 w inside per_example (w is
                        copied first: the same mean as w apart) */
    case 0: return wb_trainer_evaluate(NULL, &d, w, &mean, &failed, NULL);
    case 1: return wb_trainer_evaluate(f->t, NULL, w, &mean, &failed, NULL);
    case 2: return wb_trainer_evaluate(f->t, &d, NULL, &mean, &failed, NULL);
    case 3: d.count = 0; break;
    case 4: d.energy = big_energy; break;
    case 5: d.energy = bad_energy_p; break;
    case 6: f->ds_fail = 2; break;
    case 7: w[0] = NAN; break;
    case 8: return wb_trainer_evaluate(f->t, &d, w, NULL, NULL, NULL);
    case 9: {
        double pe[NEX];
        return wb_trainer_evaluate(f->t, &d, w, &pe[2], &failed, pe);
    }
    case 10: {
        double pe[NEX], ref;
        if (wb_trainer_evaluate(f->t, &d, w, &ref, NULL, NULL) != WB_OK) return -100;
        memcpy(pe, w, sizeof w);
        wb_status st = wb_trainer_evaluate(f->t, &d, pe, &mean, &failed, pe);
        if (mean != ref) f->post = "w was overwritten by per_example while in use";
        return st;
    }
    }
    return wb_trainer_evaluate(f->t, &d, w, &mean, &failed, NULL);
}

static int r_save(fx_t *f, const ecase_t *c) {
    char p[256];
    switch (c->iv) { /* 0 t NULL, 1 path NULL, 2 directory missing,
                        3 path is a directory */
    case 0: return wb_trainer_save(NULL, CKPT);
    case 1: return wb_trainer_save(f->t, NULL);
    case 2:
        snprintf(p, sizeof p, "%s/missing/ckpt", DIR_);
        return wb_trainer_save(f->t, p);
    case 3:
        snprintf(p, sizeof p, "%s/adir", DIR_);
        if (mkdir(p, 0700) != 0) return -100;
        {
            wb_status st = wb_trainer_save(f->t, p);
            if (count_files() != 1) f->post = "a temporary file was left behind";
            return st;
        }
    }
    return -100;
}

static void fnv_fix(unsigned char *b, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i + 8 < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    memcpy(b + n - 8, &h, 8);
}
static int write_bytes(const char *path, const unsigned char *b, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    size_t put = n ? fwrite(b, 1, n, fp) : 0;
    return fclose(fp) == 0 && put == n ? 0 : -1;
}
/* A checkpoint of another trainer on the fixture's data (settings s,
   `steps` steps) at CKPT. */
static int other_checkpoint(fx_t *f, wb_train_settings *s, int count,
                            int steps) {
    wb_dataset d = f->d;
    d.count = count;
    wb_trainer *t = NULL;
    double w0[PW] = {0.1, 0.2};
    if (wb_trainer_create(&t, &d, w0, s) != WB_OK) return -1;
    for (int k = 0; k < steps; k++) wb_trainer_step(t, NULL);
    int r = wb_trainer_save(t, CKPT) == WB_OK ? 0 : -1;
    wb_trainer_destroy(t);
    return r;
}
static int r_load(fx_t *f, const ecase_t *c) {
    unsigned char b[8192];
    size_t n = 0;
    /* the fixture trainer one step in, so that a refused load shows */
    if (wb_trainer_step(f->t, NULL) != WB_OK) return -100;
    assert_int_equal(wb_trainer_w(f->t, f->tw), WB_OK);
    int spoil = (c->iv >= 3 && c->iv <= 6) || c->iv >= 11;
    if (spoil) { /* a good one to spoil */
        if (wb_trainer_save(f->t, CKPT) != WB_OK) return -100;
        FILE *fp = fopen(CKPT, "rb");
        if (!fp) return -100;
        n = fread(b, 1, sizeof b, fp);
        fclose(fp);
    }
    wb_train_settings s = f->ts;
    char p[256];
    switch (c->iv) { /* 0 t NULL, 1 path NULL, 2 missing file, 3 empty,
                        4 truncated, 5 bit flip, 6 other version, 7 other
                        data set, 8 other optimizer, 9 a later step than
                        this run has, 10 path is a directory, 11 w holds
                        NaN under a valid checksum; under a valid checksum
                        too: 12 epoch = INT_MAX, 13 an example order that is
                        not a permutation, 14 step 0 with epoch 2, 15 the
                        skipped count at INT64_MAX. Layout: step at byte 36,
                        epoch at 44; from the end: hash 8, warm starts
                        NEX*NX doubles, flags NEX bytes, order NEX int32,
                        inner solves 8, skipped 16 before the order */
    case 0: return wb_trainer_load(NULL, CKPT);
    case 1: return wb_trainer_load(f->t, NULL);
    case 2: break;
    case 3: n = 0; break;
    case 4: n -= 9; break;
    case 5: b[n / 2] ^= 0x08; break;
    case 6: b[8] ^= 0x02; fnv_fix(b, n); break;
    case 7: if (other_checkpoint(f, &s, NEX - 1, 1) != 0) return -100; break;
    case 8:
        s.optimizer = WB_OPT_SGD;
        if (other_checkpoint(f, &s, NEX, 1) != 0) return -100;
        break;
    case 9:
        s.epochs = 5;
        if (other_checkpoint(f, &s, NEX, 5) != 0) return -100;
        break;
    case 10:
        snprintf(p, sizeof p, "%s/adir", DIR_);
        if (mkdir(p, 0700) != 0) return -100;
        return wb_trainer_load(f->t, p);
    case 11: { /* w[0] is the first place its bytes occur (w precedes best w) */
        size_t k = 0;
        while (k + 8 <= n && memcmp(b + k, &f->tw[0], 8) != 0) k++;
        if (k + 8 > n) return -100;
        double nan_ = NAN;
        memcpy(b + k, &nan_, 8);
        fnv_fix(b, n);
        break;
    }
    default: {
        size_t order = n - 8 - (size_t)NEX * NX * 8 - NEX - 4 * (size_t)NEX;
        int32_t big = INT32_MAX, two = 2;
        int64_t zero = 0, huge = INT64_MAX;
        if (n < 64 || order < 64) return -100;
        if (c->iv == 12) memcpy(b + 44, &big, 4);
        if (c->iv == 13) memcpy(b + order + 4, b + order, 4);
        if (c->iv == 14) {
            memcpy(b + 36, &zero, 8);
            memcpy(b + 44, &two, 4);
        }
        if (c->iv == 15) memcpy(b + order - 24, &huge, 8);
        fnv_fix(b, n);
        break;
    }
    }
    if (spoil && write_bytes(CKPT, b, n) != 0) return -100;
    return wb_trainer_load(f->t, CKPT);
}

/* ---- runners: ProxProp -------------------------------------------------- */

static int r_prox_create(fx_t *f, const ecase_t *c) {
    wb_prox_settings s = f->ps;
    apply(c, TG_PS, &s);
    int n_out = POUT, n_in = PIN;
    switch (mode_of(c)) { /* 1 out NULL, 2 n_out 0, 3 n_in 0, 4 n_in -2,
                        5 n_in INT_MAX, 6 n_in 50000 (n^2 overflows int),
                        7 the first allocation fails */
    case 1: return wb_prox_create(NULL, n_out, n_in, &s);
    case 2: n_out = 0; break;
    case 3: n_in = 0; break;
    case 4: n_in = -2; break;
    case 5: n_in = INT_MAX; break;
    case 6: n_in = 50000; break;
    case 7: f->mem.fail_at = f->mem.count + 1; break;
    }
    wb_prox *p = (wb_prox *)f;
    wb_status st = wb_prox_create(&p, n_out, n_in, &s);
    f->mem.fail_at = 0;
    if (st != WB_OK && p != NULL) f->post = "*out not set to NULL";
    if (st == WB_OK) wb_prox_destroy(p);
    return st;
}
static int r_prox_step(fx_t *f, const ecase_t *c) {
    const double *A = f->A, *Z = f->Z, *T0 = f->T0;
    double *T = f->T;
    int m = PM;
    switch (c->iv) { /* 0 p NULL, 1 A NULL, 2 Z NULL, 3 T0 NULL, 4 T NULL,
                        5 m 0, 6 m -3, 7 A NaN, 8 Z Inf, 9 T0 NaN,
                        10 overflow, 11 tau so large the system is
                        singular */
    case 0: return wb_prox_step(NULL, m, A, Z, T0, T);
    case 1: A = NULL; break;
    case 2: Z = NULL; break;
    case 3: T0 = NULL; break;
    case 4: T = NULL; break;
    case 5: m = 0; break;
    case 6: m = -3; break;
    case 7: f->A[4] = NAN; break;
    case 8: f->Z[3] = INFINITY; break;
    case 9: f->T0[0] = NAN; break;
    case 10: for (int k = 0; k < PIN * PM; k++) f->A[k] = 1e200; break;
    case 11:
        for (int k = 0; k < PIN * PM; k++) f->A[k] = 1.0; /* rank one */
        if (wb_prox_set_tau(f->px, 1e300) != WB_OK) return -100;
        break;
    }
    return wb_prox_step(f->px, m, A, Z, T0, T);
}
static int r_prox_set_tau(fx_t *f, const ecase_t *c) {
    return wb_prox_set_tau(c->iv ? NULL : f->px, c->dv);
}
static int r_prox_misc(fx_t *f, const ecase_t *c) {
    switch (c->iv) {
    case 0: snprintf(f->msg, sizeof f->msg, "%s", wb_prox_message(NULL)); break;
    case 1: {
        const char *m = wb_prox_message(f->px);
        if (!m || m[0]) f->post = "not empty before any step";
        snprintf(f->msg, sizeof f->msg, "%s", m ? m : "(NULL)");
        break;
    }
    case 2: wb_prox_destroy(NULL); snprintf(f->msg, sizeof f->msg, "(nothing)"); break;
    case 3: wb_prox_settings_default(NULL); snprintf(f->msg, sizeof f->msg, "(nothing)"); break;
    }
    return 0;
}

/* a call made from inside the value_grad of a running wb_solve on the same
   solver (c->iv selects it: see fx_vg); returns what that inner call got */
static int r_reenter(fx_t *f, const ecase_t *c) {
    if (solve_ok(f) != WB_OK) return -100; /* something to differentiate */
    f->fault = F_REENTER;
    f->reenter = c->iv;
    for (int i = 0; i < NX; i++) f->x[i] = 1.0;
    wb_status outer = wb_solve(f->sv, f->w, f->x, NULL);
    f->fault = F_NONE;
    if (outer != WB_OK) f->post = "the running solve was disturbed";
    if (f->inner_calls == 0) return -100;
    if (c->ch == CH_RET) {
        snprintf(f->msg, sizeof f->msg, "%s", wb_last_error());
        return f->inner == WB_EBUSY ? 0 : -100;
    }
    return f->inner;
}
static int r_solve_info_overlap(fx_t *f, const ecase_t *c) {
    (void)c;
    union { wb_info info; double d[64]; } u;
    for (int i = 0; i < NX; i++) u.d[4 + i] = 1.0;
    wb_status st = wb_solve(f->sv, f->w, u.d + 4, &u.info);
    for (int i = 0; i < NX; i++)
        if (u.d[4 + i] != 1.0) f->post = "x written on an error";
    return st;
}
static int r_loss_overlap(fx_t *f, const ecase_t *c) {
    (void)c;
    double r = SENT, d2 = SENT;
    wb_status st = wb_loss_eval(WB_LOSS_HUBER, 1.0, 2.0, &r, &r, &d2);
    if (r != SENT || d2 != SENT) f->post = "outputs written on an error";
    return st;
}

/* ---- the table ------------------------------------------------------------ */

#define NAN_ NAN
#define INF_ INFINITY

static const ecase_t CASES[] = {
    /* library-wide */
    {"wb_version", "any time", r_version, CH_RET, 0, "", .ret = "\"" WB_VERSION_STRING "\""},
    {"wb_status_str", "every wb_status", r_status_str_all, CH_RET, 0, "", .ret = "its own sentence"},
    {"wb_status_str", "a code that is no wb_status (-99)", r_status_str_unknown, CH_RET, 0, "unknown status", .ret = "\"unknown status\""},
    {"wb_settings_default", "s = NULL", r_settings_default_null, CH_RET, 0, "", .ret = "no-op"},
    {"wb_last_error", "nothing failed yet on this thread", r_last_error, CH_RET, 0, "no error recorded", .ret = "a constant sentence", .iv = 1},
    {"wb_last_error", "after wb_solve(NULL, ...)", r_last_error, CH_RET, 0, "wb_solve: sv is NULL", .ret = "the failure's sentence", .iv = 2},
    {"wb_last_error", "a success after the failure", r_last_error, CH_RET, 0, "sv is NULL", .ret = "the failure's sentence (like errno)", .iv = 3},
    {"wb_last_error_clear", "after a failure", r_last_error, CH_RET, 0, "no error recorded", .ret = "wb_last_error empty", .iv = 4},

    /* wb_solver_create (its message: wb_solver_explain) */
    {"wb_solver_create", "out = NULL", r_create_out_null, CH_LAST, WB_EINVAL, ""},
    {"wb_solver_create", "e = NULL", r_create_e_null, CH_BUF, WB_EINVAL, "energy is NULL"},
    {"wb_solver_create", "energy.n = 0", r_create, CH_BUF, WB_EINVAL, "energy.n = 0", E_I(n, 0)},
    {"wb_solver_create", "energy.n = -3", r_create, CH_BUF, WB_EINVAL, "energy.n = -3", E_I(n, -3)},
    {"wb_solver_create", "energy.p = -1", r_create, CH_BUF, WB_EINVAL, "energy.p = -1", E_I(p, -1)},
    {"wb_solver_create", "energy.value_grad = NULL", r_create, CH_BUF, WB_EINVAL, "value_grad is required", E_0(value_grad)},
    {"wb_solver_create", "energy.kd = -1", r_create, CH_BUF, WB_EINVAL, "kd = -1", E_I(kd, -1)},
    {"wb_solver_create", "energy.kd = 3 >= n, settings.hessian = WB_HESS_BANDED", r_create, CH_BUF, WB_EINVAL, "kd = 3", E_I(kd, 3), .flags = BANDED},
    {"wb_solver_create", "energy.kd = 3 >= n, dense (hess given)", r_create, CH_BUF, WB_EINVAL, "kd = 3", E_I(kd, 3)},
    {"wb_solver_create", "settings.hessian = WB_HESS_BANDED, energy.kd = 0", r_create, CH_BUF, WB_EINVAL, "banded Hessian requested", S_I(hessian, WB_HESS_BANDED)},
    {"wb_solver_create", "settings.hessian = WB_HESS_SPARSE, no pattern", r_create, CH_BUF, WB_EINVAL, "sparse Hessian requested", S_I(hessian, WB_HESS_SPARSE)},
    {"wb_solver_create", "energy.hess_nnz = 5, pattern arrays NULL", r_create, CH_BUF, WB_EINVAL, "hess_colptr or hess_rowidx is NULL", E_I(hess_nnz, 5)},
    {"wb_solver_create", "energy.hess_nnz = -1", r_create, CH_BUF, WB_EINVAL, "hess_nnz = -1 must be >= 0", E_I(hess_nnz, -1)},
    {"wb_solver_create", "settings.hessian = 9", r_create, CH_BUF, WB_EINVAL, "settings.hessian = 9", S_I(hessian, 9)},
    {"wb_solver_create", "n = 100000, dense: n*n exceeds LAPACK's int", r_create_huge, CH_BUF, WB_EINVAL, "exceeds LAPACK's int sizes"},
    {"wb_solver_create", "settings.max_iter = -1", r_create, CH_BUF, WB_EINVAL, "settings.max_iter = -1", S_I(max_iter, -1)},
    {"wb_solver_create", "settings.grad_tol = NaN", r_create, CH_BUF, WB_EINVAL, "settings.grad_tol", S_D(grad_tol, NAN_)},
    {"wb_solver_create", "settings.grad_tol = -1", r_create, CH_BUF, WB_EINVAL, "settings.grad_tol = -1", S_D(grad_tol, -1)},
    {"wb_solver_create", "settings.step_tol = Inf", r_create, CH_BUF, WB_EINVAL, "settings.step_tol = inf", S_D(step_tol, INF_)},
    {"wb_solver_create", "settings.f_tol = -1e-3", r_create, CH_BUF, WB_EINVAL, "settings.f_tol", S_D(f_tol, -1e-3)},
    {"wb_solver_create", "settings.lambda = -0.5", r_create, CH_BUF, WB_EINVAL, "settings.lambda = -0.5", S_D(lambda, -0.5)},
    {"wb_solver_create", "settings.lambda = NaN", r_create, CH_BUF, WB_EINVAL, "settings.lambda", S_D(lambda, NAN_)},
    {"wb_solver_create", "settings.lambda = Inf", r_create, CH_BUF, WB_EINVAL, "settings.lambda = inf", S_D(lambda, INF_)},
    {"wb_solver_create", "settings.mu0 = 0", r_create, CH_BUF, WB_EINVAL, "settings.mu0 = 0", S_D(mu0, 0)},
    {"wb_solver_create", "settings.mu0 = NaN", r_create, CH_BUF, WB_EINVAL, "settings.mu0", S_D(mu0, NAN_)},
    {"wb_solver_create", "settings.scale_damping = 7", r_create, CH_BUF, WB_EINVAL, "settings.scale_damping = 7", S_I(scale_damping, 7)},
    {"wb_solver_create", "settings.fd_step = 0", r_create, CH_BUF, WB_EINVAL, "settings.fd_step = 0", S_D(fd_step, 0)},
    {"wb_solver_create", "settings.fd_step = 1", r_create, CH_BUF, WB_EINVAL, "settings.fd_step = 1", S_D(fd_step, 1)},
    {"wb_solver_create", "settings.fd_step = NaN", r_create, CH_BUF, WB_EINVAL, "settings.fd_step", S_D(fd_step, NAN_)},
    {"wb_solver_create", "settings.min_rcond = 2", r_create, CH_BUF, WB_EINVAL, "settings.min_rcond = 2", S_D(min_rcond, 2)},
    {"wb_solver_create", "settings.min_rcond = -1e-3", r_create, CH_BUF, WB_EINVAL, "settings.min_rcond", S_D(min_rcond, -1e-3)},
    {"wb_solver_create", "settings.min_rcond = NaN", r_create, CH_BUF, WB_EINVAL, "settings.min_rcond", S_D(min_rcond, NAN_)},
    {"wb_solver_create", "settings.curv_floor = -1", r_create, CH_BUF, WB_EINVAL, "settings.curv_floor", S_D(curv_floor, -1)},
    {"wb_solver_create", "settings.curv_floor = NaN", r_create, CH_BUF, WB_EINVAL, "settings.curv_floor", S_D(curv_floor, NAN_)},
    {"wb_solver_create", "settings.curv_floor = Inf", r_create, CH_BUF, WB_EINVAL, "settings.curv_floor", S_D(curv_floor, INFINITY)},
    {"wb_solver_create", "settings.cg_max_iter = -1", r_create, CH_BUF, WB_EINVAL, "settings.cg_max_iter = -1", S_I(cg_max_iter, -1)},
    {"wb_solver_create", "settings.cg_tol = 0", r_create, CH_BUF, WB_EINVAL, "settings.cg_tol = 0", S_D(cg_tol, 0)},
    {"wb_solver_create", "settings.cg_tol = NaN", r_create, CH_BUF, WB_EINVAL, "settings.cg_tol", S_D(cg_tol, NAN_)},
    {"wb_solver_create", "settings.tr_radius0 = -1", r_create, CH_BUF, WB_EINVAL, "settings.tr_radius0 = -1", S_D(tr_radius0, -1)},
    {"wb_solver_create", "settings.lbfgs_memory = 0", r_create, CH_BUF, WB_EINVAL, "settings.lbfgs_memory = 0", S_I(lbfgs_memory, 0)},
    {"wb_solver_create", "settings.lbfgs_memory = -1", r_create, CH_BUF, WB_EINVAL, "settings.lbfgs_memory = -1", S_I(lbfgs_memory, -1)},
    {"wb_solver_create", "settings.lbfgs_max_iter = -1", r_create, CH_BUF, WB_EINVAL, "settings.lbfgs_max_iter = -1", S_I(lbfgs_max_iter, -1)},
    {"wb_solver_create", "settings.alloc without settings.dealloc", r_create, CH_BUF, WB_EINVAL, "set together", S_0(dealloc)},
    {"wb_solver_create", "the 3rd allocation fails", r_create_nomem, CH_LAST, WB_ENOMEM, ""},
    {"wb_solver_destroy", "sv = NULL", r_destroy_null, CH_RET, 0, "", .ret = "no-op"},

    /* wb_solver_explain */
    {"wb_solver_explain", "e = NULL", r_explain_null, CH_BUF, WB_EINVAL, "energy is NULL"},
    {"wb_solver_explain", "valid energy and settings", r_explain, CH_BUF, WB_OK, "ok"},
    {"wb_solver_explain", "settings.lambda = -1, msg = NULL, len = 0", r_explain_nobuf, CH_LAST, WB_EINVAL, ""},
    {"wb_solver_explain", "settings.lambda = -1, len = 8: truncated", r_explain_short, CH_BUF, WB_EINVAL, "setting"},

    /* wb_solve */
    {"wb_solve", "sv = NULL", r_solve_sv_null, CH_LAST, WB_EINVAL, ""},
    {"wb_solve", "x = NULL", r_solve_x_null, CH_SOLVER, WB_EINVAL, "x is NULL"},
    {"wb_solve", "w = NULL with p > 0", r_solve_w_null, CH_SOLVER, WB_EINVAL, "w is NULL"},
    {"wb_solve", "x holds NaN", r_solve_x_nan, CH_SOLVER, WB_EINVAL, "NaN or Inf"},
    {"wb_solve", "x holds -Inf", r_solve_x_inf, CH_SOLVER, WB_EINVAL, "NaN or Inf"},
    {"wb_solve", "w holds NaN", r_solve_w_nan, CH_SOLVER, WB_EINVAL, "NaN or Inf"},
    {"wb_solve", "value_grad returns 7", r_solve_fault, CH_SOLVER, WB_ECALLBACK, "value_grad returned 7", .iv = F_VG_FAIL},
    {"wb_solve", "value_grad returns E = NaN", r_solve_fault, CH_SOLVER, WB_ENONFINITE, "non-finite energy", .iv = F_VG_NAN},
    {"wb_solve", "value_grad returns an Inf gradient", r_solve_fault, CH_SOLVER, WB_ENONFINITE, "non-finite gradient", .iv = F_G_INF},
    {"wb_solve", "hess returns -1", r_solve_fault, CH_SOLVER, WB_ECALLBACK, "hess returned -1", .iv = F_HESS_FAIL},
    {"wb_solve", "hess returns NaN entries", r_solve_fault, CH_SOLVER, WB_ENONFINITE, "non-finite entries", .iv = F_HESS_NAN},
    {"wb_solve", "hess returns a non-symmetric matrix", r_solve_fault, CH_SOLVER, WB_ECALLBACK, "non-symmetric", .iv = F_HESS_ASYM},
    {"wb_solve", "max_iter = 1 reached", r_solve_maxiter, CH_BUF, WB_MAXITER, "iteration limit reached"},
    {"wb_solve", "the progress callback returns 1", r_solve_cancel, CH_BUF, WB_CANCELED, "canceled"},
    {"wb_solve", "settings.verbose = 1 (prints on stderr, as asked)", r_solve_verbose, CH_BUF, WB_OK, "after", .flags = PRINTS},
    {"wb_solve", "info overlaps x", r_solve_info_overlap, CH_SOLVER, WB_EINVAL, "info overlaps x"},
    {"wb_solve", "called from a callback of a running wb_solve on the same solver", r_reenter, CH_LAST, WB_EBUSY, "in use by another call", .iv = 0},
    {"wb_solver_message", "sv = NULL", r_message_null, CH_RET, 0, "no solver", .ret = "\"no solver\""},
    {"wb_solver_message", "before any call", r_message_fresh, CH_RET, 0, "", .ret = "\"\""},

    /* wb_solver_set_energy / wb_solver_set_lambda */
    {"wb_solver_set_energy", "sv = NULL", r_set_energy_sv_null, CH_LAST, WB_EINVAL, ""},
    {"wb_solver_set_energy", "e = NULL", r_set_energy_null, CH_SOLVER, WB_EINVAL, "energy is NULL"},
    {"wb_solver_set_energy", "a larger n than created for", r_set_energy, CH_SOLVER, WB_EINVAL, "do not fit", E_I(n, NX + 1)},
    {"wb_solver_set_energy", "another p", r_set_energy, CH_SOLVER, WB_EINVAL, "do not fit", E_I(p, PW - 1)},
    {"wb_solver_set_energy", "energy.n = 0", r_set_energy, CH_SOLVER, WB_EINVAL, "energy.n = 0", E_I(n, 0)},
    {"wb_solver_set_energy", "energy.value_grad = NULL", r_set_energy, CH_SOLVER, WB_EINVAL, "value_grad is required", E_0(value_grad)},
    {"wb_solver_set_energy", "energy.kd = -2", r_set_energy, CH_SOLVER, WB_EINVAL, "kd = -2", E_I(kd, -2)},
    {"wb_solver_set_energy", "a matrix-free energy on a dense solver", r_set_energy_kind, CH_SOLVER, WB_EINVAL, "another Hessian storage"},
    {"wb_solver_set_lambda", "sv = NULL", r_set_lambda_null, CH_LAST, WB_EINVAL, "", .dv = 1.0},
    {"wb_solver_set_lambda", "lambda = -1", r_set_lambda, CH_SOLVER, WB_EINVAL, "lambda = -1", .dv = -1.0},
    {"wb_solver_set_lambda", "lambda = NaN", r_set_lambda, CH_SOLVER, WB_EINVAL, "lambda = nan", .dv = NAN_},
    {"wb_solver_set_lambda", "lambda = Inf", r_set_lambda, CH_SOLVER, WB_EINVAL, "lambda = inf", .dv = INF_},
    {"wb_solver_set_energy", "called from a callback of a running wb_solve on the same solver", r_reenter, CH_LAST, WB_EBUSY, "in use by another call", .iv = 4},
    {"wb_solver_set_lambda", "called from a callback of a running wb_solve on the same solver", r_reenter, CH_LAST, WB_EBUSY, "in use by another call", .iv = 5},

    /* wb_implicit_vjp */
    {"wb_implicit_vjp", "sv = NULL", r_vjp_sv_null, CH_LAST, WB_EINVAL, "", .flags = U_OUT},
    {"wb_implicit_vjp", "before any wb_solve", r_vjp_before_solve, CH_SOLVER, WB_ENOTSOLVED, "no successful wb_solve", .flags = U_OUT},
    {"wb_implicit_vjp", "after a failed wb_solve", r_vjp_after_failed_solve, CH_SOLVER, WB_ENOTSOLVED, "no successful wb_solve", .flags = U_OUT},
    {"wb_implicit_vjp", "after wb_solver_set_energy", r_vjp_after_set_energy, CH_SOLVER, WB_ENOTSOLVED, "no successful wb_solve", .flags = U_OUT},
    {"wb_implicit_vjp", "after wb_implicit_vjp_at (another point)", r_vjp_after_vjp_at, CH_SOLVER, WB_ENOTSOLVED, "no successful wb_solve", .flags = U_OUT},
    {"wb_implicit_vjp", "dl_dx = NULL", r_vjp_dl_null, CH_SOLVER, WB_EINVAL, "dl_dx is NULL", .flags = U_OUT},
    {"wb_implicit_vjp", "dl_dw = NULL with p > 0", r_vjp_out_null, CH_SOLVER, WB_EINVAL, "dl_dw is NULL"},
    {"wb_implicit_vjp", "dl_dx holds NaN", r_vjp_dl_nan, CH_SOLVER, WB_EINVAL, "NaN or Inf", .flags = U_OUT},
    {"wb_implicit_vjp", "H indefinite at x*, lambda = 0", r_vjp_fault, CH_SOLVER, WB_ESINGULAR, "not positive definite", .flags = U_OUT, .iv = F_INDEF},
    {"wb_implicit_vjp", "H positive definite but rcond 1e-17 < min_rcond", r_vjp_fault, CH_SOLVER, WB_ESINGULAR, "numerically singular", .flags = U_OUT, .iv = F_SING},
    {"wb_implicit_vjp", "mixed_vjp returns 3", r_vjp_fault, CH_SOLVER, WB_ECALLBACK, "mixed_vjp returned 3", .flags = U_OUT, .iv = F_MIXED_FAIL},
    {"wb_implicit_vjp", "x* did not converge (max_iter reached)", r_vjp_unconverged, CH_BUF, WB_MAXITER, "had not converged"},
    {"wb_implicit_vjp", "called from a callback of a running wb_solve on the same solver", r_reenter, CH_LAST, WB_EBUSY, "in use by another call", .iv = 1},

    /* wb_implicit_jacobian */
    {"wb_implicit_jacobian", "sv = NULL", r_jac_sv_null, CH_LAST, WB_EINVAL, "", .flags = U_J},
    {"wb_implicit_jacobian", "before any wb_solve", r_jac_before_solve, CH_SOLVER, WB_ENOTSOLVED, "no successful wb_solve", .flags = U_J},
    {"wb_implicit_jacobian", "dx_dw = NULL with p > 0", r_jac_null, CH_SOLVER, WB_EINVAL, "dx_dw is NULL"},
    {"wb_implicit_jacobian", "H indefinite at x*, lambda = 0", r_jac_fault, CH_SOLVER, WB_ESINGULAR, "not positive definite", .flags = U_J, .iv = F_INDEF},
    {"wb_implicit_jacobian", "mixed returns 3", r_jac_fault, CH_SOLVER, WB_ECALLBACK, "mixed returned 3", .flags = U_J, .iv = F_MIXED_FAIL},
    {"wb_implicit_jacobian", "mixed returns NaN", r_jac_fault, CH_SOLVER, WB_ENONFINITE, "not finite", .flags = U_J, .iv = F_MIXED_NAN},
    {"wb_implicit_jacobian", "called from a callback of a running wb_solve on the same solver", r_reenter, CH_LAST, WB_EBUSY, "in use by another call", .iv = 2},

    /* wb_implicit_vjp_at */
    {"wb_implicit_vjp_at", "sv = NULL", r_vjp_at_sv_null, CH_LAST, WB_EINVAL, "", .flags = U_OUT},
    {"wb_implicit_vjp_at", "x = NULL", r_vjp_at, CH_SOLVER, WB_EINVAL, "x is NULL", .flags = U_OUT, .iv = 1},
    {"wb_implicit_vjp_at", "w = NULL with p > 0", r_vjp_at, CH_SOLVER, WB_EINVAL, "w is NULL", .flags = U_OUT, .iv = 2},
    {"wb_implicit_vjp_at", "dl_dx = NULL", r_vjp_at, CH_SOLVER, WB_EINVAL, "dl_dx is NULL", .flags = U_OUT, .iv = 3},
    {"wb_implicit_vjp_at", "dl_dw = NULL with p > 0", r_vjp_at, CH_SOLVER, WB_EINVAL, "dl_dw is NULL", .iv = 4},
    {"wb_implicit_vjp_at", "x holds NaN", r_vjp_at, CH_SOLVER, WB_EINVAL, "NaN or Inf", .flags = U_OUT, .iv = 5},
    {"wb_implicit_vjp_at", "w holds Inf", r_vjp_at, CH_SOLVER, WB_EINVAL, "NaN or Inf", .flags = U_OUT, .iv = 6},
    {"wb_implicit_vjp_at", "dl_dx holds NaN", r_vjp_at, CH_SOLVER, WB_EINVAL, "NaN or Inf", .flags = U_OUT, .iv = 7},
    {"wb_implicit_vjp_at", "value_grad fails at x", r_vjp_at, CH_SOLVER, WB_ECALLBACK, "value_grad returned 7", .flags = U_OUT, .iv = 8},
    {"wb_implicit_vjp_at", "H indefinite at x, lambda = 0", r_vjp_at, CH_SOLVER, WB_ESINGULAR, "not positive definite", .flags = U_OUT, .iv = 9},
    {"wb_implicit_vjp_at", "called from a callback of a running wb_solve on the same solver", r_reenter, CH_LAST, WB_EBUSY, "in use by another call", .iv = 3},
    {"wb_solver_deriv_info", "called from a callback of a running wb_solve on the same solver", r_reenter, CH_RET, 0, "in use by another call", .ret = "out->status = WB_EBUSY", .iv = 7},
    {"wb_solver_deriv_info", "sv = NULL", r_deriv_info_null, CH_RET, 0, "", .ret = "no-op", .iv = 0},
    {"wb_solver_deriv_info", "out = NULL", r_deriv_info_null, CH_RET, 0, "", .ret = "no-op", .iv = 1},

    /* wb_check_energy: no message channel (no object) */
    {"wb_check_energy", "e = NULL", r_check_energy, CH_LAST, WB_EINVAL, "e is NULL", .iv = 1},
    {"wb_check_energy", "x = NULL", r_check_energy, CH_LAST, WB_EINVAL, "x is NULL", .iv = 2},
    {"wb_check_energy", "w = NULL with p > 0", r_check_energy, CH_LAST, WB_EINVAL, "w is NULL", .iv = 3},
    {"wb_check_energy", "rep = NULL", r_check_energy, CH_LAST, WB_EINVAL, "rep is NULL", .iv = 4},
    {"wb_check_energy", "energy.n = 0", r_check_energy, CH_LAST, WB_EINVAL, "energy.n = 0", E_I(n, 0)},
    {"wb_check_energy", "settings.fd_step = -1", r_check_energy, CH_LAST, WB_EINVAL, "fd_step", S_D(fd_step, -1)},
    {"wb_check_energy", "settings.lambda = NaN", r_check_energy, CH_LAST, WB_EINVAL, "lambda", S_D(lambda, NAN_)},
    {"wb_check_energy", "x holds NaN", r_check_energy, CH_LAST, WB_EINVAL, "NaN", .iv = 5},
    {"wb_check_energy", "value_grad returns 7", r_check_energy, CH_LAST, WB_ECALLBACK, "returned non-zero", .iv = 10 + F_VG_FAIL},
    {"wb_check_energy", "hess returns -1", r_check_energy, CH_LAST, WB_ECALLBACK, "returned non-zero", .iv = 10 + F_HESS_FAIL},
    {"wb_check_energy", "mixed returns 3", r_check_energy, CH_LAST, WB_ECALLBACK, "returned non-zero", .iv = 10 + F_MIXED_FAIL},
    {"wb_check_energy", "its allocation fails", r_check_energy, CH_LAST, WB_ENOMEM, "out of memory", .iv = 20},
    {"wb_check_energy", "rep overlaps x", r_check_energy, CH_LAST, WB_EINVAL, "rep overlaps x", .iv = 6},
    {"wb_check_energy", "hess leaves H(2,1) and H(1,2) unwritten", r_check_energy, CH_LAST, WB_ECALLBACK, "hess left entry (2,1) of H unwritten (2 of its 9", .iv = 10 + F_HESS_HOLE},

    /* wb_check_implicit */
    {"wb_check_implicit", "sv = NULL", r_check_implicit_sv_null, CH_LAST, WB_EINVAL, ""},
    {"wb_check_implicit", "w = NULL with p > 0", r_check_implicit, CH_SOLVER, WB_EINVAL, "NULL argument", .iv = 1},
    {"wb_check_implicit", "x0 = NULL", r_check_implicit, CH_SOLVER, WB_EINVAL, "NULL argument", .iv = 2},
    {"wb_check_implicit", "max_rel_err = NULL", r_check_implicit, CH_SOLVER, WB_EINVAL, "NULL argument", .iv = 3},
    {"wb_check_implicit", "x0 holds NaN", r_check_implicit, CH_SOLVER, WB_EINVAL, "NaN or Inf", .iv = 4},
    {"wb_check_implicit", "value_grad returns 7", r_check_implicit, CH_SOLVER, WB_ECALLBACK, "value_grad returned 7", .iv = 5},
    {"wb_check_implicit", "H indefinite at x* (lambda forced to 0)", r_check_implicit, CH_SOLVER, WB_ESINGULAR, "not positive definite", .iv = 6},
    {"wb_check_implicit", "called from a callback of a running wb_solve on the same solver", r_reenter, CH_LAST, WB_EBUSY, "in use by another call", .iv = 6},

    /* wb_lsq_energy_create: no message channel */
    {"wb_lsq_energy_create", "out = NULL", r_lsq, CH_LAST, WB_EINVAL, "out is NULL", .iv = 1},
    {"wb_lsq_energy_create", "ls = NULL", r_lsq, CH_LAST, WB_EINVAL, "ls is NULL", .iv = 2},
    {"wb_lsq_energy_create", "e = NULL", r_lsq, CH_LAST, WB_EINVAL, "e is NULL", .iv = 3},
    {"wb_lsq_energy_create", "residual = NULL", r_lsq, CH_LAST, WB_EINVAL, "residual is required", L_0(residual)},
    {"wb_lsq_energy_create", "n = 0", r_lsq, CH_LAST, WB_EINVAL, "ls.n = 0", L_I(n, 0)},
    {"wb_lsq_energy_create", "p = -1", r_lsq, CH_LAST, WB_EINVAL, "ls.p = -1", L_I(p, -1)},
    {"wb_lsq_energy_create", "m = 0", r_lsq, CH_LAST, WB_EINVAL, "ls.m = 0", L_I(m, 0)},
    {"wb_lsq_energy_create", "dim = 0", r_lsq, CH_LAST, WB_EINVAL, "ls.dim = 0", L_I(dim, 0)},
    {"wb_lsq_energy_create", "m * dim overflows int", r_lsq, CH_LAST, WB_EINVAL, "exceed LAPACK", L_I(dim, INT_MAX)},
    {"wb_lsq_energy_create", "nnz = -1", r_lsq, CH_LAST, WB_EINVAL, "ls.nnz = -1", L_I(nnz, -1)},
    {"wb_lsq_energy_create", "nnz > 0 without row_ptr / col_idx", r_lsq, CH_LAST, WB_EINVAL, "needs ls.row_ptr", L_I(nnz, 6)},
    {"wb_lsq_energy_create", "row_ptr[0] != 0", r_lsq, CH_LAST, WB_EINVAL, "row_ptr must start at 0", .iv = 4},
    {"wb_lsq_energy_create", "col_idx out of range", r_lsq, CH_LAST, WB_EINVAL, "col_idx[", .iv = 5},
    {"wb_lsq_energy_create", "kd > 0 with a dense Jacobian", r_lsq, CH_LAST, WB_EINVAL, "needs a sparse", L_I(kd, 1)},
    {"wb_lsq_energy_create", "kd = -1", r_lsq, CH_LAST, WB_EINVAL, "ls.kd = -1", L_I(kd, -1)},
    {"wb_lsq_energy_create", "loss = 9", r_lsq, CH_LAST, WB_EINVAL, "ls.loss = 9", L_I(loss, 9)},
    {"wb_lsq_energy_create", "loss_scale = NaN", r_lsq, CH_LAST, WB_EINVAL, "loss_scale = nan", L_D(loss_scale, NAN_)},
    {"wb_lsq_energy_create", "loss_scale = -1", r_lsq, CH_LAST, WB_EINVAL, "loss_scale = -1", L_D(loss_scale, -1)},
    {"wb_lsq_energy_create", "hessian = 5", r_lsq, CH_LAST, WB_EINVAL, "ls.hessian = 5", L_I(hessian, 5)},
    {"wb_lsq_energy_create", "a weight is NaN", r_lsq, CH_LAST, WB_EINVAL, "weights[", .iv = 6},
    {"wb_lsq_energy_create", "a weight is negative", r_lsq, CH_LAST, WB_EINVAL, "weights[", .iv = 7},
    {"wb_lsq_energy_create", "e overlaps ls", r_lsq, CH_LAST, WB_EINVAL, "share memory", .iv = 8},
    {"wb_lsq_energy_destroy", "le = NULL", r_lsq_destroy_null, CH_RET, 0, "", .ret = "no-op"},

    /* wb_loss_eval: no message channel; .off 1: a, 2: s */
    {"wb_loss_eval", "loss = 99", r_loss, CH_LAST, WB_EINVAL, "loss = 99", .iv = 99},
    {"wb_loss_eval", "a = 0", r_loss, CH_LAST, WB_EINVAL, "a = 0", .kind = K_D, .off = 1, .dv = 0.0},
    {"wb_loss_eval", "a = NaN", r_loss, CH_LAST, WB_EINVAL, "a = nan", .kind = K_D, .off = 1, .dv = NAN_},
    {"wb_loss_eval", "a = Inf", r_loss, CH_LAST, WB_EINVAL, "a = inf", .kind = K_D, .off = 1, .dv = INF_},
    {"wb_loss_eval", "s = -1", r_loss, CH_LAST, WB_EINVAL, "s = -1", .kind = K_D, .off = 2, .dv = -1.0},
    {"wb_loss_eval", "s = NaN", r_loss, CH_LAST, WB_EINVAL, "s = nan", .kind = K_D, .off = 2, .dv = NAN_},
    {"wb_loss_eval", "every output NULL", r_loss_null_outputs, CH_LAST, WB_OK, ""},
    {"wb_loss_eval", "rho and drho the same pointer", r_loss_overlap, CH_LAST, WB_EINVAL, "share memory"},

    /* wb_trainer_create: no message channel (*out is NULL on failure) */
    {"wb_trainer_create", "out = NULL", r_trainer_create, CH_LAST, WB_EINVAL, "", .iv = 1},
    {"wb_trainer_create", "d = NULL", r_trainer_create, CH_BUF, WB_EINVAL, "data set is NULL", .iv = 2},
    {"wb_trainer_create", "w0 = NULL", r_trainer_create, CH_BUF, WB_EINVAL, "w0 is NULL", .iv = 3},
    {"wb_trainer_create", "w0 holds NaN", r_trainer_create, CH_BUF, WB_EINVAL, "w0[1] = nan", .iv = 4},
    {"wb_trainer_create", "w0 outside [lower, upper]", r_trainer_create, CH_BUF, WB_EINVAL, "outside its bounds", .iv = 5},
    {"wb_trainer_create", "lower > upper", r_trainer_create, CH_BUF, WB_EINVAL, "not an interval", .iv = 6},
    {"wb_trainer_create", "an upper bound is NaN", r_trainer_create, CH_BUF, WB_EINVAL, "not an interval", .iv = 7},
    {"wb_trainer_create", "data set count = 0", r_trainer_create, CH_BUF, WB_EINVAL, "count = 0", DS_I(count, 0)},
    {"wb_trainer_create", "data set energy = NULL", r_trainer_create, CH_BUF, WB_EINVAL, "callbacks are required", DS_0(energy)},
    {"wb_trainer_create", "data set start = NULL", r_trainer_create, CH_BUF, WB_EINVAL, "callbacks are required", DS_0(start)},
    {"wb_trainer_create", "data set loss = NULL", r_trainer_create, CH_BUF, WB_EINVAL, "callbacks are required", DS_0(loss)},
    {"wb_trainer_create", "validation set without a loss", r_trainer_create, CH_BUF, WB_EINVAL, "validation set", .iv = 10},
    {"wb_trainer_create", "the energy callback fails for example 0", r_trainer_create, CH_BUF, WB_ECALLBACK, "for example 0", .iv = 8},
    {"wb_trainer_create", "the energy callback fails for example 4", r_trainer_create, CH_BUF, WB_ECALLBACK, "for example 4", .iv = 9},
    {"wb_trainer_create", "example 2 has another p", r_trainer_create_sizes, CH_BUF, WB_EINVAL, "example 2 has p = 3", .iv = 1},
    {"wb_trainer_create", "example 3 has n = 0", r_trainer_create_sizes, CH_BUF, WB_EINVAL, "example 3: energy.n = 0", .iv = 2},
    {"wb_trainer_create", "a validation example has another p", r_trainer_create_sizes, CH_BUF, WB_EINVAL, "validation set: example 2", .iv = 3},
    {"wb_trainer_create", "solver.lambda = NaN", r_trainer_create, CH_BUF, WB_EINVAL, "lambda", TS_D(solver.lambda, NAN_)},
    {"wb_trainer_create", "solver.max_iter = -1", r_trainer_create, CH_BUF, WB_EINVAL, "max_iter", TS_I(solver.max_iter, -1)},
    {"wb_trainer_create", "lr = 0", r_trainer_create, CH_BUF, WB_EINVAL, "lr", TS_D(lr, 0)},
    {"wb_trainer_create", "lr = NaN", r_trainer_create, CH_BUF, WB_EINVAL, "lr", TS_D(lr, NAN_)},
    {"wb_trainer_create", "momentum = 1", r_trainer_create, CH_BUF, WB_EINVAL, "momentum", TS_D(momentum, 1)},
    {"wb_trainer_create", "beta1 = 1", r_trainer_create, CH_BUF, WB_EINVAL, "beta1", TS_D(beta1, 1)},
    {"wb_trainer_create", "beta2 = -0.1", r_trainer_create, CH_BUF, WB_EINVAL, "beta2", TS_D(beta2, -0.1)},
    {"wb_trainer_create", "eps = 0", r_trainer_create, CH_BUF, WB_EINVAL, "eps", TS_D(eps, 0)},
    {"wb_trainer_create", "optimizer = 7", r_trainer_create, CH_BUF, WB_EINVAL, "optimizer", TS_I(optimizer, 7)},
    {"wb_trainer_create", "schedule = 9", r_trainer_create, CH_BUF, WB_EINVAL, "schedule", TS_I(schedule, 9)},
    {"wb_trainer_create", "lr_step_every = 0", r_trainer_create, CH_BUF, WB_EINVAL, "lr_step_every", TS_I(lr_step_every, 0)},
    {"wb_trainer_create", "lr_decay = 0", r_trainer_create, CH_BUF, WB_EINVAL, "lr_decay", TS_D(lr_decay, 0)},
    {"wb_trainer_create", "lr_decay = 2", r_trainer_create, CH_BUF, WB_EINVAL, "lr_decay", TS_D(lr_decay, 2)},
    {"wb_trainer_create", "lr_min > lr", r_trainer_create, CH_BUF, WB_EINVAL, "lr_min", TS_D(lr_min, 1)},
    {"wb_trainer_create", "batch_size = 0", r_trainer_create, CH_BUF, WB_EINVAL, "batch_size", TS_I(batch_size, 0)},
    {"wb_trainer_create", "epochs = 0", r_trainer_create, CH_BUF, WB_EINVAL, "epochs", TS_I(epochs, 0)},
    {"wb_trainer_create", "shuffle = 2", r_trainer_create, CH_BUF, WB_EINVAL, "shuffle", TS_I(shuffle, 2)},
    {"wb_trainer_create", "threads = -1", r_trainer_create, CH_BUF, WB_EINVAL, "threads", TS_I(threads, -1)},
    {"wb_trainer_create", "warm_start = 2", r_trainer_create, CH_BUF, WB_EINVAL, "warm_start", TS_I(warm_start, 2)},
    {"wb_trainer_create", "backward = 5", r_trainer_create, CH_BUF, WB_EINVAL, "backward", TS_I(backward, 5)},
    {"wb_trainer_create", "fd_step = 0", r_trainer_create, CH_BUF, WB_EINVAL, "fd_step", TS_D(fd_step, 0)},
    {"wb_trainer_create", "validate_every = -1", r_trainer_create, CH_BUF, WB_EINVAL, "validate_every", TS_I(validate_every, -1)},
    {"wb_trainer_create", "checkpoint_every = -1", r_trainer_create, CH_BUF, WB_EINVAL, "checkpoint_every", TS_I(checkpoint_every, -1)},
    {"wb_trainer_create", "the 5th allocation fails", r_trainer_create, CH_LAST, WB_ENOMEM, "", .iv = 11},
    {"wb_trainer_explain", "buf = NULL", r_trainer_explain, CH_LAST, WB_OK, "", .iv = 1},
    {"wb_trainer_explain", "len = 0 (w0 = NULL)", r_trainer_explain, CH_LAST, WB_EINVAL, "", .iv = 2},
    {"wb_trainer_explain", "len = 8 (w0 = NULL): truncated", r_trainer_explain, CH_BUF, WB_EINVAL, "w0 is N", .iv = 3},
    {"wb_trainer_explain", "arguments wb_trainer_create accepts", r_trainer_explain, CH_BUF, WB_OK, "ok", .iv = 4},
    {"wb_trainer_explain", "s = NULL (defaults)", r_trainer_explain, CH_BUF, WB_OK, "ok", .iv = 5},
    {"wb_trainer_destroy", "t = NULL", r_trainer_destroy_null, CH_RET, 0, "", .ret = "no-op"},
    {"wb_train_settings_default", "s = NULL", r_train_settings_default_null, CH_RET, 0, "", .ret = "no-op"},
    {"wb_trainer_message", "t = NULL", r_trainer_message_null, CH_RET, 0, "no trainer", .ret = "\"no trainer\""},

    /* stepping */
    {"wb_trainer_step", "t = NULL", r_step, CH_LAST, WB_EINVAL, "", .iv = 0},
    {"wb_trainer_step", "after the last step", r_step, CH_TRAINER, WB_DONE, "done", .flags = U_TW, .iv = 1},
    {"wb_trainer_step", "SGD at lr = DBL_MAX (w - lr g overflows)", r_step, CH_TRAINER, WB_ENONFINITE, "non-finite", .flags = U_TW, .iv = 4},
    {"wb_trainer_step", "called from a callback of a running step of the same trainer", r_busy, CH_LAST, WB_EBUSY, "in use by another call", .iv = 1},
    {"wb_trainer_step", "checkpoint_path in a missing directory", r_step, CH_TRAINER, WB_EIO, "cannot create", .iv = 2},
    {"wb_trainer_step", "verbose = 1 (prints on stderr, as asked)", r_step, CH_TRAINER, WB_OK, "step 2/4", .flags = PRINTS, .iv = 3},
    {"wb_train", "t = NULL", r_train, CH_LAST, WB_EINVAL, "", .iv = 0},
    {"wb_train", "again after the run finished", r_train, CH_TRAINER, WB_OK, "done", .iv = 1},
    {"wb_train", "checkpoint_path in a missing directory", r_train, CH_TRAINER, WB_EIO, "cannot create", .iv = 2},
    {"wb_trainer_w", "t = NULL", r_getters, CH_LAST, WB_EINVAL, "", .iv = 0},
    {"wb_trainer_w", "w = NULL", r_getters, CH_TRAINER, WB_EINVAL, "NULL", .iv = 1},
    {"wb_trainer_w", "called from a callback of a running step of the same trainer", r_busy, CH_LAST, WB_EBUSY, "in use by another call", .iv = 0},
    {"wb_trainer_best_w", "t = NULL", r_getters, CH_LAST, WB_EINVAL, "", .iv = 2},
    {"wb_trainer_best_w", "w = NULL", r_getters, CH_TRAINER, WB_EINVAL, "NULL", .iv = 3},
    {"wb_trainer_best_w", "no validation set, best_val_loss requested", r_getters, CH_LAST, WB_OK, "", .iv = 6},
    {"wb_trainer_best_w", "best_val_loss inside w", r_getters, CH_TRAINER, WB_EINVAL, "inside w", .iv = 7},
    {"wb_trainer_info", "t = NULL", r_getters, CH_LAST, WB_EINVAL, "", .iv = 4},
    {"wb_trainer_info", "info = NULL", r_getters, CH_TRAINER, WB_EINVAL, "NULL", .iv = 5},

    /* evaluation */
    {"wb_trainer_evaluate", "t = NULL", r_evaluate, CH_LAST, WB_EINVAL, "", .iv = 0},
    {"wb_trainer_evaluate", "d = NULL", r_evaluate, CH_TRAINER, WB_EINVAL, "data set is NULL", .iv = 1},
    {"wb_trainer_evaluate", "w = NULL", r_evaluate, CH_TRAINER, WB_EINVAL, "w is NULL", .iv = 2},
    {"wb_trainer_evaluate", "data set count = 0", r_evaluate, CH_TRAINER, WB_EINVAL, "count = 0", .iv = 3},
    {"wb_trainer_evaluate", "an example larger than the trainer's", r_evaluate, CH_TRAINER, WB_EINVAL, "the trainer holds", .iv = 4},
    {"wb_trainer_evaluate", "an example with another p", r_evaluate, CH_TRAINER, WB_EINVAL, "the trainer holds", .iv = 5},
    {"wb_trainer_evaluate", "the energy callback fails", r_evaluate, CH_TRAINER, WB_ECALLBACK, "energy callback failed", .iv = 6},
    {"wb_trainer_evaluate", "w holds NaN", r_evaluate, CH_TRAINER, WB_EINVAL, "NaN", .iv = 7},
    {"wb_trainer_evaluate", "every output NULL", r_evaluate, CH_LAST, WB_OK, "", .iv = 8},
    {"wb_trainer_evaluate", "mean_loss inside per_example", r_evaluate, CH_TRAINER, WB_EINVAL, "overlap", .iv = 9},
    {"wb_trainer_evaluate", "w inside per_example (w is copied first)", r_evaluate, CH_TRAINER, WB_OK, "", .iv = 10},

    /* checkpoints */
    {"wb_trainer_save", "t = NULL", r_save, CH_LAST, WB_EINVAL, "", .iv = 0},
    {"wb_trainer_save", "path = NULL", r_save, CH_TRAINER, WB_EINVAL, "path is NULL", .iv = 1},
    {"wb_trainer_save", "path in a missing directory", r_save, CH_TRAINER, WB_EIO, "cannot create", .iv = 2},
    {"wb_trainer_save", "path is a directory (no temporary file left)", r_save, CH_TRAINER, WB_EIO, "cannot rename", .iv = 3},
    {"wb_trainer_load", "t = NULL", r_load, CH_LAST, WB_EINVAL, "", .iv = 0},
    {"wb_trainer_load", "path = NULL", r_load, CH_TRAINER, WB_EINVAL, "path is NULL", .flags = U_TW, .iv = 1},
    {"wb_trainer_load", "missing file", r_load, CH_TRAINER, WB_EIO, "cannot open", .flags = U_TW, .iv = 2},
    {"wb_trainer_load", "empty file", r_load, CH_TRAINER, WB_EFORMAT, "not a libwiberg checkpoint", .flags = U_TW, .iv = 3},
    {"wb_trainer_load", "truncated by 9 bytes", r_load, CH_TRAINER, WB_EFORMAT, "truncated", .flags = U_TW, .iv = 4},
    {"wb_trainer_load", "one bit flipped", r_load, CH_TRAINER, WB_EFORMAT, "checksum", .flags = U_TW, .iv = 5},
    {"wb_trainer_load", "another format version", r_load, CH_TRAINER, WB_EFORMAT, "has version", .flags = U_TW, .iv = 6},
    {"wb_trainer_load", "written for another data set size", r_load, CH_TRAINER, WB_EFORMAT, "another data set", .flags = U_TW, .iv = 7},
    {"wb_trainer_load", "written with another optimizer", r_load, CH_TRAINER, WB_EFORMAT, "optimizer", .flags = U_TW, .iv = 8},
    {"wb_trainer_load", "written at a step beyond this run's end", r_load, CH_TRAINER, WB_EFORMAT, "step 5 is outside [0, 4]", .flags = U_TW, .iv = 9},
    {"wb_trainer_load", "path is a directory", r_load, CH_TRAINER, WB_EIO, "read error", .flags = U_TW, .iv = 10},
    {"wb_trainer_load", "w holds NaN (valid checksum)", r_load, CH_TRAINER, WB_EFORMAT, "non-finite", .flags = U_TW, .iv = 11},
    {"wb_trainer_load", "epoch = INT_MAX (valid checksum)", r_load, CH_TRAINER, WB_EFORMAT, "do not fit", .flags = U_TW, .iv = 12},
    {"wb_trainer_load", "example order not a permutation (valid checksum)", r_load, CH_TRAINER, WB_EFORMAT, "not a permutation", .flags = U_TW, .iv = 13},
    {"wb_trainer_load", "step 0 with epoch 2 (valid checksum)", r_load, CH_TRAINER, WB_EFORMAT, "do not fit", .flags = U_TW, .iv = 14},
    {"wb_trainer_load", "skipped count = INT64_MAX (valid checksum)", r_load, CH_TRAINER, WB_EFORMAT, "skipped examples", .flags = U_TW, .iv = 15},

    /* ProxProp */
    {"wb_prox_create", "out = NULL", r_prox_create, CH_LAST, WB_EINVAL, "out is NULL", .iv = 1},
    {"wb_prox_create", "n_out = 0", r_prox_create, CH_LAST, WB_EINVAL, "n_out = 0", .iv = 2},
    {"wb_prox_create", "n_in = 0", r_prox_create, CH_LAST, WB_EINVAL, "n_in = 0", .iv = 3},
    {"wb_prox_create", "n_in = -2", r_prox_create, CH_LAST, WB_EINVAL, "n_in = -2", .iv = 4},
    {"wb_prox_create", "n_in = INT_MAX", r_prox_create, CH_LAST, WB_EINVAL, "n_in = 2147483647", .iv = 5},
    {"wb_prox_create", "n_in = 50000: (n_in+1)^2 exceeds int", r_prox_create, CH_LAST, WB_EINVAL, "exceeds BLAS", .iv = 6},
    {"wb_prox_create", "tau = 0", r_prox_create, CH_LAST, WB_EINVAL, "tau = 0", PS_D(tau, 0)},
    {"wb_prox_create", "tau = NaN", r_prox_create, CH_LAST, WB_EINVAL, "tau = nan", PS_D(tau, NAN_)},
    {"wb_prox_create", "tau = Inf", r_prox_create, CH_LAST, WB_EINVAL, "tau = inf", PS_D(tau, INF_)},
    {"wb_prox_create", "mode = 5", r_prox_create, CH_LAST, WB_EINVAL, "mode = 5", PS_I(mode, 5)},
    {"wb_prox_create", "cg_iters = 0", r_prox_create, CH_LAST, WB_EINVAL, "cg_iters = 0", PS_I(cg_iters, 0)},
    {"wb_prox_create", "cg_tol = 1", r_prox_create, CH_LAST, WB_EINVAL, "cg_tol = 1", PS_D(cg_tol, 1)},
    {"wb_prox_create", "cg_tol = NaN", r_prox_create, CH_LAST, WB_EINVAL, "cg_tol = nan", PS_D(cg_tol, NAN_)},
    {"wb_prox_create", "dealloc without alloc", r_prox_create, CH_LAST, WB_EINVAL, "set together", PS_0(alloc)},
    {"wb_prox_create", "the first allocation fails", r_prox_create, CH_LAST, WB_ENOMEM, "out of memory", .iv = 7},
    {"wb_prox_step", "p = NULL", r_prox_step, CH_LAST, WB_EINVAL, "", .flags = U_T, .iv = 0},
    {"wb_prox_step", "A = NULL", r_prox_step, CH_PROX, WB_EINVAL, "A is NULL", .flags = U_T, .iv = 1},
    {"wb_prox_step", "Z = NULL", r_prox_step, CH_PROX, WB_EINVAL, "Z is NULL", .flags = U_T, .iv = 2},
    {"wb_prox_step", "T0 = NULL", r_prox_step, CH_PROX, WB_EINVAL, "T0 is NULL", .flags = U_T, .iv = 3},
    {"wb_prox_step", "T = NULL", r_prox_step, CH_PROX, WB_EINVAL, "T is NULL", .iv = 4},
    {"wb_prox_step", "m = 0", r_prox_step, CH_PROX, WB_EINVAL, "m = 0", .flags = U_T, .iv = 5},
    {"wb_prox_step", "m = -3", r_prox_step, CH_PROX, WB_EINVAL, "m = -3", .flags = U_T, .iv = 6},
    {"wb_prox_step", "A holds NaN", r_prox_step, CH_PROX, WB_EINVAL, "A holds NaN", .flags = U_T, .iv = 7},
    {"wb_prox_step", "Z holds Inf", r_prox_step, CH_PROX, WB_EINVAL, "Z holds NaN or Inf", .flags = U_T, .iv = 8},
    {"wb_prox_step", "T0 holds NaN", r_prox_step, CH_PROX, WB_EINVAL, "T0 holds NaN", .flags = U_T, .iv = 9},
    {"wb_prox_step", "A = 1e200: A A' overflows", r_prox_step, CH_PROX, WB_ENONFINITE, "overflows", .flags = U_T, .iv = 10},
    {"wb_prox_step", "rank-one A, tau = 1e300: numerically indefinite", r_prox_step, CH_PROX, WB_ESINGULAR, "not numerically positive definite", .flags = U_T, .iv = 11},
    {"wb_prox_set_tau", "p = NULL", r_prox_set_tau, CH_LAST, WB_EINVAL, "", .iv = 1, .dv = 1.0},
    {"wb_prox_set_tau", "tau = 0", r_prox_set_tau, CH_PROX, WB_EINVAL, "tau = 0", .dv = 0.0},
    {"wb_prox_set_tau", "tau = -1", r_prox_set_tau, CH_PROX, WB_EINVAL, "tau = -1", .dv = -1.0},
    {"wb_prox_set_tau", "tau = NaN", r_prox_set_tau, CH_PROX, WB_EINVAL, "tau = nan", .dv = NAN_},
    {"wb_prox_set_tau", "tau = Inf", r_prox_set_tau, CH_PROX, WB_EINVAL, "tau = inf", .dv = INF_},
    {"wb_prox_message", "p = NULL", r_prox_misc, CH_RET, 0, "no prox object", .ret = "\"no prox object\"", .iv = 0},
    {"wb_prox_message", "before any step", r_prox_misc, CH_RET, 0, "", .ret = "\"\"", .iv = 1},
    {"wb_prox_destroy", "p = NULL", r_prox_misc, CH_RET, 0, "", .ret = "no-op", .iv = 2},
    {"wb_prox_settings_default", "s = NULL", r_prox_misc, CH_RET, 0, "", .ret = "no-op", .iv = 3},
};
enum { NCASES = sizeof CASES / sizeof CASES[0] };

/* ---- running a row -------------------------------------------------------- */

typedef struct {
    int status;
    char msg[512];
    long printed;     /* bytes written to stdout + stderr during the call */
    int live;         /* blocks leaked                                    */
    const char *post; /* a broken post-condition                          */
    int ok;           /* every check held                                 */
    char why[256];
} outcome_t;

static outcome_t OUT[NCASES];
static int CAP_FD = -1;

static const char *status_name(int s) {
    static const char *neg[] = {"WB_OK", "WB_EINVAL", "WB_ENOMEM",
                                "WB_ECALLBACK", "WB_ENONFINITE",
                                "WB_ESINGULAR", "WB_ENOTSOLVED", "WB_EIO",
                                "WB_EFORMAT", "WB_EBUSY"};
    static const char *pos[] = {"WB_OK", "WB_MAXITER", "WB_STALLED",
                                "WB_CANCELED", "WB_DONE"};
    if (s <= 0 && s >= -9) return neg[-s];
    if (s > 0 && s <= 4) return pos[s];
    return "(not a status)";
}

static void run_case(const ecase_t *c, outcome_t *o) {
    fx_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    fx_setup(f);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    assert_true(so >= 0 && se >= 0);
    assert_int_equal(ftruncate(CAP_FD, 0), 0);
    assert_true(lseek(CAP_FD, 0, SEEK_SET) == 0);
    dup2(CAP_FD, 1);
    dup2(CAP_FD, 2);
    /* ---- the call, with stdout and stderr going to the capture file ---- */
    wb_last_error_clear();
    int st = c->run(f, c);
    const char *m = NULL;
    if (c->ch == CH_LAST)
        m = strcmp(wb_last_error(), "no error recorded on this thread") == 0
                ? "" : wb_last_error();
    else if (c->ch == CH_SOLVER) m = wb_solver_message(f->sv);
    else if (c->ch == CH_TRAINER) m = wb_trainer_message(f->t);
    else if (c->ch == CH_PROX) m = wb_prox_message(f->px);
    else if (c->ch == CH_BUF || c->ch == CH_RET) m = f->msg;
    snprintf(o->msg, sizeof o->msg, "%s", m ? m : "");
    fflush(stdout);
    fflush(stderr);
    /* -------------------------------------------------------------------- */
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    struct stat sb;
    assert_int_equal(fstat(CAP_FD, &sb), 0);
    o->printed = (long)sb.st_size;
    o->status = st;
    o->post = f->post;
    /* outputs that an error must leave untouched */
    if (st < 0 && c->ch != CH_RET) {
        if (c->flags & U_OUT)
            for (int k = 0; k < PW; k++)
                if (f->out[k] != SENT) o->post = "dl_dw written on an error";
        if (c->flags & U_J)
            for (int k = 0; k < NX * PW; k++)
                if (f->J[k] != SENT) o->post = "dx_dw written on an error";
        if (c->flags & U_T)
            for (int k = 0; k < POUT * (PIN + 1); k++)
                if (f->T[k] != SENT) o->post = "T written on an error";
    }
    if ((c->flags & U_TW) && f->t && st != WB_OK) {
        double w[PW];
        assert_int_equal(wb_trainer_w(f->t, w), WB_OK);
        if (memcmp(w, f->tw, sizeof w) != 0) o->post = "the trainer's w changed";
    }
    o->live = fx_teardown(f);
    free(f);

    /* judgement */
    o->ok = 1;
    o->why[0] = '\0';
#define BAD(...) do { o->ok = 0; snprintf(o->why, sizeof o->why, __VA_ARGS__); } while (0)
    if (st != c->expect)
        BAD("status %d (%s), expected %s", st, status_name(st),
            c->ch == CH_RET ? "post-condition" : status_name(c->expect));
    else if (c->frag[0] && !strstr(o->msg, c->frag))
        BAD("message \"%.160s\" lacks \"%.60s\"", o->msg, c->frag);
    else if (c->ch != CH_RET && c->expect < 0 && o->msg[0] == '\0')
        BAD("empty message");
    else if (o->post)
        BAD("%s", o->post);
    else if ((c->flags & PRINTS) ? o->printed == 0 : o->printed != 0)
        BAD("%ld bytes printed on stdout/stderr%s", o->printed,
            (c->flags & PRINTS) ? " (expected some)" : " uninvited");
    else if (o->live != 0)
        BAD("%d allocated blocks leaked", o->live);
#undef BAD
}

static void every_row_of_the_error_table_holds(void **state) {
    (void)state;
    char capname[160];
    snprintf(capname, sizeof capname, "%s.capture", DIR_);
    CAP_FD = open(capname, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(CAP_FD >= 0);
    int failed = 0;
    for (int i = 0; i < NCASES; i++) {
        const ecase_t *c = &CASES[i];
        outcome_t *o = &OUT[i];
        run_case(c, o);
        if (!o->ok) {
            failed++;
            print_error("%s, %s: %s\n", c->fn, c->situation, o->why);
        }
    }
    close(CAP_FD);
    remove(capname);
    printf("    %d rows: %d hold, %d failed\n", NCASES, NCASES - failed, failed);
    assert_int_equal(failed, 0);
}

/* Every WB_API function of the header has at least one row. */
static void every_public_function_has_a_row(void **state) {
    (void)state;
    char path[1024];
    const char *data = getenv("WB_TEST_DATA");
    snprintf(path, sizeof path, "%s/../../include/wiberg.h",
             data ? data : "tests/data");
    FILE *fp = fopen(path, "r");
    if (!fp) {
        printf("    %s not found: skipped\n", path);
        skip();
    }
    char line[512];
    int missing = 0, found = 0;
    while (fgets(line, sizeof line, fp)) {
        if (strncmp(line, "WB_API ", 7) != 0) continue;
        char *paren = strchr(line, '(');
        if (!paren) continue;
        char *end = paren, *start = paren;
        while (start > line && (start[-1] == '_' || isalnum((unsigned char)start[-1])))
            start--;
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(end - start), start);
        found++;
        int has = 0;
        for (int i = 0; i < NCASES && !has; i++) has = strcmp(CASES[i].fn, name) == 0;
        if (!has) {
            print_error("%s has no row in the error table\n", name);
            missing++;
        }
    }
    fclose(fp);
    printf("    %d public functions, all with rows\n", found - missing);
    assert_true(found > 30);
    assert_int_equal(missing, 0);
}

/* ---- Markdown -------------------------------------------------------------- */

/* s with the temporary directory and process ids made generic, | escaped */
static void md_clean(const char *s, char *out, size_t len) {
    size_t k = 0, dl = strlen(DIR_);
    while (*s && k + 8 < len) {
        if (dl && strncmp(s, DIR_, dl) == 0) {
            k += (size_t)snprintf(out + k, len - k, "DIR");
            s += dl;
        } else if (strncmp(s, ".tmp.", 5) == 0) {
            k += (size_t)snprintf(out + k, len - k, ".tmp.PID");
            s += 5;
            while (isdigit((unsigned char)*s)) s++;
            if (s[0] == '.' && isdigit((unsigned char)s[1])) { /* .COUNTER */
                k += (size_t)snprintf(out + k, len - k, ".N");
                for (s++; isdigit((unsigned char)*s); s++) {}
            }
        } else if (*s == '|') {
            out[k++] = '\\';
            out[k++] = *s++;
        } else {
            out[k++] = *s++;
        }
    }
    out[k] = '\0';
}

static int write_markdown(const char *file) {
    FILE *fp = fopen(file, "w");
    if (!fp) return -1;
    fprintf(fp,
        "## Bad input, misuse and faults, function by function\n\n"
        "Generated by `tests/test_errors.c` (`test_errors --markdown`): "
        "every row is a call the test makes for real, on a fresh solver, "
        "trainer and ProxProp object, and checks: the status; that the "
        "message contains what the row's test expects (*message* shows the "
        "whole sentence the library wrote); that nothing was printed on "
        "stdout or stderr (only rows that set `verbose` print); that outputs "
        "are left untouched on an error; and that nothing leaked. The "
        "message comes from `wb_solver_message`, `wb_trainer_message` or "
        "`wb_prox_message` of the object the call was given; where there is "
        "no object to hold it (a NULL object, a refused `*_create`, "
        "`wb_check_energy`, `wb_lsq_energy_create`, `wb_loss_eval`) from "
        "`wb_last_error()` (per thread, marked *last error*); rows marked "
        "*explain* show `wb_solver_explain` / `wb_trainer_explain` on the "
        "same arguments. Paths are shown relative "
        "to the test's temporary directory, `DIR`.\n\n");
    fprintf(fp, "| function | situation | status | message |\n");
    fprintf(fp, "|---|---|---|---|\n");
    for (int i = 0; i < NCASES; i++) {
        const ecase_t *c = &CASES[i];
        const outcome_t *o = &OUT[i];
        char msg[600], sit[300], stat[64];
        md_clean(c->situation, sit, sizeof sit);
        if (c->ch == CH_RET) {
            snprintf(stat, sizeof stat, "returns %s", c->ret ? c->ret : "");
        } else {
            snprintf(stat, sizeof stat, "`%s`", status_name(o->status));
        }
        if (c->ch == CH_LAST) {
            char m[560];
            md_clean(o->msg, m, sizeof m);
            if (m[0]) snprintf(msg, sizeof msg, "*last error:* `%s`", m);
            else snprintf(msg, sizeof msg, "—");
        } else if (c->ch == CH_RET) {
            char m[560];
            md_clean(o->msg, m, sizeof m);
            if (m[0] && strcmp(m, "(nothing)") != 0)
                snprintf(msg, sizeof msg, "`%s`", m);
            else
                snprintf(msg, sizeof msg, "—");
        } else {
            char m[560];
            md_clean(o->msg, m, sizeof m);
            snprintf(msg, sizeof msg, "%s%s%s%s",
                     c->ch == CH_BUF && c->fn[3] != 'p' ? "*explain:* " : "",
                     m[0] ? "`" : "*(empty)*", m, m[0] ? "`" : "");
        }
        fprintf(fp, "| `%s` | %s%s | %s | %s |\n", c->fn, sit,
                (c->flags & PRINTS) ? " — prints, as asked" : "", stat, msg);
    }
    fprintf(fp, "\n");
    return fclose(fp) == 0 ? 0 : -1;
}

/* 0 when doc (docs/ERRORS.md) holds, from its "## Bad input" heading to
   its end, exactly the table in file table; prints the first difference */
static int doc_matches(const char *doc, const char *table) {
    FILE *a = fopen(doc, "r"), *b = fopen(table, "r");
    int rc = -1;
    char la[4096], lb[4096];
    if (!a || !b) {
        fprintf(stderr, "cannot read %s\n", !a ? doc : table);
        goto out;
    }
    while (fgets(la, sizeof la, a) && strncmp(la, "## Bad input", 12) != 0) {}
    if (feof(a)) {
        fprintf(stderr, "%s has no \"## Bad input\" section\n", doc);
        goto out;
    }
    if (!fgets(lb, sizeof lb, b)) goto out;
    for (int line = 1;; line++) {
        if (strcmp(la, lb) != 0) {
            fprintf(stderr, "%s is out of date (regenerate it: sh "
                    "scripts/gen-errors-doc.sh); line %d of the table:\n"
                    "  doc:  %s  test: %s", doc, line, la, lb);
            goto out;
        }
        char *ra = fgets(la, sizeof la, a), *rb = fgets(lb, sizeof lb, b);
        if (!ra && !rb) break;
        if (!ra) la[0] = '\0';
        if (!rb) lb[0] = '\0';
    }
    rc = 0;
out:
    if (a) fclose(a);
    if (b) fclose(b);
    return rc;
}

int main(int argc, char **argv) {
    const char *md = getenv("WB_ERRORS_MD"), *check = NULL;
    char tmp_md[128] = "";
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--markdown") == 0) md = argv[i + 1];
        if (strcmp(argv[i], "--check-doc") == 0) check = argv[i + 1];
    }
    snprintf(DIR_, sizeof DIR_, "/tmp/wb_errors_XXXXXX");
    if (!mkdtemp(DIR_)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(CKPT, sizeof CKPT, "%s/ckpt", DIR_);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_row_of_the_error_table_holds),
        cmocka_unit_test(every_public_function_has_a_row),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (check && !md) {
        snprintf(tmp_md, sizeof tmp_md, "%s.table.md", DIR_);
        md = tmp_md;
    }
    if (md) {
        if (write_markdown(md) != 0) {
            fprintf(stderr, "cannot write %s\n", md);
            rc = 1;
        } else {
            if (!tmp_md[0]) printf("wrote %s\n", md);
        }
    }
    if (check && rc == 0) {
        if (doc_matches(check, md) != 0) rc = 1;
        else printf("%s: the error table is the one the tests produce\n", check);
    }
    if (tmp_md[0]) remove(tmp_md);
    clear_dir();
    rmdir(DIR_);
    return rc;
}
