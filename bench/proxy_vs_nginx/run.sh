#!/usr/bin/env bash
# run.sh — headroomd against nginx proxy_pass as the floor (issue 17).
#
# Starts a fast C upstream (fast_upstream.c), nginx (Debian's, our own config,
# daemon off) and headroomd (conf/headroom.conf: default transforms and
# sinks), all on 127.0.0.1, then runs wrk at 1, 16 and 64 connections with a
# small non-compressible chat request, as JSON and as an SSE stream,
# interleaving nginx and headroomd, ROUNDS times. Prints req/s, p50/p99,
# the proxy's CPU µs per request and the headroomd/nginx ratios next to the
# issue's targets. See README.md in this directory.
#
# Usage: HEADROOMD=/path/to/build/src/headroomd bench/proxy_vs_nginx/run.sh
#   DURATION=3   seconds per wrk run          ROUNDS=5   repetitions
#   CONNS="1 16 64"  BODIES="json sse"        OUT=dir    keep raw results there
#   INSTALL=0    don't apt-get install missing nginx/wrk
#   FAST_UPSTREAM_SSE_SPLIT=1  the upstream sends each SSE event on its own
#   NGINX_BG=0   skip the one-client runs of nginx beside background_load.c
#                (CPU bursts shaped like headroomd's sink threads, BG_SHAPE):
#                what background work alone costs one client on this host
#   PACED="16:1 64:2"  also runs where each connection waits this many ms
#                after an answer before its next request (conns:ms pairs,
#                "" for none): a load both proxies serve without a queue, so
#                the p99 compares the proxies, not their saturation points
#   ONECONN=0    skip the one-client runs (one_conn.c: each request's own
#                latency, no coordinated-omission correction) at c=1
#   AGENT_BODY=file  adds the body kind "agent" (BODIES="agent" or "json sse
#                agent"): that request posted to /v1/messages, e.g. the Claude
#                Code turn capture_claude.py writes; no one_conn run for it
#   PERF=1       also profile headroomd (perf record, DWARF call graphs) during
#                one extra 16-connection JSON run and print its top symbols
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
DURATION=${DURATION:-3}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-"1 16 64"}
PACED=${PACED-"16:1 64:2"}
BODIES=${BODIES:-"json sse"}
INSTALL=${INSTALL:-1}
CLK_TCK=$(getconf CLK_TCK)
NCPU=$(nproc)

. "$HERE/common.sh" # die, free_port, wait_http, NGINX, start_nginx, headroomd_conf, start_headroomd, start_background_load
case " $BODIES " in *" agent "*)
    [ -r "${AGENT_BODY:-}" ] || die "BODIES has agent: set AGENT_BODY to a request file (capture_claude.py writes one)" ;;
esac

