#!/usr/bin/env python3
# cache_ratelimit_test.py — the response cache and the rate limit end to end:
# hits served without an upstream call (byte-identical, x-headroom-cache,
# /stats), what is never cached (streams, non-200s), --no-cache, off by
# default, TTL expiry (real and frozen HEADROOM_TEST_NOW clock), expired vs
# evicted answers in a full cache; 429s in each
# provider's shape with Retry-After, per-key isolation, token limits, off by
# default, --no-rate-limit over the config, flag validation.
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403

FROZEN = {"HEADROOM_TEST_NOW": "1700000000"}
OA = "/v1/chat/completions"
AN = "/v1/messages"
KEY_A = {"Authorization": "Bearer sk-test-aaaa"}
KEY_B = {"Authorization": "Bearer sk-test-bbbb"}


def n_upstream(m):
    return len(m.requests())


def post(h, path, body, headers=None):
    hl = {"Content-Type": "application/json"}
    hl.update(headers or {})
    return request("POST", h.url + path, body=body, headers=hl)


# ---------------------------------------------------------------- cache on
with Mock() as m, Headroomd(mock=m, extra_conf="cache_ttl 60\nsink prometheus { path /metrics; }\n") as h:
    body1 = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"cache me"}],"temperature":0.3}'
    body1_reordered = b'{ "temperature": 0.3, "messages": [ {"content": "cache me", "role": "user"} ], "model": "gpt-4o-mini", "user": "someone" }'
    r1 = post(h, OA, body1, KEY_A)
    is_(r1.status, 200, "first request answered")
    is_(r1.header("x-headroom-cache"), "miss", "first request: x-headroom-cache: miss")
    r2 = post(h, OA, body1_reordered, KEY_A)
    is_(r2.status, 200, "same request, keys reordered and a `user` field: answered")
    is_(r2.header("x-headroom-cache"), "hit", "served from the cache: x-headroom-cache: hit")
    is_(r2.body, r1.body, "cached body byte-identical")
    is_(n_upstream(m), 1, "the mock saw only one request")
    is_(r2.header("content-type"), r1.header("content-type"), "content type kept")
    for k in ("x-headroom-tokens-before", "x-headroom-tokens-after"):
        is_(r2.header(k), r1.header(k), "hit keeps " + k)
    is_((r2.header("x-headroom-tokens-saved"), r2.header("x-headroom-cost-usd")), ("0", "0.000000"),
        "a hit claims no compression saving and costs nothing")
    ok(r2.header("x-headroom-request-id") not in (None, r1.header("x-headroom-request-id")), "hit has its own request id")
    st = h.stats()
    is_(st["requests"]["cached"], 1, "/stats requests.cached = 1")
    is_(st["cache"]["total_hits"], 1, "/stats cache.total_hits = 1")
    is_(st["cost"]["cache_avoided_usd"], float(r1.header("x-headroom-cost-usd")),
        "/stats cost.cache_avoided_usd = the price of the answer the hit replayed (%s)" % r1.header("x-headroom-cost-usd"))
    is_(st["cache"]["misses"], 1, "/stats cache.misses = 1")
    is_(st["cache"]["entries"], 1, "/stats cache.entries = 1")
    ok(st["cache"]["enabled"] is True, "/stats cache.enabled")
    is_(st["cache"]["ttl_seconds"], 60, "/stats cache.ttl_seconds from cache_ttl")
    is_(st["cache"]["max_entries"], 1000, "/stats cache.max_entries default")
    is_(st["cache"]["max_bytes"], 64 << 20, "/stats cache.max_bytes default")
    cmp_ok(st["cache"]["bytes"], ">", len(r1.body), "/stats cache.bytes counts the stored answer")
    is_(st["requests"]["total"], 2, "both requests counted")
    is_(st["overhead"]["count"], 1, "a hit records no overhead (no upstream call)")
    is_(st["ttfb"]["count"], 1, "a hit records no ttfb")
    is_(st["latency"]["count"], 2, "a hit records latency")
    met = request("GET", h.url + "/metrics").text
    like(met, r"(?m)^headroom_requests_cached_total 1$", "/metrics headroom_requests_cached_total 1")

    r = post(h, OA, body1.replace(b"0.3", b"0.9"), KEY_A)
    is_(r.header("x-headroom-cache"), "miss", "different temperature: miss")
    r = post(h, OA, body1, KEY_B)
    is_(r.header("x-headroom-cache"), "miss", "different API key: miss (tenants never share answers)")
    r = post(h, OA, body1)
    is_(r.header("x-headroom-cache"), "miss", "no API key: miss")
    is_(n_upstream(m), 4, "each miss reached the mock")

    # streams are never cached
    sb = openai_body(stream=True, content="stream me")
    s1 = stream(h.url + OA, sb, KEY_A)
    s2 = stream(h.url + OA, sb, KEY_A)
    ok(s1.complete and s2.complete, "two identical streams complete")
    is_(s2.header("x-headroom-cache"), None, "a stream has no x-headroom-cache header")
    is_(n_upstream(m), 6, "both streams reached the mock")

    # non-200 answers are never cached
    eb = openai_body(content="this one fails")
    e1 = post_json(h.url + OA, eb, headers=dict(KEY_A, **{"x-mock-status": "500"}))
    e2 = post_json(h.url + OA, eb, headers=dict(KEY_A, **{"x-mock-status": "500"}))
    is_((e1.status, e2.status), (500, 500), "upstream 500 twice")
    is_(e2.header("x-headroom-cache"), "miss", "a 500 is not stored: second is a miss too")
    is_(n_upstream(m), 8, "both 500s reached the mock")

    # Anthropic
    ab = anthropic_body(content="anthropic cache")
    ah = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
    a1 = post_json(h.url + AN, ab, headers=ah)
    a2 = post_json(h.url + AN, ab, headers=ah)
    is_((a1.header("x-headroom-cache"), a2.header("x-headroom-cache")), ("miss", "hit"), "anthropic: miss then hit")
    is_(a2.body, a1.body, "anthropic: cached body byte-identical")
    a3 = post_json(h.url + AN, ab, headers=dict(ah, **{"anthropic-beta": "some-beta"}))
    is_(a3.header("x-headroom-cache"), "miss", "anthropic-beta changes the answer: miss")
    a4 = post_json(h.url + AN, ab, headers={"x-api-key": "sk-ant-other", "anthropic-version": "2023-06-01"})
    is_(a4.header("x-headroom-cache"), "miss", "anthropic: another x-api-key: miss")
    is_(h.stats()["requests"]["cached"], 2, "requests.cached = 2")

