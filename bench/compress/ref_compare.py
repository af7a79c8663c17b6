#!/usr/bin/env python3
"""ref_compare.py — headroomd's compressors beside the reference Headroom's, on the same inputs.

Inputs: the 100-row JSON arrays of t/fixtures/gen_fixtures.py (smart_crusher) and the
text fixtures of t/fixtures/text (log, search and diff compressors), each with its
question. Ours run through a real headroomd (POST /v1/compress with the default
transforms); the reference's run in-process from its public repository. Tokens are
counted with our exact tokenizer (`headroom tokens --model gpt-4o`, o200k_base) for
the input and both outputs, and the rows/lines an answer needs are checked in both.

Which reference code runs, and why: the reference's current compressors are Rust
(crates/headroom-core) behind a PyO3 extension, `headroom._core`, that needs cargo and
crates.io to build — neither usable offline here — and has no Python fallback. Its last
pure-Python versions ran the same algorithms (the Rust ports were checked byte-equal
against them on recorded fixtures before the Python was removed): smart_crusher,
log_compressor and search_compressor at commit c829dfa5 (2026-04-26), diff_compressor
at 48c13245 (the parent of its Rust-only commit). They are read from a local mirror of
the repository with `git archive` and run unmodified on Debian's python3; third-party
modules they import but these compressors do not use on this path (OpenTelemetry,
tiktoken, HTTP clients, ...) are replaced by inert stand-ins. Nothing of theirs is
copied into this tree. The HTML extractor is left out: the reference's needs
trafilatura, which is not available here.

usage: ref_compare.py [--ref-git DIR] [--build DIR] [--only NAME] [--dump DIR]
"""
import argparse
import base64  # noqa: F401  (hrtest's helpers use it)
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
REF_PY = "c829dfa5"      # last pure-Python smart_crusher, log and search compressors
REF_DIFF_PY = "48c13245"  # last pure-Python diff_compressor

STUBS = r'''
import importlib.abc, importlib.machinery, sys, types
ROOTS = {"opentelemetry", "tiktoken", "litellm", "httpx", "pydantic", "onnxruntime", "anthropic", "openai",
         "rich", "click", "fastapi", "uvicorn", "starlette", "yaml", "tokenizers", "huggingface_hub", "redis",
         "requests", "aiohttp", "websockets", "jinja2", "dotenv", "psutil", "zstandard", "brotli", "orjson",
         "xxhash", "mmh3", "jsonschema", "lxml", "bs4", "trafilatura", "regex", "structlog", "typer"}
class Inert:
    def __init__(self, *a, **k): pass
    def __call__(self, *a, **k): return Inert()
    def __getattr__(self, n): return Inert()
    def __iter__(self): return iter(())
    def __bool__(self): return False
    def __mro_entries__(self, bases): return (object,)
class Mod(types.ModuleType):
    __path__ = []
    def __getattr__(self, n):
        if n.startswith("__"): raise AttributeError(n)
        return Inert()
class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ROOTS or name.startswith("headroom._core"):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
    def create_module(self, spec): return Mod(spec.name)
    def exec_module(self, m): pass
sys.meta_path.insert(0, Finder())
'''

RUNNER = r'''
import json, logging, sys
sys.path.insert(0, sys.argv[1])
import refstubs  # noqa
logging.disable(logging.CRITICAL)
from headroom.config import CCRConfig
from headroom.transforms.smart_crusher import SmartCrusher, SmartCrusherConfig
from headroom.transforms.log_compressor import LogCompressor
from headroom.transforms.search_compressor import SearchCompressor
from headroom.transforms.diff_compressor_py import DiffCompressor
# As its proxy runs it (proxy/server.py): CCR on, the retrieval marker in the output.
sc = SmartCrusher(SmartCrusherConfig(), ccr_config=CCRConfig(enabled=True, inject_retrieval_marker=True))
bare = SmartCrusher(SmartCrusherConfig())
lc, scc, dc = LogCompressor(), SearchCompressor(), DiffCompressor()
out = []
for job in json.load(open(sys.argv[2])):
    text, q, kind = job["text"], job["query"], job["kind"]
    if kind == "json":
        r = sc._smart_crush_content(text, query_context=q)[0]
        out.append(bare.crush(text, query=q).compressed)
    elif kind == "log":
        r = lc.compress(text, context=q).compressed
    elif kind == "search":
        r = scc.compress(text, context=q).compressed
    else:
        r = dc.compress(text, context=q).compressed
    if kind != "json":
        out.append(r)
    out.append(r)
json.dump(out, open(sys.argv[3], "w"))
'''


