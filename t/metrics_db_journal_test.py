#!/usr/bin/env python3
# Integration tests of the metrics_db journal (doc/metrics-db.md, "Deferred
# writing"): while the host is saturated rows wait in a file beside the
# database and are written once a core is free; a clean stop writes them;
# after kill -9 the next start writes them, each once, even when the crash
# fell between a commit and the file's removal; a damaged or cut-short
# journal gives its good rows, is kept aside with a WARN, and the daemon
# serves on. Read back with the sqlite3 command-line tool.
import json
import re
import os
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hrtest  # noqa: E402
from hrtest import *  # noqa: E402,F401

PLUGIN_DIR = os.environ.get("HEADROOM_TEST_PLUGIN_DIR")
ARGS = ["--plugin-dir", PLUGIN_DIR] if PLUGIN_DIR else []
SQLITE = shutil.which("sqlite3")
if PLUGIN_DIR and not os.path.exists(os.path.join(PLUGIN_DIR, "metrics_db.so")):
    skip_all("metrics_db.so not built (configure found no libsqlite3-dev)")
if not SQLITE:
    skip_all("the sqlite3 command-line tool is missing: scripts/deps.sh --test installs it")


def sql(path, query, readonly=True):
    cmd = [SQLITE] + (["-readonly"] if readonly else []) + ["-json", path, query]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        diag("sqlite3 failed on %s: %s" % (path, p.stderr.strip()))
        return None
    return json.loads(p.stdout) if p.stdout.strip() else []


def one(path, query):
    rows = sql(path, query)
    return list(rows[0].values())[0] if rows else None


def conf(**keys):
    # defer_min_rate 1: the few requests a test sends count as a fast
    # stream; the busy loops make the host saturated.
    keys.setdefault("defer_min_rate", 1)
    keys.setdefault("flush_interval_ms", 50)
    keys.setdefault("batch_rows", 16)
    body = "".join("    %s %s\n" % (k, v) for k, v in keys.items())
    return "sink metrics_db {\n" + body + "}\nsink prometheus { }\n"


def mdb(h):
    return (h.stats() or {}).get("metrics_db") or {}


def journal(h):
    return mdb(h).get("journal") or {}


def journals(ws):
    return sorted(n for n in os.listdir(ws) if ".journal." in n and ".corrupt-" not in n)


class Burners:
    """Busy loops on every core, so the host counts as saturated."""

    def __init__(self, seconds):
        code = "import time\ne = time.time() + %f\nwhile time.time() < e: pass\n" % seconds
        self.procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(2 * (os.cpu_count() or 1))]

    def stop(self):
        for p in self.procs:
            p.kill()
            p.wait()


def send(h, n):
    """n small requests; the request ids headroomd answered with."""
    ids = []
    for i in range(n):
        r = post_json(h.url + "/v1/chat/completions", openai_body(content="hello %d" % i))
        if r.status == 200:
            ids.append(r.header("x-headroom-request-id"))
    return ids


def send_until_deferred(h, want, limit=400):
    """Requests until `want` of them sit in the journal (the first ones may
    go straight in before the writer's first look at the host)."""
    ids = []
    while len(ids) < limit:
        ids += send(h, 8)
        if journal(h).get("rows", 0) >= want:
            break
    return ids


def block_ends(data):
    """Byte offsets where each journal block ends, and its row count."""
    out, off = [], 0
    while off + 20 <= len(data) and data[off:off + 4] == b"HRJ1":
        length, rows = struct.unpack_from("<II", data, off + 4)
        off += 20 + length
        out.append((off, rows))
    return out


