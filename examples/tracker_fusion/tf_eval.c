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

/* IoU of the boxes (x1 +- w1/2, y1 +- h1/2) and (x2 +- w2/2, y2 +- h2/2):
   |A n B| / (|A| + |B| - |A n B|), as the OTB toolkit and pysot compute it
   (their corner boxes x..x+w; the pixel +1/-1 of OTB's calcRectInt cancel) */
double tf_iou(double x1, double y1, double w1, double h1, double x2, double y2,
              double w2, double h2) {
    double ix = fmin(x1 + w1 / 2, x2 + w2 / 2) - fmax(x1 - w1 / 2, x2 - w2 / 2);
    double iy = fmin(y1 + h1 / 2, y2 + h2 / 2) - fmax(y1 - h1 / 2, y2 - h2 / 2);
    double in = (ix > 0 ? ix : 0) * (iy > 0 ? iy : 0);
    double un = w1 * h1 + w2 * h2 - in;
    return un > 0 ? in / un : 0.0;
}

tf_metrics tf_metrics_seq(const tf_seq *s, const double *x, const double *sz,
                          double threshold) {
    tf_metrics mt = {0, 0, 0, 0, s->T};
    /* success counts: above[i] = frames with IoU > i/20 */
    long above[TF_AUC_STEPS] = {0};
    int boxes = sz && s->has_truth_sz && s->truth_sz;
    for (int t = 0; t < s->T; t++) {
        double dx = x[2 * t] - s->truth[2 * t], dy = x[2 * t + 1] - s->truth[2 * t + 1];
        double e = sqrt(dx * dx + dy * dy);
        mt.cle += e;
        mt.prec += e <= TF_PREC_PX;
        mt.succ += e <= threshold;
        if (!boxes) continue;
        if (!isfinite(sz[2 * t]) || !isfinite(sz[2 * t + 1])) {
            boxes = 0; /* a frame without a size: no AUC */
            continue;
        }
        double iou = tf_iou(x[2 * t], x[2 * t + 1], sz[2 * t], sz[2 * t + 1], s->truth[2 * t],
                            s->truth[2 * t + 1], s->truth_sz[2 * t], s->truth_sz[2 * t + 1]);
        for (int i = 0; i < TF_AUC_STEPS; i++) above[i] += iou > i / (double)(TF_AUC_STEPS - 1);
    }
    if (s->T) {
        mt.cle /= s->T;
        mt.prec /= s->T;
        mt.succ /= s->T;
    }
    if (boxes && s->T) {
        /* AUC = mean over the thresholds of the success rate */
        for (int i = 0; i < TF_AUC_STEPS; i++) mt.auc += (double)above[i] / s->T;
        mt.auc /= TF_AUC_STEPS;
    } else {
        mt.auc = NAN;
    }
    return mt;
}

tf_score tf_score_of(tf_metrics m) {
    tf_score sc = {m.cle, m.succ, m.frames, m.cle, m.prec, m.auc, 1};
    return sc;
}

tf_score tf_score_fused(const tf_seq *s, const double *x, const double *sz,
                        double threshold) {
    return tf_score_of(tf_metrics_seq(s, x, sz, threshold));
}

tf_score tf_score_traj(const tf_seq *s, const double *x, double threshold) {
    return tf_score_fused(s, x, NULL, threshold);
}

/* pooled figures weighted by frames, per-sequence ones by sequences (an
   AUC that is NaN for one sequence is NaN for the set) */
void tf_score_add(tf_score *acc, tf_score one) {
    long n = acc->frames + one.frames;
    if (n > 0) {
        acc->mean_error = (acc->mean_error * acc->frames + one.mean_error * one.frames) / n;
        acc->success = (acc->success * acc->frames + one.success * one.frames) / n;
        acc->frames = n;
    }
    int q = acc->seqs + one.seqs;
    if (q > 0) {
        acc->cle = (acc->cle * acc->seqs + one.cle * one.seqs) / q;
        acc->prec20 = (acc->prec20 * acc->seqs + one.prec20 * one.seqs) / q;
        acc->auc = (acc->auc * acc->seqs + one.auc * one.seqs) / q;
        acc->seqs = q;
    }
}

/* gap filling of pairs: frames without a value take the nearest earlier one
   (or the first later one at the start); none at all: `none` */
