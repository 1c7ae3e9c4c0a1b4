/* The synthetic world: cameras, the generic PPCA shape model, subjects and
 * their sequences of observed frames. Everything is a function of the seed;
 * each subject draws from its own random stream, so the held-out subjects do
 * not change when the training set is resized. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pose.h"

static const char *const SUBJECTS[7] = {"S1", "S5", "S6", "S7", "S8", "S9", "S11"};

const char *pose_subject_name(int s) {
    return s >= 0 && s < 7 ? SUBJECTS[s] : "S?";
}

void pose_config_default(pose_config *c) {
    c->seed = 1;
    c->basis = 25;
    c->population = 3000;
    c->train_subjects = 5;
    c->test_subjects = 2;
    c->actions = POSE_ACTIONS;
    c->cameras = POSE_C;
    c->sequences = 1;
    c->frames = 8;
    c->mix_components = 3;
    c->mix_basis = 6;
    c->noise_min_px = 2.0;
    c->noise_max_px = 5.0;
    c->outlier_rate = 0.07;
    c->missing_rate = 0.05;
    c->bone_sd = 0.04;
    c->height_spread = 0.05;
}

double pose_project(const pose_camera *c, const double *X, double *u) {
    double Y[3];
    for (int i = 0; i < 3; i++)
        Y[i] = c->R[3 * i] * (X[0] - c->C[0]) + c->R[3 * i + 1] * (X[1] - c->C[1]) +
               c->R[3 * i + 2] * (X[2] - c->C[2]);
    u[0] = c->f * Y[0] / Y[2] + c->cx;
    u[1] = c->f * Y[1] / Y[2] + c->cy;
    return Y[2];
}

/* Camera at azimuth az, 4.5 m from the centre of the capture volume (the
   world origin), 1.6 m high, looking at a point 1 m above the floor's
   centre. Rows of R: right, down, forward. */
static void make_camera(double az, pose_camera *c) {
    double C[3] = {4500.0 * cos(az), 4500.0 * sin(az), 1600.0};
    double T[3] = {0.0, 0.0, 1000.0}, f[3], r[3], d[3];
    double n = 0.0;
    for (int i = 0; i < 3; i++) {
        f[i] = T[i] - C[i];
        n += f[i] * f[i];
    }
    n = sqrt(n);
    for (int i = 0; i < 3; i++) f[i] /= n;
    /* right = forward x up, down = forward x right */
    r[0] = f[1];
    r[1] = -f[0];
    r[2] = 0.0;
    n = sqrt(r[0] * r[0] + r[1] * r[1]);
    r[0] /= n;
    r[1] /= n;
    d[0] = f[1] * r[2] - f[2] * r[1];
    d[1] = f[2] * r[0] - f[0] * r[2];
    d[2] = f[0] * r[1] - f[1] * r[0];
    for (int i = 0; i < 3; i++) {
        c->R[i] = r[i];
        c->R[3 + i] = d[i];
        c->R[6 + i] = f[i];
        c->C[i] = C[i];
    }
    c->f = 1150.0;
    c->cx = 500.0;
    c->cy = 500.0;
}

static uint64_t stream(unsigned long long seed, uint64_t k) {
    uint64_t s = (uint64_t)seed * 0x9E3779B97F4A7C15ULL + k * 0xD1B54A32D192ED03ULL;
    pose_rand(&s);
    return s;
}

/* joint class: 0 torso, 1 head and shoulders, 2 knees and elbows,
   3 ankles and wrists */
static int joint_class(int j) {
    switch (j) {
    case 0: case 1: case 4: case 7: case 8: return 0;
    case 9: case 10: case 11: case 14: return 1;
    case 2: case 5: case 12: case 15: return 2;
    default: return 3;
    }
}

/* One sequence of subject `subject` performing `action`: every frame is a
   draw of the kinematic model of the action with the subject's bone lengths
   (times a per-frame scale), at a yaw and a position that drift from frame
   to frame. */
