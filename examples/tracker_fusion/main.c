/* tracker_fusion: learn how to fuse several trackers into one trajectory.
 * See README.md beside this file. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tf.h"
#include "../wb_mpi_example.h" /* -DWIBERG_MPI=ON: mpirun -np N tracker_fusion */

static void usage(FILE *f) {
    fprintf(f,
        "usage: tracker_fusion [options]\n"
        "\n"
        "Fuses K trackers' box centres into one trajectory per video by minimizing\n"
        "  E(x; w) = sum_t sum_k m_tk w_k rho_delta(|x_t - y_tk|) + alpha sum_t |x_t+1 - 2x_t + x_t-1|^2\n"
        "(pseudo-Huber rho), learns the tracker weights w, alpha and delta through the\n"
        "implicit derivative, and compares with baselines on held-out videos.\n"
        "\n"
        "data (default: seeded synthetic videos):\n"
        "  --sequences N      synthetic videos (default 24)\n"
        "  --frames MIN:MAX   frames per video (default 200:600)\n"
        "  --trackers K       trackers, 1..16 (default 6)\n"
        "  --missing P        probability a report is absent (default 0.1)\n"
        "  --tracks FILE      real tracker outputs, CSV: sequence,frame,tracker,x,y and\n"
        "                     optional columns w,h (box size), score, name (tracker's)\n"
        "  --truth FILE       ground truth, CSV: sequence,frame,x,y or sequence,frame,x,y,w,h\n"
        "                     (required with --tracks; the box form gives the AUC)\n"
        "  --names FILE       tracker names, CSV id,name (as the OTB data's trackers.txt)\n"
        "  --test-fraction F  share of sequences held out for testing (default 0.3);\n"
        "                     the split is by video, never by frame\n"
        "  --group RULE       which sequences are one video: dash (default: names equal\n"
        "                     up to their last '-', Jogging-1 and Jogging-2) or none\n"
        "  --seed S           seed of the data, the split and the training (default 1)\n"
        "training:\n"
        "  --epochs N         passes over the training videos (default 25)\n"
        "  --batch N          videos per step (default 4)\n"
        "  --lr X             Adam learning rate, log-parameters (default 0.08)\n"
        "  --lambda X         damping of the implicit derivative (default 1e-3)\n"
        "  --robust auto|global|on|off  the non-convex rows: auto (default): the\n"
        "                     non-convex learned row with --tracks data that have box\n"
        "                     sizes and box truth; global: that row always; on: it and\n"
        "                     the end-to-end row (per-frame weights); off: neither\n"
        "  --search on|off    the non-convex rows' basin search of the tracker weights\n"
        "                     on the training sequences (default off)\n"
        "  --robust-loss px|scale  the non-convex rows' training loss: the centre\n"
        "                     error in px (as the benchmarks' mean CLE) or in box\n"
        "                     scales (default scale)\n"
        "  --referee on|off   the referee row: where the non-convex fusion and the\n"
        "                     train-chosen best tracker part, a model fitted on the\n"
        "                     training sequences picks one (default off)\n"
        "  --votes fit|precision  the non-convex rows' start weights: fitted on the\n"
        "                     training frames where the trackers disagree, or from\n"
        "                     each tracker's training P@20 alone (default precision)\n"
        "  --lambda-sweep L1,L2,...  train the non-convex learned row again at each\n"
        "                     lambda (up to 8 values >= 0): held-out figures, refused\n"
        "                     and skipped derivatives, curvature of H + lambda I\n"
        "  --threads N        worker threads, 0 = all cores (default 0)\n"
        "output:\n"
        "  --threshold PX     success = centre error <= PX pixels (default 10; P@20 is\n"
        "                     always at 20 px)\n"
        "  --per-sequence     a table per test sequence: every method's CLE, P@20, AUC\n"
        "                     (and sigma of H: the smallest curvature of H at each\n"
        "                     non-convex row's minimizer, from its undamped derivative)\n"
        "  --json FILE        the figures as JSON\n"
        "  --plot DIR         SVG plots: trajectory.svg, loss.svg\n"
        "  --quiet            no per-epoch progress\n"
        "  --help             this text\n");
}

/* strict numbers for the flags: the whole argument must parse */
/* --opt NAME among names[k] (k < count): *out = values[k], 0; otherwise the
   message "--opt wants a, b or c, not 'NAME'" and 2 */
