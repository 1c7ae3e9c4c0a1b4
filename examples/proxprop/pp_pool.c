/* proxprop: max-pooling; see pp_pool.h. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "pp_pool.h"

int pp_pool_out_pixels(const pp_pool_shape *p) {
    if (p->s < 1) return 0;
    return (p->h / p->s) * (p->w / p->s);
}

void pp_pool_forward(const pp_pool_shape *p, int m, const double *X, double *Y,
                     int *arg) {
    const int c = p->c, w = p->w, s = p->s, ho = p->h / s, wo = p->w / s;
    const size_t img = (size_t)c * p->h * w, oimg = (size_t)c * ho * wo;
    for (int j = 0; j < m; j++) {
        const double *x = X + (size_t)j * img;
        double *y = Y + (size_t)j * oimg;
        int *a = arg + (size_t)j * oimg;
        for (int oy = 0; oy < ho; oy++)
            for (int ox = 0; ox < wo; ox++)
                for (int ch = 0; ch < c; ch++) {
                    int best = -1;
                    double v = 0;
                    for (int ky = 0; ky < s; ky++)
                        for (int kx = 0; kx < s; kx++) {
                            int i = ch + c * ((s * oy + ky) * w + s * ox + kx);
                            if (best < 0 || x[i] > v || (isnan(x[i]) && !isnan(v))) {
                                best = i;
                                v = x[i];
                            }
                        }
                    size_t q = (size_t)ch + (size_t)c * ((size_t)oy * wo + ox);
                    y[q] = v;
                    a[q] = best;
                }
    }
}

void pp_pool_backward(const pp_pool_shape *p, int m, const double *dY,
                      const int *arg, double *dX) {
    const size_t img = (size_t)p->c * p->h * p->w,
                 oimg = (size_t)p->c * pp_pool_out_pixels(p);
    memset(dX, 0, sizeof(double) * img * m);
    for (int j = 0; j < m; j++)
        for (size_t q = 0; q < oimg; q++)
            dX[(size_t)j * img + arg[(size_t)j * oimg + q]] += dY[(size_t)j * oimg + q];
}
