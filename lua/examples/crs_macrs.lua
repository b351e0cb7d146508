--[==[
crs_macrs.lua: MACRS-style multi-agent conversational recommendation (plugins/crs) against its
baselines, under one user simulator: every simulated user holds a target item, answers the
CRS's attribute questions truthfully from the item's metadata, volunteers a value when the CRS
chit-chats, accepts only the target and leaves after 5 turns (the CRS's last turn is a top-10
list). Success rate, average turns and hit ratio per policy, over seeded target samples; one
stored dialogue replayed; a chat turn typed by hand, continued, and replayed from the store.

  reclab run lua/examples/crs_macrs.lua [targets [seeds [world]]]

targets: simulated users per seed (default 200); seeds: 1..seeds (default 3); world:
"redial" (default when $RECLAB_DATA is set: the ReDial catalogue with MovieLens genres and
decades, a unicrs model as the recommender and as the "model" baseline) or "demo" (the
built-in demo world with its item attributes and a BPR-MF recommender; what the test suite
runs, small).
]==]

local reclab = require "reclab"
local targets = tonumber(arg and arg[1]) or 200
local seeds = tonumber(arg and arg[2]) or 3
local root = os.getenv("RECLAB_DATA")
local world = (arg and arg[3]) or ((root and root ~= "") and "redial" or "demo")

local data, rec
if world == "redial" then
  assert(root and root ~= "", "world 'redial' needs $RECLAB_DATA")
  assert(reclab.datasets.load(root .. "/redial/valid_data.jsonl", {name = "redial_valid"}))
  assert(reclab.datasets.load(root .. "/redial/test_data.jsonl", {name = "redial_test"}))
  reclab.crs.prepare{dialogues = "redial_valid", catalog = "redial_test", name = "redial",
    movies = root .. "/movielens-1m/movies_semicolon.dat," .. root .. "/movielens-100k/u.item"}
  reclab.train{"unicrs", data = "redial", seed = 1}
  data, rec = "redial", "unicrs"
else
  reclab.train{"bprmf", data = "demo", epochs = 5, seed = 1}
  data, rec = "demo", "bprmf"
end

local sum, runs = {}, {}
local order = {"macrs", "always", "askrec", "model"}
for seed = 1, seeds do
  local r = reclab.crs.simulate{data = data, rec = rec, targets = targets, seed = seed}
  runs[seed] = r.run
  for _, row in ipairs(r.tables.simulate) do
    local s = sum[row.policy] or {sr = {}, at = {}, hr = {}}
    table.insert(s.sr, row.success_rate)
    table.insert(s.at, row.avg_turns)
    table.insert(s.hr, row.hit_ratio)
    sum[row.policy] = s
    assert(row.success_rate <= row.hit_ratio, "a success is a hit")
    assert(row.avg_turns >= 1 and row.avg_turns <= 5)
  end
end

local function mean_sd(v)
  local m, s = 0, 0
  for _, x in ipairs(v) do m = m + x / #v end
  for _, x in ipairs(v) do s = s + (x - m) ^ 2 / math.max(1, #v - 1) end
  return m, math.sqrt(s)
end
print(("%s world, recommender %s, %d targets x %d seed(s): mean (sd)"):format(data, rec, targets,
  seeds))
print(("%-8s %16s %16s %16s"):format("policy", "success rate", "avg turns", "hit ratio"))
for _, p in ipairs(order) do
  local s = sum[p]
  if s then
    local a, b = mean_sd(s.sr)
    local c, d = mean_sd(s.at)
    local e, f = mean_sd(s.hr)
    print(("%-8s %8.3f (%.3f) %8.2f (%.2f)  %8.3f (%.3f)"):format(p, a, b, c, d, e, f))
  end
end

-- one simulated MACRS dialogue, replayed from the store
local rp = reclab.crs.replay{run = runs[1], conversation = 0}
print(("replayed run %d conversation 0: %d turns"):format(runs[1], rp.turns))
for _, t in ipairs(rp.tables.dialogue) do
  print(("  %-6s %s%s"):format(t.role, t.text, t.act and ("   [" .. t.act .. "]") or ""))
end

-- a chat typed by hand: the act, the rejected proposals, the state; continued; replayed
local c = reclab.crs.chat{data = data, rec = rec, model = "macrs", text = "Hi, something new please"}
print("crs: " .. c.response)
print("     " .. c.detail)
local c2 = reclab.crs.chat{session = c.session, text = "no, not that one"}
print("crs: " .. c2.response)
local back = reclab.crs.replay{run = c.session}
assert(back.turns == 4, "the chat is stored: 2 user + 2 system turns")
