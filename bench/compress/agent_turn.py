#!/usr/bin/env python3
"""agent_turn.py — whole coding-agent turns through a real headroomd: tokens per tool output and per request.

Each turn of t/agent_turns.py (a system prompt, a tools list, the user's task,
the assistant's tool calls, and tool results that are real outputs from
t/fixtures/text: a failing test run or build, a repo-wide grep, a diff, a
fetched documentation page) is sent as /v1/chat/completions and as /v1/messages
through headroomd running the shipped conf/headroom.conf, to the mock upstream.
It prints, per tool output, its o200k tokens before and as the upstream received
it and whether every evidence line arrived; per request, headroomd's
x-headroom-tokens-before/after, the same figures recounted from the bodies
(`headroom tokens`), and the share of the request the tool outputs are.

usage: agent_turn.py [--build DIR]   (DIR: a build tree, default ./_build; run from the source tree)
"""
import argparse
import base64
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(SRC, "_build"))
    a = ap.parse_args()
    b = os.path.abspath(a.build)
    os.environ.setdefault("HEADROOMD", os.path.join(b, "src", "headroomd"))
    os.environ.setdefault("HEADROOM_DATA_DIR", os.path.join(SRC, "data"))
    sys.path.insert(0, os.path.join(SRC, "t"))
    import hrtest
    import agent_turns as at
    cli = os.path.join(b, "src", "headroom")
    tok = at.Tokens(cli)  # o200k_base, exact
    rows, totals = [], []
    with hrtest.Mock() as mock, hrtest.Headroomd(conf_text=at.shipped_conf(), mock=mock,
                                                args=["--plugin-dir", os.path.join(b, "plugins", ".libs")]) as hd:
        for turn in at.TURNS:
            for api, path, build in (("openai", "/v1/chat/completions", at.openai_request),
                                     ("anthropic", "/v1/messages", at.anthropic_request)):
                body = build(turn)
                st0 = hd.stats()["tokens"]
                r = hrtest.post_json(hd.url + path, body, timeout=120)
                if r.status != 200:
                    sys.exit("%s %s: HTTP %s %s" % (turn, api, r.status, r.body[:300]))
                sent = json.loads(base64.b64decode(mock.requests()[-1]["body_b64"]))
                outs_in, outs_up = at.tool_outputs(body), at.tool_outputs(sent)
                tin = tout = 0
                for (_, _, name), o_in, o_up in zip(at.TURNS[turn]["outputs"], outs_in, outs_up):
                    ev = at.fixture(name)[1]
                    a_, b_ = tok(o_in), tok(o_up)
                    tin, tout = tin + a_, tout + b_
                    if api == "openai":
                        rows.append((turn, name, a_, b_, sum(e in o_up for e in ev), len(ev)))
                before, after = int(r.header("x-headroom-tokens-before")), int(r.header("x-headroom-tokens-after"))
                st1 = hd.stats()["tokens"]
                mtok = at.Tokens(cli, body["model"])  # what headroomd counts for this model
                check = (mtok.request(body), mtok.request(sent), st1["input"] - st0["input"],
                         st1["sent"] - st0["sent"])
                totals.append((turn, api, before, after, check, tok.request(body), tok.request(sent), tin, tout))
    print("| turn | tool output | tokens in | tokens upstream | saved | evidence lines kept |")
    print("|---|---|---|---|---|---|")
    for turn, name, a_, b_, k, n in rows:
        print("| %s | %s | %d | %d | %.1f %% | %d/%d |" % (turn, name, a_, b_, 100 * (1 - b_ / a_), k, n))
    print()
    print("| turn | API | headroomd: x-headroom-tokens before -> after | /stats input, sent | recounted, model's "
          "counter | o200k before -> after | saved (o200k) | tool outputs, o200k: in -> upstream "
          "(their share of the request) |")
    print("|---|---|---|---|---|---|---|---|")
    for turn, api, before, after, (cb, ca, si, ss), ob, oa, tin, tout in totals:
        print("| %s | %s | %d -> %d | %d, %d | %d -> %d | %d -> %d | **%.1f %%** | %d -> %d (%.0f %%) |" %
              (turn, api, before, after, si, ss, cb, ca, ob, oa, 100 * (1 - oa / ob), tin, tout, 100 * tin / ob))


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    import hrtest
    hrtest._cleanup()
    os._exit(0)
