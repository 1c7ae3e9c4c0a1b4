#!/bin/sh
# The MPI trainer against one process, bit for bit (ctest
# test_mpi_ranks_and_resume):
#   1. mpi_train --local (no communicator) gives the reference w;
#   2. 1, 2 and 4 ranks (4 oversubscribe a 2-core machine) give it exactly;
#   3. a 2-rank run checkpointing every step has its rank 1 killed (SIGKILL)
#      mid-run: the job must stop with an error, and a restart on 3 ranks
#      from the checkpoint must end at the reference w, best w and solve
#      count.
# Usage: mpi_ranks.sh MPIRUN "MPIRUN-FLAGS" MPI_TRAIN WORKDIR
set -u
mpirun=$1 flags=$2 prog=$3 dir=$4
rm -rf "$dir" && mkdir -p "$dir" || exit 1
# batch 10: several slots per rank, so a rank's results travel in a block whose
# slot order matters (a block packed out of order passed with batch 5)
data="--sequences 24 --frames 60:200 --epochs 4 --batch 10 --seed 2"
fail() { echo "FAIL: $*"; exit 1; }
# shellcheck disable=SC2086
run() { np=$1; shift; "$mpirun" -np "$np" $flags "$prog" $data "$@"; }

run 1 --local --w-out "$dir/ref.txt" >"$dir/ref.log" 2>&1 || { cat "$dir/ref.log"; fail "reference run"; }
for np in 1 2 4; do
    run "$np" --w-out "$dir/w$np.txt" >"$dir/w$np.log" 2>&1 || { cat "$dir/w$np.log"; fail "$np ranks"; }
    cmp -s "$dir/ref.txt" "$dir/w$np.txt" || { diff "$dir/ref.txt" "$dir/w$np.txt"; fail "$np ranks: w differs from one process"; }
    echo "ok: $np ranks give the single-process w bit for bit"
done

# kill rank 1 of a running 2-rank job after its first checkpoints
run 2 --checkpoint "$dir/run.ck" --every 1 --step-delay 200 --pid-file "$dir/pid" \
    >"$dir/killed.log" 2>&1 &
job=$!
i=0
while [ ! -s "$dir/pid.1" ] || [ ! -f "$dir/run.ck" ]; do
    i=$((i + 1)); [ $i -gt 600 ] && { kill "$job"; fail "no checkpoint after 60 s"; }
    sleep 0.1
done
sleep 0.5
kill -9 "$(cat "$dir/pid.1")" || fail "could not kill rank 1"
wait "$job"
rc=$?
[ $rc -ne 0 ] || { cat "$dir/killed.log"; fail "the job went on after a rank died (exit 0)"; }
grep -q "^w:" "$dir/killed.log" && fail "the killed job finished its run: no mid-run kill"
echo "ok: killing rank 1 took the job down (exit $rc)"
run 3 --checkpoint "$dir/run.ck" --resume --w-out "$dir/resumed.txt" >"$dir/resumed.log" 2>&1 ||
    { cat "$dir/resumed.log"; fail "resume on 3 ranks"; }
steps=$(sed -n 's/.*steps (\([0-9]*\) here).*/\1/p' "$dir/resumed.log")
cmp -s "$dir/ref.txt" "$dir/resumed.txt" || { diff "$dir/ref.txt" "$dir/resumed.txt"; fail "resumed w differs"; }
echo "ok: resumed on 3 ranks ($steps steps after the checkpoint): the uninterrupted w bit for bit"
rm -rf "$dir"
exit 0
