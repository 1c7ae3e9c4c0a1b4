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
static inline double bp_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
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

static inline int bp_p1_read(bp_p1 *P, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s (run bench_data first)\n", path);
        return -1;
    }
    char magic[4];
    int32_t hdr[2];
    double sc[4];
    if (fread(magic, 1, 4, f) != 4 || memcmp(magic, "WBP1", 4) != 0 ||
        fread(hdr, sizeof hdr, 1, f) != 1 || fread(sc, sizeof sc, 1, f) != 1 ||
        hdr[0] < 1 || hdr[1] != 2 * hdr[0] || bp_p1_alloc(P, hdr[0]) != 0) {
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

/* Repetitions: an environment override (BENCH_REPS) for quick runs. */
static inline int bp_reps(int dflt) {
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
