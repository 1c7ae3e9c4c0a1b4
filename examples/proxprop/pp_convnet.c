/* proxprop: the paper's ConvNet; see pp_convnet.h. Every product is a BLAS
 * dgemm: the convolutions through pp_conv.c's patch matrices, the linear
 * layer as in pp_net.c (column j of a batch matrix is example j). */
#include <cblas.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pp_say.h"
#include "pp_convnet.h"
#include "pp_opt.h"
#include "pp_rng.h"

static const int WIDTHS[PP_CONVNET_CONVS] = {16, 20, 20};
enum { KERNEL = 5, PAD = 2, POOL = 2 };


void pp_convnet_free(pp_convnet *N) {
    free(N->theta);
    free(N->grad);
    free(N->m1);
    free(N->m2);
    free(N->X);
    free(N->Xh);
    for (int l = 0; l < PP_CONVNET_CONVS; l++) {
        free(N->cols[l]);
        free(N->A[l]);
        free(N->dZ[l]);
    }
    for (int l = 0; l < PP_CONVNET_CONVS - 1; l++) {
        free(N->pooled[l]);
        free(N->arg[l]);
    }
    free(N->zfc);
    free(N->pfc);
    free(N->dzfc);
    free(N->dcols);
    free(N->dA);
    memset(N, 0, sizeof *N);
}

static void *alloc_n(size_t n, size_t size, int *ok) {
    void *p = *ok ? malloc(size * (n ? n : 1)) : NULL;
    if (!p) *ok = 0;
    return p;
}

int pp_convnet_alloc(pp_convnet *N, int c, int h, int w, int classes, int cap,
                     int adam, char *err, size_t errlen) {
    memset(N, 0, sizeof *N);
    if (c < 1 || h < 4 || w < 4 || classes < 2 || cap < 1) {
        pp_say(err, errlen, "pp_convnet_alloc: a %d x %d x %d image, %d classes, "
            "batch %d: need at least 1 channel, 4 x 4 pixels (two 2x2 "
            "poolings), 2 classes and 1 example", c, h, w, classes, cap);
        return -1;
    }
    /* every count is checked in double against BLAS's (and the index
       arithmetic's) int before anything is allocated */
    const double big = 2147483647.0;
    double sizes[PP_CONVNET_CONVS][3]; /* R, cap P, out cap P per convolution */
    int ci = c, hi = h, wi = w;
    if ((double)c * h * w > big || (double)c * h * w * cap > big) goto too_big;
    for (int l = 0; l < PP_CONVNET_CONVS; l++) {
        N->conv[l] = (pp_conv_shape){.c = ci, .h = hi, .w = wi, .o = WIDTHS[l],
                                     .k = KERNEL, .pad = PAD};
        double R = (double)ci * KERNEL * KERNEL, P = (double)hi * wi;
        sizes[l][0] = R;
        sizes[l][1] = P * cap;
        sizes[l][2] = WIDTHS[l] * P * cap;
        if (R + 1 > big || sizes[l][1] > big || sizes[l][2] > big ||
            (R + 1) * sizes[l][1] > big)
            goto too_big;
        if (l < PP_CONVNET_CONVS - 1) {
            N->pool[l] = (pp_pool_shape){.c = WIDTHS[l], .h = hi, .w = wi, .s = POOL};
            hi /= POOL;
            wi /= POOL;
        }
        ci = WIDTHS[l];
    }
    N->c = c;
    N->h = h;
    N->w = w;
    N->classes = classes;
    N->cap = cap;
    N->feat = WIDTHS[PP_CONVNET_CONVS - 1] * hi * wi;
    for (int l = 0; l < PP_CONVNET_CONVS; l++) {
        N->out[l] = N->conv[l].o;
        N->in[l] = pp_conv_patch_size(&N->conv[l]);
    }
    N->out[3] = classes;
    N->in[3] = N->feat;
    if ((double)classes * (N->feat + 1) > big || (double)classes * cap > big) goto too_big;
    for (int l = 0; l < PP_CONVNET_LAYERS; l++)
        N->off[l + 1] = N->off[l] + (size_t)N->out[l] * (N->in[l] + 1);

    int ok = 1;
    const size_t np = N->off[PP_CONVNET_LAYERS], img = (size_t)c * h * w * cap;
    N->theta = alloc_n(np, sizeof(double), &ok);
    N->grad = alloc_n(np, sizeof(double), &ok);
    N->m1 = alloc_n(np, sizeof(double), &ok);
    if (adam) N->m2 = alloc_n(np, sizeof(double), &ok);
    N->X = alloc_n(img, sizeof(double), &ok);
    N->Xh = alloc_n(img, sizeof(double), &ok);
    size_t dcols = 0, dA = 0;
    for (int l = 0; l < PP_CONVNET_CONVS; l++) {
        size_t ncols = (size_t)sizes[l][0] * (size_t)sizes[l][1],
               nout = (size_t)sizes[l][2];
        N->cols[l] = alloc_n(ncols, sizeof(double), &ok);
        N->A[l] = alloc_n(nout, sizeof(double), &ok);
        N->dZ[l] = alloc_n(nout, sizeof(double), &ok);
        if (l > 0 && ncols > dcols) dcols = ncols;
        if (l < PP_CONVNET_CONVS - 1) {
            size_t np_ = (size_t)N->out[l] * pp_pool_out_pixels(&N->pool[l]) * cap;
            N->pooled[l] = alloc_n(np_, sizeof(double), &ok);
            N->arg[l] = alloc_n(np_, sizeof(int), &ok);
            if (np_ > dA) dA = np_;
        }
    }
    N->zfc = alloc_n((size_t)classes * cap, sizeof(double), &ok);
    N->pfc = alloc_n((size_t)classes * cap, sizeof(double), &ok);
    N->dzfc = alloc_n((size_t)classes * cap, sizeof(double), &ok);
    N->dcols = alloc_n(dcols, sizeof(double), &ok);
    N->dA = alloc_n(dA, sizeof(double), &ok);
    if (!ok) {
        double mb = 0;
        for (int l = 0; l < PP_CONVNET_CONVS; l++)
            mb += 8e-6 * sizes[l][0] * sizes[l][1] + 16e-6 * sizes[l][2];
        pp_convnet_free(N);
        pp_say(err, errlen, "pp_convnet_alloc: out of memory (a %d x %d x %d image, "
            "batch %d: the patch matrices and activations alone take %.0f MB)",
            c, h, w, cap, mb);
        return -1;
    }
    return 0;
too_big:
    memset(N, 0, sizeof *N);
    pp_say(err, errlen, "pp_convnet_alloc: a %d x %d x %d image, batch %d: a patch "
        "matrix or activation exceeds BLAS's int sizes", c, h, w, cap);
    return -1;
}