# ---------------------------------------------------------- cache disabled
with Mock() as m, Headroomd(mock=m, extra_conf="cache_ttl 60\n", args=["--no-cache"]) as h:
    b = openai_body(content="no cache please")
    r1 = post_json(h.url + OA, b)
    r2 = post_json(h.url + OA, b)
    is_(n_upstream(m), 2, "--no-cache (over cache_ttl in the config): both requests reach the mock")
    is_(r2.header("x-headroom-cache"), None, "--no-cache: no x-headroom-cache header")
    st = h.stats()
    ok(st["cache"]["enabled"] is False, "--no-cache: /stats cache.enabled false")
    is_(st["requests"]["cached"], 0, "--no-cache: requests.cached 0")

with Mock() as m, Headroomd(mock=m) as h:
    b = openai_body(content="default config")
    post_json(h.url + OA, b)
    r2 = post_json(h.url + OA, b)
    is_(n_upstream(m), 2, "default config: the cache is off, both requests reach the mock")
    is_(r2.header("x-headroom-cache"), None, "default config: no x-headroom-cache header")
    ok(h.stats()["cache"]["enabled"] is False, "default config: /stats cache.enabled false")

# --------------------------------------------------------------------- TTL
with Mock() as m, Headroomd(mock=m, extra_conf="cache_ttl 1\n") as h:
    b = openai_body(content="short lived")
    post_json(h.url + OA, b)
    is_(post_json(h.url + OA, b).header("x-headroom-cache"), "hit", "ttl 1 s: hit at once")
    time.sleep(1.3)
    is_(post_json(h.url + OA, b).header("x-headroom-cache"), "miss", "ttl 1 s: miss after 1.3 s")
    is_(n_upstream(m), 2, "the expired answer was fetched again")

