#!/usr/bin/env python3
# stream_test.py — SSE through headroomd: exact bytes, incremental relay, odd
# split boundaries, usage from streams, broken streams, client disconnects.
import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403
import threading  # noqa: E402
import time  # noqa: E402

# Streams end with headroomd's cost comment (spec: "streams end with an SSE
# comment line"); everything before it must be the upstream's bytes.
COST_COMMENT = re.compile(rb": headroom tokens_before=\d+ tokens_after=\d+ tokens_saved=\d+ "
                          rb"cost_usd=\d+\.\d{6} savings_usd=\d+\.\d{6}\n\n\Z")


def upstream_part(body):
    """The stream without headroomd's closing comment line (None when it is missing)."""
    m = COST_COMMENT.search(body)
    return body[:m.start()] if m else None

TTL_USAGE = '{"cache_creation":{"ephemeral_5m_input_tokens":100,"ephemeral_1h_input_tokens":300},"cache_read_input_tokens":50}'


def final_usage(provider, body):
    """Output tokens and usage the mock reported in an SSE body."""
    out = 0
    for ev in sse_data_json(body):
        if provider == "openai" and isinstance(ev.get("usage"), dict):
            out = ev["usage"]["completion_tokens"]
        if provider == "anthropic" and ev.get("type") == "message_delta":
            out = ev["usage"]["output_tokens"]
    return out


def reset_stats(h):
    r = request("POST", h.url + "/stats/reset")
    return r.status == 200


CASES = (("openai", "/v1/chat/completions", lambda: openai_body(stream=True, include_usage=True, n_messages=2)),
         ("anthropic", "/v1/messages", lambda: anthropic_body(stream=True, n_messages=3)))

