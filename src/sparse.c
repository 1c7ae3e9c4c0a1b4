/* The sparse Hessian storage (WB_HESS_SPARSE): the energy gives the pattern
 * of H's lower triangle in compressed sparse columns and, optionally, its
 * values; the solver factors H + mu D with CHOLMOD (SuiteSparse).
 *
 *   pattern     lower-triangle CSC (= upper-triangle CSR), sorted, no
 *               duplicates, every diagonal entry present (the damping and
 *               the implicit derivative's lambda shift it)
 *   values      hess_sparse, or Curtis-Powell-Reid coloured differences:
 *               columns j, k that share no row of the symmetric pattern
 *               (distance >= 3 in its graph) get the same colour (greedy,
 *               natural order, then iterated greedy); perturbing a colour's columns at once,
 *                 H_ij = (g_i(x + sum h_k e_k) - g_i(x - sum h_k e_k)) / 2h_j
 *               for the one column j of the colour in row i's pattern: 2
 *               gradients a colour. Both H_ij (from column j) and H_ji
 *               (from column i) are estimated; the stored value is their
 *               mean (symmetrized, as the dense and banded differences)
 *   analysis    cholmod_analyze once per pattern (fill-reducing ordering:
 *               AMD, or METIS when AMD fills much; simplicial LDL' or
 *               supernodal LL' by flops per entry of L, switch at 200)
 *   factor      cholmod_factorize_p per step, numeric only:
 *                 H + mu I      beta = mu (the implicit derivative: lambda)
 *                 H + mu D      the values copied with mu d_i added on the
 *                               diagonal (the solver's Marquardt damping)
 *               not positive definite: L->minor < n (LL'), or a pivot
 *               D_jj <= 0 (a simplicial LDL' factor, which CHOLMOD does not
 *               stop on): returned as a failed pivot, like LAPACK's info
 *   solve       cholmod_solve2 one column at a time, on workspace kept
 *               from the first solve (so later solves never allocate)
 *
 * CHOLMOD allocates inside cholmod_factorize (the permuted copy of A, and
 * the factor's values the first time) and its first solve, through
 * SuiteSparse's process-wide malloc: its hooks take no context, so they
 * cannot be routed to settings.alloc per solver. That is the one exception
 * to "no allocation after create" (wiberg.h says so at WB_HESS_SPARSE).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cholmod.h>

#include "wb_internal.h"

struct wbi_sparse {
    cholmod_common c;
    cholmod_sparse A;   /* header over ptr/idx and the values           */
    cholmod_factor *L;  /* the analysis, then the numeric factor         */
    cholmod_dense *X, *Y, *E; /* cholmod_solve2's reusable workspace     */
    int n, nnz, nnz_cap;
    int *ptr, *idx;     /* [n_cap+1], [nnz_cap] the lower pattern        */
    int *fptr;          /* [n_cap+1] full symmetric pattern, by columns  */
    int *fidx, *fmap;   /* [2 nnz_cap] its rows; the lower entry each is */
    int *colour;        /* [n_cap] colour of each column                 */
    int *cptr, *cols;   /* [n_cap+1], [n_cap] the columns of each colour */
    int *mark;          /* [n_cap] colouring work                         */
    int ncolours;
    int started;        /* cholmod_start succeeded                       */
    double *T;          /* [nnz_cap] H_ji estimates (differences)        */
    double *S;          /* [nnz_cap] H + mu D values for the factor      */
};

#define BAD(...)                              \
    do {                                      \
        snprintf(msg, len, __VA_ARGS__);      \
        return WB_EINVAL;                     \
    } while (0)

