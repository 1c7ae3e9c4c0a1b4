/* Numerical stress of the implicit derivative: Hessians with condition
 * numbers 1e2 .. 1e14, singular and indefinite, for lambda in {0, 1e-6,
 * 1e-3, 1}. The derivative must be either accurate or refused with a
 * status -- never a silent garbage gradient.
 *
 * E(x; w) = 1/2 x'Hx - x'Cw,  H = Q diag(eig) Q' (Q a seeded random
 * orthogonal matrix), so grad_x E = Hx - Cw is zero at (x, w) = (0, 0) for
 * every H, and
 *
 *   d(x*)/dw = -(H + lambda I)^-1 B = (H + lambda I)^-1 C        (B = -C)
 *   dL/dw    = C' (H + lambda I)^-1 dl_dx.
 *
 * The reference is computed here, independently of the library and of
 * LAPACK: Gaussian elimination with partial pivoting in long double on the
 * very matrix the library sees, H + lambda I (H rounded to double). It does
 * not exist where the design's H + lambda I has an eigenvalue <= 0.
 *
 * Judgement of each (H, lambda), cond = cond(H + lambda I) from the design
 * eigenvalues and tol = 1e-13 cond (100 x 1e-15 per unit of condition: the
 * forward error of a backward-stable solve is O(cond eps)):
 *   H + lambda I not positive definite  -> must be refused: WB_ESINGULAR;
 *   cond <= 1e-4 / min_rcond (= 1e10)   -> must be WB_OK, rel. error <= tol;
 *   otherwise                            -> WB_OK with rel. error <= tol
 *                                           (and < 1), or WB_ESINGULAR.
 * WB_OK with an error above its tolerance fails, whatever the case.
 *
 * Dense storage is checked through wb_implicit_jacobian (after a wb_solve
 * with max_iter 0 that stops at once: the gradient is zero at the start;
 * WB_MAXITER where H is indefinite, whose derivatives then carry that
 * status and are judged like WB_OK ones) and through
 * wb_implicit_vjp_at. The matrix-free path (hvp + CG, no condition
 * estimate) is tabulated too: its contract is the CG residual, so WB_OK
 * there is judged against cond * max(cg_tol, 1e-13) * 10, and WB_MAXITER
 * or WB_STALLED (a finished solve that missed cg_tol, documented as
 * inaccurate) is allowed.
 *
 * `test_stress --markdown FILE` (or WB_STRESS_MD=FILE) writes the table as
 * a Markdown section for docs/ERRORS.md (scripts/gen-errors-doc.sh).
 */
#include <float.h>

#include "energies.h"

enum { NS = 8, PS = 3 };

typedef struct {
    double H[NS * NS]; /* column-major, exactly symmetric                  */
    double C[NS * PS];
} squad_t;

static int sq_vg(void *u, const double *x, const double *w, double *e,
                 double *g) {
    squad_t *q = u;
    double E = 0.0;
    for (int i = 0; i < NS; i++) {
        double hx = 0.0, cw = 0.0;
        for (int j = 0; j < NS; j++) hx += q->H[j * NS + i] * x[j];
        for (int j = 0; j < PS; j++) cw += q->C[j * NS + i] * w[j];
        E += 0.5 * x[i] * hx - x[i] * cw;
        if (g) g[i] = hx - cw;
    }
    *e = E;
    return 0;
}
static int sq_hess(void *u, const double *x, const double *w, double *H) {
    (void)x; (void)w;
    memcpy(H, ((squad_t *)u)->H, sizeof(double) * NS * NS);
    return 0;
}
static int sq_hvp(void *u, const double *x, const double *w, const double *v,
                  double *Hv) {
    (void)x; (void)w;
    squad_t *q = u;
    for (int i = 0; i < NS; i++) {
        double s = 0.0;
        for (int j = 0; j < NS; j++) s += q->H[j * NS + i] * v[j];
        Hv[i] = s;
    }
    return 0;
}
static int sq_mixed(void *u, const double *x, const double *w, double *B) {
    (void)x; (void)w;
    squad_t *q = u;
    for (int k = 0; k < NS * PS; k++) B[k] = -q->C[k];
    return 0;
}
static int sq_mixed_vjp(void *u, const double *x, const double *w,
                        const double *v, double *out) {
    (void)x; (void)w;
    squad_t *q = u;
    for (int j = 0; j < PS; j++) {
        double s = 0.0;
        for (int i = 0; i < NS; i++) s -= q->C[j * NS + i] * v[i];
        out[j] = s;
    }
    return 0;
}

