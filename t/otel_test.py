#!/usr/bin/env python3
# otel_test.py — the otel and langfuse sinks against a loopback OTLP/HTTP
# receiver started here. What headroomd sends is decoded with the official
# opentelemetry-proto classes (npm @opentelemetry/otlp-transformer, pinned in
# t/otel/package.json): names, units, temporality, resource and point
# attributes, and counts equal to /stats. A collector that fails (500), sheds
# load (429 + Retry-After), hangs, or is down never slows a request; the
# failures are counted and retried with backoff. The official OpenTelemetry JS
# SDK (sdk-metrics + exporter-metrics-otlp-proto) records the same instruments
# into the same receiver, and headroomd's requests are compared with its:
# resource, scope, names, units, kinds, temporality, monotonicity, point
# fields, attribute keys and bucket layout. Skipped when node or the npm
# registry is not available.
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403
import base64  # noqa: E402
import http.server  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

SRC = os.path.join(T_DIR, "otel")
NODE_DIR = os.environ.get("HEADROOM_TEST_NODE_DIR") or os.path.join(os.getcwd(), "t", "otel-node")

npm_install(SRC, NODE_DIR, "@opentelemetry/exporter-metrics-otlp-proto", "to decode OTLP with the official definitions")
shutil.copy(os.path.join(SRC, "decode.mjs"), NODE_DIR)
shutil.copy(os.path.join(SRC, "sdk_emit.mjs"), NODE_DIR)


class Receiver:
    """OTLP/HTTP receiver on 127.0.0.1: records every POST; `mode` picks the answer."""

    def __init__(self):
        self.posts = []
        self.mode = "ok"         # ok | 500 | 429 | slow | 400
        self.lock = threading.Lock()
        rcv = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with rcv.lock:
                    rcv.posts.append({"t": time.monotonic(), "path": self.path, "headers": dict(self.headers.items()),
                                      "body": body, "mode": rcv.mode})
                    mode = rcv.mode
                if mode == "slow":
                    time.sleep(3)
                code, extra = 200, {}
                if mode == "500":
                    code = 500
                elif mode == "429":
                    code, extra = 429, {"Retry-After": "1"}
                elif mode == "400":
                    code = 400
                out = b"{}" if code == 200 else b'{"message":"nope"}'
                try:
                    self.send_response(code)
                    for k, v in extra.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except OSError:
                    pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()

    def snapshot(self):
        with self.lock:
            return list(self.posts)


def decode(posts, kind):
    lines = []
    for p in posts:
        body = p["body"]
        if p["headers"].get("Content-Encoding") == "gzip":
            import gzip
            body = gzip.decompress(body)
        enc = "json" if p["headers"].get("Content-Type", "").startswith("application/json") else "protobuf"
        lines.append(json.dumps({"kind": kind, "encoding": enc, "b64": base64.b64encode(body).decode()}))
    r = subprocess.run(["node", os.path.join(NODE_DIR, "decode.mjs")], input="\n".join(lines).encode(),
                       capture_output=True, timeout=60)
    if r.returncode != 0:
        bail("decode.mjs failed: " + r.stderr.decode("utf-8", "replace")[-1500:])
    return [json.loads(x) for x in r.stdout.decode().splitlines() if x.strip()]


def attrs(lst):
    out = {}
    for kv in lst or []:
        v = kv.get("value", {})
        out[kv["key"]] = next(iter(v.values())) if v else None
    return out


def metrics_of(req):
    """{name: metric} of one decoded ExportMetricsServiceRequest."""
    out = {}
    for rm in req.get("resourceMetrics", []):
        for sm in rm.get("scopeMetrics", []):
            for m in sm.get("metrics", []):
                out[m["name"]] = m
    return out


def total(m, key=None, want=None):
    kind = "sum" if "sum" in m else "histogram" if "histogram" in m else "gauge"
    s = 0
    for dp in m[kind].get("dataPoints", []):
        if key and attrs(dp.get("attributes")).get(key) != want:
            continue
        if kind == "histogram":
            s += int(dp.get("count", 0))
        else:
            s += int(dp.get("asInt", 0)) if "asInt" in dp else float(dp.get("asDouble", 0))
    return s


