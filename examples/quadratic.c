/* quadratic: the closed-form check a user can read in a minute.
 *
 *   E(x; w) = 1/2 x'Ax - x'Cw,   A SPD (3x3), C (3x2)
 *   grad_x E = Ax - Cw = 0      =>  x* = A^-1 C w
 *   H = A,  B = d/dw grad_x E = -C  =>  d(x*)/dw = -H^-1 B = A^-1 C
 *
 * The program solves with libwiberg, asks for the implicit Jacobian and a
 * VJP, and compares them with the closed form computed here by Cramer's rule
 * (no library code in the reference). Exit 0 when they agree to 1e-10.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <wiberg.h>

static const double A[9] = {4, 1, 0.5, /* column-major, symmetric */
                            1, 3, 0.2,
                            0.5, 0.2, 2};
static const double C[6] = {1, 0, 2,   /* column 0 */
                            -1, 1, 0}; /* column 1 */

static int value_grad(void *u, const double *x, const double *w, double *e,
                      double *g) {
    (void)u;
    double E = 0;
    for (int i = 0; i < 3; i++) {
        double ax = 0, cw = C[i] * w[0] + C[3 + i] * w[1];
        for (int j = 0; j < 3; j++) ax += A[j * 3 + i] * x[j];
        E += 0.5 * x[i] * ax - x[i] * cw;
        if (g) g[i] = ax - cw;
    }
    *e = E;
    return 0;
}
static int hess(void *u, const double *x, const double *w, double *H) {
    (void)u; (void)x; (void)w;
    memcpy(H, A, sizeof A);
    return 0;
}
static int mixed(void *u, const double *x, const double *w, double *B) {
    (void)u; (void)x; (void)w;
    for (int k = 0; k < 6; k++) B[k] = -C[k];
    return 0;
}

/* solve A y = b by Cramer's rule (3x3) */
static double det3(const double *M) {
    return M[0] * (M[4] * M[8] - M[7] * M[5]) - M[3] * (M[1] * M[8] - M[7] * M[2]) +
           M[6] * (M[1] * M[5] - M[4] * M[2]);
}
static void cramer(const double *b, double *y) {
    double d = det3(A);
    for (int k = 0; k < 3; k++) {
        double M[9];
        memcpy(M, A, sizeof M);
        for (int i = 0; i < 3; i++) M[k * 3 + i] = b[i];
        y[k] = det3(M) / d;
    }
}

int main(int argc, char **argv) {
    if (argc > 1) {
        int help = !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h");
        fprintf(help ? stdout : stderr,
                "usage: quadratic\n\nSolves E(x; w) = 1/2 x'Ax - x'Cw and checks x* and "
                "dx*/dw against the closed form A^-1 C (no options).\n");
        return help ? 0 : 2;
    }
    wb_energy e = {3, 2, NULL, value_grad, hess, NULL, mixed, 0, NULL, NULL, NULL};
    wb_settings s;
    wb_settings_default(&s);
    s.grad_tol = 1e-13;
    wb_solver *sv = NULL;
    double w[2] = {0.7, -1.3}, x[3] = {0, 0, 0}, J[6], dl_dx[3] = {1, 2, 3}, dl_dw[2];
    wb_info info;
    wb_status st = wb_solver_create(&sv, &e, &s);
    if (st == WB_OK) st = wb_solve(sv, w, x, &info);
    if (st == WB_OK) st = wb_implicit_jacobian(sv, J);
    if (st == WB_OK) st = wb_implicit_vjp(sv, dl_dx, dl_dw);
    if (st != WB_OK) {
        fprintf(stderr, "quadratic: %s: %s\n", wb_status_str(st), wb_solver_message(sv));
        wb_solver_destroy(sv);
        return 1;
    }
    /* closed form: x* = A^-1 C w, J = A^-1 C (column by column) */
    double cw[3], xs[3], Jref[6], err_x = 0, err_j = 0, err_v = 0;
    for (int i = 0; i < 3; i++) cw[i] = C[i] * w[0] + C[3 + i] * w[1];
    cramer(cw, xs);
    cramer(C, Jref);
    cramer(C + 3, Jref + 3);
    printf("solved in %d iterations, E = %.12f, |grad|_inf = %.2e\n\n", info.iterations,
           info.energy, info.grad_norm);
    printf("%-4s %20s %20s\n", "i", "x* (libwiberg)", "A^-1 C w (Cramer)");
    for (int i = 0; i < 3; i++) {
        printf("%-4d %20.15f %20.15f\n", i, x[i], xs[i]);
        err_x = fmax(err_x, fabs(x[i] - xs[i]));
    }
    printf("\n%-6s %20s %20s\n", "(i,j)", "dx*/dw (implicit)", "A^-1 C (Cramer)");
    for (int j = 0; j < 2; j++)
        for (int i = 0; i < 3; i++) {
            printf("(%d,%d)  %20.15f %20.15f\n", i, j, J[j * 3 + i], Jref[j * 3 + i]);
            err_j = fmax(err_j, fabs(J[j * 3 + i] - Jref[j * 3 + i]));
        }
    printf("\nVJP with dL/dx = (1, 2, 3):\n");
    for (int j = 0; j < 2; j++) {
        double ref = 0;
        for (int i = 0; i < 3; i++) ref += dl_dx[i] * Jref[j * 3 + i];
        printf("  dL/dw_%d = %.15f   (closed form %.15f)\n", j, dl_dw[j], ref);
        err_v = fmax(err_v, fabs(dl_dw[j] - ref));
    }
    int ok = err_x <= 1e-10 && err_j <= 1e-10 && err_v <= 1e-10;
    printf("\nmax |difference|: x* %.1e, Jacobian %.1e, VJP %.1e -> %s\n", err_x, err_j,
           err_v, ok ? "agree to 1e-10" : "DISAGREE");
    wb_solver_destroy(sv);
    return ok ? 0 : 1;
}
