/* bench_ours: libwiberg's side of every benchmark, through the public API.
 *
 *   inner  P1 (n = 10, 100, 1000) and P2 (vardim, n = 1000): wb_solve from
 *          the shared x0 with the exact Hessian (P1: A' diag(w rho'') A + mu I
 *          by dsyrk), time to the target E - E* <= 1e-10 (E0 - E*) (P2:
 *          E <= 1e-20), stopped by the progress callback like every peer;
 *   nist   the 19 NIST problems from both starts (38 solves), Gauss-Newton
 *          Hessian J'J (and the difference-Hessian general interface);
 *   deriv  dL/dw of L = 1/2 ||x*(w) - x_true||^2 for P1 with w = the first p
 *          observation weights: the implicit adjoint (wb_implicit_vjp), central
 *          finite differences of L (2p warm-started solves) and reverse-mode
 *          unrolling of K gradient-descent steps (Domke 2012: Hessian-vector
 *          and mixed products only); writes x* and the gradients for the
 *          PyTorch comparison;
 *   dense  dgemm / dpotrf GFLOP/s of this machine and wb_implicit_jacobian at
 *          n = 2000, p = 2000;
 *   p3, p4 P3 (smoothed-TV denoising 256 x 256) and P4 (extended Rosenbrock
 *          n = 1000): the default (AUTO, every callback: banded), matrix-free
 *          with hvp, value_grad only;
 *   adjoint solve + dL/dw at P1 n = 1000, p = 50 (default, dense, L-BFGS), its
 *          error against bench_data's dense reference and the products made.
 * The inner rows: dense (exact Hessian), the default (AUTO with every
 * callback the problem has) and value_grad only (the quick start).
 *
 * Lines "RESULT {...}" on stdout are gathered by bench/run; the rest is for
 * people. Timing: CLOCK_MONOTONIC, median of the repetitions, setup
 * (data, wb_solver_create) excluded. Run with OPENBLAS_NUM_THREADS=1.
 */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <float.h>
#include <lapacke.h>

#include "bench_problems.h"
#include "nist_models.h"
#include "wiberg.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: bench_ours [--data DIR] [--nist-dir DIR] [--only SECTION]\n"
            "\n"
            "libwiberg's side of the peer benchmarks (see bench/run):\n"
            "sections inner (P1, P2: dense, default AUTO, value_grad only),\n"
            "p3 (TV denoising 256x256), p4 (extended Rosenbrock n = 1000),\n"
            "adjoint (solve + dL/dw, P1 n = 1000, p = 50), nist, deriv (implicit\n"
            "adjoint, finite differences, unrolled gradient descent), dense\n"
            "(implicit Jacobian throughput against dgemm/dpotrf). Prints RESULT\n"
            "lines.\n"
            "\n"
            "  --data DIR      folder of bench_data's files (default bench-data);\n"
            "                  the deriv section writes deriv_n*_p*.bin there\n"
            "  --nist-dir DIR  folder holding nist/*.dat (default tests/data)\n"
            "  --only NAME     run one section: inner, p3, p4, adjoint, nist,\n"
            "                  deriv, dense\n"
            "                  (BENCH_DERIV_SMALL=1: deriv at n = 100, p = 50 only)\n"
            "  --help          this text\n"
            "Environment: BENCH_REPS=k caps the repetitions (quick runs);\n"
            "BENCH_ROUND=r of BENCH_ROUNDS=R: one round of bench/run's\n"
            "interleaving (a share of the repetitions; the slow\n"
            "configurations in round 1 only).\n");
}

/* ====================================================================== */
/* P1 as a wb_energy                                                        */
/* ====================================================================== */

typedef struct {
    const bp_p1 *P;
    int p;              /* w = the first p observation weights */
    double *r, *t, *av; /* [m] scratch */
    double *wt;         /* [m] the weights in use */
    double *C;          /* [m*n] scaled rows for dsyrk */
    double *xl, *wl;    /* [n], [p]: the point r and wt were computed at */
    int have_r;         /* r, wt are those of (xl, wl) */
    long hess_calls, mixed_calls;
    long vg_calls, hvp_calls; /* products, counted by the adjoint section */
    double cb_time;     /* seconds spent in hess + mixed (dense section) */
    int time_cb;        /* measure cb_time: the dense section only. Every
                           bp_now is a clock call, and with --cpu-time
                           (CLOCK_PROCESS_CPUTIME_ID, a system call: 3-5 us
                           each on the shared benchmark VM) two per Hessian
                           were charged to libwiberg's solve and to no peer's:
                           at P1 n = 10 that was ~60 % of the measured time */
} p1_energy;

static int p1e_init(p1_energy *U, const bp_p1 *P, int p) {
    memset(U, 0, sizeof *U);
    U->P = P;
    U->p = p;
    size_t m = (size_t)P->m;
    U->r = malloc(m * sizeof(double));
    U->t = malloc(m * sizeof(double));
    U->av = malloc(m * sizeof(double));
    U->wt = malloc(m * sizeof(double));
    U->C = malloc(m * (size_t)P->n * sizeof(double));
    U->xl = malloc(sizeof(double) * (size_t)P->n);
    U->wl = malloc(sizeof(double) * (size_t)(p > 0 ? p : 1));
    return U->r && U->t && U->av && U->wt && U->C && U->xl && U->wl ? 0 : -1;
}
static void p1e_free(p1_energy *U) {
    free(U->r), free(U->t), free(U->av), free(U->wt), free(U->C), free(U->xl), free(U->wl);
}

/* r = A x - b; wt = (w[0..p), data weights after). Kept for the last
   (x, w): the solver calls hvp many times at one point, and a careful
   user's callback does not redo A x there. */
static void p1e_resid(p1_energy *U, const double *x, const double *w) {
    const bp_p1 *P = U->P;
    size_t nb = sizeof(double) * (size_t)P->n, pb = sizeof(double) * (size_t)U->p;
    if (U->have_r && memcmp(x, U->xl, nb) == 0 && (U->p == 0 || memcmp(w, U->wl, pb) == 0))
        return;
    memcpy(U->xl, x, nb);
    if (U->p > 0) memcpy(U->wl, w, pb);
    U->have_r = 1;
    memcpy(U->r, P->b, sizeof(double) * (size_t)P->m);
    cblas_dgemv(CblasColMajor, CblasNoTrans, P->m, P->n, 1.0, P->A, P->m, x, 1,
                -1.0, U->r, 1);
    for (int i = 0; i < P->m; i++) U->wt[i] = i < U->p ? w[i] : P->w[i];
}

static int p1_vg(void *u, const double *x, const double *w, double *e, double *g) {
    p1_energy *U = u;
    const bp_p1 *P = U->P;
    int m = P->m, n = P->n;
    double d2 = P->delta * P->delta, E = 0, xx = 0;
    U->vg_calls++;
    p1e_resid(U, x, w);
    for (int i = 0; i < m; i++) {
        double ri = U->r[i], q = sqrt(1 + ri * ri / d2);
        E += U->wt[i] * d2 * (q - 1);
        U->t[i] = U->wt[i] * ri / q;
    }
    for (int j = 0; j < n; j++) xx += x[j] * x[j];
    *e = E + 0.5 * P->mu * xx;
    if (g) {
        memcpy(g, x, sizeof(double) * (size_t)n);
        cblas_dgemv(CblasColMajor, CblasTrans, m, n, 1.0, P->A, m, U->t, 1, P->mu, g, 1);
    }
    return 0;
}

/* H = A' diag(w / q^3) A + mu I: rows of A scaled by sqrt(w/q^3), dsyrk,
   mirrored to the full symmetric matrix the API asks for. */
