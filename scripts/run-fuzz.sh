#!/bin/sh
# Builds the libFuzzer targets with clang, ASan and UBSan, and runs each for
# N seconds (default 60) on its seed corpus tests/fuzz/corpus/<name>/:
#   fuzz_checkpoint  wb_trainer_load on arbitrary bytes  (tests/fuzz/)
#   fuzz_csv         the tracker_fusion CSV reader       (examples/tracker_fusion/)
# New inputs go to a scratch corpus under the build directory, so the
# committed seeds stay as they are; a crash leaves its input as crash-* in
# the build directory and fails the script.
# Usage: sh scripts/run-fuzz.sh [seconds] [build-dir]   (default: 60 build-fuzz)
set -eu
cd "$(dirname "$0")/.."
case "${1:-}" in -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0;; esac
secs=${1:-60}
dir=${2:-build-fuzz}
sh scripts/deps.sh clang libclang-rt-14-dev
CC=${CC:-clang} cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug \
    -DWIBERG_BUILD_FUZZ=ON -DWIBERG_SANITIZE=ON -DWIBERG_BUILD_TESTS=ON \
    -DWIBERG_BUILD_EXAMPLES=ON >/dev/null
# name, binary (relative to the build directory)
targets="checkpoint:tests/fuzz/fuzz_checkpoint csv:examples/tracker_fusion/fuzz_csv"
cmake --build "$dir" -j"$(nproc)" --target fuzz_checkpoint fuzz_csv
# the targets write their input to $TMPDIR: memory, not disk (and fsync)
if [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
export ASAN_OPTIONS=detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
fail=0
for t in $targets; do
    name=${t%%:*}
    bin=$dir/${t#*:}
    seeds=tests/fuzz/corpus/$name
    work=$dir/corpus-$name
    mkdir -p "$work"
    echo "fuzz: $name for $secs s (seeds: $seeds)"
    if "$bin" -max_total_time="$secs" -print_final_stats=1 \
            -artifact_prefix="$dir/" "$work" "$seeds" >"$dir/fuzz-$name.log" 2>&1; then
        echo "fuzz: $name clean: $(grep -E '^Done|stat::number_of_executed_units' "$dir/fuzz-$name.log" | tr '\n' ' ')"
    else
        echo "fuzz: $name FAILED, see $dir/fuzz-$name.log"
        tail -40 "$dir/fuzz-$name.log"
        fail=1
    fi
done
exit $fail
