-- tests/lua/simulator2.lua: simulator II from Lua: simulator.fidelity (tables, run metrics with
-- the protocol) and role play (play / act / chat, the events in the store). Check ids
-- lua.simulator2.<n> in the messages.
local reclab = require "reclab"

-- a generated world has timestamps and ratings, like MovieLens
reclab.simulator.world{name = "fw", users = 200, items = 200, genres = 8, interactions = 6000,
                       seed = 5}
local f = reclab.simulator.fidelity{data = "fw", seed = 2}
local rows = {}
for _, r in ipairs(f.tables.fidelity) do rows[r.policy] = r end
assert(rows.random and rows.offline and rows.offline_fit and not rows.openai,
       "lua.simulator2.1: one row per offline policy")
assert(rows.offline_fit.accuracy > rows.random.accuracy,
       ("lua.simulator2.2: fitted accuracy %.3f vs random %.3f"):format(
         rows.offline_fit.accuracy, rows.random.accuracy))
assert(rows.offline_fit.mae < rows.random.mae, "lua.simulator2.3: fitted MAE below random's")
assert(#f.tables.ratings == 5, "lua.simulator2.4: five star levels")
local share = 0
for _, r in ipairs(f.tables.ratings) do share = share + r.real end
assert(math.abs(share - 1) < 1e-9, "lua.simulator2.5: the real distribution sums to 1")
assert(f.protocol:find("history cut 0.80 by time"), "lua.simulator2.6: " .. tostring(f.protocol))
local found
for _, m in ipairs(reclab.runs.metrics(f.run)) do
  if m.split == "fidelity" and m.name == "offline_fit.f1" then found = m end
end
assert(found and found.protocol == f.protocol and math.abs(found.value - rows.offline_fit.f1) < 1e-9,
       "lua.simulator2.7: the F1 is a run metric with its protocol")

-- (c) from a recommender trained here on the known histories only
local g = reclab.simulator.fidelity{data = "fw", seed = 2, rec = "train:pop"}
local cut = reclab.datasets.info("fw.cut")
local full = reclab.datasets.info("fw")
assert(cut and cut.n_inter < full.n_inter and cut.n_users == full.n_users,
       "lua.simulator2.14: the cut dataset holds the known rows of every user")
assert(g.protocol:find("from train:pop"), "lua.simulator2.15: " .. g.protocol)
assert(g.tables.fidelity[1].real_hit >= 0, "lua.simulator2.16: real hit measured")

-- role play
local s = reclab.simulator.new{data = "fw", agents = 30, seed = 1}
local p = reclab.simulator.play{agent = 2}
assert(p.agent == 2 and #p.tables.page == 5, "lua.simulator2.8: the played agent's page")
local a = reclab.simulator.act{["do"] = "buy", k = 2, feeling = "A good one."}
assert(a.item == p.tables.page[2].item and a.feeling == "A good one.", "lua.simulator2.9: bought")
local c = reclab.simulator.chat{with = 7, text = "Hello there!"}
assert(c.ended == 0 and #c.reply > 0, "lua.simulator2.10: the other side answers")
local c2 = reclab.simulator.chat{text = "Bye for now"}
assert(c2.ended == 1, "lua.simulator2.11: a goodbye ends the chat")
local ev = reclab.db.query([[SELECT kind, count(*) AS n FROM events WHERE run_id = ?1 AND
  agent = 2 AND json_extract(payload, '$.by') = 'human' GROUP BY kind ORDER BY kind]], s.sim)
local kinds = {}
for _, r in ipairs(ev) do kinds[r.kind] = r.n end
assert(kinds.watch == 1 and kinds.visit == 1 and kinds.chat == 1 and kinds.chat_turn == 2 and
       kinds.play == 1, "lua.simulator2.12: the played agent's events are stored")
local w = reclab.db.query([[SELECT json_extract(payload, '$.feeling') AS f FROM events
  WHERE run_id = ?1 AND agent = 2 AND kind = 'watch']], s.sim)
assert(w[1].f == "A good one.", "lua.simulator2.13: the person's feeling is the agent's")
reclab.simulator.play{stop = 1}
print("simulator2.lua: ok")
