/* test_pp_net: the MLP's BLAS backward pass against central differences of
 * its forward pass (the loss), for one to three hidden layers, and Adam's
 * first step against its closed form (a step of lr * sign(g)). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pp_net.h"
#include "pp_rng.h"

static void fill_batch(pp_net *N, int m, int *y, uint64_t *s) {
    for (size_t k = 0; k < (size_t)N->sz[0] * m; k++) N->X[k] = 2 * rng_uniform(s) - 1;
    for (int j = 0; j < m; j++) y[j] = rng_int(s, N->sz[N->nl]);
}

static void gradient_matches_differences(int nl, const int *sz) {
    pp_net N;
    const int m = 7;
    assert_int_equal(pp_net_alloc(&N, nl, sz, m, 0), 0);
    pp_net_init(&N, 3);
    uint64_t s = 99;
    int y[7];
    fill_batch(&N, m, y, &s);
    pp_net_forward(&N, m, y, NULL);
    pp_net_backward(&N, m, y, 1);
    size_t np = N.off[nl];
    double *g = malloc(sizeof(double) * np);
    assert_non_null(g);
    memcpy(g, N.grad, sizeof(double) * np);
    const double h = 1e-6;
    double worst = 0;
    for (size_t k = 0; k < np; k++) {
        double t = N.theta[k];
        N.theta[k] = t + h;
        double fp = pp_net_forward(&N, m, y, NULL);
        N.theta[k] = t - h;
        double fm = pp_net_forward(&N, m, y, NULL);
        N.theta[k] = t;
        double fd = (fp - fm) / (2 * h), e = fabs(fd - g[k]) / (1e-6 + fabs(fd));
        if (e > worst) worst = e;
    }
    if (!(worst < 1e-5)) fail_msg("%d layers: worst relative error %.3g", nl, worst);
    /* the ProxProp pass leaves the hidden layers' gradient alone */
    for (size_t k = 0; k < N.off[nl - 1]; k++) N.grad[k] = -7.0;
    pp_net_forward(&N, m, y, NULL);
    pp_net_backward(&N, m, y, 0);
    for (size_t k = 0; k < N.off[nl - 1]; k++) assert_true(N.grad[k] == -7.0);
    for (size_t k = N.off[nl - 1]; k < np; k++) assert_true(N.grad[k] == g[k]);
    free(g);
    pp_net_free(&N);
}

static void backward_matches_central_differences_one_hidden_layer(void **st) {
    (void)st;
    const int sz[] = {5, 6, 3};
    gradient_matches_differences(2, sz);
}

static void backward_matches_central_differences_three_hidden_layers(void **st) {
    (void)st;
    const int sz[] = {4, 6, 5, 7, 3};
    gradient_matches_differences(4, sz);
}

static void adam_first_step_is_lr_times_the_sign(void **st) {
    (void)st;
    pp_net N;
    const int sz[] = {3, 4, 2};
    assert_int_equal(pp_net_alloc(&N, 2, sz, 4, 1), 0);
    pp_net_init(&N, 5);
    size_t np = N.off[2];
    double *t0 = malloc(sizeof(double) * np);
    assert_non_null(t0);
    memcpy(t0, N.theta, sizeof(double) * np);
    for (size_t k = 0; k < np; k++) N.grad[k] = (k % 3 == 0 ? -1.0 : 1.0) * (k + 1) * 0.01;
    pp_net_adam(&N, 0.1);
    /* m1 = 0.1 g / 0.1 = g, v = 0.001 g^2 / 0.001 = g^2: step lr g/(|g|+eps) */
    for (size_t k = 0; k < np; k++) {
        double g = N.grad[k], want = t0[k] - 0.1 * g / (fabs(g) + 1e-8);
        assert_true(fabs(N.theta[k] - want) < 1e-12);
    }
    free(t0);
    pp_net_free(&N);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(backward_matches_central_differences_one_hidden_layer),
        cmocka_unit_test(backward_matches_central_differences_three_hidden_layers),
        cmocka_unit_test(adam_first_step_is_lr_times_the_sign),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
