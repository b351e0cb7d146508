#!/bin/sh
# tui.job: a BPR-MF training job on the demo world runs in the background: the progress bar
# moves, the chart of its metric appears and grows, a second job queues behind it visibly,
# the shell keeps taking keys meanwhile, and both jobs end as done runs in the sidebar.
. "$(dirname "$0")/lib.sh"
tui_need_plugin baselines
tui_start 120 36
tui_line 'train bprmf data=demo epochs=40 eval_every=2'
tui_wait 'job #1 train bprmf started \(run #1\)'
tui_wait '#1 train bprmf .* [0-9]+/40 epoch'
first=$(grep -Eo '[0-9]+/40 epoch' "$TUI_SCREEN" | head -1 | cut -d/ -f1)
# the bar moves: a later step shows up
end=$(($(date +%s) + 20))
while :; do
    tui_capture
    now=$(grep -Eo '[0-9]+/40 epoch' "$TUI_SCREEN" | head -1 | cut -d/ -f1)
    if [ -n "$now" ] && [ "$now" -gt "$first" ]; then break; fi
    if grep -q 'done in' "$TUI_SCREEN"; then break; fi
    [ "$(date +%s)" -ge "$end" ] && tui_fail "progress did not move from $first"
    sleep 0.1
done
# the chart of the live run, with braille dots and labelled axes
tui_wait 'chart +valid.ndcg@10 +\(live\) +● #1 bprmf'
tui_wait '┤'
tui_wait 'epoch *$'
LC_ALL=C grep -q "$(printf '\342')[$(printf '\240-\243')]" "$TUI_SCREEN" ||
    tui_fail "no braille dots (U+2800-28FF) in the chart"
# a second job queues behind the first (typed while the first runs)
tui_line 'train pop data=demo'
tui_wait 'job #2 train pop queued \(1 ahead\)|job #2 train pop started'
tui_wait '✓ #1 bprmf +\.[0-9]+' 60
tui_wait '✓ #2 pop' 30
tui_keys F2
tui_wait 'job #2 train pop done in'
# the first job's end is further up the log (the second job's results came after it)
tui_keys PPage PPage
tui_wait 'job #1 train bprmf done in'
tui_keys NPage
# the table view lists both runs with their metrics, sortable
tui_line 'runs sort=valid.ndcg@10'
tui_wait 'sorted by valid\.ndcg@10'
tui_quit
echo "ok tui.job"
