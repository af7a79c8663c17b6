#!/usr/bin/env python3
"""large_bodies.py — what headroomd adds to 1, 5 and 10 MB agent requests.

Starts bench/proxy_vs_nginx/fast_upstream (built here with a 24 MB request
buffer), headroomd twice — `optimize no` (passthrough, as --no-optimize) and
the shipped config (optimized) — and, when it is installed, nginx
`proxy_pass` as the floor for moving a body through a proxy. Then sends the
same never-seen agent requests (the 8-output mix of bench/pipeline, each tool
output made unique per request, so no cache helps) straight to the upstream
and through each proxy, interleaved, one at a time on keep-alive connections,
and prints per size: direct p50, through the proxy p50, added p50 (median of
the per-request differences) and added ms per MB.

Usage: HEADROOMD=/path/to/plain-build/src/headroomd bench/proxy/large_bodies.py [N] [FIXTURE_DIR]
  N: requests per size and proxy (default 20; 10 MB cases use N/2, at least 5)
  FIXTURE_DIR: t/fixtures/gen_fixtures.py --out DIR (made in a temp dir if absent)
  SIZES=1,10: the sizes in MB (default 1,5,10)
  PROXIES=no,no-buffered,nginx,nginx-unbuffered: which proxies (default
    no,optimized,nginx): `no` is headroomd `optimize no` (cut-through),
    `no-buffered` the same with `cut_through no` (the body read whole
    first), `optimized` the shipped config, `nginx` proxy_pass (request
    bodies buffered, nginx's default), `nginx-unbuffered` proxy_pass with
    `proxy_request_buffering off` (nginx's cut-through). At 5 MB only
    `optimized` runs.
  RATE_MBPS=100: the client sends each body at this rate (64 KB pieces,
    paced), as over a network, instead of as fast as loopback takes it
    (default 0 = unpaced: then the 2 vCPUs' copying is the limit).
Everything runs on 127.0.0.1 and is stopped on exit.
"""
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "t"))
import hrtest  # noqa: E402
sys.path.insert(0, os.path.join(TOP, "bench", "proxy_vs_nginx"))
from fast_upstream import FastUpstream  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20
FX = sys.argv[2] if len(sys.argv) > 2 else None
MIX = ["search_1000.json", "logs_1000.json", "db_1000.json", "metrics_1000.json", "code_1000.json",
       "search_100.json", "logs_100.json", "api_100.json"]
SIZES = [int(x) for x in os.environ.get("SIZES", "1,5,10").split(",")]  # MB, about: 8 tool outputs per MB
PROXIES = os.environ.get("PROXIES", "no,optimized,nginx").split(",")
GAP = float(os.environ.get("GAP_MS", "100")) / 1000
RATE = float(os.environ.get("RATE_MBPS", "0")) * 1e6  # bytes per second; 0 = unpaced
PIECE = 64 << 10


def cpu_ms(pid):
    """On-CPU time of every thread of pid so far, ms."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            total += int(open("/proc/%d/task/%s/schedstat" % (pid, tid)).read().split()[0])
        except (OSError, ValueError):
            pass
    return total / 1e6


def nginx_start(tmp, up_port, unbuffered=False):
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(exe, os.X_OK):
        return None, None
    port = hrtest.free_port()
    d = os.path.join(tmp, "ngx-unbuffered" if unbuffered else "ngx")
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d + ".conf")
    with open(conf, "w") as f:
        f.write("""worker_processes 1;
