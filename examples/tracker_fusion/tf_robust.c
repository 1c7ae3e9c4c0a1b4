/* The non-convex, learned fusion of whole boxes: energy, derivatives,
 * features, start, training loss and the training driver.
 *
 * State z_t = (u, v, lw, lh) per frame: centre / S, log size. Tracker k reports
 * y_tk (same units). d = z_t - y_tk, D_t = diag(is_t^2, is_t^2, g, g) (is_t = S/s_t,
 * so the centre residual is in units of the frame's consensus box scale).
 *   r2 = d' D d,  phi_c(r2) = c^2 r2 / (r2 + c^2)   (Geman-McClure of the box residual)
 *   E = sum_tk m a_tk phi_{c_k}(r2_tk)
 *     + alpha_c sum_t is_t^2 |u_{t+1} - 2u_t + u_{t-1}|^2 (both centre coords)
 *     + alpha_s sum_t |lw_{t+1} - 2 lw_t + lw_{t-1}|^2 (and lh)
 *   a_tk = exp(theta_k + beta . f_tk)
 * phi' = c^4/(r2+c^2)^2, phi'' = -2 c^4/(r2+c^2)^3
 * grad_z = a phi' 2 D d;  H = a (2 phi' D + 4 phi'' (Dd)(Dd)')  (indefinite for r2 > c^2/3)
 * d grad/d log a = grad;  d grad/d log c = a 2Dd 4 c^4 r2/(r2+c^2)^3
 * d grad/d log g = a (phi'' 2 g(dp^2+dq^2) 2Dd + phi' 2 G d), G = diag(0,0,g,g)
 */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tf_robust.h"

typedef struct {
    double lw[TF_RMAX_K], c2[TF_RMAX_K], ac, as, g, beta[TF_RF];
} par;

static void getpar(const tf_rseq *q, const double *th, par *P) {
    int K = q->K;
    for (int k = 0; k < K; k++) {
        P->lw[k] = th[k];
        double c = exp(th[K + k]);
        P->c2[k] = c * c;
    }
    P->ac = exp(th[2 * K]);
    P->as = exp(th[2 * K + 1]);
    P->g = exp(th[2 * K + 2]);
    for (int j = 0; j < TF_RF; j++) P->beta[j] = th[2 * K + 3 + j];
}

static double conf(const tf_rseq *q, const par *P, size_t i, int k) {
    double s = P->lw[k];
    const double *f = q->f + i * TF_RF;
    for (int j = 0; j < TF_RF; j++) s += P->beta[j] * f[j];
    return exp(s > 30 ? 30 : s); /* a guard: learned weights stay far below e^30 */
}

static int vg(void *u, const double *x, const double *th, double *e, double *g) {
    const tf_rseq *q = u;
    par P;
    getpar(q, th, &P);
    int T = q->T, K = q->K;
    double E = 0;
    if (g) memset(g, 0, sizeof(double) * 4 * (size_t)T);
    for (int t = 0; t < T; t++) {
        double is2 = q->is[t] * q->is[t];
        double Dg[4] = {is2, is2, P.g, P.g};
        for (int k = 0; k < K; k++) {
            size_t i = (size_t)t * K + k;
            if (!q->m[i]) continue;
            double d[4], r2 = 0;
            for (int c = 0; c < 4; c++) {
                d[c] = x[4 * t + c] - q->ys[4 * i + c];
                r2 += Dg[c] * d[c] * d[c];
            }
            double a = conf(q, &P, i, k), c2 = P.c2[k], den = r2 + c2;
            E += a * c2 * r2 / den;
            if (g) {
                double p1 = c2 * c2 / (den * den);
                for (int c = 0; c < 4; c++) g[4 * t + c] += a * p1 * 2 * Dg[c] * d[c];
            }
        }
    }
    for (int t = 1; t + 1 < T; t++)
        for (int c = 0; c < 4; c++) {
            double w = c < 2 ? P.ac * q->is[t] * q->is[t] : P.as;
            double s2 = x[4 * (t + 1) + c] - 2 * x[4 * t + c] + x[4 * (t - 1) + c];
            E += w * s2 * s2;
            if (g) {
                g[4 * (t + 1) + c] += 2 * w * s2;
                g[4 * t + c] -= 4 * w * s2;
                g[4 * (t - 1) + c] += 2 * w * s2;
            }
        }
    *e = E;
    return 0;
}

static int kd_of(const tf_rseq *q) { return 4 * q->T - 1 < TF_RKD ? 4 * q->T - 1 : TF_RKD; }

static int band(void *u, const double *x, const double *th, double *AB) {
    const tf_rseq *q = u;
    par P;
    getpar(q, th, &P);
    int T = q->T, K = q->K, ld = kd_of(q) + 1;
    static const double sv[3] = {1, -2, 1};
    memset(AB, 0, sizeof(double) * (size_t)ld * 4 * (size_t)T);
    for (int t = 0; t < T; t++) {
        double is2 = q->is[t] * q->is[t];
        double Dg[4] = {is2, is2, P.g, P.g};
        for (int k = 0; k < K; k++) {
            size_t i = (size_t)t * K + k;
            if (!q->m[i]) continue;
            double d[4], Dd[4], r2 = 0;
            for (int c = 0; c < 4; c++) {
                d[c] = x[4 * t + c] - q->ys[4 * i + c];
                Dd[c] = Dg[c] * d[c];
                r2 += Dd[c] * d[c];
            }
            double a = conf(q, &P, i, k), c2 = P.c2[k], den = r2 + c2;
            double p1 = c2 * c2 / (den * den), p2 = -2 * c2 * c2 / (den * den * den);
            for (int cc = 0; cc < 4; cc++)
                for (int rr = cc; rr < 4; rr++) {
                    double h = 4 * p2 * Dd[rr] * Dd[cc] + (rr == cc ? 2 * p1 * Dg[cc] : 0);
                    AB[(size_t)(rr - cc) + (size_t)(4 * t + cc) * ld] += a * h;
                }
        }
    }
    for (int t = 1; t + 1 < T; t++)
        for (int c = 0; c < 4; c++) {
            double w = c < 2 ? P.ac * q->is[t] * q->is[t] : P.as;
            for (int a = 0; a < 3; a++)
                for (int b = 0; b <= a; b++) {
                    int row = 4 * (t - 1 + a) + c, col = 4 * (t - 1 + b) + c;
                    AB[(size_t)(row - col) + (size_t)col * ld] += 2 * w * sv[a] * sv[b];
                }
        }
    return 0;
}

