--[==[
onerec_pipeline.lua: raw data -> semantic IDs -> a trained, aligned generative ranker ->
recommendations (plugins/semid + plugins/genrank; OneRec, models.md section 1).

  reclab run lua/examples/onerec_pipeline.lua [epochs [data [seed [iters [samples [users
                                               [sasrec_epochs [frac [maxlen [signal [like_w
                                               [lambda [beta [tiger [diag]]]]]]]]]]]]]]]
  RECLAB_DATA=../shared/data reclab run lua/examples/onerec_pipeline.lua 20

  1. load the data (default $RECLAB_DATA/movielens-100k, else the demo world)
  2. balanced residual k-means semantic IDs of the items' content (3 levels x 32 codes + the
     de-duplication digit)
  3. SASRec, the point-wise variant (tiger: m = 1) and OneRec (m = 5) on the same
     leave-one-out split; full-ranking test HR/NDCG@10 of each (the generative models rank
     their constrained beam first)
  4. genrank.align: the reward model, then `iters` IPA iterations, each measured (session
     Recall/NDCG, first item vs next item, reward mean/max over the beam, per-level
     entropy, expert load, legality without the trie; on the demo world also the users'
     true satisfaction of the generated sessions)
  5. recommendations of the last iterate for one user, and its generated sessions

  sasrec_epochs 0 skips SASRec (run it separately on the same data and seed: the
  leave-one-out split is the same). frac: the share of users giving IPA pairs (default 0.3); maxlen: the generative models'
  history window (default: the kind's, 50); signal: the reward model's second tower,
  "ratings" (default) or "truth" (the demo world's true satisfaction); like_w: the reward's
  weight of the like tower (default: the model's, 0.5; 0 = the second tower alone);
  lambda, beta: IPA's DPO weight and temperature (default: the model's, 0.5 and 0.1;
  lambda 0 = the NTP-only control: the same IPA steps on the same next-token batches without
  the preference term); tiger: 0 skips the point-wise variant (default 1; the other models
  and IPA do not depend on it); diag: for N > 0, the beams of N evenly spaced users under
  each iterate (genrank.show, 20 sessions each): distinct items per user, the catalogue
  share of all generated items, the most frequent item's share of the best sessions, and
  the share of generated items already in the user's history window (default 0: off).

The test suite runs `... 1 demo 2025 1 1 40 1 0.2 20 ratings 0.5 0.5 0.1 1 8` (one epoch,
one IPA iteration, 40 users, every later argument at its default for one epoch, and the beam
spread of 8 users; one epoch selects a smaller network).
]==]

local reclab = require "reclab"
local C = dofile(((arg and arg[0] or ""):match("^(.*)/[^/]*$") or ".") .. "/onerec_common.lua")
local epochs = tonumber(arg and arg[1]) or 20
local data = arg and arg[2]
local seed = tonumber(arg and arg[3]) or 2025
local iters = tonumber(arg and arg[4]) or 2
local samples = tonumber(arg and arg[5]) or 8
local users = tonumber(arg and arg[6]) or 0
local sas_epochs = tonumber(arg and arg[7]) or 200
local frac = tonumber(arg and arg[8])
local maxlen = tonumber(arg and arg[9])
local signal = arg and arg[10] ~= "" and arg[10] or "ratings"
local like_w = tonumber(arg and arg[11])
local lambda = tonumber(arg and arg[12])
local beta = tonumber(arg and arg[13])
local with_tiger = (tonumber(arg and arg[14]) or 1) ~= 0
local diag = tonumber(arg and arg[15]) or 0
if not data or data == "" then
  local root = os.getenv("RECLAB_DATA")
  data = (root and root ~= "") and (root .. "/movielens-100k") or "demo"
end
local name = C.dataset(data)
local small = epochs <= 1

-- 2. semantic IDs
C.semid(name, seed)
local st = reclab.semid.stats{model = "sid"}
print(("semantic IDs: %d items, 3 levels x 32 codes, collision before dedup %.4f, max dedup %d")
  :format(st.items, st.collision, st.max_dedup))

-- 3. the rankers on one split
local function gen(kind, nm)
  return reclab.train(C.gen_args(kind, name, nm, seed, epochs, samples, {maxlen = maxlen}))
end
local rows = {}
if sas_epochs > 0 then -- 0: SASRec is run elsewhere (another process, the same split)
  local sas = reclab.train{"sasrec", data = name, seed = seed,
                           epochs = small and 1 or sas_epochs, name = "sasrec"}
  rows[#rows + 1] = {"sasrec", sas["test.hr@10"], sas["test.ndcg@10"]}
end
if with_tiger then
  local tg = gen("tiger", "tiger")
  rows[#rows + 1] = {"tiger (m=1)", tg["test.hr@10"], tg["test.ndcg@10"]}
end
local on = gen("onerec", "onerec")
rows[#rows + 1] = {"onerec (m=5)", on["test.hr@10"], on["test.ndcg@10"]}

-- 4. alignment
local al = reclab.genrank.align{model = "onerec", iters = iters, users = users, seed = seed,
                                ipa_beam = small and 4 or 16,
                                frac = frac or (small and 0.2 or 0.3), signal = signal,
                                like_w = like_w, lambda = lambda, beta = beta}
for i = 1, iters do
  local e = reclab.eval{model = "onerec_ipa" .. i}
  rows[#rows + 1] = {"onerec + IPA " .. i, e["test.hr@10"], e["test.ndcg@10"]}
end

print(("\n%-16s %9s %9s   (test, full ranking, leave-one-out)"):format("model", "HR@10",
  "NDCG@10"))
for _, r in ipairs(rows) do
  print(("%-16s %9.4f %9.4f"):format(r[1], r[2] or 0 / 0, r[3] or 0 / 0))
end
-- one row per iterate, each from its own run (genrank.ipa; the align run for iteration 0)
print(("\n%-4s %-5s %6s %6s %7s %9s %17s %9s %9s %9s %17s %9s %9s %8s %8s %8s"):format("run",
  "iter", "users", "pairs", "dpo", "recall@10", "(95% interval)", "ndcg@10", "first@10",
  "rew.mean", "(95% interval)", "rew.max", "ent.l1", "ent.last", "load.max", "legal"))
for _, r in ipairs(al.tables.ipa) do
  print(("%-4d %-5d %6d %6s %7s %9.4f  [%6.4f, %6.4f] %9.4f %9.4f %9.4f  [%6.4f, %6.4f] %9.4f %9.4f"
    .. " %8.4f %8.4f %8.4f"):format(
    r.run or 0, r.iter, r.users, r.pairs and ("%d"):format(r.pairs) or "-",
    r.dpo_loss and ("%.4f"):format(r.dpo_loss) or "-", r["recall@10"], r["recall@10_lo"],
    r["recall@10_hi"], r["ndcg@10"], r["first_r@10"], r.reward_mean, r.reward_mean_lo,
    r.reward_mean_hi, r.reward_max, r.ent_l1, r.ent_last, r.load_max, r.legality))
  assert(r.users > 0 and r.legality >= 0 and r.legality <= 1, "implausible measures")
  assert(r["recall@10_lo"] <= r["recall@10"] + 1e-12 and r["recall@10"] <= r["recall@10_hi"] + 1e-12,
    "the recall's interval does not hold its mean")
end
if al.tables.ipa[1].true_mean then -- the demo world: the users' true satisfaction is known
  print("\ntrue satisfaction of the generated sessions (the world's affinity, mean over items):")
  for _, r in ipairs(al.tables.ipa) do
    print(("  iter %d  mean over the beam %.4f [%.4f, %.4f]  max %.4f"):format(r.iter, r.true_mean,
      r.true_mean_lo, r.true_mean_hi, r.true_max))
  end
end

-- 4b. optional: how the iterates' beams spread over the catalogue
if diag > 0 then
  local ids = {}
  if name == "demo" then
    for i = 0, diag - 1 do ids[#ids + 1] = "u" .. (i * 1000 // diag) end
  else
    for i = 1, diag do ids[#ids + 1] = tostring(i) end
  end
  print(("\nbeam spread over %d users (20 sessions each):"):format(#ids))
  print(("%-12s %12s %12s %10s %10s"):format("model", "items/user", "distinct", "top1.best",
    "in.hist"))
  local models = {"onerec"}
  for i = 1, iters do models[#models + 1] = "onerec_ipa" .. i end
  for _, mdl in ipairs(models) do
    local all, best, nall, nbest, rep, per, nu = {}, {}, 0, 0, 0, 0, 0
    for _, uid in ipairs(ids) do
      local ok, sh = pcall(reclab.genrank.show, {model = mdl, user = uid, beam = 20})
      if ok and sh then
        nu = nu + 1
        local hist, mine, nmine = {}, {}, 0
        for _, h in ipairs(sh.tables.history) do hist[h.item] = true end
        for _, b in ipairs(sh.tables.beams) do
          for it in tostring(b.items):gmatch("%S+") do
            all[it] = (all[it] or 0) + 1
            nall = nall + 1
            if hist[it] then rep = rep + 1 end
            if not mine[it] then mine[it], nmine = true, nmine + 1 end
            if b.rank == 1 then best[it], nbest = (best[it] or 0) + 1, nbest + 1 end
          end
        end
        per = per + nmine
      end
    end
    assert(nu > 0 and nall > 0, "no generated sessions for the beam spread")
    local nd, top = 0, 0
    for _ in pairs(all) do nd = nd + 1 end
    for _, c in pairs(best) do if c > top then top = c end end
    print(("%-12s %12.1f %12d %10.4f %10.4f"):format(mdl, per / math.max(nu, 1), nd,
      top / math.max(nbest, 1), rep / math.max(nall, 1)))
  end
end

-- 5. recommendations and one user's sessions from the last iterate
local last = "onerec_ipa" .. iters
local uid = name == "demo" and "u3" or "3"
local items, scores = reclab.recommend(last, uid, 5)
print(("\ntop-5 of %s for user %s (beam items first, score 1000 + beam rank):"):format(last, uid))
for i, it in ipairs(items) do print(("  %d. item %s  score %.4f"):format(i, it, scores[i])) end
local show = reclab.genrank.show{model = last, user = uid, beam = 4}
for _, b in ipairs(show.tables.beams) do
  print(("  beam %d  reward %.4f  %-6s  %s"):format(b.rank, b.reward or 0 / 0, b.role or "",
    b.tokens))
end
assert(show.beams >= 1, "no session generated")
