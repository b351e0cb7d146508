--[[
compare_baselines.lua: Pop vs ItemKNN vs BPR-MF, full-ranking, leave-one-out.

  reclab run lua/examples/compare_baselines.lua [epochs]
  RECLAB_DATA=../shared/data reclab run lua/examples/compare_baselines.lua

With $RECLAB_DATA set it uses MovieLens-100K ($RECLAB_DATA/movielens-100k/u.data);
otherwise the built-in demo world. Steps:
  1. load the data (or take the demo world),
  2. look at its leave-one-out split: per user the last item is the test target, the
     second-last the validation target, the rest is training data (the host's data view
     makes the same split for training and evaluation),
  3. train Pop, ItemKNN and BPR-MF (model kinds of the baselines plugin; the host's `train`
     verb runs them all the same way),
  4. rank every test target against ALL items the user has not seen (full ranking, no
     sampled negatives) and store HR@10 / NDCG@10 as metrics of an `eval` run,
  5. read the comparison back from the session store with SQL and print it,
  6. check the expected order: BPR-MF and ItemKNN must beat Pop.
Optional argument: BPR-MF epochs (default 40; the test suite passes fewer for speed).
]]

local reclab = require "reclab"      -- already loaded inside `reclab run`; needed in lua5.4
local epochs = tonumber(arg and arg[1]) or 40

-- 1. the data -------------------------------------------------------------------------------
local data_dir = os.getenv("RECLAB_DATA")
local name
if data_dir and data_dir ~= "" then
  name = "ml-100k"
  local info, err = reclab.datasets.load(data_dir .. "/movielens-100k/u.data",
                                         {format = "ml-100k", name = name})
  if not info then error(err) end    -- expected misses come back as nil, message
else
  name = "demo"                      -- the demo world is registered at start-up
  if not reclab.datasets.info(name) then reclab.world.demo(name) end
end
local d = assert(reclab.datasets.info(name))
print(("%s: %d users, %d items, %d interactions"):format(name, d.n_users, d.n_items, d.n_inter))

-- 2. the leave-one-out split (as datasets <name>.train / .valid / .test, to look at) ---------
local s = reclab.datasets.split(name, {method = "loo"})
print(("split: %d train, %d valid, %d test interactions"):format(s.n_train, s.n_valid, s.n_test))

-- 3 + 4. train and evaluate each baseline ---------------------------------------------------
local runs = {}
local configs = {
  {"pop"},
  {"itemknn", k = 100},
  {"bprmf", epochs = epochs, dim = 64},
}
for _, cfg in ipairs(configs) do
  local kind = cfg[1]                -- reclab.train{KIND, field = value, ...}
  cfg.data = name                    -- trains on the leave-one-out train part of the data
  cfg.name = name .. "-" .. kind
  local t = reclab.train(cfg)
  local r = reclab.evaluate{model = t.model, data = name, k = {10}, metrics = {"hr", "ndcg"}}
  print(("%-8s trained in %6.2f s   HR@10 %.4f  NDCG@10 %.4f  (run %d)"):format(
    kind, t.seconds, r["hr@10"], r["ndcg@10"], r.run))
  runs[#runs + 1] = r.run
end

-- 5. the comparison, read back from the store -----------------------------------------------
local rows = reclab.db.query([[
  SELECT r.id, json_extract(r.config, '$.model') AS model, r.model_kind AS kind,
         max(CASE WHEN m.name = 'hr@10'   THEN m.value END) AS hr10,
         max(CASE WHEN m.name = 'ndcg@10' THEN m.value END) AS ndcg10,
         m.protocol AS protocol
  FROM runs r JOIN metrics m ON m.run_id = r.id
  WHERE r.id IN (?1, ?2, ?3) AND m.split = 'test'
  GROUP BY r.id ORDER BY ndcg10 DESC]], runs[1], runs[2], runs[3])

print()
print(("%-20s %-8s %8s %8s  %s"):format("model", "kind", "HR@10", "NDCG@10", "protocol"))
local by_kind = {}
for _, row in ipairs(rows) do
  print(("%-20s %-8s %8.4f %8.4f  %s"):format(row.model, row.kind, row.hr10, row.ndcg10,
                                               row.protocol))
  by_kind[row.kind] = row
end

-- 6. the expected order ---------------------------------------------------------------------
assert(#rows == 3, "expected 3 evaluation runs in the store, found " .. #rows)
for _, k in ipairs{"bprmf", "itemknn"} do
  if not (by_kind[k].ndcg10 > by_kind.pop.ndcg10 and by_kind[k].hr10 > by_kind.pop.hr10) then
    error(("%s does not beat pop: NDCG@10 %.4f vs %.4f, HR@10 %.4f vs %.4f"):format(
      k, by_kind[k].ndcg10, by_kind.pop.ndcg10, by_kind[k].hr10, by_kind.pop.hr10))
  end
end
print("ok: BPR-MF and ItemKNN beat Pop")
