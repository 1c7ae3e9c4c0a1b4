/* Least-squares energies: E(x; w) = 1/2 sum_i c_i rho(||r_i||^2) from
 * residuals r_i(x; w) in R^dim and their Jacobians J = dr/dx (dense or
 * sparse rows), with robust losses. Per term, with s = ||r_i||^2:
 *
 *   E    = 1/2 sum c_i rho(s_i)
 *   grad = sum c_i rho'(s_i) J_i' r_i
 *   H_GN = sum J_i' W_i J_i,   W_i = c_i (rho' I + 2 rho'' r_i r_i')
 *   B_GN = sum J_i' W_i Jw_i   (Jw = dr/dw)
 *
 * W_i is the exact second derivative of 1/2 c rho(||r||^2) in r; what the
 * Gauss-Newton forms leave out is sum c rho' r_ic (d2 r_ic), zero only at
 * zero residual. WB_LSQ_EXACT hands H and B to the library's central
 * differences of the exact gradient instead.
 */
#include <math.h>
#include <string.h>

#include "wb_internal.h"

struct wb_lsq_energy {
    wb_lsq ls;          /* copy; pointers replaced by own copies       */
    wb_settings mem;    /* default allocator                           */
    int M;              /* m * dim                                     */
    double a;           /* loss scale                                  */
    int *row_ptr, *col_idx;
    double *c;          /* [m] weights                                 */
    double *r;          /* [M] residuals at the cached point           */
    double *J;          /* [M*n] dense or [nnz] sparse values          */
    double *Jw;         /* [M*p]                                       */
    double *WJ;         /* [M*n] dense: W J (then H = J'(WJ))          */
    double *t, *t2;     /* [M] temporaries                             */
    double *rw;         /* [M] residuals for differences in w          */
    double *wt;         /* [p] perturbed w                             */
    double *xc, *wc;    /* [n], [p]: the cached point                  */
    int have_r, have_J; /* what the cache holds at (xc, wc)            */
    wbi_guard busy;     /* taken by each callback: the cache above is
                           this object's state, one solve at a time      */
};

wb_status wb_loss_eval(wb_loss loss, double a, double s, double *rho,
                       double *d1, double *d2) {
    double r0, r1, r2;
    /* the outputs are written after everything is computed, but two that
       share memory would keep only the last */
    if (wbi_overlap(rho, sizeof *rho, d1, sizeof *d1) ||
        wbi_overlap(rho, sizeof *rho, d2, sizeof *d2) ||
        wbi_overlap(d1, sizeof *d1, d2, sizeof *d2))
        return wbi_fail(WB_EINVAL, "wb_loss_eval: two of rho, drho, d2rho "
                        "share memory (not allowed)");
    if (!(a > 0) || !isfinite(a))
        return wbi_fail(WB_EINVAL, "wb_loss_eval: scale a = %g must be finite "
                        "and > 0", a);
    if (!(s >= 0))
        return wbi_fail(WB_EINVAL, "wb_loss_eval: s = %g must be >= 0 (a "
                        "squared norm)", s);
    double a2 = a * a;
    switch (loss) {
    case WB_LOSS_TRIVIAL:
        r0 = s, r1 = 1, r2 = 0;
        break;
    case WB_LOSS_HUBER:
        if (s <= a2) {
            r0 = s, r1 = 1, r2 = 0;
        } else {
            double q = sqrt(s);
            r0 = 2 * a * q - a2, r1 = a / q, r2 = -0.5 * a / (s * q);
        }
        break;
    case WB_LOSS_SOFT_L1: {
        double u = 1 + s / a2, q = sqrt(u);
        r0 = 2 * a2 * (q - 1), r1 = 1 / q, r2 = -0.5 / (a2 * u * q);
        break;
    }
    case WB_LOSS_CAUCHY: {
        double u = 1 + s / a2;
        r0 = a2 * log(u), r1 = 1 / u, r2 = -1 / (a2 * u * u);
        break;
    }
    case WB_LOSS_TUKEY:
        if (s <= a2) {
            double v = 1 - s / a2;
            r0 = a2 / 3 * (1 - v * v * v), r1 = v * v, r2 = -2 * v / a2;
        } else {
            r0 = a2 / 3, r1 = 0, r2 = 0;
        }
        break;
    default:
        return wbi_fail(WB_EINVAL, "wb_loss_eval: loss = %d is not a wb_loss",
                        (int)loss);
    }
    if (rho) *rho = r0;
    if (d1) *d1 = r1;
    if (d2) *d2 = r2;
    return WB_OK;
}

