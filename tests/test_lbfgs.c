/* The L-BFGS solve mode (settings.hessian = WB_HESS_LBFGS): minimizers of
 * problems with known answers, the stopping contract (a saddle is left, never
 * returned), the implicit derivative at its x* against closed forms, finite
 * differences and the dense mode, the accuracy report, bad settings, NaN
 * from callbacks, and no allocation after wb_solver_create. */
#include "wb_test.h"

/* ---- extended Rosenbrock: E = sum_k (1 - x_2k)^2 + 100 (x_2k+1 - x_2k^2)^2,
   x* = 1, E* = 0 ------------------------------------------------------- */
typedef struct { int n, nan_after, calls; } rb_t;
static int rb_vg(void *u, const double *x, const double *w, double *e, double *g) {
    (void)w;
    rb_t *p = u;
    p->calls++;
    double E = 0;
    for (int i = 0; i < p->n; i += 2) {
        double t1 = 1 - x[i], t2 = 10 * (x[i + 1] - x[i] * x[i]);
        E += t1 * t1 + t2 * t2;
        if (g) {
            g[i + 1] = 20 * t2;
            g[i] = -2 * (x[i] * g[i + 1] + t1);
        }
    }
    *e = E;
    /* NaN in the gradient outside |x_0| < 2 (a domain), or after a number
       of calls */
    if (g && (fabs(x[0]) >= 2 || (p->nan_after > 0 && p->calls > p->nan_after)))
        g[0] = NAN;
    return 0;
}

static wb_energy rb_energy(rb_t *p) {
    wb_energy e = {0};
    e.n = p->n;
    e.user = p;
    e.value_grad = rb_vg;
    return e;
}

static wb_settings lbfgs_settings(void) {
    wb_settings s;
    wb_settings_default(&s);
    s.hessian = WB_HESS_LBFGS;
    return s;
}

static void rb_start(int n, double *x) {
    for (int i = 0; i < n; i += 2) x[i] = -1.2, x[i + 1] = 1.0;
}

static void lbfgs_reaches_extended_rosenbrock_n1000(void **st) {
    (void)st;
    enum { N = 1000 };
    rb_t p = {N, 0, 0};
    wb_energy e = rb_energy(&p);
    wb_settings s = lbfgs_settings();
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
    static double x[N];
    rb_start(N, x);
    wb_info info;
    assert_int_equal(wb_solve(sv, NULL, x, &info), WB_OK);
    assert_int_equal(info.hessian, WB_HESS_LBFGS);
    assert_int_equal(info.hess_evaluations, 1); /* the second-order test's */
    assert_int_equal(info.second_order, 1);
    assert_true(info.grad_norm <= s.grad_tol || info.reason != WB_STOP_GRAD);
    for (int i = 0; i < N; i++) wb_assert_close(x[i], 1.0, 1e-8, 0);
    /* quasi-Newton: tens of iterations, about a gradient each, where the
       Newton modes need Hessians */
    assert_true(info.iterations < 200);
    print_message("    n = %d: %d iterations, %d gradients, E = %.2e, %s\n", N,
                  info.iterations, info.evaluations, info.energy,
                  wb_solver_message(sv));
    wb_solver_destroy(sv);
}

/* ---- a strictly convex quadratic with known x* and d(x*)/dw --------------
   E(x; w) = 1/2 x'Ax - x'C w, A tridiagonal (diag a_i = 3 + (i mod 4),
   off-diagonal -1), C_ij = cos(i + 2j) / (1 + j): x* = A^-1 C w,
   d(x*)/dw = A^-1 C, solved here by the Thomas algorithm (independent). */
