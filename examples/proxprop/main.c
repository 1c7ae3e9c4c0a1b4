/* proxprop: BackProp vs ProxProp on a small MLP, all in C.
 *
 * A network IN-256-128-C (ReLU, softmax cross-entropy, mean over the batch)
 * is trained from the same seeded initialization and the same mini-batch
 * order by
 *
 *   BackProp  Nesterov SGD on the gradient, one run per learning rate;
 *   ProxProp  (Frerix et al., ICLR 2018, Algorithm 2 and their code) the
 *             hidden layers take the proximal step of libwiberg's
 *             wb_prox_step,
 *               T+ = argmin_T 1/2 ||T [a; 1] - (z - dL/dz)||^2
 *                           + 1/(2 tau) ||T - T0||^2,
 *             exactly (Cholesky) or by k CG iterations, and T0 - T+ is
 *             handed to the same Nesterov SGD in place of the gradient, with
 *             learning rate 1. The last layer stays explicit (its gradient,
 *             same optimizer, same learning rate).
 *
 * Training loss (whole training set) and validation accuracy are recorded
 * after every epoch, with the wall-clock seconds spent training (evaluation
 * excluded). A run whose loss becomes NaN/Inf, or grows beyond 100 times the
 * initial loss, is stopped and reported as diverged.
 *
 * The built-in data set (the default) is a seeded 10-class Gaussian mixture
 * in 64 dimensions whose structure lives in a 6-dimensional subspace: each
 * class is a mixture of 3 Gaussian clusters placed at random in that
 * subspace, embedded linearly in R^64 with isotropic noise in all 64
 * directions. Clusters of different classes interleave, so a linear
 * classifier is not enough. --csv FILE reads a real data set instead (e.g.
 * the 8x8 digits: a label and 64 features per line).
 *
 * Run with --help for the flags.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wiberg.h"

#include "pp_data.h"

#define NL 3       /* layers: in -> h1 -> h2 -> classes                */
#define MAXLIST 16 /* entries of a --lrs / --taus / --cg list          */
#define DIVERGE_FACTOR 100.0

