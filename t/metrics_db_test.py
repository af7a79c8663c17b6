#!/usr/bin/env python3
# Integration tests of the metrics_db sink on real daemons, read back with the
# sqlite3 command-line tool: one row per request whose sums match /stats,
# the final flush at shutdown, rows kept across restarts, two daemons writing
# one file, retention, a damaged file moved aside, a newer schema refused,
# an unusable path, a steady stream written once a tick, /stats.metrics_db
# and the /metrics families.
import json
import os
import re
import shutil
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

TRANSFORM = "transform example_transform {\n}\n"
# The schema of doc/metrics-db.md, as another program would create the file.
CONTRACT = """PRAGMA journal_mode=WAL; PRAGMA user_version = 1;
CREATE TABLE IF NOT EXISTS requests (
  id INTEGER PRIMARY KEY, request_id TEXT NOT NULL, timestamp REAL NOT NULL,
  model TEXT NOT NULL, provider TEXT NOT NULL, wire_format TEXT NOT NULL,
  stack TEXT NOT NULL, path TEXT NOT NULL,
  status INTEGER NOT NULL, credited INTEGER NOT NULL, cached INTEGER NOT NULL,
  streamed INTEGER NOT NULL, failed INTEGER NOT NULL,
  tokens_input_before INTEGER NOT NULL, tokens_input_after INTEGER NOT NULL,
  tokens_saved INTEGER NOT NULL, tokens_output INTEGER NOT NULL,
  cache_read_tokens INTEGER NOT NULL, cache_write_tokens INTEGER NOT NULL,
  reasoning_tokens INTEGER NOT NULL,
  cost_usd REAL NOT NULL, savings_usd REAL NOT NULL, priced INTEGER NOT NULL,
  transforms TEXT NOT NULL, latency_ms REAL NOT NULL, overhead_ms REAL NOT NULL, ttfb_ms REAL);
CREATE INDEX IF NOT EXISTS requests_by_time ON requests(timestamp);
"""


def sql(path, query, readonly=True):
    """Run query with the sqlite3 CLI; rows as a list of dicts (JSON mode)."""
    cmd = [SQLITE] + (["-readonly"] if readonly else []) + ["-json", path, query]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        diag("sqlite3 failed on %s: %s" % (path, p.stderr.strip()))
        return None
    return json.loads(p.stdout) if p.stdout.strip() else []


def one(path, query):
    rows = sql(path, query)
    return list(rows[0].values())[0] if rows else None


def conf(extra="", **keys):
    body = "".join("    %s %s\n" % (k, v) for k, v in keys.items())
    return TRANSFORM + "sink metrics_db {\n" + body + "}\nsink prometheus { }\n" + extra


