#!/usr/bin/env python3
# logrotate_test.py — contrib/logrotate/headroomd: logrotate accepts it
# (`logrotate -d`), and a real rotation of a running headroomd's request log
# with the file's own postrotate signal (SIGHUP) loses no line and writes
# nothing to the rotated file afterwards.
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403

SRCDIR = os.environ.get("top_srcdir") or os.path.join(T_DIR, "..")
RULES = os.path.join(SRCDIR, "contrib", "logrotate", "headroomd")
LOGROTATE = shutil.which("logrotate") or ("/usr/sbin/logrotate" if os.access("/usr/sbin/logrotate", os.X_OK) else None)
if not LOGROTATE:
    skip_all("logrotate not installed (scripts/deps.sh --test installs it)")

tmp = tempfile.mkdtemp(prefix="hr-logrotate-")
os.chmod(tmp, 0o700)
state = os.path.join(tmp, "state")
p = subprocess.run([LOGROTATE, "-d", "-s", state, RULES], capture_output=True, text=True)
is_(p.returncode, 0, "logrotate -d accepts contrib/logrotate/headroomd")
ok(not re.search(r"(?mi)^error", p.stderr + p.stdout), "no error lines from logrotate -d")
like(p.stderr + p.stdout, r"/var/log/headroom/\*\.jsonl", "the rules cover /var/log/headroom/*.jsonl")

logdir = os.path.join(tmp, "log")
os.mkdir(logdir, 0o700)
logfile = os.path.join(logdir, "requests.jsonl")
with Mock() as m, Headroomd(mock=m, extra_conf="log_file %s\n" % logfile) as h:
    # The shipped rules, pointed at the test's directory, with the service
    # manager's signal replaced by a direct SIGHUP to this daemon.
    text = open(RULES).read().replace("/var/log/headroom", logdir)
    text = re.sub(r"(?s)postrotate\n.*?endscript", "postrotate\n        kill -HUP %d\n    endscript" % h.pid, text)
    conf = os.path.join(tmp, "headroomd.logrotate")
    with open(conf, "w") as f:
        f.write(text)
    os.chmod(conf, 0o600)
    is_(post_json(h.url + "/v1/chat/completions", openai_body()).status, 200, "first request")
    ok(wait_until(lambda: os.path.exists(logfile) and open(logfile).read().count("\n") == 1, 30), "one line logged")
    p = subprocess.run([LOGROTATE, "-f", "-s", state, conf], capture_output=True, text=True)
    is_(p.returncode, 0, "logrotate -f rotates (%s)" % (p.stderr.strip()[:200] or "no output"))
    ok(os.path.exists(logfile + ".1"), "requests.jsonl.1 exists after the rotation")
    # until the SIGHUP is handled, lines still go to the renamed file (none is
    # lost). The fresh file exists a moment before the daemon switches to it
    # (opened first, swapped under the sink's lock), so wait for the switch,
    # counted in /stats, not for the file.
    ok(wait_until(lambda: ((h.stats() or {}).get("request_log") or {}).get("reopens") == 1 and os.path.exists(logfile),
                  30), "on the postrotate SIGHUP the daemon opens a fresh requests.jsonl (request_log.reopens 1)")
    is_(post_json(h.url + "/v1/chat/completions", openai_body()).status, 200, "second request after the rotation")
    ok(wait_until(lambda: os.path.exists(logfile) and open(logfile).read().count("\n") == 1, 30),
       "the second line goes to a fresh requests.jsonl")
    is_(open(logfile + ".1").read().count("\n"), 1, "the rotated file keeps exactly the first line")
shutil.rmtree(tmp, ignore_errors=True)
done()
