/* tracker_fusion: the CSV reader, the energy's derivatives, the implicit
 * gradient of the training loss against differences, and the claim of the
 * example (the learned energy beats every baseline on held-out videos). */
#define _POSIX_C_SOURCE 200809L
#include <unistd.h>

#include "tf.h"
#include "wb_test.h"

static char dir_[64];
static const char *write_file(const char *name, const char *text) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir_, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static int setup(void **st) {
    (void)st;
    snprintf(dir_, sizeof dir_, "/tmp/wb_tf_XXXXXX");
    return mkdtemp(dir_) ? 0 : -1;
}

static void csv_reader_reads_a_good_file(void **st) {
    (void)st;
    char tracks[256], truth[256];
    snprintf(tracks, sizeof tracks, "%s", write_file("t.csv",
        "sequence,frame,tracker,x,y,w,h,score\n"
        "a,0,0,10,20,5,5,0.9\n"
        "a,0,1,11,21,,,\n"
        "a,2,1,13.5,23\n" /* frame 1 absent: missing */
        "b,0,0,1e2,-3\n"
        "b,1,0,101,-4\n"));
    snprintf(truth, sizeof truth, "%s", write_file("g.csv",
        "sequence,frame,x,y\na,0,10,20\na,1,11,21\na,2,12,22\nb,0,100,-3\nb,1,101,-4\n"));
    tf_data d;
    char err[256] = "";
    assert_int_equal(tf_read_csv(tracks, truth, &d, err, sizeof err), 0);
    assert_int_equal(d.count, 2);
    assert_int_equal(d.K, 2);
    assert_int_equal(d.seq[0].T, 3);
    assert_int_equal(d.seq[1].T, 2);
    assert_string_equal(d.seq[0].name, "a");
    assert_true(d.seq[0].m[0 * 2 + 0] && d.seq[0].m[0 * 2 + 1]);
    assert_false(d.seq[0].m[1 * 2 + 0] || d.seq[0].m[1 * 2 + 1]);
    wb_assert_close(d.seq[0].y[2 * (2 * 2 + 1)], 13.5, 0, 0);
    wb_assert_close(d.seq[1].y[0], 100.0, 0, 0);
    wb_assert_close(d.seq[0].truth[5], 22.0, 0, 0);
    tf_data_free(&d);
}

static void expect_error(const char *tracks_text, const char *truth_text,
                         const char *fragment) {
    char tracks[256], truth[256], err[256] = "";
    snprintf(tracks, sizeof tracks, "%s", write_file("t.csv", tracks_text));
    snprintf(truth, sizeof truth, "%s", truth_text ? write_file("g.csv", truth_text) : "");
    tf_data d;
    assert_int_equal(tf_read_csv(tracks, truth_text ? truth : NULL, &d, err, sizeof err), -1);
    if (!strstr(err, fragment)) fail_msg("message '%s' lacks '%s'", err, fragment);
    assert_null(d.seq);
}

