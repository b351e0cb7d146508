#!/bin/sh
# tui.error: errors from the shell, the host's argument checks, Lua and SQL each show as one
# clear line in the log; the screen stays intact and the shell keeps working.
. "$(dirname "$0")/lib.sh"
tui_start 120 36
tui_line 'frobnicate now'
tui_wait "error: unknown command 'frobnicate'"
tui_line '=nil + 1'
tui_wait 'error: .*attempt to perform arithmetic'
tui_line 'sql delete from runs'
tui_wait 'error: sql: .*(refused|read-only)'
tui_line 'show 99'
tui_wait 'error: show: no run #99'
if [ -f "$(dirname "$RECLAB_BIN")/plugins/reclab_baselines.so" ]; then
    tui_line 'train bprmf data=demo epochs=0'
    tui_wait "error: train bprmf: bad argument 'epochs'"
fi
tui_wait 'DATASETS'
tui_wait 'F2 log +F3 table'
tui_wait '^reclab> ?$'
[ "$(tui_width_max)" -le 120 ] || tui_fail "a line overflows the pane"
tui_line '=1 + 1'
tui_wait '^ .*│.* 2$'
tui_quit
echo "ok tui.error"