enum { QN = 60, QP = 3 };
static double qa(int i) { return 3.0 + i % 4; }
static double qc(int i, int j) { return cos(i + 2.0 * j) / (1.0 + j); }
static int q_vg(void *u, const double *x, const double *w, double *e, double *g) {
    (void)u;
    double E = 0;
    for (int i = 0; i < QN; i++) {
        double Ax = qa(i) * x[i] - (i > 0 ? x[i - 1] : 0) - (i + 1 < QN ? x[i + 1] : 0);
        double cw = 0;
        for (int j = 0; j < QP; j++) cw += qc(i, j) * w[j];
        E += 0.5 * x[i] * Ax - x[i] * cw;
        if (g) g[i] = Ax - cw;
    }
    *e = E;
    return 0;
}
static int q_hvp(void *u, const double *x, const double *w, const double *v,
                 double *Hv) {
    (void)u, (void)x, (void)w;
    for (int i = 0; i < QN; i++)
        Hv[i] = qa(i) * v[i] - (i > 0 ? v[i - 1] : 0) - (i + 1 < QN ? v[i + 1] : 0);
    return 0;
}
static int q_mixed_vjp(void *u, const double *x, const double *w,
                       const double *v, double *out) {
    (void)u, (void)x, (void)w;
    for (int j = 0; j < QP; j++) { /* B = d/dw grad = -C */
        out[j] = 0;
        for (int i = 0; i < QN; i++) out[j] -= qc(i, j) * v[i];
    }
    return 0;
}
/* y = A^-1 b (Thomas: A is tridiagonal, diagonally dominant) */
static void thomas(const double *b, double *y) {
    double cp[QN], dp[QN];
    for (int i = 0; i < QN; i++) {
        /* sub- and super-diagonal -1: den = a_i - (-1) c'_{i-1} */
        double den = qa(i) - (i > 0 ? (-1.0) * cp[i - 1] : 0);
        cp[i] = -1.0 / den;
        dp[i] = (b[i] - (i > 0 ? (-1.0) * dp[i - 1] : 0)) / den;
    }
    for (int i = QN - 1; i >= 0; i--) y[i] = dp[i] - (i + 1 < QN ? cp[i] * y[i + 1] : 0);
}
static wb_energy q_energy(int with_hvp) {
    wb_energy e = {0};
    e.n = QN;
    e.p = QP;
    e.value_grad = q_vg;
    if (with_hvp) e.hvp = q_hvp;
    e.mixed_vjp = q_mixed_vjp;
    return e;
}

static void lbfgs_finds_the_quadratic_minimizer_and_its_derivative(void **st) {
    (void)st;
    double w[QP] = {1.0, -0.5, 2.0}, cw[QN], xs[QN], J[QN * QP], Jref[QN * QP];
    for (int i = 0; i < QN; i++) {
        cw[i] = 0;
        for (int j = 0; j < QP; j++) cw[i] += qc(i, j) * w[j];
    }
    thomas(cw, xs);
    for (int j = 0; j < QP; j++) { /* d(x*)/dw = A^-1 C */
        double c[QN];
        for (int i = 0; i < QN; i++) c[i] = qc(i, j);
        thomas(c, Jref + (size_t)j * QN);
    }
    for (int hv = 0; hv < 2; hv++) { /* exact products, then differences */
        wb_energy e = q_energy(hv == 0);
        wb_settings s = lbfgs_settings();
        s.grad_tol = 1e-11;
        wb_solver *sv = NULL;
        assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
        double x[QN] = {0};
        wb_info info;
        assert_int_equal(wb_solve(sv, w, x, &info), WB_OK);
        for (int i = 0; i < QN; i++) wb_assert_close(x[i], xs[i], 1e-10, 0);
        assert_int_equal(wb_implicit_jacobian(sv, J), WB_OK);
        double tol = hv == 0 ? 1e-8 : 1e-5;
        for (int k = 0; k < QN * QP; k++) wb_assert_close(J[k], Jref[k], tol, 0);
        /* the accuracy report: ||x - x*|| of x_error's size, the
           adjoint's error bound small */
        wb_deriv_info di;
        wb_solver_deriv_info(sv, &di);
        double err = 0;
        for (int i = 0; i < QN; i++) err += (x[i] - xs[i]) * (x[i] - xs[i]);
        assert_true(di.x_error > 0 && isfinite(di.x_error));
        assert_true(sqrt(err) <= 10 * di.x_error + 1e-13); /* + Thomas' rounding */
        assert_true(di.adjoint_error < 1e-3);
        wb_solver_destroy(sv);
    }
}

