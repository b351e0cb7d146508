--[[
cocoon_study.lua: the information-cocoon study of the RecAgent line of work, on the demo world.

  reclab run lua/examples/cocoon_study.lua [agents] [rounds] [seeds] [bpr_epochs] [sasrec_epochs] [svg]

For every recommender (BPR-MF, SASRec, random), with and without the diversity intervention
(swap_k = 2: two items of every first page swapped with the page of the symmetric visitor,
RecAgent's rec_random_k) and with a homophilous or a mixed social graph (simulator.rewire
k=8), and for each seed, a simulation of `agents` agents runs `rounds` rounds. Every round's
step run records, as metrics:
  sim.shown_entropy   mean over the visiting agents of the genre entropy (bits) of the first
                      recommended page each was shown that round (a fixed page of 5, so that
                      browsing more pages does not read as a wider exposure)
  sim.watch_entropy   mean over agents of the genre entropy of everything each has watched
so `chart shown_entropy <run> <run> ...` in the shell draws entropy over rounds per condition
(the script prints the runs to give it), and with swap_k, sim.swapped: the items swapped onto
pages that round. The script prints the mean over seeds per condition
(first and last round, and the change), and writes the mean curves of both measures as an SVG
picture (default cocoon_study.svg).
Defaults: 200 agents, 20 rounds, seeds 1,2,3, BPR-MF 30 epochs, SASRec 10 epochs.
]]

