/* bench_gsl: GSL 2.7 multifit_nlinear (trust-region Levenberg-Marquardt,
 * Cholesky of the normal equations; GSL runs on OpenBLAS's CBLAS here) on
 * the benchmark problems, in least-squares form with analytic dense
 * Jacobians (see bench_problems.h):
 *   P1 n = 10, 100, 1000 and P2 (vardim) n = 1000: time to the target,
 *      checked after every iteration (the same rule as every solver);
 *   P4 (extended Rosenbrock n = 1000): multimin vector_bfgs2 on E, grad E;
 *   NIST: the 19 problems from both starts with the driver at tolerances
 *      1e-15, judged by LRE.
 * Prints RESULT lines (see bench/run).
 */
#define _POSIX_C_SOURCE 200809L
#include <gsl/gsl_blas.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_multifit_nlinear.h>
#include <gsl/gsl_multimin.h>
#include <gsl/gsl_version.h>

#include "bench_problems.h"
#include "nist_models.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: bench_gsl [--data DIR] [--nist-dir DIR] [--only SECTION]\n"
            "\n"
            "GSL multifit_nlinear (trust-region LM, Cholesky) on P1 (n = 10,\n"
            "100, 1000), P2 (vardim, n = 1000) and the NIST problems;\n"
            "multimin vector_bfgs2 on P4 (extended Rosenbrock n = 1000).\n"
            "\n"
            "  --data DIR      folder of bench_data's files (default bench-data)\n"
            "  --nist-dir DIR  folder holding nist/*.dat (default tests/data)\n"
            "  --only NAME     inner, p4 or nist\n"
            "  --help          this text\n");
}

/* ---------------------------------------------------------------- P1 */
typedef struct {
    const bp_p1 *P;
    double *r;
} p1_ctx;

/* c->r = A x - b */
static void p1_residual(p1_ctx *c, const gsl_vector *x) {
    const bp_p1 *P = c->P;
    memcpy(c->r, P->b, sizeof(double) * (size_t)P->m);
    cblas_dgemv(CblasRowMajor, CblasNoTrans, P->m, P->n, 1.0, P->Ar, P->n, x->data,
                (int)x->stride, -1.0, c->r, 1);
}

static int p1_f(const gsl_vector *x, void *u, gsl_vector *f) {
    p1_ctx *c = u;
    const bp_p1 *P = c->P;
    int m = P->m, n = P->n;
    double d2 = P->delta * P->delta, smu = sqrt(P->mu);
    p1_residual(c, x);
    for (int i = 0; i < m; i++) {
        double ri = c->r[i], q = sqrt(1 + ri * ri / d2);
        gsl_vector_set(f, (size_t)i, ri * sqrt(2 * P->w[i] / (q + 1)));
    }
    for (int j = 0; j < n; j++) gsl_vector_set(f, (size_t)(m + j), smu * gsl_vector_get(x, (size_t)j));
    return GSL_SUCCESS;
}

static int p1_df(const gsl_vector *x, void *u, gsl_matrix *J) {
    p1_ctx *c = u;
    const bp_p1 *P = c->P;
    int m = P->m, n = P->n;
    double d2 = P->delta * P->delta, smu = sqrt(P->mu);
    p1_residual(c, x);
    for (int i = 0; i < m; i++) {
        double ri = c->r[i], q = sqrt(1 + ri * ri / d2);
        double s = sqrt(P->w[i] * (q + 1) / 2) / q;
        const double *a = P->Ar + (size_t)i * n;
        double *row = J->data + (size_t)i * J->tda;
        for (int j = 0; j < n; j++) row[j] = s * a[j];
    }
    for (int i = 0; i < n; i++) {
        double *row = J->data + (size_t)(m + i) * J->tda;
        memset(row, 0, sizeof(double) * (size_t)n);
        row[i] = smu;
    }
    return GSL_SUCCESS;
}

/* ---------------------------------------------------------------- P2 */
static int p2_f(const gsl_vector *x, void *u, gsl_vector *f) {
    int n = *(int *)u;
    double S = bp_p2_S(n, x->data);
    for (int j = 0; j < n; j++) gsl_vector_set(f, (size_t)j, gsl_vector_get(x, (size_t)j) - 1);
    gsl_vector_set(f, (size_t)n, S);
    gsl_vector_set(f, (size_t)n + 1, S * S);
    return GSL_SUCCESS;
}
static int p2_df(const gsl_vector *x, void *u, gsl_matrix *J) {
    int n = *(int *)u;
    double S = bp_p2_S(n, x->data);
    gsl_matrix_set_zero(J);
    for (int j = 0; j < n; j++) {
        gsl_matrix_set(J, (size_t)j, (size_t)j, 1.0);
        gsl_matrix_set(J, (size_t)n, (size_t)j, j + 1.0);
        gsl_matrix_set(J, (size_t)n + 1, (size_t)j, 2 * S * (j + 1.0));
    }
    return GSL_SUCCESS;
}

