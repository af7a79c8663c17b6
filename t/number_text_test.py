#!/usr/bin/env python3
# t/number_text_test.py -- a request body headroomd rewrites keeps its
# numbers' text: "temperature":0.7 arrives upstream as 0.7, not as jansson's
# 0.69999999999999996 (the same double, other bytes in a provider's logs, a
# diff, a cache keyed on bytes). Checked on every path that re-serialises a
# body: the compressed request, the follow-up sent after answering a
# headroom_retrieve call, the answer edited to hide that tool (a Responses
# answer echoes temperature and top_p), and /v1/compress's "request".
# A number the client spelled otherwise than the shortest form (1e-05, 2.50,
# 1E5, -0) arrives as spelled too, the same bytes every time whatever else
# is in flight (a provider's prompt cache compares bytes).
import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F401,F403

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
ROWS_TEXT = json.dumps(json.load(open(os.path.join(fx, "logs_1000.json"))))

# Reals as a client writes them (each the shortest text of its double, in
# the spelling headroomd writes: exponent without '+' or leading zeros).
REALS = ["0.7", "0.1", "0.3", "-0.2", "-0.1", "2.5", "0.95", "1e-7", "1e300", "0.30000000000000004", "-0.0",
         "5e-324", "1.7976931348623157e308", "2.2250738585072014e-308", "100.0", "123.456", "3.14159",
         "0.12345678901234568", "1.1", "2.2", "3.3", "0.01", "99.99", "1e22", "4.35", "0.0001"]
NUM_RE = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


def numbers_in(text):
    """Every number of a JSON text (integers too), as written, in order."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i += 1
            while text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
        elif c == "-" or c.isdigit():
            m = NUM_RE.match(text, i)
            out.append(m.group(0))
            i = m.end()
        else:
            i += 1
    return out


def reals_in(text):
    """The reals of a JSON text, as written, in order (strings skipped)."""
    return [x for x in numbers_in(text) if any(c in x for c in ".eE")]


# Numbers spelled otherwise than headroomd's shortest form (which would be
# 1e-5, 2.5, 100000.0, 0.1, 1e16, 1e-5, 100.0, -0.0025, 1.5, 0 and 1e-5),
# beside some it writes the same way.
SPELLED = ["1e-05", "2.50", "1E5", "0.10000000000000001", "1e+16", "0.00001", "100.00", "-2.5E-3", "1.5e0", "-0",
           "10e-6", "1.0", "-0.0", "9223372036854775807", "-9223372036854775808", "123456789012345678", "0.7",
           # beyond int64: valid JSON that jansson refuses ("too big integer")
           "18446744073709551615", "-9223372036854775809", "123456789012345678901234567890"]
SHORTEST_ONLY = ["1e-5", "2.5", "100000.0", "0.1", "1e16", "100.0", "-0.0025", "1.5"]


def spelled_schema():
    return ('{"type":"object","properties":{"x":{"type":"number","minimum":1e-05,"maximum":1E5,"default":2.50,'
            '"multipleOf":0.00001,"examples":[%s]}}}' % ",".join(SPELLED))


def schema():
    """A tool's JSON schema carrying most of REALS (written by hand below)."""
    return ('{"type":"object","properties":{"threshold":{"type":"number","default":0.95,"minimum":1e-7,'
            '"maximum":1e300,"examples":[0.30000000000000004,-0.0,5e-324,1.7976931348623157e308,'
            '2.2250738585072014e-308,100.0,123.456,3.14159,0.12345678901234568,1.1,2.2,3.3,0.01,99.99,1e22,'
            '4.35,0.0001]}}}')


def chat_text():
    return ('{"model":"gpt-4o","temperature":0.7,"top_p":0.1,"frequency_penalty":0.3,"presence_penalty":-0.2,'
            '"logit_bias":{"50256":-0.1,"198":2.5},'
            '"tools":[{"type":"function","function":{"name":"search_logs","parameters":%s}}],'
            '"messages":[{"role":"user","content":"Which requests failed?"},'
            '{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function",'
            '"function":{"name":"search_logs","arguments":"{}"}}]},'
            '{"role":"tool","tool_call_id":"c1","content":%s}]}' % (schema(), json.dumps(ROWS_TEXT)))


