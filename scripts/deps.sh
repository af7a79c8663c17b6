#!/usr/bin/env bash
# Install the Debian packages headroomd needs: `deps.sh` for building and
# running, `deps.sh --test` adds what the test suite uses (promtool, valgrind,
# systemd-analyze, logrotate, clang for the fuzzers).
set -euo pipefail
PKGS="build-essential autoconf automake libtool pkg-config libevent-dev libcurl4-openssl-dev
      libjansson-dev libltdl-dev zlib1g-dev libzstd-dev libssl-dev libsqlite3-dev libsystemd-dev libhiredis-dev python3 curl ca-certificates openssl"
[ "${1:-}" = "--test" ] && PKGS="$PKGS prometheus valgrind chromium sqlite3 redis-server zstd"
# systemd-analyze (unit checks), logrotate, clang (make fuzz) for t/systemd_test.sh, t/logrotate_test.py, scripts/test.sh
[ "${1:-}" = "--test" ] && PKGS="$PKGS systemd logrotate clang libclang-rt-14-dev"
# The official SDK and OTLP-decoder tests run on node; Debian's when the
# machine has none of its own (a nodesource node already brings npm).
if [ "${1:-}" = "--test" ] && ! command -v node >/dev/null 2>&1; then PKGS="$PKGS nodejs npm"; fi
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: missing packages:$missing; run as root or: sudo apt-get install$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# prometheus is only wanted for promtool: keep its service from starting.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y -qq --no-install-recommends $missing >/dev/null
