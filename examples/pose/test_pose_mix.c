/* The mixture model of the pose example: its B'v over the mean and basis is
 * exact, the loss's direct derivative is exact, the total derivative the
 * training uses matches differences of L(x*(w), w), the ML fit is the PPCA
 * closed form, and training lowers the training loss. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include "pose_test.h"

#include <stdlib.h>
#include <unistd.h>

enum { G = 2, K = 3 };

static void small_config(pose_config *c) {
    pose_test_config(c, 2, 1, 600);
    c->mix_components = G;
    c->mix_basis = K;
}

/* m doubles from malloc (the caller frees them) */
static double *dalloc(size_t m) {
    double *a = malloc(m * sizeof(double));
    assert_non_null(a);
    return a;
}

/* a point near the frame's minimizer under component g (the sweep's best
   start, moved), and w = the generic mixture with perturbed weights */
static void setup(const pose_data *d, int frame, int g, uint64_t *rng, double *x, double *w) {
    double wg[POSE_P];
    pose_w_default(wg);
    for (int j = 0; j < POSE_P; j++) wg[j] *= 0.5 + wb_test_rand(rng);
    pose_mix_pack(&d->mix, wg, w);
    pose_shape sh = pose_mix_shape(K, g, w);
    assert_int_equal(pose_shape_starts(d->cam, &d->train[frame], &sh, w, 12, 1, x), 1);
    for (int k = 0; k < K; k++) x[k] = (wb_test_rand(rng) < 0.5 ? -1 : 1) * (0.3 + wb_test_rand(rng));
    x[K] += 0.2;
}

static void mixed_vjp_matches_five_point_differences(void **st) {
    (void)st;
    pose_data d;
    pose_test_data(&d, NULL, small_config);
    const int n = K + 4, p = pose_mix_p(G, K);
    assert_int_equal(p, POSE_P + G * POSE_D * (K + 1));
    uint64_t rng = 11;
    double *w = dalloc((size_t)p), *ww = dalloc((size_t)p), *bv = dalloc((size_t)p);
    for (int trial = 0; trial < 4; trial++) {
        int g = trial % G;
        double x[K + 4], v[K + 4], gr[4][K + 4], e;
        setup(&d, trial, g, &rng, x, w);
        pose_mix_problem mp = {d.cam, &d.train[trial], G, K, g};
        wb_energy en = pose_mix_energy(&mp);
        for (int i = 0; i < n; i++) v[i] = 2 * wb_test_rand(&rng) - 1;
        assert_int_equal(en.mixed_vjp(en.user, x, w, v, bv), 0);
        /* the gradient and H against the library's checker */
        wb_check_report rep;
        assert_int_equal(wb_check_energy(&en, NULL, x, w, &rep), WB_OK);
        assert_true(rep.value_grad_err >= 0 && rep.value_grad_err < 1e-4);
        assert_true(rep.hess_err >= 0 && rep.hess_err < 1e-4);
        /* B'v entry by entry: five-point differences of v' grad in w_k */
        double worst = 0.0, scale = 0.0;
        for (int k = 0; k < p; k++) scale = fmax(scale, fabs(bv[k]));
        for (int k = 0; k < p; k++) {
            double h = 1e-4 * fmax(fabs(w[k]), 0.1);
            static const double STEP[4] = {1, -1, 2, -2};
            double s[4];
            for (int q = 0; q < 4; q++) {
                memcpy(ww, w, (size_t)p * sizeof(double));
                ww[k] += STEP[q] * h;
                assert_int_equal(en.value_grad(en.user, x, ww, &e, gr[q]), 0);
                s[q] = 0.0;
                for (int i = 0; i < n; i++) s[q] += v[i] * gr[q][i];
            }
            double fd = (8 * (s[0] - s[1]) - (s[2] - s[3])) / (12 * h);
            worst = fmax(worst, fabs(fd - bv[k]));
            /* another component's block is exactly zero */
            int off = pose_mix_offset(K, g);
            if (k >= POSE_P && (k < off || k >= off + POSE_D * (K + 1)))
                assert_true(bv[k] == 0.0);
        }
        printf("    frame %d, component %d: max |B'v - fd| %.2e of max |B'v| %.2e "
               "(checker: grad %.1e, hess %.1e)\n", trial, g, worst, scale, rep.value_grad_err,
               rep.hess_err);
        assert_true(worst <= 1e-6 * scale);
    }
    free(w);
    free(ww);
    free(bv);
    pose_data_free(&d);
}

