/* robust_mean: the toy of "Wibergian learning" (Toso, Campbell & Russell,
 * NeurIPS 2019), learning the width s of a robust mean estimator.
 *
 * Each step draws 10 inliers from N(2, 4^2) and 100 outliers from
 * U[-60, 20]. The estimate is the minimizer of
 *
 *     E(x; s) = -sum_i exp(-(x - c_i)^2 / s^2)
 *
 * started from the best data point (as the original code does), and the
 * loss is L = (x* - mean of the inliers)^2. s is learned by SGD from s = 1
 * with dL/ds from the implicit derivative, once with lambda = 0 (the classic
 * derivative, -H^-1 B) and once with lambda = 0.1 (the damped one,
 * -(H + lambda)^-1 B). Where E is nearly flat at x* (H ~ 0) the classic
 * derivative explodes; where H <= 0 it does not exist and libwiberg refuses
 * it (WB_ESINGULAR). The damping keeps every step's gradient bounded.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wiberg.h>

enum { N_IN = 10, N_OUT = 100, N_ALL = N_IN + N_OUT };

typedef struct {
    double c[N_ALL];
} sample_t;

/* d = x - c, u = d^2/s^2, e = exp(-u):
   E = -sum e;  dE/dx = sum 2 d e / s^2;  d2E/dx2 = sum e (2/s^2 - 4 d^2/s^4);
   d/ds dE/dx = sum e (-4 d / s^3 + 4 d^3 / s^5) */
static int vg(void *u, const double *x, const double *w, double *e, double *g) {
    const sample_t *S = u;
    double s2 = w[0] * w[0], E = 0, G = 0;
    for (int i = 0; i < N_ALL; i++) {
        double d = x[0] - S->c[i], ex = exp(-d * d / s2);
        E -= ex;
        G += 2 * d * ex / s2;
    }
    *e = E;
    if (g) g[0] = G;
    return 0;
}
static int hess(void *u, const double *x, const double *w, double *H) {
    const sample_t *S = u;
    double s2 = w[0] * w[0], h = 0;
    for (int i = 0; i < N_ALL; i++) {
        double d = x[0] - S->c[i], ex = exp(-d * d / s2);
        h += ex * (2 / s2 - 4 * d * d / (s2 * s2));
    }
    H[0] = h;
    return 0;
}
static int mixed_vjp(void *u, const double *x, const double *w,
                     const double *v, double *out) {
    const sample_t *S = u;
    double s = w[0], s2 = s * s, b = 0;
    for (int i = 0; i < N_ALL; i++) {
        double d = x[0] - S->c[i], ex = exp(-d * d / s2);
        b += ex * (-4 * d / (s2 * s) + 4 * d * d * d / (s2 * s2 * s));
    }
    out[0] = b * v[0];
    return 0;
}