def ref_tree(ref_git, work):
    """The reference package at the pure-Python commits, in `work`."""
    tar = subprocess.run(["git", "--git-dir", ref_git, "archive", REF_PY, "headroom"], capture_output=True)
    subprocess.run(["tar", "-x", "-C", work], input=tar.stdout, check=True)
    diff = subprocess.run(["git", "--git-dir", ref_git, "show", REF_DIFF_PY + ":headroom/transforms/diff_compressor.py"],
                          capture_output=True, check=True).stdout
    with open(os.path.join(work, "headroom", "transforms", "diff_compressor_py.py"), "wb") as f:
        f.write(diff)
    with open(os.path.join(work, "refstubs.py"), "w") as f:
        f.write(STUBS)
    if not os.path.exists(os.path.join(work, "headroom", "transforms", "smart_crusher.py")):
        sys.exit("could not extract %s from %s" % (REF_PY, ref_git))


def jobs():
    """(name, kind, text, query, evidence-checker) for every input."""
    fx = tempfile.mkdtemp(prefix="hr-refcmp-")
    subprocess.run([sys.executable, os.path.join(SRC, "t", "fixtures", "gen_fixtures.py"), "--out", fx], check=True)
    man = json.load(open(os.path.join(fx, "manifest.json")))
    out = []
    for name in sorted(man):
        spec = man[name]
        if spec["rows"] != 100:
            continue
        text = open(os.path.join(fx, name)).read()
        must = sorted(set(spec["errors"] + spec["needles"] + spec["anomalies"]))
        out.append((name[:-5], "json", text, spec["query"], ("rows", spec["path"], must)))
    tdir = os.path.join(SRC, "t", "fixtures", "text")
    kinds = {"make_gcc_error": "log", "python_unittest": "log", "npm_node_test": "log", "cargo_test": "log",
             "java_exception": "log", "app_log_needles": "log", "maven_build": "log", "docker_build": "log",
             "go_test": "log", "journald": "log", "grep_rn_src": "search", "git_grep_heading": "search",
             "rg_heading": "search", "git_show_mixed": "diff", "git_log_p": "diff"}
    for name, kind in kinds.items():
        p = os.path.join(tdir, name + ".txt")
        if not os.path.exists(p):
            continue
        ev = open(os.path.join(tdir, name + ".evidence")).read().splitlines()
        q = [l[6:] for l in ev if l.startswith("query ")] or [l[12:] for l in ev if l.startswith("# question: ")]
        lines = [l for l in ev if l and not l.startswith(("#", "floor ", "query "))]
        out.append((name, kind, open(p).read(), q[0] if q else "", ("lines", lines)))
    return out


def rows_kept(orig_text, out_text, path, must):
    """How many of the must-keep rows appear, unchanged, in the output."""
    o = json.loads(orig_text)
    try:
        c = json.loads(out_text)
    except ValueError:  # the reference appends its marker as text after the JSON
        try:
            c = json.loads(out_text.rsplit("\n[", 1)[0])
        except ValueError:
            return 0
    orows = o[path] if path else o
    crows = c.get(path) if path and isinstance(c, dict) else c
    if not isinstance(crows, list):
        return 0
    have = {json.dumps(r, sort_keys=True) for r in crows}
    return sum(json.dumps(orows[i], sort_keys=True) in have for i in must)


def tokens(build, text):
    r = subprocess.run([os.path.join(build, "src", "headroom"), "tokens", "--model", "gpt-4o", "-"],
                       input=text.encode(), capture_output=True, check=True,
                       env=dict(os.environ, HEADROOM_DATA_DIR=os.path.join(SRC, "data")))
    return int(r.stdout.split()[0])


