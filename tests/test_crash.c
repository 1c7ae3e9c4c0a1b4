#define _POSIX_C_SOURCE 200809L
/* Checkpoints survive crashes. A training process (this executable,
 * re-executed with --child) checkpoints after every step; the test kills it
 * with SIGKILL at seeded random moments, 20 times. Each time the checkpoint
 * on disk must be the previous or the new one -- never a torn file -- it
 * must load, and resuming from it must reach bit-for-bit the final w of an
 * uninterrupted run. The rounds form a chain (each child resumes from the
 * checkpoint the last one left). A kill inside a save leaves its
 * temporary file (path.tmp.PID.COUNTER) behind: it must break nothing, and the
 * next successful save removes it (the finishing run leaves none).
 *
 * The child reports over a pipe the step it starts from and every step it
 * finishes; wb_trainer_step returns only after the step's checkpoint is
 * renamed into place, so a reported step k means the file holds step k or,
 * if the child got through the next save but died before reporting it,
 * step k + 1.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "energies.h"

/* Example i: E_i = 1/2 x'A_i x - x'(C_i w + d_i), L_i = 1/2 ||x* - y_i||^2,
   y_i = x*_i(w_true) (as in test_train.c, larger). */
enum { NX = 4, PW = 3, NEX = 40, BATCH = 4, EPOCHS = 20 };
enum { ROUNDS = 20 };

typedef struct {
    quad_t q[NEX];
    double y[NEX][NX];
} cset_t;

static const double W_TRUE[PW] = {1.3, -0.4, 0.8};

static void cset_init(cset_t *S) {
    for (int i = 0; i < NEX; i++) {
        quad_init(&S->q[i], NX, PW, 500 + (uint64_t)i);
        double *y = S->y[i];
        for (int r = 0; r < NX; r++) {
            y[r] = S->q[i].d[r];
            for (int j = 0; j < PW; j++) y[r] += S->q[i].C[j * NX + r] * W_TRUE[j];
        }
        if (ref_spd_solve(NX, S->q[i].A, 0.0, 1, y) != 0) abort();
    }
}
static void cset_free(cset_t *S) {
    for (int i = 0; i < NEX; i++) quad_free(&S->q[i]);
}
static int cs_energy(void *u, int i, wb_energy *e) {
    *e = quad_energy(&((cset_t *)u)->q[i]);
    return 0;
}
static int cs_start(void *u, int i, double *x0) {
    (void)u; (void)i;
    for (int r = 0; r < NX; r++) x0[r] = 0.0;
    return 0;
}
static int cs_loss(void *u, int i, const double *x, double *l, double *dl) {
    return sq_loss(NX, x, ((cset_t *)u)->y[i], l, dl);
}

static const double W0[PW] = {0.0, 0.0, 0.0};

static void settings(wb_train_settings *s, const char *ckpt) {
    wb_train_settings_default(s);
    s->solver.lambda = 0.01;
    s->optimizer = WB_OPT_ADAM;
    s->lr = 0.05;
    s->batch_size = BATCH;
    s->epochs = EPOCHS;
    s->seed = 42;
    s->threads = 1;
    s->checkpoint_path = ckpt;
    s->checkpoint_every = 1;
}

/* ---- the child: resume if a checkpoint exists, train, report ----------- */

static int child_main(const char *ckpt, int fd) {
    cset_t S;
    cset_init(&S);
    wb_dataset d = {NEX, &S, cs_energy, cs_start, cs_loss};
    wb_train_settings s;
    settings(&s, ckpt);
    wb_trainer *t = NULL;
    if (wb_trainer_create(&t, &d, W0, &s) != WB_OK) return 2;
    if (access(ckpt, F_OK) == 0 && wb_trainer_load(t, ckpt) != WB_OK) return 3;
    wb_train_info info;
    if (wb_trainer_info(t, &info) != WB_OK) return 4;
    long long k = info.step;
    if (write(fd, &k, sizeof k) != (ssize_t)sizeof k) return 5;
    for (;;) {
        wb_status st = wb_trainer_step(t, &info);
        if (st < 0) return 6;
        k = info.step;
        if (write(fd, &k, sizeof k) != (ssize_t)sizeof k) return 5;
        if (st == WB_DONE) break;
    }
    wb_trainer_destroy(t);
    cset_free(&S);
    return 0;
}