/* splitmix64 and Box-Muller: the only random source (seeded). */
static uint64_t rng_state;
static double urand(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return ((double)((z ^ (z >> 31)) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}
static double nrand(void) {
    return sqrt(-2 * log(urand())) * cos(6.283185307179586 * urand());
}

static double draw(sample_t *S) {
    double mean = 0;
    for (int i = 0; i < N_IN; i++) {
        S->c[i] = 2 + 4 * nrand();
        mean += S->c[i] / N_IN;
    }
    for (int i = N_IN; i < N_ALL; i++) S->c[i] = -60 + 80 * urand();
    return mean;
}

typedef struct {
    double lambda, s, final_loss, max_grad, median, p99;
    long refused, failed, spikes; /* spikes: |dL/ds| > SPIKE */
} run_t;

#define SPIKE 50.0

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int run(double lambda, long steps, double lr, uint64_t seed, long every,
               FILE *csv, run_t *out) {
    sample_t S;
    wb_energy e = {1, 1, &S, vg, hess, mixed_vjp, NULL, 0, NULL, NULL, NULL};
    wb_settings st;
    wb_settings_default(&st);
    st.lambda = lambda;
    st.grad_tol = 1e-10;
    wb_solver *sv = NULL;
    wb_status r = wb_solver_create(&sv, &e, &st);
    if (r != WB_OK) {
        fprintf(stderr, "robust_mean: wb_solver_create: %s\n", wb_status_str(r));
        return 1;
    }
    double *mags = malloc(sizeof(double) * (size_t)steps);
    if (!mags) {
        wb_solver_destroy(sv);
        fprintf(stderr, "robust_mean: out of memory\n");
        return 1;
    }
    long nmag = 0;
    rng_state = seed;
    double s = 1.0, win_loss = 0, win_max = 0, all_max = 0;
    long win_n = 0, refused = 0, failed = 0;
    printf("\nlambda = %g\n%8s %12s %10s %14s %9s\n", lambda, "step",
           "mean loss", "s", "max |dL/ds|", "refused");
    for (long k = 1; k <= steps; k++) {
        double mean = draw(&S), w[1] = {s}, x[1], best = INFINITY, E;
        /* start from the data point with the lowest energy */
        for (int i = 0; i < N_ALL; i++) {
            vg(&S, &S.c[i], w, &E, NULL);
            if (E < best) best = E, x[0] = S.c[i];
        }
        r = wb_solve(sv, w, x, NULL);
        double loss = (x[0] - mean) * (x[0] - mean), dl = 2 * (x[0] - mean), g = 0;
        wb_status d = r == WB_OK ? wb_implicit_vjp(sv, &dl, &g) : r;
        if (d == WB_OK) {
            s -= lr * g;
            if (s < 0.1) s = 0.1; /* keep the width positive */
            if (s > 50) s = 50;
            win_max = fmax(win_max, fabs(g));
            all_max = fmax(all_max, fabs(g));
            mags[nmag++] = fabs(g);
        } else if (d == WB_ESINGULAR) {
            refused++; /* H <= 0 at x*: no classic derivative; step skipped */
        } else {
            failed++;
        }
        win_loss += loss;
        win_n++;
        if (csv) fprintf(csv, "%g,%ld,%.10g,%.10g,%.10g,%d\n", lambda, k, s, loss,
                         d == WB_OK ? g : NAN, (int)d);
        if (k % every == 0 || k == steps) {
            printf("%8ld %12.4f %10.4f %14.4g %9ld\n", k, win_loss / win_n, s,
                   win_max, refused);
            out->final_loss = win_loss / win_n;
            win_loss = 0, win_n = 0, win_max = 0;
        }
    }
    wb_solver_destroy(sv);
    qsort(mags, (size_t)nmag, sizeof(double), cmp_double);
    out->median = nmag ? mags[nmag / 2] : NAN;
    out->p99 = nmag ? mags[(long)(0.99 * (double)(nmag - 1))] : NAN;
    out->spikes = 0;
    for (long k = 0; k < nmag; k++) out->spikes += mags[k] > SPIKE;
    free(mags);
    out->lambda = lambda;
    out->s = s;
    out->max_grad = all_max;
    out->refused = refused;
    out->failed = failed;
    return 0;
}

static void usage(FILE *f) {
    fprintf(f,
        "usage: robust_mean [options]\n"
        "\n"
        "Learns the width s of the robust mean E(x; s) = -sum exp(-(x-c)^2/s^2)\n"
        "by SGD through the implicit derivative, with lambda = 0 and damped.\n"
        "\n"
        "  --steps N     SGD steps per run (default 10000)\n"
        "  --lr X        learning rate (default 0.5)\n"
        "  --lambda X    damping of the second run (default 0.1)\n"
        "  --seed S      random seed; both runs see the same samples (default 1)\n"
        "  --every N     print a line every N steps (default 500)\n"
        "  --csv FILE    write every step (lambda,step,s,loss,dL/ds,status)\n"
        "  --help        this text\n");
}

int main(int argc, char **argv) {
    long steps = 10000, every = 500;
    double lr = 0.5, lambda = 0.1;
    uint64_t seed = 1;
    const char *csv_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--steps") && more) steps = atol(argv[++i]);
        else if (!strcmp(a, "--lr") && more) lr = atof(argv[++i]);
        else if (!strcmp(a, "--lambda") && more) lambda = atof(argv[++i]);
        else if (!strcmp(a, "--seed") && more) seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--every") && more) every = atol(argv[++i]);
        else if (!strcmp(a, "--csv") && more) csv_path = argv[++i];
        else {
            fprintf(stderr, "robust_mean: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (steps < 1 || every < 1 || !(lr > 0) || !(lambda > 0)) {
        fprintf(stderr, "robust_mean: need --steps >= 1, --every >= 1, --lr > 0, --lambda > 0\n");
        return 2;
    }
    FILE *csv = NULL;
    if (csv_path) {
        csv = fopen(csv_path, "w");
        if (!csv) {
            fprintf(stderr, "robust_mean: cannot write %s\n", csv_path);
            return 1;
        }
        fprintf(csv, "lambda,step,s,loss,dL_ds,status\n");
    }
    printf("robust_mean: 10 inliers N(2, 4^2) + 100 outliers U[-60, 20] per step,"
           " E(x; s) = -sum exp(-(x - c)^2 / s^2), s from 1, SGD lr %g, seed %llu\n",
           lr, (unsigned long long)seed);
    run_t a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    if (run(0.0, steps, lr, seed, every, csv, &a) || run(lambda, steps, lr, seed, every, csv, &b))
        return 1;
    if (csv) fclose(csv);
    printf("\n%-8s %8s %10s %12s %12s %12s %10s %8s %7s\n", "lambda", "final s",
           "mean loss", "median|g|", "p99 |g|", "max |g|", "|g|>50", "refused",
           "failed");
    const run_t *rs[2] = {&a, &b};
    for (int k = 0; k < 2; k++)
        printf("%-8g %8.3f %10.3f %12.3g %12.3g %12.3g %10ld %8ld %7ld\n",
               rs[k]->lambda, rs[k]->s, rs[k]->final_loss, rs[k]->median,
               rs[k]->p99, rs[k]->max_grad, rs[k]->spikes, rs[k]->refused,
               rs[k]->failed);
    printf("\n(g = dL/ds of one step; mean loss over the last %ld steps)\n"
           "What the damping buys: the classic derivative -B/H blows up where E is\n"
           "nearly flat at x* (H ~ 0): %ld steps with |g| > 50 and a 99th percentile\n"
           "of %.3g with lambda = 0, against %ld and %.3g with lambda = %g, whose\n"
           "derivative -B/(H + lambda) is bounded; where H <= 0 the classic\n"
           "derivative is refused (%ld times here), never returned as a number.\n",
           every, a.spikes, a.p99, b.spikes, b.p99, lambda, a.refused);
    return 0;
}