static int p1_hess(void *u, const double *x, const double *w, double *H) {
    p1_energy *U = u;
    double t0 = U->time_cb ? bp_now() : 0.0;
    const bp_p1 *P = U->P;
    int m = P->m, n = P->n;
    double d2 = P->delta * P->delta;
    p1e_resid(U, x, w);
    for (int i = 0; i < m; i++) {
        double q = sqrt(1 + U->r[i] * U->r[i] / d2);
        U->t[i] = sqrt(U->wt[i] / (q * q * q));
    }
    for (int j = 0; j < n; j++) {
        const double *a = P->A + (size_t)j * m;
        double *c = U->C + (size_t)j * m;
        for (int i = 0; i < m; i++) c[i] = a[i] * U->t[i];
    }
    cblas_dsyrk(CblasColMajor, CblasLower, CblasTrans, n, m, 1.0, U->C, m, 0.0, H, n);
    for (int j = 0; j < n; j++) H[(size_t)j * n + j] += P->mu;
    /* mirror the lower triangle in blocks (cache-friendly transpose) */
    const int bs = 64;
    for (int jb = 0; jb < n; jb += bs)
        for (int ib = jb; ib < n; ib += bs)
            for (int j = jb; j < jb + bs && j < n; j++)
                for (int i = (ib > j + 1 ? ib : j + 1); i < ib + bs && i < n; i++)
                    H[(size_t)i * n + j] = H[(size_t)j * n + i];
    U->hess_calls++;
    if (U->time_cb) U->cb_time += bp_now() - t0;
    return 0;
}

/* out[p] = B' v: (B'v)_i = (r_i / q_i) (A v)_i */
static int p1_mixed_vjp(void *u, const double *x, const double *w, const double *v,
                        double *out) {
    p1_energy *U = u;
    const bp_p1 *P = U->P;
    double d2 = P->delta * P->delta;
    p1e_resid(U, x, w);
    cblas_dgemv(CblasColMajor, CblasNoTrans, P->m, P->n, 1.0, P->A, P->m, v, 1, 0.0,
                U->av, 1);
    for (int i = 0; i < U->p; i++) {
        double ri = U->r[i];
        out[i] = ri / sqrt(1 + ri * ri / d2) * U->av[i];
    }
    return 0;
}

/* B[n*p]: column i = row i of A times r_i / q_i */
static int p1_mixed(void *u, const double *x, const double *w, double *B) {
    p1_energy *U = u;
    double t0 = U->time_cb ? bp_now() : 0.0;
    const bp_p1 *P = U->P;
    int n = P->n;
    double d2 = P->delta * P->delta;
    p1e_resid(U, x, w);
    for (int i = 0; i < U->p; i++) {
        double ri = U->r[i], c = ri / sqrt(1 + ri * ri / d2);
        const double *a = P->Ar + (size_t)i * n;
        double *col = B + (size_t)i * n;
        for (int k = 0; k < n; k++) col[k] = c * a[k];
    }
    U->mixed_calls++;
    if (U->time_cb) U->cb_time += bp_now() - t0;
    return 0;
}

/* Hv = A' diag(w / q^3) (A v) + mu v: two matrix-vector products */
static int p1_hvp(void *u, const double *x, const double *w, const double *v,
                  double *Hv) {
    p1_energy *U = u;
    const bp_p1 *P = U->P;
    int m = P->m, n = P->n;
    double d2 = P->delta * P->delta;
    U->hvp_calls++;
    p1e_resid(U, x, w);
    cblas_dgemv(CblasColMajor, CblasNoTrans, m, n, 1.0, P->A, m, v, 1, 0.0, U->av, 1);
    for (int i = 0; i < m; i++) {
        double q = sqrt(1 + U->r[i] * U->r[i] / d2);
        U->av[i] *= U->wt[i] / (q * q * q);
    }
    memcpy(Hv, v, sizeof(double) * (size_t)n);
    cblas_dgemv(CblasColMajor, CblasTrans, m, n, 1.0, P->A, m, U->av, 1, P->mu, Hv, 1);
    return 0;
}

/* d_j = H_jj = sum_i A_ij^2 w_i / q_i^3 + mu: one pass over A */
static int p1_hess_diag(void *u, const double *x, const double *w, double *d) {
    p1_energy *U = u;
    const bp_p1 *P = U->P;
    int m = P->m, n = P->n;
    double d2 = P->delta * P->delta;
    p1e_resid(U, x, w);
    for (int i = 0; i < m; i++) {
        double q = sqrt(1 + U->r[i] * U->r[i] / d2);
        U->t[i] = U->wt[i] / (q * q * q);
    }
    for (int j = 0; j < n; j++) {
        const double *a = P->A + (size_t)j * m;
        double s = P->mu;
        for (int i = 0; i < m; i++) s += a[i] * a[i] * U->t[i];
        d[j] = s;
    }
    return 0;
}

static wb_energy p1_wb_energy(p1_energy *U) {
    wb_energy e;
    memset(&e, 0, sizeof e);
    e.n = U->P->n;
    e.p = U->p;
    e.user = U;
    e.value_grad = p1_vg;
    e.hess = p1_hess;
    e.mixed_vjp = p1_mixed_vjp;
    e.mixed = p1_mixed;
    return e;
}

/* P1 of size n from the data directory, and its libwiberg energy with the
   first p weights as w; 0 ok (free with p1e_free and bp_p1_free). */
static int p1_load(const char *dir, int n, int p, bp_p1 *P, p1_energy *U) {
    char path[1024];
    bp_p1_path(path, sizeof path, dir, n);
    if (bp_p1_read(P, path) != 0) return -1;
    if (p1e_init(U, P, p) != 0) {
        bp_p1_free(P);
        return -1;
    }
    return 0;
}

/* ====================================================================== */
/* P2 (vardim) as a wb_energy                                              */
/* ====================================================================== */

static int p2_vg(void *u, const double *x, const double *w, double *e, double *g) {
    (void)w;
    *e = bp_p2_value_grad(*(const int *)u, x, g);
    return 0;
}
static int p2_hess(void *u, const double *x, const double *w, double *H) {
    (void)w;
    int n = *(const int *)u;
    double S = bp_p2_S(n, x), c = 1 + 6 * S * S;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < n; i++)
            H[(size_t)j * n + i] = c * (double)(i + 1) * (double)(j + 1) + (i == j);
    return 0;
}

/* H v = v + (1 + 6 S^2) (v'u) u, u_j = j + 1 */
static int p2_hvp(void *u, const double *x, const double *w, const double *v, double *Hv) {
    (void)w;
    int n = *(const int *)u;
    double S = bp_p2_S(n, x), c = 1 + 6 * S * S, vu = 0;
    for (int j = 0; j < n; j++) vu += v[j] * (j + 1);
    for (int j = 0; j < n; j++) Hv[j] = v[j] + c * vu * (j + 1);
    return 0;
}
static int p2_hess_diag(void *u, const double *x, const double *w, double *d) {
    (void)w;
    int n = *(const int *)u;
    double S = bp_p2_S(n, x), c = 1 + 6 * S * S;
    for (int j = 0; j < n; j++) d[j] = 1 + c * (double)(j + 1) * (j + 1);
    return 0;
}

/* stop at the target, as every peer is stopped */
typedef struct {
    double target, E;
} stop_at;
static int stop_cb(void *u, const wb_progress *pr) {
    stop_at *s = u;
    s->E = pr->energy;
    return pr->energy <= s->target;
}

static const char *status_word(wb_status st) {
    switch (st) {
    case WB_OK: return "ok";
    case WB_MAXITER: return "maxiter";
    case WB_STALLED: return "stalled";
    case WB_CANCELED: return "target";
    default: return "error";
    }
}

/* ====================================================================== */
/* inner, p3, p4: time to the target of several configurations             */
/* ====================================================================== */

/* libwiberg's configurations (solver names in the RESULT lines) */
#define OURS_DENSE "libwiberg dense (exact Hessian)"
#define OURS_DEFAULT "libwiberg default (AUTO, all callbacks)"
#define OURS_VG "libwiberg value_grad only (AUTO)"
#define OURS_MF "libwiberg matrix-free (hvp)"
#define OURS_SPARSE "libwiberg sparse (CHOLMOD)" /* P3 */