def sdk_reference(rcv, records, temporality="cumulative"):
    """What the official JS SDK sends for `records` ([{name, value, attrs}]), decoded."""
    n0 = len(rcv.snapshot())
    r = subprocess.run(["node", os.path.join(NODE_DIR, "sdk_emit.mjs")], input=json.dumps(records).encode(),
                       capture_output=True, timeout=60,
                       env=dict(os.environ, OTLP_URL=rcv.url + "/sdk/v1/metrics", TEMPORALITY=temporality,
                                SERVICE_NAME="sdk-ref"))
    if r.returncode != 0:
        bail("sdk_emit.mjs failed: " + r.stderr.decode("utf-8", "replace")[-1500:])
    posts = [p for p in rcv.snapshot()[n0:] if p["path"] == "/sdk/v1/metrics"]
    if not posts:
        bail("the OpenTelemetry JS SDK posted nothing")
    return decode(posts[-1:], "metrics")[0]


def points(m):
    kind = "sum" if "sum" in m else "histogram"
    return m[kind].get("dataPoints", [])


def compare_with_sdk(ours, sdk, label):
    """Structural comparison of two decoded ExportMetricsServiceRequests."""
    mo, ms = metrics_of(ours), metrics_of(sdk)
    ro = attrs(ours["resourceMetrics"][0]["resource"]["attributes"])
    rsdk = attrs(sdk["resourceMetrics"][0]["resource"]["attributes"])
    is_(sorted(set(rsdk) - set(ro)), ["telemetry.sdk.language"],
        "%s: resource carries every key the SDK's does (%s), but telemetry.sdk.language (no C value in the "
        "conventions)" % (label, sorted(rsdk)))
    is_((len(ours["resourceMetrics"]), len(ours["resourceMetrics"][0]["scopeMetrics"])),
        (len(sdk["resourceMetrics"]), len(sdk["resourceMetrics"][0]["scopeMetrics"])),
        "%s: one ResourceMetrics with one ScopeMetrics, as the SDK" % label)
    so = ours["resourceMetrics"][0]["scopeMetrics"][0]["scope"]
    ss = sdk["resourceMetrics"][0]["scopeMetrics"][0]["scope"]
    is_(sorted(k for k in so if so[k] != []), sorted(k for k in ss if ss[k] != []), "%s: scope has name and version" % label)
    for name, m in ms.items():
        o = mo.get(name)
        if not o:
            ok(False, "%s: %s exported" % (label, name))
            continue
        kind = "sum" if "sum" in m else "histogram"
        is_((o.get("unit"), kind in o, bool(o.get("description"))), (m.get("unit"), True, True),
            "%s: %s: unit %s, a %s, a description" % (label, name, m.get("unit"), kind))
        want = {k: v for k, v in m[kind].items() if k != "dataPoints"}
        got = {k: v for k, v in o[kind].items() if k != "dataPoints"}
        is_(got, want, "%s: %s: temporality / monotonicity as the SDK's (%s)" % (label, name, want))
        po, ps = points(o), points(m)
        keys_o = sorted(set().union(*[set(p) for p in po])) if po else []
        keys_s = sorted(set().union(*[set(p) for p in ps]))
        is_(keys_o, keys_s, "%s: %s: data point fields as the SDK's" % (label, name))
        ak_s = set().union(*[set(attrs(p.get("attributes"))) for p in ps])
        ak_o = [set(attrs(p.get("attributes"))) for p in po]
        ok(ak_o and all(ak_s <= a for a in ak_o), "%s: %s: point attributes include the SDK's keys %s" %
           (label, name, sorted(ak_s)))
        if kind == "histogram":
            bounds = [p.get("explicitBounds") for p in ps][0]
            ok(all(p.get("explicitBounds") == bounds and len(p["bucketCounts"]) == len(bounds) + 1 for p in po),
               "%s: %s: the same bucket layout (%d bounds from %s)" % (label, name, len(bounds), bounds[0]))
        else:
            vo = {tuple(sorted(attrs(p["attributes"]).items())): p.get("asInt") for p in po}
            vs = {tuple(sorted(attrs(p["attributes"]).items())): p.get("asInt") for p in ps}
            is_(vo, vs, "%s: %s: one point per attribute set, integer values, as the SDK aggregates them" % (label, name))


