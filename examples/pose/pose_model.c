/* The skeleton, the kinematic model that generates poses, the PPCA fit
 * (cyclic Jacobi eigen-decomposition) and the error metrics. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pose.h"

/* Human3.6M's 17 joints; parents come before children. */
const int pose_parent[POSE_J] = {-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15};
const char *const pose_joint_name[POSE_J] = {
    "pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle",
    "spine", "thorax", "neck", "head", "l_shoulder", "l_elbow", "l_wrist",
    "r_shoulder", "r_elbow", "r_wrist"};
const double pose_bone_mm[POSE_J] = {0,   132, 442, 454, 132, 442, 454, 233, 257,
                                     121, 115, 151, 278, 251, 151, 278, 251};

double pose_rand(uint64_t *st) {
    uint64_t z = (*st += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

double pose_randn(uint64_t *st) {
    /* Box-Muller, one of the pair */
    double u = pose_rand(st), v = pose_rand(st);
    return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * POSE_PI * v);
}

/* ---- kinematics ------------------------------------------------------------ */

/* out = R v with R row-major */
static void mv3(const double *R, const double *v, double *out) {
    for (int i = 0; i < 3; i++)
        out[i] = R[3 * i] * v[0] + R[3 * i + 1] * v[1] + R[3 * i + 2] * v[2];
}
static void mm3(const double *A, const double *B, double *C) {
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            C[3 * i + j] = A[3 * i] * B[j] + A[3 * i + 1] * B[3 + j] +
                           A[3 * i + 2] * B[6 + j];
}
static void rot_x(double a, double *R) {
    double c = cos(a), s = sin(a);
    double M[9] = {1, 0, 0, 0, c, -s, 0, s, c};
    memcpy(R, M, sizeof M);
}
/* R_y(a) turns +z towards +x */
static void rot_y(double a, double *R) {
    double c = cos(a), s = sin(a);
    double M[9] = {c, 0, s, 0, 1, 0, -s, 0, c};
    memcpy(R, M, sizeof M);
}
static void rot_z(double a, double *R) {
    double c = cos(a), s = sin(a);
    double M[9] = {c, -s, 0, s, c, 0, 0, 0, 1};
    memcpy(R, M, sizeof M);
}
/* direction = Base * R_x(abd) * R_y(ang) * v */
static void limb_dir(const double *Base, double abd, double ang, const double *v,
                     double *d) {
    double Rx[9], Ry[9], T[9], U[9];
    rot_x(abd, Rx);
    rot_y(ang, Ry);
    mm3(Rx, Ry, T);
    mm3(Base, T, U);
    mv3(U, v, d);
}
static void put_joint(double *pose, int j, int parent, const double *dir, double len) {
    double n = sqrt(dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2]);
    for (int i = 0; i < 3; i++) pose[3 * j + i] = pose[3 * parent + i] + len * dir[i] / n;
}

/* Canonical frame: x forward, y left, z up, pelvis at the origin. A gait
   phase couples the legs (anti-phase) and the arms (opposite to the legs);
   some poses crouch, some raise an arm. */
const char *const pose_action_name[POSE_ACTIONS] = {"Walking", "Sitting", "Greeting",
                                                    "Phoning"};

void pose_kinematic_sample(uint64_t *rng, const double *bone, double *pose) {
    pose_kinematic_action(rng, bone, -1, pose);
}

