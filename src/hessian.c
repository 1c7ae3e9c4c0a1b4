/* The Hessian operator behind the solver and the implicit derivatives, in
 * one of four representations:
 *
 *   dense        H[n*n]; Cholesky (dpotrf)                O(n^3)
 *   banded       lower band AB[(kd+1)*n]; dpbtrf          O(n kd^2)
 *   matrix-free  H v from the hvp callback (or differences of the gradient);
 *                solves by conjugate gradients            O(n) per product
 *   sparse       the pattern's values; CHOLMOD (sparse.c) O(fill)
 *
 * Missing second derivatives come from central differences of the gradient:
 * dense column by column (2n gradient calls), banded by colouring (columns
 * 2kd+1 apart share no row, so 2(2kd+1) calls form the whole band).
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "wb_internal.h"

/* WB_HESS_AUTO, by cost (the rule documented at wb_hessian_kind):
 *
 *   hess_nnz > 0           sparse: the energy knows H's structure; a
 *                          fill-reducing sparse Cholesky costs at most what
 *                          the band does and O(n^1.5) on a 2-D grid (a band
 *                          of a 2-D grid costs n kd^2 = O(n^2))
 *   0 < kd <= 32, or       banded: a factor costs n kd^2, a band 2(2kd+1)
 *     kd > 32 without hvp  gradients at most (hess_band, or differences),
 *                          whatever else the energy gives. With hvp and a
 *                          wide band the products win: a factor costs
 *                          n kd^2 flops, a product of the (2kd+1)-wide band
 *                          about 2 n (2kd+1), so a factor is worth about
 *                          kd/4 products -- 8 at kd = 32, what a single
 *                          Steihaug step spends, 64 at kd = 256 (P3 of the
 *                          benchmarks, a 256x256 grid: banded 1.8 s,
 *                          matrix-free 0.03 s to the same target)
 *   hess, n <= 256         dense: one Hessian plus n^3/3 flops (<= 5.6e6)
 *                          per iteration is cheap at any gradient cost, and
 *                          buys exact Newton steps and a reusable factor
 *   hvp, n <= 256          matrix-free (Steihaug CG) on its products: CG
 *                          reaches the exact Newton step within n products,
 *                          so every step is Newton's at a bounded cost
 *   value_grad only,       dense: a difference Hessian is 2n <= 200
 *     n <= 100             gradients, the products of a few CG steps
 *   otherwise              L-BFGS, whether hvp or hess is given or not:
 *                          above these n a step of Newton's costs a
 *                          gradient plus k products (a product costs about
 *                          a gradient, a Hessian n^2 entries and its
 *                          factor n^3/3 flops), an L-BFGS step about one
 *                          gradient, and Newton's fewer iterations did not
 *                          pay for the products: at n = 1000, to the
 *                          benchmarks' targets (callbacks = gradients +
 *                          products), P1 51 (L-BFGS) against 15 + 51 = 66
 *                          (Steihaug CG on hvp), P2 39 against 38 + 37, P4
 *                          (extended Rosenbrock, without its band) 53
 *                          against 46 + 65; with difference products (one
 *                          gradient each) P1 51 vs 66, P2 53 vs 88, P4 48
 *                          vs 98; a full solve to the default tolerances
 *                          with its second-order test, P1 79 + 101 against
 *                          17 + 201. Other CG truncations did not close the
 *                          gap on P1 (Eisenstat-Walker forcing terms 66 and
 *                          85, Nash's model-decrease rule 70 to 72). The
 *                          products, when given, serve the second-order
 *                          test, the Newton check at a stop and the
 *                          implicit derivatives (exact instead of
 *                          differences: wb_info.hess_approx = 0).
 */
#define WBI_AUTO_DENSE_HESS 256
#define WBI_AUTO_BAND_KD 32
#define WBI_AUTO_DENSE_FD 100

