/* bench_data: generates the P1 data once (seeded splitmix64, see
 * bench_problems.h), finds the reference minimizer x* and E* with an
 * independent damped Newton method (OpenBLAS dsyrk + LAPACKE dposv, not
 * libwiberg) to ||grad||_inf <= 1e-12, and writes <dir>/p1_n<n>.bin for every
 * benchmark program (C, C++ and Python read the same bytes).
 *
 *   bench_data [--data DIR] [--sizes 10,100,1000,2000]
 */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <lapacke.h>
#include <sys/stat.h>

#include "bench_problems.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: bench_data [--data DIR] [--sizes N1,N2,...]\n"
            "\n"
            "Writes the benchmark problem P1 (robust pseudo-Huber fusion,\n"
            "A 2n x n, 10%% outliers) for each size to DIR/p1_n<n>.bin with\n"
            "its reference minimizer (independent damped Newton, LAPACK\n"
            "dposv, ||g||_inf <= 1e-12) and E*.\n"
            "\n"
            "  --data DIR     output folder (default bench-data; created)\n"
            "  --sizes LIST   comma-separated n (default 10,100,1000,2000)\n"
            "  --help         this text\n");
}

/* E, g (may be NULL) and, for H != NULL, the exact Hessian (lower+upper). */
static double p1_eval(const bp_p1 *P, const double *x, double *r, double *g,
                      double *H, double *C) {
    int m = P->m, n = P->n;
    double d2 = P->delta * P->delta;
    memcpy(r, P->b, sizeof(double) * (size_t)m);
    cblas_dgemv(CblasColMajor, CblasNoTrans, m, n, 1.0, P->A, m, x, 1, -1.0, r, 1);
    double E = bp_p1_energy_r(P, r, P->w, x);
    if (g) {
        double *t = C; /* scratch m */
        for (int i = 0; i < m; i++) t[i] = P->w[i] * r[i] / sqrt(1 + r[i] * r[i] / d2);
        memcpy(g, x, sizeof(double) * (size_t)n);
        cblas_dgemv(CblasColMajor, CblasTrans, m, n, 1.0, P->A, m, t, 1, P->mu, g, 1);
    }
    if (H) {
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                double q = sqrt(1 + r[i] * r[i] / d2);
                C[(size_t)j * m + i] = P->A[(size_t)j * m + i] * sqrt(P->w[i] / (q * q * q));
            }
        cblas_dsyrk(CblasColMajor, CblasLower, CblasTrans, n, m, 1.0, C, m, 0.0, H, n);
        for (int j = 0; j < n; j++) {
            H[(size_t)j * n + j] += P->mu;
            for (int i = j + 1; i < n; i++) H[(size_t)i * n + j] = H[(size_t)j * n + i];
        }
    }
    return E;
}

static int reference_newton(bp_p1 *P) {
    int m = P->m, n = P->n;
    double *x = calloc((size_t)n, sizeof(double)), *xt = malloc(sizeof(double) * (size_t)n);
    double *g = malloc(sizeof(double) * (size_t)n), *s = malloc(sizeof(double) * (size_t)n);
    double *r = malloc(sizeof(double) * (size_t)m);
    double *H = malloc(sizeof(double) * (size_t)n * n);
    double *C = malloc(sizeof(double) * (size_t)m * n);
    if (!x || !xt || !g || !s || !r || !H || !C) return -1;
    P->E0 = p1_eval(P, x, r, NULL, NULL, C);
    double E = P->E0, gn = 0;
    int it;
    for (it = 0; it < 200; it++) {
        E = p1_eval(P, x, r, g, H, C);
        gn = 0;
        for (int j = 0; j < n; j++) gn = fmax(gn, fabs(g[j]));
        if (gn <= 1e-12) break;
        for (int j = 0; j < n; j++) s[j] = -g[j];
        if (LAPACKE_dposv(LAPACK_COL_MAJOR, 'L', n, 1, H, n, s, n) != 0) return -1;
        double pred = -cblas_ddot(n, g, 1, s, 1);
        if (pred <= 1e3 * 2.2e-16 * fabs(E)) {
            /* at the rounding level of E: take the full Newton step when it
               shrinks the gradient, stop when it does not */
            double *gt = malloc(sizeof(double) * (size_t)n);
            if (!gt) return -1;
            for (int j = 0; j < n; j++) xt[j] = x[j] + s[j];
            p1_eval(P, xt, r, gt, NULL, C);
            double gtn = 0;
            for (int j = 0; j < n; j++) gtn = fmax(gtn, fabs(gt[j]));
            free(gt);
            if (!(gtn < gn)) break;
            memcpy(x, xt, sizeof(double) * (size_t)n);
            continue;
        }
        /* backtracking on E (convex: the Newton step is a descent step) */
        double t = 1.0, Et = E;
        for (int ls = 0; ls < 60; ls++, t *= 0.5) {
            for (int j = 0; j < n; j++) xt[j] = x[j] + t * s[j];
            Et = p1_eval(P, xt, r, NULL, NULL, C);
            if (Et <= E + 1e-4 * t * cblas_ddot(n, g, 1, s, 1) || Et <= E) break;
        }
        if (!(Et <= E)) break; /* no decrease at the rounding level */
        memcpy(x, xt, sizeof(double) * (size_t)n);
    }
    E = p1_eval(P, x, r, g, NULL, C);
    gn = 0;
    for (int j = 0; j < n; j++) gn = fmax(gn, fabs(g[j]));
    memcpy(P->xstar, x, sizeof(double) * (size_t)n);
    P->Estar = E;
    fprintf(stderr, "bench_data: n = %d: reference Newton %d iterations, E0 = %.12g, "
            "E* = %.15g, |g|_inf = %.2e\n", n, it, P->E0, E, gn);
    free(x), free(xt), free(g), free(s), free(r), free(H), free(C);
    return gn <= 1e-10 ? 0 : -1;
}

int main(int argc, char **argv) {
    if (bp_has_flag(argc, argv, "--help") || bp_has_flag(argc, argv, "-h")) {
        usage(stdout);
        return 0;
    }
    const char *dir = bp_data_dir(argc, argv);
    const char *sizes = "10,100,1000,2000";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--sizes") == 0 && i + 1 < argc) sizes = argv[++i];
        else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) i++;
        else {
            fprintf(stderr, "bench_data: unknown argument %s\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    mkdir(dir, 0755);
    const char *p = sizes;
    while (*p) {
        char *end;
        long n = strtol(p, &end, 10);
        if (end == p || n < 1 || n > 100000) {
            fprintf(stderr, "bench_data: bad --sizes %s\n", sizes);
            return 2;
        }
        bp_p1 P;
        char path[1024];
        if (bp_p1_generate(&P, (int)n) != 0 || reference_newton(&P) != 0) {
            fprintf(stderr, "bench_data: n = %ld: generation or reference solve failed\n", n);
            return 1;
        }
        bp_p1_path(path, sizeof path, dir, (int)n);
        if (bp_p1_write(&P, path) != 0) {
            fprintf(stderr, "bench_data: cannot write %s\n", path);
            return 1;
        }
        bp_p1_free(&P);
        p = *end == ',' ? end + 1 : end;
    }
    return 0;
}
