/* Misuse and faults: every bad call gets a status and a message, never a
 * crash, a NaN or a leak (this suite also runs under ASan/UBSan). */
#include "energies.h"

static void null_and_bad_sizes_are_invalid(void **st) {
    (void)st;
    quad_t q;
    quad_init(&q, 3, 2, 1);
    wb_energy e = quad_energy(&q);
    wb_solver *sv = (wb_solver *)&e; /* must be overwritten with NULL */
    assert_int_equal(wb_solver_create(NULL, &e, NULL), WB_EINVAL);
    assert_int_equal(wb_solver_create(&sv, NULL, NULL), WB_EINVAL);
    assert_null(sv);
    wb_energy bad = e;
    bad.n = 0;
    assert_int_equal(wb_solver_create(&sv, &bad, NULL), WB_EINVAL);
    bad.n = -3;
    assert_int_equal(wb_solver_create(&sv, &bad, NULL), WB_EINVAL);
    bad = e;
    bad.p = -1;
    assert_int_equal(wb_solver_create(&sv, &bad, NULL), WB_EINVAL);
    bad = e;
    bad.value_grad = NULL;
    assert_int_equal(wb_solver_create(&sv, &bad, NULL), WB_EINVAL);
    assert_null(sv);

    /* NULL solver everywhere */
    double x[3] = {0}, w[2] = {1, 1}, g[3] = {1, 1, 1}, out[2], J[6];
    assert_int_equal(wb_solve(NULL, w, x, NULL), WB_EINVAL);
    assert_int_equal(wb_implicit_vjp(NULL, g, out), WB_EINVAL);
    assert_int_equal(wb_implicit_jacobian(NULL, J), WB_EINVAL);
    assert_int_equal(wb_implicit_vjp_at(NULL, w, x, g, out), WB_EINVAL);
    assert_int_equal(wb_solver_set_lambda(NULL, 1.0), WB_EINVAL);
    assert_string_equal(wb_solver_message(NULL), "no solver");
    wb_solver_destroy(NULL);
    wb_settings_default(NULL);
    wb_solver_deriv_info(NULL, NULL);

    /* NULL arrays on a valid solver */
    assert_int_equal(wb_solver_create(&sv, &e, NULL), WB_OK);
    assert_string_equal(wb_solver_message(sv), "");
    wb_info info;
    assert_int_equal(wb_solve(sv, w, NULL, &info), WB_EINVAL);
    assert_int_equal(info.status, WB_EINVAL);
    assert_non_null(strstr(wb_solver_message(sv), "x is NULL"));
    assert_int_equal(wb_solve(sv, NULL, x, NULL), WB_EINVAL);
    assert_non_null(strstr(wb_solver_message(sv), "w is NULL"));
    x[1] = NAN;
    assert_int_equal(wb_solve(sv, w, x, NULL), WB_EINVAL);
    assert_non_null(strstr(wb_solver_message(sv), "NaN"));
    x[1] = 0;
    assert_int_equal(wb_solve(sv, w, x, NULL), WB_OK);
    assert_int_equal(wb_implicit_vjp(sv, NULL, out), WB_EINVAL);
    assert_int_equal(wb_implicit_vjp(sv, g, NULL), WB_EINVAL);
    g[0] = INFINITY;
    assert_int_equal(wb_implicit_vjp(sv, g, out), WB_EINVAL);
    assert_int_equal(wb_implicit_jacobian(sv, NULL), WB_EINVAL);
    assert_int_equal(wb_implicit_vjp_at(sv, NULL, x, g, out), WB_EINVAL);
    assert_int_equal(wb_solver_set_lambda(sv, -1.0), WB_EINVAL);
    assert_int_equal(wb_solver_set_lambda(sv, NAN), WB_EINVAL);
    assert_non_null(strstr(wb_solver_message(sv), "lambda"));
    wb_solver_destroy(sv);
    quad_free(&q);
}

static void *only_alloc(void *ctx, size_t n) {
    (void)ctx;
    return malloc(n);
}

