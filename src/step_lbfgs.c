/* The limited-memory BFGS step strategy (settings.hessian = WB_HESS_LBFGS):
 * no Hessian and no Hessian-vector product in the steps, one gradient per
 * line-search trial.
 *
 *   direction  d = -H_k g by the two-loop recursion (Nocedal 1980) over the
 *              last m pairs s_i = x_{i+1} - x_i, y_i = g_{i+1} - g_i,
 *              H_0 = gamma I, gamma = s'y / y'y of the newest pair
 *              (Shanno-Phua scaling); no pair yet: d = -g
 *   search     x + t d with t satisfying the strong Wolfe conditions
 *                E(x + t d) <= E(x) + c1 t g'd          c1 = 1e-4
 *                |g(x + t d)'d| <= c2 |g'd|              c2 = 0.9
 *              by More and Thuente's safeguarded cubic / quadratic
 *              interpolation (ACM TOMS 20, 1994; MINPACK-2 dcsrch/dcstep),
 *              first trial t = 1 (no pair: a step of the last step's length,
 *              or of the trust radius tr_radius0 max(1, ||x||) at the start)
 *   memory     the pair is stored when s'y > eps ||s|| ||y|| (the curvature
 *              condition makes s'y > 0; rounding can still eat it); the
 *              oldest pair gives way when m are held
 *   rounding   a trial whose predicted change |t g'd| and actual change
 *              |E(x + t d) - E(x)| are both below 32 eps |E| (the level
 *              below which E cannot tell better from worse): the search
 *              goes on with the slope alone (secant steps to g(x+td)'d =
 *              0 until the curvature condition holds) and the point is
 *              judged by the gradient: taken when it shrinks ||g||_2 (as
 *              the trust-region driver does, so L-BFGS can drive ||g||
 *              below what E resolves)
 *   failure    no acceptable point: with pairs, they are dropped and the
 *              next iteration starts from -g; without (a steepest-descent
 *              search failed: an ill-conditioned valley, or E at its
 *              rounding level), one truncated-Newton step on the
 *              matrix-free operator decides (newton_step): taken when it
 *              decreases E, converged to working precision when its model
 *              predicts a decrease below 1e3 eps |E|, stalled when 40
 *              shrinking regions fail
 *   non-finite E or g at a trial: the step is shortened towards the best
 *              point so far (x4), at most WBI_LBFGS_NONFINITE in a row
 *
 * The pairs live in buffers sized at wb_solver_create (lbfgs_memory pairs
 * of n); nothing is allocated here. The driver (solve.c) owns the stopping
 * rules, the second-order test and the implicit derivatives, which run on
 * the matrix-free operator (hvp, or differences of the gradient).
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "wb_internal.h"

#define C1 1e-4           /* sufficient decrease                         */
#define C2 0.9            /* curvature (strong Wolfe)                    */
#define XTOL 1e-16        /* relative width of the bracket: rounding     */
#define STPMIN 1e-20
#define STPMAX 1e20
#define MAX_TRIALS 20     /* evaluations per line search                 */
#define WBI_LBFGS_NONFINITE 16

void wbi_lbfgs_reset(wb_solver *sv) {
    sv->lb_k = 0;
    sv->lb_head = 0;
}

/* The slot of the i-th newest pair (0 = newest). */
static int slot(const wb_solver *sv, int i) {
    int j = sv->lb_head - 1 - i;
    return j < 0 ? j + sv->lb_m : j;
}

/* d = -H_k g, two-loop recursion:
     q = g;  for i newest..oldest:  a_i = rho_i s_i'q,  q -= a_i y_i
     r = gamma q
     for i oldest..newest:  b = rho_i y_i'r,  r += (a_i - b) s_i
     d = -r,   rho_i = 1 / (y_i's_i)                                       */
static void direction(wb_solver *sv, const double *g, double *d) {
    int n = sv->n, k = sv->lb_k;
    memcpy(d, g, (size_t)n * sizeof(double));
    for (int i = 0; i < k; i++) {
        int j = slot(sv, i);
        const double *s = sv->lb_s + (size_t)j * n, *y = sv->lb_y + (size_t)j * n;
        sv->lb_a[j] = sv->lb_rho[j] * wbi_dot(n, s, d);
        wbi_axpy(n, -sv->lb_a[j], y, d);
    }
    if (k > 0) {
        int j = slot(sv, 0);
        const double *y = sv->lb_y + (size_t)j * n;
        double gamma = 1.0 / (sv->lb_rho[j] * wbi_dot(n, y, y)); /* s'y / y'y */
        for (int i = 0; i < n; i++) d[i] *= gamma;
    }
    for (int i = k - 1; i >= 0; i--) {
        int j = slot(sv, i);
        const double *s = sv->lb_s + (size_t)j * n, *y = sv->lb_y + (size_t)j * n;
        double b = sv->lb_rho[j] * wbi_dot(n, y, d);
        wbi_axpy(n, sv->lb_a[j] - b, s, d);
    }
    for (int i = 0; i < n; i++) d[i] = -d[i];
}

