#!/usr/bin/env python3
# GET /metrics end to end: real traffic through headroomd, then the exposition
# is checked by promtool and by a strict parser here (values, histograms,
# label bounds, scrapes under load, the Grafana dashboard's metric names).
import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F401

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
WEIRD_MODEL = 'we"ird\\mo\ndel'  # quote, backslash and newline: all three escapes
# savings_file: a sink that takes events, so the headroom_sink_* families
# have series (prometheus itself takes none).
CONF = "transform example_transform { }\nsink prometheus { path /metrics; }\nsink savings_file { }\n"
SRCDIR = os.environ.get("top_srcdir") or os.path.join(T_DIR, "..")
DASHBOARD = os.path.join(SRCDIR, "conf", "grafana-dashboard.json")

# promtool lint findings the spec accepts: the seed's metric names are a public
# interface kept as they are (ms units; by_* counters without _total). Any
# other finding, and every parse error, fails the test.
SEED_LINT = {
    ("headroom_latency_ms", "abbreviated units"),
    ("headroom_latency_ms_max", "abbreviated units"),
    ("headroom_overhead_ms", "abbreviated units"),
    ("headroom_overhead_ms_max", "abbreviated units"),
    ("headroom_ttfb_ms", "abbreviated units"),
    ("headroom_ttfb_ms_max", "abbreviated units"),
    ("headroom_transform_timing_ms", "abbreviated units"),
    ("headroom_transform_timing_ms_max", "abbreviated units"),
    ("headroom_requests_by_provider", "_total"),
    ("headroom_requests_by_model", "_total"),
    ("headroom_requests_by_stack", "_total"),
}

# ---------------------------------------------------------------------------
# a strict parser of the text format 0.0.4
# ---------------------------------------------------------------------------

NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


class ParseError(ValueError):
    pass


def _parse_value(s, lineno):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    try:
        return float(s)
    except ValueError:
        raise ParseError("line %d: bad value %r" % (lineno, s))


def _parse_labels(line, i, lineno):
    """Parse {k="v",...} starting at line[i] == '{'; returns (dict, index after '}')."""
    labels = {}
    i += 1
    while True:
        if line[i:i + 1] == "}":
            return labels, i + 1
        m = LABEL_RE.match(line, i)
        if not m:
            raise ParseError("line %d: bad label name at column %d" % (lineno, i))
        key = m.group(0)
        i = m.end()
        if line[i:i + 2] != '="':
            raise ParseError("line %d: expected =\" after label %s" % (lineno, key))
        i += 2
        val = []
        while True:
            if i >= len(line):
                raise ParseError("line %d: unterminated label value" % lineno)
            c = line[i]
            if c == "\\":
                nxt = line[i + 1:i + 2]
                if nxt == "n":
                    val.append("\n")
                elif nxt in ("\\", '"'):
                    val.append(nxt)
                else:
                    raise ParseError("line %d: bad escape \\%s" % (lineno, nxt))
                i += 2
            elif c == '"':
                i += 1
                break
            else:
                val.append(c)
                i += 1
        if key in labels:
            raise ParseError("line %d: label %s twice" % (lineno, key))
        labels[key] = "".join(val)
        if line[i:i + 1] == ",":
            i += 1
        elif line[i:i + 1] != "}":
            raise ParseError("line %d: expected , or } after a label" % lineno)


