/* The pose example: its energy's derivatives are exact, its metrics and
 * generator behave, and training lowers the held-out error. */
#include "pose_test.h"

/* A small world: 3 training subjects, 2 held-out, few frames. */
static void small_config(pose_config *c) {
    pose_test_config(c, 3, 2, 1500);
}

/* Five-point differences of the gradient in x (H) and in w (B): exact
   derivatives agree to ~1e-10, far below what central differences show. */
static void five_point(const wb_energy *e, const double *x, const double *w, int n,
                       double *Hfd, double *Bfd) {
    double xx[POSE_KMAX + 4], ww[POSE_P], g[4][POSE_KMAX + 4], en;
    for (int j = 0; j < n + POSE_P; j++) {
        int in_x = j < n, k = in_x ? j : j - n;
        double h = 1e-4 * (in_x ? 1.0 : fmax(fabs(w[k]), 0.1));
        static const double STEP[4] = {1, -1, 2, -2};
        for (int s = 0; s < 4; s++) {
            memcpy(xx, x, (size_t)n * sizeof(double));
            memcpy(ww, w, sizeof ww);
            if (in_x) xx[k] += STEP[s] * h;
            else ww[k] += STEP[s] * h;
            assert_int_equal(e->value_grad(e->user, xx, ww, &en, g[s]), 0);
        }
        double *col = in_x ? Hfd + (size_t)k * n : Bfd + (size_t)k * n;
        for (int i = 0; i < n; i++)
            col[i] = (8 * (g[0][i] - g[1][i]) - (g[2][i] - g[3][i])) / (12 * h);
    }
}

static void energy_derivatives_pass_the_checker(void **st) {
    (void)st;
    pose_config c;
    pose_data d;
    pose_test_data(&d, &c, small_config);
    pose_set s;
    assert_int_equal(pose_set_init(&s, &d.model, d.cam, d.train, d.ntrain), 0);
    uint64_t rng = 7;
    int n = pose_n(&d.model);
    assert_int_equal(n, c.basis + 4);
    for (int trial = 0; trial < 6; trial++) {
        const pose_problem *pb = &s.pb[trial * 5 % s.count];
        wb_energy e = pose_energy(pb);
        double x[POSE_KMAX + 4], w[POSE_P];
        assert_int_equal(pose_starts(pb, NULL, 12, 1, x), 1);
        /* a point away from the minimizer, and random positive parameters;
           trial 0 at the untrained w */
        for (int k = 0; k < n - 4; k++)
            x[k] = (wb_test_rand(&rng) < 0.5 ? -1 : 1) * (0.3 + 0.9 * wb_test_rand(&rng));
        x[n - 4] += 0.3 * (2 * wb_test_rand(&rng) - 1);
        for (int i = 0; i < 3; i++) x[n - 3 + i] += 0.05 * (2 * wb_test_rand(&rng) - 1);
        /* the checker's steps are relative, h_i = 6e-6 max(|x_i|, 1e-6
           max|x|): a coordinate near 0 gets a step that drowns in rounding,
           so keep every |x_i| >= 0.2 */
        for (int k = 0; k < n; k++)
            if (fabs(x[k]) < 0.2) x[k] = x[k] < 0 ? -0.2 : 0.2;
        pose_w_default(w);
        if (trial > 0)
            for (int j = 0; j < POSE_P; j++) w[j] *= 0.3 + 1.7 * wb_test_rand(&rng);
        wb_check_report rep;
        assert_int_equal(wb_check_energy(&e, NULL, x, w, &rep), WB_OK);
        printf("    frame %d: value_grad %.2e  hess %.2e  mixed %.2e  mixed_vjp %.2e\n",
               trial, rep.value_grad_err, rep.hess_err, rep.mixed_err, rep.mixed_vjp_err);
        /* The checker's central differences resolve this energy to 1e-7 ..
           1e-5 only (measured over 36 frames): its Hessian spans 7 orders of
           magnitude (translation in metres and yaw against whitened PCA
           coefficients), and an entry near the 1e-6 max|H| floor is judged
           relative to itself. A wrong derivative shows O(1); the five-point
           check below pins the derivatives down to ~1e-9. */
        assert_true(rep.value_grad_err >= 0 && rep.value_grad_err < 1e-4);
        assert_true(rep.hess_err >= 0 && rep.hess_err < 1e-4);
        assert_true(rep.mixed_err >= 0 && rep.mixed_err < 1e-4);
        assert_true(rep.mixed_vjp_err >= 0 && rep.mixed_vjp_err < 1e-4);

        double H[(POSE_KMAX + 4) * (POSE_KMAX + 4)], Hfd[(POSE_KMAX + 4) * (POSE_KMAX + 4)];
        double B[(POSE_KMAX + 4) * POSE_P], Bfd[(POSE_KMAX + 4) * POSE_P], o[POSE_P], v[40];
        assert_int_equal(e.hess(e.user, x, w, H), 0);
        assert_int_equal(e.mixed(e.user, x, w, B), 0);
        five_point(&e, x, w, n, Hfd, Bfd);
        double eh = 0.0, eb = 0.0, ev = 0.0;
        for (int j = 0; j < n; j++)
            for (int i = 0; i < n; i++) /* relative to the diagonal's scale */
                eh = fmax(eh, fabs(H[j * n + i] - Hfd[j * n + i]) /
                                  sqrt(fabs(H[i * n + i] * H[j * n + j])));
        for (int j = 0; j < POSE_P; j++) {
            double cm = 0.0;
            for (int i = 0; i < n; i++) cm = fmax(cm, fabs(Bfd[j * n + i]));
            for (int i = 0; i < n; i++)
                eb = fmax(eb, fabs(B[j * n + i] - Bfd[j * n + i]) / fmax(cm, 1e-300));
        }
        /* mixed_vjp is B' v */
        for (int i = 0; i < n; i++) v[i] = wb_test_rand(&rng) - 0.5;
        assert_int_equal(e.mixed_vjp(e.user, x, w, v, o), 0);
        for (int j = 0; j < POSE_P; j++) {
            double r = 0.0, sc = 0.0;
            for (int i = 0; i < n; i++) {
                r += B[j * n + i] * v[i];
                sc += fabs(B[j * n + i] * v[i]);
            }
            ev = fmax(ev, fabs(o[j] - r) / fmax(sc, 1e-300));
        }
        printf("             five-point: hess %.2e  mixed %.2e; mixed_vjp vs mixed %.2e\n",
               eh, eb, ev);
        assert_true(eh < 1e-7);
        assert_true(eb < 1e-7);
        assert_true(ev < 1e-12);
    }
    pose_set_free(&s);
    pose_data_free(&d);
}

