/* The robust rows of tracker_fusion's table: "non-convex learned" (global
 * per-tracker weights and widths) and "end to end" (per-frame, per-tracker
 * weights from the reports' features), both the energy of tf_robust.c
 * trained through wb_implicit_vjp with --lambda; the referee row. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tf.h"
#include "tf_referee.h"

/* the boxes of s as tf_robust wants them; a report without a size counts as
   missing here (the energy fuses whole boxes) */
static int prep(const tf_seq *s, const double *w0, tf_rseq *q) {
    size_t TK = (size_t)s->T * s->K;
    double *box = malloc(sizeof(double) * 4 * TK), *tb = NULL;
    unsigned char *m = malloc(TK);
    if (s->has_truth && s->has_truth_sz) tb = malloc(sizeof(double) * 4 * (size_t)s->T);
    int rc = -1;
    if (box && m && (tb || !(s->has_truth && s->has_truth_sz))) {
        for (size_t i = 0; i < TK; i++) {
            int ok = s->m[i] && s->has_size && s->sz[2 * i] > 0 && s->sz[2 * i + 1] > 0;
            m[i] = (unsigned char)ok;
            box[4 * i] = s->y[2 * i], box[4 * i + 1] = s->y[2 * i + 1];
            box[4 * i + 2] = ok ? s->sz[2 * i] : 1, box[4 * i + 3] = ok ? s->sz[2 * i + 1] : 1;
        }
        for (int t = 0; tb && t < s->T; t++) {
            tb[4 * t] = s->truth[2 * t], tb[4 * t + 1] = s->truth[2 * t + 1];
            tb[4 * t + 2] = s->truth_sz[2 * t], tb[4 * t + 3] = s->truth_sz[2 * t + 1];
        }
        rc = tf_rseq_init(q, s->T, s->K, box, m, tb, w0);
    }
    free(box), free(m), free(tb);
    return rc;
}

typedef struct {
    const tf_data *d;
    const tf_rseq *q;
    const double *theta;
} rfuse_t;

static int rfuse(void *u, const tf_seq *s, double *x, double *sz) {
    const rfuse_t *f = u;
    int i = 0;
    while (i < f->d->count && &f->d->seq[i] != s) i++;
    if (i == f->d->count) return -1;
    const tf_rseq *q = &f->q[i];
    double *box = malloc(sizeof(double) * 4 * (size_t)s->T);
    if (!box) return -1;
    int st = tf_robust_fuse(q, f->theta, box);
    if (st == WB_ENOMEM || st == WB_EINVAL) {
        free(box);
        return -1;
    }
    for (int t = 0; t < s->T; t++) {
        x[2 * t] = box[4 * t], x[2 * t + 1] = box[4 * t + 1];
        sz[2 * t] = box[4 * t + 2], sz[2 * t + 1] = box[4 * t + 3];
    }
    free(box);
    return st < 0 ? 1 : 0;
}

/* tracker k's boxes B[T*4] in s, as its single-tracker row has them (gaps
   filled with its last report) */
static int best_boxes(const tf_seq *s, int k, double *B) {
    double *x = malloc(sizeof(double) * 4 * (size_t)s->T);
    if (!x) return -1;
    double *sz = x + 2 * (size_t)s->T;
    tf_baseline(s, TF_SINGLE, k, x);
    tf_baseline_sizes(s, TF_SINGLE, k, sz);
    for (int t = 0; t < s->T; t++) {
        B[4 * t] = x[2 * t], B[4 * t + 1] = x[2 * t + 1];
        B[4 * t + 2] = sz[2 * t], B[4 * t + 3] = sz[2 * t + 1];
    }
    free(x);
    return 0;
}

/* The fused boxes F[T*4] of q at theta and tracker kb's boxes B[T*4] of s,
   the segments where they part (with delta when truth), and, with beta,
   the referee's choice applied to F. *switched: segments switched to B.
   Returns the fusion's status (< 0 failed, F still usable), or -100 out of
   memory. */
