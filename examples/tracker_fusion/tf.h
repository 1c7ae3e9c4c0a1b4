/* tracker_fusion: fuse several trackers' 2-D box centres into one trajectory
 * by minimizing a learned energy (see README.md). Shared declarations. */
#ifndef TF_H
#define TF_H

#include <stdint.h>
#include <stdio.h>

#include <wiberg.h>

#include "tf_robust.h"

#define TF_MAX_TRACKERS 16

/* One video: T frames, K trackers (t = 0..T-1, k = 0..K-1, c = 0, 1).
 *   y[(t*K + k)*2 + c]   box centre (x, y) of tracker k's report, px; valid
 *                        where m[t*K + k] = 1 (0 = no report in that frame)
 *   sz[(t*K + k)*2 + c]  box size (w, h) of that report, px, > 0; NaN where
 *                        the report had no size. NULL when has_size = 0 (no
 *                        report of the video has a size).
 *   score[t*K + k]       the tracker's confidence, NaN where absent; NULL
 *                        when has_score = 0.
 *   truth[t*2 + c]       ground-truth centre (has_truth = 0: unknown)
 *   truth_sz[t*2 + c]    ground-truth box size (w, h), > 0; NULL when
 *                        has_truth_sz = 0 (truth given as centres only).
 * Boxes are centre + size: the box of (x, y, w, h) spans x - w/2 .. x + w/2.
 * name: the sequence's name, whole, NUL-terminated, owned by the tf_data. */
typedef struct {
    char *name;
    int T, K;
    double *y;
    unsigned char *m;
    double *sz;
    int has_size;
    double *score;
    int has_score;
    double *truth;
    int has_truth;
    double *truth_sz;
    int has_truth_sz;
} tf_seq;

/* count videos of K trackers; names[k] is tracker k's name ("tracker k"
   unless the data name it: a `name` column or tf_read_names), owned. */
typedef struct {
    int count, K;
    tf_seq *seq;
    char **names; /* [K] */
} tf_data;

/* ---- data (tf_data.c) ---- */
typedef struct {
    int sequences;      /* number of videos                     */
    int min_frames, max_frames;
    int trackers;       /* 4..8                                  */
    double missing;     /* probability a report is absent        */
    uint64_t seed;
} tf_gen_opts;

void tf_gen_default(tf_gen_opts *o);
/* Seeded synthetic videos: smooth motion with turns and speed changes,
   trackers with different noise, slow drift, failure episodes (locking onto
   a distractor, freezing) and missing frames. Box sizes too (from a
   random stream of their own, so the centres do not depend on them): the
   object's box drifts in scale, each tracker reports it with its own
   relative noise, the distractor's box while locked on it, the last box
   while frozen. 0 ok, -1 out of memory. */
int tf_generate(const tf_gen_opts *o, tf_data *d);
/* CSV reader. tracks: a header "sequence,frame,tracker,x,y" and then any
   of the optional columns w, h (both or neither), score, name, in any order;
   one report a line (later columns may be left empty or out: absent). truth:
   "sequence,frame,x,y" or the box form "sequence,frame,x,y,w,h". x, y are
   box centres. Frames of a sequence are 0..its largest frame; absent reports
   are missing. Refused with "FILE:LINE: reason": |x|, |y| > TF_MAX_COORD,
   w, h <= 0 or > TF_MAX_COORD, a non-finite score, a frame far beyond the
   sequence's lines (largest frame + 1 > TF_FRAMES_PER_LINE x its lines in
   both files + TF_FRAMES_SLACK), a NUL byte, control characters in a name,
   a tracker given two names. A UTF-8 byte-order mark is skipped. Memory and
   time are linear in the files. On error returns -1 and writes the reason
   into err. truth_path may be NULL. */
#define TF_MAX_COORD 1e6
#define TF_FRAMES_PER_LINE 4
#define TF_FRAMES_SLACK 64
int tf_read_csv(const char *tracks_path, const char *truth_path, tf_data *d,
                char *err, size_t errlen);
/* Tracker names from a CSV "id,name" (header "id,name", then one tracker a
   line, ids 0..d->K-1; as the OTB data's trackers.txt). 0 ok, -1 (err). */
