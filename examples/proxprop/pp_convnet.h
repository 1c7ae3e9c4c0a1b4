/* proxprop: the ConvNet of the ProxProp paper (pp_convnet.c), as in the
 * authors' models.py (ProxPropConvNet), for a c x h x w image:
 *
 *   conv 5x5, c -> 16, padding 2, ReLU, 2x2 max-pool (stride 2)
 *   conv 5x5, 16 -> 20, padding 2, ReLU, 2x2 max-pool (stride 2)
 *   conv 5x5, 20 -> 20, padding 2, ReLU
 *   linear 20 (h/4) (w/4) -> classes, softmax cross-entropy (mean over the
 *   batch)
 *
 * (3x32x32 -> 16x32x32 -> 16x16x16 -> 20x16x16 -> 20x8x8 -> 20x8x8 -> 10 for
 * CIFAR-10). The convolutions are pp_conv.c (im2col + dgemm), the pooling
 * pp_pool.c. The input batch N->X holds the examples as the data stores
 * them, channel-planar (CHW: X[ch h w + y w + x] per example, as CIFAR-10's
 * records); the forward pass transposes it to the HWC layout of pp_conv.h,
 * and the last convolution's output is flattened in that order (a fixed
 * permutation of PyTorch's CHW flattening, which only relabels the weights
 * of the linear layer).
 *
 * Parameters: layer l (0..2 the convolutions, 3 the linear layer) has
 * T_l = [W b] = theta + off[l], out_l x (in_l + 1) column-major, bias last,
 * with in_l = c_l 5 5 (the patch, pp_conv.h's R) for a convolution, and
 * the same layout in grad, m1, m2. For ProxProp, pp_convnet_prox_steps
 * puts T0 - T+ of every convolution into grad (the proximal step by
 * matrix-free CG on its patches, pp_cg.h's primal form), while the linear
 * layer keeps its gradient (explicit), as in the paper's code.
 */
#ifndef PP_CONVNET_H
#define PP_CONVNET_H

#include <stddef.h>
#include <stdint.h>

#include "pp_cg.h"
#include "pp_conv.h"
#include "pp_pool.h"

#define PP_CONVNET_CONVS 3
#define PP_CONVNET_LAYERS (PP_CONVNET_CONVS + 1)

typedef struct {
    int c, h, w, classes;            /* input image and classes              */
    int cap;                         /* examples the buffers hold            */
    pp_conv_shape conv[PP_CONVNET_CONVS];
    pp_pool_shape pool[PP_CONVNET_CONVS - 1]; /* after convs 0 and 1         */
    int feat;                        /* inputs of the linear layer           */
    int out[PP_CONVNET_LAYERS], in[PP_CONVNET_LAYERS]; /* T_l is out x (in+1)*/
    size_t off[PP_CONVNET_LAYERS + 1];
    double *theta, *grad, *m1, *m2;  /* [off[4]]; m2 only for Adam           */
    long adam_t;
    double *X;                       /* [c h w cap] input batch, CHW         */
    double *Xh;                      /* [c h w cap] the same, HWC            */
    double *cols[PP_CONVNET_CONVS];  /* [R_l * cap P_l] patches (pp_conv.h)  */
    double *A[PP_CONVNET_CONVS];     /* [out_l * cap P_l] ReLU(conv output)  */
    double *dZ[PP_CONVNET_CONVS];    /* [out_l * cap P_l] dL/d(conv output)  */
    double *pooled[PP_CONVNET_CONVS - 1]; /* pooled A[l], the next input     */
    int *arg[PP_CONVNET_CONVS - 1];  /* the pooling's choices                */
    double *zfc, *pfc, *dzfc;        /* [classes * cap] logits, softmax, dL/dz */
    double *dcols, *dA;              /* scratch                              */
} pp_convnet;

/* Allocates the network for c x h x w images (c >= 1, h, w >= 4 so that
   both poolings leave a pixel), classes >= 2, batches of cap >= 1; m2 only
   when adam. Returns 0, or -1 with a sentence in err[errlen] (bad shape,
   sizes beyond BLAS's int, no memory; nothing is kept). */
int pp_convnet_alloc(pp_convnet *N, int c, int h, int w, int classes, int cap,
                     int adam, char *err, size_t errlen);
void pp_convnet_free(pp_convnet *N); /* zeroes *N; safe on a zeroed one */

/* PyTorch's defaults for Conv2d and Linear: W, b ~ U(-1/sqrt(fan_in),
   1/sqrt(fan_in)), fan_in = c_l 5 5 or the linear layer's inputs; zero
   optimizer state. */
void pp_convnet_init(pp_convnet *N, uint64_t seed);

/* Forward pass on the m <= cap examples in N->X; the mean cross-entropy of
   the labels y[m] (each in [0, classes)); counts the correct predictions
   when correct != NULL. */
double pp_convnet_forward(pp_convnet *N, int m, const int *y, int *correct);

/* After pp_convnet_forward: dZ of every convolution (with the weights of
   the forward pass) and the gradient of the linear layer in N->grad, of
   every layer when all_layers. */
void pp_convnet_backward(pp_convnet *N, int m, const int *y, int all_layers);

/* After pp_convnet_backward: grad of convolution l = T0 - T+ by
   cg[l] (made by pp_convnet_cg_create). Returns 0, or -1 with the reason
   in why (a non-finite step). */
int pp_convnet_prox_steps(pp_convnet *N, int m, pp_cg *const *cg, char *why,
                          size_t whylen);

/* A CG proximal step for convolution l (out_l outputs, R_l inputs, batches
   of cap P_l patches, PP_CG_PRIMAL); NULL with a sentence in err. */
pp_cg *pp_convnet_cg_create(const pp_convnet *N, int l, double tau, int iters,
                            char *err, size_t errlen);

void pp_convnet_nesterov(pp_convnet *N, double lr, double mu);
void pp_convnet_adam(pp_convnet *N, double lr);

#endif
