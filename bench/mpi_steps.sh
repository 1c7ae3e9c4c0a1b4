#!/bin/sh
# Time per training step, and its parts, of the MPI trainer on tracker-fusion
# data for 1, 2 and 4 ranks, one thread per rank, each schedule (static,
# dynamic), interleaved (1 static, 1 dynamic, 2 static, ..., then again),
# with the load average before and after (docs/PERFORMANCE.md).
#
# Usage: sh bench/mpi_steps.sh BUILD-DIR TRACKS.csv TRUTH.csv [REPS] [EPOCHS] [BATCH] [SCHEDULES]
#   BUILD-DIR: configured with -DWIBERG_MPI=ON and built (target mpi_train)
#   TRACKS.csv, TRUTH.csv: uncompressed (e.g. the OTB-100 files, gzip -dc)
#   SCHEDULES: "static dynamic" (default), or one of them
set -eu
case "${1:-}" in -h|--help|"") sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0;; esac
build=$1 tracks=$2 truth=$3 reps=${4:-3} epochs=${5:-1} batch=${6:-8}
schedules=${7:-static dynamic}
prog=$build/tests/mpi/mpi_train
flags="--oversubscribe --mca btl self,vader"
[ "$(id -u)" = 0 ] && flags="$flags --allow-run-as-root"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); $(getconf _NPROCESSORS_ONLN) cores"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
for rep in $(seq 1 "$reps"); do
    for np in 1 2 4; do
    for sched in $schedules; do
        # shellcheck disable=SC2086
        out=$(mpirun -np "$np" $flags --bind-to none "$prog" --tracks "$tracks" \
              --truth "$truth" --epochs "$epochs" --batch "$batch" --threads 1 --times \
              --schedule "$sched")
        per=$(echo "$out" | sed -n 's/.*wall .* s, \([0-9.]*\) ms per step/\1/p')
        cpu=$(echo "$out" | sed -n "s/.*ranks: \([0-9.]*\) \/.*/\1/p")
        echo "rep $rep ranks $np $sched: $per ms per step, max cpu $cpu ms per step  (load $(cut -d' ' -f1 /proc/loadavg))"
        echo "$out" | sed -n '/^times/,/^  cpu of/p' | sed 's/^/    /'
        echo "$out" | grep '^w:' | sed 's/^/    /'
    done
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
