#!/usr/bin/env python3
# codex_test.py — the real Codex CLI (npm @openai/codex, pinned in
# t/agents/package.json) started by `headroom wrap codex -- exec …` with the
# shipped config, against the mock upstream. Codex 0.17x reads its base URL
# only from its openai_base_url configuration key, which wrap gives it with
# -c; without that it would go straight to api.openai.com. Checked: codex
# exits 0 and prints the mock's answer; its Responses requests reached the
# mock through headroomd over the Responses API's WebSocket mode, which
# Codex prefers and headroomd relays (store false, client-made item ids, a
# prompt_cache_key): Codex never falls back to HTTPS; metrics.db has each
# response.create under the wrap_codex stack as openai_responses.
# Skipped when node/npm or the registry are missing, or the package has no
# binary for this machine.
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403
from agent_setup import CLI, HEADROOMD, install, scratch, shipped_conf  # noqa: E402
import base64  # noqa: E402
import json  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402

CODEX = install("@openai/codex/bin/codex.js", "Codex", lambda p: ["node", p], b"codex")
BIN, PROJ, HOME, WS = scratch("hr-codex-")
with open(os.path.join(BIN, "codex"), "w") as f:
    f.write('#!/bin/sh\nexec node "%s" "$@"\n' % CODEX)
os.chmod(os.path.join(BIN, "codex"), 0o755)

with Mock() as mock:
    port = free_port()
    conf = shipped_conf(WS, port, mock.url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODEX_", "HEADROOM_"))}
    env.update({"PATH": BIN + ":" + os.environ.get("PATH", "/usr/bin:/bin"), "HOME": HOME, "HEADROOMD": HEADROOMD,
                "HEADROOM_WORKSPACE_DIR": WS, "HEADROOM_TELEMETRY": "off", "OPENAI_API_KEY": "sk-test"})
    p = subprocess.run([CLI, "wrap", "--port", str(port), "-c", conf, "codex", "--",
                        "exec", "--skip-git-repo-check", "What does this project do?"],
                       cwd=PROJ, env=env, capture_output=True, timeout=240)
    out = p.stdout.decode("utf-8", "replace")
    is_(p.returncode, 0, "codex exec through headroom wrap exits 0")
    if p.returncode:
        diag(p.stderr.decode("utf-8", "replace")[-2000:])
    like(out, r"mock reply to \d+ items", "Codex printed the mock's answer")

    err = p.stderr.decode("utf-8", "replace")
    ok("Falling back from WebSockets" not in err and "Reconnecting" not in err,
       "Codex stayed on the WebSocket (no reconnects, no fallback to HTTPS)")
    reqs = mock.requests()
    upgrades = [r for r in reqs if r.get("websocket") == "upgrade"]
    creates = [r for r in reqs if r.get("websocket") is True and r.get("ws_type") == "response.create"]
    is_([(r["method"], r["path"]) for r in reqs if not r.get("websocket")], [],
        "nothing went over HTTP: every request rode the WebSocket")
    ok(upgrades, "Codex's WebSocket reached the upstream through headroomd (%d handshake)" % len(upgrades))
    ok(creates, "its response.create messages reached the mock over the WebSocket (%d)" % len(creates))
    if creates:
        body = json.loads(base64.b64decode(creates[-1]["body_b64"]))
        ok(body.get("store") is False and isinstance(body.get("input"), list) and body.get("input"),
           "a Codex turn: store false, a list of input items")

    db = sqlite3.connect(os.path.join(WS, "metrics.db"))
    rows = db.execute("SELECT stack, status, path, tokens_input_before FROM requests "
                      "WHERE wire_format = 'openai_responses'").fetchall()
    db.close()
    is_(len(rows), len(creates), "metrics.db has one row per response.create")
    ok(rows and all(r[:3] == ("wrap_codex", 200, "/v1/responses") for r in rows),
       "metrics.db has Codex's requests under wrap_codex as openai_responses: %r" % rows[:3])
    cmp_ok(max((r[3] for r in rows), default=0), ">", 1000, "its turn counted with Codex's instructions and context")
done()
