/* proxprop: the ProxProp step of a linear layer by matrix-free CG; see
 * pp_cg.h for the two forms and their costs. All products go through BLAS
 * (cblas_dgemm / cblas_dsyrk); the per-row CG scalars are plain loops over
 * the columns (contiguous), one CG per row of T as in the library's
 * WB_PROX_CG and the paper's conjugate_gradient_block. */
#include <cblas.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pp_say.h"
#include "pp_cg.h"

struct pp_cg {
    int out, in, n, max_m, iters;
    double tau;
    pp_cg_form form;
    /* PP_CG_BATCH: K [max_m^2]; Xi, Rho, RK, Pi, PK, SK [out*max_m]
       PP_CG_PRIMAL: R, P, Q [out*n]; F [out*max_m]                     */
    double *K, *Xi, *Rho, *RK, *Pi, *PK, *SK;
    double *R, *P, *Q, *F;
    double *rr, *pq, *al; /* [out] per-row CG scalars                   */
};


void pp_cg_destroy(pp_cg *c) {
    if (!c) return;
    double *bufs[] = {c->K, c->Xi, c->Rho, c->RK, c->Pi, c->PK, c->SK,
                      c->R, c->P,  c->Q,   c->F,  c->rr, c->pq, c->al};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++) free(bufs[k]);
    free(c);
}

static double *alloc_d(size_t n, int *ok) {
    double *p = *ok ? malloc(sizeof(double) * (n ? n : 1)) : NULL;
    if (!p) *ok = 0;
    return p;
}

pp_cg *pp_cg_create(int out, int in, int max_m, double tau, int iters,
                    pp_cg_form form, char *err, size_t errlen) {
    if (out < 1 || in < 1 || in == 2147483647 || max_m < 1 || iters < 1 ||
        !(tau > 0 && isfinite(tau)) ||
        (form != PP_CG_BATCH && form != PP_CG_PRIMAL)) {
        pp_say(err, errlen, "pp_cg_create: out = %d, in = %d, max_m = %d, "
            "iters = %d must be >= 1 and tau = %g finite and > 0",
            out, in, max_m, iters, tau);
        return NULL;
    }
    /* BLAS takes int sizes */
    double n = (double)in + 1, big = 2147483647.0;
    if ((double)out * n > big || (double)out * max_m > big ||
        (form == PP_CG_BATCH && (double)max_m * max_m > big) || n * max_m > big) {
        pp_say(err, errlen, "pp_cg_create: out = %d, in = %d, batch %d: a "
            "product exceeds BLAS's int sizes", out, in, max_m);
        return NULL;
    }
    pp_cg *c = calloc(1, sizeof *c);
    if (!c) {
        pp_say(err, errlen, "pp_cg_create: out of memory");
        return NULL;
    }
    c->out = out;
    c->in = in;
    c->n = in + 1;
    c->max_m = max_m;
    c->iters = iters;
    c->tau = tau;
    c->form = form;
    size_t om = (size_t)out * max_m, on = (size_t)out * c->n;
    int ok = 1;
    if (form == PP_CG_BATCH) {
        c->K = alloc_d((size_t)max_m * max_m, &ok);
        c->Xi = alloc_d(om, &ok);
        c->Rho = alloc_d(om, &ok);
        c->RK = alloc_d(om, &ok);
        c->Pi = alloc_d(om, &ok);
        c->PK = alloc_d(om, &ok);
        c->SK = alloc_d(om, &ok);
    } else {
        c->R = alloc_d(on, &ok);
        c->P = alloc_d(on, &ok);
        c->Q = alloc_d(on, &ok);
        c->F = alloc_d(om, &ok);
    }
    c->rr = alloc_d((size_t)out, &ok);
    c->pq = alloc_d((size_t)out, &ok);
    c->al = alloc_d((size_t)out, &ok);
    if (!ok) {
        pp_cg_destroy(c);
        pp_say(err, errlen, "pp_cg_create: out of memory (a %d x %d layer, "
            "batch %d)", out, in, max_m);
        return NULL;
    }
    return c;
}

/* acc[r] = sum_j X(r, j) Y(r, j) for out x cols column-major X, Y */
static void rowdot(int out, int cols, const double *X, const double *Y,
                   double *acc) {
    for (int r = 0; r < out; r++) acc[r] = 0.0;
    for (int j = 0; j < cols; j++) {
        const double *x = X + (size_t)j * out, *y = Y + (size_t)j * out;
        for (int r = 0; r < out; r++) acc[r] += x[r] * y[r];
    }
}

