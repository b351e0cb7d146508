#!/bin/sh
# bench/run ranker: one thread for OpenBLAS and OpenMP, so the block's thread CPU time is the
# whole of its work (bench_ranker.c).
cd "$(dirname "$0")/../.."
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
exec build/bench/bench_ranker "$@"
