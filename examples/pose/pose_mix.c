/* The paper's model: a mixture of G PPCA shape models with an unknown yaw.
 *
 * Component g has its own mean mu_g and scaled basis W_g (POSE_D x K); a
 * frame's pose under g is P = mu_g + W_g z, and its energy E_g(x; w) is the
 * robust reprojection energy of pose_energy.c with P in place of the single
 * model's. The inner problem
 *
 *   x*(w) = argmin over g and x of E_g(x; w)
 *
 * is non-convex twice over: in the yaw (E is periodic in it with several
 * local minima: a pose seen from behind fits the 2-D joints of a mirrored
 * one) and in the choice of component. It is solved from several starts --
 * per component, the best yaws of a 12-angle sweep ranked by energy (and,
 * in training, the component's last minimizer) -- and the lowest final
 * energy wins (a hard minimum).
 *
 * The learned parameters are w = [w_j (17), kappa, h, mu_1, W_1, ..,
 * mu_G, W_G]: p = 19 + G * POSE_D * (K + 1). The loss L(x*(w), w) (smooth
 * MPJPE) depends on w directly too, through P = mu + W z, so
 *
 *   dL/dw = dL/dw|_x - B' (H + lambda I)^-1 dL/dx        (at the winner)
 *
 * with H and B of the winning component (B' v through mixed_vjp; it is zero
 * in every other component's block). Within a basin of the winner this is
 * the derivative of the hard minimum; where the winner switches the hard
 * minimum jumps and no derivative sees that.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "pose.h"

#define SWEEP 12 /* yaw angles ranked for the starts */

int pose_mix_p(int G, int K) { return POSE_P + G * POSE_D * (K + 1); }

int pose_mix_offset(int K, int g) { return POSE_P + g * POSE_D * (K + 1); }

void pose_mix_pack(const pose_mixture *mx, const double *wglob, double *w) {
    memcpy(w, wglob, POSE_P * sizeof(double));
    for (int g = 0; g < mx->G; g++) {
        double *o = w + pose_mix_offset(mx->K, g);
        memcpy(o, mx->mean[g], POSE_D * sizeof(double));
        memcpy(o + POSE_D, mx->W[g], (size_t)POSE_D * mx->K * sizeof(double));
    }
}

pose_shape pose_mix_shape(int K, int g, const double *w) {
    const double *o = w + pose_mix_offset(K, g);
    pose_shape sh = {K, o, o + POSE_D};
    return sh;
}

/* ---- maximum-likelihood fit: k-means, then PPCA per cluster --------------- */

static double dist2(const double *a, const double *b) {
    double s = 0.0;
    for (int i = 0; i < POSE_D; i++) s += (a[i] - b[i]) * (a[i] - b[i]);
    return s;
}