def parse_exposition(text):
    """-> {family: {"type", "help", "samples": [(sample_name, labels, value)]}}.
    Raises ParseError on anything promtool's parser would refuse, and on
    duplicate series or families split into several groups."""
    fams = {}
    order = []
    current = None
    seen_series = set()
    closed = set()
    if text and not text.endswith("\n"):
        raise ParseError("exposition does not end with a newline")
    for lineno, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not NAME_RE.fullmatch(name):
                    raise ParseError("line %d: bad metric name %r" % (lineno, name))
                if name in closed:
                    raise ParseError("line %d: family %s appears in two groups" % (lineno, name))
                if current is not None and current != name:
                    closed.add(current)
                f = fams.setdefault(name, {"type": "untyped", "help": None, "samples": [], "typed": False})
                if name not in order:
                    order.append(name)
                if f["samples"]:
                    raise ParseError("line %d: %s after samples of %s" % (lineno, parts[1], name))
                rest = parts[3] if len(parts) > 3 else ""
                if parts[1] == "HELP":
                    if f["help"] is not None:
                        raise ParseError("line %d: second HELP for %s" % (lineno, name))
                    f["help"] = rest.replace("\\n", "\n").replace("\\\\", "\\")
                else:
                    if f["typed"]:
                        raise ParseError("line %d: second TYPE for %s" % (lineno, name))
                    if rest not in ("counter", "gauge", "histogram", "summary", "untyped"):
                        raise ParseError("line %d: unknown type %r" % (lineno, rest))
                    f["type"], f["typed"] = rest, True
                current = name
            continue
        if not line.strip():
            raise ParseError("line %d: blank line" % lineno)
        m = NAME_RE.match(line)
        if not m:
            raise ParseError("line %d: no metric name" % lineno)
        sname = m.group(0)
        i = m.end()
        labels = {}
        if line[i:i + 1] == "{":
            labels, i = _parse_labels(line, i, lineno)
        if line[i:i + 1] != " ":
            raise ParseError("line %d: expected a space before the value" % lineno)
        fields = line[i + 1:].split(" ")
        if not 1 <= len(fields) <= 2:
            raise ParseError("line %d: trailing garbage" % lineno)
        value = _parse_value(fields[0], lineno)
        fam = sname
        if current is not None and fams[current]["type"] == "histogram" and sname in (
                current + "_bucket", current + "_sum", current + "_count"):
            fam = current
        if fam != current:
            if fam in closed or fam in fams:
                raise ParseError("line %d: sample of %s outside its group" % (lineno, fam))
            if current is not None:
                closed.add(current)
            fams[fam] = {"type": "untyped", "help": None, "samples": [], "typed": False}
            order.append(fam)
            current = fam
        if fams[fam]["type"] == "histogram" and sname == fam:
            raise ParseError("line %d: bare sample of histogram %s" % (lineno, fam))
        if sname.endswith("_bucket") and "le" not in labels:
            raise ParseError("line %d: bucket without le" % lineno)
        key = (sname, tuple(sorted(labels.items())))
        if key in seen_series:
            raise ParseError("line %d: duplicate series %s%s" % (lineno, sname, labels))
        seen_series.add(key)
        fams[fam]["samples"].append((sname, labels, value))
    return fams


def val(fams, sname, default=None, **labels):
    """Value of one series (sample name + exact label set), or default."""
    fam = sname
    for suf in ("_bucket", "_sum", "_count"):
        if sname.endswith(suf) and sname[:-len(suf)] in fams and fams[sname[:-len(suf)]]["type"] == "histogram":
            fam = sname[:-len(suf)]
    for n, l, v in fams.get(fam, {}).get("samples", []):
        if n == sname and l == labels:
            return v
    return default


def series_of(fams, fam):
    """{frozenset(labels without le): {"buckets": [(le, v)], "sum": x, "count": n}} for a histogram."""
    out = {}
    for n, l, v in fams[fam]["samples"]:
        base = dict(l)
        le = base.pop("le", None)
        key = tuple(sorted(base.items()))
        s = out.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if n.endswith("_bucket"):
            s["buckets"].append((_parse_value(le, 0), v))
        elif n.endswith("_sum"):
            s["sum"] = v
        else:
            s["count"] = v
    return out


def histogram_problems(fams):
    """Every histogram: le ascending ending in +Inf, counts cumulative, +Inf == _count."""
    probs = []
    for name, f in fams.items():
        if f["type"] != "histogram":
            continue
        for key, s in series_of(fams, name).items():
            les = [b for b, _ in s["buckets"]]
            counts = [c for _, c in s["buckets"]]
            where = "%s%s" % (name, dict(key))
            if not les or les[-1] != math.inf:
                probs.append(where + ": no +Inf bucket")
            if les != sorted(les) or len(set(les)) != len(les):
                probs.append(where + ": le not ascending")
            if any(b < a for a, b in zip(counts, counts[1:])):
                probs.append(where + ": buckets not cumulative")
            if s["count"] is None or s["sum"] is None:
                probs.append(where + ": _sum or _count missing")
            elif counts and counts[-1] != s["count"]:
                probs.append(where + ": +Inf %s != _count %s" % (counts[-1], s["count"]))
    return probs


def scrape(h):
    r = request("GET", h.url + "/metrics", quiet=True)
    return r, (r.body.decode("utf-8") if r.status == 200 else "")


# ---------------------------------------------------------------------------
# promtool
# ---------------------------------------------------------------------------

PROMTOOL = shutil.which("promtool")


