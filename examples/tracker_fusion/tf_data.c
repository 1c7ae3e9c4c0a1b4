/* Synthetic tracker outputs, the CSV reader, and the split by sequence. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <stdlib.h>
#include <string.h>

#include "tf.h"

static uint64_t sm64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static double urand(uint64_t *s) {
    return ((double)(sm64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}
static double nrand(uint64_t *s) {
    return sqrt(-2 * log(urand(s))) * cos(6.283185307179586 * urand(s));
}

void tf_gen_default(tf_gen_opts *o) {
    o->sequences = 24;
    o->min_frames = 200;
    o->max_frames = 600;
    o->trackers = 6;
    o->missing = 0.1;
    o->seed = 1;
}

/* the arrays of a video; sz, score, truth_sz only when asked (NaN-filled) */
static int seq_alloc(tf_seq *s, int T, int K, int size, int score, int truth_sz) {
    s->T = T;
    s->K = K;
    s->y = calloc((size_t)T * K * 2, sizeof(double));
    s->m = calloc((size_t)T * K, 1);
    s->truth = calloc((size_t)T * 2, sizeof(double));
    if (size) s->sz = malloc(sizeof(double) * (size_t)T * K * 2);
    if (score) s->score = malloc(sizeof(double) * (size_t)T * K);
    if (truth_sz) s->truth_sz = malloc(sizeof(double) * (size_t)T * 2);
    if (!s->y || !s->m || !s->truth || (size && !s->sz) || (score && !s->score) ||
        (truth_sz && !s->truth_sz))
        return -1;
    s->has_size = size;
    s->has_score = score;
    s->has_truth_sz = truth_sz;
    for (size_t i = 0; size && i < (size_t)T * K * 2; i++) s->sz[i] = NAN;
    for (size_t i = 0; score && i < (size_t)T * K; i++) s->score[i] = NAN;
    for (size_t i = 0; truth_sz && i < (size_t)T * 2; i++) s->truth_sz[i] = NAN;
    return 0;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* d->names = "tracker 0" .. "tracker K-1"; 0 ok, -1 out of memory */
static int default_names(tf_data *d) {
    d->names = calloc((size_t)(d->K > 0 ? d->K : 1), sizeof(char *));
    if (!d->names) return -1;
    for (int k = 0; k < d->K; k++) {
        char b[32];
        snprintf(b, sizeof b, "tracker %d", k);
        if (!(d->names[k] = dup_str(b))) return -1;
    }
    return 0;
}

int tf_generate(const tf_gen_opts *o, tf_data *d) {
    uint64_t rs = o->seed * 0x2545F4914F6CDD1DULL + 7;
    int K = o->trackers;
    d->count = o->sequences;
    d->K = K;
    d->seq = calloc((size_t)o->sequences, sizeof(tf_seq));
    if (!d->seq || default_names(d)) {
        tf_data_free(d);
        return -1;
    }
    /* tracker personalities, shared by all videos: noise, failure rate */
    double sigma[TF_MAX_TRACKERS], pfail[TF_MAX_TRACKERS], drift[TF_MAX_TRACKERS];
    for (int k = 0; k < K; k++) {
        sigma[k] = 1.5 + 7.0 * urand(&rs);        /* 1.5 .. 8.5 px          */
        pfail[k] = 0.0005 + 0.008 * urand(&rs);   /* episodes per frame     */
        drift[k] = 0.02 + 0.15 * urand(&rs);      /* bias random-walk step  */
    }
    /* box sizes from a stream of their own (rz), so the centres are what
       they were before sizes existed: each tracker a relative size noise */
    uint64_t rz = o->seed * 0x9E3779B97F4A7C15ULL + 13;
    double rel[TF_MAX_TRACKERS];
    for (int k = 0; k < K; k++) rel[k] = 0.03 + 0.12 * urand(&rz); /* 3 .. 15 % */
    for (int q = 0; q < o->sequences; q++) {
        tf_seq *s = &d->seq[q];
        int T = o->min_frames + (int)(urand(&rs) * (o->max_frames - o->min_frames + 1));
        char nb[32];
        snprintf(nb, sizeof nb, "synthetic_%03d", q); /* no '-': one video each */
        if (seq_alloc(s, T, K, 1, 0, 1) != 0 || !(s->name = dup_str(nb))) {
            tf_data_free(d);
            return -1;
        }
        s->has_truth = 1;
        /* smooth motion: heading and speed follow slow random processes,
           with occasional sharp turns */
        double px = 200 + 600 * urand(&rs), py = 150 + 400 * urand(&rs);
        double head = 6.283185307179586 * urand(&rs), speed = 2 + 4 * urand(&rs);
        double turn = 0, dist_ang = urand(&rs) * 6.28, dist_r = 40 + 40 * urand(&rs);
        double bias[TF_MAX_TRACKERS][2] = {{0}};
        int mode[TF_MAX_TRACKERS] = {0}, left[TF_MAX_TRACKERS] = {0};
        double frozen[TF_MAX_TRACKERS][2] = {{0}};
        /* the object's box (w, h) drifts slowly in scale; the distractor
           has its own size */
        double bw = 20 + 60 * urand(&rz), bh = 20 + 60 * urand(&rz);
        double dw = 20 + 60 * urand(&rz), dh = 20 + 60 * urand(&rz);
        double fsz[TF_MAX_TRACKERS][2] = {{0}};
        for (int t = 0; t < T; t++) {
            turn = 0.95 * turn + 0.004 * nrand(&rs);
            if (urand(&rs) < 0.01) turn += 0.08 * nrand(&rs); /* a sharp turn */
            head += turn;
            speed += 0.15 * nrand(&rs);
            if (speed < 0.5) speed = 0.5;
            if (speed > 9) speed = 9;
            px += speed * cos(head);
            py += speed * sin(head);
            s->truth[2 * t] = px;
            s->truth[2 * t + 1] = py;
            bw = fmin(300, fmax(8, bw * exp(0.01 * nrand(&rz))));
            bh = fmin(300, fmax(8, bh * exp(0.01 * nrand(&rz))));
            s->truth_sz[2 * t] = bw;
            s->truth_sz[2 * t + 1] = bh;
            dist_ang += 0.03;
            double dx = px + dist_r * cos(dist_ang), dy = py + dist_r * sin(dist_ang);
            for (int k = 0; k < K; k++) {
                size_t i = (size_t)t * K + k;
                for (int c = 0; c < 2; c++) {
                    bias[k][c] += drift[k] * nrand(&rs);
                    if (bias[k][c] > 12) bias[k][c] = 12;
                    if (bias[k][c] < -12) bias[k][c] = -12;
                }
                if (left[k] == 0 && urand(&rs) < pfail[k]) {
                    mode[k] = urand(&rs) < 0.5 ? 1 : 2; /* distractor / freeze */
                    left[k] = mode[k] == 1 ? 20 + (int)(60 * urand(&rs))
                                           : 10 + (int)(40 * urand(&rs));
                    frozen[k][0] = t ? s->y[2 * (i - K)] : px;
                    frozen[k][1] = t ? s->y[2 * (i - K) + 1] : py;
                    fsz[k][0] = t ? s->sz[2 * (i - K)] : bw;
                    fsz[k][1] = t ? s->sz[2 * (i - K) + 1] : bh;
                }
                double ox, oy;
                if (left[k] > 0 && mode[k] == 1) {
                    ox = dx + sigma[k] * nrand(&rs);
                    oy = dy + sigma[k] * nrand(&rs);
                } else if (left[k] > 0 && mode[k] == 2) {
                    ox = frozen[k][0];
                    oy = frozen[k][1];
                } else {
                    ox = px + bias[k][0] + sigma[k] * nrand(&rs);
                    oy = py + bias[k][1] + sigma[k] * nrand(&rs);
                }
                /* the reported size: the distractor's, the frozen one, or
                   the object's, times exp(rel_k N(0,1)) per coordinate */
                double zw = exp(rel[k] * nrand(&rz)), zh = exp(rel[k] * nrand(&rz));
                int md = left[k] > 0 ? mode[k] : 0;
                s->sz[2 * i] = (md == 1 ? dw : md == 2 ? fsz[k][0] / zw : bw) * zw;
                s->sz[2 * i + 1] = (md == 1 ? dh : md == 2 ? fsz[k][1] / zh : bh) * zh;
                if (left[k] > 0) left[k]--;
                s->y[2 * i] = ox;
                s->y[2 * i + 1] = oy;
                s->m[i] = urand(&rs) >= o->missing;
            }
        }
    }
    return 0;
}

void tf_data_free(tf_data *d) {
    if (!d) return;
    for (int q = 0; d->seq && q < d->count; q++) {
        tf_seq *s = &d->seq[q];
        free(s->name);
        free(s->y);
        free(s->m);
        free(s->sz);
        free(s->score);
        free(s->truth);
        free(s->truth_sz);
    }
    for (int k = 0; d->names && k < d->K; k++) free(d->names[k]);
    free(d->names);
    free(d->seq);
    d->names = NULL;
    d->seq = NULL;
    d->count = 0;
}

/* ---- CSV ------------------------------------------------------------------ */

typedef struct {
    int seq, frame, tracker; /* tracker -1: a ground-truth record */
    double x, y, w, h;       /* w, h NaN: no size                  */
    double score;            /* NaN: none                          */
    long line;
} rec_t;

static int push_rec(rec_t **rec, long *n, long *cap, rec_t r) {
    if (*n == *cap) {
        long c = *cap ? 2 * *cap : 1024;
        void *p = realloc(*rec, (size_t)c * sizeof **rec);
        if (!p) return -1;
        *rec = p;
        *cap = c;
    }
    (*rec)[(*n)++] = r;
    return 0;
}

/* splits a line in place at commas; returns the field count (at most max;
   the last field then keeps any further commas) */
static int split_fields(char *line, char **f, int max) {
    int n = 0;
    char *p = line;
    while (n < max) {
        f[n++] = p;
        char *c = strchr(p, ',');
        if (!c) break;
        *c = '\0';
        p = c + 1;
    }
    for (int i = 0; i < n; i++) { /* trim */
        while (isspace((unsigned char)*f[i])) f[i]++;
        char *e = f[i] + strlen(f[i]);
        while (e > f[i] && isspace((unsigned char)e[-1])) *--e = '\0';
    }
    return n;
}
static int parse_num(const char *s, double *v) {
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return *s != '\0' && *end == '\0' && errno == 0 && isfinite(*v) ? 0 : -1;
}
static int parse_int(const char *s, int *v) {
    double d;
    if (parse_num(s, &d) != 0 || d != floor(d) || d < 0 || d > 1e8) return -1;
    *v = (int)d;
    return 0;
}
/* a name: not empty, no control characters (bytes < 32 or 127) */
static int bad_name(const char *s) {
    if (!*s) return 1;
    for (; *s; s++)
        if ((unsigned char)*s < 32 || (unsigned char)*s == 127) return 1;
    return 0;
}

/* Sequence names -> ids: open addressing (linear probing) on an FNV-1a hash,
   the table kept at most half full, so a lookup costs O(length of the name)
   on average and reading n lines O(n). Names are stored whole. */
typedef struct {
    char **names; /* [count] by id, owned */
    int count, cap;
    int *slot;    /* [nslot] id + 1, 0 = empty; nslot a power of 2 */
    size_t nslot;
} names_t;
static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}
/* id of s, or -1 when absent (add = 0); -2 out of memory */
static int name_id(names_t *nm, const char *s, int add) {
    if (nm->nslot) {
        size_t i = (size_t)(fnv1a(s) & (nm->nslot - 1));
        for (; nm->slot[i]; i = (i + 1) & (nm->nslot - 1))
            if (!strcmp(nm->names[nm->slot[i] - 1], s)) return nm->slot[i] - 1;
    }
    if (!add) return -1;
    if (2 * ((size_t)nm->count + 1) > nm->nslot) { /* grow and rehash */
        size_t ns = nm->nslot ? 2 * nm->nslot : 64;
        int *sl = calloc(ns, sizeof(int));
        if (!sl) return -2;
        for (int id = 0; id < nm->count; id++) {
            size_t i = (size_t)(fnv1a(nm->names[id]) & (ns - 1));
            while (sl[i]) i = (i + 1) & (ns - 1);
            sl[i] = id + 1;
        }
        free(nm->slot);
        nm->slot = sl;
        nm->nslot = ns;
    }
    if (nm->count == nm->cap) {
        int cap = nm->cap ? 2 * nm->cap : 16;
        void *p = realloc(nm->names, (size_t)cap * sizeof *nm->names);
        if (!p) return -2;
        nm->names = p;
        nm->cap = cap;
    }
    char *c = dup_str(s);
    if (!c) return -2;
    size_t i = (size_t)(fnv1a(s) & (nm->nslot - 1));
    while (nm->slot[i]) i = (i + 1) & (nm->nslot - 1);
    nm->slot[i] = nm->count + 1;
    nm->names[nm->count] = c;
    return nm->count++;
}
static void names_free(names_t *nm) {
    for (int i = 0; i < nm->count; i++) free(nm->names[i]);
    free(nm->names);
    free(nm->slot);
}

