/* bench_pp_step: the time of one training step (forward, backward, the
 * proximal steps, the optimizer) of BackProp and of ProxProp, measured
 * interleaved on the same batches in one process: each repetition takes
 * one step of every configuration, in turn, on a fresh random batch, and
 * the median over repetitions is reported with the load average before
 * and after. An epoch is a number of such steps (evaluation excluded), so
 * the ratio of the medians is the ratio of epoch times.
 *
 *   bench_pp_step [--in 3072] [--hidden 4000,1000] [--classes 10]
 *                 [--batch 500] [--reps 7] [--tau 0.05] [--cg 3]
 *                 [--primal] [--exact]
 *
 * Run it with OPENBLAS_NUM_THREADS=1 for one core. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pp_bench.h"
#include "wiberg.h"

#include "pp_cg.h"
#include "pp_net.h"
#include "pp_rng.h"

static double now(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

enum { BP, CG_BATCH, CG_PRIMAL, EXACT, NCONF };
static const char *NAMES[NCONF] = {"backprop", "proxprop cg (batch form)",
                                   "proxprop cg (primal form)",
                                   "proxprop exact (wb_prox_step)"};

static void usage(void) {
    printf("Usage: bench_pp_step [--in N] [--hidden H1,H2,...] [--classes C] "
           "[--batch M] [--reps R] [--tau T] [--cg K] [--primal] [--exact]\n"
           "Times one training step of BackProp and of ProxProp (cgK in the "
           "batch form; --primal adds the primal form, --exact the exact "
           "step), interleaved, and prints the medians and their ratios.\n");
}

int main(int argc, char **argv) {
    int in = 3072, classes = 10, m = 500, reps = 7, k = 3, on[NCONF] = {1, 1, 0, 0};
    int hidden[PP_MAX_HIDDEN] = {4000, 1000}, nh = 2;
    double tau = 0.05;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help")) {
            usage();
            return 0;
        } else if (!strcmp(a, "--primal")) on[CG_PRIMAL] = 1;
        else if (!strcmp(a, "--exact")) on[EXACT] = 1;
        else if (v && !strcmp(a, "--in")) in = atoi(v), i++;
        else if (v && !strcmp(a, "--classes")) classes = atoi(v), i++;
        else if (v && !strcmp(a, "--batch")) m = atoi(v), i++;
        else if (v && !strcmp(a, "--reps")) reps = atoi(v), i++;
        else if (v && !strcmp(a, "--cg")) k = atoi(v), i++;
        else if (v && !strcmp(a, "--tau")) tau = atof(v), i++;
        else if (v && !strcmp(a, "--hidden")) {
            nh = 0;
            for (const char *s = v; *s && nh < PP_MAX_HIDDEN; nh++) {
                hidden[nh] = atoi(s);
                s += strcspn(s, ",");
                if (*s == ',') s++;
            }
            i++;
        } else {
            fprintf(stderr, "bench_pp_step: bad option '%s'\n", a);
            usage();
            return 2;
        }
    }
    int ok = in > 0 && classes > 1 && m > 0 && reps > 0 && k > 0 && tau > 0 && nh > 0;
    for (int l = 0; l < nh; l++) ok &= hidden[l] > 0;
    if (!ok) {
        fprintf(stderr, "bench_pp_step: sizes, reps, cg and tau must be positive\n");
        return 2;
    }
    int nl = nh + 1, sz[PP_MAX_LAYERS + 1];
    sz[0] = in;
    for (int l = 0; l < nh; l++) sz[l + 1] = hidden[l];
    sz[nl] = classes;
    pp_net N;
    if (pp_net_alloc(&N, nl, sz, m, 0) != 0) {
        fprintf(stderr, "bench_pp_step: out of memory\n");
        return 1;
    }
    pp_cg *cg[NCONF][PP_MAX_LAYERS] = {{NULL}};
    wb_prox *px[PP_MAX_LAYERS] = {NULL};
    size_t big = 0;
    char err[256];
    for (int l = 0; l < nh; l++) {
        size_t t = N.off[l + 1] - N.off[l];
        if (t > big) big = t;
        for (int c = CG_BATCH; c <= CG_PRIMAL; c++)
            if (on[c] && !(cg[c][l] = pp_cg_create(sz[l + 1], sz[l], m, tau, k,
                                                   c == CG_BATCH ? PP_CG_BATCH : PP_CG_PRIMAL,
                                                   err, sizeof err))) {
                fprintf(stderr, "bench_pp_step: %s\n", err);
                return 1;
            }
        if (on[EXACT]) {
            wb_prox_settings ps;
            wb_prox_settings_default(&ps);
            ps.tau = tau;
            if (wb_prox_create(&px[l], sz[l + 1], sz[l], &ps) != WB_OK) {
                fprintf(stderr, "bench_pp_step: %s\n", wb_last_error());
                return 1;
            }
        }
    }
    double *tnew = malloc(sizeof(double) * big), *sec = malloc(sizeof(double) * NCONF * reps);
    int *y = malloc(sizeof(int) * m);
    if (!tnew || !sec || !y) {
        fprintf(stderr, "bench_pp_step: out of memory\n");
        return 1;
    }
    printf("network");
    for (int l = 0; l <= nl; l++) printf("%s%d", l ? "-" : " ", sz[l]);
    printf(", batch %d, tau %g, cg%d, %d repetitions\n", m, tau, k, reps);
    pp_loadavg("before");
    uint64_t s = 7;
    pp_net_init(&N, 1);
    for (int r = 0; r < reps; r++) {
        for (size_t q = 0; q < (size_t)in * m; q++) N.X[q] = rng_uniform(&s);
        for (int j = 0; j < m; j++) y[j] = rng_int(&s, classes);
        for (int c = 0; c < NCONF; c++) {
            if (!on[c]) continue;
            double t0 = now();
            pp_net_forward(&N, m, y, NULL);
            pp_net_backward(&N, m, y, c == BP);
            for (int l = 0; l < nh && c != BP; l++) {
                double *g = N.grad + N.off[l], *T = N.theta + N.off[l];
                const double *Ain = l ? N.A[l - 1] : N.X;
                if (c == EXACT) {
                    double *target = N.dA;
                    for (size_t q = 0; q < (size_t)sz[l + 1] * m; q++)
                        target[q] = N.Z[l][q] - N.dZ[l][q];
                    if (wb_prox_step(px[l], m, Ain, target, T, tnew) != WB_OK) {
                        fprintf(stderr, "bench_pp_step: %s\n", wb_prox_message(px[l]));
                        return 1;
                    }
                    for (size_t q = 0; q < N.off[l + 1] - N.off[l]; q++) g[q] = T[q] - tnew[q];
                } else if (pp_cg_step(cg[c][l], m, Ain, N.dZ[l], g, err, sizeof err) != 0) {
                    fprintf(stderr, "bench_pp_step: %s\n", err);
                    return 1;
                }
            }
            /* a tiny learning rate: the weights stay where they are, so
               every configuration sees the same network */
            pp_net_nesterov(&N, 1e-12, 0.0);
            sec[c * reps + r] = now() - t0;
        }
    }
    pp_loadavg("after ");
    double med[NCONF];
    for (int c = 0; c < NCONF; c++) {
        if (!on[c]) continue;
        qsort(sec + c * reps, (size_t)reps, sizeof(double), pp_cmp_double);
        med[c] = sec[c * reps + reps / 2];
        printf("%-30s median %.3f s per step (min %.3f, max %.3f)", NAMES[c], med[c],
               sec[c * reps], sec[c * reps + reps - 1]);
        if (c != BP) printf("   %.2fx backprop", med[c] / med[BP]);
        printf("\n");
    }
    for (int l = 0; l < nh; l++) {
        pp_cg_destroy(cg[CG_BATCH][l]);
        pp_cg_destroy(cg[CG_PRIMAL][l]);
        wb_prox_destroy(px[l]);
    }
    free(tnew);
    free(sec);
    free(y);
    pp_net_free(&N);
    return 0;
}
