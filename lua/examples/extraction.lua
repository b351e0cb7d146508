--[==[
extraction.lua: Yue et al.'s data-free model extraction (RecSys'21) of a SASRec victim
(plugins/attack). The attacker sees the victim only as a black box that answers a query
sequence with its top-100 list; it generates synthetic sequences autoregressively (a random
first item, then an item drawn from the victim's list), trains a SASRec surrogate on them,
and the experimenter measures how closely the surrogate copies the victim on held-out real
sequences (Agreement@1/10, exact-match@10, KL@100) and how well it recommends (NDCG/HR@10,
full ranking and sampled-100).

  reclab run lua/examples/extraction.lua [budget [victim_epochs [surrogate_epochs [seed]]]]
  RECLAB_DATA=../shared/data reclab run lua/examples/extraction.lua 5000 200 50

With $RECLAB_DATA set it uses MovieLens-100K, otherwise the built-in demo world. The test
suite runs `... 40 2 2` on the demo world (a tiny victim, a tiny budget), in seconds.
]==]

local reclab = require "reclab"
local budget = tonumber(arg and arg[1]) or 1000
local vepochs = tonumber(arg and arg[2]) or 50
local sepochs = tonumber(arg and arg[3]) or 30
local seed = tonumber(arg and arg[4]) or 42
local small = budget < 200          -- the test suite's reduced run: small networks

-- 1. the data ------------------------------------------------------------------------------
local root = os.getenv("RECLAB_DATA")
local name
if root and root ~= "" and not small then
  name = "ml-100k"
  assert(reclab.datasets.load(root .. "/movielens-100k/u.data", {format = "ml-100k", name = name}))
else
  name = "demo"
  if not reclab.datasets.info(name) then reclab.world.demo(name) end
end

-- 2. the victim: SASRec trained the usual way (leave-one-out, full-ranking validation) -----
local dim = small and 16 or 64
local victim = reclab.train{"sasrec", data = name, name = "victim", epochs = vepochs,
                            dim = dim, maxlen = small and 20 or 50, seed = seed}
print(("victim: SASRec d=%d, %d epochs, test NDCG@10 %.4f (full)"):format(
  dim, vepochs, victim["test.ndcg@10"] or 0))

-- 3. the attack: black box -> synthetic data -> surrogate -> measures -------------------
local r = reclab.attack.extract{victim = "victim", data = name, budget = budget,
                                len = small and 10 or 50, epochs = sepochs, kind = "sasrec",
                                train = ("dim=%d maxlen=%d"):format(dim, small and 20 or 50),
                                seed = seed}
local t = r.tables.attack
for _, row in ipairs(t) do
  print(("  %-10s %-14s %10.4f"):format(row.part, row.metric, row.value))
end
print(("surrogate %s: Agr@1 %.4f  Agr@10 %.4f  EM@10 %.4f with %d queries"):format(
  tostring(r.surrogate), r["fidelity.agr@1"], r["fidelity.agr@10"], r["fidelity.em@10"],
  r.queries))

-- 4. checks the test suite relies on ------------------------------------------------------
assert(r.queries == budget * ((small and 10 or 50) - 1), "one query per answered prefix")
for _, k in ipairs{"fidelity.agr@1", "fidelity.agr@10", "fidelity.em@10"} do
  assert(r[k] >= 0 and r[k] <= 1, k)
end
