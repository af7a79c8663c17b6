# Integration-test harness for headroomd: TAP output, the mock upstream and the
# daemon as context managers, and HTTP helpers (whole, streaming, raw socket).
"""hrtest -- small harness for headroomd integration tests (stdlib only).

A typical test:

    #!/usr/bin/env python3
    import os, sys
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from hrtest import *

    with Mock() as m, Headroomd(mock=m) as h:
        r = post_json(h.url + "/v1/chat/completions", openai_body(stream=False))
        is_(r.status, 200, "proxied")
        is_(m.last_request()["body"], ..., "body forwarded byte for byte")
    done()

Environment:
    HEADROOMD            daemon binary (default ../src/headroomd next to t/)
    HEADROOMD_WRAPPER    command prefix, e.g. "valgrind --error-exitcode=99 --leak-check=full"
    HRTEST_READY_TIMEOUT seconds to wait for /readyz (default 20, raise under valgrind)
    HRTEST_KEEP=1        keep temp dirs (configs, workspaces, logs) for post-mortems
    HRTEST_VERBOSE=1     echo each HTTP request made by the helpers as a TAP comment
"""

import atexit
import base64
import collections
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import zlib

__all__ = [
    "T_DIR", "plan", "done", "ok", "is_", "isnt", "like", "cmp_ok", "diag", "note",
    "skip", "skip_all", "bail", "failed_count",
    "Mock", "Headroomd", "free_port", "wait_until", "npm_install", "shipped_conf_text",
    "Response", "request", "get", "post_json", "get_json", "stream",
    "stream_then_close", "raw_socket_request", "parse_http_response",
    "hdr", "hdr_all", "sse_events", "sse_data_json",
    "openai_body", "anthropic_body", "dumps", "marker_hash", "kept_indices", "png",
    "make_certs", "server_ctx",
]

T_DIR = os.path.dirname(os.path.abspath(__file__))
MOCK_BIN = os.path.join(T_DIR, "mock-upstream")
VERBOSE = os.environ.get("HRTEST_VERBOSE") == "1"

# --------------------------------------------------------------------------
# TAP
# --------------------------------------------------------------------------


class _Tap:
    count = 0
    failed = 0
    planned = None
    finished = False
    died = False
    lock = threading.Lock()


_tap = _Tap()


def _out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def plan(n):
    """Declare up front that n tests will run (prints the TAP plan "1..n")."""
    _tap.planned = n
    _out("1..%d" % n)


def diag(msg):
    """Print a diagnostic (each line prefixed "# ") on stderr; shown on failures."""
    sys.stdout.flush()
    for line in str(msg).splitlines() or [""]:
        sys.stderr.write("# " + line + "\n")
    sys.stderr.flush()


def note(msg):
    """Print a TAP comment on stdout (visible in verbose runs and logs)."""
    for line in str(msg).splitlines() or [""]:
        _out("# " + line)


def ok(cond, name=""):
    """Record one test: passes if cond is truthy. Returns bool(cond)."""
    with _tap.lock:
        _tap.count += 1
        n = _tap.count
        if not cond:
            _tap.failed += 1
    name = str(name).replace("#", "\\#").replace("\n", " ")
    _out("%s %d%s" % ("ok" if cond else "not ok", n, " - " + name if name else ""))
    if not cond:
        diag("  Failed test '%s'" % name)
    return bool(cond)


def marker_hash(text):
    """The CCR address a marker names (hash=<24 hex>), or None."""
    m = re.search(r"hash=([0-9a-f]{24})", text or "")
    return m.group(1) if m else None


def png(w, h, noisy_rows=0, rnd=None):
    """A valid PNG of w x h: the first noisy_rows rows random from rnd (a
    random.Random, so its base64 is as big as a real screenshot's), the rest
    white."""
    raw = bytearray()
    for y in range(h):
        raw += b"\x00" + (bytes(rnd.getrandbits(8) for _ in range(w * 3)) if y < noisy_rows else b"\xff" * (w * 3))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(raw), 1)) + chunk(b"IEND", b""))


def kept_indices(marker):
    """The row indices smart_crusher's marker lists in "kept" ("errors at 3,9; ...;
    first/last at 0,99"), sorted."""
    out = set()
    for part in (marker or {}).get("kept", "").split(";"):
        for m in re.finditer(r" at ([0-9,]+)", part):
            out.update(int(x) for x in m.group(1).split(","))
    return sorted(out)


