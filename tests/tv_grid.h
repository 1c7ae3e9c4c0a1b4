/* A 2-D smoothed total-variation denoising energy on an m x m grid, for
 * the sparse-Hessian tests (header-only):
 *
 *   E(x; w) = 1/2 sum_k (x_k - y_k)^2
 *           + w0 sum_{horizontal edges (k, k+1)} phi(x_k+1 - x_k)
 *           + w1 sum_{vertical edges (k, k+m)}   phi(x_k+m - x_k),
 *   phi(d) = sqrt(d^2 + eps^2),  phi' = d / phi,  phi'' = eps^2 / phi^3.
 *
 * Pixel k = r m + c (row r, column c). H = I + sum_edges w phi''(d) (e_a -
 * e_b)(e_a - e_b)': strictly convex for w >= 0, a 5-point stencil; its
 * lower triangle in CSC has, in column k, the rows k, k+1 (c + 1 < m) and
 * k+m (r + 1 < m). B = d/dw grad_x E: column 0 = sum_h phi'(d) (e_b - e_a)
 * over horizontal edges, column 1 the same over vertical ones.
 */
#ifndef WB_TEST_TV_GRID_H
#define WB_TEST_TV_GRID_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wiberg.h"

typedef struct {
    int m, n;
    double eps;
    double *y;          /* [n] noisy image                            */
    int *colptr, *row;  /* the lower pattern, [n+1] and [nnz]          */
    int nnz;
    long long vg_calls, hess_calls;
} tv_t;