wb_status wbi_sparse_pattern_check(const wb_energy *e, char *msg, size_t len) {
    int n = e->n, nnz = e->hess_nnz;
    const int *cp = e->hess_colptr, *ri = e->hess_rowidx;
    if (nnz < 0) BAD("energy.hess_nnz = %d must be >= 0", nnz);
    if (nnz == 0) {
        if (cp || ri || e->hess_sparse)
            BAD("energy.hess_colptr, hess_rowidx or hess_sparse given with "
                "hess_nnz = 0: give the pattern's size (or none of them)");
        return WB_OK;
    }
    if (!cp || !ri)
        BAD("energy.hess_nnz = %d but hess_colptr or hess_rowidx is NULL", nnz);
    if ((double)nnz * 2 - n > 2147483647.0)
        BAD("energy.hess_nnz = %d: the symmetric pattern's 2 nnz - n entries "
            "exceed int", nnz);
    if (cp[0] != 0) BAD("energy.hess_colptr[0] = %d must be 0", cp[0]);
    if (cp[n] != nnz)
        BAD("energy.hess_colptr[n = %d] = %d must equal hess_nnz = %d", n,
            cp[n], nnz);
    for (int j = 0; j < n; j++)
        if (cp[j + 1] < cp[j] || cp[j + 1] > nnz)
            BAD("energy.hess_colptr[%d] = %d must lie in [hess_colptr[%d] = %d, "
                "hess_nnz = %d]", j + 1, cp[j + 1], j, cp[j], nnz);
    for (int j = 0; j < n; j++) {
        for (int k = cp[j]; k < cp[j + 1]; k++) {
            int i = ri[k];
            if (i < 0 || i >= n)
                BAD("energy.hess_rowidx[%d] = %d (column %d) is out of range "
                    "[0, n - 1 = %d]", k, i, j, n - 1);
            if (i < j)
                BAD("energy.hess_rowidx[%d] = %d is above the diagonal of "
                    "column %d: give the lower triangle (rows >= column)", k,
                    i, j);
            if (k > cp[j] && i <= ri[k - 1])
                BAD("energy.hess_rowidx[%d] = %d (column %d) is %s: rows must "
                    "increase strictly within a column", k, i, j,
                    i == ri[k - 1] ? "a duplicate" : "unsorted");
        }
        if (cp[j + 1] == cp[j] || ri[cp[j]] != j)
            BAD("the sparse pattern misses the diagonal entry (%d,%d): every "
                "H_jj must be in it (the damping shifts it)", j, j);
    }
    return WB_OK;
}

#undef BAD

/* ---- the pattern's graph and its colouring ------------------------------ */

/* Greedy distance-2 colouring in the order P->cols[0..n-1]: column j takes
   the smallest colour not held by a column k that shares a row with it (k
   in row i's pattern for some i in column j's pattern). Returns the count.
   mark[c] = the last column that saw colour c nearby. */
static int greedy_colour(struct wbi_sparse *P, int n) {
    int ncol = 0;
    for (int j = 0; j < n; j++) P->colour[j] = -1;
    for (int c = 0; c < n; c++) P->mark[c] = -1;
    for (int t = 0; t < n; t++) {
        int j = P->cols[t];
        for (int a = P->fptr[j]; a < P->fptr[j + 1]; a++) {
            int i = P->fidx[a];
            for (int b = P->fptr[i]; b < P->fptr[i + 1]; b++) {
                int ck = P->colour[P->fidx[b]];
                if (ck >= 0) P->mark[ck] = j;
            }
        }
        int c = 0;
        while (P->mark[c] == j) c++;
        P->colour[j] = c;
        if (c + 1 > ncol) ncol = c + 1;
    }
    return ncol;
}

/* cols = the columns grouped by colour (cptr[c] .. cptr[c+1]-1 for colour
   c; reversed = 1: the classes in reverse order, for the next pass). */
static void group_by_colour(struct wbi_sparse *P, int ncol, int reversed) {
    int n = P->n;
    memset(P->cptr, 0, ((size_t)ncol + 1) * sizeof(int));
    for (int j = 0; j < n; j++) {
        int c = reversed ? ncol - 1 - P->colour[j] : P->colour[j];
        P->cptr[c + 1]++;
    }
    for (int c = 0; c < ncol; c++) P->cptr[c + 1] += P->cptr[c];
    for (int c = 0; c < ncol; c++) P->mark[c] = P->cptr[c];
    for (int j = 0; j < n; j++) {
        int c = reversed ? ncol - 1 - P->colour[j] : P->colour[j];
        P->cols[P->mark[c]++] = j;
    }
}

/* The full symmetric pattern by columns (rows sorted), each entry mapped
   to its lower-triangle index; then its distance-2 colouring. */
