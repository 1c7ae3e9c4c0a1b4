/* Checkpoints: the whole training state in one file, written atomically.
 *
 * Layout (native byte order), version 2: magic "WIBERGCK", version,
 * byte-order mark 0x01020304, p, count, total n, optimizer; step, epoch,
 * position in the epoch, RNG state; w, m, r = sqrt(Adam's v), best w [p
 * each]; best validation loss, its step, last validation loss, the epoch's
 * loss sum and used count, last epoch loss, skipped total, empty steps,
 * inner solves; the example order [count], warm-start flags [count], warm
 * starts [total n]; then the FNV-1a 64 hash of everything before it.
 * Version 1 (read, never written) held v itself in place of r and no
 * empty-step count.
 *
 * A load trusts nothing it reads: the checksum only catches accidents, so
 * every field is checked against the trainer and against the others
 * (positions, counters, the example order, bounds, finiteness) before the
 * trainer is touched.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wb_train.h"

/* every one of the count doubles stored (native order, unaligned) at b is
   finite */
static int finite_at(const unsigned char *b, size_t count) {
    for (size_t k = 0; k < count; k++) {
        double v;
        memcpy(&v, b + 8 * k, 8);
        if (!isfinite(v)) return 0;
    }
    return 1;
}

#define CK_MAGIC "WIBERGCK"
#define CK_VERSION 2u

static uint64_t fnv1a(const unsigned char *b, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}

typedef struct {
    unsigned char *buf;
    size_t len, cap;
    int fail;
} wbuf_t;

static void put(wbuf_t *b, const void *src, size_t n) {
    if (b->fail) return;
    if (b->buf) {
        if (b->len + n > b->cap) { b->fail = 1; return; }
        memcpy(b->buf + b->len, src, n);
    }
    b->len += n;
}

/* Serializes the state; with b->buf == NULL only measures. */
static void serialize(const wb_trainer *t, wbuf_t *b) {
    uint32_t ver = CK_VERSION, endian = 0x01020304u, p = (uint32_t)t->p,
             cnt = (uint32_t)t->count, opt = (uint32_t)t->s.optimizer;
    uint64_t tn = (uint64_t)t->total_n;
    int64_t step = t->step, best_step = t->info.best_step,
            skipped = t->info.skipped_total, empty = t->info.empty_steps,
            solves = wbi_trainer_solves(t);
    int32_t epoch = t->epoch, pos = t->pos, used = t->epoch_used;
    size_t P = (size_t)t->p;
    put(b, CK_MAGIC, 8);
    put(b, &ver, 4);
    put(b, &endian, 4);
    put(b, &p, 4);
    put(b, &cnt, 4);
    put(b, &tn, 8);
    put(b, &opt, 4);
    put(b, &step, 8);
    put(b, &epoch, 4);
    put(b, &pos, 4);
    put(b, &t->rng, 8);
    put(b, t->w, P * 8);
    put(b, t->m, P * 8);
    put(b, t->r, P * 8);
    put(b, t->best_w, P * 8);
    put(b, &t->info.best_val_loss, 8);
    put(b, &best_step, 8);
    put(b, &t->info.val_loss, 8);
    put(b, &t->epoch_loss_sum, 8);
    put(b, &used, 4);
    put(b, &t->info.epoch_loss, 8);
    put(b, &skipped, 8);
    put(b, &empty, 8);
    put(b, &solves, 8);
    put(b, t->perm, (size_t)t->count * 4);
    put(b, t->has_x, (size_t)t->count);
    put(b, t->xs, t->total_n * 8);
}

/* The process id in a temporary file's name after "base.tmp.": "PID" (the
   names of releases before 0.x) or "PID.COUNTER"; 0 when the name is not
   one of these. */
