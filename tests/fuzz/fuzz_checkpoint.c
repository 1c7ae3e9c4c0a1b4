#define _POSIX_C_SOURCE 200809L
/* libFuzzer target: wb_trainer_load on arbitrary bytes.
 *
 * One small trainer is created once. Each input is written to a temporary
 * file and loaded. The call must return a status (WB_OK, WB_EIO,
 * WB_EFORMAT) without a crash, a sanitizer report or a leak, and a refused
 * load must leave the trainer as it was. Random bytes rarely pass the
 * checksum, so an input of the right size with the right magic that fails
 * only its checksum is loaded a second time with the checksum recomputed:
 * that reaches the validation of the positions, the example order and the
 * arrays behind it. A state that loads is then used: two training steps
 * (each WB_OK, WB_DONE, or WB_ENONFINITE with w kept: a loaded w may sit
 * at DBL_MAX), an evaluation, and a save that must load back.
 *
 * Seeds: WB_FUZZ_WRITE_SEEDS=DIR ./fuzz_checkpoint writes valid checkpoints
 * of this trainer at several points of its run, plus truncated and
 * corrupted variants, into DIR and exits (tests/fuzz/corpus/checkpoint
 * holds them).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wiberg.h"

/* Example i: E_i = 1/2 x'A_i x - x'(C_i w), L_i = 1/2 ||x - y_i||^2. */
enum { NX = 2, PW = 2, NEX = 4 };
static const double A[NEX][NX * NX] = {
    {2, 0.5, 0.5, 1}, {3, -1, -1, 2}, {1, 0, 0, 4}, {5, 2, 2, 3}};
static const double C[NEX][NX * PW] = {
    {1, 0, 0, 1}, {0.5, 1, -1, 0.2}, {1, 1, 0, 2}, {-0.3, 0.7, 1, 1}};
static const double Y[NEX][NX] = {{0.5, -1}, {1, 1}, {0.2, 0.3}, {-1, 2}};

static int q_vg(void *u, const double *x, const double *w, double *e,
                double *g) {
    int i = *(const int *)u;
    double E = 0.0;
    for (int r = 0; r < NX; r++) {
        double ax = 0.0, cw = 0.0;
        for (int c = 0; c < NX; c++) ax += A[i][c * NX + r] * x[c];
        for (int j = 0; j < PW; j++) cw += C[i][j * NX + r] * w[j];
        E += 0.5 * x[r] * ax - x[r] * cw;
        if (g) g[r] = ax - cw;
    }
    *e = E;
    return 0;
}
static int q_hess(void *u, const double *x, const double *w, double *H) {
    (void)x; (void)w;
    memcpy(H, A[*(const int *)u], sizeof A[0]);
    return 0;
}
static int q_mixed(void *u, const double *x, const double *w, double *B) {
    (void)x; (void)w;
    int i = *(const int *)u;
    for (int k = 0; k < NX * PW; k++) B[k] = -C[i][k];
    return 0;
}
static const int IDX[NEX] = {0, 1, 2, 3};
static int ds_energy(void *u, int i, wb_energy *e) {
    (void)u;
    memset(e, 0, sizeof *e);
    e->n = NX;
    e->p = PW;
    e->user = (void *)&IDX[i];
    e->value_grad = q_vg;
    e->hess = q_hess;
    e->mixed = q_mixed;
    return 0;
}
static int ds_start(void *u, int i, double *x0) {
    (void)u; (void)i;
    for (int r = 0; r < NX; r++) x0[r] = 0.0;
    return 0;
}
static int ds_loss(void *u, int i, const double *x, double *l, double *dl) {
    (void)u;
    double s = 0.0;
    for (int r = 0; r < NX; r++) {
        double d = x[r] - Y[i][r];
        s += 0.5 * d * d;
        if (dl) dl[r] = d;
    }
    *l = s;
    return 0;
}

static wb_dataset DS = {NEX, NULL, ds_energy, ds_start, ds_loss};
static wb_trainer *T;
static char in_path[64], out_path[64];
static size_t ck_size; /* size of this trainer's checkpoint */

static void make_trainer(wb_trainer **t) {
    wb_train_settings s;
    wb_train_settings_default(&s);
    s.threads = 1;
    s.batch_size = 3;
    s.epochs = 3;
    s.lr = 0.1;
    s.validation = &DS;
    s.validate_every = 2;
    const double w0[PW] = {0.1, -0.2};
    if (wb_trainer_create(t, &DS, w0, &s) != WB_OK) abort();
}

static int write_file(const char *path, const uint8_t *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t put = n ? fwrite(b, 1, n, f) : 0;
    return (fclose(f) != 0 || put != n) ? -1 : 0;
}

static size_t read_file(const char *path, uint8_t *b, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) abort();
    size_t n = fread(b, 1, cap, f);
    fclose(f);
    return n;
}

/* The checkpoint's trailer: FNV-1a 64 of everything before it (native
   byte order, as wb_trainer_save writes it). */
