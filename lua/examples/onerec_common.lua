--[==[
onerec_common.lua: the set-up and the paired statistics the onerec tours share
(onerec_pipeline.lua, onerec_ipa_grid.lua, onerec_ipa_diag.lua; plugins/genrank).

  local C = dofile(((arg and arg[0] or ""):match("^(.*)/[^/]*$") or ".") .. "/onerec_common.lua")

  C.dataset(data)            "demo" = the demo world (made once), else a dataset file or folder
                             loaded as "data"; returns the dataset's name
  C.semid(name, seed)        the tours' semantic IDs: balanced residual k-means, 3 levels x 32
                             codes, trained as model "sid"
  C.gen_args(kind, name, nm, seed, epochs, samples, opts)
                             the arguments of `train onerec|tiger` on semid "sid" (opts: maxlen,
                             eval_every, keep_best, small; small, by default one epoch or less,
                             selects the network of the tests: maxlen 20, dim 32, ffn 64, beam 10)
  C.f(x), C.ci(row, col)     "%.4f" (or "-"), "mean [lo, hi]" of a measures row
  C.table_of(res, name)      a result's table by name (an error when absent)
  C.per_user(t)              a per-user table as {user = row}
  C.paired(a, b, col)        a - b over the users of both: mean, lo, hi (95% normal interval,
                             mean +- 1.96 sd / sqrt(n)), n, sd; nil with fewer than 2 users
]==]

local reclab = require "reclab"
local C = {}

function C.dataset(data)
  if data ~= "demo" then
    assert(reclab.datasets.load(data, {name = "data"}))
    return "data"
  end
  if not reclab.datasets.info("demo") then reclab.world.demo("demo") end
  return "demo"
end

function C.semid(name, seed)
  return reclab.train{"brkmeans", data = name, name = "sid", levels = 3, codes = 32, seed = seed}
end

function C.gen_args(kind, name, nm, seed, epochs, samples, opts)
  opts = opts or {}
  local a = {kind, data = name, name = nm, semid = "sid", seed = seed, epochs = epochs,
             samples = samples, eval_every = opts.eval_every or (epochs <= 2 and 0 or 5),
             keep_best = opts.keep_best}
  local small = opts.small
  if small == nil then small = epochs <= 1 end
  if small then a.maxlen, a.dim, a.ffn, a.beam = 20, 32, 64, 10 end
  if opts.maxlen then a.maxlen = opts.maxlen end
  return a
end

function C.f(x) return x and ("%.4f"):format(x) or "-" end

function C.ci(r, k)
  return ("%s [%s, %s]"):format(C.f(r[k]), C.f(r[k .. "_lo"]), C.f(r[k .. "_hi"]))
end

function C.table_of(res, name)
  for k, t in pairs(res.tables) do if k == name then return t end end
  error("no table " .. name)
end

function C.per_user(t)
  local u = {}
  for _, row in ipairs(t) do u[row.user] = row end
  return u
end

function C.paired(a, b, col)
  local n, s, s2 = 0, 0, 0
  for user, ra in pairs(a) do
    local rb = b[user]
    if rb and ra[col] and rb[col] then
      local x = ra[col] - rb[col]
      n, s, s2 = n + 1, s + x, s2 + x * x
    end
  end
  if n < 2 then return nil end
  local m = s / n
  local sd = math.sqrt(math.max(s2 / n - m * m, 0) * n / (n - 1))
  local h = 1.96 * sd / math.sqrt(n)
  return m, m - h, m + h, n, sd
end

return C
