/* Implicit derivatives of x*(w) = argmin_x E(x; w), damped ("Wibergian"):
 *
 *   d(x*)/dw = -(H + lambda I)^-1 B,  H = d2E/dx2,  B = d/dw grad_x E  at x*
 *   dL/dw  = -B^T v,                (H + lambda I) v = dL/dx*
 *
 * One Cholesky factor of H + lambda I serves every call at the same point
 * and lambda (cached in sv->F); it is never inverted. lambda = 0 is the
 * classic implicit-function derivative, refused (WB_ESINGULAR) where H is
 * not positive definite or where its condition estimate is below
 * settings.min_rcond: a huge, meaningless derivative is an error, not a
 * number.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "wb_internal.h"

/* The absolute curvature test (settings.curv_floor): refuse when sigma, the
   smallest curvature estimate of H + lambda I, is at or below the rounding
   floor curv_floor * eps_H * kappa of the energy at x* (wbi_curv_floor).
   hmax = H's own curvature scale (max |H_ii|). Fills the figures of
   wb_deriv_info either way. */
static wb_status curvature_test(wb_solver *sv, double sigma, double hmax) {
    wb_deriv_info *di = &sv->dinfo;
    double kappa = 0.0;
    double fl = wbi_curv_floor(sv, sv->s.curv_floor, sv->fs, sv->xs, hmax,
                               &kappa);
    di->min_curvature = sigma;
    di->curvature_floor = fl;
    di->curvature_scale = kappa;
    /* ||x - x*||_2 <= ||g(x)||_2 / sigma_H where E is sigma_H-strongly
       convex (||g(x) - g(x*)|| >= sigma_H ||x - x*||), sigma_H = sigma -
       lambda the smallest curvature of H itself */
    double sh = sigma - sv->s.lambda;
    di->x_error = sv->gs2 == 0 ? 0.0 : sh > 0 ? sv->gs2 / sh : INFINITY;
    if (sv->s.curv_floor > 0 && !(sigma > fl)) {
        wbi_set_msg(sv, "the smallest curvature of H + lambda I at x* (%.3g) "
                    "is at the rounding level of the energy (floor %.3g = "
                    "curv_floor %g x eps_H x kappa %.3g): the derivative "
                    "would be governed by rounding; use lambda > 0",
                    sigma, fl, sv->s.curv_floor, kappa);
        return WB_ESINGULAR;
    }
    return WB_OK;
}

/* Makes sv->F = chol(H(x, w) + lambda I), reusing what is cached. */
static wb_status factor_at(wb_solver *sv, const double *x, const double *w) {
    double lambda = sv->s.lambda;
    wb_deriv_info *di = &sv->dinfo;
    di->lambda = lambda;
    di->reused_factor = 0;
    di->hess_approx = wbi_hess_is_approx(sv);
    di->mixed_approx = sv->e.mixed_vjp == NULL && sv->e.mixed == NULL;
    if (sv->kind == WB_HESS_MATRIX_FREE) {
        /* no factor: the operator at (x, w), solved by CG per right side */
        di->rcond = -1.0;
        if (!sv->hess_valid) {
            wb_status st = wbi_hessian(sv, x, w);
            if (st != WB_OK) return st;
            sv->hess_valid = 1;
            sv->adj_acc_valid = 0; /* a new operator (a new x*) */
        }
        /* the Jacobi preconditioner's diagonal (when the energy gives it):
           one call per point, against CG iterations saved on a badly
           scaled H */
        return wbi_hess_diag_load(sv);
    }
    if (sv->fact_valid && sv->fact_mu == lambda) {
        di->reused_factor = 1;
    } else {
        sv->fact_valid = 0;
        if (!sv->hess_valid) {
            wb_status st = wbi_hessian(sv, x, w);
            if (st != WB_OK) return st;
            sv->hess_valid = 1;
        }
        int info = wbi_factor(sv, lambda, NULL);
        if (info < 0) return (wb_status)info; /* CHOLMOD: message set */
        if (info != 0) {
            /* the figures of the floor, with no curvature estimate (0) */
            curvature_test(sv, 0.0, wbi_hess_diag_max(sv));
            wbi_set_msg(sv, "H + lambda I is not positive definite at x* "
                        "(leading minor %d, lambda = %g): the classic "
                        "derivative does not exist here; use lambda > 0 "
                        "larger than -min eig(H)", info, lambda);
            return WB_ESINGULAR;
        }
        sv->fact_valid = 1;
        sv->fact_mu = lambda;
        sv->fact_rcond = -1.0;
    }
    if (sv->fact_rcond < 0) {
        /* sigma = 1 / est ||(H + lambda I)^-1||_1 = rcond ||H + lambda I||_1 */
        double an = 0.0;
        sv->fact_rcond = wbi_factor_rcond(sv, lambda, &an);
        sv->fact_sigma = sv->fact_rcond * an;
    }
    di->rcond = sv->fact_rcond;
    wb_status cst = curvature_test(sv, sv->fact_sigma, wbi_hess_diag_max(sv));
    if (!(sv->fact_rcond >= sv->s.min_rcond)) {
        wbi_set_msg(sv, "H + lambda I is numerically singular at x* (rcond "
                    "%.3g < min_rcond %.3g, lambda = %g): use a larger lambda",
                    sv->fact_rcond, sv->s.min_rcond, lambda);
        return WB_ESINGULAR;
    }
    return cst;
}

