/* pose: learn a multi-view pose-lifting energy.
 *
 * A synthetic version of the multi-view experiment of Wibergian learning
 * (Toso et al. 2019, on Human3.6M): 4 calibrated cameras, noisy 2-D joints
 * with outliers and missing joints. Per frame the pose (shape coefficients,
 * yaw, translation) minimizes a robust reprojection energy. By default the
 * shape model is a mixture of PPCA models (pose_mixrun.c: the energy
 * weights, mean poses and bases are learned); --model ppca runs the single
 * PPCA experiment below (the per-joint weights, the prior weight and the
 * robust width learned with libwiberg's trainer). Judged on held-out
 * subjects. Run with --help for the flags.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "pose.h"
#include "../wb_mpi_example.h" /* -DWIBERG_MPI=ON: mpirun -np N pose */

typedef struct {
    pose_config cfg;
    pose_train_opts train;
    int starts;
    int ablate;
    const char *json;
    const char *svg_dir;
    int single;          /* --model ppca: the single-PPCA weights experiment */
    double lr_shape;     /* mixture: Adam rate of the mean and basis (mm)    */
    double prior_weight; /* mixture: kappa before training                   */
    const char *data_dir; /* mixture: real-format input (pose_io.c)          */
    const char *write_dir;
    double soft_t;       /* mixture: soft-minimum temperature (0: hard)      */
    double min_conf;
} options;

typedef struct {
    char name[64];
    char group[16];
    double lambda;        /* NAN: not a training run */
    double mpjpe, pa;
    double seconds;       /* training or search time (NAN: none) */
    long long solves;     /* inner solves of training or search (-1: none) */
    long long skipped;    /* -1: none */
} row_t;

static void usage(FILE *f) {
    fprintf(f,
        "usage: pose [options]\n"
        "Learns a multi-view pose-lifting energy (synthetic Human3.6M-like data: 4\n"
        "actions, subjects S1 S5 S6 S7 S8 for training, S9 S11 held out) and reports\n"
        "MPJPE / Procrustes-aligned MPJPE (mm) on the held-out subjects, overall and\n"
        "per action. Default model: a mixture of PPCA shape models with an unknown\n"
        "yaw, whose energy weights, mean poses and bases are learned, against the\n"
        "mixture re-fitted by maximum likelihood on the training poses.\n\n"
        "model\n"
        "  --model M           mix (default): the PPCA mixture; ppca: one PPCA model,\n"
        "                      only the energy weights learned (the earlier experiment)\n"
        "  --components G      mixture components, 1..6 (3)\n"
        "  --mix-basis K       bases of each component, 1..25 (6)\n"
        "  --basis K           ppca: bases of the single model, 1..25 (25)\n"
        "data\n"
        "  --data DIR          mix: real-format input instead of the synthetic world:\n"
        "                      DIR/cameras.csv, DIR/detections.csv, DIR/truth.csv\n"
        "                      (layout in README.md); S1 S5 S6 S7 S8 train, S9 S11 held out\n"
        "  --min-conf X        with --data: detections below X are missing (0.1)\n"
        "  --write-csv DIR     mix: write the synthetic frames into DIR (which must\n"
        "                      exist) in that layout, then run\n"
        "  --seed N            seed of the data and of the shuffling (1)\n"
        "  --cameras N         cameras that see the subject (the first N of 4; 1 =\n"
        "                      monocular), 1..4 (4)\n"
        "  --actions N         actions each subject performs (Walking, Sitting,\n"
        "                      Greeting, Phoning), 1..4 (4)\n"
        "  --train-subjects N  training subjects S1 S5 S6 S7 S8, 1..5 (5)\n"
        "  --test-subjects N   held-out subjects S9 S11, 1..2 (2)\n"
        "  --sequences N       sequences per subject and action (1)\n"
        "  --frames N          frames per sequence (8)\n"
        "  --noise-min PX      2-D noise sd of the best joints, pixels (2)\n"
        "  --noise-max PX      2-D noise sd of the worst joints, pixels (5)\n"
        "  --outliers F        mean fraction of gross 2-D outliers (0.07)\n"
        "  --missing F         fraction of missing 2-D joints (0.05)\n"
        "  --bone-sd X         log-sd of each subject's bone lengths (0.04)\n"
        "  --height-spread X   subject heights are 1 +- X times the model's (0.05)\n"
        "training\n"
        "  --epochs N          epochs (mix 8, ppca 12)\n"
        "  --batch N           frames per step (8)\n"
        "  --lr X              Adam learning rate of the energy weights, cosine-decayed\n"
        "                      to lr/10 (0.05)\n"
        "  --soft-min T        mix: train on the soft minimum over the components'\n"
        "                      minima, weights softmax(-E/T); 0 = the hard minimum (0)\n"
        "  --prior-weight X    mix: the prior weight kappa before training, >= 1e-3 (1)\n"
        "  --lr-shape X        mix: Adam rate of the mean and basis entries, mm (1)\n"
        "  --lambda X          damping of the implicit derivative, >= 0 (0.01)\n"
        "  --threads N         worker threads, 0 = all cores (0)\n"
        "evaluation and output\n"
        "  --starts S          yaw starts solved per held-out frame (and component),\n"
        "                      best energy kept, 1..8 (4)\n"
        "  --ablate            also run the ablations: mix: lambda sweep (0, 1e-6 .. 1)\n"
        "                      with refused and skipped derivatives, parameter groups,\n"
        "                      the ML refit trained; ppca: lambda sweep, one parameter\n"
        "                      group at a time, grid search with an equal budget of\n"
        "                      inner solves, PCA basis re-fitted to the training poses\n"
        "  --json FILE         write the results as JSON\n"
        "  --plot DIR          SVG figures into DIR: pose_skeleton.svg,\n"
        "                      pose_joint_error.svg, pose_weights.svg (none\n"
        "                      without it)\n"
        "  --help              this text\n");
}

