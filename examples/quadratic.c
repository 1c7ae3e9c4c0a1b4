/* quadratic: the closed-form check a user can read in a minute.
 *
 *   E(x; w) = 1/2 x'Ax - x'Cw,   A SPD (3 x 3), C (3 x 2), x in R^3, w in R^2
 *   grad_x E = Ax - Cw = 0       =>  x* = A^-1 C w
 *   H = A,  B = d/dw grad_x E = -C  =>  d(x*)/dw = -H^-1 B = A^-1 C
 *
 * The program solves with libwiberg, asks for the implicit Jacobian (lambda =
 * 0, the classic derivative) and a vector-Jacobian product, and compares
 * them with the closed form computed here by Cramer's rule (no library code
 * in the reference). Exit status 0 when everything agrees to 1e-10.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <wiberg.h>

enum { N = 3, P = 2 };
#define TOL 1e-10

/* column-major: A[i + N*j] = A_ij */
static const double A[N * N] = {4.0, 1.0, 0.5,  /* column 0 */
                                1.0, 3.0, 0.2,  /* column 1 */
                                0.5, 0.2, 2.0}; /* column 2 */
static const double C[N * P] = {1.0, 0.0, 2.0,  /* column 0 */
                                -1.0, 1.0, 0.0}; /* column 1 */

/* E = 1/2 x'Ax - x'Cw and grad_x E = Ax - Cw */
static int value_grad(void *u, const double *x, const double *w, double *e,
                      double *g) {
    (void)u;
    double E = 0;
    for (int i = 0; i < N; i++) {
        double ax = 0, cw = 0;
        for (int j = 0; j < N; j++) ax += A[i + N * j] * x[j];
        for (int j = 0; j < P; j++) cw += C[i + N * j] * w[j];
        E += 0.5 * x[i] * ax - x[i] * cw;
        if (g) g[i] = ax - cw;
    }
    *e = E;
    return 0;
}
/* H = d2E/dx2 = A */
static int hess(void *u, const double *x, const double *w, double *H) {
    (void)u, (void)x, (void)w;
    memcpy(H, A, sizeof A);
    return 0;
}
/* B = d/dw grad_x E = -C */
static int mixed(void *u, const double *x, const double *w, double *B) {
    (void)u, (void)x, (void)w;
    for (int k = 0; k < N * P; k++) B[k] = -C[k];
    return 0;
}

/* The reference: y = A^-1 b by Cramer's rule, y_k = det(A with column k
 * replaced by b) / det(A). */
static double det3(const double *M) {
    return M[0] * (M[4] * M[8] - M[7] * M[5]) - M[3] * (M[1] * M[8] - M[7] * M[2]) +
           M[6] * (M[1] * M[5] - M[4] * M[2]);
}
static void cramer(const double *b, double *y) {
    double d = det3(A);
    for (int k = 0; k < N; k++) {
        double M[N * N];
        memcpy(M, A, sizeof M);
        for (int i = 0; i < N; i++) M[i + N * k] = b[i];
        y[k] = det3(M) / d;
    }
}

static void usage(FILE *f) {
    fprintf(f,
        "usage: quadratic [-h | --help]\n"
        "\n"
        "Solves E(x; w) = 1/2 x'Ax - x'Cw (A 3x3 SPD, C 3x2, w = (0.7, -1.3))\n"
        "with libwiberg and checks x*, the implicit Jacobian dx*/dw (lambda = 0)\n"
        "and a VJP against the closed forms A^-1 C w and A^-1 C (Cramer's rule).\n"
        "\n"
        "options:\n"
        "  -h, --help   this text\n"
        "\n"
        "Exit status: 0 when all agree to 1e-10; 1 when they do not or a library\n"
        "call fails; 2 for a bad option.\n");
}

/* Prints a failed library call with the solver's own explanation. */
static int fail(const char *call, wb_status st, const wb_solver *sv) {
    fprintf(stderr, "quadratic: %s: %s: %s\n", call, wb_status_str(st),
            wb_solver_message(sv));
    return 1;
}

