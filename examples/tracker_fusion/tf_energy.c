/* The fusion energy, its derivatives, and the training data set.
 *
 * theta = (log w_1..log w_K, log alpha, log delta); with r = x_t - y_tk,
 * s = sqrt(1 + |r|^2/delta^2) (pseudo-Huber of the 2-D residual):
 *   E      = sum m w_k delta^2 (s - 1) + alpha sum_t |q_t|^2,
 *            q_t = x_{t+1} - 2 x_t + x_{t-1}
 *   grad_t = sum_k m w_k r / s   (+ 2 alpha S'S x)
 *   H      = per frame w_k (I/s - r r' / (delta^2 s^3))  (+ 2 alpha S'S)
 *   d grad/d log w_k     = w_k m r / s
 *   d grad/d log alpha   = 2 alpha S'S x
 *   d grad/d log delta   = delta d/d delta (r/s) w_k = w_k r |r|^2 / (delta^2 s^3)
 * pseudo-Huber is convex, so H is positive semi-definite; the smoothing makes
 * it definite wherever a frame has two neighbours.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tf.h"

typedef struct {
    double w[TF_MAX_TRACKERS], alpha, delta;
} par_t;

static void params(const tf_seq *s, const double *th, par_t *p) {
    for (int k = 0; k < s->K; k++) p->w[k] = exp(th[k]);
    p->alpha = exp(th[s->K]);
    p->delta = exp(th[s->K + 1]);
}

static int vg(void *u, const double *x, const double *th, double *e, double *g) {
    const tf_seq *s = u;
    par_t P;
    params(s, th, &P);
    int T = s->T, K = s->K;
    double d2 = P.delta * P.delta, E = 0;
    if (g) memset(g, 0, sizeof(double) * 2 * (size_t)T);
    for (int t = 0; t < T; t++)
        for (int k = 0; k < K; k++) {
            size_t i = (size_t)t * K + k;
            if (!s->m[i]) continue;
            double rx = x[2 * t] - s->y[2 * i], ry = x[2 * t + 1] - s->y[2 * i + 1];
            double q = sqrt(1 + (rx * rx + ry * ry) / d2);
            E += P.w[k] * d2 * (q - 1);
            if (g) {
                g[2 * t] += P.w[k] * rx / q;
                g[2 * t + 1] += P.w[k] * ry / q;
            }
        }
    for (int t = 1; t + 1 < T; t++)
        for (int c = 0; c < 2; c++) {
            double q = x[2 * (t + 1) + c] - 2 * x[2 * t + c] + x[2 * (t - 1) + c];
            E += P.alpha * q * q;
            if (g) {
                g[2 * (t + 1) + c] += 2 * P.alpha * q;
                g[2 * t + c] -= 4 * P.alpha * q;
                g[2 * (t - 1) + c] += 2 * P.alpha * q;
            }
        }
    *e = E;
    return 0;
}

/* the half-bandwidth: TF_KD, or n - 1 for a video of 1 or 2 frames (the
   library wants kd < n; the entries written below never lie farther out) */
static int kd_of(const tf_seq *s) { return 2 * s->T - 1 < TF_KD ? 2 * s->T - 1 : TF_KD; }

static int band(void *u, const double *x, const double *th, double *AB) {
    const tf_seq *s = u;
    par_t P;
    params(s, th, &P);
    int T = s->T, K = s->K, ld = kd_of(s) + 1;
    double d2 = P.delta * P.delta;
    static const double sv[3] = {1, -2, 1};
    memset(AB, 0, sizeof(double) * (size_t)ld * 2 * (size_t)T);
    for (int t = 0; t < T; t++)
        for (int k = 0; k < K; k++) {
            size_t i = (size_t)t * K + k;
            if (!s->m[i]) continue;
            double rx = x[2 * t] - s->y[2 * i], ry = x[2 * t + 1] - s->y[2 * i + 1];
            double q = sqrt(1 + (rx * rx + ry * ry) / d2), q3 = q * q * q;
            AB[(size_t)(2 * t) * ld] += P.w[k] * (1 / q - rx * rx / (d2 * q3));
            AB[1 + (size_t)(2 * t) * ld] += P.w[k] * (-rx * ry / (d2 * q3));
            AB[(size_t)(2 * t + 1) * ld] += P.w[k] * (1 / q - ry * ry / (d2 * q3));
        }
    for (int t = 1; t + 1 < T; t++)
        for (int c = 0; c < 2; c++)
            for (int a = 0; a < 3; a++)
                for (int b = 0; b <= a; b++) {
                    int row = 2 * (t - 1 + a) + c, col = 2 * (t - 1 + b) + c;
                    AB[(size_t)(row - col) + (size_t)col * ld] += 2 * P.alpha * sv[a] * sv[b];
                }
    return 0;
}