# A full cache: an answer past its TTL pushed out to make room counts as
# expired, not as an eviction; a live one pushed out is an eviction.
# (2 s, not 1: the answer B stores must still be live when C comes.)
with Mock() as m, Headroomd(mock=m, extra_conf="cache_ttl 2\ncache_max_entries 1\n") as h:
    post_json(h.url + OA, openai_body(content="expires first"))
    time.sleep(2.3)
    is_(post_json(h.url + OA, openai_body(content="takes its place")).header("x-headroom-cache"), "miss",
        "full cache, its one answer expired: a new request is a miss")
    c = h.stats()["cache"]
    is_((c["expired"], c["evictions"], c["entries"]), (1, 0, 1),
        "the expired answer it pushed out counts as expired, not evicted (/stats cache.expired 1, evictions 0)")
    post_json(h.url + OA, openai_body(content="pushes a live one out"))
    c = h.stats()["cache"]
    is_((c["expired"], c["evictions"], c["entries"]), (1, 1, 1),
        "a live answer pushed out for room is an eviction (/stats cache.evictions 1)")

with Mock() as m, Headroomd(mock=m, extra_conf="cache_ttl 1\n", env=FROZEN) as h:
    b = openai_body(content="frozen clock")
    post_json(h.url + OA, b)
    time.sleep(1.3)
    is_(post_json(h.url + OA, b).header("x-headroom-cache"), "hit",
        "HEADROOM_TEST_NOW frozen: still a hit after 1.3 s (the cache uses the injectable clock)")

# -------------------------------------------------------------- rate limit
with Mock() as m, Headroomd(mock=m, extra_conf="rate_limit_rpm 2\nsink prometheus { path /metrics; }\n", env=FROZEN) as h:
    codes = [post_json(h.url + OA, openai_body(content="rl %d" % i), headers=KEY_A).status for i in range(3)]
    is_(codes, [200, 200, 429], "rpm 2: third request from the same key refused")
    r = post_json(h.url + OA, openai_body(content="rl x"), headers=KEY_A)
    is_(r.status, 429, "still refused")
    is_(r.header("retry-after"), "30", "Retry-After: 30 (2 per minute, frozen clock)")
    j = r.json() or {}
    e = j.get("error") or {}
    is_((e.get("type"), e.get("code")), ("rate_limit_exceeded", "rate_limit_exceeded"), "OpenAI shape: error.type and error.code")
    like(e.get("message", ""), r"rate_limit_rpm", "message names the setting to raise")
    ok("param" in e, "OpenAI shape: error.param present")
    like(r.header("content-type", ""), r"^application/json", "429 is JSON")
    is_(post_json(h.url + OA, openai_body(content="other key"), headers=KEY_B).status, 200, "another key is not limited")
    ah = {"x-api-key": "sk-ant-rl", "anthropic-version": "2023-06-01"}
    codes = [post_json(h.url + AN, anthropic_body(content="a %d" % i), headers=ah).status for i in range(3)]
    is_(codes, [200, 200, 429], "anthropic key (x-api-key): third refused")
    r = post_json(h.url + AN, anthropic_body(content="a x"), headers=ah)
    j = r.json() or {}
    is_(j.get("type"), "error", "Anthropic shape: type error")
    is_((j.get("error") or {}).get("type"), "rate_limit_error", "Anthropic shape: error.type rate_limit_error")
    is_(r.header("retry-after"), "30", "Anthropic 429 has Retry-After")
    codes = [post_json(h.url + OA, openai_body(content="anon %d" % i)).status for i in range(3)]
    is_(codes, [200, 200, 429], "requests without a key share the anonymous bucket")
    st = h.stats()
    is_(st["requests"]["rate_limited"], 5, "/stats requests.rate_limited")
    is_(st["rate_limit"]["rejected"], 5, "/stats rate_limit.rejected")
    is_(st["rate_limit"]["tracked_keys"], 4, "/stats rate_limit.tracked_keys (A, B, anthropic, anonymous)")
    is_((st["rate_limit"]["enabled"], st["rate_limit"]["rpm"], st["rate_limit"]["tpm"]), (True, 2, 0), "/stats rate_limit settings")
    is_(st["requests"]["by_status"].get("429"), 5, "429s counted by status")
    is_(n_upstream(m), 7, "refused requests never reached the mock")
    met = request("GET", h.url + "/metrics").text
    like(met, r"(?m)^headroom_requests_rate_limited_total 5$", "/metrics headroom_requests_rate_limited_total 5")
    ok("sk-test-aaaa" not in (h.stderr_text() + h.stdout_text() + dumps(st).decode()), "the API key never appears in logs or /stats")

