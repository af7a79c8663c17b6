#!/usr/bin/env python3
# cut_through_test.py — a body nothing reads before forwarding (`optimize
# no`, non-LLM routes) goes upstream while it arrives (cut-through), through
# the native client: the upstream sees the first half before the client sends
# the second; the bytes are the client's; the late count still reaches
# /stats; keep-alive goes on. And when things go wrong mid-body: the client
# leaving (upstream request aborted, its connection not reused), the upstream
# answering early (413) or closing mid-body (502), the client stalling past
# client_timeout (408), a body over max_body_size (413 before anything is
# forwarded), Expect: 100-continue. `cut_through no` buffers as before.
import hashlib
import json
import os
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import (Headroomd, cmp_ok, done, is_, like, ok, parse_http_response, post_json,  # noqa: E402
                    wait_until)

WAIT = 20.0 if os.environ.get("HEADROOMD_WRAPPER") else 10.0  # valgrind is slow


class Up:
    """An HTTP/1.1 upstream that says how much of each body it has received
    so far. The request's x-up header picks the answer: "echo" (default)
    reads the whole body and answers its length and sha256 (keep-alive);
    "early413" answers 413 after the head and closes; "closemid" reads
    64 KiB of the body and closes without answering."""

    def __init__(self):
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.url = "http://127.0.0.1:%d" % self.srv.getsockname()[1]
        self.lock = threading.Lock()
        self.accepted = 0
        self.received = 0      # body bytes of the request being read
        self.bodies = []       # (headers, body) of every whole body
        self.cut_short = 0     # connections that ended inside a body
        threading.Thread(target=self.loop, daemon=True).start()

    def reset(self):
        with self.lock:
            self.received = 0

    def loop(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
            threading.Thread(target=self.conn, args=(c,), daemon=True).start()

    def conn(self, c):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                head, _, buf = buf.partition(b"\r\n\r\n")
                hdrs = {}
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    hdrs[k.strip().lower().decode()] = v.strip().decode("latin-1")
                n = int(hdrs.get("content-length", "0"))
                how = hdrs.get("x-up", "echo")
                if how == "early413":
                    msg = b'{"error":{"message":"too big for me","type":"invalid_request_error"}}'
                    c.sendall(b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\n"
                              b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(msg), msg))
                    time.sleep(0.2)
                    return
                with self.lock:
                    self.received = len(buf)
                while len(buf) < n:
                    if how == "closemid" and len(buf) >= 65536:
                        return
                    d = c.recv(65536)
                    if not d:
                        with self.lock:
                            self.cut_short += 1
                        return
                    buf += d
                    with self.lock:
                        self.received = len(buf)
                body, buf = buf[:n], buf[n:]
                with self.lock:
                    self.bodies.append((hdrs, body))
                ans = json.dumps({"id": "x", "object": "chat.completion", "model": "gpt-4o",
                                  "len": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                                  "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                                               "finish_reason": "stop"}],
                                  "usage": {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8}}).encode()
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                          % (len(ans), ans))
        except OSError:
            with self.lock:
                self.cut_short += 1
        finally:
            c.close()


def big_body(mb=2, tag="a"):
    text = ("%s line of a tool output that nobody compresses here\n" % tag) * (mb * 1024 * 1024 // 55)
    return json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": text}]}).encode()


def head(path, n, extra=""):
    return ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAuthorization: Bearer sk-t\r\n"
            "Content-Length: %d\r\n%s\r\n" % (path, n, extra)).encode()


def read_answer(s, timeout=WAIT):
    """One HTTP answer from socket s: (status, headers, body, closed)."""
    s.settimeout(timeout)
    buf = b""
    while True:
        try:
            d = s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not d:
            break
        buf += d
        if b"\r\n\r\n" in buf:
            h, _, rest = buf.partition(b"\r\n\r\n")
            cl = [int(x.split(b":")[1]) for x in h.split(b"\r\n") if x.lower().startswith(b"content-length:")]
            if cl and len(rest) >= cl[0]:
                break
    status, headers, body = parse_http_response(buf)
    return status, headers, body


def hdr(headers, name):
    for k, v in headers or []:
        if k.lower() == name:
            return v
    return None