static void explain_says_why_create_refuses(void **st) {
    (void)st;
    quad_t q;
    quad_init(&q, 3, 1, 1);
    wb_energy e = quad_energy(&q);
    char msg[256];
    assert_int_equal(wb_solver_explain(&e, NULL, msg, sizeof msg), WB_OK);
    assert_string_equal(msg, "ok");
    e.kd = 5; /* >= n */
    wb_settings s;
    wb_settings_default(&s);
    s.hessian = WB_HESS_BANDED;
    assert_int_equal(wb_solver_explain(&e, &s, msg, sizeof msg), WB_EINVAL);
    assert_non_null(strstr(msg, "kd = 5"));
    e.kd = 0;
    s.lambda = -1;
    assert_int_equal(wb_solver_explain(&e, &s, msg, sizeof msg), WB_EINVAL);
    assert_non_null(strstr(msg, "lambda"));
    assert_int_equal(wb_solver_explain(NULL, NULL, msg, sizeof msg), WB_EINVAL);
    quad_free(&q);
}

static void bad_settings_are_invalid(void **st) {
    (void)st;
    quad_t q;
    quad_init(&q, 2, 1, 1);
    wb_energy e = quad_energy(&q);
    wb_solver *sv = NULL;
    wb_settings s;
    for (int k = 0; k < 12; k++) {
        wb_settings_default(&s);
        switch (k) {
        case 0: s.max_iter = -1; break;
        case 1: s.grad_tol = NAN; break;
        case 2: s.grad_tol = -1; break;
        case 3: s.step_tol = INFINITY; break;
        case 4: s.f_tol = -1e-3; break;
        case 5: s.lambda = -0.5; break;
        case 6: s.lambda = NAN; break;
        case 7: s.mu0 = 0; break;
        case 8: s.fd_step = 0; break;
        case 9: s.min_rcond = 2; break;
        case 10: s.scale_damping = 7; break;
        case 11: s.alloc = only_alloc; break;
        }
        assert_int_equal(wb_solver_create(&sv, &e, &s), WB_EINVAL);
        assert_null(sv);
    }
    wb_check_report rep;
    double x[2] = {0}, w[1] = {0};
    wb_settings_default(&s);
    s.fd_step = -1;
    assert_int_equal(wb_check_energy(&e, &s, x, w, &rep), WB_EINVAL);
    assert_int_equal(wb_check_energy(NULL, NULL, x, w, &rep), WB_EINVAL);
    assert_int_equal(wb_check_energy(&e, NULL, x, NULL, &rep), WB_EINVAL);
    quad_free(&q);
}

static void derivative_before_solve_is_refused(void **st) {
    (void)st;
    quad_t q;
    quad_init(&q, 3, 2, 1);
    wb_energy e = quad_energy(&q);
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, NULL), WB_OK);
    double g[3] = {1, 2, 3}, out[2] = {5, 5}, J[6];
    assert_int_equal(wb_implicit_vjp(sv, g, out), WB_ENOTSOLVED);
    assert_non_null(strstr(wb_solver_message(sv), "no successful wb_solve"));
    assert_true(out[0] == 5 && out[1] == 5);
    assert_int_equal(wb_implicit_jacobian(sv, J), WB_ENOTSOLVED);
    wb_deriv_info di;
    wb_solver_deriv_info(sv, &di);
    assert_int_equal(di.status, WB_ENOTSOLVED);
    wb_solver_destroy(sv);
    quad_free(&q);
}

/* value_grad that fails (returns 7) or returns NaN from evaluation k on. */
typedef struct { quad_t *q; int calls, fail_at, mode; } faulty_t;
static int faulty_vg(void *u, const double *x, const double *w, double *e,
                     double *g) {
    faulty_t *f = u;
    int rc = quad_vg(f->q, x, w, e, g);
    if (++f->calls >= f->fail_at) {
        if (f->mode == 0) return 7;
        if (f->mode == 1) *e = NAN;
        if (f->mode == 2 && g) g[0] = INFINITY;
    }
    return rc;
}
static int faulty_hess(void *u, const double *x, const double *w, double *H) {
    faulty_t *f = u;
    (void)x; (void)w;
    if (f->mode == 3) return -1;
    if (f->mode == 4) { quad_hess(f->q, x, w, H); H[1] = NAN; return 0; }
    return quad_hess(f->q, x, w, H);
}