wb_status wbi_resolve_kind(const wb_energy *e, const wb_settings *s,
                           wb_hessian_kind *kind, char *msg, size_t len) {
    wb_hessian_kind k = s->hessian;
    if (k == WB_HESS_AUTO) {
        if (e->hess_nnz > 0) k = WB_HESS_SPARSE;
        else if (e->kd > 0 && (e->kd <= WBI_AUTO_BAND_KD || !e->hvp))
            k = WB_HESS_BANDED;
        else if (e->kd > 0) k = WB_HESS_MATRIX_FREE; /* a wide band, hvp */
        else if (e->hess && e->n <= WBI_AUTO_DENSE_HESS) k = WB_HESS_DENSE;
        else if (e->hvp && e->n <= WBI_AUTO_DENSE_HESS) k = WB_HESS_MATRIX_FREE;
        else if (!e->hess && e->n <= WBI_AUTO_DENSE_FD) k = WB_HESS_DENSE;
        else k = WB_HESS_LBFGS;
    }
    if (k < WB_HESS_AUTO || k > WB_HESS_SPARSE) {
        snprintf(msg, len, "settings.hessian = %d is not a wb_hessian_kind", (int)k);
        return WB_EINVAL;
    }
    if (k == WB_HESS_SPARSE && e->hess_nnz <= 0) {
        snprintf(msg, len, "sparse Hessian requested but energy.hess_nnz = %d "
                 "(no pattern)", e->hess_nnz);
        return WB_EINVAL;
    }
    if (k == WB_HESS_BANDED && e->kd <= 0) {
        snprintf(msg, len, "banded Hessian requested but energy.kd = %d", e->kd);
        return WB_EINVAL;
    }
    if (e->kd < 0 || (e->kd > 0 && e->kd >= e->n && k == WB_HESS_BANDED)) {
        snprintf(msg, len, "energy.kd = %d must be in [0, n - 1 = %d]", e->kd,
                 e->n - 1);
        return WB_EINVAL;
    }
    *kind = k;
    return WB_OK;
}

/* ---- forming H ----------------------------------------------------------- */

static wb_status dense_hessian(wb_solver *sv, const double *x, const double *w) {
    int n = sv->n;
    double *H = sv->H;
    if (sv->e.hess) {
        int rc = sv->e.hess(sv->e.user, x, w, H);
        if (rc != 0) {
            wbi_set_msg(sv, "hess returned %d", rc);
            return WB_ECALLBACK;
        }
    } else {
        /* H[:,j] = (g(x + h e_j) - g(x - h e_j)) / (2h) */
        double e1, e2;
        memcpy(sv->xh, x, (size_t)n * sizeof(double));
        for (int j = 0; j < n; j++) {
            double h = wbi_fd_step(&sv->s, x[j], wbi_typ_x(sv, j));
            sv->xh[j] = x[j] + h;
            wb_status st = wbi_eval(sv, sv->xh, w, &e1, sv->g1);
            if (st == WB_OK) {
                sv->xh[j] = x[j] - h;
                st = wbi_eval(sv, sv->xh, w, &e2, sv->g2);
            }
            sv->xh[j] = x[j];
            if (st != WB_OK) return st;
            double *col = H + (size_t)j * n;
            for (int i = 0; i < n; i++) col[i] = (sv->g1[i] - sv->g2[i]) / (2 * h);
        }
    }
    if (sv->e.hess) {
        /* a user Hessian must be symmetric: more than rounding apart
           (1e-8 of its largest entry) is a bug in the callback, not noise.
           hmax = max |H_ij| (NaN entries skipped, as fmax does), amax =
           max |H_ij - H_ji| (a NaN difference is kept: NaN, reported as
           non-finite below); one pass over the pairs i > j and the
           diagonal, comparisons instead of fmax calls (at n = 10 the
           checks cost as much as the factorization) */
        double hmax = 0.0, amax = 0.0;
        int bi = 0, bj = 0;
        for (int j = 0; j < n; j++) {
            double hjj = fabs(H[(size_t)j * n + j]);
            if (hjj > hmax) hmax = hjj;
            for (int i = j + 1; i < n; i++) {
                double a = H[(size_t)j * n + i], b = H[(size_t)i * n + j];
                double fa = fabs(a), fb = fabs(b), d = fabs(a - b);
                if (fa > hmax) hmax = fa;
                if (fb > hmax) hmax = fb;
                if (d > amax || isnan(d)) amax = d, bi = i, bj = j;
            }
        }
        if (amax > 1e-8 * hmax) {
            wbi_set_msg(sv, "hess returned a non-symmetric matrix: |H(%d,%d) - "
                        "H(%d,%d)| = %.3g (largest entry %.3g)", bi, bj, bj, bi,
                        amax, hmax);
            return WB_ECALLBACK;
        }
    }
    /* (H + H')/2: the differences, and rounding in a user Hessian; in the
       same pass z = sum (h - h) over the entries written: 0 exactly when
       every entry is finite (h - h is NaN for h = +-Inf or NaN), so the
       finiteness test needs no second pass */
    double z = 0.0;
    for (int j = 0; j < n; j++) {
        double hjj = H[(size_t)j * n + j];
        z += hjj - hjj;
        for (int i = j + 1; i < n; i++) {
            double a = 0.5 * (H[(size_t)j * n + i] + H[(size_t)i * n + j]);
            H[(size_t)j * n + i] = H[(size_t)i * n + j] = a;
            z += a - a;
        }
    }
    if (z != 0.0) {
        wbi_set_msg(sv, "the Hessian has non-finite entries");
        return WB_ENONFINITE;
    }
    return WB_OK;
}