static int choice_arg(const char *opt, const char *val, const char *const *names,
                      const int *values, int count, int *out) {
    for (int k = 0; k < count; k++)
        if (!strcmp(val, names[k])) {
            *out = values[k];
            return 0;
        }
    fprintf(stderr, "tracker_fusion: %s wants ", opt);
    for (int k = 0; k < count; k++)
        fprintf(stderr, "%s%s", names[k], k + 2 < count ? ", " : k + 1 < count ? " or " : "");
    fprintf(stderr, ", not '%s'\n", val);
    return 2;
}

static int onoff_arg(const char *opt, const char *val, int *out) {
    static const char *const names[] = {"on", "off"};
    static const int values[] = {1, 0};
    return choice_arg(opt, val, names, values, 2, out);
}

static int num_arg(const char *flag, const char *s, double *v) {
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || errno != 0 || !isfinite(*v)) {
        fprintf(stderr, "tracker_fusion: %s wants a number, not '%s'\n", flag, s);
        return -1;
    }
    return 0;
}
static int int_arg(const char *flag, const char *s, int *v) {
    double d;
    if (num_arg(flag, s, &d)) return -1;
    if (d != floor(d) || fabs(d) > 1e9) {
        fprintf(stderr, "tracker_fusion: %s wants an integer, not '%s'\n", flag, s);
        return -1;
    }
    *v = (int)d;
    return 0;
}
static int u64_arg(const char *flag, const char *s, uint64_t *v) {
    char *end;
    errno = 0;
    unsigned long long u = strtoull(s, &end, 10);
    if (*s < '0' || *s > '9' || *end != '\0' || errno != 0) {
        fprintf(stderr, "tracker_fusion: %s wants a non-negative integer, not '%s'\n", flag, s);
        return -1;
    }
    *v = (uint64_t)u;
    return 0;
}

/* --lambda-sweep: comma-separated lambdas, each a whole number >= 0 */
static int sweep_arg(const char *s, tf_opts *o) {
    char buf[512];
    if (strlen(s) >= sizeof buf) {
        fprintf(stderr, "tracker_fusion: --lambda-sweep: the list is too long\n");
        return -1;
    }
    strcpy(buf, s);
    o->nsweep = 0;
    for (char *tok = buf, *next; tok; tok = next) {
        next = strchr(tok, ',');
        if (next) *next++ = '\0';
        double v;
        if (o->nsweep == TF_MAX_SWEEP) {
            fprintf(stderr, "tracker_fusion: --lambda-sweep takes at most %d values\n", TF_MAX_SWEEP);
            return -1;
        }
        if (num_arg("--lambda-sweep", tok, &v)) return -1;
        if (!(v >= 0)) {
            fprintf(stderr, "tracker_fusion: --lambda-sweep wants lambdas >= 0, not '%s'\n", tok);
            return -1;
        }
        o->sweep[o->nsweep++] = v;
    }
    return 0;
}

