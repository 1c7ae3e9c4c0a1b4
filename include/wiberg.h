/*
 * libwiberg — differentiable energy minimization in C.
 *
 * A user writes an energy E(x; w), unknowns x in R^n and learnable parameters
 * w in R^p, as callbacks. The library
 *   1. solves   x*(w) = argmin_x E(x; w)  with a trust-region (Levenberg-Marquardt
 *      damped) Newton method that copes with singular and indefinite Hessians;
 *   2. differentiates the solution with the damped ("Wibergian") implicit derivative
 *
 *        d(x*)/dw = -(H + lambda I)^-1 B,   H = d2E/dx2,  B = d/dw grad_x E  (at x*)
 *        dL/dw  = -B^T v,                 (H + lambda I) v = dL/dx*
 *
 *      lambda = 0 is the classic implicit-function derivative; lambda > 0 keeps it
 *      bounded where H is singular, ill-conditioned or indefinite.
 *
 * Conventions: every symbol is wb_ / WB_; scalars are double, sizes int, matrices
 * column-major; each pointer's length is given in a comment, e.g. [n*p]. Status
 * codes: 0 is success, positive means "finished but a tolerance was not met",
 * negative is an error. The library never prints unless asked (settings.verbose)
 * and never aborts.
 *
 * Thread safety: no global state. Distinct objects may be used from distinct
 * threads concurrently. One object (wb_solver, wb_prox, wb_trainer, a
 * wb_lsq_energy) serves one call at a time: every call that changes it takes
 * an atomic in-use flag on entry and drops it on return, and a call that
 * finds the flag taken -- the object shared by two threads, or a callback
 * calling back into the object that is running it -- does nothing and
 * returns WB_EBUSY (its sentence in wb_last_error(), since the object's own
 * message belongs to the running call). So sharing is detected and refused,
 * never a silently wrong result; to use one object from several threads,
 * serialize the calls with a lock of your own. The read-only accessors
 * (wb_solver_message, wb_prox_message, wb_trainer_message) are not guarded:
 * read them from the thread that made the call.
 *
 * Overlapping arguments: each function says which of its arrays may overlap
 * (share memory). The rule throughout: inputs may overlap each other; an
 * output may overlap an input where the function documents it (it is then
 * computed as if the input had been copied first); any other overlap is
 * refused with WB_EINVAL and a message, before anything is written.
 */
#ifndef WIBERG_H
#define WIBERG_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WB_VERSION_MAJOR 0
#define WB_VERSION_MINOR 1
#define WB_VERSION_PATCH 0
#define WB_VERSION_STRING "0.1.0"

/* Symbols exported from the shared library. */
#if defined(WB_BUILDING_LIBRARY) && defined(__GNUC__)
#define WB_API __attribute__((visibility("default")))
#else
#define WB_API
#endif

/** The library's version as a string "MAJOR.MINOR.PATCH"; never NULL. */
WB_API const char *wb_version(void);

/* ------------------------------------------------------------------------ */
/* Status                                                                    */
/* ------------------------------------------------------------------------ */

typedef enum wb_status {
    WB_OK = 0,
    WB_MAXITER = 1,     /* finished without meeting tolerances (iteration cap) */
    WB_STALLED = 2,     /* no further decrease possible before tolerances met  */
    WB_CANCELED = 3,    /* a progress callback asked to stop                   */
    WB_DONE = 4,        /* wb_trainer_step: the run has finished               */
    WB_EINVAL = -1,     /* bad argument: NULL, n <= 0, NaN setting, ...        */
    WB_ENOMEM = -2,     /* an allocation failed                                */
    WB_ECALLBACK = -3,  /* a user callback returned non-zero                   */
    WB_ENONFINITE = -4, /* NaN/Inf from a callback or in a result              */
    WB_ESINGULAR = -5,  /* (H + lambda I) not positive definite, or its
                           smallest curvature at the rounding level (see
                           settings.min_rcond and settings.curv_floor)      */
    WB_ENOTSOLVED = -6, /* derivative asked before a successful solve          */
    WB_EIO = -7,        /* a file could not be read or written                 */
    WB_EFORMAT = -8,    /* a file or data set is malformed                     */
    WB_EBUSY = -9       /* the object is in use by another call (another
                           thread, or a callback re-entering it): refused,
                           nothing done; the sentence in wb_last_error()      */
} wb_status;

/** A short, constant English description of a status; never NULL (unknown
 *  codes give "unknown status"). */
WB_API const char *wb_status_str(wb_status st);

/** The sentence behind this thread's most recent error that had no object
 *  to hold it: a call given a NULL object (wb_solve(NULL, ...)), a refused
 *  or failed wb_solver_create / wb_trainer_create / wb_prox_create /
 *  wb_lsq_energy_create, and errors of the object-free calls
 *  (wb_check_energy, wb_loss_eval). Calls on an object keep their message
 *  in that object (wb_solver_message, wb_trainer_message,
 *  wb_prox_message). Like errno, it is set only by failures, never cleared
 *  by a success; per thread; never NULL ("no error recorded on this thread"
 *  when empty). */
WB_API const char *wb_last_error(void);

/** Empties this thread's wb_last_error. */
WB_API void wb_last_error_clear(void);

/* ------------------------------------------------------------------------ */
/* The energy                                                                */
/* ------------------------------------------------------------------------ */

/**
 * E(x; w) as callbacks. Every callback returns 0 on success; any other value
 * aborts the current library call cleanly with WB_ECALLBACK. Callbacks must be
 * pure functions of (x, w): the solver calls them at trial points, in any order.
 */
typedef struct wb_energy {
    int n, p;   /* dim x (>= 1), dim w (>= 0) */
    void *user; /* passed back to every callback */
    /* required: *e = E(x;w); gx[n] = grad_x E when gx != NULL. */
    int (*value_grad)(void *user, const double *x, const double *w, double *e,
                      double *gx);
    /* optional: H[n*n] = d2E/dx2, column-major (the full symmetric matrix;
       entries more than 1e-8 max|H| from symmetric are WB_ECALLBACK).
       NULL: central finite differences of gx, symmetrized. WB_HESS_AUTO
       calls it only for n <= 256 without kd (see wb_hessian_kind). */
    int (*hess)(void *user, const double *x, const double *w, double *H);
    /* optional: out[p] = B^T v, v[n], B = d/dw grad_x E (n x p).
       NULL (and mixed NULL): central finite differences of gx in w. */
    int (*mixed_vjp)(void *user, const double *x, const double *w,
                     const double *v, double *out);
    /* optional: B[n*p] dense, column-major. Used by wb_implicit_jacobian and,
       when mixed_vjp is NULL, by the VJP. */
    int (*mixed)(void *user, const double *x, const double *w, double *B);

    /* ---- structure (optional; leave zero/NULL for a dense Hessian) ---- */
    /* Half-bandwidth of H: H_ij = 0 whenever |i - j| > kd (e.g. a temporal
       chain). kd > 0 selects banded storage and banded Cholesky: O(n kd^2)
       time, O(n kd) memory. With kd > 0 and hess_band NULL the band is
       formed by finite differences of gx, 2 (2 kd + 1) gradient calls. */
    int kd;
    /* optional, with kd > 0: the lower band of H in LAPACK band storage,
       AB[(kd+1)*n], AB[(i - j) + j*(kd+1)] = H_ij for j <= i <= min(n-1,
       j+kd); the other entries are ignored. */
    int (*hess_band)(void *user, const double *x, const double *w, double *AB);
    /* optional: Hv[n] = H v (a Hessian-vector product). WB_HESS_AUTO
       steps on it (matrix-free: a truncated-Newton trust region, Steihaug-
       Toint CG) for n <= 256 without hess, and for a band wider than 32;
       at larger n it takes L-BFGS steps and uses the products for the
       second-order test, the Newton check at a stop and CG in the implicit
       derivatives (see wb_hessian_kind). */
    int (*hvp)(void *user, const double *x, const double *w, const double *v,
               double *Hv);
    /* optional, matrix-free: d[n] = the diagonal of H: the Jacobi
       preconditioner of the implicit derivative's CG (one call per
       point) and the curvature scale of the second-order test (one call
       per stop). The solver's steps (Steihaug CG) never call it. NULL: no
       preconditioner. */
    int (*hess_diag)(void *user, const double *x, const double *w, double *d);

    /* ---- sparse Hessian (optional; factored by CHOLMOD) ---- */
    /* The pattern of H's LOWER triangle in compressed sparse columns (the
       same arrays are the upper triangle in compressed sparse rows):
       hess_nnz > 0 entries; hess_colptr[n+1] with hess_colptr[0] = 0,
       non-decreasing, hess_colptr[n] = hess_nnz; column j's rows are
       hess_rowidx[hess_colptr[j] .. hess_colptr[j+1] - 1], strictly
       increasing, each in [j, n - 1], the first one j: every diagonal
       entry is in the pattern. A pattern that breaks a rule is refused
       (WB_EINVAL) with the rule and the column in the message. Copied at
       create (the arrays may be freed after). A pattern selects
       WB_HESS_SPARSE under WB_HESS_AUTO (see wb_hessian_kind): a sparse
       Cholesky factorization (CHOLMOD, fill-reducing ordering) analysed
       once per pattern, numerically refactored per step. Leave hess_nnz
       0 and the pointers NULL for no pattern. */
    int hess_nnz;
    const int *hess_colptr; /* [n+1] */
    const int *hess_rowidx; /* [hess_nnz] */
    /* optional, with the pattern: vals[hess_nnz] = H at the pattern's
       entries, in the pattern's order (H_ij for row i of column j, lower
       triangle). NULL: coloured central differences of gx (Curtis-Powell-
       Reid): the columns are split into groups that share no row of the
       symmetric pattern (greedy distance-2 colouring) and each group costs
       2 gradient calls (7 groups for a 5-point grid stencil, whatever n). */
    int (*hess_sparse)(void *user, const double *x, const double *w,
                       double *vals);
} wb_energy;

