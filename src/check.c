/* Derivative checks: a user's callbacks against central differences, and
 * the implicit Jacobian against central differences of x*(w).
 *
 * Error of an entry a against its difference fd:
 *
 *   err = |a - fd| / max(|fd|, 1e-6 max_k |fd_k|, 1e6 r, tiny)
 *
 * r is the rounding error of that difference: a central difference
 * (u(z + h) - u(z - h)) / 2h of values computed to a few (ULPS = 8)
 * roundings carries r = ULPS eps (|u(z + h)| + |u(z - h)|) / 2h. An entry
 * whose |fd| is below 1e6 r cannot be resolved to 1e-6 by the difference
 * at all (at a minimizer the gradient is ~0 and fd is pure rounding), so it
 * is judged against that level: a correct entry reads below ~1e-6, a wrong
 * one |a - fd| / (1e6 r) (at a minimizer of E, an error of 1e-4 |E| in a
 * gradient entry at |x_i| <= 1 reads ~0.3, one of 1e-6 |E| ~3e-3).
 * Elsewhere central differences have error O(h^2) + O(eps/h): with
 * h = cbrt(eps) near 1e-10 relative for smooth, well-scaled energies; a
 * correct energy typically shows errors below 1e-6 and a wrong derivative
 * O(1).
 *
 * Every output buffer is filled with a signalling-NaN bit pattern before a
 * callback writes it; an entry that still holds the pattern afterwards was
 * never written (reading it would be reading uninitialised memory): the
 * check stops with WB_ECALLBACK and wb_last_error names the entry.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "wb_internal.h"

/* a difference resolves an entry to 1e-6 where |fd| >= RES r */
#define RES 1e6
/* roundings in one evaluation of E or of an entry of its gradient */
#define ULPS 8.0

/* the "unwritten" pattern: a signalling NaN (quiet bit clear) with a
   payload no arithmetic produces */
static const uint64_t UNWRITTEN = 0x7ff4c0ffee5a17edULL;

static void mark(size_t m, double *a) {
    for (size_t k = 0; k < m; k++) memcpy(a + k, &UNWRITTEN, sizeof UNWRITTEN);
}

static int is_mark(const double *a) {
    uint64_t u;
    memcpy(&u, a, sizeof u);
    return u == UNWRITTEN;
}

/* The first of a[k], k < m, still marked (-1: none); *count = how many. */
static long first_unwritten(size_t m, const double *a, size_t *count) {
    long first = -1;
    *count = 0;
    for (size_t k = 0; k < m; k++)
        if (is_mark(a + k)) {
            if (first < 0) first = (long)k;
            ++*count;
        }
    return first;
}

/* WB_ECALLBACK with "wb_check_energy: <what> left <entry> unwritten". rows:
   the leading dimension of a matrix output (0: a vector). */
static wb_status unwritten(const char *what, const char *name, long k,
                           size_t count, size_t m, int rows) {
    char entry[64];
    if (rows > 0)
        snprintf(entry, sizeof entry, "entry (%ld,%ld) of %s", k % rows,
                 k / rows, name);
    else
        snprintf(entry, sizeof entry, "%s[%ld]", name, k);
    return wbi_fail(WB_ECALLBACK, "wb_check_energy: %s left %s unwritten "
                    "(%zu of its %zu entries; they would be read as "
                    "uninitialised memory)", what, entry, count, m);
}

/* error of a[k] against fd[k] (rounding error r[k]), k < m; worst index
   into *iw */
static double worst_err(size_t m, const double *a, const double *fd,
                        const double *r, int *iw) {
    double fmaxabs = 0.0;
    for (size_t k = 0; k < m; k++) fmaxabs = fmax(fmaxabs, fabs(fd[k]));
    double worst = 0.0;
    *iw = m ? 0 : -1;
    for (size_t k = 0; k < m; k++) {
        double den = fmax(fmax(fabs(fd[k]), 1e-6 * fmaxabs),
                          fmax(RES * r[k], DBL_MIN));
        double err = fabs(a[k] - fd[k]) / den;
        if (!(err <= worst)) { /* also catches NaN */
            worst = err;
            *iw = (int)k;
            if (isnan(err)) return NAN;
        }
    }
    return worst;
}

