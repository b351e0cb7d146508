--[==[
onerec_ipa_grid.lua: does an IPA setting raise the reward without lowering the session recall?
(plugins/genrank, OneRec IPA; RESULTS.md session 4)

  reclab run lua/examples/onerec_ipa_grid.lua [data [seed [signal [epochs [samples [iters
                                               [users [frac [settings [maxlen [extra]]]]]]]]]]]

  data: "demo" (default) or a dataset path; signal: ratings (default) or truth (demo world);
  epochs / samples: onerec's training budget (default 3 / 3); iters: IPA iterations per
  setting (default 2); users: users measured, evenly spaced (default 500; 0 = all); frac: the
  share of users giving pairs (default 0.3); settings: a comma-separated subset of the names
  below (default: all), where "KIND:LAMBDA:BETA" (KIND dpo = smooth 0, cdpo = smooth 0.25,
  far = the far loser with smooth 0) names a point of the lambda x beta grid; maxlen: the history window (default: the
  kind's); extra: IPA options for every setting, the control included ("k=v,k=v", e.g.
  "ipa_dropout=true,ipa_warmup=10"; RESULTS.md session 5). "more:N" in settings trains onerec
  N epochs longer (same seed) and measures it on every user against onerec (lines "MORE";
  RESULTS.md session 8).

One onerec model (brkmeans semantic IDs, 3 levels x 32 codes) per run and one reward model
(trained by the control's genrank.align, then attached to onerec), then per setting `iters`
genrank.ipa runs from the same onerec with the same seed (so the same user draw at iteration
1 and the same next-token batches): every setting differs from `ntp` (lambda 0, the NTP-only
control) only by its preference term. Each iterate is measured once, on the same users: its
means with a 95% bootstrap interval (the plugin), and from the per-user tables the paired
differences to the unaligned onerec and to the control's iterate of the same iteration (mean
and 95% normal interval, mean +- 1.96 sd / sqrt(n)). Lines starting with "ROW" / "PAIRED" are
one iterate each (for scripts). A setting KIND:L:B other than dpo is also paired with dpo:L:B
when both ran (cdpo - dpo, far - dpo; "ref=dpo"), and cdpo with dpo.
]==]

local reclab = require "reclab"
local C = dofile(((arg and arg[0] or ""):match("^(.*)/[^/]*$") or ".") .. "/onerec_common.lua")
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
local extra = {}
for k, v in ((arg and arg[11]) or ""):gmatch("([%w_]+)=([^,]+)") do
  extra[k] = v == "true" and true or v == "false" and false or tonumber(v) or v
end

