/* bench_data: generates the P1 data once (seeded splitmix64, see
 * bench_problems.h), finds the reference minimizer x* and E* with an
 * independent damped Newton method (OpenBLAS dsyrk + LAPACKE dposv, not
 * libwiberg) to ||grad||_inf <= 1e-12, and writes <dir>/p1_n<n>.bin for every
 * benchmark program (C, C++ and Python read the same bytes). At n = 1000 also
 * the reference dL/dw for p = 50 (dense: LAPACK dposv at x*) in
 * <dir>/p1_n1000_adjref_p50.bin. P3 (smoothed-TV denoising, 256 x 256): the
 * image and its reference minimizer by a banded Newton method (LAPACK dpbtrf,
 * |g|_inf <= 1e-11) in <dir>/p3.bin, after checking P3's gradient, Hessian
 * products, band and sparse (CSC) lower triangle against each other and
 * against differences.
 *
 *   bench_data [--data DIR] [--sizes 10,100,1000,2000] [--no-p3]
 */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <lapacke.h>
#include <sys/stat.h>

#include "bench_problems.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: bench_data [--data DIR] [--sizes N1,N2,...] [--no-p3]\n"
            "\n"
            "Writes the benchmark problem P1 (robust pseudo-Huber fusion,\n"
            "A 2n x n, 10%% outliers) for each size to DIR/p1_n<n>.bin with\n"
            "its reference minimizer (independent damped Newton, LAPACK\n"
            "dposv, ||g||_inf <= 1e-12) and E* (at n = 1000 also the dense\n"
            "reference dL/dw, p = 50), and P3 (TV denoising, 256 x 256) with\n"
            "its banded-Newton reference minimizer to DIR/p3.bin.\n"
            "\n"
            "  --data DIR     output folder (default bench-data; created)\n"
            "  --sizes LIST   comma-separated n (default 10,100,1000,2000)\n"
            "  --no-p3        skip P3\n"
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

/* The dense reference of dL/dw for L = 1/2 |x* - x_true|^2, w = the first p
   observation weights, at the reference x*:
     H v = x* - x_true (LAPACK dposv),  dL/dw_i = -(r_i / q_i) (A v)_i
   (B = d/dw grad = A' diag(r/q) on the first p columns). Writes
   <dir>/p1_n<n>_adjref_p<p>.bin: int32 p, double g[p]. */
static int write_adjref(const bp_p1 *P, int p, const char *dir) {
    int m = P->m, n = P->n;
    double d2 = P->delta * P->delta;
    double *r = malloc(sizeof(double) * (size_t)m), *C = malloc(sizeof(double) * (size_t)m * n);
    double *H = malloc(sizeof(double) * (size_t)n * n), *v = malloc(sizeof(double) * (size_t)n);
    double *av = malloc(sizeof(double) * (size_t)m), *g = malloc(sizeof(double) * (size_t)p);
    if (!r || !C || !H || !v || !av || !g) return -1;
    p1_eval(P, P->xstar, r, NULL, H, C);
    for (int j = 0; j < n; j++) v[j] = P->xstar[j] - P->xtrue[j];
    int info = LAPACKE_dposv(LAPACK_COL_MAJOR, 'L', n, 1, H, n, v, n);
    if (info != 0) {
        fprintf(stderr, "bench_data: adjoint reference: dposv info %d\n", info);
        return -1;
    }
    cblas_dgemv(CblasColMajor, CblasNoTrans, m, n, 1.0, P->A, m, v, 1, 0.0, av, 1);
    for (int i = 0; i < p; i++) g[i] = -r[i] / sqrt(1 + r[i] * r[i] / d2) * av[i];
    char path[1024];
    snprintf(path, sizeof path, "%s/p1_n%d_adjref_p%d.bin", dir, n, p);
    FILE *f = fopen(path, "wb");
    int32_t pp = p;
    int ok = f && fwrite(&pp, sizeof pp, 1, f) == 1 &&
             fwrite(g, sizeof(double), (size_t)p, f) == (size_t)p;
    if (f && fclose(f) != 0) ok = 0;
    free(r), free(C), free(H), free(v), free(av), free(g);
    return ok ? 0 : -1;
}

