/* Checkpoints: the whole training state in one file, written atomically.
 *
 * Layout (native byte order, version CK_VERSION): magic "WIBERGCK", version,
 * byte-order mark 0x01020304, p, count, total n, optimizer; step, epoch,
 * position in the epoch, RNG state; w, m, v, best w [p each]; best
 * validation loss, its step, last validation loss, the epoch's loss sum and
 * used count, last epoch loss, skipped total, inner solves; the example
 * order [count], warm-start flags [count], warm starts [total n]; then the
 * FNV-1a 64 hash of everything before it.
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
#define CK_VERSION 1u

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
            skipped = t->info.skipped_total, solves = wbi_trainer_solves(t);
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
    put(b, t->v, P * 8);
    put(b, t->best_w, P * 8);
    put(b, &t->info.best_val_loss, 8);
    put(b, &best_step, 8);
    put(b, &t->info.val_loss, 8);
    put(b, &t->epoch_loss_sum, 8);
    put(b, &used, 4);
    put(b, &t->info.epoch_loss, 8);
    put(b, &skipped, 8);
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

wb_status wb_trainer_save(const wb_trainer *tc, const char *path) {
    wb_trainer *t = (wb_trainer *)tc; /* only the message changes */
    if (!t) return wbi_fail(WB_EINVAL, "%s: t is NULL", __func__);
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

typedef struct {
    const unsigned char *p;
    size_t len, at;
} rbuf_t;

static int get(rbuf_t *r, void *dst, size_t n) {
    if (r->at + n > r->len) return -1;
    memcpy(dst, r->p + r->at, n);
    r->at += n;
    return 0;
}

