/* Synthetic tracker outputs, the CSV reader, and the split by sequence. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
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

static int seq_alloc(tf_seq *s, int T, int K) {
    s->T = T;
    s->K = K;
    s->y = calloc((size_t)T * K * 2, sizeof(double));
    s->m = calloc((size_t)T * K, 1);
    s->truth = calloc((size_t)T * 2, sizeof(double));
    return s->y && s->m && s->truth ? 0 : -1;
}

int tf_generate(const tf_gen_opts *o, tf_data *d) {
    uint64_t rs = o->seed * 0x2545F4914F6CDD1DULL + 7;
    int K = o->trackers;
    d->count = o->sequences;
    d->K = K;
    d->seq = calloc((size_t)o->sequences, sizeof(tf_seq));
    if (!d->seq) return -1;
    /* tracker personalities, shared by all videos: noise, failure rate */
    double sigma[TF_MAX_TRACKERS], pfail[TF_MAX_TRACKERS], drift[TF_MAX_TRACKERS];
    for (int k = 0; k < K; k++) {
        sigma[k] = 1.5 + 7.0 * urand(&rs);        /* 1.5 .. 8.5 px          */
        pfail[k] = 0.0005 + 0.008 * urand(&rs);   /* episodes per frame     */
        drift[k] = 0.02 + 0.15 * urand(&rs);      /* bias random-walk step  */
    }
    for (int q = 0; q < o->sequences; q++) {
        tf_seq *s = &d->seq[q];
        int T = o->min_frames + (int)(urand(&rs) * (o->max_frames - o->min_frames + 1));
        if (seq_alloc(s, T, K) != 0) return -1;
        snprintf(s->name, sizeof s->name, "synthetic-%03d", q);
        s->has_truth = 1;
        /* smooth motion: heading and speed follow slow random processes,
           with occasional sharp turns */
        double px = 200 + 600 * urand(&rs), py = 150 + 400 * urand(&rs);
        double head = 6.283185307179586 * urand(&rs), speed = 2 + 4 * urand(&rs);
        double turn = 0, dist_ang = urand(&rs) * 6.28, dist_r = 40 + 40 * urand(&rs);
        double bias[TF_MAX_TRACKERS][2] = {{0}};
        int mode[TF_MAX_TRACKERS] = {0}, left[TF_MAX_TRACKERS] = {0};
        double frozen[TF_MAX_TRACKERS][2] = {{0}};
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
    if (!d || !d->seq) return;
    for (int q = 0; q < d->count; q++) {
        free(d->seq[q].y);
        free(d->seq[q].m);
        free(d->seq[q].truth);
    }
    free(d->seq);
    d->seq = NULL;
    d->count = 0;
}

/* ---- CSV ------------------------------------------------------------------ */

typedef struct {
    int seq, frame, tracker; /* tracker -1: a ground-truth record */
    double x, y;
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

/* splits a line in place at commas; returns the field count (<= max) */
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

typedef struct {
    char (*names)[64];
    int count, cap;
} names_t;
static int name_id(names_t *nm, const char *s) {
    for (int i = 0; i < nm->count; i++)
        if (!strncmp(nm->names[i], s, 63)) return i;
    if (nm->count == nm->cap) {
        int cap = nm->cap ? 2 * nm->cap : 16;
        void *p = realloc(nm->names, (size_t)cap * sizeof *nm->names);
        if (!p) return -1;
        nm->names = p;
        nm->cap = cap;
    }
    snprintf(nm->names[nm->count], 64, "%s", s);
    return nm->count++;
}

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); goto fail; } while (0)