def promtool_check(text, label):
    """Run promtool check metrics; parse errors fail, lint findings outside SEED_LINT fail."""
    if not PROMTOOL:
        skip("promtool not installed (Debian package prometheus; scripts/deps.sh installs it)", 2)
        return
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(), capture_output=True, timeout=60)
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    lines = [ln for ln in out.splitlines() if ln.strip()]
    parse_errors = [ln for ln in lines if "error" in ln.lower() and "lint" in ln.lower() or "parsing error" in ln]
    ok(p.returncode in (0, 3) and not parse_errors, "%s: promtool parses the exposition (rc %d)" % (label, p.returncode))
    if parse_errors or p.returncode not in (0, 3):
        diag(out[:3000])
    unexpected = []
    for ln in lines:
        name = ln.split(" ", 1)[0]
        if ln in parse_errors:
            continue
        if not any(name == n and frag in ln for n, frag in SEED_LINT):
            unexpected.append(ln)
    tolerated = len(lines) - len(unexpected) - len(parse_errors)
    note("%s: promtool lint: %d finding(s) on seed-mandated names tolerated" % (label, tolerated))
    ok(not unexpected, "%s: no promtool lint findings beyond the seed-mandated names" % label)
    for ln in unexpected:
        diag("  " + ln)


# ---------------------------------------------------------------------------
# traffic
# ---------------------------------------------------------------------------

ANSI_TOOL_OUTPUT = "".join("\x1b[1;31mERROR\x1b[0m \x1b[32mstep %d\x1b[0m finished with code %d\n" % (i, i % 7)
                           for i in range(150))


