/* tracker_fusion's non-convex energy (tf_robust.c): its gradient, band
 * Hessian and mixed derivative against differences (wb_check_energy), at
 * points where the Geman-McClure terms are indefinite; the parameter
 * gradient of the training loss (global weights, widths, smoothing, and the
 * per-frame model's beta) against differences of re-solves; the Viterbi
 * start against a brief wrong majority; the conversions and refusals. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lapacke.h>

#include "tf.h"
#include "tf_referee.h"
#include "tf_robust.h"
#include "wb_test.h"

static double urand(unsigned long long *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*s >> 11) / 9007199254740992.0;
}

/* T frames, K trackers: a target moving on a curve, box 40 x 60 px growing
   slowly; tracker k reports it with noise ~1.5 px, except that the trackers
   k >= K - n_bad jump to a distractor 5 box scales away in frames
   [bad_from, bad_to). truth_box[T*4] receives the target. Tracker 1 misses
   frame 2 when miss = 1. */
static void make_seq(int T, int K, int n_bad, int bad_from, int bad_to, int miss,
                     unsigned long long seed, double *box, unsigned char *m, double *truth) {
    unsigned long long s = seed;
    for (int t = 0; t < T; t++) {
        double cx = 100 + 3 * t + 10 * sin(0.2 * t), cy = 80 + 2 * t, w = 40 * (1 + 0.01 * t),
               h = 60 * (1 + 0.01 * t);
        truth[4 * t] = cx, truth[4 * t + 1] = cy, truth[4 * t + 2] = w, truth[4 * t + 3] = h;
        for (int k = 0; k < K; k++) {
            size_t i = (size_t)t * K + k;
            int bad = k >= K - n_bad && t >= bad_from && t < bad_to;
            double *b = box + 4 * i;
            b[0] = cx + (bad ? 250 : 0) + 3 * (urand(&s) - 0.5);
            b[1] = cy + (bad ? 10 : 0) + 3 * (urand(&s) - 0.5);
            b[2] = w * (bad ? 1.6 : 1) * exp(0.05 * (urand(&s) - 0.5));
            b[3] = h * exp(0.05 * (urand(&s) - 0.5));
            m[i] = !(miss && k == 1 && t == 2);
        }
    }
}

static void theta_test(int K, double *th) {
    double w0[TF_RMAX_K];
    for (int k = 0; k < K; k++) w0[k] = 0.5 + 0.3 * k;
    tf_robust_theta0(K, w0, th);
    for (int k = 0; k < K; k++) th[K + k] = log(0.2 + 0.15 * k); /* widths differ */
    th[2 * K] = log(0.7), th[2 * K + 1] = log(3.0), th[2 * K + 2] = log(1.3);
    for (int j = 0; j < TF_RF; j++) th[2 * K + 3 + j] = 0.1 * (j % 3) - 0.15; /* a model */
}

/* Gradient, band Hessian and mixed VJP against central differences, for
   videos of 1, 2, 3 and 12 frames, at the start plus an offset that puts
   some residuals beyond c/sqrt(3) (the indefinite part of Geman-McClure) */
static void robust_energy_derivatives_match_differences(void **st) {
    (void)st;
    static const int Ts[4] = {1, 2, 3, 12};
    for (int c = 0; c < 4; c++) {
        int T = Ts[c], K = 4;
        double *box = malloc(sizeof(double) * 4 * T * K), *tr = malloc(sizeof(double) * 4 * T);
        unsigned char *m = malloc((size_t)T * K);
        make_seq(T, K, 1, 0, T, T > 2, 7 + (unsigned long long)c, box, m, tr);
        double w0[4] = {1, 1, 1, 1}, th[TF_RP(4)];
        tf_rseq q;
        assert_int_equal(tf_rseq_init(&q, T, K, box, m, tr, w0), 0);
        theta_test(K, th);
        wb_energy e = tf_robust_energy(&q);
        assert_int_equal(e.n, 4 * T);
        assert_int_equal(e.kd, 4 * T - 1 < TF_RKD ? 4 * T - 1 : TF_RKD);
        double *x = malloc(sizeof(double) * 4 * T);
        tf_robust_start(&q, th, x);
        unsigned long long s = 99;
        int beyond = 0;
        for (int t = 0; t < T; t++) {
            x[4 * t] += 0.3 * (urand(&s) - 0.5), x[4 * t + 1] += 0.3 * (urand(&s) - 0.5);
            x[4 * t + 2] += 0.2 * (urand(&s) - 0.5), x[4 * t + 3] += 0.2 * (urand(&s) - 0.5);
            for (int k = 0; k < K; k++) { /* a residual in the concave part? */
                size_t i = (size_t)t * K + k;
                double dx = (x[4 * t] - q.ys[4 * i]) * q.is[t], dy = (x[4 * t + 1] - q.ys[4 * i + 1]) * q.is[t];
                double ck = exp(th[K + k]);
                beyond += m[i] && dx * dx + dy * dy > ck * ck / 3;
            }
        }
        assert_true(beyond > 0);
        wb_check_report rep;
        assert_int_equal(wb_check_energy(&e, NULL, x, th, &rep), WB_OK);
        assert_true(rep.value_grad_err < 1e-6);
        assert_true(rep.hess_band_err < 1e-6);
        assert_true(rep.mixed_vjp_err < 1e-6);
        free(x), free(box), free(tr), free(m);
        tf_rseq_free(&q);
    }
}

/* dL/dtheta by wb_implicit_vjp (lambda = 0) against central differences of
   L(x*(theta +- h e_j)), each re-solved from the same start to 1e-12: every
   parameter, the per-frame model's beta included */