void pose_kinematic_action(uint64_t *rng, const double *bone, int action, double *pose) {
    double g = pose_randn(rng);
    double crouch = pose_rand(rng) < 0.3 ? pose_rand(rng) : 0.0;
    double hip_r = 0.35 * g + 0.15 * pose_randn(rng) + 1.2 * crouch;
    double hip_l = -0.35 * g + 0.15 * pose_randn(rng) + 1.2 * crouch;
    double knee_r = fabs(0.3 + 0.3 * pose_randn(rng)) + 2.0 * crouch;
    double knee_l = fabs(0.3 + 0.3 * pose_randn(rng)) + 2.0 * crouch;
    double abd_r = 0.06 + 0.06 * pose_randn(rng), abd_l = 0.06 + 0.06 * pose_randn(rng);
    double lean = 0.05 + 0.12 * pose_randn(rng) + 0.5 * crouch;
    double side = 0.06 * pose_randn(rng), twist = 0.15 * pose_randn(rng);
    double neck = 0.1 * pose_randn(rng), head = 0.15 * pose_randn(rng);
    double sh_r = -0.4 * g + 0.4 * pose_randn(rng), sh_l = 0.4 * g + 0.4 * pose_randn(rng);
    double sa_r = 0.25 + 0.25 * fabs(pose_randn(rng));
    double sa_l = 0.25 + 0.25 * fabs(pose_randn(rng));
    double el_r = fabs(0.4 + 0.5 * pose_randn(rng)), el_l = fabs(0.4 + 0.5 * pose_randn(rng));
    double raise = pose_rand(rng);
    if (raise < 0.08) sh_r = 1.0 + 1.8 * pose_rand(rng);
    else if (raise < 0.16) sh_l = 1.0 + 1.8 * pose_rand(rng);
    /* an action re-draws the angles it is about (extra draws; the generic
       model's stream is unchanged) */
    if (action == 0) { /* Walking: a wide gait, upright, arms swinging */
        double gw = 1.4 * (g > 0 ? 0.6 + 0.4 * g : -0.6 + 0.4 * g);
        hip_r = 0.35 * gw + 0.1 * pose_randn(rng);
        hip_l = -0.35 * gw + 0.1 * pose_randn(rng);
        knee_r = fabs(0.5 + 0.3 * gw + 0.2 * pose_randn(rng));
        knee_l = fabs(0.5 - 0.3 * gw + 0.2 * pose_randn(rng));
        sh_r = -0.5 * gw + 0.15 * pose_randn(rng);
        sh_l = 0.5 * gw + 0.15 * pose_randn(rng);
        lean = 0.08 + 0.05 * pose_randn(rng);
    } else if (action == 1) { /* Sitting: hips and knees flexed near 90 deg,
                                 leaning forward, hands on the lap */
        double c = 0.75 + 0.25 * pose_rand(rng);
        hip_r = 1.35 * c + 0.12 * pose_randn(rng);
        hip_l = 1.35 * c + 0.12 * pose_randn(rng);
        knee_r = 1.5 * c + 0.15 * pose_randn(rng);
        knee_l = 1.5 * c + 0.15 * pose_randn(rng);
        lean = 0.25 + 0.15 * pose_randn(rng);
        sh_r = 0.3 + 0.2 * pose_randn(rng);
        sh_l = 0.3 + 0.2 * pose_randn(rng);
        el_r = 1.1 + 0.25 * pose_randn(rng);
        el_l = 1.1 + 0.25 * pose_randn(rng);
    } else if (action == 2) { /* Greeting: standing, one arm raised and
                                 waving */
        double up = 2.0 + 0.5 * pose_rand(rng), bend = fabs(0.3 + 0.4 * pose_randn(rng));
        if (pose_rand(rng) < 0.5) {
            sh_r = up;
            el_r = bend;
            sa_r = 0.4 + 0.3 * pose_rand(rng);
        } else {
            sh_l = up;
            el_l = bend;
            sa_l = 0.4 + 0.3 * pose_rand(rng);
        }
        hip_r = 0.15 * pose_randn(rng);
        hip_l = 0.15 * pose_randn(rng);
        knee_r = fabs(0.15 + 0.1 * pose_randn(rng));
        knee_l = fabs(0.15 + 0.1 * pose_randn(rng));
    } else if (action == 3) { /* Phoning: standing, one hand at the ear
                                 (elbow flexed about 140 deg), head tilted */
        double fl = 0.5 + 0.2 * pose_randn(rng), el = 2.3 + 0.15 * pose_randn(rng);
        if (pose_rand(rng) < 0.7) {
            sh_r = fl;
            el_r = el;
            sa_r = 0.5 + 0.2 * pose_rand(rng);
        } else {
            sh_l = fl;
            el_l = el;
            sa_l = 0.5 + 0.2 * pose_rand(rng);
        }
        head = 0.3 + 0.1 * pose_randn(rng);
        hip_r = 0.1 * pose_randn(rng);
        hip_l = 0.1 * pose_randn(rng);
        knee_r = fabs(0.1 + 0.1 * pose_randn(rng));
        knee_l = fabs(0.1 + 0.1 * pose_randn(rng));
    }

    double I[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1}, Rz[9], Rx[9], Ry[9], T[9], Rt[9];
    rot_z(twist, Rz);
    rot_x(side, Rx);
    rot_y(lean, Ry);
    mm3(Rz, Rx, T);
    mm3(T, Ry, Rt); /* torso */
    const double down[3] = {0, 0, -1}, up[3] = {0, 0, 1};
    const double left[3] = {0, 1, 0}, right[3] = {0, -1, 0};
    double d[3];
    memset(pose, 0, POSE_D * sizeof(double));
    /* legs: the thigh swings forward with flexion, the shin bends back */
    put_joint(pose, 1, 0, right, bone[1]);
    limb_dir(I, -abd_r, -hip_r, down, d);
    put_joint(pose, 2, 1, d, bone[2]);
    limb_dir(I, -abd_r, -(hip_r - knee_r), down, d);
    put_joint(pose, 3, 2, d, bone[3]);
    put_joint(pose, 4, 0, left, bone[4]);
    limb_dir(I, abd_l, -hip_l, down, d);
    put_joint(pose, 5, 4, d, bone[5]);
    limb_dir(I, abd_l, -(hip_l - knee_l), down, d);
    put_joint(pose, 6, 5, d, bone[6]);
    /* spine, neck, head */
    mv3(Rt, up, d);
    put_joint(pose, 7, 0, d, bone[7]);
    put_joint(pose, 8, 7, d, bone[8]);
    const double fwd_up[3] = {0.25, 0, 1}, head_up[3] = {0.3, 0, 1};
    limb_dir(Rt, 0.0, neck, fwd_up, d);
    put_joint(pose, 9, 8, d, bone[9]);
    limb_dir(Rt, 0.0, neck + head, head_up, d);
    put_joint(pose, 10, 9, d, bone[10]);
    /* arms: the upper arm swings forward with flexion, the forearm further */
    mv3(Rt, left, d);
    put_joint(pose, 11, 8, d, bone[11]);
    limb_dir(Rt, sa_l, -sh_l, down, d);
    put_joint(pose, 12, 11, d, bone[12]);
    limb_dir(Rt, sa_l, -(sh_l + el_l), down, d);
    put_joint(pose, 13, 12, d, bone[13]);
    mv3(Rt, right, d);
    put_joint(pose, 14, 8, d, bone[14]);
    limb_dir(Rt, -sa_r, -sh_r, down, d);
    put_joint(pose, 15, 14, d, bone[15]);
    limb_dir(Rt, -sa_r, -(sh_r + el_r), down, d);
    put_joint(pose, 16, 15, d, bone[16]);
}