with Mock() as m:
    tmp = hrtest._mkdtemp("hr-mdbj-")

    # --- 1. saturated: rows wait in the journal, written once a core is free
    ws = os.path.join(tmp, "ws1")
    os.makedirs(ws)
    db = os.path.join(ws, "metrics.db")
    h = Headroomd(mock=m, args=ARGS, extra_conf=conf(), env={"HEADROOM_WORKSPACE_DIR": ws})
    with h:
        burn = Burners(60)
        try:
            ids = send_until_deferred(h, 40)
            j = journal(h)
            ok(j.get("rows", 0) >= 40 and j.get("deferring") is True,
               "while the host is saturated rows wait in the journal: %s" % j)
            ok(mdb(h).get("rows_written", 0) < len(ids), "fewer rows written (%s) than requests answered (%d)"
               % (mdb(h).get("rows_written"), len(ids)))
            is_(len(journals(ws)), 1, "one journal file beside the database: %s" % journals(ws))
            like(h.get("/metrics").text, r"(?m)^headroom_metrics_db_journal_rows [1-9]\d*$",
                 "/metrics has headroom_metrics_db_journal_rows")
        finally:
            burn.stop()
        ok(wait_until(lambda: mdb(h).get("rows_written") == len(ids), 10),
           "once the busy loops stop every row is written (%s of %d)" % (mdb(h).get("rows_written"), len(ids)))
        j = journal(h)
        is_((j.get("rows"), j.get("bytes"), j.get("deferring")), (0, 0, False), "the journal is empty")
        ok(j.get("rows_deferred", 0) >= 40, "rows_deferred counts what went through it (%s)" % j.get("rows_deferred"))
        is_(journals(ws), [], "and its file is gone")
        like(h.get("/metrics").text, r"(?m)^headroom_metrics_db_rows_deferred_total [1-9]\d*$",
             "/metrics has headroom_metrics_db_rows_deferred_total")
    got = {r["request_id"] for r in sql(db, "SELECT request_id FROM requests") or []}
    is_(one(db, "SELECT count(*) FROM requests"), len(ids), "one row per request, none twice")
    ok(set(ids) <= got, "each answer's request id is a row")
    is_(one(db, "SELECT count(*) FROM journal_offsets"), 0, "no journal offset is kept for a removed journal")

    # --- 2. a clean stop writes what waits -----------------------------------
    ws = os.path.join(tmp, "ws2")
    os.makedirs(ws)
    db = os.path.join(ws, "metrics.db")
    h = Headroomd(mock=m, args=ARGS, extra_conf=conf(defer_max_s=600), env={"HEADROOM_WORKSPACE_DIR": ws})
    burn = Burners(60)
    try:
        with h:
            ids = send_until_deferred(h, 40)
            ok(journal(h).get("rows", 0) >= 40, "rows wait in the journal (%s)" % journal(h).get("rows"))
    finally:
        burn.stop()
    is_(h.returncode, 0, "clean stop")
    is_(one(db, "SELECT count(*) FROM requests"), len(ids), "SIGTERM with the host still busy: every row written")
    is_(journals(ws), [], "no journal left")

    # --- 3. kill -9: the next start writes the journal, each row once -------
    ws = os.path.join(tmp, "ws3")
    os.makedirs(ws)
    db = os.path.join(ws, "metrics.db")
    h = Headroomd(mock=m, args=ARGS, extra_conf=conf(defer_max_s=600), env={"HEADROOM_WORKSPACE_DIR": ws})
    burn = Burners(60)
    try:
        h.start()
        ids = send_until_deferred(h, 40)
        ok(wait_until(lambda: journal(h).get("rows", 0) + mdb(h).get("rows_written", 0) == len(ids), 5),
           "every row is written or in the journal")
        before = mdb(h).get("rows_written")
        h.signal(signal.SIGKILL)
        h.stop()
    finally:
        burn.stop()
    left = journals(ws)
    is_(len(left), 1, "kill -9 leaves the journal: %s" % left)
    saved = open(os.path.join(ws, left[0]), "rb").read() if left else b""
    ends = block_ends(saved)
    ok(len(ends) >= 2 and ends[-1][0] == len(saved), "the journal is whole blocks (%d)" % len(ends))
    in_journal = sum(r for _, r in ends)
    is_(before + in_journal, len(ids), "rows written + rows in the journal = requests (%d + %d)"
        % (before, in_journal))
    with Headroomd(mock=m, args=ARGS, extra_conf=conf(), env={"HEADROOM_WORKSPACE_DIR": ws}) as h:
        ok(wait_until(lambda: one(db, "SELECT count(*) FROM requests") == len(ids), 10),
           "the next start writes the journal a process left: %s rows" % one(db, "SELECT count(*) FROM requests"))
        like(h.stderr_text(), r"INFO:headroom\.sinks\.metrics_db:wrote %d rows from the journal .*%s" % (
            in_journal, re.escape(left[0]) if left else "x"), "an INFO line says so")
        ok(wait_until(lambda: journals(ws) == [], 5), "and removes it")
    is_(one(db, "SELECT count(DISTINCT request_id) FROM requests"), len(ids), "no row twice")

    # A crash after a commit and before the file went: the offset kept with
    # the rows says what is in already. Whole file in, then its first block.
    name = left[0] if left else "metrics.db.journal.0"
    for offset, expect, what in ((len(saved), 0, "a journal recorded as all in"),
                                 (ends[0][0] if ends else 0, in_journal - (ends[0][1] if ends else 0),
                                  "a journal recorded as in up to its first block")):
        n0 = one(db, "SELECT count(*) FROM requests")
        with open(os.path.join(ws, name), "wb") as f:
            f.write(saved)
        sql(db, "INSERT OR REPLACE INTO journal_offsets (journal, offset) VALUES ('%s', %d)" % (name, offset),
            readonly=False)
        with Headroomd(mock=m, args=ARGS, extra_conf=conf(), env={"HEADROOM_WORKSPACE_DIR": ws}) as h:
            ok(wait_until(lambda: journals(ws) == [], 10), "%s: loaded and removed" % what)
        is_(one(db, "SELECT count(*) FROM requests") - n0, expect, "%s: %d rows added" % (what, expect))
        is_(one(db, "SELECT count(*) FROM journal_offsets"), 0, "%s: its offset is dropped" % what)

    # --- 4. damaged and cut-short journals ------------------------------------
    for label, data in (("garbage after the first block", saved[:ends[0][0]] + b"HRJ1" + b"\xff" * 64),
                        ("cut short inside its second block", saved[:ends[0][0] + 30]),
                        ("a flipped byte in its second block",
                         saved[:ends[0][0] + 40] + bytes([saved[ends[0][0] + 40] ^ 0x55]) + saved[ends[0][0] + 41:])):
        ws = os.path.join(tmp, "ws4-%d" % len(os.listdir(tmp)))
        os.makedirs(ws)
        db = os.path.join(ws, "metrics.db")
        bad = "metrics.db.journal.4242-1-0"
        with open(os.path.join(ws, bad), "wb") as f:
            f.write(data)
        with Headroomd(mock=m, args=ARGS, extra_conf=conf(), env={"HEADROOM_WORKSPACE_DIR": ws}) as h:
            ok(wait_until(lambda: journals(ws) == [], 10), "%s: the journal is taken" % label)
            like(h.stderr_text(), r"WARN\w*:headroom\.sinks\.metrics_db:metrics_db journal .*%s: .*; the rows before "
                 r"byte %d are in the database, the rest of the file is kept as .*\.corrupt-\d{8}T\d{6}Z"
                 % (re.escape(bad), ends[0][0]), "%s: a WARN names the file, the byte and where it went" % label)
            r = post_json(h.url + "/v1/chat/completions", openai_body(content="still here"))
            is_(r.status, 200, "%s: the daemon serves on" % label)
        is_(one(db, "SELECT count(*) FROM requests"), ends[0][1] + 1,
            "%s: the first block's %d rows and the new request are written" % (label, ends[0][1]))
        aside = [n for n in os.listdir(ws) if ".corrupt-" in n]
        ok(len(aside) == 1 and open(os.path.join(ws, aside[0]), "rb").read() == data,
           "%s: the file is kept aside as it was" % label)

    # --- 5. defer_max_s bounds the wait ---------------------------------------
    ws = os.path.join(tmp, "ws5")
    os.makedirs(ws)
    h = Headroomd(mock=m, args=ARGS, extra_conf=conf(defer_max_s=1), env={"HEADROOM_WORKSPACE_DIR": ws})
    with h:
        burn = Burners(60)
        try:
            ids = send_until_deferred(h, 20)
            w0 = mdb(h).get("rows_written", 0)
            end = time.time() + 3
            while time.time() < end:
                ids += send(h, 4)
            ok(mdb(h).get("rows_written", 0) > w0 and journal(h).get("rows_deferred", 0) >= 20,
               "rows wait at most defer_max_s, busy host or not (%s written, %s then)" % (
                   mdb(h).get("rows_written"), w0))
        finally:
            burn.stop()
        ok(wait_until(lambda: mdb(h).get("rows_written") == len(ids), 10), "and all are written in the end")

    # --- 6. defer_max_s 0: no journal ------------------------------------------
    ws = os.path.join(tmp, "ws6")
    os.makedirs(ws)
    h = Headroomd(mock=m, args=ARGS, extra_conf=conf(defer_max_s=0), env={"HEADROOM_WORKSPACE_DIR": ws})
    with h:
        burn = Burners(60)
        try:
            ids = send(h, 60)
            ok(wait_until(lambda: mdb(h).get("rows_written") == len(ids), 5),
               "defer_max_s 0: rows are written at once on a saturated host")
            is_((journal(h).get("rows_deferred"), journals(ws)), (0, []), "and no journal is made")
        finally:
            burn.stop()

done()
