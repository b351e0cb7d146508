#!/bin/sh
# Installs every Debian 12 package reclab needs to build, test and run.
# Idempotent: packages already present are skipped; run as root (or via sudo).
# Nothing is downloaded at build or run time; this is the only network step.
# afl++ is for bench/run afl only (whole-program fuzzing); the build and CI do not need it.
set -eu

PKGS="build-essential cmake pkg-config git \
  libopenblas-dev liblua5.4-dev lua5.4 libsqlite3-dev sqlite3 \
  libncurses-dev libreadline-dev libjson-c-dev libcurl4-openssl-dev \
  clang libclang-rt-dev clang-format tmux valgrind afl++ \
  libopenmpi-dev openmpi-bin chromium"

missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done

if [ -z "$missing" ]; then
  echo "install-deps: all packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing:$missing"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
