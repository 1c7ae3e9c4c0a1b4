/* Concurrency: solvers on separate objects run concurrently from several
 * threads and give exactly the results of a serial run (no shared state in
 * the library). Also run under ThreadSanitizer (-DWIBERG_TSAN=ON). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sched.h>

#include "energies.h"

enum { NT = 4, N = 6, M = 15, REPS = 20 };

typedef struct {
    phub_t P;
    double w[M], x[N], out[M];
    int status;
} job_t;

static void *work(void *arg) {
    job_t *j = arg;
    wb_energy e = phub_energy(&j->P);
    wb_settings s;
    wb_settings_default(&s);
    s.lambda = 0.05;
    wb_solver *sv = NULL;
    j->status = wb_solver_create(&sv, &e, &s);
    double g[N];
    for (int i = 0; i < N; i++) g[i] = 1.0 + i;
    for (int r = 0; r < REPS && j->status == WB_OK; r++) {
        for (int i = 0; i < N; i++) j->x[i] = 0.0;
        j->status = wb_solve(sv, j->w, j->x, NULL);
        if (j->status == WB_OK) j->status = wb_implicit_vjp(sv, g, j->out);
    }
    wb_solver_destroy(sv);
    return NULL;
}

static void concurrent_solvers_match_serial_runs(void **st) {
    (void)st;
    static job_t par[NT], ser[NT];
    for (int k = 0; k < NT; k++) {
        phub_init(&par[k].P, N, M, 100 + (uint64_t)k);
        phub_init(&ser[k].P, N, M, 100 + (uint64_t)k);
        for (int i = 0; i < M; i++) par[k].w[i] = ser[k].w[i] = 0.5 + 0.1 * ((i + k) % 7);
    }
    pthread_t th[NT];
    for (int k = 0; k < NT; k++) assert_int_equal(pthread_create(&th[k], NULL, work, &par[k]), 0);
    for (int k = 0; k < NT; k++) pthread_join(th[k], NULL);
    for (int k = 0; k < NT; k++) work(&ser[k]);
    for (int k = 0; k < NT; k++) {
        assert_int_equal(par[k].status, WB_OK);
        assert_int_equal(ser[k].status, WB_OK);
        assert_memory_equal(par[k].x, ser[k].x, sizeof par[k].x);
        assert_memory_equal(par[k].out, ser[k].out, sizeof par[k].out);
        phub_free(&par[k].P);
        phub_free(&ser[k].P);
    }
}

/* wb_last_error is per thread: a failure on one thread is not seen on
   another, and each sees its own sentence. */
static void *fail_prox(void *arg) {
    wb_prox *px = NULL;
    *(wb_status *)arg = wb_prox_create(&px, 0, 3, NULL);
    return strstr(wb_last_error(), "n_out = 0") ? arg : NULL;
}
static void last_error_is_per_thread(void **st) {
    (void)st;
    wb_last_error_clear();
    assert_int_equal(wb_solve(NULL, NULL, NULL, NULL), WB_EINVAL);
    wb_status other = WB_OK;
    pthread_t th;
    void *ret = NULL;
    assert_int_equal(pthread_create(&th, NULL, fail_prox, &other), 0);
    assert_int_equal(pthread_join(th, &ret), 0);
    assert_int_equal(other, WB_EINVAL);
    assert_ptr_equal(ret, &other); /* the thread saw its own sentence */
    assert_non_null(strstr(wb_last_error(), "wb_solve: sv is NULL"));
}

/* ---- one object shared by two threads (documented as not allowed) -------
 * Each call either does its work exactly as alone (bit for bit the result
 * of a private object) or finds the object in use and returns WB_EBUSY
 * with its outputs untouched -- never a wrong result with WB_OK. Without
 * the guard, 86 of 800 such solves returned wrong minimizers with WB_OK. */
/* A refusal returns at once, so each thread keeps calling (yielding after
   a refusal) until HREPS of its calls went through: the two threads'
   calls interleave. CAP bounds the attempts. */
enum { HN = 8, HM = 40, HREPS = 200, CAP = 50000000 };

typedef struct {
    wb_solver *sv;          /* shared */
    pthread_barrier_t *go;
    double w[HM], xref[HN], vref[HM];
    int ok, busy, wrong, other;
} hammer_t;

static void *hammer(void *arg) {
    hammer_t *h = arg;
    double g[HN];
    for (int i = 0; i < HN; i++) g[i] = 1.0 - 0.1 * i;
    pthread_barrier_wait(h->go);
    for (long a = 0; a < CAP && h->ok < 2 * HREPS && !h->wrong && !h->other; a++) {
        if (a > 0 && (a & 1)) sched_yield();
        double x[HN] = {0}, v[HM];
        wb_status st = wb_solve(h->sv, h->w, x, NULL);
        if (st == WB_OK) {
            if (memcmp(x, h->xref, sizeof x) == 0) h->ok++;
            else h->wrong++;
        } else if (st == WB_EBUSY) {
            int untouched = 1;
            for (int i = 0; i < HN; i++) untouched &= x[i] == 0.0;
            if (untouched) h->busy++;
            else h->wrong++;
        } else {
            h->other++;
        }
        /* a self-contained derivative: the point is given */
        for (int j = 0; j < HM; j++) v[j] = -7.0;
        st = wb_implicit_vjp_at(h->sv, h->w, h->xref, g, v);
        if (st == WB_OK) {
            if (memcmp(v, h->vref, sizeof v) == 0) h->ok++;
            else h->wrong++;
        } else if (st == WB_EBUSY) {
            h->busy++;
            for (int j = 0; j < HM; j++)
                if (v[j] != -7.0) h->wrong++;
        } else {
            h->other++;
        }
    }
    return NULL;
}

