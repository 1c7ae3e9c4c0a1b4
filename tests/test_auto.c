/* WB_HESS_AUTO chooses the Hessian's storage by cost (the rule at
 * wb_hessian_kind in wiberg.h): dense for small n, banded whenever
 * 0 < kd <= 32 (or a wider band without hvp), matrix-free with hvp up to
 * n = 256 (and on a wider band), L-BFGS otherwise -- with hvp or hess at
 * larger n, and for a value_grad-only energy: never a dense difference
 * Hessian at large n. Each
 * case is checked by the storage info reports, the callbacks counted, and
 * the minimizer against its closed form. */
#include "wb_test.h"

/* E = 1/2 sum_i a_i (x_i - 1)^2 + 1/4 sum_i (x_{i+1} - x_i)^4 + 1/2 c
   sum_i (x_{i+1} - x_i)^2,  a_i = 1 + (i mod 5): strictly convex, x* = 1
   (every term vanishes there with its gradient), H tridiagonal. */
typedef struct { int n; double c; int vg_calls, hess_calls, hvp_calls; } ch_t;
static int ch_vg(void *u, const double *x, const double *w, double *e, double *g) {
    (void)w;
    ch_t *p = u;
    int n = p->n;
    p->vg_calls++;
    double E = 0;
    if (g) memset(g, 0, sizeof(double) * n);
    for (int i = 0; i < n; i++) {
        double a = 1 + i % 5, r = x[i] - 1;
        E += 0.5 * a * r * r;
        if (g) g[i] += a * r;
    }
    for (int i = 0; i + 1 < n; i++) {
        double d = x[i + 1] - x[i], t = d * d * d + p->c * d;
        E += 0.25 * d * d * d * d + 0.5 * p->c * d * d;
        if (g) {
            g[i + 1] += t;
            g[i] -= t;
        }
    }
    *e = E;
    return 0;
}
static int ch_hess(void *u, const double *x, const double *w, double *H) {
    (void)w;
    ch_t *p = u;
    int n = p->n;
    p->hess_calls++;
    memset(H, 0, sizeof(double) * (size_t)n * n);
    for (int i = 0; i < n; i++) H[(size_t)i * n + i] = 1 + i % 5;
    for (int i = 0; i + 1 < n; i++) {
        double d = x[i + 1] - x[i], k = 3 * d * d + p->c;
        H[(size_t)i * n + i] += k;
        H[(size_t)(i + 1) * n + i + 1] += k;
        H[(size_t)i * n + i + 1] -= k;
        H[(size_t)(i + 1) * n + i] -= k;
    }
    return 0;
}

/* H v of the energy above (tridiagonal) */
static int ch_hvp(void *u, const double *x, const double *w, const double *v,
                  double *Hv) {
    (void)w;
    ch_t *p = u;
    int n = p->n;
    p->hvp_calls++;
    for (int i = 0; i < n; i++) Hv[i] = (1 + i % 5) * v[i];
    for (int i = 0; i + 1 < n; i++) {
        double d = x[i + 1] - x[i], k = 3 * d * d + p->c, dv = v[i + 1] - v[i];
        Hv[i + 1] += k * dv;
        Hv[i] -= k * dv;
    }
    return 0;
}
static int with_hvp; /* ch_solve gives hvp too */

/* Solves from x0_i = 1 + sin(i) with AUTO; returns max_i |x_i - 1|. */
static double ch_solve(ch_t *p, int with_hess, int kd, wb_info *info) {
    int n = p->n;
    wb_energy e;
    memset(&e, 0, sizeof e);
    e.n = n;
    e.user = p;
    e.value_grad = ch_vg;
    if (with_hess) e.hess = ch_hess;
    if (with_hvp) e.hvp = ch_hvp;
    e.kd = kd;
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, NULL), WB_OK); /* AUTO */
    double *x = malloc(sizeof(double) * n);
    for (int i = 0; i < n; i++) x[i] = 1 + sin((double)i);
    p->vg_calls = p->hess_calls = p->hvp_calls = 0;
    assert_int_equal(wb_solve(sv, NULL, x, info), WB_OK);
    double dx = 0;
    for (int i = 0; i < n; i++) dx = fmax(dx, fabs(x[i] - 1));
    print_message("    n = %d%s%s: storage %d, %d value_grad calls, %d hess "
                  "calls, %d iterations, max|x - 1| = %.2g\n", n,
                  with_hess ? ", hess" : "", kd ? ", kd > 0" : "",
                  (int)info->hessian, p->vg_calls, p->hess_calls,
                  info->iterations, dx);
    free(x);
    wb_solver_destroy(sv);
    return dx;
}

static void auto_keeps_small_problems_dense(void **st) {
    (void)st;
    wb_info info;
    ch_t p = {40, 0.5, 0, 0};
    assert_true(ch_solve(&p, 0, 0, &info) <= 1e-8);
    assert_int_equal(info.hessian, WB_HESS_DENSE); /* value_grad only, n <= 100 */
    ch_t q = {200, 0.5, 0, 0};
    assert_true(ch_solve(&q, 1, 0, &info) <= 1e-8);
    assert_int_equal(info.hessian, WB_HESS_DENSE); /* hess, n <= 256 */
    assert_true(q.hess_calls >= 1);
}

static void auto_takes_the_band_when_kd_is_given_even_with_hess(void **st) {
    (void)st;
    wb_info info;
    ch_t p = {300, 0.5, 0, 0};
    /* before: hess given meant dense whatever kd said (the header said
       banded) */
    assert_true(ch_solve(&p, 1, 1, &info) <= 1e-8);
    assert_int_equal(info.hessian, WB_HESS_BANDED);
    assert_int_equal(p.hess_calls, 0); /* the band by 2 (2 kd + 1) gradients */
}

