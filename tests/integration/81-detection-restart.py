#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Detection across a daemon restart: alerts survive it, a firing alert
is not raised twice, and the baselines rebuilt from the stored history
still catch an explosion that starts after the restart."""
import json, os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from gwtest import TOP, Daemon, TAP

t = TAP()
traces = os.path.join(TOP, "tests", "data", "traces")


def steps(name):
    return [json.loads(l) for l in open(os.path.join(traces, name + ".jsonl")) if l.strip()]


def post_all(d, run, xs):
    for i in range(0, len(xs), 100):
        st, _ = d.post("/api/v1/ingest", {"run": run, "steps": xs[i:i + 100]})
        assert st == 200, st


def alerts(d, run):
    return d.get("/api/v1/alerts?run=" + run)[1]["alerts"]


d = Daemon()
d.start()
rnn = steps("explode_rnn_tanh_high_lr")       # onset 910, first non-finite 938
nan = steps("nan_inf_input_batch")            # NaN from 640 on
post_all(d, "rnn", rnn[:900])
post_all(d, "nan", nan[:650])
before = alerts(d, "nan")
rnn_before = {a["id"] for a in alerts(d, "rnn")}
t.is_([a["kind"] for a in before if a["state"] == "firing"], ["nonfinite"], "the NaN run fires nonfinite before the restart")
t.is_(d.stop(), 0, "the daemon stops cleanly")

d.start()
after = alerts(d, "nan")
t.is_([(a["id"], a["state"]) for a in after], [(a["id"], a["state"]) for a in before], "alerts survive the restart")
st, run = d.get("/api/v1/runs/nan")
t.is_(run["health"], "critical", "the run's health survives the restart")
post_all(d, "nan", nan[650:])
t.is_(len([a for a in alerts(d, "nan") if a["kind"] == "nonfinite"]), 1, "a firing alert is not raised again after the restart")

post_all(d, "rnn", rnn[900:])
ra = alerts(d, "rnn")
exp = [a for a in ra if a["kind"] == "grad_explosion"]
nf = [a for a in ra if a["kind"] == "nonfinite"]
t.ok(exp and exp[0]["fire_step"] < 938, "explosion fires before the first NaN after a restart mid-run (fire step %s)"
     % (exp[0]["fire_step"] if exp else None))
t.ok(nf and nf[0]["fire_step"] == 938, "nonfinite fires at step 938")
firing = [(a["kind"], a["series"]) for a in ra if a["state"] == "firing"]
t.is_(len(firing), len(set(firing)), "at most one firing alert per kind and series (%s)" % firing)
t.ok(all(a["fire_step"] >= 900 for a in ra if a["id"] not in rnn_before),
     "alerts raised after the restart are about steps after it")
with open(os.path.join(d.tmp, "daemon.log")) as f:
    log = f.read()
t.ok("rebuilt the detector" in log, "the log says the detector was rebuilt from history")
d.stop()
d.__exit__(None, None, None)
t.done()
