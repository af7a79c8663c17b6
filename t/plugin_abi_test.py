#!/usr/bin/env python3
# plugin_abi_test.py — plugins through the real daemon: a plugin built for another
# ABI major is refused (check and startup), the example plugin runs, is timed in
# /stats.pipeline_timing, and strips ANSI escape codes from tool outputs.
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403
import json  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

BIN = os.environ.get("HEADROOMD") or os.path.join(T_DIR, "..", "src", "headroomd")
WRAPPER = shlex.split(os.environ.get("HEADROOMD_WRAPPER", ""))
PLUGIN_DIR = os.environ.get("HEADROOM_TEST_PLUGIN_DIR")
PLUGIN_ARGS = ["--plugin-dir", PLUGIN_DIR] if PLUGIN_DIR else []
BAD_DIR = os.environ.get("HEADROOM_TEST_BAD_PLUGIN_DIR") or os.path.join(os.path.dirname(os.path.abspath(BIN)), "..",
                                                                        "t", "plugins", ".libs")
SRC_CONF = os.path.join(T_DIR, "..", "conf", "headroom.conf")


def run(args, timeout=60):
    p = subprocess.run(WRAPPER + [BIN] + args, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                       env=dict(os.environ, HEADROOM_TELEMETRY="off"))
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def abi_of_daemon():
    rc, out, _ = run(["--version"])
    mm = re.search(r"plugin ABI (\d+)\.(\d+)", out)
    return (int(mm.group(1)), int(mm.group(2))) if mm else None


# --- a plugin for another ABI major is refused ---
bad_so = os.path.join(BAD_DIR, "bad_abi.so")
if not os.path.exists(bad_so):
    skip("t/plugins/.libs/bad_abi.so not built (make check builds it)", 6)
else:
    abi = abi_of_daemon()
    ok(abi is not None, "daemon reports its plugin ABI")
    major, minor = abi or (1, 0)
    tmp = tempfile.mkdtemp(prefix="hr-abi-")
    conf = os.path.join(tmp, "bad.conf")
    with open(conf, "w") as f:
        f.write("port 0\nplugin_dir %s\ntransform bad_abi {\n}\n" % BAD_DIR)
    want_theirs = r"ABI %d\.0" % (major + 1)
    want_ours = r"ABI %d\.%d" % (major, minor)
    rc, out, err = run(["--check-config", "-c", conf])
    is_(rc, 1, "--check-config with a plugin for ABI %d.0 exits 1" % (major + 1))
    ok(re.search(want_theirs, err) and re.search(want_ours, err) and "bad_abi.so" in err,
       "message names both ABI versions and the plugin file")
    note("check-config said: " + (err.strip().splitlines() or [""])[-1])
    rc, out, err = run(["-c", conf], timeout=30)
    is_(rc, 1, "startup with that plugin exits 1")
    ok(re.search(want_theirs, err) and re.search(want_ours, err) and "bad_abi.so" in err,
       "startup message names both ABI versions and the file")
    like(err, r"rebuild", "the message says how to fix it")
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)

# --- a sink built against ABI 1.1 still loads, with its settings and events ---
old_so = os.path.join(BAD_DIR, "old_minor.so")
if not os.path.exists(old_so):
    skip("t/plugins/.libs/old_minor.so not built (make check builds it)", 7)
else:
    conf = ("plugin_dir %s\nsink old_minor {\n  limit 42\n  label \"set\"\n}\n" % BAD_DIR)
    tmp = tempfile.mkdtemp(prefix="hr-abi-")
    path = os.path.join(tmp, "old.conf")
    with open(path, "w") as f:
        f.write("port 0\n" + conf)
    rc, out, err = run(["--check-config", "-c", path])
    is_(rc, 0, "--check-config accepts a plugin built for ABI 1.1")
    like(out, r"sink old_minor: old_minor 1\.1\.0 \(ABI 1\.1\)", "it is listed with its ABI 1.1")
    with Mock() as m, Headroomd(mock=m, extra_conf=conf) as h:
        r = post_json(h.url + "/v1/chat/completions", openai_body(model="gpt-4o"))
        is_(r.status, 200, "a request goes through with the 1.1 sink loaded")
        got = None
        for _ in range(100):  # the sink thread runs on its own time
            st, got = get_json(h.url + "/old_minor")
            if got and got.get("events"):
                break
            time.sleep(0.05)
        is_((got or {}).get("events"), 1, "the 1.1 sink received the event")
        is_((got or {}).get("last_model"), "gpt-4o", "and read its fields")
        is_(((got or {}).get("greeting"), (got or {}).get("limit"), (got or {}).get("label")), ("hello", 42, "set"),
            "its 1.1 key table is read with the 1.1 stride: default, and two set values")
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)

