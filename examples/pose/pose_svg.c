/* Hand-written SVG figures of the pose example. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pose.h"

#define C_GT "#444444"
#define C_UNTRAINED "#d62728"
#define C_TRAINED "#1f77b4"

static const char *const PART_COLOR[5] = {"#555555", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};

/* 0 torso, 1 right leg, 2 left leg, 3 head, 4 arms */
static int part(int j) {
    if (j == 1 || j == 2 || j == 3) return 1;
    if (j == 4 || j == 5 || j == 6) return 2;
    if (j == 9 || j == 10) return 3;
    if (j >= 11) return 4;
    return 0;
}

static FILE *open_svg(const char *path, int w, int h) {
    FILE *f = fopen(path, "w");
    if (!f) return NULL;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", w, h, w, h);
    return f;
}

static int close_svg(FILE *f) {
    fprintf(f, "</svg>\n");
    int bad = ferror(f);
    return (fclose(f) != 0 || bad) ? -1 : 0;
}

/* pelvis-relative, unrotated by the ground-truth yaw: facing +x */
static void canonical_view(const double *J, double yaw, double *out) {
    double c = cos(-yaw), s = sin(-yaw);
    for (int j = 0; j < POSE_J; j++) {
        double d[3];
        for (int i = 0; i < 3; i++) d[i] = J[3 * j + i] - J[i];
        out[3 * j] = c * d[0] - s * d[1];
        out[3 * j + 1] = s * d[0] + c * d[1];
        out[3 * j + 2] = d[2];
    }
}

static void draw_skeleton(FILE *f, const double *P, int hx, double sgn, double ox,
                          double oy, double sc, const char *color, double width,
                          const char *dash) {
    for (int j = 1; j < POSE_J; j++) {
        int p = pose_parent[j];
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                   "stroke-width=\"%.1f\" stroke-linecap=\"round\"%s%s%s/>\n",
                ox + sgn * sc * P[3 * p + hx], oy - sc * P[3 * p + 2],
                ox + sgn * sc * P[3 * j + hx], oy - sc * P[3 * j + 2], color, width,
                dash ? " stroke-dasharray=\"" : "", dash ? dash : "", dash ? "\"" : "");
    }
    for (int j = 0; j < POSE_J; j++)
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"/>\n",
                ox + sgn * sc * P[3 * j + hx], oy - sc * P[3 * j + 2], width * 0.9, color);
}

int pose_svg_skeleton(const char *path, const pose_frame *fr, const double *untrained,
                      const double *trained) {
    FILE *f = open_svg(path, 820, 520);
    if (!f) return -1;
    double G[POSE_D], U[POSE_D], T[POSE_D];
    canonical_view(fr->gt, fr->yaw, G);
    canonical_view(untrained, fr->yaw, U);
    canonical_view(trained, fr->yaw, T);
    double eu = pose_mpjpe(untrained, fr->gt), et = pose_mpjpe(trained, fr->gt);
    fprintf(f, "<text x=\"410\" y=\"22\" text-anchor=\"middle\" font-size=\"16\">"
               "%s, sequence %d, frame %d: untrained %.1f mm, trained %.1f mm MPJPE</text>\n"
               "<text x=\"410\" y=\"38\" text-anchor=\"middle\" fill=\"#666666\">"
               "(the held-out frame that training improved most; pelvis-aligned, "
               "yaw removed)</text>\n", pose_subject_name(fr->subject), fr->sequence + 1,
            fr->index, eu, et);
    const char *title[2] = {"front (facing the viewer)", "side (facing right)"};
    for (int v = 0; v < 2; v++) {
        double ox = 210.0 + 400.0 * v, oy = 250.0, sc = 0.2;
        /* front: screen x = +y (the subject's left on the right); side: x */
        int hx = v == 0 ? 1 : 0;
        fprintf(f, "<rect x=\"%d\" y=\"46\" width=\"380\" height=\"434\" fill=\"none\" "
                   "stroke=\"#cccccc\"/>\n", 20 + 400 * v);
        fprintf(f, "<text x=\"%.0f\" y=\"64\" text-anchor=\"middle\">%s</text>\n", ox,
                title[v]);
        draw_skeleton(f, G, hx, 1.0, ox, oy, sc, C_GT, 5.0, NULL);
        draw_skeleton(f, U, hx, 1.0, ox, oy, sc, C_UNTRAINED, 2.5, "6 3");
        draw_skeleton(f, T, hx, 1.0, ox, oy, sc, C_TRAINED, 2.5, NULL);
    }
    const char *lab[3] = {"ground truth", "untrained", "trained"};
    const char *col[3] = {C_GT, C_UNTRAINED, C_TRAINED};
    for (int k = 0; k < 3; k++) {
        fprintf(f, "<line x1=\"%d\" y1=\"500\" x2=\"%d\" y2=\"500\" stroke=\"%s\" "
                   "stroke-width=\"4\"/>\n", 240 + 130 * k, 270 + 130 * k, col[k]);
        fprintf(f, "<text x=\"%d\" y=\"504\">%s</text>\n", 276 + 130 * k, lab[k]);
    }
    return close_svg(f);
}

