#!/bin/sh
# tests/mpi/run.sh RECLAB TEST: the MPI tests against the real program, 2 ranks on this machine
# (oversubscribed: mpirun --oversubscribe, and --allow-run-as-root's environment variables).
# Exit 77 (skip) when mpirun is absent or reclab was built without MPI.
#   train_eval  1 rank vs 2 ranks, same seed: BPR-MF and SASRec (data-parallel) test metrics
#               within TOL = 0.01 and per-epoch losses within 1e-3 (float summation order
#               differs; measured ~1e-10 for BPR-MF, ~1e-4 for SASRec, whose first Adam steps
#               amplify summation noise in near-zero gradients), ItemKNN's sharded
#               evaluation equal to 1e-12 (bit-identical per-user values), same user count
#   sweep       reclab.mpi.sweep results on 2 ranks equal to 1 rank's, 6 runs in the store
#   fault       a rank that stops answering (the other's collective times out) and a rank
#               that dies (mpirun's SIGTERM fails the waiting collective): each time the job
#               ends with a message from rank 0 and its run is `failed`, well before a hang
#   sim         simulator.step with agents partitioned over 2 ranks equal to 1 rank with
#               partition=on (also with the other rank's agents scrambled before every round:
#               RECLAB_SIM_POISON), and with agents replicated (partition=off) equal to 1 rank
#               (sim.lua)
#   output      lines every rank prints appear once, a rank's own lines once as "[rank r] ..."
#   end         a rank stuck in an endless loop at the end of the script (rank 1, then rank
#               0): the end-of-script wait's deadline (RECLAB_MPI_END_TIMEOUT=2) ends the job
#               non-zero, with a message naming the stuck rank
#   example     lua/examples/mpi_sweep.lua, small, prints the same on 1 and 2 ranks
set -u
RECLAB=$1
T=$2
SRC=$(cd "$(dirname "$0")" && pwd)
TOL=${TOL:-0.01}
command -v mpirun >/dev/null 2>&1 || { echo "SKIP: mpirun not found (apt-get install openmpi-bin)"; exit 77; }
"$RECLAB" --version | grep -q "^mpi: no MPI" && { echo "SKIP: reclab built without MPI"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none # no CMA in containers
export RECLAB_MPI_TIMEOUT=${RECLAB_MPI_TIMEOUT:-300} # mpirun -x warns about an unset one
export RECLAB_SIM_POISON=0
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
mpi() { mpirun --oversubscribe -x OPENBLAS_NUM_THREADS -x RECLAB_MPI_TIMEOUT -x ASAN_OPTIONS -x RECLAB_SIM_POISON "$@"; }
fail() { echo "FAIL: $*"; exit 1; }

run1() { # name script [arg]: one process, no mpirun
  mkdir -p "$W/$1.1" && (cd "$W/$1.1" && "$RECLAB" -q --db r.db run "$SRC/$2" ${3:-}) > "$W/$1.1.out" 2>&1 ||
    { cat "$W/$1.1.out"; fail "$T: 1 rank"; }
}
run2() {
  mkdir -p "$W/$1.2" && (cd "$W/$1.2" && mpi -np 2 "$RECLAB" -q --db r.db run "$SRC/$2" ${3:-}) > "$W/$1.2.out" 2>&1 ||
    { cat "$W/$1.2.out"; fail "$T: 2 ranks"; }
}
# compare RESULT lines of the two runs: names must match; |a - b| <= tol (per prefix)
compare() {
  grep '^RESULT' "$W/$1.1.out" | sort > "$W/a"
  grep '^RESULT' "$W/$1.2.out" | sort > "$W/b"
  [ -s "$W/a" ] || fail "$T: no results"
  cut -d' ' -f2 "$W/a" > "$W/an"; cut -d' ' -f2 "$W/b" > "$W/bn"
  cmp -s "$W/an" "$W/bn" || { diff "$W/an" "$W/bn"; fail "$T: result names differ"; }
  paste -d' ' "$W/a" "$W/b" | awk -v tol="$TOL" '
    { d = $3 - $6; if (d < 0) d = -d; t = ($2 ~ /^(knn|sweep\.runs|sweep\.ndcg_rows|sim)/) ? 1e-12 : tol;
      if ($2 ~ /^(bpr|sas)\.loss/) t = 1e-3;
      printf "%-24s 1 rank %.10g  2 ranks %.10g  |diff| %.3g (tol %g)\n", $2, $3, $6, d, t;
      if (d > t) bad = 1 }
    END { exit bad }' || fail "$T: 1 and 2 ranks differ beyond the tolerance"
}

case $T in
train_eval)
  run1 te train_eval.lua; run2 te train_eval.lua; compare te
  grep -q "^ranks.2$" "$W/te.2.out" || fail "not 2 ranks"
  ;;
sweep)
  run1 sw sweep.lua; run2 sw sweep.lua; compare sw
  grep -q "RESULT sweep.runs_done 7" "$W/sw.2.out" || { cat "$W/sw.2.out"; fail "rank 0's store lacks the runs"; }
  ;;
