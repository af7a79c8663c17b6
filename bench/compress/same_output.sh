#!/bin/sh
# bench/compress/same_output.sh — do two builds compress byte for byte alike?
# For speed work on router and smart_crusher, whose output must not change.
#
#   same_output.sh OLD_BUILD NEW_BUILD [ITERATIONS]
#
# Both are configured build trees (e.g. main's and a branch's) where
# `make && make bench-programs` ran. Compared:
#  1. bench/compress/plugin_outputs (NEW_BUILD's driver, each build's router
#     and smart_crusher .so): every fixture of t/fixtures/gen_fixtures.py,
#     pretty-printed and \u-escaped copies of them, t/fixtures/text, and the
#     crush and json_scan fuzz corpora, under six queries and two max_items;
#  2. every body bench_pipeline forwards (each build's own binary, the whole
#     default pipeline, `compress_threads` 1 and 2).
# Exit status 0 when everything is identical; the differing files are named.
set -eu
old=$(cd "$1" && pwd)
new=$(cd "$2" && pwd)
iters=${3:-10}
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d /tmp/same_output.XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM

python3 "$src/t/fixtures/gen_fixtures.py" --out "$tmp/fx" >/dev/null
mkdir "$tmp/variants"
python3 - "$tmp/fx" "$tmp/variants" <<'EOF'
import json, os, sys
src, dst = sys.argv[1], sys.argv[2]
for name in sorted(os.listdir(src)):
    if not name.endswith('.json') or name == 'manifest.json':
        continue
    data = json.load(open(os.path.join(src, name)))
    base = name[:-5]
    # whitespace everywhere (the crusher compacts first)
    open(os.path.join(dst, base + '.pretty.json'), 'w').write(json.dumps(data, indent=1))
    # exact duplicate rows, here and there
    if isinstance(data, list) and len(data) > 10:
        open(os.path.join(dst, base + '.dups.json'), 'w').write(json.dumps(data + data[::7] + data[3:5]))
    # escapes in keys and values: \u for every non-ASCII byte and every 'e', \/ for '/'
    esc = json.dumps(data, ensure_ascii=True).replace('e', '\\u0065').replace('/', '\\/')
    # (a 'e' inside true/false or an exponent would break the JSON: undo those)
    esc = esc.replace('tru\\u0065', 'true').replace('fals\\u0065', 'false')
    try:
        json.loads(esc)
    except ValueError:
        continue
    open(os.path.join(dst, base + '.escaped.json'), 'w').write(esc)
EOF

inputs() {
    ls "$tmp"/fx/*.json "$tmp"/variants/*.json "$src"/t/fixtures/text/*.txt \
        "$src"/t/fuzz/corpus/crush/* "$src"/t/fuzz/corpus/json_scan/*
}
fail=0
"$new/bench/compress/plugin_outputs" "$old/plugins/.libs" $(inputs) >"$tmp/old.txt"
"$new/bench/compress/plugin_outputs" "$new/plugins/.libs" $(inputs) >"$tmp/new.txt"
if cmp -s "$tmp/old.txt" "$tmp/new.txt"; then
    echo "plugin outputs: identical ($(grep -c '^== ' "$tmp/new.txt") cases, $(wc -c <"$tmp/new.txt") bytes)"
else
    echo "plugin outputs DIFFER:"
    diff "$tmp/old.txt" "$tmp/new.txt" | grep '^[<>] ==' | head -20 || true
    fail=1
fi

for t in 1 2; do
    for b in old new; do
        eval dir=\$$b
        mkdir -p "$tmp/dump-$b-$t"
        (cd "$dir" && HEADROOM_COMPRESS_THREADS=$t HEADROOM_BENCH_DUMP="$tmp/dump-$b-$t" \
            ./bench/pipeline/bench_pipeline "$src/conf/headroom.conf" "$tmp/fx" "$iters" >/dev/null 2>&1)
    done
    if diff -r "$tmp/dump-old-$t" "$tmp/dump-new-$t" >/dev/null; then
        echo "bench_pipeline bodies, compress_threads $t: identical ($(ls "$tmp/dump-new-$t" | wc -l) bodies)"
    else
        echo "bench_pipeline bodies, compress_threads $t DIFFER:"
        diff -rq "$tmp/dump-old-$t" "$tmp/dump-new-$t" | head -10 || true
        fail=1
    fi
done
exit $fail