with Mock() as m, Headroomd(mock=m, extra_conf="rate_limit_tpm 100\n", env=FROZEN) as h:
    big = openai_body(content="word " * 400)
    r1 = post_json(h.url + OA, big, headers=KEY_A)
    is_(r1.status, 200, "tpm 100: a request larger than the allowance passes on a full bucket")
    r2 = post_json(h.url + OA, openai_body(content="small"), headers=KEY_A)
    is_(r2.status, 429, "then the key is over its token limit")
    like((r2.json() or {}).get("error", {}).get("message", ""), r"tokens per minute.*rate_limit_tpm", "message names the token limit")
    cmp_ok(int(r2.header("retry-after", "0")), ">", 60, "Retry-After covers the debt (over a minute)")
    is_(post_json(h.url + OA, openai_body(content="small"), headers=KEY_B).status, 200, "another key still passes")

with Mock() as m, Headroomd(mock=m, env=FROZEN) as h:
    codes = set(post_json(h.url + OA, openai_body(content="many %d" % (i % 3)), headers=KEY_A).status for i in range(120))
    is_(codes, {200}, "no rate limit configured: 120 requests at one instant all answered")
    st = h.stats()
    ok(st["rate_limit"]["enabled"] is False, "default: /stats rate_limit.enabled false")
    is_(st["requests"]["rate_limited"], 0, "default: requests.rate_limited 0")

with Mock() as m, Headroomd(mock=m, extra_conf="rate_limit_rpm 1\nrate_limit_tpm 1\n", args=["--no-rate-limit"], env=FROZEN) as h:
    codes = [post_json(h.url + OA, openai_body(content="x %d" % i), headers=KEY_A).status for i in range(5)]
    is_(codes, [200] * 5, "--no-rate-limit wins over rate_limit_rpm/tpm in the config")
    ok(h.stats()["rate_limit"]["enabled"] is False, "--no-rate-limit: /stats rate_limit.enabled false")

with Mock() as m, Headroomd(mock=m, extra_conf="rate_limit_rpm 5\nrate_limit no\n", env=FROZEN) as h:
    codes = [post_json(h.url + OA, openai_body(content="y %d" % i)).status for i in range(7)]
    is_(codes, [200] * 7, "`rate_limit no` in the config wins too")

with Mock() as m, Headroomd(mock=m, args=["--rate-limit-rpm", "1"], env=FROZEN) as h:
    codes = [post_json(h.url + OA, openai_body(content="z %d" % i), headers=KEY_A).status for i in range(2)]
    is_(codes, [200, 429], "--rate-limit-rpm 1 flag")
    is_(h.stats()["rate_limit"]["rpm"], 1, "flag value in /stats")

binary = os.environ.get("HEADROOMD") or os.path.join(T_DIR, "..", "src", "headroomd")
p = subprocess.run([binary, "--rate-limit-tpm", "lots"], capture_output=True, text=True, timeout=20,
                   stdin=subprocess.DEVNULL)
is_(p.returncode, 1, "--rate-limit-tpm lots: exit 1")
like(p.stderr, r"--rate-limit-tpm.*whole number", "the error names the flag and what it expects")

done()