static void fix_checksum(uint8_t *b, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i + 8 < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    memcpy(b + n - 8, &h, 8);
}

static void write_seeds(const char *dir) {
    wb_trainer *t;
    make_trainer(&t);
    uint8_t buf[4096];
    char p[1024];
    const int at[] = {0, 1, 2, 4, 12}; /* steps: start, mid-epoch, done */
    int done = 0;
    for (size_t k = 0; k < sizeof at / sizeof at[0]; k++) {
        while (done < at[k]) {
            wb_trainer_step(t, NULL);
            done++;
        }
        snprintf(p, sizeof p, "%s/step%02d.ckpt", dir, at[k]);
        if (wb_trainer_save(t, p) != WB_OK) abort();
    }
    /* variants of the mid-epoch state */
    snprintf(p, sizeof p, "%s/step02.ckpt", dir);
    size_t n = read_file(p, buf, sizeof buf);
    const size_t cuts[] = {0, 7, 16, n / 2, n - 8, n - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        snprintf(p, sizeof p, "%s/trunc%04zu.ckpt", dir, cuts[k]);
        if (write_file(p, buf, cuts[k]) != 0) abort();
    }
    uint8_t c[4096];
    memcpy(c, buf, n);
    c[8] = 3; /* version 3 (unknown), valid checksum */
    fix_checksum(c, n);
    snprintf(p, sizeof p, "%s/version3.ckpt", dir);
    if (write_file(p, c, n) != 0) abort();
    memcpy(c, buf, n);
    c[n / 2] ^= 0x40; /* a flipped bit */
    snprintf(p, sizeof p, "%s/bitflip.ckpt", dir);
    if (write_file(p, c, n) != 0) abort();
    wb_trainer_destroy(t);
}

static void cleanup(void) {
    remove(in_path);
    remove(out_path); /* a failed save removes its own temporary file */
    wb_trainer_destroy(T);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    const char *seeds = getenv("WB_FUZZ_WRITE_SEEDS");
    if (seeds) {
        write_seeds(seeds);
        exit(0);
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(in_path, sizeof in_path, "%s/wb_fuzz_in_%ld", tmp ? tmp : "/tmp",
             (long)getpid());
    snprintf(out_path, sizeof out_path, "%s/wb_fuzz_out_%ld",
             tmp ? tmp : "/tmp", (long)getpid());
    make_trainer(&T);
    atexit(cleanup);
    if (wb_trainer_save(T, out_path) != WB_OK) abort();
    uint8_t buf[4096];
    ck_size = read_file(out_path, buf, sizeof buf);
    return 0;
}

/* w of the trainer, compared bitwise (NaN included) */
static void get_w(double *w) {
    if (wb_trainer_w(T, w) != WB_OK) abort();
}

static wb_status load(const uint8_t *data, size_t size) {
    if (write_file(in_path, data, size) != 0) abort();
    double before[PW], after[PW];
    get_w(before);
    wb_status st = wb_trainer_load(T, in_path);
    if (st != WB_OK && st != WB_EFORMAT && st != WB_EIO) abort();
    if (wb_trainer_message(T) == NULL) abort();
    if (st != WB_OK) { /* a refused load leaves the trainer as it was */
        get_w(after);
        if (memcmp(before, after, sizeof before) != 0) abort();
    }
    return st;
}

/* a call that must succeed: says which one failed, and why, before aborting */
static void must(wb_status st, const char *what) {
    if (st == WB_OK) return;
    fprintf(stderr, "fuzz_checkpoint: %s: %s: %s\n", what, wb_status_str(st),
            wb_trainer_message(T));
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    wb_status st = load(data, size);
    if (st == WB_EFORMAT && size == ck_size && size >= 16 &&
        memcmp(data, "WIBERGCK", 8) == 0) {
        /* past the checksum: the same bytes with a valid one */
        uint8_t *c = malloc(size);
        if (!c) abort();
        memcpy(c, data, size);
        fix_checksum(c, size);
        st = load(c, size);
        free(c);
    }
    if (st == WB_OK) {
        /* the loaded state is usable, and saves and loads back */
        for (int k = 0; k < 2; k++) {
            double w0[PW], w1[PW];
            get_w(w0);
            wb_status s = wb_trainer_step(T, NULL);
            if (s == WB_ENONFINITE) { /* e.g. w at DBL_MAX: refused, kept */
                get_w(w1);
                if (memcmp(w0, w1, sizeof w0) != 0) abort();
            } else if (s != WB_OK && s != WB_DONE) {
                abort();
            }
        }
        double w[PW], mean;
        int failed;
        get_w(w);
        must(wb_trainer_evaluate(T, &DS, w, &mean, &failed, NULL),
             "evaluate after a load");
        must(wb_trainer_save(T, out_path), "save after a load");
        must(wb_trainer_load(T, out_path), "load of what was saved");
        double w2[PW];
        get_w(w2);
        if (memcmp(w, w2, sizeof w) != 0) abort();
    }
    return 0;
}