static int parse_int(const char *s, int lo, int hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

static int parse_double(const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !(v >= lo && v <= hi)) return -1;
    *out = v;
    return 0;
}

static int takes_value(const char *a) {
    static const char *const FLAGS[] = {
        "--seed", "--basis", "--model", "--components", "--mix-basis", "--actions",
        "--lr-shape", "--cameras", "--prior-weight", "--data", "--min-conf", "--write-csv", "--soft-min", "--train-subjects", "--test-subjects", "--sequences",
        "--frames", "--noise-min", "--noise-max", "--outliers", "--missing", "--bone-sd",
        "--height-spread", "--epochs", "--batch", "--lr", "--lambda", "--threads",
        "--starts", "--json", "--plot"};
    for (size_t i = 0; i < sizeof FLAGS / sizeof FLAGS[0]; i++)
        if (!strcmp(a, FLAGS[i])) return 1;
    return 0;
}

/* 0 ok, 1 --help, 2 bad usage */
static int parse(int argc, char **argv, options *o) {
    pose_config_default(&o->cfg);
    pose_train_opts_default(&o->train);
    o->starts = 4;
    o->ablate = 0;
    o->json = NULL;
    o->svg_dir = NULL;
    o->single = 0;
    o->lr_shape = 1.0;
    o->prior_weight = 1.0;
    o->data_dir = NULL;
    o->write_dir = NULL;
    o->soft_t = 0.0;
    o->min_conf = 0.1;
    int epochs_set = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0, used = 1;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return 1;
        else if (!strcmp(a, "--ablate")) { o->ablate = 1; used = 0; }
        else if (!takes_value(a)) {
            fprintf(stderr, "pose: unknown flag %s (see --help)\n", a);
            return 2;
        } else if (!v) {
            fprintf(stderr, "pose: %s needs a value (see --help)\n", a);
            return 2;
        } else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            bad = errno || *end || end == v || v[0] == '-';
            o->cfg.seed = o->train.seed = s;
        }
        else if (!strcmp(a, "--basis")) bad = parse_int(v, 1, POSE_KMAX, &o->cfg.basis);
        else if (!strcmp(a, "--model")) {
            bad = strcmp(v, "mix") && strcmp(v, "ppca");
            o->single = !strcmp(v, "ppca");
        }
        else if (!strcmp(a, "--components"))
            bad = parse_int(v, 1, POSE_GMAX, &o->cfg.mix_components);
        else if (!strcmp(a, "--mix-basis")) bad = parse_int(v, 1, POSE_MKMAX, &o->cfg.mix_basis);
        else if (!strcmp(a, "--data")) o->data_dir = v;
        else if (!strcmp(a, "--write-csv")) o->write_dir = v;
        else if (!strcmp(a, "--soft-min")) bad = parse_double(v, 0, 1e9, &o->soft_t);
        else if (!strcmp(a, "--min-conf")) bad = parse_double(v, 0, 1, &o->min_conf);
        else if (!strcmp(a, "--prior-weight"))
            bad = parse_double(v, 1e-3, 1e6, &o->prior_weight);
        else if (!strcmp(a, "--cameras")) bad = parse_int(v, 1, POSE_C, &o->cfg.cameras);
        else if (!strcmp(a, "--actions")) bad = parse_int(v, 1, POSE_ACTIONS, &o->cfg.actions);
        else if (!strcmp(a, "--lr-shape")) bad = parse_double(v, 1e-12, 1e6, &o->lr_shape);
        else if (!strcmp(a, "--train-subjects")) bad = parse_int(v, 1, 5, &o->cfg.train_subjects);
        else if (!strcmp(a, "--test-subjects")) bad = parse_int(v, 1, 2, &o->cfg.test_subjects);
        else if (!strcmp(a, "--sequences")) bad = parse_int(v, 1, 1000, &o->cfg.sequences);
        else if (!strcmp(a, "--frames")) bad = parse_int(v, 1, 100000, &o->cfg.frames);
        else if (!strcmp(a, "--noise-min")) bad = parse_double(v, 0, 1000, &o->cfg.noise_min_px);
        else if (!strcmp(a, "--noise-max")) bad = parse_double(v, 0, 1000, &o->cfg.noise_max_px);
        else if (!strcmp(a, "--outliers")) bad = parse_double(v, 0, 0.5, &o->cfg.outlier_rate);
        else if (!strcmp(a, "--missing")) bad = parse_double(v, 0, 0.5, &o->cfg.missing_rate);
        else if (!strcmp(a, "--bone-sd")) bad = parse_double(v, 0, 0.5, &o->cfg.bone_sd);
        else if (!strcmp(a, "--height-spread")) bad = parse_double(v, 0, 0.5, &o->cfg.height_spread);
        else if (!strcmp(a, "--epochs")) {
            bad = parse_int(v, 1, 100000, &o->train.epochs);
            epochs_set = 1;
        }
        else if (!strcmp(a, "--batch")) bad = parse_int(v, 1, 100000, &o->train.batch);
        else if (!strcmp(a, "--lr")) bad = parse_double(v, 1e-12, 1e6, &o->train.lr);
        else if (!strcmp(a, "--lambda")) bad = parse_double(v, 0, 1e12, &o->train.lambda);
        else if (!strcmp(a, "--threads")) bad = parse_int(v, 0, 1024, &o->train.threads);
        else if (!strcmp(a, "--starts")) bad = parse_int(v, 1, 8, &o->starts);
        else if (!strcmp(a, "--json")) o->json = v;
        else if (!strcmp(a, "--plot")) o->svg_dir = v;
        else {
            fprintf(stderr, "pose: unknown flag %s (see --help)\n", a);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "pose: bad value '%s' for %s (see --help)\n", v, a);
            return 2;
        }
        i += used;
    }
    if (!o->single && !epochs_set) o->train.epochs = 8;
    if (o->cfg.noise_max_px < o->cfg.noise_min_px) {
        fprintf(stderr, "pose: --noise-max must be >= --noise-min\n");
        return 2;
    }
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void print_row(const row_t *r) {
    char sec[32] = "-", sol[32] = "-", sk[32] = "-";
    if (isfinite(r->seconds)) snprintf(sec, sizeof sec, "%.2f", r->seconds);
    if (r->solves >= 0) snprintf(sol, sizeof sol, "%lld", r->solves);
    if (r->skipped >= 0) snprintf(sk, sizeof sk, "%lld", r->skipped);
    printf("%-38s %8.2f %9.2f %8s %7s %8s\n", r->name, r->mpjpe, r->pa, sec, sol, sk);
}