/* value_grad at (x, w) with its outputs marked first: WB_ECALLBACK (message
   set) for a non-zero return or an output left unwritten, WB_ENONFINITE. */
static wb_status vg(const wb_energy *e, const double *x, const double *w,
                    double *f, double *g, const char *where) {
    mark(1, f);
    if (g) mark((size_t)e->n, g);
    if (e->value_grad(e->user, x, w, f, g) != 0)
        return wbi_fail(WB_ECALLBACK, "wb_check_energy: value_grad returned "
                        "non-zero %s", where);
    if (is_mark(f))
        return wbi_fail(WB_ECALLBACK, "wb_check_energy: value_grad left *e "
                        "unwritten %s", where);
    size_t cnt;
    long k = g ? first_unwritten((size_t)e->n, g, &cnt) : -1;
    if (k >= 0) return unwritten("value_grad", "gx", k, cnt, (size_t)e->n, 0);
    if (!isfinite(*f) || (g && !wbi_all_finite((size_t)e->n, g)))
        return wbi_fail(WB_ENONFINITE, "wb_check_energy: value_grad gave NaN "
                        "or Inf %s", where);
    return WB_OK;
}

/* A second-order callback's return: non-zero -> WB_ECALLBACK (message). */
static wb_status cb(int rc, const char *what) {
    if (rc == 0) return WB_OK;
    return wbi_fail(WB_ECALLBACK, "wb_check_energy: %s returned non-zero (%d) "
                    "at x", what, rc);
}

/* A second-order callback after the call: its return rc (as cb), then its
   output out[m] (marked before the call): unwritten entries, NaN/Inf */
static wb_status called(int rc, const char *what, const char *name, size_t m,
                        const double *out, int rows) {
    wb_status st = cb(rc, what);
    if (st != WB_OK) return st;
    size_t cnt;
    long k = first_unwritten(m, out, &cnt);
    if (k >= 0) return unwritten(what, name, k, cnt, m, rows);
    if (!wbi_all_finite(m, out))
        return wbi_fail(WB_ENONFINITE, "wb_check_energy: %s gave NaN or Inf "
                        "at x", what);
    return WB_OK;
}

/* Central differences along the m entries of z (z = x, or w when wrt_w):
   u(z + h e_j) - u(z - h e_j) over 2h, of u = E (g1 and g2 NULL: one row)
   or of u = its gradient (g1, g2 of n scratch: n rows), column j into
   fd[j rows + i], with the rounding bound of each entry
   r[j rows + i] = eps (|u_i(z + h e_j)| + |u_i(z - h e_j)|) / 2h.
   zh[m]: scratch (z again on return). */
static wb_status fd_columns(const wb_energy *e, const wb_settings *s,
                            const double *x, const double *w, int wrt_w,
                            double *zh, double *g1, double *g2, double *fd,
                            double *r) {
    const double eps = ULPS * DBL_EPSILON; /* per value, a few roundings */
    const double *z = wrt_w ? w : x;
    const char *where = wrt_w ? "at a difference step from w"
                              : "at a difference step from x";
    int m = wrt_w ? e->p : e->n, rows = g1 ? e->n : 1;
    double f1, f2;
    const double *u1 = g1 ? g1 : &f1, *u2 = g2 ? g2 : &f2;
    memcpy(zh, z, (size_t)m * sizeof(double));
    for (int j = 0; j < m; j++) {
        double h = wbi_fd_step(s, z[j], 1.0);
        zh[j] = z[j] + h;
        wb_status st = vg(e, wrt_w ? x : zh, wrt_w ? zh : w, &f1, g1, where);
        zh[j] = z[j] - h;
        if (st == WB_OK) st = vg(e, wrt_w ? x : zh, wrt_w ? zh : w, &f2, g2, where);
        zh[j] = z[j];
        if (st != WB_OK) return st;
        for (int i = 0; i < rows; i++) {
            fd[(size_t)j * rows + i] = (u1[i] - u2[i]) / (2 * h);
            r[(size_t)j * rows + i] = eps * (fabs(u1[i]) + fabs(u2[i])) / (2 * h);
        }
    }
    return WB_OK;
}

static wb_status check_energy(const wb_energy *e, const wb_settings *s,
                              const double *x, const double *w,
                              wb_check_report *rep, double *buf);

