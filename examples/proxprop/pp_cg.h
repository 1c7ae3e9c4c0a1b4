/* proxprop: the ProxProp step of a linear layer by matrix-free conjugate
 * gradients (pp_cg.c), warm-started at the current weights as in the
 * paper's code, never forming the (in+1) x (in+1) matrix A1 A1'.
 *
 * Layer z = W a + b, T = [W b] (out x n, n = in + 1, column-major, bias
 * last), batch A (in x m), A1 = [A; 1'] (n x m), D = dL/dz (out x m). The
 * proximal step of ProxProp (Frerix et al., ICLR 2018) is
 *
 *   T+ = argmin_T 1/2 ||T A1 - (T0 A1 - D)||^2 + 1/(2 tau) ||T - T0||^2,
 *
 * i.e. the solution of T M = T0 M - G with M = A1 A1' + I/tau and
 * G = D A1' (the BackProp gradient). k CG iterations per row of T from
 * T0 (the paper's prox_cgk), in one of two forms that give the same
 * iterates in exact arithmetic:
 *
 *   PP_CG_PRIMAL  the paper's code: each iteration applies M to the search
 *                 directions P through the layer's forward product
 *                 F = P A1 and its adjoint F A1' (plus P/tau);
 *                 4 out n m flops per iteration.
 *   PP_CG_BATCH   the same CG in the batch's coordinates: every residual
 *                 and direction of this CG is Y A1' for some out x m Y
 *                 (the first residual is -G = -D A1', and
 *                 (Y A1') M = Y (K + I/tau) A1' with K = A1' A1, m x m),
 *                 so the iteration runs on Y with the inner products
 *                 <Y1 A1', Y2 A1'> = tr(Y1 K Y2'), and the layer is touched
 *                 only to form K (n m^2 flops) and for the final
 *                 T+ - T0 = Xi A1' (2 out n m, what BackProp spends on G).
 *                 2 out m^2 flops per iteration: cheaper whenever m < n.
 *
 * The caller hands the optimizer S = T0 - T+ in place of the gradient
 * (learning rate 1 takes exactly the proximal step).
 */
#ifndef PP_CG_H
#define PP_CG_H

#include <stddef.h>

typedef enum { PP_CG_BATCH = 0, PP_CG_PRIMAL = 1 } pp_cg_form;

typedef struct pp_cg pp_cg;

/* A CG step for a layer with out >= 1 outputs and in >= 1 inputs, batches
   of at most max_m >= 1 examples, tau > 0 finite, iters >= 1. NULL with a
   sentence in err[errlen] on bad arguments or no memory. */
pp_cg *pp_cg_create(int out, int in, int max_m, double tau, int iters,
                    pp_cg_form form, char *err, size_t errlen);

void pp_cg_destroy(pp_cg *c); /* NULL-safe */

/* S[out*(in+1)] = T0 - T+ after `iters` CG iterations on a batch of
   1 <= m <= max_m examples: A[in*m] the layer's input, D[out*m] = dL/dz
   (column j = example j). Returns 0, or -1 with a sentence in err when m
   is out of range or the result is not finite (S is then unspecified). */
int pp_cg_step(pp_cg *c, int m, const double *A, const double *D, double *S,
               char *err, size_t errlen);

#endif
