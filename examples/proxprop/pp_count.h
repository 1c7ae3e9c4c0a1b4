/* A byte-counting allocator for pp_csv_opts (realloc_fn / free_fn), shared by
 * test_pp_data.c and tests/fuzz/fuzz_proxprop_csv.c: live bytes and their
 * peak, where a realloc counts the old and the new block together (as a
 * copying realloc holds both); the fail_at-th call fails (0: never). Each
 * block carries its size in a 16-byte header. */
#ifndef PP_COUNT_H
#define PP_COUNT_H

#include <stdlib.h>
#include <string.h>

typedef struct {
    size_t live, peak;
    long blocks, calls, fail_at;
} counter_t;

static inline void *count_realloc(void *ctx, void *ptr, size_t size) {
    counter_t *c = ctx;
    if (++c->calls == c->fail_at) return NULL;
    size_t old = 0;
    unsigned char *base = NULL;
    if (ptr) {
        base = (unsigned char *)ptr - 16;
        memcpy(&old, base, sizeof old);
    }
    if (c->live + size > c->peak) c->peak = c->live + size;
    unsigned char *nb = realloc(base, size + 16);
    if (!nb) return NULL;
    memcpy(nb, &size, sizeof size);
    c->live = c->live - old + size;
    if (!ptr) c->blocks++;
    return nb + 16;
}

static inline void count_free(void *ctx, void *ptr) {
    counter_t *c = ctx;
    if (!ptr) return;
    unsigned char *base = (unsigned char *)ptr - 16;
    size_t old;
    memcpy(&old, base, sizeof old);
    c->live -= old;
    c->blocks--;
    free(base);
}

#endif