/* Stores s = xt - x, y = gt - g as the newest pair when s'y > eps ||s||
   ||y||. Returns 1 stored, 0 skipped. */
static int store_pair(wb_solver *sv, const double *x, const double *xt,
                      const double *g, const double *gt) {
    int n = sv->n, j = sv->lb_head;
    double *s = sv->lb_s + (size_t)j * n, *y = sv->lb_y + (size_t)j * n;
    for (int i = 0; i < n; i++) {
        s[i] = xt[i] - x[i];
        y[i] = gt[i] - g[i];
    }
    double sy = wbi_dot(n, s, y);
    if (!(sy > DBL_EPSILON * wbi_nrm2(n, s) * wbi_nrm2(n, y))) return 0;
    sv->lb_rho[j] = 1.0 / sy;
    sv->lb_head = (j + 1) % sv->lb_m;
    if (sv->lb_k < sv->lb_m) sv->lb_k++;
    return 1;
}

/* ---- More-Thuente ---------------------------------------------------------- */

/* gamma = sqrt(theta^2 - a b), scaled by s = max(|theta|, |a|, |b|)
   against overflow (and 0 where rounding makes the root's argument < 0) */
static double cubic_gamma(double theta, double a, double b) {
    double s = fmax(fmax(fabs(theta), fabs(a)), fabs(b));
    return s * sqrt(fmax(0.0, (theta / s) * (theta / s) - (a / s) * (b / s)));
}

/* MINPACK-2 dcstep: a safeguarded step for the interval [stx, sty] (the
   step with the least f so far, the other end) from the trial stp with
   value fp and slope dp. Four cases (More-Thuente section 4): a higher
   f (the minimizer is bracketed: cubic, or halfway to the quadratic);
   slopes of opposite sign (bracketed: cubic or secant); a slope of the
   same sign but smaller (cubic towards the far end, safeguarded);
   larger (extrapolate: cubic through sty, or the bound). The cubic's
   minimizer of the interpolant through (stx, fx, dx), (stp, fp, dp) is
     stx + (stp - stx) p / q,  p = gamma - dx + theta,
     q = 2 gamma - dx + dp,   theta = 3 (fx - fp) / (stp - stx) + dx + dp,
     gamma = +-sqrt(theta^2 - dx dp).                                      */
static void dcstep(double *stx, double *fx, double *dx, double *sty,
                   double *fy, double *dy, double *stp, double fp, double dp,
                   int *brackt, double stpmin, double stpmax) {
    double sgnd = dp * (*dx / fabs(*dx)), stpf, stpc, stpq, theta, gamma, p,
           q, r;
    if (fp > *fx) {
        theta = 3.0 * (*fx - fp) / (*stp - *stx) + *dx + dp;
        gamma = cubic_gamma(theta, *dx, dp);
        if (*stp < *stx) gamma = -gamma;
        p = (gamma - *dx) + theta;
        q = ((gamma - *dx) + gamma) + dp;
        r = p / q;
        stpc = *stx + r * (*stp - *stx);
        stpq = *stx + ((*dx / ((*fx - fp) / (*stp - *stx) + *dx)) / 2.0) * (*stp - *stx);
        stpf = fabs(stpc - *stx) < fabs(stpq - *stx) ? stpc : stpc + (stpq - stpc) / 2.0;
        *brackt = 1;
    } else if (sgnd < 0.0) {
        theta = 3.0 * (*fx - fp) / (*stp - *stx) + *dx + dp;
        gamma = cubic_gamma(theta, *dx, dp);
        if (*stp > *stx) gamma = -gamma;
        p = (gamma - dp) + theta;
        q = ((gamma - dp) + gamma) + *dx;
        r = p / q;
        stpc = *stp + r * (*stx - *stp);
        stpq = *stp + (dp / (dp - *dx)) * (*stx - *stp);
        stpf = fabs(stpc - *stp) > fabs(stpq - *stp) ? stpc : stpq;
        *brackt = 1;
    } else if (fabs(dp) < fabs(*dx)) {
        theta = 3.0 * (*fx - fp) / (*stp - *stx) + *dx + dp;
        gamma = cubic_gamma(theta, *dx, dp);
        if (*stp > *stx) gamma = -gamma;
        p = (gamma - dp) + theta;
        q = (gamma + (*dx - dp)) + gamma;
        r = p / q;
        if (r < 0.0 && gamma != 0.0) stpc = *stp + r * (*stx - *stp);
        else stpc = *stp > *stx ? stpmax : stpmin;
        stpq = *stp + (dp / (dp - *dx)) * (*stx - *stp);
        if (*brackt) {
            stpf = fabs(stpc - *stp) < fabs(stpq - *stp) ? stpc : stpq;
            if (*stp > *stx) stpf = fmin(*stp + 0.66 * (*sty - *stp), stpf);
            else stpf = fmax(*stp + 0.66 * (*sty - *stp), stpf);
        } else {
            stpf = fabs(stpc - *stp) > fabs(stpq - *stp) ? stpc : stpq;
            stpf = fmax(stpmin, fmin(stpmax, stpf));
        }
    } else {
        if (*brackt) {
            theta = 3.0 * (fp - *fy) / (*sty - *stp) + *dy + dp;
            gamma = cubic_gamma(theta, *dy, dp);
            if (*stp > *sty) gamma = -gamma;
            p = (gamma - dp) + theta;
            q = ((gamma - dp) + gamma) + *dy;
            r = p / q;
            stpf = *stp + r * (*sty - *stp);
        } else {
            stpf = *stp > *stx ? stpmax : stpmin;
        }
    }
    /* the new interval: the lower f becomes stx */
    if (fp > *fx) {
        *sty = *stp, *fy = fp, *dy = dp;
    } else {
        if (sgnd < 0.0) *sty = *stx, *fy = *fx, *dy = *dx;
        *stx = *stp, *fx = fp, *dx = dp;
    }
    *stp = stpf;
}

