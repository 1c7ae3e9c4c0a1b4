/* The pose-lifting energy of one frame and its exact derivatives.
 *
 * x = [z_0 .. z_{K-1}, theta, t_x, t_y, t_z (metres)], n = K + 4.
 * Joint j in the canonical frame:  P_j = mean_j + sum_k sd_k b_jk z_k,
 * in the world:                    X_j = R(theta) P_j + 1000 t   (t in metres),
 * in camera c:                     Y   = R_c (X_j - C_c),
 * projected:                       u   = f (Y_0, Y_1) / Y_2 + (c_x, c_y),
 * scaled residual:                 r   = (u - u_obs) / s,  q = |r|^2,
 *
 *   E = sum_{c,j visible} w_j psi(q; h) + kappa/2 |z|^2,
 *   psi(q; h) = h^2 (sqrt(1 + q/h^2) - 1)          (pseudo-Huber: q/2 near 0)
 *
 * With S = sqrt(1 + q/h^2):  psi_q = 1/(2S),  psi_qq = -1/(4 h^2 S^3),
 * psi_qh = q/(2 h^3 S^3). With A = dY/dx (3 x n) and D = du/dY / s (2 x 3):
 *
 *   grad   sum w_j 2 psi_q A' D' r                     + kappa z
 *   H      sum A' Q A + (second derivatives of Y)      + kappa I_z
 *          Q = 2 w psi_q (D'D + sum_m r_m d2u_m/dY2 / s) + 4 w psi_qq (D'r)(D'r)'
 *          d2Y/dtheta2 = R_c R'' P_j,  d2Y/dtheta dz_k = R_c R' sd_k b_jk
 *   B      d grad / d w_j = sum_c 2 psi_q A' D' r   (joint j's terms)
 *          d grad / d kappa = [z; 0],  d grad / d h = sum w_j 2 psi_qh A' D' r
 *
 * The shape model enters as P_j = mu_j + W_j z (W_j: joint j's 3 rows of the
 * scaled basis W, column k = sd_k b_k). With g = dE/dY = 2 w psi_q D' r and
 * Q = d2E/dY2 (the Q above), the shape part of B' v for v = [v_z, v_theta,
 * v_t] is, per visible (c, j), with M = R_c R(theta), M1 = R_c R'(theta) and
 * a = A v (3-vector):
 *
 *   d (a' g) / d P_j  = s = M' Q a + v_theta M1' g
 *   d (v' grad) / d mu_j      += s
 *   d (v' grad) / d W_j[:, k] += s z_k + (M' g) v_z,k
 *
 * (a depends on P_j through the theta column M1 P_j and on W_j directly
 * through M W_j v_z; g depends on P_j through Y = M P_j + ...).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pose.h"

int pose_n(const pose_model *m) { return m->K + 4; }

void pose_w_default(double *w) {
    for (int j = 0; j < POSE_J; j++) w[j] = 1.0;
    w[POSE_W_PRIOR] = 1.0;
    w[POSE_W_WIDTH] = 3.0;
}

void pose_w_bounds(double *lower, double *upper) {
    for (int j = 0; j < POSE_P; j++) {
        lower[j] = 1e-3;
        upper[j] = INFINITY;
    }
    lower[POSE_W_WIDTH] = 0.05;
    upper[POSE_W_WIDTH] = 100.0;
}

/* The scaled basis of a PPCA model: W column k = sd_k b_k. */
static pose_shape model_shape(const pose_model *m, double *W) {
    for (int k = 0; k < m->K; k++)
        for (int i = 0; i < POSE_D; i++) W[k * POSE_D + i] = m->sd[k] * m->basis[k * POSE_D + i];
    pose_shape sh = {m->K, m->mean, W};
    return sh;
}

/* P[POSE_D]: the canonical joints of z, P = mu + W z */
static void canonical(const pose_shape *sh, const double *z, double *P) {
    memcpy(P, sh->mean, POSE_D * sizeof(double));
    for (int k = 0; k < sh->K; k++) {
        const double *b = sh->W + k * POSE_D;
        for (int i = 0; i < POSE_D; i++) P[i] += z[k] * b[i];
    }
}

