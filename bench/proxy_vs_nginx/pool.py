#!/usr/bin/env python3
"""pool.py — the saturated and paced rows of several run.sh runs, pooled.

One run.sh run takes the median of 5 rounds; at 16 connections both nginx's
p99 and headroomd's move between two modes from round to round, so one run's
verdict on a p99 row flips. Pooling the paired rounds of many runs says where
the ratio sits and how often a single round misses.

Usage: bench/proxy_vs_nginx/pool.py OUT_DIR...   (the OUT= of each run.sh)

For each request kind, connection count and pace it prints the rounds pooled,
the median and geometric mean of the per-round p99 ratios (headroomd over
nginx, same round), the share of rounds over the 1.5x target, each run's own
verdict (the median of its rounds, as report.py computes it), and the
per-round medians of the p50 ratio, the req/s ratio (nginx over headroomd)
and the CPU ratio, which say how much of the p99 gap is the proxy's cost.
"""
import csv
import math
import os
import signal
import statistics
import sys

TARGET = 1.5


def rounds(path):
    with open(os.path.join(path, "runs.tsv")) as f:
        return list(csv.DictReader(f, delimiter="\t"))


def per_round(rows, body, conns, pace, field):
    """{round: value} for nginx and headroomd; rounds with both only."""
    got = {"nginx": {}, "headroomd": {}}
    for r in rows:
        if r["body"] == body and r["conns"] == conns and r["pace_ms"] == pace and r["target"] in got:
            try:
                got[r["target"]][r["round"]] = float(r[field])
            except ValueError:
                pass
    both = sorted(set(got["nginx"]) & set(got["headroomd"]))
    return [(got["nginx"][k], got["headroomd"][k]) for k in both]


def main(dirs):
    if not dirs:
        sys.exit("usage: pool.py OUT_DIR... (the OUT= directories of run.sh runs)")
    runs = []
    for d in dirs:
        try:
            runs.append((d, rounds(d)))
        except OSError as e:
            sys.exit("pool.py: cannot read %s/runs.tsv (%s): pass the OUT= directory of a finished run.sh" % (d, e))
    kinds = sorted({(r["body"], r["conns"], r["pace_ms"]) for _, rs in runs for r in rs
                    if r["target"] == "headroomd" and r["conns"] != "1" and r["round"] not in ("0", "P")},
                   key=lambda k: (k[0], int(k[1]), float(k[2] or 0)))
    print("| request | conns | pace ms | rounds | p99 ratio: median / geometric mean | rounds over %.1fx | "
          "runs met (each run's median) | p50 ratio | req/s ratio nginx/headroomd | CPU ratio |" % TARGET)
    print("|---|---|---|---|---|---|---|---|---|---|")
    for body, conns, pace in kinds:
        p99, p50, rps, cpu, verdicts = [], [], [], [], []
        for _, rs in runs:
            pairs = [h / n for n, h in per_round(rs, body, conns, pace, "p99_us") if n > 0]
            if not pairs:
                continue
            p99 += pairs
            verdicts.append(statistics.median(pairs) <= TARGET)
            p50 += [h / n for n, h in per_round(rs, body, conns, pace, "p50_us") if n > 0]
            rps += [n / h for n, h in per_round(rs, body, conns, pace, "req_s") if h > 0]
            cpu += [h / n for n, h in per_round(rs, body, conns, pace, "proxy_cpu_us_req") if n > 0]
        if not p99:
            continue
        med = lambda xs: "%.2f" % statistics.median(xs) if xs else "-"
        gmean = math.exp(statistics.mean(math.log(x) for x in p99))
        over = sum(x > TARGET for x in p99)
        print("| %s | %s | %s | %d | %.2f / %.2f | %d (%.0f %%) | %d of %d | %s | %s | %s |" % (
            body, conns, pace or "0", len(p99), statistics.median(p99), gmean, over, 100.0 * over / len(p99),
            sum(verdicts), len(verdicts), med(p50), med(rps), med(cpu)))


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `pool.py … | head` ends quietly
    main(sys.argv[1:])
