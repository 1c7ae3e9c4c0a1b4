/* The 19 NIST StRD nonlinear least-squares problems (the set Ceres Solver
 * tests), solved from both NIST starts with
 *   (a) value_grad only (the library differences the gradient for H), and
 *   (b) value_grad plus a Gauss-Newton Hessian J'J from the analytic Jacobian.
 *
 * Unknowns x = the model parameters b (n = their number), p = 0 and
 *   E(b) = 1/2 sum_i r_i^2,  r_i = y_i - f(x_i; b),  grad E = J' r, J = dr/db.
 *
 * Judged as Ceres judges: LRE = min over the parameters of
 * -log10(|b - b_cert| / |b_cert|), clipped to [0, 11]; a start passes when
 * LRE >= 4. Data files: tests/data/nist/<name>.dat (found through
 * WB_TEST_DATA). The models, their hand-written Jacobians, the parser and the
 * LRE are in tests/nist_models.h (shared with the benchmarks in bench/); the
 * Jacobians are checked against differences first. (Nelson's log(y) and
 * Roszman1's atan2 branch, with its certified b1: see that header.)
 */
#include <float.h>

#include "nist_models.h"
#include "wb_test.h"

typedef struct {
    nist_problem prob[NIST_NUM_PROBLEMS];
    int loaded;
} nist_state;

static int nist_setup(void **state) {
    nist_state *ns = calloc(1, sizeof *ns);
    if (!ns) return -1;
    *state = ns;
    return 0;
}

static int nist_teardown(void **state) {
    nist_state *ns = *state;
    if (ns)
        for (int i = 0; i < NIST_NUM_PROBLEMS; i++)
            nist_problem_free(&ns->prob[i]);
    free(ns);
    *state = NULL;
    return 0;
}

/* Loads all problems (once); a missing or malformed file fails the test. */
static nist_state *load_all(void **state) {
    nist_state *ns = *state;
    assert_non_null(ns);
    if (ns->loaded) return ns;
    const char *dir = getenv("WB_TEST_DATA"); /* as wb_test_data_path */
    if (!dir) dir = "tests/data";
    for (int i = 0; i < NIST_NUM_PROBLEMS; i++) {
        char msg[1400];
        if (nist_problem_load(&ns->prob[i], &nist_specs[i], dir, msg,
                              sizeof msg) != 0)
            fail_msg("%s", msg);
    }
    ns->loaded = 1;
    return ns;
}

/* ------------------------------------------------------------------------ */
/* The energy                                                                */
/* ------------------------------------------------------------------------ */


/* ------------------------------------------------------------------------ */
/* Tests                                                                     */
/* ------------------------------------------------------------------------ */

static void nist_files_parse_into_expected_sizes(void **state) {
    nist_state *ns = load_all(state);
    static const int nobs[NIST_NUM_PROBLEMS] = {214, 54, 6, 168, 250, 250, 250,
                                                236, 151, 24, 24, 24, 33, 14,
                                                14, 14, 14, 128, 25};
    for (int i = 0; i < NIST_NUM_PROBLEMS; i++) {
        const nist_problem *pr = &ns->prob[i];
        if (pr->nobs != nobs[i])
            fail_msg("%s: %d observations, expected %d", pr->spec->name,
                     pr->nobs, nobs[i]);
        assert_true(pr->rss > 0);
        for (int k = 0; k < pr->nobs; k++) {
            assert_true(isfinite(pr->y[k]));
            for (int j = 0; j < pr->spec->nx; j++)
                assert_true(isfinite(pr->x[(size_t)k * pr->spec->nx + j]));
        }
    }
    /* spot checks of the parsed numbers */
    const nist_problem *m = &ns->prob[13]; /* Misra1a */
    assert_string_equal(m->spec->name, "Misra1a");
    wb_assert_close(m->start[0][0], 500, 0, 0);
    wb_assert_close(m->start[1][1], 5e-4, 0, 1e-15);
    wb_assert_close(m->cert[1], 5.5015643181e-04, 0, 1e-15);
    wb_assert_close(m->y[0], 10.07, 0, 1e-15);
    wb_assert_close(m->x[13], 760.0, 0, 1e-15);
    wb_assert_close(m->rss, 1.2455138894e-01, 0, 1e-15);
    const nist_problem *nl = &ns->prob[17]; /* Nelson: log y, two x columns */
    assert_string_equal(nl->spec->name, "Nelson");
    wb_assert_close(nl->y[0], log(15.0), 0, 1e-15);
    wb_assert_close(nl->x[0], 1, 0, 0);
    wb_assert_close(nl->x[1], 180, 0, 0);
}

