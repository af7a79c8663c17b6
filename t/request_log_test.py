#!/usr/bin/env python3
# Integration tests of the request_log sink through the daemon and the mock:
# every field against the answer's x-headroom-* figures and /stats, JSON and
# streamed requests, failures, message bodies on/off, no secrets in the file,
# logrotate-style rotation with SIGHUP under load, --log-file/--log-messages,
# unwritable paths (daemon keeps serving, write_errors counted), bad config.
import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hrtest  # noqa: E402
from hrtest import *  # noqa: E402,F401

PLUGIN_DIR = os.environ.get("HEADROOM_TEST_PLUGIN_DIR")
ARGS = ["--plugin-dir", PLUGIN_DIR] if PLUGIN_DIR else []
TRANSFORM = "transform example_transform {\n}\n"
FIELDS = {
    "request_id": str, "timestamp": str, "provider": str, "model": str, "stack": str, "status": int,
    "tokens_input": int, "tokens_sent": int, "tokens_saved": int, "tokens_output": int,
    "savings_percent": float, "cost_usd": float, "savings_usd": float, "latency_ms": float,
    "overhead_ms": float, "ttfb_ms": float, "cached": bool, "transforms": list, "error": type(None),
}
STAGE_FIELDS = {"name": str, "ms": float, "tokens_saved": int, "tag": str, "failed": bool}
TS_RE = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"
COMMENT_RE = re.compile(rb": headroom tokens_before=(\d+) tokens_after=(\d+) tokens_saved=(\d+) "
                        rb"cost_usd=(\d+\.\d{6}) savings_usd=(\d+\.\d{6})")
OPENAI_KEY = "sk-test-SECRET-openai-0123456789"
ANTHROPIC_KEY = "sk-ant-SECRET-anthropic-9876543210"
ANSI = "".join("\x1b[1;31mERROR\x1b[0m \x1b[32mstep %d\x1b[0m finished with code %d\n" % (i, i % 7)
               for i in range(150))


def block(path, messages=None, fsync=None):
    s = 'sink request_log {\n    path "%s"\n' % path
    if messages is not None:
        s += "    messages %s\n" % ("yes" if messages else "no")
    if fsync is not None:
        s += "    fsync %s\n" % ("yes" if fsync else "no")
    return s + "}\n"


