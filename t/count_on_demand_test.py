#!/usr/bin/env python3
# count_on_demand_test.py — headroomd counts a never-seen tool output only as
# far as the stages' decisions need before forwarding (plugin ABI 1.3,
# HR_TF_COUNTS_ON_DEMAND), and the rest after. What a user sees must not
# change: the figures equal those of a daemon with no stage, each stage's
# saving (request log) adds up to the request's, and a stage that reads
# hr_unit.tokens directly still gets exact counts.
#
# t/plugins/count_probe checks unit_tokens_at_least / unit_tokens against
# count_tokens from inside the pipeline; count_probe_eager (no flag) checks
# hr_unit.tokens. Both show what they found in GET /stats.
import json
import os
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import Headroomd, Mock, cmp_ok, done, is_, ok, post_json  # noqa: E402

T_DIR = os.path.dirname(os.path.abspath(__file__))
PLUGINS = os.environ.get("HEADROOM_TEST_PLUGIN_DIR") or os.path.join(T_DIR, "..", "plugins", ".libs")
TEST_PLUGINS = os.environ.get("HEADROOM_TEST_BAD_PLUGIN_DIR") or os.path.join(T_DIR, "plugins", ".libs")

# One plugin_dir holds both the shipped stages and the probes.
pdir = tempfile.mkdtemp(prefix="hr-probe-plugins-")
for d, names in ((PLUGINS, ("router", "smart_crusher", "log_compressor", "request_log")),
                 (TEST_PLUGINS, ("count_probe", "count_probe_eager", "count_probe_idle"))):
    for n in names:
        os.symlink(os.path.join(os.path.abspath(d), n + ".so"), os.path.join(pdir, n + ".so"))

BASE = "host 127.0.0.1\nport @PORT@\nworkers 1\nopenai_api_url @MOCK_URL@\nanthropic_api_url @MOCK_URL@\nplugin_dir %s\n" % pdir


def rows(n, salt):
    return json.dumps([{"id": i, "level": "ERROR" if i == n // 3 else "INFO", "host": "web-%d" % (i % 7),
                        "msg": "%s request %d served in %d ms" % (salt, i, (i * 37) % 500)} for i in range(n)])


