#!/usr/bin/env python3
# retrieve_test.py — compression end to end through the daemon: smart_crusher
# shrinks a large tool output, the original is retrievable by hash, the
# headroom_retrieve tool is offered and answered by headroomd, /v1/compress,
# and identical requests give identical upstream bodies.
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403
import base64  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import shutil  # noqa: E402
import atexit  # noqa: E402

# stage_budget_ms: under valgrind on a loaded machine a cold crush of 1000
# rows can take longer than the default 250 ms, and an undone stage is not
# what this test is about.
TRANSFORMS = """
stage_budget_ms 60000
transform router { }
transform cache_aligner { }
transform smart_crusher { }
"""

fx = tempfile.mkdtemp(prefix="hr-fixtures-")
atexit.register(shutil.rmtree, fx, True)
subprocess.run([sys.executable, os.path.join(T_DIR, "fixtures", "gen_fixtures.py"), "--out", fx], check=True,
               capture_output=True)
ROWS = json.load(open(os.path.join(fx, "logs_1000.json")))
ROWS_TEXT = json.dumps(ROWS)


def openai_body(stream=False):
    return {"model": "gpt-4o", "stream": stream, "messages": [
        {"role": "user", "content": "Which requests failed?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "search_logs", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": ROWS_TEXT}]}


def anthropic_body():
    return {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [
        {"role": "user", "content": "Which requests failed?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "search_logs", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": ROWS_TEXT}]}]}


def upstream_bodies(mock, n):
    return [json.loads(base64.b64decode(r["body_b64"])) for r in mock.requests()[-n:]]


def marker_of(text):
    arr = json.loads(text)
    return arr[0]["_headroom"], arr[1:]