int tf_read_csv(const char *tracks_path, const char *truth_path, tf_data *d,
                char *err, size_t errlen) {
    memset(d, 0, sizeof *d);
    names_t nm = {NULL, 0, 0};
    rec_t *rec = NULL;
    long nrec = 0, cap = 0;
    int *maxframe = NULL;
    FILE *f = fopen(tracks_path, "r");
    char line[4096];
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", tracks_path, strerror(errno));
        return -1;
    }
    long ln = 0;
    int K = 0;
    while (fgets(line, sizeof line, f)) {
        ln++;
        if (!strchr(line, '\n') && !feof(f))
            FAIL("%s:%ld: line longer than %zu characters", tracks_path, ln, sizeof line - 1);
        char *fl[16];
        line[strcspn(line, "\r\n")] = '\0';
        if (ln == 1) { /* the header */
            int nf = split_fields(line, fl, 16);
            if (nf < 5 || strcmp(fl[0], "sequence") || strcmp(fl[1], "frame") ||
                strcmp(fl[2], "tracker") || strcmp(fl[3], "x") || strcmp(fl[4], "y"))
                FAIL("%s:1: the header must start with sequence,frame,tracker,x,y", tracks_path);
            continue;
        }
        if (line[0] == '\0') continue;
        int nf = split_fields(line, fl, 16);
        if (nf < 5) FAIL("%s:%ld: %d columns, expected at least 5 (sequence,frame,tracker,x,y)", tracks_path, ln, nf);
        if (nf > 8) FAIL("%s:%ld: %d columns, expected at most 8", tracks_path, ln, nf);
        rec_t r;
        if (fl[0][0] == '\0') FAIL("%s:%ld: empty sequence name", tracks_path, ln);
        if (parse_int(fl[1], &r.frame)) FAIL("%s:%ld: frame '%s' is not a non-negative integer", tracks_path, ln, fl[1]);
        if (parse_int(fl[2], &r.tracker) || r.tracker >= TF_MAX_TRACKERS)
            FAIL("%s:%ld: tracker '%s' is not an integer in [0, %d)", tracks_path, ln, fl[2], TF_MAX_TRACKERS);
        if (parse_num(fl[3], &r.x)) FAIL("%s:%ld: x '%s' is not a number", tracks_path, ln, fl[3]);
        if (parse_num(fl[4], &r.y)) FAIL("%s:%ld: y '%s' is not a number", tracks_path, ln, fl[4]);
        for (int i = 5; i < nf; i++) {
            double v;
            if (fl[i][0] && parse_num(fl[i], &v)) FAIL("%s:%ld: column %d '%s' is not a number", tracks_path, ln, i + 1, fl[i]);
        }
        r.seq = name_id(&nm, fl[0]);
        if (r.seq < 0) FAIL("%s:%ld: out of memory", tracks_path, ln);
        if (r.tracker + 1 > K) K = r.tracker + 1;
        r.line = ln;
        if (push_rec(&rec, &nrec, &cap, r)) FAIL("%s:%ld: out of memory", tracks_path, ln);
    }
    if (ferror(f)) FAIL("%s: read error", tracks_path);
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
        while (fgets(line, sizeof line, f)) {
            ln++;
            if (!strchr(line, '\n') && !feof(f))
                FAIL("%s:%ld: line longer than %zu characters", truth_path, ln, sizeof line - 1);
            char *fl[8];
            line[strcspn(line, "\r\n")] = '\0';
            int nf = split_fields(line, fl, 8);
            if (ln == 1) {
                if (nf < 4 || strcmp(fl[0], "sequence") || strcmp(fl[1], "frame") ||
                    strcmp(fl[2], "x") || strcmp(fl[3], "y"))
                    FAIL("%s:1: the header must be sequence,frame,x,y", truth_path);
                continue;
            }
            if (line[0] == '\0') continue;
            rec_t r = {-1, 0, -1, 0, 0, ln};
            if (nf != 4) FAIL("%s:%ld: %d columns, expected 4 (sequence,frame,x,y)", truth_path, ln, nf);
            if (parse_int(fl[1], &r.frame)) FAIL("%s:%ld: frame '%s' is not a non-negative integer", truth_path, ln, fl[1]);
            if (parse_num(fl[2], &r.x)) FAIL("%s:%ld: x '%s' is not a number", truth_path, ln, fl[2]);
            if (parse_num(fl[3], &r.y)) FAIL("%s:%ld: y '%s' is not a number", truth_path, ln, fl[3]);
            for (int q = 0; q < nm.count; q++)
                if (!strncmp(nm.names[q], fl[0], 63)) r.seq = q;
            if (r.seq < 0) FAIL("%s:%ld: sequence '%s' has no tracks", truth_path, ln, fl[0]);
            if (push_rec(&rec, &nrec, &cap, r)) FAIL("%s:%ld: out of memory", truth_path, ln);
        }
        if (ferror(f)) FAIL("%s: read error", truth_path);
        fclose(f);
        f = NULL;
        if (ln == 0) FAIL("%s: empty file (expected a header and data)", truth_path);
    }
    maxframe = calloc((size_t)nm.count, sizeof(int));
    d->seq = calloc((size_t)nm.count, sizeof(tf_seq));
    if (!maxframe || !d->seq) FAIL("out of memory");
    for (long i = 0; i < nrec; i++)
        if (rec[i].frame > maxframe[rec[i].seq]) maxframe[rec[i].seq] = rec[i].frame;
    d->count = nm.count;
    d->K = K;
    for (int q = 0; q < nm.count; q++) {
        if (seq_alloc(&d->seq[q], maxframe[q] + 1, K)) FAIL("out of memory");
        snprintf(d->seq[q].name, sizeof d->seq[q].name, "%s", nm.names[q]);
    }
    for (long i = 0; i < ntracks; i++) {
        tf_seq *s = &d->seq[rec[i].seq];
        size_t j = (size_t)rec[i].frame * K + rec[i].tracker;
        if (s->m[j])
            FAIL("%s:%ld: a second report of tracker %d in frame %d of '%s'", tracks_path,
                 rec[i].line, rec[i].tracker, rec[i].frame, s->name);
        s->y[2 * j] = rec[i].x;
        s->y[2 * j + 1] = rec[i].y;
        s->m[j] = 1;
    }
    if (truth_path) {
        /* s->has_truth counts the frames seen until every one is */
        unsigned char *seen = NULL;
        for (int q = 0; q < d->count; q++) {
            tf_seq *s = &d->seq[q];
            free(seen);
            seen = calloc((size_t)s->T, 1);
            if (!seen) FAIL("out of memory");
            int have = 0;
            for (long i = ntracks; i < nrec; i++) {
                if (rec[i].seq != q) continue;
                if (seen[rec[i].frame]) {
                    free(seen);
                    FAIL("%s:%ld: a second truth line for frame %d of '%s'", truth_path,
                         rec[i].line, rec[i].frame, s->name);
                }
                seen[rec[i].frame] = 1;
                have++;
                s->truth[2 * rec[i].frame] = rec[i].x;
                s->truth[2 * rec[i].frame + 1] = rec[i].y;
            }
            if (have != s->T) {
                int t = 0;
                while (seen[t]) t++;
                free(seen);
                FAIL("%s: sequence '%s' lacks truth for frame %d (and %d more of frames 0..%d)",
                     truth_path, s->name, t, s->T - have - 1, s->T - 1);
            }
            s->has_truth = 1;
        }
        free(seen);
    }
    free(rec);
    free(nm.names);
    free(maxframe);
    return 0;