/* Q = product of NS seeded Householder reflections (orthogonal to
   rounding), formed in long double and rounded once. */
static void random_orthogonal(uint64_t seed, long double *Q) {
    for (int k = 0; k < NS * NS; k++) Q[k] = 0;
    for (int i = 0; i < NS; i++) Q[i * NS + i] = 1;
    for (int r = 0; r < NS; r++) {
        long double v[NS], vv = 0;
        for (int i = 0; i < NS; i++) {
            v[i] = 2 * wb_test_rand(&seed) - 1;
            vv += v[i] * v[i];
        }
        /* Q = (I - 2 v v' / v'v) Q */
        for (int j = 0; j < NS; j++) {
            long double d = 0;
            for (int i = 0; i < NS; i++) d += v[i] * Q[j * NS + i];
            d *= 2 / vv;
            for (int i = 0; i < NS; i++) Q[j * NS + i] -= d * v[i];
        }
    }
}

/* The Hessians under test. */
typedef enum { K_COND, K_SING_ROT, K_SING_EXACT, K_INDEF, K_INDEF_MILD } hkind_t;
typedef struct {
    hkind_t kind;
    double cond; /* K_COND: the condition number of H */
    const char *label;
} hcase_t;

static const hcase_t HCASES[] = {
    {K_COND, 1e2, "cond 1e2"},       {K_COND, 1e4, "cond 1e4"},
    {K_COND, 1e6, "cond 1e6"},       {K_COND, 1e8, "cond 1e8"},
    {K_COND, 1e10, "cond 1e10"},     {K_COND, 1e12, "cond 1e12"},
    {K_COND, 1e14, "cond 1e14"},
    {K_SING_ROT, 0, "singular (eig 0, rotated)"},
    {K_SING_EXACT, 0, "singular (zero row/column)"},
    {K_INDEF, 0, "indefinite (eig -1)"},
    {K_INDEF_MILD, 0, "indefinite (eig -1e-4)"},
};
enum { NH = sizeof HCASES / sizeof HCASES[0] };
static const double LAMBDAS[] = {0.0, 1e-6, 1e-3, 1.0};
enum { NL = 4 };

/* Design eigenvalues: K_COND geometric from 1 down to 1/cond; the others
   geometric 1 .. 1e-2 on NS - 1 entries plus one special eigenvalue. */
static void design_eigs(const hcase_t *hc, double *eig) {
    if (hc->kind == K_COND) {
        for (int i = 0; i < NS; i++)
            eig[i] = pow(hc->cond, -(double)i / (NS - 1));
        eig[NS - 1] = 1.0 / hc->cond;
        return;
    }
    for (int i = 0; i < NS - 1; i++) eig[i] = pow(1e-2, (double)i / (NS - 2));
    eig[NS - 1] = hc->kind == K_INDEF        ? -1.0
                  : hc->kind == K_INDEF_MILD ? -1e-4
                                             : 0.0;
}

