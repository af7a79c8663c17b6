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
