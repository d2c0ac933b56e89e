#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/remote_write.py: what does remote-write cost ingest?

--rounds rounds, each of four runs on fresh daemons in rotating order:
one without a target, one sending every stored point (--remote-write) to
a sink, one to a real VictoriaMetrics (Debian's, on a loopback port,
started afresh each round with its data in a scratch folder, so that
later rounds do not pay for an engine grown by earlier ones), and a
control (below).  In each, bench/ingest loads the daemon for --seconds
on --conns connections (the client library's compact form).  A round's
ratio is a with-target rate over the without.

The goal (remote-write costs ingest under 10%) is judged on the sink:
a target that reads each request and answers 204, as a cluster on other
machines would, so the figure is the sender's own cost (reading the
batches, protobuf, snappy, HTTP).  With VictoriaMetrics on this same
two-core machine the engine's ingestion competes for the same cores as
well; that figure is printed beside it.  Both targets run at idle
priority (chrt --idle), as the sender threads do (SCHED_IDLE).  It also
reports the samples sent and the backlog left when the load stopped: the
sender may lag a burst (the log keeps it), so a backlog is not a loss.
The databases live in /dev/shm, as bench/notify.py's, for the same
reason (this machine's disk swings rates between runs).

A fourth run each round is a control: no target, a busy loop at idle
priority beside the daemon.  What it costs ingest is what any work on
the core the writer does not use costs on this machine (cores that
share the hardware underneath, or a host that runs one as the other
waits), whoever does it; the sender's cost is measured against none,
not against it.

Prints what it measures and a RESULT line for bench/run.sh.  Traffic goes
to 127.0.0.1 only; every process it starts is stopped on exit.
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

TOP = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "lib"))
from gwtest import Daemon, bench_ingest, free_port, remove_db  # noqa: E402

VM = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"


def gauge(text, name):
    return sum(float(l.rpartition(" ")[2]) for l in text.splitlines()
               if l.startswith(name + "{") and 'result="failed"' not in l
               and 'result="dropped"' not in l)


