#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Every way the stream loses a viewer is logged in one info line
(daemon/ws_close.c) that names the viewer (its address and its
subscriptions), how long it was open and why: the viewer's close frame
with its code, a connection dropped without one, a frame that breaks the
protocol or is not UTF-8, a viewer that cannot keep up, the daemon
stopping; a refused handshake names the address too.  And the keepalive
(ws-ping, here 1 s: pinged after 1 s without a pong, closed at 4 s): a
quiet viewer that answers the pings stays open, one that stops answering
is closed and the line says so.  (libwebsockets' own default, which the
daemon used before, pinged at 300 s and closed at 310 s, silently: the
five-minute close of issue 15.)"""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from gwtest import TAP, Daemon  # noqa: E402
from wsclient import Closed, HandshakeError, WebSocket  # noqa: E402

t = TAP()


def connect(d, **kw):
    return WebSocket("127.0.0.1", d.ws_port, **kw)


def log_lines(d, what="ws_stream: "):
    with open(d.log.name, errors="replace") as f:
        return [line.rstrip("\n") for line in f if what in line]


def close_line(d, ws_or_port, secs=5.0):
    """The close line of the viewer on that local port, waiting up to secs."""
    port = ws_or_port if isinstance(ws_or_port, int) else ws_or_port.sock.getsockname()[1]
    tag = "viewer 127.0.0.1:%d " % port
    deadline = time.time() + secs
    while True:
        got = [line for line in log_lines(d, tag) if " closed after " in line]
        if got or time.time() > deadline:
            return got[0] if got else None
        time.sleep(0.05)


def until_eof(ws, secs):
    """Read raw bytes (so pings are taken but never answered) until EOF."""
    ws.sock.settimeout(0.2)
    deadline = time.time() + secs
    while time.time() < deadline:
        try:
            if ws.sock.recv(65536) == b"":
                return True
        except socket.timeout:
            continue
        except OSError:
            return True
    return False


def post(d, run, steps):
    st, ans = d.post("/api/v1/ingest", {"run": run, "steps": steps})
    if st != 200:
        raise RuntimeError("ingest %s: %s %r" % (run, st, ans))


with Daemon() as d:
    # ---- the viewer closes ----------------------------------------------
    w = connect(d)
    w.subscribe("run-a")
    port = w.sock.getsockname()[1]
    time.sleep(0.3)
    w.close(1000, b"bye")
    line = close_line(d, port)
    t.ok(line and 'the viewer closed it (code 1000 "bye")' in line,
         "a close frame is logged with its code and reason", line)
    t.ok(line and "Z info ws_stream: viewer " in line, "at info level", line)
    t.ok(line and "subscribed to run-a" in line, "the line names the viewer's subscription", line)
    try:
        secs = float(line.split(" closed after ")[1].split(" s")[0])
    except (AttributeError, IndexError, ValueError):
        secs = -1
    t.ok(0.2 <= secs < 3, "and how long it was open (%.1f s)" % secs, line)

    w = connect(d)
    w.subscribe(["run-a", "run-b", "run-c", "run-d", "run-e"])
    w.send_json({"subscribe": "*"})
    w.drain(2, until=lambda m: m.get("type") == "subscribed")
    port = w.sock.getsockname()[1]
    w.sock.close()
    line = close_line(d, port)
    t.ok(line and "the connection ended without a close frame" in line,
         "a viewer gone without a close frame is logged so", line)
    t.ok(line and 'subscribed to "*", run-a, run-b, run-c and 2 more' in line,
         "many subscriptions are summed up", line)

    # ---- frames that break the protocol --------------------------------
    for name, opcode, payload, want in (
            ("a text frame that is not UTF-8", 0x1, b'{"subscribe": "\xff\xfe"}',
             "not UTF-8 from the viewer (code 1007"),
            ("a frame of an unknown kind", 0x3, b"x",
             "a protocol error from the viewer (code 1002")):
        w = connect(d)
        port = w.sock.getsockname()[1]
        w.send_frame(opcode, payload)
        try:
            w.drain(3)
        except (Closed, OSError):
            pass
        w.sock.close()
        line = close_line(d, port)
        t.ok(line and want in line, "%s: the line says lws closed it and why" % name, line)

    # ---- a viewer that cannot keep up -----------------------------------
    layers = ["layer.%03d.weight" % i for i in range(100)]

    def nan_batch(base):
        return [{"step": base + i, "loss": 1.0,
                 "layers": {n: ("NaN" if j == 0 else 0.5) for j, n in enumerate(layers)}}
                for i in range(100)]

    slow = connect(d, rcvbuf=4096)
    slow.subscribe("*")
    port = slow.sock.getsockname()[1]
    t0 = time.time()
    # Each post is 100 messages of 2.7 kB that are never coalesced: far
    # more than the kernel's buffers and the viewer's queue (twice: the
    # first overflow sends a resync) hold.
    for r in range(60):
        post(d, "flood", nan_batch(r * 100))
    flood = time.time() - t0
    slow.sock.close()
    line = close_line(d, port)
    t.ok(line and "it cannot keep up: " in line and "messages (" in line,
         "a viewer that cannot keep up is logged with what was queued for it "
         "(6,000 messages in %.1f s)" % flood, line)

    # ---- refused handshakes ---------------------------------------------
    try:
        connect(d, headers={"Origin": "http://evil.example"}).close()
    except HandshakeError:
        pass
    t.ok(any("refused a connection from 127.0.0.1:" in line and "foreign Origin" in line
             for line in log_lines(d)), "a refused Origin names the address",
         log_lines(d, "refused"))

    # ---- shutdown -------------------------------------------------------
    w = connect(d)
    w.subscribe("run-z")
    port = w.sock.getsockname()[1]
    d.stop()
    line = close_line(d, port, 0)
    t.ok(line and "the daemon is stopping" in line and "subscribed to run-z" in line,
         "a viewer still open at shutdown is logged", line)
    opened = len(log_lines(d, "ws_stream: viewer "))
    t.is_(opened, 6, "one line for each of the six viewers that got in")

conf = os.path.join(os.environ.get("TMPDIR", "/tmp"), "gw-ws-ping.%d.conf" % os.getpid())
with open(conf, "w") as f:
    f.write("ws-ping 1\n")
try:
    with Daemon("-c", conf) as d:
        # A quiet viewer that answers the pings, beside one that stops.
        good = connect(d)
        good.subscribe("*")
        hung = connect(d)
        hung.subscribe("*")
        hung_port = hung.sock.getsockname()[1]
        result = {}
        th = threading.Thread(target=lambda: result.update(eof=until_eof(hung, 10)))
        t0 = time.time()
        th.start()
        good.drain(7)
        th.join()
        t.ok(good.pings >= 5, "a quiet viewer is pinged every second (%d pings in 7 s)" % good.pings)
        t.ok(good.subscribe("run-x") is not None,
             "and while it answers it stays open (7 s, past the 4 s hang-up)")
        t.is_(close_line(d, good, 0), None, "no close line for it")
        t.ok(result.get("eof"), "a viewer that stops answering is closed")
        line = close_line(d, hung_port)
        t.ok(line and "no pong for 4 s: a ping went unanswered for 3 s (ws-ping)" in line,
             "the line says it left a ping unanswered", line)
        # Long past the hang-up, a viewer that answered every ping and
        # then drops is not taken for one that stopped answering.
        good_port = good.sock.getsockname()[1]
        good.sock.close()
        line = close_line(d, good_port)
        t.ok(line and "the connection ended without a close frame" in line,
             "the viewer that answered, gone after 7 s, is logged as gone", line)
        t.is_(d.get("/healthz")[0], 200, "the daemon is fine")
finally:
    os.unlink(conf)

t.done()