int tf_read_names(const char *path, tf_data *d, char *err, size_t errlen);
void tf_data_free(tf_data *d);
/* Split by video (never by frame): the sequences are grouped into videos by
   `group`, the videos shuffled with the seed, and whole videos go to *test
   until it holds round(frac * count) sequences (at least 1, never all), the
   rest to *train (the sequences are shared, not copied: free only the
   original). TF_GROUP_NONE: every sequence is its own video.
   TF_GROUP_DASH: sequences whose names agree up to their last '-' are one
   video (Jogging-1 and Jogging-2: two targets of the video Jogging); a name
   without '-' is its own video. With singleton groups both rules give the
   same split. 0 ok, -1 out of memory. */
enum { TF_GROUP_NONE = 0, TF_GROUP_DASH = 1 };
int tf_split_by(const tf_data *d, double frac, uint64_t seed, int group,
                tf_data *train, tf_data *test);
/* tf_split_by(..., TF_GROUP_NONE, ...) */
int tf_split(const tf_data *d, double frac, uint64_t seed, tf_data *train,
             tf_data *test);
void tf_split_free(tf_data *part);

/* ---- the energy (tf_energy.c) ----
 * theta = (log w_1..log w_K, log alpha, log delta), p = K + 2:
 *   E(x; theta) = sum_t sum_k m_tk w_k delta^2 (sqrt(1 + |x_t - y_tk|^2/delta^2) - 1)
 *               + alpha sum_t |x_{t+1} - 2 x_t + x_{t-1}|^2
 * x = (x_0, y_0, x_1, y_1, ...), n = 2T. The Hessian is banded: a data term
 * couples x_t and y_t (offset 1), the smoothing couples a coordinate of
 * frames t-1 and t+1 (offset 4), so kd = 4 (less for a video of 1-2 frames:
 * the library wants kd < n). */
#define TF_KD 4
wb_energy tf_energy(const tf_seq *s);
/* per-frame median of the observed trackers (gaps: nearest frame) */
void tf_median_start(const tf_seq *s, double *x);
/* L = mean over frames of sqrt(|x_t - truth_t|^2 + 1 px^2), and dL/dx */
double tf_loss(const tf_seq *s, const double *x, double *dl_dx);
/* A wb_dataset over the sequences of d (energies, median starts, losses). */
wb_dataset tf_dataset(const tf_data *d);

/* ---- evaluation and baselines (tf_eval.c) ----
 * A method fuses each sequence into centres x [2T] and box sizes sz [2T]
 * (w, h); one function scores every method the same way. */
#define TF_PREC_PX 20.0 /* OTB precision threshold (px) */
#define TF_AUC_STEPS 21 /* OTB success plot: IoU thresholds 0, 0.05, ..., 1 */

/* One sequence's figures (OTB toolkit / pysot definitions):
     cle  = mean_t |c_t - c*_t|                         (px)
     prec = share of frames with |c_t - c*_t| <= 20 px  (OTB precision, P@20)
     succ = share of frames with |c_t - c*_t| <= the threshold given
     auc  = (1/21) sum_{i=0..20} share of frames with IoU_t > i/20
            (success AUC; NaN when sz is NULL or the truth has no sizes)
   with IoU of the boxes (x +- w/2, y +- h/2). */
typedef struct {
    double cle, prec, succ, auc;
    long frames;
} tf_metrics;
tf_metrics tf_metrics_seq(const tf_seq *s, const double *x, const double *sz,
                          double threshold);
/* IoU of two boxes given as centre and size */
double tf_iou(double x1, double y1, double w1, double h1, double x2, double y2,
              double w2, double h2);

/* A method's figures over a set of sequences: pooled over frames (mean_error,
   success, frames: the figures tracker_fusion has always printed) and
   averaged per sequence as OTB does (cle, prec20, auc over seqs). auc is NaN
   when a sequence has no sizes. */
typedef struct {
    double mean_error;   /* mean centre error over frames (px)          */
    double success;      /* fraction of frames with error <= threshold  */
    long frames;
    double cle, prec20, auc; /* per-sequence averages                   */
    int seqs;
} tf_score;

