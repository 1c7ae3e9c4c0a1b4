#!/bin/sh
# Installs libwiberg into a scratch prefix, then builds a small program
# against the installed copy with CMake (find_package, shared and static)
# and with pkg-config (shared and static), and runs each.
# Usage: run_install_test.sh SOURCE_DIR WORK_DIR
set -eu
src=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
prefix="$work/prefix"
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
      -DWIBERG_BUILD_TESTS=OFF -DWIBERG_BUILD_EXAMPLES=OFF \
      -DCMAKE_INSTALL_PREFIX="$prefix" >"$work/configure.log"
cmake --build "$work/build" -j2 >"$work/build.log"
cmake --install "$work/build" >"$work/install.log"
libdir=$(ls -d "$prefix"/lib*/pkgconfig | head -n1 | xargs dirname)

# 1. CMake consumer
cmake -S "$src/tests/install" -B "$work/consumer" \
      -DCMAKE_PREFIX_PATH="$prefix" >"$work/consumer-configure.log"
cmake --build "$work/consumer" >"$work/consumer-build.log"
LD_LIBRARY_PATH="$libdir" "$work/consumer/consumer_shared"
"$work/consumer/consumer_static"

# 2. pkg-config consumer
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -std=c11 $(pkg-config --cflags wiberg) "$src/tests/install/consumer.c" \
   -o "$work/pc_shared" $(pkg-config --libs wiberg) -lm
LD_LIBRARY_PATH="$libdir" "$work/pc_shared"
cc -std=c11 $(pkg-config --cflags wiberg) "$src/tests/install/consumer.c" \
   -o "$work/pc_static" "$libdir/libwiberg.a" $(pkg-config --libs --static wiberg | sed 's/-lwiberg//') -lm
"$work/pc_static"
echo "install test: CMake (shared, static) and pkg-config (shared, static) consumers OK"
