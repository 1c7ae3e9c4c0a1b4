/* Real-format input: cameras, 2-D detections and optional 3-D truth as CSV
 * (the layout is documented in README.md, "Real data"), and a writer of the
 * same layout for the synthetic frames.
 *
 *   cameras.csv     camera,fx,fy,cx,cy,r11,r12,r13,r21,r22,r23,r31,r32,r33,Cx,Cy,Cz
 *   detections.csv  subject,action,frame,camera,joint,u,v,confidence
 *   truth.csv       subject,action,frame,joint,x,y,z
 *
 * R (r11 .. r33, row-major) turns world into camera coordinates, C is the
 * camera centre in the world (mm): Y = R (X - C), u = fx Y0/Y2 + cx,
 * v = fy Y1/Y2 + cy. The energy has one focal length per camera, f = fx;
 * v is rescaled on reading, v' = cy + (v - cy) fx / fy, which is exact for
 * the pinhole model (fy Y1/Y2 scaled by fx/fy is fx Y1/Y2). Every error
 * names file:line.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pose.h"

#define LINE_MAX_LEN 1024

static const char *const SUBJ[7] = {"S1", "S5", "S6", "S7", "S8", "S9", "S11"};

static int subject_index(const char *s) {
    for (int i = 0; i < 7; i++)
        if (!strcmp(s, SUBJ[i])) return i;
    return -1;
}

/* Splits line (modified) at commas into at most max fields; returns the
   count. Leading and trailing blanks of each field are dropped. */
static int split(char *line, char **f, int max) {
    int n = 0;
    char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        if (n < max) f[n] = p;
        n++;
        char *c = strchr(p, ',');
        char *end = c ? c : p + strlen(p);
        char *q = end;
        while (q > p && (q[-1] == ' ' || q[-1] == '\t' || q[-1] == '\r' || q[-1] == '\n')) q--;
        *q = 0;
        if (!c) break;
        p = c + 1;
    }
    return n;
}

static int num(const char *s, double *v) {
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return !(errno || end == s || *end || !isfinite(*v));
}

static int inum(const char *s, long lo, long hi, int *v) {
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || end == s || *end || x < lo || x > hi) return 0;
    *v = (int)x;
    return 1;
}

typedef struct {
    FILE *f;
    const char *path;
    int line;
    char buf[LINE_MAX_LEN];
} reader;

/* The next data line (skipping blank lines and '#' comments) split into
   fields; the first data line must be the header `header`. Returns the
   field count, 0 at the end, -1 on an error (msg). */
static int next_row(reader *r, char **f, int max, const char *header, char *msg, size_t len) {
    while (fgets(r->buf, sizeof r->buf, r->f)) {
        r->line++;
        size_t l = strlen(r->buf);
        if (l == sizeof r->buf - 1 && r->buf[l - 1] != '\n') {
            snprintf(msg, len, "%s:%d: line longer than %d characters", r->path, r->line,
                     LINE_MAX_LEN - 2);
            return -1;
        }
        char *p = r->buf;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '#' || *p == '\n' || *p == '\r' || *p == 0) continue;
        if (header) {
            char want[256];
            snprintf(want, sizeof want, "%s", header);
            char *hf[32], *wf[32];
            int nh = split(p, hf, 32), nw = split(want, wf, 32);
            int ok = nh == nw;
            for (int i = 0; ok && i < nh; i++) ok = !strcmp(hf[i], wf[i]);
            if (!ok) {
                snprintf(msg, len, "%s:%d: the header must be '%s'", r->path, r->line, header);
                return -1;
            }
            header = NULL;
            continue;
        }
        return split(p, f, max);
    }
    if (ferror(r->f)) {
        snprintf(msg, len, "%s:%d: read error", r->path, r->line);
        return -1;
    }
    if (header) {
        snprintf(msg, len, "%s: empty (no header '%s')", r->path, header);
        return -1;
    }
    return 0;
}

#define CAM_HEADER "camera,fx,fy,cx,cy,r11,r12,r13,r21,r22,r23,r31,r32,r33,Cx,Cy,Cz"
#define DET_HEADER "subject,action,frame,camera,joint,u,v,confidence"
#define TRUTH_HEADER "subject,action,frame,joint,x,y,z"

