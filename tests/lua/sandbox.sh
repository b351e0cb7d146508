#!/bin/sh
# tests/lua/sandbox.sh RECLAB: `reclab --sandbox` against the real binary. A workspace folder
# (holding the store and a link that points out of it) and a folder beside it with a secret;
# tests/lua/sandbox.lua checks the Lua side from inside, the lines below the command-line
# side (-c PATH arguments, a precompiled script, --help). Every failure names its check id.
set -u
RECLAB=$1
SRC=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
T=$(cd "$T" && pwd -P)
mkdir -p "$T/ws" "$T/outside"
echo secret > "$T/outside/secret.txt"
ln -s ../outside "$T/ws/link"
cd "$T/ws" || exit 1
fails=0
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }

"$RECLAB" -q --sandbox --db "$T/ws/reclab.db" run "$SRC/sandbox.lua" "$T/ws" "$T/outside" \
  >out.txt 2>err.txt </dev/null
st=$?
grep FAIL out.txt
grep -q '^sandbox ok$' out.txt || fail lua.sandbox.0 "exit $st: $(head -c 400 err.txt)"
[ -e "$T/outside/pwned" ] && fail lua.sandbox.5 "a job ran os.execute"
[ "$(cat "$T/outside/secret.txt")" = secret ] || fail lua.sandbox.2 "the secret changed"
[ "$(ls "$T/outside")" = secret.txt ] || fail lua.sandbox.2 "files appeared outside: $(ls "$T/outside")"

# lua.sandbox.6: -c lines: PATH arguments of commands are confined (the store is in ws/)
"$RECLAB" -q --sandbox --db "$T/ws/reclab.db" -c "export model=pop file=$T/outside/p.csv" \
  >out.txt 2>err.txt </dev/null
st=$?
[ $st -eq 1 ] || fail lua.sandbox.6 "exit $st, want 1"
grep -q "export: bad argument 'file' (sandbox: path '$T/outside/p.csv' is outside the workspace $T/ws)" err.txt ||
  fail lua.sandbox.6 "message: $(cat err.txt)"
# ... relative to the current folder, which may be elsewhere: ../outside from ws/ is outside
"$RECLAB" -q --sandbox --db "$T/ws/reclab.db" -c "lua.run file=../outside/x.lua" >out.txt 2>err.txt </dev/null
grep -q "sandbox: path '../outside/x.lua' is outside" err.txt || fail lua.sandbox.6 "relative: $(cat err.txt)"
# without --sandbox the same line is allowed (and fails for its own reason: no such file)
"$RECLAB" -q --db "$T/ws/reclab.db" -c "lua.run file=$T/outside/x.lua" >out.txt 2>err.txt </dev/null
grep -q sandbox err.txt && fail lua.sandbox.6 "sandbox without --sandbox"

# lua.sandbox.7: a precompiled script is refused (source text only)
printf '\033Lua\124\000' > "$T/ws/bin.lua"
"$RECLAB" -q --sandbox --db "$T/ws/reclab.db" run "$T/ws/bin.lua" >out.txt 2>err.txt </dev/null
grep -q "binary chunk" err.txt || fail lua.sandbox.7 "precompiled script: $(cat err.txt)"
# -e code as well
"$RECLAB" -q --sandbox --no-demo --db "$T/ws/reclab.db" -e 'print(os.execute)' >out.txt 2>err.txt </dev/null
grep -q '^nil$' out.txt || fail lua.sandbox.7 "-e sees os.execute: $(cat out.txt err.txt)"

# lua.sandbox.8: documented in --help
"$RECLAB" --help | grep -q -- '--sandbox' || fail lua.sandbox.8 "--help does not mention --sandbox"

if [ $fails -gt 0 ]; then
  echo "$fails sandbox check(s) failed"
  exit 1
fi
echo "lua.sandbox: all checks passed"
