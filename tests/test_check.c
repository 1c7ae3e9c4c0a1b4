/* The derivative checker: passes correct callbacks, catches wrong ones. */
#include "chain.h"
#include "energies.h"

/* phub with n = 4, p = 9 (seed 12), its energy, x = (0.3, -0.2, 1.5, 2.0)
   and w_i = w0 + dw i */
enum { N = 4, M = 9 };
typedef struct {
    phub_t P;
    wb_energy e;
    double x[N], w[M];
} hub_t;
static void hub_init(hub_t *h, double w0, double dw) {
    static const double X[N] = {0.3, -0.2, 1.5, 2.0};
    phub_init(&h->P, N, M, 12);
    h->e = phub_energy(&h->P);
    memcpy(h->x, X, sizeof X);
    for (int i = 0; i < M; i++) h->w[i] = w0 + dw * i;
}

/* wb_check_implicit on phub n = 3, p = 6 (seed 5) from x0 = 0 at w = W1,
   through a solver (into *sv) of its callbacks, mixed replaced by the one
   given (NULL: phub's), and settings s: must be WB_OK; its max_rel_err */
enum { IN = 3, IM = 6 };
static const double W1[IM] = {1, 1, 1, 1, 1, 1};
static double implicit_check(phub_t *P, wb_solver **sv, const wb_settings *s,
                             int (*mixed)(void *, const double *,
                                          const double *, double *)) {
    phub_init(P, IN, IM, 5);
    wb_energy e = phub_energy(P);
    if (mixed) e.mixed = mixed;
    assert_int_equal(wb_solver_create(sv, &e, s), WB_OK);
    double x0[IN] = {0}, err = -1;
    assert_int_equal(wb_check_implicit(*sv, W1, x0, &err), WB_OK);
    return err;
}

/* the settings of the implicit checks: tight tolerances */
static void tight_settings(wb_settings *s) {
    wb_settings_default(s);
    s->grad_tol = 1e-13;
    s->step_tol = 1e-15;
}

static void checker_passes_correct_callbacks(void **st) {
    (void)st;
    hub_t h;
    hub_init(&h, 0.5, 0.05);
    wb_energy e = h.e;
    wb_check_report r;
    assert_int_equal(wb_check_energy(&e, NULL, h.x, h.w, &r), WB_OK);
    assert_true(r.value_grad_err >= 0 && r.value_grad_err < 1e-7);
    assert_true(r.hess_err >= 0 && r.hess_err < 1e-7);
    assert_true(r.mixed_err >= 0 && r.mixed_err < 1e-7);
    assert_true(r.mixed_vjp_err >= 0 && r.mixed_vjp_err < 1e-7);
    /* absent callbacks are reported as -1 */
    e.hess = NULL;
    e.mixed = NULL;
    assert_int_equal(wb_check_energy(&e, NULL, h.x, h.w, &r), WB_OK);
    assert_true(r.hess_err == -1 && r.mixed_err == -1 && r.hess_worst == -1);
    phub_free(&h.P);
}

/* Wrong derivatives: one entry off by 1% is flagged with its index. */
static int wrong_vg(void *u, const double *x, const double *w, double *e,
                    double *g) {
    int rc = phub_vg(u, x, w, e, g);
    if (g) g[2] *= 1.01;
    return rc;
}
static int wrong_hess(void *u, const double *x, const double *w, double *H) {
    int rc = phub_hess(u, x, w, H);
    H[1 * 4 + 3] += 0.5; /* (3,1) only: asymmetric and wrong */
    return rc;
}
static int wrong_mixed_vjp(void *u, const double *x, const double *w,
                           const double *v, double *out) {
    int rc = phub_mixed_vjp(u, x, w, v, out);
    out[5] = -out[5];
    return rc;
}

static void checker_flags_wrong_callbacks_and_where(void **st) {
    (void)st;
    hub_t h;
    hub_init(&h, 1.0, 0.0);
    wb_energy e = h.e;
    e.value_grad = wrong_vg;
    e.hess = wrong_hess;
    e.mixed_vjp = wrong_mixed_vjp;
    wb_check_report r;
    assert_int_equal(wb_check_energy(&e, NULL, h.x, h.w, &r), WB_OK);
    assert_true(r.value_grad_err > 5e-3);
    assert_int_equal(r.value_grad_worst, 2);
    assert_true(r.hess_err > 1e-2);
    assert_int_equal(r.hess_worst, 1 * 4 + 3);
    assert_true(r.mixed_vjp_err > 1.0);
    assert_int_equal(r.mixed_vjp_worst, 5);
    phub_free(&h.P);
}

