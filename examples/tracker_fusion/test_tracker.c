/* tracker_fusion: the CSV reader, the energy's derivatives, the implicit
 * gradient of the training loss against differences, and the claim of the
 * example (the learned energy beats every baseline on held-out videos). */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <math.h>
#include <string.h>
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

/* ---- issue 11, item 8: absurd inputs, linear time and memory ---- */

static const char *write_bytes(const char *name, const char *p, size_t n) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir_, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
    return path;
}

/* a two-line file with frame 1e8 asked for 3.2 GB (25.6 GB with tracker
   15): a frame far beyond the lines of its sequence is refused at its line,
   before anything of T frames is allocated; a frame within the bound (4 x
   lines + 64) is still read, the frames between missing */
static void csv_reader_refuses_a_frame_far_beyond_its_lines(void **st) {
    (void)st;
    expect_error("sequence,frame,tracker,x,y\na,0,0,1,2\na,100000000,15,1,2\n", NULL,
                 "t.csv:3: frame 100000000 of 'a' is far beyond its 2 lines");
    expect_error("sequence,frame,tracker,x,y\na,0,0,1,2\n",
                 "sequence,frame,x,y\na,0,1,2\na,5000,1,2\n",
                 "g.csv:3: frame 5000 of 'a' is far beyond its 3 lines");
    char tracks[256], err[256] = "";
    snprintf(tracks, sizeof tracks, "%s", write_file("t.csv",
        "sequence,frame,tracker,x,y\na,0,0,1,2\na,71,0,1,2\n")); /* 72 <= 4 x 2 + 64 */
    tf_data d;
    assert_int_equal(tf_read_csv(tracks, NULL, &d, err, sizeof err), 0);
    assert_int_equal(d.seq[0].T, 72);
    assert_false(d.seq[0].m[1] || d.seq[0].m[70]);
    tf_data_free(&d);
    expect_error("sequence,frame,tracker,x,y\na,0,0,1,2\na,72,0,1,2\n", NULL,
                 "t.csv:3: frame 72 of 'a' is far beyond");
}

/* 40000 distinct names took 6.8 s (a linear search per line: quadratic,
   about an hour for 10^6 lines; the truth was matched by another pass over
   all records per sequence). 100000 sequences with their truth: every
   report and truth line lands in its own sequence. (The old reader needs
   minutes here, past the test's timeout; this one well under a second.) */
static void csv_reader_reads_many_distinct_names(void **st) {
    (void)st;
    enum { N = 100000 };
    char tracks[256], truth[256], err[256] = "";
    snprintf(tracks, sizeof tracks, "%s/t.csv", dir_);
    snprintf(truth, sizeof truth, "%s/g.csv", dir_);
    FILE *f = fopen(tracks, "w"), *g = fopen(truth, "w");
    assert_true(f && g);
    fputs("sequence,frame,tracker,x,y\n", f);
    fputs("sequence,frame,x,y\n", g);
    for (int i = 0; i < N; i++) {
        fprintf(f, "video%07d,0,%d,%d,%d\n", (i * 7919) % N, i % 3, i, -i);
        fprintf(g, "video%07d,0,%d,%d\n", (i * 7919) % N, 2 * i, -2 * i);
    }
    fclose(f);
    fclose(g);
    tf_data d;
    assert_int_equal(tf_read_csv(tracks, truth, &d, err, sizeof err), 0);
    assert_int_equal(d.count, N);
    for (int q = 0; q < N; q++) { /* sequence q is line q's: name (q*7919) % N */
        char want[32];
        snprintf(want, sizeof want, "video%07d", (q * 7919) % N);
        assert_string_equal(d.seq[q].name, want);
        assert_true(d.seq[q].m[q % 3]);
        wb_assert_close(d.seq[q].y[2 * (q % 3)], q, 0, 0);
        wb_assert_close(d.seq[q].truth[0], 2.0 * q, 0, 0);
        wb_assert_close(d.seq[q].truth[1], -2.0 * q, 0, 0);
    }
    tf_data_free(&d);
}

