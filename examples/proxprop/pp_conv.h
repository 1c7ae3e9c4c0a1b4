/* proxprop: a convolutional layer by im2col + dgemm, and its ProxProp step
 * (pp_conv.c).
 *
 * Images are stored HWC per example: pixel (y, x), channel ch of example j
 * of a c x h x w image is X[ch + c (y w + x) + j c h w]. A layer with o
 * output channels, k x k kernels, stride 1 and zero padding `pad` maps it
 * to an o x h' x w' image, h' = h + 2 pad - k + 1 (likewise w'), in the
 * same layout. With the patch matrix
 *
 *   cols (R x m P, R = c k k, P = h' w'),
 *   cols[(ky k + kx) c + ch, j P + oy w' + ox] = X(ch, oy + ky - pad, ox + kx - pad)
 *
 * (0 outside the image), the layer is the linear layer Z = W cols + b 1'
 * with T = [W b] (o x (R + 1)), and Z (o x m P, column j P + p = output
 * pixel p of example j) is the output image in HWC order. So forward is one
 * dgemm, dW = dZ cols', dX = col2im(W' dZ), and the ProxProp step of the
 * layer is that of a linear layer whose "batch" is the m P patches:
 * pp_cg_step(cg, m P, cols, dZ, S) with a pp_cg made for R inputs, o
 * outputs and batches of m P (the primal form: m P is far larger than R).
 */
#ifndef PP_CONV_H
#define PP_CONV_H

typedef struct {
    int c, h, w;   /* input channels, height, width  */
    int o, k, pad; /* output channels, kernel size, zero padding */
} pp_conv_shape;

/* h' w' (0 when the kernel does not fit), and R = c k k */
int pp_conv_out_pixels(const pp_conv_shape *s);
int pp_conv_patch_size(const pp_conv_shape *s);

/* cols[R * m P] from X[c h w * m] */
void pp_conv_im2col(const pp_conv_shape *s, int m, const double *X, double *cols);

/* dX[c h w * m] = the adjoint of im2col applied to dcols[R * m P]
   (overwrites dX) */
void pp_conv_col2im(const pp_conv_shape *s, int m, const double *dcols, double *dX);

/* Z[o * m P] = W cols + b 1' (T = [W b], o x (R + 1)); cols from im2col */
void pp_conv_forward(const pp_conv_shape *s, int m, const double *T,
                     const double *cols, double *Z);

/* From dZ[o * m P]: G[o * (R + 1)] = [dZ cols', dZ 1] (NULL: not needed),
   and dX[c h w * m] = col2im(W' dZ) (NULL: not needed), with dcols[R * m P]
   as scratch. */
void pp_conv_backward(const pp_conv_shape *s, int m, const double *T,
                      const double *cols, const double *dZ, double *G,
                      double *dX, double *dcols);

#endif
