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
# response.create under the wrap_codex stack as openai_responses. Then a
# turn with a tool call (the mock asks for it by lines in the prompt, since
# Codex cannot add headers): the log Codex's exec tool read reaches the mock
# compressed. Last, Codex signed in with a ChatGPT plan: ChatGPT-Account-ID,
# sent to chatgpt_api_url, over the WebSocket and, with websocket no, over
# HTTPS, where its bodies come zstd-encoded and headroomd decodes them.
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
import time  # noqa: E402

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

    def codex_exec(what, conf_path, run_env, *args, prompt="What does this project do?"):
        """`headroom wrap codex -- exec ARGS PROMPT`; checks it exits 0."""
        p = subprocess.run([CLI, "wrap", "--port", str(port), "-c", conf_path, "codex", "--", "exec",
                            "--skip-git-repo-check"] + list(args) + [prompt],
                           cwd=PROJ, env=run_env, capture_output=True, timeout=240)
        is_(p.returncode, 0, what + ": codex exec exits 0")
        if p.returncode:
            diag(p.stderr.decode("utf-8", "replace")[-2000:])
        return p

    p = codex_exec("through headroom wrap", conf, env)
    out = p.stdout.decode("utf-8", "replace")
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

    # A tool call: the mock has the model call Codex's `exec` tool (a custom,
    # freeform tool: JavaScript that runs exec_command) to cat a 36 KB log;
    # Codex sends the output back as a custom_tool_call_output, which must
    # reach the provider compressed, the error lines kept.
    lines = ["2026-12-05T10:%02d:%02d.%03dZ %s worker-%d request handled path=/api/v1/items/%d status=%d dur_ms=%d"
             % (i // 60, i % 60, i * 7 % 1000, "ERROR" if i in (137, 311) else "INFO", i % 4, i,
                500 if i in (137, 311) else 200, i * 13 % 97) for i in range(400)]
    log = "\n".join(lines) + "\n"
    with open(os.path.join(PROJ, "app.log"), "w") as f:
        f.write(log)
    mock.reset()
    prompt = ("Summarize app.log\nx-mock-tool-call: exec\n"
              'x-mock-tool-input: const r = await tools.exec_command({cmd: "cat app.log"}); text(r.output);')
    codex_exec("a turn with a tool call", conf, env, "--dangerously-bypass-approvals-and-sandbox", prompt=prompt)
    # its turns, over the WebSocket (or HTTPS, were it to fall back)
    posts = [json.loads(base64.b64decode(r["body_b64"])) for r in mock.requests()
             if r["path"] == "/v1/responses" and (r["method"] == "POST" or r.get("ws_type") == "response.create")]
    outs = [it for b in posts for it in b.get("input", []) if it.get("type") == "custom_tool_call_output"]
    out = outs[-1].get("output") if outs else ""
    sent = out if isinstance(out, str) else "".join(part.get("text", "") for part in out if isinstance(part, dict))
    ok(outs, "Codex ran the exec tool and sent its output back (%d requests)" % len(posts))
    cmp_ok(len(sent), "<", len(log) // 4, "the %d-byte log reached the provider compressed (%d bytes)"
           % (len(log), len(sent)))
    ok(all(lines[i] in sent for i in (137, 311)) and "headroom_retrieve hash=" in sent,
       "both error lines kept, and the retrieve marker")
    db = sqlite3.connect(os.path.join(WS, "metrics.db"))
    saved = db.execute("SELECT MAX(tokens_saved) FROM requests WHERE stack = 'wrap_codex'").fetchone()[0]
    db.close()
    cmp_ok(saved or 0, ">", 5000, "metrics.db counts the saving on the request that carried the output")

    # Signed in with a ChatGPT plan (a made-up token in Codex's auth.json):
    # Codex sends zstd bodies with its ChatGPT token and ChatGPT-Account-ID,
    # which headroomd decodes and sends on to chatgpt_api_url (here the
    # mock's /backend-api/codex).
    def jwt(claims):
        part = lambda o: base64.urlsafe_b64encode(json.dumps(o).encode()).rstrip(b"=").decode()  # noqa: E731
        return part({"alg": "RS256", "typ": "JWT"}) + "." + part(claims) + ".c2ln"
    claims = {"https://api.openai.com/auth": {"chatgpt_plan_type": "plus", "chatgpt_account_id": "acct-1234",
                                              "chatgpt_user_id": "user-1"},
              "email": "dev@example.com", "exp": 4102444800, "iat": 1796400000}
    os.makedirs(os.path.join(HOME, ".codex"), exist_ok=True)
    with open(os.path.join(HOME, ".codex", "auth.json"), "w") as f:
        json.dump({"auth_mode": "chatgpt", "OPENAI_API_KEY": None, "last_refresh": "2026-12-05T10:00:00Z",
                   "tokens": {"id_token": jwt(claims), "access_token": jwt(claims), "refresh_token": "rt-1",
                              "account_id": "acct-1234"}}, f)
    with open(conf, "a") as f:
        f.write("\nchatgpt_api_url %s/backend-api/codex\n" % mock.url)
    mock.reset()
    plan_env = {k: v for k, v in env.items() if k != "OPENAI_API_KEY"}
    p = codex_exec("signed in with ChatGPT", conf, plan_env)
    like(p.stdout.decode("utf-8", "replace"), r"mock reply to \d+ items", "... and prints the mock's answer")
    turns = [r for r in mock.requests() if r["method"] == "POST" or r.get("ws_type") == "response.create"]
    ok(turns and all(r["path"] == "/backend-api/codex/responses" and
                     dict((k.lower(), v) for k, v in r["headers"]).get("chatgpt-account-id") == "acct-1234"
                     for r in turns),
       "its turns went to chatgpt_api_url with the account header: %r" % [(r["method"], r["path"]) for r in turns])

    # The same over HTTPS (websocket no: Codex falls back after its retries),
    # where a ChatGPT-plan Codex sends its bodies zstd-encoded.
    with open(conf) as f:
        text = f.read()
    https_conf = conf + ".https"
    with open(https_conf, "w") as f:
        f.write(text + "\nwebsocket no\n")
    mock.reset()
    t0 = time.time()
    codex_exec("signed in with ChatGPT, over HTTPS", https_conf, plan_env)
    posted = [r for r in mock.requests() if r["method"] == "POST" and r["path"] == "/backend-api/codex/responses"]
    ok(posted and all(r["content_encoding"] == "zstd" and r["raw_len"] < r["body_len"] for r in posted),
       "its turns reached chatgpt_api_url zstd-encoded, as Codex sent them (%d)" % len(posted))
    db = sqlite3.connect(os.path.join(WS, "metrics.db"))
    before = wait_until(lambda: db.execute("SELECT MAX(tokens_input_before) FROM requests WHERE stack = 'wrap_codex' "
                                           "AND status = 200 AND timestamp >= ?", (t0,)).fetchone()[0], timeout=5)
    db.close()
    cmp_ok(before or 0, ">", 1000, "headroomd read and counted the decoded bodies (%s tokens)" % before)
done()
