--[==[
onerec_ipa_diag.lua: why does IPA's next-token training alone (lambda = 0) lower the session
recall? (plugins/genrank, OneRec IPA; RESULTS.md session 5)

  reclab run lua/examples/onerec_ipa_diag.lua [data [seed [epochs [samples [iters [users
                                               [frac [settings [more [curve]]]]]]]]]]

  data: "demo" (default) or a dataset path; epochs / samples: onerec's budget (default 3 / 3);
  iters: IPA iterations per setting (default 2); users: users measured, evenly spaced (default
  500; 0 = all); frac: the share of users giving pairs (default 0.3); settings: a
  comma-separated subset of the names below (default: all); more: extra base epochs of the
  "more" model (default 3; 0 = skip it); curve: epochs of the validation curve model (default
  0 = skip).

All settings are NTP-only IPA (lambda 0; `ntp` is always run, its first iteration through
genrank.align, which trains the reward model) from the same onerec with the same seed (the same
user draw and next-token batches), so they differ only by how the IPA steps train:
  ntp        the IPA steps of sessions 1-4 (dropout off, a fresh Adam at the model's lr)
  ntp_drop   ipa_dropout=true: the next-token term with the model's dropout, as in training
  ntp_lowlr  ipa_lr=0.0003 (dropout off)
  ntp_warm   ipa_warmup=10: 10 steps of linear lr warm-up of the fresh Adam (dropout off)
  ntp_1ep    ipa_epochs=1: half the steps (dropout off)
  ntp_drop_warm  both
The "more" model is onerec trained `more` epochs longer in one run (the same seed: its first
`epochs` epochs are onerec's; dropout on, the same Adam): the effect of more base training.
Its validation metrics per epoch (point-wise NDCG / recall@10) answer "does the base peak
earlier?"; `curve` > 0 trains one more model that long for the curve only. Each model is
measured on the same users and paired with onerec (mean difference, 95% normal interval, n
and sd for pooling seeds). Lines starting with "ROW", "PAIRED" and "CURVE" are for scripts.
]==]

local reclab = require "reclab"
local C = dofile(((arg and arg[0] or ""):match("^(.*)/[^/]*$") or ".") .. "/onerec_common.lua")
local data = arg and arg[1] ~= nil and arg[1] ~= "" and arg[1] or "demo"
local seed = tonumber(arg and arg[2]) or 2025
local epochs = tonumber(arg and arg[3]) or 3
local samples = tonumber(arg and arg[4]) or 3
local iters = tonumber(arg and arg[5]) or 2
local users = tonumber(arg and arg[6]) or 500
local frac = tonumber(arg and arg[7]) or 0.3
local only = arg and arg[8] ~= nil and arg[8] ~= "" and arg[8] or nil
local more = tonumber(arg and arg[9]) or 3
local curve = tonumber(arg and arg[10]) or 0

local all = {
  {"ntp", {lambda = 0, ipa_dropout = false}},
  {"ntp_drop", {lambda = 0, ipa_dropout = true}},
  {"ntp_lowlr", {lambda = 0, ipa_dropout = false, ipa_lr = 0.0003}},
  {"ntp_warm", {lambda = 0, ipa_dropout = false, ipa_warmup = 10}},
  {"ntp_1ep", {lambda = 0, ipa_dropout = false, ipa_epochs = 1}},
  {"ntp_drop_warm", {lambda = 0, ipa_dropout = true, ipa_warmup = 10}},
}
local settings = {}
for _, s in ipairs(all) do
  if not only or ("," .. only .. ","):find("," .. s[1] .. ",", 1, true) then
    settings[#settings + 1] = s
  end
end

local name = C.dataset(data)
C.semid(name, seed)
local function base(nm, ep, every, keep)
  return reclab.train(C.gen_args("onerec", name, nm, seed, ep, samples,
                                 {eval_every = every, keep_best = keep, small = epochs <= 1}))
end
-- onerec exactly as onerec_ipa_grid.lua trains it (validation at the last epoch only)
local on = base("onerec", epochs, epochs <= 2 and 0 or 5, true)
print(("onerec: test HR@10 %.4f NDCG@10 %.4f (data %s, seed %d, %d users measured)")
  :format(on["test.hr@10"], on["test.ndcg@10"], data, seed, users))

local f, ci, per_user, table_of = C.f, C.ci, C.per_user, C.table_of
-- paired difference a - b over the users of both: mean, 95% normal interval, n, sd
local function paired(a, b, col)
  local m, lo, hi, n, sd = C.paired(a, b, col)
  if not m then return "-" end
  return ("%+.4f [%+.4f, %+.4f] n=%d sd=%.5f"):format(m, lo, hi, n, sd)
end
local cols = {"recall@10", "ndcg@10", "first_r@10", "reward_mean", "true_mean"}
local function paired_line(s, it, ref, a, b)
  local parts = {}
  for _, c in ipairs(cols) do parts[#parts + 1] = ("d_%s=%s"):format(c, paired(a, b, c)) end
  print(("PAIRED data=%s seed=%d setting=%s iter=%d ref=%s %s"):format(data, seed, s, it, ref,
    table.concat(parts, " | ")))
end
local function row_line(s, it, r)
  assert(r.users > 0 and r["recall@10_lo"] <= r["recall@10"] + 1e-12, "implausible measures")
  print(("ROW data=%s seed=%d setting=%s iter=%d recall10=%s ndcg10=%s first_r10=%s reward=%s "
    .. "true=%s ent=%.2f/%.2f/%.2f/%.2f legal=%s"):format(data, seed, s, it, ci(r, "recall@10"),
    ci(r, "ndcg@10"), ci(r, "first_r@10"), ci(r, "reward_mean"), ci(r, "true_mean"), r.ent_l1,
    r.ent_l2, r.ent_l3, r.ent_last, f(r.legality)))
end
-- the validation metrics of a train run, per epoch
local function curve_lines(nm, res)
  local by = {}
  for _, m in ipairs(reclab.runs.metrics(res.run)) do
    if m.split == "valid" and (m.name == "ndcg@10" or m.name == "recall@10") then
      by[m.step] = by[m.step] or {}
      by[m.step][m.name] = m.value
    elseif m.split == "train" and m.name == "loss" then
      by[m.step] = by[m.step] or {}
      by[m.step].loss = m.value
    end
  end
  local steps = {}
  for s in pairs(by) do steps[#steps + 1] = s end
  table.sort(steps)
  assert(#steps > 0, "no metrics for run " .. tostring(res.run))
  for _, s in ipairs(steps) do
    print(("CURVE data=%s seed=%d model=%s epoch=%d loss=%s valid_ndcg10=%s valid_recall10=%s")
      :format(data, seed, nm, s, f(by[s].loss), f(by[s]["ndcg@10"]), f(by[s]["recall@10"])))
  end
end

-- the control's first iteration through genrank.align: it trains the reward model (attached
-- to onerec; lambda = 0, so R never enters the training) and measures onerec
local al = reclab.genrank.align{model = "onerec", iters = 1, users = users, seed = seed,
                                frac = frac, lambda = 0, ipa_dropout = false, name = "ntp",
                                paired = false}
local b0 = per_user(table_of(al, "users0"))
local first = {ntp = per_user(table_of(al, "users1"))}
for _, r in ipairs(table_of(al, "ipa")) do row_line(r.iter == 0 and "onerec" or "ntp", r.iter, r) end

if more > 0 then
  local mo = base("more", epochs + more, 1, false)
  curve_lines("more", mo)
  local ms = reclab.genrank.measure{model = "more", users = users}
  row_line("more", 0, table_of(ms, "measures")[1])
  paired_line("more", more, "onerec", per_user(table_of(ms, "users")), b0)
end
if curve > 0 then curve_lines("curve", base("curve", curve, 1, false)) end

for _, s in ipairs(settings) do
  print(("\nsetting %s:"):format(s[1]))
  for i = 1, iters do
    local pu
    if i == 1 and first[s[1]] then
      pu = first[s[1]]
    else
      local b = {model = i == 1 and "onerec" or (s[1] .. "_ipa" .. (i - 1)),
                 name = s[1] .. "_ipa" .. i, users = users, seed = seed, frac = frac,
                 paired = false}
      for k, v in pairs(s[2]) do b[k] = v end
      local res = reclab.genrank.ipa(b)
      row_line(s[1], i, table_of(res, "measures")[1])
      pu = per_user(table_of(res, "users"))
    end
    paired_line(s[1], i, "onerec", pu, b0)
  end
end
