/* The trust-region Newton solver: closed forms, stopping rules, progress
 * callback, and the no-allocation promise. */
#include "energies.h"
#include "chain.h"

/* Rosenbrock, f = (1 - x1)^2 + 100 (x2 - x1^2)^2: indefinite Hessian on the
   way (e.g. at the start (-1.2, 1)), minimizer (1, 1). */
static int rosen_vg(void *u, const double *x, const double *w, double *e,
                    double *g) {
    (void)u; (void)w;
    double a = 1 - x[0], b = x[1] - x[0] * x[0];
    *e = a * a + 100 * b * b;
    if (g) {
        g[0] = -2 * a - 400 * x[0] * b;
        g[1] = 200 * b;
    }
    return 0;
}

static void solve_finds_closed_form_minimizer_of_quadratic(void **st) {
    (void)st;
    enum { N = 8, P = 2 };
    quad_t q;
    quad_init(&q, N, P, 1);
    wb_energy e = quad_energy(&q);
    wb_settings s;
    wb_settings_default(&s);
    s.grad_tol = 1e-13;
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
    double w[P] = {1.5, -0.5}, x[N] = {0}, ref[N];
    for (int i = 0; i < N; i++) ref[i] = q.d[i] + q.C[i] * w[0] + q.C[N + i] * w[1];
    assert_int_equal(ref_spd_solve(N, q.A, 0.0, 1, ref), 0);
    wb_info info;
    assert_int_equal(wb_solve(sv, w, x, &info), WB_OK);
    assert_int_equal(info.status, WB_OK);
    assert_true(info.grad_norm <= 1e-13);
    assert_true(info.iterations >= 1 && info.iterations <= 10);
    for (int i = 0; i < N; i++) wb_assert_close(x[i], ref[i], 1e-12, 1e-12);
    /* the reported energy is E at the returned x, recomputed here */
    double E;
    quad_vg(&q, x, w, &E, NULL);
    wb_assert_close(info.energy, E, 0, 1e-15);
    wb_solver_destroy(sv);
    quad_free(&q);
}

static void solve_converges_on_rosenbrock_with_difference_hessian(void **st) {
    (void)st;
    wb_energy e = {2, 0, NULL, rosen_vg, NULL, NULL, NULL};
    wb_settings s;
    wb_settings_default(&s);
    s.grad_tol = 1e-10;
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
    double x[2] = {-1.2, 1.0};
    wb_info info;
    assert_int_equal(wb_solve(sv, NULL, x, &info), WB_OK);
    wb_assert_close(x[0], 1.0, 1e-9, 0);
    wb_assert_close(x[1], 1.0, 1e-9, 0);
    assert_int_equal(info.hess_approx, 1);
    assert_true(info.evaluations > info.iterations); /* differences counted */
    wb_solver_destroy(sv);
}

static void solve_stops_at_iteration_limit_with_best_point(void **st) {
    (void)st;
    wb_energy e = {2, 0, NULL, rosen_vg, NULL, NULL, NULL};
    wb_settings s;
    wb_settings_default(&s);
    s.max_iter = 3;
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
    double x[2] = {-1.2, 1.0}, e0, e1;
    rosen_vg(NULL, x, NULL, &e0, NULL);
    wb_info info;
    assert_int_equal(wb_solve(sv, NULL, x, &info), WB_MAXITER);
    assert_int_equal(info.iterations, 3);
    assert_int_equal(info.reason, WB_STOP_MAXITER);
    rosen_vg(NULL, x, NULL, &e1, NULL);
    assert_true(e1 <= e0);
    wb_assert_close(info.energy, e1, 0, 1e-15);
    wb_solver_destroy(sv);
}

