#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks of gradwatch.torch that need what `make test`'s machine lacks: a
GPU, and a torch recent enough to run FSDP on the CPU (Debian's 1.13 under
Python 3.11 cannot import it).  Not part of `make test`; run it where
CUDA exists (bench/README.md), against a gradwatchd it starts itself.

1. On the GPU, watch()'s default (the copy non-blocking, read a step
   later): every logged norm and loss equals the test's own.
2. A GradScaler (fp16) not passed to watch() is found from scale(): the
   norms and the loss are logged unscaled, its skipped steps and scale too.
3. FSDP (use_orig_params=True) and FSDP2 (fully_shard) over gloo on the
   CPU, two ranks: the per-tensor norms are the full tensors'.
TAP output; exit status 1 when a check fails."""
import math
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gwpy import TAP, Daemon, close_to, points, require_lib, require_torch, series_match, torch_job  # noqa: E402

require_lib()
torch = require_torch()
import gradwatch  # noqa: E402
import gradwatch.torch as gwt  # noqa: E402

t = TAP()
tmp = tempfile.mkdtemp(prefix="gw-gpu.")
cuda = torch.cuda.is_available()


def net(dev):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64),
                               torch.nn.ReLU(), torch.nn.Linear(64, 1)).to(dev)


with Daemon() as d:
    t.ok(cuda, "torch %s sees a GPU (%s)" % (torch.__version__, torch.cuda.get_device_name() if cuda else "-"))
    if cuda:
        dev = torch.device("cuda")
        model = net(dev)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)
        exp = {}
        with gradwatch.Run(name="gpu-async", url=d.url) as run:
            w = gwt.watch(model, run, opt)
            t.ok(not w._sync_copy, "on a GPU the copy is not synchronous by default")
            for s in range(20):
                opt.zero_grad(set_to_none=True)
                x = torch.randn(32, 16, device=dev)
                loss = model(x).pow(2).mean()
                loss.backward()
                e = {n: p.grad.norm().item() for n, p in model.named_parameters()}
                e["grad_norm"] = math.sqrt(sum(v * v for v in e.values()))
                e["loss"] = loss.item()
                exp[str(s)] = e
                opt.step()
            w.flush()
            run.flush(10.0)
        names = [n for n, _ in model.named_parameters()]
        series_match(t, d, "gpu-async", exp, names + ["grad_norm", "loss"], lambda e, n: e[n],
                     "every norm and loss of the non-blocking path equals the test's own", rel=1e-4)

        model = net(dev)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)
        scaler = torch.amp.GradScaler("cuda", init_scale=2.0 ** 16)
        exp = {}
        skipped = []
        with gradwatch.Run(name="gpu-scaler", url=d.url) as run:
            gwt.watch(model, run, opt)              # the scaler is not passed
            for s in range(12):
                opt.zero_grad(set_to_none=True)
                x = torch.randn(32, 16, device=dev)
                with torch.autocast("cuda", dtype=torch.float16):
                    loss = model(x).float().pow(2).mean()
                    if s == 5:
                        loss = loss * float("inf")
                scale = scaler.get_scale()
                scaler.scale(loss).backward()
                e = {n: (p.grad.float().norm() / scale).item() for n, p in model.named_parameters()}
                e["loss"] = loss.item()
                e["scale"] = scale
                scaler.step(opt)
                scaler.update()
                if s == 5:
                    skipped.append(s)
                else:
                    exp[str(s)] = e
            run.flush(10.0)
        got = points(d, "gpu-scaler", "skipped,loss_scale,loss,0.weight")
        t.is_([s for s, v in zip(*got["skipped"]) if v == 1], skipped, "a scaler seen in scale() is adopted: "
              "its skipped step is logged")
        t.ok(all(close_to(v, exp[str(s)]["0.weight"], 1e-3) for s, v in zip(*got["0.weight"])),
             "the norms are unscaled", repr(got["0.weight"]))
        t.ok(all(close_to(v, exp[str(s)]["loss"], 1e-3) for s, v in zip(*got["loss"]) if str(s) in exp),
             "the loss is unscaled", repr(got["loss"]))
        t.ok(all(close_to(v, exp[str(s)]["scale"], 1e-6) for s, v in zip(*got["loss_scale"]) if str(s) in exp),
             "and the loss scale each step was taken at")

    for mode in ("fsdp1", "fsdp2"):
        r0, r1 = torch_job(mode, d.url, tmp)
        t.ok(r0 is not None and r1 is not None, "%s: two ranks on the CPU over gloo finish" % mode)
        if r0 and r1:
            runs = d.get("/api/v1/runs?project=dist-" + mode)[1]["runs"]
            t.is_(len(runs), 1, "%s: one run" % mode)
            names = [k for k in r0["steps"]["0"] if k != "grad_norm"]
            series_match(t, d, runs[0]["run"], r0["steps"], names + ["grad_norm"], lambda e, n: e[n],
                         "%s: every tensor's norm is the full tensor's, under the model's own names" % mode,
                         rel=1e-4)
shutil.rmtree(tmp, ignore_errors=True)
t.done()