static void build(const hcase_t *hc, uint64_t seed, squad_t *q, double *eig) {
    long double Q[NS * NS];
    design_eigs(hc, eig);
    random_orthogonal(seed, Q);
    if (hc->kind == K_SING_EXACT) {
        /* H = Q' diag(eig[0..NS-2]) Q on the first NS-1 coordinates, and an
           exactly zero row and column NS/2: singular in floating point */
        for (int k = 0; k < NS * NS; k++) q->H[k] = 0.0;
        int z = NS / 2;
        for (int j = 0; j < NS; j++)
            for (int i = 0; i < NS; i++) {
                if (i == z || j == z) continue;
                int a = i < z ? i : i - 1, b = j < z ? j : j - 1;
                long double s = 0;
                for (int k = 0; k < NS - 1; k++)
                    s += Q[k * NS + a] * eig[k] * Q[k * NS + b];
                q->H[j * NS + i] = (double)s;
            }
    } else {
        for (int j = 0; j < NS; j++)
            for (int i = 0; i < NS; i++) {
                long double s = 0;
                for (int k = 0; k < NS; k++)
                    s += Q[k * NS + i] * eig[k] * Q[k * NS + j];
                q->H[j * NS + i] = (double)s;
            }
    }
    for (int j = 0; j < NS; j++) /* exactly symmetric */
        for (int i = j + 1; i < NS; i++) q->H[i * NS + j] = q->H[j * NS + i];
    for (int k = 0; k < NS * PS; k++) q->C[k] = 2 * wb_test_rand(&seed) - 1;
}

/* X[NS x nrhs] = (H + lambda I)^-1 R in long double (partial pivoting).
   Returns -1 when a pivot is exactly zero. */
static int ref_solve(const double *H, double lambda, int nrhs,
                     const long double *R, long double *X) {
    long double A[NS][NS + PS];
    for (int i = 0; i < NS; i++) {
        for (int j = 0; j < NS; j++)
            A[i][j] = (long double)H[j * NS + i] + (i == j ? lambda : 0.0L);
        for (int c = 0; c < nrhs; c++) A[i][NS + c] = R[c * NS + i];
    }
    for (int k = 0; k < NS; k++) {
        int piv = k;
        for (int i = k + 1; i < NS; i++)
            if (fabsl(A[i][k]) > fabsl(A[piv][k])) piv = i;
        if (A[piv][k] == 0) return -1;
        for (int j = 0; j < NS + nrhs; j++) {
            long double t = A[k][j];
            A[k][j] = A[piv][j];
            A[piv][j] = t;
        }
        for (int i = k + 1; i < NS; i++) {
            long double f = A[i][k] / A[k][k];
            for (int j = k; j < NS + nrhs; j++) A[i][j] -= f * A[k][j];
        }
    }
    for (int c = 0; c < nrhs; c++)
        for (int i = NS - 1; i >= 0; i--) {
            long double s = A[i][NS + c];
            for (int j = i + 1; j < NS; j++) s -= A[i][j] * X[c * NS + j];
            X[c * NS + i] = s / A[i][i];
        }
    return 0;
}

/* ||a - b||_2 / ||b||_2 */
static double rel_err(int m, const double *a, const long double *b) {
    long double d = 0, r = 0;
    for (int k = 0; k < m; k++) {
        d += (a[k] - b[k]) * (a[k] - b[k]);
        r += b[k] * b[k];
    }
    return (double)sqrtl(d / r);
}

typedef struct {
    int pd;          /* design H + lambda I positive definite              */
    double cond;     /* its condition number (inf: singular)               */
    double tol, tol_mf;
    wb_status st_jac, st_vjp, st_mf, st_jac_norcond;
    double err_jac, err_vjp, err_mf, err_jac_norcond;
    double rcond;    /* the library's estimate (wb_deriv_info)             */
    int mf_iters;
    double mf_res;
} result_t;

static result_t RES[NH][NL];
static const char *md_path;

#define MIN_RCOND 1e-14
#define SENTINEL 12345.0

/* One (H, lambda): dense jacobian, dense vjp_at, matrix-free vjp_at, and
   the dense jacobian with the rcond guard disabled (min_rcond = 0). */