static void solve_stops_on_step_tolerance(void **st) {
    (void)st;
    wb_energy e = {2, 0, NULL, rosen_vg, NULL, NULL, NULL};
    wb_settings s;
    wb_settings_default(&s);
    s.grad_tol = 0.0;  /* unreachable: the step rule must stop it */
    s.step_tol = 1e-12;
    s.max_iter = 1000;
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
    double x[2] = {-1.2, 1.0};
    wb_info info;
    assert_int_equal(wb_solve(sv, NULL, x, &info), WB_OK);
    assert_int_equal(info.reason, WB_STOP_STEP);
    assert_true(info.step_norm <= 1e-12 * (sqrt(2.0) + 1e-12));
    wb_assert_close(x[0], 1.0, 1e-9, 0);
    wb_solver_destroy(sv);
}

static void solve_stops_on_energy_change_when_asked(void **st) {
    (void)st;
    quad_t q;
    quad_init(&q, 4, 1, 3);
    wb_energy e = quad_energy(&q);
    wb_settings s;
    wb_settings_default(&s);
    s.grad_tol = 0.0;
    s.step_tol = 0.0;
    s.f_tol = 1e-6;
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
    double x[4] = {0}, w[1] = {1.0};
    wb_info info;
    assert_int_equal(wb_solve(sv, w, x, &info), WB_OK);
    assert_int_equal(info.reason, WB_STOP_F);
    wb_solver_destroy(sv);
    quad_free(&q);
}

static int cancel_at_3(void *u, const wb_progress *pr) {
    int *calls = u;
    (*calls)++;
    assert_true(isfinite(pr->energy) && pr->grad_norm >= 0);
    return pr->iteration == 2; /* stop after the third iteration */
}

static void progress_callback_sees_every_iteration_and_can_cancel(void **st) {
    (void)st;
    wb_energy e = {2, 0, NULL, rosen_vg, NULL, NULL, NULL};
    wb_settings s;
    wb_settings_default(&s);
    int calls = 0;
    s.progress = cancel_at_3;
    s.progress_user = &calls;
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
    double x[2] = {-1.2, 1.0};
    wb_info info;
    assert_int_equal(wb_solve(sv, NULL, x, &info), WB_CANCELED);
    assert_int_equal(calls, 3);
    assert_int_equal(info.iterations, 3);
    assert_int_equal(info.reason, WB_STOP_CANCELED);
    assert_true(isfinite(x[0]) && isfinite(x[1]));
    wb_solver_destroy(sv);
}

/* Counting allocator: wb_solve and the implicit calls allocate nothing. */
typedef struct { int allocs, frees; } counter_t;
static void *count_alloc(void *ctx, size_t n) {
    ((counter_t *)ctx)->allocs++;
    return malloc(n);
}
static void count_free(void *ctx, void *p) {
    ((counter_t *)ctx)->frees++;
    free(p);
}

/* defaults, the derivative's lambda, allocations counted in *c */
static wb_settings counting_settings(counter_t *c, double lambda) {
    wb_settings s;
    wb_settings_default(&s);
    s.alloc = count_alloc;
    s.dealloc = count_free;
    s.alloc_ctx = c;
    s.lambda = lambda;
    return s;
}

