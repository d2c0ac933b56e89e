#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Replay labelled training traces through the real gradwatchd over HTTP,
score the alerts it raises against the labels, and score three baselines
computed here on the same traces.

usage: eval.py [--tap] [--url URL] [--quiet] [FOLDER ...]

Each FOLDER holds NAME.jsonl traces (one ingest step a line) and a
labels.json (tests/data/traces/README.md).  A trace belongs to the split
its labels name ("split": "tune" or "heldout"; else "heldout" for a
folder whose name says so, "tune" otherwise): the splits are by family
(model, data, optimizer, fault), never by seed, and are reported apart.
Without --url it starts its own daemon on free loopback ports.

The baselines, as alerts:
- nan_only: TerminateOnNaN's rule, a non-finite loss or global norm;
- lightning: PyTorch Lightning's SpikeDetection (window 10, rtol 2.0,
  warm-up 1, finite_only): a loss that did not improve on the last one
  and is >= 3x the running mean of the last 10 finite losses, or a
  non-finite loss; it stops training, so only its first alert counts;
- zclip: ZClip's z-score on the global norm (warm-up 25 norms, EMA 0.97
  fed the clipped value on spikes, z > 2.5), each firing an alert.

Per split and detector it prints: recall per alert kind (Wilson 95%
intervals), false warning-or-critical alerts per 10,000 healthy steps
(exact Poisson 95% interval; on a healthy run with labelled bad
batches, a warning of a kind its labels accept right after one is not
false), and the lead of the first warning before the first non-finite
step; for gradwatch also the lead of its instability alerts (Adam's
ratio) before a faulty run's first loss jump (non-finite, or 3x the
median of the 50 losses before); then gradwatch's goals.  --tap prints
TAP: one test per expected outcome of gradwatch and one per goal.
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
CLIP_WINDOW = 1200      # clip_saturation waits for T_clip (1000 clip steps)
SEVERE = ("warning", "critical")
DETECTORS = ("gradwatch", "nan_only", "lightning", "zclip")


# ---- replay ----------------------------------------------------------------------

def post(url, run, steps):
    body = json.dumps({"run": run, "steps": steps}).encode()
    req = urllib.request.Request(url + "/api/v1/ingest", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)


