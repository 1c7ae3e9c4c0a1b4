/* Fusing, scoring, the baselines and the whole experiment. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "tf.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

tf_score tf_score_traj(const tf_seq *s, const double *x, double threshold) {
    tf_score sc = {0, 0, 0};
    for (int t = 0; t < s->T; t++) {
        double dx = x[2 * t] - s->truth[2 * t], dy = x[2 * t + 1] - s->truth[2 * t + 1];
        double e = sqrt(dx * dx + dy * dy);
        sc.mean_error += e;
        sc.success += e <= threshold;
    }
    sc.frames = s->T;
    if (s->T) {
        sc.mean_error /= s->T;
        sc.success /= s->T;
    }
    return sc;
}

void tf_score_add(tf_score *acc, tf_score one) { /* frame-weighted */
    long n = acc->frames + one.frames;
    if (n == 0) return;
    acc->mean_error = (acc->mean_error * acc->frames + one.mean_error * one.frames) / n;
    acc->success = (acc->success * acc->frames + one.success * one.frames) / n;
    acc->frames = n;
}

/* gap filling: frames without a value take the nearest earlier one (or the
   first later one at the start) */
static void fill_gaps(int T, double *x, const unsigned char *have) {
    int last = -1;
    for (int t = 0; t < T; t++) {
        if (!have[t]) continue;
        for (int u = last + 1; u < t; u++)
            for (int c = 0; c < 2; c++) x[2 * u + c] = last >= 0 ? x[2 * last + c] : x[2 * t + c];
        last = t;
    }
    for (int u = last + 1; u < T; u++)
        for (int c = 0; c < 2; c++) x[2 * u + c] = last >= 0 ? x[2 * last + c] : 0.0;
}

void tf_baseline(const tf_seq *s, int kind, int k, double *x) {
    if (kind == TF_MEDIAN) {
        tf_median_start(s, x);
        return;
    }
    unsigned char *have = calloc((size_t)s->T, 1);
    for (int t = 0; t < s->T; t++) {
        double sx = 0, sy = 0;
        int c = 0;
        for (int j = 0; j < s->K; j++) {
            size_t i = (size_t)t * s->K + j;
            if (!s->m[i] || (kind == TF_SINGLE && j != k)) continue;
            sx += s->y[2 * i];
            sy += s->y[2 * i + 1];
            c++;
        }
        if (c) {
            x[2 * t] = sx / c;
            x[2 * t + 1] = sy / c;
            have[t] = 1;
        }
    }
    fill_gaps(s->T, x, have);
    free(have);
}

int tf_fuse_all(const tf_data *d, const double *theta, double threshold,
                tf_score *sc, long *solves, int keep, double *x_out) {
    int failed = 0;
    memset(sc, 0, sizeof *sc);
    for (int q = 0; q < d->count; q++) {
        const tf_seq *s = &d->seq[q];
        wb_energy e = tf_energy(s);
        wb_settings st;
        wb_settings_default(&st);
        st.grad_tol = 1e-6;
        wb_solver *sv = NULL;
        double *x = malloc(sizeof(double) * 2 * (size_t)s->T);
        wb_status cs = x ? wb_solver_create(&sv, &e, &st) : WB_ENOMEM;
        if (cs != WB_OK) {
            free(x);
            return (int)cs;
        }
        tf_median_start(s, x);
        if (wb_solve(sv, theta, x, NULL) < 0) failed++; /* x: best point */
        (*solves)++;
        tf_score_add(sc, tf_score_traj(s, x, threshold));
        if (q == keep && x_out) memcpy(x_out, x, sizeof(double) * 2 * (size_t)s->T);
        wb_solver_destroy(sv);
        free(x);
    }
    return failed;
}

