#!/bin/sh
# systemd_test.sh — contrib/systemd/headroomd.service: `systemd-analyze
# verify` accepts it (with ExecStart pointed at this build's headroomd, as
# `make install` points it at the installed one), and `systemd-analyze
# security` rates its sandbox OK or better (exposure below 2.0).
src=${top_srcdir:-$(dirname "$0")/..}
unit=$src/contrib/systemd/headroomd.service
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "1..0 # SKIP systemd-analyze not installed (scripts/deps.sh --test installs systemd)"
    exit 0
fi
bin=${HEADROOMD:-$src/src/headroomd}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
sed -e "s|^ExecStart=/usr/bin/headroomd|ExecStart=$bin|" "$unit" > "$tmp/headroomd.service"
echo "1..4"
out=$(systemd-analyze verify --man=no "$tmp/headroomd.service" 2>&1)
if [ $? -eq 0 ] && [ -z "$out" ]; then echo "ok 1 - systemd-analyze verify: no findings"
else echo "not ok 1 - systemd-analyze verify"; echo "$out" | sed 's/^/# /'; fi
grep -q '^Type=notify$' "$unit" && grep -q '^WatchdogSec=' "$unit" && grep -q '^DynamicUser=yes$' "$unit" &&
    grep -q '^StateDirectory=headroom$' "$unit" && grep -q '^ExecReload=.*HUP' "$unit" &&
    echo "ok 2 - Type=notify, WatchdogSec, DynamicUser, StateDirectory, ExecReload by SIGHUP" ||
    echo "not ok 2 - the unit lacks Type=notify, WatchdogSec, DynamicUser, StateDirectory or ExecReload"
# --offline needs systemd 250 or later (Debian 12 has 252).
out=$(systemd-analyze security --offline=yes --threshold=20 "$tmp/headroomd.service" 2>&1)
rc=$?
score=$(echo "$out" | sed -n 's/.*Overall exposure level for headroomd.service: \([0-9.]*\) \([A-Z]*\).*/\1 \2/p')
if [ $rc -eq 0 ] && [ -n "$score" ]; then echo "ok 3 - systemd-analyze security: exposure $score (threshold 2.0)"
else echo "not ok 3 - systemd-analyze security: exposure ${score:-unknown} above 2.0"; echo "$out" | grep '✗' | sed 's/^/# /'; fi
# The check has teeth: the same unit without its sandbox scores worse.
grep -v -E '^(Protect|Private|Restrict|SystemCall|Capability|NoNewPrivileges|LockPersonality|MemoryDeny|DynamicUser)' \
    "$tmp/headroomd.service" > "$tmp/bare.service"
sed -i 's/^Description=.*/Description=bare/' "$tmp/bare.service"
if systemd-analyze security --offline=yes --threshold=20 "$tmp/bare.service" >/dev/null 2>&1; then
    echo "not ok 4 - an unsandboxed copy also passes the threshold: the check proves nothing"
else echo "ok 4 - an unsandboxed copy of the unit fails the same threshold"; fi