/* The soft minimum's loss L(w) = sum_g softmax(-E*_g/T)_g L_g(x*_g(w), w),
   every component solved from its part of xg (into it) */
static double soft_loss(wb_solver *sv, const pose_data *d, int frame, const double *w,
                        double *xg, double T) {
    double eg[G], Lg[G], z = 0.0, L = 0.0;
    for (int g = 0; g < G; g++) {
        pose_mix_problem mp = {d->cam, &d->train[frame], G, K, g};
        wb_energy en = pose_mix_energy(&mp);
        assert_int_equal(wb_solver_set_energy(sv, &en), WB_OK);
        wb_info info;
        assert_true(wb_solve(sv, w, xg + g * (K + 4), &info) >= 0);
        eg[g] = info.energy;
        pose_shape sh = pose_mix_shape(K, g, w);
        Lg[g] = pose_shape_loss(&sh, &d->train[frame], xg + g * (K + 4), NULL, NULL);
    }
    double emin = fmin(eg[0], eg[1]);
    for (int g = 0; g < G; g++) z += exp(-(eg[g] - emin) / T);
    for (int g = 0; g < G; g++) L += exp(-(eg[g] - emin) / T) / z * Lg[g];
    return L;
}

/* L(w) of a frame, every solve started afresh from x: under component g
   (x: K + 4 entries) or, g < 0, the soft minimum at temperature T (x: the
   G components' K + 4 each); xs: scratch of x's size */
typedef struct {
    wb_solver *sv;
    const pose_data *d;
    int frame, g;
    const double *x;
    double *xs, T;
} resolve_t;
static double resolved_loss(const resolve_t *c, const double *w) {
    if (c->g < 0) {
        memcpy(c->xs, c->x, G * (K + 4) * sizeof(double));
        return soft_loss(c->sv, c->d, c->frame, w, c->xs, c->T);
    }
    memcpy(c->xs, c->x, (K + 4) * sizeof(double));
    wb_info info;
    assert_true(wb_solve(c->sv, w, c->xs, &info) >= 0);
    pose_shape sh = pose_mix_shape(K, c->g, w);
    return pose_shape_loss(&sh, &c->d->train[c->frame], c->xs, NULL, NULL);
}

/* The gradient gw of that L against central differences at the m entries
   idx of w (p of them), re-solving at w +- h e_k: h large enough that the
   re-solve moves x by more than the rounding of E lets the solver resolve
   (E ~ 1e3) */
static void check_gradient(const char *what, const resolve_t *c, const double *w, int p,
                           const int *idx, int m, const double *gw) {
    double *ww = dalloc((size_t)p);
    for (int q = 0; q < m; q++) {
        int k = idx[q];
        double h = k < POSE_P ? 1e-3 * fmax(fabs(w[k]), 1.0) : 1e-2, L[2];
        for (int sg = 0; sg < 2; sg++) {
            memcpy(ww, w, (size_t)p * sizeof(double));
            ww[k] += sg ? -h : h;
            L[sg] = resolved_loss(c, ww);
        }
        double fd = (L[0] - L[1]) / (2 * h);
        printf("    %s[%d]: %.8e  differences %.8e\n", what, k, gw[k], fd);
        assert_true(fabs(fd - gw[k]) <= 1e-4 * fmax(fabs(fd), 1e-3));
    }
    free(ww);
}

/* dL/dw = dL/dw|_x - B'(H)^-1 dL/dx at x*(w) against central differences of
   L(x*(w), w), re-solving from x*(w) at w +- h e_k */
