#!/bin/sh
# bench/compare.sh NAME REV [ROUNDS] [ARGS...]: `bench/run NAME ARGS...` side by side for the
# commit REV and the working tree's build/, alternating (REV first), ROUNDS times (default 2),
# each run headed by the time and the 1-minute load average: on a shared machine the speed
# drifts by minutes, so a before/after comparison must interleave. REV is built once in a
# detached git worktree under ${TMPDIR:-/tmp}/reclab-compare-REV (the benchmark target and
# the plugins it loads only). The benchmark's run.sh must honour RECLAB_BUILD.
set -eu
cd "$(dirname "$0")/.."
name=${1:?usage: bench/compare.sh NAME REV [ROUNDS] [ARGS...]}
rev=$(git rev-parse --short "${2:?usage: bench/compare.sh NAME REV [ROUNDS] [ARGS...]}")
rounds=${3:-2}
shift 2
[ $# -gt 0 ] && shift
wt=${TMPDIR:-/tmp}/reclab-compare-$rev
if [ ! -x "$wt/b/bench/bench_$name" ]; then
  git worktree add -f --detach "$wt" "$rev" >/dev/null 2>&1 || true
  cmake -S "$wt" -B "$wt/b" -DRECLAB_WERROR=OFF >/dev/null
  cmake --build "$wt/b" -j2 --target "bench_$name" reclab_baselines >/dev/null
fi
i=0
while [ "$i" -lt "$rounds" ]; do
  for side in "$rev" HEAD; do
    if [ "$side" = HEAD ]; then b=build; else b=$wt/b; fi
    echo "== $side $(date +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)"
    if [ -x "bench/$name/run.sh" ]; then
      RECLAB_BUILD=$b "bench/$name/run.sh" "$@"
    else
      "$b/bench/bench_$name" "$@"
    fi
  done
  i=$((i + 1))
done