static void solve_and_derivatives_never_allocate(void **st) {
    (void)st;
    enum { N = 5, M = 9 };
    phub_t P;
    phub_init(&P, N, M, 2);
    for (int variant = 0; variant < 2; variant++) {
        wb_energy e = phub_energy(&P);
        if (variant) e.hess = NULL, e.mixed = NULL, e.mixed_vjp = NULL;
        counter_t c = {0, 0};
        wb_settings s = counting_settings(&c, 0.1);
        wb_solver *sv = NULL;
        assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
        int after_create = c.allocs;
        assert_true(after_create > 0); /* the hooks are really used */
        double w[M], x[N] = {0}, g[N] = {1, 0, -1, 2, 0.5}, out[M], J[N * M];
        for (int i = 0; i < M; i++) w[i] = 1.0;
        assert_int_equal(wb_solve(sv, w, x, NULL), WB_OK);
        assert_int_equal(wb_implicit_vjp(sv, g, out), WB_OK);
        assert_int_equal(wb_implicit_jacobian(sv, J), WB_OK);
        assert_int_equal(wb_implicit_vjp_at(sv, w, x, g, out), WB_OK);
        assert_int_equal(c.allocs, after_create);
        assert_int_equal(c.frees, 0);
        wb_solver_destroy(sv);
        assert_int_equal(c.frees, c.allocs);
    }
    phub_free(&P);
    /* banded and matrix-free storage, given or by differences, and a
       second solve after a change of lambda */
    const ch_form forms[] = {CH_BANDED, CH_BANDED_FD, CH_MFREE, CH_MFREE_FD};
    for (size_t k = 0; k < sizeof forms / sizeof forms[0]; k++) {
        enum { T = 12 };
        chain_t ch;
        chain_init(&ch, T, 2, 7 + k);
        wb_energy e = chain_energy(&ch, forms[k]);
        counter_t c = {0, 0};
        wb_settings s = counting_settings(&c, 1e-3);
        wb_solver *sv = NULL;
        assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
        int after_create = c.allocs;
        double x[T] = {0}, w[3] = {1, 1, 0.5}, dl[T], dw[3], J[T * 3];
        for (int i = 0; i < T; i++) dl[i] = 0.1 * (i + 1);
        wb_status r = wb_solve(sv, w, x, NULL);
        assert_true(r == WB_OK || r == WB_STALLED);
        assert_true(wb_implicit_vjp(sv, dl, dw) >= 0);
        assert_true(wb_implicit_jacobian(sv, J) >= 0);
        assert_true(wb_implicit_vjp_at(sv, w, x, dl, dw) >= 0);
        assert_int_equal(wb_solver_set_lambda(sv, 0.1), WB_OK);
        r = wb_solve(sv, w, x, NULL);
        assert_true(r == WB_OK || r == WB_STALLED);
        assert_true(wb_implicit_vjp(sv, dl, dw) >= 0);
        assert_int_equal(c.allocs, after_create);
        wb_solver_destroy(sv);
        assert_int_equal(c.frees, c.allocs);
        chain_free(&ch);
    }
}

/* The solver passes a strongly indefinite start: E = x1^4 - 2 x1^2 + x2^2
   from (0.01, 1): H = diag(-4 + 12 x1^2, 2) is indefinite there; a minimizer
   is x1 = +-1, x2 = 0. */
static int dw_vg(void *u, const double *x, const double *w, double *e,
                 double *g) {
    (void)u; (void)w;
    *e = x[0] * x[0] * x[0] * x[0] - 2 * x[0] * x[0] + x[1] * x[1];
    if (g) { g[0] = 4 * x[0] * x[0] * x[0] - 4 * x[0]; g[1] = 2 * x[1]; }
    return 0;
}
static void solve_leaves_saddle_region_to_a_minimizer(void **st) {
    (void)st;
    wb_energy e = {2, 0, NULL, dw_vg, NULL, NULL, NULL};
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, NULL), WB_OK);
    double x[2] = {0.01, 1.0};
    wb_info info;
    assert_int_equal(wb_solve(sv, NULL, x, &info), WB_OK);
    wb_assert_close(fabs(x[0]), 1.0, 1e-7, 0);
    wb_assert_close(x[1], 0.0, 1e-7, 0);
    wb_assert_close(info.energy, -1.0, 1e-12, 0);
    wb_solver_destroy(sv);
}