/* dL/dx of the training loss against central differences */
static void loss_gradient_matches_differences(void **st) {
    (void)st;
    pose_data d;
    pose_test_data(&d, NULL, small_config);
    pose_set s;
    assert_int_equal(pose_set_init(&s, &d.model, d.cam, d.train, d.ntrain), 0);
    const pose_problem *pb = &s.pb[3];
    int n = pose_n(&d.model);
    double x[POSE_KMAX + 4], g[POSE_KMAX + 4];
    uint64_t rng = 11;
    for (int k = 0; k < n; k++) x[k] = 2 * wb_test_rand(&rng) - 1;
    pose_loss(pb, x, g);
    for (int k = 0; k < n; k++) {
        double h = 1e-5, xp[POSE_KMAX + 4], xm[POSE_KMAX + 4];
        memcpy(xp, x, sizeof x);
        memcpy(xm, x, sizeof x);
        xp[k] += h;
        xm[k] -= h;
        double fd = (pose_loss(pb, xp, NULL) - pose_loss(pb, xm, NULL)) / (2 * h);
        wb_assert_close(g[k], fd, 1e-6, 1e-6);
    }
    pose_set_free(&s);
    pose_data_free(&d);
}

static void procrustes_removes_a_similarity_transform(void **st) {
    (void)st;
    double gt[POSE_D], pred[POSE_D];
    uint64_t rng = 3;
    pose_kinematic_sample(&rng, pose_bone_mm, gt);
    /* pred = 1.2 R gt + t, R about an oblique axis */
    double a = 0.7, c = cos(a), s = sin(a);
    double R[9] = {c, -s, 0, s, c, 0, 0, 0, 1}, b = 0.4, cb = cos(b), sb = sin(b);
    double Rx[9] = {1, 0, 0, 0, cb, -sb, 0, sb, cb}, M[9];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            M[3 * i + j] = R[3 * i] * Rx[j] + R[3 * i + 1] * Rx[3 + j] + R[3 * i + 2] * Rx[6 + j];
    for (int j = 0; j < POSE_J; j++)
        for (int i = 0; i < 3; i++)
            pred[3 * j + i] = 1.2 * (M[3 * i] * gt[3 * j] + M[3 * i + 1] * gt[3 * j + 1] +
                                     M[3 * i + 2] * gt[3 * j + 2]) + 100.0 * (i + 1);
    wb_assert_close(pose_pa_mpjpe(pred, gt), 0.0, 1e-8, 0);
    assert_true(pose_mpjpe(pred, gt) > 50.0);
    /* root alignment: a translated copy has zero MPJPE */
    for (int k = 0; k < POSE_D; k++) pred[k] = gt[k] + (k % 3 == 2 ? 500.0 : -30.0);
    wb_assert_close(pose_mpjpe(pred, gt), 0.0, 1e-9, 0);
}

