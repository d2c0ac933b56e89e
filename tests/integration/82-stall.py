#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Stall detection runs on a timer: a run that stops sending steps gets a
stall warning (status "stalled"), then a critical one, and the next step
resolves it; a finished run is never called stalled.  The deadlines are
shortened through the config file."""
import os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from gwtest import Daemon, TAP

t = TAP()
tmp = os.environ.get("TMPDIR", "/tmp")
conf = os.path.join(tmp, "gw-stall-%d.conf" % os.getpid())
with open(conf, "w") as f:
    f.write("detector.stall.min_seconds 1\ndetector.stall.critical_factor 2\n")
try:
    with Daemon("-c", conf) as d:
        for s in range(20):
            d.post("/api/v1/ingest", {"run": "quiet", "steps": [{"step": s, "loss": 1.0}]})
            d.post("/api/v1/ingest", {"run": "done", "steps": [{"step": s, "loss": 1.0}]})
            time.sleep(0.02)
        d.post("/api/v1/runs/done/finish", {"status": "finished"})
        deadline = time.time() + 6
        seen = None
        while time.time() < deadline:
            al = d.get("/api/v1/alerts?run=quiet")[1]["alerts"]
            if any(a["kind"] == "stall" for a in al):
                seen = time.time()
                break
            time.sleep(0.1)
        t.ok(seen is not None, "a quiet run gets a stall alert")
        st, run = d.get("/api/v1/runs/quiet")
        t.is_(run["status"], "stalled", "and its status is stalled")
        a = [a for a in d.get("/api/v1/alerts?run=quiet")[1]["alerts"] if a["kind"] == "stall"][0]
        t.is_(a["severity"], "warning", "first as a warning")
        time.sleep(2.5)
        a = [a for a in d.get("/api/v1/alerts?run=quiet")[1]["alerts"] if a["kind"] == "stall"]
        t.is_([x["severity"] for x in a], ["critical"], "then one alert, escalated to critical")
        d.post("/api/v1/ingest", {"run": "quiet", "steps": [{"step": 20, "loss": 1.0}]})
        a = [a for a in d.get("/api/v1/alerts?run=quiet")[1]["alerts"] if a["kind"] == "stall"]
        t.is_([x["state"] for x in a], ["resolved"], "the next step resolves it")
        t.is_(d.get("/api/v1/runs/quiet")[1]["status"], "running", "and the run is running again")
        t.is_(d.get("/api/v1/alerts?run=done")[1]["alerts"], [], "a finished run is never stalled")
        t.ok(a[0]["message"] != "", "the stall alert explains itself: %s" % a[0]["message"][:100])
finally:
    os.unlink(conf)
t.done()
