#!/usr/bin/env python3
"""bench_proxy.py — what headroomd adds to a request, measured end to end.

Starts t/mock-upstream and headroomd (conf/headroom.conf's transforms), then
sends the same requests straight to the mock and through headroomd, one at a
time over keep-alive connections, and prints client-side p50/p99 latency for
both plus headroomd's own /stats overhead figures.

Usage: HEADROOMD=_build/src/headroomd bench/proxy/bench_proxy.py [N] [FIXTURE_DIR]
"""
import http.client
import json
import os
import statistics
import sys
import time

sys.dont_write_bytecode = True
TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "t"))
import hrtest  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200
FX = sys.argv[2] if len(sys.argv) > 2 else None


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def run(port, path, body, headers, n):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    data = json.dumps(body).encode()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("POST", path, body=data, headers=dict(headers, **{"Content-Type": "application/json"}))
        r = conn.getresponse()
        r.read()
        times.append((time.perf_counter() - t0) * 1000)
        if r.status != 200:
            raise SystemExit("status %d on %s" % (r.status, path))
    conn.close()
    return times


def main():
    small = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello"}]}
    stream = dict(small, stream=True)
    cases = [("small JSON, no tool output", small, N), ("SSE stream (4 deltas)", stream, N)]
    if FX:
        rows = open(os.path.join(FX, "logs_1000.json")).read()
        agent = {"model": "gpt-4o", "messages": [
            {"role": "user", "content": "Which requests failed?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "logs", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": rows}]}
        cases.append(("agent request, 1000-row log output (185 KB)", agent, max(20, N // 5)))
    conf = open(os.path.join(TOP, "conf", "headroom.conf")).read()
    conf = "\n".join(line for line in conf.splitlines()
                     if not line.startswith(("host ", "port ", "openai_api_url", "anthropic_api_url", "workers")))
    conf = hrtest.DEFAULT_CONF + conf + "\nlog_level warn\n"
    print("| request | n | direct p50 / p99 ms | via headroomd p50 / p99 ms | added p50 ms | /stats overhead p50 / p99 ms |")
    print("|---|---|---|---|---|---|")
    with hrtest.Mock() as mock:
        for name, body, n in cases:
            with hrtest.Headroomd(conf_text=conf) as hd:
                mport = int(mock.url.rsplit(":", 1)[1])
                run(mport, "/v1/chat/completions", body, {}, 5)  # warm up
                run(hd.port, "/v1/chat/completions", body, {}, 5)
                hrtest.request("POST", hd.url + "/stats/reset")
                direct = run(mport, "/v1/chat/completions", body, {}, n)
                via = run(hd.port, "/v1/chat/completions", body, {}, n)
                st, stats = hrtest.get_json(hd.url + "/stats")
                o = stats["overhead"]
                print("| %s | %d | %.2f / %.2f | %.2f / %.2f | %.2f | %.3f / %.3f |" % (
                    name, n, pct(direct, .5), pct(direct, .99), pct(via, .5), pct(via, .99),
                    statistics.median(via) - statistics.median(direct), o["p50_ms"], o["p99_ms"]))


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)  # the daemons are stopped; skip the TAP harness's exit report