static int referee_seq(const tf_seq *s, const tf_rseq *q, const double *theta, int kb,
                       const double *beta, int truth, double *F, double *B, tf_ref_seg **seg,
                       int *nseg, int *switched) {
    *seg = NULL, *nseg = 0, *switched = 0;
    int st = tf_robust_fuse(q, theta, F);
    if (st == WB_ENOMEM || st == WB_EINVAL) return -100;
    if (best_boxes(s, kb, B)) return -100;
    if (tf_ref_segments(q, theta, F, B, TF_PREC_PX, truth, seg, nseg)) return -100;
    if (beta) *switched = tf_ref_apply(*seg, *nseg, beta, B, F);
    return st;
}

typedef struct {
    const tf_data *d;
    const tf_rseq *q;
    const double *theta, *beta;
    int kb, segs, switched;
} reffuse_t;

static int reffuse(void *u, const tf_seq *s, double *x, double *sz) {
    reffuse_t *f = u;
    int i = 0;
    while (i < f->d->count && &f->d->seq[i] != s) i++;
    if (i == f->d->count) return -1;
    double *F = malloc(sizeof(double) * 8 * (size_t)s->T);
    if (!F) return -1;
    double *B = F + 4 * (size_t)s->T;
    tf_ref_seg *seg = NULL;
    int nseg = 0, sw = 0;
    /* no truth: the decision sees only the reports, the fusion and B */
    int st = referee_seq(s, &f->q[i], f->theta, f->kb, f->beta, 0, F, B, &seg, &nseg, &sw);
    free(seg);
    if (st == -100) {
        free(F);
        return -1;
    }
    f->segs += nseg, f->switched += sw;
    for (int t = 0; t < s->T; t++) {
        x[2 * t] = F[4 * t], x[2 * t + 1] = F[4 * t + 1];
        sz[2 * t] = F[4 * t + 2], sz[2 * t + 1] = F[4 * t + 3];
    }
    free(F);
    return st < 0 ? 1 : 0;
}

/* The referee of the global row (theta) against tracker kb: segments of the
   training sequences (train and validation, with their truth), the model
   fitted on them, then the row "nonconvex_referee" on test. 0 ok, -1 out of
   memory or a failed fit (err). */
static int referee_row(tf_result *r, const tf_opts *o, const tf_data *parts[3], tf_rseq *q[3],
                       const double *theta, int kb, double secs, long solves, char *err,
                       size_t errlen) {
    struct timespec ts0, ts1;
    clock_gettime(CLOCK_MONOTONIC, &ts0);
    tf_ref_seg *all = NULL;
    int nall = 0, cap = 0;
    for (int j = 0; j < 2; j++)
        for (int i = 0; i < parts[j]->count; i++) {
            const tf_seq *s = &parts[j]->seq[i];
            double *F = malloc(sizeof(double) * 8 * (size_t)s->T), *B = F ? F + 4 * (size_t)s->T : NULL;
            tf_ref_seg *seg = NULL;
            int nseg = 0, sw = 0;
            if (!F || referee_seq(s, &q[j][i], theta, kb, NULL, 1, F, B, &seg, &nseg, &sw) == -100) {
                free(F), free(seg), free(all);
                snprintf(err, errlen, "the referee: out of memory");
                return -1;
            }
            free(F);
            if (nall + nseg > cap) {
                cap = 2 * (nall + nseg) + 8;
                tf_ref_seg *nw = realloc(all, sizeof(tf_ref_seg) * (size_t)cap);
                if (!nw) {
                    free(seg), free(all);
                    snprintf(err, errlen, "the referee: out of memory");
                    return -1;
                }
                all = nw;
            }
            if (nseg) memcpy(all + nall, seg, sizeof(tf_ref_seg) * (size_t)nseg);
            nall += nseg;
            free(seg);
        }
    double beta[TF_REF_F];
    int fr = tf_ref_fit(all, nall, TF_REF_RIDGE, beta, NULL);
    if (fr) {
        free(all);
        snprintf(err, errlen, "the referee: the fit failed (%s)",
                 fr == -2 ? "a Newton system not positive definite" : "non-finite features");
        return -1;
    }
    /* what the fitted decisions do on the training sequences themselves */
    int nseq = parts[0]->count + parts[1]->count, sw = 0;
    double gain = 0;
    for (int i = 0; i < nall; i++) {
        double u = 0;
        for (int j = 0; j < TF_REF_F; j++) u += beta[j] * all[i].phi[j];
        if (u > 0) sw++, gain += all[i].delta;
    }
    free(all);
    r->ref_done = 1, r->ref_tracker = kb, r->ref_segs = nall, r->ref_switched = sw;
    r->ref_gain = gain / nseq;
    for (int j = 0; j < TF_REF_F; j++) r->ref_beta[j] = beta[j];
    /* the guard: the model is used only when its switches lower the mean
       centre error of the training sequences themselves (the logistic loss
       is a surrogate, and many short segments can switch at a net loss);
       else the fusion is kept everywhere (beta NULL: no switch) */
    r->ref_used = r->ref_gain > 0;
    reffuse_t f = {parts[2], q[2], theta, r->ref_used ? beta : NULL, kb, 0, 0};
    clock_gettime(CLOCK_MONOTONIC, &ts1);
    double secs_ref = (double)(ts1.tv_sec - ts0.tv_sec) + 1e-9 * (double)(ts1.tv_nsec - ts0.tv_nsec);
    if (tf_eval_method(r, "nonconvex_referee", "non-convex + referee", parts[2], reffuse, &f,
                       o->threshold, secs + secs_ref, solves) < 0) {
        snprintf(err, errlen, "the referee: out of memory");
        return -1;
    }
    r->ref_test_segs = f.segs, r->ref_test_switched = f.switched;
    return 0;
}

