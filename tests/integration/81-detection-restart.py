#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Detection across a daemon restart: alerts survive it, a firing alert
is not raised twice, and the baselines rebuilt from the stored history
still catch an explosion that starts after the restart."""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from gwtest import Daemon, TAP, trace

t = TAP()

d = Daemon()
d.start()
rnn = trace("explode_rnn_tanh_high_lr")       # onset 910, first non-finite 938
nan = trace("nan_inf_input_batch")            # NaN from 640 on
d.post_steps("rnn", rnn[:900])
d.post_steps("nan", nan[:650])
before = d.alerts("nan")
rnn_before = {a["id"] for a in d.alerts("rnn")}
t.is_([a["kind"] for a in before if a["state"] == "firing"], ["nonfinite"], "the NaN run fires nonfinite before the restart")
t.is_(d.stop(), 0, "the daemon stops cleanly")

d.start()
after = d.alerts("nan")
t.is_([(a["id"], a["state"]) for a in after], [(a["id"], a["state"]) for a in before], "alerts survive the restart")
st, run = d.get("/api/v1/runs/nan")
t.is_(run["health"], "critical", "the run's health survives the restart")
d.post_steps("nan", nan[650:])
t.is_(len([a for a in d.alerts("nan") if a["kind"] == "nonfinite"]), 1, "a firing alert is not raised again after the restart")

d.post_steps("rnn", rnn[900:])
ra = d.alerts("rnn")
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
