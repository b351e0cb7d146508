-- tests/lua/module.lua: the reclab module in a plain lua5.4 (require finds build/lua/reclab.so
-- through LUA_CPATH; the store is $RECLAB_DB). The module makes its own host: plugins from the
-- build tree, the demo world as "demo".
local reclab = require "reclab"
local function check(id, cond, ...)
  if not cond then error(id .. ": " .. string.format(...), 2) end
end
check("lua.module.1", package.loaded.reclab == reclab, "require caches the module")
check("lua.module.1", reclab.db.path() == os.getenv("RECLAB_DB"), "store %s", reclab.db.path())
local d = reclab.datasets.info("demo")
check("lua.module.1", d and d.n_users == 1000 and d.n_items == 600, "demo world")
local s = reclab.datasets.split("demo")
check("lua.module.1", s.n_test == 1000, "split")
check("lua.module.2", reclab.lua.run{code = "print(1)"}.lines[1] == "1", "lua.run")
local miss, msg = reclab.datasets.info("nope")
check("lua.module.2", miss == nil and msg:match("^datasets%.info:"), "nil, msg")
if reclab.baselines then
  local t = reclab.train{"pop", data = "demo"}
  local r = reclab.evaluate{model = t.model, data = "demo", k = {10}}
  check("lua.module.3", r["hr@10"] > 0 and r.run > 0, "evaluate in the module")
  local rows = reclab.db.query("SELECT status FROM runs WHERE id = ?1", r.run)
  check("lua.module.3", rows[1].status == "done", "run stored")
else
  print("(baselines plugin not found)")
end
print("module.lua: ok")
