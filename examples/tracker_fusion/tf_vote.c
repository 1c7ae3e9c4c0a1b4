/* tracker_fusion: the start's vote weights, fitted on the training
 * sequences (see tf_robust.h, tf_robust_vote_fit, and README.md, "Vote
 * weights from the disagreements").
 *
 * The Viterbi start scores a candidate box j of frame t (a report) by
 *     cost_t(j) = sum_k a_k V_tjk,   V_tjk = r2_tjk / (r2_tjk + c0^2)
 * (r2: the energy's residual of report k against candidate j, at the start
 * parameters g = 1 and width c0; a vote saturates at a_k). Read as a hidden
 * Markov model, -cost is a log-likelihood and the jump cost a log transition
 * probability, so the a_k are log-odds. They are fitted where they matter:
 * in the training frames whose reports disagree, with the truth saying which
 * candidates are hits (centre error <= prec_px). In such a frame the best
 * hit h (the report nearest the truth) should cost less than every miss m:
 *     F(a) = 1/N sum_s 1/T_s sum_t 1/|M_t| sum_{m in M_t} log(1 + exp(a . D_tm))
 *            + mu/2 |a - a0|^2,     D_tm,k = V_thk - V_tmk,     a_k >= a_min
 * (each sequence weighs 1/N, each frame 1/T_s of it, as the per-sequence
 * metrics do; a frame without a hit or without a miss adds nothing). A
 * logistic ranking loss, convex in a; the prior a0 is the start weights the
 * caller had (mu = 1e-2, the ridge of the referee's fit). Trackers that
 * make their errors together (a look-alike that most of them follow) earn
 * no votes for agreeing with each other: only being right where the others
 * are wrong moves a weight up. Solved by cyclic coordinate descent, each
 * coordinate a safeguarded Newton step projected on a_k >= a_min (F is
 * convex and smooth, so the iteration converges to the constrained
 * minimizer; stopped when no weight moves by 1e-7 or after 200 sweeps). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tf_robust.h"

#define VOTE_MU 1e-2     /* the prior's weight: the referee's ridge          */
#define VOTE_AMIN 1e-3   /* the smallest vote weight (log: -6.9)              */
#define VOTE_SWEEPS 200

/* log(1 + e^z) and its two derivatives without overflow */
static double softplus(double z) { return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z)); }
static double sigm(double z) { return z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z)); }

/* V_tjk for candidate j of frame t (k not reporting: 0) */
static void votes(const tf_rseq *q, int t, int j, double *V) {
    size_t row = (size_t)t * q->K, ij = row + j;
    double is2 = q->is[t] * q->is[t], Dg[4] = {is2, is2, 1, 1}, c2 = TF_RC0 * TF_RC0;
    for (int k = 0; k < q->K; k++) {
        V[k] = 0;
        if (!q->m[row + k]) continue;
        double r2 = 0;
        for (int c = 0; c < 4; c++) {
            double d = q->ys[4 * ij + c] - q->ys[4 * (row + k) + c];
            r2 += Dg[c] * d * d;
        }
        V[k] = r2 / (r2 + c2);
    }
}

/* appends the pairs of every sequence in s[n] to P (D rows of K) and w */
static int collect(const tf_rseq *s, int n, double prec_px, double seq_w, double **D, double **w,
                   size_t *np, size_t *cap, int K) {
    double Vh[TF_RMAX_K], Vm[TF_RMAX_K], err[TF_RMAX_K];
    for (int i = 0; i < n; i++) {
        const tf_rseq *q = &s[i];
        if (!q->truth || q->K != K) return -1;
        for (int t = 0; t < q->T; t++) {
            size_t row = (size_t)t * K;
            int h = -1, nm = 0;
            for (int j = 0; j < K; j++) {
                err[j] = INFINITY;
                if (!q->m[row + j]) continue;
                double dx = q->ys[4 * (row + j)] - q->truth[4 * t];
                double dy = q->ys[4 * (row + j) + 1] - q->truth[4 * t + 1];
                err[j] = q->S * sqrt(dx * dx + dy * dy); /* centre error, px */
                if (err[j] <= prec_px) {
                    if (h < 0 || err[j] < err[h]) h = j;
                } else nm++;
            }
            if (h < 0 || !nm) continue; /* nothing to rank in this frame */
            votes(q, t, h, Vh);
            for (int j = 0; j < K; j++) {
                if (!q->m[row + j] || err[j] <= prec_px) continue;
                if (*np == *cap) {
                    size_t nc = *cap ? 2 * *cap : 4096;
                    double *nD = realloc(*D, sizeof(double) * nc * K);
                    if (!nD) return -1;
                    *D = nD;
                    double *nw = realloc(*w, sizeof(double) * nc);
                    if (!nw) return -1;
                    *w = nw, *cap = nc;
                }
                votes(q, t, j, Vm);
                for (int k = 0; k < K; k++) (*D)[*np * K + k] = Vh[k] - Vm[k];
                (*w)[*np] = seq_w / (q->T * (double)nm);
                (*np)++;
            }
        }
    }
    return 0;
}

