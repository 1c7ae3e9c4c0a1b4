/* Data sets, multi-start evaluation and the training run. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "pose.h"

#define SWEEP 12 /* yaw angles ranked for the starts */

double pose_now_s(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int pose_set_init(pose_set *s, const pose_model *m, const pose_camera *cam,
                  const pose_frame *frames, int count) {
    s->count = count;
    s->pb = calloc((size_t)(count > 0 ? count : 1), sizeof(pose_problem));
    if (!s->pb) return -1;
    for (int i = 0; i < count; i++) {
        s->pb[i].model = m;
        s->pb[i].cam = cam;
        s->pb[i].frame = &frames[i];
    }
    return 0;
}

void pose_set_free(pose_set *s) {
    if (!s) return;
    free(s->pb);
    s->pb = NULL;
    s->count = 0;
}

static int ds_energy(void *u, int i, wb_energy *e) {
    pose_set *s = u;
    *e = pose_energy(&s->pb[i]);
    return 0;
}
/* The trainer's start callback does not see w: the yaw sweep is ranked at
   the untrained w. Later solves warm-start from the last minimizer. */
static int ds_start(void *u, int i, double *x0) {
    pose_set *s = u;
    return pose_starts(&s->pb[i], NULL, SWEEP, 1, x0) == 1 ? 0 : 1;
}
static int ds_loss(void *u, int i, const double *x, double *l, double *dl) {
    pose_set *s = u;
    *l = pose_loss(&s->pb[i], x, dl);
    return 0;
}

wb_dataset pose_dataset(pose_set *s) {
    wb_dataset d;
    memset(&d, 0, sizeof d);
    d.count = s->count;
    d.user = s;
    d.energy = ds_energy;
    d.start = ds_start;
    d.loss = ds_loss;
    return d;
}

void pose_solver_settings(wb_settings *s) {
    wb_settings_default(s);
    s->max_iter = 100;
    s->grad_tol = 1e-7;
}

int pose_evaluate(const pose_set *s, const double *w, int nstarts, int threads,
                  pose_eval *out, double *pred, char *msg, size_t len) {
    memset(out, 0, sizeof *out);
    if (s->count < 1 || nstarts < 1) {
        snprintf(msg, len, "pose_evaluate: empty set or nstarts < 1");
        return WB_EINVAL;
    }
    double t0 = pose_now_s();
    int n = pose_n(s->pb[0].model);
    double *mp = calloc((size_t)s->count * 2, sizeof(double));
    double *je = calloc((size_t)s->count * POSE_J, sizeof(double));
    int *ok = calloc((size_t)s->count, sizeof(int)); /* 1, or 2: another start won */
    long long solves = 0;
#ifdef _OPENMP
    int nth = threads > 0 ? threads : omp_get_max_threads();
#else
    (void)threads;
#endif
    if (!mp || !je || !ok) {
        free(mp);
        free(je);
        free(ok);
        snprintf(msg, len, "pose_evaluate: out of memory");
        return WB_ENOMEM;
    }
    int err = 0, unconverged = 0;
    char emsg[256] = "";
#ifdef _OPENMP
#pragma omp parallel num_threads(nth) reduction(+ : solves, unconverged)
#endif
    {
        wb_settings st;
        pose_solver_settings(&st);
        wb_energy e0 = pose_energy(&s->pb[0]);
        wb_solver *sv = NULL;
        wb_status cs = wb_solver_create(&sv, &e0, &st);
        if (cs != WB_OK) {
#ifdef _OPENMP
#pragma omp critical(pose_eval_msg)
#endif
            {
                err = cs;
                snprintf(emsg, sizeof emsg, "wb_solver_create: %s", wb_status_str(cs));
            }
        }
        double x0[8 * (POSE_KMAX + 4)], x[POSE_KMAX + 4], best[POSE_KMAX + 4];
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (int i = 0; i < s->count; i++) {
            if (!sv) continue;
            const pose_problem *pb = &s->pb[i];
            wb_energy e = pose_energy(pb);
            wb_status r = wb_solver_set_energy(sv, &e);
            if (r != WB_OK) {
#ifdef _OPENMP
#pragma omp critical(pose_eval_msg)
#endif
                if (!out->first_error[0])
                    snprintf(out->first_error, sizeof out->first_error,
                             "frame %d: wb_solver_set_energy: %s: %s", i, wb_status_str(r),
                             wb_solver_message(sv));
                continue;
            }
            int ns = pose_starts(pb, w, SWEEP, nstarts > 8 ? 8 : nstarts, x0);
            double ebest = INFINITY, efirst = INFINITY;
            int kbest = -1;
            for (int k = 0; k < ns; k++) {
                memcpy(x, x0 + (size_t)k * n, (size_t)n * sizeof(double));
                wb_info info;
                r = wb_solve(sv, w, x, &info);
                solves++;
                if (r > 0) unconverged++;
                if (r < 0) {
#ifdef _OPENMP
#pragma omp critical(pose_eval_msg)
#endif
                    if (!out->first_error[0])
                        snprintf(out->first_error, sizeof out->first_error,
                                 "frame %d, start %d: wb_solve: %s: %s", i, k,
                                 wb_status_str(r), wb_solver_message(sv));
                }
                if (k == 0 && r >= 0) efirst = info.energy;
                /* a positive status still returns the best point found */
                if (r >= 0 && isfinite(info.energy) && info.energy < ebest) {
                    ebest = info.energy;
                    kbest = k;
                    memcpy(best, x, (size_t)n * sizeof(double));
                }
            }
            if (!isfinite(ebest)) {
                if (pred)
                    for (int k = 0; k < POSE_D; k++) pred[(size_t)i * POSE_D + k] = NAN;
                continue;
            }
            double J[POSE_D];
            pose_predict(pb->model, best, J);
            if (pred) memcpy(pred + (size_t)i * POSE_D, J, sizeof J);
            mp[2 * i] = pose_mpjpe(J, pb->frame->gt);
            mp[2 * i + 1] = pose_pa_mpjpe(J, pb->frame->gt);
            pose_joint_errors(J, pb->frame->gt, je + (size_t)i * POSE_J);
            /* another start won when it found a clearly lower minimum (not a
               rounding-level tie at the same one) */
            ok[i] = 1 + (kbest > 0 && efirst - ebest > 1e-6 * fmax(1.0, fabs(ebest)));
        }
        wb_solver_destroy(sv);
    }
    if (err) {
        snprintf(msg, len, "%s", emsg);
        free(mp);
        free(je);
        free(ok);
        return err;
    }
    int good = 0;
    for (int i = 0; i < s->count; i++) {
        if (!ok[i]) {
            out->failed++;
            continue;
        }
        good++;
        out->other_start += ok[i] > 1;
        out->mpjpe += mp[2 * i];
        out->pa_mpjpe += mp[2 * i + 1];
        for (int j = 0; j < POSE_J; j++) out->joint_err[j] += je[(size_t)i * POSE_J + j];
    }
    if (good > 0) {
        out->mpjpe /= good;
        out->pa_mpjpe /= good;
        for (int j = 0; j < POSE_J; j++) out->joint_err[j] /= good;
    } else {
        out->mpjpe = out->pa_mpjpe = NAN;
    }
    out->solves = solves;
    out->unconverged = unconverged;
    out->seconds = pose_now_s() - t0;
    free(mp);
    free(je);
    free(ok);
    return WB_OK;
}

void pose_train_opts_default(pose_train_opts *o) {
    o->lambda = 1e-2;
    o->lr = 0.05;
    o->epochs = 12;
    o->batch = 8;
    o->threads = 0;
    o->seed = 1;
    o->learn = NULL;
}

int pose_train_steps(int count, const pose_train_opts *o) {
    int b = o->batch < count ? o->batch : count;
    return o->epochs * ((count + b - 1) / b);
}

int pose_train(const pose_set *s, double *w, const pose_train_opts *o,
               pose_train_result *res, double *trace, int max_steps,
               int *trace_rows, char *msg, size_t len) {
    memset(res, 0, sizeof *res);
    wb_dataset d = pose_dataset((pose_set *)s);
    wb_train_settings ts;
    wb_train_settings_default(&ts);
    pose_solver_settings(&ts.solver);
    ts.solver.lambda = o->lambda;
    ts.optimizer = WB_OPT_ADAM;
    ts.lr = o->lr;
    ts.schedule = WB_LR_COSINE;
    ts.lr_min = 0.1 * o->lr;
    ts.batch_size = o->batch;
    ts.epochs = o->epochs;
    ts.seed = o->seed;
    ts.threads = o->threads;
    double lo[POSE_P], hi[POSE_P];
    pose_w_bounds(lo, hi);
    for (int j = 0; j < POSE_P; j++)
        if (o->learn && !o->learn[j]) lo[j] = hi[j] = w[j]; /* frozen */
    ts.lower = lo;
    ts.upper = hi;
    wb_trainer *t = NULL;
    wb_status st = wb_trainer_create(&t, &d, w, &ts);
    if (st != WB_OK) {
        snprintf(msg, len, "wb_trainer_create: %s", wb_status_str(st));
        return st;
    }
    int rows = 0;
    if (trace && max_steps >= 0) {
        memcpy(trace, w, POSE_P * sizeof(double));
        rows = 1;
    }
    wb_train_info info;
    memset(&info, 0, sizeof info);
    do {
        st = wb_trainer_step(t, &info);
        if (st != WB_OK && st != WB_DONE) break;
        if (trace && rows <= max_steps) {
            wb_trainer_w(t, trace + (size_t)rows * POSE_P);
            rows++;
        }
    } while (st == WB_OK);
    if (trace_rows) *trace_rows = rows;
    if (st != WB_DONE) {
        snprintf(msg, len, "wb_trainer_step: %s: %s", wb_status_str(st),
                 wb_trainer_message(t));
        wb_trainer_destroy(t);
        return st;
    }
    wb_trainer_w(t, w);
    res->seconds = info.seconds;
    res->inner_solves = info.inner_solves;
    res->skipped = info.skipped_total;
    res->steps = info.step;
    res->final_loss = info.epoch_loss;
    wb_trainer_destroy(t);
    return WB_OK;
}

void pose_report_failures(const char *name, int failed, const char *first_error) {
    if (failed)
        fprintf(stderr, "pose: %s: %d held-out frames failed; first: %s\n", name, failed,
                first_error);
    else if (first_error[0])
        fprintf(stderr, "pose: %s: a start failed (another was kept): %s\n", name, first_error);
}
