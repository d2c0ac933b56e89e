#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Crash consistency: three writers post to the real daemon on a SQLite
file, each recording which of its requests got a 200; the daemon is killed
with SIGKILL at a random moment and restarted on the same file, GW_CRASH_CYCLES
times (15 by default).  Then, through the export, every acknowledged point
must be there with the bits it was sent with (float64 patterns compared; a
non-finite value comes back as its string, the only form the wire has), a
request that got no answer must be there whole or not at all, and nothing
else may appear; the series' counters must match what is stored, and
PRAGMA integrity_check must say ok.

The values exercise the number path: negative zero, subnormals of both
widths, the extremes of float64 and float32, random bit patterns, NaN and
the infinities, written in several spellings (shortest, %.17g, long
mantissas, upper-case exponents) that must all round exactly.  One writer
uses the compact form the fast parser takes, one the object form, one the
compact form with meta and an escaped name (Jansson's path); writers also
re-send earlier requests with new values (a retry replaces), so an answer
lost in a crash may leave either version, never a mix.

GW_CRASH_CYCLES, GW_CRASH_SEED (random by default; printed) and
GW_CRASH_LAYERS (24) tune it."""
import http.client
import json
import math
import os
import random
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from gwtest import BUILD, Daemon, TAP, free_port

CYCLES = int(os.environ.get("GW_CRASH_CYCLES", "15"))
SEED = int(os.environ.get("GW_CRASH_SEED", str(random.randrange(1 << 30))))
LAYERS = int(os.environ.get("GW_CRASH_LAYERS", "24"))
STEPS = 6			# steps a request
RESEND = 0.12			# share of requests that re-send an earlier one

t = TAP()
print("# seed %d (GW_CRASH_SEED to repeat), %d cycles, %d layers" % (SEED, CYCLES, LAYERS), flush=True)


def bits(v):
    return struct.unpack("<Q", struct.pack("<d", v))[0]


def f32(v):
    return struct.unpack("<f", struct.pack("<f", v))[0]


# A value's identity: its float64 bits when finite, else the wire's string.
def vkey(v):
    if isinstance(v, str):
        return v
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return bits(v)


def show(k):
    """A value's identity for a person: the bits in hex and the number."""
    if isinstance(k, str):
        return k
    return "%016x (%r)" % (k, struct.unpack("<d", struct.pack("<Q", k))[0])


SPECIAL = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 2.225073858507201e-308,
           -2.225073858507201e-308, 1.7976931348623157e308, -1.7976931348623157e308,
           1e-300, 1e300, 0.1, 1 / 3, 9007199254740993.0, 123456789012345678.0,
           "NaN", "Infinity", "-Infinity"]
SPECIAL32 = [0.0, -0.0, 1.401298464324817e-45, -1.401298464324817e-45, 1.1754942106924411e-38,
             1.1754943508222875e-38, 3.4028234663852886e38, -3.4028234663852886e38, 0.5, -2.0,
             65504.0, 1.0000001192092896, "NaN", "Infinity", "-Infinity"]


def value(rng, flavour):
    """A value of one of four flavours: float32-exact (a chunk of them is
    stored as float32), random float64 bit patterns, specials, ordinary."""
    r = rng.random()
    if flavour == 0:
        if r < 0.25:
            return rng.choice(SPECIAL32)
        v = f32(struct.unpack("<f", struct.pack("<I", rng.getrandbits(32)))[0])
        return v if math.isfinite(v) else 0.25
    if flavour == 1:
        if r < 0.05:
            return rng.choice(SPECIAL)
        v = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
        return v if math.isfinite(v) else -0.0
    if flavour == 2:
        return rng.choice(SPECIAL) if r < 0.7 else rng.uniform(-1e-310, 1e-310)
    return rng.lognormvariate(0, 2)


def spell(rng, v):
    """v as JSON text in one of the spellings a client may use."""
    if isinstance(v, str):
        return '"%s"' % v
    r = rng.random()
    if r < 0.4:
        return repr(v)
    if r < 0.6:
        s = "%.17g" % v
        return s if v != 0 else ("-0.0" if math.copysign(1, v) < 0 else "0.0")
    if r < 0.8:
        return ("%.17E" if r < 0.7 else "%.17e") % v
    return "%.30e" % v		# more digits than a double has: still one rounding


