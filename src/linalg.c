/* Dense linear algebra: the only file that calls BLAS and LAPACKE.
 * Matrices are column-major with leading dimension n; symmetric matrices are
 * used through their lower triangle. */
#include <math.h>
#include <string.h>

#include <cblas.h>
#include <lapacke.h>

#include "wb_internal.h"

double wbi_dot(int n, const double *x, const double *y) {
    return cblas_ddot(n, x, 1, y, 1);
}

/* ||x||_2. BLAS's dnrm2 is scaled on most kernels, but some x86-64 kernels
   sum x_i^2 in x87 extended precision, which overflows under emulators
   (valgrind) or where long double is double: when the BLAS result is not
   finite, recompute it scaled, ||x|| = m sqrt(sum (x_i/m)^2), m = max |x_i|
   (inf only when the norm itself overflows, NaN when x holds a NaN). */
double wbi_nrm2(int n, const double *x) {
    double r = cblas_dnrm2(n, x, 1);
    if (isfinite(r)) return r;
    double m = 0.0, ss = 0.0;
    for (int i = 0; i < n; i++) {
        double a = fabs(x[i]);
        if (!(a <= m)) m = a; /* NaN propagates */
    }
    if (!isfinite(m) || m == 0.0) return m;
    for (int i = 0; i < n; i++) ss += (x[i] / m) * (x[i] / m);
    return m * sqrt(ss);
}

double wbi_norm_inf(int n, const double *x) {
    double m = 0.0;
    for (int i = 0; i < n; i++) {
        double a = fabs(x[i]);
        if (a > m || isnan(a)) m = a;
    }
    return m;
}

int wbi_all_finite(size_t n, const double *x) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

void wbi_symv(int n, double alpha, const double *A, const double *x,
              double beta, double *y) {
    cblas_dsymv(CblasColMajor, CblasLower, n, alpha, A, n, x, 1, beta, y, 1);
}

/* ---- small dense matrices ------------------------------------------------
 *
 * At n <= WBI_SMALL_N the Cholesky factor and its solves are the loops
 * below instead of LAPACK / BLAS calls. The algorithms are the same
 * unblocked ones (OpenBLAS's dpotrf itself runs the unblocked dpotf2 up to
 * n = 32, DTB_ENTRIES / 2 on x86-64, with a ddot, a dgemv and a dscal call
 * per column): what the loops save is the calls' overhead, most of the
 * cost at n = 10. Above 32 dpotrf blocks (dgemm updates) and the plain
 * loops fall behind. Measured on random SPD matrices (docs/PERFORMANCE.md,
 * "Small dense problems"): factor 1.15-1.8x faster at n <= 16 and even at
 * 24-32, the two substitutions 1.3-1.9x faster up to 32. Same info
 * convention as dpotrf: info = k > 0 when the leading minor of order k is
 * not positive (or NaN, as reference LAPACK's dpotf2 reports it), with
 * columns 1..k-1 of F holding the factor of the leading block (what
 * wbi_chol_fail_direction solves with). */
#define WBI_SMALL_N 32

/* A = L L^T, right-looking by columns (column j of L is final after step
   j; the trailing lower triangle gets the rank-1 update):
     l_jj = sqrt(a_jj),  l_ij = a_ij / l_jj (i > j),
     a_ik -= l_ij l_kj   (j < k <= i) */
static int small_chol(int n, double *F) {
    for (int j = 0; j < n; j++) {
        double *c = F + (size_t)j * n; /* c[i] = A(i, j) */
        if (!(c[j] > 0)) return j + 1;
        double ljj = sqrt(c[j]);
        c[j] = ljj;
        double r = 1.0 / ljj;
        for (int i = j + 1; i < n; i++) c[i] *= r;
        for (int k = j + 1; k < n; k++) {
            double lk = c[k];
            double *ck = F + (size_t)k * n; /* column k, rows k..n-1 */
            for (int i = k; i < n; i++) ck[i] -= c[i] * lk;
        }
    }
    return 0;
}

/* L L^T x = b for nrhs columns of B: L y = b by columns (each y_j
   subtracted from the rows below), then L^T x = y by rows of L^T
   (= columns of L: x_j = (y_j - sum_{i>j} l_ij x_i) / l_jj). The divisions
   by l_jj are products with r_j = 1 / l_jj, formed once (independent, so
   they pipeline; a division in the substitution's chain of dependences
   costs its full latency, n times per pass). */