void pp_convnet_init(pp_convnet *N, uint64_t seed) {
    uint64_t s = seed * 6151u + 13u;
    for (int l = 0; l < PP_CONVNET_LAYERS; l++) {
        double r = 1.0 / sqrt((double)N->in[l]);
        double *T = N->theta + N->off[l];
        for (size_t k = 0; k < N->off[l + 1] - N->off[l]; k++)
            T[k] = r * (2 * rng_uniform(&s) - 1);
    }
    size_t np = N->off[PP_CONVNET_LAYERS];
    memset(N->m1, 0, sizeof(double) * np);
    if (N->m2) memset(N->m2, 0, sizeof(double) * np);
    N->adam_t = 0;
}

static void relu(size_t n, double *a) {
    for (size_t k = 0; k < n; k++) a[k] = a[k] > 0 ? a[k] : 0.0;
}

/* dZ = dA [A > 0] in place (A = ReLU(Z): A > 0 exactly where Z > 0) */
static void relu_back(size_t n, const double *A, double *dZ) {
    for (size_t k = 0; k < n; k++)
        if (!(A[k] > 0)) dZ[k] = 0.0;
}

double pp_convnet_forward(pp_convnet *N, int m, const int *y, int *correct) {
    const int c = N->c, hw = N->h * N->w, C = N->classes;
    /* CHW -> HWC: Xh[ch + c p] = X[ch hw + p] */
    for (int j = 0; j < m; j++) {
        const double *x = N->X + (size_t)j * c * hw;
        double *xh = N->Xh + (size_t)j * c * hw;
        for (int ch = 0; ch < c; ch++)
            for (int p = 0; p < hw; p++) xh[ch + (size_t)c * p] = x[(size_t)ch * hw + p];
    }
    const double *in = N->Xh;
    for (int l = 0; l < PP_CONVNET_CONVS; l++) {
        const pp_conv_shape *s = &N->conv[l];
        pp_conv_im2col(s, m, in, N->cols[l]);
        pp_conv_forward(s, m, N->theta + N->off[l], N->cols[l], N->A[l]);
        relu((size_t)s->o * pp_conv_out_pixels(s) * m, N->A[l]);
        if (l < PP_CONVNET_CONVS - 1) {
            pp_pool_forward(&N->pool[l], m, N->A[l], N->pooled[l], N->arg[l]);
            in = N->pooled[l];
        }
    }
    /* linear layer: zfc = W a + b 1', a = the last ReLU output (feat x m) */
    const double *T = N->theta + N->off[3], *b = T + (size_t)C * N->feat;
    for (int j = 0; j < m; j++) memcpy(N->zfc + (size_t)j * C, b, sizeof(double) * C);
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, C, m, N->feat, 1.0, T, C,
                N->A[PP_CONVNET_CONVS - 1], N->feat, 1.0, N->zfc, C);
    /* softmax cross-entropy, stable: log sum exp (z - max) */
    int ok = 0;
    double loss = 0;
    for (int j = 0; j < m; j++) {
        const double *z = N->zfc + (size_t)j * C;
        double *p = N->pfc + (size_t)j * C;
        double zmax = z[0];
        int arg = 0;
        for (int k = 1; k < C; k++)
            if (z[k] > zmax) zmax = z[k], arg = k;
        double s = 0;
        for (int k = 0; k < C; k++) s += (p[k] = exp(z[k] - zmax));
        for (int k = 0; k < C; k++) p[k] /= s;
        loss += log(s) + zmax - z[y[j]];
        ok += arg == y[j];
    }
    if (correct) *correct = ok;
    return loss / m;
}

