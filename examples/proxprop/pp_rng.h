/* proxprop: seeded random numbers (splitmix64), shared by main.c and
 * pp_net.c. */
#ifndef PP_RNG_H
#define PP_RNG_H

#include <math.h>
#include <stdint.h>

static inline uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline double rng_uniform(uint64_t *s) { /* [0, 1) */
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

static inline double rng_normal(uint64_t *s) { /* Box-Muller */
    double u = rng_uniform(s), v = rng_uniform(s);
    if (u < 1e-300) u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static inline int rng_int(uint64_t *s, int n) { return (int)(rng_uniform(s) * n); }

#endif