static void make_sequence(const pose_data *d, uint64_t *rng, const double *bone,
                          double height, int subject, int action, int seq, pose_frame *out) {
    const pose_config *c = &d->cfg;
    double yaw = POSE_PI * (2.0 * pose_rand(rng) - 1.0);
    double T[3] = {1200.0 * pose_rand(rng) - 600.0, 1200.0 * pose_rand(rng) - 600.0, 0.0};
    for (int t = 0; t < c->frames; t++) {
        pose_frame *f = &out[t];
        memset(f, 0, sizeof *f);
        if (t > 0) {
            yaw += 0.3 * pose_randn(rng);
            for (int i = 0; i < 2; i++) {
                T[i] += 100.0 * pose_randn(rng);
                if (T[i] > 800.0) T[i] = 800.0;
                if (T[i] < -800.0) T[i] = -800.0;
            }
        }
        f->scale = height * (1.0 + 0.02 * pose_randn(rng));
        double b[POSE_J];
        for (int j = 0; j < POSE_J; j++) b[j] = f->scale * bone[j];
        pose_kinematic_action(rng, b, action, f->canon);
        /* the pelvis at 950 mm when standing; lower when sitting (the
           feet on the floor: the lowest ankle at 80 mm) */
        double low = INFINITY;
        for (int j = 0; j < POSE_J; j++)
            if (f->canon[3 * j + 2] < low) low = f->canon[3 * j + 2];
        T[2] = 80.0 - low;
        f->yaw = atan2(sin(yaw), cos(yaw));
        double cy = cos(f->yaw), sy = sin(f->yaw);
        for (int j = 0; j < POSE_J; j++) {
            const double *p = f->canon + 3 * j;
            f->gt[3 * j] = cy * p[0] - sy * p[1] + T[0];
            f->gt[3 * j + 1] = sy * p[0] + cy * p[1] + T[1];
            f->gt[3 * j + 2] = p[2] + T[2];
        }
        for (int cam = 0; cam < POSE_C; cam++)
            for (int j = 0; j < POSE_J; j++) {
                double u[2];
                pose_project(&d->cam[cam], f->gt + 3 * j, u);
                f->vis[cam][j] = pose_rand(rng) >= c->missing_rate && cam < c->cameras;
                if (pose_rand(rng) < d->outlier_p[j]) {
                    /* a gross outlier: 30 .. 150 px off in any direction */
                    double rad = 30.0 + 120.0 * pose_rand(rng);
                    double ang = 2.0 * POSE_PI * pose_rand(rng);
                    u[0] += rad * cos(ang);
                    u[1] += rad * sin(ang);
                    f->outlier[cam][j] = 1;
                } else {
                    u[0] += d->noise_px[j] * pose_randn(rng);
                    u[1] += d->noise_px[j] * pose_randn(rng);
                }
                f->uv[cam][j][0] = u[0];
                f->uv[cam][j][1] = u[1];
            }
        f->subject = subject;
        f->sequence = seq;
        f->index = t;
        f->action = action;
    }
}

