/* Structured Hessians: banded and matrix-free results equal the dense ones
 * (x*, the Jacobian, the VJP) on problems small enough for dense; CG reports
 * non-convergence and negative curvature honestly. */
#include "chain.h"

enum { T = 120, K = 3, P = K + 1 };
static const double W[P] = {1.0, 2.0, 0.7, 5.0};

typedef struct {
    double x[T], J[T * P], vjp[P];
    wb_info info;
} result_t;

static void run(chain_t *c, ch_form f, wb_hessian_kind force, double lambda,
                result_t *r) {
    wb_energy e = chain_energy(c, f);
    wb_settings s;
    wb_settings_default(&s);
    s.grad_tol = 1e-11;
    s.step_tol = 1e-15;
    s.lambda = lambda;
    s.hessian = force;
    /* differences of the gradient put a floor near 1e-8 under CG residuals */
    s.cg_tol = f == CH_MFREE_FD ? 1e-7 : 1e-13;
    s.max_iter = 500;
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
    for (int t = 0; t < T; t++) r->x[t] = c->y[t * K + 1];
    wb_status rs = wb_solve(sv, W, r->x, &r->info);
    if (rs != WB_OK) printf("form %d lambda %g: %s\n", (int)f, lambda, wb_solver_message(sv));
    assert_int_equal(rs, WB_OK);
    rs = wb_implicit_jacobian(sv, r->J);
    if (rs != WB_OK) printf("form %d lambda %g: %s\n", (int)f, lambda, wb_solver_message(sv));
    assert_int_equal(rs, WB_OK);
    double g[T];
    for (int t = 0; t < T; t++) g[t] = cos(0.3 * t);
    assert_int_equal(wb_implicit_vjp(sv, g, r->vjp), WB_OK);
    wb_solver_destroy(sv);
}

static void compare(const result_t *a, const result_t *b, double tol) {
    double xm = 0, jm = 0, vm = 0;
    for (int t = 0; t < T; t++) xm = fmax(xm, fabs(b->x[t]));
    for (int k = 0; k < T * P; k++) jm = fmax(jm, fabs(b->J[k]));
    for (int j = 0; j < P; j++) vm = fmax(vm, fabs(b->vjp[j]));
    for (int t = 0; t < T; t++) wb_assert_close(a->x[t], b->x[t], tol * xm, 0);
    for (int k = 0; k < T * P; k++) wb_assert_close(a->J[k], b->J[k], tol * jm, 0);
    for (int j = 0; j < P; j++) wb_assert_close(a->vjp[j], b->vjp[j], tol * vm, 0);
}

static void chain_energy_derivatives_pass_the_checker(void **st) {
    (void)st;
    chain_t c;
    chain_init(&c, 30, K, 1);
    wb_energy e = chain_energy(&c, CH_DENSE);
    double x[30];
    for (int t = 0; t < 30; t++) x[t] = c.y[t * K + 2];
    wb_check_report rep;
    assert_int_equal(wb_check_energy(&e, NULL, x, W, &rep), WB_OK);
    assert_true(rep.value_grad_err < 1e-7 && rep.hess_err < 1e-7 &&
                rep.mixed_vjp_err < 1e-7);
    /* band, hvp and diagonal against the dense Hessian */
    double H[30 * 30], AB[3 * 30], v[30], Hv[30], Hv2[30], dg[30];
    ch_dense(&c, x, W, H);
    ch_band(&c, x, W, AB);
    for (int j = 0; j < 30; j++)
        for (int i = j; i < 30 && i <= j + 2; i++)
            wb_assert_close(AB[(i - j) + j * 3], H[j * 30 + i], 1e-14, 0);
    for (int t = 0; t < 30; t++) v[t] = sin(t + 1.0);
    ch_hvp(&c, x, W, v, Hv);
    ch_diag(&c, x, W, dg);
    for (int i = 0; i < 30; i++) {
        Hv2[i] = 0;
        for (int j = 0; j < 30; j++) Hv2[i] += H[j * 30 + i] * v[j];
        wb_assert_close(Hv[i], Hv2[i], 1e-12, 1e-12);
        wb_assert_close(dg[i], H[i * 30 + i], 1e-12, 1e-12);
    }
    chain_free(&c);
}

/* On the chain of the seed, for lambda = 0 and 0.1: form f, which AUTO
   must store as kind (exact, and with CG iterations when matrix-free),
   equals the dense form to 1e-8; form f_fd, its difference twin run with
   Hessian kind fd_kind (flagged approximate), to fd_tol. */
static void structured_equals_dense(uint64_t seed, ch_form f, wb_hessian_kind kind,
                                    ch_form f_fd, wb_hessian_kind fd_kind,
                                    double fd_tol) {
    chain_t c;
    chain_init(&c, T, K, seed);
    static result_t dense, exact, fd;
    for (int l = 0; l < 2; l++) {
        double lambda = l ? 0.1 : 0.0;
        run(&c, CH_DENSE, WB_HESS_AUTO, lambda, &dense);
        run(&c, f, WB_HESS_AUTO, lambda, &exact);
        assert_int_equal(exact.info.hessian, kind);
        assert_int_equal(exact.info.hess_approx, 0);
        if (kind == WB_HESS_MATRIX_FREE) assert_true(exact.info.cg_iterations > 0);
        compare(&exact, &dense, 1e-8);
        run(&c, f_fd, fd_kind, lambda, &fd);
        assert_int_equal(fd.info.hess_approx, 1);
        compare(&fd, &dense, fd_tol);
    }
    chain_free(&c);
}