# --- a plugin author's mistakes, built out of tree as doc/plugin-guide.md section 3 says ---
CC = shlex.split(os.environ.get("CC") or "cc")
INCLUDE = os.path.join(T_DIR, "..", "include")
AUTHOR_SRC = r"""
#include <headroom/plugin.h>
#ifdef CONF_TYPO
static const struct hr_conf_key keys[] = {
    HR_CONF_KEY_MIN("max_lines", HR_CONF_INT, "10", "lines kept", 1),
    HR_CONF_KEY("label", HR_CONF_STRING, "x", "a label"),
    HR_CONF_END,
};
#endif
static int init(const struct hr_host *h, struct hr_instance *s, const struct hr_conf *c, void **o)
{
    (void)h; (void)s; (void)c; *o = 0;
#if defined(CONF_TYPO)
    (void)h->conf_bool(c, "label"); /* a string key */
    long long n = h->conf_int(c, "max_line"); /* the key is max_lines */
    if (n < 1) {
        h->log(s, HR_LOG_ERROR, "max_lines must be at least 1, got %lld", n);
        return HR_EINVAL;
    }
#endif
#if defined(INIT_SAYS)
    h->log(s, HR_LOG_ERROR, "path: '%s' is not absolute", "x");
#endif
#if defined(INIT_FAILS) || defined(INIT_SAYS)
    return HR_EINVAL;
#endif
    return 0;
}
#ifdef UNDEF
extern int hr_author_no_such_function(void); /* defined nowhere: a typo, or a library not linked */
static int apply(void *st, struct hr_request *r) { (void)st; (void)r; return hr_author_no_such_function(); }
#else
static int apply(void *st, struct hr_request *r) { (void)st; (void)r; return 0; }
#endif
HR_PLUGIN_EXPORT const struct headroom_plugin headroom_plugin = {
#ifndef NO_HEADER
    HR_PLUGIN_HEADER,
#endif
    .name = NAME,
#ifndef NO_KIND
    .kind = HR_PLUGIN_TRANSFORM,
#endif
    .init = init, .apply = apply,
#ifdef CONF_TYPO
    .conf_keys = keys,
#endif
};
"""
author_dir = tempfile.mkdtemp(prefix="hr-author-")


def author_plugin(name, *defines):
    """Builds <name>.so from AUTHOR_SRC with the guide's command; its path, or None."""
    src = os.path.join(author_dir, "src.c")
    with open(src, "w") as f:
        f.write(AUTHOR_SRC)
    so = os.path.join(author_dir, name + ".so")
    args = CC + ["-shared", "-fPIC", "-fvisibility=hidden", "-I" + INCLUDE, '-DNAME="%s"' % name] + \
        ["-D" + d for d in defines] + [src, "-o", so, "-ljansson"]
    try:
        p = subprocess.run(args, capture_output=True, timeout=60)
    except OSError:
        return None
    if p.returncode:
        note("cc failed: " + p.stderr.decode("utf-8", "replace")[-300:])
    return so if p.returncode == 0 else None


def check_author(name):
    path = os.path.join(author_dir, name + ".conf")
    with open(path, "w") as f:
        f.write("port 0\nplugin_dir %s\ntransform %s { }\n" % (author_dir, name))
    return run(["--check-config", "-c", path])


if author_plugin("fine") is None:
    skip("no C compiler to build a plugin as the guide does", 16)
