#!/bin/sh
# t/sdk_symbols_test.sh — TAP: libheadroom.so exports exactly the functions
# declared in include/headroom/headroom.h (nothing of the daemon's internals),
# under a versioned soname, and headroom.pc points at it.
here=$(cd "$(dirname "$0")" && pwd)
top=${top_srcdir:-$here/..}
lib=${HEADROOM_LIBRARY:-$here/../.libs/libheadroom.so.1}
n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fail=1; echo "not ok $n - $1"; }
[ -r "$lib" ] || { echo "Bail out! $lib not built (set HEADROOM_LIBRARY)"; exit 1; }
command -v nm >/dev/null 2>&1 || { echo "1..0 # SKIP nm not installed"; exit 0; }

# Functions the header declares: "type *name(" / "type name(" at the start of a line.
declared=$(sed -n 's/^[a-z_ ]*[ *]\(hr_[a-z_]*\)(.*/\1/p' "$top/include/headroom/headroom.h" | sort -u)
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVWi]$/ {print $3}' | sed 's/@.*//' | sort -u)
[ -n "$declared" ] && ok "headroom.h declares $(echo "$declared" | wc -l | tr -d ' ') functions" \
    || not_ok "headroom.h declares functions"
extra=$(printf '%s\n' "$exported" | grep -vxF "$declared")
missing=$(printf '%s\n' "$declared" | grep -vxF "$exported")
if [ -z "$extra" ]; then ok "nothing but the API is exported"
else not_ok "nothing but the API is exported"; printf '%s\n' "$extra" | sed 's/^/# extra: /'; fi
if [ -z "$missing" ]; then ok "every declared function is exported"
else not_ok "every declared function is exported"; printf '%s\n' "$missing" | sed 's/^/# missing: /'; fi
if nm -D --defined-only "$lib" | grep -q ' T hr_compress@@HEADROOM_1.0$'; then ok "symbols carry the version HEADROOM_1.0"
else not_ok "symbols carry the version HEADROOM_1.0"; fi
# Functions added later carry the version of the API minor that added them.
if nm -D --defined-only "$lib" | grep -q ' T hr_daemon_setup@@HEADROOM_1.1$'; then ok "hr_daemon_setup carries HEADROOM_1.1"
else not_ok "hr_daemon_setup carries HEADROOM_1.1"; fi
if nm -D --defined-only "$lib" | grep -q ' T hr_last_http_status@@HEADROOM_1.2$'; then ok "hr_last_http_status carries HEADROOM_1.2"
else not_ok "hr_last_http_status carries HEADROOM_1.2"; fi
soname=$(readelf -d "$lib" 2>/dev/null | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
major=$(sed -n 's/^#define HEADROOM_API_MAJOR \([0-9]*\)/\1/p' "$top/include/headroom/headroom.h")
if [ "$soname" = "libheadroom.so.$major" ]; then ok "soname $soname follows HEADROOM_API_MAJOR"
else not_ok "soname '$soname' is libheadroom.so.$major"; fi
pc=$(dirname "$lib")/../headroom.pc
if [ -r "$pc" ] && grep -q '^Libs: .*-lheadroom' "$pc" && grep -q '^Version: ' "$pc"; then ok "headroom.pc names -lheadroom and a version"
else not_ok "headroom.pc names -lheadroom and a version"; fi
echo "1..$n"
exit $fail
