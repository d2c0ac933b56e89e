#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Remote-write against the real engine: Debian's VictoriaMetrics on a
# free loopback port.  gradwatchd sends 1,000 stored steps (loss,
# grad_norm, lr, three layers' grad and weight norms, a metric) to two
# targets (the second with layer-every=10, told apart by VictoriaMetrics'
# extra_label); every sample is read back through /api/v1/export with
# its exact value, timestamp and labels.  Then the outage: the engine
# stops, 500 more steps are stored, gradwatchd is killed with SIGKILL,
# both start again, and every sample arrives: none missing, no
# timestamp with two values.  What is checked of "once": the first
# phase's samples are each stored exactly once; after a SIGKILL a
# request may be sent again (at least once), so the second phase counts
# distinct (timestamp, value) pairs and reports the raw count.
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from gwtest import TAP, Daemon, free_port  # noqa: E402

VM = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"
LAYERS = ["encoder.0.weight", "encoder.1.weight", "head.bias ü"]
RUN = "rw-test"
PROJECT = "proj/é"
T0 = int(time.time()) - 4 * 3600

t = TAP()
if not os.path.exists(VM):
    print("Bail out! no %s: make test installs it (apt-get install victoria-metrics)" % VM)
    sys.exit(1)
tmp = tempfile.mkdtemp(prefix="gw-rw.")
vm_port = free_port()
vm_proc = None
rng = random.Random(16)
values = {}     # (metric, extra label value) -> {step: value}


def vm_start():
    global vm_proc
    vm_proc = subprocess.Popen(
        [VM, "-storageDataPath=" + os.path.join(tmp, "vm"),
         "-httpListenAddr=127.0.0.1:%d" % vm_port, "-search.latencyOffset=0s",
         "-retentionPeriod=10y", "-loggerLevel=ERROR"],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "vm.log"), "ab"))
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            if urllib.request.urlopen("http://127.0.0.1:%d/health" % vm_port,
                                      timeout=1).status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("victoria-metrics did not start")


def vm_stop():
    global vm_proc
    vm_proc.send_signal(signal.SIGTERM)
    vm_proc.wait(timeout=20)
    vm_proc = None


def export(match):
    urllib.request.urlopen("http://127.0.0.1:%d/internal/force_flush" % vm_port).read()
    q = urllib.parse.urlencode({"match[]": match, "start": T0 - 10,
                                "end": int(time.time()) + 10})
    body = urllib.request.urlopen("http://127.0.0.1:%d/api/v1/export?%s"
                                  % (vm_port, q), timeout=30).read()
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def val(scale=1.0):
    """A value of 9 significant digits: VictoriaMetrics keeps 12 of a
    float64 (its decimal encoding), so these come back bit for bit."""
    return float("%.9g" % (rng.random() * scale))


def steps(first, last):
    out = []
    for s in range(first, last):
        st = {"step": s, "time": T0 + s * 0.25,
              "loss": val(3), "grad_norm": val(10),
              "lr": 1e-3 * (1 + s % 7), "layers": {}, "weights": {},
              "metrics": {"acc": val()}}
        for ly in LAYERS:
            st["layers"][ly] = val()
            st["weights"][ly] = val(50)
        out.append(st)
    return out


def ingest(d, first, last, reverse=False):
    """Store steps [first, last) in requests of 50 steps (reverse: each
    request's steps in descending order, which the store reorders)."""
    for a in range(first, last, 50):
        body = {"run": RUN, "meta": {"project": PROJECT},
                "steps": steps(a, min(a + 50, last))}
        if reverse:
            body["steps"].reverse()
        for st in body["steps"]:
            s = st["step"]
            values.setdefault(("gradwatch_loss", ""), {})[s] = st["loss"]
            values.setdefault(("gradwatch_grad_norm", ""), {})[s] = st["grad_norm"]
            values.setdefault(("gradwatch_lr", ""), {})[s] = st["lr"]
            values.setdefault(("gradwatch_step", ""), {})[s] = float(s)
            values.setdefault(("gradwatch_metric", "acc"), {})[s] = st["metrics"]["acc"]
            for ly in LAYERS:
                values.setdefault(("gradwatch_layer_grad_norm", ly), {})[s] = st["layers"][ly]
                values.setdefault(("gradwatch_layer_weight_norm", ly), {})[s] = st["weights"][ly]
        status, reply = d.post("/api/v1/ingest", body)
        if status != 200:
            raise RuntimeError("ingest: %d %r" % (status, reply))


