# common.sh — what run.sh, count.sh, p99_sinks.sh, one_client.sh and load_ab.sh share: a temp
# dir removed on exit with every process started (PIDS) stopped, a free
# loopback port, waiting for an HTTP answer, the fast C upstream, nginx
# proxy_pass in front of it, headroomd's config for a set-up and its start
# (headroomd_conf, start_headroomd), and background_load.c in the shape of
# headroomd's background work.
# Sourced after `set -euo pipefail`; HERE is the sourcing script's directory.

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

# bench_tmp PREFIX: TMP, PIDS and the exit trap.
bench_tmp() {
    TMP=$(mktemp -d "/tmp/$1.XXXXXX")
    PIDS=()
    trap bench_cleanup EXIT INT TERM
}
# (`|| true`: under set -e, a process already gone or a killed child's
# status would end the trap before the rm, and the temp dir would stay)
bench_cleanup() {
    for p in "${PIDS[@]:-}"; do [ -z "$p" ] || kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 300); do curl -s -o /dev/null -m 1 "$1" && return 0; sleep 0.1; done; return 1; }

# start_fast_upstream: fast_upstream.c built in TMP and started; sets UP (its
# port) and UPSTREAM_PID.
start_fast_upstream() {
    cc -O2 -Wall -o "$TMP/fast_upstream" "$HERE/fast_upstream.c"
    "$TMP/fast_upstream" 0 "$TMP/up.port" >/dev/null 2>"$TMP/upstream.log" &
    UPSTREAM_PID=$!
    PIDS+=($UPSTREAM_PID)
    for _ in $(seq 50); do [ -s "$TMP/up.port" ] && break; sleep 0.1; done
    UP=$(cat "$TMP/up.port")
}

# headroomd_conf PORT SETUP OUT [SOURCE]: SOURCE (default conf/headroom.conf
# under TOP, the source tree) on 127.0.0.1:PORT in front of the fast upstream
# (UP), written to OUT for a set-up: nomdb (without the metrics_db sink),
# nosinks (without any sink), passthrough (`optimize no`), balance
# (`balance_connections yes`); any other name gets it as it is.
headroomd_conf() {
    sed -e "s|^host .*|host 127.0.0.1|" -e "s|^port .*|port $1|" \
        -e "s|^openai_api_url .*|openai_api_url http://127.0.0.1:$UP|" \
        -e "s|^anthropic_api_url .*|anthropic_api_url http://127.0.0.1:$UP|" "${4:-$TOP/conf/headroom.conf}" >"$3"
    case $2 in # a sink block: `sink NAME { }` on one line, or up to the closing brace at the start of a line
    nomdb) sed -i '/^sink metrics_db {/,/^}/d' "$3" ;;
    nosinks) sed -i '/^sink [a-z_]* { *}/d; /^sink [a-z_]* {/,/^}/d' "$3" ;;
    passthrough) echo "optimize no" >>"$3" ;;
    balance) echo "balance_connections yes" >>"$3" ;;
    esac
}

# start_headroomd NAME BINARY CONF: BINARY -c CONF in the background, its
# workspace $TMP/ws-NAME, its output in $TMP/NAME.log, telemetry off; sets
# HD_PID (also in PIDS).
start_headroomd() {
    mkdir -p "$TMP/ws-$1"
    HEADROOM_WORKSPACE_DIR=$TMP/ws-$1 HEADROOM_TELEMETRY=off "$2" -c "$3" </dev/null >"$TMP/$1.log" 2>&1 &
    HD_PID=$!
    PIDS+=($HD_PID)
}

# mdb_rows PORT: one line on what headroomd's metrics_db did with the rows of
# the requests it served (/stats), so a figure never silently counts a run in
# which rows were dropped: "metrics_db rows: written N, dropped M, queued Q".
mdb_rows() {
    curl -s "http://127.0.0.1:$1/stats" | python3 -c '
import json, sys
b = (json.load(sys.stdin) or {}).get("metrics_db") or {}
print("metrics_db rows: written %s, dropped %s, queued %s" % (b.get("rows_written"), b.get("rows_dropped"), b.get("queued"))
      if "rows_written" in b else "metrics_db: not loaded")' 2>/dev/null || echo "metrics_db rows: /stats unreadable"
}

NGINX=$(command -v nginx || echo /usr/sbin/nginx) # Debian's path when not on PATH yet

# start_nginx PORT WORKERS [WRAPPER...]: nginx proxy_pass from PORT to the
# fast upstream (UP) with keep-alive both sides and WORKERS worker processes
# (1: no master process, so NGX_PID is the worker itself), started under
# WRAPPER (strace, valgrind) if given; sets NGX_PID. Config in
# $TMP/nginx.conf, temp files in $TMP/ngx, output in $TMP/nginx.log; bodies
# held in memory, as headroomd holds them (an agent's long conversation,
# run.sh's AGENT_BODY, would otherwise go to a temp file).
start_nginx() {
    local port=$1 workers=$2 master=on
    shift 2
    [ "$workers" = 1 ] && master=off
    mkdir -p "$TMP/ngx"
    cat >"$TMP/nginx.conf" <<EOF
worker_processes $workers;
master_process $master;
daemon off;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/ngx/body;
    proxy_temp_path $TMP/ngx/proxy;
    fastcgi_temp_path $TMP/ngx/fastcgi;
    uwsgi_temp_path $TMP/ngx/uwsgi;
    scgi_temp_path $TMP/ngx/scgi;
    client_body_buffer_size 4m;
    client_max_body_size 16m;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    upstream llm { server 127.0.0.1:$UP; keepalive 256; keepalive_requests 1000000; }
    server {
        listen 127.0.0.1:$port;
        location / { proxy_pass http://llm; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; }
    }
}
EOF
    "$@" "$NGINX" -p "$TMP/ngx" -c "$TMP/nginx.conf" -e "$TMP/nginx-error.log" </dev/null >"$TMP/nginx.log" 2>&1 &
    NGX_PID=$!
}

# background_load.c's default shape (PERIOD_US:BURST_US[:SLICE_US] per
# thread): headroomd's sink threads at ~10 k requests/s as thread_cpu.py
# measured them per request (session 15): the metrics_db sink's thread
# ~0.6 us and the savings sink's ~0.35 us an event, every 20 ms (LINGER_MS);
# the metrics_db writer ~3 us a row, 1024-row batches (~100 ms), yielding
# every 50 us.
HR_BG_SHAPE="20000:120 20000:70 100000:3000:50"

# start_background_load SECONDS: background_load.c (built into $TMP the first
# time) in BG_SHAPE (default HR_BG_SHAPE) for SECONDS; sets BG_PID. It stops
# by itself.
start_background_load() {
    [ -x "$TMP/background_load" ] ||
        cc -O2 -Wall -pthread -o "$TMP/background_load" "$HERE/background_load.c" || die "cannot build background_load.c"
    # shellcheck disable=SC2086 # one argument per thread
    "$TMP/background_load" "$1" ${BG_SHAPE:-$HR_BG_SHAPE} &
    BG_PID=$!
}