int pose_mix_fit(const double *poses, int count, int G, int K, unsigned long long seed,
                 pose_mixture *mx, char *msg, size_t len) {
    if (!poses || !mx || G < 1 || G > POSE_GMAX || K < 1 || K > POSE_MKMAX ||
        count < G * (K + 2)) {
        snprintf(msg, len, "mixture fit: need 1 <= G <= %d, 1 <= K <= %d and at least "
                 "G (K + 2) poses (G %d, K %d, %d poses)", POSE_GMAX, POSE_MKMAX, G, K, count);
        return -1;
    }
    memset(mx, 0, sizeof *mx);
    mx->G = G;
    mx->K = K;
    int *lab = malloc((size_t)count * sizeof(int));
    double *d2 = malloc((size_t)count * sizeof(double));
    double *buf = malloc((size_t)count * POSE_D * sizeof(double));
    pose_model *pm = malloc(sizeof *pm);
    if (!lab || !d2 || !buf || !pm) {
        free(lab);
        free(d2);
        free(buf);
        free(pm);
        snprintf(msg, len, "mixture fit: out of memory");
        return -1;
    }
    /* k-means++ seeding: each next centre drawn with probability ~ the
       squared distance to the nearest centre so far */
    uint64_t rng = (uint64_t)seed * 0x9E3779B97F4A7C15ULL + 77;
    double C[POSE_GMAX][POSE_D];
    memcpy(C[0], poses + (size_t)(pose_rand(&rng) * count) * POSE_D, sizeof C[0]);
    for (int i = 0; i < count; i++) d2[i] = dist2(poses + (size_t)i * POSE_D, C[0]);
    for (int g = 1; g < G; g++) {
        double tot = 0.0;
        for (int i = 0; i < count; i++) tot += d2[i];
        double r = pose_rand(&rng) * tot;
        int pick = count - 1;
        for (int i = 0; i < count; i++) {
            r -= d2[i];
            if (r <= 0) {
                pick = i;
                break;
            }
        }
        memcpy(C[g], poses + (size_t)pick * POSE_D, sizeof C[g]);
        for (int i = 0; i < count; i++) {
            double d = dist2(poses + (size_t)i * POSE_D, C[g]);
            if (d < d2[i]) d2[i] = d;
        }
    }
    /* Lloyd iterations */
    for (int it = 0; it < 100; it++) {
        int changed = 0;
        for (int i = 0; i < count; i++) {
            int b = 0;
            double bd = INFINITY;
            for (int g = 0; g < G; g++) {
                double d = dist2(poses + (size_t)i * POSE_D, C[g]);
                if (d < bd) {
                    bd = d;
                    b = g;
                }
            }
            changed += it == 0 || lab[i] != b;
            lab[i] = b;
        }
        if (!changed) break;
        int cnt[POSE_GMAX] = {0};
        memset(C, 0, sizeof C);
        for (int i = 0; i < count; i++) {
            cnt[lab[i]]++;
            for (int k = 0; k < POSE_D; k++) C[lab[i]][k] += poses[(size_t)i * POSE_D + k];
        }
        for (int g = 0; g < G; g++)
            for (int k = 0; k < POSE_D; k++) C[g][k] /= cnt[g] > 0 ? cnt[g] : 1;
    }
    /* per cluster: PPCA maximum likelihood (Tipping & Bishop 1999):
       sigma^2 = mean of the discarded eigenvalues, W = U_K (L_K - sigma^2)^1/2 */
    int rc = 0;
    for (int g = 0; g < G && rc == 0; g++) {
        int m = 0;
        for (int i = 0; i < count; i++)
            if (lab[i] == g)
                memcpy(buf + (size_t)m++ * POSE_D, poses + (size_t)i * POSE_D,
                       POSE_D * sizeof(double));
        mx->count[g] = m;
        if (m < K + 2 || pose_pca_fit(buf, m, K, pm) != 0) {
            snprintf(msg, len, "mixture fit: component %d has %d poses, fewer than K + 2 = %d",
                     g, m, K + 2);
            rc = -1;
            break;
        }
        memcpy(mx->mean[g], pm->mean, sizeof mx->mean[g]);
        for (int k = 0; k < K; k++) {
            double l = pm->sd[k] * pm->sd[k] - pm->noise_var;
            double s = sqrt(l > 0 ? l : 0.0);
            for (int i = 0; i < POSE_D; i++) mx->W[g][k * POSE_D + i] = s * pm->basis[k * POSE_D + i];
        }
        mx->noise_var[g] = pm->noise_var;
    }
    free(lab);
    free(d2);
    free(buf);
    free(pm);
    return rc;
}

/* ---- the energy of one component ------------------------------------------ */

static int mix_value_grad(void *u, const double *x, const double *w, double *e, double *g) {
    const pose_mix_problem *mp = u;
    pose_shape sh = pose_mix_shape(mp->K, mp->g, w);
    return pose_shape_energy_eval(mp->cam, mp->frame, &sh, x, w, e, g, NULL, NULL, NULL, NULL);
}
static int mix_hess(void *u, const double *x, const double *w, double *H) {
    const pose_mix_problem *mp = u;
    pose_shape sh = pose_mix_shape(mp->K, mp->g, w);
    return pose_shape_energy_eval(mp->cam, mp->frame, &sh, x, w, NULL, NULL, H, NULL, NULL,
                                  NULL);
}
static int mix_vjp(void *u, const double *x, const double *w, const double *v, double *out) {
    const pose_mix_problem *mp = u;
    pose_shape sh = pose_mix_shape(mp->K, mp->g, w);
    int p = pose_mix_p(mp->G, mp->K);
    memset(out, 0, (size_t)p * sizeof(double));
    return pose_shape_energy_eval(mp->cam, mp->frame, &sh, x, w, NULL, NULL, NULL, v, out,
                                  out + pose_mix_offset(mp->K, mp->g));
}