/* splitmix64 uniform [0, 1) (the same as wb_test_rand) */
static inline double tv_rand(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* y: a bright square on a dark background plus uniform noise of +-0.25.
   Returns 0, or -1 when out of memory. */
static inline int tv_init(tv_t *T, int m, double eps, uint64_t seed) {
    memset(T, 0, sizeof *T);
    T->m = m;
    T->n = m * m;
    T->eps = eps;
    T->y = malloc((size_t)T->n * sizeof(double));
    T->colptr = malloc(((size_t)T->n + 1) * sizeof(int));
    T->row = malloc(3 * (size_t)T->n * sizeof(int));
    if (!T->y || !T->colptr || !T->row) return -1;
    for (int r = 0; r < m; r++)
        for (int c = 0; c < m; c++) {
            int in = r >= m / 4 && r < 3 * m / 4 && c >= m / 4 && c < 3 * m / 4;
            T->y[r * m + c] = (in ? 1.0 : 0.0) + 0.5 * (tv_rand(&seed) - 0.5);
        }
    int q = 0;
    for (int k = 0; k < T->n; k++) {
        int r = k / m, c = k % m;
        T->colptr[k] = q;
        T->row[q++] = k;
        if (c + 1 < m) T->row[q++] = k + 1;
        if (r + 1 < m) T->row[q++] = k + m;
    }
    T->colptr[T->n] = q;
    T->nnz = q;
    return 0;
}

static inline void tv_free(tv_t *T) {
    free(T->y);
    free(T->colptr);
    free(T->row);
}

/* runs the body for every edge (a, b): a < b, dir 0 horizontal, 1 vertical */
#define TV_EDGES(T, a, b, dir, ...)                                        \
    for (int a = 0; a < (T)->n; a++)                                       \
        for (int dir = 0; dir < 2; dir++) {                                \
            int b = dir ? a + (T)->m : a + 1;                              \
            if (dir ? b >= (T)->n : (a % (T)->m) + 1 >= (T)->m) continue;  \
            __VA_ARGS__                                                    \
        }

static inline int tv_vg(void *u, const double *x, const double *w, double *e,
                        double *g) {
    tv_t *T = u;
    T->vg_calls++;
    double E = 0.0, e2 = T->eps * T->eps;
    for (int k = 0; k < T->n; k++) {
        double r = x[k] - T->y[k];
        E += 0.5 * r * r;
        if (g) g[k] = r;
    }
    TV_EDGES(T, a, b, dir, {
        double d = x[b] - x[a], ph = sqrt(d * d + e2);
        E += w[dir] * ph;
        if (g) {
            double t = w[dir] * d / ph;
            g[b] += t;
            g[a] -= t;
        }
    })
    *e = E;
    return 0;
}

/* vals[nnz] in the pattern's order */
static inline int tv_hess_sparse(void *u, const double *x, const double *w,
                                 double *vals) {
    tv_t *T = u;
    T->hess_calls++;
    int m = T->m;
    double e2 = T->eps * T->eps;
    for (int k = 0; k < T->nnz; k++) vals[k] = 0.0;
    for (int k = 0; k < T->n; k++) vals[T->colptr[k]] = 1.0;
    TV_EDGES(T, a, b, dir, {
        double d = x[b] - x[a], ph = sqrt(d * d + e2);
        double h = w[dir] * e2 / (ph * ph * ph);
        /* column a: the diagonal, then row a+1 (if any), then row a+m */
        int ca = T->colptr[a], cb = T->colptr[b];
        int off = dir == 0 ? 1 : ((a % m) + 1 < m ? 2 : 1);
        vals[ca] += h;
        vals[cb] += h;
        vals[ca + off] -= h;
    })
    return 0;
}

/* the full n x n matrix (for the dense comparison) */
static inline int tv_hess_dense(void *u, const double *x, const double *w,
                                double *H) {
    tv_t *T = u;
    T->hess_calls++;
    size_t n = (size_t)T->n;
    double e2 = T->eps * T->eps;
    memset(H, 0, n * n * sizeof(double));
    for (size_t k = 0; k < n; k++) H[k * n + k] = 1.0;
    TV_EDGES(T, a, b, dir, {
        double d = x[b] - x[a], ph = sqrt(d * d + e2);
        double h = w[dir] * e2 / (ph * ph * ph);
        H[(size_t)a * n + a] += h;
        H[(size_t)b * n + b] += h;
        H[(size_t)a * n + b] -= h;
        H[(size_t)b * n + a] -= h;
    })
    return 0;
}

/* the lower band, kd = m: AB[(i - j) + j (m + 1)] = H_ij */
static inline int tv_hess_band(void *u, const double *x, const double *w,
                               double *AB) {
    tv_t *T = u;
    T->hess_calls++;
    size_t ld = (size_t)T->m + 1;
    double e2 = T->eps * T->eps;
    memset(AB, 0, ld * (size_t)T->n * sizeof(double));
    for (int k = 0; k < T->n; k++) AB[(size_t)k * ld] = 1.0;
    TV_EDGES(T, a, b, dir, {
        double d = x[b] - x[a], ph = sqrt(d * d + e2);
        double h = w[dir] * e2 / (ph * ph * ph);
        AB[(size_t)a * ld] += h;
        AB[(size_t)b * ld] += h;
        AB[(size_t)(b - a) + (size_t)a * ld] -= h;
    })
    return 0;
}

/* out[2] = B' v */
static inline int tv_mixed_vjp(void *u, const double *x, const double *w,
                               const double *v, double *out) {
    tv_t *T = u;
    (void)w;
    double e2 = T->eps * T->eps;
    out[0] = out[1] = 0.0;
    TV_EDGES(T, a, b, dir, {
        double d = x[b] - x[a];
        out[dir] += d / sqrt(d * d + e2) * (v[b] - v[a]);
    })
    return 0;
}

/* Hv = H v (matrix-free) */
static inline int tv_hvp(void *u, const double *x, const double *w,
                         const double *v, double *Hv) {
    tv_t *T = u;
    double e2 = T->eps * T->eps;
    for (int k = 0; k < T->n; k++) Hv[k] = v[k];
    TV_EDGES(T, a, b, dir, {
        double d = x[b] - x[a], ph = sqrt(d * d + e2);
        double t = w[dir] * e2 / (ph * ph * ph) * (v[b] - v[a]);
        Hv[b] += t;
        Hv[a] -= t;
    })
    return 0;
}

/* The energy with the pattern and whichever callbacks are asked for. */
static inline wb_energy tv_energy(tv_t *T, int sparse_values) {
    wb_energy e;
    memset(&e, 0, sizeof e);
    e.n = T->n;
    e.p = 2;
    e.user = T;
    e.value_grad = tv_vg;
    e.mixed_vjp = tv_mixed_vjp;
    e.hess_nnz = T->nnz;
    e.hess_colptr = T->colptr;
    e.hess_rowidx = T->row;
    if (sparse_values) e.hess_sparse = tv_hess_sparse;
    return e;
}

#endif