static wb_status band_hessian(wb_solver *sv, const double *x, const double *w) {
    int n = sv->n, kd = sv->kd;
    size_t ld = (size_t)kd + 1, nb = ld * (size_t)n;
    double *AB = sv->H;
    if (sv->e.hess_band) {
        int rc = sv->e.hess_band(sv->e.user, x, w, AB);
        if (rc != 0) {
            wbi_set_msg(sv, "hess_band returned %d", rc);
            return WB_ECALLBACK;
        }
        /* entries past the end of the matrix are ignored: zero them */
        for (int j = n - kd; j < n; j++)
            if (j >= 0)
                for (int r = n - j; r <= kd; r++) AB[(size_t)r + (size_t)j * ld] = 0.0;
    } else {
        /* Colour c perturbs every column j = c (mod 2kd+1) at once, each by
           its own h_j; row i then sees exactly one perturbed column j with
           |i - j| <= kd:  H_ij = (g_i(x + h) - g_i(x - h)) / (2 h_j).
           Rows below j give the lower band directly (into AB); rows above j
           give H_ij = H_ji for i < j (into F, transposed), averaged after. */
        int ncol = 2 * kd + 1;
        double e1, e2;
        double *T = sv->F; /* the values seen from the other side */
        memcpy(sv->xh, x, (size_t)n * sizeof(double));
        for (int c = 0; c < ncol && c < n; c++) {
            for (int j = c; j < n; j += ncol)
                sv->xh[j] = x[j] + wbi_fd_step(&sv->s, x[j], wbi_typ_x(sv, j));
            wb_status st = wbi_eval(sv, sv->xh, w, &e1, sv->g1);
            for (int j = c; j < n; j += ncol)
                sv->xh[j] = x[j] - (sv->xh[j] - x[j]);
            if (st == WB_OK) st = wbi_eval(sv, sv->xh, w, &e2, sv->g2);
            for (int j = c; j < n; j += ncol) {
                double h = x[j] - sv->xh[j];
                sv->xh[j] = x[j];
                int lo = j - kd > 0 ? j - kd : 0, hi = j + kd < n - 1 ? j + kd : n - 1;
                for (int i = j; i <= hi; i++)
                    AB[(size_t)(i - j) + (size_t)j * ld] = (sv->g1[i] - sv->g2[i]) / (2 * h);
                for (int i = lo; i < j; i++) /* H_ij, i < j: element (j, i) */
                    T[(size_t)(j - i) + (size_t)i * ld] = (sv->g1[i] - sv->g2[i]) / (2 * h);
            }
            if (st != WB_OK) return st;
        }
        for (int j = 0; j < n; j++)
            for (int r = 1; r <= kd && j + r < n; r++) {
                size_t k = (size_t)r + (size_t)j * ld;
                AB[k] = 0.5 * (AB[k] + T[k]);
            }
        for (int j = n - kd; j < n; j++)
            if (j >= 0)
                for (int r = n - j; r <= kd; r++) AB[(size_t)r + (size_t)j * ld] = 0.0;
    }
    if (!wbi_all_finite(nb, AB)) {
        wbi_set_msg(sv, "the banded Hessian has non-finite entries");
        return WB_ENONFINITE;
    }
    return WB_OK;
}

