#!/usr/bin/env python3
# t/stream_error_test.py -- a stream the provider ends with an error event
# (Anthropic `event: error`, Responses `error` / `response.failed`, a Chat
# Completions `data: {"error": ...}` chunk) reaches the client as a 200: it is
# not a failed request. An SRE finds these by the request log's stream_error
# (the error's type or code), /stats requests.stream_errors and
# headroom_requests_stream_errors_total; over SSE and the Responses WebSocket.
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F401,F403
from ws_client import WS  # noqa: E402

ANTH = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
CASES = (("chat", "/v1/chat/completions", openai_body(stream=True), {}, "server_error"),
         ("messages", "/v1/messages", anthropic_body(stream=True), ANTH, "overloaded_error"),
         ("responses", "/v1/responses", {"model": "gpt-4o", "input": "hi", "stream": True}, {}, "rate_limit_exceeded"))

with Mock() as mock:
    log_path = None
    with Headroomd(extra_conf='sink request_log {\n path "@WORKSPACE@/requests.jsonl"\n}\nsink prometheus { }\n') as h:
        log_path = os.path.join(h.workspace, "requests.jsonl")
        for name, path, body, hdr, kind in CASES:
            r = request("POST", h.url + path, body=body, headers=dict(hdr, **{"x-mock-stream-error": kind}))
            is_(r.status, 200, "%s: a stream ending in a provider error event is answered 200" % name)
            ok(kind.encode() in r.body, "%s: the client got the error event (%s)" % (name, kind))
            r = request("POST", h.url + path, body=body, headers=hdr)
            is_(r.status, 200, "%s: a stream without one" % name)
        # The Responses WebSocket (Codex): a response the provider ends with
        # an error event (no status: the stream's own), then one without.
        for extra, what in (({"x-mock-stream-error": "server_error"}, "with"), ({}, "without")):
            ws = WS(h.port, headers=extra)
            ws.send_text({"type": "response.create", "model": "gpt-4o", "store": False, "input": "hi"})
            evs = ws.events()
            ok(evs and evs[-1].get("type") == ("error" if extra else "response.completed"),
               "WebSocket: a response %s a provider error event" % what)
            ws.send_frame(0x8, struct.pack(">H", 1000))
            ws.close_code()
            ws.close()
        ok(wait_until(lambda: h.stats().get("requests", {}).get("total") == 8, 5), "(8 requests counted)")
        st = h.stats()
        req = st.get("requests", {})
        is_((req.get("stream_errors"), req.get("failed"), req.get("total")), (4, 0, 8),
            "/stats requests.stream_errors 4 (of 8 streams), failed 0")
        m = h.get("/metrics").body.decode()
        like(m, r"(?m)^headroom_requests_stream_errors_total 4$", "/metrics headroom_requests_stream_errors_total 4")
        like(m, r"(?m)^# TYPE headroom_requests_stream_errors_total counter$", "(a counter)")
        ok(wait_until(lambda: os.path.exists(log_path) and len(open(log_path).read().splitlines()) >= 8, 5),
           "eight request log lines")
    lines = [json.loads(x) for x in open(log_path).read().splitlines()] if log_path and os.path.exists(log_path) else []
    got = [(x.get("path"), x.get("status"), x.get("stream_error", "missing"), x.get("error")) for x in lines]
    want = []
    for name, path, body, hdr, kind in CASES:
        want += [(path, 200, kind, None), (path, 200, None, None)]
    want += [("/v1/responses", 200, "server_error", None), ("/v1/responses", 200, None, None)]
    is_(got, want, "request log: stream_error is the error's type or code on the three, null on the others; "
        "error stays null")
done()