static void build_graph(struct wbi_sparse *P) {
    int n = P->n;
    int *cnt = P->mark;
    memset(cnt, 0, (size_t)n * sizeof(int));
    for (int j = 0; j < n; j++)
        for (int k = P->ptr[j]; k < P->ptr[j + 1]; k++) {
            cnt[j]++;
            if (P->idx[k] != j) cnt[P->idx[k]]++;
        }
    P->fptr[0] = 0;
    for (int j = 0; j < n; j++) P->fptr[j + 1] = P->fptr[j] + cnt[j];
    /* upper entries first (rows k < j, increasing k), then the lower */
    for (int j = 0; j < n; j++) cnt[j] = P->fptr[j];
    for (int j = 0; j < n; j++)
        for (int k = P->ptr[j] + 1; k < P->ptr[j + 1]; k++) {
            int i = P->idx[k]; /* (i, j), i > j: row j of column i */
            P->fidx[cnt[i]] = j;
            P->fmap[cnt[i]++] = k;
        }
    for (int j = 0; j < n; j++)
        for (int k = P->ptr[j]; k < P->ptr[j + 1]; k++) {
            P->fidx[cnt[j]] = P->idx[k];
            P->fmap[cnt[j]++] = k;
        }
    /* greedy in natural order, then iterated greedy (Culberson): colour
       again visiting the columns class by class, the last class first;
       each column then finds at most the colour it had, so the count never
       grows and may fall. A 5-point grid stencil keeps 7 colours at any n
       (the optimum is 5, (r + 2c) mod 5, which neither this nor smallest-
       last or random orders found in a trial: 6-9) */
    for (int j = 0; j < n; j++) P->cols[j] = j;
    int ncol = greedy_colour(P, n);
    for (int pass = 0; pass < 8; pass++) {
        group_by_colour(P, ncol, 1);
        int c2 = greedy_colour(P, n);
        if (c2 == ncol && pass >= 2) break;
        ncol = c2;
    }
    P->ncolours = ncol;
    group_by_colour(P, ncol, 0);
}

static void free_workspace(struct wbi_sparse *P) {
    if (P->X) cholmod_free_dense(&P->X, &P->c);
    if (P->Y) cholmod_free_dense(&P->Y, &P->c);
    if (P->E) cholmod_free_dense(&P->E, &P->c);
}

/* The analysis of the held pattern (the A header over ptr/idx). */
static wb_status analyse(wb_solver *sv, char *msg, size_t len) {
    struct wbi_sparse *P = sv->sp;
    free_workspace(P);
    if (P->L) cholmod_free_factor(&P->L, &P->c);
    memset(&P->A, 0, sizeof P->A);
    P->A.nrow = P->A.ncol = (size_t)P->n;
    P->A.nzmax = (size_t)P->nnz;
    P->A.p = P->ptr;
    P->A.i = P->idx;
    P->A.x = sv->H;
    P->A.stype = -1; /* the lower triangle is used */
    P->A.itype = CHOLMOD_INT;
    P->A.xtype = CHOLMOD_REAL;
    P->A.dtype = CHOLMOD_DOUBLE;
    P->A.sorted = 1;
    P->A.packed = 1;
    build_graph(P);
    P->L = cholmod_analyze(&P->A, &P->c);
    if (!P->L) {
        snprintf(msg, len, "CHOLMOD could not analyse the sparse pattern "
                 "(n = %d, nnz = %d; status %d%s)", P->n, P->nnz, P->c.status,
                 P->c.status == CHOLMOD_OUT_OF_MEMORY ? ": out of memory" : "");
        return P->c.status == CHOLMOD_OUT_OF_MEMORY ? WB_ENOMEM : WB_EINVAL;
    }
    return WB_OK;
}

static int copy_pattern(struct wbi_sparse *P, const wb_energy *e) {
    P->n = e->n;
    P->nnz = e->hess_nnz;
    memcpy(P->ptr, e->hess_colptr, ((size_t)e->n + 1) * sizeof(int));
    memcpy(P->idx, e->hess_rowidx, (size_t)e->hess_nnz * sizeof(int));
    return 0;
}

