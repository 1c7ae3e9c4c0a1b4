/* ProxProp's proximal step of a linear layer (src/prox.c):
 *
 *   T+ = argmin_T 1/2 ||T A1 - Z||^2 + 1/(2 tau) ||T - T0||^2,  A1 = [A; 1']
 *
 * checked against the closed form T+ M = Z A1' + T0/tau, M = A1 A1' + I/tau,
 * solved here by the test's own Gaussian elimination (not the library's
 * Cholesky), and by recomputing the optimality residual. CG: k = in + 1
 * iterations equal the exact step; k = 1 is the line-searched gradient step
 * and a descent step. Misuse and allocation failures give a status, no leak.
 */
#include "wb_test.h"

/* A problem of size out x in with a batch of m, seeded. */
typedef struct {
    int out, in, n, m;
    double tau;
    double *A;  /* [in*m]  */
    double *Z;  /* [out*m] */
    double *T0; /* [out*n] */
} layer_t;

static void layer_init(layer_t *L, int out, int in, int m, double tau,
                       uint64_t seed) {
    L->out = out;
    L->in = in;
    L->n = in + 1;
    L->m = m;
    L->tau = tau;
    L->A = malloc(sizeof(double) * (size_t)in * m);
    L->Z = malloc(sizeof(double) * (size_t)out * m);
    L->T0 = malloc(sizeof(double) * (size_t)out * L->n);
    uint64_t s = seed;
    for (int k = 0; k < in * m; k++) L->A[k] = 2 * wb_test_rand(&s) - 1;
    for (int k = 0; k < out * m; k++) L->Z[k] = 2 * wb_test_rand(&s) - 1;
    for (int k = 0; k < out * L->n; k++) L->T0[k] = wb_test_rand(&s) - 0.5;
}

static void layer_free(layer_t *L) {
    free(L->A);
    free(L->Z);
    free(L->T0);
}

/* Augmented activation a1_ij = [A; 1']_ij. */
static double a1(const layer_t *L, int i, int j) {
    return i < L->in ? L->A[i + (size_t)j * L->in] : 1.0;
}

/* Independent closed form: M X' = R' with M = A1 A1' + I/tau and
   R = Z A1' + T0/tau, by Gaussian elimination with partial pivoting on the
   augmented system [M | R'] (n x (n + out)). T[out*n]. */
static void closed_form(const layer_t *L, double *T) {
    int n = L->n, out = L->out, w = n + out;
    double *G = calloc((size_t)n * w, sizeof *G); /* row-major n x w */
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < n; k++) {
            double s = 0;
            for (int j = 0; j < L->m; j++) s += a1(L, i, j) * a1(L, k, j);
            G[i * w + k] = s + (i == k ? 1.0 / L->tau : 0.0);
        }
        for (int r = 0; r < out; r++) {
            double s = 0;
            for (int j = 0; j < L->m; j++)
                s += L->Z[r + (size_t)j * out] * a1(L, i, j);
            G[i * w + n + r] = s + L->T0[r + (size_t)i * out] / L->tau;
        }
    }
    for (int c = 0; c < n; c++) {
        int piv = c;
        for (int i = c + 1; i < n; i++)
            if (fabs(G[i * w + c]) > fabs(G[piv * w + c])) piv = i;
        if (piv != c)
            for (int k = 0; k < w; k++) {
                double t = G[c * w + k];
                G[c * w + k] = G[piv * w + k];
                G[piv * w + k] = t;
            }
        for (int i = c + 1; i < n; i++) {
            double f = G[i * w + c] / G[c * w + c];
            for (int k = c; k < w; k++) G[i * w + k] -= f * G[c * w + k];
        }
    }
    for (int r = 0; r < out; r++)
        for (int i = n - 1; i >= 0; i--) {
            double s = G[i * w + n + r];
            for (int k = i + 1; k < n; k++) s -= G[i * w + k] * T[r + (size_t)k * out];
            T[r + (size_t)i * out] = s / G[i * w + i];
        }
    free(G);
}