static void a_loose_solve_reports_a_larger_x_error(void **st) {
    (void)st;
    double w[QP] = {1.0, -0.5, 2.0}, dl[QN], out[QP], xe[2], cw[QN], xs[QN];
    for (int i = 0; i < QN; i++) dl[i] = sin(i);
    for (int i = 0; i < QN; i++) {
        cw[i] = 0;
        for (int j = 0; j < QP; j++) cw[i] += qc(i, j) * w[j];
    }
    thomas(cw, xs);
    for (int k = 0; k < 2; k++) {
        wb_energy e = q_energy(1);
        wb_settings s = lbfgs_settings();
        s.grad_tol = k ? 1e-3 : 1e-11;
        wb_solver *sv = NULL;
        assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
        double x[QN] = {0};
        assert_int_equal(wb_solve(sv, w, x, NULL), WB_OK);
        assert_int_equal(wb_implicit_vjp(sv, dl, out), WB_OK);
        wb_deriv_info di;
        wb_solver_deriv_info(sv, &di);
        xe[k] = di.x_error;
        double err = 0;
        for (int i = 0; i < QN; i++) err += (x[i] - xs[i]) * (x[i] - xs[i]);
        print_message("    grad_tol %g: ||x - x*|| = %.3g, x_error %.3g\n",
                      s.grad_tol, sqrt(err), xe[k]);
        /* an estimate (matrix-free sigma is CG's smallest Rayleigh
           quotient, above H's smallest eigenvalue): the right size */
        assert_true(sqrt(err) <= 10 * xe[k] + 1e-13);
        wb_solver_destroy(sv);
    }
    assert_true(xe[1] > 1e3 * xe[0]);
    assert_true(xe[1] < 1e-2); /* |g| <= 1e-3 with curvature >= 1 */
}

/* ---- a non-quadratic energy: L-BFGS's derivative against the dense mode's
   and against central differences of x*(w) ----------------------------
   E = sum_i 1/2 a_i (x_i - w_{i mod p})^2 + 1/4 x_i^4 + 1/2 (x_{i+1} - x_i)^2 */
enum { NN = 150, NP = 4 };
static int nq_vg(void *u, const double *x, const double *w, double *e, double *g) {
    (void)u;
    double E = 0;
    if (g) memset(g, 0, sizeof(double) * NN);
    for (int i = 0; i < NN; i++) {
        double a = 1 + 0.5 * (i % 3), r = x[i] - w[i % NP];
        E += 0.5 * a * r * r + 0.25 * x[i] * x[i] * x[i] * x[i];
        if (g) g[i] += a * r + x[i] * x[i] * x[i];
        if (i + 1 < NN) {
            double d = x[i + 1] - x[i];
            E += 0.5 * d * d;
            if (g) g[i + 1] += d, g[i] -= d;
        }
    }
    *e = E;
    return 0;
}

static void lbfgs_derivative_agrees_with_dense_and_differences(void **st) {
    (void)st;
    double w[NP] = {0.7, -1.3, 2.1, 0.2};
    static double J[2][NN * NP];
    double x[2][NN];
    for (int m = 0; m < 2; m++) {
        wb_energy e = {0};
        e.n = NN;
        e.p = NP;
        e.value_grad = nq_vg;
        wb_settings s;
        wb_settings_default(&s);
        s.hessian = m ? WB_HESS_DENSE : WB_HESS_LBFGS;
        s.grad_tol = 1e-10;
        wb_solver *sv = NULL;
        assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
        memset(x[m], 0, sizeof x[m]);
        assert_int_equal(wb_solve(sv, w, x[m], NULL), WB_OK);
        assert_int_equal(wb_implicit_jacobian(sv, J[m]), WB_OK);
        if (m == 0) {
            /* against central differences of x*(w), re-solved by L-BFGS
               from x* to |g|_inf <= 1e-12: (x*(w + h e_j) - x*(w - h e_j)) / 2h */
            s.grad_tol = 1e-12;
            s.step_tol = 0; /* the gradient decides, not a relative step */
            wb_solver *fd = NULL;
            assert_int_equal(wb_solver_create(&fd, &e, &s), WB_OK);
            double h = 1e-5, xp[NN], xm[NN], wp[NP];
            for (int j = 0; j < NP; j++) {
                memcpy(wp, w, sizeof wp);
                wp[j] = w[j] + h;
                memcpy(xp, x[0], sizeof xp);
                assert_true(wb_solve(fd, wp, xp, NULL) >= 0);
                wp[j] = w[j] - h;
                memcpy(xm, x[0], sizeof xm);
                assert_true(wb_solve(fd, wp, xm, NULL) >= 0);
                for (int i = 0; i < NN; i++)
                    wb_assert_close(J[0][(size_t)j * NN + i],
                                    (xp[i] - xm[i]) / (2 * h), 1e-6, 0);
            }
            wb_solver_destroy(fd);
        }
        wb_solver_destroy(sv);
    }
    for (int i = 0; i < NN; i++) wb_assert_close(x[0][i], x[1][i], 1e-9, 0);
    double jmax = 0;
    for (int k = 0; k < NN * NP; k++) jmax = fmax(jmax, fabs(J[1][k]));
    for (int k = 0; k < NN * NP; k++) wb_assert_close(J[0][k], J[1][k], 1e-5 * jmax, 0);
}