def tool_body(model="gpt-4o-mini", **extra):
    tool = "\x1b[31mERROR\x1b[0m something failed here\n" * 200
    return openai_body(model=model, messages=[
        {"role": "user", "content": "what failed?"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "sh", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": tool}], **extra)


def mdb(h):
    return (h.stats() or {}).get("metrics_db") or {}


def traffic(h):
    """A mix of routes and outcomes; returns the request ids headroomd gave."""
    ids = []
    for i in range(5):
        r = post_json(h.url + "/v1/chat/completions", tool_body(), headers={"x-headroom-stack": "claude_code"})
        ids.append(r.header("x-headroom-request-id"))
    for i in range(2):
        stream(h.url + "/v1/chat/completions", tool_body(stream=True, stream_options={"include_usage": True}))
    for i in range(2):
        r = post_json(h.url + "/v1/messages", anthropic_body(content="hi %d" % i))
        ids.append(r.header("x-headroom-request-id"))
    r = post_json(h.url + "/v1/chat/completions", tool_body(model="gpt-4o"), headers={"x-mock-status": "500"})
    ids.append(r.header("x-headroom-request-id"))
    r = h.get("/v1/models")
    ids.append(r.header("x-headroom-request-id"))
    return [i for i in ids if i]


SUMS = ("SELECT count(*) AS n, sum(credited * tokens_input_before) AS input, sum(credited * tokens_input_after) AS sent,"
        " sum(tokens_saved) AS saved, sum(tokens_output) AS output, sum(cost_usd) AS cost,"
        " sum(savings_usd) AS savings, sum(failed) AS failed, sum(streamed) AS streamed,"
        " sum(status = 500) AS s500 FROM requests")

with Mock() as m:
    hrtest_tmp = hrtest._mkdtemp("hr-mdb-")
    ws = os.path.join(hrtest_tmp, "ws")
    os.makedirs(ws)
    db = os.path.join(ws, "metrics.db")

    # --- 1. rows and sums agree with /stats; the final flush at shutdown ---
    # A long interval: nothing is written before the clean stop.
    h = Headroomd(mock=m, args=ARGS, extra_conf=conf(flush_interval_ms=60000), env={"HEADROOM_WORKSPACE_DIR": ws})
    with h:
        ids = traffic(h)
        st = h.stats()
        blk = st.get("metrics_db") or {}
        is_(blk.get("state"), "ok", "/stats.metrics_db.state is ok")
        is_(blk.get("path"), db, "/stats.metrics_db.path is <state root>/metrics.db (loopback caller)")
        is_(blk.get("rows_written"), 0, "nothing written yet with a 60 s interval")
        names = h.thread_names()
        if names is not None:
            ok("hr-mdb-writer" in names, "the writer thread is named hr-mdb-writer: %s" % sorted(names))
            # HR_SINK_ON_REQUEST_THREAD (ABI 1.7): rows are made on the
            # request threads, so the sink has no thread of its own.
            ok(not [x for x in names if x.startswith("hr-sink-metrics")],
               "metrics_db takes its events on the request threads: no sink thread (%s)" % sorted(names))
        n = st["requests"]["total"]
        # Counted as each request ends on its worker: a moment for the last.
        sink = lambda: ((h.stats() or {}).get("sinks") or {}).get("metrics_db") or {}  # noqa: E731
        ok(wait_until(lambda: sink().get("events") == n, 5) and sink().get("queued") == 0 and
           sink().get("dropped") == 0, "/stats.sinks.metrics_db counts every event, none queued or dropped: %s" % sink())
        ok(n == 11 and wait_until(lambda: mdb(h).get("queued") == n, 5), "%s rows queued" % n)
        metrics = h.get("/metrics").text
        like(metrics, r"(?m)^headroom_metrics_db_queue_length %d$" % n, "/metrics has headroom_metrics_db_queue_length")
        like(metrics, r"(?m)^headroom_metrics_db_rows_written_total 0$", "/metrics has rows_written_total")
    is_(h.returncode, 0, "clean stop")
    got = (sql(db, SUMS) or [{}])[0]
    tok, cost, req = st["tokens"], st["cost"], st["requests"]
    is_(got.get("n"), req["total"], "one row per request: %s rows = /stats requests.total" % got.get("n"))
    is_(got.get("input"), tok["input"], "sum(tokens_input_before) of credited rows = /stats tokens.input")
    is_(got.get("sent"), tok["sent"], "sum(tokens_input_after) of credited rows = /stats tokens.sent")
    is_(got.get("saved"), tok["saved"], "sum(tokens_saved) = /stats tokens.saved")
    ok(tok["saved"] > 0, "the traffic saved tokens (%s)" % tok["saved"])
    is_(got.get("output"), tok["output"], "sum(tokens_output) = /stats tokens.output")
    ok(abs((got.get("cost") or 0) - cost["total_cost_usd"]) < 2e-6 and cost["total_cost_usd"] > 0,
       "sum(cost_usd) %s = /stats total_cost_usd %s" % (got.get("cost"), cost["total_cost_usd"]))
    ok(abs((got.get("savings") or 0) - cost["total_savings_usd"]) < 2e-6 and cost["total_savings_usd"] > 0,
       "sum(savings_usd) %s = /stats total_savings_usd %s" % (got.get("savings"), cost["total_savings_usd"]))
    is_(got.get("failed"), req["failed"], "sum(failed) = /stats requests.failed")
    is_(got.get("s500"), req["by_status"].get("500"), "rows with status 500 = /stats by_status[500]")
    is_(got.get("streamed"), 2, "two streamed rows")
    by_model = {r["model"]: r["n"] for r in sql(db, "SELECT model, count(*) AS n FROM requests WHERE model != '' "
                                                    "GROUP BY model") or []}
    is_(by_model, req["by_model"], "rows per model = /stats requests.by_model")
    stored = {r["request_id"] for r in sql(db, "SELECT request_id FROM requests") or []}
    ok(set(ids) <= stored, "the x-headroom-request-id of each answer is a row")
    row = (sql(db, "SELECT * FROM requests WHERE stack = 'claude_code' LIMIT 1") or [{}])[0]
    is_((row.get("provider"), row.get("wire_format"), row.get("path"), row.get("status"), row.get("credited")),
        ("openai", "openai_chat", "/v1/chat/completions", 200, 1), "a chat row: provider, wire format, path, status")
    is_(json.loads(row.get("transforms") or "null"), ["example_transform"], "transforms names the stage that saved")
    ok(row.get("tokens_input_before", 0) - row.get("tokens_input_after", 0) == row.get("tokens_saved"),
       "before - after = saved")
    ok(isinstance(row.get("ttfb_ms"), float) and row.get("latency_ms", 0) > 0, "latency_ms and ttfb_ms set")
    passthrough = (sql(db, "SELECT model, wire_format, ttfb_ms, credited FROM requests WHERE path = '/v1/models'")
                   or [{}])[0]
    is_((passthrough.get("model"), passthrough.get("wire_format"), passthrough.get("credited")), ("", "", 0),
        "a pass-through route: a row with no model and no wire format")
    is_(one(db, "PRAGMA journal_mode"), "wal", "the file is in WAL mode")
    is_(one(db, "PRAGMA user_version"), 1, "user_version 1")
    is_(one(db, "PRAGMA integrity_check"), "ok", "integrity_check ok")

    # --- 2. a restart appends; the timer writes without a shutdown --------
    h = Headroomd(mock=m, args=ARGS, extra_conf=conf(flush_interval_ms=100), env={"HEADROOM_WORKSPACE_DIR": ws})
    with h:
        for i in range(3):
            post_json(h.url + "/v1/chat/completions", tool_body())
        ok(wait_until(lambda: mdb(h).get("rows_written") == 3, 5), "the writer commits within the interval")
        is_(one(db, "SELECT count(*) FROM requests"), 14, "readable by sqlite3 while the daemon runs")
        b = mdb(h)
        ok(b.get("last_commit_at") and b.get("batches", 0) >= 1 and b["batch"]["last_ms"] >= 0,
           "/stats shows last_commit_at and batch latency")
    is_(one(db, "SELECT count(*) FROM requests"), 14, "rows survive the restart: 11 + 3")

    # --- 3. two daemons, one file ------------------------------------------
    shared = os.path.join(hrtest_tmp, "shared", "metrics.db")
    c2 = conf(path='"%s"' % shared, flush_interval_ms=20, batch_rows=4)
    with Headroomd(mock=m, args=ARGS, extra_conf=c2) as a, Headroomd(mock=m, args=ARGS, extra_conf=c2) as b:
        def hammer(h, n):
            for _ in range(n):
                post_json(h.url + "/v1/chat/completions", openai_body(content="x"))
        threads = [threading.Thread(target=hammer, args=(h, 15)) for h in (a, b, a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        totals = [a.stats()["requests"]["total"], b.stats()["requests"]["total"]]
    is_(one(shared, "SELECT count(*) FROM requests"), sum(totals),
        "two daemons writing one file: every request is a row (%s)" % totals)
    is_(one(shared, "PRAGMA integrity_check"), "ok", "the shared file is intact")
    for name, h in (("first", a), ("second", b)):
        ok("database is locked" not in h.stderr_text() and "cannot write" not in h.stderr_text(),
           "%s daemon logged no lock errors (busy_timeout waits)" % name)

    # --- 4. retention --------------------------------------------------------
    old_db = os.path.join(hrtest_tmp, "retention", "metrics.db")
    os.makedirs(os.path.dirname(old_db))
    now = int(time.time())
    rows = ",".join("('%s', %d, 'gpt-4o','openai','openai_chat','','/v1/chat/completions',200,1,0,0,0,10,5,5,1,0,0,0,"
                    "0.1,0.05,1,'[]',1.0,0.5,NULL)" % (rid, now - days * 86400)
                    for rid, days in (("d40", 40), ("d31", 31), ("d10", 10), ("d0", 0)))
    sql(old_db, CONTRACT + "INSERT INTO requests (request_id, timestamp, model, provider, wire_format, stack, path, "
        "status, credited, cached, streamed, failed, tokens_input_before, tokens_input_after, tokens_saved, "
        "tokens_output, cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_usd, savings_usd, priced, "
        "transforms, latency_ms, overhead_ms, ttfb_ms) VALUES " + rows + ";", readonly=False)
    with Headroomd(mock=m, args=ARGS, extra_conf=conf(path='"%s"' % old_db, retention_days=30)) as h:
        ok(wait_until(lambda: mdb(h).get("rows_pruned") == 2, 5), "rows older than retention_days pruned at start")
        like(h.stderr_text(), r"deleted 2 rows older than 30 days", "INFO line says what was pruned")
    left = [r["request_id"] for r in sql(old_db, "SELECT request_id FROM requests ORDER BY timestamp") or []]
    is_(left, ["d10", "d0"], "a file made with the contract's SQL: 10-day and new rows stay")

    # --- 5. a damaged file is moved aside -----------------------------------
    bad_ws = os.path.join(hrtest_tmp, "damaged")
    os.makedirs(bad_ws)
    bad = os.path.join(bad_ws, "metrics.db")
    with open(bad, "wb") as f:
        f.write(b"{\"this is\": \"not a database\"}\n" * 10)
    with Headroomd(mock=m, args=ARGS, extra_conf=conf(flush_interval_ms=50), env={"HEADROOM_WORKSPACE_DIR": bad_ws}) as h:
        aside = [n for n in os.listdir(bad_ws) if n.startswith("metrics.db.corrupt-")]
        is_(len(aside), 1, "the damaged file is renamed metrics.db.corrupt-<stamp>")
        like(h.stderr_text(), r"WARN\w*:headroom\.sinks\.metrics_db:metrics database .*metrics\.db is damaged .*moved "
             r"aside to .*metrics\.db\.corrupt-\d{8}T\d{6}Z", "a WARN names the file and where it went")
        r = post_json(h.url + "/v1/chat/completions", tool_body())
        is_(r.status, 200, "requests are served")
        ok(wait_until(lambda: mdb(h).get("rows_written") == 1, 5), "and written to the new file")
    with open(os.path.join(bad_ws, aside[0]) if aside else bad, "rb") as f:
        ok(f.read().startswith(b"{\"this is\""), "the moved file keeps its bytes")
    is_(one(bad, "SELECT count(*) FROM requests"), 1, "the new file holds the row")

    # --- 6. a newer schema is refused ---------------------------------------
    newer = os.path.join(hrtest_tmp, "newer.db")
    sql(newer, "PRAGMA user_version = 5; CREATE TABLE requests_v5(x);", readonly=False)
    with Headroomd(mock=m, args=ARGS, extra_conf=conf(path='"%s"' % newer)) as h:
        like(h.stderr_text(), r"ERROR:headroom\.sinks\.metrics_db:%s has schema version 5 but this headroomd writes "
             r"version 1: upgrade headroomd.*serves without the metrics_db sink" % re.escape(newer),
             "an ERROR names the file, its version and ours")
        r = post_json(h.url + "/v1/chat/completions", tool_body())
        is_(r.status, 200, "the daemon keeps serving")
        b = mdb(h)
        is_((b.get("state"), b.get("rows_written")), ("refused", 0), "/stats.metrics_db.state is refused")
        ok("schema version 5" in (b.get("last_error") or ""), "/stats.metrics_db.last_error says why")
    is_(one(newer, "PRAGMA user_version"), 5, "the newer file is left as it was")
    is_(one(newer, "SELECT count(*) FROM sqlite_master WHERE name = 'requests'"), 0, "no table added to it")

    # --- 7. an unusable path -------------------------------------------------
    blocker = os.path.join(hrtest_tmp, "not-a-dir")
    with open(blocker, "w") as f:
        f.write("x")
    nowhere = os.path.join(blocker, "metrics.db")
    with Headroomd(mock=m, args=ARGS, extra_conf=conf(path='"%s"' % nowhere, flush_interval_ms=50)) as h:
        like(h.stderr_text(), r"WARN\w*:headroom\.sinks\.metrics_db:cannot open %s: .*Not a directory; "
             r"headroomd serves anyway" % re.escape(nowhere), "a clear WARN names the path and the reason")
        r = post_json(h.url + "/v1/chat/completions", tool_body())
        is_(r.status, 200, "requests are served")
        ok(wait_until(lambda: mdb(h).get("write_errors", 0) >= 1, 5), "failed writes are counted")
        is_(mdb(h).get("state"), "unavailable", "/stats.metrics_db.state is unavailable")
    is_(h.returncode, 0, "the daemon stops cleanly")
    like(h.stderr_text(), r"1 rows could not be written", "the lost row is reported at shutdown")

    # --- 8. every request keeps its row while the CPUs are saturated -------
    # Busy loops on every core, and clients as fast as they go. The writer
    # steps aside for request threads only while it keeps up: once a batch
    # waits it yields less often, and past half its queue not at all (it
    # used to yield every 50 us regardless, fell behind on a busy host and
    # dropped rows once its queue was full).
    h = Headroomd(mock=m, args=ARGS, extra_conf=conf(batch_rows=16, queue_size=64, flush_interval_ms=10),
                  env={"HEADROOM_WORKSPACE_DIR": os.path.join(hrtest_tmp, "ws8")})
    with h:
        seconds = 4.0
        burn = "import time\ne = time.time() + %f\nwhile time.time() < e: pass\n" % (seconds + 1)
        burners = [subprocess.Popen([sys.executable, "-c", burn]) for _ in range(2 * (os.cpu_count() or 1))]
        sent = [0] * 4
        body = json.dumps(openai_body(content="hello")).encode()

        def client(k):
            import http.client
            conn = http.client.HTTPConnection("127.0.0.1", h.port, timeout=30)
            end = time.time() + seconds
            while time.time() < end:
                conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                if r.status == 200:
                    sent[k] += 1
            conn.close()

        threads = [threading.Thread(target=client, args=(k,)) for k in range(len(sent))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for b in burners:
            b.wait()
        total = sum(sent)
        note("%d requests from %d clients beside %d busy loops" % (total, len(sent), len(burners)))
        ok(wait_until(lambda: mdb(h).get("rows_written", 0) + mdb(h).get("rows_dropped", 0) >= total, 10),
           "the writer has taken every row")
        b = mdb(h)
        is_(b.get("rows_dropped"), 0, "no row dropped under saturation (%s written)" % b.get("rows_written"))
        is_(b.get("rows_written"), total, "one row per request")
    is_(one(os.path.join(hrtest_tmp, "ws8", "metrics.db"), "SELECT count(*) FROM requests"), total,
        "the file holds one row per request")

    # --- 9. a steady stream is written once a tick ----------------------------
    # Rows that arrive while a batch is written wait for the next tick: the
    # writer used to take them at once, and as long as requests kept coming it
    # committed small batches without a pause, each commit writing the same
    # last pages to the WAL again.
    h = Headroomd(mock=m, args=ARGS, extra_conf=conf("cache_ttl 300\n", batch_rows=100000, flush_interval_ms=200),
                  env={"HEADROOM_WORKSPACE_DIR": os.path.join(hrtest_tmp, "ws9")})
    with h:
        body = json.dumps(openai_body(content="hello")).encode()
        sent = [0] * 4

        def steady(k, end):
            import http.client
            conn = http.client.HTTPConnection("127.0.0.1", h.port, timeout=30)
            while time.time() < end:
                conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                sent[k] += r.status == 200
            conn.close()

        before = mdb(h).get("batches", 0)
        t0 = time.time()
        threads = [threading.Thread(target=steady, args=(k, t0 + 2.0)) for k in range(len(sent))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ok(wait_until(lambda: mdb(h).get("rows_written", 0) >= sum(sent), 5), "every row written")
        elapsed = time.time() - t0
        batches = mdb(h).get("batches", 0) - before
        ticks = int(elapsed / 0.2) + 1
        ok(0 < batches <= ticks, "%d requests in %.1f s: %d batches, at most one per 200 ms tick (%d)"
           % (sum(sent), elapsed, batches, ticks))
        is_(mdb(h).get("rows_dropped"), 0, "no row dropped")

    # --- 10. config errors name the key --------------------------------------
    path = os.path.join(hrtest_tmp, "bad.conf")
    with open(path, "w") as f:
        f.write("sink metrics_db {\n    batch_rows 0\n}\n")
    p = subprocess.run([os.environ.get("HEADROOMD", "headroomd"), "--check-config", "-c", path] + ARGS,
                       capture_output=True, text=True, timeout=30)
    ok(p.returncode == 1 and re.search(re.escape(path) + r":2:\d+: sink metrics_db: batch_rows: '0' must be from 1 to 100000",
                                       p.stderr), "batch_rows 0 is refused with file:line and the bound")

done()