-- the settings: the NTP-only control first (it trains the reward model)
local all = {
  {"ntp", {lambda = 0}},                     -- control: the same IPA steps without DPO
  {"dpo", {lambda = 0.5, beta = 0.1, smooth = 0}}, -- the defaults of sessions 1-4
  {"cdpo", {lambda = 0.5, beta = 0.1, smooth = 0.25}}, -- conservative DPO
  {"lowlr", {lambda = 0.5, beta = 0.1, smooth = 0, ipa_lr = 0.0003}}, -- smaller IPA lr
  {"far", {lambda = 0.5, beta = 0.1, smooth = 0, loser = "far"}},  -- loser far from the winner
  {"cdpo_l1", {lambda = 1, beta = 0.1, smooth = 0.25}},
  {"cdpo_b03", {lambda = 0.5, beta = 0.3, smooth = 0.25}},
  {"lowlr_l1", {lambda = 1, beta = 0.1, smooth = 0, ipa_lr = 0.0003}},
  {"cdpo_lowlr", {lambda = 0.5, beta = 0.1, smooth = 0.25, ipa_lr = 0.0003}},
  -- session 6: the validation guard (cdpo, then lambda halved on a validation drop > 0.005)
  {"cdpo_g", {lambda = 0.5, beta = 0.1, smooth = 0.25, guard = "fixed", guard_tol = 0.005}},
  {"cdpo_gci", {lambda = 0.5, beta = 0.1, smooth = 0.25, guard = "ci"}},
  -- the guard whose retries also halve the IPA learning rate (4 tries: lr / 1, 2, 4, 8)
  {"cdpo_glr", {lambda = 0.5, beta = 0.1, smooth = 0.25, guard = "fixed", guard_tol = 0.005,
                guard_lr = true, guard_tries = 4}},
  -- session 7: the guard on every user with a validation item, tolerance 1 paired standard
  -- error (guard = "se", the new default); on a held-out window of 5 items (the validation
  -- item and the last 4 training items); with pairs whose reward gap is at least a margin
  {"cdpo_gse", {lambda = 0.5, beta = 0.1, smooth = 0.25, guard = "se"}},
  {"cdpo_gw5", {lambda = 0.5, beta = 0.1, smooth = 0.25, guard = "se", guard_window = 5}},
  {"cdpo_gm", {lambda = 0.5, beta = 0.1, smooth = 0.25, guard = "se", margin = 0.05}},
  -- session 8: where the next-token term's recall loss comes from (demo seeds 2026 / 2027):
  -- the IPA steps continue onerec's Adam (moments and step count) instead of a fresh one; no
  -- next-token term (DPO only); the next-token term without dropout; and the lambda = 0
  -- controls of the first two (only the next-token term); a fresh Adam at a tenth of the lr
  {"cdpo_keep", {lambda = 0.5, beta = 0.1, smooth = 0.25, guard = "se", ipa_adam = "keep"}},
  {"cdpo_dpo", {lambda = 0.5, beta = 0.1, smooth = 0.25, guard = "se", ipa_ntp = 0}},
  {"cdpo_nodrop", {lambda = 0.5, beta = 0.1, smooth = 0.25, guard = "se", ipa_dropout = false}},
  {"cdpo_keep0", {lambda = 0, beta = 0.1, smooth = 0.25, guard = "se", ipa_adam = "keep"}},
  {"cdpo_nodrop0", {lambda = 0, beta = 0.1, smooth = 0.25, guard = "se", ipa_dropout = false}},
  {"cdpo_lr1e4", {lambda = 0.5, beta = 0.1, smooth = 0.25, guard = "se", ipa_lr = 0.0001}},
  -- the continued Adam with the guard's retries as a backtracking step: each retry halves the
  -- IPA learning rate (lambda kept: cdpo_k; lambda halved too: cdpo_kb)
  {"cdpo_k", {lambda = 0.5, beta = 0.1, smooth = 0.25, guard = "se", ipa_adam = "keep",
              guard_lr = true, guard_lambda = false}},
  {"cdpo_kb", {lambda = 0.5, beta = 0.1, smooth = 0.25, guard = "se", ipa_adam = "keep",
               guard_lr = true, guard_lambda = true}},
  -- OneRec's own knob: fewer users per iteration (frac / 3, 3x the passes: the same steps)
  -- or fewer preference steps (one pass)
  {"cdpo_f", {lambda = 0.5, beta = 0.1, smooth = 0.25, frac_div = 3, ipa_epochs = 6}},
  {"cdpo_e1", {lambda = 0.5, beta = 0.1, smooth = 0.25, ipa_epochs = 1}},
}
local settings = {}
for _, s in ipairs(all) do
  if not only or ("," .. only .. ","):find("," .. s[1] .. ",", 1, true) then
    settings[#settings + 1] = s
  end
end
-- the lambda x beta grid: KIND:LAMBDA:BETA
for kind, l, b in (only or ""):gmatch("(%a+):([%d.]+):([%d.]+)") do
  local o = {lambda = tonumber(l), beta = tonumber(b), smooth = 0}
  if kind == "cdpo" then o.smooth = 0.25 elseif kind == "far" then o.loser = "far"
  else assert(kind == "dpo", "grid kinds: dpo, cdpo, far (not " .. kind .. ")") end
  settings[#settings + 1] = {("%s:%s:%s"):format(kind, l, b), o, ref = "dpo:" .. l .. ":" .. b}
end
-- "more:N": onerec trained N epochs longer in one run (the same seed, so its first epochs are
-- onerec's, the same Adam and dropout), measured on every user against onerec (session 8:
-- does further next-token training at onerec's lr lower the validation recall by itself?)
local more = {}
for nm in (only or ""):gmatch("more:(%d+)") do more[#more + 1] = tonumber(nm) end
for _, s in ipairs(settings) do
  for k, v in pairs(extra) do s[2][k] = v end
  if s[1] == "cdpo" or s[1] == "far" then s.ref = "dpo" end
  if s[1]:match("^cdpo_") then s.ref = "cdpo" end -- the variants are also paired with cdpo
end
assert(#settings > 0 or #more > 0, "no settings")
-- without the control (ntp not in the list): genrank.align with iters = 0 trains the reward
-- model and measures onerec only
local has_ntp = #settings > 0 and settings[1][1] == "ntp"

local name = C.dataset(data)
C.semid(name, seed)
local on = reclab.train(C.gen_args("onerec", name, "onerec", seed, epochs, samples,
                                   {maxlen = maxlen}))
print(("onerec: test HR@10 %.4f NDCG@10 %.4f (data %s, seed %d, signal %s, %d users measured)")
  :format(on["test.hr@10"], on["test.ndcg@10"], data, seed, signal, users))

local f, ci, per_user, table_of = C.f, C.ci, C.per_user, C.table_of
local function pd(a, b, col)
  local m, lo, hi = C.paired(a, b, col)
  if not m then return "-" end
  return ("%+.4f [%+.4f, %+.4f]"):format(m, lo, hi)
end
local function row_line(s, r, pairs_, dpo, res)
  for _, k in ipairs({"recall@10", "reward_mean"}) do
    assert(r[k .. "_lo"] <= r[k] + 1e-12 and r[k] <= r[k .. "_hi"] + 1e-12,
      "the interval of " .. k .. " does not hold its mean")
  end
  assert(r.users > 0 and r.legality >= 0 and r.legality <= 1, "implausible measures")
  print(("ROW data=%s seed=%d signal=%s setting=%s iter=%d pairs=%s dpo=%s recall10=%s "
    .. "ndcg10=%s first_r10=%s reward=%s reward_max=%s true=%s ent=%.2f/%.2f/%.2f/%.2f "
    .. "legal=%s test_r10=%s valid_r10=%s%s"):format(data, seed, signal, s, r.iter,
    pairs_ and ("%d"):format(pairs_) or "-",
    f(dpo), ci(r, "recall@10"), ci(r, "ndcg@10"), ci(r, "first_r@10"), ci(r, "reward_mean"),
    f(r.reward_max), ci(r, "true_mean"), r.ent_l1, r.ent_l2, r.ent_l3, r.ent_last, f(r.legality),
    ci(r, "test_r@10"), ci(r, "valid_r@10"),
    res and res["train.guard_tries"] and (" guard_tries=%d guard_lambda=%s guard_kept=%d "
      .. "guard_valid=%s->%s"):format(res["train.guard_tries"], f(res["train.guard_lambda"]),
      res["train.guard_kept"], f(res["train.guard_valid_before"]),
      f(res["train.guard_valid_after"])) or ""))
end
local cols = {"recall@10", "ndcg@10", "first_r@10", "reward_mean", "true_mean", "test_r@10",
              "valid_r@10"}
local function paired_line(s, it, ref, a, b)
  local parts = {}
  for _, c in ipairs(cols) do parts[#parts + 1] = ("d_%s=%s"):format(c, pd(a, b, c)) end
  print(("PAIRED data=%s seed=%d signal=%s setting=%s iter=%d ref=%s %s"):format(data, seed,
    signal, s, it, ref, table.concat(parts, " ")))
end

-- the control: trains the reward model (attached to onerec), measures onerec, iteration 1
local ctl = settings[1]
local a = {model = "onerec", iters = has_ntp and 1 or 0, users = users, seed = seed, frac = frac,
           name = "ntp", signal = signal, paired = false}
if signal == "truth" then a.like_w = 0 end
if has_ntp then for k, v in pairs(ctl[2]) do a[k] = v end end
local al = reclab.genrank.align(a)
local base = per_user(table_of(al, "users0"))
local it_users = {ntp = has_ntp and {per_user(table_of(al, "users1"))} or nil}
print(has_ntp and "\nsetting ntp (the NTP-only control):" or "\nonerec (no control run):")
for _, r in ipairs(al.tables.ipa) do row_line(r.iter == 0 and "onerec" or "ntp", r, r.pairs, r.dpo_loss) end

local function ipa(s, opts, i)
  local mn = s:gsub("[:.]", "_")
  local b = {model = i == 1 and "onerec" or (mn .. "_ipa" .. (i - 1)), name = mn .. "_ipa" .. i,
             users = users, seed = seed, frac = frac, paired = false}
  if signal == "truth" then b.like_w = 0 end
  for k, v in pairs(opts) do b[k] = v end
  if b.frac_div then b.frac, b.frac_div = frac / b.frac_div, nil end
  local res = reclab.genrank.ipa(b)
  local r = table_of(res, "measures")[1]
  row_line(s, r, res["train.pairs"], res["train.dpo_loss"], res)
  if res["train.pairs_searched"] then -- the preference pairs of this iteration
    print(("PAIRS data=%s seed=%d signal=%s setting=%s iter=%d searched=%d below_margin=%d "
      .. "gap=%s shared=%s first_same=%s win_rank=%s lose_rank=%s"):format(data, seed, signal, s,
      i, res["train.pairs_searched"], res["train.pairs_below_margin"], f(res["train.pair_gap"]),
      f(res["train.pair_shared"]), f(res["train.pair_first_same"]),
      f(res["train.pair_win_rank"]), f(res["train.pair_lose_rank"])))
  end
  for _, g in ipairs(res.tables.guard or {}) do -- the validation guard's tries
    print(("GUARD data=%s seed=%d signal=%s setting=%s iter=%d try=%d lambda=%.4g lr=%.3g "
      .. "valid=%.4f->%.4f d_valid=%+.4f [%+.4f, %+.4f] tol=%.4f passed=%d"):format(data, seed,
      signal, s, i, g.try, g.lambda, g.lr, g.valid_before, g.valid_after, g.d_valid,
      g.d_valid_lo, g.d_valid_hi, g.tolerance, g.passed))
  end
  return per_user(table_of(res, "users"))
end
if has_ntp then
  for i = 2, iters do it_users.ntp[i] = ipa("ntp", ctl[2], i) end
  for i = 1, iters do paired_line("ntp", i, "onerec", it_users.ntp[i], base) end
end
for si = has_ntp and 2 or 1, #settings do
  local s = settings[si]
  print(("\nsetting %s:"):format(s[1]))
  it_users[s[1]] = {}
  for i = 1, iters do it_users[s[1]][i] = ipa(s[1], s[2], i) end
  for i = 1, iters do
    paired_line(s[1], i, "onerec", it_users[s[1]][i], base)
    if has_ntp then paired_line(s[1], i, "ntp", it_users[s[1]][i], it_users.ntp[i]) end
    if s.ref and s.ref ~= s[1] and it_users[s.ref] then
      paired_line(s[1], i, s.ref, it_users[s[1]][i], it_users[s.ref][i])
    end
  end
end
for _, nm in ipairs(more) do
  local mn = "more" .. nm
  reclab.train(C.gen_args("onerec", name, mn, seed, epochs + nm, samples, {maxlen = maxlen}))
  local ms = reclab.genrank.measure{model = mn, ref = "onerec", users = 0}
  local r = table_of(ms, "measures")[1]
  local parts = {}
  for _, c in ipairs(cols) do
    if r["d_" .. c] then
      parts[#parts + 1] = ("d_%s=%+.4f [%+.4f, %+.4f]"):format(c, r["d_" .. c], r["d_" .. c .. "_lo"],
        r["d_" .. c .. "_hi"])
    end
  end
  print(("MORE data=%s seed=%d epochs=%d+%d users=%d recall10=%s valid_r10=%s test_r10=%s %s")
    :format(data, seed, epochs, nm, r.users, ci(r, "recall@10"), ci(r, "valid_r@10"),
    ci(r, "test_r@10"), table.concat(parts, " ")))
end
