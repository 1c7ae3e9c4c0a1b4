/* A temporal-chain fusion energy (the shape of tracker fusion, 1-D):
 *   E(x; w) = sum_t sum_k w_k rho(x_t - y_tk) + w_K sum_t (x_{t+1} - 2 x_t + x_{t-1})^2
 *   rho(r) = d^2 (sqrt(1 + r^2/d^2) - 1)   (pseudo-Huber, width d)
 * x in R^T, w = (K tracker weights, smoothness alpha): p = K + 1. H is banded
 * with half-bandwidth 2; every derivative is given in every form (dense,
 * band, Hessian-vector product, diagonal, mixed VJP, dense mixed). */
#ifndef WB_TEST_CHAIN_H
#define WB_TEST_CHAIN_H

#include "wb_test.h"

typedef struct {
    int T, K;
    double d;
    double *y; /* [T*K], y[t*K + k] */
} chain_t;

static inline double ch_r1(double r, double d) { return r / sqrt(1 + r * r / (d * d)); }
static inline double ch_r2(double r, double d) {
    double s = sqrt(1 + r * r / (d * d));
    return 1 / (s * s * s);
}

static inline int ch_vg(void *u, const double *x, const double *w, double *e,
                        double *g) {
    chain_t *c = u;
    int T = c->T, K = c->K;
    double E = 0.0, d = c->d, a = w[K];
    if (g) memset(g, 0, (size_t)T * sizeof(double));
    for (int t = 0; t < T; t++)
        for (int k = 0; k < K; k++) {
            double r = x[t] - c->y[t * K + k];
            E += w[k] * d * d * (sqrt(1 + r * r / (d * d)) - 1);
            if (g) g[t] += w[k] * ch_r1(r, d);
        }
    for (int t = 1; t + 1 < T; t++) {
        double q = x[t + 1] - 2 * x[t] + x[t - 1];
        E += a * q * q;
        if (g) {
            g[t + 1] += 2 * a * q;
            g[t] -= 4 * a * q;
            g[t - 1] += 2 * a * q;
        }
    }
    *e = E;
    return 0;
}
/* H_tt = sum_k w_k rho''; smoothing adds 2a [1 -2 1]'[1 -2 1] per triple */
static inline double ch_data_h(const chain_t *c, const double *x,
                               const double *w, int t) {
    double h = 0.0;
    for (int k = 0; k < c->K; k++) h += w[k] * ch_r2(x[t] - c->y[t * c->K + k], c->d);
    return h;
}
static inline int ch_band(void *u, const double *x, const double *w,
                          double *AB) {
    chain_t *c = u;
    int T = c->T, ld = 3;
    double a = w[c->K];
    static const double s[3] = {1, -2, 1};
    memset(AB, 0, sizeof(double) * (size_t)(ld * T));
    for (int t = 0; t < T; t++) AB[t * ld] = ch_data_h(c, x, w, t);
    for (int t = 1; t + 1 < T; t++)
        for (int i = 0; i < 3; i++)
            for (int j = 0; j <= i; j++) /* rows t-1+i >= cols t-1+j */
                AB[(i - j) + (t - 1 + j) * ld] += 2 * a * s[i] * s[j];
    return 0;
}
static inline int ch_dense(void *u, const double *x, const double *w,
                           double *H) {
    chain_t *c = u;
    int T = c->T;
    double *AB = calloc((size_t)(3 * T), sizeof(double));
    ch_band(u, x, w, AB);
    memset(H, 0, sizeof(double) * (size_t)T * (size_t)T);
    for (int j = 0; j < T; j++)
        for (int r = 0; r <= 2 && j + r < T; r++)
            H[j * T + j + r] = H[(j + r) * T + j] = AB[r + j * 3];
    free(AB);
    return 0;
}
static inline int ch_hvp(void *u, const double *x, const double *w,
                         const double *v, double *out) {
    chain_t *c = u;
    int T = c->T;
    double a = w[c->K];
    for (int t = 0; t < T; t++) out[t] = ch_data_h(c, x, w, t) * v[t];
    for (int t = 1; t + 1 < T; t++) {
        double q = v[t + 1] - 2 * v[t] + v[t - 1];
        out[t + 1] += 2 * a * q;
        out[t] -= 4 * a * q;
        out[t - 1] += 2 * a * q;
    }
    return 0;
}
static inline int ch_diag(void *u, const double *x, const double *w,
                          double *dg) {
    chain_t *c = u;
    int T = c->T;
    double a = w[c->K];
    for (int t = 0; t < T; t++) {
        dg[t] = ch_data_h(c, x, w, t);
        int m = 0; /* how many triples t sits in, as end (1) or middle (4) */
        if (t >= 2) m += 1;
        if (t + 2 < T) m += 1;
        if (t >= 1 && t + 1 < T) m += 4;
        dg[t] += 2 * a * m;
    }
    return 0;
}
/* B^T v: d/dw_k grad_t = rho'(x_t - y_tk); d/da grad = 2 S'S x */
static inline int ch_mixed_vjp(void *u, const double *x, const double *w,
                               const double *v, double *out) {
    chain_t *c = u;
    int T = c->T, K = c->K;
    double one[1];
    (void)one;
    for (int k = 0; k <= K; k++) out[k] = 0.0;
    for (int t = 0; t < T; t++)
        for (int k = 0; k < K; k++) out[k] += v[t] * ch_r1(x[t] - c->y[t * K + k], c->d);
    for (int t = 1; t + 1 < T; t++) {
        double q = x[t + 1] - 2 * x[t] + x[t - 1];
        double vq = v[t + 1] - 2 * v[t] + v[t - 1];
        out[K] += 2 * q * vq;
    }
    (void)w;
    return 0;
}

/* T frames of a smooth path, K trackers; tracker k has noise 0.1 (k+1) and
   every 7th frame of tracker 0 is an outlier. */
static inline void chain_init(chain_t *c, int T, int K, uint64_t seed) {
    c->T = T;
    c->K = K;
    c->d = 0.5;
    c->y = calloc((size_t)(T * K), sizeof(double));
    for (int t = 0; t < T; t++) {
        double truth = sin(0.05 * t) * 3 + 0.01 * t;
        for (int k = 0; k < K; k++) {
            double noise = 0.1 * (k + 1) * (2 * wb_test_rand(&seed) - 1);
            if (k == 0 && t % 7 == 3) noise += 5.0;
            c->y[t * K + k] = truth + noise;
        }
    }
}
static inline void chain_free(chain_t *c) { free(c->y); }

typedef enum { CH_DENSE, CH_BANDED, CH_BANDED_FD, CH_MFREE, CH_MFREE_FD } ch_form;
static inline wb_energy chain_energy(chain_t *c, ch_form f) {
    wb_energy e;
    memset(&e, 0, sizeof e);
    e.n = c->T;
    e.p = c->K + 1;
    e.user = c;
    e.value_grad = ch_vg;
    e.mixed_vjp = ch_mixed_vjp;
    switch (f) {
    case CH_DENSE: e.hess = ch_dense; break;
    case CH_BANDED: e.kd = 2; e.hess_band = ch_band; break;
    case CH_BANDED_FD: e.kd = 2; break;
    case CH_MFREE: e.hvp = ch_hvp; e.hess_diag = ch_diag; break;
    case CH_MFREE_FD: break;
    }
    return e;
}

#endif
