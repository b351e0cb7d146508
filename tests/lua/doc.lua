-- tests/lua/doc.lua: the Lua API's help (lua/ldoc.c) and the module agree both ways. Every
-- function of the reclab module (its tables and the Model methods; plugin command tables
-- come from the command tables, whose help the host checks) has a help entry with usage and
-- example, and every entry of `help reclab` names something the module has. Also the
-- command forms: help reclab.core.sql, help reclab.sql (an alias) show the command's help.
-- Run: reclab -q --db DIR/reclab.db run tests/lua/doc.lua. Check ids "lua.doc.<n>".

local reclab = require "reclab"

local function check(id, cond, ...)
  if not cond then error(id .. ": " .. string.format(...), 2) end
end

local function has_entry(name)
  local text = reclab.help(name)
  return text ~= nil and text:find("usage: ", 1, true) ~= nil
      and text:find("example", 1, true) ~= nil
end

-- lua.doc.1: every module function and table field has an entry --------------------------
local own = {datasets = true, world = true, models = true, db = true, runs = true, job = true,
             mpi = true}
for k, v in pairs(reclab) do
  local name = "reclab." .. k
  if type(v) == "function" then -- top-level command aliases show the command's help
    check("lua.doc.1", has_entry(name), "%s has no help entry", name)
  elseif type(v) == "table" and own[k] then
    for fk, fv in pairs(v) do
      if type(fv) == "function" then
        check("lua.doc.1", has_entry(name .. "." .. fk), "%s.%s has no help entry", name, fk)
      end
    end
  end
end
check("lua.doc.1", has_entry("reclab.version"), "reclab.version")
check("lua.doc.1", has_entry("reclab.world"), "reclab.world (callable)")
local mt = debug.getregistry()["reclab.Model"]
for k, v in pairs(mt.methods) do
  if type(v) == "function" then
    check("lua.doc.1", has_entry("reclab.Model:" .. k), "Model:%s has no help entry", k)
  end
end
-- reclab.job exists only inside lua.run: its functions are checked there
local r = reclab.lua.run{code = [[
  for k, v in pairs(reclab.job) do
    if type(v) == "function" and not reclab.help("reclab.job." .. k) then
      error("reclab.job." .. k .. " has no help entry")
    end
  end
  print("job ok")
]]}
check("lua.doc.1", r.lines[1] == "job ok", "lua.run: %s", tostring(r.lines[1]))

-- lua.doc.2: every entry of the reference names a field of the module ------------------------
local all = reclab.help("reclab")
local n = 0
for call in all:gmatch("\nusage: ([^\n]+)") do
  n = n + 1
  local path = call:match("^(reclab[%w_%.]*)") or call:match("^m:(%w+)")
  check("lua.doc.2", path ~= nil, "cannot read the name of %q", call)
  if call:match("^m:") then
    check("lua.doc.2", mt.methods[path] ~= nil, "Model:%s does not exist", path)
  elseif path ~= "reclab.core." and not path:match("^reclab%.job%.") then
    local v = reclab
    for part in path:gmatch("[^%.]+") do
      if part ~= "reclab" then v = v and v[part] end
    end
    check("lua.doc.2", v ~= nil, "%s does not exist in the module", path)
  end
end
check("lua.doc.2", n >= 35, "only %d entries in help reclab", n)

-- lua.doc.3: prefixes, commands, misses -------------------------------------------------------
local ds = reclab.help("reclab.datasets")
check("lua.doc.3", ds:find("reclab.datasets.load(", 1, true) and ds:find("reclab.datasets.split(", 1, true)
      and not ds:find("reclab.models", 1, true), "help reclab.datasets: %s", ds)
for _, t in ipairs{"reclab.core.sql", "reclab.sql"} do
  local h = reclab.help(t)
  check("lua.doc.3", h and h:match("^usage: sql query%.%.%.") and h:find("Lua: reclab.core.sql{", 1, true),
        "help %s: %s", t, tostring(h))
end
local h = reclab.help("reclab.lua.run")
check("lua.doc.3", h and h:match("^usage: lua%.run") and h:find("examples:", 1, true),
      "help reclab.lua.run: %s", tostring(h))
local none, msg = reclab.help("reclab.nosuch")
check("lua.doc.3", none == nil and msg:match("unknown command 'reclab.nosuch'"), "miss: %s",
      tostring(msg))
print("doc.lua: ok")
