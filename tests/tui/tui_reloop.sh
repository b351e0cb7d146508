#!/bin/sh
# tui.reloop: reloop.stream runs as a job in the shell and records AUC per period for its four
# variants; `chart m1,m2,m3,m4` draws the four series of that run in one chart, labelled by
# metric (plugins/reloop, ui `chart METRIC,METRIC... [RUN]`).
. "$(dirname "$0")/lib.sh"
tui_need_plugin reloop
tui_start 120 36
tui_line 'reloop.stream data=demo periods=8 cut=time epochs=3'
# (no wait for the log's 'started' line: the shell may switch to the job's live chart first)
tui_wait '✓ #1 reloop-mf' 60
tui_line 'chart auc_frozen,auc_incremental,auc_memory,auc_meminc'
tui_wait 'chart auc_frozen,auc_incremental,auc_memory,auc_meminc: run #1, 4 series, 28 points'
tui_wait 'chart +run #1 +● auc_frozen +■ auc_incremental +▲ auc_memory +◆ auc_meminc'
tui_wait '┤'
LC_ALL=C grep -q "$(printf '\342')[$(printf '\240-\243')]" "$TUI_SCREEN" ||
    tui_fail "no braille dots (U+2800-28FF) in the chart"
# a metric the run lacks is named; nothing at all is an error
tui_line 'chart auc_memory,auc_nope 1'
tui_wait "chart: run #1 has no metric 'auc_nope'"
tui_line 'chart auc_nope,auc_none'
tui_wait "error: chart: no run has a metric 'auc_nope'"
tui_quit