static void csv_reader_rejects_bad_files_with_file_and_line(void **st) {
    (void)st;
    expect_error("", NULL, "empty file");
    expect_error("sequence,frame,tracker,x,y\n", NULL, "no data lines");
    expect_error("seq,frame,tracker,x,y\na,0,0,1,2\n", NULL, "t.csv:1: the header");
    expect_error("sequence,frame,tracker,x,y\na,0,0,1,2\na,1,0,3\n", NULL,
                 "t.csv:3: 4 columns, expected at least 5");
    expect_error("sequence,frame,tracker,x,y\na,0,0,abc,2\n", NULL,
                 "t.csv:2: x 'abc' is not a number");
    expect_error("sequence,frame,tracker,x,y\na,-1,0,1,2\n", NULL,
                 "t.csv:2: frame '-1'");
    expect_error("sequence,frame,tracker,x,y\na,0,99,1,2\n", NULL, "t.csv:2: tracker '99'");
    expect_error("sequence,frame,tracker,x,y\na,0,0,1,2\n", "sequence,frame,x,y\na,0,1\n",
                 "g.csv:2: 3 columns");
    expect_error("sequence,frame,tracker,x,y\na,0,0,1,2\na,1,0,1,2\n",
                 "sequence,frame,x,y\na,0,1,2\n", "lacks truth");
    char err[256];
    tf_data d;
    assert_int_equal(tf_read_csv("/nonexistent/x.csv", NULL, &d, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot open"));
}

/* a video lasts until its last report or truth frame: truth past the last
   report is kept (and scored), not dropped; a repeated report or truth line
   is an error with file and line */
static void csv_reader_keeps_truth_past_the_last_report(void **st) {
    (void)st;
    char tracks[256], truth[256], err[256] = "";
    snprintf(tracks, sizeof tracks, "%s", write_file("t.csv",
        "sequence,frame,tracker,x,y\na,0,0,1,2\na,1,1,3,4\n"));
    snprintf(truth, sizeof truth, "%s", write_file("g.csv",
        "sequence,frame,x,y\na,3,7,8\na,0,1,2\na,1,3,4\na,2,5,6\n"));
    tf_data d;
    assert_int_equal(tf_read_csv(tracks, truth, &d, err, sizeof err), 0);
    assert_int_equal(d.count, 1);
    assert_int_equal(d.seq[0].T, 4);
    assert_int_equal(d.seq[0].has_truth, 1);
    assert_false(d.seq[0].m[2 * 2 + 0] || d.seq[0].m[2 * 2 + 1] || d.seq[0].m[3 * 2 + 0] ||
                 d.seq[0].m[3 * 2 + 1]);
    wb_assert_close(d.seq[0].truth[6], 7.0, 0, 0);
    wb_assert_close(d.seq[0].truth[7], 8.0, 0, 0);
    tf_data_free(&d);
    expect_error("sequence,frame,tracker,x,y\na,0,0,1,2\na,1,0,3,4\na,0,0,5,6\n",
                 "sequence,frame,x,y\na,0,1,2\na,1,3,4\n",
                 "t.csv:4: a second report of tracker 0 in frame 0");
    expect_error("sequence,frame,tracker,x,y\na,0,0,1,2\n",
                 "sequence,frame,x,y\na,0,1,2\na,0,1,2\n", "g.csv:3: a second truth line");
    expect_error("sequence,frame,tracker,x,y\na,0,0,1,2\n", "sequence,frame,x,y\na,0,1,y\n",
                 "g.csv:2: y 'y' is not a number");
    expect_error("sequence,frame,tracker,x,y\na,0,0,1,2\n", "", "g.csv: empty file");
    expect_error("sequence,frame,tracker,x,y\na,0,0,1,2\n", "sequence,frame,x,y\nb,0,1,2\n",
                 "g.csv:2: sequence 'b' has no tracks");
}

/* a short synthetic video */
static tf_seq *short_seq(tf_data *d) {
    tf_gen_opts o;
    tf_gen_default(&o);
    o.sequences = 1;
    o.min_frames = o.max_frames = 40;
    o.trackers = 4;
    o.seed = 11;
    assert_int_equal(tf_generate(&o, d), 0);
    return &d->seq[0];
}

static void fusion_energy_derivatives_pass_the_checker(void **st) {
    (void)st;
    tf_data d;
    tf_seq *s = short_seq(&d);
    wb_energy e = tf_energy(s);
    double th[6] = {0.1, -0.3, 0.2, 0.0, log(3.0), log(4.0)}, *x = malloc(sizeof(double) * 80);
    tf_median_start(s, x);
    for (int i = 0; i < 80; i++) x[i] += 2 * sin(i);
    wb_check_report r;
    assert_int_equal(wb_check_energy(&e, NULL, x, th, &r), WB_OK);
    assert_true(r.value_grad_err < 1e-6 && r.mixed_vjp_err < 1e-6);
    /* the band against differences of the gradient, through a dense copy */
    wb_energy dense = e;
    dense.kd = 0;
    dense.hess_band = NULL;
    wb_settings set;
    wb_settings_default(&set);
    set.grad_tol = 1e-12;
    set.step_tol = 1e-15;
    wb_solver *sb = NULL, *sd = NULL;
    assert_int_equal(wb_solver_create(&sb, &e, &set), WB_OK);
    assert_int_equal(wb_solver_create(&sd, &dense, &set), WB_OK);
    double xb[80], xd[80], Jb[80 * 6], Jd[80 * 6];
    memcpy(xb, x, sizeof xb);
    memcpy(xd, x, sizeof xd);
    assert_int_equal(wb_solve(sb, th, xb, NULL), WB_OK);
    assert_int_equal(wb_solve(sd, th, xd, NULL), WB_OK);
    assert_int_equal(wb_implicit_jacobian(sb, Jb), WB_OK);
    assert_int_equal(wb_implicit_jacobian(sd, Jd), WB_OK);
    for (int i = 0; i < 80; i++) wb_assert_close(xb[i], xd[i], 1e-8, 0);
    for (int k = 0; k < 80 * 6; k++) wb_assert_close(Jb[k], Jd[k], 1e-5, 1e-5);
    wb_solver_destroy(sb);
    wb_solver_destroy(sd);
    free(x);
    tf_data_free(&d);
}

/* The band Hessian through wb_check_energy (which checks only a dense
   `hess`): a wrapper expands the band into the full symmetric matrix. */
typedef struct {
    wb_energy in;
    double *AB;
} dense_wrap;
static int wrap_vg(void *u, const double *x, const double *w, double *e, double *g) {
    dense_wrap *d = u;
    return d->in.value_grad(d->in.user, x, w, e, g);
}
static int wrap_hess(void *u, const double *x, const double *w, double *H) {
    dense_wrap *d = u;
    int n = d->in.n, ld = d->in.kd + 1;
    if (d->in.hess_band(d->in.user, x, w, d->AB)) return 1;
    memset(H, 0, sizeof(double) * (size_t)n * n);
    for (int j = 0; j < n; j++)
        for (int i = j; i < n && i - j <= d->in.kd; i++)
            H[i + (size_t)j * n] = H[j + (size_t)i * n] = d->AB[(i - j) + (size_t)j * ld];
    return 0;
}

static void fusion_band_hessian_passes_the_checker(void **st) {
    (void)st;
    tf_data d;
    tf_seq *s = short_seq(&d);
    /* centre the video at the origin: the checker's difference step is
       relative to |x| (hundreds of px here), and its truncation error would
       swamp the small x-y coupling entries */
    double c0 = s->truth[0], c1 = s->truth[1];
    for (int i = 0; i < s->T * s->K; i++) s->y[2 * i] -= c0, s->y[2 * i + 1] -= c1;
    for (int t = 0; t < s->T; t++) s->truth[2 * t] -= c0, s->truth[2 * t + 1] -= c1;
    for (int T = 1; T <= 40; T += (T < 4 ? 1 : 36)) { /* 1, 2, 3 and 40 frames */
        int T0 = s->T;
        s->T = T; /* the first T frames (the arrays are laid out by frame) */
        dense_wrap w;
        w.in = tf_energy(s);
        assert_true(w.in.kd >= 1 && w.in.kd < w.in.n && w.in.kd <= TF_KD);
        w.AB = malloc(sizeof(double) * (size_t)(w.in.kd + 1) * w.in.n);
        wb_energy e = w.in;
        e.user = &w;
        e.value_grad = wrap_vg;
        e.hess = wrap_hess;
        e.hess_band = NULL;
        e.kd = 0;
        e.mixed_vjp = NULL;
        double th[6] = {0.1, -0.3, 0.2, 0.0, log(3.0), log(4.0)}, x[80];
        tf_median_start(s, x);
        for (int i = 0; i < 2 * T; i++) x[i] += 3 * sin(1.7 * i);
        wb_check_report r;
        assert_int_equal(wb_check_energy(&e, NULL, x, th, &r), WB_OK);
        if (!(r.value_grad_err < 1e-6 && r.hess_err >= 0 && r.hess_err < 1e-6))
            fail_msg("T = %d: gradient error %.3g, band Hessian error %.3g (entry %d)", T,
                     r.value_grad_err, r.hess_err, r.hess_worst);
        /* and the banded solver takes videos this short */
        wb_solver *sv = NULL;
        assert_int_equal(wb_solver_create(&sv, &w.in, NULL), WB_OK);
        assert_true(wb_solve(sv, th, x, NULL) >= 0);
        double dl[80], g[6];
        tf_loss(s, x, dl);
        assert_true(wb_implicit_vjp(sv, dl, g) >= 0);
        wb_solver_destroy(sv);
        free(w.AB);
        s->T = T0;
    }
    tf_data_free(&d);
}

/* dL/dtheta by the implicit derivative (lambda = 0) equals central
   differences of L(x*(theta)), re-solving. */
static void training_gradient_matches_differences(void **st) {
    (void)st;
    tf_data d;
    tf_seq *s = short_seq(&d);
    wb_energy e = tf_energy(s);
    wb_settings set;
    wb_settings_default(&set);
    set.grad_tol = 1e-11;
    set.step_tol = 1e-15;
    wb_solver *sv = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, &set), WB_OK);
    double th[6] = {0.1, -0.3, 0.2, 0.0, log(3.0), log(4.0)}, x[80], dl[80], g[6];
    tf_median_start(s, x);
    assert_int_equal(wb_solve(sv, th, x, NULL), WB_OK);
    tf_loss(s, x, dl);
    assert_int_equal(wb_implicit_vjp(sv, dl, g), WB_OK);
    for (int j = 0; j < 6; j++) {
        double tp[6], xp[80], h = 1e-5, Lp, Lm;
        memcpy(tp, th, sizeof tp);
        tp[j] = th[j] + h;
        memcpy(xp, x, sizeof xp);
        assert_int_equal(wb_solve(sv, tp, xp, NULL), WB_OK);
        Lp = tf_loss(s, xp, NULL);
        tp[j] = th[j] - h;
        memcpy(xp, x, sizeof xp);
        assert_int_equal(wb_solve(sv, tp, xp, NULL), WB_OK);
        Lm = tf_loss(s, xp, NULL);
        wb_assert_close(g[j], (Lp - Lm) / (2 * h), 1e-7, 1e-5);
    }
    wb_solver_destroy(sv);
    tf_data_free(&d);
}

