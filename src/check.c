/* Derivative checks: a user's callbacks against central differences, and
 * the implicit Jacobian against central differences of x*(w).
 *
 * Relative error of an entry: |a - fd| / max(|fd|, 1e-6 max_k |fd_k|, tiny).
 * Central differences have error O(h^2) + O(eps/h): with h = cbrt(eps) the
 * floor is near 1e-10 relative for smooth, well-scaled energies; a correct
 * energy typically shows errors below 1e-6 and a wrong derivative O(1).
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "wb_internal.h"


/* error of a[k] against fd[k], k < m; worst index into *iw */
static double worst_err(size_t m, const double *a, const double *fd, int *iw) {
    double fmaxabs = 0.0;
    for (size_t k = 0; k < m; k++) fmaxabs = fmax(fmaxabs, fabs(fd[k]));
    double worst = 0.0;
    *iw = m ? 0 : -1;
    for (size_t k = 0; k < m; k++) {
        double den = fmax(fmax(fabs(fd[k]), 1e-6 * fmaxabs), DBL_MIN);
        double err = fabs(a[k] - fd[k]) / den;
        if (!(err <= worst)) { /* also catches NaN */
            worst = err;
            *iw = (int)k;
            if (isnan(err)) return NAN;
        }
    }
    return worst;
}

static wb_status vg(const wb_energy *e, const double *x, const double *w,
                    double *f, double *g) {
    if (e->value_grad(e->user, x, w, f, g) != 0) return WB_ECALLBACK;
    if (!isfinite(*f)) return WB_ENONFINITE;
    if (g && !wbi_all_finite((size_t)e->n, g)) return WB_ENONFINITE;
    return WB_OK;
}