/* ------------------------------------------------------------------------ */
/* Random numbers (splitmix64), seeded                                       */
/* ------------------------------------------------------------------------ */

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double rng_uniform(uint64_t *s) { /* [0, 1) */
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

static double rng_normal(uint64_t *s) { /* Box-Muller */
    double u = rng_uniform(s), v = rng_uniform(s);
    if (u < 1e-300) u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static int rng_int(uint64_t *s, int n) { return (int)(rng_uniform(s) * n); }

static void shuffle(int *idx, int n, uint64_t *s) {
    for (int i = n - 1; i > 0; i--) {
        int j = rng_int(s, i + 1), t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

static double now_seconds(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "proxprop: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "proxprop: out of memory\n");
        exit(1);
    }
    return p;
}

/* ------------------------------------------------------------------------ */
/* Data                                                                      */
/* ------------------------------------------------------------------------ */

static void data_alloc(pp_data *D, int n, int d, int classes) {
    D->n = n;
    D->d = d;
    D->classes = classes;
    D->X = xmalloc(sizeof(double) * (size_t)n * d);
    D->y = xmalloc(sizeof(int) * (size_t)n);
}

static void data_free(pp_data *D) {
    free(D->X);
    free(D->y);
}

/* The built-in mixture: see the comment at the top. */
static void make_mixture(pp_data *train, pp_data *val, int n_train, int n_val,
                         uint64_t seed) {
    enum { D = 64, C = 10, K = 3, LAT = 6 };
    const double spread = 1.0, within = 0.35, noise = 0.3;
    uint64_t s = seed * 7919u + 17u;
    static double B[D * LAT], mu[C * K * LAT];
    for (int k = 0; k < D * LAT; k++) B[k] = rng_normal(&s) / sqrt((double)LAT);
    for (int k = 0; k < C * K * LAT; k++) mu[k] = spread * rng_normal(&s);
    pp_data *sets[2] = {train, val};
    int counts[2] = {n_train, n_val};
    for (int q = 0; q < 2; q++) {
        data_alloc(sets[q], counts[q], D, C);
        for (int j = 0; j < counts[q]; j++) {
            int c = rng_int(&s, C), k = rng_int(&s, K);
            double u[LAT];
            for (int t = 0; t < LAT; t++)
                u[t] = mu[(c * K + k) * LAT + t] + within * rng_normal(&s);
            double *x = sets[q]->X + (size_t)j * D;
            for (int i = 0; i < D; i++) {
                double v = noise * rng_normal(&s);
                for (int t = 0; t < LAT; t++) v += B[i + t * D] * u[t];
                x[i] = v;
            }
            sets[q]->y[j] = c;
        }
    }
}

/* Seeded split of `all` into train / validation; features divided by the
   largest |value| of the training set (the paper's scaling by the maximum
   pixel value). */
static void split_data(const pp_data *all, double val_frac, uint64_t seed,
                       pp_data *train, pp_data *val) {
    int *idx = xmalloc(sizeof(int) * (size_t)all->n);
    for (int j = 0; j < all->n; j++) idx[j] = j;
    uint64_t s = seed * 104729u + 3u;
    shuffle(idx, all->n, &s);
    int nv = (int)lround(val_frac * all->n);
    if (nv < 1) nv = 1;
    if (nv > all->n - 1) nv = all->n - 1;
    int nt = all->n - nv;
    data_alloc(train, nt, all->d, all->classes);
    data_alloc(val, nv, all->d, all->classes);
    for (int j = 0; j < all->n; j++) {
        pp_data *D = j < nt ? train : val;
        int k = j < nt ? j : j - nt;
        memcpy(D->X + (size_t)k * all->d, all->X + (size_t)idx[j] * all->d,
               sizeof(double) * (size_t)all->d);
        D->y[k] = all->y[idx[j]];
    }
    double mx = 0;
    for (size_t k = 0; k < (size_t)nt * all->d; k++)
        if (fabs(train->X[k]) > mx) mx = fabs(train->X[k]);
    if (mx > 0) {
        for (size_t k = 0; k < (size_t)nt * all->d; k++) train->X[k] /= mx;
        for (size_t k = 0; k < (size_t)nv * all->d; k++) val->X[k] /= mx;
    }
    free(idx);
}

/* ------------------------------------------------------------------------ */
/* The network                                                               */
/* ------------------------------------------------------------------------ */

/* Layer l maps sz[l] -> sz[l+1]; its parameters T_l = [W b] are stored like
   wb_prox_step's T: sz[l+1] x (sz[l]+1), column-major, bias last column. */
typedef struct {
    int sz[NL + 1];
    size_t off[NL + 1]; /* T_l = theta + off[l]; off[NL] = total            */
    int cap;            /* columns (examples) the buffers hold              */
    double *theta, *grad, *vel; /* [off[NL]] parameters, gradient, momentum */
    double *tnew;       /* [largest layer] the proximal step's result      */
    double *X;          /* [sz[0]*cap] input batch                          */
    double *Z[NL];      /* [sz[l+1]*cap] pre-activations                    */
    double *A[NL];      /* [sz[l+1]*cap] ReLU(Z) (A[NL-1]: softmax probs)   */
    double *dZ[NL];     /* [sz[l+1]*cap] dL/dZ of the mean batch loss      */
    double *dA;         /* [max width * cap] scratch                        */
    double *Wt;         /* [largest W] a transposed weight matrix          */
} net_t;

static void net_alloc(net_t *N, const int sz[NL + 1], int cap) {
    memset(N, 0, sizeof *N);
    memcpy(N->sz, sz, sizeof N->sz);
    N->cap = cap;
    size_t big = 0;
    int wmax = 0;
    N->off[0] = 0;
    for (int l = 0; l < NL; l++) {
        size_t t = (size_t)sz[l + 1] * (sz[l] + 1);
        N->off[l + 1] = N->off[l] + t;
        if (t > big) big = t;
    }
    for (int l = 0; l <= NL; l++)
        if (sz[l] > wmax) wmax = sz[l];
    N->theta = xmalloc(sizeof(double) * N->off[NL]);
    N->grad = xmalloc(sizeof(double) * N->off[NL]);
    N->vel = xmalloc(sizeof(double) * N->off[NL]);
    N->tnew = xmalloc(sizeof(double) * big);
    N->Wt = xmalloc(sizeof(double) * big);
    N->X = xmalloc(sizeof(double) * (size_t)sz[0] * cap);
    for (int l = 0; l < NL; l++) {
        N->Z[l] = xmalloc(sizeof(double) * (size_t)sz[l + 1] * cap);
        N->A[l] = xmalloc(sizeof(double) * (size_t)sz[l + 1] * cap);
        N->dZ[l] = xmalloc(sizeof(double) * (size_t)sz[l + 1] * cap);
    }
    N->dA = xmalloc(sizeof(double) * (size_t)wmax * cap);
}

static void net_free(net_t *N) {
    free(N->theta);
    free(N->grad);
    free(N->vel);
    free(N->tnew);
    free(N->Wt);
    free(N->X);
    for (int l = 0; l < NL; l++) {
        free(N->Z[l]);
        free(N->A[l]);
        free(N->dZ[l]);
    }
    free(N->dA);
}

/* PyTorch's default for nn.Linear: W, b ~ U(-1/sqrt(in), 1/sqrt(in)). */
static void net_init(net_t *N, uint64_t seed) {
    uint64_t s = seed * 6151u + 11u;
    for (int l = 0; l < NL; l++) {
        double r = 1.0 / sqrt((double)N->sz[l]);
        double *T = N->theta + N->off[l];
        for (size_t k = 0; k < N->off[l + 1] - N->off[l]; k++)
            T[k] = r * (2 * rng_uniform(&s) - 1);
    }
}

/* C[M x Nc] = A[M x K] * B, B(k, c) = B[k*brs + c*bcs], all column-major.
   Two columns of C at a time, four columns of A per pass: the inner loop
   runs down contiguous columns and every load of A feeds two outputs. */
static void matmul(int M, int Nc, int K, const double *A, const double *B,
                   size_t brs, size_t bcs, double *C) {
    int c = 0;
    for (; c + 2 <= Nc; c += 2) {
        double *c0 = C + (size_t)c * M, *c1 = c0 + M;
        const double *p0 = B + (size_t)c * bcs, *p1 = p0 + bcs;
        for (int i = 0; i < M; i++) c0[i] = c1[i] = 0.0;
        int k = 0;
        for (; k + 4 <= K; k += 4) {
            size_t k0 = (size_t)k * brs, k1 = k0 + brs, k2 = k1 + brs, k3 = k2 + brs;
            double b00 = p0[k0], b10 = p0[k1], b20 = p0[k2], b30 = p0[k3];
            double b01 = p1[k0], b11 = p1[k1], b21 = p1[k2], b31 = p1[k3];
            const double *a0 = A + (size_t)k * M, *a1 = a0 + M, *a2 = a1 + M,
                         *a3 = a2 + M;
            for (int i = 0; i < M; i++) {
                double x0 = a0[i], x1 = a1[i], x2 = a2[i], x3 = a3[i];
                c0[i] += x0 * b00 + x1 * b10 + x2 * b20 + x3 * b30;
                c1[i] += x0 * b01 + x1 * b11 + x2 * b21 + x3 * b31;
            }
        }
        for (; k < K; k++) {
            double b0 = p0[(size_t)k * brs], b1 = p1[(size_t)k * brs];
            const double *a = A + (size_t)k * M;
            for (int i = 0; i < M; i++) {
                c0[i] += a[i] * b0;
                c1[i] += a[i] * b1;
            }
        }
    }
    for (; c < Nc; c++) {
        double *cc = C + (size_t)c * M;
        const double *bc = B + (size_t)c * bcs;
        for (int i = 0; i < M; i++) cc[i] = 0.0;
        for (int k = 0; k < K; k++) {
            double b = bc[(size_t)k * brs];
            const double *a = A + (size_t)k * M;
            for (int i = 0; i < M; i++) cc[i] += a[i] * b;
        }
    }
}

/* Forward pass on m examples in N->X; returns the mean cross-entropy of the
   labels y[m] and (when correct != NULL) counts the correct predictions. */
static double forward(net_t *N, int m, const int *y, int *correct) {
    const double *in = N->X;
    for (int l = 0; l < NL; l++) {
        int o = N->sz[l + 1], i = N->sz[l];
        const double *T = N->theta + N->off[l], *b = T + (size_t)o * i;
        /* Z = W A + b 1' */
        matmul(o, m, i, T, in, 1, (size_t)i, N->Z[l]);
        for (int j = 0; j < m; j++) {
            double *z = N->Z[l] + (size_t)j * o, *a = N->A[l] + (size_t)j * o;
            for (int r = 0; r < o; r++) {
                z[r] += b[r];
                a[r] = z[r] > 0 ? z[r] : 0.0;
            }
        }
        in = N->A[l];
    }
    /* softmax cross-entropy, stable: log sum exp (z - max) */
    int C = N->sz[NL], ok = 0;
    double loss = 0;
    for (int j = 0; j < m; j++) {
        const double *z = N->Z[NL - 1] + (size_t)j * C;
        double *p = N->A[NL - 1] + (size_t)j * C;
        double zmax = z[0];
        int arg = 0;
        for (int c = 1; c < C; c++)
            if (z[c] > zmax) zmax = z[c], arg = c;
        double s = 0;
        for (int c = 0; c < C; c++) s += (p[c] = exp(z[c] - zmax));
        for (int c = 0; c < C; c++) p[c] /= s;
        loss += log(s) + zmax - z[y[j]];
        ok += arg == y[j];
    }
    if (correct) *correct = ok;
    return loss / m;
}

/* Backward pass after forward(): dZ of every layer (old weights), and the
   explicit gradient of the last layer in N->grad (all layers when
   all_layers). */
static void backward(net_t *N, int m, const int *y, int all_layers) {
    int C = N->sz[NL];
    /* dL/dz_last = (P - onehot(y)) / m */
    for (int j = 0; j < m; j++) {
        const double *p = N->A[NL - 1] + (size_t)j * C;
        double *d = N->dZ[NL - 1] + (size_t)j * C;
        for (int c = 0; c < C; c++) d[c] = p[c] / m;
        d[y[j]] -= 1.0 / m;
    }
    for (int l = NL - 1; l >= 0; l--) {
        int o = N->sz[l + 1], i = N->sz[l];
        const double *Ain = l > 0 ? N->A[l - 1] : N->X;
        if (all_layers || l == NL - 1) {
            /* dW = dZ A', db = dZ 1 */
            double *g = N->grad + N->off[l], *gb = g + (size_t)o * i;
            matmul(o, i, m, N->dZ[l], Ain, (size_t)i, 1, g);
            for (int r = 0; r < o; r++) gb[r] = 0.0;
            for (int j = 0; j < m; j++) {
                const double *d = N->dZ[l] + (size_t)j * o;
                for (int r = 0; r < o; r++) gb[r] += d[r];
            }
        }
        if (l == 0) break;
        /* dA_in = W' dZ (W transposed once: the inner loop stays
           contiguous), then through the ReLU: dZ_in = dA_in [z_in > 0] */
        const double *W = N->theta + N->off[l];
        for (int c = 0; c < i; c++)
            for (int r = 0; r < o; r++) N->Wt[c + (size_t)r * i] = W[r + (size_t)c * o];
        matmul(i, m, o, N->Wt, N->dZ[l], 1, (size_t)o, N->dA);
        for (size_t k = 0; k < (size_t)i * m; k++)
            N->dZ[l - 1][k] = N->Z[l - 1][k] > 0 ? N->dA[k] : 0.0;
    }
}

/* Mean loss and accuracy of a whole data set, in chunks of N->cap. */
static void evaluate(net_t *N, const pp_data *D, double *loss, double *acc) {
    double L = 0;
    long ok = 0;
    for (int j0 = 0; j0 < D->n; j0 += N->cap) {
        int m = D->n - j0 < N->cap ? D->n - j0 : N->cap, c;
        memcpy(N->X, D->X + (size_t)j0 * D->d, sizeof(double) * (size_t)m * D->d);
        L += forward(N, m, D->y + j0, &c) * m;
        ok += c;
    }
    *loss = L / D->n;
    *acc = (double)ok / D->n;
}

/* ------------------------------------------------------------------------ */
/* Methods and runs                                                          */
/* ------------------------------------------------------------------------ */

typedef struct {
    char name[48];
    int prox;          /* 0: BackProp; 1: ProxProp                         */
    double lr;         /* Nesterov learning rate                           */
    double tau;        /* ProxProp: tau_theta                              */
    wb_prox_mode mode; /* ProxProp: exact or CG                            */
    int cg;            /* ProxProp CG: iterations                          */
} method_t;

typedef struct {
    double *loss, *acc, *sec; /* [epochs+1]: after epoch e (0: at start);
                                 NAN after a divergence                   */
    int diverged;             /* 1: stopped                               */
    int div_epoch;            /* epoch (1-based) in which it diverged     */
    char why[160];
    double seconds;           /* training wall-clock                      */
    double final_loss, final_acc;
} result_t;

typedef struct {
    const char *csv, *json, *plot;
    int label_last;
    double val_frac;
    int n_train, n_val, epochs, batch, h1, h2;
    double momentum, tau, prox_lr;
    double lrs[MAXLIST];
    int n_lrs;
    double taus[MAXLIST];
    int n_taus;
    int cgs[MAXLIST];
    int n_cgs;
    unsigned long long seed;
    int verbose;
} opts_t;

static void prox_settings(const method_t *me, wb_prox_settings *ps) {
    wb_prox_settings_default(ps);
    ps->tau = me->tau;
    ps->mode = me->mode;
    ps->cg_iters = me->cg > 0 ? me->cg : 1;
}

/* Every proximal layer of every ProxProp run is created (and freed) before
   any training, so that layer sizes or settings the library refuses, or
   memory it cannot have, stop the program with the library's reason before
   the BackProp runs rather than after them. Returns 0, or 1 with a message. */
static int check_prox_layers(const int sz[NL + 1], const method_t *ms, int nm) {
    for (int k = 0; k < nm; k++) {
        if (!ms[k].prox) continue;
        wb_prox_settings ps;
        prox_settings(&ms[k], &ps);
        for (int l = 0; l < NL - 1; l++) {
            wb_prox *p = NULL;
            wb_status st = wb_prox_create(&p, sz[l + 1], sz[l], &ps);
            wb_prox_destroy(p);
            if (st != WB_OK) {
                fprintf(stderr, "proxprop: %s cannot run: layer %d (%d -> %d): "
                                "%s\n", ms[k].name, l + 1, sz[l], sz[l + 1],
                        wb_last_error());
                return 1;
            }
        }
    }
    return 0;
}

/* wb_prox_create checks the layer sizes before it allocates anything
   (BLAS's int sizes: (n_in + 1)^2 and n_out (n_in + 1) must fit in an int).
   With an allocator that always refuses, it answers WB_ENOMEM for sizes it
   takes and WB_EINVAL for sizes it refuses, and allocates nothing. */
static void *refuse_alloc(void *ctx, size_t size) {
    (void)ctx;
    (void)size;
    return NULL;
}

static void refuse_free(void *ctx, void *ptr) {
    (void)ctx;
    (void)ptr;
}

static int prox_takes(int n_out, int n_in) {
    wb_prox_settings ps;
    wb_prox_settings_default(&ps);
    ps.alloc = refuse_alloc;
    ps.dealloc = refuse_free;
    wb_prox *p = NULL;
    wb_status st = wb_prox_create(&p, n_out, n_in, &ps);
    wb_prox_destroy(p);
    return st != WB_EINVAL;
}

/* The most input features a first hidden layer of h1 units can take
   (0: none), by bisection on prox_takes: 46339 for h1 <= 46340, where
   (n_in + 1)^2 <= 2^31 - 1 is the binding limit. */
static int max_features(int h1) {
    if (!prox_takes(h1, 1)) return 0;
    int lo = 1, hi = INT_MAX; /* prox_takes(h1, lo), !prox_takes(h1, hi) */
    while (hi - lo > 1) {
        int mid = lo + (hi - lo) / 2;
        if (prox_takes(h1, mid)) lo = mid;
        else hi = mid;
    }
    wb_last_error_clear();
    return lo;
}

static void run_method(const method_t *me, const opts_t *o, const pp_data *tr,
                       const pp_data *va, net_t *N, result_t *R) {
    int E = o->epochs;
    R->loss = xmalloc(sizeof(double) * (size_t)(E + 1));
    R->acc = xmalloc(sizeof(double) * (size_t)(E + 1));
    R->sec = xmalloc(sizeof(double) * (size_t)(E + 1));
    for (int e = 0; e <= E; e++) R->loss[e] = R->acc[e] = R->sec[e] = NAN;
    R->diverged = 0;
    R->div_epoch = 0;
    R->why[0] = '\0';

    net_init(N, o->seed);
    memset(N->vel, 0, sizeof(double) * N->off[NL]);
    wb_prox *px[NL - 1] = {NULL};
    if (me->prox) {
        wb_prox_settings ps;
        prox_settings(me, &ps);
        for (int l = 0; l < NL - 1; l++) {
            wb_status st = wb_prox_create(&px[l], N->sz[l + 1], N->sz[l], &ps);
            if (st != WB_OK) { /* check_prox_layers passed: out of memory */
                fprintf(stderr, "proxprop: %s: %s\n", me->name, wb_last_error());
                exit(1);
            }
        }
    }
    double l0, a0;
    evaluate(N, tr, &R->loss[0], &a0);
    evaluate(N, va, &l0, &R->acc[0]);
    R->sec[0] = 0;
    const double limit = DIVERGE_FACTOR * R->loss[0];

    int *order = xmalloc(sizeof(int) * (size_t)tr->n);
    int *yb = xmalloc(sizeof(int) * (size_t)o->batch);
    for (int j = 0; j < tr->n; j++) order[j] = j;
    uint64_t shuffle_state = o->seed * 31337u + 5u; /* same for all methods */
    double seconds = 0;
    const double mu = o->momentum, lr = me->lr;
    const size_t np = N->off[NL];

    for (int e = 1; e <= E && !R->diverged; e++) {
        shuffle(order, tr->n, &shuffle_state);
        double t0 = now_seconds();
        for (int j0 = 0; j0 < tr->n && !R->diverged; j0 += o->batch) {
            int m = tr->n - j0 < o->batch ? tr->n - j0 : o->batch;
            for (int j = 0; j < m; j++) {
                memcpy(N->X + (size_t)j * tr->d, tr->X + (size_t)order[j0 + j] * tr->d,
                       sizeof(double) * (size_t)tr->d);
                yb[j] = tr->y[order[j0 + j]];
            }
            double loss = forward(N, m, yb, NULL);
            if (!isfinite(loss) || loss > limit) {
                R->diverged = 1;
                snprintf(R->why, sizeof R->why, "batch loss %g", loss);
                break;
            }
            backward(N, m, yb, !me->prox);
            if (me->prox) {
                /* hidden layers: T+ = prox(A_in, Z - dL/dZ, T); grad = T - T+ */
                for (int l = 0; l < NL - 1; l++) {
                    int ou = N->sz[l + 1], in = N->sz[l];
                    double *target = N->dA; /* free now: Z - dZ */
                    for (size_t k = 0; k < (size_t)ou * m; k++)
                        target[k] = N->Z[l][k] - N->dZ[l][k];
                    const double *Ain = l > 0 ? N->A[l - 1] : N->X;
                    double *T = N->theta + N->off[l], *g = N->grad + N->off[l];
                    wb_status st = wb_prox_step(px[l], m, Ain, target, T, N->tnew);
                    if (st != WB_OK) {
                        R->diverged = 1;
                        snprintf(R->why, sizeof R->why, "layer %d: %s", l + 1,
                                 wb_prox_message(px[l]));
                        break;
                    }
                    for (size_t k = 0; k < (size_t)ou * (in + 1); k++)
                        g[k] = T[k] - N->tnew[k];
                }
                if (R->diverged) break;
            }
            /* Nesterov (PyTorch's form): v = mu v + g; theta -= lr (g + mu v) */
            for (size_t k = 0; k < np; k++) {
                N->vel[k] = mu * N->vel[k] + N->grad[k];
                N->theta[k] -= lr * (N->grad[k] + mu * N->vel[k]);
            }
        }
        seconds += now_seconds() - t0;
        if (R->diverged) {
            R->div_epoch = e;
            break;
        }
        double acc_tr;
        evaluate(N, tr, &R->loss[e], &acc_tr);
        evaluate(N, va, &l0, &R->acc[e]);
        R->sec[e] = seconds;
        if (!isfinite(R->loss[e]) || R->loss[e] > limit) {
            R->diverged = 1;
            R->div_epoch = e;
            snprintf(R->why, sizeof R->why, "training loss %g", R->loss[e]);
            R->loss[e] = R->acc[e] = NAN;
        }
        if (o->verbose)
            fprintf(stderr, "  %-24s epoch %2d  loss %.4f  val acc %.4f  %.2f s\n",
                    me->name, e, R->loss[e], R->acc[e], seconds);
    }
    R->seconds = seconds;
    R->final_loss = R->diverged ? NAN : R->loss[E];
    R->final_acc = R->diverged ? NAN : R->acc[E];
    for (int l = 0; l < NL - 1; l++) wb_prox_destroy(px[l]);
    free(order);
    free(yb);
}

/* ------------------------------------------------------------------------ */
/* Output: table, JSON, SVG                                                  */
/* ------------------------------------------------------------------------ */

static void json_num(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.10g", v);
    else fputs("null", f);
}

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
        else fputc(*s, f);
    }
    fputc('"', f);
}

static int write_json(const char *path, const opts_t *o, const char *dataset,
                      const pp_data *tr, const pp_data *va, const method_t *ms,
                      const result_t *rs, int nm) {
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "proxprop: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    fprintf(f, "{\n  \"dataset\": ");
    json_str(f, dataset);
    fprintf(f, ",\n  \"train_examples\": %d, \"val_examples\": %d, "
               "\"features\": %d, \"classes\": %d,\n",
            tr->n, va->n, tr->d, tr->classes);
    fprintf(f, "  \"network\": [%d, %d, %d, %d], \"epochs\": %d, \"batch\": %d, "
               "\"momentum\": %g, \"seed\": %llu,\n",
            tr->d, o->h1, o->h2, tr->classes, o->epochs, o->batch, o->momentum,
            o->seed);
    fprintf(f, "  \"methods\": [\n");
    for (int k = 0; k < nm; k++) {
        const method_t *m = &ms[k];
        const result_t *r = &rs[k];
        fprintf(f, "    {\"name\": ");
        json_str(f, m->name);
        fprintf(f, ", \"final_train_loss\": ");
        json_num(f, r->final_loss);
        fprintf(f, ", \"val_accuracy\": ");
        json_num(f, r->final_acc);
        fprintf(f, ", \"seconds\": %.4f,\n      \"method\": \"%s\", \"lr\": %g",
                r->seconds, m->prox ? "proxprop" : "backprop", m->lr);
        if (m->prox) {
            fprintf(f, ", \"tau\": %g, \"solver\": \"", m->tau);
            if (m->mode == WB_PROX_EXACT) fprintf(f, "exact\"");
            else fprintf(f, "cg%d\"", m->cg);
        }
        fprintf(f, ", \"diverged\": %s", r->diverged ? "true" : "false");
        if (r->diverged) fprintf(f, ", \"diverged_epoch\": %d", r->div_epoch);
        const char *keys[3] = {"train_loss", "val_acc", "epoch_seconds"};
        const double *vals[3] = {r->loss, r->acc, r->sec};
        for (int q = 0; q < 3; q++) {
            fprintf(f, ",\n      \"%s\": [", keys[q]);
            for (int e = 0; e <= o->epochs; e++) {
                if (e) fputs(", ", f);
                json_num(f, vals[q][e]);
            }
            fputc(']', f);
        }
        fprintf(f, "}%s\n", k + 1 < nm ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    if (fclose(f) != 0) {
        fprintf(stderr, "proxprop: error writing %s\n", path);
        return 1;
    }
    return 0;
}

/* A "nice" tick step near range / 5: 1, 2 or 5 times a power of ten. */
static double nice_step(double range) {
    double raw = range / 5, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static const char *COLORS[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                               "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                               "#bcbd22", "#17becf", "#000000", "#00a087",
                               "#637939", "#843c39", "#5254a3", "#6b6ecf"};

static void svg_text(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else fputc(*s, f);
    }
}

/* One plot: for each method k, the points (x[k][e], y[k][e]), e = 0..E,
   skipping NaN (a diverged run ends with an 'x' at its last point). */
static int write_svg(const char *dir, const char *file, const char *title,
                     const char *xlabel, const char *ylabel, int logy,
                     const method_t *ms, const result_t *rs, int nm, int E,
                     int x_is_seconds, int y_is_acc) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "proxprop: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    const double W = 900, H = 480, x0 = 80, x1 = 600, y0 = 50, y1 = 420;
    double xmin = 0, xmax = 0, ymin = INFINITY, ymax = -INFINITY;
    for (int k = 0; k < nm; k++)
        for (int e = 0; e <= E; e++) {
            double x = x_is_seconds ? rs[k].sec[e] : e;
            double y = y_is_acc ? rs[k].acc[e] : rs[k].loss[e];
            if (!isfinite(x) || !isfinite(y) || (logy && y <= 0)) continue;
            if (logy) y = log10(y);
            if (x > xmax) xmax = x;
            if (y < ymin) ymin = y;
            if (y > ymax) ymax = y;
        }
    if (!(xmax > xmin)) xmax = xmin + 1;
    if (!isfinite(ymin)) ymin = 0, ymax = 1;
    if (logy) {
        ymin = floor(ymin * 4) / 4; /* quarter decades */
        ymax = ceil(ymax * 4) / 4;
    }
    if (y_is_acc) ymin = floor(ymin * 10) / 10, ymax = 1.0;
    if (!(ymax > ymin)) ymax = ymin + 1;
#define SX(x) (x0 + ((x) - xmin) / (xmax - xmin) * (x1 - x0))
#define SY(y) (y1 - ((y) - ymin) / (ymax - ymin) * (y1 - y0))
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
               "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" "
               "font-size=\"12\">\n", W, H, W, H);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"%.0f\" y=\"28\" font-size=\"15\" text-anchor=\"middle\">",
            (x0 + x1) / 2);
    svg_text(f, title);
    fprintf(f, "</text>\n");
    /* grid and ticks */
    double xs = nice_step(xmax - xmin);
    for (double x = ceil(xmin / xs) * xs; x <= xmax + 1e-9 * xs; x += xs) {
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" "
                   "stroke=\"#ddd\"/>\n", SX(x), y0, SX(x), y1);
        fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%g</text>\n",
                SX(x), y1 + 16, x);
    }
    if (logy) {
        for (double d = floor(ymin); d <= ymax; d += 1)
            for (int q = 1; q <= 9; q++) {
                double y = d + log10((double)q);
                if (y < ymin - 1e-9 || y > ymax + 1e-9) continue;
                int label = q == 1 || ((q == 2 || q == 5) && ymax - ymin <= 1.5);
                fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" "
                           "stroke=\"%s\"/>\n", x0, SY(y), x1, SY(y),
                        q == 1 ? "#ccc" : "#eee");
                if (label)
                    fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">"
                               "%g</text>\n", x0 - 6, SY(y) + 4, pow(10, y));
            }
    } else {
        double ys = nice_step(ymax - ymin);
        for (double y = ceil(ymin / ys) * ys; y <= ymax + 1e-9 * ys; y += ys) {
            fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" "
                       "stroke=\"#ddd\"/>\n", x0, SY(y), x1, SY(y));
            fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                    x0 - 6, SY(y) + 4, y);
        }
    }
    fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" "
               "fill=\"none\" stroke=\"black\"/>\n", x0, y0, x1 - x0, y1 - y0);
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">", (x0 + x1) / 2,
            H - 22);
    svg_text(f, xlabel);
    fprintf(f, "</text>\n<text transform=\"translate(22 %.0f) rotate(-90)\" "
               "text-anchor=\"middle\">", (y0 + y1) / 2);
    svg_text(f, ylabel);
    fprintf(f, "</text>\n");
    /* series, clipped to the plot area */
    fprintf(f, "<clipPath id=\"area\"><rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" "
               "height=\"%.0f\"/></clipPath>\n", x0, y0, x1 - x0, y1 - y0);
    int ncol = (int)(sizeof COLORS / sizeof COLORS[0]);
    for (int k = 0; k < nm; k++) {
        const char *col = COLORS[k % ncol];
        const char *dash = ms[k].prox ? "" : " stroke-dasharray=\"6 3\"";
        fprintf(f, "<polyline clip-path=\"url(#area)\" fill=\"none\" stroke=\"%s\" "
                   "stroke-width=\"1.8\"%s points=\"", col, dash);
        double lx = NAN, ly = NAN;
        for (int e = 0; e <= E; e++) {
            double x = x_is_seconds ? rs[k].sec[e] : e;
            double y = y_is_acc ? rs[k].acc[e] : rs[k].loss[e];
            if (!isfinite(x) || !isfinite(y) || (logy && y <= 0)) continue;
            if (logy) y = log10(y);
            fprintf(f, "%.1f,%.1f ", SX(x), SY(y));
            lx = SX(x), ly = SY(y);
        }
        fprintf(f, "\"/>\n");
        if (rs[k].diverged && isfinite(lx))
            fprintf(f, "<path d=\"M%.1f %.1fl8 8m0 -8l-8 8\" transform=\"translate(-4 -4)\" "
                       "stroke=\"%s\" stroke-width=\"2\"/>\n", lx, ly, col);
        /* legend */
        double ly0 = y0 + 6 + 17.0 * k;
        fprintf(f, "<line x1=\"615\" y1=\"%.1f\" x2=\"645\" y2=\"%.1f\" stroke=\"%s\" "
                   "stroke-width=\"2\"%s/>\n", ly0, ly0, col, dash);
        fprintf(f, "<text x=\"652\" y=\"%.1f\">", ly0 + 4);
        svg_text(f, ms[k].name);
        if (rs[k].diverged) fprintf(f, " (diverged)");
        fprintf(f, "</text>\n");
    }
