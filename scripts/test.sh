#!/usr/bin/env bash
# Install dependencies, build from a clean tree with sanitizers and warnings
# as errors, run the whole test suite, print "N passed, M failed".
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/deps.sh --test || { echo "0 passed, 1 failed"; exit 1; }
autoreconf -fi >/dev/null 2>&1 || { echo "autoreconf failed"; echo "0 passed, 1 failed"; exit 1; }
build="$top/_build-test"
rm -rf "$build" && mkdir -p "$build" && cd "$build"
"$top/configure" --enable-werror --enable-sanitizers -q || { echo "0 passed, 1 failed"; exit 1; }
jobs=$(nproc 2>/dev/null || echo 2)
make -j"$jobs" >make.log 2>&1 || { tail -50 make.log; echo "0 passed, 1 failed"; exit 1; }
# LeakSanitizer reports at exit; the daemon's own leaks are checked by valgrind runs.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1
make -j"$jobs" check >check.log 2>&1
status=$?
grep -E '^(PASS|FAIL|XPASS|ERROR|SKIP)' check.log | sed 's/^/  /' | grep -v '^  PASS' | head -50
for f in $(grep -l -E '^(not ok|Bail out)' $(find t -name '*.log' 2>/dev/null) 2>/dev/null); do
    echo "---- $f"; grep -E -B2 -A12 '^(not ok|Bail out)' "$f" | head -60
done
pass=$(grep -hE '^ok ' $(find t -name '*.log') 2>/dev/null | wc -l)
fail=$(grep -hE '^not ok ' $(find t -name '*.log') 2>/dev/null | wc -l)
errors=$(grep -cE '^(ERROR|FAIL):' check.log)
[ "$status" -ne 0 ] && [ "$fail" -eq 0 ] && fail=$errors
[ "$status" -ne 0 ] && [ "$fail" -eq 0 ] && fail=1
echo "$pass passed, $fail failed"
[ "$status" -eq 0 ]
