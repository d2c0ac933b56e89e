# SPDX-License-Identifier: MIT
"""A minimal RFC 6455 WebSocket client on the standard library (Python has
none), for the stream's tests and benchmark: the opening handshake with a
subprotocol and extra headers, masked text frames out (or any frame, for
the tests of bad ones), frames in with fragments reassembled, ping
answered (and counted), close seen."""
import base64
import hashlib
import json
import os
import socket
import struct
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class HandshakeError(Exception):
    """The server refused the upgrade; .status is its HTTP status (or 0)."""

    def __init__(self, status, text):
        super().__init__("handshake refused: %s %s" % (status, text))
        self.status = status


class Closed(Exception):
    """The connection was closed (by a close frame or EOF)."""


class WebSocket:
    def __init__(self, host, port, path="/", protocol="gradwatch.v1",
                 headers=None, timeout=10.0, rcvbuf=None, host_header=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            # Before connect, so the window offered never grows past it.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.closed = False
        self.pings = 0
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET %s HTTP/1.1" % path, "Host: %s:%d" % (host_header or host, port),
                 "Upgrade: websocket", "Connection: Upgrade",
                 "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"]
        if protocol:
            lines.append("Sec-WebSocket-Protocol: " + protocol)
        for k, v in (headers or {}).items():
            lines.append("%s: %s" % (k, v))
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = self._read_head()
        status_line, _, rest = head.partition("\r\n")
        parts = status_line.split(" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if status != 101:
            self.sock.close()
            raise HandshakeError(status, status_line)
        hdrs = {}
        for line in rest.split("\r\n"):
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        want = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        if hdrs.get("sec-websocket-accept") != want:
            self.sock.close()
            raise HandshakeError(0, "bad Sec-WebSocket-Accept")
        self.protocol = hdrs.get("sec-websocket-protocol")

    def _read_head(self):
        while b"\r\n\r\n" not in self.buf:
            try:
                data = self.sock.recv(4096)
            except OSError as e:
                raise HandshakeError(0, "connection error: %s" % e)
            if not data:
                raise HandshakeError(0, "connection closed during the handshake")
            self.buf += data
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        return head.decode("latin-1")

    def _need(self, n):
        while len(self.buf) < n:
            data = self.sock.recv(max(65536, n - len(self.buf)))
            if not data:
                self.closed = True
                raise Closed("EOF")
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send_frame(self, opcode, payload):
        """One final frame, masked as a client must; any opcode (tests)."""
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def send_text(self, text):
        self.send_frame(0x1, text.encode())

    def send_json(self, obj):
        self.send_text(json.dumps(obj))

    def recv_text(self, timeout=None):
        """The next text message; raises socket.timeout or Closed."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        deadline = None if timeout is None else time.time() + timeout
        parts = []
        while True:
            b0, b1 = self._need(2)
            fin, opcode, n = b0 & 0x80, b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._need(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._need(8))[0]
            if b1 & 0x80:
                mask = self._need(4)
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self._need(n)))
            else:
                payload = self._need(n)
            if opcode == 0x8:
                self.closed = True
                raise Closed("close frame %r" % payload[:2])
            if opcode in (0x9, 0xA):
                if opcode == 0x9:
                    self.pings += 1
                    self.send_frame(0xA, payload)
                # Pings do not stretch the wait past the timeout.
                if deadline is not None:
                    left = deadline - time.time()
                    if left <= 0:
                        raise socket.timeout("timed out")
                    self.sock.settimeout(left)
                continue
            parts.append(payload)
            if fin:
                return b"".join(parts).decode()

    def subscribe(self, runs, timeout=5):
        """Subscribe and wait for the acknowledgement (so later posts are
        seen); the acknowledgement, or None."""
        self.send_json({"subscribe": runs})
        for m in self.drain(timeout, until=lambda m: m.get("type") == "subscribed"):
            if m.get("type") == "subscribed":
                return m
        return None

    def recv_json(self, timeout=None):
        return json.loads(self.recv_text(timeout))

    def drain(self, seconds, until=None):
        """Messages (parsed) for up to seconds, or until until(msg) is true."""
        out = []
        deadline = time.time() + seconds
        while True:
            left = deadline - time.time()
            if left <= 0:
                return out
            try:
                m = self.recv_json(left)
            except socket.timeout:
                return out
            out.append(m)
            if until is not None and until(m):
                return out

    def close(self, code=1000, reason=b""):
        try:
            if not self.closed:
                self.send_frame(0x8, struct.pack("!H", code) + reason)
        except OSError:
            pass
        self.sock.close()