static void fill_gaps_v(int T, double *x, const unsigned char *have, double none) {
    int last = -1;
    for (int t = 0; t < T; t++) {
        if (!have[t]) continue;
        for (int u = last + 1; u < t; u++)
            for (int c = 0; c < 2; c++) x[2 * u + c] = last >= 0 ? x[2 * last + c] : x[2 * t + c];
        last = t;
    }
    for (int u = last + 1; u < T; u++)
        for (int c = 0; c < 2; c++) x[2 * u + c] = last >= 0 ? x[2 * last + c] : none;
}
static void fill_gaps(int T, double *x, const unsigned char *have) {
    fill_gaps_v(T, x, have, 0.0);
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
            if (have) have[t] = 1;
        }
    }
    if (have) fill_gaps(s->T, x, have);
    free(have);
}

typedef struct {
    double v, w;
} vw_t;
static int cmp_vw(const void *a, const void *b) {
    double x = ((const vw_t *)a)->v, y = ((const vw_t *)b)->v;
    return (x > y) - (x < y);
}

/* Weighted median of v[0..n-1] with weights w > 0: after sorting by value,
   the value at which the cumulative weight first reaches half the total W;
   when it equals W/2 exactly, the mean of that value and the next (so equal
   weights give the ordinary median). */
static double weighted_median(vw_t *a, int n) {
    double W = 0, c = 0;
    qsort(a, (size_t)n, sizeof *a, cmp_vw);
    for (int i = 0; i < n; i++) W += a[i].w;
    for (int i = 0; i < n; i++) {
        c += a[i].w;
        if (c >= 0.5 * W) {
            if (i + 1 < n && fabs(c - 0.5 * W) <= 1e-12 * W) return 0.5 * (a[i].v + a[i + 1].v);
            return a[i].v;
        }
    }
    return a[n - 1].v;
}

void tf_fuse_sizes(const tf_seq *s, const double *wk, double *sz) {
    int T = s->T, K = s->K;
    for (int i = 0; i < 2 * T; i++) sz[i] = NAN;
    if (!s->has_size || !s->sz) return;
    unsigned char *have = calloc((size_t)T, 1);
    if (!have) return;
    vw_t a[TF_MAX_TRACKERS];
    for (int t = 0; t < T; t++)
        for (int c = 0; c < 2; c++) {
            int n = 0;
            for (int k = 0; k < K; k++) {
                size_t i = (size_t)t * K + k;
                if (!s->m[i] || !isfinite(s->sz[2 * i + c])) continue;
                double w = wk ? wk[k] : 1.0;
                if (!(w > 0)) continue;
                a[n].v = s->sz[2 * i + c];
                a[n++].w = w;
            }
            if (n) {
                sz[2 * t + c] = weighted_median(a, n);
                have[t] = 1;
            }
        }
    fill_gaps_v(T, sz, have, NAN);
    free(have);
}

void tf_baseline_sizes(const tf_seq *s, int kind, int k, double *sz) {
    int T = s->T, K = s->K;
    if (kind == TF_MEDIAN || !s->has_size || !s->sz) {
        tf_fuse_sizes(s, NULL, sz);
        return;
    }
    unsigned char *have = calloc((size_t)T, 1);
    for (int i = 0; i < 2 * T; i++) sz[i] = NAN;
    if (!have) return;
    for (int t = 0; t < T; t++) {
        double sw = 0, sh = 0;
        int c = 0;
        for (int j = 0; j < K; j++) {
            size_t i = (size_t)t * K + j;
            if (!s->m[i] || !isfinite(s->sz[2 * i]) || (kind == TF_SINGLE && j != k)) continue;
            sw += s->sz[2 * i];
            sh += s->sz[2 * i + 1];
            c++;
        }
        if (c) {
            sz[2 * t] = sw / c;
            sz[2 * t + 1] = sh / c;
            have[t] = 1;
        }
    }
    fill_gaps_v(T, sz, have, NAN);
    free(have);
}

/* the energy at theta as a tf_fuse_fn: solve from the median, sizes by the
   weighted median with the tracker weights exp(theta_k) */
