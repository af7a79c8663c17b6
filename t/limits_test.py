#!/usr/bin/env python3
# limits_test.py — headroomd refusing what it must (oversized bodies and headers,
# garbage bytes) and answering upstream failures (refused, timeout, reset, 4xx/5xx).
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403
import time  # noqa: E402


def still_serving(h, what):
    r = post_json(h.url + "/v1/chat/completions", openai_body())
    is_(r.status, 200, "daemon keeps serving after " + what)


def openai_error(r):
    j = r.json() or {}
    return isinstance(j.get("error"), dict) and bool(j["error"].get("message")) and "type" in j["error"]


def anthropic_error(r):
    j = r.json() or {}
    return j.get("type") == "error" and isinstance(j.get("error"), dict) and bool(j["error"].get("message"))


with Mock() as m, Headroomd(mock=m, extra_conf="max_body_size 2k\nmax_header_size 4k\nupstream_timeout 1\n") as h:
    # --- request size limits ---
    m.reset()
    small = dumps(openai_body(content="x" * 1500))
    is_(post_json(h.url + "/v1/chat/completions", openai_body(content="x" * 1500)).status, 200,
        "a %d-byte body under max_body_size 2k is proxied" % len(small))
    r = post_json(h.url + "/v1/chat/completions", openai_body(content="x" * 3000))
    is_(r.status, 413, "body over max_body_size 2k -> 413")
    r = request("POST", h.url + "/v1/messages", body=b"y" * 100000, headers={"Content-Type": "application/json"})
    ok(r.status == 413 or (r.status == 0 and r.error), "100 kB body refused (413 or connection closed)")
    is_(len(m.requests()), 1, "oversized bodies never reach the upstream")
    still_serving(h, "oversized bodies")

    m.reset()
    r = request("GET", h.url + "/v1/models", headers={"x-big": "y" * 6000})
    ok(r.status in (400, 413, 431) or (r.status == 0 and r.error), "6 kB header over max_header_size 4k refused (%s)"
       % (r.status or r.error))
    r = request("GET", h.url + "/v1/models", headers=[("x-h%d" % i, "v" * 100) for i in range(60)])
    ok(r.status in (400, 413, 431) or (r.status == 0 and r.error), "many headers over 4k in total refused")
    is_(len(m.requests()), 0, "requests with oversized headers never reach the upstream")
    still_serving(h, "oversized headers")

    # --- garbage on a raw socket ---
    for label, data in (("binary junk", b"\x00\xff\xfe\x16\x03\x01garbage\r\n\r\n"),
                        ("TLS hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64),
                        ("bad request line", b"GET\r\n\r\n"),
                        ("bad content-length", b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"),
                        ("bad chunked", b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
                        ("half a request", b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")):
        r = raw_socket_request(h.port, data, timeout=3, until="close", shut_wr=True)
        ok(r.status in (None, 400, 413, 501) and not r.timed_out,
           "%s: refused or closed, not hung (status %s)" % (label, r.status))
    still_serving(h, "garbage bytes")
    ok(h.alive(), "daemon process alive after garbage")

    # --- upstream 4xx/5xx: relayed unchanged, counted by status, not failed ---
    ok(request("POST", h.url + "/stats/reset").status == 200, "stats reset")
    for path, mk, status in (("/v1/chat/completions", openai_body, "429"), ("/v1/chat/completions", openai_body, "500"),
                             ("/v1/messages", anthropic_body, "429"), ("/v1/messages", anthropic_body, "529")):
        body = dumps(mk())
        via = request("POST", h.url + path, body=body, headers={"x-mock-status": status})
        direct = request("POST", m.url + path, body=body, headers={"x-mock-status": status})
        is_((via.status, via.body), (int(status), direct.body), "%s %s relayed with status and body unchanged"
            % (path, status))
        if status == "429":
            is_(via.header("retry-after"), "1", "%s 429: retry-after relayed" % path)
        if path == "/v1/messages":
            is_(via.header("x-should-retry"), direct.header("x-should-retry"), "%s %s: x-should-retry relayed"
                % (path, status))
    st = h.stats()["requests"]
    is_(st["failed"], 0, "upstream error statuses are not counted as failed")
    is_(st["by_status"], {"429": 2, "500": 1, "529": 1}, "upstream error statuses counted in by_status")

    # --- upstream timeout, reset ---
    t0 = time.monotonic()
    r = post_json(h.url + "/v1/chat/completions", openai_body(), headers={"x-mock-delay-ms": "3000"})
    is_(r.status, 504, "upstream slower than upstream_timeout 1 -> 504")
    ok(openai_error(r), "504 body in OpenAI error shape")
    cmp_ok(time.monotonic() - t0, "<", 2.8, "504 comes after about upstream_timeout, not the upstream's delay")
    r = post_json(h.url + "/v1/messages", anthropic_body(), headers={"x-mock-delay-ms": "3000"})
    ok(r.status == 504 and anthropic_error(r), "anthropic timeout -> 504 in Anthropic error shape")
    r = post_json(h.url + "/v1/messages", anthropic_body(), headers={"x-mock-reset": "before-headers"})
    ok(r.status == 502 and anthropic_error(r), "upstream reset before headers -> 502 in Anthropic error shape")
    r = post_json(h.url + "/v1/chat/completions", openai_body(), headers={"x-mock-reset": "after-headers"})
    ok(r.status == 502 and openai_error(r), "upstream reset after headers (non-streamed) -> 502 in OpenAI shape")
    r = post_json(h.url + "/v1/chat/completions", openai_body(), headers={"x-mock-reset": "mid-body"})
    ok(r.status == 502 and openai_error(r), "upstream reset mid-body (non-streamed) -> 502, no half body")
    st = h.stats()["requests"]
    is_(st["failed"], 5, "timeouts and resets counted in requests.failed")
    is_((st["by_status"].get("504"), st["by_status"].get("502")), (2, 3), "504s and 502s counted by status")
    still_serving(h, "upstream failures")

# --- upstream refused: nothing listens on the configured port ---
dead = free_port()
conf = ("host 127.0.0.1\nport @PORT@\nworkers 1\nopenai_api_url http://127.0.0.1:%d\n"
        "anthropic_api_url http://127.0.0.1:%d\n" % (dead, dead))
with Headroomd(conf_text=conf) as h:
    r = post_json(h.url + "/v1/messages", anthropic_body())
    is_(r.status, 502, "anthropic upstream refused -> 502")
    ok(anthropic_error(r), "refused: Anthropic error shape")
    like((r.json() or {}).get("error", {}).get("message", ""), r"anthropic", "refused: message names the upstream")
    r = post_json(h.url + "/v1/chat/completions", openai_body())
    ok(r.status == 502 and openai_error(r), "openai upstream refused -> 502 in OpenAI shape")
    r = stream(h.url + "/v1/messages", anthropic_body(stream=True))
    is_(r.status, 502, "refused on a stream request -> 502 before any event")
    st = h.stats()["requests"]
    is_((st["failed"], st["by_status"].get("502")), (3, 3), "refused upstreams counted as failed and by status")
    is_(st["by_provider"], {"anthropic": 2, "openai": 1}, "failed requests still counted by provider")

done()
