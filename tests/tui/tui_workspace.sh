#!/bin/sh
# tui.workspace: issue 13 points 4, 5, 7 and 8 as a user sees them in the shell.
#   - `=expr` prints a table readably (one level, keys aligned, nested tables summarised,
#     Model handles by name), not `table: 0x...`;
#   - the sidebar's RUNS heading names the key metric, `set key-metric valid.hr@10` changes
#     it, and the choice is kept in the store;
#   - `load` of an INSPIRED file gives a dialogue dataset (conversations and turns), listed
#     by `datasets` and the sidebar;
#   - a reopened workspace lists the datasets of the last session (rebuilt on first use) and
#     keeps the key metric.
. "$(dirname "$0")/lib.sh"
tui_need_plugin baselines
tui_start 120 36
tui_wait 'RUNS +test\.ndcg@10'
tui_line 'train pop data=demo'
tui_wait '#1 +pop +\.[0-9]+ ' 30
tui_line 'view log'
tui_line '=reclab.models.list()'
tui_wait '\[1\] = \{name = "pop", dataset = "demo"' 15
tui_line '={n = 3, model = reclab.models.get("pop"), list = {1, 2}}'
tui_wait 'model += Model\(pop\)' 15
tui_wait 'list += \{1, 2\}'
grep -q 'table: 0x' "$TUI_SCREEN" && tui_fail "a table printed as its address"

tui_line 'set key-metric valid.hr@10'
tui_wait 'RUNS +valid\.hr@10'
tui_wait '#1 +pop +\.[0-9]+ '  # the value of that metric at the kept epoch
tui_line 'set key-metric best'
tui_wait "bad value for 'key-metric'"

if [ -n "${RECLAB_DATA:-}" ] && [ -f "$RECLAB_DATA/inspired/test.tsv" ]; then
    tui_line "load $RECLAB_DATA/inspired/test.tsv"
    tui_wait "dataset 'test' loaded \(inspired dialogues\): 99 conversations, 3438 turns" 20
    tui_line 'datasets'
    tui_wait 'test +99 conversations +311 items +3438 turns +inspired'
    have_dialogues=1
else
    echo "inspired data not found (RECLAB_DATA): dialogue checks skipped"
    have_dialogues=0
fi
tui_quit

# the same workspace, reopened
tmx kill-session -t t >/dev/null 2>&1
tui_start 120 36
tui_wait 'RUNS +valid\.hr@10'
if [ "$have_dialogues" = 1 ]; then
    tui_line 'datasets'
    tui_wait 'test +99 conversations +311 items +3438 turns +inspired +\(recorded'
    tui_wait 'test +dialogues +99 +311 +3438 +inspired +recorded'
    tui_wait '^ +test +99c 311i'
fi
tui_quit
echo "ok tui.workspace"