static void run_case(int ih, int il, result_t *r) {
    const hcase_t *hc = &HCASES[ih];
    double lambda = LAMBDAS[il], eig[NS];
    squad_t q;
    build(hc, 1000 + (uint64_t)ih, &q, eig);
    double lo = INFINITY, hi = 0.0;
    for (int i = 0; i < NS; i++) {
        lo = fmin(lo, eig[i] + lambda);
        hi = fmax(hi, fabs(eig[i] + lambda));
    }
    r->pd = lo > 0;
    r->cond = r->pd ? hi / lo : INFINITY;
    r->tol = 1e-13 * r->cond;

    /* references: J = (H + lambda I)^-1 C; g = C' (H + lambda I)^-1 dl */
    uint64_t seed = 77 + (uint64_t)ih;
    double dl[NS];
    for (int i = 0; i < NS; i++) dl[i] = 2 * wb_test_rand(&seed) - 1;
    long double Cl[NS * PS], Jref[NS * PS], dll[NS], vref[NS], gref[PS];
    for (int k = 0; k < NS * PS; k++) Cl[k] = q.C[k];
    for (int i = 0; i < NS; i++) dll[i] = dl[i];
    int have_ref = ref_solve(q.H, lambda, PS, Cl, Jref) == 0 &&
                   ref_solve(q.H, lambda, 1, dll, vref) == 0;
    if (have_ref)
        for (int j = 0; j < PS; j++) {
            long double s = 0;
            for (int i = 0; i < NS; i++) s += Cl[j * NS + i] * vref[i];
            gref[j] = s;
        }

    wb_energy e = {NS, PS, &q, sq_vg, sq_hess, sq_mixed_vjp, sq_mixed};
    double x[NS] = {0}, w[PS] = {0}, J[NS * PS], g[PS];
    for (int pass = 0; pass < 2; pass++) { /* 0: guards default, 1: min_rcond = curv_floor = 0 */
        wb_settings s;
        wb_settings_default(&s);
        assert_true(s.min_rcond == MIN_RCOND);
        s.lambda = lambda;
        if (pass == 1) s.min_rcond = 0.0, s.curv_floor = 0.0;
        s.max_iter = 0; /* judge the start only */
        wb_solver *sv = NULL;
        assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
        for (int i = 0; i < NS; i++) x[i] = 0.0;
        /* the gradient is zero at the start: the solve stops at once, WB_OK
           where H is positive (semi)definite; at the saddle of an
           indefinite H it is WB_MAXITER (no iteration left to leave it),
           and a derivative there comes back filled with that status */
        int indef = hc->kind == K_INDEF || hc->kind == K_INDEF_MILD;
        assert_int_equal(wb_solve(sv, w, x, NULL), indef ? WB_MAXITER : WB_OK);
        for (int k = 0; k < NS * PS; k++) J[k] = SENTINEL;
        wb_status st = wb_implicit_jacobian(sv, J);
        if (indef && st == WB_MAXITER) st = WB_OK;
        double err = NAN;
        if (st == WB_OK) {
            err = have_ref ? rel_err(NS * PS, J, Jref) : INFINITY;
        } else {
            for (int k = 0; k < NS * PS; k++) assert_true(J[k] == SENTINEL);
        }
        if (pass == 0) {
            wb_deriv_info di;
            wb_solver_deriv_info(sv, &di);
            r->rcond = di.rcond;
            r->st_jac = st;
            r->err_jac = err;
            for (int j = 0; j < PS; j++) g[j] = SENTINEL;
            r->st_vjp = wb_implicit_vjp_at(sv, w, x, dl, g);
            if (indef && r->st_vjp == WB_MAXITER) r->st_vjp = WB_OK;
            if (r->st_vjp == WB_OK)
                r->err_vjp = have_ref ? rel_err(PS, g, gref) : INFINITY;
            else
                for (int j = 0; j < PS; j++) assert_true(g[j] == SENTINEL);
        } else {
            r->st_jac_norcond = st;
            r->err_jac_norcond = err;
        }
        wb_solver_destroy(sv);
    }

    /* matrix-free: hvp and CG; no condition estimate */
    wb_energy em = {NS, PS, &q, sq_vg, NULL, sq_mixed_vjp, sq_mixed};
    em.hvp = sq_hvp;
    wb_settings s;
    wb_settings_default(&s);
    s.lambda = lambda;
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &em, &s), WB_OK);
    r->tol_mf = 10 * fmax(s.cg_tol, 1e-13) * r->cond;
    for (int j = 0; j < PS; j++) g[j] = SENTINEL;
    r->st_mf = wb_implicit_vjp_at(sv, w, x, dl, g);
    r->err_mf = NAN;
    if (r->st_mf >= 0) r->err_mf = have_ref ? rel_err(PS, g, gref) : INFINITY;
    else for (int j = 0; j < PS; j++) assert_true(g[j] == SENTINEL);
    wb_deriv_info di;
    wb_solver_deriv_info(sv, &di);
    r->mf_iters = di.cg_iterations;
    r->mf_res = di.cg_residual;
    wb_solver_destroy(sv);
}