static const char *kind_word(wb_hessian_kind k) {
    switch (k) {
    case WB_HESS_DENSE: return "dense";
    case WB_HESS_BANDED: return "banded";
    case WB_HESS_MATRIX_FREE: return "matrix-free";
    case WB_HESS_LBFGS: return "L-BFGS";
    case WB_HESS_SPARSE: return "sparse";
    default: return "auto";
    }
}

typedef struct {
    const char *group, *cas, *solver;
    const double *x0;   /* [n] start */
    const double *xref; /* [n] reference minimizer (x_err), or NULL */
    double target, E0, Estar;
    int reps, max_iter;
    double grad_tol, step_tol;
    wb_hessian_kind kind;
} inner_spec;

/* sp->reps solves of e from x0, each stopped at the target by the progress
   callback (the time of wb_solve only; the solver is created before); one
   RESULT line with the median. Returns 0, or -1 when the solver cannot be
   created. */
static int inner_row(const wb_energy *e, const inner_spec *sp) {
    int n = e->n;
    stop_at sa = {sp->target, 0};
    wb_settings s;
    wb_settings_default(&s);
    s.grad_tol = sp->grad_tol; /* the target decides; tight tolerances */
    s.step_tol = sp->step_tol;
    if (sp->max_iter > 0) s.max_iter = sp->max_iter;
    s.hessian = sp->kind;
    s.progress = stop_cb;
    s.progress_user = &sa;
    wb_solver *sv = NULL;
    if (wb_solver_create(&sv, e, &s) != WB_OK) {
        fprintf(stderr, "%s %s: wb_solver_create: %s\n", sp->cas, sp->solver, wb_last_error());
        return -1;
    }
    int reps = sp->reps;
    double *t = malloc(sizeof(double) * (size_t)reps);
    double *x = malloc(sizeof(double) * (size_t)n);
    if (!t || !x) return -1;
    wb_info info;
    memset(&info, 0, sizeof info);
    wb_status st = WB_OK;
    for (int r = 0; r < reps; r++) {
        memcpy(x, sp->x0, sizeof(double) * (size_t)n);
        double t0 = bp_now();
        st = wb_solve(sv, NULL, x, &info);
        t[r] = bp_now() - t0;
    }
    double med = bp_median(t, reps), xerr = 0;
    if (sp->xref)
        for (int j = 0; j < n; j++) xerr = fmax(xerr, fabs(x[j] - sp->xref[j]));
    int ok = st >= 0 && info.energy <= sp->target;
    char extra[768];
    snprintf(extra, sizeof extra,
             ", \"iters\": %d, \"evals\": %d, \"hess\": %d, \"facts\": %d, "
             "\"cg_iters\": %d, \"kind\": \"%s\", \"E\": %.15g, \"E_minus_Estar\": %.3g, "
             "\"E0\": %.6g, \"x_err\": %.3g, \"status\": \"%s\", \"message\": \"%s\"",
             info.iterations, info.evaluations, info.hess_evaluations, info.factorizations,
             info.cg_iterations, kind_word(info.hessian), info.energy,
             info.energy - sp->Estar, sp->E0, xerr, status_word(st),
             ok ? "" : wb_solver_message(sv));
    bp_result(sp->group, sp->cas, sp->solver, med, reps, ok, extra);
    fprintf(stderr, "%s %s: %.6f s to target (%s, %d it, %d evals, %d Hessians, %d CG) %s\n",
            sp->solver, sp->cas, med, kind_word(info.hessian), info.iterations,
            info.evaluations, info.hess_evaluations, info.cg_iterations,
            ok ? "" : "NOT REACHED");
    wb_solver_destroy(sv);
    free(t), free(x);
    return 0;
}

/* The configurations' rows of a problem: the default (AUTO with every
   callback e has), matrix-free with e's products (mf != 0), and value_grad
   only (the quick start: e without its other callbacks). sp: all but the
   solver name and the kind. */
static int config_rows(const wb_energy *e, inner_spec sp, int mf) {
    sp.solver = OURS_DEFAULT;
    sp.kind = WB_HESS_AUTO;
    if (inner_row(e, &sp) != 0) return -1;
    if (mf) {
        sp.solver = OURS_MF;
        sp.kind = WB_HESS_MATRIX_FREE;
        if (inner_row(e, &sp) != 0) return -1;
    }
    wb_energy ev;
    memset(&ev, 0, sizeof ev);
    ev.n = e->n;
    ev.p = e->p;
    ev.user = e->user;
    ev.value_grad = e->value_grad;
    sp.solver = OURS_VG;
    sp.kind = WB_HESS_AUTO;
    return inner_row(&ev, &sp);
}

static int section_inner(const char *dir) {
    for (int k = 0; k < BP_P1_CASES; k++) {
        bp_p1 P;
        char cas[64];
        p1_energy U;
        if (p1_load(dir, bp_p1_sizes[k], 0, &P, &U) != 0) return -1;
        double *x0 = calloc((size_t)P.n, sizeof(double));
        if (!x0) return -1;
        snprintf(cas, sizeof cas, "P1 n=%d", P.n);
        inner_spec sp = {"inner", cas, OURS_DENSE, x0, P.xstar, bp_p1_target(&P), P.E0,
                         P.Estar, bp_reps(bp_p1_reps[k]), 0, 1e-12, 1e-14, WB_HESS_DENSE};
        wb_energy e = p1_wb_energy(&U);
        /* the dense solver with the exact Hessian (the rows before AUTO chose
           by cost) */
        if (inner_row(&e, &sp) != 0) return -1;
        /* the default (every callback P1 has) and value_grad only */
        e.hvp = p1_hvp;
        e.hess_diag = p1_hess_diag;
        if (config_rows(&e, sp, 0) != 0) return -1;
        free(x0);
        p1e_free(&U);
        bp_p1_free(&P);
    }
    /* P2: vardim, n = 1000 */
    int n = 1000;
    double *x0 = malloc(sizeof(double) * (size_t)n), *xr = malloc(sizeof(double) * (size_t)n);
    if (!x0 || !xr) return -1;
    bp_p2_x0(n, x0);
    for (int j = 0; j < n; j++) xr[j] = 1;
    wb_energy e;
    memset(&e, 0, sizeof e);
    e.n = n;
    e.user = &n;
    e.value_grad = p2_vg;
    e.hess = p2_hess;
    inner_spec sp = {"inner", "P2 vardim n=1000", OURS_DENSE, x0, xr, BP_P2_TARGET,
                     bp_p2_value_grad(n, x0, NULL), 0, bp_reps(5), 1000, 0, 1e-15,
                     WB_HESS_DENSE};
    if (inner_row(&e, &sp) != 0) return -1;
    e.hvp = p2_hvp;
    e.hess_diag = p2_hess_diag;
    if (config_rows(&e, sp, 0) != 0) return -1;
    free(x0), free(xr);
    return 0;
}

/* ---- P3: smoothed-TV denoising, 256 x 256 (bench_problems.h) ---- */
static int p3_vg(void *u, const double *x, const double *w, double *e, double *g) {
    (void)w;
    *e = bp_p3_value_grad(u, x, g);
    return 0;
}
static int p3_hvp(void *u, const double *x, const double *w, const double *v, double *Hv) {
    (void)w;
    bp_p3_hvp(u, x, v, Hv);
    return 0;
}
static int p3_hess_diag(void *u, const double *x, const double *w, double *d) {
    (void)w;
    bp_p3_hess_diag(u, x, d);
    return 0;
}
static int p3_hess_band(void *u, const double *x, const double *w, double *AB) {
    (void)w;
    bp_p3_hess_band(u, x, AB);
    return 0;
}

