/* Least-squares energies: losses, Gauss-Newton vs exact derivatives, dense
 * vs sparse (matrix-free and banded) agreement. */
#include "wb_test.h"

/* ---- losses: rho' and rho'' against central differences of rho -------- */
static void loss_derivatives_match_differences(void **st) {
    (void)st;
    const double ss[] = {0.01, 0.3, 0.99, 1.5, 4.0, 30.0};
    for (int l = WB_LOSS_TRIVIAL; l <= WB_LOSS_TUKEY; l++)
        for (size_t k = 0; k < sizeof ss / sizeof ss[0]; k++) {
            double a = 1.1, s = ss[k], h = 1e-6 * (1 + s), r0, d1, d2, rp, rm, dp, dm;
            assert_int_equal(wb_loss_eval((wb_loss)l, a, s, &r0, &d1, &d2), WB_OK);
            wb_loss_eval((wb_loss)l, a, s + h, &rp, &dp, NULL);
            wb_loss_eval((wb_loss)l, a, s - h, &rm, &dm, NULL);
            if (fabs(s - a * a) < 2 * h) continue; /* Huber/Tukey kink */
            wb_assert_close(d1, (rp - rm) / (2 * h), 1e-8, 1e-6);
            wb_assert_close(d2, (dp - dm) / (2 * h), 1e-8, 1e-6);
            /* rho(s) ~ s near 0: rho'(0) = 1 */
            double z;
            wb_loss_eval((wb_loss)l, a, 0.0, NULL, &z, NULL);
            wb_assert_close(z, 1.0, 1e-15, 0);
        }
    assert_int_equal(wb_loss_eval(WB_LOSS_HUBER, -1, 1, NULL, NULL, NULL), WB_EINVAL);
    assert_int_equal(wb_loss_eval((wb_loss)17, 1, 1, NULL, NULL, NULL), WB_EINVAL);
}

/* ---- exponential fit with learnable offsets -----------------------------
 * r_i = x0 exp(-x1 t_i) + w_{i mod 2} - y_i, i < 12 (dim 1). Non-zero
 * residuals (noisy y), so the Gauss-Newton derivative is approximate. */
enum { NE = 12 };
static double ET[NE], EY[NE];
static int exp_res(void *u, const double *x, const double *w, double *r,
                   double *J) {
    (void)u;
    for (int i = 0; i < NE; i++) {
        double e = exp(-x[1] * ET[i]);
        r[i] = x[0] * e + w[i % 2] - EY[i];
        if (J) {
            J[i] = e;
            J[NE + i] = -x[0] * ET[i] * e;
        }
    }
    return 0;
}
static int exp_res_w(void *u, const double *x, const double *w, double *Jw) {
    (void)u; (void)x; (void)w;
    for (int i = 0; i < NE; i++) {
        Jw[i] = i % 2 == 0;
        Jw[NE + i] = i % 2 == 1;
    }
    return 0;
}
static void exp_data(void) {
    uint64_t seed = 5;
    for (int i = 0; i < NE; i++) {
        ET[i] = 0.25 * i;
        EY[i] = 3.0 * exp(-0.7 * ET[i]) + 0.3 * (2 * wb_test_rand(&seed) - 1);
    }
}

static void lsq_gradient_is_exact_and_gauss_newton_is_exact_at_zero_residual(void **st) {
    (void)st;
    exp_data();
    for (int l = WB_LOSS_TRIVIAL; l <= WB_LOSS_TUKEY; l++) {
        wb_lsq ls;
        memset(&ls, 0, sizeof ls);
        ls.n = 2; ls.p = 2; ls.m = NE; ls.dim = 1;
        ls.residual = exp_res;
        ls.residual_w = exp_res_w;
        ls.loss = (wb_loss)l;
        ls.loss_scale = 2.0;
        double c[NE];
        for (int i = 0; i < NE; i++) c[i] = 0.5 + 0.1 * i;
        ls.weights = c;
        wb_lsq_energy *L = NULL;
        wb_energy e;
        assert_int_equal(wb_lsq_energy_create(&L, &ls, &e), WB_OK);
        double x[2] = {2.5, 0.5}, w[2] = {0.1, -0.2};
        wb_check_report rep;
        assert_int_equal(wb_check_energy(&e, NULL, x, w, &rep), WB_OK);
        assert_true(rep.value_grad_err < 1e-7);
        /* the data can be made exact: y := model, residual 0 */
        double keep[NE];
        memcpy(keep, EY, sizeof keep);
        for (int i = 0; i < NE; i++) EY[i] = x[0] * exp(-x[1] * ET[i]) + w[i % 2];
        assert_int_equal(wb_check_energy(&e, NULL, x, w, &rep), WB_OK);
        assert_true(rep.hess_err < 1e-6);
        assert_true(rep.mixed_err < 1e-6 && rep.mixed_vjp_err < 1e-6);
        memcpy(EY, keep, sizeof keep);
        wb_lsq_energy_destroy(L);
    }
}

