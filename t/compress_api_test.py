#!/usr/bin/env python3
# compress_api_test.py — the compression service as gateway integrations call
# it: exactly what LiteLLM's Headroom guardrail sends to POST /v1/compress
# (messages + model, Bearer key, x-headroom-bypass) and what it checks in the
# answer; GET/POST /v1/retrieve in the reference Headroom server's shape; the
# marker's hash=<24 hex> text; SHA-256 content addresses; errors as JSON.
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403
import hashlib  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402

TOKEN = "hr-test-token-7f3a"
ROWS = [{"id": i, "level": "ERROR" if i in (17, 333) else "INFO", "service": "billing" if i % 7 else "auth",
         "msg": "request %d handled in %d ms by worker-%d" % (i, 10 + i % 90, i % 5)} for i in range(400)]
ROWS[333]["msg"] = "payment gateway timeout for invoice INV-4471"
TOOL_OUTPUT = json.dumps(ROWS)


def chat_messages():
    return [{"role": "user", "content": "Why did invoice INV-4471 fail?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "search_logs", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": TOOL_OUTPUT}]


def litellm_compress(url, messages, model, key=None, bypass=False):
    """What litellm/proxy/guardrails/guardrail_hooks/headroom sends, and its checks."""
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = "Bearer " + key
    if bypass:
        headers["x-headroom-bypass"] = "true"
    payload = {"messages": messages}
    if model:
        payload["model"] = model
    r = post_json(url + "/v1/compress", payload, headers=headers)
    body = r.json() if r.status == 200 else None
    usable = (r.status == 200 and isinstance(body, dict) and isinstance(body.get("messages"), list)
              and any(isinstance(m, dict) for m in body["messages"]))
    return r, body, usable


PLUGIN_DIR = os.environ.get("HEADROOM_TEST_PLUGIN_DIR")
CONF = ("api_token %s\n" % TOKEN + ("plugin_dir %s\n" % PLUGIN_DIR if PLUGIN_DIR else "")
        + "transform router {\n}\ntransform smart_crusher {\n}\n")

