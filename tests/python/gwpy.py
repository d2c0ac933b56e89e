# SPDX-License-Identifier: MIT
"""Shared set-up for the Python binding's tests (not a test itself: the
tests are the numbered scripts beside it).  Puts the checkout's package
and tests/lib on sys.path, and points the binding at a library this
interpreter can load: $GRADWATCH_LIB, else the build's (under a
sanitizer build, the plain build/ one, since Python was not started with
the sanitizer's runtime).  Also: a Python for subprocesses, and small
helpers over the daemon's answers."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from gwtest import BUILD, TOP, TAP, Daemon, free_port  # noqa: E402,F401

PKG = os.path.join(TOP, "client_lib", "python")
sys.path.insert(0, PKG)
PYTHON = sys.executable or "/usr/bin/python3"


def require_lib():
    """Set GRADWATCH_LIB to a loadable library, or bail out (a failure)."""
    if os.environ.get("GRADWATCH_LIB"):
        return os.environ["GRADWATCH_LIB"]
    cands = [os.path.join(BUILD, "libgradwatch.so.0")]
    if "/san-" in BUILD or "tsan" in BUILD:
        cands = [os.path.join(TOP, "build", "libgradwatch.so.0")]
    for c in cands:
        if os.path.exists(c):
            os.environ["GRADWATCH_LIB"] = c
            return c
    print("Bail out! no loadable libgradwatch (tried %s); run make" % ", ".join(cands))
    raise SystemExit(1)


def require_torch():
    """Import torch, or bail out (a failure)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        print("Bail out! %s has no torch: make installs python3-torch" % PYTHON)
        raise SystemExit(1)
    return torch


def env_for_child(**extra):
    """The environment for a Python subprocess that imports gradwatch."""
    env = dict(os.environ)
    env["PYTHONPATH"] = PKG + os.pathsep + env.get("PYTHONPATH", "")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def points(d, run, series, extra=""):
    """{name: (steps, values)} of every point of the series (no downsampling)."""
    st, body = d.get("/api/v1/runs/%s/points?series=%s&max=1000000%s" % (run, series, extra))
    if st != 200:
        raise AssertionError("points %s %s: %s %r" % (run, series, st, body))
    return {k: (v["steps"], v["values"]) for k, v in body["series"].items()}


def close_to(a, b, rel=1e-5, abs_=1e-8):
    """a and b are numbers within rel (or abs_) of each other."""
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return a == b
    return abs(a - b) <= max(rel * max(abs(a), abs(b)), abs_)


def torch_job(mode, url, tmp, world=2, timeout=90):
    """Run the `world` ranks of a tests/python/torchdist.py job as torchrun
    would (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set); what each rank
    saw (its JSON), or None for a rank that failed (its log is printed
    as TAP comments).  The rendezvous port is a free port that another
    process may take first: a job whose rank says so is run again on a
    new port, three times at most."""
    for attempt in range(3):
        seen, logs = torch_job_once(mode, url, tmp, world, timeout)
        if all(s is not None for s in seen) or not any("address already in use" in l.lower()
                                                       for l in logs):
            break
        print("# rendezvous port taken: running %s again on another port" % mode)
    for log in logs:
        if log:
            print("# rank failed: %s" % log[-2000:].replace("\n", "\n# "))
    return seen


def torch_job_once(mode, url, tmp, world, timeout):
    """One try of torch_job: (what each rank saw or None, each failed rank's log or "")."""
    import json
    import subprocess
    port = free_port()
    procs, outs = [], []
    for r in range(world):
        out = os.path.join(tmp, "%s-%d.json" % (mode, r))
        outs.append(out)
        env = env_for_child(RANK=r, WORLD_SIZE=world, LOCAL_RANK=r, MASTER_ADDR="127.0.0.1",
                            MASTER_PORT=port, OMP_NUM_THREADS=1)
        log = open(out.replace(".json", ".log"), "wb")
        procs.append(subprocess.Popen([PYTHON, os.path.join(HERE, "torchdist.py"), mode, out, url],
                                      env=env, stdout=log, stderr=log))
    seen, logs = [], []
    for p, out in zip(procs, outs):
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rc = "timeout"
        if rc != 0:
            with open(out.replace(".json", ".log")) as f:
                logs.append("(%s) %s" % (rc, f.read()))
            seen.append(None)
        else:
            logs.append("")
            with open(out) as f:
                seen.append(json.load(f))
    return seen, logs


def series_match(t, d, key, steps, series, want_of, what, rel=2e-5):
    """TAP check: every point of each series of run `key` equals
    want_of(steps[str(step)], name), and exactly those steps are there."""
    got = points(d, key, ",".join(series))
    bad = []
    for name in series:
        st, vals = got.get(name, ([], []))
        if st != sorted(int(s) for s in steps):
            bad.append("%s: steps %s" % (name, st))
            continue
        for s, v in zip(st, vals):
            want = want_of(steps[str(s)], name)
            if not close_to(v, want, rel):
                bad.append("%s@%d: %r, want %r" % (name, s, v, want))
    return t.ok(not bad, what, *bad[:6])
