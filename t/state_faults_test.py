#!/usr/bin/env python3
# State under faults: kill -9 under load never leaves a savings or budget
# file a restart has to move aside, and counts only grow; a state directory
# that cannot be written is reported (one WARN, /health, a counter) while
# requests are still served.
import glob
import json
import os
import re
import signal
import threading
import time

from hrtest import Headroomd, Mock, cmp_ok, done, dumps, is_, like, ok, openai_body, request, wait_until

CONF_EXTRA = "sink savings_file { flush_interval 1; }\nsink prometheus { path /metrics; }\nbudget 1000\n"


def load(h, stop, sent):
    while not stop.is_set():
        r = request("POST", h.url + "/v1/chat/completions", body=dumps(openai_body()),
                    headers={"Content-Type": "application/json"}, timeout=5, quiet=True)
        if r.status == 200:
            sent[0] += 1


with Mock() as m:
    ws = None
    last_requests = 0
    total_ok = [0]
    for round_no in range(2):
        env = {"HEADROOM_WORKSPACE_DIR": ws} if ws else {}
        h = Headroomd(extra_conf=CONF_EXTRA, env=env, expect_exit=None).start()
        ws = h.workspace
        stop = threading.Event()
        threads = [threading.Thread(target=load, args=(h, stop, total_ok)) for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(1.3 + 0.4 * round_no)  # at least one flush, and a kill at a different point each round
        h.proc.send_signal(signal.SIGKILL)
        h.proc.wait(5)
        h.stopped = True
        stop.set()
        for t in threads:
            t.join(10)
        for name in ("proxy_savings.json", "budget.json"):
            path = os.path.join(ws, name)
            try:
                with open(path) as f:
                    json.load(f)
                parsed = True
            except (OSError, ValueError):
                parsed = False
            ok(parsed, "round %d: %s parses after kill -9 under load" % (round_no, name))
        with open(os.path.join(ws, "proxy_savings.json")) as f:
            n = json.load(f)["lifetime"]["requests"]
        cmp_ok(n, ">=", last_requests, "round %d: lifetime requests never go back (%d)" % (round_no, n))
        cmp_ok(n, "<=", total_ok[0], "round %d: nothing counted that was not served" % round_no)
        last_requests = n
    with Headroomd(extra_conf=CONF_EXTRA, env={"HEADROOM_WORKSPACE_DIR": ws}) as h:
        err = h.stderr_text()
        ok(not re.search(r"damaged|unusable|corrupt", err), "restart after the kills: no file moved aside")
        is_(glob.glob(os.path.join(ws, "*.corrupt-*")), [], "no *.corrupt-* files")

    # --- a state directory that cannot be written (once running, a file takes the directory's place)
    with Headroomd(extra_conf=CONF_EXTRA) as h:
        gone = h.workspace + ".moved"
        os.rename(h.workspace, gone)
        open(h.workspace, "w").close()
        codes = [request("POST", h.url + "/v1/chat/completions", body=dumps(openai_body()),
                         headers={"Content-Type": "application/json"}).status for _ in range(3)]
        is_(codes, [200, 200, 200], "requests are served while state cannot be written")
        time.sleep(3.2)  # three budget flush attempts
        request("POST", h.url + "/v1/chat/completions", body=dumps(openai_body()),
                headers={"Content-Type": "application/json"})
        time.sleep(1.2)
        health = h.get_json("/health")
        like(str(health.get("checks", {}).get("state_dir")), r"cannot write in .*workspace", "/health names the state problem")
        is_(health.get("status"), "degraded", "/health says degraded while savings and spend cannot be kept")
        is_(request("GET", h.url + "/health").status, 200, "/health stays 200 (a liveness probe must not restart it)")
        is_(h.get_json("/readyz").get("ready"), True, "/readyz stays ready: requests are served")
        metrics = h.get("/metrics").text
        mm = re.search(r"^headroom_state_write_errors_total (\S+)$", metrics, re.M)
        cmp_ok(float(mm.group(1)) if mm else 0, ">=", 2, "headroom_state_write_errors_total counts each failed write")
        err = h.stderr_text()
        is_(len(re.findall(r"could not write the budget file", err)), 1, "one budget WARN for the outage, not one a second")

    # --- a full disk under the request log (a file-size limit makes writes fail part-way)
    old_wrapper = os.environ.get("HEADROOMD_WRAPPER", "")
    os.environ["HEADROOMD_WRAPPER"] = ("prlimit --fsize=3000 " + old_wrapper).strip()
    with Headroomd(extra_conf="log_file @WORKSPACE@/requests.jsonl\n") as h:
        os.environ["HEADROOMD_WRAPPER"] = old_wrapper
        codes = set()
        for i in range(12):
            codes.add(request("POST", h.url + "/v1/chat/completions", body=dumps(openai_body(content="x" * (i * 37))),
                              headers={"Content-Type": "application/json"}).status)
        is_(codes, {200}, "requests are served while the request log cannot be written")
        wait_until(lambda: h.stats().get("request_log", {}).get("write_errors", 0) > 0, 3)
        data = open(os.path.join(h.workspace, "requests.jsonl"), "rb").read()
        lines = data.split(b"\n")
        ok(data.endswith(b"\n") and len(lines) > 2, "the log ends with a whole line (%d bytes, %d lines)" % (len(data), len(lines) - 1))
        bad = [l for l in lines[:-1] if not l.startswith(b"{") or not l.endswith(b"}")]
        is_(bad, [], "no torn line in the request log")
        ok(all(json.loads(l) for l in lines[:-1]), "every line parses as JSON")
        cmp_ok(len(lines) - 1, "<", 12, "lines that did not fit are absent, not cut")
done()