/* How the solver stores and factors H (wb_settings.hessian). */
typedef enum wb_hessian_kind {
    WB_HESS_AUTO = 0,        /* by cost, from what the energy gives and n:
        hess_nnz > 0           sparse (a pattern says more than a band:
                               CHOLMOD's fill-reducing ordering costs no
                               more than the band and far less on grids)
        0 < kd <= 32, or       banded (hess_band, or 2(2kd+1) gradients
          kd > 32 without hvp  per band; hess is not called); with hvp a
                               wider band goes on below: its factor costs
                               n kd^2 flops, about kd/4 products
        hess, n <= 256         dense (one Hessian + n^3/3 flops an
                               iteration: cheap, exact Newton steps, a
                               factor the derivatives reuse)
        value_grad only,       dense (a difference Hessian: 2n <= 200
          n <= 100             gradients)
        hvp, n <= 256          matrix-free on its products (CG reaches
                               the Newton step within n products); hess
                               is not called
        otherwise (n > 256     L-BFGS (WB_HESS_LBFGS), hess is not called;
          without structure,   hvp, when given, serves the second-order
          or value_grad only   test, the stop's Newton check and the
          at n > 100)          derivatives: a Newton step costs a
                               gradient plus k products (a product about
                               a gradient), an L-BFGS step about one
                               gradient, and L-BFGS took fewer callback
                               calls to the benchmarks' targets at n =
                               1000 (P1 / P2 / P4 of docs/BENCHMARKS.md:
                               51 / 39 / 53 gradients against 66 / 75 /
                               111 gradients + products for Steihaug CG
                               on hvp; 66 / 88 / 98 on difference
                               products).
        wb_info.hessian reports the choice; force one with the others. */
    WB_HESS_DENSE = 1,       /* n x n, Cholesky (dpotrf)                   */
    WB_HESS_BANDED = 2,      /* (kd+1) x n band, banded Cholesky (dpbtrf)  */
    WB_HESS_MATRIX_FREE = 3, /* Hessian-vector products and CG             */
    WB_HESS_LBFGS = 4,       /* quasi-Newton: limited-memory BFGS steps with
        a More-Thuente (strong Wolfe) line search, one gradient per trial
        and no Hessian or product in the steps; for energies whose Hessian
        is dear even as products. settings.lbfgs_memory pairs (sized at
        create), settings.lbfgs_max_iter iterations. The stopping contract
        is wb_solve's: ||g||_inf <= grad_tol, then the second-order test
        on Hessian-vector products (hvp, or central differences of the
        gradient) -- so a minimizer is never claimed on the curvature
        pairs alone; the implicit derivatives are the matrix-free ones (CG
        on the same products) at the x* it found.                       */
    WB_HESS_SPARSE = 5       /* the pattern's nnz values, sparse Cholesky
                                (CHOLMOD: analysed at create, and again by
                                wb_solver_set_energy only when the pattern
                                changes; one numeric factorization per
                                trust-region step; the implicit derivative
                                reuses the factor at x*). Needs hess_nnz
                                > 0. CHOLMOD allocates inside each
                                factorization and the first solve through
                                SuiteSparse's process-wide malloc, not
                                settings.alloc (its hooks take no
                                context): the one exception to "never
                                allocates after create". Threads: a
                                simplicial factor (below 200 flops per
                                entry of L: 2-D grids up to ~400^2) runs on
                                the calling thread; a supernodal one also
                                runs CHOLMOD's OpenMP loops (4 threads,
                                compiled into Debian's CHOLMOD; bound them
                                with OMP_THREAD_LIMIT). */
} wb_hessian_kind;

/* ------------------------------------------------------------------------ */
/* Settings                                                                  */
/* ------------------------------------------------------------------------ */

/** Per-iteration report handed to settings.progress. */
typedef struct wb_progress {
    int iteration;    /* 0-based index of the iteration just finished        */
    double energy;    /* E at the current (accepted) x                       */
    double grad_norm; /* ||grad_x E||_inf at the current x                   */
    double step_norm; /* ||s||_2 of the step just tried                     */
    double mu;        /* damping used for the next step (matrix-free: the
                         trust radius; L-BFGS: the line search's step
                         length t along its direction)                       */
    int accepted;     /* 1 if the step just tried was accepted               */
} wb_progress;