/* alpha_r = rr_r / pq_r, 0 for a finished row (rr_r = 0) or pq_r <= 0 */
static void step_sizes(int out, const double *rr, const double *pq, double *al) {
    for (int r = 0; r < out; r++)
        al[r] = (rr[r] > 0 && pq[r] > 0) ? rr[r] / pq[r] : 0.0;
}

/* beta_r = rr_new / rr_old for the rows still running (alpha > 0 and a
   nonzero new residual); 0 and rr = 0 (finished) otherwise. Returns the
   number of rows still running. beta_out may be al (read first). */
static int next_directions(int out, double *rr, const double *rr_new,
                           double *beta_out, const double *al) {
    int active = 0;
    for (int r = 0; r < out; r++) {
        double b = 0.0;
        if (al[r] > 0 && rr_new[r] > 0) {
            b = rr_new[r] / rr[r];
            rr[r] = rr_new[r];
            active++;
        } else {
            rr[r] = 0.0;
        }
        beta_out[r] = b;
    }
    return active;
}

/* y(r, j) = sy y(r, j) + sx v_r x(r, j) (x, y: out x cols; v: [out]) */
static void scale_rows_add(int out, int cols, const double *v, const double *x,
                           double sx, double *y, double sy) {
    for (int j = 0; j < cols; j++) {
        const double *xc = x + (size_t)j * out;
        double *yc = y + (size_t)j * out;
        for (int r = 0; r < out; r++) yc[r] = sy * yc[r] + sx * v[r] * xc[r];
    }
}

/* The batch form. With r = Rho A1', p = Pi A1', T - T0 = Xi A1' and
   K = A1' A1:  p M = Pi (K + I/tau) A1',  <r_i, r_i> = rho_i K rho_i',
   <p_i, p_i M> = (pi_i K) (pi_i K + pi_i / tau)'.  PK = Pi K and RK = Rho K
   are carried by the same recurrences as Pi and Rho, so one product S K
   (S = PK) per iteration after the first; k iterations cost k products. */
static void step_batch(pp_cg *c, int m, const double *A, const double *D,
                       double *S) {
    const int out = c->out, in = c->in;
    const double itau = 1.0 / c->tau;
    const size_t om = (size_t)out * m;
    double *K = c->K, *Xi = c->Xi, *Rho = c->Rho, *RK = c->RK, *Pi = c->Pi,
           *PK = c->PK, *SK = c->SK, *rr = c->rr, *pq = c->pq, *al = c->al;
    /* K = A' A + 1 1' (lower by dsyrk, then mirrored) */
    cblas_dsyrk(CblasColMajor, CblasLower, CblasTrans, m, in, 1.0, A, in, 0.0, K, m);
    for (int j = 0; j < m; j++)
        for (int i = j; i < m; i++) {
            double v = K[i + (size_t)j * m] + 1.0;
            K[i + (size_t)j * m] = v;
            K[j + (size_t)i * m] = v;
        }
    /* Xi = 0; Rho = -D (the first residual -G = -D A1'); RK = Rho K */
    memset(Xi, 0, om * sizeof *Xi);
    for (size_t k = 0; k < om; k++) Rho[k] = -D[k];
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, out, m, m, 1.0, Rho,
                out, K, m, 0.0, RK, out);
    memcpy(Pi, Rho, om * sizeof *Pi);
    memcpy(PK, RK, om * sizeof *PK);
    rowdot(out, m, Rho, RK, rr);
    for (int it = 1; it <= c->iters; it++) {
        /* pq = pi K (pi K + pi/tau)' (one pass over the columns) */
        for (int r = 0; r < out; r++) pq[r] = 0.0;
        for (int j = 0; j < m; j++) {
            const double *pk = PK + (size_t)j * out, *pi = Pi + (size_t)j * out;
            for (int r = 0; r < out; r++) pq[r] += pk[r] * (pk[r] + itau * pi[r]);
        }
        step_sizes(out, rr, pq, al);
        /* Xi += alpha Pi */
        scale_rows_add(out, m, al, Pi, 1.0, Xi, 1.0);
        if (it == c->iters) break;
        /* SK = PK K; Rho -= alpha (PK + Pi/tau); RK -= alpha (SK + PK/tau);
           the new rr = rowdot(Rho, RK), in one pass */
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, out, m, m, 1.0,
                    PK, out, K, m, 0.0, SK, out);
        for (int r = 0; r < out; r++) pq[r] = 0.0;
        for (int j = 0; j < m; j++) {
            size_t o = (size_t)j * out;
            for (int r = 0; r < out; r++) {
                double rho = Rho[o + r] - al[r] * (PK[o + r] + itau * Pi[o + r]);
                double rk = RK[o + r] - al[r] * (SK[o + r] + itau * PK[o + r]);
                Rho[o + r] = rho;
                RK[o + r] = rk;
                pq[r] += rho * rk;
            }
        }
        /* beta; Pi = Rho + beta Pi; PK = RK + beta PK */
        int active = next_directions(out, rr, pq, al, al);
        if (!active) break;
        for (int j = 0; j < m; j++) {
            size_t o = (size_t)j * out;
            for (int r = 0; r < out; r++) {
                Pi[o + r] = Rho[o + r] + al[r] * Pi[o + r];
                PK[o + r] = RK[o + r] + al[r] * PK[o + r];
            }
        }
    }
    /* S = T0 - T+ = -Xi A1': S[:, 0:in] = -Xi A', S[:, in] = -Xi 1 */
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, out, in, m, -1.0, Xi,
                out, A, in, 0.0, S, out);
    double *sb = S + (size_t)out * in;
    for (int r = 0; r < out; r++) sb[r] = 0.0;
    for (int j = 0; j < m; j++) {
        const double *x = Xi + (size_t)j * out;
        for (int r = 0; r < out; r++) sb[r] -= x[r];
    }
}