/* One solver serves energies of any n up to the one it was created for. */
static void rebound_solver_solves_smaller_energy(void **st) {
    (void)st;
    quad_t big, small, other;
    quad_init(&big, 6, 2, 1);
    quad_init(&small, 3, 2, 2);
    quad_init(&other, 3, 1, 2);
    wb_energy eb = quad_energy(&big), es = quad_energy(&small);
    wb_energy eo = quad_energy(&other);
    wb_settings s;
    wb_settings_default(&s);
    s.grad_tol = 1e-13;
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &eb, &s), WB_OK);
    double w[2] = {1, -1}, x[6] = {0}, J[6], Jref[6], ref[3];
    assert_int_equal(wb_solve(sv, w, x, NULL), WB_OK);
    assert_int_equal(wb_solver_set_energy(sv, &es), WB_OK);
    assert_int_equal(wb_implicit_jacobian(sv, J), WB_ENOTSOLVED);
    memset(x, 0, sizeof x);
    assert_int_equal(wb_solve(sv, w, x, NULL), WB_OK);
    for (int i = 0; i < 3; i++) ref[i] = small.d[i] + small.C[i] * w[0] + small.C[3 + i] * w[1];
    assert_int_equal(ref_spd_solve(3, small.A, 0.0, 1, ref), 0);
    for (int i = 0; i < 3; i++) wb_assert_close(x[i], ref[i], 1e-12, 1e-12);
    memcpy(Jref, small.C, sizeof Jref);
    assert_int_equal(ref_spd_solve(3, small.A, 0.0, 2, Jref), 0);
    assert_int_equal(wb_implicit_jacobian(sv, J), WB_OK);
    for (int k = 0; k < 6; k++) wb_assert_close(J[k], Jref[k], 1e-10, 1e-10);
    /* too big, or another p: refused, and the solver still works */
    eb.n = 7;
    assert_int_equal(wb_solver_set_energy(sv, &eb), WB_EINVAL);
    assert_int_equal(wb_solver_set_energy(sv, &eo), WB_EINVAL);
    assert_non_null(strstr(wb_solver_message(sv), "do not fit"));
    assert_int_equal(wb_solver_set_energy(sv, NULL), WB_EINVAL);
    assert_int_equal(wb_solve(sv, w, x, NULL), WB_OK);
    wb_solver_destroy(sv);
    quad_free(&big);
    quad_free(&small);
    quad_free(&other);
}

static void status_strings_are_never_null(void **st) {
    (void)st;
    for (int c = -10; c <= 5; c++) {
        const char *m = wb_status_str((wb_status)c);
        assert_non_null(m);
        assert_true(strlen(m) > 0);
    }
    assert_string_equal(wb_status_str((wb_status)42), "unknown status");
    assert_string_equal(wb_version(), WB_VERSION_STRING);
}

/* ---- stationary points that are not minimizers (item 2) -----------------

   E = (x1^2 - 1)^2 + s(x2), s = x2^2 (saddle at 0: H = diag(-4, 2)) or
   (x2^2 - 1)^2 (maximum at 0: H = -4 I); minimizers x1 = +-1 and x2 = 0
   resp. +-1, E = 0 there. Started exactly at 0 (gradient 0) the solver
   stopped there with WB_OK after 0 iterations; it must leave along the
   negative curvature and reach a minimizer, in every storage. */
typedef struct { int max; int n; } sad_t;
static double sad_h(const sad_t *S, const double *x, int i) {
    return i == 0 || S->max ? 12 * x[i] * x[i] - 4 : 2.0;
}
static int sad_vg(void *u, const double *x, const double *w, double *e,
                  double *g) {
    (void)w;
    sad_t *S = u;
    double E = 0.0;
    for (int i = 0; i < S->n; i++) {
        double a = x[i] * x[i] - 1;
        int dw = i == 0 || S->max;
        E += dw ? a * a : x[i] * x[i];
        if (g) g[i] = dw ? 4 * x[i] * a : 2 * x[i];
    }
    *e = E;
    return 0;
}
static int sad_hess(void *u, const double *x, const double *w, double *H) {
    (void)w;
    sad_t *S = u;
    int n = S->n;
    for (int k = 0; k < n * n; k++) H[k] = 0.0;
    for (int i = 0; i < n; i++) H[i * n + i] = sad_h(S, x, i);
    return 0;
}
static int sad_band(void *u, const double *x, const double *w, double *AB) {
    (void)w;
    sad_t *S = u;
    for (int i = 0; i < S->n; i++) AB[2 * i] = sad_h(S, x, i), AB[2 * i + 1] = 0;
    return 0;
}
static int sad_hvp(void *u, const double *x, const double *w, const double *v,
                   double *Hv) {
    (void)w;
    sad_t *S = u;
    for (int i = 0; i < S->n; i++) Hv[i] = sad_h(S, x, i) * v[i];
    return 0;
}
static void solve_started_on_saddle_or_maximum_reaches_a_minimizer(void **st) {
    (void)st;
    for (int max = 0; max < 2; max++)
        for (int form = 0; form < 4; form++)
            for (int n = 1; n <= 2; n++) {
                if (n == 1 && (form == 1 || !max)) continue; /* kd < n; saddle 2-D */
                sad_t S = {max, n};
                wb_energy e = {n, 0, &S, sad_vg, NULL, NULL, NULL};
                if (form == 0) e.hess = sad_hess;
                if (form == 1) e.kd = 1, e.hess_band = sad_band;
                if (form == 2) e.hvp = sad_hvp;
                /* form 3: dense difference Hessian */
                wb_solver *sv = NULL;
                assert_int_equal(wb_solver_create(&sv, &e, NULL), WB_OK);
                double x[2] = {0, 0}, E, H[4];
                wb_info info;
                wb_status r = wb_solve(sv, NULL, x, &info);
                if (r != WB_OK)
                    printf("max %d form %d n %d: %s\n", max, form, n,
                           wb_solver_message(sv));
                assert_int_equal(r, WB_OK);
                assert_true(info.escapes >= 1);
                assert_int_equal(info.second_order, 1);
                sad_vg(&S, x, NULL, &E, NULL);
                wb_assert_close(E, 0.0, 1e-14, 0);
                wb_assert_close(fabs(x[0]), 1.0, 1e-7, 0);
                if (n == 2) wb_assert_close(fabs(x[1]), max ? 1.0 : 0.0, 1e-7, 0);
                sad_hess(&S, x, NULL, H); /* a minimizer: H > 0 */
                for (int i = 0; i < n; i++) assert_true(H[i * n + i] > 0);
                wb_solver_destroy(sv);
            }
}