local reclab = require "reclab"
local A = tonumber(arg and arg[1]) or 200
local R = tonumber(arg and arg[2]) or 20
local seeds = {}
for s in tostring(arg and arg[3] or "1,2,3"):gmatch("%d+") do seeds[#seeds + 1] = tonumber(s) end
local bpr_epochs = tonumber(arg and arg[4]) or 30
local sas_epochs = tonumber(arg and arg[5]) or 10
local svg_path = arg and arg[6] or "cocoon_study.svg"

-- the recommenders, trained once on the demo world -------------------------------------------------
if not reclab.datasets.info("demo") then reclab.world.demo("demo") end
reclab.train{"bprmf", data = "demo", name = "cocoon.bpr", split = "none", epochs = bpr_epochs,
             eval_every = 0, seed = 1}
reclab.train{"sasrec", data = "demo", name = "cocoon.sasrec", split = "none",
             epochs = sas_epochs, eval_every = 0, seed = 1}
print(("recommenders: BPR-MF (%d epochs), SASRec (%d epochs), random"):format(bpr_epochs,
                                                                             sas_epochs))

local recs = {{"bpr", "cocoon.bpr"}, {"sasrec", "cocoon.sasrec"}, {"random", "random"}}
local swaps = {0, 2}
local graphs = {"homophily", "mixing"}

-- one simulation per condition and seed --------------------------------------------------------------
local conds = {}
for _, rc in ipairs(recs) do
  for _, k in ipairs(swaps) do
    for _, g in ipairs(graphs) do
      local c = {rec = rc[1], model = rc[2], swap = k, graph = g, runs = {},
                 shown = {}, watch = {}, swapped = 0}
      c.name = ("%s/%s/%s"):format(rc[1], k > 0 and ("swap" .. k) or "noswap", g)
      for r = 1, R do c.shown[r], c.watch[r] = {}, {} end
      conds[#conds + 1] = c
    end
  end
end

for _, c in ipairs(conds) do
  for _, seed in ipairs(seeds) do
    local s = reclab.simulator.new{data = "demo", agents = A, model = c.model, seed = seed,
                                   swap_k = c.swap}
    reclab.simulator.rewire{sim = s.sim, mode = c.graph, k = 8}
    local st = reclab.simulator.step{sim = s.sim, rounds = R}
    c.runs[#c.runs + 1] = st.run
    local got = 0
    for _, m in ipairs(reclab.runs.metrics(st.run)) do
      if m.split == "sim" and m.name == "shown_entropy" then
        table.insert(c.shown[m.step], m.value); got = got + 1
      elseif m.split == "sim" and m.name == "watch_entropy" then
        table.insert(c.watch[m.step], m.value)
      elseif m.split == "sim" and m.name == "swapped" then
        c.swapped = c.swapped + m.value / (R * #seeds) -- per round, mean over seeds
      end
    end
    assert(got == R, ("%s seed %d: %d rounds of shown_entropy in run %s, expected %d"):format(
      c.name, seed, got, tostring(st.run), R))
  end
end

-- means over seeds ----------------------------------------------------------------------------------
local function mean(t)
  local s = 0
  for _, v in ipairs(t) do s = s + v end
  return #t > 0 and s / #t or 0 / 0
end
local function sd(t)
  local m, s = mean(t), 0
  for _, v in ipairs(t) do s = s + (v - m) ^ 2 end
  return #t > 1 and math.sqrt(s / (#t - 1)) or 0
end
for _, c in ipairs(conds) do
  c.ms, c.mw = {}, {}
  for r = 1, R do c.ms[r], c.mw[r] = mean(c.shown[r]), mean(c.watch[r]) end
  -- the study's summary: shown entropy averaged over the rounds, per seed
  c.avg_seed = {}
  for i = 1, #seeds do
    local s = 0
    for r = 1, R do s = s + c.shown[r][i] end
    c.avg_seed[i] = s / R
  end
end

print(("\n%d agents, %d rounds, seeds %s; genre entropy in bits (mean over seeds)"):format(
  A, R, table.concat(seeds, ",")))
print(("%-28s %8s %8s %8s %8s   %8s %8s %8s   %s"):format("condition", "shown@1", "shown@R",
      "mean", "sd", "watch@1", "watch@R", "swapped", "runs"))
for _, c in ipairs(conds) do
  local runs = {}
  for _, r in ipairs(c.runs) do runs[#runs + 1] = tostring(r) end
  print(("%-28s %8.3f %8.3f %8.3f %8.3f   %8.3f %8.3f %8.1f   %s"):format(c.name, c.ms[1],
        c.ms[R], mean(c.avg_seed), sd(c.avg_seed), c.mw[1], c.mw[R], c.swapped,
        table.concat(runs, " ")))
end

local function find(rec, k, g)
  for _, c in ipairs(conds) do
    if c.rec == rec and c.swap == k and c.graph == g then return c end
  end
end
local b, r0 = find("bpr", 0, "homophily"), find("random", 0, "homophily")
print(("\nthe shell draws one seed's curves per condition, e.g.\n  chart shown_entropy %s %s %s %s"):format(
  tostring(b.runs[1]), tostring(find("bpr", 2, "homophily").runs[1]),
  tostring(find("sasrec", 0, "homophily").runs[1]), tostring(r0.runs[1])))

-- the picture: mean curves of both measures per condition -------------------------------------------
local W, H, PAD = 1080, 420, 50
local colour = {bpr = "#1f77b4", sasrec = "#d62728", random = "#2ca02c"}
local out = {}
local function add(s) out[#out + 1] = s end
add(('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" ' ..
     'font-size="11">'):format(W, H + 120))
add(('<rect width="%d" height="%d" fill="white"/>'):format(W, H + 120))
local function panel(x0, title, field)
  local lo, hi = math.huge, -math.huge
  for _, c in ipairs(conds) do
    for r = 1, R do
      local v = c[field][r]
      if v == v then lo, hi = math.min(lo, v), math.max(hi, v) end
    end
  end
  if hi <= lo then hi = lo + 1 end
  local pw, ph = W / 2 - PAD - 40, H - 2 * PAD
  local function px(r) return x0 + PAD + (R > 1 and (r - 1) / (R - 1) or 0) * pw end
  local function py(v) return PAD + (1 - (v - lo) / (hi - lo)) * ph end
  add(('<text x="%d" y="20" font-size="13">%s</text>'):format(x0 + PAD, title))
  add(('<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="black"/>'):format(px(1), py(lo), px(R), py(lo)))
  add(('<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="black"/>'):format(px(1), py(lo), px(1), py(hi)))
  for i = 0, 4 do
    local v = lo + (hi - lo) * i / 4
    add(('<text x="%g" y="%g" text-anchor="end">%.2f</text>'):format(px(1) - 4, py(v) + 4, v))
  end
  add(('<text x="%g" y="%g" text-anchor="middle">round (1..%d)</text>'):format(
    (px(1) + px(R)) / 2, py(lo) + 28, R))
  for _, c in ipairs(conds) do
    local pts = {}
    for r = 1, R do pts[#pts + 1] = ("%.1f,%.1f"):format(px(r), py(c[field][r])) end
    add(('<polyline fill="none" stroke="%s" stroke-width="%s" %s points="%s"/>'):format(
      colour[c.rec], c.graph == "homophily" and "2.2" or "1.2",
      c.swap > 0 and 'stroke-dasharray="5,3"' or "", table.concat(pts, " ")))
  end
end
panel(0, "shown entropy (bits): genres of what each agent is shown per round", "ms")
panel(W / 2, "watch entropy (bits): genres of everything each agent watched", "mw")
local ly = H + 20
for i, c in ipairs(conds) do
  local x, y = 60 + ((i - 1) % 4) * 230, ly + math.floor((i - 1) / 4) * 22
  add(('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="%s" %s/>'):format(
    x, y, x + 30, y, colour[c.rec], c.graph == "homophily" and "2.2" or "1.2",
    c.swap > 0 and 'stroke-dasharray="5,3"' or ""))
  add(('<text x="%d" y="%d">%s</text>'):format(x + 36, y + 4, c.name))
end
add(('<text x="60" y="%d">%d agents on the demo world, %d rounds, mean of seeds %s</text>'):format(
  ly + 80, A, R, table.concat(seeds, ",")))
add("</svg>")
local f = assert(io.open(svg_path, "w"))
f:write(table.concat(out, "\n"), "\n")
f:close()
print(("\nchart of the mean curves written to %s"):format(svg_path))

-- every value is an entropy of at most log2(255) < 8 bits (the simulator's genre bound) --------------
for _, c in ipairs(conds) do
  for r = 1, R do
    for _, v in ipairs(c.shown[r]) do assert(v >= 0 and v <= 8, c.name .. ": entropy " .. v) end
  end
end
print(("random pages: %.3f bits per agent and round; BPR-MF: %.3f (homophilous graph, no swap)"):format(
  mean(r0.avg_seed), mean(b.avg_seed)))
-- with a trained BPR-MF (the full study's budget), its pages are narrower than random ones
if bpr_epochs >= 20 then
  assert(mean(r0.avg_seed) > mean(b.avg_seed), ("random %.3f vs bpr %.3f shown entropy"):format(
    mean(r0.avg_seed), mean(b.avg_seed)))
end
