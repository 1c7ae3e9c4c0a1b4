/* The mixture experiment of the binary `pose` (its default): untrained
 * generic mixture, the mixture re-fitted by maximum likelihood on the
 * training poses, the learned mixture; per-action errors; with --ablate a
 * lambda sweep and the parameter-group ablation; JSON and figures. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pose.h"

typedef struct {
    char name[64];
    char group[16];
    double lambda;      /* NAN: not a training run */
    double mpjpe, pa;
    double action_mpjpe[POSE_REAL_ACTIONS], action_pa[POSE_REAL_ACTIONS];
    double seconds;     /* NAN: no training */
    long long solves, skipped, refused; /* -1: no training */
    int learned;        /* parameters learned (0: none) */
    double train_loss;  /* last epoch's mean training loss (NAN: none) */
    double curv_min, curv_gmean; /* smallest curvature of H + lambda I at the
                                    derivatives: minimum, geometric mean */
    int other_component; /* held-out frames whose winning component differs
                            from the untrained run's (-1: not counted) */
} mrow;

static void print_header(void) {
    printf("%-40s %7s %8s %7s %6s %7s %7s %7s %9s\n", "method (held-out S9, S11)", "MPJPE",
           "PA-MPJPE", "train s", "solves", "skipped", "refused", "learned", "min curv");
    printf("%-40s %7s %8s\n", "", "mm", "mm");
}

static void print_row(const mrow *r) {
    char sec[32] = "-", sol[32] = "-", sk[32] = "-", rf[32] = "-";
    if (isfinite(r->seconds)) snprintf(sec, sizeof sec, "%.2f", r->seconds);
    if (r->solves >= 0) snprintf(sol, sizeof sol, "%lld", r->solves);
    if (r->skipped >= 0) snprintf(sk, sizeof sk, "%lld", r->skipped);
    if (r->refused >= 0) snprintf(rf, sizeof rf, "%lld", r->refused);
    char cv[32] = "-";
    if (isfinite(r->curv_min)) snprintf(cv, sizeof cv, "%.2g", r->curv_min);
    printf("%-40s %7.2f %8.2f %7s %6s %7s %7s %7d %9s\n", r->name, r->mpjpe, r->pa, sec, sol, sk,
           rf, r->learned, cv);
    fflush(stdout);
}

static void fill_eval(mrow *r, const pose_mix_eval *ev) {
    r->mpjpe = ev->mpjpe;
    r->pa = ev->pa_mpjpe;
    for (int a = 0; a < POSE_REAL_ACTIONS; a++) {
        r->action_mpjpe[a] = ev->action_mpjpe[a];
        r->action_pa[a] = ev->action_pa[a];
    }
}

typedef struct {
    const pose_data *d;
    const pose_mix_run_opts *o;
    int G, K, p;
} ctx_t;

/* Evaluates w on the held-out frames into r (and pred). 0 ok. */
static int eval_into(const ctx_t *c, const char *name, const double *w, mrow *r, double *pred) {
    char msg[512];
    pose_mix_eval ev;
    int st = pose_mix_evaluate(c->d->cam, c->d->test, c->d->ntest, c->G, c->K, w, c->o->starts,
                               c->o->train.threads, &ev, pred, msg, sizeof msg);
    if (st != WB_OK) {
        fprintf(stderr, "pose: evaluating '%s' failed: %s\n", name, msg);
        return st;
    }
    pose_report_failures(name, ev.failed, ev.first_error);
    fill_eval(r, &ev);
    return 0;
}