int pose_data_create(pose_data *d, const pose_config *cfg, char *msg, size_t len) {
    memset(d, 0, sizeof *d);
    d->cfg = *cfg;
    const pose_config *c = &d->cfg;
    const char *bad = NULL;
    if (c->basis < 1 || c->basis > POSE_KMAX) bad = "basis must be in 1 .. 25";
    else if (c->population < 2 * POSE_D) bad = "population must be >= 102";
    else if (c->train_subjects < 1 || c->train_subjects > 5) bad = "train subjects must be in 1 .. 5";
    else if (c->test_subjects < 1 || c->test_subjects > 2) bad = "test subjects must be in 1 .. 2";
    else if (c->sequences < 1 || c->frames < 1) bad = "sequences and frames must be >= 1";
    else if (c->cameras < 1 || c->cameras > POSE_C) bad = "cameras must be in 1 .. 4";
    else if (c->actions < 1 || c->actions > POSE_ACTIONS) bad = "actions must be in 1 .. 4";
    else if (c->mix_components < 1 || c->mix_components > POSE_GMAX)
        bad = "mixture components must be in 1 .. 6";
    else if (c->mix_basis < 1 || c->mix_basis > POSE_MKMAX)
        bad = "mixture bases must be in 1 .. 25";
    else if (!(c->noise_min_px >= 0 && c->noise_max_px >= c->noise_min_px))
        bad = "need 0 <= noise min <= noise max";
    else if (!(c->outlier_rate >= 0 && c->outlier_rate <= 0.5)) bad = "outlier rate must be in [0, 0.5]";
    else if (!(c->missing_rate >= 0 && c->missing_rate <= 0.5)) bad = "missing rate must be in [0, 0.5]";
    else if (!(c->bone_sd >= 0 && c->bone_sd <= 0.5)) bad = "bone sd must be in [0, 0.5]";
    else if (!(c->height_spread >= 0 && c->height_spread <= 0.5)) bad = "height spread must be in [0, 0.5]";
    if (bad) {
        snprintf(msg, len, "%s", bad);
        return -1;
    }
    for (int k = 0; k < POSE_C; k++) make_camera(POSE_PI / 4 + k * POSE_PI / 2, &d->cam[k]);
    /* per-joint 2-D noise and outlier rates: extremities are the worst */
    static const double OUT_REL[4] = {0.5, 0.9, 1.1, 1.8};
    double osum = 0.0;
    for (int j = 0; j < POSE_J; j++) {
        int k = joint_class(j);
        d->noise_px[j] = c->noise_min_px + (c->noise_max_px - c->noise_min_px) * k / 3.0;
        osum += OUT_REL[k];
    }
    for (int j = 0; j < POSE_J; j++)
        d->outlier_p[j] = c->outlier_rate * OUT_REL[joint_class(j)] * POSE_J / osum;

    /* the generic shape model: PPCA of kinematic poses of varying size */
    double *pop = malloc((size_t)c->population * POSE_D * sizeof(double));
    if (!pop) {
        snprintf(msg, len, "out of memory");
        return -1;
    }
    uint64_t rng = stream(c->seed, 1000);
    for (int i = 0; i < c->population; i++) {
        double bone[POSE_J];
        double size = 1.0 + 0.05 * pose_randn(&rng);
        for (int j = 0; j < POSE_J; j++) bone[j] = size * pose_bone_mm[j];
        pose_kinematic_sample(&rng, bone, pop + (size_t)i * POSE_D);
    }
    int rc = pose_pca_fit(pop, c->population, c->basis, &d->model);
    if (rc != 0) {
        free(pop);
        snprintf(msg, len, "PCA fit failed");
        return -1;
    }
    rc = pose_mix_fit(pop, c->population, c->mix_components, c->mix_basis, c->seed, &d->mix,
                      msg, len);
    free(pop);
    if (rc != 0) return -1;

    int per = c->actions * c->sequences * c->frames;
    d->ntrain = c->train_subjects * per;
    d->ntest = c->test_subjects * per;
    d->train = calloc((size_t)d->ntrain, sizeof(pose_frame));
    d->test = calloc((size_t)d->ntest, sizeof(pose_frame));
    if (!d->train || !d->test) {
        pose_data_free(d);
        snprintf(msg, len, "out of memory");
        return -1;
    }
    for (int s = 0; s < c->train_subjects + c->test_subjects; s++) {
        int id = s < c->train_subjects ? s : 5 + (s - c->train_subjects);
        /* subject: a height and its own (left/right symmetric) proportions */
        uint64_t r = stream(c->seed, 1 + (uint64_t)id);
        double height = 1.0 + c->height_spread * (2.0 * pose_rand(&r) - 1.0);
        double bone[POSE_J];
        bone[0] = 0.0;
        for (int j = 1; j < POSE_J; j++) {
            static const int MIRROR[POSE_J] = {0, 0, 0, 0, 1, 2, 3, 0, 0,
                                               0, 0, 0, 0, 0, 11, 12, 13};
            bone[j] = MIRROR[j] ? bone[MIRROR[j]] / pose_bone_mm[MIRROR[j]] * pose_bone_mm[j]
                                : pose_bone_mm[j] * exp(c->bone_sd * pose_randn(&r));
        }
        pose_frame *dst = s < c->train_subjects ? d->train + (size_t)s * per
                                                : d->test + (size_t)(s - c->train_subjects) * per;
        for (int a = 0; a < c->actions; a++)
            for (int q = 0; q < c->sequences; q++)
                make_sequence(d, &r, bone, height, id, a, q,
                              dst + ((size_t)a * c->sequences + q) * c->frames);
    }
    return 0;
}

void pose_data_rates(const pose_data *d, double *missing, double *outliers) {
    long miss = 0, outl = 0, tot = 0;
    for (int i = 0; i < d->ntrain + d->ntest; i++) {
        const pose_frame *f = i < d->ntrain ? &d->train[i] : &d->test[i - d->ntrain];
        for (int c = 0; c < POSE_C; c++)
            for (int j = 0; j < POSE_J; j++) {
                tot++;
                miss += !f->vis[c][j];
                outl += f->vis[c][j] && f->outlier[c][j];
            }
    }
    *missing = tot ? (double)miss / tot : 0.0;
    *outliers = tot > miss ? (double)outl / (tot - miss) : 0.0;
}

void pose_data_free(pose_data *d) {
    if (!d) return;
    free(d->train);
    free(d->test);
    d->train = d->test = NULL;
}