#undef SX
#undef SY
    fprintf(f, "</svg>\n");
    if (fclose(f) != 0) {
        fprintf(stderr, "proxprop: error writing %s\n", path);
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Command line                                                              */
/* ------------------------------------------------------------------------ */

static void usage(FILE *f) {
    fprintf(f,
"Usage: proxprop [options]\n"
"\n"
"Trains an MLP IN-H1-H2-C (ReLU, softmax cross-entropy) with BackProp\n"
"(Nesterov SGD, a learning-rate sweep) and with ProxProp (proximal steps on\n"
"the hidden layers through libwiberg's wb_prox_step: exact, and k CG\n"
"iterations; a tau sweep), all from the same initialization and batch order,\n"
"and prints final training loss, validation accuracy and training seconds.\n"
"\n"
"Data (default: a seeded 10-class Gaussian mixture in 64-D, see README.md):\n"
"  --csv FILE        read a data set: one example per line, comma-separated,\n"
"                    the integer label (>= 0) then the features; blank lines\n"
"                    and lines starting with '#' are skipped. Features are\n"
"                    divided by the largest |value| of the training split.\n"
"                    At most as many columns as the first hidden layer takes\n"
"                    (46340 with H1 = 256); a NUL byte is an error\n"
"  --label-last      with --csv: the label is the last field instead (the\n"
"                    layout of scikit-learn's digits.csv)\n"
"  --val-frac F      with --csv: fraction held out for validation (0.2)\n"
"  --train N         built-in data: training examples (2000)\n"
"  --val N           built-in data: validation examples (1000)\n"
"\n"
"Training:\n"
"  --epochs N        passes over the training set (10)\n"
"  --batch N         mini-batch size (100)\n"
"  --hidden H1,H2    hidden widths (256,128)\n"
"  --momentum M      Nesterov momentum, both methods, in [0, 1) (0.9)\n"
"  --lrs LIST        BackProp learning rates (0.01,0.1,0.5,2,10)\n"
"  --taus LIST       ProxProp tau_theta sweep, exact solve (0.01,0.1,1,10)\n"
"  --tau T           tau_theta of the CG runs (0.1)\n"
"  --cg LIST         ProxProp CG iteration counts (1,3,10)\n"
"  --prox-lr L       ProxProp's Nesterov learning rate, all layers (1)\n"
"  --seed S          data, initialization and batch order (1)\n"
"\n"
"Output:\n"
"  --json FILE       write {\"methods\": [{\"name\", \"final_train_loss\",\n"
"                    \"val_accuracy\", \"seconds\", ...}]} (null for a diverged\n"
"                    run's loss and accuracy)\n"
"  --plot DIR        write SVG plots into the existing directory DIR:\n"
"                    loss_epoch.svg, loss_seconds.svg, val_acc_epoch.svg,\n"
"                    val_acc_seconds.svg\n"
"  --verbose         one line per method and epoch on stderr\n"
"  --help            this text\n"
"\n"
"A run whose loss turns NaN/Inf or exceeds %g times its initial value is\n"
"stopped and reported as diverged. Exit status: 0 ok, 1 a run-time error\n"
"(unreadable or malformed file), 2 a bad command line.\n", DIVERGE_FACTOR);
}

static void bad_usage(const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "proxprop: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\nTry 'proxprop --help'.\n");
    exit(2);
}