/* a fixed, sign-varying v[n] to multiply by, so that no column cancels by
   accident */
static void probe(int n, double *v) {
    for (int i = 0; i < n; i++) v[i] = 1.0 + 0.37 * (double)((i * 7) % 5) - 0.8 * (i % 2);
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
    /* rep is written first: it may not share memory with x, w or *e */
    size_t xb = (size_t)e->n * sizeof(double), wb = (size_t)e->p * sizeof(double);
    if (wbi_overlap(rep, sizeof *rep, x, xb) ||
        wbi_overlap(rep, sizeof *rep, w, wb) ||
        wbi_overlap(rep, sizeof *rep, e, sizeof *e))
        return wbi_fail(WB_EINVAL, "wb_check_energy: rep overlaps x, w or e "
                        "(not allowed: rep is written first)");
    if (!wbi_all_finite((size_t)e->n, x) ||
        (e->p > 0 && !wbi_all_finite((size_t)e->p, w)))
        return wbi_fail(WB_EINVAL, "wb_check_energy: x or w holds NaN or Inf");
    rep->value_grad_err = rep->hess_err = rep->mixed_vjp_err = rep->mixed_err = -1;
    rep->value_grad_worst = rep->hess_worst = rep->mixed_vjp_worst =
        rep->mixed_worst = -1;
    rep->hess_band_err = rep->hvp_err = rep->hess_diag_err = -1;
    rep->hess_band_worst = rep->hvp_worst = rep->hess_diag_worst = -1;
    rep->hess_sparse_err = -1;
    rep->hess_sparse_worst = -1;

    int n = e->n, p = e->p;
    size_t nn = (size_t)n * n, np = (size_t)n * (p > 0 ? p : 1);
    size_t p1 = (size_t)(p > 0 ? p : 1);
    size_t total = 8 * (size_t)n + 3 * nn + 3 * np + 4 * p1;
    double *buf = wbi_alloc(&s, total, sizeof(double));
    if (!buf) return wbi_fail(WB_ENOMEM, "wb_check_energy: out of memory");
    wb_status st = check_energy(e, &s, x, w, rep, buf);
    wbi_free(&s, buf);
    return st;
}

/* The checks; buf holds 8n + 3n^2 + 3np + 4p doubles (p >= 1). Every
   failure leaves its sentence in wb_last_error. */