with Mock() as mock, Headroomd(extra_conf=TRANSFORMS) as hd:
    # --- OpenAI: compressed, deterministic, retrievable -------------------
    r1 = post_json(hd.url + "/v1/chat/completions", openai_body())
    r2 = post_json(hd.url + "/v1/chat/completions", openai_body())
    is_(r1.status, 200, "OpenAI request with a 1000-row tool output answered")
    before, after = int(r1.header("x-headroom-tokens-before")), int(r1.header("x-headroom-tokens-after"))
    cmp_ok(1 - after / before, ">=", 0.90, "at least 90 %% of the request's tokens saved (%d -> %d)" % (before, after))
    sent = upstream_bodies(mock, 2)
    is_(json.dumps(sent[0]), json.dumps(sent[1]), "the same request twice gives byte-identical upstream bodies")
    marker, kept = marker_of(sent[0]["messages"][2]["content"])
    is_(marker["total"], 1000, "marker says 1000 rows were there")
    is_(marker["omitted"] + len(kept), 1000, "kept + omitted = total")
    errors = [i for i, row in enumerate(ROWS) if row.get("level") in ("ERROR", "CRITICAL", "FATAL")]
    listed = kept_indices(marker)
    is_(len(listed), len(kept), "the marker lists one index per kept row")
    ok(set(errors) <= set(listed), "every ERROR/CRITICAL row is kept (%d rows)" % len(errors))
    ok(0 in listed and 999 in listed, "first and last rows kept")
    is_([ROWS[i] for i in listed], kept, "the listed indices are the kept rows, in order")
    names = [t["function"]["name"] for t in sent[0].get("tools", [])]
    is_(names, ["headroom_retrieve"], "headroom_retrieve tool offered when rows were dropped")

    st, got = get_json(hd.url + "/v1/retrieve/" + str(marker_hash(marker["all_rows"])))
    is_(st, 200, "GET /v1/retrieve/<hash> answers")
    is_(json.loads((got or {}).get("original_content", "null")), ROWS, "and returns the original rows")
    cli = os.environ.get("HEADROOM_CLI") or os.path.join(T_DIR, "..", "src", "headroom")
    counted = subprocess.run([cli, "tokens", "--model", "gpt-4o", "-"], input=ROWS_TEXT.encode(), capture_output=True)
    is_((got or {}).get("original_tokens"), int(counted.stdout.split()[0]) if counted.returncode == 0 else None,
        "original_tokens is counted for the request's model (gpt-4o: o200k), as `headroom tokens --model gpt-4o`")
    st, err = get_json(hd.url + "/v1/retrieve/" + "0" * 24)
    is_(st, 404, "unknown hash -> 404")
    ok(err and "error" in err, "with a JSON error body")

    # --- streaming requests are compressed but not offered the tool -------
    mock.reset()
    s = request("POST", hd.url + "/v1/chat/completions", body=openai_body(stream=True))
    is_(s.status, 200, "streamed request answered")
    sent = upstream_bodies(mock, 1)[0]
    ok("_headroom" in sent["messages"][2]["content"], "streamed request compressed too")
    ok("tools" not in sent, "no headroom_retrieve tool on a streamed request")

    # --- the model calls headroom_retrieve: headroomd answers it ----------
    for provider, path, body, hdr in (
            ("openai", "/v1/chat/completions", openai_body(), {}),
            ("anthropic", "/v1/messages", anthropic_body(), {"x-api-key": "k", "anthropic-version": "2023-06-01"})):
        mock.reset()
        first = post_json(hd.url + "/v1/compress" + ("?provider=anthropic" if provider == "anthropic" else ""), body)
        req = first.json()["request"]
        content = req["messages"][2]["content"]
        text = content if isinstance(content, str) else content[0]["content"]
        h = marker_hash(marker_of(text)[0]["all_rows"])
        hdr = dict(hdr, **{"x-mock-tool-call": "headroom_retrieve", "x-mock-tool-args": json.dumps({"hash": h})})
        r = post_json(hd.url + path, body, headers=hdr)
        is_(r.status, 200, "%s: answer after a headroom_retrieve call" % provider)
        reply = json.dumps(r.json())
        like(reply, r"tool result of %d bytes" % len(ROWS_TEXT),
             "%s: the model got the full original back (%d bytes)" % (provider, len(ROWS_TEXT)))
        ok("headroom_retrieve" not in reply, "%s: the client never sees the retrieve call" % provider)
        is_(len(mock.requests()), 2, "%s: two upstream rounds" % provider)
        is_(int(r.header("x-headroom-tokens-saved")), 0,
            "%s: retrieving everything gives the saving back (saved reported as 0, never negative)" % provider)

    # --- a call with a query gets only the rows that match it -------------
    mock.reset()
    first = post_json(hd.url + "/v1/compress", openai_body())
    h = marker_hash(marker_of(first.json()["request"]["messages"][2]["content"])[0]["all_rows"])
    needle = ROWS[500]["trace_id"]
    hdr = {"x-mock-tool-call": "headroom_retrieve", "x-mock-tool-args": json.dumps({"hash": h, "query": needle})}
    r = post_json(hd.url + "/v1/chat/completions", openai_body(), headers=hdr)
    is_((r.status, len(mock.requests())), (200, 2), "a headroom_retrieve call with a query is answered (two rounds)")
    result = upstream_bodies(mock, 1)[0]["messages"][-1]["content"]
    head, _, rows_text = result.partition("\n")
    like(head, r"^headroom_retrieve: the 1 row of the original \(1000 rows\) that best match the query '%s', best "
         r"first; call headroom_retrieve without a query for the whole original$" % needle,
         "the result says what it holds and how to get the rest")
    is_(json.loads(rows_text or "null"), [ROWS[500]], "and holds the one row with that trace id")
    cmp_ok(int(r.header("x-headroom-tokens-saved")), ">", 0, "retrieving one row keeps most of the saving")
    st, got = get_json(hd.url + "/v1/retrieve/%s?query=%s" % (h, needle))
    is_((got or {}).get("query_matches"), [ROWS[500]], "GET /v1/retrieve?query= gives the same row")

    # --- /v1/compress ------------------------------------------------------
    c = post_json(hd.url + "/v1/compress", openai_body()).json()
    cmp_ok(c["tokens_saved"], ">", 0, "/v1/compress reports tokens saved")
    is_(c["tokens_before"] - c["tokens_after"], c["tokens_saved"], "before - after = saved")
    ok(any(t.startswith("smart_crusher:") for t in c["tags"]), "tags name the smart_crusher strategy")
    is_([s["name"] for s in c["stages"]], ["router", "cache_aligner", "smart_crusher"], "stages in config order")
    bad = request("POST", hd.url + "/v1/compress", body=b"[1,2")
    is_(bad.status, 400, "/v1/compress with bad JSON -> 400")
    st, stats = get_json(hd.url + "/stats")
    cmp_ok(stats["tokens"]["saved"], ">", 0, "/stats counts the saving")
    is_(stats["pipeline_timing"]["smart_crusher"]["count"], stats["pipeline_timing"]["pipeline_total"]["count"],
        "smart_crusher timed on every pipeline run")
    cache = stats["smart_crusher"]["result_cache"]
    cmp_ok(cache["hits"], ">=", 1, "a resent tool output is a smart_crusher result-cache hit (%d of %d lookups)"
           % (cache["hits"], cache["lookups"]))


