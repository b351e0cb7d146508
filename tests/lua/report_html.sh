#!/bin/sh
# tests/lua/report_html.sh RECLAB: an experiment's HTML report (issue 25) opened in headless
# Chromium: the page the browser builds has the results table, the comparison charts and the
# learning curves (inline SVG: the file is self-contained), and a screenshot of it is written.
# A small sweep of Pop and BPR-MF on the demo world, 2 seeds.
#   report_html.1  sweep + report file=r.html succeed, no figure file left beside the page
#   report_html.2  Chromium's DOM: the results table with a row per configuration, the baseline,
#                  the protocol line, 3 SVG figures (2 metrics + learning curves) with drawn
#                  shapes, the runs table with the commands to reproduce
#   report_html.3  the screenshot is a non-trivial PNG
# Skipped (77) when no Chromium is installed. Set REPORT_SHOT=path to keep the screenshot.
set -u
RECLAB=$1
CHROME=
for c in chromium chromium-browser google-chrome; do
    command -v $c >/dev/null 2>&1 && { CHROME=$c; break; }
done
[ -n "$CHROME" ] || { echo "report_html.sh: no Chromium (chromium), skipped"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
fails=0
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }

"$RECLAB" -q --db "$T/r.db" -c "sweep pop,bprmf data=demo epochs=3 eval_every=1 seeds=1..2 name=rh" \
    >"$T/1.out" 2>"$T/1.err" || fail report_html.1 "sweep: $(tail -c 300 "$T/1.err")"
"$RECLAB" -q --db "$T/r.db" -c "report rh file=$T/r.html" >"$T/2.out" 2>"$T/2.err" ||
    fail report_html.1 "report: $(cat "$T/2.err")"
[ -s "$T/r.html" ] || { echo "FAIL report_html.1: no r.html"; exit 1; }
ls "$T" | grep -q 'svg$' && fail report_html.1 "figure files left beside the page: $(ls "$T")"

# Chromium as root needs --no-sandbox; its own profile folder keeps it off $HOME
opts="--headless --no-sandbox --disable-gpu --user-data-dir=$T/profile --no-first-run"
timeout 60 "$CHROME" $opts --dump-dom "file://$T/r.html" >"$T/dom.html" 2>"$T/chrome.err" ||
    fail report_html.2 "chromium --dump-dom failed: $(tail -c 300 "$T/chrome.err")"
dom=$T/dom.html
grep -q '<table class="results">' "$dom" || fail report_html.2 "no results table in the page"
grep -q '<td>pop (baseline)</td>' "$dom" || fail report_html.2 "no baseline row"
grep -q '<td>bprmf</td>' "$dom" || fail report_html.2 "no bprmf row"
grep -q 'protocol: full ranking' "$dom" || fail report_html.2 "no protocol line"
nsvg=$(grep -o '<svg' "$dom" | wc -l)
[ "$nsvg" -eq 3 ] || fail report_html.2 "$nsvg SVG figures in the page, expected 3"
[ "$(grep -o '<rect' "$dom" | wc -l)" -ge 4 ] || fail report_html.2 "the bar charts have no bars"
grep -q 'Learning curves on demo' "$dom" || fail report_html.2 "no learning curves"
grep -q 'reclab --db .* -c "train bprmf data=demo name=rh-r3 seed=1' "$dom" ||
    fail report_html.2 "no command to reproduce run 3"

shot=${REPORT_SHOT:-$T/shot.png}
timeout 60 "$CHROME" $opts --window-size=1200,2200 --screenshot="$shot" "file://$T/r.html" \
    >/dev/null 2>"$T/chrome2.err" || fail report_html.3 "chromium --screenshot failed: $(tail -c 300 "$T/chrome2.err")"
[ -f "$shot" ] && [ "$(head -c 4 "$shot" | od -An -c | tr -d ' ')" = "211PNG" ] ||
    fail report_html.3 "no PNG screenshot"
size=$(wc -c <"$shot" 2>/dev/null || echo 0)
[ "$size" -gt 20000 ] || fail report_html.3 "screenshot of $size bytes: an empty page?"
[ $fails = 0 ] || exit 1
echo "report_html.sh: ok ($nsvg figures, screenshot $size bytes)"
