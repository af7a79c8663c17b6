#!/usr/bin/env python3
# large_body_test.py — a large agent request through headroomd with a
# compress helper (compress_threads 2), whose changed body is serialised by
# headroomd's own writer (src/json_dump.c). What the upstream receives must
# be the client's request with only the crushed output replaced, every other
# long string as sent, written as jansson's compact JSON.
import json
import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403

# Text a tool might print: quotes, backslashes, tabs, newlines, a control
# byte, "/", non-ASCII and an emoji, so the long strings carry every escape.
LINE = 'row %d: GET /v1/items/%d "ok" \\ took %d ms\tcaf\u00e9 \u2713 \U0001F600 \x1f end\n'


def log_text(tag, n):
    return tag + "".join(LINE % (i, i * 7, i % 97) for i in range(n))


def rows(n):
    return json.dumps([{"id": i, "status": "ok" if i % 50 else "error", "ms": i % 97, "path": "/api/items/%d" % i}
                       for i in range(n)])


def call(cid, name):
    return {"role": "assistant", "content": None,
            "tool_calls": [{"id": cid, "type": "function", "function": {"name": name, "arguments": "{}"}}]}


def request_body():
    return {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are a coding agent."},
            {"role": "user", "content": log_text("user log\n", 400)},            # a long string, not a unit
            call("c1", "run_query"),
            {"role": "tool", "tool_call_id": "c1", "content": rows(3000)},        # crushed
            call("c2", "read_file"),
            {"role": "tool", "tool_call_id": "c2", "content": log_text("file\n", 600)},  # protected: whole
            call("c3", "read_file"),
            {"role": "tool", "tool_call_id": "c3", "content": [{"type": "text", "text": log_text("part\n", 300)}]},
            {"role": "user", "content": "Why did the query fail?"},
        ],
        "temperature": 0.2,
    }


# A generous stage budget: under sanitizers or valgrind an undone stage would
# leave the body unchanged, which is not what is tested here.
CONF = """compress_threads 2
stage_budget_ms 60000
protected_tools read_file
transform router { }
transform smart_crusher { }
"""

with Mock() as m, Headroomd(mock=m, extra_conf=CONF) as h:
    body = request_body()
    sent = json.dumps(body).encode()
    ok(len(sent) > 300000, "the request is large (%d bytes)" % len(sent))
    m.reset()
    r = request("POST", h.url + "/v1/chat/completions", body=sent, headers={"Content-Type": "application/json"})
    is_(r.status, 200, "the large request is answered")
    fwd = m.last_request()["body"]
    got = json.loads(fwd)
    crushed = got["messages"][3]["content"]
    ok("_headroom" in crushed and len(crushed) < len(body["messages"][3]["content"]) // 4,
       "the 3000-row output was crushed (%d -> %d bytes)" % (len(body["messages"][3]["content"]), len(crushed)))
    got["messages"][3]["content"] = body["messages"][3]["content"]
    got_tools = got.pop("tools", None)
    ok(got_tools is None or all(t.get("function", {}).get("name") == "headroom_retrieve" for t in got_tools),
       "only the retrieve tool was added")
    is_(got, body, "every other message and member arrives as sent, long strings whole")
    ok(b", " not in fwd.replace(b'", "', b"").split(b'"messages"')[0] and fwd.startswith(b'{"model":"gpt-4o"'),
       "written as compact JSON, members in the client's order")
    ok(b"\\u001F" in fwd and "\U0001F600".encode() in fwd and b"\\/" not in fwd,
       "escaped as jansson writes: controls as upper-case \\u00XX, non-ASCII and '/' as they are")

    # Duplicate keys around long strings: refused, naming the key.
    text = log_text("dup\n", 400)
    dup = ('{"model":"gpt-4o","messages":[{"role":"user","content":%s,"content":%s}]}'
           % (json.dumps(text), json.dumps(text))).encode()
    r = request("POST", h.url + "/v1/chat/completions", body=dup, headers={"Content-Type": "application/json"})
    is_(r.status, 400, "a repeated key beside long strings is refused")
    ok("repeats a key" in r.body.decode() and "content" in r.body.decode(), "the 400 names the repeated key")

    # Bad JSON inside a long string: jansson's message with line and column.
    bad = sent.replace(b"file\\n", b"file\\q", 1)
    r = request("POST", h.url + "/v1/chat/completions", body=bad, headers={"Content-Type": "application/json"})
    is_(r.status, 400, "a bad escape inside a long string is refused")
    ok("invalid escape" in r.body.decode() and "column" in r.body.decode(), "with jansson's message and position")

    # The scan decodes escaped strings for the builder: bytes that are wrong
    # after hundreds of escapes, or a body cut inside an escaped string, get
    # jansson's message; and the next request is forwarded as the first was.
    cut = sent.index(b" took ", sent.index(b"file\\n") + 3000) + 5  # after a plain word, hundreds of escapes in
    for what, raw, msg in (("invalid UTF-8 after escapes", sent[:cut] + b"\xff" + sent[cut:], "unable to decode byte 0xff"),
                           ("a control byte after escapes", sent[:cut] + b"\x01" + sent[cut:], "control character 0x1"),
                           ("a body cut inside an escaped string", sent[:cut], "premature end of input")):
        r = request("POST", h.url + "/v1/chat/completions", body=raw, headers={"Content-Type": "application/json"})
        is_(r.status, 400, "%s: refused" % what)
        ok(re.search(r"not valid JSON: %s.*\(line 1, column \d+\)" % re.escape(msg), r.body.decode()),
           "%s: jansson's message, line and column (%s)" % (what, r.body.decode()[:160]))
    m.reset()
    r = request("POST", h.url + "/v1/chat/completions", body=sent, headers={"Content-Type": "application/json"})
    is_(r.status, 200, "the large request again is answered")
    is_(m.last_request()["body"], fwd, "and forwarded byte for byte as the first time")

done()
