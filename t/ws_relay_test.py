#!/usr/bin/env python3
# ws_relay_test.py — the Responses API's WebSocket mode (GET /v1/responses
# with Upgrade: websocket) through headroomd to the mock upstream, with a
# client written on a raw socket: the handshake relayed (Sec-WebSocket-Accept
# from the upstream, no extension negotiated), fragmented messages, ping and
# pong, close from either side, each bad frame closed with its code and a
# log line, an oversized message (1009), the upstream refusing the upgrade
# (relayed as HTTP), `websocket no` (501); a large function_call_output
# reaching the mock compressed; /stats, /metrics, metrics.db, the request log
# and the savings file counting each response.create with the provider's
# usage; a slow client's message counted from its last byte; the provider's
# error events (status, no `error`); a repeated key refused with an error
# event, the WebSocket kept; max_connections, the idle timeout
# (upstream_timeout), the budget (an error event), an https upstream, libcurl
# (501); draining closes with 1001.
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403
from ws_client import WS  # noqa: E402
import base64  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sqlite3  # noqa: E402
import shutil  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

PLUGIN_DIR = os.environ.get("HEADROOM_TEST_PLUGIN_DIR")
HAVE_DB = not PLUGIN_DIR or os.path.exists(os.path.join(PLUGIN_DIR, "metrics_db.so"))
# stage_budget_ms: scripts/test.sh runs this test under valgrind, where a cold
# first crush of ROWS_TEXT on a loaded machine can overrun the default 250 ms
# and be undone (fail open), as content_encoding_test's log once was in CI.
CONF = ("transform router { }\ntransform smart_crusher { }\nsink prometheus { path /metrics; }\nstage_budget_ms 60000\n" +
        ("sink metrics_db { }\n" if HAVE_DB else ""))


