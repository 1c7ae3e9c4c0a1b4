/* bench_lbfgs: libLBFGS 1.10 (limited-memory BFGS, More-Thuente line search)
 * on the benchmark problems, given E and grad E from the same formulas (and
 * OpenBLAS) as the other programs:
 *   P1 n = 10, 100, 1000 and P2 (vardim) n = 1000: time to the target,
 *      checked in the progress callback after every iteration;
 *   NIST: the 19 problems from both starts (E = 1/2 |r|^2, grad = J'r),
 *      tolerances at machine precision, judged by LRE.
 *   P3 (TV denoising) and P4 (extended Rosenbrock): time to the target;
 *   adjoint: solve + dL/dw at P1 n = 1000, p = 50: libLBFGS, then CG on
 *      exact Hessian-vector products (the peer of wb_implicit_vjp).
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
            "(vardim, n = 1000), P3 (TV denoising 256x256), P4 (extended\n"
            "Rosenbrock n = 1000), solve + dL/dw with a CG adjoint (P1 n = 1000,\n"
            "p = 50) and the NIST problems.\n"
            "\n"
            "  --data DIR      folder of bench_data's files (default bench-data)\n"
            "  --nist-dir DIR  folder holding nist/*.dat (default tests/data)\n"
            "  --only NAME     inner, p3, p4, adjoint or nist\n"
            "  --help          this text\n");
}

typedef struct {
    const bp_p1 *P;
    double *r, *t;
    int n2; /* P2: n */
    const nist_problem *pr;
    const bp_p3 *p3;
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

/* ---- P3 (TV denoising) and P4 (extended Rosenbrock): time to the target */
static lbfgsfloatval_t p3_eval(void *u, const lbfgsfloatval_t *x, lbfgsfloatval_t *g,
                               const int n, const lbfgsfloatval_t step) {
    (void)step, (void)n;
    ctx *c = u;
    c->evals++;
    return bp_p3_value_grad(c->p3, x, g);
}
static lbfgsfloatval_t p4_eval(void *u, const lbfgsfloatval_t *x, lbfgsfloatval_t *g,
                               const int n, const lbfgsfloatval_t step) {
    (void)step;
    ctx *c = u;
    c->evals++;
    return bp_p4_value_grad(n, x, g);
}

static void timed_rows(const char *cas, lbfgs_evaluate_t ev, ctx *c, const double *x0,
                       int n, int reps) {
    double *x = lbfgs_malloc(n), t[16];
    run_out o;
    memset(&o, 0, sizeof o);
    for (int r = 0; r < reps; r++) {
        o = run_once(ev, c, x0, x, n);
        t[r] = o.time;
    }
    char extra[256];
    snprintf(extra, sizeof extra, ", \"iters\": %d, \"evals\": %d, \"E\": %.15g, \"status\": %d",
             o.iters, o.evals, o.E, o.ret);
    bp_result("inner", cas, "libLBFGS m=20", bp_median(t, reps), reps, o.E <= c->target,
              extra);
    fprintf(stderr, "libLBFGS %s: %.5f s, %d it, %d evals, E = %.10g (status %d) %s\n", cas,
            bp_median(t, reps), o.iters, o.evals, o.E, o.ret,
            o.E <= c->target ? "" : "NOT REACHED");
    lbfgs_free(x);
}

static int section_p3(const char *dir) {
    bp_p3 P;
    if (bp_p3_read(&P, dir) != 0) return -1;
    ctx c;
    memset(&c, 0, sizeof c);
    c.p3 = &P;
    c.target = bp_p3_target(&P);
    char cas[64];
    snprintf(cas, sizeof cas, "P3 TV %dx%d", P.nr, P.nc);
    timed_rows(cas, p3_eval, &c, P.y, P.n, bp_reps(5));
    bp_p3_free(&P);
    return 0;
}

static int section_p4(void) {
    int n = BP_P4_N;
    double *x0 = malloc(sizeof(double) * (size_t)n);
    if (!x0) return -1;
    bp_p4_x0(n, x0);
    ctx c;
    memset(&c, 0, sizeof c);
    c.target = BP_P4_TARGET;
    timed_rows("P4 Rosenbrock n=1000", p4_eval, &c, x0, n, bp_reps(11));
    free(x0);
    return 0;
}