static int mixed_vjp(void *u, const double *x, const double *th, const double *v, double *out) {
    const tf_rseq *q = u;
    par P;
    getpar(q, th, &P);
    int T = q->T, K = q->K, p = TF_RP(K);
    for (int j = 0; j < p; j++) out[j] = 0;
    for (int t = 0; t < T; t++) {
        double is2 = q->is[t] * q->is[t];
        double Dg[4] = {is2, is2, P.g, P.g};
        for (int k = 0; k < K; k++) {
            size_t i = (size_t)t * K + k;
            if (!q->m[i]) continue;
            double d[4], Dd[4], r2 = 0, vDd = 0, vGd = 0, r2g = 0;
            for (int c = 0; c < 4; c++) {
                d[c] = x[4 * t + c] - q->ys[4 * i + c];
                Dd[c] = Dg[c] * d[c];
                r2 += Dd[c] * d[c];
                vDd += v[4 * t + c] * Dd[c];
            }
            for (int c = 2; c < 4; c++) {
                vGd += v[4 * t + c] * P.g * d[c];
                r2g += P.g * d[c] * d[c];
            }
            double a = conf(q, &P, i, k), c2 = P.c2[k], den = r2 + c2;
            double p1 = c2 * c2 / (den * den), p2 = -2 * c2 * c2 / (den * den * den);
            double gl = a * p1 * 2 * vDd; /* v . d grad / d log a */
            out[k] += gl;
            const double *f = q->f + i * TF_RF;
            for (int j = 0; j < TF_RF; j++) out[2 * K + 3 + j] += f[j] * gl;
            out[K + k] += a * 2 * vDd * 4 * c2 * c2 * r2 / (den * den * den);
            out[2 * K + 2] += a * (p2 * r2g * 2 * vDd + p1 * 2 * vGd);
        }
    }
    for (int t = 1; t + 1 < T; t++)
        for (int c = 0; c < 4; c++) {
            double w = c < 2 ? P.ac * q->is[t] * q->is[t] : P.as;
            double s2 = x[4 * (t + 1) + c] - 2 * x[4 * t + c] + x[4 * (t - 1) + c];
            double vs = v[4 * (t + 1) + c] - 2 * v[4 * t + c] + v[4 * (t - 1) + c];
            out[c < 2 ? 2 * K : 2 * K + 1] += 2 * w * s2 * vs;
        }
    return 0;
}

wb_energy tf_robust_energy(const tf_rseq *q) {
    wb_energy e;
    memset(&e, 0, sizeof e);
    e.n = 4 * q->T;
    e.p = TF_RP(q->K);
    e.user = (void *)q;
    e.value_grad = vg;
    e.mixed_vjp = mixed_vjp;
    e.kd = kd_of(q);
    e.hess_band = band;
    return e;
}

/* L = mean_t sqrt(is_true^2 |dc|^2 + ws (dlw^2 + dlh^2) + eps) */
#define LOSS_WS 0.5
#define LOSS_EPS 1e-4
double tf_robust_loss(const tf_rseq *q, const double *x, double *dl) {
    double L = 0;
    int T = q->T;
    for (int t = 0; t < T; t++) {
        double d[4], w[4] = {q->tis[t] * q->tis[t], q->tis[t] * q->tis[t], LOSS_WS, LOSS_WS}, s = LOSS_EPS;
        for (int c = 0; c < 4; c++) {
            d[c] = x[4 * t + c] - q->truth[4 * t + c];
            s += w[c] * d[c] * d[c];
        }
        double e = sqrt(s);
        L += e / T;
        if (dl)
            for (int c = 0; c < 4; c++) dl[4 * t + c] = w[c] * d[c] / (e * T);
    }
    return L;
}

/* In px: L = mean_t s_t sqrt(is_true^2 |dc|^2 + ws (dlw^2 + dlh^2) + eps),
   s_t = S / is_true = sqrt(w h) of the truth in px, i.e.
   L = mean_t sqrt(|dc_px|^2 + s_t^2 (ws (dlw^2 + dlh^2) + eps)): its centre
   part is the centre error in px that the benchmarks average, so a lost
   stretch weighs by its pixels, not by its box scales. */
double tf_robust_loss_px(const tf_rseq *q, const double *x, double *dl) {
    double L = 0;
    int T = q->T;
    for (int t = 0; t < T; t++) {
        double d[4], w[4] = {q->tis[t] * q->tis[t], q->tis[t] * q->tis[t], LOSS_WS, LOSS_WS},
               s = LOSS_EPS, st = q->S / q->tis[t];
        for (int c = 0; c < 4; c++) {
            d[c] = x[4 * t + c] - q->truth[4 * t + c];
            s += w[c] * d[c] * d[c];
        }
        double e = sqrt(s);
        L += st * e / T;
        if (dl)
            for (int c = 0; c < 4; c++) dl[4 * t + c] = w[c] * d[c] / (e * T) * st;
    }
    return L;
}

double tf_robust_support(const tf_rseq *q, const double *th, int t, const double *z, int weighted) {
    par P;
    getpar(q, th, &P);
    int K = q->K;
    double is2 = q->is[t] * q->is[t], Dg[4] = {is2, is2, P.g, P.g}, num = 0, den = 0;
    for (int k = 0; k < K; k++) {
        size_t i = (size_t)t * K + k;
        if (!q->m[i]) continue;
        double r2 = 0;
        for (int c = 0; c < 4; c++) {
            double d = z[c] - q->ys[4 * i + c];
            r2 += Dg[c] * d * d;
        }
        double a = weighted ? conf(q, &P, i, k) : 1;
        num += a * P.c2[k] / (r2 + P.c2[k]);
        den += a;
    }
    return den > 0 ? num / den : NAN;
}

