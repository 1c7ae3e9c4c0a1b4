/* Trust-region Newton minimizer (Levenberg-Marquardt damping).
 *
 * At x with gradient g and Hessian H (exact, or central differences of g):
 *
 *   step       (H + mu D) s = -g            Cholesky; a failed factorization
 *                                            (H indefinite) raises mu and retries
 *   model      m(s) = E(x) + g's + 1/2 s'Hs
 *   gain ratio rho = (E(x) - E(x+s)) / (m(0) - m(s))
 *   accept     rho > eta (1e-4); then mu *= max(1/3, 1 - (2 rho - 1)^3), nu = 2
 *   reject     mu *= nu, nu *= 2   (Nielsen's update)
 *   non-finite E or g at a trial point: rejected like a bad step (at most
 *              MAX_NONFINITE in a row, then WB_ENONFINITE)
 *   rounding   when m(0) - m(s) and E(x) - E(x+s) are both below 32 eps |E|,
 *              rho is noise: the step is judged by ||g|| instead, and a fresh
 *              step that does not reduce it means x is converged to working
 *              precision
 *   stop       ||g||_inf <= grad_tol; or a step below step_tol taken right
 *              after an acceptance (a tiny Newton-like step: converged) --
 *              below step_tol only after rejections inflated mu is STALLED
 *   2nd order  at every such stop (and the working-precision ones): H(x)
 *              is formed and factored without damping; a failed pivot k
 *              gives z = [-A11^-1 a; 1; 0] with z'Hz = d_k <= 0 (More-
 *              Sorensen), matrix-free CG on H finds d'Hd < 0. Curvature
 *              below -floor (wbi_curv_floor): not a minimizer, step along
 *              +-z from the trust radius, halving until E falls, iterate on.
 *              A step_tol stop is WB_OK only if the undamped Newton step
 *              -H^-1 g is below step_tol too; else mu is dropped (3 times
 *              at most), then STALLED. (The contract: wiberg.h.)
 *
 * m(0) - m(s) = 1/2 s'(H + mu D)s + 1/2 mu s'Ds > 0 whenever the factorization
 * succeeded, so rho is always well defined. D is the identity, or (Marquardt /
 * MINPACK scaling) the running maximum of |H_ii|, floored at 1e-8 max_j D_j.
 * Damping large enough makes H + mu D positive definite whatever the inertia
 * of H, which is what lets the method pass indefinite and singular Hessians.
 * Every buffer is allocated in wb_solver_create; wb_solve never allocates.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include "wb_internal.h"

#define ETA 1e-4          /* acceptance threshold on rho                */
#define MU_MAX 1e100      /* damping beyond this: stalled               */
#define MAX_NONFINITE 16  /* non-finite trial points in a row: error     */

static void *zalloc(const wb_settings *s, size_t count, size_t size, int *ok) {
    void *p = wbi_alloc(s, count, size);
    if (!p) *ok = 0;
    else memset(p, 0, (count ? count : 1) * size);
    return p;
}

void wb_solver_destroy(wb_solver *sv) {
    if (!sv) return;
    wb_settings s = sv->s;
    void *bufs[] = {sv->x,  sv->xt, sv->g,    sv->gt,    sv->sd, sv->H,
                    sv->F,  sv->D,  sv->g1,   sv->g2,    sv->xh, sv->wt,
                    sv->B,  sv->v,  sv->work, sv->iwork, sv->xs, sv->ws, sv->pbuf, sv->hx, sv->hd, sv->cgw, sv->hs, sv->x0};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) wbi_free(&s, bufs[i]);
    wbi_free(&s, sv);
}

wb_status wb_solver_explain(const wb_energy *e, const wb_settings *s,
                            char *msg, size_t len) {
    char buf[WBI_MSG_LEN];
    wb_settings st;
    wb_hessian_kind kind;
    wb_status r = WB_OK;
    if (!e) {
        snprintf(buf, sizeof buf, "energy is NULL");
        r = WB_EINVAL;
    } else {
        if (s) st = *s;
        else wb_settings_default(&st);
        if ((r = wbi_settings_check(&st, buf, sizeof buf)) == WB_OK &&
            (r = wbi_energy_check(e, buf, sizeof buf)) == WB_OK &&
            (r = wbi_resolve_kind(e, &st, &kind, buf, sizeof buf)) == WB_OK) {
            if ((kind == WB_HESS_DENSE && (double)e->n * e->n > 2147483647.0) ||
                (double)e->n * (e->p > 0 ? e->p : 1) > 2147483647.0) {
                snprintf(buf, sizeof buf, "n = %d, p = %d: n*n (dense) or n*p "
                         "exceeds LAPACK's int sizes", e->n, e->p);
                r = WB_EINVAL;
            } else {
                snprintf(buf, sizeof buf, "ok");
            }
        }
    }
    if (msg && len) snprintf(msg, len, "%s", buf);
    if (r != WB_OK) wbi_fail(r, "wb_solver_explain: %.200s", buf);
    return r;
}

