-- tests/lua/jobs.lua: a Lua error inside a job leaves the store consistent and the run
-- `failed` (issue 4, Must show). lua.run runs a chunk as a host command (its own run row,
-- metrics through reclab.job.metric); here it fails half-way.

local reclab = require "reclab"

local function check(id, cond, ...)
  if not cond then error(id .. ": " .. string.format(...), 2) end
end

-- lua.job.1: a chunk that records metrics, then fails -----------------------------------------
local code = [[
  for step = 1, 3 do reclab.job.metric(step, "train", "loss", 1 / step) end
  reclab.job.progress(3, 10, "step")
  local t = nil
  return t.field            -- a Lua error in the middle of the job
]]
local ok, msg = pcall(reclab.lua.run, {code = code})
check("lua.job.1", not ok, "the job should fail")
check("lua.job.1", msg:match("^lua%.run: job:4: attempt to index a nil value %(local 't'%)$"),
      "message %q", msg)

local run = reclab.db.query([[SELECT id, status, error, ended FROM runs
                              WHERE name = 'lua.run' ORDER BY id DESC LIMIT 1]])[1]
check("lua.job.1", run and run.status == "failed", "status %s", run and run.status)
check("lua.job.1", run.error:match("attempt to index a nil value"), "error %q", run.error)
check("lua.job.1", run.ended ~= nil, "the run has an end time")
-- the metrics written before the error are committed, in order, with their values
local ms = reclab.runs.metrics(run.id)
check("lua.job.1", #ms == 3, "%d metric rows", #ms)
for i, m in ipairs(ms) do
  check("lua.job.1", m.step == i and m.name == "loss" and math.abs(m.value - 1 / i) < 1e-12,
        "metric %d: %s %s %g", i, m.step, m.name, m.value)
end
check("lua.job.1", reclab.db.query("PRAGMA integrity_check")[1].integrity_check == "ok",
      "integrity")
check("lua.job.1", reclab.db.query("PRAGMA foreign_key_check")[1] == nil, "foreign keys")
check("lua.job.1", #reclab.runs.list{status = "running"} == 0, "no run left running")

-- lua.job.2: the same chunk without the error succeeds, and its state is not ours ------------
local r = reclab.lua.run{code = "x_global = 1; reclab.job.metric(1, 'train', 'loss', 0.25)"}
check("lua.job.2", reclab.runs.get(r.run).status == "done", "status")
check("lua.job.2", x_global == nil, "a job has its own globals")
check("lua.job.2", #reclab.runs.metrics(r.run) == 1, "metric")

-- lua.job.3: print() inside a job becomes the command's output lines -------------------------
local p = reclab.lua.run{code = "print('a', 1); print('b')"}
check("lua.job.3", p.lines[1] == "a\t1" and p.lines[2] == "b", "lines %s",
      table.concat(p.lines, "|"))

-- lua.job.4: the job sees the session's datasets and commands --------------------------------
reclab.world{name = "jw", n_users = 20, n_items = 30, n_inter = 200, avg_follow = 0}
local q = reclab.lua.run{code = [[
  local d = assert(reclab.datasets.info("jw"))
  print(d.n_users, d.n_items)
  local ok, e = pcall(reclab.lua.run, {cod = 1})
  print(e)
]]}
check("lua.job.4", q.lines[1] == "20\t30", "dataset seen from the job: %s", tostring(q.lines[1]))
check("lua.job.4", q.lines[2]:match("^lua%.run: unknown argument 'cod'"), "nested: %s",
      tostring(q.lines[2]))
-- a failing plugin command inside the job fails the job
if reclab.baselines then
  local ok2, m2 = pcall(reclab.lua.run,
                        {code = "reclab.train{'pop', data = 'missing'}"})
  check("lua.job.4", not ok2 and m2:match("baselines%.train: dataset 'missing' not found"),
        "%s", tostring(m2))
end

-- lua.job.5: reclab.job outside a job -------------------------------------------------------
check("lua.job.5", reclab.job == nil, "reclab.job exists only inside lua.run")
print("jobs.lua: ok")
