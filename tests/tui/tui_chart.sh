#!/bin/sh
# tui.chart: charts overlay several runs and several metrics (issue 13, point 10): each
# (run, metric) series has a marker and an entry in the legend, a metric of another magnitude
# reads on a right axis; `chart ... file=F.svg` writes the picture (axes, ticks, labels,
# legend); after a simulation Tab offers `watches` and `chart watches` draws it.
. "$(dirname "$0")/lib.sh"
tui_need_plugin baselines
tui_need_plugin simulator
tui_start 120 36
tui_line 'train bprmf data=demo epochs=10 name=b1'
tui_wait '✓ #1 b1' 60
tui_line 'train bprmf data=demo epochs=10 dim=16 seed=2 name=b2'
tui_wait '✓ #2 b2' 60
# two metrics of one run: the loss on a right axis, a legend entry with a marker each
tui_line 'chart valid.ndcg@10,train.loss run=1'
tui_wait 'chart  run #1 +● valid.ndcg@10 +■ train.loss \(right\)' 10
tui_wait 'chart valid.ndcg@10,train.loss: run #1, 2 series, 12 points' 5
tui_wait '├' 5
tui_wait '└.*epoch' 5
# several metrics and two runs: a series each, the run and the metric in the legend
tui_line 'chart valid.ndcg@10,valid.hr@10 runs=1,2'
tui_wait '● #1 b1 valid.ndcg@10 +■ #1 b1 valid.hr@10 +▲ #2 b2 valid.ndc' 10
tui_wait 'chart valid.ndcg@10,valid.hr@10: 4 series, 8 points' 5
# two runs, one metric, and the picture
tui_line "chart ndcg@10 runs=1,2 file=$TUI_TMP/ndcg.svg title=\"NDCG@10, demo\""
tui_wait 'chart  ndcg@10 +● #1 b1 +■ #2 b2' 10
tui_wait "chart written to $TUI_TMP/ndcg.svg \\(2 series\\)" 10
svg=$TUI_TMP/ndcg.svg
grep -q '<svg ' "$svg" || tui_fail "no svg"
grep -q '>NDCG@10, demo</text>' "$svg" || tui_fail "svg: no title"
[ "$(grep -c '<polyline' "$svg")" -eq 2 ] || tui_fail "svg: want 2 curves"
grep -q '>#1 b1  valid.ndcg@10</text>' "$svg" || tui_fail "svg: no legend entry for #1"
grep -q '>#2 b2  valid.ndcg@10</text>' "$svg" || tui_fail "svg: no legend entry for #2"
grep -q '>epoch</text>' "$svg" || tui_fail "svg: no x label"
# a simulation: its per-round metrics are in the store, Tab offers them, chart draws them
tui_line 'simulator.new data=demo agents=40 model=b1 seed=3'
tui_wait 'ground_truth = 1' 60
tui_line 'simulator.step rounds=4'
tui_wait '✓ #4 (simulator.)?step' 90
tui_keys F2
tui_type 'chart watche'
tui_keys Tab
tui_wait '^reclab> chart watches ?$' 10
tui_keys Enter
tui_wait 'chart  watches +● #[0-9]+ simulator.step' 10
tui_wait '└.*round' 5
tui_line 'chart nosuchmetric'
tui_wait "error: chart: no run has a metric 'nosuchmetric'" 5
tui_quit
echo "ok tui.chart"
