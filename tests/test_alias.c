/* Overlapping arguments: every public call of the solver, prox and lsq
 * objects given arrays that share memory either computes exactly what it
 * computes with separate buffers (checked bit for bit, and against the
 * closed form where there is one) or refuses with WB_EINVAL before writing
 * anything. wiberg.h says which, function by function. */
#include "energies.h"

enum { N = 4 }; /* quadratic with n = p = 4: x and w can be one buffer */

/* x* = A^-1 (C w + d), d(x*)/dw = A^-1 C (closed form, LAPACK-free
   reference solve of energies.h) */
static void quad_reference(const quad_t *q, const double *w, double *xs,
                           double *J) {
    int n = q->n, p = q->p;
    for (int i = 0; i < n; i++) {
        xs[i] = q->d[i];
        for (int j = 0; j < p; j++) xs[i] += q->C[j * n + i] * w[j];
    }
    assert_int_equal(ref_spd_solve(n, q->A, 0.0, 1, xs), 0);
    memcpy(J, q->C, sizeof(double) * (size_t)(n * p));
    assert_int_equal(ref_spd_solve(n, q->A, 0.0, p, J), 0);
}

/* wb_solve(sv, buf, buf): x* used to be written over w before w was saved,
   so the derivative was taken at (x*, x*) and returned WB_OK. On a
   quadratic (J = A^-1 C everywhere) that cannot show: the closed form
   checks x* there; a nonlinear energy with n = p (H and B depend on x and
   w) checks the derivative against separate buffers, bit for bit. */
static void solve_with_x_equal_to_w_matches_separate_buffers(void **st) {
    (void)st;
    quad_t q;
    quad_init(&q, N, N, 21);
    wb_energy e = quad_energy(&q);
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, NULL), WB_OK);
    const double w[N] = {0.7, -1.2, 0.4, 2.0};
    double xs[N], Jref[N * N], buf[N], J[N * N];
    quad_reference(&q, w, xs, Jref);
    memcpy(buf, w, sizeof buf); /* in: w and the start; out: x* */
    assert_int_equal(wb_solve(sv, buf, buf, NULL), WB_OK);
    for (int i = 0; i < N; i++) wb_assert_close(buf[i], xs[i], 1e-8, 0); /* grad_tol 1e-8 */
    assert_int_equal(wb_implicit_jacobian(sv, J), WB_OK);
    for (int k = 0; k < N * N; k++) wb_assert_close(J[k], Jref[k], 1e-12, 1e-10);
    wb_solver_destroy(sv);
    quad_free(&q);

    phub_t P;
    phub_init(&P, N, N, 3);
    e = phub_energy(&P);
    assert_int_equal(wb_solver_create(&sv, &e, NULL), WB_OK);
    const double wp[N] = {0.9, 1.3, 0.6, 1.1};
    double x2[N], J2[N * N], Ja[N * N], v2[N], va[N], dl[N] = {1, -2, 0.5, 3};
    memcpy(x2, wp, sizeof x2); /* the same start, separate buffers */
    assert_int_equal(wb_solve(sv, wp, x2, NULL), WB_OK);
    assert_int_equal(wb_implicit_jacobian(sv, J2), WB_OK);
    assert_int_equal(wb_implicit_vjp(sv, dl, v2), WB_OK);
    memcpy(buf, wp, sizeof buf);
    assert_int_equal(wb_solve(sv, buf, buf, NULL), WB_OK);
    assert_memory_equal(buf, x2, sizeof buf);
    assert_int_equal(wb_implicit_jacobian(sv, Ja), WB_OK);
    assert_memory_equal(Ja, J2, sizeof Ja);
    assert_int_equal(wb_implicit_vjp(sv, dl, va), WB_OK);
    assert_memory_equal(va, v2, sizeof va);
    wb_solver_destroy(sv);
    phub_free(&P);
}

/* A partial overlap on a nonlinear energy (x[3] inside w[6]), against
   separate buffers, bit for bit: x*, the VJP and the Jacobian. */