else:
    rc, out, err = check_author("fine")
    is_(rc, 0, "a plugin built with the guide's command passes --check-config")
    # Forgetting HR_PLUGIN_HEADER zeroes struct_size and the ABI: the message
    # said "plugin ABI 0.0 does not match ...; rebuild", which does not help.
    author_plugin("no_header", "NO_HEADER")
    rc, out, err = check_author("no_header")
    is_(rc, 1, "a descriptor without HR_PLUGIN_HEADER is refused")
    like(err, r"no_header\.so: descriptor has no ABI version .*start it with HR_PLUGIN_HEADER",
         "the message names the missing HR_PLUGIN_HEADER, not a rebuild")
    note(err.strip())
    # An unset .kind (0) got "'no_kind' is a transform plugin; load it with
    # `transform no_kind { }`": what the config already said.
    author_plugin("no_kind", "NO_KIND")
    rc, out, err = check_author("no_kind")
    is_(rc, 1, "a descriptor without .kind is refused")
    like(err, r"no_kind\.so: descriptor's \.kind is 0, neither HR_PLUGIN_TRANSFORM nor HR_PLUGIN_SINK; "
         r"set \.kind = HR_PLUGIN_TRANSFORM", "the message names .kind and the value to set")
    note(err.strip())
    # A function nothing defines: libltdl binds lazily, so the plugin passed
    # --check-config and the daemon died ("symbol lookup error") on the
    # first request that reached it.
    author_plugin("undef", "UNDEF")
    rc, out, err = check_author("undef")
    is_(rc, 1, "a plugin calling an undefined function is refused by --check-config")
    like(err, r"undef\.so: cannot load: undefined symbol: hr_author_no_such_function \(.*link its library, or fix "
         r"the name\)", "the message names the symbol and the fix")
    note(err.strip())
    # A file that is not a shared object was "cannot load: file not found".
    # An init that fails: --check-config passes (it never calls init), the
    # daemon stops naming the code, and says so when init gave no reason
    # (it said "(code -22); see the lines above" with nothing above).
    author_plugin("init_says", "INIT_SAYS")
    author_plugin("init_fails", "INIT_FAILS")
    rc, out, err = check_author("init_fails")
    is_(rc, 0, "--check-config does not run init")
    rc, out, err = run(["-c", os.path.join(author_dir, "init_fails.conf")], timeout=30)
    is_(rc, 1, "the daemon stops when init fails")
    like(err, r"init_fails\.conf:3:1: transform 'init_fails' failed to start \(init returned -22, HR_EINVAL\) and "
         r"logged no reason; its init should log one with host->log", "a silent init failure is called that, with the code")
    note(" | ".join(x for x in err.splitlines() if "failed to start" in x))
    check_author("init_says")
    rc, out, err = run(["-c", os.path.join(author_dir, "init_says.conf")], timeout=30)
    ok(rc == 1 and "ERROR:headroom.transforms.init_says:path: 'x' is not absolute" in err and
       re.search(r"failed to start \(init returned -22, HR_EINVAL\); see the lines above", err),
       "an init that logged its reason is pointed at it")
    note(" | ".join(x for x in err.splitlines() if "failed to start" in x))
    # A typo in the plugin's own conf_int("max_line") read 0 without a word
    # (and a string key read with conf_bool, 0): the author saw only their
    # own range check fail. The host now names the call and the keys.
    author_plugin("conf_typo", "CONF_TYPO")
    check_author("conf_typo")
    rc, out, err = run(["-c", os.path.join(author_dir, "conf_typo.conf")], timeout=30)
    is_(rc, 1, "the plugin's own check fails on the 0 it read")
    like(err, r"ERROR:headroom\.transforms\.conf_typo:conf_int\('max_line'\): the plugin declares no such key, so "
         r"it reads 0; declared: max_lines label", "the host names the undeclared key and the declared ones")
    like(err, r"ERROR:headroom\.transforms\.conf_typo:conf_bool\('label'\): 'label' is declared HR_CONF_STRING; "
         r"read it with conf_string", "and a key read as another type")
    note(" | ".join(x for x in err.splitlines() if "conf_typo:" in x))
    with open(os.path.join(author_dir, "not_elf.so"), "w") as f:
        f.write("not a shared object\n")
    rc, out, err = check_author("not_elf")
    is_(rc, 1, "a .so that is not a shared object is refused")
    ok("file not found" not in err and re.search(r"not_elf\.so: cannot load: \S", err),
       "the message gives the loader's reason, not 'file not found'")
    note(err.strip())

# --- the guide's C snippets compile against the real header, and its test runs ---
GUIDE = os.path.join(T_DIR, "..", "doc", "plugin-guide.md")
with open(GUIDE) as f:
    snippets = re.findall(r"```c\n(.*?)```", f.read(), re.S)


def snippet(marker):
    found = [x for x in snippets if marker in x]
    return found[0] if found else None


