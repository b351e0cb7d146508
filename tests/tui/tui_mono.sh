#!/bin/sh
# tui.mono: NO_COLOR and a monochrome terminal (TERM=vt100) give the same screen, without
# colour: every pane is drawn and the chart still works.
. "$(dirname "$0")/lib.sh"
TUI_ENV="NO_COLOR=1 TERM=vt100"
tui_start 80 24
tui_wait 'DATASETS'
tui_wait 'F2 log +F3 table'
tui_wait '^reclab>'
tui_line '=40 + 2'
tui_wait '^ .*│.* 42$'
tui_line 'sql select 1 as one'
tui_wait 'sql \(1 rows\)'
[ "$(tui_width_max)" -le 80 ] || tui_fail "a line overflows the 80-column pane"
tui_quit
echo "ok tui.mono"
