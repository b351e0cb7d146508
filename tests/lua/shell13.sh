#!/bin/sh
# tests/lua/shell13.sh RECLAB: issue 13's remaining points in batch, against the real binary,
# on the demo world (no $RECLAB_DATA needed). Check ids lua.shell13.<n>:
#   1 `jobs` when idle lists the finished jobs (and says so in its help);
#   2 `split` and `kcore` as commands: the same parts as datasets.split / datasets.kcore,
#     recorded with recipes, so a second process lists and rebuilds them;
#   3 lua.run args= gives the script `arg` and `...` as `reclab run FILE ARGS` does;
#   4 reclab.models.save(m) writes into the store, no ./models folder; with a folder, the file;
#   5 export of a command's result table (cmd=) to CSV, from -c and from Lua;
#   6 chart from -c and Lua: several runs and metrics as the table "series", file=F.svg a
#     picture with title, ticks, axis labels and a legend entry per series; .png refused.
set -u
RECLAB=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
fails=0
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
R() { "$RECLAB" -q --db "$T/ws.db" "$@"; }

# 1 ---------------------------------------------------------------------------------------
R -c 'train pop data=demo' -c 'jobs' >o1.txt 2>e1.txt || fail lua.shell13.1 "exit $?: $(cat e1.txt)"
grep -q '^no jobs queued or running' o1.txt || fail lua.shell13.1 "no idle line: $(cat o1.txt)"
grep -Eq '^#[0-9]+ train pop +done .*run #1' o1.txt || fail lua.shell13.1 "finished train missing: $(cat o1.txt)"
R -c 'help jobs' | grep -q 'last finished' || fail lua.shell13.1 "help jobs does not say it lists finished jobs"

# 2 ---------------------------------------------------------------------------------------
R -c 'split dt data=demo by=time test=0.1 valid=0.1' -c 'split dr data=demo by=ratio train=0.7 valid=0.1 seed=5' \
  -c 'kcore d50 data=demo k=50' >o2.txt 2>e2.txt || fail lua.shell13.2 "exit $?: $(cat e2.txt)"
R -e '
local t = reclab.datasets.split("demo", {method = "temporal", test_frac = 0.1, valid_frac = 0.1, into = "lt"})
local r = reclab.datasets.split("demo", {method = "ratio", train = 0.7, valid = 0.1, seed = 5, into = "lr"})
local k = reclab.datasets.kcore("demo", {into = "l50", k = 50})
print("time", t.n_train, t.n_valid, t.n_test)
print("ratio", r.n_train, r.n_valid, r.n_test)
print("kcore", k.n_users, k.n_items, k.n_inter)' >lua2.txt 2>e2b.txt || fail lua.shell13.2 "lua: $(cat e2b.txt)"
# the command's parts, from a new process (rebuilt from their recipes)
R -c 'datasets' >o2c.txt 2>e2c.txt || fail lua.shell13.2 "datasets: $(cat e2c.txt)"
for p in train valid test; do
    grep -Eq "^dt\.$p .*recorded in the store" o2c.txt || fail lua.shell13.2 "dt.$p not recorded: $(cat o2c.txt)"
done
got=$(awk '$3 != "users" { next } $1 == "dt.train" { a = $6 } $1 == "dt.valid" { b = $6 } $1 == "dt.test" { c = $6 } END { print a, b, c }' o2c.txt)
want=$(awk '$1 == "time" { print $2, $3, $4 }' lua2.txt)
[ -n "$want" ] && [ "$got" = "$want" ] || fail lua.shell13.2 "split by=time gave '$got', datasets.split '$want'"
got=$(awk '$3 != "users" { next } $1 == "dr.train" { a = $6 } $1 == "dr.valid" { b = $6 } $1 == "dr.test" { c = $6 } END { print a, b, c }' o2c.txt)
want=$(awk '$1 == "ratio" { print $2, $3, $4 }' lua2.txt)
[ -n "$want" ] && [ "$got" = "$want" ] || fail lua.shell13.2 "split by=ratio gave '$got', datasets.split '$want'"
got=$(awk '$1 == "d50" && $3 == "users" { print $2, $4, $6 }' o2c.txt)
want=$(awk '$1 == "kcore" { print $2, $3, $4 }' lua2.txt)
[ -n "$want" ] && [ "$got" = "$want" ] || fail lua.shell13.2 "kcore gave '$got', datasets.kcore '$want'"
# a k-core keeps >= k per user and item, and is smaller than the demo world
R -e 'local n = reclab.db.query("SELECT 1") ; local d = reclab.datasets.info("d50")
      print(d.n_inter < 60000 and d.n_inter > 0)' | grep -q true || fail lua.shell13.2 "d50 not rebuilt"