/* ---- the parent ------------------------------------------------------------ */

static char self_exe[4096];
static cset_t PS;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    pid_t pid;
    int rfd;         /* read end of the report pipe                    */
    long long start; /* the step it resumed from (-1: died before)     */
} child_t;

static child_t spawn(const char *ckpt) {
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        char fdbuf[16];
        snprintf(fdbuf, sizeof fdbuf, "%d", p[1]);
        execl(self_exe, self_exe, "--child", ckpt, fdbuf, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    /* wait until the child is in its training loop (created, resumed) */
    child_t c = {pid, p[0], -1};
    ssize_t r;
    while ((r = read(c.rfd, &c.start, sizeof c.start)) < 0 && errno == EINTR) {}
    if (r != (ssize_t)sizeof c.start) c.start = -1;
    return c;
}

/* Waits for the child; *last = the last step it reported (-1: none);
   returns the wait status. */
static int reap(child_t c, long long *last) {
    int ws = 0;
    while (waitpid(c.pid, &ws, 0) < 0) assert_int_equal(errno, EINTR);
    long long k;
    *last = c.start;
    ssize_t r;
    while ((r = read(c.rfd, &k, sizeof k)) == (ssize_t)sizeof k) *last = k;
    assert_true(r == 0); /* EOF: no torn report */
    close(c.rfd);
    return ws;
}

static void sleep_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static int stray_temp_files(const char *dir) {
    DIR *D = opendir(dir);
    assert_non_null(D);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(D)) != NULL)
        if (strncmp(de->d_name, "ckpt.tmp.", 9) == 0) n++;
    closedir(D);
    return n;
}