typedef struct wb_settings {
    /* Inner solver iterations (each: one Hessian, >= 1 factorization).
       Default 200. Must be >= 0 (0: evaluate and test the start only). */
    int max_iter;
    /* Stop when ||grad_x E||_inf <= grad_tol (WB_OK after the second-order
       test of wb_solve's stopping contract). Default 1e-8. >= 0. */
    double grad_tol;
    /* Stop when a step s right after an accepted one satisfies ||s||_2 <=
       step_tol (||x||_2 + step_tol): WB_OK only when the undamped Newton
       step is that small too, WB_STALLED otherwise (see wb_solve).
       Default 1e-10. >= 0. */
    double step_tol;
    /* Stop (WB_OK, no second-order test) when an accepted step changes E
       by at most f_tol * |E|. Default 0 (off): a small change of E says
       little about x near a minimizer (|dx| ~ sqrt(f_tol)). >= 0. */
    double f_tol;
    /* Damping lambda of the implicit derivative, (H + lambda I). Default 0
       (the classic implicit derivative, refused with WB_ESINGULAR where H is
       not positive definite). Typical robust choice: 1e-3 .. 1e-1 times the
       scale of H. Must be >= 0 and finite. */
    double lambda;
    /* Initial damping of the solver: mu = mu0 with Marquardt scaling
       (damping mu0 * diag|H|), mu = mu0 * max_i |H_ii| without. A moderate
       first step keeps the first iterates in the starting basin; mu adapts
       after every step. Default 0.1. > 0. */
    double mu0;
    /* Scale the solver's damping by the diagonal of H (Marquardt/MINPACK
       scaling, running maximum of |H_ii|): 1 (default) or 0 (mu I). Affects
       only the path of the solver, not x* or the derivative. */
    int scale_damping;
    /* Relative step of the central finite differences used where hess or the
       mixed derivative is missing: h_i = fd_step * max(|z_i|, typ_i), where
       typ_i is |x_i| at the start of the solve when that is non-zero (the
       start tells each unknown's scale, e.g. a parameter of 1e-7) and 1
       otherwise (and for w, for the checker and for vjp_at).
       Default 6.06e-6 (cube root of machine epsilon). > 0. */
    double fd_step;
    /* The implicit derivative is refused (WB_ESINGULAR) when the reciprocal
       condition number (1-norm estimate) of H + lambda I is below min_rcond.
       Default 1e-14; 0 disables the check. */
    double min_rcond;
    /* The implicit derivative is also refused (WB_ESINGULAR) when the
       smallest curvature of H + lambda I is at the rounding level of the
       energy, an absolute test that a uniformly tiny H cannot pass by
       scale (min_rcond is relative):
         sigma <= curv_floor * eps_H * kappa,
         sigma   = 1 / est ||(H + lambda I)^-1||_1 (LAPACK's condition
                   estimate; within sqrt(n) of the smallest eigenvalue);
                   matrix-free: the smallest Rayleigh quotient
                   d'(H + lambda I)d / d'd of the CG directions,
         kappa   = max(2 |E(x*)| / t^2, max_i |H_ii|),  t = max(1,
                   ||x*||_inf): the curvature that changes E by its own
                   size over the variables' typical size t (a curvature
                   below eps_H kappa moves E by less than its rounding
                   over t, so x* is not determined by E along it),
         eps_H   = machine epsilon for H from hess / hess_band / hvp;
                   eps / fd_step + fd_step^2 (7.3e-11 by default: the
                   rounding plus truncation floor of central differences)
                   for a difference Hessian.
       sigma, the floor and kappa are reported in wb_deriv_info. A real
       curvature of any size passes when E is scaled with it (E = c/2 x'x
       has kappa ~ c); a large additive constant in E raises kappa (0
       disables the test). Default 32 (accepted derivatives then carry at
       most ~1/32 relative error from H's rounding when kappa measures the
       size of E's terms). >= 0 and finite. */
    double curv_floor;
    /* Storage of H: WB_HESS_AUTO (default) picks from what the energy
       gives; the others force a kind (banded needs kd > 0; matrix-free uses
       hvp, or differences of gx when hvp is NULL: forward, one gradient
       per product, h = sqrt(eps) (1 + ||x||) / ||v||, in the steps'
       CG; central, h = fd_step (1 + ||x||) / ||v||, in the second-order
       test, the Newton check and the implicit derivative; either h
       capped so that no unknown moves by more than n times sqrt(eps) or
       fd_step of its own scale max(|x_i|, typ_i) (typ_i: see fd_step):
       unknowns of sizes 1e-7 and 1 side by side each move by a step of
       their size; WB_HESS_LBFGS takes its steps
       from gradients alone and uses those central products, or hvp, in
       its second-order test, its step-tol Newton check and the implicit
       derivative). */
    wb_hessian_kind hessian;
    /* Matrix-free only: iteration cap of each conjugate-gradient solve.
       Default 0 = min(n, 500) for a trust-region step, 2n + 10 for the
       implicit derivative's solve (CG needs more than n steps in floating
       point on ill-conditioned systems). >= 0. */
    int cg_max_iter;
    /* Matrix-free only: relative residual ||(H + lambda I) v - b|| / ||b||
       at which the implicit derivative's CG stops (judged on the residual
       recomputed from v, not CG's recurrence). Default 1e-10. In (0, 1).
       After a wb_solve the CG stops at max(cg_tol, min(1e-2, ||g(x*)||_2 /
       ||H(x*) x*||_2)), the accuracy the solve reached (x*'s relative error
       in the norm ||H .|| of the residual; whatever the start, so that a
       solve warm-started next to x* does not loosen it): a loose solve
       gets an adjoint to match, not products spent on digits x* lacks
       (one product H x* per solve).
       Not met, the result is returned, never silently, with WB_MAXITER
       when cg_max_iter ran out, or WB_STALLED when CG stagnated (the
       recurrence residual fell below cg_tol but the recomputed one stays
       above it after restarts: the accuracy of H v, e.g. a difference
       product, limits what CG can attain; wb_deriv_info.cg_residual). */
    double cg_tol;
    /* Matrix-free only: initial trust-region radius, relative:
       Delta0 = tr_radius0 * max(1, ||x0||_2). Default 1. > 0. (L-BFGS:
       the length of the first line search's first trial step.) */
    double tr_radius0;
    /* WB_HESS_LBFGS only: the pairs (s, y) of steps and gradient changes
       the quasi-Newton matrix is built from; memory 2 lbfgs_memory n
       doubles, allocated at create (by an L-BFGS solver only). Default 8
       (libLBFGS: 6; more pairs, fewer iterations at 4 lbfgs_memory n flops each).
       In [1, 1000]. */
    int lbfgs_memory;
    /* WB_HESS_LBFGS only: iteration cap (one direction and one line
       search each, ~1.1 gradients on average), in place of max_iter.
       Default 0 = 10 max_iter (2000 by default: an L-BFGS iteration
       gains much less than a Newton one). >= 0. */
    int lbfgs_max_iter;
    /* 0: silent (default). 1: one line per iteration on stderr. */
    int verbose;
    /* Optional: called after every iteration; a non-zero return stops the
       solve with WB_CANCELED (x is the best point found). Default NULL. */
    int (*progress)(void *user, const wb_progress *pr);
    void *progress_user;
    /* Optional allocator hooks, used for every allocation the library makes
       for this object (both or neither). Default NULL: malloc/free. */
    void *(*alloc)(void *ctx, size_t size);
    void (*dealloc)(void *ctx, void *ptr);
    void *alloc_ctx;
} wb_settings;

/** Fills every field with its default (the defaults live here and nowhere
 *  else). NULL-safe. */
WB_API void wb_settings_default(wb_settings *s);

/* ------------------------------------------------------------------------ */
/* Solving                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * The stopping contract of wb_solve. WB_OK means one of
 *   WB_STOP_GRAD       ||g||_inf <= grad_tol, and the second-order test
 *                      below passed;
 *   WB_STOP_STEP       a step right after an accepted one is below
 *                      step_tol (||x||_2 + step_tol), the second-order
 *                      test passed and, where H(x) is positive definite,
 *                      the undamped Newton step ||H^-1 g||_2
 *                      (matrix-free: CG on H s = -g with no trust region
 *                      to relative residual 1e-6, meeting no curvature
 *                      <= 0; a loose truncated-Newton step says nothing)
 *                      is below the same bound: x is
 *                      within step_tol (relative) of the minimizer of its
 *                      local quadratic model; |g| may exceed grad_tol;
 *   WB_STOP_PRECISION  a fresh step predicts a decrease of E below its
 *                      rounding (32 eps |E|, or 1e3 eps |E| once steps are
 *                      rejected) and does not reduce ||g||: converged to
 *                      working precision (|g| may exceed grad_tol); the
 *                      second-order test passed;
 *   WB_STOP_F          (only when f_tol > 0) an accepted step changed E by
 *                      at most f_tol |E|: a first-order stop the user asked
 *                      for, not tested further.
 * Matrix-free and L-BFGS: a WB_STOP_STEP or WB_STOP_PRECISION stop is
 * WB_OK only when the Newton check passes, whatever the second-order test
 * said: CG on H s = -g as above (hvp, or central difference products)
 * meets no curvature <= 0 and reaches s_N with ||s_N||_2 below the
 * step_tol bound or a model decrease -(g's_N + 1/2 s_N'Hs_N) below
 * 1e3 eps |E|; and H is not singular to rounding in the unknowns' own
 * units (CG on D H D, D = diag(max(|x_i|, typ_i)), meets no curvature
 * <= 0 and no Rayleigh quotient below 32 eps times its largest): at a
 * singular H a tiny Newton step proves nothing, E can still fall at
 * higher order (two terms of a fit merged into one). A failed check is
 * handled as a step_tol stop that is not Newton-sized (below), after the
 * check's Newton step is tried (matrix-free: x + t s_N, t = 1, 1/4, ...;
 * L-BFGS: a truncated-Newton step in shrinking regions, then its pairs
 * are dropped; a try that lowers E by more than 32 eps |E| does not count
 * against the 3), then WB_STALLED with the reason the stop was made for
 * (WB_STOP_STEP or WB_STOP_PRECISION) and the check's figures in the
 * message -- never WB_OK.
 * A step_tol stop that is not a Newton-sized step (damping, not the model,
 * made the step small) drops the damping (mu -> min(mu, 1e-6), times
 * max|H_ii| without scale_damping; matrix-free: the radius is quadrupled
 * and the steps' CG runs to relative residual 1e-6 from then on)
 * and goes on iterating, at most 3 times in a solve; the next such stop is
 * WB_STALLED with reason WB_STOP_STEP.
 *
 * The second-order test: at a stationary point the solver forms H(x)
 * (dense/banded: Cholesky of H with no damping, whose failed pivot gives
 * the More-Sorensen direction; matrix-free, or when that direction's
 * curvature is at the rounding level: CG on H from a fixed start vector,
 * whose pivots d'Hd turn negative once its Lanczos matrix has a negative
 * eigenvalue). It costs one Hessian (2n gradient calls by differences) and
 * one factorization per solve; the implicit derivative reuses both (the
 * factor when lambda = 0). A direction u of curvature
 * u'Hu/u'u below minus the curvature floor of settings.curv_floor
 * (computed with curv_floor 32 if it is 0) proves x is a saddle or a
 * maximum: the solver steps along +-u (the descent sign), from the trust
 * radius (dense: tr_radius0 max(1, ||x||)) halved until E decreases by
 * more than its rounding, 32 eps |E| (a decrease at the rounding level
 * proves nothing, and taken it could repeat at the same E),
 * counts it in wb_info.escapes, and goes on iterating (an escape counts
 * as an iteration; with no iteration left the solve is WB_MAXITER at that
 * point, never WB_OK). When no decrease is found along u, x is returned
 * as a minimizer to working precision (wb_info.second_order = 2).
 * A point whose curvature is at the rounding level but not negative (an
 * inflection point) passes: its derivative is refused by curv_floor.
 */