/* mean training loss (the training objective) of theta over d */
static double train_objective(const tf_data *d, const double *theta, long *solves) {
    double L = 0;
    for (int q = 0; q < d->count; q++) {
        const tf_seq *s = &d->seq[q];
        wb_energy e = tf_energy(s);
        wb_settings st;
        wb_settings_default(&st);
        st.grad_tol = 1e-6;
        wb_solver *sv = NULL;
        double *x = malloc(sizeof(double) * 2 * (size_t)s->T);
        if (!x || wb_solver_create(&sv, &e, &st) != WB_OK) {
            free(x);
            return INFINITY;
        }
        tf_median_start(s, x);
        wb_status r = wb_solve(sv, theta, x, NULL);
        (*solves)++;
        L += r >= 0 ? tf_loss(s, x, NULL) : INFINITY;
        wb_solver_destroy(sv);
        free(x);
    }
    return L / d->count;
}

void tf_opts_default(tf_opts *o) {
    memset(o, 0, sizeof *o);
    tf_gen_default(&o->gen);
    o->test_fraction = 0.3;
    o->threshold = 10.0;
    o->epochs = 25;
    o->batch = 4;
    o->threads = 0;
    o->lr = 0.08;
    o->lambda = 1e-3;
    o->seed = 1;
}

void tf_result_free(tf_result *r) {
    free(r->epoch_loss);
    free(r->val_loss);
    free(r->plot_fused);
    tf_data_free(&r->all);
    memset(r, 0, sizeof *r);
}

static void add_method(tf_result *r, const char *name, tf_score sc, double secs,
                       long solves) {
    tf_method *m = &r->m[r->count++];
    snprintf(m->name, sizeof m->name, "%s", name);
    m->test = sc;
    m->train_seconds = secs;
    m->solves = solves;
}

