#!/usr/bin/env python3
"""capture_claude.py — the request a coding agent really sends, for
agent_turn.sh: runs the Claude Code CLI (pinned in t/agents/package.json)
against a small stand-in for the Anthropic API on 127.0.0.1 that asks for
one Bash call (`cat app.log`, a 300-line service log) and then answers. The
second request, Claude Code's own body with its system prompt, tool
definitions, the tool call and its result, is written to OUT.

With TURNS=N (default 1) the stand-in asks for N calls in a row, one log
file each (app0.log, app1.log, ...), and the request written is the one
carrying all N results: a long conversation, as an agent's later turns are.

Usage: capture_claude.py OUT   (AGENTS_DIR=dir: where the npm packages are
installed or go; default /tmp/hr-bench-agents). Needs node/npm and the npm
registry the first time. Stops what it starts; bounded to 60 s + 10 s a turn."""
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.normpath(os.path.join(HERE, "..", ".."))
OUT = sys.argv[1] if len(sys.argv) > 1 else sys.exit("usage: capture_claude.py OUT")
AGENTS = os.environ.get("AGENTS_DIR", "/tmp/hr-bench-agents")
CLAUDE = os.path.join(AGENTS, "node_modules", "@anthropic-ai", "claude-code", "bin", "claude.exe")

if not os.path.exists(CLAUDE):
    os.makedirs(AGENTS, exist_ok=True)
    shutil.copy(os.path.join(TOP, "t", "agents", "package.json"), AGENTS)
    r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=AGENTS, timeout=600)
    if r.returncode or not os.path.exists(CLAUDE):
        sys.exit("capture_claude.py: npm install of the pinned Claude Code failed in %s" % AGENTS)

TURNS = int(os.environ.get("TURNS", "1"))
bodies = []


def message(content, stop):
    return {"id": "msg_bench_%d" % len(bodies), "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": content, "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": 100, "output_tokens": 10}}


class Api(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        req = json.loads(body)
        if not self.path.startswith("/v1/messages") or "count_tokens" in self.path:
            self.send_error(404)
            return
        bodies.append(body)
        results = sum(1 for m in req.get("messages", []) if isinstance(m.get("content"), list)
                      for b in m["content"] if b.get("type") == "tool_result")
        if results >= TURNS:
            answer = message([{"type": "text", "text": "Two requests failed: connection reset by peer."}], "end_turn")
        else:
            answer = message([{"type": "tool_use", "id": "toolu_bench_%d" % results, "name": "Bash",
                               "input": {"command": "cat app%d.log" % results, "description": "Show the log"}}],
                             "tool_use")
        if req.get("stream"):
            self.stream(answer)
            return
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def stream(self, answer):
        """The answer as Anthropic's event stream."""
        events = [("message_start", {"type": "message_start", "message": dict(answer, content=[], stop_reason=None)})]
        for i, block in enumerate(answer["content"]):
            if block["type"] == "text":
                events += [("content_block_start", {"type": "content_block_start", "index": i,
                                                    "content_block": {"type": "text", "text": ""}}),
                           ("content_block_delta", {"type": "content_block_delta", "index": i,
                                                    "delta": {"type": "text_delta", "text": block["text"]}})]
            else:
                events += [("content_block_start", {"type": "content_block_start", "index": i,
                                                    "content_block": dict(block, input={})}),
                           ("content_block_delta", {"type": "content_block_delta", "index": i,
                                                    "delta": {"type": "input_json_delta",
                                                              "partial_json": json.dumps(block["input"])}})]
            events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
        events += [("message_delta", {"type": "message_delta", "delta": {"stop_reason": answer["stop_reason"],
                                                                         "stop_sequence": None},
                                      "usage": {"output_tokens": 10}}),
                   ("message_stop", {"type": "message_stop"})]
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        for name, data in events:
            self.wfile.write(("event: %s\ndata: %s\n\n" % (name, json.dumps(data))).encode())
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


work = tempfile.mkdtemp(prefix="hr-capture-")
try:
    proj, home = os.path.join(work, "proj"), os.path.join(work, "home")
    os.makedirs(proj)
    os.makedirs(home)
    for k in range(TURNS):
        with open(os.path.join(proj, "app%d.log" % k), "w") as f:
            for i in range(300):
                level, what = ("ERROR", "failed: connection reset by peer") if i in (120, 121) else ("INFO", "handled")
                f.write("2026-12-05T%02d:%02d:%02dZ %s worker-%d request %d %s in %d ms status=200 bytes=%d\n"
                        % (8 + k % 12, i // 60, i % 60, level, (i + k) % 8, i + 1000 * k, what, 3 + (i + k) * 7 % 90,
                           200 + (i + k) * 37 % 9000))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home,
           "ANTHROPIC_BASE_URL": "http://127.0.0.1:%d" % server.server_address[1], "ANTHROPIC_API_KEY": "sk-ant-bench",
           "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1",
           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
    p = subprocess.run([CLAUDE, "-p", "What failed in the app*.log files?", "--allowedTools", "Bash"], cwd=proj,
                       env=env, capture_output=True, timeout=60 + 10 * TURNS)
    server.shutdown()
    last = next((b for b in reversed(bodies) if b.count(b'"tool_result"') >= TURNS), None)
    if p.returncode or last is None:
        sys.exit("capture_claude.py: Claude Code exited %d after %d requests, no tool result captured: %s"
                 % (p.returncode, len(bodies), (p.stdout + p.stderr).decode("utf-8", "replace")[-400:]))
    req = json.loads(last)
    req["stream"] = False  # one answer per request: the bench measures the request side
    with open(OUT, "w") as f:
        json.dump(req, f, separators=(",", ":"))
    print("captured Claude Code's turn with %d tool result(s): %d bytes, %d messages, %d tools, system %d bytes"
          % (TURNS, os.path.getsize(OUT), len(req["messages"]), len(req.get("tools", [])),
             len(json.dumps(req.get("system", "")))))
finally:
    shutil.rmtree(work, True)