/* P3's callbacks checked against each other and against differences at
   x = y + a smooth bump (a non-trivial point): the gradient by central
   differences on 20 pixels, H v from bp_p3_hvp against the band (dsbmv)
   and the CSC lower triangle (both triangles), the diagonal against both. */
static int p3_check(const bp_p3 *P) {
    int n = P->n, kd = P->nc;
    double *x = malloc(sizeof(double) * (size_t)n), *g = malloc(sizeof(double) * (size_t)n);
    double *v = malloc(sizeof(double) * (size_t)n), *h1 = malloc(sizeof(double) * (size_t)n);
    double *h2 = malloc(sizeof(double) * (size_t)n), *h3 = malloc(sizeof(double) * (size_t)n);
    double *d = malloc(sizeof(double) * (size_t)n);
    double *AB = malloc(sizeof(double) * (size_t)(kd + 1) * n);
    int nnz = bp_p3_csc_nnz(P);
    int *cp = malloc(sizeof(int) * (size_t)(n + 1)), *ri = malloc(sizeof(int) * (size_t)nnz);
    double *val = malloc(sizeof(double) * (size_t)nnz);
    if (!x || !g || !v || !h1 || !h2 || !h3 || !d || !AB || !cp || !ri || !val) return -1;
    uint64_t s = 99;
    for (int j = 0; j < n; j++) {
        x[j] = P->y[j] + 0.05 * sin(0.01 * j);
        v[j] = bp_unif(&s) - 0.5;
    }
    bp_p3_value_grad(P, x, g);
    double gerr = 0;
    for (int k = 0; k < 20; k++) {
        int j = (int)(bp_unif(&s) * n);
        double xj = x[j], h = 1e-5;
        x[j] = xj + h;
        double Ep = bp_p3_value_grad(P, x, NULL);
        x[j] = xj - h;
        double Em = bp_p3_value_grad(P, x, NULL);
        x[j] = xj;
        gerr = fmax(gerr, fabs((Ep - Em) / (2 * h) - g[j]) / fmax(1, fabs(g[j])));
    }
    bp_p3_hvp(P, x, v, h1);
    bp_p3_hess_band(P, x, AB);
    cblas_dsbmv(CblasColMajor, CblasLower, n, kd, 1.0, AB, kd + 1, v, 1, 0.0, h2, 1);
    bp_p3_csc_pattern(P, cp, ri);
    bp_p3_csc_values(P, x, cp, ri, val);
    memset(h3, 0, sizeof(double) * (size_t)n);
    for (int j = 0; j < n; j++)
        for (int k = cp[j]; k < cp[j + 1]; k++) {
            int i = ri[k];
            h3[i] += val[k] * v[j];
            if (i != j) h3[j] += val[k] * v[i];
        }
    bp_p3_hess_diag(P, x, d);
    double e12 = 0, e13 = 0, ed = 0, sc = 0;
    for (int j = 0; j < n; j++) {
        sc = fmax(sc, fabs(h1[j]));
        e12 = fmax(e12, fabs(h1[j] - h2[j]));
        e13 = fmax(e13, fabs(h1[j] - h3[j]));
        ed = fmax(ed, fabs(d[j] - AB[(size_t)j * (kd + 1)]) + fabs(d[j] - val[cp[j]]));
    }
    fprintf(stderr, "bench_data: P3 callbacks: gradient vs differences %.1e, H v: band %.1e, "
            "CSC %.1e (of %.1e), diagonal %.1e; CSC lower triangle nnz = %d\n", gerr,
            e12, e13, sc, ed, nnz);
    free(x), free(g), free(v), free(h1), free(h2), free(h3), free(d), free(AB), free(cp),
        free(ri), free(val);
    return gerr <= 1e-6 && e12 <= 1e-12 * sc && e13 <= 1e-12 * sc && ed <= 1e-12 ? 0 : -1;
}

/* P3's reference minimizer: Newton with the exact banded Hessian (LAPACK
   dpbtrf/dpbtrs, kd = nc; H = I + sum D'MD is positive definite) and
   Armijo backtracking on E, from x0 = y, to |g|_inf <= 1e-11. */
