#!/bin/sh
# tui.views: the simulator's plugin views drawn as a user reads them: the feed as one human
# line per event (no raw JSON), the per-round statistics as an aligned table with a header,
# and an agent card (profile fields, memories, history) picked with `view agent N`; F5
# cycles from the feed to the table; a bad agent shows one clear error in the card.
. "$(dirname "$0")/lib.sh"
tui_need_plugin simulator
tui_start 120 36
tui_line 'simulator.new data=demo agents=6 model=random seed=1'
tui_wait 'simulation [0-9]+: 6 agents'
tui_line 'simulator.step rounds=2'
tui_wait 'rounds_done = 2'

# the feed: readable lines, newest at the bottom
tui_line 'view feed'
tui_wait 'Simulation feed +\(simulator\.feed, feed\)'
tui_wait "│r[0-9]+ +t=[0-9.]+ +agent [0-9]+ watched '[^']+' \(rank [0-9]+"
tui_wait '│r[0-9]+ +t=[0-9.]+ +agent [0-9]+ visited: pages [0-9]+'
grep -q '{"' "$TUI_SCREEN" && tui_fail "raw JSON in the feed"
last=$(grep -Eo '│r[0-9]+ ' "$TUI_SCREEN" | tail -1 | tr -dc 0-9)
[ "$last" = 2 ] || tui_fail "the newest round (2) is not at the bottom of the feed (got '$last')"
[ "$(tui_width_max)" -le 120 ] || tui_fail "a feed line overflows the screen"

# F5: the statistics table, a header of column names and right-aligned numbers
tui_keys F5
tui_wait 'Round statistics +\(simulator\.stats, table\)'
tui_wait '│round +active +visits +watches +chats +posts +ctr +coverage'
tui_wait '│ +1 +6 +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +\.[0-9]+'
tui_wait '│ +2 +6 +[0-9]+ '
head=$(grep -E '│round +active' "$TUI_SCREEN" | sed 's/.*│//')
row=$(grep -E '│ +1 +6 ' "$TUI_SCREEN" | sed 's/.*│//')
# "active" ends where its numbers end (right-aligned under the header)
hend=$(printf '%s\n' "$head" | awk '{ print index($0, "active") + 5 }')
rend=$(printf '%s\n' "$row" | awk '{ n = split($0, a, ""); p = 0; k = 0
    for (i = 1; i <= n; i++) { if (a[i] != " " && (i == 1 || a[i-1] == " ")) k++
        if (k == 2 && a[i] != " ") p = i }
    print p }')
[ "$hend" = "$rend" ] || tui_fail "column 'active' not right-aligned ($hend vs $rend)"

# the agent card: profile fields, memories and history from simulator.agent
tui_line 'view agent 2'
tui_wait 'Agent card +\(simulator\.agent, card\) +as of [0-9:]+'
tui_wait '│ name +[A-Z][a-z]+ [A-Z]'
tui_wait '│ profile +.*, [0-9]+, '
tui_wait '│ memories \([0-9]+\)'
tui_wait '│ history \([0-9]+\)'
tui_wait '│ +tier +text +importance'
[ "$(tui_width_max)" -le 120 ] || tui_fail "a line overflows the screen"
tui_line 'view agent 999'
tui_wait 'simulator\.agent: no agent 999'
tui_line 'view stats 3'
tui_wait 'error: view: simulator\.stats takes no arguments'
tui_quit
echo "ok tui.views"
