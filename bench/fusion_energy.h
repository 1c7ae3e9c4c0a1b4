/* The tracker-fusion energy at scale, for benchmarks:
 *   E(x; w) = sum_t sum_k m_tk w_k rho(|x_t - y_tk|) + a sum_t |x_{t+1} - 2 x_t + x_{t-1}|^2
 *   rho(r) = d^2 (sqrt(1 + r^2/d^2) - 1)   (pseudo-Huber of the 2-D residual)
 * x = (x_0, y_0, x_1, y_1, ...), n = 2T; w = (w_1..w_K, a), p = K + 1.
 * H is banded with half-bandwidth 5 (second differences couple frames
 * t-1..t+1, two coordinates each). Given: value_grad, hess_band, hvp,
 * hess_diag, mixed_vjp. */
#ifndef BENCH_FUSION_ENERGY_H
#define BENCH_FUSION_ENERGY_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wiberg.h"

typedef struct {
    int T, K;
    double d;
    double *y;          /* [T*K*2] */
    unsigned char *m;   /* [T*K] 1 = observed */
} fusion_t;

static inline double fu_rand(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return (double)((z ^ (z >> 31)) >> 11) * (1.0 / 9007199254740992.0);
}

/* Seeded synthetic tracks: a smooth path, K trackers with noise 1..K px,
   10% of observations missing, 5% gross outliers. */
static inline int fusion_init(fusion_t *F, int T, int K, uint64_t seed) {
    F->T = T;
    F->K = K;
    F->d = 3.0;
    F->y = malloc(sizeof(double) * (size_t)T * (size_t)K * 2);
    F->m = malloc((size_t)T * (size_t)K);
    if (!F->y || !F->m) return -1;
    double px = 0, py = 0, vx = 1, vy = 0.5;
    for (int t = 0; t < T; t++) {
        double turn = 0.02 * sin(0.01 * t);
        double c = cos(turn), s = sin(turn), nvx = c * vx - s * vy;
        vy = s * vx + c * vy;
        vx = nvx;
        px += vx;
        py += vy;
        for (int k = 0; k < K; k++) {
            size_t i = (size_t)t * K + k;
            double nx = (k + 1) * (2 * fu_rand(&seed) - 1);
            double ny = (k + 1) * (2 * fu_rand(&seed) - 1);
            if (fu_rand(&seed) < 0.05) nx += 60 * (fu_rand(&seed) - 0.5), ny += 60 * (fu_rand(&seed) - 0.5);
            F->y[2 * i] = px + nx;
            F->y[2 * i + 1] = py + ny;
            F->m[i] = fu_rand(&seed) >= 0.1;
        }
    }
    return 0;
}
static inline void fusion_free(fusion_t *F) {
    free(F->y);
    free(F->m);
}

/* per observation: r = x_t - y_tk, s = sqrt(1 + |r|^2/d^2);
   grad = w r / s;  Hessian block = w (I / s - r r' / (d^2 s^3)) */
static inline int fu_vg(void *u, const double *x, const double *w, double *e,
                        double *g) {
    fusion_t *F = u;
    int T = F->T, K = F->K;
    double d2 = F->d * F->d, a = w[K], E = 0.0;
    if (g) memset(g, 0, sizeof(double) * 2 * (size_t)T);
    for (int t = 0; t < T; t++)
        for (int k = 0; k < K; k++) {
            size_t i = (size_t)t * K + k;
            if (!F->m[i]) continue;
            double rx = x[2 * t] - F->y[2 * i], ry = x[2 * t + 1] - F->y[2 * i + 1];
            double s = sqrt(1 + (rx * rx + ry * ry) / d2);
            E += w[k] * d2 * (s - 1);
            if (g) {
                g[2 * t] += w[k] * rx / s;
                g[2 * t + 1] += w[k] * ry / s;
            }
        }
    for (int t = 1; t + 1 < T; t++)
        for (int c = 0; c < 2; c++) {
            double q = x[2 * (t + 1) + c] - 2 * x[2 * t + c] + x[2 * (t - 1) + c];
            E += a * q * q;
            if (g) {
                g[2 * (t + 1) + c] += 2 * a * q;
                g[2 * t + c] -= 4 * a * q;
                g[2 * (t - 1) + c] += 2 * a * q;
            }
        }
    *e = E;
    return 0;
}