static void robust_parameter_gradient_matches_resolves(void **st) {
    (void)st;
    int T = 30, K = 4, p = TF_RP(4);
    double box[4 * 30 * 4], tr[4 * 30];
    unsigned char m[30 * 4];
    make_seq(T, K, 1, 10, 20, 1, 3, box, m, tr);
    double w0[4] = {1, 0.8, 0.6, 0.5}, th[TF_RP(4)];
    tf_rseq q;
    assert_int_equal(tf_rseq_init(&q, T, K, box, m, tr, w0), 0);
    theta_test(K, th);
    wb_energy e = tf_robust_energy(&q);
    wb_settings s;
    wb_settings_default(&s);
    s.grad_tol = 1e-12;
    s.step_tol = 1e-15;
    s.lambda = 0;
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
    double x0[4 * 30], x[4 * 30], dl[4 * 30], g[TF_RP(4)];
    tf_robust_start(&q, th, x0);
    memcpy(x, x0, sizeof x);
    assert_true(wb_solve(sv, th, x, NULL) >= 0);
    tf_robust_loss(&q, x, dl);
    assert_int_equal(wb_implicit_vjp(sv, dl, g), WB_OK);
    double gmax = 0;
    for (int j = 0; j < p; j++) gmax = fmax(gmax, fabs(g[j]));
    assert_true(gmax > 1e-4);
    for (int j = 0; j < p; j++) {
        double h = 1e-5, Lpm[2];
        for (int sg = 0; sg < 2; sg++) {
            double t2[TF_RP(4)];
            memcpy(t2, th, sizeof t2);
            t2[j] += sg ? -h : h;
            memcpy(x, x0, sizeof x);
            assert_true(wb_solve(sv, t2, x, NULL) >= 0);
            Lpm[sg] = tf_robust_loss(&q, x, NULL);
        }
        double fd = (Lpm[0] - Lpm[1]) / (2 * h);
        wb_assert_close(g[j], fd, 1e-6 * gmax, 1e-4);
    }
    wb_solver_destroy(sv);
    tf_rseq_free(&q);
}

/* A wrong majority for 8 frames: 3 of 5 trackers jump together to a
   distractor 5 box scales away and come back. The per-frame median follows
   them; the Viterbi start (the jump there and back costs more than 8 frames
   of a 3-to-2 vote) and the fused trajectory stay on the target. */
static void robust_start_and_fusion_reject_a_brief_wrong_majority(void **st) {
    (void)st;
    int T = 40, K = 5;
    double box[4 * 40 * 5], tr[4 * 40];
    unsigned char m[40 * 5];
    make_seq(T, K, 3, 15, 23, 0, 11, box, m, tr);
    double w0[5] = {1, 1, 1, 1, 1}, th[TF_RP(5)], x[4 * 40], fused[4 * 40];
    tf_rseq q;
    assert_int_equal(tf_rseq_init(&q, T, K, box, m, tr, w0), 0);
    tf_robust_theta0(K, w0, th);
    /* the median of the reports is on the distractor in frame 18 */
    double v[5];
    for (int k = 0; k < K; k++) v[k] = box[4 * (18 * K + k)];
    int above = 0;
    for (int k = 0; k < K; k++) above += v[k] > tr[4 * 18] + 100;
    assert_int_equal(above, 3);
    tf_robust_start(&q, th, x);
    double box0[4 * 40];
    tf_robust_boxes(&q, x, box0);
    assert_int_equal(tf_robust_fuse(&q, th, fused), WB_OK);
    for (int t = 0; t < T; t++) {
        assert_true(hypot(box0[4 * t] - tr[4 * t], box0[4 * t + 1] - tr[4 * t + 1]) < 5);
        assert_true(hypot(fused[4 * t] - tr[4 * t], fused[4 * t + 1] - tr[4 * t + 1]) < 5);
        wb_assert_close(fused[4 * t + 2], tr[4 * t + 2], 0, 0.05);
        wb_assert_close(fused[4 * t + 3], tr[4 * t + 3], 0, 0.05);
    }
    tf_rseq_free(&q);
}

/* state <-> boxes, the scale, a frame without reports, and the refusals */
static void robust_sequence_conversions_and_refusals(void **st) {
    (void)st;
    int T = 6, K = 3;
    double box[4 * 6 * 3], tr[4 * 6], w0[3] = {1, 1, 1};
    unsigned char m[6 * 3];
    make_seq(T, K, 0, 0, 0, 0, 5, box, m, tr);
    for (int k = 0; k < K; k++) m[3 * K + k] = 0; /* frame 3: no report */
    tf_rseq q;
    assert_int_equal(tf_rseq_init(&q, T, K, box, m, tr, w0), 0);
    /* S = sqrt(w h) of frame 0's median box */
    double ws[3], hs[3];
    for (int k = 0; k < K; k++) ws[k] = box[4 * k + 2], hs[k] = box[4 * k + 3];
    for (int a = 0; a < 3; a++) /* sort both */
        for (int b = a + 1; b < 3; b++) {
            if (ws[b] < ws[a]) { double t = ws[a]; ws[a] = ws[b]; ws[b] = t; }
            if (hs[b] < hs[a]) { double t = hs[a]; hs[a] = hs[b]; hs[b] = t; }
        }
    wb_assert_close(q.S, sqrt(ws[1] * hs[1]), 0, 1e-12);
    double th[TF_RP(3)], x[4 * 6], out[4 * 6];
    tf_robust_theta0(K, w0, th);
    tf_robust_start(&q, th, x);
    for (int i = 0; i < 4 * T; i++) assert_true(isfinite(x[i]));
    /* frame 3 takes frame 4's value */
    for (int c = 0; c < 4; c++) wb_assert_close(x[12 + c], x[16 + c], 0, 0);
    tf_robust_boxes(&q, x, out);
    for (int t = 0; t < T; t++) {
        wb_assert_close(out[4 * t], x[4 * t] * q.S, 0, 1e-15);
        wb_assert_close(out[4 * t + 2], exp(x[4 * t + 2]), 0, 1e-15);
    }
    /* the loss is zero-ish at the truth: sqrt(1e-4) per frame */
    double xt[4 * 6];
    memcpy(xt, q.truth, sizeof xt);
    wb_assert_close(tf_robust_loss(&q, xt, NULL), 1e-2, 0, 1e-12);
    tf_rseq_free(&q);
    /* refused: no report at all, K out of range; free stays safe */
    memset(m, 0, sizeof m);
    assert_int_equal(tf_rseq_init(&q, T, K, box, m, tr, w0), -1);
    tf_rseq_free(&q);
    assert_int_equal(tf_rseq_init(&q, T, TF_RMAX_K + 1, box, m, tr, w0), -1);
    tf_rseq_free(&q);
}