/* One line of f into *buf (getline): 1 read, 0 end of file, -1 read error,
   -2 a NUL byte in the line, -3 out of memory. The line ending (\n, \r\n)
   and, on line 1, a UTF-8 byte-order mark are removed. */
static int read_line(FILE *f, char **buf, size_t *cap, long ln) {
    errno = 0;
    ssize_t n = getline(buf, cap, f);
    if (n < 0) return ferror(f) ? (errno == ENOMEM ? -3 : -1) : 0;
    if ((size_t)n != strlen(*buf)) return -2;
    (*buf)[strcspn(*buf, "\r\n")] = '\0';
    if (ln == 1 && !memcmp(*buf, "\xEF\xBB\xBF", 3)) memmove(*buf, *buf + 3, strlen(*buf + 3) + 1);
    return 1;
}

/* per sequence: lines in both files, the largest frame and where it is */
typedef struct {
    long lines, max_line;
    int max_frame, max_in_truth, sized, scored;
} seqinfo_t;
static int grow_info(seqinfo_t **info, int *cap, int need) {
    if (need <= *cap) return 0;
    int c = *cap ? 2 * *cap : 64;
    while (c < need) c *= 2;
    void *p = realloc(*info, (size_t)c * sizeof **info);
    if (!p) return -1;
    memset((seqinfo_t *)p + *cap, 0, (size_t)(c - *cap) * sizeof **info);
    *info = p;
    *cap = c;
    return 0;
}

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); goto fail; } while (0)
#define MAXF 16 /* fields looked at per line */