double tf_vote_objective(const double *D, const double *w, size_t np, int K, const double *a,
                         const double *a0, double *grad) {
    double f = 0;
    if (grad)
        for (int k = 0; k < K; k++) grad[k] = VOTE_MU * (a[k] - a0[k]);
    for (int k = 0; k < K; k++) f += 0.5 * VOTE_MU * (a[k] - a0[k]) * (a[k] - a0[k]);
    for (size_t p = 0; p < np; p++) {
        const double *d = D + p * K;
        double z = 0;
        for (int k = 0; k < K; k++) z += a[k] * d[k];
        f += w[p] * softplus(z);
        if (grad) {
            double s = w[p] * sigm(z);
            for (int k = 0; k < K; k++) grad[k] += s * d[k];
        }
    }
    return f;
}

int tf_vote_solve(const double *D, const double *w, size_t np, int K, const double *a0,
                  double *a, int *sweeps) {
    if (K < 1 || K > TF_RMAX_K || (np && (!D || !w))) return -1;
    for (int k = 0; k < K; k++)
        if (!isfinite(a0[k])) return -1;
    for (size_t p = 0; p < np; p++) {
        if (!(w[p] >= 0) || !isfinite(w[p])) return -1;
        for (int k = 0; k < K; k++)
            if (!isfinite(D[p * K + k])) return -1;
    }
    double *z = malloc(sizeof(double) * (np ? np : 1));
    if (!z) return -1;
    for (int k = 0; k < K; k++) a[k] = fmax(a0[k], VOTE_AMIN);
    for (size_t p = 0; p < np; p++) {
        z[p] = 0;
        for (int k = 0; k < K; k++) z[p] += a[k] * D[p * K + k];
    }
    int sw = 0;
    for (; sw < VOTE_SWEEPS; sw++) {
        double moved = 0;
        for (int k = 0; k < K; k++) {
            /* F along coordinate k: phi(d) = sum_p w_p softplus(z_p + d D_pk)
               + mu/2 (a_k + d - a0_k)^2; Newton d = -phi'(0) / phi''(0), phi''
               >= mu > 0, projected on a_k + d >= a_min, halved until phi falls */
            double g = VOTE_MU * (a[k] - a0[k]), h = VOTE_MU, f0 = 0;
            for (size_t p = 0; p < np; p++) {
                double dk = D[p * K + k];
                if (dk == 0) continue;
                double s = sigm(z[p]);
                g += w[p] * s * dk, h += w[p] * s * (1 - s) * dk * dk;
                f0 += w[p] * softplus(z[p]);
            }
            f0 += 0.5 * VOTE_MU * (a[k] - a0[k]) * (a[k] - a0[k]);
            double d = -g / h;
            if (a[k] + d < VOTE_AMIN) d = VOTE_AMIN - a[k];
            for (int half = 0; half < 40 && d != 0; half++, d *= 0.5) {
                double f1 = 0.5 * VOTE_MU * (a[k] + d - a0[k]) * (a[k] + d - a0[k]);
                for (size_t p = 0; p < np; p++) {
                    double dk = D[p * K + k];
                    if (dk != 0) f1 += w[p] * softplus(z[p] + d * dk);
                }
                if (f1 <= f0) break;
            }
            if (d == 0 || !(fabs(d) > 0)) continue;
            a[k] += d;
            for (size_t p = 0; p < np; p++) z[p] += d * D[p * K + k];
            if (fabs(d) > moved) moved = fabs(d);
        }
        if (moved < 1e-7) {
            sw++;
            break;
        }
    }
    free(z);
    if (sweeps) *sweeps = sw;
    for (int k = 0; k < K; k++)
        if (!isfinite(a[k])) return -1;
    return 0;
}

int tf_robust_vote_fit(const tf_rseq *train, int ntrain, const tf_rseq *val, int nval,
                       double prec_px, const double *a0, double *a, tf_vote_info *info) {
    int n = ntrain + nval, K = ntrain ? train[0].K : nval ? val[0].K : 0;
    if (n < 1 || K < 1 || K > TF_RMAX_K || !(prec_px > 0)) return -1;
    double *D = NULL, *w = NULL;
    size_t np = 0, cap = 0;
    int rc = -1, sweeps = 0;
    if (!collect(train, ntrain, prec_px, 1.0 / n, &D, &w, &np, &cap, K) &&
        !collect(val, nval, prec_px, 1.0 / n, &D, &w, &np, &cap, K))
        rc = tf_vote_solve(D, w, np, K, a0, a, &sweeps);
    if (info) {
        memset(info, 0, sizeof *info);
        info->pairs = (long)np;
        info->sweeps = sweeps;
        if (!rc) {
            info->loss_before = tf_vote_objective(D, w, np, K, a0, a0, NULL);
            info->loss_after = tf_vote_objective(D, w, np, K, a, a0, NULL);
        }
    }
    free(D), free(w);
    return rc;
}
