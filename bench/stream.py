#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/stream.py: the live stream's two figures, on the real gradwatchd
(started here on free loopback ports with a scratch database).

1. Alert latency: --clients WebSocket viewers subscribed to "*"; each of
   --alerts times a fresh run is sent a step with a NaN loss (the detector
   fires "nonfinite" at once), and the time from just before the ingest
   request to the alert message's arrival is taken at every viewer.
   Goal: p99 under 20 ms with 100 viewers.
2. Ingest rate with --clients viewers connected versus none: --rounds
   rounds, each on a fresh daemon under one continuous bench/ingest load,
   of three --seconds windows, without/with/without viewers or the reverse
   (alternating), the viewers connecting or leaving between windows (and
   --settle seconds for that to take effect).  The daemon's committed-points
   counter gives each window's rate; a round's ratio is its with-viewers
   rate over its without, the outer two windows averaged, so that a steady
   drift within the round cancels.  Goal: under 5% apart, judged on the
   median of the rounds' ratios.  The rounds' database is in memory unless
   --disk: on this machine's virtual disk, rates swing by 2x between
   windows seconds apart, which no 5% comparison survives; without the
   disk the daemon is CPU-bound, which shows the viewers' cost in full
   (nothing of it hides behind an fsync).

Prints what it measures and RESULT lines for bench/run.sh.  Traffic goes
to 127.0.0.1 only; every process it starts is stopped on exit.
"""
import argparse
import json
import os
import selectors
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


def viewers_main(n):
    """--viewers: on "connect PORT" (a line on stdin) connect n subscribed viewers
    and read everything they are sent; on "close" close them.  Each command
    is answered with a line once done.  The bytes are read and counted, not
    parsed: this process shares the machine with the daemon, and should take
    no more of it than a viewer's reading must."""
    sel = selectors.DefaultSelector()
    sel.register(sys.stdin, selectors.EVENT_READ, None)
    vs = []
    nbytes = 0
    buf = bytearray(1 << 20)
    while True:
        for key, _ in sel.select(1):
            if key.data is not None:
                try:
                    nbytes += key.data.sock.recv_into(buf)
                except BlockingIOError:
                    pass
                continue
            cmd = sys.stdin.readline().split()
            if cmd[:1] == ["connect"]:
                vs = [Viewer(int(cmd[1])) for _ in range(n)]
                for v in vs:
                    sel.register(v.sock, selectors.EVENT_READ, v)
            elif cmd == ["close"]:
                for v in vs:
                    sel.unregister(v.sock)
                    v.close()
                vs = []
            else:
                print("viewers: %.1f MB read, %.2f s of CPU" % (nbytes / 1e6, time.process_time()),
                      flush=True)
                return
            print("ok", flush=True)


def metric(d, name):
    """One counter or gauge of the daemon's /metrics."""
    with urllib.request.urlopen(d.url + "/metrics", timeout=30) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise RuntimeError("/metrics has no " + name)