/* Why the solver stopped (wb_info.reason). */
typedef enum wb_stop_reason {
    WB_STOP_NONE = 0,
    WB_STOP_GRAD = 1,   /* ||g||_inf <= grad_tol                          */
    WB_STOP_STEP = 2,   /* step below step_tol (WB_OK or WB_STALLED)      */
    WB_STOP_F = 3,      /* relative decrease <= f_tol                     */
    WB_STOP_MAXITER = 4,
    WB_STOP_STALLED = 5,
    WB_STOP_CANCELED = 6,
    WB_STOP_ERROR = 7,
    WB_STOP_PRECISION = 8 /* converged to working precision (see above)   */
} wb_stop_reason;

typedef struct wb_info {
    wb_status status;
    int iterations;       /* iterations performed                          */
    int evaluations;      /* value_grad calls, finite differences included */
    int hess_evaluations; /* Hessians formed (exact or by differences)     */
    int factorizations;   /* Cholesky factorizations attempted             */
    double energy;        /* E at the returned x                           */
    double grad_norm;     /* ||grad_x E||_inf at the returned x            */
    double step_norm;     /* ||s||_2 of the last step tried                */
    double mu;            /* final damping of the solver (matrix-free: the
                             trust radius; L-BFGS: the last step length)  */
    wb_stop_reason reason;
    int hess_approx;      /* 1: Hessian by finite differences              */
    int mixed_approx;     /* 1: mixed derivative B by finite differences   */
    wb_hessian_kind hessian; /* the storage used (never WB_HESS_AUTO)       */
    int cg_iterations;    /* matrix-free: CG iterations in all the steps   */
    int escapes;          /* steps taken along negative curvature from a
                             stationary point that was not a minimizer    */
    int second_order;     /* with WB_OK, the second-order test at the
                             returned x: 0 not made (WB_STOP_F); 1 H
                             positive definite (Cholesky; matrix-free: CG
                             on H found no curvature below -floor); 2 H
                             not positive definite, but no curvature
                             below -floor found (flat to rounding), or E
                             does not fall along the one found: a
                             degenerate minimizer to working precision.
                             0 for any other status                       */
    double curvature;     /* with second_order 2: u'Hu/u'u of the
                             negative direction found (0: none found)     */
} wb_info;

typedef struct wb_solver wb_solver; /* opaque */

/** Validates e and s (s NULL: defaults), copies them, and allocates every
 *  buffer the solver and the implicit derivatives will need (and the
 *  solver's in-use flag: see "Thread safety" above). On failure
 *  *out = NULL and the status says why (WB_EINVAL, WB_ENOMEM); the sentence
 *  is in wb_last_error() (and wb_solver_explain gives it again on demand,
 *  from any thread). Requirements: n >= 1,
 *  p >= 0, value_grad given, 0 <= kd < n, a sparse pattern (hess_nnz > 0)
 *  that keeps its rules, every setting in its range. */
WB_API wb_status wb_solver_create(wb_solver **out, const wb_energy *e,
                           const wb_settings *s);

/** Frees everything. NULL-safe. */
WB_API void wb_solver_destroy(wb_solver *sv);

/** Runs wb_solver_create's checks on e and s (s NULL: defaults) without
 *  creating anything and writes why they fail (or "ok") into msg[len]:
 *  what to call when wb_solver_create returned WB_EINVAL. */
WB_API wb_status wb_solver_explain(const wb_energy *e, const wb_settings *s,
                                   char *msg, size_t len);

/** Minimizes E(.; w) from x. x[n]: in = start, out = the minimizer (on any
 *  failure after the start was evaluated: the best point found). w[p] (may be
 *  NULL when p == 0). info may be NULL. Never allocates. WB_OK only as
 *  the stopping contract above says (a stationary point that is not a
 *  minimizer is left along negative curvature, never returned as WB_OK).
 *  Overlaps: w and x may share memory (even wb_solve(sv, buf, buf, ...)):
 *  the solve runs on a copy of w taken before x is written, and the last
 *  solve's w (for the derivatives) is that copy. info may not overlap x or
 *  w: WB_EINVAL before anything is written. WB_EBUSY when the solver is in
 *  use by another call (info->status says so, x is untouched). */
WB_API wb_status wb_solve(wb_solver *sv, const double *w, double *x, wb_info *info);

/** The solver's message about its last call (error or stopping reason);
 *  never NULL: "" before any call, "no solver" for sv == NULL. */
WB_API const char *wb_solver_message(const wb_solver *sv);

/** Rebinds the solver to another energy with e->n <= the n it was created
 *  for and the same p (e.g. the next example of a data set), without
 *  allocating (WB_HESS_SPARSE: the same pattern keeps its analysis; another
 *  one with hess_nnz <= the created one's is copied and analysed anew,
 *  which CHOLMOD allocates for). The energy must resolve to the solver's
 *  Hessian kind (else WB_EINVAL), except that under WB_HESS_AUTO a solver
 *  created for L-BFGS takes an energy AUTO would solve matrix-free (hvp,
 *  n <= 256, no kd) and keeps its L-BFGS steps. Forgets the last solve.
 *  WB_EBUSY while the solver is in use by another call. */
WB_API wb_status wb_solver_set_energy(wb_solver *sv, const wb_energy *e);

/** Changes the implicit-derivative damping lambda (>= 0, finite) without
 *  re-creating the solver. WB_EBUSY while the solver is in use. */
WB_API wb_status wb_solver_set_lambda(wb_solver *sv, double lambda);

/* ------------------------------------------------------------------------ */
/* Implicit derivatives                                                      */
/* ------------------------------------------------------------------------ */

/*
 * All three use (H + lambda I) at (x*, w) with lambda = settings.lambda.
 * The factorization is cached: calls at the same point and lambda share one
 * Cholesky factor (and reuse the solver's own factor when its final damping
 * equals lambda at x*). They never allocate.
 *
 * Return: WB_OK; or the last solve's positive status (WB_MAXITER,
 * WB_STALLED, WB_CANCELED) when x* had not met a tolerance -- the outputs are
 * then filled, but they are the derivative at a non-stationary point;
 * WB_ENOTSOLVED before any solve or after a failed one; WB_ESINGULAR when
 * H + lambda I is not positive definite, below settings.min_rcond, or its
 * smallest curvature is at the rounding level (settings.curv_floor);
 * WB_ECALLBACK / WB_ENONFINITE from callbacks or results; WB_EBUSY when the
 * solver is in use by another call. On an error the outputs are left
 * untouched.
 *
 * Overlaps: the output may share memory with any input (dl_dw with dl_dx;
 * in wb_implicit_vjp_at also with x or w); the inputs are read in full
 * before the output is written, so the result is that of separate buffers.
 */

