#!/bin/sh
# Builds libwiberg and runs the main example with its defaults.
# Usage: sh scripts/run-example.sh [example-flags ...]
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target robust_mean >/dev/null
OPENBLAS_NUM_THREADS=1 ./build/examples/robust_mean "$@"
