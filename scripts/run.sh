#!/usr/bin/env bash
# Install dependencies, build, and run headroomd with conf/headroom.conf in
# the foreground. `--demo` also starts t/mock-upstream and points both
# providers at it, so it works without API keys. Other arguments go to
# headroomd (e.g. --port 9000).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
demo=0
if [ "${1:-}" = "--demo" ]; then demo=1; shift; fi
scripts/deps.sh
mkdir -p m4
[ -x configure ] || autoreconf -fi >/dev/null 2>&1 || { echo "run.sh: autoreconf failed" >&2; exit 1; }
build="$top/_build"
mkdir -p "$build" && cd "$build"
[ -f Makefile ] || "$top/configure" -q
make -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
args=()
if [ "$demo" = 1 ]; then
    portfile=$(mktemp)
    "$top/t/mock-upstream" --port 0 --port-file "$portfile" --max-seconds 3600 &
    mock=$!
    trap 'kill $mock 2>/dev/null; rm -f "$portfile"' EXIT
    for _ in $(seq 50); do [ -s "$portfile" ] && break; sleep 0.1; done
    url="http://127.0.0.1:$(cat "$portfile")"
    echo "demo: mock OpenAI/Anthropic upstream at $url (stops after an hour)"
    args=(--openai-api-url "$url" --anthropic-api-url "$url")
fi
echo "headroomd: http://127.0.0.1:8787  (stats: /stats, health: /health; Ctrl-C stops)"
"$build/src/headroomd" -c "$top/conf/headroom.conf" "${args[@]}" "$@"
