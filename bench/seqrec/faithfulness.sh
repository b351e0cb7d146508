#!/bin/sh
# bench/seqrec/faithfulness.sh OUT [SEEDS] [DATASETS] [MAX_EPOCHS]
# The issue-6 faithfulness runs: for every dataset and seed, MQSA-TED (official defaults),
# SASRec (same CE loss), MQSA-TED without TED, MQSA-TED short-query only; the same budget for
# all (at most MAX_EPOCHS epochs, early stopping with patience 10 on valid NDCG@20, test
# metrics of the selected epoch, full ranking). One BLAS thread per run. Each run writes
# OUT/<data>_<config>_s<seed>.log, whose last line is a JSON summary; finished runs are
# skipped, so the script can be re-run to continue. Run from the repository root after a build.
# Prints OUT/summary.txt (one line per finished run) and a mean ± sd table per configuration.
#   bench/seqrec/faithfulness.sh runs "1 2 3" "beauty ml100k video" 200
set -eu
out=${1:?usage: faithfulness.sh OUT [SEEDS] [DATASETS] [MAX_EPOCHS]}
seeds=${2:-"1 2 3"}
sets=${3:-"ml100k beauty video"}
max=${4:-200}
: "${RECLAB_DATA:=../shared/data}"
bin=$(pwd)/build/bench/seqrec_run
[ -x "$bin" ] || { echo "build first: $bin is missing" >&2; exit 2; }
mkdir -p "$out"
export OMP_WAIT_POLICY=passive OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
path_of() {
  case $1 in
    beauty) echo "$RECLAB_DATA/amazon-beauty/Beauty.txt" ;;
    ml100k) echo "$RECLAB_DATA/movielens-100k/ml-100k.sasrec.txt" ;;
    video) echo "$RECLAB_DATA/sasrec-video/Video.txt" ;;
    *) echo "unknown dataset $1" >&2; exit 2 ;;
  esac
}
run() {
  tag=$1; shift
  log="$out/$tag.log"
  if [ -s "$log" ] && grep -q '^{' "$log"; then return 0; fi
  echo "== $tag"
  "$bin" "$@" epochs="$max" patience=10 threads=1 > "$log" 2>&1 || echo "run $tag failed (see $log)"
}
for seed in $seeds; do
  for d in $sets; do
    p=$(path_of "$d")
    run "${d}_mqsa_s$seed" model=mqsa data="$p" seed="$seed"
    run "${d}_sasrec_s$seed" model=sasrec data="$p" seed="$seed"
    run "${d}_mqsa_noted_s$seed" model=mqsa data="$p" ted=off seed="$seed"
    run "${d}_mqsa_short_s$seed" model=mqsa data="$p" branches=short seed="$seed"
  done
done
# summary: one line per run, the selected epoch's test metrics
for f in "$out"/*.log; do
  j=$(grep '^{' "$f" | tail -n 1 || true)
  [ -n "$j" ] || continue # unfinished run
  printf '%s %s\n' "$(basename "$f" .log)" \
    "$(echo "$j" | sed -n 's/.*"test": {\([^}]*\)}.*/\1/p')"
done > "$out/summary.txt"
cat "$out/summary.txt"
# and per configuration (the tag without _s<seed>): mean ± sample sd over the seeds
echo
echo "| run | seeds | test HR@10 | test NDCG@10 | test HR@20 | test NDCG@20 |"
echo "|---|---|---|---|---|---|"
sed 's/_s\([0-9]*\) / /; s/"//g; s/[a-z]*@[0-9]*: //g; s/,//g' "$out/summary.txt" | awk '
  { k = $1; n[k]++; if (!(k in ord)) { ord[k] = ++nk; key[nk] = k }
    # fields after the tag: hr@5 hr@10 hr@20 ndcg@5 ndcg@10 ndcg@20
    for (i = 2; i <= 7; i++) { s[k, i] += $i; q[k, i] += $i * $i } }
  function ms(k, i,   m, v) {
    m = s[k, i] / n[k]; v = n[k] > 1 ? (q[k, i] - n[k] * m * m) / (n[k] - 1) : 0
    return n[k] > 1 ? sprintf("%.4f ± %.4f", m, sqrt(v > 0 ? v : 0)) : sprintf("%.4f", m) }
  END { for (j = 1; j <= nk; j++) { k = key[j]
    printf "| %s | %d | %s | %s | %s | %s |\n", k, n[k], ms(k, 3), ms(k, 6), ms(k, 4), ms(k, 7) } }'