class Writer:
    """One client thread's run and its record of every request: a slot is a
    range of steps; each request to it is a version, acked or not."""

    def __init__(self, w, seed):
        self.w = w
        self.rng = random.Random(seed)
        self.run = "crash-%d" % w
        tag = "\u00e9" if w == 2 else ""
        self.layers = ["blk%d%s.w" % (i, tag) for i in range(LAYERS)]
        self.slots = []		# [{"first", "points": [{key: vkey}], "status": [...]}]
        self.next_step = 0
        self.refused = 0
        self.answers = 0

    def _new_version(self, slot):
        """Values for every point of the slot (its shape fixed at creation)."""
        rng = self.rng
        body_steps, pts = [], {}
        for k in range(STEPS):
            s = slot["first"] + k
            st = {"step": s}
            for f, fl in (("loss", 3), ("grad_norm", 1), ("lr", 0), ("time", 3)):
                st[f] = value(rng, fl)
                pts[(f, f, s)] = st[f]
            layers = {}
            for i, name in enumerate(self.layers):
                if (s * 7 + i) % 11 == 0:
                    layers[name] = None		# no value this step
                else:
                    layers[name] = value(rng, i % 4)
                    pts[("layer_grad", name, s)] = layers[name]
            st["layers"] = layers
            weights = {name: value(rng, (i + 1) % 4) for i, name in enumerate(self.layers[:4])}
            for name, v in weights.items():
                pts[("layer_weight", name, s)] = v
            st["weights"] = weights
            if self.w == 1:
                st["metrics"] = {"acc": value(rng, 2)}
                st["clip"] = {"max_norm": 1.0, "pre_norm": value(rng, 3)}
                pts[("metric", "acc", s)] = st["metrics"]["acc"]
                pts[("clip_max_norm", "clip_max_norm", s)] = 1.0
                pts[("clip_pre_norm", "clip_pre_norm", s)] = st["clip"]["pre_norm"]
            body_steps.append(st)
        slot["versions"].append({k: vkey(v) for k, v in pts.items()})
        slot["status"].append("unsent")
        return body_steps

    def _encode(self, steps, meta):
        rng = self.rng
        num = lambda v: "null" if v is None else spell(rng, v)
        parts = ['{"run":%s' % json.dumps(self.run)]
        if meta:
            parts.append(',"meta":{"project":"crash","layers":{%s:{"numel":9,"depth":0}}}'
                         % json.dumps(self.layers[0]))
        compact = self.w != 1
        if compact:
            parts.append(',"layer_names":%s' % json.dumps(self.layers, ensure_ascii=self.w == 2))
        out = []
        for st in steps:
            f = ['"step":%d' % st["step"]]
            for k in ("loss", "grad_norm", "lr", "time"):
                f.append('"%s":%s' % (k, num(st[k])))
            if compact:
                f.append('"layers":[%s]' % ",".join(num(st["layers"][n]) for n in self.layers))
            else:
                f.append('"layers":{%s}' % ",".join('%s:%s' % (json.dumps(n), num(v))
                                                    for n, v in st["layers"].items()))
            f.append('"weights":{%s}' % ",".join('%s:%s' % (json.dumps(n), num(v))
                                                 for n, v in st["weights"].items()))
            if "metrics" in st:
                f.append('"metrics":{"acc":%s}' % num(st["metrics"]["acc"]))
                f.append('"clip":{"max_norm":1.0,"pre_norm":%s}' % num(st["clip"]["pre_norm"]))
            out.append("{" + ",".join(f) + "}")
        parts.append(',"steps":[%s]}' % ",".join(out))
        return "".join(parts).encode()

    def cycle(self, port, stop):
        """Post until the daemon goes away (or stop is set)."""
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        first = True
        while not stop.is_set():
            if self.slots and self.rng.random() < RESEND:
                slot = self.rng.choice(self.slots)
            else:
                slot = {"first": self.next_step, "versions": [], "status": []}
                self.next_step += STEPS
                self.slots.append(slot)
            body = self._encode(self._new_version(slot), meta=first and self.w == 2)
            first = False
            try:
                conn.request("POST", "/api/v1/ingest", body, {"Content-Type": "application/json"})
                r = conn.getresponse()
                answer = r.read()
            except (OSError, http.client.HTTPException):
                slot["status"][-1] = "maybe"	# sent, or not: no answer
                return
            self.answers += 1
            if r.status == 200:
                slot["status"][-1] = "acked"
            elif r.status == 503:
                slot["status"][-1] = "maybe"
                self.refused += 1
                time.sleep(0.05)
            else:
                slot["status"][-1] = "error %d %s" % (r.status, answer[:200])
                return
        conn.close()


