#!/bin/sh
# bench/run crash [POINTS [SEED]]: the crash-safety sweep (tests/crash/test_crash.c) with many
# kill points per scenario (default 25; ctest runs 2): SIGKILL during training, a simulation,
# a store migration and a checkpoint write, then integrity, recovery and surviving rows are
# checked. JSON lines per scenario: kill_points, killed, finished_first,
# interrupted_verified, stores_checked; exit 1 on any failed check (build/crash.log).
set -eu
cd "$(dirname "$0")/../.."
cmake --build build -j2 --target test_crash reclab reclab_baselines reclab_simulator >/dev/null
t0=$(date +%s)
status=0
RLAB_CRASH_POINTS=${1:-25} RLAB_CRASH_SEED=${2:-14} RLAB_CRASH_JSON=1 \
  build/tests/test_crash > build/crash.log 2>&1 || status=1
grep '^{' build/crash.log
printf '{"bench": "crash", "metric": "seconds", "value": %s, "unit": "s", "baseline": null}\n' \
  "$(( $(date +%s) - t0 ))"
if [ $status -ne 0 ]; then
  echo "bench/crash: failures (build/crash.log):" >&2
  grep -E 'FAIL|not ok' build/crash.log | head -20 >&2
fi
exit $status
