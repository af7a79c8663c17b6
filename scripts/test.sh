#!/usr/bin/env bash
# Install dependencies, build from a clean tree with warnings as errors, run
# the whole test suite under ASan+UBSan, then the daemon integration tests
# again under valgrind; print "N passed, M failed".
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs=$(nproc 2>/dev/null || echo 2)
fail_early() { echo "$1"; echo "0 passed, 1 failed"; exit 1; }

scripts/deps.sh --test || fail_early "installing dependencies failed"
mkdir -p m4
autoreconf -fi >/dev/null 2>&1 || fail_early "autoreconf failed"

# build DIR CONFIGURE-FLAGS...: a fresh out-of-tree build
build() {
    local dir=$1; shift
    rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || return 1
    "$top/configure" -q "$@" || return 1
    make -j"$jobs" >make.log 2>&1 || { tail -50 make.log; return 1; }
    make -j"$jobs" bench-programs >>make.log 2>&1 || { tail -50 make.log; return 1; }
}

status=0
# 1. Everything, under AddressSanitizer + UndefinedBehaviorSanitizer.
san="$top/_build-test"
build "$san" --enable-werror --enable-sanitizers || fail_early "sanitizer build failed"
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
make -j"$jobs" check >check.log 2>&1 || status=1
unset ASAN_OPTIONS UBSAN_OPTIONS

# 2. The daemon under valgrind, through the integration tests.
vg="$top/_build-valgrind"
if command -v valgrind >/dev/null; then
    build "$vg" --enable-werror || fail_early "valgrind build failed"
    make -j"$jobs" check TESTS="t/proxy_test.py t/stream_test.py t/limits_test.py t/stats_test.py t/retrieve_test.py \
        t/disconnect_test.py t/backpressure_test.py t/client_timeout_test.py t/upstream_client_test.py \
        t/content_encoding_test.py t/ws_relay_test.py" \
        HEADROOMD_WRAPPER="$vg/libtool --mode=execute valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite" \
        HRTEST_READY_TIMEOUT=60 >check.log 2>&1 || status=1
fi

# 3. Every t/fuzz target as a libFuzzer binary (clang), each run for a
#    bounded time from its seed corpus (2 at a time), on top of the corpus
#    regressions in step 1. Reproducers of crashes: $fz/fuzz-artifacts/.
fz="$top/_build-fuzz"
if command -v clang >/dev/null; then
    rm -rf "$fz" && mkdir -p "$fz/t" && cd "$fz" || fail_early "cannot create $fz"
    if CC=clang "$top/configure" -q --enable-fuzzing && make -j"$jobs" fuzz >make.log 2>&1; then
        make fuzz-run FUZZ_SECONDS=15 >t/fuzz-run.log 2>&1 || status=1
        grep -E '^(ok|not ok)' t/fuzz-run.log
    else
        tail -50 make.log; echo "not ok - make fuzz (clang --enable-fuzzing) failed" >t/fuzz-run.log; status=1
    fi
fi

cd "$top"
for d in "$san" "$vg" "$fz"; do
    [ -f "$d/check.log" ] || continue
    grep -E '^(FAIL|XPASS|ERROR):' "$d/check.log" | sed "s|^|  ${d##*/}: |"
    for f in $(grep -l -E '^(not ok|Bail out)' $(find "$d/t" -name '*.log' 2>/dev/null) 2>/dev/null); do
        echo "---- $f"; grep -E -B2 -A12 '^(not ok|Bail out)' "$f" | head -60
    done
done
logs=$(find "$san/t" "$vg/t" "$fz/t" -name '*.log' 2>/dev/null)
pass=$(cat $logs 2>/dev/null | grep -cE '^ok ')
fail=$(cat $logs 2>/dev/null | grep -cE '^not ok ')
errors=$(cat "$san/check.log" "$vg/check.log" 2>/dev/null | grep -cE '^(ERROR|FAIL):')
[ "$fail" -lt "$errors" ] && fail=$errors
[ "$status" -ne 0 ] && [ "$fail" -eq 0 ] && fail=1
echo "$pass passed, $fail failed"
[ "$status" -eq 0 ]