static void small_chol_solve(int n, const double *F, int nrhs, double *B) {
    double r[WBI_SMALL_N];
    for (int j = 0; j < n; j++) r[j] = 1.0 / F[(size_t)j * n + j];
    for (int k = 0; k < nrhs; k++) {
        double *b = B + (size_t)k * n;
        for (int j = 0; j < n; j++) {
            const double *c = F + (size_t)j * n;
            double yj = b[j] * r[j];
            b[j] = yj;
            for (int i = j + 1; i < n; i++) b[i] -= c[i] * yj;
        }
        for (int j = n - 1; j >= 0; j--) {
            const double *c = F + (size_t)j * n;
            double t = b[j];
            for (int i = j + 1; i < n; i++) t -= c[i] * b[i];
            b[j] = t * r[j];
        }
    }
}

/* F = A + mu diag(d), lower triangle (the upper part of F is not used). */
void wbi_shift_copy(int n, const double *A, double mu, const double *d,
                    double *F) {
    for (int j = 0; j < n; j++) {
        const double *a = A + (size_t)j * n;
        double *f = F + (size_t)j * n;
        memcpy(f + j, a + j, (size_t)(n - j) * sizeof *f);
        f[j] += mu * (d ? d[j] : 1.0);
    }
}

/* ---- dense Cholesky solve with many right-hand sides ---------------------
 *
 * L L^T X = B by two triangular solves, each recursive on the split of the
 * order-n factor at n1 (a multiple of WBI_CHOL_NB, about n/2):
 *
 *     L = [ L11   0  ]      L11: n1 x n1,  L21: n2 x n1,  L22: n2 x n2
 *         [ L21  L22 ]
 *
 * Each level's off-diagonal product is one dgemm with inner dimension n1;
 * only the diagonal blocks of order <= WBI_CHOL_NB go to dtrsm: 95 % of the
 * flops are dgemm at n = 2000, 91 % at n = 1000. OpenBLAS's dtrsm (which
 * LAPACK's dpotrs calls) runs well below its dgemm rate on some cores: 22
 * against 41 GFLOP/s on an Intel Xeon with the SkylakeX kernels. Nothing is
 * inverted: the leaves are triangular solves. The leaf order 96 was chosen
 * from 48..256 (measurements in docs/PERFORMANCE.md). */
#define WBI_CHOL_NB 96

/* n1 ~ n/2, a multiple of WBI_CHOL_NB, 0 < n1 < n (for n > WBI_CHOL_NB). */
static int chol_split(int n) {
    int n1 = (n / 2 + WBI_CHOL_NB - 1) / WBI_CHOL_NB * WBI_CHOL_NB;
    return n1 < n ? n1 : n - WBI_CHOL_NB;
}

/* L Y = B, B n x nrhs overwritten by Y:
 *     L11 Y1 = B1,   B2 := B2 - L21 Y1,   L22 Y2 = B2 */
static void trsm_lower_left(int n, const double *L, int ldl, int nrhs,
                            double *B, int ldb) {
    if (n <= WBI_CHOL_NB) {
        cblas_dtrsm(CblasColMajor, CblasLeft, CblasLower, CblasNoTrans,
                    CblasNonUnit, n, nrhs, 1.0, L, ldl, B, ldb);
        return;
    }
    int n1 = chol_split(n), n2 = n - n1;
    trsm_lower_left(n1, L, ldl, nrhs, B, ldb);
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, n2, nrhs, n1, -1.0,
                L + n1, ldl, B, ldb, 1.0, B + n1, ldb);
    trsm_lower_left(n2, L + n1 + (size_t)n1 * ldl, ldl, nrhs, B + n1, ldb);
}

/* L^T X = Y, Y n x nrhs overwritten by X; L^T = [L11^T L21^T; 0 L22^T]:
 *     L22^T X2 = Y2,   Y1 := Y1 - L21^T X2,   L11^T X1 = Y1 */
static void trsm_lower_trans_left(int n, const double *L, int ldl, int nrhs,
                                  double *B, int ldb) {
    if (n <= WBI_CHOL_NB) {
        cblas_dtrsm(CblasColMajor, CblasLeft, CblasLower, CblasTrans,
                    CblasNonUnit, n, nrhs, 1.0, L, ldl, B, ldb);
        return;
    }
    int n1 = chol_split(n), n2 = n - n1;
    trsm_lower_trans_left(n2, L + n1 + (size_t)n1 * ldl, ldl, nrhs, B + n1,
                          ldb);
    cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, n1, nrhs, n2, -1.0,
                L + n1, ldl, B + n1, ldb, 1.0, B, ldb);
    trsm_lower_trans_left(n1, L, ldl, nrhs, B, ldb);
}

