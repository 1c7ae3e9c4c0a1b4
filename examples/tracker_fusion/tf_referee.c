/* The referee between the fused track F and the train-chosen best single
 * tracker B (tf_referee.h): segments where they part, their features, the
 * cost-sensitive logistic model and its fit by Newton's method.
 *
 *   J(beta) = (1/W) sum_s w_s [softplus(u_s) - y_s u_s] + (ridge/2) |beta|^2
 *   u_s = beta . phi_s, p_s = sigmoid(u_s), W = sum_s w_s
 *   grad J = (1/W) sum_s w_s (p_s - y_s) phi_s + ridge beta
 *   H      = (1/W) sum_s w_s p_s (1 - p_s) phi_s phi_s' + ridge I   (> 0)
 * Newton: H step = -grad, solved by a Cholesky factorization of the
 * TF_REF_F x TF_REF_F matrix (each pivot checked > 0), then halving the
 * step until J does not increase. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tf_referee.h"

/* the box b (cx, cy, w, h in px) in the state's units of q */
static void to_state(const tf_rseq *q, const double *b, double *z) {
    z[0] = b[0] / q->S, z[1] = b[1] / q->S, z[2] = log(b[2]), z[3] = log(b[3]);
}

int tf_ref_segments(const tf_rseq *q, const double *theta, const double *F, const double *B,
                    double radius, int truth, tf_ref_seg **seg, int *nseg) {
    *seg = NULL, *nseg = 0;
    if (!q || !F || !B || !(radius > 0) || (truth && !q->truth)) return -1;
    int T = q->T, cap = 0, n = 0;
    tf_ref_seg *out = NULL;
    int t = 0;
    while (t < T) {
        const double *f = F + 4 * (size_t)t, *b = B + 4 * (size_t)t;
        if (!(hypot(f[0] - b[0], f[1] - b[1]) > radius)) {
            t++;
            continue;
        }
        int t0 = t;
        double sup = 0, sup1 = 0, dl = 0;
        int ns = 0;
        for (; t < T; t++) {
            f = F + 4 * (size_t)t, b = B + 4 * (size_t)t;
            if (!(hypot(f[0] - b[0], f[1] - b[1]) > radius)) break;
            double zf[4], zb[4];
            to_state(q, f, zf), to_state(q, b, zb);
            double sf = tf_robust_support(q, theta, t, zf, 1), sb = tf_robust_support(q, theta, t, zb, 1);
            double uf = tf_robust_support(q, theta, t, zf, 0), ub = tf_robust_support(q, theta, t, zb, 0);
            if (isfinite(sf) && isfinite(sb) && isfinite(uf) && isfinite(ub))
                sup += sf - sb, sup1 += uf - ub, ns++;
            if (truth) {
                double tx = q->truth[4 * t] * q->S, ty = q->truth[4 * t + 1] * q->S;
                dl += hypot(f[0] - tx, f[1] - ty) - hypot(b[0] - tx, b[1] - ty);
            }
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            tf_ref_seg *nw = realloc(out, sizeof(tf_ref_seg) * (size_t)cap);
            if (!nw) {
                free(out);
                return -1;
            }
            out = nw;
        }
        tf_ref_seg *s = &out[n++];
        s->t0 = t0, s->t1 = t;
        s->phi[0] = 1;
        s->phi[1] = ns ? sup / ns : 0;
        s->phi[2] = ns ? sup1 / ns : 0;
        s->phi[3] = log1p((t - t0) / 30.0);
        s->delta = truth ? dl / T : NAN;
    }
    *seg = out, *nseg = n;
    return 0;
}

static double softplus(double u) { return u > 0 ? u + log1p(exp(-u)) : log1p(exp(u)); }

