/* pose_lib: the pieces of the multi-view pose-lifting example.
 *
 * A synthetic Human3.6M-like world: a 17-joint skeleton, a seeded kinematic
 * model of 4 actions, subjects with their own bone lengths, sequences of
 * frames seen by up to 4 calibrated cameras 90 degrees apart, with 2-D
 * noise, gross outliers and missing joints; or real-format CSV input
 * (pose_io.c). Two shape models: one probabilistic PCA (pose_train.c, only
 * the energy weights learned) and a mixture of PPCA models whose mean
 * poses and bases are learned too (pose_mix.c).
 *
 * Per frame the unknowns are x = [z (K whitened PCA coefficients), yaw,
 * t (3, metres)] and the energy is
 *
 *   E(x; w) = sum_{c,j visible} w_j h^2 (sqrt(1 + |r_cj / s|^2 / h^2) - 1)
 *             + kappa / 2 |z|^2
 *
 * r_cj the reprojection error of joint j in camera c (pixels), s = POSE_PX
 * pixels, w = [w_0 .. w_16 (per-joint weights), kappa (prior weight),
 * h (pseudo-Huber width, in units of s)]: p = 19. The mixture appends each
 * component's mean and basis to w.
 *
 * Lengths are millimetres unless said otherwise. Joint arrays are [17*3],
 * joint j at [3j .. 3j+2].
 */
#ifndef POSE_H
#define POSE_H

#include <stddef.h>
#include <stdint.h>

#include "wiberg.h"

enum {
    POSE_J = 17,            /* joints                                    */
    POSE_D = 3 * POSE_J,    /* coordinates of a pose                     */
    POSE_C = 4,             /* cameras                                   */
    POSE_KMAX = 25,         /* most PCA bases                            */
    POSE_P = POSE_J + 2,    /* learnable parameters                      */
    POSE_W_PRIOR = POSE_J,  /* index of kappa in w                       */
    POSE_W_WIDTH = POSE_J + 1, /* index of h in w                        */
    POSE_ACTIONS = 4,       /* activities of the synthetic data          */
    POSE_REAL_ACTIONS = 32, /* most actions of a data set (pose_io.c)    */
    POSE_GMAX = 6,          /* most mixture components                   */
    POSE_MKMAX = 25         /* most bases of a mixture component         */
};

#define POSE_PI 3.14159265358979323846
#define POSE_T_MM 1000.0    /* millimetres per unit of the translation */
#define POSE_PX 3.0         /* pixel unit of the residuals (s above)     */
#define POSE_LOSS_EPS 5.0   /* mm, smoothing of the training loss        */

extern const int pose_parent[POSE_J];
extern const char *const pose_joint_name[POSE_J];

/* ---- random numbers (splitmix64) ---------------------------------------- */

double pose_rand(uint64_t *st);  /* uniform [0, 1) */
double pose_randn(uint64_t *st); /* standard normal */

/* ---- shape model ---------------------------------------------------------- */

/* Probabilistic PCA: pose = mean + basis * diag(sd) * z + noise, z ~ N(0, I),
   noise ~ N(0, noise_var I). Canonical frame: pelvis at the origin, facing +x,
   z up. */
typedef struct pose_model {
    int K;
    double mean[POSE_D];
    double basis[POSE_D * POSE_KMAX]; /* column k at [k*POSE_D], orthonormal */
    double sd[POSE_KMAX];             /* sqrt of the variances (mm), decaying */
    double noise_var;                 /* mm^2, mean discarded variance        */
    double explained;                 /* fraction of the variance kept        */
} pose_model;

/* Fits K bases to count poses [count*POSE_D] (eigen-decomposition of the
   sample covariance). 0 ok, -1 bad arguments or out of memory. */
int pose_pca_fit(const double *poses, int count, int K, pose_model *m);

/* Symmetric eigen-decomposition by cyclic Jacobi: A[n*n] (destroyed),
   eigenvalues ev[n] descending, eigenvectors V[n*n] (column k). */
void pose_sym_eig(int n, double *A, double *ev, double *V);

/* The synthetic kinematic skeleton model: one random pose (canonical frame)
   with the given bone lengths [POSE_J] (bone parent(j) -> j, length[0]
   unused). */
void pose_kinematic_sample(uint64_t *rng, const double *bone, double *pose);
/* The same for one action (0 .. POSE_ACTIONS-1: Walking, Sitting, Greeting,
   Phoning; -1: the generic model above). */