static const char *st_name(wb_status s) {
    switch (s) {
    case WB_OK: return "WB_OK";
    case WB_MAXITER: return "WB_MAXITER";
    case WB_ESINGULAR: return "WB_ESINGULAR";
    case WB_ENONFINITE: return "WB_ENONFINITE";
    case WB_EINVAL: return "WB_EINVAL";
    default: return wb_status_str(s);
    }
}

/* "refused (WB_ESINGULAR)" or "3.1e-12" */
static void fmt_outcome(char *buf, size_t len, wb_status st, double err) {
    if (st < 0) snprintf(buf, len, "refused (%s)", st_name(st));
    else if (st > 0) snprintf(buf, len, "%.1e (%s)", err, st_name(st));
    else snprintf(buf, len, "%.1e", err);
}

static void fmt_cond(char *buf, size_t len, const result_t *r) {
    if (!r->pd) snprintf(buf, len, "not PD");
    else snprintf(buf, len, "%.1e", r->cond);
}

/* The rule of the header comment for one direct (dense) outcome; returns a
   complaint or NULL. */
static const char *judge_dense(const result_t *r, wb_status st, double err) {
    if (!r->pd) return st == WB_ESINGULAR ? NULL : "not refused although H + lambda I is not positive definite";
    if (st == WB_OK) {
        if (!(err <= r->tol)) return "WB_OK with an error above the tolerance";
        if (!(err < 1)) return "WB_OK with a garbage derivative";
        return NULL;
    }
    if (st != WB_ESINGULAR) return "a status other than WB_OK / WB_ESINGULAR";
    if (r->cond <= 1e-4 / MIN_RCOND) return "refused although well conditioned";
    return NULL;
}

static const char *judge_mf(const result_t *r) {
    wb_status st = r->st_mf;
    if (!r->pd) {
        /* CG meets no negative curvature on some right-hand sides; what it
           returns must then at least not be WB_OK with garbage */
        if (st == WB_ESINGULAR || st == WB_MAXITER || st == WB_STALLED)
            return NULL;
        return st == WB_OK ? "WB_OK on a non positive definite H + lambda I"
                           : "a status other than WB_ESINGULAR / WB_MAXITER "
                             "/ WB_STALLED";
    }
    if (st == WB_OK)
        return r->err_mf <= r->tol_mf && r->err_mf < 1 ? NULL
               : "WB_OK with an error above the CG tolerance";
    /* documented: inaccurate, said so (cap used up, or CG stagnated) */
    if (st == WB_MAXITER || st == WB_STALLED) return NULL;
    if (st == WB_ESINGULAR) return r->cond <= 1e6 ? "refused although well conditioned" : NULL;
    return "unexpected status";
}

