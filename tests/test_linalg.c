/* The dense Cholesky routines of src/linalg.c, checked against LAPACK's own
 * driver and against recomputed residuals:
 *
 *   wbi_chol(n, F)               F = L L^T (lower), info > 0 at the first
 *                                pivot that is not positive;
 *   wbi_chol_solve(n, F, k, B)   L L^T X = B in place: dtrsv for one column,
 *                                recursive blocked triangular solves (dgemm
 *                                off the diagonal, dtrsm on diagonal blocks of
 *                                order <= 96) for several.
 *
 * The sizes cross the recursion's block boundaries (96, 192, 384) and the
 * right-hand-side counts cover the one-column path and the blocked one.
 * Orders n <= 32 take the library's own loops instead of LAPACK / BLAS
 * (linalg.c, "small dense matrices"): checked against dpotrf / dposv at the
 * sizes around that boundary, failed pivots included.
 */
#include <cblas.h>
#include <lapacke.h>

#include "wb_internal.h"
#include "wb_test.h"

/* A [n*n] = X X^T / n + I with X [n*n] uniform in (-1, 1): SPD, condition
   number below about 5 whatever n, both triangles filled. */
static double *spd_matrix(int n, uint64_t seed) {
    size_t nn = (size_t)n * n;
    double *X = malloc(sizeof(double) * nn), *A = malloc(sizeof(double) * nn);
    assert_non_null(X);
    assert_non_null(A);
    uint64_t s = seed;
    for (size_t k = 0; k < nn; k++) X[k] = 2 * wb_test_rand(&s) - 1;
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0 / n, X,
                n, X, n, 0.0, A, n);
    for (int j = 0; j < n; j++) A[(size_t)j * n + j] += 1.0;
    free(X);
    return A;
}

static double *random_block(int n, int k, uint64_t seed) {
    double *B = malloc(sizeof(double) * (size_t)n * k);
    assert_non_null(B);
    uint64_t s = seed;
    for (size_t i = 0; i < (size_t)n * k; i++) B[i] = 2 * wb_test_rand(&s) - 1;
    return B;
}

static double max_abs(size_t len, const double *x) {
    double m = 0.0;
    for (size_t i = 0; i < len; i++)
        if (fabs(x[i]) > m) m = fabs(x[i]);
    return m;
}

/* Solves A X = B with wbi_chol + wbi_chol_solve and checks X against
   LAPACKE_dposv's (relative 1e-12) and the residual A X - B. */
static void check_solve(int n, int nrhs, uint64_t seed) {
    size_t nn = (size_t)n * n, nb = (size_t)n * nrhs;
    double *A = spd_matrix(n, seed);
    double *B = random_block(n, nrhs, seed + 1);
    double *F = malloc(sizeof(double) * nn), *G = malloc(sizeof(double) * nn);
    double *X = malloc(sizeof(double) * nb), *R = malloc(sizeof(double) * nb);
    assert_non_null(F);
    assert_non_null(G);
    assert_non_null(X);
    assert_non_null(R);

    /* the reference: LAPACK's driver on its own copies */
    memcpy(G, A, sizeof(double) * nn);
    memcpy(R, B, sizeof(double) * nb);
    assert_int_equal(
        LAPACKE_dposv(LAPACK_COL_MAJOR, 'L', n, nrhs, G, n, R, n), 0);

    memcpy(F, A, sizeof(double) * nn);
    assert_int_equal(wbi_chol(n, F), 0);
    memcpy(X, B, sizeof(double) * nb);
    assert_int_equal(wbi_chol_solve(n, F, nrhs, X), 0);

    double scale = max_abs(nb, R);
    for (size_t i = 0; i < nb; i++)
        wb_assert_close(X[i], R[i], 1e-12 * scale, 1e-12);

    /* the residual, recomputed: |A X - B|_max <= 1e-13 |A|_max |X|_max n */
    memcpy(R, B, sizeof(double) * nb);
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, n, nrhs, n, 1.0, A,
                n, X, n, -1.0, R, n);
    double res = max_abs(nb, R);
    double bound = 1e-13 * max_abs(nn, A) * max_abs(nb, X) * n;
    if (!(res <= bound))
        fail_msg("n = %d, nrhs = %d: |A X - B| = %.3g > %.3g", n, nrhs, res,
                 bound);

    free(A), free(B), free(F), free(G), free(X), free(R);
}

