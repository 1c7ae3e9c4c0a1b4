/* proxprop: the CIFAR-10 binary reader (see pp_cifar.h). Each file is
 * sized first (fseek/ftell), checked to be a whole number of records, and
 * read record by record into arrays grown for it. */
#include "pp_cifar.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void pp_cifar_free(pp_cifar_set *s) {
    if (!s) return;
    free(s->X);
    free(s->y);
    memset(s, 0, sizeof *s);
}

/* Appends the records of path to *s. */
static int read_file(const char *path, int max_records, pp_cifar_set *s,
                     char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return fail(err, errlen, "%s: cannot determine its size (not a "
                    "regular file?)", path);
    }
    if (size == 0 || size % PP_CIFAR_RECORD != 0) {
        fclose(f);
        return fail(err, errlen, "%s: %ld bytes is not a whole, nonzero number "
                    "of %d-byte records (1 label byte + %d pixel bytes): cut "
                    "short, or not a CIFAR-10 binary file", path, size,
                    PP_CIFAR_RECORD, PP_CIFAR_PIXELS);
    }
    long k = size / PP_CIFAR_RECORD;
    if (k > (long)max_records - s->n) {
        fclose(f);
        return fail(err, errlen, "%s: %ld records; at most %d in a set", path,
                    k, max_records);
    }
    size_t n = (size_t)s->n + (size_t)k;
    unsigned char *X = realloc(s->X, n * PP_CIFAR_PIXELS);
    if (X) s->X = X;
    int *y = X ? realloc(s->y, n * sizeof *y) : NULL;
    if (y) s->y = y;
    if (!X || !y) {
        fclose(f);
        return fail(err, errlen, "%s: out of memory for %zu records", path, n);
    }
    unsigned char rec[PP_CIFAR_RECORD];
    for (long j = 0; j < k; j++) {
        if (fread(rec, 1, sizeof rec, f) != sizeof rec) {
            int e = ferror(f);
            fclose(f);
            return fail(err, errlen, "%s: record %ld: %s", path, j + 1,
                        e ? "read error" : "the file ended early");
        }
        if (rec[0] >= PP_CIFAR_CLASSES) {
            fclose(f);
            return fail(err, errlen, "%s: record %ld (byte %ld): label %d is not "
                        "in 0..9: not a CIFAR-10 binary file (CIFAR-100's has "
                        "two label bytes)", path, j + 1, j * PP_CIFAR_RECORD,
                        rec[0]);
        }
        s->y[s->n] = rec[0];
        memcpy(s->X + (size_t)s->n * PP_CIFAR_PIXELS, rec + 1, PP_CIFAR_PIXELS);
        s->n++;
    }
    fclose(f);
    return 0;
}

int pp_cifar_load(const char *dir, int max_records, pp_cifar_set *train,
                  pp_cifar_set *test, char *err, size_t errlen) {
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (max_records < 1) return fail(err, errlen, "pp_cifar_load: max_records < 1");
    char path[4096];
    int rc = 0;
    for (int b = 1; b <= 6 && rc == 0; b++) {
        int w = b <= 5 ? snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, b)
                       : snprintf(path, sizeof path, "%s/test_batch.bin", dir);
        if (w < 0 || (size_t)w >= sizeof path)
            rc = fail(err, errlen, "%s: directory name too long", dir);
        else
            rc = read_file(path, max_records, b <= 5 ? train : test, err, errlen);
    }
    if (rc != 0) {
        pp_cifar_free(train);
        pp_cifar_free(test);
    }
    return rc;
}