/* A wide band (kd > 32) with hvp: the products, not the band's factor
   (n kd^2 flops, about kd/4 products); without hvp the band stays. The
   tridiagonal H fits any declared kd. */
static void auto_leaves_a_wide_band_for_products_when_hvp_is_given(void **st) {
    (void)st;
    wb_info info;
    ch_t p = {600, 0.5, 0, 0};
    with_hvp = 1;
    assert_true(ch_solve(&p, 0, 64, &info) <= 1e-8);
    assert_int_equal(info.hessian, WB_HESS_MATRIX_FREE);
    assert_true(ch_solve(&p, 0, 32, &info) <= 1e-8);
    assert_int_equal(info.hessian, WB_HESS_BANDED);
    with_hvp = 0;
    assert_true(ch_solve(&p, 0, 64, &info) <= 1e-8);
    assert_int_equal(info.hessian, WB_HESS_BANDED);
}

static void auto_takes_lbfgs_for_value_grad_only_at_n_2000(void **st) {
    (void)st;
    wb_info info;
    ch_t p = {2000, 0.5, 0, 0};
    assert_true(ch_solve(&p, 0, 0, &info) <= 1e-8);
    /* no product callback: L-BFGS (its line searches took fewer gradients
       than Steihaug CG on difference products, docs/PERFORMANCE.md) */
    assert_int_equal(info.hessian, WB_HESS_LBFGS);
    assert_int_equal(info.hess_approx, 1); /* the second-order test's */
    /* one dense difference Hessian alone is 2n = 4000 gradients */
    assert_true(p.vg_calls < 2 * p.n);
    assert_int_equal(info.evaluations, p.vg_calls);
}

static void auto_takes_lbfgs_for_hess_without_products_at_n_2000(void **st) {
    (void)st;
    wb_info info;
    ch_t p = {2000, 0.5, 0, 0};
    assert_true(ch_solve(&p, 1, 0, &info) <= 1e-8);
    /* gradients only: L-BFGS steps, against n^2 entries for a Hessian
       and n^3/3 flops for its factor */
    assert_int_equal(info.hessian, WB_HESS_LBFGS);
    assert_int_equal(p.hess_calls, 0);
    assert_true(p.vg_calls < 2 * p.n);
}

/* hvp without structure: matrix-free (Newton steps by CG) up to n = 256,
   L-BFGS above, with or without hess; there the products serve the
   second-order test at the stop (exact, not differences: hess_approx 0)
   and hess is never called. */
static void auto_takes_lbfgs_with_products_above_n_256(void **st) {
    (void)st;
    wb_info info;
    with_hvp = 1;
    ch_t s = {200, 0.5, 0, 0, 0};
    assert_true(ch_solve(&s, 0, 0, &info) <= 1e-8);
    assert_int_equal(info.hessian, WB_HESS_MATRIX_FREE);
    assert_true(info.cg_iterations > 0 && s.hvp_calls > 0);
    for (int hess = 0; hess < 2; hess++) {
        ch_t p = {2000, 0.5, 0, 0, 0};
        assert_true(ch_solve(&p, hess, 0, &info) <= 1e-8);
        assert_int_equal(info.hessian, WB_HESS_LBFGS);
        assert_int_equal(info.hess_approx, 0);
        assert_int_equal(info.second_order, 1); /* tested, on the products */
        assert_true(p.hvp_calls > 0);
        assert_int_equal(p.hess_calls, 0);
        assert_true(p.vg_calls < 2 * p.n);
    }
    with_hvp = 0;
}

/* A solver AUTO made for L-BFGS (hvp, n = 2000, as the trainer's for its
   largest example) takes a smaller hvp energy that AUTO alone would solve
   matrix-free (n = 200) and keeps its L-BFGS steps; the minimizer is x* = 1
   at both sizes. A value_grad-only energy at n = 50 (dense under AUTO)
   still needs another storage: refused. */
static void auto_lbfgs_solver_takes_a_smaller_hvp_energy(void **st) {
    (void)st;
    ch_t big = {2000, 0.5, 0, 0, 0}, small = {200, 0.5, 0, 0, 0};
    wb_energy e;
    memset(&e, 0, sizeof e);
    e.n = big.n;
    e.user = &big;
    e.value_grad = ch_vg;
    e.hvp = ch_hvp;
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, NULL), WB_OK); /* AUTO */
    e.n = small.n;
    e.user = &small;
    assert_int_equal(wb_solver_set_energy(sv, &e), WB_OK);
    double x[200];
    for (int i = 0; i < 200; i++) x[i] = 1 + sin((double)i);
    wb_info info;
    assert_int_equal(wb_solve(sv, NULL, x, &info), WB_OK);
    assert_int_equal(info.hessian, WB_HESS_LBFGS);
    assert_true(small.hvp_calls > 0 && big.vg_calls == 0);
    for (int i = 0; i < 200; i++) assert_true(fabs(x[i] - 1) <= 1e-8);
    e.n = 50;
    e.hvp = NULL;
    assert_int_equal(wb_solver_set_energy(sv, &e), WB_EINVAL);
    wb_solver_destroy(sv);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(auto_keeps_small_problems_dense),
        cmocka_unit_test(auto_takes_the_band_when_kd_is_given_even_with_hess),
        cmocka_unit_test(auto_leaves_a_wide_band_for_products_when_hvp_is_given),
        cmocka_unit_test(auto_takes_lbfgs_for_value_grad_only_at_n_2000),
        cmocka_unit_test(auto_takes_lbfgs_for_hess_without_products_at_n_2000),
        cmocka_unit_test(auto_takes_lbfgs_with_products_above_n_256),
        cmocka_unit_test(auto_lbfgs_solver_takes_a_smaller_hvp_energy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
