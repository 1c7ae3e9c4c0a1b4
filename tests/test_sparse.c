/* Sparse Hessians (WB_HESS_SPARSE, CHOLMOD): a 2-D smoothed-TV denoising
 * energy solved with sparse, dense and banded storage agrees; coloured
 * differences match the exact sparse Hessian, with few colours; the
 * implicit derivative on the cached sparse factor matches finite
 * differences of x*(w) and the dense derivative; bad patterns are refused
 * with their rule in the message; a Hessian that is not positive definite
 * is damped in the solve and refused by the classic derivative. */
#include "wb_test.h"
#include "wb_internal.h"
#include "tv_grid.h"

static const double W[2] = {0.15, 0.25};

static wb_settings tight_settings(wb_hessian_kind kind) {
    wb_settings s;
    wb_settings_default(&s);
    s.hessian = kind;
    s.grad_tol = 1e-10;
    return s;
}

/* Solves the m x m TV problem from y with the given storage; x[n]. */
static wb_status tv_solve(tv_t *T, wb_hessian_kind kind, int exact, double *x,
                          wb_info *info, wb_solver **keep) {
    wb_energy e = tv_energy(T, exact);
    if (kind == WB_HESS_DENSE) e.hess = exact ? tv_hess_dense : NULL;
    if (kind == WB_HESS_BANDED) {
        e.kd = T->m;
        e.hess_band = exact ? tv_hess_band : NULL;
    }
    if (kind == WB_HESS_DENSE || kind == WB_HESS_BANDED) {
        e.hess_nnz = 0;
        e.hess_colptr = e.hess_rowidx = NULL;
        e.hess_sparse = NULL;
    }
    wb_settings s = tight_settings(kind == WB_HESS_SPARSE ? WB_HESS_AUTO : kind);
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
    memcpy(x, T->y, (size_t)T->n * sizeof(double));
    wb_status st = wb_solve(sv, W, x, info);
    if (keep) *keep = sv;
    else wb_solver_destroy(sv);
    return st;
}

static void sparse_dense_and_banded_agree_on_a_tv_grid(void **state) {
    (void)state;
    tv_t T;
    assert_int_equal(tv_init(&T, 24, 0.1, 7), 0);
    int n = T.n;
    double *xs = malloc(sizeof(double) * n), *xd = malloc(sizeof(double) * n),
           *xb = malloc(sizeof(double) * n), *xf = malloc(sizeof(double) * n);
    wb_info is, id, ib, iff;
    assert_int_equal(tv_solve(&T, WB_HESS_SPARSE, 1, xs, &is, NULL), WB_OK);
    assert_int_equal(is.hessian, WB_HESS_SPARSE); /* AUTO: a pattern */
    assert_int_equal(is.hess_approx, 0);
    assert_int_equal(tv_solve(&T, WB_HESS_DENSE, 1, xd, &id, NULL), WB_OK);
    assert_int_equal(tv_solve(&T, WB_HESS_BANDED, 1, xb, &ib, NULL), WB_OK);
    /* the coloured-difference Hessian */
    assert_int_equal(tv_solve(&T, WB_HESS_SPARSE, 0, xf, &iff, NULL), WB_OK);
    assert_int_equal(iff.hessian, WB_HESS_SPARSE);
    assert_int_equal(iff.hess_approx, 1);
    double dd = 0, db = 0, df = 0, moved = 0;
    for (int i = 0; i < n; i++) {
        dd = fmax(dd, fabs(xs[i] - xd[i]));
        db = fmax(db, fabs(xs[i] - xb[i]));
        df = fmax(df, fabs(xs[i] - xf[i]));
        moved = fmax(moved, fabs(xs[i] - T.y[i]));
    }
    assert_true(moved > 0.05); /* the solve did something */
    assert_true(dd < 1e-8);
    assert_true(db < 1e-8);
    assert_true(df < 1e-7);
    /* the same Newton path: iteration counts within a couple */
    assert_true(abs(is.iterations - id.iterations) <= 2);
    free(xs), free(xd), free(xb), free(xf);
    tv_free(&T);
}

/* Coloured central differences of the gradient against the exact values,
   at a point away from the minimizer; the 5-point stencil's distance-2
   colouring needs 5 colours at least (a column and its 4 neighbours share
   its row), greedy finds 7, and the count does not grow with n. */
