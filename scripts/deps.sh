#!/bin/sh
# Installs the Debian packages libwiberg needs to build and test, if missing.
# Usage: sh scripts/deps.sh [extra-package ...]
set -eu
pkgs="build-essential cmake pkg-config libopenblas-dev liblapacke-dev libcmocka-dev libsuitesparse-dev $*"
missing=""
for p in $pkgs; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "error: missing packages:$missing (run as root: apt-get install -y$missing)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
