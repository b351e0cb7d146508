-- tests/lua/errors.lua: the binding's error rules (lua/README).
--   * errors raise, with a message that starts with the function or command name;
--   * expected misses (a dataset or model that is not there, a file that cannot be read)
--     return nil, message;
--   * db.query is read-only; core tables stay read-only even for db.exec.

local reclab = require "reclab"

local function check(id, cond, ...)
  if not cond then error(id .. ": " .. string.format(...), 2) end
end
local function raises(id, pattern, f, ...)
  local ok, msg = pcall(f, ...)
  check(id, not ok, "expected an error matching %q, got success", pattern)
  msg = tostring(msg)
  check(id, msg:match(pattern), "error %q does not match %q", msg, pattern)
  return msg
end
local function misses(id, pattern, v, msg)
  check(id, v == nil, "expected nil, got %s", tostring(v))
  check(id, type(msg) == "string" and msg:match(pattern), "message %q does not match %q",
        tostring(msg), pattern)
end

-- lua.err.1: expected misses -> nil, message ------------------------------------------------
misses("lua.err.1", "^datasets%.info: dataset 'nope' not found", reclab.datasets.info("nope"))
misses("lua.err.1", "^datasets%.split: dataset 'nope' not found",
       reclab.datasets.split("nope", {method = "loo"}))
misses("lua.err.1", "^datasets%.load: .*no_such_file", reclab.datasets.load("no_such_file.csv"))
misses("lua.err.1", "^models%.get: model 'nope' not found", reclab.models.get("nope"))
misses("lua.err.1", "^models%.remove: model 'nope' not found", reclab.models.remove("nope"))
misses("lua.err.1", "^models%.load: ", reclab.models.load("no_such_model.safetensors"))
misses("lua.err.1", "^runs%.get: run 999999 not found", reclab.runs.get(999999))

-- lua.err.2: bad arguments raise with the function name -------------------------------------
raises("lua.err.2", "^datasets%.split: bad option 'method' %(one of loo|temporal|ratio",
       reclab.datasets.split, "demo", {method = "random"})
-- a split seed is a 64-bit integer (it used to go through a double: 2^53 + 1 became 2^53)
raises("lua.err.2", "^datasets%.split: bad option 'seed' %(integer expected, got 1%.5%)",
       reclab.datasets.split, "demo", {method = "ratio", seed = 1.5, into = "demo_s"})
local s1 = reclab.datasets.split("demo", {method = "ratio", seed = math.maxinteger, into = "s1"})
check("lua.err.2", s1.n_train > 0, "a seed of 2^63-1 splits")
raises("lua.err.2", "^world: unknown config field 'n_user'", reclab.world, {n_user = 3})
raises("lua.err.2", "^world: bad config field 'seed' %(integer expected",
       reclab.world, {seed = "x"})
raises("lua.err.2", "^world: .*n_users", reclab.world, {n_users = 0})
raises("lua.err.2", "^evaluate: missing argument 'model'", reclab.evaluate, {data = "demo"})
raises("lua.err.2", "^evaluate: model 'nope' not found", reclab.evaluate,
       {model = "nope", data = "demo"})
raises("lua.err.2", "^evaluate: bad argument 'protocol'", reclab.evaluate,
       {model = "nope", data = "demo", protocol = "sampled"})
raises("lua.err.2", "^recommend: model 'nope' not found", reclab.recommend, "nope", "u1", 5)
raises("lua.err.2", "bad argument #1 to '.-' %(string expected, got no value%)",
       reclab.datasets.info)

-- lua.err.3: plugin commands: messages start with the command name ---------------------------
raises("lua.err.3", "^lua%.run: unknown argument 'cod'", reclab.lua.run, {cod = "x"})
raises("lua.err.3", "^lua%.run: bad argument 'code' %(string expected, got table%)",
       reclab.lua.run, {code = {}})
raises("lua.err.3", "^lua%.run: give either code= or file=", reclab.lua.run, {})
raises("lua.err.3", "^lua%.run: bad argument #1 %(table of arguments expected, got number%)",
       reclab.lua.run, 42)