wb_status wbi_sparse_create(wb_solver *sv, char *msg, size_t len) {
    const wb_settings *s = &sv->s;
    size_t n = (size_t)sv->e.n, nnz = (size_t)sv->e.hess_nnz;
    struct wbi_sparse *P = wbi_alloc(s, 1, sizeof *P);
    if (!P) {
        snprintf(msg, len, "out of memory");
        return WB_ENOMEM;
    }
    memset(P, 0, sizeof *P);
    sv->sp = P;
    P->nnz_cap = (int)nnz;
    P->ptr = wbi_alloc(s, n + 1, sizeof(int));
    P->idx = wbi_alloc(s, nnz, sizeof(int));
    P->fptr = wbi_alloc(s, n + 1, sizeof(int));
    P->fidx = wbi_alloc(s, 2 * nnz, sizeof(int));
    P->fmap = wbi_alloc(s, 2 * nnz, sizeof(int));
    P->colour = wbi_alloc(s, n, sizeof(int));
    P->cptr = wbi_alloc(s, n + 1, sizeof(int));
    P->cols = wbi_alloc(s, n, sizeof(int));
    P->mark = wbi_alloc(s, n, sizeof(int));
    P->T = wbi_alloc(s, nnz, sizeof(double));
    P->S = wbi_alloc(s, nnz, sizeof(double));
    if (!P->ptr || !P->idx || !P->fptr || !P->fidx || !P->fmap || !P->colour ||
        !P->cptr || !P->cols || !P->mark || !P->T || !P->S) {
        snprintf(msg, len, "out of memory");
        return WB_ENOMEM; /* the caller destroys the solver, sv->sp too */
    }
    if (!cholmod_start(&P->c)) {
        snprintf(msg, len, "CHOLMOD could not start (status %d)", P->c.status);
        return WB_ENOMEM;
    }
    P->started = 1;
    P->c.print = 0;            /* the library never prints */
    P->c.error_handler = NULL;
    P->c.final_ll = 0;         /* leave LDL' as is: its D is checked */
    P->c.quick_return_if_not_posdef = 1;
    /* simplicial (LDL', one thread, no BLAS) below 200 flops per entry of
       L, supernodal (BLAS-3, CHOLMOD's compiled-in OpenMP threads) above:
       measured on a shared 2-core machine, smoothed-TV grids of 32^2 to
       400^2 (flops/nnz(L) 20 to 200), the supernodal factor took 2-15x
       the simplicial one up to 256^2 (ratio 133) and broke even at 400^2
       (ratio 200); CHOLMOD's default switch (40) assumes free cores for
       its threads, which a trainer running solvers on every core has not */
    P->c.supernodal_switch = 200;
    copy_pattern(P, &sv->e);
    return analyse(sv, msg, len);
}

void wbi_sparse_destroy(wb_solver *sv) {
    struct wbi_sparse *P = sv ? sv->sp : NULL;
    if (!P) return;
    const wb_settings *s = &sv->s;
    if (P->started) {
        free_workspace(P);
        if (P->L) cholmod_free_factor(&P->L, &P->c);
        cholmod_finish(&P->c);
    }
    void *bufs[] = {P->ptr, P->idx, P->fptr, P->fidx, P->fmap, P->colour,
                    P->cptr, P->cols, P->mark, P->T, P->S};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) wbi_free(s, bufs[i]);
    wbi_free(s, P);
    sv->sp = NULL;
}

wb_status wbi_sparse_set_pattern(wb_solver *sv, const wb_energy *e) {
    struct wbi_sparse *P = sv->sp;
    char msg[WBI_MSG_LEN];
    if (e->n == P->n && e->hess_nnz == P->nnz &&
        memcmp(e->hess_colptr, P->ptr, ((size_t)e->n + 1) * sizeof(int)) == 0 &&
        memcmp(e->hess_rowidx, P->idx, (size_t)e->hess_nnz * sizeof(int)) == 0)
        return WB_OK; /* the same pattern: the analysis holds */
    if (e->hess_nnz > P->nnz_cap) {
        wbi_set_msg(sv, "wb_solver_set_energy: the sparse pattern has "
                    "hess_nnz = %d entries, more than the %d the solver was "
                    "created with", e->hess_nnz, P->nnz_cap);
        return WB_EINVAL;
    }
    copy_pattern(P, e);
    wb_status st = analyse(sv, msg, sizeof msg);
    if (st != WB_OK) {
        wbi_set_msg(sv, "wb_solver_set_energy: %s", msg);
        P->nnz = 0; /* no pattern held: the next set_energy analyses */
    }
    return st;
}

int wbi_sparse_colours(const wb_solver *sv) {
    return sv->sp ? sv->sp->ncolours : 0;
}