wb_energy pose_mix_energy(const pose_mix_problem *mp) {
    wb_energy e;
    memset(&e, 0, sizeof e);
    e.n = mp->K + 4;
    e.p = pose_mix_p(mp->G, mp->K);
    e.user = (void *)mp;
    e.value_grad = mix_value_grad;
    e.hess = mix_hess;
    e.mixed_vjp = mix_vjp;
    return e;
}

/* ---- the multi-start inner solve ------------------------------------------ */

/* Solves frame fr under every component from the nstarts best yaws of the
   sweep (and from warm[g] when warm and warm_ok[g]); x[K+4], *gbest and
   *ebest receive the winner. warm (may be NULL) is updated to each
   component's best minimizer. Returns 0, or -1 when every solve failed (the
   first failure's message in msg, when msg is still empty). *solves and
   *unconv (solves stopped on a positive status) are counted. With warm,
   eg[G] (may be NULL) receives each component's lowest energy of this call
   (INFINITY: every solve failed), its minimizer being warm[g]. */
static int solve_frame(wb_solver *sv, const pose_camera *cam, const pose_frame *fr, int G,
                       int K, const double *w, int nstarts, double *warm, int *warm_ok,
                       double *eg_out, double *x, int *gbest, double *ebest, long long *solves,
                       int *unconv, char *msg, size_t len) {
    int n = K + 4;
    double x0[9 * (POSE_MKMAX + 4)], xs[POSE_MKMAX + 4];
    *ebest = INFINITY;
    *gbest = -1;
    for (int g = 0; g < G; g++) {
        pose_mix_problem mp = {cam, fr, G, K, g};
        wb_energy e = pose_mix_energy(&mp);
        wb_status r = wb_solver_set_energy(sv, &e);
        if (r != WB_OK) {
            if (msg[0] == 0)
                snprintf(msg, len, "wb_solver_set_energy: %s: %s", wb_status_str(r),
                         wb_solver_message(sv));
            continue;
        }
        pose_shape sh = pose_mix_shape(K, g, w);
        int ns = pose_shape_starts(cam, fr, &sh, w, SWEEP, nstarts > 8 ? 8 : nstarts, x0);
        if (warm && warm_ok[g]) memcpy(x0 + (size_t)ns++ * n, warm + (size_t)g * n,
                                       (size_t)n * sizeof(double));
        double eg = INFINITY;
        for (int k = 0; k < ns; k++) {
            memcpy(xs, x0 + (size_t)k * n, (size_t)n * sizeof(double));
            wb_info info;
            r = wb_solve(sv, w, xs, &info);
            (*solves)++;
            if (r > 0) (*unconv)++;
            if (r < 0) {
                if (msg[0] == 0)
                    snprintf(msg, len, "component %d, start %d: wb_solve: %s: %s", g, k,
                             wb_status_str(r), wb_solver_message(sv));
                continue;
            }
            if (!isfinite(info.energy)) continue;
            if (info.energy < eg) {
                eg = info.energy;
                if (warm) {
                    memcpy(warm + (size_t)g * n, xs, (size_t)n * sizeof(double));
                    warm_ok[g] = 1;
                }
            }
            if (info.energy < *ebest) {
                *ebest = info.energy;
                *gbest = g;
                memcpy(x, xs, (size_t)n * sizeof(double));
            }
        }
        if (eg_out) eg_out[g] = eg;
    }
    return *gbest >= 0 ? 0 : -1;
}

/* ---- evaluation ------------------------------------------------------------ */