static void rot(double th, double *R, double *R1, double *R2) {
    double c = cos(th), s = sin(th);
    double a[9] = {c, -s, 0, s, c, 0, 0, 0, 1};
    double b[9] = {-s, -c, 0, c, -s, 0, 0, 0, 0};
    double d[9] = {-c, s, 0, -s, -c, 0, 0, 0, 0};
    memcpy(R, a, sizeof a);
    if (R1) memcpy(R1, b, sizeof b);
    if (R2) memcpy(R2, d, sizeof d);
}
static void mv3(const double *R, const double *v, double *o) {
    for (int i = 0; i < 3; i++) o[i] = R[3 * i] * v[0] + R[3 * i + 1] * v[1] + R[3 * i + 2] * v[2];
}
static void mm3(const double *A, const double *B, double *C) {
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            C[3 * i + j] = A[3 * i] * B[j] + A[3 * i + 1] * B[3 + j] + A[3 * i + 2] * B[6 + j];
}

void pose_predict(const pose_model *m, const double *x, double *joints) {
    double W[POSE_D * POSE_KMAX];
    pose_shape sh = model_shape(m, W);
    pose_shape_predict(&sh, x, joints);
}

void pose_shape_predict(const pose_shape *sh, const double *x, double *joints) {
    double P[POSE_D], R[9];
    int K = sh->K;
    canonical(sh, x, P);
    rot(x[K], R, NULL, NULL);
    for (int j = 0; j < POSE_J; j++) {
        mv3(R, P + 3 * j, joints + 3 * j);
        for (int i = 0; i < 3; i++) joints[3 * j + i] += POSE_T_MM * x[K + 1 + i];
    }
}

/* Every output may be NULL. w: the POSE_P energy weights. B[n*POSE_P]
   column-major; bv[POSE_P] = B' v; dsh[POSE_D * (K + 1)] = the shape part
   of B' v: d(v' grad)/d mu, then d(v' grad)/d W column by column. Returns 0;
   where a joint falls behind a camera *e = +inf and g = NaN (the solver
   rejects such a trial point), or 1 when e was not asked for. */