static void write_markdown(FILE *f) {
    fprintf(f, "## Numerical stress: ill-conditioned, singular and indefinite "
               "Hessians\n\n");
    fprintf(f,
        "Generated by `tests/test_stress.c` (`test_stress --markdown`). "
        "E(x; w) = 1/2 x'Hx - x'Cw with n = %d, p = %d, H = Q diag(eig) Q' "
        "for a seeded random orthogonal Q, differentiated at (x, w) = (0, 0). "
        "*error* is the relative 2-norm error of dx*/dw "
        "(`wb_implicit_jacobian`) and of dL/dw (`wb_implicit_vjp_at`) "
        "against -(H + lambda I)^-1 B solved independently in long double; "
        "*tol* = 1e-13 cond(H + lambda I). `settings.min_rcond` = %g "
        "(default): a derivative whose reciprocal condition estimate *rcond* "
        "falls below it is refused with `WB_ESINGULAR`. The rule the test "
        "enforces: where H + lambda I is not positive definite the call is "
        "refused; where cond <= 1e10 it succeeds within *tol*; in between it "
        "succeeds within *tol* or is refused — never `WB_OK` with an error "
        "above *tol*. `settings.curv_floor` (default 32) also refuses a "
        "smallest curvature at the rounding level of E (here E = 0 at x*, so "
        "its scale is max |H_ii|). The column *min_rcond = 0* shows what "
        "the guards prevent (the user switched both off: not judged). The "
        "matrix-free "
        "path (hvp + CG) has no condition estimate: its contract is the CG "
        "residual (`cg_tol` = 1e-10), judged against 10 cg_tol cond, and a "
        "missed `cg_tol` is `WB_MAXITER` (cap used up) or `WB_STALLED` (CG "
        "stagnated), never silent.\n\n", NS, PS,
        MIN_RCOND);
    fprintf(f, "| H | lambda | cond(H + lambda I) | rcond estimate | "
               "jacobian error | vjp_at error | tol | min_rcond = 0 | "
               "matrix-free error (CG its) |\n");
    fprintf(f, "|---|---|---|---|---|---|---|---|---|\n");
    for (int ih = 0; ih < NH; ih++)
        for (int il = 0; il < NL; il++) {
            const result_t *r = &RES[ih][il];
            char c[32], a[48], b[48], n0[48], m[64], rc[32], tol[32];
            fmt_cond(c, sizeof c, r);
            fmt_outcome(a, sizeof a, r->st_jac, r->err_jac);
            fmt_outcome(b, sizeof b, r->st_vjp, r->err_vjp);
            fmt_outcome(n0, sizeof n0, r->st_jac_norcond, r->err_jac_norcond);
            char mm[48];
            fmt_outcome(mm, sizeof mm, r->st_mf, r->err_mf);
            snprintf(m, sizeof m, "%s (%d)", mm, r->mf_iters);
            if (r->rcond > 0) snprintf(rc, sizeof rc, "%.1e", r->rcond);
            else snprintf(rc, sizeof rc, "—");
            if (r->pd) snprintf(tol, sizeof tol, "%.0e", r->tol);
            else snprintf(tol, sizeof tol, "—");
            fprintf(f, "| %s | %g | %s | %s | %s | %s | %s | %s | %s |\n",
                    HCASES[ih].label, LAMBDAS[il], c, rc, a, b, tol, n0, m);
        }
    fprintf(f, "\n");
}

