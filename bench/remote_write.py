#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/remote_write.py: what does remote-write cost ingest?

--rounds rounds, each of two runs on fresh daemons in alternating order:
one sending every stored point to a real VictoriaMetrics (Debian's, on a
loopback port, its data in a scratch folder) with --remote-write, one
without.  In both, bench/ingest loads the daemon for --seconds on --conns
connections (the client library's compact form).  A round's ratio is the
with-target rate over the without; the goal is a median ratio of at least
0.90 (remote-write costs ingest under 10%).  It also reports, for the
with-target runs, the samples sent and the backlog left when the load
stopped: the sender may lag a burst (the log keeps it), so a backlog is
not a loss.  VictoriaMetrics runs at idle priority (chrt --idle), as the
sender threads do (SCHED_IDLE): on a shared two-core machine the engine's
own CPU would be counted as remote-write's cost, where in production it
is another machine's.  The databases live in /dev/shm, as bench/notify.py's, for
the same reason (this machine's disk swings rates between runs).

Prints what it measures and a RESULT line for bench/run.sh.  Traffic goes
to 127.0.0.1 only; every process it starts is stopped on exit.
"""
import argparse
import os
import shutil
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


def one(a, target, tmp):
    db = os.path.join(tmp, "gw.db")
    args = ["--remote-write", target + " name=vm"] if target else []
    with Daemon(*args, db=db, tmp=tmp) as d:
        kv = bench_ingest(d, a.seconds, a.conns)
        with urllib.request.urlopen(d.url + "/metrics", timeout=30) as r:
            metrics = r.read().decode()
    remove_db(db)
    sent = gauge(metrics, "gradwatch_remote_write_samples_total")
    backlog = gauge(metrics, "gradwatch_remote_write_backlog_steps")
    return float(kv["points_per_s"]), float(kv["cpu_us_per_point"]), sent, backlog


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--conns", type=int, default=4)
    a = ap.parse_args()
    if not os.path.exists(VM):
        print("remote_write: no %s (apt-get install victoria-metrics); skipped" % VM)
        print("RESULT bench=remote_write skipped=1")
        return
    tmp = tempfile.mkdtemp(prefix="gw-rw-bench.", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    port = free_port()
    # The engine runs at idle priority: in production it is another machine's work.
    vm = subprocess.Popen(["chrt", "--idle", "0", VM, "-storageDataPath=" + os.path.join(tmp, "vm"),
                           "-httpListenAddr=127.0.0.1:%d" % port, "-loggerLevel=ERROR"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    target = "http://127.0.0.1:%d/api/v1/write" % port
    ratios, cpus, withs, withouts, sents, backlogs = [], [], [], [], [], []
    try:
        time.sleep(1.0)
        for i in range(a.rounds):
            order = (True, False) if i % 2 == 0 else (False, True)
            got, cpu = {}, {}
            for w in order:
                got[w], cpu[w], sent, backlog = one(a, target if w else None, tmp)
                if w:
                    sents.append(sent / a.seconds)
                    backlogs.append(backlog)
            withs.append(got[True])
            withouts.append(got[False])
            ratios.append(got[True] / got[False])
            cpus.append(cpu[True] / cpu[False])
            print("round %d: with a target %.0f, without %.0f points/s: ratio %.3f; daemon CPU a point "
                  "%.3f vs %.3f us; sent %.0f samples/s, backlog at the end %.0f steps"
                  % (i + 1, got[True], got[False], ratios[-1], cpu[True], cpu[False], sents[-1],
                     backlogs[-1]), flush=True)
    finally:
        vm.terminate()
        vm.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    r = statistics.median(ratios)
    print("ingest with remote-write to VictoriaMetrics vs none: median ratio %.3f (%.1f%% cost) over %d rounds"
          % (r, (1 - r) * 100, a.rounds))
    print("daemon CPU a point, with / without: median ratio %.3f" % statistics.median(cpus))
    print("RESULT bench=remote_write rounds=%d with_points_per_s=%.0f without_points_per_s=%.0f "
          "paired_ratio=%.4f cost_pct=%.2f cpu_ratio=%.4f sent_samples_per_s=%.0f backlog_steps=%.0f"
          % (a.rounds, statistics.median(withs), statistics.median(withouts), r, (1 - r) * 100,
             statistics.median(cpus), statistics.median(sents), statistics.median(backlogs)))


if __name__ == "__main__":
    main()
