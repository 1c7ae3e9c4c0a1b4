#!/bin/sh
# The binary on real-format files: the synthetic frames written with
# --write-csv and read back with --data give the same errors, per action and
# overall, as the synthetic run (the reader sorts the frames into the
# generator's order, so every number but the timings is identical).
# Usage: test_pose_csv_run.sh POSE_BINARY WORK_DIR
set -eu
pose=$1
dir=$2
rm -rf "$dir"
mkdir -p "$dir/csv"
flags="--train-subjects 2 --frames 4 --epochs 2 --starts 2"
"$pose" $flags --write-csv "$dir/csv" --json "$dir/synthetic.json" >/dev/null
"$pose" $flags --data "$dir/csv" --json "$dir/read.json" >/dev/null
# drop the timings, then compare
strip() { sed -e 's/"[a-z_]*seconds": [^,}]*//g' "$1"; }
strip "$dir/synthetic.json" >"$dir/a"
strip "$dir/read.json" >"$dir/b"
if ! cmp -s "$dir/a" "$dir/b"; then
    echo "the run on the CSV files differs from the synthetic run:"
    diff "$dir/a" "$dir/b" | head -20
    exit 1
fi
grep -q '"per_action": \[{"action": "Walking"' "$dir/b"
# a malformed file stops the run with file:line
echo "camera,fx" >"$dir/csv/cameras.csv"
if "$pose" --data "$dir/csv" >/dev/null 2>"$dir/err"; then
    echo "a malformed cameras.csv was accepted"
    exit 1
fi
grep -q "cameras.csv:1: the header must be" "$dir/err"
echo "pose --data reproduces the synthetic run; a bad file is refused with file:line"
