#!/usr/bin/env python3
# wire_tour_test.py — agent-shaped traffic on each wire format through a
# headroomd running the shipped config, against t/mock-upstream (and, for
# the legacy Chat `functions` round trip, a small upstream of its own that
# answers with a `function_call`, as the API did before tools).
#
# Anthropic Messages as Claude Code sends it: system blocks with a
# cache_control breakpoint, thinking / redacted_thinking blocks, tool_results
# as a string, as text blocks (one carrying cache_control), with an image,
# is_error, a base64 PDF document and search_result blocks. Checked: what is
# compressed and what goes upstream as sent, block order and tool_use /
# tool_result pairing, headroom_retrieve in Anthropic's shape; an image or a
# PDF counts as Anthropic bills it (not as the text of its base64: a
# screenshot counted 300 000 tokens) and signatures as nothing, so a
# rate_limit_tpm far above the real traffic no longer refuses a turn that
# carries a screenshot.
# OpenAI Responses as Codex CLI sends it: reasoning items with
# encrypted_content (not counted), function_call_output as a string and as
# input_text / input_image parts (the image counted as OpenAI bills it).
# A Responses turn calling headroom_retrieve beside a custom tool goes to
# the client (a follow-up leaving the custom call unanswered was refused).
# Parallel calls: a turn calling headroom_retrieve beside the client's own
# tool reaches the client without the retrieve call (Chat, Anthropic,
# Responses), and the next turn is accepted by an upstream that checks
# call/result pairing and keeps stored responses and conversations as the
# APIs do (the stored call's output is added by headroomd), over HTTP and
# as a response.create on the Responses WebSocket. A model still calling
# headroom_retrieve alone after the 3 answered rounds: the client gets a
# finished turn without the call (Chat, Anthropic, Responses).
# Chat Completions: tool messages as text parts, parallel calls, legacy
# `function` messages compressed and headroom_retrieve offered in the
# legacy `functions` list (OpenAI refuses `tools` beside it) and answered;
# no headroom_retrieve for n > 1; a custom tool's output found by its name
# (protected_tools). Each: x-headroom-tokens-*, /stats and the request log
# agree.
# rolling_window counts a screenshot as the host does (a conversation that
# fits goes whole; over its budget its count is x-headroom-tokens-before),
# and a headroom_retrieve follow-up counts the thinking signature or
# encrypted_content it sends again as nothing.
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403
import base64  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import struct  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from ws_client import GUID, WS  # noqa: E402

rnd = random.Random(11)

