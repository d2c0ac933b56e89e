#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Replay labelled training traces through the real gradwatchd over HTTP
and score the alerts it raises against the labels.

usage: eval.py [--tap] [--url URL] [FOLDER ...]

Each FOLDER holds NAME.jsonl traces (one ingest step a line) and a
labels.json (tests/data/traces/README.md).  Without folders it uses
tests/data/traces.  Each folder is scored on its own, so a held-out set
reads separately from the set the defaults were tuned on.  Without
--url it starts its own daemon on free loopback ports.  --tap prints
TAP: one test per expected outcome, so `make test` can assert them.
"""
import argparse
import json
import math
import os
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from gwtest import TOP, Daemon, TAP  # noqa: E402

POST_STEPS = 100        # steps a request, as a client would batch them
WINDOW = 200            # steps after onset that count as on time
SEVERE = ("warning", "critical")


def post(url, run, steps):
    body = json.dumps({"run": run, "steps": steps}).encode()
    req = urllib.request.Request(url + "/api/v1/ingest", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)


def get(url, path):
    with urllib.request.urlopen(url + path, timeout=60) as r:
        return json.load(r)


def replay(url, run, path):
    """Post the trace in order; return its step count."""
    batch, n = [], 0
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            batch.append(json.loads(line))
            n += 1
            if len(batch) == POST_STEPS:
                post(url, run, batch)
                batch = []
    if batch:
        post(url, run, batch)
    req = urllib.request.Request(url + "/api/v1/runs/%s/finish" % run,
                                 json.dumps({"status": "finished"}).encode(),
                                 {"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=60).read()
    return n


def first(alerts, kind, severe_only=True):
    xs = [a for a in alerts if a["kind"] == kind and (not severe_only or a["severity"] in SEVERE)]
    return min(xs, key=lambda a: a["fire_step"]) if xs else None


def judge(name, entry, alerts, nsteps):
    """Outcomes of one trace: list of (ok, description, pattern, delay)."""
    lab = entry["labels"]
    expected = entry.get("expected_alerts", [])
    allowed = set(expected) | set(entry.get("acceptable_alerts", []))
    out = []
    for kind in expected:
        a = first(alerts, kind, severe_only=(kind != "vanishing"))
        if a is None:
            a = first(alerts, kind, severe_only=False)
        fire = a["fire_step"] if a else None
        if kind == "nonfinite":
            want = lab["first_nonfinite_step"]
            ok = fire == want
            out.append((ok, "nonfinite at step %s (first non-finite %s)" % (fire, want), kind,
                        None if fire is None else fire - want))
        elif kind == "grad_explosion":
            fnf = lab["first_nonfinite_step"]
            ok = fire is not None and fnf is not None and fire < fnf
            lead = None if fire is None else fnf - fire
            out.append((ok, "grad_explosion at %s, %s steps before the first NaN at %s"
                         % (fire, lead, fnf), kind, lead))
        elif kind in ("vanishing", "dead_layer", "clip_saturation"):
            onset = lab.get("dead_from_step") if kind == "dead_layer" else 0
            onset = onset or 0
            delay = None if fire is None else fire - onset
            ok = fire is not None and 0 <= delay <= (WINDOW if kind != "clip_saturation" else max(WINDOW, 1200))
            out.append((ok, "%s at %s (onset %s, delay %s)" % (kind, fire, onset, delay), kind, delay))
        elif kind == "loss_spike":
            spikes = lab.get("spike_steps") or []
            hits = []
            for s in spikes:
                xs = [x for x in alerts if x["kind"] == kind and s <= x["fire_step"] <= s + WINDOW]
                hits.append(min(x["fire_step"] for x in xs) - s if xs else None)
            found = [h for h in hits if h is not None]
            ok = len(found) > 0
            out.append((ok, "loss_spike on %d of %d spikes (delays %s)" % (len(found), len(spikes), hits),
                        kind, min(found) if found else None))
        else:
            out.append((fire is not None, "%s at %s" % (kind, fire), kind, None))
    false = [a for a in alerts if a["severity"] in SEVERE and a["kind"] not in allowed]
    out.append((not false, "no unexpected warning or critical (%s)" %
                (", ".join("%s@%s %s" % (a["kind"], a["fire_step"], a["series"] or "") for a in false) or "none"),
                None, len(false)))
    return out


def wilson(k, n, z=1.96):
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def evaluate(url, folder, tap, group):
    labels = json.load(open(os.path.join(folder, "labels.json")))["scenarios"]
    stats = {"recall": {}, "healthy_steps": 0, "false": 0, "leads": [], "delays": {}}
    print("# === %s (%s) ===" % (group, folder), flush=True)
    for name in sorted(labels):
        entry = labels[name]
        path = os.path.join(folder, entry.get("file", name + ".jsonl"))
        run = "eval-%s-%s" % (group, name)
        nsteps = replay(url, run, path)
        alerts = sorted(get(url, "/api/v1/alerts?run=" + run)["alerts"], key=lambda a: (a["fire_step"], a["id"]))
        print("# %s (%d steps, expected %s)" % (name, nsteps, entry.get("expected_alerts") or "none"))
        for a in alerts:
            print("#   %-8s %-16s fire %-6s onset %-6s %-9s %s%s" % (
                a["severity"], a["kind"], a["fire_step"], a["onset_step"], a["state"],
                (a["series"] + ": ") if a["series"] else "", a["message"][:110]))
        if not entry.get("expected_alerts"):
            stats["healthy_steps"] += nsteps
        for ok, what, kind, val in judge(name, entry, alerts, nsteps):
            if kind is None:
                stats["false"] += val
            else:
                k, n = stats["recall"].get(kind, (0, 0))
                stats["recall"][kind] = (k + (1 if ok else 0), n + 1)
                if kind == "grad_explosion" and val is not None:
                    stats["leads"].append(val)
                elif val is not None:
                    stats["delays"].setdefault(kind, []).append(val)
            if tap:
                tap.ok(ok, "%s/%s: %s" % (group, name, what))
            else:
                print("#   %s %s" % ("PASS" if ok else "FAIL", what))
    print("# --- %s summary ---" % group)
    for kind, (k, n) in sorted(stats["recall"].items()):
        lo, hi = wilson(k, n)
        d = stats["delays"].get(kind)
        print("#   recall %-16s %d/%d (95%% CI %.2f-%.2f)%s" % (
            kind, k, n, lo, hi, ("  delay median %s, max %s" % (sorted(d)[len(d) // 2], max(d))) if d else ""))
    hs = stats["healthy_steps"]
    print("#   false warning/critical alerts: %d; per 10,000 healthy steps: %.2f (%d healthy steps)"
          % (stats["false"], 1e4 * stats["false"] / hs if hs else float("nan"), hs))
    if stats["leads"]:
        ls = sorted(stats["leads"])
        print("#   explosion lead time (steps before the first non-finite): median %s, min %s, all %s"
              % (ls[len(ls) // 2], ls[0], ls))
    return stats


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tap", action="store_true")
    ap.add_argument("--url")
    ap.add_argument("folders", nargs="*")
    args = ap.parse_args()
    folders = args.folders or [os.path.join(TOP, "tests", "data", "traces")]
    tap = TAP() if args.tap else None
    daemon = None
    url = args.url
    if url is None:
        daemon = Daemon().start()
        url = daemon.url
    try:
        for i, folder in enumerate(folders):
            group = os.path.basename(os.path.normpath(folder)) or "traces%d" % i
            evaluate(url, folder, tap, group)
    finally:
        if daemon is not None:
            daemon.stop()
            daemon.__exit__(None, None, None)
    if tap:
        tap.done()


if __name__ == "__main__":
    main()