static int check(wb_solver *sv) {
    double w[P] = {0.7, -1.3}, x[N] = {0, 0, 0}, J[N * P];
    double dl_dx[N] = {1, 2, 3}, dl_dw[P];
    wb_info info;
    wb_status st = wb_solve(sv, w, x, &info);
    if (st != WB_OK) return fail("wb_solve", st, sv);
    char solved[160]; /* the solver's word on the solve, before the next call */
    snprintf(solved, sizeof solved, "%s", wb_solver_message(sv));
    st = wb_implicit_jacobian(sv, J);
    if (st != WB_OK) return fail("wb_implicit_jacobian", st, sv);
    st = wb_implicit_vjp(sv, dl_dx, dl_dw);
    if (st != WB_OK) return fail("wb_implicit_vjp", st, sv);

    /* the closed form: x* = A^-1 (C w), J = A^-1 C column by column, and
       the VJP dL/dw_j = sum_i dL/dx_i J_ij */
    double cw[N], xs[N], Jref[N * P], err_x = 0, err_j = 0, err_v = 0;
    for (int i = 0; i < N; i++) cw[i] = C[i] * w[0] + C[i + N] * w[1];
    cramer(cw, xs);
    for (int j = 0; j < P; j++) cramer(C + N * j, Jref + N * j);

    printf("E(x; w) = 1/2 x'Ax - x'Cw at w = (%g, %g)\n", w[0], w[1]);
    printf("wb_solve: %s\n", solved);
    printf("E(x*) = %.12f, %d iterations, %d Hessians\n\n", info.energy,
           info.iterations, info.hess_evaluations);
    printf("%-6s %20s %20s\n", "i", "x* (libwiberg)", "A^-1 C w (Cramer)");
    for (int i = 0; i < N; i++) {
        printf("%-6d %20.15f %20.15f\n", i, x[i], xs[i]);
        err_x = fmax(err_x, fabs(x[i] - xs[i]));
    }
    printf("\n%-6s %20s %20s\n", "(i,j)", "dx*/dw (implicit)", "A^-1 C (Cramer)");
    for (int j = 0; j < P; j++)
        for (int i = 0; i < N; i++) {
            printf("(%d,%d)  %20.15f %20.15f\n", i, j, J[i + N * j], Jref[i + N * j]);
            err_j = fmax(err_j, fabs(J[i + N * j] - Jref[i + N * j]));
        }
    printf("\nVJP with dL/dx* = (%g, %g, %g):\n", dl_dx[0], dl_dx[1], dl_dx[2]);
    for (int j = 0; j < P; j++) {
        double ref = 0;
        for (int i = 0; i < N; i++) ref += dl_dx[i] * Jref[i + N * j];
        printf("  dL/dw_%d = %18.15f   closed form %18.15f\n", j, dl_dw[j], ref);
        err_v = fmax(err_v, fabs(dl_dw[j] - ref));
    }
    int ok = err_x <= TOL && err_j <= TOL && err_v <= TOL;
    printf("\nmax |difference|: x* %.1e, Jacobian %.1e, VJP %.1e -> %s\n", err_x,
           err_j, err_v, ok ? "agree to 1e-10" : "DISAGREE (tolerance 1e-10)");
    return ok ? 0 : 1;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        fprintf(stderr, "quadratic: unknown option '%s' (see --help)\n", argv[i]);
        return 2;
    }
    wb_energy e = {.n = N, .p = P, .value_grad = value_grad, .hess = hess,
                   .mixed = mixed};
    wb_settings s;
    wb_settings_default(&s);
    s.lambda = 0;      /* the classic implicit derivative (also the default) */
    s.grad_tol = 1e-13; /* a quadratic: Newton lands on x* in a few steps */
    wb_solver *sv = NULL;
    wb_status st = wb_solver_create(&sv, &e, &s);
    if (st != WB_OK) {
        char why[256];
        wb_solver_explain(&e, &s, why, sizeof why);
        fprintf(stderr, "quadratic: wb_solver_create: %s: %s\n", wb_status_str(st),
                why);
        return 1;
    }
    int rc = check(sv);
    wb_solver_destroy(sv);
    return rc;
}
