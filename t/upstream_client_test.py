#!/usr/bin/env python3
# The native upstream client (src/upstream_h1.c) against real peers: HTTPS
# with a CA of the test's own (trusted through SSL_CERT_FILE), host-name
# checks, connection reuse, the idle-connection cap and timeout, answers an
# HTTP/1.1 server may legitimately send (chunked with trailers, 100 Continue
# first, HTTP/1.0 to close, 204, folded headers), an upstream that closes
# kept-alive connections, and libcurl taking over when an HTTP proxy is set
# in the environment.
import json
import os
import re
import shutil
import socket
import ssl
import tempfile
import threading
import time

from hrtest import (Headroomd, anthropic_body, cmp_ok, done, is_, like, make_certs, ok, openai_body, post_json,  # noqa: E501
                    raw_socket_request, server_ctx, skip, wait_until)

ANSWER = json.dumps({"id": "x", "object": "chat.completion", "model": "gpt-4o-mini",
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                                  "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}).encode()


def chunk(b, ext=b""):
    return b"%x%s\r\n%s\r\n" % (len(b), ext, b)


def sse_chunk(content=None, usage=None):
    obj = {"id": "s", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
           "choices": [] if usage else [{"index": 0, "delta": {"content": content}, "finish_reason": None}]}
    if usage:
        obj["usage"] = usage
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


# A stream whose events reach headroomd as many HTTP chunks in one read.
SSE_EVENTS = [sse_chunk("Hel"), sse_chunk("lo"), sse_chunk(" there"),
              sse_chunk(usage={"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}), b"data: [DONE]\n\n"]
SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


class Upstream:
    """A keep-alive HTTP/1.1 server (optionally TLS) answering as the
    request's x-answer header asks; counts connections and requests."""

    def __init__(self, tls_ctx=None, close_idle_after=None):
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(64)
        self.port = self.srv.getsockname()[1]
        self.tls_ctx = tls_ctx
        self.close_idle_after = close_idle_after
        self.lock = threading.Lock()
        self.accepted = 0
        self.open = 0
        self.requests = []
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self.conn, args=(c,), daemon=True).start()

    def conn(self, c):
        with self.lock:
            self.accepted += 1
            self.open += 1
        try:
            if self.tls_ctx:
                c = self.tls_ctx.wrap_socket(c, server_side=True)
            buf = b""
            while True:
                if self.close_idle_after is not None:
                    c.settimeout(self.close_idle_after)
                while b"\r\n\r\n" not in buf:
                    try:
                        d = c.recv(65536)
                    except (socket.timeout, ssl.SSLError):
                        return
                    if not d:
                        return
                    buf += d
                c.settimeout(None)
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                hdrs = {}
                for line in lines[1:]:
                    k, _, v = line.partition(b":")
                    hdrs[k.strip().lower().decode()] = v.strip().decode("latin-1")
                n = int(hdrs.get("content-length", "0"))
                while len(buf) < n:
                    buf += c.recv(65536)
                body, buf = buf[:n], buf[n:]
                with self.lock:
                    self.requests.append((lines[0].decode(), hdrs, body))
                if not getattr(self, "a_" + hdrs.get("x-answer", "json").replace("-", "_"))(c, hdrs):
                    return
        except OSError:
            pass
        finally:
            with self.lock:
                self.open -= 1
            try:
                c.close()
            except OSError:
                pass

    # Each answer returns True to keep the connection for another request.
    def a_json(self, c, h):
        time.sleep(float(h.get("x-delay", "0")))
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                  % (len(ANSWER), ANSWER))
        return True

    def a_chunked_trailers(self, c, h):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(0, len(ANSWER), 7):
            c.sendall(chunk(ANSWER[i:i + 7]))
        c.sendall(b"0\r\nX-Checksum: abc\r\n\r\n")
        return True

    def a_sse_packed(self, c, h):
        """Every event a chunk, one cut mid-line into two, one with a chunk
        extension, and the last chunk and a trailer: all in one write."""
        e = SSE_EVENTS
        c.sendall(SSE_HEAD + chunk(e[0]) + chunk(e[1][:9]) + chunk(e[1][9:], b";x=y") + b"".join(map(chunk, e[2:]))
                  + b"0\r\nX-Checksum: abc\r\n\r\n")
        return True

    def a_sse_bad_chunk(self, c, h):
        """Two good chunks, then a chunk-size line that is not hex, in the same write."""
        c.sendall(SSE_HEAD + chunk(SSE_EVENTS[0]) + chunk(SSE_EVENTS[1]) + b"zz\r\n" + SSE_EVENTS[2])
        return False

    def a_continue_first(self, c, h):
        c.sendall(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")
        return self.a_json(c, h)

    def a_http10_to_close(self, c, h):
        c.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + ANSWER)
        return False

    def a_no_content(self, c, h):
        c.sendall(b"HTTP/1.1 204 No Content\r\nX-Kind: none\r\n\r\n")
        return True

    def a_folded(self, c, h):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Folded: one\r\n  two\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (len(ANSWER), ANSWER))
        return True

    def a_smuggle(self, c, h):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\n"
                  b"Content-Length: 6\r\n\r\n{}{}{}")
        return False


def conf(url, extra=""):
    return ("host 127.0.0.1\nport @PORT@\nworkers 1\nopenai_api_url %s\nanthropic_api_url %s\n"
            "upstream_connect_timeout_ms 2000\nupstream_timeout 10\n%s" % (url, url, extra))


CHAT = "/v1/chat/completions"


def concurrent(h, n, delay):
    """n requests at once, each answered after `delay` seconds: their statuses."""
    results = []
    ts = [threading.Thread(target=lambda: results.append(ask(h, extra_headers={"x-delay": delay}).status))
          for _ in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return results


def ask(h, answer="json", extra_headers=None):
    hdrs = {"Authorization": "Bearer sk-test", "x-answer": answer}
    hdrs.update(extra_headers or {})
    return post_json(h.url + CHAT, openai_body(), headers=hdrs)


certs = tempfile.mkdtemp(prefix="hr-certs-")
try:
    have_openssl = shutil.which("openssl") is not None
    if have_openssl:
        make_certs(certs)

    # --- HTTPS, trusted through SSL_CERT_FILE, one connection for many requests
    if not have_openssl:
        skip("openssl command missing", 14)
    else:
        up = Upstream(tls_ctx=server_ctx(certs, "good"))
        env = {"SSL_CERT_FILE": os.path.join(certs, "ca.pem")}
        with Headroomd(conf_text=conf("https://127.0.0.1:%d" % up.port), env=env) as h:
            codes = [ask(h).status for _ in range(20)]
            is_(codes, [200] * 20, "https by IP address: 20 requests answered")
            is_(ask(h).json()["choices"][0]["message"]["content"], "ok", "the answer came through TLS")
            is_(up.accepted, 1, "all requests on one kept-alive TLS connection")
            line, hdrs, body = up.requests[-1]
            is_(line, "POST /v1/chat/completions HTTP/1.1", "request line")
            is_(hdrs.get("host"), "127.0.0.1:%d" % up.port, "Host names the upstream with its port")
            is_(int(hdrs.get("content-length", "-1")), len(body), "Content-Length is the body's length")
            is_(hdrs.get("authorization"), "Bearer sk-test", "credentials forwarded")
        # cut-through over TLS (optimize no): the body goes out while it arrives
        with Headroomd(conf_text=conf("https://127.0.0.1:%d" % up.port, "optimize no\n"), env=env) as h:
            big = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "tls " * 700000}]}).encode()
            head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer sk-test\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(big))
            r = raw_socket_request(h.url, head + big, timeout=30, chunk=1 << 20, send_delay=0.05)
            is_(r.status, 200, "a 2.8 MB body sent in 1 MB pieces, cut through to an https upstream: answered")
            ok(up.requests[-1][2] == big, "the upstream got the body byte for byte")
        with Headroomd(conf_text=conf("https://localhost:%d" % up.port), env=env) as h:
            r = ask(h)
            is_(r.status, 200, "https by host name (resolved without blocking, SNI, name checked)")
        other = Upstream(tls_ctx=server_ctx(certs, "other"))
        with Headroomd(conf_text=conf("https://127.0.0.1:%d" % other.port), env=env) as h:
            r = ask(h)
            is_(r.status, 502, "certificate for another name: 502")
            like(r.json()["error"]["message"], r"certificate verification failed", "the message says why")
        with Headroomd(conf_text=conf("https://127.0.0.1:%d" % up.port),
                       env={"SSL_CERT_FILE": "/nonexistent"}) as h:
            r = ask(h)
            is_(r.status, 502, "untrusted CA: 502")
            like(r.json()["error"]["message"], r"certificate verification failed", "untrusted CA named")
            is_(ask(h).status, 502, "and again (no half-open connection left behind)")

    # --- answers an HTTP/1.1 server may send
    up = Upstream()
    url = "http://127.0.0.1:%d" % up.port
    with Headroomd(conf_text=conf(url)) as h:
        for answer in ("chunked-trailers", "continue-first", "http10-to-close", "folded"):
            r = ask(h, answer)
            is_((r.status, r.json().get("id") if r.status == 200 else None), (200, "x"),
                "%s: the whole answer" % answer)
        r = ask(h, "folded")
        is_(r.headers and [v for k, v in r.headers if k.lower() == "x-folded"], ["one two"],
            "a folded header is joined with a space")
        r = ask(h, "no-content")
        is_((r.status, r.body), (204, b""), "204 has no body")
        r = ask(h, "smuggle")
        is_(r.status, 502, "conflicting Content-Length: 502, not a guess")
        like(r.json()["error"]["message"], r"Content-Length", "the message names the header")
        is_(ask(h).status, 200, "still serving")
        stats = h.stats()
        is_(stats["requests"]["failed"], 1, "only the conflicting answer counted as failed")
        out = stats["tokens"]["output"]
        r = ask(h, "sse-packed")
        events = b"".join(SSE_EVENTS)
        is_((r.status, r.body[:len(events)]), (200, events),
            "a stream of many chunks in one read (one cut mid-line, one with an extension) is relayed byte for byte")
        like(r.body[len(events):].decode(), r"^: headroom [^\n]*\n\n$", "followed only by headroomd's cost comment")
        is_(h.stats()["tokens"]["output"] - out, 7, "and its usage is read from the last event")
        r = ask(h, "sse-bad-chunk")
        is_(r.status, 200, "a stream whose third chunk line is not hex: the stream had started (200)")
        ok(r.body.startswith(SSE_EVENTS[0] + SSE_EVENTS[1]),
           "the two good chunks before it are relayed: %r" % r.body[:80])
        like(r.body[len(SSE_EVENTS[0] + SSE_EVENTS[1]):].decode(), r"^data: \{\"error\".*chunk",
             "then the stream ends with an error event naming the bad chunk")
        is_(ask(h).status, 200, "still serving after the bad chunk")

    # --- the idle pool: capped at upstream_keepalive, closed after upstream_idle_timeout
    up = Upstream()
    url = "http://127.0.0.1:%d" % up.port
    with Headroomd(conf_text=conf(url, "upstream_keepalive 2\nupstream_idle_timeout 1\n")) as h:
        is_(concurrent(h, 6, "0.5"), [200] * 6, "6 concurrent requests answered")
        is_(up.accepted, 6, "6 connections were needed")
        ok(wait_until(lambda: up.open <= 2, 3), "at most upstream_keepalive (2) stay open (%d)" % up.open)
        ok(wait_until(lambda: up.open == 0, 4), "none left after upstream_idle_timeout (1 s)")
        is_(ask(h).status, 200, "a new connection after the idle ones closed")

    # --- more clients than upstream_keepalive, in rounds: the connections the
    # load keeps reusing stay open; a burst's extras close within ~2 s
    up = Upstream()
    url = "http://127.0.0.1:%d" % up.port
    with Headroomd(conf_text=conf(url, "upstream_keepalive 2\nsink prometheus { path /metrics; }\n")) as h:
        for _ in range(5):
            results = concurrent(h, 4, "0.1")
            if results != [200] * 4:
                break
        is_(results, [200] * 4, "4 concurrent requests a round, 5 rounds, answered")
        is_(up.accepted, 4, "4 connections for all 20: none closed and reopened between rounds (%d)" % up.accepted)
        st = h.stats()["upstream"]
        is_(st["connections_opened"], 4, "/stats.upstream.connections_opened: 4")
        ok(2 <= st["idle_connections"] <= 4, "/stats.upstream.idle_connections: the 4 kept, or 2 once trimmed (%d)"
           % st["idle_connections"])
        ok(wait_until(lambda: up.open <= 2, 5), "2 s after the load, upstream_keepalive (2) stay open (%d)" % up.open)
        is_(up.accepted, 4, "none opened meanwhile")
        metrics = h.get("/metrics").body.decode()
        like(metrics, r"(?m)^headroom_upstream_connections_opened_total 4$", "/metrics: 4 connections opened")
        like(metrics, r'(?m)^headroom_upstream_connections_idle\{worker="0"\} 2$', "/metrics: 2 idle on the worker")
        is_(h.stats()["upstream"]["idle_connections"], 2, "/stats.upstream.idle_connections follows the pool")
        is_(h.stats()["upstream"]["connections_opened"], 4, "and connections_opened still 4")

    # --- an upstream that drops kept-alive connections after 0.3 s
    up = Upstream(close_idle_after=0.3)
    url = "http://127.0.0.1:%d" % up.port
    with Headroomd(conf_text=conf(url)) as h:
        codes = []
        for _ in range(4):
            codes.append(ask(h).status)
            time.sleep(0.5)
        is_(codes, [200] * 4, "requests after the upstream closed the idle connection all succeed")
        cmp_ok(up.accepted, ">=", 4, "each one on a new connection")
        is_(h.stats()["requests"]["failed"], 0, "none failed")

    # --- timeouts: a connect that never completes, an answer that never
    # comes. A listener with a full accept queue drops further SYNs, so a
    # connect to it hangs until upstream_connect_timeout_ms.
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    fillers = []
    for _ in range(3):
        f = socket.socket()
        f.setblocking(False)
        f.connect_ex(full.getsockname())
        fillers.append(f)
    time.sleep(0.2)
    silent = Upstream()
    full_url = "http://127.0.0.1:%d" % full.getsockname()[1]
    with Headroomd(conf_text=conf(full_url).replace("upstream_connect_timeout_ms 2000", "upstream_connect_timeout_ms 400")
                   .replace("upstream_timeout 10", "upstream_timeout 2")
                   .replace("anthropic_api_url %s" % full_url, "anthropic_api_url http://127.0.0.1:%d" % silent.port)) as h:
        t0 = time.monotonic()
        r = ask(h)
        took = time.monotonic() - t0
        is_(r.status, 504, "a connect that never completes: 504")
        like((r.json() or {}).get("error", {}).get("message", ""), r"upstream_connect_timeout_ms",
             "naming upstream_connect_timeout_ms")
        ok(0.3 < took < 5, "after upstream_connect_timeout_ms (%.2f s)" % took)
        r = post_json(h.url + "/v1/messages", anthropic_body(),
                      headers={"x-api-key": "k", "anthropic-version": "2023-06-01", "x-answer": "json", "x-delay": "4"})
        is_(r.status, 504, "an answer slower than upstream_timeout, while the pool's timer also served the connect: 504")
        like((r.json() or {}).get("error", {}).get("message", ""), r"upstream_timeout",
             "naming upstream_timeout")
        is_(h.get("/livez").status, 200, "the daemon keeps serving")
    for f in fillers:
        f.close()
    full.close()

    # --- an HTTP proxy in the environment: libcurl takes the request
    class Proxy(Upstream):
        def a_json(self, c, h):
            return super().a_json(c, h)

    proxy = Proxy()
    up = Upstream()
    url = "http://127.0.0.1:%d" % up.port
    penv = {"http_proxy": "http://127.0.0.1:%d" % proxy.port, "no_proxy": ""}
    with Headroomd(conf_text=conf(url), env=penv) as h:
        is_(ask(h).status, 200, "with http_proxy set: answered")
        is_(len(proxy.requests), 1, "through the proxy (libcurl)")
        like(proxy.requests[0][0], r"^POST http://127\.0\.0\.1:%d/v1/chat/completions HTTP/1\.1$" % up.port,
             "in absolute form")
        is_(len(up.requests), 0, "not straight to the upstream")
    with Headroomd(conf_text=conf(url, "upstream_client native\n"), env=penv) as h:
        is_(ask(h).status, 200, "upstream_client native: answered")
        is_((len(proxy.requests), len(up.requests)), (1, 1), "straight to the upstream, the proxy ignored")
    with Headroomd(conf_text=conf(url, "upstream_client curl\n")) as h:
        is_(ask(h, "chunked-trailers").status, 200, "upstream_client curl: answered by libcurl")
    with Headroomd(conf_text=conf(url, "upstream_client fast\n"), wait_ready=False, expect_exit=None) as h:
        h.proc.wait(10)
        ok(h.proc.returncode not in (0, None), "an unknown upstream_client is refused at start")
        with open(h.stderr_path) as f:
            like(f.read(), re.escape(h.conf_path) + r":\d+:\d+: upstream_client: 'fast' must be auto, native or curl",
                 "naming file:line:col, the key, the value and the choices")
finally:
    shutil.rmtree(certs, ignore_errors=True)
done()
