#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/stream.py: the live stream's two figures, on the real gradwatchd
(started here on free loopback ports with a scratch database).

1. Alert latency: --clients WebSocket viewers subscribed to "*"; each of
   --alerts times a fresh run is sent a step with a NaN loss (the detector
   fires "nonfinite" at once), and the time from just before the ingest
   request to the alert message's arrival is taken at every viewer.
   Goal: p99 under 20 ms with 100 viewers.
2. Ingest rate with --clients viewers connected versus none, in the same
   daemon: bench/ingest runs --seconds at a time, alternating without and
   with viewers (ABBA order over --rounds pairs, so a trend cancels out).
   Goal: under 5% apart, judged on the median of each round's ratio (the
   two runs of a round are back to back; a shared machine drifts more
   than that between rounds).

Prints what it measures and RESULT lines for bench/run.sh.  Traffic goes
to 127.0.0.1 only; every process it starts is stopped on exit.
"""
import argparse
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request

TOP = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "lib"))
from gwtest import BUILD, Daemon  # noqa: E402
from wsclient import WebSocket  # noqa: E402


class Viewer:
    """A subscribed WebSocket read without blocking: frames parsed as they come."""

    def __init__(self, port, runs="*"):
        ws = WebSocket("127.0.0.1", port)
        ws.send_json({"subscribe": runs})
        while ws.recv_json(10).get("type") != "subscribed":
            pass
        self.sock = ws.sock
        self.buf = bytearray(ws.buf)
        self.sock.setblocking(False)

    def messages(self):
        """Read what is there; the complete text messages in it."""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                self.buf += data
                if len(data) < 65536:
                    break
        except BlockingIOError:
            pass
        out = []
        b = self.buf
        i = 0
        while len(b) - i >= 2:
            n = b[i + 1] & 0x7F
            h = 2
            if n == 126:
                if len(b) - i < 4:
                    break
                n = struct.unpack_from("!H", b, i + 2)[0]
                h = 4
            elif n == 127:
                if len(b) - i < 10:
                    break
                n = struct.unpack_from("!Q", b, i + 2)[0]
                h = 10
            if len(b) - i < h + n:
                break
            if b[i] & 0x0F == 0x1:
                out.append(bytes(b[i + h:i + h + n]))
            i += h + n
        del b[:i]
        return out

    def close(self):
        self.sock.close()


def post(url, body):
    req = urllib.request.Request(url + "/api/v1/ingest", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def pct(v, p):
    v = sorted(v)
    if not v:
        return float("nan")
    k = (len(v) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


class Poster:
    """Ingest requests on one keep-alive connection, sent without blocking
    the reader: the answer is read in the same select loop."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = port
        self.buf = b""

    def send(self, body):
        data = json.dumps(body).encode()
        self.sock.sendall(b"POST /api/v1/ingest HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                          b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                          % (self.port, len(data)) + data)

    def answered(self):
        """1 once a whole answer is in (then forgotten), else 0."""
        try:
            self.buf += self.sock.recv(65536)
        except BlockingIOError:
            pass
        head, sep, rest = self.buf.partition(b"\r\n\r\n")
        if not sep:
            return 0
        n = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                n = int(line.split(b":")[1])
        if len(rest) < n:
            return 0
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError("ingest: %r" % head[:40])
        self.buf = rest[n:]
        return 1


def latency(d, nclients, nalerts):
    """Alert latency at each of nclients viewers, in ms; and how many missed."""
    viewers = [Viewer(d.ws_port) for _ in range(nclients)]
    poster = Poster(d.port)
    sel = selectors.DefaultSelector()
    for i, v in enumerate(viewers):
        sel.register(v.sock, selectors.EVENT_READ, i)
    poster.sock.setblocking(False)
    sel.register(poster.sock, selectors.EVENT_READ, -1)

    def wait(pred, seconds):
        """Run the loop until pred(i, msg, now) has been true for every viewer."""
        got = [None] * nclients
        left = nclients
        deadline = time.perf_counter() + seconds
        answered = False
        while (left or not answered) and time.perf_counter() < deadline:
            for key, _ in sel.select(0.05):
                i = key.data
                if i == -1:
                    answered = answered or poster.answered()
                    continue
                for m in viewers[i].messages():
                    now = time.perf_counter()
                    if got[i] is None and pred(m):
                        got[i] = now
                        left -= 1
        return got

    lat = []
    missed = 0
    tag = "%d-%d" % (os.getpid(), nclients)
    for k in range(nalerts):
        run = "lat-%s-%d" % (tag, k)
        needle = ('"run":"%s"' % run).encode()
        # The run's first step, and every viewer has seen it: nothing in flight.
        poster.send({"run": run, "steps": [{"step": 0, "loss": 1.0}]})
        wait(lambda m: b'"type":"step"' in m and needle in m, 5)
        t0 = time.perf_counter()
        poster.send({"run": run, "steps": [{"step": 1, "loss": "NaN"}]})
        got = wait(lambda m: b'"type":"alert"' in m and needle in m, 5)
        for g in got:
            if g is None:
                missed += 1
            else:
                lat.append((g - t0) * 1000)
    for v in viewers:
        v.close()
    poster.sock.close()
    return lat, missed


def viewers_main(port, n, ready_fd):
    """--viewers: hold n subscribed viewers and read everything until killed."""
    vs = [Viewer(port) for _ in range(n)]
    os.write(ready_fd, b"1")
    os.close(ready_fd)
    sel = selectors.DefaultSelector()
    for v in vs:
        sel.register(v.sock, selectors.EVENT_READ, v)
    count = 0
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    while not stop:
        for key, _ in sel.select(0.2):
            count += len(key.data.messages())
    cpu = time.process_time()
    print("  (viewers: %d messages, %.2f s of CPU)" % (count, cpu), flush=True)


def ingest(d, seconds, conns):
    out = subprocess.run([os.path.join(BUILD, "bench", "ingest"), "--url", "127.0.0.1:%d" % d.port,
                          "--pid", str(d.proc.pid), "--form", "compact", "--seconds", str(seconds),
                          "--conns", str(conns)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("RESULT"):
            kv = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
            return float(kv["points_per_s"]), float(kv["cpu_us_per_point"])
    raise RuntimeError("bench/ingest printed no RESULT:\n" + out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--alerts", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=4)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--viewers", type=int, nargs=2, metavar=("PORT", "FD"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.viewers:
        viewers_main(a.viewers[0], a.clients, a.viewers[1])
        return
    with Daemon() as d:
        lat, missed = latency(d, a.clients, a.alerts)
        p50, p99, mx = pct(lat, 50), pct(lat, 99), max(lat) if lat else float("nan")
        print("alert latency, ingest request to a subscribed viewer, %d viewers, %d alerts:"
              % (a.clients, a.alerts))
        print("  p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d samples, %d missed)"
              % (p50, p99, mx, len(lat), missed))
        print("RESULT bench=stream_latency clients=%d alerts=%d p50_ms=%.3f p99_ms=%.3f max_ms=%.3f "
              "missed=%d" % (a.clients, a.alerts, p50, p99, mx, missed), flush=True)

        rates = {0: [], a.clients: []}
        cpus = {0: [], a.clients: []}
        pairs = []  # (without, with) of each round, run back to back
        for r in range(a.rounds):
            got = {}
            for n in ([0, a.clients] if r % 2 == 0 else [a.clients, 0]):
                proc = None
                if n:
                    rfd, wfd = os.pipe()
                    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--clients", str(n),
                                             "--viewers", str(d.ws_port), str(wfd)], pass_fds=(wfd,))
                    os.close(wfd)
                    os.read(rfd, 1)
                    os.close(rfd)
                try:
                    pps, cpu = ingest(d, a.seconds, a.conns)
                finally:
                    if proc:
                        proc.terminate()
                        proc.wait(10)
                got[n] = pps
                rates[n].append(pps)
                cpus[n].append(cpu)
                print("  ingest with %3d viewers: %.0f points/s, daemon %.4f us CPU/point"
                      % (n, pps, cpu), flush=True)
            pairs.append(got[a.clients] / got[0])

        def med(v):
            v = sorted(v)
            return (v[(len(v) - 1) // 2] + v[len(v) // 2]) / 2

        none, some = med(rates[0]), med(rates[a.clients])
        cnone, csome = med(cpus[0]), med(cpus[a.clients])
        # Each round's two runs are minutes closer than the medians' runs:
        # their ratio is what the goal is judged on (the machine drifts).
        ratio = med(pairs)
        diff = abs(1 - ratio) * 100
        print("ingest rate: with %d viewers / without, round by round: %s; median %.3f (%.1f%% apart)"
              % (a.clients, " ".join("%.3f" % x for x in pairs), ratio, diff))
        print("  medians %.0f points/s without viewers, %.0f with; daemon CPU %.4f vs %.4f us/point"
              % (none, some, cnone, csome))
        print("RESULT bench=stream_ingest viewers=%d none_points_per_s=%.0f viewers_points_per_s=%.0f "
              "paired_ratio=%.4f diff_pct=%.2f none_cpu_us_per_point=%.4f viewers_cpu_us_per_point=%.4f"
              % (a.clients, none, some, ratio, diff, cnone, csome))


if __name__ == "__main__":
    main()
