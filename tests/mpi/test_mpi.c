/* The trainer across MPI ranks (run under mpirun with 2 or more ranks):
 * every result is compared, bit for bit, with the trainer of one process
 * without a communicator, trained in the same job on the same data. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mpi.h>

#include <wiberg.h>
#include <wiberg_mpi.h>

#include "tf.h"
#include "wb_test.h"

static int rank, ranks;
static tf_data all, train, val;
static wb_dataset dtr, dva;
static wb_dataset inner; /* tf_dataset(&train), wrapped by dtr */
static char dir[256];    /* a scratch directory, the same name on every rank */

/* The training set with one example whose loss always fails: a skipped
   example must be skipped alike on every rank. */
static int w_energy(void *u, int i, wb_energy *e) { (void)u; return inner.energy(inner.user, i, e); }
static int w_start(void *u, int i, double *x) { (void)u; return inner.start(inner.user, i, x); }
static int w_loss(void *u, int i, const double *x, double *l, double *dl) {
    (void)u;
    if (i == 2) return -1;
    return inner.loss(inner.user, i, x, l, dl);
}

static void settings(wb_train_settings *ts, double *lo, double *hi, double *w0) {
    int K = all.K;
    wb_train_settings_default(ts);
    ts->solver.grad_tol = 1e-6;
    ts->lr = 0.05;
    ts->schedule = WB_LR_COSINE;
    ts->lr_min = 0.005;
    ts->batch_size = 3; /* 7 training videos: the last batch of an epoch
                           has one example, so a rank idles */
    ts->epochs = 3;
    ts->seed = 7;
    ts->threads = 1;
    ts->validation = &dva;
    for (int k = 0; k < K + 2; k++) w0[k] = 0.0, lo[k] = -9, hi[k] = 9;
    w0[K + 1] = log(5.0);
    lo[K + 1] = log(0.05);
    ts->lower = lo;
    ts->upper = hi;
}

typedef struct {
    double w[TF_MAX_TRACKERS + 2], bw[TF_MAX_TRACKERS + 2], best;
    wb_train_info info;
} result_t;

static void finish(wb_trainer *t, result_t *r) {
    wb_status st;
    while ((st = wb_trainer_step(t, NULL)) == WB_OK) {}
    assert_int_equal(st, WB_DONE);
    assert_int_equal(wb_trainer_w(t, r->w), WB_OK);
    assert_int_equal(wb_trainer_best_w(t, r->bw, &r->best), WB_OK);
    assert_int_equal(wb_trainer_info(t, &r->info), WB_OK);
}

/* the figures that must agree bit for bit (time aside) */
static void same_result(const result_t *a, const result_t *b) {
    size_t P = (size_t)(all.K + 2) * sizeof(double);
    assert_memory_equal(a->w, b->w, P);
    assert_memory_equal(a->bw, b->bw, P);
    assert_memory_equal(&a->best, &b->best, sizeof a->best);
    assert_memory_equal(&a->info.loss, &b->info.loss, sizeof(double));
    assert_memory_equal(&a->info.epoch_loss, &b->info.epoch_loss, sizeof(double));
    assert_memory_equal(&a->info.val_loss, &b->info.val_loss, sizeof(double));
    assert_memory_equal(&a->info.grad_norm, &b->info.grad_norm, sizeof(double));
    assert_int_equal(a->info.step, b->info.step);
    assert_int_equal(a->info.skipped_total, b->info.skipped_total);
    assert_int_equal(a->info.best_step, b->info.best_step);
    assert_int_equal(a->info.inner_solves, b->info.inner_solves);
}