static void print_header(void) {
    printf("%-38s %8s %9s %8s %7s %8s\n", "method (held-out subjects)", "MPJPE", "PA-MPJPE",
           "train s", "solves", "skipped");
    printf("%-38s %8s %9s %8s %7s %8s\n", "", "mm", "mm", "", "", "");
}

static void json_num(FILE *f, const char *key, double v, int comma) {
    if (isfinite(v)) fprintf(f, "\"%s\": %.6g%s", key, v, comma ? ", " : "");
    else fprintf(f, "\"%s\": null%s", key, comma ? ", " : "");
}

static int write_json(const char *path, const row_t *untrained, const row_t *trained,
                      const row_t *rows, int nrows, const double *w) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "{");
    json_num(f, "untrained_mpjpe_mm", untrained->mpjpe, 1);
    json_num(f, "trained_mpjpe_mm", trained->mpjpe, 1);
    json_num(f, "untrained_pa_mpjpe_mm", untrained->pa, 1);
    json_num(f, "trained_pa_mpjpe_mm", trained->pa, 1);
    json_num(f, "train_seconds", trained->seconds, 1);
    fprintf(f, "\"trained_w\": {\"joint_weights\": [");
    for (int j = 0; j < POSE_J; j++) fprintf(f, "%s%.6g", j ? ", " : "", w[j]);
    fprintf(f, "], \"prior_weight\": %.6g, \"robust_width\": %.6g}, ", w[POSE_W_PRIOR],
            w[POSE_W_WIDTH]);
    fprintf(f, "\"ablations\": [");
    for (int i = 0; i < nrows; i++) {
        const row_t *r = &rows[i];
        fprintf(f, "%s\n  {\"name\": \"%s\", \"group\": \"%s\", ", i ? "," : "", r->name,
                r->group);
        json_num(f, "lambda", r->lambda, 1);
        json_num(f, "mpjpe_mm", r->mpjpe, 1);
        json_num(f, "pa_mpjpe_mm", r->pa, 1);
        json_num(f, "seconds", r->seconds, 1);
        if (r->solves >= 0) fprintf(f, "\"inner_solves\": %lld, ", r->solves);
        else fprintf(f, "\"inner_solves\": null, ");
        if (r->skipped >= 0) fprintf(f, "\"skipped\": %lld}", r->skipped);
        else fprintf(f, "\"skipped\": null}");
    }
    fprintf(f, "%s]}\n", nrows ? "\n" : "");
    int bad = ferror(f);
    return (fclose(f) != 0 || bad) ? -1 : 0;
}