/* ---- solve + dL/dw at P1 n = 1000, p = 50: libLBFGS to |g|_inf <= gtol,
   then the adjoint by plain conjugate gradients on exact Hessian-vector
   products, H v = dl (dl = x - x_true), H v = A' diag(w / q^3) (A v) + mu v
   (two dgemv a product; the diagonal w / q^3 formed once at x), to the
   relative residual |H v - dl| / |dl| <= cgtol (the recurrence residual;
   at most 2n iterations); dL/dw_i = -(r_i / q_i) (A v)_i. The error is
   measured against bench_data's dense reference. */
typedef struct {
    double gtol;
    int hit;
} gstop;
static int progress_g(void *u, const lbfgsfloatval_t *x, const lbfgsfloatval_t *g,
                      const lbfgsfloatval_t fx, const lbfgsfloatval_t xnorm,
                      const lbfgsfloatval_t gnorm, const lbfgsfloatval_t step, int n, int k,
                      int ls) {
    (void)x, (void)fx, (void)xnorm, (void)gnorm, (void)step, (void)ls;
    ctx *c = u;
    c->iters = k;
    double gi = 0;
    for (int j = 0; j < n; j++) gi = fmax(gi, fabs(g[j]));
    c->E = gi;
    return gi <= c->target;
}

/* CG for H v = b at x (P1), returns the iterations; v[n] */
static int p1_cg_adjoint(const bp_p1 *P, const double *x, const double *b, double tol,
                         double *v, double *wk) {
    int m = P->m, n = P->n;
    double d2 = P->delta * P->delta;
    double *r = wk, *dg = wk + m, *av = wk + 2 * m, *res = wk + 3 * m, *pd = res + n,
           *hp = pd + n;
    memcpy(r, P->b, sizeof(double) * (size_t)m);
    cblas_dgemv(CblasColMajor, CblasNoTrans, m, n, 1.0, P->A, m, x, 1, -1.0, r, 1);
    for (int i = 0; i < m; i++) {
        double q = sqrt(1 + r[i] * r[i] / d2);
        dg[i] = P->w[i] / (q * q * q);
    }
    memset(v, 0, sizeof(double) * (size_t)n);
    memcpy(res, b, sizeof(double) * (size_t)n);
    memcpy(pd, b, sizeof(double) * (size_t)n);
    double bn = cblas_dnrm2(n, b, 1), rr = bn * bn;
    int it;
    for (it = 0; it < 2 * n && sqrt(rr) > tol * bn; it++) {
        cblas_dgemv(CblasColMajor, CblasNoTrans, m, n, 1.0, P->A, m, pd, 1, 0.0, av, 1);
        for (int i = 0; i < m; i++) av[i] *= dg[i];
        memcpy(hp, pd, sizeof(double) * (size_t)n);
        cblas_dgemv(CblasColMajor, CblasTrans, m, n, 1.0, P->A, m, av, 1, P->mu, hp, 1);
        double alpha = rr / cblas_ddot(n, pd, 1, hp, 1);
        cblas_daxpy(n, alpha, pd, 1, v, 1);
        cblas_daxpy(n, -alpha, hp, 1, res, 1);
        double rr2 = cblas_ddot(n, res, 1, res, 1);
        cblas_dscal(n, rr2 / rr, pd, 1);
        cblas_daxpy(n, 1.0, res, 1, pd, 1);
        rr = rr2;
    }
    return it;
}