void pose_retarget(const double *src, const double *bone, double scale,
                   double *dst) {
    for (int i = 0; i < 3; i++) dst[i] = src[i];
    for (int j = 1; j < POSE_J; j++) {
        int p = pose_parent[j];
        double d[3];
        for (int i = 0; i < 3; i++) d[i] = src[3 * j + i] - src[3 * p + i];
        put_joint(dst, j, p, d, scale * bone[j]);
    }
}

/* ---- PCA ---------------------------------------------------------------------- */

void pose_sym_eig(int n, double *A, double *ev, double *V) {
    for (int i = 0; i < n * n; i++) V[i] = 0.0;
    for (int i = 0; i < n; i++) V[i * n + i] = 1.0;
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0.0, diag = 0.0;
        for (int q = 0; q < n; q++)
            for (int p = 0; p < n; p++) {
                double a = A[q * n + p];
                if (p != q) off += a * a;
                else diag += a * a;
            }
        if (off <= 1e-30 * diag || off == 0.0) break;
        for (int p = 0; p < n - 1; p++)
            for (int q = p + 1; q < n; q++) {
                double apq = A[q * n + p];
                if (apq == 0.0) continue;
                /* rotation in the (p, q) plane that zeroes A_pq */
                double theta = (A[q * n + q] - A[p * n + p]) / (2.0 * apq);
                double t = (theta >= 0 ? 1.0 : -1.0) /
                           (fabs(theta) + sqrt(theta * theta + 1.0));
                double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
                for (int k = 0; k < n; k++) { /* columns p, q */
                    double akp = A[p * n + k], akq = A[q * n + k];
                    A[p * n + k] = c * akp - s * akq;
                    A[q * n + k] = s * akp + c * akq;
                }
                for (int k = 0; k < n; k++) { /* rows p, q */
                    double apk = A[k * n + p], aqk = A[k * n + q];
                    A[k * n + p] = c * apk - s * aqk;
                    A[k * n + q] = s * apk + c * aqk;
                }
                for (int k = 0; k < n; k++) {
                    double vkp = V[p * n + k], vkq = V[q * n + k];
                    V[p * n + k] = c * vkp - s * vkq;
                    V[q * n + k] = s * vkp + c * vkq;
                }
            }
    }
    for (int i = 0; i < n; i++) ev[i] = A[i * n + i];
    /* sort descending (selection sort; n is small) */
    for (int i = 0; i < n; i++) {
        int b = i;
        for (int k = i + 1; k < n; k++)
            if (ev[k] > ev[b]) b = k;
        if (b == i) continue;
        double t = ev[i];
        ev[i] = ev[b];
        ev[b] = t;
        for (int k = 0; k < n; k++) {
            t = V[i * n + k];
            V[i * n + k] = V[b * n + k];
            V[b * n + k] = t;
        }
    }
}