# --------------------------------------------------------------------------
# realistic tool outputs
# --------------------------------------------------------------------------
LOG_LINES = []
for i in range(2000):
    t = "2026-12-05T08:%02d:%02d.%03dZ" % (i // 3600 % 60, i // 60 % 60, i % 1000)
    if i == 731:
        LOG_LINES.append(t + " ERROR payments-worker-3 charge ord-88412 failed: card_declined (stripe req_9f3a2c)")
    elif i % 97 == 0:
        LOG_LINES.append(t + " WARN http-%d slow request GET /api/v2/orders?page=%d took %dms" % (i % 8, i % 40, 900 + i % 300))
    else:
        LOG_LINES.append(t + " INFO http-%d GET /api/v2/orders/%d 200 %dms user=u%05d"
                         % (i % 8, 10000 + i * 7, 3 + i * 13 % 90, i * 31 % 99999))
LOG = "\n".join(LOG_LINES) + "\n"
ROWS = [{"package": "lib%s%d" % (rnd.choice(["ssl", "xml", "gtk", "z", "curl"]), i), "version": "1.%d.%d-%d" % (i % 7, i % 13, i % 3),
         "arch": "amd64", "installed_size_kb": 100 + i * 37 % 5000, "status": "install ok installed"} for i in range(500)]
ROWS[250]["status"] = "install ok half-configured"
ROWS[250]["error"] = "dpkg: error processing package lib250 (--configure): installed post-installation script returned 1"
JSON_ROWS = json.dumps(ROWS, indent=1)
DPKG = "\n".join("2025-06-24 14:%02d:%02d status %s lib%s%d:amd64 1.%d-%d" % (i // 60 % 60, i % 60,
                 ("unpacked", "half-configured", "installed")[i % 3], rnd.choice(["ssl", "xml", "gtk"]), i, i % 9, i % 4)
                 for i in range(2000)) + "\n"


def pdf(pages):
    """A small PDF of `pages` pages, each object written out (no object streams)."""
    objs = ["<< /Type /Catalog /Pages 2 0 R >>",
            "<< /Type /Pages /Kids [%s] /Count %d >>" % (" ".join("%d 0 R" % (3 + i) for i in range(pages)), pages)]
    objs += ["<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"] * pages
    out = "%PDF-1.4\n" + "".join("%d 0 obj\n%s\nendobj\n" % (i + 1, o) for i, o in enumerate(objs))
    return out + "trailer\n<< /Root 1 0 R >>\n%%EOF\n"


b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
SHOT = b64(png(1280, 800, noisy_rows=120, rnd=rnd))    # ~490 KB of base64: what a screenshot weighs
DOT = b64(png(1, 1))
PDF3, PDF1 = b64(pdf(3).encode()), b64(pdf(1).encode())
SIG = b64(bytes(rnd.getrandbits(8) for _ in range(1500)))  # a thinking signature's size
ENC = "gAAAAA" + b64(bytes(rnd.getrandbits(8) for _ in range(6000)))  # encrypted reasoning


def jbody(r):
    try:
        return json.loads(r.body)
    except (ValueError, TypeError):
        return None


def upstream_bodies(mock, path):
    return [json.loads(base64.b64decode(x["body_b64"])) for x in mock.requests() if x["path"] == path]


def tokens(r, name):
    v = r.header("x-headroom-tokens-" + name)
    return int(v) if v and v.isdigit() else None


def read_log(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except OSError:
        return []


def figures_agree(hd, r, log_path, stats_before, what):
    """x-headroom-tokens-* of r, the request log's line for it and the
    /stats delta are the same figures."""
    rid = r.header("x-headroom-request-id")
    line = wait_until(lambda: [x for x in read_log(log_path) if x.get("request_id") == rid], timeout=5)
    line = line[0] if line else {}
    st = hd.stats()["tokens"]
    got = (tokens(r, "before"), tokens(r, "after"), tokens(r, "saved"))
    is_((line.get("tokens_input"), line.get("tokens_sent"), line.get("tokens_saved")), got,
        what + ": the request log's tokens are the headers' %r" % (got,))
    is_((st["input"] - stats_before["input"], st["sent"] - stats_before["sent"]), got[:2],
        what + ": /stats counted the headers' tokens")


def anthropic_turn(shot, pdf_data, sig, redacted):
    """A Claude Code turn: the log, the package list, a screenshot, a PDF
    and search results came back from tools."""
    return {
        "model": "claude-sonnet-4-5-20250929", "max_tokens": 4096, "thinking": {"type": "enabled", "budget_tokens": 2048},
        "system": [{"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
                   {"type": "text", "text": "Working directory: /srv/app", "cache_control": {"type": "ephemeral"}}],
        "tools": [{"name": "Bash", "description": "Run a shell command",
                   "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}},
                  {"name": "Read", "description": "Read a file",
                   "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}}}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "<system-reminder>\nContext follows.\n</system-reminder>"},
                {"type": "text", "text": "Why did ord-88412 fail, and which package failed to configure?"}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Look at the log and the packages.", "signature": sig},
                {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {"command": "cat app.log"}},
                {"type": "tool_use", "id": "toolu_02", "name": "Bash", "input": {"command": "dpkg-query -W --json"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": LOG},
                {"type": "tool_result", "tool_use_id": "toolu_02", "content": [{"type": "text", "text": JSON_ROWS}]}]},
            {"role": "assistant", "content": [
                {"type": "redacted_thinking", "data": redacted},
                {"type": "tool_use", "id": "toolu_03", "name": "Read", "input": {"file_path": "screenshot.png"}},
                {"type": "tool_use", "id": "toolu_04", "name": "Bash", "input": {"command": "tail -2000 dpkg.log"}},
                {"type": "tool_use", "id": "toolu_05", "name": "WebSearch", "input": {"query": "dpkg half-configured"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_03", "content": [
                    {"type": "text", "text": "screenshot.png (1280x800)"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": shot}}]},
                {"type": "tool_result", "tool_use_id": "toolu_04", "is_error": True,
                 "content": [{"type": "text", "text": DPKG, "cache_control": {"type": "ephemeral"}}]},
                {"type": "tool_result", "tool_use_id": "toolu_05", "content": [
                    {"type": "search_result", "source": "https://example.org/dpkg", "title": "dpkg states",
                     "content": [{"type": "text", "text": "half-configured: the postinst failed. " * 60}],
                     "citations": {"enabled": True}}]},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": pdf_data},
                 "title": "runbook.pdf"},
                {"type": "text", "text": "The runbook is attached.", "cache_control": {"type": "ephemeral"}}]}]}


def blocks(body):
    return [[b.get("type") for b in m["content"]] if isinstance(m.get("content"), list) else "str"
            for m in body.get("messages", [])]


def text_of(content):
    return content if isinstance(content, str) else "".join(b.get("text", "") for b in content if isinstance(b, dict))


LOG_FILE = os.path.join(tempfile.mkdtemp(prefix="hr-wire-tour-"), "requests.jsonl")
CONF = shipped_conf_text(stage_budget_ms=5000) + "\nlog_file %s\n" % LOG_FILE

with Mock() as mock, Headroomd(conf_text=CONF, mock=mock) as hd:
    # ---------------------------------------------------------------- Anthropic
    sent = anthropic_turn(SHOT, PDF3, SIG, "EmwKAhgB" + ENC)
    st0 = hd.stats()["tokens"]
    r = post_json(hd.url + "/v1/messages", sent, headers={"x-api-key": "sk-ant-x", "anthropic-version": "2023-06-01"})
    is_(r.status, 200, "Anthropic: a Claude Code turn with a log, rows, a screenshot, a PDF and search results")
    up = (upstream_bodies(mock, "/v1/messages") or [{}])[-1]
    is_(blocks(up), blocks(sent), "Anthropic upstream: every turn's blocks in the order sent")
    uses = [b["id"] for m in up.get("messages", []) for b in m["content"] if b.get("type") == "tool_use"]
    results = [b["tool_use_id"] for m in up.get("messages", []) if m["role"] == "user"
               for b in m["content"] if b.get("type") == "tool_result"]
    is_(results, uses, "Anthropic upstream: each tool_use answered by its tool_result, in order")
    msgs = up.get("messages") or [{"content": [{}] * 6}] * 5
    is_(up.get("system"), sent["system"], "Anthropic upstream: system blocks and their cache_control as sent")
    is_([msgs[1]["content"][0], msgs[3]["content"][0]], [sent["messages"][1]["content"][0], sent["messages"][3]["content"][0]],
        "Anthropic upstream: thinking and redacted_thinking blocks as sent")
    r_log, r_rows = msgs[2]["content"][0], msgs[2]["content"][1]
    cmp_ok(len(text_of(r_log.get("content", LOG))), "<", len(LOG) // 20, "Anthropic: the string tool_result compressed")
    ok("ord-88412 failed" in text_of(r_log.get("content", "")), "Anthropic: with the error line the question is about")
    ok(isinstance(r_rows.get("content"), list) and "lib250" in text_of(r_rows["content"])
       and len(text_of(r_rows["content"])) < len(JSON_ROWS) // 10,
       "Anthropic: the text-block tool_result compressed, still a text block, the failed package kept")
    shot_res, dpkg_res, search_res = msgs[4]["content"][0], msgs[4]["content"][1], msgs[4]["content"][2]
    is_(shot_res, sent["messages"][4]["content"][0], "Anthropic: a tool_result with an image goes as sent")
    is_((dpkg_res.get("is_error"), dpkg_res["content"][0].get("cache_control")), (True, {"type": "ephemeral"}),
        "Anthropic: is_error and the text block's cache_control kept")
    cmp_ok(len(dpkg_res["content"][0].get("text", DPKG)), "<", len(DPKG) // 10, "Anthropic: that block's text compressed")
    is_([search_res] + msgs[4]["content"][3:], sent["messages"][4]["content"][2:],
        "Anthropic: search_result tool_result, document and the marked text block as sent")
    tools = up.get("tools") or []
    is_(sorted(tools[-1].keys()) if tools else None, ["description", "input_schema", "name"],
        "Anthropic: headroom_retrieve offered in Anthropic's tool shape")
    is_(tools[-1].get("name") if tools else None, "headroom_retrieve", "... named headroom_retrieve")
    figures_agree(hd, r, LOG_FILE, st0, "Anthropic")

    # An image, a PDF, signatures and redacted thinking count as Anthropic
    # bills them: the screenshot's 1280x800 / 750 = 1366 (a 1x1 image: 1),
    # 1,500 a PDF page, the opaque strings nothing.
    small = post_json(hd.url + "/v1/messages", anthropic_turn(DOT, PDF1, "", ""), headers={"x-api-key": "sk-ant-x"})
    big = tokens(r, "before")
    is_((big or 0) - (tokens(small, "before") or 0), (1366 - 1) + 2 * 1500,
        "Anthropic: the screenshot counts 1366 tokens, the 3-page PDF 4500, signatures 0 (%s and %s before)"
        % (big, tokens(small, "before")))

    # headroom_retrieve answered by headroomd: the follow-up pairs the call
    mock.reset()
    h = marker_hash(text_of(r_log.get("content", "")))
    r2 = post_json(hd.url + "/v1/messages", sent, headers={"x-api-key": "sk-ant-x", "x-mock-tool-call": "headroom_retrieve",
                                                         "x-mock-tool-args": json.dumps({"hash": h, "query": "ord-88412"})})
    ups = upstream_bodies(mock, "/v1/messages")
    last = ups[-1]["messages"][-2:] if len(ups) == 2 else [{"content": [{}]}] * 2
    ok(r2.status == 200 and "tool result of" in json.dumps(jbody(r2)) and "headroom_retrieve" not in r2.body.decode(),
       "Anthropic: the model's headroom_retrieve call answered by headroomd; the client sees the answer only")
    is_((last[0]["content"][0].get("id"), last[1]["content"][0].get("tool_use_id")),
        (last[0]["content"][0].get("id") or "-", last[0]["content"][0].get("id") or "-"),
        "Anthropic: the follow-up's tool_result answers the call's tool_use id")
    like(text_of(last[1]["content"][0].get("content", "")), r"L732: .*ord-88412 failed",
         "Anthropic: with the line the query asked for")

    # ---------------------------------------------------------------- Responses
    def codex_turn(image, enc):
        return {"model": "gpt-5-codex", "instructions": "You are Codex, a coding agent.", "store": False,
                "reasoning": {"effort": "medium"}, "include": ["reasoning.encrypted_content"],
                "input": [
                    {"type": "message", "role": "user", "content": [
                        {"type": "input_text", "text": "Why did ord-88412 fail? Which package failed to configure?"}]},
                    {"type": "reasoning", "id": "rs_01", "summary": [], "encrypted_content": enc},
                    {"type": "function_call", "id": "fc_01", "name": "shell", "call_id": "call_A",
                     "arguments": json.dumps({"command": ["cat", "app.log"]})},
                    {"type": "function_call_output", "call_id": "call_A", "output": LOG},
                    {"type": "function_call", "id": "fc_02", "name": "inspect", "call_id": "call_B", "arguments": "{}"},
                    {"type": "function_call_output", "call_id": "call_B", "output": [
                        {"type": "input_text", "text": JSON_ROWS},
                        {"type": "input_image", "image_url": "data:image/png;base64," + image, "detail": "auto"}]}],
                "tools": [{"type": "function", "name": "shell", "parameters": {"type": "object", "properties": {}}},
                          {"type": "function", "name": "inspect", "parameters": {"type": "object", "properties": {}}}]}
    mock.reset()
    sent = codex_turn(SHOT, ENC)
    st0 = hd.stats()["tokens"]
    r = post_json(hd.url + "/v1/responses", sent, headers={"authorization": "Bearer sk-x"})
    is_(r.status, 200, "Responses: a Codex turn with reasoning, a log, rows and a screenshot")
    up = (upstream_bodies(mock, "/v1/responses") or [{}])[-1]
    items = up.get("input") or [{}] * 6
    is_([it.get("type") for it in items], [it["type"] for it in sent["input"]], "Responses upstream: the items in order")
    is_(items[:3] + [items[4]], sent["input"][:3] + [sent["input"][4]],
        "Responses upstream: message, reasoning (encrypted_content) and function_call items as sent")
    ok(isinstance(items[3].get("output"), str) and "ord-88412 failed" in items[3]["output"]
       and len(items[3]["output"]) < len(LOG) // 20, "Responses: the string output compressed, the error line kept")
    parts = items[5].get("output") or [{}, {}]
    ok(len(parts) == 2 and "lib250" in parts[0].get("text", "") and len(parts[0].get("text", JSON_ROWS)) < len(JSON_ROWS) // 10
       and parts[1] == sent["input"][5]["output"][1], "Responses: the input_text part compressed, the input_image as sent")
    is_(sorted(t.get("name") for t in up.get("tools", [])), ["headroom_retrieve", "inspect", "shell"],
        "Responses: headroom_retrieve offered")
    figures_agree(hd, r, LOG_FILE, st0, "Responses")
    small = post_json(hd.url + "/v1/responses", codex_turn(DOT, ""), headers={"authorization": "Bearer sk-x"})
    # OpenAI's tiles: 1280x800 -> 1228x768 -> 3x2 tiles -> 85 + 170*6 = 1105;
    # a 1x1 image one tile, 255; encrypted_content nothing.
    is_((tokens(r, "before") or 0) - (tokens(small, "before") or 0), 1105 - 255,
        "Responses: the screenshot counts 1105 tokens, encrypted reasoning 0 (%s and %s before)"
        % (tokens(r, "before"), tokens(small, "before")))

    # ---------------------------------------------------------------- Chat
    def chat_turn(image, **extra):
        b = {"model": "gpt-4o", "messages": [
            {"role": "system", "content": "You are an SRE agent."},
            {"role": "user", "content": [{"type": "text", "text": "Why did ord-88412 fail? What does the dashboard show?"},
                                         {"type": "image_url", "image_url": {"url": "data:image/png;base64," + image}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "read_logs", "arguments": "{}"}},
                {"id": "call_2", "type": "function", "function": {"name": "list_packages", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": LOG},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": JSON_ROWS}]}],
            "tools": [{"type": "function", "function": {"name": n, "parameters": {"type": "object", "properties": {}}}}
                      for n in ("list_packages", "read_logs")]}
        b.update(extra)
        return b
    mock.reset()
    st0 = hd.stats()["tokens"]
    sent = chat_turn(SHOT)
    r = post_json(hd.url + "/v1/chat/completions", sent, headers={"authorization": "Bearer sk-x"})
    up = (upstream_bodies(mock, "/v1/chat/completions") or [{}])[-1]
    m = up.get("messages") or [{}] * 5
    ok(r.status == 200 and "ord-88412 failed" in m[3].get("content", "") and len(m[3].get("content", LOG)) < len(LOG) // 20,
       "Chat: parallel calls' string output compressed, the error line kept")
    ok(isinstance(m[4].get("content"), list) and "lib250" in text_of(m[4]["content"])
       and len(text_of(m[4]["content"])) < len(JSON_ROWS) // 10, "Chat: the text-part output compressed")
    is_(m[:3], sent["messages"][:3], "Chat upstream: system, user (with its image) and the calls as sent")
    figures_agree(hd, r, LOG_FILE, st0, "Chat")
    small = post_json(hd.url + "/v1/chat/completions", chat_turn(DOT), headers={"authorization": "Bearer sk-x"})
    is_((tokens(r, "before") or 0) - (tokens(small, "before") or 0), 1105 - 255,
        "Chat: the image_url part counts 1105 tokens (%s and %s before)" % (tokens(r, "before"), tokens(small, "before")))

    # n > 1: one choice's calls cannot be answered for all, so no tool is offered
    mock.reset()
    post_json(hd.url + "/v1/chat/completions", chat_turn(DOT, n=2), headers={"authorization": "Bearer sk-x"})
    up = (upstream_bodies(mock, "/v1/chat/completions") or [{}])[-1]
    is_([t["function"]["name"] for t in up.get("tools", [])], ["list_packages", "read_logs"],
        "Chat n=2: outputs compressed but no headroom_retrieve offered")

    # stream_options.include_usage: the usage chunk is read
    st0 = hd.stats()["tokens"]
    r = stream(hd.url + "/v1/chat/completions", dict(chat_turn(DOT), stream=True, stream_options={"include_usage": True}),
               headers={"authorization": "Bearer sk-x"})
    chunks = sse_data_json(r.body)
    ok(chunks and chunks[-1].get("usage") and tokens(r, "before"), "Chat stream: the usage chunk relayed")
    line = wait_until(lambda: [x for x in read_log(LOG_FILE) if x.get("request_id") == r.header("x-headroom-request-id")])
    is_(line[0]["tokens_output"] if line else None, chunks[-1]["usage"]["completion_tokens"] if chunks else -1,
        "Chat stream: the request log has the stream's completion tokens")

    # A custom tool's output is found by the tool's name: a protected tool
    # (Read) stays whole.
    mock.reset()
    b = {"model": "gpt-5", "messages": [
        {"role": "user", "content": "Edit app.log's rotation."},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_c", "type": "custom", "custom": {"name": "Read", "input": "app.log"}}]},
        {"role": "tool", "tool_call_id": "call_c", "content": LOG}]}
    post_json(hd.url + "/v1/chat/completions", b, headers={"authorization": "Bearer sk-x"})
    up = (upstream_bodies(mock, "/v1/chat/completions") or [{}])[-1]
    is_(len((up.get("messages") or [{}] * 3)[2].get("content", "")), len(LOG),
        "Chat: the output of custom tool Read (protected_tools) goes whole")

# ---------------------------------------------------------------- legacy functions
# An upstream that speaks the legacy API: refuses `tools` beside `functions`
# (as OpenAI does), calls headroom_retrieve through `function_call` when it
# is offered, then answers the function message.
seen = []


def send_answer(handler, status, text, ctype="application/json"):
    """How the upstreams of this test answer."""
    data = text.encode()
    handler.send_response(status)
    for k, v in (("content-type", ctype), ("content-length", str(len(data)))):
        handler.send_header(k, v)
    handler.end_headers()
    handler.wfile.write(data)


class Legacy(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        seen.append(body)
        msgs = body.get("messages", [])
        if self.path == "/v1/responses":
            out, status = self.responses_turn(body)
        elif "functions" in body and "tools" in body:
            out, status = {"error": {"message": "Invalid request: 'functions' and 'tools' cannot both be provided. "
                                     "'functions' are deprecated; use the 'tools' parameter instead.",
                                     "type": "invalid_request_error", "param": None, "code": None}}, 400
        else:
            status, last = 200, msgs[-1] if msgs else {}
            if last.get("role") == "function" and last.get("name") == "headroom_retrieve":
                msg = {"role": "assistant", "content": "retrieved: " + last["content"][:300]}
            elif any(f.get("name") == "headroom_retrieve" for f in body.get("functions", [])):
                h = marker_hash(json.dumps(msgs))
                msg = {"role": "assistant", "content": None, "function_call": {
                    "name": "headroom_retrieve", "arguments": json.dumps({"hash": h, "query": "ord-88412"})}}
            else:
                msg = {"role": "assistant", "content": "no retrieve"}
            out = {"id": "chatcmpl-legacy", "object": "chat.completion", "created": 1700000000, "model": body["model"],
                   "choices": [{"index": 0, "message": msg, "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": len(json.dumps(body)) // 4, "completion_tokens": 5, "total_tokens": 0}}
        send_answer(self, status, json.dumps(out))


    def responses_turn(self, body):
        """A Responses turn that calls headroom_retrieve beside a custom tool
        (apply_patch) the client runs; a follow-up leaving a call without its
        output is refused, as the API does."""
        items = body.get("input", [])
        answered = {it.get("call_id") for it in items if it.get("type", "").endswith("_output")}
        for it in items:
            if it.get("type") in ("function_call", "custom_tool_call") and it.get("call_id") not in answered:
                return {"error": {"message": "No tool output found for %s call %s."
                                  % (it["type"].replace("_call", "").replace("_", " "), it["call_id"]),
                                  "type": "invalid_request_error", "param": "input", "code": None}}, 400
        h = marker_hash(json.dumps(items))
        output = [{"type": "function_call", "id": "fc_1", "call_id": "call_hr", "name": "headroom_retrieve",
                   "arguments": json.dumps({"hash": h}), "status": "completed"},
                  {"type": "custom_tool_call", "id": "ctc_1", "call_id": "call_patch", "name": "apply_patch",
                   "input": "*** Begin Patch\n*** End Patch", "status": "completed"}]
        return {"id": "resp_1", "object": "response", "status": "completed", "model": body["model"], "output": output,
                "tools": body.get("tools", []), "usage": {"input_tokens": 100, "output_tokens": 10}}, 200


srv = ThreadingHTTPServer(("127.0.0.1", 0), Legacy)
threading.Thread(target=srv.serve_forever, daemon=True).start()
legacy_conf = shipped_conf_text(stage_budget_ms=5000).replace("@MOCK_URL@", "http://127.0.0.1:%d" % srv.server_port)
with Headroomd(conf_text=legacy_conf) as hd:
    b = {"model": "gpt-4o", "functions": [{"name": "fetch_log", "parameters": {"type": "object", "properties": {}}}],
         "messages": [{"role": "user", "content": "Why did ord-88412 fail?"},
                      {"role": "assistant", "content": None, "function_call": {"name": "fetch_log", "arguments": "{}"}},
                      {"role": "function", "name": "fetch_log", "content": LOG}]}
    r = post_json(hd.url + "/v1/chat/completions", b, headers={"authorization": "Bearer sk-x"})
    first = seen[0] if seen else {}
    fm = (first.get("messages") or [{}] * 3)[2]
    ok(len(fm.get("content", LOG)) < len(LOG) // 20 and "ord-88412 failed" in fm.get("content", ""),
       "legacy Chat: a `function` message's output compressed (%d -> %d bytes), the error line kept"
       % (len(LOG), len(fm.get("content", LOG))))
    is_(("tools" in first, [f.get("name") for f in first.get("functions", [])]), (False, ["fetch_log", "headroom_retrieve"]),
        "legacy Chat: headroom_retrieve offered in `functions`, no `tools` beside it")
    reply = jbody(r) or {}
    content = ((reply.get("choices") or [{}])[0].get("message") or {}).get("content") or ""
    ok(r.status == 200 and content.startswith("retrieved: ") and "L732" in content,
       "legacy Chat: the model's function_call answered by headroomd, the client gets the final answer: %r" % content[:80])
    last = (seen[-1].get("messages") or [{}])[-2:] if len(seen) == 2 else [{}, {}]
    is_((last[0].get("function_call", {}).get("name"), last[1].get("role"), last[1].get("name")),
        ("headroom_retrieve", "function", "headroom_retrieve"),
        "legacy Chat: the follow-up carries the call and a `function` message answering it")

    # Responses: headroom_retrieve called beside a custom tool the client
    # runs. headroomd cannot answer the turn: it goes to the client with the
    # client's call alone (it answered the retrieve call and asked again, and
    # the API refused the follow-up that left apply_patch unanswered: 400;
    # then it went with both calls). The next turn: "parallel calls" below.
    del seen[:]
    b = {"model": "gpt-5", "input": [
        {"role": "user", "content": "Fix the failing order charge."},
        {"type": "function_call", "name": "shell", "call_id": "call_A", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_A", "output": LOG}],
        "tools": [{"type": "function", "name": "shell", "parameters": {"type": "object", "properties": {}}},
                  {"type": "custom", "name": "apply_patch"}]}
    r = post_json(hd.url + "/v1/responses", b, headers={"authorization": "Bearer sk-x"})
    reply = jbody(r) or {}
    is_((r.status, [it.get("type") for it in reply.get("output", [])], len(seen)),
        (200, ["custom_tool_call"], 1),
        "Responses: headroom_retrieve beside a custom tool call: the turn goes to the client, no follow-up")
srv.shutdown()

# ---------------------------------------------------------------- parallel calls
# The model calls headroom_retrieve in the same turn as one of the client's
# own tools (parallel tool calls). headroomd cannot answer that turn (the
# client's call needs the client), and the client must not meet a tool it
# never defined (the OpenAI Agents SDK raises ModelBehaviorError, Claude Code
# answers "No such tool available"): the retrieve calls are taken out of the
# answer. The next turn must still be one the API accepts: this upstream
# checks pairing as the APIs do, and keeps Responses (store, conversation)
# as the API does, so a request continuing from a stored response that holds
# an unanswered call is refused ("No tool output found for function call").
par_seen = []
stored, convs = {}, {}


class Parallel(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        par_seen.append((self.path, body))
        offered = any((t.get("function") or t).get("name") == "headroom_retrieve" for t in body.get("tools", []))
        if self.path == "/v1/chat/completions":
            out, status = self.chat_turn(body, offered)
        elif self.path == "/v1/messages":
            out, status = self.messages_turn(body, offered)
        else:
            out, status = self.responses_turn(body, offered)
        if status == 200 and body.get("stream"):
            data = "".join("event: %s\ndata: %s\n\n" % (t, json.dumps({"type": t, "response": dict(out, status=s)}))
                           for t, s in (("response.created", "in_progress"), ("response.completed", "completed")))
            ctype = "text/event-stream"
        else:
            data, ctype = json.dumps(out), "application/json"
        send_answer(self, status, data, ctype)

    def do_GET(self):
        """The Responses API's WebSocket mode (Codex): each response.create
        is a turn as a POST's, answered by events; a refused one by an
        error event with its status, as the API sends it."""
        key = self.headers.get("sec-websocket-key", "")
        self.send_response(101)
        for k, v in (("Upgrade", "websocket"), ("Connection", "Upgrade"),
                     ("Sec-WebSocket-Accept", base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode())):
            self.send_header(k, v)
        self.end_headers()
        self.close_connection = True

        def send(opcode, data):
            n = len(data)
            head = bytes([0x80 | opcode]) + (bytes([n]) if n < 126 else bytes([126]) + struct.pack(">H", n)
                                             if n < 65536 else bytes([127]) + struct.pack(">Q", n))
            self.wfile.write(head + data)
        while True:
            b0, b1 = self.rfile.read(2)
            n = b1 & 0x7F
            n = struct.unpack(">H", self.rfile.read(2))[0] if n == 126 else \
                struct.unpack(">Q", self.rfile.read(8))[0] if n == 127 else n
            mask = self.rfile.read(4) if b1 & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i & 3] for i, b in enumerate(self.rfile.read(n)))
            if b0 & 0x0F == 0x8:
                send(0x8, data[:2])
                return
            body = json.loads(data)
            par_seen.append(("ws", body))
            offered = any(t.get("name") == "headroom_retrieve" for t in body.get("tools", []))
            out, status = self.responses_turn(body, offered)
            if status != 200:
                send(0x1, json.dumps({"type": "error", "status": status, "error": out["error"]}).encode())
                continue
            for t, st in (("response.created", "in_progress"), ("response.completed", "completed")):
                send(0x1, json.dumps({"type": t, "response": dict(out, status=st)}).encode())

    def chat_turn(self, body, offered):
        msgs = body["messages"]
        for i, m in enumerate(msgs):
            answered = set()
            for n in msgs[i + 1:]:
                if n.get("role") != "tool":
                    break
                answered.add(n.get("tool_call_id"))
            missing = [c["id"] for c in m.get("tool_calls") or [] if c["id"] not in answered]
            if m.get("role") == "assistant" and missing:
                return {"error": {"message": "An assistant message with 'tool_calls' must be followed by tool messages "
                                  "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                                  "response messages: " + ", ".join(missing), "type": "invalid_request_error",
                                  "param": "messages.[%d].role" % (i + 1), "code": None}}, 400
        finish = "tool_calls"
        say = self.headers.get("x-say")  # text the model writes beside its call
        if any(m.get("content") == "Keep reading." for m in msgs) and offered:  # calls it every time
            msg = {"role": "assistant", "content": say, "tool_calls": [
                {"id": "call_hr_%d" % len(msgs), "type": "function", "function": {
                    "name": "headroom_retrieve", "arguments": json.dumps({"hash": marker_hash(json.dumps(msgs))})}}]}
        elif msgs[-1].get("tool_call_id") == "call_tests":
            msg, finish = {"role": "assistant", "content": "tests pass"}, "stop"
        elif offered:
            msg = {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_hr", "type": "function", "index": 0, "function": {
                    "name": "headroom_retrieve", "arguments": json.dumps({"hash": marker_hash(json.dumps(msgs))})}},
                {"id": "call_tests", "type": "function", "index": 1,
                 "function": {"name": "run_tests", "arguments": "{}"}}]}
        else:
            msg, finish = {"role": "assistant", "content": "no retrieve"}, "stop"
        return {"id": "chatcmpl-par", "object": "chat.completion", "created": 1700000000, "model": body["model"],
                "choices": [{"index": 0, "message": msg, "finish_reason": finish}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105}}, 200

    def messages_turn(self, body, offered):
        msgs = body["messages"]
        for i, m in enumerate(msgs):
            uses = [b["id"] for b in m["content"] if b.get("type") == "tool_use"] if isinstance(m["content"], list) else []
            nxt = msgs[i + 1]["content"] if i + 1 < len(msgs) else []
            results = {b.get("tool_use_id") for b in nxt if isinstance(b, dict)} if isinstance(nxt, list) else set()
            missing = [u for u in uses if u not in results]
            if missing:
                return {"type": "error", "error": {"type": "invalid_request_error", "message": "messages.%d: "
                        "`tool_use` ids were found without `tool_result` blocks immediately after: %s. Each "
                        "`tool_use` block must have a corresponding `tool_result` block in the next message."
                        % (i + 1, ", ".join(missing))}}, 400
        last = msgs[-1]["content"]
        stop = "tool_use"
        say = self.headers.get("x-say")
        if offered and any(m["content"] == "Keep reading." or isinstance(m["content"], list) and any(
                isinstance(b, dict) and b.get("text") == "Keep reading." for b in m["content"]) for m in msgs):
            content = ([{"type": "thinking", "thinking": "Read more.", "signature": "c2ln"}]
                       + ([{"type": "text", "text": say}] if say else [])
                       + [{"type": "tool_use", "id": "toolu_hr_%d" % len(msgs), "name": "headroom_retrieve",
                           "input": {"hash": marker_hash(json.dumps(msgs))}}])
        elif isinstance(last, list) and last[-1].get("tool_use_id") == "toolu_bash":
            content, stop = [{"type": "text", "text": "tests pass"}], "end_turn"
        elif offered:
            content = [{"type": "text", "text": "Let me read the whole log and run the tests."},
                       {"type": "tool_use", "id": "toolu_hr", "name": "headroom_retrieve",
                        "input": {"hash": marker_hash(json.dumps(msgs))}},
                       {"type": "tool_use", "id": "toolu_bash", "name": "Bash", "input": {"command": "make test"}}]
        else:
            content, stop = [{"type": "text", "text": "no retrieve"}], "end_turn"
        return {"id": "msg_par", "type": "message", "role": "assistant", "model": body["model"], "content": content,
                "stop_reason": stop, "stop_sequence": None, "usage": {"input_tokens": 100, "output_tokens": 5}}, 200

    def responses_turn(self, body, offered):
        prev, conv = body.get("previous_response_id"), body.get("conversation")
        conv = conv.get("id") if isinstance(conv, dict) else conv
        if prev and prev not in stored:
            return {"error": {"message": "Previous response with id '%s' not found." % prev,
                              "type": "invalid_request_error", "param": "previous_response_id",
                              "code": "previous_response_not_found"}}, 400
        inp = body.get("input", [])
        inp = [{"role": "user", "content": inp}] if isinstance(inp, str) else inp
        items = list(stored.get(prev, [])) + list(convs.get(conv, [])) + inp
        outs = [it.get("call_id") for it in items if it.get("type", "").endswith("_output")]
        for it in items:
            if it.get("type") in ("function_call", "custom_tool_call") and it["call_id"] not in outs:
                return {"error": {"message": "No tool output found for %s call %s."
                                  % (it["type"].replace("_call", "").replace("_", " "), it["call_id"]),
                                  "type": "invalid_request_error", "param": "input", "code": None}}, 400
        ids = [it["id"] for it in items if it.get("id")]
        dup = [i for i in ids if ids.count(i) > 1]
        if dup:
            return {"error": {"message": "Duplicate item found with id %s. Remove duplicate items from your input "
                              "and try again." % dup[0], "type": "invalid_request_error", "param": "input",
                              "code": None}}, 400
        dup = [c for c in outs if outs.count(c) > 1]
        if dup:  # this upstream's own rule: one output per call
            return {"error": {"message": "Duplicate output for call %s." % dup[0], "type": "invalid_request_error",
                              "param": "input", "code": None}}, 400
        n = len(stored) + 1
        last = items[-1] if items else {}
        only_read = any(it.get("content") == "Only read the log." for it in items)
        if any(it.get("content") == "Keep reading." for it in items) and offered:
            output = [{"type": "reasoning", "id": "rs_%d" % n, "summary": []},
                      {"type": "function_call", "id": "fc_%d" % n, "call_id": "call_hr_%d" % n,
                       "name": "headroom_retrieve", "arguments": json.dumps({"hash": marker_hash(json.dumps(items))}),
                       "status": "completed"}]
        elif only_read and last.get("type") == "function_call_output" and last["call_id"].startswith("call_hr"):
            output = [{"type": "message", "id": "msg_%d" % n, "role": "assistant", "status": "completed",
                       "content": [{"type": "output_text", "text": "read %d bytes" % len(last["output"]),
                                    "annotations": []}]}]
        elif only_read and offered:
            output = [{"type": "function_call", "id": "fc_%d" % n, "call_id": "call_hr_%d" % n,
                       "name": "headroom_retrieve", "arguments": json.dumps({"hash": marker_hash(json.dumps(items))}),
                       "status": "completed"}]
        elif last.get("type") == "custom_tool_call_output":
            output = [{"type": "message", "id": "msg_%d" % n, "role": "assistant", "status": "completed",
                       "content": [{"type": "output_text", "text": "patched", "annotations": []}]}]
        elif offered:
            output = [{"type": "function_call", "id": "fc_%d" % n, "call_id": "call_hr_%d" % n,
                       "name": "headroom_retrieve", "arguments": json.dumps({"hash": marker_hash(json.dumps(items))}),
                       "status": "completed"},
                      {"type": "custom_tool_call", "id": "ctc_%d" % n, "call_id": "call_patch_%d" % n,
                       "name": "apply_patch", "input": "*** Begin Patch\n*** End Patch", "status": "completed"}]
        else:
            output = [{"type": "message", "id": "msg_%d" % n, "role": "assistant", "status": "completed",
                       "content": [{"type": "output_text", "text": "ok", "annotations": []}]}]
        rid = "resp_par%d" % n
        if body.get("store") is not False:
            stored[rid] = items + output
        else:
            stored[rid + "-unstored"] = []
        if conv:
            convs[conv] = items + output
        return {"id": rid, "object": "response", "status": "completed", "model": body["model"], "output": output,
                "previous_response_id": prev, "tools": body.get("tools", []),
                "usage": {"input_tokens": 100, "output_tokens": 10, "total_tokens": 110}}, 200


def par_bodies(path):
    return [b for p, b in par_seen if p == path]


psrv = ThreadingHTTPServer(("127.0.0.1", 0), Parallel)
threading.Thread(target=psrv.serve_forever, daemon=True).start()
par_conf = shipped_conf_text(stage_budget_ms=5000).replace("@MOCK_URL@", "http://127.0.0.1:%d" % psrv.server_port)
with Headroomd(conf_text=par_conf) as hd:
    auth = {"authorization": "Bearer sk-x"}
    # Chat Completions (the Agents SDK's Runner.run, LangChain's invoke).
    chat = {"model": "gpt-4o", "messages": [
        {"role": "user", "content": "Why do the order tests fail?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_A", "type": "function", "function": {"name": "fetch_log", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_A", "content": LOG}],
        "tools": [{"type": "function", "function": {"name": n, "parameters": {"type": "object", "properties": {}}}}
                  for n in ("fetch_log", "run_tests")]}
    r = post_json(hd.url + "/v1/chat/completions", chat, headers=auth)
    choice = ((jbody(r) or {}).get("choices") or [{}])[0]
    up = par_bodies("/v1/chat/completions")
    is_((r.status, choice.get("message", {}).get("tool_calls"), choice.get("finish_reason"), len(up)),
        (200, [{"id": "call_tests", "type": "function", "index": 0, "function": {"name": "run_tests", "arguments": "{}"}}],
         "tool_calls", 1),
        "Chat: headroom_retrieve called beside run_tests: the client gets run_tests alone (index 0, its id), "
        "finish_reason tool_calls, one upstream request")
    ok("headroom_retrieve" in json.dumps(up[:1]) and "headroom_retrieve" not in r.body.decode(),
       "Chat: the tool was offered upstream; the client's answer never names it")
    nxt = dict(chat, messages=chat["messages"] + [choice.get("message", {}),
                                                  {"role": "tool", "tool_call_id": "call_tests", "content": "42 passed"}])
    r = post_json(hd.url + "/v1/chat/completions", nxt, headers=auth)
    is_((r.status, ((jbody(r) or {}).get("choices") or [{}])[0].get("message", {}).get("content")), (200, "tests pass"),
        "Chat: the next turn, with the assistant message as the client got it, is accepted")

    # Anthropic Messages, not streamed (an SDK's messages.create).
    ant = {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": [
        {"role": "user", "content": "Why do the order tests fail?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_A", "name": "Bash", "input": {"command": "cat app.log"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_A", "content": LOG}]}],
        "tools": [{"name": "Bash", "input_schema": {"type": "object", "properties": {}}}]}
    ah = {"x-api-key": "sk-ant-x", "anthropic-version": "2023-06-01"}
    r = post_json(hd.url + "/v1/messages", ant, headers=ah)
    reply = jbody(r) or {}
    is_((r.status, [(b.get("type"), b.get("id")) for b in reply.get("content", [])], reply.get("stop_reason"),
         len(par_bodies("/v1/messages"))),
        (200, [("text", None), ("tool_use", "toolu_bash")], "tool_use", 1),
        "Anthropic: headroom_retrieve called beside Bash: the client gets the text and Bash's tool_use, "
        "stop_reason tool_use, one upstream request")
    nxt = dict(ant, messages=ant["messages"] + [
        {"role": "assistant", "content": reply.get("content", [])},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_bash", "content": "42 passed"}]}])
    r = post_json(hd.url + "/v1/messages", nxt, headers=ah)
    is_((r.status, [b.get("text") for b in (jbody(r) or {}).get("content", [])]), (200, ["tests pass"]),
        "Anthropic: the next turn, with the assistant turn as the client got it, is accepted")

    # Responses with previous_response_id (store defaults to true): the
    # provider keeps the call the client never saw.
    resp = {"model": "gpt-5", "input": [
        {"role": "user", "content": "Fix the failing order charge."},
        {"type": "function_call", "name": "shell", "call_id": "call_A", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_A", "output": LOG}],
        "tools": [{"type": "function", "name": "shell", "parameters": {"type": "object", "properties": {}}},
                  {"type": "custom", "name": "apply_patch"}]}
    r = post_json(hd.url + "/v1/responses", resp, headers=auth)
    reply = jbody(r) or {}
    out = reply.get("output", [])
    patch_id = (out[0] if out else {}).get("call_id")
    is_((r.status, [it.get("type") for it in out], sorted(t.get("name") for t in reply.get("tools", []))),
        (200, ["custom_tool_call"], ["apply_patch", "shell"]),
        "Responses: headroom_retrieve called beside apply_patch: the client gets apply_patch alone, and its own tools")
    cont = {"model": "gpt-5", "previous_response_id": reply.get("id"), "tools": resp["tools"],
            "input": [{"type": "custom_tool_call_output", "call_id": patch_id, "output": "Done!"}]}
    before = post_json(hd.url + "/v1/compress", cont).json()["tokens_before"]
    del par_seen[:]
    r = post_json(hd.url + "/v1/responses", cont, headers=auth)
    up = (par_bodies("/v1/responses") or [{}])[-1].get("input", [])
    is_((r.status, [it.get("text") for it in ((jbody(r) or {}).get("output") or [{}])[0].get("content", [])]),
        (200, ["patched"]),
        "Responses: the next turn (previous_response_id, apply_patch's output) is accepted")
    is_([(it.get("type"), it.get("call_id")) for it in up],
        [("function_call_output", "call_hr_1"), ("custom_tool_call_output", patch_id)],
        "Responses: headroomd put the retrieve call's output before the client's")
    is_((up[0].get("output") if up else None) == LOG, True,
        "Responses: that output is the original the model asked for (%d bytes)" % len(LOG))
    is_((tokens(r, "before"), tokens(r, "saved")), (before, 0),
        "Responses: x-headroom-tokens-before is the client's request (%d), the original sent counts as sent" % before)
    cont_s = dict(cont, stream=True)
    s = request("POST", hd.url + "/v1/responses", body=cont_s, headers=auth)
    up = (par_bodies("/v1/responses") or [{}])[-1].get("input", [])
    is_((s.status, "response.completed" in s.body.decode(), [it.get("call_id") for it in up]),
        (200, True, ["call_hr_1", patch_id]),
        "Responses: a streamed turn from the same response (a retry) gets the output too")
    like(hd.stderr_text(), r"1 headroom_retrieve call made beside the client's tools left out of the answer",
         "an INFO line says a call was left out")
    like(hd.stderr_text(), r"1 headroom_retrieve call of resp_par1 \(left out of the answer the client got\) "
         r"answered from the CCR store", "an INFO line says it was answered in the next turn")

    # store false: the client sends every item back, none is kept.
    r = post_json(hd.url + "/v1/responses", dict(resp, store=False), headers=auth)
    reply = jbody(r) or {}
    items = resp["input"] + reply.get("output", []) + [
        {"type": "custom_tool_call_output", "call_id": (reply.get("output") or [{}])[0].get("call_id"), "output": "Done!"}]
    del par_seen[:]
    r = post_json(hd.url + "/v1/responses", dict(resp, store=False, input=items), headers=auth)
    up = (par_bodies("/v1/responses") or [{}])[-1].get("input", [])
    is_((r.status, [it.get("type") for it in reply.get("output", [])], len(up), len(items)),
        (200, ["custom_tool_call"], len(items), len(items)),
        "Responses, store false: the client's full history goes as sent and is accepted")

    # A conversation: the provider adds each turn's items to it; the results
    # go with the next turn only.
    r = post_json(hd.url + "/v1/responses", dict(resp, conversation="conv_par"), headers=auth)
    out = (jbody(r) or {}).get("output", [])
    patch_id = (out[0] if out else {}).get("call_id")
    del par_seen[:]
    r2 = post_json(hd.url + "/v1/responses", {"model": "gpt-5", "conversation": {"id": "conv_par"}, "tools": resp["tools"],
                                             "input": [{"type": "custom_tool_call_output", "call_id": patch_id,
                                                        "output": "Done!"}]}, headers=auth)
    r3 = post_json(hd.url + "/v1/responses", {"model": "gpt-5", "conversation": "conv_par", "input": "Thanks. Commit it."},
                   headers=auth)
    ins = [[it.get("type") for it in b.get("input", [])] if isinstance(b.get("input"), list) else b.get("input")
           for b in par_bodies("/v1/responses")]
    is_(([it.get("type") for it in out], r2.status, r3.status, ins),
        (["custom_tool_call"], 200, 200, [["function_call_output", "custom_tool_call_output"], "Thanks. Commit it."]),
        "Responses, conversation: the client gets apply_patch alone; its next turn carries the retrieve call's "
        "output, the one after does not (each accepted)")

    # A conversation turn calling headroom_retrieve alone: headroomd answers
    # it, and its follow-up sends only the output (the provider added the
    # input and the call to the conversation already: sent again, the items
    # repeat, and one with an id is refused as a duplicate).
    del par_seen[:]
    ro = dict(resp, conversation="conv_ro", input=[dict(resp["input"][0], content="Only read the log.")] + resp["input"][1:])
    r = post_json(hd.url + "/v1/responses", ro, headers=auth)
    reply = jbody(r) or {}
    ins = [[it.get("type") for it in b.get("input", [])] for b in par_bodies("/v1/responses")]
    is_((r.status, [c.get("text") for c in ((reply.get("output") or [{}])[0].get("content") or [])], ins),
        (200, ["read %d bytes" % len(LOG)], [[None, "function_call", "function_call_output"], ["function_call_output"]]),
        "Responses, conversation: headroom_retrieve alone is answered; the follow-up sends only its output")

    # A model that asks for the originals again and again: headroomd answers
    # 3 rounds, and the 4th answer still calls headroom_retrieve alone. The
    # client got that call (a tool it never defined: the Agents SDK raises
    # ModelBehaviorError, Claude Code answers "No such tool available").
    # Now it gets a finished turn: the call out, the model's text (or a line
    # saying why there is none), finish_reason stop / stop_reason end_turn.
    NOTE = r"^\[headroom: the model asked to read compressed tool outputs in full \(headroom_retrieve\) 4 times in a row;"
    keep = [{"role": "user", "content": "Keep reading."}]
    del par_seen[:]
    r = post_json(hd.url + "/v1/chat/completions", dict(chat, messages=chat["messages"] + keep), headers=auth)
    choice = ((jbody(r) or {}).get("choices") or [{}])[0]
    msg = choice.get("message") or {}
    is_((r.status, len(par_bodies("/v1/chat/completions")), choice.get("finish_reason"), "tool_calls" in msg,
         '"headroom_retrieve"' in json.dumps(msg)), (200, 4, "stop", False, False),
        "Chat: still calling headroom_retrieve after 3 rounds: no call reaches the client, finish_reason stop")
    like(msg.get("content") or "", NOTE, "Chat: the content says why there is no answer")
    nxt = dict(chat, messages=chat["messages"] + keep + [msg, {"role": "user", "content": "Go on."}])
    r = post_json(hd.url + "/v1/chat/completions", nxt, headers=auth)
    is_(r.status, 200, "Chat: the next turn, with that message as the client got it, is accepted")
    r = post_json(hd.url + "/v1/chat/completions", dict(chat, messages=chat["messages"] + keep),
                  headers=dict(auth, **{"x-say": "Reading the rest of the log."}))
    choice = ((jbody(r) or {}).get("choices") or [{}])[0]
    is_((choice.get("finish_reason"), choice.get("message")), ("stop", {"role": "assistant",
                                                                        "content": "Reading the rest of the log."}),
        "Chat: with text beside the call the client gets that text alone")
    like(hd.stderr_text(), r"1 headroom_retrieve call left out of the answer: the model still asked after 3 answered "
         r"rounds \(the limit\)", "an INFO line says the call was left out at the limit")

    del par_seen[:]
    r = post_json(hd.url + "/v1/messages", dict(ant, messages=ant["messages"][:2] + [
        {"role": "user", "content": ant["messages"][2]["content"] + [{"type": "text", "text": "Keep reading."}]}]), headers=ah)
    reply = jbody(r) or {}
    is_((r.status, len(par_bodies("/v1/messages")), reply.get("stop_reason"),
         [b.get("type") for b in reply.get("content", [])]),
        (200, 4, "end_turn", ["thinking", "text"]),
        "Anthropic: still calling headroom_retrieve after 3 rounds: the client gets the thinking and a text block, "
        "stop_reason end_turn")
    like(((reply.get("content") or [{}])[-1]).get("text", ""), NOTE, "Anthropic: the text says why there is no answer")
    ant_keep = [{"role": "user", "content": "Keep reading."}]
    r = post_json(hd.url + "/v1/messages", dict(ant, messages=ant["messages"] + [
        {"role": "assistant", "content": [{"type": "text", "text": "Done."}]}] + ant_keep),
        headers=dict(ah, **{"x-say": "Let me read the whole log."}))
    reply = jbody(r) or {}
    is_((reply.get("stop_reason"), [(b.get("type"), b.get("text")) for b in reply.get("content", [])]),
        ("end_turn", [("thinking", None), ("text", "Let me read the whole log.")]),
        "Anthropic: with text beside the call the client gets the thinking and that text")
    nxt = dict(ant, messages=ant["messages"] + [{"role": "assistant", "content": [{"type": "text", "text": "Done."}]}]
               + ant_keep + [{"role": "assistant", "content": reply.get("content", [])},
                             {"role": "user", "content": "Go on."}])
    r = post_json(hd.url + "/v1/messages", nxt, headers=ah)
    is_(r.status, 200, "Anthropic: the next turn, with that turn as the client got it, is accepted")

    # Responses, stored: the provider keeps the call; the next turn
    # (previous_response_id) gets its output, as in the mixed case.
    del par_seen[:]
    r = post_json(hd.url + "/v1/responses", dict(resp, input=resp["input"] + keep), headers=auth)
    reply = jbody(r) or {}
    out = reply.get("output", [])
    is_((r.status, len(par_bodies("/v1/responses")), [it.get("type") for it in out], '"headroom_retrieve"' in r.body.decode()),
        (200, 4, ["reasoning", "message"], False),
        "Responses: still calling headroom_retrieve after 3 rounds: the client gets the reasoning and a message")
    like(((((out or [{}])[-1]).get("content") or [{}])[0]).get("text", ""), NOTE,
         "Responses: the message says why there is no answer")
    hr_id = "call_hr_" + (reply.get("id") or "resp_par0")[8:]
    del par_seen[:]
    r = post_json(hd.url + "/v1/responses", {"model": "gpt-5", "previous_response_id": reply.get("id"), "input": "Go on."},
                  headers=auth)
    up = (par_bodies("/v1/responses") or [{}])[-1].get("input", [])
    is_((r.status, [(it.get("type"), it.get("call_id")) for it in up] if isinstance(up, list) else up),
        (200, [("function_call_output", hr_id), (None, None)]),
        "Responses: the next turn (previous_response_id) carries that call's output and is accepted")
    # store false: the client sends back what it got, the message included.
    r = post_json(hd.url + "/v1/responses", dict(resp, store=False, input=resp["input"] + keep), headers=auth)
    reply = jbody(r) or {}
    items = resp["input"] + keep + reply.get("output", []) + [{"role": "user", "content": "Go on."}]
    r = post_json(hd.url + "/v1/responses", dict(resp, store=False, input=items), headers=auth)
    is_(r.status, 200, "Responses, store false: the next turn with the output as the client got it is accepted")

    # The next turn over the WebSocket (Codex talks to the Responses API
    # that way): a response.create continuing from the answer the client
    # got without the retrieve call gets its output too. It went without,
    # and the provider refused it with an error event: "No tool output
    # found for function call call_hr_N".
    r = post_json(hd.url + "/v1/responses", resp, headers=auth)
    reply = jbody(r) or {}
    patch_id = ((reply.get("output") or [{}])[0]).get("call_id")
    hr_id = "call_hr_" + (reply.get("id") or "resp_par0")[8:]
    ws = WS(hd.port)
    del par_seen[:]
    ws.send_text({"type": "response.create", "model": "gpt-5", "previous_response_id": reply.get("id"),
                  "tools": resp["tools"], "input": [{"type": "custom_tool_call_output", "call_id": patch_id,
                                                     "output": "Done!"}]})
    evs = ws.events()
    last = evs[-1] if evs else {}
    up = (par_bodies("ws") or [{}])[-1].get("input", [])
    is_((ws.status, last.get("type"), last.get("error"),
         [c.get("text") for c in (((last.get("response") or {}).get("output") or [{}])[0].get("content") or [])]),
        (101, "response.completed", None, ["patched"]),
        "WebSocket: a response.create continuing (previous_response_id) from a turn whose headroom_retrieve call "
        "was left out is accepted")
    is_([(it.get("type"), it.get("call_id")) for it in up],
        [("function_call_output", hr_id), ("custom_tool_call_output", patch_id)],
        "WebSocket: headroomd put the retrieve call's output before the client's")
    is_((up[0].get("output") if up else None) == LOG, True, "WebSocket: that output is the original asked for")
    # A conversation: the WebSocket turn carries the output, the one after
    # it does not (the first was answered, the conversation has it).
    r = post_json(hd.url + "/v1/responses", dict(resp, conversation="conv_ws"), headers=auth)
    patch_id = (((jbody(r) or {}).get("output") or [{}])[0]).get("call_id")
    del par_seen[:]
    ws.send_text({"type": "response.create", "model": "gpt-5", "conversation": "conv_ws", "tools": resp["tools"],
                  "input": [{"type": "custom_tool_call_output", "call_id": patch_id, "output": "Done!"}]})
    e1 = (ws.events() or [{}])[-1]
    ws.send_text({"type": "response.create", "model": "gpt-5", "conversation": "conv_ws", "input": "Thanks. Commit it."})
    e2 = (ws.events() or [{}])[-1]
    ins = [[it.get("type") for it in b.get("input", [])] if isinstance(b.get("input"), list) else b.get("input")
           for b in par_bodies("ws")]
    is_((e1.get("type"), e2.get("type"), ins),
        ("response.completed", "response.completed",
         [["function_call_output", "custom_tool_call_output"], "Thanks. Commit it."]),
        "WebSocket, conversation: the next response.create carries the retrieve call's output, the one after "
        "does not (each accepted)")
    ws.close()
    like(hd.stderr_text(), r"1 headroom_retrieve call of conv_ws \(left out of the answer the client got\) answered",
         "WebSocket: an INFO line says the call was answered")
psrv.shutdown()

# ---------------------------------------------------------------- rate limit
# rate_limit_tpm far above the real traffic: Claude Code turns carrying a
# screenshot are not refused (counted as text, one such turn put the key
# 300 000 tokens in debt and the next got 429).
with Mock() as mock, Headroomd(mock=mock, conf_text=shipped_conf_text() + "\nrate_limit_tpm 100000\n") as hd:
    turn = {"model": "claude-sonnet-4-5-20250929", "max_tokens": 1024, "messages": [
        {"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": SHOT}},
                                     {"type": "text", "text": "What is wrong with this layout?"}]}]}
    codes = [post_json(hd.url + "/v1/messages", turn, headers={"x-api-key": "sk-ant-x"}).status for _ in range(3)]
    is_(codes, [200, 200, 200], "rate_limit_tpm 100000: three turns with a screenshot (~1,400 tokens each) pass")

# ---------------------------------------------------------------- rolling_window
# rolling_window counts a request itself (it weighs its turns against the
# model's context window): data counts there as the host counts it. As the
# text of its base64, one screenshot made ~470 000 tokens against
# claude-sonnet-4-5's 191 808: turns of a conversation of a few thousand
# tokens were dropped and a WARN said the provider would likely refuse it.
def cc_turns(n, shot):
    """Claude Code turns, each reading a screenshot (a Read of a .png)."""
    msgs = []
    for t in range(n):
        msgs += [{"role": "user", "content": [{"type": "text", "text": "Step %d: does the page render right now?" % t}]},
                 {"role": "assistant", "content": [
                     {"type": "thinking", "thinking": "Look at it.", "signature": SIG},
                     {"type": "tool_use", "id": "toolu_s%d" % t, "name": "Read", "input": {"file_path": "shot%d.png" % t}}]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_s%d" % t, "content": [
                     {"type": "text", "text": "shot%d.png (1280x800)" % t},
                     {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": shot}}]}]},
                 {"role": "assistant", "content": [{"type": "text", "text": "The header overlaps the menu."}]}]
    return msgs


# A model outside rolling_window's table gets default_context 8000: with
# reserve_output at most half of it, a budget of 4000.
RW_CONF = shipped_conf_text(stage_budget_ms=5000) + "\ntransform rolling_window {\n    default_context 8000\n}\n"
with Mock() as mock, Headroomd(mock=mock, conf_text=RW_CONF) as hd:
    sent = {"model": "claude-sonnet-4-5-20250929", "max_tokens": 1024, "messages": cc_turns(3, SHOT)}
    r = post_json(hd.url + "/v1/messages", sent, headers={"x-api-key": "sk-ant-x"})
    up = (upstream_bodies(mock, "/v1/messages") or [{}])[-1]
    ok(r.status == 200 and up.get("messages") == sent["messages"],
       "rolling_window: three turns with a screenshot each (%s tokens) go whole to claude-sonnet-4-5 (budget 191808)"
       % tokens(r, "before"))
    st = hd.stats().get("rolling_window", {})
    is_((st.get("requests_over_budget"), st.get("still_over_budget")), (0, 0),
        "rolling_window: not taken for over budget (/stats)")
    ok("context budget" not in hd.stderr_text(), "rolling_window: no 'over its context budget' log, no WARN")

    # Over its budget: rolling_window's count is the host's (the INFO says
    # x-headroom-tokens-before), two turns go and the rest fits.
    mock.reset()
    sent = {"model": "my-vision-model", "max_tokens": 1024, "messages": cc_turns(4, SHOT)}
    r = post_json(hd.url + "/v1/messages", sent, headers={"x-api-key": "sk-ant-x"})
    up = (upstream_bodies(mock, "/v1/messages") or [{}])[-1]
    like(hd.stderr_text(), r"over its context budget \(%s > 4000 tokens, model my-vision-model\)" % tokens(r, "before"),
         "rolling_window over budget: it counts what the host counts (%s tokens)" % tokens(r, "before"))
    ok(r.status == 200 and up.get("messages") == sent["messages"][:1] + sent["messages"][8:]
       and 0 < (tokens(r, "after") or 1 << 30) <= 4000 and "still over" not in hd.stderr_text(),
       "rolling_window: the two oldest turns dropped but the first user message (the task), the rest fits "
       "(%s tokens after)" % tokens(r, "after"))

# ---------------------------------------------------------------- retrieval follow-up
# headroomd answers a headroom_retrieve call and asks again: what the
# follow-up sends again (the model's turn, its thinking signature or
# encrypted reasoning, and the result) is counted as the request count
# counts it. As text, a 8 KB encrypted_content added ~5 000 tokens to
# x-headroom-tokens-after.
opaque_seen, opaque_sent = [], []


class Opaque(BaseHTTPRequestHandler):
    """Calls headroom_retrieve after a reasoning item or a thinking block
    whose opaque data is as long as the request's x-opaque-bytes asks, then
    answers the result."""
    def log_message(self, *a):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        opaque_seen.append(body)
        size = int(self.headers.get("x-opaque-bytes", "8"))
        blob = b64(bytes(rnd.getrandbits(8) for _ in range(size)))
        opaque_sent.append(blob)
        if self.path == "/v1/responses":
            items = body["input"]
            if items[-1].get("call_id") == "call_hr":
                output = [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "done"}]}]
            else:
                output = [{"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAAA" + blob},
                          {"type": "function_call", "id": "fc_1", "call_id": "call_hr", "name": "headroom_retrieve",
                           "arguments": json.dumps({"hash": marker_hash(json.dumps(items)), "query": "ord-88412"}), "status": "completed"}]
            out = {"id": "resp_o", "object": "response", "status": "completed", "model": body["model"], "output": output,
                   "usage": {"input_tokens": 100, "output_tokens": 10}}
        else:
            msgs = body["messages"]
            last = msgs[-1]["content"][-1] if isinstance(msgs[-1]["content"], list) else {}
            if last.get("type") == "tool_result" and last.get("tool_use_id") == "toolu_hr":
                content = [{"type": "text", "text": "done"}]
            else:
                content = [{"type": "thinking", "thinking": "The log was cut.", "signature": blob},
                           {"type": "tool_use", "id": "toolu_hr", "name": "headroom_retrieve",
                            "input": {"hash": marker_hash(json.dumps(msgs)), "query": "ord-88412"}}]
            out = {"id": "msg_o", "type": "message", "role": "assistant", "model": body["model"], "content": content,
                   "stop_reason": "tool_use", "usage": {"input_tokens": 100, "output_tokens": 10}}
        send_answer(self, 200, json.dumps(out))


srv = ThreadingHTTPServer(("127.0.0.1", 0), Opaque)
threading.Thread(target=srv.serve_forever, daemon=True).start()
with Headroomd(conf_text=shipped_conf_text(stage_budget_ms=5000).replace(
        "@MOCK_URL@", "http://127.0.0.1:%d" % srv.server_port)) as hd:
    codex = {"model": "gpt-5-codex", "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Why did ord-88412 fail?"}]},
        {"type": "function_call", "name": "shell", "call_id": "call_A", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_A", "output": LOG}],
        "tools": [{"type": "function", "name": "shell", "parameters": {"type": "object", "properties": {}}}]}
    claude = {"model": "claude-sonnet-4-5-20250929", "max_tokens": 1024, "messages": [
        {"role": "user", "content": "Why did ord-88412 fail?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_A", "name": "Bash", "input": {"command": "cat app.log"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_A", "content": LOG}]}]}
    for path, body, what, hdrs in (("/v1/responses", codex, "Responses: encrypted_content", {"authorization": "Bearer sk-x"}),
                                   ("/v1/messages", claude, "Anthropic: a thinking signature", {"x-api-key": "sk-ant-x"})):
        after = []
        for size in (6000, 3):
            del opaque_seen[:], opaque_sent[:]
            r = post_json(hd.url + path, body, headers=dict(hdrs, **{"x-opaque-bytes": str(size)}))
            ok(r.status == 200 and "done" in r.body.decode() and len(opaque_seen) == 2
               and opaque_sent[0] in json.dumps(opaque_seen[1]),
               "%s of %d bytes: the retrieve call answered, sent again in the follow-up" % (what, len(opaque_sent[0])))
            after.append(tokens(r, "after"))
        is_(after[0] - after[1] if None not in after else None, 0,
            "%s sent again counts nothing in x-headroom-tokens-after (%s and %s)" % (what, after[0], after[1]))
srv.shutdown()

done()
