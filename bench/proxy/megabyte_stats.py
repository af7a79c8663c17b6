#!/usr/bin/env python3
"""megabyte_stats.py — where headroomd's time goes before it forwards a
never-seen 1 MB agent request, by its own /stats.

Starts bench/proxy_vs_nginx/fast_upstream and, for each compress_threads
value, a headroomd with the shipped config; sends N never-seen 1 MB requests
(large_bodies.py's: 8 unique tool outputs) one at a time on a keep-alive
connection, GAP_MS apart, and prints the averages /stats keeps for them:
"overhead" (before forwarding), "pipeline_timing" per stage and
pipeline_total, overhead minus pipeline_total (the work around the
pipeline: parse, serialise, headers, sending), and every thread's CPU per
request, time spent runnable but waiting for a CPU, and how many times it
was put on one (/proc/PID/task/*/schedstat, work after the answer
included), and the process's minor page faults per request (memory the
daemon touched for the first time: caches filling up).

Usage: HEADROOMD=/path/to/plain-build/src/headroomd bench/proxy/megabyte_stats.py [N] [FIXTURE_DIR] [THREADS...]
  N: requests per daemon (default 40); THREADS: compress_threads values (default 1 2)
  GAP_MS: pause before each request (default 20); ROUNDS: daemons per value (default 1)
  PIN=1: workers pinned to CPU 0 and compress helpers to CPU 1 (is the wait placement?)
  EXTRA_CONF: config lines to add, ';'-separated (under valgrind: "stage_budget_ms 60000")
Everything runs on 127.0.0.1 and is stopped on exit.
"""
import os
import shutil
import sys
import tempfile
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import large_bodies as lb  # noqa: E402  (body(), Conn, the daemon config)

hrtest = lb.hrtest
N = int(sys.argv[1]) if len(sys.argv) > 1 else 40
FX = sys.argv[2] if len(sys.argv) > 2 else None
THREADS = [int(t) for t in sys.argv[3:]] or [1, 2]
GAP = float(os.environ.get("GAP_MS", "20")) / 1000
ROUNDS = int(os.environ.get("ROUNDS", "1"))
PIN = os.environ.get("PIN") == "1"


def thread_cpu(pid):
    """{tid: (name, on-CPU ns, ns waited runnable for a CPU)} for every thread of pid."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            name = open("/proc/%d/task/%s/comm" % (pid, tid)).read().strip()
            run, wait, slices = open("/proc/%d/task/%s/schedstat" % (pid, tid)).read().split()[:3]
            out[tid] = (name, int(run), int(wait), int(slices))
        except (OSError, ValueError):
            pass
    return out


def minor_faults(pid):
    """The process's minor page faults so far (/proc/PID/stat field 10)."""
    return int(open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[7])


def pin(pid):
    """Workers on the first CPU, compress helpers on the second (PIN=1)."""
    for tid in os.listdir("/proc/%d/task" % pid):
        name = open("/proc/%d/task/%s/comm" % (pid, tid)).read().strip()
        if name.startswith(("hr-worker", "hr-compress")):
            os.sched_setaffinity(int(tid), {0} if name.startswith("hr-worker") else {1})


def one_daemon(conf, up, bodies, threads):
    text = conf + "\ncompress_threads %d\n" % threads
    with hrtest.Headroomd(conf_text=text, mock=up) as hd:
        if PIN:
            pin(hd.pid)
        conn = lb.Conn(hd.port)
        conn.post(bodies[-1])  # warm: connection open, plugins touched
        time.sleep(GAP * 5)
        before = hrtest.get_json(hd.url + "/stats")[1]
        c0 = thread_cpu(hd.pid)
        f0 = minor_faults(hd.pid)
        for b in bodies[:-1]:
            time.sleep(GAP)
            conn.post(b)
        time.sleep(GAP * 5)  # the count after forwarding, and the sinks
        c1 = thread_cpu(hd.pid)
        faults = (minor_faults(hd.pid) - f0) / (len(bodies) - 1)
        after = hrtest.get_json(hd.url + "/stats")[1]
        conn.close()
    n = len(bodies) - 1
    zero = (None, 0, 0, 0)
    cpu = sorted(((c1[t][1] - c0.get(t, zero)[1]) / 1e6 / n, c1[t][0], (c1[t][2] - c0.get(t, zero)[2]) / 1e6 / n,
                  (c1[t][3] - c0.get(t, zero)[3]) / n) for t in c1)
    return delta(before, after), [c for c in reversed(cpu) if c[0] >= 0.01], faults


def avg_delta(a, b):
    """The average of what a /stats histogram gained between two snapshots."""
    n = b["count"] - a.get("count", 0)
    return (b["count"] * b["average_ms"] - a.get("count", 0) * a.get("average_ms", 0)) / n if n > 0 else float("nan")


def delta(before, after):
    rows = [("overhead", avg_delta(before["overhead"], after["overhead"]))]
    pb, pa = before.get("pipeline_timing", {}), after.get("pipeline_timing", {})
    for name, h in pa.items():
        rows.append((name, avg_delta(pb.get(name, {}), h)))
    total = dict(rows).get("pipeline_total", float("nan"))
    rows.insert(1, ("overhead - pipeline_total", rows[0][1] - total))
    return rows


def main():
    texts = [open(os.path.join(lb.fixtures() if not FX else FX, f)).read() for f in lb.MIX]
    tmp = tempfile.mkdtemp(prefix="hr-mb-")
    up = lb.FastUpstream(tmp)
    conf = open(os.path.join(lb.TOP, "conf", "headroom.conf")).read()
    conf = "\n".join(line for line in conf.splitlines()
                     if not line.startswith(("host ", "port ", "openai_api_url", "anthropic_api_url", "workers",
                                             "compress_threads")))
    conf = hrtest.DEFAULT_CONF + conf + "\nlog_level warn\n" + os.environ.get("EXTRA_CONF", "").replace(";", "\n")
    print("%d never-seen 1 MB requests per daemon, %.0f ms apart, load %s, %s" % (
        N, GAP * 1000, open("/proc/loadavg").read().split()[0], time.strftime("%Y-%m-%d %H:%M")))
    serial = 0
    try:
        for r in range(ROUNDS):
            for t in THREADS:
                bodies = []
                for _ in range(N + 1):
                    bodies.append(lb.body(texts, 1, serial))
                    serial += 1
                rows, cpu, faults = one_daemon(conf, up, bodies, t)
                print()
                print("compress_threads %d, round %d: /stats averages (ms) over %d requests" % (t, r + 1, N))
                print("| what | average ms |\n|---|---|")
                for name, v in rows:
                    if name in ("overhead", "overhead - pipeline_total", "pipeline_total") or v >= 0.05:
                        print("| %s | %.3f |" % (name, v))
                print("threads' CPU ms per request: " + ", ".join("%s %.2f" % (name, ms) for ms, name, _, _ in cpu))
                print("threads' ms per request runnable but waiting for a CPU (times it got one): " +
                      ", ".join("%s %.2f (%.0f)" % (name, w, k) for _, name, w, k in cpu))
                print("minor page faults per request: %.0f" % faults)
                sys.stdout.flush()
    finally:
        up.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)
