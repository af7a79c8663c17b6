# ws_client.py — a WebSocket client on a raw socket, frames built by hand
# (RFC 6455), for the tests that speak to headroomd's WebSocket relay:
# ws_relay_test.py and fleet_test.py.
import base64
import hashlib
import json
import os
import socket
import struct
import time

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class WS:
    """A WebSocket client on a raw socket, frames built by hand."""

    def __init__(self, port, path="/v1/responses", headers=None, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.key = base64.b64encode(os.urandom(16)).decode()
        h = {"Host": "127.0.0.1:%d" % port, "Upgrade": "websocket", "Connection": "Upgrade",
             "Sec-WebSocket-Key": self.key, "Sec-WebSocket-Version": "13",
             "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
             "Authorization": "Bearer sk-test"}
        h.update(headers or {})
        req = "GET %s HTTP/1.1\r\n" % path + "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
        self.sock.sendall(req.encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                break
            self.buf += d
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
        self.headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        if self.status != 101:  # an HTTP answer: read its body
            n = int(self.headers.get("content-length", "0"))
            while len(self.buf) < n:
                d = self.sock.recv(65536)
                if not d:
                    break
                self.buf += d
            if "chunked" in self.headers.get("transfer-encoding", ""):
                while not self.buf.endswith(b"0\r\n\r\n"):
                    d = self.sock.recv(65536)
                    if not d:
                        break
                    self.buf += d
                n = len(self.buf)
            self.body = self.buf[:n]

    def accept_ok(self):
        want = base64.b64encode(hashlib.sha1((self.key + GUID).encode()).digest()).decode()
        return self.headers.get("sec-websocket-accept") == want

    def send_frame(self, opcode, payload=b"", fin=True, mask=True, rsv=0, length=None, pause=None):
        """pause=(n, seconds): send the head and n bytes of payload, wait, then the rest."""
        n = len(payload) if length is None else length
        head = bytes([(0x80 if fin else 0) | rsv | opcode])
        m = 0x80 if mask else 0
        if n < 126:
            head += bytes([m | n])
        elif n < 65536:
            head += bytes([m | 126]) + struct.pack(">H", n)
        else:
            head += bytes([m | 127]) + struct.pack(">Q", n)
        if mask:
            key = os.urandom(4)
            head += key
            payload = bytes(b ^ key[i & 3] for i, b in enumerate(payload)) if len(payload) < 4096 else \
                (int.from_bytes(payload, "big") ^ int.from_bytes((key * (len(payload) // 4 + 1))[:len(payload)],
                                                                "big")).to_bytes(len(payload), "big")
        if pause:
            self.sock.sendall(head + payload[:pause[0]])
            time.sleep(pause[1])
            head, payload = b"", payload[pause[0]:]
        self.sock.sendall(head + payload)

    def send_text(self, obj, fragments=1):
        data = (json.dumps(obj) if not isinstance(obj, (bytes, str)) else obj)
        data = data.encode() if isinstance(data, str) else data
        if fragments == 1:
            return self.send_frame(0x1, data)
        step = len(data) // fragments + 1
        parts = [data[i:i + step] for i in range(0, len(data), step)]
        for i, p in enumerate(parts):
            self.send_frame(0x1 if i == 0 else 0x0, p, fin=i == len(parts) - 1)

    def _read(self, n):
        while len(self.buf) < n:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError("connection closed")
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame(self):
        b0, b1 = self._read(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self._read(8))[0]
        masked = b1 & 0x80
        key = self._read(4) if masked else None
        data = self._read(n)
        if key:
            data = bytes(b ^ key[i & 3] for i, b in enumerate(data))
        return b0 >> 7, b0 & 0x0F, data, masked

    def recv_message(self):
        """(opcode, payload) of the next whole message or control frame."""
        msg, op = b"", None
        while True:
            fin, opcode, data, _ = self.recv_frame()
            if opcode >= 0x8:
                return opcode, data
            if opcode:
                op, msg = opcode, data
            else:
                msg += data
            if fin:
                return op, msg

    def events(self):
        """The JSON messages of one response, through its final event."""
        out = []
        while True:
            op, data = self.recv_message()
            if op != 0x1:
                out.append({"type": "<opcode %d>" % op, "data": data})
                return out
            ev = json.loads(data)
            out.append(ev)
            if ev.get("type") in ("response.completed", "response.failed", "response.incomplete", "error"):
                return out

    def close_code(self):
        """The code of the close frame that comes next (skipping messages), None at EOF."""
        try:
            while True:
                op, data = self.recv_message()
                if op == 0x8:
                    return (struct.unpack(">H", data[:2])[0] if len(data) >= 2 else 1005), data[2:].decode()
        except (EOFError, OSError):
            return None, ""

    def eof(self, timeout=5):
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except socket.timeout:
            return False
        except OSError:
            return True

    def close(self):
        self.sock.close()
