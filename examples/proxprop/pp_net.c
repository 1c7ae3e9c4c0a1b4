/* proxprop: the MLP; see pp_net.h. Column j of every batch matrix is
 * example j, so each layer is one dgemm: Z = W A + b 1' forward,
 * dW = dZ A' and dA = W' dZ backward. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pp_net.h"
#include "pp_opt.h"
#include "pp_rng.h"

void pp_net_free(pp_net *N) {
    free(N->theta);
    free(N->grad);
    free(N->m1);
    free(N->m2);
    free(N->X);
    for (int l = 0; l < N->nl; l++) {
        free(N->Z[l]);
        free(N->A[l]);
        free(N->dZ[l]);
    }
    free(N->dA);
    memset(N, 0, sizeof *N);
}

static double *alloc_d(size_t n, int *ok) {
    double *p = *ok ? malloc(sizeof(double) * (n ? n : 1)) : NULL;
    if (!p) *ok = 0;
    return p;
}

int pp_net_alloc(pp_net *N, int nl, const int *sz, int cap, int adam) {
    memset(N, 0, sizeof *N);
    if (nl < 1 || nl > PP_MAX_LAYERS) return -1;
    N->nl = nl;
    memcpy(N->sz, sz, sizeof(int) * (size_t)(nl + 1));
    N->cap = cap;
    int wmax = 0, ok = 1;
    for (int l = 0; l < nl; l++)
        N->off[l + 1] = N->off[l] + (size_t)sz[l + 1] * (sz[l] + 1);
    for (int l = 0; l <= nl; l++)
        if (sz[l] > wmax) wmax = sz[l];
    size_t np = N->off[nl];
    N->theta = alloc_d(np, &ok);
    N->grad = alloc_d(np, &ok);
    N->m1 = alloc_d(np, &ok);
    if (adam) N->m2 = alloc_d(np, &ok);
    N->X = alloc_d((size_t)sz[0] * cap, &ok);
    for (int l = 0; l < nl; l++) {
        N->Z[l] = alloc_d((size_t)sz[l + 1] * cap, &ok);
        N->A[l] = alloc_d((size_t)sz[l + 1] * cap, &ok);
        N->dZ[l] = alloc_d((size_t)sz[l + 1] * cap, &ok);
    }
    N->dA = alloc_d((size_t)wmax * cap, &ok);
    if (!ok) {
        pp_net_free(N);
        return -1;
    }
    return 0;
}

void pp_net_init(pp_net *N, uint64_t seed) {
    uint64_t s = seed * 6151u + 11u;
    for (int l = 0; l < N->nl; l++) {
        double r = 1.0 / sqrt((double)N->sz[l]);
        double *T = N->theta + N->off[l];
        for (size_t k = 0; k < N->off[l + 1] - N->off[l]; k++)
            T[k] = r * (2 * rng_uniform(&s) - 1);
    }
    memset(N->m1, 0, sizeof(double) * N->off[N->nl]);
    if (N->m2) memset(N->m2, 0, sizeof(double) * N->off[N->nl]);
    N->adam_t = 0;
}

double pp_net_forward(pp_net *N, int m, const int *y, int *correct) {
    const double *in = N->X;
    const int nl = N->nl;
    for (int l = 0; l < nl; l++) {
        int o = N->sz[l + 1], i = N->sz[l];
        const double *T = N->theta + N->off[l], *b = T + (size_t)o * i;
        double *Z = N->Z[l], *A = N->A[l];
        /* Z = W A + b 1' */
        for (int j = 0; j < m; j++) memcpy(Z + (size_t)j * o, b, sizeof(double) * o);
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, o, m, i, 1.0, T,
                    o, in, i, 1.0, Z, o);
        if (l < nl - 1)
            for (size_t k = 0; k < (size_t)o * m; k++) A[k] = Z[k] > 0 ? Z[k] : 0.0;
        in = A;
    }
    /* softmax cross-entropy, stable: log sum exp (z - max) */
    int C = N->sz[nl], ok = 0;
    double loss = 0;
    for (int j = 0; j < m; j++) {
        const double *z = N->Z[nl - 1] + (size_t)j * C;
        double *p = N->A[nl - 1] + (size_t)j * C;
        double zmax = z[0];
        int arg = 0;
        for (int c = 1; c < C; c++)
            if (z[c] > zmax) zmax = z[c], arg = c;
        double s = 0;
        for (int c = 0; c < C; c++) s += (p[c] = exp(z[c] - zmax));
        for (int c = 0; c < C; c++) p[c] /= s;
        loss += log(s) + zmax - z[y[j]];
        ok += arg == y[j];
    }
    if (correct) *correct = ok;
    return loss / m;
}

void pp_net_backward(pp_net *N, int m, const int *y, int all_layers) {
    const int nl = N->nl, C = N->sz[nl];
    /* dL/dz_last = (P - onehot(y)) / m */
    for (int j = 0; j < m; j++) {
        const double *p = N->A[nl - 1] + (size_t)j * C;
        double *d = N->dZ[nl - 1] + (size_t)j * C;
        for (int c = 0; c < C; c++) d[c] = p[c] / m;
        d[y[j]] -= 1.0 / m;
    }
    for (int l = nl - 1; l >= 0; l--) {
        int o = N->sz[l + 1], i = N->sz[l];
        const double *Ain = l > 0 ? N->A[l - 1] : N->X;
        const double *dZ = N->dZ[l];
        if (all_layers || l == nl - 1) {
            /* dW = dZ A', db = dZ 1 */
            double *g = N->grad + N->off[l], *gb = g + (size_t)o * i;
            cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, o, i, m, 1.0, dZ,
                        o, Ain, i, 0.0, g, o);
            for (int r = 0; r < o; r++) gb[r] = 0.0;
            for (int j = 0; j < m; j++) {
                const double *d = dZ + (size_t)j * o;
                for (int r = 0; r < o; r++) gb[r] += d[r];
            }
        }
        if (l == 0) break;
        /* dA_in = W' dZ, then through the ReLU: dZ_in = dA_in [z_in > 0] */
        const double *W = N->theta + N->off[l];
        cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, i, m, o, 1.0, W, o,
                    dZ, o, 0.0, N->dA, i);
        const double *Zin = N->Z[l - 1];
        double *dZin = N->dZ[l - 1];
        for (size_t k = 0; k < (size_t)i * m; k++) dZin[k] = Zin[k] > 0 ? N->dA[k] : 0.0;
    }
}

void pp_net_nesterov(pp_net *N, double lr, double mu) {
    pp_opt_nesterov(N->off[N->nl], N->theta, N->grad, N->m1, lr, mu);
}

void pp_net_adam(pp_net *N, double lr) {
    pp_opt_adam(N->off[N->nl], N->theta, N->grad, N->m1, N->m2, &N->adam_t, lr);
}
