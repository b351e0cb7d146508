--[[ lua/examples/mpi_sweep.lua: one script, any number of ranks (doc/mpi.md).

  build/reclab run lua/examples/mpi_sweep.lua                    one process
  mpirun -np 4 build/reclab run lua/examples/mpi_sweep.lua       four ranks
  srun -n 64 build/reclab run lua/examples/mpi_sweep.lua         Slurm (doc/reclab-mpi.sbatch)

Every rank runs this file. Rank 0 alone writes the session store and prints; the lines the
others print that rank 0 did not are shown by rank 0 at the end, as "[rank r] line". Arguments: epochs (default 5), seeds (default 4).
]]
local mpi = reclab.mpi
local epochs, nseeds = tonumber(arg and arg[1]) or 5, tonumber(arg and arg[2]) or 4
local function say(...) if mpi.rank() == 0 then print(...) end end
say(("reclab %s on %d rank(s), %s"):format(reclab.version, mpi.size(), mpi.library))

-- 1. Data-parallel training: each rank computes a shard of every BPR-MF batch; the gradients
--    are summed over ranks before each update, so the model is the one-process model.
local t = mpi.wtime()
local res = reclab.train{"bprmf", data = "demo", name = "bpr", epochs = epochs, seed = 1}
say(("1. bprmf: test ndcg@10 %.4f in %.2f s (%d bytes sent by this rank)"):format(
    res["test.ndcg@10"], mpi.wtime() - t, mpi.bytes()))

-- 2. Sharded evaluation: the users are split over the ranks, the per-user values gathered.
local ev = reclab.evaluate{model = res.model, data = "demo", k = {10}}
say(("2. evaluate: ndcg@10 %.4f over %d users (%s ranking)"):format(ev["ndcg@10"], ev.n_users,
    ev.protocol))

-- 3. Partitioned simulation: each rank owns and steps a block of the agents; what a chat or a
--    post does to another rank's agent travels between rounds. partition = "on" gives one
--    process the same round model (social effects arrive at the round's end), so the numbers
--    are the same on any number of ranks.
reclab.simulator.new{data = "demo", agents = 100, seed = 1, model = "bpr", partition = "on"}
local sim = reclab.simulator.step{rounds = 3}
say(("3. simulator: %d watches, ctr %.3f after %d rounds"):format(sim.watches, sim.ctr, sim.round))

-- 4. A seed sweep: independent runs spread over the ranks, results gathered into rank 0's
--    store (one run per job, plugin "mpi", kind "sweep").
local seeds = {}
for i = 1, nseeds do seeds[i] = i end
local r = mpi.sweep{name = "bpr-seeds", seeds = seeds, configs = {{dim = 16}, {dim = 64}},
  run = function(job)
    local m = reclab.train{"bprmf", data = "demo", epochs = epochs, seed = job.seed,
                           dim = job.dim, name = ("bpr-%d-%d"):format(job.dim, job.seed)}
    return {ndcg10 = m["test.ndcg@10"]}
  end}
local sum = {}
for _, x in ipairs(r) do
  assert(not x.error, x.error)
  local d = x.config.dim
  sum[d] = (sum[d] or 0) + x.values.ndcg10 / nseeds
end
say(("4. sweep of %d jobs: mean test ndcg@10 dim 16 %.4f, dim 64 %.4f"):format(#r, sum[16],
    sum[64]))
