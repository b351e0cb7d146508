#!/bin/sh
# tests/lua/batch.sh RECLAB: batch mode against the real binary (tmux regress/ style):
# exit codes, stdout, stderr messages, script arguments, Ctrl-C, the no-terminal demo; the
# record commands with -c (runs, sql, load, show, compare, export), help printed once, the
# help of every built-in command with usage and examples, the Lua API's help, sql's time
# limit.
# Runs in a fresh temporary folder; every failure names its check id.
set -u
RECLAB=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
fails=0
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
# expect ID WANT_STATUS STDOUT_PATTERN STDERR_PATTERN -- ARGS...
expect() {
    id=$1 want=$2 outpat=$3 errpat=$4
    shift 5
    "$RECLAB" "$@" >out.txt 2>err.txt </dev/null
    got=$?
    [ "$got" -eq "$want" ] || fail "$id" "exit $got, want $want (stderr: $(head -c 300 err.txt))"
    [ -z "$outpat" ] || grep -q -- "$outpat" out.txt || fail "$id" "stdout lacks '$outpat': $(head -c 300 out.txt)"
    [ -z "$errpat" ] || grep -q -- "$errpat" err.txt || fail "$id" "stderr lacks '$errpat': $(head -c 300 err.txt)"
}

expect lua.batch.1 0 '^reclab [0-9]' '' -- --version
expect lua.batch.2 0 'usage: reclab' '' -- --help
expect lua.batch.3 2 '' "unknown argument '--bogus'" -- --bogus
expect lua.batch.4 2 '' "option '-e' needs an argument" -- -e
expect lua.batch.5 0 '^3$' '' -- -q --no-demo -e 'print(1 + 2)'
expect lua.batch.6 1 '' '^reclab: (command line):1: boom' -- -q --no-demo -e 'error("boom")'
expect lua.batch.7 1 '' 'stack traceback' -- -q --no-demo -e 'error("boom")'
expect lua.batch.8 1 '' 'cannot open missing.lua' -- -q --no-demo run missing.lua
expect lua.batch.9 1 '' "reclab: lua.run: unknown argument 'cod'" -- -q --no-demo -c 'lua.run cod=1'
expect lua.batch.10 0 '^7$' '' -- -q --no-demo -c 'lua.run code="print(7)"'
# -e actions run in order and share one state; --db chooses the store
expect lua.batch.11 0 '^2$' '' -- -q --no-demo --db other.db -e 'x = 1' -e 'print(x + 1)'
[ -f other.db ] || fail lua.batch.11 "--db other.db was not created"
# the first failing action stops the rest
expect lua.batch.12 1 '' 'first' -- -q --no-demo -e 'error("first")' -e 'print("second")'
grep -q second out.txt && fail lua.batch.12 "ran past the error"
# scripts: arg table and ... like lua.c; `x.lua` works without `run`
printf 'local a = ...\nprint(#arg, arg[0], arg[1], arg[2], a)\n' > s.lua
expect lua.batch.13 0 '^2	s.lua	p	q	p$' '' -- -q --no-demo run s.lua p q
expect lua.batch.14 0 '^1	s.lua	z	nil	z$' '' -- -q --no-demo s.lua z
# a syntax error names the file and line
printf 'x = = 1\n' > bad.lua
expect lua.batch.15 1 '' 'bad.lua:1:' -- -q --no-demo run bad.lua
# no terminal and no arguments: the demo workflow runs in batch and exits 0
expect lua.batch.16 0 'dataset demo: 1000 users' '' --
# Ctrl-C: the hook stops a running chunk, exit 130 with "interrupted" on stderr
printf 'print("ready") io.stdout:flush() while true do end\n' > loop.lua
"$RECLAB" -q --no-demo run loop.lua >out.txt 2>err.txt </dev/null &
pid=$!
i=0
while ! grep -q ready out.txt 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
kill -INT $pid
i=0
while kill -0 $pid 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
if kill -0 $pid 2>/dev/null; then
    kill -9 $pid
    fail lua.batch.17 "did not stop on SIGINT"
