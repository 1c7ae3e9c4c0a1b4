/* test_pp_conv: the convolutional layer (im2col + dgemm) against a direct
 * convolution written out in loops: its output, col2im as the adjoint of
 * im2col, its gradients against central differences, and its ProxProp step
 * (pp_cg on the patches) against the proximal objective evaluated by the
 * direct convolution: CG lowers it, and the converged step is its
 * minimizer (zero directional derivatives), and the objective after 1 to
 * R + 1 iterations decreases to that of the minimizer found by a dense
 * Cholesky solve. */
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
#include "pp_rng.h"

static const pp_conv_shape SH = {.c = 2, .h = 5, .w = 4, .o = 3, .k = 3, .pad = 1};
static const pp_conv_shape SH0 = {.c = 3, .h = 4, .w = 6, .o = 2, .k = 2, .pad = 0};

static double *randv(size_t n, uint64_t *s) {
    double *v = malloc(sizeof(double) * n);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++) v[i] = 2 * rng_uniform(s) - 1;
    return v;
}

/* Z by the definition: z(ch', oy, ox) = b_ch' + sum W(ch', ky, kx, ch) x(ch, y, x) */
static void direct_conv(const pp_conv_shape *s, int m, const double *T,
                        const double *X, double *Z) {
    int c = s->c, h = s->h, w = s->w, o = s->o, k = s->k, pad = s->pad;
    int ho = h + 2 * pad - k + 1, wo = w + 2 * pad - k + 1, R = c * k * k;
    for (int j = 0; j < m; j++)
        for (int oy = 0; oy < ho; oy++)
            for (int ox = 0; ox < wo; ox++)
                for (int co = 0; co < o; co++) {
                    double z = T[co + (size_t)o * R];
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++)
                            for (int ch = 0; ch < c; ch++) {
                                int y = oy + ky - pad, x = ox + kx - pad;
                                if (y < 0 || y >= h || x < 0 || x >= w) continue;
                                double wt = T[co + (size_t)o * ((ky * k + kx) * c + ch)];
                                z += wt * X[(size_t)j * c * h * w + ((size_t)y * w + x) * c + ch];
                            }
                    Z[co + (size_t)o * ((size_t)j * ho * wo + (size_t)oy * wo + ox)] = z;
                }
}

static double dot(size_t n, const double *a, const double *b) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

typedef struct {
    const pp_conv_shape *s;
    int m, R, P;
    size_t nx, nz, nt, ncols;
} dims_t;

static dims_t dims(const pp_conv_shape *s, int m) {
    dims_t d = {s, m, pp_conv_patch_size(s), pp_conv_out_pixels(s), 0, 0, 0, 0};
    d.nx = (size_t)s->c * s->h * s->w * m;
    d.nz = (size_t)s->o * d.P * m;
    d.nt = (size_t)s->o * (d.R + 1);
    d.ncols = (size_t)d.R * d.P * m;
    return d;
}

static void forward_and_adjoint_match_the_definition(const pp_conv_shape *s) {
    dims_t d = dims(s, 3);
    uint64_t r = 5;
    double *X = randv(d.nx, &r), *T = randv(d.nt, &r), *cols = randv(d.ncols, &r);
    double *Z = randv(d.nz, &r), *Zd = randv(d.nz, &r);
    pp_conv_im2col(s, d.m, X, cols);
    pp_conv_forward(s, d.m, T, cols, Z);
    direct_conv(s, d.m, T, X, Zd);
    for (size_t i = 0; i < d.nz; i++) assert_true(fabs(Z[i] - Zd[i]) < 1e-12);
    /* <im2col(X), Y> = <X, col2im(Y)> */
    double *Y = randv(d.ncols, &r), *CY = randv(d.nx, &r);
    pp_conv_col2im(s, d.m, Y, CY);
    double a = dot(d.ncols, cols, Y), b = dot(d.nx, X, CY);
    assert_true(fabs(a - b) < 1e-12 * (1 + fabs(a)));
    free(X), free(T), free(cols), free(Z), free(Zd), free(Y), free(CY);
}

static void output_and_adjoint_match_the_definition(void **st) {
    (void)st;
    forward_and_adjoint_match_the_definition(&SH);
    forward_and_adjoint_match_the_definition(&SH0);
}

