#!/usr/bin/env python3
# Cost and budget end to end: x-headroom-cost-usd / -savings-usd against
# hand-computed prices, the closing SSE comment of streams, /stats.cost,
# the budget's 429 in both providers' shapes with Retry-After, persistence
# across restarts, period rollover (HEADROOM_TEST_NOW), metrics, bad files.
import json
import os
import time
import calendar
import re
import shlex
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F401

SRCDIR = os.environ.get("top_srcdir") or os.path.join(T_DIR, "..")
PRICES_PATH = os.path.abspath(os.path.join(SRCDIR, "conf", "prices.json"))
PRICES = json.load(open(PRICES_PATH))["models"]
BIN = os.environ.get("HEADROOMD") or os.path.join(T_DIR, "..", "src", "headroomd")
WRAPPER = shlex.split(os.environ.get("HEADROOMD_WRAPPER", ""))

WED = 1764160496            # 2025-11-26 12:34:56 UTC, a Wednesday
TO_MIDNIGHT = 11 * 3600 + 25 * 60 + 4
THU = 1764201600 + 5        # 2025-11-27 00:00:05 UTC

ANSI = "".join("\x1b[1;31mERROR\x1b[0m \x1b[32mstep %d\x1b[0m finished with code %d\n" % (i, i % 7) for i in range(150))


