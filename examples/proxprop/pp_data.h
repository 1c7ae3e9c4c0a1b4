/* proxprop: the data set and its CSV reader (pp_data.c), apart from the
 * network so that the tests and a libFuzzer target can link the reader. */
#ifndef PP_DATA_H
#define PP_DATA_H

#include <stddef.h>
#include <stdio.h>

typedef struct {
    int n, d, classes;
    double *X; /* [d*n]: example j is X + j*d */
    int *y;    /* [n] labels in [0, classes) */
} pp_data;

/* Labels are integers in [0, PP_MAX_LABEL]. */
#define PP_MAX_LABEL 999
/* A data set needs at least this many examples (a split keeps one of each). */
#define PP_MIN_ROWS 10
/* The default (and largest) max_rows: the training loops step through the
   examples with int indices (j0 + batch must not overflow). */
#define PP_MAX_ROWS (1 << 30)

typedef struct {
    int label_last;  /* 1: the label is the last field (default 0: first)  */
    /* A data line may have at most max_columns fields, label included
       (>= 2; default 2^31 - 1, i.e. only int's limit). The caller sets it
       from what its network can take; max_columns_why (may be NULL) is
       appended to the message that refuses a wider line. */
    int max_columns;
    const char *max_columns_why;
    int max_rows;    /* at most this many examples (default and largest:
                        PP_MAX_ROWS)                                         */
    /* Optional allocator, both or neither (default NULL: realloc / free).
       Everything the reader allocates goes through it, and so does
       pp_data_free: the tests count the bytes. */
    void *(*realloc_fn)(void *ctx, void *ptr, size_t size);
    void (*free_fn)(void *ctx, void *ptr);
    void *alloc_ctx;
} pp_csv_opts;

/* Fills every field with its default. */
void pp_csv_opts_default(pp_csv_opts *o);

/* Reads "label,f1,...,fd" lines (the label last with label_last) from f;
 * name is the file name for the messages. Blank lines and lines whose first
 * non-blank character is '#' are skipped; a final '\r' is dropped. Returns 0
 * and fills *out (free with pp_data_free), or -1 with out zeroed and
 * "NAME:LINE: reason" in err[errlen] (err may be NULL): a line wider than
 * max_columns (found while reading it: it is counted, never stored), a line
 * whose field count differs from the first data line's, a field that is not
 * a finite number, a label that is not an integer in [0, PP_MAX_LABEL], a
 * NUL byte anywhere, more than max_rows examples, fewer than PP_MIN_ROWS,
 * a single class, no data, a read error or no memory.
 *
 * Memory: the doubles of the data (8 bytes per field of at least 2 bytes of
 * text, times at most 2 while the array grows), the labels, and the longest
 * line twice over: at most about 12 bytes per byte of the file plus a few
 * kilobytes, whatever the shape of the file. */
int pp_csv_read(FILE *f, const char *name, const pp_csv_opts *o, pp_data *out,
                char *err, size_t errlen);

/* pp_csv_read on the file at path (its name in the messages). */
int pp_csv_load(const char *path, const pp_csv_opts *o, pp_data *out,
                char *err, size_t errlen);

/* Frees what pp_csv_read allocated (o: the same options, or NULL when they
   had no allocator). NULL-safe; zeroes *D. */
void pp_data_free(pp_data *D, const pp_csv_opts *o);

#endif