/* names equal in their first 63 bytes were merged into one sequence */
static void csv_reader_keeps_long_names_whole(void **st) {
    (void)st;
    char a[201], b[201], text[1024], tracks[256], err[256] = "";
    memset(a, 'n', 200);
    a[200] = '\0';
    memcpy(b, a, sizeof b);
    b[199] = 'm';
    snprintf(text, sizeof text, "sequence,frame,tracker,x,y\n%s,0,0,1,2\n%s,0,0,3,4\n", a, b);
    snprintf(tracks, sizeof tracks, "%s", write_file("t.csv", text));
    tf_data d;
    assert_int_equal(tf_read_csv(tracks, NULL, &d, err, sizeof err), 0);
    assert_int_equal(d.count, 2);
    assert_string_equal(d.seq[0].name, a);
    assert_string_equal(d.seq[1].name, b);
    wb_assert_close(d.seq[1].y[0], 3.0, 0, 0);
    tf_data_free(&d);
}

/* coordinates of 1e308 were accepted (every solve then failed, the exit
   status was 0 and --json wrote inf): absurd values are refused at their
   line */
static void csv_reader_refuses_absurd_values(void **st) {
    (void)st;
    expect_error("sequence,frame,tracker,x,y\na,0,0,1e308,2\n", NULL,
                 "t.csv:2: centre (1e308, 2) beyond +-1e+06 px");
    expect_error("sequence,frame,tracker,x,y\na,0,0,1,-2000000\n", NULL, "t.csv:2: centre");
    expect_error("sequence,frame,tracker,x,y,w,h\na,0,0,1,2,0,5\n", NULL,
                 "t.csv:2: box size '0' x '5'");
    expect_error("sequence,frame,tracker,x,y,w,h\na,0,0,1,2,5,2e6\n", NULL,
                 "t.csv:2: box size '5' x '2e6'");
    expect_error("sequence,frame,tracker,x,y,w,h\na,0,0,1,2,5,\n", NULL,
                 "t.csv:2: w and h go together");
    expect_error("sequence,frame,tracker,x,y,score\na,0,0,1,2,inf\n", NULL,
                 "t.csv:2: score 'inf' is not a finite number");
    expect_error("sequence,frame,tracker,x,y\na,0,0,1,2\n", "sequence,frame,x,y\na,0,1e7,2\n",
                 "g.csv:2: centre");
    expect_error("sequence,frame,tracker,x,y\na,0,0,1,2\n", "sequence,frame,x,y,w,h\na,0,1,2,-1,3\n",
                 "g.csv:2: box size '-1' x '3'");
    expect_error("sequence,frame,tracker,x,y\na\x01,0,0,1,2\n", NULL,
                 "t.csv:2: empty sequence name or a control character");
}

/* a NUL byte was reported as "line longer than 4095 characters"; a UTF-8
   byte-order mark made the header "wrong" */
static void csv_reader_names_nul_bytes_and_skips_a_bom(void **st) {
    (void)st;
    static const char nul[] = "sequence,frame,tracker,x,y\na,0,0,1\0,2\n";
    char tracks[256], truth[256], err[256] = "";
    snprintf(tracks, sizeof tracks, "%s", write_bytes("t.csv", nul, sizeof nul - 1));
    tf_data d;
    assert_int_equal(tf_read_csv(tracks, NULL, &d, err, sizeof err), -1);
    if (!strstr(err, "t.csv:2: a NUL byte")) fail_msg("message '%s'", err);
    snprintf(tracks, sizeof tracks, "%s", write_file("t.csv",
        "\xEF\xBB\xBFsequence,frame,tracker,x,y\r\na,0,0,1,2\r\n"));
    snprintf(truth, sizeof truth, "%s", write_file("g.csv",
        "\xEF\xBB\xBFsequence,frame,x,y\na,0,3,4\n"));
    assert_int_equal(tf_read_csv(tracks, truth, &d, err, sizeof err), 0);
    assert_string_equal(d.seq[0].name, "a");
    wb_assert_close(d.seq[0].truth[1], 4.0, 0, 0);
    tf_data_free(&d);
    /* a BOM elsewhere is not skipped: it is part of the name */
    snprintf(tracks, sizeof tracks, "%s", write_file("t.csv",
        "sequence,frame,tracker,x,y\n\xEF\xBB\xBF" "a,0,0,1,2\n"));
    assert_int_equal(tf_read_csv(tracks, NULL, &d, err, sizeof err), 0);
    assert_string_equal(d.seq[0].name, "\xEF\xBB\xBF" "a");
    tf_data_free(&d);
}