static void total_derivative_matches_differences_of_the_solution(void **st) {
    (void)st;
    pose_data d;
    pose_test_data(&d, NULL, small_config);
    const int p = pose_mix_p(G, K);
    double *w = dalloc((size_t)p), *gw = dalloc((size_t)p), *dsh = dalloc(POSE_D * (K + 1));
    uint64_t rng = 5;
    double x[K + 4], xs[K + 4], dl[K + 4];
    const int frame = 1, g = 0;
    setup(&d, frame, g, &rng, x, w);
    pose_mix_problem mp = {d.cam, &d.train[frame], G, K, g};
    wb_energy en = pose_mix_energy(&mp);
    wb_settings s;
    wb_settings_default(&s);
    s.grad_tol = 1e-10;
    s.max_iter = 200;
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &en, &s), WB_OK);
    wb_info info;
    assert_int_equal(wb_solve(sv, w, x, &info), WB_OK);
    pose_shape sh = pose_mix_shape(K, g, w);
    pose_shape_loss(&sh, &d.train[frame], x, dl, dsh);
    assert_int_equal(wb_implicit_vjp_at(sv, w, x, dl, gw), WB_OK);
    int off = pose_mix_offset(K, g);
    for (int i = 0; i < POSE_D * (K + 1); i++) gw[off + i] += dsh[i];
    /* a few entries of each group */
    const int idx[8] = {0, POSE_W_PRIOR, POSE_W_WIDTH, off + 3 * 10 + 2, off + 3 * 13,
                        off + POSE_D + 3 * 16 + 1, off + 2 * POSE_D + 3 * 3, off + POSE_D * K + 7};
    resolve_t rc = {sv, &d, frame, g, x, xs, 0.0};
    check_gradient("dL/dw", &rc, w, p, idx, 8, gw);
    wb_solver_destroy(sv);
    free(w);
    free(gw);
    free(dsh);
    pose_data_free(&d);
}

/* dE/dw at fixed x (ew, esh) against central differences of E */
static void energy_w_derivative_matches_differences(void **st) {
    (void)st;
    pose_data d;
    pose_test_data(&d, NULL, small_config);
    const int p = pose_mix_p(G, K), g = 1;
    double *w = dalloc((size_t)p), *esh = dalloc(POSE_D * (K + 1));
    uint64_t rng = 21;
    double x[K + 4], ew[POSE_P], e0;
    setup(&d, 0, g, &rng, x, w);
    pose_shape sh = pose_mix_shape(K, g, w);
    assert_int_equal(pose_shape_energy_dw(d.cam, &d.train[0], &sh, x, w, &e0, ew, esh), 0);
    int off = pose_mix_offset(K, g);
    for (int k = 0; k < POSE_P + POSE_D * (K + 1); k++) {
        int idx = k < POSE_P ? k : off + k - POSE_P;
        double keep = w[idx], h = 1e-4 * fmax(fabs(keep), 1.0), ep, em;
        w[idx] = keep + h;
        assert_int_equal(pose_shape_energy_dw(d.cam, &d.train[0], &sh, x, w, &ep, NULL, NULL), 0);
        w[idx] = keep - h;
        assert_int_equal(pose_shape_energy_dw(d.cam, &d.train[0], &sh, x, w, &em, NULL, NULL), 0);
        w[idx] = keep;
        double fd = (ep - em) / (2 * h), an = k < POSE_P ? ew[k] : esh[k - POSE_P];
        if (!(fabs(fd - an) <= 1e-5 * fmax(fabs(fd), 1.0)))
            fail_msg("dE/dw[%d]: %.10g, differences %.10g", idx, an, fd);
    }
    free(w);
    free(esh);
    pose_data_free(&d);
}

/* The soft minimum's gradient against central differences of its L(w),
   every component re-solved from its minimizer at w +- h e_k */
