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
