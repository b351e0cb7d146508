#!/bin/sh
# tests/lua/interrupt.sh RECLAB: one Ctrl-C cancels a batch job of any kind against the real
# binary: a -c command line (a sync run, no Lua involved), -e code, a script, lua.run; and a
# runaway SQL query (-c sql, db.query, reclab.sql), which never returns to Lua by itself. Each
# case starts a long command as a child, waits until its run row is `running` in the store,
# sends ONE SIGINT and expects exit status 130 within a few seconds and every run of the
# store `interrupted` or `done` (none left `running`). Needs the sqlite3 shell (else 77 =
# skipped). Every failure names its check id.
set -u
RECLAB=$1
command -v sqlite3 >/dev/null 2>&1 || { echo "interrupt.sh: no sqlite3 shell, skipped"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
fails=0
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
q() { sqlite3 -readonly "$1" "$2" 2>/dev/null; }

# case ID RUN_NAME -- ARGS...: RUN_NAME is the runs.name that must be running before Ctrl-C
case_int() {
    id=$1 name=$2
    shift 3
    db=$T/$id.db
    "$RECLAB" -q --db "$db" "$@" >"$T/$id.out" 2>"$T/$id.err" </dev/null &
    pid=$!
    i=0
    while [ $i -lt 300 ]; do
        [ -f "$db" ] && [ "$(q "$db" "SELECT count(*) FROM runs WHERE name = '$name' AND status = 'running'")" = 1 ] && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.1
        i=$((i + 1))
    done
    if ! kill -0 $pid 2>/dev/null; then
        wait $pid
        fail "$id" "ended before the interrupt (exit $?): $(head -c 300 "$T/$id.err")"
        return
    fi
    [ $i -lt 300 ] || fail "$id" "no running '$name' run after 30 s"
    sleep 0.3 # well inside the command
    kill -INT $pid
    i=0
    while kill -0 $pid 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    if kill -0 $pid 2>/dev/null; then
        kill -9 $pid
        wait $pid 2>/dev/null
        fail "$id" "still running 5 s after one SIGINT"
        return
    fi
    wait $pid
    got=$?
    [ "$got" -eq 130 ] || fail "$id" "exit $got, want 130 (stderr: $(head -c 300 "$T/$id.err"))"
    st=$(q "$db" "SELECT status FROM runs WHERE name = '$name' ORDER BY id DESC LIMIT 1")
    [ "$st" = interrupted ] || fail "$id" "run '$name' is '$st', want 'interrupted'"
    left=$(q "$db" "SELECT count(*) FROM runs WHERE status = 'running'")
    [ "$left" = 0 ] || fail "$id" "$left run(s) left 'running'"
}

if "$RECLAB" -q --no-demo -c 'help train bprmf' >/dev/null 2>&1; then
    case_int lua.interrupt.1 'train bprmf' -- \
        -c 'train bprmf data=demo epochs=100000'
fi
if "$RECLAB" -q --no-demo -c 'help simulator.step' >/dev/null 2>&1; then
    case_int lua.interrupt.2 simulator.step -- \
        -c 'simulator.new agents=200' -c 'simulator.step rounds=1000000'
    case_int lua.interrupt.3 simulator.step -- \
        -e 'reclab.simulator.new{agents = 200}' -e 'reclab.simulator.step{rounds = 1000000}'
    printf 'reclab.simulator.new{agents = 200}\nreclab.simulator.step{rounds = 1000000}\n' >s.lua
    case_int lua.interrupt.4 simulator.step -- run s.lua
    case_int lua.interrupt.5 lua.run -- \
        -c 'lua.run code="reclab.simulator.new{} reclab.simulator.step{rounds = 1000000}"'
fi

# A runaway query computes without returning to the caller: one SIGINT still stops it, in a
# -c `sql` line (the host's cancel flag, seen by SQLite's progress handler) and in Lua's
# db.query (the interrupt flag). Each case prints "ready" first, then runs the query.
RUNAWAY='WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c'
case_query() {
    id=$1
    shift 2
    "$RECLAB" -q --no-demo --db "$T/$id.db" -e 'print("ready") io.stdout:flush()' "$@" \
        >"$T/$id.out" 2>"$T/$id.err" </dev/null &
    pid=$!
    i=0
    while ! grep -q ready "$T/$id.out" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.05; i=$((i + 1)); done
    sleep 0.5 # inside the query
    kill -INT $pid
    i=0
    while kill -0 $pid 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    if kill -0 $pid 2>/dev/null; then
        kill -9 $pid
        wait $pid 2>/dev/null
        fail "$id" "the query still runs 5 s after one SIGINT"
        return
    fi
    wait $pid
    got=$?
    [ "$got" -eq 130 ] || fail "$id" "exit $got, want 130 (stderr: $(head -c 300 "$T/$id.err"))"
}
case_query lua.interrupt.6 -- -c "sql timeout=0 $RUNAWAY"
case_query lua.interrupt.7 -- -e "reclab.db.query('$RUNAWAY')"
case_query lua.interrupt.8 -- -e "reclab.sql{'$RUNAWAY', timeout = 0}"

if [ $fails -gt 0 ]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "interrupt.sh: ok"
