#!/bin/sh
# Builds libwiberg with its tests and runs them all with ctest.
# Usage: sh scripts/run-tests.sh [build-dir]   (default: build)
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
# OpenBLAS chooses its kernels by CPU and falls back to generic (Prescott)
# ones on a CPU it does not know; their rounding changes solver paths and the
# suite's counts and digits (README, "Tests"). Where the CPU has AVX2 the
# suite runs on OpenBLAS's Haswell kernels, so its figures are the same on
# every such machine (test_nist_generic_blas runs NIST on the generic ones
# too); set OPENBLAS_CORETYPE yourself to choose others.
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -qw avx2 /proc/cpuinfo 2>/dev/null; then
    export OPENBLAS_CORETYPE=Haswell
fi
dir=${1:-build}
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWIBERG_BUILD_TESTS=ON
cmake --build "$dir" -j"$(nproc)"
cd "$dir"
ctest --output-on-failure -j2