static double parse_double(const char *flag, const char *s) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !isfinite(v) || errno == ERANGE)
        bad_usage("%s: '%s' is not a finite number", flag, s);
    return v;
}

static long parse_long(const char *flag, const char *s, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE || v < lo || v > hi) {
        char range[64];
        snprintf(range, sizeof range, "an integer in [%ld, %ld]", lo, hi);
        fprintf(stderr, "proxprop: %s: '%s' is not %s\nTry 'proxprop --help'.\n",
                flag, s, range);
        exit(2);
    }
    return v;
}

/* "a,b,c" -> up to MAXLIST positive numbers */
static int parse_list(const char *flag, const char *list, double *out) {
    int n = 0;
    char buf[64];
    const char *s = list;
    while (*s) {
        size_t len = strcspn(s, ",");
        if (len == 0 || len >= sizeof buf || n == MAXLIST)
            bad_usage("%s: '%s' is not a comma-separated list of at most 16 "
                      "numbers", flag, list);
        memcpy(buf, s, len);
        buf[len] = '\0';
        out[n] = parse_double(flag, buf);
        if (!(out[n] > 0)) bad_usage("%s: %s must be > 0", flag, buf);
        n++;
        s += len;
        if (*s == ',') {
            s++;
            if (!*s) bad_usage("%s: '%s' ends with a comma", flag, list);
        }
    }
    if (n == 0) bad_usage("%s: empty list%s", flag, "");
    return n;
}

