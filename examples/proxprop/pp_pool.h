/* proxprop: max-pooling (pp_pool.c), as PyTorch's MaxPool2d(kernel_size=s,
 * stride=s): non-overlapping s x s windows, the output h / s x w / s
 * (rounded down: a last row or column that does not fill a window is
 * dropped).
 *
 * Images are stored HWC per example as in pp_conv.h: channel ch of pixel
 * (y, x) of example j of a c x h x w image is X[ch + c (y w + x) + j c h w].
 *
 *   forward   Y(ch, oy, ox) = max over ky, kx < s of X(ch, s oy + ky, s ox + kx),
 *             arg = the index (within the example) of the entry taken: the
 *             first maximum in (ky, kx) order, or the first NaN (NaN
 *             propagates, as in PyTorch);
 *   backward  dX = 0 except dX[arg] += dY: the gradient goes to the entry
 *             the forward pass took (the pooling is piecewise a selection).
 *
 * ProxProp does not take a proximal step here (the layer has no
 * parameters): its backward pass is the same for BackProp and ProxProp.
 */
#ifndef PP_POOL_H
#define PP_POOL_H

typedef struct {
    int c, h, w; /* input channels, height, width */
    int s;       /* window and stride             */
} pp_pool_shape;

/* h / s * w / s (0 when s < 1 or the window does not fit) */
int pp_pool_out_pixels(const pp_pool_shape *p);

/* Y[c * out_pixels * m] and arg[c * out_pixels * m] from X[c h w * m] */
void pp_pool_forward(const pp_pool_shape *p, int m, const double *X, double *Y,
                     int *arg);

/* dX[c h w * m] (overwritten) from dY[c * out_pixels * m] and the forward
   pass's arg */
void pp_pool_backward(const pp_pool_shape *p, int m, const double *dY,
                      const int *arg, double *dX);

#endif
