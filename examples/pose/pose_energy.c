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

/* P[POSE_D]: the canonical joints of z */
static void canonical(const pose_model *m, const double *z, double *P) {
    memcpy(P, m->mean, sizeof m->mean);
    for (int k = 0; k < m->K; k++) {
        double c = m->sd[k] * z[k];
        const double *b = m->basis + k * POSE_D;
        for (int i = 0; i < POSE_D; i++) P[i] += c * b[i];
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
    double P[POSE_D], R[9];
    int K = m->K;
    canonical(m, x, P);
    rot(x[K], R, NULL, NULL);
    for (int j = 0; j < POSE_J; j++) {
        mv3(R, P + 3 * j, joints + 3 * j);
        for (int i = 0; i < 3; i++) joints[3 * j + i] += POSE_T_MM * x[K + 1 + i];
    }
}

/* Every output may be NULL. B[n*p] column-major; bv[p] = B' v. Returns 0;
   where a joint falls behind a camera *e = +inf and g = NaN (the solver
   rejects such a trial point), or 1 when e was not asked for. */
static int core(const pose_problem *pb, const double *x, const double *w,
                double *e, double *g, double *H, double *B, const double *v,
                double *bv) {
    const pose_model *m = pb->model;
    const pose_frame *fr = pb->frame;
    const int K = m->K, n = K + 4, ith = K;
    const double kappa = w[POSE_W_PRIOR], h = w[POSE_W_WIDTH], h2 = h * h;
    const int deriv = g || H || B || bv;
    double P[POSE_D], R[9], R1[9], R2[9], t[3];
    canonical(m, x, P);
    rot(x[ith], R, R1, R2);
    for (int i = 0; i < 3; i++) t[i] = POSE_T_MM * x[K + 1 + i];
    if (g) memset(g, 0, (size_t)n * sizeof(double));
    if (H) memset(H, 0, (size_t)n * n * sizeof(double));
    if (B) memset(B, 0, (size_t)n * POSE_P * sizeof(double));
    if (bv) memset(bv, 0, POSE_P * sizeof(double));
    double E = 0.0;
    double A[3 * (POSE_KMAX + 4)], QA[3 * (POSE_KMAX + 4)], Jr[POSE_KMAX + 4];
    for (int c = 0; c < POSE_C; c++) {
        const pose_camera *cam = &pb->cam[c];
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
            /* A = dY/dx: columns z_k, theta, t */
            for (int k = 0; k < K; k++) {
                double b[3];
                for (int i = 0; i < 3; i++) b[i] = m->sd[k] * m->basis[k * POSE_D + 3 * j + i];
                mv3(M, b, A + 3 * k);
            }
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
            if (H) {
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
                for (int col = 0; col < n; col++) mv3(Q, A + 3 * col, QA + 3 * col);
                /* lower triangle of A' Q A (mirrored at the end) */
                for (int cb = 0; cb < n; cb++)
                    for (int ra = cb; ra < n; ra++)
                        H[cb * n + ra] += A[3 * ra] * QA[3 * cb] + A[3 * ra + 1] * QA[3 * cb + 1] +
                                          A[3 * ra + 2] * QA[3 * cb + 2];
                /* second derivatives of Y: theta-theta and theta-z_k */
                double ag[3] = {a * gY[0], a * gY[1], a * gY[2]}, y2[3];
                mv3(M2, P + 3 * j, y2);
                H[ith * n + ith] += ag[0] * y2[0] + ag[1] * y2[1] + ag[2] * y2[2];
                for (int k = 0; k < K; k++) {
                    double b[3], y1[3];
                    for (int i = 0; i < 3; i++) b[i] = m->sd[k] * m->basis[k * POSE_D + 3 * j + i];
                    mv3(M1, b, y1);
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
    E += 0.5 * kappa * zz;
    if (H)
        for (int cb = 0; cb < n; cb++)
            for (int ra = cb + 1; ra < n; ra++) H[ra * n + cb] = H[cb * n + ra];
    if (e) *e = E;
    return 0;
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
    const pose_model *m = pb->model;
    const double *gt = pb->frame->gt;
    int K = m->K, n = K + 4;
    double P[POSE_D], R[9], R1[9];
    canonical(m, x, P);
    rot(x[K], R, R1, NULL);
    if (dl_dx) memset(dl_dx, 0, (size_t)n * sizeof(double));
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
        if (!dl_dx) continue;
        /* d nrm = d' dd / nrm; dd/dz_k = R sd_k (b_jk - b_0k), dd/dtheta = R' rel */
        double gd[3] = {d[0] / nrm / POSE_J, d[1] / nrm / POSE_J, d[2] / nrm / POSE_J};
        double rt[3] = {0, 0, 0}; /* R' gd */
        for (int i = 0; i < 3; i++)
            for (int r = 0; r < 3; r++) rt[i] += R[3 * r + i] * gd[r];
        for (int k = 0; k < K; k++) {
            const double *b = m->basis + k * POSE_D;
            double acc = 0.0;
            for (int i = 0; i < 3; i++) acc += rt[i] * (b[3 * j + i] - b[i]);
            dl_dx[k] += m->sd[k] * acc;
        }
        double dr[3];
        mv3(R1, rel, dr);
        dl_dx[K] += gd[0] * dr[0] + gd[1] * dr[1] + gd[2] * dr[2];
    }
    return L / POSE_J;
}

/* ---- starts ------------------------------------------------------------------- */

/* Least-squares intersection of the rays of joint j: sum (I - d d')(X - C) = 0. */
static int triangulate(const pose_problem *pb, int j, double *X) {
    double A[9] = {0}, b[3] = {0};
    int cnt = 0;
    for (int c = 0; c < POSE_C; c++) {
        if (!pb->frame->vis[c][j]) continue;
        const pose_camera *cam = &pb->cam[c];
        double dc[3] = {(pb->frame->uv[c][j][0] - cam->cx) / cam->f,
                        (pb->frame->uv[c][j][1] - cam->cy) / cam->f, 1.0}, d[3];
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
    const pose_model *m = pb->model;
    int K = m->K, n = K + 4;
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
        mz[j] = m->mean[3 * j + 2];
        if (!triangulate(pb, j, X)) continue;
        cx[cnt] = X[0];
        cy[cnt] = X[1];
        cz[cnt] = X[2];
        cnt++;
    }
    double t[3] = {0.0, 0.0, 1.0};
    if (cnt > 0) {
        t[0] = median(cx, cnt) / POSE_T_MM;
        t[1] = median(cy, cnt) / POSE_T_MM;
        t[2] = (median(cz, cnt) - median(mz, POSE_J)) / POSE_T_MM;
    }
    /* yaw: rank a sweep by the energy at the mean pose */
    double xe[POSE_KMAX + 4], en[64];
    int idx[64];
    memset(xe, 0, sizeof xe);
    for (int i = 0; i < 3; i++) xe[K + 1 + i] = t[i];
    for (int k = 0; k < sweep; k++) {
        xe[K] = -POSE_PI + 2.0 * POSE_PI * k / sweep;
        core(pb, xe, w, &en[k], NULL, NULL, NULL, NULL, NULL);
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
