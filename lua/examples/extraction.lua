--[==[
extraction.lua: model extraction of a SASRec victim (plugins/attack), data-free (Yue et al.,
RecSys'21) and few-shot, then the downstream promotion attack. The attacker sees the victim
only as a black box that answers a query sequence with its top-100 list.
  data-free: synthetic sequences grown autoregressively (a random first item, then an item
             drawn from the victim's list); the surrogate (SASRec) distils the victim's lists
             with Yue et al.'s ranking loss (seqrec loss=rank);
  few-shot:  the attacker also holds a few real user sequences (10%; 2% in the small run):
             they are queried, a small SASRec sampler is trained on them, and synthetic
             sequences start from their prefixes, each step following the victim's list or the
             sampler as a learned gate decides; distillation adds the bidirectional repair loss;
             the query budget is the same as data-free's.
The experimenter measures how closely each surrogate copies the victim on held-out real
sequences (Agreement@1/10, exact-match@10, KL@100) and how well it recommends (NDCG/HR@10,
full ranking and sampled-100). Finally the few-shot surrogate builds injected sequences that
promote an unpopular item, and the victim retrained on the poisoned data is compared with the
same number of random injected sequences (the item's top-10 share and mean rank).

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

-- 3. the attacks: black box -> synthetic data -> surrogate -> measures ------------------
local len = small and 10 or 50
local function extract(extra)
  local a = {victim = "victim", data = name, budget = budget, len = len, epochs = sepochs,
             kind = "sasrec", train = ("dim=%d maxlen=%d"):format(dim, small and 20 or 50),
             seed = seed}
  for k, v in pairs(extra) do a[k] = v end
  return reclab.attack.extract(a)
end
local df = extract{name = "sur_df"}
local fs = extract{name = "sur_fs", fewshot = small and 0.02 or 0.1, repair = 1,
                   eval_victim = false, sampler_epochs = small and 2 or 20,
                   sampler_train = small and "dim=16" or "dim=32 blocks=1"}
for _, row in ipairs(df.tables.attack) do
  print(("  %-10s %-16s %10.4f"):format(row.part, row.metric, row.value))
end
for _, r in ipairs{{"data-free", df}, {"few-shot", fs}} do
  local x = r[2]
  print(("%-9s surrogate %s: Agr@1 %.4f  Agr@10 %.4f  EM@10 %.4f  KL@100 %.4f with %d queries"):format(
    r[1], tostring(x.surrogate), x["fidelity.agr@1"], x["fidelity.agr@10"], x["fidelity.em@10"],
    x["fidelity.kl@100"], x.queries))
end
print(("few-shot: %d real sequences, %.0f%% of the synthetic steps followed the victim"):format(
  fs["attack.fewshot_real"], 100 * fs["attack.victim_share"]))

-- 4. the downstream attack: promote an unpopular item by poisoning ----------------------
local promo = {}
for _, m in ipairs{"surrogate", "random"} do
  local p = reclab.attack.promote{victim = "victim", data = name, surrogate = "sur_fs",
                                  method = m, epochs = vepochs, seed = seed,
                                  train = ("dim=%d maxlen=%d"):format(dim, small and 20 or 50)}
  promo[m] = p
  print(("promotion (%s): item %d in top-10 of %.2f%% -> %.2f%% of users, mean rank %.1f -> %.1f"):format(
    m, p["attack.target"], 100 * p["before.hit@10"], 100 * p["after.hit@10"],
    p["before.mean_rank"], p["after.mean_rank"]))
end

-- 5. checks the test suite relies on ------------------------------------------------------
assert(df.queries == budget * (len - 1), "one query per answered prefix")
assert(fs.queries == df.queries, "few-shot spends the same budget")
assert(fs["attack.fewshot_real"] > 0, "the few-shot path ran")
for _, x in ipairs{df, fs} do
  for _, k in ipairs{"fidelity.agr@1", "fidelity.agr@10", "fidelity.em@10"} do
    assert(x[k] >= 0 and x[k] <= 1, k)
  end
end
for _, p in pairs(promo) do
  assert(p["before.hit@10"] >= 0 and p["after.hit@10"] <= 1 and p["after.mean_rank"] >= 1)
end