static void coloured_differences_match_the_exact_sparse_hessian(void **state) {
    (void)state;
    int sizes[] = {8, 32};
    for (int t = 0; t < 2; t++) {
        tv_t T;
        assert_int_equal(tv_init(&T, sizes[t], 0.3, 11), 0);
        wb_energy e = tv_energy(&T, 0); /* no hess_sparse: differences */
        wb_settings s = tight_settings(WB_HESS_AUTO);
        wb_solver *sv = NULL;
        assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
        assert_int_equal(sv->kind, WB_HESS_SPARSE);
        int nc = wbi_sparse_colours(sv);
        assert_true(nc >= 5 && nc <= 7);
        long long before = T.vg_calls;
        assert_int_equal(wbi_hessian(sv, T.y, W), WB_OK);
        assert_int_equal(T.vg_calls - before, 2 * nc); /* 2 gradients a colour */
        double *ex = malloc(sizeof(double) * T.nnz);
        tv_hess_sparse(&T, T.y, W, ex);
        double worst = 0, big = 0;
        for (int k = 0; k < T.nnz; k++) {
            worst = fmax(worst, fabs(sv->H[k] - ex[k]));
            big = fmax(big, fabs(ex[k]));
        }
        assert_true(worst <= 1e-6 * big);
        free(ex);
        wb_solver_destroy(sv);
        tv_free(&T);
    }
}

/* A quadratic with a random sparse SPD matrix (arbitrary pattern, not a
   stencil): central differences are exact up to rounding, so the coloured
   Hessian must equal A; the colouring must be distance-2 (checked on the
   full pattern). */
typedef struct { int n, nnz; int *cp, *ri; double *ax; } rq_t;
/* E = 1/2 x'Ax - b'x, b_i = i mod 3; g = Ax - b */
static int rq_vg(void *u, const double *x, const double *w, double *e, double *g) {
    (void)w;
    rq_t *q = u;
    double E = 0;
    for (int i = 0; i < q->n; i++) g[i] = 0;
    for (int j = 0; j < q->n; j++)
        for (int k = q->cp[j]; k < q->cp[j + 1]; k++) {
            int i = q->ri[k];
            g[i] += q->ax[k] * x[j];
            if (i != j) g[j] += q->ax[k] * x[i];
        }
    for (int i = 0; i < q->n; i++) {
        double b = i % 3;
        E += 0.5 * x[i] * g[i] - b * x[i];
        g[i] -= b;
    }
    *e = E;
    return 0;
}
static int rq_hess_sparse(void *u, const double *x, const double *w, double *v) {
    (void)x, (void)w;
    rq_t *q = u;
    memcpy(v, q->ax, sizeof(double) * q->nnz);
    return 0;
}
static wb_energy rq_energy(rq_t *q, int with_values) {
    wb_energy e;
    memset(&e, 0, sizeof e);
    e.n = q->n;
    e.user = q;
    e.value_grad = rq_vg;
    e.hess_nnz = q->nnz;
    e.hess_colptr = q->cp;
    e.hess_rowidx = q->ri;
    if (with_values) e.hess_sparse = rq_hess_sparse;
    return e;
}
static void coloured_differences_are_exact_on_a_random_sparse_quadratic(void **state) {
    (void)state;
    int n = 60;
    uint64_t seed = 5;
    rq_t q = {n, 0, malloc(sizeof(int) * (n + 1)), malloc(sizeof(int) * n * n),
              malloc(sizeof(double) * n * n)};
    for (int j = 0; j < n; j++) {
        q.cp[j] = q.nnz;
        q.ri[q.nnz] = j;
        q.ax[q.nnz++] = 10.0;
        for (int i = j + 1; i < n; i++)
            if (wb_test_rand(&seed) < 0.05) {
                q.ri[q.nnz] = i;
                q.ax[q.nnz++] = wb_test_rand(&seed) - 0.5;
            }
    }
    q.cp[n] = q.nnz;
    wb_energy e = rq_energy(&q, 0);
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, NULL), WB_OK);
    double *x = malloc(sizeof(double) * n);
    for (int i = 0; i < n; i++) x[i] = sin(i);
    assert_int_equal(wbi_hessian(sv, x, NULL), WB_OK);
    double worst = 0;
    for (int k = 0; k < q.nnz; k++) worst = fmax(worst, fabs(sv->H[k] - q.ax[k]));
    assert_true(worst < 1e-8);
    /* and the solve reaches A x = b */
    wb_info info;
    for (int i = 0; i < n; i++) x[i] = 0;
    assert_int_equal(wb_solve(sv, NULL, x, &info), WB_OK);
    assert_true(info.grad_norm < 1e-8);
    int nc = wbi_sparse_colours(sv);
    assert_true(nc >= 1 && nc < n / 2);
    free(x);
    wb_solver_destroy(sv);
    free(q.cp), free(q.ri), free(q.ax);
}

