/* Shared by every benchmark program (C11 and C++17): the problems, their data,
 * timing and the result lines. No BLAS here (each program brings its own
 * BLAS binding: OpenBLAS cblas, GSL's cblas interface, Eigen), so the header
 * compiles everywhere.
 *
 * P1, robust (pseudo-Huber) fusion, dense Hessian:
 *   E(x; w) = sum_i w_i d^2 (sqrt(1 + r_i^2/d^2) - 1) + mu/2 ||x||^2,
 *   r = A x - b,  A is m x n, m = 2n (entries U(-1,1)/sqrt(n)),
 *   b = A x_true + U(-0.01, 0.01), exactly m/10 outliers get +-3,
 *   w_i in U(0.5, 1.5), d = 0.1, mu = 1e-3, x0 = 0.
 *   With q_i = sqrt(1 + r_i^2/d^2):
 *     grad = A' (w r / q) + mu x,  H = A' diag(w / q^3) A + mu I,
 *     B = d/dw grad = A' diag(r / q)  (column i: row i of A times r_i/q_i).
 *   Least-squares form (Ceres, GSL): f_i = r_i sqrt(2 w_i / (q_i + 1))
 *   (1/2 f_i^2 = w_i d^2 (q_i - 1)), df_i/dr_i = sqrt(w_i (q_i + 1) / 2) / q_i,
 *   and f_{m+j} = sqrt(mu) x_j.
 *   The data (and the reference minimizer x*, E*) are generated once by
 *   bench_data (seeded splitmix64) and written to a binary file that every
 *   program reads, so every solver sees the same numbers.
 *
 * P2, More-Garbow-Hillstrom #25, variably dimensioned, n = 1000:
 *   f_i = x_i - 1 (i < n), f_n = S, f_{n+1} = S^2,  S = sum_j (j+1)(x_j - 1),
 *   E = 1/2 ||f||^2, x0_j = 1 - (j+1)/n, x* = 1, E* = 0.
 *   grad = (x - 1) + (S + 2 S^3) v,  H = I + (1 + 6 S^2) v v',  v_j = j + 1.
 *
 * The target of an inner solve (More-Wild): E - E* <= 1e-10 (E0 - E*); for
 * P2 (E* = 0, E0 ~ 1e21, where that would be met by a poor point) the
 * absolute E <= 1e-20 of the research protocol instead.
 */
#ifndef BENCH_PROBLEMS_H
#define BENCH_PROBLEMS_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BP_TAU 1e-10
#define BP_P2_TARGET 1e-20

