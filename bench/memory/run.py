#!/usr/bin/env python3
"""bench/memory/run.py — headroomd's resident memory before, during and after
heavy traffic, with the shipped config.

Starts bench/proxy_vs_nginx/fast_upstream (24 MB request buffer) and
headroomd (conf/headroom.conf, only host, port and the API URLs changed;
workers auto), then:

  1. baseline: a few small requests, RSS;
  2. STREAMS SSE streams (SSE_CLIENTS at a time), each carrying a new 60 KB
     tool output, then idle: RSS at a few points over IDLE_S seconds;
  3. heavy traffic: REQUESTS agent requests of 0.3-1.2 MB from CLIENTS threads,
     every tool output never seen before (JSON arrays, logs, grep output,
     diffs, HTML), so the CCR store and every result cache fill up;
  4. idle again.

RSS is sampled every 100 ms throughout (peak), and the caches' own byte
counts are read from /stats at the end. Prints one Markdown table.

Usage: HEADROOMD=/path/to/plain-build/src/headroomd bench/memory/run.py
Knobs (environment): REQUESTS=300 CLIENTS=3 STREAMS=1000 SSE_CLIENTS=25
IDLE_S=35 CONF=headroom.conf (default conf/headroom.conf) EXTRA_CONF="lines"
Everything runs on 127.0.0.1, bounded in time, and is stopped on exit.
"""
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "t"))
import hrtest  # noqa: E402
sys.path.insert(0, os.path.join(TOP, "bench", "proxy_vs_nginx"))
from fast_upstream import FastUpstream  # noqa: E402

REQUESTS = int(os.environ.get("REQUESTS", "300"))
CLIENTS = int(os.environ.get("CLIENTS", "3"))
STREAMS = int(os.environ.get("STREAMS", "1000"))
SSE_CLIENTS = int(os.environ.get("SSE_CLIENTS", "25"))
IDLE_S = float(os.environ.get("IDLE_S", "35"))
JSON_FX = ["search_1000.json", "logs_1000.json", "db_1000.json", "metrics_1000.json", "code_1000.json",
           "api_1000.json", "mixed_1000.json", "search_100.json", "logs_100.json", "api_100.json"]
TEXT_FX = ["app_log_needles.txt", "make_gcc_error.txt", "journald.txt", "maven_build.txt", "grep_rn_src.txt",
           "git_show_mixed.txt", "git_log_p.txt", "html_needles.txt", "nodejs_path.txt", "docker_build.txt"]