typedef struct {
    const double *theta;
    long solves;
    wb_status err;       /* why a solver could not be created       */
    const tf_seq *keep;  /* when fusing this sequence, copy x ...   */
    double *x_keep;      /* ... here [2T]                           */
} energy_fuse_t;
static int energy_fuse(void *u, const tf_seq *s, double *x, double *sz) {
    energy_fuse_t *ef = u;
    wb_energy e = tf_energy(s);
    wb_settings st;
    wb_settings_default(&st);
    st.grad_tol = 1e-6;
    wb_solver *sv = NULL;
    ef->err = wb_solver_create(&sv, &e, &st);
    if (ef->err != WB_OK) return -1;
    tf_median_start(s, x);
    int failed = wb_solve(sv, ef->theta, x, NULL) < 0; /* x: the best point */
    ef->solves++;
    wb_solver_destroy(sv);
    if (ef->keep && s->y == ef->keep->y) memcpy(ef->x_keep, x, sizeof(double) * 2 * (size_t)s->T);
    double wk[TF_MAX_TRACKERS];
    for (int k = 0; k < s->K; k++) wk[k] = exp(ef->theta[k]);
    tf_fuse_sizes(s, wk, sz);
    return failed;
}

int tf_fuse_all_seq(const tf_data *d, const double *theta, double threshold,
                    tf_score *sc, long *solves, int keep, double *x_out,
                    tf_metrics *per_seq) {
    int failed = 0;
    memset(sc, 0, sizeof *sc);
    energy_fuse_t ef = {theta, 0, WB_OK, NULL, NULL};
    for (int q = 0; q < d->count; q++) {
        const tf_seq *s = &d->seq[q];
        double *x = malloc(sizeof(double) * 4 * (size_t)s->T), *sz = x + 2 * (size_t)s->T;
        if (!x) return (int)WB_ENOMEM;
        int rc = energy_fuse(&ef, s, x, sz);
        if (rc < 0) {
            free(x);
            *solves += ef.solves;
            return (int)ef.err;
        }
        failed += rc;
        tf_metrics mt = tf_metrics_seq(s, x, sz, threshold);
        if (per_seq) per_seq[q] = mt;
        tf_score_add(sc, tf_score_of(mt));
        if (q == keep && x_out) memcpy(x_out, x, sizeof(double) * 2 * (size_t)s->T);
        free(x);
    }
    *solves += ef.solves;
    return failed;
}

int tf_fuse_all(const tf_data *d, const double *theta, double threshold,
                tf_score *sc, long *solves, int keep, double *x_out) {
    return tf_fuse_all_seq(d, theta, threshold, sc, solves, keep, x_out, NULL);
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
    o->group = TF_GROUP_DASH;
    o->test_fraction = 0.3;
    o->threshold = 10.0;
    o->epochs = 25;
    o->batch = 4;
    o->threads = 0;
    o->lr = 0.08;
    o->lambda = 1e-3;
    o->seed = 1;
    o->robust = -1;
    o->search = 0;
    o->robust_loss_px = 0;
    o->referee = 0;
    o->votes = 0;
}

void tf_result_free(tf_result *r) {
    for (int i = 0; i < r->count; i++) free(r->m[i].per_seq);
    free(r->epoch_loss);
    free(r->val_loss);
    free(r->plot_fused);
    free(r->test_idx);
    for (int e = 0; e < 2; e++) tf_robust_fit_free(&r->robust[e]);
    for (int e = 0; e < r->sweep_rows; e++) tf_robust_fit_free(&r->sweep[e]);
    tf_data_free(&r->all);
    memset(r, 0, sizeof *r);
}

int tf_eval_method(tf_result *r, const char *key, const char *label,
                   const tf_data *test, tf_fuse_fn fn, void *user,
                   double threshold, double train_seconds, long solves) {
    if (r->count >= TF_MAX_METHODS) return -1;
    tf_method *m = &r->m[r->count];
    memset(m, 0, sizeof *m);
    snprintf(m->key, sizeof m->key, "%s", key);
    snprintf(m->label, sizeof m->label, "%s", label);
    m->tracker = -1;
    m->train_seconds = train_seconds;
    m->solves = solves;
    m->per_seq = calloc((size_t)(test->count > 0 ? test->count : 1), sizeof(tf_metrics));
    if (!m->per_seq) return -1;
    for (int q = 0; q < test->count; q++) {
        const tf_seq *s = &test->seq[q];
        double *x = malloc(sizeof(double) * 4 * (size_t)s->T);
        int rc = x ? fn(user, s, x, x + 2 * (size_t)s->T) : -1;
        if (rc < 0) {
            free(x);
            free(m->per_seq);
            m->per_seq = NULL;
            return -1;
        }
        m->failed += rc > 0;
        m->per_seq[q] = tf_metrics_seq(s, x, x + 2 * (size_t)s->T, threshold);
        tf_score_add(&m->test, tf_score_of(m->per_seq[q]));
        free(x);
    }
    r->failed_solves += m->failed;
    r->count++;
    return m->failed;
}

