#!/usr/bin/env python3
# sdk_ws_test.py — the official OpenAI SDK (npm openai, pinned in
# t/sdk/package.json with the `ws` package it needs) in the Responses API's
# WebSocket mode (ResponsesWS) through headroomd against the mock upstream:
# the SDK gets both answers on one connection; the large function_call_output
# reached the mock compressed; /stats and metrics.db count each
# response.create with the provider's usage. Skipped when node or the npm
# registry is not available.
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403
import base64  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402

SDK_SRC = os.path.join(T_DIR, "sdk")
SDK_DIR = os.environ.get("HEADROOM_SDK_DIR") or os.path.join(os.getcwd(), "t", "sdk-node")
PLUGIN_DIR = os.environ.get("HEADROOM_TEST_PLUGIN_DIR")
HAVE_DB = not PLUGIN_DIR or os.path.exists(os.path.join(PLUGIN_DIR, "metrics_db.so"))

npm_install(SDK_SRC, SDK_DIR, "ws", "for the SDK WebSocket test")
shutil.copy(os.path.join(SDK_SRC, "ws_check.mjs"), SDK_DIR)

ROWS = [{"ts": "2025-03-01T10:00:%02d" % (i % 60), "level": "error" if i % 50 == 7 else "info",
         "service": ["api", "payments", "auth"][i % 3], "duration_ms": 20 + i % 60,
         "msg": "GET /v1/orders completed", "request_id": "req-%08x" % (i * 2654435761 % (1 << 32))}
        for i in range(300)]
ROWS_TEXT = json.dumps(ROWS, separators=(",", ":"))
CONF = "transform router { }\ntransform smart_crusher { }\n" + ("sink metrics_db { }\n" if HAVE_DB else "")

with Mock() as mock, Headroomd(extra_conf=CONF) as hd:
    p = subprocess.run(["node", os.path.join(SDK_DIR, "ws_check.mjs")], capture_output=True, timeout=120,
                       env=dict(os.environ, HEADROOM_URL=hd.url, ROWS=ROWS_TEXT))
    if p.returncode != 0:
        bail("ws_check.mjs failed: " + p.stderr.decode("utf-8", "replace")[-2000:])
    r = json.loads(p.stdout)
    note(json.dumps(r)[:800])
    is_(r.get("url"), "ws://127.0.0.1:%d/v1/responses" % hd.port, "the SDK connects to headroomd's /v1/responses")
    is_(r.get("errors"), [], "no WebSocket error")
    res = r.get("responses") or []
    is_([x.get("type") for x in res], ["response.completed"] * 2, "two answers on one connection")
    is_(res[0].get("text") if res else None, "mock reply to 1 items", "the first as the SDK parsed it")
    seen = re.search(r"tool result of (\d+) bytes", (res[1].get("text") or "") if len(res) > 1 else "")
    cmp_ok(int(seen.group(1)) if seen else 0, "<", len(ROWS_TEXT) // 2,
           "the second: the model saw the compressed tool output (the mock names its size)")
    cmp_ok(((res[0] if res else {}).get("usage") or {}).get("output_tokens", 0), ">", 0, "usage parsed by the SDK")

    msgs = [m for m in mock.requests() if m.get("websocket") is True]
    is_(len(msgs), 2, "both response.create reached the mock over the WebSocket")
    if len(msgs) == 2:
        sent = json.loads(base64.b64decode(msgs[1]["body_b64"]))
        out = sent["input"][2]["output"]
        cmp_ok(len(out), "<", len(ROWS_TEXT) * 0.5,
               "the function_call_output reached the mock compressed (%d -> %d chars)" % (len(ROWS_TEXT), len(out)))
    else:
        skip("no second message")

    st = hd.stats()
    is_(st["requests"]["by_provider"].get("openai"), 2, "/stats: each response.create is one request")
    cmp_ok(st["tokens"]["saved"], ">", 1000, "/stats: tokens saved credited")
    if HAVE_DB:
        def rows():
            db = sqlite3.connect(os.path.join(hd.workspace, "metrics.db"))
            try:
                return db.execute("SELECT wire_format, status, tokens_saved, tokens_output FROM requests").fetchall()
            except sqlite3.Error:
                return []
            finally:
                db.close()
        ok(wait_until(lambda: len(rows()) == 2, timeout=10), "metrics.db: two rows")
        rr = rows()
        ok(rr and all(x[0] == "openai_responses" and x[1] == 200 and x[3] > 0 for x in rr),
           "metrics.db: openai_responses, 200, output tokens from response.completed: %r" % rr)
        ok(any(x[2] > 1000 for x in rr), "metrics.db: the compressed one's saving")
    else:
        skip("metrics_db.so not built", 3)
done()