/** dl_dw[p] = -B^T v, (H + lambda I) v = dl_dx[n]. */
WB_API wb_status wb_implicit_vjp(wb_solver *sv, const double *dl_dx, double *dl_dw);

/** dx_dw[n*p] = -(H + lambda I)^-1 B, column-major. */
WB_API wb_status wb_implicit_jacobian(wb_solver *sv, double *dx_dw);

/** The VJP at a point (x[n], w[p]) found by the caller's own solver. Does
 *  not need a previous wb_solve. The gradient norm at x is reported in
 *  wb_deriv_info.grad_norm (a large one means x is not a minimizer). */
WB_API wb_status wb_implicit_vjp_at(wb_solver *sv, const double *w, const double *x,
                             const double *dl_dx, double *dl_dw);

/** What the last implicit call did. */
typedef struct wb_deriv_info {
    wb_status status;  /* its return value                                */
    int x_converged;   /* 1: x* met a solver tolerance                    */
    int reused_factor; /* 1: no new factorization was needed              */
    int hess_approx;   /* 1: H by finite differences                      */
    int mixed_approx;  /* 1: B by finite differences                      */
    double lambda;     /* damping used                                    */
    double rcond;      /* reciprocal condition estimate of H + lambda I
                          (-1: not estimated, matrix-free)                */
    double grad_norm;  /* ||grad_x E||_inf at the point                   */
    int cg_iterations; /* matrix-free: CG iterations of the last solve    */
    double cg_residual;/* matrix-free: its final relative residual        */
    /* the curvature test of settings.curv_floor (0 when not reached): */
    double min_curvature;   /* sigma, the smallest curvature estimate     */
    double curvature_floor; /* curv_floor * eps_H * kappa                 */
    double curvature_scale; /* kappa                                      */
    /* The accuracy of x* and what it costs the derivative (0 when not
       computed: an error before the curvature test):
       x_error = ||g(x)||_2 / sigma_H, sigma_H = sigma - lambda (the
       smallest curvature of H itself): an estimate of ||x - x*||_2, a
       bound where E is strongly convex between x and x* with modulus
       at least sigma_H (||g(x)|| >= sigma_H ||x - x*||). Matrix-free and
       L-BFGS, sigma is the smallest Rayleigh quotient CG met, at or
       above H's smallest eigenvalue, so x_error may read low (by 1.2x
       on test_lbfgs's quadratic). The derivative is that of x, not x*: its
       error is first order in x_error (exact where E is quadratic), so
       a solve stopped early (L-BFGS to a loose grad_tol) shows here.
       Infinite when sigma_H <= 0 (lambda > 0 on an indefinite H). */
    double x_error;
    /* Matrix-free: a bound on the relative error of the adjoint v from the
       CG residual alone, ||v - v_exact|| / ||v|| <= kappa_CG r,
       kappa_CG = the largest over the smallest Rayleigh quotient met,
       r = cg_residual. Factored (dense, banded): 0 (rounding only: about
       eps / rcond). */
    double adjoint_error;
} wb_deriv_info;

/** Copies the report of the last implicit call. NULL-safe (no-op). While
 *  another call holds the solver: *out zeroed with status WB_EBUSY. */
WB_API void wb_solver_deriv_info(const wb_solver *sv, wb_deriv_info *out);

/* ------------------------------------------------------------------------ */
/* Derivative checker                                                        */
/* ------------------------------------------------------------------------ */

typedef struct wb_check_report {
    /* Worst relative error |a - fd| / max(|fd|, 1e-6 max_k |fd_k|, 1e6 r)
       of each callback against central differences; -1 when the callback
       is absent. r is the rounding error of the difference itself, 8 eps
       (|u(z+h)| + |u(z-h)|) / 2h for values u: entries the difference cannot
       resolve to 1e-6 (a gradient at a minimizer, ~0) are judged against
       that level, so a correct callback reads below ~1e-6 there too. */
    double value_grad_err; /* gx vs differences of e                 */
    double hess_err;       /* hess vs differences of gx              */
    double mixed_vjp_err;  /* mixed_vjp vs differences of gx in w    */
    double mixed_err;      /* mixed vs differences of gx in w        */
    int value_grad_worst;  /* index of the worst entry (-1: none)    */
    int hess_worst;        /* column-major index                     */
    int mixed_vjp_worst;
    int mixed_worst;
    /* the structured forms, against the same difference Hessian: */
    double hess_band_err;  /* hess_band (band entries, kd > 0)      */
    double hvp_err;        /* hvp for a fixed sign-varying v         */
    double hess_diag_err;  /* hess_diag vs the diagonal              */
    int hess_band_worst;   /* column-major index into the n x n H    */
    int hvp_worst;
    int hess_diag_worst;
    /* the sparse pattern (hess_nnz > 0) over H's lower triangle: entries
       in it hold hess_sparse's values (judged only when hess_sparse is
       given), entries outside it 0, so a pattern that misses a non-zero of
       H reads as a large error; -1 without a pattern */
    double hess_sparse_err;
    int hess_sparse_worst; /* column-major index into the n x n H    */
} wb_check_report;

/** Compares the energy's callbacks at (x[n], w[p]) against central
 *  differences (step settings.fd_step relative; s NULL: defaults). A correct
 *  energy typically shows errors below 1e-6 (differences lose accuracy on
 *  entries much smaller than the largest, and at large |x|, where the step
 *  is fd_step |x|). It forms the dense n x n difference Hessian when any
 *  second-order callback or a sparse pattern is given: a tool for moderate
 *  n, not a hot path (it allocates). An error's sentence is in wb_last_error().
 *  Every output buffer handed to a callback is pre-filled with a
 *  signalling-NaN pattern: a callback that leaves entries unwritten (which
 *  the solver would read as whatever memory held) is WB_ECALLBACK, and
 *  wb_last_error names the first such entry and the count ("hess left
 *  entry (2,1) of H unwritten (2 of its 9 entries ...)"); NaN/Inf written by
 *  a callback is WB_ENONFINITE.
 *  Overlaps: rep may not share memory with x, w or *e (WB_EINVAL); x and w
 *  may overlap each other. */
WB_API wb_status wb_check_energy(const wb_energy *e, const wb_settings *s,
                          const double *x, const double *w,
                          wb_check_report *rep);

/** Compares wb_implicit_jacobian at (x*(w), w) against central differences
 *  of x*(w), re-solving from x*(w) at w +- h e_j (h = 1e-5 max(|w_j|, 1)),
 *  with lambda forced to 0 (the exact derivative). *max_rel_err = the worst
 *  |J - J_fd| / max(max|J_fd|, 1e-12) over all entries. Every solve uses
 *  the check's own tolerances, whatever the solver's settings: grad_tol =
 *  min(settings.grad_tol, 1e-9 ||grad_x E|| at the solve's start), step_tol
 *  and f_tol 0 (a solve that then ends on WB_MAXITER or WB_STALLED counts
 *  as converged to working precision); so a correct derivative reads ~1e-9
 *  at default settings. Leaves the solver at the solve at w (re-solved
 *  with its own settings, which are restored). Holds the solver for the whole check
 *  (WB_EBUSY for other calls meanwhile). Overlaps: max_rel_err is written
 *  last and may share memory with w or x0. */
WB_API wb_status wb_check_implicit(wb_solver *sv, const double *w, const double *x0,
                            double *max_rel_err);

/* ------------------------------------------------------------------------ */
/* Least-squares energies                                                    */
/* ------------------------------------------------------------------------ */

