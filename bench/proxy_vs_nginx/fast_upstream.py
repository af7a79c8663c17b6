"""fast_upstream.py — build and run fast_upstream.c for the Python benches
(bench/proxy/large_bodies.py, bench/memory/run.py): FastUpstream(tmpdir)
compiles it with a request buffer of buf_mb MB, starts it on a free port of
127.0.0.1, and has .url (what hrtest.Headroomd's mock= reads) and .port."""
import os
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))


class FastUpstream:
    def __init__(self, tmp, buf_mb=24):
        exe = os.path.join(tmp, "fast_upstream")
        subprocess.check_call(["cc", "-O2", "-DBUF_SIZE=(%d*1024*1024)" % buf_mb, "-o", exe,
                               os.path.join(HERE, "fast_upstream.c")])
        ready = os.path.join(tmp, "up.port")
        self.proc = subprocess.Popen([exe, "0", ready], stdout=subprocess.DEVNULL)
        for _ in range(100):
            if os.path.exists(ready) and open(ready).read().strip():
                break
            time.sleep(0.05)
        self.port = int(open(ready).read())
        self.url = "http://127.0.0.1:%d" % self.port

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