R -c 'train pop data=d50 name=p50' >o2d.txt 2>&1 || fail lua.shell13.2 "train on the rebuilt k-core: $(tail -3 o2d.txt)"
R -c 'split data=demo by=loo test=0.1' >o2e.txt 2>&1 && fail lua.shell13.2 "by=loo with a fraction accepted"
grep -q 'by=loo takes no fractions' o2e.txt || fail lua.shell13.2 "message: $(cat o2e.txt)"
R -c 'kcore d99 data=demo k=99' >o2f.txt 2>&1 && fail lua.shell13.2 "an empty k-core accepted"
grep -q 'the 99-core is empty' o2f.txt || fail lua.shell13.2 "message: $(cat o2f.txt)"

# 3 ---------------------------------------------------------------------------------------
cat >args.lua <<'LUA'
local n = select("#", ...)
print(("args %d %s %s %s"):format(n, tostring(arg[0]), tostring(arg[1]), tostring(arg[2])))
print("dots " .. table.concat({...}, ","))
LUA
R -c 'lua.run file=args.lua args="400 x y"' >o3.txt 2>e3.txt || fail lua.shell13.3 "exit $?: $(cat e3.txt)"
grep -q '^args 3 args.lua 400 x$' o3.txt || fail lua.shell13.3 "lua.run: $(cat o3.txt)"
grep -q '^dots 400,x,y$' o3.txt || fail lua.shell13.3 "lua.run ...: $(cat o3.txt)"
R run args.lua 400 x y >o3b.txt 2>&1
grep -q '^args 3 args.lua 400 x$' o3b.txt || fail lua.shell13.3 "reclab run differs: $(cat o3b.txt)"

# 4 ---------------------------------------------------------------------------------------
mkdir w4 && cd w4 || exit 1
"$RECLAB" -q --db "$T/w4.db" -e 'reclab.train{"pop", data = "demo", name = "p4"}
  print("saved", reclab.models.save("p4"))' >o4.txt 2>e4.txt || fail lua.shell13.4 "exit $?: $(cat e4.txt)"
grep -q '^saved	true$' o4.txt || fail lua.shell13.4 "models.save returned: $(cat o4.txt)"
[ ! -e models ] || fail lua.shell13.4 "models.save(m) wrote ./models: $(ls -R models)"
"$RECLAB" -q --db "$T/w4.db" -c 'recommend model=p4 user=u17 k=3' >o4b.txt 2>e4b.txt ||
    fail lua.shell13.4 "restore in a new session: $(cat e4b.txt)"
"$RECLAB" -q --db "$T/w4.db" -e 'print(reclab.models.save("p4", "out"))' >o4c.txt 2>&1
grep -q '^out/p4.safetensors$' o4c.txt && [ -f out/p4.safetensors ] || fail lua.shell13.4 "with a folder: $(cat o4c.txt)"
cd "$T" || exit 1

# 5 ---------------------------------------------------------------------------------------
R -c 'export cmd="sql SELECT id, status FROM runs WHERE id <= 2 ORDER BY id" file=runs.csv' >o5.txt 2>e5.txt ||
    fail lua.shell13.5 "exit $?: $(cat e5.txt)"
[ "$(cat runs.csv)" = "$(printf 'id,status\n1,done\n2,done')" ] || fail lua.shell13.5 "runs.csv: $(cat runs.csv)"
R -e 'local r = reclab.core.export{cmd = "show 1", table = "metrics", file = "show.csv"}
      print("rows", r.rows)' >o5b.txt 2>e5b.txt || fail lua.shell13.5 "lua: $(cat e5b.txt)"
