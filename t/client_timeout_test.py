#!/usr/bin/env python3
# client_timeout bounds receiving a request, not answering it: an upstream
# that stays silent longer than client_timeout (a model thinking mid-stream,
# a slow first byte) is waited for under the upstream timeouts, and the
# client gets the whole answer. Before, evhttp's read timer on the client
# connection cut such a stream after client_timeout seconds of silence.
# The request-side deadline and the idle keep-alive limit still apply.
import json
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F401

CLIENT_TIMEOUT = 1
GAP_MS = 2500  # silence from the upstream, well past client_timeout
CHAT = "/v1/chat/completions"

with Mock() as m:
    with Headroomd(mock=m, extra_conf="client_timeout %d\nupstream_timeout 30\n" % CLIENT_TIMEOUT) as h:
        body = dumps(openai_body(stream=True, include_usage=True))
        plain = stream(h.url + CHAT, body, {"x-mock-chunks": "3"})
        ok(plain.complete and b"data: [DONE]" in plain.body, "baseline stream completes")
        events = plain.body[:plain.body.index(b"data: [DONE]")]

        # The upstream writes its stream in two halves with GAP_MS of silence between.
        out0 = h.stats()["tokens"]["output"]
        r = stream(h.url + CHAT, body, {"x-mock-chunks": "3", "x-mock-sse-split": str(len(events) // 2 + 1),
                                        "x-mock-chunk-delay-ms": str(GAP_MS)})
        is_((r.status, r.error), (200, None), "silent mid-stream upstream: 200, no error")
        ok(r.complete, "the stream ends normally")
        gaps = [b[0] - a[0] for a, b in zip(r.pieces, r.pieces[1:])]
        cmp_ok(max(gaps or [0]), ">", CLIENT_TIMEOUT, "the client saw silence longer than client_timeout")
        is_(sse_events(r.body), sse_events(plain.body), "every event arrived, the same as without the silence")
        last = [json.loads(d) for _, d in sse_events(r.body) if d.startswith("{")][-1]
        ok(last.get("usage"), "the usage event after the silence arrived")
        ok(wait_until(lambda: h.stats()["tokens"]["output"] > out0), "its usage is counted")
        is_(m.counters()["aborted"], 0, "the upstream stream was never abandoned")

        # A non-streamed answer whose first byte comes after client_timeout.
        r = request("POST", h.url + CHAT, body=dumps(openai_body()), headers={"x-mock-delay-ms": str(GAP_MS)})
        is_(r.status, 200, "slow first byte past client_timeout: 200")
        ok((r.json() or {}).get("choices"), "the whole JSON answer")

        # After an answer the connection waits for the next request under
        # client_timeout again: the server closes it quietly, no 408.
        r = raw_socket_request(h.port, b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", timeout=10, until="close")
        is_(r.status, 200, "keep-alive request answered")
        ok(r.closed and not r.timed_out, "idle keep-alive connection closed after client_timeout")
        is_(r.data.count(b"HTTP/1.1 "), 1, "closed without a second (408) answer")

        # Each answer starts a fresh idle deadline: requests 0.7 s apart on
        # one connection outlive the first request's deadline (the timer
        # armed then fires, finds the deadline moved, and waits on), and the
        # close comes client_timeout after the last answer.
        def answered(sock):
            """One whole answer (head and Content-Length body): (bytes, still open)."""
            buf = b""
            while True:
                head, sep, rest = buf.partition(b"\r\n\r\n")
                if sep:
                    m_len = re.search(rb"(?im)^content-length: *(\d+)", head)
                    if m_len and len(rest) >= int(m_len.group(1)):
                        return buf, True
                d = sock.recv(65536)
                if not d:
                    return buf, False
                buf += d
        with socket.create_connection(("127.0.0.1", h.port), timeout=10) as s:
            served = []
            for k in range(3):
                if k:
                    time.sleep(0.7)
                s.sendall(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                data, alive = answered(s)
                served.append(alive and data.startswith(b"HTTP/1.1 200"))
            t_last = time.monotonic()
            try:
                eof = s.recv(65536) == b""
            except OSError:
                eof = True
            idle = time.monotonic() - t_last
        is_(served, [True, True, True], "three requests 0.7 s apart on one connection, past the first one's deadline")
        ok(eof and 0.8 <= idle < 5, "closed client_timeout after the last answer (%.2f s)" % idle)

        # The request itself is still on a deadline: a body dribbled for
        # longer than client_timeout gets 408.
        payload = dumps(openai_body(content="x" * 400))
        payload = payload if isinstance(payload, bytes) else payload.encode()
        head = (b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                % (CHAT.encode(), len(payload)))
        got = b""
        with socket.create_connection(("127.0.0.1", h.port), timeout=15) as s:
            s.sendall(head)
            try:
                for i in range(0, 40):  # 8 bytes every 0.25 s: at most 10 s, never the whole body
                    s.sendall(payload[i * 8:i * 8 + 8])
                    time.sleep(0.25)
            except OSError:
                pass  # cut off: read what the daemon said
            try:
                while True:
                    d = s.recv(65536)
                    if not d:
                        break
                    got += d
            except OSError:
                pass
        status, _, rbody = parse_http_response(got)
        is_(status, 408, "a request body dribbled past client_timeout: 408")
        like(rbody.decode("utf-8", "replace"), r"client_timeout", "the 408 names client_timeout")
        is_(h.get("/livez").status, 200, "the daemon keeps serving")

done()
