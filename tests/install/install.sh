#!/bin/sh
# tests/install/install.sh CMAKE BUILD_DIR SOURCE_DIR: the installed tree, end to end.
#
# Test organization (ids install.N; each failure prints its id, what was expected and what
# came instead):
#   install.1  `cmake --install BUILD_DIR --prefix TMP/prefix` (nothing is configured or
#              built here: it installs what the build produced)
#   install.2  the layout: program, library with its SONAME links, plugins, Lua module, headers
#              (no *_internal.h), reclab.pc, man page
#   install.3  RUNPATHs are $ORIGIN-relative (skipped without readelf)
#   install.4  `pkg-config --cflags --libs reclab` through PKG_CONFIG_PATH
#   install.5  every installed header compiles on its own (strict C11, -Werror)
#   install.6  examples/plugin-hello, copied outside the source tree, builds with
#              `PKG_CONFIG_PATH=... make CC=cc`
#   install.7  TMP/prefix/bin/reclab runs `hello.greet who=ci times=2` from
#              RECLAB_PLUGIN_PATH, without LD_LIBRARY_PATH, from outside the source tree
#   install.8  every in-tree plugin is loaded from TMP/prefix/lib/reclab/plugins (not from
#              the build tree, which is still there), nothing refused
#   install.9  the Lua module loads in a plain lua5.4 (skipped without lua5.4)
#   install.10 the man page renders without warnings (man -l, else groff; skipped without
#              both) and documents every option of `reclab --help`
#   install.11 the tree still works after being moved (relative RPATHs, ${pcfiledir})
# Everything happens in a fresh temporary folder, removed at exit.
set -eu

cmake=$1
build=$(cd "$2" && pwd)
src=$(cd "$3" && pwd)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/reclab-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
prefix=$tmp/prefix

fail() {
    echo "FAIL $1: $2"
    if [ -n "${3:-}" ] && [ -f "$3" ]; then
        echo "--- $3:"
        cat "$3"
    fi
    exit 1
}
ok() { echo "ok   $1"; }

# The program and the Lua module must find everything through the install tree alone.
unset LD_LIBRARY_PATH RECLAB_PLUGIN_PATH RECLAB_DB LUA_CPATH LUA_CPATH_5_4 || true
export OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=passive RECLAB_NO_REEXEC=1

# ---- install.1 ---------------------------------------------------------------------------
"$cmake" --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 ||
    fail install.1 "cmake --install failed" "$tmp/install.log"
ok "install.1 cmake --install --prefix $prefix"

# ---- install.2 ---------------------------------------------------------------------------
libdir=$prefix/lib
for f in bin/reclab lib/libreclab_core.so lib/pkgconfig/reclab.pc share/man/man1/reclab.1 \
    include/reclab/host/plugin.h include/reclab/host/host.h include/reclab/base/base.h; do
    [ -e "$prefix/$f" ] || fail install.2 "expected $f in the install tree, missing"
done
[ -x "$prefix/bin/reclab" ] || fail install.2 "bin/reclab is not executable"
[ -L "$libdir/libreclab_core.so" ] || fail install.2 "lib/libreclab_core.so is not a symlink"
set -- "$libdir"/libreclab_core.so.[0-9]*
[ -e "$1" ] || fail install.2 "no lib/libreclab_core.so.<N> (SONAME link)"
internal=$(find "$prefix/include" -name '*_internal.h')
[ -z "$internal" ] || fail install.2 "private headers installed: $internal"
n_plugins=0
for p in "$build"/plugins/reclab_*.so; do
    [ -e "$p" ] || continue
    name=$(basename "$p")
    [ -f "$libdir/reclab/plugins/$name" ] ||
        fail install.2 "expected lib/reclab/plugins/$name (built in $build/plugins), missing"
    n_plugins=$((n_plugins + 1))
done
[ "$n_plugins" -gt 0 ] || fail install.2 "no plugins in $build/plugins"
[ -f "$libdir/lua/5.4/reclab.so" ] || fail install.2 "expected lib/lua/5.4/reclab.so, missing"
ok "install.2 layout ($n_plugins plugins)"

# ---- install.3 ---------------------------------------------------------------------------
if command -v readelf >/dev/null 2>&1; then
    check_runpath() { # file expected
        rp=$(readelf -d "$1" | sed -n 's/.*(\(RUNPATH\|RPATH\)).*\[\(.*\)\]$/\2/p')
        [ "$rp" = "$2" ] || fail install.3 "RUNPATH of ${1#"$prefix"/}: expected '$2', got '$rp'"
    }
    # shellcheck disable=SC2016 # a literal $ORIGIN
    check_runpath "$prefix/bin/reclab" '$ORIGIN/../lib'
    for p in "$libdir"/reclab/plugins/reclab_*.so "$libdir/lua/5.4/reclab.so"; do
        # shellcheck disable=SC2016 # a literal $ORIGIN
        check_runpath "$p" '$ORIGIN/../..'
    done
    ok "install.3 RUNPATHs"