static void soft_minimum_gradient_matches_differences(void **st) {
    (void)st;
    pose_data d;
    pose_test_data(&d, NULL, small_config);
    const int n = K + 4, p = pose_mix_p(G, K), frame = 2;
    double *w = dalloc((size_t)p), *gb = dalloc((size_t)p), *iv = dalloc((size_t)p);
    uint64_t rng = 8;
    double xg[G * (K + 4)], x0[G * (K + 4)], eg[G];
    for (int g = 0; g < G; g++) setup(&d, frame, g, &rng, xg + g * n, w);
    double wg[POSE_P];
    pose_w_default(wg);
    pose_mix_pack(&d.mix, wg, w);
    pose_mix_problem p0 = {d.cam, &d.train[frame], G, K, 0};
    wb_energy e0 = pose_mix_energy(&p0);
    wb_settings s;
    wb_settings_default(&s);
    s.grad_tol = 1e-10;
    s.max_iter = 200;
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e0, &s), WB_OK);
    /* the minima at w; a temperature that mixes the two components */
    int gbest = 0;
    for (int g = 0; g < G; g++) {
        pose_mix_problem mp = {d.cam, &d.train[frame], G, K, g};
        wb_energy en = pose_mix_energy(&mp);
        assert_int_equal(wb_solver_set_energy(sv, &en), WB_OK);
        wb_info info;
        assert_int_equal(wb_solve(sv, w, xg + g * n, &info), WB_OK);
        eg[g] = info.energy;
        if (eg[g] < eg[gbest]) gbest = g;
    }
    double T = fmax(fabs(eg[1] - eg[0]), 1.0), loss, curv;
    printf("    component minima %.3f, %.3f; T = %.3f\n", eg[0], eg[1], T);
    assert_int_equal(pose_mix_frame_grad(sv, d.cam, &d.train[frame], G, K, w, T, xg, eg, gbest,
                                         gb, iv, &loss, &curv), 1);
    memcpy(x0, xg, sizeof x0);
    assert_true(fabs(soft_loss(sv, &d, frame, w, x0, T) - loss) < 1e-9 * loss);
    const int idx[6] = {3, POSE_W_PRIOR, POSE_W_WIDTH, pose_mix_offset(K, 0) + 3 * 12,
                        pose_mix_offset(K, 1) + 3 * 5 + 2, pose_mix_offset(K, 1) + POSE_D + 40};
    resolve_t rc = {sv, &d, frame, -1, xg, x0, T};
    check_gradient("soft dL/dw", &rc, w, p, idx, 6, gb);
    wb_solver_destroy(sv);
    free(w);
    free(gb);
    free(iv);
    pose_data_free(&d);
}

static void loss_shape_derivative_matches_differences(void **st) {
    (void)st;
    pose_data d;
    pose_test_data(&d, NULL, small_config);
    const int p = pose_mix_p(G, K);
    double *w = dalloc((size_t)p), *dsh = dalloc(POSE_D * (K + 1));
    uint64_t rng = 3;
    double x[K + 4];
    setup(&d, 2, 1, &rng, x, w);
    pose_shape sh = pose_mix_shape(K, 1, w);
    pose_shape_loss(&sh, &d.train[2], x, NULL, dsh);
    double *base = w + pose_mix_offset(K, 1);
    for (int i = 0; i < POSE_D * (K + 1); i++) {
        double keep = base[i], h = 1e-3;
        base[i] = keep + h;
        double lp = pose_shape_loss(&sh, &d.train[2], x, NULL, NULL);
        base[i] = keep - h;
        double lm = pose_shape_loss(&sh, &d.train[2], x, NULL, NULL);
        base[i] = keep;
        assert_true(fabs((lp - lm) / (2 * h) - dsh[i]) < 1e-7);
    }
    free(w);
    free(dsh);
    pose_data_free(&d);
}

/* One component is the PPCA fit itself: W's columns are the principal axes
   scaled by sqrt(lambda_k - sigma^2). */
static void one_component_fit_is_the_ppca_closed_form(void **st) {
    (void)st;
    enum { M = 400 };
    double *poses = dalloc((size_t)M * POSE_D);
    uint64_t rng = 9;
    for (int i = 0; i < M; i++) pose_kinematic_action(&rng, pose_bone_mm, i % 4, poses + (size_t)i * POSE_D);
    pose_mixture mx;
    pose_model pm;
    char msg[256];
    assert_int_equal(pose_mix_fit(poses, M, 1, 5, 1, &mx, msg, sizeof msg), 0);
    assert_int_equal(pose_pca_fit(poses, M, 5, &pm), 0);
    assert_int_equal(mx.count[0], M);
    for (int i = 0; i < POSE_D; i++) assert_true(fabs(mx.mean[0][i] - pm.mean[i]) < 1e-9);
    for (int k = 0; k < 5; k++) {
        double s = sqrt(pm.sd[k] * pm.sd[k] - pm.noise_var);
        for (int i = 0; i < POSE_D; i++)
            assert_true(fabs(mx.W[0][k * POSE_D + i] - s * pm.basis[k * POSE_D + i]) < 1e-9 * s);
    }
    /* three components on the 4 actions: every component populated, and a
       too-small data set is refused with a message */
    assert_int_equal(pose_mix_fit(poses, M, 3, 5, 1, &mx, msg, sizeof msg), 0);
    for (int g = 0; g < 3; g++) assert_true(mx.count[g] >= 7);
    assert_int_equal(pose_mix_fit(poses, 10, 3, 5, 1, &mx, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "poses"));
    free(poses);
}