/* E and g at x + t d into sv->xt, sv->gt. */
static wb_status trial(wb_solver *sv, const double *w, double t, double *ft) {
    int n = sv->n;
    for (int i = 0; i < n; i++) sv->xt[i] = sv->x[i] + t * sv->sd[i];
    return wbi_eval(sv, sv->xt, w, ft, sv->gt);
}

/* The line search from sv->x (energy f, gradient sv->g) along d = sv->sd
   (slope dg0 = g'd < 0), first trial *t. *outcome: WBI_QN_MOVED (strong
   Wolfe, or the best point with sufficient decrease) or WBI_QN_ROUNDING
   (a trial E cannot judge): the point in sv->xt, sv->gt, *ft, its step
   in *t; WBI_QN_FAILED: *t = the shortest step tried. */
static wb_status search(wb_solver *sv, const double *w, double f, double dg0,
                        double *t, double *ft, int *outcome, int *trials) {
    int n = sv->n;
    double stx = 0, fx = f, gx = dg0, sty = 0, fy = f, gy = dg0;
    double stp = *t, gtest = C1 * dg0, width = STPMAX - STPMIN, width1 = 2 * width;
    double stmin = 0, stmax = stp + 4.0 * stp, tbad = INFINITY;
    double round = 32 * DBL_EPSILON * fabs(f);
    double tmin = stp; /* the shortest step tried with finite values */
    int brackt = 0, stage1 = 1, bad = 0, best_has_g = 0;
    *outcome = WBI_QN_FAILED;
    *trials = 0;
    for (;;) {
        double fp, dp;
        wb_status st = trial(sv, w, stp, &fp);
        (*trials)++;
        if (st == WB_ENONFINITE && bad < WBI_LBFGS_NONFINITE) {
            /* outside E's domain or overflow: shorten towards stx and never
               try this far again */
            bad++;
            tbad = stp;
            stp = stx + 0.25 * (stp - stx);
            if (brackt) sty = fmin(sty, tbad), stmax = fmin(stmax, tbad);
            if (*trials >= MAX_TRIALS + WBI_LBFGS_NONFINITE || stp - stx <= XTOL * stp) break;
            continue;
        }
        if (st != WB_OK) {
            if (st == WB_ENONFINITE)
                wbi_set_msg(sv, "value_grad returned non-finite values at %d "
                            "line-search points in a row (last at evaluation "
                            "%d)", bad + 1, sv->evals);
            return st;
        }
        bad = 0;
        tmin = fmin(tmin, stp);
        dp = wbi_dot(n, sv->gt, sv->sd);
        if (fabs(stp * dg0) <= round && fabs(fp - f) <= round) {
            /* E cannot resolve this step: search on the slope alone,
               phi'(t) = g(x + t d)'d, which the gradient still resolves:
               secant steps towards phi'(t) = 0 until |phi'(t)| <= c2
               |phi'(0)|; the driver then judges the point by ||g|| */
            if (dp > C2 * -dg0 && *trials < MAX_TRIALS + bad) {
                stp = stp * -dg0 / (dp - dg0);
                continue;
            }
            *outcome = WBI_QN_ROUNDING;
            *t = stp, *ft = fp;
            return WB_OK;
        }
        double ftest = f + stp * gtest;
        if (fp <= ftest && fabs(dp) <= C2 * -dg0) { /* strong Wolfe */
            *outcome = WBI_QN_MOVED;
            *t = stp, *ft = fp;
            return WB_OK;
        }
        if (*trials >= MAX_TRIALS + bad ||
            (brackt && (stp <= stmin || stp >= stmax)) ||
            (brackt && stmax - stmin <= XTOL * stmax) ||
            stp >= STPMAX || stp <= STPMIN)
            break; /* rounding, or out of trials: the best point decides */
        if (stage1 && fp <= ftest && dp >= fmin(C1, C2) * dg0) stage1 = 0;
        double sx_old = stx;
        if (stage1 && ftest < fp && fp <= fx) {
            /* the modified function psi(t) = E(x + t d) - E(x) - t gtest
               (More-Thuente's first stage) */
            double fm = fp - stp * gtest, fxm = fx - stx * gtest, fym = fy - sty * gtest;
            double dm = dp - gtest, gxm = gx - gtest, gym = gy - gtest;
            dcstep(&stx, &fxm, &gxm, &sty, &fym, &gym, &stp, fm, dm, &brackt, stmin, stmax);
            fx = fxm + stx * gtest, fy = fym + sty * gtest;
            gx = gxm + gtest, gy = gym + gtest;
        } else {
            dcstep(&stx, &fx, &gx, &sty, &fy, &gy, &stp, fp, dp, &brackt, stmin, stmax);
        }
        if (stx != sx_old) { /* the trial became the best point: keep g */
            memcpy(sv->g1, sv->gt, (size_t)n * sizeof(double));
            best_has_g = 1;
        }
        if (brackt) {
            if (fabs(sty - stx) >= 0.66 * width1) stp = stx + 0.5 * (sty - stx);
            width1 = width;
            width = fabs(sty - stx);
            stmin = fmin(stx, sty), stmax = fmax(stx, sty);
        } else {
            stmin = stp + 1.1 * (stp - stx);
            stmax = stp + 4.0 * (stp - stx);
        }
        stp = fmax(STPMIN, fmin(STPMAX, stp));
        if (stp >= tbad) stp = stx + 0.5 * (tbad - stx);
        if ((brackt && (stp <= stmin || stp >= stmax)) ||
            (brackt && stmax - stmin <= XTOL * stmax))
            stp = stx;
        if (stp == stx && stx > 0 && best_has_g) break;
    }
    /* no strong Wolfe point: the best one, when it decreased E enough */
    if (stx > 0 && best_has_g && fx <= f + stx * gtest) {
        for (int i = 0; i < n; i++) sv->xt[i] = sv->x[i] + stx * sv->sd[i];
        memcpy(sv->gt, sv->g1, (size_t)n * sizeof(double));
        *outcome = WBI_QN_MOVED;
        *t = stx, *ft = fx;
    } else {
        *t = tmin;
    }
    return WB_OK;
}