/* P3 for the sparse path: the problem and its fixed CSC pattern */
typedef struct {
    bp_p3 *P;
    int *colptr, *rowind;
} p3_sparse_ctx;
static int p3s_vg(void *u, const double *x, const double *w, double *e, double *g) {
    return p3_vg(((p3_sparse_ctx *)u)->P, x, w, e, g);
}
static int p3s_values(void *u, const double *x, const double *w, double *vals) {
    (void)w;
    const p3_sparse_ctx *c = u;
    bp_p3_csc_values(c->P, x, c->colptr, c->rowind, vals);
    return 0;
}

static int section_p3(const char *dir) {
    bp_p3 P;
    if (bp_p3_read(&P, dir) != 0) return -1;
    char cas[64];
    snprintf(cas, sizeof cas, "P3 TV %dx%d", P.nr, P.nc);
    wb_energy e;
    memset(&e, 0, sizeof e);
    e.n = P.n;
    e.user = &P;
    e.value_grad = p3_vg;
    e.hvp = p3_hvp;
    e.hess_diag = p3_hess_diag;
    e.kd = P.nc;
    e.hess_band = p3_hess_band;
    /* The default: AUTO with every callback P3 has (kd and hess_band:
       banded Cholesky, n kd^2 = 4.3e9 flops a factorization); matrix-free
       with the exact products; value_grad only. */
    inner_spec sp = {"inner", cas, OURS_DEFAULT, P.y, P.xstar, bp_p3_target(&P), P.E0,
                     P.Estar, bp_reps(5), 500, 1e-12, 1e-14, WB_HESS_AUTO};
    if (config_rows(&e, sp, 1) != 0) return -1;
    /* The sparse (CHOLMOD) path: the lower triangle of H in CSC,
       bp_p3_csc_pattern once and bp_p3_csc_values at each x (both checked
       against the band and the products by bench_data), forced with
       WB_HESS_SPARSE (AUTO would pick it too once a pattern is given). */
    p3_sparse_ctx C = {&P, NULL, NULL};
    int nnz = bp_p3_csc_nnz(&P);
    C.colptr = malloc(sizeof(int) * (size_t)(P.n + 1));
    C.rowind = malloc(sizeof(int) * (size_t)nnz);
    if (!C.colptr || !C.rowind) return -1;
    bp_p3_csc_pattern(&P, C.colptr, C.rowind);
    wb_energy es = e;
    es.user = &C;
    es.value_grad = p3s_vg;
    es.hvp = NULL;
    es.hess_diag = NULL;
    es.kd = 0;
    es.hess_band = NULL;
    es.hess_nnz = nnz;
    es.hess_colptr = C.colptr;
    es.hess_rowidx = C.rowind;
    es.hess_sparse = p3s_values;
    sp.solver = OURS_SPARSE;
    sp.kind = WB_HESS_SPARSE;
    int rc = inner_row(&es, &sp);
    free(C.colptr), free(C.rowind);
    if (rc != 0) return -1;
    bp_p3_free(&P);
    return 0;
}

/* ---- P4: extended Rosenbrock, n = 1000 ---- */
static int p4_vg(void *u, const double *x, const double *w, double *e, double *g) {
    (void)w;
    *e = bp_p4_value_grad(*(const int *)u, x, g);
    return 0;
}
static int p4_hvp(void *u, const double *x, const double *w, const double *v, double *Hv) {
    (void)w;
    bp_p4_hvp(*(const int *)u, x, v, Hv);
    return 0;
}
static int p4_hess_band(void *u, const double *x, const double *w, double *AB) {
    (void)w;
    bp_p4_hess_band(*(const int *)u, x, AB);
    return 0;
}
static int p4_hess_diag(void *u, const double *x, const double *w, double *d) {
    (void)w;
    int n = *(const int *)u;
    for (int k = 0; k + 1 < n; k += 2) {
        d[k] = 1200 * x[k] * x[k] - 400 * x[k + 1] + 2;
        d[k + 1] = 200;
    }
    return 0;
}

static int section_p4(void) {
    int n = BP_P4_N;
    double *x0 = malloc(sizeof(double) * (size_t)n), *xr = malloc(sizeof(double) * (size_t)n);
    if (!x0 || !xr) return -1;
    bp_p4_x0(n, x0);
    for (int j = 0; j < n; j++) xr[j] = 1;
    wb_energy e;
    memset(&e, 0, sizeof e);
    e.n = n;
    e.user = &n;
    e.value_grad = p4_vg;
    e.hvp = p4_hvp;
    e.hess_diag = p4_hess_diag;
    e.kd = 1;
    e.hess_band = p4_hess_band;
    inner_spec sp = {"inner", "P4 Rosenbrock n=1000", OURS_DEFAULT, x0, xr, BP_P4_TARGET,
                     bp_p4_value_grad(n, x0, NULL), 0, bp_reps(11), 2000, 0, 1e-15,
                     WB_HESS_AUTO};
    if (config_rows(&e, sp, 1) != 0) return -1;
    free(x0), free(xr);
    return 0;
}

/* ====================================================================== */
/* nist                                                                    */
/* ====================================================================== */

static int section_nist(const char *nist_dir) {
    nist_problem prob[NIST_NUM_PROBLEMS];
    if (nist_load_all(prob, nist_dir) != 0) return -1;
    for (int mode = 0; mode < 2; mode++) {
        int gn = mode == 0;
        wb_settings s;
        wb_settings_default(&s);
        s.max_iter = 10000;
        s.grad_tol = 0;
        s.step_tol = 1e-13;
        s.f_tol = 0;
        wb_solver *sv[NIST_NUM_PROBLEMS];
        for (int i = 0; i < NIST_NUM_PROBLEMS; i++) {
            wb_energy e;
            memset(&e, 0, sizeof e);
            e.n = prob[i].spec->np;
            e.user = &prob[i];
            e.value_grad = nist_vg;
            e.hess = gn ? nist_gn_hess : NULL;
            if (wb_solver_create(&sv[i], &e, &s) != WB_OK) return -1;
        }
        int reps = bp_reps(5), passed = 0, iters = 0;
        double t[5], lre_sum = 0, lre_min = 99;
        char fails[512] = "";
        for (int r = 0; r < reps; r++) {
            double tot = 0;
            passed = 0, iters = 0, lre_sum = 0, lre_min = 99;
            fails[0] = 0;
            for (int i = 0; i < NIST_NUM_PROBLEMS; i++)
                for (int st = 0; st < 2; st++) {
                    double b[NIST_MAX_PARAMS];
                    memcpy(b, prob[i].start[st], sizeof(double) * (size_t)prob[i].spec->np);
                    wb_info info;
                    double t0 = bp_now();
                    wb_status rc = wb_solve(sv[i], NULL, b, &info);
                    tot += bp_now() - t0;
                    double lre = nist_lre(prob[i].spec->np, b, prob[i].cert);
                    int ok = rc >= 0 && lre >= NIST_MIN_LRE;
                    passed += ok;
                    iters += info.iterations;
                    lre_sum += lre;
                    lre_min = fmin(lre_min, lre);
                    if (!ok && strlen(fails) < sizeof fails - 40)
                        snprintf(fails + strlen(fails), sizeof fails - strlen(fails),
                                 "%s%s/%d", fails[0] ? " " : "", prob[i].spec->name, st + 1);
                    if (r == 0 && getenv("BENCH_VERBOSE"))
                        fprintf(stderr, "  %-9s %d LRE %5.2f it %4d %s\n",
                                prob[i].spec->name, st + 1, lre, info.iterations,
                                status_word(rc));
                }
            t[r] = tot;
        }
        double med = bp_median(t, reps);
        char extra[1024];
        snprintf(extra, sizeof extra,
                 ", \"passed\": %d, \"starts\": 38, \"avg_lre\": %.3f, "
                 "\"min_lre\": %.3f, \"iters\": %d, \"failures\": \"%s\"",
                 passed, lre_sum / 38, lre_min, iters, fails);
        bp_result("nist", "NIST 19 problems x 2 starts",
                  gn ? "libwiberg (Gauss-Newton Hessian)"
                     : "libwiberg (difference Hessian)",
                  med, reps, passed == 38, extra);
        fprintf(stderr, "libwiberg NIST %s: %d/38, avg LRE %.2f, %.4f s\n",
                gn ? "GN" : "FD-Hessian", passed, lre_sum / 38, med);
        for (int i = 0; i < NIST_NUM_PROBLEMS; i++) wb_solver_destroy(sv[i]);
    }
    nist_free_all(prob);
    return 0;
}