/* Trains from w0 with (lambda, learn), evaluates; fills r and w. 0 ok. */
static int train_into(const ctx_t *c, const char *name, const char *group, const double *w0,
                      double lambda, unsigned learn, double *trace, int trace_max, double *w,
                      mrow *r, double *pred, int *trace_rows) {
    char msg[512];
    pose_mix_opts to = c->o->train;
    to.lambda = lambda;
    to.learn = learn;
    to.trace = trace;
    to.trace_max = trace_max;
    pose_mix_result res;
    memcpy(w, w0, (size_t)c->p * sizeof(double));
    int st = pose_mix_train(c->d->cam, c->d->train, c->d->ntrain, c->G, c->K, w, &to, &res, msg,
                            sizeof msg);
    if (st != WB_OK) {
        fprintf(stderr, "pose: training '%s' failed: %s\n", name, msg);
        return st;
    }
    if (trace_rows) *trace_rows = res.trace_rows;
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->group, sizeof r->group, "%s", group);
    r->lambda = lambda;
    r->seconds = res.seconds;
    r->solves = res.inner_solves;
    r->skipped = res.skipped;
    r->refused = res.refused;
    r->train_loss = res.final_loss;
    r->curv_min = res.curv_n ? res.min_curvature : NAN;
    r->curv_gmean = res.curv_n ? exp(res.curv_logsum / res.curv_n) : NAN;
    r->learned = pose_mix_learned_count(c->G, c->K, learn);
    return eval_into(c, name, w, r, pred);
}

static void plain_row(mrow *r, const char *name, const char *group) {
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->group, sizeof r->group, "%s", group);
    r->lambda = NAN;
    r->seconds = NAN;
    r->train_loss = r->curv_min = r->curv_gmean = NAN;
    r->solves = r->skipped = r->refused = -1;
}

static void json_num(FILE *f, const char *key, double v, const char *sep) {
    if (isfinite(v)) fprintf(f, "\"%s\": %.6g%s", key, v, sep);
    else fprintf(f, "\"%s\": null%s", key, sep);
}

/* the actions' names and count: the synthetic ones or a data set's */
typedef struct {
    const char *name[POSE_REAL_ACTIONS];
    int n;
} actions_t;

static void json_actions(FILE *f, const char *key, const mrow *r, const actions_t *an) {
    fprintf(f, "\"%s\": [", key);
    for (int a = 0; a < an->n; a++) {
        fprintf(f, "%s{\"action\": \"%s\", ", a ? ", " : "", an->name[a]);
        json_num(f, "mpjpe_mm", r->action_mpjpe[a], ", ");
        json_num(f, "pa_mpjpe_mm", r->action_pa[a], "}");
    }
    fprintf(f, "], ");
}

static int write_json(const char *path, const mrow *ru, const mrow *rf, const mrow *rt,
                      const mrow *sweep, int nsweep, const mrow *abl, int nabl, const double *w,
                      const actions_t *an) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "{\"model\": \"mixture\", ");
    json_num(f, "untrained_mpjpe_mm", ru->mpjpe, ", ");
    json_num(f, "trained_mpjpe_mm", rt->mpjpe, ", ");
    json_num(f, "untrained_pa_mpjpe_mm", ru->pa, ", ");
    json_num(f, "trained_pa_mpjpe_mm", rt->pa, ", ");
    json_num(f, "refit_mpjpe_mm", rf->mpjpe, ", ");
    json_num(f, "refit_pa_mpjpe_mm", rf->pa, ", ");
    json_num(f, "train_seconds", rt->seconds, ", ");
    fprintf(f, "\"learned_parameters\": %d, ", rt->learned);
    json_actions(f, "per_action", rt, an);
    json_actions(f, "per_action_untrained", ru, an);
    json_actions(f, "per_action_refit", rf, an);
    fprintf(f, "\"trained_w\": {\"joint_weights\": [");
    for (int j = 0; j < POSE_J; j++) fprintf(f, "%s%.6g", j ? ", " : "", w[j]);
    fprintf(f, "], \"prior_weight\": %.6g, \"robust_width\": %.6g}, ", w[POSE_W_PRIOR],
            w[POSE_W_WIDTH]);
    fprintf(f, "\"lambda_sweep\": [");
    for (int i = 0; i < nsweep; i++) {
        fprintf(f, "%s\n  {", i ? "," : "");
        json_num(f, "lambda", sweep[i].lambda, ", ");
        json_num(f, "mpjpe_mm", sweep[i].mpjpe, ", ");
        json_num(f, "pa_mpjpe_mm", sweep[i].pa, ", ");
        json_num(f, "seconds", sweep[i].seconds, ", ");
        json_num(f, "min_curvature", sweep[i].curv_min, ", ");
        fprintf(f, "\"refused\": %lld, \"skipped\": %lld}", sweep[i].refused, sweep[i].skipped);
    }
    fprintf(f, "%s], \"ablations\": [", nsweep ? "\n" : "");
    for (int i = 0; i < nabl; i++) {
        const mrow *r = &abl[i];
        fprintf(f, "%s\n  {\"name\": \"%s\", \"group\": \"%s\", ", i ? "," : "", r->name,
                r->group);
        json_num(f, "lambda", r->lambda, ", ");
        json_num(f, "mpjpe_mm", r->mpjpe, ", ");
        json_num(f, "pa_mpjpe_mm", r->pa, ", ");
        json_num(f, "seconds", r->seconds, ", ");
        fprintf(f, "\"learned_parameters\": %d, ", r->learned);
        if (r->solves >= 0)
            fprintf(f, "\"inner_solves\": %lld, \"refused\": %lld, \"skipped\": %lld}",
                    r->solves, r->refused, r->skipped);
        else
            fprintf(f, "\"inner_solves\": null, \"refused\": null, \"skipped\": null}");
    }
    fprintf(f, "%s]}\n", nabl ? "\n" : "");
    int bad = ferror(f);
    return (fclose(f) != 0 || bad) ? -1 : 0;
}

