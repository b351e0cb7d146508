--[==[
semantic_ids.lua: semantic IDs of items from their content, three tokenizers side by side
(plugins/semid): residual k-means, OneRec's balanced residual k-means and RQ-VAE, each with
a de-duplication digit (TIGER), and the per-level statistics of each (utilisation, entropy,
perplexity, collision rate before de-duplication, reconstruction error).

  reclab run lua/examples/semantic_ids.lua [epochs [data [seed [codes]]]]
  RECLAB_DATA=../shared/data reclab run lua/examples/semantic_ids.lua 100

data: a path (default $RECLAB_DATA/movielens-100k: genres + title words) or "demo" (the demo
world's item genres and titles; also the default without $RECLAB_DATA). epochs: RQ-VAE
training epochs (the k-means kinds are one pass). The test suite runs `... 3` on a reduced
budget. Items are the dataset's; content vectors are core/data's rlab_item_content.
]==]

local reclab = require "reclab"
local epochs = tonumber(arg and arg[1]) or 100
local data = arg and arg[2]
local seed = tonumber(arg and arg[3]) or 2025
local codes = tonumber(arg and arg[4]) or 32
if not data or data == "" then
  local root = os.getenv("RECLAB_DATA")
  data = (root and root ~= "") and (root .. "/movielens-100k") or "demo"
end
local name = "demo"
if data ~= "demo" then
  name = "items"
  assert(reclab.datasets.load(data, {name = name}))
elseif not reclab.datasets.info("demo") then
  reclab.world.demo("demo")
end

local kinds = {
  {"rkmeans"},
  {"brkmeans"},
  {"rqvae", epochs = epochs},
}
print(("%-9s %5s %5s %7s %8s %6s %9s %9s"):format(
  "kind", "level", "used", "util", "entropy", "perpl", "collision", "recon"))
for _, k in ipairs(kinds) do
  k.data, k.seed, k.levels, k.codes = name, seed, 3, codes
  local r = reclab.train(k)
  local s = reclab.semid.stats{model = k[1]}
  for _, row in ipairs(s.tables.levels) do
    print(("%-9s %5d %5d %7.3f %8.3f %6.1f %9.4f %9.5f"):format(k[1], row.level, row.used,
      row.util, row.entropy, row.perplexity, row.collision, row.recon))
    assert(row.used >= 1 and row.used <= codes and row.util <= 1, "implausible utilisation")
  end
  -- the IDs as a table: every (codes, dedup) tuple is unique
  local ids = reclab.semid.export{model = k[1]}
  local seen, n = {}, 0
  for _, row in ipairs(ids.tables.ids) do
    local key = ("%d,%d,%d,%d"):format(row.l1, row.l2, row.l3, row.dedup)
    assert(not seen[key], "duplicate semantic ID " .. key)
    seen[key], n = true, n + 1
  end
  print(("%-9s %d items, largest dedup digit %d; as a recommender (shared code prefixes): " ..
    "test HR@10 %.4f NDCG@10 %.4f"):format(k[1], n, s.max_dedup, r["test.hr@10"] or 0,
    r["test.ndcg@10"] or 0))
end
-- CSV export of the balanced IDs
local path = os.tmpname()
reclab.semid.export{model = "brkmeans", file = path}
local f = assert(io.open(path))
local header = f:read("l")
f:close()
os.remove(path)
assert(header == "item,l1,l2,l3,dedup", "unexpected CSV header " .. tostring(header))
