/* Optimizers, learning-rate schedules and bound projection for training. */
#include <math.h>

#include "wb_train.h"

/* lr(step), step 0-based, of `total` steps. */
double wbi_lr_at(const wb_train_settings *s, long long step, long long total) {
    switch (s->schedule) {
    case WB_LR_STEP:
        /* lr * decay^floor(step / every) */
        return s->lr * pow(s->lr_decay, (double)(step / s->lr_step_every));
    case WB_LR_COSINE: {
        /* lr_min + (lr - lr_min) (1 + cos(pi step / total)) / 2 */
        double f = total > 0 ? (double)step / (double)total : 0.0;
        return s->lr_min + (s->lr - s->lr_min) * 0.5 * (1 + cos(M_PI * f));
    }
    case WB_LR_CONSTANT:
    default:
        return s->lr;
    }
}

/* One update of w[p] from the mean gradient g; t = 1-based step count (Adam's
   bias correction); m, v: the optimizer's moments. */
void wbi_optim_step(const wb_train_settings *s, int p, long long t, double lr,
                    const double *g, double *w, double *m, double *v) {
    switch (s->optimizer) {
    case WB_OPT_MOMENTUM:
        /* m = momentum m + g;  w -= lr m */
        for (int j = 0; j < p; j++) {
            m[j] = s->momentum * m[j] + g[j];
            w[j] -= lr * m[j];
        }
        break;
    case WB_OPT_ADAM: {
        /* m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
           w -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) */
        double c1 = 1 - pow(s->beta1, (double)t), c2 = 1 - pow(s->beta2, (double)t);
        for (int j = 0; j < p; j++) {
            m[j] = s->beta1 * m[j] + (1 - s->beta1) * g[j];
            v[j] = s->beta2 * v[j] + (1 - s->beta2) * g[j] * g[j];
            w[j] -= lr * (m[j] / c1) / (sqrt(v[j] / c2) + s->eps);
        }
        break;
    }
    case WB_OPT_SGD:
    default:
        for (int j = 0; j < p; j++) w[j] -= lr * g[j];
        break;
    }
}

/* w = clamp(w, lower, upper) (either bound array may be NULL). */
void wbi_project(int p, double *w, const double *lo, const double *hi) {
    for (int j = 0; j < p; j++) {
        if (lo && w[j] < lo[j]) w[j] = lo[j];
        if (hi && w[j] > hi[j]) w[j] = hi[j];
    }
}
