/* Callback evaluation and difference steps: the bottom layer under the
 * driver (solve.c) and the step strategies (hessian.c, cg.c, step_lm.c),
 * which all call down into it and never up.
 *
 *   wbi_eval     E and grad_x E with the status mapping (callback failure,
 *                non-finite values), counting value_grad calls
 *   wbi_fd_step  h = fd_step * max(|z|, typ), made exactly representable
 *   wbi_typ_x    the typical size of an unknown (the solve's start)
 *   wbi_fd_dir_step  the step of a difference along a direction v, from
 *                the scale of x along v
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
    /* h = rel / max_i |v_i| / s_i,  s_i = max(|x_i|, typ_i): the largest
       relative change of an unknown, |h v_i| / s_i, is rel -- for v = e_j
       the dense difference Hessian's h_j = rel s_j. A step from ||x|| and
       ||v|| alone (h = rel (1 + ||x||) / ||v||) moves an unknown of size
       1e-7 next to one of size 1 by 1e7 times its own scale rel. */
    double m = 0.0;
    for (int i = 0; i < sv->n; i++) {
        double si = fmax(fabs(x[i]), wbi_typ_x(sv, i));
        m = fmax(m, fabs(v[i]) / si);
    }
    return m > 0 && isfinite(m) ? rel / m : 0.0;
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