master_process off;
daemon off;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %(d)s/body;
    proxy_temp_path %(d)s/proxy;
    client_max_body_size 32m;
    client_body_buffer_size 32m;
    upstream llm { server 127.0.0.1:%(up)d; keepalive 16; }
    server {
        listen 127.0.0.1:%(port)d;
        location / { proxy_pass http://llm; proxy_http_version 1.1; proxy_set_header Connection "";%(rb)s }
    }
}
""" % {"d": d, "up": up_port, "port": port, "rb": " proxy_request_buffering off;" if unbuffered else ""})
    proc = subprocess.Popen([exe, "-p", d, "-c", conf, "-e", os.path.join(d, "error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if hrtest.request("GET", "http://127.0.0.1:%d/" % port, timeout=1, quiet=True).status:
            return proc, port
        time.sleep(0.05)
    proc.terminate()
    return None, None


def fixtures():
    global FX
    if FX:
        return FX
    FX = tempfile.mkdtemp(prefix="hr-large-fx-")
    subprocess.check_call([sys.executable, os.path.join(TOP, "t", "fixtures", "gen_fixtures.py"), "--out", FX],
                          stdout=subprocess.DEVNULL)
    return FX


def body(texts, mb, serial):
    """An agent request of about `mb` MB: 8 tool outputs per MB, each unique to (serial, k)."""
    msgs = [{"role": "system", "content": "You are a coding agent."},
            {"role": "user", "content": "Find the failing requests and explain why."}]
    for k in range(8 * mb):
        t = texts[k % 8].lstrip()
        out = ('{"call":"%d-%d",%s' % (serial, k, t[1:]) if t.startswith("{")
               else '{"call":"%d-%d","rows":%s}' % (serial, k, t))
        cid = "call_%d" % k
        msgs.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": cid, "type": "function", "function": {"name": "run_tool", "arguments": "{}"}}]})
        msgs.append({"role": "tool", "tool_call_id": cid, "content": out})
    return json.dumps({"model": "gpt-4o", "messages": msgs}, separators=(",", ":")).encode()


class Conn:
    """A keep-alive client socket with TCP_NODELAY that writes each request
    (head and body) in one sendall, as an SDK's HTTP stack does: Python's
    http.client writes the head and the body separately without TCP_NODELAY,
    and the delayed ACK that meets added milliseconds to every proxied
    request, which is the client's doing, not the proxy's."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        self.s.close()

    def post(self, data):
        head = ("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                "Authorization: Bearer bench\r\nContent-Length: %d\r\n\r\n" % len(data)).encode()
        if not RATE:
            self.s.sendall(head + data)
        else:  # paced: piece k leaves at t0 + k * PIECE / RATE
            t0 = time.perf_counter()
            self.s.sendall(head + data[:PIECE])
            for off in range(PIECE, len(data), PIECE):
                wait = t0 + off / RATE - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                self.s.sendall(data[off:off + PIECE])
        while b"\r\n\r\n" not in self.buf:
            self.recv()
        h, self.buf = self.buf.split(b"\r\n\r\n", 1)
        m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", h)
        if not m or not h.startswith(b"HTTP/1.1 200"):
            raise SystemExit("unexpected answer: %r" % h[:200])
        n = int(m.group(1))
        while len(self.buf) < n:
            self.recv()
        self.buf = self.buf[n:]

    def recv(self):
        chunk = self.s.recv(1 << 16)
        if not chunk:
            raise SystemExit("connection closed")
        self.buf += chunk


def send(conn, data):
    t0 = time.perf_counter()
    conn.post(data)
    return (time.perf_counter() - t0) * 1000


def measure(port, up_port, pid, bodies, n):
    """Interleaved direct / proxied sends of the same bodies: the latencies, and
    the proxy's CPU ms per request (its threads, including work after the answer)."""
    direct = Conn(up_port)
    via = Conn(port)
    send(direct, bodies[-1])  # warm: connections open, upstream buffers touched
    send(via, bodies[-1])
    time.sleep(GAP * 5)
    d, v = [], []
    c0 = cpu_ms(pid)
    for i in range(n):
        time.sleep(GAP)
        d.append(send(direct, bodies[i]))
        time.sleep(GAP)
        v.append(send(via, bodies[i]))
    time.sleep(GAP * 5)
    cpu = (cpu_ms(pid) - c0) / n
    direct.close()
    via.close()
    return d, v, cpu


def row(name, mb, d, v, cpu, over):
    added = statistics.median(b - a for a, b in zip(d, v))
    print("| %s | %.2f | %.2f | %.2f | %.2f | %.3f | %.2f | %.2f | %s |" % (
        name, mb, statistics.median(d), statistics.median(v), added, added / mb, cpu, cpu / mb, over))
    sys.stdout.flush()


def main():
    texts = [open(os.path.join(fixtures(), f)).read() for f in MIX]
    tmp = tempfile.mkdtemp(prefix="hr-large-")
    up = FastUpstream(tmp)
    nginxes = []  # (label, process, port)
    for key, unbuffered, label in (("nginx", False, "nginx proxy_pass"),
                                   ("nginx-unbuffered", True, "nginx proxy_pass, proxy_request_buffering off")):
        if key in PROXIES:
            proc, port = nginx_start(tmp, up.port, unbuffered)
            if proc:
                nginxes.append((label, proc, port))
    conf = open(os.path.join(TOP, "conf", "headroom.conf")).read()
    conf = "\n".join(line for line in conf.splitlines()
                     if not line.startswith(("host ", "port ", "openai_api_url", "anthropic_api_url", "workers")))
    conf = hrtest.DEFAULT_CONF + conf + "\nlog_level warn\n"
    print("%d requests per size (10 MB: %d), load %s, %s, client %s" % (
        N, max(5, N // 2), open("/proc/loadavg").read().split()[0], time.strftime("%Y-%m-%d %H:%M"),
        "paced at %g MB/s" % (RATE / 1e6) if RATE else "unpaced"))
    print()
    print("| proxy | MB | direct p50 ms | via proxy p50 ms | added p50 ms | added ms/MB | proxy CPU ms/request | CPU ms/MB | /stats overhead p50 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    serial = 0
    try:
        for mb in SIZES:
            n = N if mb < 10 else max(5, N // 2)
            bodies = []
            for _ in range(n + 1):
                bodies.append(body(texts, mb, serial))
                serial += 1
            real_mb = statistics.mean(len(b) for b in bodies) / 1e6
            cases = [("no", "headroomd optimize no", conf + "optimize no\n"),
                     ("no-buffered", "headroomd optimize no, cut_through no", conf + "optimize no\ncut_through no\n"),
                     ("optimized", "headroomd optimized", conf)]
            for key, name, text in cases:
                if key not in PROXIES or (mb == 5 and key != "optimized"):
                    continue
                with hrtest.Headroomd(conf_text=text, mock=up) as hd:
                    d, v, cpu = measure(hd.port, up.port, hd.pid, bodies, n)
                    st, stats = hrtest.get_json(hd.url + "/stats")
                    over = stats.get("overhead", {}).get("p50_ms", float("nan"))
                row(name, real_mb, d, v, cpu, "%.3f" % over)
            for label, ngx, ngx_port in nginxes if mb != 5 else []:
                d, v, cpu = measure(ngx_port, up.port, ngx.pid, bodies, n)
                row(label, real_mb, d, v, cpu, "")
    finally:
        for _, ngx, _ in nginxes:
            ngx.send_signal(signal.SIGTERM)
            ngx.wait()
        up.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)  # the daemons are stopped; skip the TAP harness's exit report