/* Fused trajectory of every sequence of d with the energy at theta; sizes by
   tf_fuse_sizes with the weights exp(theta[0..K-1]). x_out (may be NULL)
   receives sequence `keep`'s trajectory [2T]; per_seq (may be NULL) each
   sequence's metrics [d->count]. Returns the number of failed solves (their
   best points are scored), or a negative wb_status when a solver cannot be
   created (WB_ENOMEM, WB_EINVAL); *solves += the solves made. */
int tf_fuse_all(const tf_data *d, const double *theta, double threshold,
                tf_score *sc, long *solves, int keep, double *x_out);
int tf_fuse_all_seq(const tf_data *d, const double *theta, double threshold,
                    tf_score *sc, long *solves, int keep, double *x_out,
                    tf_metrics *per_seq);
/* mean / median / single tracker k trajectories (gaps filled) */
void tf_baseline(const tf_seq *s, int kind, int k, double *x);
enum { TF_MEAN = 0, TF_MEDIAN = 1, TF_SINGLE = 2 };
/* box sizes of the same baselines (sz [2T]; all NaN when !s->has_size) */
void tf_baseline_sizes(const tf_seq *s, int kind, int k, double *sz);
/* per-frame weighted median of the reports' sizes (w and h separately),
   weights wk [K] (NULL: equal); frames without a sized report take the
   nearest earlier one (or the first later one). All NaN when !s->has_size. */
void tf_fuse_sizes(const tf_seq *s, const double *wk, double *sz);
/* scores without sizes (AUC NaN) and with */
tf_score tf_score_traj(const tf_seq *s, const double *x, double threshold);
tf_score tf_score_fused(const tf_seq *s, const double *x, const double *sz,
                        double threshold);
void tf_score_add(tf_score *acc, tf_score one);
tf_score tf_score_of(tf_metrics m); /* one sequence as a tf_score */

/* The whole experiment, as the binary runs it. */
#define TF_MAX_SWEEP 8
typedef struct {
    tf_gen_opts gen;
    const char *tracks, *truth; /* CSV input instead of synthetic */
    const char *names;          /* tracker names file (tf_read_names) or NULL */
    int group;                  /* TF_GROUP_DASH (default) or TF_GROUP_NONE */
    double test_fraction, threshold;
    int epochs, batch, threads, verbose;
    double lr, lambda;
    uint64_t seed;
    int robust;  /* the robust rows (tf_robust_run.c): 1 on, 0 off, -1 (default):
                    on for --tracks data whose every sequence has sizes and
                    box truth (off for the synthetic default run: its time);
                    2: only the non-convex learned row (not end to end); the
                    end-to-end row only with 1; -1 gives the non-convex one */
    int search;  /* the robust rows' basin search (tf_robust_search): 1 or 0 (default) */
    int robust_loss_px; /* the robust rows' training loss: 1 in px, 0 in box scales (default) */
    int referee;        /* the referee row (tf_referee.h): 1 on, 0 off (default) */
    int votes;          /* the robust rows' start weights: 1 fitted on the
                           training sequences' disagreements (tf_robust_vote_fit),
                           0 (default) from each tracker's training P@20 alone */
    double sweep[TF_MAX_SWEEP]; /* --lambda-sweep: the non-convex learned row */
    int nsweep;                 /* trained again at each of these lambdas     */
} tf_opts;

/* a row of the table. key: a stable name for the JSON ("learned", "mean",
   "median", "best_single", "best_single_cle", "oracle", "single", "uniform",
   "grid_search"); label: what the table prints. */
#define TF_MAX_METHODS 48
typedef struct {
    char key[32];
    char label[64];
    tf_score test;
    tf_metrics *per_seq;  /* [test_seqs], owned; test order of tf_result */
    int tracker;          /* the single tracker of a "single"/"best"/"oracle" row, else -1 */
    int failed;           /* failed solves on the test sequences */
    double train_seconds;
    long solves;
} tf_method;

