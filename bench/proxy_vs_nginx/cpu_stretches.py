#!/usr/bin/env python3
"""cpu_stretches.py — how long one thread holds a CPU between the points
where another thread could get it: a sched_yield() or blocking. Reads the
text of `perf script` over a recording of sched:sched_switch and
syscalls:sys_enter_sched_yield, sums the thread's on-CPU time between two
such points, and prints the distribution. A long stretch is what a request
thread woken onto that CPU may wait for (bench/README.md, "one connection's
p99").

    perf record -e sched:sched_switch -e syscalls:sys_enter_sched_yield -a -o F -- sleep 5
    perf script -i F | bench/proxy_vs_nginx/cpu_stretches.py TID

Being preempted does not end a stretch (the thread still had work to do);
on-CPU time is summed, so waiting for a CPU is not counted in it."""
import re
import sys

if len(sys.argv) != 2 or not sys.argv[1].isdigit():
    sys.exit("usage: perf script -i FILE | cpu_stretches.py TID")
tid = sys.argv[1]
head = re.compile(r"^\s*.+?\s+(\d+)\s+\[\d+\]\s+(\d+\.\d+):\s+(\S+):")
switch = re.compile(r"prev_pid=(\d+) .*prev_state=(\S+) ==> .*next_pid=(\d+)")
running_since = None  # when the thread last got a CPU
acc = 0.0  # on-CPU seconds since its last yield point
stretches = []
for line in sys.stdin:
    m = head.match(line)
    if not m:
        continue
    who, t, event = m.group(1), float(m.group(2)), m.group(3)
    if event == "sched:sched_switch":
        s = switch.search(line)
        if not s:
            continue
        if s.group(1) == tid and running_since is not None:
            acc += t - running_since
            running_since = None
            if not s.group(2).startswith("R"):  # blocked, not preempted
                stretches.append(acc)
                acc = 0.0
        if s.group(3) == tid:
            running_since = t
    elif event.endswith("sched_yield") and who == tid and running_since is not None:
        acc += t - running_since
        running_since = t
        stretches.append(acc)
        acc = 0.0
if not stretches:
    sys.exit("no stretches for thread %s (was it recorded?)" % tid)
ms = sorted(x * 1000 for x in stretches)
n = len(ms)
print("stretches %d  p50 %.3f  p99 %.3f  max %.3f ms  over 0.2 ms: %d  over 0.5 ms: %d  on-CPU %.1f ms" %
      (n, ms[n // 2], ms[min(n - 1, int(n * 0.99))], ms[-1], sum(x > 0.2 for x in ms), sum(x > 0.5 for x in ms),
       sum(ms)))
print("longest:", " ".join("%.2f" % x for x in ms[-8:]))
