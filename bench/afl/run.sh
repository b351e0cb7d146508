#!/bin/sh
# bench/run afl [SECONDS]: AFL++ (Debian's afl++, scripts/install-deps.sh) on whole-program
# paths: the real program, built with afl-clang-fast and ASan in build-afl/, run once per
# input file:
#   data  reclab -q --no-demo -e 'reclab.datasets.load(FILE)'   (format detection and every
#         text loader behind it, through the Lua binding)
#   ckpt  reclab -q --no-demo -e 'reclab.models.load(FILE, {kind = "bprmf"})'   (the
#         safetensors reader and a plugin's restore of a checkpoint)
# Each runs SECONDS (default 300) from seeds made here (the loaders' kept corpora without their
# selector byte; a bprmf checkpoint the program writes). One JSON line per target and figure
# (inputs executed, crashes, hangs); crash inputs stay in build-afl/afl-out/<target>/.
# Throughput is low (one process start per input): this complements the libFuzzer targets
# (bench/run fuzz), it does not replace them. Exit 1 when a target crashed.
#
# Build notes: afl-clang-fast (LLVM 14) crashes compiling core/tensor/loss.c (its AVX2
# target_clones), so that one object is compiled by plain clang (not instrumented). The
# plugins are instrumented and preloaded (AFL_PRELOAD), so that the fork server already has
# them mapped when the host dlopens them: an instrumented library loaded after the fork
# server writes outside AFL's map (spurious SIGSEGVs, the first runs of this script).
set -eu
cd "$(dirname "$0")/../.."
root=$(pwd)
secs=${1:-300}
command -v afl-fuzz >/dev/null || { echo "bench/afl: afl-fuzz missing (apt-get install afl++)" >&2; exit 2; }
b=build-afl
export AFL_USE_ASAN=1 AFL_QUIET=1
CC=afl-clang-fast cmake -S . -B $b -DRECLAB_BUILD_TESTS=OFF -DRECLAB_BUILD_BENCH=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS="-mavx2 -mfma -Wno-pass-failed" >/dev/null
o=$b/core/CMakeFiles/reclab_core.dir/tensor/loss.c.o
mkdir -p "$(dirname "$o")"
clang -DRECLAB_VERSION_STRING='"afl"' -DRLAB_ABI_VERSION_BUILD="$(sed -n 's/^set(RECLAB_ABI_VERSION \([0-9]*\))/\1/p' CMakeLists.txt)" \
  -DRLAB_BUILDING_CORE -D_POSIX_C_SOURCE=200809L -Icore \
  $(pkg-config --cflags openblas json-c) -mavx2 -mfma -O2 -g -fPIC -fvisibility=hidden \
  -fopenmp=libomp -std=c11 -fsanitize=address -c core/tensor/loss.c -o "$o"
cmake --build $b -j2 --target reclab reclab_baselines reclab_seqrec reclab_simulator >/dev/null

export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 \
  RECLAB_NO_REEXEC=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:symbolize=0
work=$root/$b/afl-out
rm -rf "$work" "$root/$b/afl-seeds"
mkdir -p "$work" "$root/$b/afl-seeds/data" "$root/$b/afl-seeds/ckpt"
# data seeds: the in-memory loaders' corpora without their sub-format byte
for t in seq csv movielens recbole; do
  for f in tests/fuzz/corpus/$t/*; do tail -c +2 "$f" > "$b/afl-seeds/data/$t-$(basename "$f")"; done
done
cp tests/fuzz/corpus/ckpt/* "$b/afl-seeds/ckpt/"
db=$(mktemp -d)
trap 'rm -rf "$db"' EXIT
$b/reclab -q --db "$db/seed.db" -c 'train bprmf data=demo epochs=1 dim=4 eval_every=0' \
  -c "save model=bprmf file=$b/afl-seeds/ckpt/bprmf.safetensors" >/dev/null 2>&1 || true
rm -f "$b/afl-seeds/ckpt/bprmf.json"

AFL_PRELOAD=$(ls "$root"/$b/plugins/reclab_*.so | tr '\n' ':' | sed 's/:$//')
export AFL_PRELOAD

line() {
  printf '{"bench": "afl", "metric": "%s", "value": %s, "unit": "%s", "baseline": null, "seconds": %s}\n' \
    "$1" "$2" "$3" "$secs"
}
status=0
for t in data ckpt; do
  case $t in
  data) code='local ok, e = reclab.datasets.load("@@", {name = "x"})' ;;
  ckpt) code='local ok, e = reclab.models.load("@@", {kind = "bprmf", name = "m"})' ;;
  esac
  afl-fuzz -i "$b/afl-seeds/$t" -o "$work/$t" -V "$secs" -m none -t 5000 -- \
    "$root/$b/reclab" -q --no-demo --db "$db/$t.db" -e "$code" > "$work/$t.log" 2>&1 || true
  stats="$work/$t/default/fuzzer_stats"
  execs=$(sed -n 's/^execs_done *: *//p' "$stats" 2>/dev/null || echo 0)
  crashes=$(sed -n 's/^saved_crashes *: *//p' "$stats" 2>/dev/null || echo 0)
  hangs=$(sed -n 's/^saved_hangs *: *//p' "$stats" 2>/dev/null || echo 0)
  paths=$(sed -n 's/^corpus_count *: *//p' "$stats" 2>/dev/null || echo 0)
  line "afl_$t.inputs" "${execs:-0}" "inputs"
  line "afl_$t.crashes" "${crashes:-0}" "count"
  line "afl_$t.hangs" "${hangs:-0}" "count"
  line "afl_$t.corpus" "${paths:-0}" "inputs"
  if [ "${crashes:-0}" -gt 0 ]; then
    echo "bench/afl: $t crashed: inputs in $work/$t/default/crashes" >&2
    status=1
  fi
done
exit $status