/* L = <Gz, conv_T(X)>: dL/dT and dL/dX by central differences */
static void gradients_match_central_differences(void **st) {
    (void)st;
    const pp_conv_shape *s = &SH;
    dims_t d = dims(s, 2);
    uint64_t r = 9;
    double *X = randv(d.nx, &r), *T = randv(d.nt, &r), *Gz = randv(d.nz, &r);
    double *cols = randv(d.ncols, &r), *dcols = randv(d.ncols, &r);
    double *G = randv(d.nt, &r), *dX = randv(d.nx, &r), *Z = randv(d.nz, &r);
    pp_conv_im2col(s, d.m, X, cols);
    pp_conv_backward(s, d.m, T, cols, Gz, G, dX, dcols);
    const double h = 1e-5;
    double *v[2] = {T, X}, *g[2] = {G, dX};
    size_t n[2] = {d.nt, d.nx};
    for (int q = 0; q < 2; q++)
        for (size_t i = 0; i < n[q]; i++) {
            double t = v[q][i], f[2];
            for (int sgn = 0; sgn < 2; sgn++) {
                v[q][i] = t + (sgn ? -h : h);
                direct_conv(s, d.m, T, X, Z);
                f[sgn] = dot(d.nz, Gz, Z);
            }
            v[q][i] = t;
            double fd = (f[0] - f[1]) / (2 * h);
            if (!(fabs(fd - g[q][i]) < 1e-8 * (1 + fabs(fd))))
                fail_msg("%s[%zu]: %.12g by differences, %.12g by backward",
                         q ? "dX" : "dT", i, fd, g[q][i]);
        }
    free(X), free(T), free(Gz), free(cols), free(dcols), free(G), free(dX), free(Z);
}

/* f(T) = 1/2 ||conv_T(X) - (conv_T0(X) - D)||^2 + 1/(2 tau) ||T - T0||^2 */
static double prox_objective(const dims_t *d, const double *T, const double *T0,
                             const double *X, const double *target, double tau,
                             double *Z) {
    direct_conv(d->s, d->m, T, X, Z);
    double f = 0;
    for (size_t i = 0; i < d->nz; i++) f += 0.5 * (Z[i] - target[i]) * (Z[i] - target[i]);
    for (size_t i = 0; i < d->nt; i++) f += 0.5 / tau * (T[i] - T0[i]) * (T[i] - T0[i]);
    return f;
}

static void prox_step_minimizes_the_proximal_objective(void **st) {
    (void)st;
    const pp_conv_shape *s = &SH;
    dims_t d = dims(s, 2);
    const int mp = d.m * d.P;
    const double tau = 0.5;
    uint64_t r = 13;
    double *X = randv(d.nx, &r), *T0 = randv(d.nt, &r), *D = randv(d.nz, &r);
    double *cols = randv(d.ncols, &r), *target = randv(d.nz, &r), *Z = randv(d.nz, &r);
    double *S = randv(d.nt, &r), *T = randv(d.nt, &r), *E = randv(d.nt, &r);
    direct_conv(s, d.m, T0, X, target);
    for (size_t i = 0; i < d.nz; i++) target[i] -= D[i];
    pp_conv_im2col(s, d.m, X, cols);
    char err[256];
    double f0 = prox_objective(&d, T0, T0, X, target, tau, Z), prev = f0;
    const int ks[] = {1, 3, 60};
    for (int q = 0; q < 3; q++) {
        pp_cg *cg = pp_cg_create(s->o, d.R, mp, tau, ks[q], PP_CG_PRIMAL, err, sizeof err);
        assert_non_null(cg);
        assert_int_equal(pp_cg_step(cg, mp, cols, D, S, err, sizeof err), 0);
        pp_cg_destroy(cg);
        for (size_t i = 0; i < d.nt; i++) T[i] = T0[i] - S[i];
        double f = prox_objective(&d, T, T0, X, target, tau, Z);
        assert_true(f < prev);
        prev = f;
    }
    /* after 60 iterations (R + 1 = 19 unknowns per row) T is the minimizer:
       directional derivatives vanish against those at T0 */
    double h = 1e-5, worst = 0, scale = 0;
    for (int trial = 0; trial < 5; trial++) {
        for (size_t i = 0; i < d.nt; i++) E[i] = 2 * rng_uniform(&r) - 1;
        double *at[2] = {T, T0}, der[2];
        for (int p = 0; p < 2; p++) {
            double fs[2];
            for (int sgn = 0; sgn < 2; sgn++) {
                for (size_t i = 0; i < d.nt; i++) S[i] = at[p][i] + (sgn ? -h : h) * E[i];
                fs[sgn] = prox_objective(&d, S, T0, X, target, tau, Z);
            }
            der[p] = fabs(fs[0] - fs[1]) / (2 * h);
        }
        if (der[0] > worst) worst = der[0];
        if (der[1] > scale) scale = der[1];
    }
    if (!(worst < 1e-6 * scale))
        fail_msg("directional derivative %.3g at the step, %.3g at T0", worst, scale);
    free(X), free(T0), free(D), free(cols), free(target), free(Z), free(S), free(T), free(E);
}

