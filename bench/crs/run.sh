#!/bin/sh
# bench/crs: one BLAS thread (small per-chunk products; spinning OpenBLAS threads only compete
# on a 2-core machine).
set -eu
cd "$(dirname "$0")/../.."
OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1} exec build/bench/bench_crs "$@"