static void failing_callbacks_stop_cleanly_with_best_point(void **st) {
    (void)st;
    quad_t q;
    quad_init(&q, 4, 1, 2);
    const wb_status expect[] = {WB_ECALLBACK, WB_ENONFINITE, WB_ENONFINITE,
                                WB_ECALLBACK, WB_ENONFINITE};
    const char *words[] = {"returned 7", "non-finite",
                           "non-finite", "hess returned",
                           "non-finite entries"};
    for (int mode = 0; mode < 5; mode++) {
        for (int fail_at = 1; fail_at <= 4; fail_at++) {
            faulty_t f = {&q, 0, mode >= 3 ? 1000 : fail_at, mode};
            wb_energy e = {4, 1, &f, faulty_vg, faulty_hess, NULL, NULL};
            wb_solver *sv = NULL;
            assert_int_equal(wb_solver_create(&sv, &e, NULL), WB_OK);
            double x[4] = {3, 3, 3, 3}, w[1] = {1}, e0, e1;
            quad_vg(&q, x, w, &e0, NULL);
            wb_info info;
            wb_status s = wb_solve(sv, w, x, &info);
            assert_int_equal(s, expect[mode]);
            assert_int_equal(info.status, expect[mode]);
            assert_non_null(strstr(wb_solver_message(sv), words[mode]));
            for (int i = 0; i < 4; i++) assert_true(isfinite(x[i]));
            quad_vg(&q, x, w, &e1, NULL);
            assert_true(e1 <= e0); /* best point so far, never worse */
            /* no derivative of a failed solve */
            double g[4] = {1, 1, 1, 1}, out[1] = {0};
            assert_int_equal(wb_implicit_vjp(sv, g, out), WB_ENOTSOLVED);
            wb_solver_destroy(sv);
            if (mode >= 3) break;
        }
    }
    quad_free(&q);
}

/* Faults at the k-th call, k = 1..5, on a robust energy that takes several
   Newton iterations from its start: value_grad returns an error, NaN or Inf;
   hess returns an error, NaN or a non-symmetric matrix. The solver stops
   with the fault's status and a message, and x holds the point it had
   reached (finite, its energy the last accepted one, never above the
   start's). NaN or Inf from value_grad at a trial point (k > 1) is not a
   stop: the step is rejected and the solve reaches the clean minimizer. */
typedef struct { phub_t *P; int calls, fail_at, kind; } kfault_t;
static int kf_vg(void *u, const double *x, const double *w, double *e,
                 double *g) {
    kfault_t *f = u;
    int rc = phub_vg(f->P, x, w, e, g);
    if (f->kind < 3 && ++f->calls == f->fail_at) {
        if (f->kind == 0) return 9;
        if (f->kind == 1) *e = NAN;
        if (f->kind == 2) {
            if (!g) *e = INFINITY;
            else g[1] = INFINITY;
        }
    }
    return rc;
}
static int kf_hess(void *u, const double *x, const double *w, double *H) {
    kfault_t *f = u;
    int rc = phub_hess(f->P, x, w, H);
    int n = f->P->n;
    if (f->kind >= 3 && ++f->calls == f->fail_at) {
        if (f->kind == 3) return -2;
        if (f->kind == 4) H[n + 1] = NAN;
        if (f->kind == 5) H[1] += 1.0; /* H[1,0] != H[0,1] */
    }
    return rc;
}
/* the energy of the current (accepted) x after each iteration */
static int last_accepted(void *u, const wb_progress *pr) {
    *(double *)u = pr->energy;
    return 0;
}
static void faults_at_call_k_keep_the_best_point(void **st) {
    (void)st;
    enum { N = 5, M = 12 };
    phub_t P;
    phub_init(&P, N, M, 3);
    const wb_status expect[] = {WB_ECALLBACK, WB_ENONFINITE, WB_ENONFINITE,
                                WB_ECALLBACK, WB_ENONFINITE, WB_ECALLBACK};
    double w[M];
    for (int i = 0; i < M; i++) w[i] = 1.0;
    /* a clean run: how many iterations the faults can interrupt */
    wb_energy e0 = phub_energy(&P);
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e0, NULL), WB_OK);
    double x[N], xs[N] = {4, -3, 5, 2, -4}, E0, E1;
    memcpy(x, xs, sizeof x);
    wb_info info;
    assert_int_equal(wb_solve(sv, w, x, &info), WB_OK);
    wb_solver_destroy(sv);
    assert_true(info.iterations >= 4);
    double xclean[N];
    memcpy(xclean, x, sizeof x);
    phub_vg(&P, xs, w, &E0, NULL);
    int progressed = 0;
    for (int kind = 0; kind < 6; kind++) {
        for (int k = 1; k <= 5; k++) {
            kfault_t f = {&P, 0, k, kind};
            wb_energy e = {N, M, &f, kf_vg, kf_hess, NULL, NULL};
            double cur = E0; /* E at the solver's current x */
            wb_settings set;
            wb_settings_default(&set);
            set.progress = last_accepted;
            set.progress_user = &cur;
            assert_int_equal(wb_solver_create(&sv, &e, &set), WB_OK);
            memcpy(x, xs, sizeof x);
            wb_status r = wb_solve(sv, w, x, &info);
            if ((kind == 1 || kind == 2) && k > 1) {
                /* NaN / Inf at a trial point: that step is rejected and the
                   solve goes on (an energy may be undefined off its
                   domain) to the clean run's minimizer */
                assert_int_equal(r, WB_OK);
                for (int i = 0; i < N; i++) wb_assert_close(x[i], xclean[i], 1e-8, 1e-8);
                wb_solver_destroy(sv);
                continue;
            }
            if (r != expect[kind])
                fail_msg("fault %d at call %d: status %d, expected %d (%s)",
                         kind, k, r, expect[kind], wb_solver_message(sv));
            assert_true(wb_solver_message(sv)[0] != '\0');
            for (int i = 0; i < N; i++) assert_true(isfinite(x[i]));
            phub_vg(&P, x, w, &E1, NULL);
            assert_true(E1 <= E0);
            /* the point the solver had reached, not the start */
            if (!(E1 <= cur))
                fail_msg("fault %d at call %d after %d iterations: E = %g, "
                         "the solver's current E %g (%s)", kind, k,
                         info.iterations, E1, cur, wb_solver_message(sv));
            if (cur < E0) progressed++;
            wb_solver_destroy(sv);
        }
    }
    assert_true(progressed >= 6); /* faults did land after accepted steps */
    phub_free(&P);
}

