#!/bin/sh
# bench/seqrec/compare.sh REV [ROUNDS]: `bench/run seqrec 2` side by side for the commit REV
# and the working tree's build/, alternating (REV first), ROUNDS times (default 2): the host's
# speed drifts by minutes, so a before/after comparison must interleave. REV is built once
# in a git worktree under ${TMPDIR:-/tmp}/reclab-compare-REV (benchmarks only).
set -eu
cd "$(dirname "$0")/../.."
rev=$(git rev-parse --short "${1:?usage: bench/seqrec/compare.sh REV [ROUNDS]}")
rounds=${2:-2}
wt=${TMPDIR:-/tmp}/reclab-compare-$rev
if [ ! -x "$wt/b/bench/bench_seqrec" ]; then
  git worktree add -f --detach "$wt" "$rev" >/dev/null 2>&1 || true
  cmake -S "$wt" -B "$wt/b" -DRECLAB_BUILD_TESTS=OFF >/dev/null
  cmake --build "$wt/b" -j2 --target bench_seqrec >/dev/null
fi
i=0
while [ "$i" -lt "$rounds" ]; do
  for side in "$rev" HEAD; do
    if [ "$side" = HEAD ]; then b=build; else b=$wt/b; fi
    echo "== $side $(date +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)"
    RECLAB_BUILD=$b bench/run seqrec 2
  done
  i=$((i + 1))
done