/* Training with a validation sequence longer than every training sequence:
   the validation loss is measured at the start and every epoch (the trainer
   is sized for it), the theta kept is the start or an epoch's with the
   least of them (recomputed here by a solve) */
static void robust_training_validates_a_longer_sequence(void **st) {
    (void)st;
    int K = 4, Ts[3] = {20, 24, 60};
    tf_rseq q[3];
    double w0[4] = {1, 1, 1, 1};
    for (int j = 0; j < 3; j++) {
        int T = Ts[j];
        double *box = malloc(sizeof(double) * 4 * T * K), *tr = malloc(sizeof(double) * 4 * T);
        unsigned char *m = malloc((size_t)T * K);
        make_seq(T, K, 1, 5, 12, 0, 20 + (unsigned long long)j, box, m, tr);
        assert_int_equal(tf_rseq_init(&q[j], T, K, box, m, tr, w0), 0);
        free(box), free(tr), free(m);
    }
    double th0[TF_RP(4)];
    tf_robust_theta0(K, w0, th0);
    tf_robust_opts o;
    tf_robust_opts_default(&o);
    o.epochs = 4;
    o.batch = 2;
    o.threads = 1;
    o.lr = 0.05;
    tf_robust_fit fit;
    char err[256] = "";
    assert_int_equal(tf_robust_train(q, 2, &q[2], 1, th0, &o, &fit, err, sizeof err), 0);
    assert_true(fit.best_epoch >= -1 && fit.best_epoch < 4); /* -1: the start */
    double moved = 0;
    for (int j = 0; j < TF_RP(4); j++) moved += fabs(fit.theta[j] - th0[j]);
    assert_true(moved > 0);
    for (int e = 0; e < 4; e++) assert_true(isfinite(fit.val_loss[e]) && isfinite(fit.epoch_loss[e]));
    /* the kept validation loss, recomputed */
    double box[4 * 60], x[4 * 60];
    assert_true(tf_robust_fuse(&q[2], fit.theta, box) >= 0);
    for (int t = 0; t < 60; t++) {
        x[4 * t] = box[4 * t] / q[2].S, x[4 * t + 1] = box[4 * t + 1] / q[2].S;
        x[4 * t + 2] = log(box[4 * t + 2]), x[4 * t + 3] = log(box[4 * t + 3]);
    }
    double kept = fit.best_epoch < 0 ? fit.val_loss0 : fit.val_loss[fit.best_epoch];
    wb_assert_close(tf_robust_loss(&q[2], x, NULL), kept, 1e-9, 1e-6);
    for (int e = 0; e < 4; e++) assert_true(kept <= fit.val_loss[e] && kept <= fit.val_loss0);
    tf_robust_fit_free(&fit);
    for (int j = 0; j < 3; j++) tf_rseq_free(&q[j]);
}

/* The basin search's score of the start path against a brute force over
   every path: K = 3 trackers scattered around the truth, T = 6 frames (3^6
   paths). Path cost (tf_robust.c): sum_t sum_k a_k r2/(r2 + c_k^2) at the
   chosen report + 2 min(is_t^2 |jump|^2, 16) between frames (the start's
   GAMMA and JCAP); score: the mean over frames of (IoU + [error <= 20 px]) / 2
   of the chosen reports. */
