-- tests/mpi/sim.lua [partition]: run by tests/mpi/run.sh on 1 and on 2 ranks (same seed).
-- partition=on (one process) is the reference the 2 ranks' default (agents partitioned, each
-- rank steps its own, messages between rounds: plugins/simulator/shard.c) must reproduce;
-- partition=off on 2 ranks (agents replicated, decisions shared out) must reproduce the
-- default one-process run. Either way the same statistics, and the same events, in order, in
-- rank 0's store (a digest of every event's round, agent, kind and payload); every rank
-- holds the same statistics, and after the step every rank holds every agent (a digest of
-- the agents' watch histories and heard lists, compared over ranks).
local part = ... or "auto"
local mpi = reclab.mpi
local made = reclab.simulator.new{data = "demo", agents = 80, seed = 5, max_active = 50,
                                        partition = part}
local parted = part == "on" or (part == "auto" and mpi.size() > 1)
assert(made.partitioned == (parted and 1 or 0), "partitioned: " .. tostring(made.partitioned))
local share = parted and 80 // mpi.size() or 80
assert(made.owned == share or (parted and made.owned == share + 1), "owned: " .. tostring(made.owned))
assert(mpi.allreduce(made.owned) == (parted and 80 or 80 * mpi.size()), "every agent owned once")
if mpi.rank() == 0 and parted then print(("partitioned: %d agents per rank"):format(made.owned)) end
local b0 = mpi.bytes()
local r = reclab.simulator.step{rounds = 4}
local bytes = mpi.bytes() - b0
assert((bytes > 0) == (mpi.size() > 1), "nothing was exchanged")
local names = {"sim.watches", "sim.ctr", "sim.coverage", "sim.satisfaction", "sim.watch_entropy",
               "sim.exposure_entropy", "sim.shown_entropy", "round"}
for _, k in ipairs(names) do
  local v = assert(tonumber(r[k]), "no " .. k)
  assert(mpi.allreduce(v, "max") == mpi.allreduce(v, "min"), k .. " differs between ranks")
  if mpi.rank() == 0 then print(("RESULT sim.%s %.17g"):format(k:gsub("^sim%.", ""), v)) end
end
-- every agent as every rank holds it after the step (partitioned: gathered at its end)
local ah = 0
for a = 0, 79 do
  local iv = reclab.simulator.interview{agent = a, question = "What did you watch lately?"}
  local line = reclab.simulator.agent{agent = a}.watches .. "|" .. iv.answer
  for i = 1, #line do ah = (ah * 31 + line:byte(i)) % 2147483647 end
end
assert(mpi.allreduce(ah, "max") == mpi.allreduce(ah, "min"), "the agents differ between ranks")
if mpi.rank() == 0 then print("RESULT sim.agents_digest " .. ah) end
if mpi.rank() == 0 then
  local ev = reclab.db.query("SELECT round, agent, kind, payload FROM events ORDER BY run_id, seq")
  local h, chats, posts = 0, 0, 0
  for _, e in ipairs(ev) do
    local line = ("%s|%s|%s|%s"):format(e.round, e.agent, e.kind, e.payload)
    for i = 1, #line do h = (h * 31 + line:byte(i)) % 2147483647 end
    if e.kind == "chat" then chats = chats + 1 elseif e.kind == "post" then posts = posts + 1 end
  end
  assert(#ev > 50, "only " .. #ev .. " events")
  assert(chats > 0 and posts > 0, "no chats or posts: the exchange is not exercised")
  print("RESULT sim.events " .. #ev)
  print("RESULT sim.digest " .. h)
  print(("bytes exchanged by rank 0 in 4 rounds: %d"):format(bytes))
end
