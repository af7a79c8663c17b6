#!/usr/bin/env bash
# load_ab.sh — throughput and CPU per request at one connection count
# (default 64), through several proxies running side by side against one
# fast_upstream, alternated round by round so the host's noise falls on all
# of them alike: what a change does to the throughput ratio and to the CPU
# per request, split by thread (thread_cpu.py) — where run.sh gives one
# build's figures against nginx.
#
# Usage: HEADROOMD=/path/to/build/src/headroomd bench/proxy_vs_nginx/load_ab.sh [VARIANT...]
# Variants (default: nginx shipped):
#   nginx      nginx proxy_pass, one worker per core (the floor)
#   nginx_bg   the same nginx, with background_load.c running beside each
#              of its measured runs in LOAD_BG_SHAPE: CPU bursts of the size
#              and rhythm of headroomd's metrics_db writer and sink threads
#              at ~70 k requests/s (their CPU is not in nginx_bg's figures)
#   shipped    conf/headroom.conf as shipped, on HEADROOMD
#   base       the shipped config on BASE_HEADROOMD (another build; default
#              HEADROOMD), edited by the sed script BASE_CONF_SED if set
#              (e.g. BASE_CONF_SED='s/^ *batch_rows .*/batch_rows 128/')
#   nomdb      HEADROOMD without the metrics_db sink
#   nosinks    HEADROOMD without any sink
#   passthrough  HEADROOMD with `optimize no` (bodies forwarded unread, counted while the upstream works)
#   balance    HEADROOMD with `balance_connections yes` (accepted connections spread evenly)
# Knobs: ROUNDS=5 SECONDS_PER_RUN=4 CONNS=64 BODY=json|sse LOAD_BG_SHAPE
# Prints one line per run and the medians per variant (req/s, wrk's p99,
# CPU per request), and what each headroomd did with its metrics_db rows
# (written, dropped: a run that dropped rows did less work). 127.0.0.1 only;
# stops everything it starts.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
ROUNDS=${ROUNDS:-5}
# metrics_db's writer (~1.2 us a row, in batches of 1024 with a yield every
# 50 us) and its sink thread (~0.45 us an event, every 20 ms) at ~70 k
# requests/s, and the savings sink (~0.15 us an event)
LOAD_BG_SHAPE=${LOAD_BG_SHAPE:-"15000:1300:50 20000:650 20000:200"}
SECS=${SECONDS_PER_RUN:-4}
CONNS=${CONNS:-64}
BODY=${BODY:-json}
. "$HERE/common.sh"
[ -x "${HEADROOMD:-}" ] || die "set HEADROOMD to a built headroomd (a build without sanitizers)"
command -v wrk >/dev/null || die "wrk is missing (apt-get install wrk)"
VARIANTS=("$@")
[ ${#VARIANTS[@]} -gt 0 ] || VARIANTS=(nginx shipped)
for v in "${VARIANTS[@]}"; do
    case $v in
    shipped | nomdb | nosinks | passthrough | balance) ;;
    base) [ -x "${BASE_HEADROOMD:=$HEADROOMD}" ] || die "BASE_HEADROOMD is not an executable: $BASE_HEADROOMD" ;;
    nginx | nginx_bg) [ -x "$NGINX" ] || die "variant $v needs nginx (apt-get install nginx-light)" ;;
    *) die "unknown variant $v (nginx, nginx_bg, shipped, base, nomdb, nosinks, passthrough, balance)" ;;
    esac
done
case $BODY in json | sse) ;; *) die "BODY is json or sse, not $BODY" ;; esac

bench_tmp hr-load-ab
start_fast_upstream
declare -A PORT PIDSOF
NGX_SHARED=
for v in "${VARIANTS[@]}"; do
    port=$(free_port)
    PORT[$v]=$port
    if [ "$v" = nginx ] || [ "$v" = nginx_bg ]; then
        if [ -n "$NGX_SHARED" ]; then # nginx and nginx_bg: one nginx, measured with and without the bursts
            PORT[$v]=${PORT[$NGX_SHARED]}
            PIDSOF[$v]=${PIDSOF[$NGX_SHARED]}
            continue
        fi
        NGX_SHARED=$v
        start_nginx "$port" "$(nproc)"
        PIDS+=("$NGX_PID")
        wait_http "http://127.0.0.1:$port/" || die "nginx did not start: $(cat "$TMP/nginx-error.log")"
        PIDSOF[$v]="$NGX_PID $(pgrep -P "$NGX_PID" | tr '\n' ' ')"
        continue
    fi
    bin=$HEADROOMD
    [ "$v" = base ] && bin=$BASE_HEADROOMD
    headroomd_conf "$port" "$v" "$TMP/$v.conf"
    [ "$v" != base ] || [ -z "${BASE_CONF_SED:-}" ] || sed -i -e "$BASE_CONF_SED" "$TMP/$v.conf"
    start_headroomd "$v" "$bin" "$TMP/$v.conf"
    PIDSOF[$v]=$HD_PID
    wait_http "http://127.0.0.1:$port/readyz" || die "$v did not start: $(tail -5 "$TMP/$v.log")"
