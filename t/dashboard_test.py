#!/usr/bin/env python3
# GET /dashboard in headless Chromium: the page loads with no console errors,
# renders one SVG bar per row of every /stats-history series, offline-safe
# (no external URLs), under a strict CSP (no inline code; a control page
# shows Chromium reports violations of it), and leaves a screenshot in the
# build tree.
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hrtest  # noqa: E402
from hrtest import *  # noqa: E402,F401

BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                if shutil.which(b)), None)
if not BROWSER:
    skip_all("no headless Chromium (Debian: apt-get install chromium)")

PLUGIN_DIR = os.environ.get("HEADROOM_TEST_PLUGIN_DIR")
ARGS = ["--plugin-dir", PLUGIN_DIR] if PLUGIN_DIR else []
ARTIFACT_DIR = os.path.join(os.getcwd(), "t")  # automake runs tests from the build dir
SCREENSHOT = os.path.join(ARTIFACT_DIR if os.path.isdir(ARTIFACT_DIR) else os.getcwd(), "dashboard-screenshot.png")
SERIES = ["hourly", "daily", "weekly", "monthly"]
METRICS = ["tokens_saved", "compression_savings_usd"]
TINY_MODEL = "gpt-4.1-nano"


def iso(t, day=False):
    return time.strftime("%Y-%m-%d" if day else "%Y-%m-%dT%H:00:00Z", time.gmtime(t))


def bucket(req, saved, model):
    fig = {"requests": req, "tokens_saved": saved, "input_tokens": saved * 5,
           "compression_savings_usd": round(saved * 2.5e-6, 6), "total_cost_usd": round(saved * 1e-5, 6)}
    return dict(fig, by_provider={"anthropic" if "claude" in model else "openai": dict(fig)}, by_model={model: dict(fig)})


def seed(path):
    """A plausible history: days compacted 100+ days ago, hours in the last 3 days."""
    now = time.time()
    daily = {iso(now - d * 86400, day=True): bucket(3, 900 * d, "claude-3-5-haiku-20241022") for d in (100, 120, 150)}
    hourly = {iso(now - h * 3600): bucket(2, 100 * h, "gpt-4o") for h in (2, 5, 30, 70)}
    # One cheap request of its own model: amounts under a cent must not show as $0.0000.
    tiny = {"requests": 1, "tokens_saved": 4, "input_tokens": 40, "compression_savings_usd": 0.000012,
            "total_cost_usd": 0.000042}
    hourly[iso(now - 9 * 3600)] = dict(tiny, by_provider={"openai": dict(tiny)}, by_model={TINY_MODEL: dict(tiny)})
    life = {"requests": 0, "tokens_saved": 0, "input_tokens": 0, "compression_savings_usd": 0.0, "total_cost_usd": 0.0}
    for b in list(daily.values()) + list(hourly.values()):
        for k in life:
            life[k] += b[k]
    doc = {"schema_version": 1, "created_at": iso(now - 150 * 86400), "updated_at": iso(now), "lifetime": life,
           "checkpoints": [{"timestamp": iso(now - 3600), "requests": life["requests"],
                            "total_tokens_saved": life["tokens_saved"], "input_tokens": life["input_tokens"],
                            "compression_savings_usd": life["compression_savings_usd"],
                            "total_cost_usd": life["total_cost_usd"]}],
           "checkpoints_thinned": 0, "hourly": hourly, "daily": daily}
    with open(path, "w") as f:
        json.dump(doc, f)
    return life


def chromium(url, *extra, timeout=90):
    prof = hrtest._mkdtemp("hr-chromium-")
    cmd = [BROWSER, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--user-data-dir=" + prof,
           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000"] + list(extra) + [url]
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                           env=dict(os.environ, HOME=prof))
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        return None, "", "timed out after %ds" % timeout


def directives(csp):
    """{directive: [sources]} of a CSP header value."""
    out = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            out[words[0].lower()] = words[1:]
    return out