/* r (and J) at (x, w), cached. */
static int lsq_eval(wb_lsq_energy *L, const double *x, const double *w,
                    int need_J) {
    const wb_lsq *ls = &L->ls;
    size_t n = (size_t)ls->n, p = (size_t)ls->p;
    int same = L->have_r && memcmp(L->xc, x, n * sizeof(double)) == 0 &&
               (p == 0 || memcmp(L->wc, w, p * sizeof(double)) == 0);
    if (same && (L->have_J || !need_J)) return 0;
    L->have_r = L->have_J = 0;
    int rc = ls->residual(ls->user, x, w, L->r, need_J ? L->J : NULL);
    if (rc != 0) return rc;
    memcpy(L->xc, x, n * sizeof(double));
    if (p) memcpy(L->wc, w, p * sizeof(double));
    L->have_r = 1;
    L->have_J = need_J;
    return 0;
}

/* t[M] = W (J v) per term, W_i = c_i (rho' I + 2 rho'' r_i r_i'); in is
   J v [M]. Needs r at the point. */
static void apply_W(const wb_lsq_energy *L, const double *in, double *out) {
    int dim = L->ls.dim;
    for (int i = 0; i < L->ls.m; i++) {
        const double *ri = L->r + (size_t)i * dim;
        const double *vi = in + (size_t)i * dim;
        double s = 0, rv = 0, d1 = 0, d2 = 0;
        for (int k = 0; k < dim; k++) s += ri[k] * ri[k], rv += ri[k] * vi[k];
        wb_loss_eval(L->ls.loss, L->a, s, NULL, &d1, &d2);
        for (int k = 0; k < dim; k++)
            out[(size_t)i * dim + k] = L->c[i] * (d1 * vi[k] + 2 * d2 * ri[k] * rv);
    }
}

/* out[M] = J v (v[n]) */
static void J_mul(const wb_lsq_energy *L, const double *v, double *out) {
    int M = L->M, n = L->ls.n;
    if (L->ls.nnz > 0) {
        for (int a = 0; a < M; a++) {
            double s = 0;
            for (int k = L->row_ptr[a]; k < L->row_ptr[a + 1]; k++)
                s += L->J[k] * v[L->col_idx[k]];
            out[a] = s;
        }
    } else {
        memset(out, 0, (size_t)M * sizeof(double));
        for (int j = 0; j < n; j++) wbi_axpy(M, v[j], L->J + (size_t)j * M, out);
    }
}

/* out[n] = J' u (u[M]) */
static void Jt_mul(const wb_lsq_energy *L, const double *u, double *out) {
    int M = L->M, n = L->ls.n;
    if (L->ls.nnz > 0) {
        memset(out, 0, (size_t)n * sizeof(double));
        for (int a = 0; a < M; a++)
            for (int k = L->row_ptr[a]; k < L->row_ptr[a + 1]; k++)
                out[L->col_idx[k]] += L->J[k] * u[a];
    } else {
        wbi_gemm_tn(M, n, 1, L->J, u, out);
    }
}

static int lsq_vg_body(void *u, const double *x, const double *w, double *e,
                  double *g) {
    wb_lsq_energy *L = u;
    int rc = lsq_eval(L, x, w, g != NULL);
    if (rc != 0) return rc;
    int dim = L->ls.dim;
    double E = 0;
    for (int i = 0; i < L->ls.m; i++) {
        const double *ri = L->r + (size_t)i * dim;
        double s = 0, r0 = 0, d1 = 0;
        for (int k = 0; k < dim; k++) s += ri[k] * ri[k];
        wb_loss_eval(L->ls.loss, L->a, s, &r0, &d1, NULL);
        E += 0.5 * L->c[i] * r0;
        for (int k = 0; k < dim; k++) L->t[(size_t)i * dim + k] = L->c[i] * d1 * ri[k];
    }
    *e = E;
    if (g) Jt_mul(L, L->t, g); /* grad = J' (c rho' r) */
    return 0;
}