static void robust_search_scores_the_best_path(void **st) {
    (void)st;
    enum { T = 6, K = 3 };
    double box[4 * T * K], tr[4 * T], w0[K] = {1, 0.6, 0.35};
    unsigned char m[T * K];
    unsigned long long sd = 99;
    for (int t = 0; t < T; t++) {
        tr[4 * t] = 200 + 4 * t, tr[4 * t + 1] = 150 - 3 * t, tr[4 * t + 2] = 40, tr[4 * t + 3] = 50;
        for (int k = 0; k < K; k++) {
            double *b = box + 4 * (t * K + k);
            b[0] = tr[4 * t] + 60 * (urand(&sd) - 0.5), b[1] = tr[4 * t + 1] + 60 * (urand(&sd) - 0.5);
            b[2] = 40 * exp(0.6 * (urand(&sd) - 0.5)), b[3] = 50 * exp(0.6 * (urand(&sd) - 0.5));
            m[t * K + k] = 1;
        }
    }
    tf_rseq q;
    assert_int_equal(tf_rseq_init(&q, T, K, box, m, tr, w0), 0);
    double th[TF_RP(K)];
    tf_robust_theta0(K, w0, th);
    th[K + 1] = log(0.5); /* widths differ */
    /* brute force */
    double best = INFINITY, best_score = NAN;
    int path[T];
    for (int code = 0; code < 729; code++) {
        int c = code;
        for (int t = 0; t < T; t++) path[t] = c % K, c /= K;
        double cost = 0, score = 0;
        for (int t = 0; t < T; t++) {
            const double *yj = q.ys + 4 * (t * K + path[t]);
            double is2 = q.is[t] * q.is[t];
            for (int k = 0; k < K; k++) {
                const double *yk = q.ys + 4 * (t * K + k);
                double r2 = is2 * (pow(yj[0] - yk[0], 2) + pow(yj[1] - yk[1], 2)) +
                            pow(yj[2] - yk[2], 2) + pow(yj[3] - yk[3], 2); /* g = 1 */
                double c2 = exp(2 * th[K + k]);
                cost += exp(th[k]) * r2 / (r2 + c2);
            }
            if (t > 0) {
                const double *yp = q.ys + 4 * ((t - 1) * K + path[t - 1]);
                double j2 = is2 * (pow(yj[0] - yp[0], 2) + pow(yj[1] - yp[1], 2));
                cost += 2 * (j2 < 16 ? j2 : 16);
            }
            const double *b = box + 4 * (t * K + path[t]), *g = tr + 4 * t;
            double ix = fmin(b[0] + b[2] / 2, g[0] + g[2] / 2) - fmax(b[0] - b[2] / 2, g[0] - g[2] / 2);
            double iy = fmin(b[1] + b[3] / 2, g[1] + g[3] / 2) - fmax(b[1] - b[3] / 2, g[1] - g[3] / 2);
            double in = fmax(ix, 0) * fmax(iy, 0), iou = in / (b[2] * b[3] + g[2] * g[3] - in);
            score += 0.5 * (iou + (hypot(b[0] - g[0], b[1] - g[1]) <= 20)) / T;
        }
        if (cost < best) best = cost, best_score = score;
    }
    double before, after;
    int evals;
    assert_int_equal(tf_robust_search(&q, 1, NULL, 0, th, 20, &before, &after, &evals), 0);
    wb_assert_close(before, best_score, 1e-6, 1e-6); /* float V: 1e-7 relative */
    assert_true(after >= before && evals > 1);
    tf_rseq_free(&q);
}

/* A majority that is wrong for long (3 of 5 trackers on a distractor in
   frames 5..94 of 100): at equal weights the start path follows it (the
   jump there and back costs less than the extra vote over 90 frames); the
   search on one such training video moves the weights so that the start
   follows the two right trackers, on another video of the same kind too. */
static void robust_search_lets_a_right_minority_win(void **st) {
    (void)st;
    enum { T = 100, K = 5 };
    double *box = malloc(sizeof(double) * 4 * T * K * 2), tr[2][4 * T], w0[K] = {1, 1, 1, 1, 1};
    unsigned char m[2][T * K];
    tf_rseq q[2];
    for (int j = 0; j < 2; j++) {
        make_seq(T, K, 3, 5, 95, 0, 40 + (unsigned long long)j, box + 4 * T * K * j, m[j], tr[j]);
        assert_int_equal(tf_rseq_init(&q[j], T, K, box + 4 * T * K * j, m[j], tr[j], w0), 0);
    }
    double th0[TF_RP(K)], th[TF_RP(K)], x[4 * T];
    tf_robust_theta0(K, w0, th0);
    memcpy(th, th0, sizeof th);
    int lost0 = 0, lost = 0, evals;
    tf_robust_start(&q[1], th0, x);
    for (int t = 0; t < T; t++) lost0 += fabs(x[4 * t] * q[1].S - tr[1][4 * t]) > 20;
    double before, after;
    assert_int_equal(tf_robust_search(&q[0], 1, NULL, 0, th, 20, &before, &after, &evals), 0);
    assert_true(lost0 >= 80); /* the majority wins at equal weights */
    assert_true(after > before + 0.3);
    tf_robust_start(&q[1], th, x);
    for (int t = 0; t < T; t++) lost += fabs(x[4 * t] * q[1].S - tr[1][4 * t]) > 20;
    assert_int_equal(lost, 0);
    for (int k = K; k < TF_RP(K); k++) wb_assert_close(th[k], th0[k], 0, 0); /* only weights */
    for (int j = 0; j < 2; j++) tf_rseq_free(&q[j]);
    free(box);
}

/* The start's vote weights (tf_vote.c): the ranking objective's gradient
   against central differences; its constrained minimizer by the optimality
   conditions and a grid around it; and on hand-made sequences, a pair of
   trackers that fail together against one that is right where they fail:
   the fit gives the lone tracker more than the pair's votes together, so
   the start follows it, where the P@20 weights let the pair win. */
