-- tests/lua/api.lua: the reclab module's API, exercised like Lua's testes/api.lua.
-- Run: reclab -q --db DIR/reclab.db run tests/lua/api.lua   (in an empty folder)
-- Every check names a stable id ("lua.api.<n>") in its failure message.

local reclab = require "reclab"

local function check(id, cond, ...)
  if not cond then error(id .. ": " .. string.format(...), 2) end
end
local function near(a, b) return math.abs(a - b) < 1e-9 end
local function raises(id, pattern, f, ...)
  local ok, msg = pcall(f, ...)
  check(id, not ok, "expected an error matching %q, got success", pattern)
  check(id, tostring(msg):match(pattern), "error %q does not match %q", tostring(msg), pattern)
end

-- lua.api.1: module shape --------------------------------------------------------------------
check("lua.api.1", type(reclab.version) == "string" and reclab.version:match("^%d+%.%d+"),
      "version %s", tostring(reclab.version))
for _, f in ipairs{"datasets", "models", "runs", "db", "world"} do
  check("lua.api.1", reclab[f] ~= nil, "reclab.%s missing", f)
end
check("lua.api.1", type(reclab.evaluate) == "function" and type(reclab.recommend) == "function",
      "evaluate/recommend")
check("lua.api.1", type(reclab.core.help) == "function", "core commands under reclab.core")
check("lua.api.1", type(reclab.lua.run) == "function", "the built-in lua plugin")
local has_baselines = reclab.help("train pop") ~= nil

-- lua.api.2: a tiny dataset from a CSV file (hand-made, so every number below is known) ------
local f = assert(io.open("tiny.csv", "w"))
f:write("user,item,timestamp\n",
        "u1,i1,1\nu1,i2,2\nu1,i3,3\nu1,i4,4\n",
        "u2,i1,1\nu2,i2,2\nu2,i5,3\nu2,i3,4\n",
        "u3,i1,1\nu3,i3,2\nu3,i2,3\nu3,i5,4\n",
        "u4,i2,1\nu4,i1,2\n")
f:close()
local info = reclab.datasets.load("tiny.csv", {format = "csv", name = "tiny"})
check("lua.api.2", info and info.name == "tiny", "load returned %s", tostring(info))
check("lua.api.2", info.n_users == 4 and info.n_items == 5 and info.n_inter == 14,
      "sizes %d %d %d", info.n_users, info.n_items, info.n_inter)