static void pca_basis_is_orthonormal_with_decaying_variances(void **st) {
    (void)st;
    pose_data d;
    pose_test_data(&d, NULL, small_config);
    const pose_model *m = &d.model;
    for (int a = 0; a < m->K; a++) {
        for (int b = 0; b < m->K; b++) {
            double dot = 0.0;
            for (int i = 0; i < POSE_D; i++)
                dot += m->basis[a * POSE_D + i] * m->basis[b * POSE_D + i];
            wb_assert_close(dot, a == b ? 1.0 : 0.0, 1e-10, 0);
        }
        if (a > 0) assert_true(m->sd[a] <= m->sd[a - 1]);
    }
    assert_true(m->sd[m->K - 1] > 0 && m->sd[0] > 5 * m->sd[m->K - 1]);
    assert_true(m->explained > 0.9 && m->explained <= 1.0);
    pose_data_free(&d);
}

/* Noise-free, outlier-free observations of a pose inside the model: the
   multi-start solve recovers it, yaw included. */
static void clean_data_is_reconstructed_from_the_yaw_sweep(void **st) {
    (void)st;
    pose_config c;
    small_config(&c);
    c.noise_min_px = c.noise_max_px = 0.0;
    c.outlier_rate = c.missing_rate = 0.0;
    pose_data d;
    char msg[256];
    assert_int_equal(pose_data_create(&d, &c, msg, sizeof msg), 0);
    /* replace the first frames by exact model poses */
    uint64_t rng = 5;
    int K = d.model.K;
    for (int i = 0; i < 6; i++) {
        pose_frame *f = &d.test[i];
        double x[POSE_KMAX + 4];
        for (int k = 0; k < K; k++) x[k] = 0.7 * (2 * wb_test_rand(&rng) - 1);
        x[K] = 3.0 * (2 * wb_test_rand(&rng) - 1);
        x[K + 1] = 0.3;
        x[K + 2] = -0.2;
        x[K + 3] = 0.95;
        pose_predict(&d.model, x, f->gt);
        for (int cam = 0; cam < POSE_C; cam++)
            for (int j = 0; j < POSE_J; j++) pose_project(&d.cam[cam], f->gt + 3 * j, f->uv[cam][j]);
    }
    pose_set s;
    assert_int_equal(pose_set_init(&s, &d.model, d.cam, d.test, 6), 0);
    double w[POSE_P];
    pose_w_default(w);
    w[POSE_W_PRIOR] = 1e-6; /* (almost) no prior: the data alone decide */
    pose_eval ev;
    assert_int_equal(pose_evaluate(&s, w, 4, 1, &ev, NULL, msg, sizeof msg), WB_OK);
    printf("    clean data: MPJPE %.3g mm, %lld solves\n", ev.mpjpe, ev.solves);
    assert_int_equal(ev.failed, 0);
    assert_true(ev.mpjpe < 0.1);
    pose_set_free(&s);
    pose_data_free(&d);
}

static void training_lowers_held_out_mpjpe(void **st) {
    (void)st;
    pose_data d;
    pose_test_data(&d, NULL, small_config);
    char msg[256];
    pose_set tr, te;
    assert_int_equal(pose_set_init(&tr, &d.model, d.cam, d.train, d.ntrain), 0);
    assert_int_equal(pose_set_init(&te, &d.model, d.cam, d.test, d.ntest), 0);
    double w[POSE_P], lo[POSE_P], hi[POSE_P];
    pose_w_default(w);
    pose_eval before, after;
    assert_int_equal(pose_evaluate(&te, w, 4, 0, &before, NULL, msg, sizeof msg), WB_OK);
    pose_train_opts o;
    pose_train_opts_default(&o);
    o.epochs = 10;
    pose_train_result res;
    int rc = pose_train(&tr, w, &o, &res, NULL, 0, NULL, msg, sizeof msg);
    if (rc != WB_OK) fail_msg("%s", msg);
    assert_int_equal(pose_evaluate(&te, w, 4, 0, &after, NULL, msg, sizeof msg), WB_OK);
    printf("    held-out MPJPE %.2f -> %.2f mm, PA-MPJPE %.2f -> %.2f mm "
           "(%lld solves, %lld skipped)\n", before.mpjpe, after.mpjpe, before.pa_mpjpe,
           after.pa_mpjpe, res.inner_solves, res.skipped);
    assert_int_equal(before.failed, 0);
    assert_int_equal(after.failed, 0);
    assert_true(after.mpjpe < before.mpjpe);
    /* the bounds hold */
    pose_w_bounds(lo, hi);
    for (int j = 0; j < POSE_P; j++) assert_true(w[j] >= lo[j] && w[j] <= hi[j]);
    pose_set_free(&tr);
    pose_set_free(&te);
    pose_data_free(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(energy_derivatives_pass_the_checker),
        cmocka_unit_test(loss_gradient_matches_differences),
        cmocka_unit_test(procrustes_removes_a_similarity_transform),
        cmocka_unit_test(pca_basis_is_orthonormal_with_decaying_variances),
        cmocka_unit_test(clean_data_is_reconstructed_from_the_yaw_sweep),
        cmocka_unit_test(training_lowers_held_out_mpjpe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
