/* The mixture model of the pose example: its B'v over the mean and basis is
 * exact, the loss's direct derivative is exact, the total derivative the
 * training uses matches differences of L(x*(w), w), the ML fit is the PPCA
 * closed form, and training lowers the training loss. */
#include "wb_test.h"

#include "pose.h"

enum { G = 2, K = 3 };

static void small_config(pose_config *c) {
    pose_config_default(c);
    c->train_subjects = 2;
    c->test_subjects = 1;
    c->sequences = 1;
    c->frames = 3;
    c->population = 600;
    c->mix_components = G;
    c->mix_basis = K;
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
    pose_config c;
    small_config(&c);
    pose_data d;
    char msg[256];
    assert_int_equal(pose_data_create(&d, &c, msg, sizeof msg), 0);
    const int n = K + 4, p = pose_mix_p(G, K);
    assert_int_equal(p, POSE_P + G * POSE_D * (K + 1));
    uint64_t rng = 11;
    double *w = malloc((size_t)p * sizeof(double)), *ww = malloc((size_t)p * sizeof(double));
    double *bv = malloc((size_t)p * sizeof(double));
    assert_non_null(w);
    assert_non_null(ww);
    assert_non_null(bv);
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

/* dL/dw = dL/dw|_x - B'(H)^-1 dL/dx at x*(w) against central differences of
   L(x*(w), w), re-solving from x*(w) at w +- h e_k */
static void total_derivative_matches_differences_of_the_solution(void **st) {
    (void)st;
    pose_config c;
    small_config(&c);
    pose_data d;
    char msg[256];
    assert_int_equal(pose_data_create(&d, &c, msg, sizeof msg), 0);
    const int n = K + 4, p = pose_mix_p(G, K);
    double *w = malloc((size_t)p * sizeof(double)), *ww = malloc((size_t)p * sizeof(double));
    double *gw = malloc((size_t)p * sizeof(double)), *dsh = malloc(POSE_D * (K + 1) * sizeof(double));
    assert_non_null(w);
    assert_non_null(ww);
    assert_non_null(gw);
    assert_non_null(dsh);
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
    for (int q = 0; q < 8; q++) {
        int k = idx[q];
        /* a step large enough that the re-solve moves x by more than the
           rounding of E lets the solver resolve (E ~ 1e3) */
        double h = k < POSE_P ? 1e-3 * fmax(fabs(w[k]), 1.0) : 1e-2, L[2];
        for (int sg = 0; sg < 2; sg++) {
            memcpy(ww, w, (size_t)p * sizeof(double));
            ww[k] += sg ? -h : h;
            memcpy(xs, x, (size_t)n * sizeof(double));
            int rs = wb_solve(sv, ww, xs, &info);
            assert_true(rs >= 0);
            pose_shape s2 = pose_mix_shape(K, g, ww);
            L[sg] = pose_shape_loss(&s2, &d.train[frame], xs, NULL, NULL);
        }
        double fd = (L[0] - L[1]) / (2 * h);
        printf("    dL/dw[%d]: %.8e  differences %.8e\n", k, gw[k], fd);
        assert_true(fabs(fd - gw[k]) <= 1e-4 * fmax(fabs(fd), 1e-3));
    }
    wb_solver_destroy(sv);
    free(w);
    free(ww);
    free(gw);
    free(dsh);
    pose_data_free(&d);
}

static void loss_shape_derivative_matches_differences(void **st) {
    (void)st;
    pose_config c;
    small_config(&c);
    pose_data d;
    char msg[256];
    assert_int_equal(pose_data_create(&d, &c, msg, sizeof msg), 0);
    const int p = pose_mix_p(G, K);
    double *w = malloc((size_t)p * sizeof(double)), *dsh = malloc(POSE_D * (K + 1) * sizeof(double));
    assert_non_null(w);
    assert_non_null(dsh);
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
    double *poses = malloc((size_t)M * POSE_D * sizeof(double));
    assert_non_null(poses);
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
    double *w0 = malloc((size_t)p * sizeof(double)), *w = malloc((size_t)p * sizeof(double));
    assert_non_null(w0);
    assert_non_null(w);
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mixed_vjp_matches_five_point_differences),
        cmocka_unit_test(total_derivative_matches_differences_of_the_solution),
        cmocka_unit_test(loss_shape_derivative_matches_differences),
        cmocka_unit_test(one_component_fit_is_the_ppca_closed_form),
        cmocka_unit_test(training_lowers_the_training_loss),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