/* ---- the stopping contract: a saddle is left --------------------------
   E = x0^2 + x1^4 / 4 - x1^2 / 2 from (1, 0): the gradient never moves x1,
   L-BFGS reaches the saddle (0, 0) with g = 0; the second-order test finds
   the negative curvature and the solve goes on to x1 = +-1. */
static int sad_vg(void *u, const double *x, const double *w, double *e, double *g) {
    (void)u, (void)w;
    *e = x[0] * x[0] + 0.25 * pow(x[1], 4) - 0.5 * x[1] * x[1];
    if (g) g[0] = 2 * x[0], g[1] = x[1] * x[1] * x[1] - x[1];
    return 0;
}

static void lbfgs_leaves_a_saddle_instead_of_reporting_it(void **st) {
    (void)st;
    wb_energy e = {0};
    e.n = 2;
    e.value_grad = sad_vg;
    wb_settings s = lbfgs_settings();
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
    double x[2] = {1.0, 0.0};
    wb_info info;
    assert_int_equal(wb_solve(sv, NULL, x, &info), WB_OK);
    assert_true(info.escapes >= 1);
    wb_assert_close(fabs(x[1]), 1.0, 1e-6, 0);
    wb_assert_close(x[0], 0.0, 1e-6, 0);
    assert_int_equal(info.second_order, 1);
    wb_solver_destroy(sv);
}

/* ---- limits, bad settings, NaN ------------------------------------------ */
static void lbfgs_iteration_cap_is_maxiter(void **st) {
    (void)st;
    rb_t p = {10, 0, 0};
    wb_energy e = rb_energy(&p);
    wb_settings s = lbfgs_settings();
    s.lbfgs_max_iter = 3;
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
    double x[10];
    rb_start(10, x);
    wb_info info;
    assert_int_equal(wb_solve(sv, NULL, x, &info), WB_MAXITER);
    assert_int_equal(info.iterations, 3);
    assert_int_equal(info.second_order, 0);
    wb_solver_destroy(sv);
}

static void bad_lbfgs_settings_are_refused(void **st) {
    (void)st;
    rb_t p = {10, 0, 0};
    wb_energy e = rb_energy(&p);
    struct { int mem, maxit; const char *says; } bad[] = {
        {0, 0, "lbfgs_memory = 0"}, {-2, 0, "lbfgs_memory = -2"},
        {1001, 0, "lbfgs_memory = 1001"}, {8, -1, "lbfgs_max_iter = -1"}};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        wb_settings s = lbfgs_settings();
        s.lbfgs_memory = bad[k].mem;
        s.lbfgs_max_iter = bad[k].maxit;
        wb_solver *sv = (wb_solver *)&p; /* set to NULL on failure */
        assert_int_equal(wb_solver_create(&sv, &e, &s), WB_EINVAL);
        assert_null(sv);
        assert_non_null(strstr(wb_last_error(), bad[k].says));
    }
    wb_settings s = lbfgs_settings();
    s.hessian = (wb_hessian_kind)5;
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, &s), WB_EINVAL);
}

static void nan_gradients_are_handled(void **st) {
    (void)st;
    enum { N = 10 };
    double x[N];
    wb_info info;
    wb_settings s = lbfgs_settings();
    wb_energy e = {0};
    e.n = N;
    e.value_grad = rb_vg;
    /* NaN outside |x_0| < 2: trial points there are shortened, and the
       solve still reaches x* */
    rb_t p = {N, 0, 0};
    e.user = &p;
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
    rb_start(N, x);
    x[0] = -1.9;
    assert_int_equal(wb_solve(sv, NULL, x, &info), WB_OK);
    for (int i = 0; i < N; i++) wb_assert_close(x[i], 1.0, 1e-7, 0);
    /* NaN at the start: WB_ENONFINITE */
    x[0] = 3.0;
    assert_int_equal(wb_solve(sv, NULL, x, &info), WB_ENONFINITE);
    assert_non_null(strstr(wb_solver_message(sv), "non-finite gradient"));
    /* NaN everywhere after a few calls: WB_ENONFINITE with a message, x
       the best point (finite) */
    rb_t q = {N, 5, 0};
    e.user = &q;
    assert_int_equal(wb_solver_set_energy(sv, &e), WB_OK);
    rb_start(N, x);
    assert_int_equal(wb_solve(sv, NULL, x, &info), WB_ENONFINITE);
    assert_non_null(strstr(wb_solver_message(sv), "non-finite"));
    for (int i = 0; i < N; i++) assert_true(isfinite(x[i]));
    assert_int_equal(wb_implicit_vjp(sv, x, NULL), WB_ENOTSOLVED);
    wb_solver_destroy(sv);
}