def _show(v, limit=400):
    s = repr(v)
    return s if len(s) <= limit else s[:limit] + "... (%d chars)" % len(s)


def _first_diff(a, b):
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def is_(got, want, name=""):
    """Test got == want; on mismatch prints both (and, for long str/bytes, where they differ)."""
    res = ok(got == want, name)
    if not res:
        diag("         got: " + _show(got))
        diag("    expected: " + _show(want))
        if isinstance(got, (str, bytes)) and type(got) is type(want):
            i = _first_diff(got, want)
            diag("  first difference at offset %d (lengths %d vs %d): got %s, expected %s"
                 % (i, len(got), len(want), _show(got[max(0, i - 20):i + 40]),
                    _show(want[max(0, i - 20):i + 40])))
    return res


def isnt(got, unwanted, name=""):
    """Test got != unwanted."""
    res = ok(got != unwanted, name)
    if not res:
        diag("         got: " + _show(got))
        diag("    expected: anything else")
    return res


def like(got, pattern, name=""):
    """Test that regex pattern (str or bytes) is found in got (re.search)."""
    try:
        m = got is not None and re.search(pattern, got, re.S)
    except TypeError:
        m = None
    res = ok(bool(m), name)
    if not res:
        diag("                  " + _show(got))
        diag("    doesn't match " + _show(pattern))
    return res


def cmp_ok(got, op, want, name=""):
    """Test a comparison, e.g. cmp_ok(ms, "<", 500, "fast enough")."""
    ops = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
           ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
           "in": lambda a, b: a in b}
    try:
        res = ops[op](got, want)
    except TypeError:
        res = False
    res = ok(res, name)
    if not res:
        diag("    %s" % _show(got))
        diag("        %s" % op)
        diag("    %s" % _show(want))
    return res


def skip(reason, count=1):
    """Record count skipped tests ("ok N # skip reason")."""
    for _ in range(count):
        with _tap.lock:
            _tap.count += 1
            n = _tap.count
        _out("ok %d # skip %s" % (n, reason))


def skip_all(reason):
    """Skip the whole test file (must be called before any test). Exits 0."""
    _out("1..0 # SKIP %s" % reason)
    _tap.finished = True
    _cleanup()
    sys.exit(0)


def bail(msg):
    """Abort the whole run ("Bail out!"), kill every process we started, exit 255.
    Only the first line of msg goes on the Bail out! line; the rest is a diagnostic."""
    lines = str(msg).splitlines() or [""]
    if len(lines) > 1:
        diag("\n".join(lines[1:]))
    _out("Bail out! %s" % lines[0])
    _tap.finished = True
    _cleanup()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(255)


def failed_count():
    """Number of failed tests so far."""
    return _tap.failed


def _finish():
    if _tap.finished:
        return 0 if not _tap.failed else 1
    _tap.finished = True
    _cleanup()
    code = 0
    if _tap.planned is None:
        if _tap.died:
            pass  # no plan line: a TAP consumer must see the run as incomplete
        elif _tap.count == 0:
            diag("No tests run! (use skip_all(reason) to skip a file on purpose)")
            code = 1
        else:
            _out("1..%d" % _tap.count)
    elif _tap.planned != _tap.count:
        diag("Looks like you planned %d tests but ran %d." % (_tap.planned, _tap.count))
        code = 1
    if _tap.failed:
        diag("Looks like you failed %d test%s of %d." % (_tap.failed, "" if _tap.failed == 1 else "s",
                                                         _tap.count))
        code = 1
    return code


def done():
    """Finish the test file: print the plan if none was given, clean up, exit 0/1."""
    code = _finish()
    sys.exit(code)


_orig_excepthook = sys.excepthook


def _excepthook(t, v, tb):
    _tap.died = True
    _orig_excepthook(t, v, tb)


sys.excepthook = _excepthook


@atexit.register
def _at_exit():
    # Registered first, so it runs last: the test's own cleanup is already done.
    code = _finish()
    if _tap.died:
        diag("Looks like the test died (uncaught exception) after test %d." % _tap.count)
        code = 255
    if code:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


# --------------------------------------------------------------------------
# process bookkeeping
# --------------------------------------------------------------------------

_children = []   # Popen objects we started; killed (by pid) at exit
_tempdirs = []


def _track(p):
    _children.append(p)
    return p


