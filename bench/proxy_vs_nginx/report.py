#!/usr/bin/env python3
"""report.py RUNS.tsv [ONECONN.tsv] — the summary tables of bench/proxy_vs_nginx/run.sh.

Each figure is the median over rounds; [a–b] is the range over rounds.
Ratios are headroomd/nginx, computed per round (the two runs of a round are
back to back) and then taken as the median, so drift on a shared machine
cancels out as far as it can.
"""
import csv
import statistics
import sys

TARGET_RPS = 0.7      # headroomd/nginx throughput at 16 and 64 connections
TARGET_P99 = 1.5      # headroomd/nginx p99
TARGET_CPU = 25.0     # µs of CPU per request
TARGET_ADDED = 40.0   # µs added at one connection over a direct call

all_rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
pace_of = lambda r: int(r.get("pace_ms") or 0)  # (an older RUNS.tsv has no pace_ms)
rows = [r for r in all_rows if not pace_of(r)]
paced = [r for r in all_rows if pace_of(r)]
bodies = list(dict.fromkeys(r["body"] for r in rows))
conns = sorted({int(r["conns"]) for r in rows})
rounds = sorted({int(r["round"]) for r in rows})


def get(target, body, c, key, src=None, pace=0):
    return {int(r["round"]): float(r[key]) for r in (rows if src is None else src)
            if r["target"] == target and r["body"] == body and int(r["conns"]) == c and r[key] != ""
            and pace_of(r) == pace}


def med(d):
    return statistics.median(d.values()) if d else float("nan")


def rng(d, fmt="%.0f"):
    return ("[" + fmt % min(d.values()) + "–" + fmt % max(d.values()) + "]") if len(d) > 1 else ""


def ratio(a, b):
    per = {k: a[k] / b[k] for k in a if k in b and b[k]}
    return med(per), per


def verdict(ok):
    return "met" if ok else "**not met**"


def abs_verdict(mine, floor, target):
    """An absolute target's verdict, and whether nginx, the floor, meets it in
    the same run: a target nginx misses says more about the host than about
    headroomd (on a paravirtualised 2-vCPU guest its kernel time alone is
    over 25 µs a request)."""
    return verdict(mine <= target) + ("" if floor <= target else " (nginx: not met either)")


errors = sum(int(r["errors"]) for r in all_rows)
label = {"json": "small JSON", "sse": "SSE stream", "agent": "Claude Code turn (AGENT_BODY)"}
# The targets are for small requests; an agent's turn is shown for
# what it costs next to nginx, without a verdict.
small = lambda b: b in ("json", "sse")
print()
print("Throughput and latency (median of %d rounds; [range]):" % len(rounds))
print()
print("| request | conns | nginx req/s | headroomd req/s | ratio (target) | nginx p50 / p99 µs | headroomd p50 / p99 µs | p99 ratio (target ≤ %.1f×) | CPU µs/req nginx | CPU µs/req headroomd (target ≤ %.0f) |" % (TARGET_P99, TARGET_CPU))
print("|---|---|---|---|---|---|---|---|---|---|")
for b in bodies:
    for c in conns:
        n_rps, h_rps = get("nginx", b, c, "req_s"), get("headroomd", b, c, "req_s")
        if not n_rps or not h_rps:
            continue
        r, per = ratio(h_rps, n_rps)
        tgt = (" (≥ %.1f: %s)" % (TARGET_RPS, verdict(r >= TARGET_RPS))) if c >= 16 and small(b) else ""
        n50, n99 = get("nginx", b, c, "p50_us"), get("nginx", b, c, "p99_us")
        h50, h99 = get("headroomd", b, c, "p50_us"), get("headroomd", b, c, "p99_us")
        p99r, p99per = ratio(h99, n99)
        ncpu, hcpu = get("nginx", b, c, "proxy_cpu_us_req"), get("headroomd", b, c, "proxy_cpu_us_req")
        print("| %s | %d | %.0f %s | %.0f %s | %.2f× %s%s | %.0f / %.0f | %.0f / %.0f | %.2f× %s %s | %.1f | %.1f %s %s |" % (
            label.get(b, b), c, med(n_rps), rng(n_rps), med(h_rps), rng(h_rps), r, rng(per, "%.2f"), tgt,
            med(n50), med(n99), med(h50), med(h99), p99r, rng(p99per, "%.2f"),
            verdict(p99r <= TARGET_P99) if small(b) else "",
            med(ncpu), med(hcpu), rng(hcpu, "%.1f"), abs_verdict(med(hcpu), med(ncpu), TARGET_CPU) if small(b) else ""))

