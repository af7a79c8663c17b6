#!/usr/bin/env bash
# p99_sinks.sh — which sink sets one connection's p99. Runs headroomd with
# the shipped conf/headroom.conf, all sinks removed but the ones named, in
# front of fast_upstream, and drives it with wrk at one connection. Prints
# wrk's p50/p99 next to headroomd's own `latency` histogram (request read to
# answer written, /stats): when wrk's p99 grows and headroomd's does not,
# the time is lost outside the request's processing (threads woken late).
#
# Usage: HEADROOMD=/path/to/build/src/headroomd bench/proxy_vs_nginx/p99_sinks.sh [SET...]
#   SET: a comma-separated list of sinks to keep, or "none"
#        (default: none savings_file metrics_db prometheus otel langfuse)
#   DURATION=3 seconds per run, ROUNDS=2
#   STRETCHES=THREAD (e.g. hr-mdb-writer): also record scheduler events with
#        perf during each run and print how long that thread held a CPU
#        between two points where it let others in (cpu_stretches.py)
# Needs wrk (and perf for STRETCHES); 127.0.0.1 only; stops what it starts.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
DURATION=${DURATION:-3}
ROUNDS=${ROUNDS:-2}
SETS=("$@")
[ ${#SETS[@]} -gt 0 ] || SETS=(none savings_file metrics_db prometheus otel langfuse)
. "$HERE/common.sh"
[ -x "${HEADROOMD:-}" ] || die "set HEADROOMD to a built headroomd (a build without sanitizers)"
command -v wrk >/dev/null || die "wrk is missing (apt-get install wrk)"

bench_tmp hr-p99

start_fast_upstream

# one SET: start headroomd with those sinks, warm up, ROUNDS measured runs
run() {
    local set=$1 port pid
    port=$(free_port)
    headroomd_conf "$port" shipped "$TMP/$set.shipped"
    KEEP=$set python3 -c '
import os, re, sys
keep = os.environ["KEEP"].split(",")
text = sys.stdin.read()
print(re.sub(r"(?ms)^sink (\w+) \{(?:.*?^\}| \})\n", lambda m: m.group(0) if m.group(1) in keep else "", text))' \
        <"$TMP/$set.shipped" >"$TMP/$set.conf"
    start_headroomd "$set" "$HEADROOMD" "$TMP/$set.conf"
    pid=$HD_PID
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/readyz" && break; sleep 0.1; done
    wrk -t1 -c1 -d1s -s "$HERE/post.lua" "http://127.0.0.1:$port" >/dev/null 2>&1
    for r in $(seq "$ROUNDS"); do
        local after tid=
        if [ -n "${STRETCHES:-}" ]; then
            tid=$(grep -lx "$STRETCHES" /proc/"$pid"/task/*/comm 2>/dev/null | head -1 | cut -d/ -f5 || true)
            [ -n "$tid" ] && { perf record -q -e sched:sched_switch -e syscalls:sys_enter_sched_yield -a \
                -o "$TMP/sched.data" -- sleep "$((DURATION + 1))" >/dev/null 2>&1 & }
            sleep 0.3
        fi
        after=$(wrk -t1 -c1 -d"${DURATION}s" --latency -s "$HERE/post.lua" "http://127.0.0.1:$port" 2>&1 | grep RESULT)
        if [ -n "$tid" ]; then
            wait $! 2>/dev/null || true
            echo "  $STRETCHES: $(perf script -i "$TMP/sched.data" 2>/dev/null | "$HERE/cpu_stretches.py" "$tid" | head -1)"
        fi
        # headroomd's histogram covers the whole life of the daemon: the
        # warm-up and earlier rounds are a small share of its count.
        curl -s "http://127.0.0.1:$port/stats" | SET=$set RES="$after" python3 -c '
import json, os, re, sys
d = json.load(sys.stdin)
res = dict(kv.split("=") for kv in os.environ["RES"].split()[1:])
lat = d["latency"]
print("| %s | %s | %s | %s | %.3f | %.3f |" % (os.environ["SET"], res["requests"], res["p50_us"], res["p99_us"],
                                          lat["p50_ms"], lat["p99_ms"]))'
    done
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}

echo "one connection, ${DURATION}s per run, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| sinks kept | requests | wrk p50 µs | wrk p99 µs | headroomd latency p50 ms | headroomd latency p99 ms |"
echo "|---|---|---|---|---|---|"
for s in "${SETS[@]}"; do run "$s"; done
