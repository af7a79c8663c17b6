#!/usr/bin/env python3
# wrap_test.py — `headroom wrap` with stand-in agents: small shell scripts
# named claude, codex, aider (and a generic command) on a temp PATH that
# record their environment and arguments, make a request through the proxy
# the way the real agent would (its base-URL and header variables), and save
# /stats while the proxy is up. Checked: the proxy wrap starts (install_mode
# wrapped, HEADROOM_STACK wrap_<agent>) counts the session under
# requests.by_stack.wrap_<agent> (unless the user's ANTHROPIC_CUSTOM_HEADERS
# already name a stack, which is kept) and is stopped afterwards (also after
# SIGTERM and Ctrl-C); a headroomd already on the port is reused and left
# running (also when wrap is SIGKILLed, which stops the one it started);
# the agent's exit code (and death by a signal) comes back; a
# missing agent (127), one that is there but not executable (126), a port
# held by something else or a config that does not parse (exit 1, naming
# file:line) is a clear error; a script without #! runs with /bin/sh.
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403
import http.server  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

CLI = os.environ.get("HEADROOM_CLI") or os.path.join(T_DIR, "..", "src", "headroom")
HEADROOMD = os.environ.get("HEADROOMD") or os.path.join(T_DIR, "..", "src", "headroomd")

WORK = tempfile.mkdtemp(prefix="hr-wrap-")
if os.environ.get("HRTEST_KEEP") != "1":
    import atexit
    atexit.register(shutil.rmtree, WORK, True)
BIN = os.path.join(WORK, "bin")
OUT = os.path.join(WORK, "out")
os.makedirs(BIN)
os.makedirs(OUT)

# What a stand-in agent does: one request the way the agent is configured,
# then a copy of /stats (the proxy may be gone once wrap returns).
REQ = r'''
import json, os, sys, urllib.request
kind, name = sys.argv[1], sys.argv[2]
out = os.environ["WRAP_OUT"]
if kind == "anthropic":
    base = os.environ["ANTHROPIC_BASE_URL"]
    url = base + "/v1/messages"
    body = {"model": "claude-3-5-haiku-20241022", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"content-type": "application/json", "x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
    for line in os.environ.get("ANTHROPIC_CUSTOM_HEADERS", "").splitlines():
        k, _, v = line.partition(":")
        if k.strip():
            headers[k.strip()] = v.strip()
    root = base
else:
    base = os.environ["OPENAI_BASE_URL"]
    url = base + "/chat/completions"
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"content-type": "application/json", "authorization": "Bearer sk-test"}
    root = base[:-3] if base.endswith("/v1") else base
req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
with urllib.request.urlopen(req, timeout=20) as r:
    status = r.status
with urllib.request.urlopen(root + "/stats", timeout=20) as r:
    stats = json.load(r)
json.dump({"status": status, "stats": stats}, open(os.path.join(out, name + ".result"), "w"))
'''
with open(os.path.join(WORK, "req.py"), "w") as f:
    f.write(REQ)


def stand_in(name, kind, extra=""):
    path = os.path.join(BIN, name)
    with open(path, "w") as f:
        f.write('#!/bin/sh\n'
                'env > "$WRAP_OUT/%(n)s.env"\n'
                'printf "%%s\\n" "$@" > "$WRAP_OUT/%(n)s.args"\n'
                '"$WRAP_PYTHON" "%(req)s" %(k)s %(n)s || exit 99\n'
                '%(extra)s\n'
                'exit "${AGENT_EXIT:-0}"\n' % {"n": name, "k": kind, "req": os.path.join(WORK, "req.py"), "extra": extra})
    os.chmod(path, 0o755)


stand_in("claude", "anthropic")
stand_in("codex", "openai")
stand_in("aider", "openai")
stand_in("mytool", "openai", 'read line; echo "agent-said:$line"')
with open(os.path.join(BIN, "ttycheck"), "w") as f:
    f.write('#!/bin/sh\nif [ -t 0 ] && [ -t 1 ] && [ -t 2 ]; then echo tty-ok; else echo no-tty; fi\n')