# --- Several outputs shared between threads: same bytes as one thread ------
def agent_body():
    msgs = [{"role": "user", "content": "Which requests failed?"}]
    for i, name in enumerate(["logs_1000", "db_1000", "search_100", "metrics_1000", "api_100"]):
        msgs.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": "c%d" % i, "type": "function", "function": {"name": "run", "arguments": "{}"}}]})
        msgs.append({"role": "tool", "tool_call_id": "c%d" % i,
                     "content": open(os.path.join(fx, name + ".json")).read()})
    return {"model": "gpt-4o", "messages": msgs}


sent_by = {}
for threads in ("1", "4"):
    # A generous stage budget: under valgrind a stage can take seconds, and an
    # undone stage would make the two bodies differ for a reason not tested here.
    with Mock() as mock, Headroomd(extra_conf="compress_threads %s\nstage_budget_ms 60000\n" % threads
                                   + TRANSFORMS) as hd:
        r = post_json(hd.url + "/v1/chat/completions", agent_body())
        is_(r.status, 200, "compress_threads %s: a 5-output agent request is answered" % threads)
        sent_by[threads] = json.dumps(upstream_bodies(mock, 1)[0])
        like(hd.stderr_text(), r"\(\d+ workers, %d compression helpers" % (int(threads) - 1),
             "compress_threads %s: the start-up line counts %d helpers" % (threads, int(threads) - 1))
ok(len(sent_by["1"]) < len(json.dumps(agent_body())) / 5, "the outputs were compressed")
is_(sent_by["4"], sent_by["1"], "compress_threads 4 and 1 send byte-identical upstream bodies")

# --- A text original (a log): a query gets the matching lines, in order -----
LOG = "\n".join("2025-01-02 10:%02d:%02d INFO worker-%d handled job %d in %d ms" % (i // 60 % 60, i % 60, i % 5, i,
                                                                                 10 + i % 90) for i in range(3000))
LOG_BODY = {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [
    {"role": "user", "content": "What did the worker log?"},
    {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "bash", "input": {}}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": LOG}]}]}
with Mock() as mock, Headroomd(extra_conf="stage_budget_ms 60000\ntransform router { }\ntransform log_compressor { }\n") as hd:
    first = post_json(hd.url + "/v1/compress?provider=anthropic", LOG_BODY).json()
    text = first["request"]["messages"][2]["content"][0]["content"]
    ok("job 1234 " not in text and "hash=" in text, "the log was compressed, the line of job 1234 left out")
    h = re.search(r"hash=([0-9a-f]{24})", text).group(1)
    st, got = get_json(hd.url + "/v1/retrieve/%s?query=job+1234" % h)
    is_((got or {}).get("query_matches"), [{"line": 1235, "text": LOG.split("\n")[1234]}],
        "GET /v1/retrieve?query= on a text original: the matching line, numbered")
    hdr = {"x-api-key": "k", "anthropic-version": "2023-06-01", "x-mock-tool-call": "headroom_retrieve",
           "x-mock-tool-args": json.dumps({"hash": h, "query": "job 1234"})}
    r = post_json(hd.url + "/v1/messages", LOG_BODY, headers=hdr)
    is_((r.status, len(mock.requests())), (200, 2), "Anthropic: a headroom_retrieve call with a query is answered")
    result = upstream_bodies(mock, 1)[0]["messages"][-1]["content"][0]["content"]
    is_(result.split("\n"), ["headroom_retrieve: the 1 line of the original (3000 lines) that best match the query "
                             "'job 1234', in order; call headroom_retrieve without a query for the whole "
                             "original", "L1235: " + LOG.split("\n")[1234], ""],
        "the model gets the one line, numbered, not 3000")
    hdr["x-mock-tool-args"] = json.dumps({"hash": h, "query": "nothing-like-this"})
    r = post_json(hd.url + "/v1/messages", LOG_BODY, headers=hdr)
    like(upstream_bodies(mock, 1)[0]["messages"][-1]["content"][0]["content"],
         r"^headroom_retrieve: no line of the original \(3000 lines\) matches the query 'nothing-like-this'; call "
         r"headroom_retrieve without a query", "a query that matches nothing says so")

done()