/* --json wrote a bare inf for a failed run: every number goes through one
   writer that prints null when it is not finite; strings are escaped and
   invalid UTF-8 replaced. A failed fusion is counted and reported. */
static int fuse_inf(void *u, const tf_seq *s, double *x, double *sz) {
    (void)u;
    for (int i = 0; i < 2 * s->T; i++) x[i] = i % 2 ? INFINITY : NAN, sz[i] = NAN;
    return 1; /* "failed, but scored" */
}
static void json_has_no_inf_and_failures_are_counted(void **st) {
    (void)st;
    tf_result r;
    memset(&r, 0, sizeof r);
    tf_gen_opts o;
    tf_gen_default(&o);
    o.sequences = 2;
    o.min_frames = o.max_frames = 20;
    o.trackers = 2;
    assert_int_equal(tf_generate(&o, &r.all), 0);
    free(r.all.seq[1].name);
    r.all.seq[1].name = strdup("q\"uo\\te\xff\xc3\xa9");
    free(r.all.names[0]);
    r.all.names[0] = strdup("tab\there");
    r.K = 2;
    r.test_seqs = 2;
    r.test_idx = calloc(2, sizeof(int));
    r.test_idx[1] = 1;
    assert_int_equal(tf_eval_method(&r, "broken", "broken", &r.all, fuse_inf, NULL, 10, 0, 0), 2);
    assert_int_equal(r.m[0].failed, 2);
    assert_int_equal(r.failed_solves, 2);
    assert_false(isfinite(r.m[0].test.mean_error));
    r.theta[0] = 1000; /* exp overflows: inf */
    char path[300];
    snprintf(path, sizeof path, "%s/r.json", dir_);
    assert_int_equal(tf_write_json(&r, path), 0);
    FILE *f = fopen(path, "r");
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    for (char *p = buf; *p; p++) *p = (char)tolower((unsigned char)*p);
    if (strstr(buf, "inf") || strstr(buf, "nan")) fail_msg("JSON with inf or nan:\n%s", buf);
    assert_non_null(strstr(buf, "\"test_mean_error\": null"));
    assert_non_null(strstr(buf, "\"failed_solves\": 2"));
    assert_non_null(strstr(buf, "\"q\\\"uo\\\\te\\ufffd\xc3\xa9\""));
    assert_non_null(strstr(buf, "\"tab\\u0009here\""));
    assert_non_null(strstr(buf, "\"tracker_weights\": [null"));
    tf_result_free(&r);
}

/* ---- issue 12: sizes, names, box truth, the metrics, the split ---- */

/* the optional columns in any order, a tracker's name column, the box form
   of the truth, and a names file */
