#!/bin/sh
# tui.resize: resizing the terminal mid-line (120x36 -> 80x24 -> 100x30) redraws every pane
# at the new size and keeps the half-typed line, which then runs; a line longer than the
# terminal scrolls horizontally.
. "$(dirname "$0")/lib.sh"
tui_start 120 36
tui_type 'help sh'
tui_wait '^reclab> help sh$'
tmx resize-window -t t -x 80 -y 24
tui_wait 'DATASETS'
tui_wait '^reclab> help sh$'
tui_wait 'F2 log +F3 table'
[ "$(tui_width_max)" -le 80 ] || tui_fail "lines wider than 80 columns after the resize"
lines=$(wc -l < "$TUI_SCREEN")
[ "$lines" -le 24 ] || tui_fail "$lines rows after the resize"
tui_type 'ow'
tui_keys Enter
tui_wait 'usage: show run='
tmx resize-window -t t -x 100 -y 30
tui_wait 'PLUGINS'
tui_wait 'usage: show run='
# a long line scrolls: the cursor end stays visible, a '<' marks the hidden start
tui_type '=("a long expression that does not fit in one hundred columns, so the command line must scroll"):upper()'
tui_wait '^<.*:upper\(\)$'
tui_keys Enter
tui_wait 'A LONG EXPRESSION THAT'
tui_quit
echo "ok tui.resize"