static int p3_reference(bp_p3 *P) {
    int n = P->n, kd = P->nc;
    double *x = malloc(sizeof(double) * (size_t)n), *xt = malloc(sizeof(double) * (size_t)n);
    double *g = malloc(sizeof(double) * (size_t)n), *sd = malloc(sizeof(double) * (size_t)n);
    double *gt = malloc(sizeof(double) * (size_t)n);
    double *AB = malloc(sizeof(double) * (size_t)(kd + 1) * n);
    if (!x || !xt || !g || !sd || !gt || !AB) return -1;
    memcpy(x, P->y, sizeof(double) * (size_t)n);
    P->E0 = bp_p3_value_grad(P, x, NULL);
    double E = P->E0, gn = 0;
    int it;
    for (it = 0; it < 200; it++) {
        E = bp_p3_value_grad(P, x, g);
        gn = 0;
        for (int j = 0; j < n; j++) gn = fmax(gn, fabs(g[j]));
        if (gn <= 1e-11) break;
        bp_p3_hess_band(P, x, AB);
        int info = LAPACKE_dpbtrf(LAPACK_COL_MAJOR, 'L', n, kd, AB, kd + 1);
        for (int j = 0; j < n; j++) sd[j] = -g[j];
        if (info == 0) info = LAPACKE_dpbtrs(LAPACK_COL_MAJOR, 'L', n, kd, 1, AB, kd + 1, sd, n);
        if (info != 0) {
            fprintf(stderr, "bench_data: P3 reference: dpbtrf/dpbtrs info %d\n", info);
            return -1;
        }
        double slope = cblas_ddot(n, g, 1, sd, 1);
        if (-slope <= 1e3 * 2.2e-16 * fabs(E)) {
            /* at E's rounding level: the full step if it shrinks |g| */
            for (int j = 0; j < n; j++) xt[j] = x[j] + sd[j];
            bp_p3_value_grad(P, xt, gt);
            double gtn = 0;
            for (int j = 0; j < n; j++) gtn = fmax(gtn, fabs(gt[j]));
            if (!(gtn < gn)) break;
            memcpy(x, xt, sizeof(double) * (size_t)n);
            continue;
        }
        double t = 1.0, Et = E;
        for (int ls = 0; ls < 60; ls++, t *= 0.5) {
            for (int j = 0; j < n; j++) xt[j] = x[j] + t * sd[j];
            Et = bp_p3_value_grad(P, xt, NULL);
            if (Et <= E + 1e-4 * t * slope) break;
        }
        if (!(Et <= E)) break;
        memcpy(x, xt, sizeof(double) * (size_t)n);
    }
    E = bp_p3_value_grad(P, x, g);
    gn = 0;
    for (int j = 0; j < n; j++) gn = fmax(gn, fabs(g[j]));
    memcpy(P->xstar, x, sizeof(double) * (size_t)n);
    P->Estar = E;
    fprintf(stderr, "bench_data: P3 %dx%d: reference banded Newton %d iterations, E0 = %.12g, "
            "E* = %.15g, |g|_inf = %.2e\n", P->nr, P->nc, it, P->E0, E, gn);
    free(x), free(xt), free(g), free(sd), free(gt), free(AB);
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
        else if (strcmp(argv[i], "--no-p3") == 0) continue;
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
        if (n == 1000 && write_adjref(&P, 50, dir) != 0) {
            fprintf(stderr, "bench_data: cannot write the adjoint reference\n");
            return 1;
        }
        bp_p1_free(&P);
        p = *end == ',' ? end + 1 : end;
    }
    if (!bp_has_flag(argc, argv, "--no-p3")) {
        bp_p3 P3;
        char path[1024];
        snprintf(path, sizeof path, "%s/p3.bin", dir);
        if (bp_p3_generate(&P3, BP_P3_SIDE, BP_P3_SIDE) != 0 || p3_check(&P3) != 0 ||
            p3_reference(&P3) != 0 || bp_p3_write(&P3, path) != 0) {
            fprintf(stderr, "bench_data: P3: check, reference solve or writing %s failed\n",
                    path);
            return 1;
        }
        bp_p3_free(&P3);
    }
    return 0;
}