static void banded_equals_dense(void **st) {
    (void)st;
    /* the band by differences of the gradient: 1e-6 */
    structured_equals_dense(7, CH_BANDED, WB_HESS_BANDED, CH_BANDED_FD, WB_HESS_AUTO, 1e-6);
}

static void matrix_free_equals_dense(void **st) {
    (void)st;
    /* no hvp at all: products by differences of the gradient */
    structured_equals_dense(8, CH_MFREE, WB_HESS_MATRIX_FREE, CH_MFREE_FD,
                            WB_HESS_MATRIX_FREE, 1e-5);
}

static void capped_cg_reports_non_convergence(void **st) {
    (void)st;
    chain_t c;
    chain_init(&c, T, K, 9);
    wb_energy e = chain_energy(&c, CH_MFREE);
    e.hess_diag = NULL; /* unpreconditioned: needs many iterations */
    wb_settings s;
    wb_settings_default(&s);
    s.cg_max_iter = 3;
    s.max_iter = 2000;
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
    double x[T], g[T], out[P];
    for (int t = 0; t < T; t++) x[t] = c.y[t * K + 1], g[t] = 1.0;
    wb_status r = wb_solve(sv, W, x, NULL);
    assert_true(r >= 0);
    assert_int_equal(wb_implicit_vjp(sv, g, out), WB_MAXITER);
    wb_deriv_info di;
    wb_solver_deriv_info(sv, &di);
    assert_int_equal(di.status, WB_MAXITER);
    assert_int_equal(di.cg_iterations, 3);
    assert_true(di.cg_residual > s.cg_tol);
    assert_non_null(strstr(wb_solver_message(sv), "CG stopped"));
    for (int j = 0; j < P; j++) assert_true(isfinite(out[j]) && out[j] != 0.0);
    wb_solver_destroy(sv);
    chain_free(&c);
}

/* Saddle, matrix-free: E = 1/2 (x1^2 - x2^2) + w'x at x = 0. lambda = 0:
   CG meets negative curvature and says so; lambda = 3: exact answer. */
static int sad_vg(void *u, const double *x, const double *w, double *e,
                  double *g) {
    (void)u;
    *e = 0.5 * (x[0] * x[0] - x[1] * x[1]) + w[0] * x[0] + w[1] * x[1];
    if (g) { g[0] = x[0] + w[0]; g[1] = -x[1] + w[1]; }
    return 0;
}
static int sad_hvp(void *u, const double *x, const double *w, const double *v,
                   double *o) {
    (void)u; (void)x; (void)w;
    o[0] = v[0];
    o[1] = -v[1];
    return 0;
}
static void matrix_free_negative_curvature_is_reported(void **st) {
    (void)st;
    wb_energy e;
    memset(&e, 0, sizeof e);
    e.n = 2; e.p = 2; e.value_grad = sad_vg; e.hvp = sad_hvp;
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, NULL), WB_OK);
    double x[2] = {0, 0}, w[2] = {0, 0}, g[2] = {1, 1}, out[2] = {7, 7};
    assert_int_equal(wb_implicit_vjp_at(sv, w, x, g, out), WB_ESINGULAR);
    assert_non_null(strstr(wb_solver_message(sv), "negative curvature"));
    assert_true(out[0] == 7 && out[1] == 7);
    assert_int_equal(wb_solver_set_lambda(sv, 3.0), WB_OK);
    assert_int_equal(wb_implicit_vjp_at(sv, w, x, g, out), WB_OK);
    wb_assert_close(out[0], -0.25, 1e-12, 0);
    wb_assert_close(out[1], -0.5, 1e-12, 0);
    wb_solver_destroy(sv);
}

static void structure_mismatches_are_invalid(void **st) {
    (void)st;
    chain_t c;
    chain_init(&c, 20, K, 1);
    wb_energy e = chain_energy(&c, CH_DENSE);
    wb_settings s;
    wb_settings_default(&s);
    s.hessian = WB_HESS_BANDED; /* but kd = 0 */
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, &s), WB_EINVAL);
    s.hessian = (wb_hessian_kind)9;
    assert_int_equal(wb_solver_create(&sv, &e, &s), WB_EINVAL);
    wb_energy b = chain_energy(&c, CH_BANDED);
    b.kd = 20; /* >= n */
    assert_int_equal(wb_solver_create(&sv, &b, NULL), WB_EINVAL);
    b.kd = 2;
    assert_int_equal(wb_solver_create(&sv, &b, NULL), WB_OK);
    /* a dense energy cannot be bound to a banded solver */
    assert_int_equal(wb_solver_set_energy(sv, &e), WB_EINVAL);
    assert_non_null(strstr(wb_solver_message(sv), "another Hessian storage"));
    wb_solver_destroy(sv);
    chain_free(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chain_energy_derivatives_pass_the_checker),
        cmocka_unit_test(banded_equals_dense),
        cmocka_unit_test(matrix_free_equals_dense),
        cmocka_unit_test(capped_cg_reports_non_convergence),
        cmocka_unit_test(matrix_free_negative_curvature_is_reported),
        cmocka_unit_test(structure_mismatches_are_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