static int core_shape(const pose_camera *cams, const pose_frame *fr, const pose_shape *sh,
                      const double *x, const double *w, double *e, double *g, double *H,
                      double *B, const double *v, double *bv, double *dsh, double *ew,
                      double *esh) {
    const int K = sh->K, n = K + 4, ith = K;
    const double kappa = w[POSE_W_PRIOR], h = w[POSE_W_WIDTH], h2 = h * h;
    const int deriv = g || H || B || bv || dsh || ew || esh;
    double P[POSE_D], R[9], R1[9], R2[9], t[3];
    canonical(sh, x, P);
    rot(x[ith], R, R1, R2);
    for (int i = 0; i < 3; i++) t[i] = POSE_T_MM * x[K + 1 + i];
    if (g) memset(g, 0, (size_t)n * sizeof(double));
    if (H) memset(H, 0, (size_t)n * n * sizeof(double));
    if (B) memset(B, 0, (size_t)n * POSE_P * sizeof(double));
    if (bv) memset(bv, 0, POSE_P * sizeof(double));
    if (dsh) memset(dsh, 0, (size_t)POSE_D * (K + 1) * sizeof(double));
    if (ew) memset(ew, 0, POSE_P * sizeof(double));
    if (esh) memset(esh, 0, (size_t)POSE_D * (K + 1) * sizeof(double));
    double E = 0.0;
    double A[3 * (POSE_KMAX + 4)], QA[3 * (POSE_KMAX + 4)], Jr[POSE_KMAX + 4];
    for (int c = 0; c < POSE_C; c++) {
        const pose_camera *cam = &cams[c];
        double M[9], M1[9], M2[9];
        mm3(cam->R, R, M);
        mm3(cam->R, R1, M1);
        mm3(cam->R, R2, M2);
        for (int j = 0; j < POSE_J; j++) {
            if (!fr->vis[c][j]) continue;
            double X[3], Y[3];
            mv3(R, P + 3 * j, X);
            for (int i = 0; i < 3; i++) X[i] += t[i] - cam->C[i];
            mv3(cam->R, X, Y);
            if (!(Y[2] > 1.0)) { /* behind the camera: no energy here */
                if (g) for (int i = 0; i < n; i++) g[i] = NAN;
                if (!e) return 1; /* derivatives only: never at such a point */
                *e = INFINITY;
                return 0;
            }
            double inv = 1.0 / Y[2], inv2 = inv * inv, fs = cam->f / POSE_PX;
            double r0 = (cam->f * Y[0] * inv + cam->cx - fr->uv[c][j][0]) / POSE_PX;
            double r1 = (cam->f * Y[1] * inv + cam->cy - fr->uv[c][j][1]) / POSE_PX;
            double q = r0 * r0 + r1 * r1;
            double S = sqrt(1.0 + q / h2);
            double wj = w[j];
            E += wj * h2 * (S - 1.0);
            if (!deriv) continue;
            double psi_q = 0.5 / S;
            double psi_qh = q / (2.0 * h2 * h * S * S * S);
            /* gY = D' r */
            double gY[3] = {fs * inv * r0, fs * inv * r1,
                            -fs * inv2 * (Y[0] * r0 + Y[1] * r1)};
            if (ew) { /* dE/dw_j = h^2 (S - 1); d/dh h^2 (S - 1) = 2h (S - 1) - q/(h S) */
                ew[j] += h2 * (S - 1.0);
                ew[POSE_W_WIDTH] += wj * (2.0 * h * (S - 1.0) - q / (h * S));
            }
            if (esh) { /* dE/dP_j = M' dE/dY, dE/dY = 2 w psi_q gY; P = mu + W z */
                double ge = 2.0 * wj * psi_q;
                for (int i = 0; i < 3; i++) {
                    double d = ge * (M[i] * gY[0] + M[3 + i] * gY[1] + M[6 + i] * gY[2]);
                    esh[3 * j + i] += d;
                    for (int k = 0; k < K; k++) esh[POSE_D * (k + 1) + 3 * j + i] += d * x[k];
                }
            }
            /* A = dY/dx: columns z_k, theta, t */
            for (int k = 0; k < K; k++) mv3(M, sh->W + k * POSE_D + 3 * j, A + 3 * k);
            mv3(M1, P + 3 * j, A + 3 * ith);
            for (int i = 0; i < 3; i++)
                for (int r = 0; r < 3; r++) A[3 * (K + 1 + i) + r] = POSE_T_MM * cam->R[3 * r + i];
            double Jv = 0.0;
            for (int col = 0; col < n; col++) {
                Jr[col] = A[3 * col] * gY[0] + A[3 * col + 1] * gY[1] + A[3 * col + 2] * gY[2];
                if (v) Jv += Jr[col] * v[col];
            }
            if (g)
                for (int col = 0; col < n; col++) g[col] += 2.0 * wj * psi_q * Jr[col];
            if (B)
                for (int col = 0; col < n; col++) {
                    B[j * n + col] += 2.0 * psi_q * Jr[col];
                    B[POSE_W_WIDTH * n + col] += 2.0 * wj * psi_qh * Jr[col];
                }
            if (bv) {
                bv[j] += 2.0 * psi_q * Jv;
                bv[POSE_W_WIDTH] += 2.0 * wj * psi_qh * Jv;
            }
            if (H || dsh) {
                double a = 2.0 * wj * psi_q, bq = -wj / (h2 * S * S * S); /* 4 w psi_qq */
                double f2 = fs * fs;
                /* D'D + sum_m r_m d2u_m/dY2 / s, symmetric 3 x 3 */
                double Q[9];
                Q[0] = f2 * inv2;
                Q[1] = 0.0;
                Q[2] = -f2 * inv2 * inv * Y[0] - fs * r0 * inv2;
                Q[4] = f2 * inv2;
                Q[5] = -f2 * inv2 * inv * Y[1] - fs * r1 * inv2;
                Q[8] = f2 * inv2 * inv2 * (Y[0] * Y[0] + Y[1] * Y[1]) +
                       2.0 * fs * (r0 * Y[0] + r1 * Y[1]) * inv2 * inv;
                Q[3] = Q[1];
                Q[6] = Q[2];
                Q[7] = Q[5];
                for (int i = 0; i < 9; i++) Q[i] *= a;
                for (int r = 0; r < 3; r++)
                    for (int s = 0; s < 3; s++) Q[3 * r + s] += bq * gY[r] * gY[s];
                double ag[3] = {a * gY[0], a * gY[1], a * gY[2]};
                if (dsh) {
                    /* av = A v; s = M' Q av + v_theta M1' ag; Mg = M' ag */
                    double av[3] = {0, 0, 0}, Qa[3], sP[3], Mg[3];
                    for (int col = 0; col < n; col++)
                        for (int r = 0; r < 3; r++) av[r] += A[3 * col + r] * v[col];
                    mv3(Q, av, Qa);
                    for (int i = 0; i < 3; i++) {
                        sP[i] = M[i] * Qa[0] + M[3 + i] * Qa[1] + M[6 + i] * Qa[2] +
                                v[ith] * (M1[i] * ag[0] + M1[3 + i] * ag[1] + M1[6 + i] * ag[2]);
                        Mg[i] = M[i] * ag[0] + M[3 + i] * ag[1] + M[6 + i] * ag[2];
                        dsh[3 * j + i] += sP[i];
                    }
                    for (int k = 0; k < K; k++)
                        for (int i = 0; i < 3; i++)
                            dsh[POSE_D * (k + 1) + 3 * j + i] += sP[i] * x[k] + Mg[i] * v[k];
                }
                if (!H) continue;
                for (int col = 0; col < n; col++) mv3(Q, A + 3 * col, QA + 3 * col);
                /* lower triangle of A' Q A (mirrored at the end) */
                for (int cb = 0; cb < n; cb++)
                    for (int ra = cb; ra < n; ra++)
                        H[cb * n + ra] += A[3 * ra] * QA[3 * cb] + A[3 * ra + 1] * QA[3 * cb + 1] +
                                          A[3 * ra + 2] * QA[3 * cb + 2];
                /* second derivatives of Y: theta-theta and theta-z_k */
                double y2[3];
                mv3(M2, P + 3 * j, y2);
                H[ith * n + ith] += ag[0] * y2[0] + ag[1] * y2[1] + ag[2] * y2[2];
                for (int k = 0; k < K; k++) {
                    double y1[3];
                    mv3(M1, sh->W + k * POSE_D + 3 * j, y1);
                    H[k * n + ith] += ag[0] * y1[0] + ag[1] * y1[1] + ag[2] * y1[2];
                }
            }
        }
    }
    /* prior */
    double zz = 0.0, zv = 0.0;
    for (int k = 0; k < K; k++) {
        zz += x[k] * x[k];
        if (v) zv += x[k] * v[k];
        if (g) g[k] += kappa * x[k];
        if (H) H[k * n + k] += kappa;
        if (B) B[POSE_W_PRIOR * n + k] = x[k];
    }
    if (bv) bv[POSE_W_PRIOR] = zv;
    if (ew) ew[POSE_W_PRIOR] = 0.5 * zz;
    E += 0.5 * kappa * zz;
    if (H)
        for (int cb = 0; cb < n; cb++)
            for (int ra = cb + 1; ra < n; ra++) H[ra * n + cb] = H[cb * n + ra];
    if (e) *e = E;
    return 0;
}