void tf_robust_boxes(const tf_rseq *q, const double *x, double *box) {
    for (int t = 0; t < q->T; t++) {
        box[4 * t] = x[4 * t] * q->S;
        box[4 * t + 1] = x[4 * t + 1] * q->S;
        box[4 * t + 2] = exp(x[4 * t + 2]);
        box[4 * t + 3] = exp(x[4 * t + 3]);
    }
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), cmpd);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void tf_rseq_free(tf_rseq *q) {
    free(q->ys);
    free(q->m);
    free(q->is);
    free(q->f);
    free(q->x_irls);
    free(q->truth);
    free(q->tis);
    memset(q, 0, sizeof *q);
}

#define C_START TF_RC0 /* Geman-McClure width of the IRLS anchor (box scales) */

/* The per-frame robust consensus of centres: Weiszfeld's weighted geometric
   median (weights w0, 50 iterations), then 30 Geman-McClure IRLS steps
   (width C_START box scales); sizes: the IRLS-weighted mean of log sizes. */
static void irls_frame(int K, const double *y, const unsigned char *m, const double *w0,
                       double s, const double *cons, double *z) {
    double cx = cons[0], cy = cons[1], wt[TF_RMAX_K] = {0};
    for (int it = 0; it < 50; it++) {
        double sx = 0, sy = 0, sw = 0;
        for (int k = 0; k < K; k++) {
            if (!m[k]) continue;
            double dx = (y[4 * k] - cx) / s, dy = (y[4 * k + 1] - cy) / s;
            double w = w0[k] / fmax(sqrt(dx * dx + dy * dy), 1e-3);
            sx += w * y[4 * k], sy += w * y[4 * k + 1], sw += w;
        }
        cx = sx / sw, cy = sy / sw;
    }
    const double c2 = C_START * C_START;
    for (int it = 0; it < 30; it++) {
        double sx = 0, sy = 0, sw = 0;
        for (int k = 0; k < K; k++) {
            wt[k] = 0;
            if (!m[k]) continue;
            double dx = (y[4 * k] - cx) / s, dy = (y[4 * k + 1] - cy) / s;
            double den = dx * dx + dy * dy + c2;
            wt[k] = w0[k] * c2 * c2 / (den * den); /* phi'(r2) */
            sx += wt[k] * y[4 * k], sy += wt[k] * y[4 * k + 1], sw += wt[k];
        }
        if (!(sw > 1e-300)) break;
        cx = sx / sw, cy = sy / sw;
    }
    double lw = 0, lh = 0, sw = 0;
    for (int k = 0; k < K; k++) {
        if (!m[k] || !(wt[k] > 0)) continue;
        lw += wt[k] * log(y[4 * k + 2]), lh += wt[k] * log(y[4 * k + 3]), sw += wt[k];
    }
    z[0] = cx, z[1] = cy;
    z[2] = sw > 0 ? lw / sw : cons[2];
    z[3] = sw > 0 ? lh / sw : cons[3];
}

int tf_rseq_init(tf_rseq *q, int T, int K, const double *y, const unsigned char *m,
                 const double *truth, const double *w0) {
    memset(q, 0, sizeof *q);
    if (T < 1 || K < 1 || K > TF_RMAX_K) return -1;
    size_t TK = (size_t)T * K;
    q->T = T, q->K = K;
    q->ys = malloc(sizeof(double) * 4 * TK);
    q->m = malloc(TK);
    q->is = malloc(sizeof(double) * T);
    q->f = calloc(TK * TF_RF, sizeof(double));
    q->x_irls = malloc(sizeof(double) * 4 * T);
    double *st = malloc(sizeof(double) * T), *cons = malloc(sizeof(double) * 4 * T);
    if (truth) {
        q->truth = malloc(sizeof(double) * 4 * T);
        q->tis = malloc(sizeof(double) * T);
    }
    int first = -1;
    for (size_t i = 0; i < TK && first < 0; i++)
        if (m[i]) first = (int)(i / K);
    if (!q->ys || !q->m || !q->is || !q->f || !q->x_irls || !st || !cons ||
        (truth && (!q->truth || !q->tis)) || first < 0) {
        free(st), free(cons);
        tf_rseq_free(q);
        return -1;
    }
    memcpy(q->m, m, TK);
    /* consensus: the median box of every frame (a frame without reports
       keeps the previous one; those before the first report, the first) */
    double v[TF_RMAX_K], last[4];
    for (int t = first; t >= 0; t--)
        for (int c = 0; c < 4; c++) {
            int n = 0;
            for (int k = 0; k < K; k++)
                if (m[(size_t)first * K + k]) {
                    double yy = y[4 * ((size_t)first * K + k) + c];
                    v[n++] = c < 2 ? yy : log(yy);
                }
            last[c] = median(v, n);
        }
    for (int t = 0; t < T; t++) {
        for (int c = 0; c < 4; c++) {
            int n = 0;
            for (int k = 0; k < K; k++)
                if (m[(size_t)t * K + k]) {
                    double yy = y[4 * ((size_t)t * K + k) + c];
                    v[n++] = c < 2 ? yy : log(yy);
                }
            if (n) last[c] = median(v, n);
            cons[4 * t + c] = last[c];
        }
        st[t] = exp(0.5 * (cons[4 * t + 2] + cons[4 * t + 3]));
    }
    q->S = st[first];
    for (int t = 0; t < T; t++) q->is[t] = q->S / st[t];
    for (size_t i = 0; i < TK; i++) {
        q->ys[4 * i] = m[i] ? y[4 * i] / q->S : 0;
        q->ys[4 * i + 1] = m[i] ? y[4 * i + 1] / q->S : 0;
        q->ys[4 * i + 2] = m[i] ? log(y[4 * i + 2]) : 0;
        q->ys[4 * i + 3] = m[i] ? log(y[4 * i + 3]) : 0;
    }
    for (int t = 0; t < T; t++) {
        double z[4];
        int n = 0;
        for (int k = 0; k < K; k++) n += m[(size_t)t * K + k];
        if (n) irls_frame(K, y + 4 * (size_t)t * K, m + (size_t)t * K, w0, st[t], cons + 4 * t, z);
        else
            for (int c = 0; c < 4; c++) z[c] = cons[4 * t + c];
        q->x_irls[4 * t] = z[0] / q->S, q->x_irls[4 * t + 1] = z[1] / q->S;
        q->x_irls[4 * t + 2] = z[2], q->x_irls[4 * t + 3] = z[3];
    }
    /* Features of tracker k in frame t, from the reports only (0 where the
       previous report is missing), each as log(1 + value / scale), distances
       in units of s_t:
       f0 distance to the median centre of the other trackers (scale 0.25),
       f1 its running mean, e_t = 0.9 e_{t-1} + 0.1 f0's distance (0.25),
       f2 the jump from its previous report (0.1),
       f3 |change of its log area| since its previous report (0.05),
       f4 |its log area - the others' median log area| (0.1),
       f5 distance to the frame's robust consensus x_irls (0.25). */
    double ema[TF_RMAX_K] = {0};
    for (int t = 0; t < T; t++) {
        double s = st[t];
        for (int k = 0; k < K; k++) {
            size_t i = (size_t)t * K + k;
            double *f = q->f + i * TF_RF;
            if (!m[i]) continue;
            double la = log(y[4 * i + 2] * y[4 * i + 3]), mc[3];
            for (int c = 0; c < 3; c++) {
                int n = 0;
                for (int j = 0; j < K; j++) {
                    size_t ij = (size_t)t * K + j;
                    if (j == k || !m[ij]) continue;
                    v[n++] = c < 2 ? y[4 * ij + c] : log(y[4 * ij + 2] * y[4 * ij + 3]);
                }
                mc[c] = n ? median(v, n) : (c < 2 ? y[4 * i + c] : la);
            }
            double dl = hypot(y[4 * i] - mc[0], y[4 * i + 1] - mc[1]) / s;
            ema[k] = t ? 0.9 * ema[k] + 0.1 * dl : dl;
            f[0] = log1p(dl / 0.25);
            f[1] = log1p(ema[k] / 0.25);
            if (t > 0 && m[i - K]) {
                size_t ip = i - K;
                f[2] = log1p(hypot(y[4 * i] - y[4 * ip], y[4 * i + 1] - y[4 * ip + 1]) / s / 0.1);
                f[3] = log1p(fabs(la - log(y[4 * ip + 2] * y[4 * ip + 3])) / 0.05);
            }
            f[4] = log1p(fabs(la - mc[2]) / 0.1);
            f[5] = log1p(hypot(y[4 * i] / q->S - q->x_irls[4 * t],
                               y[4 * i + 1] / q->S - q->x_irls[4 * t + 1]) * q->is[t] / 0.25);
        }
    }
    if (truth)
        for (int t = 0; t < T; t++) {
            q->truth[4 * t] = truth[4 * t] / q->S;
            q->truth[4 * t + 1] = truth[4 * t + 1] / q->S;
            q->truth[4 * t + 2] = log(truth[4 * t + 2]);
            q->truth[4 * t + 3] = log(truth[4 * t + 3]);
            q->tis[t] = q->S / sqrt(truth[4 * t + 2] * truth[4 * t + 3]);
        }
    free(st);
    free(cons);
    return 0;
}

