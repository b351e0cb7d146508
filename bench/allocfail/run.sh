#!/bin/sh
# bench/run allocfail: the exhaustive allocation-failure sweep (tests/allocfail): every
# allocation of the workload made to fail once in turn, first core's and the plugins' alone
# (allocfail.all.1), then with SQLite's allocations routed through the same allocator
# (allocfail.all.2). Runs the ASan + UBSan build (build-asan/, configured and built here when
# missing, as .ci/run does), so a leak or a memory error at any point fails that point.
# Prints JSON lines: allocations, points_swept, errors_reported, absorbed, bad (0 expected).
set -eu
cd "$(dirname "$0")/../.."
if [ ! -d build-asan ]; then
  cmake -S . -B build-asan -DRECLAB_WERROR=ON -DRECLAB_SANITIZE=address,undefined \
        -DRECLAB_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null
fi
cmake --build build-asan -j2 --target test_allocfail reclab_baselines >/dev/null
t0=$(date +%s)
status=0
OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive RLAB_ALLOCFAIL_JSON=1 \
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  build-asan/tests/test_allocfail allocfail.all > build-asan/allocfail.log 2>&1 || status=1
grep '^{' build-asan/allocfail.log
printf '{"bench": "allocfail", "metric": "seconds", "value": %s, "unit": "s", "baseline": null}\n' \
  "$(( $(date +%s) - t0 ))"
if [ $status -ne 0 ]; then
  echo "bench/allocfail: failures (build-asan/allocfail.log):" >&2
  grep -E 'FAIL|not ok' build-asan/allocfail.log | head -20 >&2
fi
exit $status