wb_status wbi_hessian(wb_solver *sv, const double *x, const double *w) {
    switch (sv->kind) {
    case WB_HESS_BANDED:
        return band_hessian(sv, x, w);
    case WB_HESS_SPARSE:
        return wbi_sparse_hessian(sv, x, w);
    case WB_HESS_MATRIX_FREE:
        /* the operator is the point: products are made on demand, and
           hess_diag only when a user of it asks (wbi_hess_diag_load) */
        memcpy(sv->hx, x, (size_t)sv->n * sizeof(double));
        sv->hw = w;
        sv->have_hd = 0;
        return WB_OK;
    case WB_HESS_DENSE:
    case WB_HESS_AUTO:
    default:
        return dense_hessian(sv, x, w);
    }
}

wb_status wbi_hess_diag_load(wb_solver *sv) {
    if (sv->kind != WB_HESS_MATRIX_FREE || sv->have_hd || !sv->e.hess_diag)
        return WB_OK;
    int rc = sv->e.hess_diag(sv->e.user, sv->hx, sv->hw, sv->hd);
    if (rc != 0) {
        wbi_set_msg(sv, "hess_diag returned %d", rc);
        return WB_ECALLBACK;
    }
    if (!wbi_all_finite((size_t)sv->n, sv->hd)) {
        wbi_set_msg(sv, "hess_diag returned non-finite entries");
        return WB_ENONFINITE;
    }
    sv->have_hd = 1;
    return WB_OK;
}

double wbi_hess_diag(const wb_solver *sv, int i) {
    switch (sv->kind) {
    case WB_HESS_BANDED: return sv->H[(size_t)i * ((size_t)sv->kd + 1)];
    case WB_HESS_MATRIX_FREE: return sv->have_hd ? sv->hd[i] : 0.0;
    case WB_HESS_SPARSE: return wbi_sparse_diag(sv, i);
    default: return sv->H[(size_t)i * (size_t)sv->n + (size_t)i];
    }
}

/* ---- factor, solve, multiply ----------------------------------------------- */

int wbi_factor(wb_solver *sv, double mu, const double *d) {
    if (sv->kind == WB_HESS_SPARSE) return wbi_sparse_factor(sv, mu, d);
    if (sv->kind == WB_HESS_BANDED) {
        wbi_band_shift_copy(sv->n, sv->kd, sv->H, mu, d, sv->F);
        return wbi_band_chol(sv->n, sv->kd, sv->F);
    }
    wbi_shift_copy(sv->n, sv->H, mu, d, sv->F);
    return wbi_chol(sv->n, sv->F);
}

void wbi_factor_solve(wb_solver *sv, int nrhs, double *B) {
    if (sv->kind == WB_HESS_SPARSE) {
        wbi_sparse_solve(sv, nrhs, B);
        return;
    }
    if (sv->kind == WB_HESS_BANDED) wbi_band_chol_solve(sv->n, sv->kd, sv->F, nrhs, B);
    else wbi_chol_solve(sv->n, sv->F, nrhs, B);
}

/* ||A^-1||_1 of the factored SPD A by Hager's method (Higham 1988, as in
   LAPACK's dlacon) with two solves per round on the factor: O(n kd) a round
   for banded storage. (LAPACK's dpbcon scans the whole vector per column in
   dlatbs, O(n^2), which is why it is not used.) */
