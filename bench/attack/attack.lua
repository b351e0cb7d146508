-- bench/attack/attack.lua (run by bench/attack/run.sh): see run.sh. Prints JSON lines.
local reclab = require "reclab"
local budget = tonumber(arg and arg[1]) or 200
local sep = tonumber(arg and arg[2]) or 3
local root = os.getenv("RECLAB_DATA")
local name = "ml-100k"
local f = root and io.open(root .. "/movielens-100k/u.data")
if f then
  f:close()
  assert(reclab.datasets.load(root .. "/movielens-100k/u.data", {format = "ml-100k", name = name}))
else
  name = "demo"
  reclab.world.demo(name)
end

local function load1()
  local h = io.open("/proc/loadavg")
  local v = h and tonumber(h:read("*l"):match("^(%S+)")) or -1
  if h then h:close() end
  return v
end

local function emit(metric, value, unit, extra)
  print(('{"bench": "attack", "metric": "%s", "value": %.6g, "unit": "%s", "baseline": null, '
         .. '"data": "%s", "budget": %d, "load1": %.2f%s}'):format(
    metric, value, unit, name, budget, load1(), extra or ""))
end

reclab.train{"sasrec", data = name, name = "victim", epochs = 5, dim = 64, maxlen = 50, seed = 1,
             eval_every = 0}
local common = {victim = "victim", data = name, budget = budget, len = 50, epochs = sep,
                kind = "sasrec", train = "dim=64 maxlen=50", eval_victim = false,
                eval_users = 200, seed = 1}
local function run(extra)
  local a = {}
  for k, v in pairs(common) do a[k] = v end
  for k, v in pairs(extra) do a[k] = v end
  return reclab.attack.extract(a)
end

local r = run{name = "df", loss = "rank"}
emit("datafree_queries_per_second", r.queries / r["attack.gen_seconds"], "queries/s",
     (', "queries": %d'):format(r.queries))
emit("surrogate_rank_train_seconds_per_epoch", r["attack.train_seconds"] / sep, "s",
     (', "sequences": %d'):format(r["attack.sequences"]))
r = run{name = "dfr", loss = "rank", repair = 1}
emit("surrogate_rank_repair_train_seconds_per_epoch", r["attack.train_seconds"] / sep, "s")
r = run{name = "dfn", loss = "next"}
emit("surrogate_next_train_seconds_per_epoch", r["attack.train_seconds"] / sep, "s")
r = run{name = "fs", loss = "rank", repair = 1, fewshot = 0.1, sampler_epochs = 10}
emit("fewshot_queries_per_second", r.queries / r["attack.gen_seconds"], "queries/s",
     ', "note": "victim queries plus the sampler\'s scoring and the gate, per victim query"')
emit("fewshot_sampler_train_seconds", r["attack.sampler_seconds"], "s")