/* Failed frames (every start failed) and unconverged solves, on stderr. */
static void report_eval(const char *name, const pose_eval *ev) {
    pose_report_failures(name, ev->failed, ev->first_error);
    if (ev->unconverged)
        fprintf(stderr, "pose: %s: %d of %lld solves stopped before their tolerance\n", name,
                ev->unconverged, ev->solves);
}

/* A training run on train, judged on test; fills r. 0 ok. */
static int train_row(const char *name, const char *group, const pose_set *train,
                     const pose_set *test, const options *o, double lambda,
                     const unsigned char *learn, double *w, row_t *r, double *trace,
                     int max_steps, int *rows) {
    char msg[512];
    pose_train_opts to = o->train;
    to.lambda = lambda;
    to.learn = learn;
    pose_train_result res;
    pose_w_default(w);
    int st = pose_train(train, w, &to, &res, trace, max_steps, rows, msg, sizeof msg);
    if (st != WB_OK) {
        fprintf(stderr, "pose: training '%s' failed: %s\n", name, msg);
        return st;
    }
    pose_eval ev;
    st = pose_evaluate(test, w, o->starts, o->train.threads, &ev, NULL, msg, sizeof msg);
    if (st != WB_OK) {
        fprintf(stderr, "pose: evaluating '%s' failed: %s\n", name, msg);
        return st;
    }
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->group, sizeof r->group, "%s", group);
    r->lambda = lambda;
    r->mpjpe = ev.mpjpe;
    r->pa = ev.pa_mpjpe;
    r->seconds = res.seconds;
    r->solves = res.inner_solves;
    r->skipped = res.skipped;
    report_eval(name, &ev);
    return 0;
}

