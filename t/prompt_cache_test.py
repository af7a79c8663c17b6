#!/usr/bin/env python3
# prompt_cache_test.py — tool outputs are compressed in conversations that use
# Anthropic prompt caching the way Claude Code does (a cache_control
# breakpoint on the last message of every turn), and what the provider cached
# on one turn is sent byte for byte the same on the next:
# - a tool_result carrying cache_control (string content, or a text part) is
#   compressed and keeps its cache_control;
# - each output is crushed under the question asked before it, so a new user
#   prompt on a later turn does not change how earlier outputs come out (its
#   relevance query would otherwise change which rows are kept);
# - <system-reminder> blocks are not taken as the user's question;
# - with breakpoints in the conversation, every output of a protected tool is
#   sent whole (it was whole when it was recent, and the cache holds it so);
#   without them only the last protect_recent are, as before; a breakpoint
#   on a text part inside a tool_result's content counts too.
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403
import base64  # noqa: E402
import json  # noqa: E402

CONF = """
protected_tools Read
protect_recent 1
transform router { }
transform smart_crusher { }
"""
CC = {"type": "ephemeral"}
REMINDER = "<system-reminder>\nAs you answer the user's questions, you can use the following context: svc-342 svc-342\n</system-reminder>"


def rows(tag):
    return json.dumps([{"id": i, "service": "svc-%d" % i, "region": "eu-west-%d" % (i % 3), "status": "ok",
                        "owner": "team-%s" % tag, "note": "steady traffic, nothing to report"} for i in range(400)])


ROWS = rows("a")