void pp_convnet_backward(pp_convnet *N, int m, const int *y, int all_layers) {
    const int C = N->classes, F = N->feat, L = PP_CONVNET_CONVS - 1;
    /* dL/dzfc = (P - onehot(y)) / m */
    for (int j = 0; j < m; j++) {
        const double *p = N->pfc + (size_t)j * C;
        double *d = N->dzfc + (size_t)j * C;
        for (int k = 0; k < C; k++) d[k] = p[k] / m;
        d[y[j]] -= 1.0 / m;
    }
    /* linear layer: dW = dz a', db = dz 1; da = W' dz into dZ[L] */
    const double *T = N->theta + N->off[3];
    double *g = N->grad + N->off[3], *gb = g + (size_t)C * F;
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, C, F, m, 1.0, N->dzfc, C,
                N->A[L], F, 0.0, g, C);
    for (int k = 0; k < C; k++) gb[k] = 0.0;
    for (int j = 0; j < m; j++)
        for (int k = 0; k < C; k++) gb[k] += N->dzfc[(size_t)j * C + k];
    cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, F, m, C, 1.0, T, C,
                N->dzfc, C, 0.0, N->dZ[L], F);
    relu_back((size_t)F * m, N->A[L], N->dZ[L]);
    for (int l = L; l >= 0; l--) {
        const pp_conv_shape *s = &N->conv[l];
        double *G = all_layers ? N->grad + N->off[l] : NULL;
        /* dX of the pooled input (none for the first layer), then through
           the pooling and the ReLU below it */
        pp_conv_backward(s, m, N->theta + N->off[l], N->cols[l], N->dZ[l], G,
                         l > 0 ? N->dA : NULL, N->dcols);
        if (l == 0) break;
        pp_pool_backward(&N->pool[l - 1], m, N->dA, N->arg[l - 1], N->dZ[l - 1]);
        const pp_conv_shape *sb = &N->conv[l - 1];
        relu_back((size_t)sb->o * pp_conv_out_pixels(sb) * m, N->A[l - 1], N->dZ[l - 1]);
    }
}

pp_cg *pp_convnet_cg_create(const pp_convnet *N, int l, double tau, int iters,
                            char *err, size_t errlen) {
    if (l < 0 || l >= PP_CONVNET_CONVS) {
        pp_say(err, errlen, "pp_convnet_cg_create: layer %d is not a convolution", l);
        return NULL;
    }
    return pp_cg_create(N->out[l], N->in[l], N->cap * pp_conv_out_pixels(&N->conv[l]),
                        tau, iters, PP_CG_PRIMAL, err, errlen);
}

int pp_convnet_prox_steps(pp_convnet *N, int m, pp_cg *const *cg, char *why,
                          size_t whylen) {
    /* convolution l is the linear layer T -> T cols_l on its m P_l patches:
       T+ = argmin 1/2 ||T cols1 - (T0 cols1 - dZ)||^2 + 1/(2 tau) ||T - T0||^2
       (cols1 = [cols; 1']), by CG from T0; grad = T0 - T+ */
    for (int l = 0; l < PP_CONVNET_CONVS; l++) {
        char err[160];
        int mp = m * pp_conv_out_pixels(&N->conv[l]);
        if (pp_cg_step(cg[l], mp, N->cols[l], N->dZ[l], N->grad + N->off[l], err,
                       sizeof err) != 0) {
            pp_say(why, whylen, "convolution %d: %s", l + 1, err);
            return -1;
        }
    }
    return 0;
}

void pp_convnet_nesterov(pp_convnet *N, double lr, double mu) {
    pp_opt_nesterov(N->off[PP_CONVNET_LAYERS], N->theta, N->grad, N->m1, lr, mu);
}

void pp_convnet_adam(pp_convnet *N, double lr) {
    pp_opt_adam(N->off[PP_CONVNET_LAYERS], N->theta, N->grad, N->m1, N->m2,
                &N->adam_t, lr);
}
