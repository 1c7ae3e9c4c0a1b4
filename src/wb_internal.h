/* Internal declarations shared across libwiberg's source files (wbi_*). */
#ifndef WB_INTERNAL_H
#define WB_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "wiberg.h"

#define WBI_MSG_LEN 256

/* ---- memory (settings' allocator hooks or malloc/free) ------------------ */
void *wbi_alloc(const wb_settings *s, size_t count, size_t size);
void wbi_free(const wb_settings *s, void *p);

/* ---- the thread's last error (wb_last_error) ------------------------------ */
/* Records "fmt ..." as this thread's last error and returns st: for failures
   with no object to hold their message (a NULL object, a refused create,
   the object-free calls). */
wb_status wbi_fail(wb_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---- overlapping arguments ---------------------------------------------- */
/* 1 when the byte ranges [a, a + na) and [b, b + nb) share a byte; a NULL
   pointer or an empty range overlaps nothing. The addresses are compared as
   integers: the arguments may point into different objects. Every public
   call of the solver, prox and lsq objects passes its arrays through this
   (with their lengths in bytes) before it writes any output. */
static inline int wbi_overlap(const void *a, size_t na, const void *b,
                              size_t nb) {
    if (!a || !b || na == 0 || nb == 0) return 0;
    uintptr_t pa = (uintptr_t)a, pb = (uintptr_t)b;
    return pa < pb + nb && pb < pa + na;
}

/* ---- the in-use guard (WB_EBUSY) ----------------------------------------- */
/* An object that serves one call at a time (wb_solver, wb_prox,
   wb_lsq_energy, wb_trainer) holds a wbi_guard, 0 when free. A public call
   takes it first (before reading any field) and drops it on every return;
   one that finds it taken -- another thread inside, or a callback re-entering
   the running call -- touches nothing and returns wbi_busy(). Acquire on
   take and release on drop order each call after the previous one, so
   consecutive calls from different threads are fine (and clean under TSan).
   Usage:
       if (!wbi_guard_take(&obj->busy)) return wbi_busy("wb_f", "solver");
       st = body(...);
       wbi_guard_drop(&obj->busy);                                          */
typedef atomic_int wbi_guard;

static inline void wbi_guard_init(wbi_guard *g) { atomic_init(g, 0); }

/* 1: taken by this call; 0: in use elsewhere (nothing changed). */
static inline int wbi_guard_take(wbi_guard *g) {
    int expected = 0;
    return atomic_compare_exchange_strong_explicit(
        g, &expected, 1, memory_order_acquire, memory_order_relaxed);
}

static inline void wbi_guard_drop(wbi_guard *g) {
    atomic_store_explicit(g, 0, memory_order_release);
}

/* The refusal: WB_EBUSY, with the sentence in this thread's wb_last_error
   (the object's own message belongs to the call that holds it). */
static inline wb_status wbi_busy(const char *fn, const char *object) {
    return wbi_fail(WB_EBUSY, "%s: the %s is in use by another call (another "
                    "thread, or a callback of the running call): refused, "
                    "nothing done", fn, object);
}

/* ---- settings --------------------------------------------------------------- */
/* Validates every field; on failure writes a message into msg[len]. */
wb_status wbi_settings_check(const wb_settings *s, char *msg, size_t len);
/* Validates an energy's sizes and callbacks. */
wb_status wbi_energy_check(const wb_energy *e, char *msg, size_t len);

/* ---- dense linear algebra: the only file that calls BLAS/LAPACKE -------- */
/* Column-major n x n matrices with leading dimension n. */
double wbi_dot(int n, const double *x, const double *y);
double wbi_nrm2(int n, const double *x);
double wbi_norm_inf(int n, const double *x);
int wbi_all_finite(size_t n, const double *x);
/* y = alpha * A x + beta * y, A symmetric (full storage, lower used). */
void wbi_symv(int n, double alpha, const double *A, const double *x,
              double beta, double *y);
/* F = A + diag(mu * d) (d NULL: identity); lower triangle copied. */
void wbi_shift_copy(int n, const double *A, double mu, const double *d,
                    double *F);
/* In-place Cholesky of the lower triangle of F. Returns LAPACK's info:
   0 ok, > 0 the leading minor of that order is not positive definite. */
int wbi_chol(int n, double *F);
/* Solves F F^T X = B in place, B n x nrhs. Returns LAPACK info. */
int wbi_chol_solve(int n, const double *F, int nrhs, double *B);
/* 1-norm of the symmetric matrix A + mu I (lower triangle). */
double wbi_sym_norm1(int n, const double *A, double mu);
/* Reciprocal condition estimate from the factor; anorm = ||A||_1.
   work[3n], iwork[n]. Returns LAPACK info. */
int wbi_chol_rcond(int n, const double *F, double anorm, double *rcond,
                   double *work, int *iwork);
/* Banded symmetric (lower band storage, leading dimension kd + 1). */
void wbi_band_shift_copy(int n, int kd, const double *AB, double mu,
                         const double *d, double *FB);
int wbi_band_chol(int n, int kd, double *FB);
int wbi_band_chol_solve(int n, int kd, const double *FB, int nrhs, double *B);
void wbi_band_symv(int n, int kd, const double *AB, const double *x,
                   double *y);
double wbi_band_norm1(int n, int kd, const double *AB, double mu);
/* y += a x */
void wbi_axpy(int n, double a, const double *x, double *y);
/* C = A^T B (A: m x k, B: m x nc, C: k x nc). */
void wbi_gemm_tn(int m, int k, int nc, const double *A, const double *B,
                 double *C);

/* ---- solver object --------------------------------------------------------- */
struct wb_solver {
    wb_energy e;
    wb_settings s;
    int n, p;
    int n_cap;     /* n the buffers were sized for (>= n)                */
    wb_hessian_kind kind; /* DENSE, BANDED or MATRIX_FREE (resolved; an
                             L-BFGS solver's operator is MATRIX_FREE)  */
    int kd, kd_cap;       /* half-bandwidth (banded)                   */
    const double *hw;     /* matrix-free: w of the current H operator  */
    double *hx;    /* [n] matrix-free: x of the current H operator       */
    double *cgw;   /* [4n] matrix-free: CG work vectors                   */
    double *hs;    /* [n] H s for the model decrease                      */
    double *hd;    /* [n] matrix-free: diagonal of H (Jacobi), if given   */
    int have_hd;   /* hd holds hess_diag at (hx, hw) (loaded on demand)   */
    const double *hg; /* [n] matrix-free: g at hx for forward-difference
                         products (the solve's steps), NULL: central    */
    long long cg_its; /* CG iterations in the current call            */
    /* L-BFGS steps (step_lbfgs.c): the last lb_k <= lb_m pairs, a ring */
    int lbfgs;     /* 1: settings.hessian resolved to WB_HESS_LBFGS        */
    int lb_m, lb_k, lb_head; /* capacity, pairs held, next slot         */
    double *lb_s, *lb_y;     /* [lb_m*n] s_i = x_{i+1} - x_i, y_i = g_{i+1} - g_i */
    double *lb_rho, *lb_a;   /* [lb_m] 1 / y_i's_i; two-loop coefficients */
    double lb_last;          /* ||s|| of the last accepted step (0: none) */
    /* solver state */
    double *x;     /* [n] current iterate                                */
    double *xt;    /* [n] trial point                                    */
    double *g;     /* [n] gradient at x                                  */
    double *gt;    /* [n] gradient at the trial point                    */
    double *sd;    /* [n] step                                           */
    double *H;     /* [n*n] dense / [(kd+1)*n] banded Hessian at x       */
    double *F;     /* same size: Cholesky factor (lower) of H + mu D     */
    double *D;     /* [n] damping scale (Marquardt), or all ones         */
    double *g1, *g2; /* [n] gradients for finite differences          */
    double *xh;    /* [n] perturbed x for finite differences             */
    double *wt;    /* [max(p,1)] perturbed w for finite differences    */
    double *B;     /* [n*max(p,1)] mixed derivative / Jacobian work      */
    double *v;     /* [n] adjoint                                       */
    double *pbuf;  /* [max(p,1)] B^T v                                   */
    double *work;  /* [3n] for the condition estimate                    */
    int *iwork;    /* [n]                                                */
    /* the last solve */
    double *xs;    /* [n] x* of the last solve (or of vjp_at)            */
    double *x0;    /* [n] the start of the last solve (typical sizes)    */
    int have_x0;
    double *ws;    /* [max(p,1)] w of the last solve                     */
    int solved;          /* 1 after a solve that produced an x*      */
    wb_status solve_status;
    /* factorization cache: F holds chol(H(xs) + fact_mu I) when fact_valid */
    int fact_valid;
    double fact_mu;
    double fact_rcond;
    double fact_sigma;   /* 1 / est ||(H + fact_mu I)^-1||_1 (-1: not yet) */
    double fs;           /* E at xs (the curvature floor's energy scale) */
    double gs2;          /* ||g(xs)||_2 (wb_deriv_info.x_error)        */
    int hess_valid;      /* H holds H(xs, ws)                         */
    double adj_acc;      /* matrix-free: ||g(xs)||_2 / ||H(xs) xs||_2, the
                            accuracy x* reached (implicit.c)          */
    int adj_acc_valid;   /* adj_acc is that of the operator at (xs, ws) */
    wb_deriv_info dinfo;
    int evals;           /* value_grad calls in the current call      */
    char msg[WBI_MSG_LEN];
    wbi_guard busy;      /* taken by every public call (WB_EBUSY)     */
    struct wbi_sparse *sp; /* WB_HESS_SPARSE: the pattern, its colouring
                              and CHOLMOD's analysis and factor (sparse.c);
                              H holds the pattern's values then          */
};

/* The bodies of wb_solve and wb_implicit_jacobian, for a caller that holds
   sv->busy already (wb_check_implicit). */
wb_status wbi_solve(wb_solver *sv, const double *w, double *x, wb_info *info);
wb_status wbi_implicit_jacobian(wb_solver *sv, double *dx_dw);

void wbi_set_msg(wb_solver *sv, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---- callback evaluation (eval.c): below every strategy ----------------- */
/* Energy evaluation with status mapping: callback failure -> WB_ECALLBACK,
   non-finite e or g -> WB_ENONFINITE (message set). g may be NULL. */
wb_status wbi_eval(wb_solver *sv, const double *x, const double *w, double *e,
                   double *g);
/* ---- the Hessian operator (hessian.c): dense, banded or matrix-free ---- */
/* Which kind an energy gets under settings s; WB_EINVAL with a message when
   the choice is impossible. */
wb_status wbi_resolve_kind(const wb_energy *e, const wb_settings *s,
                           wb_hessian_kind *kind, char *msg, size_t len);
/* Forms H at (x, w) in sv->H (dense/banded: the callback, or differences of
   the gradient, symmetrized; matrix-free: remembers the point). */
wb_status wbi_hessian(wb_solver *sv, const double *x, const double *w);
/* Matrix-free: evaluates hess_diag at the operator's point once (when the
   energy gives it and it is not loaded yet): only its users call this
   (the Jacobi preconditioner, the curvature scale), never a step. */
wb_status wbi_hess_diag_load(wb_solver *sv);
/* H_ii of the current H (matrix-free: hess_diag when loaded, else 0). */
double wbi_hess_diag(const wb_solver *sv, int i);
/* sv->F = chol(H + mu diag(d)) (d NULL: identity). Returns 0 or the LAPACK
   info (> 0: not positive definite). Dense, banded and sparse (the factor
   in sv->sp; < 0: a wb_status, CHOLMOD failed, message set). */
int wbi_factor(wb_solver *sv, double mu, const double *d);
/* B[n x nrhs] = (H + mu D)^-1 B with the factor in sv->F. */
void wbi_factor_solve(wb_solver *sv, int nrhs, double *B);
/* out = H v at the current point. */
wb_status wbi_hess_mul(wb_solver *sv, const double *v, double *out);
/* Reciprocal condition estimate of H + mu I from its factor; *anorm (may
   be NULL) = ||H + mu I||_1. */
double wbi_factor_rcond(wb_solver *sv, double mu, double *anorm);
/* After wbi_factor(sv, 0, NULL) failed with info > 0: z[n] with z'Hz = the
   failed pivot <= 0 (More-Sorensen: z = [-A11^-1 a; 1; 0], from the
   leading info-1 columns of the partial factor). Dense and banded. */
void wbi_chol_fail_direction(wb_solver *sv, int info, double *z);
/* The rounding floor of curvature (settings.curv_floor): factor * eps_H *
   kappa, kappa = max(2|E| / max(1, ||x||_inf)^2, hmax); *kappa set. */
double wbi_curv_floor(const wb_solver *sv, double factor, double E,
                      const double *x, double hmax, double *kappa);
/* 1 when H comes from differences of the gradient (no hess / hess_band /
   hvp / hess_sparse callback for the storage in use). */
int wbi_hess_is_approx(const wb_solver *sv);
/* max_i |H_ii| of the current H (matrix-free: of hess_diag, or 0). */
double wbi_hess_diag_max(const wb_solver *sv);

/* ---- sparse storage (sparse.c): lower-triangle CSC pattern, CHOLMOD ----- */
/* The rules of wb_energy.hess_nnz / hess_colptr / hess_rowidx /
   hess_sparse; WB_EINVAL with the broken rule in msg[len]. */
wb_status wbi_sparse_pattern_check(const wb_energy *e, char *msg, size_t len);
/* Copies sv->e's pattern, colours it, starts CHOLMOD and analyses the
   pattern into sv->sp (allocated with sv->s's allocator). WB_ENOMEM /
   WB_EINVAL (CHOLMOD refused), the sentence in msg[len]. */
wb_status wbi_sparse_create(wb_solver *sv, char *msg, size_t len);
void wbi_sparse_destroy(wb_solver *sv); /* NULL-safe, sv->sp NULL after */
/* wb_solver_set_energy: keeps the analysis when e's pattern is the one
   held, else copies it (hess_nnz <= the capacity) and analyses it anew. */
wb_status wbi_sparse_set_pattern(wb_solver *sv, const wb_energy *e);
/* sv->H[nnz] = H(x, w) at the pattern: hess_sparse, or coloured central
   differences of the gradient. */
wb_status wbi_sparse_hessian(wb_solver *sv, const double *x, const double *w);
/* Numeric factorization of H + mu diag(d) (d NULL: H + mu I). 0 ok; > 0 not
   positive definite (the failed pivot, 1-based, in CHOLMOD's order); < 0 a
   wb_status (CHOLMOD out of memory), message set. */
int wbi_sparse_factor(wb_solver *sv, double mu, const double *d);
/* B[n x nrhs] := (H + mu D)^-1 B on the factor. */
void wbi_sparse_solve(wb_solver *sv, int nrhs, double *B);
/* out[n] = H v. */
void wbi_sparse_mul(const wb_solver *sv, const double *v, double *out);
double wbi_sparse_diag(const wb_solver *sv, int i); /* H_ii */
/* ||H + mu I||_1; uses sv->work[n]. */
double wbi_sparse_norm1(wb_solver *sv, double mu);
/* The number of colours (groups of columns) of the difference Hessian. */
int wbi_sparse_colours(const wb_solver *sv);
/* 1: CHOLMOD chose a supernodal factor, 0 simplicial (LDL'), -1 none;
   *lnz (may be NULL) = nnz(L) predicted by the analysis. */
int wbi_sparse_supernodal(const wb_solver *sv, double *lnz);

/* ---- the damped Newton step (step_lm.c), dense, banded and sparse -------- */
/* sv->D: all ones, or (scale_damping) the running maximum of |H_ii| (first:
   restart it), floored at 1e-8 max_j D_j. */
void wbi_lm_scaling(wb_solver *sv, int first);
/* s[n] = -(H + mu D)^-1 g (g = sv->g), sv->F = chol(H + mu D); *mu raised
   (x4) until the factorization succeeds, *facts counts the attempts.
   Returns 0, or 1 when *mu reached mu_max without a positive definite
   H + mu D, or a negative wb_status (sparse: CHOLMOD failed; message set). */
int wbi_lm_step(wb_solver *sv, double *mu, double mu_max, int *facts,
                double *s);

/* ---- limited-memory BFGS (step_lbfgs.c) ----------------------------------- */
enum {
    WBI_QN_MOVED = 1,     /* a new point in sv->xt, sv->gt (out->ft)        */
    WBI_QN_SMALL,         /* the step would be below step_bound: not tried  */
    WBI_QN_RESET,         /* nothing acceptable along H_k g: pairs dropped  */
    WBI_QN_PRECISION,     /* nothing along -g, and the Newton model (CG on
                             the matrix-free operator) predicts a decrease
                             below 1e3 eps |E|                              */
    WBI_QN_FAILED,        /* nothing along -g nor along Newton steps        */
    WBI_QN_ROUNDING       /* (inside the search) a trial E cannot judge     */
};
typedef struct wbi_qn_step {
    int outcome;          /* WBI_QN_*                                       */
    int fresh;            /* the direction was -g (no pairs)                */
    int trials;           /* line-search evaluations                        */
    int stored;           /* the pair was kept in the memory                */
    double t, ft;         /* step length along d, E at the new point        */
    double snorm;         /* ||t d||_2 (SMALL: of the first trial)          */
    double pred;          /* PRECISION / FAILED: the Newton model's decrease */
} wbi_qn_step;
/* Drops every pair (the next direction is -g). */
void wbi_lbfgs_reset(wb_solver *sv);
/* One L-BFGS step from sv->x (energy f, gradient sv->g): the direction in
   sv->sd, a More-Thuente line search, the memory update. step_bound: a
   first trial shorter than this is not tried (WBI_QN_SMALL). Returns
   WB_OK (what happened in *out) or a callback's error. Uses xt, gt, g1
   (and, for its Newton steps, hs, cgw and the operator's point hx). */
wb_status wbi_lbfgs_step(wb_solver *sv, const double *w, double f,
                         double step_bound, wbi_qn_step *out);
/* One truncated-Newton step from sv->x on the matrix-free operator (the
   fallback of wbi_lbfgs_step where -g fails): WBI_QN_MOVED (sv->xt, sv->gt,
   out->ft; the pairs restart from it), WBI_QN_PRECISION or WBI_QN_FAILED. */
wb_status wbi_lbfgs_newton(wb_solver *sv, const double *w, double f,
                           wbi_qn_step *out);

/* ---- conjugate gradients (cg.c), matrix-free mode -------------------------- */
/* Steihaug-Toint: s[n] ~ argmin g's + 1/2 s'Hs, ||s|| <= Delta (g = sv->g;
   Delta <= 0: no region, a direction of non-positive curvature stops CG
   at the current s). hs[n] (may be NULL) = H s from the CG recurrence;
   *boundary = 1 when s is on the boundary or non-positive curvature was
   met; *met = 1 when the residual ||g + H s|| reached tol (recurrence). */
wb_status wbi_steihaug(wb_solver *sv, double Delta, double tol, int maxit,
                       double *s, double *hs, int *boundary, int *met,
                       int *iters);
/* The Newton step s ~ -H^-1 g by CG in the unknowns' scale (cg.c): on
   (D H D) u = -D g, s = D u, D = diag(scale), until ||residual|| <= tol_rel
   ||D g|| or maxit; hs = H s. *negc: a direction with d'(DHD)d <= 0 met (s
   is then the iterate before it). Uses cgw [4n]; scale must not be in it. */
wb_status wbi_cg_scaled(wb_solver *sv, const double *scale, double tol_rel, int maxit,
                        double *s, double *hs, int *negc, int *met, int *iters);
/* (H + lambda I) v = b by PCG; *relres = recomputed relative residual.
   WB_ESINGULAR (message set) on non-positive curvature. Restarts from the
   recomputed residual when the recurrence one meets tol and the true one
   does not; *stagnated = 1 when that stops helping (the attainable
   accuracy of H v reached) before maxit. *rq_min, *rq_max: the extreme
   Rayleigh quotients d'(H + lambda I)d / d'd of its directions. */
wb_status wbi_pcg(wb_solver *sv, double lambda, const double *b, double *v,
                  int maxit, double tol, int *iters, double *relres,
                  int *stagnated, double *rq_min, double *rq_max);
/* Negative-curvature search: CG on H s = -b from a fixed start b until a
   direction with d'Hd <= -tau d'd (returned in d[n], unit 2-norm, *q =
   d'Hd), convergence, or maxit. Returns WB_OK; *found = 0 or 1; *rq_max =
   the largest Rayleigh quotient met (a curvature scale). */
wb_status wbi_negcurv(wb_solver *sv, int maxit, double tau,
                      const double *scale, double *d, double *q, int *found,
                      double *rq_min, double *rq_max);
/* Finite-difference step fd_step * max(|z|, typ) for a coordinate of value z
   and typical size typ. */
double wbi_fd_step(const wb_settings *s, double z, double typ);
/* The typical size of unknown i for differences: |x0_i| of the solve's
   start when it is non-zero (the start tells the scale: NIST-like
   parameters of 1e-7), else 1 (a zero start says nothing). */
double wbi_typ_x(const wb_solver *sv, int i);
/* The step h of a difference of g along v at x: min(rel (1 + ||x||) /
   ||v||, n rel / max_i |v_i| / max(|x_i|, typ_i)) (0 when v = 0). */
double wbi_fd_dir_step(const wb_solver *sv, const double *x, const double *v,
                       double rel);

/* ---- BLAS-3 with explicit leading dimensions (prox.c) -------------------- */
/* C = alpha A A^T + beta C (lower triangle only), A n x k, C n x n. */
void wbi_syrk_ld(int n, int k, double alpha, const double *A, int lda,
                 double beta, double *C, int ldc);
/* C = alpha op(A) op(B) + beta C, C m x n; ta / tb: 1 = transposed. */
void wbi_gemm_ld(int ta, int tb, int m, int n, int k, double alpha,
                 const double *A, int lda, const double *B, int ldb,
                 double beta, double *C, int ldc);
/* C = alpha B S + beta C, S n x n symmetric (lower used), B, C m x n. */
void wbi_symm_right(int m, int n, double alpha, const double *S, int lds,
                    const double *B, int ldb, double beta, double *C, int ldc);
/* B := B (F F^T)^-1 in place, B m x n, F the lower factor from wbi_chol
   (leading dimension n): two triangular solves from the right. */
void wbi_chol_solve_right(int n, const double *F, int m, double *B, int ldb);
/* x[m] := L^-1 x (trans 0) or L^-T x (trans 1), L the leading m x m lower
   triangle of F with leading dimension ld. */
void wbi_trsv_lower_ld(int m, const double *F, int ld, int trans, double *x);

#endif
