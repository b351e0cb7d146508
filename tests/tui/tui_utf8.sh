#!/bin/sh
# tui.utf8: UTF-8 text (accents, CJK wide characters) typed and shown: output lines keep
# their display width, and a table with a CJK title keeps its columns aligned.
. "$(dirname "$0")/lib.sh"
tui_start 120 36
tui_line '="Café crème"'
tui_wait 'Café crème'
tui_line '="[東京タワー]" .. "|"'
tui_line '="[abcdefghij]" .. "|"'
tui_wait '\[abcdefghij\]\|'
a=$(grep -o '.*\[東京タワー\]|' "$TUI_SCREEN" | tail -1 | wc -L)
b=$(grep -o '.*\[abcdefghij\]|' "$TUI_SCREEN" | tail -1 | wc -L)
[ "$a" -gt 0 ] && [ "$a" = "$b" ] || tui_fail "wide characters misaligned ($a vs $b columns)"
# a table whose title column holds CJK and accents: the numeric column stays aligned
tui_line "sql select '東京タワー' as title, 1234 as n union all select 'Zoë', 5 union all select 'plain', 77"
tui_wait 'sql \(3 rows\)'
c1=$(grep -o '.*東京タワー *1234' "$TUI_SCREEN" | wc -L)
c2=$(grep -o '.*Zoë *5' "$TUI_SCREEN" | wc -L)
c3=$(grep -o '.*plain *77' "$TUI_SCREEN" | wc -L)
[ "$c1" -gt 0 ] && [ "$c1" = "$c2" ] && [ "$c2" = "$c3" ] ||
    tui_fail "table columns misaligned: $c1 $c2 $c3"
[ "$(tui_width_max)" -le 120 ] || tui_fail "a line overflows the pane"
# a very long CJK line wraps inside the log without overflowing
tui_keys F2
tui_line '=string.rep("漢字", 90)'
tui_wait '漢字漢字'
[ "$(tui_width_max)" -le 120 ] || tui_fail "the wrapped CJK line overflows the pane"
tui_quit
echo "ok tui.utf8"
