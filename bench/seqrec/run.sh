#!/bin/sh
# bench/run seqrec [epochs [sasrec|mqsa]]: SASRec and MQSA-TED epoch seconds, evaluation
# seconds and peak RSS on Beauty (JSON lines). OMP_WAIT_POLICY=passive and
# OPENBLAS_THREAD_TIMEOUT=4 (idle OpenBLAS workers sleep instead of spinning), as reclab sets
# them (ui/main.c). OMP_WAIT_POLICY=passive: on this shared 2-core
# machine, spinning OpenMP workers (the libgomp default) made epochs up to 10x slower.
# bench_seqrec itself sets OPENBLAS_CORETYPE when OpenBLAS fell back to generic kernels.
set -eu
cd "$(dirname "$0")/../.."
: "${RECLAB_DATA:=../shared/data}"
: "${OMP_WAIT_POLICY:=passive}"
: "${OPENBLAS_THREAD_TIMEOUT:=4}"
export RECLAB_DATA OMP_WAIT_POLICY OPENBLAS_THREAD_TIMEOUT
exec "${RECLAB_BUILD:-build}/bench/bench_seqrec" "$@"
