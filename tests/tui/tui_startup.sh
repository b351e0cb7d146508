#!/bin/sh
# tui.startup: the shell opens on the demo world: title bar, sidebar (dataset "demo" with its
# sizes, runs, plugins), the welcome lines in the log, the idle status line and the prompt.
. "$(dirname "$0")/lib.sh"
tui_start 120 36
tui_wait 'reclab .* workspace: session\.db .* demo world'
tui_wait 'DATASETS'
tui_wait 'demo +1000u 600i'
tui_wait 'RUNS'
tui_wait 'PLUGINS'
tui_wait 'F2 log +F3 table +F4 chart'
tui_wait '^reclab> ?$'
# the screen fits the pane exactly (no line wider than 120 columns)
w=$(tui_width_max)
[ "$w" -le 120 ] || tui_fail "a line is $w columns wide"
# F3 shows the table view, F4 the chart view, F2 the log again
tui_keys F3
tui_wait 'table +runs \(0 rows\)'
tui_keys F4
tui_wait 'no chart'
tui_keys F2
tui_wait_not 'no chart'
tui_quit
echo "ok tui.startup"
