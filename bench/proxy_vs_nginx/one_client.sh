#!/usr/bin/env bash
# one_client.sh — one client waiting on each answer (one_conn.c), through
# several headroomd set-ups running side by side against one fast_upstream,
# alternated round by round so the host's noise falls on all of them alike:
# what a change, or a sink, does to one client's p50 / p99.
#
# Usage: HEADROOMD=/path/to/build/src/headroomd bench/proxy_vs_nginx/one_client.sh [VARIANT...]
# Variants (default: shipped nosinks):
#   shipped        conf/headroom.conf as shipped
#   nomdb          without the metrics_db sink
#   nosinks        without any sink
#   passthrough    with `optimize no` (bodies forwarded unread, counted while
#                  the upstream works): what the work before forwarding costs
#   base           the shipped config on BASE_HEADROOMD (another build),
#                  edited by the sed script BASE_CONF_SED if set
#   nginx          nginx proxy_pass, one worker per core (the floor)
#   nginx_bg       the same nginx with background_load.c running beside it
#                  during its runs, shaped like headroomd's sink threads at
#                  ~10 k requests/s (BG_SHAPE): what background work alone
#                  costs one client on this host
# Knobs: ROUNDS=4 SECONDS_PER_RUN=4 BODY=json|sse, BG_SHAPE (background_load.c's
# PERIOD_US:BURST_US[:SLICE_US] per thread; default HR_BG_SHAPE in common.sh)
# Prints one line per run and a median per variant. 127.0.0.1 only; stops
# everything it starts.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
ROUNDS=${ROUNDS:-4}
SECS=${SECONDS_PER_RUN:-4}
BODY=${BODY:-json}
. "$HERE/common.sh"
[ -x "${HEADROOMD:-}" ] || die "set HEADROOMD to a built headroomd (a build without sanitizers)"
VARIANTS=("$@")
[ ${#VARIANTS[@]} -gt 0 ] || VARIANTS=(shipped nosinks)
for v in "${VARIANTS[@]}"; do
    case $v in
    shipped | nomdb | nosinks | passthrough) ;;
    base) [ -x "${BASE_HEADROOMD:-}" ] || die "variant base needs BASE_HEADROOMD" ;;
    nginx | nginx_bg) [ -x "$NGINX" ] || die "variant $v needs nginx (apt-get install nginx-light)" ;;
    *) die "unknown variant $v (shipped, nomdb, nosinks, passthrough, base, nginx, nginx_bg)" ;;
    esac
done

bench_tmp hr-oneclient

cc -O2 -Wall -o "$TMP/one_conn" "$HERE/one_conn.c"
start_fast_upstream

declare -A PORT
for v in "${VARIANTS[@]}"; do
    PORT[$v]=$(free_port)
    if [ "$v" = nginx ] || [ "$v" = nginx_bg ]; then # one nginx serves both
        if [ -z "${NGX_PORT:-}" ]; then
            NGX_PORT=${PORT[$v]}
            start_nginx "$NGX_PORT" "$(nproc)"
            PIDS+=($NGX_PID)
        fi
        PORT[$v]=$NGX_PORT
        continue
    fi
    headroomd_conf "${PORT[$v]}" "$v" "$TMP/$v.conf"
    [ "$v" != base ] || [ -z "${BASE_CONF_SED:-}" ] || sed -i -e "$BASE_CONF_SED" "$TMP/$v.conf"
    bin=$HEADROOMD
    [ "$v" = base ] && bin=$BASE_HEADROOMD
    start_headroomd "$v" "$bin" "$TMP/$v.conf"
done
for v in "${VARIANTS[@]}"; do
    path=/readyz
    case $v in nginx | nginx_bg) path=/ ;; esac
    wait_http "http://127.0.0.1:${PORT[$v]}$path" || { tail -5 "$TMP/$v.log" >&2; die "$v did not start"; }
done

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg), $BODY, $ROUNDS rounds of ${SECS} s"
for r in $(seq "$ROUNDS"); do
    for v in "${VARIANTS[@]}"; do
        BG_PID=
        [ "$v" != nginx_bg ] || start_background_load $((SECS + 1))
        line=$(timeout $((SECS + 20)) "$TMP/one_conn" "${PORT[$v]}" "$SECS" "$BODY") || die "one_conn failed ($v)"
        [ -z "$BG_PID" ] || wait "$BG_PID"
        echo "round $r  $v  $line" | tee -a "$TMP/results"
    done
done
python3 - "$TMP/results" <<'PY'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    v = line.split()[2]
    f = dict(re.findall(r"(\w+)=(\d+)", line))
    runs.setdefault(v, []).append(f)
print("| variant | p50 µs | p90 µs | p99 µs | p99.9 µs | (medians of rounds) |")
print("|---|---|---|---|---|---|")
for v, fs in runs.items():
    med = lambda k: statistics.median(int(f[k]) for f in fs)
    print("| %s | %d | %d | %d | %d | p99 per round: %s |" % (v, med("p50_us"), med("p90_us"), med("p99_us"), med("p999_us"),
                                                       " ".join(f["p99_us"] for f in fs)))
PY
