#!/bin/sh
# plugins/ranker/experiments.sh: the comparison tables of RESULTS.md. Usage, from the
# repository root after a build:  plugins/ranker/experiments.sh OUTDIR [DATASET...]
# (datasets: census tiny_mtl criteo criteo_sample avazu synth ml100k; default all). Each
# writes OUTDIR/<dataset>.txt: the log of `ranker.compare` (3 seeds, INFNet, MMoE, DCN-v2
# multi-task, shared-bottom, DCN-v2 single-task), test metrics mean +- sample sd.
# The data: a preset file through the host's `load PATH format=PRESET` (a dataset with a
# recipe, default parts 70/10/20, split seed 0), ML-100K as click/like samples through
# `load PATH format=ratings-mt` (the same table as `ranker.data source=ratings negatives=1
# seed=1`); tiny_mtl (a train and a test file) and the synthetic world through ranker.data. Every model is trained by the
# host's `train KIND` (ranker.compare calls it per kind and seed: one run each in OUTDIR/*.db).
set -e
out=${1:?usage: experiments.sh OUTDIR [DATASET...]}
shift
D=${RECLAB_DATA:-../shared/data}
R=$(pwd)/build/reclab
mkdir -p "$out"
[ $# -gt 0 ] || set -- census tiny_mtl criteo criteo_sample avazu synth ml100k
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
run() { # name, then reclab -c lines
    n=$1; shift
    ( cd "$out" && rm -f "$n.db" && nice "$R" -q --no-demo --db "$n.db" "$@" ) > "$out/$n.txt" 2>&1
}
small="seeds=3 epochs=20 batch=32 patience=5"
for ds in "$@"; do
    case $ds in
    census) run census -c "load $D/ctr/census-income.sample format=census name=d" \
                -c "ranker.compare data=d $small" ;;
    tiny_mtl) run tiny_mtl -c "ranker.data name=d preset=tiny_mtl path=$D/ctr/fuxictr_tiny_mtl_train.csv test=$D/ctr/fuxictr_tiny_mtl_test.csv" \
                -c "ranker.compare data=d $small" ;;
    criteo) run criteo -c "load $D/ctr/criteo_dac_head999.txt format=criteo name=d" \
                -c "ranker.compare data=d $small single_task=false" ;;
    criteo_sample) run criteo_sample -c "load $D/ctr/criteo_sample.txt format=criteo_sample name=d" \
                -c "ranker.compare data=d $small single_task=false" ;;
    avazu) run avazu -c "load $D/ctr/avazu_sample.txt format=avazu name=d" \
                -c "ranker.compare data=d $small single_task=false" ;;
    synth) run synth -c "ranker.data name=d source=synth n=10000 fields=8 users=500 seed=1" \
                -c "ranker.compare data=d seeds=3 epochs=3 batch=256 patience=1" ;;
    ml100k) run ml100k -c "load $D/movielens-100k format=ratings-mt name=d" \
                -c "ranker.compare data=d seeds=3 epochs=1 batch=256" ;;
    *) echo "unknown dataset $ds" >&2; exit 2 ;;
    esac
    echo "$ds done"
done
