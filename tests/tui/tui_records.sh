#!/bin/sh
# tui.records: the shell's record commands are the host's (one registry, one help): a
# runaway `sql` query runs as a job beside everything else, so the shell stays responsive
# while it runs; Ctrl-C cancels it and the shell lives on; its time limit stops it too; a
# quick query and `load` of a dataset file show their results; `help` of a shell command and
# of a Lua function show usage and examples.
. "$(dirname "$0")/lib.sh"
tui_start 120 36
RUNAWAY='WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c'
tui_line "sql $RUNAWAY"
tui_wait 'job #1 sql started'
# the shell answers while the query runs (Lua runs on its own thread)
tui_line '=6 * 7'
tui_wait '^ .*│.* 42$'
tui_wait 'job #1 sql .* running [0-9]+s +Ctrl-C cancels'
tui_keys C-c
tui_wait 'cancelling job #1 sql'
tui_wait 'job #1 sql interrupted' 10
tui_dead && tui_fail "Ctrl-C killed the shell"
tui_line '=1 + 2'
tui_wait '^ .*│.* 3$'
# the time limit
tui_line "sql timeout=0.5 $RUNAWAY"
tui_wait 'error: sql: stopped after 0.5 s, its time limit' 10
# a quick query: rows in the log and the table view
tui_keys F2
tui_line "sql SELECT 'x' AS k, 7 AS v"
tui_wait 'table +sql \(1 rows\)'
tui_keys F2
tui_wait '^ .*│.* x +7 *$'
# load a dataset file through the host's load command
printf '1 10\n1 11\n2 10\n2 12\n3 11\n' >"$TUI_TMP/work/tiny.txt"
tui_line "load $TUI_TMP/work/tiny.txt name=tiny"
tui_wait "dataset 'tiny' loaded \\(sasrec\\): 3 users, 3 items, 5 interactions"
tui_wait '^ +tiny +3u 3i'
# help: a shell command, a host command, a Lua function; each with usage and examples
tui_line 'clear'
tui_line 'help chart'
tui_wait 'usage: chart METRIC'
tui_wait 'chart valid.ndcg@10,train.loss run=3'
tui_line 'help load'
tui_wait 'usage: load \[path=<path>\]'
tui_wait '  load data/ml-100k'
tui_line 'help reclab.evaluate'
tui_wait 'usage: reclab.evaluate\{model='
tui_wait 'example: local e = reclab.evaluate'
tui_quit
echo "ok tui.records"