/* The implicit derivative on the sparse factor: central differences of
   x*(w) (wb_check_implicit), and the dense derivative (Jacobian and VJP,
   lambda 0 and lambda > 0). The VJP right after the solve reuses the
   factor the second-order test left (lambda = 0). */
static void implicit_derivative_matches_differences_and_dense(void **state) {
    (void)state;
    tv_t T;
    assert_int_equal(tv_init(&T, 12, 0.2, 3), 0);
    int n = T.n;
    double *x = malloc(sizeof(double) * n), *xd = malloc(sizeof(double) * n);
    double *J = malloc(sizeof(double) * n * 2), *Jd = malloc(sizeof(double) * n * 2);
    double *dl = malloc(sizeof(double) * n);
    for (int i = 0; i < n; i++) dl[i] = cos(0.7 * i);
    wb_solver *sv = NULL, *dv = NULL;
    wb_info info;
    assert_int_equal(tv_solve(&T, WB_HESS_SPARSE, 1, x, &info, &sv), WB_OK);
    assert_int_equal(tv_solve(&T, WB_HESS_DENSE, 1, xd, &info, &dv), WB_OK);
    double v1[2], v2[2];
    wb_deriv_info di;
    assert_int_equal(wb_implicit_vjp(sv, dl, v1), WB_OK);
    wb_solver_deriv_info(sv, &di);
    assert_int_equal(di.reused_factor, 1);
    assert_true(di.rcond > 0 && di.rcond <= 1);
    assert_int_equal(wb_implicit_vjp(dv, dl, v2), WB_OK);
    for (int j = 0; j < 2; j++) wb_assert_close(v1[j], v2[j], 1e-10, 1e-8);
    double lam[2] = {0.0, 0.3};
    for (int l = 0; l < 2; l++) {
        assert_int_equal(wb_solver_set_lambda(sv, lam[l]), WB_OK);
        assert_int_equal(wb_solver_set_lambda(dv, lam[l]), WB_OK);
        assert_int_equal(wb_implicit_jacobian(sv, J), WB_OK);
        assert_int_equal(wb_implicit_jacobian(dv, Jd), WB_OK);
        double scale = 0;
        for (int k = 0; k < 2 * n; k++) scale = fmax(scale, fabs(Jd[k]));
        assert_true(scale > 1e-3);
        for (int k = 0; k < 2 * n; k++) wb_assert_close(J[k], Jd[k], 1e-9 * scale, 0);
        /* VJP = J' dl, the same numbers another way */
        assert_int_equal(wb_implicit_vjp(sv, dl, v1), WB_OK);
        for (int j = 0; j < 2; j++) {
            double r = wbi_dot(n, J + (size_t)j * n, dl);
            wb_assert_close(v1[j], r, 1e-10, 1e-8);
        }
    }
    assert_int_equal(wb_solver_set_lambda(sv, 0.0), WB_OK);
    double err = 1;
    assert_int_equal(wb_check_implicit(sv, W, T.y, &err), WB_OK);
    assert_true(err < 1e-6);
    wb_solver_destroy(sv);
    wb_solver_destroy(dv);
    free(x), free(xd), free(J), free(Jd), free(dl);
    tv_free(&T);
}