def sdk_records(m):
    """Recordings giving the SDK what headroomd exported: counters per point,
    one observation per histogram point (structure, not values)."""
    rec = []
    for name in ["headroom.proxy.requests", "headroom.proxy.tokens.input", "headroom.proxy.tokens.output",
                 "headroom.proxy.tokens.saved"]:
        for p in points(m.get(name, {"sum": {}})):  # a delta body leaves out what did not change
            rec.append({"name": name, "value": int(p["asInt"]), "attrs": attrs(p["attributes"])})
    for p in points(m["headroom.proxy.request.duration"]):
        rec.append({"name": "headroom.proxy.request.duration", "value": 0.1, "attrs": attrs(p["attributes"])})
    # The GenAI conventions' required and conditionally required attributes.
    for t in ("input", "output"):
        rec.append({"name": "gen_ai.client.token.usage", "value": 100,
                    "attrs": {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                              "gen_ai.request.model": "gpt-4o", "gen_ai.token.type": t}})
    rec.append({"name": "gen_ai.client.operation.duration", "value": 0.5,
                "attrs": {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                          "gen_ai.request.model": "gpt-4o"}})
    return rec


def send(h, n, model="gpt-4o", stack="wrap_test", status=None, traceparent=None):
    took = []
    for i in range(n):
        headers = {"X-Headroom-Stack": stack}
        if status:
            headers["x-mock-status"] = str(status)
        if traceparent:
            headers["traceparent"] = traceparent
        t0 = time.monotonic()
        r = post_json(h.url + "/v1/chat/completions",
                      openai_body(model=model, messages=[{"role": "user", "content": "hello %d" % i}]), headers=headers)
        took.append(time.monotonic() - t0)
        if r.status >= 500 and not status:
            diag("request failed: %s %s" % (r.status, r.body[:200]))
    return took


BASE_ENV = {"HEADROOM_OTEL_METRICS_ENABLED": "1", "HEADROOM_OTEL_METRICS_EXPORT_INTERVAL_MS": "250",
            "HEADROOM_OTEL_SERVICE_NAME": "hr-test",
            "HEADROOM_OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test,service.namespace=headroom",
            "HEADROOM_OTEL_METRICS_HEADERS": "authorization=Bearer s3cret-token,x-tenant=t1"}
CONF = "sink otel { }\nsink prometheus { }\n"

