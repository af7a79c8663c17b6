#!/bin/sh
# t/fuzz/run.sh CORPUS-ROOT TARGET... — run each libFuzzer target (built by
# `make fuzz` in a --enable-fuzzing tree) for $FUZZ_SECONDS (default 20)
# seconds, two at a time, starting from its seed corpus
# (CORPUS-ROOT/<name without fuzz_>). New inputs go to a scratch corpus, never
# the source tree; a crash leaves its reproducer in fuzz-artifacts/<name>/
# and fails the run. Prints TAP.
root=$1; shift
secs=${FUZZ_SECONDS:-20}
jobs=${FUZZ_JOBS:-2}
art=${FUZZ_ARTIFACTS:-fuzz-artifacts}
mkdir -p "$art" || exit 1
scratch=$(mktemp -d) || exit 1
trap 'rm -rf "$scratch"' EXIT
echo "1..$#"

run_one() { # n target
    name=$(basename "$2"); seeds=$root/${name#fuzz_}
    mkdir -p "$scratch/$name" "$art/$name"
    "$2" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$art/$name/" "$scratch/$name" "$seeds" >"$art/$name/log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$art/$name/log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$art/$name/log" | tail -1)
    if [ $rc -eq 0 ]; then
        echo "ok $1 - $name: ${secs}s, ${execs:-?} runs, ${cov:-cov ?}, no crash" >"$scratch/$1.tap"
    else
        { echo "not ok $1 - $name crashed (exit $rc); reproducer in $art/$name/"
          grep -E 'ERROR|SUMMARY|Test unit written' "$art/$name/log" | head -5 | sed 's/^/# /'; } >"$scratch/$1.tap"
    fi
}

n=0; running=0
for t in "$@"; do
    n=$((n + 1))
    run_one "$n" "$t" &
    running=$((running + 1))
    if [ $running -ge "$jobs" ]; then wait; running=0; fi
done
wait
status=0
i=1
while [ $i -le $n ]; do
    cat "$scratch/$i.tap"
    grep -q '^not ok' "$scratch/$i.tap" && status=1
    i=$((i + 1))
done
exit $status
