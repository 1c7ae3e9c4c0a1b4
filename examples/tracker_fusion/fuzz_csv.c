/* libFuzzer target for the tracker CSV reader: the input is a tracks file
 * and, after the first NUL byte (if any), a truth file. Every input must give
 * 0 or -1 with a message, never a crash or undefined behaviour (built with
 * ASan + UBSan). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
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
        for (int q = 0; q < d.count; q++) { /* touch what was read */
            const tf_seq *s = &d.seq[q];
            if (s->T < 1 || s->K != d.K || !s->name || strlen(s->name) == 0) abort();
            /* memory linear in the input: frames bounded by the lines */
            if ((double)s->T > TF_FRAMES_PER_LINE * (double)size + TF_FRAMES_SLACK) abort();
            for (size_t i = 0; i < (size_t)s->T * s->K; i++) {
                if (!s->m[i]) continue;
                if (!(fabs(s->y[2 * i]) <= TF_MAX_COORD)) abort();
                if (s->sz && !isnan(s->sz[2 * i]) && !(s->sz[2 * i] > 0)) abort();
                if (s->score && !isnan(s->score[i]) && !isfinite(s->score[i])) abort();
            }
            if (s->has_truth_sz && !(s->truth_sz[0] > 0)) abort();
        }
        for (int k = 0; k < d.K; k++)
            if (!d.names[k]) abort();
        tf_data_free(&d);
    } else if (err[0] == '\0') {
        abort(); /* a failure must say why */
    }
    remove(tracks);
    if (nul) remove(truth);
    return 0;
}