static void exact_mode_derivative_matches_differences_gauss_newton_does_not(void **st) {
    (void)st;
    exp_data();
    double err[2];
    for (int mode = 0; mode < 2; mode++) {
        wb_lsq ls;
        memset(&ls, 0, sizeof ls);
        ls.n = 2; ls.p = 2; ls.m = NE; ls.dim = 1;
        ls.residual = exp_res;
        ls.residual_w = exp_res_w;
        ls.loss = WB_LOSS_CAUCHY;
        ls.loss_scale = 0.5;
        ls.hessian = mode ? WB_LSQ_EXACT : WB_LSQ_GAUSS_NEWTON;
        wb_lsq_energy *L = NULL;
        wb_energy e;
        assert_int_equal(wb_lsq_energy_create(&L, &ls, &e), WB_OK);
        wb_settings s;
        wb_settings_default(&s);
        s.grad_tol = 1e-12;
        s.step_tol = 1e-15;
        wb_solver *sv = NULL;
        assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
        double x0[2] = {1, 1}, w[2] = {0.05, -0.05};
        assert_int_equal(wb_check_implicit(sv, w, x0, &err[mode]), WB_OK);
        wb_info info;
        double x[2] = {1, 1};
        assert_int_equal(wb_solve(sv, w, x, &info), WB_OK);
        assert_int_equal(info.hess_approx, mode); /* exact = differences */
        wb_solver_destroy(sv);
        wb_lsq_energy_destroy(L);
    }
    printf("    implicit Jacobian vs differences of x*(w): Gauss-Newton %.2e, "
           "exact %.2e\n", err[0], err[1]);
    assert_true(err[1] < 1e-6);
    assert_true(err[0] > 1e-4); /* the documented approximation */
}

/* ---- a chain in least-squares form, dense and sparse ---------------------
 * data terms r = x_t - y_t (T of them), smoothness r = s (x_{t+1} - 2 x_t +
 * x_{t-1}) with learnable s = w0, and a data offset w1: r = x_t - y_t - w1.
 * Soft-L1 loss. */
enum { TC = 60, MC = TC + TC - 2 };
static double CY[TC];
static int CROW[MC + 1], CCOL[TC + 3 * (TC - 2)];
static int chain_res(void *u, const double *x, const double *w, double *r,
                     double *J) {
    int sparse = *(int *)u, k = 0;
    if (J && !sparse) memset(J, 0, sizeof(double) * MC * TC);
    for (int t = 0; t < TC; t++) {
        r[t] = x[t] - CY[t] - w[1];
        if (J) {
            if (sparse) J[k++] = 1.0;
            else J[t * MC + t] = 1.0;
        }
    }
    for (int t = 1; t + 1 < TC; t++) {
        int row = TC + t - 1;
        r[row] = w[0] * (x[t + 1] - 2 * x[t] + x[t - 1]);
        if (J) {
            if (sparse) {
                J[k++] = w[0];
                J[k++] = -2 * w[0];
                J[k++] = w[0];
            } else {
                J[(t - 1) * MC + row] = w[0];
                J[t * MC + row] = -2 * w[0];
                J[(t + 1) * MC + row] = w[0];
            }
        }
    }
    return 0;
}
static void chain_pattern(void) {
    int k = 0;
    for (int t = 0; t < TC; t++) {
        CROW[t] = k;
        CCOL[k++] = t;
    }
    for (int t = 1; t + 1 < TC; t++) {
        CROW[TC + t - 1] = k;
        CCOL[k++] = t - 1;
        CCOL[k++] = t;
        CCOL[k++] = t + 1;
    }
    CROW[MC] = k;
    uint64_t seed = 3;
    for (int t = 0; t < TC; t++)
        CY[t] = sin(0.1 * t) + 0.2 * (2 * wb_test_rand(&seed) - 1) + (t % 9 == 4 ? 3.0 : 0.0);
}

