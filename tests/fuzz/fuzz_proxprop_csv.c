/* libFuzzer target: proxprop's CSV reader (examples/proxprop/pp_data.c) on
 * arbitrary bytes.
 *
 * Each input is read from memory (fmemopen) five times: label first and
 * label last with the default limits, twice with small column and row limits
 * (so the refusals are reached by short inputs), and once with an allocator
 * whose k-th allocation fails (k from the input's size). Every read must
 * return 0 or -1 without a crash, a sanitizer report or a leak, and:
 *   -1: a message that starts with the file's name, and *out zeroed;
 *    0: within the limits (n in [10, max_rows], d + 1 <= max_columns, at
 *       least 2 classes, labels in [0, classes), finite features), no more
 *       examples than lines, no more fields than the bytes allow;
 *   and in both cases a peak of allocated bytes (the old and the new block
 *   counted together in a realloc) of at most 12 per byte of the input plus
 *   4 KB, as pp_data.h promises.
 *
 * Seeds: tests/fuzz/corpus/proxprop_csv (crash-* files there are inputs that
 * once failed, kept as regression inputs).
 */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pp_data.h"
#include "pp_count.h"

static void check(int ok) {
    if (!ok) abort();
}

static void read_once(const uint8_t *data, size_t size, int label_last,
                      int max_columns, int max_rows, long fail_at) {
    FILE *f = size ? fmemopen((void *)(uintptr_t)data, size, "r")
                   : fopen("/dev/null", "r");
    if (!f) abort();
    pp_csv_opts o;
    pp_csv_opts_default(&o);
    o.label_last = label_last;
    if (max_columns) o.max_columns = max_columns;
    if (max_rows) o.max_rows = max_rows;
    counter_t c = {0};
    c.fail_at = fail_at;
    o.realloc_fn = count_realloc;
    o.free_fn = count_free;
    o.alloc_ctx = &c;
    pp_data D;
    char err[512];
    int rc = pp_csv_read(f, "fuzz.csv", &o, &D, err, sizeof err);
    fclose(f);
    if (rc == 0) {
        size_t lines = 1, commas = 0;
        for (size_t k = 0; k < size; k++) {
            lines += data[k] == '\n';
            commas += data[k] == ',';
        }
        check(D.n >= PP_MIN_ROWS && D.n <= o.max_rows && (size_t)D.n <= lines);
        check(D.d >= 1 && D.d + 1 <= o.max_columns);
        check((size_t)D.n * (size_t)D.d <= commas);
        check(D.classes >= 2 && D.classes <= PP_MAX_LABEL + 1);
        int top = 0;
        for (int j = 0; j < D.n; j++) {
            check(D.y[j] >= 0 && D.y[j] < D.classes);
            if (D.y[j] == D.classes - 1) top = 1;
        }
        check(top);
        for (size_t k = 0; k < (size_t)D.n * (size_t)D.d; k++) check(isfinite(D.X[k]));
        pp_data_free(&D, &o);
    } else {
        check(rc == -1);
        check(strncmp(err, "fuzz.csv", 8) == 0);
        check(D.n == 0 && D.d == 0 && D.X == NULL && D.y == NULL);
    }
    check(c.live == 0 && c.blocks == 0);
    check(c.peak <= 12 * size + 4096);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    read_once(data, size, 0, 0, 0, 0);
    read_once(data, size, 1, 0, 0, 0);
    read_once(data, size, 0, 4, 12, 0);
    read_once(data, size, 1, 3, 10, 0);
    read_once(data, size, (int)(size & 1), 0, 0, 1 + (long)(size % 9));
    return 0;
}