static void implicit_checker_agrees_with_differences_of_minimizer(void **st) {
    (void)st;
    phub_t P;
    wb_settings s;
    tight_settings(&s);
    s.lambda = 0.5; /* restored after the check */
    wb_solver *sv = NULL;
    double err = implicit_check(&P, &sv, &s, NULL);
    assert_true(err >= 0 && err < 1e-6);
    /* the solver is left solved at w with its own lambda */
    double g[IN] = {1, 1, 1}, out[IM];
    assert_int_equal(wb_implicit_vjp(sv, g, out), WB_OK);
    wb_deriv_info di;
    wb_solver_deriv_info(sv, &di);
    assert_true(di.lambda == 0.5);
    wb_solver_destroy(sv);
    phub_free(&P);
}

/* A wrong mixed derivative makes the implicit check fail loudly. */
static int wrong_mixed(void *u, const double *x, const double *w, double *B) {
    int rc = phub_mixed(u, x, w, B);
    for (int k = 0; k < 3; k++) B[k] *= 2;
    return rc;
}
static void implicit_checker_catches_wrong_mixed_derivative(void **st) {
    (void)st;
    phub_t P;
    wb_settings s;
    tight_settings(&s);
    wb_solver *sv = NULL;
    double err = implicit_check(&P, &sv, &s, wrong_mixed);
    assert_true(err > 1e-2);
    wb_solver_destroy(sv);
    phub_free(&P);
}

/* The structured forms: band, Hessian-vector product, diagonal. */
static int bad_band(void *u, const double *x, const double *w, double *AB) {
    int rc = ch_band(u, x, w, AB);
    AB[1 + 4 * 3] *= 1.01; /* H(5,4) off by 1% */
    return rc;
}
static void checker_covers_band_hvp_and_diagonal(void **st) {
    (void)st;
    chain_t c;
    chain_init(&c, 20, 3, 4);
    wb_energy e = chain_energy(&c, CH_BANDED);
    e.hvp = ch_hvp;
    e.hess_diag = ch_diag;
    double x[20], w[4] = {1, 2, 0.5, 3};
    for (int t = 0; t < 20; t++) x[t] = c.y[t * 3] + 0.1 * sin(t);
    wb_check_report r;
    assert_int_equal(wb_check_energy(&e, NULL, x, w, &r), WB_OK);
    assert_true(r.hess_err == -1);
    assert_true(r.hess_band_err >= 0 && r.hess_band_err < 1e-6);
    assert_true(r.hvp_err >= 0 && r.hvp_err < 1e-6);
    assert_true(r.hess_diag_err >= 0 && r.hess_diag_err < 1e-6);
    e.hess_band = bad_band;
    assert_int_equal(wb_check_energy(&e, NULL, x, w, &r), WB_OK);
    assert_true(r.hess_band_err > 5e-3);
    assert_int_equal(r.hess_band_worst, 4 * 20 + 5);
    chain_free(&c);
}

/* A hess that leaves entries unwritten: the checker used to read them
   (uninitialised memory: valgrind) and report whatever they held. It now
   names the first entry never written, and the count. */
static int holey_hess(void *u, const double *x, const double *w, double *H) {
    double full[16];
    int rc = phub_hess(u, x, w, full);
    for (int k = 0; k < 16; k++)
        if (k != 1 * 4 + 3 && k != 3 * 4 + 1) H[k] = full[k]; /* (3,1), (1,3) */
    return rc;
}
static int holey_mixed_vjp(void *u, const double *x, const double *w,
                           const double *v, double *out) {
    double full[9];
    int rc = phub_mixed_vjp(u, x, w, v, full);
    for (int k = 0; k < 9; k++)
        if (k != 6) out[k] = full[k];
    return rc;
}
static void checker_names_entries_a_callback_left_unwritten(void **st) {
    (void)st;
    hub_t h;
    hub_init(&h, 0.5, 0.05);
    wb_energy e = h.e;
    wb_check_report r;
    e.hess = holey_hess;
    wb_last_error_clear();
    assert_int_equal(wb_check_energy(&e, NULL, h.x, h.w, &r), WB_ECALLBACK);
    assert_non_null(strstr(wb_last_error(),
                           "hess left entry (3,1) of H unwritten (2 of its 16"));
    e.hess = phub_hess;
    e.mixed_vjp = holey_mixed_vjp;
    assert_int_equal(wb_check_energy(&e, NULL, h.x, h.w, &r), WB_ECALLBACK);
    assert_non_null(strstr(wb_last_error(), "mixed_vjp left out[6] unwritten"));
    /* the complete callbacks pass on the same buffers */
    e.mixed_vjp = phub_mixed_vjp;
    assert_int_equal(wb_check_energy(&e, NULL, h.x, h.w, &r), WB_OK);
    assert_true(r.hess_err < 1e-7 && r.mixed_vjp_err < 1e-7);
    phub_free(&h.P);
}

