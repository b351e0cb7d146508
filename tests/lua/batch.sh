#!/bin/sh
# tests/lua/batch.sh RECLAB: batch mode against the real binary (tmux regress/ style):
# exit codes, stdout, stderr messages, script arguments, Ctrl-C, the no-terminal demo.
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

if [ $fails -gt 0 ]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "batch.sh: ok"
