-- tests/mpi/sim.lua: run by tests/mpi/run.sh on 1 and on 2 ranks (same seed). The agents'
-- decisions are shared out over the ranks (plugins/simulator/shard.c); the simulation must be
-- the one-process simulation: the same statistics, and the same events, in order, in rank 0's
-- store (a digest of every event's round, agent, kind and payload). On 2 ranks every rank
-- must also hold the same statistics.
local mpi = reclab.mpi
reclab.simulator.new{data = "demo", agents = 80, seed = 5}
local b0 = mpi.bytes()
local r = reclab.simulator.step{rounds = 4}
assert((mpi.bytes() > b0) == (mpi.size() > 1), "decisions were not exchanged")
local names = {"sim.watches", "sim.ctr", "sim.coverage", "sim.satisfaction", "sim.watch_entropy",
               "sim.exposure_entropy", "sim.shown_entropy", "round"}
for _, k in ipairs(names) do
  local v = assert(tonumber(r[k]), "no " .. k)
  assert(mpi.allreduce(v, "max") == mpi.allreduce(v, "min"), k .. " differs between ranks")
  if mpi.rank() == 0 then print(("RESULT sim.%s %.17g"):format(k:gsub("^sim%.", ""), v)) end
end
if mpi.rank() == 0 then
  local ev = reclab.db.query("SELECT round, agent, kind, payload FROM events ORDER BY run_id, seq")
  local h = 0
  for _, e in ipairs(ev) do
    local line = ("%s|%s|%s|%s"):format(e.round, e.agent, e.kind, e.payload)
    for i = 1, #line do h = (h * 31 + line:byte(i)) % 2147483647 end
  end
  assert(#ev > 50, "only " .. #ev .. " events")
  print("RESULT sim.events " .. #ev)
  print("RESULT sim.digest " .. h)
end
