#!/usr/bin/env python3
# fleet_test.py — `backend redis` end to end on a real redis-server started
# here (free loopback port, temp dir): two and three headroomd instances
# behind a round-robin client share one budget (spend adds up to the
# micro-dollar; the first request over it is refused wherever it lands),
# one rate limit per key (exact count, and one more after a refill), the
# CCR store (hash made on A read on B, also through headroom_retrieve) and
# the response cache (an entry headroomd did not write, such as a content
# type with CR LF, is a miss; a gzip-coded body is looked up too); Responses WebSocket messages held to the shared rate
# limit in the order sent; Redis killed, stopped and restarted: fail open /
# closed as configured (and /readyz not ready while closed refuses; /health
# 200 but degraded, saying why), no crash, recovery; originals stored
# during an outage sent once Redis is back (bounded, oldest dropped,
# expired ones not sent) and retrieved on another instance; spend counted
# once when a stalled Redis runs a timed-out add after its re-send; AUTH
# (password, ACL user, percent-encoded in the url) and SELECT refused:
# down, retried, healed when Redis's side is fixed; error replies logged at
# most every 10 s; failed connection attempts counted apart from lost
# connections; a host name looked up off the worker's loop (a DNS server that
# never answers, in a namespace of our own); a reload naming a changed backend block; SIGTERM while a
# request waits for Redis: answered, nothing leaked; headroom_retrieve calls taken out of a
# Responses answer on one instance answered in the follow-up on another (previous_response_id, also
# as a WebSocket response.create; a conversation's forgotten fleet-wide once carried; the follow-up
# sent gzip- or zstd-coded), a forged
# value, calls over the 64 KiB bound, Redis down at the follow-up.
import base64
import gzip
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403
from hrtest import _track  # noqa: E402 (a Bail out! kills the redis-servers too)
from ws_client import WS  # noqa: E402

SRCDIR = os.environ.get("top_srcdir") or os.path.join(T_DIR, "..")
PRICES = os.path.abspath(os.path.join(SRCDIR, "conf", "prices.json"))
REDIS_BIN = shutil.which("redis-server") or ("/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK)
                                             else None)
if not REDIS_BIN:
    # Not a skip: CI installs it (scripts/deps.sh --test), so its absence is a broken setup.
    ok(False, "redis-server is installed (scripts/deps.sh --test installs Debian's redis-server)")
    done()


