#!/usr/bin/env bash
# Install the Debian packages headroomd needs to build, run and test.
set -euo pipefail
PKGS="build-essential autoconf automake libtool pkg-config libevent-dev libcurl4-openssl-dev
      libjansson-dev libltdl-dev python3 curl ca-certificates prometheus valgrind"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # prometheus is only needed for promtool; do not let its service start.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    apt-get install -y -qq --no-install-recommends $missing
    rm -f /usr/sbin/policy-rc.d
fi
