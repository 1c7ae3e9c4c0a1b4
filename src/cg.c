/* Conjugate gradients on the Hessian operator (matrix-free mode).
 *
 * wbi_steihaug: the trust-region step of the truncated-Newton solver,
 *   min_s  m(s) = g's + 1/2 s'Hs   subject to ||s|| <= Delta,
 * by CG from s = 0 (Steihaug 1983, Toint 1981): stop at the residual
 * tolerance, or follow a direction of non-positive curvature, or the first
 * iterate leaving the region, to the boundary. The model's H s comes from
 * the recurrence (s = sum_k alpha_k d_k, H s = sum_k alpha_k H d_k), so
 * the gain ratio costs no product of its own.
 *
 * wbi_pcg: (H + lambda I) v = b by preconditioned CG (Jacobi from the
 * diagonal of H when the energy gives it). A direction d with
 * d'(H + lambda I)d <= 0 proves the matrix is not positive definite: that is
 * reported, never iterated through.
 */
#include <math.h>
#include <string.h>

#include "wb_internal.h"

/* tau >= 0 with ||s + tau d|| = Delta */
static double to_boundary(int n, const double *s, const double *d,
                          double Delta) {
    double dd = wbi_dot(n, d, d), sd = wbi_dot(n, s, d), ss = wbi_dot(n, s, s);
    double disc = sd * sd + dd * (Delta * Delta - ss);
    if (disc < 0) disc = 0;
    return dd > 0 ? (-sd + sqrt(disc)) / dd : 0.0;
}

wb_status wbi_steihaug(wb_solver *sv, double Delta, double tol, int maxit,
                       double *s, double *hs, int *boundary, int *met,
                       int *iters) {
    int n = sv->n;
    double *r = sv->cgw, *d = r + n, *Hd = d + n;
    memset(s, 0, (size_t)n * sizeof(double));
    if (hs) memset(hs, 0, (size_t)n * sizeof(double));
    memcpy(r, sv->g, (size_t)n * sizeof(double)); /* r = g + H s */
    for (int i = 0; i < n; i++) d[i] = -r[i];
    double rr = wbi_dot(n, r, r);
    *boundary = 0;
    *iters = 0;
    *met = 0;
    for (int k = 0; k < maxit && sqrt(rr) > tol; k++) {
        wb_status st = wbi_hess_mul(sv, d, Hd);
        if (st != WB_OK) return st;
        (*iters)++;
        double dHd = wbi_dot(n, d, Hd);
        if (dHd <= 0) { /* negative curvature: go to the boundary along d */
            *boundary = 1;
            if (!(Delta > 0)) return WB_OK; /* no region: stop at s */
            double tau = to_boundary(n, s, d, Delta);
            wbi_axpy(n, tau, d, s);
            if (hs) wbi_axpy(n, tau, Hd, hs);
            return WB_OK;
        }
        double alpha = rr / dHd;
        /* ||s + alpha d|| >= Delta: stop on the boundary */
        double ss = 0.0;
        for (int i = 0; i < n; i++) {
            double t = s[i] + alpha * d[i];
            ss += t * t;
        }
        if (Delta > 0 && ss >= Delta * Delta) {
            double tau = to_boundary(n, s, d, Delta);
            wbi_axpy(n, tau, d, s);
            if (hs) wbi_axpy(n, tau, Hd, hs);
            *boundary = 1;
            return WB_OK;
        }
        /* s += alpha d, H s += alpha H d (the model's H s from the
           recurrence: no product of its own), r = g + H s */
        wbi_axpy(n, alpha, d, s);
        if (hs) wbi_axpy(n, alpha, Hd, hs);
        wbi_axpy(n, alpha, Hd, r);
        double rr_new = wbi_dot(n, r, r);
        double beta = rr_new / rr;
        rr = rr_new;
        for (int i = 0; i < n; i++) d[i] = -r[i] + beta * d[i];
    }
    *met = sqrt(rr) <= tol;
    return WB_OK;
}

/* CG on the Newton equation in the unknowns' scale:
 *     (D H D) u = -D g,   s = D u,   D = diag(scale)
 * The model g's + 1/2 s'Hs and its minimizer are those of H s = -g; what
 * the scale changes is the iteration and its stop: CG on H itself stops at
 * a residual ||H s + g|| <= tol ||g|| once the stiff directions are solved,
 * and where the unknowns' sizes differ by orders of magnitude (NIST Hahn1:
 * 1e-7 .. 10) the rest of the residual, along the soft directions, can hold
 * a Newton step and a model decrease of any size, so a small s there proves
 * nothing. On D H D (the unknowns in units of their size) the residual
 * r = -D g - D H D u is measured in those units.
 * Per iteration: Dd = D d, Hdd = H Dd (one product), (DHD)d = D Hdd;
 * s += alpha Dd, hs += alpha Hdd (H s by the recurrence), r -= alpha D Hdd. */
