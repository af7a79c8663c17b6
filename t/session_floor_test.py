#!/usr/bin/env python3
# session_floor_test.py — a conversation's prompt-cached prefix stays
# byte-stable across turns: a tool output sent whole because it was recent
# (protect_recent) is not compressed on the next turn once the provider has
# reported caching it; without cache activity it is compressed as usual.
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403
import base64  # noqa: E402
import json  # noqa: E402

CONF = """
protected_tools read_file
protect_recent 1
transform smart_crusher { }
"""
ROWS_A = json.dumps([{"id": i, "path": "src/f%d.c" % i, "line": i * 7, "text": "int v%d = %d;" % (i, i)} for i in range(300)])
ROWS_B = json.dumps([{"id": i, "path": "lib/g%d.c" % i, "line": i * 3, "text": "long w%d = %d;" % (i, i)} for i in range(300)])


def turn(first_user, n_outputs):
    msgs = [{"role": "user", "content": first_user}]
    for k, rows in enumerate([ROWS_A, ROWS_B][:n_outputs]):
        msgs.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": "c%d" % k, "type": "function", "function": {"name": "read_file", "arguments": "{}"}}]})
        msgs.append({"role": "tool", "tool_call_id": "c%d" % k, "content": rows})
    return {"model": "gpt-4o", "messages": msgs}


def sent_tool_outputs(mock):
    body = json.loads(base64.b64decode(mock.requests()[-1]["body_b64"]))
    return [m["content"] for m in body["messages"] if m.get("role") == "tool"]


CACHED = {"x-mock-usage": json.dumps({"prompt_tokens_details": {"cached_tokens": 1024}})}
with Mock() as mock, Headroomd(extra_conf=CONF) as hd:
    # Session 1: the provider reports cache activity on turn 1.
    r = post_json(hd.url + "/v1/chat/completions", turn("read two files", 1), headers=CACHED)
    is_(r.status, 200, "turn 1 answered")
    is_(sent_tool_outputs(mock), [ROWS_A], "turn 1: the recent read_file output is sent whole (protect_recent)")
    r = post_json(hd.url + "/v1/chat/completions", turn("read two files", 2), headers=CACHED)
    out = sent_tool_outputs(mock)
    is_(out[0], ROWS_A, "turn 2: the output cached whole last turn is still sent whole (prefix stable)")
    is_(out[1], ROWS_B, "turn 2: the new recent output is protected too")

    # Session 2: same shape, no cache activity reported: the older output is compressed.
    post_json(hd.url + "/v1/chat/completions", turn("read two other files", 1))
    post_json(hd.url + "/v1/chat/completions", turn("read two other files", 2))
    out = sent_tool_outputs(mock)
    ok('"_headroom"' in out[0], "without provider caching, the no-longer-recent output is compressed")
    is_(out[1], ROWS_B, "and the recent one is sent whole")
done()
