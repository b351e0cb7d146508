#!/bin/sh
# bench/run mpi [reps] [epochs] [batch] [agents] [rounds]: MPI scaling on this machine.
# Runs bench/mpi/bench.lua on 1 and on 2 ranks, interleaved (1 2 1 2 ... reps times; the
# machine is shared, so ratios from one interleaved run are what counts), and prints JSON lines:
# per-epoch training time of data-parallel BPR-MF and SASRec, per-round simulation time (agents
# partitioned: sim_*, and replicated with the decisions shared out: simrep_*), full-ranking
# evaluation time, each at 1 and 2 ranks (best of reps) with the parallel efficiency
# T1 / (2 * T2), SASRec with the gradient exchange overlapped with the backward (sas_*, the
# default) and without (sasnoov_*, alternated in one process; sas_overlap_speedup = their time
# ratio at 2 ranks; *_cpu_* = rank 0's CPU seconds, steadier than wall time on a loaded
# machine; the efficiency of a cpu metric is T1 / (2 T2) of CPU seconds too), the bytes each rank sends per training step and per simulation round (and the
# gather of every agent at the end of a step call, sim_sync_bytes), and the
# load average. Data: MovieLens-100K from $RECLAB_DATA, else the demo world.
set -eu
reps=${1:-2}; epochs=${2:-3}; batch=${3:-1024}; agents=${4:-300}; rounds=${5:-4}
command -v mpirun >/dev/null || { echo '{"bench":"mpi","error":"mpirun not found"}'; exit 0; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
R=$(pwd)/build/reclab
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
for i in $(seq "$reps"); do
  for np in 1 2; do
    d="$W/$np.$i"; mkdir -p "$d"
    (cd "$d" && mpirun --oversubscribe -x OPENBLAS_NUM_THREADS -x RECLAB_DATA -np "$np" "$R" -q --db r.db \
      run "$OLDPWD/bench/mpi/bench.lua" "$epochs" "$batch" "$agents" "$rounds") > "$d/out" 2>&1 ||
      { cat "$d/out" >&2; exit 1; }
  done
done
load=$(cut -d' ' -f1 /proc/loadavg)
cat "$W"/*/out | grep '^[MD] ' > /dev/null
awk -v load="$load" -v reps="$reps" -v batch="$batch" -v agents="$agents" '
  FNR == 1 { split(FILENAME, p, "/"); split(p[length(p) - 1], q, "."); np = q[1] }
  $1 == "D" { data = $2 }
  $1 == "M" { k = $2 SUBSEP np; if (!(k in best) || ($2 ~ /_s/ && $3 < best[k])) best[k] = $3 }
  function line(metric, v, unit, base) {
    printf "{\"bench\": \"mpi\", \"metric\": \"%s\", \"value\": %.6g, \"unit\": \"%s\", \"baseline\": %s, \"data\": \"%s\", \"load_avg\": %s, \"reps\": %d}\n", metric, v, unit, base, data, load, reps }
  END {
    split("train_s_per_epoch sas_s_per_epoch sasnoov_s_per_epoch sas_cpu_s_per_epoch sasnoov_cpu_s_per_epoch sim_s_per_round sim_cpu_s_per_round simrep_s_per_round simrep_cpu_s_per_round eval_s", ts, " ")
    for (i = 1; i <= 10; i++) {
      t1 = best[ts[i] SUBSEP 1]; t2 = best[ts[i] SUBSEP 2]
      line(ts[i] "@1", t1, "s", "null"); line(ts[i] "@2", t2, "s", "null")
      line(ts[i] ".efficiency@2", t1 / (2 * t2), "ratio", 1)
    }
    line("train_bytes_per_step@2", best["train_bytes_per_step" SUBSEP 2], "bytes/rank", "null")
    line("train_steps_per_epoch", best["train_steps_per_epoch" SUBSEP 2], "steps", "null")
    line("train_wait_s_per_epoch@2", best["train_wait_s_per_epoch" SUBSEP 2], "s", "null")
    line("sas_bytes_per_step@2", best["sas_bytes_per_step" SUBSEP 2], "bytes/rank", "null")
    line("sas_steps_per_epoch", best["sas_steps_per_epoch" SUBSEP 2], "steps", "null")
    line("sas_wait_s_per_epoch@2", best["sas_wait_s_per_epoch" SUBSEP 2], "s", "null")
    line("sasnoov_wait_s_per_epoch@2", best["sasnoov_wait_s_per_epoch" SUBSEP 2], "s", "null")
    line("sas_overlap_speedup@2", best["sasnoov_s_per_epoch" SUBSEP 2] / best["sas_s_per_epoch" SUBSEP 2], "ratio", 1)
    line("sas_overlap_cpu_ratio@2", best["sasnoov_cpu_s_per_epoch" SUBSEP 2] / best["sas_cpu_s_per_epoch" SUBSEP 2], "ratio", 1)
    line("sim_bytes_per_round@2", best["sim_bytes_per_round" SUBSEP 2], "bytes/rank", "null")
    line("sim_sync_bytes@2", best["sim_sync_bytes" SUBSEP 2], "bytes/rank", "null")
    line("simrep_bytes_per_round@2", best["simrep_bytes_per_round" SUBSEP 2], "bytes/rank", "null")
    line("eval_bytes@2", best["eval_bytes" SUBSEP 2], "bytes/rank", "null")
    line("batch", batch, "positives", "null"); line("sim_agents", agents, "agents", "null")
  }' $(ls "$W"/*/out)