int pose_mix_evaluate(const pose_camera *cam, const pose_frame *frames, int count, int G, int K,
                      const double *w, int nstarts, int threads, pose_mix_eval *out,
                      double *pred, char *msg, size_t len) {
    memset(out, 0, sizeof *out);
    msg[0] = 0;
    if (count < 1 || nstarts < 1 || G < 1 || G > POSE_GMAX || K < 1 || K > POSE_MKMAX) {
        snprintf(msg, len, "pose_mix_evaluate: empty set, nstarts < 1 or bad G, K");
        return WB_EINVAL;
    }
    double t0 = pose_now_s();
    double *mp = calloc((size_t)count * 2, sizeof(double));
    int *ok = calloc((size_t)count, sizeof(int));
    if (!mp || !ok) {
        free(mp);
        free(ok);
        snprintf(msg, len, "pose_mix_evaluate: out of memory");
        return WB_ENOMEM;
    }
    long long solves = 0;
    int unconverged = 0, err = 0;
#ifdef _OPENMP
    int nth = threads > 0 ? threads : omp_get_max_threads();
#pragma omp parallel num_threads(nth) reduction(+ : solves, unconverged)
#else
    (void)threads;
#endif
    {
        wb_settings st;
        pose_solver_settings(&st);
        pose_mix_problem p0 = {cam, &frames[0], G, K, 0};
        wb_energy e0 = pose_mix_energy(&p0);
        wb_solver *sv = NULL;
        wb_status cs = wb_solver_create(&sv, &e0, &st);
        char emsg[200] = "";
        if (cs != WB_OK) {
#ifdef _OPENMP
#pragma omp critical(pose_mix_msg)
#endif
            {
                err = cs;
                snprintf(msg, len, "wb_solver_create: %s", wb_status_str(cs));
            }
        }
        double x[POSE_MKMAX + 4];
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (int i = 0; i < count; i++) {
            if (!sv) continue;
            int g;
            double e;
            emsg[0] = 0;
            int r = solve_frame(sv, cam, &frames[i], G, K, w, nstarts, NULL, NULL, NULL, x, &g, &e,
                                &solves, &unconverged, emsg, sizeof emsg);
            if (emsg[0]) {
#ifdef _OPENMP
#pragma omp critical(pose_mix_msg)
#endif
                if (!out->first_error[0])
                    snprintf(out->first_error, sizeof out->first_error, "frame %d: %s", i,
                             emsg);
            }
            if (r != 0) {
                if (pred)
                    for (int k = 0; k < POSE_D; k++) pred[(size_t)i * POSE_D + k] = NAN;
                continue;
            }
            double J[POSE_D];
            pose_shape sh = pose_mix_shape(K, g, w);
            pose_shape_predict(&sh, x, J);
            if (pred) memcpy(pred + (size_t)i * POSE_D, J, sizeof J);
            mp[2 * i] = pose_mpjpe(J, frames[i].gt);
            mp[2 * i + 1] = pose_pa_mpjpe(J, frames[i].gt);
            ok[i] = 1 + g;
        }
        wb_solver_destroy(sv);
    }
    if (err) {
        free(mp);
        free(ok);
        return err;
    }
    int good = 0, na[POSE_REAL_ACTIONS] = {0};
    for (int i = 0; i < count; i++) {
        if (!ok[i]) {
            out->failed++;
            continue;
        }
        good++;
        out->component_frames[ok[i] - 1]++;
        out->mpjpe += mp[2 * i];
        out->pa_mpjpe += mp[2 * i + 1];
        int a = frames[i].action;
        if (a >= 0 && a < POSE_REAL_ACTIONS) {
            na[a]++;
            out->action_mpjpe[a] += mp[2 * i];
            out->action_pa[a] += mp[2 * i + 1];
        }
    }
    out->mpjpe = good ? out->mpjpe / good : NAN;
    out->pa_mpjpe = good ? out->pa_mpjpe / good : NAN;
    for (int a = 0; a < POSE_REAL_ACTIONS; a++) {
        out->action_frames[a] = na[a];
        out->action_mpjpe[a] = na[a] ? out->action_mpjpe[a] / na[a] : NAN;
        out->action_pa[a] = na[a] ? out->action_pa[a] / na[a] : NAN;
    }
    out->solves = solves;
    out->unconverged = unconverged;
    out->seconds = pose_now_s() - t0;
    free(mp);
    free(ok);
    return WB_OK;
}

/* ---- training -------------------------------------------------------------- */