static void solve_with_x_inside_w_matches_separate_buffers(void **st) {
    (void)st;
    enum { n = 3, m = 6 };
    phub_t P;
    phub_init(&P, n, m, 7);
    wb_energy e = phub_energy(&P);
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, NULL), WB_OK);
    double w[m], x[n] = {0.1, 0.2, 0.3}, g[n] = {1, -2, 0.5};
    for (int i = 0; i < m; i++) w[i] = 0.5 + 0.1 * i;
    double J[n * m], v[m];
    assert_int_equal(wb_solve(sv, w, x, NULL), WB_OK);
    assert_int_equal(wb_implicit_jacobian(sv, J), WB_OK);
    assert_int_equal(wb_implicit_vjp(sv, g, v), WB_OK);

    double buf[m + 2];
    memcpy(buf + 2, w, sizeof w);
    double *xa = buf + 3; /* x[0..2] = w[1..3] */
    xa[0] = 0.1, xa[1] = 0.2, xa[2] = 0.3; /* the same start ... */
    double w2[m];
    memcpy(w2, buf + 2, sizeof w2); /* ... and the w it makes */
    double x2[n] = {0.1, 0.2, 0.3}, J2[n * m], Ja[n * m];
    assert_int_equal(wb_solve(sv, w2, x2, NULL), WB_OK);
    assert_int_equal(wb_implicit_jacobian(sv, J2), WB_OK);
    assert_int_equal(wb_solve(sv, buf + 2, xa, NULL), WB_OK);
    assert_memory_equal(xa, x2, sizeof x2);
    assert_int_equal(wb_implicit_jacobian(sv, Ja), WB_OK);
    assert_memory_equal(Ja, J2, sizeof Ja);
    wb_solver_destroy(sv);
    phub_free(&P);
}

/* info written over x is refused before anything is written. */
static void solve_refuses_info_over_x(void **st) {
    (void)st;
    quad_t q;
    quad_init(&q, N, N, 22);
    wb_energy e = quad_energy(&q);
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, NULL), WB_OK);
    union { wb_info info; double d[64]; } u;
    const double w[N] = {1, 2, 3, 4};
    for (int i = 0; i < N; i++) u.d[8 + i] = 0.5;
    assert_int_equal(wb_solve(sv, w, u.d + 8, &u.info), WB_EINVAL);
    assert_non_null(strstr(wb_solver_message(sv), "info overlaps x"));
    for (int i = 0; i < N; i++) assert_true(u.d[8 + i] == 0.5);
    wb_solver_destroy(sv);
    quad_free(&q);
}

/* The derivative calls: the output over an input gives the result of
   separate buffers (dl_dw over dl_dx; vjp_at's dl_dw over x and over w). */
static void derivative_outputs_may_overlap_inputs(void **st) {
    (void)st;
    quad_t q;
    quad_init(&q, N, N, 23);
    wb_energy e = quad_energy(&q);
    wb_settings s;
    wb_settings_default(&s);
    s.lambda = 0.1;
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
    const double w[N] = {0.3, -0.4, 1.1, 0.9}, dl[N] = {1, -1, 2, 0.5};
    double x[N] = {0}, ref[N], buf[N];
    assert_int_equal(wb_solve(sv, w, x, NULL), WB_OK);
    assert_int_equal(wb_implicit_vjp(sv, dl, ref), WB_OK);
    memcpy(buf, dl, sizeof buf);
    assert_int_equal(wb_implicit_vjp(sv, buf, buf), WB_OK);
    assert_memory_equal(buf, ref, sizeof buf);
    /* dl/dw = -B' (H + lambda I)^-1 dl = C' (A + lambda I)^-1 dl */
    double v[N];
    memcpy(v, dl, sizeof v);
    assert_int_equal(ref_spd_solve(N, q.A, 0.1, 1, v), 0);
    for (int j = 0; j < N; j++) {
        double t = 0;
        for (int i = 0; i < N; i++) t += q.C[j * N + i] * v[i];
        wb_assert_close(buf[j], t, 1e-12, 1e-10);
    }

    double at_ref[N];
    assert_int_equal(wb_implicit_vjp_at(sv, w, x, dl, at_ref), WB_OK);
    memcpy(buf, x, sizeof buf);
    assert_int_equal(wb_implicit_vjp_at(sv, w, buf, dl, buf), WB_OK); /* over x */
    assert_memory_equal(buf, at_ref, sizeof buf);
    memcpy(buf, w, sizeof buf);
    assert_int_equal(wb_implicit_vjp_at(sv, buf, x, dl, buf), WB_OK); /* over w */
    assert_memory_equal(buf, at_ref, sizeof buf);
    memcpy(buf, dl, sizeof buf);
    assert_int_equal(wb_implicit_vjp_at(sv, w, x, buf, buf), WB_OK); /* over dl_dx */
    assert_memory_equal(buf, at_ref, sizeof buf);
    wb_solver_destroy(sv);
    quad_free(&q);
}

