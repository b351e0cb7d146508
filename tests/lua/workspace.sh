#!/bin/sh
# tests/lua/workspace.sh RECLAB: a workspace reopens as it was left, and what it records can be
# trusted (issue 13, points 4, 5, 7, 8), against the real program across processes. Every
# failure names its check id.
#   workspace.1  ML-100K loaded into a store, bprmf trained and saved; a NEW process lists
#                ml100k, and `recommend model=bprmf user=1 k=5` prints the same lines
#                (skipped without $RECLAB_DATA)
#   workspace.2  a source file that changed (size, or same size other bytes) or moved is
#                reported with the dataset, the path and what differs, and never loaded; the
#                command that uses it fails with that message, and no half-registered dataset
#                is left
#   workspace.3  a reclab.world{...} and its split are rebuilt from their recorded recipe:
#                the same training results in the next process
#   workspace.4  dialogues: ReDial JSON lines and INSPIRED TSV load from Lua (format=) and are
#                listed, reopened and readable by conversation; the interaction loaders
#                refuse them (skipped without $RECLAB_DATA)
#   workspace.5  run records: eval stores the data it ranked and no null; seed stored
#   workspace.6  `reclab -e` prints returned tables readably (aligned, nested summarised,
#                Model handles by name)
#   workspace.7  `set key-metric` is kept in the store and checked
#   workspace.8  a model trained and never saved is kept in the workspace (its run's
#                checkpoint): a NEW process lists it and recommends the same lines;
#                a kept tokenizer is read by `train sasrec semid=` in a new process;
#                RECLAB_KEEP_MODELS=0 keeps nothing
set -u
RECLAB=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
fails=0
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
ok() { echo "ok $1"; }
run() { "$RECLAB" -q "$@" 2>&1; }
data=${RECLAB_DATA:-}

"$RECLAB" -q --no-demo -c 'help train bprmf' >/dev/null 2>&1 || { echo "no baselines plugin: skipped"; exit 77; }

# workspace.1 -------------------------------------------------------------------------------
n=$fails
if [ -n "$data" ] && [ -f "$data/movielens-100k/u.data" ]; then
    run --db ml.db -e "assert(reclab.datasets.load('$data/movielens-100k/u.data', {name = 'ml100k'}))" \
        -c 'train bprmf data=ml100k epochs=2' -c 'save model=bprmf' \
        -c 'recommend model=bprmf user=1 k=5' >first.out || fail workspace.1 "first session: $(tail -3 first.out)"
    run --db ml.db -c 'datasets' -c 'recommend model=bprmf user=1 k=5' >second.out ||
        fail workspace.1 "second session: $(tail -3 second.out)"
    grep -Eq '^ml100k +943 users +1682 items +100000 interactions +ml-100k +\(recorded' second.out ||
        fail workspace.1 "datasets does not list ml100k as recorded: $(grep ml100k second.out)"
    grep -E '^[0-9]+ +[0-9]+ +[0-9.-]+ ' first.out >r1
    grep -E '^[0-9]+ +[0-9]+ +[0-9.-]+ ' second.out >r2
    [ "$(wc -l <r1)" -eq 5 ] || fail workspace.1 "expected 5 recommendation rows, got $(wc -l <r1)"
    cmp -s r1 r2 || fail workspace.1 "recommendations differ after reopening: $(diff r1 r2 | head -4)"
    grep -q "Schindler" r2 || true # titles come from the reloaded u.item
    [ $fails -eq $n ] && ok workspace.1
else
    echo "workspace.1: RECLAB_DATA not set, skipped"
fi

# workspace.2 -------------------------------------------------------------------------------
n=$fails
mkdir -p src
printf '1\t10\t5\t881250949\n1\t11\t3\t881250950\n2\t10\t4\t881250951\n2\t12\t2\t881250952\n3\t11\t1\t881250953\n3\t12\t4\t881250954\n' >src/u.data
run --db ch.db -e "assert(reclab.datasets.load('src/u.data', {name = 'mine'}))" -c 'train pop data=mine' >c1.out ||
    fail workspace.2 "load: $(tail -3 c1.out)"
