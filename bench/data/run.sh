#!/bin/sh
# bench/run data: the data-loading benchmark, then the evaluation benchmark when it is
# built (bench_eval, written in bench/eval). Run from the repository root; JSON lines out.
set -eu
cd "$(dirname "$0")/../.."
: "${RECLAB_DATA:=../shared/data}"
export RECLAB_DATA
status=0
if [ -x build/bench/bench_data ]; then
  build/bench/bench_data "$@" || status=1
else
  echo "bench/data: build/bench/bench_data missing (build first)" >&2
  status=2
fi
if [ -x build/bench/bench_eval ]; then
  build/bench/bench_eval || status=1
fi
exit $status
