/* proxprop: the MLP (pp_net.c): any depth and width, ReLU hidden layers,
 * softmax cross-entropy (mean over the batch), forward and backward through
 * BLAS (cblas_dgemm), Nesterov SGD and Adam. */
#ifndef PP_NET_H
#define PP_NET_H

#include <stddef.h>
#include <stdint.h>

#define PP_MAX_HIDDEN 16
#define PP_MAX_LAYERS (PP_MAX_HIDDEN + 1)

/* Layer l maps sz[l] -> sz[l+1]; its parameters T_l = [W b] are stored like
   wb_prox_step's T: sz[l+1] x (sz[l]+1), column-major, bias last column. */
typedef struct {
    int nl;                      /* layers (hidden + 1)                      */
    int sz[PP_MAX_LAYERS + 1];
    size_t off[PP_MAX_LAYERS + 1]; /* T_l = theta + off[l]; off[nl] = total  */
    int cap;                     /* columns (examples) the buffers hold      */
    double *theta, *grad;        /* [off[nl]] parameters, "gradient"         */
    double *m1, *m2;             /* [off[nl]] Nesterov velocity / Adam first
                                    moment; Adam second moment (or NULL)    */
    long adam_t;                 /* Adam steps taken                         */
    double *X;                   /* [sz[0]*cap] input batch                  */
    double *Z[PP_MAX_LAYERS];    /* [sz[l+1]*cap] pre-activations           */
    double *A[PP_MAX_LAYERS];    /* [sz[l+1]*cap] ReLU(Z); last: softmax    */
    double *dZ[PP_MAX_LAYERS];   /* [sz[l+1]*cap] dL/dZ of the mean loss    */
    double *dA;                  /* [max width * cap] scratch               */
} pp_net;

/* Allocates for nl layers of widths sz[0..nl] and batches of cap examples;
   m2 only when adam. Returns 0, or -1 out of memory (nothing kept). */
int pp_net_alloc(pp_net *N, int nl, const int *sz, int cap, int adam);
void pp_net_free(pp_net *N);

/* PyTorch's nn.Linear default, W, b ~ U(-1/sqrt(in), 1/sqrt(in)); zero
   optimizer state. */
void pp_net_init(pp_net *N, uint64_t seed);

/* Forward pass on the m examples in N->X; returns the mean cross-entropy of
   the labels y[m] and (correct != NULL) counts the correct predictions. */
double pp_net_forward(pp_net *N, int m, const int *y, int *correct);

/* Backward pass after pp_net_forward: dZ of every layer (old weights) and
   the gradient of the last layer in N->grad (of every layer when
   all_layers). */
void pp_net_backward(pp_net *N, int m, const int *y, int all_layers);

/* theta -= lr (g + mu v) after v = mu v + g (PyTorch's Nesterov form) */
void pp_net_nesterov(pp_net *N, double lr, double mu);

/* PyTorch's Adam (beta 0.9, 0.999, eps 1e-8) on N->grad. */
void pp_net_adam(pp_net *N, double lr);

#endif
