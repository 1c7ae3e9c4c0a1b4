/* The damped Newton (Levenberg-Marquardt) step strategy of the dense,
 * banded and sparse storages:
 *
 *   (H + mu D) s = -g      Cholesky of H + mu D (wbi_factor); a failed
 *                          factorization (H indefinite) raises mu by a fixed
 *                          factor 4 and retries, until mu reaches mu_max
 *
 * D is the identity, or (Marquardt / MINPACK scaling, settings.
 * scale_damping) the running maximum of |H_ii|, floored at 1e-8 max_j D_j.
 * Damping large enough makes H + mu D positive definite whatever the
 * inertia of H. The driver (solve.c) owns mu's update after each step.
 */
#include <math.h>
#include <string.h>

#include "wb_internal.h"

/* fmax(a, b) inlined (a NaN operand gives the other one, as fmax does):
   glibc's fmax is a library call, and this runs 2n times per Hessian */
static inline double max_num(double a, double b) {
    return (b > a || isnan(a)) ? b : a;
}

void wbi_lm_scaling(wb_solver *sv, int first) {
    int n = sv->n;
    if (!sv->s.scale_damping) {
        for (int i = 0; i < n; i++) sv->D[i] = 1.0;
        return;
    }
    /* D_i = max(D_i, |H_ii|), floored at 1e-8 max_j D_j (all ones if H's
       diagonal is zero) */
    double dmax = 0.0;
    for (int i = 0; i < n; i++) {
        double h = fabs(wbi_hess_diag(sv, i));
        sv->D[i] = first ? h : max_num(sv->D[i], h);
        dmax = max_num(dmax, sv->D[i]);
    }
    if (!(dmax > 0) || !isfinite(dmax)) {
        for (int i = 0; i < n; i++) sv->D[i] = 1.0;
        return;
    }
    for (int i = 0; i < n; i++) sv->D[i] = max_num(sv->D[i], 1e-8 * dmax);
}

int wbi_lm_step(wb_solver *sv, double *mu, double mu_max, int *facts,
                double *s) {
    int n = sv->n;
    /* factor H + mu D, raising mu until it is positive definite */
    for (;;) {
        (*facts)++;
        int info = wbi_factor(sv, *mu, sv->D);
        if (info == 0) break;
        if (info < 0) return info; /* sparse: CHOLMOD failed, message set */
        /* not positive definite: more damping (a fixed factor, so that a
           run of failures cannot overshoot by 2^(k^2/2) as nu would) */
        *mu = (*mu > 0 ? *mu : sv->s.mu0) * 4;
        if (!(*mu < mu_max)) return 1;
    }
    /* s = -(H + mu D)^-1 g */
    for (int i = 0; i < n; i++) s[i] = -sv->g[i];
    wbi_factor_solve(sv, 1, s);
    return 0;
}
