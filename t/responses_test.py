#!/usr/bin/env python3
# responses_test.py — OpenAI's Responses API (POST /v1/responses) through
# headroomd against t/mock-upstream: function_call_output (and Codex's
# custom_tool_call_output) items compressed, in string and content-part form,
# and the shell tools' outputs (shell_call_output, local_shell_call_output),
# string input counted, stored conversations (previous_response_id) passed
# through byte for byte, other /v1/responses/... routes untouched, usage, cost
# and /stats from the Response object and from response.completed, the typed
# SSE events relayed in order, errors in OpenAI's shape, the headroom_retrieve
# tool in Responses shape and answered by headroomd (also with store false,
# where the re-sent items must not carry ids), /metrics.
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403
import json  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402

SRCDIR = os.environ.get("top_srcdir") or os.path.join(T_DIR, "..")
PRICES_PATH = os.path.abspath(os.path.join(SRCDIR, "conf", "prices.json"))
PRICES = json.load(open(PRICES_PATH))["models"]

CONF = """prices %s
transform router { }
transform cache_aligner { }
transform smart_crusher { }
sink prometheus { path /metrics; }
""" % PRICES_PATH

RS = "/v1/responses"
MARKER = "_headroom"
COMMENT_RE = re.compile(rb": headroom tokens_before=(\d+) tokens_after=(\d+) tokens_saved=(\d+) "
                        rb"cost_usd=(\d+\.\d{6}) savings_usd=(\d+\.\d{6})\n\n\Z")
STREAM_EVENTS = ["response.created", "response.in_progress", "response.output_item.added",
                 "response.content_part.added"]
STREAM_DONE = ["response.output_text.done", "response.content_part.done", "response.output_item.done",
               "response.completed"]


# --------------------------------------------------------------------------
# a compressible tool output: 300 log rows, 5 of them errors
# --------------------------------------------------------------------------