/* AUTO resolves a gradients-only energy at n > 100 to L-BFGS; rebinding
   the solver keeps that kind: an energy that would resolve to another
   (hvp given: matrix-free) is refused with the kinds named. */
static void set_energy_keeps_the_lbfgs_kind(void **st) {
    (void)st;
    rb_t p = {200, 0, 0};
    wb_energy e = rb_energy(&p);
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, NULL), WB_OK); /* AUTO */
    double x[200];
    rb_start(200, x);
    wb_info info;
    assert_int_equal(wb_solve(sv, NULL, x, &info), WB_OK);
    assert_int_equal(info.hessian, WB_HESS_LBFGS);
    rb_t q = {100, 0, 0}; /* n <= 100 with value_grad only: dense */
    wb_energy f = rb_energy(&q);
    assert_int_equal(wb_solver_set_energy(sv, &f), WB_EINVAL);
    assert_non_null(strstr(wb_solver_message(sv), "kind 1"));
    q.n = 150;
    f = rb_energy(&q);
    assert_int_equal(wb_solver_set_energy(sv, &f), WB_OK);
    rb_start(150, x);
    assert_int_equal(wb_solve(sv, NULL, x, &info), WB_OK);
    for (int i = 0; i < 150; i++) wb_assert_close(x[i], 1.0, 1e-7, 0);
    wb_solver_destroy(sv);
}

/* Every allocation happens in wb_solver_create: solves and derivatives
   with a counting allocator add none, and destroy frees them all. */
static void no_allocation_after_create(void **st) {
    (void)st;
    failalloc_t mem = {0, 0, 0};
    wb_energy e = q_energy(0);
    wb_settings s = lbfgs_settings();
    s.alloc = fail_alloc;
    s.dealloc = fail_free;
    s.alloc_ctx = &mem;
    s.lbfgs_memory = 5;
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
    int made = mem.count;
    double w[QP] = {1, 2, 3}, x[QN] = {0}, dl[QN], out[QP], J[QN * QP];
    for (int i = 0; i < QN; i++) dl[i] = 1.0 / (1 + i);
    for (int r = 0; r < 2; r++) {
        assert_int_equal(wb_solve(sv, w, x, NULL), WB_OK);
        assert_int_equal(wb_implicit_vjp(sv, dl, out), WB_OK);
        assert_int_equal(wb_implicit_jacobian(sv, J), WB_OK);
        assert_int_equal(wb_implicit_vjp_at(sv, w, x, dl, out), WB_OK);
    }
    assert_int_equal(mem.count, made);
    wb_solver_destroy(sv);
    assert_int_equal(mem.live, 0);
    /* and a failing allocation in create is WB_ENOMEM, nothing leaked */
    for (int k = 1; k <= made; k++) {
        failalloc_t f = {0, k, 0};
        s.alloc_ctx = &f;
        sv = NULL;
        assert_int_equal(wb_solver_create(&sv, &e, &s), WB_ENOMEM);
        assert_null(sv);
        assert_int_equal(f.live, 0);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lbfgs_reaches_extended_rosenbrock_n1000),
        cmocka_unit_test(lbfgs_finds_the_quadratic_minimizer_and_its_derivative),
        cmocka_unit_test(a_loose_solve_reports_a_larger_x_error),
        cmocka_unit_test(lbfgs_derivative_agrees_with_dense_and_differences),
        cmocka_unit_test(lbfgs_leaves_a_saddle_instead_of_reporting_it),
        cmocka_unit_test(lbfgs_iteration_cap_is_maxiter),
        cmocka_unit_test(bad_lbfgs_settings_are_refused),
        cmocka_unit_test(nan_gradients_are_handled),
        cmocka_unit_test(set_energy_keeps_the_lbfgs_kind),
        cmocka_unit_test(no_allocation_after_create),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
