#!/usr/bin/env python3
# TAP self-test of t/mock-upstream and t/hrtest.py: hits the mock directly (no
# headroomd) so integration-test failures can be trusted to be the daemon's.
import hashlib
import http.client
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # keep t/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403

T0 = time.monotonic()

with Mock(max_seconds=60) as m:
    OA = m.url + "/v1/chat/completions"
    AN = m.url + "/v1/messages"

    r = get(m.url + "/_mock/health")
    is_(r.status, 200, "health")

    # ---- OpenAI, JSON ----
    body = dumps(openai_body(n_messages=2))
    r = request("POST", OA, body, {"Content-Type": "application/json"})
    is_(r.status, 200, "openai: 200")
    like(r.header("content-type"), r"^application/json", "openai: JSON content type")
    is_(int(r.header("content-length")), len(r.body), "openai: Content-Length matches body")
    j = r.json() or {}
    is_(j.get("object"), "chat.completion", "openai: chat.completion object")
    is_(j["choices"][0]["message"]["content"], "mock reply to 2 messages", "openai: reply depends on request")
    u = j.get("usage", {})
    is_(u.get("prompt_tokens"), len(body) // 4, "openai: prompt_tokens = len(body)//4")
    is_(u.get("total_tokens"), u.get("prompt_tokens", 0) + u.get("completion_tokens", 0),
        "openai: total = prompt + completion")
    is_(u.get("prompt_tokens_details", {}).get("cached_tokens"), 0, "openai: cached_tokens present")
    r2 = request("POST", OA, body, {"Content-Type": "application/json"})
    is_(r2.body, r.body, "openai: deterministic bytes for the same request")

    r = post_json(OA, openai_body(), {"x-mock-usage": '{"prompt_tokens":1000,"prompt_tokens_details":{"cached_tokens":800}}'})
    u = (r.json() or {}).get("usage", {})
    is_((u.get("prompt_tokens"), u["prompt_tokens_details"]["cached_tokens"], u["total_tokens"]),
        (1000, 800, 1000 + u["completion_tokens"]), "openai: x-mock-usage merged, total recomputed")

    # ---- OpenAI, SSE ----
    r = stream(OA, openai_body(stream=True, include_usage=True), {"x-mock-chunks": "5"})
    is_(r.status, 200, "openai sse: 200")
    like(r.header("content-type"), r"^text/event-stream", "openai sse: event-stream")
    is_(r.header("transfer-encoding"), "chunked", "openai sse: chunked")
    ok(r.complete and r.error is None, "openai sse: body ended cleanly")
    ev = sse_events(r.body)
    is_(ev[-1], (None, "[DONE]"), "openai sse: ends with [DONE]")
    chunks = sse_data_json(r.body)
    deltas = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    is_(len([d for d in deltas if d]), 5, "openai sse: x-mock-chunks content deltas")
    is_("".join(d for d in deltas if d), "mock reply to 1 messages", "openai sse: deltas concatenate to the reply")
    ok(chunks[-1]["choices"] == [] and "prompt_tokens" in (chunks[-1].get("usage") or {}),
       "openai sse: final usage chunk with include_usage")
    r = stream(OA, openai_body(stream=True))
    ok(all("usage" not in c for c in sse_data_json(r.body)), "openai sse: no usage without include_usage")

    # ---- Anthropic, JSON ----
    r = post_json(AN, anthropic_body(n_messages=3))
    j = r.json() or {}
    is_((r.status, j.get("type"), j.get("content", [{}])[0].get("text")), (200, "message", "mock reply to 3 messages"),
        "anthropic: message object")
    u = j.get("usage", {})
    is_(sorted(u), sorted(["input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
                           "cache_creation", "service_tier"]), "anthropic: usage fields")
    is_(sorted(u.get("cache_creation", {})), ["ephemeral_1h_input_tokens", "ephemeral_5m_input_tokens"],
        "anthropic: cache_creation TTL breakdown")

    # ---- Anthropic, SSE ----
    r = stream(AN, anthropic_body(stream=True),
               {"x-mock-usage": '{"cache_read_input_tokens":50,"cache_creation":{"ephemeral_1h_input_tokens":300}}'})
    names = [n for n, _ in sse_events(r.body)]
    is_(names, ["message_start", "content_block_start", "ping"] + ["content_block_delta"] * 4 +
        ["content_block_stop", "message_delta", "message_stop"], "anthropic sse: real event sequence")
    data = sse_data_json(r.body)
    su = data[0]["message"]["usage"]
    is_((su["cache_read_input_tokens"], su["cache_creation"]["ephemeral_1h_input_tokens"],
         su["cache_creation_input_tokens"]), (50, 300, 300), "anthropic sse: usage override in message_start")
    is_(data[-2]["usage"]["output_tokens"], 6, "anthropic sse: message_delta carries output_tokens")
    is_([d["type"] for d in data], names, "anthropic sse: event: name matches data.type")

    # ---- OpenAI Responses, JSON ----
    RS = m.url + "/v1/responses"
    items = [{"role": "user", "content": "hi"}, {"type": "message", "role": "user",
                                                  "content": [{"type": "input_text", "text": "and?"}]}]
    body = dumps({"model": "gpt-4o", "input": items, "previous_response_id": "resp_prev1", "store": True})
    r = request("POST", RS, body, {"Content-Type": "application/json"})
    j = r.json() or {}
    is_((r.status, j.get("object"), j.get("status"), j.get("model"), j.get("created_at")),
        (200, "response", "completed", "gpt-4o", 1700000000), "responses: a completed Response object")
    like(j.get("id", ""), r"^resp_[0-9a-f]+$", "responses: id resp_<hash>")
    is_((j.get("previous_response_id"), j.get("store")), ("resp_prev1", True),
        "responses: previous_response_id and store echoed")
    out = j.get("output") or [{}]
    is_((len(out), out[0].get("type"), out[0].get("role"), out[0].get("status")),
        (1, "message", "assistant", "completed"), "responses: one assistant message item")
    like(out[0].get("id", ""), r"^msg_[0-9a-f]+$", "responses: message id msg_<hash>")
    is_(out[0].get("content"), [{"type": "output_text", "annotations": [], "logprobs": [],
                                 "text": "mock reply to 2 items"}], "responses: output_text names the item count")
    u = j.get("usage", {})
    is_((u.get("input_tokens"), u.get("input_tokens_details"), u.get("output_tokens_details")),
        (len(body) // 4, {"cached_tokens": 0}, {"reasoning_tokens": 0}), "responses: usage fields")
    is_(u.get("total_tokens"), u.get("input_tokens", 0) + u.get("output_tokens", 0), "responses: total = in + out")
    is_(request("POST", RS, body, {"Content-Type": "application/json"}).body, r.body,
        "responses: deterministic bytes for the same request")
    r = post_json(RS, {"model": "gpt-4o", "input": "just a string"})
    j = r.json() or {}
    is_((j["output"][0]["content"][0]["text"], j["store"], j["previous_response_id"]),
        ("mock reply to 1 items", True, None), "responses: string input counts as 1 item; store defaults to true")
    r = post_json(RS, {"model": "gpt-4o", "input": "x"},
                  {"x-mock-usage": '{"input_tokens_details":{"cached_tokens":7},"output_tokens_details":{"reasoning_tokens":5}}'})
    u = (r.json() or {}).get("usage", {})
    is_((u["input_tokens_details"]["cached_tokens"], u["output_tokens_details"]["reasoning_tokens"],
         u["total_tokens"]), (7, 5, u["input_tokens"] + u["output_tokens"]), "responses: x-mock-usage deep-merged")

    # ---- OpenAI Responses, SSE ----
    RS_EVENTS = (["response.created", "response.in_progress", "response.output_item.added",
                  "response.content_part.added"] + ["response.output_text.delta"] * 3 +
                 ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                  "response.completed"])
    r = stream(RS, {"model": "gpt-4o", "input": items, "stream": True},
               {"x-mock-chunks": "3", "x-mock-usage": '{"input_tokens_details":{"cached_tokens":3}}'})
    is_(r.status, 200, "responses sse: 200")
    like(r.header("content-type"), r"^text/event-stream", "responses sse: event-stream")
    ev = sse_events(r.body)
    is_([n for n, _ in ev], RS_EVENTS, "responses sse: the API's event sequence, no [DONE]")
    data = sse_data_json(r.body)
    is_([d.get("type") for d in data], [n for n, _ in ev], "responses sse: event: name matches data.type")
    is_([d.get("sequence_number") for d in data], list(range(len(data))), "responses sse: sequence_number 0, 1, ...")
    is_("".join(d["delta"] for d in data if d["type"] == "response.output_text.delta"), "mock reply to 2 items",
        "responses sse: deltas concatenate to the reply")
    is_(data[-4]["text"], "mock reply to 2 items", "responses sse: output_text.done carries the text")
    ok(data[0]["response"]["status"] == "in_progress" and data[0]["response"]["usage"] is None,
       "responses sse: response.created is in progress, no usage yet")
    fin = data[-1]["response"]
    is_((fin["status"], fin["output"][0]["content"][0]["text"], fin["usage"]["input_tokens_details"]["cached_tokens"]),
        ("completed", "mock reply to 2 items", 3), "responses sse: response.completed has the output and usage")
    is_(fin["usage"]["total_tokens"], fin["usage"]["input_tokens"] + fin["usage"]["output_tokens"],
        "responses sse: completed usage total = in + out")
    r2 = stream(RS, {"model": "gpt-4o", "input": items, "stream": True},
                {"x-mock-chunks": "3", "x-mock-usage": '{"input_tokens_details":{"cached_tokens":3}}',
                 "x-mock-sse-split": "5"})
    ok(r2.body == r.body and len(r2.pieces) > 1, "responses sse: x-mock-sse-split gives the same bytes")
    r = stream(RS, {"model": "gpt-4o", "input": "x", "stream": True}, {"x-mock-stream-error": "server_error"})
    ev = sse_events(r.body)
    last = json.loads(ev[-1][1]) if ev else {}
    is_((ev[-1][0] if ev else None, last.get("type"), last.get("code"), last.get("param")),
        ("error", "error", "server_error", None), "responses sse: x-mock-stream-error ends with an error event")
    ok(isinstance(last.get("message"), str) and last.get("sequence_number") == len(ev) - 1,
       "responses sse: the error event has a message and the next sequence_number")
    r = post_json(RS, {"model": "gpt-4o", "input": "x", "stream": True}, {"x-mock-status": "429"})
    is_((r.status, r.json()["error"]["type"], r.json()["error"]["code"], r.header("retry-after")),
        (429, "rate_limit_exceeded", "rate_limit_exceeded", "1"), "responses: x-mock-status 429 in OpenAI's shape")
    r = stream(RS, {"model": "gpt-4o", "input": "x", "stream": True},
               {"x-mock-reset": "mid-body", "x-mock-chunks": "6"})
    ok(r.status == 200 and not r.complete and r.error and b"response.created" in r.body
       and b"response.completed" not in r.body, "responses sse: x-mock-reset mid-body cuts the stream")
    t = time.monotonic()
    r = stream(RS, {"model": "gpt-4o", "input": "x", "stream": True},
               {"x-mock-delay-ms": "100", "x-mock-chunk-delay-ms": "20", "x-mock-chunks": "3"})
    took = time.monotonic() - t
    ok(took >= 0.1 + 0.02 * 10 and len(r.pieces) >= 6,
       "responses sse: x-mock-delay-ms and x-mock-chunk-delay-ms honoured (%.2fs, %d reads)" % (took, len(r.pieces)))
    r = post_json(RS, {"model": "gpt-4o", "input": "x"}, {"x-mock-body-bytes": "20000"})
    cmp_ok(abs(len(r.body) - 20000), "<", 64, "responses: x-mock-body-bytes pads the Response")
    r = request("POST", RS, b'{"model":', {"Content-Type": "application/json"})
    is_((r.status, sorted((r.json() or {}).get("error", {}))), (400, ["code", "message", "param", "type"]),
        "responses: malformed JSON -> 400 OpenAI error")

    # ---- OpenAI Responses, tool calls ----
    call_hdr = {"x-mock-tool-call": "lookup", "x-mock-tool-args": '{"hash":"abc123"}'}
    tin = [{"role": "user", "content": "find it"}]
    r = post_json(RS, {"model": "gpt-4o", "input": tin}, call_hdr)
    out = (r.json() or {}).get("output") or [{}]
    fc = out[0]
    is_((len(out), fc.get("type"), fc.get("name"), fc.get("status"), json.loads(fc.get("arguments", "null"))),
        (1, "function_call", "lookup", "completed", {"hash": "abc123"}), "responses: x-mock-tool-call -> function_call")
    ok(isinstance(fc.get("arguments"), str), "responses: function_call arguments is a JSON string")
    like(fc.get("id", ""), r"^fc_", "responses: function_call id fc_<hash>")
    like(fc.get("call_id", ""), r"^call_", "responses: call_id call_<hash>")
    follow = tin + [fc, {"type": "function_call_output", "call_id": fc.get("call_id"), "output": "x" * 1234}]
    r = post_json(RS, {"model": "gpt-4o", "input": follow}, call_hdr)
    out = (r.json() or {}).get("output") or [{}]
    is_((out[0].get("type"), out[0].get("content", [{}])[0].get("text")),
        ("message", "mock reply to 3 items; tool result of 1234 bytes"),
        "responses: a function_call_output answering the call gets a text answer naming its size")
    own = tin + [{"type": "function_call", "call_id": "call_1", "name": "grep", "arguments": "{}"},
                 {"type": "function_call_output", "call_id": "call_1", "output": "z" * 99}]
    r = post_json(RS, {"model": "gpt-4o", "input": own}, call_hdr)
    is_(((r.json() or {}).get("output") or [{}])[0].get("type"), "function_call",
        "responses: the result of another tool's call does not stop x-mock-tool-call")
    r = post_json(RS, {"model": "gpt-4o", "input": own})
    is_((((r.json() or {}).get("output") or [{}])[0].get("content") or [{}])[0].get("text"),
        "mock reply to 3 items; tool result of 99 bytes", "responses: without the header, any answered call's size")
    # streamed calls, as the API streams them: the arguments in pieces
    r = stream(RS, {"model": "gpt-4o", "input": tin, "stream": True}, call_hdr)
    data = sse_data_json(r.body)
    is_([d.get("type") for d in data][:3] + [d.get("type") for d in data][-3:],
        ["response.created", "response.in_progress", "response.output_item.added",
         "response.function_call_arguments.done", "response.output_item.done", "response.completed"],
        "responses sse: a streamed function_call's events")
    args = "".join(d["delta"] for d in data if d["type"] == "response.function_call_arguments.delta")
    fin = data[-1]["response"]["output"][0]
    is_((json.loads(args or "null"), fin.get("type"), fin.get("name"), data[2]["item"].get("arguments")),
        ({"hash": "abc123"}, "function_call", "lookup", ""),
        "responses sse: the deltas join to the arguments; the item starts empty and ends completed")
    # a custom (freeform) tool, asked for by lines of the user's text (Codex CLI cannot add headers)
    js = 'const r = await tools.exec_command({cmd: "cat app.log"}); text(r.output);'
    cin = [{"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": "read the log\nx-mock-tool-call: exec\nx-mock-tool-input: " + js}]}]
    r = stream(RS, {"model": "gpt-4o", "input": cin, "stream": True})
    data = sse_data_json(r.body)
    ctc = data[-1]["response"]["output"][0] if data else {}
    got = "".join(d["delta"] for d in data if d["type"] == "response.custom_tool_call_input.delta")
    is_((ctc.get("type"), ctc.get("name"), ctc.get("input"), got),
        ("custom_tool_call", "exec", js, js), "responses sse: x-mock-tool-input in the user's text -> custom_tool_call")
    r = post_json(RS, {"model": "gpt-4o", "input": cin + [ctc, {"type": "custom_tool_call_output",
                                                                 "call_id": ctc.get("call_id"), "output": "y" * 77}]})
    is_((((r.json() or {}).get("output") or [{}])[0].get("content") or [{}])[0].get("text"),
        "mock reply to 3 items; tool result of 77 bytes",
        "responses: a custom_tool_call_output answering the call gets a text answer naming its size")
    r = post_json(RS, {"model": "gpt-4o", "input": cin}, {"x-mock-tool-call": "grep", "x-mock-tool-args": "{}"})
    is_(((r.json() or {}).get("output") or [{}])[0].get("name"), "grep", "responses: a header wins over a line")
    # reasoning models: a reasoning item first; encrypted_content when included
    r = post_json(RS, {"model": "o4-mini", "input": tin, "reasoning": {"effort": "low"}, "store": False,
                       "include": ["reasoning.encrypted_content"]}, call_hdr)
    out = (r.json() or {}).get("output") or [{}]
    is_([o.get("type") for o in out], ["reasoning", "function_call"], "responses: reasoning item before the call")
    ok(out[0].get("id", "").startswith("rs_") and out[0].get("encrypted_content"),
       "responses: reasoning item rs_<hash> with encrypted_content when included")
    r = post_json(RS, {"model": "o4-mini", "input": tin, "reasoning": {"effort": "low"}})
    out = (r.json() or {}).get("output") or [{}]
    ok([o.get("type") for o in out] == ["reasoning", "message"] and "encrypted_content" not in out[0],
       "responses: reasoning item before the message; no encrypted_content unless included")
    # store false: items only referred to by id were never persisted
    r = post_json(RS, {"model": "gpt-4o", "store": False,
                       "input": tin + [{"type": "item_reference", "id": "fc_123"}]})
    e = (r.json() or {}).get("error") or {}
    is_((r.status, e.get("type"), e.get("param")), (404, "invalid_request_error", "input"),
        "responses: store false + an item_reference -> 404 as the API answers")
    like(e.get("message", ""), r"^Item with id 'fc_123' not found\. Items are not persisted when `store` is set to false",
         "responses: ... naming the item")
    r = post_json(RS, {"model": "o4-mini", "store": False,
                       "input": tin + [{"type": "reasoning", "id": "rs_123", "summary": []}]})
    is_(r.status, 404, "responses: store false + a reasoning item without encrypted_content -> 404")
    r = post_json(RS, {"model": "gpt-4o", "store": False, "input": tin + [dict(fc, id="fc_123")]})
    is_(r.status, 200, "responses: store false + an item sent whole keeps its id (as Codex CLI sends them)")
    r = post_json(RS, {"model": "gpt-4o", "input": tin + [{"type": "item_reference", "id": "fc_123"}]})
    is_(r.status, 200, "responses: references are fine when stored (store defaults to true)")
    orphan = tin + [{"type": "function_call_output", "call_id": "call_elsewhere", "output": "y"}]
    r = post_json(RS, {"model": "gpt-4o", "input": orphan}, call_hdr)
    is_(((r.json() or {}).get("output") or [{}])[0].get("type"), "function_call",
        "responses: an output without its function_call in input is not taken as the answer")

    # ---- errors and control headers ----
    r = request("POST", OA, b"{not json", {"Content-Type": "application/json"})
    is_((r.status, sorted((r.json() or {}).get("error", {}))), (400, ["code", "message", "param", "type"]),
        "openai: malformed JSON -> 400 OpenAI error")
    r = request("POST", AN, b"[1,2]")
    is_((r.status, (r.json() or {}).get("type")), (400, "error"), "anthropic: non-object -> 400 Anthropic error")
    r = post_json(OA, openai_body(), {"x-mock-status": "429"})
    is_((r.status, r.json()["error"]["type"], r.header("retry-after")), (429, "rate_limit_exceeded", "1"),
        "x-mock-status 429 (openai)")
    r = post_json(AN, anthropic_body(stream=True), {"x-mock-status": "529"})
    is_((r.status, r.json()["error"]["type"]), (529, "overloaded_error"), "x-mock-status 529 (anthropic, stream)")

    r = request("DELETE", m.url + "/v1/models/x?limit=2&a=b")
    is_(r.json(), {"path": "/v1/models/x", "method": "DELETE", "query": "limit=2&a=b"}, "other /v1 path echoed")

    t = time.monotonic()
    r = post_json(OA, openai_body(), {"x-mock-delay-ms": "300"})
    cmp_ok(time.monotonic() - t, ">=", 0.3, "x-mock-delay-ms delays the reply")

    r = stream(AN, anthropic_body(stream=True), {"x-mock-chunk-delay-ms": "40", "x-mock-chunks": "3"})
    span = r.pieces[-1][0] - r.pieces[0][0] if r.pieces else 0
    cmp_ok(len(r.pieces), ">=", 5, "chunk delay: events arrive as separate reads")
    cmp_ok(span, ">=", 0.2, "chunk delay: stream spread over time")

    r = post_json(OA, openai_body(), {"x-mock-body-bytes": "100000"})
    cmp_ok(abs(len(r.body) - 100000), "<", 64, "x-mock-body-bytes pads to about N bytes")
    r = stream(OA, openai_body(stream=True), {"x-mock-body-bytes": "50000", "x-mock-chunks": "10"})
    cmp_ok(len(r.body), ">", 45000, "x-mock-body-bytes pads streams too")

    req = b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nx-mock-reset: %s\r\n\r\n{}"
    x = raw_socket_request(m.port, req % b"before-headers")
    ok(x.reset and x.data == b"", "reset before-headers: RST, no bytes")
    x = raw_socket_request(m.port, req % b"after-headers")
    ok(x.reset and x.status == 200 and x.body == b"", "reset after-headers: RST after the head")
    x = raw_socket_request(m.port, req % b"mid-body")
    ok(x.reset and x.status == 200 and 0 < len(x.body) < int(hdr(x.headers, "content-length")),
       "reset mid-body: RST after part of the body")
    r = stream(AN, anthropic_body(stream=True), {"x-mock-reset": "mid-body"})
    ok(r.status == 200 and not r.complete and r.error and b"message_start" in r.body,
       "reset mid-body on a stream: partial events then error")

    r = stream(AN, anthropic_body(stream=True), {"x-mock-stream-error": "overloaded_error"})
    ev = sse_events(r.body)
    is_(ev[-1][0], "error", "x-mock-stream-error ends the stream with an error event")
    r1 = stream(OA, openai_body(stream=True, include_usage=True))
    r2 = stream(OA, openai_body(stream=True, include_usage=True), {"x-mock-sse-split": "7"})
    ok(r2.body == r1.body and len(r2.pieces) > 1, "x-mock-sse-split: same bytes, split across chunks")

    # ---- HTTP plumbing ----
    c = http.client.HTTPConnection("127.0.0.1", m.port, timeout=5)
    statuses = []
    for _ in range(3):
        c.request("POST", "/v1/chat/completions", dumps(openai_body()), {"Content-Type": "application/json"})
        resp = c.getresponse()
        resp.read()
        statuses.append(resp.status)
    c.close()
    is_(statuses, [200, 200, 200], "keep-alive: three requests on one connection")
    x = raw_socket_request(m.port, b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   b"5\r\n{\"mes\r\n11\r\nsages\":[1,2,3,4]}\r\n0\r\n\r\n")
    is_((x.status, json.loads(x.body)["content"][0]["text"]), (200, "mock reply to 4 messages"),
        "chunked request body accepted")

    # ---- recording ----
    m.reset()
    is_(m.requests(), [], "reset clears recordings")
    raw = b'{"model":"m","messages":[],"x":"\xc3\xa9"}'
    request("POST", m.url + "/v1/chat/completions?trace=1", raw, [("X-Custom", "a"), ("X-Custom", "b")])
    request("GET", m.url + "/v1/models")
    rq = m.requests()
    is_(len(rq), 2, "two requests recorded")
    first = rq[0]
    is_((first["method"], first["path"], first["query"]), ("POST", "/v1/chat/completions", "trace=1"),
        "recorded method, path, query")
    is_(first["body"], raw, "recorded body bytes")
    is_(first["body_sha256"], hashlib.sha256(raw).hexdigest(), "recorded sha256")
    is_(hdr_all(first["headers"], "x-custom"), ["a", "b"], "recorded duplicate headers in order")
    is_(m.last_request()["path"], "/v1/models", "newest last")

    # ---- client disconnect mid-stream ----
    m.reset()
    r = stream_then_close(AN, anthropic_body(stream=True),
                          {"x-mock-chunks": "40", "x-mock-chunk-delay-ms": "20"}, nbytes=200)
    ok(r.status == 200 and 200 <= len(r.body) < 3000, "read the first bytes of a stream, then RST")
    is_(wait_until(lambda: m.aborted() == 1, timeout=3), True, "/_mock/aborted counts the aborted stream")
    cn = m.counters()
    is_((cn["streams_started"], cn["streams_completed"]), (1, 0), "aborted stream did not complete")
    r = stream_then_close(OA, openai_body(stream=True), {"x-mock-chunks": "40", "x-mock-chunk-delay-ms": "20"},
                          nbytes=100, rst=False)
    is_(wait_until(lambda: m.aborted() == 2, timeout=3), True, "a plain FIN close is detected too")

    # ---- harness parsers ----
    is_(sse_events(b"event: a\ndata: 1\ndata: 2\n\n: comment\n\ndata:x\r\n\r\n"), [("a", "1\n2"), (None, "x")],
        "sse_events parses multi-line data, comments, CRLF")
    is_(parse_http_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"),
        (200, [("Transfer-Encoding", "chunked")], b"abcde"), "parse_http_response de-chunks")
    r = get("http://127.0.0.1:%d/" % free_port(), timeout=2)
    ok(r.status == 0 and r.error, "request() reports transport errors as status 0")

    cmp_ok(time.monotonic() - T0, "<", 10, "self-test runs in a few seconds")

done()