def log_rows(n=300):
    rng = random.Random(20250301)
    services = ["api-gateway", "payment-service", "auth-service", "search-indexer"]
    errors = {41, 97, 150, 203, 266}
    rows = []
    for i in range(n):
        row = {"ts": "2025-03-01T10:%02d:%02d.%03dZ" % (i // 60, i % 60, rng.randint(0, 999)),
               "level": rng.choice(["info"] * 8 + ["debug", "warn"]),
               "service": rng.choice(services),
               "msg": "%s /v1/%s completed" % (rng.choice(["GET", "POST"]), rng.choice(["orders", "users", "carts"])),
               "duration_ms": rng.randint(20, 80),
               "request_id": "req-%08x" % rng.getrandbits(32)}
        if i in errors:
            row["level"] = "error"
            row["msg"] = "payment capture for order %d failed: upstream timeout" % rng.randint(10000, 99999)
        rows.append(row)
    return rows


ROWS = log_rows()
ROWS_TEXT = json.dumps(ROWS)
ERROR_ROWS = [r for r in ROWS if r["level"] == "error"]


def agent_input(output):
    """A Codex-style turn: the user asks, the model called search_logs, here is its output."""
    return [{"role": "user", "content": [{"type": "input_text", "text": "Which payment requests failed?"}]},
            {"type": "function_call", "call_id": "call_1", "name": "search_logs",
             "arguments": "{\"query\":\"payment\",\"limit\":300}"},
            {"type": "function_call_output", "call_id": "call_1", "output": output}]


def agent_body(output=None, **extra):
    b = {"model": "gpt-4o", "input": agent_input(ROWS_TEXT if output is None else output)}
    b.update(extra)
    return b


# --------------------------------------------------------------------------
# helpers that never raise: until the daemon speaks the Responses API the
# checks fail one by one instead of killing the test file
# --------------------------------------------------------------------------

def jload(data):
    try:
        return json.loads(data)
    except (ValueError, TypeError):
        return None


def hint(r, name):
    v = r.header(name)
    return int(v) if v is not None and v.isdigit() else None


def upstream(mock, n=1):
    """The bodies (parsed) of the last n requests the mock received."""
    reqs = mock.requests()[-n:] if n else []
    return [jload(r["body"]) for r in reqs]


def item_output(body, i=2):
    try:
        return body["input"][i]["output"]
    except (KeyError, IndexError, TypeError):
        return None


def rows_of(text):
    """(marker or None, data rows) of a (possibly compressed) JSON array text."""
    arr = jload(text)
    if not isinstance(arr, list):
        return None, None
    if arr and isinstance(arr[0], dict) and MARKER in arr[0]:
        return arr[0][MARKER], arr[1:]
    return None, arr


def reply_text(obj):
    """Concatenated output_text of a Response object (what the SDKs call output_text)."""
    out = []
    for item in (obj or {}).get("output") or []:
        if isinstance(item, dict) and item.get("type") == "message":
            for c in item.get("content") or []:
                if isinstance(c, dict) and c.get("type") == "output_text":
                    out.append(c.get("text", ""))
    return "".join(out)


def cost(model, inp=0, out=0, read=0):
    p = PRICES[model]
    return (inp * p["input"] + read * p["cache_read"] + out * p["output"]) / 1e6


def metric(text, name, **labels):
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$", line)
        if m and m.group(1) == name and ",".join(sorted((m.group(2) or "").split(","))) == (want if labels else ""):
            return float(m.group(3))
    return 0.0 if name.startswith("headroom_requests_by_") else None


def dig(obj, *path, default=0):
    for k in path:
        if not isinstance(obj, dict) or k not in obj:
            return default
        obj = obj[k]
    return obj


def canon(tools):
    """Tools as an order-free list (cache_aligner may sort them by name)."""
    return sorted(tools or [], key=lambda t: json.dumps(t, sort_keys=True)) if isinstance(tools, list) else tools


def check_retrieve_tool(tools, what):
    """The headroom_retrieve definition in Responses shape (flat, no "function" wrapper)."""
    hr = [t for t in tools or [] if isinstance(t, dict) and t.get("name") == "headroom_retrieve"]
    is_(len(hr), 1, what + ": headroom_retrieve offered once, by name at the top level")
    t = hr[0] if hr else {}
    is_((t.get("type"), "function" in t), ("function", False),
        what + ": Responses tool shape {type:function,name,...}, not Chat's {function:{...}}")
    ok(isinstance(t.get("description"), str) and t.get("description"), what + ": it has a description")
    params = t.get("parameters") or {}
    is_((params.get("type"), "hash" in (params.get("properties") or {}), params.get("required")),
        ("object", True, ["hash"]), what + ": parameters is a JSON schema with a required hash")
    # Omitted, the Responses API makes a function strict when its schema
    # allows: `query` would become required and every call get only the
    # rows matching one, never the whole original.
    ok(t.get("strict") is False, what + ": strict false said outright (the API's default for Responses is strict)")


with Mock() as mock, Headroomd(mock=mock, extra_conf=CONF) as hd:
    # --- control: the same tool output is compressible (Chat Completions) --
    chat = {"model": "gpt-4o", "messages": [
        {"role": "user", "content": "Which payment requests failed?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "search_logs", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": ROWS_TEXT}]}
    r = post_json(hd.url + "/v1/chat/completions", chat)
    sent = upstream(mock)[0] or {}
    ctl = dig(sent, "messages", default=[{}] * 3)[2].get("content", "")
    ok(r.status == 200 and len(ctl) < len(ROWS_TEXT) / 2,
       "control: the 300-row output is compressed on /v1/chat/completions (%d -> %d chars)"
       % (len(ROWS_TEXT), len(ctl)))

    # --- function_call_output with a string output ------------------------
    mock.reset()
    req = agent_body()
    r = post_json(hd.url + RS, req)
    is_(r.status, 200, "Responses request with a 300-row function_call_output answered")
    before, after = hint(r, "x-headroom-tokens-before"), hint(r, "x-headroom-tokens-after")
    cmp_ok(before, ">", after or 0, "x-headroom-tokens-before > x-headroom-tokens-after (%s -> %s)" % (before, after))
    is_(hint(r, "x-headroom-tokens-saved"), (before or 0) - (after or 0), "x-headroom-tokens-saved = before - after")
    first_sent = sent = upstream(mock)[0] or {}
    out = item_output(sent)
    ok(isinstance(out, str), "upstream: the function_call_output's output is still a string")
    out = out if isinstance(out, str) else ""
    cmp_ok(len(out) if out else None, "<", len(ROWS_TEXT) * 0.4, "upstream: output much shorter (%d -> %d chars)"
           % (len(ROWS_TEXT), len(out)))
    marker, kept = rows_of(out)
    ok(kept is not None, "upstream: output is still a valid JSON array")
    ok(marker is not None and marker_hash(marker.get("all_rows")), "upstream: compression marker with a retrieve hash")
    ok(kept is not None and all(e in kept for e in ERROR_ROWS), "upstream: all %d error rows kept" % len(ERROR_ROWS))
    if marker:
        is_(marker.get("total"), len(ROWS), "marker says %d rows were there" % len(ROWS))
        is_(marker.get("omitted", 0) + len(kept or []), len(ROWS), "kept + omitted = total")
    else:
        skip("no marker", 2)
    is_(dig(sent, "input", default=[None] * 3)[:2], req["input"][:2],
        "upstream: the user message and the function_call item unchanged")
    is_({k: v for k, v in sent.items() if k not in ("input", "tools")}, {"model": "gpt-4o"},
        "upstream: no other top-level field added or changed")
    reply = r.json() or {}
    is_(reply.get("object"), "response", "client gets the Response object")
    like(reply_text(reply), r"^mock reply to 3 items; tool result of %d bytes$" % len(out),
         "the model saw the compressed output")
    # Chat Completions offers the tool when rows were dropped; so must Responses.
    check_retrieve_tool(sent.get("tools"), "upstream")
    ok("headroom_retrieve" not in json.dumps(reply.get("output")), "client: no headroom_retrieve in the output")
    is_(reply.get("tools"), [], "client: the Response's echoed `tools` are the client's (none), not headroomd's")

    # identical requests give identical upstream bodies (prompt caching)
    mock.reset()
    post_json(hd.url + RS, req)
    post_json(hd.url + RS, req)
    a, b = upstream(mock, 2)
    ok(a is not None and a == b and item_output(a) == out, "the same request twice: identical upstream bodies")

    # the client's own tools stay, headroom_retrieve is appended after them
    mock.reset()
    client_tools = [{"type": "function", "name": "search_logs", "description": "search the logs",
                     "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
                     "strict": False},
                    {"type": "web_search"}]
    r = post_json(hd.url + RS, agent_body(tools=client_tools, tool_choice="auto"))
    sent = upstream(mock)[0] or {}
    tools = sent.get("tools") or []
    is_(canon(tools[:2]), canon(client_tools), "client's function and built-in tools forwarded unchanged, first")
    is_([t.get("name") for t in tools[2:]], ["headroom_retrieve"], "headroom_retrieve appended after them")
    is_(canon((r.json() or {}).get("tools")), canon(client_tools),
        "client: the echoed `tools` are exactly the ones it sent")

    # --- output in content-part form ---------------------------------------
    mock.reset()
    req = agent_body(output=[{"type": "input_text", "text": ROWS_TEXT}])
    r = post_json(hd.url + RS, req)
    is_(r.status, 200, "content-part output: answered")
    before, after = hint(r, "x-headroom-tokens-before"), hint(r, "x-headroom-tokens-after")
    cmp_ok(before, ">", after or 0, "content-part output: tokens-before > tokens-after (%s -> %s)" % (before, after))
    parts = item_output(upstream(mock)[0])
    ok(isinstance(parts, list) and len(parts) == 1 and isinstance(parts[0], dict)
       and parts[0].get("type") == "input_text", "content-part output: still one input_text part upstream")
    text = parts[0].get("text", "") if parts and isinstance(parts[0], dict) else ""
    cmp_ok(len(text) if text else None, "<", len(ROWS_TEXT) * 0.4,
           "content-part output: text much shorter (%d chars)" % len(text))
    marker, kept = rows_of(text)
    ok(kept is not None and all(e in kept for e in ERROR_ROWS), "content-part output: valid JSON, error rows kept")

    # --- input as a plain string -------------------------------------------
    mock.reset()
    raw = dumps({"model": "gpt-4o", "input": "Write a haiku about log files.", "instructions": "Be brief."})
    r = request("POST", hd.url + RS, body=raw, headers={"Content-Type": "application/json"})
    is_(r.status, 200, "string input: answered")
    is_(reply_text(r.json()), "mock reply to 1 items", "string input: the model's answer relayed")
    cmp_ok(hint(r, "x-headroom-tokens-before"), ">", 0, "string input: counted (x-headroom-tokens-before > 0)")
    is_(hint(r, "x-headroom-tokens-saved"), 0, "string input: nothing saved")
    is_((mock.last_request() or {}).get("body"), raw, "string input: forwarded byte for byte")

    # --- a stored conversation continued with previous_response_id ---------
    mock.reset()
    raw = (b'{"model": "gpt-4o", "previous_response_id": "resp_68af4030592c81938ec0a5fbab4a3e9f",\n'
           b' "store": true, "input": [{"role": "user", "content": "And which ones timed out? \\u2014 thanks"}]}')
    r = request("POST", hd.url + RS, body=raw, headers={"Content-Type": "application/json"})
    is_(r.status, 200, "previous_response_id: answered")
    is_((mock.last_request() or {}).get("body"), raw, "previous_response_id + store: forwarded byte for byte")
    j = r.json() or {}
    is_((j.get("previous_response_id"), j.get("store")), ("resp_68af4030592c81938ec0a5fbab4a3e9f", True),
        "previous_response_id: the Response echoes it")
    cmp_ok(hint(r, "x-headroom-tokens-before"), ">", 0, "previous_response_id: the new input counted")
    ok("tools" not in (jload((mock.last_request() or {}).get("body")) or {}), "nothing to compress: no tool offered")

    # the documented function-calling follow-up with a stored response: input
    # is only the function_call_output, its function_call is upstream's
    mock.reset()
    req = {"model": "gpt-4o", "previous_response_id": "resp_68af4030592c81938ec0a5fbab4a3e9f",
           "input": [{"type": "function_call_output", "call_id": "call_9", "output": ROWS_TEXT}]}
    r = post_json(hd.url + RS, req)
    sent = upstream(mock)[0] or {}
    is_(r.status, 200, "output of a stored call: answered")
    cmp_ok(len(item_output(sent, 0) or ROWS_TEXT), "<", len(ROWS_TEXT) * 0.4,
           "output of a stored call (function_call not in input): compressed too")
    is_((sent.get("previous_response_id"), dig(sent, "input", default=[{}])[0].get("call_id")),
        (req["previous_response_id"], "call_9"), "output of a stored call: previous_response_id and call_id kept")

    # a Codex-style turn: store false, encrypted reasoning, a freeform
    # (custom) tool, streamed; only the tool outputs may change
    mock.reset()
    codex = {"model": "gpt-5-codex", "instructions": "You are a coding agent.", "store": False, "stream": True,
             "include": ["reasoning.encrypted_content"], "reasoning": {"effort": "medium", "summary": "auto"},
             "tool_choice": "auto", "parallel_tool_calls": False, "prompt_cache_key": "0199a0c1-conv",
             "tools": [{"type": "function", "name": "shell", "description": "run a command", "strict": False,
                        "parameters": {"type": "object", "properties": {"command": {"type": "array",
                                                                                    "items": {"type": "string"}}}}},
                       {"type": "custom", "name": "apply_patch", "description": "apply a patch",
                        "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}}],
             "input": [{"type": "message", "role": "user",
                        "content": [{"type": "input_text", "text": "Find the failed payments"}]},
                       # store false: items go without ids (the API would 404 on them)
                       {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Check the logs."}],
                        "encrypted_content": "gAAAAABo" + "Zm9vYmFy" * 40},
                       {"type": "function_call", "call_id": "call_a", "name": "shell",
                        "arguments": "{\"command\":[\"cat\",\"logs.json\"]}"},
                       {"type": "function_call_output", "call_id": "call_a", "output": ROWS_TEXT},
                       {"type": "custom_tool_call", "call_id": "call_b", "name": "apply_patch",
                        "input": "*** Begin Patch\n*** End Patch\n"},
                       {"type": "custom_tool_call_output", "call_id": "call_b", "output": ROWS_TEXT}]}
    s = stream(hd.url + RS, codex)
    sent = upstream(mock)[0] or {}
    is_((s.status, [n for n, _ in sse_events(s.body)][-1:]), (200, ["response.completed"]),
        "codex-style stream: answered, ends with response.completed")
    cmp_ok(len(item_output(sent, 3) or ROWS_TEXT), "<", len(ROWS_TEXT) * 0.4, "codex-style: function_call_output compressed")
    cmp_ok(len(item_output(sent, 5) or ROWS_TEXT), "<", len(ROWS_TEXT) * 0.4,
           "codex-style: custom_tool_call_output compressed")
    same = dict(codex, input=[it for i, it in enumerate(codex["input"]) if i not in (3, 5)])
    same["tools"] = canon(same["tools"])
    got = dict(sent, input=[it for i, it in enumerate(sent.get("input") or []) if i not in (3, 5)],
               tools=canon(sent.get("tools")))
    is_(got, same, "codex-style: everything else (reasoning item, instructions, tools, store...) unchanged")

    # other /v1/responses/... routes are the API's too, but not a create: untouched
    mock.reset()
    raw = dumps({"model": "gpt-4o", "input": agent_input(ROWS_TEXT)})
    r = request("POST", hd.url + RS + "/input_tokens", body=raw, headers={"Content-Type": "application/json"})
    is_((r.status, (mock.last_request() or {}).get("body")), (200, raw),
        "POST /v1/responses/input_tokens: passed through byte for byte")
    r = request("GET", hd.url + RS + "/resp_123?include=message.output_text.logprobs")
    is_(r.json(), {"path": "/v1/responses/resp_123", "method": "GET", "query": "include=message.output_text.logprobs"},
        "GET /v1/responses/{id}: passed through")
    r = request("POST", hd.url + RS + "/resp_123/cancel", body=b"")
    is_((r.status, (mock.last_request() or {}).get("path")), (200, "/v1/responses/resp_123/cancel"),
        "POST /v1/responses/{id}/cancel: passed through")

    # --- usage, cost, /stats (JSON answer) ---------------------------------
    mock.reset()
    st0 = hd.stats()
    body = {"model": "gpt-4o", "input": [{"role": "user", "content": "What is the capital of France?"}]}
    r = post_json(hd.url + RS, body, headers={"x-mock-usage": json.dumps(
        {"input_tokens_details": {"cached_tokens": 7}, "output_tokens_details": {"reasoning_tokens": 5}})})
    u = (r.json() or {}).get("usage") or {}
    is_((r.status, dig(u, "input_tokens_details", "cached_tokens"), dig(u, "output_tokens_details", "reasoning_tokens")),
        (200, 7, 5), "usage: the client gets the upstream's usage")
    st1 = wait_until(lambda: (lambda s: s if dig(s, "requests", "total") > dig(st0, "requests", "total") else None)(
        hd.stats()), timeout=3) or hd.stats()
    is_(dig(st1, "requests", "by_provider", "openai") - dig(st0, "requests", "by_provider", "openai"), 1,
        "/stats: counted under the openai provider")
    is_(dig(st1, "requests", "by_model", "gpt-4o") - dig(st0, "requests", "by_model", "gpt-4o"), 1,
        "/stats: counted under its model")
    is_(dig(st1, "tokens", "input") - dig(st0, "tokens", "input"), hint(r, "x-headroom-tokens-before"),
        "/stats: tokens.input grew by x-headroom-tokens-before")
    is_(dig(st1, "tokens", "output") - dig(st0, "tokens", "output"), u.get("output_tokens"),
        "/stats: tokens.output grew by usage.output_tokens")
    is_(dig(st1, "prefix_cache", "by_provider", "openai", "cache_read_tokens")
        - dig(st0, "prefix_cache", "by_provider", "openai", "cache_read_tokens"), 7,
        "/stats: input_tokens_details.cached_tokens counted as cache reads")
    c_json = cost("gpt-4o", inp=u.get("input_tokens", 0) - 7, read=7, out=u.get("output_tokens", 0))
    cost_hdr = r.header("x-headroom-cost-usd")
    ok(cost_hdr is not None and float(cost_hdr) > 0, "x-headroom-cost-usd present and > 0 (%s)" % cost_hdr)
    is_(cost_hdr, "%.6f" % c_json, "cost = uncached input + 7 cached + output at gpt-4o prices")
    cmp_ok(dig(st1, "cost", "total_cost_usd") - dig(st0, "cost", "total_cost_usd"), ">", 0, "/stats: cost counted")

    # --- streaming ------------------------------------------------------------
    sbody = {"model": "gpt-4o", "stream": True, "input": [{"role": "user", "content": "Count to three."}]}
    shdr = {"x-mock-chunks": "3", "x-mock-usage": json.dumps({"input_tokens_details": {"cached_tokens": 3}})}
    direct = stream(mock.url + RS, sbody, headers=shdr)
    st0 = hd.stats()
    via = stream(hd.url + RS, sbody, headers=shdr)
    is_(via.status, 200, "stream: 200")
    ok(via.complete and via.error is None, "stream: ended cleanly")
    like(via.header("content-type", ""), r"^text/event-stream", "stream: content-type relayed")
    names = [n for n, _ in sse_events(via.body)]
    is_(names, STREAM_EVENTS + ["response.output_text.delta"] * 3 + STREAM_DONE,
        "stream: every event relayed, in order, with its event: name")
    is_(names, [n for n, _ in sse_events(direct.body)], "stream: the same event types as the mock sent")
    datas = sse_data_json(via.body)
    is_([d.get("sequence_number") for d in datas], list(range(len(datas))), "stream: sequence_numbers intact")
    ok(b"[DONE]" not in via.body, "stream: no [DONE] added (the Responses API has none)")
    mt = COMMENT_RE.search(via.body)
    ok(mt is not None, "stream: ends with the `: headroom tokens_before=... cost_usd=...` comment")
    is_(via.body[:mt.start()] if mt else None, direct.body, "stream: the bytes before the comment are the upstream's")
    fin = dig(datas[-1] if datas else {}, "response", "usage", default={})
    c_stream = cost("gpt-4o", inp=fin.get("input_tokens", 0) - 3, read=3, out=fin.get("output_tokens", 0))
    if mt:
        cmp_ok(int(mt.group(1)), ">", 0, "stream comment: tokens_before counted")
        is_(mt.group(4).decode(), "%.6f" % c_stream, "stream comment: cost_usd from response.completed's usage")
    else:
        skip("no comment", 2)
    st1 = wait_until(lambda: (lambda s: s if dig(s, "tokens", "output") > dig(st0, "tokens", "output") else None)(
        hd.stats()), timeout=3) or hd.stats()
    is_(dig(st1, "tokens", "output") - dig(st0, "tokens", "output"), fin.get("output_tokens"),
        "/stats: output tokens from response.completed")
    is_(dig(st1, "prefix_cache", "by_provider", "openai", "cache_read_tokens")
        - dig(st0, "prefix_cache", "by_provider", "openai", "cache_read_tokens"), 3,
        "/stats: cached tokens from response.completed")
    is_(dig(st1, "requests", "by_model", "gpt-4o") - dig(st0, "requests", "by_model", "gpt-4o"), 1,
        "/stats: the stream counted under its model")

    # a streamed request is compressed too, but not offered the tool (headroomd
    # cannot answer a call inside a stream)
    mock.reset()
    s = stream(hd.url + RS, agent_body(stream=True))
    sent = upstream(mock)[0] or {}
    is_(s.status, 200, "streamed agent request answered")
    cmp_ok(len(item_output(sent) or ROWS_TEXT), "<", len(ROWS_TEXT) * 0.4, "streamed agent request compressed")
    ok("tools" not in sent, "no headroom_retrieve tool on a streamed request")

    # --- errors ---------------------------------------------------------------
    h429 = {"x-mock-status": "429"}
    via = request("POST", hd.url + RS, body=dumps(body), headers=h429)
    direct = request("POST", mock.url + RS, body=dumps(body), headers=h429)
    is_((via.status, via.body), (429, direct.body), "upstream 429: status and OpenAI error body relayed unchanged")
    is_(via.header("retry-after"), "1", "upstream 429: retry-after relayed")
    mock.reset()
    for bad in (b'{"model": "gpt-4o", "input": [', b"[1,2]"):
        r = request("POST", hd.url + RS, body=bad, headers={"Content-Type": "application/json"})
        e = (r.json() or {}).get("error")
        is_(r.status, 400, "invalid body %r: 400" % bad)
        ok(isinstance(e, dict) and sorted(e) == ["code", "message", "param", "type"]
           and isinstance(e["message"], str) and e["message"] and e["type"] == "invalid_request_error",
           "invalid body %r: OpenAI's error shape {error:{message,type,param,code}}" % bad)
        like(r.header("content-type", ""), "application/json", "invalid body %r: a JSON error" % bad)
    is_(mock.requests(), [], "invalid bodies never reach the upstream")
    r = stream(hd.url + RS, sbody, headers={"x-mock-stream-error": "server_error"})
    evs = sse_events(COMMENT_RE.sub(b"", r.body))
    lastj = jload(evs[-1][1]) if evs else None
    ok(evs and evs[-1][0] == "error" and (lastj or {}).get("code") == "server_error",
       "upstream error event inside a stream relayed as is")
    r = stream(hd.url + RS, sbody, headers={"x-mock-reset": "mid-body", "x-mock-chunks": "8"}, timeout=10)
    ok(r.status == 200 and r.complete, "upstream reset mid-stream: the client's stream ends (no hang)")
    evs = sse_events(r.body)
    lastj = jload(evs[-1][1]) if evs else None
    ok(evs and evs[-1][0] == "error" and isinstance(lastj, dict) and lastj.get("type") == "error"
       and isinstance(lastj.get("message"), str),
       "upstream reset mid-stream: ends with the Responses error event {type:error,message,...}")

    # --- headroom_retrieve: the model calls it, headroomd answers -----------
    h = marker_hash((rows_of(item_output(first_sent) or "")[0] or {}).get("all_rows")) or ""
    mock.reset()
    hdr = {"x-mock-tool-call": "headroom_retrieve", "x-mock-tool-args": json.dumps({"hash": h})}
    r = post_json(hd.url + RS, agent_body(), headers=hdr)
    is_(r.status, 200, "retrieve: answer after a headroom_retrieve call")
    reply = r.json() or {}
    like(reply_text(reply), r"^mock reply to 5 items; tool result of %d bytes$" % len(ROWS_TEXT),
         "retrieve: the model got the full original back (%d bytes)" % len(ROWS_TEXT))
    is_([o.get("type") for o in reply.get("output") or []], ["message"], "retrieve: the client sees only the answer")
    ok("headroom_retrieve" not in json.dumps(reply), "retrieve: the client never sees headroom_retrieve")
    rounds = [jload(x["body"]) for x in mock.requests()]
    is_(len(rounds), 2, "retrieve: two upstream rounds")
    if len(rounds) == 2 and rounds[1]:
        items = rounds[1].get("input") or []
        call = items[3] if len(items) == 5 else {}
        res = items[4] if len(items) == 5 else {}
        is_((call.get("type"), call.get("name"), jload(call.get("arguments"))),
            ("function_call", "headroom_retrieve", {"hash": h}), "retrieve: the model's function_call item appended")
        is_((res.get("type"), res.get("call_id")), ("function_call_output", call.get("call_id")),
            "retrieve: then a function_call_output answering that call_id")
        is_(res.get("output"), ROWS_TEXT, "retrieve: whose output is the stored original")
        is_(items[:3], (rounds[0] or {}).get("input"), "retrieve: the earlier items resent as they were")
        check_retrieve_tool(rounds[1].get("tools"), "retrieve, second round")
    else:
        skip("no second round", 8)
    is_(hint(r, "x-headroom-tokens-saved"), 0, "retrieve: saving given back (saved reported as 0, never negative)")

    # the same with store false and a reasoning model: the answer's items
    # (reasoning rs_..., function_call fc_...) were never stored, so the
    # re-sent input must not refer to them by id (the API answers 404)
    mock.reset()
    r = post_json(hd.url + RS, agent_body(store=False, reasoning={"effort": "low"},
                                          include=["reasoning.encrypted_content"]), headers=hdr)
    is_(r.status, 200, "retrieve, store false: answered (%s)" % (dig(r.json() or {}, "error", "message", default="")))
    like(reply_text(r.json()), r"^mock reply to 6 items; tool result of %d bytes$" % len(ROWS_TEXT),
         "retrieve, store false: reasoning + call + result appended, the model got the original")
    rounds = [jload(x["body"]) for x in mock.requests()]
    added = dig(rounds[-1] if rounds else {}, "input", default=[])[3:]
    is_([it.get("type") for it in added], ["reasoning", "function_call", "function_call_output"],
        "retrieve, store false: the model's reasoning and call items, then the result")
    ok(added and not any("id" in it for it in added), "retrieve, store false: appended items carry no id")
    ok(added and added[0].get("encrypted_content"), "retrieve, store false: the reasoning item keeps its encrypted_content")

    # --- the shell tools' outputs ---------------------------------------------
    # A shell_call_output (the shell tool: one {stdout, stderr, outcome} per
    # command) and a local_shell_call_output (LocalShellTool: an output text)
    # are a shell's output, an agent's largest: each stdout, stderr and
    # output text is a unit like a function_call_output's.
    mock.reset()
    stderr_text = "warning: 300 rows, 5 errors\n"
    shell = {"model": "gpt-4o", "input": [
        {"role": "user", "content": "Which payment requests failed?"},
        {"type": "shell_call", "call_id": "call_sh1", "status": "completed",
         "action": {"commands": ["cat logs.json", "true"], "timeout_ms": 10000, "max_output_length": 1000000}},
        {"type": "shell_call_output", "call_id": "call_sh1", "max_output_length": 1000000, "output": [
            {"stdout": ROWS_TEXT, "stderr": stderr_text, "outcome": {"type": "exit", "exit_code": 0}},
            {"stdout": "", "stderr": "", "outcome": {"type": "exit", "exit_code": 0}}]},
        {"type": "local_shell_call", "id": "lsh_1", "call_id": "call_lsh1", "status": "completed",
         "action": {"type": "exec", "command": ["cat", "logs.json"], "env": {}}},
        {"type": "local_shell_call_output", "id": "call_lsh1", "output": ROWS_TEXT}]}
    r = post_json(hd.url + RS, shell)
    sent = upstream(mock)[0] or {}
    items = dig(sent, "input", default=[{}] * 5)
    runs = items[2].get("output") if isinstance(items[2].get("output"), list) else [{}, {}]
    marker, kept = rows_of(runs[0].get("stdout"))
    is_(r.status, 200, "shell outputs: answered")
    ok(marker is not None and marker_hash(marker.get("all_rows")) and kept is not None
       and all(e in kept for e in ERROR_ROWS),
       "shell_call_output: the 300-row stdout crushed (marker with a hash, the 5 error rows kept)")
    is_((runs[0].get("stderr"), runs[0].get("outcome"), runs[1]), (stderr_text, {"type": "exit", "exit_code": 0},
        shell["input"][2]["output"][1]), "shell_call_output: its short stderr, outcome and the second run as sent")
    marker, kept = rows_of(items[4].get("output"))
    ok(marker is not None and kept is not None and all(e in kept for e in ERROR_ROWS),
       "local_shell_call_output: the 300-row output crushed, the error rows kept")
    is_([{k: v for k, v in it.items() if k != "output"} for it in items],
        [{k: v for k, v in it.items() if k != "output"} for it in shell["input"]],
        "shell outputs: every item's other fields as sent")
    before, after = hint(r, "x-headroom-tokens-before"), hint(r, "x-headroom-tokens-after")
    cmp_ok((before or 0) - (after or 0), ">", 2 * 5000, "shell outputs: x-headroom-tokens saved on both (%s -> %s)"
           % (before, after))

    # shell outputs of other shapes than the API's are sent on as they came
    mock.reset()
    odd = {"model": "gpt-4o", "input": [
        {"role": "user", "content": "Which payment requests failed?"},
        {"type": "shell_call_output", "call_id": "c1", "output": ROWS_TEXT},
        {"type": "shell_call_output", "call_id": "c2", "output": [ROWS_TEXT, None, {"stdout": 7, "stderr": [ROWS_TEXT]}]},
        {"type": "local_shell_call_output", "id": "c3", "output": [{"type": "input_text", "text": ROWS_TEXT}]},
        {"type": "local_shell_call_output", "id": "c4"}]}
    r = post_json(hd.url + RS, odd)
    is_((r.status, (upstream(mock)[0] or {}).get("input")), (200, odd["input"]),
        "shell outputs of other shapes (a text for the list, entries that are no object, no strings): sent as they came")

    # --- /metrics -------------------------------------------------------------
    m0 = hd.get("/metrics").text
    n = 3
    outs = 0
    for i in range(n):
        r = post_json(hd.url + RS, {"model": "gpt-4o-mini", "input": "metrics %d" % i})
        outs += dig(r.json() or {}, "usage", "output_tokens")
    r = stream(hd.url + RS, {"model": "gpt-4o-mini", "input": "metrics stream", "stream": True})
    outs += dig(sse_data_json(r.body)[-1] if sse_data_json(r.body) else {}, "response", "usage", "output_tokens")
    m1 = hd.get("/metrics").text

    def delta(name, **labels):
        a, b = metric(m0, name, **labels), metric(m1, name, **labels)
        return None if a is None or b is None else b - a

    is_(delta("headroom_requests_total"), float(n + 1), "/metrics: headroom_requests_total counts the %d requests"
        % (n + 1))
    is_(delta("headroom_requests_by_provider", provider="openai"), float(n + 1), "/metrics: by_provider{openai}")
    is_(delta("headroom_requests_by_model", model="gpt-4o-mini"), float(n + 1), "/metrics: by_model{gpt-4o-mini}")
    is_(delta("headroom_tokens_output_total"), float(outs), "/metrics: output tokens of JSON and streamed answers")
    st = hd.stats()
    is_(metric(m1, "headroom_requests_total"), float(dig(st, "requests", "total")), "/metrics agrees with /stats")

done()
