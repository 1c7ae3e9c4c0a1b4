#!/bin/sh
# Epoch time at the paper's MLP widths (3072-4000-1000-10, batch 500, one
# core) on 2000 examples of the built-in mixture in 3072-D (CIFAR's shape;
# 4 batches per epoch). Interleaved: each repetition runs BackProp and cg3
# (batch form) in one process, one after the other; with `all`, then cg3 in
# the primal form (the paper's code) and the exact step (wb_prox_step) once
# each. The load average is printed before and after. bench_pp_step times
# single steps, interleaved more finely.
# Usage: sh bench_widths.sh PATH/TO/proxprop [REPETITIONS (3)] [all]
set -eu
bin=$1
reps=${2:-3}
common="--mix-dim 3072 --train 2000 --val 100 --test 0 --epochs 1 --batch 500
        --hidden 4000,1000 --tau 0.05 --lrs none --taus none --cg none"
run() { # LABEL ARGS...
    label=$1
    shift
    OPENBLAS_NUM_THREADS=1 "$bin" $common "$@" | grep -E '^(backprop|proxprop) ' |
        sed "s/^/$label /"
}
echo "load before: $(cat /proc/loadavg)"
r=1
while [ "$r" -le "$reps" ]; do
    run "rep $r:" --lrs 0.05 --cg 3
    r=$((r + 1))
done
if [ "${3:-}" = all ]; then
    run "primal:" --cg 3 --cg-form primal
    run "exact: " --taus 0.05
fi
echo "load after:  $(cat /proc/loadavg)"
