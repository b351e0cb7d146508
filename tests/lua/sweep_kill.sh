#!/bin/sh
# tests/lua/sweep_kill.sh RECLAB: a sweep killed with kill -9 in the middle resumes without
# redoing finished runs (issue 25), against the real binary. BPR-MF and SASRec, 3 seeds each,
# on ML-100K ($RECLAB_DATA/movielens-100k) with a tiny budget (else the demo world):
#   sweep_kill.1  the sweep is killed while a run is active, after >= 2 runs finished
#   sweep_kill.2  the same line again finishes the sweep: every planned run done
#   sweep_kill.3  the runs finished before the kill keep their run ids (not retrained), and the
#                 second process trained exactly the rest
#   sweep_kill.4  the run killed mid-way is recorded `interrupted`, and no run is left `running`
#   sweep_kill.5  compare prints the table with its protocol; per-user values for every run
# Needs the sqlite3 shell (else 77 = skipped). Every failure names its check id.
set -u
RECLAB=$1
command -v sqlite3 >/dev/null 2>&1 || { echo "sweep_kill.sh: no sqlite3 shell, skipped"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
fails=0
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
q() { sqlite3 -readonly "$T/s.db" "$1" 2>/dev/null; }

ml=${RECLAB_DATA:-}/movielens-100k/u.data
if [ -n "${RECLAB_DATA:-}" ] && [ -f "$ml" ]; then
    "$RECLAB" -q --no-demo --db "$T/s.db" -c "load $ml name=ml-100k" >/dev/null 2>"$T/load.err" ||
        { echo "FAIL sweep_kill.0: load: $(cat "$T/load.err")"; exit 1; }
    data=ml-100k
    demo=--no-demo
else
    echo "sweep_kill.sh: \$RECLAB_DATA/movielens-100k absent, using the demo world"
    data=demo
    demo=
fi
line="sweep bprmf,sasrec data=$data epochs=2 sasrec.epochs=1 sasrec.dim=16 sasrec.maxlen=20 sasrec.blocks=1 seeds=1..3 name=k9"

"$RECLAB" -q $demo --db "$T/s.db" -c "$line" >"$T/1.out" 2>"$T/1.err" </dev/null &
pid=$!
i=0
while [ $i -lt 600 ]; do
    done_n=$(q "SELECT count(*) FROM experiment_runs WHERE status = 'done'")
    running=$(q "SELECT count(*) FROM runs WHERE status = 'running' AND json_extract(config, '$.name') LIKE 'k9-r%'")
    [ "${done_n:-0}" -ge 2 ] && [ "${running:-0}" = 1 ] && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
    i=$((i + 1))
done
if ! kill -0 $pid 2>/dev/null; then
    wait $pid
    echo "FAIL sweep_kill.1: the sweep ended before the kill (exit $?): $(tail -c 300 "$T/1.err")"
    exit 1
fi
kill -9 $pid
wait $pid 2>/dev/null
before=$(q "SELECT group_concat(idx || ':' || run_id, ' ') FROM (SELECT idx, run_id FROM experiment_runs WHERE status = 'done' ORDER BY idx)")
nbefore=$(q "SELECT count(*) FROM experiment_runs WHERE status = 'done'")
killed=$(q "SELECT json_extract(config, '$.name') FROM runs WHERE status = 'running'")
[ "$nbefore" -ge 2 ] && [ "$nbefore" -lt 6 ] || fail sweep_kill.1 "killed with $nbefore of 6 runs done"
[ -n "$killed" ] || fail sweep_kill.1 "no run was active at the kill"
echo "killed with $nbefore of 6 done ($before), active: $killed"

"$RECLAB" -q $demo --db "$T/s.db" -c "$line" >"$T/2.out" 2>"$T/2.err" </dev/null ||
    fail sweep_kill.2 "resume failed: $(tail -c 400 "$T/2.err")"
[ "$(q "SELECT count(*) FROM experiment_runs WHERE status = 'done'")" = 6 ] ||
    fail sweep_kill.2 "not every run done after the resume"
[ "$(q "SELECT status FROM experiments WHERE name = 'k9'")" = done ] ||
    fail sweep_kill.2 "experiment not marked done"
after=$(q "SELECT group_concat(idx || ':' || run_id, ' ') FROM (SELECT idx, run_id FROM experiment_runs WHERE status = 'done' AND idx IN (SELECT idx FROM experiment_runs WHERE status = 'done') ORDER BY idx)")
for pair in $before; do
    case " $after " in
    *" $pair "*) ;;
    *) fail sweep_kill.3 "run $pair was redone (now: $after)" ;;
    esac
done
grep -q "ran = $((6 - nbefore))" "$T/2.out" || fail sweep_kill.3 "the resume did not train exactly $((6 - nbefore)) runs: $(grep -E 'ran|skipped' "$T/2.out")"
grep -q "skipped = $nbefore" "$T/2.out" || fail sweep_kill.3 "the resume did not skip $nbefore runs"
ntrain=$(q "SELECT count(*) FROM runs WHERE json_extract(config, '$.name') LIKE 'k9-r%' AND status = 'done'")
[ "$ntrain" = 6 ] || fail sweep_kill.3 "$ntrain finished train runs, expected 6 (one per planned run)"
[ "$(q "SELECT status FROM runs WHERE json_extract(config, '$.name') = '$killed' ORDER BY id LIMIT 1")" = interrupted ] ||
    fail sweep_kill.4 "the killed run '$killed' is not marked interrupted"
[ "$(q "SELECT count(*) FROM runs WHERE status = 'running'")" = 0 ] || fail sweep_kill.4 "runs left running"

"$RECLAB" -q $demo --db "$T/s.db" -c "compare k9" >"$T/3.out" 2>"$T/3.err" ||
    fail sweep_kill.5 "compare failed: $(cat "$T/3.err")"
grep -q "protocol: full ranking" "$T/3.out" || fail sweep_kill.5 "no protocol line"
grep -q "^$data *bprmf *ndcg@10 *3 " "$T/3.out" || fail sweep_kill.5 "no bprmf row over 3 seeds: $(cat "$T/3.out")"
grep -q "^$data *sasrec *ndcg@10 *3 " "$T/3.out" || fail sweep_kill.5 "no sasrec row over 3 seeds"
[ "$(q "SELECT count(DISTINCT u.run_id) FROM run_users u JOIN experiment_runs e ON e.run_id = u.run_id")" = 6 ] ||
    fail sweep_kill.5 "per-user values missing"
cat "$T/3.out"
[ $fails = 0 ] || exit 1
echo "sweep_kill.sh: ok"