class Redis:
    """A private redis-server: loopback, free port, temp dir, nothing saved."""

    def __init__(self, *extra):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="hr-redis-")
        self.proc = None
        self.auth = None  # (password,) or (user, password) once Redis asks for one
        self.extra = list(extra)  # more redis-server options

    def start(self):
        args = [REDIS_BIN, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir, "--save", "",
                "--appendonly", "no", "--protected-mode", "yes"] + self.extra
        self.proc = _track(subprocess.Popen(args, stdout=open(os.path.join(self.dir, "log"), "ab"),
                                            stderr=subprocess.STDOUT))
        ok(wait_until(lambda: self.ping(), timeout=10), "redis-server up on 127.0.0.1:%d" % self.port)

    def ping(self):
        try:
            return self.cmd("PING") == "PONG"
        except OSError:
            return False

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            self.proc.wait()
        shutil.rmtree(self.dir, True)

    def cmd(self, *args):
        """One command over RESP; returns str, int, list or None."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        try:
            f = s.makefile("rb")
            for c in ((("AUTH",) + self.auth) if self.auth else None, args):
                if not c:
                    continue
                out = b"*%d\r\n" % len(c) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in
                                                     (x.encode() if isinstance(x, str) else x for x in c))
                s.sendall(out)
                reply = self._read(f)
            return reply
        finally:
            s.close()

    def _read(self, f):
        line = f.readline().rstrip(b"\r\n")
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise RuntimeError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = f.read(n + 2)[:-2]
            return data.decode("utf-8", "replace")
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._read(f) for _ in range(n)]
        raise RuntimeError("bad RESP line %r" % line)


class RoundRobin:
    def __init__(self, daemons):
        self.daemons = daemons
        self.i = 0

    def post(self, path, body, headers=None):
        h = self.daemons[self.i % len(self.daemons)]
        self.i += 1
        return h, post_json(h.url + path, body, headers=headers)


class SlowLink:
    """A TCP relay to Redis whose headroomd-to-Redis direction carries `rate` bytes a second
    (a slow link), or nothing while paused (a Redis that stopped reading). Its receive
    buffer is small, so the bytes wait in headroomd's socket as they would on such a link."""

    def __init__(self, redis_port, rate):
        self.redis_port, self.rate = redis_port, rate
        self.paused = threading.Event()
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        self.deadline = time.monotonic() + 120  # bounded: the relay stops by itself
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        self.lsock.settimeout(1)
        while time.monotonic() < self.deadline:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                continue
            r = socket.create_connection(("127.0.0.1", self.redis_port))
            threading.Thread(target=self._pipe, args=(c, r, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(r, c, False), daemon=True).start()

    def _pipe(self, src, dst, slow):
        chunk = 4096 if slow else 65536
        try:
            while time.monotonic() < self.deadline:
                while slow and self.paused.is_set() and time.monotonic() < self.deadline:
                    time.sleep(0.01)
                b = src.recv(chunk)
                if not b:
                    break
                dst.sendall(b)
                if slow:
                    time.sleep(len(b) / self.rate)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def conf(redis, prefix, extra="", on_error="open"):
    return ("prices %s\n%s\nbackend redis {\n  url redis://127.0.0.1:%d/0\n  prefix %s\n  timeout_ms 1000\n"
            "  on_backend_error %s\n}\n" % (PRICES, extra, redis.port, prefix, on_error))


def chat(model="fleet-test-model", text="hello", **kw):
    b = {"model": model, "messages": [{"role": "user", "content": text}]}
    b.update(kw)
    return b


def backend_stats(h):
    return h.get_json("/stats").get("backend") or {}


def wait_listening(h):
    """For an instance started with wait_ready=False (/readyz may say 503)."""
    ok(wait_until(lambda: request("GET", h.url + "/livez", timeout=2, quiet=True).status == 200, timeout=20),
       "headroomd on port %d answers /livez" % h.port)


def readyz(h):
    r = request("GET", h.url + "/readyz", timeout=5, quiet=True)
    return r.status, r.json() or {}


def refused_lines(h):
    return len(re.findall(r"Redis refused a \w+ command", h.stderr_text()))


def metric(text, name, labels=""):
    m = re.search(r"(?m)^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), text)
    return float(m.group(1)) if m else None


def health_down(h, label, impact):
    """/health with Redis gone: still 200 (a liveness probe must not restart it), status degraded, and
    checks.backend saying it is down, since when, why and what that means."""
    r = request("GET", h.url + "/health", timeout=5, quiet=True)
    j = r.json() or {}
    be = (j.get("checks") or {}).get("backend") or {}
    is_((r.status, j.get("status"), j.get("ready")), (200, "degraded", True),
        "%s: /health answers 200, status degraded (not a liveness failure)" % label)
    is_((be.get("kind"), be.get("up"), be.get("connections_up"), be.get("on_backend_error")),
        ("redis", False, 0, label), "%s: /health checks.backend: redis, not up, no connection up" % label)
    cmp_ok(be.get("connections", 0), ">=", 1, "%s: /health checks.backend counts the connections" % label)
    cmp_ok(be.get("down_seconds", -1), ">=", 0, "%s: /health checks.backend.down_seconds" % label)
    like(be.get("last_error", ""), r"\S", "%s: /health checks.backend.last_error says why (%s)"
         % (label, be.get("last_error")))
    like(be.get("impact", ""), impact, "%s: /health checks.backend.impact says what it means" % label)
    is_(be.get("url"), "redis://127.0.0.1:%d/0" % redis.port, "%s: /health names the Redis" % label)


def health_up(h, label):
    j = h.get_json("/health")
    be = (j.get("checks") or {}).get("backend") or {}
    is_((j.get("status"), be.get("up"), be.get("connections_up") == be.get("connections")), ("healthy", True, True),
        "%s: /health healthy again once Redis is back" % label)
    ok("down_seconds" not in be and "impact" not in be, "%s: ... without the outage's fields" % label)


USAGE_1000 = {"x-mock-usage": json.dumps({"prompt_tokens": 1000, "completion_tokens": 0})}
COST = 0.0025  # 1000 gpt-4o input tokens at $2.50 / M


def budget_round(redis, daemons, prefix, label):
    """Budget $0.009: four requests of $0.0025 pass, the fifth is refused on whichever instance it lands."""
    rr = RoundRobin(daemons)
    hdr = dict(USAGE_1000, authorization="Bearer budget-" + prefix)
    costs = []
    for i in range(4):
        h, r = rr.post("/v1/chat/completions", chat("gpt-4o", "q%d" % i), hdr)
        is_(r.status, 200, "%s: request %d under the budget passes (instance %d)" % (label, i + 1, rr.i % len(daemons)))
        costs.append(r.header("x-headroom-cost-usd"))
    is_(costs, ["%.6f" % COST] * 4, "%s: each request cost $%.4f" % (label, COST))
    keys = redis.cmd("KEYS", prefix + "budget:*")
    is_(len(keys or []), 1, "%s: one spend key for the period in Redis (%s)" % (label, keys))
    spent_micro = int(redis.cmd("GET", keys[0])) if keys else None
    is_(spent_micro, 4 * 2500, "%s: Redis holds the fleet's spend to the micro-dollar (4 x 2500)" % label)
    h, r = rr.post("/v1/chat/completions", chat("gpt-4o", "over"), hdr)
    is_(r.status, 429, "%s: the first request over the budget is refused on instance %d" % (label, daemons.index(h)))
    ok(r.header("retry-after"), "%s: with Retry-After" % label)
    for k, h in enumerate(daemons):
        r = post_json(h.url + "/v1/chat/completions", chat("gpt-4o", "again"), headers=hdr)
        is_(r.status, 429, "%s: instance %d refuses too" % (label, k))
    is_(int(redis.cmd("GET", keys[0])), 4 * 2500, "%s: refused requests spent nothing" % label)


def rate_round(daemons, key, rpm, label):
    rr = RoundRobin(daemons)
    hdr = {"authorization": "Bearer " + key}
    t0 = time.monotonic()
    statuses = [rr.post("/v1/chat/completions", chat(text="r%d" % i), hdr)[1].status for i in range(rpm + 2)]
    took = time.monotonic() - t0
    if took < 0.9 * 60.0 / rpm:  # faster than one refill: the count is exact
        is_(statuses, [200] * rpm + [429, 429], "%s: exactly %d requests per minute across %d instances, then 429"
            % (label, rpm, len(daemons)))
    else:  # a very slow machine (valgrind): the bucket refilled meanwhile, by at most took*rpm/60
        extra = int(took * rpm / 60.0) + 1
        n = statuses.count(200)
        ok(rpm <= n <= rpm + extra and statuses[-1] == 429,
           "%s: %d admitted in %.1f s (limit %d plus at most %d refilled)" % (label, n, took, rpm, extra))
    r = post_json(daemons[0].url + "/v1/chat/completions", chat(text="other key"),
                  headers={"authorization": "Bearer someone-else-" + key})
    is_(r.status, 200, "%s: another API key has its own bucket" % label)


# ---------------------------------------------- kept headroom_retrieve calls, shared
# A Responses answer calling headroom_retrieve beside the client's own tool: headroomd takes
# the retrieve call out and keeps it; the request continuing from that answer must carry its
# output or the provider refuses it. Behind a load balancer that request lands on another
# instance: the kept calls (and the originals they ask for) come from Redis.

prov_seen = []  # bodies the provider got, in order
prov_stored, prov_convs = {}, {}
prov_codings = []  # the Content-Encoding of each POST the provider got


def encode_body(data, coding):
    if coding == "gzip":
        return gzip.compress(data)
    if coding == "deflate":
        return zlib.compress(data)
    return subprocess.run(["zstd", "-q", "-c", "-3"], input=data, capture_output=True, check=True).stdout


def decode_body(data, coding):
    if coding == "gzip":
        return gzip.decompress(data)
    if coding == "deflate":
        return zlib.decompress(data)
    return subprocess.run(["zstd", "-q", "-d", "-c"], input=data, capture_output=True, check=True).stdout


class Provider(BaseHTTPRequestHandler):
    """The Responses API as far as this needs: a stored response or a conversation is continued
    only when every function_call in it has an output (once); headroom_retrieve, when offered
    and no call was made yet, is called beside the client's `shell`."""

    def log_message(self, *a):
        pass

    def do_POST(self):
        data = self.rfile.read(int(self.headers.get("content-length", 0)))
        coding = self.headers.get("content-encoding")
        prov_codings.append(coding)
        if coding in ("gzip", "zstd", "deflate"):  # headroomd sends a changed body coded as the client sent it
            data = decode_body(data, coding)
        body = json.loads(data)
        prov_seen.append(body)
        out, status = self.turn(body)
        data = json.dumps(out).encode()
        self.send_response(status)
        for k, v in (("content-type", "application/json"), ("content-length", str(len(data)))):
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        """WebSocket mode (Codex): each response.create is a turn as a POST's, answered by
        events; a refused one by an error event with its status."""
        self.send_response(101)
        accept = base64.b64encode(hashlib.sha1((self.headers.get("sec-websocket-key", "") +
                                                "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        for k, v in (("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept.decode())):
            self.send_header(k, v)
        self.end_headers()
        self.close_connection = True

        def send(opcode, data):
            n = len(data)
            head = bytes([0x80 | opcode]) + (bytes([n]) if n < 126 else bytes([126]) + n.to_bytes(2, "big")
                                             if n < 65536 else bytes([127]) + n.to_bytes(8, "big"))
            self.wfile.write(head + data)
        while True:
            b0, b1 = self.rfile.read(2)
            n = b1 & 0x7F
            n = int.from_bytes(self.rfile.read(2 if n == 126 else 8), "big") if n >= 126 else n
            mask = self.rfile.read(4) if b1 & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i & 3] for i, b in enumerate(self.rfile.read(n)))
            if b0 & 0x0F == 0x8:
                send(0x8, data[:2])
                return
            body = json.loads(data)
            prov_seen.append(body)
            out, status = self.turn(body)
            if status != 200:
                send(0x1, json.dumps({"type": "error", "status": status, "error": out["error"]}).encode())
                continue
            for t, st in (("response.created", "in_progress"), ("response.completed", "completed")):
                send(0x1, json.dumps({"type": t, "response": dict(out, status=st)}).encode())

    def turn(self, body):
        prev, conv = body.get("previous_response_id"), body.get("conversation")
        if prev and prev not in prov_stored:
            return {"error": {"message": "Previous response with id '%s' not found." % prev,
                              "type": "invalid_request_error", "param": "previous_response_id"}}, 400
        inp = body.get("input", [])
        inp = [{"role": "user", "content": inp}] if isinstance(inp, str) else inp
        items = list(prov_stored.get(prev, [])) + list(prov_convs.get(conv, [])) + inp
        outs = [it.get("call_id") for it in items if it.get("type") == "function_call_output"]
        for it in items:
            if it.get("type") == "function_call" and it["call_id"] not in outs:
                return {"error": {"message": "No tool output found for function call %s." % it["call_id"],
                                  "type": "invalid_request_error", "param": "input"}}, 400
        dup = [c for c in outs if outs.count(c) > 1]
        if dup:
            return {"error": {"message": "Duplicate output for call %s." % dup[0],
                              "type": "invalid_request_error", "param": "input"}}, 400
        n = len(prov_stored) + 1
        offered = any(t.get("name") == "headroom_retrieve" for t in body.get("tools", []))
        if offered and not any(it.get("type") == "function_call" and it.get("name") == "shell" for it in items):
            args = {"hash": marker_hash(json.dumps(items))}
            if self.headers.get("x-query-bytes"):  # a model writing an absurd query
                args["query"] = "error " * (int(self.headers["x-query-bytes"]) // 6)
            output = [{"type": "function_call", "id": "fc_hr_%d" % n, "call_id": "call_hr_%d" % n,
                       "name": "headroom_retrieve", "arguments": json.dumps(args), "status": "completed"},
                      {"type": "function_call", "id": "fc_sh_%d" % n, "call_id": "call_sh_%d" % n, "name": "shell",
                       "arguments": "{\"cmd\": \"make test\"}", "status": "completed"}]
        else:
            output = [{"type": "message", "id": "msg_%d" % n, "role": "assistant", "status": "completed",
                       "content": [{"type": "output_text", "text": "ok", "annotations": []}]}]
        rid = "resp_kept%d" % n
        prov_stored[rid] = items + output
        if conv:
            prov_convs[conv] = items + output
        return {"id": rid, "object": "response", "status": "completed", "model": body["model"], "output": output,
                "previous_response_id": prev, "tools": body.get("tools", []),
                "usage": {"input_tokens": 100, "output_tokens": 10, "total_tokens": 110}}, 200


TOOLS = [{"type": "function", "name": n, "parameters": {"type": "object", "properties": {}}}
         for n in ("search_logs", "shell")]


def jbody(r):
    try:
        return json.loads(r.body)
    except ValueError:
        return None


def first_turn(h, label, headers=None, **kw):
    """A turn whose answer calls headroom_retrieve beside shell, on `h`: the client gets shell's call."""
    body = dict({"model": "gpt-5", "tools": TOOLS, "input": [
        {"role": "user", "content": "Which requests failed? (%s)" % label},
        {"type": "function_call", "name": "search_logs", "call_id": "call_search", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_search", "output": ROWS_TEXT}]}, **kw)
    r = post_json(h.url + "/v1/responses", body, headers=headers)
    reply = jbody(r) or {}
    calls = [(it.get("type"), it.get("name")) for it in reply.get("output", [])]
    is_((r.status, calls), (200, [("function_call", "shell")]),
        "%s: headroom_retrieve called beside shell: the client gets shell's call alone" % label)
    sh = [it.get("call_id") for it in reply.get("output", []) if it.get("name") == "shell"]
    return reply.get("id"), (sh or ["?"])[0], marker_hash(json.dumps(prov_seen[-1]["input"]))


def follow_up(h, shell_id, coding=None, **kw):
    """The client's next turn on `h`, its body sent with Content-Encoding `coding` if given."""
    body = dict({"model": "gpt-5", "tools": TOOLS,
                 "input": [{"type": "function_call_output", "call_id": shell_id, "output": "42 passed"}]}, **kw)
    n0 = len(prov_seen)
    if coding:
        r = request("POST", h.url + "/v1/responses", encode_body(json.dumps(body).encode(), coding),
                    {"Content-Type": "application/json", "Content-Encoding": coding})
    else:
        r = post_json(h.url + "/v1/responses", body)
    return r, (prov_seen[-1].get("input") if len(prov_seen) > n0 else None) or []


redis = Redis()
redis.start()
FIX = tempfile.mkdtemp(prefix="hr-fleet-fx-")
subprocess.run([sys.executable, os.path.join(T_DIR, "fixtures", "gen_fixtures.py"), "--out", FIX], check=True,
               capture_output=True)
ROWS_TEXT = json.dumps(json.load(open(os.path.join(FIX, "logs_1000.json"))))
BIG_ROWS = [dict(r, seq=i) for i, r in enumerate(json.loads(ROWS_TEXT) * 6)]  # 1.1 MB as JSON
shutil.rmtree(FIX, True)


def ws_create(text):
    return {"type": "response.create", "model": "fleet-test-model", "store": False, "input": [
        {"role": "user", "content": [{"type": "input_text", "text": text}]}]}


def ws_final(ws):
    """The type (and error status) of the final event of the next response."""
    ev = ws.events()[-1]
    return ev.get("type"), ev.get("status")


def tool_body(model="fleet-test-model"):
    return {"model": model, "messages": [
        {"role": "user", "content": "Which requests failed?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "search_logs", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": ROWS_TEXT}]}


try:
    with Mock() as mock:
        # ---------------------------------------------- two instances: budget, rate limit
        two = [Headroomd(mock=mock, extra_conf=conf(redis, "two:", "budget 0.009\nrate_limit_rpm 5")) for _ in range(2)]
        for h in two:
            h.start()
        rate_round(two, "rate-two", 5, "2 instances")  # an unpriced model: spends nothing
        budget_round(redis, two, "two:", "2 instances")
        for h in two:
            h.stop()

        # ---------------------------------------------- three instances: everything
        # stage_budget_ms: a loaded test machine must not undo the compression this test needs.
        extra = ("budget 0.009\nrate_limit_rpm 12\ncache_ttl 60\nstage_budget_ms 20000\n"
                 "transform router { }\ntransform smart_crusher { }\n"
                 "sink prometheus { path /metrics; }")
        three = [Headroomd(mock=mock, extra_conf=conf(redis, "three:", extra)) for _ in range(3)]
        for h in three:
            h.start()
        A, B, C = three
        st = backend_stats(A)
        is_((st.get("kind"), st.get("connected"), st.get("prefix")), ("redis", True, "three:"),
            "/stats backend: redis, connected, prefix")
        is_(A.get_json("/stats")["ccr"].get("backend"), "redis", "/stats ccr.backend: redis (originals are shared)")
        health_up(A, "3 instances")
        rate_round(three, "rate-key", 12, "3 instances")
        ok(redis.cmd("KEYS", "three:rl:*"), "rate-limit buckets live in Redis")
        # The bucket refills at 12 per minute: one more request fits 5 s later, not two.
        time.sleep(5.2)
        rr = RoundRobin(three)
        statuses = [rr.post("/v1/chat/completions", chat(text="refill %d" % i), {"authorization": "Bearer rate-key"})[1]
                    .status for i in range(2)]
        is_(statuses, [200, 429], "after 5 s exactly one request's worth refilled, fleet-wide")

        # Response cache: the answer A got is B's hit, no upstream call.
        n0 = len(mock.requests())
        body = chat(text="cache me", temperature=0)
        r1 = post_json(A.url + "/v1/chat/completions", body, headers={"authorization": "Bearer cache"})
        r2 = post_json(B.url + "/v1/chat/completions", body, headers={"authorization": "Bearer cache"})
        is_((r1.status, r1.header("x-headroom-cache")), (200, "miss"), "cache: A answers from upstream")
        is_((r2.status, r2.header("x-headroom-cache")), (200, "hit"), "cache: B replays A's answer")
        is_(r2.body, r1.body, "cache: same bytes")
        is_(len(mock.requests()), n0 + 1, "cache: one upstream call for both")
        # The same with a body sent gzip-coded (the openai SDKs may): B decodes it to look it up too.
        gz = {"authorization": "Bearer cache-gz", "Content-Type": "application/json", "Content-Encoding": "gzip"}
        wire = gzip.compress(json.dumps(chat(text="cache me, gzipped", temperature=0)).encode())
        r1 = request("POST", A.url + "/v1/chat/completions", wire, gz)
        r2 = request("POST", B.url + "/v1/chat/completions", wire, gz)
        is_((r1.status, r1.header("x-headroom-cache"), r2.status, r2.header("x-headroom-cache")),
            (200, "miss", 200, "hit"), "cache, a gzip body: A answers from upstream, B replays A's answer")
        is_(len(mock.requests()), n0 + 2, "cache, a gzip body: one upstream call for both")
        # A damaged entry in Redis is a miss, never a crash or a wrong answer.
        for k in redis.cmd("KEYS", "three:cache:*") or []:
            redis.cmd("SET", k, "HR1 not a cached answer")
        r3 = post_json(C.url + "/v1/chat/completions", body, headers={"authorization": "Bearer cache"})
        is_((r3.status, r3.header("x-headroom-cache")), (200, "miss"), "cache: a damaged entry in Redis is a miss")
        is_(len(mock.requests()), n0 + 3, "cache: ... answered from upstream")

        # CCR: compressed on A, original read on B by hash and via the retrieve tool on C.
        c = post_json(A.url + "/v1/compress", tool_body()).json()
        hashes = c.get("ccr_hashes") or []
        ok(hashes, "A compressed the tool output (ccr_hashes %s)" % hashes)
        h0 = hashes[0] if hashes else "0" * 24
        # The store may reach Redis after /v1/compress answers (a helper thread's store goes
        # through a worker's loop): wait for it.
        ok(wait_until(lambda: redis.cmd("EXISTS", "three:ccr:" + h0), timeout=5),
           "the original is in Redis under three:ccr:<hash>")
        st_code, got = get_json(B.url + "/v1/retrieve/" + h0)
        is_(st_code, 200, "B: GET /v1/retrieve/<hash made on A> answers")
        is_((got or {}).get("original_content"), ROWS_TEXT, "B: the original, byte for byte")
        r = post_json(B.url + "/v1/retrieve", {"hash": h0})
        is_(r.status, 200, "B: POST /v1/retrieve works too")
        hdr = {"x-mock-tool-call": "headroom_retrieve", "x-mock-tool-args": json.dumps({"hash": h0})}
        r = post_json(C.url + "/v1/chat/completions", c["request"], headers=hdr)
        is_(r.status, 200, "C: the model's headroom_retrieve call on A's hash is answered")
        like(r.text, r"tool result of %d bytes" % len(ROWS_TEXT), "C: the model got the whole original back")
        cmp_ok(backend_stats(C).get("ccr_fetched", 0), ">=", 1, "C fetched the original from Redis")
        st_code, _ = get_json(B.url + "/v1/retrieve/" + "0" * 24)
        is_(st_code, 404, "an unknown hash is still a 404")
        # Other bytes under an address in Redis (damaged, or written by something else) are
        # not the original its markers point to: a miss, never served.
        meant = "the original this address names"
        ht = hashlib.sha256(meant.encode()).hexdigest()[:24]
        redis.cmd("SET", "three:ccr:" + ht, "other bytes")
        st_code, got = get_json(B.url + "/v1/retrieve/" + ht)
        is_(st_code, 404, "CCR: other bytes under an address in Redis are not served (%s)"
            % ((got or {}).get("original_content"),))
        like(B.stderr_text(), r"WARN.*CCR address %s in Redis holds other bytes" % ht, "CCR: ... a WARN says so")

        # Budget over three instances (after the other scenarios: they used an unpriced model).
        budget_round(redis, three, "three:", "3 instances")
        prom = A.get("/metrics").text
        cmp_ok(metric(prom, "headroom_backend_ops_total", '{kind="rate_limit"}') or 0, ">", 0,
               "/metrics: headroom_backend_ops_total by kind")
        is_(metric(prom, "headroom_backend_up"), 1.0, "/metrics: headroom_backend_up 1")
        ok(metric(prom, "headroom_backend_latency_ms_count"), "/metrics: latency histogram")
        for h in three:
            h.stop()

        # ---------------------------------------------- a cached answer in Redis that headroomd did not write
        # Anything sharing the prefix (another app, a compromised Redis) can write a cache key; its content
        # type becomes a header, its status the status line. Such an entry is a miss (answered upstream,
        # stored again), counted (backend.cache_invalid) and named in a WARN at most every 10 s.
        pz = Headroomd(mock=mock, extra_conf=conf(redis, "poison:", "cache_ttl 60\nmax_response_size 4k"))
        pz.start()
        pbody = chat(text="poison me", temperature=0)
        phdr = {"authorization": "Bearer poison"}
        r = post_json(pz.url + "/v1/chat/completions", pbody, headers=phdr)
        is_((r.status, r.header("x-headroom-cache")), (200, "miss"), "poisoned cache: the first answer is from upstream")
        ct0 = r.header("content-type")
        pkeys = redis.cmd("KEYS", "poison:cache:*") or []
        is_(len(pkeys), 1, "poisoned cache: the answer is cached in Redis")
        pkey = pkeys[0] if pkeys else "poison:cache:x"
        ok(wait_until(lambda: (redis.cmd("GET", pkey) or "").startswith("HR1 200 "), timeout=5),
           "poisoned cache: the stored entry is headroomd's format")
        # A well-formed entry written by hand is served: the format below is the one read back.
        redis.cmd("SET", pkey, 'HR1 200 7 5 0.000100 31\napplication/json; charset=utf-8{"by":"hand"}', "EX", "60")
        r = post_json(pz.url + "/v1/chat/completions", pbody, headers=phdr)
        is_((r.status, r.header("x-headroom-cache"), r.header("content-type"), r.body),
            (200, "hit", "application/json; charset=utf-8", b'{"by":"hand"}'),
            "poisoned cache: a well-formed entry is a hit (the format is understood)")

        def entry(ct, status="200", before="10", after="5", cost="0.000100", body='{"poisoned":true}'):
            ctb = ct.encode("latin-1") if isinstance(ct, str) else ct
            return (b"HR1 %s %s %s %s %d\n" % (status.encode(), before.encode(), after.encode(), cost.encode(),
                                                len(ctb)) + ctb + body.encode())

        bad = [("a CR LF and a header after it", entry("application/json\r\nSet-Cookie: hr=pwned")),
               ("an escape sequence", entry("application/json\x1b[2J")),
               ("a NUL", entry("application/json\x00; x=1")),
               ("a vertical tab", entry("application/\x0bjson")),
               ("a byte over 0x7e", entry("application/json\xff")),
               ("300 bytes", entry("application/" + "j" * 288)),
               ("an empty content type", entry("")),
               ("status 999", entry("application/json", status="999")),
               ("status 302", entry("application/json", status="302")),
               ("a negative token count", entry("application/json", before="-1")),
               ("a cost of nan", entry("application/json", cost="nan")),
               ("a negative cost", entry("application/json", cost="-5.000000")),
               ("a cost of 1e308", entry("application/json", cost="1e308")),
               ("a content type length past the value", entry("application/json")[:-25]),
               ("a body over max_response_size 4k", entry("application/json", body="x" * 5000))]
        n0 = len(mock.requests())
        for label, value in bad:
            redis.cmd("SET", pkey, value, "EX", "60")
            r = post_json(pz.url + "/v1/chat/completions", pbody, headers=phdr)
            is_((r.status, r.header("x-headroom-cache"), r.header("content-type"), r.header("set-cookie")),
                (200, "miss", ct0, None), "poisoned cache (%s): a miss, upstream's content type" % label)
            ok(b"poisoned" not in r.body, "poisoned cache (%s): not the stored body" % label)
            # Answered upstream and stored again: wait for that before writing the next bad one.
            wait_until(lambda: redis.cmd("GET", pkey) != value.decode("utf-8", "replace"), timeout=2)
        is_(len(mock.requests()), n0 + len(bad), "poisoned cache: each bad entry was answered upstream")
        is_(backend_stats(pz).get("cache_invalid"), len(bad), "poisoned cache: /stats backend.cache_invalid counts them")
        log = pz.stderr_text()
        is_(len(re.findall(r"WARN.*cached answer poison:cache:[0-9a-f]+ in Redis \(\d+ bytes\) is not one headroomd "
                           r"stored: .*; not used", log)), 1,
            "poisoned cache: one WARN for %d bad entries within 10 s" % len(bad))
        ok("Set-Cookie" not in log and "\x1b" not in log and "pwned" not in log,
           "poisoned cache: the WARN does not repeat the value's bytes")
        is_(pz.get_json("/stats").get("cache", {}).get("total_hits"), 1, "poisoned cache: only the good entry hit")
        is_(pz.stop(), 0, "poisoned cache: instance exits 0")

        # ---------------------------------------------- WebSocket messages, shared rate limit
        # Codex's response.create messages (the Responses WebSocket) are held to the
        # fleet's per-key limit as POSTs are: two instances, one bucket; a message
        # sent right behind one that waits for Redis waits its turn (order kept).
        wsd = [Headroomd(mock=mock, extra_conf=conf(redis, "ws:", "rate_limit_rpm 3")) for _ in range(2)]
        for h in wsd:
            h.start()
        t0 = time.monotonic()
        key = {"Authorization": "Bearer ws-key"}
        a, b = WS(wsd[0].port, headers=key), WS(wsd[1].port, headers=key)
        a.send_text(ws_create("one"))
        first = ws_final(a)
        b.send_text(ws_create("two"))
        second = ws_final(b)
        a.send_text(ws_create("three"))
        a.send_text(ws_create("four"))  # sent before the third's verdict is in
        # four's refusal may come while three's answer streams: finals in either order
        third, fourth = sorted([ws_final(a), ws_final(a)], key=lambda f: f[0] != "response.completed")
        b.send_text(ws_create("five"))
        fifth = ws_final(b)
        r = post_json(wsd[0].url + "/v1/chat/completions", chat(text="a POST"), headers={"authorization": "Bearer ws-key"})
        took = time.monotonic() - t0
        if took < 0.9 * 60.0 / 3:  # faster than one refill: the count is exact
            is_([first, second, third], [("response.completed", None)] * 3,
                "WebSocket: 3 response.create per minute pass across 2 instances (one Redis bucket)")
            is_([fourth, fifth], [("error", 429)] * 2,
                "WebSocket: the next ones get an error event (429) on either instance")
            is_(r.status, 429, "WebSocket: a POST with the same key meets the same bucket")
        else:
            diag("slow machine: %.1f s, the bucket refilled meanwhile; order checks only" % took)
        sent = [json.loads(base64.b64decode(m["body_b64"]))["input"][0]["content"][0]["text"]
                for m in mock.requests() if m.get("websocket") is True]
        if took < 0.9 * 60.0 / 3:
            is_(sent, ["one", "two", "three"], "WebSocket: the message sent behind a waiting one waited its turn, "
                "and refused messages never reached the upstream")
        else:
            is_(sent[:3], ["one", "two", "three"], "WebSocket: messages reached the upstream in the order sent")
        c = WS(wsd[1].port, headers={"Authorization": "Bearer ws-other"})
        c.send_text(ws_create("other key"))
        is_(ws_final(c), ("response.completed", None), "WebSocket: another key has its own bucket")
        ok(redis.cmd("KEYS", "ws:rl:*"), "WebSocket: the buckets live in Redis")
        for w in (a, b, c):
            w.close()
        for h in wsd:
            h.stop()
        mock.reset()

        # ---------------------------------------------- CCR originals stored while Redis is down
        # They are kept (by address; the bytes stay in the local store) and sent once Redis is
        # back, with what is left of their ccr_ttl, so another instance can answer a retrieve;
        # at most ccr_max_size bytes of them, the oldest dropped first; expired ones never sent.
        cx = "stage_budget_ms 20000\ntransform router { }\ntransform smart_crusher { }\n"
        qa, qb = [Headroomd(mock=mock, extra_conf=conf(redis, "ccrq:", cx + "ccr_ttl 600")) for _ in range(2)]
        qc = Headroomd(mock=mock, extra_conf=conf(redis, "ccrq:", cx + "ccr_ttl 600\nccr_max_size 400k"))
        qd = Headroomd(mock=mock, extra_conf=conf(redis, "ccrq:", cx + "ccr_ttl 2"))
        for h in (qa, qb, qc, qd):
            h.start()

        def variant(i):
            rows = json.loads(ROWS_TEXT)
            rows[0]["msg"] = "variant %d" % i
            return json.dumps(rows)

        def stored(h, text):
            body = tool_body()
            body["messages"][2]["content"] = text
            c = post_json(h.url + "/v1/compress", body).json() or {}
            return (c.get("ccr_hashes") or ["0" * 24])[0]

        unsent = lambda h: backend_stats(h).get("ccr_unsent") or {}

        # An original stored again (an agent resends its tool outputs each turn) lives
        # ccr_ttl from that store in Redis as it does locally: another instance can still
        # answer for it after ccr_ttl from its first store.
        ta, tb = [Headroomd(mock=mock, extra_conf=conf(redis, "ccrttl:", cx + "ccr_ttl 4")) for _ in range(2)]
        for h in (ta, tb):
            h.start()
        ht = stored(ta, ROWS_TEXT)
        time.sleep(2.5)
        stored(ta, ROWS_TEXT)  # the next turn
        # The store reaches Redis after /v1/compress answers: wait for it (a TTL
        # that was not renewed only goes down, to 1 here, so this cannot pass by waiting).
        for _ in range(20):
            ttl = redis.cmd("TTL", "ccrttl:ccr:" + ht)
            if isinstance(ttl, int) and ttl >= 3:
                break
            time.sleep(0.05)
        ok(isinstance(ttl, int) and ttl >= 3, "stored again: its TTL in Redis is renewed to ccr_ttl 4 (%s)" % ttl)
        time.sleep(2)
        is_(get_json(tb.url + "/v1/retrieve/" + ht)[0], 200,
            "stored again: 4.5 s after the first store (ccr_ttl 4) another instance still answers for it")
        for h in (ta, tb):
            h.stop()

        # The same 1 MB tool output resent on 20 turns: its bytes go to Redis once, the
        # other turns only renew its expiry; one Redis lost (DEL) is sent again in full.
        big = json.dumps(BIG_ROWS)
        rs = Headroomd(mock=mock, extra_conf=conf(redis, "ccrre:", cx + "ccr_ttl 600"))
        rs.start()
        net_in = lambda: int(re.search(r"total_net_input_bytes:(\d+)", redis.cmd("INFO", "stats")).group(1))
        puts = lambda: ((backend_stats(rs).get("ops") or {}).get("ccr_put"), backend_stats(rs).get("errors"))
        before = net_in()
        hb = [stored(rs, big)]
        # An agent's next turn comes after this one's answer: the first store is in Redis by then.
        ok(wait_until(lambda: puts() == (1, 0), timeout=10), "resent: the first store answered by Redis")
        hb += [stored(rs, big) for _ in range(19)]
        ok(wait_until(lambda: puts() == (20, 0), timeout=10), "resent 20 times: 20 stores answered by Redis (%s)"
           % (puts(),))
        sent = net_in() - before
        diag("20 turns resending a %d-byte original: %d bytes reached Redis" % (len(big), sent))
        is_(len(set(hb)), 1, "resent 20 times: one address")
        cmp_ok(sent, "<", len(big) * 1.5, "resent 20 times: Redis received the %d-byte original once, not 20 times "
               "(%d bytes in all)" % (len(big), sent))
        is_(redis.cmd("STRLEN", "ccrre:ccr:" + hb[0]), len(big), "resent 20 times: Redis holds the original")
        redis.cmd("EXPIRE", "ccrre:ccr:" + hb[0], "100")
        stored(rs, big)
        ok(wait_until(lambda: (redis.cmd("TTL", "ccrre:ccr:" + hb[0]) or 0) > 590, timeout=5),
           "resent: its expiry in Redis is renewed to ccr_ttl 600 (%s)" % redis.cmd("TTL", "ccrre:ccr:" + hb[0]))
        redis.cmd("DEL", "ccrre:ccr:" + hb[0])
        stored(rs, big)
        ok(wait_until(lambda: redis.cmd("STRLEN", "ccrre:ccr:" + hb[0]) == len(big), timeout=5),
           "resent after Redis lost it: the bytes are sent again")
        ttl = redis.cmd("TTL", "ccrre:ccr:" + hb[0])
        ok(isinstance(ttl, int) and ttl > 590, "resent after Redis lost it: with ccr_ttl 600 (%s)" % ttl)
        is_(backend_stats(rs).get("errors"), 0, "resent: no Redis command failed")
        is_(rs.stop(), 0, "resent: instance exits 0")
        redis.kill()
        ok(wait_until(lambda: not any(backend_stats(h).get("connected") for h in (qa, qc, qd)), timeout=10),
           "outage: the instances see Redis gone")
        t_stored = time.monotonic()
        ha = stored(qa, ROWS_TEXT)
        hc = [stored(qc, variant(i)) for i in range(4)]
        hd = stored(qd, variant(9))
        is_((unsent(qa).get("waiting"), unsent(qa).get("bytes")), (1, len(ROWS_TEXT)),
            "outage: A keeps the original Redis could not take (/stats backend.ccr_unsent)")
        is_((unsent(qc).get("waiting"), unsent(qc).get("dropped")), (2, 2),
            "outage: at most ccr_max_size (400k) of them: 2 of 4 originals of 174 kB kept, the 2 oldest dropped")
        is_(get_json(qb.url + "/v1/retrieve/" + ha)[0], 404, "outage: B cannot answer for A's original yet")
        time.sleep(max(0.0, 3.0 - (time.monotonic() - t_stored)))  # D's ccr_ttl 2 passes
        redis.start()
        ok(wait_until(lambda: all(backend_stats(h).get("connected") for h in (qa, qb, qc, qd)), timeout=10),
           "outage over: reconnected")
        ok(wait_until(lambda: unsent(qa).get("sent") == 1 and unsent(qc).get("sent") == 2, timeout=10),
           "outage over: the kept originals are sent (A 1, C 2)")
        is_(unsent(qa).get("waiting"), 0, "outage over: none left waiting")
        ttl = redis.cmd("TTL", "ccrq:ccr:" + ha)
        ok(isinstance(ttl, int) and 560 <= ttl <= 597, "outage over: sent with what is left of ccr_ttl 600, "
           "not a fresh 600 s (TTL %s, stored %.1f s before)" % (ttl, time.monotonic() - t_stored))
        st_code, got = get_json(qb.url + "/v1/retrieve/" + ha)
        is_((st_code, (got or {}).get("original_content") == ROWS_TEXT), (200, True),
            "outage over: B answers a retrieve for the original A stored during the outage, byte for byte")
        is_([get_json(qb.url + "/v1/retrieve/" + h)[0] for h in hc], [404, 404, 200, 200],
            "outage over: C's 2 newest originals are shared, the 2 dropped are not")
        ok(wait_until(lambda: unsent(qd).get("expired") == 1, timeout=10),
           "outage over: an original past its ccr_ttl is not sent (counted expired)")
        is_(redis.cmd("EXISTS", "ccrq:ccr:" + hd), 0, "outage over: ... and is not in Redis")
        for h in (qa, qb, qc, qd):
            is_(h.stop(), 0, "outage: instance exits 0 (nothing leaked)")

        # ---------------------------------------------- Redis down: fail open, then recovery
        extra = "budget 1000\nrate_limit_rpm 3\ncache_ttl 60\nsink prometheus { path /metrics; }"
        op = [Headroomd(mock=mock, extra_conf=conf(redis, "open:", extra)) for _ in range(2)]
        for h in op:
            h.start()
        r = post_json(op[0].url + "/v1/chat/completions", chat("gpt-4o", "before"), headers=USAGE_1000)
        is_(r.status, 200, "open: a request with Redis up")
        # Its spend goes to Redis after the answer: let it land first, or it is
        # re-sent after the outage too and the total below is $0.0125.
        ok(wait_until(lambda: redis.cmd("GET", (redis.cmd("KEYS", "open:budget:*") or ["x"])[0]) == "2500",
                      timeout=10), "open: the spend made with Redis up reached it")
        redis.kill()
        for i in range(4):  # more than rate_limit_rpm 3: unchecked while Redis is gone
            r = post_json(op[i % 2].url + "/v1/chat/completions", chat("gpt-4o", "down %d" % i), headers=USAGE_1000)
            is_(r.status, 200, "open: Redis killed, request %d still answered" % (i + 1))
        st = backend_stats(op[0])
        is_(st.get("connected"), False, "open: /stats backend says disconnected")
        health_down(op[0], "open", r"budget and rate limit are not enforced \(on_backend_error open\)")
        cmp_ok(st.get("disconnects", 0), ">=", 1, "open: the lost connections are counted as disconnects")
        like(op[0].stderr_text(), r"WARN.*Redis at 127\.0\.0\.1:%d unavailable \(.*\); on_backend_error open: budget "
             r"and rate limit unchecked until it is back" % redis.port, "open: the WARN names the mode and its effect")
        is_(readyz(op[0])[0], 200, "open: /readyz still ready (requests go on unchecked)")
        cmp_ok(st.get("fail_open", 0), ">=", 1, "open: requests let through are counted")
        prom = op[0].get("/metrics").text
        is_(metric(prom, "headroom_backend_up"), 0.0, "open: headroom_backend_up 0")
        cmp_ok(metric(prom, "headroom_backend_unchecked_total", '{decision="open"}') or 0, ">=", 1,
               "open: headroom_backend_unchecked_total{decision=open}")
        ok(all(h.alive() for h in op), "open: both instances alive")
        redis.start()
        ok(wait_until(lambda: all(backend_stats(h).get("connected") for h in op), timeout=10),
           "open: both instances reconnect after Redis is back")
        health_up(op[0], "open")
        # The spend of the 4 requests made while Redis was gone is sent on reconnect
        # (this Redis starts empty: it holds exactly that).
        spent = lambda: redis.cmd("GET", (redis.cmd("KEYS", "open:budget:*") or ["x"])[0])
        if not ok(wait_until(lambda: spent() == "10000", timeout=10),
                  "open: spend made during the outage reaches Redis after it ($0.01)"):
            diag("Redis holds %r micro-dollars" % spent())
        statuses = [post_json(op[i % 2].url + "/v1/chat/completions", chat(text="after %d" % i),
                              headers={"authorization": "Bearer after"}).status for i in range(4)]
        is_(statuses, [200, 200, 200, 429], "open: the shared rate limit is enforced again")

        # Redis stopped (SIGSTOP): answers stop coming; the timeout, not the request, gives.
        redis.proc.send_signal(signal.SIGSTOP)
        r = post_json(op[1].url + "/v1/chat/completions", chat(text="stalled"), headers={"authorization": "Bearer s"})
        is_(r.status, 200, "stalled Redis: answered after timeout_ms (fail open)")
        cmp_ok(backend_stats(op[1]).get("timeouts", 0), ">=", 1, "stalled Redis: the timeout is counted")
        redis.proc.send_signal(signal.SIGCONT)
        ok(wait_until(lambda: backend_stats(op[1]).get("connected"), timeout=10), "stalled Redis: reconnected")
        for h in op:
            h.stop()

        # ---------------------------------------------- on_backend_error closed
        cl = Headroomd(mock=mock, extra_conf=conf(redis, "closed:", "budget 1000\nrate_limit_rpm 100", "closed"))
        cl.start()
        r = post_json(cl.url + "/v1/chat/completions", chat(text="up"))
        is_(r.status, 200, "closed: answered with Redis up")
        redis.kill()
        r = post_json(cl.url + "/v1/chat/completions", chat(text="down"))
        is_(r.status, 503, "closed: Redis gone -> 503")
        like(cl.stderr_text(), r"WARN.*Redis at 127\.0\.0\.1:%d unavailable \(.*\); on_backend_error closed: model "
             r"requests get 503 until it is back" % redis.port, "closed: the WARN names the mode and its effect")
        ok(r.header("retry-after"), "closed: with Retry-After")
        like(r.text, r"on_backend_error", "closed: the error says why")
        st_code, _ = get_json(cl.url + "/v1/retrieve/" + "1" * 24)
        is_(st_code, 404, "closed: CCR still fails open (a miss)")
        is_(cl.get_json("/stats")["backend"]["fail_closed"], 1, "closed: the refusal is counted")
        ws = WS(cl.port)
        ws.send_text(ws_create("down"))
        ev = ws.events()[-1]
        is_((ev.get("type"), ev.get("status")), ("error", 503), "closed: a WebSocket message gets an error event (503)")
        like((ev.get("error") or {}).get("message", ""), r"on_backend_error", "closed: the event says why")
        ws.send_text(ws_create("down again"))
        is_(ws_final(ws), ("error", 503), "closed: the WebSocket stays open for the next message")
        ws.close()
        is_(cl.get_json("/stats")["backend"]["fail_closed"], 3, "closed: the WebSocket refusals are counted")
        code, body = readyz(cl)
        is_((code, body.get("ready")), (503, False), "closed: /readyz not ready while Redis is down (a balancer "
            "stops sending requests that would get 503)")
        like(body.get("reason", ""), r"Redis.*on_backend_error is closed", "closed: /readyz says why")
        health_down(cl, "closed", r"requests that need the budget or rate limit get 503 \(on_backend_error closed\)")
        redis.start()
        ok(wait_until(lambda: backend_stats(cl).get("connected"), timeout=10), "closed: reconnects")
        health_up(cl, "closed")
        is_(readyz(cl), (200, {"ready": True}), "closed: /readyz ready again")
        r = post_json(cl.url + "/v1/chat/completions", chat(text="back"))
        is_(r.status, 200, "closed: answered again once Redis is back")
        cl.stop()

        # ---------------------------------------------- each connection event counted once
        # Redis stopped (SIGSTOP) before the instance starts: the kernel accepts the connection, PING is
        # never answered. Such an attempt is a connect_failure, not also a timeout; timeouts counts
        # established connections dropped for a late answer, and those are not disconnects too.
        redis.proc.send_signal(signal.SIGSTOP)
        try:
            cf = Headroomd(mock=mock, wait_ready=False, extra_conf=conf(
                redis, "once:", "rate_limit_rpm 100\nsink prometheus { path /metrics; }").replace(
                "timeout_ms 1000", "timeout_ms 300"))
            cf.start()
            wait_listening(cf)
            ok(wait_until(lambda: backend_stats(cf).get("connect_failures", 0) >= 3, timeout=20),
               "connect timeouts: the attempts to a stopped Redis fail (connect_failures)")
            st = backend_stats(cf)
            is_((st.get("timeouts"), st.get("disconnects"), st.get("connects")), (0, 0, 0),
                "connect timeouts: counted once, in connect_failures only (%s failures)" % st.get("connect_failures"))
            prom = cf.get("/metrics").text
            is_(metric(prom, "headroom_backend_timeouts_total"), 0.0,
                "connect timeouts: /metrics headroom_backend_timeouts_total stays 0")
            like(cf.stderr_text(), r"unavailable \(no answer within timeout_ms 300\)",
                 "connect timeouts: the WARN says the attempt timed out")
        finally:
            redis.proc.send_signal(signal.SIGCONT)
        ok(wait_until(lambda: backend_stats(cf).get("connected"), timeout=10), "connect timeouts: up once Redis runs")
        st0 = backend_stats(cf)
        redis.proc.send_signal(signal.SIGSTOP)
        try:
            r = post_json(cf.url + "/v1/chat/completions", chat(text="late"), headers={"authorization": "Bearer once"})
            is_(r.status, 200, "a late answer: the request goes on (on_backend_error open)")
            st = backend_stats(cf)
            is_((st.get("timeouts"), st.get("disconnects")), (1, 0),
                "a late answer: one timeout, not also a disconnect")
        finally:
            redis.proc.send_signal(signal.SIGCONT)
        ok(wait_until(lambda: backend_stats(cf).get("connected"), timeout=10), "a late answer: reconnected")
        st = backend_stats(cf)
        is_(st.get("connects") - st0.get("connects"), st.get("timeouts") + st.get("disconnects") - st0.get("disconnects"),
            "every connection established since was lost once, by a timeout or a disconnect")
        is_(cf.stop(), 0, "connect timeouts: instance exits 0")

        # ---------------------------------------------- a host name: resolved off the worker's loop
        # hiredis resolved it inside redisAsyncConnect, on the worker's loop: a resolver that does not
        # answer stalled every request of that worker, on every reconnect (18 s for one /livez).
        ln = Headroomd(mock=mock, extra_conf=conf(redis, "byname:", "rate_limit_rpm 100").replace(
            "redis://127.0.0.1:", "redis://localhost:"))
        ln.start()
        ok(wait_until(lambda: backend_stats(ln).get("connected"), timeout=10), "url by host name (localhost): connected")
        r = post_json(ln.url + "/v1/chat/completions", chat(text="by name"), headers={"authorization": "Bearer byname"})
        is_(r.status, 200, "url by host name: a request is answered")
        ok(redis.cmd("KEYS", "byname:rl:*"), "url by host name: its rate-limit bucket is in Redis")
        is_(ln.stop(), 0, "url by host name: instance exits 0")
        NS_SCRIPT = r"""
import json, os, socket, subprocess, sys, time
sys.path.insert(0, os.environ["HR_T_DIR"])
from hrtest import Headroomd, Mock, request, post_json
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
rc = os.path.join(os.environ["HR_NS_DIR"], "resolv.conf")
open(rc, "w").write("nameserver 127.0.0.1\noptions timeout:3 attempts:1\n")
subprocess.run(["mount", "--bind", rc, "/etc/resolv.conf"], check=True)
silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
silent.bind(("127.0.0.1", 53))  # takes the queries, answers none
with Mock() as mock:
    h = Headroomd(mock=mock, wait_ready=False, extra_conf="workers 1\nrate_limit_rpm 100\nbackend redis {\n"
                  "  url redis://redis.fleet.test:6390/0\n  timeout_ms 200\n  on_backend_error open\n}\n")
    h.start()
    t0, worst, n = time.monotonic(), 0.0, 0
    while time.monotonic() - t0 < 8:
        a = time.monotonic()
        request("GET", h.url + "/livez", timeout=30, quiet=True)
        worst, n = max(worst, time.monotonic() - a), n + 1
        time.sleep(0.05)
    a = time.monotonic()
    r = post_json(h.url + "/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "x"}]})
    took = time.monotonic() - a
    st = json.loads(request("GET", h.url + "/stats", timeout=30, quiet=True).body).get("backend", {})
    code = h.stop()
    print("RESULT " + json.dumps({"worst": worst, "n": n, "post": [r.status, took], "exit": code,
                                  "failures": st.get("connect_failures"),
                                  "warn": [l for l in h.stderr_text().splitlines() if "unavailable" in l][:1]}))
"""
        ns_dir = tempfile.mkdtemp(prefix="hr-fleet-ns-")
        why_not = None
        if not shutil.which("unshare"):
            why_not = "unshare (util-linux) is not installed"
        else:
            try:
                probe = subprocess.run(["unshare", "-rmn", "true"], capture_output=True, text=True, timeout=10)
                if probe.returncode:
                    why_not = "unshare -rmn (user, mount and network namespaces) is not permitted here (%s)" % (
                        (probe.stderr.strip().splitlines() or ["exit %d" % probe.returncode])[-1])
            except (OSError, subprocess.TimeoutExpired) as e:
                why_not = "unshare -rmn could not run (%s)" % e
        if why_not:
            skip(why_not + ": the silent-resolver check needs its own /etc/resolv.conf", 5)
        else:
            out = subprocess.run(["unshare", "-rmn", sys.executable, "-c", NS_SCRIPT], capture_output=True, text=True,
                                 timeout=120, env=dict(os.environ, HR_T_DIR=T_DIR, HR_NS_DIR=ns_dir))
            m = re.search(r"(?m)^RESULT (.*)$", out.stdout)
            res = json.loads(m.group(1)) if m else {}
            if not m:
                diag("namespace run: %s %s" % (out.stdout[-1500:], out.stderr[-1500:]))
            cmp_ok(res.get("worst", 99), "<", 1.0, "silent resolver: the worker's /livez never waits on the lookup "
                   "(worst %.2f s over %s probes in 8 s)" % (res.get("worst", 99), res.get("n")))
            is_(res.get("post", [0])[0], 200, "silent resolver: a request is answered (on_backend_error open)")
            cmp_ok((res.get("post") or [0, 99])[1], "<", 2.0, "silent resolver: ... within timeout_ms, not the "
                   "resolver's timeout (%.2f s)" % (res.get("post") or [0, 99])[1])
            like(" ".join(res.get("warn") or []), r"Redis at redis\.fleet\.test:6390 unavailable \((cannot resolve "
                 r"redis\.fleet\.test|resolving redis\.fleet\.test took longer than timeout_ms 200)",
                 "silent resolver: the WARN names the host and the lookup")
            is_(res.get("exit"), 0, "silent resolver: instance exits 0 with a lookup still running")
        shutil.rmtree(ns_dir, True)

        # ---------------------------------------------- a large original on a slow link
        # timeout_ms bounded each command from when it was queued, so a 2 MB original going
        # out at 1 MB/s was dropped at timeout_ms (the connection with it, every waiting
        # command failed) and, sent again on each reconnect, never reached Redis. Now the
        # bytes going out count as progress; a link that takes none of them for timeout_ms
        # still drops the connection.
        link = SlowLink(redis.port, 1 << 20)
        huge = json.dumps(BIG_ROWS * 2)
        sl = Headroomd(mock=mock, extra_conf=conf(redis, "slow:", cx + "ccr_ttl 600").replace(
            "127.0.0.1:%d/" % redis.port, "127.0.0.1:%d/" % link.port).replace("timeout_ms 1000", "timeout_ms 300"))
        sl.start()
        ok(wait_until(lambda: backend_stats(sl).get("connected"), timeout=10), "slow link: connected")
        t0 = time.monotonic()
        hs = stored(sl, huge)
        arrived = wait_until(lambda: redis.cmd("STRLEN", "slow:ccr:" + hs) == len(huge), timeout=15, interval=0.1)
        took = time.monotonic() - t0
        diag("slow link: a %d-byte original at 1 MiB/s reached Redis in %.1f s (timeout_ms 300)" % (len(huge), took))
        ok(arrived, "slow link: the %d-byte original reaches Redis though sending it takes longer than timeout_ms"
           % len(huge))
        st = backend_stats(sl)
        is_((st.get("timeouts"), st.get("disconnects"), st.get("errors")), (0, 0, 0),
            "slow link: no timeout, no dropped connection, no failed command while it went out")
        # A Redis side that takes none of the bytes (the relay stops reading) is still dropped.
        link.paused.set()
        stored(sl, json.dumps(BIG_ROWS[::-1] * 2))  # another original: its bytes go out after the answer
        t0 = time.monotonic()
        dropped = wait_until(lambda: backend_stats(sl).get("timeouts") == 1, timeout=10, interval=0.05)
        took = time.monotonic() - t0
        diag("slow link paused: dropped after %.2f s (timeout_ms 300)" % took)
        ok(dropped and took < 3.0, "slow link paused: the connection is dropped within a few timeout_ms (%.2f s)" % took)
        like(sl.stderr_text(), r"unavailable \(Redis took none of the \d+ bytes waiting to go to it for timeout_ms 300\)",
             "slow link paused: the WARN says Redis took none of the bytes")
        link.paused.clear()
        link.deadline = 0
        is_(sl.stop(), 0, "slow link: instance exits 0")

        # ---------------------------------------------- a stalled Redis runs a timed-out add late
        # A request's spend add is written to a Redis just stopped (SIGSTOP, longer
        # than timeout_ms): no answer, the connection is dropped, and the add is
        # kept to be sent again. On SIGCONT Redis runs the copy it had queued, and
        # then gets the re-sent one. Each add carries its worker's stream and
        # number, so only one copy counts: the total is the requests' spend exactly.
        sh = Headroomd(mock=mock, extra_conf=conf(redis, "stall:", "budget 1000").replace("timeout_ms 1000",
                                                                                          "timeout_ms 200"))
        sh.start()
        costs, statuses = [], []

        def priced(text, headers=USAGE_1000):
            r = post_json(sh.url + "/v1/chat/completions", chat("gpt-4o", text), headers=headers)
            statuses.append(r.status)
            if r.status == 200:
                costs.append(r.header("x-headroom-cost-usd"))

        for i in range(3):
            priced("before %d" % i)
        for rnd in range(2):
            n = len(mock.requests())
            t = threading.Thread(target=priced, args=("stalled %d" % rnd, dict(USAGE_1000, **{"x-mock-delay-ms": "600"})))
            t.start()
            ok(wait_until(lambda: len(mock.requests()) > n, timeout=10), "stall %d: the request is at the upstream" % rnd)
            redis.proc.send_signal(signal.SIGSTOP)  # its spend goes to a stopped Redis once it is answered
            t.join(30)
            ok(wait_until(lambda: backend_stats(sh).get("unsent_budget_usd", 0) > 0, timeout=10),
               "stall %d: its spend add had no answer (not confirmed)" % rnd)
            priced("while stopped %d" % rnd)  # Redis down: held, sent after the lost one
            time.sleep(1.0)  # reconnect attempts meanwhile
            redis.proc.send_signal(signal.SIGCONT)
            ok(wait_until(lambda: backend_stats(sh).get("connected"), timeout=10), "stall %d: reconnected" % rnd)
        for i in range(3):
            priced("after %d" % i)
        is_(statuses, [200] * 10, "stall: every request answered (fail open while Redis is stopped)")
        want = sum(round(float(c) * 1e6) for c in costs)
        is_(want, 10 * 2500, "stall: 10 requests of $0.0025")
        like(sh.stderr_text(), r"sending again the spend Redis did not answer for", "stall: the lost add was sent again")
        spent = lambda: int(redis.cmd("GET", (redis.cmd("KEYS", "stall:budget:*") or ["x"])[0]) or 0)
        settled = lambda: backend_stats(sh).get("unsent_budget_usd") == 0 and spent() == want
        if not ok(wait_until(settled, timeout=15), "stall: Redis holds exactly the requests' spend (%d micro-dollars), "
                  "nothing left unconfirmed" % want):
            diag("Redis holds %d, /stats unsent_budget_usd %s" % (spent(), backend_stats(sh).get("unsent_budget_usd")))
        time.sleep(1)  # any copy still on its way would land now
        is_(spent(), want, "stall: ... and still exactly that a second later (no copy counted twice)")
        sh.stop()

        # ---------------------------------------------- SELECT refused: down, not database 0
        # redis-server has 16 databases: /99 is refused. Commands must not run in
        # database 0 instead: the connection counts as down (closed: 503, /readyz
        # not ready) and is retried.
        bd = Headroomd(mock=mock, wait_ready=False,
                       extra_conf=conf(redis, "baddb:", "budget 1000\nrate_limit_rpm 100\nsink prometheus { path /metrics; }",
                                       "closed").replace("/0\n", "/99\n"))
        bd.start()
        wait_listening(bd)
        ok(wait_until(lambda: backend_stats(bd).get("connect_failures", 0) >= 4, timeout=15),
           "SELECT refused: each attempt fails, and is retried")
        st = backend_stats(bd)
        is_((st.get("connected"), st.get("connections_up"), st.get("disconnects")), (False, 0, 0),
            "SELECT refused: /stats backend not connected (no connection was ever up)")
        is_(metric(bd.get("/metrics").text, "headroom_backend_up"), 0.0, "SELECT refused: headroom_backend_up 0")
        like(bd.stderr_text(), r"WARN.*refused SELECT: ERR DB index is out of range; fix the database number after "
             r"the / in backend redis \{ url", "SELECT refused: a WARN names the url and what Redis said")
        is_(len(re.findall(r"refused SELECT", bd.stderr_text())), 2, "SELECT refused: said once per worker, not per retry")
        r = post_json(bd.url + "/v1/chat/completions", chat(text="db 99"))
        is_(r.status, 503, "SELECT refused: on_backend_error closed refuses (503)")
        is_(readyz(bd)[0], 503, "SELECT refused: /readyz not ready")
        is_(redis.cmd("KEYS", "baddb:*"), [], "SELECT refused: nothing written to database 0")
        bd.stop()

        # ---------------------------------------------- ACL user; refused commands logged sparingly
        # The ACL doc/fleet.md gives (keys and commands, scripts' included).
        redis.cmd("ACL", "SETUSER", "hrfleet", "on", ">acl-pw", "~acl:*", *("+get +set +eval +time +hget +hmget +hset "
                                                                            "+incrby +expire +expireat".split()))
        au = Headroomd(mock=mock, extra_conf=conf(redis, "acl:", "budget 1000\nrate_limit_rpm 100\ncache_ttl 60").replace(
            "redis://", "redis://hrfleet:acl-pw@"))
        au.start()
        ok(wait_until(lambda: backend_stats(au).get("connected"), timeout=10), "ACL user: connected")
        users = re.findall(r"\buser=(\S+)", redis.cmd("CLIENT", "LIST"))
        is_(users.count("hrfleet"), 2, "ACL user: both workers authenticated as hrfleet (AUTH user password)")
        is_(backend_stats(au).get("url"), "redis://hrfleet:***@127.0.0.1:%d/0" % redis.port,
            "ACL user: /stats url shows the user, not the password")
        r = post_json(au.url + "/v1/chat/completions", chat("gpt-4o", "acl", temperature=0), headers=USAGE_1000)
        is_(r.status, 200, "ACL user: a request goes through")
        ok(wait_until(lambda: redis.cmd("KEYS", "acl:budget:*") and redis.cmd("KEYS", "acl:cache:*"), timeout=5),
           "ACL user: its spend and cached answer are in Redis")
        is_(backend_stats(au).get("errors"), 0, "ACL user: no command refused (the ACL doc/fleet.md gives suffices)")
        # Now Redis refuses a request's budget read, rate-limit script and budget
        # add (its keys hold the wrong type): one WARN line, not one per command.
        for k in redis.cmd("KEYS", "acl:budget:*") + redis.cmd("KEYS", "acl:rl:*"):
            redis.cmd("DEL", k)
            if ":budget:" in k:
                redis.cmd("HSET", k, "not", "a counter")
            else:
                redis.cmd("SET", k, "not a bucket")
        for i in range(5):
            r = post_json(au.url + "/v1/chat/completions", chat("gpt-4o", "refused %d" % i, temperature=0),
                          headers=USAGE_1000)
            is_(r.status, 200, "refused commands: request %d answered (fail open)" % i)
        t_refused = time.monotonic()
        cmp_ok(backend_stats(au).get("errors", 0), ">=", 10, "refused commands: counted as errors")
        is_(refused_lines(au), 1, "refused commands: one WARN line for them all (at most one every 10 s)")

        # ---------------------------------------------- AUTH refused: down until Redis's password matches
        redis.cmd("CONFIG", "SET", "requirepass", "right-pw")
        redis.auth = ("right-pw",)
        pw = Headroomd(mock=mock, wait_ready=False, extra_conf=conf(
            redis, "pw:", "budget 1000\nrate_limit_rpm 100\nsink prometheus { path /metrics; }", "closed").replace(
            "redis://", "redis://:wrong-pw@"))
        pw.start()
        wait_listening(pw)
        ok(wait_until(lambda: backend_stats(pw).get("connect_failures", 0) >= 2, timeout=15),
           "AUTH refused: each attempt fails, and is retried")
        st = backend_stats(pw)
        is_((st.get("connected"), st.get("connections_up")), (False, 0), "AUTH refused: /stats backend not connected")
        is_(metric(pw.get("/metrics").text, "headroom_backend_up"), 0.0, "AUTH refused: headroom_backend_up 0")
        like(pw.stderr_text(), r"WARN.*refused AUTH: WRONGPASS.*fix the user or password in backend redis \{ url",
             "AUTH refused: a WARN names the url and what Redis said")
        ok("wrong-pw" not in pw.stderr_text(), "AUTH refused: the password is not logged")
        hb = request("GET", pw.url + "/health", timeout=5, quiet=True)
        be = ((hb.json() or {}).get("checks") or {}).get("backend") or {}
        is_((hb.status, (hb.json() or {}).get("status"), be.get("up")), (200, "degraded", False),
            "AUTH refused: /health 200, degraded, backend not up")
        like(be.get("last_error", ""), r"refused AUTH: WRONGPASS", "AUTH refused: /health says Redis refused the AUTH")
        ok("wrong-pw" not in hb.text, "AUTH refused: /health does not show the password")
        is_(post_json(pw.url + "/v1/chat/completions", chat(text="no auth")).status, 503,
            "AUTH refused: on_backend_error closed refuses (503)")
        is_(readyz(pw)[0], 503, "AUTH refused: /readyz not ready")
        # No password in the url, Redis asks for one: its first answer is NOAUTH.
        na = Headroomd(mock=mock, extra_conf=conf(redis, "noauth:", "budget 1000"))
        na.start()
        ok(wait_until(lambda: backend_stats(na).get("connect_failures", 0) >= 2, timeout=15),
           "NOAUTH: each attempt fails, and is retried")
        is_(backend_stats(na).get("connected"), False, "NOAUTH: /stats backend not connected")
        like(na.stderr_text(), r"WARN.*refused PING: NOAUTH.*fix the password \(if Redis asks for one\) in backend redis "
             r"\{ url", "NOAUTH: a WARN says Redis wants a password")
        is_(refused_lines(na), 0, "NOAUTH: no command was sent on the connection (no per-command refusals)")
        na.stop()
        redis.cmd("CONFIG", "SET", "requirepass", "wrong-pw")  # Redis's side changed to match
        redis.auth = ("wrong-pw",)
        ok(wait_until(lambda: backend_stats(pw).get("connected"), timeout=10),
           "AUTH refused: heals by itself once Redis accepts the password")
        is_(readyz(pw)[0], 200, "AUTH refused: ... /readyz ready again")
        r = post_json(pw.url + "/v1/chat/completions", chat("gpt-4o", "auth ok"), headers=USAGE_1000)
        is_(r.status, 200, "AUTH refused: ... and requests go through")
        ok(wait_until(lambda: redis.cmd("KEYS", "pw:budget:*"), timeout=5), "AUTH refused: ... their spend in Redis")
        pw.stop()
        redis.cmd("CONFIG", "SET", "requirepass", "")
        redis.auth = None

        # Back to the refusals: 10 s after the first line, the next one says how
        # many were left out.
        time.sleep(max(0.0, 10.3 - (time.monotonic() - t_refused)))
        r = post_json(au.url + "/v1/chat/completions", chat(text="refused again"))
        is_(r.status, 200, "refused commands: a request 10 s later")
        m = re.findall(r"Redis refused a \w+ command: WRONGTYPE.*?\(and (\d+) more refused commands since the last such "
                       r"line", au.stderr_text())
        ok(m and int(m[-1]) >= 9, "refused commands: the next line counts the ones left out (%s)" % m)
        is_(refused_lines(au), 2, "refused commands: still one line per 10 s")
        au.stop()
        redis.cmd("ACL", "DELUSER", "hrfleet")

        # ---------------------------------------------- a password and user with @ : / in the url
        # RFC 3986 userinfo is percent-encoded: %40 is '@', %3A ':', %2F '/' (either case).
        pct = Redis("--requirepass", "p@ss:w/rd")
        pct.auth = ("p@ss:w/rd",)
        pct.start()
        try:
            pe = Headroomd(mock=mock, wait_ready=False, extra_conf=conf(pct, "pct:", "budget 1000", "closed").replace(
                "redis://", "redis://:p%40ss%3aw%2Frd@"))
            pe.start()
            wait_listening(pe)
            ok(wait_until(lambda: backend_stats(pe).get("connected"), timeout=10),
               "percent-encoded password: AUTH p@ss:w/rd accepted, connected")
            is_(backend_stats(pe).get("url"), "redis://***@127.0.0.1:%d/0" % pct.port,
                "percent-encoded password: /stats url hides it")
            r = post_json(pe.url + "/v1/chat/completions", chat("gpt-4o", "pct"), headers=USAGE_1000)
            is_(r.status, 200, "percent-encoded password: a request goes through (on_backend_error closed)")
            ok(wait_until(lambda: pct.cmd("KEYS", "pct:budget:*"), timeout=5), "percent-encoded password: spend in Redis")
            ok("p@ss" not in pe.stderr_text() and "p%40ss" not in pe.stderr_text(),
               "percent-encoded password: not logged")
            pe.stop()
            pct.cmd("ACL", "SETUSER", "fl@user", "on", ">p@ss:w/rd", "~pctacl:*", "+@all")
            pa = Headroomd(mock=mock, extra_conf=conf(pct, "pctacl:", "budget 1000").replace(
                "redis://", "redis://fl%40user:p%40ss%3Aw%2frd@"))
            pa.start()
            ok(wait_until(lambda: backend_stats(pa).get("connected"), timeout=10),
               "percent-encoded user and password: connected")
            users = re.findall(r"\buser=(\S+)", pct.cmd("CLIENT", "LIST"))
            is_(users.count("fl@user"), 2, "percent-encoded user: both workers sent AUTH fl@user p@ss:w/rd")
            is_(backend_stats(pa).get("url"), "redis://fl@user:***@127.0.0.1:%d/0" % pct.port,
                "percent-encoded user: /stats shows the user decoded, not the password")
            pa.stop()
        finally:
            pct.stop()

        # ---------------------------------------------- nothing listening: failed attempts, no disconnects
        nl = Headroomd(mock=mock, extra_conf="backend redis {\n  url redis://127.0.0.1:%d/0\n}\n"
                       "sink prometheus { path /metrics; }\nprices %s\nbudget 1000\n%s"
                       % (free_port(), PRICES, cx))
        nl.start()
        ok(wait_until(lambda: backend_stats(nl).get("connect_failures", 0) >= 6, timeout=15),
           "no Redis: failed connection attempts are counted (connect_failures)")
        st = backend_stats(nl)
        is_((st.get("connects"), st.get("disconnects")), (0, 0),
            "no Redis: no connection established, none lost (disconnects counts lost connections only)")
        cmp_ok(metric(nl.get("/metrics").text, "headroom_backend_connect_failures_total") or 0, ">=", 6,
               "no Redis: /metrics headroom_backend_connect_failures_total")
        is_(readyz(nl)[0], 200, "no Redis, on_backend_error open: /readyz ready")
        # What never reached Redis is named when the daemon stops: the fleet's figures miss it.
        is_(post_json(nl.url + "/v1/chat/completions", chat("gpt-4o", "no redis"), headers=USAGE_1000).status, 200,
            "no Redis: a request with spend goes on (open)")
        ok(stored(nl, ROWS_TEXT) != "0" * 24, "no Redis: an original stored")
        nl.stop()
        like(nl.stderr_text(), r"WARN.*stopping with \$0\.002500 of spend Redis has not confirmed",
             "no Redis: at stop, a WARN names the spend the fleet's budget misses")
        like(nl.stderr_text(), r"WARN.*stopping with 1 stored original \(%d bytes\) Redis never got" % len(ROWS_TEXT),
             "no Redis: ... and the originals other instances cannot retrieve")

        # ---------------------------------------------- reload: a changed backend block needs a restart
        rl = Headroomd(mock=mock, extra_conf=conf(redis, "reload:", "budget 1000"))
        rl.start()
        with open(rl.conf_path) as f:
            text = f.read()
        with open(rl.conf_path, "w") as f:
            f.write(text.replace("prefix reload:", "prefix other:").replace("timeout_ms 1000", "timeout_ms 300")
                    .replace("redis://", "redis://:reload-pw@").replace("on_backend_error open", "on_backend_error closed"))
        rl.signal(signal.SIGHUP)
        ok(wait_until(lambda: "reloaded" in rl.stderr_text(), timeout=10), "reload: done")
        like(rl.stderr_text(), r"WARN.*needing a restart.*: backend redis url, backend redis prefix, backend redis "
             r"timeout_ms, backend redis on_backend_error", "reload: the changed backend settings are named as needing "
             "a restart")
        ok("reload-pw" not in rl.stderr_text(), "reload: the url (and its password) is not shown")
        is_(backend_stats(rl).get("prefix"), "reload:", "reload: still running with the old backend")
        rl.stop()

        # ---------------------------------------------- reload: rate limits apply to the shared buckets
        # rate_limit_rpm is applied by a SIGHUP reload: the fleet's script must use the new
        # limit, and a limit switched on must be the shared one, not one per instance.
        rr2 = [Headroomd(mock=mock, extra_conf=conf(redis, "rlre:", "rate_limit_rpm 2")) for _ in range(2)]
        rr0 = [Headroomd(mock=mock, extra_conf=conf(redis, "rlon:", "")) for _ in range(2)]
        for h in rr2 + rr0:
            h.start()
        for h, new in [(h, "rate_limit_rpm 4") for h in rr2] + [(h, "rate_limit_rpm 3") for h in rr0]:
            with open(h.conf_path) as f:
                text = f.read()
            with open(h.conf_path, "w") as f:
                f.write(text.replace("rate_limit_rpm 2", "") + new + "\n")
            h.signal(signal.SIGHUP)
        ok(wait_until(lambda: all("reloaded" in h.stderr_text() for h in rr2 + rr0), timeout=10), "reload: done")
        like(rr2[0].stderr_text(), r"reload.*rate_limit_rpm", "reload: rate_limit_rpm named as applied")
        rate_round(rr2, "reload-up", 4, "reload rpm 2 -> 4")
        rate_round(rr0, "reload-on", 3, "reload: rate limit switched on (rpm 3)")
        ok(redis.cmd("KEYS", "rlon:rl:*"), "reload: the switched-on limit's buckets live in Redis")
        for h in rr2 + rr0:
            h.stop()

        # ---------------------------------------------- draining while a request waits for Redis
        # A request parked for Redis's answer is in flight: SIGTERM lets it go on
        # (here: fail open once timeout_ms passes) or, past shutdown_timeout, answers
        # it 503. Either way the daemon exits 0 with nothing leaked (the ASan build's
        # leak check sets the exit code; the wait used to be lost at shutdown).
        for label, extra, timeout_ms, want in (
                ("drain within shutdown_timeout", "shutdown_timeout 20", 1000, 200),
                ("drain past shutdown_timeout", "shutdown_timeout 1", 8000, 503)):
            dr = Headroomd(mock=mock, expect_exit=None,
                           extra_conf=conf(redis, "drain:", "budget 1000\n" + extra).replace(
                               "timeout_ms 1000", "timeout_ms %d" % timeout_ms))
            dr.start()
            is_(post_json(dr.url + "/v1/chat/completions", chat(text="up")).status, 200, "%s: Redis up" % label)
            redis.proc.send_signal(signal.SIGSTOP)
            res = []
            t = threading.Thread(target=lambda: res.append(
                post_json(dr.url + "/v1/chat/completions", chat(text="parked"), timeout=60)))
            t.start()
            ok(wait_until(lambda: backend_stats(dr).get("waiting") == 1, timeout=10),
               "%s: /stats backend.waiting shows the parked request" % label)
            rc = dr.stop(timeout=60)
            t.join(60)
            redis.proc.send_signal(signal.SIGCONT)
            r = res[0] if res else None
            is_(r and r.status, want, "%s: the parked request is answered %d" % (label, want))
            if want == 503:
                ok(r.header("retry-after") and "shutdown_timeout" in r.text, "%s: with Retry-After, saying why" % label)
            is_(rc, 0, "%s: exit 0, nothing leaked" % label)
            if rc != 0:
                diag(dr.stderr_text()[-3000:])
            ok(wait_until(lambda: redis.ping(), timeout=10), "%s: Redis answers again" % label)

        # A spend add written to a stalled Redis when the daemon stops: its answer never
        # comes, and it is freed with the connection (the ASan build's exit code says so).
        lk = Headroomd(mock=mock, expect_exit=None, extra_conf=conf(redis, "addstop:", "budget 1000").replace(
            "timeout_ms 1000", "timeout_ms 20000"))
        lk.start()
        n_up = len(mock.requests())
        res = []
        t = threading.Thread(target=lambda: res.append(post_json(
            lk.url + "/v1/chat/completions", chat("gpt-4o", "add at stop"),
            headers=dict(USAGE_1000, **{"x-mock-delay-ms": "1500"}), timeout=60)))
        t.start()
        ok(wait_until(lambda: len(mock.requests()) > n_up, timeout=10), "add at stop: the request is upstream")
        redis.proc.send_signal(signal.SIGSTOP)  # its budget read is answered; its add will not be
        t.join(60)
        is_(res and res[0].status, 200, "add at stop: answered")
        time.sleep(0.3)
        rc = lk.stop(timeout=60)
        redis.proc.send_signal(signal.SIGCONT)
        is_(rc, 0, "add at stop: exit 0, the unanswered add freed")
        like(lk.stderr_text(), r"WARN.*stopping with \$0\.002500 of spend Redis has not confirmed",
             "add at stop: a WARN names the unconfirmed spend")
        if rc != 0:
            diag(lk.stderr_text()[-3000:])
        ok(wait_until(lambda: redis.ping(), timeout=10), "add at stop: Redis answers again")

        # A WebSocket message parked for Redis at SIGTERM: the drain waits for it
        # (fail open once timeout_ms passes), it is answered, then the WebSocket
        # closes with 1001; exit 0, nothing leaked.
        dr = Headroomd(mock=mock, expect_exit=None,
                       extra_conf=conf(redis, "wsdrain:", "rate_limit_rpm 100\nshutdown_timeout 20"))
        dr.start()
        ws = WS(dr.port)
        redis.proc.send_signal(signal.SIGSTOP)
        ws.send_text(ws_create("parked"))
        ok(wait_until(lambda: backend_stats(dr).get("waiting") == 1, timeout=10),
           "WebSocket drain: /stats backend.waiting shows the parked message")
        rc = dr.stop(timeout=60)
        redis.proc.send_signal(signal.SIGCONT)
        is_(ws_final(ws), ("response.completed", None), "WebSocket drain: the parked message is answered")
        is_(ws.close_code()[0], 1001, "WebSocket drain: then the WebSocket closes with 1001")
        ws.close()
        is_(rc, 0, "WebSocket drain: exit 0, nothing leaked")
        if rc != 0:
            diag(dr.stderr_text()[-3000:])
        ok(wait_until(lambda: redis.ping(), timeout=10), "WebSocket drain: Redis answers again")

    # ---------------------------------------------- kept headroom_retrieve calls, shared
    psrv = ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    threading.Thread(target=psrv.serve_forever, daemon=True).start()
    kconf = ("host 127.0.0.1\nport @PORT@\nopenai_api_url http://127.0.0.1:%d\nworkers 2\nstage_budget_ms 20000\n"
             "transform router { }\ntransform smart_crusher { }\n" % psrv.server_port)
    KA, KB = [Headroomd(conf_text=kconf + conf(redis, "kept:")) for _ in range(2)]
    KA.start()
    KB.start()
    # previous_response_id: kept on A, continued on B.
    rid, shell_id, h0 = first_turn(KA, "kept on A")
    ok(h0, "kept on A: the tool output was compressed (marker hash %s)" % h0)
    ok(wait_until(lambda: redis.cmd("EXISTS", "kept:kept:r:" + str(rid)), timeout=5),
       "kept on A: the left-out call is in Redis under <prefix>kept:r:<response id>")
    ttl = redis.cmd("TTL", "kept:kept:r:" + str(rid))
    ok(isinstance(ttl, int) and 86000 < ttl <= 86400, "... for 24 h (TTL %s)" % ttl)
    r, up = follow_up(KB, shell_id, previous_response_id=rid)
    is_((r.status, [(it.get("type"), it.get("call_id")) for it in up]),
        (200, [("function_call_output", "call_hr_1"), ("function_call_output", shell_id)]),
        "continued on B (previous_response_id): the retrieve call's output goes first and the provider accepts it "
        "(%s)" % r.text[:200])
    is_((up[0].get("output") if up else None) == ROWS_TEXT, True,
        "... that output is the original A stored (fetched from Redis by B: %d bytes)" % len(ROWS_TEXT))
    like(KB.stderr_text(), r"1 headroom_retrieve call of %s \(left out of the answer the client got\) answered" % rid,
         "... B's INFO line says so")
    r, up = follow_up(KA, shell_id, previous_response_id=rid)
    is_((r.status, [it.get("call_id") for it in up]), (200, ["call_hr_1", shell_id]),
        "the same response continued again on A (a retry, a fork) gets the output too")

    # A conversation: continued on B, whose 2xx makes the kept calls carried; the next turn on A
    # must not carry them again (the conversation has them).
    conv = "conv_fleet_1"
    rid2, shell2, _ = first_turn(KA, "conversation", conversation=conv, store=False)
    ok(wait_until(lambda: redis.cmd("EXISTS", "kept:kept:c:" + conv), timeout=5),
       "conversation: kept under <prefix>kept:c:<conversation>")
    r, up = follow_up(KB, shell2, conversation=conv, store=False)
    is_((r.status, [it.get("call_id") for it in up][1:]), (200, [shell2]),
        "conversation continued on B: accepted, with the client's output (%s)" % r.text[:200])
    ok(up and up[0].get("call_id", "").startswith("call_hr_") and up[0].get("output") == ROWS_TEXT,
       "... after the retrieve call's output (the original)")
    ok(wait_until(lambda: not redis.cmd("EXISTS", "kept:kept:c:" + conv), timeout=5),
       "conversation: once B's request is answered 2xx the key is gone from Redis")
    r = post_json(KA.url + "/v1/responses", {"model": "gpt-5", "tools": TOOLS, "conversation": conv, "store": False,
                                             "input": [{"role": "user", "content": "And now?"}]})
    up = prov_seen[-1].get("input") or []
    is_((r.status, [it.get("type") for it in up]), (200, [None]),
        "conversation: the next turn on A (which kept the calls) does not carry them again (%s)" % r.text[:200])

    # The follow-up sent with Content-Encoding (the openai SDKs and Codex may compress a body): B reads
    # it decoded, as it reads any body, and finds the calls A kept; the provider gets the outputs, the
    # body still coded as the client sent it.
    zcoding = "zstd" if shutil.which("zstd") else "deflate"
    for coding, how in (("gzip", "previous_response_id"), (zcoding, "previous_response_id"),
                        ("gzip", "conversation"), (zcoding, "conversation")):
        label = "%s follow-up (%s)" % (coding, how)
        conv_c = "conv_fleet_%s" % coding
        kw = {} if how == "previous_response_id" else {"conversation": conv_c, "store": False}
        rid_c, shell_c, _ = first_turn(KA, label, **kw)
        key = "kept:kept:r:%s" % rid_c if how == "previous_response_id" else "kept:kept:c:" + conv_c
        ok(wait_until(lambda: redis.cmd("EXISTS", key), timeout=5), "%s: kept on A, in Redis" % label)
        r, up = follow_up(KB, shell_c, coding=coding, **(kw or {"previous_response_id": rid_c}))
        is_((r.status, [(it.get("type"), it.get("call_id", "")[:8]) for it in up]),
            (200, [("function_call_output", "call_hr_"), ("function_call_output", shell_c[:8])]),
            "%s on B: the retrieve call's output goes first and the provider accepts it (%s)" % (label, r.text[:200]))
        ok(up and up[0].get("output") == ROWS_TEXT, "%s: ... that output is the original A stored" % label)
        is_(prov_codings[-1], coding, "%s: ... the changed body went on coded as the client sent it" % label)
    # A coded request that continues nothing is read once, and is answered as one without a coding.
    r = request("POST", KB.url + "/v1/responses", encode_body(json.dumps(
        {"model": "gpt-5", "input": "hello"}).encode(), "gzip"), {"Content-Type": "application/json",
                                                                  "Content-Encoding": "gzip"})
    is_((r.status, prov_seen[-1].get("input")), (200, "hello"), "a gzip request that continues nothing: answered")
    r = request("POST", KB.url + "/v1/responses", b"not gzip", {"Content-Type": "application/json",
                                                               "Content-Encoding": "gzip"})
    is_(r.status, 400, "a body that is not the gzip it says: 400, as without a fleet")
    like(r.text, r"not valid gzip data", "... saying so")
    r = request("POST", KB.url + "/v1/responses", encode_body(json.dumps(
        {"model": "gpt-5", "previous_response_id": "resp_x", "input": "x" * 4000}).encode(), "gzip")[:-30],
        {"Content-Type": "application/json", "Content-Encoding": "gzip"})
    is_(r.status, 400, "a continuing request whose gzip data is cut short: 400, as without a fleet")

    # A damaged or foreign value under a kept key is not used: the request goes as the client sent it.
    for val in ("not json", json.dumps([{"call_id": "x", "name": "shell", "arguments": "{}"}]), "[]",
                json.dumps([{"call_id": "x", "name": "headroom_retrieve", "arguments": "{}", "pad": "p" * 70000}])):
        redis.cmd("SET", "kept:kept:r:resp_forged", val)
        r, up = follow_up(KB, "call_none", previous_response_id="resp_forged")
        is_([it.get("call_id") for it in up], ["call_none"], "a kept value Redis holds that is not calls headroomd "
            "kept (%s) adds nothing" % val[:30])
    like(KB.stderr_text(), r"WARN.*kept:r:resp_forged in Redis is not headroom_retrieve calls headroomd kept \(not JSON\)",
         "... a WARN names the key and what is wrong")

    # The follow-up as a response.create on B's WebSocket (Codex CLI): the same.
    rid5, shell5, _ = first_turn(KA, "then a WebSocket")
    ok(wait_until(lambda: redis.cmd("EXISTS", "kept:kept:r:" + str(rid5)), timeout=5),
       "then a WebSocket: kept in Redis")
    ws = WS(KB.port)
    n0 = len(prov_seen)
    ws.send_text({"type": "response.create", "model": "gpt-5", "previous_response_id": rid5, "tools": TOOLS,
                  "input": [{"type": "function_call_output", "call_id": shell5, "output": "42 passed"}]})
    evs = ws.events()
    last = evs[-1] if evs else {}
    up = (prov_seen[-1].get("input") if len(prov_seen) > n0 else None) or []
    is_((ws.status, last.get("type"), last.get("error")), (101, "response.completed", None),
        "continued on B's WebSocket (previous_response_id): accepted")
    is_([(it.get("type"), it.get("call_id")) for it in up][1:], [("function_call_output", shell5)],
        "... after the retrieve call's output")
    ok(up and up[0].get("call_id", "").startswith("call_hr_") and up[0].get("output") == ROWS_TEXT,
       "... which is the original A stored")
    ws.close()

    # Calls over the bound (a model writing a 70 KB query) stay on the instance that kept them.
    rid3, shell3, _ = first_turn(KA, "huge query", headers={"x-query-bytes": "70000"})
    like(KA.stderr_text(), r"WARN.*headroom_retrieve calls left out of %s take \d+ bytes as JSON, over the 65536 a fleet "
         r"shares: kept on this instance only" % rid3, "calls over 64 KiB: a WARN says they are not shared")
    ok(not redis.cmd("EXISTS", "kept:kept:r:" + str(rid3)), "... and Redis has no key for them")
    r, up = follow_up(KA, shell3, previous_response_id=rid3)
    is_((r.status, [it.get("call_id") for it in up][-1:]), (200, [shell3]), "... A still answers them in the follow-up")

    # Redis down when the follow-up lands on B: it goes as it would without a fleet (the provider
    # refuses it), and B says why.
    rid4, shell4, _ = first_turn(KA, "redis down")
    ok(wait_until(lambda: redis.cmd("EXISTS", "kept:kept:r:" + str(rid4)), timeout=5), "redis down: kept in Redis first")
    redis.kill()
    r, up = follow_up(KB, shell4, previous_response_id=rid4)
    is_((r.status, [it.get("call_id") for it in up]), (400, [shell4]),
        "redis down at the follow-up on B: the request goes as the client sent it; the provider refuses it")
    like(r.text, r"No tool output found for function call call_hr", "... the client sees the provider's reason")
    like(KB.stderr_text(), r"WARN.*Redis did not answer: a request continuing from %s goes without the outputs" % rid4,
         "... B's WARN says why and what to do")
    redis.start()
    r, up = follow_up(KA, shell4, previous_response_id=rid4)
    is_((r.status, [it.get("call_id") for it in up][:1]), (200, ["call_hr_%s" % rid4[len("resp_kept"):]]),
        "redis down: the instance that kept the calls still answers them")
    is_((KA.stop(), KB.stop()), (0, 0), "kept calls: both instances exit cleanly")
    psrv.shutdown()

    # ---------------------------------------------- config
    cfg_dir = tempfile.mkdtemp(prefix="hr-fleet-conf-")
    path = os.path.join(cfg_dir, "headroom.conf")
    with open(path, "w") as f:
        f.write("backend redis {\n  url redis://:secret@127.0.0.1:1/3\n  prefix team:\n  on_backend_error closed\n}\n"
                "budget 5\n")
    out = subprocess.run([os.environ.get("HEADROOMD") or os.path.join(T_DIR, "..", "src", "headroomd"),
                          "--check-config", "-c", path], capture_output=True, text=True, timeout=30)
    is_(out.returncode, 0, "--check-config accepts a backend block without contacting Redis")
    like(out.stdout, r"shared state in Redis at 127\.0\.0\.1:1/3, prefix team:, timeout_ms 50, on_backend_error closed",
         "--check-config describes the backend (password not shown)")
    ok("secret" not in out.stdout, "--check-config does not print the password")
    like(out.stdout, r"budget \$5\.00? daily \(spend kept in the backend redis, shared by the fleet\)",
         "--check-config: a fleet's spend is in Redis, not in a budget.json it never writes")
    shutil.rmtree(cfg_dir, True)
    for text, want in (("backend redis { }", r"needs `url"),
                       ("backend redis { url redis://h:1/0; }\nbackend redis { url redis://h:2/0; }",
                        r"a second backend block \(the first is at line \d+\): give one"),
                       ("backend redis { url http://x; }", r"not a redis:// URL"),
                       ("backend redis { url redis://h:99999; }", r"port must be"),
                       ("backend redis { url redis://:topsecret@h:99999; }",
                        r"url: 'redis://:\*\*\*@h:99999': the port must be"),
                       ("backend redis { url redis://:topsecret@; }", r"url: 'redis://:\*\*\*@' names no host"),
                       ("backend redis {\n  url redis://:top%4secret@h:1/0;\n}",
                        r"url: the password has a '%' not followed by two hex digits: percent-encode it \('%' is "
                        r"%25, '@' %40, ':' %3A, '/' %2F\)"),
                       ("backend redis { url redis://:topsecret%zz@h:1/0; }",
                        r"url: the password has a '%' not followed by two hex digits"),
                       ("backend redis { url redis://:topsecret%4@h:1/0; }",
                        r"url: the password has a '%' not followed by two hex digits"),
                       ("backend redis { url redis://us%zer:topsecret@h:1/0; }",
                        r"url: the user has a '%' not followed by two hex digits"),
                       ("backend redis { url redis://:top%00secret@h:1/0; }", r"url: the password holds %00"),
                       ("backend redis { url redis://topsecret@h:1/0; }",
                        r"url: 'redis://\*\*\*@h:1/0': a user with no ':' before the '@': write "
                        r"redis://:PASSWORD@host for a password"),
                       ("backend redis { url rediss://:topsecret@h:1/0; }", r"'rediss://:\*\*\*@h:1/0' is not a redis://"),
                       ("backend redis { url redis://h; on_backend_error maybe; }", r"must be open or closed"),
                       ("backend redis { url redis://h; colour red; }", r"unknown setting 'colour'"),
                       ("backend redis { url redis://h; prefix %s; }" % ("p" * 200),
                        r"prefix: 200 bytes; at most 128"),
                       ("backend memcached { }", r"only shared backend")):
        h = Headroomd(extra_conf=text, wait_ready=False, expect_exit=None)
        h.start()
        try:
            h.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:  # it started: the config was taken
            h.stop()
        ok(h.proc.returncode not in (0, None, -signal.SIGTERM), "bad config refused: %s" % text)
        like(h.stderr_text(), r"headroom\.conf:\d+:\d+: .*" + want, "names the file, line and problem: %s" % text)
        if "topsecret" in text:
            ok("secret" not in h.stderr_text(), "... without showing the password")
        if "%4secret" in text:
            with open(h.conf_path) as f:
                line = [i + 1 for i, l in enumerate(f.read().split("\n")) if "%4secret" in l]
            like(h.stderr_text(), r"headroom\.conf:%d:\d+: backend redis: url: " % line[0],
                 "a bad escape names the url's own line (%d)" % line[0])
finally:
    redis.stop()
done()