static int core(const pose_problem *pb, const double *x, const double *w, double *e,
                double *g, double *H, double *B, const double *v, double *bv) {
    double W[POSE_D * POSE_KMAX];
    pose_shape sh = model_shape(pb->model, W);
    return core_shape(pb->cam, pb->frame, &sh, x, w, e, g, H, B, v, bv, NULL, NULL, NULL);
}

int pose_shape_energy_eval(const pose_camera *cam, const pose_frame *fr, const pose_shape *sh,
                           const double *x, const double *w, double *e, double *g, double *H,
                           const double *v, double *bv, double *dsh) {
    return core_shape(cam, fr, sh, x, w, e, g, H, NULL, v, bv, dsh, NULL, NULL);
}

int pose_shape_energy_dw(const pose_camera *cam, const pose_frame *fr, const pose_shape *sh,
                         const double *x, const double *w, double *e, double *ew, double *esh) {
    return core_shape(cam, fr, sh, x, w, e, NULL, NULL, NULL, NULL, NULL, NULL, ew, esh);
}

static int cb_value_grad(void *u, const double *x, const double *w, double *e, double *g) {
    return core(u, x, w, e, g, NULL, NULL, NULL, NULL);
}
static int cb_hess(void *u, const double *x, const double *w, double *H) {
    return core(u, x, w, NULL, NULL, H, NULL, NULL, NULL);
}
static int cb_mixed(void *u, const double *x, const double *w, double *B) {
    return core(u, x, w, NULL, NULL, NULL, B, NULL, NULL);
}
static int cb_mixed_vjp(void *u, const double *x, const double *w, const double *v,
                        double *out) {
    return core(u, x, w, NULL, NULL, NULL, NULL, v, out);
}