def _kill(p, grace=0.0):
    if p.poll() is not None:
        return p.returncode
    try:
        if grace > 0:
            p.send_signal(signal.SIGTERM)
            try:
                return p.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        p.kill()
        return p.wait(5)
    except (OSError, subprocess.TimeoutExpired):
        return None


def _cleanup():
    while _children:
        _kill(_children.pop())
    if os.environ.get("HRTEST_KEEP") == "1":
        for d in _tempdirs:
            note("kept " + d)
    else:
        for d in _tempdirs:
            shutil.rmtree(d, ignore_errors=True)
    del _tempdirs[:]


def _mkdtemp(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    _tempdirs.append(d)
    return d


def shipped_conf_text(stage_budget_ms=None, workers=None):
    """conf/headroom.conf as shipped, with `port @PORT@` and both provider
    URLs `@MOCK_URL@` (Headroomd(conf_text=...) fills them in); optionally
    another stage_budget_ms (a loaded or valgrind run must not undo the
    compression a test looks for) and workers."""
    with open(os.path.join(T_DIR, "..", "conf", "headroom.conf")) as f:
        text = f.read()
    text = re.sub(r"(?m)^port\s.*$", "port @PORT@", text)
    text = re.sub(r"(?m)^(openai_api_url|anthropic_api_url)\s.*$", r"\1 @MOCK_URL@", text)
    if stage_budget_ms:
        text = re.sub(r"(?m)^stage_budget_ms\s.*$", "stage_budget_ms %d" % stage_budget_ms, text)
    if workers:
        text = re.sub(r"(?m)^workers\s.*$", "workers %d" % workers, text)
    return text


def free_port():
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def wait_until(fn, timeout=5.0, interval=0.05):
    """Poll fn() until it returns something truthy or timeout seconds pass; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def npm_install(src_dir, node_dir, installed, why, timeout=300):
    """Install the npm packages pinned in src_dir/package.json into node_dir
    (in the build tree) unless node_dir/node_modules/<installed> is there;
    skip the whole test when node/npm or the registry are missing."""
    import fcntl
    import shutil
    import subprocess
    if not shutil.which("node") or not shutil.which("npm"):
        skip_all("node and npm are needed " + why)
    os.makedirs(node_dir, exist_ok=True)
    # Tests sharing node_dir run in parallel (make -j check): one installs,
    # the others wait, so none sees a half-extracted node_modules.
    with open(os.path.join(node_dir, ".install.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(os.path.join(node_dir, "node_modules", installed)):
            return
        shutil.copy(os.path.join(src_dir, "package.json"), node_dir)
        try:
            r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"], cwd=node_dir,
                               capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            skip_all("npm install timed out (no registry?)")
        if r.returncode != 0:
            skip_all("npm install failed: " + r.stderr.decode("utf-8", "replace")[-300:])


def _tail(path, limit=4000):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return ""
    return data[-limit:].decode("utf-8", "replace")


# --------------------------------------------------------------------------
# the mock upstream
# --------------------------------------------------------------------------


class Mock:
    """Runs t/mock-upstream on a free port for the duration of a `with` block.

    m.url ("http://127.0.0.1:PORT"), m.port, m.requests(), m.last_request(),
    m.reset(), m.aborted(). The process is always killed at exit.
    tls_certs: a make_certs() directory: the routes are also served over TLS
    with its "good" certificate at m.tls_url ("https://127.0.0.1:PORT2").
    """

    def __init__(self, max_seconds=300, verbose=False, tls_certs=None):
        self.max_seconds = max_seconds
        self.verbose = verbose
        self.tls_certs = tls_certs
        self.tls_url = None
        self.proc = None
        self.port = None
        self.url = None

    def start(self):
        """Start the mock and wait (up to 10 s) for its port file; bails on failure."""
        d = _mkdtemp("hr-mock-")
        pf = os.path.join(d, "port")
        self.stderr_path = os.path.join(d, "stderr")
        cmd = [sys.executable, MOCK_BIN, "--port", "0", "--port-file", pf,
               "--max-seconds", str(self.max_seconds)]
        if self.verbose:
            cmd.append("--verbose")
        tpf = os.path.join(d, "tls-port")
        if self.tls_certs:
            cmd += ["--tls-cert", os.path.join(self.tls_certs, "good.pem"),
                    "--tls-key", os.path.join(self.tls_certs, "good.key"), "--tls-port-file", tpf]
        with open(self.stderr_path, "wb") as err:
            self.proc = _track(subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                                stdout=subprocess.DEVNULL, stderr=err))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if os.path.exists(pf):
                with open(pf) as f:
                    txt = f.read().strip()
                if txt:
                    self.port = int(txt)
                    self.url = "http://127.0.0.1:%d" % self.port
                    if self.tls_certs:
                        with open(tpf) as f:
                            self.tls_url = "https://127.0.0.1:%d" % int(f.read())
                    Mock.current = self
                    return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        bail("mock-upstream did not start (exit %s): %s" % (self.proc.poll(), _tail(self.stderr_path)))

    def stop(self):
        """Kill the mock now (idempotent)."""
        if self.proc is not None:
            _kill(self.proc)
            if self.proc in _children:
                _children.remove(self.proc)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def _get(self, path, method="GET"):
        r = request(method, self.url + path, timeout=10)
        if r.status != 200:
            bail("mock-upstream %s %s failed: %s %s" % (method, path, r.status, r.error or r.body[:200]))
        return r.json()

    def requests(self):
        """All /v1 requests the mock received, oldest first. Each is a dict with
        method, path, query, target, version, headers ([[name, value], ...]),
        body (bytes, decoded from body_b64), body_sha256, body_len, seq, time."""
        reqs = self._get("/_mock/requests")
        for r in reqs:
            r["body"] = base64.b64decode(r["body_b64"])
        return reqs

    def last_request(self):
        """The newest recorded request (see requests()), or None."""
        reqs = self.requests()
        return reqs[-1] if reqs else None

    def reset(self):
        """Forget recorded requests and zero the stream counters."""
        self._get("/_mock/reset", "POST")

    def counters(self):
        """{"aborted": N, "streams_started": N, "streams_completed": N}."""
        return self._get("/_mock/aborted")

    def aborted(self):
        """How many streaming replies stopped because the client (headroomd) went away."""
        return self.counters()["aborted"]


Mock.current = None

# --------------------------------------------------------------------------
# the daemon
# --------------------------------------------------------------------------

DEFAULT_CONF = """# written by t/hrtest.py
host 127.0.0.1
port @PORT@
openai_api_url @MOCK_URL@
anthropic_api_url @MOCK_URL@
workers 2
"""


class Headroomd:
    """Runs headroomd for the duration of a `with` block.

    conf_text: config file text; None means DEFAULT_CONF. The placeholders
        @PORT@, @MOCK_URL@ and @WORKSPACE@ are replaced in either case
        (a custom config should say `port @PORT@` so the harness knows the port).
    extra_conf: lines appended to the config (the easy way to tweak the default).
    args: extra command-line arguments; env: extra environment variables
        (HEADROOM_WORKSPACE_DIR defaults to a fresh temp dir, HEADROOM_TELEMETRY to off).
    mock: the Mock to point at (default: the most recently started one).
    wait_ready: wait for GET /readyz == 200 (bails with the daemon's stderr after
        ready_timeout seconds, default 20 or $HRTEST_READY_TIMEOUT).
    expect_exit: exit code required when the with-block ends and the harness
        stops the daemon (a failure is reported as a test); None = don't check.
    """

    def __init__(self, conf_text=None, args=(), env=None, mock=None, extra_conf="",
                 wait_ready=True, ready_timeout=None, expect_exit=0, binary=None, port=None):
        self.conf_text = conf_text
        self.extra_conf = extra_conf
        self.args = list(args)
        self.env = dict(env or {})
        self.mock = mock
        self.wait_ready = wait_ready
        self.ready_timeout = ready_timeout or float(os.environ.get("HRTEST_READY_TIMEOUT", "20"))
        self.expect_exit = expect_exit
        self.binary = binary or os.environ.get("HEADROOMD") or os.path.join(T_DIR, "..", "src", "headroomd")
        self.port = port or free_port()
        self.port_chosen_here = not port  # free_port's: another may be picked if it is taken meanwhile
        self.url = "http://127.0.0.1:%d" % self.port
        self.proc = None
        self.returncode = None
        self.stopped = False

    def start(self):
        """Write the config, start the daemon and (by default) wait until ready.
        free_port's port can be taken by a parallel test before the daemon
        binds it; when this object chose the port and only the config names
        it, another is picked (up to 3 times) instead of failing the test."""
        if not os.access(self.binary, os.X_OK):
            bail("headroomd binary not found at %s: build it (make) or set HEADROOMD" % self.binary)
        conf = (DEFAULT_CONF if self.conf_text is None else self.conf_text) + self.extra_conf
        movable = self.port_chosen_here and "@PORT@" in conf and str(self.port) not in self.args
        for attempt in range(4):
            self._spawn()
            if not self.wait_ready or self.wait_until_ready(port_taken_ok=movable and attempt < 3):
                return self
            note("port %d was taken before headroomd listened on it; trying another" % self.port)
            self.port = free_port()
            self.url = "http://127.0.0.1:%d" % self.port
        return self

    def _spawn(self):
        """Write the config with the current port and start the process."""
        self.dir = _mkdtemp("hr-daemon-")
        self.workspace = self.env.get("HEADROOM_WORKSPACE_DIR") or os.path.join(self.dir, "workspace")
        os.makedirs(self.workspace, exist_ok=True)
        mock = self.mock or Mock.current
        text = DEFAULT_CONF if self.conf_text is None else self.conf_text
        if self.extra_conf:
            text = text.rstrip("\n") + "\n" + self.extra_conf.rstrip("\n") + "\n"
        if "@MOCK_URL@" in text and mock is None:
            bail("Headroomd: the config needs a mock URL; start a Mock first or pass mock=")
        text = (text.replace("@PORT@", str(self.port))
                .replace("@WORKSPACE@", self.workspace)
                .replace("@MOCK_URL@", mock.url if mock else ""))
        self.conf_path = os.path.join(self.dir, "headroom.conf")
        with open(self.conf_path, "w") as f:
            f.write(text)
        env = dict(os.environ)
        env.setdefault("HEADROOM_TELEMETRY", "off")
        env["HEADROOM_WORKSPACE_DIR"] = self.workspace
        env.update(self.env)
        wrapper = shlex.split(os.environ.get("HEADROOMD_WRAPPER", ""))
        self.cmd = wrapper + [self.binary, "-c", self.conf_path] + self.args
        self.stdout_path = os.path.join(self.dir, "stdout")
        self.stderr_path = os.path.join(self.dir, "stderr")
        if VERBOSE:
            note("starting: " + " ".join(shlex.quote(c) for c in self.cmd))
        with open(self.stdout_path, "wb") as o, open(self.stderr_path, "wb") as e:
            self.proc = _track(subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=o,
                                                stderr=e, env=env))
        self.pid = self.proc.pid

    def thread_names(self):
        """The daemon's thread names (top -H, ps -L); None under a wrapper
        such as valgrind, whose pid is the wrapper's."""
        if os.environ.get("HEADROOMD_WRAPPER"):
            return None
        names = set()
        for tid in os.listdir("/proc/%d/task" % self.pid):
            try:
                with open("/proc/%d/task/%s/comm" % (self.pid, tid)) as f:
                    names.add(f.read().strip())
            except OSError:
                pass
        return names

    def wait_until_ready(self, timeout=None, port_taken_ok=False):
        """Poll GET /readyz until 200 and return True; bail with the daemon's
        stderr on exit or timeout. port_taken_ok: return False instead when
        the daemon exited because its port was in use."""
        timeout = timeout or self.ready_timeout
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if port_taken_ok and "Address already in use" in self.stderr_text():
                    return False
                bail("headroomd exited with code %s before it was ready; stderr:\n%s"
                     % (self.proc.returncode, self.stderr_text()[-3000:]))
            r = request("GET", self.url + "/readyz", timeout=2, quiet=True)
            if r.status == 200:
                return True
            last = r.status or r.error
            time.sleep(0.05)
        bail("headroomd not ready after %gs (last /readyz: %s); stderr:\n%s"
             % (timeout, last, self.stderr_text()[-3000:]))

    def stderr_text(self):
        """Everything the daemon wrote to stderr so far."""
        return _tail(self.stderr_path, 1 << 24)

    def stdout_text(self):
        """Everything the daemon wrote to stdout so far."""
        return _tail(self.stdout_path, 1 << 24)

    def alive(self):
        """True while the daemon process is running."""
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        """Send a signal (e.g. signal.SIGHUP) to the daemon."""
        self.proc.send_signal(sig)

    def stop(self, timeout=10):
        """SIGTERM, wait up to timeout s (SIGKILL after that); returns the exit code
        (negative = killed by that signal, as in subprocess)."""
        self.stopped = True
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                diag("headroomd did not exit %gs after SIGTERM; killing it" % timeout)
                self.proc.kill()
                self.proc.wait(5)
        if self.proc in _children:
            _children.remove(self.proc)
        self.returncode = self.proc.returncode
        return self.returncode

    def __enter__(self):
        return self.start()

    def __exit__(self, etype, *rest):
        if self.proc is None:
            return False
        if self.stopped:
            return False
        if etype is not None or self.expect_exit is None:
            self.stop()
            return False
        rc = self.stop()
        if rc != self.expect_exit:
            ok(False, "headroomd exited with code %s (expected %s)" % (rc, self.expect_exit))
            diag("stderr tail:\n" + self.stderr_text()[-3000:])
        return False

    # convenience wrappers around the module-level helpers

    def get(self, path, headers=None):
        """GET self.url + path -> Response."""
        return request("GET", self.url + path, headers=headers)

    def get_json(self, path):
        """GET self.url + path and parse JSON (None if not JSON)."""
        return self.get(path).json()

    def post(self, path, body, headers=None):
        """POST body (bytes/str/dict) to self.url + path -> Response."""
        return request("POST", self.url + path, body=body, headers=headers)

    def stats(self):
        """Parsed GET /stats."""
        return self.get_json("/stats")


# --------------------------------------------------------------------------
# TLS upstreams
# --------------------------------------------------------------------------

def make_certs(d):
    """A CA and two server certificates: one for 127.0.0.1 and localhost,
    one for another name only."""
    def run(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True, capture_output=True)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=headroom test CA",
        "-keyout", "ca.key", "-out", "ca.pem")
    for name, san in (("good", "IP:127.0.0.1,DNS:localhost"), ("other", "DNS:other.example")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=%s" % name, "-keyout", name + ".key",
            "-out", name + ".csr")
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write("subjectAltName=%s\n" % san)
        run("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", name + ".ext", "-out", name + ".pem")


