#!/bin/sh
# scripts/coverage.sh [CTEST_ARGS...]: line coverage of core/ with plain gcov (no lcov needed).
# Configures build-cov/ with -DRECLAB_COVERAGE=ON (gcc --coverage, -O0), builds, runs the test
# suite (ctest -j2, plus any extra arguments, e.g. -L unit), then runs gcov on every object of
# libreclab_core and prints one line per source file (lines executed / executable lines) and
# the total for core/, worst files first. The per-file table is also written to
# build-cov/coverage.txt and the .gcov files to build-cov/gcov/ (the lines never run are marked
# '#####'). Not part of CI: it rebuilds everything without optimisation.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
: "${RECLAB_DATA:=../shared/data}"
if [ -d "$RECLAB_DATA" ]; then RECLAB_DATA=$(cd "$RECLAB_DATA" && pwd); fi
export RECLAB_DATA
cmake -S . -B build-cov -DRECLAB_COVERAGE=ON -DRECLAB_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=Debug \
  >/dev/null
cmake --build build-cov -j2 >/dev/null
find build-cov -name '*.gcda' -delete
ctest --test-dir build-cov -j2 "$@" > build-cov/coverage-ctest.log 2>&1 ||
  echo "coverage: some tests failed (build-cov/coverage-ctest.log); counting what ran" >&2
objdir=build-cov/core/CMakeFiles/reclab_core.dir
rm -rf build-cov/gcov
mkdir -p build-cov/gcov
cd build-cov/gcov
# gcov prints "File '<source>'" then "Lines executed:P% of N" for each source it saw
find "$root/$objdir" -name '*.gcda' | sort | while read -r gcda; do
  gcov -p -o "$(dirname "$gcda")" "$gcda" 2>/dev/null
done | awk -v root="$root/" '
  /^File / { f = $2; gsub(/\047/, "", f); next }
  /^Lines executed:/ {
    if (f !~ "/core/" || f ~ /\.h$/ || seen[f]++) next
    split($2, a, ":"); pct = a[2]; sub(/%/, "", pct); n = $4
    hit = int(pct * n / 100 + 0.5)
    rel = f; sub(root, "", rel)
    printf "%6.1f%%  %5d / %5d  %s\n", pct, hit, n, rel
    H += hit; N += n
  }
  END { if (N) printf "TOTAL core/: %.1f%% of lines (%d of %d executable lines)\n", 100 * H / N, H, N }
' > ../coverage.unsorted
cd ..
grep -v '^TOTAL' coverage.unsorted | sort -n > coverage.txt
grep '^TOTAL' coverage.unsorted >> coverage.txt
rm -f coverage.unsorted
cat coverage.txt