with Mock() as m, Headroomd(mock=m, extra_conf=CONF) as h:
    # --- authentication ---
    r, body, usable = litellm_compress(h.url, chat_messages(), "gpt-4o")
    is_(r.status, 401, "api_token set: no Authorization -> 401")
    ok(r.header("www-authenticate") == "Bearer" and "api_token" in r.text, "401 says what is needed")
    r, body, usable = litellm_compress(h.url, chat_messages(), "gpt-4o", key="wrong")
    is_(r.status, 401, "a wrong token -> 401")

    # --- the guardrail's call ---
    r, body, usable = litellm_compress(h.url, chat_messages(), "gpt-4o", key=TOKEN)
    is_(r.status, 200, "POST /v1/compress with the guardrail's payload and Bearer key -> 200")
    ok(usable, "the answer passes every check the guardrail makes (object, messages: non-empty list of objects)")
    body = body or {}
    for k in ("messages", "tokens_before", "tokens_after", "tokens_saved", "compression_ratio",
              "transforms_applied", "ccr_hashes"):
        ok(k in body, "reference field %s present" % k)
    is_(body.get("tokens_before", 0) - body.get("tokens_after", 0), body.get("tokens_saved"),
        "tokens_saved = before - after")
    cmp_ok(body.get("tokens_saved", 0), ">", 0, "the tool output was compressed")
    ok(abs(body.get("compression_ratio", 0) - body["tokens_after"] / body["tokens_before"]) < 1e-4,
       "compression_ratio = after / before (%s)" % body.get("compression_ratio"))
    ok(any(t.startswith("smart_crusher:") for t in body.get("transforms_applied", [])),
       "transforms_applied names the stage")
    tool = [x for x in body.get("messages", []) if x.get("role") == "tool"]
    content = tool[0]["content"] if tool else ""
    ok(len(content) < len(TOOL_OUTPUT) / 3, "the tool message is much shorter (%d -> %d chars)"
       % (len(TOOL_OUTPUT), len(content)))
    mm = re.search(r"hash=([0-9a-f]{24})", content)
    ok(mm, "the marker text carries hash=<24 hex>")
    hashes = body.get("ccr_hashes", [])
    ok(mm and hashes == [mm.group(1)], "ccr_hashes lists the marker's address")
    is_(hashes[0] if hashes else None, hashlib.sha256(TOOL_OUTPUT.encode()).hexdigest()[:24],
        "the address is the first 24 hex digits of the original's SHA-256")
    ok("INV-4471" in content, "the row the question needs survived")
    is_(body.get("messages", [None])[0], chat_messages()[0], "other messages untouched")
    ok(body.get("wire_format") == "openai_chat" and "stages" in body, "headroomd's own fields come alongside")

    # no model: the guardrail sends none when the request has none
    r, body2, usable = litellm_compress(h.url, chat_messages(), None, key=TOKEN)
    ok(r.status == 200 and usable, "no model: still 200 with messages")

    # bypass
    r, body3, usable = litellm_compress(h.url, chat_messages(), "gpt-4o", key=TOKEN, bypass=True)
    ok(r.status == 200 and (body3 or {}).get("messages") == chat_messages(), "x-headroom-bypass: true -> messages unchanged")
    is_(((body3 or {}).get("tokens_saved"), (body3 or {}).get("compression_ratio"), (body3 or {}).get("ccr_hashes")),
        (0, 1.0, []), "bypass: zeros, ratio 1.0, no hashes")

    # Anthropic and Responses shapes
    amsgs = [{"role": "user", "content": "Why did invoice INV-4471 fail?"},
             {"role": "assistant", "content": [{"type": "tool_use", "id": "tu_1", "name": "search_logs", "input": {}}]},
             {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu_1", "content": TOOL_OUTPUT}]}]
    r, ab, usable = litellm_compress(h.url, amsgs, "claude-sonnet-4-5", key=TOKEN)
    ok(r.status == 200 and usable and (ab or {}).get("wire_format") == "anthropic_messages"
       and ab.get("tokens_saved", 0) > 0, "Anthropic message shapes compressed too")
    r = post_json(h.url + "/v1/compress", {"model": "gpt-4o", "input": [
        {"type": "function_call", "call_id": "c1", "name": "search_logs", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": TOOL_OUTPUT}]},
        headers={"Authorization": "Bearer " + TOKEN})
    rb = r.json() if r.status == 200 else {}
    ok(rb.get("wire_format") == "openai_responses" and rb.get("tokens_saved", 0) > 0
       and isinstance(rb.get("messages"), list), "a Responses body: compressed, its input items as messages")

    # bad input
    r = request("POST", h.url + "/v1/compress", body=b"{not json", headers={"Authorization": "Bearer " + TOKEN})
    ok(r.status == 400 and "error" in r.json() and "message" in r.json()["error"], "bad JSON -> 400 with a JSON error")
    r = post_json(h.url + "/v1/compress", {"model": "gpt-4o"}, headers={"Authorization": "Bearer " + TOKEN})
    ok(r.status == 400 and "messages" in r.json()["error"]["message"], "no messages -> 400 naming the field")

    # --- retrieve ---
    addr = hashes[0] if hashes else "0" * 24
    auth = {"Authorization": "Bearer " + TOKEN}
    r = request("GET", h.url + "/v1/retrieve/" + addr)
    is_(r.status, 401, "GET /v1/retrieve needs the token too")
    st, got = get_json(h.url + "/v1/retrieve/" + addr, headers=auth)
    is_(st, 200, "GET /v1/retrieve/<hash>")
    got = got or {}
    for k in ("hash", "original_content", "original_tokens", "original_item_count", "compressed_item_count",
              "tool_name", "retrieval_count"):
        ok(k in got, "retrieve field %s present" % k)
    is_(got.get("original_content"), TOOL_OUTPUT, "original_content is the full original, byte for byte")
    is_(got.get("original_item_count"), 400, "original_item_count")
    ok(isinstance(got.get("compressed_item_count"), int) and 0 < got["compressed_item_count"] < 400,
       "compressed_item_count from the marker (%s)" % got.get("compressed_item_count"))
    is_(got.get("tool_name"), "search_logs", "tool_name")
    cmp_ok(got.get("original_tokens", 0), ">", 1000, "original_tokens counted")
    r = post_json(h.url + "/v1/retrieve", {"hash": addr, "query": "INV-4471 payment timeout"}, headers=auth)
    pb = r.json() if r.status == 200 else {}
    is_(r.status, 200, "POST /v1/retrieve {hash, query}")
    is_(pb.get("original_content"), TOOL_OUTPUT, "with a query the original is still whole")
    qm = pb.get("query_matches") or [{}]
    is_(qm[0].get("id"), 333, "query_matches: the row that ranks best by BM25 comes first")
    cmp_ok(pb.get("retrieval_count", 0), ">=", 2, "retrieval_count counts retrievals (%s)" % pb.get("retrieval_count"))
    st, got = get_json(h.url + "/v1/retrieve/" + addr + "?query=INV-4471", headers=auth)
    is_(((got or {}).get("query_matches") or [{}])[0].get("id"), 333, "GET ?query= ranks too")
    r = request("GET", h.url + "/v1/retrieve/" + "0" * 24, headers=auth)
    ok(r.status == 404 and r.json().get("error", {}).get("type") == "not_found", "unknown hash -> 404 with a JSON body")
    r = post_json(h.url + "/v1/retrieve", {"nohash": 1}, headers=auth)
    is_(r.status, 400, "POST /v1/retrieve without hash -> 400")
    r = request("GET", h.url + "/health")
    is_(r.status, 200, "the daemon keeps serving")

    # --- savings are credited only when the provider answered 2xx ---
    body = {"model": "gpt-4o", "messages": chat_messages()}
    r = post_json(h.url + "/v1/chat/completions", body, headers={"x-mock-status": "500"})
    st = h.stats()
    ok(r.status == 500 and r.header("x-headroom-tokens-saved") == "0" and st["tokens"]["saved"] == 0
       and st["savings_history"] == [], "a provider 500: no saving credited anywhere (header, /stats, history)")
    r = post_json(h.url + "/v1/chat/completions", body)
    st = h.stats()
    saved = int(r.header("x-headroom-tokens-saved", "0"))
    ok(r.status == 200 and saved > 0 and st["tokens"]["saved"] == saved, "a 200: the saving is credited (%d)" % saved)
    hist = st["savings_history"]
    ok(hist and hist[-1][1] == st["tokens"]["saved"], "savings_history has a point per saving: last = tokens.saved")
    cmp_ok(sum(st["router"]["content_types"].values()), ">", 0, "router counted units")
    r = request("POST", h.url + "/stats/reset")
    st = h.stats()
    is_((st["tokens"]["saved"], st["savings_history"]), (0, []), "reset: tokens and the history are emptied")
    rc = st["smart_crusher"]["result_cache"]
    is_((rc["hits"], rc["lookups"]), (0, 0), "reset: smart_crusher's result-cache counters are zeroed")
    ok(st["router"]["content_types"] and all(v == 0 for v in st["router"]["content_types"].values()),
       "reset: router's counts are zeroed")

# The text compressors' result caches (log, search, diff, html) count in
# /stats like smart_crusher's, and POST /stats/reset zeroes them the same way.
LOG = "\n".join("2026-12-07T10:%02d:%02d INFO worker-%d heartbeat ok, queue depth %d" % (i // 60, i % 60, i % 4, i % 9)
                 for i in range(600)) + "\n2026-12-07T10:10:00 ERROR payment gateway timeout for invoice INV-4471\n"
TEXT = ("plugin_dir %s\n" % PLUGIN_DIR if PLUGIN_DIR else "") + "transform router {\n}\ntransform log_compressor {\n}\n"
with Mock() as m, Headroomd(mock=m, extra_conf=TEXT) as h:
    msgs = chat_messages()
    msgs[-1]["content"] = LOG
    for _ in range(2):
        post_json(h.url + "/v1/chat/completions", {"model": "gpt-4o", "messages": msgs})
    rc = (h.stats().get("log_compressor") or {}).get("result_cache") or {}
    ok(rc.get("lookups", 0) >= 2 and rc.get("hits", 0) >= 1, "log_compressor's result cache counts (%s)" % rc)
    request("POST", h.url + "/stats/reset")
    rc = (h.stats().get("log_compressor") or {}).get("result_cache") or {}
    is_((rc.get("hits"), rc.get("lookups")), (0, 0), "reset: log_compressor's result-cache counters are zeroed")
    cmp_ok(rc.get("entries", 0), ">=", 1, "reset keeps what the cache holds (%s entries)" % rc.get("entries"))

done()
