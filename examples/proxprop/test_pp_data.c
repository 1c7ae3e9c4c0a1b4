/* test_pp_data: proxprop's CSV reader on generated files. Values are checked
 * against the text written; every refusal against its exact message; the
 * memory against the size of the file, by an allocator that counts bytes. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pp_data.h"
#include "pp_count.h"

static void counted(pp_csv_opts *o, counter_t *c) {
    memset(c, 0, sizeof *c);
    o->realloc_fn = count_realloc;
    o->free_fn = count_free;
    o->alloc_ctx = c;
}

/* ---- files ---- */
static FILE *file_of(const char *text, size_t len) {
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    rewind(f);
    return f;
}

/* A growable text, for the generated files. */
typedef struct {
    char *s;
    size_t len, cap;
} text_t;

static void put(text_t *t, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int k = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0,
                          fmt, ap);
        va_end(ap);
        assert_true(k >= 0);
        if (t->s && t->len + (size_t)k < t->cap) {
            t->len += (size_t)k;
            return;
        }
        t->cap = t->cap ? 2 * t->cap + (size_t)k : 4096 + (size_t)k;
        t->s = realloc(t->s, t->cap);
        assert_non_null(t->s);
    }
}

/* Reads text with o (default options when NULL); the message in err. */
static int read_text(const char *text, size_t len, const pp_csv_opts *o,
                     pp_data *D, char *err, size_t errlen) {
    FILE *f = file_of(text, len);
    int rc = pp_csv_read(f, "t.csv", o, D, err, errlen);
    fclose(f);
    return rc;
}

/* The rc and message of a file that must be refused (no memory left). */
static void expect_refusal(const char *text, size_t len, const pp_csv_opts *opts,
                           const char *message) {
    pp_csv_opts oc, *o = &oc;
    if (opts) oc = *opts;
    else pp_csv_opts_default(&oc);
    counter_t c;
    counted(o, &c);
    char err[512];
    pp_data D;
    assert_int_equal(read_text(text, len, o, &D, err, sizeof err), -1);
    assert_string_equal(err, message);
    assert_null(D.X);
    assert_null(D.y);
    assert_int_equal(c.live, 0);
    assert_int_equal(c.blocks, 0);
}

#define REFUSED(text, o, message) expect_refusal(text, sizeof text - 1, o, message)

/* ---- values ---- */

static void reads_values_labels_comments_blank_lines_and_crlf(void **state) {
    (void)state;
    static const char text[] =
        "# label, f1, f2 (a comment, with commas)\n"
        "\n"
        "  \t\r\n"
        "0, 1.5, -2\r\n"
        "1,0x1p-2,3e2\n"
        "   # an indented comment\n"
        "2,  -0.125 ,7\n"
        "1,4,5\n"
        "0,6,7\n"
        "1,8,9\n"
        "0,10,11\n"
        "1,12,13\n"
        "0,14,15\n"
        "3,16,17"; /* no final newline */
    const double X[] = {1.5, -2, 0.25, 300, -0.125, 7, 4, 5, 6, 7,
                        8,   9,  10,   11,  12,     13, 14, 15, 16, 17};
    const int y[] = {0, 1, 2, 1, 0, 1, 0, 1, 0, 3};
    pp_csv_opts o;
    pp_csv_opts_default(&o);
    counter_t c;
    counted(&o, &c);
    pp_data D;
    char err[256];
    assert_int_equal(read_text(text, sizeof text - 1, &o, &D, err, sizeof err), 0);
    assert_string_equal(err, "");
    assert_int_equal(D.n, 10);
    assert_int_equal(D.d, 2);
    assert_int_equal(D.classes, 4);
    for (int k = 0; k < 20; k++) assert_true(D.X[k] == X[k]);
    for (int j = 0; j < 10; j++) assert_int_equal(D.y[j], y[j]);
    pp_data_free(&D, &o);
    assert_int_equal(c.live, 0);

    /* the same numbers with the label last: the first field is a feature */
    o.label_last = 1;
    static const char last[] =
        "1.5,-2,0\n0.25,300,1\n-0.125,7,2\n4,5,1\n6,7,0\n"
        "8,9,1\n10,11,0\n12,13,1\n14,15,0\n16,17,3\n";
    assert_int_equal(read_text(last, sizeof last - 1, &o, &D, err, sizeof err), 0);
    assert_int_equal(D.n, 10);
    assert_int_equal(D.d, 2);
    for (int k = 0; k < 20; k++) assert_true(D.X[k] == X[k]);
    for (int j = 0; j < 10; j++) assert_int_equal(D.y[j], y[j]);
    pp_data_free(&D, &o);
    assert_int_equal(c.live, 0);
}

/* ---- malformed lines: FILE:LINE and the reason ---- */

#define TEN_OK "0,1\n1,2\n0,3\n1,4\n0,5\n1,6\n0,7\n1,8\n0,9\n1,10\n"