static void derivative_is_accurate_or_refused_never_garbage(void **st) {
    (void)st;
    int bad = 0;
    printf("    %-28s %-7s %-9s %-9s %-26s %-26s %-7s %-26s %s\n", "H",
           "lambda", "cond", "rcond", "jacobian", "vjp_at", "tol",
           "min_rcond=0", "matrix-free (CG its)");
    for (int ih = 0; ih < NH; ih++)
        for (int il = 0; il < NL; il++) {
            result_t *r = &RES[ih][il];
            run_case(ih, il, r);
            char c[32], a[48], b[48], n0[48], mm[48];
            fmt_cond(c, sizeof c, r);
            fmt_outcome(a, sizeof a, r->st_jac, r->err_jac);
            fmt_outcome(b, sizeof b, r->st_vjp, r->err_vjp);
            fmt_outcome(n0, sizeof n0, r->st_jac_norcond, r->err_jac_norcond);
            fmt_outcome(mm, sizeof mm, r->st_mf, r->err_mf);
            printf("    %-28s %-7g %-9s %-9.1e %-26s %-26s %-7.0e %-26s %s (%d)\n",
                   HCASES[ih].label, LAMBDAS[il], c, r->rcond, a, b,
                   r->pd ? r->tol : NAN, n0, mm, r->mf_iters);
            const char *why[3] = {judge_dense(r, r->st_jac, r->err_jac),
                                  judge_dense(r, r->st_vjp, r->err_vjp),
                                  judge_mf(r)};
            const char *what[3] = {"wb_implicit_jacobian", "wb_implicit_vjp_at",
                                   "wb_implicit_vjp_at (matrix-free)"};
            for (int k = 0; k < 3; k++)
                if (why[k]) {
                    print_error("%s, lambda = %g: %s: %s\n", HCASES[ih].label,
                                LAMBDAS[il], what[k], why[k]);
                    bad++;
                }
            /* with the guard off, a non-finite result is still an error */
            if (r->st_jac_norcond == WB_OK && !isfinite(r->err_jac_norcond) &&
                r->pd) {
                print_error("%s, lambda = %g: min_rcond = 0 gave WB_OK with "
                            "a non-finite derivative\n", HCASES[ih].label,
                            LAMBDAS[il]);
                bad++;
            }
        }
    if (md_path) {
        FILE *f = fopen(md_path, "w");
        assert_non_null(f);
        write_markdown(f);
        assert_int_equal(fclose(f), 0);
        printf("    wrote %s\n", md_path);
    }
    assert_int_equal(bad, 0);
}

/* The same point, refused or not, never leaves a half-written output and
   a refusal names its reason and the remedy. */
static void refusal_says_why_and_what_to_do(void **st) {
    (void)st;
    double eig[NS];
    squad_t q;
    build(&HCASES[0], 5, &q, eig); /* cond 1e2: well conditioned... */
    for (int i = 0; i < NS; i++) q.H[i * NS + i] -= 0.02; /* ...now indefinite */
    wb_energy e = {NS, PS, &q, sq_vg, sq_hess, sq_mixed_vjp, sq_mixed};
    wb_solver *sv = NULL;
    wb_settings s0;
    wb_settings_default(&s0);
    s0.max_iter = 0; /* stay at the saddle (wb_solve would leave it) */
    assert_int_equal(wb_solver_create(&sv, &e, &s0), WB_OK);
    double x[NS] = {0}, w[PS] = {0}, J[NS * PS];
    assert_int_equal(wb_solve(sv, w, x, NULL), WB_MAXITER);
    assert_int_equal(wb_implicit_jacobian(sv, J), WB_ESINGULAR);
    assert_non_null(strstr(wb_solver_message(sv), "not positive definite"));
    assert_non_null(strstr(wb_solver_message(sv), "lambda > 0"));
    wb_deriv_info di;
    wb_solver_deriv_info(sv, &di);
    assert_int_equal(di.status, WB_ESINGULAR);
    wb_solver_destroy(sv);

    build(&HCASES[7], 5, &q, eig); /* singular, rotated: rcond ~ 1e-17 */
    assert_int_equal(wb_solver_create(&sv, &e, NULL), WB_OK);
    assert_int_equal(wb_solve(sv, w, x, NULL), WB_OK);
    wb_status s = wb_implicit_jacobian(sv, J);
    assert_int_equal(s, WB_ESINGULAR);
    assert_non_null(strstr(wb_solver_message(sv), "lambda"));
    wb_solver_destroy(sv);
}

int main(int argc, char **argv) {
    md_path = getenv("WB_STRESS_MD");
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--markdown") == 0) md_path = argv[i + 1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(derivative_is_accurate_or_refused_never_garbage),
        cmocka_unit_test(refusal_says_why_and_what_to_do),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