/* Residuals E = T A1 - Z [out*m]. */
static void residuals(const layer_t *L, const double *T, double *E) {
    for (int j = 0; j < L->m; j++)
        for (int r = 0; r < L->out; r++) {
            double s = -L->Z[r + (size_t)j * L->out];
            for (int i = 0; i < L->n; i++) s += T[r + (size_t)i * L->out] * a1(L, i, j);
            E[r + (size_t)j * L->out] = s;
        }
}

/* f(T) = 1/2 ||T A1 - Z||^2, the layer loss. */
static double layer_loss(const layer_t *L, const double *T) {
    double *E = malloc(sizeof(double) * (size_t)L->out * L->m), f = 0;
    residuals(L, T, E);
    for (int k = 0; k < L->out * L->m; k++) f += 0.5 * E[k] * E[k];
    free(E);
    return f;
}

/* F(T) = f(T) + 1/(2 tau) ||T - T0||^2, the proximal objective. */
static double prox_objective(const layer_t *L, const double *T) {
    double d = 0;
    for (int k = 0; k < L->out * L->n; k++)
        d += (T[k] - L->T0[k]) * (T[k] - L->T0[k]);
    return layer_loss(L, T) + d / (2 * L->tau);
}

/* grad F(T) = (T A1 - Z) A1' + (T - T0)/tau [out*n]; G(T0) = grad f. */
static void prox_gradient(const layer_t *L, const double *T, double *g) {
    double *E = malloc(sizeof(double) * (size_t)L->out * L->m);
    residuals(L, T, E);
    for (int i = 0; i < L->n; i++)
        for (int r = 0; r < L->out; r++) {
            double s = (T[r + (size_t)i * L->out] - L->T0[r + (size_t)i * L->out]) / L->tau;
            for (int j = 0; j < L->m; j++) s += E[r + (size_t)j * L->out] * a1(L, i, j);
            g[r + (size_t)i * L->out] = s;
        }
    free(E);
}

static double max_abs(int n, const double *x) {
    double m = 0;
    for (int k = 0; k < n; k++)
        if (fabs(x[k]) > m) m = fabs(x[k]);
    return m;
}

static double *step_with(const layer_t *L, wb_prox_mode mode, int k) {
    wb_prox_settings ps;
    wb_prox_settings_default(&ps);
    ps.tau = L->tau;
    ps.mode = mode;
    ps.cg_iters = k;
    wb_prox *p = NULL;
    assert_int_equal(wb_prox_create(&p, L->out, L->in, &ps), WB_OK);
    double *T = malloc(sizeof(double) * (size_t)L->out * L->n);
    assert_int_equal(wb_prox_step(p, L->m, L->A, L->Z, L->T0, T), WB_OK);
    wb_prox_destroy(p);
    return T;
}

static void exact_step_matches_the_closed_form(void **st) {
    (void)st;
    /* m > n (A1 A1' full rank), m < n (rank deficient, I/tau keeps it SPD),
       small and large tau, a single output */
    const int cases[][4] = {{5, 7, 23, 0}, {6, 9, 3, 1}, {1, 4, 10, 2},
                            {8, 3, 40, 3}, {4, 12, 12, 4}};
    const double taus[] = {0.7, 0.05, 10.0, 1e-3, 1.0};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        layer_t L;
        layer_init(&L, cases[c][0], cases[c][1], cases[c][2], taus[c],
                   100 + (uint64_t)c);
        int on = L.out * L.n;
        double *T = step_with(&L, WB_PROX_EXACT, 1);
        double *Tc = malloc(sizeof(double) * (size_t)on);
        closed_form(&L, Tc);
        for (int k = 0; k < on; k++) wb_assert_close(T[k], Tc[k], 1e-10, 1e-10);
        /* and the optimality condition, recomputed: grad F(T+) = 0 */
        double *g = malloc(sizeof(double) * (size_t)on);
        prox_gradient(&L, T, g);
        double scale = max_abs(on, L.T0) / L.tau + 1.0;
        assert_true(max_abs(on, g) <= 1e-10 * scale * L.m);
        free(g);
        free(Tc);
        free(T);
        layer_free(&L);
    }
}