done

RES=$TMP/runs.tsv
: >"$RES"
for r in $(seq "$ROUNDS"); do
    for v in "${VARIANTS[@]}"; do
        # a short warm-up, then the measured run
        BENCH_STREAM=$([ "$BODY" = sse ] && echo 1 || echo 0) timeout 30 wrk -t2 -c"$CONNS" -d1s -s "$HERE/post.lua" \
            "http://127.0.0.1:${PORT[$v]}" >/dev/null 2>&1 || die "wrk failed ($v)"
        python3 "$HERE/thread_cpu.py" snap ${PIDSOF[$v]} >"$TMP/cpu0"
        python3 "$HERE/thread_cpu.py" snap "$UPSTREAM_PID" >"$TMP/up0"
        BG_PID=
        [ "$v" != nginx_bg ] || BG_SHAPE=$LOAD_BG_SHAPE start_background_load $((SECS + 1))
        BENCH_STREAM=$([ "$BODY" = sse ] && echo 1 || echo 0) timeout $((SECS + 30)) wrk -t2 -c"$CONNS" -d"${SECS}s" \
            --timeout 5s -s "$HERE/post.lua" "http://127.0.0.1:${PORT[$v]}" >"$TMP/wrk.out" 2>&1 || die "wrk failed ($v)"
        [ -z "$BG_PID" ] || wait "$BG_PID"
        python3 "$HERE/thread_cpu.py" snap ${PIDSOF[$v]} >"$TMP/cpu1"
        python3 "$HERE/thread_cpu.py" snap "$UPSTREAM_PID" >"$TMP/up1"
        line=$(grep '^RESULT' "$TMP/wrk.out") || die "no RESULT line from wrk: $(cat "$TMP/wrk.out")"
        n=$(echo "$line" | sed -n 's/.* requests=\([0-9]*\).*/\1/p')
        us=$(echo "$line" | sed -n 's/.* duration_us=\([0-9]*\).*/\1/p')
        errs=$(echo "$line" | awk '{for (i = 2; i <= NF; i++) {split($i, kv, "="); if (kv[1] == "errors" || kv[1] == "status_errors") e += kv[2]}} END {print e + 0}')
        cpu=$(python3 "$HERE/thread_cpu.py" diff "$TMP/cpu0" "$TMP/cpu1" "$n")
        up=$(python3 "$HERE/thread_cpu.py" diff "$TMP/up0" "$TMP/up1" "$n" | cut -f1,2)
        rps=$(echo "$n $us" | awk '{printf "%.0f", $1 / ($2 / 1e6)}')
        p99=$(echo "$line" | sed -n 's/.* p99_us=\([0-9]*\).*/\1/p')
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$v" "$rps" "$errs" "$cpu" "$up" "$p99" >>"$RES"
        printf '#   round %s  %-8s %7s req/s  p99 %6s us  errors %s  cpu/req user %s + kernel %s us  (%s)\n' "$r" "$v" "$rps" \
            "$p99" "$errs" "$(echo "$cpu" | cut -f1)" "$(echo "$cpu" | cut -f2)" "$(echo "$cpu" | cut -f3)" >&2
    done
done

for v in "${VARIANTS[@]}"; do
    case $v in nginx | nginx_bg) ;; *) echo "# $v: $(mdb_rows "${PORT[$v]}")" ;; esac
done
echo "# $CONNS connections, $BODY, $ROUNDS rounds of ${SECS} s, load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$RES" "${VARIANTS[@]}" <<'PY'
import sys, statistics as st
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
first = sys.argv[2]
med = {}
print("| variant | req/s median [range] | ratio to %s | p99 µs median [range] | CPU µs/req user + kernel | by thread (median user/kernel) | upstream user + kernel | errors |" % first)
print("|---|---|---|---|---|---|---|---|")
for v in sys.argv[2:]:
    rs = [r for r in rows if r[1] == v]
    rps = [float(r[2]) for r in rs]
    med[v] = st.median(rps)
    user = st.median(float(r[4]) for r in rs)
    kern = st.median(float(r[5]) for r in rs)
    by = {}
    for r in rs:
        for part in (r[6].split(",") if len(r) > 6 and r[6] else []):
            name, uk = part.split("=")
            u, k = uk.split("/")
            by.setdefault(name, []).append((float(u), float(k)))
    threads = "; ".join("%s %.1f/%.1f" % (n, st.median(u for u, _ in x), st.median(k for _, k in x))
                        for n, x in sorted(by.items(), key=lambda kv: -sum(a + b for a, b in kv[1])))
    upu = st.median(float(r[7]) for r in rs)
    upk = st.median(float(r[8]) for r in rs)
    p99 = [float(r[9]) for r in rs]
    print("| %s | %.0f [%.0f–%.0f] | %.2f× | %.0f [%.0f–%.0f] | %.1f + %.1f = %.1f | %s | %.1f + %.1f | %d |" % (
        v, med[v], min(rps), max(rps), med[v] / med[first], st.median(p99), min(p99), max(p99), user, kern,
        user + kern, threads, upu, upk, sum(int(r[3]) for r in rs)))
PY