sim) # partitioned agents (2 ranks, default) = one process with partition=on; replicated
     # agents (partition=off) = the default one process
  run1 sim sim.lua on; run2 sim sim.lua; compare sim
  grep -q "^partitioned: 40 agents per rank" "$W/sim.2.out" || { cat "$W/sim.2.out"; fail "sim: not partitioned"; }
  grep "^bytes" "$W/sim.2.out"
  # again with the other rank's agents scrambled before every round (RECLAB_SIM_POISON):
  # a round reads only its own rank's agents, so nothing changes
  RECLAB_SIM_POISON=1 run2 simp sim.lua; cp "$W/sim.1.out" "$W/simp.1.out"; compare simp
  run1 simr sim.lua; run2 simr sim.lua off; compare simr
  ;;
fault) # a rank that hangs (fault.lua), then a rank that dies (die.lua)
  for f in fault die; do
    mkdir -p "$W/$f" && cd "$W/$f" || exit 1
    start=$(date +%s)
    RECLAB_MPI_TIMEOUT=2 mpi -np 2 "$RECLAB" -q --db r.db run "$SRC/$f.lua" > out 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    cat out
    [ $rc -ne 0 ] || fail "$f: the job succeeded"
    [ $took -lt 25 ] || fail "$f: the job took $took s (a hang ended by the peer's own end?)"
    if [ $f = fault ]; then
      grep -q "timed out on rank 0 of 2" out || fail "$f: no timeout message from rank 0"
    else
      grep -q "rank 0 of 2: the job is being ended" out || fail "$f: no message from rank 0"
    fi
    st=$(sqlite3 r.db "SELECT status FROM runs ORDER BY id DESC LIMIT 1")
    [ "$st" = failed ] || fail "$f: run status '$st', expected failed"
    echo "$f: exit $rc after $took s, run failed"
  done
  ;;
output) # rank 0 prints the common lines once, then each rank's own lines, prefixed
  run1 out output.lua; run2 out output.lua
  cat "$W/out.2.out"
  grep -v '^\[rank 1\] ' "$W/out.2.out" > "$W/out.2.common"
  cmp -s "$W/out.1.out" "$W/out.2.common" || { diff "$W/out.1.out" "$W/out.2.common"; fail "output: the common lines differ from one rank's"; }
  printf '[rank 1] only on rank 1\n[rank 1] rank-specific 1\n' > "$W/out.want"
  grep '^\[rank 1\] ' "$W/out.2.out" | cmp -s - "$W/out.want" || fail "output: rank 1's own lines"
  ;;
end) # a rank stuck in an endless loop at the end: the job ends with a message, non-zero
  for h in 1 0; do
    mkdir -p "$W/end$h" && cd "$W/end$h" || exit 1
    start=$(date +%s)
    RECLAB_MPI_END_TIMEOUT=2 mpi -x RECLAB_MPI_END_TIMEOUT -np 2 "$RECLAB" -q --db r.db run "$SRC/hang_end.lua" $h > out 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    cat out
    [ $rc -ne 0 ] || fail "end: the job succeeded with rank $h stuck"
    [ $took -lt 25 ] || fail "end: the job took $took s"
    if [ $h = 1 ]; then
      grep -q "rank 1 of 2 did not reach the end of the script within 2 s" out || fail "end: rank 0 did not name rank 1"
    else
      grep -q "rank 0 of 2 did not reach the end of the script within 2 s of rank 1" out || fail "end: rank 1 did not name rank 0"
    fi
    echo "end (rank $h stuck): exit $rc after $took s"
  done
  ;;
example) # the tour, small: both runs print the same numbers (rank 0 only)
  EX="$SRC/../../lua/examples/mpi_sweep.lua"
  mkdir -p "$W/ex.1" "$W/ex.2"
  (cd "$W/ex.1" && "$RECLAB" -q --db r.db run "$EX" 1 1) > "$W/ex.1.out" 2>&1 ||
    { cat "$W/ex.1.out"; fail "example: 1 rank"; }
  (cd "$W/ex.2" && mpi -np 2 "$RECLAB" -q --db r.db run "$EX" 1 1) > "$W/ex.2.out" 2>&1 ||
    { cat "$W/ex.2.out"; fail "example: 2 ranks"; }
  cat "$W/ex.2.out"
  grep -q "^4. sweep of 2 jobs" "$W/ex.2.out" || fail "example: no sweep line"
  # lines 2-4 carry no time: the same on 1 and 2 ranks
  for n in 2 3 4; do
    x=$(grep "^$n\." "$W/ex.1.out"); y=$(grep "^$n\." "$W/ex.2.out")
    [ "$x" = "$y" ] || fail "example line $n: '$x' vs '$y'"
  done
  ;;
*) fail "unknown test $T" ;;
esac
echo "PASS $T"