void pose_kinematic_action(uint64_t *rng, const double *bone, int action, double *pose);
extern const char *const pose_action_name[POSE_ACTIONS];

/* Mean bone lengths of the kinematic model [POSE_J]. */
extern const double pose_bone_mm[POSE_J];

/* Re-targets pose src to the bone lengths scale * bone[] keeping every
   bone's direction (pelvis fixed). */
void pose_retarget(const double *src, const double *bone, double scale,
                   double *dst);

/* ---- metrics ------------------------------------------------------------ */

/* Mean per-joint position error after subtracting each pose's pelvis. */
double pose_mpjpe(const double *pred, const double *gt);
/* The same after a similarity (rotation, scale, translation) Procrustes
   alignment of pred onto gt (Horn's quaternion method). */
double pose_pa_mpjpe(const double *pred, const double *gt);
/* Per-joint errors [POSE_J] after root alignment. */
void pose_joint_errors(const double *pred, const double *gt, double *err);

/* ---- the world --------------------------------------------------------- */

typedef struct pose_camera {
    double R[9];  /* world -> camera rotation, row-major: Y = R (X - C)   */
    double C[3];  /* centre (mm)                                          */
    double f, cx, cy; /* pixels                                           */
} pose_camera;

/* Projects world point X[3] into u[2]; returns the depth (mm). */
double pose_project(const pose_camera *c, const double *X, double *u);

typedef struct pose_frame {
    double gt[POSE_D];        /* world joint positions (mm)                  */
    double canon[POSE_D];     /* the same pose unrotated, pelvis at 0         */
    double uv[POSE_C][POSE_J][2];  /* observed 2-D joints (pixels)             */
    unsigned char vis[POSE_C][POSE_J];     /* 0: missing                      */
    unsigned char outlier[POSE_C][POSE_J]; /* 1: a gross outlier              */
    double yaw, scale;        /* ground-truth yaw (rad) and scale             */
    int subject, sequence, index;
    int action;               /* 0 .. POSE_ACTIONS-1                         */
} pose_frame;

typedef struct pose_config {
    unsigned long long seed;
    int basis;           /* K, PCA bases (1 .. POSE_KMAX). Default 25        */
    int population;      /* kinematic poses the PPCA is fitted to. 3000     */
    int train_subjects;  /* 1 .. 5 (S1 S5 S6 S7 S8). Default 5               */
    int test_subjects;   /* 1 .. 2 (S9 S11). Default 2                       */
    int actions;         /* actions each subject performs, 1 .. 4. Default 4 */
    int cameras;         /* cameras that see the frames (the first of the 4,
                            the rest's joints all missing), 1 .. 4. 4     */
    int sequences;       /* per subject and action. Default 1               */
    int frames;          /* per sequence. Default 8                         */
    int mix_components;  /* G, components of the PPCA mixture. Default 3    */
    int mix_basis;       /* bases of each component. Default 6              */
    double noise_min_px, noise_max_px; /* per-joint 2-D noise sd. 2, 5       */
    double outlier_rate; /* mean fraction of gross outliers. 0.07            */
    double missing_rate; /* fraction of missing joints. 0.05                 */
    double bone_sd;      /* log-sd of a subject's bone lengths. 0.04          */
    double height_spread;/* subject heights 1 +- this. 0.05                   */
} pose_config;

void pose_config_default(pose_config *c);

/* A mixture of G PPCA shape models: component g is P = mean[g] + W[g] z,
   W[g] column k at [k*POSE_D] (maximum-likelihood scaled basis). */
typedef struct pose_mixture {
    int G, K;
    double mean[POSE_GMAX][POSE_D];
    double W[POSE_GMAX][POSE_D * POSE_MKMAX];
    double noise_var[POSE_GMAX]; /* mm^2, each component's residual variance */
    int count[POSE_GMAX];        /* poses assigned to each component         */
} pose_mixture;

typedef struct pose_data {
    pose_config cfg;
    pose_camera cam[POSE_C];
    pose_model model;      /* the generic PPCA shape model                  */
    pose_mixture mix;      /* the generic mixture (same population)         */
    int ntrain, ntest;
    pose_frame *train;     /* [ntrain] frames of the training subjects      */
    pose_frame *test;      /* [ntest] frames of the held-out subjects        */
    double noise_px[POSE_J];   /* 2-D noise sd of each joint                 */
    double outlier_p[POSE_J];  /* outlier probability of each joint          */
} pose_data;

