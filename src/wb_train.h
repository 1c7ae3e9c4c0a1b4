/* Internal declarations of the training loop (train.c, optim.c). */
#ifndef WB_TRAIN_H
#define WB_TRAIN_H

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#include <stdint.h>

#include "wb_internal.h"

struct wbi_pool; /* the worker threads (train.c) */
struct wbi_mpi;  /* the ranks of a distributed trainer (train_mpi.c) */

struct wb_trainer {
    wb_train_settings s;   /* copy; pointers below are the trainer's own */
    wb_dataset d;
    wb_dataset val;
    int has_val;
    int p, count, n_max;
    int *n_of;             /* [count] n of each example                */
    size_t *off;           /* [count] offset of its warm start in xs   */
    size_t total_n;
    double *xs;            /* [total_n] warm starts                    */
    unsigned char *has_x;  /* [count] xs valid                         */
    double *w, *m, *r, *best_w, *g, *lower, *upper; /* [p] each        */
                           /* m, r: momentum / Adam moments, r = sqrt(v) */
    double *w1, *m1, *r1;  /* [p] each: a step's new state, committed only
                              when finite                               */
    int *perm0;            /* [count] the order before a step's shuffle  */
    double *gbuf;          /* [batch*p] per-example gradients          */
    double *lbuf;          /* [batch] per-example losses               */
    int *okbuf;            /* [batch]                                  */
    double *vloss;         /* [val.count] validation losses            */
    int *perm;             /* [count] order of the current epoch       */
    int batch, nthreads;
    long long step, total_steps, steps_per_epoch;
    int epoch, pos;
    uint64_t rng;
    wb_solver **solvers;   /* [nthreads]                               */
    double **xw, **xw2, **dlx, **wtmp; /* per thread: [n_max] x3, [p]  */
    long long *solves;     /* [nthreads] inner solves                  */
    double epoch_loss_sum;
    int epoch_used;
    long long examples_done; /* training examples processed (this process) */
    wb_train_info info;
    char *ckpt_path;
    double *weval;         /* [p] wb_trainer_evaluate's copy of its w  */
    struct wbi_pool *pool; /* the nthreads - 1 worker threads (NULL: none;
                              train.c)                                  */
    wbi_guard busy;        /* 1 while a public call runs (WB_EBUSY)    */
    struct wbi_mpi *mpi;   /* the communicator and its scratch (NULL: this
                              process alone; train_mpi.c)               */
    long long solves_other; /* inner solves of the other ranks, as of the
                              last exchange (0 without MPI)             */
    double *tsec;          /* [2 * nthreads] seconds in wb_solve and in the
                              adjoint per thread, or NULL: not timed    */
    char msg[WBI_MSG_LEN];
};

/* The trainer's message (wb_trainer_message). */
void wbi_tmsg(wb_trainer *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* The in-use flag: every public call on a trainer takes it first and
   gives it back when it returns; a call that finds it taken (another
   thread's call, or a callback re-entering) fails with WB_EBUSY and says
   so in wb_last_error() (t->msg belongs to the running call). enter
   returns 1 when taken, else 0 (error recorded for fn). */
int wbi_trainer_enter(const wb_trainer *t, const char *fn);
void wbi_trainer_leave(const wb_trainer *t);
/* wb_trainer_save without the flag (the step's automatic checkpoint). */
wb_status wbi_trainer_save(wb_trainer *t, const char *path);
/* The inner-solve count saturates here: a checkpoint holds at most this, so
   whatever a loaded count becomes after more solves still saves and loads. */
#define WBI_SOLVES_MAX ((long long)1 << 62)

/* Inner solves so far, over all threads (at most WBI_SOLVES_MAX). */
long long wbi_trainer_solves(const wb_trainer *t);

/* The distributed trainer's entry points into train.c: run the batch's
   slots slots[0..count-1] (results into gbuf, lbuf, okbuf at those slots),
   or the examples first .. first+count-1 of d at w (losses[i] for each). */
void wbi_trainer_run_slots(wb_trainer *t, const int *slots, int count);
void wbi_trainer_run_eval(wb_trainer *t, const wb_dataset *d, const double *w,
                          double *losses, int first, int count);
/* the same for the examples idx[0..count-1] of d (the dynamic schedule) */
void wbi_trainer_run_eval_list(wb_trainer *t, const wb_dataset *d,
                               const double *w, double *losses,
                               const int *idx, int count);
/* checkpoint.c without the ranks: save to path from this process; the
   size of the load buffer for this trainer (the file, one byte more, and
   scratch); read path into buf[wbi_ckpt_bufsize] (*got bytes); check and
   commit an image read that way. */
wb_status wbi_trainer_save_file(wb_trainer *t, const char *path);
size_t wbi_ckpt_bufsize(const wb_trainer *t);
wb_status wbi_ckpt_read(wb_trainer *t, const char *path, unsigned char *buf,
                        size_t *got);
wb_status wbi_ckpt_apply(wb_trainer *t, unsigned char *buf, size_t got,
                         const char *path);

#ifdef WIBERG_MPI
/* train_mpi.c: the hooks train.c and checkpoint.c call when t->mpi is set
   (attach: at create, the process-wide default communicator, if any) */
wb_status wbi_mpi_attach_default(wb_trainer *t);
void wbi_mpi_free(wb_trainer *t);
void wbi_mpi_batch(wb_trainer *t, int nb);
void wbi_mpi_eval(wb_trainer *t, const wb_dataset *d, const double *w,
                  double *losses);
wb_status wbi_mpi_save(wb_trainer *t, const char *path);
wb_status wbi_mpi_load(wb_trainer *t, const char *path);
#endif

double wbi_lr_at(const wb_train_settings *s, long long step, long long total);
/* The optimizer's update of (w, m, r)[p] into (w1, m1, r1)[p] (see
   optim.c); the caller checks the new state and commits it. */
void wbi_optim_step(const wb_train_settings *s, int p, long long t, double lr,
                    const double *g, const double *w, const double *m,
                    const double *r, double *w1, double *m1, double *r1);
void wbi_project(int p, double *w, const double *lo, const double *hi);

#endif