static double half_sq(const gsl_vector *f) {
    double nr = gsl_blas_dnrm2(f);
    return 0.5 * nr * nr;
}

/* One timed run: init at x0, iterate until 1/2 |f|^2 <= target, the GSL
   convergence test, GSL_ENOPROG or maxiter. */
typedef struct {
    double time, E;
    int iters, nf, nj, ok, status;
} run_out;

static run_out run_to_target(gsl_multifit_nlinear_workspace *ws,
                             gsl_multifit_nlinear_fdf *fdf, const gsl_vector *x0,
                             double target, int maxiter) {
    run_out o;
    memset(&o, 0, sizeof o);
    fdf->nevalf = fdf->nevaldf = 0;
    double t0 = bp_now();
    int st = gsl_multifit_nlinear_init(x0, fdf, ws);
    double E = half_sq(gsl_multifit_nlinear_residual(ws));
    int it = 0;
    while (st == GSL_SUCCESS && E > target && it < maxiter) {
        st = gsl_multifit_nlinear_iterate(ws);
        it++;
        E = half_sq(gsl_multifit_nlinear_residual(ws));
        if (st != GSL_SUCCESS) break;
        int info;
        if (E > target &&
            gsl_multifit_nlinear_test(1e-15, 1e-15, 0.0, &info, ws) == GSL_SUCCESS)
            break; /* converged by its own test without reaching the target */
    }
    o.time = bp_now() - t0;
    o.E = E;
    o.iters = it;
    o.nf = (int)fdf->nevalf;
    o.nj = (int)fdf->nevaldf;
    o.ok = E <= target;
    o.status = st;
    return o;
}

static gsl_multifit_nlinear_parameters lm_params(int qr) {
    gsl_multifit_nlinear_parameters par = gsl_multifit_nlinear_default_parameters();
    par.trs = gsl_multifit_nlinear_trs_lm;
    par.solver = qr ? gsl_multifit_nlinear_solver_qr : gsl_multifit_nlinear_solver_cholesky;
    return par;
}

static int section_inner(const char *dir) {
    for (int k = 0; k < BP_P1_CASES; k++) {
        bp_p1 P;
        char path[1024], cas[64], extra[512];
        bp_p1_path(path, sizeof path, dir, bp_p1_sizes[k]);
        if (bp_p1_read(&P, path) != 0) return -1;
        int m = P.m, n = P.n;
        p1_ctx c = {&P, malloc(sizeof(double) * (size_t)m)};
        gsl_multifit_nlinear_fdf fdf;
        memset(&fdf, 0, sizeof fdf);
        fdf.f = p1_f;
        fdf.df = p1_df;
        fdf.n = (size_t)(m + n);
        fdf.p = (size_t)n;
        fdf.params = &c;
        gsl_multifit_nlinear_parameters par = lm_params(0);
        gsl_multifit_nlinear_workspace *ws =
            gsl_multifit_nlinear_alloc(gsl_multifit_nlinear_trust, &par, fdf.n, fdf.p);
        gsl_vector *x0 = gsl_vector_calloc((size_t)n);
        int reps = bp_reps(bp_p1_reps[k]);
        double t[64];
        run_out o;
        memset(&o, 0, sizeof o);
        for (int r = 0; r < reps; r++) {
            o = run_to_target(ws, &fdf, x0, bp_p1_target(&P), 1000);
            t[r] = o.time;
        }
        snprintf(cas, sizeof cas, "P1 n=%d", n);
        snprintf(extra, sizeof extra,
                 ", \"iters\": %d, \"evals\": %d, \"jacobians\": %d, \"E\": %.15g, "
                 "\"E_minus_Estar\": %.3g, \"status\": %d",
                 o.iters, o.nf, o.nj, o.E, o.E - P.Estar, o.status);
        bp_result("inner", cas, "GSL LM cholesky", bp_median(t, reps), reps, o.ok, extra);
        fprintf(stderr, "GSL %s: %.5f s, %d it, E - E* = %.2e %s\n", cas,
                bp_median(t, reps), o.iters, o.E - P.Estar, o.ok ? "" : "NOT REACHED");
        gsl_vector_free(x0);
        gsl_multifit_nlinear_free(ws);
        free(c.r);
        bp_p1_free(&P);
    }
    {
        int n = 1000;
        gsl_multifit_nlinear_fdf fdf;
        memset(&fdf, 0, sizeof fdf);
        fdf.f = p2_f;
        fdf.df = p2_df;
        fdf.n = (size_t)n + 2;
        fdf.p = (size_t)n;
        fdf.params = &n;
        gsl_multifit_nlinear_parameters par = lm_params(0);
        gsl_multifit_nlinear_workspace *ws =
            gsl_multifit_nlinear_alloc(gsl_multifit_nlinear_trust, &par, fdf.n, fdf.p);
        gsl_vector *x0 = gsl_vector_alloc((size_t)n);
        bp_p2_x0(n, x0->data);
        int reps = bp_reps(5);
        double t[5];
        run_out o;
        memset(&o, 0, sizeof o);
        for (int r = 0; r < reps; r++) {
            o = run_to_target(ws, &fdf, x0, BP_P2_TARGET, 1000);
            t[r] = o.time;
        }
        char extra[256];
        snprintf(extra, sizeof extra,
                 ", \"iters\": %d, \"evals\": %d, \"jacobians\": %d, \"E\": %.3g, \"status\": %d",
                 o.iters, o.nf, o.nj, o.E, o.status);
        bp_result("inner", "P2 vardim n=1000", "GSL LM cholesky", bp_median(t, reps), reps,
                  o.ok, extra);
        fprintf(stderr, "GSL P2: %.5f s, %d it, E = %.2e %s\n", bp_median(t, reps),
                o.iters, o.E, o.ok ? "" : "NOT REACHED");
        gsl_vector_free(x0);
        gsl_multifit_nlinear_free(ws);
    }
    return 0;
}

