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
 * batch's examples (largest first onto the least-loaded rank); the
 * warm start of an example is sent from the rank that last solved it to
 * the rank that solves it next (point to point, only when it moved).
 * Validation and wb_trainer_evaluate are shared out too (a block of the
 * examples per rank, then every loss to every rank).
 *
 * Collective calls: with a communicator set, wb_trainer_step, wb_train,
 * wb_trainer_evaluate, wb_trainer_save, wb_trainer_load and
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
 * non-blocking collective polled with sleeps of up to 50 us), not spinning
 * as MPI's own waits do, so it leaves its core to the ranks and threads
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
 *  is kept on rank 0 only). */
WB_API wb_status wb_trainer_set_comm(wb_trainer *t, MPI_Comm comm);

/** Every trainer created after this call (on any thread) runs across comm,
 *  as if wb_trainer_set_comm(t, comm) were called inside
 *  wb_trainer_create; MPI_COMM_NULL stops that. For programs whose
 *  trainers are created deep inside (the examples): set it once after
 *  MPI_Init. The comm is not duplicated here (each trainer duplicates it
 *  at create); clear it (MPI_COMM_NULL) before MPI_Finalize. WB_EINVAL
 *  when MPI is not initialized, or comm is an inter-communicator. */
WB_API wb_status wb_mpi_set_default_comm(MPI_Comm comm);

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
                               other ranks (after this rank's examples
                               whose warm start was here)                   */
    double exchange_bytes;  /* bytes this rank received in those calls     */
} wb_mpi_times;

/** Copies this rank's times. WB_EINVAL when t or out is NULL or t has no
 *  communicator (wb_trainer_set_comm). Not collective. */
WB_API wb_status wb_trainer_mpi_times(const wb_trainer *t, wb_mpi_times *out);

#ifdef __cplusplus
}
#endif

#endif
