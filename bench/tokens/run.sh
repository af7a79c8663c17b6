#!/bin/sh
# bench/tokens/run.sh — builds the corpus and the C benchmark in a scratch dir and runs both the
# C counter and the reference. Usage: bench/tokens/run.sh [SCRATCH]  (reference needs node and
# `npm install tiktoken@1.0.22` in SCRATCH; it is skipped when missing).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
scratch=${1:-/tmp/headroom-bench-tokens}
mkdir -p "$scratch"
python3 "$here/make_corpus.py" "$scratch"
gcc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -DHR_SRCDATADIR="\"$top/data\"" \
    "$here/bench_tokens.c" "$top/src/tokens.c" "$top/src/tokenizer_bpe.c" \
    "$top/src/tokenizer_pretok.c" "$top/src/unicode_tables.c" -lpthread -o "$scratch/bench_tokens"
"$scratch/bench_tokens" "$scratch/mixed.txt" "$scratch/request.json"
"$scratch/bench_tokens" --threads 2 "$scratch/mixed.txt"
if [ -d "$scratch/node_modules/tiktoken" ]; then
    NODE_PATH="$scratch/node_modules" node "$here/bench_ref.mjs" "$scratch/mixed.txt" "$scratch/request.json"
else
    echo "reference skipped: run 'cd $scratch && npm install tiktoken@1.0.22'"
fi