/* the baselines as tf_fuse_fn */
typedef struct {
    int kind, k;
} base_fuse_t;
static int base_fuse(void *u, const tf_seq *s, double *x, double *sz) {
    const base_fuse_t *b = u;
    tf_baseline(s, b->kind, b->k, x);
    tf_baseline_sizes(s, b->kind, b->k, sz);
    return 0;
}

/* a method's row with its tracker (single, best, oracle rows) */
static int eval_single(tf_result *r, const char *key, const char *label, const tf_data *test,
                       int k, double th, double secs) {
    base_fuse_t b = {TF_SINGLE, k};
    int rc = tf_eval_method(r, key, label, test, base_fuse, &b, th, secs, 0);
    if (rc >= 0) r->m[r->count - 1].tracker = k;
    return rc;
}

/* sc better than the best so far by P@20 averaged per sequence, ties by
   the per-sequence mean centre error (by_cle: by that error alone) */
static int better(const tf_score *sc, const tf_score *best, int by_cle) {
    if (by_cle) return sc->cle < best->cle;
    return sc->prec20 > best->prec20 || (sc->prec20 == best->prec20 && sc->cle < best->cle);
}

int tf_run(const tf_opts *o, tf_result *r, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    tf_data trval = {0}, test = {0}, train = {0}, val = {0};
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
    if (o->names && tf_read_names(o->names, &r->all, err, errlen)) {
        tf_result_free(r);
        return -1;
    }
    int K = r->K = r->all.K;
    if (r->all.count < 3) {
        snprintf(err, errlen, "need at least 3 sequences (train, validation, test), have %d", r->all.count);
        tf_result_free(r);
        return -1;
    }
    if (tf_split_by(&r->all, o->test_fraction, o->seed, o->group, &trval, &test) ||
        tf_split_by(&trval, 0.2, o->seed + 1, o->group, &train, &val))
        goto oom;
    if (train.count < 1 || val.count < 1 || test.count < 1) {
        snprintf(err, errlen, "the split by video left %d train, %d validation, %d test sequences "
                 "(need one each: more videos, or --group none)", train.count, val.count, test.count);
        goto fail;
    }
    r->train_seqs = train.count;
    r->val_seqs = val.count;
    r->test_seqs = test.count;
    r->test_idx = malloc(sizeof(int) * (size_t)test.count);
    if (!r->test_idx) goto oom;
    for (int i = 0; i < test.count; i++)
        for (int q = 0; q < r->all.count; q++)
            if (r->all.seq[q].y == test.seq[i].y) r->test_idx[i] = q;
    double th = o->threshold;
    char label[64];

    /* ---- every single tracker, the mean and the median ---- */
    for (int k = 0; k < K; k++)
        if (eval_single(r, "single", r->all.names[k], &test, k, th, 0) < 0) goto oom;
    static const char *bn[2] = {"mean", "median"};
    for (int b = 0; b < 2; b++) {
        base_fuse_t bf = {b, 0};
        if (tf_eval_method(r, bn[b], bn[b], &test, base_fuse, &bf, th, 0, 0) < 0) goto oom;
    }
    /* ---- the best single tracker, chosen on the training sequences
       (train + validation) by P@20 averaged per sequence, and by the mean
       centre error averaged per sequence; the oracle: chosen on the test ---- */
    double t0 = now_s();
    int best_p = 0, best_c = 0, oracle = 0;
    {
        tf_score bp = {0}, bc = {0};
        double *x = NULL;
        for (int k = 0; k < K; k++) {
            tf_score acc = {0};
            for (int q = 0; q < trval.count; q++) {
                const tf_seq *s = &trval.seq[q];
                double *nx = realloc(x, sizeof(double) * 2 * (size_t)s->T);
                if (!nx) {
                    free(x);
                    goto oom;
                }
                x = nx;
                tf_baseline(s, TF_SINGLE, k, x);
                tf_score_add(&acc, tf_score_traj(s, x, th));
            }
            if (k == 0 || better(&acc, &bp, 0)) bp = acc, best_p = k;
            if (k == 0 || better(&acc, &bc, 1)) bc = acc, best_c = k;
        }
        free(x);
        for (int k = 1; k < K; k++) /* the single rows are r->m[0..K-1] */
            if (better(&r->m[k].test, &r->m[oracle].test, 0)) oracle = k;
    }
    double pick_secs = now_s() - t0;
    snprintf(label, sizeof label, "best single: %s", r->all.names[best_p]);
    if (eval_single(r, "best_single", label, &test, best_p, th, pick_secs) < 0) goto oom;
    snprintf(label, sizeof label, "best by CLE: %s", r->all.names[best_c]);
    if (eval_single(r, "best_single_cle", label, &test, best_c, th, pick_secs) < 0) goto oom;
    snprintf(label, sizeof label, "oracle single: %s", r->all.names[oracle]);
    if (eval_single(r, "oracle", label, &test, oracle, th, 0) < 0) goto oom;

    /* ---- the energy with uniform weights, alpha = 1, delta = 5 px ---- */
    double theta0[TF_MAX_TRACKERS + 2];
    for (int k = 0; k < K; k++) theta0[k] = 0.0;
    theta0[K] = log(1.0);
    theta0[K + 1] = log(5.0);
    energy_fuse_t ef = {theta0, 0, WB_OK, NULL, NULL};
    if (tf_eval_method(r, "uniform", "uniform energy", &test, energy_fuse, &ef, th, 0, 0) < 0)
        goto fuse_fail;

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
    if (!r->epoch_loss || !r->val_loss) {
        wb_trainer_destroy(tr);
        goto oom;
    }
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
    r->plot_seq = &r->all.seq[r->test_idx[0]]; /* the first test sequence */
    r->plot_fused = malloc(sizeof(double) * 2 * (size_t)test.seq[0].T);
    if (!r->plot_fused) goto oom;
    ef.theta = r->theta;
    ef.keep = &test.seq[0]; /* its trajectory for the plot */
    ef.x_keep = r->plot_fused;
    if (tf_eval_method(r, "learned", "learned", &test, energy_fuse, &ef, th, r->train_seconds,
                       r->inner_solves) < 0)
        goto fuse_fail;
    ef.keep = NULL;

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
    snprintf(label, sizeof label, "grid search (%dx%d)", g, gd);
    ef.theta = theta_g;
    if (tf_eval_method(r, "grid_search", label, &test, energy_fuse, &ef, th, grid_secs, used) < 0)
        goto fuse_fail;
    /* ---- the non-convex energy: global weights, and end to end ---- */
    if (o->robust >= 1 || o->nsweep > 0 ||
        (o->robust < 0 && o->tracks && tf_robust_usable(&r->all))) {
        if (!tf_robust_usable(&r->all)) {
            snprintf(err, errlen, "--robust on needs box sizes in the tracks and box truth");
            goto fail;
        }
        if (tf_robust_rows(r, o, &train, &val, &trval, &test, err, errlen)) goto fail;
    }
    tf_split_free(&train);
    tf_split_free(&val);
    tf_split_free(&trval);
    tf_split_free(&test);
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    goto fail;
fuse_fail:
    snprintf(err, errlen, "fusing the test videos: %s",
             ef.err != WB_OK ? wb_status_str(ef.err) : "out of memory");
fail:
    tf_split_free(&train);
    tf_split_free(&val);
    tf_split_free(&trval);
    tf_split_free(&test);
    tf_result_free(r);
    return -1;
}

