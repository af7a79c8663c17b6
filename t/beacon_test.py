#!/usr/bin/env python3
# beacon_test.py — the anonymous usage beacon (doc/telemetry.md) against a
# loopback receiver started here: off by default and whenever anything says
# off, the payload's fields and counts, no request string (prompt, tool
# output, API key, path, host name, model, made-up stack name) in any payload
# or in `headroomd --telemetry-preview`, the preview equal to what is sent,
# a final report at clean shutdown, a collector that is down or failing
# (counted, backed off, requests served), headroom_stack / install_mode
# detection and /stats.telemetry.
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403
import http.server  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

HEADROOMD = os.environ.get("HEADROOMD") or os.path.join(T_DIR, "..", "src", "headroomd")


class Receiver:
    """Records every POST; answers `status` (200 by default)."""

    def __init__(self, status=200):
        self.posts = []
        self.status = status
        self.lock = threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with outer.lock:
                    outer.posts.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d/v1/beacon" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def bodies(self):
        with self.lock:
            return [p["body"] for p in self.posts]

    def payloads(self):
        return [json.loads(b) for b in self.bodies()]


SECRETS = ["SECRET-PROMPT-xyzzy", "TOOL-OUTPUT-plugh", "sk-test-SECRETKEY123", "/home/alice/private/notes.txt",
           "gpt-4o-secretmodel", "acme_secret_stack", "alice-workstation.example.internal", socket.gethostname()]