/* No decrease along -g (an ill-conditioned valley, or E at its rounding
   level): one truncated-Newton step on the matrix-free operator, s ~
   argmin g's + 1/2 s'Hs in a region of radius r (Steihaug CG to relative
   residual 1e-6; products from hvp or central differences of g),
     pred = -(g's + 1/2 s'Hs) <= 1e3 eps |E| on the first step: the model
            agrees E cannot fall: converged to working precision;
     E(x + s) < E(x) (or, E at its rounding level, ||g|| shrinks): moved
            (the pairs restart from this step);
     else r = min(r, ||s||) / 4 and again, 40 times at most: stalled. */
static wb_status newton_step(wb_solver *sv, const double *w, double f,
                             wbi_qn_step *out) {
    int n = sv->n;
    wb_status st = wbi_hessian(sv, sv->x, w); /* the operator's point */
    if (st != WB_OK) return st;
    double r = sv->s.tr_radius0 * fmax(1.0, wbi_nrm2(n, sv->x));
    double gn = wbi_nrm2(n, sv->g), round = 32 * DBL_EPSILON * fabs(f);
    /* CG needs more than n steps in floating point on ill-conditioned H */
    int maxit = sv->s.cg_max_iter > 0 ? sv->s.cg_max_iter : (n < 245 ? 2 * n + 10 : 500);
    out->outcome = WBI_QN_FAILED;
    for (int k = 0; k < 40; k++) {
        int bd = 0, met = 0, its = 0;
        double ft;
        /* central difference products (sv->hg NULL): this step decides
           the hard cases, where forward ones' sqrt(eps) error misleads */
        st = wbi_steihaug(sv, r, 1e-6 * gn, maxit, sv->sd, sv->hs, &bd, &met, &its);
        sv->cg_its += its;
        if (st != WB_OK) return st;
        double pred = -(wbi_dot(n, sv->g, sv->sd) + 0.5 * wbi_dot(n, sv->sd, sv->hs));
        double sn = wbi_nrm2(n, sv->sd);
        out->t = 1.0, out->snorm = sn, out->pred = pred;
        if (k == 0 && !(pred > 1e3 * DBL_EPSILON * fabs(f))) {
            out->outcome = WBI_QN_PRECISION;
            return WB_OK;
        }
        st = trial(sv, w, 1.0, &ft);
        out->trials++;
        if (st != WB_OK && st != WB_ENONFINITE) return st;
        int ok = st == WB_OK &&
                 (fabs(ft - f) <= round ? wbi_nrm2(n, sv->gt) < gn : ft < f);
        if (ok) {
            out->outcome = WBI_QN_MOVED;
            out->ft = ft;
            wbi_lbfgs_reset(sv);
            out->stored = store_pair(sv, sv->x, sv->xt, sv->g, sv->gt);
            sv->lb_last = sn;
            return WB_OK;
        }
        if (!(sn > 0)) break;
        r = 0.25 * fmin(r, sn);
    }
    return WB_OK;
}