/* A coupled saddle: E = 1/2 x'Ax + 1/4 sum x_i^4, A symmetric banded
   (half-bandwidth KB = 20, wider than the narrow-band loops) with a few
   negative eigenvalues, started at x = 0 (gradient 0, H = A indefinite).
   Exercises the More-Sorensen direction from a partial blocked Cholesky
   (dense n = 150 through LAPACK's dpotrf, banded through dpbtrf). A
   minimizer has g = Ax + x^3 = 0 and H = A + 3 diag(x^2) positive definite:
   both checked here, H by the test's own Cholesky. */
enum { NQ = 150, KB = 20 };
typedef struct { double A[NQ * NQ]; } cq_t;
static int cq_vg(void *u, const double *x, const double *w, double *e,
                 double *g) {
    (void)w;
    const cq_t *q = u;
    double E = 0.0;
    for (int i = 0; i < NQ; i++) {
        double ax = 0.0;
        for (int j = 0; j < NQ; j++) ax += q->A[j * NQ + i] * x[j];
        E += 0.5 * x[i] * ax + 0.25 * x[i] * x[i] * x[i] * x[i];
        if (g) g[i] = ax + x[i] * x[i] * x[i];
    }
    *e = E;
    return 0;
}
static int cq_hess(void *u, const double *x, const double *w, double *H) {
    (void)w;
    memcpy(H, ((const cq_t *)u)->A, sizeof(double) * NQ * NQ);
    for (int i = 0; i < NQ; i++) H[i * NQ + i] += 3 * x[i] * x[i];
    return 0;
}
static int cq_band(void *u, const double *x, const double *w, double *AB) {
    (void)w;
    const cq_t *q = u;
    for (int j = 0; j < NQ; j++)
        for (int r = 0; r <= KB; r++)
            AB[r + j * (KB + 1)] = j + r < NQ ? q->A[j * NQ + j + r] : 0.0;
    for (int j = 0; j < NQ; j++) AB[j * (KB + 1)] += 3 * x[j] * x[j];
    return 0;
}
static void solve_leaves_coupled_saddle_dense_and_wide_band(void **st) {
    (void)st;
    static cq_t q;
    uint64_t seed = 5;
    memset(&q, 0, sizeof q);
    for (int j = 0; j < NQ; j++)
        for (int i = j; i < NQ && i <= j + KB; i++) {
            double a = i == j ? 2.0 + wb_test_rand(&seed)
                              : 0.1 * (2 * wb_test_rand(&seed) - 1);
            q.A[j * NQ + i] = q.A[i * NQ + j] = a;
        }
    for (int i = 60; i < 64; i++) q.A[i * NQ + i] = -3.0; /* indefinite */
    static double H[NQ * NQ], x[NQ], r[NQ];
    for (int form = 0; form < 2; form++) {
        wb_energy e = {NQ, 0, &q, cq_vg, NULL, NULL, NULL};
        if (form == 0) e.hess = cq_hess;
        else e.kd = KB, e.hess_band = cq_band;
        wb_settings s;
        wb_settings_default(&s);
        s.grad_tol = 1e-10;
        wb_solver *sv = NULL;
        assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
        memset(x, 0, sizeof x);
        wb_info info;
        assert_int_equal(wb_solve(sv, NULL, x, &info), WB_OK);
        assert_true(info.escapes >= 1);
        assert_int_equal(info.second_order, 1);
        double E, gmax = 0.0;
        cq_vg(&q, x, NULL, &E, r);
        for (int i = 0; i < NQ; i++) gmax = fmax(gmax, fabs(r[i]));
        assert_true(gmax <= 1e-10);
        assert_true(E < 0); /* below the saddle's E = 0 */
        cq_hess(&q, x, NULL, H);
        assert_int_equal(ref_spd_solve(NQ, H, 0.0, 1, r), 0); /* H > 0 */
        wb_solver_destroy(sv);
    }
}