/* The accuracy x* reached, as a relative residual comparable to the
   adjoint's ||(H + lambda I) v - b|| / ||b||: with x_e the exact minimizer,
   g(x*) ~ H (x* - x_e), so
       acc = ||g(x*)||_2 / ||H x*||_2 ~ ||H (x* - x_e)|| / ||H x*||,
   the relative error of x* in the norm ||H .|| in which the adjoint's
   residual measures v's (on a quadratic from x0 = 0 it is ||g(x*)|| /
   ||g(x0)||). It does not depend on where the solve started: a solve
   warm-started next to x* reaches a tiny ||g(x*)|| with a tiny ||g(x0)||
   as well, and their ratio would loosen the adjoint far below what x*
   supports. One product (H x*), once per operator; 0 (no loosening) where
   H x* vanishes or g(x*) = 0. The product goes through sv->v (the PCG's
   output, written after). */
static wb_status solve_accuracy(wb_solver *sv, double *acc) {
    if (!sv->adj_acc_valid) {
        double a = 0.0;
        if (sv->gs2 > 0) {
            wb_status st = wbi_hess_mul(sv, sv->xs, sv->v);
            if (st != WB_OK) return st;
            double hn = wbi_nrm2(sv->n, sv->v);
            a = hn > 0 && isfinite(hn) ? sv->gs2 / hn : 0.0;
        }
        sv->adj_acc = isfinite(a) ? a : 0.0;
        sv->adj_acc_valid = 1;
    }
    *acc = sv->adj_acc;
    return WB_OK;
}

/* B[n x nrhs] = (H + lambda I)^-1 B in place: two triangular solves per
   column on the cached factor, or (matrix-free) PCG per column. A CG solve
   that ends above settings.cg_tol returns (results filled, message set)
   WB_MAXITER when it used all cg_max_iter iterations, WB_STALLED when it
   stagnated before (the recomputed residual stopped falling: the accuracy
   of H v limits it). Matrix-free, the curvature test runs on the smallest
   Rayleigh quotient of the CG directions (B holds the solution then, but
   the callers write no output on WB_ESINGULAR). */
