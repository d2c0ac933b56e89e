#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""No daemon: a watched training loop runs on while nothing listens (no
error, no exception, health unknown), flush and close return within
their timeouts and say why; against a daemon that accepts connections
and never answers, close still returns in time; and a daemon that
starts late receives everything that was buffered meanwhile."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gwpy import TAP, Daemon, free_port, require_lib, points, require_torch  # noqa: E402
import gwtest  # noqa: E402  (on the path now)

require_lib()
torch = require_torch()
import gradwatch  # noqa: E402
import gradwatch.torch as gwt  # noqa: E402

t = TAP()


def train(run, steps):
    """A small watched loop; returns (watcher, seconds)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    w = gwt.watch(model, run, opt, on_critical="raise")
    t0 = time.time()
    for s in range(steps):
        opt.zero_grad()
        x = torch.randn(16, 10)
        loss = (model(x) - x.sum(1, keepdim=True)).pow(2).mean()
        loss.backward()
        w.loss(loss)
        opt.step()
    w.remove()
    return w, time.time() - t0


# ---- nothing listens ----------------------------------------------------------------
port = free_port()
run = gradwatch.Run(name="d-none", url="http://127.0.0.1:%d" % port, flush_interval=0.05)
w, took = train(run, 300)
t.is_((w.step, run.errors), (300, 0), "300 watched steps ran with no daemon (%.2f s), nothing raised" % took)
t.is_(run.health, gradwatch.Health.UNKNOWN, "health is unknown")
t0 = time.time()
ok = run.flush(0.5)
dt = time.time() - t0
t.ok(not ok and run.last_status == gradwatch.Status.NO_DAEMON and dt < 1.0,
     "flush(0.5) gives up in %.2f s: %s" % (dt, run.last_status.name))
t.ok("127.0.0.1:%d" % port in run.last_error, "last_error says why: %r" % run.last_error)
t0 = time.time()
ok = run.close(1.0)
dt = time.time() - t0
t.ok(not ok and dt < 1.5, "close(1.0) returns in %.2f s (%s)" % (dt, run.last_status.name))

# ---- a daemon that accepts and never answers ----------------------------------------
mute = socket.socket()
mute.bind(("127.0.0.1", 0))
mute.listen(16)
run = gradwatch.Run(name="d-mute", url="http://127.0.0.1:%d" % mute.getsockname()[1], flush_interval=0.05)
for s in range(100):
    run.log(s, loss=1.0, grad_norm=2.0)
time.sleep(0.3)                 # the sender is now waiting for an answer
t0 = time.time()
ok = run.close(1.0)
dt = time.time() - t0
t.ok(not ok and dt < 1.5, "against a daemon that never answers, close(1.0) returns in %.2f s (%s)"
     % (dt, run.last_status.name))
mute.close()

# ---- the daemon comes up late ---------------------------------------------------------
port, ws = free_port(), free_port()
run = gradwatch.Run(name="d-late", url="http://127.0.0.1:%d" % port, flush_interval=0.05)
w, _ = train(run, 100)
time.sleep(0.2)
ports = iter([port, ws])
real_free_port = gwtest.free_port
gwtest.free_port = lambda: next(ports)
try:
    with Daemon() as d:
        gwtest.free_port = real_free_port
        ok = run.flush(15.0)
        t.ok(ok, "once the daemon is up, flush delivers what was buffered (%s)" % run.last_status.name)
        t.ok(run.close(5.0), "and close finishes the run")
        got = points(d, "d-late", "loss,0.weight")
        t.is_((got["loss"][0], got["0.weight"][0]), (list(range(100)), list(range(100))),
              "every step logged while it was down arrived")
        t.is_(d.get("/api/v1/runs/d-late")[1]["status"], "finished", "the run is finished")
finally:
    gwtest.free_port = real_free_port
t.done()