def ours(build, items):
    sys.path.insert(0, os.path.join(SRC, "t"))
    os.environ.setdefault("HEADROOMD", os.path.join(build, "src", "headroomd"))
    import hrtest
    conf = "".join("transform %s { }\n" % s for s in
                   ["router", "smart_crusher", "log_compressor", "search_compressor", "diff_compressor"])
    res = []
    with hrtest.Mock(), hrtest.Headroomd(extra_conf=conf) as hd:
        for name, kind, text, q, _ in items:
            msgs = [{"role": "user", "content": q},
                    {"role": "assistant", "content": None, "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "run", "arguments": "{}"}}]},
                    {"role": "tool", "tool_call_id": "c1", "content": text}]
            r = hrtest.post_json(hd.url + "/v1/compress", {"model": "gpt-4o", "messages": msgs})
            res.append(r.json()["messages"][2]["content"])
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref-git", default="/work/.mirror/chopratejas+headroom/repo")
    ap.add_argument("--build", default=os.path.join(SRC, "_build"))
    ap.add_argument("--only", help="inputs whose name contains this")
    ap.add_argument("--dump", help="write NAME.ours and NAME.ref here")
    a = ap.parse_args()
    items = [i for i in jobs() if not a.only or a.only in i[0]]
    work = tempfile.mkdtemp(prefix="hr-ref-")
    ref_tree(a.ref_git, work)
    with open(os.path.join(work, "jobs.json"), "w") as f:
        json.dump([{"text": t, "query": q, "kind": k} for _, k, t, q, _ in items], f)
    with open(os.path.join(work, "runner.py"), "w") as f:
        f.write(RUNNER)
    subprocess.run([sys.executable, os.path.join(work, "runner.py"), work, os.path.join(work, "jobs.json"),
                    os.path.join(work, "ref.json")], check=True)
    ref = json.load(open(os.path.join(work, "ref.json")))
    bare, ref = ref[0::2], ref[1::2]
    mine = ours(a.build, items)
    print("| input | type | tokens in | ours out | ours saved | ref out | ref saved | ref saved, no marker "
          "| needed kept: ours / ref |")
    print("|---|---|---|---|---|---|---|---|---|")
    tot = {}
    for (name, kind, text, q, chk), o, r, rb in zip(items, mine, ref, bare):
        if a.dump:
            os.makedirs(a.dump, exist_ok=True)
            for ext, t in (("ours", o), ("ref", r)):
                with open(os.path.join(a.dump, name + "." + ext), "w") as f:
                    f.write(t)
        tin, to, tr = tokens(a.build, text), tokens(a.build, o), tokens(a.build, r)
        if chk[0] == "rows":
            need = len(chk[2])
            ko, kr = rows_kept(text, o, chk[1], chk[2]), rows_kept(text, r, chk[1], chk[2])
        else:
            need = len(chk[1])
            ko, kr = sum(l in o for l in chk[1]), sum(l in r for l in chk[1])
        so, sr, sb = 1 - to / tin, 1 - tr / tin, 1 - tokens(a.build, rb) / tin
        t = tot.setdefault(kind, [0, 0, 0])
        t[0] += tin
        t[1] += to
        t[2] += tr
        print("| %s | %s | %d | %d | %.1f %% | %d | %.1f %% | %s | %d/%d / %d/%d |" %
              (name, kind, tin, to, so * 100, tr, sr * 100, "%.1f %%" % (sb * 100) if kind == "json" else "",
               ko, need, kr, need))
    for kind, (tin, to, tr) in tot.items():
        print("| **all %s** | | %d | %d | **%.1f %%** | %d | **%.1f %%** | | |" %
              (kind, tin, to, (1 - to / tin) * 100, tr, (1 - tr / tin) * 100))


if __name__ == "__main__":
    main()
    # hrtest ends a process as a TAP test; this is a benchmark: clean up, exit 0.
    sys.stdout.flush()
    import hrtest
    hrtest._cleanup()
    os._exit(0)
