/* test_pp_cg: the matrix-free CG proximal step (pp_cg.c) against the
 * library's wb_prox_step, a peer that forms M = A1 A1' + I/tau: k CG
 * iterations of either form equal the library's WB_PROX_CG with k
 * iterations (the same iterates in exact arithmetic), n = in + 1
 * iterations equal the exact (Cholesky) step, and the step decreases the
 * proximal objective. Batches wider and narrower than the layer. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wiberg.h"

#include "pp_cg.h"

static uint64_t rng = 12345;
static double unif(void) { /* splitmix64 -> [-1, 1) */
    uint64_t z = (rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return 2.0 * (double)(z >> 11) / 9007199254740992.0 - 1.0;
}

typedef struct {
    int out, in, m;
    double *A, *D, *T0, *Z; /* Z = T0 A1 - D: the library's target */
} layer_t;

static layer_t make_layer(int out, int in, int m) {
    layer_t L = {out, in, m, NULL, NULL, NULL, NULL};
    int n = in + 1;
    L.A = malloc(sizeof(double) * (size_t)in * m);
    L.D = malloc(sizeof(double) * (size_t)out * m);
    L.T0 = malloc(sizeof(double) * (size_t)out * n);
    L.Z = malloc(sizeof(double) * (size_t)out * m);
    assert_non_null(L.A);
    assert_non_null(L.D);
    assert_non_null(L.T0);
    assert_non_null(L.Z);
    /* ReLU-like activations: nonnegative, some exact zeros */
    for (size_t k = 0; k < (size_t)in * m; k++) {
        double a = unif();
        L.A[k] = a > -0.3 ? a + 0.3 : 0.0;
    }
    for (size_t k = 0; k < (size_t)out * m; k++) L.D[k] = 0.1 * unif();
    for (int j = 0; j < m; j++) L.D[(size_t)j * out] = 0.0; /* a dead unit */
    for (size_t k = 0; k < (size_t)out * n; k++) L.T0[k] = unif() / sqrt(in);
    for (int j = 0; j < m; j++)
        for (int r = 0; r < out; r++) {
            double z = L.T0[r + (size_t)in * out];
            for (int i = 0; i < in; i++)
                z += L.T0[r + (size_t)i * out] * L.A[i + (size_t)j * in];
            L.Z[r + (size_t)j * out] = z - L.D[r + (size_t)j * out];
        }
    return L;
}

static void free_layer(layer_t *L) {
    free(L->A);
    free(L->D);
    free(L->T0);
    free(L->Z);
}

/* S = T0 - T+ by the library (mode, k iterations) */
static void library_step(const layer_t *L, double tau, wb_prox_mode mode,
                         int k, double *S) {
    wb_prox_settings ps;
    wb_prox_settings_default(&ps);
    ps.tau = tau;
    ps.mode = mode;
    ps.cg_iters = k;
    wb_prox *p = NULL;
    assert_int_equal(wb_prox_create(&p, L->out, L->in, &ps), WB_OK);
    size_t on = (size_t)L->out * (L->in + 1);
    double *T = malloc(sizeof(double) * on);
    assert_non_null(T);
    assert_int_equal(wb_prox_step(p, L->m, L->A, L->Z, L->T0, T), WB_OK);
    for (size_t q = 0; q < on; q++) S[q] = L->T0[q] - T[q];
    free(T);
    wb_prox_destroy(p);
}

