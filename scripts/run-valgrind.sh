#!/bin/sh
# Runs every test binary of a build under valgrind's memcheck (leaks
# included). OpenBLAS is told to use its AVX2 kernels: valgrind does not
# decode AVX-512. Usage: sh scripts/run-valgrind.sh [build-dir] (default: build)
# VALGRIND_SKIP="test_a test_b" skips those (e.g. test_mgh: its n = 1000 dense
# factorizations take 10 minutes under valgrind; ASan covers it).
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh valgrind
dir=${1:-build}
export OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=Haswell OMP_NUM_THREADS=2
export WB_TEST_DATA="$PWD/tests/data"
fail=0
for t in $(find "$dir" -type f -name 'test_*' -perm -u+x | sort); do
    case " ${VALGRIND_SKIP:-} " in
        *" $(basename "$t") "*) echo "valgrind: $(basename "$t") skipped"; continue ;;
    esac
    start=$(date +%s)
    if valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
            "$t" >"$t.valgrind.log" 2>&1; then
        echo "valgrind: $(basename "$t") clean ($(( $(date +%s) - start )) s)"
    else
        echo "valgrind: $(basename "$t") FAILED, see $t.valgrind.log"
        tail -30 "$t.valgrind.log"
        fail=1
    fi
done
exit $fail