def csp_control(csp):
    """Chromium on a page served with `csp` that tries an inline script and
    style besides a same-origin script: (rc, dom, stderr)."""
    import http.server
    import threading
    page = (b"<!DOCTYPE html><html><head><style>body{color:red}</style></head><body>"
            b"<script>document.body.setAttribute('data-inline','ran')</script>"
            b"<script src='self.js'></script></body></html>")
    script = b"document.body.setAttribute('data-self', 'ran');"

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            js = self.path.endswith(".js")
            body = script if js else page
            self.send_response(200)
            self.send_header("Content-Type", "text/javascript" if js else "text/html; charset=utf-8")
            self.send_header("Content-Security-Policy", csp)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        return chromium("http://127.0.0.1:%d/" % srv.server_address[1], "--dump-dom", timeout=60)
    finally:
        srv.shutdown()
        srv.server_close()


def charts(dom):
    """{(series, metric): (bar count, data-count)} from the dumped DOM."""
    out = {}
    for m in re.finditer(r'<svg([^>]*)>(.*?)</svg>', dom, re.S):
        attrs, inner = m.group(1), m.group(2)
        i = re.search(r'id="chart-(\w+?)-(\w+)"', attrs)
        c = re.search(r'data-count="(\d+)"', attrs)
        if i:
            out[(i.group(1), i.group(2))] = (len(re.findall(r'<rect class="bar ', inner)), int(c.group(1)) if c else None)
    return out