/* Patterns that break a rule: refused at create with the rule named. */
static void bad_patterns_are_refused_with_messages(void **state) {
    (void)state;
    tv_t T;
    assert_int_equal(tv_init(&T, 3, 0.1, 1), 0); /* n = 9 */
    int cp[10], ri[40];
    struct { const char *what, *frag; } cases[] = {
        {"row out of range", "out of range"},
        {"negative row", "out of range"},
        {"unsorted", "unsorted"},
        {"duplicate", "duplicate"},
        {"upper triangle", "above the diagonal"},
        {"missing diagonal", "misses the diagonal entry (4,4)"},
        {"colptr end", "must equal hess_nnz"},
        {"colptr decreasing", "must lie in"},
        {"colptr start", "hess_colptr[0]"},
        {"null rows", "is NULL"},
        {"values without pattern", "hess_nnz = 0"},
        {"sparse forced without pattern", "no pattern"},
        {"negative nnz", "must be >= 0"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        memcpy(cp, T.colptr, sizeof cp);
        memcpy(ri, T.row, sizeof(int) * T.nnz);
        wb_energy e = tv_energy(&T, 1);
        wb_settings s;
        wb_settings_default(&s);
        e.hess_colptr = cp;
        e.hess_rowidx = ri;
        switch (c) {
        case 0: ri[T.colptr[2] + 1] = 9; break;
        case 1: ri[T.colptr[2] + 1] = -1; break;
        case 2: { int a = cp[0] + 1; int t = ri[a]; ri[a] = ri[a + 1]; ri[a + 1] = t; } break;
        case 3: ri[cp[0] + 2] = ri[cp[0] + 1]; break;
        case 4: ri[cp[3] + 1] = 1; break; /* row 1 in column 3 */
        case 5: /* drop the entry (4,4): column 4 = {5, 7} */
                for (int k = cp[4]; k + 1 < T.nnz; k++) ri[k] = ri[k + 1];
                for (int j = 5; j <= 9; j++) cp[j]--;
                e.hess_nnz = T.nnz - 1;
                break;
        case 6: e.hess_nnz = T.nnz - 1; break;
        case 7: cp[3] = cp[2] - 1; break;
        case 8: cp[0] = 1; break;
        case 9: e.hess_rowidx = NULL; break;
        case 10: e.hess_nnz = 0; e.hess_colptr = NULL; e.hess_rowidx = NULL; break;
        case 11: e.hess_nnz = 0; e.hess_colptr = NULL; e.hess_rowidx = NULL;
                 e.hess_sparse = NULL; s.hessian = WB_HESS_SPARSE; break;
        case 12: e.hess_nnz = -3; break;
        }
        wb_solver *sv = (wb_solver *)&sv; /* set to NULL on failure */
        wb_status st = wb_solver_create(&sv, &e, &s);
        if (st != WB_EINVAL || sv != NULL || !strstr(wb_last_error(), cases[c].frag))
            fail_msg("%s: status %d, message '%s' (wanted '%s')", cases[c].what,
                     (int)st, wb_last_error(), cases[c].frag);
        char buf[256];
        assert_int_equal(wb_solver_explain(&e, &s, buf, sizeof buf), WB_EINVAL);
        assert_non_null(strstr(buf, cases[c].frag));
    }
    /* set_energy refuses a bad pattern and keeps the solver usable */
    wb_energy e = tv_energy(&T, 1);
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, NULL), WB_OK);
    memcpy(cp, T.colptr, sizeof cp);
    memcpy(ri, T.row, sizeof(int) * T.nnz);
    ri[cp[1] + 1] = 99;
    wb_energy bad = e;
    bad.hess_rowidx = ri;
    assert_int_equal(wb_solver_set_energy(sv, &bad), WB_EINVAL);
    assert_non_null(strstr(wb_solver_message(sv), "out of range"));
    double x[9];
    memcpy(x, T.y, sizeof x);
    assert_int_equal(wb_solve(sv, W, x, NULL), WB_OK);
    wb_solver_destroy(sv);
    tv_free(&T);
}

/* A double well per pixel coupled to its neighbours:
     E = sum_k (x_k^2 - 1)^2 / 4 + c/2 sum_edges (x_a - x_b)^2,
   H = diag(3 x_k^2 - 1) + c L: indefinite at x = 0 (a stationary point,
   a maximum along the constant vector). */
