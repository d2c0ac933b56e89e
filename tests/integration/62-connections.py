#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Idle and hostile connections never lock anyone out: with 2,000 idle or
half-sent connections held (slowloris), /healthz and the API still answer
within 100 ms; one address gets at most max-connections-per-ip; a silent
connection is closed after idle-timeout; a request with thousands of
query parameters gets an answer, not a hang."""
import os, socket, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from gwtest import Daemon, TAP
import http.client

HELD = 2000
PER_IP = 50


def timed_get(port, path, timeout=2.0):
    """(status or None, milliseconds) of one GET on a fresh connection."""
    t0 = time.time()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        c.close()
        return r.status, (time.time() - t0) * 1000
    except OSError:
        return None, (time.time() - t0) * 1000


def open_from(src, port, half=False):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(2)
    s.connect(("127.0.0.1", port))
    if half:
        s.sendall(b"GET /api/v1/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    return s


def closed_by_peer(s, wait):
    """True when the daemon closed s within wait seconds."""
    s.settimeout(wait)
    try:
        return s.recv(4096) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


t = TAP()
tmp = os.environ.get("TMPDIR", "/tmp")
conf = os.path.join(tmp, "gw-conn-%d.conf" % os.getpid())
with open(conf, "w") as f:
    f.write("max-connections-per-ip %d\n" % PER_IP)
try:
    with Daemon("-c", conf) as d:
        d.post("/api/v1/ingest", {"run": "r", "steps": [{"step": 0, "loss": 1.0}]})
        held = []
        # 40 source addresses x 50: every one within its address' share.
        for i in range(HELD):
            src = "127.0.0.%d" % (2 + i // PER_IP)
            try:
                held.append(open_from(src, d.port, half=(i % 2 == 1)))
            except OSError:
                break
        t.is_(len(held), HELD, "%d idle and half-sent connections held" % HELD)
        worst = {"/healthz": 0.0, "/api/v1/runs": 0.0}
        bad = []
        for _ in range(10):
            for path in worst:
                st, ms = timed_get(d.port, path)
                worst[path] = max(worst[path], ms)
                if st != 200:
                    bad.append((path, st))
        t.is_(bad, [], "/healthz and /api/v1/runs answer 200 while they are held")
        for path, ms in worst.items():
            t.ok(ms < 100, "%s within 100 ms (slowest of 10: %.1f ms)" % (path, ms))

        # One address past its share: the connections beyond it are closed.
        extra = [open_from("127.0.0.99", d.port) for _ in range(PER_IP + 10)]
        shut = sum(1 for s in extra if closed_by_peer(s, 0.5))
        t.is_(shut, 10, "the 10 connections past max-connections-per-ip %d are refused" % PER_IP)
        st, _ = timed_get(d.port, "/healthz")
        t.is_(st, 200, "and the others still get answers")
        for s in held + extra:
            s.close()

        # Thousands of query parameters: an error at once, not a hang
        # (libmicrohttpd's pool ran out and its 431 was never sent).
        for n in (4000, 20000):
            q = "&".join("p%d=%d" % (i, i) for i in range(n))
            c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
            t0 = time.time()
            try:
                c.request("GET", "/api/v1/runs/r/points?" + q)
                r = c.getresponse()
                st, body = r.status, r.read().decode()
            except OSError as e:
                st, body = None, repr(e)
            ms = (time.time() - t0) * 1000
            c.close()
            t.ok(st == 400 and "too many query parameters" in body and ms < 2000,
                 "%d query parameters: 400 in %.0f ms (%s %s)" % (n, ms, st, body[:80]))
        q = "&".join(["series=loss"] + ["x%d=1" % i for i in range(255)])
        st, body = d.get("/api/v1/runs/r/points?" + q)
        t.is_(st, 200, "256 query parameters are still read (%s)" % str(body)[:60])
        st, _ = timed_get(d.port, "/healthz")
        t.is_(st, 200, "the daemon answers after it")

    with open(conf, "w") as f:
        f.write("idle-timeout 2\n")
    with Daemon("-c", conf) as d:
        silent = open_from("127.0.0.1", d.port)
        half = open_from("127.0.0.1", d.port, half=True)
        t0 = time.time()
        a, b = closed_by_peer(silent, 5), closed_by_peer(half, 1)
        t.ok(a and b, "idle-timeout 2: a silent and a half-sent connection closed (%.1f s)"
             % (time.time() - t0))
        st, _ = d.get("/healthz")
        t.is_(st, 200, "the daemon answers after closing them")
finally:
    os.unlink(conf)
t.done()
