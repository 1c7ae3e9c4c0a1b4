/* proxprop: the optimizers' updates on a flat parameter vector, shared by
 * the MLP (pp_net.c) and the ConvNet (pp_convnet.c). g is the gradient, or
 * for ProxProp's proximal layers the step T0 - T+. */
#ifndef PP_OPT_H
#define PP_OPT_H

#include <math.h>
#include <stddef.h>

/* PyTorch's Nesterov form: v = mu v + g; theta -= lr (g + mu v) */
static inline void pp_opt_nesterov(size_t n, double *th, const double *g,
                                   double *v, double lr, double mu) {
    for (size_t k = 0; k < n; k++) {
        v[k] = mu * v[k] + g[k];
        th[k] -= lr * (g[k] + mu * v[k]);
    }
}

/* PyTorch's Adam (beta 0.9, 0.999, eps 1e-8), step *t + 1:
   m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
   theta -= lr m/(1-b1^t) / (sqrt(v/(1-b2^t)) + eps) */
static inline void pp_opt_adam(size_t n, double *th, const double *g, double *m,
                               double *v, long *t, double lr) {
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    ++*t;
    double c1 = 1.0 - pow(b1, (double)*t), c2 = 1.0 - pow(b2, (double)*t);
    for (size_t k = 0; k < n; k++) {
        m[k] = b1 * m[k] + (1 - b1) * g[k];
        v[k] = b2 * v[k] + (1 - b2) * g[k] * g[k];
        th[k] -= lr * (m[k] / c1) / (sqrt(v[k] / c2) + eps);
    }
}

#endif