wb_status wb_check_energy(const wb_energy *e, const wb_settings *s_in,
                          const double *x, const double *w,
                          wb_check_report *rep) {
    char msg[WBI_MSG_LEN];
    if (!e || !x || !rep)
        return wbi_fail(WB_EINVAL, "wb_check_energy: %s is NULL",
                        !e ? "e" : !x ? "x" : "rep");
    wb_settings s;
    if (s_in) s = *s_in;
    else wb_settings_default(&s);
    if (wbi_settings_check(&s, msg, sizeof msg) != WB_OK ||
        wbi_energy_check(e, msg, sizeof msg) != WB_OK)
        return wbi_fail(WB_EINVAL, "wb_check_energy: %.200s", msg);
    if (e->p > 0 && !w)
        return wbi_fail(WB_EINVAL, "wb_check_energy: w is NULL (p = %d)", e->p);
    if (!wbi_all_finite((size_t)e->n, x) ||
        (e->p > 0 && !wbi_all_finite((size_t)e->p, w)))
        return wbi_fail(WB_EINVAL, "wb_check_energy: x or w holds NaN or Inf");
    rep->value_grad_err = rep->hess_err = rep->mixed_vjp_err = rep->mixed_err = -1;
    rep->value_grad_worst = rep->hess_worst = rep->mixed_vjp_worst =
        rep->mixed_worst = -1;
    rep->hess_band_err = rep->hvp_err = rep->hess_diag_err = -1;
    rep->hess_band_worst = rep->hvp_worst = rep->hess_diag_worst = -1;

    int n = e->n, p = e->p;
    size_t nn = (size_t)n * n, np = (size_t)n * (p > 0 ? p : 1);
    size_t total = 6 * (size_t)n + 2 * nn + 2 * np + 4 * (size_t)(p > 0 ? p : 1);
    double *buf = wbi_alloc(&s, total, sizeof(double));
    if (!buf) return wbi_fail(WB_ENOMEM, "wb_check_energy: out of memory");
    double *g = buf, *xh = g + n, *g1 = xh + n, *g2 = g1 + n, *gfd = g2 + n,
           *v = gfd + n, *H = v + n, *Hfd = H + nn, *B = Hfd + nn,
           *Bfd = B + np, *wh = Bfd + np, *o = wh + (p > 0 ? p : 1),
           *ofd = o + (p > 0 ? p : 1);
    wb_status st;
    double f, f1, f2;
    if ((st = vg(e, x, w, &f, g)) != WB_OK) goto done;
    memcpy(xh, x, (size_t)n * sizeof(double));

    /* gradient: gfd_i = (E(x + h e_i) - E(x - h e_i)) / 2h */
    for (int i = 0; i < n; i++) {
        double h = wbi_fd_step(&s, x[i], 1.0);
        xh[i] = x[i] + h;
        st = vg(e, xh, w, &f1, NULL);
        xh[i] = x[i] - h;
        if (st == WB_OK) st = vg(e, xh, w, &f2, NULL);
        xh[i] = x[i];
        if (st != WB_OK) goto done;
        gfd[i] = (f1 - f2) / (2 * h);
    }
    rep->value_grad_err = worst_err((size_t)n, g, gfd, &rep->value_grad_worst);

    int second = e->hess || (e->kd > 0 && e->hess_band) || e->hvp || e->hess_diag;
    if (second) {
        /* Hfd[:,j] = (g(x + h e_j) - g(x - h e_j)) / 2h */
        for (int j = 0; j < n; j++) {
            double h = wbi_fd_step(&s, x[j], 1.0);
            xh[j] = x[j] + h;
            st = vg(e, xh, w, &f1, g1);
            xh[j] = x[j] - h;
            if (st == WB_OK) st = vg(e, xh, w, &f2, g2);
            xh[j] = x[j];
            if (st != WB_OK) goto done;
            for (int i = 0; i < n; i++)
                Hfd[(size_t)j * n + i] = (g1[i] - g2[i]) / (2 * h);
        }
    }
    if (e->hess) {
        if (e->hess(e->user, x, w, H) != 0) { st = WB_ECALLBACK; goto done; }
        rep->hess_err = worst_err(nn, H, Hfd, &rep->hess_worst);
    }
    if (e->kd > 0 && e->kd < n && e->hess_band) {
        /* the band's entries against the same entries of Hfd */
        size_t ld = (size_t)e->kd + 1, nb = ld * (size_t)n;
        /* AB: the callback's band; then a, f: the band's entries and the
           same entries of Hfd, as vectors */
        double *AB = wbi_alloc(&s, 3 * nb, sizeof(double));
        if (!AB) { st = WB_ENOMEM; goto done; }
        double *a = AB + nb, *fb = a + nb;
        memset(AB, 0, nb * sizeof(double));
        if (e->hess_band(e->user, x, w, AB) != 0) {
            wbi_free(&s, AB);
            st = WB_ECALLBACK;
            goto done;
        }
        size_t m = 0;
        for (int j = 0; j < n; j++)
            for (int i = j; i <= j + e->kd && i < n; i++, m++) {
                a[m] = AB[(size_t)(i - j) + (size_t)j * ld];
                fb[m] = Hfd[(size_t)j * n + i];
            }
        int wm = -1;
        rep->hess_band_err = worst_err(m, a, fb, &wm);
        m = 0; /* the worst entry's column-major index in the n x n H */
        for (int j = 0; j < n && wm >= 0; j++)
            for (int i = j; i <= j + e->kd && i < n; i++, m++)
                if ((int)m == wm) rep->hess_band_worst = j * n + i;
        wbi_free(&s, AB);
    }
    if (e->hvp || e->hess_diag) {
        for (int i = 0; i < n; i++) v[i] = 1.0 + 0.37 * (double)((i * 7) % 5) - 0.8 * (i % 2);
        if (e->hvp) {
            if (e->hvp(e->user, x, w, v, g1) != 0) { st = WB_ECALLBACK; goto done; }
            for (int i = 0; i < n; i++) { /* g2 = Hfd v */
                double t = 0.0;
                for (int j = 0; j < n; j++) t += Hfd[(size_t)j * n + i] * v[j];
                g2[i] = t;
            }
            rep->hvp_err = worst_err((size_t)n, g1, g2, &rep->hvp_worst);
        }
        if (e->hess_diag) {
            if (e->hess_diag(e->user, x, w, g1) != 0) { st = WB_ECALLBACK; goto done; }
            for (int i = 0; i < n; i++) g2[i] = Hfd[(size_t)i * n + i];
            rep->hess_diag_err = worst_err((size_t)n, g1, g2, &rep->hess_diag_worst);
        }
    }

    if (p > 0 && (e->mixed || e->mixed_vjp)) {
        /* Bfd[:,j] = (g(w + h e_j) - g(w - h e_j)) / 2h */
        memcpy(wh, w, (size_t)p * sizeof(double));
        for (int j = 0; j < p; j++) {
            double h = wbi_fd_step(&s, w[j], 1.0);
            wh[j] = w[j] + h;
            st = vg(e, x, wh, &f1, g1);
            wh[j] = w[j] - h;
            if (st == WB_OK) st = vg(e, x, wh, &f2, g2);
            wh[j] = w[j];
            if (st != WB_OK) goto done;
            for (int i = 0; i < n; i++)
                Bfd[(size_t)j * n + i] = (g1[i] - g2[i]) / (2 * h);
        }
        if (e->mixed) {
            if (e->mixed(e->user, x, w, B) != 0) { st = WB_ECALLBACK; goto done; }
            rep->mixed_err = worst_err((size_t)n * p, B, Bfd, &rep->mixed_worst);
        }
        if (e->mixed_vjp) {
            /* a fixed, sign-varying v so that no column cancels by accident */
            for (int i = 0; i < n; i++) v[i] = 1.0 + 0.37 * (double)((i * 7) % 5) - 0.8 * (i % 2);
            if (e->mixed_vjp(e->user, x, w, v, o) != 0) { st = WB_ECALLBACK; goto done; }
            wbi_gemm_tn(n, p, 1, Bfd, v, ofd);
            rep->mixed_vjp_err = worst_err((size_t)p, o, ofd, &rep->mixed_vjp_worst);
        }
    }
    st = WB_OK;
done:
    wbi_free(&s, buf);
    if (st < 0)
        wbi_fail(st, "wb_check_energy: %s, at x or at a difference step "
                 "from it", st == WB_ECALLBACK ? "a callback returned non-zero"
                 : st == WB_ENONFINITE ? "a callback gave NaN or Inf"
                 : wb_status_str(st));
    return st;
}