wb_status wb_solver_create(wb_solver **out, const wb_energy *e,
                           const wb_settings *s) {
    char msg[WBI_MSG_LEN];
    if (!out) return wbi_fail(WB_EINVAL, "%s: out is NULL", __func__);
    *out = NULL;
    /* every check, with its sentence, is wb_solver_explain's */
    if (wb_solver_explain(e, s, msg, sizeof msg) != WB_OK)
        return wbi_fail(WB_EINVAL, "wb_solver_create: %.200s", msg);
    wb_settings st;
    if (s) st = *s;
    else wb_settings_default(&st);
    wb_hessian_kind kind = WB_HESS_DENSE;
    wbi_resolve_kind(e, &st, &kind, msg, sizeof msg); /* accepted above */

    wb_solver *sv = wbi_alloc(&st, 1, sizeof *sv);
    if (!sv) return wbi_fail(WB_ENOMEM, "wb_solver_create: out of memory");
    memset(sv, 0, sizeof *sv);
    sv->s = st;
    sv->e = *e;
    sv->kind = kind;
    sv->kd = sv->kd_cap = kind == WB_HESS_BANDED ? e->kd : 0;
    size_t n = (size_t)e->n, p = (size_t)(e->p > 0 ? e->p : 1);
    size_t hsize = kind == WB_HESS_DENSE    ? n * n
                   : kind == WB_HESS_BANDED ? ((size_t)sv->kd + 1) * n
                                            : 1;
    size_t mf = kind == WB_HESS_MATRIX_FREE ? n : 1;
    sv->n = e->n;
    sv->n_cap = e->n;
    sv->p = e->p;
    int ok = 1;
    sv->x = zalloc(&st, n, sizeof(double), &ok);
    sv->xt = zalloc(&st, n, sizeof(double), &ok);
    sv->g = zalloc(&st, n, sizeof(double), &ok);
    sv->gt = zalloc(&st, n, sizeof(double), &ok);
    sv->sd = zalloc(&st, n, sizeof(double), &ok);
    sv->H = zalloc(&st, hsize, sizeof(double), &ok);
    sv->F = zalloc(&st, hsize, sizeof(double), &ok);
    sv->hx = zalloc(&st, mf, sizeof(double), &ok);
    sv->hs = zalloc(&st, n, sizeof(double), &ok);
    sv->hd = zalloc(&st, mf, sizeof(double), &ok);
    sv->cgw = zalloc(&st, 4 * n, sizeof(double), &ok); /* + negative curvature */
    sv->D = zalloc(&st, n, sizeof(double), &ok);
    sv->g1 = zalloc(&st, n, sizeof(double), &ok);
    sv->g2 = zalloc(&st, n, sizeof(double), &ok);
    sv->xh = zalloc(&st, n, sizeof(double), &ok);
    sv->wt = zalloc(&st, p, sizeof(double), &ok);
    sv->B = zalloc(&st, n * p, sizeof(double), &ok);
    sv->v = zalloc(&st, n, sizeof(double), &ok);
    sv->work = zalloc(&st, 3 * n, sizeof(double), &ok);
    sv->iwork = zalloc(&st, n, sizeof(int), &ok);
    sv->xs = zalloc(&st, n, sizeof(double), &ok);
    sv->x0 = zalloc(&st, n, sizeof(double), &ok);
    sv->ws = zalloc(&st, p, sizeof(double), &ok);
    sv->pbuf = zalloc(&st, p, sizeof(double), &ok);
    if (!ok) {
        wb_solver_destroy(sv);
        return wbi_fail(WB_ENOMEM, "wb_solver_create: out of memory");
    }
    sv->msg[0] = '\0';
    wbi_guard_init(&sv->busy);
    *out = sv;
    return WB_OK;
}

wb_status wb_solver_set_lambda(wb_solver *sv, double lambda) {
    if (!sv) return wbi_fail(WB_EINVAL, "%s: sv is NULL", __func__);
    if (!wbi_guard_take(&sv->busy)) return wbi_busy(__func__, "solver");
    wb_status st = WB_OK;
    if (!(lambda >= 0) || !isfinite(lambda)) {
        wbi_set_msg(sv, "lambda = %g must be finite and >= 0", lambda);
        st = WB_EINVAL;
    } else {
        sv->s.lambda = lambda;
    }
    wbi_guard_drop(&sv->busy);
    return st;
}

static wb_status set_energy(wb_solver *sv, const wb_energy *e);

wb_status wb_solver_set_energy(wb_solver *sv, const wb_energy *e) {
    if (!sv) return wbi_fail(WB_EINVAL, "%s: sv is NULL", __func__);
    if (!wbi_guard_take(&sv->busy)) return wbi_busy(__func__, "solver");
    wb_status st = set_energy(sv, e);
    wbi_guard_drop(&sv->busy);
    return st;
}

