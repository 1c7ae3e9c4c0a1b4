#!/bin/sh
# Epoch time at the paper's MLP widths (3072-4000-1000-10, batch 500, one
# core): BackProp, exact ProxProp (wb_prox_step) and cg3 in both forms, on
# 2000 examples of the built-in mixture in 3072-D (CIFAR's shape; 4 batches
# per epoch). Interleaved: each repetition runs BackProp, exact, cg3 (batch
# form) in one process, then cg3 (primal form) in another; the load average
# is printed before and after.
# Usage: sh bench_widths.sh PATH/TO/proxprop [REPETITIONS (3)]
set -eu
bin=$1
reps=${2:-3}
common="--mix-dim 3072 --train 2000 --val 100 --test 0 --epochs 1 --batch 500
        --hidden 4000,1000 --tau 0.05"
echo "load before: $(cat /proc/loadavg)"
r=1
while [ "$r" -le "$reps" ]; do
    OPENBLAS_NUM_THREADS=1 "$bin" $common --lrs 0.05 --taus 0.05 --cg 3 |
        grep -E '^(backprop|proxprop) ' | sed "s/^/rep $r: /"
    OPENBLAS_NUM_THREADS=1 "$bin" $common --lrs none --taus none --cg 3 \
        --cg-form primal | grep -E '^proxprop ' | sed "s/^/rep $r: (primal) /"
    r=$((r + 1))
done
echo "load after:  $(cat /proc/loadavg)"