int tf_run(const tf_opts *o, tf_result *r, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    if (o->tracks) {
        if (tf_read_csv(o->tracks, o->truth, &r->all, err, errlen)) return -1;
        if (!o->truth) {
            snprintf(err, errlen, "--tracks needs --truth (held-out errors need ground truth)");
            tf_result_free(r);
            return -1;
        }
    } else if (tf_generate(&o->gen, &r->all)) {
        snprintf(err, errlen, "out of memory generating data");
        return -1;
    }
    int K = r->K = r->all.K;
    if (r->all.count < 3) {
        snprintf(err, errlen, "need at least 3 sequences (train, validation, test), have %d", r->all.count);
        tf_result_free(r);
        return -1;
    }
    tf_data trval, test, train, val;
    if (tf_split(&r->all, o->test_fraction, o->seed, &trval, &test) ||
        tf_split(&trval, 0.2, o->seed + 1, &train, &val)) {
        snprintf(err, errlen, "out of memory splitting");
        tf_result_free(r);
        return -1;
    }
    r->train_seqs = train.count;
    r->val_seqs = val.count;
    r->test_seqs = test.count;
    double th = o->threshold;
    tf_score sc;

    /* ---- baselines without learning ---- */
    static const char *bn[2] = {"mean", "median"};
    for (int b = 0; b < 2; b++) {
        tf_score acc = {0, 0, 0};
        for (int q = 0; q < test.count; q++) {
            double *x = malloc(sizeof(double) * 2 * (size_t)test.seq[q].T);
            tf_baseline(&test.seq[q], b, 0, x);
            tf_score_add(&acc, tf_score_traj(&test.seq[q], x, th));
            free(x);
        }
        add_method(r, bn[b], acc, 0, 0);
    }
    /* best single tracker, chosen on the training sequences */
    double t0 = now_s();
    int best_k = 0;
    double best_err = INFINITY;
    for (int k = 0; k < K; k++) {
        tf_score acc = {0, 0, 0};
        for (int q = 0; q < trval.count; q++) {
            double *x = malloc(sizeof(double) * 2 * (size_t)trval.seq[q].T);
            tf_baseline(&trval.seq[q], TF_SINGLE, k, x);
            tf_score_add(&acc, tf_score_traj(&trval.seq[q], x, th));
            free(x);
        }
        if (acc.mean_error < best_err) best_err = acc.mean_error, best_k = k;
    }
    {
        tf_score acc = {0, 0, 0};
        for (int q = 0; q < test.count; q++) {
            double *x = malloc(sizeof(double) * 2 * (size_t)test.seq[q].T);
            tf_baseline(&test.seq[q], TF_SINGLE, best_k, x);
            tf_score_add(&acc, tf_score_traj(&test.seq[q], x, th));
            free(x);
        }
        char name[48];
        snprintf(name, sizeof name, "best single (tracker %d)", best_k);
        add_method(r, name, acc, now_s() - t0, 0);
    }
    /* the energy with uniform weights, alpha = 1, delta = 5 px */
    double theta0[TF_MAX_TRACKERS + 2];
    for (int k = 0; k < K; k++) theta0[k] = 0.0;
    theta0[K] = log(1.0);
    theta0[K + 1] = log(5.0);
    long s0 = 0;
    int fst = tf_fuse_all(&test, theta0, th, &sc, &s0, -1, NULL);
    if (fst < 0) goto fuse_fail;
    add_method(r, "uniform energy", sc, 0, 0);

    /* ---- learned: the trainer, implicit derivative with lambda ---- */
    wb_dataset dtrain = tf_dataset(&train), dval = tf_dataset(&val);
    wb_train_settings ts;
    wb_train_settings_default(&ts);
    ts.solver.lambda = o->lambda;
    ts.solver.grad_tol = 1e-6;
    ts.optimizer = WB_OPT_ADAM;
    ts.lr = o->lr;
    ts.schedule = WB_LR_COSINE;
    ts.lr_min = 0.1 * o->lr;
    ts.batch_size = o->batch;
    ts.epochs = o->epochs;
    ts.seed = o->seed;
    ts.threads = o->threads;
    ts.validation = &dval;
    ts.verbose = o->verbose;
    double lo[TF_MAX_TRACKERS + 2], hi[TF_MAX_TRACKERS + 2];
    for (int k = 0; k < K + 2; k++) lo[k] = -9, hi[k] = 9; /* weights e^+-9 */
    lo[K + 1] = log(0.05); /* delta >= 0.05 px */
    ts.lower = lo;
    ts.upper = hi;
    wb_trainer *tr = NULL;
    wb_status st = wb_trainer_create(&tr, &dtrain, theta0, &ts);
    if (st != WB_OK) {
        snprintf(err, errlen, "wb_trainer_create: %s", wb_status_str(st));
        goto fail;
    }
    r->epochs = o->epochs;
    r->epoch_loss = calloc((size_t)o->epochs, sizeof(double));
    r->val_loss = calloc((size_t)o->epochs, sizeof(double));
    if (!r->epoch_loss || !r->val_loss) goto oom;
    t0 = now_s();
    wb_train_info info;
    int last_epoch = 0;
    do {
        st = wb_trainer_step(tr, &info);
        if (info.epoch != last_epoch && info.epoch <= o->epochs) {
            r->epoch_loss[info.epoch - 1] = info.epoch_loss;
            r->val_loss[info.epoch - 1] = info.val_loss;
            last_epoch = info.epoch;
        }
    } while (st == WB_OK);
    if (st != WB_DONE) {
        snprintf(err, errlen, "training: %s: %s", wb_status_str(st), wb_trainer_message(tr));
        wb_trainer_destroy(tr);
        goto fail;
    }
    r->train_seconds = now_s() - t0;
    r->inner_solves = info.inner_solves;
    wb_trainer_best_w(tr, r->theta, NULL);
    wb_trainer_destroy(tr);
    long s1 = 0;
    r->plot_seq = &r->all.seq[0];
    for (int q = 0; q < r->all.count; q++) /* the first test sequence */
        if (r->all.seq[q].y == test.seq[0].y) r->plot_seq = &r->all.seq[q];
    r->plot_fused = malloc(sizeof(double) * 2 * (size_t)test.seq[0].T);
    if (!r->plot_fused) goto oom;
    fst = tf_fuse_all(&test, r->theta, th, &sc, &s1, 0, r->plot_fused);
    if (fst < 0) goto fuse_fail;
    add_method(r, "learned", sc, r->train_seconds, r->inner_solves);

    /* ---- grid search over (alpha, delta), uniform weights, with the
       learned run's budget of inner solves on the training sequences ---- */
    t0 = now_s();
    long budget = r->inner_solves, used = 0;
    int configs = (int)(budget / (train.count + val.count));
    if (configs < 1) configs = 1;
    int g = (int)floor(sqrt((double)configs)), gd = configs / g; /* g x gd <= budget */
    double best_obj = INFINITY, theta_g[TF_MAX_TRACKERS + 2];
    memcpy(theta_g, theta0, sizeof theta_g);
    for (int a = 0; a < g; a++)
        for (int b = 0; b < gd; b++) {
            double th2[TF_MAX_TRACKERS + 2];
            memcpy(th2, theta0, sizeof th2);
            /* alpha in [1e-2, 1e3], delta in [0.5, 50] px, log-spaced */
            th2[K] = log(1e-2) + (g > 1 ? a * (log(1e5) / (g - 1)) : log(1e2));
            th2[K + 1] = log(0.5) + (gd > 1 ? b * (log(100.0) / (gd - 1)) : log(10.0));
            double obj = train_objective(&trval, th2, &used);
            if (obj < best_obj) best_obj = obj, memcpy(theta_g, th2, sizeof th2);
        }
    double grid_secs = now_s() - t0;
    long s2 = 0;
    fst = tf_fuse_all(&test, theta_g, th, &sc, &s2, -1, NULL);
    if (fst < 0) goto fuse_fail;
    char gname[48];
    snprintf(gname, sizeof gname, "grid search (%dx%d)", g, gd);
    add_method(r, gname, sc, grid_secs, used);
    tf_split_free(&train);
    tf_split_free(&val);
    tf_split_free(&trval);
    tf_split_free(&test);
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    goto fail;
fuse_fail:
    snprintf(err, errlen, "fusing the test videos: wb_solver_create: %s",
             wb_status_str((wb_status)fst));
fail:
    tf_split_free(&train);
    tf_split_free(&val);
    tf_split_free(&trval);
    tf_split_free(&test);
    tf_result_free(r);
    return -1;
}