def cpu_seconds(pid):
    """The process's user + system CPU time so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def med(v):
    v = sorted(v)
    return (v[(len(v) - 1) // 2] + v[len(v) // 2]) / 2


def compare(a):
    """Ingest rate without and with a.clients viewers, round by round; each
    round on a fresh daemon, under one continuous load, three windows."""
    helper = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--clients",
                               str(a.clients), "--viewers"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def viewers(d, cmd, want):
        helper.stdin.write(cmd + "\n")
        helper.stdin.flush()
        if helper.stdout.readline().strip() != "ok":
            raise RuntimeError("viewers: no answer to " + cmd)
        # The daemon has them (or has let them go) before the window starts.
        deadline = time.time() + 10
        while metric(d, "gradwatch_stream_clients") != want:
            if time.time() > deadline:
                raise RuntimeError("the daemon does not count %d viewers" % want)
            time.sleep(0.02)

    rates = {0: [], a.clients: []}
    cpus = {0: [], a.clients: []}
    ratios = []
    try:
        for r in range(a.rounds):
            order = [0, a.clients, 0] if r % 2 == 0 else [a.clients, 0, a.clients]
            got = {0: [], a.clients: []}
            with Daemon(db=None if a.disk else ":memory:") as d:
                load = subprocess.Popen([os.path.join(BUILD, "bench", "ingest"), "-q", "--url",
                                         "127.0.0.1:%d" % d.port, "--form", "compact", "--seconds",
                                         "3600", "--conns", str(a.conns)], stdout=subprocess.DEVNULL)
                try:
                    on = 0
                    time.sleep(a.warmup)
                    for n in order:
                        if n != on:
                            viewers(d, "connect %d" % d.ws_port if n else "close", n)
                            on = n
                            time.sleep(a.settle)
                        if load.poll() is not None:
                            raise RuntimeError("bench/ingest stopped early")
                        p0, c0, t0 = metric(d, "gradwatch_ingest_points_total"), \
                            cpu_seconds(d.proc.pid), time.perf_counter()
                        time.sleep(a.seconds)
                        p1, c1, t1 = metric(d, "gradwatch_ingest_points_total"), \
                            cpu_seconds(d.proc.pid), time.perf_counter()
                        pps = (p1 - p0) / (t1 - t0)
                        cpu = (c1 - c0) * 1e6 / max(p1 - p0, 1)
                        got[n].append(pps)
                        rates[n].append(pps)
                        cpus[n].append(cpu)
                        print("  round %2d: %3d viewers: %.0f points/s, daemon %.4f us CPU/point"
                              % (r + 1, n, pps, cpu), flush=True)
                    if on:
                        viewers(d, "close", 0)
                finally:
                    load.terminate()
                    load.wait(10)
            # The middle window against the mean of the two around it:
            # a steady drift within the round cancels.
            ratios.append((sum(got[a.clients]) / len(got[a.clients])) /
                          (sum(got[0]) / len(got[0])))
    finally:
        helper.stdin.write("quit\n")
        helper.stdin.flush()
        print("  (" + helper.stdout.readline().strip() + ")", flush=True)
        helper.wait(10)
    return rates, cpus, ratios


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--alerts", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=2, help="one window")
    ap.add_argument("--settle", type=float, default=0.5, help="after viewers (dis)connect")
    ap.add_argument("--warmup", type=float, default=2, help="load before a round's first window")
    ap.add_argument("--rounds", type=int, default=8, help="rounds of three windows")
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--disk", action="store_true",
                    help="the rounds' database in a file (default: in memory)")
    ap.add_argument("--viewers", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.viewers:
        viewers_main(a.clients)
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

    print("ingest with %d viewers vs none: %d rounds, each on a fresh daemon (database %s) under one "
          "continuous load (%d connections), %g s windows:"
          % (a.clients, a.rounds, "on disk" if a.disk else "in memory", a.conns, a.seconds), flush=True)
    rates, cpus, ratios = compare(a)
    none, some = med(rates[0]), med(rates[a.clients])
    cnone, csome = med(cpus[0]), med(cpus[a.clients])
    # A round's windows are seconds apart, the medians' minutes: the goal
    # is judged on the rounds' ratios (the machine drifts).
    ratio = med(ratios)
    diff = abs(1 - ratio) * 100
    q25, q75 = pct(ratios, 25), pct(ratios, 75)
    print("ingest rate: with %d viewers / without, round by round: %s"
          % (a.clients, " ".join("%.3f" % x for x in ratios)))
    print("  median %.3f (%.1f%% apart); middle half of the rounds %.3f-%.3f"
          % (ratio, diff, q25, q75))
    print("  medians %.0f points/s without viewers, %.0f with; daemon CPU %.4f vs %.4f us/point"
          % (none, some, cnone, csome))
    print("RESULT bench=stream_ingest viewers=%d rounds=%d window_s=%g db=%s none_points_per_s=%.0f "
          "viewers_points_per_s=%.0f paired_ratio=%.4f diff_pct=%.2f ratio_q25=%.4f ratio_q75=%.4f "
          "none_cpu_us_per_point=%.4f viewers_cpu_us_per_point=%.4f"
          % (a.clients, a.rounds, a.seconds, "disk" if a.disk else "memory", none, some, ratio, diff,
             q25, q75, cnone, csome))


if __name__ == "__main__":
    main()
