#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A run's meta.config is bounded (max-meta-config, default 64K, measured
as stored: compact JSON): one byte over is a 400 that names the limit and
stores nothing of the request; one at the limit is taken.  GET
/api/v1/runs stays small beside such a run: it lists each run without its
meta and with its config cut to 2 KiB, while GET /api/v1/runs/{run} and
GET /api/v1/runs?config=1 give the whole config."""
import json
import os
import subprocess
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from gwtest import BUILD, Daemon, TAP  # noqa: E402

LIMIT = 64 << 10
BRIEF = 2048
t = TAP()


def config_of(size, first=None):
    """A config of exactly size bytes as compact JSON (ASCII only)."""
    c = dict(first or {})
    fixed = len(json.dumps(dict(c, pad=""), separators=(",", ":")))
    c["pad"] = "x" * (size - fixed)
    assert len(json.dumps(c, separators=(",", ":"))) == size
    return c


def raw_get(d, path):
    with urllib.request.urlopen(d.url + path, timeout=30) as r:
        return r.status, r.read()


def run_of(d, key):
    st, body = d.get("/api/v1/runs/" + key)
    return body if st == 200 else None


def refused(d, body, limit, what):
    st, err = d.post("/api/v1/ingest", body)
    msg = err.get("message", "") if isinstance(err, dict) else repr(err)
    t.ok(st == 400 and err.get("error") == "bad_request" and "meta.config" in msg and
         "max-meta-config" in msg and str(limit) in msg,
         "%s: 400 bad_request naming meta.config and the limit" % what, "got %r %r" % (st, err))


with Daemon() as d:
    # A run as it was before the refused request.
    st, _ = d.post("/api/v1/ingest", {"run": "m", "meta": {"project": "p", "config": {"lr": 0.1}},
                                      "steps": [{"step": 0, "loss": 2.0}]})
    t.is_(st, 200, "setup: a run with a small config")
    before = run_of(d, "m")

    big = config_of(LIMIT + 1, {"lr": 0.5})
    refused(d, {"run": "m", "meta": {"project": "q", "config": big},
                "steps": [{"step": s, "loss": 1.0} for s in range(1, 50)], "dropped": 7},
            LIMIT, "a config one byte over 64K")
    after = run_of(d, "m")
    t.is_((after["config"], after["project"], after["last_step"], after["points"], after["dropped"]),
          (before["config"], before["project"], before["last_step"], before["points"], before["dropped"]),
          "the run is unchanged: config, project, steps, points and dropped as before")
    t.is_(after["meta"], before["meta"], "and so is its meta")

    refused(d, {"run": "fresh", "meta": {"config": config_of(8 << 20)},
                "steps": [{"step": 0, "loss": 1.0}]}, LIMIT, "an 8 MB config")
    st, _ = d.get("/api/v1/runs/fresh")
    t.is_(st, 404, "the refused request created no run")

    at = config_of(LIMIT, {"lr": 0.25, "batch": 128})
    st, body = d.post("/api/v1/ingest", {"run": "at-limit", "meta": {"project": "p", "config": at},
                                         "steps": [{"step": 0, "loss": 1.0}]})
    t.is_(st, 200, "a config of exactly 64K is taken")
    one = run_of(d, "at-limit")
    t.is_(one and one["config"], at, "GET /api/v1/runs/{run} gives the whole config")
    t.is_(one and one["meta"].get("config"), at, "and its meta as sent")

    # The runs list beside it.
    st, raw = raw_get(d, "/api/v1/runs")
    runs = {r["run"]: r for r in json.loads(raw)["runs"]}
    t.ok(st == 200 and len(raw) < 2 * BRIEF,
         "GET /api/v1/runs stays small: %d bytes with a 64K config stored" % len(raw))
    r = runs.get("at-limit", {})
    t.ok("meta" not in r and "meta" not in runs.get("m", {}), "the list carries no meta")
    t.is_((r.get("config"), r.get("config_partial")), ({"lr": 0.25, "batch": 128}, True),
          "a large config is cut to the members that fit, marked config_partial")
    t.ok(len(json.dumps(r.get("config"), separators=(",", ":"))) <= BRIEF, "within 2 KiB")
    t.is_((runs.get("m", {}).get("config"), "config_partial" in runs.get("m", {})), ({"lr": 0.1}, False),
          "a small config is listed whole, unmarked")
    for k in ("run", "project", "status", "health", "first_step", "last_step", "started_at",
              "last_seen", "points", "dropped", "alerts_firing", "config"):
        if k not in r:
            t.ok(False, "a listed run lacks %s" % k)
            break
    else:
        t.ok(True, "a listed run still has every field of API.md")

    st, raw = raw_get(d, "/api/v1/runs?config=1")
    runs = {x["run"]: x for x in json.loads(raw)["runs"]}
    r = runs.get("at-limit", {})
    t.ok(st == 200 and r.get("config") == at and r.get("meta", {}).get("config") == at and
         "config_partial" not in r, "?config=1 lists the whole config and meta (%d bytes)" % len(raw))
    st, body = d.get("/api/v1/runs?config=2")
    t.ok(st == 400 and body.get("error") == "bad_request" and "config" in body.get("message", ""),
         "?config= other than 0 or 1 is a 400", repr((st, body)))

# The directive: a smaller limit, named in the refusal; -n checks its range.
tmp = tempfile.mkdtemp(prefix="gw-meta.")
conf = os.path.join(tmp, "small.conf")
with open(conf, "w") as f:
    f.write("max-meta-config 1K\n")
try:
    with Daemon("-c", conf) as d:
        refused(d, {"run": "s", "meta": {"config": config_of(1025)}}, 1024, "max-meta-config 1K, 1025 bytes")
        st, _ = d.post("/api/v1/ingest", {"run": "s", "meta": {"config": config_of(1024)}})
        t.is_(st, 200, "max-meta-config 1K takes 1024 bytes")
except RuntimeError as e:
    t.ok(False, "a daemon with max-meta-config 1K starts", str(e))
with open(conf, "w") as f:
    f.write("max-meta-config 8\n")
p = subprocess.run([os.path.join(BUILD, "gradwatchd"), "-n", "-c", conf], capture_output=True, text=True)
t.ok(p.returncode == 1 and "out of range" in p.stderr, "-n refuses a limit under 16 bytes", p.stderr)
p = subprocess.run([os.path.join(BUILD, "gradwatchd"), "--help"], capture_output=True, text=True)
t.ok("max-meta-config" in p.stdout + p.stderr, "--help lists max-meta-config")
os.remove(conf)
os.rmdir(tmp)
t.done()
