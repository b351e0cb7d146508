#!/bin/sh
# tests/crs/reopen.sh RECLAB: issue 18's reopen through the real program and `--db`: a catalogue
# made by crs.prepare, a unicrs model trained and saved; the program quits; a NEW process on the
# same workspace runs crs.eval (the catalogue rebuilt from its recorded recipe) and gets the same
# table and the same rank for every scored instance. A movie file changed since is refused with
# the reason. Hand-made ReDial fixtures (no data needed). Every failure names its check id.
set -u
RECLAB=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
fails=0
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
run() { OPENBLAS_NUM_THREADS=1 "$RECLAB" -q --no-demo "$@" 2>&1; }
"$RECLAB" -q --no-demo -c 'help crs.prepare' >/dev/null 2>&1 || { echo "no crs plugin: skipped"; exit 77; }

M='"movieMentions": {"101": "Comedy One (1999)", "102": "Comedy Two (2000)", "103": "Third Film (1985)", "104": "Scary Movie Four (2001)", "105": "Fifth (1995)"}, "initiatorQuestions": {}, "respondentQuestions": {}'
msg() { printf '{"timeOffset": %s, "text": "%s", "senderWorkerId": %s, "messageId": %s}' "$3" "$1" "$2" "$3"; }
{
    printf '{"conversationId": "1", "initiatorWorkerId": 10, "respondentWorkerId": 20, "messages": [%s, %s, %s, %s], %s}\n' \
        "$(msg 'Hi, I like comedies like @101' 10 1)" "$(msg 'You should watch @102' 20 2)" \
        "$(msg 'I saw @102 already, I liked @103' 10 3)" "$(msg 'Then try @103' 20 4)" "$M"
    printf '{"conversationId": "2", "initiatorWorkerId": 11, "respondentWorkerId": 21, "messages": [%s, %s, %s, %s], %s}\n' \
        "$(msg 'Any horror?' 11 5)" "$(msg '@104 is scary' 21 6)" "$(msg 'thanks' 11 7)" \
        "$(msg 'Or @104 again' 21 8)" "$M"
} >tr.jsonl
printf '{"conversationId": "3", "initiatorWorkerId": 12, "respondentWorkerId": 22, "messages": [%s, %s, %s, %s], %s}\n' \
    "$(msg 'I loved @101 and @105' 12 9)" "$(msg 'Have you seen @105 ? or @104' 22 10)" \
    "$(msg 'no' 12 11)" "$(msg 'How about @101 ?' 22 12)" "$M" >te.jsonl
printf '1;Comedy One (1999);Comedy\n2;Comedy Two, The (2000);Comedy|Romance\n3;Scary Movie Four (2001);Horror\n' >m.dat

# reopen.1 ----------------------------------------------------------------------------------
run --db w.db -c 'load tr.jsonl name=tr' -c 'load te.jsonl name=te' \
    -c 'crs.prepare dialogues=tr catalog=te movies=m.dat name=cat' \
    -c 'train unicrs data=cat epochs=2 dim=16 ctx_len=12 buckets=512 batch=2 n_prefix=2 seed=5' \
    -c 'save model=unicrs' -c 'crs.eval model=unicrs data=te' >first.out ||
    fail reopen.1 "first session failed: $(tail -3 first.out)"
run --db w.db -c 'crs.eval model=unicrs data=te' >second.out ||
    fail reopen.1 "crs.eval after the reopen failed: $(tail -3 second.out)"
grep -E '^(unicrs|repeat|repeat\+pop) +with(out)? repeats +[0-9]' first.out >t1
grep -E '^(unicrs|repeat|repeat\+pop) +with(out)? repeats +[0-9]' second.out >t2
[ "$(wc -l <t1)" -eq 6 ] || fail reopen.1 "expected 6 recall rows, got $(wc -l <t1)"
cmp -s t1 t2 || fail reopen.1 "the reopened workspace scores differently: $(diff t1 t2)"
run --db w.db -c "sql SELECT group_concat(json_extract(extra, '\$.rank') || '/' || json_extract(extra, '\$.rank_norep'), ',') AS r FROM dialogues GROUP BY run_id ORDER BY run_id" >ranks.out
n=$(grep -cE '^[0-9/,]+ *$' ranks.out)
[ "$n" -eq 2 ] || fail reopen.1 "expected the ranks of 2 eval runs, got: $(cat ranks.out)"
[ "$(grep -E '^[0-9/,]+ *$' ranks.out | sort -u | wc -l)" -eq 1 ] ||
    fail reopen.1 "the instances rank differently after the reopen: $(cat ranks.out)"
[ $fails -eq 0 ] && echo "ok reopen.1"

# reopen.2 ----------------------------------------------------------------------------------
n=$fails
echo '4;Another (1990);Drama' >>m.dat
run --db w.db -c 'crs.eval model=unicrs data=te' >third.out && fail reopen.2 "a changed movie file was used"
grep -q 'm.dat changed since the catalogue was made' third.out ||
    fail reopen.2 "the error does not say which file changed: $(tail -2 third.out)"
[ $fails -eq $n ] && echo "ok reopen.2"
exit $((fails > 0))
