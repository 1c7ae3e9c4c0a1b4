/* proxprop: the CSV reader (see pp_data.h).
 *
 * Sizes are checked while the file is read, before anything is sized by
 * them: a line's fields are counted as its bytes arrive, and once it has more
 * than max_columns the rest of it is only counted (so a one-line file of 10^6
 * columns costs a few kilobytes, not 10^6 doubles per example reserved). The
 * arrays grow by doubling from one example, so memory stays proportional to
 * the text read.
 */
#include "pp_data.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void pp_csv_opts_default(pp_csv_opts *o) {
    memset(o, 0, sizeof *o);
    o->label_last = 0;
    o->max_columns = INT_MAX;
    o->max_columns_why = NULL;
    o->max_rows = PP_MAX_ROWS;
}

typedef struct {
    FILE *f;
    const char *name;
    const pp_csv_opts *o;
    char *err;
    size_t errlen;
    char *buf; /* [cap] the current line, NUL-terminated */
    size_t cap;
    long long lineno;
} reader;

static void *rd_realloc(const pp_csv_opts *o, void *p, size_t n) {
    return o->realloc_fn ? o->realloc_fn(o->alloc_ctx, p, n) : realloc(p, n);
}

static void rd_free(const pp_csv_opts *o, void *p) {
    if (!p) return;
    if (o && o->free_fn) o->free_fn(o->alloc_ctx, p);
    else free(p);
}