def export(d, run):
    st, _ = d.get("/api/v1/runs/%s" % run)
    if st == 404:
        return {}
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=60)
    conn.request("GET", "/api/v1/runs/%s/export?format=jsonl" % run)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    assert r.status == 200, (r.status, data[:200])
    got = {}
    for line in data.splitlines():
        p = json.loads(line)
        got[(p["kind"], p["series"], p["step"])] = vkey(p["value"])
    return got


def check(wr, got):
    """Compare what the run holds with what its writer sent: returns a dict
    of counts and a few example lines."""
    res = {"acked": 0, "lost": 0, "changed": 0, "torn": 0, "stray": 0, "maybe_present": 0,
           "maybe_absent": 0}
    ex = []
    by_step = {}
    for slot in wr.slots:
        for k in range(STEPS):
            by_step[slot["first"] + k] = slot
    seen = set()
    for slot in wr.slots:
        keys = slot["versions"][0].keys()
        present = {k: got[k] for k in keys if k in got}
        seen.update(present)
        acked = [i for i, s in enumerate(slot["status"]) if s == "acked"]
        errors = [s for s in slot["status"] if s.startswith("error")]
        if errors:
            ex.append("slot at step %d: %s" % (slot["first"], errors[0]))
        # The versions that may be stored: the last acknowledged one and any
        # sent after it; before any acknowledgement, also none at all.
        start = acked[-1] if acked else 0
        allowed = [i for i in range(start, len(slot["versions"]))
                   if slot["status"][i] in ("acked", "maybe")]
        whole = [i for i in allowed if present == slot["versions"][i]]
        if acked:
            last = slot["versions"][acked[-1]]
            res["acked"] += len(last)
            if whole:
                continue
            lost = [k for k in last if k not in present]
            changed = [k for k in present
                       if not any(present[k] == slot["versions"][i][k] for i in allowed)]
            res["lost"] += len(lost)
            res["changed"] += len(changed)
            for k in lost[:2]:
                ex.append("lost %s %s step %d (sent %s)" % (k + (show(last[k]),)))
            for k in changed[:2]:
                ex.append("changed %s %s step %d: sent %s, got %s"
                          % (k + (show(last[k]), show(present[k]))))
            if not lost and not changed:
                res["torn"] += 1
                ex.append("slot at step %d holds a mix of versions" % slot["first"])
        elif not present:
            res["maybe_absent"] += 1
        elif whole:
            res["maybe_present"] += 1
        else:
            res["torn"] += 1
            if len(ex) < 8:
                ex.append("unanswered request at step %d stored in part: %d of %d points, "
                          "or with other values" % (slot["first"], len(present),
                                                   len(slot["versions"][0])))
    for k in got:
        if k not in seen:
            res["stray"] += 1
            if len(ex) < 8:
                ex.append("stray point %s %s step %d = %s (%s)"
                          % (k + (show(got[k]), "in a request's steps" if k[2] in by_step
                                  else "at a step never sent")))
    return res, ex


def counters(d, run, got):
    """Mismatches between GET /runs/{run}'s per-series counters and the
    points the export gave."""
    st, r = d.get("/api/v1/runs/%s" % run)
    if st != 200:
        return ["GET /runs/%s: %s" % (run, st)]
    n, last = {}, {}
    for (kind, name, step) in got:
        n[(kind, name)] = n.get((kind, name), 0) + 1
        last[(kind, name)] = max(last.get((kind, name), -1), step)
    bad = []
    for s in r["series"]:
        k = (s["kind"], s["name"])
        if s["points"] != n.get(k, 0) or s["last_step"] != last.get(k):
            bad.append("%s %s: points %s last_step %s; export has %s, %s"
                       % (k + (s["points"], s["last_step"], n.get(k, 0), last.get(k))))
    if r["points"] != len(got):
        bad.append("run points %s, export has %d" % (r["points"], len(got)))
    return bad


def kill_in_startup(d, delay):
    """Start the daemon on d's file and kill it after delay seconds, while it
    recovers the WAL, loads the open tails and rebuilds the detector."""
    with open(os.path.join(d.tmp, "daemon.log"), "ab") as log:
        p = subprocess.Popen([os.path.join(BUILD, "gradwatchd"), "--http",
                              "127.0.0.1:%d" % free_port(), "--ws", "127.0.0.1:%d" % free_port(),
                              "--db", d.db], stderr=log)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()