def server_ctx(d, name):
    """A TLS server context with make_certs' certificate `name`."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(d, name + ".pem"), os.path.join(d, name + ".key"))
    return ctx


# --------------------------------------------------------------------------
# HTTP helpers
# --------------------------------------------------------------------------


class Response(collections.namedtuple("Response", "status headers body")):
    """(status, headers_list, body_bytes); status 0 means a transport error (see .error).

    Extra attributes: .error (str or None), .header(name), .json(), .text.
    Streams (from stream()) also carry .pieces [(seconds_since_send, bytes)],
    .ttfb (seconds to first body byte), .complete (saw the end of the body).
    """

    error = None

    def header(self, name, default=None):
        """First value of header `name` (case-insensitive), or default."""
        return hdr(self.headers, name, default)

    def json(self):
        """The body parsed as JSON, or None if it isn't JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, TypeError):
            return None

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")


def _resp(status, headers, body, error=None, **extra):
    r = Response(status, headers, body)
    r.error = error
    for k, v in extra.items():
        setattr(r, k, v)
    return r


def hdr(headers, name, default=None):
    """First value of header `name` in a [(name, value), ...] list, case-insensitively."""
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return default


def hdr_all(headers, name):
    """All values of header `name` in a [(name, value), ...] list."""
    name = name.lower()
    return [v for k, v in headers if k.lower() == name]