static int bad_mixed_vjp(void *u, const double *x, const double *w,
                         const double *v, double *out) {
    (void)u; (void)x; (void)w; (void)v; (void)out;
    return 3;
}
static int nan_mixed(void *u, const double *x, const double *w, double *B) {
    quad_t *q = u;
    quad_mixed(q, x, w, B);
    B[0] = NAN;
    return 0;
}

static void failing_mixed_callbacks_give_status_not_nan(void **st) {
    (void)st;
    quad_t q;
    quad_init(&q, 3, 2, 4);
    wb_energy e = quad_energy(&q);
    e.mixed_vjp = bad_mixed_vjp;
    e.mixed = nan_mixed;
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, NULL), WB_OK);
    double x[3] = {0}, w[2] = {1, 2}, g[3] = {1, 0, 0}, out[2] = {9, 9}, J[6];
    assert_int_equal(wb_solve(sv, w, x, NULL), WB_OK);
    assert_int_equal(wb_implicit_vjp(sv, g, out), WB_ECALLBACK);
    assert_non_null(strstr(wb_solver_message(sv), "mixed_vjp returned 3"));
    assert_true(out[0] == 9 && out[1] == 9);
    assert_int_equal(wb_implicit_jacobian(sv, J), WB_ENONFINITE);
    wb_solver_destroy(sv);
    quad_free(&q);
}

/* Not positive definite at x* with lambda = 0: E = -x^2/2 + x^4/4 - w x has
   minimizers near +-1; at the local maximum x = 0 (w = 0) H = -1. */
static int dwell_vg(void *u, const double *x, const double *w, double *e,
                    double *g) {
    (void)u;
    *e = -0.5 * x[0] * x[0] + 0.25 * x[0] * x[0] * x[0] * x[0] - w[0] * x[0];
    if (g) g[0] = -x[0] + x[0] * x[0] * x[0] - w[0];
    return 0;
}
static void indefinite_hessian_without_damping_is_singular_not_nan(void **st) {
    (void)st;
    wb_energy e = {1, 1, NULL, dwell_vg, NULL, NULL, NULL};
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, NULL), WB_OK);
    double x[1] = {0}, w[1] = {0}, g[1] = {1}, out[1] = {4};
    /* at the stationary point x = 0 (gradient 0; wb_solve would leave
       it along the negative curvature) the Hessian is -1 */
    assert_int_equal(wb_implicit_vjp_at(sv, w, x, g, out), WB_ESINGULAR);
    assert_true(out[0] == 4);
    assert_non_null(strstr(wb_solver_message(sv), "not positive definite"));
    /* lambda = 2: (H + 2)^-1 = 1, B = -1, dl/dw = -B v = 1 */
    assert_int_equal(wb_solver_set_lambda(sv, 2.0), WB_OK);
    assert_int_equal(wb_implicit_vjp_at(sv, w, x, g, out), WB_OK);
    wb_assert_close(out[0], 1.0, 1e-7, 1e-7);
    wb_solver_destroy(sv);
}