with Mock() as m, Headroomd(mock=m) as h:
    # --- exact bytes, status, headers ---
    for name, path, mk in CASES:
        body = dumps(mk())
        via = stream(h.url + path, body, {"Content-Type": "application/json"})
        direct = stream(m.url + path, body, {"Content-Type": "application/json"})
        is_(via.status, 200, name + " SSE: 200")
        ok(via.complete and via.error is None, name + " SSE: stream ended cleanly")
        is_(upstream_part(via.body), direct.body, name + " SSE: the upstream's exact bytes, then the cost comment")
        like(via.header("content-type", ""), r"^text/event-stream", name + " SSE: content-type relayed")
        is_(via.header("cache-control"), "no-cache", name + " SSE: cache-control relayed")
        ok(via.header("x-headroom-request-id"), name + " SSE: x-headroom-request-id present")
        ok(len(sse_events(via.body)) >= 6, name + " SSE: all events present")

    # --- incremental relay: first event well before the last ---
    for name, path, mk in CASES:
        r = stream(h.url + path, mk(), {"x-mock-chunk-delay-ms": "150", "x-mock-chunks": "6"})
        ok(r.complete and len(r.pieces) >= 4, name + " slow SSE: arrives in several pieces (%d)" % len(r.pieces))
        if r.pieces:
            first_t, first = r.pieces[0]
            last_t = r.pieces[-1][0]
            cmp_ok(last_t - first_t, ">", 0.5, name + " slow SSE: first piece arrives well before the last")
            ok(b"[DONE]" not in first and b"message_stop" not in first,
               name + " slow SSE: the first piece is not the end of the stream")
            ok(first.startswith(b"data: ") or first.startswith(b"event: "), name + " slow SSE: first piece is an event")

    # --- odd split boundaries still give correct usage ---
    for split in ("1", "7", "61"):
        ok(reset_stats(h), "stats reset (split %s)" % split)
        expect_out = 0
        for name, path, mk in CASES:
            body = dumps(mk())
            hd = {"x-mock-sse-split": split, "x-mock-usage": TTL_USAGE if name == "anthropic" else "{}"}
            via = stream(h.url + path, body, hd)
            direct = stream(m.url + path, body, hd)
            is_(upstream_part(via.body), direct.body, "%s split %s: same bytes as the upstream" % (name, split))
            expect_out += final_usage(name, direct.body)
        st = h.stats()
        cmp_ok(expect_out, ">", 0, "split %s: the mock reported output tokens" % split)
        is_(st["tokens"]["output"], expect_out, "split %s: /stats tokens.output from the streamed usage" % split)
        pa = st["prefix_cache"]["by_provider"].get("anthropic", {})
        is_((pa.get("cache_read_tokens"), pa.get("cache_write_tokens")), (50, 400),
            "split %s: anthropic cache read/write from the stream" % split)
        is_(pa.get("observed_ttl_buckets"), {"5m": {"tokens": 100, "requests": 1}, "1h": {"tokens": 300, "requests": 1}},
            "split %s: 5m/1h TTL buckets from the stream" % split)

    # --- upstream error event inside a stream: relayed as is, not a proxy failure ---
    ok(reset_stats(h), "stats reset (stream errors)")
    for name, path, mk in CASES:
        body = dumps(mk())
        hd = {"x-mock-stream-error": "overloaded_error"}
        via = stream(h.url + path, body, hd)
        direct = stream(m.url + path, body, hd)
        is_((via.status, upstream_part(via.body)), (direct.status, direct.body), name + ": upstream's stream error event relayed unchanged")
    is_(h.stats()["requests"]["failed"], 0, "an upstream error event is not counted as failed")

    # --- upstream reset mid-stream: SSE error event in the provider's shape, stream ends ---
    for name, path, mk in CASES:
        r = stream(h.url + path, mk(), {"x-mock-reset": "mid-body", "x-mock-chunks": "8"}, timeout=10)
        is_(r.status, 200, name + " reset mid-stream: the stream had started (200)")
        ok(r.complete, name + " reset mid-stream: the client's stream ends (no hang)")
        evs = sse_events(r.body)
        last = evs[-1] if evs else (None, "")
        data = sse_data_json(r.body)
        lastj = data[-1] if data else {}
        if name == "anthropic":
            ok(last[0] == "error" and lastj.get("type") == "error" and lastj.get("error", {}).get("message"),
               name + " reset mid-stream: ends with event: error {type:error,error:{...}}")
        else:
            ok(isinstance(lastj.get("error"), dict) and lastj["error"].get("message"),
               name + " reset mid-stream: ends with data: {error:{message,...}}")
        ok(len(evs) >= 3, name + " reset mid-stream: events before the break were relayed")
    st = h.stats()["requests"]
    is_(st["failed"], 2, "streams broken by the upstream counted as failed")

    # --- error status on a stream request: relayed with its JSON body ---
    body = dumps(openai_body(stream=True))
    via = request("POST", h.url + "/v1/chat/completions", body=body, headers={"x-mock-status": "429"})
    direct = request("POST", m.url + "/v1/chat/completions", body=body, headers={"x-mock-status": "429"})
    is_((via.status, via.body), (429, direct.body), "429 on a stream request relayed with its body")

    # --- concurrent streams stay separate ---
    results = [None] * 8

    def worker(i):
        results[i] = stream(h.url + "/v1/messages", anthropic_body(stream=True, n_messages=i + 1),
                            {"x-mock-chunk-delay-ms": "20", "x-mock-sse-split": "13"}, timeout=20)

    ths = [threading.Thread(target=worker, args=(i,)) for i in range(len(results))]
    for t in ths:
        t.start()
    for t in ths:
        t.join(30)
    texts = []
    for r in results:
        texts.append("".join(e["delta"]["text"] for e in sse_data_json(r.body if r else b"")
                             if e.get("type") == "content_block_delta"))
    is_(texts, ["mock reply to %d messages" % (i + 1) for i in range(len(results))],
        "8 concurrent streams each get their own complete answer")

    # --- client disconnect mid-stream: upstream aborted, 499 counted ---
    for name, path, mk in CASES:
        m.reset()
        ok(reset_stats(h), name + " disconnect: stats reset")
        hd = {"x-mock-chunk-delay-ms": "200", "x-mock-chunks": "50"}
        t0 = time.monotonic()
        r = stream_then_close(h.url + path, mk(), hd, nbytes=1)
        ok(r.status == 200 and r.body, name + " disconnect: got the first event, then closed")
        aborted = wait_until(lambda: m.aborted() >= 1, timeout=5)
        ok(aborted, name + " disconnect: the upstream transfer was aborted")
        cmp_ok(time.monotonic() - t0, "<", 3.0, name + " disconnect: aborted within a couple of seconds")
        st = wait_until(lambda: h.stats()["requests"]["by_status"].get("499"), timeout=3)
        is_(st, 1, name + " disconnect: /stats counts status 499")
        is_(m.counters()["streams_completed"], 0, name + " disconnect: the upstream never finished the 10 s stream")
    # A FIN (not RST) close is noticed too.
    m.reset()
    r = stream_then_close(h.url + "/v1/messages", anthropic_body(stream=True),
                          {"x-mock-chunk-delay-ms": "200", "x-mock-chunks": "50"}, nbytes=1, rst=False)
    ok(wait_until(lambda: m.aborted() >= 1, timeout=5), "disconnect with FIN: upstream aborted")
    r = post_json(h.url + "/v1/chat/completions", openai_body())
    is_(r.status, 200, "daemon keeps serving after client disconnects")

done()