static long temp_pid(const char *q) {
    char *end;
    if (q[0] < '0' || q[0] > '9') return 0;
    errno = 0;
    long pid = strtol(q, &end, 10);
    if (errno || pid <= 0) return 0;
    if (*end == '.') {
        const char *c = end + 1;
        if (c[0] < '0' || c[0] > '9') return 0;
        errno = 0;
        (void)strtoul(c, &end, 10);
        if (errno) return 0;
    }
    return *end ? 0 : pid;
}

/* Removes path.tmp.PID[.COUNTER] files beside path whose process no longer
   runs on this machine (kill(PID, 0) fails with ESRCH): what a process
   killed inside a save leaves behind. Best effort: a directory that cannot
   be read is left as it is; remove() unlinks a planted link, never its
   target. buf[len] (len > strlen(path)) is scratch for the directory. */
static void remove_stale_temps(const char *path, char *buf, size_t len) {
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (slash) snprintf(buf, len, "%.*s", (int)(slash - path), path);
    else snprintf(buf, len, ".");
    if (slash == path) snprintf(buf, len, "/");
    size_t bl = strlen(base);
    DIR *d = opendir(buf);
    if (!d) return;
    size_t dl = strlen(buf);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        if (strncmp(nm, base, bl) != 0 || strncmp(nm + bl, ".tmp.", 5) != 0)
            continue;
        long pid = temp_pid(nm + bl + 5);
        if (pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive */
        if (dl + 1 + strlen(nm) + 1 > len) continue;
        snprintf(buf + dl, len - dl, "/%s", nm);
        remove(buf);
        buf[dl] = '\0';
    }
    closedir(d);
}

/* Temporary names path.tmp.PID.COUNTER: unique per save within a process
   (two trainers saving to one path from two threads never share one), and
   created exclusively, so a name that exists -- another save's, a leftover,
   or a link planted there -- is skipped, never opened. */
static atomic_ulong temp_counter;

/* Creates a new temporary file for path in tmp[len]: the descriptor, or -1
   (errno set). O_EXCL | O_NOFOLLOW: never follows or reuses what is there. */
static int create_temp(const char *path, char *tmp, size_t len) {
    for (int tries = 0; tries < 1000000; tries++) {
        unsigned long c = atomic_fetch_add(&temp_counter, 1UL);
        snprintf(tmp, len, "%s.tmp.%ld.%lu", path, (long)getpid(), c);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                      0666);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    errno = EEXIST;
    return -1;
}

