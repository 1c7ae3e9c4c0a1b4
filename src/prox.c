/* ProxProp: the proximal step of a linear layer (Frerix et al., ICLR 2018).
 *
 * T = [W b] (out x n, n = in + 1), A1 = [A; 1'] (n x m):
 *
 *   T+ = argmin_T 1/2 ||T A1 - Z||^2 + 1/(2 tau) ||T - T0||^2
 *      solves  T+ M = R,   M = A1 A1' + I/tau (n x n, SPD),
 *                          R = Z A1' + T0/tau (out x n)
 *
 *   exact  M = L L' (dpotrf), T+ = R L'^-1 L^-1 (two dtrsm from the right:
 *          every row of T at once, no transposes, no inverse formed)
 *   cg     per row r: CG on M t_r' = r_r' from t_r = T0_r. The rows share M,
 *          so the products P M of all search directions are one dsymm.
 *
 * M is formed without copying A: its leading in x in block is A A' (dsyrk),
 * its last row holds the row sums of A and its corner m (the ones row);
 * likewise R = T0/tau + [Z A', Z 1]. Every buffer is allocated at create;
 * wb_prox_step never allocates.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "wb_internal.h"

struct wb_prox {
    wb_settings mem;  /* allocator hooks only (wbi_alloc / wbi_free)      */
    wb_prox_settings s;
    int out, in, n;   /* n = in + 1                                        */
    double *M;        /* [n*n] A1 A1' + I/tau, lower; exact: its factor    */
    double *R;        /* [out*n] right-hand side, then the CG residual /
                         the exact solution                                */
    double *X;        /* [out*n] CG iterate                                */
    double *P, *Q;    /* [out*n] CG search directions and P M               */
    double *rr, *rr0, *pq, *alpha; /* [out] per-row CG scalars            */
    char msg[WBI_MSG_LEN];
    wbi_guard busy;   /* taken by wb_prox_step / wb_prox_set_tau (WB_EBUSY) */
};

static void set_msg(wb_prox *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void set_msg(wb_prox *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->msg, sizeof p->msg, fmt, ap);
    va_end(ap);
}

void wb_prox_settings_default(wb_prox_settings *s) {
    if (!s) return;
    memset(s, 0, sizeof *s);
    s->tau = 1.0;
    s->mode = WB_PROX_EXACT;
    s->cg_iters = 3;
    s->cg_tol = 0.0;
    s->alloc = NULL;
    s->dealloc = NULL;
    s->alloc_ctx = NULL;
}

static int tau_ok(double tau) { return tau > 0 && isfinite(tau); }

#define BAD(...) return wbi_fail(WB_EINVAL, "wb_prox_create: " __VA_ARGS__)
static wb_status check_settings(const wb_prox_settings *s) {
    if (!tau_ok(s->tau)) BAD("settings.tau = %g must be finite and > 0", s->tau);
    if (s->mode != WB_PROX_EXACT && s->mode != WB_PROX_CG)
        BAD("settings.mode = %d is not a wb_prox_mode", (int)s->mode);
    if (s->cg_iters < 1) BAD("settings.cg_iters = %d must be >= 1", s->cg_iters);
    if (!(s->cg_tol >= 0 && s->cg_tol < 1))
        BAD("settings.cg_tol = %g must be in [0, 1)", s->cg_tol);
    if ((s->alloc == NULL) != (s->dealloc == NULL))
        BAD("settings.alloc and settings.dealloc must be set together");
    return WB_OK;
}

void wb_prox_destroy(wb_prox *p) {
    if (!p) return;
    wb_settings mem = p->mem;
    void *bufs[] = {p->M,  p->R,   p->X,  p->P,    p->Q,
                    p->rr, p->rr0, p->pq, p->alpha};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        wbi_free(&mem, bufs[i]);
    wbi_free(&mem, p);
}