os.chmod(os.path.join(BIN, "ttycheck"), 0o755)
# The slow agent says it started only once a signal is sure to end it: with
# `touch started; sleep 30` in sh, a Ctrl-C landing as touch exited was
# taken by the shell, which then slept its 30 s (the test saw wrap hang).
with open(os.path.join(WORK, "slow.py"), "w") as f:
    f.write("import os, signal, time\n"
            "signal.signal(signal.SIGINT, signal.SIG_DFL)\n"
            "open(os.path.join(os.environ['WRAP_OUT'], 'slowagent.started'), 'w').close()\n"
            "time.sleep(30)\n")
stand_in("slowagent", "anthropic", 'exec "$WRAP_PYTHON" "%s"' % os.path.join(WORK, "slow.py"))
# An agent that exits while a request of its own is still running (a child
# it left behind): the upstream takes 17 s to answer, longer than the 15 s
# wrap used to give a daemon after SIGTERM.
with open(os.path.join(WORK, "leftover.py"), "w") as f:
    f.write("import os, urllib.request\n"
            "out = os.path.join(os.environ['WRAP_OUT'], 'leftover.status')\n"
            "req = urllib.request.Request(os.environ['OPENAI_BASE_URL'] + '/chat/completions', method='POST',\n"
            "    data=b'{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}',\n"
            "    headers={'content-type': 'application/json', 'authorization': 'Bearer sk-test', 'x-mock-delay-ms': '17000'})\n"
            "try:\n"
            "    with urllib.request.urlopen(req, timeout=60) as r:\n"
            "        status = str(r.status)\n"
            "except Exception as e:\n"
            "    status = 'error: %s' % e\n"
            "open(out, 'w').write(status)\n")
stand_in("leftover", "openai", '"$WRAP_PYTHON" "%s" >/dev/null 2>&1 &\nsleep 1' % os.path.join(WORK, "leftover.py"))


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def result(name):
    t = read(os.path.join(OUT, name + ".result"))
    return json.loads(t) if t else {}


def envfile(name):
    t = read(os.path.join(OUT, name + ".env")) or ""
    return dict(line.split("=", 1) for line in t.splitlines() if "=" in line)


def port_open(port):
    s = socket.socket()
    s.settimeout(1)
    try:
        return s.connect_ex(("127.0.0.1", port)) == 0
    finally:
        s.close()


def base_env(mock, workspace, **extra):
    e = dict(os.environ)
    for k in ("HEADROOM_CONFIG", "HEADROOM_PORT", "HEADROOM_STACK", "HEADROOM_INSTALL_MODE", "ANTHROPIC_CUSTOM_HEADERS",
              "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"):
        e.pop(k, None)
    e.update({"PATH": BIN + ":" + os.environ.get("PATH", "/usr/bin:/bin"), "WRAP_OUT": OUT, "WRAP_PYTHON": sys.executable,
              "HEADROOMD": HEADROOMD, "HEADROOM_WORKSPACE_DIR": workspace, "HEADROOM_TELEMETRY": "off",
              "HEADROOM_OPENAI_API_URL": mock.url, "HEADROOM_ANTHROPIC_API_URL": mock.url})
    e.update(extra)
    return e


def wrap(args, env, timeout=60, stdin=b""):
    return subprocess.run([CLI, "wrap"] + args, env=env, capture_output=True, timeout=timeout, input=stdin)


