#!/usr/bin/env python3
# late_count_test.py — headroomd counts a request's total (the strings no
# stage looks at) after forwarding it, from the body as the client sent it.
# The figures must be those of a daemon that runs no stage at all, whatever
# the stages did to the body: tools reordered by cache_aligner, a tool output
# crushed by smart_crusher, the headroom_retrieve
# tool added after the stages, tool outputs too short to be candidates; a
# short passthrough (`optimize no`) body over a fresh, a pooled and a libcurl
# connection; and a passthrough stream over 32 KB, counted after its answer,
# by a compression helper while the upstream works or by the worker, and a
# client that leaves while such a count may be running.
import json
import os
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import Headroomd, Mock, cmp_ok, done, is_, ok, post_json, stream, wait_until  # noqa: E402

PLUGIN_DIR = os.environ.get("HEADROOM_TEST_PLUGIN_DIR")
BASE = ("host 127.0.0.1\nport @PORT@\nworkers 1\nopenai_api_url @MOCK_URL@\nanthropic_api_url @MOCK_URL@\n"
        + ("plugin_dir %s\n" % PLUGIN_DIR if PLUGIN_DIR else ""))
STAGES = ("transform router {\n}\ntransform cache_aligner {\n    add_cache_control yes\n}\n"
          "transform smart_crusher {\n}\n")

ROWS = json.dumps([{"id": i, "level": "ERROR" if i == 77 else "INFO", "msg": "request %d served in %d ms" % (i, i % 50)}
                   for i in range(300)])
# 600 bytes but ~10 tokens: counted before the stages (bytes >= min_tokens), no candidate.
LONG_WORDS = " ".join(["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"] * 10)
TOOLS = [  # not in name order, schema keys not sorted: cache_aligner edits both
    {"type": "function", "function": {"name": "zeta", "description": "last tool",
                                      "parameters": {"type": "object", "properties": {"b": {"type": "string"},
                                                                                      "a": {"type": "integer"}}}}},
    {"type": "function", "function": {"name": "alpha", "description": "first tool",
                                      "parameters": {"type": "object", "properties": {}}}},
]


def chat(tools, stream_it=False):
    calls = [{"id": "c%d" % i, "type": "function", "function": {"name": "alpha", "arguments": "{}"}} for i in range(3)]
    b = {"model": "gpt-4o", "messages": [
        {"role": "system", "content": "You are a careful agent. Today is 2026-12-05."},
        {"role": "user", "content": "Which request failed?"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "c0", "content": "ok"},
        {"role": "tool", "tool_call_id": "c1", "content": LONG_WORDS},
        {"role": "tool", "tool_call_id": "c2", "content": ROWS}]}
    if tools:
        b["tools"] = tools
    if stream_it:
        b["stream"] = True
        b["stream_options"] = {"include_usage": True}
    return b


def anthropic():
    return {"model": "claude-3-5-haiku-20241022", "max_tokens": 100, "system": "Be brief.",
            "tools": [{"name": "zeta", "input_schema": {"type": "object", "properties": {"y": {}, "x": {}}}},
                      {"name": "alpha", "input_schema": {"type": "object"}}],
            "messages": [{"role": "user", "content": "Look it up."},
                         {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "alpha", "input": {}},
                                                           {"type": "tool_use", "id": "t2", "name": "alpha", "input": {}}]},
                         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "done"},
                                                      {"type": "tool_result", "tool_use_id": "t2", "content": ROWS}]}]}


CASES = [
    ("chat, tools reordered by cache_aligner, not streamed (retrieve tool added)", "/v1/chat/completions",
     chat(TOOLS), False),
    ("chat, tools reordered, streamed", "/v1/chat/completions", chat(TOOLS, True), True),
    ("chat, tools already in order (no edit outside units), streamed", "/v1/chat/completions",
     chat(sorted(TOOLS, key=lambda t: t["function"]["name"]), True), True),
    ("chat, no tools, streamed", "/v1/chat/completions", chat(None, True), True),
    ("anthropic, system, tools and a cache breakpoint edited", "/v1/messages", anthropic(), False),
]


