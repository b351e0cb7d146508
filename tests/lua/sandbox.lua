-- tests/lua/sandbox.lua WORKSPACE OUTSIDE: run by tests/lua/sandbox.sh under
-- `reclab --sandbox --db WORKSPACE/reclab.db`. Every check prints "FAIL id: why" on failure;
-- the script ends with "sandbox ok" when all held.
local W, O = ...
local fails = 0
local function fail(id, why) print("FAIL " .. id .. ": " .. tostring(why)); fails = fails + 1 end
local function refused(id, pat, f, ...)
  local ok, msg = pcall(f, ...)
  if ok then fail(id, "not refused") elseif not tostring(msg):find(pat) then fail(id, msg) end
end

-- lua.sandbox.1: what reaches outside is gone
if os.execute ~= nil then fail("lua.sandbox.1", "os.execute") end
if io.popen ~= nil then fail("lua.sandbox.1", "io.popen") end
if package.loadlib ~= nil then fail("lua.sandbox.1", "package.loadlib") end
if debug ~= nil or package.loaded.debug ~= nil then fail("lua.sandbox.1", "debug") end
if os.tmpname ~= nil then fail("lua.sandbox.1", "os.tmpname") end
if package.cpath ~= "" then fail("lua.sandbox.1", "package.cpath " .. package.cpath) end
refused("lua.sandbox.1", "not found", require, "debug")

-- lua.sandbox.2: io and os file functions only inside the workspace
refused("lua.sandbox.2", "io.open: sandbox: path .* is outside the workspace", io.open, O .. "/secret.txt")
refused("lua.sandbox.2", "io.lines: sandbox", io.lines, O .. "/secret.txt")
refused("lua.sandbox.2", "io.output: sandbox", io.output, O .. "/new.txt")
refused("lua.sandbox.2", "io.input: sandbox", io.input, O .. "/secret.txt")
refused("lua.sandbox.2", "os.remove: sandbox", os.remove, O .. "/secret.txt")
refused("lua.sandbox.2", "os.rename: sandbox", os.rename, W .. "/mine.txt", O .. "/mine.txt")
refused("lua.sandbox.2", "io.open: sandbox", io.open, W .. "/../outside/secret.txt")
refused("lua.sandbox.2", "io.open: sandbox", io.open, W .. "/link/secret.txt") -- a link out
refused("lua.sandbox.2", "io.open: sandbox", io.open, W .. "/nodir/../../outside/x", "w")
local f = io.open(W .. "/mine.txt", "w")
if not f then fail("lua.sandbox.2", "cannot write inside") else f:write("mine\n"); f:close() end
if not os.rename(W .. "/mine.txt", W .. "/sub_mine.txt") then fail("lua.sandbox.2", "rename inside") end
for line in io.lines("sub_mine.txt") do if line ~= "mine" then fail("lua.sandbox.2", line) end end

-- lua.sandbox.3: code loading: confined files, source text only
refused("lua.sandbox.3", "dofile: sandbox", dofile, O .. "/x.lua")
refused("lua.sandbox.3", "loadfile: sandbox", loadfile, O .. "/x.lua")
local fn, msg = load(string.dump(function() return 1 end))
if fn or not tostring(msg):find("binary chunk") then fail("lua.sandbox.3", "binary chunk loaded") end
if load("return 2")() ~= 2 then fail("lua.sandbox.3", "text chunk") end
local g = io.open(W .. "/helper.lua", "w"); g:write("return 40"); g:close()
if require("helper") ~= 40 then fail("lua.sandbox.3", "require of a workspace module") end
if dofile(W .. "/helper.lua") ~= 40 then fail("lua.sandbox.3", "dofile inside") end
refused("lua.sandbox.3", "not found", require, "lfs")
local b = io.open(W .. "/binmod.lua", "wb"); b:write(string.dump(function() return 1 end)); b:close()
refused("lua.sandbox.3", "binary chunk", require, "binmod")

-- lua.sandbox.4: the binding's file functions and command PATH arguments
refused("lua.sandbox.4", "datasets.load: sandbox", reclab.datasets.load, O .. "/secret.txt")
reclab.train{"pop", data = "demo"}
refused("lua.sandbox.4", "save: bad argument 'file' %(sandbox: path", reclab.run,
        "save model=pop file=" .. O .. "/pop.safetensors")
refused("lua.sandbox.4", "export: bad argument 'file' %(sandbox", reclab.run,
        "export model=pop file=" .. O .. "/pop.csv")
refused("lua.sandbox.4", "load: bad argument 'file' %(sandbox", reclab.run,
        "load file=" .. O .. "/pop.safetensors")
refused("lua.sandbox.4", "models.save: sandbox", reclab.models.save, "pop", O)
refused("lua.sandbox.4", "models.load: sandbox", reclab.models.load, O .. "/pop.safetensors")
refused("lua.sandbox.4", "lua.run: bad argument 'file' %(sandbox", reclab.lua.run, {file = O .. "/x.lua"})
reclab.run("save model=pop file=" .. W .. "/pop.safetensors")
reclab.run("export model=pop file=pop.csv k=3")
if not io.open(W .. "/pop.csv") then fail("lua.sandbox.4", "export inside") end

-- lua.sandbox.5: a chunk run as a job (a fresh state on the same host) is confined too
refused("lua.sandbox.5", "attempt to call a nil value", reclab.lua.run,
        {code = "os.execute('touch " .. O .. "/pwned')"})
refused("lua.sandbox.5", "io.open: sandbox", reclab.lua.run,
        {code = "io.open('" .. O .. "/secret.txt')"})

if fails == 0 then print("sandbox ok") end