printf '4\t10\t5\t881250960\n' >>src/u.data
"$RECLAB" --db ch.db -c 'datasets' >c2.out 2>c2.err
grep -q "reclab: dataset 'mine': $T/src/u.data changed since it was recorded (.* bytes, now .*); not loaded" c2.err ||
    fail workspace.2 "no clear line at open: $(cat c2.err)"
grep -q "^mine  *not available: dataset 'mine'" c2.out || fail workspace.2 "datasets: $(grep mine c2.out)"
run --db ch.db -c 'train pop data=mine' >c3.out && fail workspace.2 "trained on a changed file"
grep -q "train pop: dataset 'mine': .*u.data changed since it was recorded" c3.out ||
    fail workspace.2 "the command's error hides the cause: $(cat c3.out)"
run --db ch.db -c 'datasets' >c4.out
grep -Eq '^mine +[0-9]+ users' c4.out && fail workspace.2 "half-registered: $(grep mine c4.out)"
if command -v sqlite3 >/dev/null 2>&1; then
    # refused before it ran: no failed run row to hide the cause behind
    st=$(sqlite3 -readonly ch.db "SELECT count(*) FROM runs WHERE status = 'failed'")
    [ "$st" = 0 ] || fail workspace.2 "the refused command left $st failed run(s)"
fi
# same size, other bytes: only the sha256 tells
printf '1\t10\t5\t881250949\n1\t11\t3\t881250950\n2\t10\t4\t881250951\n2\t12\t2\t881250952\n3\t11\t1\t881250953\n3\t12\t4\t881250954\n' >src/u.data
run --db ch.db -c 'train pop data=mine' >c5.out || fail workspace.2 "the restored file does not load again: $(cat c5.out)"
sed 's/^1\t10/1\t19/' src/u.data >src/tmp && mv src/tmp src/u.data
run --db ch.db -c 'train pop data=mine' >c6.out && fail workspace.2 "trained on a same-size changed file"
grep -q "changed since it was recorded (sha256 " c6.out || fail workspace.2 "same-size change: $(cat c6.out)"
mv src/u.data src/moved.data
run --db ch.db -c 'datasets' >c7.out
grep -q "mine .*u.data is missing (moved or deleted since it was recorded)" c7.out ||
    fail workspace.2 "moved file: $(grep mine c7.out)"
[ $fails -eq $n ] && ok workspace.2

# workspace.3 -------------------------------------------------------------------------------
n=$fails
run --db w.db -e 'reclab.world{name = "w", seed = 9, n_users = 80, n_items = 50, n_inter = 900, zipf = 0.913}' \
    -e 'reclab.datasets.split("w", {method = "ratio", seed = 4})' \
    -c 'train pop data=w.train' >w1.out || fail workspace.3 "first session: $(tail -3 w1.out)"
run --db w.db -c 'datasets' -c 'train pop data=w.train' >w2.out || fail workspace.3 "second session: $(tail -3 w2.out)"
grep -Eq '^w +80 users +50 items .*\(recorded' w2.out || fail workspace.3 "w not listed as recorded"
grep -E '^(valid|test)\.' w1.out >m1
grep -E '^(valid|test)\.' w2.out >m2
[ -s m1 ] && cmp -s m1 m2 || fail workspace.3 "the rebuilt world trains differently: $(diff m1 m2 | head -4)"
[ $fails -eq $n ] && ok workspace.3

