/* Helpers of the proxprop timing programs (bench_pp_step, bench_pp_convnet):
 * the load average printed beside the figures, and the comparison for
 * qsort when taking medians. */
#ifndef PP_BENCH_H
#define PP_BENCH_H

#include <stdio.h>
#include <string.h>

static inline void pp_loadavg(const char *when) {
    FILE *f = fopen("/proc/loadavg", "r");
    char buf[128] = "?\n";
    if (f) {
        if (!fgets(buf, sizeof buf, f)) strcpy(buf, "?\n");
        fclose(f);
    }
    printf("load average %s: %s", when, buf);
}

static inline int pp_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#endif
