#!/bin/sh
# proxprop stops before any training, with the reason, when its data or its
# hidden widths exceed what wb_prox_create takes (issue 11, item 9).
# Usage: sh test_refusals.sh PATH/TO/proxprop
set -u
bin=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail=0
# expect NAME STATUS TEXT ARGS...: exit status STATUS, TEXT in stderr, no
# training (no method row on stdout)
expect() {
    name=$1 want=$2 text=$3
    shift 3
    OPENBLAS_NUM_THREADS=1 "$bin" "$@" >"$dir/out" 2>"$dir/err"
    rc=$?
    if [ "$rc" != "$want" ] || ! grep -qF -- "$text" "$dir/err" ||
            grep -q '^\(backprop\|proxprop\) ' "$dir/out"; then
        echo "FAIL $name: exit $rc (want $want), stderr:"
        cat "$dir/err"
        echo "stdout:"
        cat "$dir/out"
        fail=1
    else
        echo "ok   $name: $(cat "$dir/err")"
    fi
}
# 12 examples, 2 features, 2 classes
i=0
while [ $i -lt 12 ]; do echo "$((i % 2)),$i,$((i * i))"; i=$((i + 1)); done >"$dir/small.csv"
# one line of 10^6 columns (2 MB): 46340 = floor(sqrt(2^31 - 1)), the
# widest first layer wb_prox_create takes ((n_in + 1)^2 must fit in an int)
awk 'BEGIN { printf "1"; for (k = 1; k < 1000000; k++) printf ",0"; printf "\n" }' >"$dir/wide.csv"
expect wide_file 1 \
    "wide.csv:1: 1000000 columns; at most 46340 (the label and 46339 features: the most a first hidden layer of 256 units takes)" \
    --csv "$dir/wide.csv" --epochs 1
# with 30000 hidden units, 30000 (n_in + 1) <= 2^31 - 1 gives n_in <= 71581:
# the square still binds; with 100000, n_in + 1 <= 21474
expect wide_file_h100000 1 "1000000 columns; at most 21474" \
    --csv "$dir/wide.csv" --epochs 1 --hidden 100000,10
# the second hidden layer takes 50000 inputs: (50001)^2 > 2^31 - 1. The old
# program ran every BackProp training first, then failed with
# "wb_prox_create: invalid argument"
expect hidden_50000 1 \
    "proxprop exact tau=0.01 cannot run: layer 2 (50000 -> 10): wb_prox_create: n_out = 10, n_in = 50000" \
    --csv "$dir/small.csv" --epochs 1 --hidden 50000,10
# a NUL byte, named with its line
printf '0,1,2\n1,2\0,3\n' >"$dir/nul.csv"
expect nul_byte 1 "nul.csv:2: NUL byte at byte 4 of the line" --csv "$dir/nul.csv"
# and the small file trains (the refusals are not everything)
if ! OPENBLAS_NUM_THREADS=1 "$bin" --csv "$dir/small.csv" --epochs 1 \
        --lrs 0.1 --taus 0.1 --cg 1 --hidden 8,4 >"$dir/out" 2>&1 ||
        ! grep -q '^proxprop cg1 tau=0.1 ' "$dir/out"; then
    echo "FAIL small_file trains:"
    cat "$dir/out"
    fail=1
fi
exit $fail
