#!/usr/bin/env python3
# proxy_test.py — headroomd against t/mock-upstream: non-streamed answers relayed
# byte for byte, header hygiene, /v1 passthrough, provider routing, bad input.
import os
import socket
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403
import json  # noqa: E402
import re  # noqa: E402

# Response headers that legitimately differ between a direct and a proxied answer.
VOLATILE = {"x-mock-seq", "date", "server", "connection", "keep-alive", "transfer-encoding", "content-length"}


def relevant(headers):
    return sorted((k.lower(), v) for k, v in headers if k.lower() not in VOLATILE
                  and not k.lower().startswith("x-headroom-"))


def same_as_direct(h, m, path, body, headers=None, what=""):
    """Send body through headroomd and straight to the mock; compare what a client sees."""
    via = request("POST", h.url + path, body=body, headers=headers)
    direct = request("POST", m.url + path, body=body, headers=headers)
    is_(via.status, direct.status, what + ": status preserved")
    is_(via.body, direct.body, what + ": body is exactly the upstream's bytes")
    is_(relevant(via.headers), relevant(direct.headers), what + ": upstream headers relayed")
    is_(via.header("content-length"), str(len(via.body)), what + ": content-length matches the body")
    return via


def headers_of(req):
    return [(k.lower(), v) for k, v in req["headers"]]


