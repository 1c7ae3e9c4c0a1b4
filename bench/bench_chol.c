/* bench_chol: the dense Cholesky solve of src/linalg.c against LAPACK's.
 *
 * For each n and number of right-hand sides k: the factor L of an SPD
 * matrix (dpotrf), then L L^T X = B solved by LAPACKE_dpotrs (two dtrsm) and
 * by wbi_chol_solve (dtrsv for k = 1; recursive blocked triangular solves,
 * dgemm off the diagonal, for k > 1), interleaved, best of the repetitions
 * (the least disturbed one on a shared machine). Also dgemm and dpotrf at
 * each n, the machine's reference rates. GFLOP/s: 2 n^3 (dgemm), n^3/3
 * (dpotrf), 2 n^2 k (the solve). Run with OPENBLAS_NUM_THREADS=1; set
 * OPENBLAS_CORETYPE (e.g. SkylakeX, Haswell) to try other kernels of a
 * DYNAMIC_ARCH OpenBLAS. Not part of bench/run; see docs/PERFORMANCE.md.
 */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wb_internal.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: bench_chol [--n N,N,...] [--nrhs K,K,...] [--reps R]\n"
            "\n"
            "Dense Cholesky solve L L^T X = B: LAPACKE_dpotrs against the\n"
            "library's wbi_chol_solve, with dgemm and dpotrf as the machine's\n"
            "reference rates (GFLOP/s, best of R interleaved repetitions).\n"
            "\n"
            "  --n LIST     orders n (default 300,1000,2000)\n"
            "  --nrhs LIST  right-hand-side counts (default 1,3,17,300,2000)\n"
            "  --reps R     repetitions (default 9)\n"
            "  --help       this text\n"
            "Run with OPENBLAS_NUM_THREADS=1.\n");
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double unif(uint64_t *s) { /* splitmix64, [0, 1) */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* "a,b,c" -> out[max]; the count, or -1 on a bad list */
static int parse_list(const char *s, int *out, int max) {
    int k = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 100000 || k == max) return -1;
        out[k++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return k;
}

int main(int argc, char **argv) {
    int ns[16] = {300, 1000, 2000}, nn_count = 3;
    int ks[16] = {1, 3, 17, 300, 2000}, nk = 5, reps = 9;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--n") && i + 1 < argc) {
            if ((nn_count = parse_list(argv[++i], ns, 16)) < 1) goto bad;
        } else if (!strcmp(argv[i], "--nrhs") && i + 1 < argc) {
            if ((nk = parse_list(argv[++i], ks, 16)) < 1) goto bad;
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            reps = atoi(argv[++i]);
            if (reps < 1 || reps > 1000) goto bad;
        } else {
            goto bad;
        }
    }
    printf("%6s %6s %8s %8s %10s %10s %7s\n", "n", "nrhs", "dgemm", "dpotrf",
           "dpotrs", "ours", "ours/dpotrs");
    for (int a = 0; a < nn_count; a++) {
        int n = ns[a];
        size_t nn = (size_t)n * n;
        double *X = malloc(sizeof(double) * nn), *A = malloc(sizeof(double) * nn);
        double *F = malloc(sizeof(double) * nn), *C = malloc(sizeof(double) * nn);
        if (!X || !A || !F || !C) {
            fprintf(stderr, "bench_chol: out of memory at n = %d\n", n);
            return 1;
        }
        uint64_t seed = 7;
        for (size_t k = 0; k < nn; k++) X[k] = unif(&seed) - 0.5;
        /* A = X X^T + n I: SPD */
        cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, n, n, 1.0, X, n,
                    0.0, A, n);
        for (int j = 0; j < n; j++) A[(size_t)j * n + j] += n;
        double tg = INFINITY, tp = INFINITY;
        for (int r = 0; r < reps; r++) {
            double t0 = now();
            cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0,
                        X, n, A, n, 0.0, C, n);
            tg = fmin(tg, now() - t0);
            memcpy(F, A, sizeof(double) * nn);
            t0 = now();
            int info = (int)LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', n, F, n);
            tp = fmin(tp, now() - t0);
            if (info != 0) {
                fprintf(stderr, "bench_chol: dpotrf info %d\n", info);
                return 1;
            }
        }
        double gemm_gf = 2.0 * n * (double)n * n / tg / 1e9;
        double potrf_gf = (double)n * n * n / 3.0 / tp / 1e9;
        for (int b = 0; b < nk; b++) {
            int k = ks[b];
            size_t nb = (size_t)n * k;
            double *B0 = malloc(sizeof(double) * nb), *B = malloc(sizeof(double) * nb);
            double *R = malloc(sizeof(double) * nb);
            if (!B0 || !B || !R) {
                fprintf(stderr, "bench_chol: out of memory\n");
                return 1;
            }
            for (size_t i = 0; i < nb; i++) B0[i] = unif(&seed) - 0.5;
            double ts = INFINITY, tw = INFINITY;
            for (int r = 0; r < reps; r++) {
                memcpy(R, B0, sizeof(double) * nb);
                double t0 = now();
                int info = (int)LAPACKE_dpotrs(LAPACK_COL_MAJOR, 'L', n, k, F, n, R, n);
                ts = fmin(ts, now() - t0);
                memcpy(B, B0, sizeof(double) * nb);
                t0 = now();
                info |= wbi_chol_solve(n, F, k, B);
                tw = fmin(tw, now() - t0);
                if (info != 0) {
                    fprintf(stderr, "bench_chol: solve info %d\n", info);
                    return 1;
                }
            }
            /* the two answers agree (a benchmark of a wrong solve is void) */
            double d = 0, m = 0;
            for (size_t i = 0; i < nb; i++) {
                d = fmax(d, fabs(B[i] - R[i]));
                m = fmax(m, fabs(R[i]));
            }
            if (!(d <= 1e-12 * m)) {
                fprintf(stderr, "bench_chol: n = %d, nrhs = %d: solutions differ "
                        "by %.3g (max %.3g)\n", n, k, d, m);
                return 1;
            }
            double fl = 2.0 * n * (double)n * k / 1e9;
            printf("%6d %6d %8.1f %8.1f %10.1f %10.1f %7.2f\n", n, k, gemm_gf,
                   potrf_gf, fl / ts, fl / tw, ts / tw);
            fflush(stdout);
            free(B0), free(B), free(R);
        }
        free(X), free(A), free(F), free(C);
    }
    return 0;
bad:
    usage(stderr);
    return 2;
}