with Mock() as m:
    ws = tempfile.mkdtemp(prefix="ws-", dir=WORK)

    # ---- --print-env: the environment, as shell exports, nothing started
    port = free_port()
    r = wrap(["--print-env", "--port", str(port), "claude"], base_env(m, ws))
    is_(r.returncode, 0, "--print-env claude exits 0")
    is_(r.stdout.decode().splitlines(),
        ["export ANTHROPIC_BASE_URL='http://127.0.0.1:%d'" % port,
         "export ANTHROPIC_CUSTOM_HEADERS='X-Headroom-Stack: wrap_claude'"], "--print-env claude")
    ok(not port_open(port), "--print-env starts no proxy")
    r = wrap(["--print-env", "codex"], base_env(m, ws, HEADROOM_PORT="9911"))
    is_(r.stdout.decode(), "export OPENAI_BASE_URL='http://127.0.0.1:9911/v1'\n", "--print-env codex (port from HEADROOM_PORT)")
    sh = subprocess.run(["sh", "-c", 'eval "$(%s wrap --print-env aider)"; echo "$OPENAI_API_BASE|$ANTHROPIC_BASE_URL"' % CLI],
                        env=base_env(m, ws), capture_output=True)
    is_(sh.stdout.decode().strip(), "http://127.0.0.1:8787/v1|http://127.0.0.1:8787", "--print-env aider evaluates in sh")
    # What follows the agent's name is the agent's (as with env and sudo); with
    # --print-env no agent runs, so a wrap option there was silently unused
    # (the exports had the default port): a note says so and where it goes.
    team = os.path.join(WORK, "team.conf")
    with open(team, "w") as f:
        f.write("port 9123\n")
    r = wrap(["--print-env", "claude", "-c", team], base_env(m, ws))
    ok(r.returncode == 0 and "127.0.0.1:8787" in r.stdout.decode()
       and "'-c %s' after 'claude' is claude's, not wrap's" % team in r.stderr.decode()
       and "headroom wrap --print-env -c %s claude\n" % team in r.stderr.decode(),
       "--print-env claude -c team.conf: the exports, and a note that -c went to claude and where it goes (%s)"
       % r.stderr.decode().strip())
    r = wrap(["--print-env", "--port", "9000", "--", "mytool", "--port", "9111"], base_env(m, ws))
    ok("'--port 9111' after 'mytool' is mytool's" in r.stderr.decode()
       and "headroom wrap --print-env --port 9000 --port 9111 -- mytool" in r.stderr.decode(),
       "--print-env -- mytool --port 9111: the note, for a command too")
    r = wrap(["--print-env", "-c", team, "claude"], base_env(m, ws))
    ok(r.returncode == 0 and "127.0.0.1:9123" in r.stdout.decode() and r.stderr.decode() == "",
       "--print-env -c team.conf claude: its port, no note")
    r = wrap(["--print-env", "claude"], base_env(m, ws, ANTHROPIC_CUSTOM_HEADERS="X-Team: blue"))
    like(r.stdout.decode(), r"ANTHROPIC_CUSTOM_HEADERS='X-Team: blue\nX-Headroom-Stack: wrap_claude'", "the user's own custom headers are kept")
    # The user's own X-Headroom-Stack (any case) is kept, and no second one is added.
    for mine in ("X-Headroom-Stack: team_blue", "X-Team: blue\nx-headroom-stack : team_blue"):
        r = wrap(["--print-env", "--port", "9911", "claude"], base_env(m, ws, ANTHROPIC_CUSTOM_HEADERS=mine))
        is_(r.stdout.decode(), "export ANTHROPIC_BASE_URL='http://127.0.0.1:9911'\nexport ANTHROPIC_CUSTOM_HEADERS='%s'\n" % mine,
            "the user's own X-Headroom-Stack is kept and no second one added (%r)" % mine)

    # ---- the config of a wrap given none (-c, $HEADROOM_CONFIG): headroom.conf in the state
    # directory, else the installed one (run from the build tree: the source tree's conf/headroom.conf)
    def listening(workspace):
        m_ = re.findall(r"listening on http://127\.0\.0\.1:(\d+) \(.*?(\d+) transforms, (\d+) sinks\)",
                        read(os.path.join(workspace, "wrap-headroomd.log")) or "")
        return tuple(int(x) for x in m_[-1]) if m_ else None

    ws_src = os.path.join(WORK, "ws-src")
    port = free_port()
    r = wrap(["--port", str(port), "--", "true"], base_env(m, ws_src))
    st = listening(ws_src)
    ok(r.returncode == 0 and st and st[1] > 0 and st[2] > 0,
       "no config given, none in the state directory: the source tree's conf/headroom.conf (transforms, sinks): %s" % (st,))
    is_(r.stderr.decode(), "", "a config was found: nothing said")
    ws_user = os.path.join(WORK, "ws-user")
    os.makedirs(ws_user)
    user_port = free_port()
    with open(os.path.join(ws_user, "headroom.conf"), "w") as f:
        f.write("port %d\ntransform router {\n}\n" % user_port)
    r = wrap(["--print-env", "codex"], base_env(m, ws_user))
    is_(r.stdout.decode(), "export OPENAI_BASE_URL='http://127.0.0.1:%d/v1'\n" % user_port,
        "headroom.conf in the state directory: its port")
    r = wrap(["--", "true"], base_env(m, ws_user))
    is_((r.returncode, listening(ws_user), r.stderr.decode()), (0, (user_port, 1, 0), ""),
        "headroom.conf in the state directory: the headroomd wrap starts reads it")
    plain = os.path.join(WORK, "plain.conf")
    with open(plain, "w") as f:
        f.write("log_level info\n")
    for how, args, extra in (("-c", ["-c", plain], {}), ("$HEADROOM_CONFIG", [], {"HEADROOM_CONFIG": plain})):
        port = free_port()
        r = wrap(args + ["--port", str(port), "--", "true"], base_env(m, ws_user, **extra))
        is_((r.returncode, listening(ws_user), r.stderr.decode()), (0, (port, 0, 0), ""),
            "%s comes before the state directory's headroom.conf" % how)
    # Installed (outside the build tree) with no config anywhere: one line says what that means.
    real_cli = os.path.join(os.path.dirname(CLI), ".libs", "headroom")
    if not os.path.exists(real_cli):
        skip("no libtool build of headroom to copy out of the build tree", 6)
    else:
        inst = os.path.join(WORK, "inst")
        os.makedirs(inst)
        shutil.copy(real_cli, os.path.join(inst, "headroom"))
        lib_dir = os.path.dirname(os.environ.get("HEADROOM_LIBRARY") or os.path.join(os.path.dirname(CLI), "..", ".libs", "x"))
        inst_env = dict(LD_LIBRARY_PATH=lib_dir + ":" + os.environ.get("LD_LIBRARY_PATH", ""))
        help_ = subprocess.run([os.path.join(inst, "headroom"), "wrap", "--help"], capture_output=True,
                               env=base_env(m, ws_src, **inst_env)).stdout.decode()
        site = re.search(r"the first that exists of .*? and (\S+?);", help_, re.S)
        if not site or os.path.exists(site.group(1)):
            skip("the installed config is there (%s)" % (site.group(1) if site else help_), 6)
        else:
            ws_none = os.path.join(WORK, "ws-none")
            port = free_port()
            r = subprocess.run([os.path.join(inst, "headroom"), "wrap", "--port", str(port), "--", "true"],
                               env=base_env(m, ws_none, **inst_env), capture_output=True, timeout=60)
            is_((r.returncode, listening(ws_none)), (0, (port, 0, 0)), "no config anywhere: a headroomd with none")
            err = r.stderr.decode()
            is_(len(err.splitlines()), 1, "no config anywhere: one line on stderr")
            like(err, r"^headroom wrap: no config \(none given with -c or \$HEADROOM_CONFIG, none at %s or %s\), so "
                 r"the headroomd started for this session only proxies and counts requests: no compression, no savings "
                 r"file; for those, give one with -c FILE or HEADROOM_CONFIG, or put one at %s\n$"
                 % (re.escape(os.path.join(ws_none, "headroom.conf")), re.escape(site.group(1)),
                    re.escape(os.path.join(ws_none, "headroom.conf"))), "no config anywhere: says what that means and what to do")
            r = subprocess.run([os.path.join(inst, "headroom"), "wrap", "--print-env", "--", "true"],
                               env=base_env(m, ws_none, **inst_env), capture_output=True, timeout=60)
            is_((r.returncode, r.stderr.decode()), (0, ""), "no config anywhere, --print-env: nothing said (nothing started)")
            with Headroomd() as h:
                r = subprocess.run([os.path.join(inst, "headroom"), "wrap", "--port", str(h.port), "--", "true"],
                                   env=base_env(m, ws_none, **inst_env), capture_output=True, timeout=60)
                is_((r.returncode, r.stderr.decode()), (0, ""), "no config anywhere, a headroomd running: nothing said")
            ok(not port_open(port), "no config anywhere: the proxy is stopped")

    # ---- claude: wrap starts a proxy for the session, stops it after
    port = free_port()
    r = wrap(["--port", str(port), "claude", "--", "--model", "opus", "-p", "two words"], base_env(m, ws, AGENT_EXIT="7"))
    is_(r.returncode, 7, "the agent's exit code comes back")
    res = result("claude")
    is_(res.get("status"), 200, "the agent's request went through the proxy")
    st = res.get("stats", {})
    is_(st.get("requests", {}).get("by_stack"), {"wrap_claude": 1}, "the session shows under requests.by_stack.wrap_claude")
    t = st.get("telemetry", {})
    is_((t.get("headroom_stack"), t.get("install_mode"), t.get("beacon_enabled")), ("wrap_claude", "wrapped", False),
        "/stats.telemetry of the proxy wrap started")
    e = envfile("claude")
    is_(e.get("ANTHROPIC_BASE_URL"), "http://127.0.0.1:%d" % port, "ANTHROPIC_BASE_URL")
    is_(e.get("ANTHROPIC_CUSTOM_HEADERS"), "X-Headroom-Stack: wrap_claude", "ANTHROPIC_CUSTOM_HEADERS carries the stack")
    is_(read(os.path.join(OUT, "claude.args")), "--model\nopus\n-p\ntwo words\n", "agent arguments passed as given")
    ok(not port_open(port), "the proxy wrap started is stopped when the agent exits")
    log = read(os.path.join(ws, "wrap-headroomd.log")) or ""
    like(log, r"SIGTERM received: (shutting down|draining)", "stopped cleanly (SIGTERM)")
    like(log, r"INFO:headroom\.server:stopped", "and it finished")
    is_([k for k, v in m.last_request()["headers"] if k.lower().startswith("x-headroom")], [],
        "X-Headroom-Stack is not forwarded upstream")

    # ---- codex and aider: no header variable; the proxy's HEADROOM_STACK names them
    for agent, var in (("codex", "OPENAI_BASE_URL"), ("aider", "OPENAI_API_BASE")):
        port = free_port()
        r = wrap(["--port", str(port), agent], base_env(m, ws))
        is_(r.returncode, 0, "%s: exit 0" % agent)
        st = result(agent).get("stats", {})
        is_(st.get("requests", {}).get("by_stack"), {"wrap_" + agent: 1}, "%s: requests.by_stack.wrap_%s" % (agent, agent))
        is_(envfile(agent).get(var), "http://127.0.0.1:%d/v1" % port, "%s: %s" % (agent, var))
        if agent == "codex":  # Codex CLI from ~0.17x reads only its openai_base_url config key
            is_(read(os.path.join(OUT, "codex.args")), '-c\nopenai_base_url="http://127.0.0.1:%d/v1"\n' % port,
                "codex: -c openai_base_url given first")
        ok(not port_open(port), "%s: proxy stopped" % agent)

    # ---- generic: wrap -- CMD
    port = free_port()
    r = wrap(["--port", str(port), "--", "mytool", "a b"], base_env(m, ws, AGENT_EXIT="3"), stdin=b"from-stdin\n")
    is_(r.returncode, 3, "wrap -- CMD: the command's exit code")
    is_(r.stdout.decode(), "agent-said:from-stdin\n", "stdin and stdout are the agent's (the proxy's output goes to its log)")
    e = envfile("mytool")
    is_([e.get(k) for k in ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL")],
        ["http://127.0.0.1:%d/v1" % port, "http://127.0.0.1:%d" % port], "wrap -- CMD: both base URLs")
    is_(result("mytool").get("stats", {}).get("requests", {}).get("by_stack"), {"wrap_generic": 1}, "wrap -- CMD: wrap_generic")
    is_(read(os.path.join(OUT, "mytool.args")), "a b\n", "wrap -- CMD: arguments")

    # ---- a headroomd already on the port is reused and left running
    with Headroomd() as h:
        r = wrap(["--port", str(h.port), "claude"], base_env(m, ws + "-reuse"))
        is_(r.returncode, 0, "reuse: exit 0")
        ok(h.alive(), "reuse: the running headroomd is left running")
        is_(h.stats()["requests"]["by_stack"], {"wrap_claude": 1}, "reuse: the session shows in the running daemon's /stats")
        ok(not os.path.exists(os.path.join(ws + "-reuse", "wrap-headroomd.log")), "reuse: no second headroomd started")
        r = wrap(["-c", h.conf_path, "codex"], base_env(m, ws + "-reuse"))
        is_((r.returncode, h.stats()["requests"]["by_stack"]), (0, {"wrap_claude": 1}),
            "reuse: the port from the config file (-c); codex sends no stack header")
        is_(h.stats()["requests"]["total"], 2, "reuse: codex's request went to the running daemon")
        r = wrap(["--print-env", "codex"], base_env(m, ws, HEADROOM_CONFIG=h.conf_path))
        is_(r.stdout.decode(), "export OPENAI_BASE_URL='http://127.0.0.1:%d/v1'\n" % h.port, "the port from $HEADROOM_CONFIG")
        # the terminal is the agent's: stdin, stdout and stderr stay a tty
        import pty
        master, slave = pty.openpty()
        p = subprocess.Popen([CLI, "wrap", "--port", str(h.port), "--", "ttycheck"], env=base_env(m, ws + "-reuse"),
                             stdin=slave, stdout=slave, stderr=slave)
        os.close(slave)
        got = b""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and b"\n" not in got:
            try:
                got += os.read(master, 100)
            except OSError:
                break
        is_((p.wait(30), got.strip()), (0, b"tty-ok"), "the agent gets the terminal")
        os.close(master)

    # ---- signals: SIGTERM to wrap reaches the agent; Ctrl-C (SIGINT to the group) too; the proxy stops
    for what, sig, want in (("SIGTERM to wrap", signal.SIGTERM, 128 + signal.SIGTERM),
                            ("Ctrl-C", signal.SIGINT, 128 + signal.SIGINT)):
        port = free_port()
        started = os.path.join(OUT, "slowagent.started")
        if os.path.exists(started):
            os.unlink(started)
        p = subprocess.Popen([CLI, "wrap", "--port", str(port), "--", "slowagent"], env=base_env(m, ws),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        wait_until(lambda: os.path.exists(started), 30)
        ok(port_open(port), "%s: the proxy runs while the agent does" % what)
        if sig == signal.SIGINT:
            os.killpg(p.pid, sig)  # the terminal sends Ctrl-C to the foreground group
        else:
            p.send_signal(sig)
        try:
            rc = p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = p.wait()
        is_(rc, want, "%s: the agent's death by the signal is wrap's exit code" % what)
        ok(not port_open(port), "%s: the proxy is stopped" % what)

    # ---- wrap killed outright (SIGKILL: no chance to stop anything): the headroomd it
    # started gets SIGTERM from the kernel (Linux), drains and stops instead of running on
    if sys.platform.startswith("linux"):
        port = free_port()
        started = os.path.join(OUT, "slowagent.started")
        if os.path.exists(started):
            os.unlink(started)
        wsk = ws + "-killed"
        p = subprocess.Popen([CLI, "wrap", "--port", str(port), "--", "slowagent"], env=base_env(m, wsk),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_until(lambda: os.path.exists(started), 30)
            ok(port_open(port), "wrap SIGKILLed: the proxy it started runs while the agent does")
            p.kill()
            p.wait(10)
            ok(wait_until(lambda: not port_open(port), 10), "wrap SIGKILLed: the proxy it started stops by itself")
            log = read(os.path.join(wsk, "wrap-headroomd.log")) or ""
            like(log, r"SIGTERM received", "wrap SIGKILLed: the proxy was sent SIGTERM (drains, writes its figures)")
            ok(wait_until(lambda: re.search(r"INFO:headroom\.server:stopped", read(os.path.join(wsk, "wrap-headroomd.log")) or ""), 10),
               "wrap SIGKILLed: the proxy finished cleanly")
        finally:
            try:
                os.killpg(p.pid, signal.SIGKILL)  # the agent, left in wrap's process group
            except OSError:
                pass
        # A headroomd wrap did not start is not its to stop: killing wrap leaves it running.
        with Headroomd() as h:
            if os.path.exists(started):
                os.unlink(started)
            p = subprocess.Popen([CLI, "wrap", "--port", str(h.port), "--", "slowagent"], env=base_env(m, ws + "-reuse"),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            try:
                wait_until(lambda: os.path.exists(started), 30)
                p.kill()
                p.wait(10)
                time.sleep(1)
                ok(h.alive() and port_open(h.port), "wrap SIGKILLed: a headroomd it reused keeps running")
            finally:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass

    # ---- a request still running when the agent exits: wrap waits out the daemon's drain
    # (shutdown_timeout, 30 s by default, plus 15 s) before it would kill it
    port = free_port()
    t0 = time.monotonic()
    r = wrap(["--port", str(port), "--", "leftover"], base_env(m, ws), timeout=120)
    waited = time.monotonic() - t0
    is_(r.returncode, 0, "leftover request: the agent's exit code")
    ok("did not stop" not in r.stderr.decode(), "leftover request: the daemon was not killed (%.1f s): %s" %
       (waited, r.stderr.decode()[-300:]))
    is_(wait_until(lambda: read(os.path.join(OUT, "leftover.status")), 10), "200",
        "leftover request: it was answered during the drain (17 s upstream)")
    log = read(os.path.join(ws, "wrap-headroomd.log")) or ""
    like(log.rsplit("SIGTERM received", 1)[-1], r"INFO:headroom\.server:stopped", "leftover request: the daemon stopped by itself")
    ok(not port_open(port), "leftover request: the proxy is stopped")

    # ---- errors
    port = free_port()
    r = wrap(["--port", str(port), "claude"], base_env(m, ws, PATH="/usr/bin:/bin"))
    is_(r.returncode, 127, "agent not on PATH: 127")
    like(r.stderr.decode(), r"'claude' not found on PATH \(is Claude Code installed\?\)", "agent not on PATH: says so")
    ok(not port_open(port), "agent not on PATH: no proxy left behind")
    # On PATH but not executable: said as such (not "not found"), 126 as a shell; an executable one
    # later on PATH still runs, as with execvp
    noexec_bin = os.path.join(WORK, "noexec-bin")
    os.makedirs(noexec_bin)
    for name in ("claude", "ttycheck"):
        with open(os.path.join(noexec_bin, name), "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(os.path.join(noexec_bin, name), 0o644)
    port = free_port()
    r = wrap(["--port", str(port), "claude"], base_env(m, ws, PATH=noexec_bin + ":/usr/bin:/bin"))
    is_(r.returncode, 126, "agent on PATH but not executable: 126")
    like(r.stderr.decode(), r"found %s/claude but it is not executable: chmod \+x it" % re.escape(noexec_bin),
         "agent on PATH but not executable: says so and what to do")
    ok(not port_open(port), "agent not executable: no proxy started")
    r = wrap(["--port", str(port), "--", os.path.join(noexec_bin, "claude")], base_env(m, ws))
    is_((r.returncode, r.stderr.decode().strip()),
        (126, "headroom wrap: %s is not executable: chmod +x it" % os.path.join(noexec_bin, "claude")),
        "wrap -- PATH/CMD not executable: 126, says so")
    r = wrap(["--port", str(port), "--", "ttycheck"], base_env(m, ws, PATH=noexec_bin + ":" + BIN + ":/usr/bin:/bin"))
    is_((r.returncode, r.stdout.decode()), (0, "no-tty\n"), "a non-executable file earlier on PATH is passed over")
    # A script without #! runs with /bin/sh, as execvp and shells run it.
    sh_bin = os.path.join(WORK, "sh-bin")
    os.makedirs(sh_bin)
    with open(os.path.join(sh_bin, "aider"), "w") as f:
        f.write('echo "no-shebang:$OPENAI_API_BASE:$*"\nexit 4\n')
    os.chmod(os.path.join(sh_bin, "aider"), 0o755)
    port = free_port()
    r = wrap(["--port", str(port), "aider", "--", "x", "y z"], base_env(m, ws, PATH=sh_bin + ":/usr/bin:/bin"))
    is_((r.returncode, r.stdout.decode(), r.stderr.decode()), (4, "no-shebang:http://127.0.0.1:%d/v1:x y z\n" % port, ""),
        "a script without #! runs with /bin/sh, with its arguments and environment")

    r = wrap(["gemini-cli"], base_env(m, ws))
    is_(r.returncode, 2, "unknown agent: usage error")
    like(r.stderr.decode(), r"unknown agent 'gemini-cli' \(claude, codex or aider; `headroom wrap -- COMMAND`", "unknown agent named")
    r = wrap(["--port", "70000", "claude"], base_env(m, ws))
    like(r.stderr.decode(), r"--port '70000' is not a port", "bad --port named")
    for opt in ("--port", "-c"):
        r = wrap([opt], base_env(m, ws))
        ok(r.returncode == 2 and "%s needs a value" % opt in r.stderr.decode(),
           "%s as the last word: exit 2, it needs a value (not 'unknown option')" % opt)
    # A config (or HEADROOM_* value) that does not parse is not a command-line
    # error: exit 1 naming file:line, as compress and doctor (it was 2).
    bad_conf = os.path.join(WORK, "bad.conf")
    with open(bad_conf, "w") as f:
        f.write("port %d\nmin_tokens many\n" % free_port())
    for args in (["-c", bad_conf, "claude"], ["-c", bad_conf, "--", "true"]):
        r = wrap(args, base_env(m, ws))
        is_(r.returncode, 1, "wrap %s with a config that does not parse: exit 1" % " ".join(args[2:]))
        like(r.stderr.decode(), r"bad\.conf:2:\d+: min_tokens", "wrap %s: the error names file:line" % " ".join(args[2:]))
    r = wrap(["claude"], base_env(m, ws, HEADROOM_CONFIG=bad_conf))
    is_(r.returncode, 1, "a $HEADROOM_CONFIG that does not parse: exit 1")
    r = wrap(["claude"], base_env(m, ws, HEADROOM_PORT="http"))
    is_(r.returncode, 1, "bad HEADROOM_PORT: exit 1, as a bad config (not the command line)")
    like(r.stderr.decode(), r"HEADROOM_PORT: 'http' must be a whole number", "bad HEADROOM_PORT named")
    like(r.stderr.decode(), r"correct or unset it .*or give wrap the port with --port", "bad HEADROOM_PORT: the fix")
    # A value only headroomd reads stops wrap when it would start one (that
    # headroomd would exit at once), before anything runs; --print-env starts
    # nothing and reads no such value.
    port = free_port()
    r = wrap(["--port", str(port), "--", "true"], base_env(m, ws, HEADROOM_BUDGET="lots"))
    ok(r.returncode == 1 and "environment variable HEADROOM_BUDGET: 'lots'" in r.stderr.decode()
       and "the headroomd wrap would start refuses it" in r.stderr.decode() and "exited" not in r.stderr.decode(),
       "HEADROOM_BUDGET=lots, wrap would start headroomd: exit 1 naming it, nothing started (%s)" % r.stderr.decode().strip())
    r = wrap(["--print-env", "--port", str(port), "claude"], base_env(m, ws, HEADROOM_BUDGET="lots"))
    ok(r.returncode == 0 and r.stdout.decode().startswith("export ANTHROPIC_BASE_URL='http://127.0.0.1:%d'" % port),
       "--print-env with HEADROOM_BUDGET=lots (read by no headroomd it starts): the exports (%s)" % r.stderr.decode().strip())

    class NotUs(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotUs)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    r = wrap(["--port", str(srv.server_address[1]), "claude"], base_env(m, ws))
    is_(r.returncode, 1, "port held by something else: exit 1")
    like(r.stderr.decode(), r"answers, but not as headroomd; pick another with --port", "port held by something else: says so")
    srv.shutdown()

    r = wrap(["--port", str(free_port()), "claude"], base_env(m, ws, HEADROOMD="/nonexistent/headroomd"))
    like(r.stderr.decode(), r"cannot run /nonexistent/headroomd|headroomd exited", "a headroomd that cannot start: said")
    isnt(r.returncode, 0, "a headroomd that cannot start: failure exit")

done()
