#!/usr/bin/env python3
"""bench/otel_down/run.py — headroomd's memory while its OTLP collector and
Langfuse are down: the otel sink (every 100 ms, up to 128 series) and the
langfuse sink (batches every 100 ms) export to an endpoint that refuses
connections, then to one that accepts and never answers, while N requests
flow; the daemon's RSS (VmRSS) is sampled as they go, against the same run
with a healthy collector (the floor). Not a test: figures go to doc/otel.md.

Run from the build tree of a build without sanitizers (ASan's quarantine
alone grows RSS):
  HEADROOMD=src/headroomd HEADROOM_TEST_PLUGIN_DIR=plugins/.libs \\
    python3 ../bench/otel_down/run.py [N [healthy,refused,hanging]]
"""
import os
import socket
import sys
import threading

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "t"))
from hrtest import Headroomd, Mock, free_port, openai_body, post_json  # noqa: E402
import http.server  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 4000
THREADS = 4
SAMPLES = 8


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Healthy:
    def __init__(self):
        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()


class Hanging:
    """Accepts connections and reads, never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            c, _ = self.sock.accept()
            self.conns.append(c)  # kept open, never answered


def run(label, base):
    env = {"HEADROOM_OTEL_METRICS_ENABLED": "1", "HEADROOM_OTEL_METRICS_ENDPOINT": base + "/v1/metrics",
           "HEADROOM_OTEL_METRICS_EXPORT_INTERVAL_MS": "100", "HEADROOM_OTEL_METRICS_TIMEOUT_MS": "2000",
           "HEADROOM_LANGFUSE_ENABLED": "1", "LANGFUSE_PUBLIC_KEY": "pk", "LANGFUSE_SECRET_KEY": "sk",
           "LANGFUSE_BASE_URL": base, "HEADROOM_LANGFUSE_FLUSH_INTERVAL_MS": "100"}
    sinks = os.environ.get("BENCH_SINKS", "otel,langfuse").split(",")  # to tell them apart
    if "otel" not in sinks:
        env["HEADROOM_OTEL_METRICS_ENABLED"] = "0"
    if "langfuse" not in sinks:
        env["HEADROOM_LANGFUSE_ENABLED"] = "0"
    with Mock() as mock, Headroomd(mock=mock, env=env,
                                   extra_conf="sink otel { }\nsink langfuse { }\nsink prometheus { }\n") as h:
        pid = h.proc.pid
        samples = [(0, rss_kib(pid))]
        done = [0]
        lock = threading.Lock()

        def worker(k):
            for i in range(k, N, THREADS):
                post_json(h.url + "/v1/chat/completions",
                          openai_body(model="m-%d" % (i % 300), messages=[{"role": "user", "content": "hi %d" % i}]))
                with lock:
                    done[0] += 1
                    if done[0] % (N // SAMPLES) == 0:
                        samples.append((done[0], rss_kib(pid)))
        ts = [threading.Thread(target=worker, args=(k,)) for k in range(THREADS)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        st = h.stats()
        o, lf = st["otel"], st.get("langfuse") or {}
        print("%-9s RSS KiB by requests served: %s" % (label, "  ".join("%d:%d" % s for s in samples)))
        print("%-9s otel ok=%d failed=%d dropped=%d queued=%d | langfuse spans_exported=%d dropped=%d | "
              "requests=%d" % (label, o["exports_ok"], o["exports_failed"], o.get("exports_dropped", 0), o.get("queued", 0),
                               lf.get("spans_exported", 0), lf.get("exports_dropped", 0), st["requests"]["total"]))
        sys.stdout.flush()


WHICH = (sys.argv[2] if len(sys.argv) > 2 else "healthy,refused,hanging").split(",")
if "healthy" in WHICH:
    run("healthy", Healthy().url)
if "refused" in WHICH:
    run("refused", "http://127.0.0.1:%d" % free_port())
if "hanging" in WHICH:
    run("hanging", Hanging().url)
os._exit(0)  # not a TAP test: skip hrtest's summary