wb_status wbi_cg_scaled(wb_solver *sv, const double *scale, double tol_rel, int maxit,
                        double *s, double *hs, int *negc, int *met, int *iters) {
    int n = sv->n;
    double *r = sv->cgw, *d = r + n, *Dd = d + n, *Hdd = Dd + n;
    memset(s, 0, (size_t)n * sizeof(double));
    memset(hs, 0, (size_t)n * sizeof(double));
    for (int i = 0; i < n; i++) r[i] = -scale[i] * sv->g[i];
    memcpy(d, r, (size_t)n * sizeof(double));
    double rr = wbi_dot(n, r, r), tol = tol_rel * sqrt(rr);
    *negc = 0;
    *iters = 0;
    *met = 0;
    for (int k = 0; k < maxit && sqrt(rr) > tol; k++) {
        for (int i = 0; i < n; i++) Dd[i] = scale[i] * d[i];
        wb_status st = wbi_hess_mul(sv, Dd, Hdd);
        if (st != WB_OK) return st;
        (*iters)++;
        double dAd = wbi_dot(n, Dd, Hdd); /* d'(D H D)d */
        if (!(dAd > 0)) {
            *negc = 1;
            return WB_OK;
        }
        double alpha = rr / dAd;
        wbi_axpy(n, alpha, Dd, s);
        wbi_axpy(n, alpha, Hdd, hs);
        for (int i = 0; i < n; i++) r[i] -= alpha * scale[i] * Hdd[i];
        double rr_new = wbi_dot(n, r, r), beta = rr_new / rr;
        rr = rr_new;
        for (int i = 0; i < n; i++) d[i] = r[i] + beta * d[i];
    }
    *met = sqrt(rr) <= tol;
    return WB_OK;
}

/* PCG on (H + lambda I) v = b, restarted from the recomputed residual:
 *
 *   pass:     r = b - (H + lambda I) v (recomputed), z = M^-1 r, d = z;
 *             CG until the recurrence residual <= tol ||b|| or maxit
 *   stop:     recomputed ||r|| <= tol ||b||              converged
 *             maxit iterations used                       *iters = maxit
 *             a pass did not halve the recomputed ||r||   stagnated
 *
 * The recurrence residual drifts from the true one by the error of each
 * product H d (rounding; O(fd_step^2 + eps/fd_step) ||H|| ||d|| for a
 * difference product): once the true residual sits at that level, more
 * iterations cannot lower it, which is what "stagnated" reports. */
wb_status wbi_pcg(wb_solver *sv, double lambda, const double *b, double *v,
                  int maxit, double tol, int *iters, double *relres,
                  int *stagnated, double *rq_min, double *rq_max) {
    int n = sv->n;
    double *r = sv->cgw, *z = r + n, *d = z + n, *Ad = d + n;
    int jacobi = sv->have_hd;
    if (jacobi)
        for (int i = 0; i < n; i++)
            if (!(sv->hd[i] + lambda > 0)) jacobi = 0;
    double bn = wbi_nrm2(n, b);
    *iters = 0;
    *relres = 0.0;
    *stagnated = 0;
    *rq_min = INFINITY;
    *rq_max = 0.0;
    memset(v, 0, (size_t)n * sizeof(double));
    if (bn == 0) return WB_OK;
    memcpy(r, b, (size_t)n * sizeof(double)); /* r = b - (H + lambda I) v */
    double prev = INFINITY;
    for (;;) {
        /* r is the recomputed residual of v here */
        double rn = wbi_nrm2(n, r);
        *relres = rn / bn;
        if (!isfinite(*relres)) {
            wbi_set_msg(sv, "CG produced a non-finite result");
            return WB_ENONFINITE;
        }
        if (rn <= tol * bn || *iters >= maxit) break;
        if (rn > 0.5 * prev) { *stagnated = 1; break; }
        prev = rn;
        for (int i = 0; i < n; i++) z[i] = jacobi ? r[i] / (sv->hd[i] + lambda) : r[i];
        memcpy(d, z, (size_t)n * sizeof(double));
        double rz = wbi_dot(n, r, z);
        while (*iters < maxit) {
            wb_status st = wbi_hess_mul(sv, d, Ad);
            if (st != WB_OK) return st;
            wbi_axpy(n, lambda, d, Ad);
            (*iters)++;
            double dAd = wbi_dot(n, d, Ad);
            if (!(dAd > 0)) {
                wbi_set_msg(sv, "negative curvature d'(H + lambda I)d = %.3g "
                            "found by CG at iteration %d (lambda = %g): H + "
                            "lambda I is not positive definite at x*%s", dAd,
                            *iters, lambda,
                            lambda == 0 ? "; the classic derivative does not "
                                          "exist here, use lambda > 0" : "");
                return WB_ESINGULAR;
            }
            double rq = dAd / wbi_dot(n, d, d);
            *rq_min = fmin(*rq_min, rq);
            *rq_max = fmax(*rq_max, rq);
            double alpha = rz / dAd;
            wbi_axpy(n, alpha, d, v);
            wbi_axpy(n, -alpha, Ad, r);
            if (wbi_nrm2(n, r) <= tol * bn) break;
            for (int i = 0; i < n; i++) z[i] = jacobi ? r[i] / (sv->hd[i] + lambda) : r[i];
            double rz_new = wbi_dot(n, r, z);
            double beta = rz_new / rz;
            rz = rz_new;
            for (int i = 0; i < n; i++) d[i] = z[i] + beta * d[i];
        }
        /* the true residual, recomputed rather than trusted */
        wb_status st = wbi_hess_mul(sv, v, Ad);
        if (st != WB_OK) return st;
        for (int i = 0; i < n; i++) r[i] = b[i] - Ad[i] - lambda * v[i];
    }
    return WB_OK;
}

