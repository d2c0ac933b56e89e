#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Runs that go quiet leave memory (run-idle-evict, here 4 s): what the
detector and the writer's cache hold of them is freed, /metrics says so
and the daemon's resident size falls back near what it is once every run
is finished; a run that comes back is restored as after a restart: its
firing alert stays the same alert (never raised again), an explosion
after the break is still caught, and a quiet run evicted before its
stall deadline still gets its stall alert, resolved by its next step."""
import os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from gwtest import Daemon, TAP, trace

RUNS, SERIES, STEPS = 20, 2000, 3
t = TAP()
tmp = os.environ.get("TMPDIR", "/tmp")
conf = os.path.join(tmp, "gw-evict-%d.conf" % os.getpid())
with open(conf, "w") as f:
    f.write("run-idle-evict 4\ndetector.stall.min_seconds 6\n")


def metrics(d):
    st, body = d.get("/metrics")
    out = {}
    for line in (body.decode() if isinstance(body, bytes) else body).splitlines():
        if line and not line.startswith("#") and "{" not in line:
            k, v = line.split()
            out[k] = float(v)
    return out


def rss_mib(d):
    for line in open("/proc/%d/status" % d.proc.pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0


def sanitized(d):
    """A sanitizer's allocator keeps freed memory: resident sizes say nothing."""
    maps = open("/proc/%d/maps" % d.proc.pid).read()
    return "libasan" in maps or "libtsan" in maps


def rss_ok(d, cond, name):
    if sanitized(d):
        return t.ok(True, "%s # SKIP sanitizer build" % name)
    return t.ok(cond, name)


def wait_for(cond, secs):
    deadline = time.time() + secs
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


try:
    with Daemon("-c", conf) as d:
        # Three small runs first: one to stall, one with a firing NaN
        # alert, one that explodes after the break.
        for s in range(20):
            d.post("/api/v1/ingest", {"run": "quiet", "steps": [{"step": s, "loss": 1.0}]})
            time.sleep(0.02)
        quiet_last = time.time()
        nan = trace("nan_inf_input_batch")            # NaN from 640 on
        rnn = trace("explode_rnn_tanh_high_lr")       # onset 910, first non-finite 938
        d.post_steps("nan", nan[:650])
        d.post_steps("rnn", rnn[:900])
        before = [a for a in d.alerts("nan") if a["kind"] == "nonfinite"]
        rnn_before = {a["id"] for a in d.alerts("rnn")}

        # Then many series: RUNS runs of SERIES tensors, a request each.
        names = ["blk%d.w%d.weight" % (i // 100, i) for i in range(SERIES)]
        for r in range(RUNS):
            d.post_steps("big%d" % r, [{"step": k, "loss": 2.0 - 0.01 * k, "grad_norm": 1.0,
                                        "layers": {n: 0.5 + 0.001 * ((k + j) % 7) for j, n in enumerate(names)}}
                                       for k in range(STEPS)])
        loaded = rss_mib(d)
        time.sleep(1.5)                 # the gauges are sampled each second
        m = metrics(d)
        t.ok(m["gradwatch_tensors_in_memory"] >= SERIES * RUNS,
             "after the load, detection holds the tensors (%d)" % m["gradwatch_tensors_in_memory"])
        t.ok(m["gradwatch_series_cached"] >= SERIES * RUNS,
             "and the writer's cache their series (%d)" % m["gradwatch_series_cached"])

        t.ok(wait_for(lambda: metrics(d)["gradwatch_runs_in_memory"] == 0, 15),
             "every run quiet for 4 s is evicted")
        time.sleep(0.5)
        m = metrics(d)
        t.is_((m["gradwatch_runs_evicted"], m["gradwatch_tensors_in_memory"], m["gradwatch_series_cached"],
               m["gradwatch_tail_points_cached"]), (RUNS + 3.0, 0.0, 0.0, 0.0),
              "/metrics: %d runs evicted, no tensor, series or tail point left in memory" % (RUNS + 3))
        t.ok(m["gradwatch_run_evictions_total"] >= RUNS + 3, "evictions are counted")
        idle = rss_mib(d)
        rss_ok(d, idle < loaded * 0.6, "resident size falls: %.0f MiB loaded, %.0f MiB evicted" % (loaded, idle))

        # The NaN run comes back: its alert is the same one, still firing.
        d.post_steps("nan", nan[650:])
        after = [a for a in d.alerts("nan") if a["kind"] == "nonfinite"]
        t.is_([(a["id"], a["state"]) for a in after], [(a["id"], a["state"]) for a in before],
              "a firing alert survives the eviction: same id, not raised again")
        t.ok(metrics(d)["gradwatch_run_restores_total"] >= 1, "the restore is counted")

        # The RNN comes back and explodes: caught before its first NaN.
        d.post_steps("rnn", rnn[900:])
        ra = d.alerts("rnn")
        exp = [a for a in ra if a["kind"] == "grad_explosion"]
        nf = [a for a in ra if a["kind"] == "nonfinite"]
        t.ok(exp and exp[0]["fire_step"] < 938, "explosion fires before the first NaN after an eviction (fire step %s)"
             % (exp[0]["fire_step"] if exp else None))
        t.ok(nf and nf[0]["fire_step"] == 938, "nonfinite fires at step 938")
        firing = [(a["kind"], a["series"]) for a in ra if a["state"] == "firing"]
        t.is_(len(firing), len(set(firing)), "at most one firing alert per kind and series (%s)" % firing)
        t.ok(all(a["fire_step"] >= 900 for a in ra if a["id"] not in rnn_before and a["kind"] != "stall"),
             "alerts raised after the eviction are about steps after it")

        # The quiet run was evicted at 4 s; its stall deadline is 6 s.
        t.ok(wait_for(lambda: any(a["kind"] == "stall" for a in d.alerts("quiet")), 10),
             "an evicted run still gets its stall alert")
        a = [a for a in d.alerts("quiet") if a["kind"] == "stall"]
        t.ok(a and a[0]["fired_at"] >= quiet_last + 5.5, "after its deadline, when it was evicted already")
        t.is_(d.get("/api/v1/runs/quiet")[1]["status"], "stalled", "and its status is stalled")
        d.post("/api/v1/ingest", {"run": "quiet", "steps": [{"step": 20, "loss": 1.0}]})
        a = [a for a in d.alerts("quiet") if a["kind"] == "stall"]
        t.is_([x["state"] for x in a], ["resolved"], "its next step resolves it, the same alert")
        t.is_(d.get("/api/v1/runs/quiet")[1]["status"], "running", "and the run is running again")

        # Finished runs hold nothing either: the bound is the same.
        for r in range(RUNS):
            d.post("/api/v1/runs/big%d/finish" % r, {"status": "finished"})
        time.sleep(1.5)
        finished = rss_mib(d)
        rss_ok(d, idle < finished + 16, "quiet runs cost about what finished ones do: %.0f MiB evicted, %.0f MiB finished"
             % (idle, finished))
finally:
    os.unlink(conf)
t.done()