/* The patch of output pixel (oy, ox) of example j with a trailing 1, read
   from the image by its definition (not by im2col): p[(ky k + kx) c + ch] =
   X(ch, oy + ky - pad, ox + kx - pad), 0 outside, p[R] = 1. */
static void patch1(const pp_conv_shape *s, const double *X, int j, int oy, int ox,
                   double *p) {
    int c = s->c, h = s->h, w = s->w, k = s->k, R = c * k * k;
    for (int ky = 0; ky < k; ky++)
        for (int kx = 0; kx < k; kx++)
            for (int ch = 0; ch < c; ch++) {
                int y = oy + ky - s->pad, x = ox + kx - s->pad;
                p[(ky * k + kx) * c + ch] =
                    y < 0 || y >= h || x < 0 || x >= w
                        ? 0.0 : X[(size_t)j * c * h * w + ((size_t)y * w + x) * c + ch];
            }
    p[R] = 1.0;
}

/* The proximal step of the convolution by a dense solve: with the patches
   p_q (q over the m P output pixels) and d_q = D(:, q),
     M = sum_q p_q p_q' + I/tau,  G = sum_q d_q p_q',
   the minimizer of the proximal objective solves T M = T0 M - G; M is
   symmetric positive definite, so each row is solved with its Cholesky
   factor M = L L' (written out here, n = R + 1 = 19). CG's objective then
   decreases with the iterations to this minimizer's, and reaches it (CG
   terminates after n iterations in exact arithmetic; in floating point
   the directions lose conjugacy, and 2 n iterations are allowed). */
