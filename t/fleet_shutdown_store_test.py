#!/usr/bin/env python3
# fleet_shutdown_store_test.py — with `backend redis`, a plugin storing
# originals from a timer (the housekeeping thread) while headroomd stops.
# Such a store, off a worker, queues the original and wakes every worker's
# loop through its wake event; the workers stop first and the main thread
# frees those events, while the housekeeping thread keeps running timers
# until it is joined after them. Before d64fff8 the wake read the events
# with no lock and the stop freed them with none: a store at that moment
# woke a freed event, and freeing the worker's event base then crashed
# (about one stop in five: SIGSEGV, or glibc's "corrupted double-linked
# list" abort; ASan a SEGV in event_base_free; ThreadSanitizer the race on
# fl.workers[i].drain about one stop in two). Checked: the stores reach
# Redis, and each of 20 stops exits 0 with no sanitizer report.
# t/plugins/timer_store stores 200 originals a millisecond.
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403
from hrtest import _track  # noqa: E402 (a Bail out! kills the redis-server too)

PLUGINS = os.environ.get("HEADROOM_TEST_BAD_PLUGIN_DIR") or os.path.join(T_DIR, "plugins", ".libs")
REDIS_BIN = shutil.which("redis-server") or ("/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK)
                                             else None)
ROUNDS = int(os.environ.get("HRTEST_SHUTDOWN_ROUNDS", "20"))
SANITIZER = r"(ThreadSanitizer|AddressSanitizer|LeakSanitizer|runtime error):"

if not REDIS_BIN:
    # Not a skip: CI installs it (scripts/deps.sh --test), as for fleet_test.py.
    ok(False, "redis-server is installed (scripts/deps.sh --test installs Debian's redis-server)")
    done()
if not os.path.exists(os.path.join(PLUGINS, "timer_store.so")):
    skip_all("t/plugins/.libs/timer_store.so not built (make check builds it)")


def redis_cmd(port, *args):
    """One command over RESP; the first line of the reply."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError:
        return ""
    try:
        s.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a.encode()) for a in args))
        return s.makefile("rb").readline().rstrip(b"\r\n").decode()
    except OSError:
        return ""
    finally:
        s.close()


rdir = tempfile.mkdtemp(prefix="hr-redis-")
rport = free_port()
redis = _track(subprocess.Popen([REDIS_BIN, "--port", str(rport), "--bind", "127.0.0.1", "--dir", rdir, "--save", "",
                                 "--appendonly", "no"], stdout=open(os.path.join(rdir, "log"), "ab"),
                                stderr=subprocess.STDOUT))
ok(wait_until(lambda: redis_cmd(rport, "PING") == "+PONG", timeout=10), "redis-server up on 127.0.0.1:%d" % rport)

CONF = ("host 127.0.0.1\nport @PORT@\nworkers 4\nopenai_api_url @MOCK_URL@\nplugin_dir %s\n"
        "sink timer_store { }\n"
        "backend redis {\n  url redis://127.0.0.1:%d/0\n  prefix hrstop:\n  timeout_ms 1000\n}\n" % (PLUGINS, rport))

with Mock() as mock:
    for rnd in range(ROUNDS):
        h = Headroomd(conf_text=CONF, expect_exit=None)
        h.start()
        stored = lambda: (h.get_json("/timer_store") or {}).get("stored", 0)  # noqa: E731
        busy = wait_until(lambda: stored() >= 2000, timeout=20)
        keys = redis_cmd(rport, "DBSIZE")
        if rnd == 0:
            ok(busy, "the timer stores originals off the workers (%s so far)" % stored())
            ok(keys.startswith(":") and int(keys[1:]) > 0, "they reach Redis through the workers' loops (%s keys)"
               % keys[1:])
        rc = h.stop(timeout=60)
        err = h.stderr_text()
        found = re.search(SANITIZER, err)
        if not is_(rc, 0, "stop %d with the timer storing: exit 0" % (rnd + 1)) and not found:
            diag(err[-1500:])
        ok(not found, "stop %d: no sanitizer report" % (rnd + 1))
        if found:
            diag(err[max(0, found.start() - 200):found.start() + 3000])
        redis_cmd(rport, "FLUSHALL")

redis.send_signal(signal.SIGTERM)
redis.wait()
shutil.rmtree(rdir, True)
done()
