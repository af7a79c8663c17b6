#!/usr/bin/env python3
"""thread_cpu.py — CPU per request split into user space and kernel, per
thread, for run.sh's one-client runs: where a proxy's CPU goes when one
client waits on each answer.

    thread_cpu.py snap PID... > FILE      every thread of these processes:
                                           tid, name, utime, stime (ticks)
    thread_cpu.py diff A B REQUESTS        prints one tab-separated line:
                                           user µs/req, kernel µs/req, and
                                           "name=user/kernel,..." by thread

Threads are grouped by name with a trailing "-N" dropped (hr-worker-0 and
hr-worker-1 are one "hr-worker"); a thread that came or went between the
two snapshots counts from zero or up to its last reading. /proc's ticks are
1/CLK_TCK s (10 ms here): over a 3 s run of ~30 000 requests one tick is
~0.3 µs per request, so read the per-thread figures to a microsecond.
"""
import os
import re
import sys


def snap(pids):
    for pid in pids:
        try:
            tids = os.listdir("/proc/%s/task" % pid)
        except OSError:
            continue
        for tid in tids:
            try:
                with open("/proc/%s/task/%s/stat" % (pid, tid)) as f:
                    stat = f.read()
            except OSError:
                continue  # the thread ended meanwhile
            name = stat[stat.index("(") + 1:stat.rindex(")")].replace("\t", " ")
            fields = stat[stat.rindex(")") + 2:].split()
            print("%s\t%s\t%s\t%s" % (tid, name, fields[11], fields[12]))


def load(path):
    out = {}
    with open(path) as f:
        for line in f:
            tid, name, ut, st = line.rstrip("\n").split("\t")
            out[tid] = (name, int(ut), int(st))
    return out


def diff(a_path, b_path, requests):
    a, b = load(a_path), load(b_path)
    n = max(int(requests), 1)
    per_tick = 1e6 / os.sysconf("SC_CLK_TCK") / n
    groups = {}
    for tid, (name, ut, st) in b.items():
        _, ut0, st0 = a.get(tid, (name, 0, 0))
        g = groups.setdefault(re.sub(r"-\d+$", "", name), [0, 0])
        g[0] += ut - ut0
        g[1] += st - st0
    user = sum(g[0] for g in groups.values()) * per_tick
    kern = sum(g[1] for g in groups.values()) * per_tick
    busy = sorted(groups.items(), key=lambda kv: -(kv[1][0] + kv[1][1]))
    parts = ",".join("%s=%.1f/%.1f" % (k, u * per_tick, s * per_tick) for k, (u, s) in busy if u + s > 0)
    print("%.1f\t%.1f\t%s" % (user, kern, parts or "-"))


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "snap":  # no PID: nothing (run.sh's direct runs)
        snap(sys.argv[2:])
    elif len(sys.argv) == 5 and sys.argv[1] == "diff":
        diff(*sys.argv[2:])
    else:
        sys.exit("usage: thread_cpu.py snap PID... | thread_cpu.py diff BEFORE AFTER REQUESTS")
