/* tracker_fusion: fuse several trackers' 2-D box centres into one trajectory
 * by minimizing a learned energy (see README.md). Shared declarations. */
#ifndef TF_H
#define TF_H

#include <stdint.h>
#include <stdio.h>

#include <wiberg.h>

#define TF_MAX_TRACKERS 16

/* One video: T frames, K trackers. y[(t*K + k)*2 + c], observed when
   m[t*K + k] = 1; truth[t*2 + c] (has_truth = 0 when unknown). */
typedef struct {
    char name[64];
    int T, K;
    double *y;
    unsigned char *m;
    double *truth;
    int has_truth;
} tf_seq;

typedef struct {
    int count, K;
    tf_seq *seq;
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
   a distractor, freezing) and missing frames. 0 ok, -1 out of memory. */
int tf_generate(const tf_gen_opts *o, tf_data *d);
/* CSV reader: tracks "sequence,frame,tracker,x,y[,w,h,score]" and truth
   "sequence,frame,x,y", each with a header line. Frames of a sequence are
   0..max frame; absent reports are missing. On error returns -1 and writes
   "FILE:LINE: reason" into err. truth_path may be NULL. */
int tf_read_csv(const char *tracks_path, const char *truth_path, tf_data *d,
                char *err, size_t errlen);
void tf_data_free(tf_data *d);
/* Split by sequence (never by frame): a seeded shuffle, the first
   round(frac * count) sequences to *test, the rest to *train (the sequences
   are shared, not copied: free only the original). */
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

/* ---- evaluation and baselines (tf_eval.c) ---- */
typedef struct {
    double mean_error;   /* mean centre error over frames (px)        */
    double success;      /* fraction of frames with error <= threshold */
    long frames;
} tf_score;

/* Fused trajectory of every sequence of d with the energy at theta; x_out
   (may be NULL) receives sequence `keep`'s trajectory [2T]. Returns the
   number of failed solves (their best points are scored), or a negative
   wb_status when a solver cannot be created (WB_ENOMEM, WB_EINVAL);
   *solves += the solves made. */
int tf_fuse_all(const tf_data *d, const double *theta, double threshold,
                tf_score *sc, long *solves, int keep, double *x_out);
/* mean / median / single tracker k trajectories (gaps filled) */
void tf_baseline(const tf_seq *s, int kind, int k, double *x);
enum { TF_MEAN = 0, TF_MEDIAN = 1, TF_SINGLE = 2 };
tf_score tf_score_traj(const tf_seq *s, const double *x, double threshold);
void tf_score_add(tf_score *acc, tf_score one);

/* The whole experiment, as the binary runs it. */
typedef struct {
    tf_gen_opts gen;
    const char *tracks, *truth; /* CSV input instead of synthetic */
    double test_fraction, threshold;
    int epochs, batch, threads, verbose;
    double lr, lambda;
    uint64_t seed;
} tf_opts;

typedef struct {
    char name[48];
    tf_score test;
    double train_seconds;
    long solves;
} tf_method;

typedef struct {
    tf_method m[8];
    int count;
    double theta[TF_MAX_TRACKERS + 2];
    int K, train_seqs, val_seqs, test_seqs;
    long inner_solves;      /* learned run's training solves         */
    double train_seconds;
    double *epoch_loss, *val_loss; /* [epochs] */
    int epochs;
    /* a test sequence for the plot */
    tf_seq *plot_seq;
    double *plot_fused;
    tf_data all;            /* owned */
} tf_result;

void tf_opts_default(tf_opts *o);
/* 0 ok; -1 error (message in err). */
int tf_run(const tf_opts *o, tf_result *r, char *err, size_t errlen);
void tf_result_free(tf_result *r);
int tf_write_json(const tf_result *r, const char *path);
int tf_write_svg(const tf_result *r, const char *dir);

#endif