static double inv_norm1_estimate(wb_solver *sv) {
    int n = sv->n;
    double *x = sv->work, *z = sv->work + n;
    for (int i = 0; i < n; i++) x[i] = 1.0 / n;
    double est = 0.0;
    int last = -1;
    for (int round = 0; round < 5; round++) {
        wbi_factor_solve(sv, 1, x); /* y = A^-1 x */
        double y1 = 0.0;
        for (int i = 0; i < n; i++) y1 += fabs(x[i]);
        if (round > 0 && y1 <= est) break;
        est = y1;
        for (int i = 0; i < n; i++) z[i] = x[i] >= 0 ? 1.0 : -1.0;
        wbi_factor_solve(sv, 1, z); /* z = A^-T sign(y) = A^-1 sign(y) */
        int j = 0;
        for (int i = 1; i < n; i++)
            if (fabs(z[i]) > fabs(z[j])) j = i;
        if (j == last) break;
        last = j;
        memset(x, 0, (size_t)n * sizeof(double));
        x[j] = 1.0;
    }
    /* Higham's extra test vector, guarding against an unlucky start */
    for (int i = 0; i < n; i++)
        x[i] = (i % 2 ? -1.0 : 1.0) * (1.0 + (double)i / (n > 1 ? n - 1 : 1));
    wbi_factor_solve(sv, 1, x);
    double alt = 0.0;
    for (int i = 0; i < n; i++) alt += fabs(x[i]);
    alt = 2 * alt / (3.0 * n);
    return alt > est ? alt : est;
}

double wbi_factor_rcond(wb_solver *sv, double mu, double *anorm) {
    double rc = 0.0;
    int info;
    if (sv->kind == WB_HESS_BANDED || sv->kind == WB_HESS_SPARSE) {
        double an = sv->kind == WB_HESS_SPARSE ? wbi_sparse_norm1(sv, mu)
                    : wbi_band_norm1(sv->n, sv->kd, sv->H, mu);
        double inv = inv_norm1_estimate(sv);
        if (anorm) *anorm = an;
        return (an > 0 && inv > 0 && isfinite(inv)) ? 1.0 / (an * inv) : 0.0;
    } else {
        double an = wbi_sym_norm1(sv->n, sv->H, mu);
        if (anorm) *anorm = an;
        info = wbi_chol_rcond(sv->n, sv->F, an, &rc, sv->work, sv->iwork);
    }
    return info == 0 ? rc : 0.0;
}

/* Cholesky of A = H failed at pivot k = info (1-based): with the leading
   block A11 (order k-1, factored: L11 in F) and a = A(k, 1:k-1),
     z = [-A11^-1 a; 1; 0],   z'Az = A_kk - a'A11^-1 a = d_k <= 0
   (the Schur complement the factorization found non-positive; More and
   Sorensen 1983). A11^-1 a = L11^-T (L11^-1 a): two triangular solves.
   Sparse: z = 0 (CHOLMOD's partial factor is in its permuted order and
   its leading block cannot be solved with): the caller's CG search for
   negative curvature takes over. */
void wbi_chol_fail_direction(wb_solver *sv, int info, double *z) {
    int n = sv->n, k = info - 1; /* 0-based failing column */
    memset(z, 0, (size_t)n * sizeof(double));
    if (sv->kind == WB_HESS_SPARSE) return;
    if (k < 0 || k >= n) return;
    z[k] = 1.0;
    if (k == 0) return;
    if (sv->kind == WB_HESS_BANDED) {
        size_t ld = (size_t)sv->kd + 1;
        int lo = k - sv->kd > 0 ? k - sv->kd : 0;
        for (int j = lo; j < k; j++) z[j] = sv->H[(size_t)(k - j) + (size_t)j * ld];
        /* the band factor's storage does not depend on n: its leading k
           columns are the band factor of A11 */
        wbi_band_chol_solve(k, sv->kd, sv->F, 1, z);
    } else {
        for (int j = 0; j < k; j++) z[j] = sv->H[(size_t)j * n + k];
        wbi_trsv_lower_ld(k, sv->F, n, 0, z);
        wbi_trsv_lower_ld(k, sv->F, n, 1, z);
    }
    for (int j = 0; j < k; j++) z[j] = -z[j];
}

double wbi_hess_diag_max(const wb_solver *sv) {
    double m = 0.0;
    if (sv->kind == WB_HESS_MATRIX_FREE && !sv->have_hd) return 0.0;
    for (int i = 0; i < sv->n; i++) m = fmax(m, fabs(wbi_hess_diag(sv, i)));
    return m;
}

/* floor = factor * eps_H * kappa, kappa = max(2|E| / t^2, hmax), t =
   max(1, ||x||_inf); eps_H = eps for a callback Hessian, eps / fd_step +
   fd_step^2 (rounding + truncation of central differences) otherwise. */