wb_status wb_prox_create(wb_prox **out, int n_out, int n_in,
                         const wb_prox_settings *s) {
    if (!out) return wbi_fail(WB_EINVAL, "%s: out is NULL", __func__);
    *out = NULL;
    wb_prox_settings st;
    if (s) st = *s;
    else wb_prox_settings_default(&st);
    if (check_settings(&st) != WB_OK) return WB_EINVAL;
    if (n_out < 1 || n_in < 1 || n_in == 2147483647)
        BAD("n_out = %d and n_in = %d must be >= 1", n_out, n_in);
    /* BLAS takes int sizes: n*n and out*n must fit */
    double n = (double)n_in + 1.0;
    if (n * n > 2147483647.0 || n * n_out > 2147483647.0)
        BAD("n_out = %d, n_in = %d: (n_in + 1)^2 or n_out (n_in + 1) "
            "exceeds BLAS's int sizes", n_out, n_in);
#undef BAD

    wb_settings mem;
    memset(&mem, 0, sizeof mem);
    mem.alloc = st.alloc;
    mem.dealloc = st.dealloc;
    mem.alloc_ctx = st.alloc_ctx;

    wb_prox *p = wbi_alloc(&mem, 1, sizeof *p);
    if (!p) return wbi_fail(WB_ENOMEM, "wb_prox_create: out of memory");
    memset(p, 0, sizeof *p);
    p->mem = mem;
    p->s = st;
    p->out = n_out;
    p->in = n_in;
    p->n = n_in + 1;
    size_t nn = (size_t)p->n * (size_t)p->n, on = (size_t)n_out * (size_t)p->n;
    int ok = 1;
    ok = ok && (p->M = wbi_alloc(&mem, nn, sizeof(double))) != NULL;
    ok = ok && (p->R = wbi_alloc(&mem, on, sizeof(double))) != NULL;
    if (st.mode == WB_PROX_CG) {
        ok = ok && (p->X = wbi_alloc(&mem, on, sizeof(double))) != NULL;
        ok = ok && (p->P = wbi_alloc(&mem, on, sizeof(double))) != NULL;
        ok = ok && (p->Q = wbi_alloc(&mem, on, sizeof(double))) != NULL;
        ok = ok && (p->rr = wbi_alloc(&mem, (size_t)n_out, sizeof(double))) != NULL;
        ok = ok && (p->rr0 = wbi_alloc(&mem, (size_t)n_out, sizeof(double))) != NULL;
        ok = ok && (p->pq = wbi_alloc(&mem, (size_t)n_out, sizeof(double))) != NULL;
        ok = ok && (p->alpha = wbi_alloc(&mem, (size_t)n_out, sizeof(double))) != NULL;
    }
    if (!ok) {
        wb_prox_destroy(p);
        return wbi_fail(WB_ENOMEM, "wb_prox_create: out of memory");
    }
    wbi_guard_init(&p->busy);
    *out = p;
    return WB_OK;
}

wb_status wb_prox_set_tau(wb_prox *p, double tau) {
    if (!p) return wbi_fail(WB_EINVAL, "%s: p is NULL", __func__);
    if (!wbi_guard_take(&p->busy)) return wbi_busy(__func__, "prox object");
    wb_status st = WB_OK;
    if (!tau_ok(tau)) {
        set_msg(p, "tau = %g must be finite and > 0", tau);
        st = WB_EINVAL;
    } else {
        p->s.tau = tau;
    }
    wbi_guard_drop(&p->busy);
    return st;
}

const char *wb_prox_message(const wb_prox *p) {
    return p ? p->msg : "no prox object";
}

/* M = A1 A1' + I/tau (lower) and R = Z A1' + T0/tau. */
static void form_system(wb_prox *p, int m, const double *A, const double *Z,
                        const double *T0) {
    const int out = p->out, in = p->in, n = p->n;
    const double itau = 1.0 / p->s.tau;
    double *M = p->M, *R = p->R;
    /* M[0:in, 0:in] = A A' */
    wbi_syrk_ld(in, m, 1.0, A, in, 0.0, M, n);
    /* M[in, i] = sum_j A_ij (the ones row against A), M[in, in] = m */
    for (int i = 0; i < in; i++) M[in + (size_t)i * n] = 0.0;
    for (int j = 0; j < m; j++) {
        const double *a = A + (size_t)j * in;
        for (int i = 0; i < in; i++) M[in + (size_t)i * n] += a[i];
    }
    M[in + (size_t)in * n] = (double)m;
    for (int i = 0; i < n; i++) M[i + (size_t)i * n] += itau;

    /* R = T0/tau; R[:, 0:in] += Z A'; R[:, in] += Z 1 */
    size_t on = (size_t)out * n;
    for (size_t k = 0; k < on; k++) R[k] = T0[k] * itau;
    wbi_gemm_ld(0, 1, out, in, m, 1.0, Z, out, A, in, 1.0, R, out);
    double *rb = R + (size_t)in * out;
    for (int j = 0; j < m; j++) {
        const double *z = Z + (size_t)j * out;
        for (int r = 0; r < out; r++) rb[r] += z[r];
    }
}