/* wb_solver_set_energy with sv->busy held. */
static wb_status set_energy(wb_solver *sv, const wb_energy *e) {
    char msg[WBI_MSG_LEN];
    if (!e) {
        wbi_set_msg(sv, "wb_solver_set_energy: energy is NULL");
        return WB_EINVAL;
    }
    if (wbi_energy_check(e, msg, sizeof msg) != WB_OK) {
        wbi_set_msg(sv, "wb_solver_set_energy: %s", msg);
        return WB_EINVAL;
    }
    wb_hessian_kind kind;
    if (wbi_resolve_kind(e, &sv->s, &kind, msg, sizeof msg) != WB_OK) {
        wbi_set_msg(sv, "wb_solver_set_energy: %s", msg);
        return WB_EINVAL;
    }
    if (kind != sv->kind || (kind == WB_HESS_BANDED && e->kd > sv->kd_cap)) {
        wbi_set_msg(sv, "wb_solver_set_energy: the energy needs another "
                    "Hessian storage (kind %d, kd = %d) than the solver was "
                    "created with (kind %d, kd <= %d)", (int)kind, e->kd,
                    (int)sv->kind, sv->kd_cap);
        return WB_EINVAL;
    }
    if (e->n > sv->n_cap || e->p != sv->p) {
        wbi_set_msg(sv, "wb_solver_set_energy: n = %d, p = %d do not fit a "
                    "solver created for n <= %d, p = %d", e->n, e->p,
                    sv->n_cap, sv->p);
        return WB_EINVAL;
    }
    /* the buffers are contiguous: an n x n matrix with leading dimension n
       fits in the n_cap x n_cap space */
    sv->e = *e;
    sv->n = e->n;
    if (kind == WB_HESS_BANDED) sv->kd = e->kd;
    sv->solved = 0;
    sv->fact_valid = 0;
    sv->hess_valid = 0;
    return WB_OK;
}

double wbi_typ_x(const wb_solver *sv, int i) {
    if (sv->have_x0 && sv->x0[i] != 0) return fabs(sv->x0[i]);
    return 1.0;
}

double wbi_fd_step(const wb_settings *s, double z, double typ) {
    /* h = fd_step * max(|z|, typ): typ is the coordinate's typical size */
    double ref = fmax(fabs(z), typ);
    double h = s->fd_step * (ref > 0 ? ref : 1.0);
    volatile double t = z + h; /* make z + h - z exactly representable */
    return t - z;
}

wb_status wbi_eval(wb_solver *sv, const double *x, const double *w, double *e,
                   double *g) {
    sv->evals++;
    int rc = sv->e.value_grad(sv->e.user, x, w, e, g);
    if (rc != 0) {
        wbi_set_msg(sv, "value_grad returned %d (evaluation %d)", rc, sv->evals);
        return WB_ECALLBACK;
    }
    if (!isfinite(*e)) {
        wbi_set_msg(sv, "value_grad returned a non-finite energy (%g) at "
                    "evaluation %d", *e, sv->evals);
        return WB_ENONFINITE;
    }
    if (g && !wbi_all_finite((size_t)sv->n, g)) {
        wbi_set_msg(sv, "value_grad returned a non-finite gradient at "
                    "evaluation %d", sv->evals);
        return WB_ENONFINITE;
    }
    return WB_OK;
}

/* D_i = max(D_i, |H_ii|), floored at 1e-8 max_j D_j (all ones if H's
   diagonal is zero). */
static void update_scaling(wb_solver *sv, int first) {
    int n = sv->n;
    double dmax = 0.0;
    for (int i = 0; i < n; i++) {
        double h = fabs(wbi_hess_diag(sv, i));
        sv->D[i] = first ? h : fmax(sv->D[i], h);
        dmax = fmax(dmax, sv->D[i]);
    }
    if (!(dmax > 0) || !isfinite(dmax)) {
        for (int i = 0; i < n; i++) sv->D[i] = 1.0;
        return;
    }
    for (int i = 0; i < n; i++) sv->D[i] = fmax(sv->D[i], 1e-8 * dmax);
}

static void fill_info(wb_info *info, const wb_solver *sv, wb_status st,
                      wb_stop_reason why, int it, int hevals, int facts,
                      double f, double gnorm, double snorm, double mu) {
    if (!info) return;
    info->status = st;
    info->iterations = it;
    info->evaluations = sv->evals;
    info->hess_evaluations = hevals;
    info->factorizations = facts;
    info->energy = f;
    info->grad_norm = gnorm;
    info->step_norm = snorm;
    info->mu = mu;
    info->reason = why;
    info->hess_approx = sv->e.hess == NULL;
    info->mixed_approx = sv->e.mixed_vjp == NULL && sv->e.mixed == NULL;
    info->hessian = sv->kind;
    info->cg_iterations = (int)sv->cg_its;
    if (sv->kind == WB_HESS_BANDED) info->hess_approx = sv->e.hess_band == NULL;
    if (sv->kind == WB_HESS_MATRIX_FREE) info->hess_approx = sv->e.hvp == NULL;
}