static void parse_args(int argc, char **argv, opts_t *o) {
    memset(o, 0, sizeof *o);
    o->val_frac = 0.2;
    o->n_train = 2000;
    o->n_val = 1000;
    o->epochs = 10;
    o->batch = 100;
    o->h1 = 256;
    o->h2 = 128;
    o->momentum = 0.9;
    o->tau = 0.1;
    o->prox_lr = 1.0;
    o->seed = 1;
    const double lrs[] = {0.01, 0.1, 0.5, 2, 10}, taus[] = {0.01, 0.1, 1, 10};
    const int cgs[] = {1, 3, 10};
    o->n_lrs = 5;
    memcpy(o->lrs, lrs, sizeof lrs);
    o->n_taus = 4;
    memcpy(o->taus, taus, sizeof taus);
    o->n_cgs = 3;
    memcpy(o->cgs, cgs, sizeof cgs);

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (!strcmp(a, "--label-last")) {
            o->label_last = 1;
            continue;
        }
        if (!strcmp(a, "--verbose")) {
            o->verbose = 1;
            continue;
        }
        static const char *with_value[] = {
            "--csv", "--val-frac", "--train", "--val", "--epochs", "--batch",
            "--hidden", "--momentum", "--lrs", "--taus", "--tau", "--cg",
            "--prox-lr", "--seed", "--json", "--plot"};
        int known = 0;
        for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++)
            known |= !strcmp(a, with_value[k]);
        if (!known) bad_usage("unknown option '%s'%s", a, "");
        if (i + 1 >= argc) bad_usage("%s needs a value%s", a, "");
        const char *v = argv[++i];
        if (!strcmp(a, "--csv")) o->csv = v;
        else if (!strcmp(a, "--json")) o->json = v;
        else if (!strcmp(a, "--plot")) o->plot = v;
        else if (!strcmp(a, "--val-frac")) {
            o->val_frac = parse_double(a, v);
            if (!(o->val_frac > 0 && o->val_frac < 1))
                bad_usage("%s: %s must be in (0, 1)", a, v);
        } else if (!strcmp(a, "--train")) o->n_train = (int)parse_long(a, v, 10, 10000000);
        else if (!strcmp(a, "--val")) o->n_val = (int)parse_long(a, v, 1, 10000000);
        else if (!strcmp(a, "--epochs")) o->epochs = (int)parse_long(a, v, 1, 100000);
        else if (!strcmp(a, "--batch")) o->batch = (int)parse_long(a, v, 1, 100000);
        else if (!strcmp(a, "--seed")) o->seed = (unsigned long long)parse_long(a, v, 0, 2147483647L);
        else if (!strcmp(a, "--momentum")) {
            o->momentum = parse_double(a, v);
            if (!(o->momentum >= 0 && o->momentum < 1))
                bad_usage("%s: %s must be in [0, 1)", a, v);
        } else if (!strcmp(a, "--tau")) {
            o->tau = parse_double(a, v);
            if (!(o->tau > 0)) bad_usage("%s: %s must be > 0", a, v);
        } else if (!strcmp(a, "--prox-lr")) {
            o->prox_lr = parse_double(a, v);
            if (!(o->prox_lr > 0)) bad_usage("%s: %s must be > 0", a, v);
        } else if (!strcmp(a, "--lrs")) o->n_lrs = parse_list(a, v, o->lrs);
        else if (!strcmp(a, "--taus")) o->n_taus = parse_list(a, v, o->taus);
        else if (!strcmp(a, "--cg")) {
            double c[MAXLIST];
            o->n_cgs = parse_list(a, v, c);
            for (int k = 0; k < o->n_cgs; k++) {
                if (c[k] != floor(c[k]) || c[k] > 100000)
                    bad_usage("%s: '%s' must list positive integers", a, v);
                o->cgs[k] = (int)c[k];
            }
        } else if (!strcmp(a, "--hidden")) {
            double h[MAXLIST];
            int nh = parse_list(a, v, h);
            if (nh != 2 || h[0] != floor(h[0]) || h[1] != floor(h[1]) ||
                h[0] > 100000 || h[1] > 100000)
                bad_usage("%s: '%s' must be two positive integers H1,H2", a, v);
            o->h1 = (int)h[0];
            o->h2 = (int)h[1];
        }
    }
}