static int section_adjoint(const char *dir) {
    int n = BP_ADJ_N, p = BP_ADJ_P;
    bp_p1 P;
    char path[1024];
    bp_p1_path(path, sizeof path, dir, n);
    if (bp_p1_read(&P, path) != 0) return -1;
    int m = P.m;
    double *gref = malloc(sizeof(double) * (size_t)p), *gw = malloc(sizeof(double) * (size_t)p);
    double *x0 = calloc((size_t)n, sizeof(double)), *dl = malloc(sizeof(double) * (size_t)n);
    double *v = malloc(sizeof(double) * (size_t)n);
    double *wk = malloc(sizeof(double) * (size_t)(3 * m + 3 * n));
    double *x = lbfgs_malloc(n);
    ctx c;
    memset(&c, 0, sizeof c);
    c.P = &P;
    c.r = malloc(sizeof(double) * (size_t)m);
    c.t = malloc(sizeof(double) * (size_t)m);
    if (!gref || !gw || !x0 || !dl || !v || !wk || !x || !c.r || !c.t ||
        bp_adjref_read(dir, n, p, gref) != 0)
        return -1;
    static const double gtols[3] = {1e-6, 1e-8, 1e-10};
    static const double cgtols[3] = {1e-6, 1e-8, 1e-10};
    int reps = bp_reps(5);
    for (int a = 0; a < 3; a++) {
        double ts[5];
        run_out o;
        memset(&o, 0, sizeof o);
        c.target = gtols[a];
        for (int r = 0; r < reps; r++) {
            lbfgs_parameter_t par;
            params(&par);
            memcpy(x, x0, sizeof(double) * (size_t)n);
            c.evals = c.iters = 0;
            c.E = INFINITY;
            lbfgsfloatval_t fx = 0;
            double t0 = bp_now();
            o.ret = lbfgs(n, x, &fx, p1_eval, progress_g, &c, &par);
            ts[r] = bp_now() - t0;
        }
        double gnorm = c.E, t_solve = bp_median(ts, reps);
        int iters = c.iters;
        for (int j = 0; j < n; j++) dl[j] = x[j] - P.xtrue[j];
        /* r at x for B' v */
        memcpy(c.r, P.b, sizeof(double) * (size_t)m);
        cblas_dgemv(CblasColMajor, CblasNoTrans, m, n, 1.0, P.A, m, x, 1, -1.0, c.r, 1);
        for (int b = 0; b < 3; b++) {
            double tc[5];
            int cg_it = 0;
            for (int r = 0; r < reps; r++) {
                double t0 = bp_now();
                cg_it = p1_cg_adjoint(&P, x, dl, cgtols[b], v, wk);
                /* dL/dw_i = -(r_i / q_i) (A v)_i, i < p: rows i of A */
                double d2 = P.delta * P.delta;
                for (int i = 0; i < p; i++) {
                    double ri = c.r[i];
                    gw[i] = -ri / sqrt(1 + ri * ri / d2) *
                            cblas_ddot(n, P.Ar + (size_t)i * n, 1, v, 1);
                }
                tc[r] = bp_now() - t0;
            }
            double t_cg = bp_median(tc, reps), err = bp_rel_err(p, gw, gref);
            char solver[128], extra[512];
            snprintf(solver, sizeof solver, "libLBFGS (|g| <= %g) + CG adjoint (tol %g)",
                     gtols[a], cgtols[b]);
            snprintf(extra, sizeof extra,
                     ", \"solve_s\": %.9g, \"vjp_s\": %.9g, \"rel_err\": %.3g, "
                     "\"iters\": %d, \"adj_cg_iters\": %d, \"grad_norm\": %.3g, "
                     "\"status\": %d",
                     t_solve, t_cg, err, iters, cg_it, gnorm, o.ret);
            bp_result("adjoint", "P1 n=1000 p=50", solver, t_solve + t_cg, reps,
                      gnorm <= gtols[a], extra);
            fprintf(stderr, "adjoint %s: %.4f s (solve %.4f s, %d it, |g| %.1e; CG %.4f s, "
                    "%d it), dL/dw rel. error %.2e\n", solver, t_solve + t_cg, t_solve,
                    iters, gnorm, t_cg, cg_it, err);
        }
    }
    free(gref), free(gw), free(x0), free(dl), free(v), free(wk), free(c.r), free(c.t);
    lbfgs_free(x);
    bp_p1_free(&P);
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
    if (bp_selected(argc, argv, "p3") && section_p3(dir) != 0) rc = 1;
    if (bp_selected(argc, argv, "p4") && section_p4() != 0) rc = 1;
    if (bp_selected(argc, argv, "adjoint") && section_adjoint(dir) != 0) rc = 1;
    if (bp_selected(argc, argv, "nist") && section_nist(nist_dir) != 0) rc = 1;
    return rc;
}