static void free_all(tf_rseq *q, int n) {
    for (int i = 0; q && i < n; i++) tf_rseq_free(&q[i]);
    free(q);
}

int tf_robust_usable(const tf_data *d) {
    for (int i = 0; i < d->count; i++)
        if (!d->seq[i].has_size || !d->seq[i].has_truth || !d->seq[i].has_truth_sz) return 0;
    return d->count > 0;
}

int tf_robust_rows(tf_result *r, const tf_opts *o, const tf_data *train, const tf_data *val,
                   const tf_data *trval, const tf_data *test, char *err, size_t errlen) {
    int K = trval->K;
    if (K > TF_RMAX_K) {
        snprintf(err, errlen, "the robust fusion takes at most %d trackers", TF_RMAX_K);
        return -1;
    }
    /* start weights from the training sequences (train + validation): each
       tracker's P@20 averaged per sequence, w0_k = exp(5 (P_k - max P)) */
    double P[TF_RMAX_K], pmax = 0, w0[TF_RMAX_K];
    for (int k = 0; k < K; k++) {
        double acc = 0;
        for (int i = 0; i < trval->count; i++) {
            const tf_seq *s = &trval->seq[i];
            double *x = malloc(sizeof(double) * 2 * (size_t)s->T);
            if (!x) goto oom0;
            tf_baseline(s, TF_SINGLE, k, x);
            acc += tf_metrics_seq(s, x, NULL, TF_PREC_PX).prec;
            free(x);
        }
        P[k] = acc / trval->count;
        if (k == 0 || P[k] > pmax) pmax = P[k];
    }
    for (int k = 0; k < K; k++) w0[k] = exp(5 * (P[k] - pmax));
    const tf_data *parts[3] = {train, val, test};
    tf_rseq *q[3] = {NULL, NULL, NULL};
    for (int j = 0; j < 3; j++) {
        q[j] = calloc((size_t)parts[j]->count, sizeof(tf_rseq));
        if (!q[j]) goto oom;
        for (int i = 0; i < parts[j]->count; i++)
            if (prep(&parts[j]->seq[i], w0, &q[j][i])) {
                snprintf(err, errlen, "the robust fusion: sequence '%s' has no sized report "
                         "(or out of memory)", parts[j]->seq[i].name);
                goto fail;
            }
    }
    /* the start weights: the P@20 ones, or (o->votes) fitted on the
       training sequences' disagreements with them as the prior */
    double ws[TF_RMAX_K];
    memcpy(ws, w0, sizeof(double) * K);
    r->vote_done = 0;
    if (o->votes) {
        if (tf_robust_vote_fit(q[0], train->count, q[1], val->count, TF_PREC_PX, w0, ws,
                               &r->vote)) {
            snprintf(err, errlen, "the start's vote weights: out of memory");
            goto fail;
        }
        r->vote_done = 1;
    }
    for (int k = 0; k < K; k++) r->w_prec[k] = w0[k], r->w_start[k] = ws[k];
    double theta0[TF_RP(TF_RMAX_K)];
    tf_robust_theta0(K, ws, theta0);
    static const char *key[2] = {"nonconvex", "end_to_end"};
    static const char *lab[2] = {"non-convex learned", "end to end"};
    r->lambda = o->lambda;
    int kb = -1; /* the train-chosen best single tracker (its row's tracker) */
    for (int i = 0; i < r->count; i++)
        if (!strcmp(r->m[i].key, "best_single")) kb = r->m[i].tracker;
    /* auto (-1) and global (2): the non-convex learned row only; on (1): end to end too */
    int rows = o->robust == 0 ? 0 : o->robust == 1 ? 2 : 1;
    /* the rows, then the global row again at each lambda of the sweep */
    for (int e = 0; e < rows + o->nsweep; e++) {
        int sw = e - rows; /* >= 0: a row of the sweep */
        tf_robust_opts ro;
        tf_robust_opts_default(&ro);
        ro.end_to_end = sw < 0 && e == 1;
        ro.lambda = sw < 0 ? o->lambda : o->sweep[sw];
        ro.seed = o->seed;
        ro.threads = o->threads;
        ro.verbose = o->verbose;
        ro.search = o->search;
        ro.loss_px = o->robust_loss_px;
        tf_robust_fit *fit = sw < 0 ? &r->robust[e] : &r->sweep[sw];
        if (tf_robust_train(q[0], train->count, q[1], val->count, theta0, &ro, fit, err, errlen))
            goto fail;
        char skey[32], slab[64];
        if (sw < 0) r->robust_rows = e + 1;
        else {
            r->sweep_lambda[sw] = ro.lambda;
            r->sweep_rows = sw + 1;
            snprintf(skey, sizeof skey, "nonconvex_lambda_%g", ro.lambda);
            snprintf(slab, sizeof slab, "non-convex, lambda %g", ro.lambda);
        }
        rfuse_t f = {test, q[2], fit->theta};
        if (tf_eval_method(r, sw < 0 ? key[e] : skey, sw < 0 ? lab[e] : slab, test, rfuse, &f,
                           o->threshold, fit->seconds, (long)fit->solves) < 0)
            goto oom;
        /* the curvature of H itself (lambda 0) at each test minimizer: where
           it is of the order of a lambda, the damping changes the derivative */
        fit->test_sigma = malloc(sizeof(double) * (size_t)(test->count ? test->count : 1));
        fit->test_refused = calloc((size_t)(test->count ? test->count : 1), sizeof(int));
        if (!fit->test_sigma || !fit->test_refused) goto oom;
        for (int i = 0; i < test->count; i++)
            fit->test_sigma[i] = tf_robust_curvature(&q[2][i], fit->theta, 0, &fit->test_refused[i]);
        if (e == 0 && kb >= 0 && o->referee &&
            referee_row(r, o, parts, q, fit->theta, kb, fit->seconds, (long)fit->solves, err, errlen))
            goto fail;
    }
    for (int j = 0; j < 3; j++) free_all(q[j], parts[j]->count);
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    for (int j = 0; j < 3; j++) free_all(q[j], parts[j]->count);
    return -1;
oom0:
    snprintf(err, errlen, "out of memory");
    return -1;
}
