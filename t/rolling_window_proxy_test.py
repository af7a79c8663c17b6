#!/usr/bin/env python3
# rolling_window_proxy_test.py — rolling_window on OpenAI Responses requests, as
# Codex CLI and the Agents SDK send them, through a running headroomd.
#
# A Responses request carries its conversation in `input` (items: messages,
# reasoning with encrypted_content, function_call / function_call_output,
# custom_tool_call(_output), local_shell_call, ...) and its system prompt in
# `instructions`. rolling_window handled only `messages`, so a Responses
# request over the model's budget went upstream whole. Checked here: over
# budget, the oldest whole turns go (a turn starts at a user message; a call
# and its output, matched by call_id, go together even across turns;
# reasoning stays with its turn; instructions and developer items stay; the
# last two turns stay), the rest fits, and x-headroom-tokens-after is a
# recount of the body sent; a request that fits, `input` as a string, and a
# request continuing a stored conversation (previous_response_id,
# conversation) are sent with every item, the latter two with a WARN that
# says what can be done.
#
# The first user message is the task (Codex sends it after its AGENTS.md
# message, Claude Code beside its <system-reminder> blocks): it stays while
# the turns after it go, and goes only when the request cannot fit with it
# (a WARN then says the model lost the task). Checked on Codex turns here
# and on a long Claude Code conversation (/v1/messages, claude-sonnet-4-5 and
# its real budget of 191,808 tokens) below: before, the first turn went
# whole, task and all.
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403
import base64  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402

rnd = random.Random(7)
WORDS = ("the build step failed because a fixture was missing while the parser read a config file from "
         "disk and retried twice before giving up on the request with a timeout error").split()
ENC = "gAAAAA" + base64.b64encode(bytes(rnd.getrandbits(8) for _ in range(3000))).decode()


def prose(n):
    """n words of plain text: nothing but rolling_window runs on it."""
    return " ".join(rnd.choice(WORDS) for _ in range(n))


SHOT = "data:image/png;base64," + base64.b64encode(png(1280, 800, 100, rnd)).decode()


def user(text):
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def turn(t, words=900, asked=0):
    """A Codex turn: the user's words (`asked` words of pasted text after
    them), reasoning, a shell call and its output, more reasoning, the
    answer. Turn 2 calls apply_patch (a custom tool), turn 3 a
    local_shell_call."""
    items = [user("Step %d: fix the failing test in pkg%d. %s" % (t, t, prose(asked))),
             {"type": "reasoning", "id": "rs_%da" % t, "summary": [{"type": "summary_text", "text": "Run it."}],
              "encrypted_content": ENC}]
    if t == 2:
        items += [{"type": "custom_tool_call", "id": "ctc_%d" % t, "call_id": "call_%d" % t, "name": "apply_patch",
                   "input": "*** Begin Patch\n*** Update File: pkg2/a.py\n-x\n+y\n*** End Patch\n"},
                  {"type": "custom_tool_call_output", "call_id": "call_%d" % t, "output": prose(words)}]
    elif t == 3:
        items += [{"type": "local_shell_call", "id": "lsh_%d" % t, "call_id": "call_%d" % t, "status": "completed",
                   "action": {"type": "exec", "command": ["pytest", "pkg3"], "env": {}}},
                  {"type": "function_call_output", "call_id": "call_%d" % t, "output": prose(words)}]
    else:
        items += [{"type": "function_call", "id": "fc_%d" % t, "call_id": "call_%d" % t, "name": "shell",
                   "arguments": json.dumps({"command": ["pytest", "pkg%d" % t]})},
                  {"type": "function_call_output", "call_id": "call_%d" % t, "output": prose(words)}]
    items += [{"type": "reasoning", "id": "rs_%db" % t, "summary": [], "encrypted_content": ENC},
              {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "pkg%d passes." % t}]}]
    return items


DEV = {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Sandbox: workspace-write."}]}
INSTRUCTIONS = "You are Codex, a coding agent. " + prose(60)
TOOLS = [{"type": "function", "name": "shell", "description": "run a command",
          "parameters": {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}}}},
         {"type": "custom", "name": "apply_patch", "description": "apply a patch"}]