if paced:
    print()
    print("At a paced load (each connection waits PACE ms after an answer before its next request: both proxies")
    print("serve it without a standing queue, so the p99 is the proxy's own, not the depth of its queue at")
    print("saturation; wrk fires its connections' timers on the same millisecond ticks, so requests still come")
    print("in bursts of up to one per connection):")
    print()
    print("| request | conns | pace ms | nginx req/s | headroomd req/s | nginx p50 / p99 µs | headroomd p50 / p99 µs | p99 ratio (target ≤ %.1f×) | CPU µs/req nginx / headroomd |" % TARGET_P99)
    print("|---|---|---|---|---|---|---|---|---|")
    for b in dict.fromkeys(r["body"] for r in paced):
        for c, pace in sorted({(int(r["conns"]), pace_of(r)) for r in paced if r["body"] == b}):
            g = lambda t, k: get(t, b, c, k, paced, pace)
            n_rps, h_rps = g("nginx", "req_s"), g("headroomd", "req_s")
            if not n_rps or not h_rps:
                continue
            p99r, per = ratio(g("headroomd", "p99_us"), g("nginx", "p99_us"))
            print("| %s | %d | %d | %.0f | %.0f | %.0f / %.0f | %.0f / %.0f | %.2f× %s %s | %.1f / %.1f |" % (
                label.get(b, b), c, pace, med(n_rps), med(h_rps), med(g("nginx", "p50_us")), med(g("nginx", "p99_us")),
                med(g("headroomd", "p50_us")), med(g("headroomd", "p99_us")), p99r, rng(per, "%.2f"),
                verdict(p99r <= TARGET_P99) if small(b) else "", med(g("nginx", "proxy_cpu_us_req")),
                med(g("headroomd", "proxy_cpu_us_req"))))

print()
print("Added latency at one connection (p50 through the proxy minus p50 straight to the upstream, same round; target ≤ +%.0f µs):" % TARGET_ADDED)
print()
print("| request | direct p50 / p99 µs | nginx p50 / p99 µs | nginx adds p50 | headroomd p50 / p99 µs | headroomd adds p50 | target |")
print("|---|---|---|---|---|---|---|")
for b in bodies:
    d50, d99 = get("direct", b, 1, "p50_us"), get("direct", b, 1, "p99_us")
    if not d50:
        continue
    n50, n99 = get("nginx", b, 1, "p50_us"), get("nginx", b, 1, "p99_us")
    h50, h99 = get("headroomd", b, 1, "p50_us"), get("headroomd", b, 1, "p99_us")
    nadd = {k: n50[k] - d50[k] for k in n50 if k in d50}
    hadd = {k: h50[k] - d50[k] for k in h50 if k in d50}
    print("| %s | %.0f / %.0f | %.0f / %.0f | +%.0f µs %s | %.0f / %.0f | +%.0f µs %s | %s |" % (
        label.get(b, b), med(d50), med(d99), med(n50), med(n99), med(nadd), rng(nadd), med(h50), med(h99),
        med(hadd), rng(hadd), abs_verdict(med(hadd), med(nadd), TARGET_ADDED) if small(b) else "—"))

print()
print("The upstream alone (is it the bottleneck?):")
print()
print("| request | conns | direct req/s | upstream CPU µs/req direct | via nginx | via headroomd |")
print("|---|---|---|---|---|---|")
for b in bodies:
    for c in conns:
        d = get("direct", b, c, "req_s")
        if not d:
            continue
        print("| %s | %d | %.0f %s | %.1f | %.1f | %.1f |" % (
            label.get(b, b), c, med(d), rng(d), med(get("direct", b, c, "upstream_cpu_us_req")),
            med(get("nginx", b, c, "upstream_cpu_us_req")), med(get("headroomd", b, c, "upstream_cpu_us_req"))))

