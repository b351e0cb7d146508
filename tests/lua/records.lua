-- tests/lua/records.lua: the shell's record commands are host commands, so Lua reaches them
-- as reclab.core.<cmd>{...} and, where the name is free, reclab.<cmd>{...}: runs, show,
-- compare, sql (limits, the guard), load (a dataset; a checkpoint), export (run=, model=).
-- Run: reclab -q --db DIR/reclab.db run tests/lua/records.lua (in an empty folder).
-- Check ids "lua.records.<n>".

local reclab = require "reclab"

local function check(id, cond, ...)
  if not cond then error(id .. ": " .. string.format(...), 2) end
end
local function raises(id, pattern, f, ...)
  local ok, msg = pcall(f, ...)
  check(id, not ok, "expected an error matching %q, got success", pattern)
  check(id, tostring(msg):match(pattern), "error %q does not match %q", tostring(msg), pattern)
end
local function slurp(path)
  local f = assert(io.open(path))
  local s = f:read("a")
  f:close()
  return s
end

-- lua.records.1: sql, as reclab.core.sql and reclab.sql ----------------------------------------
local r = reclab.core.sql{"SELECT 1 AS one, 'a b' AS t"}
check("lua.records.1", r.tables.sql[1].one == 1 and r.tables.sql[1].t == "a b",
      "sql row %s", tostring(r.tables.sql[1] and r.tables.sql[1].one))
check("lua.records.1", r.tables.sql.columns[1] == "one" and r.lines[1] == "1 row, 2 columns",
      "columns / line %s", tostring(r.lines[1]))
r = reclab.sql{query = "SELECT 2 AS two"}
check("lua.records.1", r.tables.sql[1].two == 2, "reclab.sql alias")
r = reclab.sql{"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c",
               rows = 5}
check("lua.records.1", #r.tables.sql == 5 and r.lines[1]:match("^the first 5 rows"),
      "row limit: %d rows, %s", #r.tables.sql, tostring(r.lines[1]))
raises("lua.records.1", "^sql: query refused: DELETE on core table 'runs'", reclab.core.sql,
       {"DELETE FROM runs"})
raises("lua.records.1", "^sql: stopped after 0%.2 s, its time limit", reclab.core.sql,
       {"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c",
        timeout = 0.2})
raises("lua.records.1", "^sql: missing argument 'query'", reclab.core.sql, {})

-- lua.records.2: load a dataset from a path --------------------------------------------------
local f = assert(io.open("tiny.csv", "w"))
f:write("user,item,timestamp\n", "u1,i1,1\nu1,i2,2\nu1,i3,3\nu2,i1,1\nu2,i3,2\nu2,i2,3\n",
        "u3,i2,1\nu3,i1,2\nu3,i3,3\nu4,i3,1\nu4,i1,2\nu4,i2,3\n")
f:close()
r = reclab.core.load{"tiny.csv", name = "tiny"}
check("lua.records.2", r.dataset == "tiny" and r.users == 4 and r.items == 3 and r.interactions == 12,
      "load result %s %s", tostring(r.dataset), tostring(r.users))
check("lua.records.2", reclab.datasets.info("tiny").n_inter == 12, "registered")
check("lua.records.2", reclab.db.query("SELECT count(*) AS n FROM datasets WHERE name = 'tiny'")[1].n == 1,
      "recorded in the store")
raises("lua.records.2", "^load: .*nope%.csv", reclab.load, {"nope.csv"})

-- lua.records.3: runs, show, compare over two training runs ----------------------------------
if reclab.help("train pop") then
  reclab.train{"pop", data = "tiny"}
  reclab.train{"pop", data = "tiny", name = "pop2"}
  r = reclab.core.runs{}
  local rows = r.tables.runs
  check("lua.records.3", #rows == 2 and rows[1].run == 2 and rows[2].run == 1,
        "runs: %d rows", #rows)
  check("lua.records.3", rows[1]["test.ndcg@10"] ~= nil, "metric columns")
  r = reclab.runs{sort = "run", order = "asc", cols = "status,test.*"}
  rows = r.tables.runs
  check("lua.records.3", rows[1].run == 1 and rows[1].status == "done" and rows[1].model == nil,
        "reclab.runs{...}: sort/cols")
  check("lua.records.3", r.sort == "run" and r.order == "asc", "sort scalars")
  check("lua.records.3", #reclab.runs.list() == 2, "reclab.runs.list still there")
  r = reclab.show{1}
  check("lua.records.3", r.lines[1]:match("^run #1  train pop  done"), "show: %s", r.lines[1])
  check("lua.records.3", r.tables.metrics.columns[1] == "metric", "show metrics table")
  r = reclab.core.compare{1, "#2"}
  check("lua.records.3", r.tables.compare.columns[2] == "#1" and r.tables.compare.columns[3] == "#2",
        "compare columns")
  raises("lua.records.3", "^show: no run #77", reclab.show, {77})
  -- lua.records.4: export a run, and a model's top-k -----------------------------------------
  r = reclab.export{run = 1, file = "run1.json"}
  check("lua.records.4", r.file == "run1.json" and slurp("run1.json"):match('"metrics": %['),
        "export run json")
  reclab.export{run = 2, file = "run2.csv"}
  check("lua.records.4", slurp("run2.csv"):match("^run,step,split,name,protocol,value\n2,"),
        "export run csv")
  reclab.export{model = "pop2", file = "top.csv", k = 2}
  check("lua.records.4", slurp("top.csv"):match("^user,rank,item,score\n"), "export model")
  raises("lua.records.4", "^export: nothing to export", reclab.export, {file = "x"})
  -- lua.records.5: load a checkpoint (sniffed) and `load model PATH` -------------------------
  reclab.save{model = "pop2", file = "pop2.ckpt"}
  r = reclab.load{"pop2.ckpt", name = "pop3"}
  check("lua.records.5", tostring(r.model) == "reclab.Model(pop3)", "load checkpoint: %s",
        tostring(r.model))
  r = reclab.core.load{"model", "pop2.ckpt", name = "pop4"}
  check("lua.records.5", reclab.models.get("pop4") ~= nil, "load model PATH")
end
print("records.lua: ok")