/* E = 10 x - log(x) (minimizer x = 0.1) is NaN for x < 0: a trial step that
   leaves the domain is rejected and shrunk, and the solve still converges. */
static int barrier_vg(void *u, const double *x, const double *w, double *e,
                      double *g) {
    (void)u; (void)w;
    *e = 10 * x[0] - log(x[0]);
    if (g) g[0] = 10 - 1 / x[0];
    return 0;
}
static int barrier_hess(void *u, const double *x, const double *w, double *H) {
    (void)u; (void)w;
    H[0] = 1 / (x[0] * x[0]);
    return 0;
}
static void nonfinite_trial_point_is_rejected_not_fatal(void **st) {
    (void)st;
    wb_energy e = {1, 0, NULL, barrier_vg, barrier_hess, NULL, NULL};
    wb_settings s;
    wb_settings_default(&s);
    s.mu0 = 1e-6; /* nearly a Newton step: from x = 1 it jumps to x < 0 */
    s.grad_tol = 1e-12;
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
    double x[1] = {1.0};
    wb_info info;
    assert_int_equal(wb_solve(sv, NULL, x, &info), WB_OK);
    wb_assert_close(x[0], 0.1, 1e-9, 0);
    assert_true(info.iterations > 1);
    wb_solver_destroy(sv);
}

/* A Hessian that is not symmetric (beyond rounding) is a callback bug. */
static int asym_hess(void *u, const double *x, const double *w, double *H) {
    quad_hess(u, x, w, H);
    H[1] += 1e-3; /* H(1,0) != H(0,1) */
    return 0;
}
static void non_symmetric_hessian_is_a_callback_error(void **st) {
    (void)st;
    quad_t q;
    quad_init(&q, 3, 1, 6);
    wb_energy e = quad_energy(&q);
    e.hess = asym_hess;
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, NULL), WB_OK);
    double x[3] = {1, 1, 1}, w[1] = {1};
    assert_int_equal(wb_solve(sv, w, x, NULL), WB_ECALLBACK);
    assert_non_null(strstr(wb_solver_message(sv), "non-symmetric"));
    wb_solver_destroy(sv);
    quad_free(&q);
}

/* The k-th allocation fails, for every k: WB_ENOMEM, nothing leaks. */
static void allocation_failure_at_every_point_is_clean(void **st) {
    (void)st;
    quad_t q;
    quad_init(&q, 3, 2, 1);
    wb_energy e = quad_energy(&q);
    int total = -1;
    for (int k = 1; k < 100; k++) {
        failalloc_t f = {0, k, 0};
        wb_settings s;
        wb_settings_default(&s);
        s.alloc = fail_alloc;
        s.dealloc = fail_free;
        s.alloc_ctx = &f;
        wb_solver *sv = NULL;
        wb_status r = wb_solver_create(&sv, &e, &s);
        if (r == WB_OK) { /* k beyond the number of allocations */
            total = f.count;
            wb_solver_destroy(sv);
            assert_int_equal(f.live, 0);
            break;
        }
        assert_int_equal(r, WB_ENOMEM);
        assert_null(sv);
        assert_int_equal(f.live, 0);
    }
    assert_true(total > 5);
    /* the checker too */
    failalloc_t f = {0, 1, 0};
    wb_settings s;
    wb_settings_default(&s);
    s.alloc = fail_alloc;
    s.dealloc = fail_free;
    s.alloc_ctx = &f;
    double x[3] = {0}, w[2] = {0};
    wb_check_report rep;
    assert_int_equal(wb_check_energy(&e, &s, x, w, &rep), WB_ENOMEM);
    quad_free(&q);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(null_and_bad_sizes_are_invalid),
        cmocka_unit_test(bad_settings_are_invalid),
        cmocka_unit_test(explain_says_why_create_refuses),
        cmocka_unit_test(derivative_before_solve_is_refused),
        cmocka_unit_test(failing_callbacks_stop_cleanly_with_best_point),
        cmocka_unit_test(faults_at_call_k_keep_the_best_point),
        cmocka_unit_test(failing_mixed_callbacks_give_status_not_nan),
        cmocka_unit_test(indefinite_hessian_without_damping_is_singular_not_nan),
        cmocka_unit_test(nonfinite_trial_point_is_rejected_not_fatal),
        cmocka_unit_test(non_symmetric_hessian_is_a_callback_error),
        cmocka_unit_test(allocation_failure_at_every_point_is_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