static wb_status check_energy(const wb_energy *e, const wb_settings *s,
                              const double *x, const double *w,
                              wb_check_report *rep, double *buf) {
    int n = e->n, p = e->p;
    size_t nn = (size_t)n * n, np = (size_t)n * (p > 0 ? p : 1);
    size_t p1 = (size_t)(p > 0 ? p : 1);
    double *g = buf, *xh = g + n, *g1 = xh + n, *g2 = g1 + n, *gfd = g2 + n,
           *v = gfd + n, *rg = v + n, *rv = rg + n, *H = rv + n,
           *Hfd = H + nn, *rH = Hfd + nn, *B = rH + nn, *Bfd = B + np,
           *rB = Bfd + np, *wh = rB + np, *o = wh + p1, *ofd = o + p1,
           *ro = ofd + p1;
    wb_status st;
    double f;
    if ((st = vg(e, x, w, &f, g, "at x")) != WB_OK) return st;

    /* gradient: gfd_i = (E(x + h e_i) - E(x - h e_i)) / 2h,
       r_i = eps (|E(x + h e_i)| + |E(x - h e_i)|) / 2h */
    if ((st = fd_columns(e, s, x, w, 0, xh, NULL, NULL, gfd, rg)) != WB_OK) return st;
    rep->value_grad_err = worst_err((size_t)n, g, gfd, rg, &rep->value_grad_worst);

    int second = e->hess || (e->kd > 0 && e->hess_band) || e->hvp ||
                 e->hess_diag || e->hess_nnz > 0;
    if (second) {
        /* Hfd[:,j] = (g(x + h e_j) - g(x - h e_j)) / 2h, rounding likewise */
        if ((st = fd_columns(e, s, x, w, 0, xh, g1, g2, Hfd, rH)) != WB_OK) return st;
    }
    if (e->hess) {
        mark(nn, H);
        if ((st = called(e->hess(e->user, x, w, H), "hess", "H", nn, H, n)) != WB_OK) return st;
        rep->hess_err = worst_err(nn, H, Hfd, rH, &rep->hess_worst);
    }
    if (e->kd > 0 && e->kd < n && e->hess_band) {
        /* the band's entries against the same entries of Hfd. The callback
           writes into H's space ((kd + 1) n <= n^2 entries; H is not needed
           any more); the entries outside the band are ignored (zeroed), the
           band's are marked */
        size_t ld = (size_t)e->kd + 1, nb = ld * (size_t)n;
        double *AB = H;
        memset(AB, 0, nb * sizeof(double));
        for (int j = 0; j < n; j++)
            for (int i = j; i <= j + e->kd && i < n; i++)
                mark(1, AB + (size_t)(i - j) + (size_t)j * ld);
        if ((st = cb(e->hess_band(e->user, x, w, AB), "hess_band")) != WB_OK)
            return st;
        for (int j = 0; j < n; j++)
            for (int i = j; i <= j + e->kd && i < n; i++)
                if (is_mark(AB + (size_t)(i - j) + (size_t)j * ld)) {
                    size_t cnt = 0, tot = 0;
                    for (int jj = 0; jj < n; jj++)
                        for (int ii = jj; ii <= jj + e->kd && ii < n; ii++, tot++)
                            cnt += (size_t)is_mark(AB + (size_t)(ii - jj) + (size_t)jj * ld);
                    return unwritten("hess_band", "H (its band)",
                                     (long)j * n + i, cnt, tot, n);
                }
        if (!wbi_all_finite(nb, AB))
            return wbi_fail(WB_ENONFINITE, "wb_check_energy: hess_band gave "
                            "NaN or Inf at x");
        double worst = 0.0;
        int wm = -1;
        /* judge entry by entry against the band's largest |fd| */
        double fmaxabs = 0.0;
        for (int j = 0; j < n; j++)
            for (int i = j; i <= j + e->kd && i < n; i++)
                fmaxabs = fmax(fmaxabs, fabs(Hfd[(size_t)j * n + i]));
        for (int j = 0; j < n; j++)
            for (int i = j; i <= j + e->kd && i < n; i++) {
                size_t k = (size_t)j * n + i;
                double den = fmax(fmax(fabs(Hfd[k]), 1e-6 * fmaxabs),
                                  fmax(RES * rH[k], DBL_MIN));
                double err = fabs(AB[(size_t)(i - j) + (size_t)j * ld] - Hfd[k]) / den;
                if (!(err <= worst)) {
                    worst = err;
                    wm = (int)k;
                }
            }
        rep->hess_band_err = worst;
        rep->hess_band_worst = wm;
    }
    if (e->hess_nnz > 0) {
        /* the sparse pattern (and hess_sparse's values) against Hfd's lower
           triangle: an entry outside the pattern is predicted 0, so a
           pattern that misses a non-zero of H reads as a large error; with
           no hess_sparse only those entries are judged. Values go into
           H's space (nnz <= n(n+1)/2) */
        const int *cp = e->hess_colptr, *ri = e->hess_rowidx;
        if (e->hess_sparse) {
            mark((size_t)e->hess_nnz, H);
            if ((st = called(e->hess_sparse(e->user, x, w, H), "hess_sparse", "vals",
                             (size_t)e->hess_nnz, H, 0)) != WB_OK)
                return st;
        }
        double fmaxabs = 0.0, worst = 0.0;
        int wm = -1;
        for (int j = 0; j < n; j++)
            for (int i = j; i < n; i++) fmaxabs = fmax(fmaxabs, fabs(Hfd[(size_t)j * n + i]));
        for (int j = 0; j < n; j++) {
            int k = cp[j];
            for (int i = j; i < n; i++) {
                size_t q = (size_t)j * n + i;
                int in = k < cp[j + 1] && ri[k] == i;
                double pred = in ? (e->hess_sparse ? H[k] : Hfd[q]) : 0.0;
                if (in) k++;
                double den = fmax(fmax(fabs(Hfd[q]), 1e-6 * fmaxabs),
                                  fmax(RES * rH[q], DBL_MIN));
                double err = fabs(pred - Hfd[q]) / den;
                if (!(err <= worst)) {
                    worst = err;
                    wm = (int)q;
                }
            }
        }
        rep->hess_sparse_err = worst;
        rep->hess_sparse_worst = wm;
    }
    if (e->hvp || e->hess_diag) {
        probe(n, v);
        if (e->hvp) {
            mark((size_t)n, g1);
            if ((st = called(e->hvp(e->user, x, w, v, g1), "hvp", "Hv", (size_t)n, g1, 0)) != WB_OK)
                return st;
            for (int i = 0; i < n; i++) { /* g2 = Hfd v, rv = rH |v| */
                double t = 0.0, r = 0.0;
                for (int j = 0; j < n; j++) {
                    t += Hfd[(size_t)j * n + i] * v[j];
                    r += rH[(size_t)j * n + i] * fabs(v[j]);
                }
                g2[i] = t;
                rv[i] = r;
            }
            rep->hvp_err = worst_err((size_t)n, g1, g2, rv, &rep->hvp_worst);
        }
        if (e->hess_diag) {
            mark((size_t)n, g1);
            if ((st = called(e->hess_diag(e->user, x, w, g1), "hess_diag", "d",
                             (size_t)n, g1, 0)) != WB_OK)
                return st;
            for (int i = 0; i < n; i++) {
                g2[i] = Hfd[(size_t)i * n + i];
                rv[i] = rH[(size_t)i * n + i];
            }
            rep->hess_diag_err = worst_err((size_t)n, g1, g2, rv, &rep->hess_diag_worst);
        }
    }

    if (p > 0 && (e->mixed || e->mixed_vjp)) {
        /* Bfd[:,j] = (g(w + h e_j) - g(w - h e_j)) / 2h, rounding likewise */
        if ((st = fd_columns(e, s, x, w, 1, wh, g1, g2, Bfd, rB)) != WB_OK) return st;
        if (e->mixed) {
            mark(np, B);
            if ((st = called(e->mixed(e->user, x, w, B), "mixed", "B", np, B, n)) != WB_OK)
                return st;
            rep->mixed_err = worst_err(np, B, Bfd, rB, &rep->mixed_worst);
        }
        if (e->mixed_vjp) {
            probe(n, v);
            mark((size_t)p, o);
            if ((st = called(e->mixed_vjp(e->user, x, w, v, o), "mixed_vjp", "out",
                             (size_t)p, o, 0)) != WB_OK)
                return st;
            wbi_gemm_tn(n, p, 1, Bfd, v, ofd);
            for (int j = 0; j < p; j++) { /* ro = rB' |v| */
                double r = 0.0;
                for (int i = 0; i < n; i++) r += rB[(size_t)j * n + i] * fabs(v[i]);
                ro[j] = r;
            }
            rep->mixed_vjp_err = worst_err((size_t)p, o, ofd, ro, &rep->mixed_vjp_worst);
        }
    }
    return WB_OK;
}

