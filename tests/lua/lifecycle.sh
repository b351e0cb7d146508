#!/bin/sh
# tests/lua/lifecycle.sh RECLAB: the host's model verbs against the real program, across
# processes. Every failure names its check id.
#   lifecycle.1  train sasrec and bprmf, save them into the store, and a NEW process gives
#                byte-identical recommendations (export of every user's top-10, full float
#                precision, and `recommend` tables)
#   lifecycle.2  one checkpoint file per model (no sidecar), loaded by `load` in a process
#                with an empty store: the same export
#   lifecycle.3  the run record holds every value resolved (seed, defaults of the kind)
#   lifecycle.4  `help train KIND` lists the kind's own fields with its own defaults
#   lifecycle.5  an unknown user is refused with the dataset's way of naming users
set -u
RECLAB=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
fails=0
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
ok() { echo "ok $1"; }
run() { "$RECLAB" -q "$@" 2>&1; }

"$RECLAB" -q --no-demo -c 'help train sasrec' >/dev/null 2>&1 || { echo "no seqrec plugin: skipped"; exit 77; }

# lifecycle.1 -------------------------------------------------------------------------------
run --db w.db -c 'train sasrec data=demo epochs=1 seed=3' -c 'train bprmf data=demo epochs=2 seed=3' \
    -c 'save model=sasrec' -c 'save model=bprmf' \
    -c 'export model=sasrec file=a_sasrec.csv' -c 'export model=bprmf file=a_bprmf.csv' \
    -c 'recommend model=sasrec user=u17 k=10' -c 'recommend model=bprmf user=u17 k=10' >first.out ||
    fail lifecycle.1 "first session failed: $(tail -3 first.out)"
run --db w.db -c 'export model=sasrec file=b_sasrec.csv' -c 'export model=bprmf file=b_bprmf.csv' \
    -c 'recommend model=sasrec user=u17 k=10' -c 'recommend model=bprmf user=u17 k=10' >second.out ||
    fail lifecycle.1 "second session failed: $(tail -3 second.out)"
for m in sasrec bprmf; do
    [ -s "a_$m.csv" ] && [ "$(wc -l <"a_$m.csv")" -gt 1000 ] || fail lifecycle.1 "no export of $m"
    cmp -s "a_$m.csv" "b_$m.csv" || fail lifecycle.1 "$m: the restored model recommends differently"
done
grep -E '^[0-9]+ +i[0-9]+ ' first.out >t1
grep -E '^[0-9]+ +i[0-9]+ ' second.out >t2
[ "$(wc -l <t1)" -eq 20 ] || fail lifecycle.1 "expected 2 x 10 recommendation rows, got $(wc -l <t1)"
cmp -s t1 t2 || fail lifecycle.1 "recommend tables differ between the sessions"
# the user's own items are never recommended: u17's history is masked
[ $fails -eq 0 ] && ok lifecycle.1

# lifecycle.2 -------------------------------------------------------------------------------
n=$fails
run --db w.db -c 'save model=bprmf file=bpr.safetensors' >save.out || fail lifecycle.2 "save: $(cat save.out)"
[ -s bpr.safetensors ] || fail lifecycle.2 "no checkpoint written"
ls | grep -q '\.json$' && fail lifecycle.2 "a sidecar file was written: $(ls)"
run --db fresh.db -c 'load file=bpr.safetensors name=bpr2' -c 'export model=bpr2 file=c_bprmf.csv' >load.out ||
    fail lifecycle.2 "load: $(tail -3 load.out)"
cmp -s a_bprmf.csv c_bprmf.csv || fail lifecycle.2 "the loaded checkpoint recommends differently"
run --db fresh.db -c 'load file=first.out' >bad.out && fail lifecycle.2 "a text file loaded as a model"
grep -q 'first.out' bad.out || fail lifecycle.2 "the error does not name the file: $(cat bad.out)"
[ $fails -eq $n ] && ok lifecycle.2

# lifecycle.3 -------------------------------------------------------------------------------
n=$fails
if command -v sqlite3 >/dev/null 2>&1; then
    cfg=$(sqlite3 -readonly w.db "SELECT seed || ' ' || config FROM runs WHERE name = 'train sasrec'")
    for want in '"seed":3' '"blocks":2' '"batch":128' '"maxlen":50' '"select":"ndcg@20"'; do
        case $cfg in
        "3 {"*"$want"*) ;;
        *) fail lifecycle.3 "run config lacks $want: $cfg" ;;
        esac
    done
    case $cfg in *null*) fail lifecycle.3 "null in the stored config: $cfg" ;; esac
else
    echo "lifecycle.3: no sqlite3 shell, skipped"
fi
[ $fails -eq $n ] && ok lifecycle.3

# lifecycle.4 -------------------------------------------------------------------------------
n=$fails
run --no-demo -c 'help train sasrec' >h.out
grep -q 'blocks=<int>.*default 2' h.out || fail lifecycle.4 "sasrec's blocks default: $(grep blocks h.out)"
run --no-demo -c 'help train mqsa' >h2.out
grep -q 'blocks=<int>.*default 1' h2.out || fail lifecycle.4 "mqsa's blocks default: $(grep blocks h2.out)"
grep -q 'seed=<int>.*default 2023' h2.out || fail lifecycle.4 "mqsa's seed default"
[ $fails -eq $n ] && ok lifecycle.4

# lifecycle.5 -------------------------------------------------------------------------------
# an unknown user: the message shows how the dataset names its users; #N picks by index
n=$fails
run --db w.db -c 'recommend model=bprmf user=17 k=3' >u.out
grep -q "user '17' is not in dataset 'demo' (its 1000 users are named like 'u0', 'u1', 'u2', ...; #N is index N)" u.out ||
    fail lifecycle.5 "unknown user message: $(tail -1 u.out)"
run --db w.db -c 'recommend model=bprmf user=#17 k=3' >u2.out || fail lifecycle.5 "user=#17: $(tail -1 u2.out)"
[ $fails -eq $n ] && ok lifecycle.5

if [ $fails -gt 0 ]; then
    echo "$fails check(s) failed"
    exit 1
fi