# workspace.4 -------------------------------------------------------------------------------
n=$fails
if [ -n "$data" ] && [ -f "$data/redial/test_data.jsonl" ] && [ -f "$data/inspired/test.tsv" ]; then
    run --db d.db -e "local r = assert(reclab.datasets.load('$data/redial/test_data.jsonl', {format = 'redial', name = 'redial'}))
        print('R', r.kind, r.format, r.n_conversations, r.n_turns)
        local i = assert(reclab.datasets.load('$data/inspired/test.tsv', {format = 'inspired'}))
        print('I', i.name, i.kind, i.n_conversations, i.n_turns)
        print('X', reclab.datasets.load('$data/inspired/test.tsv', {format = 'tsv', name = 'bad'}))
        print('Y', reclab.datasets.load('$data/redial/valid_data.jsonl', {format = 'csv'}))" >d1.out ||
        fail workspace.4 "load: $(tail -3 d1.out)"
    grep -q '^R	dialogues	redial	1342	' d1.out || fail workspace.4 "redial: $(grep '^R' d1.out)"
    grep -q '^I	test	dialogues	99	3438' d1.out || fail workspace.4 "inspired: $(grep '^I' d1.out)"
    grep -q '^X	nil	datasets.load: .*test.tsv: INSPIRED dialogues .*, not interactions' d1.out ||
        fail workspace.4 "INSPIRED as TSV not refused: $(grep '^X' d1.out)"
    grep -q '^Y	nil	datasets.load: .*valid_data.jsonl: ReDial dialogues' d1.out ||
        fail workspace.4 "ReDial as CSV not refused: $(grep '^Y' d1.out)"
    run --db d.db -c 'datasets' -e "local c = assert(reclab.datasets.conversation('redial', 1))
        print('C', c.id, #c.turns, c.turns[1].role, c.turns[1].items[1])" -c 'train pop data=test' >d2.out
    grep -Eq '^redial +1342 conversations +[0-9]+ items +[0-9]+ turns +redial +\(recorded' d2.out ||
        fail workspace.4 "not listed after reopening: $(grep redial d2.out | head -2)"
    grep -q '^C	20001	[0-9]*	seeker	111776' d2.out || fail workspace.4 "conversation: $(grep '^C' d2.out)"
    grep -q "train pop: dataset 'test' holds dialogues, not interactions" d2.out ||
        fail workspace.4 "dialogues used as interactions: $(tail -2 d2.out)"
    [ $fails -eq $n ] && ok workspace.4
else
    echo "workspace.4: RECLAB_DATA not set, skipped"
fi

# workspace.5 -------------------------------------------------------------------------------
n=$fails
run --db r.db -c 'train pop data=demo' -c 'eval model=pop' >e.out || fail workspace.5 "eval: $(tail -3 e.out)"
if command -v sqlite3 >/dev/null 2>&1; then
    cfg=$(sqlite3 -readonly r.db "SELECT seed || ' ' || dataset || ' ' || config FROM runs WHERE name = 'eval'")
    case $cfg in "42 demo {"*'"data":"demo"'*) ;; *) fail workspace.5 "eval record: $cfg" ;; esac
    nulls=$(sqlite3 -readonly r.db "SELECT count(*) FROM runs WHERE config LIKE '%null%'")
    [ "$nulls" = 0 ] || fail workspace.5 "null in $nulls run config(s)"
else
    echo "workspace.5: no sqlite3 shell, skipped"
fi
[ $fails -eq $n ] && ok workspace.5