def dumps(obj):
    """Compact JSON bytes (what the helpers send for dict/list bodies)."""
    return json.dumps(obj, separators=(",", ":")).encode()


def _split_url(url):
    u = urllib.parse.urlsplit(url)
    target = u.path or "/"
    if u.query:
        target += "?" + u.query
    return u.hostname, u.port or 80, target


def _prep(body, headers):
    hl = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    if isinstance(body, (dict, list)):
        body = dumps(body)
        if hdr(hl, "content-type") is None:
            hl.append(("Content-Type", "application/json"))
    elif isinstance(body, str):
        body = body.encode()
    return body, hl


def _connect(url, body, headers, method, timeout):
    host, port, target = _split_url(url)
    body, hl = _prep(body, headers)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    conn.putrequest(method, target, skip_accept_encoding=True)
    for k, v in hl:
        conn.putheader(k, v)
    if body is not None and hdr(hl, "content-length") is None and hdr(hl, "transfer-encoding") is None:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    return conn


def request(method, url, body=None, headers=None, timeout=30, quiet=False):
    """Send one HTTP request; returns Response(status, headers_list, body_bytes).

    body: bytes, str, or dict/list (sent as compact JSON with Content-Type
    application/json). headers: dict or list of (name, value) pairs (a list
    allows duplicates). Transport errors don't raise: status is 0 and .error
    says what happened.
    """
    if VERBOSE and not quiet:
        note("%s %s" % (method, url))
    conn = None
    try:
        conn = _connect(url, body, headers, method, timeout)
        r = conn.getresponse()
        data = r.read()
        return _resp(r.status, list(r.getheaders()), data)
    except (OSError, http.client.HTTPException) as e:
        return _resp(0, [], b"", "%s: %s" % (type(e).__name__, e))
    finally:
        if conn is not None:
            conn.close()