# --- tools -----------------------------------------------------------------
if ! command -v wrk >/dev/null || ! { command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; }; then
    [ "$INSTALL" = 1 ] || die "needs nginx and wrk (apt-get install nginx-light wrk)"
    [ "$(id -u)" = 0 ] || die "needs nginx and wrk: run as root once, or apt-get install nginx-light wrk"
    echo "# installing nginx-light and wrk from Debian" >&2
    apt-get install -y --no-install-recommends nginx-light wrk >/dev/null ||
        { apt-get update -qq >/dev/null && apt-get install -y --no-install-recommends nginx-light wrk >/dev/null; }
    # Debian's package may start the nginx service; we only want our own.
    if [ -s /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
        (service nginx stop || kill "$(cat /run/nginx.pid)") >/dev/null 2>&1 || true
    fi
fi
command -v wrk >/dev/null || die "wrk not found"
command -v cc >/dev/null || die "cc not found"
command -v curl >/dev/null || die "curl not found"
command -v python3 >/dev/null || die "python3 not found"

if [ -z "${HEADROOMD:-}" ]; then
    for c in "$TOP/src/headroomd" "$TOP/_build/src/headroomd"; do
        [ -x "$c" ] && HEADROOMD=$c && break
    done
fi
[ -n "${HEADROOMD:-}" ] && [ -x "$HEADROOMD" ] ||
    die "set HEADROOMD to a built headroomd (e.g. mkdir /tmp/b && cd /tmp/b && $TOP/configure -q && make -j2)"

# --- processes: everything we start is stopped on exit ---------------------
TMP=$(mktemp -d /tmp/proxy_vs_nginx.XXXXXX)
UP_PID= NGX_PID= HD_PID=
cleanup() {
    set +e
    [ -n "$HD_PID" ] && kill -TERM "$HD_PID" 2>/dev/null
    [ -n "$NGX_PID" ] && kill -TERM "$NGX_PID" 2>/dev/null
    [ -n "$UP_PID" ] && kill -TERM "$UP_PID" 2>/dev/null
    for p in $HD_PID $NGX_PID $UP_PID; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
    done
    wait 2>/dev/null
    if [ -n "${OUT:-}" ]; then mkdir -p "$OUT" && cp "$TMP"/*.tsv "$TMP"/*.log "$TMP"/*.conf "$OUT"/ 2>/dev/null; fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# utime+stime in clock ticks, summed over pids (a process's line covers all its threads)
cpu_ticks() {
    local t=0 p
    for p in "$@"; do
        t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
    done
    echo "$t"
}

# fast upstream
# an agent's long conversation is larger than the 256 kB the upstream takes by default
cc -O2 -Wall ${AGENT_BODY:+-DBUF_SIZE='(4<<20)'} -o "$TMP/fast_upstream" "$HERE/fast_upstream.c" ||
    die "cannot build fast_upstream.c"
cc -O2 -Wall -o "$TMP/one_conn" "$HERE/one_conn.c" || die "cannot build one_conn.c"
"$TMP/fast_upstream" 0 "$TMP/up.port" >/dev/null 2>"$TMP/upstream.log" &
UP_PID=$!
for _ in $(seq 50); do [ -s "$TMP/up.port" ] && break; sleep 0.1; done
UP_PORT=$(cat "$TMP/up.port") || die "fast_upstream did not start"

# nginx: as many workers as headroomd's `workers auto` (one per core)
NGX_PORT=$(free_port)
UP=$UP_PORT start_nginx "$NGX_PORT" "$NCPU"

# headroomd: the shipped config, only addresses changed
HD_PORT=$(free_port)
UP=$UP_PORT headroomd_conf "$HD_PORT" shipped "$TMP/headroom.conf"
start_headroomd headroomd "$HEADROOMD" "$TMP/headroom.conf"

wait_http "http://127.0.0.1:$NGX_PORT/" || { cat "$TMP/nginx.log" "$TMP/nginx-error.log" >&2; die "nginx did not start"; }
wait_http "http://127.0.0.1:$HD_PORT/readyz" || { tail -20 "$TMP/headroomd.log" >&2; die "headroomd did not start"; }
NGX_WORKERS=$(pgrep -P "$NGX_PID" | tr '\n' ' ')
[ -n "$NGX_WORKERS" ] || die "no nginx workers found"
# the libtool wrapper execs the real binary, so $HD_PID is headroomd itself
grep -q headroomd "/proc/$HD_PID/comm" || die "pid $HD_PID is $(cat /proc/$HD_PID/comm), not headroomd"

for port in "$UP_PORT" "$NGX_PORT" "$HD_PORT"; do
    curl -sf -m 5 -H 'Content-Type: application/json' -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}' \
        "http://127.0.0.1:$port/v1/chat/completions" >"$TMP/check.out" || true
    grep -q chatcmpl-bench "$TMP/check.out" || die "no answer through port $port"
    curl -sfN -m 5 -H 'Content-Type: application/json' -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":true}' \
        "http://127.0.0.1:$port/v1/chat/completions" >"$TMP/check.out" || true
    # read whole before grep: headroomd's trailing comment follows [DONE], and
    # a grep -q that quits early would fail curl's write under pipefail
    grep -q 'data: \[DONE\]' "$TMP/check.out" || die "no stream through port $port"
done

# --- runs ------------------------------------------------------------------
RES="$TMP/runs.tsv"
printf 'round\ttarget\tbody\tconns\trequests\terrors\treq_s\tp50_us\tp99_us\tmean_us\tproxy_cpu_us_req\tupstream_cpu_us_req\tpace_ms\n' >"$RES"

run_one() { # round target body conns seconds record [pace_ms]
    local round=$1 target=$2 body=$3 c=$4 secs=$5 record=$6 pace=${7:-0} port pids= t=2
    case $target in
        nginx) port=$NGX_PORT pids="$NGX_PID $NGX_WORKERS" ;;
        headroomd) port=$HD_PORT pids=$HD_PID ;;
        direct) port=$UP_PORT ;;
    esac
    [ "$c" -lt 2 ] && t=1
    local p0 u0 p1 u1 line
    p0=$(cpu_ticks $pids) u0=$(cpu_ticks "$UP_PID")
    BENCH_STREAM=$([ "$body" = sse ] && echo 1 || echo 0) BENCH_BODY_FILE=$([ "$body" = agent ] && echo "$AGENT_BODY") \
        BENCH_PACE_MS=$pace timeout $((secs + 20)) \
        wrk -t"$t" -c"$c" -d"${secs}s" --timeout 5s --latency -s "$HERE/post.lua" "http://127.0.0.1:$port" >"$TMP/wrk.out" 2>&1 ||
        { cat "$TMP/wrk.out" >&2; die "wrk failed ($target $body c=$c)"; }
    p1=$(cpu_ticks $pids) u1=$(cpu_ticks "$UP_PID")
    [ "$record" = 1 ] || return 0
    line=$(grep '^RESULT' "$TMP/wrk.out") || { cat "$TMP/wrk.out" >&2; die "no RESULT line from wrk"; }
    python3 - "$line" "$round" "$target" "$body" "$c" "$p0" "$p1" "$u0" "$u1" "$CLK_TCK" "${pids:-none}" "$pace" >>"$RES" <<'EOF'
import sys
line, rnd, target, body, c, p0, p1, u0, u1, tck, pids, pace = sys.argv[1:]
kv = dict(x.split("=") for x in line.split()[1:])
n = int(kv["requests"])
errs = int(kv["errors"]) + int(kv["status_errors"])
rps = n / (int(kv["duration_us"]) / 1e6)
us = lambda a, b: (int(b) - int(a)) * 1e6 / int(tck) / n if n else 0
pcpu = "" if pids == "none" else "%.1f" % us(p0, p1)
print("\t".join([rnd, target, body, c, str(n), str(errs), "%.0f" % rps, kv["p50_us"], kv["p99_us"], kv["mean_us"],
                 pcpu, "%.1f" % us(u0, u1), pace]))
EOF
    tail -1 "$RES" | awk -F'\t' '{printf "#   round %s  %-9s %-4s c=%-3s%s %8s req/s  p50 %6s us  p99 %6s us  cpu/req %s us  errors %s\n", $1,$2,$3,$4,($13 > 0 ? " paced " $13 " ms" : ""),$7,$8,$9,$11,$6}' >&2
}

# one_conn: one client waiting on each answer, every request's own latency
ONE="$TMP/oneconn.tsv"
# (the proxy's CPU per request, user space and kernel, by thread: thread_cpu.py)
printf 'round\ttarget\tbody\trequests\tp50_us\tp90_us\tp99_us\tp999_us\tmax_us\tover10ms\tcpu_user_us\tcpu_kernel_us\tcpu_threads\tup_user_us\tup_kernel_us\tup_threads\n' >"$ONE"
one_conn_run() { # round target body seconds
    local port line pids= n
    case $2 in nginx | nginx_bg) port=$NGX_PORT pids=$NGX_WORKERS ;; headroomd) port=$HD_PORT pids=$HD_PID ;; direct) port=$UP_PORT ;; esac
    python3 "$HERE/thread_cpu.py" snap $pids >"$TMP/cpu0" && python3 "$HERE/thread_cpu.py" snap "$UP_PID" >"$TMP/up0"
    BG_PID=
    [ "$2" != nginx_bg ] || start_background_load $(($4 + 1))
    line=$(timeout $(($4 + 20)) "$TMP/one_conn" "$port" "$4" "$3") || die "one_conn failed ($2 $3)"
    [ -z "$BG_PID" ] || wait "$BG_PID"
    python3 "$HERE/thread_cpu.py" snap $pids >"$TMP/cpu1" && python3 "$HERE/thread_cpu.py" snap "$UP_PID" >"$TMP/up1"
    n=$(echo "$line" | sed -n 's/.*requests=\([0-9]*\).*/\1/p')
    echo "$line" | awk -v r="$1" -v t="$2" -v b="$3" -v cpu="$(python3 "$HERE/thread_cpu.py" diff "$TMP/cpu0" "$TMP/cpu1" "$n")" \
        -v up="$(python3 "$HERE/thread_cpu.py" diff "$TMP/up0" "$TMP/up1" "$n")" '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); v[i] = kv[2] }
        printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r, t, b, v[2], v[3], v[4], v[5], v[6], v[7], v[8], cpu, up }' >>"$ONE"
    tail -1 "$ONE" | awk -F'\t' '{printf "#   round %s  %-9s %-4s one client %7s requests  p50 %5s us  p99 %6s us  p99.9 %6s us  max %s us  cpu/req user %s + kernel %s us\n", $1,$2,$3,$4,$5,$7,$8,$9,$11,$12}' >&2
}

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $NCPU cores, load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "# $("$NGINX" -v 2>&1), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), headroomd $HEADROOMD" >&2
for body in $BODIES; do # warm up: caches, upstream keep-alive pools, page faults
    run_one 0 nginx "$body" 16 1 0
    run_one 0 headroomd "$body" 16 1 0