typedef struct {
    int subject, action, frame, camera, joint, line;
    double u, v, conf;
} det_row;

static int cmp_key(const det_row *a, const det_row *b) {
    if (a->subject != b->subject) return a->subject < b->subject ? -1 : 1;
    if (a->action != b->action) return a->action < b->action ? -1 : 1;
    if (a->frame != b->frame) return a->frame < b->frame ? -1 : 1;
    return 0;
}
static int cmp_det(const void *pa, const void *pb) {
    const det_row *a = pa, *b = pb;
    int c = cmp_key(a, b);
    if (c) return c;
    if (a->camera != b->camera) return a->camera < b->camera ? -1 : 1;
    if (a->joint != b->joint) return a->joint < b->joint ? -1 : 1;
    return (a->line > b->line) - (a->line < b->line);
}

static int action_index(pose_real *out, const char *name, const char *path, int line, char *msg,
                        size_t len) {
    for (int a = 0; a < out->nactions; a++)
        if (!strcmp(out->action_name[a], name)) return a;
    if (!name[0] || strlen(name) >= sizeof out->action_name[0]) {
        snprintf(msg, len, "%s:%d: the action name must have 1 to %d characters", path, line,
                 (int)sizeof out->action_name[0] - 1);
        return -1;
    }
    if (out->nactions >= POSE_REAL_ACTIONS) {
        snprintf(msg, len, "%s:%d: more than %d actions", path, line, POSE_REAL_ACTIONS);
        return -1;
    }
    snprintf(out->action_name[out->nactions], sizeof out->action_name[0], "%s", name);
    return out->nactions++;
}

static int read_cameras(const char *path, pose_real *out, double *fx_fy, char *msg, size_t len) {
    reader r = {fopen(path, "r"), path, 0, {0}};
    if (!r.f) {
        snprintf(msg, len, "%s: %s", path, strerror(errno));
        return -1;
    }
    int seen[POSE_C] = {0}, rc = 0;
    char *f[20];
    const char *hdr = CAM_HEADER;
    for (;;) {
        int n = next_row(&r, f, 20, hdr, msg, len);
        hdr = NULL;
        if (n == 0) break;
        if (n < 0) {
            rc = -1;
            break;
        }
        int c;
        double v[16];
        if (n != 17) {
            snprintf(msg, len, "%s:%d: expected 17 fields (%s), found %d", path, r.line,
                     CAM_HEADER, n);
            rc = -1;
            break;
        }
        if (!inum(f[0], 0, POSE_C - 1, &c)) {
            snprintf(msg, len, "%s:%d: camera '%s' must be 0 .. %d", path, r.line, f[0], POSE_C - 1);
            rc = -1;
            break;
        }
        int bad = -1;
        for (int i = 0; i < 16 && bad < 0; i++)
            if (!num(f[1 + i], &v[i])) bad = 1 + i;
        if (bad >= 0) {
            snprintf(msg, len, "%s:%d: field %d ('%s') is not a finite number", path, r.line,
                     bad + 1, f[bad]);
            rc = -1;
            break;
        }
        if (seen[c]) {
            snprintf(msg, len, "%s:%d: camera %d given twice", path, r.line, c);
            rc = -1;
            break;
        }
        if (!(v[0] > 0 && v[1] > 0)) {
            snprintf(msg, len, "%s:%d: focal lengths must be > 0", path, r.line);
            rc = -1;
            break;
        }
        /* R must be a rotation: R R' = I to 1e-6 */
        double err = 0.0;
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++) {
                double s = 0.0;
                for (int k = 0; k < 3; k++) s += v[4 + 3 * a + k] * v[4 + 3 * b + k];
                err = fmax(err, fabs(s - (a == b)));
            }
        if (err > 1e-6) {
            snprintf(msg, len, "%s:%d: r11 .. r33 is not a rotation (|R R' - I| = %.2g)", path,
                     r.line, err);
            rc = -1;
            break;
        }
        seen[c] = 1;
        pose_camera *cam = &out->cam[c];
        cam->f = v[0];
        cam->cx = v[2];
        cam->cy = v[3];
        fx_fy[c] = v[0] / v[1];
        memcpy(cam->R, v + 4, sizeof cam->R);
        memcpy(cam->C, v + 13, sizeof cam->C);
    }
    for (int c = 0; rc == 0 && c < POSE_C; c++)
        if (!seen[c]) {
            snprintf(msg, len, "%s: camera %d is missing (need 0 .. %d)", path, c, POSE_C - 1);
            rc = -1;
        }
    fclose(r.f);
    return rc;
}