def rss_kb(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Sampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop_flag = pid, 0, False

    def run(self):
        while not self.stop_flag:
            try:
                self.peak = max(self.peak, rss_kb(self.pid))
            except OSError:
                return
            time.sleep(0.1)


def load_fixtures(tmp):
    fx = os.path.join(tmp, "fx")
    subprocess.check_call([sys.executable, os.path.join(TOP, "t", "fixtures", "gen_fixtures.py"), "--out", fx],
                          stdout=subprocess.DEVNULL)
    js = [open(os.path.join(fx, f)).read() for f in JSON_FX]
    tx = [open(os.path.join(TOP, "t", "fixtures", "text", f), errors="replace").read() for f in TEXT_FX]
    return js, tx


def unique(text, tag, is_json):
    """The output again, never seen before: a JSON root gains a member, text a first line."""
    t = text.lstrip()
    if not is_json:
        return "# run %s\n%s" % (tag, text)
    return ('{"call":"%s",%s' % (tag, t[1:]) if t.startswith("{") else '{"call":"%s","rows":%s}' % (tag, t))


def agent_body(js, tx, serial, n_outputs, stream=False):
    msgs = [{"role": "system", "content": "You are a coding agent."},
            {"role": "user", "content": "Find the failing requests and explain why."}]
    for k in range(n_outputs):
        is_json = (serial + k) % 3 != 2
        src = js[(serial + k) % len(js)] if is_json else tx[(serial * 7 + k) % len(tx)]
        cid = "call_%d" % k
        msgs.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": cid, "type": "function", "function": {"name": "run_tool", "arguments": "{}"}}]})
        msgs.append({"role": "tool", "tool_call_id": cid, "content": unique(src, "%d-%d" % (serial, k), is_json)})
    body = {"model": "gpt-4o", "messages": msgs}
    if stream:
        body["stream"] = True
    return json.dumps(body, separators=(",", ":")).encode()


def post(conn, data):
    conn.request("POST", "/v1/chat/completions", body=data,
                 headers={"Content-Type": "application/json", "Authorization": "Bearer bench"})
    r = conn.getresponse()
    r.read()
    return r.status


def run_clients(port, n_threads, jobs):
    """jobs(i) -> body; n_threads threads share range(len) of jobs."""
    errors = []
    counter = iter(range(jobs[0]))
    lock = threading.Lock()

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            try:
                st = post(conn, jobs[1](i))
                if st != 200:
                    errors.append(st)
            except (OSError, http.client.HTTPException) as e:
                errors.append(repr(e))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.close()

    ts = [threading.Thread(target=worker) for _ in range(n_threads)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    return errors


def errors(errs):
    return " (%d requests failed: %s)" % (len(errs), errs[:3]) if errs else ""


def stores_mb(url):
    st, stats = hrtest.get_json(url + "/stats")
    return sum(cache_bytes(stats).values()) / 1048576


def idle(rows, hd, what):
    """RSS at a few points of an idle spell of IDLE_S seconds."""
    t0 = time.monotonic()
    for mark in sorted({5, 15, 35, IDLE_S}):
        if mark > IDLE_S:
            continue
        time.sleep(max(0, t0 + mark - time.monotonic()))
        rows.append(("%s %g s" % (what, mark), rss_kb(hd.pid), "%.1f" % stores_mb(hd.url)))


def cache_bytes(stats):
    """Byte counts the daemon reports for its stores and result caches."""
    out = {"ccr": stats.get("ccr", {}).get("bytes", 0)}
    if stats.get("cache", {}).get("enabled"):
        out["response cache"] = stats["cache"].get("bytes", 0)
    for name, block in stats.items():
        if isinstance(block, dict) and isinstance(block.get("result_cache"), dict):
            out[name + " results"] = block["result_cache"].get("bytes", 0)
    return out


def main():
    tmp = tempfile.mkdtemp(prefix="hr-memory-")
    up = FastUpstream(tmp)
    js, tx = load_fixtures(tmp)
    conf = open(os.environ.get("CONF") or os.path.join(TOP, "conf", "headroom.conf")).read()
    conf = "\n".join(line for line in conf.splitlines()
                     if not line.startswith(("host ", "port ", "openai_api_url", "anthropic_api_url")))
    conf = ("host 127.0.0.1\nport @PORT@\nopenai_api_url @MOCK_URL@\nanthropic_api_url @MOCK_URL@\n" + conf +
            "\nlog_level warn\n" + os.environ.get("EXTRA_CONF", "").replace("\\n", "\n") + "\n")
    rows = []
    try:
        with hrtest.Headroomd(conf_text=conf, mock=up) as hd:
            pid = hd.pid
            sampler = Sampler(pid)
            sampler.start()
            small = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}).encode()
            run_clients(hd.port, 1, (5, lambda i: small))
            time.sleep(2)
            rows.append(("baseline (5 small requests)", rss_kb(pid), "%.1f" % stores_mb(hd.url)))
            t0 = time.monotonic()
            # ~60 KB of new tool output per stream
            errs = run_clients(hd.port, SSE_CLIENTS,
                               (STREAMS, lambda i: agent_body(js, [t[:60000] for t in tx], 900000 + i, 1,
                                                              stream=True)))
            rows.append(("after %d SSE streams (%d at a time, %.0f s)" % (STREAMS, SSE_CLIENTS,
                                                                      time.monotonic() - t0),
                         rss_kb(pid), "%.1f%s" % (stores_mb(hd.url), errors(errs))))
            idle(rows, hd, "streams over, idle")
            t0 = time.monotonic()
            sizes = [3, 8, 12]  # outputs per request: ~0.3 / 0.8 / 1.2 MB
            errs = run_clients(hd.port, CLIENTS,
                               (REQUESTS, lambda i: agent_body(js, tx, 1000 + i, sizes[i % 3])))
            rows.append(("after %d never-seen agent requests (%d clients, %.0f s)" % (REQUESTS, CLIENTS,
                                                                                 time.monotonic() - t0),
                         rss_kb(pid), "%.1f%s" % (stores_mb(hd.url), errors(errs))))
            st, stats = hrtest.get_json(hd.url + "/stats")
            idle(rows, hd, "idle")
            sampler.stop_flag = True
            peak = sampler.peak
            trims = [line for line in hd.stderr_text().splitlines() if "headroom.memory" in line]
            rss_anon = [line for line in open("/proc/%d/status" % pid) if line.startswith(("RssAnon", "RssFile"))]
    finally:
        up.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("headroomd %s, load %s, %s" % (os.environ.get("HEADROOMD", ""), open("/proc/loadavg").read().split()[0],
                                         time.strftime("%Y-%m-%d %H:%M")))
    print()
    print("| point | RSS MB | held by the stores, MB (/stats) |")
    print("|---|---|---|")
    for name, kb, note in rows:
        print("| %s | %.1f | %s |" % (name, kb / 1024, note))
    print("| peak (sampled every 100 ms) | %.1f | |" % (peak / 1024))
    print()
    print("At the end: " + ", ".join(l.split(":")[0] + " " + "%.1f MB" % (int(l.split()[1]) / 1024)
                                     for l in rss_anon))
    for line in trims:  # with EXTRA_CONF="log_level debug"
        print("    " + line)
    print("Held by the stores (/stats at the end of the traffic): " +
          ", ".join("%s %.1f MB" % (k, v / 1048576) for k, v in cache_bytes(stats).items()))


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)  # the daemon is stopped; skip the TAP harness's exit report
