#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The PyTorch examples against a live gradwatchd (the three at once, each
on one core's worth of torch): the healthy run arrives whole and raises
no warning; the exploding RNN's gradient norm climbs for many steps
before its first non-finite step, and the daemon's grad_explosion alert
fires before that step (then nonfinite); with --stop-on-critical it
stops, failed, before any NaN update; the deep sigmoid net's first layer
gets a vanishing share of the last one's gradient, and a vanishing
alert."""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gwpy import PYTHON, TAP, TOP, Daemon, env_for_child, require_lib, points, require_torch  # noqa: E402

require_lib()
require_torch()
t = TAP()
EX = os.path.join(TOP, "examples")


def start(script, key, d, *extra):
    return subprocess.Popen([PYTHON, os.path.join(EX, script), "--url", d.url, "--run", key, "-q"]
                            + list(extra), env=env_for_child(OMP_NUM_THREADS=1), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(p):
    out, err = p.communicate(timeout=300)
    m = re.search(r"^summary: (.*)$", out, re.M)
    summary = dict(kv.split("=", 1) for kv in m.group(1).split()) if m else {}
    return p.returncode, summary, err


def alerts(d, key):
    st, body = d.get("/api/v1/alerts?run=%s" % key)
    return body.get("alerts", []) if st == 200 else []


with Daemon() as d:
    t0 = time.time()
    procs = {"healthy": start("torch_healthy.py", "x-healthy", d, "--steps", "200"),
             "explode": start("torch_exploding_rnn.py", "x-explode", d, "--steps", "195")}
    res = {k: finish(p) for k, p in procs.items()}
    procs = {"vanish": start("torch_vanishing.py", "x-vanish", d, "--steps", "150"),
             "stop": start("torch_exploding_rnn.py", "x-stop", d, "--stop-on-critical",
                           "--step-ms", "40")}
    res.update({k: finish(p) for k, p in procs.items()})
    took = time.time() - t0

    # ---- what arrived -----------------------------------------------------------------
    rc, summ, err = res["healthy"]
    t.ok(rc == 0 and summ.get("steps") == "200", "torch_healthy.py exits 0 after 200 steps (the four "
         "examples took %.0f s)" % took, err[-400:])
    st, info = d.get("/api/v1/runs/x-healthy")
    grads = sorted(s["name"] for s in info["series"] if s["kind"] == "layer_grad")
    t.is_((info["status"], grads), ("finished", ["0.bias", "0.weight", "2.bias", "2.weight", "4.bias",
                                                 "4.weight", "6.bias", "6.weight"]),
          "the run is finished, with a series for each of its 8 tensors")
    p = points(d, "x-healthy", "loss,grad_norm,lr,0.weight,6.bias")
    t.ok(all(v[0] == list(range(200)) for v in p.values()), "loss, grad_norm, lr and the layers: every step")
    loss = p["loss"][1]
    t.ok(sum(loss[-50:]) / 50 < 0.7 * sum(loss[:10]) / 10, "the loss went down (%.2f -> %.2f)"
         % (sum(loss[:10]) / 10, sum(loss[-50:]) / 50))

    rc, summ, err = res["explode"]
    t.is_(rc, 0, "torch_exploding_rnn.py exits 0")
    g = points(d, "x-explode", "grad_norm")["grad_norm"]
    nonfinite = [s for s, v in zip(*g) if isinstance(v, str)]
    first = nonfinite[0] if nonfinite else None
    t.ok(first is not None and str(first) == summ.get("first_nonfinite"),
         "the first non-finite gradient norm stored is the one the script saw (step %s)" % first)
    norms = dict(zip(*g))
    base = sorted(norms[s] for s in range(100, 150))[25]
    climb = [s for s in range(150, first or 0) if isinstance(norms.get(s), float) and norms[s] > 100 * base]
    t.ok(first is not None and len(climb) >= 10 and norms[first - 1] > 1e6 * base,
         "before it, the norm climbed for %d steps from about %.2g to %.2g" % (
             len(climb), base, norms[first - 1] if first else 0))

    rc, summ, err = res["vanish"]
    t.is_(rc, 0, "torch_vanishing.py exits 0")
    v = points(d, "x-vanish", "0.weight,22.weight")
    ratios = [a / b for a, b in zip(v["0.weight"][1], v["22.weight"][1])]
    t.ok(len(ratios) == 150 and max(ratios) < 1e-12,
         "the first layer's gradient is below 1e-12 of the last one's on every step (at most %.2g)"
         % max(ratios or [1]))
    st, info = d.get("/api/v1/runs/x-vanish")
    depth = {s["name"]: s.get("depth") for s in info["series"] if s["kind"] == "layer_grad"}
    t.is_((depth.get("0.weight"), depth.get("22.weight")), (0, 22), "the layers carry their depth")

    rc, summ, err = res["stop"]
    st, info = d.get("/api/v1/runs/x-stop")
    t.ok(rc == 2 and info["status"] == "failed",
         "--stop-on-critical: exit 2, the run marked failed", "rc %s, status %s" % (rc, info["status"]), err[-300:])
    stop_at = info.get("last_step")
    t.ok(first is not None and stop_at is not None and stop_at <= first,
         "it stopped at step %s, no later than the first non-finite step (%s): no NaN update was made"
         % (stop_at, first))

    # ---- what the detector said -----------------------------------------------------------
    ax = alerts(d, "x-explode")
    names = ["grad_explosion fired before the first non-finite step", "then nonfinite, at that step",
             "the healthy run raised no warning or critical alert", "the sigmoid stack raised a vanishing alert",
             "--stop-on-critical stopped at the explosion, before any non-finite step"]
    ex = [a for a in ax if a["kind"] == "grad_explosion"]
    t.ok(ex and first is not None and min(a["fire_step"] for a in ex) < first, names[0],
         "alerts: %r" % [(a["kind"], a["fire_step"]) for a in ax])
    nf = [a for a in ax if a["kind"] == "nonfinite"]
    t.ok(nf and nf[0]["severity"] == "critical" and nf[0]["fire_step"] == first, names[1],
         "nonfinite: %r" % [(a["fire_step"], a["onset_step"]) for a in nf])
    bad = [(a["kind"], a["severity"], a["fire_step"]) for a in alerts(d, "x-healthy")
           if a["severity"] in ("warning", "critical")]
    t.ok(not bad, names[2], "alerts: %r" % bad)
    van = [a for a in alerts(d, "x-vanish") if a["kind"] == "vanishing"]
    t.ok(van, names[3], "alerts: %r" % [(a["kind"], a["fire_step"]) for a in alerts(d, "x-vanish")])
    t.ok(stop_at is not None and first is not None and stop_at < first, names[4],
         "stopped at %s, first non-finite %s" % (stop_at, first))
t.done()