def metric(d, name, target):
    status, text = d.get("/metrics")
    text = text.decode() if isinstance(text, bytes) else str(text)
    for line in text.splitlines():
        if line.startswith(name + "{") and 'target="%s"' % target in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def big_val(step, layer):
    """Layer's value at step, of 9 digits (see val)."""
    return float("%.9g" % (step + layer / 1000.0))


def batches(d, target, source):
    """gradwatch_remote_write_batches_total of target from source, or None."""
    want = 'gradwatch_remote_write_batches_total{target="%s",source="%s"} ' % (target, source)
    for line in d.get("/metrics")[1].decode().splitlines():
        if line.startswith(want):
            return float(line[len(want):])
    return None


def wait_sent(d, want, timeout=25):
    deadline = time.time() + timeout
    while time.time() < deadline:
        ok = all(metric(d, "gradwatch_remote_write_backlog_batches", tg) == 0
                 for tg in ("main", "sparse"))
        if ok and metric(d, 'gradwatch_remote_write_samples_total', "main") >= want:
            return True
        time.sleep(0.2)
    return False


def check(series, last, phase, exact):
    """Every sample of steps [0, last) in the main copy, labels and values."""
    by = {}
    raw = distinct = 0
    for s in series:
        m = s["metric"]
        key = (m["__name__"], m.get("layer", m.get("name", "")))
        want_labels = {"__name__", "run", "project"} | (
            {"layer"} if "layer" in m else set()) | ({"name"} if "name" in m else set())
        if set(m) != want_labels or m["run"] != RUN or m["project"] != PROJECT:
            t.ok(False, "%s: labels of %s" % (phase, key), "got %r" % (m,))
        pairs = list(zip(s["timestamps"], s["values"]))
        raw += len(pairs)
        by.setdefault(key, []).extend(pairs)
    bad = []
    for key, want in sorted(values.items()):
        got = by.get(key, [])
        uniq = set(got)
        distinct += len(uniq)
        ts = {}
        for ms, v in uniq:
            ts.setdefault(ms, set()).add(v)
        want_pairs = {(round((T0 + s * 0.25) * 1000), v) for s, v in want.items() if s < last}
        if uniq != want_pairs or any(len(v) > 1 for v in ts.values()) or (exact and len(got) != len(uniq)):
            bad.append("%s: %d samples (%d distinct), want %d; missing %d, extra %d"
                       % (key, len(got), len(uniq), len(want_pairs),
                          len(want_pairs - uniq), len(uniq - want_pairs)))
    t.ok(not bad, "%s: every sample of %d steps, exact values, timestamps and labels%s"
         % (phase, last, ", each once" if exact else ""), *bad[:6])
    health = by.get(("gradwatch_run_health", ""), [])
    t.is_(len({ms for ms, _ in health}), last, "%s: gradwatch_run_health at every step" % phase)
    print("# %s: %d samples read back (health included), %d distinct outside health" % (phase, raw, distinct))