static void malformed_lines_are_refused_with_file_line_and_reason(void **state) {
    (void)state;
    REFUSED("\n# only comments\n", NULL, "t.csv: no data lines");
    REFUSED("", NULL, "t.csv: no data lines");
    REFUSED("# x\n7\n", NULL,
            "t.csv:2: need a label and at least one feature (found 1 field)");
    REFUSED("0,1,2\n1,2\n", NULL,
            "t.csv:2: expected 3 comma-separated fields (as on the first data "
            "line), found 2");
    REFUSED("0,1\n1,abc\n", NULL, "t.csv:2: field 2 ('abc') is not a finite number");
    REFUSED("0,1\n1,\x1b[2J\n", NULL,
            "t.csv:2: field 2 ('\\x1b[2J') is not a finite number");
    REFUSED("0,1\n1,1e999\n", NULL, "t.csv:2: field 2 ('1e999') is not a finite number");
    REFUSED("0,1\n1,nan\n", NULL, "t.csv:2: field 2 ('nan') is not a finite number");
    REFUSED("0,1\n1,2 3\n", NULL, "t.csv:2: field 2 ('2 3') is not a finite number");
    REFUSED("0,1\n1.5,2\n", NULL,
            "t.csv:2: label 1.5 is not an integer in [0, 999] (use --label-last "
            "if the label is the last field)");
    REFUSED("0,1\n1000,2\n", NULL,
            "t.csv:2: label 1000 is not an integer in [0, 999] (use --label-last "
            "if the label is the last field)");
    REFUSED("0,1\n-1,2\n", NULL,
            "t.csv:2: label -1 is not an integer in [0, 999] (use --label-last "
            "if the label is the last field)");
    REFUSED("0,1\n1,2\n0,3\n", NULL, "t.csv: only 3 examples: need at least 10");
    REFUSED("0,1\n0,2\n0,3\n0,4\n0,5\n0,6\n0,7\n0,8\n0,9\n0,10\n", NULL,
            "t.csv: all 10 examples have label 0: need at least 2 classes");
    pp_csv_opts o;
    pp_csv_opts_default(&o);
    o.label_last = 1;
    REFUSED("1,0\n2,0.5\n", &o, "t.csv:2: label 0.5 is not an integer in [0, 999]");

    char err[128];
    pp_data D;
    assert_int_equal(pp_csv_load("/nonexistent/x.csv", NULL, &D, err, sizeof err), -1);
    assert_string_equal(err, "cannot open /nonexistent/x.csv: No such file or directory");
}

/* ---- item 9: NUL bytes ---- */

static void nul_bytes_are_reported_with_file_and_line(void **state) {
    (void)state;
    /* after a NUL the old reader saw the end of the line: "1,2\0,3" read as
       two fields, and a line starting with NUL was skipped as blank */
    REFUSED("0,1,2\n1,2\0,3\n" TEN_OK, NULL,
            "t.csv:2: NUL byte at byte 4 of the line (not a text file?)");
    REFUSED(TEN_OK "\0" "1,2\n", NULL,
            "t.csv:11: NUL byte at byte 1 of the line (not a text file?)");
    REFUSED(TEN_OK "# a comment\0\n", NULL,
            "t.csv:11: NUL byte at byte 12 of the line (not a text file?)");
    REFUSED("0,1\n\0", NULL,
            "t.csv:2: NUL byte at byte 1 of the line (not a text file?)");
}

/* ---- item 9: sizes checked while reading, memory in proportion ---- */

/* n lines of `columns` fields "L,0,0,...,0" (labels alternating 0/1):
   2 * columns bytes a line */
static void wide_file(text_t *t, int n, int columns) {
    size_t line = 2 * (size_t)columns;
    put(t, "%s", ""); /* allocates when empty */
    if (t->cap < t->len + (size_t)n * line + 1) {
        t->cap = t->len + (size_t)n * line + 1;
        t->s = realloc(t->s, t->cap);
        assert_non_null(t->s);
    }
    for (int j = 0; j < n; j++) {
        char *p = t->s + t->len;
        p[0] = (char)('0' + j % 2);
        for (size_t k = 1; k < line - 1; k += 2) {
            p[k] = ',';
            p[k + 1] = '0';
        }
        p[line - 1] = '\n';
        t->len += line;
    }
    t->s[t->len] = '\0';
}