int pose_svg_joint_error(const char *path, const double *untrained, const double *trained) {
    const int W = 900, H = 420, x0 = 60, y0 = 40, pw = 820, ph = 280;
    FILE *f = open_svg(path, W, H);
    if (!f) return -1;
    double top = 0.0;
    for (int j = 0; j < POSE_J; j++) {
        if (untrained[j] > top) top = untrained[j];
        if (trained[j] > top) top = trained[j];
    }
    double step = top > 100 ? 25.0 : top > 40 ? 10.0 : 5.0;
    top = step * ceil(top / step + 1e-9);
    if (top <= 0) top = step;
    fprintf(f, "<text x=\"%d\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">"
               "Held-out error per joint (mm, pelvis-aligned)</text>\n", W / 2);
    for (double v = 0; v <= top + 1e-9; v += step) {
        double y = y0 + ph - ph * v / top;
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>\n"
                   "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.0f</text>\n",
                x0, y, x0 + pw, y, x0 - 6, y + 4, v);
    }
    double slot = (double)pw / POSE_J, bw = slot * 0.36;
    for (int j = 0; j < POSE_J; j++) {
        double xs = x0 + slot * j + slot * 0.12;
        double hu = ph * untrained[j] / top, ht = ph * trained[j] / top;
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n",
                xs, y0 + ph - hu, bw, hu, C_UNTRAINED);
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n",
                xs + bw, y0 + ph - ht, bw, ht, C_TRAINED);
        double xl = xs + bw;
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"end\" transform=\"rotate(-45 "
                   "%.1f %d)\">%s</text>\n", xl, y0 + ph + 14, xl, y0 + ph + 14,
                pose_joint_name[j]);
    }
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", x0,
            y0 + ph, x0 + pw, y0 + ph);
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"14\" fill=\"%s\"/>"
               "<text x=\"%d\" y=\"%d\">untrained</text>\n", x0 + pw - 200, y0 + 4,
            C_UNTRAINED, x0 + pw - 180, y0 + 16);
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"14\" fill=\"%s\"/>"
               "<text x=\"%d\" y=\"%d\">trained</text>\n", x0 + pw - 100, y0 + 4,
            C_TRAINED, x0 + pw - 80, y0 + 16);
    return close_svg(f);
}

/* one line chart panel: series cols [c0, c1) of trace */
static void panel(FILE *f, const double *trace, int rows, int c0, int c1, int px, int py,
                  int pw, int ph, const char *title, int log_y) {
    double lo = INFINITY, hi = -INFINITY;
    for (int r = 0; r < rows; r++)
        for (int c = c0; c < c1; c++) {
            double v = trace[(size_t)r * POSE_P + c];
            if (log_y) v = log10(v);
            if (v < lo) lo = v;
            if (v > hi) hi = v;
        }
    if (!(hi > lo)) {
        hi = lo + 0.5;
        lo -= 0.5;
    }
    double pad = 0.05 * (hi - lo);
    lo -= pad;
    hi += pad;
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
               "stroke=\"#999999\"/>\n<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">"
               "%s</text>\n", px, py, pw, ph, px + pw / 2, py - 8, title);
    for (int k = 0; k <= 4; k++) {
        double v = lo + (hi - lo) * k / 4.0, y = py + ph - ph * k / 4.0;
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.2f</text>\n", px - 4,
                y + 4, log_y ? pow(10.0, v) : v);
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">training step (0 .. %d)"
               "</text>\n", px + pw / 2, py + ph + 18, rows - 1);
    double ly[POSE_P];
    int order[POSE_P], m = c1 - c0;
    for (int c = c0; c < c1; c++) {
        const char *col = c < POSE_J ? PART_COLOR[part(c)]
                                     : (c == POSE_W_PRIOR ? "#17becf" : "#e377c2");
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\" points=\"",
                col, c < POSE_J ? 1.2 : 2.5);
        for (int r = 0; r < rows; r++) {
            double v = trace[(size_t)r * POSE_P + c];
            if (log_y) v = log10(v);
            double x = px + (rows > 1 ? (double)pw * r / (rows - 1) : 0.0);
            double y = py + ph - ph * (v - lo) / (hi - lo);
            fprintf(f, "%.1f,%.1f ", x, y);
        }
        fprintf(f, "\"/>\n");
        double v = trace[(size_t)(rows - 1) * POSE_P + c];
        if (log_y) v = log10(v);
        ly[c - c0] = py + ph - ph * (v - lo) / (hi - lo) + 3;
        order[c - c0] = c;
    }
    /* labels at the line ends, sorted and pushed apart by 10 px */
    for (int a = 1; a < m; a++)
        for (int b = a; b > 0 && ly[order[b] - c0] < ly[order[b - 1] - c0]; b--) {
            int t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    double pos[POSE_P];
    for (int a = 0; a < m; a++) {
        pos[a] = ly[order[a] - c0];
        if (a > 0 && pos[a] < pos[a - 1] + 10) pos[a] = pos[a - 1] + 10;
    }
    if (pos[m - 1] > py + ph + 3) pos[m - 1] = py + ph + 3;
    for (int a = m - 2; a >= 0; a--)
        if (pos[a] > pos[a + 1] - 10) pos[a] = pos[a + 1] - 10;
    for (int a = 0; a < m; a++) {
        int c = order[a];
        const char *col = c < POSE_J ? PART_COLOR[part(c)]
                                     : (c == POSE_W_PRIOR ? "#17becf" : "#e377c2");
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" fill=\"%s\" font-size=\"10\">%s</text>\n",
                px + pw + 4, pos[a], col,
                c < POSE_J ? pose_joint_name[c] : c == POSE_W_PRIOR ? "kappa" : "h");
    }
}

