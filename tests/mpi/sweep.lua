-- tests/mpi/sweep.lua: reclab.mpi.sweep spreads 2 configs x 3 seeds over the ranks; every
-- rank gets every result, and rank 0's store records one run per job.
local mpi = reclab.mpi
local r = mpi.sweep{name = "t-sweep", seeds = {1, 2, 3}, configs = {{dim = 8}, {dim = 16}},
  run = function(job)
    assert(reclab.mpi.size() == mpi.size()) -- the world is still visible from Lua
    local t = reclab.train{"bprmf", data = "demo", epochs = 1, seed = job.seed, dim = job.dim,
                           name = ("sw-%d-%d"):format(job.dim, job.seed)}
    return {ndcg = t["test.ndcg@10"], rank = mpi.rank()}
  end}
assert(#r == 6, "6 results, got " .. #r)
for i, x in ipairs(r) do
  assert(not x.error, x.error)
  assert(x.rank == (i - 1) % mpi.size(), "job " .. i .. " on rank " .. x.rank)
  assert(x.values.rank == x.rank, "job " .. i .. " ran on rank " .. tostring(x.values.rank))
  assert(x.values.ndcg > 0, "job " .. i .. " has no ndcg")
  if mpi.rank() == 0 then print(("RESULT sweep.%d.ndcg %.17g"):format(i, x.values.ndcg)) end
end
-- a failing job is reported, not fatal
local f = mpi.sweep{jobs = {{n = 1}, {n = 2}}, run = function(job)
  if job.n == 2 then error("job two fails") end
  return {n = job.n}
end}
assert(f[1].values.n == 1 and not f[1].error)
assert(f[2].error and f[2].error:find("job two fails"), tostring(f[2].error))
if mpi.rank() == 0 then
  local n = reclab.db.query("SELECT count(*) AS n FROM runs WHERE plugin = 'mpi' AND status = 'done'")
  print("RESULT sweep.runs_done " .. n[1].n)
  local m = reclab.db.query("SELECT count(*) AS n FROM metrics m JOIN runs r ON r.id = m.run_id WHERE r.plugin = 'mpi' AND m.name = 'ndcg'")
  print("RESULT sweep.ndcg_rows " .. m[1].n)
  local bad = reclab.db.query("SELECT count(*) AS n FROM runs WHERE plugin = 'mpi' AND status = 'failed'")
  print("RESULT sweep.runs_failed " .. bad[1].n)
end
