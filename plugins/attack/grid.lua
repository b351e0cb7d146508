--[==[
plugins/attack/grid.lua: the comparison grid of RESULTS.md. One victim (trained once), then
every attack variant against it at the same query budget, one line of results per variant.

  reclab -q --db X run plugins/attack/grid.lua DATA VICTIM SEED [budget [len [vep [sep [variants [eval_users]]]]]]

DATA: ml-100k | beauty ($RECLAB_DATA) | demo. VICTIM: sasrec | mqsa | bprmf.
variants: comma-separated names from the table below (default: all).
Output: lines "GRID data victim seed variant agr1 agr10 em10 kl100 sur_ndcg10 sur_ndcg10_s100
queries gen_s train_s victim_share sampler_mass" for the tables of RESULTS.md (sampler_mass:
the sampler's mean probability mass on the victim's list over the synthetic steps).
RECLAB_GRID_VICTIMS=DIR: save the victim there, or load it when an earlier run saved it.
]==]

local reclab = require "reclab"
local data = arg[1] or "demo"
local vkind = arg[2] or "sasrec"
local seed = tonumber(arg[3]) or 42
local budget = tonumber(arg[4]) or 1000
local len = tonumber(arg[5]) or 50
local vep = tonumber(arg[6]) or 30
local sep = tonumber(arg[7]) or 30
local only = arg[8]
local eval_users = tonumber(arg[9]) or 0 -- fidelity over the first N test users (0 = all)

local root = os.getenv("RECLAB_DATA")
local name = data
if data == "ml-100k" then
  assert(reclab.datasets.load(root .. "/movielens-100k/u.data", {format = "ml-100k", name = name}))
elseif data == "beauty" then
  assert(reclab.datasets.load(root .. "/amazon-beauty/Beauty.txt", {name = name}))
else
  name = "demo"
  if not reclab.datasets.info(name) then reclab.world.demo(name) end
end

-- the victim: trained once per (data, kind, seed, epochs, len); with RECLAB_GRID_VICTIMS=DIR
-- (a folder inside the working folder) it is saved there and later runs load it, so that
-- variants split over several processes attack the same victim
local vdir = os.getenv("RECLAB_GRID_VICTIMS")
local vfile = vdir and ("%s/victim_%s_%s_s%d_e%d_l%d.safetensors"):format(vdir, data, vkind, seed,
                                                                          vep, len)
local fh = vfile and io.open(vfile, "rb")
if fh then
  fh:close()
  assert(reclab.models.load(vfile, {name = "victim"}))
  io.stderr:write(("victim %s %s: loaded %s\n"):format(vkind, data, vfile))
else
  local vargs = {vkind, data = name, name = "victim", epochs = vep, seed = seed}
  if vkind ~= "bprmf" then vargs.maxlen = len; vargs.dim = 64 end
  if vkind == "sasrec" then vargs.patience = 5 end
  local victim = reclab.train(vargs)
  io.stderr:write(("victim %s %s: test ndcg@10 %.4f\n"):format(vkind, data,
                                                               victim["test.ndcg@10"] or 0))
  print(("VICTIM %s %s %d ndcg10 %.4f"):format(data, vkind, seed, victim["test.ndcg@10"] or 0))
  if vdir then
    local tmp = reclab.models.save("victim", vdir)
    assert(os.rename(tmp, vfile))
  end
end

local variants = {
  {"datafree_next", loss = "next"},
  {"datafree_rank"},
  {"fs5", fewshot = 0.05, repair = 1},
  {"fs10", fewshot = 0.10, repair = 1},
  {"fs10_nosampler", fewshot = 0.10, repair = 1, sampler = false},
  {"fs10_nogate", fewshot = 0.10, repair = 1, gate = false},
  {"fs10_norepair", fewshot = 0.10, repair = 0},
  {"datafree_repair", repair = 1},
  -- sampler_list (ours, not the paper's): the sampler chooses only among the victim's listed
  -- items, so every synthetic step stays on the victim's answer
  {"fs5_list", fewshot = 0.05, repair = 1, sampler_list = true},
  {"fs10_list", fewshot = 0.10, repair = 1, sampler_list = true},
}
-- "promote" (not in the default list): after fs10, the promotion attack with its surrogate and
-- the random baseline (the victim's kind and settings retrained on the poisoned data)
local want = {}
if only and only ~= "" then for v in only:gmatch("[^,]+") do want[v] = true end end
if only and only ~= "" and want.promote and not want.fs10 then
  error("promote needs fs10 in the variants")
end

for _, v in ipairs(variants) do
  if not only or only == "" or want[v[1]] then
    local a = {victim = "victim", data = name, budget = budget, len = len, epochs = sep,
               kind = "sasrec", name = "sur_" .. v[1], seed = seed, eval_victim = false,
               eval_users = eval_users,
               train = ("dim=64 maxlen=%d"):format(len)}
    for k, x in pairs(v) do if type(k) == "string" then a[k] = x end end
    local r = reclab.attack.extract(a)
    local g = function(k) return r[k] or 0 end
    print(("GRID %s %s %d %s %.4f %.4f %.4f %.4f %.4f %.4f %d %.1f %.1f %.3f %.4f"):format(
      data, vkind, seed, v[1], g("fidelity.agr@1"), g("fidelity.agr@10"), g("fidelity.em@10"),
      g("fidelity.kl@100"), g("surrogate.ndcg@10"), g("surrogate.ndcg@10_s100"), r.queries,
      g("attack.gen_seconds"), g("attack.train_seconds"), g("attack.victim_share"),
      g("attack.sampler_mass")))
    io.stdout:flush()
  end
end

if want.promote then
  local tr = vkind == "bprmf" and "" or ("dim=64 maxlen=%d patience=5"):format(len)
  for _, m in ipairs{"surrogate", "random"} do
    local p = reclab.attack.promote{victim = "victim", data = name, surrogate = "sur_fs10",
                                    method = m, kind = vkind, epochs = vep, seed = seed,
                                    n_fake = math.max(1, math.floor(0.02 * reclab.datasets.info(name).n_users)),
                                    train = tr}
    print(("PROMO %s %s %d %s target %d fake %d users %d hit10 %.4f -> %.4f rank %.1f -> %.1f retrain_s %.1f"):format(
      data, vkind, seed, m, p["attack.target"], p["attack.fake_users"], p["attack.users"],
      p["before.hit@10"], p["after.hit@10"], p["before.mean_rank"], p["after.mean_rank"],
      p["attack.retrain_seconds"]))
    io.stdout:flush()
  end
end