with Mock() as m:
    ws = hrtest._mkdtemp("hr-dash-ws-")
    life = seed(os.path.join(ws, "proxy_savings.json"))
    with Headroomd(mock=m, args=ARGS, env={"HEADROOM_WORKSPACE_DIR": ws},
                   extra_conf="transform example_transform {\n}\nsink savings_file {\n    flush_interval 1\n}\n") as h:
        for model in ("gpt-4o-mini", "gpt-4o-mini", "gpt-4o"):
            post_json(h.url + "/v1/chat/completions", openai_body(model=model))
        ok(wait_until(lambda: h.stats()["persistent_savings"]["lifetime"]["requests"] == life["requests"] + 3),
           "seeded history plus live requests")

        r = h.get("/dashboard")
        is_(r.status, 200, "GET /dashboard")
        like(r.header("content-type") or "", r"^text/html", "HTML")
        csp = r.header("content-security-policy") or ""
        d = directives(csp)
        is_(d.get("default-src"), ["'none'"], "CSP: nothing unless allowed below")
        is_((d.get("script-src"), d.get("style-src")), (["'self'"], ["'self'"]),
            "CSP: script and style only from this origin")
        ok(csp and "unsafe-" not in csp and "*" not in csp, "CSP: no 'unsafe-inline', 'unsafe-eval' or wildcard")
        is_([d.get(k) for k in ("frame-ancestors", "base-uri", "object-src", "form-action")], [["'none'"]] * 4,
            "CSP forbids framing, base rewrites, plugins and form targets")
        is_(d.get("require-trusted-types-for"), ["'script'"], "CSP: DOM script sinks need Trusted Types")
        is_(r.header("x-content-type-options"), "nosniff", "page: nosniff")
        ok(not re.search(r"<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+=", r.text, re.I),
           "no inline script, style or event handler in the page")
        for asset, ctype in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
            ok(re.search(r"""<(script|link)[^>]*(src|href)='%s'""" % re.escape(asset), r.text), "page loads " + asset)
            a = h.get("/" + asset)
            is_((a.status, (a.header("content-type") or "").split(";")[0], a.header("x-content-type-options")),
                (200, ctype, "nosniff"), "GET /%s: %s, nosniff" % (asset, ctype))
        sh = h.get("/stats-history")
        is_(sh.header("x-content-type-options"), "nosniff", "dashboard data (/stats-history) is nosniff")
        is_(h.get("/stats").header("x-content-type-options"), "nosniff", "dashboard data (/stats) is nosniff")
        ok(not re.search(r'(src|href)=["\']?(https?:)?//', r.text), "no external scripts, styles or links (works offline)")

        before = h.get_json("/stats-history")
        rc, dom, err = chromium(h.url + "/dashboard", "--dump-dom")
        after = h.get_json("/stats-history")
        is_(rc, 0, "chromium exited cleanly")
        if rc != 0:
            diag(err[-2000:])
        like(dom, r'<body[^>]*data-rendered="1"', "page rendered from live data")
        ok(not re.search(r'<body[^>]*data-errors', dom), "no script errors recorded by the page")
        console = [l for l in err.splitlines() if ":CONSOLE" in l]
        is_(console, [], "no console messages")

        # The console check above would see a CSP violation: the same policy
        # on a page with inline code blocks it, and Chromium says so.
        rc, cdom, cerr = csp_control(csp)
        ok(rc == 0 and 'data-inline="ran"' not in cdom and "data-self=\"ran\"" in cdom,
           "control page under the same CSP: inline script blocked, same-origin script ran")
        like("\n".join(l for l in cerr.splitlines() if ":CONSOLE" in l), r"Content Security Policy",
             "control page: Chromium reports the CSP violation on the console")

        found = charts(dom)
        for s in SERIES:
            rows = {len(before["series"][s]), len(after["series"][s])}
            for metric in METRICS:
                bars, count = found.get((s, metric), (None, None))
                ok(bars in rows and count == bars, "%s %s chart: %s bars for %s rows" % (s, metric, bars, sorted(rows)))
        cmp_ok(len(after["series"]["daily"]), ">=", 150, "daily chart spans the seeded history")
        nonzero = len(re.findall(r'<rect class="bar tokens_saved"[^>]*height="(?!0\.00")', dom))
        cmp_ok(nonzero, ">=", 4, "bars with data have height")

        like(dom, r'data-key="requests"><div class="k">requests</div><div class="v">%s<'
             % format(life["requests"] + 3, ","), "lifetime requests tile")
        like(dom, r'data-model="gpt-4o-mini"', "per-model row for live traffic")
        like(dom, r'data-model="claude-3-5-haiku-20241022"', "per-model row from compacted days")
        tiny_row = re.search(r'<tr data-model="%s">(.*?)</tr>' % re.escape(TINY_MODEL), dom, re.S)
        is_(re.findall(r'<td>([^<]*)</td>', tiny_row.group(1))[-2:] if tiny_row else None, ["$0.000012", "$0.000042"],
            "amounts under a cent show their micro-dollars (savings, cost), not $0.0000")
        lifetime = re.search(r'id="lifetime"(.*?)<h2>', dom, re.S)
        like(lifetime.group(1) if lifetime else "", r'data-key="cost \(USD\)"><div class="k">cost \(USD\)</div>'
             r'<div class="v">\$\d+\.\d{4}<', "amounts of a cent or more keep 4 decimals")
        is_(sorted(set(re.findall(r'stats-history\?format=csv&amp;series=(\w+)', dom))),
            sorted(["history"] + SERIES), "CSV download links")
        like(dom, r'id="session"[^>]*>.*?requests.*?3<', "session tiles from /stats")
        like(dom, r'none configured', "budget state shown")

        if os.path.exists(SCREENSHOT):
            os.unlink(SCREENSHOT)
        rc, _, err = chromium(h.url + "/dashboard", "--screenshot=" + SCREENSHOT, "--window-size=1280,2200",
                              "--hide-scrollbars")
        with open(SCREENSHOT, "rb") if os.path.exists(SCREENSHOT) else open(os.devnull, "rb") as f:
            png = f.read()
        ok(rc == 0 and png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10000,
           "screenshot kept at %s (%d bytes)" % (SCREENSHOT, len(png)))

done()