/* Q = F A1' = [F A', F 1] for F out x m (the layer's adjoint product) */
static void adjoint(int out, int in, int m, double a, const double *F,
                    const double *A, double *Q) {
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, out, in, m, a, F, out,
                A, in, 0.0, Q, out);
    double *qb = Q + (size_t)out * in;
    for (int r = 0; r < out; r++) qb[r] = 0.0;
    for (int j = 0; j < m; j++) {
        const double *f = F + (size_t)j * out;
        for (int r = 0; r < out; r++) qb[r] += a * f[r];
    }
}

/* The primal form, as the paper's code: X = T - T0 from 0, R = -G, and
   P M = (P A1) A1' + P/tau through the forward and adjoint products. */
static void step_primal(pp_cg *c, int m, const double *A, const double *D,
                        double *S) {
    const int out = c->out, in = c->in, n = c->n;
    const double itau = 1.0 / c->tau;
    const size_t on = (size_t)out * n;
    double *X = S, *R = c->R, *P = c->P, *Q = c->Q, *F = c->F;
    double *rr = c->rr, *pq = c->pq, *al = c->al;
    memset(X, 0, on * sizeof *X);
    adjoint(out, in, m, -1.0, D, A, R); /* R = -D A1' = -G */
    memcpy(P, R, on * sizeof *P);
    rowdot(out, n, R, R, rr);
    for (int it = 1; it <= c->iters; it++) {
        /* F = P A1 = P[:, 0:in] A + p_b 1' (forward); Q = F A1' + P/tau */
        for (int j = 0; j < m; j++)
            memcpy(F + (size_t)j * out, P + (size_t)out * in, out * sizeof *F);
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, out, m, in, 1.0,
                    P, out, A, in, 1.0, F, out);
        adjoint(out, in, m, 1.0, F, A, Q);
        for (size_t k = 0; k < on; k++) Q[k] += itau * P[k];
        rowdot(out, n, P, Q, pq);
        step_sizes(out, rr, pq, al);
        scale_rows_add(out, n, al, P, 1.0, X, 1.0); /* X += alpha P */
        if (it == c->iters) break;
        scale_rows_add(out, n, al, Q, -1.0, R, 1.0); /* R -= alpha Q */
        rowdot(out, n, R, R, pq);
        if (!next_directions(out, rr, pq, al, al)) break;
        /* P = R + beta P */
        scale_rows_add(out, n, al, P, 1.0, P, 0.0);
        for (size_t k = 0; k < on; k++) P[k] += R[k];
    }
    for (size_t k = 0; k < on; k++) X[k] = -X[k];
}

int pp_cg_step(pp_cg *c, int m, const double *A, const double *D, double *S,
               char *err, size_t errlen) {
    if (m < 1 || m > c->max_m) {
        pp_say(err, errlen, "pp_cg_step: batch of %d examples; this layer takes "
            "1 to %d", m, c->max_m);
        return -1;
    }
    if (c->form == PP_CG_BATCH) step_batch(c, m, A, D, S);
    else step_primal(c, m, A, D, S);
    size_t on = (size_t)c->out * c->n;
    for (size_t k = 0; k < on; k++)
        if (!isfinite(S[k])) {
            pp_say(err, errlen, "pp_cg_step: the CG step is not finite (NaN or "
                "Inf in the batch, or an overflow)");
            return -1;
        }
    return 0;
}