/* ====================================================================== */
/* deriv                                                                   */
/* ====================================================================== */

static double loss_of(const bp_p1 *P, const double *x, double *dl) {
    double L = 0;
    for (int j = 0; j < P->n; j++) {
        double d = x[j] - P->xtrue[j];
        L += 0.5 * d * d;
        if (dl) dl[j] = d;
    }
    return L;
}

/* largest singular value of A squared, by power iteration on A'A (setup) */
static double sigma_max2(const bp_p1 *P) {
    int m = P->m, n = P->n;
    double *v = malloc(sizeof(double) * (size_t)n), *u = malloc(sizeof(double) * (size_t)m);
    for (int j = 0; j < n; j++) v[j] = 1.0 / sqrt((double)n);
    double lam = 0;
    for (int it = 0; it < 200; it++) {
        cblas_dgemv(CblasColMajor, CblasNoTrans, m, n, 1.0, P->A, m, v, 1, 0.0, u, 1);
        cblas_dgemv(CblasColMajor, CblasTrans, m, n, 1.0, P->A, m, u, 1, 0.0, v, 1);
        double nv = cblas_dnrm2(n, v, 1), prev = lam;
        lam = nv;
        cblas_dscal(n, 1.0 / nv, v, 1);
        if (fabs(lam - prev) <= 1e-10 * lam) break;
    }
    free(v), free(u);
    return lam * 1.0001;
}

/* Reverse-mode unrolling of K gradient-descent steps from x0 = 0,
   x_{k+1} = x_k - alpha grad E(x_k; w): forward stores the residuals r_k;
   backward  wbar -= alpha B(x_k)' xbar,  xbar = xbar - alpha H(x_k) xbar.
   R: [K*m] scratch, x, xbar: [n], Hv [n]. Returns L(x_K), grad in gw[p]. */
typedef struct {
    const bp_p1 *P;
    int p, K;
    double alpha;
    double *R, *x, *xb, *g, *av, *c, *wt;
} unroll_ws;

static double unroll_grad(unroll_ws *W, const double *w, double *gw) {
    const bp_p1 *P = W->P;
    int m = P->m, n = P->n, p = W->p, K = W->K;
    double d2 = P->delta * P->delta, a = W->alpha;
    for (int i = 0; i < m; i++) W->wt[i] = i < p ? w[i] : P->w[i];
    memset(W->x, 0, sizeof(double) * (size_t)n);
    for (int k = 0; k < K; k++) {
        double *r = W->R + (size_t)k * m;
        memcpy(r, P->b, sizeof(double) * (size_t)m);
        cblas_dgemv(CblasColMajor, CblasNoTrans, m, n, 1.0, P->A, m, W->x, 1, -1.0, r, 1);
        for (int i = 0; i < m; i++) W->c[i] = W->wt[i] * r[i] / sqrt(1 + r[i] * r[i] / d2);
        /* x <- x - a (A' c + mu x) = (1 - a mu) x - a A' c */
        cblas_dgemv(CblasColMajor, CblasTrans, m, n, -a, P->A, m, W->c, 1,
                    1.0 - a * P->mu, W->x, 1);
    }
    double L = loss_of(P, W->x, W->xb);
    memset(gw, 0, sizeof(double) * (size_t)p);
    for (int k = K - 1; k >= 0; k--) {
        const double *r = W->R + (size_t)k * m;
        /* av = A xb */
        cblas_dgemv(CblasColMajor, CblasNoTrans, m, n, 1.0, P->A, m, W->xb, 1, 0.0, W->av, 1);
        for (int i = 0; i < p; i++) {
            double q = sqrt(1 + r[i] * r[i] / d2);
            gw[i] -= a * (r[i] / q) * W->av[i];
        }
        for (int i = 0; i < m; i++) {
            double q = sqrt(1 + r[i] * r[i] / d2);
            W->c[i] = W->wt[i] / (q * q * q) * W->av[i];
        }
        /* xb <- xb - a (A' c + mu xb) */
        cblas_dgemv(CblasColMajor, CblasTrans, m, n, -a, P->A, m, W->c, 1,
                    1.0 - a * P->mu, W->xb, 1);
    }
    return L;
}

static int write_deriv(const char *dir, int n, int p, const double *xs,
                       const double *gi, const double *gfd) {
    char path[1024];
    snprintf(path, sizeof path, "%s/deriv_n%d_p%d.bin", dir, n, p);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int32_t hdr[2] = {n, p};
    int ok = fwrite("WBD1", 1, 4, f) == 4 && fwrite(hdr, sizeof hdr, 1, f) == 1 &&
             fwrite(xs, sizeof(double), (size_t)n, f) == (size_t)n &&
             fwrite(gi, sizeof(double), (size_t)p, f) == (size_t)p &&
             fwrite(gfd, sizeof(double), (size_t)p, f) == (size_t)p;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* The energy's callbacks against central differences (a sanity check of the
   benchmark code, at n = 10). */
static int check_callbacks(const char *dir) {
    bp_p1 P;
    p1_energy U;
    if (p1_load(dir, 10, 20, &P, &U) != 0) return -1;
    wb_energy e = p1_wb_energy(&U);
    double x[10];
    for (int j = 0; j < 10; j++) x[j] = P.xstar[j] + 0.05 * ((j % 3) - 1);
    wb_check_report rep;
    wb_status st = wb_check_energy(&e, NULL, x, P.w, &rep);
    fprintf(stderr, "callback check (n = 10, p = 20): grad %.1e hess %.1e mixed_vjp "
            "%.1e mixed %.1e\n", rep.value_grad_err, rep.hess_err, rep.mixed_vjp_err,
            rep.mixed_err);
    int bad = st != WB_OK || rep.value_grad_err > 1e-5 || rep.hess_err > 1e-5 ||
              rep.mixed_vjp_err > 1e-5 || rep.mixed_err > 1e-5;
    p1e_free(&U);
    bp_p1_free(&P);
    return bad ? -1 : 0;
}

