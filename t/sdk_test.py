#!/usr/bin/env python3
# sdk_test.py — the official OpenAI and Anthropic SDKs (npm `openai`,
# `@anthropic-ai/sdk`) talk to headroomd as they would to the providers:
# JSON and streamed answers, usage, errors raised as the SDKs' own classes,
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

if not shutil.which("node") or not shutil.which("npm"):
    skip_all("node and npm are needed for the SDK tests")
if not os.path.isdir(os.path.join(SDK_DIR, "node_modules", "openai")):
    os.makedirs(SDK_DIR, exist_ok=True)
    shutil.copy(os.path.join(SDK_SRC, "package.json"), SDK_DIR)
    try:
        r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"], cwd=SDK_DIR,
                           capture_output=True, timeout=300)
    except subprocess.TimeoutExpired:
        skip_all("npm install timed out (no registry?)")
    if r.returncode != 0:
        skip_all("npm install failed: " + r.stderr.decode("utf-8", "replace")[-300:])
shutil.copy(os.path.join(SDK_SRC, "sdk_check.mjs"), SDK_DIR)

with Mock() as mock, Headroomd() as hd:
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

    e1, e2, e3 = r["openai_429"], r["anthropic_529"], r["anthropic_stream_error"]
    is_((e1.get("thrown"), e1.get("status")), ("RateLimitError", 429), "OpenAI SDK raises RateLimitError on a relayed 429")
    is_(e2.get("status"), 529, "Anthropic SDK sees the relayed 529 status")
    ok(e2.get("thrown", "").endswith("Error"), "Anthropic SDK raises its own error class (%s)" % e2.get("thrown"))
    ok("thrown" in e3, "Anthropic SDK raises when the upstream breaks mid-stream (%s)" % e3.get("thrown"))
    like(e3.get("message", ""), r"could not get an answer|upstream|api_error|Overloaded|error",
         "and the error says the upstream failed")

    st, stats = get_json(hd.url + "/stats")
    req = stats["requests"]
    is_(req["total"], 7, "every SDK request counted in /stats")
    is_(req["by_provider"], {"openai": 3, "anthropic": 4}, "by provider")
    is_(req["by_status"].get("429"), 1, "the 429 counted by status")
    is_(req["failed"], 1, "only the broken stream counted as failed")
    cmp_ok(stats["tokens"]["output"], ">", 0, "output tokens from streamed and JSON answers")
done()