/* write(2) all n bytes; 0 or -1 (errno set) */
static int write_all(int fd, const unsigned char *b, size_t n) {
    while (n > 0) {
        ssize_t k = write(fd, b, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

/* fsync of the directory holding path (the rename's entry); 0 or -1. A
   file system that cannot sync directories (EINVAL) counts as done. */
static int sync_dir(const char *path, char *buf, size_t len) {
    const char *slash = strrchr(path, '/');
    if (slash == path) snprintf(buf, len, "/");
    else if (slash) snprintf(buf, len, "%.*s", (int)(slash - path), path);
    else snprintf(buf, len, ".");
    int fd = open(buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int r = fsync(fd);
    if (r != 0 && errno == EINVAL) r = 0;
    int e = errno;
    close(fd);
    errno = e;
    return r;
}

wb_status wbi_trainer_save(wb_trainer *t, const char *path) {
#ifdef WIBERG_MPI
    if (t->mpi && path) return wbi_mpi_save(t, path); /* rank 0 writes */
#endif
    return wbi_trainer_save_file(t, path);
}

wb_status wbi_trainer_save_file(wb_trainer *t, const char *path) {
    if (!path) {
        wbi_tmsg(t, "wb_trainer_save: path is NULL");
        return WB_EINVAL;
    }
    wbuf_t b = {NULL, 0, 0, 0};
    serialize(t, &b);
    size_t len = b.len;
    b.buf = wbi_alloc(&t->s.solver, len + 8, 1);
    if (!b.buf) {
        wbi_tmsg(t, "wb_trainer_save: out of memory (%zu bytes)", len + 8);
        return WB_ENOMEM;
    }
    b.cap = len;
    b.len = 0;
    serialize(t, &b);
    uint64_t h = fnv1a(b.buf, len);
    memcpy(b.buf + len, &h, 8);
    /* atomic: write a new path.tmp.PID.COUNTER, flush it to disk, rename it
       over path, flush the directory */
    size_t pl = strlen(path), tl = pl + 64;
    char *tmp = wbi_alloc(&t->s.solver, tl, 1);
    if (!tmp) {
        wbi_free(&t->s.solver, b.buf);
        wbi_tmsg(t, "wb_trainer_save: out of memory");
        return WB_ENOMEM;
    }
    wb_status st = WB_OK;
    int fd = create_temp(path, tmp, tl);
    if (fd < 0) {
        wbi_tmsg(t, "wb_trainer_save: cannot create %s: %s", tmp, strerror(errno));
        st = WB_EIO;
    } else {
        int bad = write_all(fd, b.buf, len + 8) != 0 || fsync(fd) != 0;
        int e = errno;
        if (close(fd) != 0 && !bad) {
            bad = 1;
            e = errno;
        }
        if (bad) {
            wbi_tmsg(t, "wb_trainer_save: cannot write %s: %s", tmp, strerror(e));
            remove(tmp);
            st = WB_EIO;
        } else if (rename(tmp, path) != 0) {
            wbi_tmsg(t, "wb_trainer_save: cannot rename %s to %s: %s", tmp, path,
                     strerror(errno));
            remove(tmp);
            st = WB_EIO;
        } else if (sync_dir(path, tmp, tl) != 0) {
            wbi_tmsg(t, "wb_trainer_save: %s is written but its directory "
                     "could not be flushed to disk: %s", path, strerror(errno));
            st = WB_EIO;
        } else {
            wbi_tmsg(t, "saved step %lld to %s", t->step, path);
            remove_stale_temps(path, tmp, tl);
        }
    }
    wbi_free(&t->s.solver, tmp);
    wbi_free(&t->s.solver, b.buf);
    return st;
}

/* The fields of a checkpoint image (version 1 or 2), read in place. */
typedef struct {
    uint32_t ver;
    int64_t step, best_step, skipped, empty, solves;
    int32_t epoch, pos, used;
    uint64_t rng;
    double best_val, val_loss, loss_sum, epoch_loss;
    const unsigned char *w, *m, *r, *best_w; /* [p] doubles each      */
    const unsigned char *perm, *has_x, *xs;  /* [count] int32, [count],
                                                [total n] doubles     */
} ck_t;

static const unsigned char *take(const unsigned char **at, void *dst, size_t n) {
    const unsigned char *here = *at;
    if (dst) memcpy(dst, here, n);
    *at += n;
    return here;
}

/* Reads the fields of buf (its size already checked for version ver). */
static void parse(const wb_trainer *t, const unsigned char *buf, uint32_t ver,
                  ck_t *c) {
    size_t P = (size_t)t->p * 8;
    const unsigned char *at = buf + 36; /* past magic .. optimizer */
    memset(c, 0, sizeof *c);
    c->ver = ver;
    take(&at, &c->step, 8);
    take(&at, &c->epoch, 4);
    take(&at, &c->pos, 4);
    take(&at, &c->rng, 8);
    c->w = take(&at, NULL, P);
    c->m = take(&at, NULL, P);
    c->r = take(&at, NULL, P);
    c->best_w = take(&at, NULL, P);
    take(&at, &c->best_val, 8);
    take(&at, &c->best_step, 8);
    take(&at, &c->val_loss, 8);
    take(&at, &c->loss_sum, 8);
    take(&at, &c->used, 4);
    take(&at, &c->epoch_loss, 8);
    take(&at, &c->skipped, 8);
    if (ver >= 2) take(&at, &c->empty, 8);
    take(&at, &c->solves, 8);
    c->perm = take(&at, NULL, (size_t)t->count * 4);
    c->has_x = take(&at, NULL, (size_t)t->count);
    c->xs = take(&at, NULL, t->total_n * 8);
}

static double dbl_at(const unsigned char *b, size_t k) {
    double v;
    memcpy(&v, b + 8 * k, 8);
    return v;
}

#define IMPOSSIBLE(...) do { snprintf(why, len, __VA_ARGS__); return 0; } while (0)

/* 1 when the fields of c are a state this trainer can have reached (and
   continue from without overflow), else 0 with the reason in why[len].
   seen[count] is scratch. */
static int plausible(const wb_trainer *t, const ck_t *c, unsigned char *seen,
                     char *why, size_t len) {
    long long spe = t->steps_per_epoch, batch = t->batch;
    size_t P = (size_t)t->p;
    /* position: step = epoch * steps_per_epoch + pos / batch, pos a
       multiple of batch inside the epoch; the last step leaves epoch =
       epochs, pos = 0 */
    if (c->step < 0 || c->step > t->total_steps)
        IMPOSSIBLE("step %lld is outside [0, %lld]", (long long)c->step,
                   t->total_steps);
    if (c->epoch < 0 || c->epoch > t->s.epochs || c->pos < 0 ||
        c->pos >= t->count || c->pos % batch != 0 ||
        c->step != c->epoch * spe + c->pos / batch)
        IMPOSSIBLE("step %lld, epoch %d, position %d do not fit %lld steps "
                   "per epoch of batches of %lld (of %d epochs)",
                   (long long)c->step, (int)c->epoch, (int)c->pos, spe, batch,
                   t->s.epochs);
    /* the example order is a permutation of 0 .. count-1 */
    memset(seen, 0, (size_t)t->count);
    for (int i = 0; i < t->count; i++) {
        int32_t v;
        memcpy(&v, c->perm + 4 * (size_t)i, 4);
        if (v < 0 || v >= t->count || seen[v])
            IMPOSSIBLE("the example order is not a permutation of 0..%d "
                       "(entry %d = %d)", t->count - 1, i, (int)v);
        seen[v] = 1;
        if (c->has_x[i] > 1)
            IMPOSSIBLE("warm-start flag %d = %d is not 0 or 1", i, c->has_x[i]);
    }
    /* w, the moments, best w and the warm starts are finite (the trainer
       never commits anything else); r = sqrt(v) >= 0; a moment the
       optimizer does not use is 0; w and best w lie in the bounds */
    if (!finite_at(c->w, 4 * P) || !finite_at(c->xs, t->total_n))
        IMPOSSIBLE("w, the optimizer moments, best w or the warm starts hold "
                   "a non-finite value");
    for (size_t j = 0; j < P; j++) {
        double w = dbl_at(c->w, j), bw = dbl_at(c->best_w, j);
        double m = dbl_at(c->m, j), r = dbl_at(c->r, j);
        int opt = (int)t->s.optimizer;
        if (r < 0.0 || (opt != WB_OPT_ADAM && r != 0.0) ||
            (opt == WB_OPT_SGD && m != 0.0))
            IMPOSSIBLE("optimizer moment %zu (m = %g, %s = %g) is impossible "
                       "for optimizer %d", j, m, c->ver >= 2 ? "sqrt(v)" : "v",
                       r, opt);
        if (w < t->lower[j] || w > t->upper[j] || bw < t->lower[j] ||
            bw > t->upper[j])
            IMPOSSIBLE("w[%zu] = %g or best w = %g is outside its bounds "
                       "[%g, %g]", j, w, bw, t->lower[j], t->upper[j]);
    }
    /* counters: within what step steps can have produced */
    if (c->used < 0 || c->used > c->pos || isnan(c->loss_sum) ||
        (c->used == 0 && c->loss_sum != 0.0))
        IMPOSSIBLE("the epoch's %d used examples (loss sum %g) do not fit "
                   "position %d", (int)c->used, c->loss_sum, (int)c->pos);
    if (c->skipped < 0 || c->skipped > c->step * batch || c->empty < 0 ||
        c->empty > c->step || c->empty > c->skipped)
        IMPOSSIBLE("%lld skipped examples, %lld empty steps do not fit %lld "
                   "steps of %lld", (long long)c->skipped, (long long)c->empty,
                   (long long)c->step, batch);
    if (c->solves < 0 || c->solves > WBI_SOLVES_MAX)
        IMPOSSIBLE("inner solves = %lld", (long long)c->solves);
    /* the best w: with a validation set, seen at a step <= step (-1: none
       yet, and then no best loss); without one, the current w's step */
    if (t->has_val) {
        if (c->best_step < -1 || c->best_step > c->step ||
            (c->best_step == -1) != isnan(c->best_val) || isinf(c->best_val))
            IMPOSSIBLE("best step %lld (loss %g) does not fit step %lld",
                       (long long)c->best_step, c->best_val, (long long)c->step);
    } else if (c->best_step != (c->step > 0 ? c->step : -1) ||
               !isnan(c->best_val)) {
        IMPOSSIBLE("best step %lld (loss %g) without a validation set does "
                   "not fit step %lld", (long long)c->best_step, c->best_val,
                   (long long)c->step);
    }
    return 1;
}

wb_status wb_trainer_save(const wb_trainer *tc, const char *path) {
    wb_trainer *t = (wb_trainer *)tc; /* only the message changes */
    if (!t) return wbi_fail(WB_EINVAL, "%s: t is NULL", __func__);
    if (!wbi_trainer_enter(t, __func__)) return WB_EBUSY;
    wb_status st = wbi_trainer_save(t, path);
    wbi_trainer_leave(t);
    return st;
}

size_t wbi_ckpt_bufsize(const wb_trainer *t) {
    wbuf_t want = {NULL, 0, 0, 0};
    serialize(t, &want); /* the exact size this trainer's state needs */
    /* the file (one byte more tells a longer one) and count bytes of scratch */
    return want.len + 8 + 1 + (size_t)t->count;
}

wb_status wbi_ckpt_read(wb_trainer *t, const char *path, unsigned char *buf,
                        size_t *got) {
    *got = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        wbi_tmsg(t, "wb_trainer_load: cannot open %s: %s", path, strerror(errno));
        return WB_EIO;
    }
    size_t n = fread(buf, 1, wbi_ckpt_bufsize(t) - (size_t)t->count, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        wbi_tmsg(t, "wb_trainer_load: read error on %s", path);
        return WB_EIO;
    }
    *got = n;
    return WB_OK;
}

wb_status wbi_ckpt_apply(wb_trainer *t, unsigned char *buf, size_t got,
                         const char *path) {
    size_t cnt_sz = (size_t)t->count;
    size_t expect = wbi_ckpt_bufsize(t) - 1 - cnt_sz; /* the whole file */
    if (got < 16 || memcmp(buf, CK_MAGIC, 8) != 0) {
        wbi_tmsg(t, "wb_trainer_load: %s is not a libwiberg checkpoint", path);
        return WB_EFORMAT;
    }
    uint32_t ver = 0, endian = 0, p = 0, cnt = 0, opt = 0;
    memcpy(&ver, buf + 8, 4);
    memcpy(&endian, buf + 12, 4);
    if ((ver != CK_VERSION && ver != 1u) || endian != 0x01020304u) {
        wbi_tmsg(t, "wb_trainer_load: %s has version %u (expected %u or 1) or "
                 "another byte order", path, ver, CK_VERSION);
        return WB_EFORMAT;
    }
    size_t body = expect - 8 - (ver == 1u ? 8 : 0); /* v1: no empty steps */
    if (got != body + 8) {
        wbi_tmsg(t, "wb_trainer_load: %s has %zu%s bytes, this trainer's state "
                 "needs %zu (truncated, or another data set or p)", path, got,
                 got > body + 8 ? "+" : "", body + 8);
        return WB_EFORMAT;
    }
    uint64_t h;
    memcpy(&h, buf + body, 8);
    if (h != fnv1a(buf, body)) {
        wbi_tmsg(t, "wb_trainer_load: %s fails its checksum (corrupt)", path);
        return WB_EFORMAT;
    }
    uint64_t tn = 0;
    memcpy(&p, buf + 16, 4);
    memcpy(&cnt, buf + 20, 4);
    memcpy(&tn, buf + 24, 8);
    memcpy(&opt, buf + 32, 4);
    if (p != (uint32_t)t->p || cnt != (uint32_t)t->count ||
        tn != (uint64_t)t->total_n || opt != (uint32_t)t->s.optimizer) {
        wbi_tmsg(t, "wb_trainer_load: %s was written for p = %u, %u examples, "
                 "optimizer %u; this trainer has p = %d, %d examples, optimizer %d",
                 path, p, cnt, opt, t->p, t->count, (int)t->s.optimizer);
        return WB_EFORMAT;
    }
    ck_t c;
    parse(t, buf, ver, &c);
    char why[160];
    if (!plausible(t, &c, buf + expect + 1, why, sizeof why)) {
        wbi_tmsg(t, "wb_trainer_load: %s holds an impossible state: %s", path,
                 why);
        return WB_EFORMAT;
    }
    /* valid: commit */
    size_t P = (size_t)t->p;
    t->step = c.step;
    t->epoch = c.epoch;
    t->pos = c.pos;
    t->rng = c.rng;
    memcpy(t->w, c.w, P * 8);
    memcpy(t->m, c.m, P * 8);
    memcpy(t->r, c.r, P * 8);
    if (ver == 1u) /* version 1 held v; the trainer keeps r = sqrt(v) */
        for (size_t j = 0; j < P; j++) t->r[j] = sqrt(t->r[j]);
    memcpy(t->best_w, c.best_w, P * 8);
    memcpy(t->perm, c.perm, cnt_sz * 4);
    memcpy(t->has_x, c.has_x, cnt_sz);
    memcpy(t->xs, c.xs, t->total_n * 8);
    t->info.best_val_loss = c.best_val;
    t->info.best_step = c.best_step;
    t->info.val_loss = c.val_loss;
    t->epoch_loss_sum = c.loss_sum;
    t->epoch_used = c.used;
    t->info.epoch_loss = c.epoch_loss;
    t->info.skipped_total = c.skipped;
    t->info.empty_steps = c.empty;
    for (int k = 0; k < t->nthreads; k++) t->solves[k] = 0;
    t->solves[0] = c.solves;
    t->solves_other = 0;
    t->info.step = t->step;
    t->info.epoch = t->epoch;
    t->info.inner_solves = c.solves;
    wbi_tmsg(t, "resumed at step %lld from %s", t->step, path);
    return WB_OK;
}

static wb_status load_locked(wb_trainer *t, const char *path) {
    if (!path) {
        wbi_tmsg(t, "wb_trainer_load: path is NULL");
        return WB_EINVAL;
    }
#ifdef WIBERG_MPI
    if (t->mpi) return wbi_mpi_load(t, path); /* rank 0 reads, all check */
#endif
    unsigned char *buf = wbi_alloc(&t->s.solver, wbi_ckpt_bufsize(t), 1);
    if (!buf) {
        wbi_tmsg(t, "wb_trainer_load: out of memory");
        return WB_ENOMEM;
    }
    size_t got = 0;
    wb_status st = wbi_ckpt_read(t, path, buf, &got);
    if (st == WB_OK) st = wbi_ckpt_apply(t, buf, got, path);
    wbi_free(&t->s.solver, buf);
    return st;
}

wb_status wb_trainer_load(wb_trainer *t, const char *path) {
    if (!t) return wbi_fail(WB_EINVAL, "%s: t is NULL", __func__);
    if (!wbi_trainer_enter(t, __func__)) return WB_EBUSY;
    wb_status st = load_locked(t, path);
    wbi_trainer_leave(t);
    return st;
}