def get(url, headers=None, timeout=30):
    """GET url -> Response."""
    return request("GET", url, headers=headers, timeout=timeout)


def get_json(url, headers=None):
    """GET url -> (status, parsed JSON or None)."""
    r = request("GET", url, headers=headers)
    return r.status, r.json()


def post_json(url, obj, headers=None, timeout=30):
    """POST obj as compact JSON -> Response."""
    return request("POST", url, body=obj, headers=headers, timeout=timeout)


def _rst_close(conn):
    try:
        if conn.sock is not None:
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    conn.close()


def stream(url, body, headers=None, on_chunk=None, method="POST", timeout=30, rst_on_abort=True):
    """Send a request and read the (usually chunked SSE) reply incrementally.

    on_chunk(data: bytes) is called for each piece as it arrives (de-chunked);
    if it returns False the connection is closed at once (with a TCP RST when
    rst_on_abort) and reading stops. Returns a Response whose body is
    everything read, with .pieces [(seconds since request sent, bytes)],
    .ttfb (seconds to the first body byte, None if none), .headers_time,
    .complete (True if the body ended normally) and .error.
    """
    if VERBOSE:
        note("stream %s %s" % (method, url))
    t0 = time.monotonic()
    pieces, status, hl, err, complete = [], 0, [], None, False
    conn = headers_time = None
    try:
        conn = _connect(url, body, headers, method, timeout)
        t0 = time.monotonic()
        r = conn.getresponse()
        status, hl = r.status, list(r.getheaders())
        headers_time = time.monotonic() - t0
        while True:
            data = r.read1(65536)
            if not data:
                complete = True
                break
            pieces.append((time.monotonic() - t0, data))
            if on_chunk is not None and on_chunk(data) is False:
                if rst_on_abort:
                    _rst_close(conn)
                else:
                    conn.close()
                conn = None
                break
    except (OSError, http.client.HTTPException) as e:
        err = "%s: %s" % (type(e).__name__, e)
    finally:
        if conn is not None:
            conn.close()
    return _resp(status, hl, b"".join(p for _, p in pieces), err, pieces=pieces,
                 ttfb=pieces[0][0] if pieces else None, headers_time=headers_time,
                 complete=complete)


