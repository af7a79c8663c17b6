#!/usr/bin/env bash
# count.sh — what one small request costs headroomd and nginx, in counts that
# do not depend on how busy the machine is: system calls per request (strace
# -c) and user-space instructions per request (valgrind --tool=callgrind).
# Both proxies run one worker/process against the same fast_upstream, and the
# same client sends N requests over C keep-alive connections.
#
# Usage: HEADROOMD=/path/to/build/src/headroomd bench/proxy_vs_nginx/count.sh
# Knobs: N=2000 C=4 BODY=json|sse, SKIP_CALLGRIND=1, SKIP_NGINX=1, CONF=headroom.conf to use,
# KEEP=dir (keeps the callgrind and strace outputs there, for callgrind_annotate).
# Needs strace, valgrind and nginx (nginx-light); stops everything it starts.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
N=${N:-2000}
C=${C:-4}
BODY=${BODY:-json}
. "$HERE/common.sh"
[ -x "${HEADROOMD:-}" ] || die "set HEADROOMD to a built headroomd (a build without sanitizers)"
for t in strace valgrind callgrind_annotate python3; do command -v $t >/dev/null || die "$t is missing"; done
[ -x "$NGINX" ] || die "nginx is missing (apt-get install nginx-light)"
# A libtool wrapper is a shell script: run the real binary under the tools.
REAL=$HEADROOMD
LIBDIR=$(cd "$(dirname "$HEADROOMD")/.." && pwd)/.libs
if [ "$(head -c 2 "$HEADROOMD")" = "#!" ]; then REAL=$(dirname "$HEADROOMD")/.libs/$(basename "$HEADROOMD"); fi

bench_tmp hr-count

start_fast_upstream

# client PORT COUNT: COUNT requests over C connections, answers read whole
client() {
    python3 - "$1" "$2" "$C" "$BODY" <<'PY'
import http.client, sys, threading
port, n, c, kind = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
body = ('{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},'
        '{"role":"user","content":"Hello, how are you today?"}]' + (',"stream":true}' if kind == "sse" else '}'))
def run(k):
    h = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(k):
        h.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json", "Authorization": "Bearer x"})
        r = h.getresponse(); r.read()
        assert r.status == 200, r.status
ts = [threading.Thread(target=run, args=(n // c,)) for _ in range(c)]
[t.start() for t in ts]; [t.join() for t in ts]
PY
}

# start_proxy NAME WRAPPER...: sets PORT and PID
start_proxy() {
    local name=$1; shift
    PORT=$(free_port)
    if [ "$name" = nginx ]; then
        start_nginx "$PORT" 1 "$@"
        PID=$NGX_PID
    else
        headroomd_conf "$PORT" shipped "$TMP/hd.conf" "${CONF:-$TOP/conf/headroom.conf}"
        sed -i "s|^workers .*|workers 1|" "$TMP/hd.conf"
        mkdir -p "$TMP/ws"
        HEADROOM_WORKSPACE_DIR=$TMP/ws HEADROOM_TELEMETRY=off LD_LIBRARY_PATH=$LIBDIR \
            "$@" "$REAL" -c "$TMP/hd.conf" </dev/null >"$TMP/$name.log" 2>&1 &
        PID=$!
    fi
    PIDS+=($PID)
    wait_http "http://127.0.0.1:$PORT/" || die "$name did not start: $(tail -5 "$TMP/$name.log")"
}

stop_proxy() { kill -TERM "$PID" 2>/dev/null; wait "$PID" 2>/dev/null || true; }

syscalls() { # NAME
    start_proxy "$1"
    client "$PORT" 200 # warm: connections open, caches filled
    strace -f -c -p "$PID" -o "$TMP/$1.strace" 2>/dev/null &
    local sp=$!
    sleep 0.5
    client "$PORT" "$N"
    kill -INT $sp; wait $sp 2>/dev/null || true
    stop_proxy
    awk -v n="$N" -v who="$1" 'NR>2 && $NF=="total" {total=$4/n}
        NR>2 && $NF!="total" && $4 ~ /^[0-9]+$/ && ($4/n >= 0.2 || $NF=="futex") {parts=parts sprintf(" %s %.2f", $NF, $4/n)}
        END{printf "%-10s syscalls/request %6.2f  (%s )\n", who, total, parts}' "$TMP/$1.strace"
}

instructions() { # NAME
    start_proxy "$1" valgrind --tool=callgrind --callgrind-out-file="$TMP/$1.cg" --dump-instr=no ${VG_OPTS:-}
    client "$PORT" 200
    callgrind_control -z "$PID" >/dev/null 2>&1 || true
    client "$PORT" "$N"
    callgrind_control -d "$PID" >/dev/null 2>&1 || true
    sleep 1
    stop_proxy
    local f
    f=$(ls -t "$TMP/$1.cg".* 2>/dev/null | head -1)
    [ -n "$f" ] || f="$TMP/$1.cg"
    local total
    total=$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1}')
    printf "%-10s instructions/request %8.0f (user space, callgrind)\n" "$1" "$(echo "$total / $N" | bc -l)"
    if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$f" "$KEEP/$1.callgrind" && cp "$TMP/$1.strace" "$KEEP/" 2>/dev/null || true; fi
}

echo "$N small $BODY requests over $C connections, one worker each, load $(cut -d' ' -f1 /proc/loadavg)"
[ -n "${SKIP_NGINX:-}" ] || syscalls nginx
syscalls headroomd
if [ -z "${SKIP_CALLGRIND:-}" ]; then
    [ -n "${SKIP_NGINX:-}" ] || instructions nginx
    instructions headroomd
fi