def tool_messages():
    """An OpenAI conversation whose tool output example_transform can shrink (ANSI codes)."""
    return [{"role": "user", "content": "run the build"},
            {"role": "assistant", "content": None,
             "tool_calls": [{"id": "call_1", "type": "function",
                             "function": {"name": "bash", "arguments": "{\"cmd\":\"make\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": ANSI_TOOL_OUTPUT},
            {"role": "user", "content": "what failed?"}]


class Traffic:
    """Sends requests and tallies what /metrics must then say."""

    def __init__(self, h):
        self.h = h
        self.n = 0
        self.by_provider = {}
        self.by_model = {}
        self.by_stack = {}
        self.by_code = {}
        self.tokens_before = 0
        self.tokens_saved = 0
        self.ok_with_usage = 0
        self.missing_headers = 0
        self.lock = threading.Lock()

    def send(self, provider, stream_=False, model=None, stack=None, usage=None, status=None, messages=None):
        headers = {}
        if stack is not None:
            headers["X-Headroom-Stack"] = stack
        if usage is not None:
            headers["x-mock-usage"] = json.dumps(usage)
        if status is not None:
            headers["x-mock-status"] = str(status)
        if provider == "openai":
            body = openai_body(stream=stream_, include_usage=stream_, model=model or "gpt-4o-mini", messages=messages)
            path = "/v1/chat/completions"
        else:
            body = anthropic_body(stream=stream_, model=model or "claude-3-5-haiku-20241022", messages=messages)
            path = "/v1/messages"
        if stream_:
            r = stream(self.h.url + path, body, headers=headers)
        else:
            r = post_json(self.h.url + path, body, headers=headers)
        before = r.header("x-headroom-tokens-before")
        saved = r.header("x-headroom-tokens-saved")
        with self.lock:
            self.n += 1
            self.by_provider[provider] = self.by_provider.get(provider, 0) + 1
            m = body["model"]
            self.by_model[m] = self.by_model.get(m, 0) + 1
            if stack is not None and re.fullmatch(r"[a-z][a-z0-9_]{0,63}", stack):
                self.by_stack[stack] = self.by_stack.get(stack, 0) + 1
            self.by_code[r.status] = self.by_code.get(r.status, 0) + 1
            if before is None or saved is None:
                self.missing_headers += 1
            elif 200 <= r.status < 300:  # only credited requests count in token totals
                self.tokens_before += int(before)
                self.tokens_saved += int(saved)
            if r.status == 200:
                self.ok_with_usage += 1
        return r


# the mock: output tokens = ceil(len("mock reply to N messages") / 4)
def mock_output_tokens(n_messages):
    return max(1, math.ceil(len("mock reply to %d messages" % n_messages) / 4))


# ---------------------------------------------------------------------------
# 1. scripted traffic: exact values, escaping, histograms, promtool
# ---------------------------------------------------------------------------

def scripted(m):
    with Headroomd(mock=m, extra_conf=CONF) as h:
        r, text = scrape(h)
        is_(r.status, 200, "GET /metrics before any traffic: 200")
        is_(r.header("Content-Type"), CONTENT_TYPE, "Content-Type is text format 0.0.4")
        try:
            fams = parse_exposition(text)
            ok(True, "idle exposition parses")
        except ParseError as e:
            ok(False, "idle exposition parses: %s" % e)
            fams = {}
        is_(val(fams, "headroom_requests_total"), 0.0, "idle: headroom_requests_total 0")
        is_(val(fams, "headroom_up"), 1.0, "headroom_up 1")
        promtool_check(text, "idle")
        r = request("POST", h.url + "/metrics", body=b"")
        is_((r.status, r.header("allow")), (405, "GET"), "POST /metrics: 405 with Allow: GET")

        t = Traffic(h)
        out_tokens = 0
        plan_ = [
            # provider, stream, model, stack, usage
            ("openai", False, None, "wrap_codex", None),
            ("openai", False, None, "wrap_codex", None),
            ("openai", True, WEIRD_MODEL, None, None),
            ("openai", False, WEIRD_MODEL, "Bad Stack!", None),
            ("anthropic", False, None, "adapter_ts_anthropic",
             {"cache_read_input_tokens": 100, "cache_creation": {"ephemeral_5m_input_tokens": 40,
                                                                 "ephemeral_1h_input_tokens": 0}}),
            ("anthropic", True, None, None,
             {"cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 25}}),
            ("anthropic", False, WEIRD_MODEL, None,
             {"cache_creation": {"ephemeral_5m_input_tokens": 3, "ephemeral_1h_input_tokens": 7}}),
            ("anthropic", True, "claude-sonnet-4-5", None, None),
        ]
        for provider, st, model, stack, usage in plan_:
            r = t.send(provider, st, model, stack, usage)
            if r.status != 200:
                diag("%s %s -> %s %s" % (provider, "SSE" if st else "JSON", r.status, r.body[:300]))
            out_tokens += mock_output_tokens(1)
        r = t.send("openai", messages=tool_messages())
        out_tokens += mock_output_tokens(4)
        r = t.send("openai", status=500)  # an upstream error answer: counted by status, not failed
        is_(t.by_code, {200: 9, 500: 1}, "traffic answered as scripted")
        is_(t.missing_headers, 0, "every answer carried x-headroom-tokens-* headers")
        cmp_ok(t.tokens_saved, ">", 0, "example_transform saved tokens on the ANSI tool output")

        r, text = scrape(h)
        is_(r.status, 200, "GET /metrics after traffic")
        open_fail = None
        try:
            fams = parse_exposition(text)
        except ParseError as e:
            open_fail, fams = str(e), {}
        ok(open_fail is None, "exposition parses strictly (no duplicate series, grouped families) %s" % (open_fail or ""))
        promtool_check(text, "after traffic")
        stats = h.stats()

        # counters, exactly
        is_(val(fams, "headroom_requests_total"), float(t.n), "requests_total == requests sent (%d)" % t.n)
        for p, n in sorted(t.by_provider.items()):
            is_(val(fams, "headroom_requests_by_provider", provider=p), float(n), "by_provider{%s} == %d" % (p, n))
        got_models = {l["model"]: v for n, l, v in fams["headroom_requests_by_model"]["samples"]}
        is_(got_models, {k: float(v) for k, v in t.by_model.items()},
            "by_model exact, incl. the model with quote, backslash and newline")
        ok('model="we\\"ird\\\\mo\\ndel"' in text, "weird model name escaped as the format says")
        got_stacks = {l["stack"]: v for n, l, v in fams["headroom_requests_by_stack"]["samples"]}
        is_(got_stacks, {k: float(v) for k, v in t.by_stack.items()}, "by_stack exact; invalid stack name ignored")
        is_(val(fams, "headroom_responses_total", code="200"), 9.0, "responses_total{code=200}")
        is_(val(fams, "headroom_responses_total", code="500"), 1.0, "responses_total{code=500}")
        is_(val(fams, "headroom_requests_failed_total"), 0.0, "an upstream 500 is not a failure")
        is_(val(fams, "headroom_tokens_input_total"), float(t.tokens_before),
            "tokens_input_total == sum of x-headroom-tokens-before (%d)" % t.tokens_before)
        is_(val(fams, "headroom_tokens_saved_total"), float(t.tokens_saved),
            "tokens_saved_total == sum of x-headroom-tokens-saved (%d)" % t.tokens_saved)
        is_(val(fams, "headroom_tokens_sent_total"), float(t.tokens_before - t.tokens_saved), "tokens_sent_total == input - saved")
        is_(val(fams, "headroom_tokens_output_total"), float(out_tokens), "tokens_output_total == mock output tokens (%d)" % out_tokens)
        is_(val(fams, "headroom_tokens_input_total"), float(stats["tokens"]["input"]), "/metrics agrees with /stats (input)")
        is_(val(fams, "headroom_tokens_output_total"), float(stats["tokens"]["output"]), "/metrics agrees with /stats (output)")

        # provider cache and TTL buckets (Anthropic usage from JSON and SSE)
        a = dict(provider="anthropic")
        is_(val(fams, "headroom_provider_cache_requests_total", **a), 4.0, "anthropic answers with usage: 4")
        is_(val(fams, "headroom_provider_cache_hit_requests_total", **a), 1.0, "anthropic cache-hit requests: 1")
        is_(val(fams, "headroom_cache_read_tokens_total", **a), 100.0, "anthropic cache read tokens: 100")
        is_(val(fams, "headroom_cache_write_tokens_total", **a), 75.0, "anthropic cache write tokens: 40+25+3+7")
        is_(val(fams, "headroom_cache_write_ttl_tokens_total", provider="anthropic", ttl="5m"), 43.0, "5m TTL tokens: 43")
        is_(val(fams, "headroom_cache_write_ttl_tokens_total", provider="anthropic", ttl="1h"), 32.0, "1h TTL tokens (JSON+SSE): 32")
        is_(val(fams, "headroom_cache_write_ttl_requests_total", provider="anthropic", ttl="5m"), 2.0, "5m TTL requests: 2")
        is_(val(fams, "headroom_cache_write_ttl_requests_total", provider="anthropic", ttl="1h"), 2.0, "1h TTL requests: 2")
        is_(val(fams, "headroom_cache_write_ttl_tokens_total", provider="openai", ttl="1h"), 0.0, "openai TTL series present, 0")

        # histograms
        is_(histogram_problems(fams), [], "every histogram: le ascending to +Inf, cumulative, +Inf == _count")
        for hname in ("headroom_latency_ms", "headroom_overhead_ms", "headroom_ttfb_ms"):
            cnt, sm, mx = val(fams, hname + "_count"), val(fams, hname + "_sum"), val(fams, hname + "_max")
            is_(cnt, float(t.n), "%s_count == requests" % hname)
            ok(sm is not None and mx is not None and 0 < sm <= mx * cnt + 1e-9 and mx < 60000,
               "%s_sum plausible (0 < sum=%s <= max*count, max=%s)" % (hname, sm, mx))
            ok(val(fams, hname + "_bucket", le="0.01") is not None and val(fams, hname + "_bucket", le="+Inf") == cnt,
               "%s buckets use le=\"0.01\" .. le=\"+Inf\"" % hname)
        lat = stats["latency"]
        ok(abs(val(fams, "headroom_latency_ms_sum") / t.n - lat["average_ms"]) < 0.01,
           "latency _sum/_count matches /stats average_ms")
        for stage in ("example_transform", "pipeline_total"):
            is_(val(fams, "headroom_transform_timing_ms_count", transform=stage), float(t.n),
                "transform_timing_ms{transform=%s} count == requests" % stage)
            ok(val(fams, "headroom_transform_timing_ms_max", transform=stage) is not None,
               "transform_timing_ms_max{transform=%s} present" % stage)
        is_(val(fams, "headroom_transform_failures_total", transform="example_transform"), 0.0, "no stage failures")
        is_(val(fams, "headroom_sink_events_dropped_total", sink="savings_file"), 0.0, "sink drop counter present")
        is_(val(fams, "headroom_sink_events_total", sink="prometheus"), None,
            "prometheus reads the registry only: it takes no events (no queue, no thread)")
        ok(all(f["help"] for f in fams.values()), "every family has HELP text")
        return text, fams


# ---------------------------------------------------------------------------
# 2. the Grafana dashboard only uses metrics a real scrape has
# ---------------------------------------------------------------------------

def dashboard(fams):
    try:
        with open(DASHBOARD) as f:
            d = json.load(f)
    except (OSError, ValueError) as e:
        ok(False, "conf/grafana-dashboard.json loads: %s" % e)
        return
    ok(True, "conf/grafana-dashboard.json is JSON")
    inputs = [i.get("name") for i in d.get("__inputs", [])]
    ok("DS_PROMETHEUS" in inputs, "datasource is the ${DS_PROMETHEUS} import input")
    panels = []

    def walk(ps):
        for p in ps:
            panels.append(p)
            walk(p.get("panels", []))
    walk(d.get("panels", []))
    ids = [p.get("id") for p in panels]
    is_(len(ids), len(set(ids)), "panel ids are unique")
    exprs = [(p.get("title"), t.get("expr")) for p in panels for t in p.get("targets", []) if t.get("expr")]
    cmp_ok(len(exprs), ">=", 12, "dashboard has queries (%d)" % len(exprs))
    bad_ds = [p.get("title") for p in panels if p.get("type") != "row" and p.get("targets")
              and (p.get("datasource") or {}).get("uid") != "${DS_PROMETHEUS}"]
    is_(bad_ds, [], "every query panel uses the ${DS_PROMETHEUS} datasource")
    have = set()
    for name, f in fams.items():
        if not f["samples"]:
            continue
        have.add(name)
        if f["type"] == "histogram":
            have.update({name + "_bucket", name + "_sum", name + "_count"})
    used = set()
    missing = []
    for title, e in exprs:
        for name in re.findall(r"\bheadroom_[a-zA-Z0-9_:]*", e):
            used.add(name)
            if name not in have:
                missing.append("%s: %s" % (title, name))
    cmp_ok(len(used), ">=", 15, "dashboard uses %d distinct metric names" % len(used))
    is_(missing, [], "every metric name in the dashboard's queries is in a real scrape")
    titles = " | ".join(p.get("title", "") for p in panels).lower()
    for want in ("tokens saved", "savings", "request rate", "latency", "overhead", "ttfb", "stage", "cache hit", "ttl"):
        ok(want in titles, "dashboard has a panel about %s" % want)
    ok(any("histogram_quantile(0.99" in e for _, e in exprs), "p99 via histogram_quantile")


# ---------------------------------------------------------------------------
# 3. scrapes under load: always parse, counters never go back, totals exact
# ---------------------------------------------------------------------------

def concurrent(m):
    with Headroomd(mock=m, extra_conf=CONF) as h:
        t = Traffic(h)
        stop = threading.Event()
        scrapes, problems, slowest = [], [], [0.0]

        def scraper():
            prev = None
            while not stop.is_set():
                t0 = time.monotonic()
                r, text = scrape(h)
                slowest[0] = max(slowest[0], time.monotonic() - t0)
                if r.status != 200:
                    problems.append("scrape status %s" % r.status)
                    continue
                try:
                    fams = parse_exposition(text)
                except ParseError as e:
                    problems.append("parse: %s" % e)
                    continue
                hp = histogram_problems(fams)
                if hp:
                    problems.append("histogram: %s" % hp[:3])
                cur = {}
                for name, f in fams.items():
                    if f["type"] in ("counter", "histogram"):
                        for n, l, v in f["samples"]:
                            cur[(n, tuple(sorted(l.items())))] = v
                if prev is not None:
                    for k, v in prev.items():
                        if cur.get(k, -1) < v:
                            problems.append("%s went from %s to %s" % (k, v, cur.get(k)))
                prev = cur
                scrapes.append(cur)

        def worker(k):
            for i in range(50):
                provider = "openai" if (i + k) % 2 == 0 else "anthropic"
                r = t.send(provider, stream_=(i % 3 == 0), stack="wrap_thread%d" % k)
                if r.status != 200:
                    problems.append("request %d/%d: %s %s" % (k, i, r.status, r.error))

        st = threading.Thread(target=scraper)
        st.start()
        workers = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        stop.set()
        st.join()
        is_(problems[:5], [], "200 requests from 4 threads while scraping: no parse error, no counter going back")
        cmp_ok(len(scrapes), ">=", 5, "scraped %d times during the load" % len(scrapes))
        note("slowest scrape under load: %.1f ms" % (slowest[0] * 1000))
        mid = [s.get(("headroom_requests_total", ())) for s in scrapes]
        ok(any(0 < (x or 0) < 200 for x in mid), "some scrapes saw the load half done (consistent mid-flight snapshots)")
        r, text = scrape(h)
        fams = parse_exposition(text)
        is_(val(fams, "headroom_requests_total"), 200.0, "final requests_total exact (200)")
        is_(val(fams, "headroom_requests_by_provider", provider="openai"), float(t.by_provider["openai"]), "final by_provider{openai}")
        is_(val(fams, "headroom_requests_by_provider", provider="anthropic"), float(t.by_provider["anthropic"]),
            "final by_provider{anthropic}")
        is_({l["stack"]: v for _, l, v in fams["headroom_requests_by_stack"]["samples"]},
            {"wrap_thread%d" % k: 50.0 for k in range(4)}, "final by_stack exact")
        is_(val(fams, "headroom_latency_ms_count"), 200.0, "final latency _count exact")
        is_(val(fams, "headroom_transform_timing_ms_count", transform="pipeline_total"), 200.0, "final pipeline_total count exact")
        is_(val(fams, "headroom_tokens_input_total"), float(t.tokens_before), "final tokens_input exact")


# ---------------------------------------------------------------------------
# 4. label sets are bounded: 64 models, 32 stacks, then "other"
# ---------------------------------------------------------------------------

def bounds(m):
    with Headroomd(mock=m, extra_conf=CONF) as h:
        t = Traffic(h)
        # A client naming its model "other" is counted in the overflow slot:
        # one {model="other"} series, and one "other" entry in /stats.
        t.send("openai", model="other", stack="other")
        for i in range(65):
            t.send("openai", model="model-%02d" % i)
        for i in range(33):
            t.send("anthropic", stack="stack_%02d" % i)
        for bad in ("Bad", "a-b", "9lives", "x" * 65, ""):
            t.send("openai", stack=bad)
        r, text = scrape(h)
        try:
            fams = parse_exposition(text)
            ok(True, "exposition with full label tables parses (no duplicate other series)")
        except ParseError as e:
            ok(False, "exposition with full label tables parses: %s" % e)
            return
        models = {l["model"]: v for _, l, v in fams["headroom_requests_by_model"]["samples"]}
        is_(len(models), 65, "by_model: 65 series (64 named + other)")
        # slots: model-00..model-63 -> 64; model-64 and every later model
        # overflow (the anthropic default model too), with the client's "other".
        is_(models.get("other"), 1.0 + 1 + 38, "by_model{other} = the client's 'other' + overflow")
        is_(sum(models.values()), float(t.n), "by_model sums to requests_total")
        ok("model-64" not in models and "model-63" in models, "the 65th distinct name goes to other")
        stacks = {l["stack"]: v for _, l, v in fams["headroom_requests_by_stack"]["samples"]}
        is_(len(stacks), 33, "by_stack: 33 series (32 named + other)")
        is_(stacks.get("other"), 1.0 + 1, "by_stack{other} = the client's 'other' + 1 overflow")
        is_(sum(stacks.values()), 1.0 + 33, "invalid stack names are not counted")
        st = (h.stats() or {}).get("requests") or {}
        is_(st.get("by_model"), {k: int(v) for k, v in models.items()}, "/stats by_model = /metrics by_model")
        is_(sum((st.get("by_model") or {}).values()), t.n, "/stats by_model sums to requests total")
        is_(st.get("by_stack"), {k: int(v) for k, v in stacks.items()}, "/stats by_stack = /metrics by_stack")
        promtool_check(text, "full label tables")


# ---------------------------------------------------------------------------
# 5. the `path` key: another path works, a bad one stops startup and says why
# ---------------------------------------------------------------------------

def path_key(m):
    with Headroomd(mock=m, extra_conf="sink prometheus { path /prom/metrics; }\n") as h:
        r = h.get("/prom/metrics")
        is_((r.status, r.header("Content-Type")), (200, CONTENT_TYPE), "path /prom/metrics serves the exposition")
        is_(h.get("/metrics").status, 404, "and /metrics is then not served")
    h = Headroomd(mock=m, extra_conf='sink prometheus { path "met rics"; }\n', wait_ready=False, expect_exit=None)
    with h:
        try:
            rc = h.proc.wait(20)
        except subprocess.TimeoutExpired:
            rc = None
        isnt(rc, 0, "a path with a space stops startup (exit %s)" % rc)
        like(h.stderr_text(), r"prometheus:path 'met rics' is not a URL path: use an absolute path",
             "the error names the key, the value and the fix")


# ---------------------------------------------------------------------------
# 6. every dashboard query returns data from a real Prometheus scraping headroomd
# ---------------------------------------------------------------------------

PROMETHEUS = shutil.which("prometheus")


def dashboard_exprs():
    with open(DASHBOARD) as f:
        d = json.load(f)
    out = []

    def walk(ps):
        for p in ps:
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((p.get("title"), t["expr"]))
            walk(p.get("panels", []))
    walk(d.get("panels", []))
    return out


def live_prometheus(m):
    if not PROMETHEUS:
        skip("prometheus server not installed (Debian package prometheus)", 3)
        return
    with Headroomd(mock=m, extra_conf=CONF) as h:
        d = os.path.join(h.dir, "prom")
        os.makedirs(d)
        port = free_port()
        with open(os.path.join(d, "prometheus.yml"), "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: headroomd\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % h.port)
        log = open(os.path.join(d, "log"), "wb")
        p = subprocess.Popen([PROMETHEUS, "--config.file=" + os.path.join(d, "prometheus.yml"),
                              "--storage.tsdb.path=" + os.path.join(d, "data"),
                              "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"],
                             stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        base = "http://127.0.0.1:%d" % port
        try:
            # the scrape manager applies new targets every 5 s: wait for a first scrape
            q_up = base + "/api/v1/query?query=" + urllib.parse.quote('up{job="headroomd"} == 1')
            up = wait_until(lambda: ((request("GET", q_up, timeout=2, quiet=True).json() or {})
                                     .get("data", {}).get("result")), 40, 0.25)
            ok(up, "prometheus %s scrapes headroomd" % base)
            if not up:
                with open(os.path.join(d, "log"), "rb") as f:
                    diag(f.read()[-2000:].decode("utf-8", "replace"))
                return
            t = Traffic(h)
            deadline = time.monotonic() + 6  # several scrapes while traffic flows, so rate() has points
            i = 0
            while time.monotonic() < deadline:
                t.send("openai", stream_=i % 2 == 0, stack="wrap_codex", messages=tool_messages() if i % 3 == 0 else None)
                t.send("anthropic", stream_=i % 2 == 1, stack="adapter_ts_anthropic",
                       usage={"cache_read_input_tokens": 50,
                              "cache_creation": {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 5}})
                i += 1
                time.sleep(0.1)
            empty = []
            errors = []
            for title, expr in dashboard_exprs():
                q = (expr.replace("$__rate_interval", "20s").replace("$__range", "1h")
                     .replace('"$job"', '".*"').replace('"$instance"', '".*"'))
                r = request("GET", base + "/api/v1/query?" + urllib.parse.urlencode({"query": q}), quiet=True)
                js = r.json() or {}
                if js.get("status") != "success":
                    errors.append("%s: %s -> %s" % (title, q, js.get("error") or r.status))
                    continue
                res = js["data"]["result"]
                vals = [float(x["value"][1]) for x in res] if js["data"]["resultType"] == "vector" else []
                if not res or all(math.isnan(v) for v in vals):
                    empty.append("%s: %s" % (title, q))
            is_(errors, [], "every dashboard query is valid PromQL for Prometheus")
            is_(empty, [], "every dashboard query returns data after headroomd served traffic")
        finally:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
            log.close()


# ---------------------------------------------------------------------------
# 7. families a plugin adds through register_metrics (savings_file) render too
# ---------------------------------------------------------------------------

def plugin_families(m):
    pdir = os.environ.get("HEADROOM_TEST_PLUGIN_DIR") or os.path.join(
        os.path.dirname(os.path.abspath(os.environ.get("HEADROOMD") or os.path.join(T_DIR, "..", "src", "headroomd"))),
        "..", "plugins", ".libs")
    if not os.path.exists(os.path.join(pdir, "savings_file.so")):
        skip("savings_file plugin not built", 3)
        return
    with Headroomd(mock=m, extra_conf=CONF) as h:
        t = Traffic(h)
        t.send("openai", messages=tool_messages())
        r, text = scrape(h)
        try:
            fams = parse_exposition(text)
            ok(True, "exposition with savings_file families parses")
        except ParseError as e:
            ok(False, "exposition with savings_file families parses: %s" % e)
            return
        for name in ("headroom_persistent_savings_tokens_saved_total", "headroom_persistent_savings_usd_total"):
            ok(name in fams and fams[name]["type"] == "counter", "%s rendered from register_metrics" % name)


with Mock() as mock:
    _, scripted_fams = scripted(mock)
    dashboard(scripted_fams)
    concurrent(mock)
    bounds(mock)
    path_key(mock)
    live_prometheus(mock)
    plugin_families(mock)
done()
