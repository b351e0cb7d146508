--[==[
reloop_drift.lua: ReLoop2's error compensation on a stream whose users change their taste at
a known time (plugins/reloop). Two synthetic worlds are generated from the same seed: one with
a drift (at day 182 of 365 a share of users replace their taste by a fresh one) and a steady
twin without it. Each world's ratings are replayed in time order (label = rating >= 4), cut
into equal periods; period 0 fits a logistic-MF base, then every later period is predicted
and learnt from by four variants:

  frozen       the base as fitted on period 0
  incremental  the base with one SGD pass over each period after predicting it
  memory       the frozen base + an error memory (SimHash LSH over the base's hidden vectors,
               refreshed every 256 labels)
  meminc       the incremental base + its own memory

The script prints AUC and log loss per period of the drifting stream, then the drift's cost
per period and variant (AUC of the steady twin minus AUC with drift: the world's own trends,
which both share, cancel) and how long each variant pays it: the periods from the drift until
its cost stays within `tol` (0.01 AUC). In the shell,
`chart auc_frozen,auc_incremental,auc_memory,auc_meminc` draws the four curves of a run.

  reclab run lua/examples/reloop_drift.lua [periods [seed [interactions [drift_frac]]]]
  reclab run lua/examples/reloop_drift.lua 12 1 60000 1.0

The test suite runs `... 6 1 8000 1.0` (small worlds, seconds).
]==]

local reclab = require "reclab"
local periods = tonumber(arg and arg[1]) or 12
local seed = tonumber(arg and arg[2]) or 1
local n_inter = tonumber(arg and arg[3]) or 60000
local frac = tonumber(arg and arg[4]) or 1.0
local small = n_inter < 20000
local tol = 0.01
local variants = {"frozen", "incremental", "memory", "meminc"}

-- 1. two worlds: one drift at a known time, and its steady twin ----------------------------
local t0 = 1577836800                       -- 2020-01-01, the generator's default start
local drift = t0 + 182 * 86400
local function world(name, n_drift)
  reclab.world{name = name, seed = seed,
               n_users = small and 300 or 1000, n_items = small and 150 or 600, n_genres = 18,
               n_inter = n_inter, n_drift = n_drift, drift_ts = {drift},
               drift_frac = frac, drift_strength = 1.0}
end
world("drifting", 1)
world("steady", 0)

-- 2. the streams: four variants side by side ------------------------------------------------
local function stream(data)
  return reclab.reloop.stream{data = data, periods = periods, drift = drift, seed = seed}
end
local r, c = stream("drifting"), stream("steady")
print(("%-6s %6s %5s | %-29s | %s"):format("period", "rows", "pos", "AUC frozen incr memory meminc",
                                           "logloss frozen incr memory meminc"))
for _, row in ipairs(r.tables.reloop) do
  print(("%-6s %6s %5s | %.4f %.4f %.4f %.4f | %.4f %.4f %.4f %.4f"):format(
    tostring(row.period), tostring(row.rows or ""),
    row.pos and ("%.3f"):format(row.pos) or "",
    row.auc_frozen, row.auc_incremental, row.auc_memory, row.auc_meminc,
    row.ll_frozen, row.ll_incremental, row.ll_memory, row.ll_meminc))
end

-- 3. the drift's cost: steady twin minus drifting world, per period after the drift ----------
local d = r.drift_period
print(("drift in period %d; AUC cost of the drift (steady - drifting) per period:"):format(d))
local cost, paid = {}, {}
for _, v in ipairs(variants) do cost[v], paid[v] = {}, 0 end
for p = d, periods - 1 do
  local line = ("  period %2d"):format(p)
  for _, v in ipairs(variants) do
    local x = c.tables.reloop[p]["auc_" .. v] - r.tables.reloop[p]["auc_" .. v]
    cost[v][#cost[v] + 1] = x
    if x > tol then paid[v] = p - d + 1 end   -- the last period still paying counts
    line = line .. ("  %s %+.4f"):format(v, x)
  end
  print(line)
end
print(("periods paying more than %.2f AUC after the drift, and the mean cost:"):format(tol))
local mean = {}
for _, v in ipairs(variants) do
  local s = 0
  for _, x in ipairs(cost[v]) do s = s + x end
  mean[v] = s / #cost[v]
  print(("  %-12s %2d   mean cost %+.4f"):format(v, paid[v], mean[v]))
end
print(("memory: %d buckets, %.1f KiB, %.0f ns per lookup"):format(r.mem_buckets,
                                                                 r.mem_bytes / 1024, r.lookup_ns))

-- 4. checks the test suite relies on ---------------------------------------------------------
assert(#r.tables.reloop == periods, "one row per replayed period and the mean")
assert(d >= 1 and d < periods, "the drift falls inside the stream")
for _, v in ipairs(variants) do
  local a = r["mean_auc_" .. v]
  assert(a > 0.5 and a < 1, v .. ": mean AUC " .. a)
end
-- the memory improves its base on the drifting stream (what the method is for)
assert(r.mean_auc_memory > r.mean_auc_frozen, "the memory improves the frozen base")