def main():
    rng = random.Random(SEED)
    writers = [Writer(w, rng.randrange(1 << 30)) for w in range(3)]
    d = Daemon()
    started = kills = early = fast = 0
    t0 = time.time()
    try:
        for c in range(CYCLES + 1):
            if c > 0 and rng.random() < 0.25:
                kill_in_startup(d, rng.uniform(0, 0.15))
                early += 1
            try:
                d.start()
                started += 1
            except RuntimeError as e:
                t.ok(False, "the daemon restarts after kill %d" % c, str(e))
                break
            stop = threading.Event()
            ths = [threading.Thread(target=w.cycle, args=(d.port, stop)) for w in writers]
            for th in ths:
                th.start()
            if c == CYCLES:
                time.sleep(0.5)
                stop.set()
                for th in ths:
                    th.join()
                break
            # Kill at a random moment: sometimes at once, mostly under load.
            time.sleep(rng.choice([0, rng.uniform(0.05, 0.3)]) if rng.random() < 0.2
                       else rng.uniform(0.3, 1.8))
            try:
                mt = d.get("/metrics")[1]
                for line in mt.decode().splitlines():
                    if line.startswith("gradwatch_ingest_fast_parses_total "):
                        fast += int(line.split()[1])
            except (OSError, AttributeError):
                pass
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait()
            d.proc = None
            d.log.close()
            kills += 1
            for th in ths:
                th.join()
        t.is_(started, kills + 1, "the daemon restarted after each of %d kills" % kills)
        load = time.time() - t0
        res = {}
        exs = []
        bad_counters = []
        for wr in writers:
            got = export(d, wr.run)
            r, ex = check(wr, got)
            for k, v in r.items():
                res[k] = res.get(k, 0) + v
            exs += ["%s: %s" % (wr.run, e) for e in ex]
            bad_counters += ["%s: %s" % (wr.run, e) for e in counters(d, wr.run, got)]
        sent = sum(len(s["versions"]) for wr in writers for s in wr.slots)
        acked = sum(s["status"].count("acked") for wr in writers for s in wr.slots)
        print("# %d cycles in %.1f s: %d requests sent, %d acknowledged, %d refused (503), "
              "%d fast parses; %d more kills during start-up"
              % (kills, load, sent, acked, sum(w.refused for w in writers), fast, early))
        print("# acknowledged points %d: lost %d, changed %d; unanswered requests stored whole "
              "%d, absent %d, torn %d; stray points %d"
              % (res["acked"], res["lost"], res["changed"], res["maybe_present"],
                 res["maybe_absent"], res["torn"], res["stray"]), flush=True)
        t.ok(acked > 20 * max(kills, 1) // 2 and res["acked"] > 0,
             "the writers got requests acknowledged between kills (%d)" % acked)
        t.ok(not [e for e in exs if "error" in e], "no request was refused as invalid",
             *[e for e in exs if "error" in e][:5])
        t.is_(res["lost"], 0, "no acknowledged point is lost", )
        t.is_(res["changed"], 0, "no acknowledged point changed a bit")
        t.is_(res["torn"], 0, "every request is stored whole or not at all")
        t.is_(res["stray"], 0, "nothing is stored that was not sent")
        if exs:
            for e in exs[:12]:
                print("#   %s" % e)
        t.ok(not bad_counters, "each series' points and last step match what is stored",
             *bad_counters[:8])
        t.ok(fast > 0, "the fast parser took part (%d bodies)" % fast)
        t.is_(d.stop(), 0, "the daemon stops cleanly after the last cycle")
        db = sqlite3.connect(d.db)
        t.is_(db.execute("PRAGMA integrity_check").fetchall(), [("ok",)],
              "PRAGMA integrity_check is ok")
        t.is_(db.execute("SELECT count(*) FROM quarantine").fetchone()[0], 0,
              "no row was quarantined as damaged")
        db.close()
        with open(os.path.join(d.tmp, "daemon.log"), errors="replace") as f:
            damaged = [l.rstrip() for l in f if "damaged" in l or "corrupt" in l]
        t.ok(not damaged, "the daemon's log names no damaged row", *damaged[:5])
    finally:
        d.__exit__(None, None, None)


main()
t.done()
