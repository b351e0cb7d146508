#!/bin/sh
# bench/run eval [--users N] [--items N] [--hist N] [--threads N]: full-ranking evaluation
# throughput (JSON lines). OMP_WAIT_POLICY=passive: idle OpenMP workers sleep instead of
# spinning (a quarter of a one-thread run's CPU went to libgomp's spin-wait), as reclab sets
# it (ui/main.c).
set -eu
cd "$(dirname "$0")/../.."
: "${OMP_WAIT_POLICY:=passive}"
export OMP_WAIT_POLICY
exec "${RECLAB_BUILD:-build}/bench/bench_eval" "$@"