wb_status wb_check_implicit(wb_solver *sv, const double *w, const double *x0,
                            double *max_rel_err) {
    if (!sv) return wbi_fail(WB_EINVAL, "%s: sv is NULL", __func__);
    if (!x0 || !max_rel_err || (sv->p > 0 && !w)) {
        wbi_set_msg(sv, "wb_check_implicit: NULL argument");
        return WB_EINVAL;
    }
    int n = sv->n, p = sv->p;
    if (p == 0) {
        *max_rel_err = 0.0;
        return WB_OK;
    }
    size_t np = (size_t)n * p;
    double *buf = wbi_alloc(&sv->s, 2 * np + 3 * (size_t)n + (size_t)p,
                            sizeof(double));
    if (!buf) {
        wbi_set_msg(sv, "wb_check_implicit: out of memory");
        return WB_ENOMEM;
    }
    double *J = buf, *Jfd = J + np, *xstar = Jfd + np, *xp = xstar + n,
           *xm = xp + n, *wh = xm + n;
    double lambda = sv->s.lambda;
    sv->s.lambda = 0.0;
    wb_status st;
    memcpy(xstar, x0, (size_t)n * sizeof(double));
    st = wb_solve(sv, w, xstar, NULL);
    if (st == WB_OK) st = wb_implicit_jacobian(sv, J);
    if (st != WB_OK) goto done;
    /* Jfd[:,j] = (x*(w + h e_j) - x*(w - h e_j)) / 2h, re-solving from x* */
    memcpy(wh, w, (size_t)p * sizeof(double));
    for (int j = 0; j < p && st == WB_OK; j++) {
        double h = 1e-5 * fmax(fabs(w[j]), 1.0);
        memcpy(xp, xstar, (size_t)n * sizeof(double));
        memcpy(xm, xstar, (size_t)n * sizeof(double));
        wh[j] = w[j] + h;
        st = wb_solve(sv, wh, xp, NULL);
        wh[j] = w[j] - h;
        if (st == WB_OK) st = wb_solve(sv, wh, xm, NULL);
        wh[j] = w[j];
        for (int i = 0; i < n; i++) Jfd[(size_t)j * n + i] = (xp[i] - xm[i]) / (2 * h);
    }
    if (st == WB_OK) {
        double m = 0.0, d = 0.0;
        for (size_t k = 0; k < np; k++) {
            m = fmax(m, fabs(Jfd[k]));
            d = fmax(d, fabs(J[k] - Jfd[k]));
        }
        *max_rel_err = d / fmax(m, 1e-12);
    } else {
        wbi_set_msg(sv, "wb_check_implicit: a re-solve failed (%s)",
                    wb_status_str(st));
    }
    /* leave the solver at the solve at w */
    memcpy(xp, xstar, (size_t)n * sizeof(double));
    if (st == WB_OK) st = wb_solve(sv, w, xp, NULL);
done:
    sv->s.lambda = lambda;
    wbi_free(&sv->s, buf);
    return st;
}
