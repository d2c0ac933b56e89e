#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""gradwatch.torch.watch() on real models against a live gradwatchd: each
optimizer step (not each micro-step of gradient accumulation) sends every
tensor's gradient norm, the pre-clip global norm, the loss, the lr and
the clipping, equal to norms the test computes itself with p.grad.norm();
one device-to-host copy per step; frozen tensors absent, a tensor without
a gradient on a step absent on that step; the layer metadata; an LR
scheduler keeps counting; sparse gradients; a GradScaler's skipped steps
and loss scale; every and weight_every; on_critical stops a step before
its NaN update; remove() undoes every hook."""
import math
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gwpy import TAP, Daemon, close_to, require_lib, points, require_torch  # noqa: E402

require_lib()
torch = require_torch()
# How most scripts import it: by name, before watch() exists.
from torch.nn.utils import clip_grad_norm_  # noqa: E402
import gradwatch  # noqa: E402
import gradwatch.torch as gwt  # noqa: E402

torch.manual_seed(1)
t = TAP()

# ---- counting copies to the host ------------------------------------------------
# While `counting` is set (only around the optimizer step and the clip,
# never around the test's own reference computations) every way of
# getting a tensor's value to Python is counted.
counting = [False]
copies = []
for meth in ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__"):
    orig = getattr(torch.Tensor, meth)

    def counted(self, *a, _orig=orig, _m=meth, **k):
        if counting[0]:
            copies.append(_m)
        return _orig(self, *a, **k)
    setattr(torch.Tensor, meth, counted)


class Net(torch.nn.Module):
    """An embedding, a frozen projection, an MLP and a branch used on odd steps only."""

    def __init__(self, sparse=False):
        super().__init__()
        self.emb = torch.nn.Embedding(50, 8, sparse=sparse)
        self.frozen = torch.nn.Linear(8, 8)
        self.frozen.requires_grad_(False)
        self.fc1 = torch.nn.Linear(8, 32)
        self.fc2 = torch.nn.Linear(32, 4)
        self.side = torch.nn.Linear(8, 4, bias=False)

    def forward(self, x, use_side):
        h = self.frozen(self.emb(x).mean(1))
        out = self.fc2(torch.relu(self.fc1(h)))
        if use_side:
            out = out + self.side(h)
        return out


def batch(n=16):
    return torch.randint(0, 50, (n, 5)), torch.randint(0, 4, (n,))


def reference(model):
    """The test's own per-tensor gradient norms (and global), before the step."""
    ref = {}
    for name, p in model.named_parameters():
        if p.grad is not None:
            g = p.grad.coalesce()._values() if p.grad.is_sparse else p.grad
            ref[name] = g.norm().item()
    ref["grad_norm"] = math.sqrt(sum(v * v for v in ref.values()))
    return ref


def expected_series_ok(d, key, exp, what, layer_names):
    """Compare the stored series of run `key` with exp[step][series]."""
    got = points(d, key, ",".join(["loss", "grad_norm", "lr"] + layer_names))
    bad = []
    for name, (steps, vals) in got.items():
        want = {s: e[name] for s, e in exp.items() if name in e}
        if steps != sorted(want):
            bad.append("%s: steps %s, want %s" % (name, steps, sorted(want)))
            continue
        for s, v in zip(steps, vals):
            if not close_to(v, want[s], 2e-5):
                bad.append("%s@%d: %r, want %r" % (name, s, v, want[s]))
    return t.ok(not bad, what, *bad[:6])