/* Generates everything from cfg (a pure function of it). 0 ok, -1 bad
   configuration or out of memory (message in msg). */
int pose_data_create(pose_data *d, const pose_config *cfg, char *msg,
                     size_t len);
void pose_data_free(pose_data *d);
/* The fraction of missing observations, and of gross outliers among the
   rest, over all frames. */
void pose_data_rates(const pose_data *d, double *missing, double *outliers);
/* "S1", "S5", ... for subject index s (train first, then test). */
const char *pose_subject_name(int s);

/* ---- the energy --------------------------------------------------------- */

typedef struct pose_problem {
    const pose_model *model;
    const pose_camera *cam;  /* [POSE_C] */
    const pose_frame *frame;
} pose_problem;

/* n = K + 4 */
int pose_n(const pose_model *m);

/* A shape model in the form the energy uses: P = mean + W z, W[POSE_D*K]
   (column k at [k*POSE_D], not necessarily orthogonal). A PPCA model is
   W = basis diag(sd). */
typedef struct pose_shape {
    int K;
    const double *mean; /* [POSE_D] */
    const double *W;    /* [POSE_D * K] */
} pose_shape;

/* The energy of frame fr under shape sh at x[K+4] and w (its first POSE_P
   entries): any output may be NULL. v[K+4] with bv[POSE_P] = B'v over the
   energy weights and dsh[POSE_D*(K+1)] = d(v' grad_x E)/d(mean, W) (mean
   first, then W's columns). Returns 0 (1 when a joint lies behind a camera
   and e was not asked for; then e = +inf when it was). */
int pose_shape_energy_eval(const pose_camera *cam, const pose_frame *fr, const pose_shape *sh,
                           const double *x, const double *w, double *e, double *g, double *H,
                           const double *v, double *bv, double *dsh);
/* dE/dw at fixed x: ew[POSE_P] over the energy weights and
   esh[POSE_D*(K+1)] over the mean and W (laid out as dsh). At a minimizer
   x*(w) this is the derivative of the minimum E(x*(w); w) (the envelope
   theorem: grad_x E = 0 there). e may be NULL. Returns as above. */
int pose_shape_energy_dw(const pose_camera *cam, const pose_frame *fr, const pose_shape *sh,
                         const double *x, const double *w, double *e, double *ew, double *esh);
/* World joints [POSE_D] of x under sh. */
void pose_shape_predict(const pose_shape *sh, const double *x, double *joints);
/* The smooth MPJPE of x under sh; dl_dx[K+4] and dl_dsh[POSE_D*(K+1)] (the
   direct derivative in the mean and W, laid out as dsh above) when not
   NULL. */
double pose_shape_loss(const pose_shape *sh, const pose_frame *fr, const double *x,
                       double *dl_dx, double *dl_dsh);
/* pose_starts for a shape (w: its first POSE_P entries; NULL: default). */
int pose_shape_starts(const pose_camera *cam, const pose_frame *fr, const pose_shape *sh,
                      const double *w, int sweep, int nstarts, double *x0);

/* The energy of one frame: value_grad, hess (exact), mixed and mixed_vjp
   (exact), all analytic. */
wb_energy pose_energy(const pose_problem *pb);

/* The untrained parameters: w_j = 1, kappa = 1, h = 3 (9 px). */
void pose_w_default(double *w);
/* Trainer bounds: w_j >= 1e-3, kappa >= 1e-3, 0.05 <= h <= 100. */
void pose_w_bounds(double *lower, double *upper);

/* World joint positions [POSE_D] of x. */
void pose_predict(const pose_model *m, const double *x, double *joints);

/* Smooth MPJPE (mm): mean_j sqrt(|d_j|^2 + eps^2) - eps, d_j the root-
   relative error of joint j; dl_dx[n] when not NULL. */
double pose_loss(const pose_problem *pb, const double *x, double *dl_dx);

/* Start points: translation triangulated from the 2-D joints (median over
   joints), z = 0, and the yaws of a sweep of `sweep` angles ranked by the
   energy at w (w NULL: pose_w_default). Writes the best nstarts of them
   into x0[nstarts*n]. Returns the number written. */
int pose_starts(const pose_problem *pb, const double *w, int sweep,
                int nstarts, double *x0);

/* ---- data sets and training ---------------------------------------------- */

