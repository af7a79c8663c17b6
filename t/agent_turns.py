# agent_turns.py — whole coding-agent turns built from the real tool outputs of
# t/fixtures/text, as Chat Completions and Anthropic Messages requests: a
# system prompt, a tools list, the user's task, the assistant's tool calls and
# their results. Shared by t/agent_turn_test.py and bench/compress/agent_turn.py.
"""Agent turns from t/fixtures/text, and the request token count headroomd uses."""
import json
import os
import subprocess

import hrtest

FX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "text")

# Written for these tests (not any product's prompt), at the length of a
# small agent's: who it is, how to use tools, how to answer.
SYSTEM = """You are a coding agent working in the user's repository through tools. You can run shell commands, \
search the tree, read and edit files, and fetch documentation pages.

How to work:
- Start from evidence. Before changing code, run the failing command, search for the symbols involved and read \
the code around them. Quote file paths with line numbers (path:line) when you refer to code.
- Prefer small, focused changes. Keep the style of the surrounding code: naming, error handling, comments. Do not \
reformat code you did not change.
- When a test fails, read the assertion and the traceback first: they usually say which value was wrong and where \
it came from. Run the single failing test again after a fix, then the whole suite.
- When you search, narrow the pattern to the directory that matters once you know it; a repo-wide search is for \
finding where something lives.
- When you read a diff, say what each change does and which files it touches besides the one asked about.
- Documentation pages are long: take the exact signature, the return value and the platform notes you need, and \
cite the section.
- Tool outputs may be shortened by a proxy. A line such as "[headroom: N of M ... omitted; headroom_retrieve \
hash=...]" means lines were left out; call headroom_retrieve with that hash if you need them.
- Never run commands that delete data or push to a remote without asking.

How to answer:
- Lead with the answer, then the evidence (commands run, lines quoted), then what you changed or propose.
- If something is uncertain, say what you checked and what is left to check.
- Keep answers short; use code blocks for code and commands."""


def _fn(name, desc, props, required):
    return {"name": name, "description": desc,
            "parameters": {"type": "object", "properties": props, "required": required}}


_S = {"type": "string"}
TOOLS = [
    _fn("bash", "Run a shell command in the repository root and return its combined stdout and stderr. Commands "
        "time out after 120 seconds; long output is returned whole.",
        {"command": dict(_S, description="the command line, run with /bin/sh -c"),
         "timeout": {"type": "integer", "description": "seconds before the command is killed (default 120)"}},
        ["command"]),
    _fn("grep", "Search file contents with a regular expression (ripgrep syntax) and return path:line:text for "
        "each match.",
        {"pattern": dict(_S, description="the regular expression"),
         "path": dict(_S, description="directory or file to search (default: the repository root)"),
         "glob": dict(_S, description="only files matching this glob, e.g. '*.c'")},
        ["pattern"]),
    _fn("read_file", "Read a file of the repository, optionally a range of lines.",
        {"path": _S, "start_line": {"type": "integer"}, "end_line": {"type": "integer"}}, ["path"]),
    _fn("edit_file", "Replace an exact, unique string in a file with another.",
        {"path": _S, "old_str": dict(_S, description="text to replace; must occur exactly once"),
         "new_str": dict(_S, description="replacement text")}, ["path", "old_str", "new_str"]),
    _fn("fetch_url", "Fetch a web page or a local documentation file and return its content.",
        {"url": dict(_S, description="http(s):// or file:// URL")}, ["url"]),
    _fn("list_dir", "List the entries of a directory.", {"path": _S}, ["path"]),
]

# One turn: the user's task (the questions of its outputs' .evidence files,
# asked together) and the tool calls that produced each fixture.
TURNS = {
    "fix_tests": {
        "task": "The Python unit tests fail after my last change, and I need context for the fix. "
                "Which tests failed or errored, where, and why? Where is the stream flag read from the request "
                "body? What did the last commit change in billing, and what else did it touch? And how do I get "
                "the relative path from one directory to another in Node.js, and what does it return on Windows?",
        "outputs": [("bash", {"command": "python3 -m unittest -v test_shop"}, "python_unittest"),
                    ("grep", {"pattern": "json_object_get", "path": "src/"}, "grep_rn_src"),
                    ("bash", {"command": "git show"}, "git_show_mixed"),
                    ("fetch_url", {"url": "file:///usr/share/doc/nodejs/api/path.html"}, "nodejs_path")],
    },
    "go_service": {
        "task": "Which Go tests failed and why? Why did shop-api restart? Where does the otel sink copy its "
                "endpoint? And where must a Debian package install public Python 3 modules, and where may the "
                "local administrator install them?",
        "outputs": [("bash", {"command": "go test -count=1 -v ./..."}, "go_test"),
                    ("bash", {"command": "journalctl --no-pager -t shop-api -t shop-api-supervisor"}, "journald"),
                    ("bash", {"command": "git grep -n --heading --break strdup -- src lib plugins"},
                     "git_grep_heading"),
                    ("fetch_url", {"url": "file:///usr/share/doc/python3/python-policy.html"}, "python_policy")],
    },
    "build_break": {
        "task": "Why did the build fail, and which warnings did the compiler give? What did the last three "
                "commits change in the cost and budget code? How do I allocate and free memory for a libffi "
                "closure, and how do I check closures are supported?",
        "outputs": [("bash", {"command": "make -k -j1 V=1"}, "make_gcc_error"),
                    ("bash", {"command": "git log -p -3"}, "git_log_p"),
                    ("fetch_url", {"url": "file:///usr/share/doc/libffi8/html/The-Closure-API.html"},
                     "libffi_closure")],
    },
}


