--[==[
semantic_ids.lua: semantic IDs of items from their content, five tokenizers side by side
(plugins/semid): residual k-means, OneRec's balanced residual k-means, RQ-VAE, and DAS
(dual user/item RQ-VAEs aligned with a debiased CF two-tower) in one stage and as the
two-stage baseline, each with a de-duplication digit (TIGER), the per-level statistics of
each (utilisation, entropy, perplexity, collision rate before de-duplication, reconstruction
error), the downstream CTR AUC with and without the IDs (semid.ctr), and SASRec with the
DAS code embeddings added to its item embeddings (seqrec's semid= option).

  reclab run lua/examples/semantic_ids.lua [epochs [data [seed [codes]]]]
  RECLAB_DATA=../shared/data reclab run lua/examples/semantic_ids.lua 100

data: a path (default $RECLAB_DATA/movielens-100k: genres + title words) or "demo" (the demo
world's item genres and titles; also the default without $RECLAB_DATA). epochs: RQ-VAE
training epochs (the k-means kinds are one pass; DAS: as many epochs of 10 steps; CTR: up to
5 SGD epochs; SASRec: 1 epoch, d 32, maxlen 20). The test suite runs `... 3` on a reduced
budget. Items are the dataset's; content vectors are core/data's rlab_item_content.
]==]

local reclab = require "reclab"
local epochs = tonumber(arg and arg[1]) or 100
local data = arg and arg[2]
local seed = tonumber(arg and arg[3]) or 2025
local codes = tonumber(arg and arg[4]) or 32
if not data or data == "" then
  local root = os.getenv("RECLAB_DATA")
  data = (root and root ~= "") and (root .. "/movielens-100k") or "demo"
end
local name = "demo"
if data ~= "demo" then
  name = "items"
  assert(reclab.datasets.load(data, {name = name}))
elseif not reclab.datasets.info("demo") then
  reclab.world.demo("demo")
end

local kinds = {
  {"rkmeans"},
  {"brkmeans"},
  {"rqvae", epochs = epochs},
  {"das", name = "das2", align = "two-stage", epochs = epochs, steps = 10},
  {"das", epochs = epochs, steps = 10},
}
print(("%-9s %5s %5s %7s %8s %6s %9s %9s"):format(
  "kind", "level", "used", "util", "entropy", "perpl", "collision", "recon"))
for _, k in ipairs(kinds) do
  k.data, k.seed, k.levels, k.codes = name, seed, 3, codes
  local r = reclab.train(k)
  local mname = k.name or k[1]
  local s = reclab.semid.stats{model = mname}
  for _, row in ipairs(s.tables.levels) do
    print(("%-9s %5d %5d %7.3f %8.3f %6.1f %9.4f %9.5f"):format(mname, row.level, row.used,
      row.util, row.entropy, row.perplexity, row.collision, row.recon))
    assert(row.used >= 1 and row.used <= codes and row.util <= 1, "implausible utilisation")
  end
  -- the IDs as a table: every (codes, dedup) tuple is unique
  local ids = reclab.semid.export{model = mname}
  local seen, n = {}, 0
  for _, row in ipairs(ids.tables.ids) do
    local key = ("%d,%d,%d,%d"):format(row.l1, row.l2, row.l3, row.dedup)
    assert(not seen[key], "duplicate semantic ID " .. key)
    seen[key], n = true, n + 1
  end
  print(("%-9s %d items, largest dedup digit %d; as a recommender (shared code prefixes): " ..
    "test HR@10 %.4f NDCG@10 %.4f"):format(mname, n, s.max_dedup, r["test.hr@10"] or 0,
    r["test.ndcg@10"] or 0))
  -- downstream: CTR AUC of a logistic regression with vs without the IDs as features
  local c = reclab.semid.ctr{model = mname, epochs = math.min(epochs, 5)}
  assert(c["auc.id"] > 0 and c["auc.id"] < 1 and c["auc.sid"] > 0 and c["auc.sid"] < 1)
  print(("%-9s CTR AUC (%s): ids %.4f, ids + semantic IDs %.4f; cold items (%d rows): " ..
    "%.4f, %.4f"):format(mname, c.labels, c["auc.id"], c["auc.sid"], c.cold_rows,
    c["auc.id.cold"], c["auc.sid.cold"]))
end
-- DAS also quantises the users
local st = reclab.semid.export{model = "das"}
assert(#st.tables.ids > 0)
-- SASRec with the DAS code embeddings added to its item embeddings, overall and on the
-- cold-item slice (test items with fewer than 5 training interactions)
local ok, msg = pcall(reclab.train, {"sasrec", data = name, name = "sasrec_das", semid = "das",
  epochs = 1, seed = seed, eval_every = 0, dim = 32, maxlen = 20})
if ok then
  local all = reclab.eval{model = "sasrec_das", split = "test"}
  local cold = reclab.eval{model = "sasrec_das", split = "test", cold = 5}
  print(("sasrec+das  test HR@10 %.4f NDCG@10 %.4f; cold items (%d users) HR@10 %.4f " ..
    "NDCG@10 %.4f"):format(all["test.hr@10"], all["test.ndcg@10"], cold.users,
    cold["test.hr@10"], cold["test.ndcg@10"]))
else -- without the seqrec plugin
  assert(tostring(msg):find("sasrec"), msg)
  print("sasrec+das  skipped: " .. tostring(msg))
end
-- CSV export of the balanced IDs
local path = os.tmpname()
reclab.semid.export{model = "brkmeans", file = path}
local f = assert(io.open(path))
local header = f:read("l")
f:close()
os.remove(path)
assert(header == "item,l1,l2,l3,dedup", "unexpected CSV header " .. tostring(header))