rcv = Receiver()
with Mock() as mock:
    # ---- managed mode, protobuf, cumulative --------------------------------------
    env = dict(BASE_ENV, HEADROOM_OTEL_METRICS_ENDPOINT=rcv.url + "/v1/metrics")
    with Headroomd(mock=mock, extra_conf=CONF, env=env) as h:
        send(h, 3)
        send(h, 2, model="gpt-4o-mini", stack="proxy")
        st = h.stats()
        want = st["requests"]["total"]
        ok(wait_until(lambda: any(True for _ in rcv.snapshot()) and
                      total(metrics_of(decode(rcv.snapshot()[-1:], "metrics")[0]).get(
                          "headroom.proxy.requests", {"sum": {}})) == want, timeout=5),
           "an export arrives whose headroom.proxy.requests equals /stats requests.total (%d)" % want)
        posts = rcv.snapshot()
        last = posts[-1]
        is_(last["path"], "/v1/metrics", "POST to the configured endpoint path")
        is_(last["headers"].get("Content-Type"), "application/x-protobuf", "Content-Type application/x-protobuf")
        lh = {k.lower(): v for k, v in last["headers"].items()}
        is_((lh.get("authorization"), lh.get("x-tenant")), ("Bearer s3cret-token", "t1"),
            "HEADROOM_OTEL_METRICS_HEADERS sent as request headers")
        dec = decode([last], "metrics")[0]
        ok("error" not in dec, "the body decodes as ExportMetricsServiceRequest with the official classes")
        res = attrs(dec["resourceMetrics"][0]["resource"]["attributes"])
        is_((res.get("service.name"), res.get("deployment.environment"), res.get("service.namespace")),
            ("hr-test", "test", "headroom"), "resource: service.name and HEADROOM_OTEL_RESOURCE_ATTRIBUTES")
        ok(res.get("service.version") and len(res.get("service.instance.id") or "") == 36,
           "resource: service.version and a UUID service.instance.id")
        scope = dec["resourceMetrics"][0]["scopeMetrics"][0]["scope"]
        is_(scope.get("name"), "headroomd", "instrumentation scope headroomd")
        m = metrics_of(dec)
        st = h.stats()
        for name, unit in [("headroom.proxy.requests", "{request}"), ("headroom.proxy.tokens.input", "{token}"),
                           ("headroom.proxy.tokens.output", "{token}"), ("headroom.proxy.tokens.saved", "{token}"),
                           ("headroom.proxy.request.duration", "s"), ("headroom.proxy.overhead.duration", "s"),
                           ("headroom.proxy.ttfb.duration", "s"), ("headroom.compression.stage.duration", "s"),
                           ("gen_ai.client.token.usage", "{token}"), ("gen_ai.client.operation.duration", "s"),
                           ("headroom.proxy.requests.rate_limited", "{request}")]:
            is_(m.get(name, {}).get("unit"), unit, "%s present, unit %s" % (name, unit))
        s = m["headroom.proxy.requests"]["sum"]
        ok(s.get("isMonotonic") and s.get("aggregationTemporality") == 2, "requests: monotonic sum, CUMULATIVE (2)")
        is_(m["headroom.proxy.request.duration"]["histogram"].get("aggregationTemporality"), 2, "histograms cumulative")
        is_(total(m["headroom.proxy.tokens.input"]), st["tokens"]["input"], "tokens.input equals /stats tokens.input")
        is_(total(m["headroom.proxy.tokens.output"]), st["tokens"]["output"], "tokens.output equals /stats")
        is_(total(m["headroom.proxy.tokens.saved"]), st["tokens"]["saved"], "tokens.saved equals /stats")
        is_(total(m["headroom.proxy.requests"], "model", "gpt-4o"), 3, "requests{model=gpt-4o} = 3")
        is_(total(m["headroom.proxy.requests"], "stack", "wrap_test"), 3, "requests{stack=wrap_test} = 3")
        dp = m["headroom.proxy.requests"]["sum"]["dataPoints"][0]
        is_(sorted(attrs(dp["attributes"])), ["model", "provider", "stack"], "point attributes provider, model, stack")
        ok(int(dp["startTimeUnixNano"]) < int(dp["timeUnixNano"]), "startTimeUnixNano < timeUnixNano")
        hist = m["headroom.proxy.request.duration"]["histogram"]["dataPoints"][0]
        is_(hist.get("explicitBounds", [])[:3], [0.01, 0.02, 0.04], "request.duration: the GenAI convention's buckets")
        is_(len(hist["bucketCounts"]), len(hist["explicitBounds"]) + 1, "bucketCounts = bounds + 1")
        ob = m["headroom.proxy.overhead.duration"]["histogram"]["dataPoints"][0]["explicitBounds"]
        ok(ob[0] < 0.01, "overhead.duration: finer buckets than 10 ms (%s)" % ob[0])
        import re
        les = [float(x) for x in re.findall(r'headroom_overhead_ms_bucket\{le="([0-9.e+-]+)"\}', h.get("/metrics").text)]
        is_(ob, [round(x / 1000, 9) for x in les if x <= 5000], "overhead.duration: /metrics' bounds in seconds, to 5 s")
        tu = m["gen_ai.client.token.usage"]["histogram"]["dataPoints"]
        types = sorted(set(attrs(d["attributes"]).get("gen_ai.token.type") for d in tu))
        is_(types, ["input", "output"], "gen_ai.client.token.usage: gen_ai.token.type input/output")
        a0 = attrs(tu[0]["attributes"])
        is_((a0.get("gen_ai.provider.name"), a0.get("gen_ai.operation.name"), a0.get("gen_ai.system")),
            ("openai", "chat", "openai"), "gen_ai attributes: provider.name, operation.name, system")
        is_(sum(int(d["count"]) for d in m["gen_ai.client.operation.duration"]["histogram"]["dataPoints"]), 5,
            "gen_ai.client.operation.duration counts the 5 model calls")
        out_sum = sum(float(d["sum"]) for d in tu if attrs(d["attributes"]).get("gen_ai.token.type") == "output")
        is_(int(out_sum), st["tokens"]["output"], "gen_ai output token sum equals /stats tokens.output")

        # ---- the official OpenTelemetry JS SDK, same instruments, same receiver ----
        compare_with_sdk(dec, sdk_reference(rcv, sdk_records(m)), "vs JS SDK")
        o = st.get("otel", {})
        is_((o.get("enabled"), o.get("managed"), o.get("exporter"), o.get("endpoint"), o.get("service_name"),
             o.get("export_interval_ms")), (True, True, "otlp_http", rcv.url + "/v1/metrics", "hr-test", 250),
            "/stats.otel: enabled, managed, exporter, endpoint, service_name, interval")
        cmp_ok(o.get("exports_ok", 0), ">=", 1, "/stats.otel.exports_ok counts deliveries")
        ok(o.get("last_export_at", "").endswith("Z"), "/stats.otel.last_export_at is UTC ISO-8601")
        ok("s3cret" not in json.dumps(st) and "s3cret" not in h.stderr_text(), "headers never shown in /stats or logs")
        prom = h.get("/metrics").text
        like(prom, r'headroom_export_requests_total\{exporter="otel_metrics",outcome="ok"\} [1-9]',
             "/metrics: headroom_export_requests_total{outcome=ok}")

        # ---- the collector fails: requests unaffected, failures counted, backoff ----
        rcv.mode = "500"
        n0 = len(rcv.snapshot())
        took = send(h, 5)
        ok(max(took) < 1.0, "collector answering 500: requests unaffected (max %.0f ms)" % (max(took) * 1000))
        ok(wait_until(lambda: h.stats()["otel"].get("retries", 0) >= 1, timeout=5), "500: retried")
        rcv.mode = "429"
        time.sleep(2.5)
        p429 = [p for p in rcv.snapshot()[n0:] if p["mode"] == "429"]
        gaps = [b["t"] - a["t"] for a, b in zip(p429, p429[1:])]
        ok(gaps and min(gaps) >= 0.9, "429 + Retry-After: 1 honoured (gaps %s s)" % [round(g, 2) for g in gaps])
        rcv.mode = "slow"
        took = send(h, 5)
        ok(max(took) < 1.0, "collector hanging: requests unaffected (max %.0f ms)" % (max(took) * 1000))
        rcv.mode = "ok"
        ok(wait_until(lambda: h.stats()["otel"].get("last_status") == 200, timeout=8), "recovers when the collector does")
        like(h.stderr_text(), r"WARN.*otel.*failed \(HTTP 500", "one WARN names the failure")

        # ---- POST /stats/reset: the OTLP counters restart with /stats, as a new series --
        start0 = max(int(dp["startTimeUnixNano"]) for dp in points(metrics_of(decode(rcv.snapshot()[-1:], "metrics")[0])
                                                                  ["headroom.proxy.requests"]))
        is_(request("POST", h.url + "/stats/reset").status, 200, "POST /stats/reset")
        n1 = len(rcv.snapshot())
        send(h, 2, model="gpt-4o-mini")
        st = h.stats()

        def after_reset():
            for p in rcv.snapshot()[n1:][::-1]:
                mm = metrics_of(decode([p], "metrics")[0])
                if "headroom.proxy.requests" in mm and total(mm["headroom.proxy.requests"]) == st["requests"]["total"]:
                    return mm
            return None
        ok(wait_until(lambda: after_reset() is not None, timeout=8),
           "after the reset an export's requests equal /stats requests.total (%d)" % st["requests"]["total"])
        mm = after_reset() or {}
        if mm:
            is_((total(mm["headroom.proxy.tokens.input"]), total(mm["headroom.proxy.tokens.saved"])),
                (st["tokens"]["input"], st["tokens"]["saved"]), "after the reset tokens.input/saved equal /stats")
            ok(all(int(dp["startTimeUnixNano"]) > start0 for dp in points(mm["headroom.proxy.requests"])),
               "after the reset every cumulative point has a new startTimeUnixNano")
            is_(h.stats()["otel"]["resets"], 1, "/stats.otel.resets")
        is_(h.stderr_text().count("retrying with backoff"), 1 + h.stderr_text().count("accepts exports again") - 1
            if "accepts exports again" in h.stderr_text() else 1, "failures logged once per outage, not per attempt")

    # ---- collector down; bounded queue --------------------------------------------
    env = dict(BASE_ENV, HEADROOM_OTEL_METRICS_ENDPOINT="http://127.0.0.1:%d/v1/metrics" % free_port(),
               HEADROOM_OTEL_METRICS_EXPORT_INTERVAL_MS="100")
    with Headroomd(mock=mock, extra_conf=CONF, env=env) as h:
        took = send(h, 10)
        ok(max(took) < 1.0, "collector down: requests unaffected (max %.0f ms)" % (max(took) * 1000))
        time.sleep(2.5)
        o = h.stats()["otel"]
        cmp_ok(o["queued"], "<=", 2, "queue bounded: cumulative bodies supersede each other, 2 at most (%d waiting)"
               % o["queued"])
        cmp_ok(o["exports_dropped"], ">=", 1, "overflow counted (exports_dropped %d)" % o["exports_dropped"])
        like(o.get("last_error") or "", r"(?i)connect", "last_error says the collector refused the connection")
        is_(h.stats()["requests"]["total"], 10, "all requests served")

    # ---- http/json, delta, invalid values -----------------------------------------
    n0 = len(rcv.snapshot())
    env = dict(BASE_ENV, HEADROOM_OTEL_METRICS_ENDPOINT=rcv.url + "/otlp/v1/metrics",
               HEADROOM_OTEL_METRICS_PROTOCOL="http/json", HEADROOM_OTEL_METRICS_TEMPORALITY="delta",
               HEADROOM_OTEL_METRICS_EXPORTER="bogus")
    with Headroomd(mock=mock, extra_conf=CONF, env=env) as h:
        send(h, 4)
        want = h.stats()["requests"]["total"]

        def delta_sum():
            s = 0
            for p in rcv.snapshot()[n0:]:
                j = json.loads(p["body"])
                s += total(metrics_of(j).get("headroom.proxy.requests", {"sum": {}}))
            return s
        ok(wait_until(lambda: delta_sum() == want, timeout=5), "delta: the exported deltas add up to /stats (%d)" % want)
        p = rcv.snapshot()[-1]
        is_(p["headers"].get("Content-Type"), "application/json", "http/json: Content-Type application/json")
        js = [x for x in rcv.snapshot()[n0:] if b"headroom.proxy.requests" in x["body"]]
        m = metrics_of(json.loads(js[0]["body"]))
        is_(m["headroom.proxy.requests"]["sum"]["aggregationTemporality"], 1, "delta: aggregationTemporality 1")
        dec = decode(js[:1], "metrics")[0]
        ok("error" not in dec and metrics_of(dec).get("headroom.proxy.requests"),
           "OTLP/JSON body is accepted by the official classes (fromObject)")
        full = [x for x in rcv.snapshot()[n0:] if b"gen_ai.client.token.usage" in x["body"]]
        dd = decode(full[:1], "metrics")[0]
        compare_with_sdk(dd, sdk_reference(rcv, sdk_records(metrics_of(dd)), "delta"), "delta vs JS SDK")
        like(h.stderr_text(), r"WARN.*HEADROOM_OTEL_METRICS_EXPORTER='bogus'.*otlp_http", "invalid exporter: WARN names it")

    h = Headroomd(mock=mock, extra_conf=CONF, env=dict(BASE_ENV, HEADROOM_OTEL_METRICS_ENDPOINT=rcv.url + "/v1/metrics",
                                                        HEADROOM_OTEL_METRICS_EXPORT_INTERVAL_MS="abc"))
    with h:
        is_(h.stats()["otel"]["export_interval_ms"], 10000, "invalid interval: the default 10000")
        is_(h.stderr_text().count("HEADROOM_OTEL_METRICS_EXPORT_INTERVAL_MS='abc'"), 1, "one WARN naming the variable")
    h = Headroomd(mock=mock, extra_conf=CONF, env=dict(BASE_ENV, HEADROOM_OTEL_METRICS_ENDPOINT="ftp://u:s3cretpw@127.0.0.1:1/v1"))
    with h:
        err = h.stderr_text()
        ok("HEADROOM_OTEL_METRICS_ENDPOINT='ftp://***@127.0.0.1:1/v1' is not valid" in err and "s3cretpw" not in err,
           "an endpoint with a bad scheme: the WARN shows its password as ***")

    # ---- ambient mode --------------------------------------------------------------
    n0 = len(rcv.snapshot())
    with Headroomd(mock=mock, extra_conf=CONF, env={"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.url,
                                                     "OTEL_METRIC_EXPORT_INTERVAL": "200",
                                                     "OTEL_SERVICE_NAME": "ambient-svc"}) as h:
        send(h, 1)
        ok(wait_until(lambda: len(rcv.snapshot()) > n0, timeout=5), "ambient: exports without HEADROOM_OTEL_*")
        is_(rcv.snapshot()[-1]["path"], "/v1/metrics", "ambient: OTEL_EXPORTER_OTLP_ENDPOINT + /v1/metrics")
        o = h.stats()["otel"]
        is_((o["enabled"], o["managed"], o["mode"], o["service_name"]), (True, False, "ambient", "ambient-svc"),
            "/stats.otel.managed false in ambient mode")
    with Headroomd(mock=mock, extra_conf=CONF) as h:
        o = h.stats()["otel"]
        is_((o["enabled"], o["managed"]), (False, False), "no variables: off")

    # ---- console exporter -----------------------------------------------------------
    with Headroomd(mock=mock, extra_conf=CONF, env={"HEADROOM_OTEL_METRICS_ENABLED": "1",
                                                     "HEADROOM_OTEL_METRICS_EXPORTER": "console",
                                                     "HEADROOM_OTEL_METRICS_EXPORT_INTERVAL_MS": "200"}) as h:
        send(h, 1)
        def console_lines():  # complete lines only: the daemon may be writing the next one
            text = h.stdout_text()
            return [x for x in text[:text.rfind("\n") + 1].splitlines() if x.startswith('{"resourceMetrics"')]
        ok(wait_until(lambda: console_lines(), timeout=5), "console: OTLP/JSON on stdout")
        # An export may run between the answer and the sink's event: wait for one with it.
        ok(wait_until(lambda: any(metrics_of(json.loads(x)).get("headroom.proxy.requests") for x in console_lines()),
                      timeout=5), "console line is one OTLP/JSON request")
        ok(wait_until(lambda: h.stats()["otel"]["exports_ok"] >= len(console_lines()) > 0, timeout=5),
           "/stats.otel.exports_ok counts console exports")

    # ---- langfuse ------------------------------------------------------------------
    # A flush interval no test waits for: spans stay pending while the daemon
    # runs, and the shutdown sends them all as one batch.
    n0 = len(rcv.snapshot())
    lf_env = {"HEADROOM_LANGFUSE_ENABLED": "1", "LANGFUSE_PUBLIC_KEY": "pk-lf-test", "LANGFUSE_SECRET_KEY": "sk-lf-s3cret",
              "LANGFUSE_BASE_URL": rcv.url, "HEADROOM_LANGFUSE_FLUSH_INTERVAL_MS": "600000"}
    h = Headroomd(mock=mock, extra_conf="transform example_transform { }\nsink langfuse { }\n", env=lf_env)
    with h:
        send(h, 2)
        send(h, 1, traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        # Sinks take events after the answer: wait for all 3 requests' spans (a
        # root and one per stage, example_transform), or the count read below
        # can miss the last request's (seen once under make distcheck).
        ok(wait_until(lambda: h.stats()["langfuse"]["pending_spans"] >= 3 * 2, timeout=10),
           "langfuse: 3 requests' spans pending (%s)" % h.stats().get("langfuse"))
        lf = h.stats()["langfuse"]
        is_(len(rcv.snapshot()) - n0, 0, "langfuse: nothing posted before the flush interval")
        is_((lf["enabled"], lf["base_url"], lf["endpoint"], lf["flush_interval_ms"], lf["max_batch_spans"]),
            (True, rcv.url, rcv.url + "/api/public/otel/v1/traces", 600000, 512),
            "/stats.langfuse: endpoint, HEADROOM_LANGFUSE_FLUSH_INTERVAL_MS, max batch")
        pending = lf["pending_spans"]
        ok("s3cret" not in json.dumps(h.stats()) and "s3cret" not in h.stderr_text(), "the secret key is never shown")
        is_(h.stop(), 0, "langfuse: clean exit")
    posts = [p for p in rcv.snapshot()[n0:]]
    is_(len(posts), 1, "langfuse: the shutdown sends the pending spans as one batch")
    is_(posts[0]["path"], "/api/public/otel/v1/traces", "langfuse: POST <base>/api/public/otel/v1/traces")
    is_({k.lower(): v for k, v in posts[0]["headers"].items()}.get("authorization"),
        "Basic " + base64.b64encode(b"pk-lf-test:sk-lf-s3cret").decode(), "langfuse: Basic auth public:secret")
    spans = []
    for d in decode(posts, "traces"):
        ok("error" not in d, "trace body decodes as ExportTraceServiceRequest") if "error" in d else None
        for rs in d.get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                spans += ss.get("spans", [])
    is_(len(spans), pending, "langfuse: the batch holds every pending span (%d)" % pending)
    roots = [s for s in spans if s["name"] == "headroom.compression.pipeline"]
    is_(len(roots), 3, "one headroom.compression.pipeline span per request")
    ra = attrs(roots[0]["attributes"])
    is_((ra.get("gen_ai.request.model"), ra.get("gen_ai.system"), ra.get("gen_ai.operation.name")),
        ("gpt-4o", "openai", "chat"), "root span: gen_ai.* attributes")
    ok("gen_ai.usage.input_tokens" in ra and "headroom.tokens.saved" in ra, "root span: usage and tokens saved")
    kids = [s for s in spans if s.get("parentSpanId") == roots[0]["spanId"]]
    ok(kids and all(attrs(k["attributes"]).get("gen_ai.system") for k in kids),
       "a child span per stage, each with gen_ai.* attributes")
    joined = [s for s in roots if s["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736"]
    ok(joined and joined[0].get("parentSpanId") == "00f067aa0ba902b7", "a client's traceparent is honoured")
    jk = [s for s in spans if joined and s.get("parentSpanId") == joined[0]["spanId"]]
    ok(jk and all(s["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736" for s in jk), "its stage spans join the client's trace")
    with Headroomd(mock=mock, extra_conf="sink langfuse { }\n", env={"HEADROOM_LANGFUSE_ENABLED": "1"}) as h:
        is_((h.stats()["langfuse"]["enabled"], h.stats()["langfuse"]["last_error"]),
            (False, "LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY are unset: nothing is exported"),
            "langfuse: missing keys, no export, and last_error says which")
        is_(len([x for x in h.stderr_text().splitlines() if "WARN" in x and "LANGFUSE_PUBLIC_KEY" in x]), 1,
            "missing keys: one WARN")
    # A base URL without its scheme: no export at all, not Langfuse Cloud instead.
    with Headroomd(mock=mock, extra_conf="sink langfuse { }\n",
                   env={"HEADROOM_LANGFUSE_ENABLED": "1", "LANGFUSE_PUBLIC_KEY": "pk-lf-x", "LANGFUSE_SECRET_KEY": "sk-lf-x",
                        "LANGFUSE_BASE_URL": "pk:s3cretpw@127.0.0.1:3000"}) as h:
        post_json(h.url + "/v1/chat/completions", openai_body())
        err = h.stderr_text()
        ok("LANGFUSE_BASE_URL='***@127.0.0.1:3000' is not valid" in err and "no traces are exported" in err
           and "s3cretpw" not in err and "cloud.langfuse.com" not in err,
           "an invalid LANGFUSE_BASE_URL: one WARN, no export (not Langfuse Cloud), its password not shown")
        lf = (h.stats() or {}).get("langfuse") or {}
        is_((lf.get("enabled"), lf.get("endpoint"), lf.get("spans_exported")), (False, None, 0),
            "/stats.langfuse: enabled false, no endpoint, nothing exported (the block was missing)")
        is_(lf.get("last_error"), "LANGFUSE_BASE_URL='***@127.0.0.1:3000' is not an http:// or https:// URL: "
            "nothing is exported", "/stats.langfuse.last_error says why, the password not shown")
rcv.close()
done()