# workspace.6 -------------------------------------------------------------------------------
n=$fails
run --db r.db -c 'train pop data=demo' -e 'reclab.models.list()' -e '{b = {1, 2, {x = 1}}, name = "t", m = reclab.models.get("pop"), s = string.rep("x", 90)}' >p.out
grep -q 'table: 0x' p.out && fail workspace.6 "a table printed as its address: $(cat p.out)"
grep -Eq '^  \[1\] = \{name = "pop", dataset = "demo", ' p.out || fail workspace.6 "models.list: $(head -3 p.out)"
grep -q '^  name = "t"$' p.out || fail workspace.6 "name first, keys aligned: $(cat p.out)"
grep -q '^  b    = {1, 2, {... 1 entry}}$' p.out || fail workspace.6 "nested table: $(grep '  b ' p.out)"
grep -q '^  m    = Model(pop)$' p.out || fail workspace.6 "model handle: $(grep '  m ' p.out)"
grep -Eq '^  s    = "x{60}"\.\.\.$' p.out || fail workspace.6 "long string not cut: $(grep '  s ' p.out)"
out=$(run --db r.db -e '1 + 1, "two"')
[ "$out" = "2	two" ] || fail workspace.6 "scalars as print shows them: $out"
[ $fails -eq $n ] && ok workspace.6

# workspace.7 -------------------------------------------------------------------------------
n=$fails
out=$(run --db r.db -c 'set key-metric' | head -1)
[ "$out" = "key-metric test.ndcg@10 (default)" ] || fail workspace.7 "default: $out"
run --db r.db -c 'set key-metric valid.hr@20' >/dev/null || fail workspace.7 "set refused"
out=$(run --db r.db -c 'set key-metric' | head -1)
[ "$out" = "key-metric valid.hr@20" ] || fail workspace.7 "not kept: $out"
out=$(run --db r.db -c 'set key-metric ndcg')
case $out in *"bad value for 'key-metric' (SPLIT.METRIC"*) ;; *) fail workspace.7 "unchecked: $out" ;; esac
[ $fails -eq $n ] && ok workspace.7

# workspace.8 -------------------------------------------------------------------------------
n=$fails
run --db k.db -c 'train bprmf data=demo epochs=2 name=kept' -c 'recommend model=kept user=u3 k=5' >k1.out ||
    fail workspace.8 "first session: $(tail -3 k1.out)"
run --db k.db -c 'models' -c 'recommend model=kept user=u3 k=5' >k2.out ||
    fail workspace.8 "second session: $(tail -3 k2.out)"
grep -q '^kept .*saved in the store' k2.out || fail workspace.8 "not listed as kept: $(head -3 k2.out)"
grep -E "^[0-9]+ +i[0-9]+ " k1.out >k1.r
grep -E "^[0-9]+ +i[0-9]+ " k2.out >k2.r
[ "$(wc -l <k1.r)" -eq 5 ] || fail workspace.8 "expected 5 recommendation rows, got $(wc -l <k1.r)"
cmp -s k1.r k2.r || fail workspace.8 "recommendations differ after reopening: $(diff k1.r k2.r | head -4)"
out=$(run --db k.db -c "sql select r.name from artifacts a join runs r on r.id = a.run_id where a.name = 'kept'")
case $out in *"train bprmf"*) ;; *) fail workspace.8 "the checkpoint is not the training run's artifact: $out" ;; esac
# a model another kind reads by name during its training (a tokenizer) is found after reopening
if run --no-demo -c 'help train brkmeans' >/dev/null && run --no-demo -c 'help train sasrec' >/dev/null; then
    run --db k.db -c 'train brkmeans data=demo name=tok' >/dev/null || fail workspace.8 "brkmeans did not train"
    out=$(run --db k.db -c 'train sasrec data=demo semid=tok epochs=1 name=s1')
    case $out in *"model 's1' trained"*) ;; *) fail workspace.8 "semid=tok after reopening: $(echo "$out" | tail -2)" ;; esac
fi
RECLAB_KEEP_MODELS=0 run --db nk.db -c 'train bprmf data=demo epochs=2 name=gone' >/dev/null
out=$(run --db nk.db -c 'recommend model=gone user=u3 k=5')
case $out in *"model 'gone' not found"*) ;; *) fail workspace.8 "RECLAB_KEEP_MODELS=0 kept it: $out" ;; esac
[ $fails -eq $n ] && ok workspace.8

if [ $fails -gt 0 ]; then
    echo "$fails check(s) failed"
    exit 1
fi
