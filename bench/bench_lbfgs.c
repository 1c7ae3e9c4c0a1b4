/* bench_lbfgs: libLBFGS 1.10 (limited-memory BFGS, More-Thuente line search)
 * on the benchmark problems, given E and grad E from the same formulas (and
 * OpenBLAS) as the other programs:
 *   P1 n = 10, 100, 1000 and P2 (vardim) n = 1000: time to the target,
 *      checked in the progress callback after every iteration;
 *   NIST: the 19 problems from both starts (E = 1/2 |r|^2, grad = J'r),
 *      tolerances at machine precision, judged by LRE.
 * Memory m = 20 (the research prototype's choice; the default 6 is slower on
 * P1). Prints RESULT lines (see bench/run).
 */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <lbfgs.h>

#include "bench_problems.h"
#include "nist_models.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: bench_lbfgs [--data DIR] [--nist-dir DIR] [--only SECTION]\n"
            "\n"
            "libLBFGS (m = 20, More-Thuente) on P1 (n = 10, 100, 1000), P2\n"
            "(vardim, n = 1000) and the NIST problems.\n"
            "\n"
            "  --data DIR      folder of bench_data's files (default bench-data)\n"
            "  --nist-dir DIR  folder holding nist/*.dat (default tests/data)\n"
            "  --only NAME     inner or nist\n"
            "  --help          this text\n");
}

typedef struct {
    const bp_p1 *P;
    double *r, *t;
    int n2; /* P2: n */
    const nist_problem *pr;
    double target, E;
    int evals, iters;
} ctx;

static lbfgsfloatval_t p1_eval(void *u, const lbfgsfloatval_t *x, lbfgsfloatval_t *g,
                               const int n, const lbfgsfloatval_t step) {
    (void)step;
    ctx *c = u;
    const bp_p1 *P = c->P;
    int m = P->m;
    double d2 = P->delta * P->delta, E = 0, xx = 0;
    memcpy(c->r, P->b, sizeof(double) * (size_t)m);
    cblas_dgemv(CblasColMajor, CblasNoTrans, m, n, 1.0, P->A, m, x, 1, -1.0, c->r, 1);
    for (int i = 0; i < m; i++) {
        double ri = c->r[i], q = sqrt(1 + ri * ri / d2);
        E += P->w[i] * d2 * (q - 1);
        c->t[i] = P->w[i] * ri / q;
    }
    for (int j = 0; j < n; j++) xx += x[j] * x[j];
    memcpy(g, x, sizeof(double) * (size_t)n);
    cblas_dgemv(CblasColMajor, CblasTrans, m, n, 1.0, P->A, m, c->t, 1, P->mu, g, 1);
    c->evals++;
    return E + 0.5 * P->mu * xx;
}

static lbfgsfloatval_t p2_eval(void *u, const lbfgsfloatval_t *x, lbfgsfloatval_t *g,
                               const int n, const lbfgsfloatval_t step) {
    (void)step;
    ctx *c = u;
    c->evals++;
    return bp_p2_value_grad(n, x, g);
}

static lbfgsfloatval_t nist_eval(void *u, const lbfgsfloatval_t *b, lbfgsfloatval_t *g,
                                 const int n, const lbfgsfloatval_t step) {
    (void)step;
    ctx *c = u;
    const nist_problem *pr = c->pr;
    const nist_spec *sp = pr->spec;
    double df[NIST_MAX_PARAMS], E = 0;
    for (int j = 0; j < n; j++) g[j] = 0;
    for (int i = 0; i < pr->nobs; i++) {
        double r = pr->y[i] - sp->f(b, pr->x + (size_t)i * sp->nx, df);
        E += r * r;
        for (int j = 0; j < n; j++) g[j] -= r * df[j];
    }
    c->evals++;
    return 0.5 * E;
}

static int progress(void *u, const lbfgsfloatval_t *x, const lbfgsfloatval_t *g,
                    const lbfgsfloatval_t fx, const lbfgsfloatval_t xnorm,
                    const lbfgsfloatval_t gnorm, const lbfgsfloatval_t step, int n, int k,
                    int ls) {
    (void)x, (void)g, (void)xnorm, (void)gnorm, (void)step, (void)n, (void)ls;
    ctx *c = u;
    c->E = fx;
    c->iters = k;
    return fx <= c->target; /* non-zero stops the run */
}

static void params(lbfgs_parameter_t *par) {
    lbfgs_parameter_init(par);
    par->m = 20;
    par->epsilon = 1e-16;
    par->past = 0;
    par->max_iterations = 100000;
    par->max_linesearch = 60;
}

typedef struct {
    double time, E;
    int ret, iters, evals;
} run_out;

static run_out run_once(lbfgs_evaluate_t ev, ctx *c, const double *x0, double *x, int n) {
    lbfgs_parameter_t par;
    params(&par);
    memcpy(x, x0, sizeof(double) * (size_t)n);
    c->evals = c->iters = 0;
    c->E = INFINITY;
    lbfgsfloatval_t fx = 0;
    double t0 = bp_now();
    int ret = lbfgs(n, x, &fx, ev, progress, c, &par);
    run_out o;
    o.time = bp_now() - t0;
    o.E = fx;
    o.ret = ret;
    o.iters = c->iters;
    o.evals = c->evals;
    return o;
}