int wbi_sparse_supernodal(const wb_solver *sv, double *lnz) {
    const struct wbi_sparse *P = sv->sp;
    if (!P || !P->L) return -1;
    /* nnz(L) of the analysis: the sum of its column counts */
    if (lnz) {
        double s = 0;
        const int *cc = P->L->ColCount;
        for (size_t j = 0; cc && j < P->L->n; j++) s += cc[j];
        *lnz = s;
    }
    return P->L->is_super ? 1 : 0;
}

/* ---- forming H ------------------------------------------------------------ */

wb_status wbi_sparse_hessian(wb_solver *sv, const double *x, const double *w) {
    struct wbi_sparse *P = sv->sp;
    int n = sv->n;
    double *H = sv->H;
    if (sv->e.hess_sparse) {
        int rc = sv->e.hess_sparse(sv->e.user, x, w, H);
        if (rc != 0) {
            wbi_set_msg(sv, "hess_sparse returned %d", rc);
            return WB_ECALLBACK;
        }
    } else {
        /* colour c moves all its columns j by +-h_j at once; row i of the
           full pattern of such a column j meets no other column of c */
        double e1, e2;
        memcpy(sv->xh, x, (size_t)n * sizeof(double));
        for (int c = 0; c < P->ncolours; c++) {
            const int *cj = P->cols + P->cptr[c];
            int m = P->cptr[c + 1] - P->cptr[c];
            for (int t = 0; t < m; t++) {
                int j = cj[t];
                sv->xh[j] = x[j] + wbi_fd_step(&sv->s, x[j], wbi_typ_x(sv, j));
            }
            wb_status st = wbi_eval(sv, sv->xh, w, &e1, sv->g1);
            for (int t = 0; t < m; t++) {
                int j = cj[t];
                sv->xh[j] = x[j] - (sv->xh[j] - x[j]);
            }
            if (st == WB_OK) st = wbi_eval(sv, sv->xh, w, &e2, sv->g2);
            for (int t = 0; t < m; t++) {
                int j = cj[t];
                double h = x[j] - sv->xh[j]; /* = h_j exactly (wbi_fd_step) */
                sv->xh[j] = x[j];
                if (st != WB_OK) continue;
                for (int a = P->fptr[j]; a < P->fptr[j + 1]; a++) {
                    int i = P->fidx[a];
                    double v = (sv->g1[i] - sv->g2[i]) / (2 * h);
                    /* i >= j: H_ij itself (lower entry of column j); i < j:
                       H_ij = H_ji seen from column j (the other side) */
                    if (i >= j) H[P->fmap[a]] = v;
                    else P->T[P->fmap[a]] = v;
                }
            }
            if (st != WB_OK) return st;
        }
        /* (H + H')/2 on the off-diagonal entries */
        for (int j = 0; j < n; j++)
            for (int k = P->ptr[j] + 1; k < P->ptr[j + 1]; k++)
                H[k] = 0.5 * (H[k] + P->T[k]);
    }
    if (!wbi_all_finite((size_t)P->nnz, H)) {
        wbi_set_msg(sv, "the sparse Hessian has non-finite entries");
        return WB_ENONFINITE;
    }
    return WB_OK;
}

double wbi_sparse_diag(const wb_solver *sv, int i) {
    return sv->H[sv->sp->ptr[i]]; /* the first entry of column i */
}

/* out = H v: each stored (i, j), i > j, acts as H_ij and H_ji */
void wbi_sparse_mul(const wb_solver *sv, const double *v, double *out) {
    const struct wbi_sparse *P = sv->sp;
    int n = sv->n;
    const double *H = sv->H;
    memset(out, 0, (size_t)n * sizeof(double));
    for (int j = 0; j < n; j++) {
        double vj = v[j], acc = 0.0;
        int k = P->ptr[j];
        out[j] += H[k] * vj; /* the diagonal */
        for (k++; k < P->ptr[j + 1]; k++) {
            int i = P->idx[k];
            out[i] += H[k] * vj;
            acc += H[k] * v[i];
        }
        out[j] += acc;
    }
}