with Mock() as m, Headroomd(mock=m) as h:
    # --- byte-exact relay, both providers, JSON ---
    ob = dumps(openai_body(n_messages=3, content="Summarise the build log"))
    r = same_as_direct(h, m, "/v1/chat/completions", ob, {"Content-Type": "application/json"}, "openai JSON")
    is_(r.status, 200, "openai JSON: 200")
    is_(r.json()["choices"][0]["message"]["content"], "mock reply to 3 messages", "openai JSON: the model's answer")

    ab = dumps(anthropic_body(n_messages=1))
    r = same_as_direct(h, m, "/v1/messages", ab, {"Content-Type": "application/json", "anthropic-version": "2023-06-01"},
                       "anthropic JSON")
    is_(r.json()["type"], "message", "anthropic JSON: a Messages answer")

    # A body with odd but valid formatting (whitespace, escapes, key order) is forwarded unchanged.
    odd = b'{ "messages" : [ {"content":"caf\\u00e9  \\t tab", "role":"user"} ],\n  "model":"gpt-4o-mini" , "n":1 }'
    m.reset()
    r = request("POST", h.url + "/v1/chat/completions", body=odd, headers={"Content-Type": "application/json"})
    is_(r.status, 200, "oddly formatted JSON accepted")
    is_(m.last_request()["body"], odd, "an unchanged request body is forwarded byte for byte")

    # A 6 MB body is read in large steps (read_ahead.c), and a request
    # pipelined right behind it in the same write is still its own request.
    lines = "".join("row %d: GET /v1/items/%d took %d ms\n" % (i, i * 7, i % 97) for i in range(170000))
    big = dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": lines}]})
    big = big if isinstance(big, bytes) else big.encode()
    small = dumps(openai_body())
    small = small if isinstance(small, bytes) else small.encode()
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n%s\r\n")
    m.reset()
    r = raw_socket_request(h.port, head % (len(big), b"") + big + head % (len(small), b"Connection: close\r\n") + small,
                           until="close", timeout=60)
    is_(len(re.findall(rb"HTTP/1.1 200", r.data)), 2, "a 6 MB body, then a pipelined request: both answered")
    got = m.requests()
    ok(len(big) > 6000000 and len(got) == 2 and got[0]["body"] == big and got[1]["body"] == small,
       "the 6 MB body reached the upstream byte for byte, the pipelined one after it")

    # Expect: 100-continue (curl sends it for bodies over 1 MB): the interim
    # answer comes before the body is sent, then the real one after it.
    m.reset()
    s100 = socket.create_connection(("127.0.0.1", h.port), timeout=10)
    s100.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(small))
    interim = s100.recv(4096)
    s100.sendall(small)
    rest = b""
    while b"\r\n\r\n" not in rest or len(re.findall(rb"HTTP/1.1 200", rest)) < 1:
        d = s100.recv(65536)
        if not d:
            break
        rest += d
    s100.close()
    ok(interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), "Expect: 100-continue: 100 Continue before the body")
    ok(rest.startswith(b"HTTP/1.1 200") and len(m.requests()) == 1 and m.requests()[0]["body"] == small,
       "then the request is proxied and answered 200")

    # Non-200 success statuses survive.
    same_as_direct(h, m, "/v1/chat/completions", ob, {"x-mock-status": "201"}, "status 201")

    # --- x-headroom-* answer headers ---
    r1 = post_json(h.url + "/v1/chat/completions", openai_body())
    r2 = post_json(h.url + "/v1/messages", anthropic_body())
    for name, r in (("openai", r1), ("anthropic", r2)):
        ok(r.header("x-headroom-request-id"), name + ": x-headroom-request-id present")
        vals = [r.header("x-headroom-tokens-" + k) for k in ("before", "after", "saved")]
        ok(all(v is not None and v.isdigit() for v in vals), name + ": x-headroom-tokens-before/after/saved are numbers")
        if all(v is not None and v.isdigit() for v in vals):
            b, a, s = (int(v) for v in vals)
            ok(b > 0, name + ": tokens-before counts the request")
            is_(s, b - a, name + ": saved = before - after")
    isnt(r1.header("x-headroom-request-id"), r2.header("x-headroom-request-id"), "request ids differ per request")

    # --- header hygiene (what the upstream receives) ---
    m.reset()
    sent = [("Authorization", "Bearer sk-test-123"), ("x-api-key", "sk-ant-456"),
            ("anthropic-version", "2023-06-01"), ("anthropic-beta", "prompt-caching-2024-07-31,tools-2024-05-16"),
            ("OpenAI-Organization", "org-1"), ("User-Agent", "hrtest/1"),
            ("X-Headroom-Stack", "wrap_test"), ("x-headroom-session", "s1"), ("X-HEADROOM-Admin-Token", "secret"),
            ("x-headroom-whatever", "1"),
            ("Connection", "keep-alive, X-Hop-Custom"), ("X-Hop-Custom", "drop me"), ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"), ("Proxy-Authorization", "Basic eHg6eXk="), ("Trailer", "x-foo"),
            ("Content-Type", "application/json")]
    r = request("POST", h.url + "/v1/messages", body=dumps(anthropic_body()), headers=sent)
    is_(r.status, 200, "request with many headers proxied")
    got = headers_of(m.last_request())
    gotd = dict(got)
    for k, v in sent[:6]:
        is_(gotd.get(k.lower()), v, "forwarded upstream unchanged: " + k)
    is_([k for k, _ in got if k.startswith("x-headroom-")], [], "no x-headroom-* request header reaches the upstream")
    for k in ("keep-alive", "te", "proxy-authorization", "trailer", "x-hop-custom"):
        ok(k not in gotd, "hop-by-hop header not forwarded: " + k)
    ok(gotd.get("connection", "close").lower() in ("close", "keep-alive"), "client's Connection list not forwarded")
    ok("127.0.0.1:%d" % m.port in gotd.get("host", ""), "Host is the upstream's, not the client's")
    # A long header value (beyond a 16 KiB line) arrives whole.
    long_beta = "b" * 20000
    r = request("POST", h.url + "/v1/messages", body=dumps(anthropic_body()), headers={"anthropic-beta": long_beta})
    is_(r.status, 200, "20 kB header proxied")
    is_(dict(headers_of(m.last_request())).get("anthropic-beta"), long_beta, "20 kB header value forwarded whole")

    # --- other /v1/* paths: passthrough untouched ---
    m.reset()
    r = request("GET", h.url + "/v1/models?limit=2&after=a%20b&x=%2F", headers={"Authorization": "Bearer k"})
    is_(r.status, 200, "GET /v1/models proxied")
    is_(r.json(), {"path": "/v1/models", "method": "GET", "query": "limit=2&after=a%20b&x=%2F"},
        "client gets the upstream's answer")
    lr = m.last_request()
    is_((lr["method"], lr["path"], lr["query"]), ("GET", "/v1/models", "limit=2&after=a%20b&x=%2F"),
        "path and query string reach the upstream untouched")
    is_(lr["body"], b"", "GET has no body upstream")
    payload = b'{"input":"embed me","model":"text-embedding-3-small"}'
    r = request("POST", h.url + "/v1/embeddings", body=payload, headers={"Content-Type": "application/json"})
    is_((r.status, m.last_request()["body"]), (200, payload), "POST /v1/embeddings body forwarded byte for byte")
    r = request("DELETE", h.url + "/v1/files/file-abc")
    is_((r.status, m.last_request()["method"], m.last_request()["path"]), (200, "DELETE", "/v1/files/file-abc"),
        "DELETE passthrough keeps method and path")
    r = request("GET", h.url + "/v1/models", headers={"x-mock-status": "404"})
    is_(r.status, 404, "upstream 404 on a passthrough path relayed")

    # --- bad input ---
    m.reset()
    r = request("POST", h.url + "/v1/chat/completions", body=b'{"model": "gpt-4o", "messages": [',
                headers={"Content-Type": "application/json"})
    is_(r.status, 400, "malformed JSON (openai) -> 400")
    j = r.json() or {}
    ok(isinstance(j.get("error"), dict) and isinstance(j["error"].get("message"), str) and "type" in j["error"],
       "openai error shape {error:{message,type}}")
    like(j.get("error", {}).get("message", ""), r"(?i)json", "error message says what was wrong")
    r = request("POST", h.url + "/v1/messages", body=b"{nope}", headers={"Content-Type": "application/json"})
    is_(r.status, 400, "malformed JSON (anthropic) -> 400")
    j = r.json() or {}
    ok(j.get("type") == "error" and isinstance(j.get("error"), dict) and j["error"].get("type")
       and j["error"].get("message"), "anthropic error shape {type:error,error:{type,message}}")
    for bad in (b"[1,2]", b'"a string"', b"42", b"null", b""):
        r = request("POST", h.url + "/v1/chat/completions", body=bad, headers={"Content-Type": "application/json"})
        is_(r.status, 400, "non-object body %r -> 400" % bad)
    r = request("POST", h.url + "/v1/messages", body=b'\xff\xfe{"a":1}', headers={"Content-Type": "application/json"})
    is_(r.status, 400, "invalid UTF-8 -> 400")
    is_(m.requests(), [], "rejected bodies never reach the upstream")
    r = post_json(h.url + "/v1/chat/completions", openai_body())
    is_(r.status, 200, "daemon keeps serving after bad input")

    r = request("GET", h.url + "/nope/at/all")
    is_(r.status, 404, "unknown non-/v1 path -> 404")
    ok((r.json() or {}).get("error", {}).get("message"), "404 body is JSON with error.message")
    like(r.header("content-type", ""), "application/json", "404 content-type is JSON")
    r = request("POST", h.url + "/v2/chat/completions", body=dumps(openai_body()))
    is_(r.status, 404, "a /v2 path is not proxied")