static int mixed_vjp(void *u, const double *x, const double *th, const double *v,
                     double *out) {
    const tf_seq *s = u;
    par_t P;
    params(s, th, &P);
    int T = s->T, K = s->K;
    double d2 = P.delta * P.delta;
    for (int j = 0; j < K + 2; j++) out[j] = 0;
    for (int t = 0; t < T; t++)
        for (int k = 0; k < K; k++) {
            size_t i = (size_t)t * K + k;
            if (!s->m[i]) continue;
            double rx = x[2 * t] - s->y[2 * i], ry = x[2 * t + 1] - s->y[2 * i + 1];
            double r2 = rx * rx + ry * ry, q = sqrt(1 + r2 / d2);
            double vr = v[2 * t] * rx + v[2 * t + 1] * ry;
            out[k] += P.w[k] * vr / q;
            out[K + 1] += P.w[k] * vr * r2 / (d2 * q * q * q);
        }
    for (int t = 1; t + 1 < T; t++)
        for (int c = 0; c < 2; c++) {
            double q = x[2 * (t + 1) + c] - 2 * x[2 * t + c] + x[2 * (t - 1) + c];
            double vq = v[2 * (t + 1) + c] - 2 * v[2 * t + c] + v[2 * (t - 1) + c];
            out[K] += 2 * P.alpha * q * vq;
        }
    return 0;
}

wb_energy tf_energy(const tf_seq *s) {
    wb_energy e;
    memset(&e, 0, sizeof e);
    e.n = 2 * s->T;
    e.p = s->K + 2;
    e.user = (void *)s;
    e.value_grad = vg;
    e.mixed_vjp = mixed_vjp;
    e.kd = kd_of(s);
    e.hess_band = band;
    return e;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void tf_median_start(const tf_seq *s, double *x) {
    int T = s->T, K = s->K, last = -1;
    double v[TF_MAX_TRACKERS];
    for (int t = 0; t < T; t++) {
        int have = 0;
        for (int c = 0; c < 2; c++) {
            int m = 0;
            for (int k = 0; k < K; k++)
                if (s->m[(size_t)t * K + k]) v[m++] = s->y[2 * ((size_t)t * K + k) + c];
            if (m) {
                qsort(v, (size_t)m, sizeof(double), cmp_d);
                x[2 * t + c] = m % 2 ? v[m / 2] : 0.5 * (v[m / 2 - 1] + v[m / 2]);
                have = 1;
            }
        }
        if (have) {
            if (last < t - 1) /* fill the gap before t from the nearest */
                for (int u = last + 1; u < t; u++)
                    for (int c = 0; c < 2; c++) x[2 * u + c] = last >= 0 ? x[2 * last + c] : x[2 * t + c];
            last = t;
        }
    }
    for (int u = last + 1; u < T; u++)
        for (int c = 0; c < 2; c++) x[2 * u + c] = last >= 0 ? x[2 * last + c] : 0.0;
}

/* L = mean over frames of sqrt(|x_t - truth_t|^2 + 1): the mean centre
   error (px), smoothed below 1 px so that it is differentiable */
double tf_loss(const tf_seq *s, const double *x, double *dl) {
    double L = 0;
    for (int t = 0; t < s->T; t++) {
        double dx = x[2 * t] - s->truth[2 * t], dy = x[2 * t + 1] - s->truth[2 * t + 1];
        double e = sqrt(dx * dx + dy * dy + 1.0);
        L += e / s->T;
        if (dl) {
            dl[2 * t] = dx / (e * s->T);
            dl[2 * t + 1] = dy / (e * s->T);
        }
    }
    return L;
}

static int ds_energy(void *u, int i, wb_energy *e) {
    const tf_data *d = u;
    *e = tf_energy(&d->seq[i]);
    return 0;
}
static int ds_start(void *u, int i, double *x0) {
    const tf_data *d = u;
    tf_median_start(&d->seq[i], x0);
    return 0;
}
static int ds_loss(void *u, int i, const double *x, double *l, double *dl) {
    const tf_data *d = u;
    *l = tf_loss(&d->seq[i], x, dl);
    return 0;
}

wb_dataset tf_dataset(const tf_data *d) {
    wb_dataset ds = {d->count, (void *)d, ds_energy, ds_start, ds_loss};
    return ds;
}
