/* Shared helpers for the cmocka tests (header-only). */
#ifndef WB_TEST_H
#define WB_TEST_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wiberg.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* cmocka 1.1's assert_float_equal casts to float: this compares doubles.
   Passes when |a - b| <= atol + rtol * |b|. */
#define wb_assert_close(a, b, atol, rtol)                                      \
    wb_assert_close_impl((a), (b), (atol), (rtol), #a, #b, __FILE__, __LINE__)

static inline void wb_assert_close_impl(double a, double b, double atol,
                                        double rtol, const char *sa,
                                        const char *sb, const char *file,
                                        int line) {
    if (!(fabs(a - b) <= atol + rtol * fabs(b))) {
        fail_msg("%s:%d: %s = %.17g not close to %s = %.17g "
                 "(|diff| = %.3g, atol %.3g, rtol %.3g)",
                 file, line, sa, a, sb, b, fabs(a - b), atol, rtol);
    }
}

/* Deterministic uniform [0,1) generator (splitmix64), for test data. */
static inline double wb_test_rand(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* An allocator for settings.alloc / dealloc whose fail_at-th allocation
   fails (0: none), counting the blocks still live (leaks show as live > 0). */
typedef struct { int count, fail_at, live; } failalloc_t;
static inline void *fail_alloc(void *ctx, size_t n) {
    failalloc_t *f = ctx;
    if (++f->count == f->fail_at) return NULL;
    f->live++;
    return malloc(n);
}
static inline void fail_free(void *ctx, void *p) {
    ((failalloc_t *)ctx)->live--;
    free(p);
}

/* Path of a file under tests/data (WB_TEST_DATA, set by ctest). */
static inline const char *wb_test_data_path(const char *name, char *buf,
                                            size_t len) {
    const char *dir = getenv("WB_TEST_DATA");
    snprintf(buf, len, "%s/%s", dir ? dir : "tests/data", name);
    return buf;
}

#endif