static void prox_step_reaches_the_dense_minimizer(void **st) {
    (void)st;
    const pp_conv_shape *s = &SH;
    dims_t d = dims(s, 2);
    const int n = d.R + 1, o = s->o, mp = d.m * d.P;
    const int ho = s->h + 2 * s->pad - s->k + 1, wo = s->w + 2 * s->pad - s->k + 1;
    const double tau = 0.5;
    uint64_t r = 31;
    double *X = randv(d.nx, &r), *T0 = randv(d.nt, &r), *D = randv(d.nz, &r);
    double *cols = randv(d.ncols, &r), *target = randv(d.nz, &r), *Z = randv(d.nz, &r);
    double *S = randv(d.nt, &r), *T = randv(d.nt, &r), *Ts = randv(d.nt, &r);
    double *Mx = calloc((size_t)n * n, sizeof(double)), *G = calloc(d.nt, sizeof(double));
    double *p = malloc(sizeof(double) * n), *b = malloc(sizeof(double) * n);
    assert_non_null(Mx);
    assert_non_null(G);
    assert_non_null(p);
    assert_non_null(b);
    for (int j = 0; j < d.m; j++)
        for (int oy = 0; oy < ho; oy++)
            for (int ox = 0; ox < wo; ox++) {
                size_t q = (size_t)j * d.P + (size_t)oy * wo + ox;
                patch1(s, X, j, oy, ox, p);
                for (int a = 0; a < n; a++) {
                    for (int c2 = 0; c2 < n; c2++) Mx[a + (size_t)n * c2] += p[a] * p[c2];
                    for (int row = 0; row < o; row++)
                        G[row + (size_t)o * a] += D[row + (size_t)o * q] * p[a];
                }
            }
    for (int a = 0; a < n; a++) Mx[a + (size_t)n * a] += 1.0 / tau;
    /* Cholesky in place (lower triangle): M = L L' */
    for (int jc = 0; jc < n; jc++) {
        double djj = Mx[jc + (size_t)n * jc];
        for (int k = 0; k < jc; k++) djj -= Mx[jc + (size_t)n * k] * Mx[jc + (size_t)n * k];
        assert_true(djj > 0);
        double ljj = sqrt(djj);
        Mx[jc + (size_t)n * jc] = ljj;
        for (int i = jc + 1; i < n; i++) {
            double v = Mx[i + (size_t)n * jc];
            for (int k = 0; k < jc; k++) v -= Mx[i + (size_t)n * k] * Mx[jc + (size_t)n * k];
            Mx[i + (size_t)n * jc] = v / ljj;
        }
    }
    /* row by row: M t = M t0 - g, i.e. t = t0 - M^{-1} g by two triangular
       solves (L u = g, L' v = u) */
    for (int row = 0; row < o; row++) {
        for (int i = 0; i < n; i++) { /* L u = g */
            double v = G[row + (size_t)o * i];
            for (int k = 0; k < i; k++) v -= Mx[i + (size_t)n * k] * b[k];
            b[i] = v / Mx[i + (size_t)n * i];
        }
        for (int i = n - 1; i >= 0; i--) { /* L' v = u */
            double v = b[i];
            for (int k = i + 1; k < n; k++) v -= Mx[k + (size_t)n * i] * b[k];
            b[i] = v / Mx[i + (size_t)n * i];
        }
        for (int i = 0; i < n; i++)
            Ts[row + (size_t)o * i] = T0[row + (size_t)o * i] - b[i];
    }
    direct_conv(s, d.m, T0, X, target);
    for (size_t i = 0; i < d.nz; i++) target[i] -= D[i];
    const double fstar = prox_objective(&d, Ts, T0, X, target, tau, Z);
    double prev = prox_objective(&d, T0, T0, X, target, tau, Z);
    assert_true(fstar < prev);
    pp_conv_im2col(s, d.m, X, cols);
    char err[256];
    for (int k = 1; k <= 2 * n; k++) {
        pp_cg *cg = pp_cg_create(o, d.R, mp, tau, k, PP_CG_PRIMAL, err, sizeof err);
        assert_non_null(cg);
        assert_int_equal(pp_cg_step(cg, mp, cols, D, S, err, sizeof err), 0);
        pp_cg_destroy(cg);
        for (size_t i = 0; i < d.nt; i++) T[i] = T0[i] - S[i];
        double f = prox_objective(&d, T, T0, X, target, tau, Z);
        /* non-increasing, and never below the minimum */
        if (!(f <= prev + 1e-12 * fabs(prev) && f >= fstar - 1e-12 * fabs(fstar)))
            fail_msg("%d iterations: objective %.15g after %.15g, minimum %.15g", k, f,
                     prev, fstar);
        if (k <= 3 && !(f < prev)) fail_msg("%d iterations: no decrease", k);
        prev = f;
    }
    double dmax = 0, tmax = 0;
    for (size_t i = 0; i < d.nt; i++) {
        dmax = fmax(dmax, fabs(T[i] - Ts[i]));
        tmax = fmax(tmax, fabs(Ts[i] - T0[i]));
    }
    if (!(dmax < 1e-10 * tmax))
        fail_msg("after %d iterations |T - T*| = %.3g, |T* - T0| = %.3g", 2 * n, dmax, tmax);
    print_message("after %d iterations |T - T*| = %.3g, |T* - T0| = %.3g\n", 2 * n, dmax, tmax);
    if (!(fabs(prev - fstar) < 1e-10 * fabs(fstar)))
        fail_msg("objective %.15g, minimum %.15g", prev, fstar);
    free(X), free(T0), free(D), free(cols), free(target), free(Z), free(S), free(T);
    free(Ts), free(Mx), free(G), free(p), free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(output_and_adjoint_match_the_definition),
        cmocka_unit_test(gradients_match_central_differences),
        cmocka_unit_test(prox_step_minimizes_the_proximal_objective),
        cmocka_unit_test(prox_step_reaches_the_dense_minimizer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
