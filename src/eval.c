/* Callback evaluation and difference steps: the bottom layer under the
 * driver (solve.c) and the step strategies (hessian.c, cg.c, step_lm.c),
 * which all call down into it and never up.
 *
 *   wbi_eval     E and grad_x E with the status mapping (callback failure,
 *                non-finite values), counting value_grad calls
 *   wbi_fd_step  h = fd_step * max(|z|, typ), made exactly representable
 *   wbi_typ_x    the typical size of an unknown (the solve's start)
 *   wbi_fd_dir_step  the step of a difference of g along a direction v:
 *                x's size, capped by the scales of the unknowns v moves
 */
#include <math.h>

#include "wb_internal.h"

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

double wbi_fd_dir_step(const wb_solver *sv, const double *x, const double *v,
                       double rel) {
    /* h = min(rel (1 + ||x||_2) / ||v||_2,  n rel / max_i |v_i| / s_i),
       s_i = max(|x_i|, typ_i): the step of x's overall size, as long as
       no unknown moves by more than n rel of its own scale. Uncapped, a v
       along unknowns of size 1e-7 next to ones of size 1 moved them by
       ~1e7 rel of their size (NIST Hahn1: the second-order test read a
       curvature of -1e16); for v = e_j at n = 1 the cap is the dense
       difference Hessian's h_j = rel s_j. The cap grows with n, not
       tighter: a v spread over many unknowns would otherwise be ruled by
       the smallest scale among them (an unknown that merely starts near
       0 claims a small typ) and drown in rounding, eps |g| / h (the
       500-unknown chain of test_implicit: CG's attainable residual 7e-10
       with this cap, 1.9e-9 with sqrt(n), 2.9e-8 with 1). */
    int n = sv->n;
    double vn = wbi_nrm2(n, v), m = 0.0;
    if (!(vn > 0) || !isfinite(vn)) return 0.0;
    for (int i = 0; i < n; i++)
        m = fmax(m, fabs(v[i]) / fmax(fabs(x[i]), wbi_typ_x(sv, i)));
    double h = rel * (1 + wbi_nrm2(n, x)) / vn;
    double cap = (double)n * rel / m;
    return m > 0 && cap < h ? cap : h;
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
