--[==[
compare_baselines.lua: Pop vs ItemKNN vs BPR-MF, full-ranking, leave-one-out, as one experiment.

  reclab run lua/examples/compare_baselines.lua [epochs [seeds]]
  RECLAB_DATA=../shared/data reclab run lua/examples/compare_baselines.lua

With $RECLAB_DATA set it uses MovieLens-100K ($RECLAB_DATA/movielens-100k/u.data);
otherwise the built-in demo world. Steps:
  1. load the data (or take the demo world),
  2. sweep the three model kinds of the baselines plugin (the host's `sweep` runs `train KIND`
     for each, splits leave-one-out, ranks every test target against ALL unseen items and
     keeps each user's value for the comparison),
  3. compare them: mean over seeds, 95% bootstrap interval over users, paired t-test against
     Pop with Holm's correction, the protocol printed with the table,
  4. check the expected order: BPR-MF and ItemKNN must beat Pop.
Arguments: BPR-MF epochs (default 40; the test suite passes fewer) and seeds (default "1").
`report EXP file=baselines.html` afterwards (EXP as printed) writes the report with figures.
]==]

local reclab = require "reclab"      -- already loaded inside `reclab run`; needed in lua5.4
local epochs = tonumber(arg and arg[1]) or 40
local seeds = arg and arg[2] or "1"

-- 1. the data -------------------------------------------------------------------------------
local data_dir = os.getenv("RECLAB_DATA")
local name = "demo"                  -- the demo world is registered at start-up
if data_dir and data_dir ~= "" then
  name = "ml-100k"
  assert(reclab.datasets.load(data_dir .. "/movielens-100k/u.data", {format = "ml-100k", name = name}))
elseif not reclab.datasets.info(name) then
  reclab.world.demo(name)
end
local d = assert(reclab.datasets.info(name))
print(("%s: %d users, %d items, %d interactions"):format(name, d.n_users, d.n_items, d.n_inter))

-- 2. one experiment: every kind, every seed. Unnamed, it is called after its spec, so the same
--    arguments again resume it (nothing is redone) and other arguments make another one --
local s = reclab.sweep{"pop", "itemknn", "bprmf", data = name, seeds = seeds,
                       ["itemknn.k"] = 100, ["bprmf.epochs"] = epochs, ["bprmf.dim"] = 64}
print(("experiment %s: %d runs (%d trained now)"):format(s.experiment, s.runs, s.ran))

-- 3. the comparison table, with its protocol ------------------------------------------------
local c = reclab.compare{s.experiment, metric = "hr@10,ndcg@10", baseline = "pop"}
for _, line in ipairs(c.lines) do print(line) end

-- 4. the expected order ---------------------------------------------------------------------
local mean = {}
for _, row in ipairs(c.tables.compare) do mean[row.config .. " " .. row.metric] = row.mean end
for _, k in ipairs{"bprmf", "itemknn"} do
  for _, m in ipairs{"hr@10", "ndcg@10"} do
    assert(mean[k .. " " .. m] > mean["pop " .. m], ("%s does not beat pop on %s: %.4f vs %.4f")
      :format(k, m, mean[k .. " " .. m], mean["pop " .. m]))
  end
end
print("ok: BPR-MF and ItemKNN beat Pop")