/* wb_check_implicit's max_rel_err over w[0]: written last, the solver is
   left at the solve at the caller's w. */
static void check_implicit_output_may_overlap_w(void **st) {
    (void)st;
    quad_t q;
    quad_init(&q, N, N, 24);
    wb_energy e = quad_energy(&q);
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, NULL), WB_OK);
    double w[N] = {0.3, -0.4, 1.1, 0.9}, x0[N] = {0}, err = -1;
    assert_int_equal(wb_check_implicit(sv, w, x0, &err), WB_OK);
    double J[N * N];
    assert_int_equal(wb_implicit_jacobian(sv, J), WB_OK);
    double buf[N];
    memcpy(buf, w, sizeof buf);
    assert_int_equal(wb_check_implicit(sv, buf, x0, &buf[0]), WB_OK);
    assert_true(buf[0] == err);
    /* the last solve is the one at w (not at w with w[0] = err) */
    double x[N] = {0}, J2[N * N];
    assert_int_equal(wb_solve(sv, w, x, NULL), WB_OK);
    assert_int_equal(wb_implicit_jacobian(sv, J2), WB_OK);
    double xs[N], Jref[N * N];
    quad_reference(&q, w, xs, Jref);
    for (int k = 0; k < N * N; k++) wb_assert_close(J2[k], Jref[k], 1e-12, 1e-10);
    wb_solver_destroy(sv);
    quad_free(&q);
}

/* ProxProp: T over A, over Z, over T0 (in place) and over T0 shifted, exact
   and CG: the result of separate buffers, bit for bit. */
static void prox_step_output_may_overlap_any_input(void **st) {
    (void)st;
    enum { OUT = 3, IN = 5, M = 7, NT = OUT * (IN + 1) };
    for (int mode = 0; mode < 2; mode++) {
        wb_prox_settings ps;
        wb_prox_settings_default(&ps);
        ps.mode = mode ? WB_PROX_CG : WB_PROX_EXACT;
        ps.tau = 0.5;
        wb_prox *px = NULL;
        assert_int_equal(wb_prox_create(&px, OUT, IN, &ps), WB_OK);
        uint64_t seed = 5;
        double A[IN * M], Z[OUT * M], T0[NT], ref[NT];
        for (int k = 0; k < IN * M; k++) A[k] = 2 * wb_test_rand(&seed) - 1;
        for (int k = 0; k < OUT * M; k++) Z[k] = 2 * wb_test_rand(&seed) - 1;
        for (int k = 0; k < NT; k++) T0[k] = 2 * wb_test_rand(&seed) - 1;
        assert_int_equal(wb_prox_step(px, M, A, Z, T0, ref), WB_OK);
        /* exact: T+ (A1 A1' + I/tau) = Z A1' + T0/tau, residual check */
        if (mode == 0)
            for (int r = 0; r < OUT; r++)
                for (int c = 0; c <= IN; c++) {
                    double lhs = ref[c * OUT + r] / ps.tau, rhs = T0[c * OUT + r] / ps.tau;
                    for (int j = 0; j < M; j++) {
                        double tz = ref[IN * OUT + r]; /* bias */
                        for (int i = 0; i < IN; i++) tz += ref[i * OUT + r] * A[j * IN + i];
                        double a1c = c < IN ? A[j * IN + c] : 1.0;
                        lhs += tz * a1c;
                        rhs += Z[j * OUT + r] * a1c;
                    }
                    wb_assert_close(lhs, rhs, 1e-12, 1e-10);
                }
        double big[IN * M + NT], T[NT];
        /* T over the start of A */
        memcpy(big, A, sizeof A);
        assert_int_equal(wb_prox_step(px, M, big, Z, T0, big), WB_OK);
        assert_memory_equal(big, ref, sizeof ref);
        /* T over Z's tail and beyond */
        double zb[OUT * M + NT];
        memcpy(zb, Z, sizeof Z);
        assert_int_equal(wb_prox_step(px, M, A, zb, T0, zb + 4), WB_OK);
        assert_memory_equal(zb + 4, ref, sizeof ref);
        /* in place, and T0 shifted by one entry against T */
        memcpy(T, T0, sizeof T);
        assert_int_equal(wb_prox_step(px, M, A, Z, T, T), WB_OK);
        assert_memory_equal(T, ref, sizeof ref);
        double sh[NT + 1];
        memcpy(sh + 1, T0, sizeof T0);
        assert_int_equal(wb_prox_step(px, M, A, Z, sh + 1, sh), WB_OK);
        assert_memory_equal(sh, ref, sizeof ref);
        wb_prox_destroy(px);
    }
}

