#!/usr/bin/env python3
# backpressure_test.py — a client that reads a long stream slowly makes
# headroomd pause the upstream transfer instead of buffering without bound,
# and the bytes it finally gets are exactly the upstream's, in order.
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import *  # noqa: E402,F403
import hashlib  # noqa: E402
import json  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402

BODY = json.dumps({"model": "gpt-4o", "stream": True, "stream_options": {"include_usage": True},
                   "messages": [{"role": "user", "content": "tell me everything"}]}).encode()


def slow_stream(port, chunks, stall):
    """Send the request, read nothing for `stall` seconds, then read it all;
    returns the de-chunked body."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              b"x-mock-chunks: %d\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (chunks, len(BODY), BODY))
    time.sleep(stall)
    data = b""
    s.settimeout(30)
    while True:
        b = s.recv(1 << 16)
        if not b:
            break
        data += b
    s.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    out = b""
    while rest:
        line, _, rest = rest.partition(b"\r\n")
        n = int(line.split(b";")[0], 16)
        if n == 0:
            break
        out += rest[:n]
        rest = rest[n + 2:]
    return head, out


with Mock() as mock, Headroomd() as hd:
    mport = int(mock.url.rsplit(":", 1)[1])
    _, direct = slow_stream(mport, 20000, 0)
    cmp_ok(len(direct), ">", 2_000_000, "the upstream stream is large (%d bytes)" % len(direct))
    head, via = slow_stream(hd.port, 20000, 2.0)
    ok(head.startswith(b"HTTP/1.1 200"), "streamed through headroomd")
    comment = b"\n: headroom"
    body = via[:via.rfind(comment) + 1] if comment in via else via
    is_(len(body), len(direct), "same length as the upstream's stream")
    is_(hashlib.sha256(body).hexdigest(), hashlib.sha256(direct).hexdigest(),
        "byte-identical to the upstream's stream after backpressure pauses")
    events = [e for e in body.split(b"\n\n") if e.startswith(b"data: {")]
    ids = [json.loads(e[6:]).get("choices", [{}])[0].get("index") for e in events[:3]]
    ok(all(i == 0 for i in ids), "events parse")
    st, stats = get_json(hd.url + "/stats")
    cmp_ok(stats["tokens"]["output"], ">", 0, "usage parsed from the end of the stream")
done()
