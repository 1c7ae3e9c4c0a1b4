/* libFuzzer target for the tracker CSV reader: the input is a tracks file
 * and, after the first NUL byte (if any), a truth file. Every input must give
 * 0 or -1 with a message, never a crash or undefined behaviour (built with
 * ASan + UBSan). */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tf.h"

static void put(const char *path, const uint8_t *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n) fwrite(p, 1, n, f);
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char tracks[64], truth[64], err[512];
    snprintf(tracks, sizeof tracks, "/tmp/wb_fuzz_tracks_%d.csv", (int)getpid());
    snprintf(truth, sizeof truth, "/tmp/wb_fuzz_truth_%d.csv", (int)getpid());
    const uint8_t *nul = memchr(data, 0, size);
    size_t n1 = nul ? (size_t)(nul - data) : size;
    put(tracks, data, n1);
    if (nul) put(truth, nul + 1, size - n1 - 1);
    tf_data d;
    int r = tf_read_csv(tracks, nul ? truth : NULL, &d, err, sizeof err);
    if (r == 0) {
        for (int q = 0; q < d.count; q++) /* touch what was read */
            if (d.seq[q].T < 1 || d.seq[q].K != d.K) abort();
        tf_data_free(&d);
    } else if (err[0] == '\0') {
        abort(); /* a failure must say why */
    }
    remove(tracks);
    if (nul) remove(truth);
    return 0;
}
