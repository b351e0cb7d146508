--[==[
seqrec_beauty.lua: SASRec vs MQSA-TED and its ablations on Amazon Beauty, with the official
MQSA-TED protocol (leave-one-out, full ranking over all items with the history masked, HR and
NDCG at 5/10/20, model selection by validation NDCG@20, test metrics of the selected epoch).

  reclab run lua/examples/seqrec_beauty.lua [epochs [data [seed]]]
  RECLAB_DATA=../shared/data reclab run lua/examples/seqrec_beauty.lua 200

data: a path (default $RECLAB_DATA/amazon-beauty/Beauty.txt) or "demo" (the demo world; also
the default without $RECLAB_DATA). The test suite runs `... 2 demo` (a reduced budget).
Steps: load the data, train each configuration with reclab.train{"mqsa", ...} (the host's
train verb on the plugin's model kinds: each run stores its resolved config, per-epoch
metrics and the kept epoch's test metrics), then read the table back from the session store
with SQL and print it.
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
local name = "demo"
if data ~= "demo" then
  name = "beauty"
  assert(reclab.datasets.load(data, {name = name}))
elseif not reclab.datasets.info("demo") then
  reclab.world.demo("demo")
end

local configs = {
  {"sasrec", name = "sasrec"},                          -- 2 blocks, batch 128, CE
  {"mqsa",   name = "mqsa_ted"},                        -- official defaults
  {"mqsa",   name = "mqsa_no_ted", ted = false},        -- ablation: without TED
  {"mqsa",   name = "mqsa_short", branches = "short"},  -- ablation: no L-query
}

local ids = {}
for _, cfg in ipairs(configs) do
  cfg.data, cfg.epochs, cfg.patience, cfg.seed = name, epochs, patience, seed
  local r = reclab.train(cfg)
  print(("%-12s best epoch %3d  test HR@10 %.4f  NDCG@10 %.4f  (%s, %.1f s/epoch)"):format(
    cfg.name, r.best_epoch, r["test.hr@10"], r["test.ndcg@10"], r.protocol, r.epoch_seconds))
  ids[#ids + 1] = r.run
end

-- The comparison table, from the store: the test metrics each run kept.
local function m(n) return ("(SELECT value FROM metrics x WHERE x.run_id = r.id AND " ..
  "x.split = 'test' AND x.name = '%s')"):format(n) end
local rows = reclab.db.query(
  "SELECT json_extract(r.config, '$.name') AS name, r.model_kind AS model, " ..
  "(SELECT max(step) FROM metrics x WHERE x.run_id = r.id AND x.split = 'test') AS best_epoch, " ..
  m("hr@5") .. " AS hr5, " .. m("ndcg@5") .. " AS ndcg5, " .. m("hr@10") .. " AS hr10, " ..
  m("ndcg@10") .. " AS ndcg10, " .. m("hr@20") .. " AS hr20, " .. m("ndcg@20") .. " AS ndcg20, " ..
  "(SELECT protocol FROM metrics x WHERE x.run_id = r.id AND x.split = 'test' LIMIT 1) " ..
  "AS protocol FROM runs r WHERE r.id >= ?1 AND r.plugin = 'seqrec' ORDER BY r.id DESC " ..
  "LIMIT ?2", ids[1], #configs)
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
assert(#rows == #configs, "expected one finished run per configuration")
for _, c in ipairs(configs) do
  local t = assert(by[c.name], "missing result row " .. c.name)
  assert(t.protocol == "full", "full-ranking protocol expected")
  assert(t.ndcg10 > 0 and t.hr10 >= t.ndcg10, "implausible metrics for " .. c.name)
end
-- the models are registered in the session: recommend with the MQSA-TED one
-- (users by their id in the dataset; "#0" would name the first user by dense index)
local user = data == "demo" and "u1" or "1"
local rec = reclab.core.recommend{model = "mqsa_ted", user = user, k = 5}
print(("\nmqsa_ted top-5 for user %s:"):format(user))
for _, row in ipairs(rec.tables.items) do
  print(("  %d. item %s (%.3f) %s"):format(row.rank, row.item, row.score, row.title or ""))
end
