/* bench_scale: time and memory of solve + implicit adjoint as n grows, for
 * the tracker-fusion energy with banded storage or matrix-free (CG).
 *
 *   bench_scale --kind banded|matrix-free --max-n N [--min-n M] [--trackers K]
 *
 * Prints one line per size, n doubling from --min-n up to N:
 *   n=<n> seconds=<s> peak_mb=<m>
 * (iterations, CG counts and statuses go to stderr)
 * then the fitted growth exponent of seconds in n (least squares on
 * log s = e log n + c over the sizes that take at least 10 ms):
 *   exponent=<e>
 * seconds = create + solve + one implicit VJP (data generation excluded);
 * peak_mb = the process's peak resident memory so far (getrusage). Run it
 * with OPENBLAS_NUM_THREADS=1 for one core.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "fusion_energy.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double peak_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* Linux: kilobytes */
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: bench_scale --kind banded|matrix-free --max-n N [options]\n"
            "\n"
            "Times create + solve + implicit VJP of the tracker-fusion energy\n"
            "(2-D pseudo-Huber fusion of K trackers, second-difference\n"
            "smoothing; n = 2 x frames) for n doubling up to N.\n"
            "\n"
            "  --kind K       banded (dpbtrf, kd = 5) or matrix-free (CG)\n"
            "  --max-n N      largest n (required), e.g. 2000000 = 10^6 frames\n"
            "  --min-n M      first n (default 200 = 100 frames)\n"
            "  --trackers K   trackers (default 6)\n"
            "  --lambda L     damping of the derivative (default 1e-3)\n"
            "  --verbose      the solver's iterations on stderr\n"
            "  --help         this text\n");
}

int main(int argc, char **argv) {
    const char *kind = NULL;
    long max_n = 0, min_n = 200;
    int K = 6;
    double lambda = 1e-3;
    int verbose = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--kind") && i + 1 < argc) {
            kind = argv[++i];
        } else if (!strcmp(a, "--max-n") && i + 1 < argc) {
            max_n = strtol(argv[++i], NULL, 10);
        } else if (!strcmp(a, "--min-n") && i + 1 < argc) {
            min_n = strtol(argv[++i], NULL, 10);
        } else if (!strcmp(a, "--trackers") && i + 1 < argc) {
            K = atoi(argv[++i]);
        } else if (!strcmp(a, "--verbose")) {
            verbose = 1;
        } else if (!strcmp(a, "--lambda") && i + 1 < argc) {
            lambda = atof(argv[++i]);
        } else {
            fprintf(stderr, "bench_scale: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    int banded;
    if (kind && !strcmp(kind, "banded")) banded = 1;
    else if (kind && !strcmp(kind, "matrix-free")) banded = 0;
    else {
        fprintf(stderr, "bench_scale: --kind must be banded or matrix-free\n");
        return 2;
    }
    if (max_n < 20 || min_n < 20 || min_n > max_n || K < 1 || K > 64 ||
        !(lambda >= 0)) {
        fprintf(stderr, "bench_scale: need 20 <= --min-n <= --max-n, 1 <= "
                        "--trackers <= 64, --lambda >= 0\n");
        return 2;
    }
    double lx[64], ly[64];
    int npts = 0, failed = 0;
    for (long n = min_n; n <= max_n; n *= 2) {
        int T = (int)(n / 2);
        fusion_t F;
        if (fusion_init(&F, T, K, 42) != 0) {
            fprintf(stderr, "bench_scale: out of memory at n = %ld\n", n);
            return 1;
        }
        double *x = malloc(sizeof(double) * 2 * (size_t)T);
        double *dl = malloc(sizeof(double) * 2 * (size_t)T);
        double w[65], out[65];
        for (int k = 0; k < K; k++) w[k] = 1.0;
        w[K] = 10.0;
        /* start: the per-frame median of the observed trackers (the
           previous frame's start where none is observed); the loss
           gradient: a fixed pattern */
        for (int t = 0; t < T; t++) {
            for (int c = 0; c < 2; c++) {
                double v[64];
                int m = 0;
                for (int k = 0; k < K; k++)
                    if (F.m[(size_t)t * K + k]) v[m++] = F.y[2 * ((size_t)t * K + k) + c];
                for (int i = 1; i < m; i++) /* insertion sort, m <= 64 */
                    for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
                        double tmp = v[j];
                        v[j] = v[j - 1];
                        v[j - 1] = tmp;
                    }
                x[2 * t + c] = m ? (m % 2 ? v[m / 2] : 0.5 * (v[m / 2 - 1] + v[m / 2]))
                                 : (t > 0 ? x[2 * (t - 1) + c] : 0.0);
            }
            dl[2 * t] = sin(0.001 * t);
            dl[2 * t + 1] = cos(0.001 * t);
        }
        wb_energy e;
        memset(&e, 0, sizeof e);
        e.n = 2 * T;
        e.p = K + 1;
        e.user = &F;
        e.value_grad = fu_vg;
        e.mixed_vjp = fu_mixed_vjp;
        if (banded) {
            e.kd = FU_KD;
            e.hess_band = fu_band;
        } else {
            e.hvp = fu_hvp;
            e.hess_diag = fu_diag;
        }
        wb_settings s;
        wb_settings_default(&s);
        s.lambda = lambda;
        s.grad_tol = 1e-6;
        s.cg_tol = 1e-8;
        s.verbose = verbose;
        double t0 = now();
        wb_solver *sv = NULL;
        wb_status st = wb_solver_create(&sv, &e, &s);
        wb_info info;
        memset(&info, 0, sizeof info);
        if (st == WB_OK) st = wb_solve(sv, w, x, &info);
        wb_status sd = st >= 0 ? wb_implicit_vjp(sv, dl, out) : st;
        double secs = now() - t0;
        wb_deriv_info di;
        memset(&di, 0, sizeof di);
        wb_solver_deriv_info(sv, &di);
        printf("n=%ld seconds=%.4f peak_mb=%.1f\n", n, secs, peak_mb());
        fflush(stdout);
        fprintf(stderr, "  (n=%ld: %d iterations, CG %d in the solve + %d in "
                "the adjoint; solve %s, adjoint %s)\n", n, info.iterations,
                info.cg_iterations, di.cg_iterations,
                st == WB_OK ? "ok" : wb_status_str(st),
                sd == WB_OK ? "ok" : wb_status_str(sd));
        if (st != WB_OK || sd != WB_OK) {
            fprintf(stderr, "bench_scale: n = %ld: %s\n", n, wb_solver_message(sv));
            failed = 1;
        }
        if (secs >= 0.01 && npts < 64) {
            lx[npts] = log((double)n);
            ly[npts] = log(secs);
            npts++;
        }
        wb_solver_destroy(sv);
        free(x);
        free(dl);
        fusion_free(&F);
    }
    if (npts >= 2) {
        double mx = 0, my = 0, sxx = 0, sxy = 0;
        for (int i = 0; i < npts; i++) mx += lx[i] / npts, my += ly[i] / npts;
        for (int i = 0; i < npts; i++) {
            sxx += (lx[i] - mx) * (lx[i] - mx);
            sxy += (lx[i] - mx) * (ly[i] - my);
        }
        printf("exponent=%.3f\n", sxy / sxx);
    } else {
        printf("exponent=nan (fewer than two sizes took 10 ms)\n");
    }
    return failed;
}