STUBS = r"""
#include <stdio.h>
#include <headroom/plugin.h>
static int init(const struct hr_host *h, struct hr_instance *s, const struct hr_conf *c, void **o)
{ (void)h; (void)s; (void)c; *o = 0; return 0; }
static void fini(void *st) { (void)st; }
"""
GUIDE_PLUGINS = [  # (marker in the snippet, what the guide names it, code it leaves to the reader)
    ("HR_PLUGIN_HEADER,                  /*", "my_transform",
     "static const struct hr_conf_key keys[] = {HR_CONF_END};\n"
     "static int apply(void *st, struct hr_request *r) { (void)st; (void)r; return 0; }\n"),
    ("static void on_event(void *state, const struct hr_event *ev)", "my_sink", "struct sink { FILE *out; };\n"),
]
if author_plugin("fine") is None:
    skip("no C compiler", 2 * len(GUIDE_PLUGINS) + 3)
else:
    for marker, name, extra in GUIDE_PLUGINS:
        code = snippet(marker)
        src = os.path.join(author_dir, name + ".c")
        with open(src, "w") as f:
            f.write(STUBS + extra + (code or ""))
        so = os.path.join(author_dir, name + ".so")
        p = subprocess.run(CC + ["-std=c11", "-Wall", "-Wextra", "-Werror", "-Wno-unused-function", "-shared", "-fPIC",
                                 "-fvisibility=hidden", "-I" + INCLUDE, src, "-o", so, "-ljansson"],
                           capture_output=True, timeout=60)
        ok(code and p.returncode == 0, "the guide's %s snippet compiles against plugin.h" % name)
        if p.returncode:
            note(p.stderr.decode("utf-8", "replace")[-600:])
        path = os.path.join(author_dir, name + ".conf")
        with open(path, "w") as f:
            f.write("port 0\nplugin_dir %s\n%s %s { }\n" % (author_dir, "sink" if "sink" in name else "transform", name))
        rc, out, err = run(["--check-config", "-c", path])
        is_(rc, 0, "and loads as %s" % name)
    code = snippet("example_transform_test.c")
    keys = snippet("static const struct hr_conf_key keys[]")
    src = os.path.join(author_dir, "keys.c")
    with open(src, "w") as f:
        f.write("#include <headroom/plugin.h>\n" + (keys or "") + "const struct hr_conf_key *k = keys;\n")
    p = subprocess.run(CC + ["-std=c11", "-Wall", "-Wextra", "-Werror", "-c", "-I" + INCLUDE, src, "-o",
                             os.path.join(author_dir, "keys.o")], capture_output=True, timeout=60)
    ok(keys and p.returncode == 0, "the guide's key table compiles")
    src = os.path.join(author_dir, "example_transform_test.c")
    with open(src, "w") as f:
        f.write(code or "")
    exe = os.path.join(author_dir, "example_transform_test")
    # The guide's command, without the sanitizers (not every compiler has them).
    p = subprocess.run(CC + ["-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-O2", "-I" + INCLUDE,
                             "-I" + T_DIR, src, os.path.join(T_DIR, "fake_host.c"),
                             os.path.join(T_DIR, "..", "plugins", "example_transform", "example_transform.c"),
                             "-o", exe, "-ljansson", "-lpthread"], capture_output=True, timeout=120)
    ok(code and p.returncode == 0, "the guide's unit test compiles with t/fake_host.c")
    if p.returncode:
        note(p.stderr.decode("utf-8", "replace")[-600:])
    r = subprocess.run([exe], capture_output=True, timeout=60) if p.returncode == 0 else None
    ok(r is not None and r.returncode == 0 and b"1..6" in r.stdout and b"not ok" not in r.stdout,
       "and passes, 6 checks, as the guide says")

# --- the example plugin through conf/headroom.conf ---
with open(SRC_CONF) as f:
    base = f.read()
base = base.replace("port 8787", "port @PORT@").replace("workers auto", "workers 2")
base = re.sub(r"(?m)^(openai_api_url|anthropic_api_url)\s.*$", r"\1 @MOCK_URL@", base)
# The shipped config keeps the example commented out (it is not part of the
# production pipeline); the test enables it as a plugin author would.
ok(re.search(r"(?m)^#transform example_transform \{", base) and not re.search(r"(?m)^transform example_transform", base),
   "conf/headroom.conf ships example_transform commented out")