void tf_robust_theta0(int K, const double *w0, double *th) {
    for (int j = 0; j < TF_RP(K); j++) th[j] = 0;
    for (int k = 0; k < K; k++) {
        th[k] = log(w0[k]);
        th[K + k] = log(C_START);
    }
    /* alpha_c = alpha_s = g = 1, beta = 0 */
}

#define GAMMA 2.0 /* Viterbi jump cost per squared box scale ...     */
#define JCAP 16.0 /* ... capped at a jump of 4 box scales             */

/* Viterbi over candidates = the reported boxes of each frame:
     cost_t(j) = sum_k a_tk phi_ck(r2(y_tj - y_tk)) / c_k^2  (each vote saturates at a_tk)
               + min_i [cost_{t-1}(i) + GAMMA min(is_t^2 |c_tj - c_{t-1,i}|^2, JCAP)]
   then, along the best path, Geman-McClure IRLS of each frame from its
   candidate: z <- sum_k a phi'(r2) y_tk / sum_k a phi'(r2), 20 steps (the
   energy's data term without the smoothing). Frames without a report take
   the nearest later frame's value (the last ones, the nearest earlier). */
/* The Viterbi transition into report ij (frame t) from the candidates i of
   the previous frame with reports tp: min_i prev[i] + GAMMA min(is_t^2
   |c_ij - c_tp,i|^2, JCAP); *from = the arg min. */
static double jump_in(const tf_rseq *q, int tp, size_t ij, double is2, const double *prev,
                      int *from) {
    double best = INFINITY;
    for (int i = 0; i < q->K; i++) {
        if (!(prev[i] < INFINITY)) continue;
        size_t pi = (size_t)tp * q->K + i;
        double dx = q->ys[4 * ij] - q->ys[4 * pi], dy = q->ys[4 * ij + 1] - q->ys[4 * pi + 1];
        double r2 = (dx * dx + dy * dy) * is2, b = prev[i] + GAMMA * (r2 < JCAP ? r2 : JCAP);
        if (b < best) best = b, *from = i;
    }
    return best;
}