typedef struct pose_set {
    pose_problem *pb;
    int count;
} pose_set;

/* Binds the frames to the model and cameras (pb allocated). 0 ok. */
int pose_set_init(pose_set *s, const pose_model *m, const pose_camera *cam,
                  const pose_frame *frames, int count);
void pose_set_free(pose_set *s);

/* A wb_dataset over s: energy, start (the best of a 12-yaw sweep at the
   untrained w: the start callback does not see w), loss (smooth MPJPE). */
wb_dataset pose_dataset(pose_set *s);

/* Wall-clock seconds (timespec_get). */
double pose_now_s(void);

/* The inner solver's settings used throughout the example. */
void pose_solver_settings(wb_settings *s);

typedef struct pose_eval {
    double mpjpe, pa_mpjpe;        /* mean over the frames (mm)            */
    double joint_err[POSE_J];      /* mean per joint (mm)                  */
    int failed;                    /* frames whose every start failed     */
    int other_start;               /* frames won by a start other than the
                                      sweep's best                         */
    int unconverged;               /* solves that stopped on a positive
                                      status (their best point is used)    */
    char first_error[200];         /* the first failed solve, "" if none  */
    long long solves;              /* inner solves made                   */
    double seconds;
} pose_eval;

/* Solves every frame of s at w from the nstarts best yaws of a 12-angle
   sweep, keeps the lowest energy, and measures the errors. pred[count*
   POSE_D] (may be NULL) receives the reconstructions (NaN for a failed
   frame). threads 0: all. 0 ok,
   else a wb_status (message in msg). */
int pose_evaluate(const pose_set *s, const double *w, int nstarts,
                  int threads, pose_eval *out, double *pred, char *msg,
                  size_t len);
/* The program's note on stderr of an evaluation's failures: failed held-out
   frames (with first_error), or else a start that failed (first_error not
   ""); nothing if neither. */
void pose_report_failures(const char *name, int failed, const char *first_error);

typedef struct pose_train_opts {
    double lambda;     /* implicit-derivative damping                      */
    double lr;         /* Adam learning rate                               */
    int epochs, batch, threads;
    unsigned long long seed;
    const unsigned char *learn; /* [POSE_P] 1 = learn, 0 = frozen at w0;
                                   NULL: all                               */
} pose_train_opts;

void pose_train_opts_default(pose_train_opts *o);

typedef struct pose_train_result {
    double seconds;
    long long inner_solves, skipped, steps;
    double final_loss;         /* mean training loss of the last epoch     */
} pose_train_result;

/* Trains w (in: w0, out: learned) on s. trace (may be NULL) receives w after
   every step, [(max_steps + 1) * POSE_P] with row 0 = w0; *trace_rows the
   rows written. 0 ok, else a wb_status (message in msg). */
int pose_train(const pose_set *s, double *w, const pose_train_opts *o,
               pose_train_result *res, double *trace, int max_steps,
               int *trace_rows, char *msg, size_t len);

/* Steps a training run will take. */
int pose_train_steps(int count, const pose_train_opts *o);

/* ---- the mixture of PPCA models (pose_mix.c) ------------------------------ */

/* Fits a mixture of G PPCA models with K bases each to count poses
   [count*POSE_D]: k-means (k-means++ seeding from seed), then the PPCA
   maximum-likelihood fit of each cluster (Tipping & Bishop: sigma^2 the mean
   discarded eigenvalue, W = U_K (L_K - sigma^2 I)^1/2). 0 ok, -1 bad
   arguments, an under-populated cluster or out of memory (msg). */
int pose_mix_fit(const double *poses, int count, int G, int K, unsigned long long seed,
                 pose_mixture *mx, char *msg, size_t len);

/* Parameters of the mixture energy: w = [w_j (17), kappa, h, then per
   component g: mean (POSE_D), W (POSE_D*K)]. */
int pose_mix_p(int G, int K);
int pose_mix_offset(int K, int g);              /* index of component g's mean */
void pose_mix_pack(const pose_mixture *mx, const double *wglob, double *w);
pose_shape pose_mix_shape(int K, int g, const double *w); /* views into w */

/* One frame under component g. */
typedef struct pose_mix_problem {
    const pose_camera *cam; /* [POSE_C] */
    const pose_frame *frame;
    int G, K, g;
} pose_mix_problem;

/* value_grad, hess (exact) and mixed_vjp (exact, over all p parameters;
   zero outside the energy weights and component g's block). */