static void cg_with_in_plus_one_iterations_equals_exact(void **st) {
    (void)st;
    const int cases[][3] = {{5, 7, 23}, {6, 9, 3}, {3, 16, 40}};
    const double taus[] = {0.7, 0.05, 0.3};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        layer_t L;
        layer_init(&L, cases[c][0], cases[c][1], cases[c][2], taus[c],
                   200 + (uint64_t)c);
        double *Te = step_with(&L, WB_PROX_EXACT, 1);
        double *Tg = step_with(&L, WB_PROX_CG, L.n);
        for (int k = 0; k < L.out * L.n; k++) wb_assert_close(Tg[k], Te[k], 1e-8, 1e-8);
        free(Te);
        free(Tg);
        layer_free(&L);
    }
}

static void cg_one_iteration_is_a_line_searched_gradient_step(void **st) {
    (void)st;
    layer_t L;
    layer_init(&L, 6, 10, 30, 0.5, 300);
    int out = L.out, n = L.n, on = out * n;
    double *T1 = step_with(&L, WB_PROX_CG, 1);
    /* G = grad f(T0) = grad F(T0); per row alpha_r = ||g_r||^2 / g_r M g_r' */
    double *G = malloc(sizeof(double) * (size_t)on);
    prox_gradient(&L, L.T0, G);
    for (int r = 0; r < out; r++) {
        double gg = 0, gMg = 0;
        for (int i = 0; i < n; i++) gg += G[r + i * out] * G[r + i * out];
        for (int j = 0; j < L.m; j++) { /* g M g' = ||g A1||^2 + ||g||^2/tau */
            double s = 0;
            for (int i = 0; i < n; i++) s += G[r + i * out] * a1(&L, i, j);
            gMg += s * s;
        }
        gMg += gg / L.tau;
        double alpha = gg / gMg;
        assert_true(alpha > 0 && alpha <= L.tau);
        for (int i = 0; i < n; i++)
            wb_assert_close(T1[r + i * out], L.T0[r + i * out] - alpha * G[r + i * out],
                            1e-12, 1e-10);
    }
    free(G);
    free(T1);
    layer_free(&L);
}

static void cg_tol_stops_each_row_at_its_relative_residual(void **st) {
    (void)st;
    layer_t L;
    layer_init(&L, 6, 20, 40, 2.0, 800);
    int on = L.out * L.n;
    wb_prox_settings ps;
    wb_prox_settings_default(&ps);
    ps.tau = L.tau;
    ps.mode = WB_PROX_CG;
    ps.cg_iters = 1000;
    ps.cg_tol = 1e-3;
    wb_prox *p = NULL;
    assert_int_equal(wb_prox_create(&p, L.out, L.in, &ps), WB_OK);
    double *T = malloc(sizeof(double) * (size_t)on);
    assert_int_equal(wb_prox_step(p, L.m, L.A, L.Z, L.T0, T), WB_OK);
    int its = -1;
    assert_int_equal(sscanf(wb_prox_message(p), "cg: %d iteration", &its), 1);
    assert_true(its >= 1 && its < L.n);
    /* the residual of the system is -grad F: recompute it row by row */
    double *g = malloc(sizeof(double) * (size_t)on), *g0 = malloc(sizeof(double) * (size_t)on);
    prox_gradient(&L, T, g);
    prox_gradient(&L, L.T0, g0);
    for (int r = 0; r < L.out; r++) {
        double a = 0, b = 0;
        for (int i = 0; i < L.n; i++) {
            a += g[r + i * L.out] * g[r + i * L.out];
            b += g0[r + i * L.out] * g0[r + i * L.out];
        }
        assert_true(sqrt(a) <= 1.01e-3 * sqrt(b));
    }
    free(g);
    free(g0);
    free(T);
    wb_prox_destroy(p);
    layer_free(&L);
}

