#!/usr/bin/env python3
# Graceful drain: SIGTERM with streams in flight lets them finish (usage and
# savings kept, files flushed, exit 0) while /readyz says 503 and new
# connections are refused; past shutdown_timeout the rest end with the
# provider's error event; a second signal exits at once.
import json
import os
import signal
import socket
import threading
import time

from hrtest import (Headroomd, Mock, anthropic_body, dumps, done, is_, like, ok, openai_body, request,
                    sse_events, stream, wait_until)

SINKS = "sink savings_file { flush_interval 1; }\nbudget 100\n"


def start_stream(h, path, body, headers, out):
    def run():
        out.append(stream(h.url + path, dumps(body), headers=headers, timeout=30))
    t = threading.Thread(target=run)
    t.start()
    return t


def keepalive_get(port, path):
    """Open a connection, GET once (kept alive), return a function that GETs again on it."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)

    def ask():
        s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(4096)
        head, _, rest = data.partition(b"\r\n\r\n")
        n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
        while len(rest) < n:
            rest += s.recv(4096)
        return int(head.split(b" ")[1]), rest
    return ask, s


with Mock() as m:
    # --- streams in flight finish; readiness and new connections say we are leaving
    slow = {"x-mock-chunk-delay-ms": "300", "x-mock-chunks": "6", "Content-Type": "application/json"}
    with Headroomd(extra_conf=SINKS + "shutdown_timeout 20\n") as h:
        ask, sock = keepalive_get(h.port, "/readyz")
        is_(ask()[0], 200, "ready before the signal")
        results = []
        threads = [start_stream(h, "/v1/chat/completions", openai_body(stream=True, include_usage=True), slow, results),
                   start_stream(h, "/v1/messages", anthropic_body(stream=True),
                                dict(slow, **{"anthropic-version": "2023-06-01"}), results)]
        ok(wait_until(lambda: m.counters().get("streams_started", 0) >= 2, 5), "both streams under way")
        time.sleep(0.4)
        t_sig = time.monotonic()
        h.signal(signal.SIGTERM)
        time.sleep(0.2)
        st, body = ask()
        is_(st, 503, "/readyz answers 503 while draining (on an open connection)")
        try:
            c = socket.create_connection(("127.0.0.1", h.port), timeout=2)
            c.sendall(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            got = c.recv(100)
            c.close()
            refused = got == b""
        except OSError:
            refused = True
        ok(refused, "new connections are refused while draining")
        for t in threads:
            t.join(30)
        sock.close()
        is_(len(results), 2, "both streams returned")
        for r in results:
            ok(r.complete and r.status == 200, "stream in flight at SIGTERM completed (%s)" % r.status)
            ok(b"x-headroom" in r.body.lower() or b"headroom" in r.body, "stream ends with headroomd's figures comment")
            ok(b"error" not in r.body, "no error event in a stream that finished in time")
        rc = h.proc.wait(25)
        h.stopped = True
        is_(rc, 0, "exit 0 after the drain")
        ok(time.monotonic() - t_sig < 15, "the drain took as long as the streams, not shutdown_timeout")
        err = h.stderr_text()
        like(err, r"SIGTERM received: draining", "the drain is logged")
        ok("still in flight" not in err, "nothing was aborted")
        sav = json.load(open(os.path.join(h.workspace, "proxy_savings.json")))
        is_(sav.get("lifetime", {}).get("requests"), 2, "savings file flushed at exit with both streamed requests")
        budget = json.load(open(os.path.join(h.workspace, "budget.json")))
        ok(budget.get("spent_usd", 0) > 0, "budget file flushed with the streams' spend")

    # --- past shutdown_timeout: the stream gets the provider's error event, the process exits 0
    slower = {"x-mock-chunk-delay-ms": "1000", "x-mock-chunks": "20", "Content-Type": "application/json",
              "anthropic-version": "2023-06-01"}
    with Headroomd(extra_conf="shutdown_timeout 1\n") as h:
        results = []
        t = start_stream(h, "/v1/messages", anthropic_body(stream=True), slower, results)
        time.sleep(1.2)
        t0 = time.monotonic()
        h.signal(signal.SIGTERM)
        t.join(20)
        rc = h.proc.wait(20)
        h.stopped = True
        took = time.monotonic() - t0
        is_(rc, 0, "exit 0 after aborting what outlived shutdown_timeout")
        ok(took < 8, "exited soon after shutdown_timeout (%.1f s)" % took)
        r = results[0] if results else None
        evs = sse_events(r.body) if r else []
        names = [e[0] for e in evs]
        ok(r is not None and r.status == 200 and "error" in names,
           "the cut stream ends with an Anthropic `event: error` the SDK raises")
        like(h.stderr_text(), r"1 request still in flight at shutdown_timeout", "the abort is logged once")

    # --- a second signal exits at once
    with Headroomd(extra_conf="shutdown_timeout 30\n", expect_exit=None) as h:
        results = []
        t = start_stream(h, "/v1/messages", anthropic_body(stream=True), slower, results)
        time.sleep(1.0)
        h.signal(signal.SIGTERM)
        time.sleep(0.3)
        t0 = time.monotonic()
        h.signal(signal.SIGINT)
        rc = h.proc.wait(10)
        h.stopped = True
        ok(time.monotonic() - t0 < 3, "second signal: exit at once")
        isnt_zero = rc != 0
        ok(isnt_zero, "second signal: exit code says the drain was cut short (%s)" % rc)
        like(h.stderr_text(), r"SIGINT received while draining: exiting now", "second signal logged")
        t.join(10)
done()