def get(url, path):
    with urllib.request.urlopen(url + path, timeout=60) as r:
        return json.load(r)


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def replay(url, run, steps):
    """Post the trace in order and finish the run."""
    for i in range(0, len(steps), POST_STEPS):
        post(url, run, steps[i:i + POST_STEPS])
    req = urllib.request.Request(url + "/api/v1/runs/%s/finish" % run,
                                 json.dumps({"status": "finished"}).encode(),
                                 {"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=60).read()


# ---- baselines ---------------------------------------------------------------------

def num(v):
    if isinstance(v, str):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(v, math.nan)
    return math.nan if v is None else float(v)


def alert(kind, step, severity="warning"):
    return {"kind": kind, "severity": severity, "fire_step": step, "onset_step": step, "series": None}


def nan_only(steps):
    for s in steps:
        if s.get("skipped"):
            continue
        if ("loss" in s and not math.isfinite(num(s["loss"]))) or \
                ("grad_norm" in s and not math.isfinite(num(s["grad_norm"]))):
            return [alert("nonfinite", s["step"], "critical")]
    return []


def lightning(steps, window=10, rtol=2.0, warmup=1):
    hist, last = [], 0.0
    for i, s in enumerate(steps):
        if "loss" not in s or s.get("skipped"):
            continue
        loss = num(s["loss"])
        if i >= warmup:
            if not math.isfinite(loss):
                return [alert("nonfinite", s["step"], "critical")]
            if hist and loss - last > 0:
                mean = sum(hist) / len(hist)
                if abs(loss - mean) >= abs(rtol * mean):
                    return [alert("loss_spike", s["step"])]
        if math.isfinite(loss):
            hist = (hist + [loss])[-window:]
            last = loss
    return []


def zclip(steps, warmup=25, alpha=0.97, z_thresh=2.5):
    buf, mu, var, out, on = [], None, None, [], False
    for s in steps:
        if "grad_norm" not in s or s.get("skipped"):
            continue
        g = num(s["grad_norm"])
        if not math.isfinite(g):
            continue            # ZClip has no guard; a NaN here only poisons it
        if mu is None:
            buf.append(g)
            if len(buf) == warmup:
                mu = sum(buf) / warmup
                var = sum((x - mu) ** 2 for x in buf) / warmup
            continue
        sd = math.sqrt(var)
        z = (g - mu) / (sd + 1e-6)
        if z > z_thresh:
            if not on:
                out.append(alert("grad_explosion", s["step"]))
            on = True
            x = mu + z_thresh * z_thresh * sd / z        # its adaptive clip
        else:
            on = False
            x = g
        mu = alpha * mu + (1 - alpha) * x
        var = alpha * var + (1 - alpha) * (x - mu) ** 2
    return out


# ---- judging ---------------------------------------------------------------------------

def first(alerts, kind, severe_only=True):
    xs = [a for a in alerts if a["kind"] == kind and (not severe_only or a["severity"] in SEVERE)]
    return min(xs, key=lambda a: a["fire_step"]) if xs else None


def judge(entry, alerts):
    """(outcomes, unexpected): outcomes are (kind, ok, what, value) for each
    expected kind; unexpected the warning/critical alerts of other kinds."""
    lab = entry["labels"]
    expected = entry.get("expected_alerts", [])
    allowed = set(expected) | set(entry.get("acceptable_alerts", []))
    out = []
    for kind in expected:
        a = first(alerts, kind)
        fire = a["fire_step"] if a else None
        if kind == "nonfinite":
            want = lab["first_nonfinite_step"]
            out.append((kind, fire == want, "nonfinite at step %s (first non-finite %s)" % (fire, want),
                        None if fire is None else fire - want))
        elif kind == "grad_explosion":
            fnf = lab["first_nonfinite_step"]
            if fnf is None:
                onset = lab.get("onset_step") or 0
                ok = fire is not None and onset <= fire <= onset + WINDOW
                out.append((kind, ok, "grad_explosion at %s (onset %s, no NaN)" % (fire, onset), None))
            else:
                ok = fire is not None and fire < fnf
                lead = None if fire is None else fnf - fire
                out.append((kind, ok, "grad_explosion at %s, %s steps before the first NaN at %s"
                            % (fire, lead, fnf), lead))
        elif kind in ("vanishing", "dead_layer", "clip_saturation", "no_gradient"):
            onset = (lab.get("dead_from_step") if kind == "dead_layer" else
                     lab.get("vanishing_from_step") if kind == "vanishing" else 0) or 0
            delay = None if fire is None else fire - onset
            win = CLIP_WINDOW if kind == "clip_saturation" else WINDOW
            ok = fire is not None and 0 <= delay <= win
            what = "%s at %s (onset %s, delay %s)" % (kind, fire, onset, delay)
            if ok and kind == "vanishing" and lab.get("vanishing_from_step"):
                # The alert's own onset must be the change, not step 0.
                ok = a["onset_step"] is not None and a["onset_step"] >= onset - 50
                what += ", its onset_step %s" % a["onset_step"]
            out.append((kind, ok, what, delay))
        elif kind == "loss_spike":
            spikes = lab.get("spike_steps") or []
            hits = []
            for s in spikes:
                xs = [x for x in alerts if x["kind"] == kind and x["severity"] in SEVERE
                      and s <= x["fire_step"] <= s + WINDOW]
                hits.append(min(x["fire_step"] for x in xs) - s if xs else None)
            found = [h for h in hits if h is not None]
            out.append((kind, len(found) > 0, "loss_spike on %d of %d spikes (delays %s)"
                        % (len(found), len(spikes), hits), min(found) if found else None))
        else:
            out.append((kind, fire is not None, "%s at %s" % (kind, fire), None))
    unexpected = [a for a in alerts if a["severity"] in SEVERE and a["kind"] not in allowed]
    return out, unexpected


def excused(entry, a):
    """A warning, of a kind its labels accept, within WINDOW steps after a
    labelled bad batch of an otherwise healthy run: a real event that a
    warning should name (a critical alert is never excused)."""
    spikes = entry["labels"].get("spike_steps") or []
    return a["severity"] == "warning" and a["kind"] in entry.get("acceptable_alerts", []) and \
        any(s <= a["fire_step"] <= s + WINDOW for s in spikes)


def lead_of(entry, alerts):
    """Steps from the first warning/critical alert (other than nonfinite) to
    the first non-finite step; None when none came first; absent (no
    entry) on runs that never go non-finite."""
    fnf = entry["labels"].get("first_nonfinite_step")
    if fnf is None or "explode" not in entry.get("category", "") and \
            "grad_explosion" not in entry.get("expected_alerts", []):
        return "n/a"
    xs = [a["fire_step"] for a in alerts if a["severity"] in SEVERE and a["kind"] != "nonfinite"
          and a["fire_step"] < fnf]
    return fnf - min(xs) if xs else None


def loss_event(steps, trail=50, factor=3.0):
    """The first step whose loss is non-finite or >= factor x the median of
    the finite losses of the trail steps before it (at least 10 of them);
    None when none is."""
    hist = []
    for s in steps:
        if s.get("skipped") or "loss" not in s:
            continue
        v = num(s["loss"])
        if not math.isfinite(v):
            return s["step"]
        if len(hist) >= 10:
            med = sorted(hist)[len(hist) // 2]
            if med > 0 and v >= factor * med:
                return s["step"]
        hist.append(v)
        if len(hist) > trail:
            hist.pop(0)
    return None


INSTABILITY_BEFORE = 100    # an instability alert this close before a loss event counts


def instability_lead(entry, steps, alerts):
    """On a faulty run whose trace has Adam ratios: (event, lead), the lead
    of gradwatch's first instability alert before the run's first loss
    event (None: none came within INSTABILITY_BEFORE steps before it);
    "n/a" elsewhere."""
    if not entry.get("expected_alerts") or not any("adam_ratio" in s for s in steps):
        return "n/a"
    event = loss_event(steps)
    if event is None:
        return "n/a"
    xs = [a["fire_step"] for a in alerts if a["kind"] == "instability"
          and event - INSTABILITY_BEFORE <= a["fire_step"] <= event]
    return (event, event - min(xs) if xs else None)


# ---- statistics ---------------------------------------------------------------------------

def wilson(k, n, z=1.96):
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def poisson_cdf(k, mu):
    term, tot = math.exp(-mu), 0.0
    for i in range(k + 1):
        if i > 0:
            term *= mu / i
        tot += term
    return tot


def poisson_ci(k, alpha=0.05):
    """The exact (Garwood) interval of a Poisson count k."""
    def solve(f, lo, hi):
        for _ in range(200):
            mid = (lo + hi) / 2
            if f(mid):
                hi = mid
            else:
                lo = mid
        return (lo + hi) / 2
    lo = 0.0 if k == 0 else solve(lambda m: 1 - poisson_cdf(k - 1, m) >= alpha / 2, 0.0, 10.0 * k + 10)
    hi = solve(lambda m: poisson_cdf(k, m) <= alpha / 2, 0.0, 10.0 * k + 20)
    return lo, hi


# ---- one split ------------------------------------------------------------------------------

class Score:
    def __init__(self):
        self.recall = {}            # kind -> [hits, runs]
        self.healthy_steps = 0
        self.false = 0              # warning/critical alerts on healthy runs
        self.bad_healthy = []       # healthy runs with any
        self.leads = []             # None: no warning before the NaN
        self.unexpected = []        # (run, alerts) on faulty runs
        self.critical_outside = []  # critical alerts of kinds the fault does not allow
        self.inst = []              # (run, event, lead) of instability before a loss event

    def add(self, name, entry, alerts, nsteps):
        outcomes, unexpected = judge(entry, alerts)
        for kind, ok, _, _ in outcomes:
            k = self.recall.setdefault(kind, [0, 0])
            k[0] += 1 if ok else 0
            k[1] += 1
        if not entry.get("expected_alerts"):
            self.healthy_steps += nsteps
            sev = [a for a in alerts if a["severity"] in SEVERE and not excused(entry, a)]
            self.false += len(sev)
            if sev:
                self.bad_healthy.append(name)
        elif unexpected:
            self.unexpected.append((name, unexpected))
            crit = [a for a in unexpected if a["severity"] == "critical"]
            if crit:
                self.critical_outside.append((name, crit))
        lead = lead_of(entry, alerts)
        if lead != "n/a":
            self.leads.append(lead)
        return outcomes, unexpected

    def lines(self, kinds):
        out = {}
        for kind in kinds:
            k, n = self.recall.get(kind, [0, 0])
            out["recall " + kind] = (k / n if n else float("nan"), "%d/%d (%.2f-%.2f)" % ((k, n) + wilson(k, n)))
        hs = self.healthy_steps
        lo, hi = poisson_ci(self.false)
        rate = 1e4 * self.false / hs if hs else float("nan")
        out["false per 10k healthy steps"] = (rate, "%.2f (%d in %d steps; 95%% %.2f-%.2f)" % (
            rate, self.false, hs, 1e4 * lo / hs if hs else float("nan"), 1e4 * hi / hs if hs else float("nan")))
        got = [x for x in self.leads if x is not None]
        k, n = len(got), len(self.leads)
        med = sorted(got)[len(got) // 2] if got else None
        out["warning before the first NaN"] = (k / n if n else float("nan"), "%d/%d runs (%.2f-%.2f); median lead %s"
                                               % ((k, n) + wilson(k, n) + (med,)))
        return out


KNOWN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "known_misses.txt")


def load_known(path=KNOWN):
    """folder/run -> why: held-out runs whose misses are known and kept, not
    tuned away (tests/eval/known_misses.txt)."""
    known = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                key, _, why = line.partition(" ")
                known[key] = why.strip()
    return known


class EvalTAP(TAP):
    """TAP with TODO lines: a known miss's failing outcome is shown and
    does not fail the run; its passing outcomes are asserted as usual."""

    def todo(self, cond, name, why):
        self.n += 1
        print("%s %d - %s # TODO known miss: %s" % ("ok" if cond else "not ok", self.n, name, why),
              flush=True)


def evaluate(url, sets, tap, quiet, known):
    """sets: [(folder, labels)].  Returns (scores, asserted, missed):
    [split][detector] over every run, and over every run but the known
    misses (what --tap asserts the goals on); missed[split] the known
    misses met."""
    scores, asserted, missed = {}, {}, {}
    for folder, labels in sets:
        group = os.path.basename(os.path.normpath(folder))
        for name in sorted(labels):
            entry = labels[name]
            split = entry.get("split") or ("heldout" if "heldout" in group else "tune")
            steps = load(os.path.join(folder, entry.get("file", name + ".jsonl")))
            run = "eval-%s-%s" % (group, name)
            replay(url, run, steps)
            gw = sorted(get(url, "/api/v1/alerts?run=" + run)["alerts"], key=lambda a: (a["fire_step"], a["id"]))
            per = {"gradwatch": gw, "nan_only": nan_only(steps), "lightning": lightning(steps),
                   "zclip": zclip(steps)}
            inst = instability_lead(entry, steps, gw)
            if inst != "n/a":
                scores.setdefault(split, {}).setdefault("gradwatch", Score()).inst.append((name,) + inst)
            if not quiet:
                print("# [%s] %s/%s (%d steps, expected %s)" % (split, group, name, len(steps),
                                                              entry.get("expected_alerts") or "none"))
                for a in gw:
                    print("#   %-8s %-16s fire %-6s onset %-6s %-9s %s%s" % (
                        a["severity"], a["kind"], a["fire_step"], a["onset_step"], a["state"],
                        (a["series"] + ": ") if a["series"] else "", a["message"][:110]))
            why = known.get("%s/%s" % (group, name))
            if why is not None:
                missed.setdefault(split, []).append(name)
            for det, alerts in per.items():
                sc = scores.setdefault(split, {}).setdefault(det, Score())
                outcomes, unexpected = sc.add(name, entry, alerts, len(steps))
                if why is None:
                    asserted.setdefault(split, {}).setdefault(det, Score()).add(name, entry, alerts, len(steps))
                if det != "gradwatch":
                    continue
                what = "no unexpected warning or critical (%s)" % (
                    ", ".join("%s@%s %s" % (a["kind"], a["fire_step"], a["series"] or "") for a in unexpected)
                    or "none")
                for ok, line in [(ok, w) for _, ok, w, _ in outcomes] + [(not unexpected, what)]:
                    if tap and why is not None and not ok:
                        tap.todo(ok, "%s/%s: %s" % (group, name, line), why)
                    elif tap:
                        tap.ok(ok, "%s/%s: %s" % (group, name, line))
                    elif not quiet:
                        print("#   %s %s%s" % ("PASS" if ok else "FAIL", line,
                                              "" if why is None else " (known miss: %s)" % why))
    return scores, asserted, missed


def split_goals(split, label, sp, kinds, tap, todo):
    """The goals of one split: gradwatch no worse than every baseline on
    every line, and its own.  With --tap the goals without the known
    misses are asserted; those with them are TODO when the two differ."""
    lines = {det: sp[det].lines(kinds) for det in DETECTORS}
    gw = sp["gradwatch"]
    checks = []
    for key, (v, _) in lines["gradwatch"].items():
        worse = [det for det in DETECTORS[1:] if not math.isnan(lines[det][key][0]) and not math.isnan(v)
                 and ((v > lines[det][key][0] + 1e-9) if key.startswith("false") else
                      (v < lines[det][key][0] - 1e-9))]
        checks.append((not worse, "gradwatch no worse than the baselines on %s%s" % (
            key, " (worse than %s)" % worse if worse else "")))
    checks += [
        (not gw.bad_healthy, "no warning or critical on any healthy run" +
         (" (%s)" % gw.bad_healthy if gw.bad_healthy else "")),
        (all(x is not None for x in gw.leads), "a warning before the first non-finite step on every "
         "exploding run" + ("" if all(x is not None for x in gw.leads) else " (%s)" % gw.leads)),
        (not gw.critical_outside, "no critical alert on a faulty run outside its fault" +
         (" (%s)" % [(n, [(a["kind"], a["fire_step"]) for a in c]) for n, c in gw.critical_outside]
          if gw.critical_outside else "")),
    ]
    all_ok = True
    for ok, what in checks:
        msg = "%s%s: %s" % (split, label, what)
        if todo and not ok:
            if tap:
                tap.todo(ok, msg, "the split with its known misses")
            else:
                print("#   %s %s (with the known misses)" % ("PASS" if ok else "FAIL", msg))
            continue
        all_ok &= ok
        if tap:
            tap.ok(ok, msg)
        else:
            print("#   %s %s" % ("PASS" if ok else "FAIL", msg))
    return all_ok


def report(scores, asserted, missed, tap):
    kinds = sorted({k for sp in scores.values() for sc in sp.values() for k in sc.recall})
    all_ok = True
    for split in ("tune", "heldout"):
        if split not in scores:
            continue
        sp = scores[split]
        lines = {det: sp[det].lines(kinds) for det in DETECTORS}
        print("# === %s: %s ===" % (split, "the set the defaults were tuned on" if split == "tune"
                                      else "families never tuned on"))
        for key in lines["gradwatch"]:
            print("#   %-34s %s" % (key, "  |  ".join("%s %s" % (det, lines[det][key][1]) for det in DETECTORS)))
        gw = sp["gradwatch"]
        if gw.inst:
            got = sorted(x[2] for x in gw.inst if x[2] is not None)
            print("#   %-34s %d/%d faulty Adam runs warned before their first loss jump (%.2f-%.2f); "
                  "median lead %s; %s" % (("instability before a loss jump", len(got), len(gw.inst)) +
                                          wilson(len(got), len(gw.inst)) +
                                          (got[len(got) // 2] if got else None,
                                           ", ".join("%s@%s:%s" % x for x in gw.inst))))
        # With known misses, the split's goals are shown as they are (TODO)
        # and asserted without them.
        todo = bool(missed.get(split))
        all_ok &= split_goals(split, "", sp, kinds, tap, todo)
        if todo:
            print("#   (known misses, not tuned away: %s)" % ", ".join(missed[split]))
            all_ok &= split_goals(split, " without the known misses", asserted[split], kinds, tap, False)
    return all_ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tap", action="store_true")
    ap.add_argument("--quiet", action="store_true", help="only the summaries")
    ap.add_argument("--url")
    ap.add_argument("folders", nargs="*")
    args = ap.parse_args()
    folders = args.folders or [os.path.join(TOP, "tests", "data", d)
                               for d in ("traces", "traces_heldout", "traces_families")]
    sets = []
    for folder in folders:
        with open(os.path.join(folder, "labels.json")) as f:
            sets.append((folder, json.load(f)["scenarios"]))
    tap = EvalTAP() if args.tap else None
    daemon = None
    url = args.url
    if url is None:
        daemon = Daemon().start()
        url = daemon.url
    try:
        scores, asserted, missed = evaluate(url, sets, tap, args.quiet, load_known())
    finally:
        if daemon is not None:
            daemon.stop()
            daemon.__exit__(None, None, None)
    report(scores, asserted, missed, tap)
    if tap:
        tap.done()


if __name__ == "__main__":
    main()