if len(sys.argv) > 2:
    one = list(csv.DictReader(open(sys.argv[2]), delimiter="\t"))

    def one_get(target, body, key):
        return {int(r["round"]): float(r[key]) for r in one if r["target"] == target and r["body"] == body}

    print()
    print("One client waiting on each answer (one_conn.c: every request's own latency, no coordinated-omission")
    print("correction, so a host stall costs one sample, not hundreds; median of rounds):")
    print()
    print("| request | direct p50 / p99 µs | nginx p50 / p99 / p99.9 µs | headroomd p50 / p99 / p99.9 µs | headroomd adds p50 | p99 ratio (target ≤ %.1f×) | requests over 10 ms, nginx / headroomd |" % TARGET_P99)
    print("|---|---|---|---|---|---|---|")
    for b in dict.fromkeys(r["body"] for r in one):
        d50, d99 = one_get("direct", b, "p50_us"), one_get("direct", b, "p99_us")
        n50, n99, n999 = (one_get("nginx", b, k) for k in ("p50_us", "p99_us", "p999_us"))
        h50, h99, h999 = (one_get("headroomd", b, k) for k in ("p50_us", "p99_us", "p999_us"))
        if not n50 or not h50:
            continue
        hadd = {k: h50[k] - d50[k] for k in h50 if k in d50}
        p99r, per = ratio(h99, n99)
        print("| %s | %.0f / %.0f | %.0f / %.0f / %.0f | %.0f / %.0f / %.0f | +%.0f µs %s | %.2f× %s %s | %d / %d |" % (
            label.get(b, b), med(d50), med(d99), med(n50), med(n99), med(n999), med(h50), med(h99), med(h999),
            med(hadd), rng(hadd), p99r, rng(per, "%.2f"), verdict(p99r <= TARGET_P99),
            sum(one_get("nginx", b, "over10ms").values()), sum(one_get("headroomd", b, "over10ms").values())))

    # nginx_bg: the same nginx with background_load.c beside it (run.sh NGINX_BG)
    if any(r["target"] == "nginx_bg" for r in one):
        print()
        print("The same nginx beside CPU bursts shaped like headroomd's sink threads (background_load.c, BG_SHAPE):")
        print("what background work alone costs one client on this host, next to headroomd (median of rounds):")
        print()
        print("| request | nginx p99 µs | nginx beside the bursts p50 / p99 / p99.9 µs | headroomd p99 µs | headroomd p99 / nginx beside the bursts |")
        print("|---|---|---|---|---|")
        for b in dict.fromkeys(r["body"] for r in one):
            g50, g99, g999 = (one_get("nginx_bg", b, k) for k in ("p50_us", "p99_us", "p999_us"))
            n99, h99 = one_get("nginx", b, "p99_us"), one_get("headroomd", b, "p99_us")
            if not g50 or not h99:
                continue
            r, per = ratio(h99, g99)
            print("| %s | %.0f | %.0f / %.0f / %.0f | %.0f | %.2f× %s |" % (
                label.get(b, b), med(n99), med(g50), med(g99), med(g999), med(h99), r, rng(per, "%.2f")))

    # (columns added with thread_cpu.py; an older ONECONN.tsv has none)
    if one and "cpu_user_us" in one[0]:
        def threads_med(target, b):
            per = {}
            for r in one:
                if r["target"] == target and r["body"] == b and r["cpu_threads"] not in ("", "-"):
                    for part in r["cpu_threads"].split(","):
                        name, uk = part.split("=")
                        per.setdefault(name, []).append(tuple(float(x) for x in uk.split("/")))
            n = len([r for r in one if r["target"] == target and r["body"] == b])
            out = []
            for name, vals in per.items():
                vals += [(0.0, 0.0)] * (n - len(vals))
                u, k = statistics.median(v[0] for v in vals), statistics.median(v[1] for v in vals)
                if u + k >= 0.5:
                    out.append((u + k, "%s %.1f / %.1f" % (name, u, k)))
            return "; ".join(x for _, x in sorted(out, reverse=True))

        def up_total(target, b):
            return med({k: v + one_get(target, b, "up_kernel_us").get(k, 0)
                        for k, v in one_get(target, b, "up_user_us").items()})

        print()
        print("Where one client's requests spend CPU (µs per request, user space / kernel, median of rounds;")
        print("thread_cpu.py: /proc ticks over each one_conn run, by thread for headroomd):")
        print()
        print("| request | nginx user / kernel | headroomd user / kernel | headroomd by thread, user / kernel | upstream's CPU: direct / via nginx / via headroomd |")
        print("|---|---|---|---|---|")
        for b in dict.fromkeys(r["body"] for r in one):
            nu, nk = med(one_get("nginx", b, "cpu_user_us")), med(one_get("nginx", b, "cpu_kernel_us"))
            hu, hk = med(one_get("headroomd", b, "cpu_user_us")), med(one_get("headroomd", b, "cpu_kernel_us"))
            print("| %s | %.1f / %.1f | %.1f / %.1f | %s | %.1f / %.1f / %.1f |" % (
                label.get(b, b), nu, nk, hu, hk, threads_med("headroomd", b),
                up_total("direct", b), up_total("nginx", b), up_total("headroomd", b)))

print()
print("Errors (socket or non-2xx) over all runs: %d" % errors)