static int eval_row(const char *name, const char *group, const pose_set *test,
                    const options *o, const double *w, row_t *r) {
    char msg[512];
    pose_eval ev;
    int st = pose_evaluate(test, w, o->starts, o->train.threads, &ev, NULL, msg, sizeof msg);
    if (st != WB_OK) {
        fprintf(stderr, "pose: evaluating '%s' failed: %s\n", name, msg);
        return st;
    }
    report_eval(name, &ev);
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->group, sizeof r->group, "%s", group);
    r->lambda = NAN;
    r->mpjpe = ev.mpjpe;
    r->pa = ev.pa_mpjpe;
    r->seconds = NAN;
    r->solves = -1;
    r->skipped = -1;
    return 0;
}

/* Grid search over (kappa, h) with shared joint weights, scored by the mean
   training loss (one solve per training frame, like a training epoch), with
   at most `budget` inner solves. */
static int grid_search(const pose_set *train, const pose_set *test, const options *o,
                       long long budget, row_t *r, double *wbest) {
    char msg[512];
    int G = (int)(budget / train->count);
    if (G < 1) G = 1;
    int gk = (int)floor(sqrt((double)G));
    if (gk < 1) gk = 1;
    int gh = G / gk;
    wb_dataset d = pose_dataset((pose_set *)train);
    wb_train_settings ts;
    wb_train_settings_default(&ts);
    pose_solver_settings(&ts.solver);
    ts.threads = o->train.threads;
    double w[POSE_P];
    pose_w_default(w);
    wb_trainer *t = NULL;
    wb_status st = wb_trainer_create(&t, &d, w, &ts);
    if (st != WB_OK) {
        fprintf(stderr, "pose: grid search: wb_trainer_create: %s\n", wb_status_str(st));
        return st;
    }
    double t0 = now_s(), best = INFINITY;
    long long solves = 0;
    memcpy(wbest, w, sizeof w);
    for (int a = 0; a < gk; a++)
        for (int b = 0; b < gh; b++) {
            /* two decades around the untrained values, log-spaced: kappa in
               [0.1, 10], h in [0.3, 30] (0.9 .. 90 px) */
            w[POSE_W_PRIOR] = gk > 1 ? 0.1 * pow(100.0, (double)a / (gk - 1)) : 1.0;
            w[POSE_W_WIDTH] = gh > 1 ? 0.3 * pow(100.0, (double)b / (gh - 1)) : 3.0;
            double mean;
            int failed;
            st = wb_trainer_evaluate(t, &d, w, &mean, &failed, NULL);
            if (st != WB_OK) {
                fprintf(stderr, "pose: grid search: wb_trainer_evaluate: %s\n",
                        wb_trainer_message(t));
                wb_trainer_destroy(t);
                return st;
            }
            solves += train->count;
            if (failed == 0 && mean < best) {
                best = mean;
                memcpy(wbest, w, sizeof w);
            }
        }
    double secs = now_s() - t0;
    wb_trainer_destroy(t);
    pose_eval ev;
    st = pose_evaluate(test, wbest, o->starts, o->train.threads, &ev, NULL, msg, sizeof msg);
    if (st != WB_OK) {
        fprintf(stderr, "pose: grid search: %s\n", msg);
        return st;
    }
    report_eval("grid search", &ev);
    snprintf(r->name, sizeof r->name, "grid %dx%d kappa,h (equal budget)", gk, gh);
    snprintf(r->group, sizeof r->group, "grid");
    r->lambda = NAN;
    r->mpjpe = ev.mpjpe;
    r->pa = ev.pa_mpjpe;
    r->seconds = secs;
    r->solves = solves;
    r->skipped = 0;
    return 0;
}