def tool_messages():
    return [{"role": "user", "content": "run the build"},
            {"role": "assistant", "content": None,
             "tool_calls": [{"id": "call_1", "type": "function",
                             "function": {"name": "bash", "arguments": "{\"cmd\":\"make\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": ANSI},
            {"role": "user", "content": "what failed?"}]


def usd(x):
    return "%.6f" % x


def cost(model, inp=0, out=0, read=0, w5=0, w1=0):
    p = PRICES[model]
    return (inp * p["input"] + read * p["cache_read"] + w5 * p["cache_write_5m"] + w1 * p["cache_write_1h"]
            + out * p["output"]) / 1e6


def usage_hdr(obj):
    return {"x-mock-usage": json.dumps(obj)}


def metric(text, name):
    m = re.search(r"(?m)^%s (\S+)$" % re.escape(name), text)
    return float(m.group(1)) if m else None


COMMENT_RE = re.compile(rb": headroom tokens_before=(\d+) tokens_after=(\d+) tokens_saved=(\d+) "
                        rb"cost_usd=(\d+\.\d{6}) savings_usd=(\d+\.\d{6})\n\n$")

conf = "prices %s\ntransform example_transform { }\nsink prometheus { path /metrics; }\n" % PRICES_PATH

# --------------------------------------------------------------- cost figures
with Mock() as m, Headroomd(mock=m, extra_conf=conf) as h:
    # OpenAI: 1000 prompt tokens of which 400 cached, 200 out, dated model name.
    r = h.post("/v1/chat/completions", openai_body(model="gpt-4o-2024-08-06", messages=tool_messages()),
               headers=usage_hdr({"prompt_tokens": 1000, "completion_tokens": 200,
                                  "prompt_tokens_details": {"cached_tokens": 400}}))
    is_(r.status, 200, "openai: 200")
    saved = int(r.header("x-headroom-tokens-saved", "0"))
    cmp_ok(saved, ">", 0, "openai: compression saved tokens")
    c1 = cost("gpt-4o", inp=600, read=400, out=200)
    is_(r.header("x-headroom-cost-usd"), usd(c1), "openai: x-headroom-cost-usd = 600 in + 400 cached + 200 out")
    s1 = saved * PRICES["gpt-4o"]["input"] / 1e6
    is_(r.header("x-headroom-savings-usd"), usd(s1), "openai: x-headroom-savings-usd = saved x input price")
    ok(r.header("x-headroom-tokens-before") and r.header("x-headroom-tokens-after"), "token headers still there")

    # Anthropic: uncached 1000, reads 5000, writes 2000 (5m) + 1000 (1h), 300 out.
    r = h.post("/v1/messages", anthropic_body(model="claude-sonnet-4-5-20250929"),
               headers=usage_hdr({"input_tokens": 1000, "cache_read_input_tokens": 5000, "output_tokens": 300,
                                  "cache_creation": {"ephemeral_5m_input_tokens": 2000,
                                                     "ephemeral_1h_input_tokens": 1000}}))
    is_(r.status, 200, "anthropic: 200")
    c2 = cost("claude-sonnet-4-5", inp=1000, read=5000, w5=2000, w1=1000, out=300)
    is_(r.header("x-headroom-cost-usd"), usd(c2), "anthropic: cost with 5m and 1h cache writes at their prices")
    is_(r.header("x-headroom-savings-usd"), usd(0), "anthropic: nothing compressed, no savings")

    # Unknown model: unpriced, 0, counted.
    r = h.post("/v1/chat/completions", openai_body(model="mystery-model-9"))
    is_(r.header("x-headroom-cost-usd"), usd(0), "unknown model: cost 0")

    # Streams: the SDK-visible events are the upstream's, then one comment.
    ob = openai_body(model="gpt-4o-mini", stream=True, include_usage=True)
    uh = usage_hdr({"prompt_tokens": 2000, "completion_tokens": 100})
    direct = stream(m.url + "/v1/chat/completions", ob, headers=uh)
    via = stream(h.url + "/v1/chat/completions", ob, headers=uh)
    is_(via.status, 200, "openai stream: 200")
    mt = COMMENT_RE.search(via.body)
    ok(mt is not None, "openai stream ends with the headroom comment line")
    if mt:
        is_(via.body[:mt.start()], direct.body, "openai stream: bytes before the comment are the upstream's")
        c3 = cost("gpt-4o-mini", inp=2000, out=100)
        is_(mt.group(4).decode(), usd(c3), "openai stream: cost_usd in the comment")
        is_(int(mt.group(3)), int(mt.group(1)) - int(mt.group(2)), "comment: saved = before - after")
    is_(sse_data_json(via.body), sse_data_json(direct.body), "openai stream: parsed events unchanged")
    ok(via.header("x-headroom-cost-usd") is None, "stream: no cost header (not known yet)")

    ab = anthropic_body(model="claude-3-5-haiku-20241022", stream=True)
    uh = usage_hdr({"input_tokens": 1500, "output_tokens": 80, "cache_read_input_tokens": 100})
    direct = stream(m.url + "/v1/messages", ab, headers=uh)
    via = stream(h.url + "/v1/messages", ab, headers=uh)
    mt = COMMENT_RE.search(via.body)
    ok(mt is not None, "anthropic stream ends with the headroom comment line")
    if mt:
        is_(via.body[:mt.start()], direct.body, "anthropic stream: bytes before the comment are the upstream's")
        c4 = cost("claude-3-5-haiku", inp=1500, read=100, out=80)
        is_(mt.group(4).decode(), usd(c4), "anthropic stream: cost_usd (final output count from message_delta)")
    else:
        c4 = 0

    st = h.stats()
    cst = st.get("cost", {})
    total = c1 + c2 + c3 + c4
    ok(abs(cst.get("total_cost_usd", -1) - total) < 2e-6, "/stats.cost.total_cost_usd = sum (%s vs %.6f)"
       % (cst.get("total_cost_usd"), total))
    ok(abs(cst.get("total_savings_usd", -1) - s1) < 2e-6, "/stats.cost.total_savings_usd")
    out_cost = (200 * PRICES["gpt-4o"]["output"] + 300 * PRICES["claude-sonnet-4-5"]["output"]
                + 100 * PRICES["gpt-4o-mini"]["output"] + 80 * PRICES["claude-3-5-haiku"]["output"]) / 1e6
    ok(abs(cst.get("output_cost_usd", -1) - out_cost) < 2e-6, "/stats.cost.output_cost_usd")
    ok(abs(cst.get("input_cost_usd", -1) - (total - out_cost)) < 2e-6, "/stats.cost.input_cost_usd")
    cache_sav = (400 * (PRICES["gpt-4o"]["input"] - PRICES["gpt-4o"]["cache_read"])
                 + 5000 * (PRICES["claude-sonnet-4-5"]["input"] - PRICES["claude-sonnet-4-5"]["cache_read"])
                 + 100 * (PRICES["claude-3-5-haiku"]["input"] - PRICES["claude-3-5-haiku"]["cache_read"])) / 1e6
    ok(abs(cst.get("cache_savings_usd", -1) - cache_sav) < 2e-6, "/stats.cost.cache_savings_usd")
    is_(cst.get("unpriced_requests"), 1, "/stats.cost.unpriced_requests counts the unknown model")
    is_(st.get("budget"), None, "/stats.budget is null without a budget")
    mtext = h.get("/metrics").text
    ok(abs((metric(mtext, "headroom_cost_usd_total") or -1) - total) < 2e-6, "headroom_cost_usd_total")
    ok(abs((metric(mtext, "headroom_savings_usd_total") or -1) - s1) < 2e-6, "headroom_savings_usd_total")
    is_(metric(mtext, "headroom_budget_spent_usd"), 0.0, "headroom_budget_spent_usd 0 without a budget")
    is_(metric(mtext, "headroom_budget_limit_usd"), None, "no headroom_budget_limit_usd without a budget")

# A stream the client left after its 200: the provider billed the request,
# and its usage never came. It is billed as sent (as a stream without
# include_usage is), not left at $0 beside the saving it is credited.
with Mock() as m, Headroomd(mock=m, extra_conf=conf) as h:
    ob = openai_body(model="gpt-4o-mini", stream=True, include_usage=True, messages=tool_messages())
    stream_then_close(h.url + "/v1/chat/completions", ob, nbytes=200,
                      headers={"x-mock-chunk-delay-ms": "300", "x-mock-chunks": "10"})
    ok(wait_until(lambda: h.stats()["requests"]["total"] == 1, timeout=15), "the broken stream is counted")
    st = h.stats()
    sent, saved = st["tokens"]["sent"], st["tokens"]["saved"]
    cmp_ok(saved, ">", 0, "the broken stream's saving is credited (%d tokens)" % saved)
    ok(abs(st["cost"]["total_cost_usd"] - float(usd(cost("gpt-4o-mini", inp=sent)))) < 2e-6,
       "and it is billed as sent: %d tokens, $%s (total_cost_usd %s)" % (sent, usd(cost("gpt-4o-mini", inp=sent)),
                                                                        st["cost"]["total_cost_usd"]))

# --------------------------------------------------------------------- budget
ws = tempfile.mkdtemp(prefix="hr-budget-ws-")
BUDGET_CONF = "prices %s\nbudget 0.01\nbudget_period daily\nsink prometheus { path /metrics; }\n" % PRICES_PATH
env = {"HEADROOM_WORKSPACE_DIR": ws, "HEADROOM_TEST_NOW": str(WED)}
SPEND = usage_hdr({"prompt_tokens": 3200, "completion_tokens": 0})   # 3200 x $2.50/M = $0.008 on gpt-4o
with Mock() as m:
    with Headroomd(mock=m, extra_conf=BUDGET_CONF, env=env) as h:
        b = h.stats().get("budget") or {}
        is_({k: b.get(k) for k in ("limit_usd", "period", "spent_usd", "remaining_usd", "exceeded", "resets_at",
                                   "rejected_requests")},
            {"limit_usd": 0.01, "period": "daily", "spent_usd": 0.0, "remaining_usd": 0.01, "exceeded": False,
             "resets_at": "2025-11-27T00:00:00Z", "rejected_requests": 0}, "/stats.budget before spending")
        r = h.post("/v1/chat/completions", openai_body(model="gpt-4o"), headers=SPEND)
        is_((r.status, r.header("x-headroom-cost-usd")), (200, "0.008000"), "first request: $0.008 spent")
        # the answer is written before its request is accounted: wait for the log line
        wait_until(lambda: re.search(r"WARNING:headroom\.budget:budget 80% used", h.stderr_text()))
        like(h.stderr_text(), r"WARNING:headroom\.budget:budget 80% used", "WARN at 80 %")
        r = h.post("/v1/chat/completions", openai_body(model="gpt-4o", content="again"), headers=SPEND)
        is_(r.status, 200, "second request still allowed (0.008 < 0.01 before it)")
        like(h.stderr_text(), r"WARNING:headroom\.budget:budget exceeded", "WARN at 100 %")
        is_(len(re.findall(r"budget 80% used", h.stderr_text())), 1, "80 % WARN only once")
        n_up = len(m.requests())
        r = h.post("/v1/chat/completions", openai_body(model="gpt-4o"))
        is_(r.status, 429, "openai: 429 once the budget is spent")
        e = (r.json() or {}).get("error", {})
        is_((e.get("type"), e.get("code"), e.get("param")), ("budget_exceeded", "budget_exceeded", None),
            "openai error shape: type, code, param")
        ok(isinstance(e.get("message"), str) and "budget" in e["message"], "openai error has a message")
        is_(r.header("Retry-After"), str(TO_MIDNIGHT), "Retry-After = seconds to UTC midnight")
        r = h.post("/v1/messages", anthropic_body())
        is_(r.status, 429, "anthropic: 429")
        j = r.json() or {}
        is_((j.get("type"), (j.get("error") or {}).get("type")), ("error", "budget_exceeded"),
            "anthropic error shape")
        ok(isinstance((j.get("error") or {}).get("message"), str), "anthropic error has a message")
        ok(r.header("Retry-After") is not None, "anthropic: Retry-After")
        is_(len(m.requests()), n_up, "rejected requests never reached upstream")
        is_(h.get("/v1/models").status, 200, "non-LLM routes are not budgeted")
        st = h.stats()
        b = st.get("budget") or {}
        is_((b.get("exceeded"), b.get("remaining_usd"), b.get("rejected_requests")), (True, 0.0, 2),
            "/stats.budget: exceeded, nothing remaining, 2 rejected")
        ok(abs(b.get("spent_usd", 0) - 0.016) < 1e-9, "/stats.budget.spent_usd = 0.016")
        is_(st["requests"]["budget_rejected"], 2, "/stats.requests.budget_rejected")
        mtext = h.get("/metrics").text
        is_((metric(mtext, "headroom_budget_spent_usd"), metric(mtext, "headroom_budget_limit_usd"),
             metric(mtext, "headroom_budget_rejected_total")), (0.016, 0.01, 2.0), "budget metrics")
    ok(os.path.exists(os.path.join(ws, "budget.json")), "budget.json written in the workspace")

    # Restart (flags this time): the spend survived.
    with Headroomd(mock=m, extra_conf="prices %s\n" % PRICES_PATH, args=["--budget", "0.01"], env=env) as h:
        r = h.post("/v1/messages", anthropic_body())
        is_(r.status, 429, "after a restart: still 429")
        ok(abs(((h.stats().get("budget") or {}).get("spent_usd") or 0) - 0.016) < 1e-9, "restart: spend kept")
        ok("budget 80% used" not in h.stderr_text(), "restart: no repeated WARN for the same period")

    # Restart with another limit: budget.json records the limit in force as
    # soon as the daemon is up (it kept the old one until a spend rewrote it),
    # and the period's spend is kept.
    def budget_file(d):
        with open(os.path.join(d, "budget.json")) as f:
            return json.load(f)
    with Headroomd(mock=m, extra_conf="prices %s\n" % PRICES_PATH, args=["--budget", "0.02"], env=env) as h:
        doc = budget_file(ws)
        is_((doc.get("limit_usd"), round(doc.get("spent_usd", -1), 9), doc.get("period_start")),
            (0.02, 0.016, "2025-11-26T00:00:00Z"), "restart with another budget: budget.json says the new limit at once, spend kept")
        is_((h.stats().get("budget") or {}).get("limit_usd"), 0.02, "the limit in force, as /stats says")
    is_(budget_file(ws).get("limit_usd"), 0.02, "and still after a clean shutdown")
    # A reload switching a budget on over a file from an earlier run with
    # another limit: the file gets the new limit within the flush second.
    with Headroomd(mock=m, extra_conf="prices %s\n" % PRICES_PATH, env=env) as h:
        is_(h.stats().get("budget"), None, "started without a budget")
        with open(h.conf_path, "a") as f:
            f.write("budget 0.03\n")
        h.signal(signal.SIGHUP)
        ok(wait_until(lambda: budget_file(ws).get("limit_usd") == 0.03, 10),
           "a reload switching the budget on: budget.json says its limit (%s)" % budget_file(ws).get("limit_usd"))
        is_(round(budget_file(ws).get("spent_usd", -1), 9), 0.016, "spend kept")
    with Headroomd(mock=m, extra_conf="prices %s\n" % PRICES_PATH, args=["--budget", "0.01"], env=env) as h:
        is_(budget_file(ws).get("limit_usd"), 0.01, "back to the first limit: the file follows")

    # A limit lowered under what the period has spent: every request is refused,
    # so no request would say "budget exceeded" -- it is said when the new
    # limit takes effect, by a reload (SIGHUP) or at start, once.
    ws_low = tempfile.mkdtemp(prefix="hr-budget-low-")
    env_low = dict(env, HEADROOM_WORKSPACE_DIR=ws_low)
    conf_hi = "prices %s\nbudget 1\nbudget_period daily\n" % PRICES_PATH
    with Headroomd(mock=m, extra_conf=conf_hi, env=env_low) as h:
        is_(h.post("/v1/chat/completions", openai_body(model="gpt-4o"), headers=SPEND).status, 200, "$0.008 of $1")
        ok(wait_until(lambda: abs(((h.stats().get("budget") or {}).get("spent_usd") or 0) - 0.008) < 1e-9),
           "the spend is counted")
        with open(h.conf_path) as f:
            text = f.read()
        with open(h.conf_path, "w") as f:
            f.write(text.replace("budget 1\n", "budget 0.005\n"))
        h.signal(signal.SIGHUP)
        ok(wait_until(lambda: "budget exceeded" in h.stderr_text()),
           "a reload lowering the limit under the spend: WARN budget exceeded at once")
        is_(h.post("/v1/chat/completions", openai_body(model="gpt-4o")).status, 429, "and requests get 429")
        # budget_period cannot change under a running budget: named only as needing a restart
        with open(h.conf_path, "w") as f:
            f.write(text.replace("budget 1\n", "budget 0.005\n").replace("budget_period daily", "budget_period hourly"))
        h.signal(signal.SIGHUP)
        ok(wait_until(lambda: h.stderr_text().count("reloaded ") >= 2), "a second reload (budget_period hourly)")
        last = h.stderr_text().split("reloaded ")[-1]
        applied = last.split("changed and applied: ")[1].split(";")[0] if "changed and applied: " in last else ""
        ok("budget_period" not in applied and re.search(r"needing a restart[^\n]*budget_period \(hourly, running as "
                                                        r"daily\)", last),
           "a changed budget_period under a running budget: only 'needing a restart', not also 'applied' (%s)"
           % applied)
    with open(os.path.join(ws_low, "budget.json")) as f:
        doc = json.load(f)
    doc["warned_pct"] = 0  # as a file written under the higher limit left it
    with open(os.path.join(ws_low, "budget.json"), "w") as f:
        json.dump(doc, f)
    with Headroomd(mock=m, extra_conf=conf_hi.replace("budget 1\n", "budget 0.004\n"), env=env_low) as h:
        is_(len(re.findall(r"WARNING:headroom\.budget:budget exceeded", h.stderr_text())), 1,
            "started with a limit under the period's spend: WARN budget exceeded at start, once")
    with Headroomd(mock=m, extra_conf=conf_hi.replace("budget 1\n", "budget 0.004\n"), env=env_low) as h:
        ok("budget exceeded" not in h.stderr_text(), "and not again at the next start (same period)")

    # Next day: allowed again.
    env2 = dict(env, HEADROOM_TEST_NOW=str(THU))
    with Headroomd(mock=m, extra_conf=BUDGET_CONF, env=env2) as h:
        r = h.post("/v1/chat/completions", openai_body(model="gpt-4o"))
        is_(r.status, 200, "period rollover: allowed again")
        b = h.stats().get("budget") or {}
        is_(b.get("resets_at"), "2025-11-28T00:00:00Z", "rollover: resets_at is the next midnight")
        cmp_ok(b.get("spent_usd", 1), "<", 0.001, "rollover: spend starts again")

    # A damaged budget.json: moved aside, WARN, fresh start.
    with open(os.path.join(ws, "budget.json"), "w") as f:
        f.write("{ not json")
    with Headroomd(mock=m, extra_conf=BUDGET_CONF, env=env) as h:
        is_(h.post("/v1/chat/completions", openai_body(model="gpt-4o")).status, 200, "damaged file: fresh start")
        is_(len(re.findall(r"WARNING:headroom\.budget:budget file .* is damaged", h.stderr_text())), 1,
            "damaged file: one WARN")
    ok(any(n.startswith("budget.json.corrupt-") for n in os.listdir(ws)), "damaged file moved aside")

    # Weekly budget, flag form: week from Monday.
    with Headroomd(mock=m, extra_conf="prices %s\n" % PRICES_PATH, args=["--budget", "5", "--budget-period", "weekly"],
                   env=env) as h:
        b = h.stats().get("budget") or {}
        is_((b.get("period"), b.get("resets_at")), ("weekly", "2025-12-01T00:00:00Z"), "weekly: resets Monday 00:00")

# ------------------------------------------------------------ startup errors


def run(args, conf_text, env=None):
    d = tempfile.mkdtemp(prefix="hr-cost-conf-")
    path = os.path.join(d, "headroom.conf")
    with open(path, "w") as f:
        f.write(conf_text)
    e = dict(os.environ, HEADROOM_WORKSPACE_DIR=d, HEADROOM_TELEMETRY="off", **(env or {}))
    p = subprocess.run(WRAPPER + [BIN, "-c", path] + args, stdin=subprocess.DEVNULL, capture_output=True, env=e,
                       timeout=60)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace"), d


rc, out, err, d = run(["--check-config"], "port 0\nprices %s\n" % PRICES_PATH)
is_(rc, 0, "--check-config with the shipped prices")
like(out, r"prices .*prices\.json \(prices_version \d{4}-\d\d-\d\d, \d+ models\)", "--check-config reports prices")
# A price table older than 90 days (by the clock) is warned about once.
with open(PRICES_PATH) as f:
    version = json.load(f)["prices_version"]
vt = calendar.timegm(time.strptime(version, "%Y-%m-%d"))
rc, out, err, _ = run(["--check-config"], "port 0\nprices %s\n" % PRICES_PATH, {"HEADROOM_TEST_NOW": str(vt + 30 * 86400)})
ok(rc == 0 and "days old" not in err, "prices 30 days old: no warning")
rc, out, err, _ = run(["--check-config"], "port 0\nprices %s\n" % PRICES_PATH, {"HEADROOM_TEST_NOW": str(vt + 91 * 86400)})
like(err, r"WARNING:headroom\.cost:.*prices\.json: prices_version %s is 91 days old; costs may be wrong" % version,
     "prices 91 days old: one WARN naming the file, the version and what to do")
bad = os.path.join(d, "bad.json")
with open(bad, "w") as f:
    f.write('{"prices_version": "x",\n "models": {"gpt-4o": {"input": 1,}}}\n')
rc, out, err, _ = run([], "port 0\nprices %s\n" % bad)
is_(rc, 1, "bad prices file: exit 1")
like(err, re.escape(bad) + r":2:\d+: not valid JSON", "bad prices file: names file, line and column")
with open(bad, "w") as f:
    f.write('{"prices_version": "x", "models": {"gpt-4o": {"input": 1, "ouput": 2}}}\n')
rc, out, err, _ = run([], "port 0\nprices %s\n" % bad)
like(err, r'unknown field "ouput"', "bad prices file: says which field is wrong")
rc, out, err, _ = run([], "port 0\nprices /nonexistent/prices.json\n")
ok(rc == 1 and "/nonexistent/prices.json" in err, "missing prices file: exit 1 naming it")
rc, out, err, _ = run(["--budget-period", "yearly", "--budget", "1"], "port 0\n")
ok(rc == 1 and "hourly, daily, weekly or monthly" in err, "bad budget period: exit 1 with the choices")
done()