static void training_lowers_the_training_loss(void **st) {
    (void)st;
    pose_config c;
    small_config(&c);
    c.actions = 2;
    pose_data d;
    char msg[256];
    assert_int_equal(pose_data_create(&d, &c, msg, sizeof msg), 0);
    const int p = pose_mix_p(G, K);
    double *w0 = dalloc((size_t)p), *w = dalloc((size_t)p);
    double wg[POSE_P];
    pose_w_default(wg);
    pose_mix_pack(&d.mix, wg, w0);
    pose_mix_opts o;
    pose_mix_opts_default(&o);
    o.epochs = 1;
    o.lr = 1e-12; /* one epoch that does not move: the loss at w0 */
    o.lr_shape = 1e-12;
    pose_mix_result r0, r1;
    memcpy(w, w0, (size_t)p * sizeof(double));
    assert_int_equal(pose_mix_train(d.cam, d.train, d.ntrain, G, K, w, &o, &r0, msg, sizeof msg),
                     WB_OK);
    pose_mix_opts_default(&o);
    o.epochs = 6;
    memcpy(w, w0, (size_t)p * sizeof(double));
    assert_int_equal(pose_mix_train(d.cam, d.train, d.ntrain, G, K, w, &o, &r1, msg, sizeof msg),
                     WB_OK);
    printf("    training loss %.2f -> %.2f mm (%lld solves, %lld skipped, %lld refused)\n",
           r0.final_loss, r1.final_loss, r1.inner_solves, r1.skipped, r1.refused);
    assert_true(r1.final_loss < 0.9 * r0.final_loss);
    /* bad arguments: a status and a message */
    o.batch = 0;
    assert_int_equal(pose_mix_train(d.cam, d.train, d.ntrain, G, K, w, &o, &r1, msg, sizeof msg),
                     WB_EINVAL);
    assert_true(msg[0] != 0);
    free(w0);
    free(w);
    pose_data_free(&d);
}

/* ---- the CSV reader ------------------------------------------------------ */

static char tmpdir[64];

static void path_in(char *out, size_t n, const char *name) {
    snprintf(out, n, "%s/%s", tmpdir, name);
}

