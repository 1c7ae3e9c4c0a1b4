/* mpi_train: the tracker-fusion training run across MPI ranks, for the MPI
 * script tests (bit-identical w for any number of ranks, kill and resume)
 * and for the measurements in docs/PERFORMANCE.md.
 *
 *   mpirun -np 2 mpi_train --sequences 12 --epochs 3 --w-out w2.txt
 *   mpirun -np 2 mpi_train --tracks tracks.csv.gz --truth truth.csv.gz --times
 *
 * It trains the tracker_fusion energy (examples/tracker_fusion) on seeded
 * synthetic videos or on CSV data, with a held-out validation set, and
 * prints (rank 0) the final w as hexadecimal floats (exact), the figures of
 * the run, and with --times where each rank's time went.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mpi.h>

#include <wiberg.h>
#include <wiberg_mpi.h>

#include "tf.h"

static void usage(FILE *f) {
    fprintf(f,
        "usage: [mpirun -np R] mpi_train [options]\n"
        "\n"
        "Trains the tracker_fusion energy across the MPI ranks (one process without\n"
        "mpirun) and prints the learned w exactly (hexadecimal floats).\n"
        "\n"
        "data (default: seeded synthetic videos):\n"
        "  --sequences N     synthetic videos (default 16)\n"
        "  --frames MIN:MAX  frames per video (default 60:200)\n"
        "  --tracks FILE     tracker outputs CSV, uncompressed (as tracker_fusion --tracks)\n"
        "  --truth FILE      ground truth CSV\n"
        "  --val-fraction F  share of the videos held out for validation (default 0.25)\n"
        "training:\n"
        "  --epochs N        (default 3)\n"
        "  --batch N         examples per step (default 5)\n"
        "  --threads N       threads per rank (default 1)\n"
        "  --lr X            Adam rate (default 0.05)\n"
        "  --seed S          data, split and shuffle seed (default 1)\n"
        "  --schedule S      dynamic (default: ranks take examples from a shared\n"
        "                    counter, MPI one-sided) or static (shares fixed before\n"
        "                    each step by size n); the same w either way\n"
        "  --local           train in this process alone, without a communicator\n"
        "                    (the reference run; with mpirun every rank does it)\n"
        "  --checkpoint F    write F every --every steps (default 1) and at the end\n"
        "  --every K\n"
        "  --resume          load --checkpoint F first\n"
        "  --step-delay MS   sleep MS milliseconds after each step (to kill mid-run)\n"
        "  --pid-file P      each rank writes its process id to P.RANK\n"
        "output:\n"
        "  --w-out FILE      w as hexadecimal floats, one a line (rank 0)\n"
        "  --times           the time per step and its parts, per rank\n"
        "  --costs FILE      each training solve's CPU time: example,n,seconds (with\n"
        "                    --local and --threads 1)\n"
        "  --help            this text\n");
}

static int num(const char *flag, const char *s, double *v) {
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || errno || !isfinite(*v)) {
        fprintf(stderr, "mpi_train: %s wants a number, not '%s'\n", flag, s);
        return -1;
    }
    return 0;
}

static int inum(const char *flag, const char *s, int *v) {
    double d;
    if (num(flag, s, &d)) return -1;
    if (d != floor(d) || fabs(d) > 1e9) {
        fprintf(stderr, "mpi_train: %s wants an integer, not '%s'\n", flag, s);
        return -1;
    }
    *v = (int)d;
    return 0;
}

typedef struct {
    int sequences, fmin, fmax, epochs, batch, threads, local, every, resume,
        delay_ms, times, schedule; /* schedule: -1 the default, else a
                                      wb_mpi_schedule */
    double lr, val_fraction;
    unsigned long long seed;
    const char *tracks, *truth, *ckpt, *pid_file, *w_out, *costs;
} opts_t;

/* --costs: the training set wrapped so that each solve's CPU time (from
   the energy callback, which starts it, to the loss callback, which
   follows it) is written as "example,n,seconds" (one thread, --local) */
static wb_dataset costs_inner;
static FILE *costs_f;
static double costs_t0;
static double thread_cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static int c_energy(void *u, int i, wb_energy *e) {
    (void)u;
    costs_t0 = thread_cpu();
    return costs_inner.energy(costs_inner.user, i, e);
}
static int c_start(void *u, int i, double *x) {
    (void)u;
    return costs_inner.start(costs_inner.user, i, x);
}
static int c_loss(void *u, int i, const double *x, double *l, double *dl) {
    (void)u;
    if (dl && costs_f) {
        wb_energy e;
        costs_inner.energy(costs_inner.user, i, &e);
        fprintf(costs_f, "%d,%d,%.9f\n", i, e.n, thread_cpu() - costs_t0);
    }
    return costs_inner.loss(costs_inner.user, i, x, l, dl);
}