try:
    vm_start()
    url = "http://127.0.0.1:%d/api/v1/write" % vm_port
    args = ["--remote-write", url + " name=main",
            "--remote-write", url + "?extra_label=copy=sparse name=sparse layer-every=10"]
    d = Daemon(*args, tmp=tmp)
    d.start()
    ingest(d, 0, 950)
    ingest(d, 950, 1000, reverse=True)
    t.ok(wait_sent(d, 1000 * 12), "1,000 steps sent: no backlog left",
         "sent %r" % metric(d, "gradwatch_remote_write_samples_total", "main"))
    # The batches that only appended to the run are sent from memory; the
    # one the store reordered is read back from the database.
    lint = subprocess.run(["promtool", "check", "metrics"], input=d.get("/metrics")[1],
                          capture_output=True)
    t.ok(lint.returncode == 0, "/metrics with remote-write targets passes promtool check metrics",
         (lint.stdout + lint.stderr).decode()[:400])
    src = {k: batches(d, "main", k) for k in ("memory", "database")}
    t.ok(src["memory"] is not None and src["memory"] >= 10 and src["database"] is not None
         and src["database"] >= 1 and src["memory"] + src["database"] >= 20,
         "phase 1: batches sent from memory, the reordered one read back",
         "batches by source: %r" % src)
    main = [s for s in export('{run="%s"}' % RUN) if "copy" not in s["metric"]]
    check(main, 1000, "phase 1", True)
    sparse = export('{run="%s",copy="sparse"}' % RUN)
    layer_steps = {(ms - T0 * 1000) // 250 for s in sparse
                   if s["metric"]["__name__"].startswith("gradwatch_layer_")
                   for ms in s["timestamps"]}
    loss_n = sum(len(s["values"]) for s in sparse if s["metric"]["__name__"] == "gradwatch_loss")
    t.is_(sorted(layer_steps), list(range(0, 1000, 10)), "layer-every=10: layer series at every 10th step")
    t.is_(loss_n, 1000, "layer-every=10: the loss at every step")

    # One batch past a request's size (REMOTE_MAX_SAMPLES, 100,000) goes
    # in windows of steps: 600 steps of 200 layers, every sample arrives.
    big = {"run": "rw-big", "steps": [
        {"step": st, "time": T0 + st, "loss": 1.0 + st,
         "layers": {"l%03d" % k: big_val(st, k) for k in range(200)}} for st in range(600)]}
    status, reply = d.post("/api/v1/ingest", big)
    t.is_(status, 200, "a batch of 120,600 points stored")
    deadline = time.time() + 20
    got = []
    while time.time() < deadline:
        got = export('{run="rw-big",__name__="gradwatch_layer_grad_norm"}')
        got = [x for x in got if "copy" not in x["metric"]]
        if sum(len(x["values"]) for x in got) >= 600 * 200:
            break
        time.sleep(0.3)
    bad = [x["metric"]["layer"] for x in got
           if sorted(zip(x["timestamps"], x["values"])) !=
           [((T0 + st) * 1000, big_val(st, int(x["metric"]["layer"][1:]))) for st in range(600)]]
    t.ok(len(got) == 200 and not bad, "a batch past a request's size: every sample of 200 layers x 600 steps, "
         "in windows", "%d layers, wrong: %r" % (len(got), bad[:3]))

    # The outage: the engine stops, more is stored, gradwatchd dies hard.
    vm_stop()
    ingest(d, 1000, 1500)
    deadline = time.time() + 5
    while time.time() < deadline and not metric(d, "gradwatch_remote_write_backlog_batches", "main"):
        time.sleep(0.2)
    t.ok(metric(d, "gradwatch_remote_write_backlog_batches", "main") > 0,
         "engine down: a backlog is counted")
    t.ok(metric(d, "gradwatch_remote_write_samples_total", "main") is not None and
         'gradwatch_remote_write_last_error{target="main"' in d.get("/metrics")[1].decode(),
         "engine down: /metrics has the last error")
    d.stop(signal.SIGKILL)
    vm_start()
    d = Daemon(*args, tmp=tmp)
    d.start()
    t.ok(wait_sent(d, 1), "after the restarts the backlog is sent")
    t.ok((batches(d, "main", "database") or 0) >= 10,
         "after a restart the backlog is read back from the database")
    main = [s for s in export('{run="%s"}' % RUN) if "copy" not in s["metric"]]
    check(main, 1500, "phase 2 (after SIGKILL)", False)
    d.stop()
finally:
    if vm_proc is not None:
        vm_proc.kill()
        vm_proc.wait()
    shutil.rmtree(tmp, ignore_errors=True)
t.done()