static void csv_reader_reads_sizes_scores_names_and_box_truth(void **st) {
    (void)st;
    char tracks[256], truth[256], names[256], err[256] = "";
    snprintf(tracks, sizeof tracks, "%s", write_file("t.csv",
        "sequence,frame,tracker,x,y,name,score,h,w\n"
        "a,0,0,10,20,ATOM,0.5,30,40\n"
        "a,0,1,11,21,,,,\n"        /* no size, no score, no name */
        "a,1,1,12,22,MDNet,,8,6\n"
        "b,0,0,1,2\n"));           /* the last columns left out */
    snprintf(truth, sizeof truth, "%s", write_file("g.csv",
        "sequence,frame,x,y,w,h\na,0,10,20,40,30\na,1,12,22,6,8\nb,0,1,2,3,4\n"));
    tf_data d;
    assert_int_equal(tf_read_csv(tracks, truth, &d, err, sizeof err), 0);
    assert_int_equal(d.K, 2);
    assert_string_equal(d.names[0], "ATOM");
    assert_string_equal(d.names[1], "MDNet");
    tf_seq *a = &d.seq[0], *b = &d.seq[1];
    assert_true(a->has_size && a->sz && a->has_score && a->score);
    wb_assert_close(a->sz[0], 40.0, 0, 0); /* w, h of tracker 0, frame 0 */
    wb_assert_close(a->sz[1], 30.0, 0, 0);
    assert_true(isnan(a->sz[2]) && isnan(a->sz[3]));
    wb_assert_close(a->sz[2 * (1 * 2 + 1)], 6.0, 0, 0);
    wb_assert_close(a->sz[2 * (1 * 2 + 1) + 1], 8.0, 0, 0);
    wb_assert_close(a->score[0], 0.5, 0, 0);
    assert_true(isnan(a->score[1]) && isnan(a->score[3]));
    assert_true(a->has_truth_sz && b->has_truth_sz);
    wb_assert_close(a->truth_sz[2], 6.0, 0, 0);
    wb_assert_close(b->truth_sz[1], 4.0, 0, 0);
    assert_false(b->has_size || b->sz || b->has_score || b->score);
    snprintf(names, sizeof names, "%s", write_file("n.csv", "id,name\n1,Siam FC\n"));
    assert_int_equal(tf_read_names(names, &d, err, sizeof err), 0);
    assert_string_equal(d.names[0], "ATOM");
    assert_string_equal(d.names[1], "Siam FC");
    snprintf(names, sizeof names, "%s", write_file("n.csv", "id,name\n2,X\n"));
    assert_int_equal(tf_read_names(names, &d, err, sizeof err), -1);
    if (!strstr(err, "n.csv:2: tracker id '2'")) fail_msg("message '%s'", err);
    tf_data_free(&d);
    expect_error("sequence,frame,tracker,x,y,name\na,0,0,1,2,A\na,1,0,1,2,B\n", NULL,
                 "t.csv:3: tracker 0 is named 'B' here and 'A' before");
    expect_error("sequence,frame,tracker,x,y,w\na,0,0,1,2,3\n", NULL,
                 "t.csv:1: columns w and h go together");
    expect_error("sequence,frame,tracker,x,y,colour\na,0,0,1,2,3\n", NULL,
                 "t.csv:1: unknown column 'colour'");
    expect_error("sequence,frame,tracker,x,y\na,0,0,1,2,3\n", NULL,
                 "t.csv:2: more columns than the header's 5");
    expect_error("sequence,frame,tracker,x,y\na,0,0,1,2\n", "sequence,frame,x,y,w\na,0,1,2,3\n",
                 "g.csv:1: the header must be");
}

/* The metrics on a hand-made case with a closed form. Truth: centre (0, 0),
   10 x 10 in every frame. Fused: exact (error 0, IoU 1); 5 px right (error
   5, overlap 5 x 10 = 50 of 150: IoU 1/3); 30 px right (error 30, IoU 0);
   the centre with a 20 x 20 box (error 0, IoU 100/400 = 1/4).
   CLE = 35/4; P@20 = 3/4; success at IoU > i/20 (i = 0..20): frame 1 for
   i = 0..19 (20 thresholds), frame 2 for i/20 < 1/3, i = 0..6 (7), frame 3
   never, frame 4 for i/20 < 1/4, i = 0..4 (5): AUC = 32 / (4 x 21). */
