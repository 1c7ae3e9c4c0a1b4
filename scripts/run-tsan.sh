#!/bin/sh
# Builds the threaded tests with clang + LLVM OpenMP under ThreadSanitizer and
# runs them with Archer, the OpenMP tool that tells TSan about OpenMP's
# barriers (without it every parallel region reports false races).
# Usage: sh scripts/run-tsan.sh [build-dir]   (default: build-tsan)
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh clang libomp-14-dev
dir=${1:-build-tsan}
CC=clang cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DWIBERG_TSAN=ON \
      -DWIBERG_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$dir" -j"$(nproc)" --target test_threads test_train
archer=/usr/lib/llvm-14/lib/libarcher.so
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=2 OMP_TOOL_LIBRARIES="$archer"
export TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp halt_on_error=1 exitcode=66"
"$dir/tests/test_threads"
"$dir/tests/test_train"
echo "TSan: concurrent solvers and the 2-thread trainer are race-free"