int pose_pca_fit(const double *poses, int count, int K, pose_model *m) {
    if (!poses || !m || count < 2 || K < 1 || K > POSE_KMAX) return -1;
    const int D = POSE_D;
    double *cov = calloc((size_t)D * D, sizeof(double));
    double *V = malloc((size_t)D * D * sizeof(double));
    double ev[POSE_D];
    if (!cov || !V) {
        free(cov);
        free(V);
        return -1;
    }
    memset(m, 0, sizeof *m);
    m->K = K;
    for (int i = 0; i < count; i++)
        for (int d = 0; d < D; d++) m->mean[d] += poses[(size_t)i * D + d];
    for (int d = 0; d < D; d++) m->mean[d] /= count;
    for (int i = 0; i < count; i++) {
        double c[POSE_D];
        for (int d = 0; d < D; d++) c[d] = poses[(size_t)i * D + d] - m->mean[d];
        for (int a = 0; a < D; a++)
            for (int b = 0; b <= a; b++) cov[a * D + b] += c[a] * c[b];
    }
    for (int a = 0; a < D; a++)
        for (int b = 0; b <= a; b++) {
            cov[a * D + b] /= count - 1;
            cov[b * D + a] = cov[a * D + b];
        }
    pose_sym_eig(D, cov, ev, V);
    double total = 0.0, kept = 0.0, rest = 0.0;
    int nrest = 0;
    for (int d = 0; d < D; d++) {
        double e = ev[d] > 0 ? ev[d] : 0.0;
        total += e;
        if (d < K) kept += e;
        else if (e > 1e-9 * ev[0]) {
            rest += e;
            nrest++;
        }
    }
    for (int k = 0; k < K; k++) {
        /* sign convention: the largest entry positive */
        int big = 0;
        for (int d = 1; d < D; d++)
            if (fabs(V[k * D + d]) > fabs(V[k * D + big])) big = d;
        double sg = V[k * D + big] < 0 ? -1.0 : 1.0;
        for (int d = 0; d < D; d++) m->basis[k * D + d] = sg * V[k * D + d];
        m->sd[k] = sqrt(ev[k] > 0 ? ev[k] : 0.0);
    }
    m->noise_var = nrest ? rest / nrest : 0.0;
    m->explained = total > 0 ? kept / total : 1.0;
    free(cov);
    free(V);
    return 0;
}