wb_status wb_trainer_load(wb_trainer *t, const char *path) {
    if (!t) return wbi_fail(WB_EINVAL, "%s: t is NULL", __func__);
    if (!path) {
        wbi_tmsg(t, "wb_trainer_load: path is NULL");
        return WB_EINVAL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        wbi_tmsg(t, "wb_trainer_load: cannot open %s: %s", path, strerror(errno));
        return WB_EIO;
    }
    wbuf_t want = {NULL, 0, 0, 0};
    serialize(t, &want); /* the exact size this trainer's state needs */
    size_t expect = want.len + 8;
    unsigned char *buf = wbi_alloc(&t->s.solver, expect + 1, 1);
    if (!buf) {
        fclose(f);
        wbi_tmsg(t, "wb_trainer_load: out of memory");
        return WB_ENOMEM;
    }
    size_t got = fread(buf, 1, expect + 1, f);
    int rerr = ferror(f);
    fclose(f);
    wb_status st = WB_EFORMAT;
    if (rerr) {
        wbi_tmsg(t, "wb_trainer_load: read error on %s", path);
        st = WB_EIO;
        goto out;
    }
    if (got < 16 || memcmp(buf, CK_MAGIC, 8) != 0) {
        wbi_tmsg(t, "wb_trainer_load: %s is not a libwiberg checkpoint", path);
        goto out;
    }
    uint32_t ver = 0, endian = 0, p = 0, cnt = 0, opt = 0;
    memcpy(&ver, buf + 8, 4);
    memcpy(&endian, buf + 12, 4);
    if (ver != CK_VERSION || endian != 0x01020304u) {
        wbi_tmsg(t, "wb_trainer_load: %s has version %u (expected %u) or another "
             "byte order", path, ver, CK_VERSION);
        goto out;
    }
    if (got != expect) {
        wbi_tmsg(t, "wb_trainer_load: %s has %zu%s bytes, this trainer's state "
             "needs %zu (truncated, or another data set or p)", path, got,
             got > expect ? "+" : "", expect);
        goto out;
    }
    uint64_t h;
    memcpy(&h, buf + want.len, 8);
    if (h != fnv1a(buf, want.len)) {
        wbi_tmsg(t, "wb_trainer_load: %s fails its checksum (corrupt)", path);
        goto out;
    }
    rbuf_t r = {buf, want.len, 16};
    uint64_t tn = 0;
    get(&r, &p, 4);
    get(&r, &cnt, 4);
    get(&r, &tn, 8);
    get(&r, &opt, 4);
    if (p != (uint32_t)t->p || cnt != (uint32_t)t->count ||
        tn != (uint64_t)t->total_n || opt != (uint32_t)t->s.optimizer) {
        wbi_tmsg(t, "wb_trainer_load: %s was written for p = %u, %u examples, "
             "optimizer %u; this trainer has p = %d, %d examples, optimizer %d",
             path, p, cnt, opt, t->p, t->count, (int)t->s.optimizer);
        goto out;
    }
    int64_t step = 0, best_step = 0, skipped = 0, solves = 0;
    int32_t epoch = 0, pos = 0, used = 0;
    uint64_t rng = 0;
    size_t P = (size_t)t->p;
    size_t at_arrays;
    get(&r, &step, 8);
    get(&r, &epoch, 4);
    get(&r, &pos, 4);
    get(&r, &rng, 8);
    at_arrays = r.at;
    /* validate the scalars and the permutation before touching the trainer */
    if (step < 0 || step > t->total_steps || epoch < 0 || pos < 0 ||
        pos >= t->count) {
        wbi_tmsg(t, "wb_trainer_load: %s holds an impossible position (step "
             "%lld, epoch %d, pos %d)", path, (long long)step, epoch, pos);
        goto out;
    }
    {
        size_t perm_at = at_arrays + 4 * P * 8 + 8 + 8 + 8 + 8 + 4 + 8 + 8 + 8;
        for (int i = 0; i < t->count; i++) {
            int32_t v;
            memcpy(&v, buf + perm_at + 4 * (size_t)i, 4);
            if (v < 0 || v >= t->count) {
                wbi_tmsg(t, "wb_trainer_load: %s holds an invalid example order", path);
                goto out;
            }
        }
        /* w, the moments, best w and the warm starts must be finite (the
           trainer never writes anything else), and Adam's v >= 0 */
        size_t xs_at = perm_at + 4 * (size_t)t->count + (size_t)t->count;
        int bad = !finite_at(buf + at_arrays, 4 * P) ||
                  !finite_at(buf + xs_at, t->total_n);
        for (size_t j = 0; j < P && !bad; j++) {
            double v;
            memcpy(&v, buf + at_arrays + (2 * P + j) * 8, 8);
            bad = v < 0.0;
        }
        for (int i = 0; i < t->count && !bad; i++)
            bad = buf[perm_at + 4 * (size_t)t->count + (size_t)i] > 1;
        if (bad) {
            wbi_tmsg(t, "wb_trainer_load: %s holds a non-finite or impossible "
                 "value (w, optimizer moments, best w or warm starts)", path);
            goto out;
        }
    }
    t->step = step;
    t->epoch = epoch;
    t->pos = pos;
    t->rng = rng;
    get(&r, t->w, P * 8);
    get(&r, t->m, P * 8);
    get(&r, t->v, P * 8);
    get(&r, t->best_w, P * 8);
    get(&r, &t->info.best_val_loss, 8);
    get(&r, &best_step, 8);
    get(&r, &t->info.val_loss, 8);
    get(&r, &t->epoch_loss_sum, 8);
    get(&r, &used, 4);
    get(&r, &t->info.epoch_loss, 8);
    get(&r, &skipped, 8);
    get(&r, &solves, 8);
    get(&r, t->perm, (size_t)t->count * 4);
    get(&r, t->has_x, (size_t)t->count);
    get(&r, t->xs, t->total_n * 8);
    t->epoch_used = used;
    t->info.best_step = best_step;
    t->info.skipped_total = skipped;
    for (int k = 0; k < t->nthreads; k++) t->solves[k] = 0;
    t->solves[0] = solves;
    t->info.step = t->step;
    t->info.epoch = t->epoch;
    t->info.inner_solves = solves;
    wbi_tmsg(t, "resumed at step %lld from %s", t->step, path);
    st = WB_OK;
out:
    wbi_free(&t->s.solver, buf);
    return st;
}