static int fail(reader *r, const char *fmt, ...) {
    if (r->err && r->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err, r->errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* One line, classified while it is read:
 *   returns 1 for a line, 0 at end of file, -1 out of memory;
 *   *fields = commas + 1 over the whole line (counted past max_columns, where
 *             nothing more is stored);
 *   *skip   = 1 for a blank line or a comment ('#' first after blanks; its
 *             bytes are not stored, so its width does not matter);
 *   *nul    = 1-based byte position of the first NUL, 0 for none.
 * The stored text (without '\n' and a final '\r') is NUL-terminated in
 * r->buf; the buffer doubles as needed (at most twice the stored length). */
static int read_line(reader *r, long long *fields, int *skip, long long *nul) {
    size_t len = 0;
    long long pos = 0, commas = 0;
    int ch, leading = 1, comment = 0, store = 1;
    *nul = 0;
    while ((ch = getc(r->f)) != EOF && ch != '\n') {
        pos++;
        if (ch == '\0' && *nul == 0) *nul = pos;
        if (leading && ch != ' ' && ch != '\t') {
            leading = 0;
            comment = ch == '#';
        }
        if (comment) continue;
        if (ch == ',' && ++commas >= r->o->max_columns) store = 0;
        if (!store) continue;
        if (len + 2 > r->cap) {
            size_t nc = r->cap ? 2 * r->cap : 256;
            char *nb = rd_realloc(r->o, r->buf, nc);
            if (!nb) return -1;
            r->buf = nb;
            r->cap = nc;
        }
        r->buf[len++] = (char)ch;
    }
    if (ch == EOF && pos == 0) return 0;
    if (!r->buf) { /* an empty line or a comment before anything was stored */
        r->buf = rd_realloc(r->o, NULL, 256);
        if (!r->buf) return -1;
        r->cap = 256;
    }
    if (len > 0 && r->buf[len - 1] == '\r') len--;
    r->buf[len] = '\0';
    *fields = commas + 1;
    *skip = comment;
    if (!comment && *nul == 0) {
        const char *s = r->buf; /* blank: nothing but ' ' and '\t' */
        while (*s == ' ' || *s == '\t') s++;
        *skip = *s == '\0';
    }
    return 1;
}

/* The field starting at c, up to 40 bytes, with control and non-ASCII bytes
   as \xNN, quoted for a message. */
static const char *show_field(const char *c, char *out, size_t outlen) {
    size_t k = 0;
    for (int w = 0; c[w] && c[w] != ',' && w < 40 && k + 5 < outlen; w++) {
        unsigned char u = (unsigned char)c[w];
        if (u >= 0x20 && u < 0x7f) out[k++] = (char)u;
        else k += (size_t)snprintf(out + k, outlen - k, "\\x%02x", u);
    }
    out[k] = '\0';
    return out;
}

int pp_csv_read(FILE *f, const char *name, const pp_csv_opts *opts,
                pp_data *out, char *err, size_t errlen) {
    pp_csv_opts defaults;
    if (!opts) {
        pp_csv_opts_default(&defaults);
        opts = &defaults;
    }
    reader r = {f, name, opts, err, errlen, NULL, 0, 0};
    if (err && errlen) err[0] = '\0';
    memset(out, 0, sizeof *out);
    int max_rows = opts->max_rows < PP_MAX_ROWS ? opts->max_rows : PP_MAX_ROWS;
    int fields = -1, n = 0, ncap = 0, maxlab = -1, rc = 0, got;
    double *X = NULL, *row = NULL;
    int *y = NULL;
    long long nf, nul;
    int skip;
    while ((got = read_line(&r, &nf, &skip, &nul)) == 1) {
        r.lineno++;
        if (nul) {
            rc = fail(&r, "%s:%lld: NUL byte at byte %lld of the line (not a "
                          "text file?)", name, r.lineno, nul);
            break;
        }
        if (skip) continue;
        if (nf > opts->max_columns) {
            rc = fail(&r, "%s:%lld: %lld columns; at most %d%s%s%s", name,
                      r.lineno, nf, opts->max_columns,
                      opts->max_columns_why ? " (" : "",
                      opts->max_columns_why ? opts->max_columns_why : "",
                      opts->max_columns_why ? ")" : "");
            break;
        }
        if (fields < 0) {
            if (nf < 2) {
                rc = fail(&r, "%s:%lld: need a label and at least one feature "
                              "(found %lld field)", name, r.lineno, nf);
                break;
            }
            fields = (int)nf;
            row = rd_realloc(opts, NULL, sizeof(double) * (size_t)fields);
            if (!row) {
                rc = fail(&r, "%s:%lld: out of memory for a line of %d fields",
                          name, r.lineno, fields);
                break;
            }
        } else if (nf != fields) {
            rc = fail(&r, "%s:%lld: expected %d comma-separated fields (as on "
                          "the first data line), found %lld",
                      name, r.lineno, fields, nf);
            break;
        }
        if (n == max_rows) {
            rc = fail(&r, "%s:%lld: more than %d examples", name, r.lineno,
                      max_rows);
            break;
        }
        const char *c = r.buf;
        for (int k = 0; k < fields; k++) {
            char *end;
            errno = 0;
            double v = strtod(c, &end);
            const char *e = end;
            while (*e == ' ' || *e == '\t') e++;
            if (end == c || (*e != ',' && *e != '\0') || !isfinite(v) ||
                errno == ERANGE) {
                char shown[256];
                rc = fail(&r, "%s:%lld: field %d ('%s') is not a finite number",
                          name, r.lineno, k + 1,
                          show_field(c, shown, sizeof shown));
                break;
            }
            row[k] = v;
            c = *e == ',' ? e + 1 : e;
        }
        if (rc) break;
        double lab = opts->label_last ? row[fields - 1] : row[0];
        if (!(lab >= 0 && lab <= PP_MAX_LABEL && lab == floor(lab))) {
            rc = fail(&r, "%s:%lld: label %g is not an integer in [0, %d]%s",
                      name, r.lineno, lab, PP_MAX_LABEL,
                      opts->label_last ? "" : " (use --label-last if the label "
                                              "is the last field)");
            break;
        }
        if (n == ncap) {
            /* doubling from one example: at most twice what is held */
            int nc = ncap ? (ncap <= max_rows / 2 ? 2 * ncap : max_rows) : 1;
            if ((size_t)nc > SIZE_MAX / sizeof(double) / (size_t)(fields - 1)) {
                rc = fail(&r, "%s:%lld: %d examples of %d features do not fit "
                              "in memory", name, r.lineno, nc, fields - 1);
                break;
            }
            double *nx = rd_realloc(opts, X, sizeof(double) * (size_t)nc *
                                                 (size_t)(fields - 1));
            if (nx) X = nx;
            int *ny = nx ? rd_realloc(opts, y, sizeof(int) * (size_t)nc) : NULL;
            if (ny) y = ny;
            if (!nx || !ny) {
                rc = fail(&r, "%s:%lld: out of memory after %d examples of %d "
                              "features", name, r.lineno, n, fields - 1);
                break;
            }
            ncap = nc;
        }
        memcpy(X + (size_t)n * (size_t)(fields - 1),
               row + (opts->label_last ? 0 : 1),
               sizeof(double) * (size_t)(fields - 1));
        y[n] = (int)lab;
        if (y[n] > maxlab) maxlab = y[n];
        n++;
    }
    if (!rc && got < 0)
        rc = fail(&r, "%s:%lld: out of memory reading a line", name,
                  r.lineno + 1);
    if (!rc && ferror(f))
        rc = fail(&r, "%s: read error: %s", name, strerror(errno));
    rd_free(opts, r.buf);
    rd_free(opts, row);
    if (!rc && n == 0) rc = fail(&r, "%s: no data lines", name);
    if (!rc && maxlab < 1)
        rc = fail(&r, "%s: all %d examples have label %d: need at least 2 "
                      "classes", name, n, maxlab);
    if (!rc && n < PP_MIN_ROWS)
        rc = fail(&r, "%s: only %d examples: need at least %d", name, n,
                  PP_MIN_ROWS);
    if (rc) {
        rd_free(opts, X);
        rd_free(opts, y);
        return -1;
    }
    out->n = n;
    out->d = fields - 1;
    out->classes = maxlab + 1;
    out->X = X;
    out->y = y;
    return 0;
}

int pp_csv_load(const char *path, const pp_csv_opts *o, pp_data *out,
                char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        memset(out, 0, sizeof *out);
        if (err && errlen)
            snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    int rc = pp_csv_read(f, path, o, out, err, errlen);
    fclose(f);
    return rc;
}

void pp_data_free(pp_data *D, const pp_csv_opts *o) {
    if (!D) return;
    rd_free(o, D->X);
    rd_free(o, D->y);
    memset(D, 0, sizeof *D);
}