def log_rows(n=300):
    rng = random.Random(7)
    rows = []
    for i in range(n):
        rows.append({"ts": "2025-03-01T10:%02d:%02d" % (i // 60, i % 60), "level": "error" if i % 61 == 0 else "info",
                     "service": rng.choice(["api", "payments", "auth"]), "duration_ms": rng.randint(20, 80),
                     "msg": "GET /v1/orders completed", "request_id": "req-%08x" % rng.getrandbits(32)})
    return json.dumps(rows)


ROWS_TEXT = log_rows()


def create(n_items=1, output=None, model="gpt-4o"):
    items = [{"role": "user", "content": [{"type": "input_text", "text": "Which requests failed?"}]}]
    if output is not None:
        items += [{"type": "function_call", "call_id": "call_1", "name": "logs", "arguments": "{}"},
                  {"type": "function_call_output", "call_id": "call_1", "output": output}]
    items += [{"role": "user", "content": "more %d" % i} for i in range(n_items - 1)]
    return {"type": "response.create", "model": model, "store": False, "input": items}


def ws_messages(mock):
    return [r for r in mock.requests() if r.get("websocket") is True]


def log_has(d, text):
    return wait_until(lambda: text in d.stderr_text(), timeout=3)


SINKS = ("log_file @WORKSPACE@/requests.jsonl\n"
         "sink savings_file { path @WORKSPACE@/savings.json; flush_interval 1; dashboard no; }\n")
with Mock() as mock, Headroomd(extra_conf=CONF + SINKS) as d:
    # --- handshake and one response ----------------------------------------
    ws = WS(d.port, headers={"x-mock-usage": json.dumps({"output_tokens": 1234})})
    is_(ws.status, 101, "the upgrade is answered 101 through headroomd")
    ok(ws.accept_ok(), "Sec-WebSocket-Accept matches the client's key (the key went upstream unchanged)")
    ok("sec-websocket-extensions" not in ws.headers, "no extension negotiated (permessage-deflate dropped)")
    up = [r for r in mock.requests() if r.get("websocket") == "upgrade"]
    hdrs = {k.lower(): v for k, v in (up[-1]["headers"] if up else [])}
    is_(hdrs.get("authorization"), "Bearer sk-test", "the client's credentials reached the upstream's handshake")
    ok("sec-websocket-extensions" not in hdrs and "x-mock-usage" in hdrs,
       "upstream handshake: extensions dropped, other headers forwarded")

    ws.send_text(create(output=ROWS_TEXT))
    evs = ws.events()
    is_([e.get("type") for e in evs][:2], ["response.created", "response.in_progress"],
        "events arrive as the upstream sent them, one message each")
    is_(evs[-1].get("type"), "response.completed", "the response ends with response.completed")
    msgs = ws_messages(mock)
    is_(len(msgs), 1, "the mock got one WebSocket message")
    sent = json.loads(base64.b64decode(msgs[-1]["body_b64"])) if msgs else {}
    is_(sent.get("type"), "response.create", "the message kept its type member")
    out = (sent.get("input") or [{}, {}, {}])[2].get("output", "")
    cmp_ok(len(out), "<", len(ROWS_TEXT) * 0.5,
           "the function_call_output reached the mock compressed (%d -> %d chars)" % (len(ROWS_TEXT), len(out)))
    ok("headroom_retrieve" not in json.dumps(sent.get("tools") or []), "no headroom_retrieve tool offered")

    # --- fragmented message, ping/pong, a second response ------------------
    ws.send_frame(0x9, b"are you there")
    op, data = ws.recv_message()
    is_((op, data), (0xA, b"are you there"), "a ping goes through and its pong comes back")
    ws.send_text(create(n_items=3), fragments=4)
    evs = ws.events()
    is_(evs[-1].get("type"), "response.completed", "a message sent in 4 fragments is answered")
    ok("mock reply to 3 items" in json.dumps(evs[-1]), "... as one message of 3 input items")
    # a ping between the fragments of a message
    data = json.dumps(create(n_items=2)).encode()
    ws.send_frame(0x1, data[:10], fin=False)
    ws.send_frame(0x9, b"mid")
    ws.send_frame(0x0, data[10:], fin=True)
    op, pong = ws.recv_message()
    is_((op, pong), (0xA, b"mid"), "a ping between fragments is answered at once")
    is_(ws.events()[-1].get("type"), "response.completed", "and the fragmented message is answered after it")
    ws.send_text({"type": "response.steer", "input": "hurry"})
    ok(wait_until(lambda: any(m.get("ws_type") == "response.steer" for m in ws_messages(mock))),
       "other messages (response.steer) pass through")

    # --- the WebSocket metrics, while it is open --------------------------
    m = d.get("/metrics").text
    like(m, r'(?m)^headroom_websocket_connections 1$', "/metrics: one WebSocket open")
    like(m, r'(?m)^headroom_websocket_messages_total 3$', "/metrics: the three response.create messages so far")

    # --- client closes -------------------------------------------------------
    ws.send_frame(0x8, struct.pack(">H", 1000) + b"bye")
    is_(ws.close_code()[0], 1000, "client close: the upstream's close answer is relayed")
    ok(ws.eof(), "then the connection ends")
    ws.close()

    # --- accounting ------------------------------------------------------------
    def rs_requests():
        return d.stats().get("requests", {}).get("by_provider", {}).get("openai", 0)
    ok(wait_until(lambda: rs_requests() == 3), "/stats counts each response.create as one request (%d)" % rs_requests())
    st = d.stats()
    cmp_ok(st.get("tokens", {}).get("saved", 0), ">", 1000, "/stats credits the compressed tool output's savings")
    m = d.get("/metrics").text
    like(m, r'(?m)^headroom_requests_by_provider\{provider="openai"\} 3$', "/metrics counts them too")
    ok(wait_until(lambda: re.search(r'(?m)^headroom_websocket_connections 0$', d.get("/metrics").text)),
       "/metrics: no WebSocket open once it closed")
    like(d.get("/metrics").text, r'(?m)^headroom_websocket_connections_total 1$', "/metrics: one relayed since start")
    if HAVE_DB:
        def rows():
            db = sqlite3.connect(os.path.join(d.workspace, "metrics.db"))
            try:
                return db.execute("SELECT wire_format, path, status, tokens_input_before, tokens_saved, "
                                  "tokens_output, streamed, failed FROM requests ORDER BY id").fetchall()
            except sqlite3.Error:
                return []
            finally:
                db.close()
        ok(wait_until(lambda: len(rows()) >= 3, timeout=10), "metrics.db has a row per response.create")
        r = rows()
        ok(r and all(x[:3] == ("openai_responses", "/v1/responses", 200) for x in r),
           "rows: openai_responses, /v1/responses, 200: %r" % [x[:3] for x in r])
        ok(r and r[0][4] > 1000 and r[0][3] > r[0][4], "first row: tokens before and saved (%r)" % (r[:1],))
        is_(r[0][5] if r else None, 1234, "the provider's usage from response.completed is recorded")
    else:
        skip("metrics_db.so not built", 4)

    def log_lines():
        try:
            with open(os.path.join(d.workspace, "requests.jsonl")) as f:
                return [json.loads(x) for x in f if x.strip()]
        except (OSError, ValueError):
            return []
    ok(wait_until(lambda: len(log_lines()) >= 3), "the request log has a line per response.create")
    ll = log_lines()
    is_([(x.get("path"), x.get("wire_format"), x.get("status"), x.get("streamed")) for x in ll[:3]],
        [("/v1/responses", "openai_responses", 200, True)] * 3, "request log: /v1/responses, openai_responses, 200, streamed")
    ok(ll and ll[0].get("tokens_saved", 0) > 1000, "request log: the first one's saving")

    def lifetime():
        try:
            with open(os.path.join(d.workspace, "savings.json")) as f:
                return json.load(f).get("lifetime", {})
        except (OSError, ValueError):
            return {}
    ok(wait_until(lambda: lifetime().get("requests", 0) >= 3, timeout=10),
       "the savings file counts them: %r" % lifetime())
    cmp_ok(lifetime().get("tokens_saved", 0), ">", 1000, "and their savings")

    # --- upstream closes -----------------------------------------------------
    ws = WS(d.port, headers={"x-mock-ws-bad": "close"})
    ws.send_text(create())
    ws.events()
    code, reason = ws.close_code()
    is_((code, reason), (1000, "mock-upstream: done"), "the upstream's close frame is relayed as it came")
    ws.send_frame(0x8, struct.pack(">H", 1000))
    ok(ws.eof(), "the client's answer ends the connection")
    ws.close()

    # --- a message that is not JSON -------------------------------------------
    ws = WS(d.port)
    ws.send_frame(0x1, b"not json{")
    code, reason = ws.close_code()
    is_(code, 1007, "a text message that is not JSON: close 1007 (%s)" % reason)
    ok(log_has(d, "not valid JSON"), "... and a log line says why")
    ws.close()

    # --- bad frames from the client -----------------------------------------
    cases = [("unmasked frame", lambda w: w.send_frame(0x1, b"{}", mask=False), 1002, "unmasked"),
             ("reserved bit", lambda w: w.send_frame(0x1, b"{}", rsv=0x40), 1002, "reserved bits"),
             ("bad opcode", lambda w: w.send_frame(0x3, b"x"), 1002, "unknown opcode"),
             ("oversized control frame", lambda w: w.send_frame(0x9, b"p" * 200), 1002, "longer than 125"),
             ("continuation with no message", lambda w: w.send_frame(0x0, b"x"), 1002, "no message to continue"),
             ("bad close code", lambda w: w.send_frame(0x8, struct.pack(">H", 1005)), 1002, "close frame")]
    for name, act, want, logged in cases:
        ws = WS(d.port)
        act(ws)
        code, reason = ws.close_code()
        is_(code, want, "%s: close %d (%s)" % (name, want, reason))
        ok(log_has(d, logged), "%s: logged" % name)
        ok(ws.eof(), "%s: then the connection ends" % name)
        ws.close()

    # --- oversized message ------------------------------------------------------
    with Headroomd(extra_conf=CONF + "max_body_size 64k\n") as small:
        ws = WS(small.port)
        ws.send_text(create(output="x" * 70000), fragments=3)
        code, reason = ws.close_code()
        is_(code, 1009, "a message over max_body_size: close 1009 (%s)" % reason)
        ok("max_body_size" in reason, "the reason names max_body_size")
        ok(log_has(small, "raise max_body_size"), "a log line says what to change")
        ws.close()
        r = get(small.url + "/livez")
        is_(r.status, 200, "the daemon keeps serving")

    # --- the upstream refuses the upgrade -------------------------------------
    ws = WS(d.port, headers={"x-mock-status": "403"})
    is_(ws.status, 403, "an upstream refusing the upgrade: its status relayed as HTTP")
    ok(b"WebSocket upgrade refused" in ws.body, "... with its body")
    ws.close()

    # --- a bad frame from the upstream -----------------------------------------
    ws = WS(d.port, headers={"x-mock-ws-bad": "rsv"})
    ws.send_text(create())
    evs = ws.events()
    code, reason = ws.close_code()
    is_(code, 1014, "a bad frame from the upstream: close 1014 to the client (%s)" % reason)
    ok(log_has(d, "upstream sent a bad frame"), "... logged")
    ws.close()

    # --- upstream fragments its messages; usage still read ---------------------
    before = len(ws_messages(mock))
    ws = WS(d.port, headers={"x-mock-ws-split": "50", "x-mock-usage": json.dumps({"output_tokens": 777})})
    ws.send_text(create())
    evs = ws.events()
    is_(evs[-1].get("type"), "response.completed", "the upstream's fragmented messages are relayed whole")
    ws.send_frame(0x8, struct.pack(">H", 1000))
    ws.close_code()
    ws.close()
    if HAVE_DB:
        ok(wait_until(lambda: any(x[5] == 777 for x in rows()), timeout=10),
           "usage read from a response.completed sent in fragments")
    else:
        skip("metrics_db.so not built")
    is_(len(ws_messages(mock)) - before, 1, "one more message at the mock")

    def logged(model):
        found = [x for x in log_lines() if x.get("model") == model]
        return found[-1] if found else None

    # --- a slow client is not headroomd's overhead -----------------------------
    # As a POST's, a response.create's clocks start once headroomd has read the
    # whole message (its last fragment), not at its first byte (doc/stats.md).
    PAUSE = 1.0
    ws = WS(d.port)
    data = json.dumps(create(model="gpt-4o-slow-fragments")).encode()
    ws.send_frame(0x1, data[:40], fin=False)
    time.sleep(PAUSE)
    ws.send_frame(0x0, data[40:], fin=True)
    is_(ws.events()[-1].get("type"), "response.completed", "slow client: a message in two fragments 1 s apart is answered")
    ws.send_frame(0x1, json.dumps(create(model="gpt-4o-slow-frame")).encode(), pause=(40, PAUSE))
    is_(ws.events()[-1].get("type"), "response.completed", "slow client: one frame whose payload pauses 1 s is answered")
    ws.send_frame(0x8, struct.pack(">H", 1000))
    ws.close_code()
    ws.close()
    ok(wait_until(lambda: logged("gpt-4o-slow-fragments") and logged("gpt-4o-slow-frame")),
       "slow client: both in the request log")
    for model, what in (("gpt-4o-slow-fragments", "fragments 1 s apart"), ("gpt-4o-slow-frame", "a frame paused 1 s")):
        x = logged(model) or {}
        ov, lat = x.get("overhead_ms"), x.get("latency_ms")
        cmp_ok(ov if ov is not None else 1e9, "<", PAUSE * 1000 / 2,
               "%s: overhead_ms (%r) does not hold the client's pause" % (what, ov))
        cmp_ok(lat if lat is not None else 1e9, "<", PAUSE * 1000,
               "%s: nor does latency_ms (%r): both count from the last byte" % (what, lat))

    # --- the provider's error events are answers, not headroomd's errors -------
    # As a POST's 4xx/5xx answer or an SSE stream's error event: the request
    # log's `error` stays null (doc/request-log.md), status is the event's.
    failed0 = d.stats().get("requests", {}).get("failed")
    ws = WS(d.port)
    ws.send_text({"type": "response.create", "model": "gpt-4o-unstored", "store": False,
                  "input": [{"type": "item_reference", "id": "msg_abc"}]})
    ev = ws.events()[-1]
    is_((ev.get("type"), ev.get("status")), ("error", 404), "an unstored item_reference: the provider's error event (404)")
    ws.send_frame(0x8, struct.pack(">H", 1000))
    ws.close_code()
    ws.close()
    ws = WS(d.port, headers={"x-mock-stream-error": "server_error"})
    ws.send_text(create(model="gpt-4o-stream-error"))
    evs = ws.events()
    is_(evs[-1].get("type"), "error", "a provider error event mid-response is relayed")
    ws.send_frame(0x8, struct.pack(">H", 1000))
    ws.close_code()
    ws.close()
    ok(wait_until(lambda: logged("gpt-4o-unstored") and logged("gpt-4o-stream-error")),
       "provider error events: both in the request log")
    x = logged("gpt-4o-unstored") or {}
    is_((x.get("status"), x.get("error")), (404, None), "a 404 error event: status 404, error null")
    x = logged("gpt-4o-stream-error") or {}
    is_((x.get("status"), x.get("error")), (200, None),
        "an error event with no status: status 200 (as over SSE), error null")
    is_(d.stats().get("requests", {}).get("failed"), failed0, "neither is counted as failed")

    # --- a message that repeats a key: an error event, the WebSocket stays -----
    # As a POST of that body gets a 400 and keeps its connection. Refused
    # whatever its type (a repeated "type" could make it any message).
    before = len(ws_messages(mock))
    ws = WS(d.port)
    ws.send_text('{"type":"response.create","model":"gpt-4o","model":"gpt-4o-mini","store":false,"input":"hi"}')
    ev = ws.events()[-1]
    err = ev.get("error") or {}
    is_((ev.get("type"), ev.get("status"), err.get("type")), ("error", 400, "invalid_request_error"),
        "a repeated key: an error event (400, invalid_request_error)")
    like(err.get("message", ""), r"repeats a key.*duplicate object key 'model'", "... naming the key")
    ws.send_text('{"type":"response.steer","type":"response.create","input":"x"}')
    is_(ws.events()[-1].get("status"), 400, "a repeated type: refused the same way")
    ws.send_text(create(model="gpt-4o-after-dup"))
    is_(ws.events()[-1].get("type"), "response.completed", "the WebSocket stays open: the next message is answered")
    is_(len(ws_messages(mock)) - before, 1, "only that one reached the provider")
    ws.send_frame(0x8, struct.pack(">H", 1000))
    is_(ws.close_code()[0], 1000, "and it closes normally")
    ws.close()
    r = d.post("/v1/responses", '{"model":"gpt-4o","model":"gpt-4o-mini","input":"hi"}',
               headers={"Content-Type": "application/json", "Authorization": "Bearer sk-test"})
    is_(r.status, 400, "the same body as a POST: 400")

    def refused():
        return [(x.get("status"), x.get("error"), x.get("path")) for x in log_lines() if x.get("status") == 400]
    ok(wait_until(lambda: len(refused()) == 3), "request log: a line for each (%r)" % refused())
    is_(refused(), [(400, "malformed JSON", "/v1/responses")] * 3, "... alike: 400, malformed JSON")

    # --- the client's connection drops mid-response --------------------------
    ws = WS(d.port, headers={"x-mock-chunk-delay-ms": "100", "x-mock-chunks": "20"})
    ws.send_text(create())
    ws.recv_message()
    ws.sock.close()
    ok(wait_until(lambda: d.stats().get("requests", {}).get("by_status", {}).get("499", 0) >= 1, timeout=10),
       "a response cut off by the client is counted as 499")
    r = get(d.url + "/livez")
    is_(r.status, 200, "the daemon keeps serving after all that")

    # --- drain: a pending response ends first, then 1001 ------------------------
    busy = WS(d.port, headers={"x-mock-chunk-delay-ms": "100", "x-mock-chunks": "10"})
    busy.send_text(create())
    is_(busy.recv_message()[0], 0x1, "drain: a response under way")
    ws = WS(d.port)
    ws.send_text(create())
    ws.events()
    d.signal(signal.SIGTERM)
    is_(busy.events()[-1].get("type"), "response.completed", "SIGTERM: a pending response still ends")
    code, reason = busy.close_code()
    is_(code, 1001, "... then its WebSocket is closed with 1001 (%s)" % reason)
    busy.close()
    code, reason = ws.close_code()
    is_(code, 1001, "SIGTERM: an idle WebSocket is closed with 1001 (%s)" % reason)
    ws.close()
    ok(wait_until(lambda: not d.alive(), timeout=10), "and the daemon exits")

# --- connection caps and the idle timeout -------------------------------------
CAPPED = ("host 127.0.0.1\nport @PORT@\nopenai_api_url @MOCK_URL@\nanthropic_api_url @MOCK_URL@\nworkers 1\n"
          "max_connections 1\nupstream_timeout 2\n")
with Mock() as mock, Headroomd(conf_text=CAPPED) as d:
    ws = WS(d.port)
    is_(ws.status, 101, "max_connections 1: the first WebSocket is relayed")
    ws2 = WS(d.port)
    is_(ws2.status, 503, "a second one while it is open: 503 (max_connections)")
    ws2.close()
    t0 = time.monotonic()
    code, reason = ws.close_code()
    is_(code, 1001, "no frame for upstream_timeout (2 s): closed with 1001 (%s)" % reason)
    cmp_ok(time.monotonic() - t0, "<", 5, "... within a few seconds")
    ws.close()
    ok(wait_until(lambda: WS(d.port).status == 101, timeout=5), "once it is gone, a new WebSocket is taken")

# --- the budget ----------------------------------------------------------------
PRICES = os.path.abspath(os.path.join(os.environ.get("top_srcdir") or os.path.join(T_DIR, ".."), "conf", "prices.json"))
with Mock() as mock, Headroomd(extra_conf="prices %s\nbudget 0.01\n" % PRICES) as d:
    ws = WS(d.port, headers={"x-mock-usage": json.dumps({"input_tokens": 5000})})  # $0.0125 on gpt-4o
    ws.send_text(create())
    is_(ws.events()[-1].get("type"), "response.completed", "budget: the first response spends it")
    ok(wait_until(lambda: (d.stats().get("budget") or {}).get("exceeded")), "budget: now exceeded")
    ws.send_text(create(n_items=2))
    ev = ws.events()[-1]
    is_((ev.get("type"), ev.get("status"), (ev.get("error") or {}).get("type")), ("error", 429, "budget_exceeded"),
        "budget: the next response.create gets an error event (429, budget_exceeded)")
    is_(len(ws_messages(mock)), 1, "budget: it did not reach the upstream")
    ws.send_frame(0x8, struct.pack(">H", 1000))
    ws.close_code()
    ws.close()

# --- a provider error event mid-response: one rule for SSE and the WebSocket ---
# The Responses API sends the same `error` event inside a response's stream
# over both transports (its `status` is only for errors refusing a
# response.create). Over SSE it comes after the 200 head; over the WebSocket
# it must be booked alike on every surface: status 200, not failed, `error`
# null, credited as a stream that broke after its 200 is.
with Mock() as mock, Headroomd(extra_conf=CONF + SINKS) as d:
    r = stream(d.url + "/v1/responses", {"model": "gpt-4o-sse-error", "stream": True, "store": False,
                                         "input": create()["input"]},
               headers={"x-mock-stream-error": "server_error", "Authorization": "Bearer sk-test"})
    last = sse_events(r.body)[-1:] or [("", b"{}")]
    is_((r.status, last[0][0]), (200, "error"), "SSE: the provider's error event after the 200 head")
    ws = WS(d.port, headers={"x-mock-stream-error": "server_error"})
    ws.send_text(create(model="gpt-4o-ws-error"))
    ev = ws.events()[-1]
    is_((ev.get("type"), ev.get("status")), ("error", None), "WebSocket: the same error event, no status")
    ws.send_frame(0x8, struct.pack(">H", 1000))
    ws.close_code()
    ws.close()

    def booked_log():
        try:
            with open(os.path.join(d.workspace, "requests.jsonl")) as f:
                lines = [json.loads(x) for x in f if x.strip()]
        except (OSError, ValueError):
            return {}
        return {x["model"]: (x["status"], x["error"], x["credited"], x["streamed"]) for x in lines}
    ok(wait_until(lambda: len(booked_log()) == 2), "request log: a line for each")
    bl = booked_log()
    is_(bl.get("gpt-4o-ws-error"), bl.get("gpt-4o-sse-error"),
        "request log: the WebSocket's line books it as the SSE one (status, error, credited, streamed)")
    is_(bl.get("gpt-4o-sse-error"), (200, None, True, True), "... status 200, error null, credited, streamed")
    req = d.stats().get("requests", {})
    is_((req.get("by_status"), req.get("failed")), ({"200": 2}, 0), "/stats: by_status {200: 2}, none failed")
    m = d.get("/metrics").text
    like(m, r'(?m)^headroom_responses_total\{code="200"\} 2$', "/metrics: responses_total{code=200} 2")
    ok(not re.search(r'(?m)^headroom_responses_total\{code="5', m), "/metrics: no 5xx")
    if HAVE_DB:
        def db_rows():
            db = sqlite3.connect(os.path.join(d.workspace, "metrics.db"))
            try:
                return dict((x[0], x[1:]) for x in db.execute("SELECT model, status, failed, streamed FROM requests"))
            except sqlite3.Error:
                return {}
            finally:
                db.close()
        ok(wait_until(lambda: len(db_rows()) == 2, timeout=10), "metrics.db: a row for each")
        is_(db_rows(), {"gpt-4o-sse-error": (200, 0, 1), "gpt-4o-ws-error": (200, 0, 1)},
            "metrics.db: both status 200, not failed, streamed")
    else:
        skip("metrics_db.so not built", 2)

# --- the per-key rate limit ----------------------------------------------------
# As a POST meets it: a response.create past the key's rate_limit_rpm gets an
# error event (429, rate_limit_exceeded) and never reaches the upstream; the
# key is the handshake's credential. HEADROOM_TEST_NOW: buckets do not refill.
with Mock() as mock, Headroomd(extra_conf="rate_limit_rpm 2\n", env={"HEADROOM_TEST_NOW": "1800000000"}) as d:
    ws = WS(d.port, headers={"Authorization": "Bearer sk-a"})
    for i in range(2):
        ws.send_text(create(n_items=i + 1))
        is_(ws.events()[-1].get("type"), "response.completed", "rate limit: response.create %d of 2 per minute passes" % (i + 1))
    ws.send_text(create(n_items=3))
    ev = ws.events()[-1]
    err = ev.get("error") or {}
    is_((ev.get("type"), ev.get("status"), err.get("code")), ("error", 429, "rate_limit_exceeded"),
        "rate limit: the third in the minute gets an error event (429, rate_limit_exceeded)")
    like(err.get("message", ""), r"rate_limit_rpm", "rate limit: the message names the setting to raise")
    is_(len(ws_messages(mock)), 2, "rate limit: it did not reach the upstream")
    other = WS(d.port, headers={"Authorization": "Bearer sk-b"})
    other.send_text(create())
    is_(other.events()[-1].get("type"), "response.completed", "rate limit: another key's WebSocket is not limited")
    ws.send_text(create())
    is_(ws.events()[-1].get("type"), "error", "rate limit: the first key stays limited on its open WebSocket")
    ok(wait_until(lambda: (d.stats().get("requests") or {}).get("rate_limited") == 2),
       "rate limit: /stats requests.rate_limited counts both refusals")
    for c in (ws, other):
        c.send_frame(0x8, struct.pack(">H", 1000))
        c.close_code()
        c.close()

# Tokens are charged too (after compression): a response.create larger than
# the whole tpm allowance passes on a full bucket and leaves it in debt.
with Mock() as mock, Headroomd(extra_conf="rate_limit_tpm 10\n", env={"HEADROOM_TEST_NOW": "1800000000"}) as d:
    ws = WS(d.port)
    ws.send_text(create(n_items=4))
    is_(ws.events()[-1].get("type"), "response.completed", "rate limit tpm: the first response.create passes")
    ws.send_text(create())
    err = ws.events()[-1].get("error") or {}
    ok(err.get("code") == "rate_limit_exceeded" and "rate_limit_tpm" in err.get("message", ""),
       "rate limit tpm: its tokens were charged, the next one is refused naming rate_limit_tpm")
    ws.send_frame(0x8, struct.pack(">H", 1000))
    ws.close_code()
    ws.close()

# --- an https upstream --------------------------------------------------------
certs = tempfile.mkdtemp(prefix="hr-ws-certs-")
try:
    make_certs(certs)
    have_openssl = True
except (OSError, subprocess.CalledProcessError):
    have_openssl = False
if not have_openssl:
    skip("openssl command missing", 4)
else:
    with Mock(tls_certs=certs) as mock, \
            Headroomd(extra_conf=CONF.replace("sink metrics_db { }\n", "") + "openai_api_url %s\n" % mock.tls_url,
                      env={"SSL_CERT_FILE": os.path.join(certs, "ca.pem")}) as d:
        ws = WS(d.port)
        is_(ws.status, 101, "https upstream: the upgrade is answered 101")
        ok(ws.accept_ok(), "https upstream: the upstream's Sec-WebSocket-Accept relayed")
        ws.send_text(create(output=ROWS_TEXT), fragments=2)
        evs = ws.events()
        is_(evs[-1].get("type"), "response.completed", "https upstream: the response comes back over TLS")
        msgs = ws_messages(mock)
        sent = json.loads(base64.b64decode(msgs[-1]["body_b64"])) if msgs else {}
        cmp_ok(len(json.dumps(sent)), "<", len(ROWS_TEXT) * 0.5, "https upstream: the message went compressed")
        ws.send_frame(0x8, struct.pack(">H", 1000))
        ws.close_code()
        ws.close()
shutil.rmtree(certs, True)

# --- backpressure: a client that does not read -----------------------------
# The mock answers with 24 MB of text deltas as fast as it can write; while
# the client reads nothing, headroomd stops reading the upstream once about
# 1 MiB waits for the client, so its memory does not grow with the answer;
# read afterwards, every byte arrives.
def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(next(line for line in f if line.startswith("VmRSS:")).split()[1])


with Mock() as mock, Headroomd() as d:
    BIG = 24 << 20
    ws = WS(d.port, headers={"x-mock-body-bytes": str(BIG), "x-mock-chunks": "96"})
    ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    before = rss_kb(d.proc.pid)
    ws.send_text(create())
    time.sleep(2)  # the upstream writes; the client reads nothing
    grown = (rss_kb(d.proc.pid) - before) // 1024
    if os.environ.get("HEADROOMD_WRAPPER"):
        skip("memory under a wrapper (valgrind) is not the daemon's", 1)
    else:
        cmp_ok(grown, "<", 12, "a client that does not read: headroomd's memory grew %d MB, not by the 24 MB answer"
               % grown)
    ws.sock.settimeout(60)
    evs = ws.events()
    text = "".join(e.get("delta", "") for e in evs if e.get("type") == "response.output_text.delta")
    ok(evs[-1].get("type") == "response.completed" and len(text) >= BIG - (1 << 20),
       "... and once it reads, the whole answer arrives (%d bytes of text, %s)" % (len(text), evs[-1].get("type")))
    ws.close()

# --- websocket no ----------------------------------------------------------
with Mock() as mock, Headroomd(extra_conf="websocket no\n") as d:
    ws = WS(d.port)
    is_(ws.status, 501, "websocket no: the upgrade gets 501")
    ok(b"websocket no" in ws.body, "... saying why")
    ws.close()
    is_([r for r in mock.requests() if r.get("websocket")], [], "nothing reached the upstream")

# --- libcurl upstream client ------------------------------------------------
with Mock() as mock, Headroomd(extra_conf="upstream_client curl\n") as d:
    ws = WS(d.port)
    is_(ws.status, 501, "upstream_client curl: the upgrade gets 501")
    ok(b"libcurl" in ws.body, "... saying it needs the native client")
    ws.close()
done()