static wb_status adjoint_solve(wb_solver *sv, int nrhs, double *B) {
    int n = sv->n;
    if (sv->kind != WB_HESS_MATRIX_FREE) {
        wbi_factor_solve(sv, nrhs, B);
        return WB_OK;
    }
    int maxit = sv->s.cg_max_iter > 0 ? sv->s.cg_max_iter : 2 * n + 10;
    /* tol = max(cg_tol, min(1e-2, acc)), acc = ||g(x*)|| / ||H x*||
       (solve_accuracy): an adjoint solved to a relative residual below the
       relative error the solve itself left buys no accuracy (x* is known
       to that level only; Eisenstat-Walker's argument for inexact
       Newton), only products */
    double tol = sv->s.cg_tol;
    if (sv->solved) {
        double acc = 0.0;
        wb_status ast = solve_accuracy(sv, &acc);
        if (ast != WB_OK) return ast;
        if (acc > tol) tol = fmin(1e-2, acc);
        if (tol < sv->s.cg_tol) tol = sv->s.cg_tol;
    }
    wb_status worst = WB_OK;
    double rq_min = INFINITY, rq_max = 0.0;
    char note[WBI_MSG_LEN] = "";
    sv->dinfo.cg_iterations = 0;
    sv->dinfo.cg_residual = 0.0;
    for (int c = 0; c < nrhs; c++) {
        double *b = B + (size_t)c * n;
        double bn = wbi_nrm2(n, b);
        int its = 0, stag = 0;
        double rel = 0.0, lo = INFINITY, hi = 0.0;
        /* the solution goes to v, then back over b */
        wb_status st = wbi_pcg(sv, sv->s.lambda, b, sv->v, maxit, tol,
                               &its, &rel, &stag, &lo, &hi);
        if (st != WB_OK) return st;
        memcpy(b, sv->v, (size_t)n * sizeof(double));
        rq_min = fmin(rq_min, lo);
        rq_max = fmax(rq_max, hi);
        sv->dinfo.cg_iterations += its;
        if (rel > sv->dinfo.cg_residual) sv->dinfo.cg_residual = rel;
        if (rel > tol) {
            if (stag) {
                /* what products of relative error eps_H allow:
                   eps_H ||H|| ||v|| / ||b||, ||H|| ~ the largest Rayleigh
                   quotient met */
                double fd = sv->s.fd_step;
                double eh = sv->e.hvp ? 2.220446049250313e-16
                                      : 2.220446049250313e-16 / fd + fd * fd;
                double att = bn > 0 ? eh * hi * wbi_nrm2(n, b) / bn : 0.0;
                if (worst == WB_OK) worst = WB_STALLED;
                snprintf(note, sizeof note, "CG stagnated at relative "
                         "residual %.3g > cg_tol %.3g after %d of %d "
                         "iterations (recomputed from v; restarts did not "
                         "lower it): the accuracy of H v%s limits it (~%.1e "
                         "attainable); raise cg_tol or lambda", rel, sv->s.cg_tol, its, maxit,
                         sv->e.hvp ? "" : " by gradient differences", att);
            } else {
                worst = WB_MAXITER;
                snprintf(note, sizeof note, "CG stopped after %d iterations "
                         "(cg_max_iter used up) at relative residual %.3g > "
                         "cg_tol %.3g: the derivative is inaccurate (raise "
                         "cg_max_iter or lambda)", its, rel, sv->s.cg_tol);
            }
        }
    }
    /* ||v - v_exact|| / ||v|| <= cond(H + lambda I) ||r|| / ||b||, the
       condition estimated by the extreme Rayleigh quotients met */
    if (isfinite(rq_min) && rq_min > 0)
        sv->dinfo.adjoint_error = rq_max / rq_min * sv->dinfo.cg_residual;
    /* sigma: the smallest Rayleigh quotient d'(H + lambda I)d / d'd met */
    if (isfinite(rq_min)) {
        double hmax = sv->have_hd ? wbi_hess_diag_max(sv) : rq_max;
        wb_status st = curvature_test(sv, rq_min, hmax);
        if (st != WB_OK) return st;
    }
    if (worst != WB_OK) wbi_set_msg(sv, "%s", note);
    return worst;
}

/* col[n] = B[:,j] = (g(x, w + h e_j) - g(x, w - h e_j)) / 2h; uses g2, wt.
   col may be g1. */
static wb_status fd_mixed_column(wb_solver *sv, const double *x, const double *w,
                                 int j, double *col) {
    int n = sv->n;
    double e1, e2, h = wbi_fd_step(&sv->s, w[j], 1.0);
    memcpy(sv->wt, w, (size_t)sv->p * sizeof(double));
    sv->wt[j] = w[j] + h;
    wb_status st = wbi_eval(sv, x, sv->wt, &e1, col);
    if (st == WB_OK) {
        sv->wt[j] = w[j] - h;
        st = wbi_eval(sv, x, sv->wt, &e2, sv->g2);
    }
    if (st != WB_OK) return st;
    for (int i = 0; i < n; i++) col[i] = (col[i] - sv->g2[i]) / (2 * h);
    return WB_OK;
}

/* out[p] = B^T v at (x, w): mixed_vjp, or mixed, or central differences of
   v' grad_x E in w. */