def stream_then_close(url, body, headers=None, nbytes=1, rst=True, timeout=30):
    """Start a streaming request, read at least nbytes of body, then close the
    socket abruptly (RST if rst, else a normal FIN). Returns the Response so far."""
    got = [0]

    def cb(data):
        got[0] += len(data)
        return got[0] < nbytes

    return stream(url, body, headers, on_chunk=cb, timeout=timeout, rst_on_abort=rst)


def _response_complete(buf):
    i = buf.find(b"\r\n\r\n")
    if i < 0:
        return False
    head = buf[:i].decode("latin-1").lower()
    body = buf[i + 4:]
    m = re.search(r"^content-length:\s*(\d+)", head, re.M)
    if m:
        return len(body) >= int(m.group(1))
    if re.search(r"^transfer-encoding:.*chunked", head, re.M):
        return body.endswith(b"0\r\n\r\n")
    status = head.split(" ", 2)[1] if " " in head else ""
    return status in ("204", "304") or status.startswith("1")


class RawResult(collections.namedtuple("RawResult", "data status headers body")):
    """Result of raw_socket_request: raw bytes plus a best-effort parse.

    .closed: the server closed the connection (EOF); .reset: it sent a RST;
    .timed_out: we stopped waiting; .error: other socket error text.
    """