def secret_body():
    tool_text = "\n".join("TOOL-OUTPUT-plugh line %d of /home/alice/private/notes.txt" % i for i in range(40))
    return openai_body(model="gpt-4o-secretmodel", messages=[
        {"role": "user", "content": "SECRET-PROMPT-xyzzy: read the notes"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "read_file", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": tool_text}])


def send(h, stack=None, n=1):
    hdrs = {"Authorization": "Bearer sk-test-SECRETKEY123", "Host": "alice-workstation.example.internal"}
    if stack:
        hdrs["X-Headroom-Stack"] = stack
    codes = []
    for _ in range(n):
        codes.append(post_json(h.url + "/v1/chat/completions", secret_body(), headers=hdrs).status)
    return codes


def beacon_conf(url, interval=1, first_delay=0):
    return 'sink beacon {\n  url "%s"\n  interval %d\n  first_delay %d\n}\n' % (url, interval, first_delay)


def no_secret(texts, what):
    leaks = [s for s in SECRETS if s and any(s in t for t in texts)]
    is_(leaks, [], "no request string in " + what)


def preview(conf_path, env):
    e = dict(os.environ)
    e.update(env)
    return subprocess.run([HEADROOMD, "-c", conf_path, "--telemetry-preview"], capture_output=True, env=e, timeout=30)


CORE_KEYS = ["beacon_enabled", "headroom_stack", "install_mode", "requests_by_stack", "last_report_at", "reports_ok",
             "reports_failed"]
ENDPOINT_KEYS = ["endpoint", "interval_seconds", "current_interval_seconds", "queued", "last_error"]
UUID4 = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
FIELDS = ["schema_version", "install_id", "version", "os", "headroom_stack", "install_mode", "requests_by_stack",
          "requests_total", "requests_failed", "requests_cached", "tokens_input", "tokens_output", "tokens_saved",
          "savings_percent", "cache_hit_rate", "average_overhead_ms"]

with Mock() as m:
    # ---- default: off. A beacon block in the file is not even loaded.
    rx = Receiver()
    with Headroomd(extra_conf="sink prometheus { }\n" + beacon_conf(rx.url), env={"HEADROOM_TELEMETRY": ""}) as h:
        send(h, None, 1)
        is_(h.stats()["telemetry"]["headroom_stack"], "proxy", "no tagged request: proxy")
        is_(send(h, "wrap_claude", 2), [200, 200], "requests served with telemetry off")
        time.sleep(1.5)
        is_(rx.bodies(), [], "default: nothing is sent")
        t = h.stats().get("telemetry")
        is_(t and t["beacon_enabled"], False, "/stats.telemetry.beacon_enabled false by default")
        is_(t and t["reports_ok"], 0, "no reports")
        is_(t and t["last_report_at"], None, "last_report_at null")
        like(t and t.get("disabled_reason") or "", r"^telemetry is off \(the default: turn it on with --telemetry",
             "/stats.telemetry.disabled_reason says it is off and how to turn it on")
        is_([k for k in ENDPOINT_KEYS if k in t], [], "no endpoint or schedule keys while off")
        is_(t and t["requests_by_stack"], {"wrap_claude": 2}, "/stats.telemetry.requests_by_stack")
        is_(t and t["headroom_stack"], "wrap_claude", "headroom_stack from X-Headroom-Stack")
        is_(t and t["install_mode"], "persistent", "install_mode persistent: the config fixes the port")
        like(h.stderr_text(), r"telemetry is off: the beacon sink .* is not loaded", "says why the beacon is not loaded")
        ok("beacon" not in h.stats().get("sinks", {}), "no beacon sink")
        # the 80 % rule: 2 wrap_claude + 2 adapter_ts_openai -> mixed
        send(h, "adapter_ts_openai", 2)
        is_(h.stats()["telemetry"]["headroom_stack"], "mixed", "no stack with 80 %: mixed")
        send(h, "wrap_claude", 6)  # 8 of 10 = 80 %
        is_(h.stats()["telemetry"]["headroom_stack"], "wrap_claude", "a stack with 80 % of tagged requests names the process")
        send(h, None, 4)  # untagged requests do not count
        is_(h.stats()["telemetry"]["headroom_stack"], "wrap_claude", "untagged requests leave the 80 % rule alone")
        like(h.get("/metrics").text, r'headroom_requests_by_stack\{stack="wrap_claude"\} 8\b', "/metrics keeps headroom_requests_by_stack")
        pv = preview(h.conf_path, {"HEADROOM_TELEMETRY": "", "HEADROOM_WORKSPACE_DIR": h.workspace})
        is_(pv.returncode, 0, "--telemetry-preview exits 0")
        like(pv.stderr.decode(), r"telemetry is off: nothing is sent", "preview says telemetry is off")
        p = json.loads(pv.stdout) if pv.returncode == 0 else {}
        is_(list(p.keys()), FIELDS, "preview: the documented fields, in order")
        like(p.get("install_id", ""), UUID4, "install_id is a random UUIDv4")
        with open(os.path.join(h.workspace, "telemetry_id")) as f:
            is_(f.read().strip(), p.get("install_id"), "the install id is kept in the state root")
        is_(rx.bodies(), [], "the preview sends nothing")
        # a damaged id file is replaced by a fresh random id; a bad variable is named
        with open(os.path.join(h.workspace, "telemetry_id"), "w") as f:
            f.write("not-an-id\n")
        pv = preview(h.conf_path, {"HEADROOM_TELEMETRY": "", "HEADROOM_WORKSPACE_DIR": h.workspace})
        p2 = json.loads(pv.stdout) if pv.returncode == 0 else {}
        like(p2.get("install_id", ""), UUID4, "a damaged telemetry_id is replaced")
        isnt(p2.get("install_id"), p.get("install_id"), "by a new random id")
        with open(os.path.join(h.workspace, "telemetry_id")) as f:
            is_(f.read().strip(), p2.get("install_id"), "and kept")
        pv = preview(h.conf_path, {"HEADROOM_TELEMETRY": "maybe", "HEADROOM_WORKSPACE_DIR": h.workspace})
        is_(pv.returncode, 1, "HEADROOM_TELEMETRY=maybe: exit 1")
        like(pv.stderr.decode(), r"HEADROOM_TELEMETRY: 'maybe' must be on or off", "HEADROOM_TELEMETRY=maybe: named")

    # ---- HEADROOM_STACK / HEADROOM_INSTALL_MODE
    with Headroomd(env={"HEADROOM_STACK": "wrap_codex", "HEADROOM_INSTALL_MODE": "wrapped"}) as h:
        send(h, None, 2)
        t = h.stats()["telemetry"]
        is_((t["headroom_stack"], t["install_mode"]), ("wrap_codex", "wrapped"), "HEADROOM_STACK and HEADROOM_INSTALL_MODE override")
        is_(h.stats()["requests"]["by_stack"], {"wrap_codex": 2}, "untagged requests count under HEADROOM_STACK")
    with Headroomd(env={"HEADROOM_STACK": "Bad Stack!", "HEADROOM_INSTALL_MODE": "sometimes"},
                   conf_text="host 127.0.0.1\nopenai_api_url @MOCK_URL@\nanthropic_api_url @MOCK_URL@\nworkers 1\n",
                   args=["--port", "0"], wait_ready=False) as h:
        # port 0: the harness cannot know the port; read it from the log line
        port = wait_until(lambda: re.search(r"listening on http://127\.0\.0\.1:(\d+)", h.stderr_text()), 20)
        h.url = "http://127.0.0.1:%s" % (port.group(1) if port else "0")
        wait_until(lambda: request("GET", h.url + "/readyz", quiet=True).status == 200, 10)
        t = h.stats()["telemetry"]
        is_((t["headroom_stack"], t["install_mode"]), ("proxy", "on_demand"),
            "invalid HEADROOM_STACK / HEADROOM_INSTALL_MODE ignored; a direct run without a fixed port is on_demand")
        like(h.stderr_text(), r"HEADROOM_STACK='Bad Stack!' is not valid", "invalid HEADROOM_STACK named in a warning")
        like(h.stderr_text(), r"HEADROOM_INSTALL_MODE='sometimes' is not valid", "invalid HEADROOM_INSTALL_MODE named in a warning")

    # ---- a collector URL that is not http(s): nothing sent, and its password not logged
    with Headroomd(extra_conf=beacon_conf("http://127.0.0.1:1/unused"),
                   env={"HEADROOM_TELEMETRY": "on", "HEADROOM_TELEMETRY_URL": "ftp://user:s3cretpw@127.0.0.1/b"}) as h:
        err = h.stderr_text()
        ok("HEADROOM_TELEMETRY_URL 'ftp://***@127.0.0.1/b' is not an http:// or https:// URL" in err and "s3cretpw" not in err,
           "an invalid HEADROOM_TELEMETRY_URL: named in a WARN, its password shown as ***")
        # /stats says what is true: the beacon sink is loaded but off, why, and no endpoint or schedule
        t = h.stats()["telemetry"]
        is_(list(t.keys()), CORE_KEYS + ["disabled_reason"], "an invalid URL: /stats.telemetry without the endpoint keys")
        is_((t["beacon_enabled"], t["disabled_reason"]),
            (False, "HEADROOM_TELEMETRY_URL 'ftp://***@127.0.0.1/b' is not an http:// or https:// URL"),
            "an invalid URL: beacon_enabled false, disabled_reason names the variable, the password shown as ***")
    with Headroomd(extra_conf=beacon_conf("ftp://collector.example/b"), env={"HEADROOM_TELEMETRY": "on"}) as h:
        t = h.stats()["telemetry"]
        is_((t["beacon_enabled"], t.get("disabled_reason"), [k for k in ENDPOINT_KEYS if k in t]),
            (False, "the beacon block's url 'ftp://collector.example/b' is not an http:// or https:// URL", []),
            "an invalid url in the beacon block: named as such in /stats, no endpoint keys")
    with Headroomd(extra_conf="sink beacon { }\n", env={"HEADROOM_TELEMETRY": "on", "HEADROOM_TELEMETRY_URL": ""}) as h:
        t = h.stats()["telemetry"]
        is_((t["beacon_enabled"], [k for k in ENDPOINT_KEYS if k in t]), (False, []), "no collector URL: off, no endpoint keys")
        like(t.get("disabled_reason") or "", r"no collector is configured \(set `url` in the `sink beacon` block or "
             r"HEADROOM_TELEMETRY_URL\)", "no collector URL: disabled_reason says what to set")
        like(h.stderr_text(), r"no collector is configured .*: nothing is sent", "and the WARN says the same")

    # ---- on: reports every interval, aggregate counts only
    rx = Receiver()
    with Headroomd(extra_conf=beacon_conf(rx.url), env={"HEADROOM_TELEMETRY": "on"}) as h:
        codes = send(h, "wrap_claude", 8) + send(h, "adapter_ts_openai", 1) + send(h, "acme_secret_stack", 1)
        is_(codes, [200] * 10, "requests served with telemetry on")
        wait_until(lambda: any(p["requests_total"] == 10 for p in rx.payloads()), 10)
        ps = [p for p in rx.payloads() if p["requests_total"] == 10]
        ok(ps, "a report with the 10 requests arrived")
        p = ps[-1] if ps else {}
        is_(list(p.keys()), FIELDS, "payload: the documented fields, in order")
        is_(p.get("schema_version"), 1, "schema_version")
        like(p.get("install_id", ""), UUID4, "install_id")
        is_(p.get("os"), "linux", "os family")
        like(p.get("version", ""), r"^\d+\.\d+", "version")
        is_(p.get("headroom_stack"), "wrap_claude", "headroom_stack: 8 of 10 tagged requests")
        is_(p.get("install_mode"), "persistent", "install_mode")
        is_(p.get("requests_by_stack"), {"wrap_claude": 8, "adapter_ts_openai": 1, "other": 1},
            "requests_by_stack: a made-up stack name is sent as other")
        s = h.stats()
        is_((p.get("tokens_input"), p.get("tokens_saved"), p.get("tokens_output")),
            (s["tokens"]["input"], s["tokens"]["saved"], s["tokens"]["output"]), "token totals equal /stats")
        is_(p.get("savings_percent"), s["tokens"]["savings_percent"], "savings_percent equals /stats")
        is_(p.get("cache_hit_rate"), s["prefix_cache"]["totals"]["hit_rate"], "cache_hit_rate: the provider prompt cache's, as /stats")
        ok(isinstance(p.get("average_overhead_ms"), (int, float)) and p["average_overhead_ms"] >= 0, "average_overhead_ms")
        post = rx.posts[0]
        like(post["headers"].get("Content-Type", ""), r"^application/json", "JSON body")
        ok(not any(k.lower() in ("authorization", "cookie") for k in post["headers"]), "no credentials sent")
        t = s["telemetry"]
        is_(t["beacon_enabled"], True, "/stats.telemetry.beacon_enabled")
        is_(list(t.keys()), CORE_KEYS + ENDPOINT_KEYS, "/stats.telemetry while on: the endpoint keys, no disabled_reason")
        is_(t["endpoint"], rx.url, "/stats.telemetry.endpoint")
        with Headroomd(extra_conf=beacon_conf(rx.url.replace("//", "//beacon:s3cr3t@")),
                       env={"HEADROOM_TELEMETRY": "on"}) as h2:
            is_(h2.stats()["telemetry"]["endpoint"], rx.url.replace("//", "//***@"),
                "a collector URL with user:password: /stats.telemetry.endpoint shows ***@")
            like(h2.stderr_text(), r"anonymous usage report to http://\*\*\*@127", "the start-up line shows ***@ too")
            ok("s3cr3t" not in h2.stderr_text(), "the password is in no log line")
        cmp_ok(t["reports_ok"], ">=", 1, "/stats.telemetry.reports_ok")
        like(t["last_report_at"] or "", r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", "/stats.telemetry.last_report_at")
        is_(t["reports_failed"], 0, "no failed report")
        is_(t["requests_by_stack"].get("acme_secret_stack"), 1, "/stats (local) shows the real stack name")
        with open(os.path.join(h.workspace, "telemetry_id")) as f:
            is_(f.read().strip(), p.get("install_id"), "the id sent is the one in the state root")
        pv = preview(h.conf_path, {"HEADROOM_TELEMETRY": "on", "HEADROOM_WORKSPACE_DIR": h.workspace})
        like(pv.stderr.decode(), r"telemetry is on", "preview says telemetry is on")
        pp = json.loads(pv.stdout) if pv.returncode == 0 else {}
        is_([pp.get(k) for k in ("install_id", "version", "os", "install_mode")],
            [p.get(k) for k in ("install_id", "version", "os", "install_mode")], "the preview carries the identity that is sent")
        is_(list(pp.keys()), list(p.keys()), "the preview has exactly the fields that are sent")
        no_secret([b.decode() for b in rx.bodies()], "any payload (%d)" % len(rx.bodies()))
        no_secret([pv.stdout.decode()], "--telemetry-preview")
        n_before = len(rx.bodies())
    time.sleep(0.3)
    ok(len(rx.bodies()) >= n_before, "reports kept coming")

    # ---- a final report at clean shutdown
    rx = Receiver()
    with Headroomd(extra_conf=beacon_conf(rx.url, interval=3600, first_delay=3600), env={"HEADROOM_TELEMETRY": "on"}) as h:
        send(h, "wrap_aider", 3)
        time.sleep(1.2)
        is_(rx.bodies(), [], "nothing before the first delay")
    ps = rx.payloads()
    is_([(p["requests_total"], p["requests_by_stack"]) for p in ps], [(3, {"wrap_aider": 3})], "one final report at shutdown")

    # ---- off wins: --no-telemetry over HEADROOM_TELEMETRY=on, the variable's off over --telemetry, the file's off
    for what, env, args, extra in [
            ("--no-telemetry beats HEADROOM_TELEMETRY=on", {"HEADROOM_TELEMETRY": "on"}, ["--no-telemetry"], ""),
            ("HEADROOM_TELEMETRY=off beats --telemetry", {"HEADROOM_TELEMETRY": "off"}, ["--telemetry"], ""),
            ("`telemetry off` in the file beats HEADROOM_TELEMETRY=on", {"HEADROOM_TELEMETRY": "on"}, [], "telemetry off\n")]:
        rx = Receiver()
        with Headroomd(extra_conf=extra + beacon_conf(rx.url), env=env, args=args) as h:
            send(h, "wrap_claude", 1)
            time.sleep(1.5)
            is_((rx.bodies(), h.stats()["telemetry"]["beacon_enabled"]), ([], False), what)
    # --telemetry alone turns it on (the url from HEADROOM_TELEMETRY_URL, no beacon block); the
    # first report is 60 s away, so the one seen here is the one at shutdown
    rx = Receiver()
    with Headroomd(env={"HEADROOM_TELEMETRY": "", "HEADROOM_TELEMETRY_URL": rx.url}, args=["--telemetry"]) as h:
        send(h, None, 1)
        t = h.stats()["telemetry"]
        is_((t["beacon_enabled"], t["interval_seconds"]), (True, 300),
            "--telemetry and HEADROOM_TELEMETRY_URL: on without a config block, every 300 s")
        is_(rx.bodies(), [], "the first report waits first_delay (60 s)")
    is_([p["requests_total"] for p in rx.payloads()], [1], "--telemetry: the report at shutdown")

    # ---- a collector that is down, then one that fails: counted, backed off, requests served
    rx_port = free_port()
    with Headroomd(extra_conf=beacon_conf("http://127.0.0.1:%d/" % rx_port), env={"HEADROOM_TELEMETRY": "on"}) as h:
        t0 = time.monotonic()
        codes = []
        while time.monotonic() - t0 < 3:
            codes += send(h, "wrap_claude", 1)
            time.sleep(0.1)
        wait_until(lambda: h.stats()["telemetry"]["current_interval_seconds"] > 1, 15)
        codes += send(h, "wrap_claude", 1)
        is_(set(codes), {200}, "every request served while the collector is down (%d)" % len(codes))
        t = h.stats()["telemetry"]
        cmp_ok(t["reports_failed"], ">=", 1, "failed reports counted")
        is_(t["reports_ok"], 0, "none delivered")
        like(t["last_error"] or "", r"\S", "last_error says why")
        cmp_ok(t["queued"], "<=", 2, "at most two reports wait: a down collector costs bounded memory")
        cmp_ok(t["current_interval_seconds"], ">", 1, "reports back off while the collector is down")
        ok(h.alive(), "daemon still serving")
    rx = Receiver(status=500)
    with Headroomd(extra_conf=beacon_conf(rx.url), env={"HEADROOM_TELEMETRY": "on"}) as h:
        send(h, "wrap_claude", 2)
        wait_until(lambda: h.stats()["telemetry"]["current_interval_seconds"] > 1, 20)
        t = h.stats()["telemetry"]
        cmp_ok(t["reports_failed"], ">=", 1, "a collector answering 500: counted as failed")
        cmp_ok(t["current_interval_seconds"], ">", 1, "and reports back off")
        rx.status = 200
        wait_until(lambda: h.stats()["telemetry"]["current_interval_seconds"] == 1, 40)
        t = h.stats()["telemetry"]
        is_(t["current_interval_seconds"], 1, "back to the interval once a report gets through")
        cmp_ok(t["reports_ok"], ">=", 1, "delivered after the collector recovered")

    # ---- bad config is refused with file:line
    with Headroomd(extra_conf="sink beacon {\n  interval 0\n}\n", env={"HEADROOM_TELEMETRY": "on"}, wait_ready=False,
                   expect_exit=None) as h:
        wait_until(lambda: not h.alive(), 10)
        like(h.stderr_text(), r"headroom\.conf:\d+:\d+: .*interval", "interval 0 refused with file:line")

done()