raises("lua.err.3", "^run: unknown command 'nosuch%.cmd'", reclab.run, "nosuch.cmd x=1")
if reclab.core.train then
  -- the model verbs: `train KIND` checks its generated arguments like any command
  raises("lua.err.3", "^train pop: unknown argument 'epoch'", reclab.train,
         {"pop", data = "demo", epoch = 3})
  raises("lua.err.3", "^train bprmf: bad argument 'epochs' %(integer in %[1, 100000%] expected, got 0%)",
         reclab.train, {"bprmf", data = "demo", epochs = 0})
  raises("lua.err.3", "^train: unknown model kind 'gru'", reclab.train, {"gru", data = "demo"})
  raises("lua.err.3", "^train: name a model kind", reclab.train, {data = "demo"})
  raises("lua.err.3", "^train pop: dataset 'nope' not found", reclab.train,
         {kind = "pop", data = "nope"})
  raises("lua.err.3", "^train bprmf: bad argument 'epochs' %(integer in %[1, 100000%] expected, got 2.5%)",
         reclab.train, {"bprmf", data = "demo", epochs = 2.5})
  -- a model trained on one dataset cannot be evaluated on another of different size
  reclab.world{name = "small", n_users = 30, n_items = 20, n_inter = 300, avg_follow = 0}
  reclab.train{"pop", data = "small", name = "spop"}
  if reclab.datasets.info("demo") then
    raises("lua.err.3", "^evaluate: model 'spop' scores 20 items, dataset 'demo' has 600",
           reclab.evaluate, {model = "spop", data = "demo"})
  end
  raises("lua.err.3", "^evaluate: dataset 'nosplit' not found",
         reclab.evaluate, {model = "spop", data = "nosplit"})
end

-- lua.err.4: SQL: read-only queries, core tables protected ----------------------------------
raises("lua.err.4", "^db%.query: .*DELETE on core table 'runs' refused", reclab.db.query,
       "DELETE FROM runs")
raises("lua.err.4", "^db%.query: .*refused", reclab.db.query, "CREATE TABLE t(x)")
raises("lua.err.4", "^db%.query: .*refused", reclab.db.query, "PRAGMA user_version = 3")
raises("lua.err.4", "^db%.exec: .*UPDATE on core table 'runs' refused", reclab.db.exec,
       "UPDATE runs SET status = 'done'")
raises("lua.err.4", "^db%.query: ", reclab.db.query, "SELEKT 1")
raises("lua.err.4", "^db%.query: bad parameter #1", reclab.db.query, "SELECT ?1", {})
-- nothing above changed a core table
local n = reclab.db.query("SELECT count(*) AS n FROM runs WHERE status = 'running'")[1].n
check("lua.err.4", n == 0, "%d runs left running", n)

-- lua.err.5: a handle to a removed model says so ---------------------------------------------
if reclab.baselines then
  local m = reclab.train{"pop", data = "small", name = "tmp"}.model
  reclab.models.remove("tmp")
  raises("lua.err.5", "^Model:describe: model 'tmp' not found", m.describe, m)
  check("lua.err.5", m.name == "tmp", "the name stays readable")
end

-- reclab.sweep: the table's values are checked before any run; the shell's messages
raises("lua.err.6", "^sweep: name the model kinds", reclab.sweep, {data = "demo"})
raises("lua.err.6", "^sweep: data = {} has no values", reclab.sweep, {"pop", data = {}})
raises("lua.err.6", "^sweep: bad value of dim %(a flat list expected%)", reclab.sweep,
       {"bprmf", data = "demo", dim = {{8}}})
raises("lua.err.6", "^sweep: value of data has a blank", reclab.sweep, {"pop", data = "a b"})
raises("lua.err.6", "^sweep: model kinds are strings", reclab.sweep, {1, data = "demo"})
raises("lua.err.6", "^sweep: no kind of the sweep takes 'dimm'", reclab.sweep,
       {"pop", "bprmf", data = "demo", dimm = 3})
raises("lua.err.6", "^report: experiment 'nope' not found", reclab.report,
       {"nope", file = "x.md"})

print("errors.lua: ok")