static wb_status mixed_vjp(wb_solver *sv, const double *x, const double *w,
                           const double *v, double *out) {
    int n = sv->n, p = sv->p;
    if (p == 0) return WB_OK;
    if (sv->e.mixed_vjp) {
        int rc = sv->e.mixed_vjp(sv->e.user, x, w, v, out);
        if (rc != 0) {
            wbi_set_msg(sv, "mixed_vjp returned %d", rc);
            return WB_ECALLBACK;
        }
    } else if (sv->e.mixed) {
        int rc = sv->e.mixed(sv->e.user, x, w, sv->B);
        if (rc != 0) {
            wbi_set_msg(sv, "mixed returned %d", rc);
            return WB_ECALLBACK;
        }
        wbi_gemm_tn(n, p, 1, sv->B, v, out);
    } else {
        /* out_j = v' B[:,j], B[:,j] by differences into g1 */
        for (int j = 0; j < p; j++) {
            wb_status st = fd_mixed_column(sv, x, w, j, sv->g1);
            if (st != WB_OK) return st;
            out[j] = wbi_dot(n, v, sv->g1);
        }
    }
    if (!wbi_all_finite((size_t)p, out)) {
        wbi_set_msg(sv, "the mixed derivative B^T v is not finite");
        return WB_ENONFINITE;
    }
    return WB_OK;
}

/* sv->B[n*p] = B at (x, w), from mixed, mixed_vjp (row by row) or central
   differences of grad_x E in w (column by column). */
static wb_status mixed_dense(wb_solver *sv, const double *x, const double *w) {
    int n = sv->n, p = sv->p;
    if (sv->e.mixed) {
        int rc = sv->e.mixed(sv->e.user, x, w, sv->B);
        if (rc != 0) {
            wbi_set_msg(sv, "mixed returned %d", rc);
            return WB_ECALLBACK;
        }
    } else if (sv->e.mixed_vjp) {
        /* row i of B = (B^T e_i)^T */
        memset(sv->v, 0, (size_t)n * sizeof(double));
        for (int i = 0; i < n; i++) {
            sv->v[i] = 1.0;
            int rc = sv->e.mixed_vjp(sv->e.user, x, w, sv->v, sv->wt);
            sv->v[i] = 0.0;
            if (rc != 0) {
                wbi_set_msg(sv, "mixed_vjp returned %d", rc);
                return WB_ECALLBACK;
            }
            for (int j = 0; j < p; j++) sv->B[(size_t)j * n + i] = sv->wt[j];
        }
    } else {
        for (int j = 0; j < p; j++) {
            wb_status st = fd_mixed_column(sv, x, w, j, sv->B + (size_t)j * n);
            if (st != WB_OK) return st;
        }
    }
    if (!wbi_all_finite((size_t)n * (size_t)p, sv->B)) {
        wbi_set_msg(sv, "the mixed derivative B is not finite");
        return WB_ENONFINITE;
    }
    return WB_OK;
}

/* Common entry: the last solve's point, with its convergence status. */
static wb_status begin_solved(wb_solver *sv, const char *fn) {
    sv->evals = 0;
    memset(&sv->dinfo, 0, sizeof sv->dinfo);
    if (!sv->solved) {
        wbi_set_msg(sv, "%s: no successful wb_solve to differentiate", fn);
        sv->dinfo.status = WB_ENOTSOLVED;
        return WB_ENOTSOLVED;
    }
    return WB_OK;
}

static wb_status finish(wb_solver *sv, wb_status st, const char *fn) {
    if (st == WB_OK && sv->solve_status > 0) {
        st = sv->solve_status;
        wbi_set_msg(sv, "%s: x* had not converged (%s); the derivative is "
                    "that of a non-stationary point", fn,
                    wb_status_str(sv->solve_status));
    } else if (st == WB_OK) {
        wbi_set_msg(sv, "%s: ok (lambda = %g, rcond %.3g%s)", fn,
                    sv->dinfo.lambda, sv->dinfo.rcond,
                    sv->dinfo.reused_factor ? ", factor reused" : "");
    }
    sv->dinfo.status = st;
    return st;
}

/* The public calls: the in-use guard around each body. Overlapping
   arguments need nothing more: every input is copied into the solver
   (dl_dx into sv->gt, x and w into sv->xs, sv->ws) or fully read before
   the output is written, and the output is written only at the end; so
   dl_dw may overlap dl_dx, x or w (wb_implicit_vjp_at), and the result is
   that of separate buffers. */
static wb_status implicit_vjp(wb_solver *sv, const double *dl_dx, double *dl_dw);
static wb_status implicit_vjp_at(wb_solver *sv, const double *w, const double *x,
                                 const double *dl_dx, double *dl_dw);