int wbi_chol(int n, double *F) {
    /* F = L L^T, lower; info > 0: leading minor `info` not positive. (A
       recursive dgemm/dsyrk version was not measurably faster than
       OpenBLAS's own blocked dpotrf: docs/PERFORMANCE.md.) Small n:
       the loops above. */
    if (n >= 0 && n <= WBI_SMALL_N) return small_chol(n, F);
    return (int)LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', n, F, n);
}

int wbi_chol_solve(int n, const double *F, int nrhs, double *B) {
    /* L L^T X = B: L Y = B, then L^T X = Y; B [n*nrhs] overwritten by X. */
    if (n < 0) return -2; /* LAPACK's info numbering, as dpotrs */
    if (nrhs < 0) return -3;
    if (n == 0 || nrhs == 0) return 0;
    if (n <= WBI_SMALL_N) {
        small_chol_solve(n, F, nrhs, B);
        return 0;
    }
    if (nrhs == 1) {
        /* one column: forward and back substitution (OpenBLAS blocks dtrsv
           with dgemv itself; its dtrsm with one column is 3-5x slower) */
        cblas_dtrsv(CblasColMajor, CblasLower, CblasNoTrans, CblasNonUnit, n,
                    F, n, B, 1);
        cblas_dtrsv(CblasColMajor, CblasLower, CblasTrans, CblasNonUnit, n, F,
                    n, B, 1);
        return 0;
    }
    trsm_lower_left(n, F, n, nrhs, B, n);
    trsm_lower_trans_left(n, F, n, nrhs, B, n);
    return 0;
}

double wbi_sym_norm1(int n, const double *A, double mu) {
    /* ||A + mu I||_1 = max_j sum_i |a_ij|, from the lower triangle. */
    double best = 0.0;
    for (int j = 0; j < n; j++) {
        double s = 0.0;
        for (int i = 0; i < j; i++) s += fabs(A[(size_t)i * n + j]); /* a_ji */
        s += fabs(A[(size_t)j * n + j] + mu);
        for (int i = j + 1; i < n; i++) s += fabs(A[(size_t)j * n + i]);
        if (s > best) best = s;
    }
    return best;
}

int wbi_chol_rcond(int n, const double *F, double anorm, double *rcond,
                   double *work, int *iwork) {
    lapack_int *iw = (lapack_int *)iwork;
    return (int)LAPACKE_dpocon_work(LAPACK_COL_MAJOR, 'L', n, F, n, anorm,
                                    rcond, work, iw);
}

void wbi_gemm_tn(int m, int k, int nc, const double *A, const double *B,
                 double *C) {
    cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, k, nc, m, 1.0, A, m,
                B, m, 0.0, C, k);
}

/* ---- banded symmetric matrices, LAPACK lower band storage -----------------
 * AB[(kd+1) * n], AB[(i - j) + j * (kd+1)] = A_ij for j <= i <= j + kd. */

void wbi_band_shift_copy(int n, int kd, const double *AB, double mu,
                         const double *d, double *FB) {
    size_t ld = (size_t)kd + 1;
    memcpy(FB, AB, ld * (size_t)n * sizeof *FB);
    for (int j = 0; j < n; j++) FB[(size_t)j * ld] += mu * (d ? d[j] : 1.0);
}

/* Narrow bands (a temporal chain has kd = 2..6) are factored by the loops
   below: LAPACK's dpbtf2 makes one dsyr and one dscal call per column, and
   for kd this small the call overhead is most of the time. Wider bands go to
   dpbtrf / dpbtrs. Same algorithm, same storage, same info convention. */
#define WBI_SMALL_KD 16

int wbi_band_chol(int n, int kd, double *FB) {
    /* A = L L^T in band storage; info > 0: not positive definite */
    if (kd > WBI_SMALL_KD)
        return (int)LAPACKE_dpbtrf_work(LAPACK_COL_MAJOR, 'L', n, kd, FB, kd + 1);
    size_t ld = (size_t)kd + 1;
    for (int j = 0; j < n; j++) {
        double *c = FB + (size_t)j * ld; /* c[r] = A(j + r, j) */
        if (!(c[0] > 0)) return j + 1;
        double ljj = sqrt(c[0]);
        c[0] = ljj;
        int m = kd < n - 1 - j ? kd : n - 1 - j;
        for (int r = 1; r <= m; r++) c[r] /= ljj;
        /* trailing update: A(j+a, j+b) -= l_a l_b for 1 <= b <= a <= m */
        for (int b = 1; b <= m; b++) {
            double lb = c[b];
            double *cb = FB + (size_t)(j + b) * ld; /* column j + b */
            for (int a = b; a <= m; a++) cb[a - b] -= c[a] * lb;
        }
    }
    return 0;
}