void tf_robust_start(const tf_rseq *q, const double *th, double *x0) {
    par P;
    getpar(q, th, &P);
    int T = q->T, K = q->K, have_next = 0, tp = -1; /* tp: last frame with reports */
    double *cost = malloc(sizeof(double) * (size_t)T * K);
    int *from = malloc(sizeof(int) * (size_t)T * K);
    if (!cost || !from) { /* out of memory: the per-frame consensus */
        memcpy(x0, q->x_irls, sizeof(double) * 4 * (size_t)T);
        free(cost), free(from);
        return;
    }
    double prev[TF_RMAX_K];
    for (int j = 0; j < K; j++) prev[j] = INFINITY;
    for (int t = 0; t < T; t++) {
        double is2 = q->is[t] * q->is[t], Dg[4] = {is2, is2, P.g, P.g}, mn = INFINITY;
        int any_prev = tp >= 0;
        for (int j = 0; j < K; j++) {
            size_t ij = (size_t)t * K + j;
            cost[ij] = INFINITY, from[ij] = -1;
            if (!q->m[ij]) continue;
            double c = 0;
            for (int k = 0; k < K; k++) {
                size_t i = (size_t)t * K + k;
                if (!q->m[i]) continue;
                double r2 = 0;
                for (int cc = 0; cc < 4; cc++) {
                    double d = q->ys[4 * ij + cc] - q->ys[4 * i + cc];
                    r2 += Dg[cc] * d * d;
                }
                c += conf(q, &P, i, k) * r2 / (r2 + P.c2[k]); /* phi / c^2, in [0, a) */
            }
            cost[ij] = (any_prev ? jump_in(q, tp, ij, is2, prev, &from[ij]) : 0) + c;
            if (cost[ij] < mn) mn = cost[ij];
        }
        if (mn < INFINITY) { /* a frame with reports: shift to min 0 */
            for (int j = 0; j < K; j++) prev[j] = cost[(size_t)t * K + j] - mn;
            tp = t;
        } /* a frame without reports: prev and tp stay (the path skips it) */
    }
    /* backtrack; cur = the candidate chosen at frame t */
    int cur = -1;
    for (int t = T - 1; t >= 0; t--) {
        size_t row = (size_t)t * K;
        int n = 0;
        for (int k = 0; k < K; k++) n += q->m[row + k];
        if (!n) { /* no report: filled below; the path goes on through */
            for (int c = 0; c < 4; c++) x0[4 * t + c] = NAN;
            continue;
        }
        if (cur < 0) { /* the last frame with reports: its best candidate */
            double mn = INFINITY;
            for (int j = 0; j < K; j++)
                if (cost[row + j] < mn) mn = cost[row + j], cur = j;
        }
        double z[4], is2 = q->is[t] * q->is[t], Dg[4] = {is2, is2, P.g, P.g};
        for (int c = 0; c < 4; c++) z[c] = q->ys[4 * (row + cur) + c];
        for (int it = 0; it < 20; it++) {
            double acc[4] = {0, 0, 0, 0}, sw = 0;
            for (int k = 0; k < K; k++) {
                if (!q->m[row + k]) continue;
                double r2 = 0;
                for (int c = 0; c < 4; c++) {
                    double d = z[c] - q->ys[4 * (row + k) + c];
                    r2 += Dg[c] * d * d;
                }
                double den = r2 + P.c2[k], w = conf(q, &P, row + k, k) * P.c2[k] * P.c2[k] / (den * den);
                for (int c = 0; c < 4; c++) acc[c] += w * q->ys[4 * (row + k) + c];
                sw += w;
            }
            if (!(sw > 1e-300)) break;
            for (int c = 0; c < 4; c++) z[c] = acc[c] / sw;
        }
        for (int c = 0; c < 4; c++) x0[4 * t + c] = z[c];
        cur = from[row + cur];
    }
    /* frames without reports: the nearest later value, else the nearest earlier */
    for (int t = T - 1; t >= 0; t--) {
        if (!isnan(x0[4 * t])) { have_next = 1; continue; }
        if (have_next)
            for (int c = 0; c < 4; c++) x0[4 * t + c] = x0[4 * (t + 1) + c];
    }
    for (int t = 1; t < T; t++)
        if (isnan(x0[4 * t]))
            for (int c = 0; c < 4; c++) x0[4 * t + c] = x0[4 * (t - 1) + c];
    free(cost);
    free(from);
}

/* ---- the basin search ----
   The start (the Viterbi path) picks the basin of the energy that the solve
   refines, and the implicit derivative does not see that choice (x* does not
   depend on the start locally): the gradient learns the refinement, never
   which cluster of reports the path follows. The per-tracker weights are
   therefore first chosen by a derivative-free coordinate search on the
   training sequences for the start's path itself, scored by the metrics:
     score = mean over sequences of mean over frames of
             (IoU(path box, truth) + [centre error <= prec_px]) / 2
   (a per-frame version of the success AUC and P@20, bounded, so no single
   lost sequence dominates). With beta = 0 the weight of a report is
   a_k = exp(log w_k), so the Viterbi costs are
     cost_t(j) = sum_k a_k V_tjk + min_i [cost_{t'}(i) + GAMMA min(is_t^2 |c_tj - c_t'i|^2, JCAP)]
   with V_tjk = r2/(r2 + c_k^2) fixed during the search (the widths stay): V
   and each candidate's score are computed once, an evaluation is then
   O(T K^2) additions. */
typedef struct {
    const tf_rseq *q;
    float *V;  /* [T*K*K] V_tjk (0 where k did not report) */
    float *sc; /* [T*K] score of candidate j (its raw box)  */
    int *from; /* [T*K] backtracking scratch                */
    double *cost;
    int frames; /* frames with reports                     */
} srch_seq;

static void srch_free(srch_seq *s, int n) {
    for (int i = 0; s && i < n; i++) {
        free(s[i].V), free(s[i].sc), free(s[i].from), free(s[i].cost);
    }
    free(s);
}

