# tests/tui/lib.sh: helpers for the terminal tests. Each test drives the real `reclab`
# binary inside a private tmux server (its own socket), with a fresh temporary store, HOME
# and XDG folders, and asserts on the screen text (capture-pane). Every wait polls the pane
# with a deadline; nothing sleeps for a fixed long time. Exit 77 = skipped.
#
#   . "$(dirname "$0")/lib.sh"
#   tui_start                      # 120x36, the shell on the demo world
#   tui_wait 'reclab>'             # poll until the regex matches the screen (or fail)
#   tui_type 'help' ; tui_keys Enter
#   tui_quit                       # `quit`, then check the shell exited with status 0
set -u

: "${RECLAB_BIN:?RECLAB_BIN must name the reclab binary}"
if ! command -v tmux >/dev/null 2>&1; then
    echo "SKIP: tmux is not installed"
    exit 77
fi
if [ ! -x "$RECLAB_BIN" ]; then
    echo "SKIP: $RECLAB_BIN not built"
    exit 77
fi

TUI_TMP=$(mktemp -d "${TMPDIR:-/tmp}/reclab-tui.XXXXXX")
TUI_SOCK="$TUI_TMP/tmux.sock"
TUI_SCREEN="$TUI_TMP/screen.txt"
TUI_NAME=${TUI_NAME:-$(basename "$0" .sh)}
mkdir -p "$TUI_TMP/home" "$TUI_TMP/state" "$TUI_TMP/config" "$TUI_TMP/work"
export LC_ALL=C.UTF-8 LANG=C.UTF-8

tmx() { tmux -S "$TUI_SOCK" -f /dev/null "$@"; }

tui_cleanup() {
    tmx kill-server >/dev/null 2>&1
    if [ "${TUI_KEEP:-0}" = 1 ]; then echo "kept $TUI_TMP"; else rm -rf "$TUI_TMP"; fi
}
trap tui_cleanup EXIT INT TERM

tui_fail() {
    echo "FAIL [$TUI_NAME]: $*"
    echo "---- screen ----"
    tmx capture-pane -p -t t 2>/dev/null || cat "$TUI_SCREEN" 2>/dev/null
    echo "----------------"
    exit 1
}

# tui_start [cols rows [extra reclab args]]
tui_start() {
    cols=${1:-120}
    rows=${2:-36}
    [ $# -ge 2 ] && shift 2
    # the exit status goes to a file (128+n for a signal): tmux's pane_dead_status is empty
    # for a process killed by a signal
    tmx -u new-session -d -x "$cols" -y "$rows" -s t \
        "env HOME='$TUI_TMP/home' XDG_STATE_HOME='$TUI_TMP/state' XDG_CONFIG_HOME='$TUI_TMP/config' \
         LC_ALL=C.UTF-8 LANG=C.UTF-8 TERM=screen-256color OPENBLAS_NUM_THREADS=1 \
         ${TUI_ENV:-} '$RECLAB_BIN' --db '$TUI_TMP/work/session.db' $*; echo \$? > '$TUI_TMP/exit'" ||
        tui_fail "tmux could not start"
    tmx set-option -t t remain-on-exit on >/dev/null
    tui_wait '^reclab>' 15
    # the demo world is built in the background after the first frame: wait until the sidebar
    # lists it (it is registered with the host before it is shown)
    tui_wait '^ +demo +1000u' 30
}

tui_capture() { tmx capture-pane -p -t t > "$TUI_SCREEN" 2>/dev/null; }

# tui_dead: 0 when the shell process has exited
tui_dead() { [ "$(tmx display-message -p -t t '#{pane_dead}' 2>/dev/null)" = 1 ]; }

# tui_wait REGEX [seconds]: poll the screen until the extended regex matches.
tui_wait() {
    pat=$1
    secs=${2:-10}
    end=$(($(date +%s) + secs))
    while :; do
        tui_capture
        if grep -Eq -- "$pat" "$TUI_SCREEN"; then return 0; fi
        if tui_dead; then tui_fail "the shell exited while waiting for /$pat/"; fi
        if [ "$(date +%s)" -ge "$end" ]; then tui_fail "timed out after ${secs}s waiting for /$pat/"; fi
        sleep 0.1
    done
}

# tui_wait_not REGEX [seconds]: poll until the regex no longer matches.
tui_wait_not() {
    pat=$1
    secs=${2:-10}
    end=$(($(date +%s) + secs))
    while :; do
        tui_capture
        if ! grep -Eq -- "$pat" "$TUI_SCREEN"; then return 0; fi
        if [ "$(date +%s)" -ge "$end" ]; then tui_fail "timed out after ${secs}s waiting for /$pat/ to go"; fi
        sleep 0.1
    done
}

tui_type() { tmx send-keys -t t -l -- "$1"; }
tui_keys() { tmx send-keys -t t "$@"; }
tui_line() { tui_type "$1"; tui_keys Enter; }

# tui_cmdline: the last line of the screen (the command line)
tui_cmdline() { tui_capture; tail -n 1 "$TUI_SCREEN"; }

# tui_has_plugin NAME: skip the test when a plugin is not built
tui_need_plugin() {
    dir=$(dirname "$RECLAB_BIN")/plugins
    if [ ! -f "$dir/reclab_$1.so" ]; then
        echo "SKIP: plugin $1 not built ($dir)"
        exit 77
    fi
}

# tui_width_max: widest line of the screen in display columns (wcwidth, via wc -L)
tui_width_max() { tui_capture; wc -L < "$TUI_SCREEN"; }

tui_quit() {
    tui_line quit
    end=$(($(date +%s) + 10))
    while ! tui_dead; do
        if [ "$(date +%s)" -ge "$end" ]; then tui_fail "the shell did not exit after quit"; fi
        sleep 0.1
    done
    st=$(cat "$TUI_TMP/exit" 2>/dev/null)
    [ "$st" = 0 ] || tui_fail "the shell exited with status '$st' (128+n: signal n)"
}
