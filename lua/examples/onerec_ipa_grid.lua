--[==[
onerec_ipa_grid.lua: does an IPA setting raise the reward without lowering the session recall?
(plugins/genrank, OneRec IPA; RESULTS.md session 4)

  reclab run lua/examples/onerec_ipa_grid.lua [data [seed [signal [epochs [samples [iters
                                               [users [frac [settings [maxlen]]]]]]]]]]

  data: "demo" (default) or a dataset path; signal: ratings (default) or truth (demo world);
  epochs / samples: onerec's training budget (default 3 / 3); iters: IPA iterations per
  setting (default 2); users: users measured, evenly spaced (default 500; 0 = all); frac: the
  share of users giving pairs (default 0.3); settings: a comma-separated subset of the names
  below (default: all); maxlen: the history window (default: the kind's).

One onerec model (brkmeans semantic IDs, 3 levels x 32 codes) per run, one reward model
(trained by the first setting, reused by the others), then per setting a genrank.align from
the same onerec with the same seed (so the same user draw at iteration 1 and the same NTP
batches): every setting differs from `ntp` (lambda 0, the NTP-only control) only by its
preference term. Each iterate is measured on the same users with a 95% bootstrap interval
(users resampled) and the paired difference to the previous iterate; the last iterate of each
setting (but the control's) is also measured paired against the control's last iterate.
Lines starting with "ROW" are one iterate each (for scripts).
]==]

local reclab = require "reclab"
local data = arg and arg[1] ~= nil and arg[1] ~= "" and arg[1] or "demo"
local seed = tonumber(arg and arg[2]) or 2025
local signal = arg and arg[3] ~= nil and arg[3] ~= "" and arg[3] or "ratings"
local epochs = tonumber(arg and arg[4]) or 3
local samples = tonumber(arg and arg[5]) or 3
local iters = tonumber(arg and arg[6]) or 2
local users = tonumber(arg and arg[7]) or 500
local frac = tonumber(arg and arg[8]) or 0.3
local only = arg and arg[9] ~= nil and arg[9] ~= "" and arg[9] or nil
local maxlen = tonumber(arg and arg[10])

-- the settings: the NTP-only control first (it trains the reward model)
local all = {
  {"ntp", {lambda = 0}},                     -- control: the same IPA steps without DPO
  {"dpo", {lambda = 0.5, beta = 0.1}},       -- the defaults of sessions 1-3
  {"cdpo", {lambda = 0.5, beta = 0.1, smooth = 0.25}}, -- conservative DPO
  {"lowlr", {lambda = 0.5, beta = 0.1, ipa_lr = 0.0003}}, -- smaller IPA learning rate
  {"far", {lambda = 0.5, beta = 0.1, loser = "far"}},  -- loser far from the winner
  {"cdpo_l1", {lambda = 1, beta = 0.1, smooth = 0.25}},
  {"cdpo_b03", {lambda = 0.5, beta = 0.3, smooth = 0.25}},
  {"lowlr_l1", {lambda = 1, beta = 0.1, ipa_lr = 0.0003}},
}
local settings = {}
for _, s in ipairs(all) do
  if not only or ("," .. only .. ","):find("," .. s[1] .. ",", 1, true) then
    settings[#settings + 1] = s
  end
end
assert(#settings > 0 and settings[1][1] == "ntp", "the settings must start with ntp (the control)")

local name = "demo"
if data ~= "demo" then
  name = "data"
  assert(reclab.datasets.load(data, {name = name}))
elseif not reclab.datasets.info("demo") then
  reclab.world.demo("demo")
end
reclab.train{"brkmeans", data = name, name = "sid", levels = 3, codes = 32, seed = seed}
local oa = {"onerec", data = name, name = "onerec", semid = "sid", seed = seed, epochs = epochs,
            samples = samples, eval_every = epochs <= 2 and 0 or 5}
if maxlen then oa.maxlen = maxlen end
if epochs <= 1 then oa.maxlen, oa.dim, oa.ffn, oa.beam = oa.maxlen or 20, 32, 64, 10 end
local on = reclab.train(oa)
print(("onerec: test HR@10 %.4f NDCG@10 %.4f (data %s, seed %d, signal %s, %d users measured)")
  :format(on["test.hr@10"], on["test.ndcg@10"], data, seed, signal, users))

local function f(x) return x and ("%.4f"):format(x) or "-" end
local function ci(r, k) return ("%s [%s, %s]"):format(f(r[k]), f(r[k .. "_lo"]), f(r[k .. "_hi"])) end
local function d(r, k)
  return ("%s [%s, %s]"):format(f(r["d_" .. k]), f(r["d_" .. k .. "_lo"]), f(r["d_" .. k .. "_hi"]))
end

for si, s in ipairs(settings) do
  local a = {model = "onerec", iters = iters, users = users, seed = seed, frac = frac,
             name = s[1]}
  if si == 1 then a.signal = signal end -- trains R (re-registered with onerec)
  if signal == "truth" then a.like_w = 0 end
  for k, v in pairs(s[2]) do a[k] = v end
  local al = reclab.genrank.align(a)
  print(("\nsetting %s:"):format(s[1]))
  for _, r in ipairs(al.tables.ipa) do
    print(("ROW data=%s seed=%d signal=%s setting=%s iter=%d pairs=%s dpo=%s recall10=%s "
      .. "ndcg10=%s first_r10=%s reward=%s reward_max=%s true=%s ent=%.2f/%.2f/%.2f/%.2f "
      .. "legal=%s d_prev_recall10=%s d_prev_reward=%s d_prev_true=%s"):format(
      data, seed, signal, s[1], r.iter, r.pairs and ("%d"):format(r.pairs) or "-", f(r.dpo_loss),
      ci(r, "recall@10"), ci(r, "ndcg@10"), ci(r, "first_r@10"), ci(r, "reward_mean"),
      f(r.reward_max), ci(r, "true_mean"), r.ent_l1, r.ent_l2, r.ent_l3, r.ent_last,
      f(r.legality), d(r, "recall@10"), d(r, "reward_mean"), d(r, "true_mean")))
  end
  -- the last iterate paired against the control's last iterate (against the unaligned model:
  -- the interval of iteration 0 and the chain of d_prev)
  local last = s[1] .. "_ipa" .. iters
  if si > 1 then
    local ref = "ntp_ipa" .. iters
    local m = reclab.genrank.measure{model = last, ref = ref, users = users}
    local r = {}
    for _, row in ipairs(m.tables.measures) do r = row end
    print(("PAIRED data=%s seed=%d signal=%s setting=%s iter=%d ref=%s d_recall10=%s "
      .. "d_ndcg10=%s d_first_r10=%s d_reward=%s d_true=%s"):format(data, seed, signal, s[1],
      iters, ref, d(r, "recall@10"), d(r, "ndcg@10"), d(r, "first_r@10"), d(r, "reward_mean"),
      d(r, "true_mean")))
  end
end