/* ---- JSON: one writer for numbers (null when not finite), one for strings */
static void jnum(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.10g", v);
    else fputs("null", f);
}
/* [v0, ..., v(n-1)] through jnum ([] when v is NULL) */
static void jarr(FILE *f, const double *v, int n) {
    fputc('[', f);
    for (int i = 0; v && i < n; i++) {
        if (i) fputs(", ", f);
        jnum(f, v[i]);
    }
    fputc(']', f);
}
/* a JSON string: quotes, backslashes and control characters escaped; bytes
   that are not valid UTF-8 written as U+FFFD, so the output is always
   valid JSON whatever the input's bytes */
static void jstr(FILE *f, const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    while (*p) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc(c, f);
            p++;
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(f, "\\u%04x", c);
            p++;
        } else if (c < 0x80) {
            fputc(c, f);
            p++;
        } else {
            /* the length of a well-formed UTF-8 sequence starting at p, or 0 */
            int n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                  : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
            for (int i = 1; i < n; i++)
                if ((p[i] & 0xC0) != 0x80) n = 0;
            if (n == 3 && ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F))) n = 0;
            if (n == 4 && ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F))) n = 0;
            if (n) {
                fwrite(p, 1, (size_t)n, f);
                p += n;
            } else {
                fputs("\\ufffd", f);
                p++;
            }
        }
    }
    fputc('"', f);
}