def raw_socket_request(url_or_port, data, timeout=5.0, until="response", shut_wr=False,
                       send_delay=0.0, chunk=None):
    """Send arbitrary bytes to the server and read whatever comes back.

    url_or_port: "http://127.0.0.1:PORT[/...]" or an int port on 127.0.0.1.
    data: bytes (or str) sent verbatim; with chunk=N it is sent in N-byte pieces
    send_delay seconds apart (slowloris-style). until: "response" stops after
    one complete HTTP response, "close" reads until EOF/timeout. shut_wr
    half-closes our side after sending. Returns RawResult(data, status,
    headers, body) with .closed, .reset, .timed_out, .error.
    """
    if isinstance(url_or_port, int):
        host, port = "127.0.0.1", url_or_port
    else:
        host, port, _ = _split_url(url_or_port)
    if isinstance(data, str):
        data = data.encode()
    buf = b""
    closed = reset = timed_out = False
    err = None
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        try:
            if chunk:
                for i in range(0, len(data), chunk):
                    s.sendall(data[i:i + chunk])
                    if send_delay:
                        time.sleep(send_delay)
            else:
                s.sendall(data)
            if shut_wr:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError) as e:
            err = "send: %s" % e  # server may reject early; still read its reply
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            s.settimeout(left)
            try:
                d = s.recv(65536)
            except socket.timeout:
                timed_out = True
                break
            except ConnectionResetError:
                reset = True
                break
            except OSError as e:
                err = str(e)
                break
            if not d:
                closed = True
                break
            buf += d
            if until == "response" and _response_complete(buf):
                break
    finally:
        s.close()
    status, headers, body = parse_http_response(buf)
    r = RawResult(buf, status, headers, body)
    r.closed, r.reset, r.timed_out, r.error = closed, reset, timed_out, err
    return r


def parse_http_response(data):
    """Best-effort parse of raw response bytes -> (status or None, headers_list, body).
    Chunked bodies are de-chunked (as far as they go)."""
    i = data.find(b"\r\n\r\n")
    if i < 0:
        return None, [], b""
    lines = data[:i].decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ", 2)[1])
    except (IndexError, ValueError):
        return None, [], data[i + 4:]
    headers = []
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers.append((k.strip(), v.strip()))
    body = data[i + 4:]
    if "chunked" in (hdr(headers, "transfer-encoding") or "").lower():
        out, pos = [], 0
        while True:
            j = body.find(b"\r\n", pos)
            if j < 0:
                break
            try:
                n = int(body[pos:j].split(b";")[0], 16)
            except ValueError:
                break
            if n == 0:
                break
            out.append(body[j + 2:j + 2 + n])
            pos = j + 2 + n + 2
        body = b"".join(out)
    return status, headers, body


def sse_events(data):
    """Parse SSE bytes into [(event_name or None, data_str)], one per event
    (multi-line data joined with "\\n"; comment lines ignored)."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    data = data.replace("\r\n", "\n").replace("\r", "\n")
    out = []
    for block in data.split("\n\n"):
        name, datas = None, []
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            k, _, v = line.partition(":")
            if v.startswith(" "):
                v = v[1:]
            if k == "event":
                name = v
            elif k == "data":
                datas.append(v)
        if name is not None or datas:
            out.append((name, "\n".join(datas)))
    return out


def sse_data_json(data):
    """The JSON payloads of an SSE stream, in order (skips [DONE] and non-JSON)."""
    out = []
    for _, d in sse_events(data):
        try:
            out.append(json.loads(d))
        except ValueError:
            pass
    return out


# --------------------------------------------------------------------------
# request builders
# --------------------------------------------------------------------------


def _messages(n, content):
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": "%s %d" % (content, i)}
            for i in range(n)]


def openai_body(n_messages=1, stream=False, include_usage=False, model="gpt-4o-mini",
                messages=None, content="hello", **extra):
    """A Chat Completions request body (dict). extra keys are merged in."""
    b = {"model": model, "messages": messages if messages is not None else _messages(n_messages, content)}
    if stream:
        b["stream"] = True
        if include_usage:
            b["stream_options"] = {"include_usage": True}
    b.update(extra)
    return b


def anthropic_body(n_messages=1, stream=False, model="claude-3-5-haiku-20241022", max_tokens=256,
                   messages=None, content="hello", **extra):
    """An Anthropic Messages request body (dict). extra keys are merged in."""
    b = {"model": model, "max_tokens": max_tokens,
         "messages": messages if messages is not None else _messages(n_messages, content)}
    if stream:
        b["stream"] = True
    b.update(extra)
    return b