static void one_solver_shared_by_two_threads_refuses_never_lies(void **st) {
    (void)st;
    phub_t P;
    phub_init(&P, HN, HM, 31);
    wb_energy e = phub_energy(&P);
    wb_settings s;
    wb_settings_default(&s);
    s.lambda = 0.05;
    static hammer_t h[2];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    wb_solver *sv = NULL, *ref = NULL;
    assert_int_equal(wb_solver_create(&sv, &e, &s), WB_OK);
    assert_int_equal(wb_solver_create(&ref, &e, &s), WB_OK);
    for (int k = 0; k < 2; k++) {
        memset(&h[k], 0, sizeof h[k]);
        h[k].sv = sv;
        h[k].go = &go;
        for (int i = 0; i < HM; i++) h[k].w[i] = 0.3 + 0.9 * k + 0.02 * ((i * 5 + k) % 11);
        /* references: a private solver, one call at a time */
        memset(h[k].xref, 0, sizeof h[k].xref);
        assert_int_equal(wb_solve(ref, h[k].w, h[k].xref, NULL), WB_OK);
        double g[HN];
        for (int i = 0; i < HN; i++) g[i] = 1.0 - 0.1 * i;
        assert_int_equal(wb_implicit_vjp_at(ref, h[k].w, h[k].xref, g, h[k].vref), WB_OK);
    }
    /* the two threads' problems differ: a mixed-up result would show */
    assert_true(memcmp(h[0].xref, h[1].xref, sizeof h[0].xref) != 0);
    pthread_t th[2];
    for (int k = 0; k < 2; k++) assert_int_equal(pthread_create(&th[k], NULL, hammer, &h[k]), 0);
    for (int k = 0; k < 2; k++) pthread_join(th[k], NULL);
    for (int k = 0; k < 2; k++) {
        printf("    thread %d: %d correct, %d refused (WB_EBUSY), %d wrong, "
               "%d other\n", k, h[k].ok, h[k].busy, h[k].wrong, h[k].other);
        assert_int_equal(h[k].wrong, 0);
        assert_int_equal(h[k].other, 0);
        assert_true(h[k].ok >= 2 * HREPS);
    }
    /* the solver is usable afterwards, and correct */
    double x[HN] = {0};
    assert_int_equal(wb_solve(sv, h[0].w, x, NULL), WB_OK);
    assert_memory_equal(x, h[0].xref, sizeof x);
    pthread_barrier_destroy(&go);
    wb_solver_destroy(sv);
    wb_solver_destroy(ref);
    phub_free(&P);
}

/* The same for a ProxProp object. */
enum { PO = 8, PI = 60, PMB = 120, PT = PO * (PI + 1) };
typedef struct {
    wb_prox *px;
    pthread_barrier_t *go;
    double A[PI * PMB], Z[PO * PMB], T0[PT], Tref[PT];
    int ok, busy, wrong;
} phammer_t;

static void *prox_hammer(void *arg) {
    phammer_t *h = arg;
    pthread_barrier_wait(h->go);
    for (long a = 0; a < CAP && h->ok < HREPS && !h->wrong; a++) {
        double T[PT];
        for (int k = 0; k < PT; k++) T[k] = -7.0;
        wb_status st = wb_prox_step(h->px, PMB, h->A, h->Z, h->T0, T);
        if (st == WB_OK && memcmp(T, h->Tref, sizeof T) == 0) h->ok++;
        else if (st == WB_EBUSY && T[0] == -7.0 && T[PT - 1] == -7.0) {
            h->busy++;
            sched_yield();
        } else h->wrong++;
    }
    return NULL;
}