static void vote_fit_ranks_the_right_minority_first(void **st) {
    (void)st;
    enum { NP = 40, KV = 4 };
    double D[NP * KV], w[NP], a[KV], a0[KV] = {1, 0.5, 0.8, 0.002}, g[KV];
    unsigned long long r = 11;
    for (int p = 0; p < NP; p++) {
        for (int k = 0; k < KV; k++) D[p * KV + k] = 2 * urand(&r) - 1;
        D[p * KV + 3] = fabs(D[p * KV + 3]); /* tracker 3 is always against: its bound holds */
        w[p] = 0.01 + urand(&r) / NP;
    }
    double ap[KV] = {0.7, 1.3, 0.2, 0.9};
    tf_vote_objective(D, w, NP, KV, ap, a0, g);
    for (int k = 0; k < KV; k++) {
        double h = 1e-6, keep = ap[k];
        ap[k] = keep + h;
        double fp = tf_vote_objective(D, w, NP, KV, ap, a0, NULL);
        ap[k] = keep - h;
        double fm = tf_vote_objective(D, w, NP, KV, ap, a0, NULL);
        ap[k] = keep;
        wb_assert_close(g[k], (fp - fm) / (2 * h), 1e-9, 1e-6);
    }
    int sweeps = 0;
    assert_int_equal(tf_vote_solve(D, w, NP, KV, a0, a, &sweeps), 0);
    assert_true(sweeps > 0 && sweeps < 200);
    double F = tf_vote_objective(D, w, NP, KV, a, a0, g);
    for (int k = 0; k < KV; k++) {
        assert_true(a[k] >= 1e-3);
        if (a[k] > 1e-3 + 1e-9) assert_true(fabs(g[k]) < 1e-7); /* free: gradient 0 */
        else assert_true(g[k] > -1e-9);                        /* at the bound: pushes out */
    }
    assert_true(a[3] == 1e-3);
    for (int c = 0; c < 81; c++) { /* 3^4 points of a box of +-0.02, inside the bound */
        double b[KV];
        int cc = c;
        for (int k = 0; k < KV; k++, cc /= 3) b[k] = fmax(a[k] + 0.02 * (cc % 3 - 1), 1e-3);
        assert_true(tf_vote_objective(D, w, NP, KV, b, a0, NULL) >= F - 1e-15);
    }
    /* bad input: refused, a untouched */
    double keep[KV];
    memcpy(keep, a, sizeof keep);
    D[5] = NAN;
    assert_int_equal(tf_vote_solve(D, w, NP, KV, a0, a, NULL), -1);
    D[5] = 0, w[3] = -1;
    assert_int_equal(tf_vote_solve(D, w, NP, KV, a0, a, NULL), -1);
    assert_int_equal(tf_vote_solve(D, w, NP, 0, a0, a, NULL), -1);
    for (int k = 0; k < KV; k++) assert_true(a[k] == keep[k]);

    /* sequences: trackers 1 and 2 follow a distractor together in frames
       [10, 90) of a 100-frame video (tracker 0 stays); all agree elsewhere */
    enum { T = 100, K = 3 };
    double *box = malloc(sizeof(double) * 4 * T * K * 2), tr[2][4 * T], w0[K] = {1, 1, 1}, ws[K];
    unsigned char m[2][T * K];
    tf_rseq q[2];
    for (int j = 0; j < 2; j++) {
        make_seq(T, K, 2, 10, 90, 0, 70 + (unsigned long long)j, box + 4 * T * K * j, m[j], tr[j]);
        assert_int_equal(tf_rseq_init(&q[j], T, K, box + 4 * T * K * j, m[j], tr[j], w0), 0);
    }
    tf_vote_info info;
    assert_int_equal(tf_robust_vote_fit(&q[0], 1, NULL, 0, 20, w0, ws, &info), 0);
    assert_int_equal(info.pairs, 2 * 80); /* 80 frames, two misses each */
    assert_true(info.loss_after < info.loss_before);
    assert_true(ws[0] > ws[1] + ws[2]); /* the lone tracker outvotes the pair */
    double th[TF_RP(K)], x[4 * T];
    int lost0 = 0, lost = 0;
    tf_robust_theta0(K, w0, th);
    tf_robust_start(&q[1], th, x);
    for (int t = 0; t < T; t++) lost0 += fabs(x[4 * t] * q[1].S - tr[1][4 * t]) > 20;
    tf_robust_theta0(K, ws, th);
    tf_robust_start(&q[1], th, x);
    for (int t = 0; t < T; t++) lost += fabs(x[4 * t] * q[1].S - tr[1][4 * t]) > 20;
    assert_true(lost0 >= 75); /* equal weights: the pair wins */
    assert_int_equal(lost, 0);
    /* the same data as validation only; and refusals */
    double ws2[K];
    assert_int_equal(tf_robust_vote_fit(NULL, 0, &q[0], 1, 20, w0, ws2, NULL), 0);
    for (int k = 0; k < K; k++) wb_assert_close(ws2[k], ws[k], 1e-12, 0);
    assert_int_equal(tf_robust_vote_fit(NULL, 0, NULL, 0, 20, w0, ws2, NULL), -1);
    assert_int_equal(tf_robust_vote_fit(&q[0], 1, NULL, 0, 0, w0, ws2, NULL), -1);
    double *keep_truth = q[1].truth;
    q[1].truth = NULL;
    assert_int_equal(tf_robust_vote_fit(&q[0], 2, NULL, 0, 20, w0, ws2, NULL), -1);
    q[1].truth = keep_truth;
    for (int j = 0; j < 2; j++) tf_rseq_free(&q[j]);
    free(box);
}

/* tf_robust_curvature (the sigma of H column of --per-sequence) against the
   smallest eigenvalue of the dense Hessian at the same minimizer (LAPACK
   dsyev): the curvature test estimates 1 / ||(H + lambda I)^-1||_1 from
   below by the 1-norm estimator, so sigma + lambda lies within sqrt(n) of
   that eigenvalue (allowing the estimator a factor 3 from its norm) */
