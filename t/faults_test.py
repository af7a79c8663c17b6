#!/usr/bin/env python3
# Fault suite: a hostile upstream (refuses, stalls, resets mid-JSON and
# mid-SSE, sends invalid SSE, broken chunking, oversized answers and header
# blocks, 429/529 with Retry-After, never closes) and hostile clients
# (slowloris, pipelining, huge bodies and headers, deep JSON, invalid UTF-8,
# duplicate keys, control bytes, absolute-form and dot-segment targets,
# forged Host/Origin). Each case: a clearly shaped answer, counted once,
# nothing credited that did not happen, the daemon keeps serving, and its
# file descriptors return to their baseline.
import json
import os
import re
import socket
import threading
import time

from hrtest import (Headroomd, Mock, anthropic_body, cmp_ok, diag, done, dumps, free_port, is_, like, ok,
                    openai_body, raw_socket_request, request, sse_events, stream, wait_until)

OPENAI_SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"


def chunk(b):
    return b"%x\r\n%s\r\n" % (len(b), b)


def oai_event(obj):
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


USAGE_EVENT = oai_event({"id": "c", "object": "chat.completion.chunk", "choices": [],
                         "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}})
DELTA = oai_event({"id": "c", "object": "chat.completion.chunk",
                   "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]})


class Hostile:
    """An upstream that misbehaves as the request's x-fault header asks."""

    def __init__(self):
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(64)
        self.port = self.srv.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.stop = threading.Event()
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while not self.stop.is_set():
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                d = c.recv(65536)
                if not d:
                    return
                data += d
            head, _, body = data.partition(b"\r\n\r\n")
            hdrs = {}
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                hdrs[k.strip().lower().decode()] = v.strip().decode("latin-1")
            n = int(hdrs.get("content-length", "0"))
            while len(body) < n:
                body += c.recv(65536)
            getattr(self, "f_" + hdrs.get("x-fault", "ok").replace("-", "_"))(c)
        except OSError:
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    @staticmethod
    def rst(c):
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()

    def f_ok(self, c):
        b = json.dumps({"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {
            "role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}).encode()
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(b), b))

    def f_slow_first_byte(self, c):
        time.sleep(4)

    def f_reset_mid_json(self, c):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"id\":\"x\",\"usa")
        time.sleep(0.1)
        self.rst(c)

    def f_reset_mid_sse(self, c):
        c.sendall(OPENAI_SSE_HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunk(DELTA))
        time.sleep(0.2)
        self.rst(c)

    def f_invalid_sse(self, c):
        junk = b"\x00\xff\xfe garbage\r\r\n: comment\ndata: {not json\n\nevent: \x1b[31m\ndata: [DONE\n\n"
        c.sendall(OPENAI_SSE_HEAD + b"Content-Length: %d\r\n\r\n%s" % (len(junk), junk))

    def f_bad_chunked(self, c):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"zz\r\n{}\r\n0\r\n\r\n")

    def f_oversized(self, c):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 300000\r\n\r\n")
        c.sendall(b"{\"pad\":\"" + b"a" * 299980 + b"\"}        ")

    def f_huge_headers(self, c):
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" +
                  b"".join(b"X-Pad-%d: %s\r\n" % (i, b"p" * 1000) for i in range(200)) +
                  b"Content-Length: 2\r\n\r\n{}")

    def f_rate_limited(self, c):
        b = b'{"error":{"message":"slow down","type":"rate_limit_exceeded","param":null,"code":"rate_limit_exceeded"}}'
        c.sendall(b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 7\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (len(b), b))

    def f_overloaded(self, c):
        b = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
        c.sendall(b"HTTP/1.1 529 Overloaded\r\nContent-Type: application/json\r\nRetry-After: 3\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (len(b), b))

    def f_never_closes(self, c):
        c.sendall(OPENAI_SSE_HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunk(DELTA))
        time.sleep(5)

    def f_huge_sse_event_then_usage(self, c):
        big = oai_event({"id": "c", "object": "chat.completion.chunk", "choices": [
            {"index": 0, "delta": {"content": "x" * (3 << 20)}, "finish_reason": None}]})
        c.sendall(OPENAI_SSE_HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
        for i in range(0, len(big), 65536):
            c.sendall(chunk(big[i:i + 65536]))
        c.sendall(chunk(USAGE_EVENT + b"data: [DONE]\n\n") + b"0\r\n\r\n")


def fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def openai_error_shape(r):
    j = r.json() or {}
    e = j.get("error") if isinstance(j, dict) else None
    return isinstance(e, dict) and isinstance(e.get("message"), str) and "type" in e


def stats(h):
    return h.stats()


hostile = Hostile()
dead_port = free_port()
conf = ("host 127.0.0.1\nport @PORT@\nworkers 2\nopenai_api_url %s\nanthropic_api_url http://127.0.0.1:%d\n"
        "upstream_timeout 2\nmax_response_size 64k\nmax_body_size 1m\nmax_header_size 16k\nclient_timeout 3\n"
        "upstream_connect_timeout_ms 1000\nsink prometheus { path /metrics; }\n" % (hostile.url, dead_port))

CHAT = "/v1/chat/completions"
JSON_CT = {"Content-Type": "application/json"}

with Headroomd(conf_text=conf, args=["--log-level", "debug"]) as h:
    time.sleep(0.3)
    base_fds = fds(h.pid)

    def fault(name, body=None, path=CHAT):
        return request("POST", h.url + path, body=dumps(body or openai_body()), headers=dict(JSON_CT, **{"x-fault": name}))

    def failed():
        return stats(h)["requests"]["failed"]

    def tokens():
        t = stats(h)["tokens"]
        return t["input"], t["output"], t["saved"]

    r = fault("ok")
    is_(r.status, 200, "baseline request through the hostile upstream")
    t0 = tokens()

    # --- upstream faults: each a JSON error in the provider's shape, one failure, nothing credited
    cases = [("slow-first-byte", 504), ("reset-mid-json", 502), ("bad-chunked", 502), ("oversized", 502),
             ("huge-headers", 502)]
    for name, want in cases:
        f0 = failed()
        r = fault(name)
        is_(r.status, want, "%s: %d" % (name, want))
        ok(openai_error_shape(r), "%s: OpenAI error shape" % name)
        is_(failed(), f0 + 1, "%s: counted once as failed" % name)
    like(fault("huge-headers").json()["error"]["message"], r"headers exceed \d+ bytes", "huge headers: named, not 'Out of memory'")
    like(fault("oversized").json()["error"]["message"], r"max_response_size", "oversized answer: names the limit")
    is_(tokens()[1:], t0[1:], "no output or savings credited by failed requests")

    # refused: the anthropic upstream points at a closed port
    f0 = failed()
    r = request("POST", h.url + "/v1/messages", body=dumps(anthropic_body()),
                headers=dict(JSON_CT, **{"anthropic-version": "2023-06-01"}))
    is_(r.status, 502, "connection refused upstream: 502")
    j = r.json() or {}
    is_((j.get("type"), (j.get("error") or {}).get("type")), ("error", "api_error"), "refused: Anthropic error shape")
    is_(failed(), f0 + 1, "refused: counted once")

    # 429 / 529 from the provider: relayed as they are, Retry-After kept, not failures
    f0 = failed()
    r = fault("rate-limited")
    is_((r.status, r.header("retry-after")), (429, "7"), "upstream 429 relayed with its Retry-After")
    r = fault("overloaded")
    is_((r.status, r.header("retry-after")), (529, "3"), "upstream 529 relayed with its Retry-After")
    is_(failed(), f0, "provider answers (429/529) are not headroomd failures")

    # streams that break
    for name in ("reset-mid-sse", "never-closes"):
        for attempt in (1, 2):
            f0 = failed()
            r = stream(h.url + CHAT, dumps(openai_body(stream=True)), headers=dict(JSON_CT, **{"x-fault": name}))
            evs = sse_events(r.body)
            last = json.loads(evs[-1][1]) if evs and evs[-1][1].startswith("{") else {}
            if "error" in last:
                break
            # Say what came back if the error event is missing.
            diag("%s attempt %d: status %s, complete %s, error %s, tail %r"
                 % (name, attempt, r.status, r.complete, r.error, r.body[-200:]))
        if not ok(r.status == 200 and "error" in last, "%s: the stream ends with an error event the SDK raises" % name):
            diag(repr(r)[:600])
        wait_until(lambda: failed() > f0, 2)
        is_(failed(), f0 + 1, "%s: counted once as failed" % name)
    r = stream(h.url + CHAT, dumps(openai_body(stream=True)), headers=dict(JSON_CT, **{"x-fault": "invalid-sse"}))
    ok(r.status == 200 and r.complete, "invalid SSE from upstream is relayed, the daemon survives")

    # an SSE event over the parser's bound does not lose the usage after it
    o0 = tokens()[1]
    r = stream(h.url + CHAT, dumps(openai_body(stream=True, include_usage=True)),
               headers=dict(JSON_CT, **{"x-fault": "huge-sse-event-then-usage"}))
    ok(r.complete and len(r.body) > (3 << 20), "a 3 MB SSE event is relayed whole")
    is_(tokens()[1] - o0, 7, "usage sent after the oversized event is still counted")

    # --- hostile clients
    r = raw_socket_request(h.port, b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 104857600\r\n\r\n{" % CHAT.encode(), timeout=5)
    is_(r.status, 413, "100 MB body announced: 413 before it is read")
    ok(r.body and json.loads(r.body)["error"]["message"].find("max_body_size") >= 0, "413 in JSON naming max_body_size")
    r = raw_socket_request(h.port, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"b" * 40000 + b"\r\n\r\n")
    is_(r.status, 431, "oversized header block: 431")
    ok(r.body and "max_header_size" in json.loads(r.body)["error"]["message"], "431 in JSON naming max_header_size")
    r = raw_socket_request(h.port, b"BREW /v1/coffee HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    is_(r.status, 501, "unknown method: 501")
    ok(r.body and json.loads(r.body)["error"]["message"], "501 in JSON")
    r = raw_socket_request(h.port, b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: zz\r\n\r\n")
    is_(r.status, 400, "malformed Content-Length: 400")
    ok(r.body.startswith(b"{"), "400 in JSON")

    t1 = time.monotonic()
    r = raw_socket_request(h.port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Drip: 1\r\n" * 100,
                           chunk=4, send_delay=0.2, timeout=15, until="close")
    is_(r.status, 408, "slowloris dribbling headers: 408 at client_timeout")
    ok(time.monotonic() - t1 < 8, "slowloris cut within client_timeout plus the sweep, not held indefinitely")

    two = (b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
           b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           b"x-fault: ok\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s")
    b = dumps(openai_body())
    b = b if isinstance(b, bytes) else b.encode()
    r = raw_socket_request(h.port, two % (len(b), b), until="close")
    is_(len(re.findall(rb"HTTP/1.1 200", r.data)), 2, "pipelined requests: both answered, in order")

    for name, body, pat in [
            ("depth 100000", b"[" * 100000 + b"]" * 100000, r"not valid JSON|must be a JSON object"),
            ("invalid UTF-8", b'{"model":"m","messages":[{"role":"user","content":"\xff\xfe"}]}', r"not valid JSON"),
            ("duplicate keys", b'{"model":"a","messages":[],"model":"b"}', r"duplicate object key 'model'")]:
        r = request("POST", h.url + CHAT, body=body, headers=dict(JSON_CT, **{"x-fault": "ok"}))
        is_(r.status, 400, "%s: 400" % name)
        ok(openai_error_shape(r) and re.search(pat, r.json()["error"]["message"]), "%s: says what is wrong" % name)

    for target in (b"/v1/../../../admin/secret", b"/v1/models/%2e%2e/%2e%2e/x", b"/v1/a%2Fb", b"/v1//x",
                   b"http://evil.example/v1/models", b"/v1/models\x1b[31m\x07"):
        r = raw_socket_request(h.port, b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        is_(r.status, 400, "path %r refused with 400" % target)
    err = h.stderr_text()
    ok("\x1b" not in err and "\x07" not in err, "no raw ESC or BEL in the process log")
    like(err, r"\\x1b\[31m\\x07", "control bytes from the path are logged escaped")

    r = raw_socket_request(h.port, b"GET /stats HTTP/1.1\r\nHost: attacker.example:8787\r\n\r\n")
    is_(r.status, 403, "foreign Host (DNS rebinding): 403")
    r = raw_socket_request(h.port, b"POST /stats/reset HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\n"
                           b"Content-Length: 0\r\n\r\n")
    is_(r.status, 403, "cross-origin POST /stats/reset: 403")

    # header injection attempts reach neither the upstream's headers nor the label sets
    r = raw_socket_request(h.port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           b"X-Headroom-Stack: wrap_x\r\n injected: 1\r\nContent-Type: application/json\r\n"
                           b"x-fault: ok\r\nContent-Length: %d\r\n\r\n%s" % (len(b), b), until="close", timeout=5)
    ok(r.status in (200, 400), "folded X-Headroom-Stack header: answered (%s)" % r.status)
    r = request("POST", h.url + CHAT, body=dumps(openai_body(model="gpt\r\nX-Evil: 1\x1b")),
                headers=dict(JSON_CT, **{"x-fault": "ok", "X-Headroom-Stack": "bad stack\x01"}))
    is_(r.status, 200, "model name with CR/LF/ESC: proxied")
    ok(r.header("x-evil") is None, "no header injected from the model name")
    metrics = h.get("/metrics").text
    ok(not any(l.startswith("X-Evil") for l in metrics.split("\n")), "no line injected into /metrics by the model name")
    ok("bad stack" not in metrics, "an invalid stack name is ignored")

    # counters say what happened, once
    fams = {m.group(1): float(m.group(2)) for m in
            re.finditer(r'^headroom_refusals_total\{reason="([a-z_]+)"\} (\S+)$', metrics, re.M)}
    cmp_ok(fams.get("body_too_large", 0), ">=", 1, "refusals counted: body_too_large")
    cmp_ok(fams.get("headers_too_large", 0), ">=", 1, "refusals counted: headers_too_large")
    is_(fams.get("slow_client"), 1.0, "refusals counted: slow_client once")
    is_(fams.get("bad_path"), 6.0, "refusals counted: bad_path, once per refused path")
    is_(fams.get("host_not_allowed"), 1.0, "refusals counted: host_not_allowed")

    # still serving; descriptors back to where they were
    r = fault("ok")
    is_(r.status, 200, "the daemon still serves after every fault")
    ok(wait_until(lambda: fds(h.pid) <= base_fds + 2, 8), "file descriptors back to baseline (%d -> %d)"
       % (base_fds, fds(h.pid)))

# --- tokens on /stats and /metrics; a WARN when listening beyond loopback without them
tok_conf = conf.replace("host 127.0.0.1", "host 0.0.0.0") + "stats_token st-1\nmetrics_token mt-1\n"
with Headroomd(conf_text=tok_conf) as h:
    is_(h.get("/stats").status, 401, "stats_token set: /stats without it is 401")
    is_(h.get("/stats", headers={"Authorization": "Bearer st-1"}).status, 200, "/stats with the stats token: 200")
    is_(h.get("/metrics", headers={"Authorization": "Bearer st-1"}).status, 401, "/metrics does not take the stats token")
    is_(h.get("/metrics", headers={"Authorization": "Bearer mt-1"}).status, 200, "/metrics with the metrics token: 200")
    like(h.stderr_text(), r"WARNING:headroom.server:listening on 0.0.0.0.*without admin_token",
         "non-loopback listener without admin_token: WARN naming the risk")

# --- out of file descriptors: accepts pause (no spin), a waiting client gets 503, service resumes
old_wrapper = os.environ.get("HEADROOMD_WRAPPER", "")
os.environ["HEADROOMD_WRAPPER"] = ("prlimit --nofile=96:96 " + old_wrapper).strip()
with Headroomd(conf_text=conf.replace("workers 2", "workers 1")) as h:
    os.environ["HEADROOMD_WRAPPER"] = old_wrapper
    held, answers = [], []
    for _ in range(120):
        try:
            c = socket.create_connection(("127.0.0.1", h.port), timeout=2)
            held.append(c)
        except OSError:
            break
    time.sleep(1.5)
    for c in held:
        c.setblocking(False)
        try:
            answers.append(c.recv(4096))
        except OSError:
            pass
    ok(any(a.startswith(b"HTTP/1.1 503") and b"Retry-After" in a for a in answers),
       "a client beyond the descriptor limit gets 503 with Retry-After")
    for c in held:
        c.close()
    ok(wait_until(lambda: request("GET", h.url + "/livez", quiet=True).status == 200, 5), "serving again once descriptors free up")
    metrics = request("GET", h.url + "/metrics").text
    mm = re.search(r"^headroom_accept_errors_total (\S+)$", metrics, re.M)
    n = float(mm.group(1)) if mm else -1
    ok(1 <= n <= 50, "accept errors counted, a few per second, not millions (%g)" % n)
    is_(len(re.findall(r"cannot accept connections", h.stderr_text())), 1, "one WARN for the episode")
hostile.stop.set()
done()