typedef struct { tv_t *T; double c; } dw_t;
static int dw_vg(void *u, const double *x, const double *w, double *e, double *g) {
    (void)w;
    dw_t *d = u;
    tv_t *T = d->T;
    double E = 0;
    for (int k = 0; k < T->n; k++) {
        double q = x[k] * x[k] - 1;
        E += 0.25 * q * q;
        g[k] = x[k] * q;
    }
    TV_EDGES(T, a, b, dir, {
        (void)dir;
        double t = x[a] - x[b];
        E += 0.5 * d->c * t * t;
        g[a] += d->c * t;
        g[b] -= d->c * t;
    })
    *e = E;
    return 0;
}
static int dw_hess_sparse(void *u, const double *x, const double *w, double *v) {
    (void)w;
    dw_t *d = u;
    tv_t *T = d->T;
    int m = T->m;
    for (int k = 0; k < T->nnz; k++) v[k] = 0;
    for (int k = 0; k < T->n; k++) v[T->colptr[k]] = 3 * x[k] * x[k] - 1;
    TV_EDGES(T, a, b, dir, {
        int off = dir == 0 ? 1 : ((a % m) + 1 < m ? 2 : 1);
        v[T->colptr[a]] += d->c;
        v[T->colptr[b]] += d->c;
        v[T->colptr[a] + off] -= d->c;
    })
    return 0;
}
static void not_positive_definite_is_damped_and_refused(void **state) {
    (void)state;
    tv_t T;
    assert_int_equal(tv_init(&T, 6, 0.1, 2), 0);
    dw_t d = {&T, 0.1};
    for (int exact = 0; exact < 2; exact++) {
        wb_energy e;
        memset(&e, 0, sizeof e);
        e.n = T.n;
        e.user = &d;
        e.value_grad = dw_vg;
        e.hess_nnz = T.nnz;
        e.hess_colptr = T.colptr;
        e.hess_rowidx = T.row;
        e.hess_sparse = exact ? dw_hess_sparse : NULL;
        wb_solver *sv = NULL;
        assert_int_equal(wb_solver_create(&sv, &e, NULL), WB_OK);
        /* from near the maximum: the steps are damped until H + mu D is
           positive definite, and the solve ends in a well (|x_k| = 1) */
        double x[36], g[36], E;
        for (int k = 0; k < T.n; k++) x[k] = 0.01 * sin(k + 1.0);
        wb_info info;
        assert_int_equal(wb_solve(sv, NULL, x, &info), WB_OK);
        /* a minimizer: H(x*) passed Cholesky (second_order 1), g ~ 0, and
           E below its value at the maximum (n/4) */
        assert_int_equal(info.second_order, 1);
        dw_vg(&d, x, NULL, &E, g);
        assert_true(wbi_norm_inf(T.n, g) < 1e-8);
        assert_true(E < 0.25 * T.n - 1);
        /* from the stationary point itself: the second-order test finds
           the negative curvature and the solve leaves it */
        for (int k = 0; k < T.n; k++) x[k] = 0;
        assert_int_equal(wb_solve(sv, NULL, x, &info), WB_OK);
        assert_true(info.escapes >= 1);
        assert_true(info.energy < 0.25 * T.n - 1);
        /* the classic derivative at x = 0 does not exist */
        double dl[36];
        for (int k = 0; k < T.n; k++) dl[k] = 1, x[k] = 0;
        assert_int_equal(wb_implicit_vjp_at(sv, NULL, x, dl, NULL), WB_ESINGULAR);
        assert_non_null(strstr(wb_solver_message(sv), "not positive definite"));
        /* lambda above -min eig(H) = 1: the damped derivative exists */
        assert_int_equal(wb_solver_set_lambda(sv, 1.5), WB_OK);
        assert_int_equal(wb_implicit_vjp_at(sv, NULL, x, dl, NULL), WB_OK);
        wb_solver_destroy(sv);
    }
    tv_free(&T);
}

/* CHOLMOD's factor of H + mu I and H + mu D, simplicial (LDL', checked
   pivot by pivot) and supernodal (LL', L->minor): H - 2I is refused, H -
   0.5 I is factored (both matrices have eigenvalues in [1, 2)), and a
   solve on it has a small residual computed with the pattern's product.
   Simplicial: a 6 x 6 TV grid; supernodal: a dense pattern of order 450
   (flops / nnz(L) ~ 2n/3 = 300 > 200). */