int tf_write_json(const tf_result *r, const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "{\n  \"methods\": [\n");
    for (int i = 0; i < r->count; i++) {
        const tf_method *m = &r->m[i];
        const char *name = m->name;
        char key[48];
        /* stable keys: "learned", "mean", "median", "best_single",
           "uniform", "grid_search" */
        if (!strncmp(name, "best single", 11)) name = "best_single";
        else if (!strncmp(name, "uniform", 7)) name = "uniform";
        else if (!strncmp(name, "grid", 4)) name = "grid_search";
        snprintf(key, sizeof key, "%s", name);
        fprintf(f, "    {\"name\": \"%s\", \"label\": \"%s\", \"test_mean_error\": %.6f, "
                "\"test_success_rate\": %.6f, \"train_seconds\": %.4f, "
                "\"inner_solves\": %ld}%s\n", key, m->name, m->test.mean_error,
                m->test.success, m->train_seconds, m->solves, i + 1 < r->count ? "," : "");
    }
    fprintf(f, "  ],\n  \"train_seconds\": %.4f,\n  \"inner_solves\": %ld,\n",
            r->train_seconds, r->inner_solves);
    fprintf(f, "  \"sequences\": {\"train\": %d, \"validation\": %d, \"test\": %d},\n",
            r->train_seqs, r->val_seqs, r->test_seqs);
    fprintf(f, "  \"learned\": {\"tracker_weights\": [");
    for (int k = 0; k < r->K; k++) fprintf(f, "%s%.6g", k ? ", " : "", exp(r->theta[k]));
    fprintf(f, "], \"alpha\": %.6g, \"delta\": %.6g}\n}\n", exp(r->theta[r->K]),
            exp(r->theta[r->K + 1]));
    return fclose(f) == 0 ? 0 : -1;
}

static const char *COLORS[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b",
                               "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8"};

int tf_write_svg(const tf_result *r, const char *dir) {
    char path[1024];
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) return -1;
    const tf_seq *s = r->plot_seq;
    /* 1. x coordinate against the frame: trackers, truth, fused */
    snprintf(path, sizeof path, "%s/trajectory.svg", dir);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    int W = 900, H = 420, L = 60, B = 40;
    double lo = INFINITY, hi = -INFINITY;
    for (int t = 0; t < s->T; t++) {
        lo = fmin(lo, s->truth[2 * t]);
        hi = fmax(hi, s->truth[2 * t]);
    }
    lo -= 60, hi += 60;
    fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
            "font-family='sans-serif' font-size='12'>\n<rect width='100%%' height='100%%' fill='white'/>\n", W, H);
    fprintf(f, "<text x='%d' y='18'>%s (held out): x coordinate per frame</text>\n", L, s->name);