/* The gradient gb[p] of one frame's loss (*loss), given each component's
 * minimizer xg[g*n] and minimum eg[g] (INFINITY: none) and the winner
 * gbest. Hard minimum (T = 0): the winner's dL/dw|_x - B'(H + lambda I)^-1
 * dL/dx. Soft minimum (T > 0) over the components' minima:
 *
 *   L = sum_g pi_g L_g,   pi = softmax(-E*_g / T),
 *   dL/dw = sum_g pi_g dL_g/dw - (1/T) sum_g pi_g (L_g - L) dE*_g/dw,
 *
 * dE*_g/dw = dE_g/dw at x_g* (the envelope theorem: grad_x E_g = 0 there).
 * iv[p] is scratch. Returns 1 (used), 0 (skipped: a derivative failed) or
 * -1 (refused: WB_ESINGULAR); *curv the smallest curvature of H + lambda I
 * met. */
int pose_mix_frame_grad(wb_solver *s, const pose_camera *cam, const pose_frame *fr, int G, int K,
                        const double *w, double T, const double *xg, const double *eg, int gbest,
                        double *gb, double *iv, double *loss, double *curv) {
    const int n = K + 4, p = pose_mix_p(G, K), nb = POSE_D * (K + 1);
    double pi[POSE_GMAX] = {0}, Lg[POSE_GMAX] = {0}, dl[POSE_MKMAX + 4];
    double dsh[POSE_D * (POSE_MKMAX + 1)], ew[POSE_P];
    if (T > 0) { /* softmax, shifted by the lowest energy */
        double z = 0.0;
        for (int g = 0; g < G; g++) {
            pi[g] = isfinite(eg[g]) ? exp(-(eg[g] - eg[gbest]) / T) : 0.0;
            z += pi[g];
        }
        for (int g = 0; g < G; g++) pi[g] /= z;
    } else {
        pi[gbest] = 1.0;
    }
    memset(gb, 0, (size_t)p * sizeof(double));
    *loss = 0.0;
    *curv = INFINITY;
    for (int g = 0; g < G; g++) {
        if (pi[g] < 1e-12) continue;
        const double *x = xg + (size_t)g * n;
        pose_shape sh = pose_mix_shape(K, g, w);
        pose_mix_problem mp = {cam, fr, G, K, g};
        wb_energy en = pose_mix_energy(&mp);
        Lg[g] = pose_shape_loss(&sh, fr, x, dl, dsh);
        *loss += pi[g] * Lg[g];
        wb_status r = wb_solver_set_energy(s, &en);
        if (r == WB_OK) r = wb_implicit_vjp_at(s, w, x, dl, iv);
        if (r == WB_ESINGULAR) return -1;
        if (r < 0) return 0;
        wb_deriv_info di;
        wb_solver_deriv_info(s, &di);
        if (di.min_curvature > 0) *curv = fmin(*curv, di.min_curvature);
        double *blk = gb + pose_mix_offset(K, g);
        for (int k = 0; k < p; k++) gb[k] += pi[g] * iv[k];
        for (int k = 0; k < nb; k++) blk[k] += pi[g] * dsh[k];
    }
    if (T > 0)
        for (int g = 0; g < G; g++) {
            if (pi[g] < 1e-12) continue;
            pose_shape sh = pose_mix_shape(K, g, w);
            if (pose_shape_energy_dw(cam, fr, &sh, xg + (size_t)g * n, w, NULL, ew, dsh) != 0)
                return 0;
            double c = -pi[g] * (Lg[g] - *loss) / T;
            double *blk = gb + pose_mix_offset(K, g);
            for (int k = 0; k < POSE_P; k++) gb[k] += c * ew[k];
            for (int k = 0; k < nb; k++) blk[k] += c * dsh[k];
        }
    if (!isfinite(*curv)) *curv = 0.0;
    return 1;
}

void pose_mix_opts_default(pose_mix_opts *o) {
    o->lambda = 1e-2;
    o->lr = 0.05;
    o->lr_shape = 1.0;
    o->epochs = 8;
    o->batch = 8;
    o->threads = 0;
    o->seed = 1;
    o->learn = POSE_LEARN_ALL;
    o->starts = 1;
    o->soft_t = 0.0;
    o->trace = NULL;
    o->trace_max = 0;
}