static void factor_detects_indefinite_matrices_in_both_factor_kinds(void **state) {
    (void)state;
    int kinds_seen[2] = {0, 0};
    tv_t T;
    assert_int_equal(tv_init(&T, 6, 0.1, 9), 0);
    int nq = 450;
    rq_t q = {nq, 0, malloc(sizeof(int) * (nq + 1)), malloc(sizeof(int) * nq * (nq + 1) / 2),
              malloc(sizeof(double) * nq * (nq + 1) / 2)};
    uint64_t seed = 3;
    for (int j = 0; j < nq; j++) { /* diag 1.5, |off-diagonal row sums| <= 0.25 */
        q.cp[j] = q.nnz;
        for (int i = j; i < nq; i++) {
            q.ri[q.nnz] = i;
            q.ax[q.nnz++] = i == j ? 1.5 : 0.25 / nq * (wb_test_rand(&seed) - 0.5);
        }
    }
    q.cp[nq] = q.nnz;
    for (int t = 0; t < 2; t++) {
        wb_energy e = t == 0 ? tv_energy(&T, 1) : rq_energy(&q, 1);
        int n = e.n;
        wb_solver *sv = NULL;
        assert_int_equal(wb_solver_create(&sv, &e, NULL), WB_OK);
        int sup = wbi_sparse_supernodal(sv, NULL);
        assert_int_equal(sup, t);
        kinds_seen[sup] = 1;
        assert_int_equal(wbi_hessian(sv, t ? q.ax : T.y, W), WB_OK);
        int info = wbi_factor(sv, -2.0, NULL);
        assert_true(info > 0 && info <= n);
        double *d = malloc(sizeof(double) * n), *b = malloc(sizeof(double) * n),
               *x = malloc(sizeof(double) * n), *r = malloc(sizeof(double) * n);
        for (int i = 0; i < n; i++) d[i] = 1.0;
        assert_true(wbi_factor(sv, -2.0, d) > 0); /* the same, through D */
        assert_int_equal(wbi_factor(sv, -0.5, NULL), 0);
        for (int i = 0; i < n; i++) b[i] = x[i] = sin(1.0 + i);
        wbi_factor_solve(sv, 1, x);
        wbi_sparse_mul(sv, x, r); /* r = H x - 0.5 x - b */
        double worst = 0;
        for (int i = 0; i < n; i++) worst = fmax(worst, fabs(r[i] - 0.5 * x[i] - b[i]));
        assert_true(worst < 1e-10);
        /* H + 0.25 D with D = diag(0.5 or 1.5): the shifted copy */
        for (int i = 0; i < n; i++) d[i] = 0.5 + (i % 2);
        assert_int_equal(wbi_factor(sv, 0.25, d), 0);
        for (int i = 0; i < n; i++) x[i] = b[i];
        wbi_factor_solve(sv, 1, x);
        wbi_sparse_mul(sv, x, r);
        worst = 0;
        for (int i = 0; i < n; i++) worst = fmax(worst, fabs(r[i] + 0.25 * d[i] * x[i] - b[i]));
        assert_true(worst < 1e-10);
        free(d), free(b), free(x), free(r);
        wb_solver_destroy(sv);
    }
    assert_true(kinds_seen[0] && kinds_seen[1]);
    free(q.cp), free(q.ri), free(q.ax);
    tv_free(&T);
}

/* set_energy: the same pattern keeps its analysis; a smaller grid's
   pattern is analysed anew and solves right; a bigger one is refused. */
static void set_energy_reanalyses_only_a_new_pattern(void **state) {
    (void)state;
    tv_t A, B, C;
    assert_int_equal(tv_init(&A, 10, 0.1, 1), 0);
    assert_int_equal(tv_init(&B, 7, 0.1, 2), 0);
    assert_int_equal(tv_init(&C, 11, 0.1, 3), 0);
    wb_energy ea = tv_energy(&A, 1), eb = tv_energy(&B, 1), ec = tv_energy(&C, 1);
    wb_solver *sv = NULL;
    wb_settings s = tight_settings(WB_HESS_AUTO);
    assert_int_equal(wb_solver_create(&sv, &ea, &s), WB_OK);
    double x[121], xr[121];
    wb_info info;
    for (int round = 0; round < 2; round++) {
        assert_int_equal(wb_solver_set_energy(sv, &eb), WB_OK);
        memcpy(x, B.y, sizeof(double) * B.n);
        assert_int_equal(wb_solve(sv, W, x, &info), WB_OK);
        /* against a fresh solver on B */
        assert_int_equal(tv_solve(&B, WB_HESS_SPARSE, 1, xr, &info, NULL), WB_OK);
        for (int k = 0; k < B.n; k++) wb_assert_close(x[k], xr[k], 1e-9, 0);
        assert_int_equal(wb_solver_set_energy(sv, &ea), WB_OK);
        memcpy(x, A.y, sizeof(double) * A.n);
        assert_int_equal(wb_solve(sv, W, x, &info), WB_OK);
    }
    assert_int_equal(wb_solver_set_energy(sv, &ec), WB_EINVAL);
    wb_solver_destroy(sv);
    tv_free(&A), tv_free(&B), tv_free(&C);
}

