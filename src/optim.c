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

/* One update from the mean gradient g[p]: the new state (w1, m1, r1)[p]
   from the current one (w, m, r)[p], written apart so that the caller
   commits it only when it is finite (after the projection). t = 1-based
   step count (Adam's bias correction); m, r: the optimizer's moments
   (momentum: m; Adam: m and r = sqrt(v), the root of the second moment;
   unused ones are copied).

   Adam keeps r = sqrt(v) rather than v: v = b2 v + (1-b2) g^2 overflows for
   a finite |g| > ~1e154 (g = 1e200 made v = inf and froze w), while
   r1 = sqrt(b2 r^2 + (1-b2) g^2) = hypot(sqrt(b2) r, sqrt(1-b2) |g|)
   never exceeds max(r, |g|), and the step m^ / (sqrt(v^) + eps) is the
   same number. Adam is scale-invariant: a gradient of 1e200 moves w as
   one of 1 does (up to eps). */
void wbi_optim_step(const wb_train_settings *s, int p, long long t, double lr,
                    const double *g, const double *w, const double *m,
                    const double *r, double *w1, double *m1, double *r1) {
    switch (s->optimizer) {
    case WB_OPT_MOMENTUM:
        /* m = momentum m + g;  w -= lr m */
        for (int j = 0; j < p; j++) {
            m1[j] = s->momentum * m[j] + g[j];
            r1[j] = r[j];
            w1[j] = w[j] - lr * m1[j];
        }
        break;
    case WB_OPT_ADAM: {
        /* m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2, kept as r = sqrt(v);
           w -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
              = lr (m / c1) / (r / sqrt(c2) + eps) */
        double c1 = 1 - pow(s->beta1, (double)t), c2 = 1 - pow(s->beta2, (double)t);
        double sb2 = sqrt(s->beta2), s1b2 = sqrt(1 - s->beta2), sc2 = sqrt(c2);
        for (int j = 0; j < p; j++) {
            m1[j] = s->beta1 * m[j] + (1 - s->beta1) * g[j];
            r1[j] = hypot(sb2 * r[j], s1b2 * fabs(g[j]));
            w1[j] = w[j] - lr * (m1[j] / c1) / (r1[j] / sc2 + s->eps);
        }
        break;
    }
    case WB_OPT_SGD:
    default:
        /* w -= lr g */
        for (int j = 0; j < p; j++) {
            m1[j] = m[j];
            r1[j] = r[j];
            w1[j] = w[j] - lr * g[j];
        }
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