def sink(port):
    """Serve port as a remote-write target that discards what it takes."""
    import http.server

    class Sink(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            # A sender that closes a kept-alive connection is not news.
            if not isinstance(sys.exc_info()[1], ConnectionError):
                super().handle_error(request, client_address)

    Server(("127.0.0.1", port), Sink).serve_forever()


def wait_listening(port, proc, what):
    deadline = time.time() + 20
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %d" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("%s did not listen on %d" % (what, port))


def start_vm(tmp):
    """A fresh VictoriaMetrics at idle priority: (process, write URL)."""
    port = free_port()
    shutil.rmtree(os.path.join(tmp, "vm"), ignore_errors=True)
    # The engine runs at idle priority: in production it is another machine's work.
    proc = subprocess.Popen(["chrt", "--idle", "0", VM, "-storageDataPath=" + os.path.join(tmp, "vm"),
                             "-httpListenAddr=127.0.0.1:%d" % port, "-loggerLevel=ERROR"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(port, proc, "victoria-metrics")
    return proc, "http://127.0.0.1:%d/api/v1/write" % port


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def one(a, target, tmp, busy=False):
    """A daemon sending to target (None: none) under bench/ingest; with
    busy, a busy loop at idle priority beside it (the control)."""
    db = os.path.join(tmp, "gw.db")
    args = ["--remote-write", target + " name=t"] if target else []
    loop = subprocess.Popen(["chrt", "--idle", "0", "sh", "-c", "while :; do :; done"]) if busy else None
    try:
        with Daemon(*args, db=db, tmp=tmp) as d:
            kv = bench_ingest(d, a.seconds, a.conns)
            with urllib.request.urlopen(d.url + "/metrics", timeout=30) as r:
                metrics = r.read().decode()
    finally:
        if loop is not None:
            stop(loop)
    remove_db(db)
    sent = gauge(metrics, "gradwatch_remote_write_samples_total")
    backlog = gauge(metrics, "gradwatch_remote_write_backlog_steps")
    return float(kv["points_per_s"]), float(kv["cpu_us_per_point"]), sent, backlog


TARGETS = ("sink", "vm")
KINDS = ("none",) + TARGETS + ("busy",)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.sink:
        sink(a.sink)
        return
    if not os.path.exists(VM):
        print("remote_write: no %s: make bench installs it (apt-get install victoria-metrics)" % VM)
        sys.exit(1)
    tmp = tempfile.mkdtemp(prefix="gw-rw-bench.", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    sink_port = free_port()
    sink_proc = subprocess.Popen(["chrt", "--idle", "0", sys.executable, os.path.abspath(__file__),
                                  "--sink", str(sink_port)])
    vm = None
    rate = {k: [] for k in KINDS}
    ratio = {k: [] for k in KINDS[1:]}
    cpu = {k: [] for k in TARGETS}
    sent = {k: [] for k in TARGETS}
    backlog = {k: [] for k in TARGETS}
    try:
        wait_listening(sink_port, sink_proc, "the sink")
        targets = {"sink": "http://127.0.0.1:%d/api/v1/write" % sink_port}
        for i in range(a.rounds):
            vm, targets["vm"] = start_vm(tmp)
            got, us = {}, {}
            for k in KINDS[i % len(KINDS):] + KINDS[:i % len(KINDS)]:
                got[k], us[k], n, left = one(a, targets.get(k), tmp, busy=k == "busy")
                rate[k].append(got[k])
                if k in TARGETS:
                    sent[k].append(n / a.seconds)
                    backlog[k].append(left)
            stop(vm)
            vm = None
            line = []
            for k in KINDS[1:]:
                ratio[k].append(got[k] / got["none"])
            for k in TARGETS:
                cpu[k].append(us[k] / us["none"])
                line.append("%s %.0f (ratio %.3f, daemon CPU a point %.3f vs %.3f us, sent %.0f samples/s, "
                            "backlog at the end %.0f steps)" % (k, got[k], ratio[k][-1], us[k], us["none"],
                                                                sent[k][-1], backlog[k][-1]))
            line.append("control, an idle-priority busy loop %.0f (ratio %.3f)" % (got["busy"], ratio["busy"][-1]))
            print("round %d: points/s without a target %.0f; %s" % (i + 1, got["none"], "; ".join(line)),
                  flush=True)
    finally:
        if vm is not None:
            stop(vm)
        stop(sink_proc)
        shutil.rmtree(tmp, ignore_errors=True)
    med = {k: statistics.median(ratio[k]) for k in ratio}
    print("remote-write's cost to ingest, a target off this machine (sink): median ratio %.3f, %.1f%% "
          "(goal < 10%%): %s" % (med["sink"], (1 - med["sink"]) * 100, "PASS" if med["sink"] >= 0.9 else "FAIL"))
    print("with VictoriaMetrics on the same two cores (its ingestion included): median ratio %.3f, %.1f%%"
          % (med["vm"], (1 - med["vm"]) * 100))
    print("control, no target and a busy loop at idle priority beside the daemon: median ratio %.3f, %.1f%% "
          "(what any work on the other core costs ingest on this machine)" % (med["busy"], (1 - med["busy"]) * 100))
    print("daemon CPU a point with / without: sink %.3f, VictoriaMetrics %.3f (medians)"
          % (statistics.median(cpu["sink"]), statistics.median(cpu["vm"])))
    print("RESULT bench=remote_write rounds=%d without_points_per_s=%.0f sink_points_per_s=%.0f "
          "vm_points_per_s=%.0f paired_ratio=%.4f cost_pct=%.2f vm_paired_ratio=%.4f vm_cost_pct=%.2f "
          "cpu_ratio=%.4f sent_samples_per_s=%.0f backlog_steps=%.0f vm_sent_samples_per_s=%.0f "
          "vm_backlog_steps=%.0f busy_paired_ratio=%.4f busy_cost_pct=%.2f"
          % (a.rounds, statistics.median(rate["none"]), statistics.median(rate["sink"]),
             statistics.median(rate["vm"]), med["sink"], (1 - med["sink"]) * 100, med["vm"],
             (1 - med["vm"]) * 100, statistics.median(cpu["sink"]), statistics.median(sent["sink"]),
             statistics.median(backlog["sink"]), statistics.median(sent["vm"]),
             statistics.median(backlog["vm"]), med["busy"], (1 - med["busy"]) * 100))


if __name__ == "__main__":
    main()