def anthropic_text():
    return ('{"model":"claude-sonnet-4-5","max_tokens":64,"temperature":0.7,"top_p":0.1,'
            '"tools":[{"name":"search_logs","input_schema":%s}],'
            '"messages":[{"role":"user","content":"Which requests failed?"},'
            '{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"search_logs",'
            '"input":{"since":-0.2,"ratio":2.5}}]},'
            '{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":%s}]}]}'
            % (schema(), json.dumps(ROWS_TEXT)))


def responses_text():
    return ('{"model":"gpt-4o","temperature":0.7,"top_p":0.1,'
            '"tools":[{"type":"function","name":"search_logs","parameters":%s}],'
            '"input":[{"role":"user","content":"Which requests failed?"},'
            '{"type":"function_call","call_id":"c1","name":"search_logs","arguments":"{}"},'
            '{"type":"function_call_output","call_id":"c1","output":%s}]}' % (schema(), json.dumps(ROWS_TEXT)))


def tool_text(body, provider):
    if provider == "anthropic":
        return body["messages"][2]["content"][0]["content"]
    if provider == "responses":
        return body["input"][2]["output"]
    return body["messages"][2]["content"]


ANTH = {"x-api-key": "k", "anthropic-version": "2023-06-01", "content-type": "application/json"}
JSON_HDR = {"content-type": "application/json"}
CASES = (("openai", "/v1/chat/completions", chat_text(), JSON_HDR),
         ("anthropic", "/v1/messages", anthropic_text(), ANTH),
         ("responses", "/v1/responses", responses_text(), JSON_HDR))