fail:
    if (f) fclose(f);
    free(rec);
    free(nm.names);
    free(maxframe);
    tf_data_free(d);
    return -1;
}

int tf_split(const tf_data *d, double frac, uint64_t seed, tf_data *train,
             tf_data *test) {
    int n = d->count;
    int nt = (int)floor(frac * n + 0.5);
    if (n >= 2 && nt < 1) nt = 1;
    if (nt >= n) nt = n - 1;
    int *idx = malloc(sizeof(int) * (size_t)n);
    train->seq = calloc((size_t)(n - nt > 0 ? n - nt : 1), sizeof(tf_seq));
    test->seq = calloc((size_t)(nt > 0 ? nt : 1), sizeof(tf_seq));
    if (!idx || !train->seq || !test->seq) {
        free(idx);
        return -1;
    }
    for (int i = 0; i < n; i++) idx[i] = i;
    uint64_t s = seed ^ 0xA5A5A5A5ULL;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(sm64(&s) % (uint64_t)(i + 1));
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
    test->count = nt;
    train->count = n - nt;
    test->K = train->K = d->K;
    for (int i = 0; i < nt; i++) test->seq[i] = d->seq[idx[i]];
    for (int i = nt; i < n; i++) train->seq[i - nt] = d->seq[idx[i]];
    free(idx);
    return 0;
}

void tf_split_free(tf_data *part) {
    free(part->seq);
    part->seq = NULL;
    part->count = 0;
}
