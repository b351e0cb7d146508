--[==[
crs_unicrs.lua: a UniCRS-style conversational recommender on ReDial (plugins/crs), trained on
the validation split (ReDial's train split is not available offline), scored on the test
split with and without the items already mentioned, beside the "repeat" and "repeat +
popularity" baselines; Distinct-2/3/4 of its template responses in both definitions; one
turn answered by hand.

  RECLAB_DATA=../shared/data reclab run lua/examples/crs_unicrs.lua [epochs [seeds [small]]]

epochs: training epochs (default 3, the kind's default); seeds: how many seeds, 1..seeds (default 1); small:
"small" trains a tiny model and scores 300 test instances (the test suite's budget). Needs
$RECLAB_DATA (redial/, movielens-1m/, movielens-100k/); without it the script says so and
exits with status 77 (skipped).
]==]

local reclab = require "reclab"
local epochs = tonumber(arg and arg[1]) or 3
local seeds = tonumber(arg and arg[2]) or 1
local small = (arg and arg[3]) == "small"
local root = os.getenv("RECLAB_DATA")
if not root or root == "" then
  print("crs_unicrs.lua: $RECLAB_DATA is not set (ReDial is needed): skipped")
  os.exit(77)
end

assert(reclab.datasets.load(root .. "/redial/valid_data.jsonl", {name = "redial_valid"}))
assert(reclab.datasets.load(root .. "/redial/test_data.jsonl", {name = "redial_test"}))
local prep = reclab.crs.prepare{
  dialogues = "redial_valid", catalog = "redial_test", name = "redial",
  movies = root .. "/movielens-1m/movies_semicolon.dat," .. root .. "/movielens-100k/u.item"}
print(("catalogue: %d movies, %d linked to MovieLens; %d training instances (ReDial valid)")
  :format(prep.items, prep.linked, prep.instances))

local rows = {}
for seed = 1, seeds do
  local t = {"unicrs", data = "redial", epochs = epochs, seed = seed, name = "unicrs" .. seed}
  if small then t.dim, t.ctx_len, t.buckets, t.n_prefix = 16, 16, 1024, 2 end
  reclab.train(t)
  local r = reclab.crs.eval{model = "unicrs" .. seed, data = "redial_test",
                            limit = small and 300 or 0}
  for _, row in ipairs(r.tables.recall) do
    if row.method == "unicrs" then
      print(("seed %d unicrs %-16s R@1 %.4f R@10 %.4f R@50 %.4f"):format(seed, row.setting,
        row["recall@1"], row["recall@10"], row["recall@50"]))
    end
    local key = row.method .. "|" .. row.setting
    rows[key] = rows[key] or {method = row.method, setting = row.setting, v = {}}
    table.insert(rows[key].v, {row["recall@1"], row["recall@10"], row["recall@50"], row.n})
  end
  for _, d in ipairs(r.tables.distinct) do
    print(("seed %d Distinct-%d: %.4f (standard)  %.4f (UniCRS code)"):format(seed, d.n,
      d.standard, d.unicrs_code))
    assert(d.standard > 0 and d.standard <= 1, "standard Distinct-n is a ratio")
  end
end

-- the table: mean (and range) over seeds
print(("%-11s %-16s %8s %8s %8s %6s   (mean over %d seed(s), sd)"):format("method", "setting",
  "R@1", "R@10", "R@50", "n", seeds))
for _, setting in ipairs{"with repeats", "without repeats"} do
  for _, method in ipairs{"unicrs", "repeat", "repeat+pop"} do
    local e = rows[method .. "|" .. setting]
    local m, sd = {0, 0, 0}, {0, 0, 0}
    for _, v in ipairs(e.v) do for k = 1, 3 do m[k] = m[k] + v[k] / #e.v end end
    for _, v in ipairs(e.v) do
      for k = 1, 3 do sd[k] = sd[k] + (v[k] - m[k]) ^ 2 / math.max(1, #e.v - 1) end
    end
    print(("%-11s %-16s %8.4f %8.4f %8.4f %6d   sd %.4f %.4f %.4f"):format(method, setting,
      m[1], m[2], m[3], e.v[1][4], math.sqrt(sd[1]), math.sqrt(sd[2]), math.sqrt(sd[3])))
    assert(m[1] <= m[2] and m[2] <= m[3], "Recall@k must grow with k")
  end
end

-- every scored instance is a stored turn
local q = reclab.sql{"SELECT count(*) AS n, avg(json_extract(extra, '$.rank')) AS mean_rank " ..
  "FROM dialogues"}
local s = q.tables.sql[1]
print(("stored turns: %d, mean rank of the target %.1f"):format(s.n, s.mean_rank))
assert(s.n > 0, "no stored turn")

-- one turn by hand
local r = reclab.crs.respond{model = "unicrs1", k = 5,
  context = "User: Hi! I love scary movies, something like a classic horror film?"}
print("System: " .. r.response)
