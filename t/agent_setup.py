"""agent_setup.py — what t/claude_code_test.py and t/codex_test.py share: the
agent CLIs pinned in t/agents/package.json, installed once into the build
tree (t/agents-node, or $HEADROOM_AGENTS_DIR); scratch directories; and the
shipped conf/headroom.conf pointed at the mock upstream."""
import os
import shutil
import subprocess
import tempfile

from hrtest import T_DIR, note, npm_install, shipped_conf_text, skip_all

AGENTS_SRC = os.path.join(T_DIR, "agents")
AGENTS_DIR = os.environ.get("HEADROOM_AGENTS_DIR") or os.path.join(os.getcwd(), "t", "agents-node")
CLI = os.environ.get("HEADROOM_CLI") or os.path.join(T_DIR, "..", "src", "headroom")
HEADROOMD = os.environ.get("HEADROOMD") or os.path.join(T_DIR, "..", "src", "headroomd")


def install(entry, what, run, expect):
    """The agent's file `entry` under node_modules, installed if missing.
    `run(path)` is the command that starts it; its --version must print
    `expect` (bytes). Skips the whole test when npm, the registry or a binary
    for this machine is missing."""
    npm_install(AGENTS_SRC, AGENTS_DIR, entry, "to install " + what, timeout=600)
    path = os.path.join(AGENTS_DIR, "node_modules", entry)
    try:
        v = subprocess.run(run(path) + ["--version"], capture_output=True, timeout=60)
    except OSError as e:
        skip_all("%s does not run on this machine: %s" % (what, e))
    if v.returncode != 0 or expect not in v.stdout:
        skip_all("%s --version did not answer: %s" % (what, (v.stdout + v.stderr).decode("utf-8", "replace")[-300:]))
    note(v.stdout.decode().strip())
    return path


def scratch(prefix):
    """bin, proj, home and ws directories in a fresh temporary one, removed
    at exit unless HRTEST_KEEP=1."""
    work = tempfile.mkdtemp(prefix=prefix)
    if os.environ.get("HRTEST_KEEP") != "1":
        import atexit
        atexit.register(shutil.rmtree, work, True)
    dirs = [os.path.join(work, d) for d in ("bin", "proj", "home", "ws")]
    for d in dirs:
        os.makedirs(d)
    return dirs


def shipped_conf(ws, port, mock_url):
    """conf/headroom.conf as shipped (hrtest.shipped_conf_text, with a stage
    budget a loaded ASan run cannot overrun) on `port` and `mock_url`,
    written next to `ws`; returns its path."""
    text = shipped_conf_text(stage_budget_ms=60000).replace("@PORT@", str(port)).replace("@MOCK_URL@", mock_url)
    path = os.path.join(os.path.dirname(ws), "headroom.conf")
    with open(path, "w") as f:
        f.write(text)
    return path