/* ---------------------------------------------------------------- random */
static inline uint64_t bp_splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
/* uniform in [0, 1) */
static inline double bp_unif(uint64_t *s) {
    return (double)(bp_splitmix64(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---------------------------------------------------------------- timing */
/* CLOCK_MONOTONIC (wall time); with BENCH_CLOCK=cpu the process's CPU time
   (CLOCK_PROCESS_CPUTIME_ID: every program runs one thread, so on a shared,
   oversubscribed machine this leaves out the time spent waiting for a core) */
static inline double bp_now(void) {
    static int cpu = -1;
    if (cpu < 0) {
        const char *s = getenv("BENCH_CLOCK");
        cpu = s && strcmp(s, "cpu") == 0;
    }
    struct timespec ts;
    clock_gettime(cpu ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static inline int bp_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
/* median of t[k] (sorts t) */
static inline double bp_median(double *t, int k) {
    qsort(t, (size_t)k, sizeof(double), bp_cmp_double);
    return k % 2 ? t[k / 2] : 0.5 * (t[k / 2 - 1] + t[k / 2]);
}

/* ------------------------------------------------------------- P1 data */
typedef struct {
    int n, m;
    double delta, mu;
    double E0, Estar; /* E(x0 = 0), E(x*) (reference Newton, |g| <= 1e-12) */
    double *A;        /* [m*n] column-major */
    double *Ar;       /* [m*n] row-major copy (row i at Ar + i*n) */
    double *b, *w;    /* [m] */
    double *xtrue;    /* [n] the generating x: x_ref of the loss */
    double *xstar;    /* [n] reference minimizer */
} bp_p1;

static inline void bp_p1_free(bp_p1 *P) {
    free(P->A);
    free(P->Ar);
    free(P->b);
    free(P->w);
    free(P->xtrue);
    free(P->xstar);
    memset(P, 0, sizeof *P);
}

static inline int bp_p1_alloc(bp_p1 *P, int n) {
    memset(P, 0, sizeof *P);
    P->n = n;
    P->m = 2 * n;
    size_t mn = (size_t)P->m * (size_t)n;
    P->A = (double *)malloc(mn * sizeof(double));
    P->Ar = (double *)malloc(mn * sizeof(double));
    P->b = (double *)malloc((size_t)P->m * sizeof(double));
    P->w = (double *)malloc((size_t)P->m * sizeof(double));
    P->xtrue = (double *)malloc((size_t)n * sizeof(double));
    P->xstar = (double *)malloc((size_t)n * sizeof(double));
    if (!P->A || !P->Ar || !P->b || !P->w || !P->xtrue || !P->xstar) {
        bp_p1_free(P);
        return -1;
    }
    return 0;
}

static inline void bp_p1_fill_rowmajor(bp_p1 *P) {
    int m = P->m, n = P->n;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++)
            P->Ar[(size_t)i * n + j] = P->A[(size_t)j * m + i];
}

/* The data of P1 at size n (deterministic in n); x* and E* are left to the
   caller (bench_data's reference Newton). */
static inline int bp_p1_generate(bp_p1 *P, int n) {
    if (bp_p1_alloc(P, n) != 0) return -1;
    int m = P->m;
    uint64_t s = 0x5EED0000ULL + (uint64_t)n;
    P->delta = 0.1;
    P->mu = 1e-3;
    double sc = 1.0 / sqrt((double)n);
    for (int j = 0; j < n; j++) P->xtrue[j] = 2 * bp_unif(&s) - 1;
    for (size_t k = 0; k < (size_t)m * n; k++) P->A[k] = (2 * bp_unif(&s) - 1) * sc;
    for (int i = 0; i < m; i++) {
        double r = 0;
        for (int j = 0; j < n; j++) r += P->A[(size_t)j * m + i] * P->xtrue[j];
        P->b[i] = r + 0.01 * (2 * bp_unif(&s) - 1);
    }
    /* exactly m/10 outliers, chosen by a partial Fisher-Yates shuffle */
    int *idx = (int *)malloc((size_t)m * sizeof(int));
    if (!idx) return -1;
    for (int i = 0; i < m; i++) idx[i] = i;
    for (int k = 0; k < m / 10; k++) {
        int j = k + (int)(bp_unif(&s) * (m - k));
        int t = idx[k];
        idx[k] = idx[j];
        idx[j] = t;
        P->b[idx[k]] += bp_unif(&s) < 0.5 ? -3.0 : 3.0;
    }
    free(idx);
    for (int i = 0; i < m; i++) P->w[i] = 0.5 + bp_unif(&s);
    for (int j = 0; j < n; j++) P->xstar[j] = 0;
    bp_p1_fill_rowmajor(P);
    return 0;
}

/* E at x from the residuals r[m] (x for the ridge term); weights wt[m]. */
static inline double bp_p1_energy_r(const bp_p1 *P, const double *r,
                                    const double *wt, const double *x) {
    double d2 = P->delta * P->delta, E = 0, xx = 0;
    for (int i = 0; i < P->m; i++)
        E += wt[i] * d2 * (sqrt(1 + r[i] * r[i] / d2) - 1);
    for (int j = 0; j < P->n; j++) xx += x[j] * x[j];
    return E + 0.5 * P->mu * xx;
}

/* Plain-loop residuals (setup / checks only, not in timed code). */
static inline void bp_p1_residual_slow(const bp_p1 *P, const double *x, double *r) {
    for (int i = 0; i < P->m; i++) {
        const double *a = P->Ar + (size_t)i * P->n;
        double s = -P->b[i];
        for (int j = 0; j < P->n; j++) s += a[j] * x[j];
        r[i] = s;
    }
}

/* The binary file every program reads:
   "WBP1" int32 n, m; double delta, mu, E0, Estar; A[m*n] (column-major),
   b[m], w[m], xtrue[n], xstar[n]; all little-endian as on this machine. */
static inline int bp_p1_write(const bp_p1 *P, const char *path) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int32_t hdr[2] = {P->n, P->m};
    double sc[4] = {P->delta, P->mu, P->E0, P->Estar};
    size_t mn = (size_t)P->m * P->n;
    int ok = fwrite("WBP1", 1, 4, f) == 4 && fwrite(hdr, sizeof hdr, 1, f) == 1 &&
             fwrite(sc, sizeof sc, 1, f) == 1 &&
             fwrite(P->A, sizeof(double), mn, f) == mn &&
             fwrite(P->b, sizeof(double), (size_t)P->m, f) == (size_t)P->m &&
             fwrite(P->w, sizeof(double), (size_t)P->m, f) == (size_t)P->m &&
             fwrite(P->xtrue, sizeof(double), (size_t)P->n, f) == (size_t)P->n &&
             fwrite(P->xstar, sizeof(double), (size_t)P->n, f) == (size_t)P->n;
    if (fclose(f) != 0) ok = 0;
    return ok ? 0 : -1;
}

/* Opens a data file and reads its head: the 4-byte magic, int32 hdr[2],
   double sc[4]. NULL (after a message) when it is missing or not one. */
static inline FILE *bp_open_data(const char *path, const char *magic, int32_t hdr[2],
                                 double sc[4]) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s (run bench_data first)\n", path);
        return NULL;
    }
    char m[4];
    if (fread(m, 1, 4, f) != 4 || memcmp(m, magic, 4) != 0 ||
        fread(hdr, sizeof(int32_t), 2, f) != 2 || fread(sc, sizeof(double), 4, f) != 4) {
        fprintf(stderr, "%s: not a %.4s data file\n", path, magic);
        fclose(f);
        return NULL;
    }
    return f;
}

static inline int bp_p1_read(bp_p1 *P, const char *path) {
    int32_t hdr[2];
    double sc[4];
    FILE *f = bp_open_data(path, "WBP1", hdr, sc);
    if (!f) return -1;
    if (hdr[0] < 1 || hdr[1] != 2 * hdr[0] || bp_p1_alloc(P, hdr[0]) != 0) {
        fprintf(stderr, "%s: not a P1 data file\n", path);
        fclose(f);
        return -1;
    }
    P->delta = sc[0];
    P->mu = sc[1];
    P->E0 = sc[2];
    P->Estar = sc[3];
    size_t mn = (size_t)P->m * P->n;
    int ok = fread(P->A, sizeof(double), mn, f) == mn &&
             fread(P->b, sizeof(double), (size_t)P->m, f) == (size_t)P->m &&
             fread(P->w, sizeof(double), (size_t)P->m, f) == (size_t)P->m &&
             fread(P->xtrue, sizeof(double), (size_t)P->n, f) == (size_t)P->n &&
             fread(P->xstar, sizeof(double), (size_t)P->n, f) == (size_t)P->n;
    fclose(f);
    if (!ok) {
        fprintf(stderr, "%s: truncated\n", path);
        bp_p1_free(P);
        return -1;
    }
    bp_p1_fill_rowmajor(P);
    return 0;
}

static inline void bp_p1_path(char *buf, size_t len, const char *dir, int n) {
    snprintf(buf, len, "%s/p1_n%d.bin", dir, n);
}

static inline double bp_p1_target(const bp_p1 *P) {
    return P->Estar + BP_TAU * (P->E0 - P->Estar);
}

/* ------------------------------------------------------------- P2 vardim */
static inline void bp_p2_x0(int n, double *x) {
    for (int j = 0; j < n; j++) x[j] = 1.0 - (double)(j + 1) / n;
}
static inline double bp_p2_S(int n, const double *x) {
    double S = 0;
    for (int j = 0; j < n; j++) S += (j + 1) * (x[j] - 1);
    return S;
}
/* E and (g != NULL) grad */
static inline double bp_p2_value_grad(int n, const double *x, double *g) {
    double S = bp_p2_S(n, x), E = 0;
    for (int j = 0; j < n; j++) E += (x[j] - 1) * (x[j] - 1);
    E = 0.5 * (E + S * S + S * S * S * S);
    if (g) {
        double c = S + 2 * S * S * S;
        for (int j = 0; j < n; j++) g[j] = (x[j] - 1) + c * (j + 1);
    }
    return E;
}

/* The dense reference dL/dw of P1 (bench_data's write_adjref): g[p]. */
static inline int bp_adjref_read(const char *dir, int n, int p, double *g) {
    char path[1024];
    snprintf(path, sizeof path, "%s/p1_n%d_adjref_p%d.bin", dir, n, p);
    FILE *f = fopen(path, "rb");
    int32_t pp = 0;
    int ok = f && fread(&pp, sizeof pp, 1, f) == 1 && pp == p &&
             fread(g, sizeof(double), (size_t)p, f) == (size_t)p;
    if (f) fclose(f);
    if (!ok) fprintf(stderr, "cannot read %s (run bench_data)\n", path);
    return ok ? 0 : -1;
}

/* |a - b|_2 / |b|_2 */
static inline double bp_rel_err(int p, const double *a, const double *b) {
    double num = 0, den = 0;
    for (int i = 0; i < p; i++) num += (a[i] - b[i]) * (a[i] - b[i]), den += b[i] * b[i];
    return sqrt(num) / fmax(sqrt(den), 1e-300);
}

/* The solve + dL/dw comparison: P1 n = 1000, w = the first 50 weights */
#define BP_ADJ_N 1000
#define BP_ADJ_P 50

/* ------------------------------------------------ P3 smoothed-TV denoising
 * On an nr x nc grid (256 x 256), pixel p = i nc + j (row-major):
 *   E(x) = sum_p (x_p - y_p)^2 / 2 + wt sum_p phi_p,
 *   phi_p = sqrt(eps^2 + g1^2 + g2^2),  g1 = x_{p+1} - x_p (j < nc-1, else
 *   0), g2 = x_{p+nc} - x_p (i < nr-1, else 0): forward differences with
 *   the Neumann boundary. y = a piecewise-constant image (a rectangle and
 *   two disks) plus U(-0.1, 0.1) noise; wt = 0.1, eps = 0.05; x0 = y.
 * Per pixel term, with c = (-1 [g1 active], -1 [g2 active]) on x_p, (1, 0)
 * on x_{p+1} and (0, 1) on x_{p+nc}: grad += D' a, a = wt g / phi, and the
 * Hessian block D' M D, M = wt (I / phi - g g' / phi^3) (positive
 * semidefinite), so H = I + sum_p D_p' M_p D_p: positive definite, band
 * kd = nc, at most 4 entries a column in its lower triangle (rows j, j+1,
 * j+nc-1, j+nc: the last but one from pixel j-1's term).
 * The target: E - E* <= 1e-10 (E0 - E*), E* from bench_data's banded
 * Newton (LAPACK dpbtrf, |g|_inf <= 1e-11).
 */
typedef struct {
    int nr, nc, n;
    double wt, eps;
    double E0, Estar;
    double *y;     /* [n] noisy image */
    double *xstar; /* [n] reference minimizer (bench_data) */
} bp_p3;

#define BP_P3_SIDE 256

static inline void bp_p3_free(bp_p3 *P) {
    free(P->y);
    free(P->xstar);
    memset(P, 0, sizeof *P);
}

/* the data (deterministic); xstar = y and E* = NaN until bench_data's
   reference fills them */
static inline int bp_p3_generate(bp_p3 *P, int nr, int nc) {
    memset(P, 0, sizeof *P);
    P->nr = nr, P->nc = nc, P->n = nr * nc;
    P->wt = 0.1, P->eps = 0.05;
    P->y = (double *)malloc(sizeof(double) * (size_t)P->n);
    P->xstar = (double *)malloc(sizeof(double) * (size_t)P->n);
    if (!P->y || !P->xstar) {
        bp_p3_free(P);
        return -1;
    }
    uint64_t s = 0x5EED7000ULL;
    for (int i = 0; i < nr; i++)
        for (int j = 0; j < nc; j++) {
            double u = (double)i / nr, v = (double)j / nc, c = 0.2;
            if (u > 0.15 && u < 0.45 && v > 0.2 && v < 0.8) c = 0.8;
            if ((u - 0.68) * (u - 0.68) + (v - 0.4) * (v - 0.4) < 0.04) c = 0.5;
            if ((u - 0.7) * (u - 0.7) + (v - 0.78) * (v - 0.78) < 0.015) c = 1.0;
            P->y[i * nc + j] = c + 0.2 * (bp_unif(&s) - 0.5);
        }
    memcpy(P->xstar, P->y, sizeof(double) * (size_t)P->n);
    P->Estar = NAN;
    return 0;
}

/* g1, g2 and phi of pixel p's term at x; *a1, *a2: whether they exist */
static inline double bp_p3_term(const bp_p3 *P, const double *x, int p, double *g1,
                                double *g2, int *a1, int *a2) {
    *a1 = (p % P->nc) != P->nc - 1;
    *a2 = p + P->nc < P->n;
    *g1 = *a1 ? x[p + 1] - x[p] : 0.0;
    *g2 = *a2 ? x[p + P->nc] - x[p] : 0.0;
    return sqrt(P->eps * P->eps + *g1 * *g1 + *g2 * *g2);
}

/* E and (g != NULL) grad */
static inline double bp_p3_value_grad(const bp_p3 *P, const double *x, double *g) {
    double E = 0;
    for (int p = 0; p < P->n; p++) {
        double d = x[p] - P->y[p];
        E += 0.5 * d * d;
        if (g) g[p] = d;
    }
    double tv = 0;
    for (int p = 0; p < P->n; p++) {
        double g1, g2;
        int a1, a2;
        double phi = bp_p3_term(P, x, p, &g1, &g2, &a1, &a2);
        tv += phi;
        if (g) {
            double c1 = P->wt * g1 / phi, c2 = P->wt * g2 / phi;
            if (a1) g[p + 1] += c1, g[p] -= c1;
            if (a2) g[p + P->nc] += c2, g[p] -= c2;
        }
    }
    return E + P->wt * tv;
}

/* M = wt (I / phi - g g' / phi^3) of pixel p's term: m11, m12, m22 */
static inline void bp_p3_M(const bp_p3 *P, double g1, double g2, double phi,
                           double *m11, double *m12, double *m22) {
    double ip = P->wt / phi, ip3 = P->wt / (phi * phi * phi);
    *m11 = ip - g1 * g1 * ip3;
    *m12 = -g1 * g2 * ip3;
    *m22 = ip - g2 * g2 * ip3;
}

/* Hv = H v */
static inline void bp_p3_hvp(const bp_p3 *P, const double *x, const double *v,
                             double *Hv) {
    memcpy(Hv, v, sizeof(double) * (size_t)P->n);
    for (int p = 0; p < P->n; p++) {
        double g1, g2, m11, m12, m22;
        int a1, a2;
        double phi = bp_p3_term(P, x, p, &g1, &g2, &a1, &a2);
        if (!a1 && !a2) continue;
        bp_p3_M(P, g1, g2, phi, &m11, &m12, &m22);
        double d1 = a1 ? v[p + 1] - v[p] : 0, d2 = a2 ? v[p + P->nc] - v[p] : 0;
        double h1 = m11 * d1 + m12 * d2, h2 = m12 * d1 + m22 * d2;
        if (a1) Hv[p + 1] += h1, Hv[p] -= h1;
        if (a2) Hv[p + P->nc] += h2, Hv[p] -= h2;
    }
}

/* The entries of pixel p's block D' M D on (p, p+1, p+nc), in the lower
   triangle (row >= column): calls put(ctx, row, col, value) for each. */
static inline void bp_p3_block(const bp_p3 *P, const double *x, int p,
                               void (*put)(void *, int, int, double), void *ctx) {
    double g1, g2, m11, m12, m22;
    int a1, a2;
    double phi = bp_p3_term(P, x, p, &g1, &g2, &a1, &a2);
    if (!a1 && !a2) return;
    bp_p3_M(P, g1, g2, phi, &m11, &m12, &m22);
    /* c_p = (-a1, -a2), c_{p+1} = (1, 0), c_{p+nc} = (0, 1); K_ab = c_a' M c_b */
    double c1 = a1 ? -1.0 : 0.0, c2 = a2 ? -1.0 : 0.0;
    put(ctx, p, p, c1 * c1 * m11 + 2 * c1 * c2 * m12 + c2 * c2 * m22);
    if (a1) {
        put(ctx, p + 1, p, c1 * m11 + c2 * m12);
        put(ctx, p + 1, p + 1, m11);
    }
    if (a2) {
        put(ctx, p + P->nc, p, c1 * m12 + c2 * m22);
        put(ctx, p + P->nc, p + P->nc, m22);
    }
    if (a1 && a2) put(ctx, p + P->nc, p + 1, m12);
}

typedef struct {
    double *AB;
    int kd;
} bp_p3_band_ctx;
static inline void bp_p3_band_put(void *u, int i, int j, double v) {
    bp_p3_band_ctx *c = (bp_p3_band_ctx *)u;
    c->AB[(size_t)(i - j) + (size_t)j * (size_t)(c->kd + 1)] += v;
}
/* The lower band of H, LAPACK band storage with kd = nc:
   AB[(i - j) + j (kd + 1)] = H_ij, j <= i <= j + kd. */
static inline void bp_p3_hess_band(const bp_p3 *P, const double *x, double *AB) {
    bp_p3_band_ctx c = {AB, P->nc};
    memset(AB, 0, sizeof(double) * (size_t)(P->nc + 1) * (size_t)P->n);
    for (int j = 0; j < P->n; j++) AB[(size_t)j * (size_t)(P->nc + 1)] = 1.0;
    for (int p = 0; p < P->n; p++) bp_p3_block(P, x, p, bp_p3_band_put, &c);
}

static inline void bp_p3_diag_put(void *u, int i, int j, double v) {
    if (i == j) ((double *)u)[i] += v;
}
/* The diagonal of H */
static inline void bp_p3_hess_diag(const bp_p3 *P, const double *x, double *d) {
    for (int j = 0; j < P->n; j++) d[j] = 1.0;
    for (int p = 0; p < P->n; p++) bp_p3_block(P, x, p, bp_p3_diag_put, d);
}

/* The sparse lower triangle of H in CSC (compressed sparse column, rows
   sorted within a column): the pattern, fixed for all x. colptr[n+1],
   rowind[bp_p3_csc_nnz]. Column j: rows j, j+1 (pixel j has a right
   neighbour), j+nc-1 (pixel j-1 has both neighbours), j+nc. For a sparse
   (CHOLMOD) solve mode: the pattern once, bp_p3_csc_values at each x. */
static inline int bp_p3_csc_nnz(const bp_p3 *P) {
    int nnz = 0;
    for (int j = 0; j < P->n; j++) {
        nnz++;
        if (j % P->nc != P->nc - 1) nnz++;
        if (j % P->nc != 0 && j - 1 + P->nc < P->n) nnz++;
        if (j + P->nc < P->n) nnz++;
    }
    return nnz;
}
static inline void bp_p3_csc_pattern(const bp_p3 *P, int *colptr, int *rowind) {
    int k = 0;
    for (int j = 0; j < P->n; j++) {
        colptr[j] = k;
        rowind[k++] = j;
        if (j % P->nc != P->nc - 1) rowind[k++] = j + 1;
        if (j % P->nc != 0 && j - 1 + P->nc < P->n) rowind[k++] = j + P->nc - 1;
        if (j + P->nc < P->n) rowind[k++] = j + P->nc;
    }
    colptr[P->n] = k;
}
typedef struct {
    const int *colptr, *rowind;
    double *val;
} bp_p3_csc_ctx;
static inline void bp_p3_csc_put(void *u, int i, int j, double v) {
    bp_p3_csc_ctx *c = (bp_p3_csc_ctx *)u;
    for (int k = c->colptr[j]; k < c->colptr[j + 1]; k++)
        if (c->rowind[k] == i) {
            c->val[k] += v;
            return;
        }
}
/* val[nnz]: H's lower triangle at x on the pattern above */
static inline void bp_p3_csc_values(const bp_p3 *P, const double *x, const int *colptr,
                                    const int *rowind, double *val) {
    bp_p3_csc_ctx c = {colptr, rowind, val};
    memset(val, 0, sizeof(double) * (size_t)colptr[P->n]);
    for (int j = 0; j < P->n; j++) val[colptr[j]] = 1.0; /* the diagonal comes first */
    for (int p = 0; p < P->n; p++) bp_p3_block(P, x, p, bp_p3_csc_put, &c);
}

/* "WBP3" int32 nr, nc; double wt, eps, E0, Estar; y[n], xstar[n] */
static inline int bp_p3_write(const bp_p3 *P, const char *path) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int32_t hdr[2] = {P->nr, P->nc};
    double sc[4] = {P->wt, P->eps, P->E0, P->Estar};
    size_t n = (size_t)P->n;
    int ok = fwrite("WBP3", 1, 4, f) == 4 && fwrite(hdr, sizeof hdr, 1, f) == 1 &&
             fwrite(sc, sizeof sc, 1, f) == 1 && fwrite(P->y, sizeof(double), n, f) == n &&
             fwrite(P->xstar, sizeof(double), n, f) == n;
    if (fclose(f) != 0) ok = 0;
    return ok ? 0 : -1;
}