/* The analytic df/db of every model against central differences of f, at
   both starts and at the certified values; and grad E and J'J against
   the same differences. */
static void nist_model_jacobians_match_finite_differences(void **state) {
    nist_state *ns = load_all(state);
    for (int i = 0; i < NIST_NUM_PROBLEMS; i++) {
        const nist_problem *pr = &ns->prob[i];
        const nist_spec *sp = pr->spec;
        int np = sp->np;
        for (int at = 0; at < 3; at++) {
            const double *b0 = at < 2 ? pr->start[at] : pr->cert;
            double b[NIST_MAX_PARAMS], df[NIST_MAX_PARAMS];
            double worst = 0;
            int worst_j = -1, worst_i = -1;
            /* J: analytic, Jfd: central differences (step 1e-6 |b_j|),
               noise: their rounding error bound 100 eps max|f| / h */
            double *J = calloc((size_t)pr->nobs * np, sizeof(double));
            double *Jfd = calloc((size_t)pr->nobs * np, sizeof(double));
            double *noise = calloc((size_t)pr->nobs * np, sizeof(double));
            assert_non_null(J);
            assert_non_null(Jfd);
            assert_non_null(noise);
            for (int k = 0; k < pr->nobs; k++) {
                const double *xk = pr->x + (size_t)k * sp->nx;
                double f0 = sp->f(b0, xk, df);
                double f1 = sp->f(b0, xk, NULL);
                assert_true(f0 == f1); /* value independent of df request */
                for (int j = 0; j < np; j++) {
                    J[(size_t)j * pr->nobs + k] = df[j];
                    memcpy(b, b0, sizeof(double) * (size_t)np);
                    double h = 1e-6 * fabs(b0[j]);
                    b[j] = b0[j] + h;
                    double fp = sp->f(b, xk, NULL);
                    b[j] = b0[j] - h;
                    double fm = sp->f(b, xk, NULL);
                    Jfd[(size_t)j * pr->nobs + k] = (fp - fm) / (2 * h);
                    noise[(size_t)j * pr->nobs + k] =
                        100 * DBL_EPSILON *
                        fmax(fabs(f0), fmax(fabs(fp), fabs(fm))) / h;
                }
            }
            for (int j = 0; j < np; j++) {
                double scale = 0;
                for (int k = 0; k < pr->nobs; k++)
                    scale = fmax(scale, fabs(Jfd[(size_t)j * pr->nobs + k]));
                assert_true(scale > 0);
                /* error relative to the column's largest entry, beyond
                   the rounding noise of the difference */
                for (int k = 0; k < pr->nobs; k++) {
                    size_t jk = (size_t)j * pr->nobs + k;
                    double err = fmax(0, fabs(J[jk] - Jfd[jk]) - noise[jk]) /
                                 scale;
                    if (!(err <= worst)) {
                        worst = err;
                        worst_j = j;
                        worst_i = k;
                    }
                }
            }
            /* grad E = -J' r and the Gauss-Newton Hessian J'J, assembled
               from the (just checked) analytic J */
            double e, g[NIST_MAX_PARAMS], H[NIST_MAX_PARAMS * NIST_MAX_PARAMS];
            assert_int_equal(nist_vg((void *)pr, b0, NULL, &e, g), 0);
            assert_int_equal(nist_gn_hess((void *)pr, b0, NULL, H), 0);
            double e2, eref = 0;
            assert_int_equal(nist_vg((void *)pr, b0, NULL, &e2, NULL), 0);
            assert_true(e == e2);
            for (int k = 0; k < pr->nobs; k++) {
                double r = pr->y[k] - sp->f(b0, pr->x + (size_t)k * sp->nx, NULL);
                eref += 0.5 * r * r;
            }
            wb_assert_close(e, eref, 0, 1e-12);
            for (int j = 0; j < np; j++) {
                const double *Jj = J + (size_t)j * pr->nobs;
                double gj = 0, gabs = 0;
                for (int k = 0; k < pr->nobs; k++) {
                    double r = pr->y[k] -
                               sp->f(b0, pr->x + (size_t)k * sp->nx, NULL);
                    gj -= r * Jj[k];
                    gabs += fabs(r * Jj[k]);
                }
                if (!(fabs(g[j] - gj) <= 1e-12 * gabs))
                    fail_msg("%s: grad E[%d] = %.15g, -J'r = %.15g", sp->name,
                             j, g[j], gj);
                for (int c = 0; c < np; c++) {
                    const double *Jc = J + (size_t)c * pr->nobs;
                    double hjc = 0, habs = 0;
                    for (int k = 0; k < pr->nobs; k++) {
                        hjc += Jj[k] * Jc[k];
                        habs += fabs(Jj[k] * Jc[k]);
                    }
                    if (!(fabs(H[c * np + j] - hjc) <= 1e-12 * habs))
                        fail_msg("%s: H[%d,%d] = %.15g, J'J = %.15g", sp->name,
                                 j, c, H[c * np + j], hjc);
                }
            }
            free(J);
            free(Jfd);
            free(noise);
            if (!(worst <= 1e-6))
                fail_msg("%s (%s%s): df/db%d at observation %d is off by %.3g "
                         "(relative to the column's largest entry)",
                         sp->name, at < 2 ? "start " : "certified",
                         at == 0 ? "1" : at == 1 ? "2" : "", worst_j + 1,
                         worst_i + 1, worst);
        }
    }
}