static int deriv_case(const char *dir, int n, int p, int do_fd, int fd_reps,
                      const int *Ks, int nK, int unroll_reps) {
    bp_p1 P;
    char cas[96], extra[768];
    p1_energy U;
    if (p1_load(dir, n, p, &P, &U) != 0) return -1;
    wb_energy e = p1_wb_energy(&U);
    wb_settings s;
    wb_settings_default(&s);
    s.grad_tol = 1e-10;
    s.lambda = 0; /* the classic implicit derivative: comparable to differences */
    /* the dense path (AUTO is matrix-free at n = 1000 without hvp): these rows
       measure the factorization the derivatives reuse; the default
       configuration's solve + dL/dw is the adjoint section */
    s.hessian = WB_HESS_DENSE;
    wb_solver *sv = NULL;
    if (wb_solver_create(&sv, &e, &s) != WB_OK) return -1;
    double *w = malloc(sizeof(double) * (size_t)p), *x = malloc(sizeof(double) * (size_t)n);
    double *xs = malloc(sizeof(double) * (size_t)n), *dl = malloc(sizeof(double) * (size_t)n);
    double *gi = malloc(sizeof(double) * (size_t)p), *gi2 = malloc(sizeof(double) * (size_t)p);
    double *gfd = malloc(sizeof(double) * (size_t)p), *gu = malloc(sizeof(double) * (size_t)p);
    memcpy(w, P.w, sizeof(double) * (size_t)p);
    int reps = bp_reps(5);
    double ts[5], tv[5], tv2[5];
    wb_info info;
    wb_deriv_info di, di2;
    wb_status st = WB_OK, sv1 = WB_OK, sv2 = WB_OK;
    for (int r = 0; r < reps; r++) {
        memset(x, 0, sizeof(double) * (size_t)n);
        double t0 = bp_now();
        st = wb_solve(sv, w, x, &info);
        double t1 = bp_now();
        loss_of(&P, x, dl);
        sv1 = wb_implicit_vjp(sv, dl, gi);
        double t2 = bp_now();
        wb_solver_deriv_info(sv, &di);
        sv2 = wb_implicit_vjp(sv, dl, gi2); /* the factor is cached now */
        double t3 = bp_now();
        wb_solver_deriv_info(sv, &di2);
        ts[r] = t1 - t0, tv[r] = t2 - t1, tv2[r] = t3 - t2;
    }
    if (st != WB_OK || sv1 != WB_OK || sv2 != WB_OK) {
        fprintf(stderr, "deriv n=%d p=%d: solve %d, vjp %d/%d: %s\n", n, p, st, sv1,
                sv2, wb_solver_message(sv));
        return -1;
    }
    memcpy(xs, x, sizeof(double) * (size_t)n);
    double t_solve = bp_median(ts, reps), t_vjp = bp_median(tv, reps);
    double t_vjp2 = bp_median(tv2, reps);
    snprintf(cas, sizeof cas, "P1 n=%d p=%d", n, p);
    snprintf(extra, sizeof extra,
             ", \"solve_s\": %.9g, \"solve_iters\": %d, \"vjp_cached_s\": %.9g, "
             "\"reused_factor_first\": %d, \"reused_factor_second\": %d, "
             "\"rcond\": %.3g",
             t_solve, info.iterations, t_vjp2, di.reused_factor, di2.reused_factor,
             di.rcond);
    bp_result("deriv", cas, "libwiberg implicit VJP", t_vjp, reps, 1, extra);
    bp_result("deriv", cas, "libwiberg solve (grad_tol 1e-10)", t_solve, reps, 1, "");
    fprintf(stderr, "%s: solve %.5f s (%d it), VJP %.6f s (factor reused: %d), "
            "cached VJP %.6f s\n", cas, t_solve, info.iterations, t_vjp,
            di.reused_factor, t_vjp2);

    /* (a) central differences of L: 2p solves warm-started from x*, with
       tolerances tight enough for the difference quotient (a re-solve that
       stops at |g| = 1e-10 moves L by ~1e-11, which h = 1e-4 turns into an
       error of ~1e-7 in dL/dw) */
    for (int i = 0; i < p; i++) gfd[i] = NAN;
    /* the slow configurations (fewer than 5 repetitions) run in the first
       of bench/run's rounds only */
    if (do_fd && (fd_reps >= 5 || bp_first_round())) {
        const char *hs = getenv("BENCH_FD_H");
        double tf[5], h = hs ? atof(hs) : 1e-3;
        wb_settings sf = s;
        sf.grad_tol = getenv("BENCH_FD_GTOL") ? atof(getenv("BENCH_FD_GTOL")) : 1e-13;
        sf.step_tol = 1e-15;
        wb_solver *svf = NULL;
        if (wb_solver_create(&svf, &e, &sf) != WB_OK) return -1;
        int fr = fd_reps < 5 ? bp_reps_slow(fd_reps) : bp_reps(fd_reps), solves_ok = 1;
        for (int r = 0; r < fr; r++) {
            double t0 = bp_now();
            for (int i = 0; i < p; i++) {
                double wi = w[i], Lp, Lm;
                w[i] = wi + h;
                memcpy(x, xs, sizeof(double) * (size_t)n);
                solves_ok &= wb_solve(svf, w, x, NULL) == WB_OK;
                Lp = loss_of(&P, x, NULL);
                w[i] = wi - h;
                memcpy(x, xs, sizeof(double) * (size_t)n);
                solves_ok &= wb_solve(svf, w, x, NULL) == WB_OK;
                Lm = loss_of(&P, x, NULL);
                w[i] = wi;
                gfd[i] = (Lp - Lm) / (2 * h);
            }
            tf[r] = bp_now() - t0;
        }
        wb_solver_destroy(svf);
        double t_fd = bp_median(tf, fr), err = bp_rel_err(p, gi, gfd);
        char rn[96] = "";
        if (fr < 5 && fr == fd_reps)
            snprintf(rn, sizeof rn, "%d repetition%s (slow configuration)", fr,
                     fr > 1 ? "s" : "");
        snprintf(extra, sizeof extra,
                 ", \"solves\": %d, \"h\": %g, \"grad_tol\": %g, "
                 "\"rel_err_implicit_vs_fd\": %.3g, \"forward_solve_s\": %.9g, "
                 "\"reps_note\": \"%s\"",
                 2 * p, h, sf.grad_tol, err, t_solve, rn);
        bp_result("deriv", cas, "central finite differences", t_fd, fr, solves_ok, extra);
        fprintf(stderr, "%s: finite differences %.4f s (%d warm solves), implicit "
                "vs FD %.2e\n", cas, t_fd, 2 * p, err);
    }

    /* (b) unrolled gradient descent */
    if (nK > 0) {
        unroll_ws W;
        memset(&W, 0, sizeof W);
        W.P = &P;
        W.p = p;
        int Kmax = 0;
        for (int k = 0; k < nK; k++) Kmax = Ks[k] > Kmax ? Ks[k] : Kmax;
        double wmax = 0;
        for (int i = 0; i < P.m; i++) wmax = fmax(wmax, P.w[i]);
        W.alpha = 1.0 / (wmax * sigma_max2(&P) + P.mu);
        W.R = malloc(sizeof(double) * (size_t)Kmax * P.m);
        W.x = malloc(sizeof(double) * (size_t)n);
        W.xb = malloc(sizeof(double) * (size_t)n);
        W.av = malloc(sizeof(double) * (size_t)P.m);
        W.c = malloc(sizeof(double) * (size_t)P.m);
        W.wt = malloc(sizeof(double) * (size_t)P.m);
        if (!W.R) return -1;
        for (int k = 0; k < nK; k++) {
            W.K = Ks[k];
            if (unroll_reps < 5 && !bp_first_round()) continue;
            int ur = unroll_reps < 5 ? bp_reps_slow(unroll_reps) : bp_reps(unroll_reps);
            double tu[5];
            for (int r = 0; r < ur; r++) {
                double t0 = bp_now();
                unroll_grad(&W, w, gu);
                tu[r] = bp_now() - t0;
            }
            double xe = 0;
            for (int j = 0; j < n; j++) xe = fmax(xe, fabs(W.x[j] - xs[j]));
            double eu = bp_rel_err(p, gu, do_fd ? gfd : gi), ei = bp_rel_err(p, gu, gi);
            char solver[64], rn[96] = "", efd[32] = "null";
            if (ur < 5 && ur == unroll_reps)
                snprintf(rn, sizeof rn, "%d repetitions (slow configuration)", ur);
            if (do_fd) snprintf(efd, sizeof efd, "%.3g", eu);
            snprintf(solver, sizeof solver, "unrolled gradient descent K=%d", W.K);
            snprintf(extra, sizeof extra,
                     ", \"K\": %d, \"alpha\": %.4g, \"rel_err_vs_fd\": %s, "
                     "\"rel_err_vs_implicit\": %.3g, \"xK_err\": %.3g, "
                     "\"forward_solve_s\": %.9g, \"fd_available\": %s, "
                     "\"reps_note\": \"%s\"",
                     W.K, W.alpha, efd, ei, xe, t_solve, do_fd ? "true" : "false", rn);
            bp_result("deriv", cas, solver, bp_median(tu, ur), ur, 1, extra);
            fprintf(stderr, "%s: unrolled GD K=%d %.4f s, error vs %s %.2e, "
                    "|x_K - x*| %.2e\n", cas, W.K, bp_median(tu, ur),
                    do_fd ? "FD" : "implicit", eu, xe);
        }
        free(W.R), free(W.x), free(W.xb), free(W.av), free(W.c), free(W.wt);
    }
    /* for bench_torch.py (the same in every round) */
    if (bp_first_round() && write_deriv(dir, n, p, xs, gi, gfd) != 0) return -1;
    wb_solver_destroy(sv);
    free(w), free(x), free(xs), free(dl), free(gi), free(gi2), free(gfd), free(gu);
    p1e_free(&U);
    bp_p1_free(&P);
    return 0;
}