/*
 * E(x; w) = 1/2 sum_i c_i rho(||r_i(x; w)||^2),   r_i in R^dim, i < m,
 * built from residuals and their Jacobians, with a robust loss rho of scale
 * a (Ceres' conventions: rho(s) ~ s for s << a^2) and term weights c_i.
 *
 *   gradient   sum_i c_i rho'(s_i) J_i' r_i                    (exact)
 *   Hessian    Gauss-Newton: sum_i c_i J_i' (rho' I + 2 rho'' r_i r_i') J_i
 *   B          Gauss-Newton: sum_i c_i J_i' (rho' I + 2 rho'' r_i r_i') Jw_i
 *
 * (J = dr/dx, Jw = dr/dw.) The Gauss-Newton forms drop the terms with second
 * derivatives of r, sum c rho' r_ic d2 r_ic, which vanish only where the
 * residuals do: at a non-zero-residual minimizer the Gauss-Newton implicit
 * derivative is an APPROXIMATION (its error grows with the residual and the
 * curvature of r). WB_LSQ_EXACT forms H and B by central differences of the
 * exact gradient instead, so the derivative is exact up to differencing.
 */
typedef enum wb_loss {
    WB_LOSS_TRIVIAL = 0, /* rho(s) = s                                     */
    WB_LOSS_HUBER = 1,   /* s <= a^2: s;  else 2 a sqrt(s) - a^2           */
    WB_LOSS_SOFT_L1 = 2, /* 2 a^2 (sqrt(1 + s/a^2) - 1)                    */
    WB_LOSS_CAUCHY = 3,  /* a^2 log(1 + s/a^2)                             */
    WB_LOSS_TUKEY = 4    /* s <= a^2: a^2/3 (1 - (1 - s/a^2)^3); else a^2/3 */
} wb_loss;

typedef enum wb_lsq_hessian {
    WB_LSQ_GAUSS_NEWTON = 0, /* J'WJ and J'W Jw: fast, approximate where
                                residuals are non-zero                     */
    WB_LSQ_EXACT = 1         /* differences of the exact gradient          */
} wb_lsq_hessian;

typedef struct wb_lsq {
    int n, p;     /* dim x (>= 1), dim w (>= 0)                          */
    int m;        /* residual terms (>= 1)                               */
    int dim;      /* components of each term's residual (>= 1): M = m*dim */
    void *user;
    /* required: r[M] = residuals at (x, w); when J != NULL also the
       Jacobian dr/dx: dense, J[M*n] column-major (nnz == 0), or the values
       of the sparse pattern below, J[nnz] (nnz > 0). 0 = ok. */
    int (*residual)(void *user, const double *x, const double *w, double *r,
                    double *J);
    /* optional: Jw[M*p] = dr/dw, dense column-major. NULL: differences. */
    int (*residual_w)(void *user, const double *x, const double *w,
                      double *Jw);
    /* optional sparse Jacobian (compressed sparse rows, fixed pattern):
       nnz > 0 entries; row_ptr[M+1], col_idx[nnz] (copied at create). A
       sparse problem is solved matrix-free (H v = J'W J v), or banded when
       kd > 0. */
    int nnz;
    const int *row_ptr, *col_idx;
    int kd;                 /* > 0: H is banded with this half-bandwidth  */
    wb_loss loss;           /* default (0) WB_LOSS_TRIVIAL                */
    double loss_scale;      /* a > 0 (ignored for TRIVIAL); 0 = 1         */
    const double *weights;  /* [m] c_i >= 0, or NULL (all 1); copied      */
    wb_lsq_hessian hessian; /* default (0) WB_LSQ_GAUSS_NEWTON            */
} wb_lsq;

typedef struct wb_lsq_energy wb_lsq_energy; /* opaque: buffers + copies */

/** Builds *e, a wb_energy for the least-squares problem ls, backed by the
 *  buffers of *out (one per solver: not shared between threads). Destroy
 *  *out after the solvers that use *e. On failure *out = NULL and
 *  wb_last_error() says which field is wrong. Overlaps: out, ls and e may
 *  not share memory (WB_EINVAL; *out is left alone when it lies inside ls
 *  or e). The energy's callbacks hold an in-use flag of *out: two solvers
 *  calling into one wb_lsq_energy at the same time get a failing callback
 *  (the solve returns WB_ECALLBACK, "... returned -9", and wb_last_error
 *  says the energy was in use), never residuals of the other solve. */
WB_API wb_status wb_lsq_energy_create(wb_lsq_energy **out, const wb_lsq *ls,
                                      wb_energy *e);
WB_API void wb_lsq_energy_destroy(wb_lsq_energy *le);

/** rho(s), rho'(s), rho''(s) of a loss at scale a > 0, s >= 0 (any output
 *  may be NULL; two outputs sharing memory are WB_EINVAL); WB_EINVAL (and
 *  wb_last_error()) otherwise. */
WB_API wb_status wb_loss_eval(wb_loss loss, double a, double s, double *rho,
                              double *drho, double *d2rho);

/* ------------------------------------------------------------------------ */
/* Training: learn w from examples                                           */
/* ------------------------------------------------------------------------ */

/*
 * A data set is a count plus callbacks; the library never owns the data.
 * Example i has its own energy E_i(x; w) (its data bound through the energy's
 * user pointer), a start x0_i and a loss L_i(x) of the minimizer. Training
 * minimizes  sum_i L_i(x*_i(w))  over w by stochastic gradient steps, each
 * gradient from one inner solve and one implicit adjoint per example.
 *
 * The callbacks of a data set may be called concurrently for different i
 * (the trainer runs a batch's examples on several threads): they must not
 * share mutable state between examples.
 *
 * One call at a time: every call on a trainer (all but wb_trainer_destroy
 * and wb_trainer_message) holds it while it runs. A call that finds it held
 * -- by another thread's call, or by the running call itself when a
 * callback calls back into its trainer -- returns WB_EBUSY at once, changes
 * nothing, and leaves its sentence in wb_last_error() (the trainer's own
 * message belongs to the running call). wb_trainer_destroy and
 * wb_trainer_message must not overlap a running call. Different trainers
 * may be used from different threads at once.
 *
 * Overlapping arguments: a call reads (and copies) its inputs before it
 * writes an output. wb_trainer_create may be given an out that lies on w0
 * or the settings; wb_trainer_evaluate copies w first, so w may lie inside
 * per_example; outputs that overlap one another are refused with WB_EINVAL
 * (wb_trainer_evaluate's mean_loss, failed and per_example;
 * wb_trainer_best_w's best_val_loss inside w). wb_trainer_explain writes
 * buf after it has read everything else.
 */
typedef struct wb_dataset {
    int count; /* number of examples (>= 1) */
    void *user;
    /* required: *e = the energy of example i. e->p must be the same for all
       examples; e->n may differ. The energy's callbacks are called only while
       example i is being processed. */
    int (*energy)(void *user, int i, wb_energy *e);
    /* required: x0[n_i] = where the first solve of example i starts. Later
       solves warm-start from the example's last minimizer (see
       wb_train_settings.warm_start). */
    int (*start)(void *user, int i, double *x0);
    /* required: *l = L_i(x), x[n_i]; dl_dx[n_i] = dL_i/dx when dl_dx != NULL */
    int (*loss)(void *user, int i, const double *x, double *l, double *dl_dx);
} wb_dataset;

typedef enum wb_optimizer {
    WB_OPT_SGD = 0,      /* w -= lr g                                        */
    WB_OPT_MOMENTUM = 1, /* heavy ball: m = momentum m + g; w -= lr m         */
    WB_OPT_ADAM = 2      /* Kingma & Ba, bias-corrected                      */
} wb_optimizer;

typedef enum wb_lr_schedule {
    WB_LR_CONSTANT = 0,
    WB_LR_STEP = 1,   /* lr * lr_decay^(floor(step / lr_step_every))        */
    WB_LR_COSINE = 2  /* lr_min + (lr - lr_min)(1 + cos(pi step/steps)) / 2 */
} wb_lr_schedule;

typedef enum wb_backward {
    WB_BACKWARD_IMPLICIT = 0, /* one damped adjoint solve per example       */
    WB_BACKWARD_FINITE_DIFF = 1 /* central differences of L_i in w: 2p inner
                                   solves per example. Slow; a reference and
                                   a baseline, not for production.          */
} wb_backward;

