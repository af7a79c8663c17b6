#!/bin/sh
# alerts_test.sh — conf/prometheus-alerts.yml: promtool accepts the rules, its
# unit tests (t/prometheus-alerts.test.yml) fire and stay quiet as expected,
# and every headroom_* metric the rules use is documented in doc/metrics.md.
src=${top_srcdir:-$(dirname "$0")/..}
rules=$src/conf/prometheus-alerts.yml
if ! command -v promtool >/dev/null 2>&1; then
    echo "1..0 # SKIP promtool not installed (scripts/deps.sh --test installs prometheus)"
    exit 0
fi
echo "1..3"
out=$(promtool check rules "$rules" 2>&1)
if [ $? -eq 0 ]; then echo "ok 1 - promtool check rules: $(echo "$out" | grep -o '[0-9]* rules found')"
else echo "not ok 1 - promtool check rules"; echo "$out" | sed 's/^/# /'; fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
cp "$rules" "$src/t/prometheus-alerts.test.yml" "$tmp/"
out=$(cd "$tmp" && promtool test rules prometheus-alerts.test.yml 2>&1)
if [ $? -eq 0 ]; then echo "ok 2 - promtool test rules: alerts fire and stay quiet as the cases expect"
else echo "not ok 2 - promtool test rules"; echo "$out" | sed 's/^/# /'; fi
missing=""
for m in $(grep -o 'headroom_[a-z_]*' "$rules" | sed 's/_bucket$//' | sort -u); do
    grep -q "\`$m\`" "$src/doc/metrics.md" || missing="$missing $m"
done
if [ -z "$missing" ]; then echo "ok 3 - every metric in the rules is in doc/metrics.md"
else echo "not ok 3 - metrics used by the rules but not documented:$missing"; fi
