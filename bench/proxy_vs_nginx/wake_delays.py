#!/usr/bin/env python3
"""wake_delays.py — why one client's requests wait: every time a task of the
request chain (client, proxy worker, upstream) was woken but had to wait for
a CPU longer than a threshold, what else was running on that CPU meanwhile.

    perf sched record -o sched.data -- sleep 2      # while one_conn runs
    perf sched timehist -i sched.data > timehist.txt
    wake_delays.py timehist.txt TASK[,TASK...] [THRESHOLD_US]

TASK is a task name as timehist prints it, without the [tid/pid] part
(one_conn, fast_upstream, hr-worker-0, nginx). THRESHOLD_US defaults to 30.
Prints the chain's wake-up delay p50 / p99, how many waited longer than the
threshold, and for those what ran on their CPU during the wait: "idle-only"
when nothing did (the CPU was asleep and had to be woken, which on a
paravirtualised guest costs tens of microseconds), else the tasks' names.
"""
import bisect
import collections
import re
import sys

ROW = re.compile(r"\s*([\d.]+)\s+\[(\d+)\]\s+(.*?)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$")


def read(path):
    """(switch-out time s, cpu, task name, wait for a CPU s, run time s) per timehist row."""
    rows = []
    with open(path) as f:
        for line in f:
            m = ROW.match(line)
            if m:
                name = re.sub(r"\[.*", "", m.group(3))
                rows.append((float(m.group(1)), int(m.group(2)), name, float(m.group(5)) / 1e3,
                             float(m.group(6)) / 1e3))
    return rows


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    rows = read(sys.argv[1])
    if not rows:
        sys.exit("%s: no `perf sched timehist` rows" % sys.argv[1])
    chain = set(sys.argv[2].split(","))
    threshold = float(sys.argv[3]) / 1e6 if len(sys.argv) > 3 else 30e-6
    runs = collections.defaultdict(list)  # cpu -> (start, end, name), sorted
    for end, cpu, name, _, run in rows:
        runs[cpu].append((end - run, end, name))
    for cpu in runs:
        runs[cpu].sort()
    starts = {cpu: [r[0] for r in v] for cpu, v in runs.items()}
    delays, blame, waited = [], collections.Counter(), collections.Counter()
    for end, cpu, name, delay, run in rows:
        if name not in chain:
            continue
        delays.append(delay)
        if delay < threshold:
            continue
        on_cpu = end - run
        woken = on_cpu - delay
        others = set()
        i = max(bisect.bisect_left(starts[cpu], woken) - 1, 0)
        while i < len(runs[cpu]) and runs[cpu][i][0] < on_cpu:
            s, e, other = runs[cpu][i]
            if e > woken and other not in ("<idle>", name):
                others.add(other)
            i += 1
        blame[", ".join(sorted(others)) or "idle-only"] += 1
        waited[name] += 1
    if not delays:
        sys.exit("none of %s in %s" % (", ".join(sorted(chain)), sys.argv[1]))
    delays.sort()
    print("%d wake-ups of %s: delay p50 %.0f us, p99 %.0f us; %d waited over %.0f us (%s)" % (
        len(delays), ", ".join(sorted(chain)), delays[len(delays) // 2] * 1e6, delays[int(len(delays) * .99)] * 1e6,
        sum(waited.values()), threshold * 1e6, ", ".join("%s %d" % kv for kv in waited.most_common())))
    print("what ran on their CPU while they waited:")
    for who, n in blame.most_common(10):
        print("  %5d  %s" % (n, who))


if __name__ == "__main__":
    main()