static int srch_init(srch_seq *s, const tf_rseq *q, const par *P, double prec_px) {
    int T = q->T, K = q->K;
    size_t TK = (size_t)T * K;
    memset(s, 0, sizeof *s);
    s->q = q;
    s->V = malloc(sizeof(float) * TK * K);
    s->sc = malloc(sizeof(float) * TK);
    s->from = malloc(sizeof(int) * TK);
    s->cost = malloc(sizeof(double) * TK);
    if (!s->V || !s->sc || !s->from || !s->cost) return -1;
    for (int t = 0; t < T; t++) {
        double is2 = q->is[t] * q->is[t], Dg[4] = {is2, is2, P->g, P->g};
        const double *tr = q->truth + 4 * t;
        int any = 0;
        for (int j = 0; j < K; j++) {
            size_t ij = (size_t)t * K + j;
            any |= q->m[ij];
            for (int k = 0; k < K; k++) {
                size_t i = (size_t)t * K + k;
                double r2 = 0;
                if (q->m[ij] && q->m[i])
                    for (int c = 0; c < 4; c++) {
                        double d = q->ys[4 * ij + c] - q->ys[4 * i + c];
                        r2 += Dg[c] * d * d;
                    }
                s->V[ij * K + k] = q->m[ij] && q->m[i] ? (float)(r2 / (r2 + P->c2[k])) : 0.0f;
            }
            if (!q->m[ij]) {
                s->sc[ij] = 0;
                continue;
            }
            /* the candidate's box against the truth, in px */
            double cx = q->ys[4 * ij] * q->S, cy = q->ys[4 * ij + 1] * q->S;
            double w = exp(q->ys[4 * ij + 2]), h = exp(q->ys[4 * ij + 3]);
            double tx = tr[0] * q->S, ty = tr[1] * q->S, tw = exp(tr[2]), th = exp(tr[3]);
            double ix = fmin(cx + w / 2, tx + tw / 2) - fmax(cx - w / 2, tx - tw / 2);
            double iy = fmin(cy + h / 2, ty + th / 2) - fmax(cy - h / 2, ty - th / 2);
            double in = (ix > 0 ? ix : 0) * (iy > 0 ? iy : 0), un = w * h + tw * th - in;
            double iou = un > 0 ? in / un : 0;
            s->sc[ij] = (float)(0.5 * (iou + (hypot(cx - tx, cy - ty) <= prec_px)));
        }
        s->frames += any;
    }
    return 0;
}

/* the mean score of the Viterbi path at the weights a[K] (see above) */
static double srch_eval(srch_seq *s, const double *a) {
    const tf_rseq *q = s->q;
    int T = q->T, K = q->K, tp = -1;
    double prev[TF_RMAX_K];
    for (int t = 0; t < T; t++) {
        double is2 = q->is[t] * q->is[t], mn = INFINITY;
        for (int j = 0; j < K; j++) {
            size_t ij = (size_t)t * K + j;
            s->cost[ij] = INFINITY, s->from[ij] = -1;
            if (!q->m[ij]) continue;
            const float *V = s->V + ij * K;
            double c = 0;
            for (int k = 0; k < K; k++) c += a[k] * V[k];
            s->cost[ij] = (tp >= 0 ? jump_in(q, tp, ij, is2, prev, &s->from[ij]) : 0) + c;
            if (s->cost[ij] < mn) mn = s->cost[ij];
        }
        if (mn < INFINITY) {
            for (int j = 0; j < K; j++) prev[j] = s->cost[(size_t)t * K + j] - mn;
            tp = t;
        }
    }
    double sum = 0;
    int cur = -1;
    for (int t = T - 1; t >= 0; t--) {
        size_t row = (size_t)t * K;
        int n = 0;
        for (int k = 0; k < K; k++) n += q->m[row + k];
        if (!n) continue;
        if (cur < 0) {
            double mn = INFINITY;
            for (int j = 0; j < K; j++)
                if (s->cost[row + j] < mn) mn = s->cost[row + j], cur = j;
        }
        sum += s->sc[row + cur];
        cur = s->from[row + cur];
    }
    return s->frames ? sum / s->frames : 0;
}

static double srch_all(srch_seq *s, int n, const double *lw, int K) {
    double a[TF_RMAX_K], sum = 0;
    for (int k = 0; k < K; k++) a[k] = exp(lw[k]);
    for (int i = 0; i < n; i++) sum += srch_eval(&s[i], a);
    return sum / n;
}

#define SEARCH_ROUNDS 3
#define DOMINATE 2.0 /* log weight added to one tracker at a start: e^2 = 7.4 votes */
int tf_robust_search(const tf_rseq *train, int ntrain, const tf_rseq *val, int nval,
                     double *theta, double prec_px, double *before, double *after, int *evals) {
    *evals = 0;
    if (ntrain < 1 || !train[0].truth || (nval > 0 && !val[0].truth)) return -1;
    if (nval < 0) nval = 0;
    int K = train[0].K;
    par P;
    getpar(&train[0], theta, &P);
    srch_seq *s = calloc((size_t)(ntrain + nval), sizeof(srch_seq)), *sv = s + ntrain;
    if (!s) return -1;
    for (int i = 0; i < ntrain + nval; i++)
        if (srch_init(&s[i], i < ntrain ? &train[i] : &val[i - ntrain], &P, prec_px)) {
            srch_free(s, ntrain + nval);
            return -1;
        }
    /* Coordinate search over log w_k from K + 1 starts: theta's weights,
       and for each tracker j its weight raised by DOMINATE over theta's
       (one tracker that outvotes a majority: the case of a consistently
       better tracker, which a search from near-equal weights reaches only
       through many single moves). From each start, each tracker in turn
       takes the best of the moves below if it raises the score by more
       than 1e-4 (a move must change some frames' choice: 1e-4 is a few
       frames of a training set); log weights in the trainer's bounds
       [-12, 3]. Of theta's own weights and the K + 1 end points, the one
       with the best score on the validation sequences is kept (the best
       training score without them): more starts find higher training
       scores, and the validation sequences tell which of those carry over
       to sequences the search did not see. */
    static const double moves[6] = {-2, -1, -0.5, 0.5, 1, 2};
    double lw[TF_RMAX_K], top[TF_RMAX_K];
    *before = srch_all(s, ntrain, theta, K);
    (*evals)++;
    double best = -INFINITY, vbest = nval ? srch_all(sv, nval, theta, K) : -INFINITY;
    *after = *before;
    memcpy(top, theta, sizeof(double) * K);
    for (int st = 0; st <= K; st++) {
        memcpy(lw, theta, sizeof(double) * K);
        if (st > 0) {
            if (lw[st - 1] + DOMINATE > 3) continue; /* outside the bounds */
            lw[st - 1] += DOMINATE;
        }
        double cur = st ? srch_all(s, ntrain, lw, K) : *before;
        (*evals) += st > 0;
        for (int round = 0; round < SEARCH_ROUNDS; round++) {
            int moved = 0;
            for (int k = 0; k < K; k++) {
                double keep = lw[k], bk = keep, bs = cur + 1e-4;
                for (int j = 0; j < 6; j++) {
                    double v = keep + moves[j];
                    if (v < -12 || v > 3) continue;
                    lw[k] = v;
                    double sc = srch_all(s, ntrain, lw, K);
                    (*evals)++;
                    if (sc > bs) bs = sc, bk = v;
                }
                lw[k] = bk;
                if (bk != keep) cur = bs, moved = 1;
            }
            if (!moved) break;
        }
        if (nval) { /* by validation score; ties keep the earlier (theta's first) */
            double v = srch_all(sv, nval, lw, K);
            if (v > vbest) vbest = v, *after = cur, memcpy(top, lw, sizeof(double) * K);
        } else if (cur > best) {
            best = cur, *after = cur;
            memcpy(top, lw, sizeof(double) * K);
        }
    }
    memcpy(lw, top, sizeof(double) * K);
    memcpy(theta, lw, sizeof(double) * K);
    srch_free(s, ntrain + nval);
    return 0;
}