wb_status wb_implicit_vjp(wb_solver *sv, const double *dl_dx, double *dl_dw) {
    if (!sv) return wbi_fail(WB_EINVAL, "%s: sv is NULL", __func__);
    if (!wbi_guard_take(&sv->busy)) return wbi_busy(__func__, "solver");
    wb_status st = implicit_vjp(sv, dl_dx, dl_dw);
    wbi_guard_drop(&sv->busy);
    return st;
}

wb_status wb_implicit_jacobian(wb_solver *sv, double *dx_dw) {
    if (!sv) return wbi_fail(WB_EINVAL, "%s: sv is NULL", __func__);
    if (!wbi_guard_take(&sv->busy)) return wbi_busy(__func__, "solver");
    wb_status st = wbi_implicit_jacobian(sv, dx_dw);
    wbi_guard_drop(&sv->busy);
    return st;
}

wb_status wb_implicit_vjp_at(wb_solver *sv, const double *w, const double *x,
                             const double *dl_dx, double *dl_dw) {
    if (!sv) return wbi_fail(WB_EINVAL, "%s: sv is NULL", __func__);
    if (!wbi_guard_take(&sv->busy)) return wbi_busy(__func__, "solver");
    wb_status st = implicit_vjp_at(sv, w, x, dl_dx, dl_dw);
    wbi_guard_drop(&sv->busy);
    return st;
}

/* The bodies; the caller holds sv->busy. */
static wb_status implicit_vjp(wb_solver *sv, const double *dl_dx, double *dl_dw) {
    double gn = sv->dinfo.grad_norm;
    wb_status st = begin_solved(sv, "wb_implicit_vjp");
    if (st != WB_OK) return st;
    sv->dinfo.grad_norm = gn;
    sv->dinfo.x_converged = sv->solve_status == WB_OK;
    if (!dl_dx || (sv->p > 0 && !dl_dw)) {
        wbi_set_msg(sv, "wb_implicit_vjp: %s is NULL", !dl_dx ? "dl_dx" : "dl_dw");
        return sv->dinfo.status = WB_EINVAL;
    }
    if (!wbi_all_finite((size_t)sv->n, dl_dx)) {
        wbi_set_msg(sv, "wb_implicit_vjp: dl_dx contains NaN or Inf");
        return sv->dinfo.status = WB_EINVAL;
    }
    st = factor_at(sv, sv->xs, sv->ws);
    if (st == WB_OK) {
        /* v = (H + lambda I)^-1 dl_dx; dl_dw = -B^T v */
        memcpy(sv->gt, dl_dx, (size_t)sv->n * sizeof(double));
        st = adjoint_solve(sv, 1, sv->gt);
        if (st >= 0) memcpy(sv->v, sv->gt, (size_t)sv->n * sizeof(double));
        if (st >= 0 && !wbi_all_finite((size_t)sv->n, sv->v)) {
            wbi_set_msg(sv, "wb_implicit_vjp: the adjoint v is not finite");
            st = WB_ENONFINITE;
        }
    }
    wb_status warn = st > 0 ? st : WB_OK;
    if (st > 0) st = WB_OK;
    if (st == WB_OK && sv->p > 0)
        st = mixed_vjp(sv, sv->xs, sv->ws, sv->v, sv->pbuf);
    if (st == WB_OK)
        for (int j = 0; j < sv->p; j++) dl_dw[j] = -sv->pbuf[j];
    if (st == WB_OK && warn) return sv->dinfo.status = warn;
    return finish(sv, st, "wb_implicit_vjp");
}

wb_status wbi_implicit_jacobian(wb_solver *sv, double *dx_dw) {
    double gn = sv->dinfo.grad_norm;
    wb_status st = begin_solved(sv, "wb_implicit_jacobian");
    if (st != WB_OK) return st;
    sv->dinfo.grad_norm = gn;
    sv->dinfo.x_converged = sv->solve_status == WB_OK;
    if (sv->p > 0 && !dx_dw) {
        wbi_set_msg(sv, "wb_implicit_jacobian: dx_dw is NULL");
        return sv->dinfo.status = WB_EINVAL;
    }
    wb_status warn = WB_OK;
    st = factor_at(sv, sv->xs, sv->ws);
    if (st == WB_OK && sv->p > 0) st = mixed_dense(sv, sv->xs, sv->ws);
    if (st == WB_OK && sv->p > 0) {
        /* J = -(H + lambda I)^-1 B: p right-hand sides on one factor */
        size_t np = (size_t)sv->n * (size_t)sv->p;
        wb_status cs = adjoint_solve(sv, sv->p, sv->B);
        if (cs < 0) return finish(sv, cs, "wb_implicit_jacobian");
        warn = cs;
        if (!wbi_all_finite(np, sv->B)) {
            wbi_set_msg(sv, "wb_implicit_jacobian: the result is not finite");
            st = WB_ENONFINITE;
        } else {
            for (size_t k = 0; k < np; k++) dx_dw[k] = -sv->B[k];
        }
    }
    if (st == WB_OK && warn) return sv->dinfo.status = warn;
    return finish(sv, st, "wb_implicit_jacobian");
}