static void print_actions(const mrow *const *rows, int nr, const actions_t *an) {
    printf("\nper action (held-out S9, S11): MPJPE / PA-MPJPE, mm\n%-28s", "");
    for (int a = 0; a < an->n; a++) printf(" %15s", an->name[a]);
    printf("\n");
    for (int i = 0; i < nr; i++) {
        char nm[64];
        snprintf(nm, sizeof nm, "%s", rows[i]->name);
        nm[28] = 0;
        printf("%-28s", nm);
        for (int a = 0; a < an->n; a++)
            printf("   %6.2f /%5.1f", rows[i]->action_mpjpe[a], rows[i]->action_pa[a]);
        printf("\n");
    }
    fflush(stdout);
}

void pose_mix_run_opts_default(pose_mix_run_opts *o) {
    pose_config_default(&o->cfg);
    pose_mix_opts_default(&o->train);
    o->starts = 4;
    o->prior_weight = 1.0;
    o->ablate = 0;
    o->json = NULL;
    o->svg_dir = NULL;
    o->data_dir = NULL;
    o->min_conf = 0.1;
    o->write_dir = NULL;
}

/* the synthetic frames (training, then held out) in the CSV layout */
static int write_synthetic(const pose_data *d, const char *dir) {
    char pc[1024], pd[1024], pt[1024];
    snprintf(pc, sizeof pc, "%s/cameras.csv", dir);
    snprintf(pd, sizeof pd, "%s/detections.csv", dir);
    snprintf(pt, sizeof pt, "%s/truth.csv", dir);
    pose_frame *all = malloc((size_t)(d->ntrain + d->ntest) * sizeof *all);
    if (!all) return -1;
    memcpy(all, d->train, (size_t)d->ntrain * sizeof *all);
    memcpy(all + d->ntrain, d->test, (size_t)d->ntest * sizeof *all);
    int rc = pose_write_csv(pc, pd, pt, d->cam, all, d->ntrain + d->ntest, pose_action_name);
    free(all);
    if (rc != 0) fprintf(stderr, "pose: cannot write %s/*.csv: %s\n", dir, strerror(errno));
    return rc;
}

/* Replaces the synthetic frames and cameras of d by the files of dir: the
   frames with truth of S1 S5 S6 S7 S8 train, those of S9 S11 are held out.
   0 ok. */
