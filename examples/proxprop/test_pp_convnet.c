/* test_pp_convnet: max-pooling against loops written from its definition
 * (forward) and against central differences (backward); the paper's
 * ConvNet's gradient against central differences of its loss; its ProxProp
 * step against the optimality condition of the proximal problem of each
 * convolution; and shapes it cannot take refused with a message. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pp_cg.h"
#include "pp_conv.h"
#include "pp_convnet.h"
#include "pp_pool.h"
#include "pp_rng.h"

static double *randv(size_t n, uint64_t *s) {
    double *v = malloc(sizeof(double) * (n ? n : 1));
    assert_non_null(v);
    for (size_t i = 0; i < n; i++) v[i] = 2 * rng_uniform(s) - 1;
    return v;
}

/* ------------------------------------------------------------------------ */
/* max-pooling                                                               */
/* ------------------------------------------------------------------------ */

/* X(ch, y, x) of example j in the HWC layout */
static double px(const pp_pool_shape *p, const double *X, int j, int ch, int y, int x) {
    return X[(size_t)j * p->c * p->h * p->w + ((size_t)y * p->w + x) * p->c + ch];
}

/* the pooling by its definition: every output pixel scans its window */
static double pool_direct(const pp_pool_shape *p, const double *X, int j, int ch,
                          int oy, int ox) {
    double v = -INFINITY;
    for (int y = oy * p->s; y < (oy + 1) * p->s; y++)
        for (int x = ox * p->s; x < (ox + 1) * p->s; x++)
            v = fmax(v, px(p, X, j, ch, y, x));
    return v;
}

static void pool_case(const pp_pool_shape *p) {
    const int m = 3, ho = p->h / p->s, wo = p->w / p->s;
    assert_int_equal(pp_pool_out_pixels(p), ho * wo);
    const size_t nx = (size_t)p->c * p->h * p->w * m, ny = (size_t)p->c * ho * wo * m;
    uint64_t r = 21;
    double *X = randv(nx, &r), *Y = randv(ny, &r), *dY = randv(ny, &r);
    double *dX = randv(nx, &r);
    int *arg = malloc(sizeof(int) * ny);
    assert_non_null(arg);
    pp_pool_forward(p, m, X, Y, arg);
    for (int j = 0; j < m; j++)
        for (int oy = 0; oy < ho; oy++)
            for (int ox = 0; ox < wo; ox++)
                for (int ch = 0; ch < p->c; ch++) {
                    size_t q = (size_t)j * p->c * ho * wo + ((size_t)oy * wo + ox) * p->c + ch;
                    assert_true(Y[q] == pool_direct(p, X, j, ch, oy, ox));
                }
    /* backward: L = <dY, pool(X)>, dL/dX by central differences (the
       entries are distinct, so the maximum is differentiable) */
    pp_pool_backward(p, m, dY, arg, dX);
    const double h = 1e-6;
    for (size_t i = 0; i < nx; i++) {
        double t = X[i], f[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            X[i] = t + (sgn ? -h : h);
            pp_pool_forward(p, m, X, Y, arg);
            f[sgn] = 0;
            for (size_t q = 0; q < ny; q++) f[sgn] += dY[q] * Y[q];
        }
        X[i] = t;
        double fd = (f[0] - f[1]) / (2 * h);
        if (!(fabs(fd - dX[i]) < 1e-8))
            fail_msg("dX[%zu]: %.12g by differences, %.12g by backward", i, fd, dX[i]);
    }
    free(X), free(Y), free(dY), free(dX), free(arg);
}

static void pooling_matches_loops_and_differences(void **st) {
    (void)st;
    pool_case(&(pp_pool_shape){.c = 3, .h = 4, .w = 6, .s = 2});
    pool_case(&(pp_pool_shape){.c = 2, .h = 5, .w = 7, .s = 2}); /* odd: dropped */
    pool_case(&(pp_pool_shape){.c = 1, .h = 7, .w = 6, .s = 3});
}

static void pooling_propagates_nan(void **st) {
    (void)st;
    const pp_pool_shape p = {.c = 1, .h = 2, .w = 2, .s = 2};
    double X[4] = {1, NAN, 3, 2}, Y[1];
    int arg[1];
    pp_pool_forward(&p, 1, X, Y, arg);
    assert_true(isnan(Y[0]));
    assert_int_equal(arg[0], 1);
    /* ties go to the first maximum in window order */
    double Z[4] = {0.5, 2, 2, 1};
    pp_pool_forward(&p, 1, Z, Y, arg);
    assert_true(Y[0] == 2 && arg[0] == 1);
}

/* ------------------------------------------------------------------------ */
/* the ConvNet                                                               */
/* ------------------------------------------------------------------------ */

enum { C = 2, H = 8, W = 6, K = 3, M = 3 };

static void fill_batch(pp_convnet *N, int *y, uint64_t *r) {
    for (size_t i = 0; i < (size_t)C * H * W * M; i++) N->X[i] = rng_uniform(r);
    for (int j = 0; j < M; j++) y[j] = rng_int(r, K);
}