/* 0 ok, 1 help, 2 bad */
static int parse(int argc, char **argv, opts_t *o) {
    memset(o, 0, sizeof *o);
    o->sequences = 16;
    o->fmin = 60;
    o->fmax = 200;
    o->epochs = 3;
    o->batch = 5;
    o->threads = 1;
    o->every = 1;
    o->lr = 0.05;
    o->val_fraction = 0.25;
    o->seed = 1;
    o->schedule = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0, used = 1;
        double d;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return 1;
        else if (!strcmp(a, "--local")) { o->local = 1; used = 0; }
        else if (!strcmp(a, "--resume")) { o->resume = 1; used = 0; }
        else if (!strcmp(a, "--times")) { o->times = 1; used = 0; }
        else if (!v) { fprintf(stderr, "mpi_train: unknown or incomplete option '%s'\n", a); return 2; }
        else if (!strcmp(a, "--sequences")) bad = inum(a, v, &o->sequences);
        else if (!strcmp(a, "--frames")) {
            char tail;
            if (sscanf(v, "%d:%d%c", &o->fmin, &o->fmax, &tail) != 2) {
                fprintf(stderr, "mpi_train: --frames wants MIN:MAX, not '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--tracks")) o->tracks = v;
        else if (!strcmp(a, "--truth")) o->truth = v;
        else if (!strcmp(a, "--val-fraction")) bad = num(a, v, &o->val_fraction);
        else if (!strcmp(a, "--epochs")) bad = inum(a, v, &o->epochs);
        else if (!strcmp(a, "--batch")) bad = inum(a, v, &o->batch);
        else if (!strcmp(a, "--threads")) bad = inum(a, v, &o->threads);
        else if (!strcmp(a, "--lr")) bad = num(a, v, &o->lr);
        else if (!strcmp(a, "--seed")) {
            bad = num(a, v, &d);
            if (!bad && (d < 0 || d != floor(d))) bad = -1;
            o->seed = (unsigned long long)d;
        } else if (!strcmp(a, "--checkpoint")) o->ckpt = v;
        else if (!strcmp(a, "--every")) bad = inum(a, v, &o->every);
        else if (!strcmp(a, "--step-delay")) bad = inum(a, v, &o->delay_ms);
        else if (!strcmp(a, "--pid-file")) o->pid_file = v;
        else if (!strcmp(a, "--w-out")) o->w_out = v;
        else if (!strcmp(a, "--costs")) o->costs = v;
        else if (!strcmp(a, "--schedule")) {
            if (!strcmp(v, "dynamic")) o->schedule = WB_MPI_DYNAMIC;
            else if (!strcmp(v, "static")) o->schedule = WB_MPI_STATIC;
            else {
                fprintf(stderr, "mpi_train: --schedule wants dynamic or static, not '%s'\n", v);
                return 2;
            }
        }
        else { fprintf(stderr, "mpi_train: unknown option '%s' (see --help)\n", a); return 2; }
        if (bad) return 2;
        i += used;
    }
    if (o->sequences < 4 || o->fmin < 10 || o->fmax < o->fmin || o->epochs < 1 ||
        o->batch < 1 || o->threads < 0 || o->every < 0 || o->delay_ms < 0 ||
        !(o->lr > 0) || !(o->val_fraction > 0 && o->val_fraction < 1) ||
        (o->resume && !o->ckpt) || (!o->tracks != !o->truth) ||
        (o->costs && (!o->local || o->threads != 1))) {
        fprintf(stderr, "mpi_train: an option is out of range or missing its partner "
                "(--tracks with --truth, --resume with --checkpoint; see --help)\n");
        return 2;
    }
    return 0;
}