wb_status wbi_lbfgs_newton(wb_solver *sv, const double *w, double f,
                           wbi_qn_step *out) {
    memset(out, 0, sizeof *out);
    return newton_step(sv, w, f, out);
}

wb_status wbi_lbfgs_step(wb_solver *sv, const double *w, double f,
                         double step_bound, wbi_qn_step *out) {
    int n = sv->n;
    memset(out, 0, sizeof *out);
    int fresh = sv->lb_k == 0;
    direction(sv, sv->g, sv->sd);
    double dg0 = wbi_dot(n, sv->g, sv->sd);
    if (!fresh && !(dg0 < 0)) { /* rounding made H_k g useless: restart */
        wbi_lbfgs_reset(sv);
        fresh = 1;
        direction(sv, sv->g, sv->sd);
        dg0 = wbi_dot(n, sv->g, sv->sd);
    }
    double dn = wbi_nrm2(n, sv->sd);
    out->fresh = fresh;
    if (!isfinite(dn) || !isfinite(dg0)) {
        wbi_set_msg(sv, "non-finite L-BFGS direction");
        return WB_ENONFINITE;
    }
    /* the first trial: t = 1 on the quasi-Newton direction; without a pair,
       a step as long as the last one (the trust radius at the start) */
    double t = 1.0;
    if (fresh) {
        double r = sv->lb_last > 0 ? sv->lb_last
                                   : sv->s.tr_radius0 * fmax(1.0, wbi_nrm2(n, sv->x));
        t = dn > 0 ? fmin(1.0, r / dn) : 1.0;
    }
    out->snorm = t * dn;
    if (t * dn <= step_bound) { /* the model's step itself is tiny */
        out->outcome = WBI_QN_SMALL;
        out->t = t;
        return WB_OK;
    }
    double ft = f;
    int oc, trials;
    wb_status st = search(sv, w, f, dg0, &t, &ft, &oc, &trials);
    out->trials = trials;
    if (st != WB_OK) return st;
    if (oc == WBI_QN_ROUNDING) /* judged by the gradient */
        oc = wbi_nrm2(n, sv->gt) < wbi_nrm2(n, sv->g) ? WBI_QN_MOVED : WBI_QN_FAILED;
    if (oc == WBI_QN_FAILED && !fresh) {
        /* nothing acceptable along d: drop the pairs (a quasi-Newton
           direction gone bad), the next direction is -g */
        wbi_lbfgs_reset(sv);
        out->outcome = WBI_QN_RESET;
        out->t = t;
        return WB_OK;
    }
    if (oc == WBI_QN_FAILED) /* not even along -g: ask the Newton model */
        return newton_step(sv, w, f, out);
    out->outcome = WBI_QN_MOVED;
    out->t = t;
    out->ft = ft;
    out->snorm = t * dn;
    out->stored = store_pair(sv, sv->x, sv->xt, sv->g, sv->gt);
    sv->lb_last = out->snorm;
    return WB_OK;
}
