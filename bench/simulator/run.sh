#!/bin/sh
# bench/simulator: one BLAS thread (the per-round score-all is small; OpenBLAS's spinning
# worker threads only compete with the simulation on a 2-core machine).
set -eu
cd "$(dirname "$0")/../.."
OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1} exec "${RECLAB_BUILD:-build}/bench/bench_simulator" "$@"
