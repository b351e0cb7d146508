--[==[
semid_compare.lua: the must-show comparison of issue 15 for one dataset and one seed. Five
tokenizers (RQ-VAE, residual k-means, balanced residual k-means, DAS two-stage, DAS one
stage), each measured the same way:
  - per level: codebook utilisation, entropy (nats), collision before de-duplication;
  - CTR: AUC of a logistic regression with vs without the semantic IDs (semid.ctr), overall
    and on the cold-item slice (items with fewer than 5 training interactions);
  - SASRec with the tokenizer's code embeddings added to its item embeddings (seqrec
    semid=), full-ranking test HR/NDCG@10 overall and on the cold-item slice (eval cold=5),
    next to SASRec without them.
Every figure is printed as one tab-separated line "R data seed method key value" (for
plugins/semid/RESULTS.md, which aggregates seeds as mean and sd).

  reclab run lua/examples/semid_compare.lua DATA SEED [codes [tok_epochs [das_epochs
                                           [das_steps [sasrec_epochs]]]]]
  defaults: codes 32, tok_epochs 50 (RQ-VAE), das_epochs 8, das_steps 100, sasrec_epochs 10
  (0 = no SASRec). DAS two-stage trains its CF model for das_epochs x das_steps steps
  first, then the tokenizers for as many.
]==]

local reclab = require "reclab"
local data = assert(arg and arg[1], "usage: semid_compare.lua DATA SEED [...]")
local seed = tonumber(arg[2]) or 1
local codes = tonumber(arg[3]) or 32
local tok_epochs = tonumber(arg[4]) or 50
local das_epochs = tonumber(arg[5]) or 8
local das_steps = tonumber(arg[6]) or 100
local sasrec_epochs = tonumber(arg[7]) or 10
local dname = data:match("([^/]+)$"):gsub("%.txt$", "")
assert(reclab.datasets.load(data, {name = "d"}))

local function emit(method, key, value)
  print(("R\t%s\t%d\t%s\t%s\t%.6f"):format(dname, seed, method, key, value))
  io.stdout:flush()
end

local function sasrec(name, semid)
  local t0 = os.clock()
  reclab.train{"sasrec", data = "d", name = name, semid = semid, epochs = sasrec_epochs,
    seed = seed, eval_every = 0}
  local all = reclab.eval{model = name, split = "test"}
  local cold = reclab.eval{model = name, split = "test", cold = 5}
  local m = semid or "none"
  emit(m, "sasrec.hr@10", all["test.hr@10"])
  emit(m, "sasrec.ndcg@10", all["test.ndcg@10"])
  emit(m, "sasrec.cold.hr@10", cold["test.hr@10"])
  emit(m, "sasrec.cold.ndcg@10", cold["test.ndcg@10"])
  emit(m, "sasrec.cold.users", cold.users)
  emit(m, "sasrec.cpu_seconds", os.clock() - t0)
end

local methods = {
  {"rqvae", name = "rqvae", epochs = tok_epochs},
  {"rkmeans", name = "rkmeans"},
  {"brkmeans", name = "brkmeans"},
  {"das", name = "two_stage", align = "two-stage", epochs = das_epochs, steps = das_steps,
   cf_epochs = das_epochs},
  {"das", name = "das", epochs = das_epochs, steps = das_steps},
}
for _, k in ipairs(methods) do
  k.data, k.seed, k.levels, k.codes = "d", seed, 3, codes
  local t0 = os.clock()
  reclab.train(k)
  emit(k.name, "train.cpu_seconds", os.clock() - t0)
  local s = reclab.semid.stats{model = k.name}
  for _, row in ipairs(s.tables.levels) do
    emit(k.name, "util.l" .. row.level, row.util)
    emit(k.name, "entropy.l" .. row.level, row.entropy)
    emit(k.name, "collision.l" .. row.level, row.collision)
  end
  local c = reclab.semid.ctr{model = k.name, seed = seed}
  emit(k.name, "ctr.auc.id", c["auc.id"])
  emit(k.name, "ctr.auc.sid", c["auc.sid"])
  emit(k.name, "ctr.auc.id.cold", c["auc.id.cold"])
  emit(k.name, "ctr.auc.sid.cold", c["auc.sid.cold"])
  emit(k.name, "ctr.rows", c.rows)
  emit(k.name, "ctr.cold_rows", c.cold_rows)
end
-- SASRec last (the longest part): alone, then with each tokenizer's codes, DAS first
if sasrec_epochs > 0 then
  sasrec("sasrec", nil)
  for _, m in ipairs{"das", "two_stage", "rqvae", "rkmeans", "brkmeans"} do
    sasrec("sasrec_" .. m, m)
  end
end