base = base.replace("#transform example_transform {\n#    squeeze_blank_lines yes\n#    max_blank_lines 1\n#}\n",
                    "transform example_transform {\n    squeeze_blank_lines yes\n    max_blank_lines 1\n}\n")

ANSI_LINE = "\x1b[1;31mERROR\x1b[0m step %d: \x1b[33mwarning\x1b[0m in \x1b[4mmodule_%d\x1b[24m (code %d)\n"
ansi = "".join(ANSI_LINE % (i, i, 1000 + i) for i in range(60))
clean = re.sub(r"\x1b\[[0-9;?]*[@-~]", "", ansi)

with Mock() as m, Headroomd(conf_text=base, mock=m, args=PLUGIN_ARGS) as h:
    pt = h.stats()["pipeline_timing"]
    ok("example_transform" in pt and "pipeline_total" in pt, "/stats.pipeline_timing has the example stage")

    # OpenAI tool message
    msgs = [{"role": "user", "content": "build it"},
            {"role": "assistant", "content": None,
             "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "make", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": ansi},
            {"role": "user", "content": "what failed?"}]
    m.reset()
    r = post_json(h.url + "/v1/chat/completions", openai_body(messages=msgs))
    is_(r.status, 200, "openai request with an ANSI tool output proxied")
    sent = json.loads(m.last_request()["body"])
    tool = [x for x in sent.get("messages", []) if x.get("role") == "tool"]
    content = tool[0]["content"] if tool else ""
    ok(tool and "\x1b" not in content, "the upstream receives the tool output without escape codes")
    ok("ERROR step 0: warning in module_0 (code 1000)" in content and "step 59" in content,
       "the text around the escape codes is kept")
    is_(sent["messages"][0], msgs[0], "other messages untouched")
    saved = int(r.header("x-headroom-tokens-saved", "0"))
    cmp_ok(saved, ">", 0, "x-headroom-tokens-saved > 0 (%d)" % saved)
    is_(int(r.header("x-headroom-tokens-before")) - int(r.header("x-headroom-tokens-after")), saved,
        "saved = before - after")
    cmp_ok(int(r.header("x-headroom-tokens-before")), ">=", 200, "the tool output is over min_tokens")

    # Anthropic tool_result block
    amsgs = [{"role": "user", "content": "build it"},
             {"role": "assistant", "content": [{"type": "tool_use", "id": "tu_1", "name": "make", "input": {}}]},
             {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu_1", "content": ansi}]}]
    m.reset()
    r = post_json(h.url + "/v1/messages", anthropic_body(messages=amsgs))
    is_(r.status, 200, "anthropic request with an ANSI tool_result proxied")
    body = m.last_request()["body"]
    ok(b"\\u001b" not in body and b"\x1b" not in body, "anthropic: no escape codes reach the upstream")
    cmp_ok(int(r.header("x-headroom-tokens-saved", "0")), ">", 0, "anthropic: tokens saved > 0")

    # A small tool output (under min_tokens) is left alone, byte for byte.
    small = [{"role": "user", "content": "x"},
             {"role": "assistant", "content": None,
              "tool_calls": [{"id": "c", "type": "function", "function": {"name": "ls", "arguments": "{}"}}]},
             {"role": "tool", "tool_call_id": "c", "content": "\x1b[32mok\x1b[0m"}]
    raw = dumps(openai_body(messages=small))
    m.reset()
    r = request("POST", h.url + "/v1/chat/completions", body=raw, headers={"Content-Type": "application/json"})
    is_((r.status, m.last_request()["body"]), (200, raw), "a tool output under min_tokens is forwarded unchanged")

    st = h.stats()
    pt = st["pipeline_timing"]
    cmp_ok(pt.get("example_transform", {}).get("count", 0), ">=", 2, "example_transform timed in /stats after requests")
    is_(pt.get("pipeline_total", {}).get("count"), 3, "pipeline_total counts each LLM request")
    ok(all(k in pt.get("example_transform", {}) for k in ("count", "average_ms", "p99_ms", "max_ms")),
       "stage timing fields")
    cmp_ok(st["tokens"]["saved"], ">", 0, "/stats tokens.saved > 0")
    is_(st["tokens"]["saved"], st["tokens"]["input"] - st["tokens"]["sent"], "/stats saved = input - sent")

import shutil  # noqa: E402
shutil.rmtree(author_dir, ignore_errors=True)
done()