/* Lower triangle of M finite. */
static int lower_finite(int n, const double *M) {
    for (int j = 0; j < n; j++)
        if (!wbi_all_finite((size_t)(n - j), M + j + (size_t)j * n)) return 0;
    return 1;
}

static wb_status step_exact(wb_prox *p, double *T) {
    const int out = p->out, n = p->n;
    int info = wbi_chol(n, p->M);
    if (info != 0) {
        set_msg(p, "prox: A1 A1' + I/tau (%d x %d, tau = %g) is not "
                   "numerically positive definite (Cholesky info %d)",
                n, n, p->s.tau, info);
        return WB_ESINGULAR;
    }
    /* T+ = R M^-1 = R L'^-1 L^-1 */
    wbi_chol_solve_right(n, p->M, out, p->R, out);
    size_t on = (size_t)out * n;
    if (!wbi_all_finite(on, p->R)) {
        set_msg(p, "prox: the exact step overflowed (non-finite result)");
        return WB_ENONFINITE;
    }
    memcpy(T, p->R, on * sizeof *T);
    set_msg(p, "exact: Cholesky of the %d x %d system, %d rows", n, n, out);
    return WB_OK;
}

static wb_status step_cg(wb_prox *p, const double *T0, double *T) {
    const int out = p->out, n = p->n, k_max = p->s.cg_iters;
    const size_t on = (size_t)out * n;
    double *X = p->X, *R = p->R, *P = p->P, *Q = p->Q;
    double *rr = p->rr, *rr0 = p->rr0, *pq = p->pq, *al = p->alpha;
    const double tol2 = p->s.cg_tol * p->s.cg_tol;

    /* X = T0; R = R - T0 M (the residual at the warm start, = -G); P = R */
    memcpy(X, T0, on * sizeof *X);
    wbi_symm_right(out, n, -1.0, p->M, n, T0, out, 1.0, R, out);
    memcpy(P, R, on * sizeof *P);
    /* rr_r = ||r_r||^2, row by row (the rows are strided: accumulate by
       columns to stay contiguous) */
    for (int r = 0; r < out; r++) rr[r] = 0.0;
    for (int j = 0; j < n; j++) {
        const double *c = R + (size_t)j * out;
        for (int r = 0; r < out; r++) rr[r] += c[r] * c[r];
    }
    int active = 0;
    for (int r = 0; r < out; r++) {
        rr0[r] = rr[r];
        if (rr[r] > 0) active++;
    }

    int it = 0;
    while (it < k_max && active > 0) {
        it++;
        /* Q = P M */
        wbi_symm_right(out, n, 1.0, p->M, n, P, out, 0.0, Q, out);
        for (int r = 0; r < out; r++) pq[r] = 0.0;
        for (int j = 0; j < n; j++) {
            const double *pc = P + (size_t)j * out, *qc = Q + (size_t)j * out;
            for (int r = 0; r < out; r++) pq[r] += pc[r] * qc[r];
        }
        /* alpha_r = rr_r / p_r' M p_r (0 for a finished row) */
        for (int r = 0; r < out; r++)
            al[r] = (rr[r] > 0 && pq[r] > 0) ? rr[r] / pq[r] : 0.0;
        /* x_r += alpha_r p_r; r_r -= alpha_r q_r; the new ||r_r||^2 in pq */
        for (int r = 0; r < out; r++) pq[r] = 0.0;
        for (int j = 0; j < n; j++) {
            double *xc = X + (size_t)j * out, *rc = R + (size_t)j * out;
            const double *pc = P + (size_t)j * out, *qc = Q + (size_t)j * out;
            for (int r = 0; r < out; r++) {
                xc[r] += al[r] * pc[r];
                rc[r] -= al[r] * qc[r];
                pq[r] += rc[r] * rc[r];
            }
        }
        /* beta_r = rr_new / rr_old; a row stops when alpha_r = 0 or its
           residual met cg_tol (then beta_r = 0 and alpha_r stays 0: its
           direction becomes its residual, which is no longer used) */
        active = 0;
        for (int r = 0; r < out; r++) {
            double b = 0.0;
            if (al[r] > 0 && pq[r] > tol2 * rr0[r]) {
                b = pq[r] / rr[r];
                rr[r] = pq[r];
                active++;
            } else {
                rr[r] = 0.0; /* finished: alpha = 0 from now on */
            }
            al[r] = b;
        }
        if (it == k_max || active == 0) break;
        for (int j = 0; j < n; j++) {
            double *pc = P + (size_t)j * out;
            const double *rc = R + (size_t)j * out;
            for (int r = 0; r < out; r++) pc[r] = rc[r] + al[r] * pc[r];
        }
    }
    if (!wbi_all_finite(on, X)) {
        set_msg(p, "prox: the CG step overflowed (non-finite result)");
        return WB_ENONFINITE;
    }
    /* the largest relative residual ||r_r|| / ||r_r^0|| over the rows */
    for (int r = 0; r < out; r++) pq[r] = 0.0;
    for (int j = 0; j < n; j++) {
        const double *c = R + (size_t)j * out;
        for (int r = 0; r < out; r++) pq[r] += c[r] * c[r];
    }
    double worst = 0.0;
    for (int r = 0; r < out; r++)
        if (rr0[r] > 0) {
            double q = sqrt(pq[r] / rr0[r]);
            if (q > worst) worst = q;
        }
    memcpy(T, X, on * sizeof *T);
    set_msg(p, "cg: %d iteration%s, largest relative residual %.3g", it,
            it == 1 ? "" : "s", worst);
    return WB_OK;
}