/* wb_check_energy judges the pattern and hess_sparse against differences:
   right ones read ~0; a pattern without the vertical edges, or a value
   off by 1 %, read large, at the entry that is wrong. */
static int tv_hess_sparse_off(void *u, const double *x, const double *w, double *v) {
    tv_t *T = u;
    tv_hess_sparse(u, x, w, v);
    v[T->colptr[7] + 1] *= 1.01; /* H(8,7) */
    return 0;
}
static void checker_judges_the_pattern_and_the_sparse_values(void **state) {
    (void)state;
    tv_t T;
    assert_int_equal(tv_init(&T, 5, 0.3, 4), 0); /* n = 25 */
    wb_check_report r;
    wb_energy e = tv_energy(&T, 1);
    assert_int_equal(wb_check_energy(&e, NULL, T.y, W, &r), WB_OK);
    assert_true(r.hess_sparse_err >= 0 && r.hess_sparse_err < 1e-6);
    e.hess_sparse = tv_hess_sparse_off;
    assert_int_equal(wb_check_energy(&e, NULL, T.y, W, &r), WB_OK);
    assert_true(r.hess_sparse_err > 1e-3);
    assert_int_equal(r.hess_sparse_worst, 7 * 25 + 8);
    /* a horizontal-only pattern (no rows k + m): misses H(k+5, k) */
    int cp[26], ri[75], q = 0;
    for (int k = 0; k < 25; k++) {
        cp[k] = q;
        ri[q++] = k;
        if (k % 5 + 1 < 5) ri[q++] = k + 1;
    }
    cp[25] = q;
    wb_energy h = tv_energy(&T, 0);
    h.hess_nnz = q;
    h.hess_colptr = cp;
    h.hess_rowidx = ri;
    assert_int_equal(wb_check_energy(&h, NULL, T.y, W, &r), WB_OK);
    assert_true(r.hess_sparse_err > 0.99); /* |0 - H_ij| / |H_ij| */
    assert_int_equal(r.hess_sparse_worst % 25 - r.hess_sparse_worst / 25, 5);
    /* no pattern: -1 */
    wb_energy d = tv_energy(&T, 0);
    d.hess_nnz = 0, d.hess_colptr = d.hess_rowidx = NULL;
    d.hvp = tv_hvp;
    assert_int_equal(wb_check_energy(&d, NULL, T.y, W, &r), WB_OK);
    assert_true(r.hess_sparse_err == -1 && r.hess_sparse_worst == -1);
    tv_free(&T);
}

/* The k-th allocation of create failing: WB_ENOMEM, nothing leaked. */
static void allocation_failures_at_create_leak_nothing(void **state) {
    (void)state;
    tv_t T;
    assert_int_equal(tv_init(&T, 5, 0.1, 1), 0);
    wb_energy e = tv_energy(&T, 0);
    int k;
    for (k = 1; k < 200; k++) {
        failalloc_t fa = {0, k, 0};
        wb_settings s;
        wb_settings_default(&s);
        s.alloc = fail_alloc;
        s.dealloc = fail_free;
        s.alloc_ctx = &fa;
        wb_solver *sv = NULL;
        wb_status st = wb_solver_create(&sv, &e, &s);
        if (st == WB_OK) {
            double x[25];
            memcpy(x, T.y, sizeof x);
            assert_int_equal(wb_solve(sv, W, x, NULL), WB_OK);
            wb_solver_destroy(sv);
            assert_int_equal(fa.live, 0);
            break;
        }
        assert_int_equal(st, WB_ENOMEM);
        assert_null(sv);
        assert_int_equal(fa.live, 0);
    }
    assert_true(k > 20 && k < 200);
    tv_free(&T);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sparse_dense_and_banded_agree_on_a_tv_grid),
        cmocka_unit_test(coloured_differences_match_the_exact_sparse_hessian),
        cmocka_unit_test(coloured_differences_are_exact_on_a_random_sparse_quadratic),
        cmocka_unit_test(implicit_derivative_matches_differences_and_dense),
        cmocka_unit_test(bad_patterns_are_refused_with_messages),
        cmocka_unit_test(not_positive_definite_is_damped_and_refused),
        cmocka_unit_test(factor_detects_indefinite_matrices_in_both_factor_kinds),
        cmocka_unit_test(set_energy_reanalyses_only_a_new_pattern),
        cmocka_unit_test(checker_judges_the_pattern_and_the_sparse_values),
        cmocka_unit_test(allocation_failures_at_create_leak_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
