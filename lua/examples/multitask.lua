--[==[
multitask.lua: multi-task CTR ranking with the host's verbs. INFNet (categorical, sequence and
task tokens; proxy cross-attention; Proxy Gated Units) against MMoE, DCN-v2 and shared-bottom,
per task (AUC, GAUC, log loss on the test part, mean and sample sd over seeds).

  reclab run lua/examples/multitask.lua [epochs [data [seeds]]]
  RECLAB_DATA=../shared/data reclab run lua/examples/multitask.lua 2 ml100k 3

data: "synth" (the synthetic click -> conversion world, the default), "census" (UCI
census-income, two labels as DeepCTR's MMoE example builds them), "tiny_mtl" (FuxiCTR click +
conversion, its own test file) or "ml100k" (MovieLens-100K: click = rated vs an unrated item,
like = rating >= 4, the user's earlier ratings as the behaviour sequence); the last three need
$RECLAB_DATA. The test suite runs `... 1 synth 1` (a reduced budget).
Steps: make a dataset of samples (`load` with a tabular preset or format "ratings-mt", or
reclab.ranker.data for a train + test file pair and the synthetic world), train INFNet with the host's `train infnet` and evaluate it (`eval`: per-task
metrics, stored with the run), save it and load it back (the same AUC), then the comparison:
`train KIND` for every kind and seed, and the table of means; finally the stored test AUCs of
the train runs by SQL.
]==]

local reclab = require "reclab"
local epochs = tonumber(arg and arg[1]) or 5
local data = (arg and arg[2]) or "synth"
local seeds = tonumber(arg and arg[3]) or 3
local root = os.getenv("RECLAB_DATA")

local function need_data()
  assert(root and root ~= "", "data '" .. data .. "' needs RECLAB_DATA (the shared data folder)")
end

if data == "synth" then
  reclab.ranker.data{name = "mt", source = "synth", n = 4000, fields = 6, users = 200, seed = 1}
elseif data == "census" then
  need_data() -- a preset file alone: a host dataset with a recipe (a reopened workspace has it)
  reclab.load{root .. "/ctr/census-income.sample", format = "census", name = "mt"}
elseif data == "tiny_mtl" then
  need_data() -- a training file and a test file: ranker.data joins them
  reclab.ranker.data{name = "mt", preset = "tiny_mtl",
                     path = root .. "/ctr/fuxictr_tiny_mtl_train.csv",
                     test = root .. "/ctr/fuxictr_tiny_mtl_test.csv"}
elseif data == "ml100k" then
  need_data() -- click / like samples of the ratings, a dataset with a recipe
  reclab.load{root .. "/movielens-100k", format = "ratings-mt", name = "mt"}
else
  error("unknown data '" .. data .. "' (synth, census, tiny_mtl, ml100k)")
end

-- one INFNet with the paper's best setting (4 proxies, 2 shared task tokens), trained by the
-- host's loop: validation every epoch by the mean valid AUC, the best epoch kept
local r = reclab.train{"infnet", data = "mt", name = "infnet", epochs = epochs}
print(("infnet: test mean AUC %.4f (kept epoch %d of %d, %.1f s)"):format(r["test.auc"],
  r.best_epoch, r.epochs_run, r.seconds))
local e = reclab.eval{model = "infnet", split = "test"}
for _, row in ipairs(e.tables.metrics) do
  if row.metric:find("%.auc$") then
    local task = row.metric:gsub("%.auc$", "")
    print(("  %-12s AUC %.4f  GAUC %s  logloss %.4f"):format(task, row.test,
      e["test." .. task .. ".gauc"] and ("%.4f"):format(e["test." .. task .. ".gauc"]) or "n/a",
      e["test." .. task .. ".logloss"]))
  end
end

-- save and load: the checkpoint holds the parameters and the table's layout
local file = os.tmpname()
reclab.save{model = "infnet", file = file}
reclab.load{"model", file, name = "infnet_loaded"}
os.remove(file)
local e2 = reclab.eval{model = "infnet_loaded", data = "mt", split = "test"}
print(("saved and loaded: test mean AUC %.4f (before %.4f)"):format(e2.auc, e.auc))
assert(e2.auc == e.auc, "a loaded model gives another AUC")

-- the comparison: every kind, `seeds` seeds each, plus DCN-v2 single-task (one model per
-- label); ranker.compare runs `train KIND` through the host for each
local c = reclab.ranker.compare{data = "mt", seeds = seeds, epochs = epochs}
print(("%-14s %-12s %-17s %-17s %-17s"):format("model", "task", "AUC", "GAUC", "logloss"))
local function ms(m, s)
  if m ~= m then return "n/a" end
  if s ~= s then return ("%.4f"):format(m) end
  return ("%.4f ± %.4f"):format(m, s)
end
for _, row in ipairs(c.tables.compare) do
  print(("%-14s %-12s %-17s %-17s %-17s"):format(row.model, row.task, ms(row.auc, row.auc_sd),
    ms(row.gauc, row.gauc_sd), ms(row.logloss, row.logloss_sd)))
end

-- every train run stored its per-task test metrics: read them back from the session store
local rows = reclab.db.query(
  "SELECT r.id, r.model_kind AS kind, x.name, x.value FROM runs r JOIN metrics x ON " ..
  "x.run_id = r.id WHERE r.plugin = 'ranker' AND r.name LIKE 'train %' AND " ..
  "x.split = 'test' AND x.name LIKE '%.auc' ORDER BY r.id, x.name")
print(("%d stored per-task test AUCs of train runs"):format(#rows))
return #rows
