/* tracker_fusion: the non-convex, learned fusion of whole boxes (see
 * README.md, "Real data: a robust energy"). Independent of the reader's
 * structures: it takes boxes as arrays, so tf_eval.c feeds it from tf_seq. */
#ifndef TF_ROBUST_H
#define TF_ROBUST_H

#include <stdint.h>

#include <wiberg.h>

#define TF_RMAX_K 16 /* trackers                                          */
#define TF_RF 6      /* per-frame, per-tracker features                   */
#define TF_RKD 8     /* 4 unknowns a frame; the smoothing couples t-1, t+1 */
#define TF_RP(K) (2 * (K) + 3 + TF_RF) /* parameters                      */
#define TF_RC0 0.3   /* the start's Geman-McClure width (box scales)        */

/* One sequence prepared for the energy (everything in it is fixed data: the
   parameters never change it).
   State per frame z_t = (cx/S, cy/S, log w, log h): n = 4T unknowns. */
typedef struct {
    int T, K;
    double S;          /* scale (px): sqrt(w h) of frame 0's median box     */
    double *ys;        /* [T*K*4] the reports in the units of the state     */
    unsigned char *m;  /* [T*K] 1 = tracker k reported frame t              */
    double *is;        /* [T] S / s_t, s_t = sqrt(w h) of frame t's median  */
    double *f;         /* [T*K*TF_RF] features (see tf_robust.c)             */
    double *x_irls;    /* [4T] per-frame robust consensus (feature 5's anchor) */
    double *truth;     /* [4T] the truth in the state's units, or NULL      */
    double *tis;       /* [T] S / sqrt(w h) of the truth, or NULL           */
} tf_rseq;

/* Prepares q from box[T*K*4] (cx, cy, w, h in px; w, h > 0 where m = 1),
   m[T*K], truth_box[T*4] (or NULL) and the start weights w0[K] > 0.
   0 ok; -1 out of memory or a sequence without a single report (q is then
   empty; tf_rseq_free is still safe). */
int tf_rseq_init(tf_rseq *q, int T, int K, const double *box, const unsigned char *m,
                 const double *truth_box, const double *w0);
void tf_rseq_free(tf_rseq *q);

/* theta[TF_RP(K)]: [0,K) log w_k, [K,2K) log c_k (robust widths, in box
   scales), 2K log alpha_c, 2K+1 log alpha_s, 2K+2 log g, then beta[TF_RF].
   The energy (n = 4T, p = TF_RP(K), kd = min(TF_RKD, n - 1)):
     E = sum_tk m_tk a_tk phi_ck(r2_tk) + alpha_c sum_t is_t^2 |dd c_t|^2
                                        + alpha_s sum_t |dd log size_t|^2,
     a_tk = exp(log w_k + beta . f_tk),  phi_c(r2) = c^2 r2 / (r2 + c^2),
     r2_tk = is_t^2 |c_t - c_tk|^2 + g |log size_t - log size_tk|^2,
   dd = second difference in t. Geman-McClure: non-convex. */
wb_energy tf_robust_energy(const tf_rseq *q);
/* theta0: log w0_k, c_k = 0.3, alpha_c = alpha_s = g = 1, beta = 0. */
void tf_robust_theta0(int K, const double *w0, double *theta);
/* The start x0[4T] at theta: a Viterbi path over the reported boxes (cost:
   the energy's data term at the candidate + 2 min(jump^2, 16) in box scales
   between frames), each frame then refined by Geman-McClure IRLS. */
void tf_robust_start(const tf_rseq *q, const double *theta, double *x0);
/* Training loss: mean over frames of sqrt(|dc|^2/s_true^2 + |dlog size|^2/2
   + 1e-4), and dl[4T] (may be NULL). Needs q->truth. */
double tf_robust_loss(const tf_rseq *q, const double *x, double *dl);
/* The support of the box z[4] (the state's units: centre / S, log size) in
   frame t at theta: sum_k m_tk a_tk psi_k / sum_k m_tk a_tk with
   psi_k = c_k^2 / (r2_tk + c_k^2) in [0, 1] (the energy's residual r2 of z
   against report k; 1 at a report, 1/2 at one width c_k): the share of the
   learned weight of frame t's reports that lies at z; weighted = 0: every
   a_tk = 1 (the share of the reporting trackers that agree with z). NaN in
   a frame without reports. */
double tf_robust_support(const tf_rseq *q, const double *theta, int t, const double *z,
                         int weighted);
/* The same loss in px: mean over frames of s_t sqrt(...) with s_t the
   truth's sqrt(w h) in px (the centre part: the centre error in px, as the
   benchmarks' mean centre error). Needs q->truth. */
double tf_robust_loss_px(const tf_rseq *q, const double *x, double *dl);
/* state x[4T] -> box[T*4] (cx, cy, w, h in px) */
void tf_robust_boxes(const tf_rseq *q, const double *x, double *box);

/* ---- the start's vote weights (tf_vote.c) ----
   Fits the per-tracker weights a[K] with which the Viterbi start scores a
   candidate (cost sum_k a_k V_tjk at the start's width TF_RC0 and g = 1) on
   the sequences train[ntrain] and val[nval] (they need truth): in every
   frame whose reports include a hit (centre error <= prec_px) and a miss,
   the report nearest the truth should cost less than each miss; a logistic
   ranking loss, each sequence weighing equally and each of its frames
   1/T, plus mu/2 |a - a0|^2 (mu = 1e-2), a_k >= 1e-3 (see tf_vote.c). a0:
   the prior (the start weights the caller had). 0 ok; -1 out of memory,
   no sequence, a sequence without truth or of another K. */
