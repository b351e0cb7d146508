#!/bin/sh
# tests/ranker/reopen.sh RECLAB: datasets made by ranker.data have recipes. A first process
# makes one from a file with a column mapping (sep=; header), one from a train file + a test
# file, one from a small rated dataset with non-default options (source=ratings), one
# synthetic world (non-default sizes and seeds) and one from a RecBole file's label columns
# (source=labels), trains a model on each, saves it and
# evaluates it; the program quits. A NEW process on the same workspace evaluates the same
# models (each dataset rebuilt from its recorded recipe) and must print the same test
# metrics. A file changed since is refused naming it, also a parent dataset's file.
# Hand-made files (no data needed).
# Every failure names its check id.
set -u
RECLAB=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
fails=0
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
run() { OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=passive "$RECLAB" -q --no-demo "$@" 2>&1; }
"$RECLAB" -q --no-demo -c 'help ranker.data' >/dev/null 2>&1 || { echo "no ranker plugin: skipped"; exit 77; }

# a CTR file (';'-separated, a header): two labels, a group, two token columns, a number;
# the labels depend on the tokens so the models learn something
awk 'BEGIN { s = 7; print "click;buy;uid;c_a;c_b;x";
  for (i = 0; i < 500; i++) { s = (s * 1103515245 + 12345) % 2147483648; a = s % 7;
    s = (s * 1103515245 + 12345) % 2147483648; b = s % 5; s = (s * 1103515245 + 12345) % 2147483648;
    c = (a + b + s % 3 > 6) ? 1 : 0; y = (c && a > 3) ? 1 : 0;
    printf "%d;%d;u%d;a%d;b%d;%.3f\n", c, y, i % 40, a, b, (s % 1000) / 1000.0 } }' >f.csv
head -401 f.csv >tr.csv
{ head -1 f.csv; tail -100 f.csv; } >te.csv
# rated interactions: 60 users, 12 ratings each over 40 items, with times
awk 'BEGIN { s = 3; print "user,item,rating,timestamp";
  for (u = 1; u <= 60; u++) for (k = 0; k < 12; k++) { s = (s * 1103515245 + 12345) % 2147483648;
    printf "%d,%d,%d,%d\n", u, (u * 7 + k * 3) % 40 + 1, s % 5 + 1, 1000 + u * 20 + k } }' >ratings.csv
# a RecBole .inter file with its own label columns (source=labels)
awk 'BEGIN { s = 5; print "user_id:token\titem_id:token\tclick:float\tbuy:float\ttimestamp:float";
  for (u = 1; u <= 50; u++) for (k = 0; k < 10; k++) { s = (s * 1103515245 + 12345) % 2147483648;
    c = (s % 3 == 0) ? 1 : 0;
    printf "%d\t%d\t%d\t%d\t%d\n", u, (u * 5 + k * 3) % 30 + 1, c, (c && (u + k) % 2) ? 1 : 0, 2000 + u * 20 + k } }' >lab.inter
MAP='click:label, buy:label, uid:group, c_*:cat, x:num'
TR='epochs=4 lr=0.01 dim=4 hidden=8 batch=32 seed=3'

# reopen.1 ----------------------------------------------------------------------------------
run --db w.db -c 'load ratings.csv name=r' -c 'load lab.inter name=li' \
    -c "ranker.data name=f path=f.csv sep=; map=\"$MAP\" split_seed=5" \
    -c "ranker.data name=p path=tr.csv test=te.csv sep=; map=\"$MAP\" valid=0.2" \
    -c 'ranker.data name=rt source=ratings dataset=r negatives=2 like_min=3 max_hist=5 seed=7' \
    -c 'ranker.data name=sy source=synth n=600 fields=3 users=40 seed=4 split_seed=2' \
    -c 'ranker.data name=lt source=labels dataset=li split_seed=3' -c "train sharedbottom data=lt name=ml $TR" \
    -c "train sharedbottom data=f name=mf $TR" -c "train mmoe data=p name=mp $TR" \
    -c "train sharedbottom data=rt name=mr $TR" -c "train dcnv2 data=sy name=ms $TR" \
    -c 'save model=mf' -c 'save model=mp' -c 'save model=mr' -c 'save model=ms' -c 'save model=ml' \
    -c 'eval model=mf' -c 'eval model=mp' -c 'eval model=mr' -c 'eval model=ms' -c 'eval model=ml' >first.out ||
    fail reopen.1 "first session failed: $(tail -3 first.out)"
run --db w.db -c 'datasets' -c 'eval model=mf' -c 'eval model=mp' -c 'eval model=mr' \
    -c 'eval model=ms' -c 'eval model=ml' >second.out ||
    fail reopen.1 "eval after the reopen failed: $(tail -3 second.out)"
grep -E '^m[fprsl] on [a-z]+, test \(' first.out >e1
grep -E '^m[fprsl] on [a-z]+, test \(' second.out >e2
[ "$(wc -l <e1)" -eq 10 ] || fail reopen.1 "expected 10 eval lines (5 models, 2 tasks each), got: $(cat e1; tail -5 first.out)"
grep -q 'auc 0\.[0-9]' e1 || fail reopen.1 "no AUC in the eval lines: $(cat e1)"
cmp -s e1 e2 || fail reopen.1 "the reopened workspace evaluates differently: $(diff e1 e2)"
for d in f p rt sy lt; do
    grep -qE "^$d +samples" second.out || fail reopen.1 "datasets does not list '$d' after the reopen"
done
[ $fails -eq 0 ] && echo "ok reopen.1" && cat e2

# reopen.2 ----------------------------------------------------------------------------------
n=$fails
echo '1;1;u1;a6;b4;0.5' >>f.csv
run --db w.db -c 'eval model=mf' >third.out && fail reopen.2 "a changed file was used"
grep -q 'f.csv changed since the dataset was made' third.out ||
    fail reopen.2 "the error does not say which file changed: $(tail -2 third.out)"
[ $fails -eq $n ] && echo "ok reopen.2"

# reopen.3: a parent's file changed (source=ratings): the reason names that file ---------------
n=$fails
echo '61,1,5,9999' >>ratings.csv
run --db w.db -c 'eval model=mr' >fourth.out && fail reopen.3 "a changed parent file was used"
grep -q "its dataset 'r' is not available (.*ratings.csv changed" fourth.out ||
    fail reopen.3 "the error does not say which parent file changed: $(tail -2 fourth.out)"
[ $fails -eq $n ] && echo "ok reopen.3"
# under the sanitizers, also the runs that fail on purpose must not report a leak or UB
if grep -lE 'ERROR: [A-Za-z]+Sanitizer|runtime error:' ./*.out >/dev/null 2>&1; then
    fail reopen.san "a sanitizer report in $(grep -lE 'ERROR: [A-Za-z]+Sanitizer|runtime error:' ./*.out)"
fi
exit $((fails > 0))
