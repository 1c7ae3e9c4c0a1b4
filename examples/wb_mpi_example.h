/* The examples across MPI ranks (built with -DWIBERG_MPI=ON; header-only).
 *
 *   mpirun -np 4 tracker_fusion --tracks ... --truth ...
 *
 * wbx_mpi_begin initializes MPI, makes every trainer the program creates
 * afterwards run across MPI_COMM_WORLD (wb_mpi_set_default_comm), and
 * silences every rank but 0 (its stdout and stderr go to /dev/null, its
 * output files are dropped): all ranks compute the same results, rank 0
 * prints and writes them. MPI is finalized at exit. wbx_mpi_json_ranks
 * records "ranks": N in a JSON file rank 0 wrote.
 */
#ifndef WB_MPI_EXAMPLE_H
#define WB_MPI_EXAMPLE_H
#ifdef WIBERG_MPI

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>
#include <wiberg_mpi.h>

static void wbx_mpi_end(void) {
    int fin = 0;
    MPI_Finalized(&fin);
    if (fin) return;
    wb_mpi_set_default_comm(MPI_COMM_NULL);
    MPI_Finalize();
}

/* Call after the options are parsed; out[0..nout-1] point at the
   program's output paths (set to NULL on ranks other than 0). Returns this
   rank, or -1 (message printed) when MPI cannot be used. */
static int wbx_mpi_begin(int *argc, char ***argv, const char **out[], int nout) {
    int provided = 0, rank = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "MPI_Init failed\n");
        return -1;
    }
    atexit(wbx_mpi_end);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (wb_mpi_set_default_comm(MPI_COMM_WORLD) != WB_OK) {
        fprintf(stderr, "%s\n", wb_last_error());
        return -1;
    }
    if (rank != 0) {
        for (int k = 0; k < nout; k++) *out[k] = NULL;
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
            return -1;
    }
    return rank;
}

/* Inserts "ranks": N after the first '{' of the JSON file path (rank 0;
   others do nothing). 0 ok, -1 cannot read or write it. */
static int wbx_mpi_json_ranks(const char *path) {
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (rank != 0 || !path) return 0;
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    char *buf = NULL;
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0) len = ftell(f);
    if (len >= 0 && fseek(f, 0, SEEK_SET) == 0) buf = malloc((size_t)len + 1);
    size_t got = buf ? fread(buf, 1, (size_t)len, f) : 0;
    fclose(f);
    char *brace = buf && got == (size_t)len ? memchr(buf, '{', got) : NULL;
    if (!brace) {
        free(buf);
        return -1;
    }
    size_t head = (size_t)(brace - buf) + 1;
    f = fopen(path, "wb");
    int bad = !f;
    if (f) {
        bad |= fwrite(buf, 1, head, f) != head;
        bad |= fprintf(f, "\n  \"ranks\": %d,", size) < 0;
        bad |= fwrite(buf + head, 1, got - head, f) != got - head;
        bad |= fclose(f) != 0;
    }
    free(buf);
    return bad ? -1 : 0;
}

#endif
#endif