typedef struct {
    long pairs;        /* (hit, miss) pairs ranked                          */
    int sweeps;        /* coordinate-descent sweeps                         */
    double loss_before, loss_after; /* the objective at a0 and at a        */
} tf_vote_info;
int tf_robust_vote_fit(const tf_rseq *train, int ntrain, const tf_rseq *val, int nval,
                       double prec_px, const double *a0, double *a, tf_vote_info *info);
/* The pieces, for tests: the objective above (and its gradient into
   grad[K] if not NULL) for the pairs D[np*K] (hit's V minus miss's V) with
   weights w[np] >= 0; and its minimizer over a_k >= 1e-3 from a0 (0 ok;
   -1 out of memory, K outside 1..TF_RMAX_K, a non-finite or negative input). */
double tf_vote_objective(const double *D, const double *w, size_t np, int K, const double *a,
                         const double *a0, double *grad);
int tf_vote_solve(const double *D, const double *w, size_t np, int K, const double *a0,
                  double *a, int *sweeps);

/* ---- learning ---- */
typedef struct {
    int end_to_end;     /* 1: learn beta (per-frame, per-tracker weights);
                           0: beta = 0, global per-tracker weights        */
    int epochs, batch, threads, verbose;
    double lr, lambda;
    uint64_t seed;
    int search;         /* 1 (default): tf_robust_search before the gradient */
    double prec_px;     /* the search's precision threshold (default 20 px) */
    int loss_px;        /* 1: train on tf_robust_loss_px; 0 (default): tf_robust_loss */
} tf_robust_opts;

/* 30 epochs, 8, lr 0.02, 1e-3, search on at 20 px */
void tf_robust_opts_default(tf_robust_opts *o);

/* The basin search (see tf_robust.c): coordinate searches over the log
   weights theta[0..K) that maximize the mean over train[ntrain] of the
   per-frame (IoU + [centre error <= prec_px]) / 2 of the Viterbi start's
   path (the widths, alpha, g at theta; beta taken as 0), from K + 1
   starts; of theta and the end points, the best by the same score on
   val[nval] is kept (by the training score when nval = 0). theta's first K
   entries are replaced. *before, *after: the training score of theta and
   of the kept weights; *evals: evaluations. 0 ok; -1 out of memory or no
   truth. */
int tf_robust_search(const tf_rseq *train, int ntrain, const tf_rseq *val, int nval,
                     double *theta, double prec_px, double *before, double *after, int *evals);

typedef struct {
    double theta[TF_RP(TF_RMAX_K)]; /* the parameters with the best validation loss */
    double *epoch_loss, *val_loss;  /* [epochs]                       */
    int epochs, best_epoch;         /* best_epoch -1: the start kept       */
    double val_loss0;               /* the validation loss at the start    */
    long long solves, skipped;      /* inner solves; examples skipped (failed
                                       solve or refused derivative)     */
    int refused, checked;           /* at the learned theta: refused
                                       derivatives (WB_ESINGULAR) of the
                                       training sequences' solves        */
    double seconds, cpu_seconds;
    double sigma_min, sigma_med;    /* the smallest curvature of H + lambda I
                                       of the accepted ones: minimum and
                                       median over the sequences (NaN: none) */
    double search_before, search_after; /* the basin search's training score */
    int search_evals;                   /* (0: no search)                    */
    /* filled by tf_robust_rows: on each test sequence (test order), the
       smallest curvature of H itself at the row's minimizer
       (tf_robust_curvature at lambda 0; NaN: refused or not reached) and
       whether the undamped derivative was refused there; NULL until then */
    double *test_sigma;
    int *test_refused;
} tf_robust_fit;

/* Trains on train[ntrain], starting at theta0 after the basin search
   (o->search); the validation loss on val[nval] picks the start or the end
   of an epoch. 0 ok; -1 (message in err). */
int tf_robust_train(const tf_rseq *train, int ntrain, const tf_rseq *val, int nval,
                    const double *theta0, const tf_robust_opts *o, tf_robust_fit *fit,
                    char *err, size_t errlen);
void tf_robust_fit_free(tf_robust_fit *fit);
/* The fused boxes box[T*4] of q at theta (start, then one solve). Returns
   the wb_solve status (box is filled from the best point on a failure
   after the start). */
int tf_robust_fuse(const tf_rseq *q, const double *theta, double *box);

/* The smallest curvature of H at the minimizer that tf_robust_fuse finds
   (the start at theta, one solve), from the derivative's curvature test at
   damping lambda: sigma of H + lambda I minus lambda (wb_deriv_info), after
   wb_implicit_vjp with the training loss's gradient (q needs truth; without
   it a vector of ones). The test's sigma estimates 1 / ||(H + lambda I)^-1||_1
   (within sqrt(n) of the smallest eigenvalue), so at lambda > 0 the
   difference can fall below H's own curvature, even below 0: lambda = 0
   measures H. NaN when the solve failed or the derivative was
   refused (*refused = 1: WB_ESINGULAR, H + lambda I not positive definite
   enough) or the test was not reached. */
double tf_robust_curvature(const tf_rseq *q, const double *theta, double lambda, int *refused);

#endif