int tf_write_json(const tf_result *r, const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "{\n  \"methods\": [\n");
    for (int i = 0; i < r->count; i++) {
        /* keys: see tf_method; test_mean_error and test_success_rate are
           pooled over frames, cle_px, precision_20, success_auc averaged
           per sequence (OTB) */
        const tf_method *m = &r->m[i];
        fputs("    {\"name\": ", f);
        jstr(f, m->key);
        fputs(", \"label\": ", f);
        jstr(f, m->label);
        fputs(", \"tracker\": ", f);
        if (m->tracker >= 0) fprintf(f, "%d", m->tracker);
        else fputs("null", f);
        fputs(", \"test_mean_error\": ", f);
        jnum(f, m->test.mean_error);
        fputs(", \"test_success_rate\": ", f);
        jnum(f, m->test.success);
        fputs(", \"cle_px\": ", f);
        jnum(f, m->test.cle);
        fputs(", \"precision_20\": ", f);
        jnum(f, m->test.prec20);
        fputs(", \"success_auc\": ", f);
        jnum(f, m->test.auc);
        fputs(", \"train_seconds\": ", f);
        jnum(f, m->train_seconds);
        fprintf(f, ", \"inner_solves\": %ld, \"failed_solves\": %d", m->solves, m->failed);
        static const char *pk[3] = {"cle_px", "precision_20", "success_auc"};
        fputs(", \"per_sequence\": {", f);
        for (int j = 0; j < 3; j++) {
            fprintf(f, "%s\"%s\": [", j ? ", " : "", pk[j]);
            for (int q = 0; m->per_seq && q < r->test_seqs; q++) {
                const tf_metrics *mt = &m->per_seq[q];
                if (q) fputs(", ", f);
                jnum(f, j == 0 ? mt->cle : j == 1 ? mt->prec : mt->auc);
            }
            fputs("]", f);
        }
        fprintf(f, "}}%s\n", i + 1 < r->count ? "," : "");
    }
    fputs("  ],\n  \"trackers\": [", f);
    for (int k = 0; k < r->K; k++) {
        if (k) fputs(", ", f);
        jstr(f, r->all.names ? r->all.names[k] : "");
    }
    fputs("],\n  \"test_sequences\": [", f);
    for (int q = 0; q < r->test_seqs; q++) {
        if (q) fputs(", ", f);
        jstr(f, r->all.seq[r->test_idx[q]].name);
    }
    fputs("],\n  \"train_seconds\": ", f);
    jnum(f, r->train_seconds);
    fprintf(f, ",\n  \"inner_solves\": %ld,\n  \"failed_solves\": %d,\n", r->inner_solves,
            r->failed_solves);
    fprintf(f, "  \"sequences\": {\"train\": %d, \"validation\": %d, \"test\": %d},\n",
            r->train_seqs, r->val_seqs, r->test_seqs);
    fprintf(f, "  \"learned\": {\"tracker_weights\": [");
    for (int k = 0; k < r->K; k++) {
        if (k) fputs(", ", f);
        jnum(f, exp(r->theta[k]));
    }
    fputs("], \"alpha\": ", f);
    jnum(f, exp(r->theta[r->K]));
    fputs(", \"delta\": ", f);
    jnum(f, exp(r->theta[r->K + 1]));
    fputs("}", f);
    /* the robust rows' training: curves, counts, the learned theta */
    fputs(",\n  \"robust\": [", f);
    for (int e = 0; e < r->robust_rows + r->sweep_rows; e++) {
        int sw = e - r->robust_rows;
        const tf_robust_fit *fit = sw < 0 ? &r->robust[e] : &r->sweep[sw];
        char row[48];
        if (sw < 0) snprintf(row, sizeof row, "%s", e ? "end_to_end" : "nonconvex");
        else snprintf(row, sizeof row, "nonconvex_lambda_%g", r->sweep_lambda[sw]);
        /* "row", not "name": otb_protocol.sh reads the lines that start
           with {"name": as the table's rows */
        fprintf(f, "%s\n    {\"row\": \"%s\", \"lambda\": ", e ? "," : "", row);
        jnum(f, sw < 0 ? r->lambda : r->sweep_lambda[sw]);
        fprintf(f, ", \"best_epoch\": %d, \"inner_solves\": %lld, "
                "\"skipped\": %lld, \"refused\": %d, \"checked\": %d, \"sigma_min\": ",
                fit->best_epoch + 1, fit->solves, fit->skipped, fit->refused, fit->checked);
        jnum(f, fit->sigma_min);
        fputs(", \"sigma_median\": ", f);
        jnum(f, fit->sigma_med);
        fputs(", \"val_loss_start\": ", f);
        jnum(f, fit->val_loss0);
        fprintf(f, ", \"search_evals\": %d, \"search_before\": ", fit->search_evals);
        jnum(f, fit->search_before);
        fputs(", \"search_after\": ", f);
        jnum(f, fit->search_after);
        fputs(", \"seconds\": ", f);
        jnum(f, fit->seconds);
        fputs(", \"cpu_seconds\": ", f);
        jnum(f, fit->cpu_seconds);
        if (fit->test_sigma) { /* per test sequence, in the order of "test_sequences" */
            fputs(", \"test_sigma_H\": ", f);
            jarr(f, fit->test_sigma, r->test_seqs);
            fputs(", \"test_refused\": [", f);
            for (int q = 0; q < r->test_seqs; q++) fprintf(f, "%s%d", q ? ", " : "", fit->test_refused[q]);
            fputs("]", f);
        }
        static const char *cn[3] = {"epoch_loss", "val_loss", "theta"};
        for (int j = 0; j < 3; j++) {
            int n = j < 2 ? fit->epochs : TF_RP(r->K);
            const double *v = j == 0 ? fit->epoch_loss : j == 1 ? fit->val_loss : fit->theta;
            fprintf(f, ", \"%s\": ", cn[j]);
            jarr(f, v, n);
        }
        fputs("}", f);
    }
    fputs("]", f);
    if (r->ref_done) { /* the referee of the non-convex learned row */
        fprintf(f, ",\n  \"referee\": {\"tracker\": %d, \"beta\": ", r->ref_tracker);
        jarr(f, r->ref_beta, 4);
        fprintf(f, ", \"train_segments\": %d, \"train_switched\": %d, \"train_cle_gain\": ",
                r->ref_segs, r->ref_switched);
        jnum(f, r->ref_gain);
        fprintf(f, ", \"used\": %d, \"test_segments\": %d, \"test_switched\": %d}", r->ref_used,
                r->ref_test_segs, r->ref_test_switched);
    }
    if (r->robust_rows) { /* the robust rows' start weights */
        fprintf(f, ",\n  \"start_weights\": {\"fitted\": %d, \"from_precision\": ", r->vote_done);
        jarr(f, r->w_prec, r->K);
        fputs(", \"used\": ", f);
        jarr(f, r->w_start, r->K);
        fprintf(f, ", \"pairs\": %ld, \"loss_before\": ", r->vote.pairs);
        jnum(f, r->vote.loss_before);
        fputs(", \"loss_after\": ", f);
        jnum(f, r->vote.loss_after);
        fputs("}", f);
    }
    fputs("\n}\n", f);
    int bad = ferror(f);
    return fclose(f) == 0 && !bad ? 0 : -1;
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