else
    echo "skip install.3: readelf not found"
fi

# ---- install.4 ---------------------------------------------------------------------------
export PKG_CONFIG_PATH="$libdir/pkgconfig"
pc=$(pkg-config --cflags --libs reclab 2>"$tmp/pc.err") ||
    fail install.4 "pkg-config --cflags --libs reclab failed" "$tmp/pc.err"
case " $pc " in
*" -I$libdir/pkgconfig/../../include/reclab "* | *" -I$prefix/include/reclab "*) ;;
*) fail install.4 "expected -I<prefix>/include/reclab in '$pc'" ;;
esac
case " $pc " in
*" -lreclab_core "*) ;;
*) fail install.4 "expected -lreclab_core in '$pc'" ;;
esac
ok "install.4 pkg-config: $pc"

# ---- install.5 ---------------------------------------------------------------------------
n_headers=0
for h in $(cd "$prefix/include/reclab" && find . -name '*.h' | sort); do
    h=${h#./}
    printf '#include "%s"\n' "$h" >"$tmp/header.c"
    # shellcheck disable=SC2046 # word splitting of pkg-config output is intended
    cc -std=c11 -Wall -Wextra -Wpedantic -Werror -fsyntax-only $(pkg-config --cflags reclab) \
        "$tmp/header.c" >"$tmp/header.log" 2>&1 ||
        fail install.5 "installed header $h does not compile on its own" "$tmp/header.log"
    n_headers=$((n_headers + 1))
done
ok "install.5 $n_headers headers self-contained"

# ---- install.6 ---------------------------------------------------------------------------
cp -R "$src/examples/plugin-hello" "$tmp/plugin-hello"
rm -f "$tmp/plugin-hello/reclab_hello.so"
(cd "$tmp/plugin-hello" && make CC=cc CFLAGS='-O2 -Werror') >"$tmp/make.log" 2>&1 ||
    fail install.6 "make in a copy of examples/plugin-hello failed" "$tmp/make.log"
[ -f "$tmp/plugin-hello/reclab_hello.so" ] || fail install.6 "make produced no reclab_hello.so"
ok "install.6 examples/plugin-hello built"

# ---- install.7 ---------------------------------------------------------------------------
mkdir "$tmp/run"
cd "$tmp/run"
RECLAB_PLUGIN_PATH="$tmp/plugin-hello" "$prefix/bin/reclab" -q --no-demo --db "$tmp/run/r.db" \
    -c 'hello.greet who=ci times=2' >"$tmp/greet.out" 2>"$tmp/greet.err" ||
    fail install.7 "reclab -c 'hello.greet who=ci times=2' failed" "$tmp/greet.err"
printf 'hello, ci (1/2)\nhello, ci (2/2)\n' >"$tmp/greet.expected"
grep '^hello, ' "$tmp/greet.out" >"$tmp/greet.lines" || true
cmp -s "$tmp/greet.expected" "$tmp/greet.lines" ||
    fail install.7 "expected the lines 'hello, ci (1/2)' and 'hello, ci (2/2)'" "$tmp/greet.out"
grep -q '^count = 2$' "$tmp/greet.out" || fail install.7 "expected 'count = 2'" "$tmp/greet.out"
grep -Eq '^2 +hello, ci \(2/2\) *$' "$tmp/greet.out" ||
    fail install.7 "expected the table row '2  hello, ci (2/2)'" "$tmp/greet.out"
ok "install.7 hello.greet through RECLAB_PLUGIN_PATH"

# ---- install.8 ---------------------------------------------------------------------------
RECLAB_PLUGIN_PATH="$tmp/plugin-hello" "$prefix/bin/reclab" -q --no-demo --db "$tmp/run/r.db" \
    -e 'local p = reclab.plugins()
        for _, x in ipairs(p) do print("plugin", x.name, x.file) end
        for _, r in ipairs(p.refused) do print("refused", r) end' \
    >"$tmp/plugins.out" 2>"$tmp/plugins.err" ||
    fail install.8 "reclab -e 'reclab.plugins()' failed" "$tmp/plugins.err"
! grep -q '^refused' "$tmp/plugins.out" || fail install.8 "plugins refused" "$tmp/plugins.out"
for p in "$build"/plugins/reclab_*.so; do
    [ -e "$p" ] || continue
    name=$(basename "$p" .so)
    name=${name#reclab_}
    file=$(awk -F '\t' -v n="$name" '$1 == "plugin" && $2 == n { print $3 }' "$tmp/plugins.out")
    case "$file" in
    "$prefix"/*/reclab/plugins/reclab_"$name".so) ;;
    *) fail install.8 "plugin $name: expected a file under $prefix, got '$file'" "$tmp/plugins.out" ;;
    esac
done
file=$(awk -F '\t' '$1 == "plugin" && $2 == "hello" { print $3 }' "$tmp/plugins.out")
[ "$file" = "$tmp/plugin-hello/reclab_hello.so" ] ||
    fail install.8 "expected plugin hello from $tmp/plugin-hello" "$tmp/plugins.out"
ok "install.8 plugins loaded from the install tree"

# ---- install.9 ---------------------------------------------------------------------------
if command -v lua5.4 >/dev/null 2>&1; then
    LUA_CPATH="$libdir/lua/5.4/?.so" RECLAB_NO_DEMO=1 RECLAB_DB="$tmp/run/m.db" lua5.4 -e '
        local r = require "reclab"
        local n = 0
        for _, x in ipairs(r.plugins()) do
          if x.file:find("/reclab/plugins/", 1, true) then n = n + 1 end
        end
        print(r.version, n)' >"$tmp/lua.out" 2>"$tmp/lua.err" ||
        fail install.9 "require 'reclab' in lua5.4 failed" "$tmp/lua.err"
    version=$("$prefix/bin/reclab" --version | sed -n '1s/^reclab \([^ ]*\).*/\1/p') # line 1: reclab V (git H); line 2: mpi
    printf '%s\t%s\n' "$version" "$n_plugins" | cmp -s - "$tmp/lua.out" ||
        fail install.9 "expected '$version<TAB>$n_plugins' (version, plugins from the tree)" \
            "$tmp/lua.out"
    ok "install.9 Lua module"
else
    echo "skip install.9: lua5.4 not found"
fi

# ---- install.10 --------------------------------------------------------------------------
page=$prefix/share/man/man1/reclab.1
if command -v man >/dev/null 2>&1; then
    renderer="man -l"
    MANWIDTH=80 MANPAGER=cat man --warnings -E UTF-8 -l "$page" >"$tmp/man.out" 2>"$tmp/man.err" ||
        fail install.10 "man -l reclab.1 failed" "$tmp/man.err"
elif command -v groff >/dev/null 2>&1; then
    renderer="groff -man"
    groff -man -Tutf8 -ww "$page" >"$tmp/man.out" 2>"$tmp/man.err" ||
        fail install.10 "groff -man reclab.1 failed" "$tmp/man.err"
else
    renderer=""
    echo "skip install.10 (rendering): neither man nor groff found"
fi
if [ -n "$renderer" ]; then
    [ ! -s "$tmp/man.err" ] || fail install.10 "$renderer printed warnings" "$tmp/man.err"
    for s in NAME SYNOPSIS DESCRIPTION OPTIONS COMMANDS ENVIRONMENT FILES EXAMPLES 'SEE ALSO'; do
        grep -q "^$s" "$tmp/man.out" || fail install.10 "no section $s in the rendered page"
    done
fi
# every option and action of --help has a .B/.BI/.BR line in the page
"$prefix/bin/reclab" --help >"$tmp/help.out"
sed 's/\\-/-/g' "$page" >"$tmp/page.txt"
opts=$(sed -n 's/^  \(-[-a-z]*\)\(, \(--[-a-z]*\)\)\{0,1\} .*/\1 \3/p' "$tmp/help.out")
n_opts=0
for o in $opts run demo; do
    grep -Eq "^\.B[IR]? (.* )?$o( |\$)" "$tmp/page.txt" ||
        fail install.10 "option $o of 'reclab --help' is not documented in doc/reclab.1"
    n_opts=$((n_opts + 1))
done
[ "$n_opts" -ge 8 ] || fail install.10 "expected at least 8 options in --help, parsed $n_opts"
ok "install.10 man page (${renderer:-not rendered}; $n_opts options of --help documented)"

# ---- install.11 --------------------------------------------------------------------------
cd "$tmp"
mv "$prefix" "$tmp/moved"
PKG_CONFIG_PATH="$tmp/moved/lib/pkgconfig" pkg-config --cflags reclab | grep -q "$tmp/moved/" ||
    fail install.11 "reclab.pc does not follow the moved tree"
"$tmp/moved/bin/reclab" -q --no-demo --db "$tmp/run/r.db" -e "
    local n = 0
    for _, x in ipairs(reclab.plugins()) do
      if x.file:find('$tmp/moved/', 1, true) == 1 then n = n + 1 end
    end
    print(n)" >"$tmp/moved.out" 2>"$tmp/moved.err" ||
    fail install.11 "the moved program failed" "$tmp/moved.err"
[ "$(cat "$tmp/moved.out")" = "$n_plugins" ] ||
    fail install.11 "expected $n_plugins plugins from the moved tree" "$tmp/moved.out"
ok "install.11 moved tree works"
echo "install: all checks passed"
