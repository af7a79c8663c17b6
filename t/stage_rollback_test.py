#!/usr/bin/env python3
# A transform stage that fails has its edits undone, and only its own: the
# body forwarded upstream keeps what the stages before and after it did.
# t/plugins/body_editor adds a top-level member to the body (an edit outside
# units, flagged with body_edited) and then succeeds or fails as configured.
import json
import os

from hrtest import Headroomd, Mock, done, is_, like, ok, openai_body, post_json

PLUGINS = os.environ.get("HEADROOM_TEST_BAD_PLUGIN_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "plugins", ".libs")


def stages(spec):
    """spec: [(instance, mark, edit, fail)]"""
    return "".join("transform body_editor as %s { mark %s; edit %s; fail %s; }\n"
                   % (i, m, "yes" if e else "no", "yes" if f else "no") for i, m, e, f in spec)


def forwarded_marks(spec):
    conf = ("host 127.0.0.1\nport @PORT@\nworkers 1\nopenai_api_url @MOCK_URL@\nplugin_dir %s\n%s"
            % (PLUGINS, stages(spec)))
    with Mock() as m, Headroomd(conf_text=conf) as h:
        r = post_json(h.url + "/v1/chat/completions", openai_body(), headers={"Authorization": "Bearer sk-t"})
        body = json.loads(m.last_request()["body"])
        return r.status, sorted(k for k in body if k.startswith("x_"))


cases = [
    ("edit, fail, edit, fail", [("a", "x_a", 1, 0), ("b", "x_b", 1, 1), ("c", "x_c", 1, 0), ("d", "x_d", 1, 1)],
     ["x_a", "x_c"]),
    ("edit, untouched, fail (one snapshot serves two stages)",
     [("a", "x_a", 1, 0), ("n", "x_n", 0, 0), ("b", "x_b", 1, 1)], ["x_a"]),
    ("fail first, then edit", [("b", "x_b", 1, 1), ("a", "x_a", 1, 0)], ["x_a"]),
    ("untouched, untouched, edit, untouched fail",
     [("n", "x_n", 0, 0), ("o", "x_o", 0, 0), ("a", "x_a", 1, 0), ("f", "x_f", 0, 1)], ["x_a"]),
    ("two failures in a row after an edit",
     [("a", "x_a", 1, 0), ("b", "x_b", 1, 1), ("d", "x_d", 1, 1), ("c", "x_c", 1, 0)], ["x_a", "x_c"]),
]
for name, spec, want in cases:
    status, marks = forwarded_marks(spec)
    is_((status, marks), (200, want), "%s: the forwarded body keeps %s" % (name, want))

# Stages that declare HR_TF_UNITS_ONLY (ABI 1.5) get no body copy before
# them: t/plugins/units_editor replaces every tool output through
# unit_replace, so its failure is undone from the units' journal alone,
# next to body_editor stages whose edits outside units need the copy.
LOG = "\n".join("2026-12-05T10:%02d:%02dZ INFO worker-%d handled request %d in %d ms status=200"
                % (i // 60, i % 60, i % 4, i, i * 7 % 90) for i in range(300))


def units_stage(inst, fail=False, break_promise=False, text="[units_editor]"):
    return ("transform units_editor as %s { fail %s; break_promise %s; text \"%s\"; }\n"
            % (inst, "yes" if fail else "no", "yes" if break_promise else "no", text))


def forwarded(stage_text, posts=1):
    conf = ("host 127.0.0.1\nport @PORT@\nworkers 1\nopenai_api_url @MOCK_URL@\nplugin_dir %s\n%s"
            % (PLUGINS, stage_text))
    msgs = [{"role": "user", "content": "what failed?"},
            {"role": "assistant", "content": None,
             "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "sh", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": LOG}]
    with Mock() as m, Headroomd(conf_text=conf) as h:
        for _ in range(posts):
            r = post_json(h.url + "/v1/chat/completions", openai_body(messages=msgs),
                          headers={"Authorization": "Bearer sk-t"})
        body = json.loads(m.last_request()["body"])
        tool = body["messages"][2]["content"]
        state = "replaced" if tool == "[units_editor]" else "original" if tool == LOG else "other: %r" % tool[:60]
        return r.status, sorted(k for k in body if k.startswith("x_")), state, h.stderr_text(), tool


unit_cases = [
    ("body edit, then a units-only stage fails", stages([("a", "x_a", 1, 0)]) + units_stage("u", fail=True),
     ["x_a"], "original"),
    ("a units-only stage, then a body edit fails", units_stage("u") + stages([("b", "x_b", 1, 1)]),
     [], "replaced"),
    ("body edit, units-only stage, failing body edit",
     stages([("a", "x_a", 1, 0)]) + units_stage("u") + stages([("b", "x_b", 1, 1)]), ["x_a"], "replaced"),
    ("a units-only stage fails first, then a body edit",
     units_stage("u", fail=True) + stages([("a", "x_a", 1, 0)]), ["x_a"], "original"),
    ("two units-only stages, the second fails", units_stage("u") + units_stage("v", fail=True), [], "replaced"),
]
for name, text, want_marks, want_tool in unit_cases:
    status, marks, tool, _, _ = forwarded(text)
    is_((status, marks, tool), (200, want_marks, want_tool),
        "%s: the forwarded body keeps %s, the tool output %s" % (name, want_marks, want_tool))
# The WARN of a failed stage carries the code its apply returned: the
# plugin's only word on why (units_editor returns HR_EINVAL, -22).
_, _, _, err, _ = forwarded(units_stage("u", fail=True))
like(err, r"stage u failed: apply returned -22 \([0-9.]+ ms, budget \d+ ms\): its changes were undone",
     "a failed stage's WARN gives the code apply returned")

# A plugin that crashes takes headroomd down (it runs in the process), and
# the log names it: the last line was "listening" before.
conf = ("host 127.0.0.1\nport @PORT@\nworkers 1\nopenai_api_url @MOCK_URL@\nplugin_dir %s\n%s"
        % (PLUGINS, units_stage("crasher").replace("}", "crash yes; }")))
with Mock() as m:
    h = Headroomd(conf_text=conf, mock=m, expect_exit=None)
    h.start()
    msgs = [{"role": "user", "content": "what failed?"},
            {"role": "assistant", "content": None,
             "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "sh", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": LOG}]
    try:
        post_json(h.url + "/v1/chat/completions", openai_body(messages=msgs), timeout=20)
    except Exception:  # the connection dies with the daemon
        pass
    rc = h.stop(timeout=30)
    err = h.stderr_text()
    like(err, r"headroomd: fatal signal SIGSEGV in transform 'crasher' \(\S*units_editor\.so\): the plugin crashed "
              r"headroomd; remove its block", "a plugin's crash is named in the log (exit %s)" % rc)
    ok(rc != 0, "and headroomd did not exit 0 (%s)" % rc)

# A stage that declares HR_TF_UNITS_ONLY and edits the body anyway: its
# units are still put back when it fails, the request is served, and the
# log says which stage broke its promise and what to do.
status, marks, tool, err, _ = forwarded(units_stage("liar", fail=True, break_promise=True), posts=2)
is_((status, tool), (200, "original"), "a units-only stage that also edited the body and failed: units put back, 200")
ok_ = "declares HR_TF_UNITS_ONLY but set body_edited" in err and "rebuild it without the flag" in err
is_(ok_, True, "the log names the broken HR_TF_UNITS_ONLY promise and the fix")
is_(err.count("declares HR_TF_UNITS_ONLY"), 1, "once for the stage, not once per request (2 requests)")
# ABI 1.6: a stage that declares HR_TF_COPY_ON_WRITE (t/plugins/cow_editor:
# body_editor built to mark copies of the tools array and its first tool)
# gets a snapshot holding the tools by reference; a later stage that edits in
# place (body_editor with tool_mark) still gets a deep one, so its failure is
# undone too.
TOOLS = [{"type": "function", "function": {"name": "sh", "parameters": {"type": "object"}}},
         {"type": "function", "function": {"name": "zz", "parameters": {"type": "object"}}}]


def tool_marks(stage_text):
    # A last stage that always edits: the tree, not the client's bytes, is sent.
    stage_text += "transform body_editor as k { mark x_k; }\n"
    conf = ("host 127.0.0.1\nport @PORT@\nworkers 1\nopenai_api_url @MOCK_URL@\nplugin_dir %s\n%s"
            % (PLUGINS, stage_text))
    with Mock() as m, Headroomd(conf_text=conf) as h:
        r = post_json(h.url + "/v1/chat/completions", openai_body(tools=TOOLS), headers={"Authorization": "Bearer sk-t"})
        body = json.loads(m.last_request()["body"])
        return r.status, sorted(k for k in body if k.startswith("x_")), sorted(
            k for k in body["tools"][0] if k.startswith("x_"))


def editor(kind, inst, mark, tool_mark, fail=False, edit=True):
    return ("transform %s as %s { mark %s; tool_mark %s; edit %s; fail %s; }\n"
            % (kind, inst, mark, tool_mark, "yes" if edit else "no", "yes" if fail else "no"))


cow_cases = [
    ("a copy-on-write stage", editor("cow_editor", "c", "x_c", "x_tc"), ["x_c", "x_k"], ["x_tc"]),
    ("a copy-on-write stage fails", editor("cow_editor", "c", "x_c", "x_tc", fail=True), ["x_k"], []),
    ("copy-on-write, then an in-place edit fails",
     editor("cow_editor", "c", "x_c", "x_tc") + editor("body_editor", "b", "x_b", "x_tb", fail=True),
     ["x_c", "x_k"], ["x_tc"]),
    ("a copy-on-write stage that edits nothing, then an in-place edit fails (a deep snapshot is taken for it)",
     editor("cow_editor", "c", "x_c", "x_tc", edit=False) + editor("body_editor", "b", "x_b", "x_tb", fail=True),
     ["x_k"], []),
    ("an in-place edit, then a copy-on-write stage fails",
     editor("body_editor", "b", "x_b", "x_tb") + editor("cow_editor", "c", "x_c", "x_tc", fail=True),
     ["x_b", "x_k"], ["x_tb"]),
]
for name, text, want_body, want_tool in cow_cases:
    is_(tool_marks(text), (200, want_body, want_tool),
        "%s: the body keeps %s, the first tool %s" % (name, want_body, want_tool))

# ABI 1.6: the host keeps HR_UNIT_HAS_MARKER current when a stage replaces
# a text (the compressors no longer search texts themselves), and puts it
# back with the text when it undoes a failed stage. units_editor skips
# flagged units, as a stage must.
MARKED = "[headroom: 290 of 300 lines omitted; headroom_retrieve hash=0123456789abcdef01234567]"
*_, tool = forwarded(units_stage("m", text=MARKED) + units_stage("n", text="[n]"))
is_(tool, MARKED, "a text a stage replaced with a marker is flagged: the next stage leaves it")
*_, tool = forwarded(units_stage("m", text=MARKED, fail=True) + units_stage("n", text="[n]"))
is_(tool, "[n]", "the marker stage failed: text and flag are put back, and the next stage replaces the original")

# unit_replace refuses text that is not UTF-8 (as json_stringn would): the
# output is forwarded as the client sent it, and valid multi-byte text is
# taken. Bytes: a cut two-byte sequence, a surrogate, past U+10FFFF, an
# overlong '/', then "x\u00e9" (valid).
for hexbytes, want in (("78c328", "original"), ("78eda080", "original"), ("78f4908080", "original"),
                       ("78c0af", "original"), ("78c3a9", "other: %r" % "x\u00e9")):
    st, _, tool, _, _ = forwarded("transform units_editor as u { text_hex %s; }\n" % hexbytes)
    is_((st, tool), (200, want), "unit_replace with bytes %s: the forwarded output is the %s" % (hexbytes, want))

# HR_UNIT_HAS_MARKER on the client's own texts (src/pipeline.c flag_marker):
# the marker key as JSON, escaped in a JSON string (rows carried as text),
# or the text marker. t/fake_host.c, which plugin tests run on, mirrors the
# rule; t/crush_test.c (fake_host_marker_rule) checks it on these same texts.
# Each is followed by LOG (no marker in it): a unit too small to be worth
# it is offered to no stage.
MARKER_TEXTS = [
    ('{"_headroom":{"omitted":3,"hash":"0123456789abcdef01234567"}} and the rows after it', True),
    ('{"content":[{"type":"text","text":"[{\\"_headroom\\":{\\"omitted\\":3}},{\\"id\\":1}]"}]}', True),
    ("[headroom: 290 of 300 lines omitted; headroom_retrieve hash=0123456789abcdef01234567]", True),
    ("a column named _headroom in the rows, never quoted", False),
    ('{"_headroomx":1,"id":2} and the rows after it', False),
    ('{\\\\"_headroom\\\\":1} a backslash escaped, not the quote', False),
    ("[headroom:290 of 300 lines omitted] no space", False),
    ("[Headroom: 290 of 300 lines omitted] capital H", False),
]
msgs = [{"role": "user", "content": "what failed?"}]
for i, (text, _) in enumerate(MARKER_TEXTS):
    msgs.append({"role": "assistant", "content": None,
                 "tool_calls": [{"id": "m%d" % i, "type": "function", "function": {"name": "sh", "arguments": "{}"}}]})
    msgs.append({"role": "tool", "tool_call_id": "m%d" % i, "content": text + "\n" + LOG})
conf = ("host 127.0.0.1\nport @PORT@\nworkers 1\nopenai_api_url @MOCK_URL@\nplugin_dir %s\n%s"
        % (PLUGINS, units_stage("n", text="[n]")))
with Mock() as m, Headroomd(conf_text=conf) as h:
    r = post_json(h.url + "/v1/chat/completions", openai_body(messages=msgs), headers={"Authorization": "Bearer sk-t"})
    sent = [x["content"] for x in json.loads(m.last_request()["body"])["messages"] if x["role"] == "tool"]
for (text, flagged), out in zip(MARKER_TEXTS, sent):
    is_(out != "[n]", flagged, "%r: %s" % (text[:50], "flagged, left as sent" if flagged else "not flagged, replaced"))
done()