static void our_step(const layer_t *L, double tau, pp_cg_form form, int k,
                     double *S) {
    char err[256];
    pp_cg *c = pp_cg_create(L->out, L->in, L->m, tau, k, form, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(pp_cg_step(c, L->m, L->A, L->D, S, err, sizeof err), 0);
    pp_cg_destroy(c);
}

/* ||x - y|| / ||y|| */
static double rel_diff(size_t n, const double *x, const double *y) {
    double d = 0, s = 0;
    for (size_t k = 0; k < n; k++) {
        d += (x[k] - y[k]) * (x[k] - y[k]);
        s += y[k] * y[k];
    }
    return sqrt(d / s);
}

/* 1/2 ||T A1 - Z||^2 + 1/(2 tau) ||T - T0||^2 at T = T0 - S */
static double prox_objective(const layer_t *L, double tau, const double *S) {
    int out = L->out, in = L->in;
    double f = 0;
    for (int j = 0; j < L->m; j++)
        for (int r = 0; r < out; r++) {
            double z = L->T0[r + (size_t)in * out] - S[r + (size_t)in * out];
            for (int i = 0; i < in; i++)
                z += (L->T0[r + (size_t)i * out] - S[r + (size_t)i * out]) *
                     L->A[i + (size_t)j * in];
            double e = z - L->Z[r + (size_t)j * out];
            f += 0.5 * e * e;
        }
    for (size_t k = 0; k < (size_t)out * (in + 1); k++) f += 0.5 / tau * S[k] * S[k];
    return f;
}

static void compare_with_library(int out, int in, int m, double tau) {
    layer_t L = make_layer(out, in, m);
    size_t on = (size_t)out * (in + 1);
    double *ref = malloc(sizeof(double) * on), *S = malloc(sizeof(double) * on);
    assert_non_null(ref);
    assert_non_null(S);
    /* rounding is amplified as CG converges: looser for 10 iterations, still
       far below the change of one iteration more or less */
    const int ks[] = {1, 3, 10};
    const double tol[] = {1e-10, 1e-9, 1e-6};
    for (int q = 0; q < 3; q++) {
        library_step(&L, tau, WB_PROX_CG, ks[q], ref);
        for (int form = 0; form < 2; form++) {
            our_step(&L, tau, (pp_cg_form)form, ks[q], S);
            double e = rel_diff(on, S, ref);
            if (!(e < tol[q]))
                fail_msg("%d x %d, m = %d, tau = %g, cg%d, form %d: relative "
                         "difference %.3g from the library", out, in, m, tau,
                         ks[q], form, e);
        }
    }
    /* the proximal objective decreases with k, and n iterations reach the
       exact step */
    double *zero = calloc(on, sizeof(double));
    assert_non_null(zero);
    double f0 = prox_objective(&L, tau, zero), prev = f0;
    for (int q = 0; q < 3; q++) {
        our_step(&L, tau, PP_CG_BATCH, ks[q], S);
        double f = prox_objective(&L, tau, S);
        assert_true(f < prev * (1 + 1e-12));
        prev = f;
    }
    library_step(&L, tau, WB_PROX_EXACT, 1, ref);
    for (int form = 0; form < 2; form++) {
        our_step(&L, tau, (pp_cg_form)form, in + 1, S);
        double e = rel_diff(on, S, ref);
        if (!(e < 1e-6))
            fail_msg("%d x %d, m = %d, cg%d, form %d: relative difference %.3g "
                     "from the exact step", out, in, m, in + 1, form, e);
    }
    free(zero);
    free(ref);
    free(S);
    free_layer(&L);
}

static void cg_equals_the_library_for_a_batch_narrower_than_the_layer(void **st) {
    (void)st;
    compare_with_library(7, 30, 12, 0.5);
}

static void cg_equals_the_library_for_a_batch_wider_than_the_layer(void **st) {
    (void)st;
    compare_with_library(9, 6, 40, 0.05);
}

static void cg_equals_the_library_for_a_single_example(void **st) {
    (void)st;
    compare_with_library(3, 5, 1, 1.0);
}

static void bad_arguments_and_nan_are_refused_with_a_message(void **st) {
    (void)st;
    char err[256] = "";
    assert_null(pp_cg_create(0, 3, 4, 1.0, 3, PP_CG_BATCH, err, sizeof err));
    assert_non_null(strstr(err, "must be >= 1"));
    assert_null(pp_cg_create(2, 3, 4, NAN, 3, PP_CG_BATCH, err, sizeof err));
    assert_null(pp_cg_create(2, 3, 4, 1.0, 0, PP_CG_PRIMAL, err, sizeof err));
    assert_null(pp_cg_create(2, 3, 4, 1.0, 3, (pp_cg_form)7, err, sizeof err));
    assert_null(pp_cg_create(100000, 100000, 4, 1.0, 3, PP_CG_BATCH, err, sizeof err));
    assert_non_null(strstr(err, "int sizes"));
    layer_t L = make_layer(4, 3, 5);
    double S[16];
    for (int form = 0; form < 2; form++) {
        pp_cg *c = pp_cg_create(4, 3, 4, 1.0, 3, (pp_cg_form)form, err, sizeof err);
        assert_non_null(c);
        assert_int_equal(pp_cg_step(c, 5, L.A, L.D, S, err, sizeof err), -1);
        assert_non_null(strstr(err, "batch of 5 examples; this layer takes 1 to 4"));
        assert_int_equal(pp_cg_step(c, 0, L.A, L.D, S, err, sizeof err), -1);
        L.D[2] = NAN;
        assert_int_equal(pp_cg_step(c, 4, L.A, L.D, S, err, sizeof err), -1);
        assert_non_null(strstr(err, "not finite"));
        L.D[2] = 0.0;
        assert_int_equal(pp_cg_step(c, 4, L.A, L.D, S, err, sizeof err), 0);
        pp_cg_destroy(c);
    }
    pp_cg_destroy(NULL);
    free_layer(&L);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cg_equals_the_library_for_a_batch_narrower_than_the_layer),
        cmocka_unit_test(cg_equals_the_library_for_a_batch_wider_than_the_layer),
        cmocka_unit_test(cg_equals_the_library_for_a_single_example),
        cmocka_unit_test(bad_arguments_and_nan_are_refused_with_a_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
