#!/usr/bin/env python3
# consistency_test.py — one truth in every number (issue 15): mixed traffic
# (OpenAI Chat / Anthropic Messages / OpenAI Responses, JSON and SSE,
# compressible or not, provider 500 and 429, a refused upstream connection, an
# upstream reset before the answer and one inside it, response-cache hits,
# rate-limit and budget refusals, Anthropic prompt-cache usage) through one
# configuration of headroomd, with a restart in the middle, then every surface
# compared to the token and to the micro-dollar: answer headers and stream
# comments against the request log, /stats and /metrics against the log lines
# since the restart, /stats-history (JSON and CSV), persistent_savings, the
# savings file and the budget against every log line ever written; no saving
# without a 2xx from the provider that reached the client; no number printed
# with binary noise.
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403
import hrtest  # noqa: E402
import csv  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402
from decimal import Decimal  # noqa: E402

SRCDIR = os.environ.get("top_srcdir") or os.path.join(T_DIR, "..")
PRICES_PATH = os.path.abspath(os.path.join(SRCDIR, "conf", "prices.json"))
PRICES = json.load(open(PRICES_PATH))["models"]
PLUGIN_DIR = os.environ.get("HEADROOM_TEST_PLUGIN_DIR")
FROZEN_NOW = "1764160496"  # 2025-11-26 12:34:56 UTC: budget period and rate-limit clock stand still
BUDGET = 2

COMMENT_RE = re.compile(rb": headroom tokens_before=(\d+) tokens_after=(\d+) tokens_saved=(\d+) "
                        rb"cost_usd=(\d+\.\d{6}) savings_usd=(\d+\.\d{6})\n\n$")

ROWS = [{"id": i, "level": "ERROR" if i in (17, 333) else "INFO", "service": "billing" if i % 7 else "auth",
         "msg": "request %d handled in %d ms by worker-%d" % (i, 10 + i % 90, i % 5)} for i in range(400)]
ROWS[333]["msg"] = "payment gateway timeout for invoice INV-4471"
TOOL_OUTPUT = json.dumps(ROWS)

CONF = """# consistency_test
host 127.0.0.1
port @PORT@
openai_api_url @MOCK_URL@
anthropic_api_url @ANTHROPIC_URL@
workers 2
%sprices %s
cache_ttl 300
rate_limit_rpm 3
budget %d
budget_period daily
transform router {
}
transform smart_crusher {
}
sink prometheus {
    path /metrics
}
sink savings_file {
    path "@WORKSPACE@/proxy_savings.json"
    flush_interval 1
}
sink request_log {
    path "@WORKSPACE@/requests.jsonl"
}
""" % ("plugin_dir %s\n" % PLUGIN_DIR if PLUGIN_DIR else "", PRICES_PATH, BUDGET)


