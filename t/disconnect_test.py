#!/usr/bin/env python3
# disconnect_test.py — a client that goes away while headroomd waits for a
# non-streamed upstream answer is noticed at once: the upstream transfer is
# dropped, 499 is counted, and the daemon keeps serving.
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403
import json  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402

BODY = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}).encode()


def send_and_leave(port, delay_ms):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              b"x-mock-delay-ms: %d\r\nContent-Length: %d\r\n\r\n%s" % (delay_ms, len(BODY), BODY))
    time.sleep(0.3)
    s.close()
    return time.monotonic()


def count_499(h):
    st, js = get_json(h.url + "/stats")
    return (js or {}).get("requests", {}).get("by_status", {}).get("499", 0)


with Mock() as m, Headroomd() as h:
    left = send_and_leave(h.port, 5000)
    ok(wait_until(lambda: count_499(h) == 1, timeout=3), "499 counted while the upstream was still thinking")
    cmp_ok(time.monotonic() - left, "<", 3, "noticed well before the 5 s upstream delay")
    st, js = get_json(h.url + "/stats")
    is_(js["requests"]["total"], 1, "counted once")
    is_(js["requests"]["failed"], 0, "a client leaving is not an upstream failure")
    r = post_json(h.url + "/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]})
    is_(r.status, 200, "the daemon keeps serving")
    for i in range(5):
        send_and_leave(h.port, 2000)
    ok(wait_until(lambda: count_499(h) == 6, timeout=5), "five more departures, five more 499s")
    r = post_json(h.url + "/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "user", "content": "y"}]})
    is_(r.status, 200, "still serving")
done()
