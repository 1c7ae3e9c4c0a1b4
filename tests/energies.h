/* Test energies with closed-form derivatives, and a small dense Cholesky
 * solver written independently of the library (for reference answers). */
#ifndef WB_TEST_ENERGIES_H
#define WB_TEST_ENERGIES_H

#include "wb_test.h"

/* ---- quadratic: E = 1/2 x'Ax - x'(Cw + d); x* = A^-1 (Cw + d), d(x*)/dw = A^-1 C
 *      (written "dx/dw" in what follows). H = A, B = -C. */
typedef struct {
    int n, p;
    double *A; /* [n*n] SPD */
    double *C; /* [n*p] */
    double *d; /* [n] */
} quad_t;

static inline int quad_vg(void *u, const double *x, const double *w, double *e,
                   double *g) {
    quad_t *q = u;
    int n = q->n, p = q->p;
    double E = 0.0;
    for (int i = 0; i < n; i++) {
        double ax = 0.0, cw = q->d[i];
        for (int j = 0; j < n; j++) ax += q->A[j * n + i] * x[j];
        for (int j = 0; j < p; j++) cw += q->C[j * n + i] * w[j];
        E += 0.5 * x[i] * ax - x[i] * cw;
        if (g) g[i] = ax - cw;
    }
    *e = E;
    return 0;
}
static inline int quad_hess(void *u, const double *x, const double *w, double *H) {
    (void)x; (void)w;
    quad_t *q = u;
    memcpy(H, q->A, sizeof(double) * (size_t)(q->n * q->n));
    return 0;
}
static inline int quad_mixed(void *u, const double *x, const double *w, double *B) {
    (void)x; (void)w;
    quad_t *q = u;
    for (int k = 0; k < q->n * q->p; k++) B[k] = -q->C[k];
    return 0;
}
static inline int quad_mixed_vjp(void *u, const double *x, const double *w,
                          const double *v, double *out) {
    (void)x; (void)w;
    quad_t *q = u;
    for (int j = 0; j < q->p; j++) {
        double s = 0.0;
        for (int i = 0; i < q->n; i++) s -= q->C[j * q->n + i] * v[i];
        out[j] = s;
    }
    return 0;
}

/* A = M M' + n I (SPD), C, d uniform in [-1, 1). */
static inline void quad_init(quad_t *q, int n, int p, uint64_t seed) {
    q->n = n; q->p = p;
    q->A = calloc((size_t)(n * n), sizeof(double));
    q->C = calloc((size_t)(n * (p ? p : 1)), sizeof(double));
    q->d = calloc((size_t)n, sizeof(double));
    double *M = calloc((size_t)(n * n), sizeof(double));
    for (int k = 0; k < n * n; k++) M[k] = 2 * wb_test_rand(&seed) - 1;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = (i == j) ? n : 0.0;
            for (int k = 0; k < n; k++) s += M[k * n + i] * M[k * n + j];
            q->A[j * n + i] = s;
        }
    for (int k = 0; k < n * p; k++) q->C[k] = 2 * wb_test_rand(&seed) - 1;
    for (int i = 0; i < n; i++) q->d[i] = 2 * wb_test_rand(&seed) - 1;
    free(M);
}
static inline void quad_free(quad_t *q) { free(q->A); free(q->C); free(q->d); }

/* ---- reference dense SPD solve (plain Cholesky, no LAPACK) -------------
 * Solves (A + shift I) X = Bm in place, A n x n, Bm n x nrhs, column-major.
 * Returns 0, or -1 if not positive definite. */
static inline int ref_spd_solve(int n, const double *A, double shift, int nrhs,
                         double *Bm) {
    double *L = calloc((size_t)(n * n), sizeof(double));
    for (int j = 0; j < n; j++) {
        double s = A[j * n + j] + shift;
        for (int k = 0; k < j; k++) s -= L[k * n + j] * L[k * n + j];
        if (!(s > 0)) { free(L); return -1; }
        L[j * n + j] = sqrt(s);
        for (int i = j + 1; i < n; i++) {
            double t = A[j * n + i];
            for (int k = 0; k < j; k++) t -= L[k * n + i] * L[k * n + j];
            L[j * n + i] = t / L[j * n + j];
        }
    }
    for (int c = 0; c < nrhs; c++) {
        double *b = Bm + c * n;
        for (int i = 0; i < n; i++) { /* L y = b */
            double t = b[i];
            for (int k = 0; k < i; k++) t -= L[k * n + i] * b[k];
            b[i] = t / L[i * n + i];
        }
        for (int i = n - 1; i >= 0; i--) { /* L' x = y */
            double t = b[i];
            for (int k = i + 1; k < n; k++) t -= L[i * n + k] * b[k];
            b[i] = t / L[i * n + i];
        }
    }
    free(L);
    return 0;
}