/* ------------------------------------------- P4 extended Rosenbrock */
/* gsl_multimin, vector_bfgs2 (BFGS with a More-Thuente-type line search,
   first step 0.01, line tolerance 0.1 as GSL's documentation suggests) on E
   and grad E; time to E <= 1e-20 checked after every iteration. */
static double p4_f(const gsl_vector *x, void *u) {
    return bp_p4_value_grad(*(int *)u, x->data, NULL);
}
static void p4_df(const gsl_vector *x, void *u, gsl_vector *g) {
    bp_p4_value_grad(*(int *)u, x->data, g->data);
}
static void p4_fdf(const gsl_vector *x, void *u, double *f, gsl_vector *g) {
    *f = bp_p4_value_grad(*(int *)u, x->data, g->data);
}

static int section_p4(void) {
    int n = BP_P4_N;
    gsl_multimin_function_fdf fn = {p4_f, p4_df, p4_fdf, (size_t)n, &n};
    gsl_multimin_fdfminimizer *mz =
        gsl_multimin_fdfminimizer_alloc(gsl_multimin_fdfminimizer_vector_bfgs2, (size_t)n);
    gsl_vector *x0 = gsl_vector_alloc((size_t)n);
    if (!mz || !x0) return -1;
    bp_p4_x0(n, x0->data);
    int reps = bp_reps(11), it = 0, st = 0;
    double t[11], E = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = bp_now();
        gsl_multimin_fdfminimizer_set(mz, &fn, x0, 0.01, 0.1);
        E = mz->f;
        for (it = 0; E > BP_P4_TARGET && it < 100000; it++) {
            st = gsl_multimin_fdfminimizer_iterate(mz);
            E = mz->f;
            if (st != GSL_SUCCESS) break; /* no progress (ENOPROG) */
        }
        t[r] = bp_now() - t0;
    }
    char extra[256];
    snprintf(extra, sizeof extra, ", \"iters\": %d, \"E\": %.3g, \"status\": %d", it, E, st);
    bp_result("inner", "P4 Rosenbrock n=1000", "GSL multimin vector_bfgs2",
              bp_median(t, reps), reps, E <= BP_P4_TARGET, extra);
    fprintf(stderr, "GSL multimin vector_bfgs2 P4: %.5f s, %d it, E = %.2e %s\n",
            bp_median(t, reps), it, E, E <= BP_P4_TARGET ? "" : "NOT REACHED");
    gsl_vector_free(x0);
    gsl_multimin_fdfminimizer_free(mz);
    return 0;
}