/* A fusion method for tf_eval_method: fill x [2T] (centres) and sz [2T]
   (sizes; NaN when unknown) for sequence s. Return 0, 1 when the fusion
   failed but x, sz hold a usable (scored) answer, or -1 on an error (out of
   memory...: nothing is scored). */
typedef int (*tf_fuse_fn)(void *user, const tf_seq *s, double *x, double *sz);

typedef struct {
    tf_method m[TF_MAX_METHODS];
    int count;
    double theta[TF_MAX_TRACKERS + 2];
    int K, train_seqs, val_seqs, test_seqs;
    int *test_idx;          /* [test_seqs] the test sequences, indices in all */
    long inner_solves;      /* learned run's training solves         */
    double train_seconds;
    double *epoch_loss, *val_loss; /* [epochs] */
    int epochs;
    int failed_solves;      /* all methods, test fusion              */
    /* a test sequence for the plot */
    tf_seq *plot_seq;
    double *plot_fused;
    tf_data all;            /* owned */
    tf_robust_fit robust[2]; /* non-convex learned, end to end (owned) */
    int robust_rows;        /* how many of them ran (row e in robust[e]) */
    double lambda;          /* their damping (--lambda)                 */
    tf_robust_fit sweep[TF_MAX_SWEEP]; /* --lambda-sweep's fits (owned) */
    double sweep_lambda[TF_MAX_SWEEP];
    int sweep_rows;
    /* the referee (tf_referee.h) of the non-convex learned row against the
       train-chosen best single tracker: row "nonconvex_referee" */
    int ref_done;           /* 1 when the row ran                        */
    int ref_tracker;        /* the best single tracker it referees with  */
    double ref_beta[4];     /* the model (TF_REF_F features)             */
    int ref_segs, ref_switched; /* training segments; of them switched to
                                   the tracker by the fitted model       */
    double ref_gain;        /* on the training sequences: the mean centre
                               error (px, averaged per sequence) the
                               switches removed                          */
    int ref_test_segs, ref_test_switched; /* the same on the test sequences */
    int ref_used;           /* 1: the model was applied (ref_gain > 0);
                               0: the fusion kept everywhere           */
    /* the robust rows' start weights: from the training P@20 (w_prec) and,
       with o->votes, fitted on the disagreements (w_start, vote) */
    int vote_done;
    double w_prec[TF_MAX_TRACKERS], w_start[TF_MAX_TRACKERS];
    tf_vote_info vote;
} tf_result;

/* Fuses every sequence of test (in order: the test_idx order of r) with fn,
   scores it and appends a row to r (tracker -1). Returns the number of
   failed fusions (fn returned 1; also added to r->failed_solves), or -1
   (fn failed, out of memory, or TF_MAX_METHODS rows). */
int tf_eval_method(tf_result *r, const char *key, const char *label,
                   const tf_data *test, tf_fuse_fn fn, void *user,
                   double threshold, double train_seconds, long solves);

/* ---- the robust rows (tf_robust_run.c) ---- */
/* 1 when every sequence of d has sizes and box truth */
int tf_robust_usable(const tf_data *d);
/* Trains the non-convex energy twice (global weights; end to end; only the
   first with o->robust == 2) on train/val and appends the rows "nonconvex"
   and "end_to_end" for test to r (their fits in r->robust); then the global
   row again at each lambda of o->sweep (rows "nonconvex_lambda_<lambda>",
   fits in r->sweep). After the global row, its referee against the
   train-chosen best single tracker (row "nonconvex_referee", fitted on
   train + validation; needs the "best_single" row in r). 0 ok; -1 (err). */
int tf_robust_rows(tf_result *r, const tf_opts *o, const tf_data *train, const tf_data *val,
                   const tf_data *trval, const tf_data *test, char *err, size_t errlen);

void tf_opts_default(tf_opts *o);
/* 0 ok; -1 error (message in err). */
int tf_run(const tf_opts *o, tf_result *r, char *err, size_t errlen);
void tf_result_free(tf_result *r);
/* JSON: every number through one writer (null for NaN/Inf), strings
   escaped. 0 ok, -1 cannot write. */
int tf_write_json(const tf_result *r, const char *path);
int tf_write_svg(const tf_result *r, const char *dir);

#endif