static void remove_dir(const char *dir) {
    DIR *D = opendir(dir);
    if (!D) return;
    struct dirent *de;
    char p[512];
    while ((de = readdir(D)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        remove(p);
    }
    closedir(D);
    rmdir(dir);
}

/* A fresh trainer (no checkpointing of its own); step of the checkpoint
   in *step after loading it. */
static wb_trainer *new_trainer(void) {
    wb_dataset d = {NEX, &PS, cs_energy, cs_start, cs_loss};
    wb_train_settings s;
    settings(&s, NULL);
    wb_trainer *t = NULL;
    assert_int_equal(wb_trainer_create(&t, &d, W0, &s), WB_OK);
    return t;
}

static long long checkpoint_step(const char *ckpt) {
    wb_trainer *t = new_trainer();
    wb_status st = wb_trainer_load(t, ckpt);
    if (st != WB_OK) fail_msg("checkpoint %s does not load: %s", ckpt,
                              wb_trainer_message(t));
    wb_train_info info;
    assert_int_equal(wb_trainer_info(t, &info), WB_OK);
    wb_trainer_destroy(t);
    return info.step;
}

/* Resumes from ckpt to the end and compares with the reference. */
static void resume_matches(const char *ckpt, const double *w_ref,
                           long long total) {
    wb_trainer *t = new_trainer();
    assert_int_equal(wb_trainer_load(t, ckpt), WB_OK);
    wb_train_info info;
    assert_int_equal(wb_train(t, &info), WB_OK);
    assert_int_equal(info.step, total);
    double w[PW];
    assert_int_equal(wb_trainer_w(t, w), WB_OK);
    assert_memory_equal(w, w_ref, sizeof w);
    wb_trainer_destroy(t);
}

static void killed_training_resumes_to_the_same_weights(void **st) {
    (void)st;
    cset_init(&PS);
    char dir[] = "/tmp/wb_crash_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char ckpt[256];
    snprintf(ckpt, sizeof ckpt, "%s/ckpt", dir);

    /* the uninterrupted run, in this process */
    wb_trainer *t = new_trainer();
    wb_train_info info;
    assert_int_equal(wb_train(t, &info), WB_OK);
    long long total = info.step;
    assert_int_equal(total, (long long)EPOCHS * ((NEX + BATCH - 1) / BATCH));
    double w_ref[PW];
    assert_int_equal(wb_trainer_w(t, w_ref), WB_OK);
    wb_trainer_destroy(t);

    /* calibration: one child runs to the end unharmed; checkpointing does
       not change the result */
    double t0 = now_s();
    child_t c = spawn(ckpt);
    long long last;
    int ws = reap(c, &last);
    double T = now_s() - t0;
    assert_true(WIFEXITED(ws));
    assert_int_equal(WEXITSTATUS(ws), 0);
    assert_int_equal(last, total);
    assert_int_equal(checkpoint_step(ckpt), total);
    resume_matches(ckpt, w_ref, total); /* nothing left to do: same w */
    double t_step = T / (double)total;
    printf("    uninterrupted child: %lld steps (checkpoint after each) in "
           "%.3f s\n", total, T);
    remove(ckpt);

    uint64_t seed = 20240607;
    int killed_mid = 0, before_first_save = 0, finished = 0, max_stray = 0;
    int restarts_fresh = 0, kills = 0;
    /* rounds until ROUNDS children have died by SIGKILL (a child that
       finishes before its kill does not count) */
    for (int round = 0; kills < ROUNDS && round < 3 * ROUNDS; round++) {
        long long s0 = 0;
        if (access(ckpt, F_OK) == 0) s0 = checkpoint_step(ckpt);
        if (s0 >= total) { /* the chain reached the end: start over */
            remove(ckpt);
            s0 = 0;
            restarts_fresh++;
        }
        /* a random moment in the next third of the run (or what is left;
           one round in five within its first two steps), counted from the
           moment the child has resumed and starts stepping */
        double u = wb_test_rand(&seed);
        long long span = total - s0 < total / 3 ? total - s0 : total / 3;
        double delay = u < 0.2 ? u / 0.2 * 2 * t_step /* within 2 steps */
                               : (0.05 + 0.9 * u) * (double)span * t_step;
        c = spawn(ckpt);
        assert_int_equal(c.start, s0);
        sleep_s(delay);
        kill(c.pid, SIGKILL);
        ws = reap(c, &last);
        int was_killed = WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL;
        kills += was_killed;
        if (!was_killed) {
            assert_true(WIFEXITED(ws));
            assert_int_equal(WEXITSTATUS(ws), 0);
            finished++;
        }
        long long base = last >= 0 ? last : s0; /* the last known good step */
        int stray = stray_temp_files(dir);
        if (stray > max_stray) max_stray = stray;
        if (access(ckpt, F_OK) != 0) {
            /* allowed only when no step had finished: nothing saved yet */
            assert_int_equal(s0, 0);
            assert_true(last <= 0);
            before_first_save++;
            printf("    round %2d: killed after %.3f s, before the first "
                   "save: no checkpoint (ok)\n", round, delay);
            continue;
        }
        long long k = checkpoint_step(ckpt);
        if (!(k == base || k == base + 1) || k < s0)
            fail_msg("round %d: checkpoint holds step %lld; the child started "
                     "at %lld and last reported %lld", round, k, s0, last);
        resume_matches(ckpt, w_ref, total);
        if (was_killed && k < total) killed_mid++;
        printf("    round %2d: %s after %.3f s at step %lld..%lld: checkpoint "
               "step %lld loads, resumes to the same w; %d stray temp "
               "file%s\n", round, was_killed ? "killed" : "finished", delay,
               s0, base, k, stray, stray == 1 ? "" : "s");
    }

    /* finish the chain in a child, stray file and all: its saves remove
       the stray file (when it has a step left to save) */
    c = spawn(ckpt);
    ws = reap(c, &last);
    assert_true(WIFEXITED(ws));
    assert_int_equal(WEXITSTATUS(ws), 0);
    assert_int_equal(checkpoint_step(ckpt), total);
    resume_matches(ckpt, w_ref, total);
    if (c.start < total) assert_int_equal(stray_temp_files(dir), 0);

    printf("    %d SIGKILLs (%d mid-run, %d before the first save), %d runs "
           "finished before their kill, %d fresh restarts; at most %d stray "
           "temp files at a time (left by kills inside a save, removed by "
           "the next successful save) broke nothing\n",
           kills, killed_mid, before_first_save, finished, restarts_fresh,
           max_stray);
    assert_int_equal(kills, ROUNDS);
    assert_true(killed_mid >= ROUNDS / 2); /* the test is not vacuous */
    remove_dir(dir);
    cset_free(&PS);
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "--child") == 0)
        return child_main(argv[2], atoi(argv[3]));
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (n > 0) self_exe[n] = '\0';
    else snprintf(self_exe, sizeof self_exe, "%s", argv[0]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(killed_training_resumes_to_the_same_weights),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