static inline int bp_p3_read(bp_p3 *P, const char *dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s/p3.bin", dir);
    int32_t hdr[2];
    double sc[4];
    FILE *f = bp_open_data(path, "WBP3", hdr, sc);
    if (!f) return -1;
    int ok = hdr[0] >= 2 && hdr[1] >= 2 && hdr[0] <= 4096 && hdr[1] <= 4096 &&
             bp_p3_generate(P, hdr[0], hdr[1]) == 0;
    if (ok) {
        size_t n = (size_t)P->n;
        P->wt = sc[0], P->eps = sc[1], P->E0 = sc[2], P->Estar = sc[3];
        ok = fread(P->y, sizeof(double), n, f) == n &&
             fread(P->xstar, sizeof(double), n, f) == n;
        if (!ok) bp_p3_free(P);
    }
    fclose(f);
    if (!ok) fprintf(stderr, "%s: not a P3 data file\n", path);
    return ok ? 0 : -1;
}

static inline double bp_p3_target(const bp_p3 *P) {
    return P->Estar + BP_TAU * (P->E0 - P->Estar);
}

/* --------------------------------------------- P4 extended Rosenbrock
 * n = 1000 (even), pairs (a, b) = (x_{2k}, x_{2k+1}):
 *   E = sum_k 100 (b - a^2)^2 + (1 - a)^2,  x0 = (-1.2, 1, -1.2, 1, ...),
 *   x* = 1, E* = 0, E0 = 12100 (n = 1000).
 *   dE/da = -400 a (b - a^2) - 2 (1 - a),  dE/db = 200 (b - a^2);
 *   H: 2x2 blocks [1200 a^2 - 400 b + 2, -400 a; -400 a, 200]: band kd = 1.
 *   Least-squares form (Ceres): f_{2k} = sqrt(2) 10 (b - a^2),
 *   f_{2k+1} = sqrt(2) (1 - a), 1/2 |f|^2 = E.
 * The target, as for P2 (E* = 0): E <= 1e-20.
 */