static void metrics_match_a_closed_form(void **st) {
    (void)st;
    double truth[8] = {0}, tsz[8], x[8] = {0, 0, 5, 0, 30, 0, 0, 0};
    double sz[8] = {10, 10, 10, 10, 10, 10, 20, 20};
    for (int i = 0; i < 8; i++) tsz[i] = 10;
    tf_seq s;
    memset(&s, 0, sizeof s);
    s.T = 4;
    s.K = 1;
    s.truth = truth;
    s.has_truth = 1;
    s.truth_sz = tsz;
    s.has_truth_sz = 1;
    wb_assert_close(tf_iou(5, 0, 10, 10, 0, 0, 10, 10), 1.0 / 3, 1e-15, 0);
    wb_assert_close(tf_iou(0, 0, 20, 20, 0, 0, 10, 10), 0.25, 1e-15, 0);
    wb_assert_close(tf_iou(30, 0, 10, 10, 0, 0, 10, 10), 0.0, 0, 0);
    tf_metrics m = tf_metrics_seq(&s, x, sz, 4.0);
    wb_assert_close(m.cle, 35.0 / 4, 1e-15, 0);
    wb_assert_close(m.prec, 0.75, 0, 0);
    wb_assert_close(m.succ, 0.5, 0, 0); /* errors <= 4 px: frames 1 and 4 */
    wb_assert_close(m.auc, 32.0 / 84, 1e-15, 0);
    assert_true(isnan(tf_metrics_seq(&s, x, NULL, 4.0).auc));
    /* per-sequence averages against pooled figures: a second sequence of
       one frame, error 10, IoU 0 */
    tf_seq s2 = s;
    double x2[2] = {10, 0}, sz2[2] = {10, 10};
    s2.T = 1;
    tf_score acc = {0};
    tf_score_add(&acc, tf_score_fused(&s, x, sz, 4.0));
    tf_score_add(&acc, tf_score_fused(&s2, x2, sz2, 4.0));
    wb_assert_close(acc.cle, (35.0 / 4 + 10) / 2, 1e-15, 0);
    wb_assert_close(acc.mean_error, 45.0 / 5, 1e-15, 0);
    wb_assert_close(acc.prec20, (0.75 + 1) / 2, 1e-15, 0);
    wb_assert_close(acc.auc, 32.0 / 84 / 2, 1e-15, 0);
    assert_int_equal(acc.seqs, 2);
    assert_int_equal(acc.frames, 5);
}

/* sizes: the per-frame weighted median (equal weights: the median), and
   frames without a sized report take the previous one */
static void sizes_are_fused_by_a_weighted_median(void **st) {
    (void)st;
    /* 3 trackers, 3 frames; frame 2 has no sized report */
    double y[18] = {0}, sz[18] = {10, 1, 20, 2, 30, 3, 10, 1, 20, 2, NAN, NAN,
                                  NAN, NAN, NAN, NAN, NAN, NAN};
    unsigned char m[9] = {1, 1, 1, 1, 1, 0, 1, 1, 1};
    tf_seq s;
    memset(&s, 0, sizeof s);
    s.T = 3;
    s.K = 3;
    s.y = y;
    s.m = m;
    s.sz = sz;
    s.has_size = 1;
    double out[6], w[3] = {1, 1, 5};
    tf_fuse_sizes(&s, NULL, out);
    double want[6] = {20, 2, 15, 1.5, 15, 1.5}; /* frame 1: two reports */
    for (int i = 0; i < 6; i++) wb_assert_close(out[i], want[i], 0, 0);
    tf_fuse_sizes(&s, w, out); /* 5 of 7 on tracker 2: its size */
    wb_assert_close(out[0], 30, 0, 0);
    wb_assert_close(out[1], 3, 0, 0);
    wb_assert_close(out[2], 15, 0, 0); /* frame 1: weights 1, 1 */
    tf_baseline_sizes(&s, TF_MEAN, 0, out);
    wb_assert_close(out[0], 20, 0, 0);
    wb_assert_close(out[5], 1.5, 0, 0);
    tf_baseline_sizes(&s, TF_SINGLE, 2, out); /* only frame 0 has one */
    wb_assert_close(out[2], 30, 0, 0);
    s.has_size = 0;
    tf_fuse_sizes(&s, NULL, out);
    assert_true(isnan(out[0]) && isnan(out[5]));
}

/* the split by video: names equal up to the last '-' stay on one side;
   when every sequence is its own video it is the split by sequence */
