#!/bin/sh
# tui.cancel: Ctrl-C during a job cancels it (the run is marked interrupted) and does not kill
# the shell; Ctrl-C on an idle line clears the line.
. "$(dirname "$0")/lib.sh"
tui_need_plugin baselines
tui_start 120 36
tui_line 'train bprmf data=demo epochs=5000'
tui_wait '#1 train bprmf .*[0-9]+/5000 epoch'
# something typed meanwhile stays on the line; Ctrl-C goes to the job, not the line
tui_type 'show 1'
tui_keys C-c
tui_wait 'cancelling job #1'
tui_wait 'job #1 train bprmf interrupted' 20
tui_wait '^reclab> show 1$'
tui_keys F2 Enter
tui_wait 'run #1 +train bprmf +interrupted'
tui_wait '◌ #1 bprmf'
# Ctrl-C on an idle line clears it; the shell is still alive
tui_type 'some half-typed line'
tui_wait '^reclab> some half-typed line$'
tui_keys C-c
tui_wait '^reclab> ?$'
tui_keys C-c C-c
tui_wait '^reclab> ?$'
tui_dead && tui_fail "Ctrl-C killed the shell"
tui_line 'sql select status from runs where id = 1'
tui_wait '^ .*│ *interrupted *$|interrupted'
tui_quit
echo "ok tui.cancel"