def shipped_conf(stage_budget_ms=None):
    """conf/headroom.conf as shipped, pointed at the mock (hrtest's @MOCK_URL@)
    and a free port (@PORT@), with 2 workers; optionally another stage budget."""
    return hrtest.shipped_conf_text(stage_budget_ms=stage_budget_ms, workers=2)


def fixture(name):
    """(text, evidence lines) of t/fixtures/text/NAME."""
    text = open(os.path.join(FX, name + ".txt")).read()
    ev = [l for l in open(os.path.join(FX, name + ".evidence")).read().splitlines()
          if l and not l.startswith(("#", "floor ", "query "))]
    return text, ev


def openai_request(turn, model="gpt-4o"):
    """A Chat Completions body: system, user task, one assistant message with
    every tool call, one tool message per result (as agents send parallel calls)."""
    t = TURNS[turn]
    calls = [{"id": "call_%d" % i, "type": "function",
              "function": {"name": tool, "arguments": json.dumps(args)}}
             for i, (tool, args, _) in enumerate(t["outputs"])]
    msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": t["task"]},
            {"role": "assistant", "content": "I'll run the tests, search the code, look at the history and read "
             "the docs.", "tool_calls": calls}]
    for i, (_, _, name) in enumerate(t["outputs"]):
        msgs.append({"role": "tool", "tool_call_id": "call_%d" % i, "content": fixture(name)[0]})
    return {"model": model, "messages": msgs, "tools": [{"type": "function", "function": f} for f in TOOLS]}


def anthropic_request(turn, model="claude-sonnet-4-20250514"):
    """The same turn as Anthropic Messages: tool_use blocks, then one user
    message of tool_result blocks."""
    t = TURNS[turn]
    uses = [{"type": "tool_use", "id": "toolu_%02d" % i, "name": tool, "input": args}
            for i, (tool, args, _) in enumerate(t["outputs"])]
    results = [{"type": "tool_result", "tool_use_id": "toolu_%02d" % i, "content": fixture(name)[0]}
               for i, (_, _, name) in enumerate(t["outputs"])]
    return {"model": model, "max_tokens": 4096, "system": SYSTEM,
            "tools": [{"name": f["name"], "description": f["description"], "input_schema": f["parameters"]}
                      for f in TOOLS],
            "messages": [{"role": "user", "content": t["task"]},
                         {"role": "assistant", "content": [{"type": "text", "text": "I'll run the tests, search "
                                                            "the code, look at the history and read the docs."}]
                          + uses},
                         {"role": "user", "content": results}]}


def tool_outputs(body):
    """The tool results of a request body, in order (either API)."""
    out = []
    for m in body["messages"]:
        if m.get("role") == "tool":
            out.append(m["content"])
        elif m.get("role") == "user" and isinstance(m.get("content"), list):
            out += [b["content"] for b in m["content"] if b.get("type") == "tool_result"]
    return out


class Tokens:
    """Token counts from `headroom tokens` (the CLI on headroomd's counter,
    checked against tiktoken in bench/tokens), remembered by text: exact
    o200k_base by default; with a model, what headroomd counts for it (for
    Claude models ceil(o200k x 1.13) per text, doc/tokenizer.md)."""

    def __init__(self, cli, model=None):
        self.cli, self.memo = cli, {}
        self.how = ["--model", model] if model else ["--encoding", "o200k_base"]

    def __call__(self, text):
        if text not in self.memo:
            r = subprocess.run([self.cli, "tokens"] + self.how + ["-"], input=text.encode(),
                               capture_output=True, check=True)
            self.memo[text] = int(r.stdout.split()[0])
        return self.memo[text]

    def strings(self, v):
        if isinstance(v, str):
            return self(v)
        if isinstance(v, list):
            return sum(self.strings(x) for x in v)
        if isinstance(v, dict):
            return sum(self.strings(x) for x in v.values())
        return 0

    def request(self, body, tool_name=None):
        """The request's tokens as headroomd counts them (src/pipeline.c): every
        string under system, tools and messages, plus 3 per message. With
        tool_name, that tool's definition (which headroomd adds) is left out."""
        tools = [t for t in body.get("tools", []) if (t.get("function") or t).get("name") != tool_name]
        return (self.strings(body.get("system")) + self.strings(tools) + self.strings(body["messages"])
                + 3 * len(body["messages"]))