static void write_text(const char *name, const char *text) {
    char p[128];
    path_in(p, sizeof p, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void csv_round_trip_of_generated_frames(void **st) {
    (void)st;
    pose_data d;
    pose_test_data(&d, NULL, small_config);
    char msg[256], pc[128], pd[128], pt[128];
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_pose_csvXXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    path_in(pc, sizeof pc, "cameras.csv");
    path_in(pd, sizeof pd, "detections.csv");
    path_in(pt, sizeof pt, "truth.csv");
    assert_int_equal(pose_write_csv(pc, pd, pt, d.cam, d.test, d.ntest, pose_action_name), 0);
    pose_real r;
    int rc = pose_read_csv(pc, pd, pt, 0.5, &r, msg, sizeof msg);
    if (rc) fail_msg("%s", msg);
    assert_int_equal(r.count, d.ntest);
    assert_int_equal(r.with_truth, d.ntest);
    for (int k = 0; k < POSE_C; k++) {
        assert_true(r.cam[k].f == d.cam[k].f && r.cam[k].cx == d.cam[k].cx);
        for (int i = 0; i < 9; i++) assert_true(r.cam[k].R[i] == d.cam[k].R[i]);
        for (int i = 0; i < 3; i++) assert_true(r.cam[k].C[i] == d.cam[k].C[i]);
    }
    /* every generated frame is found once, with its observations, its truth
       and its canonical pose (yaw from the hips: the generator's up to the
       pose's own hip angle) */
    for (int i = 0; i < d.ntest; i++) {
        const pose_frame *g = &d.test[i];
        int found = 0;
        for (int q = 0; q < r.count; q++) {
            const pose_frame *f = &r.frames[q];
            if (f->subject != g->subject || f->index != g->sequence * 100000 + g->index ||
                strcmp(r.action_name[f->action], pose_action_name[g->action]))
                continue;
            found++;
            for (int k = 0; k < POSE_C; k++)
                for (int j = 0; j < POSE_J; j++) {
                    assert_int_equal(f->vis[k][j], g->vis[k][j]);
                    assert_true(f->uv[k][j][0] == g->uv[k][j][0]);
                    assert_true(fabs(f->uv[k][j][1] - g->uv[k][j][1]) < 1e-9);
                }
            for (int j = 0; j < POSE_D; j++) assert_true(f->gt[j] == g->gt[j]);
            /* the canonical pose has the pose's shape: PA-MPJPE 0 */
            assert_true(pose_pa_mpjpe(f->canon, g->canon) < 1e-6);
            assert_true(fabs(f->canon[4] - -f->canon[13]) < 1e-9); /* hips on the y axis */
            assert_true(fabs(f->canon[3]) < 1e-9 && fabs(f->canon[12]) < 1e-9);
        }
        assert_int_equal(found, 1);
    }
    pose_real_free(&r);
    /* without the truth */
    rc = pose_read_csv(pc, pd, NULL, 0.5, &r, msg, sizeof msg);
    assert_int_equal(rc, 0);
    assert_int_equal(r.with_truth, 0);
    assert_true(isnan(r.frames[0].gt[0]));
    pose_real_free(&r);
    pose_data_free(&d);
}

/* writes text into `file` and expects the reader to refuse with `want` in
   its message */
static void expect_refused(const char *file, const char *text, const char *truth,
                           const char *want) {
    char pc[128], pd[128], msg[300];
    path_in(pc, sizeof pc, "cameras.csv");
    path_in(pd, sizeof pd, "bad.csv");
    write_text(file, text);
    pose_real r;
    assert_int_equal(pose_read_csv(pc, pd, truth, 0.5, &r, msg, sizeof msg), -1);
    if (!strstr(msg, want)) fail_msg("'%s' lacks '%s'", msg, want);
}

/* every bad file is refused with file:line and the reason */
static void csv_errors_name_file_and_line(void **st) {
    (void)st;
    char pc[128], pd[128], pt[128], msg[300];
    path_in(pc, sizeof pc, "cameras.csv");
    path_in(pd, sizeof pd, "bad.csv");
    path_in(pt, sizeof pt, "badtruth.csv");
    static const struct { const char *text, *want; } DET[] = {
        {"subject,action,frame,camera,joint,u,v,confidence\nS9,Walking,0,0,3,1,2\n",
         "bad.csv:2: expected 8 fields"},
        {"# a comment\nsubject,action,frame,camera,joint,u,v,confidence\n\nS2,Walking,0,0,3,1,2,1\n",
         "bad.csv:4: subject must be one of"},
        {"subject,action,frame,camera,joint,u,v,confidence\nS9,Walking,0,4,3,1,2,1\n",
         "bad.csv:2: camera must be 0 .. 3"},
        {"subject,action,frame,camera,joint,u,v,confidence\nS9,Walking,0,0,17,1,2,1\n",
         "bad.csv:2: joint must be 0 .. 16"},
        {"subject,action,frame,camera,joint,u,v,confidence\nS9,Walking,0,0,1,nan,2,1\n",
         "bad.csv:2: u, v and confidence must be finite"},
        {"subject,action,frame,camera,joint,u,v,confidence\nS9,Walking,0,0,1,1,2,1.5\n",
         "bad.csv:2: confidence must be in [0, 1]"},
        {"subject,action,frame,camera,joint,u,v,confidence\nS9,Walking,0,0,1,1,2,1\n"
         "S9,Walking,1,0,1,1,2,1\nS9,Walking,0,0,1,1,2,1\n", "bad.csv:4: camera 0, joint 1 of "
         "S9 Walking frame 0 already given on line 2"},
        {"subject,action,frame,camera,joint,u,v\n", "bad.csv:1: the header must be"},
        {"", "bad.csv: empty"},
        {"subject,action,frame,camera,joint,u,v,confidence\n", "bad.csv: no detections"}};
    for (size_t k = 0; k < sizeof DET / sizeof DET[0]; k++)
        expect_refused("bad.csv", DET[k].text, NULL, DET[k].want);
    /* the truth: an unknown frame, a duplicate joint, a frame lacking one */
    write_text("bad.csv", "subject,action,frame,camera,joint,u,v,confidence\n"
                          "S9,Walking,0,0,1,1,2,1\n");
    static const struct { const char *text, *want; } TR[] = {
        {"subject,action,frame,joint,x,y,z\nS9,Walking,5,0,1,2,3\n",
         "badtruth.csv:2: S9 Walking frame 5 has no detections"},
        {"subject,action,frame,joint,x,y,z\nS9,Walking,0,0,1,2,3\nS9,Walking,0,0,1,2,3\n",
         "badtruth.csv:3: joint 0 of S9 Walking frame 0 already given on line 2"},
        {"subject,action,frame,joint,x,y,z\nS9,Walking,0,0,1,2,3\nS9,Walking,0,1,1,2,3\n",
         "badtruth.csv:2: S9 Walking frame 0 lacks joint 2 (r_knee)"}};
    for (size_t k = 0; k < sizeof TR / sizeof TR[0]; k++)
        expect_refused("badtruth.csv", TR[k].text, pt, TR[k].want);
    /* cameras: not a rotation, a missing camera */
    expect_refused("cameras.csv", "camera,fx,fy,cx,cy,r11,r12,r13,r21,r22,r23,r31,r32,r33,Cx,Cy,Cz\n"
                   "0,1000,1000,500,500,1,0,0,0,1,0,0,0,2,0,0,0\n", NULL,
                   "cameras.csv:2: r11 .. r33 is not a rotation");
    expect_refused("cameras.csv", "camera,fx,fy,cx,cy,r11,r12,r13,r21,r22,r23,r31,r32,r33,Cx,Cy,Cz\n"
                   "0,1000,1000,500,500,1,0,0,0,1,0,0,0,1,0,0,0\n", NULL, "camera 1 is missing");
    pose_real r;
    /* fy != fx: v is rescaled onto the fx model */
    write_text("cameras.csv", "camera,fx,fy,cx,cy,r11,r12,r13,r21,r22,r23,r31,r32,r33,Cx,Cy,Cz\n"
               "0,1000,1010,500,400,1,0,0,0,1,0,0,0,1,0,0,0\n1,1,1,0,0,1,0,0,0,1,0,0,0,1,0,0,0\n"
               "2,1,1,0,0,1,0,0,0,1,0,0,0,1,0,0,0\n3,1,1,0,0,1,0,0,0,1,0,0,0,1,0,0,0\n");
    write_text("bad.csv", "subject,action,frame,camera,joint,u,v,confidence\n"
                          "S11,Sitting,7,0,1,600,602,1\n");
    assert_int_equal(pose_read_csv(pc, pd, NULL, 0.5, &r, msg, sizeof msg), 0);
    /* a point at Y = (100, 202, 1000) projects to v = 400 + 1010 * 0.202 =
       604.02 with fy, and to 400 + 1000 * 0.202 = 602 with fx */
    assert_true(fabs(r.frames[0].uv[0][1][1] - (400 + (602 - 400) * 1000.0 / 1010.0)) < 1e-12);
    assert_int_equal(r.frames[0].subject, 6);
    assert_int_equal(r.frames[0].index, 7);
    pose_real_free(&r);
    const char *names[] = {"cameras.csv", "detections.csv", "truth.csv", "bad.csv",
                           "badtruth.csv"};
    for (int k = 0; k < 5; k++) {
        char p[128];
        path_in(p, sizeof p, names[k]);
        remove(p);
    }
    rmdir(tmpdir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mixed_vjp_matches_five_point_differences),
        cmocka_unit_test(total_derivative_matches_differences_of_the_solution),
        cmocka_unit_test(energy_w_derivative_matches_differences),
        cmocka_unit_test(soft_minimum_gradient_matches_differences),
        cmocka_unit_test(loss_shape_derivative_matches_differences),
        cmocka_unit_test(one_component_fit_is_the_ppca_closed_form),
        cmocka_unit_test(training_lowers_the_training_loss),
        cmocka_unit_test(csv_round_trip_of_generated_frames),
        cmocka_unit_test(csv_errors_name_file_and_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