def send_half_wait_rest(h, up, path, body, extra="", s=None):
    """Head and the first half; then wait (bounded) until the upstream holds
    body bytes; then the rest. Returns (upstream had bytes, socket)."""
    s = s or socket.create_connection(("127.0.0.1", h.port), timeout=WAIT)
    up.reset()
    half = len(body) // 2
    s.sendall(head(path, len(body), extra) + body[:half])
    early = wait_until(lambda: up.received > 0, timeout=WAIT)
    s.sendall(body[half:])
    return early, s


def upstream_misbehaves(h, how, body):
    """A quarter of the body sent to an upstream answering as x-up `how`
    says, the rest held back; headroomd's answer."""
    s = socket.create_connection(("127.0.0.1", h.port), timeout=WAIT)
    s.sendall(head("/v1/chat/completions", len(body), "x-up: %s\r\n" % how) + body[:len(body) // 4])
    answer = read_answer(s)
    s.close()
    return answer


def status_count(h, code):
    return h.stats()["requests"]["by_status"].get(str(code), 0)


up = Up()
CONF = "host 127.0.0.1\nport @PORT@\nopenai_api_url %s\nanthropic_api_url %s\nworkers 1\noptimize no\n" % (up.url, up.url)

with Headroomd(conf_text=CONF) as h:
    # Cut-through, seen from the upstream: half the body is there before the
    # client sends the rest.
    body = big_body(2)
    early, s = send_half_wait_rest(h, up, "/v1/chat/completions", body)
    ok(early, "the upstream received body bytes while the client still held back half of them")
    status, headers, ans = read_answer(s)
    is_(status, 200, "the cut-through request is answered")
    got = json.loads(ans) if status == 200 else {}
    is_((got.get("len"), got.get("sha256")), (len(body), hashlib.sha256(body).hexdigest()),
        "the upstream got the client's %d bytes exactly" % len(body))
    isnt_close = (hdr(headers, "connection") or "").lower() != "close"
    ok(isnt_close, "the answer keeps the connection alive")

    # Keep-alive: the next request on the same client connection, cut through
    # again, on the same upstream connection.
    accepted = up.accepted
    body2 = big_body(1, "b")
    early, s = send_half_wait_rest(h, up, "/v1/chat/completions", body2, s=s)
    status, _, ans = read_answer(s)
    ok(early and status == 200 and json.loads(ans).get("sha256") == hashlib.sha256(body2).hexdigest(),
       "a second cut-through request on the same client connection: forwarded early, answered, bytes intact")
    is_(up.accepted, accepted, "and it reused the upstream connection")
    s.close()

    # The late count reaches /stats for a cut-through request: tokens as the
    # buffered path counts them.
    ok(wait_until(lambda: h.stats()["requests"]["total"] >= 2, timeout=WAIT), "both requests are in /stats")
    st = h.stats()
    tokens_cut = st["tokens"]["input"]
    cmp_ok(tokens_cut, ">", 100000, "/stats tokens.input counts the cut-through bodies (%d)" % tokens_cut)
    is_(st["tokens"]["sent"], tokens_cut, "/stats tokens.sent: passthrough sends what came")
    is_(st["requests"]["by_model"].get("gpt-4o"), 2, "the model was read from the body for pricing")

    # A non-LLM route (never read, whatever `optimize` says) is cut through too.
    early, s = send_half_wait_rest(h, up, "/v1/embeddings", body2)
    status, _, ans = read_answer(s)
    s.close()
    ok(early and status == 200 and json.loads(ans).get("len") == len(body2),
       "/v1/embeddings: forwarded while it arrived, answered whole")

    # The client goes away mid-body: the upstream request is aborted (its
    # connection closed, not reused), /stats counts a 499, the daemon serves on.
    accepted, cut_short = up.accepted, up.cut_short
    s = socket.create_connection(("127.0.0.1", h.port), timeout=WAIT)
    up.reset()
    s.sendall(head("/v1/chat/completions", len(body)) + body[:len(body) // 2])
    ok(wait_until(lambda: up.received > 0, timeout=WAIT), "client leaving: the upstream had started receiving")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()
    ok(wait_until(lambda: up.cut_short > cut_short, timeout=WAIT),
       "the upstream saw its request end mid-body (aborted)")
    ok(wait_until(lambda: status_count(h, 499) == 1, timeout=WAIT), "/stats counts the request as 499")
    r = post_json(h.url + "/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
                  headers={"Authorization": "Bearer sk-t"})
    is_(r.status, 200, "the daemon serves the next request")
    cmp_ok(up.accepted, ">", accepted, "on a new upstream connection (the aborted one was not reused)")

    # The upstream answers 413 before reading the body (the client holds the
    # rest back): the client gets that answer, and the connection closes
    # (its body was not all read).
    status, headers, ans = upstream_misbehaves(h, "early413", body)
    is_(status, 413, "an early 413 from the upstream reaches the client")
    like(ans, b"too big for me", "with the upstream's own message")
    is_((hdr(headers, "connection") or "").lower(), "close", "and Connection: close")

    # The upstream closes mid-body without answering: a clear 502.
    status, headers, ans = upstream_misbehaves(h, "closemid", body)
    is_(status, 502, "an upstream closing mid-body: 502")
    like(ans, b"could not get an answer from the openai API", "saying the upstream failed")
    is_((hdr(headers, "connection") or "").lower(), "close", "and Connection: close (the body was not all read)")

    # Expect: 100-continue is answered by headroomd; the upstream gets no Expect.
    s = socket.create_connection(("127.0.0.1", h.port), timeout=WAIT)
    s.sendall(head("/v1/chat/completions", len(body2), "Expect: 100-continue\r\n"))
    s.settimeout(WAIT)
    cont = s.recv(64)
    like(cont, b"^HTTP/1.1 100 Continue\r\n\r\n", "Expect: 100-continue gets 100 Continue at once")
    n_bodies = len(up.bodies)
    s.sendall(body2)
    status, _, ans = read_answer(s)
    s.close()
    is_(status, 200, "and the body sent after it is forwarded")
    ok(len(up.bodies) > n_bodies and "expect" not in up.bodies[-1][0], "without an Expect header upstream")

    # Over max_body_size: refused at the head, nothing forwarded.
    n_bodies, accepted = len(up.bodies), up.accepted
    up.reset()
    s = socket.create_connection(("127.0.0.1", h.port), timeout=WAIT)
    s.sendall(head("/v1/chat/completions", 64 << 20) + body[:4096])
    status, _, ans = read_answer(s)
    s.close()
    is_(status, 413, "a body over max_body_size: 413 at the head")
    like(ans, b"max_body_size", "naming max_body_size")
    is_((up.received, len(up.bodies)), (0, n_bodies), "and nothing reached the upstream")

# The client stalls mid-body past client_timeout: 408, the upstream request aborted.
with Headroomd(conf_text=CONF + "client_timeout 1\n") as h:
    cut_short = up.cut_short
    s = socket.create_connection(("127.0.0.1", h.port), timeout=WAIT)
    up.reset()
    s.sendall(head("/v1/chat/completions", len(body)) + body[:len(body) // 2])
    status, headers, ans = read_answer(s)
    s.close()
    is_(status, 408, "a client stalling mid-body past client_timeout gets 408")
    like(ans, b"client_timeout", "naming client_timeout")
    ok(wait_until(lambda: up.cut_short > cut_short, timeout=WAIT), "and the upstream request was aborted")
    ok(wait_until(lambda: status_count(h, 408) == 1, timeout=WAIT), "/stats counts it as 408")

def buffered(h, label):
    """Half the body held back: the upstream must see nothing yet; then the
    rest, and the answer."""
    up.reset()
    s = socket.create_connection(("127.0.0.1", h.port), timeout=WAIT)
    s.sendall(head("/v1/chat/completions", len(body)) + body[:len(body) // 2])
    time.sleep(0.5)
    is_(up.received, 0, "%s: nothing reaches the upstream before the body is whole" % label)
    s.sendall(body[len(body) // 2:])
    status, _, ans = read_answer(s)
    s.close()
    is_((status, json.loads(ans).get("sha256") if status == 200 else None), (200, hashlib.sha256(body).hexdigest()),
        "%s: answered, the body intact" % label)


# libcurl carries the request (upstream_client curl): buffered as before.
with Headroomd(conf_text=CONF + "upstream_client curl\n") as h:
    buffered(h, "upstream_client curl")

# cut_through no: the body is read whole first, and counted the same.
with Headroomd(conf_text=CONF + "cut_through no\n") as h:
    buffered(h, "cut_through no")
    s = socket.create_connection(("127.0.0.1", h.port), timeout=WAIT)
    s.sendall(head("/v1/chat/completions", len(body2)) + body2)
    read_answer(s)
    s.close()
    ok(wait_until(lambda: h.stats()["requests"]["total"] >= 2, timeout=WAIT), "both counted")
    is_(h.stats()["tokens"]["input"], tokens_cut, "the buffered path counts the same tokens as cut-through")
done()