#define BP_P4_N 1000
#define BP_P4_TARGET 1e-20
static inline void bp_p4_x0(int n, double *x) {
    for (int j = 0; j < n; j++) x[j] = j % 2 ? 1.0 : -1.2;
}
static inline double bp_p4_value_grad(int n, const double *x, double *g) {
    double E = 0;
    for (int k = 0; k + 1 < n; k += 2) {
        double a = x[k], b = x[k + 1], t = b - a * a, u = 1 - a;
        E += 100 * t * t + u * u;
        if (g) {
            g[k] = -400 * a * t - 2 * u;
            g[k + 1] = 200 * t;
        }
    }
    return E;
}
/* the lower band, kd = 1: AB[2 j] = H_jj, AB[2 j + 1] = H_{j+1,j} */
static inline void bp_p4_hess_band(int n, const double *x, double *AB) {
    for (int k = 0; k + 1 < n; k += 2) {
        double a = x[k], b = x[k + 1];
        AB[2 * k] = 1200 * a * a - 400 * b + 2;
        AB[2 * k + 1] = -400 * a;
        AB[2 * (k + 1)] = 200;
        AB[2 * (k + 1) + 1] = 0;
    }
}
static inline void bp_p4_hvp(int n, const double *x, const double *v, double *Hv) {
    for (int k = 0; k + 1 < n; k += 2) {
        double a = x[k], b = x[k + 1];
        double haa = 1200 * a * a - 400 * b + 2, hab = -400 * a;
        Hv[k] = haa * v[k] + hab * v[k + 1];
        Hv[k + 1] = hab * v[k] + 200 * v[k + 1];
    }
}

