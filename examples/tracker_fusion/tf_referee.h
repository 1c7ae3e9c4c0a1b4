/* tracker_fusion: the referee between the fused track and the train-chosen
 * best single tracker (see README.md, "The referee"). Where the two part
 * (centres more than `radius` px apart: the benchmark's hit radius, so at
 * most one of them can be on target there unless the truth lies between),
 * each maximal run of such frames is a segment, and a cost-sensitive
 * logistic model on features of the segment decides which of the two to
 * output there. The model is fitted on the training sequences, where the
 * truth says which one had the lower centre error and by how much. */
#ifndef TF_REFEREE_H
#define TF_REFEREE_H

#include "tf_robust.h"

#define TF_REF_F 4 /* features of a segment */

/* One segment [t0, t1) of a sequence of T frames:
     phi[0] = 1,
     phi[1] = mean over its frames with reports of S(F_t) - S(B_t), the
              support of the fused box minus that of the best tracker's box,
              S(z) = sum_k m_tk a_tk psi_k(r2(z, y_tk)) / sum_k m_tk a_tk,
              psi_c(r2) = c^2 / (r2 + c^2) in [0, 1] (tf_robust_support: how
              much of the learned weight of the reports lies at z),
     phi[2] = the same with every a_tk = 1 (how many trackers agree: the
              learned weights come from a few training sequences, the
              agreement does not),
     phi[3] = log(1 + (t1 - t0) / 30) (its length; 30 frames = 1 s of video);
   delta = sum over the frames of (e_F - e_B) / T with e the centre error in
   px: what the segment adds to the sequence's mean centre error if F is
   kept rather than B (> 0: B is better there). NaN without truth. */
typedef struct {
    int t0, t1;
    double phi[TF_REF_F];
    double delta;
} tf_ref_seg;

/* The segments of one sequence q (its tf_rseq, for the reports and the
   support at theta), F and B the fused and the best tracker's boxes [T*4]
   (cx, cy, w, h in px), truth: use q->truth for delta when 1 (q must have
   it), else delta = NaN. *seg is malloc'ed (NULL when *nseg = 0; free it).
   0 ok; -1 out of memory or bad arguments. */
int tf_ref_segments(const tf_rseq *q, const double *theta, const double *F, const double *B,
                    double radius, int truth, tf_ref_seg **seg, int *nseg);

/* The fitting objective (cost-sensitive, ridge-regularized logistic loss):
     J(beta) = sum_s w_s [log(1 + exp(u_s)) - y_s u_s] / sum_s w_s + ridge/2 |beta|^2,
     u_s = beta . phi_s,  w_s = |delta_s|,  y_s = [delta_s > 0],
   so that each segment counts by how much its choice moves the mean centre
   error. Returns J (0 segments or zero total weight: ridge/2 |beta|^2) and
   its gradient grad[TF_REF_F] (may be NULL). Segments whose delta is not
   finite are ignored. */
double tf_ref_objective(const tf_ref_seg *seg, int n, double ridge, const double *beta,
                        double *grad);

/* Minimizes J by Newton's method with a halving line search (J is strictly
   convex for ridge > 0: H = sum w p (1 - p) phi phi' / W + ridge I).
   beta[TF_REF_F] out; *iters (may be NULL) the Newton steps. 0 ok; -1 ridge
   <= 0 or a non-finite input; -2 a Newton system that is not positive
   definite (cannot happen in exact arithmetic; beta then holds the last
   iterate). */
int tf_ref_fit(const tf_ref_seg *seg, int n, double ridge, double *beta, int *iters);

/* The decision: B in the segment when beta . phi > 0. Copies B's boxes into
   F there (F, B [T*4]); returns the number of segments switched. */
int tf_ref_apply(const tf_ref_seg *seg, int n, const double *beta, const double *B, double *F);

#define TF_REF_RIDGE 1e-2 /* the model's ridge (fixed before any run) */

#endif