static void a_line_wider_than_max_columns_is_refused_while_it_is_read(void **state) {
    (void)state;
    /* the 2 MB file: one line, 10^6 columns. The old reader reserved
       1024 examples of 10^6 doubles (8 GB) before it looked at a second
       line. 46340 = floor(sqrt(2^31 - 1)): proxprop's limit for a first
       hidden layer of 256 units */
    text_t t = {0};
    wide_file(&t, 1, 1000000);
    assert_int_equal(t.len, 2000000);
    pp_csv_opts o;
    pp_csv_opts_default(&o);
    o.max_columns = 46340;
    o.max_columns_why = "the label and 46339 features";
    counter_t c;
    counted(&o, &c);
    pp_data D;
    char err[256];
    assert_int_equal(read_text(t.s, t.len, &o, &D, err, sizeof err), -1);
    assert_string_equal(err, "t.csv:1: 1000000 columns; at most 46340 (the label "
                             "and 46339 features)");
    /* nothing past the 46340th field was stored: the line buffer holds at
       most twice the 2 * 46340 bytes stored, three times while it grows */
    print_message("peak %zu bytes for the 2 MB line\n", c.peak);
    assert_true(c.peak <= 6 * 46340 + 4096);
    assert_int_equal(c.live, 0);

    /* the 24 MB file (12 such lines) stops at its first line, with
       the same few hundred kilobytes */
    t.len = 0;
    wide_file(&t, 12, 1000000);
    assert_int_equal(t.len, 24000000);
    counted(&o, &c);
    assert_int_equal(read_text(t.s, t.len, &o, &D, err, sizeof err), -1);
    assert_string_equal(err, "t.csv:1: 1000000 columns; at most 46340 (the label "
                             "and 46339 features)");
    assert_true(c.peak <= 6 * 46340 + 4096);

    /* a later line wider than the limit, and exactly at the limit */
    o.max_columns = 5;
    o.max_columns_why = NULL;
    REFUSED("0,1,2,3,4\n1,1,2,3,4,5\n", &o, "t.csv:2: 6 columns; at most 5");
    /* a comment is not data: its commas do not count */
    t.len = 0;
    put(&t, "# a,b,c,d,e,f,g\n");
    wide_file(&t, 10, 5);
    assert_int_equal(read_text(t.s, t.len, &o, &D, err, sizeof err), 0);
    assert_int_equal(D.d, 4);
    pp_data_free(&D, &o);
    free(t.s);
}

static void more_examples_than_max_rows_are_refused(void **state) {
    (void)state;
    pp_csv_opts o;
    pp_csv_opts_default(&o);
    o.max_rows = 12;
    REFUSED("# twelve are fine, not thirteen\n" TEN_OK "0,11\n1,12\n1,13\n", &o,
            "t.csv:14: more than 12 examples");
    static const char twelve[] = TEN_OK "0,11\n1,12\n";
    counter_t c;
    counted(&o, &c);
    pp_data D;
    char err[128];
    assert_int_equal(read_text(twelve, sizeof twelve - 1, &o, &D, err, sizeof err), 0);
    assert_int_equal(D.n, 12);
    assert_true(D.X[11] == 12.0);
    pp_data_free(&D, &o);
    assert_int_equal(c.live, 0);
}

/* Reads t with a counting allocator; checks the peak (data, labels, line
   buffer and row, old and new block together in every realloc) against
   pp_data.h's promise: 12 bytes per byte of the file plus 4 KB. Returns the
   peak per byte of the file. */
static double check_peak(const text_t *t, int expect_rc) {
    pp_csv_opts o;
    pp_csv_opts_default(&o);
    counter_t c;
    counted(&o, &c);
    pp_data D;
    char err[256];
    assert_int_equal(read_text(t->s, t->len, &o, &D, err, sizeof err), expect_rc);
    if (expect_rc == 0) pp_data_free(&D, &o);
    assert_int_equal(c.live, 0);
    if (c.peak > 12 * t->len + 4096)
        fail_msg("%zu bytes read with a peak of %zu bytes", t->len, c.peak);
    return (double)c.peak / (double)t->len;
}

static void memory_stays_in_proportion_to_the_file(void **state) {
    (void)state;
    /* The worst shapes: the narrowest lines ("0,0\n": 4 bytes for an 8-byte
       double and a 4-byte label), the widest ones (2 bytes a column), files
       that end just after the data doubled (old + new block). The old reader
       reserved 1024 examples at the first line: 100 lines of 10000 columns
       (2 MB) cost it 82 MB, 41 bytes per byte. */
    text_t t = {0};
    double worst = 0, r;
    for (int n = 16; n <= 131072; n *= 8) {
        for (int extra = -1; extra <= 1; extra++) { /* around a doubling */
            t.len = 0;
            wide_file(&t, n + extra, 2);
            r = check_peak(&t, 0);
            if (r > worst) worst = r;
        }
    }
    static const int shapes[][2] = {{100, 10000}, {17, 46340}, {10, 46340},
                                    {1000, 1000}, {9, 1000}, {2, 1000}};
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        t.len = 0;
        wide_file(&t, shapes[k][0], shapes[k][1]);
        r = check_peak(&t, shapes[k][0] >= 10 ? 0 : -1);
        if (r > worst) worst = r;
    }
    print_message("at most %.2f bytes per byte of the file\n", worst);
    /* one number of 10^6 digits: the line buffer, twice the line at most */
    t.len = 0;
    put(&t, "0,");
    for (int k = 0; k < 100000; k++) put(&t, "1234567890");
    put(&t, "\n");
    check_peak(&t, -1); /* 1.2e999999 is not finite */
    free(t.s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_values_labels_comments_blank_lines_and_crlf),
        cmocka_unit_test(malformed_lines_are_refused_with_file_line_and_reason),
        cmocka_unit_test(nul_bytes_are_reported_with_file_and_line),
        cmocka_unit_test(a_line_wider_than_max_columns_is_refused_while_it_is_read),
        cmocka_unit_test(more_examples_than_max_rows_are_refused),
        cmocka_unit_test(memory_stays_in_proportion_to_the_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
