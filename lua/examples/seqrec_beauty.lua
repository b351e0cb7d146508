--[==[
seqrec_beauty.lua: SASRec vs MQSA-TED and its ablations on Amazon Beauty, with the official
MQSA-TED protocol (leave-one-out, full ranking over all items with the history masked, HR and
NDCG at 5/10/20, model selection by validation NDCG@20, test metrics of the selected epoch).

  reclab run lua/examples/seqrec_beauty.lua [epochs [data [seed]]]
  RECLAB_DATA=../shared/data reclab run lua/examples/seqrec_beauty.lua 200

data: a path (default $RECLAB_DATA/amazon-beauty/Beauty.txt) or "demo" (the demo world; also
the default without $RECLAB_DATA). The test suite runs `... 2 demo` (a reduced budget).
Steps: train each configuration with reclab.seqrec.train (a job with progress; each run
stores its per-epoch metrics and a seqrec_results row), then read the table back from the
session store with SQL and print it.
]==]

local reclab = require "reclab"
local epochs = tonumber(arg and arg[1]) or 200
local data = arg and arg[2]
local seed = tonumber(arg and arg[3]) or 2023
if not data or data == "" then
  local root = os.getenv("RECLAB_DATA")
  data = (root and root ~= "") and (root .. "/amazon-beauty/Beauty.txt") or "demo"
end
local patience = epochs >= 50 and 10 or 0

local configs = {
  {name = "sasrec",        model = "sasrec"},                    -- 2 blocks, batch 128, CE
  {name = "mqsa_ted",      model = "mqsa"},                      -- official defaults
  {name = "mqsa_no_ted",   model = "mqsa", ted = false},         -- ablation: without TED
  {name = "mqsa_short",    model = "mqsa", branches = "short"},  -- ablation: no L-query
}

local first_id
for _, cfg in ipairs(configs) do
  cfg.data, cfg.epochs, cfg.patience, cfg.seed = data, epochs, patience, seed
  local r = reclab.seqrec.train(cfg)
  print(("%-12s best epoch %3d  test HR@10 %.4f  NDCG@10 %.4f  (%s, %.1f s/epoch)"):format(
    cfg.name, r.best_epoch, r["test.hr@10"], r["test.ndcg@10"], r.protocol, r.epoch_seconds))
  first_id = first_id or r.run
end

-- The comparison table, from the store (one seqrec_results row per training run).
local rows = reclab.db.query(
  "SELECT name, model, best_epoch, hr5, ndcg5, hr10, ndcg10, hr20, ndcg20, protocol " ..
  "FROM seqrec_results ORDER BY id DESC LIMIT ?1", #configs)
print(("\n%-12s %-7s %5s %7s %7s %7s %7s %7s %7s  %s"):format(
  "name", "model", "epoch", "HR@5", "NDCG@5", "HR@10", "NDCG@10", "HR@20", "NDCG@20", "protocol"))
local by = {}
for i = #rows, 1, -1 do
  local t = rows[i]
  by[t.name] = t
  print(("%-12s %-7s %5d %7.4f %7.4f %7.4f %7.4f %7.4f %7.4f  %s"):format(
    t.name, t.model, t.best_epoch, t.hr5, t.ndcg5, t.hr10, t.ndcg10, t.hr20, t.ndcg20,
    t.protocol))
end
assert(#rows == #configs, "expected one seqrec_results row per run")
for _, c in ipairs(configs) do
  local t = assert(by[c.name], "missing result row " .. c.name)
  assert(t.protocol == "full", "full-ranking protocol expected")
  assert(t.ndcg10 > 0 and t.hr10 >= t.ndcg10, "implausible metrics for " .. c.name)
end
-- the models are registered in the session: recommend with the MQSA-TED one
-- (users by their id in the dataset; "#0" would name the first user by dense index)
local user = data == "demo" and "u1" or "1"
local m = reclab.seqrec.recommend{model = "mqsa_ted", user = user, k = 5}
print(("\nmqsa_ted top-5 for user %s:"):format(user))
for _, row in ipairs(m.tables.items) do
  print(("  %d. item %s (%.3f) %s"):format(row.rank, row.item, row.score, row.title or ""))
end
