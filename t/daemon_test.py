#!/usr/bin/env python3
# daemon_test.py — headroomd as a service: sd_notify messages (READY,
# RELOADING, STOPPING, WATCHDOG) read from a real notify socket, journal
# priority prefixes when stderr is the journal stream, and SIGHUP reloads:
# what changes at once, what is reported as needing a restart, a bad file.
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403

SRCDIR = os.environ.get("top_srcdir") or os.path.join(T_DIR, "..")
PRICES_PATH = os.path.abspath(os.path.join(SRCDIR, "conf", "prices.json"))


class NotifySocket:
    """The manager's side of sd_notify: a datagram socket collecting messages."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="hr-notify-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.msgs = []
        self.lock = threading.Lock()
        self.stop = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.msgs.append((time.monotonic(), data.decode("utf-8", "replace")))

    def texts(self):
        with self.lock:
            return [m for _, m in self.msgs]

    def times(self, needle):
        with self.lock:
            return [t for t, m in self.msgs if needle in m.split("\n")]

    def close(self):
        self.stop = True
        self.t.join()
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def has_libsystemd():
    try:
        return subprocess.run(["pkg-config", "--exists", "libsystemd"]).returncode == 0
    except OSError:
        return False


def post(h, size=100):
    return post_json(h.url + "/v1/chat/completions", openai_body(content="x" * size))


# ---------------------------------------------------------------- sd_notify
if not has_libsystemd():
    skip("built without libsystemd (install libsystemd-dev): no sd_notify", 8)
else:
    ns = NotifySocket()
    with Mock() as m:
        h = Headroomd(mock=m, env={"NOTIFY_SOCKET": ns.path, "WATCHDOG_USEC": "1000000"}, expect_exit=None)
        h.start()
        ok(wait_until(lambda: any("READY=1" in t.split("\n") for t in ns.texts()), 30), "READY=1 once listening")
        ready = [t for t in ns.texts() if "READY=1" in t.split("\n")]
        like(ready[0] if ready else "", r"STATUS=serving", "READY carries a STATUS line")
        ok(wait_until(lambda: len(ns.times("WATCHDOG=1")) >= 3, 30),
           "WATCHDOG=1 pings at half of WATCHDOG_USEC (%d seen)" % len(ns.times("WATCHDOG=1")))
        is_(post(h).status, 200, "serving while the watchdog runs")
        h.signal(signal.SIGHUP)
        ok(wait_until(lambda: any(t.startswith("RELOADING=1") for t in ns.texts()), 30), "RELOADING=1 on SIGHUP")
        ok(wait_until(lambda: len([t for t in ns.texts() if "READY=1" in t.split("\n")]) >= 2, 30),
           "READY=1 again after the reload")
        # A worker that stops turning its loop must stop the pings: SIGSTOP
        # freezes every thread, so instead check the pings are spaced by
        # about half the period and not sent faster.
        ts = ns.times("WATCHDOG=1")
        gaps = [b - a for a, b in zip(ts, ts[1:])]
        ok(gaps and min(gaps) > 0.3, "pings spaced by ~0.5 s, not flooding (min gap %.2f s)" % (min(gaps) if gaps else 0))
        code = h.stop()
        is_(code, 0, "SIGTERM: exit 0")
        ok(any(t.startswith("STOPPING=1") for t in ns.texts()), "STOPPING=1 on SIGTERM")
    ns.close()

# ---------------------------------------------------------- journal prefixes
with Mock() as m:
    h = Headroomd(mock=m)
    h.start()
    is_(post(h).status, 200, "plain run serves")
    h.stop()
    err = h.stderr_text()
    like(err, r"(?m)^INFO:headroom\.server:headroomd .* listening", "without the journal: LEVEL:logger:message")
    ok("<6>" not in err, "no priority prefixes on a plain stderr")

# The journal hands the service a stderr whose device:inode is in
# $JOURNAL_STREAM; a file stands in for the journal's socket here.
jdir = tempfile.mkdtemp(prefix="hr-journal-")
jpath = os.path.join(jdir, "stderr")
conf = os.path.join(jdir, "headroom.conf")
with Mock() as m:
    port = free_port()
    with open(conf, "w") as f:
        f.write("port %d\nopenai_api_url %s\nworkers 1\nbudget 0.000001\n" % (port, m.url))
    with open(jpath, "wb") as e:
        st = os.fstat(e.fileno())
        env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino), HEADROOM_WORKSPACE_DIR=jdir)
        wrapper = os.environ.get("HEADROOMD_WRAPPER", "").split()
        proc = subprocess.Popen(wrapper + [os.environ.get("HEADROOMD") or os.path.join(T_DIR, "..", "src", "headroomd"),
                                           "-c", conf], stderr=e, stdout=subprocess.DEVNULL, env=env)
    url = "http://127.0.0.1:%d" % port
    ok(wait_until(lambda: request("GET", url + "/readyz", timeout=2, quiet=True).status == 200, 30), "journal run ready")
    r = post_json(url + "/v1/chat/completions", openai_body())
    is_(r.status, 200, "a request spends the tiny budget (a WARNING)")
    ok(wait_until(lambda: "budget exceeded" in open(jpath).read(), 30), "the spent budget is logged")
    proc.send_signal(signal.SIGTERM)
    is_(proc.wait(30), 0, "journal run exits 0")
    text = open(jpath).read()
    like(text, r"(?m)^<6>INFO:headroom\.server:headroomd .* listening", "INFO lines start with <6>")
    like(text, r"(?m)^<4>WARNING:headroom\.budget:budget exceeded", "WARNING lines start with <4>")
    lines = [ln for ln in text.splitlines() if ln]
    ok(lines and all(ln[:3] in ("<3>", "<4>", "<6>", "<7>") for ln in lines),
       "every line carries a priority (%d lines)" % len(lines))
    # JOURNAL_STREAM naming another file (stderr redirected by a wrapper): no prefixes
    with open(jpath, "wb") as e:
        env = dict(os.environ, JOURNAL_STREAM="1:1", HEADROOM_WORKSPACE_DIR=jdir)
        proc = subprocess.Popen(wrapper + [os.environ.get("HEADROOMD") or os.path.join(T_DIR, "..", "src", "headroomd"),
                                           "-c", conf], stderr=e, stdout=subprocess.DEVNULL, env=env)
    ok(wait_until(lambda: request("GET", url + "/readyz", timeout=2, quiet=True).status == 200, 30), "second run ready")
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    ok(open(jpath).read().startswith("INFO:"), "JOURNAL_STREAM of another file: no prefixes")
shutil.rmtree(jdir, ignore_errors=True)

# ------------------------------------------------------------------- SIGHUP
def rewrite(h, text):
    with open(h.conf_path, "w") as f:
        f.write(text.replace("@PORT@", str(h.port)).replace("@MOCK_URL@", m.url))


def reload_and_wait(h, n):
    """SIGHUP, then wait for the n-th successful reload (and its restart WARN, if any)."""
    h.signal(signal.SIGHUP)
    res = wait_until(lambda: h.stderr_text().count("INFO:headroom.server:reloaded ") >= n, 30)
    time.sleep(0.2)
    return res


BASE = "port @PORT@\nopenai_api_url @MOCK_URL@\nanthropic_api_url @MOCK_URL@\nworkers 2\n"
with Mock() as m, Headroomd(mock=m, conf_text=BASE + "max_body_size 4k\n") as h:
    is_(post(h, 8000).status, 413, "8 kB body over max_body_size 4k: 413")
    # threads carry names an SRE can read in top -H / ps -L
    # (the housekeeping thread names itself once it runs: a loaded machine may take a moment)
    want = {"hr-worker-0", "hr-worker-1", "hr-housekeep"}
    names = h.thread_names()
    if names is not None:
        wait_until(lambda: want <= (h.thread_names() or set()), 10)
        names = h.thread_names() or set()
        ok(want <= names, "threads named: %s" % sorted(names))
    ok("DEBUG:" not in h.stderr_text(), "log_level info: no DEBUG lines")
    st = h.stats()
    is_(st["budget"], None, "no budget at start")

    prices = json.load(open(PRICES_PATH))
    prices["prices_version"] = "2099-01-01"
    pdir = tempfile.mkdtemp(prefix="hr-prices-")
    ppath = os.path.join(pdir, "prices.json")
    json.dump(prices, open(ppath, "w"))
    rewrite(h, BASE + "max_body_size 64k\nlog_level debug\nbudget 0.000001\nprices %s\nrate_limit_rpm 2\n"
            "port 1\nworkers 1\n" % ppath)
    ok(reload_and_wait(h, 1), "SIGHUP: a reload line is logged")
    err = h.stderr_text()
    like(err, r"INFO:headroom\.server:reloaded .*changed and applied: [^\n]*max_body_size", "max_body_size applied")
    like(err, r"changed and applied: [^\n]*log_level", "log_level applied")
    like(err, r"prices_version 2099-01-01", "the new price table is named")
    like(err, r"WARNING:headroom\.server:reload: changed but needing a restart[^\n]*port[^\n]*workers",
         "port and workers named as needing a restart")
    is_(post(h, 8000).status, 200, "8 kB body now under the reloaded max_body_size 64k")
    is_(h.stats()["cost"]["prices_version"], "2099-01-01", "/stats shows the reloaded price table")
    r = post(h)
    is_(r.status, 429, "the budget switched on by the reload is spent after one request: 429")
    like((r.json() or {}).get("error", {}).get("type", ""), "budget_exceeded", "budget_exceeded error")
    ok("DEBUG:" in h.stderr_text(), "log_level debug after the reload: DEBUG lines appear")
    is_(h.get("/readyz").status, 200, "still listening on the original port")

    # raise the budget: requests pass again without a restart
    rewrite(h, BASE + "max_body_size 64k\nbudget 1000\nprices %s\nrate_limit_rpm 2\n" % ppath)
    ok(reload_and_wait(h, 2), "second reload logged")
    like(h.stderr_text(), r"budget \$1,?000(\.00)? daily", "raised budget in force")
    statuses = [post(h).status for _ in range(3)]
    is_(statuses[-1], 429, "rate_limit_rpm 2 from the reload: the third request in a minute is refused (%s)" % statuses)
    is_(h.stats()["budget"]["limit_usd"], 1000, "/stats.budget.limit_usd 1000")

    # a broken file: nothing changes, the daemon keeps serving
    rewrite(h, BASE + "max_body_size 4k\nbudget lots\n")
    h.signal(signal.SIGHUP)
    ok(wait_until(lambda: "reload failed" in h.stderr_text(), 30), "bad file: reload failed is logged")
    like(h.stderr_text(), r"ERROR:headroom\.server:reload failed, still running with the previous settings: .*"
         r"headroom\.conf:\d+:\d+: budget", "the error names file, line and directive")
    is_(h.get("/readyz").status, 200, "still serving after a failed reload")
    is_(h.stats()["budget"]["limit_usd"], 1000, "budget unchanged by the failed reload")
    rewrite(h, BASE + "prices /nonexistent/prices.json\n")
    h.signal(signal.SIGHUP)
    ok(wait_until(lambda: h.stderr_text().count("reload failed") >= 2, 30), "missing price table: reload failed")
    is_(h.stats()["cost"]["prices_version"], "2099-01-01", "price table unchanged by the failed reload")
    shutil.rmtree(pdir, ignore_errors=True)

done()