check("lua.api.2", info.has_ts == true, "has_ts")
local again = reclab.datasets.info("tiny")
check("lua.api.2", again.n_inter == 14 and again.format == "csv", "info %s", again.format)
local names = {}
for _, d in ipairs(reclab.datasets.list()) do names[#names + 1] = d.name end
check("lua.api.2", table.concat(names, ","):match("tiny"), "list: %s", table.concat(names, ","))
-- the store knows it too
local row = reclab.db.query("SELECT n_users, n_items, n_inter FROM datasets WHERE name = ?1",
                            "tiny")[1]
check("lua.api.2", row and row.n_users == 4 and row.n_inter == 14, "datasets row")

-- lua.api.3: leave-one-out split: users with >= 3 interactions give 1 valid + 1 test --------
local s = reclab.datasets.split("tiny", {method = "loo"})
check("lua.api.3", s.train == "tiny.train" and s.valid == "tiny.valid" and s.test == "tiny.test",
      "names %s %s %s", s.train, s.valid, s.test)
check("lua.api.3", s.n_train == 8 and s.n_valid == 3 and s.n_test == 3,
      "counts %d %d %d", s.n_train, s.n_valid, s.n_test)
local tr = reclab.datasets.info("tiny.train")
check("lua.api.3", tr.n_items == 5 and tr.n_users == 4, "parts keep the parent's vocabularies")
local sr = reclab.datasets.split("tiny", {method = "ratio", train = 0.5, valid = 0.25, seed = 7,
                                          into = "tinyr"})
check("lua.api.3", sr.n_train + sr.n_valid + sr.n_test == 14, "ratio keeps every row")
local st = reclab.datasets.split("tiny", {method = "temporal", test_frac = 0.25, into = "tinyt"})
-- timestamps: 1 x4, 2 x4, 3 x3, 4 x3; the 0.75 quantile of the sorted ts is 3 -> ts >= 3 test
check("lua.api.3", st.n_test == 6 and st.n_train == 8 and st.n_valid == 0,
      "temporal %d %d %d", st.n_train, st.n_valid, st.n_test)

-- lua.api.4: worlds --------------------------------------------------------------------------
local def = reclab.world.defaults()
check("lua.api.4", def.n_users == 200 and def.n_items == 100, "defaults %d %d", def.n_users,
      def.n_items)
local w = reclab.world{name = "w1", n_users = 50, n_items = 40, n_inter = 800, seed = 3,
                       avg_follow = 0}
check("lua.api.4", w.name == "w1" and w.n_users == 50 and w.n_items == 40, "world sizes")
check("lua.api.4", w.config.seed == 3 and w.config.n_inter == 800, "config echoed")
check("lua.api.4", w.format == "world" and w.item_features.title == "text", "features")
local w2 = reclab.world{name = "w2", n_users = 50, n_items = 40, n_inter = 800, seed = 3,
                        avg_follow = 0}
check("lua.api.4", w2.source == w.source and w2.n_inter == w.n_inter, "deterministic: %s %s",
      w.source, w2.source)

-- lua.api.5: commands, results and Model handles ---------------------------------------------
if has_baselines then
  local t = reclab.train{"pop", data = "tiny", name = "tpop"}
  check("lua.api.5", getmetatable(t.model) and tostring(t.model) == "reclab.Model(tpop)",
        "result model handle: %s", tostring(t.model))
  check("lua.api.5", type(t.seconds) == "number" and type(t.lines) == "table" and #t.lines >= 1,
        "scalars and lines")
  check("lua.api.5", math.type(t.run) == "integer", "run id %s", tostring(t.run))
  check("lua.api.5", reclab.runs.get(t.run).status == "done", "run status")
  check("lua.api.5", reclab.runs.get(t.run).name == "train pop", "run name")
  local m = reclab.models.get("tpop")
  check("lua.api.5", m == t.model and m.name == "tpop" and m.kind == "pop", "models.get")
  check("lua.api.5", m.n_items == 5 and m.dataset == "tiny", "fields %d %s", m.n_items, m.dataset)
  check("lua.api.5", type(m:describe()) == "string" and #m:describe() > 0, "describe")
  local found = false
  for _, mi in ipairs(reclab.models.list()) do found = found or mi.name == "tpop" end
  check("lua.api.5", found, "models.list")
  -- positional form and the shell form give the same command
  local t2 = reclab.run("train pop data=tiny name=tpop2")
  check("lua.api.5", t2.model.name == "tpop2", "reclab.run")
  -- the kind's config and the loop's settings, resolved, as Lua tables
  local k = reclab.train{kind = "itemknn", data = "tiny", name = "tknn", k = 3, seed = 9}
  local inf = k.model:info()
  check("lua.api.5", inf.config.k == 3 and inf.train.seed == 9 and inf.train.split == "loo",
        "model config %s %s %s", tostring(inf.config.k), tostring(inf.train.seed),
        tostring(inf.train.split))

  -- lua.api.6: recommend. Pop trains on the LOO train part: counts i1 4, i2 3, i3 1, i4 0,
  -- i5 0. u4 has {i2, i1}: the best unseen items are i3 (1) then i4 (0; ties -> lower index).
  local items, scores = reclab.recommend(m, "u4", 2)
  check("lua.api.6", #items == 2 and items[1] == "i3" and items[2] == "i4",
        "recommend u4: %s", table.concat(items, ","))
  check("lua.api.6", scores[1] == 1 and scores[2] == 0, "scores %g %g", scores[1], scores[2])
  local items1 = m:recommend("u1", 3)   -- u1 has seen i1..i4: only i5 is left
  check("lua.api.6", #items1 == 1 and items1[1] == "i5", "u1: %s", table.concat(items1, ","))
  local sc = m:score("u1", {"i1", "i3", "i5"})
  check("lua.api.6", sc[1] == 4 and sc[2] == 1 and sc[3] == 0, "score %g %g %g", sc[1], sc[2],
        sc[3])
  local none, msg = reclab.recommend(m, "nobody", 3)
  check("lua.api.6", none == nil and msg:match("^recommend: unknown user 'nobody'"), "%s",
        tostring(msg))

  -- lua.api.7: evaluate, hand-computed. Test targets with train+valid masked:
  -- u1 target i4 (0) ties with i5 (0): rank 1 or 2 with p 1/2; u2 target i3 (1) beats i4 (0):
  -- rank 1; u3 target i5 (0) ties with i4: like u1; u4 has no target.
  local r = reclab.evaluate{model = m, data = "tiny", k = {1, 2}, metrics = {"hr", "ndcg"}}
  check("lua.api.7", r.n_users == 3 and r.protocol == "full", "n_users %d %s", r.n_users,
        r.protocol)
  check("lua.api.7", near(r["hr@1"], 2 / 3) and near(r["ndcg@1"], 2 / 3), "@1: %.6f %.6f",
        r["hr@1"], r["ndcg@1"])
  local nd2 = (2 * (0.5 + 0.5 / (math.log(3) / math.log(2))) + 1) / 3
  check("lua.api.7", near(r["hr@2"], 1) and near(r["ndcg@2"], nd2), "@2: %.6f %.6f (want %.6f)",
        r["hr@2"], r["ndcg@2"], nd2)
  check("lua.api.7", r["mrr@2"] == nil, "only the metrics asked for")
  -- stored as a run with its metrics
  local run = reclab.runs.get(r.run)
  check("lua.api.7", run.name == "eval" and run.status == "done" and run.model_kind == "pop",
        "eval run %s %s", run.name, run.status)
  local ms = {}
  for _, x in ipairs(reclab.runs.metrics(r.run)) do ms[x.name] = x end
  check("lua.api.7", ms["hr@1"] and near(ms["hr@1"].value, 2 / 3) and ms["hr@1"].split == "test"
        and ms["hr@1"].protocol == "full", "stored metric")
  -- validation split: u1 target i3 (1) vs unseen i4, i5 (0): rank 1; u2 target i5 (0) vs i3
  -- (1), i4 (0): rank 2 or 3; u3 target i2 (3) vs i4, i5: rank 1
  local rv = reclab.evaluate{model = "tpop", data = "tiny", split = "valid", k = {1},
                             metrics = {"hr"}}
  check("lua.api.7", near(rv["hr@1"], 2 / 3), "valid hr@1 %.6f", rv["hr@1"])
  -- sampled protocol is labelled as such
  local rs = reclab.evaluate{model = "tpop", data = "tiny", protocol = "sampled-1", k = {1}}
  check("lua.api.7", rs.protocol == "sampled-1", "protocol %s", rs.protocol)

  -- lua.api.8: save and load a model
  local path = reclab.models.save(m, "models")
  check("lua.api.8", type(path) == "string" and io.open(path), "artifact %s", tostring(path))
  local back = reclab.models.load(path, {name = "tpop_back"})
  check("lua.api.8", back and back.kind == "pop" and back.n_items == 5, "loaded")
  local sb = back:score("u1", {"i1", "i3"})
  check("lua.api.8", sb[1] == 4 and sb[2] == 1, "same scores after load")
  check("lua.api.8", reclab.models.remove("tpop_back") == true, "remove")
  local gone, gmsg = reclab.models.get("tpop_back")
  check("lua.api.8", gone == nil and gmsg:match("not found"), "removed")
else
  print("(baselines plugin not loaded: lua.api.5-8 skipped)")
end

-- lua.api.9: SQL ----------------------------------------------------------------------------
local rows = reclab.db.query("SELECT ?1 AS a, ?2 AS b, ?3 AS c, ?4 AS d, ?5 AS e", 7, 2.5,
                             "x", true, nil)
check("lua.api.9", rows[1].a == 7 and math.type(rows[1].a) == "integer" and rows[1].b == 2.5
      and rows[1].c == "x" and rows[1].d == 1 and rows[1].e == nil, "params round trip")
check("lua.api.9", rows.columns[1] == "a" and #rows.columns == 5, "columns")
local ic = reclab.db.query("PRAGMA integrity_check")
check("lua.api.9", ic[1].integrity_check == "ok", "integrity")
local ex = reclab.db.exec("CREATE TABLE IF NOT EXISTS notes(x INTEGER)")
ex = reclab.db.exec("INSERT INTO notes VALUES (?1), (?2)", 1, 2)
check("lua.api.9", ex.changes == 2, "exec changes %s", tostring(ex.changes))
check("lua.api.9", reclab.db.query("SELECT sum(x) AS s FROM notes")[1].s == 3, "user table")
check("lua.api.9", #reclab.runs.list{limit = 2} <= 2, "runs.list limit")

-- lua.api.10: help text comes from the command table -----------------------------------------
check("lua.api.10", reclab.help():match("lua%.run"), "help lists lua.run")
check("lua.api.10", reclab.help("lua.run"):match("code"), "help lua.run")
local nh, nmsg = reclab.help("no.such")
check("lua.api.10", nh == nil and nmsg:match("^help: "), "help miss: %s", tostring(nmsg))

print("api.lua: ok")