/* dense H = J' W J */
static int lsq_hess_body(void *u, const double *x, const double *w, double *H) {
    wb_lsq_energy *L = u;
    int rc = lsq_eval(L, x, w, 1);
    if (rc != 0) return rc;
    int M = L->M, n = L->ls.n;
    for (int j = 0; j < n; j++) apply_W(L, L->J + (size_t)j * M, L->WJ + (size_t)j * M);
    wbi_gemm_tn(M, n, n, L->J, L->WJ, H);
    return 0;
}

/* W_i between rows a, b of term i (a, b local indices) */
static double W_ab(const wb_lsq_energy *L, int i, int a, int b, double d1,
                   double d2) {
    const double *ri = L->r + (size_t)i * L->ls.dim;
    return L->c[i] * ((a == b ? d1 : 0.0) + 2 * d2 * ri[a] * ri[b]);
}

/* sparse: accumulate sum_i J_i' W_i J_i into the band (kd > 0) or its
   diagonal (band == NULL). */
static void sparse_accumulate(const wb_lsq_energy *L, double *AB, double *diag) {
    int dim = L->ls.dim, kd = L->ls.kd;
    size_t ld = (size_t)kd + 1;
    for (int i = 0; i < L->ls.m; i++) {
        const double *ri = L->r + (size_t)i * dim;
        double s = 0, d1 = 0, d2 = 0;
        for (int k = 0; k < dim; k++) s += ri[k] * ri[k];
        wb_loss_eval(L->ls.loss, L->a, s, NULL, &d1, &d2);
        for (int a = 0; a < dim; a++) {
            int ra = i * dim + a;
            for (int b = 0; b < dim; b++) {
                int rb = i * dim + b;
                double wab = W_ab(L, i, a, b, d1, d2);
                if (wab == 0) continue;
                for (int ka = L->row_ptr[ra]; ka < L->row_ptr[ra + 1]; ka++)
                    for (int kb = L->row_ptr[rb]; kb < L->row_ptr[rb + 1]; kb++) {
                        int j = L->col_idx[ka], k = L->col_idx[kb];
                        double v = wab * L->J[ka] * L->J[kb];
                        if (AB) {
                            if (j >= k && j - k <= kd) AB[(size_t)(j - k) + (size_t)k * ld] += v;
                        } else if (j == k) {
                            diag[j] += v;
                        }
                    }
            }
        }
    }
}

static int lsq_band_body(void *u, const double *x, const double *w, double *AB) {
    wb_lsq_energy *L = u;
    int rc = lsq_eval(L, x, w, 1);
    if (rc != 0) return rc;
    memset(AB, 0, ((size_t)L->ls.kd + 1) * (size_t)L->ls.n * sizeof(double));
    sparse_accumulate(L, AB, NULL);
    return 0;
}

static int lsq_hvp_body(void *u, const double *x, const double *w, const double *v,
                   double *out) {
    wb_lsq_energy *L = u;
    int rc = lsq_eval(L, x, w, 1);
    if (rc != 0) return rc;
    J_mul(L, v, L->t);      /* J v        */
    apply_W(L, L->t, L->t2); /* W J v      */
    Jt_mul(L, L->t2, out);  /* J' W J v   */
    return 0;
}

static int lsq_diag_body(void *u, const double *x, const double *w, double *d) {
    wb_lsq_energy *L = u;
    int rc = lsq_eval(L, x, w, 1);
    if (rc != 0) return rc;
    memset(d, 0, (size_t)L->ls.n * sizeof(double));
    sparse_accumulate(L, NULL, d);
    return 0;
}