/* max and mean over the ranks of v (every rank gets them) */
static void over_ranks(double v, double *mx, double *mean) {
    int R;
    MPI_Comm_size(MPI_COMM_WORLD, &R);
    MPI_Allreduce(&v, mx, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(&v, mean, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    *mean /= R;
}

static void report_times(const wb_trainer *t, long long steps_run, double wall, double cpu,
                         int rank, int ranks) {
    wb_mpi_times tm;
    if (wb_trainer_mpi_times(t, &tm) != WB_OK) return;
    double v[7] = {tm.step_s, tm.solve_s, tm.adjoint_s, tm.gather_s, tm.warm_s,
                   tm.exchange_bytes, (double)tm.examples};
    const char *name[7] = {"step (all)", "solve", "adjoint", "gather", "warm starts",
                           "bytes in", "examples"};
    double mx[7], mean[7];
    for (int k = 0; k < 7; k++) over_ranks(v[k], &mx[k], &mean[k]);
    /* the pure cost of the step's Allgatherv without waiting: the same
       message size after a barrier, 200 times */
    double sz = steps_run > 0 ? mean[5] / (double)steps_run : 0, comm = 0;
    if (ranks > 1 && steps_run > 0) {
        int bytes = (int)(sz / (ranks - 1)) + 1;
        int *cnt = malloc(sizeof(int) * (size_t)ranks), *disp = malloc(sizeof(int) * (size_t)ranks);
        unsigned char *buf = calloc((size_t)bytes * (size_t)ranks, 1);
        if (cnt && disp && buf) {
            for (int r = 0; r < ranks; r++) cnt[r] = bytes, disp[r] = r * bytes;
            double acc = 0;
            for (int k = 0; k < 200; k++) {
                MPI_Barrier(MPI_COMM_WORLD);
                double t0 = MPI_Wtime();
                MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, cnt, disp, MPI_BYTE,
                               MPI_COMM_WORLD);
                acc += MPI_Wtime() - t0;
            }
            double mxc, mc;
            over_ranks(acc / 200, &mxc, &mc);
            comm = mxc;
        }
        free(cnt);
        free(disp);
        free(buf);
    }
    double cmx, cmean;
    over_ranks(cpu, &cmx, &cmean);
    if (rank != 0) return;
    printf("times over %lld steps on %d ranks (max / mean over ranks, per step, ms):\n",
           steps_run, ranks);
    for (int k = 0; k < 5; k++)
        printf("  %-11s %9.3f / %9.3f\n", name[k], 1e3 * mx[k] / (double)steps_run,
               1e3 * mean[k] / (double)steps_run);
    printf("  %-11s %9.0f / %9.0f bytes per step\n", name[5], mx[5] / (double)steps_run,
           mean[5] / (double)steps_run);
    printf("  %-11s %9.2f / %9.2f per step\n", name[6], mx[6] / (double)steps_run,
           mean[6] / (double)steps_run);
    printf("  allgather alone (after a barrier, max over ranks): %.4f ms\n", 1e3 * comm);
    printf("  wall %.3f s, %.3f ms per step\n", wall, 1e3 * wall / (double)steps_run);
    printf("  cpu of the training loop, max / mean over ranks: %.3f / %.3f ms per step\n",
           1e3 * cmx / (double)steps_run, 1e3 * cmean / (double)steps_run);
}

static double clock_s(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }

static int run(const opts_t *o, int rank, int ranks) {
    tf_data all, train, val;
    memset(&all, 0, sizeof all);
    char err[512];
    if (o->tracks) {
        if (tf_read_csv(o->tracks, o->truth, &all, err, sizeof err) != 0) {
            fprintf(stderr, "mpi_train: %s\n", err);
            return 1;
        }
    } else {
        tf_gen_opts g;
        tf_gen_default(&g);
        g.sequences = o->sequences;
        g.min_frames = o->fmin;
        g.max_frames = o->fmax;
        g.seed = o->seed;
        if (tf_generate(&g, &all) != 0) {
            fprintf(stderr, "mpi_train: out of memory\n");
            return 1;
        }
    }
    if (tf_split(&all, o->val_fraction, o->seed, &train, &val) != 0) {
        fprintf(stderr, "mpi_train: out of memory\n");
        tf_data_free(&all);
        return 1;
    }
    int K = all.K, p = K + 2, rc = 1;
    wb_dataset dtr = tf_dataset(&train), dva = tf_dataset(&val);
    wb_train_settings ts;
    wb_train_settings_default(&ts);
    ts.solver.grad_tol = 1e-6;
    ts.lr = o->lr;
    ts.schedule = WB_LR_COSINE;
    ts.lr_min = 0.1 * o->lr;
    ts.batch_size = o->batch;
    ts.epochs = o->epochs;
    ts.seed = o->seed;
    ts.threads = o->threads;
    ts.validation = &dva;
    ts.checkpoint_path = o->ckpt;
    ts.checkpoint_every = o->every;
    double w0[TF_MAX_TRACKERS + 2], lo[TF_MAX_TRACKERS + 2], hi[TF_MAX_TRACKERS + 2];
    for (int k = 0; k < p; k++) w0[k] = 0.0, lo[k] = -9, hi[k] = 9;
    w0[K + 1] = log(5.0);
    lo[K + 1] = log(0.05);
    ts.lower = lo;
    ts.upper = hi;
    wb_trainer *t = NULL;
    if (o->costs) {
        costs_inner = dtr;
        dtr = (wb_dataset){train.count, NULL, c_energy, c_start, c_loss};
        costs_f = fopen(o->costs, "w");
        if (!costs_f) {
            fprintf(stderr, "mpi_train: cannot write %s\n", o->costs);
            goto out;
        }
    }
    if (wb_trainer_create(&t, &dtr, w0, &ts) != WB_OK) {
        fprintf(stderr, "mpi_train: wb_trainer_create: %s\n", wb_last_error());
        goto out;
    }
    if (!o->local && wb_trainer_set_comm(t, MPI_COMM_WORLD) != WB_OK) {
        fprintf(stderr, "mpi_train: wb_trainer_set_comm: %s\n", wb_trainer_message(t));
        goto out;
    }
    if (!o->local && o->schedule >= 0 &&
        wb_trainer_set_mpi_schedule(t, (wb_mpi_schedule)o->schedule) != WB_OK) {
        fprintf(stderr, "mpi_train: %s\n", wb_trainer_message(t));
        goto out;
    }
    wb_mpi_schedule sched = WB_MPI_STATIC;
    if (!o->local) wb_trainer_mpi_schedule(t, &sched);
    if (o->resume && wb_trainer_load(t, o->ckpt) != WB_OK) {
        fprintf(stderr, "mpi_train: %s\n", wb_trainer_message(t));
        goto out;
    }
    if (o->pid_file) {
        char path[1024];
        snprintf(path, sizeof path, "%s.%d", o->pid_file, rank);
        FILE *f = fopen(path, "w");
        if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0) {
            fprintf(stderr, "mpi_train: cannot write %s\n", path);
            goto out;
        }
    }
    wb_train_info info;
    wb_trainer_info(t, &info);
    long long first = info.step;
    double t0 = now_s(), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    wb_status st;
    do {
        st = wb_trainer_step(t, &info);
        if (o->delay_ms > 0) {
            struct timespec d = {o->delay_ms / 1000, (long)(o->delay_ms % 1000) * 1000000L};
            nanosleep(&d, NULL);
        }
    } while (st == WB_OK);
    double wall = now_s() - t0, cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    if (st != WB_DONE) {
        fprintf(stderr, "mpi_train: step: %s: %s\n", wb_status_str(st), wb_trainer_message(t));
        goto out;
    }
    double w[TF_MAX_TRACKERS + 2], bw[TF_MAX_TRACKERS + 2], best;
    wb_trainer_w(t, w);
    wb_trainer_best_w(t, bw, &best);
    if (o->times && !o->local) report_times(t, info.step - first, wall, cpu, rank, ranks);
    if (rank == 0) {
        printf("%d train, %d validation videos; %lld steps (%lld here), %d ranks%s\n",
               train.count, val.count, info.step, info.step - first, o->local ? 1 : ranks,
               o->local ? " (local)" : sched == WB_MPI_DYNAMIC ? ", dynamic schedule"
                                                               : ", static schedule");
        printf("loss %.9g, validation %.9g (best %.9g at step %lld), %lld inner solves, "
               "%lld skipped\n", info.loss, info.val_loss, best, info.best_step,
               info.inner_solves, info.skipped_total);
        printf("w:");
        for (int k = 0; k < p; k++) printf(" %a", w[k]);
        printf("\n");
        if (o->w_out) {
            FILE *f = fopen(o->w_out, "w");
            int bad = !f;
            for (int k = 0; k < p && f; k++) bad |= fprintf(f, "%a\n", w[k]) < 0;
            for (int k = 0; k < p && f; k++) bad |= fprintf(f, "best %a\n", bw[k]) < 0;
            if (f) bad |= fprintf(f, "solves %lld\n", info.inner_solves) < 0;
            if (f && fclose(f) != 0) bad = 1;
            if (bad) {
                fprintf(stderr, "mpi_train: cannot write %s\n", o->w_out);
                goto out;
            }
        }
    }
    rc = 0;
out:
    if (costs_f && fclose(costs_f) != 0) rc = 1;
    costs_f = NULL;
    wb_trainer_destroy(t);
    tf_split_free(&train);
    tf_split_free(&val);
    tf_data_free(&all);
    return rc;
}

int main(int argc, char **argv) {
    opts_t o;
    int pr = parse(argc, argv, &o);
    if (pr == 1) {
        usage(stdout);
        return 0;
    }
    if (pr == 2) return 2;
    MPI_Init(&argc, &argv);
    int rank, ranks;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    int rc = run(&o, rank, ranks);
    /* a rank that failed takes the job down (the others may wait in a
       collective call) */
    if (rc != 0) MPI_Abort(MPI_COMM_WORLD, rc);
    MPI_Finalize();
    return rc;
}
