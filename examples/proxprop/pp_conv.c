/* proxprop: the convolutional layer; see pp_conv.h. */
#include <cblas.h>
#include <string.h>

#include "pp_conv.h"

int pp_conv_out_pixels(const pp_conv_shape *s) {
    int hh = s->h + 2 * s->pad - s->k + 1, ww = s->w + 2 * s->pad - s->k + 1;
    return hh > 0 && ww > 0 ? hh * ww : 0;
}

int pp_conv_patch_size(const pp_conv_shape *s) { return s->c * s->k * s->k; }

/* The one loop nest both directions share: for every patch entry, the
   image entry it reads (or -1 for padding). */
#define PATCH_LOOP(BODY)                                                      \
    const int c = s->c, h = s->h, w = s->w, k = s->k, pad = s->pad;           \
    const int ho = h + 2 * pad - k + 1, wo = w + 2 * pad - k + 1;             \
    const size_t R = (size_t)c * k * k, P = (size_t)ho * wo,                  \
                 img = (size_t)c * h * w;                                     \
    for (int j = 0; j < m; j++)                                               \
        for (int oy = 0; oy < ho; oy++)                                       \
            for (int ox = 0; ox < wo; ox++) {                                 \
                size_t q = (size_t)j * P + (size_t)oy * wo + ox;              \
                for (int ky = 0; ky < k; ky++) {                              \
                    int y = oy + ky - pad;                                    \
                    for (int kx = 0; kx < k; kx++) {                          \
                        int x = ox + kx - pad;                                \
                        size_t r = ((size_t)ky * k + kx) * c + R * q;         \
                        int in = y >= 0 && y < h && x >= 0 && x < w;          \
                        size_t i = in ? (size_t)j * img + ((size_t)y * w + x) * c : 0; \
                        for (int ch = 0; ch < c; ch++) { BODY }               \
                    }                                                         \
                }                                                             \
            }

void pp_conv_im2col(const pp_conv_shape *s, int m, const double *X, double *cols) {
    PATCH_LOOP(cols[r + ch] = in ? X[i + ch] : 0.0;)
}

void pp_conv_col2im(const pp_conv_shape *s, int m, const double *dcols, double *dX) {
    memset(dX, 0, sizeof(double) * (size_t)s->c * s->h * s->w * m);
    PATCH_LOOP(if (in) dX[i + ch] += dcols[r + ch];)
}

void pp_conv_forward(const pp_conv_shape *s, int m, const double *T,
                     const double *cols, double *Z) {
    const int o = s->o, R = pp_conv_patch_size(s), mp = m * pp_conv_out_pixels(s);
    const double *b = T + (size_t)o * R;
    for (int q = 0; q < mp; q++) memcpy(Z + (size_t)q * o, b, sizeof(double) * o);
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, o, mp, R, 1.0, T, o,
                cols, R, 1.0, Z, o);
}

void pp_conv_backward(const pp_conv_shape *s, int m, const double *T,
                      const double *cols, const double *dZ, double *G,
                      double *dX, double *dcols) {
    const int o = s->o, R = pp_conv_patch_size(s), mp = m * pp_conv_out_pixels(s);
    if (G) {
        /* dW = dZ cols', db = dZ 1 */
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, o, R, mp, 1.0, dZ, o,
                    cols, R, 0.0, G, o);
        double *gb = G + (size_t)o * R;
        for (int r = 0; r < o; r++) gb[r] = 0.0;
        for (int q = 0; q < mp; q++)
            for (int r = 0; r < o; r++) gb[r] += dZ[(size_t)q * o + r];
    }
    if (dX) {
        /* dcols = W' dZ; dX = col2im(dcols) */
        cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, R, mp, o, 1.0, T, o,
                    dZ, o, 0.0, dcols, R);
        pp_conv_col2im(s, m, dcols, dX);
    }
}