/* The second-order test at a stationary point sv->x with energy f (the
   stopping contract in wiberg.h); H(x) must be formed. floor = the
   curvature floor of settings.curv_floor (32 when that is 0). Returns
     1  H positive definite (dense/banded: sv->F = chol(H), no damping;
        matrix-free: CG on H met no curvature below -floor),
     2  no curvature below -floor found, H not positive definite: flat to
        rounding (a degenerate minimizer),
     3  u'Hu = *q < -floor u'u along the unit u in sv->sd: not a minimizer,
     or a negative status (callback error). */
static int second_order_test(wb_solver *sv, double f, int *facts, double *q) {
    int n = sv->n;
    double factor = sv->s.curv_floor > 0 ? sv->s.curv_floor : 32.0;
    double floor_ = wbi_curv_floor(sv, factor, f, sv->x, wbi_hess_diag_max(sv),
                                   NULL);
    *q = 0.0;
    if (sv->kind != WB_HESS_MATRIX_FREE) {
        (*facts)++;
        int info = wbi_factor(sv, 0.0, NULL); /* H = L L' ? */
        if (info == 0) return 1;
        /* the More-Sorensen direction of the failed pivot */
        wbi_chol_fail_direction(sv, info, sv->sd);
        wb_status st = wbi_hess_mul(sv, sv->sd, sv->hs);
        if (st != WB_OK) return st;
        double zz = wbi_dot(n, sv->sd, sv->sd);
        double zHz = wbi_dot(n, sv->sd, sv->hs);
        if (zz > 0 && isfinite(zz) && zHz < -floor_ * zz) {
            double zn = sqrt(zz);
            for (int i = 0; i < n; i++) sv->sd[i] /= zn;
            *q = zHz / zz;
            return 3;
        }
    }
    /* matrix-free, or a failed pivot at the rounding level: look for
       negative curvature by CG on H (Lanczos pivots) */
    int maxit = sv->s.cg_max_iter > 0 ? sv->s.cg_max_iter : (n < 500 ? n : 500);
    int found = 0;
    double rqmax = 0.0;
    wb_status st = wbi_negcurv(sv, maxit, floor_, sv->sd, q, &found, &rqmax);
    if (st != WB_OK) return st;
    if (found) return 3;
    return sv->kind == WB_HESS_MATRIX_FREE ? 1 : 2;
}

/* Leaves a stationary point along the unit direction u = sv->sd of
   negative curvature: x + t r u, t = sign(-g'u) first (then -t), r = r0
   halved until E decreases (60 halvings at most; a non-finite E counts as
   no decrease). Returns 1 (sv->x, sv->g, *f moved), 0 (no decrease
   found), or a negative status. */
static int escape_step(wb_solver *sv, const double *w, double *f, double r0) {
    int n = sv->n;
    double t = wbi_dot(n, sv->g, sv->sd) > 0 ? -1.0 : 1.0, r = r0, ft;
    for (int k = 0; k < 60; k++, r *= 0.5)
        for (int side = 0; side < 2; side++) {
            double a = (side ? -t : t) * r;
            for (int i = 0; i < n; i++) sv->xt[i] = sv->x[i] + a * sv->sd[i];
            wb_status st = wbi_eval(sv, sv->xt, w, &ft, sv->gt);
            if (st == WB_ENONFINITE) continue;
            if (st != WB_OK) return st;
            if (ft < *f) {
                memcpy(sv->x, sv->xt, (size_t)n * sizeof(double));
                memcpy(sv->g, sv->gt, (size_t)n * sizeof(double));
                *f = ft;
                return 1;
            }
        }
    return 0;
}


/* wb_solve: the in-use guard and the overlapping arguments around the
   body. x[n] is written at the end, w[p] is read throughout (and saved as
   the last solve's w): when they overlap, the solve runs on a copy of w in
   sv->ws (which holds the solve's w afterwards anyway). info written over x
   or w cannot be undone: refused. */
