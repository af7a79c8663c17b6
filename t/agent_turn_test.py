#!/usr/bin/env python3
# agent_turn_test.py — whole coding-agent turns (t/agent_turns.py: system prompt,
# tools list, the user's task, the assistant's tool calls, and real tool outputs
# from t/fixtures/text: a failing test run or build, a repo-wide grep, a diff, a
# fetched doc page) through headroomd running the shipped conf/headroom.conf, as
# /v1/chat/completions and /v1/messages: every evidence line reaches the
# upstream; only tool outputs change; the request shrinks by at least the
# turn's floor, by headroomd's headers and /stats and by our own recount of
# the bodies; the headers and /stats agree with the recount.
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403
import agent_turns as at  # noqa: E402
import json  # noqa: E402

CLI = os.environ.get("HEADROOM_CLI") or os.path.join(T_DIR, "..", "src", "headroom")
PLUGIN_DIR = os.environ.get("HEADROOM_TEST_PLUGIN_DIR")

# Floors set from bench/compress/agent_turn.py (o200k saved on the whole
# request, 2026-12-05: fix_tests 78.5 %, go_service 70.1 %, build_break 79.3 %),
# a few points below so that a compressor's change of a few tokens does not
# fail them, and never under the 60 %.
FLOORS = {"fix_tests": 0.75, "go_service": 0.66, "build_break": 0.75}

# A loaded machine (sanitizers, make -j2 beside other builds) must not undo a
# stage this test measures: the HTML stage has taken over 250 ms there.
conf = at.shipped_conf(stage_budget_ms=60000)
ok("\nstage_budget_ms 60000" in conf and "\nport @PORT@" in conf, "the shipped config, pointed at the mock")

o200k = at.Tokens(CLI)
counters = {"gpt-4o": o200k}  # gpt-4o counts o200k_base; Claude models the estimate
with Mock(max_seconds=900) as mock, Headroomd(conf_text=conf, mock=mock, args=["--plugin-dir", PLUGIN_DIR] if PLUGIN_DIR else []) as hd:
    for turn in at.TURNS:
        for api, path, build in (("openai", "/v1/chat/completions", at.openai_request),
                                 ("anthropic", "/v1/messages", at.anthropic_request)):
            name = "%s (%s)" % (turn, api)
            body = build(turn)
            st0 = hd.stats()["tokens"]
            r = post_json(hd.url + path, body, timeout=120)
            is_(r.status, 200, name + ": answered")
            sent = json.loads(mock.last_request()["body"])
            outs = at.tool_outputs(sent)
            is_(len(outs), len(at.TURNS[turn]["outputs"]), name + ": every tool result arrives upstream")
            for (_, _, fx), out in zip(at.TURNS[turn]["outputs"], outs):
                text, ev = at.fixture(fx)
                lost = [e for e in ev if e not in out]
                ok(not lost and out.startswith("[headroom: ") and marker_hash(out.split("\n", 1)[0]),
                   "%s: %s arrives compressed, marked, with all %d evidence lines%s"
                   % (name, fx, len(ev), "; lost: %r" % lost if lost else ""))
            # Only tool outputs change; headroomd adds its retrieve tool, and
            # cache_aligner (sort_tools yes) puts the tools in name order.
            strip = json.loads(json.dumps(sent))
            strip["tools"] = [t for t in strip["tools"] if (t.get("function") or t).get("name") != "headroom_retrieve"]
            same = json.loads(json.dumps(body))
            for m in (strip, same):
                m["tools"].sort(key=lambda t: (t.get("function") or t)["name"])
                for msg in m["messages"]:
                    if msg["role"] == "tool":
                        msg["content"] = ""
                    elif isinstance(msg.get("content"), list):
                        for b in msg["content"]:
                            if b.get("type") == "tool_result":
                                b["content"] = ""
            is_(strip, same, name + ": system prompt, tools, task and tool calls arrive unchanged")
            is_(len(sent["tools"]), len(body["tools"]) + 1, name + ": headroom_retrieve offered")

            before, after = int(r.header("x-headroom-tokens-before")), int(r.header("x-headroom-tokens-after"))
            st1 = hd.stats()["tokens"]
            mtok = counters.setdefault(body["model"], at.Tokens(CLI, body["model"]))
            is_((before, after), (mtok.request(body), mtok.request(sent)),
                name + ": x-headroom-tokens-before/after = our recount of the bodies (%d -> %d)" % (before, after))
            is_((st1["input"] - st0["input"], st1["sent"] - st0["sent"], st1["saved"] - st0["saved"]),
                (before, after, before - after), name + ": /stats tokens input, sent and saved agree")
            ob, oa = o200k.request(body), o200k.request(sent)
            cmp_ok(1 - oa / ob, ">=", FLOORS[turn], "%s: o200k %d -> %d, %.1f %% saved (floor %.0f %%)"
                   % (name, ob, oa, 100 * (1 - oa / ob), 100 * FLOORS[turn]))
    # Bad input: a turn whose tool result is not text passes through as it came.
    body = at.openai_request("fix_tests")
    body["messages"][3]["content"] = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
    r = post_json(hd.url + "/v1/chat/completions", body, timeout=120)
    sent = json.loads(mock.last_request()["body"])
    ok(r.status == 200 and sent["messages"][3] == body["messages"][3],
       "a tool result that is an image part arrives untouched beside compressed ones")
done()