/* ---- robust pseudo-Huber fusion (non-quadratic, non-convex in general):
 *   E(x; w) = sum_i w_i delta^2 (sqrt(1 + r_i^2/delta^2) - 1) + mu/2 ||x||^2,
 *   r = Ax - b, A m x n; w = the m per-observation weights (p = m).
 *   rho(r) = delta^2 (sqrt(1 + r^2/delta^2) - 1), rho' = r / s, rho'' = 1/s^3,
 *   s = sqrt(1 + r^2/delta^2).
 *   grad = A' (w .* rho'(r)) + mu x;  H = A' diag(w .* rho'') A + mu I;
 *   B[:, i] = d grad / d w_i = A[i, :]' rho'(r_i). */
typedef struct {
    int n, m;
    double delta, mu;
    double *A; /* [m*n] */
    double *b; /* [m] */
} phub_t;

static inline int phub_vg(void *u, const double *x, const double *w, double *e,
                   double *g) {
    phub_t *P = u;
    int n = P->n, m = P->m;
    double E = 0.0, d2 = P->delta * P->delta;
    if (g) for (int j = 0; j < n; j++) g[j] = P->mu * x[j];
    for (int i = 0; i < m; i++) {
        double r = -P->b[i];
        for (int j = 0; j < n; j++) r += P->A[j * m + i] * x[j];
        double s = sqrt(1 + r * r / d2);
        E += w[i] * d2 * (s - 1);
        if (g)
            for (int j = 0; j < n; j++) g[j] += P->A[j * m + i] * w[i] * r / s;
    }
    for (int j = 0; j < n; j++) E += 0.5 * P->mu * x[j] * x[j];
    *e = E;
    return 0;
}
static inline int phub_hess(void *u, const double *x, const double *w, double *H) {
    phub_t *P = u;
    int n = P->n, m = P->m;
    double d2 = P->delta * P->delta;
    for (int k = 0; k < n * n; k++) H[k] = 0.0;
    for (int j = 0; j < n; j++) H[j * n + j] = P->mu;
    for (int i = 0; i < m; i++) {
        double r = -P->b[i];
        for (int j = 0; j < n; j++) r += P->A[j * m + i] * x[j];
        double s = sqrt(1 + r * r / d2), c = w[i] / (s * s * s);
        for (int j = 0; j < n; j++)
            for (int k = 0; k < n; k++)
                H[k * n + j] += c * P->A[j * m + i] * P->A[k * m + i];
    }
    return 0;
}
static inline int phub_mixed(void *u, const double *x, const double *w, double *B) {
    (void)w;
    phub_t *P = u;
    int n = P->n, m = P->m;
    double d2 = P->delta * P->delta;
    for (int i = 0; i < m; i++) {
        double r = -P->b[i];
        for (int j = 0; j < n; j++) r += P->A[j * m + i] * x[j];
        double s = sqrt(1 + r * r / d2);
        for (int j = 0; j < n; j++) B[i * n + j] = P->A[j * m + i] * r / s;
    }
    return 0;
}
static inline int phub_mixed_vjp(void *u, const double *x, const double *w,
                          const double *v, double *out) {
    (void)w;
    phub_t *P = u;
    int n = P->n, m = P->m;
    double d2 = P->delta * P->delta;
    for (int i = 0; i < m; i++) {
        double r = -P->b[i], av = 0.0;
        for (int j = 0; j < n; j++) {
            r += P->A[j * m + i] * x[j];
            av += P->A[j * m + i] * v[j];
        }
        out[i] = av * r / sqrt(1 + r * r / d2);
    }
    return 0;
}
/* m observations of an n-vector: b = A x_true + noise, 20% outliers. */
static inline void phub_init(phub_t *P, int n, int m, uint64_t seed) {
    P->n = n; P->m = m; P->delta = 0.5; P->mu = 1e-3;
    P->A = calloc((size_t)(n * m), sizeof(double));
    P->b = calloc((size_t)m, sizeof(double));
    for (int k = 0; k < n * m; k++) P->A[k] = 2 * wb_test_rand(&seed) - 1;
    for (int i = 0; i < m; i++) {
        double t = 0.0;
        for (int j = 0; j < n; j++) t += P->A[j * m + i] * (1.0 + j);
        double noise = 0.1 * (2 * wb_test_rand(&seed) - 1);
        if (i % 5 == 3) noise += 8.0 * (2 * wb_test_rand(&seed) - 1);
        P->b[i] = t + noise;
    }
}
static inline void phub_free(phub_t *P) { free(P->A); free(P->b); }

static inline wb_energy phub_energy(phub_t *P) {
    wb_energy e = {P->n, P->m, P, phub_vg, phub_hess, phub_mixed_vjp, phub_mixed};
    return e;
}
/* The usual training loss of the tests: *l = 1/2 ||x - y||^2 over n
   entries, dl = x - y when dl != NULL. */
static inline int sq_loss(int n, const double *x, const double *y, double *l,
                          double *dl) {
    double s = 0.0;
    for (int r = 0; r < n; r++) {
        double d = x[r] - y[r];
        s += 0.5 * d * d;
        if (dl) dl[r] = d;
    }
    *l = s;
    return 0;
}

static inline wb_energy quad_energy(quad_t *q) {
    wb_energy e = {q->n, q->p, q, quad_vg, quad_hess, quad_mixed_vjp, quad_mixed};
    return e;
}

#endif