def tool_messages(tag="make"):
    return [{"role": "user", "content": "run the build (%s)" % tag},
            {"role": "assistant", "content": None,
             "tool_calls": [{"id": "call_1", "type": "function",
                             "function": {"name": "bash", "arguments": "{\"cmd\":\"make\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": ANSI},
            {"role": "user", "content": "what failed?"}]


def openai_req(h, tag="a", stream=False, headers=None):
    hd = {"Authorization": "Bearer " + OPENAI_KEY}
    hd.update(headers or {})
    b = openai_body(model="gpt-4o", messages=tool_messages(tag), stream=stream, include_usage=stream)
    if stream:
        return stream_req(h.url + "/v1/chat/completions", b, hd)
    return post_json(h.url + "/v1/chat/completions", b, headers=hd)


def stream_req(url, body, headers):
    return hrtest.stream(url, body, headers=dict(headers, **{"Content-Type": "application/json"}))


def read_lines(path):
    """Every line of the file parsed (a line that is not JSON becomes {"_bad": text})."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return []
    out = []
    for ln in data.split(b"\n"):
        if not ln:
            continue
        try:
            out.append(json.loads(ln))
        except ValueError:
            out.append({"_bad": ln[:200]})
    return out


def rlog(h):
    return (h.stats() or {}).get("request_log") or {}


def wait_events(h, n, timeout=10):
    """Wait until the sink thread has handled n events (written or failed)."""
    return wait_until(lambda: ((h.stats() or {}).get("sinks", {}).get("request_log", {}).get("events", -1) >= n),
                      timeout)


def check_types(line, name):
    bad = []
    for k, t in FIELDS.items():
        if k not in line:
            bad.append("%s missing" % k)
            continue
        v = line[k]
        if t is float and isinstance(v, (int, float)) and not isinstance(v, bool):
            continue
        if k in ("ttfb_ms", "overhead_ms") and v is None:
            continue
        if k == "error" and (v is None or isinstance(v, str)):
            continue
        if not isinstance(v, t) or (t is int and isinstance(v, bool)):
            bad.append("%s is %r" % (k, v))
    for st in line.get("transforms") or []:
        for k, t in STAGE_FIELDS.items():
            v = st.get(k, KeyError)
            if not (isinstance(v, t) or (t is float and isinstance(v, int) and not isinstance(v, bool))):
                bad.append("transforms[].%s is %r" % (k, v))
    ok(not bad, name + ": every field present with the right type")
    if bad:
        diag("; ".join(bad) + "\nline: " + json.dumps(line)[:1500])


def by_id(lines, rid):
    for ln in lines:
        if ln.get("request_id") == rid:
            return ln
    return {}


# ------------------------------------------------------ fields, JSON + stream
with Mock() as m:
    conf = TRANSFORM + "cache yes\n" + block("@WORKSPACE@/requests.jsonl")
    with Headroomd(mock=m, args=ARGS, extra_conf=conf) as h:
        path = os.path.join(h.workspace, "requests.jsonl")
        t0 = time.time()
        r1 = openai_req(h, "json", headers={"X-Headroom-Stack": "wrap_claude"})
        is_(r1.status, 200, "json request answered")
        r2 = openai_req(h, "stream", stream=True)
        is_(r2.status, 200, "streamed request answered")
        r3 = stream_req(h.url + "/v1/messages",
                        anthropic_body(model="claude-3-5-haiku-20241022", stream=True, messages=tool_messages("ant")),
                        {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"})
        is_(r3.status, 200, "anthropic stream answered")
        ok(wait_events(h, 3), "sink handled 3 events")
        t1 = time.time()
        lines = read_lines(path)
        is_(len(lines), 3, "one line per request")
        st = h.stats()
        is_(st["request_log"]["lines"], 3, "/stats.request_log.lines")
        is_(st["request_log"]["write_errors"], 0, "/stats.request_log.write_errors is 0")
        is_(st["request_log"]["path"], path, "/stats.request_log.path")
        is_(st["request_log"]["messages"], False, "/stats.request_log.messages is false by default")
        is_(st["request_log"]["reopens"], 0, "/stats.request_log.reopens is 0")

        a = by_id(lines, r1.header("x-headroom-request-id"))
        ok(a, "JSON request's line found by x-headroom-request-id")
        check_types(a, "json line")
        like(a.get("timestamp", ""), TS_RE, "timestamp is UTC ISO-8601 with milliseconds and Z")
        ts = time.mktime(time.strptime(a.get("timestamp", "1970-01-01T00:00:00.000Z")[:19], "%Y-%m-%dT%H:%M:%S")) \
            - time.timezone
        ok(t0 - 2 <= ts <= t1 + 2, "timestamp is now (UTC)")
        is_(a.get("provider"), "openai", "provider")
        is_(a.get("model"), "gpt-4o", "model")
        is_(a.get("stack"), "wrap_claude", "stack from X-Headroom-Stack")
        is_(a.get("status"), 200, "status")
        is_(a.get("tokens_input"), int(r1.header("x-headroom-tokens-before")), "tokens_input = x-headroom-tokens-before")
        is_(a.get("tokens_sent"), int(r1.header("x-headroom-tokens-after")), "tokens_sent = x-headroom-tokens-after")
        is_(a.get("tokens_saved"), int(r1.header("x-headroom-tokens-saved")), "tokens_saved = x-headroom-tokens-saved")
        cmp_ok(a.get("tokens_saved"), ">", 0, "the transform saved tokens")
        is_(a.get("tokens_output"), (r1.json() or {}).get("usage", {}).get("completion_tokens"),
            "tokens_output = the provider's completion_tokens")
        is_(a.get("savings_percent"), round(a["tokens_saved"] / a["tokens_input"] * 100, 2),
            "savings_percent = saved/input*100, 2 decimals")
        is_("%.6f" % a.get("cost_usd", -1), r1.header("x-headroom-cost-usd"), "cost_usd = x-headroom-cost-usd")
        is_("%.6f" % a.get("savings_usd", -1), r1.header("x-headroom-savings-usd"),
            "savings_usd = x-headroom-savings-usd")
        cmp_ok(a.get("cost_usd"), ">", 0, "gpt-4o is priced")
        ok(a.get("latency_ms", -1) >= a.get("overhead_ms", 0) >= 0, "latency_ms >= overhead_ms >= 0")
        ok(isinstance(a.get("ttfb_ms"), (int, float)) and a["ttfb_ms"] >= 0, "ttfb_ms is a number")
        is_(a.get("cached"), False, "cached false")
        is_(a.get("error"), None, "error null")
        is_([t.get("name") for t in a.get("transforms", [])], ["example_transform"], "transforms[] names the stage")
        is_(sum(t.get("tokens_saved", 0) for t in a.get("transforms", [])), a.get("tokens_saved"),
            "stage tokens_saved adds up to the request's")
        ok("request" not in a, "no request field without messages")

        s = by_id(lines, r2.header("x-headroom-request-id"))
        check_types(s, "openai stream line")
        mt = COMMENT_RE.search(r2.body)
        ok(mt, "stream carries the closing cost comment")
        if mt:
            is_((s.get("tokens_input"), s.get("tokens_sent"), s.get("tokens_saved")),
                (int(mt.group(1)), int(mt.group(2)), int(mt.group(3))), "stream line tokens = the SSE comment's")
            is_("%.6f" % s.get("cost_usd", -1), mt.group(4).decode(), "stream line cost_usd = the SSE comment's")
            is_("%.6f" % s.get("savings_usd", -1), mt.group(5).decode(), "stream line savings_usd = the SSE comment's")
        is_(s.get("streamed"), True, "streamed true")
        cmp_ok(s.get("tokens_output", 0), ">", 0, "stream tokens_output from the usage chunk")

        n = by_id(lines, r3.header("x-headroom-request-id"))
        check_types(n, "anthropic stream line")
        is_(n.get("provider"), "anthropic", "anthropic provider")
        is_(n.get("model"), "claude-3-5-haiku-20241022", "anthropic model")
        is_(n.get("stack"), "", "untagged client: stack \"\"")
        cmp_ok(n.get("tokens_output", 0), ">", 0, "anthropic stream tokens_output")

        is_(st["tokens"]["input"], sum(x.get("tokens_input", 0) for x in lines), "sum of tokens_input = /stats tokens.input")
        is_(st["tokens"]["saved"], sum(x.get("tokens_saved", 0) for x in lines), "sum of tokens_saved = /stats tokens.saved")
        is_(st["tokens"]["output"], sum(x.get("tokens_output", 0) for x in lines),
            "sum of tokens_output = /stats tokens.output")
        cmp_ok(abs(st["cost"]["total_cost_usd"] - sum(x.get("cost_usd", 0) for x in lines)), "<=", 1e-6 * len(lines),
               "sum of cost_usd = /stats cost.total_cost_usd (within the 6-decimal rounding)")
        is_(st["requests"]["total"], len(lines), "/stats requests.total = lines")

        # A repeat of the JSON request comes from the response cache.
        r4 = openai_req(h, "json")
        ok(wait_events(h, 4), "cached request handled")
        c = by_id(read_lines(path), r4.header("x-headroom-request-id"))
        if r4.header("x-headroom-cache") == "hit":
            is_(r4.header("x-headroom-cache"), "hit", "the repeat is a response-cache hit")
        is_(c.get("cached"), True, "a response-cache hit logs cached true")
        check_types(c, "cached line")

        # Failures: a reset before headers and an upstream 500.
        r5 = openai_req(h, "reset", headers={"x-mock-reset": "before-headers"})
        r6 = openai_req(h, "500", headers={"x-mock-status": "500"})
        ok(wait_events(h, 6), "failure events handled")
        lines = read_lines(path)
        # headroomd's own error replies carry no x-headroom-request-id: find the line by its error.
        f = by_id(lines, r5.header("x-headroom-request-id")) or next((x for x in lines if x.get("error")), {})
        cmp_ok(r5.status, ">=", 500, "upstream reset answered with a 5xx")
        is_(f.get("status"), r5.status, "failure line status = the status the client got")
        ok(isinstance(f.get("error"), str) and f["error"], "failure line has error text")
        check_types(f, "failure line")
        g = by_id(lines, r6.header("x-headroom-request-id"))
        is_(g.get("status"), 500, "upstream 500 logged with status 500")

        data = open(path, "rb").read()
        ok(OPENAI_KEY.encode() not in data and ANTHROPIC_KEY.encode() not in data, "no API key in the file")
        ok(b"authorization" not in data.lower() and b"x-api-key" not in data.lower(), "no header names in the file")
        ok(all("_bad" not in x for x in read_lines(path)), "every line is JSON")
        is_(stat.S_IMODE(os.stat(path).st_mode), 0o600, "new file is created 0600")

# ------------------------------------------------------- message bodies
    conf = TRANSFORM + "log_messages yes\n" + block("@WORKSPACE@/msgs.jsonl", messages=True)
    with Headroomd(mock=m, args=ARGS, extra_conf=conf) as h:
        path = os.path.join(h.workspace, "msgs.jsonl")
        body = openai_body(model="gpt-4o", messages=tool_messages("bodies"))
        r = post_json(h.url + "/v1/chat/completions", body, headers={"Authorization": "Bearer " + OPENAI_KEY})
        is_(r.status, 200, "messages: request answered")
        r2 = request("POST", h.url + "/v1/chat/completions", body=b"this is not json",
                     headers={"Content-Type": "application/json", "Authorization": "Bearer " + OPENAI_KEY})
        wait_events(h, 2)
        lines = read_lines(path)
        a = by_id(lines, r.header("x-headroom-request-id"))
        is_(a.get("request"), body, "messages yes: request is the full client body, parsed")
        b = by_id(lines, r2.header("x-headroom-request-id")) or next(
            (x for x in lines if isinstance(x.get("request"), str)), {})
        is_((r2.status, b.get("status")), (400, 400), "a body that is not JSON: 400, and logged")
        is_(b.get("request"), "this is not json", "a body that is not JSON is logged as a string")
        is_(h.stats()["request_log"]["messages"], True, "/stats.request_log.messages true")
        ok(OPENAI_KEY.encode() not in open(path, "rb").read(), "messages on: still no API key in the file")

    # The host passes bodies only with log_messages: the block alone gets a WARN.
    with Headroomd(mock=m, args=ARGS, extra_conf=block("@WORKSPACE@/nobody.jsonl", messages=True)) as h:
        openai_req(h, "nobody")
        wait_events(h, 1)
        ok("request" not in (read_lines(os.path.join(h.workspace, "nobody.jsonl")) or [{}])[0],
           "messages yes without log_messages: no request field")
        like(h.stderr_text(), r"WARN\w*:headroom\.sinks\.request_log:.*log_messages yes",
             "... and a WARN saying what to add")

# ------------------------------------------------------- rotation under load
    with Headroomd(mock=m, args=ARGS, extra_conf=TRANSFORM + block("@WORKSPACE@/rot.jsonl")) as h:
        path = os.path.join(h.workspace, "rot.jsonl")
        sent, stop = [], threading.Event()

        def pump(k):
            i = 0
            while not stop.is_set():
                r = post_json(h.url + "/v1/chat/completions",
                              openai_body(model="gpt-4o", content="load %d-%d" % (k, i)))
                if r.status == 200:
                    sent.append(r.header("x-headroom-request-id"))
                i += 1

        threads = [threading.Thread(target=pump, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        wait_until(lambda: len(sent) >= 40, 10)
        os.rename(path, path + ".1")
        h.signal(signal.SIGHUP)
        ok(wait_until(lambda: rlog(h).get("reopens") == 1, 5), "SIGHUP: /stats.request_log.reopens = 1")
        wait_until(lambda: os.path.exists(path) and len(read_lines(path)) >= 20, 10)
        stop.set()
        for t in threads:
            t.join()
        ok(wait_events(h, len(sent)), "all %d events handled" % len(sent))
        old, new = read_lines(path + ".1"), read_lines(path)
        cmp_ok(len(old), ">", 0, "lines before the rotation stayed in the renamed file")
        cmp_ok(len(new), ">", 0, "lines after SIGHUP went to a fresh file")
        ids = [x.get("request_id") for x in old + new]
        is_(sorted(ids), sorted(sent), "no line lost or duplicated across the rotation (%d requests)" % len(sent))
        ok(all("_bad" not in x for x in old + new), "no torn or interleaved line")
        is_(rlog(h).get("lines"), len(sent), "/stats lines counts both files")
        is_(stat.S_IMODE(os.stat(path).st_mode), 0o600, "the reopened file is 0600 too")
        # A reopen that fails (the path is now a directory) keeps the old file.
        os.rename(path, path + ".2")
        os.mkdir(path)
        h.signal(signal.SIGHUP)
        ok(wait_until(lambda: rlog(h).get("reopen_errors") == 1, 5), "failed reopen: /stats.request_log.reopen_errors = 1")
        r = openai_req(h, "after-failed-reopen")
        wait_events(h, len(sent) + 1)
        is_([x.get("request_id") for x in read_lines(path + ".2")][-1:], [r.header("x-headroom-request-id")],
            "failed reopen: lines keep going to the file already open")
        like(h.stderr_text(), r"WARN\w*:headroom\.sinks\.request_log:SIGHUP: cannot reopen", "failed reopen: a WARN")
        os.rmdir(path)
        h.signal(signal.SIGHUP)
        ok(wait_until(lambda: rlog(h).get("reopens") == 2, 5), "the next SIGHUP reopens again")
        like(h.stderr_text(), r"INFO:headroom\.sinks\.request_log:reopened request log", "INFO line per reopen")

# ------------------------------------------------------- --log-file flags
    ws = hrtest._mkdtemp("hr-rlog-")
    flag_path = os.path.join(ws, "flag.jsonl")
    with Headroomd(mock=m, args=ARGS + ["--log-file", flag_path]) as h:
        r = openai_req(h, "flag")
        ok(wait_events(h, 1), "--log-file: the request_log sink is loaded")
        lines = read_lines(flag_path)
        is_(len(lines), 1, "--log-file: one line")
        ok(lines and "request" not in lines[0], "--log-file alone: no request bodies")
        is_(rlog(h).get("path"), flag_path, "--log-file: /stats.request_log.path")
    msg_path = os.path.join(ws, "flagmsg.jsonl")
    with Headroomd(mock=m, args=ARGS + ["--log-file", msg_path, "--log-messages"]) as h:
        body = openai_body(model="gpt-4o", content="flag body")
        r = post_json(h.url + "/v1/chat/completions", body)
        wait_events(h, 1)
        lines = read_lines(msg_path)
        is_(lines and lines[0].get("request"), body, "--log-messages: request is the client body")
        is_(rlog(h).get("messages"), True, "--log-messages: /stats.request_log.messages")
    cfg_path = os.path.join(ws, "cfg.jsonl")
    with Headroomd(mock=m, args=ARGS, extra_conf='log_file "%s"\n' % cfg_path) as h:
        openai_req(h, "cfg")
        wait_events(h, 1)
        is_(len(read_lines(cfg_path)), 1, "log_file in headroom.conf works as --log-file")
    env_path = os.path.join(ws, "env.jsonl")
    with Headroomd(mock=m, args=ARGS, env={"HEADROOM_LOG_FILE": env_path}) as h:
        openai_req(h, "env")
        wait_events(h, 1)
        is_(len(read_lines(env_path)), 1, "HEADROOM_LOG_FILE works as --log-file")
    with Headroomd(mock=m, args=ARGS + ["--log-file", os.path.join(ws, "ignored.jsonl")],
                   extra_conf=block(os.path.join(ws, "explicit.jsonl"))) as h:
        openai_req(h, "explicit")
        wait_events(h, 1)
        is_((len(read_lines(os.path.join(ws, "explicit.jsonl"))), os.path.exists(os.path.join(ws, "ignored.jsonl"))),
            (1, False), "an explicit sink block wins over --log-file")
    refused_path = os.path.join(ws, "refused.jsonl")
    with Headroomd(mock=m, args=ARGS + ["--log-file", refused_path, "--rate-limit-rpm", "1"]) as h:
        first, second = openai_req(h, "r1"), openai_req(h, "r2")
        is_((first.status, second.status), (200, 429), "rate limit 1 rpm: the second request is refused")
        ok(wait_events(h, 2), "a refused request is logged too")
        lines = read_lines(refused_path)
        is_([ln.get("status") for ln in lines], [200, 429], "one line per request, refusals included")
        is_(lines[-1].get("error") if lines else None, "rate limited", "the refusal says why")
        st, js = get_json(h.url + "/stats")
        is_(js["requests"]["total"], len(lines), "requests.total matches the log")

# ------------------------------------------------------- unwritable paths
    for bad, what in ((ws, "a directory"), ("/proc/headroom-no-such/requests.jsonl", "a path under /proc")):
        with Headroomd(mock=m, args=ARGS, extra_conf=block(bad)) as h:
            r1 = openai_req(h, "u1")
            r2 = openai_req(h, "u2")
            is_((r1.status, r2.status), (200, 200), "%s: the daemon still serves" % what)
            ok(wait_events(h, 2), "%s: events handled" % what)
            rl = rlog(h)
            is_((rl.get("lines"), rl.get("write_errors")), (0, 2), "%s: write_errors counted in /stats" % what)
            warns = re.findall(r"WARN\w*:headroom\.sinks\.request_log:.*", h.stderr_text())
            is_(len(warns), 1, "%s: one WARN, not one per request" % what)
            ok(h.get("/readyz").status == 200 and h.alive(), "%s: still ready" % what)

    # A directory that appears later: lines resume without a restart.
    later = os.path.join(ws, "later")
    with Headroomd(mock=m, args=ARGS, extra_conf=block(os.path.join(later, "r.jsonl"))) as h:
        openai_req(h, "l1")
        wait_events(h, 1)
        os.mkdir(later)
        openai_req(h, "l2")
        wait_events(h, 2)
        is_((rlog(h).get("write_errors"), len(read_lines(os.path.join(later, "r.jsonl")))), (1, 1),
            "a path that becomes writable is picked up at the next request")

    # fsync yes still writes every line.
    with Headroomd(mock=m, args=ARGS, extra_conf=block(os.path.join(ws, "sync.jsonl"), fsync=True)) as h:
        for i in range(3):
            openai_req(h, "sync%d" % i)
        wait_events(h, 3)
        is_((len(read_lines(os.path.join(ws, "sync.jsonl"))), rlog(h).get("fsync")), (3, True), "fsync yes: lines written")

# ------------------------------------------------------- bad config
    for conf, what in ((block(""), "empty path"), ("sink request_log {\n}\n", "no path")):
        h = Headroomd(mock=m, args=ARGS, extra_conf=conf, wait_ready=False, expect_exit=None)
        h.start()
        try:
            rc = h.proc.wait(20)
        except subprocess.TimeoutExpired:
            rc = None
        is_(rc, 1, "%s: exit 1" % what)
        like(h.stderr_text(), r"request_log.*(`path` is required|needs 'path' set)", "%s: the message names the key" % what)
        h.stop()

done()
