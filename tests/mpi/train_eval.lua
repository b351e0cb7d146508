-- tests/mpi/train_eval.lua: run by tests/mpi/run.sh on 1 and on 2 ranks (same seed).
-- Prints "RESULT name value" lines (rank 0) that the driver compares across the two runs:
--   bpr.*   BPR-MF, data-parallel (each rank a shard of every batch): equal within a tolerance
--   sas.*   SASRec, data-parallel the same way (dense exchange of the parameter block)
--   knn.*   ItemKNN (one pass, replicated) evaluated with users sharded: equal exactly
-- and checks on 2 ranks that every rank holds the same trained model (bit-identical scores).
local mpi = reclab.mpi
local function out(name, v)
  if mpi.rank() == 0 then print(("RESULT %s %.17g"):format(name, v)) end
end

local b0 = mpi.bytes()
local b = reclab.train{"bprmf", data = "demo", name = "bpr", epochs = 3, seed = 11, dim = 32,
                       batch = 4096}
-- on 2 ranks the gradients travelled (on 1 nothing does)
assert((mpi.bytes() > b0) == (mpi.size() > 1), "bytes exchanged in training: " .. mpi.bytes() - b0)
for _, k in ipairs{"test.ndcg@10", "test.hr@10", "valid.ndcg@10"} do out("bpr." .. k, b[k]) end
local loss = mpi.rank() == 0 and reclab.runs.metrics(b.run) or nil
if loss then
  for _, m in ipairs(loss) do
    if m.split == "train" and m.name == "loss" then out("bpr.loss." .. m.step, m.value) end
  end
end

-- the replicas agree to the bit: same scores on every rank
local _, s = b.model:recommend("u17", 20)
local hi, lo = mpi.allreduce(s, "max"), mpi.allreduce(s, "min")
for i = 1, #s do assert(hi[i] == lo[i], ("rank replicas differ at score %d: %.9g vs %.9g"):format(i, hi[i], lo[i])) end

-- SASRec (tape, Adam, dense gradient exchange); dropout 0, so the shards see the masks of
-- one process (dropout masks follow tensor positions, which a shard shifts)
local b1 = mpi.bytes()
local q = reclab.train{"sasrec", data = "demo", name = "sas", epochs = 2, seed = 3, dim = 16,
                       maxlen = 20, dropout = 0, batch = 256, eval_every = 0}
assert((mpi.bytes() > b1) == (mpi.size() > 1), "SASRec gradients did not travel")
out("sas.test.ndcg@10", q["test.ndcg@10"])
out("sas.test.hr@10", q["test.hr@10"])
if mpi.rank() == 0 then
  for _, m in ipairs(reclab.runs.metrics(q.run)) do
    if m.split == "train" and m.name == "loss" then out("sas.loss." .. m.step, m.value) end
  end
end
local _, qs = q.model:recommend("u17", 10)
local qh, ql = mpi.allreduce(qs, "max"), mpi.allreduce(qs, "min")
for i = 1, #qs do assert(qh[i] == ql[i], "SASRec replicas differ at score " .. i) end

local k = reclab.train{"itemknn", data = "demo", name = "knn", seed = 11}
local e0 = mpi.bytes()
local ev = reclab.evaluate{model = k.model, data = "demo", k = {5, 10, 20}}
assert((mpi.bytes() > e0) == (mpi.size() > 1), "evaluation was not sharded")
for _, name in ipairs{"hr@5", "ndcg@10", "recall@20", "mrr@20"} do out("knn." .. name, ev[name]) end
out("knn.n_users", ev.n_users)
assert(ev.n_users > 0)
if mpi.rank() == 0 then print("ranks", mpi.size()) end