int wbi_band_chol_solve(int n, int kd, const double *FB, int nrhs, double *B) {
    if (kd > WBI_SMALL_KD)
        return (int)LAPACKE_dpbtrs_work(LAPACK_COL_MAJOR, 'L', n, kd, nrhs, FB,
                                        kd + 1, B, n);
    size_t ld = (size_t)kd + 1;
    for (int k = 0; k < nrhs; k++) {
        double *b = B + (size_t)k * n;
        /* L y = b: column-oriented forward substitution */
        for (int j = 0; j < n; j++) {
            const double *c = FB + (size_t)j * ld;
            double yj = b[j] / c[0];
            b[j] = yj;
            int m = kd < n - 1 - j ? kd : n - 1 - j;
            for (int r = 1; r <= m; r++) b[j + r] -= c[r] * yj;
        }
        /* L^T x = y: row-oriented back substitution */
        for (int j = n - 1; j >= 0; j--) {
            const double *c = FB + (size_t)j * ld;
            int m = kd < n - 1 - j ? kd : n - 1 - j;
            double t = b[j];
            for (int r = 1; r <= m; r++) t -= c[r] * b[j + r];
            b[j] = t / c[0];
        }
    }
    return 0;
}

void wbi_band_symv(int n, int kd, const double *AB, const double *x,
                   double *y) {
    /* y = A x */
    cblas_dsbmv(CblasColMajor, CblasLower, n, kd, 1.0, AB, kd + 1, x, 1, 0.0,
                y, 1);
}

double wbi_band_norm1(int n, int kd, const double *AB, double mu) {
    /* ||A + mu I||_1: column j holds a_ij (i >= j, in band) and a_ji (i < j) */
    size_t ld = (size_t)kd + 1;
    double best = 0.0;
    for (int j = 0; j < n; j++) {
        double s = fabs(AB[(size_t)j * ld] + mu);
        for (int i = j + 1; i <= j + kd && i < n; i++)
            s += fabs(AB[(size_t)(i - j) + (size_t)j * ld]);
        for (int i = (j - kd > 0 ? j - kd : 0); i < j; i++)
            s += fabs(AB[(size_t)(j - i) + (size_t)i * ld]);
        if (s > best) best = s;
    }
    return best;
}

void wbi_axpy(int n, double a, const double *x, double *y) {
    cblas_daxpy(n, a, x, 1, y, 1);
}

/* ---- BLAS-3 with explicit leading dimensions (prox.c) --------------------- */

void wbi_syrk_ld(int n, int k, double alpha, const double *A, int lda,
                 double beta, double *C, int ldc) {
    /* C = alpha A A^T + beta C, lower triangle; A n x k */
    cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, n, k, alpha, A, lda,
                beta, C, ldc);
}

void wbi_gemm_ld(int ta, int tb, int m, int n, int k, double alpha,
                 const double *A, int lda, const double *B, int ldb,
                 double beta, double *C, int ldc) {
    /* C = alpha op(A) op(B) + beta C, C m x n */
    cblas_dgemm(CblasColMajor, ta ? CblasTrans : CblasNoTrans,
                tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, A, lda, B, ldb,
                beta, C, ldc);
}

void wbi_symm_right(int m, int n, double alpha, const double *S, int lds,
                    const double *B, int ldb, double beta, double *C, int ldc) {
    /* C = alpha B S + beta C; S n x n symmetric (lower), B and C m x n */
    cblas_dsymm(CblasColMajor, CblasRight, CblasLower, m, n, alpha, S, lds, B,
                ldb, beta, C, ldc);
}

void wbi_chol_solve_right(int n, const double *F, int m, double *B, int ldb) {
    /* B := B (L L^T)^-1: first Y L^T = B, then X L = Y (B m x n, in place) */
    cblas_dtrsm(CblasColMajor, CblasRight, CblasLower, CblasTrans,
                CblasNonUnit, m, n, 1.0, F, n, B, ldb);
    cblas_dtrsm(CblasColMajor, CblasRight, CblasLower, CblasNoTrans,
                CblasNonUnit, m, n, 1.0, F, n, B, ldb);
}

void wbi_trsv_lower_ld(int m, const double *F, int ld, int trans, double *x) {
    /* x := L^-1 x or L^-T x, L = the leading m x m lower triangle of F */
    if (m <= 0) return;
    cblas_dtrsv(CblasColMajor, CblasLower, trans ? CblasTrans : CblasNoTrans,
                CblasNonUnit, m, F, ld, x, 1);
}