double wbi_curv_floor(const wb_solver *sv, double factor, double E,
                      const double *x, double hmax, double *kappa) {
    int approx = wbi_hess_is_approx(sv);
    double h = sv->s.fd_step;
    double eps_h = approx ? DBL_EPSILON / h + h * h : DBL_EPSILON;
    double t = fmax(1.0, wbi_norm_inf(sv->n, x));
    double k = fmax(2.0 * fabs(E) / (t * t), fabs(hmax));
    if (!isfinite(k)) k = 0.0;
    if (kappa) *kappa = k;
    return factor * eps_h * k;
}

int wbi_hess_is_approx(const wb_solver *sv) {
    switch (sv->kind) {
    case WB_HESS_BANDED: return sv->e.hess_band == NULL;
    case WB_HESS_MATRIX_FREE: return sv->e.hvp == NULL;
    case WB_HESS_SPARSE: return sv->e.hess_sparse == NULL;
    default: return sv->e.hess == NULL;
    }
}

wb_status wbi_hess_mul(wb_solver *sv, const double *v, double *out) {
    int n = sv->n;
    switch (sv->kind) {
    case WB_HESS_SPARSE:
        wbi_sparse_mul(sv, v, out);
        return WB_OK;
    case WB_HESS_BANDED:
        wbi_band_symv(n, sv->kd, sv->H, v, out);
        return WB_OK;
    case WB_HESS_MATRIX_FREE:
        if (sv->e.hvp) {
            int rc = sv->e.hvp(sv->e.user, sv->hx, sv->hw, v, out);
            if (rc != 0) {
                wbi_set_msg(sv, "hvp returned %d", rc);
                return WB_ECALLBACK;
            }
        } else if (sv->hg) {
            /* forward, one gradient: H v = (g(x + h v) - g(x)) / h, h =
               sqrt(eps) (1 + ||x||) / ||v|| capped so that no unknown
               moves by more than n sqrt(eps) of its own scale s_i =
               max(|x_i|, typ_i) (wbi_fd_dir_step); error O(sqrt(eps)):
               enough for an inexact-Newton step */
            double e1, h = wbi_fd_dir_step(sv, sv->hx, v, 1.4901161193847656e-08);
            if (h == 0) {
                memset(out, 0, (size_t)n * sizeof(double));
                return WB_OK;
            }
            for (int i = 0; i < n; i++) sv->xh[i] = sv->hx[i] + h * v[i];
            wb_status st = wbi_eval(sv, sv->xh, sv->hw, &e1, out);
            if (st != WB_OK) return st;
            for (int i = 0; i < n; i++) out[i] = (out[i] - sv->hg[i]) / h;
        } else {
            /* H v = (g(x + h v) - g(x - h v)) / (2h), h = fd_step (1 +
               ||x||) / ||v|| capped so that no unknown moves by more than
               n fd_step of its own scale s_i = max(|x_i|, typ_i)
               (wbi_fd_dir_step) */
            double e1, e2, h = wbi_fd_dir_step(sv, sv->hx, v, sv->s.fd_step);
            if (h == 0) {
                memset(out, 0, (size_t)n * sizeof(double));
                return WB_OK;
            }
            for (int i = 0; i < n; i++) sv->xh[i] = sv->hx[i] + h * v[i];
            wb_status st = wbi_eval(sv, sv->xh, sv->hw, &e1, sv->g1);
            if (st != WB_OK) return st;
            for (int i = 0; i < n; i++) sv->xh[i] = sv->hx[i] - h * v[i];
            st = wbi_eval(sv, sv->xh, sv->hw, &e2, out);
            if (st != WB_OK) return st;
            for (int i = 0; i < n; i++) out[i] = (sv->g1[i] - out[i]) / (2 * h);
        }
        if (!wbi_all_finite((size_t)n, out)) {
            wbi_set_msg(sv, "the Hessian-vector product is not finite");
            return WB_ENONFINITE;
        }
        return WB_OK;
    default:
        wbi_symv(n, 1.0, sv->H, v, 0.0, out);
        return WB_OK;
    }
}