else
    wait $pid
    got=$?
    [ "$got" -eq 130 ] || fail lua.batch.17 "exit $got, want 130"
    grep -q 'interrupted' err.txt || fail lua.batch.17 "stderr: $(cat err.txt)"
    grep -q 'stack traceback' err.txt || fail lua.batch.17 "the hook's error has no traceback: $(cat err.txt)"
fi

# the shell's record commands are host commands, reachable with -c (issue 13 point 2)
expect lua.batch.18 0 'no runs in the store yet' '' -- -q --no-demo --db rec.db -c runs
expect lua.batch.19 0 '^one  two' '' -- -q --no-demo --db rec.db -c 'sql SELECT 1 AS one, 2 AS two'
grep -q '^1    2' out.txt || fail lua.batch.19 "no row '1 2': $(cat out.txt)"
printf '1 10\n1 11\n2 10\n2 12\n3 11\n' >tiny.txt
expect lua.batch.20 0 "dataset 'tiny' loaded (sasrec): 3 users, 3 items, 5 interactions" '' -- \
    -q --no-demo --db rec.db -c 'load tiny.txt name=tiny' -c datasets
grep -q '^tiny ' out.txt || fail lua.batch.20 "datasets does not list tiny: $(cat out.txt)"
# help: each line once, even when stdout and stderr are one terminal
"$RECLAB" --no-demo --db rec.db -c 'help sql' >both.txt 2>&1 </dev/null
[ "$(grep -c 'usage: sql query\.\.\.' both.txt)" = 1 ] ||
    fail lua.batch.21 "help sql: the usage line $(grep -c 'usage: sql' both.txt) times: $(head -c 300 both.txt)"
[ "$(sort both.txt | uniq -d | grep -c .)" = 0 ] ||
    fail lua.batch.21 "help sql repeats lines: $(sort both.txt | uniq -d | head -3)"
# every built-in command (core and the lua plugin) has usage and examples in its help
cmds=$("$RECLAB" -q --no-demo --db rec.db -c help </dev/null |
    awk '/^core |^lua /{on = 1; next} /^[a-z]/{on = 0} on && /^  [a-z]/{print $1}')
[ -n "$cmds" ] || fail lua.batch.22 "no core commands in help"
for c in $cmds; do
    "$RECLAB" -q --no-demo --db rec.db -c "help $c" >h.txt 2>&1 </dev/null
    grep -q '^usage: ' h.txt || fail lua.batch.22 "help $c has no usage line"
    grep -q '^examples:' h.txt || fail lua.batch.22 "help $c has no examples"
done
# the Lua API's help, from the same help command
expect lua.batch.23 0 '^usage: reclab.evaluate{model=' '' -- -q --no-demo --db rec.db -c 'help reclab.evaluate'
grep -q '^  example: ' out.txt || fail lua.batch.23 "help reclab.evaluate has no example"
expect lua.batch.23 0 '^usage: reclab.datasets.load(path' '' -- -q --no-demo --db rec.db -c 'help reclab.datasets.load'
# a runaway query stops at its time limit (exit 1, the limit named)
RUNAWAY='WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c'
expect lua.batch.24 1 '' 'sql: stopped after 0.5 s, its time limit' -- -q --no-demo --db rec.db \
    -c "sql timeout=0.5 $RUNAWAY"
# export of a run, show and compare from -c
expect lua.batch.25 0 '' '' -- -q --no-demo --db rec.db -c 'lua.run code="print(1)"' -c 'lua.run code="print(2)"'
expect lua.batch.25 0 '^run #1  lua.run  done' '' -- -q --no-demo --db rec.db -c 'show 1'
expect lua.batch.25 0 '^field  *#1  *#2' '' -- -q --no-demo --db rec.db -c 'compare 1 2'
expect lua.batch.25 0 'exported run #2' '' -- -q --no-demo --db rec.db -c 'export run=2 file=r2.json'
grep -q '"run": {"id": 2' r2.json || fail lua.batch.25 "r2.json: $(head -c 200 r2.json)"

if [ $fails -gt 0 ]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "batch.sh: ok"