static wb_status prox_step(wb_prox *p, int m, const double *A,
                           const double *Z, const double *T0, double *T);

/* The in-use guard around the step. Overlapping arguments need nothing
   more: A, Z and T0 are read in full (into M, R and the CG iterate) before
   T is written, and T is written once, at the end; so T may overlap any
   input (T == T0 is the in-place step) and the result is that of separate
   buffers. */
wb_status wb_prox_step(wb_prox *p, int m, const double *A, const double *Z,
                       const double *T0, double *T) {
    if (!p) return wbi_fail(WB_EINVAL, "%s: p is NULL", __func__);
    if (!wbi_guard_take(&p->busy)) return wbi_busy(__func__, "prox object");
    wb_status st = prox_step(p, m, A, Z, T0, T);
    wbi_guard_drop(&p->busy);
    return st;
}

/* The body of wb_prox_step; the caller holds p->busy. */
static wb_status prox_step(wb_prox *p, int m, const double *A,
                           const double *Z, const double *T0, double *T) {
    if (!A || !Z || !T0 || !T) {
        set_msg(p, "prox: %s is NULL",
                !A ? "A" : !Z ? "Z" : !T0 ? "T0" : "T");
        return WB_EINVAL;
    }
    if (m < 1 || (double)m * p->in > 2147483647.0 ||
        (double)m * p->out > 2147483647.0) {
        set_msg(p, "prox: batch size m = %d must be >= 1 (and m * size must "
                   "fit an int)", m);
        return WB_EINVAL;
    }
    form_system(p, m, A, Z, T0);
    /* NaN/Inf in A, Z or T0 reach M or R (the diagonal of M and the last
       column of R sum squares / entries of each), so the inputs are scanned
       only when something is wrong */
    if (!lower_finite(p->n, p->M) ||
        !wbi_all_finite((size_t)p->out * p->n, p->R)) {
        const char *bad =
            !wbi_all_finite((size_t)p->in * m, A)              ? "A"
            : !wbi_all_finite((size_t)p->out * m, Z)           ? "Z"
            : !wbi_all_finite((size_t)p->out * p->n, T0)       ? "T0"
                                                                : NULL;
        if (bad) {
            set_msg(p, "prox: %s holds NaN or Inf", bad);
            return WB_EINVAL;
        }
        set_msg(p, "prox: A A' or Z A' overflows (non-finite system)");
        return WB_ENONFINITE;
    }
    return p->s.mode == WB_PROX_EXACT ? step_exact(p, T) : step_cg(p, T0, T);
}