def figures(h, path, body, is_stream):
    hdrs = {"Authorization": "Bearer sk-t", "x-api-key": "k", "anthropic-version": "2023-06-01"}
    if is_stream:
        r = stream(h.url + path, body, headers=hdrs)
        text = r.body.decode() if isinstance(r.body, bytes) else r.body
        line = [x for x in text.splitlines() if x.startswith(": headroom tokens_before=")]
        if not line:
            return None
        kv = dict(p.split("=", 1) for p in line[-1][2:].split()[1:])
        return int(kv["tokens_before"]), int(kv["tokens_after"])
    r = post_json(h.url + path, body, headers=hdrs)
    if r.status != 200:
        return None
    return int(r.header("x-headroom-tokens-before")), int(r.header("x-headroom-tokens-after"))


def run(conf, label):
    out = []
    with Mock() as m, Headroomd(mock=m, conf_text=BASE + conf) as h:
        for name, path, body, is_stream in CASES:
            out.append(figures(h, path, body, is_stream))
        st = h.stats()
        out.append(st["tokens"]["input"])
    ok(all(x is not None for x in out), "%s: every request answered with its figures" % label)
    return out


reference = run("", "no stage")
with_stages = run(STAGES, "router, cache_aligner, smart_crusher")
for i, (name, _, _, _) in enumerate(CASES):
    ref, got = reference[i], with_stages[i]
    if not (ref and got):
        continue
    is_(ref[0], ref[1], "%s: no stage, nothing saved" % name)
    is_(got[0], ref[0], "%s: tokens before = a daemon without stages (%d)" % (name, ref[0]))
    cmp_ok(got[1], "<", got[0], "%s: the crushed output saved tokens (%d -> %d)" % (name, got[0], got[1]))
is_(with_stages[-1], reference[-1], "/stats tokens.input: the same total as without stages (%d)" % reference[-1])

# Passthrough (`optimize no`) counts a body after its answer. A streamed
# answer's closing comment still carries the count, the same as a daemon
# running no stage counts, also for a body over 32 KB, whose answer's last
# events are written before the count and only the comment and the end wait.
BIG = chat(None, True)
BIG["messages"][-1]["content"] = ROWS * 3
cmp_ok(len(json.dumps(BIG)), ">", 32 * 1024, "passthrough stream: the body is over 32 KB")
with Mock() as m, Headroomd(mock=m, conf_text=BASE) as h:
    want = figures(h, "/v1/chat/completions", BIG, True)
with Mock() as m, Headroomd(mock=m, conf_text=BASE + "optimize no\n") as h:
    r = stream(h.url + "/v1/chat/completions", BIG, headers={"Authorization": "Bearer sk-t"})
    text = r.body.decode() if isinstance(r.body, bytes) else r.body
    done_at, comment_at = text.find("data: [DONE]"), text.find(": headroom tokens_before=")
    ok(0 <= done_at < comment_at, "passthrough stream: [DONE], then the closing comment")
    got = figures(h, "/v1/chat/completions", BIG, True)
    is_(got, (want[0], want[0]) if want else None,
        "passthrough stream: the comment counts what a daemon without stages counts, nothing saved")
    ok(wait_until(lambda: h.stats()["tokens"]["input"] == 2 * want[0]) if want else False,
       "passthrough stream: /stats tokens.input has both requests' count")

# A short passthrough body is counted as soon as it has gone out: on a
# pooled connection within the forwarding itself; on a fresh connection, or
# through libcurl, where the request leaves from the event loop, after the
# answer (not before the request leaves). Every way, /stats and the closing
# comment hold what a daemon running no stage counts.
SHORT = chat(None, True)
cmp_ok(len(json.dumps(SHORT)), "<", 32 * 1024, "passthrough, short body: under 32 KB")
with Mock() as m, Headroomd(mock=m, conf_text=BASE) as h:
    short_want = figures(h, "/v1/chat/completions", SHORT, True)