int main(int argc, char **argv) {
    tf_opts o;
    tf_opts_default(&o);
    o.verbose = 1;
    const char *json = NULL, *plot = NULL;
    int per_seq = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        int bad = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--sequences") && more) bad = int_arg(a, argv[++i], &o.gen.sequences);
        else if (!strcmp(a, "--frames") && more) {
            char tail;
            if (sscanf(argv[++i], "%d:%d%c", &o.gen.min_frames, &o.gen.max_frames, &tail) != 2) {
                fprintf(stderr, "tracker_fusion: --frames wants MIN:MAX, not '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--trackers") && more) bad = int_arg(a, argv[++i], &o.gen.trackers);
        else if (!strcmp(a, "--missing") && more) bad = num_arg(a, argv[++i], &o.gen.missing);
        else if (!strcmp(a, "--tracks") && more) o.tracks = argv[++i];
        else if (!strcmp(a, "--truth") && more) o.truth = argv[++i];
        else if (!strcmp(a, "--names") && more) o.names = argv[++i];
        else if (!strcmp(a, "--group") && more) {
            static const char *const names[] = {"dash", "none"};
            static const int values[] = {TF_GROUP_DASH, TF_GROUP_NONE};
            if (choice_arg(a, argv[++i], names, values, 2, &o.group)) return 2;
        } else if (!strcmp(a, "--robust") && more) {
            static const char *const names[] = {"on", "off", "auto", "global"};
            static const int values[] = {1, 0, -1, 2};
            if (choice_arg(a, argv[++i], names, values, 4, &o.robust)) return 2;
        } else if (!strcmp(a, "--search") && more) {
            if (onoff_arg(a, argv[++i], &o.search)) return 2;
        } else if (!strcmp(a, "--lambda-sweep") && more) {
            bad = sweep_arg(argv[++i], &o);
        } else if (!strcmp(a, "--robust-loss") && more) {
            static const char *const names[] = {"px", "scale"};
            static const int values[] = {1, 0};
            if (choice_arg(a, argv[++i], names, values, 2, &o.robust_loss_px)) return 2;
        } else if (!strcmp(a, "--referee") && more) {
            if (onoff_arg(a, argv[++i], &o.referee)) return 2;
        } else if (!strcmp(a, "--votes") && more) {
            static const char *const names[] = {"fit", "precision"};
            static const int values[] = {1, 0};
            if (choice_arg(a, argv[++i], names, values, 2, &o.votes)) return 2;
        } else if (!strcmp(a, "--per-sequence")) per_seq = 1;
        else if (!strcmp(a, "--test-fraction") && more) bad = num_arg(a, argv[++i], &o.test_fraction);
        else if (!strcmp(a, "--seed") && more) {
            bad = u64_arg(a, argv[++i], &o.seed);
            o.gen.seed = o.seed;
        } else if (!strcmp(a, "--epochs") && more) bad = int_arg(a, argv[++i], &o.epochs);
        else if (!strcmp(a, "--batch") && more) bad = int_arg(a, argv[++i], &o.batch);
        else if (!strcmp(a, "--lr") && more) bad = num_arg(a, argv[++i], &o.lr);
        else if (!strcmp(a, "--lambda") && more) bad = num_arg(a, argv[++i], &o.lambda);
        else if (!strcmp(a, "--threads") && more) bad = int_arg(a, argv[++i], &o.threads);
        else if (!strcmp(a, "--threshold") && more) bad = num_arg(a, argv[++i], &o.threshold);
        else if (!strcmp(a, "--json") && more) json = argv[++i];
        else if (!strcmp(a, "--plot") && more) plot = argv[++i];
        else if (!strcmp(a, "--quiet")) o.verbose = 0;
        else {
            fprintf(stderr, "tracker_fusion: unknown or incomplete option '%s' (see --help)\n", a);
            return 2;
        }
        if (bad) return 2;
    }
    if (o.gen.sequences < 3 || o.gen.min_frames < 10 || o.gen.max_frames < o.gen.min_frames ||
        o.gen.trackers < 1 || o.gen.trackers > TF_MAX_TRACKERS || !(o.gen.missing >= 0) ||
        !(o.gen.missing < 1) || !(o.test_fraction > 0) || !(o.test_fraction < 1) ||
        o.epochs < 1 || o.batch < 1 || !(o.lr > 0) || !(o.lambda >= 0) || o.threads < 0 ||
        !(o.threshold > 0)) {
        fprintf(stderr, "tracker_fusion: an option is out of range (see --help)\n");
        return 2;
    }
#ifdef WIBERG_MPI
    /* every trainer across the ranks; rank 0 prints and writes */
    const char **outs[2] = {&json, &plot};
    if (wbx_mpi_begin(&argc, &argv, outs, 2) < 0) return 1;
#endif
    /* the plots' directory first: no run that cannot save its output */
    if (plot && mkdir(plot, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "tracker_fusion: cannot create %s: %s\n", plot, strerror(errno));
        return 1;
    }
    tf_result r;
    char err[512];
    if (o.tracks)
        printf("tracker_fusion: %s with truth %s\n", o.tracks, o.truth ? o.truth : "(none)");
    else
        printf("tracker_fusion: %d synthetic videos of %d..%d frames, %d trackers, seed %llu\n",
               o.gen.sequences, o.gen.min_frames, o.gen.max_frames, o.gen.trackers,
               (unsigned long long)o.seed);
    fflush(stdout); /* before the per-epoch progress on stderr */
    if (tf_run(&o, &r, err, sizeof err) != 0) {
        fprintf(stderr, "tracker_fusion: %s\n", err);
        return 1;
    }
    printf("split by video: %d train, %d validation, %d test (held out)\n\n", r.train_seqs,
           r.val_seqs, r.test_seqs);
    /* CLE, P@20 and AUC averaged per sequence (OTB); then the pooled mean
       error and success over all test frames */
    char succ[32];
    snprintf(succ, sizeof succ, "<=%gpx", o.threshold);
    printf("%-30s %8s %6s %6s | %9s %8s | %8s %7s\n", "method (test sequences)", "CLE px",
           "P@20", "AUC", "pooled px", succ, "train s", "solves");
    int learned = -1;
    for (int i = 0; i < r.count; i++) {
        const tf_method *m = &r.m[i];
        if (!strcmp(m->key, "learned")) learned = i;
        char auc[16];
        if (isfinite(m->test.auc)) snprintf(auc, sizeof auc, "%.3f", m->test.auc);
        else snprintf(auc, sizeof auc, "-");
        printf("%-30s %8.2f %6.3f %6s | %9.3f %7.1f%% | %8.2f %7ld%s\n", m->label, m->test.cle,
               m->test.prec20, auc, m->test.mean_error, 100 * m->test.success,
               m->train_seconds, m->solves, m->failed ? "  FAILED SOLVES" : "");
        if (m->failed) printf("    (%d of the test solves failed; their best points are scored)\n", m->failed);
    }
    printf("\n(CLE, P@20, AUC: averaged per sequence as OTB does; AUC '-': no box sizes)\n");
    printf("learned: alpha %.4g, delta %.4g px, tracker weights", exp(r.theta[r.K]),
           exp(r.theta[r.K + 1]));
    for (int k = 0; k < r.K; k++) printf(" %.3g", exp(r.theta[k]));
    printf("\n");
    /* the claim, against the methods chosen without the test data (not the
       single trackers' own rows nor the oracle), on the pooled mean error */
    int beats = learned >= 0;
    for (int i = 0; i < r.count && beats; i++)
        if (i != learned && strcmp(r.m[i].key, "single") && strcmp(r.m[i].key, "oracle") &&
            strcmp(r.m[i].key, "nonconvex") && strcmp(r.m[i].key, "end_to_end") &&
            strcmp(r.m[i].key, "nonconvex_referee") &&
            r.m[i].test.mean_error <= r.m[learned].test.mean_error)
            beats = 0;
    printf("the learned energy %s every baseline on the held-out videos\n",
           beats ? "beats" : "does NOT beat");
    /* the robust rows: training figures, and against the oracle single
       tracker (picked on the test sequences) per metric */
    const tf_method *orc = NULL;
    for (int i = 0; i < r.count; i++)
        if (!strcmp(r.m[i].key, "oracle")) orc = &r.m[i];
    for (int e = 0; e < r.robust_rows; e++) {
        const tf_robust_fit *f = &r.robust[e];
        const tf_method *m = NULL;
        for (int i = 0; i < r.count; i++)
            if (!strcmp(r.m[i].key, e ? "end_to_end" : "nonconvex")) m = &r.m[i];
        printf("%s: lambda %g, best epoch %d of %d (0: the start), %lld solves, %lld skipped steps' examples, "
               "%d of %d training derivatives refused at the learned theta; %.1f s wall, %.1f s CPU\n",
               e ? "end to end" : "non-convex learned", o.lambda, f->best_epoch + 1, f->epochs,
               f->solves, f->skipped, f->refused, f->checked, f->seconds, f->cpu_seconds);
        if (f->search_evals)
            printf("    basin search: training score %.4f -> %.4f (%d evaluations)\n",
                   f->search_before, f->search_after, f->search_evals);
        if (m && orc)
            printf("    vs the oracle single tracker: CLE %s, P@20 %s, AUC %s\n",
                   m->test.cle < orc->test.cle ? "better" : "worse",
                   m->test.prec20 > orc->test.prec20 ? "better" : "not better",
                   m->test.auc > orc->test.auc ? "better" : "not better");
    }
    if (r.robust_rows) {
        printf("start weights (%s):", r.vote_done ? "fitted on the training disagreements" : "from the training P@20");
        for (int k = 0; k < r.K; k++) printf(" %s %.3g", r.all.names[k], r.w_start[k]);
        printf("\n");
        if (r.vote_done)
            printf("    from %ld (hit, miss) pairs, ranking loss %.4f -> %.4f; the P@20 weights were", r.vote.pairs,
                   r.vote.loss_before, r.vote.loss_after);
        for (int k = 0; r.vote_done && k < r.K; k++) printf(" %.3g", r.w_prec[k]);
        if (r.vote_done) printf("\n");
    }
    if (r.ref_done) {
        const tf_method *m = NULL, *bs = NULL;
        for (int i = 0; i < r.count; i++) {
            if (!strcmp(r.m[i].key, "nonconvex_referee")) m = &r.m[i];
            if (!strcmp(r.m[i].key, "best_single")) bs = &r.m[i];
        }
        printf("referee (non-convex learned vs %s where they part by > %.0f px): u = %.3g %+.3g support "
               "%+.3g agreement %+.3g log(1 + length / 30), the tracker where u > 0;\n    training: %d segments, %d "
               "switched (mean CLE %+.2f px); test: %d segments, %d switched\n",
               r.all.names[r.ref_tracker], TF_PREC_PX, r.ref_beta[0], r.ref_beta[1], r.ref_beta[2], r.ref_beta[3],
               r.ref_segs, r.ref_switched, -r.ref_gain, r.ref_test_segs, r.ref_test_switched);
        if (!r.ref_used)
            printf("    the switches do not lower the training error: the fusion is kept everywhere\n");
        if (m && bs)
            printf("    vs the best single tracker (train-chosen): CLE %s, P@20 %s, AUC %s\n",
                   m->test.cle < bs->test.cle ? "better" : "not better",
                   m->test.prec20 > bs->test.prec20 ? "better" : "not better",
                   m->test.auc > bs->test.auc ? "better" : "not better");
    }
    if (r.sweep_rows) {
        printf("\nlambda sweep (non-convex learned row; held-out CLE / P@20 / AUC; training:\n"
               "skipped examples of the solves; at the learned theta: refused derivatives of the\n"
               "training sequences and the smallest curvature sigma of H + lambda I, min / median):\n");
        printf("%10s %8s %6s %6s | %7s %8s %8s %10s %10s\n", "lambda", "CLE px", "P@20", "AUC",
               "skipped", "solves", "refused", "sigma min", "sigma med");
        for (int e = 0; e < r.sweep_rows; e++) {
            const tf_robust_fit *f = &r.sweep[e];
            char key[48];
            snprintf(key, sizeof key, "nonconvex_lambda_%g", r.sweep_lambda[e]);
            for (int i = 0; i < r.count; i++)
                if (!strcmp(r.m[i].key, key))
                    printf("%10g %8.2f %6.3f %6.3f | %7lld %8lld %4d/%-3d %10.3g %10.3g\n",
                           r.sweep_lambda[e], r.m[i].test.cle, r.m[i].test.prec20, r.m[i].test.auc,
                           f->skipped, f->solves, f->refused, f->checked, f->sigma_min,
                           f->sigma_med);
        }
    }
    if (per_seq) {
        printf("\nper test sequence (CLE px / P@20 / AUC):\n");
        for (int q = 0; q < r.test_seqs; q++) {
            const tf_seq *s = &r.all.seq[r.test_idx[q]];
            printf("%s (%d frames)\n", s->name, s->T);
            for (int i = 0; i < r.count; i++) {
                const tf_metrics *mt = &r.m[i].per_seq[q];
                char auc[16];
                if (isfinite(mt->auc)) snprintf(auc, sizeof auc, "%.3f", mt->auc);
                else snprintf(auc, sizeof auc, "-");
                printf("    %-30s %8.2f %6.3f %6s\n", r.m[i].label, mt->cle, mt->prec, auc);
            }
            /* the robust rows and the sweep's: H's curvature at their minimizer */
            for (int e = 0; e < r.robust_rows + r.sweep_rows; e++) {
                const tf_robust_fit *f = e < r.robust_rows ? &r.robust[e] : &r.sweep[e - r.robust_rows];
                char lab[64];
                if (e < r.robust_rows) snprintf(lab, sizeof lab, "%s", e ? "end to end" : "non-convex learned");
                else snprintf(lab, sizeof lab, "non-convex, lambda %g", r.sweep_lambda[e - r.robust_rows]);
                if (!f->test_sigma) continue;
                if (f->test_refused[q])
                    printf("    %-30s sigma of H: not positive definite (undamped derivative refused)\n", lab);
                else if (isfinite(f->test_sigma[q]))
                    printf("    %-30s sigma of H: %.3g\n", lab, f->test_sigma[q]);
                else printf("    %-30s sigma of H: not reached\n", lab);
            }
        }
    }
    if (json && tf_write_json(&r, json) != 0) {
        fprintf(stderr, "tracker_fusion: cannot write %s\n", json);
        tf_result_free(&r);
        return 1;
    }
    if (plot && tf_write_svg(&r, plot) != 0) {
        fprintf(stderr, "tracker_fusion: cannot write plots into %s\n", plot);
        tf_result_free(&r);
        return 1;
    }
#ifdef WIBERG_MPI
    if (json && wbx_mpi_json_ranks(json) != 0) {
        fprintf(stderr, "tracker_fusion: cannot write %s\n", json);
        tf_result_free(&r);
        return 1;
    }
#endif
    if (json) printf("wrote %s\n", json);
    if (plot) printf("wrote %s/trajectory.svg, %s/loss.svg\n", plot, plot);
    int failed = r.failed_solves;
    tf_result_free(&r);
    if (failed) {
        fprintf(stderr, "tracker_fusion: %d solves on the test sequences failed (see the table)\n", failed);
        return 3;
    }
    return 0;
}