/* ---- learning ---- */

void tf_robust_opts_default(tf_robust_opts *o) {
    memset(o, 0, sizeof *o);
    o->end_to_end = 1;
    o->epochs = 30;
    o->batch = 8;
    o->lr = 0.02;
    o->lambda = 1e-3;
    o->seed = 1;
    o->search = 0;
    o->prec_px = 20;
}

void tf_robust_fit_free(tf_robust_fit *fit) {
    free(fit->epoch_loss);
    free(fit->val_loss);
    free(fit->test_sigma);
    free(fit->test_refused);
    fit->epoch_loss = fit->val_loss = NULL;
    fit->test_sigma = NULL;
    fit->test_refused = NULL;
}

/* The trainer's data set. The start depends on theta (the Viterbi path with
   the current weights): `theta` points at the driver's copy of the trainer's
   w, updated between steps (never during one), so the concurrent start
   callbacks of a step read it only. The minimizer does not depend on the
   start locally, so the implicit derivative needs no term for it. */
typedef struct {
    const tf_rseq *q;
    const double *theta;
    int px; /* the loss in px (tf_robust_loss_px) */
} rds;

static int rds_energy(void *u, int i, wb_energy *e) {
    *e = tf_robust_energy(&((const rds *)u)->q[i]);
    return 0;
}
static int rds_start(void *u, int i, double *x0) {
    const rds *d = u;
    tf_robust_start(&d->q[i], d->theta, x0);
    return 0;
}
static int rds_loss(void *u, int i, const double *x, double *l, double *dl) {
    const rds *d = u;
    *l = d->px ? tf_robust_loss_px(&d->q[i], x, dl) : tf_robust_loss(&d->q[i], x, dl);
    return 0;
}

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The derivative's curvature test at the minimizer a fusion finds (the start
   at theta, one solve): wb_implicit_vjp at damping lambda with the training
   loss's gradient (in px with loss_px; a vector of ones without truth), then
   sigma = wb_deriv_info.min_curvature, the smallest curvature of H + lambda I.
   *solved: the solve ended at a usable point; *refused: the derivative was
   WB_ESINGULAR. Returns sigma, or NaN (no solver, no solve, refused, or the
   test not reached). */
static double curvature_at(const tf_rseq *q, const double *theta, double lambda, int loss_px,
                           int *solved, int *refused) {
    wb_energy e = tf_robust_energy(q);
    wb_settings st;
    wb_settings_default(&st);
    st.lambda = lambda;
    wb_solver *sv = NULL;
    double sigma = NAN, dw[TF_RP(TF_RMAX_K)];
    double *x = malloc(sizeof(double) * 8 * (size_t)q->T), *g = x ? x + 4 * (size_t)q->T : NULL;
    *solved = *refused = 0;
    if (!x || wb_solver_create(&sv, &e, &st) != WB_OK) {
        free(x);
        return NAN;
    }
    tf_robust_start(q, theta, x);
    if (wb_solve(sv, theta, x, NULL) >= 0) {
        *solved = 1;
        if (!q->truth)
            for (int i = 0; i < 4 * q->T; i++) g[i] = 1;
        else if (loss_px) tf_robust_loss_px(q, x, g);
        else tf_robust_loss(q, x, g);
        wb_status sd = wb_implicit_vjp(sv, g, dw);
        wb_deriv_info di;
        wb_solver_deriv_info(sv, &di);
        *refused = sd == WB_ESINGULAR;
        if (sd >= 0 && di.min_curvature > 0) sigma = di.min_curvature;
    }
    wb_solver_destroy(sv);
    free(x);
    return sigma;
}