for client in ("native", "curl"):
    with Mock() as m, Headroomd(mock=m, conf_text=BASE + "optimize no\nupstream_client %s\n" % client) as h:
        got = [figures(h, "/v1/chat/completions", SHORT, True) for _ in range(3)]
        is_(got, [(short_want[0], short_want[0])] * 3 if short_want else None,
            "passthrough, %s client, short body: the first request (a fresh connection) and the next two "
            "(pooled for the native client) count what a daemon without stages counts" % client)
        ok(wait_until(lambda: h.stats()["tokens"]["input"] == 3 * short_want[0]) if short_want else False,
           "passthrough, %s client: /stats tokens.input has the three counts" % client)

# The count is made by a compression helper while the upstream works
# (compress_threads 2; the upstream takes 300 ms, so it is done before the
# answer comes), or by the worker once the answer is written (compress_threads
# 1): the same figures either way.
SLOW = {"Authorization": "Bearer sk-t", "x-mock-delay-ms": "300"}
for threads in (1, 2):
    conf = BASE + "optimize no\ncompress_threads %d\n" % threads
    with Mock() as m, Headroomd(mock=m, conf_text=conf) as h:
        r = stream(h.url + "/v1/chat/completions", BIG, headers=SLOW)
        text = r.body.decode() if isinstance(r.body, bytes) else r.body
        line = [x for x in text.splitlines() if x.startswith(": headroom tokens_before=")]
        kv = dict(p.split("=", 1) for p in line[-1][2:].split()[1:]) if line else {}
        is_((int(kv.get("tokens_before", -1)), int(kv.get("tokens_after", -1))), (want[0], want[0]) if want else None,
            "compress_threads %d, upstream 300 ms: the comment counts what a daemon without stages counts" % threads)
        ok(wait_until(lambda: h.stats()["tokens"]["input"] == want[0]) if want else False,
           "compress_threads %d: /stats tokens.input is that count" % threads)

# Compressed requests over 32 KB: the rest of the count (what no stage
# looked at) is made by a helper while the upstream works, then joined
# before the answer's figures are written: the same tokens before as a
# daemon without stages, with one thread or two, streamed or not.
for threads in (1, 2):
    conf = BASE + STAGES + "compress_threads %d\n" % threads
    with Mock() as m, Headroomd(mock=m, conf_text=conf) as h:
        for is_stream in (False, True):
            body = dict(BIG, stream=is_stream)
            hdrs = dict(SLOW, **{"x-api-key": "k", "anthropic-version": "2023-06-01"})
            if is_stream:
                r = stream(h.url + "/v1/chat/completions", body, headers=hdrs)
                text = r.body.decode() if isinstance(r.body, bytes) else r.body
                line = [x for x in text.splitlines() if x.startswith(": headroom tokens_before=")]
                before = int(dict(p.split("=", 1) for p in line[-1][2:].split()[1:])["tokens_before"]) if line else -1
            else:
                r = post_json(h.url + "/v1/chat/completions", body, headers=hdrs)
                before = int(r.header("x-headroom-tokens-before") or -1) if r.status == 200 else -1
            is_(before, want[0] if want else None, "compressed, compress_threads %d, %s, upstream 300 ms: tokens before = "
                "a daemon without stages" % (threads, "streamed" if is_stream else "not streamed"))

# A client that leaves while its body is being counted: the count is waited
# for and dropped with the request, and the daemon goes on serving and
# counting (ASan builds check nothing is freed under the helper).
for kind, extra in (("passthrough", "optimize no\n"), ("compressed", STAGES)):
    with Mock() as m, Headroomd(mock=m, conf_text=BASE + extra + "compress_threads 2\n") as h:
        data = json.dumps(BIG).encode()
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", h.port), timeout=10)
            s.sendall(("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                       "Authorization: Bearer sk-t\r\nx-mock-delay-ms: 400\r\nContent-Length: %d\r\n\r\n"
                       % len(data)).encode() + data)
            time.sleep(0.05)
            s.close()
        got = figures(h, "/v1/chat/completions", BIG, True)
        is_(got[0] if got else None, want[0] if want else None,
            "%s, clients gone mid-count: the next stream is answered and counted" % kind)
        ok(h.alive(), "%s, clients gone mid-count: the daemon is still running" % kind)
done()