/* ------------------------------------------------------------ results */
/* One machine-readable line per measurement on stdout, gathered by bench/run:
   RESULT {"group": ..., "case": ..., "solver": ..., "time_s": ..., ...}.
   Extra fields are given pre-formatted as ', "key": value' text. */
static inline void bp_result(const char *group, const char *cas, const char *solver,
                             double time_s, int reps, int ok, const char *extra) {
    printf("RESULT {\"group\": \"%s\", \"case\": \"%s\", \"solver\": \"%s\", "
           "\"time_s\": %.9g, \"reps\": %d, \"ok\": %s%s}\n",
           group, cas, solver, time_s, reps, ok ? "true" : "false",
           extra ? extra : "");
    fflush(stdout);
}

/* Repetitions. bench/run interleaves the programs: it runs every program
   once per round (BENCH_ROUND = 1..BENCH_ROUNDS), so a round of each
   program does its share ceil(dflt / rounds) of the repetitions and
   report.py takes the median over the rounds. BENCH_REPS caps the
   repetitions of a round (quick runs). */
static inline int bp_reps(int dflt) {
    int reps = dflt;
    const char *rs = getenv("BENCH_ROUNDS");
    if (rs && *rs) {
        int k = atoi(rs);
        if (k > 1) reps = (reps + k - 1) / k;
    }
    const char *s = getenv("BENCH_REPS");
    if (s && *s) {
        int r = atoi(s);
        if (r >= 1 && r < reps) return r;
    }
    return reps;
}