static void split_keeps_the_targets_of_a_video_together(void **st) {
    (void)st;
    static const char *nm[] = {"Jogging-1", "Jogging-2", "Deer", "Skating2-1", "Bolt",
                               "Skating2-2", "Car1", "Human4-2", "Boy", "Dog"};
    tf_data d;
    memset(&d, 0, sizeof d);
    tf_seq seq[10];
    memset(seq, 0, sizeof seq);
    d.seq = seq;
    d.count = 10;
    for (int q = 0; q < 10; q++) seq[q].name = (char *)nm[q];
    int apart = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        tf_data tr, te;
        assert_int_equal(tf_split_by(&d, 0.3, seed, TF_GROUP_DASH, &tr, &te), 0);
        assert_int_equal(tr.count + te.count, 10);
        assert_true(te.count >= 3 && te.count <= 4 && tr.count >= 1);
        int side[10];
        for (int q = 0; q < 10; q++) {
            side[q] = -1;
            for (int i = 0; i < te.count; i++)
                if (te.seq[i].name == nm[q]) side[q] = 1;
            for (int i = 0; i < tr.count; i++)
                if (tr.seq[i].name == nm[q]) side[q] = 0;
            assert_true(side[q] >= 0);
        }
        assert_int_equal(side[0], side[1]);
        assert_int_equal(side[3], side[5]);
        tf_split_free(&tr);
        tf_split_free(&te);
        assert_int_equal(tf_split_by(&d, 0.3, seed, TF_GROUP_NONE, &tr, &te), 0);
        assert_int_equal(te.count, 3);
        int j1 = 0, j2 = 0;
        for (int i = 0; i < te.count; i++) j1 += te.seq[i].name == nm[0], j2 += te.seq[i].name == nm[1];
        apart += j1 != j2;
        tf_split_free(&tr);
        tf_split_free(&te);
    }
    assert_true(apart > 0); /* without the rule some seed splits Jogging */
    /* names without '-': the dash rule gives the split by sequence */
    static const char *plain[] = {"a", "b", "c", "d", "e", "f", "g"};
    for (int q = 0; q < 7; q++) seq[q].name = (char *)plain[q];
    d.count = 7;
    for (uint64_t seed = 1; seed <= 10; seed++) {
        tf_data tr1, te1, tr2, te2;
        assert_int_equal(tf_split_by(&d, 0.3, seed, TF_GROUP_DASH, &tr1, &te1), 0);
        assert_int_equal(tf_split(&d, 0.3, seed, &tr2, &te2), 0);
        assert_int_equal(te1.count, te2.count);
        for (int i = 0; i < te1.count; i++) assert_ptr_equal(te1.seq[i].name, te2.seq[i].name);
        for (int i = 0; i < tr1.count; i++) assert_ptr_equal(tr1.seq[i].name, tr2.seq[i].name);
        tf_split_free(&tr1);
        tf_split_free(&te1);
        tf_split_free(&tr2);
        tf_split_free(&te2);
    }
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
    const char *names[] = {"t.csv", "g.csv", "r.json", "n.csv"};
    char path[300];
    for (int i = 0; i < 4; i++) {
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
        cmocka_unit_test(csv_reader_refuses_a_frame_far_beyond_its_lines),
        cmocka_unit_test(csv_reader_reads_many_distinct_names),
        cmocka_unit_test(csv_reader_keeps_long_names_whole),
        cmocka_unit_test(csv_reader_refuses_absurd_values),
        cmocka_unit_test(csv_reader_names_nul_bytes_and_skips_a_bom),
        cmocka_unit_test(json_has_no_inf_and_failures_are_counted),
        cmocka_unit_test(csv_reader_reads_sizes_scores_names_and_box_truth),
        cmocka_unit_test(metrics_match_a_closed_form),
        cmocka_unit_test(sizes_are_fused_by_a_weighted_median),
        cmocka_unit_test(split_keeps_the_targets_of_a_video_together),
        cmocka_unit_test(fusion_energy_derivatives_pass_the_checker),
        cmocka_unit_test(fusion_band_hessian_passes_the_checker),
        cmocka_unit_test(training_gradient_matches_differences),
        cmocka_unit_test(learned_energy_beats_every_baseline),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
