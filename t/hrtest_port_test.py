#!/usr/bin/env python3
# hrtest_port_test.py — the harness's free_port race. A port free_port
# returned can be taken by a parallel test before headroomd binds it; the
# daemon then exits with "Address already in use" (the message the harness
# reads) and Headroomd.start() picks another port instead of failing the
# test (CI saw t/backpressure_test.py fail that way once). A port the test
# chose itself is never moved: the daemon's refusal stays visible.
import os
import socket
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hrtest import Headroomd, Mock, done, get, is_, isnt, like, ok, wait_until  # noqa: E402


def occupy(port):
    s = socket.socket()
    s.bind(("127.0.0.1", port))
    s.listen(1)
    return s


with Mock():
    h = Headroomd()
    taken = h.port
    blocker = occupy(taken)
    with h:
        isnt(h.port, taken, "a port taken before the daemon bound it: the harness picked another")
        is_(get(h.url + "/readyz").status, 200, "the daemon serves on the new port")
    blocker.close()

    blocker = occupy(h.port)
    mine = Headroomd(port=h.port, wait_ready=False, expect_exit=None)
    with mine:
        ok(wait_until(lambda: not mine.alive(), timeout=20), "a port the test chose is not moved: the daemon exits")
        like(mine.stderr_text(), r"Address already in use", "with the message the harness looks for")
    blocker.close()

done()