BIG = rows(3000, "alpha")        # ~270 KB: counted on demand, most of it after forwarding
MID = rows(300, "beta")          # ~27 KB
LOG = "\n".join("2026-12-05T03:%02d:%02d INFO worker-%d handled job %d in %d ms" % (i // 60 % 60, i % 60, i % 5, i, i % 97)
                for i in range(4000))  # ~250 KB of plain text no JSON stage takes
SHORT_WORDS = " ".join(["b" * 57] * 10)


def chat(model, outputs, stream=False):
    calls = [{"id": "c%d" % i, "type": "function", "function": {"name": "run", "arguments": "{}"}}
             for i in range(len(outputs))]
    msgs = [{"role": "system", "content": "You are a careful agent."},
            {"role": "user", "content": "Which job failed, and why?"},
            {"role": "assistant", "content": None, "tool_calls": calls}]
    msgs += [{"role": "tool", "tool_call_id": "c%d" % i, "content": o} for i, o in enumerate(outputs)]
    b = {"model": model, "messages": msgs}
    if stream:
        b["stream"] = True
    return b


def messages(outputs):
    uses = [{"type": "tool_use", "id": "t%d" % i, "name": "run", "input": {}} for i in range(len(outputs))]
    results = [{"type": "tool_result", "tool_use_id": "t%d" % i, "content": o} for i, o in enumerate(outputs)]
    return {"model": "claude-sonnet-4-5", "max_tokens": 50, "system": "Be brief.",
            "messages": [{"role": "user", "content": "Look."}, {"role": "assistant", "content": uses},
                         {"role": "user", "content": results}]}


HDRS = {"Authorization": "Bearer sk-t", "x-api-key": "k", "anthropic-version": "2023-06-01"}
CASES = [
    ("o200k, a never-seen 270 KB JSON output, a 27 KB one, a 250 KB log, a short one", "/v1/chat/completions",
     chat("gpt-4o", [BIG, MID, LOG, SHORT_WORDS])),
    ("o200k, the same outputs again (counts from the cache)", "/v1/chat/completions",
     chat("gpt-4o", [BIG, MID, LOG, SHORT_WORDS])),
    ("cl100k, new outputs", "/v1/chat/completions", chat("gpt-4-turbo", [rows(2000, "gamma"), LOG + "\nend"])),
    ("Claude (estimate), new outputs", "/v1/messages", messages([rows(2500, "delta"), MID])),
]


def run(stages, label):
    logf = os.path.join(tempfile.mkdtemp(prefix="hr-probe-log-"), "requests.jsonl")
    conf = BASE + stages + "sink request_log {\n    path %s\n}\n" % logf
    figs = []
    with Mock() as m, Headroomd(mock=m, conf_text=conf) as h:
        for name, path, body in CASES:
            r = post_json(h.url + path, body, headers=HDRS)
            figs.append((int(r.header("x-headroom-tokens-before")), int(r.header("x-headroom-tokens-after")))
                        if r.status == 200 else None)
        st = h.stats()
    ok(all(figs), "%s: every request answered with its figures" % label)
    with open(logf) as f:
        lines = [json.loads(x) for x in f if x.strip()]
    is_(len(lines), len(CASES), "%s: one request-log line per request" % label)
    return figs, st, lines


reference, _, _ = run("", "no stage")
STAGES = ("transform router {\n}\n"
          "transform count_probe {\n    full %s\n}\n"
          "transform smart_crusher {\n}\n"
          "transform count_probe_eager {\n}\n"
          "transform log_compressor {\n}\n")
figs, st, lines = run(STAGES % "no", "router, probe, smart_crusher, eager probe, log_compressor")

for i, (name, _, _) in enumerate(CASES):
    if not (figs[i] and reference[i]):
        continue
    is_(figs[i][0], reference[i][0], "%s: tokens before = a daemon without stages (%d)" % (name, reference[i][0]))
    cmp_ok(figs[i][1], "<", figs[i][0], "%s: compressed (%d -> %d)" % (name, figs[i][0], figs[i][1]))
    ln = lines[i]
    # The request saves what its stages saved less the headroom_retrieve
    # tool added after them (charged as sent).
    per_stage = sum(t.get("tokens_saved", 0) for t in ln.get("transforms", []))
    cmp_ok(per_stage - (figs[i][0] - figs[i][1]), "<", 160,
           "%s: the stages' savings in the request log (%d) are the request's (%d) and the retrieve tool's"
           % (name, per_stage, figs[i][0] - figs[i][1]))
    crush = [t for t in ln.get("transforms", []) if t.get("name") == "smart_crusher"]
    ok(crush and crush[0]["tokens_saved"] > 0, "%s: smart_crusher is credited with its saving (%s)"
       % (name, crush and crush[0]["tokens_saved"]))

probe, eager = st.get("count_probe", {}), st.get("count_probe_eager", {})
is_(probe.get("mismatches"), 0, "on-demand probe: every answer agrees with count_tokens")
cmp_ok(probe.get("unknown", 0), ">", 0, "on-demand probe saw never-seen outputs left uncounted (%s)" % probe.get("unknown"))
cmp_ok(probe.get("partial", 0), ">", 0,
       "on-demand probe: a long output stayed uncounted after a small question (%s)" % probe.get("partial"))
is_(eager.get("mismatches"), 0, "eager probe: hr_unit.tokens is exact for a stage without the flag")
cmp_ok(eager.get("units", 0), ">=", 8, "eager probe looked at every unit (%s)" % eager.get("units"))

figs_full, st_full, lines_full = run(STAGES % "yes", "the same, the probe asking whole counts")
is_(st_full.get("count_probe", {}).get("mismatches"), 0,
    "probe asking whole counts: unit_tokens and at_least(count), at_least(count + 1) agree with count_tokens")
for i, (name, _, _) in enumerate(CASES):
    if figs_full[i] and figs[i]:
        is_(figs_full[i], figs[i], "%s: the same figures when a stage asked for whole counts first" % name)
    if i < len(lines_full):
        # There every saving is credited when made; here smart_crusher's are
        # owed until the originals are counted, after forwarding.
        is_([(t["name"], t["tokens_saved"]) for t in lines[i]["transforms"]],
            [(t["name"], t["tokens_saved"]) for t in lines_full[i]["transforms"]],
            "%s: each stage credited as when every count was taken first" % name)

# A stage that declares HR_TF_NEEDS_UNITS (ABI 1.8) is called only for a
# request with units: not for a plain chat turn, nor for one whose only tool
# output is below min_tokens. It is still listed, at 0 ms, and the figures
# are those of a daemon without it.
logf = os.path.join(tempfile.mkdtemp(prefix="hr-probe-log-"), "requests.jsonl")
conf = (BASE + "transform count_probe {\n}\ntransform count_probe_idle {\n}\n"
        "sink request_log {\n    path %s\n}\n" % logf)
turns = [("a plain chat turn", {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello there"}]}),
         ("a turn whose only tool output is short", chat("gpt-4o", ["exit 0"])),
         ("a turn with a 27 KB tool output", chat("gpt-4o", [MID])),
         ("a plain chat turn again", {"model": "gpt-4o", "messages": [{"role": "user", "content": "Thanks"}]})]
with Mock() as m, Headroomd(mock=m, conf_text=conf) as h, \
        Headroomd(mock=m, conf_text=BASE) as bare:
    got = []
    for name, body in turns:
        r = post_json(h.url + "/v1/chat/completions", body, headers=HDRS)
        b = post_json(bare.url + "/v1/chat/completions", body, headers=HDRS)
        got.append((name, r.status, r.header("x-headroom-tokens-before"), b.header("x-headroom-tokens-before")))
    st = h.stats()
for name, status, before, bare_before in got:
    ok(status == 200 and before == bare_before,
       "%s: answered, %s tokens before as without stages (%s)" % (name, before, bare_before))
is_(st.get("count_probe", {}).get("applied"), 4, "a stage without HR_TF_NEEDS_UNITS is called for every request")
is_(st.get("count_probe_idle", {}).get("applied"), 1,
    "a stage with HR_TF_NEEDS_UNITS is called only for the request with a unit")
is_(st.get("count_probe_idle", {}).get("mismatches"), 0, "and its counts there agree with count_tokens")
with open(logf) as f:
    idle = [[t for t in json.loads(x).get("transforms", []) if t["name"] == "count_probe_idle"] for x in f if x.strip()]
ok(len(idle) == 4 and all(len(t) == 1 for t in idle) and idle[0][0]["ms"] == 0 and idle[3][0]["ms"] == 0,
   "the request log still lists the stage on every request, at 0 ms where it was not called")
done()