typedef struct wb_train_settings {
    wb_settings solver;       /* inner solver; solver.lambda damps the
                                 implicit derivative. Default: wb_settings_
                                 default with lambda = 1e-3.                 */
    wb_optimizer optimizer;   /* default WB_OPT_ADAM                         */
    double lr;                /* learning rate, > 0. Default 1e-2            */
    double momentum;          /* WB_OPT_MOMENTUM, in [0, 1). Default 0.9     */
    double beta1, beta2, eps; /* Adam. Defaults 0.9, 0.999, 1e-8             */
    wb_lr_schedule schedule;  /* default WB_LR_CONSTANT                      */
    int lr_step_every;        /* WB_LR_STEP: steps between decays. Def. 100  */
    double lr_decay;          /* WB_LR_STEP factor in (0, 1]. Default 0.5    */
    double lr_min;            /* WB_LR_COSINE floor, >= 0. Default 0         */
    int batch_size;           /* examples per step, >= 1 (capped at count).
                                 Default 8                                  */
    int epochs;               /* passes over the data, >= 1. Default 10.
                                 Steps = epochs * ceil(count / batch_size)   */
    unsigned long long seed;  /* shuffling; the run is a function of it.
                                 Default 1                                  */
    int shuffle;              /* 1: reshuffle every epoch (default); 0: fixed
                                 order                                      */
    const double *lower;      /* [p] projection bounds on w, or NULL (none);
                                 copied at create. -INFINITY allowed        */
    const double *upper;      /* [p] or NULL. +INFINITY allowed             */
    int threads;              /* threads that run a batch's (and an
                                 evaluation's) examples, the calling thread
                                 included: threads - 1 POSIX threads of the
                                 trainer's own, started at create, ended at
                                 destroy, asleep while they wait (they take
                                 no CPU between steps or while another
                                 thread finishes a batch). 0 = the value of
                                 OMP_NUM_THREADS when that is a positive
                                 integer, else the CPUs this thread may run
                                 on (its affinity mask: taskset, cpusets),
                                 read at create. Results are bit-identical
                                 for any value. In a child of fork the
                                 trainer runs on the calling thread only.
                                 Default 0                                  */
    int warm_start;           /* 1 (default): each solve starts at the
                                 example's last minimizer; 0: always at x0   */
    wb_backward backward;     /* default WB_BACKWARD_IMPLICIT                */
    double fd_step;           /* WB_BACKWARD_FINITE_DIFF: h = fd_step *
                                 max(|w_j|, 1). Default 1e-5                */
    const wb_dataset *validation; /* optional held-out set, evaluated every
                                 validate_every steps and at the end; the best
                                 w is kept (wb_trainer_best_w). Default NULL */
    int validate_every;       /* steps; 0 = once per epoch (default)         */
    const char *checkpoint_path; /* optional: written atomically every
                                 checkpoint_every steps and at the end      */
    int checkpoint_every;     /* steps; 0 = once per epoch (default)         */
    int verbose;              /* 1: one line per epoch on stderr (loss,
                                 validation loss, examples/s, skipped).
                                 Default 0                                  */
} wb_train_settings;

/** Fills every field with its default. NULL-safe. */
WB_API void wb_train_settings_default(wb_train_settings *s);

typedef struct wb_train_info {
    long long step;           /* steps taken                                 */
    int epoch;                /* current epoch (0-based)                     */
    long long total_steps;    /* steps the run will take                     */
    double loss;              /* mean loss of the last step's used examples  */
    double grad_norm;         /* ||dL/dw||_2 of the last step                */
    double lr;                /* learning rate of the last step              */
    int used;                 /* examples of the last step that counted      */
    int skipped;              /* examples of the last step skipped (failed
                                 solve or derivative)                       */
    long long skipped_total;  /* all skipped so far                          */
    long long empty_steps;    /* steps whose examples were all skipped (w did
                                 not move; the step still returns WB_OK and
                                 counts): a run where empty_steps == step
                                 learned nothing                            */
    long long inner_solves;   /* wb_solve calls so far (training + validation)*/
    double epoch_loss;        /* mean training loss of the last full epoch   */
    double val_loss;          /* last validation loss (NAN: none yet)        */
    double best_val_loss;     /* best validation loss (NAN: none yet)        */
    long long best_step;      /* step at which the best w was seen (-1)      */
    double seconds;           /* wall time spent stepping                     */
    double examples_per_s;    /* training examples per second                */
} wb_train_info;

typedef struct wb_trainer wb_trainer; /* opaque */

/** Creates a trainer for data set d starting from w0[p]. Calls d->energy
 *  for every example (of d and of the validation set) to check and learn
 *  the sizes, validates the settings, and allocates everything (solvers per
 *  thread, warm starts, optimizer state). On failure *out = NULL and the
 *  reason is in wb_last_error() (wb_trainer_explain gives it on demand).
 *  s may be NULL (defaults). */
WB_API wb_status wb_trainer_create(wb_trainer **out, const wb_dataset *d,
                                   const double *w0,
                                   const wb_train_settings *s);

/** Says in buf[len] (any len; buf may be NULL) why wb_trainer_create would
 *  refuse these arguments, or that it accepts them, and returns the status
 *  it would return (allocation aside: it allocates nothing). Calls the data
 *  sets' energy callbacks as wb_trainer_create does. */
WB_API wb_status wb_trainer_explain(const wb_dataset *d, const double *w0,
                                    const wb_train_settings *s, char *buf,
                                    size_t len);

/** Frees everything. NULL-safe. */
WB_API void wb_trainer_destroy(wb_trainer *t);

/** One optimizer step on the next mini-batch. Returns WB_OK when more steps
 *  remain, WB_DONE after the last one (and on later calls), or an error
 *  (the trainer's w is then unchanged). One exception: WB_EIO from writing
 *  settings.checkpoint_path comes after the step was taken (w, the step
 *  count and info have moved; the checkpoint file on disk is still the
 *  previous one, intact), so a caller can fix the path and go on without
 *  losing the step. Examples whose solve or derivative
 *  fails are skipped and counted (wb_train_info.skipped), never averaged in;
 *  a batch whose examples all fail does not move w: the step returns WB_OK,
 *  counts in wb_train_info.empty_steps and says so in the message.
 *  WB_ENONFINITE when the update would make w (after the projection onto
 *  the bounds) or an optimizer moment non-finite (SGD or momentum at a
 *  huge lr, gradients near DBL_MAX): w, the moments, the step count, the
 *  example order, info and the checkpoint file all stay as they were (the
 *  batch's warm starts may have moved to their minimizers at that w), so
 *  a later call retries the same batch. A finite gradient never makes Adam
 *  fail or freeze: its second moment is kept as its square root (a
 *  gradient of 1e200 moves w as one of 1 does). info may be NULL. */
WB_API wb_status wb_trainer_step(wb_trainer *t, wb_train_info *info);

/** Steps until done (or an error). */
WB_API wb_status wb_train(wb_trainer *t, wb_train_info *info);

/** Current w[p]. */
WB_API wb_status wb_trainer_w(const wb_trainer *t, double *w);

/** The w with the best validation loss so far (the current w when no
 *  validation set is given), and that loss (may be NULL). */
WB_API wb_status wb_trainer_best_w(const wb_trainer *t, double *w,
                                   double *best_val_loss);

/** Copies the progress report. */
WB_API wb_status wb_trainer_info(const wb_trainer *t, wb_train_info *info);

/** Mean loss of data set d (same p, n_i <= the trainer's largest n) at w[p]
 *  (finite, or WB_EINVAL),
 *  solving every example from its start (thread-parallel). *failed = the
 *  examples whose solve failed (excluded from the mean). Either output may
 *  be NULL. per_example[d->count] (may be NULL) receives each loss (NAN for
 *  a failed one). */
WB_API wb_status wb_trainer_evaluate(wb_trainer *t, const wb_dataset *d,
                                     const double *w, double *mean_loss,
                                     int *failed, double *per_example);