with Mock() as mock, Headroomd(extra_conf=TRANSFORMS) as hd:
    for provider, path, text, hdr in CASES:
        sent_reals = reals_in(text)
        ok(len(sent_reals) >= 20, "%s: the request holds %d reals" % (provider, len(sent_reals)))

        # --- the compressed request ---------------------------------------
        mock.reset()
        r = request("POST", hd.url + path, body=text.encode(), headers=hdr)
        is_(r.status, 200, "%s: answered" % provider)
        up = mock.last_request()["body"].decode()
        ok("_headroom" in up and int(r.header("x-headroom-tokens-after") or 0) <
           int(r.header("x-headroom-tokens-before") or 0), "%s: the body was rewritten (rows crushed)" % provider)
        # (cache_aligner may reorder a tool schema's keys: compared as sets of texts)
        is_(sorted(reals_in(up)), sorted(sent_reals), "%s: every real arrives upstream as the client wrote it" % provider)
        ok('"temperature":0.7,"top_p":0.1' in up, "%s: \"temperature\":0.7,\"top_p\":0.1 byte for byte" % provider)

        # --- /v1/compress: "request" is what the proxy would forward ------
        c = request("POST", hd.url + "/v1/compress" + ("?provider=anthropic" if provider == "anthropic" else ""),
                    body=text.encode(), headers=hdr)
        is_(c.status, 200, "%s: /v1/compress answered" % provider)
        creq = (c.json() or {}).get("request") or {}
        is_(creq.get("top_p"), 0.1, "%s: /v1/compress request.top_p" % provider)
        is_(creq.get("tools") and json.dumps(creq["tools"]).count("0.12345678901234568"), 1,
            "%s: /v1/compress keeps 0.12345678901234568 (%%.15g made it another double)" % provider)
        rows = tool_text(creq, provider) if creq else ""
        is_(sorted(reals_in(c.body.decode()[c.body.decode().index('"request":'):])), sorted(sent_reals),
            "%s: /v1/compress request's reals as written" % provider)

        # --- the follow-up after a headroom_retrieve call ------------------
        marker = json.loads(rows)[0]["_headroom"] if rows.startswith("[") else {}
        h = marker_hash(marker.get("all_rows", ""))
        mock.reset()
        call = dict(hdr, **{"x-mock-tool-call": "headroom_retrieve", "x-mock-tool-args": json.dumps({"hash": h})})
        r = request("POST", hd.url + path, body=text.encode(), headers=call)
        reqs = mock.requests()
        is_((r.status, len(reqs)), (200, 2), "%s: a headroom_retrieve call is answered (two rounds)" % provider)
        if len(reqs) == 2:
            follow = reqs[1]["body"].decode()
            ok("headroom_retrieve" in follow, "%s: the second round carries the retrieve result" % provider)
            is_(sorted(reals_in(follow)), sorted(sent_reals), "%s: the follow-up keeps every real as the client wrote it" % provider)

        # --- the answer, edited to hide headroom_retrieve ------------------
        if provider == "responses":
            mock.reset()
            r = request("POST", hd.url + path, body=text.encode(), headers=hdr)
            ans = r.body.decode()
            ok('"temperature":0.7' in ans and '"top_p":0.1' in ans,
               "responses: the answer echoing temperature 0.7 and top_p 0.1 reaches the client as 0.7 and 0.1")
            ok("headroom_retrieve" not in ans, "responses: (the answer was edited: the tool hidden)")
            # (the mock is Python: it echoes the schema in Python's spelling, 1e-07, 1e+300)
            is_(sorted(reals_in(ans[ans.index('"tools":'):ans.index(',"top_p":')])),
                sorted(reals_in(json.dumps(json.loads(schema())))),
                "responses: the echoed tool schema's reals as the provider wrote them")
    # --- numbers spelled otherwise than the shortest form ----------------
    def spelled_text(provider, temperature="1.0", top_p="0.90", user="u"):
        if provider == "anthropic":
            return ('{"model":"claude-sonnet-4-5","max_tokens":64,"temperature":%s,"top_p":%s,'
                    '"metadata":{"user_id":"%s"},"tools":[{"name":"search_logs","input_schema":%s}],'
                    '"messages":[{"role":"user","content":"Which requests failed?"},'
                    '{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"search_logs",'
                    '"input":{"since":-1e-05,"ratio":2.50,"n":-0}}]},'
                    '{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":%s}]}]}'
                    % (temperature, top_p, user, spelled_schema(), json.dumps(ROWS_TEXT)))
        if provider == "responses":
            return ('{"model":"gpt-4o","temperature":%s,"top_p":%s,"user":"%s",'
                    '"tools":[{"type":"function","name":"search_logs","parameters":%s}],'
                    '"input":[{"role":"user","content":"Which requests failed?"},'
                    '{"type":"function_call","call_id":"c1","name":"search_logs","arguments":"{}"},'
                    '{"type":"function_call_output","call_id":"c1","output":%s}]}'
                    % (temperature, top_p, user, spelled_schema(), json.dumps(ROWS_TEXT)))
        return ('{"model":"gpt-4o","temperature":%s,"top_p":%s,"user":"%s","logit_bias":{"50256":-1E-3},'
                '"tools":[{"type":"function","function":{"name":"search_logs","parameters":%s}}],'
                '"messages":[{"role":"user","content":"Which requests failed?"},'
                '{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function",'
                '"function":{"name":"search_logs","arguments":"{}"}}]},'
                '{"role":"tool","tool_call_id":"c1","content":%s}]}'
                % (temperature, top_p, user, spelled_schema(), json.dumps(ROWS_TEXT)))

    def arrived_as_sent(sent, got):
        """The numbers of sent missing from got (spelled otherwise there), and
        shortest forms in got the client never wrote."""
        missing = Counter(numbers_in(sent)) - Counter(numbers_in(got))
        return sorted(missing.elements()), sorted(x for x in numbers_in(got) if x in SHORTEST_ONLY)

    for provider, path, _, hdr in CASES:
        text = spelled_text(provider)
        mock.reset()
        r = request("POST", hd.url + path, body=text.encode(), headers=hdr)
        up = mock.last_request()["body"].decode() if r.status == 200 else ""
        ok("_headroom" in up, "%s, spelled numbers: the body was rewritten (rows crushed)" % provider)
        is_(arrived_as_sent(text, up), ([], []),
            "%s: 1e-05, 2.50, 1E5, -0, 0.10000000000000001, 1e+16 ... arrive upstream as the client spelled them" % provider)
        ok('"temperature":1.0,"top_p":0.90' in up, "%s: \"temperature\":1.0,\"top_p\":0.90 byte for byte" % provider)
        mock.reset()
        r2 = request("POST", hd.url + path, body=text.encode(), headers=hdr)
        up2 = mock.last_request()["body"].decode() if r2.status == 200 else "(status %d)" % r2.status
        ok(up2 == up, "%s: the same body sent again goes upstream as the same bytes" % provider)
        c = request("POST", hd.url + "/v1/compress" + ("?provider=anthropic" if provider == "anthropic" else ""),
                    body=text.encode(), headers=hdr)
        cbody = c.body.decode()
        is_(arrived_as_sent(text, cbody[cbody.find('"request":'):]), ([], []),
            "%s: /v1/compress's request holds the numbers as spelled" % provider)

    # the follow-up after a headroom_retrieve round is written from the same tree
    text = spelled_text("openai")
    c = request("POST", hd.url + "/v1/compress", body=text.encode(), headers=JSON_HDR)
    rows = tool_text((c.json() or {}).get("request") or {}, "openai") if c.status == 200 else ""
    h = marker_hash(json.loads(rows)[0]["_headroom"]["all_rows"]) if rows.startswith("[") else ""
    mock.reset()
    r = request("POST", hd.url + "/v1/chat/completions", body=text.encode(), headers=dict(
        JSON_HDR, **{"x-mock-tool-call": "headroom_retrieve", "x-mock-tool-args": json.dumps({"hash": h})}))
    reqs = mock.requests()
    follow = reqs[1]["body"].decode() if len(reqs) == 2 else ""
    missing, shortest = arrived_as_sent(text, follow)
    ok(follow and not shortest and all(x in numbers_in(follow) for x in SPELLED),
       "the follow-up after a headroom_retrieve call keeps the spelled numbers (%s, %s)" % (missing[:4], shortest[:4]))

    # An integer beyond int64 in a body nothing compresses: forwarded as sent
    # (headroomd answered 400 "too big integer", jansson's rule, before);
    # beyond a double (309 digits), refused saying so.
    big = '{"model":"gpt-4o","seed":18446744073709551615,"messages":[{"role":"user","content":"hi"}]}'
    mock.reset()
    r = request("POST", hd.url + "/v1/chat/completions", body=big.encode(), headers=JSON_HDR)
    is_((r.status, mock.last_request()["body"].decode() if r.status == 200 else r.body.decode()[:160]), (200, big),
        "seed 18446744073709551615 (beyond int64, valid JSON): forwarded byte for byte")
    huge = '{"model":"gpt-4o","seed":1%s,"messages":[{"role":"user","content":"hi"}]}' % ("0" * 308)
    r = request("POST", hd.url + "/v1/chat/completions", body=huge.encode(), headers=JSON_HDR)
    ok(r.status == 400 and b"too big integer" in r.body, "a 309-digit integer (beyond a double): 400, saying so (%d %s)"
       % (r.status, r.body[:100]))

    # Many requests in flight at once, the same values spelled differently:
    # each keeps its own (one table for the whole process did not).
    FORMS = [("1e-05", "2.50"), ("0.00001", "2.5000"), ("1E-5", "2.500"), ("1.0e-5", "25e-1"), ("10e-6", "2.50E0"),
             ("1e-005", "0.25e1")]
    sent, lock = {}, threading.Lock()
    mock.reset()

    def client(k):
        t, p = FORMS[k % len(FORMS)]
        body = spelled_text("openai", temperature=t, top_p=p, user="client-%d" % k)
        rr = request("POST", hd.url + "/v1/chat/completions", body=body.encode(), headers=JSON_HDR, timeout=120)
        with lock:
            sent["client-%d" % k] = (body, rr.status)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(36)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    got = {}
    for q in mock.requests():
        b = q["body"].decode()
        m = re.search(r'"user":"(client-\d+)"', b)
        if m:
            got[m.group(1)] = b
    own = [k for k, (body, status) in sent.items() if status == 200 and k in got and
           got[k].startswith(body[:body.index('"tools"')]) and arrived_as_sent(body, got[k]) == ([], [])]
    for k in sorted(set(sent) - set(own))[:3]:
        diag("%s (%s): %s" % (k, sent[k][1], arrived_as_sent(sent[k][0], got.get(k, ""))))
    is_(len(own), 36, "36 requests at once, 1e-05 and 2.5 spelled six ways: each arrives upstream as its client wrote it")
    once = {}
    for k, b in got.items():
        once.setdefault(int(k.split("-")[1]) % len(FORMS), set()).add(b.replace('"user":"%s"' % k, ""))
    is_(sorted(len(v) for v in once.values()), [1] * len(FORMS),
        "requests with the same body went upstream as the same bytes")

    # --- a headroom_retrieve call with a query: the matching rows go back to
    # the model re-serialised; a row's reals as the tool wrote them ---------
    REAL_ROWS = [{"id": i, "trace_id": "%016x" % (i * 2654435761 % 2 ** 64), "level": "ERROR" if i == 500 else "INFO",
                  "latency_s": [0.7, 0.1, 0.3, 12.34, 0.30000000000000004][i % 5], "score": [0.0, 0.1, 0.2][i % 3],
                  "msg": "request %d served" % i} for i in range(1000)]
    body = {"model": "gpt-4o", "messages": [
        {"role": "user", "content": "What happened to the request that failed?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "search_logs", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": json.dumps(REAL_ROWS)}]}
    first = post_json(hd.url + "/v1/compress", body)
    crushed = ((first.json() or {}).get("request") or {}).get("messages", [{}] * 3)[2].get("content", "")
    h = marker_hash(json.loads(crushed)[0]["_headroom"]["all_rows"]) if crushed.startswith("[") else ""
    needle = REAL_ROWS[501]["trace_id"]
    mock.reset()
    r = post_json(hd.url + "/v1/chat/completions", body, headers={
        "x-mock-tool-call": "headroom_retrieve", "x-mock-tool-args": json.dumps({"hash": h, "query": needle})})
    reqs = mock.requests()
    is_((r.status, len(reqs)), (200, 2), "rows with reals: a headroom_retrieve call with a query is answered")
    result = json.loads(reqs[-1]["body"])["messages"][-1]["content"] if len(reqs) == 2 else ""
    is_(result.partition("\n")[2], json.dumps([REAL_ROWS[501]], separators=(",", ":")),
        "the matching row reaches the model with its reals as the tool wrote them (latency_s 0.1, score 0.0)")