/* the 2x2 data block of frame t: (hxx, hxy, hyy) */
static inline void fu_block(const fusion_t *F, const double *x, const double *w,
                            int t, double *hxx, double *hxy, double *hyy) {
    double d2 = F->d * F->d;
    *hxx = *hxy = *hyy = 0.0;
    for (int k = 0; k < F->K; k++) {
        size_t i = (size_t)t * F->K + k;
        if (!F->m[i]) continue;
        double rx = x[2 * t] - F->y[2 * i], ry = x[2 * t + 1] - F->y[2 * i + 1];
        double s = sqrt(1 + (rx * rx + ry * ry) / d2), s3 = s * s * s;
        *hxx += w[k] * (1 / s - rx * rx / (d2 * s3));
        *hxy += w[k] * (-rx * ry / (d2 * s3));
        *hyy += w[k] * (1 / s - ry * ry / (d2 * s3));
    }
}

#define FU_KD 5
static inline int fu_band(void *u, const double *x, const double *w,
                          double *AB) {
    fusion_t *F = u;
    int T = F->T, ld = FU_KD + 1;
    double a = w[F->K];
    static const double sv[3] = {1, -2, 1};
    memset(AB, 0, sizeof(double) * (size_t)ld * 2 * (size_t)T);
    for (int t = 0; t < T; t++) {
        double hxx, hxy, hyy;
        fu_block(F, x, w, t, &hxx, &hxy, &hyy);
        AB[(size_t)(2 * t) * ld] += hxx;
        AB[1 + (size_t)(2 * t) * ld] += hxy;
        AB[(size_t)(2 * t + 1) * ld] += hyy;
    }
    for (int t = 1; t + 1 < T; t++)
        for (int c = 0; c < 2; c++)
            for (int i = 0; i < 3; i++)
                for (int j = 0; j <= i; j++) {
                    int row = 2 * (t - 1 + i) + c, col = 2 * (t - 1 + j) + c;
                    AB[(size_t)(row - col) + (size_t)col * ld] += 2 * a * sv[i] * sv[j];
                }
    return 0;
}
static inline int fu_hvp(void *u, const double *x, const double *w,
                         const double *v, double *o) {
    fusion_t *F = u;
    int T = F->T;
    double a = w[F->K];
    for (int t = 0; t < T; t++) {
        double hxx, hxy, hyy;
        fu_block(F, x, w, t, &hxx, &hxy, &hyy);
        o[2 * t] = hxx * v[2 * t] + hxy * v[2 * t + 1];
        o[2 * t + 1] = hxy * v[2 * t] + hyy * v[2 * t + 1];
    }
    for (int t = 1; t + 1 < T; t++)
        for (int c = 0; c < 2; c++) {
            double q = v[2 * (t + 1) + c] - 2 * v[2 * t + c] + v[2 * (t - 1) + c];
            o[2 * (t + 1) + c] += 2 * a * q;
            o[2 * t + c] -= 4 * a * q;
            o[2 * (t - 1) + c] += 2 * a * q;
        }
    return 0;
}
static inline int fu_diag(void *u, const double *x, const double *w,
                          double *dg) {
    fusion_t *F = u;
    int T = F->T;
    double a = w[F->K];
    for (int t = 0; t < T; t++) {
        double hxx, hxy, hyy;
        fu_block(F, x, w, t, &hxx, &hxy, &hyy);
        double m = (t >= 2) + (t + 2 < T) + 4.0 * (t >= 1 && t + 1 < T);
        dg[2 * t] = hxx + 2 * a * m;
        dg[2 * t + 1] = hyy + 2 * a * m;
    }
    return 0;
}
static inline int fu_mixed_vjp(void *u, const double *x, const double *w,
                               const double *v, double *out) {
    fusion_t *F = u;
    int T = F->T, K = F->K;
    double d2 = F->d * F->d;
    (void)w;
    for (int k = 0; k <= K; k++) out[k] = 0.0;
    for (int t = 0; t < T; t++)
        for (int k = 0; k < K; k++) {
            size_t i = (size_t)t * K + k;
            if (!F->m[i]) continue;
            double rx = x[2 * t] - F->y[2 * i], ry = x[2 * t + 1] - F->y[2 * i + 1];
            double s = sqrt(1 + (rx * rx + ry * ry) / d2);
            out[k] += (v[2 * t] * rx + v[2 * t + 1] * ry) / s;
        }
    for (int t = 1; t + 1 < T; t++)
        for (int c = 0; c < 2; c++) {
            double q = x[2 * (t + 1) + c] - 2 * x[2 * t + c] + x[2 * (t - 1) + c];
            double vq = v[2 * (t + 1) + c] - 2 * v[2 * t + c] + v[2 * (t - 1) + c];
            out[K] += 2 * q * vq;
        }
    return 0;
}

#endif