static int load_real(pose_data *d, const char *dir, double min_conf, pose_real *real,
                     actions_t *an) {
    char pc[1024], pd[1024], pt[1024], msg[512];
    snprintf(pc, sizeof pc, "%s/cameras.csv", dir);
    snprintf(pd, sizeof pd, "%s/detections.csv", dir);
    snprintf(pt, sizeof pt, "%s/truth.csv", dir);
    if (pose_read_csv(pc, pd, pt, min_conf, real, msg, sizeof msg) != 0) {
        fprintf(stderr, "pose: %s\n", msg);
        return -1;
    }
    int ntr = 0, nte = 0;
    for (int i = 0; i < real->count; i++) {
        if (!isfinite(real->frames[i].gt[0])) continue;
        if (real->frames[i].subject < 5) ntr++;
        else nte++;
    }
    if (ntr == 0 || nte == 0) {
        fprintf(stderr, "pose: %s: need frames with truth of training subjects (S1 S5 S6 S7 S8: "
                "%d) and of held-out ones (S9 S11: %d)\n", dir, ntr, nte);
        return -1;
    }
    pose_frame *tr = calloc((size_t)ntr, sizeof *tr), *te = calloc((size_t)nte, sizeof *te);
    if (!tr || !te) {
        free(tr);
        free(te);
        fprintf(stderr, "pose: out of memory\n");
        return -1;
    }
    ntr = nte = 0;
    for (int i = 0; i < real->count; i++) {
        const pose_frame *f = &real->frames[i];
        if (!isfinite(f->gt[0])) continue;
        if (f->subject < 5) tr[ntr++] = *f;
        else te[nte++] = *f;
    }
    free(d->train);
    free(d->test);
    d->train = tr;
    d->test = te;
    d->ntrain = ntr;
    d->ntest = nte;
    memcpy(d->cam, real->cam, sizeof d->cam);
    an->n = real->nactions;
    for (int a = 0; a < an->n; a++) an->name[a] = real->action_name[a];
    return 0;
}

