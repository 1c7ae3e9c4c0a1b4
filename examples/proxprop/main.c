/* proxprop: BackProp vs ProxProp on an MLP or a ConvNet, all in C.
 *
 * A network IN-H1-...-Hk-C (ReLU, softmax cross-entropy, mean over the
 * batch; pp_net.c, every product a BLAS dgemm) is trained from the same
 * seeded initialization and the same mini-batch order by
 *
 *   BackProp  Nesterov SGD or Adam on the gradient, one run per learning
 *             rate;
 *   ProxProp  (Frerix et al., ICLR 2018, Algorithm 2 and their code) the
 *             hidden layers take the proximal step
 *               T+ = argmin_T 1/2 ||T [a; 1] - (z - dL/dz)||^2
 *                           + 1/(2 tau) ||T - T0||^2,
 *             exactly (libwiberg's wb_prox_step, a Cholesky factorization
 *             of A1 A1' + I/tau) or by k conjugate-gradient iterations
 *             warm-started at T0 and matrix-free (pp_cg.c: A1 A1' is never
 *             formed), and T0 - T+ is handed to the same optimizer in place
 *             of the gradient. The last layer stays explicit.
 *
 * Training loss (whole training set) and validation accuracy are recorded
 * after every epoch, with the wall-clock seconds spent training (evaluation
 * excluded); the test accuracy after the last epoch. A run whose loss
 * becomes NaN/Inf, or grows beyond 100 times the initial loss, is stopped
 * and reported as diverged.
 *
 * With --convnet the network is the paper's ConvNet instead (pp_convnet.c:
 * three 5x5 convolutions by im2col + dgemm, ReLU, two 2x2 max-poolings, a
 * linear layer); ProxProp then takes k CG iterations on each convolution's
 * patches (pp_cg.c's primal form) and keeps the linear layer explicit.
 *
 * Data: a seeded Gaussian mixture (the default; see make_mixture), a CSV
 * file (--csv, e.g. the 8x8 digits), or CIFAR-10's binary files (--cifar).
 *
 * Run with --help for the flags.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime: CPU seconds */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wiberg.h"

#include "pp_cg.h"
#include "pp_cifar.h"
#include "pp_convnet.h"
#include "pp_data.h"
#include "pp_net.h"
#include "pp_rng.h"

#define MAXLIST 16 /* entries of a --lrs / --taus / --cg list          */
#define DIVERGE_FACTOR 100.0

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

/* CPU seconds of the process (all its threads): with one BLAS thread, the
   training's own time, whatever else runs on the machine. */