/* ------------------------------------------------------------------------ */

int main(int argc, char **argv) {
    opts_t o;
    parse_args(argc, argv, &o);

    pp_data tr, va;
    char dataset[512];
    if (o.csv) {
        /* the widest line the network takes: the label and the features a
           first hidden layer of h1 units can take */
        int maxf = max_features(o.h1);
        char why[160], err[512];
        snprintf(why, sizeof why, "the label and %d features: the most a first "
                 "hidden layer of %d units takes", maxf, o.h1);
        pp_csv_opts co;
        pp_csv_opts_default(&co);
        co.label_last = o.label_last;
        co.max_columns = maxf + 1;
        co.max_columns_why = why;
        pp_data all;
        if (pp_csv_load(o.csv, &co, &all, err, sizeof err) != 0) {
            fprintf(stderr, "proxprop: %s\n", err);
            return 1;
        }
        split_data(&all, o.val_frac, o.seed, &tr, &va);
        data_free(&all);
        snprintf(dataset, sizeof dataset, "%s", o.csv);
    } else {
        make_mixture(&tr, &va, o.n_train, o.n_val, o.seed);
        snprintf(dataset, sizeof dataset,
                 "built-in 10-class Gaussian mixture in 64-D (seed %llu)", o.seed);
    }

    /* the methods */
    int nm_max = o.n_lrs + o.n_taus + o.n_cgs, nm = 0;
    method_t *ms = xcalloc((size_t)nm_max, sizeof *ms);
    result_t *rs = xcalloc((size_t)nm_max, sizeof *rs);
    for (int k = 0; k < o.n_lrs; k++, nm++) {
        ms[nm].prox = 0;
        ms[nm].lr = o.lrs[k];
        snprintf(ms[nm].name, sizeof ms[nm].name, "backprop lr=%g", o.lrs[k]);
    }
    for (int k = 0; k < o.n_taus; k++, nm++) {
        ms[nm].prox = 1;
        ms[nm].lr = o.prox_lr;
        ms[nm].tau = o.taus[k];
        ms[nm].mode = WB_PROX_EXACT;
        snprintf(ms[nm].name, sizeof ms[nm].name, "proxprop exact tau=%g", o.taus[k]);
    }
    for (int k = 0; k < o.n_cgs; k++, nm++) {
        ms[nm].prox = 1;
        ms[nm].lr = o.prox_lr;
        ms[nm].tau = o.tau;
        ms[nm].mode = WB_PROX_CG;
        ms[nm].cg = o.cgs[k];
        snprintf(ms[nm].name, sizeof ms[nm].name, "proxprop cg%d tau=%g", o.cgs[k], o.tau);
    }

    int sz[NL + 1] = {tr.d, o.h1, o.h2, tr.classes};
    if (check_prox_layers(sz, ms, nm) != 0) {
        free(ms);
        free(rs);
        data_free(&tr);
        data_free(&va);
        return 1;
    }

    printf("data: %s\n      %d train / %d validation examples, %d features, "
           "%d classes\n", dataset, tr.n, va.n, tr.d, tr.classes);
    printf("net:  %d-%d-%d-%d ReLU, softmax cross-entropy; %d epochs, batch %d, "
           "Nesterov momentum %g, seed %llu\n",
           tr.d, o.h1, o.h2, tr.classes, o.epochs, o.batch, o.momentum, o.seed);
    printf("ProxProp: hidden layers proximal (wb_prox_step), last layer "
           "explicit, Nesterov lr %g\n\n", o.prox_lr);

    int cap = o.batch > 256 ? o.batch : 256;
    net_t N;
    net_alloc(&N, sz, cap);
    printf("%-24s %12s %10s %9s\n", "method", "train loss", "val acc", "seconds");
    printf("%-24s %12s %10s %9s\n", "------------------------", "----------",
           "-------", "-------");
    fflush(stdout);
    for (int k = 0; k < nm; k++) {
        run_method(&ms[k], &o, &tr, &va, &N, &rs[k]);
        if (rs[k].diverged) {
            char what[64];
            snprintf(what, sizeof what, "diverged in epoch %d", rs[k].div_epoch);
            printf("%-24s %23s %9.2f   (%s)\n", ms[k].name, what, rs[k].seconds,
                   rs[k].why);
        } else {
            printf("%-24s %12.4f %9.2f%% %9.2f\n", ms[k].name, rs[k].final_loss,
                   100 * rs[k].final_acc, rs[k].seconds);
        }
        fflush(stdout);
    }

    int rc = 0;
    if (o.json && write_json(o.json, &o, dataset, &tr, &va, ms, rs, nm) != 0) rc = 1;
    if (o.plot) {
        rc |= write_svg(o.plot, "loss_epoch.svg", "Training loss per epoch",
                        "epoch", "training loss (log scale)", 1, ms, rs, nm,
                        o.epochs, 0, 0);
        rc |= write_svg(o.plot, "loss_seconds.svg", "Training loss against time",
                        "training wall-clock seconds", "training loss (log scale)",
                        1, ms, rs, nm, o.epochs, 1, 0);
        rc |= write_svg(o.plot, "val_acc_epoch.svg", "Validation accuracy per epoch",
                        "epoch", "validation accuracy", 0, ms, rs, nm, o.epochs, 0, 1);
        rc |= write_svg(o.plot, "val_acc_seconds.svg",
                        "Validation accuracy against time",
                        "training wall-clock seconds", "validation accuracy", 0, ms,
                        rs, nm, o.epochs, 1, 1);
    }

    for (int k = 0; k < nm; k++) {
        free(rs[k].loss);
        free(rs[k].acc);
        free(rs[k].sec);
    }
    free(ms);
    free(rs);
    net_free(&N);
    data_free(&tr);
    data_free(&va);
    return rc;
}
