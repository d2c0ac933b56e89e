#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/notify.py: does alert delivery cost ingest anything, even when its
receivers hang?

--rounds rounds, each of two runs on fresh daemons in alternating order:
one with three receivers (a webhook that accepts connections and never
answers, a Slack webhook that answers after a second, an Alertmanager-like
sink that answers at once), one with none.  In both, bench/ingest loads the
daemon for --seconds on --conns connections while a pump makes fresh runs
fire and resolve a nonfinite alert 20 times a second (each change a notice
per receiver).  A round's ratio is the with-receivers rate over the
without; the goal is the median ratio within 5% of 1.  The databases live
in /dev/shm: this machine's virtual disk swings rates by 2x between runs
seconds apart, which no 5% comparison survives, and the question here is
the notifier's cost, not the disk's.

Prints what it measures and a RESULT line for bench/run.sh.  Traffic goes
to 127.0.0.1 only; every process and server it starts is stopped on exit.
"""
import argparse
import http.server
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request

TOP = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "lib"))
from gwtest import Daemon, bench_ingest, remove_db  # noqa: E402


class Hang:
    """Accepts connections and never reads or answers them."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = "http://127.0.0.1:%d/hook" % self.sock.getsockname()[1]
        self.held = []
        self.stop = False
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
                self.held.append(c)
            except OSError:
                return

    def close(self):
        self.stop = True
        self.sock.close()
        for c in self.held:
            c.close()


class Answer:
    """Answers every POST with 200 after delay seconds; counts them."""

    def __init__(self, delay):
        outer = self
        self.count = 0

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(delay)
                outer.count += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d/x" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def post(url, body):
    req = urllib.request.Request(url + "/api/v1/ingest", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def pump(url, stop, made, rate=20):
    """Fresh runs that fire and resolve a nonfinite alert, rate a second."""
    k = 0
    steps = [{"step": s, "loss": "NaN" if s == 5 else 1.0, "grad_norm": 1.0} for s in range(8)]
    while not stop.is_set():
        t0 = time.time()
        post(url, {"run": "pump-%d" % k, "meta": {"detector": {"nonfinite.resolve_steps": 1}},
                   "steps": steps})
        made[0] += 1
        k += 1
        time.sleep(max(0.0, 1.0 / rate - (time.time() - t0)))


def one(a, receivers, tmp):
    db = os.path.join(tmp, "gw.db")
    args = []
    for kind, url in receivers:
        args += ["--" + kind, url]
    with Daemon(*args, db=db, tmp=tmp) as d:
        stop = threading.Event()
        made = [0]
        th = threading.Thread(target=pump, args=(d.url, stop, made), daemon=True)
        th.start()
        kv = bench_ingest(d, a.seconds, a.conns)
        stop.set()
        th.join()
        with urllib.request.urlopen(d.url + "/metrics", timeout=30) as r:
            metrics = r.read().decode()
    remove_db(db)
    sent = sum(float(l.rpartition(" ")[2]) for l in metrics.splitlines()
               if l.startswith("gradwatch_notifications_total") and 'result="sent"' in l)
    return float(kv["points_per_s"]), float(kv["cpu_us_per_point"]), made[0] / a.seconds, sent


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--conns", type=int, default=4)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="gw-notify-bench.", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    hang, slow, sink = Hang(), Answer(1.0), Answer(0.0)
    receivers = [("webhook", hang.url), ("slack-webhook", slow.url), ("alertmanager", sink.url)]
    ratios, cpus, withs, withouts, pumps, sents = [], [], [], [], [], []
    try:
        for i in range(a.rounds):
            order = (True, False) if i % 2 == 0 else (False, True)
            got, cpu = {}, {}
            for w in order:
                rate, cpu[w], p, sent = one(a, receivers if w else [], tmp)
                got[w] = rate
                pumps.append(p)
                if w:
                    sents.append(sent)
            withs.append(got[True])
            withouts.append(got[False])
            ratios.append(got[True] / got[False])
            cpus.append(cpu[True] / cpu[False])
            print("round %d: with receivers %.0f, without %.0f points/s: ratio %.3f; daemon CPU a point "
                  "%.3f vs %.3f us" % (i + 1, got[True], got[False], ratios[-1], cpu[True], cpu[False]),
                  flush=True)
    finally:
        hang.close()
        slow.close()
        sink.close()
        shutil.rmtree(tmp, ignore_errors=True)
    r = statistics.median(ratios)
    print("alert changes pumped: %.0f runs a second (2 notices each per receiver); "
          "deliveries per with-run (the sinks that answer): median %.0f" % (statistics.median(pumps),
                                                                            statistics.median(sents)))
    print("ingest with a hanging webhook, a 1 s Slack and an Alertmanager vs none: median ratio %.3f "
          "(%.1f%% apart) over %d rounds" % (r, abs(1 - r) * 100, a.rounds))
    print("daemon CPU a point, with / without: median ratio %.3f" % statistics.median(cpus))
    print("RESULT bench=notify rounds=%d with_points_per_s=%.0f without_points_per_s=%.0f "
          "paired_ratio=%.4f diff_pct=%.2f cpu_ratio=%.4f alert_runs_per_s=%.1f deliveries=%.0f"
          % (a.rounds, statistics.median(withs), statistics.median(withouts), r, abs(1 - r) * 100,
             statistics.median(cpus), statistics.median(pumps), statistics.median(sents)))


if __name__ == "__main__":
    main()
