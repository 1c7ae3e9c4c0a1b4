/* A tiny program built against the installed libwiberg: minimize
   E = (x - w)^2 and check x* = w and d(x*)/dw = 1. */
#include <math.h>
#include <stdio.h>
#include <wiberg.h>

static int vg(void *u, const double *x, const double *w, double *e, double *g) {
    (void)u;
    *e = (x[0] - w[0]) * (x[0] - w[0]);
    if (g) g[0] = 2 * (x[0] - w[0]);
    return 0;
}

int main(void) {
    wb_energy e = {1, 1, NULL, vg, NULL, NULL, NULL};
    wb_solver *sv = NULL;
    double x = 0, w = 3, J = 0;
    if (wb_solver_create(&sv, &e, NULL) != WB_OK) return 1;
    if (wb_solve(sv, &w, &x, NULL) != WB_OK) return 2;
    if (wb_implicit_jacobian(sv, &J) != WB_OK) return 3;
    wb_solver_destroy(sv);
    printf("libwiberg %s: x* = %g, dx*/dw = %g\n", wb_version(), x, J);
    return (fabs(x - 3) < 1e-8 && fabs(J - 1) < 1e-6) ? 0 : 4;
}
