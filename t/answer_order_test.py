#!/usr/bin/env python3
# answer_order_test.py — a relayed answer reaches its client only once its
# request is accounted: /stats and every sink on the request's thread count
# it by the time the client has it, whichever worker the client asks next.
# The answer is written at once after that (src/relay.c end_answer), and
# freeing the request comes after the write; this checks the order that
# must not change with it. t/plugins/slow_sink takes DELAY s for each event
# on the request's thread: an answer written before its accounting would
# arrive sooner than that, and a /stats read on another connection (another
# worker, most of the time) would not count it yet.
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403

PLUGINS = os.environ.get("HEADROOM_TEST_BAD_PLUGIN_DIR") or os.path.join(T_DIR, "plugins", ".libs")
if not os.path.exists(os.path.join(PLUGINS, "slow_sink.so")):
    skip_all("t/plugins/.libs/slow_sink.so not built (make check builds it)")
DELAY = 0.3

CONF = ("host 127.0.0.1\nport @PORT@\nworkers 2\nopenai_api_url @MOCK_URL@\nanthropic_api_url @MOCK_URL@\n"
        "plugin_dir %s\nsink slow_sink { delay_ms %d }\n" % (PLUGINS, int(DELAY * 1000)))


def counted(h):
    return h.get_json("/slow_sink")["events"], h.stats()["requests"]["total"]


with Mock() as m, Headroomd(mock=m, conf_text=CONF) as h:
    u = h.url
    cases = [
        ("a Chat Completions answer", lambda: post_json(u + "/v1/chat/completions", openai_body())),
        ("a Chat Completions stream", lambda: stream(u + "/v1/chat/completions",
                                                     openai_body(stream=True, include_usage=True))),
        ("a Messages answer", lambda: post_json(u + "/v1/messages", anthropic_body())),
        ("a Messages stream", lambda: stream(u + "/v1/messages", anthropic_body(stream=True))),
        ("an upstream error answer", lambda: post_json(u + "/v1/chat/completions", openai_body(),
                                                       headers={"x-mock-status": "429"})),
    ]
    for name, send in cases:
        for i in range(3):  # a new connection each time: /stats lands on either worker
            events, total = counted(h)
            t0 = time.monotonic()
            r = send()
            took = time.monotonic() - t0
            after = counted(h)
            label = "%s (%d)" % (name, i + 1)
            ok(r.status in (200, 429), "%s: answered (%d)" % (label, r.status))
            is_(after, (events + 1, total + 1), "%s: the sink and /stats count it by the time the client has it"
                % label)
            cmp_ok(took, ">=", DELAY * 0.95, "%s: the answer waited for its accounting (%.3f s)" % (label, took))
done()