typedef struct { double x[TC], J[TC * 2], v[2]; } chain_out;
static void chain_run(int sparse, int kd, chain_out *o) {
    wb_lsq ls;
    memset(&ls, 0, sizeof ls);
    ls.n = TC; ls.p = 2; ls.m = MC; ls.dim = 1;
    int flag = sparse;
    ls.user = &flag;
    ls.residual = chain_res; /* Jw by differences */
    ls.loss = WB_LOSS_SOFT_L1;
    ls.loss_scale = 0.5;
    if (sparse) {
        ls.nnz = CROW[MC];
        ls.row_ptr = CROW;
        ls.col_idx = CCOL;
        ls.kd = kd;
    }
    wb_lsq_energy *L = NULL;
    wb_energy e;
    assert_int_equal(wb_lsq_energy_create(&L, &ls, &e), WB_OK);
    wb_settings s;
    wb_settings_default(&s);
    s.grad_tol = 1e-12;
    s.step_tol = 1e-15;
    s.lambda = 0.01;
    s.cg_tol = 1e-13;
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
    double w[2] = {2.0, 0.1}, g[TC];
    memcpy(o->x, CY, sizeof CY);
    wb_info info;
    wb_status rs = wb_solve(sv, w, o->x, &info);
    assert_int_equal(rs, WB_OK);
    assert_int_equal(info.hessian, !sparse ? WB_HESS_DENSE
                                   : kd ? WB_HESS_BANDED : WB_HESS_MATRIX_FREE);
    assert_int_equal(wb_implicit_jacobian(sv, o->J), WB_OK);
    for (int t = 0; t < TC; t++) g[t] = cos(0.2 * t);
    assert_int_equal(wb_implicit_vjp(sv, g, o->v), WB_OK);
    wb_solver_destroy(sv);
    wb_lsq_energy_destroy(L);
}

static void sparse_matrix_free_and_banded_equal_dense(void **st) {
    (void)st;
    chain_pattern();
    static chain_out d, mf, b;
    chain_run(0, 0, &d);
    chain_run(1, 0, &mf);
    chain_run(1, 2, &b);
    double jm = 0;
    for (int k = 0; k < TC * 2; k++) jm = fmax(jm, fabs(d.J[k]));
    for (int t = 0; t < TC; t++) {
        wb_assert_close(mf.x[t], d.x[t], 1e-9, 0);
        wb_assert_close(b.x[t], d.x[t], 1e-9, 0);
    }
    for (int k = 0; k < TC * 2; k++) {
        wb_assert_close(mf.J[k], d.J[k], 1e-8 * jm, 0);
        wb_assert_close(b.J[k], d.J[k], 1e-8 * jm, 0);
    }
    for (int j = 0; j < 2; j++) {
        wb_assert_close(mf.v[j], d.v[j], 1e-8 * fabs(d.v[j]), 0);
        wb_assert_close(b.v[j], d.v[j], 1e-8 * fabs(d.v[j]), 0);
    }
}

static void bad_least_squares_problems_are_invalid(void **st) {
    (void)st;
    chain_pattern();
    wb_lsq ls;
    memset(&ls, 0, sizeof ls);
    ls.n = TC; ls.p = 2; ls.m = MC; ls.dim = 1; ls.residual = chain_res;
    wb_lsq_energy *L = (wb_lsq_energy *)&ls;
    wb_energy e;
    assert_int_equal(wb_lsq_energy_create(NULL, &ls, &e), WB_EINVAL);
    assert_int_equal(wb_lsq_energy_create(&L, NULL, &e), WB_EINVAL);
    assert_null(L);
    wb_lsq bad = ls;
    bad.residual = NULL;
    assert_int_equal(wb_lsq_energy_create(&L, &bad, &e), WB_EINVAL);
    bad = ls;
    bad.m = 0;
    assert_int_equal(wb_lsq_energy_create(&L, &bad, &e), WB_EINVAL);
    bad = ls;
    bad.loss = (wb_loss)9;
    assert_int_equal(wb_lsq_energy_create(&L, &bad, &e), WB_EINVAL);
    bad = ls;
    double c[MC];
    for (int i = 0; i < MC; i++) c[i] = 1;
    c[3] = -1;
    bad.weights = c;
    assert_int_equal(wb_lsq_energy_create(&L, &bad, &e), WB_EINVAL);
    bad = ls; /* a CSR pattern with a column out of range */
    int col[TC + 3 * (TC - 2)];
    memcpy(col, CCOL, sizeof col);
    col[5] = TC;
    bad.nnz = CROW[MC];
    bad.row_ptr = CROW;
    bad.col_idx = col;
    assert_int_equal(wb_lsq_energy_create(&L, &bad, &e), WB_EINVAL);
    bad.col_idx = CCOL;
    bad.kd = TC; /* kd >= n */
    assert_int_equal(wb_lsq_energy_create(&L, &bad, &e), WB_EINVAL);
    wb_lsq_energy_destroy(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loss_derivatives_match_differences),
        cmocka_unit_test(lsq_gradient_is_exact_and_gauss_newton_is_exact_at_zero_residual),
        cmocka_unit_test(exact_mode_derivative_matches_differences_gauss_newton_does_not),
        cmocka_unit_test(sparse_matrix_free_and_banded_equal_dense),
        cmocka_unit_test(bad_least_squares_problems_are_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