/* The example at its defaults (2 s): the learned energy beats every
   baseline on the held-out videos. */
static void learned_energy_beats_every_baseline(void **st) {
    (void)st;
    tf_opts o;
    tf_opts_default(&o);
    tf_result r;
    char err[256];
    assert_int_equal(tf_run(&o, &r, err, sizeof err), 0);
    int learned = -1, grid = -1;
    for (int i = 0; i < r.count; i++) {
        if (!strcmp(r.m[i].key, "learned")) learned = i;
        if (!strcmp(r.m[i].key, "grid_search")) grid = i;
    }
    assert_true(learned >= 0 && grid >= 0);
    /* K single rows, mean, median, two train-chosen best singles, the
       oracle, uniform, learned, grid search */
    assert_int_equal(r.count, r.K + 8);
    for (int i = 0; i < r.count; i++) {
        printf("    %-30s %.3f px\n", r.m[i].label, r.m[i].test.mean_error);
        /* the claim is against what is chosen without the test videos */
        if (!strcmp(r.m[i].key, "single") || !strcmp(r.m[i].key, "oracle")) continue;
        if (i != learned && !(r.m[learned].test.mean_error < r.m[i].test.mean_error))
            fail_msg("learned %.3f px does not beat %s %.3f px", r.m[learned].test.mean_error,
                     r.m[i].label, r.m[i].test.mean_error);
    }
    /* the grid search had at most the learned run's budget of solves */
    assert_true(r.m[grid].solves <= r.inner_solves);
    char path[300];
    snprintf(path, sizeof path, "%s/r.json", dir_);
    assert_int_equal(tf_write_json(&r, path), 0);
    FILE *f = fopen(path, "r");
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "\"name\": \"learned\""));
    assert_non_null(strstr(buf, "\"test_mean_error\""));
    assert_non_null(strstr(buf, "\"inner_solves\""));
    tf_result_free(&r);
}

static int teardown(void **st) {
    (void)st;
    const char *names[] = {"t.csv", "g.csv", "r.json"};
    char path[300];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir_, names[i]);
        remove(path);
    }
    return rmdir(dir_) == 0 ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(csv_reader_reads_a_good_file),
        cmocka_unit_test(csv_reader_rejects_bad_files_with_file_and_line),
        cmocka_unit_test(csv_reader_keeps_truth_past_the_last_report),
        cmocka_unit_test(fusion_energy_derivatives_pass_the_checker),
        cmocka_unit_test(fusion_band_hessian_passes_the_checker),
        cmocka_unit_test(training_gradient_matches_differences),
        cmocka_unit_test(learned_energy_beats_every_baseline),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
