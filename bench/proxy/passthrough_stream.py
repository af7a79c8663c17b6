#!/usr/bin/env python3
"""passthrough_stream.py — when a client streaming a long request through
`optimize no` (passthrough) sees its answer end: the last event ([DONE])
and the stream's end, for two builds side by side, with the same request
straight to the upstream and through nginx `proxy_pass` (when installed)
as the floor.

Passthrough counts the tokens of the body it forwarded once the answer is
in, before the stream's closing comment (which carries the figures). This
measures whether that count holds back the answer's last events: the
fast_upstream answers at once, so what a client waits for past the
upstream is the proxy's work.

Usage: HEADROOMD=/path/to/build/src/headroomd BASE_HEADROOMD=/path/to/other/src/headroomd \\
         bench/proxy/passthrough_stream.py [N] [FIXTURE_DIR]
  N: streamed requests per build and size (default 20), alternated between builds
  SIZES=1,4: request sizes in MB (the agent mix of large_bodies.py, never seen twice)
  DELAY_MS=0: the upstream waits this long before answering, as a provider
    takes time before its first token (0: it answers at once, the worst case
    for work the proxy does while the upstream works)
Prints p50 ms to [DONE] and to the stream's end per target. 127.0.0.1 only.
"""
import os
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "t"))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(TOP, "bench", "proxy_vs_nginx"))
import hrtest  # noqa: E402
import large_bodies  # noqa: E402  (its body() and fixtures())
from fast_upstream import FastUpstream  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20
if len(sys.argv) > 2:
    large_bodies.FX = sys.argv[2]
SIZES = [int(x) for x in os.environ.get("SIZES", "1,4").split(",")]
DELAY_MS = int(os.environ.get("DELAY_MS", "0"))


def stream(port, data):
    """ms until the [DONE] event and until the chunked stream's end."""
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    head = ("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Authorization: Bearer bench\r\nContent-Length: %d\r\n\r\n" % len(data)).encode()
    t0 = time.perf_counter()
    s.sendall(head + data)
    buf, t_done = b"", None
    while not buf.endswith(b"\r\n0\r\n\r\n"):
        chunk = s.recv(1 << 16)
        if not chunk:
            raise SystemExit("connection closed before the stream's end")
        buf += chunk
        if t_done is None and b"data: [DONE]" in buf:
            t_done = time.perf_counter()
    t_end = time.perf_counter()
    s.close()
    if not buf.startswith(b"HTTP/1.1 200") or t_done is None:
        raise SystemExit("unexpected answer: %r" % buf[:200])
    return (t_done - t0) * 1000, (t_end - t0) * 1000


def main():
    builds = [("base", os.environ.get("BASE_HEADROOMD")), ("new", os.environ.get("HEADROOMD"))]
    if not all(b for _, b in builds):
        raise SystemExit("set HEADROOMD and BASE_HEADROOMD to two builds' src/headroomd")
    texts = [open(os.path.join(large_bodies.fixtures(), f)).read() for f in large_bodies.MIX]
    tmp = tempfile.mkdtemp(prefix="hr-pt-stream-")
    os.environ["FAST_UPSTREAM_DELAY_MS"] = str(DELAY_MS)
    up = FastUpstream(tmp)
    conf = open(os.path.join(TOP, "conf", "headroom.conf")).read()
    conf = "\n".join(line for line in conf.splitlines()
                     if not line.startswith(("host ", "port ", "openai_api_url", "anthropic_api_url", "workers")))
    conf = hrtest.DEFAULT_CONF + conf + "\nlog_level warn\noptimize no\n"
    daemons = [(name, hrtest.Headroomd(conf_text=conf, mock=up, binary=b)) for name, b in builds]
    ngx, ngx_port = large_bodies.nginx_start(tmp, up.port)
    print("%d streamed requests per build and size, alternated; upstream answers after %d ms; load %s, %s" % (
        N, DELAY_MS, open("/proc/loadavg").read().split()[0], time.strftime("%Y-%m-%d %H:%M")))
    print()
    print("| target | MB | to [DONE] p50 ms | to the end p50 ms |")
    print("|---|---|---|---|")
    serial = 0
    try:
        for _, d in daemons:
            d.start()
        targets = [("direct", up.port)] + [("headroomd " + name, d.port) for name, d in daemons]
        if ngx:
            targets.append(("nginx proxy_pass", ngx_port))
        for mb in SIZES:
            res = {name: [] for name, _ in targets}
            for i in range(N + 1):
                data = large_bodies.body(texts, mb, serial)[:-1] + b',"stream":true}'
                serial += 1
                for name, port in targets:
                    r = stream(port, data)
                    if i:  # the first is a warm-up
                        res[name].append(r)
            real_mb = len(data) / 1e6
            for name, _ in targets:
                print("| %s | %.2f | %.2f | %.2f |" % (name, real_mb, statistics.median(a for a, _ in res[name]),
                                                      statistics.median(b for _, b in res[name])))
    finally:
        for _, d in daemons:
            d.stop()
        if ngx:
            ngx.send_signal(signal.SIGTERM)
            ngx.wait()
        up.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        hrtest._tap.finished = True  # a bench, not a TAP test: no plan line at exit


if __name__ == "__main__":
    main()
