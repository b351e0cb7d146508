#!/bin/sh
# tui.readme: every command of README.md's shell and batch sections runs as written (issue 13).
# The commands are read from the README itself, so the test fails as soon as the two diverge:
#   - "reclab> CMD   comment" lines of the fenced blocks under "## The shell", "## Models..."
#     and "## Plugins" are typed into one shell (tmux), in order, each waited for until the
#     shell is idle again; a line of the log starting "error:" fails the test;
#   - the lines of the ```sh block under "## Batch mode and Lua" run with sh, as written.
# Both run in a fresh folder holding links to the build (build/) and the Lua examples (lua/),
# on the demo world ($RECLAB_DATA unset, so compare_baselines.lua takes the demo world).
. "$(dirname "$0")/lib.sh"
tui_need_plugin baselines
tui_need_plugin seqrec
tui_need_plugin simulator
tui_need_plugin reloop
SRC=$(cd "$(dirname "$0")/../.." && pwd)
README=$SRC/README.md
unset RECLAB_DATA
W=$TUI_TMP/readme
mkdir -p "$W"
ln -s "$(cd "$(dirname "$RECLAB_BIN")" && pwd)" "$W/build"
ln -s "$SRC/lua" "$W/lua"
cd "$W" || exit 1

# the commands, from the README
awk '
    /^## / { sec = $0; next }
    /^```/ { if (inb) { inb = 0 } else { inb = 1; lang = substr($0, 4) }; next }
    !inb { next }
    (sec ~ /^## The shell/ || sec ~ /^## Models/ || sec ~ /^## Plugins/) && /^reclab> / {
        line = substr($0, 9)
        i = index(line, "   ")            # the comment column: three blanks or more
        if (i) line = substr(line, 1, i - 1)
        sub(/ +$/, "", line)
        print "shell\t" line
    }
    sec ~ /^## Batch mode/ && lang == "sh" {
        line = $0
        i = index(line, "   #")
        if (i) line = substr(line, 1, i - 1)
        sub(/ +$/, "", line)
        if (line != "") print "batch\t" line
    }' "$README" > "$TUI_TMP/cmds.txt"
nshell=$(grep -c '^shell' "$TUI_TMP/cmds.txt")
nbatch=$(grep -c '^batch' "$TUI_TMP/cmds.txt")
# the README has these sections with commands in them: a rename or a lost block fails here
[ "$nshell" -ge 20 ] || tui_fail "only $nshell shell commands found in README.md"
[ "$nbatch" -ge 5 ] || tui_fail "only $nbatch batch commands found in README.md"

# batch: each line as written (lua5.4 lines need the interpreter)
grep '^batch' "$TUI_TMP/cmds.txt" | cut -f2- > "$TUI_TMP/batch.txt"
while IFS= read -r line; do
    case $line in
    *lua5.4*)
        command -v lua5.4 >/dev/null 2>&1 || { echo "note: no lua5.4, skipped: $line"; continue; }
        # a sanitizer build's module cannot load into the plain interpreter (as lua.module)
        if ldd build/lua/reclab.so 2>/dev/null | grep -Eq 'libasan|libubsan'; then
            echo "note: sanitizer build, skipped: $line"
            continue
        fi
        ;;
    esac
    [ -z "${README_TIMES:-}" ] || echo "$(date +%s) batch $line" >&2
    if ! sh -c "$line" > "$TUI_TMP/out.txt" 2>&1 </dev/null; then
        echo "FAIL [tui_readme]: README batch line failed: $line"
        head -20 "$TUI_TMP/out.txt"
        exit 1
    fi
done < "$TUI_TMP/batch.txt"

# the shell: one session, each line in turn
cd "$W" || exit 1
tui_start 160 50
grep '^shell' "$TUI_TMP/cmds.txt" | cut -f2- > "$TUI_TMP/shell.txt"
n=0
while IFS= read -r line; do
    n=$((n + 1))
    tui_line "$line"
    # a sentinel after it (a file the shell's Lua makes): once it exists, the line was
    # dispatched and its job, if any, submitted
    tui_line "lua io.open(\"$TUI_TMP/sent-$n\", \"w\"):close()"
    end=$(($(date +%s) + 60))
    while [ ! -e "$TUI_TMP/sent-$n" ]; do
        [ "$(date +%s)" -lt "$end" ] || tui_fail "README shell line $n was not dispatched: $line"
        sleep 0.1
    done
    # idle again: no job and no Lua task in the status line
    end=$(($(date +%s) + 240))
    while :; do
        tui_capture
        status=$(tail -n 2 "$TUI_SCREEN" | head -n 1)
        case $status in
        *"Ctrl-C cancels"* | *"Ctrl-C interrupts"*) ;;
        *) break ;;
        esac
        [ "$(date +%s)" -lt "$end" ] || tui_fail "README shell line $n did not finish: $line"
        sleep 0.2
    done
    [ -z "${README_TIMES:-}" ] || echo "$(date +%s) $n $line" >&2
    tui_keys F2 # the log, full height: the command's last lines
    sleep 0.2
    tui_capture
    if grep -Eq '│[0-9:]{8} error: ' "$TUI_SCREEN"; then
        tui_fail "README shell line $n failed: $line"
    fi
    tui_line 'clear'
done < "$TUI_TMP/shell.txt"
tui_quit
echo "ok tui.readme ($nshell shell and $nbatch batch commands of README.md)"