static int section_deriv(const char *dir) {
    if (check_callbacks(dir) != 0) {
        fprintf(stderr, "the benchmark's P1 callbacks disagree with differences\n");
        return -1;
    }
    static const int K_small[2] = {100, 1000};
    static const int K_large[1] = {1000};
    if (deriv_case(dir, 100, 50, 1, 5, K_small, 2, 5) != 0) return -1;
    if (getenv("BENCH_DERIV_SMALL")) return 0; /* quick check */
    if (deriv_case(dir, 100, 200, 1, 5, K_small, 2, 5) != 0) return -1;
    if (deriv_case(dir, 1000, 50, 1, 1, K_large, 1, 3) != 0) return -1;
    if (deriv_case(dir, 1000, 2000, 0, 0, K_large, 1, 3) != 0) return -1;
    return 0;
}

/* ====================================================================== */
/* adjoint: solve + dL/dw, P1 n = 1000, p = 50                             */
/* ====================================================================== */

/* libwiberg's default configuration (AUTO with every callback: matrix-free
   with hvp at n = 1000), the dense one and the L-BFGS one (WB_HESS_LBFGS
   with the default's callbacks: its adjoint is the same PCG on hvp):
   wb_solve from x0 = 0 to grad_tol, then wb_implicit_vjp; the time of
   both; the error of dL/dw against bench_data's dense reference (LAPACK at
   the reference x*); the products each part made (value_grad and hvp
   calls, two dgemv each: the solve's include its second-order test at x*,
   CG on H from a fixed start). The peer (libLBFGS + CG adjoint) is in
   bench_lbfgs. */
static int section_adjoint(const char *dir) {
    int n = BP_ADJ_N, p = BP_ADJ_P;
    bp_p1 P;
    p1_energy U;
    if (p1_load(dir, n, p, &P, &U) != 0) return -1;
    double *gref = malloc(sizeof(double) * (size_t)p), *g = malloc(sizeof(double) * (size_t)p);
    double *w = malloc(sizeof(double) * (size_t)p), *x = malloc(sizeof(double) * (size_t)n);
    double *dl = malloc(sizeof(double) * (size_t)n);
    if (!gref || !g || !w || !x || !dl || bp_adjref_read(dir, n, p, gref) != 0) return -1;
    memcpy(w, P.w, sizeof(double) * (size_t)p);
    /* (configuration, grad_tol, cg_tol): the defaults (1e-8, 1e-10), a
       tighter solve, and looser tolerances that give the accuracy the
       libLBFGS + CG peer reaches (equal accuracy, see report.py) */
    /* kind 0: default, 1: dense, 2: L-BFGS (grad_tol 1e-8 and 1e-9 with
       cg_tol 1e-6: the peer's accuracy) */
    static const struct {
        int kind;
        double gtol, cgtol;
    } cfg[7] = {{0, 1e-8, 1e-10}, {0, 1e-10, 1e-10}, {0, 1e-6, 1e-6}, {1, 1e-8, 1e-10},
                {1, 1e-10, 1e-10}, {2, 1e-8, 1e-6}, {2, 1e-9, 1e-6}};
    for (int c = 0; c < 7; c++) {
        int kind = cfg[c].kind;
        wb_energy e = p1_wb_energy(&U);
        wb_settings s;
        wb_settings_default(&s);
        s.grad_tol = cfg[c].gtol;
        s.cg_tol = cfg[c].cgtol;
        if (kind != 1) {
            e.hvp = p1_hvp;
            e.hess_diag = p1_hess_diag;
            if (kind == 2) s.hessian = WB_HESS_LBFGS;
        } else {
            s.hessian = WB_HESS_DENSE;
        }
        wb_solver *sv = NULL;
        if (wb_solver_create(&sv, &e, &s) != WB_OK) return -1;
        int reps = bp_reps(5);
        double tt[5], tsol[5], tv[5];
        wb_info info;
        wb_deriv_info di;
        wb_status st = WB_OK, sd = WB_OK;
        long svg = 0, shvp = 0, vvg = 0, vhvp = 0; /* the last repetition's */
        for (int r = 0; r < reps; r++) {
            memset(x, 0, sizeof(double) * (size_t)n);
            U.vg_calls = U.hvp_calls = 0;
            double t0 = bp_now();
            st = wb_solve(sv, w, x, &info);
            double t1 = bp_now();
            svg = U.vg_calls, shvp = U.hvp_calls;
            loss_of(&P, x, dl);
            sd = wb_implicit_vjp(sv, dl, g);
            double t2 = bp_now();
            vvg = U.vg_calls - svg, vhvp = U.hvp_calls - shvp;
            tt[r] = t2 - t0, tsol[r] = t1 - t0, tv[r] = t2 - t1;
        }
        wb_solver_deriv_info(sv, &di);
        double err = bp_rel_err(p, g, gref);
        char solver[128], extra[768];
        const char *oname = kind == 0   ? OURS_DEFAULT
                            : kind == 1 ? OURS_DENSE
                                        : "libwiberg L-BFGS (WB_HESS_LBFGS, hvp)";
        if (s.cg_tol == 1e-10) /* the default */
            snprintf(solver, sizeof solver, "%s: solve + wb_implicit_vjp, grad_tol %g",
                     oname, s.grad_tol);
        else
            snprintf(solver, sizeof solver,
                     "%s: solve + wb_implicit_vjp, grad_tol %g, cg_tol %g", oname,
                     s.grad_tol, s.cg_tol);
        snprintf(extra, sizeof extra,
                 ", \"solve_s\": %.9g, \"vjp_s\": %.9g, \"rel_err\": %.3g, "
                 "\"iters\": %d, \"kind\": \"%s\", \"cg_iters\": %d, "
                 "\"adj_cg_iters\": %d, \"adj_cg_residual\": %.3g, \"grad_norm\": %.3g, "
                 "\"solve_vg_calls\": %ld, \"solve_hvp_calls\": %ld, "
                 "\"vjp_vg_calls\": %ld, \"vjp_hvp_calls\": %ld, "
                 "\"status\": \"%s\", \"vjp_status\": \"%s\"",
                 bp_median(tsol, reps), bp_median(tv, reps), err, info.iterations,
                 kind_word(info.hessian), info.cg_iterations, di.cg_iterations,
                 di.cg_residual, info.grad_norm, svg, shvp, vvg, vhvp, status_word(st),
                 status_word(sd));
        bp_result("adjoint", "P1 n=1000 p=50", solver, bp_median(tt, reps), reps,
                  st == WB_OK && sd == WB_OK, extra);
        fprintf(stderr, "adjoint %s: %.4f s (solve %.4f s, %s, %d it, %ld value_grad + "
                "%ld hvp; VJP %.4f s, %d CG, %ld hvp), dL/dw rel. error %.2e\n", solver,
                bp_median(tt, reps), bp_median(tsol, reps), kind_word(info.hessian),
                info.iterations, svg, shvp, bp_median(tv, reps), di.cg_iterations, vhvp,
                err);
        wb_solver_destroy(sv);
    }
    free(gref), free(g), free(w), free(x), free(dl);
    p1e_free(&U);
    bp_p1_free(&P);
    return 0;
}

/* ====================================================================== */
/* dense                                                                   */
/* ====================================================================== */