static void convnet_shapes(void **st) {
    (void)st;
    pp_convnet N;
    char err[256];
    assert_int_equal(pp_convnet_alloc(&N, 3, 32, 32, 10, 2, 1, err, sizeof err), 0);
    /* 3x32x32 -> 16x32x32 -> 16x16x16 -> 20x16x16 -> 20x8x8 -> 20x8x8 -> 10 */
    assert_int_equal(N.feat, 20 * 8 * 8);
    const int outs[] = {16, 20, 20, 10}, ins[] = {75, 400, 500, 1280};
    for (int l = 0; l < 4; l++) {
        assert_int_equal(N.out[l], outs[l]);
        assert_int_equal(N.in[l], ins[l]);
    }
    assert_int_equal(pp_conv_out_pixels(&N.conv[1]), 16 * 16);
    assert_int_equal(N.off[4], (size_t)16 * 76 + 20 * 401 + 20 * 501 + 10 * 1281);
    pp_convnet_free(&N);
}

/* every parameter of a layer when it has few, else 60 seeded ones */
static void gradient_matches_central_differences(void **st) {
    (void)st;
    pp_convnet N;
    char err[256];
    assert_int_equal(pp_convnet_alloc(&N, C, H, W, K, M, 0, err, sizeof err), 0);
    assert_int_equal(N.feat, 20 * 2 * 1);
    pp_convnet_init(&N, 3);
    uint64_t r = 77;
    int y[M];
    fill_batch(&N, y, &r);
    /* larger weights than the default, so that the gradient is not tiny */
    for (size_t k = 0; k < N.off[4]; k++) N.theta[k] *= 2.5;
    pp_convnet_forward(&N, M, y, NULL);
    pp_convnet_backward(&N, M, y, 1);
    const size_t np = N.off[4];
    double *g = malloc(sizeof(double) * np), *dZ0 = malloc(sizeof(double) * 16 * H * W * M);
    assert_non_null(g);
    assert_non_null(dZ0);
    memcpy(g, N.grad, sizeof(double) * np);
    memcpy(dZ0, N.dZ[0], sizeof(double) * 16 * H * W * M);
    /* the explicit layer's gradient and dZ do not depend on all_layers */
    pp_convnet_forward(&N, M, y, NULL);
    pp_convnet_backward(&N, M, y, 0);
    for (size_t k = N.off[3]; k < np; k++) assert_true(N.grad[k] == g[k]);
    for (size_t k = 0; k < (size_t)16 * H * W * M; k++) assert_true(N.dZ[0][k] == dZ0[k]);
    const double h = 1e-6;
    double worst = 0;
    int checked = 0;
    for (int l = 0; l < 4; l++) {
        size_t n = N.off[l + 1] - N.off[l];
        int count = n <= 200 ? (int)n : 60;
        for (int q = 0; q < count; q++) {
            size_t i = N.off[l] + (n <= 200 ? (size_t)q : (size_t)rng_int(&r, (int)n));
            if (q < N.out[l]) i = N.off[l] + (size_t)N.out[l] * N.in[l] + q; /* biases */
            double t = N.theta[i], f[2];
            for (int sgn = 0; sgn < 2; sgn++) {
                N.theta[i] = t + (sgn ? -h : h);
                f[sgn] = pp_convnet_forward(&N, M, y, NULL);
            }
            N.theta[i] = t;
            double fd = (f[0] - f[1]) / (2 * h), err_i = fabs(fd - g[i]);
            if (!(err_i < 1e-7 + 1e-6 * fabs(fd)))
                fail_msg("layer %d, parameter %zu: %.10g by differences, %.10g by "
                         "backward", l, i - N.off[l], fd, g[i]);
            if (err_i > worst) worst = err_i;
            checked++;
        }
    }
    print_message("%d parameters checked, worst |difference| %.2g\n", checked, worst);
    free(g);
    free(dZ0);
    pp_convnet_free(&N);
}

/* Convolution l's proximal problem in the step X = T+ - T0 = -S,
     min 1/2 ||X cols1 + dZ||^2 + 1/(2 tau) ||X||^2,
   has the optimality condition S (cols1 cols1' + I/tau) = G, with
   G = dZ cols1' the BackProp gradient (checked above by differences).
   S cols1 cols1' is the layer's forward product followed by its adjoint. */
