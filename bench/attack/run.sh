#!/bin/sh
# bench/run attack [budget [surrogate_epochs]]: black-box queries per second (data-free and
# few-shot generation against a SASRec victim, d 64, T 50, k 100) and surrogate training
# seconds (loss=rank with and without the repair loss, loss=next) on MovieLens-100K
# ($RECLAB_DATA; the demo world without it). JSON lines. One BLAS thread, passive OpenMP
# waits (this machine is shared: the load average is reported with every figure).
set -eu
cd "$(dirname "$0")/../.."
: "${RECLAB_DATA:=../shared/data}"
OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
export RECLAB_DATA OMP_WAIT_POLICY OPENBLAS_NUM_THREADS
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"${RECLAB_BUILD:-build}/reclab" -q --no-demo --db "$tmp/bench.db" run bench/attack/attack.lua "$@"
