-- bench/mpi/bench.lua: one rank-count's measurements for bench/mpi/run.sh (not alone).
-- Prints, on rank 0, "M name value" lines: BPR-MF and SASRec data-parallel training (seconds
-- per epoch, bytes this rank sent per step, seconds waiting in collectives), sharded full-ranking
-- evaluation (seconds), sharded simulation (seconds and bytes per round).
local mpi = reclab.mpi
local epochs, batch = tonumber(arg[1]) or 3, tonumber(arg[2]) or 1024
local agents, rounds = tonumber(arg[3]) or 300, tonumber(arg[4]) or 4
local dir, name = os.getenv("RECLAB_DATA"), "demo"
if dir and dir ~= "" and io.open(dir .. "/movielens-100k/u.data") then
  name = "ml-100k"
  assert(reclab.datasets.load(dir .. "/movielens-100k/u.data", {format = "ml-100k", name = name}))
end
local info = reclab.datasets.info(name)
local function M(k, v) if mpi.rank() == 0 then print(("M %s %.10g"):format(k, v)) end end
M("users", info.n_users); M("items", info.n_items); M("inter", info.n_inter)
if mpi.rank() == 0 then print("D " .. name) end

mpi.barrier()
local b0, w0 = mpi.bytes(), mpi.wait_seconds()
local res = reclab.train{"bprmf", data = name, epochs = epochs, batch = batch, seed = 1,
                         eval_every = 0, eval_test = false, name = "bench-bpr"}
-- steps: leave-one-out keeps all but 2 interactions per user for training
local steps = epochs * math.ceil((info.n_inter - 2 * info.n_users) / batch)
M("train_s_per_epoch", res.seconds / epochs)
M("train_bytes_per_step", (mpi.bytes() - b0) / steps)
M("train_wait_s_per_epoch", (mpi.wait_seconds() - w0) / epochs)
M("train_steps_per_epoch", steps / epochs)

-- SASRec: the dense exchange (the whole parameter block every step), one epoch, with the
-- exchange overlapped with the backward (sas_*) and after it (sasnoov_*), alternated twice in
-- this process (run.sh keeps the best of each); cpu = this rank's CPU seconds (os.clock)
local qsteps = math.ceil(info.n_users / 256)
for rep = 1, 2 do
  for _, ov in ipairs{true, false} do
    local pre = ov and "sas" or "sasnoov"
    mpi.overlap(ov)
    mpi.barrier()
    b0, w0 = mpi.bytes(), mpi.wait_seconds()
    local c0 = os.clock()
    local q = reclab.train{"sasrec", data = name, epochs = 1, seed = 1, dim = 32, maxlen = 50,
                           batch = 256, eval_every = 0, eval_test = false,
                           name = ("bench-%s-%d"):format(pre, rep)}
    M(pre .. "_s_per_epoch", q.seconds)
    M(pre .. "_cpu_s_per_epoch", os.clock() - c0)
    M(pre .. "_bytes_per_step", (mpi.bytes() - b0) / qsteps)
    M(pre .. "_wait_s_per_epoch", mpi.wait_seconds() - w0)
  end
end
mpi.overlap(true)
M("sas_steps_per_epoch", qsteps)

mpi.barrier()
local t = mpi.wtime()
b0 = mpi.bytes()
local ev = reclab.evaluate{model = res.model, data = name}
M("eval_s", mpi.wtime() - t)
M("eval_bytes", mpi.bytes() - b0)
M("eval_ndcg10", ev["ndcg@10"])

-- simulation, agents partitioned (partition=on: on 1 rank the same simulation by one owner)
-- and replicated with the decisions shared out (off); no checkpoints, so that the bytes are the
-- round's own exchange (messages, watchers, chat cards, events, watches, exposures, counters);
-- a step's end gathers every agent to every rank (sim_sync_bytes, once per step call)
for _, part in ipairs{"on", "off"} do
  local pre = part == "on" and "sim" or "simrep"
  reclab.simulator.new{data = "demo", agents = agents, seed = 1, partition = part,
                       checkpoint_every = 0}
  mpi.barrier()
  b0 = mpi.bytes()
  reclab.simulator.step{rounds = 1} -- one round and the step's end
  local one = mpi.bytes() - b0
  mpi.barrier()
  t, b0 = mpi.wtime(), mpi.bytes()
  local c0 = os.clock()
  reclab.simulator.step{rounds = rounds + 1}
  local per = (mpi.bytes() - b0 - one) / rounds
  M(pre .. "_s_per_round", (mpi.wtime() - t) / (rounds + 1))
  M(pre .. "_cpu_s_per_round", (os.clock() - c0) / (rounds + 1))
  M(pre .. "_bytes_per_round", per)
  M(pre .. "_sync_bytes", one - per)
end