static int section_dense(const char *dir) {
    int n = 2000, p = 2000;
    /* the machine: dgemm and dpotrf at n = 2000, timed in the same loop as the
       Jacobian (one of each per repetition) so that a load change on a shared
       machine moves both sides of the ratio alike */
    double *X = malloc(sizeof(double) * (size_t)n * n), *Y = malloc(sizeof(double) * (size_t)n * n);
    double *Z = malloc(sizeof(double) * (size_t)n * n), *S = malloc(sizeof(double) * (size_t)n * n);
    uint64_t seed = 7;
    for (size_t k = 0; k < (size_t)n * n; k++) X[k] = bp_unif(&seed) - 0.5, Y[k] = bp_unif(&seed) - 0.5;
    int reps = bp_reps(5);
    double tg[5], tp[5];
    /* SPD matrix for dpotrf: X X' + n I */
    cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, n, n, 1.0, X, n, 0.0, S, n);
    for (int j = 0; j < n; j++) S[(size_t)j * n + j] += n;
    char extra[512];

    /* wb_implicit_jacobian at n = 2000, p = 2000 */
    bp_p1 P;
    p1_energy U;
    if (p1_load(dir, n, p, &P, &U) != 0) return -1;
    U.time_cb = 1; /* the callbacks' share of the Jacobian's time */
    wb_energy e = p1_wb_energy(&U);
    wb_settings s;
    wb_settings_default(&s);
    s.grad_tol = 1e-10;
    s.hessian = WB_HESS_DENSE; /* the dense factorization's throughput */
    wb_solver *sv = NULL;
    if (wb_solver_create(&sv, &e, &s) != WB_OK) return -1;
    double *x = calloc((size_t)n, sizeof(double)), *J = malloc(sizeof(double) * (size_t)n * p);
    double *xs = malloc(sizeof(double) * (size_t)n);
    wb_info info;
    wb_status st = wb_solve(sv, P.w, x, &info); /* setup, not timed */
    if (st != WB_OK) {
        fprintf(stderr, "dense: solve at n = 2000: %s\n", wb_solver_message(sv));
        return -1;
    }
    memcpy(xs, x, sizeof(double) * (size_t)n);
    double tj[5], tj2[5], tcb[5], flops_first = 0;
    wb_deriv_info di, di2;
    for (int r = 0; r < reps; r++) {
        double t0 = bp_now();
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, X, n, Y, n,
                    0.0, Z, n);
        tg[r] = bp_now() - t0;
        memcpy(Z, S, sizeof(double) * (size_t)n * n);
        t0 = bp_now();
        if (LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', n, Z, n) != 0) {
            fprintf(stderr, "dense: dpotrf failed\n");
            return -1;
        }
        tp[r] = bp_now() - t0;
        /* a fresh solver state at x*: a warm solve that stops at once */
        memcpy(x, xs, sizeof(double) * (size_t)n);
        wb_solve(sv, P.w, x, &info);
        long h0 = U.hess_calls, m0 = U.mixed_calls;
        U.cb_time = 0;
        t0 = bp_now();
        st = wb_implicit_jacobian(sv, J);
        double t1 = bp_now();
        wb_solver_deriv_info(sv, &di);
        tcb[r] = U.cb_time;
        st |= wb_implicit_jacobian(sv, J); /* cached factor */
        double t2 = bp_now();
        wb_solver_deriv_info(sv, &di2);
        tj[r] = t1 - t0, tj2[r] = t2 - t1;
        /* flops of the first call: the Hessian callback (dsyrk, m n^2) when
           called, dpotrf (n^3/3) unless reused, the solve (2 n^2 p) */
        flops_first = (double)(U.hess_calls - h0) * P.m * (double)n * n +
                      (di.reused_factor ? 0 : (double)n * n * n / 3.0) +
                      2.0 * n * (double)n * p;
        (void)m0;
    }
    if (st != WB_OK) {
        fprintf(stderr, "dense: jacobian: %s\n", wb_solver_message(sv));
        return -1;
    }
    double gemm_gf = 2.0 * n * (double)n * n / bp_median(tg, reps) / 1e9;
    double potrf_gf = (double)n * n * n / 3.0 / bp_median(tp, reps) / 1e9;
    free(X), free(Y), free(Z), free(S);
    snprintf(extra, sizeof extra, ", \"gflops\": %.2f, \"n\": %d", gemm_gf, n);
    bp_result("dense", "machine", "dgemm", 2.0 * n * (double)n * n / gemm_gf / 1e9, reps, 1, extra);
    snprintf(extra, sizeof extra, ", \"gflops\": %.2f, \"n\": %d", potrf_gf, n);
    bp_result("dense", "machine", "dpotrf", (double)n * n * n / 3.0 / potrf_gf / 1e9, reps, 1, extra);
    fprintf(stderr, "machine: dgemm %.1f GFLOP/s, dpotrf %.1f GFLOP/s (n = %d, 1 thread)\n",
            gemm_gf, potrf_gf, n);
    double t_first = bp_median(tj, reps), t_cached = bp_median(tj2, reps);
    double t_cb = bp_median(tcb, reps);
    double gf_first = flops_first / t_first / 1e9;
    double flops_cached = 2.0 * n * (double)n * p;
    double gf_cached = flops_cached / t_cached / 1e9;
    /* the library's own share: factor + solve flops over the time outside
       the user's callbacks */
    double lib_flops = (di.reused_factor ? 0 : (double)n * n * n / 3.0) + 2.0 * n * (double)n * p;
    double gf_lib = lib_flops / (t_first - t_cb) / 1e9;
    snprintf(extra, sizeof extra,
             ", \"gflops\": %.2f, \"flops\": %.4g, \"cached_s\": %.9g, "
             "\"cached_gflops\": %.2f, \"callback_s\": %.9g, \"library_gflops\": %.2f, "
             "\"reused_factor\": %d, \"dgemm_gflops\": %.2f, \"dpotrf_gflops\": %.2f",
             gf_first, flops_first, t_cached, gf_cached, t_cb, gf_lib, di.reused_factor,
             gemm_gf, potrf_gf);
    bp_result("dense", "implicit Jacobian n=2000 p=2000", "libwiberg", t_first, reps, 1, extra);
    fprintf(stderr, "implicit Jacobian n=%d p=%d: %.4f s = %.1f GFLOP/s (%.0f%% of dgemm, "
            "%.0f%% of dpotrf; callbacks %.4f s, library alone %.1f GFLOP/s = %.0f%% of "
            "dgemm); cached factor: %.4f s = %.1f GFLOP/s (%.0f%% of dgemm)\n", n, p, t_first,
            gf_first, 100 * gf_first / gemm_gf, 100 * gf_first / potrf_gf, t_cb, gf_lib,
            100 * gf_lib / gemm_gf, t_cached, gf_cached, 100 * gf_cached / gemm_gf);
    wb_solver_destroy(sv);
    free(x), free(J), free(xs);
    p1e_free(&U);
    bp_p1_free(&P);
    return 0;
}

int main(int argc, char **argv) {
    const char *nist_dir = NULL;
    int done = bp_parse_args(argc, argv, "bench_ours", usage, &nist_dir);
    if (done >= 0) return done;
    const char *dir = bp_data_dir(argc, argv);
    printf("VERSION libwiberg %s\n", wb_version());
    printf("VERSION openblas %s\n", openblas_get_config());
    int rc = 0;
    if (bp_selected(argc, argv, "inner") && section_inner(dir) != 0) rc = 1;
    if (bp_selected(argc, argv, "p3") && section_p3(dir) != 0) rc = 1;
    if (bp_selected(argc, argv, "p4") && section_p4() != 0) rc = 1;
    if (bp_selected(argc, argv, "adjoint") && section_adjoint(dir) != 0) rc = 1;
    if (bp_selected(argc, argv, "nist") && section_nist(nist_dir) != 0) rc = 1;
    if (bp_selected(argc, argv, "deriv") && section_deriv(dir) != 0) rc = 1;
    if (bp_selected(argc, argv, "dense") && section_dense(dir) != 0) rc = 1;
    if (rc) fprintf(stderr, "bench_ours: a section failed\n");
    return rc;
}