static void prox_steps_descend_the_layer_loss(void **st) {
    (void)st;
    const double taus[] = {0.01, 0.1, 1.0, 100.0};
    for (size_t c = 0; c < sizeof taus / sizeof taus[0]; c++) {
        layer_t L;
        layer_init(&L, 7, 12, 25, taus[c], 400 + (uint64_t)c);
        int on = L.out * L.n;
        double F0 = prox_objective(&L, L.T0), f0 = layer_loss(&L, L.T0);
        double *G = malloc(sizeof(double) * (size_t)on);
        prox_gradient(&L, L.T0, G);
        double prevF = F0;
        const int ks[] = {1, 3, 10};
        for (size_t q = 0; q < 3; q++) {
            double *T = step_with(&L, WB_PROX_CG, ks[q]);
            double F = prox_objective(&L, T), f = layer_loss(&L, T);
            assert_true(F < F0); /* descent on the proximal objective */
            assert_true(f < f0); /* and on the layer loss itself      */
            assert_true(F <= prevF * (1 + 1e-12)); /* more CG: lower F */
            prevF = F;
            free(T);
        }
        double *T = step_with(&L, WB_PROX_EXACT, 1);
        double F = prox_objective(&L, T), f = layer_loss(&L, T);
        assert_true(F <= prevF * (1 + 1e-12));
        assert_true(f < f0);
        /* T0 - T+ is a descent direction: <g_r, t0_r - t+_r> > 0 per row */
        for (int r = 0; r < L.out; r++) {
            double d = 0;
            for (int i = 0; i < L.n; i++)
                d += G[r + i * L.out] * (L.T0[r + i * L.out] - T[r + i * L.out]);
            assert_true(d > 0);
        }
        free(T);
        free(G);
        layer_free(&L);
    }
}

static void small_tau_is_a_gradient_step(void **st) {
    (void)st;
    layer_t L;
    layer_init(&L, 4, 6, 15, 1e-7, 500);
    int on = L.out * L.n;
    double *T = step_with(&L, WB_PROX_EXACT, 1);
    double *G = malloc(sizeof(double) * (size_t)on);
    prox_gradient(&L, L.T0, G);
    /* T+ = T0 - G (A1 A1' + I/tau)^-1 = T0 - tau G + O(tau^2 ||A1 A1'||) */
    for (int k = 0; k < on; k++)
        wb_assert_close((L.T0[k] - T[k]) / L.tau, G[k], 1e-4 * max_abs(on, G), 0);
    free(G);
    free(T);
    layer_free(&L);
}

static void in_place_step_and_set_tau_agree_with_fresh_objects(void **st) {
    (void)st;
    for (int mode = 0; mode < 2; mode++) {
        layer_t L;
        layer_init(&L, 5, 8, 20, 0.2, 600 + (uint64_t)mode);
        int on = L.out * L.n;
        double *Tref = step_with(&L, (wb_prox_mode)mode, 4);
        wb_prox_settings ps;
        wb_prox_settings_default(&ps);
        ps.mode = (wb_prox_mode)mode;
        ps.cg_iters = 4;
        ps.tau = 3.0; /* changed below */
        wb_prox *p = NULL;
        assert_int_equal(wb_prox_create(&p, L.out, L.in, &ps), WB_OK);
        assert_string_equal(wb_prox_message(p), "");
        assert_int_equal(wb_prox_set_tau(p, L.tau), WB_OK);
        double *T = malloc(sizeof(double) * (size_t)on);
        memcpy(T, L.T0, sizeof(double) * (size_t)on);
        assert_int_equal(wb_prox_step(p, L.m, L.A, L.Z, T, T), WB_OK);
        for (int k = 0; k < on; k++) wb_assert_close(T[k], Tref[k], 1e-13, 1e-12);
        assert_true(strlen(wb_prox_message(p)) > 0);
        /* smaller batches through the same object (no size fixed at create) */
        assert_int_equal(wb_prox_step(p, 1, L.A, L.Z, L.T0, T), WB_OK);
        wb_prox_destroy(p);
        free(T);
        free(Tref);
        layer_free(&L);
    }
}

/* The k-th allocation fails, for every k: WB_ENOMEM, nothing leaks. */