wb_energy pose_energy(const pose_problem *pb) {
    wb_energy e;
    memset(&e, 0, sizeof e);
    e.n = pose_n(pb->model);
    e.p = POSE_P;
    e.user = (void *)pb;
    e.value_grad = cb_value_grad;
    e.hess = cb_hess;
    e.mixed = cb_mixed;
    e.mixed_vjp = cb_mixed_vjp;
    return e;
}

/* ---- loss ------------------------------------------------------------------- */

double pose_loss(const pose_problem *pb, const double *x, double *dl_dx) {
    double W[POSE_D * POSE_KMAX];
    pose_shape sh = model_shape(pb->model, W);
    return pose_shape_loss(&sh, pb->frame, x, dl_dx, NULL);
}

double pose_shape_loss(const pose_shape *sh, const pose_frame *fr, const double *x,
                       double *dl_dx, double *dl_dsh) {
    const double *gt = fr->gt;
    int K = sh->K, n = K + 4;
    double P[POSE_D], R[9], R1[9];
    canonical(sh, x, P);
    rot(x[K], R, R1, NULL);
    if (dl_dx) memset(dl_dx, 0, (size_t)n * sizeof(double));
    if (dl_dsh) memset(dl_dsh, 0, (size_t)POSE_D * (K + 1) * sizeof(double));
    double L = 0.0, eps = POSE_LOSS_EPS;
    for (int j = 1; j < POSE_J; j++) {
        double rel[3], pr[3], d[3], s = 0.0;
        for (int i = 0; i < 3; i++) rel[i] = P[3 * j + i] - P[i];
        mv3(R, rel, pr);
        for (int i = 0; i < 3; i++) {
            d[i] = pr[i] - (gt[3 * j + i] - gt[i]);
            s += d[i] * d[i];
        }
        double nrm = sqrt(s + eps * eps);
        L += nrm - eps;
        if (!dl_dx && !dl_dsh) continue;
        /* d nrm = d' dd / nrm; dd/dP_j = R = -dd/dP_0, so dL/dP_j = R' gd;
           dd/dz_k = R (W_jk - W_0k), dd/dtheta = R' rel */
        double gd[3] = {d[0] / nrm / POSE_J, d[1] / nrm / POSE_J, d[2] / nrm / POSE_J};
        double rt[3] = {0, 0, 0}; /* R' gd */
        for (int i = 0; i < 3; i++)
            for (int r = 0; r < 3; r++) rt[i] += R[3 * r + i] * gd[r];
        if (dl_dsh) /* P = mu + W z: dL/dmu = dL/dP, dL/dW_k = dL/dP z_k */
            for (int k = -1; k < K; k++) {
                double c = k < 0 ? 1.0 : x[k];
                double *o = dl_dsh + POSE_D * (k + 1);
                for (int i = 0; i < 3; i++) {
                    o[3 * j + i] += c * rt[i];
                    o[i] -= c * rt[i];
                }
            }
        if (!dl_dx) continue;
        for (int k = 0; k < K; k++) {
            const double *b = sh->W + k * POSE_D;
            double acc = 0.0;
            for (int i = 0; i < 3; i++) acc += rt[i] * (b[3 * j + i] - b[i]);
            dl_dx[k] += acc;
        }
        double dr[3];
        mv3(R1, rel, dr);
        dl_dx[K] += gd[0] * dr[0] + gd[1] * dr[1] + gd[2] * dr[2];
    }
    return L / POSE_J;
}