int pose_mix_train_steps(int count, const pose_mix_opts *o) {
    int b = o->batch < count ? o->batch : count;
    return o->epochs * ((count + b - 1) / b);
}

/* the group of parameter k: POSE_LEARN_WEIGHTS, _MEAN or _BASIS */
static int group_of(int K, int k) {
    if (k < POSE_P) return POSE_LEARN_WEIGHTS;
    int r = (k - POSE_P) % (POSE_D * (K + 1));
    return r < POSE_D ? POSE_LEARN_MEAN : POSE_LEARN_BASIS;
}

int pose_mix_learned_count(int G, int K, unsigned learn) {
    int p = pose_mix_p(G, K), c = 0;
    for (int k = 0; k < p; k++) c += (group_of(K, k) & learn) != 0;
    return c;
}

int pose_mix_train(const pose_camera *cam, const pose_frame *frames, int count, int G, int K,
                   double *w, const pose_mix_opts *o, pose_mix_result *res, char *msg,
                   size_t len) {
    memset(res, 0, sizeof *res);
    msg[0] = 0;
    const int n = K + 4, p = pose_mix_p(G, K);
    if (count < 1 || G < 1 || G > POSE_GMAX || K < 1 || K > POSE_MKMAX || o->batch < 1 ||
        o->epochs < 1 || !(o->lambda >= 0) || !(o->soft_t >= 0) || !(o->lr > 0) || !(o->lr_shape > 0)) {
        snprintf(msg, len, "pose_mix_train: bad arguments");
        return WB_EINVAL;
    }
#ifdef _OPENMP
    int nth = o->threads > 0 ? o->threads : omp_get_max_threads();
#else
    int nth = 1;
#endif
    const int B = o->batch < count ? o->batch : count;
    double *grad = calloc((size_t)B * p, sizeof(double));
    double *lossv = calloc((size_t)B, sizeof(double));
    int *used = calloc((size_t)B, sizeof(int)); /* 1 used, 0 skipped, -1 refused */
    double *curv = calloc((size_t)B, sizeof(double)); /* sigma of H + lambda I */
    double *warm = calloc((size_t)count * G * n, sizeof(double));
    int *warm_ok = calloc((size_t)count * G, sizeof(int));
    int *order = malloc((size_t)count * sizeof(int));
    double *m1 = calloc((size_t)p, sizeof(double)), *m2 = calloc((size_t)p, sizeof(double));
    double *gsum = calloc((size_t)p, sizeof(double));
    wb_solver **sv = calloc((size_t)nth, sizeof(wb_solver *));
    int rc = WB_OK;
    if (!grad || !lossv || !used || !curv || !warm || !warm_ok || !order || !m1 || !m2 || !gsum || !sv) {
        snprintf(msg, len, "pose_mix_train: out of memory");
        rc = WB_ENOMEM;
        goto done;
    }
    wb_settings st;
    pose_solver_settings(&st);
    st.lambda = o->lambda;
    pose_mix_problem p0 = {cam, &frames[0], G, K, 0};
    wb_energy e0 = pose_mix_energy(&p0);
    for (int t = 0; t < nth; t++) {
        wb_status cs = wb_solver_create(&sv[t], &e0, &st);
        if (cs != WB_OK) {
            snprintf(msg, len, "wb_solver_create: %s", wb_status_str(cs));
            rc = cs;
            goto done;
        }
    }
    for (int i = 0; i < count; i++) order[i] = i;
    uint64_t rng = (uint64_t)o->seed * 0xD1B54A32D192ED03ULL + 5;
    const int steps_per_epoch = (count + B - 1) / B, total = o->epochs * steps_per_epoch;
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    double lo[POSE_P], hi[POSE_P];
    pose_w_bounds(lo, hi);
    if (o->trace && o->trace_max > 0) {
        memcpy(o->trace, w, POSE_P * sizeof(double));
        res->trace_rows = 1;
    }
    double t0 = pose_now_s(), epoch_loss = 0.0;
    int epoch_used = 0;
    long long step = 0;
    for (int ep = 0; ep < o->epochs; ep++) {
        for (int i = count - 1; i > 0; i--) { /* Fisher-Yates */
            int j = (int)(pose_rand(&rng) * (i + 1));
            int tmp = order[i];
            order[i] = order[j];
            order[j] = tmp;
        }
        epoch_loss = 0.0;
        epoch_used = 0;
        for (int s0 = 0; s0 < count; s0 += B, step++) {
            int nb = count - s0 < B ? count - s0 : B;
            long long solves = 0;
            int unconv = 0;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nth) schedule(dynamic, 1) reduction(+ : solves, unconv)
#endif
            for (int b = 0; b < nb; b++) {
#ifdef _OPENMP
                wb_solver *s = sv[omp_get_thread_num()];
#else
                wb_solver *s = sv[0];
#endif
                int i = order[s0 + b], g;
                const pose_frame *fr = &frames[i];
                double x[POSE_MKMAX + 4], e, eg[POSE_GMAX];
                char em[200] = "";
                used[b] = 0;
                if (solve_frame(s, cam, fr, G, K, w, o->starts, warm + (size_t)i * G * n,
                                warm_ok + (size_t)i * G, eg, x, &g, &e, &solves, &unconv, em,
                                sizeof em) != 0)
                    continue; /* skipped: every start failed */
                double *iv = malloc((size_t)p * sizeof(double));
                if (!iv) continue;
                used[b] = pose_mix_frame_grad(s, cam, fr, G, K, w, o->soft_t,
                                              warm + (size_t)i * G * n, eg, g,
                                              grad + (size_t)b * p, iv, &lossv[b], &curv[b]);
                free(iv);
            }
            res->inner_solves += solves;
            res->unconverged += unconv;
            memset(gsum, 0, (size_t)p * sizeof(double));
            int nu = 0;
            double lsum = 0.0;
            for (int b = 0; b < nb; b++) { /* in batch order: deterministic */
                if (used[b] == 0) res->skipped++;
                if (used[b] < 0) res->refused++;
                if (used[b] != 1) continue;
                if (curv[b] > 0) {
                    res->min_curvature = res->curv_n ? fmin(res->min_curvature, curv[b]) : curv[b];
                    res->curv_logsum += log(curv[b]);
                    res->curv_n++;
                }
                nu++;
                lsum += lossv[b];
                for (int k = 0; k < p; k++) gsum[k] += grad[(size_t)b * p + k];
            }
            epoch_loss += lsum;
            epoch_used += nu;
            if (nu == 0) continue;
            /* Adam with a cosine schedule to lr/10; per-group rates: the
               energy weights are O(1), the shape's entries are millimetres */
            double c = 0.5 * (1.0 + cos(POSE_PI * (double)step / total));
            double f = 0.1 + 0.9 * c;
            double bc1 = 1.0 - pow(b1, (double)(step + 1)), bc2 = 1.0 - pow(b2, (double)(step + 1));
            for (int k = 0; k < p; k++) {
                int gr = group_of(K, k);
                if (!(gr & o->learn)) continue;
                double gk = gsum[k] / nu;
                m1[k] = b1 * m1[k] + (1 - b1) * gk;
                m2[k] = b2 * m2[k] + (1 - b2) * gk * gk;
                double lr = (gr == POSE_LEARN_WEIGHTS ? o->lr : o->lr_shape) * f;
                w[k] -= lr * (m1[k] / bc1) / (sqrt(m2[k] / bc2) + eps);
                if (k < POSE_P) w[k] = fmin(fmax(w[k], lo[k]), hi[k]);
            }
            if (o->trace && res->trace_rows < o->trace_max)
                memcpy(o->trace + (size_t)res->trace_rows++ * POSE_P, w, POSE_P * sizeof(double));
        }
    }
    res->steps = step;
    res->final_loss = epoch_used ? epoch_loss / epoch_used : NAN;
    res->seconds = pose_now_s() - t0;
done:
    if (sv)
        for (int t = 0; t < nth; t++) wb_solver_destroy(sv[t]);
    free(sv);
    free(grad);
    free(lossv);
    free(used);
    free(curv);
    free(warm);
    free(warm_ok);
    free(order);
    free(m1);
    free(m2);
    free(gsum);
    return rc;
}
