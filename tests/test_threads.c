/* Concurrency: solvers on separate objects run concurrently from several
 * threads and give exactly the results of a serial run (no shared state in
 * the library). Also run under ThreadSanitizer (-DWIBERG_TSAN=ON). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>

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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(concurrent_solvers_match_serial_runs),
        cmocka_unit_test(last_error_is_per_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