static const char *reason_str(wb_stop_reason r) {
    switch (r) {
    case WB_STOP_GRAD: return "grad";
    case WB_STOP_STEP: return "step";
    case WB_STOP_F: return "f_tol";
    case WB_STOP_MAXITER: return "max_iter";
    case WB_STOP_STALLED: return "stalled";
    case WB_STOP_CANCELED: return "canceled";
    case WB_STOP_ERROR: return "error";
    case WB_STOP_PRECISION: return "precision";
    default: return "none";
    }
}

/* One set of settings for every problem and both modes. Stopping: the
 * gradient test is off (the certified minimizers have |g| far above any
 * fixed threshold in these units) and so is f_tol (a change of E at the
 * rounding level says little about b); the solves end on a step below
 * 1e-13 |b| or, once the steps are at the rounding level, as WB_STALLED.
 *
 * The solver's default initial damping (mu0 = 0.1, scaled by diag H) is
 * used. It matters for one start: from MGH17 start 1 the Gauss-Newton run
 * with mu0 <= 1e-2 takes a long first step that sends b5 to ~3800, where
 * exp(-x b5) underflows for every x > 0; b3 then fits only the x = 0
 * observation and the run converges (|g| -> 0, status WB_OK) to that
 * degenerate local minimizer, E = 1.2259e-2 instead of 2.7324e-5. A more
 * cautious first step avoids the trap; every other start passes in both
 * modes for any mu0 in [1e-6, 1]. */
static void nist_settings(wb_settings *s) {
    wb_settings_default(s);
    s->max_iter = 10000;
    s->grad_tol = 0;
    s->step_tol = 1e-13;
    s->f_tol = 0;
}

static const char *status_name(wb_status st) {
    switch (st) {
    case WB_OK: return "ok";
    case WB_MAXITER: return "maxiter";
    case WB_STALLED: return "stalled";
    case WB_CANCELED: return "canceled";
    default: return "ERROR";
    }
}