static double cpu_seconds(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return NAN;
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

/* A training, validation or test set: features as doubles, or (CIFAR) as
   bytes scaled on the way into a batch. */
typedef struct {
    int n, d, classes;
    double *X;          /* [d*n] example j at X + j*d, or NULL             */
    unsigned char *X8;  /* [d*n] bytes: feature = X8 * scale8, or NULL     */
    double scale8;
    int *y;             /* [n] labels in [0, classes)                      */
} set_t;

static void set_alloc(set_t *S, int n, int d, int classes, int bytes) {
    memset(S, 0, sizeof *S);
    S->n = n;
    S->d = d;
    S->classes = classes;
    if (bytes) S->X8 = xmalloc((size_t)n * d);
    else S->X = xmalloc(sizeof(double) * (size_t)n * d);
    S->y = xmalloc(sizeof(int) * (size_t)(n ? n : 1));
}

static void set_free(set_t *S) {
    free(S->X);
    free(S->X8);
    free(S->y);
    memset(S, 0, sizeof *S);
}

static void get_example(const set_t *S, int j, double *dst) {
    size_t o = (size_t)j * S->d;
    if (S->X) {
        memcpy(dst, S->X + o, sizeof(double) * (size_t)S->d);
    } else {
        for (int i = 0; i < S->d; i++) dst[i] = S->scale8 * S->X8[o + i];
    }
}

/* The built-in data: a seeded 10-class Gaussian mixture in `dim`
   dimensions whose structure lives in a 6-dimensional subspace. Each class
   is a mixture of 3 Gaussian clusters placed at random in that subspace,
   embedded linearly in R^dim, with isotropic noise in all dim directions;
   clusters of different classes interleave, so a linear classifier is not
   enough. Train, validation and test sets are drawn in that order (so a
   test set leaves the other two as they were). */
static void make_mixture(set_t *sets[3], const int counts[3], int dim,
                         uint64_t seed) {
    enum { C = 10, K = 3, LAT = 6 };
    const int D = dim;
    const double spread = 1.0, within = 0.35, noise = 0.3;
    uint64_t s = seed * 7919u + 17u;
    double *B = xmalloc(sizeof(double) * (size_t)D * LAT), mu[C * K * LAT];
    for (size_t k = 0; k < (size_t)D * LAT; k++) B[k] = rng_normal(&s) / sqrt((double)LAT);
    for (int k = 0; k < C * K * LAT; k++) mu[k] = spread * rng_normal(&s);
    for (int q = 0; q < 3; q++) {
        set_alloc(sets[q], counts[q], D, C, 0);
        for (int j = 0; j < counts[q]; j++) {
            int c = rng_int(&s, C), k = rng_int(&s, K);
            double u[LAT];
            for (int t = 0; t < LAT; t++)
                u[t] = mu[(c * K + k) * LAT + t] + within * rng_normal(&s);
            double *x = sets[q]->X + (size_t)j * D;
            for (int i = 0; i < D; i++) {
                double v = noise * rng_normal(&s);
                for (int t = 0; t < LAT; t++) v += B[i + (size_t)t * D] * u[t];
                x[i] = v;
            }
            sets[q]->y[j] = c;
        }
    }
    free(B);
}

/* Seeded split of `all` into train / validation / test (fractions of the
   examples, at least one validation example, one test example when
   test_frac > 0, and one training example); features divided by the
   largest |value| of the training set (the paper's scaling by the maximum
   pixel value). */
static void split_data(const pp_data *all, double val_frac, double test_frac,
                       uint64_t seed, set_t *train, set_t *val, set_t *test) {
    int *idx = xmalloc(sizeof(int) * (size_t)all->n);
    for (int j = 0; j < all->n; j++) idx[j] = j;
    uint64_t s = seed * 104729u + 3u;
    shuffle(idx, all->n, &s);
    int nv = (int)lround(val_frac * all->n), ne = (int)lround(test_frac * all->n);
    if (nv < 1) nv = 1;
    if (test_frac > 0 && ne < 1) ne = 1;
    if (nv + ne > all->n - 1) { /* keep one training example */
        ne = test_frac > 0 ? 1 : 0;
        nv = all->n - 1 - ne;
    }
    int nt = all->n - nv - ne;
    set_alloc(train, nt, all->d, all->classes, 0);
    set_alloc(val, nv, all->d, all->classes, 0);
    set_alloc(test, ne, all->d, all->classes, 0);
    for (int j = 0; j < all->n; j++) {
        set_t *D = j < nt ? train : j < nt + nv ? val : test;
        int k = j < nt ? j : j < nt + nv ? j - nt : j - nt - nv;
        memcpy(D->X + (size_t)k * all->d, all->X + (size_t)idx[j] * all->d,
               sizeof(double) * (size_t)all->d);
        D->y[k] = all->y[idx[j]];
    }
    double mx = 0;
    for (size_t k = 0; k < (size_t)nt * all->d; k++)
        if (fabs(train->X[k]) > mx) mx = fabs(train->X[k]);
    if (mx > 0) {
        set_t *sets[3] = {train, val, test};
        for (int q = 0; q < 3; q++)
            for (size_t k = 0; k < (size_t)sets[q]->n * all->d; k++) sets[q]->X[k] /= mx;
    }
    free(idx);
}

/* CIFAR-10 as in the paper's code: the last tenth of the training records
   (the last 5000 of 50000) is the validation set, test_batch.bin the test
   set; pixels divided by the largest pixel value of the training part. */
static void split_cifar(const pp_cifar_set *all, const pp_cifar_set *tst,
                        set_t *train, set_t *val, set_t *test) {
    int nv = all->n / 10;
    if (nv < 1) nv = 1;
    int nt = all->n - nv;
    const int d = PP_CIFAR_PIXELS;
    set_alloc(train, nt, d, PP_CIFAR_CLASSES, 1);
    set_alloc(val, nv, d, PP_CIFAR_CLASSES, 1);
    set_alloc(test, tst->n, d, PP_CIFAR_CLASSES, 1);
    memcpy(train->X8, all->X, (size_t)nt * d);
    memcpy(val->X8, all->X + (size_t)nt * d, (size_t)nv * d);
    memcpy(test->X8, tst->X, (size_t)tst->n * d);
    memcpy(train->y, all->y, sizeof(int) * (size_t)nt);
    memcpy(val->y, all->y + nt, sizeof(int) * (size_t)nv);
    memcpy(test->y, tst->y, sizeof(int) * (size_t)tst->n);
    int mx = 0;
    for (size_t k = 0; k < (size_t)nt * d; k++)
        if (train->X8[k] > mx) mx = train->X8[k];
    double sc = mx > 0 ? 1.0 / mx : 1.0;
    train->scale8 = val->scale8 = test->scale8 = sc;
}

/* The network being trained: the MLP (pp_net.c) or, with --convnet, the
   paper's ConvNet (pp_convnet.c). One of the two is set. */
typedef struct {
    pp_net *mlp;
    pp_convnet *cnn;
} model_t;

static double *model_input(const model_t *M) { return M->cnn ? M->cnn->X : M->mlp->X; }

static int model_cap(const model_t *M) { return M->cnn ? M->cnn->cap : M->mlp->cap; }

static double model_forward(model_t *M, int m, const int *y, int *correct) {
    return M->cnn ? pp_convnet_forward(M->cnn, m, y, correct)
                  : pp_net_forward(M->mlp, m, y, correct);
}

/* Mean loss and accuracy of a whole data set, in chunks of the model's
   batch capacity. */
static void evaluate(model_t *M, const set_t *D, double *loss, double *acc) {
    double L = 0;
    long ok = 0;
    const int cap = model_cap(M);
    double *X = model_input(M);
    for (int j0 = 0; j0 < D->n; j0 += cap) {
        int m = D->n - j0 < cap ? D->n - j0 : cap, c;
        for (int j = 0; j < m; j++) get_example(D, j0 + j, X + (size_t)j * D->d);
        L += model_forward(M, m, D->y + j0, &c) * m;
        ok += c;
    }
    *loss = D->n ? L / D->n : NAN;
    *acc = D->n ? (double)ok / D->n : NAN;
}

/* ------------------------------------------------------------------------ */
/* Methods and runs                                                          */
/* ------------------------------------------------------------------------ */

typedef enum { OPT_NESTEROV = 0, OPT_ADAM = 1 } opt_kind;
static const char *OPT_NAMES[] = {"nesterov", "adam"};

typedef struct {
    char name[64];
    int prox;          /* 0: BackProp; 1: ProxProp                         */
    opt_kind opt;      /* the optimizer                                    */
    double lr;         /* its learning rate                                */
    double tau;        /* ProxProp: tau_theta                              */
    int cg;            /* ProxProp: 0 the exact step (wb_prox_step), k > 0
                          k matrix-free CG iterations (pp_cg)              */
} method_t;

typedef struct {
    double *loss, *acc, *sec; /* [epochs+1]: after epoch e (0: at start);
                                 NAN after a divergence                   */
    int diverged;             /* 1: stopped                               */
    int div_epoch;            /* epoch (1-based) in which it diverged     */
    char why[200];
    double seconds;           /* training wall-clock                      */
    double cpu;               /* training CPU seconds                     */
    double final_loss, final_acc, test_acc;
} result_t;

typedef struct {
    const char *csv, *cifar, *json, *plot;
    int label_last;
    double val_frac, test_frac;
    int n_train, n_val, n_test, mix_dim, epochs, batch;
    int hidden[PP_MAX_HIDDEN], n_hidden;
    double momentum, tau, prox_lr, adam_prox_lr;
    double lrs[MAXLIST], adam_lrs[MAXLIST], taus[MAXLIST];
    int n_lrs, n_adam_lrs, n_taus;
    int cgs[MAXLIST], n_cgs;
    int opts[2], n_opts;
    pp_cg_form form;
    unsigned long long seed;
    int verbose, paper;
    int convnet, img[3]; /* --convnet and its image shape (--image C,H,W) */
    int mix_given;       /* --mix-dim was given                            */
} opts_t;

static void prox_settings(const method_t *me, wb_prox_settings *ps) {
    wb_prox_settings_default(ps);
    ps->tau = me->tau;
    ps->mode = WB_PROX_EXACT;
}

/* Every proximal layer of every ProxProp run is created (and freed) before
   any training, so that layer sizes or settings that cannot run, or memory
   that is not there, stop the program with the reason before the BackProp
   runs rather than after them. Returns 0, or 1 with a message. */
static int check_prox_layers(int nl, const int *sz, const method_t *ms, int nm,
                             int max_m, pp_cg_form form) {
    for (int k = 0; k < nm; k++) {
        if (!ms[k].prox) continue;
        for (int l = 0; l < nl - 1; l++) {
            char why[256] = "";
            if (ms[k].cg == 0) {
                wb_prox_settings ps;
                prox_settings(&ms[k], &ps);
                wb_prox *p = NULL;
                if (wb_prox_create(&p, sz[l + 1], sz[l], &ps) != WB_OK)
                    snprintf(why, sizeof why, "%s", wb_last_error());
                wb_prox_destroy(p);
            } else {
                pp_cg *c = pp_cg_create(sz[l + 1], sz[l], max_m, ms[k].tau,
                                        ms[k].cg, form, why, sizeof why);
                pp_cg_destroy(c);
                if (c) why[0] = '\0';
            }
            if (why[0]) {
                fprintf(stderr, "proxprop: %s cannot run: layer %d (%d -> %d): "
                                "%s\n", ms[k].name, l + 1, sz[l], sz[l + 1], why);
                return 1;
            }
        }
    }
    return 0;
}

/* The same for the ConvNet: every convolution's CG step of every ProxProp
   run is created and freed before any training. Returns 0, or 1 with a
   message. */
static int check_conv_layers(const pp_convnet *CN, const method_t *ms, int nm) {
    for (int k = 0; k < nm; k++) {
        if (!ms[k].prox) continue;
        for (int l = 0; l < PP_CONVNET_CONVS; l++) {
            char why[256] = "";
            pp_cg *c = pp_convnet_cg_create(CN, l, ms[k].tau, ms[k].cg, why, sizeof why);
            pp_cg_destroy(c);
            if (!c) {
                fprintf(stderr, "proxprop: %s cannot run: convolution %d: %s\n",
                        ms[k].name, l + 1, why);
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

/* The proximal step of every hidden layer, in N->grad: g = T0 - T+. Returns
   0, or -1 with the reason in why. */
static int prox_steps(pp_net *N, int m, wb_prox **px, pp_cg **cg, double *tnew,
                      char *why, size_t whylen) {
    for (int l = 0; l < N->nl - 1; l++) {
        int ou = N->sz[l + 1], in = N->sz[l];
        const double *Ain = l > 0 ? N->A[l - 1] : N->X;
        double *T = N->theta + N->off[l], *g = N->grad + N->off[l];
        if (cg) {
            char err[160];
            if (pp_cg_step(cg[l], m, Ain, N->dZ[l], g, err, sizeof err) != 0) {
                snprintf(why, whylen, "layer %d: %s", l + 1, err);
                return -1;
            }
            continue;
        }
        /* T+ = prox(A_in, Z - dL/dZ, T); g = T - T+ */
        double *target = N->dA; /* free now */
        for (size_t k = 0; k < (size_t)ou * m; k++) target[k] = N->Z[l][k] - N->dZ[l][k];
        if (wb_prox_step(px[l], m, Ain, target, T, tnew) != WB_OK) {
            snprintf(why, whylen, "layer %d: %s", l + 1, wb_prox_message(px[l]));
            return -1;
        }
        for (size_t k = 0; k < (size_t)ou * (in + 1); k++) g[k] = T[k] - tnew[k];
    }
    return 0;
}

static void run_method(const method_t *me, const opts_t *o, const set_t *tr,
                       const set_t *va, const set_t *te, model_t *M, result_t *R) {
    int E = o->epochs;
    pp_net *N = M->mlp;
    pp_convnet *CN = M->cnn;
    const int nh = CN ? PP_CONVNET_CONVS : N->nl - 1;
    R->loss = xmalloc(sizeof(double) * (size_t)(E + 1));
    R->acc = xmalloc(sizeof(double) * (size_t)(E + 1));
    R->sec = xmalloc(sizeof(double) * (size_t)(E + 1));
    for (int e = 0; e <= E; e++) R->loss[e] = R->acc[e] = R->sec[e] = NAN;
    R->diverged = 0;
    R->div_epoch = 0;
    R->why[0] = '\0';
    R->test_acc = NAN;

    if (CN) pp_convnet_init(CN, o->seed);
    else pp_net_init(N, o->seed);
    wb_prox *px[PP_MAX_LAYERS] = {NULL};
    pp_cg *cgs[PP_MAX_LAYERS] = {NULL};
    double *tnew = NULL;
    if (me->prox && CN) {
        /* the convolutions: CG on their patches (check_conv_layers passed:
           a failure here is out of memory) */
        for (int l = 0; l < nh; l++) {
            char err[256];
            cgs[l] = pp_convnet_cg_create(CN, l, me->tau, me->cg, err, sizeof err);
            if (!cgs[l]) {
                fprintf(stderr, "proxprop: %s: %s\n", me->name, err);
                exit(1);
            }
        }
    } else if (me->prox) {
        size_t big = 0;
        for (int l = 0; l < nh; l++) {
            char err[256];
            size_t t = N->off[l + 1] - N->off[l];
            if (t > big) big = t;
            if (me->cg) {
                cgs[l] = pp_cg_create(N->sz[l + 1], N->sz[l], o->batch, me->tau,
                                      me->cg, o->form, err, sizeof err);
                if (!cgs[l]) { /* check_prox_layers passed: out of memory */
                    fprintf(stderr, "proxprop: %s: %s\n", me->name, err);
                    exit(1);
                }
            } else {
                wb_prox_settings ps;
                prox_settings(me, &ps);
                if (wb_prox_create(&px[l], N->sz[l + 1], N->sz[l], &ps) != WB_OK) {
                    fprintf(stderr, "proxprop: %s: %s\n", me->name, wb_last_error());
                    exit(1);
                }
            }
        }
        if (!me->cg) tnew = xmalloc(sizeof(double) * big);
    }
    double l0, a0;
    evaluate(M, tr, &R->loss[0], &a0);
    evaluate(M, va, &l0, &R->acc[0]);
    R->sec[0] = 0;
    const double limit = DIVERGE_FACTOR * R->loss[0];

    int *order = xmalloc(sizeof(int) * (size_t)tr->n);
    int *yb = xmalloc(sizeof(int) * (size_t)o->batch);
    double *X = model_input(M);
    for (int j = 0; j < tr->n; j++) order[j] = j;
    uint64_t shuffle_state = o->seed * 31337u + 5u; /* same for all methods */
    double seconds = 0, cpu = 0;

    for (int e = 1; e <= E && !R->diverged; e++) {
        shuffle(order, tr->n, &shuffle_state);
        double t0 = now_seconds(), c0 = cpu_seconds();
        for (int j0 = 0; j0 < tr->n && !R->diverged; j0 += o->batch) {
            int m = tr->n - j0 < o->batch ? tr->n - j0 : o->batch;
            for (int j = 0; j < m; j++) {
                get_example(tr, order[j0 + j], X + (size_t)j * tr->d);
                yb[j] = tr->y[order[j0 + j]];
            }
            double loss = model_forward(M, m, yb, NULL);
            if (!isfinite(loss) || loss > limit) {
                R->diverged = 1;
                snprintf(R->why, sizeof R->why, "batch loss %g", loss);
                break;
            }
            int failed = 0;
            if (CN) {
                pp_convnet_backward(CN, m, yb, !me->prox);
                failed = me->prox &&
                         pp_convnet_prox_steps(CN, m, cgs, R->why, sizeof R->why) != 0;
                if (!failed && me->opt == OPT_ADAM) pp_convnet_adam(CN, me->lr);
                else if (!failed) pp_convnet_nesterov(CN, me->lr, o->momentum);
            } else {
                pp_net_backward(N, m, yb, !me->prox);
                failed = me->prox && prox_steps(N, m, px, me->cg ? cgs : NULL, tnew,
                                                R->why, sizeof R->why) != 0;
                if (!failed && me->opt == OPT_ADAM) pp_net_adam(N, me->lr);
                else if (!failed) pp_net_nesterov(N, me->lr, o->momentum);
            }
            if (failed) {
                R->diverged = 1;
                break;
            }
        }
        seconds += now_seconds() - t0;
        cpu += cpu_seconds() - c0;
        if (R->diverged) {
            R->div_epoch = e;
            break;
        }
        double acc_tr;
        evaluate(M, tr, &R->loss[e], &acc_tr);
        evaluate(M, va, &l0, &R->acc[e]);
        R->sec[e] = seconds;
        if (!isfinite(R->loss[e]) || R->loss[e] > limit) {
            R->diverged = 1;
            R->div_epoch = e;
            snprintf(R->why, sizeof R->why, "training loss %g", R->loss[e]);
            R->loss[e] = R->acc[e] = NAN;
        }
        if (o->verbose || CN) /* ConvNet epochs are long: always progress */
            fprintf(stderr, "  %-28s epoch %2d  loss %.4f  val acc %.4f  %.2f s "
                    "(CPU %.2f s)\n", me->name, e, R->loss[e], R->acc[e], seconds, cpu);
    }
    R->seconds = seconds;
    R->cpu = cpu;
    R->final_loss = R->diverged ? NAN : R->loss[E];
    R->final_acc = R->diverged ? NAN : R->acc[E];
    if (!R->diverged && te->n > 0) evaluate(M, te, &l0, &R->test_acc);
    for (int l = 0; l < nh; l++) {
        wb_prox_destroy(px[l]);
        pp_cg_destroy(cgs[l]);
    }
    free(tnew);
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

/* The ConvNet's layers in words: "3x32x32 conv5x5:16 relu maxpool2 ...". */
static void describe_convnet(const pp_convnet *CN, char *buf, size_t len) {
    int k = snprintf(buf, len, "%dx%dx%d", CN->c, CN->h, CN->w);
    for (int l = 0; l < PP_CONVNET_CONVS && k > 0 && (size_t)k < len; l++)
        k += snprintf(buf + k, len - k, " conv%dx%d:%d relu%s", CN->conv[l].k,
                      CN->conv[l].k, CN->conv[l].o,
                      l < PP_CONVNET_CONVS - 1 ? " maxpool2" : "");
    if (k > 0 && (size_t)k < len)
        snprintf(buf + k, len - k, " linear:%d-%d", CN->feat, CN->classes);
}

static int write_json(const char *path, const opts_t *o, const char *dataset,
                      const set_t *tr, const set_t *va, const set_t *te,
                      const model_t *M, const method_t *ms, const result_t *rs,
                      int nm) {
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "proxprop: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    fprintf(f, "{\n  \"dataset\": ");
    json_str(f, dataset);
    fprintf(f, ",\n  \"train_examples\": %d, \"val_examples\": %d, "
               "\"test_examples\": %d, \"features\": %d, \"classes\": %d,\n",
            tr->n, va->n, te->n, tr->d, tr->classes);
    if (M->cnn) {
        char net[256];
        describe_convnet(M->cnn, net, sizeof net);
        fprintf(f, "  \"model\": \"convnet\", \"image\": [%d, %d, %d], \"network\": ",
                M->cnn->c, M->cnn->h, M->cnn->w);
        json_str(f, net);
    } else {
        fprintf(f, "  \"model\": \"mlp\", \"network\": [");
        for (int l = 0; l <= M->mlp->nl; l++)
            fprintf(f, "%s%d", l ? ", " : "", M->mlp->sz[l]);
        fputc(']', f);
    }
    fprintf(f, ", \"epochs\": %d, \"batch\": %d, \"momentum\": %g, "
               "\"cg_form\": \"%s\", \"seed\": %llu,\n",
            o->epochs, o->batch, o->momentum,
            o->form == PP_CG_BATCH && !M->cnn ? "batch" : "primal", o->seed);
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
        fprintf(f, ", \"test_accuracy\": ");
        json_num(f, r->test_acc);
        fprintf(f, ", \"seconds\": %.4f, \"cpu_seconds\": %.4f, \"diverged\": %s,\n"
                   "      \"method\": \"%s\", \"optimizer\": \"%s\", \"lr\": %g",
                r->seconds, r->cpu, r->diverged ? "true" : "false",
                m->prox ? "proxprop" : "backprop", OPT_NAMES[m->opt], m->lr);
        if (m->prox) {
            fprintf(f, ", \"tau\": %g, \"solver\": \"", m->tau);
            if (m->cg == 0) fprintf(f, "exact\"");
            else fprintf(f, "cg%d\"", m->cg);
        }
        if (r->diverged) {
            fprintf(f, ", \"diverged_epoch\": %d, \"diverged_why\": ", r->div_epoch);
            json_str(f, r->why);
        }
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
"Trains an MLP IN-H1-...-Hk-C (ReLU, softmax cross-entropy), or with\n"
"--convnet the ProxProp paper's ConvNet, with BackProp (a learning-rate\n"
"sweep) and with ProxProp (proximal steps on the hidden layers: exact\n"
"through libwiberg's wb_prox_step, and k matrix-free CG iterations), with\n"
"Nesterov SGD and/or Adam, all from the same\n"
"initialization and batch order, and prints final training loss,\n"
"validation and test accuracy and training seconds.\n"
"\n"
"Data (default: a seeded 10-class Gaussian mixture, see README.md):\n"
"  --csv FILE        read a data set: one example per line, comma-separated,\n"
"                    the integer label (>= 0) then the features; blank lines\n"
"                    and lines starting with '#' are skipped. Features are\n"
"                    divided by the largest |value| of the training split.\n"
"                    At most as many columns as the first hidden layer takes\n"
"                    (46340 with H1 = 256); a NUL byte is an error\n"
"  --label-last      with --csv: the label is the last field instead (the\n"
"                    layout of scikit-learn's digits.csv)\n"
"  --val-frac F      with --csv: fraction held out for validation (0.2)\n"
"  --test-frac F     with --csv: fraction held out for testing, may be 0 (0.2)\n"
"  --cifar DIR       CIFAR-10's binary files: DIR/data_batch_1.bin ..\n"
"                    data_batch_5.bin (the last tenth, 5000 of 50000, for\n"
"                    validation) and DIR/test_batch.bin; pixels / the largest\n"
"  --train N         built-in data: training examples (2000)\n"
"  --val N           built-in data: validation examples (1000)\n"
"  --test N          built-in data: test examples, may be 0 (1000)\n"
"  --mix-dim D       built-in data: dimension (64; 3072 has CIFAR's shape)\n"
"\n"
"Training:\n"
"  --epochs N        passes over the training set (10)\n"
"  --batch N         mini-batch size (100)\n"
"  --hidden LIST     hidden widths, 1 to 16 of them (256,128)\n"
"  --convnet         train the paper's ConvNet instead of the MLP: conv 5x5\n"
"                    to 16 channels, ReLU, 2x2 max-pool, conv 5x5 to 20, ReLU,\n"
"                    2x2 max-pool, conv 5x5 to 20, ReLU, linear (padding 2);\n"
"                    ProxProp takes CG steps on the convolutions (primal\n"
"                    form); --taus, --hidden and --cg-form are refused with it\n"
"  --image C,H,W     with --convnet: an example's shape, channel-planar like\n"
"                    CIFAR-10's records (3,32,32); the data must have C*H*W\n"
"                    features (the built-in data is made so, unless --mix-dim)\n"
"  --optimizers LIST nesterov and/or adam: every method runs with each (nesterov)\n"
"  --momentum M      Nesterov momentum, both methods, in [0, 1) (0.9)\n"
"  --lrs LIST        BackProp learning rates, Nesterov (0.01,0.1,0.5,2,10)\n"
"  --adam-lrs LIST   BackProp learning rates, Adam (0.0001,0.001,0.01)\n"
"  --taus LIST       ProxProp tau_theta sweep, exact step (0.01,0.1,1,10)\n"
"  --tau T           tau_theta of the CG runs (0.1)\n"
"  --cg LIST         ProxProp CG iteration counts (1,3,10)\n"
"  --cg-form F       batch (CG in the batch's coordinates: cheaper when the\n"
"                    batch is smaller than the layer's input) or primal (the\n"
"                    paper's code: forward and adjoint products); the same\n"
"                    iterates (batch)\n"
"  --prox-lr L       ProxProp's Nesterov learning rate (1)\n"
"  --adam-prox-lr L  ProxProp's Adam learning rate (0.001)\n"
"  --paper           the paper's CIFAR-10 MLP settings: --hidden\n"
"                    4000,1000,4000 --batch 500 --epochs 50 --momentum 0.95\n"
"                    --lrs 0.05 --taus 0.05 --tau 0.05 --cg 3,5,10 --prox-lr 1\n"
"                    (Nesterov), --adam-lrs 0.001 --adam-prox-lr 0.001 (its\n"
"                    ConvNet's Adam); with --convnet the paper's ConvNet\n"
"                    settings instead: --optimizers adam --adam-lrs 0.001\n"
"                    --tau 1 --cg 3,10 --adam-prox-lr 0.001 --batch 500\n"
"                    --epochs 50; other flags override these\n"
"  --seed S          data, initialization and batch order (1)\n"
"A list may be 'none' (no such runs).\n"
"\n"
"Output:\n"
"  --json FILE       write {\"methods\": [{\"name\", \"final_train_loss\",\n"
"                    \"val_accuracy\", \"test_accuracy\", \"seconds\",\n"
"                    \"diverged\", ...}]} (null for a diverged run's loss\n"
"                    and accuracies, and for a missing test set)\n"
"  --plot DIR        write SVG plots into the existing directory DIR:\n"
"                    loss_epoch.svg, loss_seconds.svg, val_acc_epoch.svg,\n"
"                    val_acc_seconds.svg\n"
"  --verbose         one line per method and epoch on stderr (always on\n"
"                    with --convnet)\n"
"  --help            this text\n"
"\n"
"A run whose loss turns NaN/Inf or exceeds %g times its initial value is\n"
"stopped and reported as diverged. Exit status: 0 ok, 1 a run-time error\n"
"(unreadable or malformed file, a layer that cannot run), 2 a bad command\n"
"line.\n", DIVERGE_FACTOR);
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

/* "a,b,c" -> up to MAXLIST positive numbers; "none" -> 0 of them */
static int parse_list(const char *flag, const char *list, double *out) {
    if (!strcmp(list, "none")) return 0;
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

/* a list of positive integers up to hi */
static int parse_int_list(const char *flag, const char *list, int *out, double hi) {
    double v[MAXLIST];
    int n = parse_list(flag, list, v);
    for (int k = 0; k < n; k++) {
        if (v[k] != floor(v[k]) || v[k] > hi)
            bad_usage("%s: '%s' must list positive integers", flag, list);
        out[k] = (int)v[k];
    }
    return n;
}

static void set_list(double *dst, int *n, const double *src, int k) {
    memcpy(dst, src, sizeof(double) * (size_t)k);
    *n = k;
}

static void defaults(opts_t *o, int paper, int convnet) {
    memset(o, 0, sizeof *o);
    o->val_frac = 0.2;
    o->test_frac = 0.2;
    o->n_train = 2000;
    o->n_val = 1000;
    o->n_test = 1000;
    o->mix_dim = 64;
    o->epochs = 10;
    o->batch = 100;
    o->n_hidden = 2;
    o->hidden[0] = 256;
    o->hidden[1] = 128;
    o->momentum = 0.9;
    o->tau = 0.1;
    o->prox_lr = 1.0;
    o->adam_prox_lr = 1e-3;
    o->seed = 1;
    o->form = PP_CG_BATCH;
    o->n_opts = 1;
    o->opts[0] = OPT_NESTEROV;
    const double lrs[] = {0.01, 0.1, 0.5, 2, 10}, taus[] = {0.01, 0.1, 1, 10},
                 alrs[] = {1e-4, 1e-3, 1e-2};
    set_list(o->lrs, &o->n_lrs, lrs, 5);
    set_list(o->taus, &o->n_taus, taus, 4);
    set_list(o->adam_lrs, &o->n_adam_lrs, alrs, 3);
    const int cgs[] = {1, 3, 10};
    memcpy(o->cgs, cgs, sizeof cgs);
    o->n_cgs = 3;
    if (paper) { /* paper_experiments.sh, MLP (and the ConvNet's Adam) */
        o->paper = 1;
        o->n_hidden = 3;
        o->hidden[0] = 4000;
        o->hidden[1] = 1000;
        o->hidden[2] = 4000;
        o->batch = 500;
        o->epochs = 50;
        o->momentum = 0.95;
        const double plr[] = {0.05}, ptau[] = {0.05}, palr[] = {1e-3};
        set_list(o->lrs, &o->n_lrs, plr, 1);
        set_list(o->taus, &o->n_taus, ptau, 1);
        set_list(o->adam_lrs, &o->n_adam_lrs, palr, 1);
        o->tau = 0.05;
        o->prox_lr = 1.0;
        o->adam_prox_lr = 1e-3;
        const int pcg[] = {3, 5, 10};
        memcpy(o->cgs, pcg, sizeof pcg);
        o->n_cgs = 3;
    }
    o->img[0] = 3; /* CIFAR-10's 3 x 32 x 32 */
    o->img[1] = 32;
    o->img[2] = 32;
    if (convnet) {
        /* no exact step for convolutions (see README.md) */
        o->convnet = 1;
        o->n_taus = 0;
    }
    if (convnet && paper) { /* paper_experiments.sh, ConvNet: Adam, tau 1 */
        o->n_opts = 1;
        o->opts[0] = OPT_ADAM;
        o->tau = 1.0;
        const int pcg[] = {3, 10};
        memcpy(o->cgs, pcg, sizeof pcg);
        o->n_cgs = 2;
    }
}

static void parse_args(int argc, char **argv, opts_t *o) {
    int paper = 0, convnet = 0, hidden_given = 0, form_given = 0, image_given = 0;
    for (int i = 1; i < argc; i++) {
        paper |= !strcmp(argv[i], "--paper");
        convnet |= !strcmp(argv[i], "--convnet");
    }
    defaults(o, paper, convnet);

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
        if (!strcmp(a, "--paper") || !strcmp(a, "--convnet")) continue;
        static const char *with_value[] = {
            "--csv", "--val-frac", "--test-frac", "--train", "--val", "--test",
            "--mix-dim", "--epochs", "--batch", "--hidden", "--momentum", "--lrs",
            "--adam-lrs", "--taus", "--tau", "--cg", "--cg-form", "--prox-lr",
            "--adam-prox-lr", "--optimizers", "--seed", "--json", "--plot",
            "--cifar", "--image"};
        int known = 0;
        for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++)
            known |= !strcmp(a, with_value[k]);
        if (!known) bad_usage("unknown option '%s'%s", a, "");
        if (i + 1 >= argc) bad_usage("%s needs a value%s", a, "");
        const char *v = argv[++i];
        if (!strcmp(a, "--csv")) o->csv = v;
        else if (!strcmp(a, "--cifar")) o->cifar = v;
        else if (!strcmp(a, "--json")) o->json = v;
        else if (!strcmp(a, "--plot")) o->plot = v;
        else if (!strcmp(a, "--val-frac")) {
            o->val_frac = parse_double(a, v);
            if (!(o->val_frac > 0 && o->val_frac < 1))
                bad_usage("%s: %s must be in (0, 1)", a, v);
        } else if (!strcmp(a, "--test-frac")) {
            o->test_frac = parse_double(a, v);
            if (!(o->test_frac >= 0 && o->test_frac < 1))
                bad_usage("%s: %s must be in [0, 1)", a, v);
        } else if (!strcmp(a, "--train")) o->n_train = (int)parse_long(a, v, 10, 10000000);
        else if (!strcmp(a, "--val")) o->n_val = (int)parse_long(a, v, 1, 10000000);
        else if (!strcmp(a, "--test")) o->n_test = (int)parse_long(a, v, 0, 10000000);
        else if (!strcmp(a, "--mix-dim")) {
            o->mix_dim = (int)parse_long(a, v, 6, 100000);
            o->mix_given = 1;
        }
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
        } else if (!strcmp(a, "--prox-lr") || !strcmp(a, "--adam-prox-lr")) {
            double x = parse_double(a, v);
            if (!(x > 0)) bad_usage("%s: %s must be > 0", a, v);
            *(!strcmp(a, "--prox-lr") ? &o->prox_lr : &o->adam_prox_lr) = x;
        } else if (!strcmp(a, "--lrs")) o->n_lrs = parse_list(a, v, o->lrs);
        else if (!strcmp(a, "--adam-lrs")) o->n_adam_lrs = parse_list(a, v, o->adam_lrs);
        else if (!strcmp(a, "--taus")) o->n_taus = parse_list(a, v, o->taus);
        else if (!strcmp(a, "--cg")) o->n_cgs = parse_int_list(a, v, o->cgs, 100000);
        else if (!strcmp(a, "--image")) {
            int dims[MAXLIST];
            if (parse_int_list(a, v, dims, 100000) != 3)
                bad_usage("%s: '%s' must be C,H,W (three positive integers)", a, v);
            memcpy(o->img, dims, sizeof o->img);
            image_given = 1;
        } else if (!strcmp(a, "--cg-form")) {
            form_given = 1;
            if (!strcmp(v, "batch")) o->form = PP_CG_BATCH;
            else if (!strcmp(v, "primal")) o->form = PP_CG_PRIMAL;
            else bad_usage("%s: '%s' is neither batch nor primal", a, v);
        } else if (!strcmp(a, "--optimizers")) {
            o->n_opts = 0;
            int seen[2] = {0, 0};
            char buf[64];
            if (strlen(v) >= sizeof buf)
                bad_usage("%s: '%s' must list nesterov and/or adam, once each", a, v);
            snprintf(buf, sizeof buf, "%s", v);
            for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
                int k = !strcmp(t, "nesterov") ? OPT_NESTEROV : !strcmp(t, "adam") ? OPT_ADAM : -1;
                if (k < 0 || seen[k])
                    bad_usage("%s: '%s' must list nesterov and/or adam, once each", a, v);
                seen[k] = 1;
                o->opts[o->n_opts++] = k;
            }
            if (o->n_opts == 0) bad_usage("%s: empty list%s", a, "");
        } else if (!strcmp(a, "--hidden")) {
            hidden_given = 1;
            int nh = parse_int_list(a, v, o->hidden, 100000);
            if (nh < 1) bad_usage("%s: '%s' must be 1 to 16 positive integers", a, v);
            o->n_hidden = nh;
        }
    }
    if (o->csv && o->cifar) bad_usage("--csv and --cifar: choose one data set%s%s", "", "");
    if (o->convnet) {
        if (o->n_taus > 0)
            bad_usage("--convnet: the exact proximal step (--taus) is for the MLP; "
                      "the ConvNet's convolutions take CG steps (--cg)%s%s", "", "");
        if (hidden_given) bad_usage("--convnet: --hidden is for the MLP%s%s", "", "");
        if (form_given)
            bad_usage("--convnet: --cg-form is for the MLP (a convolution's CG "
                      "is always the primal form)%s%s", "", "");
    } else if (image_given) {
        bad_usage("--image: only with --convnet%s%s", "", "");
    }
}

/* ------------------------------------------------------------------------ */

/* Every (optimizer, method) pair the options ask for, in table order. */
static int make_methods(const opts_t *o, method_t *ms) {
    int nm = 0;
    for (int q = 0; q < o->n_opts; q++) {
        opt_kind opt = (opt_kind)o->opts[q];
        const char *on = opt == OPT_ADAM ? "adam " : "";
        int nl = opt == OPT_ADAM ? o->n_adam_lrs : o->n_lrs;
        const double *lrs = opt == OPT_ADAM ? o->adam_lrs : o->lrs;
        double plr = opt == OPT_ADAM ? o->adam_prox_lr : o->prox_lr;
        for (int k = 0; k < nl; k++, nm++) {
            ms[nm] = (method_t){.prox = 0, .opt = opt, .lr = lrs[k]};
            snprintf(ms[nm].name, sizeof ms[nm].name, "backprop %slr=%g", on, lrs[k]);
        }
        for (int k = 0; k < o->n_taus; k++, nm++) {
            ms[nm] = (method_t){.prox = 1, .opt = opt, .lr = plr, .tau = o->taus[k]};
            snprintf(ms[nm].name, sizeof ms[nm].name, "proxprop %sexact tau=%g", on,
                     o->taus[k]);
        }
        for (int k = 0; k < o->n_cgs; k++, nm++) {
            ms[nm] = (method_t){.prox = 1, .opt = opt, .lr = plr, .tau = o->tau,
                                .cg = o->cgs[k]};
            snprintf(ms[nm].name, sizeof ms[nm].name, "proxprop %scg%d tau=%g", on,
                     o->cgs[k], o->tau);
        }
    }
    return nm;
}

/* Loads the data the options name into tr / va / te and describes it in
   dataset[len]. Returns 0, or 1 with a message. */
static int load_data(const opts_t *o, set_t *tr, set_t *va, set_t *te,
                     char *dataset, size_t len) {
    char err[1024];
    const double img = (double)o->img[0] * o->img[1] * o->img[2];
    if (o->convnet && img > 100000000.0) {
        fprintf(stderr, "proxprop: --image %d,%d,%d: %.0f pixels; at most 10^8\n",
                o->img[0], o->img[1], o->img[2], img);
        return 1;
    }
    if (o->csv) {
        /* the widest line the network takes: the label and the features a
           first hidden layer of h1 units can take (the MLP), or the label
           and the --image (the ConvNet) */
        int maxf = o->convnet ? (int)img : max_features(o->hidden[0]);
        char why[160];
        if (o->convnet)
            snprintf(why, sizeof why, "the label and the %d x %d x %d image of "
                     "--image", o->img[0], o->img[1], o->img[2]);
        else
            snprintf(why, sizeof why, "the label and %d features: the most a first "
                     "hidden layer of %d units takes", maxf, o->hidden[0]);
        pp_csv_opts co;
        pp_csv_opts_default(&co);
        co.label_last = o->label_last;
        co.max_columns = maxf + 1;
        co.max_columns_why = why;
        pp_data all;
        if (pp_csv_load(o->csv, &co, &all, err, sizeof err) != 0) {
            fprintf(stderr, "proxprop: %s\n", err);
            return 1;
        }
        split_data(&all, o->val_frac, o->test_frac, o->seed, tr, va, te);
        pp_data_free(&all, NULL);
        snprintf(dataset, len, "%s", o->csv);
    } else if (o->cifar) {
        pp_cifar_set all, tst;
        if (pp_cifar_load(o->cifar, 1000000, &all, &tst, err, sizeof err) != 0) {
            fprintf(stderr, "proxprop: %s\n", err);
            return 1;
        }
        if (all.n < 2) {
            fprintf(stderr, "proxprop: %s: %d training record(s); at least 2 are "
                            "needed (training and validation)\n", o->cifar, all.n);
            pp_cifar_free(&all);
            pp_cifar_free(&tst);
            return 1;
        }
        split_cifar(&all, &tst, tr, va, te);
        pp_cifar_free(&all);
        pp_cifar_free(&tst);
        snprintf(dataset, len, "CIFAR-10 binary files in %s", o->cifar);
    } else {
        set_t *sets[3] = {tr, va, te};
        int counts[3] = {o->n_train, o->n_val, o->n_test};
        /* the ConvNet reads the mixture's vectors as C x H x W images */
        int dim = o->convnet && !o->mix_given ? (int)img : o->mix_dim;
        if (dim > 100000) {
            fprintf(stderr, "proxprop: --image %d,%d,%d: the built-in data has at "
                    "most 100000 dimensions\n", o->img[0], o->img[1], o->img[2]);
            return 1;
        }
        make_mixture(sets, counts, dim, o->seed);
        snprintf(dataset, len, "built-in 10-class Gaussian mixture in %d-D (seed %llu)",
                 dim, o->seed);
    }
    return 0;
}

int main(int argc, char **argv) {
    opts_t o;
    parse_args(argc, argv, &o);

    method_t *ms = xcalloc((size_t)2 * 3 * MAXLIST, sizeof *ms);
    int nm = make_methods(&o, ms);
    if (nm == 0) {
        free(ms);
        bad_usage("no runs: every list of methods is 'none'%s%s", "", "");
    }

    set_t tr, va, te;
    char dataset[4200];
    if (load_data(&o, &tr, &va, &te, dataset, sizeof dataset) != 0) {
        free(ms);
        return 1;
    }

    int nl = o.n_hidden + 1, sz[PP_MAX_LAYERS + 1], rc = 0, adam = 0;
    for (int k = 0; k < nm; k++) adam |= ms[k].opt == OPT_ADAM;
    pp_net N;
    pp_convnet CN;
    memset(&N, 0, sizeof N);
    memset(&CN, 0, sizeof CN);
    model_t M = {NULL, NULL};
    char net[256] = "";
    if (o.convnet) {
        /* the data must be the --image's C x H x W pixels */
        char err[512];
        const int *im = o.img;
        if ((double)im[0] * im[1] * im[2] != tr.d) {
            fprintf(stderr, "proxprop: --convnet: the data has %d features; a %d x %d "
                    "x %d image (--image C,H,W) has %.0f\n", tr.d, im[0], im[1], im[2],
                    (double)im[0] * im[1] * im[2]);
            rc = 1;
        } else if (pp_convnet_alloc(&CN, im[0], im[1], im[2], tr.classes, o.batch, adam,
                                    err, sizeof err) != 0) {
            fprintf(stderr, "proxprop: %s\n", err);
            rc = 1;
        } else {
            M.cnn = &CN;
            describe_convnet(&CN, net, sizeof net);
            rc = check_conv_layers(&CN, ms, nm);
        }
    } else {
        sz[0] = tr.d;
        for (int l = 0; l < o.n_hidden; l++) sz[l + 1] = o.hidden[l];
        sz[nl] = tr.classes;
        rc = check_prox_layers(nl, sz, ms, nm, o.batch, o.form);
        int cap = o.batch > 256 ? o.batch : 256;
        if (rc == 0 && pp_net_alloc(&N, nl, sz, cap, adam) != 0) {
            fprintf(stderr, "proxprop: out of memory for the network\n");
            rc = 1;
        }
        M.mlp = &N;
        for (int l = 0, k = 0; l <= nl && k >= 0 && (size_t)k < sizeof net; l++)
            k += snprintf(net + k, sizeof net - k, "%s%d", l ? "-" : "", sz[l]);
    }
    if (rc != 0) {
        free(ms);
        pp_net_free(&N);
        pp_convnet_free(&CN);
        set_free(&tr);
        set_free(&va);
        set_free(&te);
        return 1;
    }
    result_t *rs = xcalloc((size_t)nm, sizeof *rs);

    printf("data: %s\n      %d train / %d validation / %d test examples, %d "
           "features, %d classes\n", dataset, tr.n, va.n, te.n, tr.d, tr.classes);
    printf("net:  %s%s softmax cross-entropy; %d epochs, batch %d, seed %llu%s\n",
           net, o.convnet ? "," : " ReLU,", o.epochs, o.batch, o.seed,
           o.paper ? " (--paper)" : "");
    printf("      Nesterov momentum %g; Adam beta 0.9, 0.999\n", o.momentum);
    if (o.convnet)
        printf("ProxProp: convolutions proximal (cgK: K matrix-free CG iterations "
               "on their patches, primal form), linear layer explicit; "
               "learning rate %g (Nesterov), %g (Adam)\n\n", o.prox_lr,
               o.adam_prox_lr);
    else
        printf("ProxProp: hidden layers proximal (exact: wb_prox_step; cgK: K "
               "matrix-free CG iterations, %s form), last layer explicit; "
               "learning rate %g (Nesterov), %g (Adam)\n\n",
               o.form == PP_CG_BATCH ? "batch" : "primal", o.prox_lr, o.adam_prox_lr);
    printf("%-30s %12s %10s %10s %9s\n", "method", "train loss", "val acc",
           "test acc", "seconds");
    printf("%-30s %12s %10s %10s %9s\n", "------------------------------",
           "----------", "-------", "--------", "-------");
    fflush(stdout);
    for (int k = 0; k < nm; k++) {
        run_method(&ms[k], &o, &tr, &va, &te, &M, &rs[k]);
        if (rs[k].diverged) {
            char what[64];
            snprintf(what, sizeof what, "diverged in epoch %d", rs[k].div_epoch);
            printf("%-30s %34s %9.2f   (%s)\n", ms[k].name, what, rs[k].seconds,
                   rs[k].why);
        } else {
            char test[16] = "-";
            if (isfinite(rs[k].test_acc))
                snprintf(test, sizeof test, "%.2f%%", 100 * rs[k].test_acc);
            printf("%-30s %12.4f %9.2f%% %10s %9.2f\n", ms[k].name, rs[k].final_loss,
                   100 * rs[k].final_acc, test, rs[k].seconds);
        }
        fflush(stdout);
    }

    if (o.json && write_json(o.json, &o, dataset, &tr, &va, &te, &M, ms, rs, nm) != 0)
        rc = 1;
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
    pp_net_free(&N);
    pp_convnet_free(&CN);
    set_free(&tr);
    set_free(&va);
    set_free(&te);
    return rc;
}