/* Jw at (x, w): the callback or central differences of r in w. Uses the
   cache's r afterwards: re-evaluates r at (x, w). */
static int lsq_Jw(wb_lsq_energy *L, const double *x, const double *w) {
    const wb_lsq *ls = &L->ls;
    int M = L->M, p = ls->p;
    if (ls->residual_w) return ls->residual_w(ls->user, x, w, L->Jw);
    wb_settings def;
    wb_settings_default(&def);
    memcpy(L->wt, w, (size_t)p * sizeof(double));
    for (int j = 0; j < p; j++) {
        double h = wbi_fd_step(&def, w[j], 1.0);
        double *col = L->Jw + (size_t)j * M;
        L->wt[j] = w[j] + h;
        int rc = ls->residual(ls->user, x, L->wt, col, NULL);
        L->wt[j] = w[j] - h;
        if (rc == 0) rc = ls->residual(ls->user, x, L->wt, L->rw, NULL);
        L->wt[j] = w[j];
        if (rc != 0) return rc;
        for (int a = 0; a < M; a++) col[a] = (col[a] - L->rw[a]) / (2 * h);
    }
    return 0;
}

/* out[p] = B' v = Jw' W J v */
static int lsq_mixed_vjp_body(void *u, const double *x, const double *w,
                         const double *v, double *out) {
    wb_lsq_energy *L = u;
    int rc = lsq_Jw(L, x, w);
    if (rc == 0) rc = lsq_eval(L, x, w, 1);
    if (rc != 0) return rc;
    J_mul(L, v, L->t);
    apply_W(L, L->t, L->t2);
    wbi_gemm_tn(L->M, L->ls.p, 1, L->Jw, L->t2, out);
    return 0;
}

/* B[n*p] = J' W Jw */
static int lsq_mixed_body(void *u, const double *x, const double *w, double *B) {
    wb_lsq_energy *L = u;
    int rc = lsq_Jw(L, x, w);
    if (rc == 0) rc = lsq_eval(L, x, w, 1);
    if (rc != 0) return rc;
    int M = L->M, n = L->ls.n;
    for (int j = 0; j < L->ls.p; j++) {
        apply_W(L, L->Jw + (size_t)j * M, L->t2);
        Jt_mul(L, L->t2, B + (size_t)j * n);
    }
    return 0;
}

/* The callbacks handed to the solver: each holds the energy's in-use flag
   while it works on the shared cache. A second solver calling into the same
   wb_lsq_energy at the same time (two threads sharing it) gets WB_EBUSY as
   the callback's return, which its solve reports as WB_ECALLBACK ("...
   returned -9"), with wb_last_error saying why: a refusal, never a result
   computed from another solve's residuals. */
#define GUARDED(name, params, args)                                           \
    static int name params {                                                  \
        wb_lsq_energy *L = u;                                                 \
        if (!wbi_guard_take(&L->busy))                                        \
            return (int)wbi_busy("wb_lsq_energy callback " #name,             \
                                 "wb_lsq_energy (shared by two solvers?)");   \
        int rc = name##_body args;                                            \
        wbi_guard_drop(&L->busy);                                             \
        return rc;                                                            \
    }
GUARDED(lsq_vg, (void *u, const double *x, const double *w, double *e,
                 double *g), (u, x, w, e, g))
GUARDED(lsq_hess, (void *u, const double *x, const double *w, double *H),
        (u, x, w, H))
GUARDED(lsq_band, (void *u, const double *x, const double *w, double *AB),
        (u, x, w, AB))
GUARDED(lsq_hvp, (void *u, const double *x, const double *w, const double *v,
                  double *out), (u, x, w, v, out))
GUARDED(lsq_diag, (void *u, const double *x, const double *w, double *d),
        (u, x, w, d))
GUARDED(lsq_mixed_vjp, (void *u, const double *x, const double *w,
                        const double *v, double *out), (u, x, w, v, out))
GUARDED(lsq_mixed, (void *u, const double *x, const double *w, double *B),
        (u, x, w, B))
#undef GUARDED

