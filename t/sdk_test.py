#!/usr/bin/env python3
# sdk_test.py — the official OpenAI and Anthropic SDKs (npm `openai`,
# `@anthropic-ai/sdk`) talk to headroomd as they would to the providers:
# JSON and streamed answers (Chat Completions, Responses, Messages), usage,
# errors raised as the SDKs' own classes,
# and every request counted in /stats. Skipped when node or the npm registry
# is not available.
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402

SDK_SRC = os.path.join(T_DIR, "sdk")
SDK_DIR = os.environ.get("HEADROOM_SDK_DIR") or os.path.join(os.getcwd(), "t", "sdk-node")

npm_install(SDK_SRC, SDK_DIR, "openai", "for the SDK tests")
shutil.copy(os.path.join(SDK_SRC, "sdk_check.mjs"), SDK_DIR)

with Mock() as mock, Headroomd(extra_conf="max_body_size 4k\n") as hd:
    p = subprocess.run(["node", os.path.join(SDK_DIR, "sdk_check.mjs")], capture_output=True, timeout=120,
                       env=dict(os.environ, HEADROOM_URL=hd.url))
    if p.returncode != 0:
        bail("sdk_check.mjs failed: " + p.stderr.decode("utf-8", "replace")[-2000:])
    r = json.loads(p.stdout)
    note(json.dumps(r)[:1500])

    oj, os_, aj, as_ = r["openai_json"], r["openai_stream"], r["anthropic_json"], r["anthropic_stream"]
    is_(oj.get("text"), "mock reply to 1 messages", "OpenAI SDK: chat.completions.create gets the reply")
    cmp_ok((oj.get("usage") or {}).get("completion_tokens", 0), ">", 0, "OpenAI SDK: usage parsed")
    is_(os_.get("text"), "mock reply to 1 messages", "OpenAI SDK: streamed reply reassembled")
    cmp_ok(os_.get("chunks", 0), ">", 2, "OpenAI SDK: several chunks arrived")
    ok(os_.get("usage") is not None, "OpenAI SDK: stream usage chunk seen")
    is_(aj.get("text"), "mock reply to 1 messages", "Anthropic SDK: messages.create gets the reply")
    cmp_ok((aj.get("usage") or {}).get("output_tokens", 0), ">", 0, "Anthropic SDK: usage parsed")
    is_(as_.get("text"), "mock reply to 1 messages", "Anthropic SDK: messages.stream finalMessage")
    cmp_ok(as_.get("events", 0), ">", 4, "Anthropic SDK: stream events seen")

    rj, rs = r["openai_responses_json"], r["openai_responses_stream"]
    is_((rj.get("thrown"), rj.get("object"), rj.get("status"), rj.get("output_types")),
        (None, "response", "completed", ["message"]), "OpenAI SDK: responses.create gets a completed Response")
    is_(rj.get("text"), "mock reply to 1 items", "OpenAI SDK: response.output_text is the reply")
    ru = rj.get("usage") or {}
    ok(ru.get("input_tokens", 0) > 0 and ru.get("output_tokens", 0) > 0
       and ru.get("total_tokens") == ru.get("input_tokens", 0) + ru.get("output_tokens", 0),
       "OpenAI SDK: Responses usage parsed (input/output/total)")
    is_(((ru.get("input_tokens_details") or {}).get("cached_tokens"),
         (ru.get("output_tokens_details") or {}).get("reasoning_tokens")), (0, 0),
        "OpenAI SDK: Responses usage details parsed")
    is_(rs.get("thrown"), None, "OpenAI SDK: responses.create({stream: true}) iterates without error")
    is_(rs.get("types"), ["response.created", "response.in_progress", "response.output_item.added",
                          "response.content_part.added"] + ["response.output_text.delta"] * 4 +
        ["response.output_text.done", "response.content_part.done", "response.output_item.done",
         "response.completed"], "OpenAI SDK: every Responses stream event, in order")
    ok(rs.get("seqOk"), "OpenAI SDK: sequence_numbers consecutive (nothing dropped or added)")
    is_((rs.get("text"), rs.get("status")), ("mock reply to 1 items", "completed"),
        "OpenAI SDK: streamed deltas reassemble the reply")
    cmp_ok((rs.get("usage") or {}).get("output_tokens", 0), ">", 0, "OpenAI SDK: usage from response.completed")

    e1, e2, e3 = r["openai_429"], r["anthropic_529"], r["anthropic_stream_error"]
    is_((e1.get("thrown"), e1.get("status")), ("RateLimitError", 429), "OpenAI SDK raises RateLimitError on a relayed 429")
    is_(e2.get("status"), 529, "Anthropic SDK sees the relayed 529 status")
    ok(e2.get("thrown", "").endswith("Error"), "Anthropic SDK raises its own error class (%s)" % e2.get("thrown"))
    ok("thrown" in e3, "Anthropic SDK raises when the upstream breaks mid-stream (%s)" % e3.get("thrown"))
    like(e3.get("message", ""), r"could not get an answer|upstream|api_error|Overloaded|error",
         "and the error says the upstream failed")

    e4, e5 = r["openai_413"], r["anthropic_413"]
    is_((e4.get("thrown"), e4.get("status")), ("APIError", 413), "OpenAI SDK raises an API error on headroomd's 413")
    like(e4.get("message", ""), r"max_body_size", "and its message is headroomd's, naming the limit")
    is_((e5.get("status"), e5.get("type")), (413, "error"),
        "Anthropic SDK parses headroomd's 413 as an Anthropic error body ({type: error, error: {...}})")
    like(e5.get("message", ""), r"max_body_size", "and its message names the limit")

    st, stats = get_json(hd.url + "/stats")
    req = stats["requests"]
    # 3 chat + 2 responses (OpenAI), 4 messages (Anthropic)
    is_(req["total"], 9, "every SDK request counted in /stats, /v1/responses ones too")
    is_(req["by_provider"], {"openai": 5, "anthropic": 4}, "by provider")
    is_(req["by_model"].get("gpt-4o"), 5, "by model: the Responses requests' model is read too (3 chat + 2 responses)")
    is_(req["by_status"].get("429"), 1, "the 429 counted by status")
    is_(req["failed"], 1, "only the broken stream counted as failed")
    cmp_ok(stats["tokens"]["output"], ">", 0, "output tokens from streamed and JSON answers")
    seen_out = sum((x.get("usage") or {}).get(k, 0) for x, k in (
        (oj, "completion_tokens"), (os_, "completion_tokens"), (aj, "output_tokens"), (as_, "output_tokens"),
        (rj, "output_tokens"), (rs, "output_tokens")))
    cmp_ok(stats["tokens"]["output"], ">=", seen_out,
           "/stats output tokens include every answer's usage, Responses JSON and response.completed too")
done()