static void chol_solve_matches_dposv_across_block_sizes(void **state) {
    (void)state;
    static const int sizes[] = {1, 2, 3, 10, 31, 32, 33, 63, 64, 65, 95, 96,
                                97, 191, 192, 193, 200, 385, 513};
    static const int rhs[] = {1, 2, 3, 17, 300};
    uint64_t seed = 11;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        for (size_t j = 0; j < sizeof rhs / sizeof *rhs; j++)
            check_solve(sizes[i], rhs[j], seed += 2);
}

static void chol_solve_handles_many_more_rhs_than_unknowns(void **state) {
    (void)state;
    check_solve(130, 1000, 101);
}

/* Columns are independent: solving them together or one by one agrees to
   rounding (the blocked path against the dtrsv path). */
static void chol_solve_columns_agree_with_one_at_a_time(void **state) {
    (void)state;
    int n = 250, nrhs = 40;
    double *A = spd_matrix(n, 5);
    double *B = random_block(n, nrhs, 6);
    double *X = malloc(sizeof(double) * (size_t)n * nrhs);
    assert_non_null(X);
    assert_int_equal(wbi_chol(n, A), 0);
    memcpy(X, B, sizeof(double) * (size_t)n * nrhs);
    assert_int_equal(wbi_chol_solve(n, A, nrhs, X), 0);
    for (int k = 0; k < nrhs; k++) {
        double *b = B + (size_t)k * n;
        assert_int_equal(wbi_chol_solve(n, A, 1, b), 0);
        double scale = max_abs((size_t)n, b);
        for (int i = 0; i < n; i++)
            wb_assert_close(X[(size_t)k * n + i], b[i], 1e-13 * scale, 0);
    }
    free(A), free(B), free(X);
}

static void chol_solve_sizes_follow_lapack_conventions(void **state) {
    (void)state;
    double F[1] = {2.0}, b[1] = {4.0};
    assert_int_equal(wbi_chol_solve(1, F, 0, b), 0); /* nothing to solve */
    assert_true(b[0] == 4.0);
    assert_int_equal(wbi_chol_solve(-1, F, 1, b), -2); /* dpotrs' numbering */
    assert_int_equal(wbi_chol_solve(1, F, -1, b), -3);
    assert_true(b[0] == 4.0);
    assert_int_equal(wbi_chol_solve(1, F, 1, b), 0); /* 2 x = 4, F = [2] */
    wb_assert_close(b[0], 1.0, 0, 1e-15);
}

/* A = L L^T with the k-th diagonal entry lowered past its pivot l_kk^2: the
   leading minors of order < k stay positive definite, that of order k does
   not, so info = k (1-based), as dpotrf numbers it. */
static void chol_reports_the_first_pivot_that_is_not_positive(void **state) {
    (void)state;
    int n = 300;
    static const int pivots[] = {1, 2, 96, 97, 193, 300};
    for (size_t t = 0; t < sizeof pivots / sizeof *pivots; t++) {
        int k = pivots[t];
        double *A = spd_matrix(n, 40 + t);
        double *L = malloc(sizeof(double) * (size_t)n * n);
        assert_non_null(L);
        memcpy(L, A, sizeof(double) * (size_t)n * n);
        assert_int_equal(LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', n, L, n), 0);
        double lkk = L[(size_t)(k - 1) * n + (k - 1)];
        A[(size_t)(k - 1) * n + (k - 1)] -= 1.5 * lkk * lkk;
        assert_int_equal(wbi_chol(n, A), k);
        free(A), free(L);
    }
}

static void chol_of_an_spd_matrix_reproduces_it(void **state) {
    (void)state;
    int n = 200;
    double *A = spd_matrix(n, 77);
    double *F = malloc(sizeof(double) * (size_t)n * n);
    double *R = calloc((size_t)n * n, sizeof(double));
    assert_non_null(F);
    assert_non_null(R);
    memcpy(F, A, sizeof(double) * (size_t)n * n);
    assert_int_equal(wbi_chol(n, F), 0);
    /* R = L L^T from the lower triangle only */
    for (int j = 0; j < n; j++)
        for (int i = 0; i < j; i++) F[(size_t)j * n + i] = 0.0;
    cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, n, n, 1.0, F, n, 0.0,
                R, n);
    for (int j = 0; j < n; j++)
        for (int i = j; i < n; i++)
            wb_assert_close(R[(size_t)j * n + i], A[(size_t)j * n + i], 1e-13,
                            1e-13);
    free(A), free(F), free(R);
}

