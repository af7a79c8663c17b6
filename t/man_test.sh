#!/bin/sh
# t/man_test.sh — TAP: the man pages render without warnings and document every
# directive, environment variable, long option and plugin key headroomd reports.
#
# Env: HEADROOMD (the daemon binary), top_srcdir (for doc/ and conf/),
# HEADROOM_TEST_PLUGIN_DIR (built plugins, for the plugin-key check).

here=$(cd "$(dirname "$0")" && pwd)
top=${top_srcdir:-$here/..}
doc=$top/doc
hd=${HEADROOMD:-$here/../src/headroomd}
pages="headroomd.8 headroom.conf.5 headroom.1"

if [ ! -x "$hd" ]; then
    echo "Bail out! headroomd not found at '$hd': set HEADROOMD to the built binary"
    exit 1
fi
for p in $pages; do
    if [ ! -r "$doc/$p" ]; then
        echo "Bail out! $doc/$p missing: set top_srcdir to the source tree"
        exit 1
    fi
done

# Plain ASCII pages render the same in any locale; C keeps man-db from
# complaining about a locale the test host lacks.
LC_ALL=C
export LC_ALL
unset MANPAGER PAGER

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=1; echo "not ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n # SKIP $1"; }

# Man source with \- turned into - and font escapes dropped, so that
# `\fB\-\-port\fR` reads `--port`.
plain() { sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\f(..//g' -e 's/\\%//g' "$1"; }

# --- rendering -------------------------------------------------------------
for p in $pages; do
    if command -v groff >/dev/null 2>&1; then
        out=$(groff -man -ww -z "$doc/$p" 2>&1)
        if [ -z "$out" ]; then ok "groff -man -ww renders $p without warnings"
        else not_ok "groff -man -ww renders $p without warnings"; printf '%s\n' "$out" | sed 's/^/# /'; fi
    else
        skip "groff not installed ($p)"
    fi
    if command -v man >/dev/null 2>&1; then
        out=$(man --warnings -l "$doc/$p" 2>&1 >/dev/null)
        if [ -z "$out" ]; then ok "man --warnings -l renders $p without warnings"
        else not_ok "man --warnings -l renders $p without warnings"; printf '%s\n' "$out" | sed 's/^/# /'; fi
    else
        skip "man not installed ($p)"
    fi
    if LC_ALL=C grep -q '[^ -~	]' "$doc/$p"; then
        not_ok "$p is plain ASCII (use groff escapes such as \\(em)"
    else
        ok "$p is plain ASCII"
    fi
done

# --- every directive of --help-config is in headroom.conf.5 ------------------
conf5=$(plain "$doc/headroom.conf.5")
dirs=$("$hd" --help-config | sed -n 's/^  \([a-z][a-z0-9_]*\) .*/\1/p' | grep -v '^transform$' | grep -v '^sink$')
if [ -z "$dirs" ]; then
    not_ok "headroomd --help-config lists directives"
else
    ok "headroomd --help-config lists $(echo "$dirs" | wc -l | tr -d ' ') directives"
fi
for d in $dirs; do
    # Documented as an item: a .B/.BI/.BR line starting with the name.
    if printf '%s\n' "$conf5" | grep -Eq "^\\.B[IR]? \"?$d( |\"|\$)"; then
        ok "headroom.conf.5 documents directive $d"
    else
        not_ok "headroom.conf.5 documents directive $d"
    fi
done
for blk in transform sink; do
    if printf '%s\n' "$conf5" | grep -Eq "^\\.BI \"$blk \" name"; then
        ok "headroom.conf.5 documents the $blk block"
    else
        not_ok "headroom.conf.5 documents the $blk block"
    fi
done
for v in $("$hd" --help-config | sed -n 's/.*\[env \(HEADROOM_[A-Z_]*\)\].*/\1/p'); do
    if printf '%s\n' "$conf5" | grep -q "$v"; then ok "headroom.conf.5 names $v"
    else not_ok "headroom.conf.5 names $v"; fi
    if plain "$doc/headroomd.8" | grep -q "$v"; then ok "headroomd.8 names $v"
    else not_ok "headroomd.8 names $v"; fi
done

# --- every long option of --help is in headroomd.8 ----------------------------
man8=$(plain "$doc/headroomd.8")
opts=$("$hd" --help | grep -o -- '--[a-z][a-z-]*' | sort -u)
if [ -z "$opts" ]; then
    not_ok "headroomd --help lists long options"
else
    ok "headroomd --help lists $(echo "$opts" | wc -l | tr -d ' ') long options"
fi
for o in $opts; do
    if printf '%s\n' "$man8" | grep -Eq -- "(^|[^a-z-])$o([^a-z-]|\$)"; then
        ok "headroomd.8 documents $o"
    else
        not_ok "headroomd.8 documents $o"
    fi
done

# --- every command of `headroom --help` is in headroom.1 ---------------------
cli=${HEADROOM_CLI:-$here/../src/headroom}
man1=$(plain "$doc/headroom.1")
if cmds=$("$cli" --help 2>/dev/null | sed -n 's/^  \([a-z][a-z]*\)  .*/\1/p') && [ -n "$cmds" ]; then
    for c in $cmds; do
        # Documented as an item under COMMANDS (".TP" then ".B cmd") and in the synopsis.
        if printf '%s\n' "$man1" | grep -A1 '^\.TP' | grep -qx "\.B $c" &&
           printf '%s\n' "$man1" | grep -A1 '^\.SY headroom' | grep -q "^\.B $c"; then
            ok "headroom.1 documents command $c"
        else
            not_ok "headroom.1 documents command $c (an item under COMMANDS and a SYNOPSIS line)"
        fi
    done
else
    skip "headroom CLI not found at '$cli' (set HEADROOM_CLI)"
fi

# --- every key of the bundled plugins is in headroom.conf.5 -------------------
conf=$top/conf/headroom.conf
set -- --check-config -c "$conf"
[ -n "$HEADROOM_TEST_PLUGIN_DIR" ] && set -- "$@" --plugin-dir "$HEADROOM_TEST_PLUGIN_DIR"
if ! listing=$("$hd" "$@" 2>&1); then
    skip "plugins of conf/headroom.conf not loadable (set HEADROOM_TEST_PLUGIN_DIR): $(printf '%s' "$listing" | head -n 1)"
else
    keys=$(printf '%s\n' "$listing" | sed -n 's/^    \([a-z][a-z0-9_]*\) .*/\1/p' | sort -u)
    for k in $keys; do
        if printf '%s\n' "$conf5" | grep -Eq "^\\.BI $k( |\$)"; then
            ok "headroom.conf.5 documents plugin key $k"
        else
            not_ok "headroom.conf.5 documents plugin key $k"
        fi
    done
fi

echo "1..$n"
exit $failed
