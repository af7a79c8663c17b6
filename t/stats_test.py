#!/usr/bin/env python3
# stats_test.py — /stats after a scripted set of requests: counts by status,
# provider, model and X-Headroom-Stack, token totals, provider prompt cache
# (incl. Anthropic 5m/1h TTL buckets), timing counts, and POST /stats/reset.
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403
import socket  # noqa: E402

TTL_USAGE = '{"cache_creation":{"ephemeral_5m_input_tokens":100,"ephemeral_1h_input_tokens":300},"cache_read_input_tokens":50}'


class Tally:
    """What the client saw, to compare /stats against."""

    def __init__(self):
        self.before = self.after = self.output = 0

    def add(self, r, provider):
        # Token totals count credited requests only: the provider answered 2xx.
        if 200 <= r.status < 300:
            self.before += int(r.header("x-headroom-tokens-before", "0"))
            self.after += int(r.header("x-headroom-tokens-after", "0"))
        if r.header("content-type", "").startswith("text/event-stream"):
            for ev in sse_data_json(r.body):
                if provider == "openai" and isinstance(ev.get("usage"), dict):
                    self.output += ev["usage"]["completion_tokens"]
                if provider == "anthropic" and ev.get("type") == "message_delta":
                    self.output += ev["usage"]["output_tokens"]
        else:
            u = (r.json() or {}).get("usage") or {}
            self.output += u.get("completion_tokens", u.get("output_tokens", 0))
        return r