int pose_svg_weights(const char *path, const double *trace, int rows) {
    FILE *f = open_svg(path, 980, 430);
    if (!f || rows < 1) {
        if (f) fclose(f);
        return -1;
    }
    fprintf(f, "<text x=\"490\" y=\"22\" text-anchor=\"middle\" font-size=\"16\">"
               "Learned parameters over training steps</text>\n");
    panel(f, trace, rows, 0, POSE_J, 60, 60, 440, 320, "per-joint reprojection weights w_j",
          0);
    panel(f, trace, rows, POSE_J, POSE_P, 640, 60, 240, 320,
          "prior weight kappa, robust width h (log)", 1);
    return close_svg(f);
}

int pose_svg_all(const char *dir, const pose_frame *frames, int count, const double *pred_u,
                 const double *pred_t, const double *trace, int rows, char *path,
                 size_t plen) {
    int best = 0, nu = 0, nt = 0;
    double gain = -INFINITY, ju[POSE_J] = {0}, jt[POSE_J] = {0}, e[POSE_J];
    for (int i = 0; i < count; i++) {
        const double *pu = pred_u + (size_t)i * POSE_D, *pt = pred_t + (size_t)i * POSE_D;
        if (isfinite(pu[0])) {
            pose_joint_errors(pu, frames[i].gt, e);
            for (int j = 0; j < POSE_J; j++) ju[j] += e[j];
            nu++;
        }
        if (isfinite(pt[0])) {
            pose_joint_errors(pt, frames[i].gt, e);
            for (int j = 0; j < POSE_J; j++) jt[j] += e[j];
            nt++;
        }
        if (!isfinite(pu[0]) || !isfinite(pt[0])) continue;
        double gi = pose_mpjpe(pu, frames[i].gt) - pose_mpjpe(pt, frames[i].gt);
        if (gi > gain) {
            gain = gi;
            best = i;
        }
    }
    for (int j = 0; j < POSE_J; j++) {
        ju[j] /= nu > 0 ? nu : 1;
        jt[j] /= nt > 0 ? nt : 1;
    }
    static const char *const NAMES[3] = {"pose_skeleton.svg", "pose_joint_error.svg",
                                         "pose_weights.svg"};
    for (int k = 0; k < 3; k++) {
        snprintf(path, plen, "%s/%s", dir, NAMES[k]);
        int bad = k == 0 ? pose_svg_skeleton(path, &frames[best], pred_u + (size_t)best * POSE_D,
                                             pred_t + (size_t)best * POSE_D)
                : k == 1 ? pose_svg_joint_error(path, ju, jt)
                         : pose_svg_weights(path, trace, rows);
        if (bad) return -1;
    }
    return 0;
}

int pose_svg_write(const char *dir, const pose_frame *frames, int count, const double *pred_u,
                   const double *pred_t, const double *trace, int rows) {
    char path[1024];
    if (pose_svg_all(dir, frames, count, pred_u, pred_t, trace, rows, path, sizeof path) != 0) {
        fprintf(stderr, "pose: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    printf("\nwrote %s/{pose_skeleton,pose_joint_error,pose_weights}.svg\n", dir);
    return 0;
}

int pose_report_written(int rc, const char *path) {
    if (rc != 0) fprintf(stderr, "pose: cannot write %s: %s\n", path, strerror(errno));
    else printf("wrote %s\n", path);
    return rc;
}
