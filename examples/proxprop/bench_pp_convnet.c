/* bench_pp_convnet: the time of one training step of the paper's ConvNet
 * (forward, backward, the proximal steps of the three convolutions, Adam)
 * for BackProp and for ProxProp with k CG iterations, measured interleaved
 * on the same batches in one process: each repetition takes one step of
 * every configuration in turn on a fresh random batch, timed both by the
 * wall clock and by the process's CPU clock (which a shared machine's load
 * does not inflate, with one BLAS thread); medians over the repetitions,
 * and the load average before and after. An epoch is a number of such
 * steps (evaluation excluded), so the ratio of the medians is the ratio of
 * epoch times.
 *
 *   bench_pp_convnet [--image 3,32,32] [--batch 100] [--reps 7]
 *                    [--tau 1] [--cg 3,10]
 *
 * Run it with OPENBLAS_NUM_THREADS=1 for one core. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pp_bench.h"
#include "pp_cg.h"
#include "pp_convnet.h"
#include "pp_rng.h"

#define MAXCONF 9

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void usage(FILE *f) {
    fprintf(f, "Usage: bench_pp_convnet [--image C,H,W] [--batch M] [--reps R] "
               "[--tau T] [--cg K1,K2,...]\n"
               "Times one training step of the ProxProp paper's ConvNet with "
               "BackProp and with ProxProp (K CG iterations on each "
               "convolution), interleaved, and prints the medians of the wall "
               "and CPU seconds and their ratios to BackProp's.\n");
}

/* "a,b,c" -> up to max positive integers; the count, or -1 */
static int int_list(const char *s, int *out, int max) {
    int n = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 100000 || n == max || (*end && *end != ',')) return -1;
        out[n++] = (int)v;
        s = *end ? end + 1 : end;
    }
    return n;
}

int main(int argc, char **argv) {
    int img[3] = {3, 32, 32}, m = 100, reps = 7, ks[MAXCONF] = {3}, nk = 1;
    double tau = 1.0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (v && !strcmp(a, "--image")) bad = int_list(v, img, 3) != 3, i++;
        else if (v && !strcmp(a, "--cg")) bad = (nk = int_list(v, ks, MAXCONF - 1)) < 1, i++;
        else if (v && !strcmp(a, "--batch")) bad = (m = atoi(v)) < 1, i++;
        else if (v && !strcmp(a, "--reps")) bad = (reps = atoi(v)) < 1, i++;
        else if (v && !strcmp(a, "--tau")) bad = !((tau = atof(v)) > 0 && isfinite(tau)), i++;
        else bad = 1;
        if (bad) {
            fprintf(stderr, "bench_pp_convnet: bad option or value at '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    pp_convnet N;
    char err[256];
    const int classes = 10;
    if (pp_convnet_alloc(&N, img[0], img[1], img[2], classes, m, 1, err, sizeof err) != 0) {
        fprintf(stderr, "bench_pp_convnet: %s\n", err);
        return 1;
    }
    const int nconf = nk + 1; /* 0: BackProp; c >= 1: cg ks[c - 1] */
    pp_cg *cg[MAXCONF][PP_CONVNET_CONVS] = {{NULL}};
    for (int c = 1; c < nconf; c++)
        for (int l = 0; l < PP_CONVNET_CONVS; l++)
            if (!(cg[c][l] = pp_convnet_cg_create(&N, l, tau, ks[c - 1], err, sizeof err))) {
                fprintf(stderr, "bench_pp_convnet: %s\n", err);
                return 1;
            }
    double *wall = malloc(sizeof(double) * nconf * reps),
           *cpu = malloc(sizeof(double) * nconf * reps);
    int *y = malloc(sizeof(int) * m);
    if (!wall || !cpu || !y) {
        fprintf(stderr, "bench_pp_convnet: out of memory\n");
        return 1;
    }
    printf("ConvNet %dx%dx%d, batch %d, tau %g, %d repetitions\n", img[0], img[1],
           img[2], m, tau, reps);
    pp_loadavg("before");
    uint64_t s = 7;
    const size_t nx = (size_t)img[0] * img[1] * img[2] * m;
    for (int r = 0; r < reps; r++) {
        for (size_t q = 0; q < nx; q++) N.X[q] = rng_uniform(&s);
        for (int j = 0; j < m; j++) y[j] = rng_int(&s, classes);
        for (int c = 0; c < nconf; c++) {
            /* every configuration steps from the same weights */
            pp_convnet_init(&N, 1);
            double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
            pp_convnet_forward(&N, m, y, NULL);
            pp_convnet_backward(&N, m, y, c == 0);
            if (c > 0 && pp_convnet_prox_steps(&N, m, cg[c], err, sizeof err) != 0) {
                fprintf(stderr, "bench_pp_convnet: %s\n", err);
                return 1;
            }
            pp_convnet_adam(&N, 1e-3);
            cpu[c * reps + r] = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
            wall[c * reps + r] = clock_s(CLOCK_MONOTONIC) - t0;
        }
    }
    pp_loadavg("after ");
    double mw[MAXCONF], mc[MAXCONF];
    for (int c = 0; c < nconf; c++) {
        qsort(wall + c * reps, (size_t)reps, sizeof(double), pp_cmp_double);
        qsort(cpu + c * reps, (size_t)reps, sizeof(double), pp_cmp_double);
        mw[c] = wall[c * reps + reps / 2];
        mc[c] = cpu[c * reps + reps / 2];
        char name[32] = "backprop";
        if (c) snprintf(name, sizeof name, "proxprop cg%d", ks[c - 1]);
        printf("%-16s median wall %.3f s (min %.3f, max %.3f), CPU %.3f s (min %.3f, max %.3f)",
               name, mw[c], wall[c * reps], wall[c * reps + reps - 1], mc[c], cpu[c * reps],
               cpu[c * reps + reps - 1]);
        if (c) printf("   %.2fx / %.2fx backprop", mw[c] / mw[0], mc[c] / mc[0]);
        printf("\n");
    }
    for (int c = 1; c < nconf; c++)
        for (int l = 0; l < PP_CONVNET_CONVS; l++) pp_cg_destroy(cg[c][l]);
    free(wall);
    free(cpu);
    free(y);
    pp_convnet_free(&N);
    return 0;
}