static int run(const options *o) {
    char msg[512];
    pose_data data;
    if (pose_data_create(&data, &o->cfg, msg, sizeof msg) != 0) {
        fprintf(stderr, "pose: %s\n", msg);
        return 1;
    }
    int rc = 1;
    pose_set train = {NULL, 0}, test = {NULL, 0}, rtrain = {NULL, 0}, rtest = {NULL, 0};
    double *trace = NULL, *pred_u = NULL, *pred_t = NULL;
    row_t rows[32];
    int nrows = 0;
    pose_model refit;
    if (pose_set_init(&train, &data.model, data.cam, data.train, data.ntrain) ||
        pose_set_init(&test, &data.model, data.cam, data.test, data.ntest)) {
        fprintf(stderr, "pose: out of memory\n");
        goto done;
    }
    /* the data */
    double miss, outl;
    pose_data_rates(&data, &miss, &outl);
    printf("pose: 17 joints, 4 cameras 90 deg apart; PPCA shape model with %d bases "
           "(%.2f%% of the kinematic model's variance)\n", data.model.K,
           100.0 * data.model.explained);
    printf("  train: ");
    for (int s = 0; s < o->cfg.train_subjects; s++) printf("%s ", pose_subject_name(s));
    printf("(%d frames)   held out: ", data.ntrain);
    for (int s = 0; s < o->cfg.test_subjects; s++) printf("%s ", pose_subject_name(5 + s));
    printf("(%d frames)\n", data.ntest);
    printf("  2-D: %g-%g px noise, %.1f%% missing, %.1f%% of the rest gross outliers; "
           "unknowns n = %d, parameters p = %d\n", o->cfg.noise_min_px, o->cfg.noise_max_px,
           100.0 * miss, 100.0 * outl,
           pose_n(&data.model), POSE_P);
    printf("  training: Adam lr %g (cosine), %d epochs, batch %d, lambda %g; evaluation: "
           "best of %d yaw starts\n\n", o->train.lr, o->train.epochs, o->train.batch,
           o->train.lambda, o->starts);
    fflush(stdout);

    /* untrained */
    double w0[POSE_P], w[POSE_P];
    pose_w_default(w0);
    pred_u = malloc((size_t)data.ntest * POSE_D * sizeof(double));
    pred_t = malloc((size_t)data.ntest * POSE_D * sizeof(double));
    int max_steps = pose_train_steps(data.ntrain, &o->train);
    trace = malloc((size_t)(max_steps + 1) * POSE_P * sizeof(double));
    if (!pred_u || !pred_t || !trace) {
        fprintf(stderr, "pose: out of memory\n");
        goto done;
    }
    pose_eval eu, et;
    int st = pose_evaluate(&test, w0, o->starts, o->train.threads, &eu, pred_u, msg, sizeof msg);
    if (st != WB_OK) {
        fprintf(stderr, "pose: evaluating the untrained energy failed: %s\n", msg);
        goto done;
    }
    row_t ru = {"untrained (w_j = 1, kappa = 1, h = 3)", "untrained", NAN, eu.mpjpe,
                eu.pa_mpjpe, NAN, -1, -1};
    /* trained */
    pose_train_result res;
    memcpy(w, w0, sizeof w);
    int trows = 0;
    st = pose_train(&train, w, &o->train, &res, trace, max_steps, &trows, msg, sizeof msg);
    if (st != WB_OK) {
        fprintf(stderr, "pose: training failed: %s\n", msg);
        goto done;
    }
    st = pose_evaluate(&test, w, o->starts, o->train.threads, &et, pred_t, msg, sizeof msg);
    if (st != WB_OK) {
        fprintf(stderr, "pose: evaluating the trained energy failed: %s\n", msg);
        goto done;
    }
    row_t rt = {"", "trained", o->train.lambda, et.mpjpe, et.pa_mpjpe, res.seconds,
                res.inner_solves, res.skipped};
    snprintf(rt.name, sizeof rt.name, "trained (all jointly, lambda %g)", o->train.lambda);
    report_eval("untrained", &eu);
    report_eval("trained", &et);
    print_header();
    print_row(&ru);
    print_row(&rt);
    printf("(held-out frames won by a yaw start other than the sweep's best: %d untrained, "
           "%d trained, of %d)\n", eu.other_start, et.other_start, data.ntest);
    printf("\nlearned w (untrained: all 1, kappa 1, h 3):\n");
    for (int j = 0; j < POSE_J; j++)
        printf("  %-10s %6.3f%s", pose_joint_name[j], w[j], j % 4 == 3 ? "\n" : "");
    printf("\n  kappa %.3f   h %.3f (%.1f px)   training loss %.2f mm (last epoch)\n",
           w[POSE_W_PRIOR], w[POSE_W_WIDTH], w[POSE_W_WIDTH] * POSE_PX, res.final_loss);
    fflush(stdout);

    if (o->ablate) {
        printf("\nablations\n");
        print_header();
        rows[nrows++] = ru;
        rows[nrows++] = rt;
        print_row(&ru);
        print_row(&rt);
        fflush(stdout);
        static const double LAMBDAS[5] = {0.0, 1e-3, 1e-2, 1e-1, 1.0};
        double wa[POSE_P];
        for (int k = 0; k < 5; k++) {
            row_t r;
            char name[64];
            snprintf(name, sizeof name, "lambda = %g", LAMBDAS[k]);
            if (LAMBDAS[k] == o->train.lambda) { /* the run above: deterministic */
                r = rt;
                snprintf(r.name, sizeof r.name, "%s", name);
                snprintf(r.group, sizeof r.group, "lambda");
            } else if (train_row(name, "lambda", &train, &test, o, LAMBDAS[k], NULL, wa, &r,
                                 NULL, 0, NULL) != 0)
                goto done;
            rows[nrows++] = r;
            print_row(&r);
            fflush(stdout);
        }
        static const char *const GROUPS[3] = {"joint weights only", "prior weight only",
                                              "robust width only"};
        for (int g = 0; g < 3; g++) {
            unsigned char learn[POSE_P];
            for (int j = 0; j < POSE_P; j++)
                learn[j] = g == 0 ? j < POSE_J : g == 1 ? j == POSE_W_PRIOR : j == POSE_W_WIDTH;
            row_t r;
            if (train_row(GROUPS[g], "groups", &train, &test, o, o->train.lambda, learn, wa, &r,
                          NULL, 0, NULL) != 0)
                goto done;
            rows[nrows++] = r;
            print_row(&r);
            fflush(stdout);
        }
        row_t r;
        if (grid_search(&train, &test, o, res.inner_solves, &r, wa) != 0) goto done;
        rows[nrows++] = r;
        print_row(&r);
        printf("%-38s (best kappa %.3g, h %.3g)\n", "", wa[POSE_W_PRIOR], wa[POSE_W_WIDTH]);
        fflush(stdout);
        /* the non-learned baseline: the PCA basis re-fitted to the training poses */
        double *canon = malloc((size_t)data.ntrain * POSE_D * sizeof(double));
        if (!canon) {
            fprintf(stderr, "pose: out of memory\n");
            goto done;
        }
        for (int i = 0; i < data.ntrain; i++)
            memcpy(canon + (size_t)i * POSE_D, data.train[i].canon, POSE_D * sizeof(double));
        int fit = pose_pca_fit(canon, data.ntrain, data.model.K, &refit);
        free(canon);
        if (fit != 0) {
            fprintf(stderr, "pose: re-fitting the PCA basis failed\n");
            goto done;
        }
        if (pose_set_init(&rtrain, &refit, data.cam, data.train, data.ntrain) ||
            pose_set_init(&rtest, &refit, data.cam, data.test, data.ntest)) {
            fprintf(stderr, "pose: out of memory\n");
            goto done;
        }
        if (eval_row("PCA re-fitted to training poses", "refit", &rtest, o, w0, &r) != 0)
            goto done;
        rows[nrows++] = r;
        print_row(&r);
        if (train_row("PCA re-fitted + trained", "refit", &rtrain, &rtest, o, o->train.lambda,
                      NULL, wa, &r, NULL, 0, NULL) != 0)
            goto done;
        rows[nrows++] = r;
        print_row(&r);
        fflush(stdout);
    }

    if (o->svg_dir && pose_svg_write(o->svg_dir, data.test, data.ntest, pred_u, pred_t, trace,
                                     trows) != 0)
        goto done;
    if (o->json && pose_report_written(write_json(o->json, &ru, &rt, rows, nrows, w), o->json))
        goto done;
    rc = 0;
done:
    free(trace);
    free(pred_u);
    free(pred_t);
    pose_set_free(&train);
    pose_set_free(&test);
    pose_set_free(&rtrain);
    pose_set_free(&rtest);
    pose_data_free(&data);
    return rc;
}

