#!/bin/sh
# tui.table: the table view scrolls horizontally (issue 13, point 6): a runs table wider than
# the screen shows the first column and the columns from the scroll position, with notes of
# the columns hidden on each side; Right/Left move by a column and Home/End jump on an empty
# command line (with text on the line they move the cursor), Shift-Right always; a sort by a
# column off the screen brings it into view; `export view file=` writes the view as CSV
# (every column, the sorted order) and `export cmd="..."` a command's result table.
. "$(dirname "$0")/lib.sh"
tui_need_plugin baselines
tui_start 100 30
tui_line 'train pop data=demo'
tui_wait '✓ #1 pop' 30
tui_line 'train itemknn data=demo'
tui_wait '✓ #2 itemknn' 30
tui_line 'runs'
tui_wait 'table  runs' 10
tui_wait '\+[0-9]+ cols▸' 5
tui_wait_not 'valid\.recall@5' 2
# a sort by the last column scrolls it into view; the first column stays
tui_line 'runs sort=valid.recall@5'
tui_wait 'valid\.recall@5 ↓' 10
tui_wait '◂[0-9]+ cols' 5
tui_wait '│run ' 5
# Home: back to the first columns
tui_keys Home
tui_wait_not '◂[0-9]+ cols' 5
tui_wait 'status' 5
# Right by one column: the second column (status) scrolls out, run stays
tui_keys Right
tui_wait '◂1 cols' 5
tui_wait_not '│run  +status' 2
tui_keys Left
tui_wait_not '◂[0-9]+ cols' 5
# End: the last column in view
tui_keys End
tui_wait 'valid\.recall@5' 5
tui_wait_not '\+[0-9]+ cols▸' 5
tui_keys Home
tui_wait_not '◂[0-9]+ cols' 5
# with text on the line, Left and Home edit the line, the table stays
tui_type 'xyz'
tui_keys Left Left Home
tui_wait_not '◂[0-9]+ cols' 2
tui_type 'a'
tui_wait '^reclab> axyz$' 5
tui_keys C-e C-u
tui_wait '^reclab> ?$' 5
# Shift-Right scrolls whatever the line holds
tui_type 'q'
tui_keys S-Right
tui_wait '◂1 cols' 5
tui_keys C-e C-u
# export view: the table as sorted, every column
tui_line "export view file=$TUI_TMP/view.csv"
tui_wait 'exported the table view' 10
head -1 "$TUI_TMP/view.csv" | grep -q '^run,status,model,command,dataset,secs,.*valid.recall@5$' ||
    tui_fail "view.csv header: $(head -1 "$TUI_TMP/view.csv")"
[ "$(wc -l < "$TUI_TMP/view.csv")" -eq 3 ] || tui_fail "view.csv rows: $(cat "$TUI_TMP/view.csv")"
# sorted by valid.recall@5 descending: itemknn (#2) first
sed -n 2p "$TUI_TMP/view.csv" | grep -q '^2,done,itemknn' || tui_fail "view.csv order: $(cat "$TUI_TMP/view.csv")"
tui_line "export cmd=\"sql SELECT id, status FROM runs ORDER BY id\" file=$TUI_TMP/sql.csv"
tui_wait "exported the table 'sql'" 10
[ "$(cat "$TUI_TMP/sql.csv")" = "$(printf 'id,status\n1,done\n2,done')" ] || tui_fail "sql.csv: $(cat "$TUI_TMP/sql.csv")"
tui_line 'export view'
tui_wait 'error: export view: file= expected' 5
tui_quit
echo "ok tui.table"
