"""agent_setup.py — what t/claude_code_test.py and t/codex_test.py share: the
agent CLIs pinned in t/agents/package.json, installed once into the build
tree (t/agents-node, or $HEADROOM_AGENTS_DIR); scratch directories; and the
shipped conf/headroom.conf pointed at the mock upstream."""
import os
import re
import shutil
import subprocess
import tempfile

from hrtest import T_DIR, note, npm_install, skip_all

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
    """conf/headroom.conf as shipped, with `port`, both provider URLs and
    stage_budget_ms changed, written next to `ws`; returns its path."""
    with open(os.path.join(T_DIR, "..", "conf", "headroom.conf")) as f:
        text = f.read()
    text = re.sub(r"(?m)^port .*", "port %d" % port, text)
    text = re.sub(r"(?m)^(openai|anthropic)_api_url .*", lambda m: "%s_api_url %s" % (m.group(1), mock_url), text)
    # A loaded test machine (ASan, make -j2) must not undo the compression
    # the agent tests look for: the shipped 250 ms stage budget, raised.
    text = re.sub(r"(?m)^stage_budget_ms .*", "stage_budget_ms 60000", text)
    path = os.path.join(os.path.dirname(ws), "headroom.conf")
    with open(path, "w") as f:
        f.write(text)
    return path