static wb_status implicit_vjp_at(wb_solver *sv, const double *w, const double *x,
                                 const double *dl_dx, double *dl_dw) {
    int n = sv->n, p = sv->p;
    sv->evals = 0;
    memset(&sv->dinfo, 0, sizeof sv->dinfo);
    if (!x || !dl_dx || (p > 0 && (!w || !dl_dw))) {
        wbi_set_msg(sv, "wb_implicit_vjp_at: %s is NULL",
                    !x ? "x" : !dl_dx ? "dl_dx" : !w ? "w" : "dl_dw");
        return sv->dinfo.status = WB_EINVAL;
    }
    if (!wbi_all_finite((size_t)n, x) || !wbi_all_finite((size_t)n, dl_dx) ||
        (p > 0 && !wbi_all_finite((size_t)p, w))) {
        wbi_set_msg(sv, "wb_implicit_vjp_at: x, w or dl_dx contains NaN or Inf");
        return sv->dinfo.status = WB_EINVAL;
    }
    /* the point replaces the last solve's: later wb_implicit_vjp calls need
       a new wb_solve */
    sv->solved = 0;
    sv->fact_valid = 0;
    sv->hess_valid = 0;
    memcpy(sv->xs, x, (size_t)n * sizeof(double));
    if (p > 0) memcpy(sv->ws, w, (size_t)p * sizeof(double));
    sv->have_x0 = 0; /* differences use max(|x_i|, 1) at a foreign point */
    double f;
    wb_status st = wbi_eval(sv, sv->xs, sv->ws, &f, sv->g);
    sv->fs = f;
    sv->gs2 = st == WB_OK ? wbi_nrm2(n, sv->g) : 0.0;
    if (st == WB_OK) {
        sv->dinfo.grad_norm = wbi_norm_inf(n, sv->g);
        sv->dinfo.x_converged = sv->dinfo.grad_norm <= sv->s.grad_tol;
        st = factor_at(sv, sv->xs, sv->ws);
    }
    if (st == WB_OK) {
        memcpy(sv->gt, dl_dx, (size_t)n * sizeof(double));
        st = adjoint_solve(sv, 1, sv->gt);
        if (st >= 0) memcpy(sv->v, sv->gt, (size_t)n * sizeof(double));
        if (st >= 0 && !wbi_all_finite((size_t)n, sv->v)) {
            wbi_set_msg(sv, "wb_implicit_vjp_at: the adjoint v is not finite");
            st = WB_ENONFINITE;
        }
    }
    wb_status warn = st > 0 ? st : WB_OK;
    if (st > 0) st = WB_OK;
    if (st == WB_OK && p > 0) st = mixed_vjp(sv, sv->xs, sv->ws, sv->v, sv->pbuf);
    if (st == WB_OK && warn) {
        for (int j = 0; j < p; j++) dl_dw[j] = -sv->pbuf[j];
        return sv->dinfo.status = warn;
    }
    if (st == WB_OK) {
        for (int j = 0; j < p; j++) dl_dw[j] = -sv->pbuf[j];
        wbi_set_msg(sv, "wb_implicit_vjp_at: ok (lambda = %g, rcond %.3g, "
                    "|g|_inf at x = %.3g)", sv->dinfo.lambda, sv->dinfo.rcond,
                    sv->dinfo.grad_norm);
    }
    sv->dinfo.status = st;
    return st;
}

void wb_solver_deriv_info(const wb_solver *sv, wb_deriv_info *out) {
    if (!sv || !out) return;
    /* the report is being written by a running call: say so instead */
    wbi_guard *busy = (wbi_guard *)&sv->busy; /* taken and dropped: the
                                                 report itself is only read */
    if (!wbi_guard_take(busy)) {
        memset(out, 0, sizeof *out);
        out->status = WB_EBUSY;
        wbi_busy(__func__, "solver");
        return;
    }
    *out = sv->dinfo;
    wbi_guard_drop(busy);
}
