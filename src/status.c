/* Status strings, version, settings defaults and validation, memory hooks. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wb_internal.h"

const char *wb_version(void) { return WB_VERSION_STRING; }

/* One buffer per thread: calls on different threads never see each other's
   messages (C11 _Thread_local). */
static _Thread_local char last_error[WBI_MSG_LEN];

wb_status wbi_fail(wb_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return st;
}

const char *wb_last_error(void) {
    return last_error[0] ? last_error : "no error recorded on this thread";
}

void wb_last_error_clear(void) { last_error[0] = '\0'; }

const char *wb_status_str(wb_status st) {
    switch (st) {
    case WB_OK: return "ok";
    case WB_MAXITER: return "iteration limit reached before the tolerances were met";
    case WB_STALLED: return "stalled: no further decrease possible";
    case WB_CANCELED: return "canceled by the progress callback";
    case WB_DONE: return "done: the training run has finished";
    case WB_EINVAL: return "invalid argument";
    case WB_ENOMEM: return "out of memory";
    case WB_ECALLBACK: return "a user callback returned an error";
    case WB_ENONFINITE: return "non-finite value (NaN or Inf)";
    case WB_ESINGULAR: return "H + lambda I is not positive definite";
    case WB_ENOTSOLVED: return "no successful solve to differentiate";
    case WB_EIO: return "input/output error";
    case WB_EFORMAT: return "malformed data";
    case WB_EBUSY: return "the object is in use by another call";
    }
    return "unknown status";
}

void wb_settings_default(wb_settings *s) {
    if (!s) return;
    memset(s, 0, sizeof *s);
    s->max_iter = 200;
    s->grad_tol = 1e-8;
    s->step_tol = 1e-10;
    s->f_tol = 0.0;
    s->lambda = 0.0;
    s->mu0 = 1e-1;
    s->scale_damping = 1;
    s->fd_step = 6.0554544523933395e-06; /* cbrt(DBL_EPSILON) */
    s->min_rcond = 1e-14;
    s->curv_floor = 32.0;
    s->hessian = WB_HESS_AUTO;
    s->cg_max_iter = 0;
    s->cg_tol = 1e-10;
    s->tr_radius0 = 1.0;
    s->lbfgs_memory = 8;
    s->lbfgs_max_iter = 0;
    s->verbose = 0;
    s->progress = NULL;
    s->progress_user = NULL;
    s->alloc = NULL;
    s->dealloc = NULL;
    s->alloc_ctx = NULL;
}

#define BAD(...) do { snprintf(msg, len, __VA_ARGS__); return WB_EINVAL; } while (0)

wb_status wbi_settings_check(const wb_settings *s, char *msg, size_t len) {
    if (s->max_iter < 0) BAD("settings.max_iter = %d must be >= 0", s->max_iter);
    if (!(s->grad_tol >= 0) || !isfinite(s->grad_tol))
        BAD("settings.grad_tol = %g must be finite and >= 0", s->grad_tol);
    if (!(s->step_tol >= 0) || !isfinite(s->step_tol))
        BAD("settings.step_tol = %g must be finite and >= 0", s->step_tol);
    if (!(s->f_tol >= 0) || !isfinite(s->f_tol))
        BAD("settings.f_tol = %g must be finite and >= 0", s->f_tol);
    if (!(s->lambda >= 0) || !isfinite(s->lambda))
        BAD("settings.lambda = %g must be finite and >= 0", s->lambda);
    if (!(s->mu0 > 0) || !isfinite(s->mu0))
        BAD("settings.mu0 = %g must be finite and > 0", s->mu0);
    if (s->scale_damping != 0 && s->scale_damping != 1)
        BAD("settings.scale_damping = %d must be 0 or 1", s->scale_damping);
    if (!(s->fd_step > 0) || !(s->fd_step < 1))
        BAD("settings.fd_step = %g must be in (0, 1)", s->fd_step);
    if (!(s->min_rcond >= 0) || !(s->min_rcond < 1))
        BAD("settings.min_rcond = %g must be in [0, 1)", s->min_rcond);
    if (!(s->curv_floor >= 0) || !isfinite(s->curv_floor))
        BAD("settings.curv_floor = %g must be finite and >= 0", s->curv_floor);
    if (s->hessian < WB_HESS_AUTO || s->hessian > WB_HESS_SPARSE)
        BAD("settings.hessian = %d is not a wb_hessian_kind", (int)s->hessian);
    if (s->cg_max_iter < 0) BAD("settings.cg_max_iter = %d must be >= 0", s->cg_max_iter);
    if (!(s->cg_tol > 0 && s->cg_tol < 1)) BAD("settings.cg_tol = %g must be in (0, 1)", s->cg_tol);
    if (!(s->tr_radius0 > 0) || !isfinite(s->tr_radius0))
        BAD("settings.tr_radius0 = %g must be finite and > 0", s->tr_radius0);
    if (s->lbfgs_memory < 1 || s->lbfgs_memory > 1000)
        BAD("settings.lbfgs_memory = %d must be in [1, 1000]", s->lbfgs_memory);
    if (s->lbfgs_max_iter < 0)
        BAD("settings.lbfgs_max_iter = %d must be >= 0", s->lbfgs_max_iter);
    if ((s->alloc == NULL) != (s->dealloc == NULL))
        BAD("settings.alloc and settings.dealloc must be set together");
    return WB_OK;
}

wb_status wbi_energy_check(const wb_energy *e, char *msg, size_t len) {
    if (e->n <= 0) BAD("energy.n = %d must be >= 1", e->n);
    if (e->p < 0) BAD("energy.p = %d must be >= 0", e->p);
    if (!e->value_grad) BAD("energy.value_grad is required (NULL given)");
    if (e->kd < 0 || e->kd >= e->n)
        BAD("energy.kd = %d must be in [0, n - 1 = %d]", e->kd, e->n - 1);
    return wbi_sparse_pattern_check(e, msg, len);
}

void *wbi_alloc(const wb_settings *s, size_t count, size_t size) {
    if (count != 0 && size > ((size_t)-1) / count) return NULL;
    size_t bytes = count * size;
    if (bytes == 0) bytes = 1;
    void *p = (s && s->alloc) ? s->alloc(s->alloc_ctx, bytes) : malloc(bytes);
    return p;
}

void wbi_free(const wb_settings *s, void *p) {
    if (!p) return;
    if (s && s->dealloc) s->dealloc(s->alloc_ctx, p);
    else free(p);
}

void wbi_set_msg(wb_solver *sv, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sv->msg, sizeof sv->msg, fmt, ap);
    va_end(ap);
}

const char *wb_solver_message(const wb_solver *sv) {
    return sv ? sv->msg : "no solver";
}