with Daemon() as d:
    # ---- accumulation, clipping, frozen and sometimes-absent tensors ------------------
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)   # before watch()
    STEPS, MICRO, MAXN = 12, 2, 0.05
    exp = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with gradwatch.Run(name="t-watch", url=d.url) as run:
            w = gwt.watch(model, run, opt)
            for s in range(STEPS):
                t_step = w.step
                opt.zero_grad(set_to_none=True)
                losses = []
                for m in range(MICRO):
                    x, y = batch()
                    loss = torch.nn.functional.cross_entropy(model(x, use_side=s % 2 == 1), y) / MICRO
                    loss.backward()
                    w.loss(loss)
                    losses.append(loss.item())
                e = reference(model)
                e["loss"] = sum(losses) / MICRO
                e["lr"] = opt.param_groups[0]["lr"]
                exp[t_step] = e
                copies.clear()
                counting[0] = True
                if s % 3 == 0:
                    total = torch.nn.utils.clip_grad_norm_(model.parameters(), MAXN)
                    e["clip"] = total
                opt.step()
                counting[0] = False
                e["copies"] = list(copies)
                sched.step()
            t.is_((w.step, w.last_step, opt._step_count), (STEPS, STEPS - 1, STEPS),
                  "the watcher counted optimizer steps, and so did the scheduler")
            t.ok(run.flush(5.0), "everything was accepted")
            t.is_(run.errors, 0, "no logging error")
            w.remove()
    t.is_([str(c.message) for c in caught if "lr_scheduler" in str(c.message) or "step" in str(c.message)],
          [], "the LR scheduler saw no overridden optimizer.step")
    t.is_([e["copies"] for e in exp.values()], [["tolist"]] * STEPS,
          "one copy to the host per optimizer step (with or without a clip), nothing else")
    st, info = d.get("/api/v1/runs/t-watch")
    layers = {s["name"]: s for s in info["series"] if s["kind"] == "layer_grad"}
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    t.is_(sorted(layers), sorted(names), "every trainable tensor is a series; the frozen ones are not")
    order = {n: i for i, (n, _) in enumerate(model.named_parameters())}
    t.ok(all(layers[n]["depth"] == order[n] and layers[n]["shape"] == list(p.shape)
             and layers[n]["numel"] == p.numel() for n, p in model.named_parameters() if p.requires_grad),
         "each carries its depth (order in the model), shape and numel")
    t.is_(points(d, "t-watch", "side.weight")["side.weight"][0], [s for s in range(STEPS) if s % 2 == 1],
          "a tensor without a gradient on a step is absent there, not zero")
    t.is_(points(d, "t-watch", "loss")["loss"][0], list(range(STEPS)),
          "one point per optimizer step, not per micro-batch")
    expected_series_ok(d, "t-watch", exp, "every value equals the test's own p.grad.norm() "
                       "(before clipping), the global norm, the mean micro-batch loss and the lr", names)
    clip = points(d, "t-watch", "clip_pre_norm,clip_max_norm,grad_norm")
    csteps = [s for s in range(STEPS) if s % 3 == 0]
    t.is_(clip["clip_max_norm"], (csteps, [MAXN] * len(csteps)), "clipped steps carry max_norm")
    t.ok(clip["clip_pre_norm"][0] == csteps and all(
        close_to(v, exp[s]["clip"].item(), 1e-6) and close_to(v, exp[s]["grad_norm"], 2e-5)
        for s, v in zip(*clip["clip_pre_norm"])), "and the pre-clip norm clip_grad_norm_ returned")
    t.ok(all(exp[s]["grad_norm"] > MAXN for s in csteps), "(those steps did clip: the norms exceed %g)" % MAXN)
    t.ok(opt.__dict__.get("step") is None or getattr(opt.step, "_with_counter", False),
         "remove() gave the optimizer its step back")
    t.ok(torch.nn.utils.clip_grad_norm_ is gwt._orig_clip, "and torch.nn.utils.clip_grad_norm_ too")

    # ---- the helper, sparse gradients, every, weight_every, log_grads ----------------
    model = Net(sparse=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    exp = {}
    with gradwatch.Run(name="t-sparse", url=d.url) as run:
        w = gwt.watch(model, run, opt, every=3, weight_every=2, follow_clip=False)
        t.ok(torch.nn.utils.clip_grad_norm_ is gwt._orig_clip, "follow_clip=False leaves torch alone")
        for s in range(9):
            opt.zero_grad(set_to_none=True)
            x, y = batch()
            loss = torch.nn.functional.cross_entropy(model(x, use_side=True), y)
            loss.backward()
            e = reference(model)
            e["weights"] = {n: p.detach().norm().item() for n, p in model.named_parameters() if p.grad is not None}
            exp[s] = e
            dense = [p for n, p in model.named_parameters() if n != "emb.weight"]
            total = gwt.clip_grad_norm_(dense, 100.0)
            e["clip"] = total.item()
            opt.step()
        run.flush(5.0)
        w.remove()
    logged = [s for s in range(9) if s % 3 == 0]
    got = points(d, "t-sparse", "emb.weight,grad_norm,clip_pre_norm,layer_weight:fc1.weight")
    t.is_(got["emb.weight"][0], logged, "every=3 logs steps 0, 3, 6")
    t.ok(all(close_to(v, exp[s]["emb.weight"], 2e-5) for s, v in zip(*got["emb.weight"])),
         "a sparse gradient's norm is right (the per-tensor fallback)",
         "got %r" % (got["emb.weight"],), "want %r" % ([exp[s]["emb.weight"] for s in logged],))
    t.ok(all(close_to(v, exp[s]["grad_norm"], 2e-5) for s, v in zip(*got["grad_norm"])),
         "grad_norm over every tensor, sparse one included")
    t.ok(got["clip_pre_norm"][0] == logged and all(close_to(v, exp[s]["clip"], 1e-6)
                                                 for s, v in zip(*got["clip_pre_norm"])),
         "gradwatch.torch.clip_grad_norm_ on part of the model: the clipping is logged with "
         "the norm it returned (over its tensors)")
    wsteps = [s for s in logged if s % 2 == 0]
    wgot = got["layer_weight:fc1.weight"]
    t.ok(wgot[0] == wsteps and all(close_to(v, exp[s]["weights"]["fc1.weight"], 2e-5) for s, v in zip(*wgot)),
         "weight norms (before the update) on logged steps that are a multiple of weight_every",
         "got %r" % (wgot,))

    model = torch.nn.Sequential(torch.nn.Linear(3, 3))
    with gradwatch.Run(name="t-manual", url=d.url) as run:
        w = gwt.watch(model, run)
        model(torch.ones(2, 3)).sum().backward()
        want = model[0].weight.grad.norm().item()
        w.log_grads()
        run.flush(5.0)
    t.ok(close_to(points(d, "t-manual", "0.weight")["0.weight"][1][0], want, 1e-6),
         "without an optimizer, log_grads() logs the current gradients")

    model = torch.nn.Sequential(torch.nn.Linear(3, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with gradwatch.Run(name="t-unkept", url=d.url) as run:
        gwt.watch(model, run, opt)          # the two-line form: the watcher is not kept
        import gc
        gc.collect()
        for s in range(3):
            opt.zero_grad()
            model(torch.ones(2, 3)).sum().backward()
            opt.step()
        run.flush(5.0)
    t.is_(points(d, "t-unkept", "0.weight")["0.weight"][0], [0, 1, 2],
          "a watcher nobody keeps goes on working (the optimizer holds it)")

    # ---- a GradScaler -----------------------------------------------------------------
    class CpuScaler:
        """torch 1.13's GradScaler is CUDA-only; this follows its contract on the
        CPU: scale(), step() unscales and skips the optimizer on inf/NaN,
        update() halves the scale after a skip, get_scale(), is_enabled(), _scale."""

        def __init__(self, scale=1024.0):
            self._scale = torch.tensor([scale])
            self._found = False

        def is_enabled(self):
            return True

        def get_scale(self):
            return self._scale.item()

        def scale(self, loss):
            return loss * self._scale

        def step(self, optimizer):
            grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
            for g in grads:
                g.div_(self._scale)
            self._found = not all(torch.isfinite(g).all() for g in grads)
            if not self._found:
                return optimizer.step()

        def update(self):
            if self._found:
                self._scale = self._scale * 0.5

    try:
        scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
        kind = "torch.amp.GradScaler('cpu')"
    except Exception:
        scaler = CpuScaler(1024.0)
        kind = "a CPU stand-in for GradScaler (torch %s has no CPU one)" % torch.__version__
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with gradwatch.Run(name="t-amp", url=d.url) as run:
        w = gwt.watch(model, run, opt, scaler=scaler)
        for s in range(6):
            opt.zero_grad()
            loss = model(torch.randn(8, 4)).pow(2).mean()
            if s in (2, 3):
                loss = loss * float("inf")
            scaler.scale(loss).backward()
            w.loss(loss)
            scaler.step(opt)
            scaler.update()
        t.is_(w.step, 6, "skipped steps are counted as steps")
        run.flush(5.0)
    got = points(d, "t-amp", "skipped,loss_scale,0.weight,loss")
    t.is_(got["skipped"], (list(range(6)), [0, 0, 1, 1, 0, 0]), "the scaler's skipped steps (%s)" % kind)
    t.is_(got["loss_scale"], (list(range(6)), [1024.0, 1024.0, 1024.0, 512.0, 256.0, 256.0]),
          "the loss scale each step was taken at")
    t.is_(got["0.weight"][0], [0, 1, 4, 5], "no gradient norms for the skipped steps")
    t.is_(got["loss"][0], list(range(6)), "the loss of every step, skipped ones included")

    # ---- acting on health -------------------------------------------------------------
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    stopped = None
    try:
        with gradwatch.Run(name="t-raise", url=d.url) as run:
            w = gwt.watch(model, run, opt, on_critical="raise")
            for s in range(10):
                opt.zero_grad()
                x = torch.randn(8, 4)
                if s == 5:
                    x[0, 0] = float("nan")
                loss = model(x).pow(2).mean()
                loss.backward()
                w.loss(loss)
                opt.step()
    except gradwatch.CriticalHealth as e:
        stopped = e
    t.ok(stopped is not None and stopped.step == 5 and stopped.run is run,
         "on_critical='raise': CriticalHealth at the NaN step", repr(stopped))
    t.ok(all(torch.isfinite(p).all() for p in model.parameters()),
         "raised before the optimizer wrote NaN into the weights")
    t.is_(d.get("/api/v1/runs/t-raise")[1]["status"], "failed", "the run left by the exception is failed")
    t.is_(points(d, "t-raise", "grad_norm")["grad_norm"][1][5], "NaN", "the NaN step itself was logged")

    calls = []
    model = torch.nn.Sequential(torch.nn.Linear(4, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with gradwatch.Run(name="t-callback", url=d.url) as run:
        w = gwt.watch(model, run, opt, on_critical=lambda r, step: calls.append((r.key, step)))
        for s in range(8):
            opt.zero_grad()
            model(torch.full((2, 4), float("nan") if s >= 3 else 1.0)).sum().backward()
            opt.step()
    t.is_(calls, [("t-callback", 3)], "a callable on_critical is called once, when the run turns critical")

    # ---- the usual script: clip_grad_norm_ imported by name, no w.loss() ---------------
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    exp = {}
    with gradwatch.Run(name="t-import", url=d.url) as run:
        gwt.watch(model, run, opt)
        t.ok(clip_grad_norm_ is gwt.clip_grad_norm_, "a clip_grad_norm_ imported by name is followed too")
        for s in range(5):
            opt.zero_grad(set_to_none=True)
            roots = []
            for m in range(2):
                x, y = batch()
                loss = torch.nn.functional.cross_entropy(model(x, use_side=True), y)
                loss.backward()
                roots.append(loss.item())
            e = reference(model)
            e["loss"] = sum(roots) / 2
            e["lr"] = opt.param_groups[0]["lr"]
            copies.clear()
            counting[0] = True
            e["clip"] = clip_grad_norm_(model.parameters(), MAXN).item()
            opt.step()
            counting[0] = False
            e["copies"] = list(copies)
            exp[s] = e
        run.flush(5.0)
    t.ok(clip_grad_norm_ is gwt._orig_clip, "and given back torch's when the watcher goes")
    t.is_([e["copies"] for e in exp.values()], [["item", "tolist"]] * 5,
          "still one copy a step (besides the test's own .item() of the clip's result)")
    expected_series_ok(d, "t-import", exp, "without w.loss(): the loss is the mean of what backward() "
                       "started from; grad_norm is the norm before the clip", ["fc1.weight", "emb.weight"])
    clip = points(d, "t-import", "clip_pre_norm,clip_max_norm")
    t.is_(clip["clip_max_norm"], (list(range(5)), [MAXN] * 5), "every clip is logged with its max_norm")
    t.ok(all(close_to(v, exp[s]["clip"], 1e-6) for s, v in zip(*clip["clip_pre_norm"])),
         "and the pre-clip norm it returned")

    # ---- clipping gradwatch does not see is noticed --------------------------------------
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    exp = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with gradwatch.Run(name="t-unseen", url=d.url) as run:
            gwt.watch(model, run, opt)
            for s in range(4):
                opt.zero_grad(set_to_none=True)
                x, y = batch()
                torch.nn.functional.cross_entropy(model(x, use_side=True), y).backward()
                e = reference(model)
                exp[s] = e
                if s % 2 == 1:      # a hand-written clip to a tenth of the norm
                    for p in model.parameters():
                        if p.grad is not None:
                            p.grad.mul_(0.1)
                opt.step()
            run.flush(5.0)
    got = points(d, "t-unseen", "grad_norm,clip_pre_norm,clip_max_norm")
    t.ok(all(close_to(v, exp[s]["grad_norm"], 2e-5) for s, v in zip(*got["grad_norm"])),
         "grad_norm is the norm before a clip gradwatch cannot see")
    t.ok(got["clip_pre_norm"][0] == [1, 3] and all(
        close_to(v, exp[s]["grad_norm"] * 0.1, 1e-4) for s, v in zip(*got["clip_max_norm"])),
         "the steps it clipped carry a clip event (to the norm it clipped to)", repr(got))
    t.ok(any("does not follow" in str(c.message) for c in caught), "and a warning says how to log every step")

    # ---- Adam's second moment and the update norms ---------------------------------------
    model = Net()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    exp = {}
    with gradwatch.Run(name="t-adam", url=d.url) as run:
        gwt.watch(model, run, opt, update_every=2)
        for s in range(6):
            opt.zero_grad(set_to_none=True)
            x, y = batch()
            torch.nn.functional.cross_entropy(model(x, use_side=True), y).backward()
            e = {}
            for n, p in model.named_parameters():
                v = opt.state.get(p, {}).get("exp_avg_sq")
                if p.grad is not None and v is not None:
                    e["adam:" + n] = p.grad.norm().item() ** 2 / v.sum().item()
            before = {n: p.detach().clone() for n, p in model.named_parameters()}
            opt.step()
            for n, p in model.named_parameters():
                if p.grad is not None:
                    e["upd:" + n] = (p.detach() - before[n]).norm().item()
            exp[s] = e
        run.flush(5.0)
    got = points(d, "t-adam", "layer_adam_ratio:fc1.weight,layer_update:fc1.weight,layer_update:emb.weight")
    a = got["layer_adam_ratio:fc1.weight"]
    t.ok(a[0] == [1, 2, 3, 4, 5] and all(close_to(v, exp[s]["adam:fc1.weight"], 1e-4) for s, v in zip(*a)),
         "adam_ratio: ||g||^2 / sum(v) before each step (from the second step, when v exists)", repr(a))
    u = got["layer_update:fc1.weight"]
    t.ok(u[0] == [0, 2, 4] and all(close_to(v, exp[s]["upd:fc1.weight"], 1e-4) for s, v in zip(*u)),
         "update norms ||W after - W before|| every update_every steps", repr(u))
t.done()