/* wb_check_energy: rep over x is refused; the object-free lsq calls refuse
   outputs that share memory. */
static int res1(void *u, const double *x, const double *w, double *r, double *J) {
    (void)u;
    r[0] = x[0] - w[0];
    if (J) J[0] = 1.0;
    return 0;
}
static void object_free_calls_refuse_overlapping_outputs(void **st) {
    (void)st;
    quad_t q;
    quad_init(&q, N, N, 25);
    wb_energy e = quad_energy(&q);
    union { wb_check_report r; double d[64]; } u;
    double w[N] = {1, 2, 3, 4};
    for (int i = 0; i < N; i++) u.d[1 + i] = 0.25;
    wb_last_error_clear();
    assert_int_equal(wb_check_energy(&e, NULL, u.d + 1, w, &u.r), WB_EINVAL);
    assert_non_null(strstr(wb_last_error(), "rep overlaps x"));
    for (int i = 0; i < N; i++) assert_true(u.d[1 + i] == 0.25);
    quad_free(&q);

    wb_lsq ls;
    memset(&ls, 0, sizeof ls);
    ls.n = 1, ls.p = 1, ls.m = 1, ls.dim = 1, ls.residual = res1;
    union { wb_lsq ls; wb_energy e; } v;
    v.ls = ls;
    wb_lsq_energy *le = NULL;
    assert_int_equal(wb_lsq_energy_create(&le, &v.ls, &v.e), WB_EINVAL);
    assert_null(le);
    assert_non_null(strstr(wb_last_error(), "share memory"));
    assert_int_equal(v.ls.n, 1); /* ls untouched */

    double r = 7, d2 = 7;
    assert_int_equal(wb_loss_eval(WB_LOSS_CAUCHY, 1, 2, &r, &r, &d2), WB_EINVAL);
    assert_true(r == 7 && d2 == 7);
    /* distinct outputs: rho = log(1 + s) at a = 1 */
    double r0, r1;
    assert_int_equal(wb_loss_eval(WB_LOSS_CAUCHY, 1, 2, &r0, &r1, NULL), WB_OK);
    wb_assert_close(r0, log(3.0), 0, 1e-15);
    wb_assert_close(r1, 1.0 / 3.0, 0, 1e-15);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(solve_with_x_equal_to_w_matches_separate_buffers),
        cmocka_unit_test(solve_with_x_inside_w_matches_separate_buffers),
        cmocka_unit_test(solve_refuses_info_over_x),
        cmocka_unit_test(derivative_outputs_may_overlap_inputs),
        cmocka_unit_test(check_implicit_output_may_overlap_w),
        cmocka_unit_test(prox_step_output_may_overlap_any_input),
        cmocka_unit_test(object_free_calls_refuse_overlapping_outputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