void wb_lsq_energy_destroy(wb_lsq_energy *L) {
    if (!L) return;
    void *b[] = {L->row_ptr, L->col_idx, L->c, L->r, L->J, L->Jw, L->WJ,
                 L->t, L->t2, L->rw, L->wt, L->xc, L->wc};
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) wbi_free(&L->mem, b[i]);
    wbi_free(&L->mem, L);
}

wb_status wb_lsq_energy_create(wb_lsq_energy **out, const wb_lsq *ls,
                               wb_energy *e) {
    if (!out) return wbi_fail(WB_EINVAL, "%s: out is NULL", __func__);
    /* *out and *e are written, *ls is read after that: none may overlap
       another (refused before anything is written; *out is left alone when
       it lies inside ls or e) */
    if (wbi_overlap(out, sizeof *out, ls, sizeof *ls) ||
        wbi_overlap(out, sizeof *out, e, sizeof *e))
        return wbi_fail(WB_EINVAL, "wb_lsq_energy_create: out shares memory "
                        "with ls or e (not allowed)");
    *out = NULL;
    if (wbi_overlap(e, sizeof *e, ls, sizeof *ls))
        return wbi_fail(WB_EINVAL, "wb_lsq_energy_create: e and ls share "
                        "memory (not allowed: e is written, ls read after)");
#define BAD(...) return wbi_fail(WB_EINVAL, "wb_lsq_energy_create: " __VA_ARGS__)
    if (!ls) BAD("ls is NULL");
    if (!e) BAD("e is NULL");
    if (!ls->residual) BAD("ls.residual is required (NULL given)");
    if (ls->n < 1) BAD("ls.n = %d must be >= 1", ls->n);
    if (ls->p < 0) BAD("ls.p = %d must be >= 0", ls->p);
    if (ls->m < 1) BAD("ls.m = %d must be >= 1", ls->m);
    if (ls->dim < 1) BAD("ls.dim = %d must be >= 1", ls->dim);
    if (ls->nnz < 0) BAD("ls.nnz = %d must be >= 0", ls->nnz);
    if (ls->nnz > 0 && (!ls->row_ptr || !ls->col_idx))
        BAD("ls.nnz = %d > 0 needs ls.row_ptr and ls.col_idx", ls->nnz);
    if (ls->kd < 0 || ls->kd >= ls->n)
        BAD("ls.kd = %d must be in [0, n - 1 = %d]", ls->kd, ls->n - 1);
    if (ls->kd > 0 && ls->nnz == 0)
        BAD("ls.kd = %d > 0 needs a sparse (CSR) Jacobian pattern", ls->kd);
    if (ls->loss < WB_LOSS_TRIVIAL || ls->loss > WB_LOSS_TUKEY)
        BAD("ls.loss = %d is not a wb_loss", (int)ls->loss);
    if (!(ls->loss_scale >= 0) || !isfinite(ls->loss_scale))
        BAD("ls.loss_scale = %g must be finite and >= 0", ls->loss_scale);
    if (ls->hessian != WB_LSQ_GAUSS_NEWTON && ls->hessian != WB_LSQ_EXACT)
        BAD("ls.hessian = %d is not a wb_lsq_hessian", (int)ls->hessian);
    if ((double)ls->m * ls->dim > 2147483647.0)
        BAD("ls.m * ls.dim = %.0f residuals exceed LAPACK's int sizes",
            (double)ls->m * ls->dim);
    int M = ls->m * ls->dim;
    if (ls->nnz > 0) { /* the pattern must be a valid CSR */
        if (ls->row_ptr[0] != 0 || ls->row_ptr[M] != ls->nnz)
            BAD("ls.row_ptr must start at 0 and end at nnz = %d (it holds "
                "%d .. %d)", ls->nnz, ls->row_ptr[0], ls->row_ptr[M]);
        for (int a = 0; a < M; a++)
            if (ls->row_ptr[a + 1] < ls->row_ptr[a])
                BAD("ls.row_ptr decreases at row %d", a);
        for (int k = 0; k < ls->nnz; k++)
            if (ls->col_idx[k] < 0 || ls->col_idx[k] >= ls->n)
                BAD("ls.col_idx[%d] = %d is outside [0, n - 1 = %d]", k,
                    ls->col_idx[k], ls->n - 1);
    } else if ((double)M * ls->n > 2147483647.0) {
        BAD("a dense %d x %d Jacobian exceeds LAPACK's int sizes", M, ls->n);
    }
    if (ls->weights)
        for (int i = 0; i < ls->m; i++)
            if (!(ls->weights[i] >= 0) || !isfinite(ls->weights[i]))
                BAD("ls.weights[%d] = %g must be finite and >= 0", i,
                    ls->weights[i]);
#undef BAD

    wb_settings mem;
    wb_settings_default(&mem);
    wb_lsq_energy *L = wbi_alloc(&mem, 1, sizeof *L);
    if (!L) return wbi_fail(WB_ENOMEM, "wb_lsq_energy_create: out of memory");
    memset(L, 0, sizeof *L);
    L->ls = *ls;
    L->mem = mem;
    L->M = M;
    L->a = ls->loss_scale > 0 ? ls->loss_scale : 1.0;
    size_t n = (size_t)ls->n, p = (size_t)(ls->p > 0 ? ls->p : 1), Ms = (size_t)M;
    size_t jsz = ls->nnz > 0 ? (size_t)ls->nnz : Ms * n;
    int ok = 1;
#define ALLOC(ptr, cnt, T)                                                     \
    do {                                                                       \
        ptr = wbi_alloc(&mem, (cnt), sizeof(T));                               \
        if (!ptr) ok = 0;                                                      \
    } while (0)
    ALLOC(L->c, (size_t)ls->m, double);
    ALLOC(L->r, Ms, double);
    ALLOC(L->J, jsz, double);
    ALLOC(L->Jw, Ms * p, double);
    ALLOC(L->WJ, ls->nnz > 0 ? 1 : Ms * n, double);
    ALLOC(L->t, Ms, double);
    ALLOC(L->t2, Ms, double);
    ALLOC(L->rw, Ms, double);
    ALLOC(L->wt, p, double);
    ALLOC(L->xc, n, double);
    ALLOC(L->wc, p, double);
    if (ls->nnz > 0) {
        ALLOC(L->row_ptr, Ms + 1, int);
        ALLOC(L->col_idx, (size_t)ls->nnz, int);
    }
#undef ALLOC
    if (!ok) {
        wb_lsq_energy_destroy(L);
        return wbi_fail(WB_ENOMEM, "wb_lsq_energy_create: out of memory");
    }
    for (int i = 0; i < ls->m; i++) L->c[i] = ls->weights ? ls->weights[i] : 1.0;
    if (ls->nnz > 0) {
        memcpy(L->row_ptr, ls->row_ptr, (Ms + 1) * sizeof(int));
        memcpy(L->col_idx, ls->col_idx, (size_t)ls->nnz * sizeof(int));
        L->ls.row_ptr = L->row_ptr;
        L->ls.col_idx = L->col_idx;
    }
    L->ls.weights = L->c;
    wbi_guard_init(&L->busy);

    memset(e, 0, sizeof *e);
    e->n = ls->n;
    e->p = ls->p;
    e->user = L;
    e->value_grad = lsq_vg;
    e->kd = ls->kd;
    if (ls->hessian == WB_LSQ_GAUSS_NEWTON) {
        if (ls->nnz == 0) e->hess = lsq_hess;
        else if (ls->kd > 0) e->hess_band = lsq_band;
        else e->hvp = lsq_hvp, e->hess_diag = lsq_diag;
        if (ls->p > 0) {
            e->mixed_vjp = lsq_mixed_vjp;
            e->mixed = lsq_mixed;
        }
    }
    /* WB_LSQ_EXACT: no hess / mixed callbacks, so the library differences
       the exact gradient (banded by colouring when kd > 0; for a large
       sparse problem without kd, set settings.hessian =
       WB_HESS_MATRIX_FREE, differences per product) */
    *out = L;
    return WB_OK;
}