/* With no iteration left the saddle cannot be left: WB_MAXITER, never
   WB_OK, and the message says why. */
static void saddle_without_iterations_left_is_not_converged(void **st) {
    (void)st;
    sad_t S = {0, 2};
    wb_energy e = {2, 0, &S, sad_vg, sad_hess, NULL, NULL};
    wb_settings s;
    wb_settings_default(&s);
    s.max_iter = 0;
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
    double x[2] = {0, 0};
    wb_info info;
    assert_int_equal(wb_solve(sv, NULL, x, &info), WB_MAXITER);
    assert_int_equal(info.reason, WB_STOP_MAXITER);
    assert_true(x[0] == 0 && x[1] == 0);
    assert_non_null(strstr(wb_solver_message(sv), "not a minimizer"));
    wb_solver_destroy(sv);
}

/* A step below step_tol because the damping is huge (mu0 = 1e14), not
   because x is near x*: was WB_OK (reason step) at the start, |g| ~ 1.
   Now the damping is dropped and the solve reaches the closed-form x*. */
static void step_tol_stop_of_a_damped_step_is_not_taken_as_converged(void **st) {
    (void)st;
    enum { N = 4, P = 1 };
    quad_t q;
    quad_init(&q, N, P, 3);
    wb_energy e = quad_energy(&q);
    wb_settings s;
    wb_settings_default(&s);
    s.mu0 = 1e14;
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
    double w[P] = {1.0}, x[N] = {1, 1, 1, 1}, ref[N], g[N], g0, E;
    quad_vg(&q, x, w, &E, g);
    g0 = 0;
    for (int i = 0; i < N; i++) g0 = fmax(g0, fabs(g[i])); /* |g(x0)| */
    assert_true(g0 > 1e-3);
    for (int i = 0; i < N; i++) ref[i] = q.d[i] + q.C[i] * w[0];
    assert_int_equal(ref_spd_solve(N, q.A, 0.0, 1, ref), 0);
    wb_info info;
    assert_int_equal(wb_solve(sv, w, x, &info), WB_OK);
    for (int i = 0; i < N; i++) wb_assert_close(x[i], ref[i], 1e-9, 1e-9);
    assert_true(info.reason == WB_STOP_GRAD || info.reason == WB_STOP_STEP);
    assert_true(info.grad_norm < 1e-6 * g0);
    wb_solver_destroy(sv);
    quad_free(&q);
}