#define PX(t) (L + (double)(t) * (W - L - 230) / (s->T - 1))
#define PY(v) (H - B - ((v) - lo) * (H - B - 30) / (hi - lo))
    for (int k = 0; k < s->K; k++) {
        for (int t = 0; t < s->T; t++) {
            size_t i = (size_t)t * s->K + k;
            double v = s->y[2 * i];
            if (!s->m[i] || v < lo || v > hi) continue;
            fprintf(f, "<circle cx='%.1f' cy='%.1f' r='1.2' fill='%s' opacity='0.5'/>\n",
                    PX(t), PY(v), COLORS[k % 10]);
        }
    }
    fprintf(f, "<polyline fill='none' stroke='black' stroke-width='2' points='");
    for (int t = 0; t < s->T; t++) fprintf(f, "%.1f,%.1f ", PX(t), PY(s->truth[2 * t]));
    fprintf(f, "'/>\n<polyline fill='none' stroke='red' stroke-width='1.5' points='");
    for (int t = 0; t < s->T; t++) fprintf(f, "%.1f,%.1f ", PX(t), PY(r->plot_fused[2 * t]));
    fprintf(f, "'/>\n<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='black'/>\n", L, H - B, W - 230, H - B);
    fprintf(f, "<text x='%d' y='%d'>frame 0 .. %d; x from %.0f to %.0f px</text>\n", W / 3, H - 10, s->T - 1, lo, hi);
    fprintf(f, "<text x='%d' y='40' fill='black'>ground truth</text><text x='%d' y='56' fill='red'>learned fusion</text>"
            "<text x='%d' y='72' fill='#1f77b4'>dots: trackers</text><text x='%d' y='88' fill='#1f77b4'>(one colour each)</text>\n",
            W - 210, W - 210, W - 210, W - 210);
    fprintf(f, "</svg>\n");
#undef PX
#undef PY
    if (fclose(f)) return -1;
    /* 2. training and validation loss per epoch (log scale) */
    snprintf(path, sizeof path, "%s/loss.svg", dir);
    f = fopen(path, "w");
    if (!f) return -1;
    lo = INFINITY, hi = -INFINITY;
    for (int e = 0; e < r->epochs; e++)
        for (int j = 0; j < 2; j++) {
            double v = j ? r->val_loss[e] : r->epoch_loss[e];
            if (v > 0 && isfinite(v)) lo = fmin(lo, log10(v)), hi = fmax(hi, log10(v));
        }
    if (!(hi > lo)) hi = lo + 1;
    W = 600, H = 380;
    fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
            "font-family='sans-serif' font-size='12'>\n<rect width='100%%' height='100%%' fill='white'/>\n", W, H);
    fprintf(f, "<text x='60' y='18'>training loss per epoch (smoothed mean centre error, px, log scale)</text>\n");
    for (int j = 0; j < 2; j++) {
        fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='2' points='", j ? "#d62728" : "#1f77b4");
        for (int e = 0; e < r->epochs; e++) {
            double v = j ? r->val_loss[e] : r->epoch_loss[e];
            if (!(v > 0) || !isfinite(v)) continue;
            double xx = 60 + (double)e * (W - 80) / (r->epochs > 1 ? r->epochs - 1 : 1);
            double yy = H - 40 - (log10(v) - lo) * (H - 80) / (hi - lo);
            fprintf(f, "%.1f,%.1f ", xx, yy);
        }
        fprintf(f, "'/>\n");
    }
    fprintf(f, "<text x='%d' y='40' fill='#1f77b4'>training</text><text x='%d' y='56' fill='#d62728'>validation</text>\n", W - 120, W - 120);
    fprintf(f, "<text x='60' y='%d'>epoch 1 .. %d; y from %.3g to %.3g</text>\n</svg>\n", H - 10,
            r->epochs, pow(10, lo), pow(10, hi));
    return fclose(f) == 0 ? 0 : -1;
}