int pose_mix_run(const pose_mix_run_opts *o) {
    char msg[512];
    pose_data data;
    if (pose_data_create(&data, &o->cfg, msg, sizeof msg) != 0) {
        fprintf(stderr, "pose: %s\n", msg);
        return 1;
    }
    actions_t an;
    an.n = o->cfg.actions;
    for (int a = 0; a < POSE_ACTIONS; a++) an.name[a] = pose_action_name[a];
    pose_real real = {0};
    if (o->write_dir) {
        if (write_synthetic(&data, o->write_dir) != 0) {
            pose_data_free(&data);
            return 1;
        }
        printf("wrote %s/{cameras,detections,truth}.csv\n", o->write_dir);
    }
    if (o->data_dir && load_real(&data, o->data_dir, o->min_conf, &real, &an) != 0) {
        pose_real_free(&real);
        pose_data_free(&data);
        return 1;
    }
    ctx_t c = {&data, o, data.mix.G, data.mix.K, pose_mix_p(data.mix.G, data.mix.K)};
    int rc = 1, nsweep = 0, nabl = 0;
    mrow sweep[8], abl[12];
    pose_mixture *refit = malloc(sizeof *refit);
    double *canon = malloc((size_t)data.ntrain * POSE_D * sizeof(double));
    double *w0 = malloc((size_t)c.p * sizeof(double)), *w = malloc((size_t)c.p * sizeof(double));
    double *wr = malloc((size_t)c.p * sizeof(double)), *wa = malloc((size_t)c.p * sizeof(double));
    double *pred_u = malloc((size_t)data.ntest * POSE_D * sizeof(double));
    double *pred_t = malloc((size_t)data.ntest * POSE_D * sizeof(double));
    int max_steps = pose_mix_train_steps(data.ntrain, &o->train);
    double *trace = malloc((size_t)(max_steps + 1) * POSE_P * sizeof(double));
    if (!refit || !canon || !w0 || !w || !wr || !wa || !pred_u || !pred_t || !trace) {
        fprintf(stderr, "pose: out of memory\n");
        goto done;
    }
    double miss, outl;
    pose_data_rates(&data, &miss, &outl);
    if (o->data_dir)
        printf("pose: data from %s: %d training and %d held-out frames with 3-D truth, "
               "%d actions (the synthetic world below is not used)\n", o->data_dir,
               data.ntrain, data.ntest, an.n);
    printf("pose: 17 joints, 4 cameras 90 deg apart; a mixture of %d PPCA models with %d bases "
           "each, fitted to %d generic kinematic poses (components of %d",
           c.G, c.K, o->cfg.population, data.mix.count[0]);
    for (int g = 1; g < c.G; g++) printf(", %d", data.mix.count[g]);
    printf(")\n  train: ");
    for (int s = 0; s < o->cfg.train_subjects; s++) printf("%s ", pose_subject_name(s));
    printf("(%d frames)   held out: ", data.ntrain);
    for (int s = 0; s < o->cfg.test_subjects; s++) printf("%s ", pose_subject_name(5 + s));
    printf("(%d frames)   actions:", data.ntest);
    for (int a = 0; a < o->cfg.actions; a++) printf(" %s", pose_action_name[a]);
    printf("\n  2-D: %g-%g px noise, %.1f%% missing, %.1f%% of the rest gross outliers; "
           "unknowns n = %d per component, parameters p = %d\n", o->cfg.noise_min_px,
           o->cfg.noise_max_px, 100.0 * miss, 100.0 * outl,
           c.K + 4, c.p);
    printf("  training: Adam lr %g (weights) and %g mm (mean, basis), cosine, %d epochs, batch "
           "%d, lambda %g,\n  %d sweep start + the last minimizer per component; evaluation: "
           "best of %d yaw starts x %d components\n\n", o->train.lr, o->train.lr_shape,
           o->train.epochs, o->train.batch, o->train.lambda, o->train.starts, o->starts, c.G);
    fflush(stdout);

    double wg[POSE_P];
    pose_w_default(wg);
    wg[POSE_W_PRIOR] = o->prior_weight;
    pose_mix_pack(&data.mix, wg, w0);
    /* the baseline: the mixture re-fitted by maximum likelihood on the
       training subjects' true poses (canonical frame) */
    for (int i = 0; i < data.ntrain; i++)
        memcpy(canon + (size_t)i * POSE_D, data.train[i].canon, POSE_D * sizeof(double));
    if (pose_mix_fit(canon, data.ntrain, c.G, c.K, o->cfg.seed, refit, msg, sizeof msg) != 0) {
        fprintf(stderr, "pose: re-fitting the mixture to the training poses: %s\n", msg);
        goto done;
    }
    pose_mix_pack(refit, wg, wr);

    mrow ru, rf, rt;
    plain_row(&ru, "generic mixture (untrained)", "untrained");
    plain_row(&rf, "ML refit on training poses", "refit");
    if (eval_into(&c, ru.name, w0, &ru, pred_u) || eval_into(&c, rf.name, wr, &rf, NULL))
        goto done;
    int trows = 0;
    char tn[64];
    if (o->train.soft_t > 0)
        snprintf(tn, sizeof tn, "ML refit + trained (lambda %g, T %g)", o->train.lambda,
                 o->train.soft_t);
    else
        snprintf(tn, sizeof tn, "ML refit + trained (lambda %g)", o->train.lambda);
    if (train_into(&c, tn, "trained", wr, o->train.lambda, POSE_LEARN_ALL, trace, max_steps + 1,
                   w, &rt, pred_t, &trows))
        goto done;
    print_header();
    print_row(&ru);
    print_row(&rf);
    print_row(&rt);
    printf("(trained / untrained MPJPE: %.3f; trained / ML refit: %.3f; hand-set energy "
           "weights w_j = 1, kappa %g, h 3 in the first two)\n", rt.mpjpe / ru.mpjpe,
           rt.mpjpe / rf.mpjpe, o->prior_weight);
    const mrow *pa[3] = {&ru, &rf, &rt};
    print_actions(pa, 3, &an);
    printf("\nlearned energy weights (untrained: all 1, kappa 1, h 3):\n");
    for (int j = 0; j < POSE_J; j++)
        printf("  %-10s %6.3f%s", pose_joint_name[j], w[j], j % 4 == 3 ? "\n" : "");
    printf("\n  kappa %.3f   h %.3f (%.1f px)   training loss %.2f mm (last epoch)\n",
           w[POSE_W_PRIOR], w[POSE_W_WIDTH], w[POSE_W_WIDTH] * POSE_PX, rt.train_loss);
    double dm = 0.0, dw = 0.0, nm = 0.0, nw = 0.0;
    for (int g = 0; g < c.G; g++) {
        int off = pose_mix_offset(c.K, g);
        for (int k = 0; k < POSE_D; k++) {
            dm += (w[off + k] - wr[off + k]) * (w[off + k] - wr[off + k]);
            nm += wr[off + k] * wr[off + k];
        }
        for (int k = POSE_D; k < POSE_D * (c.K + 1); k++) {
            dw += (w[off + k] - wr[off + k]) * (w[off + k] - wr[off + k]);
            nw += wr[off + k] * wr[off + k];
        }
    }
    printf("  from the ML refit, the means moved by %.1f%% of their norm, the bases by %.1f%%\n",
           100.0 * sqrt(dm / nm), 100.0 * sqrt(dw / nw));
    fflush(stdout);
    sweep[nsweep++] = rt;

    if (o->ablate) {
        static const double LAMBDAS[] = {0.0, 1e-6, 1e-4, 1e-2, 1.0};
        printf("\nlambda sweep (all parameters learned from the ML refit)\n");
        print_header();
        nsweep = 0;
        for (size_t k = 0; k < sizeof LAMBDAS / sizeof LAMBDAS[0]; k++) {
            char nm2[64];
            snprintf(nm2, sizeof nm2, "lambda = %g", LAMBDAS[k]);
            mrow r;
            if (LAMBDAS[k] == o->train.lambda) {
                r = rt;
                snprintf(r.name, sizeof r.name, "%s", nm2);
            } else if (train_into(&c, nm2, "lambda", wr, LAMBDAS[k], POSE_LEARN_ALL, NULL, 0, wa,
                                  &r, NULL, NULL))
                goto done;
            snprintf(r.group, sizeof r.group, "lambda");
            sweep[nsweep++] = r;
            print_row(&r);
        }
        printf("\nparameter groups learned from the ML refit (lambda %g)\n", o->train.lambda);
        print_header();
        static const struct { const char *name; unsigned learn; } GR[] = {
            {"energy weights only", POSE_LEARN_WEIGHTS},
            {"mean poses only", POSE_LEARN_MEAN},
            {"bases only", POSE_LEARN_BASIS},
            {"mean poses and bases", POSE_LEARN_MEAN | POSE_LEARN_BASIS},
            {"weights and mean poses", POSE_LEARN_WEIGHTS | POSE_LEARN_MEAN}};
        for (size_t k = 0; k < sizeof GR / sizeof GR[0]; k++) {
            mrow r;
            if (train_into(&c, GR[k].name, "groups", wr, o->train.lambda, GR[k].learn, NULL, 0,
                           wa, &r, NULL, NULL))
                goto done;
            abl[nabl++] = r;
            print_row(&r);
        }
        mrow r;
        if (train_into(&c, "generic mixture + all trained", "generic", w0, o->train.lambda,
                       POSE_LEARN_ALL, NULL, 0, wa, &r, NULL, NULL))
            goto done;
        abl[nabl++] = r;
        print_row(&r);
        /* the other minimum: soft where the run was hard, hard where soft */
        pose_mix_run_opts o2 = *o;
        o2.train.soft_t = o->train.soft_t > 0 ? 0.0 : 100.0;
        ctx_t c2 = c;
        c2.o = &o2;
        char sn[64];
        if (o2.train.soft_t > 0) snprintf(sn, sizeof sn, "soft minimum, T = %g", o2.train.soft_t);
        else snprintf(sn, sizeof sn, "hard minimum");
        if (train_into(&c2, sn, "minimum", wr, o->train.lambda, POSE_LEARN_ALL, NULL, 0, wa, &r,
                       NULL, NULL))
            goto done;
        abl[nabl++] = r;
        print_row(&r);
    }

    if (o->svg_dir && pose_svg_write(o->svg_dir, data.test, data.ntest, pred_u, pred_t, trace,
                                     trows) != 0)
        goto done;
    if (o->json && pose_report_written(write_json(o->json, &ru, &rf, &rt, sweep, nsweep, abl,
                                                  nabl, w, &an), o->json))
        goto done;
    rc = 0;
done:
    free(refit);
    free(canon);
    free(w0);
    free(w);
    free(wr);
    free(wa);
    free(pred_u);
    free(pred_t);
    free(trace);
    pose_real_free(&real);
    pose_data_free(&data);
    return rc;
}