/* The loops of n <= 32 against LAPACK's dpotrf on the same matrix: the same
   factor to rounding, at sizes on both sides of the boundary. */
static void small_chol_matches_dpotrf(void **state) {
    (void)state;
    static const int sizes[] = {1, 2, 3, 5, 10, 16, 31, 32, 33};
    for (size_t t = 0; t < sizeof sizes / sizeof *sizes; t++) {
        int n = sizes[t];
        size_t nn = (size_t)n * n;
        double *A = spd_matrix(n, 300 + t);
        double *F = malloc(sizeof(double) * nn), *L = malloc(sizeof(double) * nn);
        assert_non_null(F);
        assert_non_null(L);
        memcpy(F, A, sizeof(double) * nn);
        memcpy(L, A, sizeof(double) * nn);
        assert_int_equal(wbi_chol(n, F), 0);
        assert_int_equal(LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', n, L, n), 0);
        for (int j = 0; j < n; j++)
            for (int i = j; i < n; i++)
                wb_assert_close(F[(size_t)j * n + i], L[(size_t)j * n + i],
                                1e-14, 1e-13);
        free(A), free(F), free(L);
    }
}

/* A failed pivot in the loops: info as dpotrf numbers it (the k-th diagonal
   lowered past l_kk^2, or NaN as reference LAPACK does), and the leading k - 1 columns hold the
   factor of the leading block, as dpotrf leaves them (the More-Sorensen
   direction of wbi_chol_fail_direction solves with them). */
static void small_chol_fails_where_dpotrf_does(void **state) {
    (void)state;
    static const struct { int n, k, nan; } cases[] = {
        {1, 1, 0}, {2, 2, 0}, {10, 1, 0}, {10, 4, 0}, {10, 10, 0},
        {32, 17, 0}, {32, 32, 0}, {10, 6, 1}};
    for (size_t t = 0; t < sizeof cases / sizeof *cases; t++) {
        int n = cases[t].n, k = cases[t].k;
        size_t nn = (size_t)n * n;
        double *A = spd_matrix(n, 500 + t);
        double *F = malloc(sizeof(double) * nn), *L = malloc(sizeof(double) * nn);
        assert_non_null(F);
        assert_non_null(L);
        memcpy(L, A, sizeof(double) * nn);
        assert_int_equal(LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', n, L, n), 0);
        double lkk = L[(size_t)(k - 1) * n + (k - 1)];
        if (cases[t].nan) A[(size_t)(k - 1) * n + (k - 1)] = NAN;
        else A[(size_t)(k - 1) * n + (k - 1)] -= 1.5 * lkk * lkk;
        memcpy(F, A, sizeof(double) * nn);
        memcpy(L, A, sizeof(double) * nn);
        assert_int_equal(wbi_chol(n, F), k);
        /* a NaN pivot: reference LAPACK's dpotf2 reports it (DISNAN), as
           the loops do; OpenBLAS's dpotrf returns 0, so only its leading
           columns are compared then */
        int ref = (int)LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', n, L, n);
        if (!cases[t].nan) assert_int_equal(ref, k);
        for (int j = 0; j < k - 1; j++)
            for (int i = j; i < n; i++)
                wb_assert_close(F[(size_t)j * n + i], L[(size_t)j * n + i],
                                1e-14, 1e-13);
        free(A), free(F), free(L);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chol_solve_matches_dposv_across_block_sizes),
        cmocka_unit_test(chol_solve_handles_many_more_rhs_than_unknowns),
        cmocka_unit_test(chol_solve_columns_agree_with_one_at_a_time),
        cmocka_unit_test(chol_solve_sizes_follow_lapack_conventions),
        cmocka_unit_test(chol_reports_the_first_pivot_that_is_not_positive),
        cmocka_unit_test(chol_of_an_spd_matrix_reproduces_it),
        cmocka_unit_test(small_chol_matches_dpotrf),
        cmocka_unit_test(small_chol_fails_where_dpotrf_does),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