static int section_inner(const char *dir) {
    for (int k = 0; k < BP_P1_CASES; k++) {
        bp_p1 P;
        char path[1024], cas[64], extra[512];
        bp_p1_path(path, sizeof path, dir, bp_p1_sizes[k]);
        if (bp_p1_read(&P, path) != 0) return -1;
        int n = P.n;
        ctx c;
        memset(&c, 0, sizeof c);
        c.P = &P;
        c.r = malloc(sizeof(double) * (size_t)P.m);
        c.t = malloc(sizeof(double) * (size_t)P.m);
        c.target = bp_p1_target(&P);
        double *x0 = calloc((size_t)n, sizeof(double));
        double *x = lbfgs_malloc(n);
        int reps = bp_reps(bp_p1_reps[k]);
        double t[64];
        run_out o;
        memset(&o, 0, sizeof o);
        for (int r = 0; r < reps; r++) {
            o = run_once(p1_eval, &c, x0, x, n);
            t[r] = o.time;
        }
        double xerr = 0;
        for (int j = 0; j < n; j++) xerr = fmax(xerr, fabs(x[j] - P.xstar[j]));
        snprintf(cas, sizeof cas, "P1 n=%d", n);
        snprintf(extra, sizeof extra,
                 ", \"iters\": %d, \"evals\": %d, \"E\": %.15g, \"E_minus_Estar\": %.3g, "
                 "\"x_err\": %.3g, \"status\": %d",
                 o.iters, o.evals, o.E, o.E - P.Estar, xerr, o.ret);
        bp_result("inner", cas, "libLBFGS m=20", bp_median(t, reps), reps,
                  o.E <= c.target, extra);
        fprintf(stderr, "libLBFGS %s: %.5f s, %d it, %d evals, E - E* = %.2e, "
                "|x - x*| = %.1e %s\n", cas, bp_median(t, reps), o.iters, o.evals,
                o.E - P.Estar, xerr, o.E <= c.target ? "" : "NOT REACHED");
        lbfgs_free(x);
        free(x0), free(c.r), free(c.t);
        bp_p1_free(&P);
    }
    {
        int n = 1000;
        ctx c;
        memset(&c, 0, sizeof c);
        c.target = BP_P2_TARGET;
        double *x0 = malloc(sizeof(double) * (size_t)n);
        double *x = lbfgs_malloc(n);
        bp_p2_x0(n, x0);
        int reps = bp_reps(5);
        double t[5];
        run_out o;
        memset(&o, 0, sizeof o);
        for (int r = 0; r < reps; r++) {
            o = run_once(p2_eval, &c, x0, x, n);
            t[r] = o.time;
        }
        char extra[256];
        snprintf(extra, sizeof extra, ", \"iters\": %d, \"evals\": %d, \"E\": %.3g, \"status\": %d",
                 o.iters, o.evals, o.E, o.ret);
        bp_result("inner", "P2 vardim n=1000", "libLBFGS m=20", bp_median(t, reps), reps,
                  o.E <= BP_P2_TARGET, extra);
        fprintf(stderr, "libLBFGS P2: %.6f s, %d it, E = %.2e (status %d) %s\n",
                bp_median(t, reps), o.iters, o.E, o.ret,
                o.E <= BP_P2_TARGET ? "" : "NOT REACHED");
        lbfgs_free(x);
        free(x0);
    }
    return 0;
}

static int section_nist(const char *nist_dir) {
    nist_problem prob[NIST_NUM_PROBLEMS];
    if (nist_load_all(prob, nist_dir) != 0) return -1;
    int reps = bp_reps(5), passed = 0, iters = 0;
    double t[5], lre_sum = 0, lre_min = 99;
    char fails[1024] = "";
    for (int r = 0; r < reps; r++) {
        double tot = 0;
        passed = 0, iters = 0, lre_sum = 0, lre_min = 99, fails[0] = 0;
        for (int i = 0; i < NIST_NUM_PROBLEMS; i++) {
            nist_problem *pr = &prob[i];
            int np = pr->spec->np;
            double *b = lbfgs_malloc(np);
            ctx c;
            memset(&c, 0, sizeof c);
            c.pr = pr;
            c.target = -INFINITY; /* run to its own convergence */
            for (int st = 0; st < 2; st++) {
                run_out o = run_once(nist_eval, &c, pr->start[st], b, np);
                tot += o.time;
                double lre = nist_lre(np, b, pr->cert);
                int ok = lre >= NIST_MIN_LRE;
                passed += ok;
                iters += o.iters;
                lre_sum += lre;
                lre_min = fmin(lre_min, lre);
                if (!ok && strlen(fails) < sizeof fails - 40)
                    snprintf(fails + strlen(fails), sizeof fails - strlen(fails), "%s%s/%d",
                             fails[0] ? " " : "", pr->spec->name, st + 1);
            }
            lbfgs_free(b);
        }
        t[r] = tot;
    }
    char extra[1400];
    snprintf(extra, sizeof extra,
             ", \"passed\": %d, \"starts\": 38, \"avg_lre\": %.3f, \"min_lre\": %.3f, "
             "\"iters\": %d, \"failures\": \"%s\"",
             passed, lre_sum / 38, lre_min, iters, fails);
    bp_result("nist", "NIST 19 problems x 2 starts", "libLBFGS m=20", bp_median(t, reps),
              reps, passed == 38, extra);
    fprintf(stderr, "libLBFGS NIST: %d/38, avg LRE %.2f, %.4f s\n", passed, lre_sum / 38,
            bp_median(t, reps));
    nist_free_all(prob);
    return 0;
}

int main(int argc, char **argv) {
    const char *nist_dir = NULL;
    int done = bp_parse_args(argc, argv, "bench_lbfgs", usage, &nist_dir);
    if (done >= 0) return done;
    const char *dir = bp_data_dir(argc, argv);
    int rc = 0;
    if (bp_selected(argc, argv, "inner") && section_inner(dir) != 0) rc = 1;
    if (bp_selected(argc, argv, "nist") && section_nist(nist_dir) != 0) rc = 1;
    return rc;
}