# --- provider choice: by route only; a client header never switches it ---
with Mock() as mo, Mock() as ma:
    conf = ("host 127.0.0.1\nport @PORT@\nworkers 2\nopenai_api_url %s\nanthropic_api_url %s/v1\n"
            % (mo.url, ma.url))
    with Headroomd(conf_text=conf, mock=mo) as h:
        def where(path, headers=None, method="GET", body=None):
            mo.reset()
            ma.reset()
            r = request(method, h.url + path, headers=headers, body=body)
            return r.status, len(mo.requests()), len(ma.requests())

        is_(where("/v1/models"), (200, 1, 0), "no provider headers -> openai upstream")
        is_(where("/v1/models", {"x-api-key": "k"}), (200, 1, 0), "x-api-key does not switch to the anthropic upstream")
        ok("x-api-key" not in dict(headers_of(mo.last_request())), "an Anthropic key is never sent to the OpenAI upstream")
        is_(where("/v1/models", {"anthropic-version": "2023-06-01"}), (200, 1, 0),
            "anthropic-version does not switch to the anthropic upstream")
        is_(where("/v1/files", {"anthropic-version": "2023-06-01", "Authorization": "Bearer sk-openai"}, method="POST",
                  body="{}"), (200, 1, 0), "an OpenAI key with Anthropic headers stays with OpenAI")
        is_(where("/v1/messages", method="POST", body=anthropic_body()), (200, 0, 1), "/v1/messages -> anthropic")
        is_(where("/v1/chat/completions", method="POST", body=openai_body()), (200, 1, 0), "/v1/chat/completions -> openai")
        ma.reset()
        request("POST", h.url + "/v1/messages/count_tokens?q=1", body=dumps(anthropic_body()),
                headers={"x-api-key": "k", "anthropic-version": "2023-06-01"})
        lr = ma.last_request()
        is_((lr["path"], lr["query"]) if lr else None, ("/v1/messages/count_tokens", "q=1"),
            "a base URL given with /v1 is not doubled")
        is_(dict(headers_of(lr)).get("x-api-key") if lr else None, "k", "x-api-key goes to the Anthropic upstream")
        st = h.stats()["requests"]["by_provider"]
        is_((st.get("openai"), st.get("anthropic")), (5, 2), "/stats by_provider follows the routing")

# A WebSocket upgrade headroomd does not relay (only /v1/responses has a
# WebSocket mode it relays: t/ws_relay_test.py) is refused, not forwarded as
# a plain GET.
with Mock() as m, Headroomd(mock=m) as h:
    m.reset()
    r = request("GET", h.url + "/v1/realtime", headers={"Connection": "Upgrade", "Upgrade": "websocket",
                                                         "Sec-WebSocket-Version": "13",
                                                         "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    is_(r.status, 501, "a WebSocket upgrade on /v1/realtime: 501")
    like((r.json() or {}).get("error", {}).get("message", ""), r"relays WebSockets only .*GET /v1/responses",
         "the error says where headroomd relays WebSockets")
    is_(m.requests(), [], "nothing reached the upstream")
    is_(h.stats()["requests"]["by_status"].get("501"), 1, "counted under 501 in /stats")
    is_(request("GET", h.url + "/v1/models").status, 200, "the next request is served")

done()