double tf_ref_objective(const tf_ref_seg *seg, int n, double ridge, const double *beta,
                        double *grad) {
    double W = 0, J = 0, g[TF_REF_F] = {0};
    for (int i = 0; i < n; i++)
        if (isfinite(seg[i].delta)) W += fabs(seg[i].delta);
    for (int i = 0; i < n && W > 0; i++) {
        if (!isfinite(seg[i].delta)) continue;
        double w = fabs(seg[i].delta) / W, y = seg[i].delta > 0, u = 0;
        for (int j = 0; j < TF_REF_F; j++) u += beta[j] * seg[i].phi[j];
        double p = 1 / (1 + exp(-u));
        J += w * (softplus(u) - y * u);
        for (int j = 0; j < TF_REF_F; j++) g[j] += w * (p - y) * seg[i].phi[j];
    }
    for (int j = 0; j < TF_REF_F; j++) {
        J += 0.5 * ridge * beta[j] * beta[j];
        if (grad) grad[j] = g[j] + ridge * beta[j];
    }
    return J;
}

int tf_ref_fit(const tf_ref_seg *seg, int n, double ridge, double *beta, int *iters) {
    enum { F = TF_REF_F };
    for (int j = 0; j < F; j++) beta[j] = 0;
    if (iters) *iters = 0;
    if (!(ridge > 0) || n < 0 || (n > 0 && !seg)) return -1;
    double W = 0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < F; j++)
            if (!isfinite(seg[i].phi[j])) return -1;
        if (isfinite(seg[i].delta)) W += fabs(seg[i].delta);
    }
    double J = tf_ref_objective(seg, n, ridge, beta, NULL);
    for (int it = 0; it < 100; it++) {
        double g[F], H[F][F] = {{0}};
        tf_ref_objective(seg, n, ridge, beta, g);
        for (int i = 0; i < n && W > 0; i++) {
            if (!isfinite(seg[i].delta)) continue;
            double w = fabs(seg[i].delta) / W, u = 0;
            for (int j = 0; j < F; j++) u += beta[j] * seg[i].phi[j];
            double p = 1 / (1 + exp(-u));
            for (int a = 0; a < F; a++)
                for (int b = 0; b < F; b++) H[a][b] += w * p * (1 - p) * seg[i].phi[a] * seg[i].phi[b];
        }
        for (int a = 0; a < F; a++) H[a][a] += ridge;
        /* Cholesky H = L L' (lower L in H), each pivot checked */
        for (int c = 0; c < F; c++) {
            double d = H[c][c];
            for (int k = 0; k < c; k++) d -= H[c][k] * H[c][k];
            if (!(d > 0)) return -2;
            H[c][c] = sqrt(d);
            for (int r = c + 1; r < F; r++) {
                double v = H[r][c];
                for (int k = 0; k < c; k++) v -= H[r][k] * H[c][k];
                H[r][c] = v / H[c][c];
            }
        }
        double s[F];
        for (int r = 0; r < F; r++) { /* L y = -g */
            double v = -g[r];
            for (int k = 0; k < r; k++) v -= H[r][k] * s[k];
            s[r] = v / H[r][r];
        }
        for (int r = F - 1; r >= 0; r--) { /* L' step = y */
            double v = s[r];
            for (int k = r + 1; k < F; k++) v -= H[k][r] * s[k];
            s[r] = v / H[r][r];
        }
        double dec = 0; /* the Newton decrement g' H^-1 g = -g' step */
        for (int j = 0; j < F; j++) dec -= g[j] * s[j];
        if (iters) *iters = it + 1;
        if (!(dec > 1e-24)) break;
        double step = 1, nb[F], nJ = J;
        for (int h = 0; h < 60; h++, step *= 0.5) {
            for (int j = 0; j < F; j++) nb[j] = beta[j] + step * s[j];
            nJ = tf_ref_objective(seg, n, ridge, nb, NULL);
            if (nJ <= J) break;
        }
        if (!(nJ <= J)) break; /* no decrease at any step: at the minimum to rounding */
        memcpy(beta, nb, sizeof nb);
        J = nJ;
        if (dec < 1e-20) break;
    }
    return 0;
}

int tf_ref_apply(const tf_ref_seg *seg, int n, const double *beta, const double *B, double *F) {
    int sw = 0;
    for (int i = 0; i < n; i++) {
        double u = 0;
        for (int j = 0; j < TF_REF_F; j++) u += beta[j] * seg[i].phi[j];
        if (!(u > 0)) continue;
        memcpy(F + 4 * (size_t)seg[i].t0, B + 4 * (size_t)seg[i].t0,
               sizeof(double) * 4 * (size_t)(seg[i].t1 - seg[i].t0));
        sw++;
    }
    return sw;
}