/* CG on H s = -b, b a fixed pseudo-random vector: its pivots d'Hd are
   those of the LDL' factorization of the Lanczos matrix T_k, so one is
   negative as soon as T_k (whose eigenvalues approach H's extreme ones)
   has a negative eigenvalue. Returns the first direction with d'Hd <=
   -tau d'd. *rq_min, *rq_max: the least and the largest |d'Hd| / d'd of
   its directions (Rayleigh quotients: lambda_min(H) <= *rq_min when no
   negative one was met). scale[n] (NULL: none): the same on the scaled
   operator D H D, D = diag(scale) (the unknowns in units of their size;
   then *q, the quotients and dout are those of D H D). */
wb_status wbi_negcurv(wb_solver *sv, int maxit, double tau,
                      const double *scale, double *dout, double *q,
                      int *found, double *rq_min, double *rq_max) {
    int n = sv->n;
    double *r = sv->cgw, *d = r + n, *Hd = d + n, *Dd = Hd + n;
    unsigned long long h = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < n; i++) { /* r = b in [-1, 1], fixed */
        h ^= h >> 27;
        h *= 0x94D049BB133111EBULL;
        h += 0x9E3779B97F4A7C15ULL;
        r[i] = (double)(h >> 11) * (2.0 / 9007199254740992.0) - 1.0;
    }
    memcpy(d, r, (size_t)n * sizeof(double));
    double rr = wbi_dot(n, r, r), rr0 = rr;
    *found = 0;
    *q = 0.0;
    *rq_max = 0.0;
    *rq_min = INFINITY;
    for (int k = 0; k < maxit; k++) {
        wb_status st;
        if (scale) { /* D H D d */
            for (int i = 0; i < n; i++) Dd[i] = scale[i] * d[i];
            st = wbi_hess_mul(sv, Dd, Hd);
            for (int i = 0; i < n; i++) Hd[i] *= scale[i];
        } else {
            st = wbi_hess_mul(sv, d, Hd);
        }
        if (st != WB_OK) return st;
        double dd = wbi_dot(n, d, d), dHd = wbi_dot(n, d, Hd);
        *rq_max = fmax(*rq_max, fabs(dHd) / dd);
        *rq_min = fmin(*rq_min, fabs(dHd) / dd);
        if (dHd <= -tau * dd) {
            double dn = sqrt(dd);
            for (int i = 0; i < n; i++) dout[i] = d[i] / dn;
            *q = dHd / dd;
            *found = 1;
            return WB_OK;
        }
        if (dHd == 0) break; /* breakdown: flat along d */
        double alpha = rr / dHd;
        wbi_axpy(n, -alpha, Hd, r);
        double rr_new = wbi_dot(n, r, r);
        if (rr_new <= 1e-24 * rr0) break; /* converged: no negative pivot */
        double beta = rr_new / rr;
        rr = rr_new;
        for (int i = 0; i < n; i++) d[i] = r[i] + beta * d[i];
    }
    return WB_OK;
}
