#!/usr/bin/env python3
# config_daemon_test.py — the headroomd binary's command line and config handling:
# --check-config, config errors with file:line:col, --version/--help, precedence
# (file < HEADROOM_* < flags), --no-optimize passthrough, clean shutdown.
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403
import glob  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

BIN = os.environ.get("HEADROOMD") or os.path.join(T_DIR, "..", "src", "headroomd")
WRAPPER = shlex.split(os.environ.get("HEADROOMD_WRAPPER", ""))
SRC_CONF = os.path.join(T_DIR, "..", "conf", "headroom.conf")
PLUGIN_DIR = os.environ.get("HEADROOM_TEST_PLUGIN_DIR")
PLUGIN_ARGS = ["--plugin-dir", PLUGIN_DIR] if PLUGIN_DIR else []
TMP = tempfile.mkdtemp(prefix="hr-cfgtest-")


def run(args, env=None, timeout=60, wrapped=True):
    """Run headroomd to completion -> (exit code, stdout, stderr)."""
    e = dict(os.environ)
    e.pop("HR_TEST_UNSET", None)  # t/conf/bad/undefined_env.conf relies on it being unset
    e.setdefault("HEADROOM_TELEMETRY", "off")
    e.update(env or {})
    p = subprocess.run((WRAPPER if wrapped else []) + [BIN] + args, stdin=subprocess.DEVNULL, capture_output=True, env=e, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def write(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w" if isinstance(text, str) else "wb") as f:
        f.write(text)
    return path


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def src_conf_text():
    with open(SRC_CONF) as f:
        return f.read()


# --- --version, --help, bad flags ---
rc, out, err = run(["--version"])
is_(rc, 0, "--version exits 0")
like(out, r"^headroomd \d+\.\d+\.\d+\S* \(plugin ABI \d+\.\d+\)\n$", "--version prints name, version and plugin ABI")
rc, out, err = run(["--help"])
is_(rc, 0, "--help exits 0")
ok(out.startswith("Usage: headroomd") and "--check-config" in out and "--port" in out, "--help shows usage and flags")
rc, out, err = run(["--no-such-flag"])
is_(rc, 2, "unknown flag exits 2")
like(err, r"Try 'headroomd --help'", "unknown flag points at --help")
rc, out, err = run(["stray-argument"])
is_(rc, 2, "stray argument exits 2")
like(err, r"unexpected argument 'stray-argument'", "stray argument is named")
rc, out, err = run(["--help-config"])
ok(rc == 0 and re.search(r"^\s*max_body_size\s", out, re.M), "--help-config lists directives")

# --- --check-config ---
rc, out, err = run(["--check-config", "-c", SRC_CONF] + PLUGIN_ARGS)
is_(rc, 0, "--check-config conf/headroom.conf exits 0")
like(out, r"headroom\.conf: OK", "--check-config says OK")
like(out, r"transform smart_crusher: smart_crusher \S+ \(ABI \d+\.\d+\) \S+smart_crusher\.so",
     "--check-config lists each plugin with version, ABI and file")
like(out, r"max_items\s+= 15", "--check-config lists plugin settings with their values")
if err.strip() and not WRAPPER:
    diag(err)

BAD = [
    ("unknown directive", "host 127.0.0.1\nfrobnicate 1\n", r":2:1: unknown directive 'frobnicate'"),
    ("bad value", "port 99999\n", r":1:6: port: '99999' must be a whole number from 0 to 65535 \(TCP port"),
    ("a number in another unit", "cache_ttl 5m\n",
     r":1:11: cache_ttl: '5m' must be a whole number from 1 to 2592000 \(seconds a cached answer is reused"),
    ("bad size", "max_body_size lots\n", r":1:15: .*size"),
    ("infinite budget", "budget inf\n", r":1:8: budget: 'inf' must be a decimal number of at least 0"),
    ("hex budget", "budget 0x10\n", r":1:8: budget: '0x10' must be a decimal number of at least 0"),
    ("bad url", "openai_api_url ftp://x\n", r":1:16: .*http"),
    ("bad budget_period", "budget 1\nbudget_period yearly\n",
     r":2:15: budget_period: 'yearly' must be hourly, daily, weekly or monthly"),
    ("bad upstream_client", "# c\nupstream_client  fast\n", r":2:18: upstream_client: 'fast' must be auto, native or curl"),
    ("unterminated string", "# c\nhost \"127.0.0.1\n", r":2:6: unterminated string"),
    ("unknown plugin key", "transform example_transform {\n  squeeze_blank_lines yes\n  bogus_key 1\n}\n",
     r":3:3: transform example_transform has no setting 'bogus_key'; it accepts: .*max_blank_lines"),
    ("a plugin value of the wrong type", "transform example_transform {\n  max_blank_lines two\n}\n",
     r":2:19: transform example_transform: max_blank_lines: 'two' must be a whole number \(blank lines"),
    ("a plugin name misspelt", "transform smart_cruncher {\n}\n",
     r":1:1: transform 'smart_cruncher': no plugin file .*smart_cruncher\.so; did you mean 'smart_crusher'\?"),
    ("unknown plugin", "transform no_such_plugin {\n}\n", r":1:1: transform 'no_such_plugin': no plugin file .*no_such_plugin"),
]
for label, text, pat in BAD:
    path = write(label.replace(" ", "_") + ".conf", text)
    rc, out, err = run(["--check-config", "-c", path] + PLUGIN_ARGS)
    is_(rc, 1, "--check-config, %s: exits 1" % label)
    like(err, re.escape(path) + pat, "--check-config, %s: stderr says file:line:col: and what is wrong" % label)
    is_(out, "", "--check-config, %s: nothing on stdout" % label)

# Every parser-level bad fixture is refused the same way by the binary.
fixtures = sorted(glob.glob(os.path.join(T_DIR, "conf", "bad", "*.conf")))
ok(len(fixtures) >= 10, "t/conf/bad fixtures found (%d)" % len(fixtures))
failures = []
for i, path in enumerate(fixtures):
    # Parser errors only: one run under $HEADROOMD_WRAPPER (valgrind) is enough.
    rc, out, err = run(["--check-config", "-c", path], wrapped=(i == 0))
    if rc != 1 or not re.search(re.escape(path) + r":\d+:\d+: \S", err):
        failures.append((os.path.basename(path), rc, err[:200]))
is_(failures, [], "each t/conf/bad fixture: exit 1 with file:line:col: in stderr")

# A plugin setting out of its declared bounds: refused by --check-config
# without running the plugin's init, and by the daemon the same way.
path = write("plugin_bounds.conf", "transform example_transform {\n  max_blank_lines -3\n}\n")
rc, out, err = run(["--check-config", "-c", path] + PLUGIN_ARGS)
is_(rc, 1, "--check-config: a value below the key's declared minimum exits 1")
like(err, re.escape(path) + r":2:\d+: transform example_transform: max_blank_lines: '-3' must be at least 0",
     "the message names file:line:col, the plugin, the key and its bounds")
rc, out, err = run(["-c", path, "--port", "0"] + PLUGIN_ARGS)
ok(rc == 1 and "must be at least 0" in err, "and the daemon refuses to start with it (exit %s)" % rc)
# --check-config never runs init: the request_log sink's init creates its
# file; the check must not.
log_path = os.path.join(TMP, "noinit-requests.jsonl")
path = write("plugin_noinit.conf", "sink request_log {\n  path %s\n}\n" % log_path)
rc, out, err = run(["--check-config", "-c", path] + PLUGIN_ARGS)
is_(rc, 0, "--check-config with a request_log sink exits 0")
ok(not os.path.exists(log_path), "--check-config ran no plugin init: the log file was not created")
path = write("plugin_required.conf", "sink request_log {\n  fsync no\n}\n")
rc, out, err = run(["--check-config", "-c", path] + PLUGIN_ARGS)
ok(rc == 1 and re.search(re.escape(path) + r":1:\d+: sink request_log needs 'path' set", err),
   "a required plugin key left out: file:line:col names the block and the key (%s)" % err.strip()[-160:])

# A value only the plugin's init can judge stops the daemon naming the
# block's place; two blocks serving one path are refused naming both.
path = write("plugin_init_fails.conf", "host 127.0.0.1\nsink prometheus {\n  path metrics\n}\n")
rc, out, err = run(["-c", path, "--port", "0"] + PLUGIN_ARGS)
ok(rc == 1 and "path 'metrics' is not a URL path" in err and
   re.search(re.escape(path) + r":2:1: sink 'prometheus' failed to start", err),
   "a plugin's init refusing its value: exit 1, the block's file:line:col named (%s)" % err.strip()[-200:])
path = write("plugin_same_route.conf", "host 127.0.0.1\nsink prometheus { }\nsink prometheus as p2 { }\n")
rc, out, err = run(["-c", path, "--port", "0"] + PLUGIN_ARGS)
ok(rc == 1 and re.search(r"GET /metrics is served already by 'prometheus' \(%s:2:1\); give this block \(%s:3:1\) "
                         r"another path" % (re.escape(path), re.escape(path)), err),
   "two blocks serving GET /metrics: exit 1, both blocks named (%s)" % err.strip()[-240:])

# Values with a fixed set of words are checked where they are read, like
# every other value: the daemon refuses to start naming file:line:col, the key
# and the words it takes (they were checked after parsing, without a place).
for key, bad, words in (("budget_period", "yearly", "hourly, daily, weekly or monthly"),
                        ("upstream_client", "fast", "auto, native or curl")):
    path = write("start_%s.conf" % key, "port 0\n%s %s\n" % (key, bad))
    rc, out, err = run(["-c", path])
    ok(rc == 1 and re.search(re.escape(path) + r":2:%d: %s: '%s' must be %s" % (len(key) + 2, key, bad, words), err),
       "headroomd -c with a bad %s: exit 1, file:line:col, the key and its words (exit %s: %s)" % (key, rc, err.strip()[-160:]))
    rc, out, err = run(["--check-config"], env={"HEADROOM_" + key.upper(): bad})
    ok(rc == 1 and "environment variable HEADROOM_%s: '%s' must be %s" % (key.upper(), bad, words) in err,
       "a bad HEADROOM_%s: exit 1 naming the variable (%s)" % (key.upper(), err.strip()[-160:]))
rc, out, err = run(["--check-config", "--budget-period", "yearly"])
ok(rc == 1 and "invalid value 'yearly' for --budget-period (expected hourly, daily, weekly or monthly)" in err,
   "a bad --budget-period: exit 1 naming the flag (%s)" % err.strip()[-160:])
rc, out, err = run(["--check-config", "-c", write("good_words.conf", "budget 1\nbudget_period weekly\nupstream_client curl\n")])
ok(rc == 0 and "budget $1.00 weekly" in out, "good budget_period and upstream_client: accepted (%s)" % (err.strip()[-160:]))

rc, out, err = run(["-c", os.path.join(TMP, "missing.conf")])
is_(rc, 1, "missing config file exits 1")
like(err, r"missing\.conf: cannot open", "missing config file is named")
rc, out, err = run(["-c", write("p.conf", "port 1\n"), "--port", "nope"])
ok(rc == 1 and "--port" in err, "bad --port value exits 1 naming the flag")
rc, out, err = run(["-c", write("e.conf", "port 1\n"), "--check-config"], env={"HEADROOM_PORT": "x"})
ok(rc == 1 and "HEADROOM_PORT" in err, "bad HEADROOM_PORT exits 1 naming the variable")

# --- precedence: file < HEADROOM_* < flags ---
with Mock() as m:
    file_port = free_port()
    conf = "host 127.0.0.1\nport %d\nworkers 1\nopenai_api_url @MOCK_URL@\nanthropic_api_url @MOCK_URL@\n" % file_port
    # flag beats file
    h = Headroomd(conf_text=conf, mock=m)
    h.args = ["--port", str(h.port)]
    with h:
        ok(listening(h.port) and not listening(file_port), "--port overrides the file's port")
        is_(post_json(h.url + "/v1/chat/completions", openai_body()).status, 200, "and proxies there")
    # env beats file
    h = Headroomd(conf_text=conf, mock=m)
    h.env = {"HEADROOM_PORT": str(h.port)}
    with h:
        ok(listening(h.port) and not listening(file_port), "HEADROOM_PORT overrides the file's port")
    # flag beats env
    h = Headroomd(conf_text=conf, mock=m)
    h.env = {"HEADROOM_PORT": str(free_port())}
    h.args = ["--port", str(h.port)]
    with h:
        ok(listening(h.port), "--port beats HEADROOM_PORT")
    # env URL beats the file's URL
    dead = free_port()
    conf2 = "host 127.0.0.1\nport @PORT@\nworkers 1\nopenai_api_url http://127.0.0.1:%d\n" % dead
    with Headroomd(conf_text=conf2, mock=m, env={"HEADROOM_OPENAI_API_URL": m.url}) as h:
        is_(post_json(h.url + "/v1/chat/completions", openai_body()).status, 200,
            "HEADROOM_OPENAI_API_URL overrides the file's openai_api_url")
    with Headroomd(conf_text=conf2, mock=m, args=["--openai-api-url", m.url + "/v1/"]) as h:
        is_(post_json(h.url + "/v1/chat/completions", openai_body()).status, 200,
            "--openai-api-url overrides it too (trailing /v1/ accepted)")

    # --- --no-optimize / optimize no: bodies forwarded byte-identically ---
    ansi = "".join("\x1b[1;31mERROR\x1b[0m line %d: \x1b[32mok\x1b[0m value=%d\n" % (i, i * 7) for i in range(80))
    msgs = [{"role": "user", "content": "run it"},
            {"role": "assistant", "content": None,
             "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "shell", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": ansi}]
    raw = dumps(openai_body(messages=msgs)).replace(b'"messages":', b'  "messages" :\n ')
    base = src_conf_text().replace("port 8787", "port @PORT@").replace("workers auto", "workers 2")
    base = re.sub(r"(?m)^(openai_api_url|anthropic_api_url)\s.*$", r"\1 @MOCK_URL@", base)
    # What the optimizing daemon counts for the same body, to hold passthrough's late count to.
    with Headroomd(conf_text=base, mock=m, args=PLUGIN_ARGS) as h:
        counted = int(request("POST", h.url + "/v1/chat/completions", body=raw,
                              headers={"Content-Type": "application/json"}).header("x-headroom-tokens-before"))
    for label, args, extra in (("--no-optimize", ["--no-optimize"], ""), ("optimize no", [], "optimize no\n")):
        m.reset()
        with Headroomd(conf_text=base, extra_conf=extra, mock=m, args=args + PLUGIN_ARGS) as h:
            r = request("POST", h.url + "/v1/chat/completions", body=raw, headers={"Content-Type": "application/json"})
            is_(r.status, 200, label + ": proxied")
            is_(m.last_request()["body"], raw, label + ": body forwarded byte for byte (ANSI codes kept)")
            is_(r.header("x-headroom-tokens-before"), None,
                label + ": no token headers (the body is counted after the answer, off the request path)")
            # Counted once the answer is out (a loop turn or two later).
            st = wait_until(lambda: (lambda s: s if s["tokens"]["input"] else None)(get_json(h.url + "/stats")[1]),
                            10) or get_json(h.url + "/stats")[1]
            is_(st["tokens"]["input"], counted, label + ": /stats counts the body as the optimizing daemon does")
            is_(st["tokens"]["saved"], 0, label + ": nothing saved")
            ok("gpt-4o-mini" in st["requests"].get("by_model", {}), label + ": the model was read (by_model)")
            # The OpenAI and Anthropic SDKs put "model" after "messages": read from the body's far end,
            # past a tool output longer than the first stretch either end reads.
            late = dumps({"messages": msgs[:2] + [dict(msgs[2], content=ansi * 40)], "model": "gpt-4.1-nano",
                          "max_tokens": 64})
            is_(request("POST", h.url + "/v1/chat/completions", body=late,
                        headers={"Content-Type": "application/json"}).status, 200, label + ": model last, proxied")
            ok(wait_until(lambda: "gpt-4.1-nano" in get_json(h.url + "/stats")[1]["requests"].get("by_model", {}), 10),
               label + ": a model after 200 KB of messages was read (by_model)")
            like(h.stderr_text(), r"passthrough", label + ": startup log says passthrough")

    # --- clean shutdown ---
    with Headroomd(mock=m, expect_exit=None) as h:
        is_(post_json(h.url + "/v1/chat/completions", openai_body()).status, 200, "daemon serving before SIGTERM")
        rc = h.stop(timeout=15)
        is_(rc, 0, "SIGTERM -> exit code 0")
        like(h.stderr_text(), r"SIGTERM received.*\n(.*\n)*.*stopped", "SIGTERM and 'stopped' logged")
    with Headroomd(mock=m, expect_exit=None) as h:
        h.signal(signal.SIGHUP)
        time.sleep(0.2)
        ok(h.alive() and post_json(h.url + "/v1/chat/completions", openai_body()).status == 200,
           "SIGHUP does not stop the daemon")
        h.signal(signal.SIGINT)
        try:
            rc = h.proc.wait(15)
        except subprocess.TimeoutExpired:
            rc = None
        h.stop()
        is_(rc, 0, "SIGINT -> exit code 0")
    # Shutdown while a stream outlives shutdown_timeout: exits 0 promptly, the client is not left
    # hanging (t/drain_test.py covers streams that finish within it).
    m.reset()
    with Headroomd(mock=m, expect_exit=None, extra_conf="shutdown_timeout 1\n") as h:
        res = {}
        th = threading.Thread(target=lambda: res.setdefault(
            "r", stream(h.url + "/v1/messages", anthropic_body(stream=True),
                        {"x-mock-chunk-delay-ms": "200", "x-mock-chunks": "50"}, timeout=20)))
        th.start()
        wait_until(lambda: m.counters()["streams_started"] >= 1, timeout=5)
        time.sleep(0.3)
        t0 = time.monotonic()
        rc = h.stop(timeout=15)
        th.join(20)
        is_(rc, 0, "SIGTERM with a stream in flight -> exit code 0")
        cmp_ok(time.monotonic() - t0, "<", 10, "and it does not wait for the 10 s stream")
        r = res.get("r")
        ok(r is not None and not th.is_alive(), "the streaming client is released")
        ok(wait_until(lambda: m.aborted() >= 1, timeout=5), "the upstream transfer is aborted")

    # --- port already in use ---
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    busy = s.getsockname()[1]
    rc, out, err = run(["-c", write("busy.conf", "host 127.0.0.1\nport %d\nworkers 1\n" % busy)], timeout=30)
    s.close()
    is_(rc, 1, "port in use -> exit 1")
    like(err, r"cannot listen on 127\.0\.0\.1:%d" % busy, "port in use: says which address")

import shutil  # noqa: E402
shutil.rmtree(TMP, ignore_errors=True)
done()
