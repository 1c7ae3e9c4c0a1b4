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
#include <limits.h>
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
                    sv->B,  sv->v,  sv->work, sv->iwork, sv->xs, sv->ws, sv->pbuf, sv->hx, sv->hd, sv->cgw, sv->hs, sv->x0,
                    sv->lb_s, sv->lb_y, sv->lb_rho, sv->lb_a};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) wbi_free(&s, bufs[i]);
    wbi_sparse_destroy(sv);
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
    /* L-BFGS: its own steps, the matrix-free operator for the rest */
    sv->lbfgs = kind == WB_HESS_LBFGS;
    if (sv->lbfgs) kind = WB_HESS_MATRIX_FREE;
    sv->kind = kind;
    sv->kd = sv->kd_cap = kind == WB_HESS_BANDED ? e->kd : 0;
    size_t n = (size_t)e->n, p = (size_t)(e->p > 0 ? e->p : 1);
    size_t hsize = kind == WB_HESS_DENSE    ? n * n
                   : kind == WB_HESS_BANDED ? ((size_t)sv->kd + 1) * n
                   : kind == WB_HESS_SPARSE ? (size_t)e->hess_nnz
                                            : 1;
    size_t fsize = kind == WB_HESS_SPARSE ? 1 : hsize; /* CHOLMOD holds L */
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
    sv->F = zalloc(&st, fsize, sizeof(double), &ok);
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
    sv->lb_m = sv->lbfgs ? st.lbfgs_memory : 1;
    size_t lm = (size_t)sv->lb_m;
    sv->lb_s = zalloc(&st, sv->lbfgs ? lm * n : 1, sizeof(double), &ok);
    sv->lb_y = zalloc(&st, sv->lbfgs ? lm * n : 1, sizeof(double), &ok);
    sv->lb_rho = zalloc(&st, lm, sizeof(double), &ok);
    sv->lb_a = zalloc(&st, lm, sizeof(double), &ok);
    if (!ok) {
        wb_solver_destroy(sv);
        return wbi_fail(WB_ENOMEM, "wb_solver_create: out of memory");
    }
    if (kind == WB_HESS_SPARSE) { /* the pattern's analysis (sparse.c) */
        wb_status r = wbi_sparse_create(sv, msg, sizeof msg);
        if (r != WB_OK) {
            wb_solver_destroy(sv);
            return wbi_fail(r, "wb_solver_create: %.200s", msg);
        }
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
    wb_hessian_kind have = sv->lbfgs ? WB_HESS_LBFGS : sv->kind;
    /* AUTO steps on hvp up to n = 256 and takes L-BFGS above: a solver
       created for a larger n (as the trainer's, for its largest example)
       holds the matrix-free operator too and keeps its L-BFGS steps */
    if (sv->s.hessian == WB_HESS_AUTO && have == WB_HESS_LBFGS &&
        kind == WB_HESS_MATRIX_FREE && e->kd == 0)
        kind = WB_HESS_LBFGS;
    if (kind != have || (kind == WB_HESS_BANDED && e->kd > sv->kd_cap)) {
        wbi_set_msg(sv, "wb_solver_set_energy: the energy needs another "
                    "Hessian storage (kind %d, kd = %d) than the solver was "
                    "created with (kind %d, kd <= %d)", (int)kind, e->kd,
                    (int)have, sv->kd_cap);
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
    if (kind == WB_HESS_SPARSE) {
        wb_status r = wbi_sparse_set_pattern(sv, e);
        if (r != WB_OK) return r;
    }
    sv->e = *e;
    sv->n = e->n;
    if (kind == WB_HESS_BANDED) sv->kd = e->kd;
    sv->solved = 0;
    sv->fact_valid = 0;
    sv->hess_valid = 0;
    return WB_OK;
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
    info->hess_approx = wbi_hess_is_approx(sv);
    info->mixed_approx = sv->e.mixed_vjp == NULL && sv->e.mixed == NULL;
    info->hessian = sv->lbfgs ? WB_HESS_LBFGS : sv->kind;
    info->cg_iterations = (int)sv->cg_its;
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
    wb_status dst = wbi_hess_diag_load(sv); /* matrix-free: the scale */
    if (dst != WB_OK) return dst;
    double floor_ = wbi_curv_floor(sv, factor, f, sv->x, wbi_hess_diag_max(sv),
                                   NULL);
    *q = 0.0;
    if (sv->kind != WB_HESS_MATRIX_FREE) {
        (*facts)++;
        int info = wbi_factor(sv, 0.0, NULL); /* H = L L' ? */
        if (info == 0) return 1;
        if (info < 0) return info; /* sparse: CHOLMOD failed */
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
    int maxit = sv->s.cg_max_iter > 0 ? sv->s.cg_max_iter : (n < 245 ? 2 * n + 10 : 500);
    int found = 0;
    double rqmin = INFINITY, rqmax = 0.0;
    wb_status st = wbi_negcurv(sv, maxit, floor_, NULL, sv->sd, q, &found,
                               &rqmin, &rqmax);
    if (st != WB_OK) return st;
    if (found) return 3;
    return sv->kind == WB_HESS_MATRIX_FREE ? 1 : 2;
}

/* Matrix-free: is H(x) singular to working precision, in the unknowns'
   own units? CG on D H D, D = diag(max(|x_i|, typ_i)) (wbi_negcurv with a
   scale; D in sv->work): *singular = 1 when a direction meets curvature
   <= 0, or |d'DHDd| / d'd <= 32 eps rq_max (rq_max: the largest such
   quotient, ~||DHD||; lambda_min(DHD) <= every quotient): H is singular
   to the rounding of its own entries. Then a tiny Newton step or a tiny
   predicted decrease proves nothing: E can still fall along that
   direction at higher order (as where two exponential terms of a fit
   merge into one: Lanczos1 from NIST's first start, scaled curvature
   ratio 4e-17). Scaled, a fit whose parameters span 1e-7..1 (Hahn1) is
   not called singular for its units alone; and the bound is eps, not
   eps_H: an unknown of size 1e-7 with an O(1) curvature in its own units
   beside an O(1) one has a ratio of 1e-14 and is well determined by g. */
static wb_status mf_singular(wb_solver *sv, int maxit, int *singular) {
    int n = sv->n;
    double *D = sv->work; /* [3n]: not used by the products or CG */
    for (int i = 0; i < n; i++) D[i] = fmax(fabs(sv->x[i]), wbi_typ_x(sv, i));
    double q = 0.0, rqmin = INFINITY, rqmax = 0.0;
    int found = 0;
    wb_status st = wbi_negcurv(sv, maxit, 0.0, D, sv->sd, &q, &found, &rqmin,
                               &rqmax);
    if (st != WB_OK) return st;
    *singular = found || rqmin <= 32 * DBL_EPSILON * rqmax;
    return WB_OK;
}

/* Leaves a stationary point along the unit direction u = sv->sd of
   negative curvature: x + t r u, t = sign(-g'u) first (then -t), r = r0
   halved until E decreases by more than its rounding, 32 eps |E| (60
   halvings at most; a non-finite E counts as no decrease: a "decrease" at
   the rounding level of E proves nothing and, taken, can repeat forever at
   the same E). Returns 1 (sv->x, sv->g, *f moved), 0 (no decrease found),
   or a negative status. */
static int escape_step(wb_solver *sv, const double *w, double *f, double r0) {
    int n = sv->n;
    double t = wbi_dot(n, sv->g, sv->sd) > 0 ? -1.0 : 1.0, r = r0, ft;
    double round = 32 * DBL_EPSILON * fabs(*f);
    for (int k = 0; k < 60; k++, r *= 0.5)
        for (int side = 0; side < 2; side++) {
            double a = (side ? -t : t) * r;
            for (int i = 0; i < n; i++) sv->xt[i] = sv->x[i] + a * sv->sd[i];
            wb_status st = wbi_eval(sv, sv->xt, w, &ft, sv->gt);
            if (st == WB_ENONFINITE) continue;
            if (st != WB_OK) return st;
            if (ft < *f - round) {
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

/* ---- the driver ------------------------------------------------------------ */

/* The state of one solve, shared by the driver's helpers. */
typedef struct solve_state {
    const double *w;     /* [p] the parameters                           */
    double f, ft;        /* E at x, at the trial point                   */
    double gnorm;        /* ||g||_inf at x                               */
    double mu, nu;       /* damping and its rejection factor (dense)     */
    double delta;        /* trust radius (matrix-free)                   */
    double snorm;        /* ||s||_2 of the last step                     */
    double fresh_pred;   /* m(0) - m(s) of the last fresh step           */
    double fact_mu;      /* sv->F = chol(H + fact_mu D)                  */
    double curvature;    /* second_order 2: the curvature found          */
    int it, hevals, facts;
    int need_hess;       /* H is not yet formed at x                      */
    int factored;        /* sv->F holds a factor at x                     */
    int plain_factor;    /* ... and it is chol(H), no damping             */
    int rejected;        /* rejected steps since the last accepted one   */
    int nonfinite_run;   /* non-finite trial points in a row             */
    int precision_stop, msg_set;
    int mf, boundary;    /* matrix-free; the last step on the boundary    */
    int escapes, second_order;
    int loop_h;          /* Hessians formed by the iterations (not the test) */
    int undamp;          /* step_tol stops undone by dropping the damping */
    int tight;           /* matrix-free: Newton-accurate CG steps from now */
    int qn;              /* L-BFGS steps (step_lbfgs.c)                   */
    double qn_t;         /* L-BFGS: the last line search's step length    */
    int max_it;          /* the iteration cap (max_iter; L-BFGS: its own) */
    wb_stop_reason why;
    wb_status st;
} solve_state;

enum { GO_ON = 0, STOP = 1 };

/* Forms H at x for the next step (and, the first time, the damping or
   the radius). */
static int form_hessian(wb_solver *sv, solve_state *S) {
    const wb_settings *s = &sv->s;
    int n = sv->n;
    S->st = wbi_hessian(sv, sv->x, S->w);
    S->hevals++;
    S->loop_h++;
    if (S->st != WB_OK) { S->why = WB_STOP_ERROR; return STOP; }
    if (S->mf) {
        if (S->loop_h == 1)
            S->delta = s->tr_radius0 * fmax(1.0, wbi_nrm2(n, sv->x));
    } else {
        wbi_lm_scaling(sv, S->loop_h == 1);
    }
    if (S->loop_h == 1 && !S->mf) {
        double dmax = 0.0;
        for (int i = 0; i < n; i++)
            dmax = fmax(dmax, fabs(wbi_hess_diag(sv, i)));
        double m0 = s->mu0;
        S->mu = s->scale_damping ? m0 : m0 * (dmax > 0 ? dmax : 1.0);
    }
    S->need_hess = 0;
    return GO_ON;
}

/* The step s = sv->sd by the storage's strategy: Steihaug CG in the trust
   region (matrix-free), damped Cholesky (dense, banded). */
static int compute_step(wb_solver *sv, solve_state *S) {
    const wb_settings *s = &sv->s;
    int n = sv->n;
    if (S->mf) {
        /* s ~ argmin g's + 1/2 s'Hs, ||s|| <= delta; CG to a relative
           residual min(0.5, sqrt||g||) (superlinear near x*), or 1e-6
           once a small step failed the Newton test; H s (for the gain
           ratio) from CG's recurrence; difference products forward,
           from g(x) (one gradient each) */
        double gn2 = wbi_nrm2(n, sv->g);
        double eta = S->tight ? 1e-6 : fmin(0.5, sqrt(gn2));
        int maxit = s->cg_max_iter > 0 ? s->cg_max_iter : (n < 500 ? n : 500);
        int its = 0, met = 0;
        sv->hg = sv->g;
        S->st = wbi_steihaug(sv, S->delta, eta * gn2, maxit, sv->sd, sv->hs,
                             &S->boundary, &met, &its);
        sv->hg = NULL;
        sv->cg_its += its;
        if (S->st != WB_OK) { S->why = WB_STOP_ERROR; return STOP; }
        return GO_ON;
    }
    int lm = wbi_lm_step(sv, &S->mu, MU_MAX, &S->facts, sv->sd);
    if (lm < 0) { /* sparse: CHOLMOD failed (message set) */
        S->factored = 0;
        S->st = (wb_status)lm;
        S->why = WB_STOP_ERROR;
        return STOP;
    }
    if (lm != 0) {
        S->factored = 0;
        S->why = WB_STOP_STALLED;
        S->st = WB_STALLED;
        wbi_set_msg(sv, "damping exceeded %g without a positive definite "
                    "H + mu D", MU_MAX);
        return STOP;
    }
    S->factored = 1;
    S->plain_factor = 0; /* F = chol(H + mu D) */
    S->fact_mu = S->mu;
    return GO_ON;
}

/* A step below step_tol, fresh: take this last Newton-like correction
   x + t sd when it does not make things worse (one evaluation). */
static void polish(wb_solver *sv, solve_state *S, double t) {
    int n = sv->n;
    for (int i = 0; i < n; i++) sv->xt[i] = sv->x[i] + t * sv->sd[i];
    if (wbi_eval(sv, sv->xt, S->w, &S->ft, sv->gt) == WB_OK &&
        (S->ft < S->f || (S->ft == S->f &&
                          wbi_nrm2(n, sv->gt) < wbi_nrm2(n, sv->g)))) {
        memcpy(sv->x, sv->xt, (size_t)n * sizeof(double));
        memcpy(sv->g, sv->gt, (size_t)n * sizeof(double));
        S->f = S->ft;
        S->gnorm = wbi_norm_inf(n, sv->g);
        S->need_hess = 1;
    }
}

/* A step below step_tol: which stop it is. */
static void small_step_stop(wb_solver *sv, solve_state *S) {
    if (S->rejected == 0) { /* the undamped-as-usual step is tiny */
        S->why = WB_STOP_STEP;
        polish(sv, S, 1.0);
    } else if (S->nonfinite_run > 0) {
        S->why = WB_STOP_ERROR;
        S->st = WB_ENONFINITE;
        wbi_set_msg(sv, "value_grad returned non-finite values at %d "
                    "trial points in a row (last at evaluation %d)",
                    S->nonfinite_run, sv->evals);
    } else if (S->fresh_pred <= 1e3 * DBL_EPSILON * fabs(S->f)) {
        /* the last fresh (near-Newton) step predicted a decrease
           below 1e3 eps |E|, and no step since could realize even
           that: a minimizer to working precision */
        S->why = WB_STOP_PRECISION;
        S->precision_stop = 1;
        wbi_set_msg(sv, "converged to working precision after %d "
                    "iterations (E = %.6g, |g|_inf = %.3g; the model "
                    "predicts a decrease of %.3g)", S->it, S->f, S->gnorm,
                    S->fresh_pred);
    } else { /* tiny only because rejections inflated mu */
        S->why = WB_STOP_STALLED;
        S->st = WB_STALLED;
        wbi_set_msg(sv, "stalled: after %d rejected steps the step "
                    "(%.3g) fell below step_tol with |g|_inf = %.3g",
                    S->rejected, S->snorm, S->gnorm);
    }
}

/* Shrinks the region (matrix-free) or raises the damping after a
   rejected step. */
static void reject(solve_state *S) {
    if (!S->mf) {
        S->mu *= S->nu;
        S->nu *= 2;
    }
    S->rejected++;
}

/* E and g at the trial point x + s: GO_ON (evaluated, finite), STOP, or
   -1 (non-finite there: rejected, next iteration). */
static int trial_point(wb_solver *sv, solve_state *S) {
    int n = sv->n;
    for (int i = 0; i < n; i++) sv->xt[i] = sv->x[i] + sv->sd[i];
    S->st = wbi_eval(sv, sv->xt, S->w, &S->ft, sv->gt);
    if (S->st == WB_ENONFINITE && S->nonfinite_run < MAX_NONFINITE) {
        /* E or g not finite at the trial point (overflow, outside the
           energy's domain): reject the step and shrink, as a trust
           region does; give up after MAX_NONFINITE in a row. */
        S->nonfinite_run++;
        if (S->mf) S->delta = 0.25 * fmin(S->delta, S->snorm);
        reject(S);
        S->st = WB_OK;
        if (sv->s.verbose)
            fprintf(stderr, "wiberg: it %4d  non-finite E or gradient at "
                    "the trial point: step rejected, mu %.2e\n", S->it, S->mu);
        return -1;
    }
    if (S->st != WB_OK) {
        if (S->st == WB_ENONFINITE)
            wbi_set_msg(sv, "value_grad returned non-finite values at %d "
                        "trial points in a row (last at evaluation %d)",
                        S->nonfinite_run + 1, sv->evals);
        S->why = WB_STOP_ERROR;
        return STOP;
    }
    S->nonfinite_run = 0;
    return GO_ON;
}

/* The verbose line and the progress callback of an iteration (wb_progress.
   mu: the damping, the trust radius, or L-BFGS's step length t); STOP when
   the callback asks to. */
static int report(wb_solver *sv, solve_state *S, double rho, int accepted) {
    const wb_settings *s = &sv->s;
    double mu = S->qn ? S->qn_t : S->mf ? S->delta : S->mu;
    if (s->verbose && S->qn) /* rho: the line search's evaluations */
        fprintf(stderr, "wiberg: it %4d  E %.10e  |g| %.3e  |s| %.3e  "
                "evals %2d  t %.2e%s\n", S->it, S->f, S->gnorm, S->snorm,
                (int)rho, mu, accepted ? "" : "  (memory dropped)");
    else if (s->verbose)
        fprintf(stderr, "wiberg: it %4d  E %.10e  |g| %.3e  |s| %.3e  "
                "rho %+.2e  %s %.2e%s\n", S->it, S->f, S->gnorm, S->snorm, rho,
                S->mf ? "radius" : "mu", mu, accepted ? "" : "  (rejected)");
    if (s->progress) {
        wb_progress pr = {S->it, S->f, S->gnorm, S->snorm, mu, accepted};
        if (s->progress(s->progress_user, &pr) != 0) {
            S->it++;
            S->why = WB_STOP_CANCELED;
            S->st = WB_CANCELED;
            return STOP;
        }
    }
    return GO_ON;
}

/* The gain ratio of the trial point, acceptance, the damping or radius
   update, the report, and the stops an iteration can make. */
static int judge_step(wb_solver *sv, solve_state *S) {
    const wb_settings *s = &sv->s;
    int n = sv->n;
    /* pred = m(0) - m(s) = -(g's + 1/2 s'Hs); matrix-free H s came with
       the step (the CG recurrence). Damped Cholesky (dense, banded,
       sparse): (H + mu D) s = -g gives s'Hs = -g's - mu s'Ds, so
         pred = 1/2 (-g's + mu s'Ds),
       a sum of two terms >= 0 (no cancellation) and no product with H:
       O(n) instead of the n^2 of a dense product. Exact for the H + E
       the factorization's backward error E (|E| ~ n eps |H|) solved with,
       as rounding in H s would be for H itself. */
    double gs = wbi_dot(n, sv->g, sv->sd), pred;
    if (S->mf) {
        pred = -(gs + 0.5 * wbi_dot(n, sv->sd, sv->hs));
    } else {
        double sds = 0.0;
        for (int i = 0; i < n; i++) sds += sv->D[i] * sv->sd[i] * sv->sd[i];
        pred = 0.5 * (-gs + S->fact_mu * sds);
    }
    double actual = S->f - S->ft;
    double rho = pred > 0 ? actual / pred : (actual > 0 ? 1.0 : -1.0);
    int accepted = rho > ETA && S->ft <= S->f;
    int fresh = S->rejected == 0, rounding = 0;
    if (fresh) S->fresh_pred = pred;
    if (pred <= 32 * DBL_EPSILON * fabs(S->f) &&
        fabs(actual) <= 32 * DBL_EPSILON * fabs(S->f)) {
        /* Both reductions are at the rounding level of E: rho is noise.
           Judge the step by the gradient instead (a Newton-like step
           near a minimizer shrinks it). */
        accepted = wbi_nrm2(n, sv->gt) < wbi_nrm2(n, sv->g);
        rho = accepted ? 1.0 : 0.0;
        rounding = 1;
        if (!accepted && S->rejected == 0) {
            /* A fresh (not rejection-inflated) step predicts a decrease
               below the rounding level of E and does not shrink the
               gradient: x is a minimizer to working precision. */
            S->why = WB_STOP_PRECISION;
            wbi_set_msg(sv, "converged to working precision after %d "
                        "iterations (E = %.6g, |g|_inf = %.3g)", S->it + 1,
                        S->f, S->gnorm);
            S->it++;
            S->precision_stop = 1;
            return STOP;
        }
    }
    double fold = S->f;
    if (accepted) {
        memcpy(sv->x, sv->xt, (size_t)n * sizeof(double));
        memcpy(sv->g, sv->gt, (size_t)n * sizeof(double));
        S->f = S->ft;
        S->gnorm = wbi_norm_inf(n, sv->g);
        if (!S->mf) {
            double t = 2 * rho - 1;
            S->mu *= fmax(1.0 / 3.0, 1 - t * t * t);
            S->nu = 2.0;
        }
        S->need_hess = 1;
        S->factored = 0;
        S->rejected = 0;
    } else {
        reject(S);
    }
    if (S->mf) { /* the classic radius update */
        if (rho < 0.25) S->delta = 0.25 * S->snorm;
        else if (rho > 0.75 && S->boundary) S->delta = fmin(2 * S->delta, 1e100);
    }
    if (report(sv, S, rho, accepted) == STOP) return STOP;
    /* f_tol: only a fresh step judged by rho says something about x (a
       step shrunk by rejections changes E little anywhere) */
    if (accepted && fresh && !rounding && s->f_tol > 0 &&
        fabs(fold - S->f) <= s->f_tol * fabs(fold)) {
        S->it++;
        S->why = WB_STOP_F;
        return STOP;
    }
    return GO_ON;
}

/* One L-BFGS iteration (the strategy in step_lbfgs.c): a direction and a
   line search; the stops it can make. */
static int qn_iteration(wb_solver *sv, solve_state *S) {
    const wb_settings *s = &sv->s;
    int n = sv->n;
    double bound = s->step_tol * (wbi_nrm2(n, sv->x) + s->step_tol);
    wbi_qn_step q;
    S->st = wbi_lbfgs_step(sv, S->w, S->f, bound, &q);
    if (S->st != WB_OK) { S->why = WB_STOP_ERROR; return STOP; }
    S->snorm = q.snorm;
    S->qn_t = q.t;
    switch (q.outcome) {
    case WBI_QN_SMALL: /* the second-order test checks the Newton step */
        S->why = WB_STOP_STEP;
        polish(sv, S, q.t);
        return STOP;
    case WBI_QN_PRECISION:
        S->why = WB_STOP_PRECISION;
        S->precision_stop = 1;
        S->it++;
        wbi_set_msg(sv, "converged to working precision after %d "
                    "iterations (E = %.6g, |g|_inf = %.3g; no decrease along "
                    "-g, the Newton step predicts %.3g)", S->it, S->f,
                    S->gnorm, q.pred);
        return STOP;
    case WBI_QN_FAILED:
        S->why = WB_STOP_STALLED;
        S->st = WB_STALLED;
        S->it++;
        wbi_set_msg(sv, "stalled: no decrease of E along -g nor along "
                    "Newton steps in shrinking regions (|g|_inf = %.3g; the "
                    "last predicts %.3g): is the gradient that of E?",
                    S->gnorm, q.pred);
        return STOP;
    case WBI_QN_RESET:
        return report(sv, S, q.trials, 0);
    default: /* WBI_QN_MOVED */
        break;
    }
    double fold = S->f;
    memcpy(sv->x, sv->xt, (size_t)n * sizeof(double));
    memcpy(sv->g, sv->gt, (size_t)n * sizeof(double));
    S->f = q.ft;
    S->gnorm = wbi_norm_inf(n, sv->g);
    S->need_hess = 1; /* the second-order test's operator moves with x */
    if (report(sv, S, q.trials, 1) == STOP) return STOP;
    if (s->f_tol > 0 && fabs(fold - S->f) <= s->f_tol * fabs(fold)) {
        S->it++;
        S->why = WB_STOP_F;
        return STOP;
    }
    return GO_ON;
}

/* One iteration: GO_ON (next iteration) or STOP (S->why says which). */
static int iteration(wb_solver *sv, solve_state *S) {
    const wb_settings *s = &sv->s;
    int n = sv->n;
    if (S->gnorm <= s->grad_tol) { S->why = WB_STOP_GRAD; return STOP; }
    if (S->it >= S->max_it) {
        S->why = WB_STOP_MAXITER;
        S->st = WB_MAXITER;
        return STOP;
    }
    if (S->qn) return qn_iteration(sv, S);
    if (S->need_hess && form_hessian(sv, S) == STOP) return STOP;
    if (compute_step(sv, S) == STOP) return STOP;
    S->snorm = wbi_nrm2(n, sv->sd);
    if (!isfinite(S->snorm)) {
        S->why = WB_STOP_ERROR;
        S->st = WB_ENONFINITE;
        wbi_set_msg(sv, "non-finite step (mu = %g)", S->mu);
        return STOP;
    }
    if (S->snorm <= s->step_tol * (wbi_nrm2(n, sv->x) + s->step_tol)) {
        small_step_stop(sv, S);
        return STOP;
    }
    int tp = trial_point(sv, S);
    if (tp != GO_ON) return tp == STOP ? STOP : GO_ON;
    return judge_step(sv, S);
}

/* After a first-order stop (gradient, step, precision): the second-order
   test at x (the stopping contract in wiberg.h). GO_ON: x was left (an
   escape, or the damping dropped): iterate on. STOP: the solve ends. */
static int stationary_point(wb_solver *sv, solve_state *S) {
    const wb_settings *s = &sv->s;
    int n = sv->n;
    if (S->need_hess) {
        S->st = wbi_hessian(sv, sv->x, S->w);
        S->hevals++;
        if (S->st != WB_OK) { S->why = WB_STOP_ERROR; return STOP; }
        S->need_hess = 0;
    }
    double q = 0.0;
    int singular = 0;
    int so = second_order_test(sv, S->f, &S->facts, &q);
    if (so < 0) { S->st = (wb_status)so; S->why = WB_STOP_ERROR; return STOP; }
    S->factored = S->plain_factor = so == 1 && !S->mf; /* F = chol(H(x)) */
    S->fact_mu = 0.0;
    if (so == 3 && S->it >= S->max_it) {
        /* a saddle or a maximum, and no iteration left to leave it */
        S->st = WB_MAXITER;
        S->why = WB_STOP_MAXITER;
        S->msg_set = 1;
        wbi_set_msg(sv, "iteration limit reached at a stationary point that "
                    "is not a minimizer (curvature %.3g along a direction; "
                    "|g|_inf = %.3g): raise max_iter to leave it", q, S->gnorm);
        return STOP;
    }
    if (so == 3) {
        /* a saddle or a maximum: leave it along u */
        double r0 = S->mf ? fmax(S->delta, s->tr_radius0 * fmax(1.0, wbi_nrm2(n, sv->x)))
                          : s->tr_radius0 * fmax(1.0, wbi_nrm2(n, sv->x));
        int moved = escape_step(sv, S->w, &S->f, r0);
        if (moved < 0) { S->st = (wb_status)moved; S->why = WB_STOP_ERROR; return STOP; }
        if (moved) {
            if (s->verbose)
                fprintf(stderr, "wiberg: it %4d  stationary point with "
                        "curvature %.3e: escaped to E %.10e\n", S->it, q, S->f);
            S->escapes++;
            S->it++;
            S->gnorm = wbi_norm_inf(n, sv->g);
            S->need_hess = 1;
            S->factored = S->plain_factor = 0;
            S->rejected = 0;
            S->precision_stop = 0;
            S->fresh_pred = INFINITY;
            S->why = WB_STOP_NONE;
            if (S->mf) S->delta = fmax(S->delta, r0);
            if (S->qn) wbi_lbfgs_reset(sv); /* another region */
            return GO_ON;
        }
        S->second_order = 2; /* curvature below the floor, but E cannot fall */
        S->curvature = q;
    } else {
        S->second_order = so;
    }
    /* Matrix-free and L-BFGS: a step or working-precision stop is WB_OK
       only when the Newton check below passes, whatever the second-order
       test said (its products can be wrong where the unknowns' scales
       differ widely, and second_order 2 -- curvature below -floor along
       which E does not fall -- is a contradiction the check must settle) */
    int mf_check = (S->mf || S->qn) &&
                   (S->why == WB_STOP_STEP || S->why == WB_STOP_PRECISION);
    if ((S->why == WB_STOP_STEP && so == 1) || mf_check) {
        /* a step_tol stop is WB_OK only for a Newton-sized step: dense /
           banded s_N = -H^-1 g on the factor just made; matrix-free an
           interior Steihaug step */
        double bound = s->step_tol * (wbi_nrm2(n, sv->x) + s->step_tol), sn = 0;
        double pred = INFINITY;
        int newton, nc = 0, met = 0;
        if (S->mf || S->qn) {
            /* the Newton step itself, not the last (forcing-term) step:
               CG on H s = -g (L-BFGS: in the unknowns' scale, on D H D,
               D = diag(max(|x|, typ_x)), wbi_cg_scaled) with no region to
               relative residual 1e-6, on central difference products
               (scaled per unknown) or hvp;
               not reached (or curvature <= 0 met) is no proof. Passed
               when s_N is below step_tol or its model decrease
               pred = -(g's + 1/2 s'Hs) is below 1e3 eps |E| (E cannot
               fall further: converged to working precision). CG needs
               more than n steps in floating point on ill-conditioned H. */
            int maxit = s->cg_max_iter > 0 ? s->cg_max_iter
                                           : (n < 245 ? 2 * n + 10 : 500);
            int its = 0;
            sv->hg = NULL; /* central products */
            S->st = mf_singular(sv, maxit, &singular);
            if (S->st != WB_OK) { S->why = WB_STOP_ERROR; return STOP; }
            /* L-BFGS: in the unknowns' scale D = max(|x|, typ_x), left in
               sv->work by mf_singular (cg.c: wbi_cg_scaled): its stops
               come from pairs that can hold the stiff directions only, and
               on H itself CG met 1e-6 there with the soft ones unsolved
               (NIST Hahn1 start 1: WB_OK at 17 times the minimum).
               Matrix-free steps keep CG on H: the check's failure steers
               their trust region (S->tight) and was measured right there */
            if (S->qn)
                S->st = wbi_cg_scaled(sv, sv->work, 1e-6, maxit, sv->sd, sv->hs, &nc, &met, &its);
            else
                S->st = wbi_steihaug(sv, 0.0, 1e-6 * wbi_nrm2(n, sv->g), maxit,
                                     sv->sd, sv->hs, &nc, &met, &its);
            sv->cg_its += its;
            if (S->st != WB_OK) { S->why = WB_STOP_ERROR; return STOP; }
            sn = wbi_nrm2(n, sv->sd);
            pred = -(wbi_dot(n, sv->g, sv->sd) + 0.5 * wbi_dot(n, sv->sd, sv->hs));
            newton = met && !nc && !singular &&
                     (sn <= bound || pred <= 1e3 * DBL_EPSILON * fabs(S->f));
            if (!newton && S->mf) S->tight = 1;
        } else {
            for (int i = 0; i < n; i++) sv->sd[i] = -sv->g[i];
            wbi_factor_solve(sv, 1, sv->sd);
            sn = wbi_nrm2(n, sv->sd);
            newton = sn <= bound;
        }
        if (!newton && S->undamp < 3) {
            /* damping, not the model, made the step small: drop it (or
               widen the region) and go on */
            S->undamp++;
            if (S->qn) {
                /* the pairs, not the energy, made the step small: take
                   the truncated-Newton step the check's model offers
                   (step_lbfgs.c; not counted when it lowers E by more
                   than its rounding: progress, as on an ill-conditioned
                   fit whose pairs keep stalling), and start again from
                   -g with a step of the trust radius */
                wbi_qn_step qs;
                S->st = wbi_lbfgs_newton(sv, S->w, S->f, &qs);
                if (S->st != WB_OK) { S->why = WB_STOP_ERROR; return STOP; }
                if (qs.outcome == WBI_QN_MOVED) {
                    if (qs.ft < S->f - 32 * DBL_EPSILON * fabs(S->f)) S->undamp--;
                    memcpy(sv->x, sv->xt, (size_t)n * sizeof(double));
                    memcpy(sv->g, sv->gt, (size_t)n * sizeof(double));
                    S->f = qs.ft;
                    S->gnorm = wbi_norm_inf(n, sv->g);
                    S->need_hess = 1;
                }
                wbi_lbfgs_reset(sv);
                sv->lb_last = 0.0;
            } else if (S->mf) {
                /* the check's Newton step s_N (in sv->sd) as a line:
                   x + t s_N, t = 1, 1/4, ... (8 tries) while E does not
                   fall by more than its rounding; taken, it is progress
                   and not counted against the retries */
                double round = 32 * DBL_EPSILON * fabs(S->f), t = 1.0, ft;
                if (wbi_dot(n, sv->g, sv->sd) < 0)
                    for (int k = 0; k < 8; k++, t *= 0.25) {
                        for (int i = 0; i < n; i++) sv->xt[i] = sv->x[i] + t * sv->sd[i];
                        wb_status est = wbi_eval(sv, sv->xt, S->w, &ft, sv->gt);
                        if (est == WB_ENONFINITE) continue;
                        if (est != WB_OK) { S->st = est; S->why = WB_STOP_ERROR; return STOP; }
                        if (ft < S->f - round) {
                            memcpy(sv->x, sv->xt, (size_t)n * sizeof(double));
                            memcpy(sv->g, sv->gt, (size_t)n * sizeof(double));
                            S->f = ft;
                            S->gnorm = wbi_norm_inf(n, sv->g);
                            S->need_hess = 1;
                            S->undamp--;
                            break;
                        }
                    }
                S->delta *= 4;
            } else {
                double scale = s->scale_damping ? 1.0 : fmax(wbi_hess_diag_max(sv), 1e-300);
                S->mu = fmin(S->mu, 1e-6 * scale);
                S->nu = 2.0;
            }
            S->why = WB_STOP_NONE;
            S->precision_stop = 0;
            S->fresh_pred = INFINITY;
            S->it++;
            return GO_ON;
        }
        if (!newton) {
            S->st = WB_STALLED;
            S->msg_set = 1;
            if (S->mf || S->qn)
                wbi_set_msg(sv, "stalled: %s, but the Newton check failed: "
                            "%s; the Newton step (CG on H s = -g, %s) is "
                            "%.3g (bound %.3g) and predicts a decrease of "
                            "%.3g (rounding 1e3 eps |E| = %.3g) (E = %.6g, "
                            "|g|_inf = %.3g, %s %.3g): not a minimizer the "
                            "products can certify",
                            S->why == WB_STOP_PRECISION
                                ? "no step decreases E any more"
                                : "the step fell below step_tol",
                            singular ? "H is singular to rounding in the "
                                       "unknowns' units (curvature <= 0 or "
                                       "<= 32 eps of its largest along a "
                                       "direction)"
                                     : "H is not singular to rounding",
                            nc ? "curvature <= 0 met"
                            : met ? "converged" : "not converged",
                            sn, bound, pred, 1e3 * DBL_EPSILON * fabs(S->f),
                            S->f, S->gnorm,
                            S->qn ? "L-BFGS step" : "radius",
                            S->qn ? S->snorm : S->delta);
            else
                wbi_set_msg(sv, "stalled: the damped step fell below step_tol "
                            "but the Newton step is %.3g > %.3g (|g|_inf = "
                            "%.3g, mu = %.3g): not a minimizer to step_tol",
                            sn, bound, S->gnorm, S->mu);
        }
    }
    return STOP;
}

/* x: the best (= last accepted) point, also on errors; the last solve's
   record for the implicit derivatives; the message and info. */
static wb_status finish_solve(wb_solver *sv, solve_state *S, double *x,
                              wb_info *info) {
    int n = sv->n;
    wb_status st = S->st;
    memcpy(x, sv->x, (size_t)n * sizeof(double));
    if (st >= 0) {
        memcpy(sv->xs, sv->x, (size_t)n * sizeof(double));
        if (sv->p > 0 && S->w != sv->ws)
            memcpy(sv->ws, S->w, (size_t)sv->p * sizeof(double));
        sv->solved = 1;
        sv->solve_status = st;
        /* matrix-free: the operator held the caller's w pointer: re-form */
        sv->hess_valid = !S->mf && !S->qn && !S->need_hess && S->hevals > 0;
        /* the solver's factor is reusable when it is chol(H(x*) + mu I) */
        int identity = !sv->s.scale_damping;
        sv->fact_valid = sv->hess_valid && S->factored && (identity || S->plain_factor);
        sv->fact_mu = S->fact_mu;
        sv->fact_rcond = -1.0;
        sv->fact_sigma = -1.0;
        sv->fs = S->f;
        sv->gs2 = wbi_nrm2(n, sv->g); /* the accuracy the solve reached */
        sv->dinfo.grad_norm = S->gnorm;
        static const char *names[] = {"", "gradient tolerance met",
                                      "step tolerance met",
                                      "relative energy change below f_tol",
                                      "iteration limit reached", "stalled",
                                      "canceled by the progress callback", "",
                                      "converged to working precision"};
        if (S->why != WB_STOP_STALLED && !S->precision_stop && !S->msg_set)
            wbi_set_msg(sv, "%s after %d iterations (E = %.6g, |g|_inf = %.3g)",
                        names[S->why], S->it, S->f, S->gnorm);
    }
    fill_info(info, sv, st, S->why, S->it, S->hevals, S->facts, S->f, S->gnorm,
              S->snorm, S->qn ? S->qn_t : S->mf ? S->delta : S->mu);
    if (info) {
        info->escapes = S->escapes;
        info->second_order = st == WB_OK ? S->second_order : 0;
        info->curvature = S->second_order == 2 ? S->curvature : 0.0;
    }
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
    memcpy(sv->x, x, (size_t)n * sizeof(double));
    memcpy(sv->x0, x, (size_t)n * sizeof(double));
    sv->have_x0 = 1;

    solve_state S;
    memset(&S, 0, sizeof S);
    S.w = w;
    S.st = wbi_eval(sv, sv->x, w, &S.f, sv->g);
    if (S.st != WB_OK) {
        fill_info(info, sv, S.st, WB_STOP_ERROR, 0, 0, 0, NAN, NAN, 0, 0);
        return S.st;
    }
    S.gnorm = wbi_norm_inf(n, sv->g);
    S.nu = 2.0;
    S.need_hess = 1;
    S.fresh_pred = INFINITY;
    S.why = WB_STOP_NONE;
    /* matrix-free: a trust region of radius delta, steps by Steihaug CG */
    /* L-BFGS: line searches on its pairs; the matrix-free operator only in
       the second-order test and the derivatives */
    S.qn = sv->lbfgs;
    S.mf = sv->kind == WB_HESS_MATRIX_FREE && !S.qn;
    S.max_it = sv->s.max_iter;
    if (S.qn) {
        int cap = sv->s.max_iter > INT_MAX / 10 ? INT_MAX : 10 * sv->s.max_iter;
        S.max_it = sv->s.lbfgs_max_iter > 0 ? sv->s.lbfgs_max_iter : cap;
        wbi_lbfgs_reset(sv);
        sv->lb_last = 0.0;
    }
    sv->cg_its = 0;

    for (;;) { /* until a stop that is not a saddle or maximum */
        for (;; S.it++)
            if (iteration(sv, &S) == STOP) break;
        if (S.st != WB_OK || !(S.why == WB_STOP_GRAD || S.why == WB_STOP_STEP ||
                               S.why == WB_STOP_PRECISION))
            break;
        if (stationary_point(sv, &S) == STOP) break;
    }
    return finish_solve(sv, &S, x, info);
}