/* ||H + mu I||_1 = max_j sum_i |(H + mu I)_ij| over the full matrix */
double wbi_sparse_norm1(wb_solver *sv, double mu) {
    const struct wbi_sparse *P = sv->sp;
    int n = sv->n;
    double *col = sv->work, m = 0.0;
    memset(col, 0, (size_t)n * sizeof(double));
    for (int j = 0; j < n; j++) {
        int k = P->ptr[j];
        col[j] += fabs(sv->H[k] + mu);
        for (k++; k < P->ptr[j + 1]; k++) {
            double a = fabs(sv->H[k]);
            col[j] += a;
            col[P->idx[k]] += a;
        }
    }
    for (int j = 0; j < n; j++) m = fmax(m, col[j]);
    return m;
}

/* ---- factor and solve -------------------------------------------------------- */

static void dense_header(cholmod_dense *B, int n, double *x) {
    memset(B, 0, sizeof *B);
    B->nrow = (size_t)n;
    B->ncol = 1;
    B->nzmax = (size_t)n;
    B->d = (size_t)n;
    B->x = x;
    B->xtype = CHOLMOD_REAL;
    B->dtype = CHOLMOD_DOUBLE;
}

int wbi_sparse_factor(wb_solver *sv, double mu, const double *d) {
    struct wbi_sparse *P = sv->sp;
    int n = sv->n;
    double beta[2] = {0.0, 0.0};
    if (!P->L) { /* a failed re-analysis (wb_solver_set_energy) */
        wbi_set_msg(sv, "the sparse pattern is not analysed (the last "
                    "wb_solver_set_energy failed): set an energy again");
        return WB_EINVAL;
    }
    if (d) {
        /* S = H + mu diag(d): the diagonal is each column's first entry */
        memcpy(P->S, sv->H, (size_t)P->nnz * sizeof(double));
        for (int j = 0; j < n; j++) P->S[P->ptr[j]] += mu * d[j];
        P->A.x = P->S;
    } else {
        beta[0] = mu; /* CHOLMOD factors beta I + A */
        P->A.x = sv->H;
    }
    int ok = cholmod_factorize_p(&P->A, beta, NULL, 0, P->L, &P->c);
    P->A.x = sv->H;
    if (!ok || P->c.status < CHOLMOD_OK) {
        int oom = P->c.status == CHOLMOD_OUT_OF_MEMORY;
        wbi_set_msg(sv, "CHOLMOD's factorization failed (status %d%s)",
                    P->c.status, oom ? ": out of memory" : "");
        return oom ? WB_ENOMEM : WB_ENONFINITE;
    }
    if (P->L->minor < P->L->n) return (int)P->L->minor + 1;
    if (!P->L->is_ll && !P->L->is_super) {
        /* simplicial LDL': D_jj is the first entry of column j of L; all
           positive <=> H + mu D positive definite (Sylvester's inertia) */
        const int *Lp = P->L->p;
        const double *Lx = P->L->x;
        for (int j = 0; j < n; j++)
            if (!(Lx[Lp[j]] > 0)) return j + 1;
    }
    if (!P->X) {
        /* the solve's workspace, once: a solve of a zero right side */
        cholmod_dense B;
        memset(sv->work, 0, (size_t)n * sizeof(double));
        dense_header(&B, n, sv->work);
        if (!cholmod_solve2(CHOLMOD_A, P->L, &B, NULL, &P->X, NULL, &P->Y,
                            &P->E, &P->c)) {
            free_workspace(P);
            wbi_set_msg(sv, "CHOLMOD's solve failed (status %d%s)", P->c.status,
                        P->c.status == CHOLMOD_OUT_OF_MEMORY ? ": out of memory"
                                                             : "");
            return WB_ENOMEM;
        }
    }
    return 0;
}

/* x = (H + mu D)^-1 b = P' L'^-1 D^-1 L^-1 P b, column by column */
void wbi_sparse_solve(wb_solver *sv, int nrhs, double *B) {
    struct wbi_sparse *P = sv->sp;
    int n = sv->n;
    for (int c = 0; c < nrhs; c++) {
        double *b = B + (size_t)c * (size_t)n;
        cholmod_dense Bd;
        dense_header(&Bd, n, b);
        if (cholmod_solve2(CHOLMOD_A, P->L, &Bd, NULL, &P->X, NULL, &P->Y,
                           &P->E, &P->c)) {
            memcpy(b, P->X->x, (size_t)n * sizeof(double));
        } else {
            /* cannot happen on the workspace kept since the factor; a
               NaN result is caught by every caller's finiteness test */
            for (int i = 0; i < n; i++) b[i] = NAN;
        }
    }
}