/* the line-reading failures of read_line as messages */
#define LINE_FAIL(rc, path, ln)                                                          \
    do {                                                                                 \
        if ((rc) == -2) FAIL("%s:%ld: a NUL byte in the line (not a text file?)", path, ln); \
        if ((rc) == -3) FAIL("%s:%ld: out of memory", path, ln);                         \
        FAIL("%s:%ld: read error", path, ln);                                            \
    } while (0)

int tf_read_csv(const char *tracks_path, const char *truth_path, tf_data *d,
                char *err, size_t errlen) {
    memset(d, 0, sizeof *d);
    names_t nm = {NULL, 0, 0, NULL, 0};
    rec_t *rec = NULL;
    long nrec = 0, cap = 0;
    seqinfo_t *info = NULL;
    int icap = 0;
    unsigned char *seen = NULL;
    size_t *base = NULL;
    char *line = NULL, *tname[TF_MAX_TRACKERS] = {NULL};
    size_t lcap = 0;
    int truth_sz = 0, rc;
    FILE *f = fopen(tracks_path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", tracks_path, strerror(errno));
        return -1;
    }
    long ln = 0;
    int K = 0, ncol = 0, cw = -1, ch = -1, cs = -1, cn = -1;
    while ((rc = read_line(f, &line, &lcap, ln + 1)) != 0) {
        ln++;
        if (rc < 0) LINE_FAIL(rc, tracks_path, ln);
        char *fl[MAXF];
        if (ln == 1) { /* the header */
            int nf = split_fields(line, fl, MAXF);
            if (nf < 5 || strcmp(fl[0], "sequence") || strcmp(fl[1], "frame") ||
                strcmp(fl[2], "tracker") || strcmp(fl[3], "x") || strcmp(fl[4], "y"))
                FAIL("%s:1: the header must start with sequence,frame,tracker,x,y", tracks_path);
            for (int i = 5; i < nf; i++) {
                int *c = !strcmp(fl[i], "w") ? &cw : !strcmp(fl[i], "h") ? &ch
                       : !strcmp(fl[i], "score") ? &cs : !strcmp(fl[i], "name") ? &cn : NULL;
                if (!c) FAIL("%s:1: unknown column '%s' (the optional columns are w, h, score, name)", tracks_path, fl[i]);
                if (*c >= 0) FAIL("%s:1: column '%s' twice", tracks_path, fl[i]);
                *c = i;
            }
            if ((cw < 0) != (ch < 0)) FAIL("%s:1: columns w and h go together", tracks_path);
            ncol = nf;
            continue;
        }
        if (line[0] == '\0') continue;
        int nf = split_fields(line, fl, MAXF);
        if (nf < 5) FAIL("%s:%ld: %d columns, expected at least 5 (sequence,frame,tracker,x,y)", tracks_path, ln, nf);
        if (nf > ncol || strchr(fl[nf - 1], ','))
            FAIL("%s:%ld: more columns than the header's %d", tracks_path, ln, ncol);
        rec_t r = {0, 0, 0, 0, 0, NAN, NAN, NAN, ln};
        if (bad_name(fl[0])) FAIL("%s:%ld: empty sequence name or a control character in it", tracks_path, ln);
        if (parse_int(fl[1], &r.frame)) FAIL("%s:%ld: frame '%s' is not an integer in [0, 1e8]", tracks_path, ln, fl[1]);
        if (parse_int(fl[2], &r.tracker) || r.tracker >= TF_MAX_TRACKERS)
            FAIL("%s:%ld: tracker '%s' is not an integer in [0, %d)", tracks_path, ln, fl[2], TF_MAX_TRACKERS);
        if (parse_num(fl[3], &r.x)) FAIL("%s:%ld: x '%s' is not a number", tracks_path, ln, fl[3]);
        if (parse_num(fl[4], &r.y)) FAIL("%s:%ld: y '%s' is not a number", tracks_path, ln, fl[4]);
        if (fabs(r.x) > TF_MAX_COORD || fabs(r.y) > TF_MAX_COORD)
            FAIL("%s:%ld: centre (%s, %s) beyond +-%g px", tracks_path, ln, fl[3], fl[4], TF_MAX_COORD);
        const char *sw = cw >= 0 && cw < nf ? fl[cw] : "", *sh = ch >= 0 && ch < nf ? fl[ch] : "";
        if ((*sw == '\0') != (*sh == '\0')) FAIL("%s:%ld: w and h go together (one is empty)", tracks_path, ln);
        if (*sw) {
            if (parse_num(sw, &r.w) || parse_num(sh, &r.h) || !(r.w > 0) || !(r.h > 0) ||
                r.w > TF_MAX_COORD || r.h > TF_MAX_COORD)
                FAIL("%s:%ld: box size '%s' x '%s' is not two numbers in (0, %g] px", tracks_path, ln, sw, sh, TF_MAX_COORD);
        }
        if (cs >= 0 && cs < nf && fl[cs][0] && parse_num(fl[cs], &r.score))
            FAIL("%s:%ld: score '%s' is not a finite number", tracks_path, ln, fl[cs]);
        if (cn >= 0 && cn < nf && fl[cn][0]) {
            if (bad_name(fl[cn])) FAIL("%s:%ld: a control character in the tracker name", tracks_path, ln);
            if (!tname[r.tracker] && !(tname[r.tracker] = dup_str(fl[cn])))
                FAIL("%s:%ld: out of memory", tracks_path, ln);
            if (strcmp(tname[r.tracker], fl[cn]))
                FAIL("%s:%ld: tracker %d is named '%s' here and '%s' before", tracks_path, ln,
                     r.tracker, fl[cn], tname[r.tracker]);
        }
        r.seq = name_id(&nm, fl[0], 1);
        if (r.seq < 0 || grow_info(&info, &icap, nm.count)) FAIL("%s:%ld: out of memory", tracks_path, ln);
        seqinfo_t *in = &info[r.seq];
        in->lines++;
        if (r.frame >= in->max_frame) in->max_frame = r.frame, in->max_line = ln, in->max_in_truth = 0;
        in->sized |= !isnan(r.w);
        in->scored |= !isnan(r.score);
        if (r.tracker + 1 > K) K = r.tracker + 1;
        if (push_rec(&rec, &nrec, &cap, r)) FAIL("%s:%ld: out of memory", tracks_path, ln);
    }
    fclose(f);
    f = NULL;
    if (ln == 0) FAIL("%s: empty file (expected a header and data)", tracks_path);
    if (nrec == 0) FAIL("%s: no data lines after the header", tracks_path);
    long ntracks = nrec;
    if (truth_path) { /* read the truth records before sizing the videos:
                         a video lasts until its last report or truth frame */
        f = fopen(truth_path, "r");
        if (!f) FAIL("%s: cannot open: %s", truth_path, strerror(errno));
        ln = 0;
        int tcol = 4;
        while ((rc = read_line(f, &line, &lcap, ln + 1)) != 0) {
            ln++;
            if (rc < 0) LINE_FAIL(rc, truth_path, ln);
            char *fl[8];
            int nf = split_fields(line, fl, 8);
            if (ln == 1) {
                if ((nf != 4 && nf != 6) || strcmp(fl[0], "sequence") || strcmp(fl[1], "frame") ||
                    strcmp(fl[2], "x") || strcmp(fl[3], "y") ||
                    (nf == 6 && (strcmp(fl[4], "w") || strcmp(fl[5], "h"))))
                    FAIL("%s:1: the header must be sequence,frame,x,y or sequence,frame,x,y,w,h", truth_path);
                tcol = nf;
                truth_sz = nf == 6;
                continue;
            }
            if (line[0] == '\0') continue;
            rec_t r = {-1, 0, -1, 0, 0, NAN, NAN, NAN, ln};
            if (nf != tcol || strchr(fl[nf - 1], ','))
                FAIL("%s:%ld: %d columns, expected %d (%s)", truth_path, ln, nf, tcol,
                     truth_sz ? "sequence,frame,x,y,w,h" : "sequence,frame,x,y");
            if (parse_int(fl[1], &r.frame)) FAIL("%s:%ld: frame '%s' is not an integer in [0, 1e8]", truth_path, ln, fl[1]);
            if (parse_num(fl[2], &r.x)) FAIL("%s:%ld: x '%s' is not a number", truth_path, ln, fl[2]);
            if (parse_num(fl[3], &r.y)) FAIL("%s:%ld: y '%s' is not a number", truth_path, ln, fl[3]);
            if (fabs(r.x) > TF_MAX_COORD || fabs(r.y) > TF_MAX_COORD)
                FAIL("%s:%ld: centre (%s, %s) beyond +-%g px", truth_path, ln, fl[2], fl[3], TF_MAX_COORD);
            if (truth_sz && (parse_num(fl[4], &r.w) || parse_num(fl[5], &r.h) || !(r.w > 0) ||
                             !(r.h > 0) || r.w > TF_MAX_COORD || r.h > TF_MAX_COORD))
                FAIL("%s:%ld: box size '%s' x '%s' is not two numbers in (0, %g] px", truth_path, ln, fl[4], fl[5], TF_MAX_COORD);
            r.seq = name_id(&nm, fl[0], 0);
            if (r.seq < 0) FAIL("%s:%ld: sequence '%s' has no tracks", truth_path, ln, fl[0]);
            seqinfo_t *in = &info[r.seq];
            in->lines++;
            if (r.frame > in->max_frame) in->max_frame = r.frame, in->max_line = ln, in->max_in_truth = 1;
            if (push_rec(&rec, &nrec, &cap, r)) FAIL("%s:%ld: out of memory", truth_path, ln);
        }
        fclose(f);
        f = NULL;
        if (ln == 0) FAIL("%s: empty file (expected a header and data)", truth_path);
    }
    /* a frame far beyond the lines of its sequence is refused before any
       allocation of T frames: memory stays linear in the files */
    for (int q = 0; q < nm.count; q++) {
        const seqinfo_t *in = &info[q];
        if ((double)in->max_frame + 1 > TF_FRAMES_PER_LINE * (double)in->lines + TF_FRAMES_SLACK)
            FAIL("%s:%ld: frame %d of '%s' is far beyond its %ld lines (at most %d x lines + %d frames)",
                 in->max_in_truth ? truth_path : tracks_path, in->max_line, in->max_frame,
                 nm.names[q], in->lines, TF_FRAMES_PER_LINE, TF_FRAMES_SLACK);
    }
    d->seq = calloc((size_t)nm.count, sizeof(tf_seq));
    base = malloc(sizeof(size_t) * ((size_t)nm.count + 1));
    if (!d->seq || !base) FAIL("out of memory");
    d->count = nm.count;
    d->K = K;
    if (default_names(d)) FAIL("out of memory");
    for (int k = 0; k < K; k++)
        if (tname[k]) free(d->names[k]), d->names[k] = tname[k], tname[k] = NULL;
    base[0] = 0;
    for (int q = 0; q < nm.count; q++) {
        tf_seq *s = &d->seq[q];
        s->name = nm.names[q]; /* moved */
        nm.names[q] = NULL;
        if (seq_alloc(s, info[q].max_frame + 1, K, info[q].sized, info[q].scored, truth_sz))
            FAIL("out of memory");
        base[q + 1] = base[q] + (size_t)s->T;
    }
    for (long i = 0; i < ntracks; i++) {
        const rec_t *r = &rec[i];
        tf_seq *s = &d->seq[r->seq];
        size_t j = (size_t)r->frame * K + r->tracker;
        if (s->m[j])
            FAIL("%s:%ld: a second report of tracker %d in frame %d of '%s'", tracks_path,
                 r->line, r->tracker, r->frame, s->name);
        s->y[2 * j] = r->x;
        s->y[2 * j + 1] = r->y;
        if (s->sz) s->sz[2 * j] = r->w, s->sz[2 * j + 1] = r->h;
        if (s->score) s->score[j] = r->score;
        s->m[j] = 1;
    }
    if (truth_path) {
        /* every frame of every sequence needs one truth line: seen[] over
           all frames (sequence q's frames from base[q]) */
        seen = calloc(base[nm.count] ? base[nm.count] : 1, 1);
        if (!seen) FAIL("out of memory");
        for (long i = ntracks; i < nrec; i++) {
            const rec_t *r = &rec[i];
            tf_seq *s = &d->seq[r->seq];
            if (seen[base[r->seq] + (size_t)r->frame]++)
                FAIL("%s:%ld: a second truth line for frame %d of '%s'", truth_path, r->line,
                     r->frame, s->name);
            s->truth[2 * r->frame] = r->x;
            s->truth[2 * r->frame + 1] = r->y;
            if (s->truth_sz) s->truth_sz[2 * r->frame] = r->w, s->truth_sz[2 * r->frame + 1] = r->h;
        }
        for (int q = 0; q < d->count; q++) {
            tf_seq *s = &d->seq[q];
            int have = 0, first = -1;
            for (int t = 0; t < s->T; t++) {
                if (seen[base[q] + (size_t)t]) have++;
                else if (first < 0) first = t;
            }
            if (have != s->T)
                FAIL("%s: sequence '%s' lacks truth for frame %d (and %d more of frames 0..%d)",
                     truth_path, s->name, first, s->T - have - 1, s->T - 1);
            s->has_truth = 1;
        }
    }
    free(rec);
    names_free(&nm);
    free(info);
    free(seen);
    free(base);
    free(line);
    return 0;
fail:
    if (f) fclose(f);
    free(rec);
    names_free(&nm);
    free(info);
    free(seen);
    free(base);
    free(line);
    for (int k = 0; k < TF_MAX_TRACKERS; k++) free(tname[k]);
    tf_data_free(d);
    return -1;
}

