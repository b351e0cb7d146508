#!/bin/sh
# tui.play: role play (YuLan-Rec's --play_role) from the shell: a person takes over agent 3 of
# a simulation on the demo world, sees its recommendation page, buys an item, chats with
# agent 5 turn by turn until saying goodbye (the other side answered by the offline backend),
# the other agents play a round around them, and every choice is in the store as the agent's
# events ("by": "human"), read back with `sql` in the shell and after the shell has exited;
# the per-round entropy metrics of the steps are drawn by `chart shown_entropy`.
. "$(dirname "$0")/lib.sh"
tui_need_plugin simulator
tui_start 120 80
tui_line 'simulator.new data=demo agents=40 seed=1'
tui_wait 'simulation [0-9]+: 40 agents'
tui_line 'simulator.play agent=3'
tui_wait 'you play agent 3'
tui_wait 'recommendations \(round 1\)'
tui_wait ' 1\. <[^>]+> \('
tui_wait 'choose: simulator\.act do=buy'
tui_line 'simulator.act do=buy k=1'
tui_wait 'watched <[^>]+> \((liked|not liked)\)'
# the rounds go on around the played agent
tui_wait 'round 1: [0-9]+ active'
tui_line 'simulator.chat with=5 text="Hi! Seen anything good lately?"'
tui_wait '\]: Hi [A-Z][a-z]+ [A-Z][a-z]+!'
tui_line 'simulator.chat text="Thanks, I will look for it. Goodbye!"'
tui_wait 'Goodbye!'
tui_wait 'the chat is over'
tui_wait 'round 2: [0-9]+ active'
# the events are in the store, the played agent's like any agent's
tui_line "sql SELECT kind || '=' || count(*) AS ev FROM events WHERE agent = 3 AND json_extract(payload, '\$.by') = 'human' GROUP BY kind ORDER BY kind"
tui_wait 'chat=1' 20
tui_wait 'chat_turn=2'
tui_wait 'play=1'
tui_wait 'visit=1'
tui_wait 'watch=1'
# the rounds around the played agent recorded the cocoon measures: the shell charts them
tui_keys F2
tui_line 'simulator.step rounds=3'
tui_wait '✓ #[0-9]+ step' 30
tui_line 'chart shown_entropy'
tui_wait 'chart +shown_entropy'
tui_wait '┤'
tui_quit
out=$("$RECLAB_BIN" -q --no-demo --db "$TUI_TMP/work/session.db" -c "sql SELECT kind, json_extract(payload, '\$.by') AS who FROM events WHERE agent = 3 AND kind IN ('watch', 'chat') ORDER BY seq" 2>&1)
echo "$out" | grep -Eq '^watch +human' || tui_fail "no watch event by human in the store: $out"
echo "$out" | grep -Eq '^chat +human' || tui_fail "no chat event by human in the store: $out"
echo "ok tui.play"