/* w of every rank is the same: rank 0's, sent to all */
static void same_on_every_rank(const double *w) {
    double w0[TF_MAX_TRACKERS + 2];
    size_t P = (size_t)(all.K + 2);
    memcpy(w0, w, P * sizeof(double));
    MPI_Bcast(w0, (int)P, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    assert_memory_equal(w0, w, P * sizeof(double));
}

static wb_trainer *make_sched(int comm, int threads, const char *ckpt, int sched) {
    wb_train_settings ts;
    double lo[TF_MAX_TRACKERS + 2], hi[TF_MAX_TRACKERS + 2], w0[TF_MAX_TRACKERS + 2];
    settings(&ts, lo, hi, w0);
    ts.threads = threads;
    ts.checkpoint_path = ckpt;
    ts.checkpoint_every = 1000; /* only at epoch ends: the run's end */
    wb_trainer *t = NULL;
    assert_int_equal(wb_trainer_create(&t, &dtr, w0, &ts), WB_OK);
    if (comm) {
        assert_int_equal(wb_trainer_set_comm(t, MPI_COMM_WORLD), WB_OK);
        wb_mpi_schedule s;
        assert_int_equal(wb_trainer_mpi_schedule(t, &s), WB_OK);
        assert_int_equal(s, WB_MPI_DYNAMIC); /* the default (shared memory) */
        if (sched >= 0) {
            assert_int_equal(wb_trainer_set_mpi_schedule(t, (wb_mpi_schedule)sched), WB_OK);
            assert_int_equal(wb_trainer_mpi_schedule(t, &s), WB_OK);
            assert_int_equal(s, sched);
        }
    }
    return t;
}

/* a trainer with the default schedule (dynamic here) */
static wb_trainer *make(int comm, int threads, const char *ckpt) {
    return make_sched(comm, threads, ckpt, -1);
}

static void ranks_train_to_the_single_process_w_bit_for_bit(void **state) {
    (void)state;
    result_t one, many;
    wb_trainer *t = make(0, 1, NULL);
    finish(t, &one);
    wb_trainer_destroy(t);
    assert_true(one.info.skipped_total > 0); /* example 2 was skipped */
    /* both schedules; threads differ between the ranks too: rank 0 two
       (it takes two slots at a time in the dynamic schedule), the others
       one; then the schedule switched every step */
    for (int sched = 0; sched < 3; sched++) {
        t = make_sched(1, rank == 0 ? 2 : 1, NULL, sched < 2 ? sched : -1);
        if (sched < 2) {
            finish(t, &many);
        } else {
            wb_status st;
            int k = 0;
            do {
                assert_int_equal(wb_trainer_set_mpi_schedule(t, (wb_mpi_schedule)(k++ % 2)), WB_OK);
            } while ((st = wb_trainer_step(t, NULL)) == WB_OK);
            assert_int_equal(st, WB_DONE);
            assert_int_equal(wb_trainer_w(t, many.w), WB_OK);
            assert_int_equal(wb_trainer_best_w(t, many.bw, &many.best), WB_OK);
            assert_int_equal(wb_trainer_info(t, &many.info), WB_OK);
        }
        wb_mpi_times tm;
        assert_int_equal(wb_trainer_mpi_times(t, &tm), WB_OK);
        assert_int_equal(tm.ranks, ranks);
        assert_int_equal(tm.steps, many.info.step);
        assert_true(tm.solve_s > 0 && tm.adjoint_s > 0);
        long long ex = tm.examples, sum = 0;
        MPI_Allreduce(&ex, &sum, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
        assert_int_equal(sum, 3LL * train.count); /* each example once an epoch */
        wb_trainer_destroy(t);
        same_result(&one, &many);
        same_on_every_rank(many.w);
    }
}

static void schedule_calls_refuse_bad_arguments(void **state) {
    (void)state;
    wb_mpi_schedule s;
    assert_int_equal(wb_trainer_set_mpi_schedule(NULL, WB_MPI_STATIC), WB_EINVAL);
    assert_non_null(strstr(wb_last_error(), "t is NULL"));
    assert_int_equal(wb_trainer_mpi_schedule(NULL, &s), WB_EINVAL);
    assert_non_null(strstr(wb_last_error(), "t is NULL"));
    wb_trainer *t = make(0, 1, NULL);
    assert_int_equal(wb_trainer_set_mpi_schedule(t, WB_MPI_STATIC), WB_EINVAL);
    assert_non_null(strstr(wb_trainer_message(t), "no communicator"));
    assert_int_equal(wb_trainer_mpi_schedule(t, &s), WB_EINVAL);
    assert_non_null(strstr(wb_trainer_message(t), "no communicator"));
    wb_trainer_destroy(t);
    t = make(1, 1, NULL);
    assert_int_equal(wb_trainer_mpi_schedule(t, NULL), WB_EINVAL);
    assert_non_null(strstr(wb_trainer_message(t), "out is NULL"));
    /* not a schedule, on every rank or on one: refused on all */
    assert_int_equal(wb_trainer_set_mpi_schedule(t, (wb_mpi_schedule)7), WB_EINVAL);
    assert_non_null(strstr(wb_trainer_message(t), "not a wb_mpi_schedule"));
    assert_int_equal(wb_trainer_set_mpi_schedule(t, rank == 1 ? (wb_mpi_schedule)-3
                                                              : WB_MPI_STATIC), WB_EINVAL);
    assert_non_null(strstr(wb_trainer_message(t), rank == 1 ? "s = -3 is not a wb_mpi_schedule"
                                                           : "another rank passed"));
    /* different schedules on the ranks: refused on all, the old one kept */
    assert_int_equal(wb_trainer_set_mpi_schedule(t, rank == 1 ? WB_MPI_STATIC
                                                              : WB_MPI_DYNAMIC), WB_EINVAL);
    assert_non_null(strstr(wb_trainer_message(t), "different schedules"));
    assert_int_equal(wb_trainer_mpi_schedule(t, &s), WB_OK);
    assert_int_equal(s, WB_MPI_DYNAMIC);
    /* the trainer still works after the refusals */
    assert_int_equal(wb_trainer_step(t, NULL), WB_OK);
    wb_trainer_destroy(t);
}

static void evaluation_is_shared_and_equal(void **state) {
    (void)state;
    /* both schedules (dynamic: the examples taken from the counter) */
    for (int sched = 0; sched < 2; sched++) {
        wb_trainer *a = make(0, 1, NULL), *b = make_sched(1, 1 + (rank == 0), NULL, sched);
        double w[TF_MAX_TRACKERS + 2], la[64], lb[64], ma, mb;
        int fa, fb;
        assert_true(all.count <= 64);
        for (int k = 0; k < all.K + 2; k++) w[k] = 0.1 * k;
        wb_dataset dall = tf_dataset(&all);
        assert_int_equal(wb_trainer_evaluate(a, &dall, w, &ma, &fa, la), WB_OK);
        assert_int_equal(wb_trainer_evaluate(b, &dall, w, &mb, &fb, lb), WB_OK);
        assert_memory_equal(la, lb, sizeof(double) * (size_t)all.count);
        assert_memory_equal(&ma, &mb, sizeof ma);
        assert_int_equal(fa, fb);
        wb_train_info ia, ib;
        wb_trainer_info(a, &ia);
        wb_trainer_info(b, &ib);
        assert_int_equal(ia.inner_solves, ib.inner_solves); /* all ranks' solves */
        wb_trainer_destroy(a);
        wb_trainer_destroy(b);
    }
}

static int read_file(const char *path, unsigned char **buf, long *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    *len = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc((size_t)*len + 1);
    size_t got = *buf ? fread(*buf, 1, (size_t)*len, f) : 0;
    fclose(f);
    return got == (size_t)*len ? 0 : -1;
}

static void checkpoint_equals_the_single_process_file_and_resumes(void **state) {
    (void)state;
    char mine[512], dist[512];
    snprintf(mine, sizeof mine, "%s/local.%d.ck", dir, rank);
    snprintf(dist, sizeof dist, "%s/dist.ck", dir);
    result_t ref, res;
    wb_trainer *t = make(0, 1, NULL);
    finish(t, &ref);
    wb_trainer_destroy(t);
    /* 4 steps, then save: the same bytes as one process's file */
    wb_trainer *a = make(0, 1, NULL), *b = make(1, 1, NULL);
    for (int k = 0; k < 4; k++) {
        assert_int_equal(wb_trainer_step(a, NULL), WB_OK);
        assert_int_equal(wb_trainer_step(b, NULL), WB_OK);
    }
    assert_int_equal(wb_trainer_save(a, mine), WB_OK);
    assert_int_equal(wb_trainer_save(b, dist), WB_OK); /* collective */
    wb_trainer_destroy(a);
    wb_trainer_destroy(b);
    MPI_Barrier(MPI_COMM_WORLD);
    unsigned char *fa = NULL, *fb = NULL;
    long la = 0, lb = 0;
    assert_int_equal(read_file(mine, &fa, &la), 0);
    assert_int_equal(read_file(dist, &fb, &lb), 0);
    assert_int_equal(la, lb);
    assert_memory_equal(fa, fb, (size_t)la);
    free(fa);
    free(fb);
    /* resumed across the ranks, and in one process: the uninterrupted w */
    b = make(1, 1, NULL);
    assert_int_equal(wb_trainer_load(b, dist), WB_OK);
    finish(b, &res);
    wb_trainer_destroy(b);
    same_result(&ref, &res);
    a = make(0, 1, NULL);
    assert_int_equal(wb_trainer_load(a, dist), WB_OK);
    finish(a, &res);
    wb_trainer_destroy(a);
    same_result(&ref, &res);
    /* a missing file: WB_EIO on every rank, with rank 0's sentence */
    b = make(1, 1, NULL);
    char missing[600];
    snprintf(missing, sizeof missing, "%s/none.ck", dir);
    assert_int_equal(wb_trainer_load(b, missing), WB_EIO);
    assert_non_null(strstr(wb_trainer_message(b), "cannot open"));
    wb_trainer_destroy(b);
    remove(mine);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) remove(dist);
}

static void set_comm_refuses_bad_arguments_and_differing_trainers(void **state) {
    (void)state;
    assert_int_equal(wb_trainer_set_comm(NULL, MPI_COMM_WORLD), WB_EINVAL);
    assert_non_null(strstr(wb_last_error(), "t is NULL"));
    wb_trainer *t = make(0, 1, NULL);
    assert_int_equal(wb_trainer_set_comm(t, MPI_COMM_NULL), WB_EINVAL);
    assert_non_null(strstr(wb_trainer_message(t), "MPI_COMM_NULL"));
    wb_mpi_times tm;
    assert_int_equal(wb_trainer_mpi_times(t, &tm), WB_EINVAL);
    assert_non_null(strstr(wb_trainer_message(t), "no communicator"));
    assert_int_equal(wb_trainer_mpi_times(t, NULL), WB_EINVAL);
    assert_int_equal(wb_trainer_mpi_times(NULL, &tm), WB_EINVAL);
    /* trainers that differ (rank 1 has taken a step): refused on all */
    if (rank == 1) assert_int_equal(wb_trainer_step(t, NULL), WB_OK);
    assert_int_equal(wb_trainer_set_comm(t, MPI_COMM_WORLD), WB_EINVAL);
    assert_non_null(strstr(wb_trainer_message(t), "differ"));
    assert_int_equal(wb_trainer_mpi_times(t, &tm), WB_EINVAL); /* still local */
    wb_trainer_destroy(t);
}

static void default_comm_applies_to_trainers_created_after_it(void **state) {
    (void)state;
    wb_mpi_times tm;
    assert_int_equal(wb_mpi_set_default_comm(MPI_COMM_WORLD), WB_OK);
    wb_trainer *t = make(0, 1, NULL);
    assert_int_equal(wb_trainer_mpi_times(t, &tm), WB_OK);
    assert_int_equal(tm.ranks, ranks);
    assert_int_equal(tm.rank, rank);
    wb_trainer_destroy(t);
    assert_int_equal(wb_mpi_set_default_comm(MPI_COMM_NULL), WB_OK);
    t = make(0, 1, NULL);
    assert_int_equal(wb_trainer_mpi_times(t, &tm), WB_EINVAL);
    wb_trainer_destroy(t);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    tf_gen_opts g;
    tf_gen_default(&g);
    g.sequences = 10;
    g.min_frames = 40;
    g.max_frames = 160;
    g.seed = 3;
    if (tf_generate(&g, &all) != 0 || tf_split(&all, 0.3, 3, &train, &val) != 0) {
        fprintf(stderr, "test_mpi: out of memory\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    inner = tf_dataset(&train);
    dtr = (wb_dataset){train.count, NULL, w_energy, w_start, w_loss};
    dva = tf_dataset(&val);
    /* a scratch directory named by rank 0 */
    if (rank == 0) {
        snprintf(dir, sizeof dir, "%s/wb_mpi_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(dir)) MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ranks_train_to_the_single_process_w_bit_for_bit),
        cmocka_unit_test(evaluation_is_shared_and_equal),
        cmocka_unit_test(checkpoint_equals_the_single_process_file_and_resumes),
        cmocka_unit_test(set_comm_refuses_bad_arguments_and_differing_trainers),
        cmocka_unit_test(schedule_calls_refuse_bad_arguments),
        cmocka_unit_test(default_comm_applies_to_trainers_created_after_it),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) rmdir(dir);
    tf_split_free(&train);
    tf_split_free(&val);
    tf_data_free(&all);
    /* a failure on one rank fails the job (the others may wait for it) */
    if (rc != 0) MPI_Abort(MPI_COMM_WORLD, rc);
    MPI_Finalize();
    return rc;
}