/* ---------------------------------------------------------------- NIST */
static int nist_f(const gsl_vector *b, void *u, gsl_vector *f) {
    const nist_problem *pr = u;
    nist_residuals(pr, b->data, f->data, NULL);
    return GSL_SUCCESS;
}
static int nist_df(const gsl_vector *b, void *u, gsl_matrix *J) {
    const nist_problem *pr = u;
    const nist_spec *sp = pr->spec;
    double df[NIST_MAX_PARAMS];
    for (int i = 0; i < pr->nobs; i++) {
        sp->f(b->data, pr->x + (size_t)i * sp->nx, df);
        for (int j = 0; j < sp->np; j++) gsl_matrix_set(J, (size_t)i, (size_t)j, -df[j]);
    }
    return GSL_SUCCESS;
}

static int section_nist(const char *nist_dir) {
    nist_problem prob[NIST_NUM_PROBLEMS];
    if (nist_load_all(prob, nist_dir) != 0) return -1;
    for (int qr = 0; qr < 2; qr++) {
        gsl_multifit_nlinear_parameters par = lm_params(qr);
        int reps = bp_reps(5), passed = 0, iters = 0;
        double t[5], lre_sum = 0, lre_min = 99;
        char fails[512] = "";
        for (int r = 0; r < reps; r++) {
            double tot = 0;
            passed = 0, iters = 0, lre_sum = 0, lre_min = 99, fails[0] = 0;
            for (int i = 0; i < NIST_NUM_PROBLEMS; i++) {
                nist_problem *pr = &prob[i];
                int np = pr->spec->np;
                gsl_multifit_nlinear_fdf fdf;
                memset(&fdf, 0, sizeof fdf);
                fdf.f = nist_f;
                fdf.df = nist_df;
                fdf.n = (size_t)pr->nobs;
                fdf.p = (size_t)np;
                fdf.params = pr;
                gsl_multifit_nlinear_workspace *ws = gsl_multifit_nlinear_alloc(
                    gsl_multifit_nlinear_trust, &par, fdf.n, fdf.p);
                gsl_vector *x0 = gsl_vector_alloc((size_t)np);
                for (int st = 0; st < 2; st++) {
                    for (int j = 0; j < np; j++) gsl_vector_set(x0, (size_t)j, pr->start[st][j]);
                    int info;
                    double t0 = bp_now();
                    gsl_multifit_nlinear_init(x0, &fdf, ws);
                    int rc = gsl_multifit_nlinear_driver(10000, 1e-15, 1e-15, 1e-15, NULL,
                                                         NULL, &info, ws);
                    tot += bp_now() - t0;
                    (void)rc;
                    const gsl_vector *b = gsl_multifit_nlinear_position(ws);
                    double lre = nist_lre(np, b->data, pr->cert);
                    int ok = lre >= NIST_MIN_LRE;
                    passed += ok;
                    iters += (int)gsl_multifit_nlinear_niter(ws);
                    lre_sum += lre;
                    lre_min = fmin(lre_min, lre);
                    if (!ok && strlen(fails) < sizeof fails - 40)
                        snprintf(fails + strlen(fails), sizeof fails - strlen(fails),
                                 "%s%s/%d", fails[0] ? " " : "", pr->spec->name, st + 1);
                }
                gsl_vector_free(x0);
                gsl_multifit_nlinear_free(ws);
            }
            t[r] = tot;
        }
        char extra[1024];
        snprintf(extra, sizeof extra,
                 ", \"passed\": %d, \"starts\": 38, \"avg_lre\": %.3f, \"min_lre\": %.3f, "
                 "\"iters\": %d, \"failures\": \"%s\"",
                 passed, lre_sum / 38, lre_min, iters, fails);
        bp_result("nist", "NIST 19 problems x 2 starts", qr ? "GSL LM QR" : "GSL LM cholesky",
                  bp_median(t, reps), reps, passed == 38, extra);
        fprintf(stderr, "GSL NIST %s: %d/38, avg LRE %.2f, %.4f s, failures: %s\n",
                qr ? "QR" : "cholesky", passed, lre_sum / 38, bp_median(t, reps), fails);
    }
    nist_free_all(prob);
    return 0;
}

int main(int argc, char **argv) {
    const char *nist_dir = NULL;
    int done = bp_parse_args(argc, argv, "bench_gsl", usage, &nist_dir);
    if (done >= 0) return done;
    gsl_set_error_handler_off();
    printf("VERSION gsl %s\n", GSL_VERSION);
    const char *dir = bp_data_dir(argc, argv);
    int rc = 0;
    if (bp_selected(argc, argv, "inner") && section_inner(dir) != 0) rc = 1;
    if (bp_selected(argc, argv, "p4") && section_p4() != 0) rc = 1;
    if (bp_selected(argc, argv, "nist") && section_nist(nist_dir) != 0) rc = 1;
    return rc;
}