/* ---- starts ------------------------------------------------------------------- */

/* Least-squares intersection of the rays of joint j: sum (I - d d')(X - C) = 0. */
static int triangulate(const pose_camera *cams, const pose_frame *fr, int j, double *X) {
    double A[9] = {0}, b[3] = {0};
    int cnt = 0;
    for (int c = 0; c < POSE_C; c++) {
        if (!fr->vis[c][j]) continue;
        const pose_camera *cam = &cams[c];
        double dc[3] = {(fr->uv[c][j][0] - cam->cx) / cam->f,
                        (fr->uv[c][j][1] - cam->cy) / cam->f, 1.0}, d[3];
        for (int i = 0; i < 3; i++) /* d = R_c' dc */
            d[i] = cam->R[i] * dc[0] + cam->R[3 + i] * dc[1] + cam->R[6 + i] * dc[2];
        double nn = sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
        for (int i = 0; i < 3; i++) d[i] /= nn;
        for (int r = 0; r < 3; r++)
            for (int s = 0; s < 3; s++) {
                double pr = (r == s) - d[r] * d[s];
                A[3 * r + s] += pr;
                b[r] += pr * cam->C[s];
            }
        cnt++;
    }
    if (cnt < 2) return 0;
    double det = A[0] * (A[4] * A[8] - A[5] * A[7]) - A[1] * (A[3] * A[8] - A[5] * A[6]) +
                 A[2] * (A[3] * A[7] - A[4] * A[6]);
    if (!(fabs(det) > 1e-12)) return 0;
    /* Cramer's rule */
    for (int i = 0; i < 3; i++) {
        double T[9];
        memcpy(T, A, sizeof T);
        for (int r = 0; r < 3; r++) T[3 * r + i] = b[r];
        X[i] = (T[0] * (T[4] * T[8] - T[5] * T[7]) - T[1] * (T[3] * T[8] - T[5] * T[6]) +
                T[2] * (T[3] * T[7] - T[4] * T[6])) / det;
    }
    return 1;
}

/* One view only (fewer than 3 joints triangulated): the depth from the
   size, d = f s3 / s2 (s2 the rms 2-D spread of the joints the camera with
   the most of them sees, s3 the rms 3-D spread of the mean pose), along the
   ray through their 2-D centroid; the pelvis below that point by the mean
   pose's centroid height. Returns 1 when no camera sees 2 joints. */