wb_status wb_solve(wb_solver *sv, const double *w, double *x, wb_info *info) {
    if (!sv) return wbi_solve(sv, w, x, info); /* its own refusal */
    if (!wbi_guard_take(&sv->busy)) {
        if (info) {
            memset(info, 0, sizeof *info);
            info->status = WB_EBUSY;
            info->reason = WB_STOP_ERROR;
        }
        return wbi_busy(__func__, "solver");
    }
    size_t xb = (size_t)sv->n * sizeof(double), wb = (size_t)sv->p * sizeof(double);
    wb_status st;
    if (wbi_overlap(info, sizeof *info, x, xb) ||
        wbi_overlap(info, sizeof *info, w, wb)) {
        wbi_set_msg(sv, "wb_solve: info overlaps %s (not allowed: info is "
                    "written first)", wbi_overlap(info, sizeof *info, x, xb)
                    ? "x" : "w");
        st = WB_EINVAL;
    } else {
        if (wbi_overlap(w, wb, x, xb)) {
            memcpy(sv->ws, w, wb);
            w = sv->ws;
        }
        st = wbi_solve(sv, w, x, info);
    }
    wbi_guard_drop(&sv->busy);
    return st;
}

/* The body of wb_solve; the caller holds sv->busy. */
wb_status wbi_solve(wb_solver *sv, const double *w, double *x, wb_info *info) {
    if (info) memset(info, 0, sizeof *info);
    if (!sv) {
        if (info) info->status = WB_EINVAL;
        return wbi_fail(WB_EINVAL, "wb_solve: sv is NULL");
    }
    int n = sv->n;
    sv->solved = 0;
    sv->fact_valid = 0;
    sv->hess_valid = 0;
    sv->evals = 0;
    if (!x || (sv->p > 0 && !w)) {
        wbi_set_msg(sv, "wb_solve: %s is NULL", !x ? "x" : "w");
        fill_info(info, sv, WB_EINVAL, WB_STOP_ERROR, 0, 0, 0, NAN, NAN, 0, 0);
        return WB_EINVAL;
    }
    if (!wbi_all_finite((size_t)n, x) ||
        (sv->p > 0 && !wbi_all_finite((size_t)sv->p, w))) {
        wbi_set_msg(sv, "wb_solve: the start x or the parameters w contain "
                    "NaN or Inf");
        fill_info(info, sv, WB_EINVAL, WB_STOP_ERROR, 0, 0, 0, NAN, NAN, 0, 0);
        return WB_EINVAL;
    }
    const wb_settings *s = &sv->s;
    memcpy(sv->x, x, (size_t)n * sizeof(double));
    memcpy(sv->x0, x, (size_t)n * sizeof(double));
    sv->have_x0 = 1;

    double f, ft = 0.0;
    wb_status st = wbi_eval(sv, sv->x, w, &f, sv->g);
    if (st != WB_OK) {
        fill_info(info, sv, st, WB_STOP_ERROR, 0, 0, 0, NAN, NAN, 0, 0);
        return st;
    }
    double gnorm = wbi_norm_inf(n, sv->g);
    double mu = 0.0, nu = 2.0, snorm = 0.0;
    int it = 0, hevals = 0, facts = 0, need_hess = 1, factored = 0;
    int rejected = 0; /* rejected steps since the last accepted one */
    int nonfinite_run = 0, precision_stop = 0;
    double fresh_pred = INFINITY; /* m(0) - m(s) of the last fresh step */
    double fact_mu = 0.0;
    wb_stop_reason why = WB_STOP_NONE;
    st = WB_OK;
    /* matrix-free: a trust region of radius delta, steps by Steihaug CG */
    int mf = sv->kind == WB_HESS_MATRIX_FREE, boundary = 0;
    double delta = 0.0;
    sv->cg_its = 0;
    int escapes = 0, second_order = 0, plain_factor = 0, msg_set = 0;
    int loop_h = 0; /* Hessians formed by the iterations (not the test) */
    int undamp = 0; /* step_tol stops undone by dropping the damping */
    double curvature = 0.0;

    for (;;) { /* until a stop that is not a saddle or maximum */
    for (;; it++) {
        if (gnorm <= s->grad_tol) { why = WB_STOP_GRAD; break; }
        if (it >= s->max_iter) { why = WB_STOP_MAXITER; st = WB_MAXITER; break; }
        if (need_hess) {
            st = wbi_hessian(sv, sv->x, w);
            hevals++;
            loop_h++;
            if (st != WB_OK) { why = WB_STOP_ERROR; break; }
            if (mf) {
                if (loop_h == 1)
                    delta = s->tr_radius0 * fmax(1.0, wbi_nrm2(n, sv->x));
            } else if (s->scale_damping) {
                update_scaling(sv, loop_h == 1);
            } else {
                for (int i = 0; i < n; i++) sv->D[i] = 1.0;
            }
            if (loop_h == 1 && !mf) {
                double dmax = 0.0;
                for (int i = 0; i < n; i++)
                    dmax = fmax(dmax, fabs(wbi_hess_diag(sv, i)));
                double m0 = s->mu0;
                mu = s->scale_damping ? m0
                                      : m0 * (dmax > 0 ? dmax : 1.0);
            }
            need_hess = 0;
        }
        if (mf) {
            /* s ~ argmin g's + 1/2 s'Hs, ||s|| <= delta; CG to a relative
               residual min(0.5, sqrt||g||) (superlinear near x*) */
            double gn2 = wbi_nrm2(n, sv->g);
            int maxit = s->cg_max_iter > 0 ? s->cg_max_iter : (n < 500 ? n : 500);
            int its = 0;
            st = wbi_steihaug(sv, delta, fmin(0.5, sqrt(gn2)) * gn2, maxit,
                              sv->sd, &boundary, &its);
            sv->cg_its += its;
            if (st != WB_OK) { why = WB_STOP_ERROR; break; }
        }
        /* factor H + mu D, raising mu until it is positive definite */
        for (; !mf;) {
            facts++;
            if (wbi_factor(sv, mu, sv->D) == 0) break;
            factored = 0;
            /* not positive definite: more damping (a fixed factor, so that
               a run of failures cannot overshoot by 2^(k^2/2) as nu would) */
            mu = (mu > 0 ? mu : s->mu0) * 4;
            if (!(mu < MU_MAX)) break;
        }
        if (!mf && !(mu < MU_MAX)) {
            why = WB_STOP_STALLED;
            st = WB_STALLED;
            wbi_set_msg(sv, "damping exceeded %g without a positive definite "
                        "H + mu D", MU_MAX);
            break;
        }
        if (!mf) {
            factored = 1;
            plain_factor = 0; /* F = chol(H + mu D) */
            fact_mu = mu;
            /* s = -(H + mu D)^-1 g */
            for (int i = 0; i < n; i++) sv->sd[i] = -sv->g[i];
            wbi_factor_solve(sv, 1, sv->sd);
        }
        snorm = wbi_nrm2(n, sv->sd);
        if (!isfinite(snorm)) {
            why = WB_STOP_ERROR;
            st = WB_ENONFINITE;
            wbi_set_msg(sv, "non-finite step (mu = %g)", mu);
            break;
        }
        if (snorm <= s->step_tol * (wbi_nrm2(n, sv->x) + s->step_tol)) {
            if (rejected == 0) { /* the undamped-as-usual step is tiny */
                why = WB_STOP_STEP;
                /* polish: take this last Newton-like correction when it does
                   not make things worse (one evaluation) */
                for (int i = 0; i < n; i++) sv->xt[i] = sv->x[i] + sv->sd[i];
                if (wbi_eval(sv, sv->xt, w, &ft, sv->gt) == WB_OK &&
                    (ft < f || (ft == f && wbi_nrm2(n, sv->gt) < wbi_nrm2(n, sv->g)))) {
                    memcpy(sv->x, sv->xt, (size_t)n * sizeof(double));
                    memcpy(sv->g, sv->gt, (size_t)n * sizeof(double));
                    f = ft;
                    gnorm = wbi_norm_inf(n, sv->g);
                    need_hess = 1;
                }
            } else if (nonfinite_run > 0) {
                why = WB_STOP_ERROR;
                st = WB_ENONFINITE;
                wbi_set_msg(sv, "value_grad returned non-finite values at %d "
                            "trial points in a row (last at evaluation %d)",
                            nonfinite_run, sv->evals);
            } else if (fresh_pred <= 1e3 * DBL_EPSILON * fabs(f)) {
                /* the last fresh (near-Newton) step predicted a decrease
                   below 1e3 eps |E|, and no step since could realize even
                   that: a minimizer to working precision */
                why = WB_STOP_PRECISION;
                precision_stop = 1;
                wbi_set_msg(sv, "converged to working precision after %d "
                            "iterations (E = %.6g, |g|_inf = %.3g; the model "
                            "predicts a decrease of %.3g)", it, f, gnorm,
                            fresh_pred);
            } else { /* tiny only because rejections inflated mu */
                why = WB_STOP_STALLED;
                st = WB_STALLED;
                wbi_set_msg(sv, "stalled: after %d rejected steps the step "
                            "(%.3g) fell below step_tol with |g|_inf = %.3g",
                            rejected, snorm, gnorm);
            }
            break;
        }
        for (int i = 0; i < n; i++) sv->xt[i] = sv->x[i] + sv->sd[i];
        st = wbi_eval(sv, sv->xt, w, &ft, sv->gt);
        if (st == WB_ENONFINITE && nonfinite_run < MAX_NONFINITE) {
            /* E or g not finite at the trial point (overflow, outside the
               energy's domain): reject the step and shrink, as a trust
               region does; give up after MAX_NONFINITE in a row. */
            nonfinite_run++;
            if (mf) {
                delta = 0.25 * fmin(delta, snorm);
            } else {
                mu *= nu;
                nu *= 2;
            }
            rejected++;
            st = WB_OK;
            if (s->verbose)
                fprintf(stderr, "wiberg: it %4d  non-finite E or gradient at "
                        "the trial point: step rejected, mu %.2e\n", it, mu);
            continue;
        }
        if (st != WB_OK) {
            if (st == WB_ENONFINITE)
                wbi_set_msg(sv, "value_grad returned non-finite values at %d "
                            "trial points in a row (last at evaluation %d)",
                            nonfinite_run + 1, sv->evals);
            why = WB_STOP_ERROR;
            break;
        }
        nonfinite_run = 0;
        /* pred = m(0) - m(s) = -(g's + 1/2 s'Hs) */
        st = wbi_hess_mul(sv, sv->sd, sv->hs);
        if (st != WB_OK) { why = WB_STOP_ERROR; break; }
        double pred = -(wbi_dot(n, sv->g, sv->sd) + 0.5 * wbi_dot(n, sv->sd, sv->hs));
        double actual = f - ft;
        double rho = pred > 0 ? actual / pred : (actual > 0 ? 1.0 : -1.0);
        int accepted = rho > ETA && ft <= f;
        int fresh = rejected == 0, rounding = 0;
        if (fresh) fresh_pred = pred;
        if (pred <= 32 * DBL_EPSILON * fabs(f) &&
            fabs(actual) <= 32 * DBL_EPSILON * fabs(f)) {
            /* Both reductions are at the rounding level of E: rho is noise.
               Judge the step by the gradient instead (a Newton-like step
               near a minimizer shrinks it). */
            accepted = wbi_nrm2(n, sv->gt) < wbi_nrm2(n, sv->g);
            rho = accepted ? 1.0 : 0.0;
            rounding = 1;
            if (!accepted && rejected == 0) {
                /* A fresh (not rejection-inflated) step predicts a decrease
                   below the rounding level of E and does not shrink the
                   gradient: x is a minimizer to working precision. */
                why = WB_STOP_PRECISION;
                wbi_set_msg(sv, "converged to working precision after %d "
                            "iterations (E = %.6g, |g|_inf = %.3g)", it + 1, f,
                            gnorm);
                it++;
                precision_stop = 1;
                break;
            }
        }
        double fold = f;
        if (accepted) {
            memcpy(sv->x, sv->xt, (size_t)n * sizeof(double));
            memcpy(sv->g, sv->gt, (size_t)n * sizeof(double));
            f = ft;
            gnorm = wbi_norm_inf(n, sv->g);
            if (!mf) {
                double t = 2 * rho - 1;
                mu *= fmax(1.0 / 3.0, 1 - t * t * t);
                nu = 2.0;
            }
            need_hess = 1;
            factored = 0;
            rejected = 0;
        } else if (!mf) {
            mu *= nu;
            nu *= 2;
            rejected++;
        } else {
            rejected++;
        }
        if (mf) { /* the classic radius update */
            if (rho < 0.25) delta = 0.25 * snorm;
            else if (rho > 0.75 && boundary) delta = fmin(2 * delta, 1e100);
        }
        if (s->verbose)
            fprintf(stderr, "wiberg: it %4d  E %.10e  |g| %.3e  |s| %.3e  "
                    "rho %+.2e  %s %.2e%s\n", it, f, gnorm, snorm, rho,
                    mf ? "radius" : "mu", mf ? delta : mu,
                    accepted ? "" : "  (rejected)");
        if (s->progress) {
            wb_progress pr = {it, f, gnorm, snorm, mf ? delta : mu, accepted};
            if (s->progress(s->progress_user, &pr) != 0) {
                it++;
                why = WB_STOP_CANCELED;
                st = WB_CANCELED;
                break;
            }
        }
        /* f_tol: only a fresh step judged by rho says something about x (a
           step shrunk by rejections changes E little anywhere) */
        if (accepted && fresh && !rounding && s->f_tol > 0 &&
            fabs(fold - f) <= s->f_tol * fabs(fold)) {
            it++;
            why = WB_STOP_F;
            break;
        }
    }

    if (st != WB_OK || !(why == WB_STOP_GRAD || why == WB_STOP_STEP ||
                         why == WB_STOP_PRECISION))
        break;
    /* A first-order stop: test second-order information at x (the
       stopping contract in wiberg.h). */
    if (need_hess) {
        st = wbi_hessian(sv, sv->x, w);
        hevals++;
        if (st != WB_OK) { why = WB_STOP_ERROR; break; }
        need_hess = 0;
    }
    double q = 0.0;
    int so = second_order_test(sv, f, &facts, &q);
    if (so < 0) { st = (wb_status)so; why = WB_STOP_ERROR; break; }
    factored = plain_factor = so == 1 && !mf; /* F = chol(H(x)) */
    fact_mu = 0.0;
    if (so == 3 && it >= s->max_iter) {
        /* a saddle or a maximum, and no iteration left to leave it */
        st = WB_MAXITER;
        why = WB_STOP_MAXITER;
        msg_set = 1;
        wbi_set_msg(sv, "iteration limit reached at a stationary point that "
                    "is not a minimizer (curvature %.3g along a direction; "
                    "|g|_inf = %.3g): raise max_iter to leave it", q, gnorm);
        break;
    }
    if (so == 3) {
        /* a saddle or a maximum: leave it along u */
        double r0 = mf ? fmax(delta, s->tr_radius0 * fmax(1.0, wbi_nrm2(n, sv->x)))
                       : s->tr_radius0 * fmax(1.0, wbi_nrm2(n, sv->x));
        int moved = escape_step(sv, w, &f, r0);
        if (moved < 0) { st = (wb_status)moved; why = WB_STOP_ERROR; break; }
        if (moved) {
            if (s->verbose)
                fprintf(stderr, "wiberg: it %4d  stationary point with "
                        "curvature %.3e: escaped to E %.10e\n", it, q, f);
            escapes++;
            it++;
            gnorm = wbi_norm_inf(n, sv->g);
            need_hess = 1;
            factored = plain_factor = 0;
            rejected = 0;
            precision_stop = 0;
            fresh_pred = INFINITY;
            why = WB_STOP_NONE;
            if (mf) delta = fmax(delta, r0);
            continue;
        }
        second_order = 2; /* curvature below the floor, but E cannot fall */
        curvature = q;
    } else {
        second_order = so;
    }
    if (why == WB_STOP_STEP && so == 1) {
        /* a step_tol stop is WB_OK only for a Newton-sized step: dense /
           banded s_N = -H^-1 g on the factor just made; matrix-free an
           interior Steihaug step */
        double bound = s->step_tol * (wbi_nrm2(n, sv->x) + s->step_tol), sn = 0;
        int newton;
        if (mf) {
            newton = !boundary;
        } else {
            for (int i = 0; i < n; i++) sv->sd[i] = -sv->g[i];
            wbi_factor_solve(sv, 1, sv->sd);
            sn = wbi_nrm2(n, sv->sd);
            newton = sn <= bound;
        }
        if (!newton && undamp < 3) {
            /* damping, not the model, made the step small: drop it (or
               widen the region) and go on */
            undamp++;
            if (mf) {
                delta *= 4;
            } else {
                double scale = s->scale_damping ? 1.0 : fmax(wbi_hess_diag_max(sv), 1e-300);
                mu = fmin(mu, 1e-6 * scale);
                nu = 2.0;
            }
            why = WB_STOP_NONE;
            it++;
            continue;
        }
        if (!newton) {
            st = WB_STALLED;
            msg_set = 1;
            if (mf)
                wbi_set_msg(sv, "stalled: the step fell below step_tol on "
                            "the trust-region boundary (radius %.3g) with "
                            "|g|_inf = %.3g: not a minimizer to step_tol",
                            delta, gnorm);
            else
                wbi_set_msg(sv, "stalled: the damped step fell below step_tol "
                            "but the Newton step is %.3g > %.3g (|g|_inf = "
                            "%.3g, mu = %.3g): not a minimizer to step_tol",
                            sn, bound, gnorm, mu);
        }
    }
    break;
    }

    /* x: the best (= last accepted) point; also on errors */
    memcpy(x, sv->x, (size_t)n * sizeof(double));
    if (st >= 0) {
        memcpy(sv->xs, sv->x, (size_t)n * sizeof(double));
        if (sv->p > 0 && w != sv->ws)
            memcpy(sv->ws, w, (size_t)sv->p * sizeof(double));
        sv->solved = 1;
        sv->solve_status = st;
        /* matrix-free: the operator held the caller's w pointer: re-form */
        sv->hess_valid = !mf && !need_hess && hevals > 0;
        /* the solver's factor is reusable when it is chol(H(x*) + mu I) */
        int identity = !s->scale_damping;
        sv->fact_valid = sv->hess_valid && factored && (identity || plain_factor);
        sv->fact_mu = fact_mu;
        sv->fact_rcond = -1.0;
        sv->fact_sigma = -1.0;
        sv->fs = f;
        sv->dinfo.grad_norm = gnorm;
        static const char *names[] = {"", "gradient tolerance met",
                                      "step tolerance met",
                                      "relative energy change below f_tol",
                                      "iteration limit reached", "stalled",
                                      "canceled by the progress callback", "",
                                      "converged to working precision"};
        if (why != WB_STOP_STALLED && !precision_stop && !msg_set)
            wbi_set_msg(sv, "%s after %d iterations (E = %.6g, |g|_inf = %.3g)",
                        names[why], it, f, gnorm);
    }
    fill_info(info, sv, st, why, it, hevals, facts, f, gnorm, snorm,
              mf ? delta : mu);
    if (info) {
        info->escapes = escapes;
        info->second_order = st == WB_OK ? second_order : 0;
        info->curvature = second_order == 2 ? curvature : 0.0;
    }
    return st;
}