int tf_read_names(const char *path, tf_data *d, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t lcap = 0;
    long ln = 0;
    int rc;
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    while ((rc = read_line(f, &line, &lcap, ln + 1)) != 0) {
        ln++;
        if (rc < 0) LINE_FAIL(rc, path, ln);
        char *fl[2];
        int nf = split_fields(line, fl, 2);
        if (ln == 1) {
            if (nf != 2 || strcmp(fl[0], "id") || strcmp(fl[1], "name"))
                FAIL("%s:1: the header must be id,name", path);
            continue;
        }
        if (line[0] == '\0') continue;
        int k;
        if (nf != 2) FAIL("%s:%ld: expected id,name", path, ln);
        if (parse_int(fl[0], &k) || k >= d->K)
            FAIL("%s:%ld: tracker id '%s' is not an integer in [0, %d)", path, ln, fl[0], d->K);
        if (bad_name(fl[1])) FAIL("%s:%ld: empty tracker name or a control character in it", path, ln);
        char *c = dup_str(fl[1]);
        if (!c) FAIL("%s:%ld: out of memory", path, ln);
        free(d->names[k]);
        d->names[k] = c;
    }
    fclose(f);
    free(line);
    if (ln == 0) {
        snprintf(err, errlen, "%s: empty file (expected the header id,name)", path);
        return -1;
    }
    return 0;
fail:
    fclose(f);
    free(line);
    return -1;
}

