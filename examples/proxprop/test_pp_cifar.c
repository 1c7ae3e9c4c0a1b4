/* test_pp_cifar: the CIFAR-10 binary reader on generated files of that
 * format in a temporary directory: every label and pixel read back equals
 * the byte written, the files are concatenated in order, and each kind of
 * bad file (missing, empty, cut short, a label above 9) is refused with its
 * name and record. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pp_cifar.h"

static char dir[64];

/* the byte of record j (counted over all files), position q (0 = label) */
static unsigned char byte_of(int file, int j, int q) {
    if (q == 0) return (unsigned char)((j * 7 + file) % 10);
    return (unsigned char)((q * 31 + j * 17 + file * 101) & 0xff);
}

static void path_of(int file, char *p, size_t len) {
    if (file <= 5) snprintf(p, len, "%s/data_batch_%d.bin", dir, file);
    else snprintf(p, len, "%s/test_batch.bin", dir);
}

/* file 1..5 training, 6 test; `records` whole records, then `extra` bytes */
static void write_file(int file, int records, int extra) {
    char p[128];
    path_of(file, p, sizeof p);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    for (int j = 0; j < records; j++)
        for (int q = 0; q < PP_CIFAR_RECORD; q++) fputc(byte_of(file, j, q), f);
    for (int q = 0; q < extra; q++) fputc(0, f);
    assert_int_equal(fclose(f), 0);
}

static const int counts[7] = {0, 3, 1, 2, 2, 4, 5};

static void write_all(void) {
    for (int b = 1; b <= 6; b++) write_file(b, counts[b], 0);
}

static int setup(void **st) {
    (void)st;
    snprintf(dir, sizeof dir, "/tmp/pp_cifar_XXXXXX");
    if (!mkdtemp(dir)) return -1;
    write_all();
    return 0;
}

static int teardown(void **st) {
    (void)st;
    char p[128];
    for (int b = 1; b <= 6; b++) {
        path_of(b, p, sizeof p);
        unlink(p);
    }
    return rmdir(dir);
}

static void records_read_back_in_order(void **st) {
    (void)st;
    write_all();
    pp_cifar_set tr, te;
    char err[512] = "";
    assert_int_equal(pp_cifar_load(dir, 1000, &tr, &te, err, sizeof err), 0);
    assert_int_equal(tr.n, 3 + 1 + 2 + 2 + 4);
    assert_int_equal(te.n, 5);
    int k = 0;
    for (int b = 1; b <= 6; b++) {
        pp_cifar_set *s = b <= 5 ? &tr : &te;
        if (b == 6) k = 0;
        for (int j = 0; j < counts[b]; j++, k++) {
            assert_int_equal(s->y[k], byte_of(b, j, 0));
            for (int q = 1; q < PP_CIFAR_RECORD; q++)
                if (s->X[(size_t)k * PP_CIFAR_PIXELS + q - 1] != byte_of(b, j, q))
                    fail_msg("file %d record %d pixel %d", b, j, q - 1);
        }
    }
    pp_cifar_free(&tr);
    pp_cifar_free(&te);
    pp_cifar_free(NULL);
}

static void expect_refusal(const char *text) {
    pp_cifar_set tr, te;
    char err[512] = "";
    assert_int_equal(pp_cifar_load(dir, 1000, &tr, &te, err, sizeof err), -1);
    if (!strstr(err, text)) fail_msg("message '%s' lacks '%s'", err, text);
    assert_int_equal(tr.n, 0);
    assert_null(tr.X);
    assert_null(te.y);
}

static void a_file_cut_short_is_refused_with_its_size(void **st) {
    (void)st;
    write_all();
    write_file(3, 2, 0);
    char p[128];
    path_of(3, p, sizeof p);
    assert_int_equal(truncate(p, 2 * PP_CIFAR_RECORD - 5), 0);
    expect_refusal("data_batch_3.bin: 6141 bytes is not a whole, nonzero "
                   "number of 3073-byte records");
    write_file(6, 1, 7);
    write_file(3, 2, 0);
    expect_refusal("test_batch.bin: 3080 bytes is not a whole");
}

static void a_missing_or_empty_file_is_refused(void **st) {
    (void)st;
    write_all();
    char p[128];
    path_of(5, p, sizeof p);
    unlink(p);
    expect_refusal("data_batch_5.bin: cannot open: No such file or directory");
    write_file(5, 0, 0);
    expect_refusal("data_batch_5.bin: 0 bytes is not a whole, nonzero number");
}

static void a_label_above_9_is_refused_with_its_record(void **st) {
    (void)st;
    write_all();
    char p[128];
    path_of(2, p, sizeof p);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    unsigned char rec[PP_CIFAR_RECORD] = {3};
    fwrite(rec, 1, sizeof rec, f);
    rec[0] = 10; /* e.g. CIFAR-100's coarse label */
    fwrite(rec, 1, sizeof rec, f);
    assert_int_equal(fclose(f), 0);
    expect_refusal("data_batch_2.bin: record 2 (byte 3073): label 10 is not in 0..9");
}

static void more_records_than_the_limit_are_refused(void **st) {
    (void)st;
    write_all();
    pp_cifar_set tr, te;
    char err[512] = "";
    assert_int_equal(pp_cifar_load(dir, 11, &tr, &te, err, sizeof err), -1);
    assert_non_null(strstr(err, "data_batch_5.bin: 4 records; at most 11 in a set"));
    assert_int_equal(pp_cifar_load(dir, 12, &tr, &te, err, sizeof err), 0);
    pp_cifar_free(&tr);
    pp_cifar_free(&te);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(records_read_back_in_order),
        cmocka_unit_test(a_file_cut_short_is_refused_with_its_size),
        cmocka_unit_test(a_missing_or_empty_file_is_refused),
        cmocka_unit_test(a_label_above_9_is_refused_with_its_record),
        cmocka_unit_test(more_records_than_the_limit_are_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
