/*
 * libwiberg over MPI: data-parallel training across processes and machines.
 *
 * Built only with -DWIBERG_MPI=ON (the library without it is unchanged and
 * has none of these symbols). Include after <mpi.h> or on its own.
 *
 * A trainer given a communicator (wb_trainer_set_comm, or every trainer
 * created after wb_mpi_set_default_comm) runs each mini-batch across the
 * ranks of that communicator: every rank holds the whole state (w, the
 * optimizer, the example order), solves and differentiates its share of the
 * batch's examples with its own threads (settings.threads), and then every
 * rank receives every example's loss and gradient and sums them in batch
 * order, exactly as one process does. So w after any number of steps is
 * bit-identical for any number of ranks and threads, and equal to the run
 * of one process without MPI. The shares balance the sizes n of the
 * batch's examples: by default dynamically (WB_MPI_DYNAMIC: each rank,
 * when free, takes the next example, largest first, from a counter on
 * rank 0 -- MPI one-sided fetch-and-add -- and fetches its warm start
 * with MPI_Get from the rank that last solved it), or statically
 * (WB_MPI_STATIC: largest first onto the least-loaded rank by size n,
 * warm starts sent point to point). Which rank solves an example never
 * changes a result, only the time (wb_trainer_set_mpi_schedule).
 * Validation and wb_trainer_evaluate are shared out too (a block of the
 * examples per rank, then every loss to every rank).
 *
 * Collective calls: with a communicator set, wb_trainer_step, wb_train,
 * wb_trainer_evaluate, wb_trainer_save, wb_trainer_load,
 * wb_trainer_set_mpi_schedule, wb_trainer_set_comm again (on every rank of
 * the old communicator: it frees the old windows) and
 * wb_trainer_destroy must be called on every rank of the communicator, in
 * the same order, with the same arguments (the same data set and settings
 * on every rank: wb_trainer_set_comm checks the state agrees). Checkpoints:
 * rank 0 gathers the warm starts and writes the file (atomically, as
 * wb_trainer_save always does) and every rank returns rank 0's status;
 * wb_trainer_load reads the file on rank 0 and sends it to the others, so
 * only rank 0 needs to see the file, and a run saved with any number of
 * ranks resumes, bit for bit, with any other number.
 *
 * Faults: a rank that dies takes the job down (MPI's default error
 * handler, MPI_ERRORS_ARE_FATAL, which this layer keeps: mpirun reports the
 * rank and stops the others); restart from the last checkpoint.
 *
 * Waiting: a rank whose share is done waits for the others asleep (a
 * non-blocking collective polled with sleeps of up to 50 us; the dynamic
 * schedule's fetch-and-add and warm-start gets are request-based one-sided
 * calls polled the same way), not spinning as MPI's own waits do, so it leaves its core to the ranks and threads
 * still working (and to other people's work on a shared machine).
 *
 * Threads: the trainer calls MPI only from the thread that called it (its
 * worker threads never do): MPI_Init is enough when that is the main
 * thread, else initialize with MPI_THREAD_SERIALIZED or higher. Destroy
 * the trainers before MPI_Finalize.
 */
#ifndef WIBERG_MPI_H
#define WIBERG_MPI_H

#include <mpi.h>

#include "wiberg.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Runs trainer t across the ranks of comm (collective over comm: every
 *  rank calls it with its own trainer, created with the same data set and
 *  settings). The trainer keeps a duplicate of comm (MPI_Comm_dup), so its
 *  messages never mix with the program's. The trainers' states must agree
 *  (sizes, batch, steps, w, step, warm starts): WB_EINVAL on every rank
 *  when they do not, with the first difference in the message. Call it
 *  before the first step (or after a wb_trainer_load on every rank); a
 *  second call replaces the communicator. WB_EINVAL: t NULL, comm
 *  MPI_COMM_NULL or an inter-communicator, MPI not initialized (or already
 *  finalized); WB_ENOMEM. Non-zero ranks stop printing (settings.verbose
 *  is kept on rank 0 only). It also makes the dynamic schedule's MPI
 *  windows and selects WB_MPI_DYNAMIC; where the MPI library cannot make
 *  them, the trainer runs WB_MPI_STATIC and its message says why
 *  (wb_trainer_mpi_schedule tells which). */