static void one_prox_object_shared_by_two_threads_refuses_never_lies(void **st) {
    (void)st;
    static phammer_t h[2];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    wb_prox *px = NULL, *ref = NULL;
    assert_int_equal(wb_prox_create(&px, PO, PI, NULL), WB_OK);
    assert_int_equal(wb_prox_create(&ref, PO, PI, NULL), WB_OK);
    uint64_t seed = 77;
    for (int k = 0; k < 2; k++) {
        h[k].px = px;
        h[k].go = &go;
        h[k].ok = h[k].busy = h[k].wrong = 0;
        for (int i = 0; i < PI * PMB; i++) h[k].A[i] = 2 * wb_test_rand(&seed) - 1;
        for (int i = 0; i < PO * PMB; i++) h[k].Z[i] = 2 * wb_test_rand(&seed) - 1;
        for (int i = 0; i < PT; i++) h[k].T0[i] = 2 * wb_test_rand(&seed) - 1;
        assert_int_equal(wb_prox_step(ref, PMB, h[k].A, h[k].Z, h[k].T0, h[k].Tref), WB_OK);
    }
    pthread_t th[2];
    for (int k = 0; k < 2; k++) assert_int_equal(pthread_create(&th[k], NULL, prox_hammer, &h[k]), 0);
    for (int k = 0; k < 2; k++) pthread_join(th[k], NULL);
    for (int k = 0; k < 2; k++) {
        printf("    prox thread %d: %d correct, %d refused, %d wrong\n", k,
               h[k].ok, h[k].busy, h[k].wrong);
        assert_int_equal(h[k].wrong, 0);
        assert_int_equal(h[k].ok, HREPS);
    }
    pthread_barrier_destroy(&go);
    wb_prox_destroy(px);
    wb_prox_destroy(ref);
}

/* One wb_lsq_energy (its residual cache) behind two solvers on two threads:
   a solve either matches a private run or fails (WB_ECALLBACK: the energy's
   callback found it in use, wb_last_error says so); never a wrong WB_OK. */
enum { LM = 1000 };
static int line_res(void *u, const double *x, const double *w, double *r,
                    double *J) {
    const double *t = u; /* r_i = x0 + x1 t_i - w_i */
    for (int i = 0; i < LM; i++) {
        r[i] = x[0] + x[1] * t[i] - w[i];
        if (J) {
            J[i] = 1.0;
            J[LM + i] = t[i];
        }
    }
    return 0;
}
typedef struct {
    wb_energy e;
    pthread_barrier_t *go;
    double w[LM], xref[2];
    int ok, busy, wrong;
    char why[160];
} lhammer_t;
static void *lsq_hammer(void *arg) {
    lhammer_t *h = arg;
    wb_solver *sv = NULL;
    if (wb_solver_create(&sv, &h->e, NULL) != WB_OK) {
        h->wrong = -1;
        pthread_barrier_wait(h->go);
        return NULL;
    }
    pthread_barrier_wait(h->go);
    for (long a = 0; a < CAP && h->ok < HREPS && !h->wrong; a++) {
        double x[2] = {0, 0};
        wb_status st = wb_solve(sv, h->w, x, NULL);
        if (st == WB_OK && fabs(x[0] - h->xref[0]) < 1e-9 && fabs(x[1] - h->xref[1]) < 1e-9)
            h->ok++;
        else if (st == WB_ECALLBACK && strstr(wb_last_error(), "in use")) {
            h->busy++;
            snprintf(h->why, sizeof h->why, "%s", wb_last_error());
            sched_yield();
        } else
            h->wrong++;
    }
    wb_solver_destroy(sv);
    return NULL;
}
static void one_lsq_energy_behind_two_threads_refuses_never_lies(void **st) {
    (void)st;
    static double t[LM];
    for (int i = 0; i < LM; i++) t[i] = -1.0 + 2.0 * i / (LM - 1);
    wb_lsq ls;
    memset(&ls, 0, sizeof ls);
    ls.n = 2, ls.p = LM, ls.m = LM, ls.dim = 1, ls.user = t, ls.residual = line_res;
    wb_lsq_energy *le = NULL;
    wb_energy e;
    assert_int_equal(wb_lsq_energy_create(&le, &ls, &e), WB_OK);
    static lhammer_t h[2];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    for (int k = 0; k < 2; k++) {
        memset(&h[k], 0, sizeof h[k]);
        h[k].e = e;
        h[k].go = &go;
        /* w_i = a + b t_i exactly: the least-squares line is (a, b) */
        double a = 1.0 + 2.0 * k, b = -0.5 + k;
        for (int i = 0; i < LM; i++) h[k].w[i] = a + b * t[i];
        h[k].xref[0] = a;
        h[k].xref[1] = b;
    }
    pthread_t th[2];
    for (int k = 0; k < 2; k++) assert_int_equal(pthread_create(&th[k], NULL, lsq_hammer, &h[k]), 0);
    for (int k = 0; k < 2; k++) pthread_join(th[k], NULL);
    for (int k = 0; k < 2; k++) {
        printf("    lsq thread %d: %d correct, %d refused, %d wrong%s%s\n", k,
               h[k].ok, h[k].busy, h[k].wrong, h[k].busy ? ": " : "", h[k].why);
        assert_int_equal(h[k].wrong, 0);
        assert_int_equal(h[k].ok, HREPS);
    }
    pthread_barrier_destroy(&go);
    wb_lsq_energy_destroy(le);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(concurrent_solvers_match_serial_runs),
        cmocka_unit_test(last_error_is_per_thread),
        cmocka_unit_test(one_solver_shared_by_two_threads_refuses_never_lies),
        cmocka_unit_test(one_prox_object_shared_by_two_threads_refuses_never_lies),
        cmocka_unit_test(one_lsq_energy_behind_two_threads_refuses_never_lies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
