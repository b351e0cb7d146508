#!/bin/sh
# tui.complete: Tab completion of a verb, a model kind, an argument name, a choice and a
# dataset name; double Tab lists the candidates inside the UI (not printed by readline);
# the completed line runs.
. "$(dirname "$0")/lib.sh"
tui_need_plugin baselines
tui_start 120 36
tui_type 'tra'
tui_keys Tab
tui_wait '^reclab> train ?$'
tui_type 'bp'
tui_keys Tab
tui_wait '^reclab> train bprmf ?$'
tui_type 'op'
tui_keys Tab
tui_wait '^reclab> train bprmf opt=$'
tui_type 's'
tui_keys Tab
tui_wait '^reclab> train bprmf opt=sgd ?$'
tui_type 'data=de'
tui_keys Tab
tui_wait '^reclab> train bprmf opt=sgd data=demo ?$'
# two Tabs on an empty word: the remaining argument names, drawn in the main pane
tui_keys Tab Tab
tui_wait '[0-9]+ completions'
tui_wait 'epochs='
tui_wait '^reclab> train bprmf opt=sgd data=demo ?$'
# any other key hides the list
tui_type 'e'
tui_wait_not 'completions'
tui_keys BSpace
# shell commands complete too: "he" -> "help "
tui_keys C-u
tui_type 'he'
tui_keys Tab
tui_wait '^reclab> help ?$'
tui_type 'train bp'
tui_keys Tab Enter
tui_wait 'keep_best=<bool>'
tui_quit
echo "ok tui.complete"
