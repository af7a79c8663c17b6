#!/usr/bin/env python3
"""bench/tokens/make_corpus.py — writes the benchmark inputs into OUTDIR: mixed.txt (~10 MB of
prose, code, logs, JSON, CJK/RTL text, emoji, built from t/tokens/corpus plus synthetic lines)
and request.json (~1 MB agent-style Chat Completions request with tool outputs). Deterministic."""
import json, os, random, sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
out = sys.argv[1] if len(sys.argv) > 1 else "."
rnd = random.Random(1234)
corpus = os.path.join(root, "t", "tokens", "corpus")
skip = {"long_words.txt", "mixed_random.txt", "base64_blob.txt", "whitespace_runs.txt"}
docs = [open(os.path.join(corpus, f), encoding="utf-8").read() for f in sorted(os.listdir(corpus)) if f not in skip]
words = open(os.path.join(corpus, "prose_en.txt"), encoding="utf-8").read().split()

def log_line(i):
    return (f"2024-11-25T19:{i // 3600 % 60:02d}:{i // 60 % 60:02d}.{i % 1000:03d}Z "
            f"{rnd.choice(['INFO', 'WARN', 'DEBUG', 'ERROR'])} [worker-{rnd.randrange(8)}] "
            f"req={rnd.getrandbits(32):08x} path=/v1/{rnd.choice(['chat', 'messages', 'embeddings'])} "
            f"status={rnd.choice([200, 200, 200, 429, 500])} ms={rnd.random() * 900:.1f}\n")

def prose():
    return " ".join(rnd.choice(words) for _ in range(rnd.randrange(20, 120))) + "\n\n"

parts, size, i = [], 0, 0
while size < 10 * 1000 * 1000:
    k = rnd.randrange(4)
    s = rnd.choice(docs) if k == 0 else log_line(i) if k == 1 else prose() if k == 2 else \
        json.dumps({"id": i, "name": rnd.choice(words), "score": rnd.random(), "tags": rnd.sample(words, 3)}) + "\n"
    parts.append(s)
    size += len(s.encode())
    i += 1
open(os.path.join(out, "mixed.txt"), "w", encoding="utf-8").write("".join(parts))

msgs = [{"role": "system", "content": "You are a coding agent. Use the tools to inspect the repository."}]
size = 0
while size < 1000 * 1000:
    call = f"call_{rnd.getrandbits(48):012x}"
    tool = rnd.choice(["read_file", "grep", "run_tests", "list_dir"])
    msgs.append({"role": "assistant", "content": None, "tool_calls": [{"id": call, "type": "function",
                 "function": {"name": tool, "arguments": json.dumps({"path": f"src/{rnd.choice(words)}.c"})}}]})
    body = rnd.choice(docs) if tool == "read_file" else "".join(log_line(j) for j in range(rnd.randrange(5, 60))) \
        if tool == "run_tests" else json.dumps([{"file": f"src/f{j}.c", "line": rnd.randrange(999), "text": prose()[:80]}
                                                 for j in range(rnd.randrange(3, 30))])
    msgs.append({"role": "tool", "tool_call_id": call, "content": body})
    size += len(body) + 200
msgs.append({"role": "user", "content": "Now fix the failing test."})
open(os.path.join(out, "request.json"), "w", encoding="utf-8").write(
    json.dumps({"model": "gpt-4o", "messages": msgs, "stream": True}, ensure_ascii=False))