done
for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order="nginx headroomd"; else order="headroomd nginx"; fi
    for body in $BODIES; do
        for c in $CONNS; do
            targets=$order
            if [ "$c" = 1 ] || [ "$c" = 64 ]; then targets="direct $order"; fi
            for target in $targets; do run_one "$round" "$target" "$body" "$c" "$DURATION" 1; done
            if [ "$c" = 1 ] && [ "${ONECONN:-1}" = 1 ] && [ "$body" != agent ]; then
                for target in $targets; do one_conn_run "$round" "$target" "$body" "$DURATION"; done
                [ "${NGINX_BG:-1}" = 0 ] || one_conn_run "$round" nginx_bg "$body" "$DURATION"
            fi
        done
        for pc in $PACED; do
            for target in $order; do run_one "$round" "$target" "$body" "${pc%%:*}" "$DURATION" 1 "${pc#*:}"; done
        done
    done
done
if [ "${PERF:-0}" = 1 ] && command -v perf >/dev/null; then
    perf record -F 499 --call-graph dwarf,16384 -p "$HD_PID" -o "$TMP/perf.data" -- sleep 2 >/dev/null 2>&1 &
    PERF_PID=$!
    run_one P headroomd json 16 3 0
    wait "$PERF_PID" || true
    echo "# perf: headroomd, small JSON, 16 connections, 2 s; inclusive share of headroomd's samples, user-space symbols:" >&2
    timeout 120 perf report -i "$TMP/perf.data" --children --sort symbol -g none --stdio 2>/dev/null |
        grep -E '^ +[0-9]' | grep -v '\[k\]' | grep -vE '0x[0-9a-f]{8,}|inlined|clone3|start_thread' | head -40 >&2 || true
    echo "# perf: self time by shared object:" >&2
    timeout 60 perf report -i "$TMP/perf.data" --no-children --sort dso -g none --stdio 2>/dev/null |
        grep -E '^ +[0-9]' | head -8 >&2 || true
fi
echo "# headroomd $(mdb_rows "$HD_PORT")" >&2
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
echo "# load after: $LOAD_AFTER" >&2
if grep -qiE 'warn|error' "$TMP/headroomd.log"; then echo "# headroomd log (last lines):" >&2; tail -5 "$TMP/headroomd.log" >&2; fi
cat "$TMP/nginx-error.log" >>"$TMP/nginx.log" 2>/dev/null || true

python3 "$HERE/report.py" "$RES" "$ONE"