/* At a minimizer the gradient is ~0 and its central difference is pure
   rounding (~eps |E| / h): a correct gradient used to read as a relative
   error of 1e5. Judged against the difference's rounding level it reads
   below 1e-6, while an error of 1e-6 |E| in one entry reads > 1e-4. */
static double g_shift = 0.0;
static int shifted_vg(void *u, const double *x, const double *w, double *e,
                      double *g) {
    int rc = phub_vg(u, x, w, e, g);
    if (g) g[1] += g_shift;
    return rc;
}
static void checker_reads_a_correct_gradient_at_the_minimizer_as_correct(void **st) {
    (void)st;
    hub_t h;
    hub_init(&h, 0.5, 0.05);
    wb_energy e = h.e;
    double *x = h.x, *w = h.w;
    for (int i = 0; i < N; i++) x[i] = 0.0;
    wb_settings s;
    wb_settings_default(&s);
    s.grad_tol = 1e-14;
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
    wb_info info;
    assert_true(wb_solve(sv, w, x, &info) >= 0);
    assert_true(info.grad_norm < 1e-10);
    wb_solver_destroy(sv);
    wb_check_report r;
    assert_int_equal(wb_check_energy(&e, NULL, x, w, &r), WB_OK);
    printf("    at x*: |g|_inf = %.2g, E = %.4g: value_grad_err = %.3g, "
           "hess_err = %.3g, mixed_err = %.3g\n", info.grad_norm, info.energy,
           r.value_grad_err, r.hess_err, r.mixed_err);
    assert_true(r.value_grad_err >= 0 && r.value_grad_err < 1e-6);
    assert_true(r.hess_err >= 0 && r.hess_err < 1e-6);
    assert_true(r.mixed_err >= 0 && r.mixed_err < 1e-6);
    /* a wrong gradient at the same point: g[1] off by 1e-4 |E| (and by
       1e-6 |E|, still far above the correct reading) */
    e.value_grad = shifted_vg;
    g_shift = 1e-4 * fabs(info.energy);
    assert_int_equal(wb_check_energy(&e, NULL, x, w, &r), WB_OK);
    printf("    g[1] + 1e-4 |E|: value_grad_err = %.3g\n", r.value_grad_err);
    assert_true(r.value_grad_err > 1e-2);
    assert_int_equal(r.value_grad_worst, 1);
    g_shift = 1e-6 * fabs(info.energy);
    assert_int_equal(wb_check_energy(&e, NULL, x, w, &r), WB_OK);
    printf("    g[1] + 1e-6 |E|: value_grad_err = %.3g\n", r.value_grad_err);
    assert_true(r.value_grad_err > 1e-4);
    assert_int_equal(r.value_grad_worst, 1);
    g_shift = 0.0;
    phub_free(&h.P);
}

/* wb_check_implicit at the default settings (grad_tol 1e-8, step_tol
   1e-10): the warm re-solves used to stop early and read 1e-3 on a correct
   derivative. It now re-solves to its own tolerances; the closed form of a
   quadratic (d(x*)/dw = A^-1 C, exact) and a nonlinear energy both read
   at the level of the difference's truncation. */
static void implicit_checker_passes_correct_code_at_default_settings(void **st) {
    (void)st;
    phub_t P;
    wb_solver *sv = NULL;
    double err = implicit_check(&P, &sv, NULL, NULL);
    printf("    phub n=3 p=6, default settings: max_rel_err = %.3g\n", err);
    assert_true(err >= 0 && err < 1e-7);
    /* the settings are the user's again */
    wb_info info;
    double x[IN] = {0};
    assert_int_equal(wb_solve(sv, W1, x, &info), WB_OK);
    wb_solver_destroy(sv);
    phub_free(&P);

    quad_t q;
    quad_init(&q, 5, 3, 8);
    wb_energy e = quad_energy(&q);
    assert_int_equal(wb_solver_create(&sv, &e, NULL), WB_OK);
    double wq[3] = {10.0, -20.0, 5.0}, xq[5] = {0};
    assert_int_equal(wb_check_implicit(sv, wq, xq, &err), WB_OK);
    printf("    quadratic n=5 p=3, default settings: max_rel_err = %.3g\n", err);
    assert_true(err >= 0 && err < 1e-7);
    wb_solver_destroy(sv);
    quad_free(&q);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(checker_passes_correct_callbacks),
        cmocka_unit_test(checker_flags_wrong_callbacks_and_where),
        cmocka_unit_test(implicit_checker_agrees_with_differences_of_minimizer),
        cmocka_unit_test(implicit_checker_catches_wrong_mixed_derivative),
        cmocka_unit_test(checker_covers_band_hvp_and_diagonal),
        cmocka_unit_test(checker_names_entries_a_callback_left_unwritten),
        cmocka_unit_test(checker_reads_a_correct_gradient_at_the_minimizer_as_correct),
        cmocka_unit_test(implicit_checker_passes_correct_code_at_default_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