WB_API wb_status wb_trainer_set_comm(wb_trainer *t, MPI_Comm comm);

/** Every trainer created after this call (on any thread) runs across comm,
 *  as if wb_trainer_set_comm(t, comm) were called inside
 *  wb_trainer_create; MPI_COMM_NULL stops that. For programs whose
 *  trainers are created deep inside (the examples): set it once after
 *  MPI_Init. The comm is not duplicated here (each trainer duplicates it
 *  at create); clear it (MPI_COMM_NULL) before MPI_Finalize. WB_EINVAL
 *  when MPI is not initialized, or comm is an inter-communicator. */
WB_API wb_status wb_mpi_set_default_comm(MPI_Comm comm);

/** How a distributed trainer shares a batch's examples out (the results
 *  are the same bit for bit; only the time differs). */
typedef enum wb_mpi_schedule {
    WB_MPI_DYNAMIC = 0, /* the default: each rank, when free, takes the next
                           example (largest n first) from a shared counter
                           (MPI one-sided: MPI_Win_allocate, fetch-and-add
                           under MPI_Win_lock_all) and MPI_Gets its warm
                           start from the rank that last solved it. Needs
                           MPI windows whose passive-target operations
                           progress while the target computes: shared
                           memory, or RDMA networks (Open MPI's osc ucx or
                           osc rdma); see docs/PERFORMANCE.md. Where the
                           windows cannot be created (Open MPI 4.1 over
                           btl tcp) the trainer runs WB_MPI_STATIC.        */
    WB_MPI_STATIC = 1   /* before each step, the slots by size n, largest
                           first, each onto the least-loaded rank (the
                           same on every rank, no one-sided calls); warm
                           starts sent point to point                      */
} wb_mpi_schedule;

/** Chooses how t's batches are shared out (collective over t's
 *  communicator: every rank, the same s). A trainer starts with
 *  WB_MPI_DYNAMIC where its windows could be created at
 *  wb_trainer_set_comm, else WB_MPI_STATIC. WB_EINVAL: t NULL, t without
 *  a communicator, s not a wb_mpi_schedule, the ranks asked for different
 *  schedules, or WB_MPI_DYNAMIC where the windows could not be created
 *  (the reason in the message; t keeps WB_MPI_STATIC). */
WB_API wb_status wb_trainer_set_mpi_schedule(wb_trainer *t, wb_mpi_schedule s);

/** The schedule t uses (*out). WB_EINVAL: t or out NULL, or t without a
 *  communicator. Not collective. */
WB_API wb_status wb_trainer_mpi_schedule(const wb_trainer *t, wb_mpi_schedule *out);

/** Where a distributed trainer's time went, on this rank, since create. */
typedef struct wb_mpi_times {
    int rank, ranks;        /* this rank, the communicator's size           */
    long long steps;        /* training steps taken since create            */
    long long examples;     /* training examples this rank solved           */
    double step_s;          /* wall time inside wb_trainer_step (and
                               wb_train), validation and saves included     */
    double solve_s;         /* wall time in wb_solve, summed over this rank's
                               threads (training, validation, evaluation)   */
    double adjoint_s;       /* wall time in the implicit adjoint, summed over
                               this rank's threads                          */
    double gather_s;        /* wall time in the steps' exchange of results
                               (every slot's loss and gradient to every
                               rank): the wait, asleep, for the slowest
                               rank's share, then the transfer              */
    double warm_s;          /* wall time waiting for warm starts sent by
                               other ranks (static: after this rank's
                               examples whose warm start was here;
                               dynamic: each fetch-and-add on the counter
                               and each MPI_Get of a warm start)            */
    double exchange_bytes;  /* bytes this rank received in those calls     */
} wb_mpi_times;

/** Copies this rank's times. WB_EINVAL when t or out is NULL or t has no
 *  communicator (wb_trainer_set_comm). Not collective. */
WB_API wb_status wb_trainer_mpi_times(const wb_trainer *t, wb_mpi_times *out);

#ifdef __cplusplus
}
#endif

#endif
