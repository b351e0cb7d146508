#!/bin/sh
# tui.run: `run FILE.lua ARGS` runs the script as a job (issue 13, point 3): the script sees its
# arguments (compare_baselines.lua's epochs), the shell stays responsive while it runs (`jobs`,
# a quick command, scrolling), the status line names the job as the log does (the script's
# job, then the command it called), Ctrl-C and `cancel N` reach the commands the script
# started (the script's sweep, and the train run the sweep is in, stop; the script's job ends
# cancelled) and `jobs` lists them after they ended. compare_baselines.lua is one sweep (issue
# 25): Pop and ItemKNN are quick, BPR-MF trains for the 300 epochs; a second start resumes the
# sweep, so it goes straight to BPR-MF.
. "$(dirname "$0")/lib.sh"
tui_need_plugin baselines
cd "$(dirname "$0")/../.." || exit 1 # lua/examples/ relative to the repository
tui_start 120 36
tui_line 'run lua/examples/compare_baselines.lua 300'
# the 300 is the script's arg[1]: BPR-MF's epochs (the default is 40)
tui_wait 'job #1 lua.run compare_baselines.lua 300 (›|>) job #[0-9]+ sweep \(run #[0-9]+\).*run 3/3: [0-9]+/300 epoch' 60
# responsive: a quick command and `jobs` answer while it trains
tui_line 'jobs'
tui_wait '^ *│? *.* 1 +lua.run +running' 10
tui_wait 'sweep +running +[0-9]+ +3 .* 1 *$' 10
tui_keys PPage
tui_keys NPage
tui_line 'set'
tui_wait 'key-metric' 10
tui_wait '/300 epoch' 5
# Ctrl-C: the script's job is cancelled, and with it the train it called
tui_keys C-c
tui_wait 'cancelling job #1 lua.run compare_baselines.lua' 5
tui_wait 'job #1 lua.run compare_baselines.lua 300 interrupted' 30
tui_wait_not '/300 epoch' 10
tui_line 'jobs'
tui_wait ' 1 +lua.run +cancelled' 10
tui_wait 'sweep +cancelled +[0-9]+ +3 ' 10
tui_line 'sql SELECT count(*) AS n FROM runs WHERE status = '"'"'running'"'"''
tui_wait '^ *│? *[0-9:]* *0 *$|n *$' 10
tui_line "sql SELECT 'train run ' || status AS s FROM runs WHERE model_kind = 'bprmf' ORDER BY id DESC LIMIT 1"
tui_wait 'train run interrupted' 10
# cancel N reaches the nested command as well
tui_line 'clear'
tui_line 'run lua/examples/compare_baselines.lua 300'
tui_wait 'job #[0-9]+ lua.run compare_baselines.lua 300 (›|>) job #[0-9]+ sweep .*/300 epoch' 60
job=$(grep -Eo 'job #[0-9]+ lua.run compare_baselines.lua 300 (›|>) job #[0-9]+ sweep' "$TUI_SCREEN" | tail -1 | sed 's/^job #//; s/ .*//')
tui_line "cancel $job"
tui_wait "job #$job lua.run compare_baselines.lua 300 interrupted" 30
tui_line 'jobs'
tui_wait "[ │]$job +lua.run +cancelled" 10
tui_quit
echo "ok tui.run"
