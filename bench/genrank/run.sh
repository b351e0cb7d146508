#!/bin/sh
# bench/run genrank [steps [searches]]: OneRec training tokens/s and beam-search sessions/s
# (JSON lines). One OpenMP / OpenBLAS thread and passive OpenMP waiting: with spinning
# libgomp workers on this shared machine, 65% of a beam search's time went into the spin.
set -eu
cd "$(dirname "$0")/../.."
: "${OMP_WAIT_POLICY:=passive}"
: "${OMP_NUM_THREADS:=1}"
: "${OPENBLAS_NUM_THREADS:=1}"
export OMP_WAIT_POLICY OMP_NUM_THREADS OPENBLAS_NUM_THREADS
exec "${RECLAB_BUILD:-build}/bench/bench_genrank" "$@"