/** Writes the whole training state (w, optimizer moments, step, RNG and
 *  shuffle order, best w, warm starts) to path atomically, with a versioned
 *  header and a checksum: a new temporary file path.tmp.PID.COUNTER
 *  (created exclusively, never through a link: a name that exists is
 *  skipped) is written, flushed to disk and renamed over path, and the
 *  directory is flushed. Each save has its own temporary name, so several
 *  trainers may save to one path at once (the last rename wins; the file
 *  is always a whole checkpoint). After a successful write it removes the
 *  path.tmp.PID[.COUNTER] files of processes no longer running on this
 *  machine (left by a kill inside an earlier save). WB_EIO when the file
 *  cannot be written or renamed (path then still holds the previous file),
 *  or when the directory cannot be flushed (path holds the new file). */
WB_API wb_status wb_trainer_save(const wb_trainer *t, const char *path);

/** Restores a state written by wb_trainer_save into a trainer created with
 *  the same data set sizes and settings; training then continues exactly as
 *  the saved run would have. A missing file is WB_EIO; a truncated, corrupt
 *  or mismatched one is WB_EFORMAT, and so is one whose checksum holds but
 *  whose contents no run of this trainer can reach: every field is checked
 *  against the trainer and the others (step, epoch and position agree with
 *  the batch size; the example order is a permutation; counters fit the
 *  step count; w, best w, the moments and the warm starts are finite, the
 *  moments fit the optimizer, w lies in its bounds). The trainer is then
 *  unchanged. Files of format version 1 (earlier releases) still load. */
WB_API wb_status wb_trainer_load(wb_trainer *t, const char *path);

/** A sentence about the last call; never NULL. */
WB_API const char *wb_trainer_message(const wb_trainer *t);

/* ------------------------------------------------------------------------ */
/* ProxProp: the proximal step of a linear layer                             */
/* ------------------------------------------------------------------------ */

/*
 * A linear layer z = W a + b with `out` outputs and `in` inputs, written as
 * one matrix T = [W b] of size out x (in+1), sees a batch of m examples:
 * activations A[in x m] (one column per example) and targets Z[out x m].
 * With the augmented activations A1 = [A; 1 ... 1] ((in+1) x m) the proximal
 * step from T0 is (Frerix et al., "Proximal Backpropagation", ICLR 2018)
 *
 *   T+ = argmin_T 1/2 ||T A1 - Z||_F^2 + 1/(2 tau) ||T - T0||_F^2
 *      = (Z A1' + T0/tau) (A1 A1' + I/tau)^-1                    (closed form)
 *      = T0 - G (A1 A1' + I/tau)^-1,   G = (T0 A1 - Z) A1',
 *
 * G being the gradient of the layer loss 1/2 ||T A1 - Z||^2 at T0. Every row
 * of T is an independent ridge regression with the same symmetric positive
 * definite matrix M = A1 A1' + I/tau, (in+1) x (in+1):
 *
 *   WB_PROX_EXACT  one Cholesky factorization of M per step, then two
 *                  triangular solves for all `out` rows at once (BLAS-3);
 *                  O(in^2 m + in^3/3 + out in^2) flops.
 *   WB_PROX_CG     cg_iters iterations of conjugate gradients on M, one CG
 *                  per row (its own step sizes), warm-started at T0 and
 *                  sharing the products T M (BLAS-3); O(in^2 m + k out in^2).
 *                  The first residual is -G, so cg_iters = 1 is a gradient
 *                  step with an exact line search per row (step size at
 *                  most tau); cg_iters = in + 1 is the exact step up to
 *                  rounding.
 *
 * Since (A1 A1' + I/tau)^-1 is positive definite, T0 - T+ is a descent
 * direction for the layer loss, and every mode decreases both the proximal
 * objective and the layer loss (unless T0 already minimizes it). Small tau
 * gives T+ ~ T0 - tau G (an explicit gradient step of size tau); large tau
 * approaches the least-squares fit of the layer to Z.
 *
 * In ProxProp, Z = z - dL/dz (the layer's pre-activations moved by one
 * gradient step of the network loss L), and T0 - T+ replaces dL/dT as the
 * "gradient" handed to SGD / Nesterov (learning rate 1 takes exactly the
 * proximal step). Note that A1 A1' is a sum over the batch while dL/dz of a
 * mean loss scales as 1/m: the effective step depends on m for a fixed tau.
 *
 * Storage: T is column-major with leading dimension out, so its first
 * out*in entries are W (out x in, column-major) and its last `out` entries
 * are the bias b.
 */
typedef enum wb_prox_mode {
    WB_PROX_EXACT = 0, /* Cholesky of A1 A1' + I/tau, all rows at once */
    WB_PROX_CG = 1     /* cg_iters CG iterations per row from T0       */
} wb_prox_mode;

typedef struct wb_prox_settings {
    /* Step size tau_theta of the proximal term, > 0 and finite. Default 1
       (the setting the ProxProp code uses by default; its CIFAR-10 MLP used
       0.05 with batches of 500). */
    double tau;
    /* WB_PROX_EXACT (default) or WB_PROX_CG. */
    wb_prox_mode mode;
    /* WB_PROX_CG: iterations per step, >= 1. Default 3. Ignored by
       WB_PROX_EXACT. */
    int cg_iters;
    /* WB_PROX_CG: a row stops early once its residual norm is at most
       cg_tol times its initial one. In [0, 1). Default 0 (always cg_iters
       iterations, unless a residual vanishes exactly). */
    double cg_tol;
    /* Optional allocator hooks, as in wb_settings (both or neither).
       Default NULL: malloc/free. */
    void *(*alloc)(void *ctx, size_t size);
    void (*dealloc)(void *ctx, void *ptr);
    void *alloc_ctx;
} wb_prox_settings;

/** Fills every field with its default. NULL-safe. */
WB_API void wb_prox_settings_default(wb_prox_settings *s);

typedef struct wb_prox wb_prox; /* opaque: one per layer (one call at a
                                   time: WB_EBUSY otherwise) */

/** A proximal-step object for a layer with n_out >= 1 outputs and
 *  n_in >= 1 inputs (T is n_out x (n_in+1)); s NULL: defaults. Validates s
 *  and allocates every buffer the steps need (the (n_in+1)^2 matrix and a
 *  few n_out x (n_in+1) blocks; the batch size is free per step). On
 *  failure *out = NULL and the status says why (WB_EINVAL, WB_ENOMEM), the
 *  sentence in wb_last_error(). */
WB_API wb_status wb_prox_create(wb_prox **out, int n_out, int n_in,
                                const wb_prox_settings *s);

/** Frees everything. NULL-safe. */
WB_API void wb_prox_destroy(wb_prox *p);

/** One proximal step on a batch of m >= 1 examples:
 *    T[n_out*(n_in+1)] = argmin 1/2 ||T A1 - Z||^2 + 1/(2 tau) ||T - T0||^2
 *  (exactly or by CG, as created), with A[n_in*m] the activations (column j
 *  = example j), Z[n_out*m] the targets and T0[n_out*(n_in+1)] the current
 *  [W b], all column-major. Overlaps: T may share memory with any input
 *  (T == T0 is the in-place step): the inputs are read in full before T is
 *  written once, at the end, so the result is that of separate buffers.
 *  Never allocates. WB_EBUSY when the object is in use by another call.
 *  Returns WB_OK; WB_EINVAL for a NULL pointer, m < 1, or NaN/Inf in A, Z
 *  or T0; WB_ENONFINITE when finite inputs overflow (A A', Z A' or the
 *  result); WB_ESINGULAR when the Cholesky factorization fails (M
 *  numerically indefinite: tau so large that I/tau is lost in rounding
 *  next to a rank-deficient A1 A1'). On an error T is left untouched and
 *  wb_prox_message says why. */
WB_API wb_status wb_prox_step(wb_prox *p, int m, const double *A,
                              const double *Z, const double *T0, double *T);

/** Changes tau (> 0, finite) without re-creating the object. WB_EBUSY
 *  while the object is in use by another call. */
WB_API wb_status wb_prox_set_tau(wb_prox *p, double tau);

/** A sentence about the last call (the error, or what the step did: the
 *  CG iterations taken and the largest relative residual); never NULL:
 *  "" before any step, "no prox object" for p == NULL. */
WB_API const char *wb_prox_message(const wb_prox *p);

#ifdef __cplusplus
}
#endif

#endif /* WIBERG_H */