/* 1 in the first round (or outside bench/run's rounds): the slow
   configurations (1-3 repetitions of several seconds) run there only. */
static inline int bp_first_round(void) {
    const char *s = getenv("BENCH_ROUND");
    return !s || !*s || atoi(s) <= 1;
}

/* The repetitions of a slow configuration (first round only): dflt, capped
   by BENCH_REPS. */
static inline int bp_reps_slow(int dflt) {
    const char *s = getenv("BENCH_REPS");
    if (s && *s) {
        int r = atoi(s);
        if (r >= 1 && r < dflt) return r;
    }
    return dflt;
}

/* The P1 sizes every solver runs, and the repetitions at each (medians). */
enum { BP_P1_CASES = 3 };
static const int bp_p1_sizes[BP_P1_CASES] = {10, 100, 1000};
static const int bp_p1_reps[BP_P1_CASES] = {51, 21, 5};

static inline const char *bp_data_dir(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--data") == 0) return argv[i + 1];
    return "bench-data";
}

static inline int bp_has_flag(int argc, char **argv, const char *flag) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], flag) == 0) return 1;
    return 0;
}

/* --only SUBSTRING: run only the sections whose name contains it */
static inline int bp_selected(int argc, char **argv, const char *section) {
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--only") == 0) return strstr(section, argv[i + 1]) != NULL;
    return 1;
}

/* The common command line of the solver benchmarks: --help, --data DIR,
   --only SECTION, --nist-dir DIR. Returns -1 to go on (*nist_dir set), or
   the exit status: 0 after --help, 2 for an unknown argument. */
static inline int bp_parse_args(int argc, char **argv, const char *prog,
                                void (*usage)(FILE *), const char **nist_dir) {
    if (bp_has_flag(argc, argv, "--help") || bp_has_flag(argc, argv, "-h")) {
        usage(stdout);
        return 0;
    }
    *nist_dir = "tests/data";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--nist-dir") == 0 && i + 1 < argc) *nist_dir = argv[++i];
        else if ((strcmp(argv[i], "--data") == 0 || strcmp(argv[i], "--only") == 0) &&
                 i + 1 < argc) i++;
        else {
            fprintf(stderr, "%s: unknown argument %s\n", prog, argv[i]);
            usage(stderr);
            return 2;
        }
    }
    return -1;
}

#endif