/* ---- metrics ---------------------------------------------------------------- */

void pose_joint_errors(const double *pred, const double *gt, double *err) {
    for (int j = 0; j < POSE_J; j++) {
        double s = 0.0;
        for (int i = 0; i < 3; i++) {
            double d = (pred[3 * j + i] - pred[i]) - (gt[3 * j + i] - gt[i]);
            s += d * d;
        }
        err[j] = sqrt(s);
    }
}

double pose_mpjpe(const double *pred, const double *gt) {
    double err[POSE_J], s = 0.0;
    pose_joint_errors(pred, gt, err);
    for (int j = 0; j < POSE_J; j++) s += err[j];
    return s / POSE_J;
}

double pose_pa_mpjpe(const double *pred, const double *gt) {
    double mp[3] = {0, 0, 0}, mg[3] = {0, 0, 0};
    for (int j = 0; j < POSE_J; j++)
        for (int i = 0; i < 3; i++) {
            mp[i] += pred[3 * j + i] / POSE_J;
            mg[i] += gt[3 * j + i] / POSE_J;
        }
    double P[POSE_D], G[POSE_D], S[9] = {0}, pp = 0.0;
    for (int j = 0; j < POSE_J; j++)
        for (int i = 0; i < 3; i++) {
            P[3 * j + i] = pred[3 * j + i] - mp[i];
            G[3 * j + i] = gt[3 * j + i] - mg[i];
            pp += P[3 * j + i] * P[3 * j + i];
        }
    /* S_ab = sum_j p_a g_b; Horn: the rotation is the top eigenvector of N */
    for (int j = 0; j < POSE_J; j++)
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++) S[3 * a + b] += P[3 * j + a] * G[3 * j + b];
    double xx = S[0], xy = S[1], xz = S[2], yx = S[3], yy = S[4], yz = S[5],
           zx = S[6], zy = S[7], zz = S[8];
    double N[16] = {xx + yy + zz, yz - zy,      zx - xz,       xy - yx,
                    yz - zy,      xx - yy - zz, xy + yx,       zx + xz,
                    zx - xz,      xy + yx,      -xx + yy - zz, yz + zy,
                    xy - yx,      zx + xz,      yz + zy,       -xx - yy + zz};
    double ev[4], V[16];
    pose_sym_eig(4, N, ev, V);
    double w = V[0], x = V[1], y = V[2], z = V[3];
    double R[9] = {1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                   2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                   2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)};
    double RP[POSE_D], sg = 0.0;
    for (int j = 0; j < POSE_J; j++) {
        mv3(R, P + 3 * j, RP + 3 * j);
        for (int i = 0; i < 3; i++) sg += G[3 * j + i] * RP[3 * j + i];
    }
    double scale = pp > 0 ? sg / pp : 1.0, e = 0.0;
    for (int j = 0; j < POSE_J; j++) {
        double s = 0.0;
        for (int i = 0; i < 3; i++) {
            double d = scale * RP[3 * j + i] - G[3 * j + i];
            s += d * d;
        }
        e += sqrt(s);
    }
    return e / POSE_J;
}