static void bad_arguments_are_invalid(void **st) {
    (void)st;
    wb_prox *p = (wb_prox *)&p; /* must be overwritten with NULL */
    wb_prox_settings ps;
    wb_prox_settings_default(&ps);
    assert_int_equal(wb_prox_create(NULL, 2, 3, NULL), WB_EINVAL);
    assert_int_equal(wb_prox_create(&p, 0, 3, NULL), WB_EINVAL);
    assert_null(p);
    assert_int_equal(wb_prox_create(&p, 2, 0, NULL), WB_EINVAL);
    assert_int_equal(wb_prox_create(&p, -1, 3, NULL), WB_EINVAL);
    assert_int_equal(wb_prox_create(&p, 2, 2147483647, NULL), WB_EINVAL);
    assert_int_equal(wb_prox_create(&p, 100000, 100000, NULL), WB_EINVAL);
    const double bad_tau[] = {0.0, -1.0, NAN, INFINITY, -INFINITY};
    for (size_t k = 0; k < sizeof bad_tau / sizeof bad_tau[0]; k++) {
        wb_prox_settings b = ps;
        b.tau = bad_tau[k];
        assert_int_equal(wb_prox_create(&p, 2, 3, &b), WB_EINVAL);
        assert_null(p);
    }
    wb_prox_settings b = ps;
    b.mode = (wb_prox_mode)7;
    assert_int_equal(wb_prox_create(&p, 2, 3, &b), WB_EINVAL);
    b = ps;
    b.mode = WB_PROX_CG;
    b.cg_iters = 0;
    assert_int_equal(wb_prox_create(&p, 2, 3, &b), WB_EINVAL);
    b.cg_iters = 2;
    b.cg_tol = 1.0;
    assert_int_equal(wb_prox_create(&p, 2, 3, &b), WB_EINVAL);
    b.cg_tol = NAN;
    assert_int_equal(wb_prox_create(&p, 2, 3, &b), WB_EINVAL);
    b = ps;
    b.alloc = fail_alloc; /* hooks come in pairs */
    assert_int_equal(wb_prox_create(&p, 2, 3, &b), WB_EINVAL);
    b = ps;
    b.dealloc = fail_free;
    assert_int_equal(wb_prox_create(&p, 2, 3, &b), WB_EINVAL);
    assert_null(p);

    /* NULL object everywhere */
    double A[6] = {1, 2, 3, 4, 5, 6}, Z[4] = {1, 0, 0, 1}, T0[8] = {0}, T[8];
    assert_int_equal(wb_prox_step(NULL, 2, A, Z, T0, T), WB_EINVAL);
    assert_int_equal(wb_prox_set_tau(NULL, 1.0), WB_EINVAL);
    assert_string_equal(wb_prox_message(NULL), "no prox object");
    wb_prox_destroy(NULL);
    wb_prox_settings_default(NULL);

    /* bad arrays and sizes on a valid object: T untouched */
    assert_int_equal(wb_prox_create(&p, 2, 3, NULL), WB_OK);
    for (int k = 0; k < 8; k++) T[k] = 42.0;
    assert_int_equal(wb_prox_step(p, 2, NULL, Z, T0, T), WB_EINVAL);
    assert_non_null(strstr(wb_prox_message(p), "A is NULL"));
    assert_int_equal(wb_prox_step(p, 2, A, NULL, T0, T), WB_EINVAL);
    assert_non_null(strstr(wb_prox_message(p), "Z is NULL"));
    assert_int_equal(wb_prox_step(p, 2, A, Z, NULL, T), WB_EINVAL);
    assert_int_equal(wb_prox_step(p, 2, A, Z, T0, NULL), WB_EINVAL);
    assert_int_equal(wb_prox_step(p, 0, A, Z, T0, T), WB_EINVAL);
    assert_int_equal(wb_prox_step(p, -5, A, Z, T0, T), WB_EINVAL);
    assert_non_null(strstr(wb_prox_message(p), "m = -5"));
    assert_int_equal(wb_prox_set_tau(p, 0.0), WB_EINVAL);
    assert_int_equal(wb_prox_set_tau(p, NAN), WB_EINVAL);
    assert_int_equal(wb_prox_set_tau(p, INFINITY), WB_EINVAL);
    assert_non_null(strstr(wb_prox_message(p), "tau"));
    /* NaN / Inf in the data: EINVAL naming the array */
    A[4] = NAN;
    assert_int_equal(wb_prox_step(p, 2, A, Z, T0, T), WB_EINVAL);
    assert_non_null(strstr(wb_prox_message(p), "A holds NaN"));
    A[4] = 5;
    Z[3] = INFINITY;
    assert_int_equal(wb_prox_step(p, 2, A, Z, T0, T), WB_EINVAL);
    assert_non_null(strstr(wb_prox_message(p), "Z holds"));
    Z[3] = 1;
    T0[7] = -INFINITY;
    assert_int_equal(wb_prox_step(p, 2, A, Z, T0, T), WB_EINVAL);
    assert_non_null(strstr(wb_prox_message(p), "T0 holds"));
    T0[7] = 0;
    /* finite but overflowing: ENONFINITE */
    A[0] = 1e300;
    assert_int_equal(wb_prox_step(p, 2, A, Z, T0, T), WB_ENONFINITE);
    A[0] = 1;
    for (int k = 0; k < 8; k++) assert_true(T[k] == 42.0);
    /* the object still works */
    assert_int_equal(wb_prox_step(p, 2, A, Z, T0, T), WB_OK);
    wb_prox_destroy(p);
}