/* canonical pose of the truth: pelvis at 0, the yaw that turns the
   right-to-left hip vector onto +y removed */
static void canonicalize(pose_frame *fr) {
    double dx = fr->gt[12] - fr->gt[3], dy = fr->gt[13] - fr->gt[4];
    double yaw = atan2(dy, dx) - 0.5 * POSE_PI;
    double c = cos(yaw), s = sin(yaw);
    fr->yaw = atan2(sin(yaw), cos(yaw));
    fr->scale = 1.0;
    for (int j = 0; j < POSE_J; j++) {
        double x = fr->gt[3 * j] - fr->gt[0], y = fr->gt[3 * j + 1] - fr->gt[1];
        fr->canon[3 * j] = c * x + s * y;
        fr->canon[3 * j + 1] = -s * x + c * y;
        fr->canon[3 * j + 2] = fr->gt[3 * j + 2] - fr->gt[2];
    }
}

int pose_read_csv(const char *cameras, const char *detections, const char *truth,
                  double min_conf, pose_real *out, char *msg, size_t len) {
    memset(out, 0, sizeof *out);
    if (!cameras || !detections || !(min_conf >= 0 && min_conf <= 1)) {
        snprintf(msg, len, "pose_read_csv: need the cameras and detections paths and "
                 "0 <= min_conf <= 1");
        return -1;
    }
    double fx_fy[POSE_C];
    if (read_cameras(cameras, out, fx_fy, msg, len) != 0) return -1;
    reader r = {fopen(detections, "r"), detections, 0, {0}};
    if (!r.f) {
        snprintf(msg, len, "%s: %s", detections, strerror(errno));
        return -1;
    }
    det_row *rows = NULL;
    size_t nr = 0, cap = 0;
    int rc = 0;
    char *f[12];
    const char *hdr = DET_HEADER;
    for (;;) {
        int n = next_row(&r, f, 12, hdr, msg, len);
        hdr = NULL;
        if (n == 0) break;
        if (n < 0 || n != 8) {
            if (n > 0)
                snprintf(msg, len, "%s:%d: expected 8 fields (%s), found %d", detections, r.line,
                         DET_HEADER, n);
            rc = -1;
            break;
        }
        det_row d;
        d.line = r.line;
        d.subject = subject_index(f[0]);
        const char *bad = NULL;
        if (d.subject < 0) bad = "subject must be one of S1 S5 S6 S7 S8 S9 S11";
        else if (!inum(f[2], 0, 100000000, &d.frame)) bad = "frame must be an integer >= 0";
        else if (!inum(f[3], 0, POSE_C - 1, &d.camera)) bad = "camera must be 0 .. 3";
        else if (!inum(f[4], 0, POSE_J - 1, &d.joint)) bad = "joint must be 0 .. 16";
        else if (!num(f[5], &d.u) || !num(f[6], &d.v) || !num(f[7], &d.conf))
            bad = "u, v and confidence must be finite numbers";
        else if (d.conf < 0 || d.conf > 1) bad = "confidence must be in [0, 1]";
        if (bad) {
            snprintf(msg, len, "%s:%d: %s", detections, r.line, bad);
            rc = -1;
            break;
        }
        d.action = action_index(out, f[1], detections, r.line, msg, len);
        if (d.action < 0) {
            rc = -1;
            break;
        }
        if (nr == cap) {
            size_t nc = cap ? 2 * cap : 1024;
            det_row *nrw = realloc(rows, nc * sizeof *rows);
            if (!nrw) {
                snprintf(msg, len, "%s:%d: out of memory", detections, r.line);
                rc = -1;
                break;
            }
            rows = nrw;
            cap = nc;
        }
        rows[nr++] = d;
    }
    fclose(r.f);
    if (rc == 0 && nr == 0) {
        snprintf(msg, len, "%s: no detections", detections);
        rc = -1;
    }
    if (rc != 0) {
        free(rows);
        return -1;
    }
    qsort(rows, nr, sizeof *rows, cmp_det);
    size_t nf = 0;
    for (size_t i = 0; i < nr; i++) {
        if (i > 0 && cmp_key(&rows[i], &rows[i - 1]) == 0 && rows[i].camera == rows[i - 1].camera &&
            rows[i].joint == rows[i - 1].joint) {
            snprintf(msg, len, "%s:%d: camera %d, joint %d of %s %s frame %d already given on "
                     "line %d", detections, rows[i].line, rows[i].camera, rows[i].joint,
                     SUBJ[rows[i].subject], out->action_name[rows[i].action], rows[i].frame,
                     rows[i - 1].line);
            free(rows);
            return -1;
        }
        nf += i == 0 || cmp_key(&rows[i], &rows[i - 1]) != 0;
    }
    out->frames = calloc(nf, sizeof(pose_frame));
    if (!out->frames) {
        free(rows);
        snprintf(msg, len, "out of memory");
        return -1;
    }
    out->count = (int)nf;
    int k = -1;
    for (size_t i = 0; i < nr; i++) {
        if (i == 0 || cmp_key(&rows[i], &rows[i - 1]) != 0) {
            k++;
            pose_frame *fr = &out->frames[k];
            fr->subject = rows[i].subject;
            fr->action = rows[i].action;
            fr->index = rows[i].frame;
            for (int j = 0; j < POSE_D; j++) fr->gt[j] = NAN;
        }
        pose_frame *fr = &out->frames[k];
        const det_row *d = &rows[i];
        const pose_camera *cam = &out->cam[d->camera];
        fr->uv[d->camera][d->joint][0] = d->u;
        fr->uv[d->camera][d->joint][1] = cam->cy + (d->v - cam->cy) * fx_fy[d->camera];
        fr->vis[d->camera][d->joint] = d->conf >= min_conf;
    }
    free(rows);
    if (!truth) return 0;

    /* the truth: every frame it names must have detections and all 17
       joints once */
    reader t = {fopen(truth, "r"), truth, 0, {0}};
    if (!t.f) {
        snprintf(msg, len, "%s: %s", truth, strerror(errno));
        pose_real_free(out);
        return -1;
    }
    int *have = calloc((size_t)nf, sizeof(int)); /* bit j: joint j given */
    int *first_line = calloc((size_t)nf, sizeof(int));
    if (!have || !first_line) {
        snprintf(msg, len, "out of memory");
        rc = -1;
    }
    hdr = TRUTH_HEADER;
    while (rc == 0) {
        int n = next_row(&t, f, 12, hdr, msg, len);
        hdr = NULL;
        if (n == 0) break;
        if (n < 0 || n != 7) {
            if (n > 0)
                snprintf(msg, len, "%s:%d: expected 7 fields (%s), found %d", truth, t.line,
                         TRUTH_HEADER, n);
            rc = -1;
            break;
        }
        det_row key = {0};
        int joint;
        double X[3];
        key.subject = subject_index(f[0]);
        const char *bad = NULL;
        if (key.subject < 0) bad = "subject must be one of S1 S5 S6 S7 S8 S9 S11";
        else if (!inum(f[2], 0, 100000000, &key.frame)) bad = "frame must be an integer >= 0";
        else if (!inum(f[3], 0, POSE_J - 1, &joint)) bad = "joint must be 0 .. 16";
        else if (!num(f[4], &X[0]) || !num(f[5], &X[1]) || !num(f[6], &X[2]))
            bad = "x, y and z must be finite numbers";
        if (bad) {
            snprintf(msg, len, "%s:%d: %s", truth, t.line, bad);
            rc = -1;
            break;
        }
        key.action = -1;
        for (int a = 0; a < out->nactions; a++)
            if (!strcmp(out->action_name[a], f[1])) key.action = a;
        /* binary search of the frame (frames are sorted by key) */
        int lo = 0, hi = out->count - 1, at = -1;
        while (key.action >= 0 && lo <= hi) {
            int mid = (lo + hi) / 2;
            det_row m = {out->frames[mid].subject, out->frames[mid].action,
                         out->frames[mid].index, 0, 0, 0, 0, 0, 0};
            int c = cmp_key(&key, &m);
            if (c == 0) {
                at = mid;
                break;
            }
            if (c < 0) hi = mid - 1;
            else lo = mid + 1;
        }
        if (at < 0) {
            snprintf(msg, len, "%s:%d: %s %s frame %s has no detections", truth, t.line, f[0],
                     f[1], f[2]);
            rc = -1;
            break;
        }
        if (have[at] & (1 << joint)) {
            snprintf(msg, len, "%s:%d: joint %d of %s %s frame %s already given on line %d",
                     truth, t.line, joint, f[0], f[1], f[2], first_line[at]);
            rc = -1;
            break;
        }
        if (!first_line[at]) first_line[at] = t.line;
        have[at] |= 1 << joint;
        memcpy(out->frames[at].gt + 3 * joint, X, sizeof X);
    }
    fclose(t.f);
    int with = 0;
    for (int i = 0; rc == 0 && i < out->count; i++) {
        if (!have[i]) continue;
        if (have[i] != (1 << POSE_J) - 1) {
            int j = 0;
            while (have[i] & (1 << j)) j++;
            snprintf(msg, len, "%s:%d: %s %s frame %d lacks joint %d (%s)", truth, first_line[i],
                     SUBJ[out->frames[i].subject], out->action_name[out->frames[i].action],
                     out->frames[i].index, j, pose_joint_name[j]);
            rc = -1;
            break;
        }
        canonicalize(&out->frames[i]);
        with++;
    }
    free(have);
    free(first_line);
    if (rc != 0) {
        pose_real_free(out);
        return -1;
    }
    out->with_truth = with;
    return 0;
}