/* One solve of the implicit check from x (in: start, out: x*) at w, with
   the check's own tolerances: grad_tol = min(the user's, 1e-9 ||g(start)||),
   step_tol 0, f_tol 0. A warm re-solve at w + h e_j starts where
   ||g|| ~ |B| h; stopping at 1e-9 of that puts x* within ~1e-9 h |J|, so
   the difference quotient is good to ~1e-9 |J| (the defaults, grad_tol
   1e-8 and step_tol 1e-10, leave errors of 1e-3 in it). The solver's
   positive statuses count as converged here (it stops at working precision
   by its own rules, or hits max_iter there); errors do not. g[n]: scratch. */
static wb_status check_solve(wb_solver *sv, const wb_settings *user,
                             const double *w, double *x, double *g) {
    double f;
    wb_status st = wbi_eval(sv, x, w, &f, g);
    if (st != WB_OK) return st;
    sv->s.grad_tol = fmin(user->grad_tol, 1e-9 * wbi_norm_inf(sv->n, g));
    st = wbi_solve(sv, w, x, NULL);
    return st == WB_MAXITER || st == WB_STALLED ? WB_OK : st;
}

static wb_status check_implicit(wb_solver *sv, const double *w,
                                const double *x0, double *max_rel_err);

wb_status wb_check_implicit(wb_solver *sv, const double *w, const double *x0,
                            double *max_rel_err) {
    if (!sv) return wbi_fail(WB_EINVAL, "%s: sv is NULL", __func__);
    if (!wbi_guard_take(&sv->busy)) return wbi_busy(__func__, "solver");
    wb_status st = check_implicit(sv, w, x0, max_rel_err);
    wbi_guard_drop(&sv->busy);
    return st;
}

