#!/bin/sh
# bench/run fuzz [SECONDS]: every libFuzzer target of tests/fuzz run longer than in CI (default
# 300 s each, FUZZ_TARGETS to pick), on a copy of its kept seed corpus, with its dictionary.
# Builds build-fuzz/ with clang first (as .ci/fuzz does). One JSON line per target and figure:
# inputs executed, crashes (crash-*, leak-*, timeout-*, oom-* files: 0 expected), corpus size
# at the end, coverage counters; a last line sums the inputs. A crash input is kept in
# build-fuzz/bench-work/<target>/ to reproduce: build-fuzz/fuzz/fuzz_<target> FILE.
# Exit status 1 when any target crashed.
set -eu
cd "$(dirname "$0")/../.."
secs=${1:-${FUZZ_SECONDS:-300}}
targets=${FUZZ_TARGETS:-"recbole movielens seq csv jsonl tabular auto ckpt parse sql lua"}

CC=clang cmake -S . -B build-fuzz -DRECLAB_FUZZ=ON -DRECLAB_BUILD_BENCH=OFF \
  -DCMAKE_BUILD_TYPE=Debug >/dev/null
for t in $targets; do
  cmake --build build-fuzz -j2 --target "fuzz_$t" >/dev/null
done

work=$(pwd)/build-fuzz/bench-work
rm -rf "$work"
mkdir -p "$work"
line() { # metric value unit
  printf '{"bench": "fuzz", "metric": "%s", "value": %s, "unit": "%s", "baseline": null, "seconds": %s, "load1": %s}\n' \
    "$1" "$2" "$3" "$secs" "$(cut -d' ' -f1 /proc/loadavg)"
}
status=0
total=0
for t in $targets; do
  mkdir -p "$work/$t/corpus" "$work/$t/art"
  cp tests/fuzz/corpus/"$t"/* "$work/$t/corpus/"
  dict=""
  if [ -f "tests/fuzz/$t.dict" ]; then dict="-dict=$(pwd)/tests/fuzz/$t.dict"; fi
  log="$work/$t/log"
  (cd "$work/$t" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
     ../../fuzz/"fuzz_$t" -max_total_time="$secs" -max_len=4096 -timeout=10 \
     -print_final_stats=1 -artifact_prefix="$work/$t/art/" $dict corpus > "$log" 2>&1) || true
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  crashes=$(ls "$work/$t/art" | wc -l)
  corpus=$(ls "$work/$t/corpus" | wc -l)
  cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  line "fuzz_$t.inputs" "${execs:-0}" "inputs"
  line "fuzz_$t.crashes" "$crashes" "count"
  line "fuzz_$t.corpus" "$corpus" "inputs"
  line "fuzz_$t.coverage" "${cov:-0}" "edges"
  total=$((total + ${execs:-0}))
  if [ "$crashes" -gt 0 ]; then
    echo "bench/fuzz: fuzz_$t crashed; inputs in $work/$t/art, log $log" >&2
    status=1
  fi
done
line "all.inputs" "$total" "inputs"
exit $status
