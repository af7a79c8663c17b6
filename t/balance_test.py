#!/usr/bin/env python3
# balance_test.py — balance_connections yes: each worker accepts on its own
# SO_REUSEPORT socket, and a worker that accepts a connection while another
# has fewer open hands it over, so open client connections stay within one
# of each other across the workers (the kernel's hash alone leaves 4 workers
# with 40 connections far apart). headroom_client_connections{worker} in
# /metrics shows the spread; it falls back as clients leave. Handed-over
# connections are served like any other (keep-alive, proxied requests). By
# default (and with `no`) the spread is the kernel's.
import os
import re
import socket
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import Headroomd, Mock, cmp_ok, done, get, is_, like, ok, wait_until  # noqa: E402

WAIT = 20.0 if os.environ.get("HEADROOMD_WRAPPER") else 5.0  # valgrind is slow
BODY = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'


def per_worker(h):
    """headroom_client_connections by worker index (this GET's own connection included)."""
    r = get(h.url + "/metrics")
    return {int(w): int(float(n)) for w, n in
            re.findall(r'(?m)^headroom_client_connections\{worker="(\d+)"\} (\S+)$', r.body.decode())}


def open_clients(h, n):
    """n keep-alive connections, each with one proxied request answered on it."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", h.port), timeout=WAIT)
        socks.append(s)
    for s in socks:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Authorization: Bearer sk-test\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY))
    answered = sum(read_answer(s) == 200 for s in socks)
    return socks, answered


def read_answer(s):
    """One whole Content-Length answer from the socket: its status (0 if cut)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            return 0
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    want = int(length.group(1)) if length else 0
    while len(body) < want:
        chunk = s.recv(65536)
        if not chunk:
            return 0
        body += chunk
    return int(head.split(b" ", 2)[1])


def close_all(socks):
    for s in socks:
        s.close()


with Mock() as m:
    # Four workers, 40 clients: every worker ends within one of the others.
    with Headroomd(mock=m, extra_conf="workers 4\nbalance_connections yes\nsink prometheus { path /metrics; }\n") as h:
        socks, answered = open_clients(h, 40)
        is_(answered, 40, "40 clients, each answered 200 on its connection")
        counts = per_worker(h)
        is_(sorted(counts), [0, 1, 2, 3], "headroom_client_connections has one series per worker")
        is_(sum(counts.values()), 41, "the series add up to the 40 clients and this scrape's connection")
        cmp_ok(max(counts.values()) - min(counts.values()), "<=", 1,
               "open connections within one of each other across 4 workers: %s" % counts)
        # A handed-over connection keeps serving: a second request on each.
        for s in socks:
            s.sendall(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        again = sum(read_answer(s) == 200 for s in socks)
        is_(again, 40, "every connection, wherever it was served, answers its second request")
        close_all(socks)
        ok(wait_until(lambda: sum(per_worker(h).values()) == 1, timeout=WAIT),
           "the gauge falls back to this scrape's own connection once the clients leave")
        # Three rounds of 32 on two workers: 16 and 16 (or 17 and 16 with the scrape).
        spread = []
        for _ in range(3):
            socks, answered = open_clients(h, 32)
            counts = per_worker(h)
            spread.append((answered, sum(counts.values()), max(counts.values()) - min(counts.values())))
            close_all(socks)
            wait_until(lambda: sum(per_worker(h).values()) == 1, timeout=WAIT)
        is_(spread, [(32, 33, 1)] * 3, "each round of 32: all answered, within one of each other")
        ok(h.alive(), "the daemon keeps serving")

    # By default, and with `no`: the kernel's hash alone; the gauge still counts.
    for extra in ("", "balance_connections no\n"):
        with Headroomd(mock=m, extra_conf="workers 2\n" + extra + "sink prometheus { path /metrics; }\n") as h:
            socks, answered = open_clients(h, 16)
            counts = per_worker(h)
            is_((answered, sum(counts.values()), sorted(counts)), (16, 17, [0, 1]),
                "%s: served, and counted by worker" % (extra.strip() or "default"))
            close_all(socks)

    # A value that is not a boolean names the file, the line and the fix.
    h = Headroomd(mock=m, extra_conf="balance_connections maybe\n", wait_ready=False, expect_exit=None)
    h.start()
    h.proc.wait(timeout=20)
    ok(h.proc.returncode not in (0, None), "balance_connections maybe: refused")
    like(h.stderr_text(), r"headroom\.conf:\d+:\d+: .*balance_connections.*'maybe' must be yes or no|"
                          r"headroom\.conf:\d+:\d+: .*'maybe' must be yes or no",
         "the error names the file, line and what the value must be")
done()
