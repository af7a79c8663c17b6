#!/usr/bin/env python3
# claude_code_test.py — the real Claude Code CLI (npm @anthropic-ai/claude-code,
# pinned in t/agents/package.json) started by `headroom wrap claude` with the
# shipped config, against the mock upstream. The mock asks for one Bash call
# (`cat app.log`); Claude Code runs it, sends the log back in a tool_result
# that carries its cache_control breakpoint, and prints the mock's answer,
# which names the size of the tool result the upstream received. Checked:
# the agent exits 0 and prints the answer; the log reached the upstream
# compressed, with its error lines and the breakpoint; /stats (saved before
# wrap stopped the daemon, through the metrics_db file) counts the saving
# under the wrap_claude stack. Skipped when node/npm or the registry are
# missing, or the package has no binary for this machine.
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403
from agent_setup import CLI, HEADROOMD, install, scratch, shipped_conf  # noqa: E402
import base64  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402

CLAUDE = install("@anthropic-ai/claude-code/bin/claude.exe", "Claude Code", lambda p: [p], b"Claude Code")
BIN, PROJ, HOME, WS = scratch("hr-claude-")
os.symlink(CLAUDE, os.path.join(BIN, "claude"))

# A service log of ~300 lines, two of them errors: what an agent cats.
lines = []
for i in range(300):
    if i in (120, 121):
        lines.append("2026-12-05T08:%02d:%02dZ ERROR worker-%d request %d failed: connection reset by peer "
                     "(upstream 10.0.0.%d)" % (i // 60, i % 60, i % 8, i, i % 250))
    else:
        lines.append("2026-12-05T08:%02d:%02dZ INFO worker-%d handled request %d in %d ms status=200 bytes=%d"
                     % (i // 60, i % 60, i % 8, i, 3 + i * 7 % 90, 200 + i * 37 % 9000))
LOG = "\n".join(lines) + "\n"
with open(os.path.join(PROJ, "app.log"), "w") as f:
    f.write(LOG)

with Mock() as mock:
    port = free_port()
    conf = shipped_conf(WS, port, mock.url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_", "HEADROOM_"))}
    env.update({
        "PATH": BIN + ":" + os.environ.get("PATH", "/usr/bin:/bin"), "HOME": HOME, "HEADROOMD": HEADROOMD,
        "HEADROOM_WORKSPACE_DIR": WS, "HEADROOM_TELEMETRY": "off", "ANTHROPIC_API_KEY": "sk-ant-test",
        # Claude Code sends these headers with every request: they make the
        # mock ask for one Bash call, answered with text once it has the result.
        "ANTHROPIC_CUSTOM_HEADERS": "x-mock-tool-call: Bash\n"
                                    'x-mock-tool-args: {"command":"cat app.log","description":"Show the log"}',
        "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_ERROR_REPORTING": "1"})
    p = subprocess.run([CLI, "wrap", "--port", str(port), "-c", conf, "claude", "--",
                        "-p", "What failed in app.log?", "--allowedTools", "Bash"],
                       cwd=PROJ, env=env, capture_output=True, timeout=180)
    out = p.stdout.decode("utf-8", "replace")
    is_(p.returncode, 0, "claude through headroom wrap exits 0")
    if p.returncode:
        diag(p.stderr.decode("utf-8", "replace")[-2000:])
    m = re.search(r"tool result of (\d+) bytes", out)
    ok(m is not None, "Claude Code printed the answer to its tool result: %r" % out.strip()[-200:])

    reqs = [json.loads(base64.b64decode(r["body_b64"])) for r in mock.requests() if r["path"] == "/v1/messages"]
    results = [b for body in reqs for msg in body.get("messages", []) if msg.get("role") == "user"
               and isinstance(msg.get("content"), list) for b in msg["content"] if b.get("type") == "tool_result"]
    ok(results, "the tool result reached the upstream through headroomd")
    if results:
        sent = results[-1]["content"]
        sent = sent if isinstance(sent, str) else "".join(x.get("text", "") for x in sent)
        cmp_ok(len(sent), "<", len(LOG) // 4, "the log reached the upstream compressed (%d of %d bytes)"
               % (len(sent), len(LOG)))
        ok("request 120 failed" in sent and "request 121 failed" in sent, "with both error lines")
        ok("headroom_retrieve hash=" in sent, "with the marker that retrieves the rest")
        is_(results[-1].get("cache_control"), {"type": "ephemeral"}, "Claude Code's cache breakpoint kept on the block")
        if m:
            is_(int(m.group(1)), len(sent), "the size the agent was told is the compressed size")

    # wrap stopped the daemon; metrics_db kept its rows.
    db = sqlite3.connect(os.path.join(WS, "metrics.db"))
    rows = db.execute("SELECT stack, status, tokens_input_before, tokens_saved FROM requests").fetchall()
    db.close()
    ok(rows and all(r[0] == "wrap_claude" and r[1] == 200 for r in rows),
       "every request is in metrics.db under the wrap_claude stack: %r" % rows)
    cmp_ok(sum(r[3] for r in rows), ">", 1000, "tokens saved over the session, per metrics.db")
done()
