--[[
quick_tour.lua: ten minutes of reclab from Lua. Run it with

    ./build/reclab run lua/examples/quick_tour.lua
or, without the program, in a plain interpreter:
    LUA_CPATH='build/lua/?.so' lua5.4 lua/examples/quick_tour.lua

Everything a session makes (datasets, runs, metrics, models) is kept in the session store,
./reclab.db by default (--db FILE or $RECLAB_DB to choose another).
]]
local reclab = require "reclab"

-- 1. Data. The demo world is a synthetic society with a known ground truth (users with
--    tastes over genres, popular and niche items, a follower graph). It is loaded at
--    start-up as the dataset "demo". Real data: reclab.datasets.load("path/u.data").
local demo = assert(reclab.datasets.info("demo") or reclab.world.demo())
print(("demo: %d users, %d items, %d interactions"):format(demo.n_users, demo.n_items,
                                                          demo.n_inter))
print("item features:", demo.item_features.title, demo.item_features.genres)

-- A smaller world of your own: every field of the generator's config can be set.
local w = reclab.world{name = "tiny", n_users = 100, n_items = 80, n_inter = 2000, seed = 7}
print(("tiny world: %d interactions, zipf %.2f"):format(w.n_inter, w.config.zipf))

-- 2. Split. Leave-one-out, as in sequential recommendation papers: per user the last item
--    is the test target and the second-last the validation target.
local split = reclab.datasets.split("demo", {method = "loo"})
print(("train %d / valid %d / test %d"):format(split.n_train, split.n_valid, split.n_test))

-- 3. Train a baseline. Plugins provide model kinds (pop, itemknn, bprmf, sasrec, mqsa...);
--    the host trains every kind the same way: reclab.train{KIND, ...} takes the same
--    arguments as the shell form `train itemknn data=demo`; `help` explains them.
if not reclab.help("train itemknn") then
  print("the baselines plugin is not built; stopping here")
  return
end
print(reclab.help("train itemknn"):match("[^\n]*"))   -- first line of the help text
local res = reclab.train{"itemknn", data = "demo", name = "knn"}
local model = res.model                                  -- a reclab.Model handle
print("trained:", model:describe())

-- 4. Recommend for one user (users and items are named by their ids in the data).
local items, scores = model:recommend("u17", 5)
for i = 1, #items do print(("  %d. %s  (%.3f)"):format(i, items[i], scores[i])) end

-- 5. Evaluate: every test item is ranked against ALL items the user has not seen ("full"
--    ranking). The numbers are stored as metrics of an `eval` run.
local ev = reclab.evaluate{model = model, data = "demo", k = {10, 20}}
print(("HR@10 %.4f  NDCG@10 %.4f  over %d users (%s ranking)"):format(ev["hr@10"],
      ev["ndcg@10"], ev.n_users, ev.protocol))

-- 6. SQL over the session store (read-only: db.query refuses writes).
local rows = reclab.db.query([[
  SELECT r.id, r.name, r.status, count(m.id) AS metrics
  FROM runs r LEFT JOIN metrics m ON m.run_id = r.id
  GROUP BY r.id ORDER BY r.id DESC LIMIT 5]])
print("latest runs:")
for _, r in ipairs(rows) do
  print(("  #%-4d %-16s %-8s %d metrics"):format(r.id, r.name, r.status, r.metrics))
end

-- 7. Errors: mistakes raise an error naming the command; lookups that can miss return
--    nil plus a message, like io.open.
local ok, err = pcall(reclab.train, {"itemknn", data = "demo", k = 0})
print("error:", err)
print("miss:", select(2, reclab.models.get("no-such-model")))