/* The checks on a callback's dense Hessian (hessian.c): E = 1/2 ||x - 1||^2
   with hess = I plus one fault. An Inf or NaN anywhere (diagonal, either
   triangle) is WB_ENONFINITE; a pair H_ij != H_ji beyond 1e-8 of the largest
   entry is WB_ECALLBACK naming that pair. */
typedef struct { int n, fault; } bad_hess_t;

static int bad_hess_vg(void *u, const double *x, const double *w, double *e,
                       double *g) {
    (void)w;
    const bad_hess_t *b = u;
    double E = 0.0;
    for (int i = 0; i < b->n; i++) {
        E += 0.5 * (x[i] - 1) * (x[i] - 1);
        if (g) g[i] = x[i] - 1;
    }
    *e = E;
    return 0;
}

static int bad_hess_h(void *u, const double *x, const double *w, double *H) {
    (void)x; (void)w;
    const bad_hess_t *b = u;
    int n = b->n;
    for (int k = 0; k < n * n; k++) H[k] = 0.0;
    for (int i = 0; i < n; i++) H[i * n + i] = 1.0;
    switch (b->fault) {
    case 0: H[3 * n + 3] = INFINITY; break;                 /* diagonal */
    case 1: H[0 * n + 4] = H[4 * n + 0] = -INFINITY; break; /* a pair   */
    case 2: H[0] = NAN; break;                               /* H(0,0)   */
    case 3: H[1 * n + 2] = NAN; break;                       /* one side */
    case 4: H[3 * n + 4] = 1e-3; break;                      /* H(4,3)   */
    default: break;
    }
    return 0;
}

static void dense_hessian_with_inf_nan_or_asymmetry_is_refused(void **st) {
    (void)st;
    for (int f = 0; f <= 5; f++) {
        bad_hess_t b = {5, f};
        wb_energy e;
        memset(&e, 0, sizeof e);
        e.n = 5;
        e.user = &b;
        e.value_grad = bad_hess_vg;
        e.hess = bad_hess_h;
        wb_settings s;
        wb_settings_default(&s);
        s.hessian = WB_HESS_DENSE;
        s.grad_tol = 1e-13; /* g = x - 1: |x_i - 1| <= grad_tol at the stop */
        wb_solver *sv = NULL;
        assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
        double x[5] = {0};
        wb_info info;
        wb_status r = wb_solve(sv, NULL, x, &info);
        if (f <= 3) {
            assert_int_equal(r, WB_ENONFINITE);
            assert_non_null(strstr(wb_solver_message(sv), "non-finite entries"));
        } else if (f == 4) {
            assert_int_equal(r, WB_ECALLBACK);
            assert_non_null(strstr(wb_solver_message(sv), "|H(4,3) - H(3,4)|"));
        } else { /* no fault: x* = 1 */
            assert_int_equal(r, WB_OK);
            for (int i = 0; i < 5; i++) wb_assert_close(x[i], 1.0, 1e-12, 0);
        }
        wb_solver_destroy(sv);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(solve_finds_closed_form_minimizer_of_quadratic),
        cmocka_unit_test(solve_converges_on_rosenbrock_with_difference_hessian),
        cmocka_unit_test(solve_stops_at_iteration_limit_with_best_point),
        cmocka_unit_test(solve_stops_on_step_tolerance),
        cmocka_unit_test(solve_stops_on_energy_change_when_asked),
        cmocka_unit_test(progress_callback_sees_every_iteration_and_can_cancel),
        cmocka_unit_test(solve_and_derivatives_never_allocate),
        cmocka_unit_test(solve_leaves_saddle_region_to_a_minimizer),
        cmocka_unit_test(rebound_solver_solves_smaller_energy),
        cmocka_unit_test(status_strings_are_never_null),
        cmocka_unit_test(solve_started_on_saddle_or_maximum_reaches_a_minimizer),
        cmocka_unit_test(solve_leaves_coupled_saddle_dense_and_wide_band),
        cmocka_unit_test(saddle_without_iterations_left_is_not_converged),
        cmocka_unit_test(step_tol_stop_of_a_damped_step_is_not_taken_as_converged),
        cmocka_unit_test(dense_hessian_with_inf_nan_or_asymmetry_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