wb_energy pose_mix_energy(const pose_mix_problem *mp);

typedef struct pose_mix_eval {
    double mpjpe, pa_mpjpe;            /* mean over the frames (mm)         */
    double action_mpjpe[POSE_REAL_ACTIONS]; /* per action (NAN: no frame)  */
    double action_pa[POSE_REAL_ACTIONS];
    int action_frames[POSE_REAL_ACTIONS];
    int component_frames[POSE_GMAX];   /* frames won by each component     */
    int failed;                        /* frames whose every solve failed  */
    int unconverged;                   /* solves that stopped on a positive
                                          status (their best point is used) */
    char first_error[240];
    long long solves;
    double seconds;
} pose_mix_eval;

/* Solves every frame under every component from the nstarts best yaws of a
   12-angle sweep, keeps the lowest energy, measures MPJPE and PA-MPJPE
   overall and per action. pred[count*POSE_D] may be NULL. 0 ok, else a
   wb_status (msg). */
int pose_mix_evaluate(const pose_camera *cam, const pose_frame *frames, int count, int G, int K,
                      const double *w, int nstarts, int threads, pose_mix_eval *out,
                      double *pred, char *msg, size_t len);

enum { /* parameter groups (pose_mix_opts.learn) */
    POSE_LEARN_WEIGHTS = 1, /* w_j, kappa, h                                */
    POSE_LEARN_MEAN = 2,    /* every component's mean pose                 */
    POSE_LEARN_BASIS = 4,   /* every component's basis W                    */
    POSE_LEARN_ALL = 7
};

typedef struct pose_mix_opts {
    double lambda;     /* implicit-derivative damping                        */
    double lr;         /* Adam rate of the energy weights (cosine to lr/10)  */
    double lr_shape;   /* Adam rate of the mean and basis entries (mm)       */
    int epochs, batch, threads;
    unsigned long long seed;
    unsigned learn;    /* POSE_LEARN_* bits                                  */
    int starts;        /* sweep starts per component in training (besides
                          the component's last minimizer)                   */
    double soft_t;     /* 0: the loss at the hard minimum over components;
                          T > 0: sum_g pi_g L_g, pi = softmax(-E*_g/T) over
                          the components' minima (pose_mix.c)               */
    double *trace;     /* optional: the POSE_P energy weights after every
                          step, [(trace_max) * POSE_P], row 0 = the start   */
    int trace_max;     /* rows trace holds                                  */
} pose_mix_opts;

void pose_mix_opts_default(pose_mix_opts *o);
/* The gradient gb[pose_mix_p(G, K)] of one frame's loss (*loss) from the
   components' minimizers xg[G*(K+4)] and minima eg[G] (INFINITY: none) and
   the winner gbest, with the solver sv (its lambda): T = 0 the hard
   minimum's, T > 0 the soft minimum's (pose_mix_opts.soft_t). iv[p] is
   scratch. Returns 1, 0 when a derivative failed, -1 when it was refused
   (WB_ESINGULAR); *curv the smallest curvature of H + lambda I met. */
int pose_mix_frame_grad(wb_solver *sv, const pose_camera *cam, const pose_frame *fr, int G,
                        int K, const double *w, double T, const double *xg, const double *eg,
                        int gbest, double *gb, double *iv, double *loss, double *curv);
int pose_mix_train_steps(int count, const pose_mix_opts *o);
/* Parameters in the groups of learn. */
int pose_mix_learned_count(int G, int K, unsigned learn);

typedef struct pose_mix_result {
    double seconds;
    long long inner_solves, steps;
    long long skipped;   /* examples whose every solve failed                 */
    long long refused;   /* examples whose derivative was refused
                            (WB_ESINGULAR: H + lambda I not positive definite
                            or too ill-conditioned)                          */
    long long unconverged;
    double final_loss;   /* mean training loss of the last epoch (mm)        */
    int trace_rows;      /* rows written to opts.trace                        */
    /* the smallest curvature of H + lambda I at the derivatives taken
       (wb_deriv_info.min_curvature, within sqrt(n) of the smallest
       eigenvalue): its minimum and the sum of its logs over curv_n */
    double min_curvature, curv_logsum;
    long long curv_n;
} pose_mix_result;

