--[==[
reloop_drift.lua: ReLoop2's error compensation on a stream whose users change their taste at
a known time (plugins/reloop). A synthetic world is generated with one drift: at day 182 of
365 a share of users replace their taste by a fresh one. The stream replays the world's
ratings in time order (label = rating >= 4), cut into equal time periods; period 0 fits a
logistic-MF base, then every later period is predicted and learnt from by four variants:

  frozen       the base as fitted on period 0
  incremental  the base with one SGD pass over each period after predicting it
  memory       the frozen base + an error memory (SimHash LSH over the base's hidden vectors,
               refreshed every 256 labels)
  meminc       the incremental base + its own memory

and the script prints AUC and log loss per period, the averages, and how many periods each
variant needs after the drift to come back within 0.01 AUC of its pre-drift level. In the
shell, `chart auc_memory,auc_frozen,auc_incremental,auc_meminc` draws the four curves.

  reclab run lua/examples/reloop_drift.lua [periods [seed [interactions [drift_frac]]]]
  reclab run lua/examples/reloop_drift.lua 12 1 60000 0.6

The test suite runs `... 6 1 8000 0.6` (a small world, seconds).
]==]

local reclab = require "reclab"
local periods = tonumber(arg and arg[1]) or 12
local seed = tonumber(arg and arg[2]) or 1
local n_inter = tonumber(arg and arg[3]) or 60000
local frac = tonumber(arg and arg[4]) or 0.6
local small = n_inter < 20000

-- 1. a world with one known drift ---------------------------------------------------------
local t0 = 1577836800                       -- 2020-01-01, the generator's default start
local drift = t0 + 182 * 86400
reclab.world{name = "drifting", seed = seed,
             n_users = small and 300 or 1000, n_items = small and 150 or 600, n_genres = 18,
             n_inter = n_inter, n_drift = 1, drift_ts = {drift},
             drift_frac = frac, drift_strength = 1.0}

-- 2. the stream: four variants side by side -------------------------------------------------
local r = reclab.reloop.stream{data = "drifting", periods = periods, cut = "time",
                               drift = drift, seed = seed}
print(("%-6s %6s %5s | %-29s | %s"):format("period", "rows", "pos", "AUC frozen incr memory meminc",
                                           "logloss frozen incr memory meminc"))
for _, row in ipairs(r.tables.reloop) do
  print(("%-6s %6s %5s | %.4f %.4f %.4f %.4f | %.4f %.4f %.4f %.4f"):format(
    tostring(row.period), tostring(row.rows or ""),
    row.pos and ("%.3f"):format(row.pos) or "",
    row.auc_frozen, row.auc_incremental, row.auc_memory, row.auc_meminc,
    row.ll_frozen, row.ll_incremental, row.ll_memory, row.ll_meminc))
end
print(("drift in period %d; periods to recover (-1 = not within the stream):"):format(
  r.drift_period))
for _, v in ipairs{"frozen", "incremental", "memory", "meminc"} do
  print(("  %-12s %3d   post-drift mean AUC %.4f"):format(v, r["recover_" .. v],
                                                         r["post_drift_auc_" .. v]))
end
print(("memory: %d buckets, %.1f KiB, %.0f ns per lookup"):format(r.mem_buckets,
                                                                 r.mem_bytes / 1024, r.lookup_ns))

-- 3. checks the test suite relies on ---------------------------------------------------------
assert(#r.tables.reloop == periods, "one row per replayed period and the mean")
assert(r.drift_period >= 1 and r.drift_period < periods, "the drift falls inside the stream")
for _, v in ipairs{"frozen", "incremental", "memory", "meminc"} do
  local a = r["mean_auc_" .. v]
  assert(a > 0.5 and a < 1, v .. ": mean AUC " .. a)
end
-- the memory compensates the frozen base after the drift (what the method is for)
assert(r.post_drift_auc_memory > r.post_drift_auc_frozen,
       "the memory improves the frozen base after the drift")