static void prox_step_solves_each_convolution(void **st) {
    (void)st;
    pp_convnet N;
    char err[256];
    assert_int_equal(pp_convnet_alloc(&N, C, H, W, K, M, 1, err, sizeof err), 0);
    pp_convnet_init(&N, 5);
    uint64_t r = 99;
    int y[M];
    fill_batch(&N, y, &r);
    const double tau = 0.7;
    pp_convnet_forward(&N, M, y, NULL);
    pp_convnet_backward(&N, M, y, 1);
    const size_t np = N.off[4];
    double *G = malloc(sizeof(double) * np);
    assert_non_null(G);
    memcpy(G, N.grad, sizeof(double) * np);
    pp_cg *cg[PP_CONVNET_CONVS], *cg1[PP_CONVNET_CONVS];
    for (int l = 0; l < PP_CONVNET_CONVS; l++) {
        /* the patches' Gram matrix is singular-free but ill-conditioned:
           run CG well past R + 1 iterations */
        cg[l] = pp_convnet_cg_create(&N, l, tau, 4 * (N.in[l] + 1), err, sizeof err);
        cg1[l] = pp_convnet_cg_create(&N, l, tau, 1, err, sizeof err);
        assert_non_null(cg[l]);
        assert_non_null(cg1[l]);
    }
    /* one iteration from T0 moves along -G (the first CG direction) */
    assert_int_equal(pp_convnet_prox_steps(&N, M, cg1, err, sizeof err), 0);
    for (int l = 0; l < PP_CONVNET_CONVS; l++) {
        size_t n = N.off[l + 1] - N.off[l];
        for (int row = 0; row < N.out[l]; row++) {
            double ratio = NAN;
            for (size_t k = row; k < n; k += N.out[l]) {
                const double s = N.grad[N.off[l] + k], g = G[N.off[l] + k];
                if (fabs(g) < 1e-12) continue;
                if (isnan(ratio)) ratio = s / g;
                assert_true(ratio > 0 && fabs(s - ratio * g) < 1e-10 * (fabs(s) + 1e-12));
            }
        }
    }
    assert_int_equal(pp_convnet_prox_steps(&N, M, cg, err, sizeof err), 0);
    for (size_t k = N.off[3]; k < np; k++) assert_true(N.grad[k] == G[k]);
    for (int l = 0; l < PP_CONVNET_CONVS; l++) {
        const pp_conv_shape *s = &N.conv[l];
        const int R = N.in[l], o = N.out[l], mp = M * pp_conv_out_pixels(s);
        const size_t nt = (size_t)o * (R + 1);
        const double *S = N.grad + N.off[l];
        double *F = malloc(sizeof(double) * (size_t)o * mp), *SM = malloc(sizeof(double) * nt);
        assert_non_null(F);
        assert_non_null(SM);
        pp_conv_forward(s, M, S, N.cols[l], F);                 /* F = S cols1 */
        pp_conv_backward(s, M, S, N.cols[l], F, SM, NULL, NULL); /* F cols1'   */
        double res = 0, scale = 0;
        for (size_t k = 0; k < nt; k++) {
            double v = SM[k] + S[k] / tau - G[N.off[l] + k];
            res += v * v;
            scale += G[N.off[l] + k] * G[N.off[l] + k];
        }
        if (!(sqrt(res) < 1e-8 * sqrt(scale)))
            fail_msg("convolution %d: ||S M - G|| = %.3g, ||G|| = %.3g", l + 1,
                     sqrt(res), sqrt(scale));
        free(F);
        free(SM);
        pp_cg_destroy(cg[l]);
        pp_cg_destroy(cg1[l]);
    }
    free(G);
    pp_convnet_free(&N);
}

static void bad_shapes_are_refused(void **st) {
    (void)st;
    pp_convnet N;
    char err[256];
    struct {
        int c, h, w, k, cap;
        const char *text;
    } bad[] = {
        {3, 3, 32, 10, 4, "need at least 1 channel, 4 x 4 pixels"},
        {3, 32, 2, 10, 4, "need at least 1 channel, 4 x 4 pixels"},
        {0, 32, 32, 10, 4, "need at least 1 channel"},
        {3, 32, 32, 1, 4, "2 classes"},
        {3, 32, 32, 10, 0, "1 example"},
        {3, 30000, 30000, 10, 1, "exceeds BLAS's int sizes"},
        {3, 32, 32, 10, 100000, "exceeds BLAS's int sizes"},
    };
    for (size_t q = 0; q < sizeof bad / sizeof bad[0]; q++) {
        memset(&N, 0x5a, sizeof N);
        err[0] = '\0';
        assert_int_equal(pp_convnet_alloc(&N, bad[q].c, bad[q].h, bad[q].w, bad[q].k,
                                          bad[q].cap, 0, err, sizeof err), -1);
        if (!strstr(err, bad[q].text)) fail_msg("case %zu: '%s'", q, err);
        assert_null(N.theta);
        pp_convnet_free(&N); /* safe on what a refusal leaves */
    }
    /* a convolution index that is not one */
    assert_int_equal(pp_convnet_alloc(&N, 1, 4, 4, 2, 1, 0, err, sizeof err), 0);
    assert_null(pp_convnet_cg_create(&N, 3, 1.0, 1, err, sizeof err));
    assert_non_null(strstr(err, "not a convolution"));
    pp_convnet_free(&N);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pooling_matches_loops_and_differences),
        cmocka_unit_test(pooling_propagates_nan),
        cmocka_unit_test(convnet_shapes),
        cmocka_unit_test(gradient_matches_central_differences),
        cmocka_unit_test(prox_step_solves_each_convolution),
        cmocka_unit_test(bad_shapes_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