/* The Gauss-Newton product J'(J v) (for the matrix-free mode's hvp): the
   same matrix as nist_gn_hess, without forming it. */
static int nist_gn_hvp(void *u, const double *b, const double *w,
                       const double *v, double *Hv) {
    (void)w;
    const nist_problem *pr = (const nist_problem *)u;
    const nist_spec *sp = pr->spec;
    int np = sp->np;
    double df[NIST_MAX_PARAMS];
    for (int c = 0; c < np; c++) Hv[c] = 0;
    for (int i = 0; i < pr->nobs; i++) {
        sp->f(b, pr->x + (size_t)i * sp->nx, df);
        double jv = 0;
        for (int c = 0; c < np; c++) jv += df[c] * v[c];
        for (int c = 0; c < np; c++) Hv[c] += df[c] * jv;
    }
    return 0;
}

/* The ways test_nist solves every start. The dense ones must pass all 38;
   the matrix-free and L-BFGS ones must never return WB_OK short of the
   certified minimum (WB_OK is the stopping contract's claim of a
   minimizer) and must reach it at least min_pass times (a floor two
   below the count measured here: the borderline starts move with the
   floating-point kernels, e.g. under valgrind). */
typedef enum {
    NIST_DENSE_FD,   /* value_grad only, dense difference Hessian        */
    NIST_DENSE_GN,   /* dense Gauss-Newton Hessian                       */
    NIST_LBFGS,      /* WB_HESS_LBFGS, value_grad only                   */
    NIST_MFREE_FD,   /* WB_HESS_MATRIX_FREE on difference products       */
    NIST_MFREE_HVP   /* WB_HESS_MATRIX_FREE, hvp = Gauss-Newton product  */
} nist_mode;

/* Solves all 38 starts; prints a table; fails on any LRE < 4 or error
   (dense), on a WB_OK short of the minimum or fewer than min_pass
   starts at LRE >= 4 (the others). */
