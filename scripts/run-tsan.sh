#!/bin/sh
# Builds the threaded tests with clang under ThreadSanitizer and runs them:
# one object shared by two threads (WB_EBUSY, never a wrong result),
# concurrent solvers on separate objects, and the trainer's own POSIX worker
# threads (condition variables; TSan understands them directly).
# Usage: sh scripts/run-tsan.sh [build-dir]   (default: build-tsan)
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh clang
dir=${1:-build-tsan}
CC=clang cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DWIBERG_TSAN=ON \
      -DWIBERG_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$dir" -j"$(nproc)" --target test_threads test_train
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=2
export TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp halt_on_error=1 exitcode=66"
"$dir/tests/test_threads"
"$dir/tests/test_train"
echo "TSan: shared objects, concurrent solvers and the 2-thread trainer are race-free"