# ------------------------------------------------------------------ bodies
def chat_tool(tag, model="gpt-4o", **extra):
    b = {"model": model, "messages": [
        {"role": "user", "content": "Why did invoice INV-4471 fail? (%s)" % tag},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "search_logs", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": TOOL_OUTPUT}]}
    b.update(extra)
    return b


def anthropic_tool(tag, model="claude-sonnet-4-5", **extra):
    b = {"model": model, "max_tokens": 256, "messages": [
        {"role": "user", "content": "Why did invoice INV-4471 fail? (%s)" % tag},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "tu_1", "name": "search_logs", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu_1", "content": TOOL_OUTPUT}]}]}
    b.update(extra)
    return b


def responses_tool(tag, model="gpt-4o", **extra):
    b = {"model": model, "input": [
        {"role": "user", "content": "Why did invoice INV-4471 fail? (%s)" % tag},
        {"type": "function_call", "call_id": "c1", "name": "search_logs", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": TOOL_OUTPUT}]}
    b.update(extra)
    return b


def responses_small(tag, model="gpt-4o-mini", **extra):
    b = {"model": model, "input": "say hello (%s)" % tag}
    b.update(extra)
    return b


def usage(obj):
    return json.dumps(obj)


def usd6(x):
    return "%.6f" % x


def price(model, inp=0, out=0, read=0, w5=0, w1=0):
    p = PRICES[model]
    return (inp * p["input"] + read * p["cache_read"] + w5 * p["cache_write_5m"] + w1 * p["cache_write_1h"]
            + out * p["output"]) / 1e6


# ------------------------------------------------------------------ traffic
class Traffic:
    """Sends requests, remembers what each answer said about itself."""

    def __init__(self):
        self.sent = []  # one record per /v1 request
        self.n_key = 0

    def new_key(self):
        self.n_key += 1
        return "sk-consistency-%04d" % self.n_key

    def send(self, h, seg, what, path, body, headers=None, key=None, sse=False, want_status=200,
             cached=False, refused=False):
        key = key or self.new_key()
        hl = {"Authorization": "Bearer " + key} if path != "/v1/messages" else {"x-api-key": key,
                                                                                "anthropic-version": "2023-06-01"}
        hl.update(headers or {})
        if sse:
            r = stream(h.url + path, body, headers=hl)
        else:
            r = post_json(h.url + path, body, headers=hl)
        fig = None
        m = COMMENT_RE.search(r.body) if sse else None
        if m:
            fig = {"src": "comment", "before": int(m.group(1)), "after": int(m.group(2)), "saved": int(m.group(3)),
                   "cost": m.group(4).decode(), "savings": m.group(5).decode()}
        elif r.header("x-headroom-cost-usd") is not None:
            fig = {"src": "headers", "before": int(r.header("x-headroom-tokens-before", "-1")),
                   "after": int(r.header("x-headroom-tokens-after", "-1")),
                   "saved": int(r.header("x-headroom-tokens-saved", "-1")),
                   "cost": r.header("x-headroom-cost-usd"), "savings": r.header("x-headroom-savings-usd")}
        rec = {"seg": seg, "what": what, "path": path, "status": r.status, "want_status": want_status,
               "id": r.header("x-headroom-request-id"), "fig": fig, "sse": sse, "cached": cached,
               "refused": refused, "cache_hdr": r.header("x-headroom-cache"), "resp": r,
               "tok_hdrs": (r.header("x-headroom-tokens-before"), r.header("x-headroom-tokens-after"),
                            r.header("x-headroom-tokens-saved"))}
        self.sent.append(rec)
        return rec

    def refused_by_proxy(self, h, seg, what, method, path, headers, want_status):
        """A request the proxy refuses before any body is read (a path it
        will not forward, a WebSocket upgrade it does not relay)."""
        r = request(method, h.url + path, headers=headers)
        rec = {"seg": seg, "what": what, "path": path, "status": r.status, "want_status": want_status,
               "id": r.header("x-headroom-request-id"), "fig": None, "sse": False, "cached": False,
               "refused": True, "cache_hdr": None, "resp": r, "tok_hdrs": (None, None, None)}
        self.sent.append(rec)
        return rec


def log_lines(path, start=0, end=None):
    """The complete lines of the request log from start. A line the sink thread
    is still writing has no newline yet (one write(2) can land in the page cache
    in pieces a concurrent read sees), so an unterminated tail is left for the
    next poll, as a log shipper tailing the file would."""
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read() if end is None else f.read(end - start)
    data = data[:data.rfind(b"\n") + 1]
    return [json.loads(l) for l in data.decode().splitlines() if l.strip()]


def wait_lines(path, start, n, timeout=10):
    wait_until(lambda: len(log_lines(path, start)) >= n, timeout=timeout)
    return log_lines(path, start)


def metric(text, name):
    m = re.search(r"(?m)^%s (\S+)$" % re.escape(name), text)
    return m.group(1) if m else None


def rsum(xs):
    """Sum of 6-decimal amounts, exactly, as Decimal rounded to 6 decimals."""
    return sum((x if isinstance(x, Decimal) else Decimal(repr(x)) for x in xs), Decimal(0)).quantize(
        Decimal("0.000001"))


def d6(x):
    """A printed amount as the Decimal the reader takes it for, at 6 decimals."""
    return Decimal(repr(x) if isinstance(x, float) else str(x)).quantize(Decimal("0.000001"))


def shortest(x):
    """How every surface prints an amount: rounded to 6 decimals, shortest form."""
    return format(d6(x).normalize(), "f")


# ------------------------------------------------------------------ binary noise
NOISE = []


def _lit_ok(lit, where):
    """A printed number must carry at most 6 decimals (exponent forms included)."""
    d = Decimal(lit)
    if d.as_tuple().exponent < -6 and d != d.quantize(Decimal("0.000001")):
        NOISE.append("%s: %s" % (where, lit))


def check_json_text(text, where):
    def pf(lit):
        _lit_ok(lit, where)
        return float(lit)
    try:
        return json.loads(text, parse_float=pf)
    except ValueError:
        NOISE.append("%s: not JSON" % where)
        return None


def check_csv_text(text, where):
    for row in csv.reader(io.StringIO(text)):
        for cell in row:
            if re.fullmatch(r"-?\d+(\.\d+)?([eE][-+]?\d+)?", cell) and ("." in cell or "e" in cell.lower()):
                _lit_ok(cell, where)


def check_prom_text(text, where):
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        val = line.rsplit(" ", 1)[-1]
        if val not in ("+Inf", "-Inf", "NaN"):
            _lit_ok(val, where + " " + line.split(" ")[0])
        for le in re.findall(r'le="([^"]+)"', line):
            if le != "+Inf":
                _lit_ok(le, where + " le")


# ------------------------------------------------------------------ the run
T0 = time.monotonic()
tr = Traffic()
ws = hrtest._mkdtemp("hr-consistency-ws-")
LOG = os.path.join(ws, "requests.jsonl")
SAV = os.path.join(ws, "proxy_savings.json")
ENV = {"HEADROOM_WORKSPACE_DIR": ws, "HEADROOM_TEST_NOW": FROZEN_NOW}
closed_port = free_port()
segments = []  # (name, start offset, end offset)
daemons = {}  # segment name -> Headroomd (its stderr has the Pipeline complete lines)


def daemon(m, anthropic_url=None):
    text = CONF.replace("@ANTHROPIC_URL@", anthropic_url or m.url)
    return Headroomd(mock=m, conf_text=text, env=ENV)


def seg_begin(name):
    return (name, os.path.getsize(LOG) if os.path.exists(LOG) else 0)


def seg_end(h, seg):
    name, start = seg
    n_requests = sum(1 for r in tr.sent if r["seg"] == name)
    lines = wait_lines(LOG, start, n_requests)
    is_(len(lines), n_requests, "%s: one request-log line per /v1 request (%d)" % (name, n_requests))
    return lines


def run_one(h, seg):
    """First run: every kind of answer."""
    S = seg[0]
    tr.send(h, S, "openai json compressible", "/v1/chat/completions", chat_tool("r1-a"))
    tr.send(h, S, "openai json small", "/v1/chat/completions", openai_body(model="gpt-4o-mini", content="hi r1"))
    tr.send(h, S, "openai sse compressible include_usage", "/v1/chat/completions",
            chat_tool("r1-b", stream=True, stream_options={"include_usage": True}), sse=True)
    tr.send(h, S, "openai sse without usage", "/v1/chat/completions",
            openai_body(model="gpt-4o-mini", content="no usage r1", stream=True), sse=True)
    tr.send(h, S, "anthropic json compressible", "/v1/messages", anthropic_tool("r1-c"))
    tr.send(h, S, "anthropic sse compressible", "/v1/messages", anthropic_tool("r1-d", model="claude-3-5-haiku",
                                                                                 stream=True), sse=True)
    r = tr.send(h, S, "anthropic prompt-cache write", "/v1/messages",
                anthropic_body(model="claude-3-7-sonnet-20250219", content="cache write r1"),
                headers={"x-mock-usage": usage({"input_tokens": 3, "cache_creation_input_tokens": 12304,
                                                "output_tokens": 550})})
    is_((r["fig"] or {}).get("cost"), "0.054399",
        "claude-3-7-sonnet, 3 in + 12,304 cache-write (5m) + 550 out costs $0.054399")
    r = tr.send(h, S, "anthropic prompt-cache read+ttl writes", "/v1/messages",
                anthropic_body(model="claude-sonnet-4-5", content="cache read r1"),
                headers={"x-mock-usage": usage({"input_tokens": 1000, "cache_read_input_tokens": 5000,
                                                "output_tokens": 300, "cache_creation": {
                                                    "ephemeral_5m_input_tokens": 2000,
                                                    "ephemeral_1h_input_tokens": 1000}})})
    is_((r["fig"] or {}).get("cost"),
        usd6(price("claude-sonnet-4-5", inp=1000, read=5000, w5=2000, w1=1000, out=300)),
        "Anthropic usage with cache reads and 5m/1h writes priced from conf/prices.json")
    tr.send(h, S, "responses json compressible", "/v1/responses", responses_tool("r1-e"))
    tr.send(h, S, "responses sse", "/v1/responses", responses_small("r1-f", stream=True), sse=True)
    tr.send(h, S, "responses sse compressible", "/v1/responses", responses_tool("r1-g", stream=True), sse=True)
    tr.send(h, S, "openai 500", "/v1/chat/completions", chat_tool("r1-h"), headers={"x-mock-status": "500"},
            want_status=500)
    tr.send(h, S, "anthropic 429", "/v1/messages", anthropic_tool("r1-i"), headers={"x-mock-status": "429"},
            want_status=429)
    tr.send(h, S, "responses 500", "/v1/responses", responses_tool("r1-j"), headers={"x-mock-status": "500"},
            want_status=500)
    tr.send(h, S, "openai sse 500", "/v1/chat/completions",
            chat_tool("r1-k", stream=True, stream_options={"include_usage": True}),
            headers={"x-mock-status": "500"}, sse=True, want_status=500)
    k = tr.new_key()
    a = tr.send(h, S, "cache miss", "/v1/chat/completions", chat_tool("r1-cache", model="gpt-4o-mini"), key=k)
    b = tr.send(h, S, "cache hit", "/v1/chat/completions", chat_tool("r1-cache", model="gpt-4o-mini"), key=k,
                cached=True)
    is_((a["cache_hdr"], b["cache_hdr"]), ("miss", "hit"), "run 1: the same non-streamed request twice: miss, hit")
    is_(b["resp"].body, a["resp"].body, "run 1: the hit replays the answer")
    tr.send(h, S, "unpriced model", "/v1/chat/completions", openai_body(model="mystery-model-9", content="r1"))


def run_side(h, seg):
    """A daemon whose Anthropic upstream refuses connections: 502s."""
    S = seg[0]
    tr.send(h, S, "anthropic refused json", "/v1/messages", anthropic_tool("s-a"), want_status=502, refused=True)
    tr.send(h, S, "anthropic refused sse", "/v1/messages", anthropic_tool("s-b", stream=True), sse=True,
            want_status=502, refused=True)
    tr.send(h, S, "openai still fine", "/v1/chat/completions", chat_tool("s-c"))


def run_two(h, seg):
    """After the restart: more of the same, a reset, the rate limit, then the budget."""
    S = seg[0]
    tr.send(h, S, "openai json compressible", "/v1/chat/completions", chat_tool("r2-a"))
    tr.send(h, S, "anthropic sse compressible", "/v1/messages", anthropic_tool("r2-b", stream=True), sse=True)
    tr.send(h, S, "anthropic json cache read", "/v1/messages", anthropic_tool("r2-c", model="claude-3-7-sonnet"),
            headers={"x-mock-usage": usage({"cache_read_input_tokens": 7777, "cache_creation_input_tokens": 123})})
    tr.send(h, S, "responses json compressible", "/v1/responses", responses_tool("r2-d"))
    # Refused by the proxy itself: counted, and a request-log line, like the rest.
    upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13"}
    tr.refused_by_proxy(h, S, "bad path 400", "POST", "/v1/../stats", {}, 400)
    tr.refused_by_proxy(h, S, "websocket upgrade not relayed 501", "GET", "/v1/chat/completions",
                        dict(upgrade, **{"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}), 501)
    tr.refused_by_proxy(h, S, "websocket upgrade without key 400", "GET", "/v1/responses", upgrade, 400)
    tr.send(h, S, "openai sse compressible include_usage", "/v1/chat/completions",
            chat_tool("r2-e", model="gpt-4o-mini", stream=True, stream_options={"include_usage": True}), sse=True)
    tr.send(h, S, "openai 500", "/v1/chat/completions", chat_tool("r2-f"), headers={"x-mock-status": "500"},
            want_status=500)
    tr.send(h, S, "anthropic 429", "/v1/messages", anthropic_tool("r2-g"), headers={"x-mock-status": "429"},
            want_status=429)
    tr.send(h, S, "openai upstream reset", "/v1/chat/completions", chat_tool("r2-h"),
            headers={"x-mock-reset": "before-headers"}, want_status=502, refused=True)
    # The answer's head (200) came, then the connection broke: the client gets
    # headroomd's 502, so nothing is credited (the mock pads the answer so the
    # reset falls inside its body).
    tr.send(h, S, "openai upstream reset mid-body", "/v1/chat/completions", chat_tool("r2-h2"),
            headers={"x-mock-reset": "mid-body", "x-mock-body-bytes": "20000"}, want_status=502, refused=True)
    tr.send(h, S, "anthropic stream error after 200", "/v1/messages",
            anthropic_tool("r2-i", stream=True), headers={"x-mock-stream-error": "overloaded_error"}, sse=True)
    k = tr.new_key()
    a = tr.send(h, S, "cache miss", "/v1/messages", anthropic_tool("r2-cache"), key=k)
    b = tr.send(h, S, "cache hit", "/v1/messages", anthropic_tool("r2-cache"), key=k, cached=True)
    is_((a["cache_hdr"], b["cache_hdr"]), ("miss", "hit"), "run 2: anthropic miss then hit")
    # the rate limit: rpm 3 per key, the 4th is refused
    k = tr.new_key()
    for i in range(3):
        tr.send(h, S, "rate-limited key %d" % i, "/v1/chat/completions",
                openai_body(model="gpt-4o-mini", content="rl %d" % i), key=k)
    r = tr.send(h, S, "rate limit refusal", "/v1/chat/completions", chat_tool("r2-rl", model="gpt-4o-mini"), key=k,
                want_status=429, refused=True)
    ok(r["resp"].header("retry-after") is not None, "rate limit refusal: 429 with Retry-After")
    # the budget: one expensive answer crosses it, then requests are refused
    big = price("claude-sonnet-4-5", out=200000)
    tr.send(h, S, "expensive answer", "/v1/messages", anthropic_body(model="claude-sonnet-4-5", content="expensive"),
            headers={"x-mock-usage": usage({"output_tokens": 200000})})
    cmp_ok(big, ">", BUDGET, "the expensive answer ($%g) alone is over the budget" % big)
    r = tr.send(h, S, "budget refusal openai", "/v1/chat/completions", chat_tool("r2-budget"), want_status=429,
                refused=True)
    like(r["resp"].text, r"budget_exceeded", "budget refusal: budget_exceeded (openai)")
    r = tr.send(h, S, "budget refusal anthropic sse", "/v1/messages", anthropic_tool("r2-budget", stream=True),
                sse=True, want_status=429, refused=True)
    like(r["resp"].text, r"budget_exceeded", "budget refusal: budget_exceeded (anthropic stream)")


with Mock() as m:
    # ---------------------------------------------------------------- run 1
    h = daemon(m).start()
    seg = seg_begin("run 1")
    run_one(h, seg)
    lines1 = seg_end(h, seg)
    n = len(lines1)
    st1 = h.stats()
    is_(st1["requests"]["total"], n, "run 1: /stats requests.total = request-log lines")
    rc = h.stop()
    is_(rc, 0, "run 1: clean stop")
    daemons[seg[0]] = h
    segments.append((seg[0], seg[1], os.path.getsize(LOG)))

    # ----------------------------------------------- side daemon: refused upstream
    h = daemon(m, anthropic_url="http://127.0.0.1:%d" % closed_port).start()
    seg = seg_begin("refused upstream")
    run_side(h, seg)
    seg_end(h, seg)
    is_(h.stop(), 0, "side daemon: clean stop")
    daemons[seg[0]] = h
    segments.append((seg[0], seg[1], os.path.getsize(LOG)))

    # ---------------------------------------------------------------- run 2
    h = daemon(m).start()
    seg = seg_begin("run 2")
    st0 = h.stats()
    is_((st0["requests"]["total"], st0["tokens"]["saved"], st0["cost"]["total_cost_usd"]), (0, 0, 0),
        "restart: the live /stats starts from zero")
    ok(st0["persistent_savings"]["lifetime"]["requests"] == len(log_lines(LOG)),
       "restart: the durable lifetime carries over (%s requests)" % st0["persistent_savings"]["lifetime"]["requests"])
    run_two(h, seg)
    lines2 = seg_end(h, seg)
    all_lines = log_lines(LOG)
    # the savings file flushes every second: wait until the newest checkpoint holds everything
    def flushed():
        j = h.get_json("/stats-history?history_mode=full")
        return j and j["history"] and j["history"][-1]["requests"] == len(all_lines)
    ok(wait_until(flushed, timeout=6), "savings file flushed: last checkpoint covers every request")

    r_stats = h.get("/stats")
    r_metrics = h.get("/metrics")
    r_hist = h.get("/stats-history?history_mode=full")
    csvs = {s: h.get("/stats-history?format=csv&history_mode=full&series=" + s)
            for s in ("history", "hourly", "daily", "weekly", "monthly")}
    is_(h.stop(), 0, "run 2: clean stop")
    daemons[seg[0]] = h
    segments.append((seg[0], seg[1], os.path.getsize(LOG)))

elapsed_traffic = time.monotonic() - T0

# --------------------------------------------------------------- per request
by_seg = {name: {l["request_id"]: l for l in log_lines(LOG, a, b)} for name, a, b in segments}
for name, a, b in segments:
    ids = [l["request_id"] for l in log_lines(LOG, a, b)]
    is_(len(ids), len(set(ids)), "%s: request ids are unique within a run" % name)

bad_status, bad_id, mismatches, uncredited_savings, bad_credit, cache_bad = [], [], [], [], [], []
missing_fig = []
for rec in tr.sent:
    label = "%s/%s" % (rec["seg"], rec["what"])
    if rec["status"] != rec["want_status"]:
        bad_status.append("%s: %s (wanted %s)" % (label, rec["status"], rec["want_status"]))
    line = by_seg[rec["seg"]].get(rec["id"]) if rec["id"] else None
    if line is None:
        bad_id.append("%s: x-headroom-request-id %r has no request-log line" % (label, rec["id"]))
        continue
    rec["line"] = line
    if line["status"] != rec["status"]:
        mismatches.append("%s: log status %s, answer %s" % (label, line["status"], rec["status"]))
    from_provider = not rec["refused"] and not rec["cached"]
    fig = rec["fig"]
    if from_provider and fig is None:
        missing_fig.append(label)
    if fig:
        got = (line["tokens_input"], line["tokens_sent"], line["tokens_saved"], usd6(line["cost_usd"]),
               usd6(line["savings_usd"]))
        want = (fig["before"], fig["after"], fig["saved"], fig["cost"], fig["savings"])
        if got != want:
            mismatches.append("%s: log %s != %s %s" % (label, got, fig["src"], want))
        if fig["src"] == "comment" and rec["tok_hdrs"][0] is not None:
            if (int(rec["tok_hdrs"][0]), int(rec["tok_hdrs"][1])) != (fig["before"], fig["after"]):
                mismatches.append("%s: stream headers %s != comment %s" % (label, rec["tok_hdrs"], want))
    elif rec["tok_hdrs"][0] is not None:
        got = (line["tokens_input"], line["tokens_sent"], line["tokens_saved"])
        want = tuple(int(x) for x in rec["tok_hdrs"])
        if got != want:
            mismatches.append("%s: log %s != token headers %s" % (label, got, want))
    two_xx = 200 <= rec["status"] < 300
    should_credit = two_xx and from_provider
    if bool(line.get("credited")) != should_credit:
        bad_credit.append("%s: credited=%s status=%s cached=%s" % (label, line.get("credited"), rec["status"],
                                                                    rec["cached"]))
    if not should_credit and (line["tokens_saved"] or line["savings_usd"] or (fig and (fig["saved"] or
                                                                                       float(fig["savings"])))):
        uncredited_savings.append("%s: status %s saved %s savings_usd %s" % (label, rec["status"],
                                                                              line["tokens_saved"], line["savings_usd"]))
    if rec["refused"] and line["cost_usd"]:
        uncredited_savings.append("%s: refused/failed but cost_usd %s" % (label, line["cost_usd"]))
    if rec["cached"] and (line["cost_usd"] or line["savings_usd"] or line["tokens_saved"] or not line["cached"]
                          or (fig and (fig["cost"], fig["savings"], fig["saved"]) != ("0.000000", "0.000000", 0))):
        cache_bad.append("%s: line cached=%s cost %s savings %s saved %s; answer %s" % (
            label, line["cached"], line["cost_usd"], line["savings_usd"], line["tokens_saved"], fig))

is_(bad_status, [], "every answer has the status the scenario asks for")
is_(bad_id, [], "every answer's x-headroom-request-id names a request-log line of its run")
is_(missing_fig, [], "every provider answer carries its figures (headers, or the stream's closing comment)")
is_(mismatches, [], "per request: headers / stream comment == request-log line (tokens, cost, savings, status)")
is_(bad_credit, [], "per request: credited exactly when the provider answered 2xx (not cached, not refused)")
is_(uncredited_savings, [], "no saving (tokens or USD) and no cost for a request the provider did not answer 2xx")
is_(cache_bad, [], "cache hits: cached in the log, cost 0, savings 0, tokens saved 0")
compressed = [r for r in tr.sent if r.get("line") and r["line"]["tokens_saved"] > 0]
cmp_ok(len(compressed), ">=", 8, "traffic had real savings (%d requests compressed)" % len(compressed))
kinds = {(r["path"], r["sse"]) for r in compressed}
is_(len(kinds), 6, "savings credited on all three APIs, JSON and SSE")

# the log line "Pipeline complete: A -> B tokens (saved S, ...)" is written once per credited saving
PIPE_RE = re.compile(r"Pipeline complete: (\d+) -> (\d+) tokens \(saved (\d+),")
for name, a, b in segments:
    got = sorted(tuple(int(x) for x in mm) for mm in PIPE_RE.findall(daemons[name].stderr_text()))
    want = sorted((l["tokens_input"], l["tokens_sent"], l["tokens_saved"]) for l in log_lines(LOG, a, b)
                  if l.get("credited") and l["tokens_saved"] > 0)
    is_(got, want, "%s: the Pipeline complete log lines = the credited savings of the request log" % name)

# --------------------------------------------------------------- since the restart
st = check_json_text(r_stats.text, "/stats") or {}
met = r_metrics.text
check_prom_text(met, "/metrics")
cred2 = [l for l in lines2 if l.get("credited")]
tok = st.get("tokens", {})
want_tokens = {"input": sum(l["tokens_input"] for l in cred2), "sent": sum(l["tokens_sent"] for l in cred2),
               "saved": sum(l["tokens_saved"] for l in cred2), "output": sum(l["tokens_output"] for l in lines2)}
is_({k: tok.get(k) for k in want_tokens}, want_tokens,
    "since the restart: /stats tokens = sums over the request-log lines (credited lines for input/sent/saved)")
is_(tok.get("input", 0) - tok.get("sent", 0), tok.get("saved"), "/stats tokens: input - sent = saved")
cost = st.get("cost", {})
want_cost = {"total_cost_usd": rsum(l["cost_usd"] for l in lines2),
             "total_savings_usd": rsum(l["savings_usd"] for l in lines2)}
is_({k: d6(cost.get(k, -1)) for k in want_cost}, want_cost,
    "since the restart: /stats cost = sums over the request-log lines, to the micro-dollar")
is_(d6(cost.get("input_cost_usd", 0)) + d6(cost.get("output_cost_usd", 0)), d6(cost.get("total_cost_usd", -1)),
    "/stats cost: input_cost_usd + output_cost_usd = total_cost_usd")
is_(st.get("requests", {}).get("total"), len(lines2), "/stats requests.total = request-log lines since the restart")
is_(st.get("requests", {}).get("cached"), sum(1 for l in lines2 if l["cached"]), "/stats requests.cached = cached lines")
is_(st.get("requests", {}).get("rate_limited"), 1, "/stats requests.rate_limited = 1")
is_(st.get("requests", {}).get("budget_rejected"), 2, "/stats requests.budget_rejected = 2")
byst = {}
for l in lines2:
    byst[str(l["status"])] = byst.get(str(l["status"]), 0) + 1
is_(st.get("requests", {}).get("by_status"), byst, "/stats requests.by_status = statuses of the log lines")
hit_cost = [r for r in tr.sent if r["seg"] == "run 2" and r["what"] == "cache miss"][0]["fig"]["cost"]
is_(d6(cost.get("cache_avoided_usd", -1)), Decimal(hit_cost), "/stats cost.cache_avoided_usd = the replayed answer's cost")
hist = st.get("savings_history") or [[None, 0]]
is_(hist[-1][1], tok.get("saved"), "/stats savings_history ends at tokens.saved")

want_met = {"headroom_tokens_input_total": str(tok.get("input")), "headroom_tokens_sent_total": str(tok.get("sent")),
            "headroom_tokens_saved_total": str(tok.get("saved")),
            "headroom_tokens_output_total": str(tok.get("output")),
            "headroom_requests_total": str(len(lines2)),
            "headroom_requests_cached_total": str(st.get("requests", {}).get("cached"))}
is_({k: metric(met, k) for k in want_met}, want_met, "/metrics token and request counters = /stats = the log")
got_usd = {k: d6(metric(met, k) or -1) for k in ("headroom_cost_usd_total", "headroom_savings_usd_total",
                                                  "headroom_cache_avoided_usd_total")}
is_(got_usd, {"headroom_cost_usd_total": want_cost["total_cost_usd"],
              "headroom_savings_usd_total": want_cost["total_savings_usd"],
              "headroom_cache_avoided_usd_total": Decimal(hit_cost)},
    "/metrics USD counters = /stats = the log, to the micro-dollar")

# --------------------------------------------------------------- durable
want_life = {"requests": len(all_lines), "tokens_saved": sum(l["tokens_saved"] for l in all_lines),
             "input_tokens": sum(l["tokens_input"] for l in all_lines if l.get("credited")),
             "compression_savings_usd": rsum(l["savings_usd"] for l in all_lines),
             "total_cost_usd": rsum(l["cost_usd"] for l in all_lines)}


def life6(o):
    o = o or {}
    return {k: (d6(o.get(k, -1)) if k.endswith("_usd") else o.get(k)) for k in want_life}


hj = check_json_text(r_hist.text, "/stats-history") or {}
is_(life6(hj.get("lifetime")), want_life, "/stats-history lifetime = sums over ALL request-log lines (both runs)")
is_(life6(st.get("persistent_savings", {}).get("lifetime")), want_life, "/stats persistent_savings.lifetime = the same")
is_(metric(met, "headroom_persistent_savings_tokens_saved_total"), str(want_life["tokens_saved"]),
    "/metrics headroom_persistent_savings_tokens_saved_total = lifetime tokens saved")
is_(d6(metric(met, "headroom_persistent_savings_usd_total") or -1), want_life["compression_savings_usd"],
    "/metrics headroom_persistent_savings_usd_total = lifetime savings USD")
last = (hj.get("history") or [{}])[-1]
is_((last.get("requests"), last.get("total_tokens_saved"), last.get("input_tokens"),
     d6(last.get("compression_savings_usd", -1)), d6(last.get("total_cost_usd", -1))),
    (want_life["requests"], want_life["tokens_saved"], want_life["input_tokens"],
     want_life["compression_savings_usd"], want_life["total_cost_usd"]), "/stats-history: the last checkpoint = lifetime")
for s in ("hourly", "daily", "weekly", "monthly"):
    rows = (hj.get("series") or {}).get(s) or []
    got = {"requests": sum(x["requests"] for x in rows), "tokens_saved": sum(x["tokens_saved"] for x in rows),
           "input_tokens": sum(x["input_tokens"] for x in rows),
           "compression_savings_usd": rsum(x["compression_savings_usd"] for x in rows),
           "total_cost_usd": rsum(x["total_cost_usd"] for x in rows)}
    is_(got, want_life, "/stats-history series %s: the rows add up to the lifetime" % s)
    is_(rows[-1]["total_tokens_saved"] if rows else None, want_life["tokens_saved"],
        "/stats-history series %s: total_tokens_saved of the last row" % s)
    for row in rows:
        for split in ("by_provider", "by_model"):
            parts = (row.get(split) or {}).values()
            if row["requests"] and parts:
                sub = (sum(p["requests"] for p in parts), sum(p["tokens_saved"] for p in parts),
                       rsum(p["total_cost_usd"] for p in parts), rsum(p["compression_savings_usd"] for p in parts))
                if sub != (row["requests"], row["tokens_saved"], d6(row["total_cost_usd"]),
                           d6(row["compression_savings_usd"])):
                    ok(False, "/stats-history %s %s %s adds up to its row: %s vs %s" % (
                        s, row["timestamp"], split, sub, (row["requests"], row["tokens_saved"],
                                                          row["total_cost_usd"], row["compression_savings_usd"])))
for s, r in csvs.items():
    is_(r.status, 200, "CSV %s: 200" % s)
    check_csv_text(r.text, "CSV " + s)
    rows = list(csv.DictReader(io.StringIO(r.text)))
    if s == "history":
        lr = rows[-1] if rows else {}
        got = {"requests": int(lr.get("requests", -1)), "tokens_saved": int(lr.get("total_tokens_saved", -1)),
               "input_tokens": int(lr.get("input_tokens", -1)),
               "compression_savings_usd": d6(lr.get("compression_savings_usd", "-1")),
               "total_cost_usd": d6(lr.get("total_cost_usd", "-1"))}
        is_(got, want_life, "CSV history: the last row = lifetime = the request log")
    else:
        got = {"requests": sum(int(x["requests"]) for x in rows),
               "tokens_saved": sum(int(x["tokens_saved"]) for x in rows),
               "input_tokens": sum(int(x["input_tokens"]) for x in rows),
               "compression_savings_usd": rsum(Decimal(x["compression_savings_usd"]) for x in rows),
               "total_cost_usd": rsum(Decimal(x["total_cost_usd"]) for x in rows)}
        is_(got, want_life, "CSV %s: the rows add up to the request log" % s)
        jrows = (hj.get("series") or {}).get(s) or []
        is_([(x["timestamp"], x["requests"], x["tokens_saved"], x["compression_savings_usd"], x["total_cost_usd"])
             for x in rows],
            [(x["timestamp"], str(x["requests"]), str(x["tokens_saved"]), shortest(x["compression_savings_usd"]),
              shortest(x["total_cost_usd"])) for x in jrows],
            "CSV %s rows = the JSON series rows, printed the same" % s)

with open(SAV) as f:
    sav_text = f.read()
sf = check_json_text(sav_text, "savings file") or {}
is_(life6(sf.get("lifetime")), want_life, "the savings file on disk: lifetime = the request log")

# the budget: its spend is every cost ever logged (budget.json is in the same workspace)
bud = st.get("budget") or {}
is_(d6(bud.get("spent_usd", -1)), want_life["total_cost_usd"],
    "/stats budget.spent_usd = every cost_usd ever logged (both runs and the side daemon)")
is_(d6(metric(met, "headroom_budget_spent_usd") or -1), want_life["total_cost_usd"],
    "/metrics headroom_budget_spent_usd = the same")
ok(bud.get("exceeded") is True and bud.get("rejected_requests") == 2, "budget exceeded, 2 requests refused")

# --------------------------------------------------------------- binary noise
with open(LOG) as f:
    for i, l in enumerate(f):
        check_json_text(l, "request log line %d" % (i + 1))
is_(NOISE, [], "no number with more than 6 decimals in /stats, /metrics, /stats-history, CSV, the log, the file")

elapsed = time.monotonic() - T0
note("traffic and surfaces: %.2f s, total %.2f s, %d requests, %d log lines"
     % (elapsed_traffic, elapsed, len(tr.sent), len(all_lines)))
done()