/* Every frame's linear algebra is small (n = K + 4 <= 29) and the trainer
   already runs a batch's frames on OpenMP threads: BLAS threads on top only
   oversubscribe the cores (OpenBLAS's pthread build spins while it waits;
   on 2 cores that tripled the run time). Unless the user chose a count
   (OPENBLAS_NUM_THREADS), keep OpenBLAS, when it is the BLAS, to 1 thread. */
#if defined(__GNUC__) && defined(__ELF__)
extern void openblas_set_num_threads(int) __attribute__((weak));
#endif
static void single_threaded_blas(void) {
#if defined(__GNUC__) && defined(__ELF__)
    if (!getenv("OPENBLAS_NUM_THREADS") && openblas_set_num_threads)
        openblas_set_num_threads(1);
#endif
}

int main(int argc, char **argv) {
    single_threaded_blas();
    options o;
    int p = parse(argc, argv, &o);
    if (p == 1) {
        usage(stdout);
        return 0;
    }
    if (p == 2) return 2;
#ifdef WIBERG_MPI
    /* every trainer across the ranks; rank 0 prints and writes */
    const char **outs[2] = {&o.json, &o.svg_dir};
    if (wbx_mpi_begin(&argc, &argv, outs, 2) < 0) return 1;
#endif
    /* the figures' directory first: no long run that cannot save its output */
    if (o.svg_dir && mkdir(o.svg_dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "pose: cannot create %s: %s\n", o.svg_dir, strerror(errno));
        return 1;
    }
    if (o.single && (o.data_dir || o.write_dir)) {
        fprintf(stderr, "pose: --data and --write-csv need --model mix\n");
        return 2;
    }
    int rc;
    if (o.single) {
        rc = run(&o); /* its wb_trainer runs across the ranks under MPI */
    } else {
        pose_mix_run_opts m;
        pose_mix_run_opts_default(&m);
        m.cfg = o.cfg;
        m.train.lambda = o.train.lambda;
        m.train.lr = o.train.lr;
        m.train.lr_shape = o.lr_shape;
        m.train.soft_t = o.soft_t;
        m.train.epochs = o.train.epochs;
        m.train.batch = o.train.batch;
        m.train.threads = o.train.threads;
        m.train.seed = o.train.seed;
        m.starts = o.starts;
        m.prior_weight = o.prior_weight;
        m.data_dir = o.data_dir;
        m.write_dir = o.write_dir;
        m.min_conf = o.min_conf;
        m.ablate = o.ablate;
        m.json = o.json;
        m.svg_dir = o.svg_dir;
        /* the mixture learns by its own Adam loop, not wb_trainer: under MPI
           every rank runs it whole (same result, no speed-up) */
        rc = pose_mix_run(&m);
    }
#ifdef WIBERG_MPI
    if (rc == 0 && wbx_mpi_json_ranks(o.json) != 0) {
        fprintf(stderr, "pose: cannot write %s\n", o.json);
        rc = 1;
    }
#endif
    return rc;
}
