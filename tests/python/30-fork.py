#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Processes: training with a watched model and a DataLoader whose two
worker processes are forked from it sends every step exactly once, and
the workers' inherited run is inert (logging there neither raises nor
sends); a child of os.fork() can open its own run, and its exit (atexit
included) neither closes nor blocks on the parent's.  For notebooks:
importing gradwatch starts no thread and installs no signal handler,
and neither does opening a run (but its one sender thread)."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gwpy import PYTHON, TAP, Daemon, env_for_child, require_lib, points, require_torch  # noqa: E402

require_lib()
torch = require_torch()
import gradwatch  # noqa: E402
import gradwatch.torch as gwt  # noqa: E402

t = TAP()
RUN = None      # the parent's run, inherited by the workers


class Blobs(torch.utils.data.Dataset):
    """Synthetic two-class points; each item also reports, from the worker,
    what the inherited run looked like there."""

    def __len__(self):
        return 64

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        y = i % 2
        x = torch.randn(6, generator=g) + (2.0 if y else -2.0)
        RUN.log(100000 + i, loss=123.0, metrics={"from_worker": 1.0})   # must do nothing
        RUN.log_loss(100000 + i, 1.0)
        info = torch.tensor([os.getpid(), int(RUN.closed), RUN.errors])
        return x, y, info


with Daemon() as d:
    # ---- DataLoader workers, forked -------------------------------------------------
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    RUN = gradwatch.Run(name="f-loader", url=d.url, flush_interval=0.05)
    w = gwt.watch(model, RUN, opt)
    loader = torch.utils.data.DataLoader(Blobs(), batch_size=8, shuffle=True, num_workers=2,
                                         multiprocessing_context="fork")
    seen = []
    t0 = time.time()
    for epoch in range(3):
        for x, y, info in loader:
            seen.append(info)
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            w.loss(loss)
            opt.step()
    took = time.time() - t0
    info = torch.cat(seen)
    pids = set(info[:, 0].tolist())
    t.ok(os.getpid() not in pids and len(pids) >= 2, "the items came from worker processes (%d pids)" % len(pids))
    t.ok(bool((info[:, 1] == 1).all()), "in every worker the inherited run reads as closed")
    t.ok(bool((info[:, 2] == 0).all()), "and logging to it there counted no error, raised nothing")
    t.ok(RUN.close(5.0), "the parent's run closes cleanly (%.1f s of training)" % took)
    st, runinfo = d.get("/api/v1/runs/f-loader")
    steps = 3 * 64 // 8
    loss = points(d, "f-loader", "loss")["loss"]
    t.is_(loss[0], list(range(steps)), "every optimizer step's loss arrived once, nothing from the workers")
    t.is_(points(d, "f-loader", "0.weight")["0.weight"][0], list(range(steps)), "and every layer's norms")
    t.ok(not any(s["name"] == "from_worker" for s in runinfo["series"]), "no series was made by a worker")

    # ---- os.fork: the child opens its own run; exits without touching the parent's ----
    parent = gradwatch.Run(name="f-parent", url=d.url)
    for s in range(10):
        parent.log(s, loss=float(s))
    r, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        ok = 1
        try:
            parent.log(50, loss=5.0)
            t1 = time.time()
            closed = parent.close(5.0)
            ok = int(parent.closed and not closed and time.time() - t1 < 0.5 and parent.errors == 0)
            with gradwatch.Run(name="f-child", url=d.url) as mine:
                for s in range(5):
                    mine.log(s, loss=float(s))
            ok = ok and int(mine.last_status == gradwatch.Status.OK)
            # An open run of the child, closed by atexit at sys.exit.
            left = gradwatch.Run(name="f-child-left", url=d.url)
            left.log(0, loss=1.0)
        except BaseException:
            ok = 0
        os.write(wfd, b"%d" % ok)
        os.close(wfd)
        sys.exit(0)         # atexit runs here, in the child
    os.close(wfd)
    t0 = time.time()
    _, status = os.waitpid(pid, 0)
    child_ok = os.read(r, 16)
    os.close(r)
    t.ok(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and time.time() - t0 < 10,
         "the forked child exits 0 (in %.1f s)" % (time.time() - t0))
    t.is_(child_ok, b"1", "in it, the parent's run is inert: logging is ignored, close() returns at once")
    for s in range(10, 20):
        parent.log(s, loss=float(s))
    t.ok(parent.close(5.0), "the parent's run still works after the fork and the child's exit")
    t.is_(points(d, "f-parent", "loss")["loss"][0], list(range(20)), "its steps arrived, none of the child's")
    t.is_(points(d, "f-child", "loss")["loss"][0], list(range(5)), "the child's own run arrived")
    t.is_(d.get("/api/v1/runs/f-child-left")[1].get("status"), "finished",
          "the child's run left open was closed by the child's atexit")

# ---- notebooks: nothing at import, no signal handlers -------------------------------
code = r"""
import os, signal, threading
def tasks(): return len(os.listdir('/proc/self/task'))
before = (tasks(), threading.active_count(), [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE)])
import gradwatch, gradwatch.torch
after_import = (tasks(), threading.active_count(), [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE)])
r = gradwatch.Run(url='http://127.0.0.1:9')
after_open = (tasks(), threading.active_count(), [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE)])
r.close(0.2)
print(before[0] == after_import[0], before[1:] == after_import[1:], after_open[0] == before[0] + 1, after_open[1:] == before[1:])
"""
p = subprocess.run([PYTHON, "-c", code], env=env_for_child(), capture_output=True, text=True, timeout=60)
t.is_(p.stdout.split(), ["True"] * 4,
      "import starts no thread and changes no signal handler; a run adds one (C) thread, no handler")
t.done()