# --- a stage that fails: its edits undone from the snapshot's deep copy of
# the tools, whose numbers keep their spelling ---------------------------
PLUGINS = os.environ.get("HEADROOM_TEST_BAD_PLUGIN_DIR") or os.path.join(T_DIR, "plugins", ".libs")
if not os.path.exists(os.path.join(PLUGINS, "body_editor.so")):
    skip("t/plugins/body_editor.so is not built (make check builds it)")
else:
    # a: marks the first tool in place, then fails (undone: tools put back
    # from the copy); k: edits after it, so the tree is what goes upstream
    conf = ("host 127.0.0.1\nport @PORT@\nworkers 1\nopenai_api_url @MOCK_URL@\nplugin_dir %s\n"
            "transform body_editor as a { mark x_a; tool_mark x_t; fail yes; }\n"
            "transform body_editor as k { mark x_k; }\n" % PLUGINS)
    text = ('{"model":"gpt-4o","temperature":1e-05,"messages":[{"role":"user","content":"hi"}],'
            '"tools":[{"type":"function","function":{"name":"f","parameters":%s}}]}' % spelled_schema())
    with Mock() as mock, Headroomd(conf_text=conf) as hd:
        r = request("POST", hd.url + "/v1/chat/completions", body=text.encode(),
                    headers={"content-type": "application/json", "authorization": "Bearer k"})
        up = mock.last_request()["body"].decode() if r.status == 200 else ""
        ok('"x_k":true' in up and "x_a" not in up and "x_t" not in up,
           "a failing stage's edits are undone, the next stage's kept (%s)" % up[-60:])
        is_(arrived_as_sent(text, up), ([], []), "the tools put back by the undo keep 1e-05, 2.50, 1E5, -0 ... as spelled")
done()