def body(items, **extra):
    b = {"model": "my-codex-model", "instructions": INSTRUCTIONS, "tools": TOOLS, "input": items, "store": False,
         "include": ["reasoning.encrypted_content"], "stream": False}
    b.update(extra)
    return b


def upstream(mock):
    bodies = [json.loads(base64.b64decode(x["body_b64"])) for x in mock.requests() if x["path"] == "/v1/responses"]
    return bodies[-1] if bodies else {}


def tokens(r, name):
    v = r.header("x-headroom-tokens-" + name)
    return int(v) if v and v.isdigit() else None


def turn_starts(items):
    return [i for i, it in enumerate(items) if it.get("role") == "user"]


def pairs_ok(items):
    """Every output answers a call sent, every call sent is answered."""
    calls = {it["call_id"] for it in items if "call_id" in it and not it["type"].endswith("_output")}
    outs = {it["call_id"] for it in items if it.get("type", "").endswith("_output")}
    return calls == outs


# default_context 8000 for a model outside the table: a budget of 4000
# (reserve_output is at most half the window).
CONF = "stage_budget_ms 5000\ntransform rolling_window {\n    default_context 8000\n}\n"
with Mock() as mock, Headroomd(extra_conf=CONF) as hd:
    url = hd.url + "/v1/responses"
    hdrs = {"authorization": "Bearer sk-x"}

    # Fits: sent as it was.
    small = body([DEV] + turn(0, 100) + turn(1, 100))
    r = post_json(url, small, headers=hdrs)
    is_(r.status, 200, "a Responses request under its budget is answered")
    is_(upstream(mock).get("input"), small["input"], "and goes upstream with every item")

    # Screenshots count as OpenAI bills them (1,105 tokens for 1280 x 800),
    # not as the ~400 KB of their base64: three turns with one each fit.
    shots = [DEV]
    for t in range(3):
        shots += turn(t, 50)
        shots[-3]["output"] = [{"type": "input_text", "text": "shot%d.png" % t},
                               {"type": "input_image", "image_url": SHOT}]
    mock.reset()
    r = post_json(url, body(shots), headers=hdrs)
    ok(r.status == 200 and upstream(mock).get("input") == shots and 3 * 1105 < tokens(r, "before") <= 4000
       and "over its context budget" not in hd.stderr_text(),
       "three turns with a screenshot each (%d bytes of base64, %s tokens) go whole" % (3 * len(SHOT), tokens(r, "before")))

    # Six turns, each mostly its tool output, a developer item first: over
    # 4000. Dropping the outputs of the three oldest turns is enough: they
    # become the placeholder, every item stays.
    PH = "[older tool output dropped by headroom to fit the context window]"
    items = [DEV]
    for t in range(6):
        items += turn(t)
    r = post_json(url, body(items), headers=hdrs)
    got = upstream(mock).get("input") or []
    before, after = tokens(r, "before"), tokens(r, "after")
    is_(r.status, 200, "over budget (outputs): answered")
    like(hd.stderr_text(), r"over its context budget \(%s > 4000 tokens, model my-codex-model\): dropped 3 older "
         r"tool outputs and 0 turns \(0 items\)" % before,
         "over budget: rolling_window counts what the host counts (%s tokens), drops 3 outputs" % before)
    outs = [i for i, it in enumerate(items) if it.get("type", "").endswith("_output")]
    ok(len(got) == len(items) and [got[i]["output"] for i in outs[:3]] == [PH] * 3 and
       [g for i, g in enumerate(got) if i not in outs[:3]] == [it for i, it in enumerate(items) if i not in outs[:3]],
       "the three oldest outputs (function_call_output, custom_tool_call_output) are the placeholder, all else as sent")
    ok(after is not None and after <= 4000, "it fits (%s tokens after)" % after)

    # Six turns where the user pasted text each time: the outputs are not
    # enough, the oldest whole turns go.
    items = [DEV]
    for t in range(6):
        items += turn(t, words=600, asked=500)
    sent = body(items)
    mock.reset()
    r = post_json(url, sent, headers=hdrs)
    up = upstream(mock)
    got = up.get("input") or []
    before, after = tokens(r, "before"), tokens(r, "after")
    is_(r.status, 200, "over budget (turns): answered")
    like(hd.stderr_text(), r"over its context budget \(%s > 4000 tokens, model my-codex-model\): dropped \d+ older "
         r"tool outputs and [1-9]\d* turns \(\d+ items\)" % before,
         "over budget: whole turns dropped (%s tokens before)" % before)
    ok(len(got) < len(items), "over budget: items dropped (%d of %d sent)" % (len(got), len(items)))
    ok(got[:1] == [DEV], "the developer item stays, first")
    is_(up.get("instructions"), INSTRUCTIONS, "instructions are sent as they were")
    starts = turn_starts(items)
    is_(got[1:2], [items[starts[0]]], "then the first user message (the task), as sent")
    # What is left is the developer item, the task and whole turns at the
    # end, as sent but for older outputs that became the placeholder.
    def same_or_placeholder(a, b):
        return a == b or (a.get("type", "").endswith("_output") and dict(a, output=PH) == b)
    kept_from = [s for s in starts if len(items) - s == len(got) - 2 and
                 all(same_or_placeholder(a, b) for a, b in zip(items[s:], got[2:]))]
    ok(len(kept_from) == 1 and kept_from[0] > starts[1],
       "the items left after it are the last whole turns (%d of %d items), each as sent or an older output's "
       "placeholder: the rest of the first turn went" % (len(got), len(items)))
    ok(got[2:] and got[-12:] == items[-12:] and len(turn_starts(got)) >= 3, "the last two turns stay as sent")
    ok(pairs_ok(got), "every call sent has its output and every output its call (call_id)")
    ok(all(got[i + 1].get("type") != "message" or got[i + 1].get("role") != "user"
           for i, it in enumerate(got[:-1]) if it.get("type") == "reasoning"),
       "each reasoning item is followed by the item it belongs to")
    ok(after is not None and after <= 4000, "the rest fits (%s tokens after)" % after)
    ok("still over" not in hd.stderr_text(), "no 'still over' WARN")
    st = hd.stats().get("rolling_window", {})
    is_((st.get("requests_over_budget"), st.get("turns_dropped")), (2, (len(items) - len(got) + 1) // 6),
        "/stats: two requests over budget, the turns counted (the first with its task kept)")
    # tokens_after is what the body sent counts: the same body, sent again,
    # fits and counts exactly that before anything is done to it.
    r2 = post_json(url, up, headers=hdrs)
    is_(tokens(r2, "before"), after, "x-headroom-tokens-after equals a recount of the body sent (%s)" % after)
    is_(upstream(mock).get("input"), got, "that body fits: sent again as it was")

    # A call answered after the next user message (the user interrupted):
    # the two turns go together or stay together.
    split = [DEV]
    for t in range(6):
        split += turn(t, words=600, asked=500)
    k = split.index(next(it for it in split if it.get("call_id") == "call_1" and it["type"].endswith("_output")))
    out1 = split.pop(k)
    split.insert(turn_starts(split)[2] + 1, out1)  # after turn 2's user message
    mock.reset()
    r = post_json(url, body(split), headers=hdrs)
    got = upstream(mock).get("input") or []
    ok(r.status == 200 and pairs_ok(got) and len(got) < len(split),
       "a call answered in the next turn: turns dropped, every call still with its output")
    ok(("call_1" in {it.get("call_id") for it in got}) == any(it is not None and it.get("id") == "rs_2a" for it in got),
       "the call's turn and its output's turn went together")

# `input` as a string: one user turn, nothing to drop; a request continuing a
# stored conversation: the items it sends are all kept (OpenAI holds the
# rest, which rolling_window can neither count nor drop).
with Mock() as mock, Headroomd(extra_conf=CONF) as hd:
    url = hd.url + "/v1/responses"
    hdrs = {"authorization": "Bearer sk-x"}
    text = prose(5000)
    r = post_json(url, body(text), headers=hdrs)
    is_((r.status, upstream(mock).get("input")), (200, text), "input as a long string: sent as it was")
    like(hd.stderr_text(), r"still over its context budget \(\d+ > 4000 tokens, model my-codex-model\)",
         "input as a long string: a WARN says it is still over")

    items = []
    for t in range(6):
        items += turn(t)
    for extra in ({"previous_response_id": "resp_abc123", "store": True}, {"conversation": "conv_abc123", "store": True}):
        mock.reset()
        sent = body(items, **extra)
        r = post_json(url, sent, headers=hdrs)
        key = list(extra)[0]
        is_(upstream(mock).get("input"), items, "%s: every item sent now goes upstream" % key)
    like(hd.stderr_text(), r"continues a stored conversation \(previous_response_id or conversation\), whose "
         r"earlier items rolling_window can neither count nor drop, so it is sent as it is.*\"truncation\": \"auto\"",
         "a WARN says what rolling_window cannot do there and names truncation")

# Claude Code (/v1/messages): the first user message holds <system-reminder>
# blocks (CLAUDE.md, the date) and the user's task beside them; a system
# message with the environment follows (as the pinned Claude Code sends it);
# then turns of the user's words and the agent's Bash calls with their
# results, the last one carrying the cache breakpoint. claude-sonnet-4-5:
# a budget of 200,000 - 8,192 = 191,808 tokens.
TASK = "Fix the failing test in tests/test_parser.py: parse_header returns None for an empty header line."


def cc_user(text, reminders=()):
    return {"role": "user", "content": [{"type": "text", "text": "<system-reminder>\n%s\n</system-reminder>" % r}
                                        for r in reminders] + [{"type": "text", "text": text}]}


def cc_conversation(turns, calls, words, edit, paste=0):
    """`turns` turns of `calls` calls: Bash with `words`-word results, and
    every other one an Edit replacing `edit` words with `edit` words; the
    task has `paste` words of a pasted log after it."""
    task = TASK + ("\n\n" + prose(paste) if paste else "")
    msgs = [cc_user(task, ("As you answer the user's questions, you can use the following context:\n# claudeMd\n"
                           + prose(400), "# currentDate\nToday's date is 2026-12-07.")),
            {"role": "system", "content": "# Environment\nYou have been invoked in the following environment:\n"
                                          " - Primary working directory: /repo\n - Platform: linux"}]
    for t in range(turns):
        if t:
            msgs.append(cc_user("Now step %d: the same for pkg%d. %s" % (t, t, prose(30))))
        for c in range(calls):
            tid = "toolu_%02d_%d" % (t, c)
            # Every other call an Edit: its old and new text are the
            # assistant's, not a tool output, so only a whole turn frees them.
            call = ({"type": "tool_use", "id": tid, "name": "Bash",
                     "input": {"command": "pytest pkg%d -k case%d" % (t, c), "description": "Run the tests"}}
                    if c % 2 == 0 else
                    {"type": "tool_use", "id": tid, "name": "Edit",
                     "input": {"file_path": "/repo/pkg%d/parse.py" % t, "old_string": prose(edit),
                               "new_string": prose(edit)}})
            msgs.append({"role": "assistant", "content": [
                {"type": "text", "text": "Working on pkg%d." % t}, call]})
            msgs.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": tid,
                                                      "content": prose(words)}]})
        msgs.append({"role": "assistant", "content": [{"type": "text", "text": "pkg%d passes now." % t}]})
    msgs[-2]["content"][-1]["cache_control"] = {"type": "ephemeral"}
    return {"model": "claude-sonnet-4-5", "max_tokens": 32000, "stream": False,
            "system": [{"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
                       {"type": "text", "text": prose(2500), "cache_control": {"type": "ephemeral"}}],
            "tools": [{"name": "Bash", "description": "Run a command",
                       "input_schema": {"type": "object", "properties": {"command": {"type": "string"}},
                                        "required": ["command"]}},
                      {"name": "Edit", "description": "Replace text in a file",
                       "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"},
                                                                         "old_string": {"type": "string"},
                                                                         "new_string": {"type": "string"}}}}],
            "messages": msgs}


