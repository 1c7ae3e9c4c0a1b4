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
# CIFAR-10 binary files, generated: 1 label byte + 3072 pixel bytes per
# record, every pixel of a record (label*25 + 3)
record() {
    printf "\\$(printf '%03o' "$1")"
    head -c 3072 /dev/zero | tr '\0' "\\$(printf '%03o' $(($1 * 25 + 3)))"
}
k=0
while [ $k -lt 10 ]; do record $k >"$dir/rec$k"; k=$((k + 1)); done
cifar_file() { # FILE: 20 records, labels 0..9 twice
    cat "$dir"/rec[0-9] "$dir"/rec[0-9] >"$1"
}
mkdir "$dir/cifar"
for b in 1 2 3 4 5; do cifar_file "$dir/cifar/data_batch_$b.bin"; done
cifar_file "$dir/cifar/test_batch.bin"
# a file cut short, and a missing one, stop it before any training
cp -r "$dir/cifar" "$dir/short"
head -c 10000 "$dir/cifar/data_batch_2.bin" >"$dir/short/data_batch_2.bin"
expect cifar_short_file 1 \
    "short/data_batch_2.bin: 10000 bytes is not a whole, nonzero number of 3073-byte records" \
    --cifar "$dir/short"
rm "$dir/short/test_batch.bin"
cp "$dir/cifar/data_batch_2.bin" "$dir/short/"
expect cifar_missing_file 1 "short/test_batch.bin: cannot open" --cifar "$dir/short"
expect csv_and_cifar 2 "choose one data set" --cifar "$dir/cifar" --csv "$dir/small.csv"
# the ConvNet: data that is not the --image's shape, an image too small for
# its two poolings, and flags that are for the MLP
expect convnet_wrong_shape 1 \
    "--convnet: the data has 2 features; a 3 x 32 x 32 image (--image C,H,W) has 3072" \
    --convnet --csv "$dir/small.csv"
expect convnet_csv_too_wide 1 "at most 17 (the label and the 1 x 4 x 4 image of --image)" \
    --convnet --image 1,4,4 --csv "$dir/wide.csv"
expect convnet_tiny_image 1 "a 1 x 3 x 3 image, 10 classes, batch 100: need at least 1 channel, 4 x 4 pixels" \
    --convnet --image 1,3,3 --mix-dim 9
expect convnet_image_arity 2 "--image: '3,32' must be C,H,W" --convnet --image 3,32
expect image_without_convnet 2 "--image: only with --convnet" --image 3,32,32
expect convnet_taus 2 "the exact proximal step (--taus) is for the MLP" --convnet --taus 0.1
expect convnet_hidden 2 "--convnet: --hidden is for the MLP" --convnet --hidden 8
expect no_methods 2 "no runs" --lrs none --taus none --cg none
# and the data trains (the refusals are not everything): the small CSV file
# with three hidden layers and both optimizers, CIFAR's 90/10/20 split
check_trains() { # NAME ROW-PATTERN ARGS...
    name=$1 row=$2
    shift 2
    if ! OPENBLAS_NUM_THREADS=1 "$bin" "$@" --json "$dir/out.json" >"$dir/out" 2>&1 ||
            ! grep -q "$row" "$dir/out" ||
            ! grep -q '"test_accuracy": [0-9]' "$dir/out.json"; then
        echo "FAIL $name trains:"
        cat "$dir/out"
        fail=1
    else
        echo "ok   $name trains"
    fi
}
check_trains small_file '^proxprop adam cg1 tau=0.1 ' --csv "$dir/small.csv" \
    --test-frac 0.2 --epochs 1 --lrs 0.1 --adam-lrs 0.01 --taus 0.1 --cg 1 \
    --hidden 8,6,4 --optimizers nesterov,adam
check_trains cifar '^proxprop cg2 tau=0.1 ' --cifar "$dir/cifar" --epochs 1 \
    --batch 10 --lrs 0.1 --taus 0.1 --cg 2 --hidden 8,4
grep -q '90 train / 10 validation / 20 test examples, 3072 features' "$dir/out" || {
    echo "FAIL cifar split:"
    cat "$dir/out"
    fail=1
}
# the ConvNet on the generated CIFAR files (3 x 32 x 32), both optimizers,
# and on a CSV file of 1 x 4 x 4 images (labels 0..2)
check_trains cifar_convnet '^proxprop adam cg2 tau=0.1 ' --convnet --cifar "$dir/cifar" \
    --epochs 1 --batch 10 --lrs 0.1 --adam-lrs 0.001 --cg 2 --optimizers nesterov,adam
grep -q '"model": "convnet", "image": \[3, 32, 32\]' "$dir/out.json" || {
    echo "FAIL cifar_convnet json:"
    head -5 "$dir/out.json"
    fail=1
}
awk 'BEGIN { srand(3); for (i = 0; i < 60; i++) { printf "%d", i % 3;
    for (k = 0; k < 16; k++) printf ",%.3f", (k % 3 == i % 3) + rand(); printf "\n" } }' \
    >"$dir/img.csv"
check_trains csv_convnet '^proxprop cg1 tau=0.1 ' --convnet --image 1,4,4 --csv "$dir/img.csv" \
    --epochs 2 --batch 8 --lrs 0.1 --cg 1
exit $fail
