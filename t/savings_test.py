#!/usr/bin/env python3
# Integration tests of the savings_file sink: durable counts across restarts,
# kill -9, damaged files, several daemons sharing one file, /stats-history
# (JSON, CSV, errors), /stats.persistent_savings and the path rules.
import glob
import json
import re
import os
import signal
import stat
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hrtest  # noqa: E402
from hrtest import *  # noqa: E402,F401

PLUGIN_DIR = os.environ.get("HEADROOM_TEST_PLUGIN_DIR")
ARGS = ["--plugin-dir", PLUGIN_DIR] if PLUGIN_DIR else []
SAVINGS = "sink savings_file {\n    flush_interval %d\n}\nsink prometheus { }\n"
# The example transform strips ANSI codes from big tool outputs, so requests save tokens.
TRANSFORM = "transform example_transform {\n}\n"


def conf(flush=1, extra=""):
    return TRANSFORM + (SAVINGS % flush) + extra


def body(model="gpt-4o-mini"):
    tool = "\x1b[31mERROR\x1b[0m something failed here\n" * 200
    return openai_body(model=model, messages=[
        {"role": "user", "content": "what failed?"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "sh", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": tool}])


def send(h, n=1, model="gpt-4o-mini"):
    saved = 0
    for _ in range(n):
        r = post_json(h.url + "/v1/chat/completions", body(model))
        if r.status != 200:
            diag("request failed: %s %s" % (r.status, r.body[:200]))
        saved += int(r.header("x-headroom-tokens-saved") or 0)
    return saved


def persistent(h):
    return (h.stats() or {}).get("persistent_savings") or {}


def wait_requests(h, n, timeout=10):
    """Wait until the sink has seen n requests (live view)."""
    return wait_until(lambda: persistent(h).get("lifetime", {}).get("requests") == n, timeout)


def wait_flushed(h, n, timeout=10):
    """Wait until the file on disk holds n requests."""
    def check():
        d = read_file(h.savings_path)  # may still be a damaged file, of any shape
        life = d.get("lifetime") if isinstance(d, dict) else None
        return isinstance(life, dict) and life.get("requests") == n
    return wait_until(check, timeout)


def read_file(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def daemon(m, flush=1, env=None, extra="", **kw):
    h = Headroomd(mock=m, args=ARGS, extra_conf=conf(flush, extra), env=env, **kw)
    return h


def savings_path_of(h):
    return h.env.get("HEADROOM_SAVINGS_PATH") or os.path.join(h.workspace, "proxy_savings.json")


def start(h):
    h.start()
    h.savings_path = savings_path_of(h)
    return h


def warn_lines(h):
    return [l for l in h.stderr_text().splitlines() if l.startswith("WARNING:headroom.sinks.savings_file")]


with Mock() as m:
    ws = hrtest._mkdtemp("hr-savings-ws-")
    env = {"HEADROOM_WORKSPACE_DIR": ws}
    path = os.path.join(ws, "proxy_savings.json")

    # ---- before the first request: zeros everywhere, no file needed
    h = start(daemon(m, env=env))
    r = h.get("/stats-history")
    is_(r.status, 200, "/stats-history answers before any request")
    j = r.json() or {}
    is_(j.get("schema_version"), 2, "schema_version 2")
    is_(j.get("lifetime"), {"requests": 0, "tokens_saved": 0, "input_tokens": 0, "compression_savings_usd": 0.0,
                            "total_cost_usd": 0.0}, "lifetime zeros")
    is_(sorted((j.get("series") or {}).keys()), ["daily", "hourly", "monthly", "weekly"], "four series")
    ok(all(len(v) == 1 and v[0]["requests"] == 0 for v in j["series"].values()), "each series: the current bucket, zero")
    is_(j.get("exports"), {"default_format": "json", "available_formats": ["json", "csv"],
                           "available_series": ["history", "hourly", "daily", "weekly", "monthly"]}, "exports block")
    hs = j.get("history_summary") or {}
    is_((hs.get("mode"), hs.get("stored_points"), hs.get("returned_points"), hs.get("compacted")),
        ("compact", 0, 0, False), "history_summary before traffic")
    like(j.get("generated_at", ""), r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", "generated_at is UTC ISO-8601")
    is_(j.get("storage_path"), path, "storage_path shown to a loopback caller (workspace default)")
    ps = persistent(h)
    is_(ps.get("lifetime", {}).get("requests"), 0, "/stats.persistent_savings before traffic")
    is_(ps.get("recent_history"), [], "recent_history empty")
    is_(ps.get("storage_path"), path, "/stats.persistent_savings shows storage_path to a loopback caller")
    ok(not os.path.exists(path), "no file written while idle")

    # ---- traffic, flushed on the timer
    saved = send(h, 3)
    cmp_ok(saved, ">", 0, "requests saved tokens (%d)" % saved)
    ok(wait_flushed(h, 3), "flushed to the file within the interval")
    d = read_file(path)
    is_(d["schema_version"], 1, "file schema_version 1")
    is_(d["lifetime"]["tokens_saved"], saved, "file lifetime tokens_saved matches the responses")
    is_(stat.S_IMODE(os.stat(path).st_mode), 0o600, "file mode 0600")
    ps = persistent(h)
    is_(ps["lifetime"]["tokens_saved"], saved, "/stats lifetime tokens_saved")
    cmp_ok(ps["lifetime"]["input_tokens"], ">", saved, "/stats lifetime input_tokens")
    ok(len(ps["recent_history"]) >= 1 and set(ps["recent_history"][-1]) ==
       {"timestamp", "total_tokens_saved", "compression_savings_usd"}, "recent_history points")
    cmp_ok(ps.get("flushes", 0), ">=", 1, "flush counter")
    note("flush took %.3f ms" % ps.get("last_flush_ms", -1))
    ms = ps.get("last_flush_ms", -1)
    ok(isinstance(ms, (int, float)) and ms >= 0 and round(ms, 3) == ms,
       "last_flush_ms is a duration rounded to 3 decimals, as every duration (%r)" % ms)
    j = h.get_json("/stats-history")
    day = j["series"]["daily"][-1]
    is_((day["requests"], day["tokens_saved"], day["total_tokens_saved"]), (3, saved, saved), "daily row")
    is_(day["by_model"]["gpt-4o-mini"]["requests"], 3, "per-model split")
    is_(day["by_provider"]["openai"]["tokens_saved"], saved, "per-provider split")
    is_(j["series"]["hourly"][-1]["requests"], 3, "hourly row")
    mon = j["series"]["monthly"][-1]
    like(mon["timestamp"], r"-01T00:00:00Z$", "monthly bucket starts on the 1st")
    week = j["series"]["weekly"][-1]
    is_(time.gmtime(time.mktime(time.strptime(week["timestamp"], "%Y-%m-%dT%H:%M:%SZ"))).tm_wday, 0,
        "weekly bucket starts on Monday")
    cmp_ok(len(j["history"]), ">=", 1, "history has checkpoints")

    # ---- CSV and parameters
    for s in ["history", "hourly", "daily", "weekly", "monthly"]:
        r = h.get("/stats-history?format=csv&series=" + s)
        ok(r.status == 200 and r.header("content-type") == "text/csv; charset=utf-8", "%s CSV content type" % s)
        is_(r.header("content-disposition"), 'attachment; filename="headroom-%s.csv"' % s, "%s CSV filename" % s)
        lines = r.text.split("\r\n")
        ok(lines[0].startswith("timestamp,requests,") and lines[-1] == "", "%s CSV header row, CRLF" % s)
        want = len(j["history"]) if s == "history" else len(j["series"][s])
        is_(len(lines) - 2, want, "%s CSV rows match the JSON" % s)
    r = h.get("/stats-history?format=csv")
    like(r.text, r"^timestamp,requests,total_tokens_saved,", "CSV series defaults to history")
    for q, param in [("history_mode=tiny", "history_mode"), ("format=xml", "format"), ("series=yearly", "series"),
                     ("format=csv&series=%ff", "series")]:
        r = h.get("/stats-history?" + q)
        e = (r.json() or {}).get("error") or {}
        ok(r.status == 400 and e.get("parameter") == param and e.get("allowed"),
           "400 for %s names %s and the allowed values" % (q, param))
    j2 = h.get_json("/stats-history?history_mode=none")
    ok(j2["history"] == [] and j2["history_summary"]["mode"] == "none" and j2["series"]["daily"], "history_mode=none")
    j2 = h.get_json("/stats-history?history_mode=full")
    is_(j2["history_summary"]["returned_points"], j2["history_summary"]["stored_points"], "history_mode=full")
    r = h.get("/stats-history?format=csv&series=daily&history_mode=bogus")
    is_(r.status, 400, "CSV validates history_mode too")
    r = h.get("/metrics")
    is_(r.status, 200, "/metrics served (prometheus sink loaded)")
    like(r.text, r"(?m)^headroom_persistent_savings_tokens_saved_total %d(\.0)?$" % saved, "metric tokens")
    like(r.text, r"(?m)^headroom_persistent_savings_usd_total ", "metric usd")
    rc = h.stop()
    is_(rc, 0, "clean stop")

    # ---- restart: the counts survive; unflushed counts are live and saved at shutdown
    h = start(daemon(m, flush=3600, env=env))
    is_(persistent(h)["lifetime"]["requests"], 3, "restart: lifetime restored from the file")
    saved2 = send(h, 2)
    ok(wait_requests(h, 5), "unflushed counts show in /stats at once")
    is_(h.get_json("/stats-history")["lifetime"]["tokens_saved"], saved + saved2, "and in /stats-history")
    is_(read_file(path)["lifetime"]["requests"], 3, "not yet on disk (flush_interval 3600)")
    is_(h.stop(), 0, "clean stop")
    is_(read_file(path)["lifetime"]["requests"], 5, "shutdown flushed the batch")
    ok(not glob.glob(path + ".tmp.*"), "no temp files left")

    # ---- kill -9 loses at most the unflushed interval
    h = start(daemon(m, flush=2, env=env))
    send(h, 2)
    ok(wait_flushed(h, 7, timeout=10), "flushed before the crash")
    send(h, 1)
    h.signal(signal.SIGKILL)
    h.proc.wait(5)
    h.stop()
    d = read_file(path)
    ok(d is not None, "file intact after kill -9")
    cmp_ok(d["lifetime"]["requests"], ">=", 7, "flushed counts survived kill -9")
    h = start(daemon(m, flush=1, env=env))
    after_kill = persistent(h)["lifetime"]["requests"]
    ok(after_kill in (7, 8), "restart after kill -9 sees %d (7 flushed + maybe the last)" % after_kill)
    is_(warn_lines(h), [], "no warning after a crash")
    h.stop()

    # ---- two daemons sharing one file lose none of each other's counts
    shared = os.path.join(hrtest._mkdtemp("hr-savings-shared-"), "deep", "dir", "s.json")
    senv = {"HEADROOM_SAVINGS_PATH": shared}
    a = start(daemon(m, flush=1, env=senv))
    b = start(daemon(m, flush=1, env=senv))
    is_(a.get_json("/stats-history")["storage_path"], shared, "HEADROOM_SAVINGS_PATH wins over the workspace")
    # Made by the first flush, not at start: a process that only reads
    # (`headroom history`) leaves no directory behind.
    ok(not os.path.exists(os.path.dirname(shared)), "no directory made before there is something to write")
    for i in range(6):
        send(a if i % 2 else b, 2, model="gpt-4o" if i % 3 else "gpt-4o-mini")
        time.sleep(0.3)
    a.stop()
    b.stop()
    is_(stat.S_IMODE(os.stat(os.path.dirname(shared)).st_mode), 0o700, "missing directories created 0700")
    d = read_file(shared)
    is_(d["lifetime"]["requests"], 12, "both daemons' counts are in the shared file")
    rows = d["hourly"].values()
    is_(sum(r["requests"] for r in rows), 12, "hourly buckets add up to the lifetime")
    is_(sum(r["by_model"].get("gpt-4o", {}).get("requests", 0) for r in rows), 8, "model splits exact")

    # ---- the path key, with ~ expansion
    home = hrtest._mkdtemp("hr-savings-home-")
    h = start(Headroomd(mock=m, args=ARGS, env={"HOME": home},
                        extra_conf=TRANSFORM + "sink savings_file {\n    path ~/x/s.json\n    flush_interval 1\n}\n"))
    h.savings_path = os.path.join(home, "x", "s.json")
    send(h, 1)
    ok(wait_flushed(h, 1), "path key with ~ honoured")
    h.stop()

    # ---- damaged files: one WARN, fresh start, daemon fine; the file is moved
    # aside by the first flush with savings to write, not at start (a process
    # that only reads the history must not move it)
    cases = [
        ("empty", b""),
        ("truncated", json.dumps(read_file(shared)).encode()[:-40]),
        ("non-JSON", b"\x00\x01 this is not json"),
        ("wrong-shape", b'{"schema_version":1,"lifetime":[1,2,3],"checkpoints":[],"hourly":{},"daily":{}}'),
        ("future-version", b'{"schema_version":7,"lifetime":{}}'),
        ("unreadable", None),
    ]
    for name, content in cases:
        dws = hrtest._mkdtemp("hr-savings-bad-")
        p = os.path.join(dws, "proxy_savings.json")
        if content is None:
            os.mkdir(p)  # a directory where the file should be: unreadable even for root
        else:
            with open(p, "wb") as f:
                f.write(content)
        h = start(daemon(m, flush=1, env={"HEADROOM_WORKSPACE_DIR": dws}))
        ok(h.alive(), "%s: daemon up" % name)
        w = warn_lines(h)
        ok(len(w) == 1 and "unusable" in w[0] and "moved aside when the first savings are written" in w[0],
           "%s: exactly one WARN line, saying when the file is moved aside" % name)
        if w:
            note(w[0])
        ok(not glob.glob(p + ".corrupt-*") and (content is None or open(p, "rb").read() == content),
           "%s: left where it is until something is written" % name)
        j = h.get_json("/stats-history")
        ok(j and j["lifetime"]["requests"] == 0, "%s: /stats-history answers with zeros" % name)
        send(h, 1)
        ok(wait_flushed(h, 1), "%s: a fresh file is written" % name)
        aside = glob.glob(p + ".corrupt-*")
        ok(len(aside) == 1 and (content is None or open(aside[0], "rb").read() == content),
           "%s: original kept as .corrupt-<timestamp>" % name)
        like(aside[0] if aside else "", r"\.corrupt-\d{8}T\d{6}Z$", "%s: UTC stamp in the name" % name)
        w = warn_lines(h)
        ok(len(w) == 2 and "moved aside to" in w[1], "%s: a second WARN names where it went" % name)
        h.stop()

    # damaged while running (another writer broke it): the next flush moves it aside
    dws = hrtest._mkdtemp("hr-savings-bad-")
    h = start(daemon(m, flush=1, env={"HEADROOM_WORKSPACE_DIR": dws}))
    send(h, 1)
    ok(wait_flushed(h, 1), "written")
    with open(h.savings_path, "w") as f:
        f.write("{broken")
    send(h, 1)
    ok(wait_flushed(h, 1), "broken file replaced by a fresh one at the next flush")
    is_(len(glob.glob(h.savings_path + ".corrupt-*")), 1, "and moved aside")
    ok(h.get("/stats-history").status == 200, "endpoint still fine")
    h.stop()

    # an unwritable location: counts stay in memory, one WARN, requests unaffected
    h = start(Headroomd(mock=m, args=ARGS, extra_conf=conf(1), env={"HEADROOM_SAVINGS_PATH": "/proc/nope/s.json"}))
    send(h, 1)
    # (the sink takes the event after the answer: read once it has)
    ok(wait_requests(h, 1), "unwritable path: counted in memory")
    time.sleep(2.5)
    ok(h.alive() and post_json(h.url + "/v1/chat/completions", body()).status == 200, "requests still served")
    w = warn_lines(h)
    ok(1 <= len(w) <= 2 and all("HEADROOM_SAVINGS_PATH" in l for l in w), "WARN says how to fix it (%d lines)" % len(w))
    cmp_ok(persistent(h).get("flush_errors", 0), ">=", 1, "flush_errors counted")
    h.stop()

    # bad config values are refused with a reason
    h = Headroomd(mock=m, args=ARGS, extra_conf="sink savings_file {\n    flush_interval 0\n}\n", wait_ready=False,
                  expect_exit=None)
    h.start()
    rc = h.proc.wait(10)
    ok(rc != 0 and re.search(r":\d+:\d+: sink savings_file: flush_interval: '0' must be from 1 to 3600",
                             h.stderr_text()), "flush_interval 0 refused with file:line:col and its bounds")
    h.stop()

done()
