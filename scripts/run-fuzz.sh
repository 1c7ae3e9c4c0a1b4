#!/bin/sh
# Builds the libFuzzer targets with clang, ASan and UBSan, and for each one
# replays its whole corpus tests/fuzz/corpus/<name>/ (the seeds, and the
# crash-* inputs kept there as regression inputs), then fuzzes it for N
# seconds (default 60; CI gives 300):
#   checkpoint    wb_trainer_load on arbitrary bytes  (tests/fuzz/fuzz_checkpoint)
#   csv           the tracker_fusion CSV reader       (examples/tracker_fusion/fuzz_csv)
#   proxprop_csv  the proxprop CSV reader             (tests/fuzz/fuzz_proxprop_csv)
# New inputs go to a scratch corpus under the build directory, so the
# committed seeds stay as they are. A crash, leak, timeout or out-of-memory
# fails the script with the input's path; an input found while fuzzing is
# also copied to tests/fuzz/corpus/<name>/crash-<sha1> (commit it with the
# fix: it is replayed on every later run) and printed in base64 for CI logs.
# Usage: sh scripts/run-fuzz.sh [seconds] [build-dir] [name ...]
#        (defaults: 60 build-fuzz, every target)
set -eu
cd "$(dirname "$0")/.."
case "${1:-}" in -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0;; esac
secs=${1:-60}
dir=${2:-build-fuzz}
only=""
if [ $# -gt 2 ]; then shift 2; only="$*"; fi

# clang and its libFuzzer runtime (the versionless package follows Debian's
# default clang); the build uses clang whatever CC says
sh scripts/deps.sh clang libclang-rt-dev
cc=${FUZZ_CC:-clang}
mkdir -p "$dir"
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);\n%s\n' \
    'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; return (int)(n & 0); }' \
    >"$dir/probe.c"
if ! "$cc" -fsanitize=fuzzer,address,undefined "$dir/probe.c" -o "$dir/probe" 2>"$dir/probe.log"; then
    echo "fuzz: $cc cannot build a libFuzzer target:"
    cat "$dir/probe.log"
    exit 1
fi
# a build directory configured with another compiler is started afresh
if [ -f "$dir/CMakeCache.txt" ] &&
        ! grep -q "^CMAKE_C_COMPILER:[A-Z]*=.*$(basename "$cc")\$" "$dir/CMakeCache.txt"; then
    echo "fuzz: $dir was configured with another compiler: reconfiguring it"
    rm -rf "$dir/CMakeCache.txt" "$dir/CMakeFiles"
fi
cmake -S . -B "$dir" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Debug \
    -DWIBERG_BUILD_FUZZ=ON -DWIBERG_SANITIZE=ON -DWIBERG_BUILD_TESTS=ON \
    -DWIBERG_BUILD_EXAMPLES=ON >/dev/null

# name:binary (relative to the build directory)
targets="checkpoint:tests/fuzz/fuzz_checkpoint csv:examples/tracker_fusion/fuzz_csv proxprop_csv:tests/fuzz/fuzz_proxprop_csv"
bins=""
for t in $targets; do bins="$bins $(basename "${t#*:}")"; done
# shellcheck disable=SC2086
cmake --build "$dir" -j"$(nproc)" --target $bins
# the targets write their input to $TMPDIR: memory, not disk (and fsync)
if [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
export ASAN_OPTIONS=detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# one input may take 30 s (default 1200); RSS up to 2 GB
limits="-timeout=30 -rss_limit_mb=2048"

# keep ARTIFACT NAME: copy a failing input into the corpus as a regression
# input and print it
keep() {
    sum=$(sha1sum "$1" | cut -c1-40)
    dest=tests/fuzz/corpus/$2/crash-$sum
    cp "$1" "$dest"
    echo "fuzz: $2 FAILED on input $1"
    echo "fuzz: kept as $dest (replayed on every run: commit it with the fix)"
    if [ "$(wc -c <"$1")" -le 65536 ]; then
        echo "fuzz: the input in base64 (base64 -d > $dest):"
        base64 "$1"
    fi
}

fail=0
summary=""
for t in $targets; do
    name=${t%%:*}
    if [ -n "$only" ]; then
        case " $only " in *" $name "*) ;; *) continue;; esac
    fi
    bin=$dir/${t#*:}
    seeds=tests/fuzz/corpus/$name
    work=$dir/corpus-$name
    art=$dir/artifacts-$name
    log=$dir/fuzz-$name.log
    mkdir -p "$work" "$art"
    rm -f "$art"/*

    # 1. replay every committed input, one run each
    n=$(find "$seeds" -type f 2>/dev/null | wc -l)
    if [ "$n" = 0 ]; then
        echo "fuzz: $name: no inputs in $seeds"
        fail=1
        summary="$summary
  $name: FAILED: no corpus"
        continue
    fi
    echo "fuzz: $name: replaying $n inputs of $seeds"
    # shellcheck disable=SC2046,SC2086
    if ! "$bin" $limits -artifact_prefix="$art/" \
            $(find "$seeds" -type f | sort) >"$log.replay" 2>&1; then
        input=$(sed -n 's/^Running: //p' "$log.replay" | tail -1)
        echo "fuzz: $name FAILED replaying $input (a committed input: see $log.replay)"
        tail -40 "$log.replay"
        fail=1
        summary="$summary
  $name: FAILED on the committed input $input"
        continue
    fi

    # 2. fuzz
    echo "fuzz: $name: fuzzing for $secs s"
    # shellcheck disable=SC2086
    if "$bin" $limits -max_total_time="$secs" -print_final_stats=1 \
            -artifact_prefix="$art/" "$work" "$seeds" >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
        echo "fuzz: $name clean: ${runs:-?} runs, coverage ${cov:-?} edges"
        summary="$summary
  $name: clean, $n inputs replayed, ${runs:-?} runs in $secs s"
    else
        echo "fuzz: $name FAILED, log: $log"
        tail -40 "$log"
        found=0
        for a in "$art"/*; do
            [ -f "$a" ] || continue
            case $(basename "$a") in slow-unit-*) continue;; esac
            keep "$a" "$name"
            found=1
        done
        [ $found = 1 ] || echo "fuzz: $name: no input was written (see $log)"
        fail=1
        summary="$summary
  $name: FAILED (see above)"
    fi
done
echo "fuzz: summary:$summary"
exit $fail