static void numerically_singular_system_is_refused(void **st) {
    (void)st;
    /* Every activation column (1, 1): A1 A1' = m 11' has rank one, and
       m + 1/tau == m in floating point for tau = 1e300, so the second pivot
       of the Cholesky factorization is exactly 0. */
    double A[8] = {1, 1, 1, 1, 1, 1, 1, 1}, Z[4] = {1, 2, 3, 4};
    double T0[3] = {0.1, 0.2, 0.3}, T[3] = {7, 7, 7};
    wb_prox_settings ps;
    wb_prox_settings_default(&ps);
    ps.tau = 1e300;
    wb_prox *p = NULL;
    assert_int_equal(wb_prox_create(&p, 1, 2, &ps), WB_OK);
    assert_int_equal(wb_prox_step(p, 4, A, Z, T0, T), WB_ESINGULAR);
    assert_non_null(strstr(wb_prox_message(p), "positive definite"));
    assert_true(T[0] == 7 && T[1] == 7 && T[2] == 7);
    /* a sane tau on the same object succeeds */
    assert_int_equal(wb_prox_set_tau(p, 1.0), WB_OK);
    assert_int_equal(wb_prox_step(p, 4, A, Z, T0, T), WB_OK);
    wb_prox_destroy(p);
}

static void allocation_failure_at_every_point_is_clean(void **st) {
    (void)st;
    layer_t L;
    layer_init(&L, 3, 4, 6, 0.5, 700);
    double T[15];
    for (int mode = 0; mode < 2; mode++) {
        int total = -1;
        for (int k = 1; k < 100; k++) {
            failalloc_t f = {0, k, 0};
            wb_prox_settings ps;
            wb_prox_settings_default(&ps);
            ps.mode = (wb_prox_mode)mode;
            ps.tau = L.tau;
            ps.alloc = fail_alloc;
            ps.dealloc = fail_free;
            ps.alloc_ctx = &f;
            wb_prox *p = NULL;
            wb_status r = wb_prox_create(&p, L.out, L.in, &ps);
            if (r == WB_OK) { /* k beyond the number of allocations */
                total = f.count;
                /* a step allocates nothing */
                assert_int_equal(wb_prox_step(p, L.m, L.A, L.Z, L.T0, T), WB_OK);
                assert_int_equal(f.count, total);
                wb_prox_destroy(p);
                assert_int_equal(f.live, 0);
                break;
            }
            assert_int_equal(r, WB_ENOMEM);
            assert_null(p);
            assert_int_equal(f.live, 0);
        }
        assert_true(total >= (mode == 0 ? 3 : 9));
    }
    layer_free(&L);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exact_step_matches_the_closed_form),
        cmocka_unit_test(cg_with_in_plus_one_iterations_equals_exact),
        cmocka_unit_test(cg_one_iteration_is_a_line_searched_gradient_step),
        cmocka_unit_test(cg_tol_stops_each_row_at_its_relative_residual),
        cmocka_unit_test(prox_steps_descend_the_layer_loss),
        cmocka_unit_test(small_tau_is_a_gradient_step),
        cmocka_unit_test(in_place_step_and_set_tau_agree_with_fresh_objects),
        cmocka_unit_test(bad_arguments_are_invalid),
        cmocka_unit_test(numerically_singular_system_is_refused),
        cmocka_unit_test(allocation_failure_at_every_point_is_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