/* the length of a sequence name's group key: the whole name, or for
   TF_GROUP_DASH the part before its last '-' */
static size_t key_len(const char *name, int group) {
    const char *dash = group == TF_GROUP_DASH ? strrchr(name, '-') : NULL;
    return dash ? (size_t)(dash - name) : strlen(name);
}
static uint64_t fnv1a_n(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

int tf_split_by(const tf_data *d, double frac, uint64_t seed, int group,
                tf_data *train, tf_data *test) {
    int n = d->count;
    int nt = (int)floor(frac * n + 0.5);
    if (n >= 2 && nt < 1) nt = 1;
    if (nt >= n) nt = n - 1;
    size_t m = (size_t)(n > 0 ? n : 1), ns = 64;
    while (ns < 2 * m) ns *= 2;
    /* vid[v]: video v's first sequence; of[q]: q's video; a hash of the
       group keys (open addressing) makes the grouping linear in n */
    int *vid = malloc(sizeof(int) * m), *of = malloc(sizeof(int) * m);
    int *slot = calloc(ns, sizeof(int)), *start = calloc(m + 1, sizeof(int));
    int *members = malloc(sizeof(int) * m);
    train->seq = calloc(m, sizeof(tf_seq));
    test->seq = calloc(m, sizeof(tf_seq));
    int rc = -1;
    if (!vid || !of || !slot || !start || !members || !train->seq || !test->seq) goto done;
    int nv = 0;
    for (int q = 0; q < n; q++) {
        const char *a = d->seq[q].name;
        size_t la = key_len(a, group);
        size_t i = (size_t)(fnv1a_n(a, la) & (ns - 1));
        of[q] = -1;
        for (; slot[i]; i = (i + 1) & (ns - 1)) {
            const char *b = d->seq[vid[slot[i] - 1]].name;
            if (group != TF_GROUP_NONE && key_len(b, group) == la && !memcmp(a, b, la)) {
                of[q] = slot[i] - 1;
                break;
            }
        }
        if (of[q] < 0) {
            slot[i] = nv + 1;
            vid[nv] = q;
            of[q] = nv++;
        }
    }
    /* members of video v: members[start[v] .. start[v+1]-1], in file order */
    for (int q = 0; q < n; q++) start[of[q] + 1]++;
    for (int v = 0; v < nv; v++) start[v + 1] += start[v];
    {
        int *fill = slot; /* reuse: slot is no longer needed */
        memcpy(fill, start, sizeof(int) * (size_t)nv);
        for (int q = 0; q < n; q++) members[fill[of[q]]++] = q;
    }
    /* the seeded shuffle of the videos (as of the sequences when each is
       its own video) */
    int *order = of; /* reuse */
    for (int v = 0; v < nv; v++) order[v] = v;
    uint64_t s = seed ^ 0xA5A5A5A5ULL;
    for (int i = nv - 1; i > 0; i--) {
        int j = (int)(sm64(&s) % (uint64_t)(i + 1));
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    /* whole videos to test in shuffled order until it holds nt sequences;
       a video that would leave nothing for training goes to train */
    test->count = train->count = 0;
    test->K = train->K = d->K;
    test->names = train->names = d->names;
    int taken = 0;
    for (int i = 0; i < nv; i++) {
        int v = order[i], size = start[v + 1] - start[v];
        int to_test = taken < nt && taken + size < n;
        if (to_test) taken += size;
        for (int j = start[v]; j < start[v + 1]; j++) {
            if (to_test) test->seq[test->count++] = d->seq[members[j]];
            else train->seq[train->count++] = d->seq[members[j]];
        }
    }
    rc = 0;
done:
    free(vid);
    free(of);
    free(slot);
    free(start);
    free(members);
    if (rc) {
        tf_split_free(train);
        tf_split_free(test);
    }
    return rc;
}

int tf_split(const tf_data *d, double frac, uint64_t seed, tf_data *train,
             tf_data *test) {
    return tf_split_by(d, frac, seed, TF_GROUP_NONE, train, test);
}

void tf_split_free(tf_data *part) {
    free(part->seq);
    part->seq = NULL;
    part->count = 0;
}