head -1 show.csv | grep -q '^metric,' || fail lua.shell13.5 "show.csv: $(head -2 show.csv)"
[ "$(wc -l < show.csv)" -eq "$(($(awk '$1 == "rows" { print $2 }' o5b.txt) + 1))" ] ||
    fail lua.shell13.5 "show.csv has $(wc -l < show.csv) lines, rows $(cat o5b.txt)"
R -c 'export cmd="show 1" table=nope file=x.csv' >o5c.txt 2>&1 && fail lua.shell13.5 "unknown table accepted"
grep -q "has no table 'nope' (it has: metrics" o5c.txt || fail lua.shell13.5 "message: $(cat o5c.txt)"
R -c 'export view file=v.csv' >o5d.txt 2>&1 && fail lua.shell13.5 "export view accepted in batch"
grep -q 'the table view is the shell' o5d.txt || fail lua.shell13.5 "message: $(cat o5d.txt)"
# quoting: a comma and a quote in a cell
R -c "export cmd=\"sql SELECT 'a,b' AS x, 'say ' || char(34) || 'hi' || char(34) AS y\" file=q.csv" >o5e.txt 2>&1 || fail lua.shell13.5 "quote: $(cat o5e.txt)"
[ "$(sed -n 2p q.csv)" = '"a,b","say ""hi"""' ] || fail lua.shell13.5 "quoted row: $(cat q.csv)"

# 6 ---------------------------------------------------------------------------------------
R -c 'train bprmf data=demo epochs=6 name=c1' -c 'train bprmf data=demo epochs=6 dim=8 name=c2' >/dev/null 2>&1 ||
    fail lua.shell13.6 "training failed"
ids=$(R -e 'local r = reclab.db.query("SELECT id FROM runs WHERE json_extract(config, '"'"'$.name'"'"') IN ('"'"'c1'"'"', '"'"'c2'"'"') ORDER BY id")
            print(r[1].id .. "," .. r[2].id)')
R -c "chart valid.ndcg@10,train.loss runs=$ids file=c.svg title=\"two runs\"" >o6.txt 2>e6.txt || fail lua.shell13.6 "exit $?: $(cat e6.txt)"
grep -q 'wrote c.svg (800x500, 4 series)' o6.txt || fail lua.shell13.6 "-c chart: $(head -5 o6.txt)"
grep -q '>two runs</text>' c.svg || fail lua.shell13.6 "svg title"
[ "$(grep -c '<polyline' c.svg)" -eq 4 ] || fail lua.shell13.6 "svg: want 4 curves"
[ "$(grep -c ' (right axis)</text>' c.svg)" -eq 2 ] || fail lua.shell13.6 "svg: the loss on the right axis"
grep -q '>train.loss</text>' c.svg && grep -q '>valid.ndcg@10</text>' c.svg || fail lua.shell13.6 "svg: axis labels"
# ticks: numbers on both axes (at least 3 each side) and on x
[ "$(grep -c 'text-anchor="end">0\.' c.svg)" -ge 3 ] || fail lua.shell13.6 "svg: left ticks"
[ "$(grep -c 'text-anchor="start">0\.' c.svg)" -ge 3 ] || fail lua.shell13.6 "svg: right ticks"
R -e "local r = reclab.chart{'ndcg@10', runs = '$ids'}
      local t = r.tables.series
      print('lua', r.series_count, #t, t[1].metric, t[#t].step)" >o6b.txt 2>e6b.txt || fail lua.shell13.6 "lua: $(cat e6b.txt)"
grep -Eq '^lua	2	[0-9]+	valid.ndcg@10	6$' o6b.txt || fail lua.shell13.6 "lua: $(cat o6b.txt)"
R -c "chart ndcg@10 runs=$ids file=c.png" >o6c.txt 2>&1 && fail lua.shell13.6 ".png accepted"
grep -q 'charts are written as SVG' o6c.txt || fail lua.shell13.6 "png message: $(cat o6c.txt)"
R -c 'chart nosuch' >o6d.txt 2>&1 && fail lua.shell13.6 "unknown metric accepted"
grep -q "no run has a metric 'nosuch'" o6d.txt || fail lua.shell13.6 "message: $(cat o6d.txt)"

if [ "$fails" -ne 0 ]; then
    echo "shell13.sh: $fails failure(s)"
    exit 1
fi
echo "shell13.sh: ok"
