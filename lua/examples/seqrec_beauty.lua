--[==[
seqrec_beauty.lua: SASRec vs MQSA-TED and its ablations on Amazon Beauty, with the official
MQSA-TED protocol (leave-one-out, full ranking over all items with the history masked, HR and
NDCG at 5/10/20, model selection by validation NDCG@20, test metrics of the selected epoch).

  reclab run lua/examples/seqrec_beauty.lua [epochs [data [seed]]]
  RECLAB_DATA=../shared/data reclab run lua/examples/seqrec_beauty.lua 200

data: a path (default $RECLAB_DATA/amazon-beauty/Beauty.txt) or "demo" (the demo world; also
the default without $RECLAB_DATA). The test suite runs `... 2 demo` (a reduced budget).
One experiment (the host's `sweep`): SASRec, and MQSA-TED with TED on/off and both branches or
only the short one (no L-query), each a `train` run storing its resolved config, per-epoch
metrics and the kept epoch's test metrics; then the comparison table against SASRec.
]==]

local reclab = require "reclab"
local epochs = tonumber(arg and arg[1]) or 200
local data = arg and arg[2]
local seed = tonumber(arg and arg[3]) or 2023
if not data or data == "" then
  local root = os.getenv("RECLAB_DATA")
  data = (root and root ~= "") and (root .. "/amazon-beauty/Beauty.txt") or "demo"
end
local name = "demo"
if data ~= "demo" then
  name = "beauty"
  assert(reclab.datasets.load(data, {name = name}))
elseif not reclab.datasets.info("demo") then
  reclab.world.demo("demo")
end

local s = reclab.sweep{"sasrec", "mqsa", data = name, epochs = epochs, seeds = seed,
                       patience = epochs >= 50 and 10 or 0,
                       ["mqsa.ted"] = {true, false}, ["mqsa.branches"] = {"both", "short"},
                       keep = true}                   -- keep the models: recommend below
local c = reclab.compare{s.experiment, baseline = "sasrec",
                         metric = "hr@5,ndcg@5,hr@10,ndcg@10,hr@20,ndcg@20"}
for _, line in ipairs(c.lines) do print(line) end

local by = {}
for _, row in ipairs(c.tables.compare) do
  by[row.config] = by[row.config] or {}
  by[row.config][row.metric] = row.mean
end
local n = 0
for config, t in pairs(by) do
  n = n + 1
  assert(t["ndcg@10"] > 0 and t["hr@10"] >= t["ndcg@10"], "implausible metrics for " .. config)
end
assert(n == 5, "expected 5 configurations, got " .. n)
assert(c.lines[2]:find("protocol: full ranking", 1, true), "full-ranking protocol expected")

-- the models are registered in the session: recommend with MQSA-TED (run 2 of the sweep:
-- ted=true branches=both); users by their id in the dataset ("#0": the first by dense index)
local model = s.experiment .. "-r2"
local user = data == "demo" and "u1" or "1"
local rec = reclab.core.recommend{model = model, user = user, k = 5}
print(("\n%s (mqsa ted=true branches=both) top-5 for user %s:"):format(model, user))
for _, row in ipairs(rec.tables.items) do
  print(("  %d. item %s (%.3f) %s"):format(row.rank, row.item, row.score, row.title or ""))
end