static void run_all(void **state, nist_mode mode, int min_pass) {
    nist_state *ns = load_all(state);
    static const char *names[] = {
        "general interface (difference Hessian)", "Gauss-Newton Hessian",
        "L-BFGS (value_grad only)", "matrix-free (difference products)",
        "matrix-free (Gauss-Newton hvp)"};
    const char *mname = names[mode];
    int strict = mode == NIST_DENSE_FD || mode == NIST_DENSE_GN;
    wb_settings s;
    nist_settings(&s);
    /* the extra modes under caps that keep the test to seconds (valgrind
       included): a start that needs more ends WB_MAXITER, never WB_OK */
    if (mode == NIST_LBFGS) {
        s.hessian = WB_HESS_LBFGS;
        s.lbfgs_max_iter = 5000;
    }
    if (mode == NIST_MFREE_FD || mode == NIST_MFREE_HVP) {
        s.hessian = WB_HESS_MATRIX_FREE;
        s.max_iter = 2000;
    }
    int passed = 0, total = 0, errors = 0, ok_short = 0;
    double lre_sum = 0;
    char failures[4096] = "";
    size_t flen = 0;
    printf("\nNIST StRD, %s: max_iter %d, grad_tol %g, step_tol %g, "
           "f_tol %g, mu0 %g\n", mname,
           mode == NIST_LBFGS ? s.lbfgs_max_iter : s.max_iter, s.grad_tol,
           s.step_tol, s.f_tol, s.mu0);
    printf("%-9s %5s %6s %6s %-8s %-9s %-15s %s\n", "problem", "start",
           "LRE", "iters", "status", "reason", "E", "certified E");
    for (int i = 0; i < NIST_NUM_PROBLEMS; i++) {
        nist_problem *pr = &ns->prob[i];
        const nist_spec *sp = pr->spec;
        wb_energy e = {sp->np, 0, pr, nist_vg,
                       mode == NIST_DENSE_GN ? nist_gn_hess : NULL, NULL, NULL};
        if (mode == NIST_MFREE_HVP) e.hvp = nist_gn_hvp;
        wb_solver *sv = NULL;
        assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
        for (int st = 0; st < 2; st++) {
            double b[NIST_MAX_PARAMS];
            memcpy(b, pr->start[st], sizeof(double) * (size_t)sp->np);
            wb_info info;
            wb_status rc = wb_solve(sv, NULL, b, &info);
            double lre = nist_lre(sp->np, b, pr->cert);
            int reached = rc >= 0 && lre >= NIST_MIN_LRE;
            int bad = strict ? !reached : rc == WB_OK && lre < NIST_MIN_LRE;
            total++;
            passed += reached;
            errors += rc < 0;
            ok_short += rc == WB_OK && lre < NIST_MIN_LRE;
            lre_sum += lre;
            printf("%-9s %5d %6.2f %6d %-8s %-9s %-15.8e %.8e%s\n",
                   sp->name, st + 1, lre, info.iterations, status_name(rc),
                   reason_str(info.reason), info.energy, 0.5 * pr->rss,
                   bad ? "  FAIL" : reached ? "" : "  (not reached)");
            if (rc != WB_OK)
                printf("          status %d: %s\n", (int)rc,
                       wb_solver_message(sv));
            if (bad && flen + 80 < sizeof failures)
                flen += (size_t)snprintf(failures + flen,
                                         sizeof failures - flen,
                                         " %s/start%d (LRE %.2f, status %d)",
                                         sp->name, st + 1, lre, (int)rc);
        }
        wb_solver_destroy(sv);
    }
    printf("NIST %s: %d/%d reach LRE %.0f, %d WB_OK short, %d errors, "
           "average LRE %.2f\n", mname, passed, total, NIST_MIN_LRE, ok_short,
           errors, lre_sum / total);
    fflush(stdout);
    if (strict && passed != total)
        fail_msg("NIST %s: %d/%d starts below LRE %.0f or with an error "
                 "(%d errors):%s", mname, total - passed, total, NIST_MIN_LRE,
                 errors, failures);
    if (ok_short > 0)
        fail_msg("NIST %s: %d starts returned WB_OK short of the certified "
                 "minimum:%s", mname, ok_short, failures);
    if (passed < min_pass)
        fail_msg("NIST %s: %d/%d starts reach LRE %.0f, expected at least %d",
                 mname, passed, total, NIST_MIN_LRE, min_pass);
}

static void nist_all_starts_pass_with_finite_difference_hessian(void **state) {
    run_all(state, NIST_DENSE_FD, 38);
}

static void nist_all_starts_pass_with_gauss_newton_hessian(void **state) {
    run_all(state, NIST_DENSE_GN, 38);
}

static void nist_lbfgs_never_ok_short_of_the_minimum(void **state) {
    run_all(state, NIST_LBFGS, 33); /* 35 measured */
}

static void nist_matrix_free_fd_never_ok_short_of_the_minimum(void **state) {
    run_all(state, NIST_MFREE_FD, 32); /* 34 measured */
}

static void nist_matrix_free_hvp_never_ok_short_of_the_minimum(void **state) {
    run_all(state, NIST_MFREE_HVP, 31); /* 33 measured */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(nist_files_parse_into_expected_sizes,
                                        nist_setup, nist_teardown),
        cmocka_unit_test_setup_teardown(
            nist_model_jacobians_match_finite_differences, nist_setup,
            nist_teardown),
        cmocka_unit_test_setup_teardown(
            nist_all_starts_pass_with_finite_difference_hessian, nist_setup,
            nist_teardown),
        cmocka_unit_test_setup_teardown(
            nist_all_starts_pass_with_gauss_newton_hessian, nist_setup,
            nist_teardown),
        cmocka_unit_test_setup_teardown(
            nist_lbfgs_never_ok_short_of_the_minimum, nist_setup,
            nist_teardown),
        cmocka_unit_test_setup_teardown(
            nist_matrix_free_fd_never_ok_short_of_the_minimum, nist_setup,
            nist_teardown),
        cmocka_unit_test_setup_teardown(
            nist_matrix_free_hvp_never_ok_short_of_the_minimum, nist_setup,
            nist_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
