#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The binding's side of the spool and of meta: Run(meta=...) joins the
run's metadata (and bad meta raises at open); with spool_dir and nothing
listening, close says SPOOLED and leaves <run>.gwspool; gradwatch.sync()
sends a file or a directory of them once the daemon is up (counts,
messages, the file removed, every step there, the run finished); a
program that sets only $GRADWATCH_SPOOL spools at exit; sync() against no
daemon gives up in time and keeps the file, and sync() without a path
takes $GRADWATCH_SPOOL; a missing path is INVALID."""
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gwpy import PYTHON, TAP, Daemon, env_for_child, free_port, points, require_lib  # noqa: E402

require_lib()
import gradwatch  # noqa: E402

t = TAP()
tmp = tempfile.mkdtemp(prefix="gw-pyspool.")
spool = os.path.join(tmp, "spool")
N = 250


def open_error(**kw):
    try:
        gradwatch.Run(**kw).close(0)
    except gradwatch.GradwatchError as e:
        return e.status, str(e)
    return None, ""


try:
    dead = "http://127.0.0.1:%d" % free_port()
    t.is_((gradwatch.Status.SPOOLED, gradwatch.Status.BUSY), (-8, -9), "Status knows SPOOLED and BUSY")

    # ---- meta ------------------------------------------------------------------
    st, msg = open_error(url=dead, meta={"project": "x"})
    t.ok(st == gradwatch.Status.INVALID and "meta_json" in msg and "project" in msg,
         "meta may not name project", msg)
    st, msg = open_error(url=dead, meta={"x": float("nan")})
    t.ok(st == gradwatch.Status.INVALID and "meta" in msg, "meta that JSON cannot hold raises", msg)
    st, msg = open_error(url=dead, meta="[1]")
    t.ok(st == gradwatch.Status.INVALID and "object" in msg, "meta that is not an object raises", msg)

    # ---- spool, then sync ----------------------------------------------------------
    run = gradwatch.Run(name="py-spool", url=dead, spool_dir=spool, flush_interval=0.02,
                        meta={"distributed": {"world_size": 2, "rank": 0, "backend": "gloo"}})
    for s in range(N):
        run.log(s, loss=1.0 / (s + 1), layers={"fc.weight": s * 0.5})
    t0 = time.time()
    ok = run.close(0.5)
    t.ok(not ok and run.last_status == gradwatch.Status.SPOOLED and time.time() - t0 < 1.5,
         "nothing listens: close(0.5) says SPOOLED (%s, %.2f s)" % (run.last_status, time.time() - t0))
    f = os.path.join(spool, "py-spool.gwspool")
    t.ok(os.path.getsize(f) > 0 if os.path.exists(f) else False, "the run's spool file is there")
    with open(os.path.join(spool, "other.txt"), "w") as fo:
        fo.write("not a spool file, and not named like one\n")
    with Daemon() as d:
        res = gradwatch.sync(spool, url=d.url, timeout=20)
        t.ok(bool(res) and res.status == gradwatch.Status.OK, "sync(dir) went: %r" % (res,))
        t.is_((res.files, res.files_done, res.values, res.refused, res.damaged_bytes), (1, 1, 2 * N, 0, 0),
              "it counts one file, sent and removed, every value")
        t.ok(res.records >= 3 and any("removed" in m for m in res.messages),
             "and says so", "%r" % (res.messages,))
        t.ok(not os.path.exists(f) and os.path.exists(os.path.join(spool, "other.txt")),
             "the spool file is gone, other files stay")
        p = points(d, "py-spool", "loss,fc.weight")
        t.is_((p["loss"][0], p["fc.weight"][0]), (list(range(N)), list(range(N))), "every step arrived once")
        t.ok(all(abs(v - 1.0 / (s + 1)) < 1e-12 for s, v in zip(*p["loss"])), "with its value")
        st, info = d.get("/api/v1/runs/py-spool")
        t.is_(info.get("status"), "finished", "the finish was spooled and sent too")
        t.is_(info.get("meta", {}).get("distributed"), {"world_size": 2, "rank": 0, "backend": "gloo"},
              "meta= is in the run's meta, as GET /api/v1/runs/{run} gives it")

        # ---- live, with meta --------------------------------------------------------
        with gradwatch.Run(name="py-meta", url=d.url, meta={"distributed": {"world_size": 8}}) as r:
            r.log(0, loss=1.0)
        t.is_(d.get("/api/v1/runs/py-meta")[1].get("meta", {}).get("distributed"), {"world_size": 8},
              "and so it is with a daemon that is up")

        # ---- $GRADWATCH_SPOOL, at exit ----------------------------------------------------
        import subprocess
        env = env_for_child(GRADWATCH_URL=dead, GRADWATCH_SPOOL=spool)
        p = subprocess.run([PYTHON, "-c", "import gradwatch\nr = gradwatch.Run(name='py-exit', close_timeout=0.3)\n"
                            "for s in range(40): r.log(s, loss=s)\n"], env=env, capture_output=True, text=True,
                           timeout=60)
        f = os.path.join(spool, "py-exit.gwspool")
        t.ok(p.returncode == 0 and os.path.exists(f), "a program with $GRADWATCH_SPOOL spools at exit",
             p.stderr[-300:])
        res = gradwatch.sync(f, url=dead, timeout=0.5)
        t.ok(res.status == gradwatch.Status.NO_DAEMON and os.path.exists(f) and res.files_done == 0,
             "sync(file) against no daemon gives up in time and keeps it (%s)" % res.status.name,
             "%r" % (res.messages,))
        os.environ["GRADWATCH_SPOOL"] = spool
        try:
            res = gradwatch.sync(url=d.url)
        finally:
            del os.environ["GRADWATCH_SPOOL"]
        t.ok(res and not os.path.exists(f) and res.values == 40,
             "then sync() sends it, from $GRADWATCH_SPOOL: %r" % (res,))
        t.is_(points(d, "py-exit", "loss")["loss"][0], list(range(40)), "all 40 steps")
        t.is_(d.get("/api/v1/runs/py-exit")[1].get("status"), "finished", "the run is finished")

    res = gradwatch.sync(os.path.join(tmp, "nowhere"), url=dead, timeout=1)
    t.ok(res.status == gradwatch.Status.INVALID and res.messages and "nowhere" in res.messages[0],
         "a missing path: INVALID, said", "%r" % (res,))
finally:
    shutil.rmtree(tmp, ignore_errors=True)
t.done()