void pose_real_free(pose_real *r) {
    if (!r) return;
    free(r->frames);
    r->frames = NULL;
    r->count = 0;
}

int pose_write_csv(const char *cameras, const char *detections, const char *truth,
                   const pose_camera *cam, const pose_frame *frames, int count,
                   const char *const *action_names) {
    FILE *f = fopen(cameras, "w");
    if (!f) return -1;
    fprintf(f, "%s\n", CAM_HEADER);
    for (int c = 0; c < POSE_C; c++) {
        fprintf(f, "%d,%.17g,%.17g,%.17g,%.17g", c, cam[c].f, cam[c].f, cam[c].cx, cam[c].cy);
        for (int i = 0; i < 9; i++) fprintf(f, ",%.17g", cam[c].R[i]);
        for (int i = 0; i < 3; i++) fprintf(f, ",%.17g", cam[c].C[i]);
        fprintf(f, "\n");
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return -1;
    f = fopen(detections, "w");
    if (!f) return -1;
    fprintf(f, "%s\n", DET_HEADER);
    for (int i = 0; i < count; i++)
        for (int c = 0; c < POSE_C; c++)
            for (int j = 0; j < POSE_J; j++)
                fprintf(f, "%s,%s,%d,%d,%d,%.17g,%.17g,%g\n", SUBJ[frames[i].subject],
                        action_names[frames[i].action], frames[i].sequence * 100000 +
                        frames[i].index, c, j, frames[i].uv[c][j][0], frames[i].uv[c][j][1],
                        frames[i].vis[c][j] ? 0.9 : 0.0);
    bad = ferror(f);
    if (fclose(f) != 0 || bad) return -1;
    if (!truth) return 0;
    f = fopen(truth, "w");
    if (!f) return -1;
    fprintf(f, "%s\n", TRUTH_HEADER);
    for (int i = 0; i < count; i++)
        for (int j = 0; j < POSE_J; j++)
            fprintf(f, "%s,%s,%d,%d,%.17g,%.17g,%.17g\n", SUBJ[frames[i].subject],
                    action_names[frames[i].action], frames[i].sequence * 100000 + frames[i].index,
                    j, frames[i].gt[3 * j], frames[i].gt[3 * j + 1], frames[i].gt[3 * j + 2]);
    bad = ferror(f);
    return (fclose(f) != 0 || bad) ? -1 : 0;
}
