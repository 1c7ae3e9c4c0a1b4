#!/bin/sh
# Installs libwiberg as users do -- configured without a prefix, installed
# with `cmake --install BUILD --prefix P` -- then moves the installed tree
# elsewhere and builds a small program against the moved copy with CMake
# (find_package, shared and static) and with pkg-config (shared and
# static), and runs each. Both package files must be relocatable: nothing
# in them may name the configure-time prefix (/usr/local), the install-time
# prefix P or the build tree.
# Usage: run_install_test.sh SOURCE_DIR WORK_DIR
set -eu
src=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
staged="$work/staged"
prefix="$work/moved/prefix"
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
      -DWIBERG_BUILD_TESTS=OFF -DWIBERG_BUILD_EXAMPLES=OFF >"$work/configure.log"
cmake --build "$work/build" -j2 >"$work/build.log"
cmake --install "$work/build" --prefix "$staged" >"$work/install.log"
mkdir -p "$work/moved"
mv "$staged" "$prefix"
pc=$(find "$prefix" -name wiberg.pc | head -n1)
[ -n "$pc" ] || { echo "install test: no wiberg.pc under $prefix" >&2; exit 1; }
libdir=$(dirname "$(dirname "$pc")")

# 0. no absolute path of the configure/install/build time in the package files
for bad in /usr/local "$staged" "$work/build"; do
    if grep -rqF "$bad" "$libdir/pkgconfig" "$libdir/cmake"; then
        echo "install test: the installed package files name $bad:" >&2
        grep -rnF "$bad" "$libdir/pkgconfig" "$libdir/cmake" >&2
        exit 1
    fi
done

# 1. CMake consumer
cmake -S "$src/tests/install" -B "$work/consumer" \
      -DCMAKE_PREFIX_PATH="$prefix" >"$work/consumer-configure.log"
cmake --build "$work/consumer" >"$work/consumer-build.log"
LD_LIBRARY_PATH="$libdir" "$work/consumer/consumer_shared"
"$work/consumer/consumer_static"

# 2. pkg-config consumer
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cflags=$(pkg-config --cflags wiberg)
case "$cflags" in
    *"$prefix"*) ;;
    *) echo "install test: pkg-config --cflags wiberg = '$cflags' does not point into $prefix" >&2; exit 1;;
esac
cc -std=c11 $cflags "$src/tests/install/consumer.c" \
   -o "$work/pc_shared" $(pkg-config --libs wiberg) -lm
LD_LIBRARY_PATH="$libdir" "$work/pc_shared"
cc -std=c11 $cflags "$src/tests/install/consumer.c" \
   -o "$work/pc_static" "$libdir/libwiberg.a" $(pkg-config --libs --static wiberg | sed 's/-lwiberg//') -lm
"$work/pc_static"
echo "install test: installed with --prefix, moved; CMake (shared, static) and pkg-config (shared, static) consumers OK"
