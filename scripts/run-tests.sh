#!/bin/sh
# Builds libwiberg with its tests and runs them all with ctest.
# Usage: sh scripts/run-tests.sh [build-dir]   (default: build)
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
dir=${1:-build}
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWIBERG_BUILD_TESTS=ON
cmake --build "$dir" -j"$(nproc)"
cd "$dir"
ctest --output-on-failure -j2