def non_loopback_ip():
    """An address of this host that is not 127.x, or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("10.255.255.255", 1))
        ip = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if ip.startswith("127.") else ip


with Mock() as m, Headroomd(mock=m) as h:
    st0 = h.stats()
    is_(st0["requests"]["total"], 0, "fresh daemon: no requests")
    for k in ("total", "cached", "rate_limited", "budget_rejected", "failed", "by_status", "by_provider", "by_model",
              "by_stack"):
        ok(k in st0["requests"], "requests." + k + " present")
    for k in ("input", "output", "saved", "sent", "savings_percent", "compression_ratio_avg"):
        ok(k in st0["tokens"], "tokens." + k + " present")
    for blk in ("latency", "overhead", "ttfb"):
        is_(sorted(st0[blk]), sorted(["count", "average_ms", "p50_ms", "p99_ms", "max_ms"]), blk + " fields")

    # --- the script ---
    t = Tally()
    u = h.url
    for _ in range(3):
        t.add(post_json(u + "/v1/chat/completions", openai_body(n_messages=2)), "openai")
    t.add(post_json(u + "/v1/chat/completions", openai_body(model="gpt-4o"),
                    headers={"x-mock-usage": '{"prompt_tokens_details":{"cached_tokens":20},"prompt_tokens":100}'}),
          "openai")
    t.add(post_json(u + "/v1/chat/completions", openai_body(), headers={"x-mock-status": "429"}), "openai")
    t.add(stream(u + "/v1/chat/completions", openai_body(stream=True, include_usage=True)), "openai")
    t.add(post_json(u + "/v1/messages", anthropic_body()), "anthropic")
    t.add(post_json(u + "/v1/messages", anthropic_body(), headers={"x-mock-usage": TTL_USAGE}), "anthropic")
    t.add(stream(u + "/v1/messages", anthropic_body(stream=True, model="claude-sonnet-4-5"),
                 {"x-mock-usage": TTL_USAGE}), "anthropic")
    is_(request("POST", u + "/v1/messages", body=b"{oops").status, 400, "malformed request in the script")
    is_(request("GET", u + "/v1/models").status, 200, "passthrough request in the script")
    is_(request("GET", u + "/nope").status, 404, "non-/v1 request in the script (not counted)")
    request("GET", u + "/health")

    st = h.stats()
    rq = st["requests"]
    is_(rq["total"], 11, "requests.total counts every /v1 request")
    is_(rq["by_status"], {"200": 9, "429": 1, "400": 1}, "requests.by_status")
    is_(rq["by_provider"], {"openai": 7, "anthropic": 4}, "requests.by_provider")
    is_(rq["by_model"], {"gpt-4o-mini": 5, "gpt-4o": 1, "claude-3-5-haiku-20241022": 2, "claude-sonnet-4-5": 1},
        "requests.by_model (LLM requests with a model)")
    is_(rq["failed"], 0, "requests.failed: none")
    tk = st["tokens"]
    cmp_ok(t.before, ">", 0, "the daemon reported tokens-before")
    is_(tk["input"], t.before, "tokens.input = sum of x-headroom-tokens-before")
    is_(tk["sent"], t.after, "tokens.sent = sum of x-headroom-tokens-after")
    is_(tk["saved"], t.before - t.after, "tokens.saved = input - sent")
    is_(tk["output"], t.output, "tokens.output = the mock's reported output tokens (%d)" % t.output)

    pc = st["prefix_cache"]["by_provider"]
    pa = pc.get("anthropic", {})
    is_(pa.get("requests"), 3, "anthropic prefix_cache.requests")
    is_(pa.get("hit_requests"), 2, "anthropic hit_requests (cache reads seen)")
    is_(pa.get("cache_read_tokens"), 100, "anthropic cache_read_tokens (JSON + SSE)")
    is_(pa.get("cache_write_tokens"), 800, "anthropic cache_write_tokens")
    is_(pa.get("observed_ttl_buckets"), {"5m": {"tokens": 200, "requests": 2}, "1h": {"tokens": 600, "requests": 2}},
        "anthropic observed_ttl_buckets from JSON and SSE usage")
    is_(pa.get("observed_ttl_mix"), {"5m_pct": 25.0, "1h_pct": 75.0, "active_buckets": ["5m", "1h"]},
        "anthropic observed_ttl_mix")
    is_(pa.get("hit_rate"), 66.67, "anthropic hit_rate in percent, 2 decimals")
    po = pc.get("openai", {})
    is_(po.get("cache_read_tokens"), 20, "openai cache_read_tokens from prompt_tokens_details.cached_tokens")
    is_(po.get("hit_requests"), 1, "openai hit_requests")
    is_(po.get("observed_ttl_buckets", {}).get("1h", {}).get("tokens"), 0, "openai has no TTL buckets")
    tot = st["prefix_cache"]["totals"]
    is_((tot["cache_read_tokens"], tot["cache_write_tokens"]), (120, 800), "prefix_cache totals sum the providers")

    is_(st["latency"]["count"], 11, "latency.count: every counted request")
    is_(st["overhead"]["count"], 10, "overhead.count: every forwarded request")
    is_(st["ttfb"]["count"], 10, "ttfb.count: every request that got upstream bytes")
    ok(0 <= st["latency"]["p50_ms"] <= st["latency"]["p99_ms"] <= st["latency"]["max_ms"] + 1e-6,
       "latency p50 <= p99 <= max")
    is_(st["pipeline_timing"].get("pipeline_total", {}).get("count"), 9, "pipeline_total.count: LLM requests parsed")

    # --- reset ---
    r = request("GET", u + "/stats/reset")
    is_((r.status, r.header("allow")), (405, "POST"), "GET /stats/reset -> 405 with Allow: POST")
    r = request("POST", u + "/stats/reset")
    is_(r.status, 200, "POST /stats/reset from loopback -> 200")
    st = h.stats()
    is_((st["requests"]["total"], st["requests"]["by_status"], st["requests"]["by_provider"],
         st["requests"]["by_model"]), (0, {}, {}, {}), "reset zeroes request counters")
    is_((st["tokens"]["input"], st["tokens"]["sent"], st["tokens"]["saved"], st["tokens"]["output"]), (0, 0, 0, 0),
        "reset zeroes token counters")
    is_((st["latency"]["count"], st["overhead"]["count"], st["ttfb"]["count"]), (0, 0, 0), "reset zeroes timing")
    is_(st["prefix_cache"]["by_provider"], {}, "reset zeroes prefix_cache")
    t2 = Tally()
    t2.add(post_json(u + "/v1/chat/completions", openai_body()), "openai")
    st = h.stats()
    is_((st["requests"]["total"], st["tokens"]["input"]), (1, t2.before), "counting resumes after a reset")

# --- X-Headroom-Stack ---
with Mock() as m, Headroomd(mock=m) as h:
    def send(stack):
        r = post_json(h.url + "/v1/chat/completions", openai_body(), headers={"X-Headroom-Stack": stack})
        return r.status

    valid = ["wrap_claude", "adapter_py_openai", "a", "z" * 64, "proxy9_x"]
    invalid = ["Wrap_Claude", "WRAP", "1abc", "_lead", "z" * 65, "wrap-claude", "wrap claude", "wrap.x", "caf\u00e9"]
    for s in valid:
        send(s)
    send("wrap_claude")
    codes = [send(s) for s in invalid]
    is_(codes, [200] * len(invalid), "requests with an invalid stack are still proxied")
    bs = h.stats()["requests"]["by_stack"]
    want = {s: 1 for s in valid}
    want["wrap_claude"] = 2
    is_(bs, want, "valid stacks counted; uppercase, digit-first, too long and odd characters ignored")
    is_(h.stats()["requests"]["total"], len(valid) + 1 + len(invalid), "requests with invalid stacks still counted")

with Mock() as m, Headroomd(mock=m) as h:
    for i in range(40):
        post_json(h.url + "/v1/chat/completions", openai_body(), headers={"X-Headroom-Stack": "stack_%02d" % i})
    post_json(h.url + "/v1/chat/completions", openai_body(), headers={"X-Headroom-Stack": "stack_00"})
    post_json(h.url + "/v1/chat/completions", openai_body(), headers={"X-Headroom-Stack": "stack_39"})
    bs = h.stats()["requests"]["by_stack"]
    named = {k: v for k, v in bs.items() if k != "other"}
    is_(len(named), 32, "at most 32 distinct stacks are named")
    is_(bs.get("other"), 9, "the rest are counted as other")
    is_(bs.get("stack_00"), 2, "a named stack keeps counting")
    is_(sum(bs.values()), 42, "every tagged request is counted once")

# --- admin endpoint from a non-loopback address ---
ip = non_loopback_ip()
if ip is None:
    skip("no non-loopback address on this host", 3)
else:
    with Mock() as m, Headroomd(mock=m, conf_text=None, extra_conf="host 0.0.0.0\n") as h:
        r = request("POST", "http://%s:%d/stats/reset" % (ip, h.port))
        is_(r.status, 403, "POST /stats/reset from %s (not loopback) -> 403" % ip)
        r = request("GET", "http://%s:%d/stats" % (ip, h.port))
        is_(r.status, 200, "GET /stats from a non-loopback address works")
        r = request("POST", h.url + "/stats/reset")
        is_(r.status, 200, "the same daemon accepts reset from loopback")

done()