def tool_use(i, name="list_services"):
    return {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_%d" % i, "name": name, "input": {}}]}


def tool_result(i, content, cache=False, part=False):
    block = {"type": "tool_result", "tool_use_id": "toolu_%d" % i}
    if part:
        block["content"] = [dict({"type": "text", "text": content}, **({"cache_control": CC} if cache else {}))]
    else:
        block["content"] = content
        if cache:
            block["cache_control"] = CC
    return {"role": "user", "content": [block]}


def body(messages):
    return {"model": "claude-sonnet-4-5", "max_tokens": 64,
            "system": [{"type": "text", "text": "You are a careful operator.", "cache_control": CC}],
            "messages": messages}


def sent(mock):
    return json.loads(base64.b64decode(mock.requests()[-1]["body_b64"]))


def results_of(b):
    return [blk for m in b["messages"] if m["role"] == "user" and isinstance(m["content"], list)
            for blk in m["content"] if blk.get("type") == "tool_result"]


def text_of(block):
    c = block["content"]
    return c if isinstance(c, str) else c[0]["text"]


def kept_services(text):
    return {r.get("service") for r in json.loads(text) if isinstance(r, dict)}


with Mock() as mock, Headroomd(extra_conf=CONF) as hd:
    url = hd.url + "/v1/messages"
    ask_a = {"role": "user", "content": [{"type": "text", "text": REMINDER},
                                         {"type": "text", "text": "why is svc-17 slow?"}]}
    ask_b = {"role": "user", "content": [{"type": "text", "text": "and what about svc-342?", "cache_control": CC}]}

    # Turn 1: Claude Code's shape, the breakpoint on the newest tool_result.
    turn1 = [ask_a, tool_use(1), tool_result(1, ROWS, cache=True)]
    r = post_json(url, body(turn1))
    is_(r.status, 200, "turn 1 answered")
    out1 = results_of(sent(mock))[0]
    cmp_ok(len(text_of(out1)), "<", len(ROWS) // 3, "a tool_result carrying cache_control is compressed")
    is_(out1.get("cache_control"), CC, "and keeps its cache_control")
    ok("svc-17" in kept_services(text_of(out1)), "the row the question names is kept")
    ok("svc-342" not in kept_services(text_of(out1)),
       "the <system-reminder> before the question is not taken as the question")
    st, stats = get_json(hd.url + "/stats")
    cmp_ok(stats["tokens"]["saved"], ">", 0, "/stats counts the saving")

    # The same output asked about with the second question comes out
    # differently: the question matters to the crush.
    post_json(url, body([ask_b, tool_use(1), tool_result(1, ROWS, cache=True)]))
    under_b = text_of(results_of(sent(mock))[0])
    ok("svc-342" in kept_services(under_b) and under_b != text_of(out1),
       "under another question the same output keeps other rows")

    # Turn 2: the client moves its breakpoint and asks something new. The
    # output cached on turn 1 must come out byte for byte as it did.
    turn1_resent = [ask_a, tool_use(1), tool_result(1, ROWS)]
    turn2 = turn1_resent + [{"role": "assistant", "content": [{"type": "text", "text": "It is not slow."}]},
                            ask_b, tool_use(2), tool_result(2, rows("b"), cache=True)]
    r = post_json(url, body(turn2))
    is_(r.status, 200, "turn 2 answered")
    out2 = results_of(sent(mock))
    is_(text_of(out2[0]), text_of(out1), "turn 2: the output cached on turn 1 is sent exactly as on turn 1")
    ok("svc-342" in kept_services(text_of(out2[1])), "turn 2: the new output is crushed under the new question")

    # A tool_result given as text parts, the part carrying the breakpoint.
    post_json(url, body([ask_a, tool_use(1), tool_result(1, ROWS, cache=True, part=True)]))
    part = results_of(sent(mock))[0]["content"][0]
    cmp_ok(len(part["text"]), "<", len(ROWS) // 3, "a text part carrying cache_control is compressed")
    is_(part.get("cache_control"), CC, "and keeps its cache_control")

    # Protected tools (Read): with breakpoints in the conversation every Read
    # output is sent whole; without them only the last protect_recent (1).
    reads = [ask_a]
    for i in range(3):
        reads += [tool_use(10 + i, "Read"), tool_result(10 + i, rows("r%d" % i))]
    cached_reads = reads[:-1] + [tool_result(12, rows("r2"), cache=True)]
    post_json(url, body(cached_reads))
    is_([text_of(b) for b in results_of(sent(mock))], [rows("r%d" % i) for i in range(3)],
        "with cache breakpoints, every Read output is sent whole")
    post_json(url, body(reads))
    out = [text_of(b) for b in results_of(sent(mock))]
    ok(len(out[0]) < len(rows("r0")) // 3 and len(out[1]) < len(rows("r1")) // 3 and out[2] == rows("r2"),
       "without breakpoints, the older Read outputs are compressed and the last one is whole")

# cache_aligner's report of a changed cached prefix, with long tool outputs
# in it (their hash is the host's unit hash): resending the conversation
# with one more turn changes nothing; editing an old tool output is a bust.
with Mock() as mock, Headroomd(extra_conf=CONF + "transform cache_aligner { }\n") as hd:
    url = hd.url + "/v1/messages"

    def changes():
        ca = get_json(hd.url + "/stats")[1].get("cache_aligner", {})
        return ca.get("prefix_changes"), ca.get("prefix_changes_by_part", {}).get("messages")

    ask = {"role": "user", "content": [{"type": "text", "text": "why is svc-17 slow?"}]}
    hist = [ask, tool_use(1), tool_result(1, ROWS), tool_use(2), tool_result(2, rows("b"))]
    hist[-1]["content"][0]["cache_control"] = CC
    hdrs = {"x-headroom-session": "aligner-units"}
    is_(post_json(url, body(hist), headers=hdrs).status, 200, "aligner turn 1 answered")
    more = [dict(m) for m in hist]
    more[-1] = tool_result(2, rows("b"))
    more += [tool_use(3), tool_result(3, rows("c"), cache=True)]
    post_json(url, body(more), headers=hdrs)
    is_(changes(), (0, 0), "the same long outputs resent with one more turn: no prefix change")
    edited = [dict(m) for m in more]
    edited[2] = tool_result(1, rows("a2"))
    post_json(url, body(edited), headers=hdrs)
    is_(changes(), (1, 1), "an earlier long tool output edited: one prefix change, in the messages")

# The breakpoint inside a tool_result's own content (a text part carrying
# cache_control, which the API accepts) is a breakpoint like the others. It
# was not seen: with protect_recent 1 the older Read outputs, whole while
# they were recent, were compressed (the cached prefix changed under the
# client), and cache_aligner tracked no prefix, so an edited old output was
# no prefix change.
with Mock() as mock, Headroomd(extra_conf=CONF + "transform cache_aligner { }\n") as hd:
    url = hd.url + "/v1/messages"
    reads = [ask_a]
    for i in range(3):
        reads += [tool_use(10 + i, "Read"), tool_result(10 + i, rows("r%d" % i))]
    part_cached = reads[:-1] + [tool_result(12, rows("r2"), cache=True, part=True)]
    is_(post_json(url, body(part_cached)).status, 200, "breakpoint in a tool_result's text part: answered")
    is_([text_of(b) for b in results_of(sent(mock))], [rows("r%d" % i) for i in range(3)],
        "with the breakpoint in a tool_result's text part, every Read output is sent whole")

    ask = {"role": "user", "content": [{"type": "text", "text": "why is svc-17 slow?"}]}
    hist = [ask, tool_use(1), tool_result(1, ROWS), tool_use(2), tool_result(2, rows("b"), cache=True, part=True)]
    hdrs = {"x-headroom-session": "aligner-parts"}
    is_(post_json(url, body(hist), headers=hdrs).status, 200, "aligner turn 1 (breakpoint in a text part) answered")
    edited = [dict(m) for m in hist]
    edited[2] = tool_result(1, rows("a2"))
    post_json(url, body(edited), headers=hdrs)
    ca = get_json(hd.url + "/stats")[1].get("cache_aligner", {})
    is_((ca.get("prefix_changes"), ca.get("prefix_changes_by_part", {}).get("messages")), (1, 1),
        "breakpoint in a text part: an earlier tool output edited is one prefix change, in the messages")
done()