static int mono_start(const pose_camera *cams, const pose_frame *fr, const pose_shape *sh,
                      double *t) {
    int best = -1, nb = 1;
    for (int c = 0; c < POSE_C; c++) {
        int k = 0;
        for (int j = 0; j < POSE_J; j++) k += fr->vis[c][j] != 0;
        if (k > nb) {
            nb = k;
            best = c;
        }
    }
    if (best < 0) return 1;
    const pose_camera *cam = &cams[best];
    double mu[2] = {0, 0}, s2 = 0.0, m3[3] = {0, 0, 0}, s3 = 0.0;
    for (int j = 0; j < POSE_J; j++) {
        for (int i = 0; i < 3; i++) m3[i] += sh->mean[3 * j + i] / POSE_J;
        if (!fr->vis[best][j]) continue;
        mu[0] += fr->uv[best][j][0] / nb;
        mu[1] += fr->uv[best][j][1] / nb;
    }
    for (int j = 0; j < POSE_J; j++) {
        for (int i = 0; i < 3; i++)
            s3 += (sh->mean[3 * j + i] - m3[i]) * (sh->mean[3 * j + i] - m3[i]) / POSE_J;
        if (!fr->vis[best][j]) continue;
        for (int i = 0; i < 2; i++) s2 += (fr->uv[best][j][i] - mu[i]) * (fr->uv[best][j][i] - mu[i]) / nb;
    }
    if (!(s2 > 0)) return 1;
    /* 2-D spread of a 3-D cloud seen side-on: about sqrt(2/3) of its 3-D rms */
    double d = cam->f * sqrt(s3 * 2.0 / 3.0) / sqrt(s2);
    double dc[3] = {(mu[0] - cam->cx) / cam->f, (mu[1] - cam->cy) / cam->f, 1.0};
    for (int i = 0; i < 3; i++) {
        double X = cam->C[i] + d * (cam->R[i] * dc[0] + cam->R[3 + i] * dc[1] + cam->R[6 + i] * dc[2]);
        t[i] = (X - (i == 2 ? m3[2] : 0.0)) / POSE_T_MM;
    }
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int cnt) {
    qsort(v, (size_t)cnt, sizeof(double), cmp_double);
    return cnt % 2 ? v[cnt / 2] : 0.5 * (v[cnt / 2 - 1] + v[cnt / 2]);
}

int pose_starts(const pose_problem *pb, const double *w, int sweep, int nstarts,
                double *x0) {
    double W[POSE_D * POSE_KMAX];
    pose_shape sh = model_shape(pb->model, W);
    return pose_shape_starts(pb->cam, pb->frame, &sh, w, sweep, nstarts, x0);
}

int pose_shape_starts(const pose_camera *cam, const pose_frame *fr, const pose_shape *sh,
                      const double *w, int sweep, int nstarts, double *x0) {
    int K = sh->K, n = K + 4;
    double wd[POSE_P];
    if (!w) {
        pose_w_default(wd);
        w = wd;
    }
    if (sweep < 1) sweep = 1;
    if (sweep > 64) sweep = 64;
    if (nstarts > sweep) nstarts = sweep;
    /* translation: median of the triangulated joints, minus the mean pose's
       median height above the pelvis */
    double cx[POSE_J], cy[POSE_J], cz[POSE_J], mz[POSE_J], X[3];
    int cnt = 0;
    for (int j = 0; j < POSE_J; j++) {
        mz[j] = sh->mean[3 * j + 2];
        if (!triangulate(cam, fr, j, X)) continue;
        cx[cnt] = X[0];
        cy[cnt] = X[1];
        cz[cnt] = X[2];
        cnt++;
    }
    double t[3] = {0.0, 0.0, 1.0};
    if (cnt >= 3) {
        t[0] = median(cx, cnt) / POSE_T_MM;
        t[1] = median(cy, cnt) / POSE_T_MM;
        t[2] = (median(cz, cnt) - median(mz, POSE_J)) / POSE_T_MM;
    } else if (mono_start(cam, fr, sh, t)) {
        return 0;
    }
    /* yaw: rank a sweep by the energy at the mean pose */
    double xe[POSE_KMAX + 4], en[64];
    int idx[64];
    memset(xe, 0, sizeof xe);
    for (int i = 0; i < 3; i++) xe[K + 1 + i] = t[i];
    for (int k = 0; k < sweep; k++) {
        xe[K] = -POSE_PI + 2.0 * POSE_PI * k / sweep;
        core_shape(cam, fr, sh, xe, w, &en[k], NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
        if (!isfinite(en[k])) en[k] = INFINITY;
        idx[k] = k;
    }
    for (int a = 1; a < sweep; a++) /* insertion sort by energy */
        for (int b = a; b > 0 && en[idx[b]] < en[idx[b - 1]]; b--) {
            int tmp = idx[b];
            idx[b] = idx[b - 1];
            idx[b - 1] = tmp;
        }
    for (int s = 0; s < nstarts; s++) {
        memcpy(x0 + (size_t)s * n, xe, (size_t)n * sizeof(double));
        x0[(size_t)s * n + K] = -POSE_PI + 2.0 * POSE_PI * idx[s] / sweep;
    }
    return nstarts;
}