/* Trains w[pose_mix_p(G, K)] (in: the start, out: learned) on the frames:
   Adam on the mean loss of a batch, dL/dw = dL/dw|_x - B'(H + lambda I)^-1
   dL/dx at each frame's winning component and minimizer. Results do not
   depend on the thread count. 0 ok, else a wb_status (msg). */
int pose_mix_train(const pose_camera *cam, const pose_frame *frames, int count, int G, int K,
                   double *w, const pose_mix_opts *o, pose_mix_result *res, char *msg,
                   size_t len);

/* ---- real-format input (pose_io.c; layout in README.md, "Real data") ---- */

typedef struct pose_real {
    pose_camera cam[POSE_C];
    int count;            /* frames: one per (subject, action, frame) key  */
    pose_frame *frames;   /* sorted by subject, action, frame; subject 0 ..
                             6 = S1 S5 S6 S7 S8 S9 S11, action an index into
                             action_name, index = the frame number; gt NaN
                             where there is no truth                       */
    int with_truth;       /* frames with 3-D truth (gt, canon, yaw set)     */
    int nactions;
    char action_name[POSE_REAL_ACTIONS][32];
} pose_real;

/* Reads cameras.csv, detections.csv and (truth may be NULL) truth.csv. A
   detection with confidence < min_conf is a missing joint. 0 ok; -1 with
   "file:line: what" in msg (nothing to free). */
int pose_read_csv(const char *cameras, const char *detections, const char *truth,
                  double min_conf, pose_real *out, char *msg, size_t len);
void pose_real_free(pose_real *r);
/* Writes frames in that layout (frame number = sequence * 100000 + index,
   confidence 0.9 for a visible joint and 0 for a missing one); truth may
   be NULL. 0 ok, -1 on an I/O error (errno). */
int pose_write_csv(const char *cameras, const char *detections, const char *truth,
                   const pose_camera *cam, const pose_frame *frames, int count,
                   const char *const *action_names);

/* The experiment of the binary's default mode (pose_mixrun.c). */
typedef struct pose_mix_run_opts {
    pose_config cfg;
    pose_mix_opts train;
    int starts;          /* yaw starts per component in evaluation         */
    double prior_weight; /* kappa before training (1)                       */
    int ablate;          /* lambda sweep and parameter groups              */
    const char *json;    /* NULL: none                                      */
    const char *svg_dir; /* NULL: none (must exist)                         */
    const char *data_dir;/* NULL: synthetic; else DIR/cameras.csv,
                            DIR/detections.csv, DIR/truth.csv (pose_io.c):
                            S1 S5 S6 S7 S8 train, S9 S11 held out          */
    double min_conf;     /* detections below it are missing (0.1)          */
    const char *write_dir; /* NULL: none; else the synthetic frames are
                            written there in that layout first            */
} pose_mix_run_opts;

void pose_mix_run_opts_default(pose_mix_run_opts *o);
/* Runs and prints it; 0 ok, 1 failed (message on stderr). */
int pose_mix_run(const pose_mix_run_opts *o);

/* ---- pictures ------------------------------------------------------------ */

/* Front and side views of one frame: ground truth, untrained, trained. */
int pose_svg_skeleton(const char *path, const pose_frame *f,
                      const double *untrained, const double *trained);
/* Per-joint error bars, untrained vs trained. */
int pose_svg_joint_error(const char *path, const double *untrained,
                         const double *trained);
/* Parameters over training steps: trace[rows*POSE_P]. */
int pose_svg_weights(const char *path, const double *trace, int rows);
/* All three into dir (pose_skeleton.svg of the frame that training improved
   most, pose_joint_error.svg from the per-frame errors, pose_weights.svg):
   pred_u, pred_t [count*POSE_D] (NaN rows: failed frames). 0 ok, -1 with the
   failed path in path (errno set). */
int pose_svg_all(const char *dir, const pose_frame *frames, int count, const double *pred_u,
                 const double *pred_t, const double *trace, int rows, char *path,
                 size_t plen);
/* pose_svg_all for the program's --plot DIR: says on stdout what it wrote
   (0), or on stderr which file it could not write and why (-1). */
int pose_svg_write(const char *dir, const pose_frame *frames, int count, const double *pred_u,
                   const double *pred_t, const double *trace, int rows);
/* The program's word on a file it wrote (rc: the writer's return, errno set
   on failure): "wrote PATH" on stdout for rc 0, else "pose: cannot write
   PATH: <reason>" on stderr. Returns rc. */
int pose_report_written(int rc, const char *path);

#endif