int tf_robust_train(const tf_rseq *train, int ntrain, const tf_rseq *val, int nval,
                    const double *theta0, const tf_robust_opts *o, tf_robust_fit *fit,
                    char *err, size_t errlen) {
    memset(fit, 0, sizeof *fit);
    if (ntrain < 1 || nval < 1) {
        snprintf(err, errlen, "the robust fusion needs training and validation sequences");
        return -1;
    }
    int K = train[0].K, p = TF_RP(K);
    double w[TF_RP(TF_RMAX_K)], lo[TF_RP(TF_RMAX_K)], hi[TF_RP(TF_RMAX_K)];
    memcpy(w, theta0, sizeof(double) * p);
    double t0 = wall_now();
    clock_t c0 = clock();
    if (o->search && tf_robust_search(train, ntrain, val, nval, w, o->prec_px, &fit->search_before,
                                      &fit->search_after, &fit->search_evals)) {
        snprintf(err, errlen, "the basin search: out of memory");
        return -1;
    }
    memcpy(fit->theta, w, sizeof(double) * p);
    rds dtr = {train, w, o->loss_px}, dva = {val, w, o->loss_px};
    wb_dataset Dtr = {ntrain, &dtr, rds_energy, rds_start, rds_loss};
    wb_dataset Dva = {nval, &dva, rds_energy, rds_start, rds_loss};
    for (int j = 0; j < p; j++) lo[j] = -INFINITY, hi[j] = INFINITY;
    for (int k = 0; k < K; k++) lo[k] = -12, hi[k] = 3;         /* weights  */
    for (int k = K; k < 2 * K; k++) lo[k] = log(0.02), hi[k] = log(5.0); /* widths */
    for (int j = 2 * K; j < 2 * K + 3; j++) lo[j] = -12, hi[j] = 12;
    if (!o->end_to_end)
        for (int j = 2 * K + 3; j < p; j++) lo[j] = hi[j] = 0; /* beta = 0 */
    else
        for (int j = 2 * K + 3; j < p; j++) lo[j] = -5, hi[j] = 5;
    wb_train_settings ts;
    wb_train_settings_default(&ts);
    ts.solver.lambda = o->lambda;
    ts.lr = o->lr;
    ts.epochs = o->epochs;
    ts.batch_size = o->batch;
    ts.seed = o->seed;
    ts.threads = o->threads;
    ts.warm_start = 0; /* every solve from the start at the current theta */
    /* the validation set given to the trainer so that it sizes its solvers
       for the longest sequence of either set (wb_trainer_evaluate below
       needs that); the trainer's own validation runs only at the last step,
       ours after every epoch at the w just reached */
    ts.validation = &Dva;
    ts.validate_every = INT_MAX;
    ts.lower = lo;
    ts.upper = hi;
    wb_trainer *tr = NULL;
    wb_status st = wb_trainer_create(&tr, &Dtr, w, &ts);
    if (st != WB_OK) {
        snprintf(err, errlen, "wb_trainer_create: %s", wb_last_error());
        return -1;
    }
    fit->epochs = o->epochs;
    fit->epoch_loss = calloc((size_t)o->epochs, sizeof(double));
    fit->val_loss = calloc((size_t)o->epochs, sizeof(double));
    if (!fit->epoch_loss || !fit->val_loss) {
        wb_trainer_destroy(tr);
        tf_robust_fit_free(fit);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* the start (the searched theta) is a candidate too: its validation
       loss first (best_epoch -1: the start kept) */
    double best = INFINITY;
    fit->best_epoch = -1;
    {
        int failed = 0;
        wb_status se = wb_trainer_evaluate(tr, &Dva, w, &fit->val_loss0, &failed, NULL);
        if (se != WB_OK) {
            snprintf(err, errlen, "validation: %s: %s", wb_status_str(se), wb_trainer_message(tr));
            wb_trainer_destroy(tr);
            tf_robust_fit_free(fit);
            return -1;
        }
        best = fit->val_loss0;
    }
    wb_train_info info;
    int epoch = 0;
    do {
        wb_trainer_w(tr, w); /* the starts of this step use the current w */
        st = wb_trainer_step(tr, &info);
        if ((st == WB_OK || st == WB_DONE) && info.epoch > epoch) {
            /* end of an epoch: validation loss at the new w (solves from
               the start at that w), the best w kept */
            wb_trainer_w(tr, w);
            double vl = NAN;
            int failed = 0;
            wb_status se = wb_trainer_evaluate(tr, &Dva, w, &vl, &failed, NULL);
            if (se != WB_OK) {
                snprintf(err, errlen, "validation: %s: %s", wb_status_str(se), wb_trainer_message(tr));
                wb_trainer_destroy(tr);
                tf_robust_fit_free(fit);
                return -1;
            }
            fit->epoch_loss[epoch] = info.epoch_loss;
            fit->val_loss[epoch] = vl;
            if (o->verbose)
                fprintf(stderr, "robust%s epoch %3d  loss %.5f  val %.5f  skipped %lld\n",
                        o->end_to_end ? " (end to end)" : "", epoch + 1, info.epoch_loss, vl,
                        info.skipped_total);
            if (vl < best) {
                best = vl;
                fit->best_epoch = epoch;
                memcpy(fit->theta, w, sizeof(double) * p);
            }
            epoch = info.epoch;
        }
    } while (st == WB_OK);
    if (st != WB_DONE) {
        snprintf(err, errlen, "training: %s: %s", wb_status_str(st), wb_trainer_message(tr));
        wb_trainer_destroy(tr);
        tf_robust_fit_free(fit);
        return -1;
    }
    wb_trainer_info(tr, &info);
    fit->solves = info.inner_solves;
    fit->skipped = info.skipped_total;
    wb_trainer_destroy(tr);
    fit->seconds = wall_now() - t0;
    fit->cpu_seconds = (double)(clock() - c0) / CLOCKS_PER_SEC;
    /* refused derivatives at the learned theta: one solve per training
       sequence, then wb_implicit_vjp with lambda; the smallest curvature
       sigma of H + lambda I that the accepted ones report (its minimum and
       median over the sequences) */
    double *sig = malloc(sizeof(double) * (size_t)ntrain);
    int nsig = 0;
    for (int i = 0; i < ntrain; i++) {
        int solved, refused;
        double c = curvature_at(&train[i], fit->theta, o->lambda, o->loss_px, &solved, &refused);
        fit->checked += solved;
        fit->refused += refused;
        if (sig && c > 0) sig[nsig++] = c;
    }
    fit->sigma_min = fit->sigma_med = NAN;
    if (nsig) {
        qsort(sig, (size_t)nsig, sizeof(double), cmpd);
        fit->sigma_min = sig[0];
        fit->sigma_med = nsig % 2 ? sig[nsig / 2] : 0.5 * (sig[nsig / 2 - 1] + sig[nsig / 2]);
    }
    free(sig);
    return 0;
}

int tf_robust_fuse(const tf_rseq *q, const double *theta, double *box) {
    wb_energy e = tf_robust_energy(q);
    wb_solver *sv = NULL;
    double *x = malloc(sizeof(double) * 4 * (size_t)q->T);
    if (!x) return WB_ENOMEM;
    wb_status st = wb_solver_create(&sv, &e, NULL);
    if (st != WB_OK) {
        free(x);
        return st;
    }
    tf_robust_start(q, theta, x);
    st = wb_solve(sv, theta, x, NULL);
    tf_robust_boxes(q, x, box);
    wb_solver_destroy(sv);
    free(x);
    return st;
}

double tf_robust_curvature(const tf_rseq *q, const double *theta, double lambda, int *refused) {
    int solved;
    return curvature_at(q, theta, lambda, 0, &solved, refused) - lambda; /* NaN stays NaN */
}
