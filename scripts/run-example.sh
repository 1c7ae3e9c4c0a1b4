#!/bin/sh
# Builds libwiberg and runs the main example, tracker_fusion, with its
# defaults (flags are passed on: --help lists them).
# Usage: sh scripts/run-example.sh [example-flags ...]
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target tracker_fusion >/dev/null
# one BLAS thread: the trainer already runs one solver per core
OPENBLAS_NUM_THREADS=1 ./build/examples/tracker_fusion/tracker_fusion "$@"
