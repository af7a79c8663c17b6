#!/usr/bin/env python3
# A transform stage that fails has its edits undone, and only its own: the
# body forwarded upstream keeps what the stages before and after it did.
# t/plugins/body_editor adds a top-level member to the body (an edit outside
# units, flagged with body_edited) and then succeeds or fails as configured.
import json
import os

from hrtest import Headroomd, Mock, done, is_, openai_body, post_json

PLUGINS = os.environ.get("HEADROOM_TEST_BAD_PLUGIN_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "plugins", ".libs")


def stages(spec):
    """spec: [(instance, mark, edit, fail)]"""
    return "".join("transform body_editor as %s { mark %s; edit %s; fail %s; }\n"
                   % (i, m, "yes" if e else "no", "yes" if f else "no") for i, m, e, f in spec)


def forwarded_marks(spec):
    conf = ("host 127.0.0.1\nport @PORT@\nworkers 1\nopenai_api_url @MOCK_URL@\nplugin_dir %s\n%s"
            % (PLUGINS, stages(spec)))
    with Mock() as m, Headroomd(conf_text=conf) as h:
        r = post_json(h.url + "/v1/chat/completions", openai_body(), headers={"Authorization": "Bearer sk-t"})
        body = json.loads(m.last_request()["body"])
        return r.status, sorted(k for k in body if k.startswith("x_"))


cases = [
    ("edit, fail, edit, fail", [("a", "x_a", 1, 0), ("b", "x_b", 1, 1), ("c", "x_c", 1, 0), ("d", "x_d", 1, 1)],
     ["x_a", "x_c"]),
    ("edit, untouched, fail (one snapshot serves two stages)",
     [("a", "x_a", 1, 0), ("n", "x_n", 0, 0), ("b", "x_b", 1, 1)], ["x_a"]),
    ("fail first, then edit", [("b", "x_b", 1, 1), ("a", "x_a", 1, 0)], ["x_a"]),
    ("untouched, untouched, edit, untouched fail",
     [("n", "x_n", 0, 0), ("o", "x_o", 0, 0), ("a", "x_a", 1, 0), ("f", "x_f", 0, 1)], ["x_a"]),
    ("two failures in a row after an edit",
     [("a", "x_a", 1, 0), ("b", "x_b", 1, 1), ("d", "x_d", 1, 1), ("c", "x_c", 1, 0)], ["x_a", "x_c"]),
]
for name, spec, want in cases:
    status, marks = forwarded_marks(spec)
    is_((status, marks), (200, want), "%s: the forwarded body keeps %s" % (name, want))
done()