def upstream_messages(mock):
    bodies = [json.loads(base64.b64decode(x["body_b64"])) for x in mock.requests() if x["path"] == "/v1/messages"]
    return bodies[-1] if bodies else {}


def cc_pairs_ok(msgs):
    uses = {b["id"] for m in msgs if isinstance(m["content"], list) for b in m["content"] if b["type"] == "tool_use"}
    results = {b["tool_use_id"] for m in msgs if isinstance(m["content"], list) for b in m["content"]
               if b["type"] == "tool_result"}
    return uses == results


def cc_turn_starts(msgs):
    return [i for i, m in enumerate(msgs) if m["role"] == "user" and
            not any(b["type"] == "tool_result" for b in m["content"])]


with Mock() as mock, Headroomd(extra_conf="stage_budget_ms 5000\ntransform rolling_window { }\n") as hd:
    url = hd.url + "/v1/messages"
    hdrs = {"x-api-key": "sk-ant-x", "anthropic-version": "2023-06-01"}
    sent = cc_conversation(16, 4, 600, 2800)
    r = post_json(url, sent, headers=hdrs, timeout=120)
    up = upstream_messages(mock)
    got = up.get("messages") or []
    msgs = sent["messages"]
    before, after = tokens(r, "before"), tokens(r, "after")
    is_(r.status, 200, "Claude Code, %d messages over its budget: answered" % len(msgs))
    ok(before is not None and before > 191808 and after is not None and after <= 191808,
       "Claude Code: %s tokens before, %s after (budget 191,808)" % (before, after))
    is_(got[:2], msgs[:2], "Claude Code: the first message (its reminders and the task) and the environment are sent "
        "first, as they came")
    starts = cc_turn_starts(got)
    ok(len(got) < len(msgs) and len(starts) >= 3 and starts[1] == 2 and got[2]["content"][0]["text"].startswith("Now step")
       and got[2] != msgs[cc_turn_starts(msgs)[1]],
       "Claude Code: then a later turn's user message: the rest of the first turn and the turns after it went "
       "(%d of %d messages sent)" % (len(got), len(msgs)))
    rest = msgs[len(msgs) - (len(got) - starts[1]):]

    def same_or_placeholder(a, b):
        return a == b or (a["role"] == "user" and a["content"][0]["type"] == "tool_result" and
                          b == {"role": "user", "content": [dict(a["content"][0], content=PH)]})
    ok(rest[0] == got[starts[1]] and all(same_or_placeholder(a, b) for a, b in zip(rest, got[starts[1]:])),
       "Claude Code: what follows is the last turns, as sent but for older tool results now the placeholder")
    last_two = len(msgs) - cc_turn_starts(msgs)[-2]
    ok(got[-last_two:] == msgs[-last_two:], "Claude Code: the last two turns as sent")
    ok(cc_pairs_ok(got), "Claude Code: every tool_use sent has its tool_result and every tool_result its tool_use")
    ok("dropped the first user message" not in hd.stderr_text() and "still over" not in hd.stderr_text(),
       "Claude Code: no WARN")
    mock.reset()
    r2 = post_json(url, up, headers=hdrs, timeout=120)
    is_(tokens(r2, "before"), after, "Claude Code: x-headroom-tokens-after equals a recount of the body sent (%s)" % after)
    is_(upstream_messages(mock).get("messages"), got, "that body fits: sent again as it was")

    # The task pasted with a 160,000-word log: with it and the last two turns
    # the request cannot fit, so it goes (the provider would refuse the
    # request, and every later one of the conversation) and a WARN says so.
    sent = cc_conversation(6, 4, 600, 2800, paste=160000)
    mock.reset()
    r = post_json(url, sent, headers=hdrs, timeout=120)
    up = upstream_messages(mock)
    got = up.get("messages") or []
    before, after = tokens(r, "before"), tokens(r, "after")
    ok(r.status == 200 and after is not None and after <= 191808 and got and
       all(TASK not in json.dumps(m) for m in got) and cc_pairs_ok(got),
       "Claude Code, the task with a pasted log (%s tokens): it goes, the rest fits (%s after)" % (before, after))
    like(hd.stderr_text(), r"WARN.*dropped the first user message \(\d+ tokens, message 0\), which holds the user's "
         r"task: the request \(model claude-sonnet-4-5\) fits its context budget of 191808 tokens only without it",
         "a WARN says the first user message went, and why")
    mock.reset()
    r2 = post_json(url, up, headers=hdrs, timeout=120)
    is_(tokens(r2, "before"), after, "x-headroom-tokens-after equals a recount of that body (%s)" % after)

done()