static void robust_curvature_matches_the_smallest_eigenvalue(void **st) {
    (void)st;
    enum { T = 12, K = 4, N = 4 * T };
    double box[4 * T * K], tr[4 * T], w0[K] = {1, 1, 1, 1}, th[TF_RP(K)], x[N];
    unsigned char m[T * K];
    make_seq(T, K, 1, 3, 8, 1, 21, box, m, tr);
    tf_rseq q;
    assert_int_equal(tf_rseq_init(&q, T, K, box, m, tr, w0), 0);
    theta_test(K, th);
    for (int c = 0; c < 2; c++) {
        double lambda = c ? 0.5 : 0;
        int refused = -1;
        double sigma = tf_robust_curvature(&q, th, lambda, &refused);
        assert_int_equal(refused, 0);
        assert_true(isfinite(sigma));
        /* the same minimizer: the start, then the default solve */
        wb_energy e = tf_robust_energy(&q);
        wb_solver *sv = NULL;
        assert_int_equal(wb_solver_create(&sv, &e, NULL), WB_OK);
        tf_robust_start(&q, th, x);
        assert_true(wb_solve(sv, th, x, NULL) >= 0);
        wb_solver_destroy(sv);
        int kd = e.kd;
        double *AB = calloc((size_t)(kd + 1) * N, sizeof(double)), *H = calloc((size_t)N * N, sizeof(double)), ev[N];
        assert_int_equal(e.hess_band(e.user, x, th, AB), 0);
        for (int j = 0; j < N; j++)
            for (int i = j; i < N && i <= j + kd; i++)
                H[i * N + j] = H[j * N + i] = AB[(i - j) + j * (kd + 1)] + (i == j ? lambda : 0);
        assert_int_equal(LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', N, H, N, ev), 0);
        double lmin = ev[0], sig = sigma + lambda;
        assert_true(lmin > 0);
        assert_true(sig >= lmin / sqrt((double)N) * (1 - 1e-9));
        assert_true(sig <= 3 * sqrt((double)N) * lmin);
        free(AB), free(H);
    }
    /* without truth: a vector of ones for the derivative, the same test */
    double *keep = q.truth;
    q.truth = NULL;
    int refused = -1;
    assert_true(isfinite(tf_robust_curvature(&q, th, 0, &refused)));
    assert_int_equal(refused, 0);
    q.truth = keep;
    tf_rseq_free(&q);
}

/* --lambda-sweep through tf_run: the sweep's row at the run's own lambda is
   the non-convex learned row again (same training: the same theta and
   held-out figures), and the rows at lambda 0 and 10 are trained with their
   lambda (the curvature of H + lambda I is larger at lambda 10) */
static void lambda_sweep_retrains_the_nonconvex_row(void **st) {
    (void)st;
    tf_opts o;
    tf_opts_default(&o);
    o.gen.sequences = 6, o.gen.min_frames = 30, o.gen.max_frames = 40;
    o.epochs = 1, o.threads = 1, o.verbose = 0, o.robust = 2, o.referee = 1;
    o.sweep[0] = 0, o.sweep[1] = o.lambda, o.sweep[2] = 10, o.nsweep = 3;
    tf_result r;
    char err[256] = "";
    assert_int_equal(tf_run(&o, &r, err, sizeof err), 0);
    assert_int_equal(r.robust_rows, 1);
    assert_int_equal(r.sweep_rows, 3);
    const tf_method *row = NULL, *again = NULL;
    int zero = 0, ten = 0;
    for (int i = 0; i < r.count; i++) {
        if (!strcmp(r.m[i].key, "nonconvex")) row = &r.m[i];
        if (!strcmp(r.m[i].key, "nonconvex_lambda_0.001")) again = &r.m[i];
        zero += !strcmp(r.m[i].key, "nonconvex_lambda_0");
        ten += !strcmp(r.m[i].key, "nonconvex_lambda_10");
    }
    assert_non_null(row);
    assert_non_null(again);
    assert_int_equal(zero + ten, 2);
    /* the referee row (--referee on): when its model is not used (its
       switches do not lower the training error) it is the fusion itself */
    const tf_method *ref = NULL;
    for (int i = 0; i < r.count; i++)
        if (!strcmp(r.m[i].key, "nonconvex_referee")) ref = &r.m[i];
    assert_non_null(ref);
    assert_int_equal(r.ref_done, 1);
    assert_true(r.ref_switched <= r.ref_segs && r.ref_test_switched <= r.ref_test_segs);
    assert_int_equal(r.ref_used, r.ref_gain > 0);
    if (!r.ref_used) {
        assert_int_equal(r.ref_test_switched, 0);
        wb_assert_close(ref->test.cle, row->test.cle, 0, 0);
        wb_assert_close(ref->test.auc, row->test.auc, 0, 0);
    }
    wb_assert_close(again->test.cle, row->test.cle, 0, 0);
    wb_assert_close(again->test.auc, row->test.auc, 0, 0);
    for (int j = 0; j < TF_RP(r.K); j++) wb_assert_close(r.sweep[1].theta[j], r.robust[0].theta[j], 0, 0);
    /* sigma = 1 / est ||(H + lambda I)^-1||_1 lies within sqrt(n) of the
       smallest eigenvalue (n = 4T <= 160): at lambda 10 above the curvature
       at lambda 0 and at least 10 / sqrt(160) where H is positive definite */
    assert_true(r.sweep[2].checked > 0 && r.sweep[2].sigma_min >= 10 / sqrt(160.0));
    assert_true(r.sweep[0].sigma_min < r.sweep[2].sigma_min);
    /* the per-test-sequence curvature: the same theta gives the same
       figures, and every row has them */
    for (int e = 0; e < 3; e++) assert_non_null(r.sweep[e].test_sigma);
    assert_non_null(r.robust[0].test_sigma);
    for (int i = 0; i < r.test_seqs; i++) {
        assert_int_equal(r.sweep[1].test_refused[i], r.robust[0].test_refused[i]);
        if (isfinite(r.robust[0].test_sigma[i]))
            wb_assert_close(r.sweep[1].test_sigma[i], r.robust[0].test_sigma[i], 0, 0);
        else assert_true(isnan(r.sweep[1].test_sigma[i]));
    }
    tf_result_free(&r);
}

/* the px loss: s_t times the box-scale loss per frame, and its gradient
   against central differences */
static void robust_px_loss_matches_differences(void **st) {
    (void)st;
    int T = 5, K = 3;
    double box[4 * 5 * 3], tr[4 * 5], w0[3] = {1, 1, 1};
    unsigned char m[5 * 3];
    make_seq(T, K, 1, 1, 3, 0, 11, box, m, tr);
    tf_rseq q;
    assert_int_equal(tf_rseq_init(&q, T, K, box, m, tr, w0), 0);
    double x[4 * 5], dl[4 * 5], d1[4 * 5];
    for (int t = 0; t < T; t++)
        for (int c = 0; c < 4; c++) x[4 * t + c] = q.truth[4 * t + c] + 0.1 * sin(3.0 * t + c);
    double L = tf_robust_loss_px(&q, x, dl), Lnull = tf_robust_loss_px(&q, x, NULL);
    wb_assert_close(L, Lnull, 0, 1e-14);
    /* per frame: s_t times the scale loss of that frame alone (T = 1 views) */
    double sum = 0;
    tf_robust_loss(&q, x, d1);
    for (int t = 0; t < T; t++) {
        double e = 0, w[4] = {q.tis[t] * q.tis[t], q.tis[t] * q.tis[t], 0.5, 0.5};
        for (int c = 0; c < 4; c++) e += w[c] * pow(x[4 * t + c] - q.truth[4 * t + c], 2);
        sum += q.S / q.tis[t] * sqrt(e + 1e-4) / T;
        /* the gradients differ by the factor s_t frame by frame */
        for (int c = 0; c < 4; c++) wb_assert_close(dl[4 * t + c], q.S / q.tis[t] * d1[4 * t + c], 1e-15, 1e-12);
    }
    wb_assert_close(L, sum, 0, 1e-12);
    for (int i = 0; i < 4 * T; i++) {
        double h = 1e-6, keep = x[i];
        x[i] = keep + h;
        double lp = tf_robust_loss_px(&q, x, NULL);
        x[i] = keep - h;
        double lm = tf_robust_loss_px(&q, x, NULL);
        x[i] = keep;
        wb_assert_close(dl[i], (lp - lm) / (2 * h), 1e-7, 1e-5);
    }
    tf_rseq_free(&q);
}

/* the referee's objective: its gradient against differences; its fit
   against the 1-D closed form (a constant feature only: sigmoid(b) +
   ridge b = W+/W) and, with every feature, against a brute-force grid
   around the fit */
static void referee_fit_matches_closed_form_and_brute_force(void **st) {
    (void)st;
    tf_ref_seg seg[12];
    unsigned long long r = 3;
    for (int i = 0; i < 12; i++) {
        seg[i].t0 = i, seg[i].t1 = i + 1;
        seg[i].phi[0] = 1;
        for (int j = 1; j < TF_REF_F; j++) seg[i].phi[j] = 2 * urand(&r) - 1;
        seg[i].delta = (urand(&r) - 0.4) * (1 + 5 * urand(&r));
    }
    double beta[TF_REF_F], g[TF_REF_F];
    for (int j = 0; j < TF_REF_F; j++) beta[j] = 0.3 * j - 0.2;
    tf_ref_objective(seg, 12, 0.05, beta, g);
    for (int j = 0; j < TF_REF_F; j++) {
        double h = 1e-6, keep = beta[j];
        beta[j] = keep + h;
        double jp = tf_ref_objective(seg, 12, 0.05, beta, NULL);
        beta[j] = keep - h;
        double jm = tf_ref_objective(seg, 12, 0.05, beta, NULL);
        beta[j] = keep;
        wb_assert_close(g[j], (jp - jm) / (2 * h), 1e-9, 1e-6);
    }
    /* the fit: gradient zero, and no point of a grid around it is lower */
    int it = 0;
    assert_int_equal(tf_ref_fit(seg, 12, 0.05, beta, &it), 0);
    assert_true(it > 0);
    double J = tf_ref_objective(seg, 12, 0.05, beta, g);
    for (int j = 0; j < TF_REF_F; j++) assert_true(fabs(g[j]) < 1e-9);
    for (int c = 0; c < 81; c++) { /* 3^4 corners of a box of +-0.05 */
        double b2[TF_REF_F];
        int cc = c;
        for (int j = 0; j < TF_REF_F; j++, cc /= 3) b2[j] = beta[j] + 0.05 * (cc % 3 - 1);
        assert_true(tf_ref_objective(seg, 12, 0.05, b2, NULL) >= J - 1e-15);
    }
    /* a constant feature only: the 1-D equation, solved by bisection */
    double Wp = 0, W = 0;
    for (int i = 0; i < 12; i++) {
        for (int j = 1; j < TF_REF_F; j++) seg[i].phi[j] = 0;
        W += fabs(seg[i].delta);
        if (seg[i].delta > 0) Wp += fabs(seg[i].delta);
    }
    assert_int_equal(tf_ref_fit(seg, 12, 0.05, beta, NULL), 0);
    double lo = -50, hi = 50;
    for (int k = 0; k < 200; k++) {
        double mid = 0.5 * (lo + hi);
        if (1 / (1 + exp(-mid)) + 0.05 * mid - Wp / W > 0) hi = mid;
        else lo = mid;
    }
    wb_assert_close(beta[0], 0.5 * (lo + hi), 1e-9, 0);
    for (int j = 1; j < TF_REF_F; j++) wb_assert_close(beta[j], 0, 1e-12, 0);
    /* no segments: beta = 0 (the fusion kept); bad input refused */
    assert_int_equal(tf_ref_fit(NULL, 0, 0.05, beta, NULL), 0);
    for (int j = 0; j < TF_REF_F; j++) assert_true(beta[j] == 0);
    assert_int_equal(tf_ref_fit(seg, 12, 0, beta, NULL), -1);
    seg[3].phi[1] = NAN;
    assert_int_equal(tf_ref_fit(seg, 12, 0.05, beta, NULL), -1);
}

/* segments, their features and delta, and the decision, on a hand-made
   sequence: 3 trackers at the truth, B parts from it in frames [2, 5) and
   [7, 8), the fused F sits on the truth */
static void referee_segments_by_hand(void **st) {
    (void)st;
    int T = 10, K = 3;
    double box[4 * 10 * 3], tr[4 * 10], w0[3] = {1, 2, 1};
    unsigned char m[10 * 3];
    make_seq(T, K, 0, 0, 0, 0, 13, box, m, tr);
    for (int i = 0; i < T * K; i++) /* exact reports: r2 = 0 at the truth */
        for (int c = 0; c < 4; c++) box[4 * i + c] = tr[4 * (i / K) + c];
    tf_rseq q;
    assert_int_equal(tf_rseq_init(&q, T, K, box, m, tr, w0), 0);
    double th[TF_RP(3)], F[40], B[40];
    tf_robust_theta0(K, w0, th);
    memcpy(F, tr, sizeof F);
    memcpy(B, tr, sizeof B);
    for (int t = 2; t < 5; t++) B[4 * t] += 30; /* 30 px apart: > 20 */
    B[4 * 7 + 1] -= 25;
    B[4 * 8] += 15; /* 15 px: not a segment */
    tf_ref_seg *seg = NULL;
    int n = 0;
    assert_int_equal(tf_ref_segments(&q, th, F, B, 20, 1, &seg, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(seg[0].t0, 2);
    assert_int_equal(seg[0].t1, 5);
    assert_int_equal(seg[1].t0, 7);
    assert_int_equal(seg[1].t1, 8);
    /* every report at F: S(F) = 1; at B (centre off by 30 px, in units of the
       frame's box scale s_t): psi = c^2 / (r2 + c^2), c = 0.3, the same for
       every tracker, so the weighted and unweighted supports agree */
    double c2 = 0.09, acc = 0;
    for (int t = 2; t < 5; t++) {
        double r2 = pow(30 / sqrt(tr[4 * t + 2] * tr[4 * t + 3]), 2);
        acc += 1 - c2 / (r2 + c2);
    }
    wb_assert_close(seg[0].phi[0], 1, 0, 0);
    wb_assert_close(seg[0].phi[1], acc / 3, 1e-12, 1e-9);
    wb_assert_close(seg[0].phi[2], acc / 3, 1e-12, 1e-9);
    wb_assert_close(seg[0].phi[3], log1p(3 / 30.0), 0, 1e-14);
    /* delta: F is at the truth, B 30 px off in 3 frames of 10 */
    wb_assert_close(seg[0].delta, -30.0 * 3 / T, 1e-9, 0);
    wb_assert_close(seg[1].delta, -25.0 / T, 1e-9, 0);
    /* the decision: beta . phi > 0 switches to B, only there */
    double beta[TF_REF_F] = {0};
    beta[TF_REF_F - 1] = 1; /* u = log(1 + len / 30) > 0: both switch */
    double G[40];
    memcpy(G, F, sizeof G);
    assert_int_equal(tf_ref_apply(seg, n, beta, B, G), 2);
    for (int i = 0; i < 40; i++) wb_assert_close(G[i], (i / 4 >= 2 && i / 4 < 5) || i / 4 == 7 ? B[i] : F[i], 0, 0);
    beta[0] = -log1p(2 / 30.0); /* only the 3-frame segment */
    memcpy(G, F, sizeof G);
    assert_int_equal(tf_ref_apply(seg, n, beta, B, G), 1);
    wb_assert_close(G[4 * 7 + 1], F[4 * 7 + 1], 0, 0);
    free(seg);
    /* without truth: delta NaN; bad arguments refused */
    assert_int_equal(tf_ref_segments(&q, th, F, B, 20, 0, &seg, &n), 0);
    assert_true(n == 2 && isnan(seg[0].delta));
    free(seg);
    assert_int_equal(tf_ref_segments(&q, th, F, B, 0, 0, &seg, &n), -1);
    assert_true(seg == NULL && n == 0);
    tf_rseq_free(&q);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(robust_energy_derivatives_match_differences),
        cmocka_unit_test(robust_parameter_gradient_matches_resolves),
        cmocka_unit_test(robust_start_and_fusion_reject_a_brief_wrong_majority),
        cmocka_unit_test(robust_sequence_conversions_and_refusals),
        cmocka_unit_test(robust_training_validates_a_longer_sequence),
        cmocka_unit_test(robust_search_scores_the_best_path),
        cmocka_unit_test(robust_search_lets_a_right_minority_win),
        cmocka_unit_test(lambda_sweep_retrains_the_nonconvex_row),
        cmocka_unit_test(robust_px_loss_matches_differences),
        cmocka_unit_test(referee_fit_matches_closed_form_and_brute_force),
        cmocka_unit_test(referee_segments_by_hand),
        cmocka_unit_test(vote_fit_ranks_the_right_minority_first),
        cmocka_unit_test(robust_curvature_matches_the_smallest_eigenvalue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
