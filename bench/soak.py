#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/soak.py: the daemon under a steady mixed load for --seconds
(BENCH_SOAK in `make bench`, 600 by default there): does anything grow?

The real gradwatchd runs on a scratch database on the disk under TMPDIR.
Against it, for the whole time:
- --writers ingest processes, each on one keep-alive connection, paced to
  --rate requests a second of --steps steps x (--layers layers + loss,
  grad_norm, lr, time) in the compact form.  Writer 0 feeds one run that
  lives throughout ("soak-live"); the others write runs of --run-requests
  requests each, finish them (one in eight as failed) and start new ones,
  so the run count grows.  Each run gets a NaN loss at one step (a
  nonfinite alert fires, then resolves), and the live run one every
  5,000 steps;
- a query thread, every --query-interval seconds, in turn: the runs list,
  the live run, its points (loss and grad_norm, 2,000 at most), its
  heatmap, the firing alerts, a finished run's alerts, that run's export,
  and /metrics;
- one WebSocket viewer subscribed to the live run by name;
- a sampler: every --sample seconds, the daemon's RssAnon (/proc/PID/status),
  open descriptors, threads, and the size of the database's -wal file.

At the end it prints RssAnon after the warm-up (the median of the samples
from the warm-up's end to 5% of the time later) against the end (the
median of the last 5%; two samples at least), the slope after the warm-up
(least squares, MiB a minute), the largest WAL and the database's size,
requests and errors, and the viewer's messages.  The warm-up is --warmup
of the time (0.2) but at least --warmup-min seconds (120): the daemon's
bounded memory (the writer's 64 MiB page cache, up to 32 MiB of open
tails) fills in about 100 s at the default load, whatever the soak's
length.  It exits 1 if RssAnon grew after the warm-up by more than 8 MiB
or 5%, whichever is more (run.sh's rule for the long run); if the WAL
passed --wal-max-mib (256); if the descriptors grew by more than 32; if
any request failed (a non-200 answer, 503 included, or a broken
connection); or if the viewer was disconnected, was sent a resync or an
error, or had no step message in the last 5 seconds of the load.  With
less than 120 s after the warm-up (--seconds under 240 by default) the
memory figures are printed from 20% of the time on, and not judged.
--trace FILE writes every sample.

Prints a RESULT bench=soak line for bench/run.sh.  Traffic goes to
127.0.0.1 only; every process it starts is stopped on exit.
"""
import argparse
import http.client
import json
import math
import multiprocessing
import os
import random
import socket
import statistics
import sys
import threading
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "lib"))
from gwtest import Daemon  # noqa: E402
from wsclient import Closed, WebSocket  # noqa: E402

LIVE = "soak-live"


def num(v):
    return '"NaN"' if math.isnan(v) else repr(v)


def writer(w, port, args, stop, out):
    """One ingest process: paced requests until stop; puts its counts on out."""
    rng = random.Random(w)
    names = ["model.layers.%d.mlp.weight" % i for i in range(args.layers)]
    head = ',"layer_names":%s' % json.dumps(names)
    level = [rng.lognormvariate(-2, 1) for _ in names]
    c = {"requests": 0, "points": 0, "errors": 0, "runs": 0, "finished": 0, "first_error": ""}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    run, seq, step, nan_at = None, 0, 0, -1
    t0 = time.monotonic()
    i = 0

    def fail(what):
        c["errors"] += 1
        if not c["first_error"]:
            c["first_error"] = what

    while not stop.is_set():
        if run is None or (w != 0 and seq == args.run_requests):
            if run is not None:
                status = "failed" if rng.random() < 0.125 else "finished"
                try:
                    conn.request("POST", "/api/v1/runs/%s/finish" % run,
                                 json.dumps({"status": status}),
                                 {"Content-Type": "application/json"})
                    r = conn.getresponse()
                    r.read()
                    c["requests"] += 1
                    if r.status != 200:
                        fail("finish %s: %d" % (run, r.status))
                    c["finished"] += 1
                except (OSError, http.client.HTTPException) as e:
                    fail("finish %s: %s" % (run, e))
                    conn.close()
            run = LIVE if w == 0 else "soak-w%d-r%d" % (w, c["runs"])
            c["runs"] += 1
            seq = step = 0
            nan_at = rng.randrange(args.run_requests * args.steps) if w else -1
        steps = []
        for k in range(args.steps):
            loss = 2.0 * math.exp(-step / 20000) + rng.gauss(0, 0.01)
            if step == nan_at or (w == 0 and step % 5000 == 4999):
                loss = float("nan")
            lay = ",".join(num(lv * rng.lognormvariate(0, 0.1)) for lv in level)
            steps.append('{"step":%d,"time":%r,"loss":%s,"grad_norm":%r,"lr":0.001,'
                         '"layers":[%s]}' % (step, time.time(), num(loss),
                                             rng.lognormvariate(0, 0.2), lay))
            step += 1
        body = ('{"run":"%s"%s,"steps":[%s]}' % (run, head, ",".join(steps))).encode()
        try:
            conn.request("POST", "/api/v1/ingest", body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            c["requests"] += 1
            if r.status == 200:
                c["points"] += args.steps * (args.layers + 4)
            else:
                fail("ingest %s: %d" % (run, r.status))
        except (OSError, http.client.HTTPException) as e:
            fail("ingest %s: %s" % (run, e))
            conn.close()
            time.sleep(0.1)
        seq += 1
        i += 1
        delay = t0 + i / args.rate - time.monotonic()
        if delay > 0:
            stop.wait(delay)
    out.put(c)


class Viewer(threading.Thread):
    """One WebSocket viewer of the live run: counts what it is sent."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.ws = WebSocket("127.0.0.1", port)
        self.ws.send_json({"subscribe": LIVE})
        self.types = {}
        self.last_step = 0.0
        self.closed = None
        self.stop = False

    def run(self):
        while not self.stop:
            try:
                m = self.ws.recv_json(1.0)
            except socket.timeout:
                continue
            except (Closed, OSError, ValueError) as e:
                self.closed = str(e) or type(e).__name__
                return
            t = m.get("type", "?")
            self.types[t] = self.types.get(t, 0) + 1
            if t == "step":
                self.last_step = time.monotonic()


class Querier(threading.Thread):
    """The dashboard's and a script's reads, one every interval, in turn."""

    def __init__(self, port, interval):
        super().__init__(daemon=True)
        self.port = port
        self.interval = interval
        self.requests = 0
        self.errors = 0
        self.first_error = ""
        self.slow = (0.0, "")
        self.stop = threading.Event()

    def get(self, path):
        t0 = time.monotonic()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            conn.request("GET", path)
            r = conn.getresponse()
            data = r.read()
            conn.close()
            status = r.status
        except (OSError, http.client.HTTPException) as e:
            data, status = b"", str(e)
        dt = time.monotonic() - t0
        self.requests += 1
        if dt > self.slow[0]:
            self.slow = (dt, path.split("?")[0])
        if status != 200:
            self.errors += 1
            if not self.first_error:
                self.first_error = "GET %s: %s" % (path, status)
            return None
        return data

    def run(self):
        paths = ["/api/v1/runs", "/api/v1/runs/" + LIVE,
                 "/api/v1/runs/%s/points?series=loss,grad_norm&max=2000" % LIVE,
                 "/api/v1/runs/%s/heatmap" % LIVE, "/api/v1/alerts?state=firing",
                 None, None, "/metrics"]
        done = None
        i = 0
        while not self.stop.wait(self.interval):
            p = paths[i % len(paths)]
            if p is None:
                # A finished run, found in the runs list.
                if done is None or i % len(paths) == 5:
                    data = self.get("/api/v1/runs?status=finished")
                    runs = json.loads(data)["runs"] if data else []
                    done = runs[len(runs) // 2]["run"] if runs else None
                    if done is not None:
                        self.get("/api/v1/alerts?run=" + done)
                elif done is not None:
                    self.get("/api/v1/runs/%s/export?format=jsonl" % done)
            else:
                self.get(p)
            i += 1


def proc_status(pid):
    """RssAnon (KiB), threads, descriptors of pid."""
    anon = threads = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                anon = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return anon, threads, len(os.listdir("/proc/%d/fd" % pid))


def median_of(samples, lo, hi, key):
    xs = [s[key] for s in samples if lo <= s["t"] <= hi]
    return statistics.median(xs) if xs else float("nan")


def slope(samples, since, key):
    """Least-squares slope of key over time after since, per minute."""
    pts = [(s["t"], s[key]) for s in samples if s["t"] >= since]
    if len(pts) < 3:
        return float("nan")
    mt = statistics.fmean(t for t, _ in pts)
    mv = statistics.fmean(v for _, v in pts)
    den = sum((t - mt) ** 2 for t, _ in pts)
    return 60 * sum((t - mt) * (v - mv) for t, v in pts) / den if den else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--rate", type=float, default=20, help="requests a second a writer")
    ap.add_argument("--steps", type=int, default=10, help="steps a request")
    ap.add_argument("--layers", type=int, default=64)
    ap.add_argument("--run-requests", type=int, default=100, help="requests a finished run")
    ap.add_argument("--query-interval", type=float, default=0.25)
    ap.add_argument("--sample", type=float, default=2)
    ap.add_argument("--warmup", type=float, default=0.2, help="share of the time")
    ap.add_argument("--warmup-min", type=float, default=120, help="seconds, at least")
    ap.add_argument("--trace", help="write every sample to this file (tab-separated)")
    ap.add_argument("--wal-max-mib", type=float, default=256)
    args = ap.parse_args()

    d = Daemon()
    d.start()
    pid = d.proc.pid
    wal = d.db + "-wal"
    stop = multiprocessing.Event()
    out = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=writer, args=(w, d.port, args, stop, out))
             for w in range(args.writers)]
    viewer = querier = None
    samples = []
    died = None
    try:
        for p in procs:
            p.start()
        viewer = Viewer(d.ws_port)
        viewer.start()
        querier = Querier(d.port, args.query_interval)
        querier.start()
        t0 = time.monotonic()
        while True:
            now = time.monotonic() - t0
            if d.proc.poll() is not None:
                died = "gradwatchd exited with %s after %.0f s" % (d.proc.returncode, now)
                break
            anon, threads, fds = proc_status(pid)
            try:
                walsz = os.stat(wal).st_size
            except FileNotFoundError:
                walsz = 0
            samples.append({"t": now, "anon": anon, "threads": threads, "fds": fds, "wal": walsz,
                            "db": os.stat(d.db).st_size})
            if now >= args.seconds:
                break
            time.sleep(min(args.sample, max(0.0, args.seconds - now)))
        viewer_recent = time.monotonic() - viewer.last_step
    finally:
        stop.set()
        counts = []
        for p in procs:
            try:
                counts.append(out.get(timeout=40))
            except Exception:
                pass
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.terminate()
        if querier is not None:
            querier.stop.set()
            querier.join(70)
        if viewer is not None:
            viewer.stop = True
            viewer.join(5)
            viewer.ws.close()
        rc_daemon = d.stop() if d.alive() else None
        d.__exit__(None, None, None)

    if args.trace:
        with open(args.trace, "w") as f:
            f.write("t\tanon_kb\twal\tdb\tfds\tthreads\n")
            for s in samples:
                f.write("%.1f\t%d\t%d\t%d\t%d\t%d\n"
                        % (s["t"], s["anon"], s["wal"], s["db"], s["fds"], s["threads"]))
    secs = args.seconds
    warm = max(args.warmup * secs, args.warmup_min)
    judged = secs - warm >= 120
    if not judged:
        warm = min(warm, args.warmup * secs)	# still print a figure
    win = max(0.05 * secs, 2.5 * args.sample)	# two samples at least
    a_warm = median_of(samples, warm, warm + win, "anon")
    a_end = median_of(samples, secs - win, secs + 1, "anon")
    grow = a_end - a_warm
    tol = max(8192, 0.05 * a_warm)
    mib = lambda kb: kb / 1024
    sl = slope(samples, warm, "anon") / 1024
    wal_max = max((s["wal"] for s in samples), default=0) / 1048576
    fd_warm = median_of(samples, warm, warm + win, "fds")
    fd_end = median_of(samples, secs - win, secs + 1, "fds")
    req = sum(c["requests"] for c in counts)
    ing_err = sum(c["errors"] for c in counts)
    points = sum(c["points"] for c in counts)
    runs = sum(c["runs"] for c in counts)
    first = [c["first_error"] for c in counts if c["first_error"]] + \
        ([querier.first_error] if querier.first_error else [])
    vmsgs = sum(viewer.types.values())
    connected = viewer.closed is None and not viewer.types.get("resync") and \
        not viewer.types.get("error") and viewer_recent < 5

    print("%.0f s, %d writers at %.0f requests/s of %d steps x %d layers; database in %s"
          % (secs, args.writers, args.rate, args.steps, args.layers, os.path.dirname(d.db)))
    print("RssAnon: %.1f MiB after the warm-up (%.0f s), %.1f MiB at the end: %+.1f MiB "
          "(bound %.1f%s), slope %+.2f MiB/min; first %.1f, largest %.1f MiB"
          % (mib(a_warm), warm, mib(a_end), mib(grow), mib(tol),
             "" if judged else ", not judged: under 120 s after the warm-up", sl,
             mib(samples[0]["anon"]) if samples else 0,
             mib(max((s["anon"] for s in samples), default=0))))
    print("WAL: largest %.1f MiB (bound %.0f); database %.0f MiB at the end; descriptors "
          "%d -> %d, threads %d" % (wal_max, args.wal_max_mib, samples[-1]["db"] / 1048576,
                                    fd_warm, fd_end, samples[-1]["threads"]))
    print("ingest: %d requests (%d runs, %d finished), %d points acknowledged (%.0f/s), %d errors"
          % (req, runs, sum(c["finished"] for c in counts), points, points / secs, ing_err))
    print("queries: %d, %d errors, slowest %.0f ms (%s)"
          % (querier.requests, querier.errors, querier.slow[0] * 1000, querier.slow[1]))
    print("viewer: %s, %d messages (%s), last step message %.1f s before the end"
          % ("connected" if connected else "DISCONNECTED (%s)" % (viewer.closed or "resync/error/silent"),
             vmsgs, ", ".join("%s %d" % kv for kv in sorted(viewer.types.items())), viewer_recent))
    if first:
        print("first errors: " + "; ".join(first[:4]))
    fails = []
    if died:
        fails.append(died)
    if rc_daemon not in (0, None):
        fails.append("gradwatchd exited %s on SIGTERM" % rc_daemon)
    if len(counts) != args.writers:
        fails.append("%d of %d writers reported" % (len(counts), args.writers))
    if judged and not grow <= tol:
        fails.append("RssAnon grew %.1f MiB after the warm-up" % mib(grow))
    if wal_max > args.wal_max_mib:
        fails.append("WAL reached %.1f MiB" % wal_max)
    if fd_end - fd_warm > 32:
        fails.append("descriptors grew from %d to %d" % (fd_warm, fd_end))
    if ing_err or querier.errors:
        fails.append("%d ingest and %d query errors" % (ing_err, querier.errors))
    if not connected:
        fails.append("the viewer was disconnected or fell behind")
    print("RESULT bench=soak seconds=%.0f anon_warm_kb=%.0f anon_end_kb=%.0f slope_mib_min=%.3f "
          "wal_max_mib=%.1f requests=%d errors=%d queries=%d query_errors=%d points=%d runs=%d "
          "viewer_msgs=%d viewer_connected=%d fds_warm=%d fds_end=%d mem_judged=%d ok=%d"
          % (secs, a_warm, a_end, sl, wal_max, req, ing_err, querier.requests, querier.errors,
             points, runs, vmsgs, connected, fd_warm, fd_end, judged, not fails))
    if fails:
        print("FAIL: " + "; ".join(fails))
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