/* The body, with sv->busy held: solves and derivatives through the
   unguarded wbi_solve / wbi_implicit_jacobian, so that no other call can
   slip in between. *max_rel_err is written last: it may overlap w or x0. */
static wb_status check_implicit(wb_solver *sv, const double *w,
                                const double *x0, double *max_rel_err) {
    if (!x0 || !max_rel_err || (sv->p > 0 && !w)) {
        wbi_set_msg(sv, "wb_check_implicit: NULL argument");
        return WB_EINVAL;
    }
    int n = sv->n, p = sv->p;
    if (!wbi_all_finite((size_t)n, x0) || (p > 0 && !wbi_all_finite((size_t)p, w))) {
        wbi_set_msg(sv, "wb_check_implicit: x0 or w holds NaN or Inf");
        return WB_EINVAL;
    }
    if (p == 0) {
        *max_rel_err = 0.0;
        return WB_OK;
    }
    size_t np = (size_t)n * p;
    double *buf = wbi_alloc(&sv->s, 2 * np + 4 * (size_t)n + 2 * (size_t)p,
                            sizeof(double));
    if (!buf) {
        wbi_set_msg(sv, "wb_check_implicit: out of memory");
        return WB_ENOMEM;
    }
    double *J = buf, *Jfd = J + np, *xstar = Jfd + np, *xp = xstar + n,
           *xm = xp + n, *g = xm + n, *wh = g + n, *wc = wh + p;
    /* w is read throughout: a copy, in case the caller's w moves under us
       (it may overlap max_rel_err, written last) */
    memcpy(wc, w, (size_t)p * sizeof(double));
    w = wc;
    wb_settings user = sv->s;
    sv->s.lambda = 0.0; /* the exact derivative */
    sv->s.step_tol = 0.0;
    sv->s.f_tol = 0.0;
    wb_status st;
    double err = 0.0;
    memcpy(xstar, x0, (size_t)n * sizeof(double));
    st = check_solve(sv, &user, w, xstar, g);
    if (st == WB_OK) st = wbi_implicit_jacobian(sv, J);
    if (st > 0) st = WB_OK; /* flagged non-stationary: converged as above */
    if (st != WB_OK) goto done;
    /* Jfd[:,j] = (x*(w + h e_j) - x*(w - h e_j)) / 2h, re-solving from x* */
    memcpy(wh, w, (size_t)p * sizeof(double));
    for (int j = 0; j < p && st == WB_OK; j++) {
        double h = 1e-5 * fmax(fabs(w[j]), 1.0);
        memcpy(xp, xstar, (size_t)n * sizeof(double));
        memcpy(xm, xstar, (size_t)n * sizeof(double));
        wh[j] = w[j] + h;
        st = check_solve(sv, &user, wh, xp, g);
        wh[j] = w[j] - h;
        if (st == WB_OK) st = check_solve(sv, &user, wh, xm, g);
        wh[j] = w[j];
        for (int i = 0; i < n; i++) Jfd[(size_t)j * n + i] = (xp[i] - xm[i]) / (2 * h);
    }
    if (st == WB_OK) {
        double m = 0.0, d = 0.0;
        for (size_t k = 0; k < np; k++) {
            m = fmax(m, fabs(Jfd[k]));
            d = fmax(d, fabs(J[k] - Jfd[k]));
        }
        err = d / fmax(m, 1e-12);
    } else {
        wbi_set_msg(sv, "wb_check_implicit: a re-solve failed (%s)",
                    wb_status_str(st));
    }
    /* leave the solver at the solve at w, with the user's settings */
    sv->s = user;
    memcpy(xp, xstar, (size_t)n * sizeof(double));
    if (st == WB_OK) st = wbi_solve(sv, w, xp, NULL);
    if (st > 0) st = WB_OK;
    if (st == WB_OK) {
        wbi_set_msg(sv, "wb_check_implicit: max relative error %.3g of the "
                    "implicit Jacobian against differences of x*(w)", err);
        *max_rel_err = err;
    }
done:
    sv->s = user;
    wbi_free(&sv->s, buf);
    return st;
}
