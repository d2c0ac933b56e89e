#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Record a held-out set of real PyTorch training runs as gradwatch traces.

Each scenario trains a small model on CPU (data generated here, one torch
thread, fixed seeds, a synthetic clock) and writes one ingest step a line to
tests/data/traces_heldout/NAME.jsonl; the labels are then derived from the
written files with the definitions of tests/data/traces/README.md and stored
with the expected alerts in labels.json.  These traces were never used to
tune the detector: `make eval` reports them as a separate group.

    /usr/bin/python3 tests/eval/record_traces.py              all scenarios
    /usr/bin/python3 tests/eval/record_traces.py --only NAME  some (labels.json updated in place)
    /usr/bin/python3 tests/eval/record_traces.py --check      re-derive labels from the files
    /usr/bin/python3 tests/eval/record_traces.py --list       scenario names

Needs Debian's python3-torch (CPU) and its interpreter, /usr/bin/python3.
"""
import argparse
import bisect
import collections
import copy
import json
import math
import os
import statistics
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

TOP = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(TOP, "tests", "data", "traces_heldout")

# Label definitions: the same numbers as tests/data/traces/README.md.
ONSET_X = 10.0          # explosion: above 10 x the trailing median ...
ONSET_BACK = 50         # ... of the finite grad norms of up to 50 preceding steps ...
ONSET_MIN_BASE = 5      # ... at least 5 of them; and the stretch to the end is
ONSET_MIN_TAIL = 5      # ... at least 5 steps long
TAIL_AFTER_BAD = 20     # steps recorded after the first non-finite step
VANISH_REL = 1e-4       # vanishing: below 1e-4 x top_param's grad norm ...
VANISH_ABS = 1e-7       # ... or below 1e-7 ...
VANISH_SHARE = 0.5      # ... on at least half of the finite steps with a gradient
MIN_RUN = 20            # vanishing needs 20 such steps; dead needs 20 trailing zeros
TRAIL = 50              # trailing window of the statistics
SPIKE_X = 5.0           # loss above 5 x its trailing median counts as a spike
RECOVERED_X = 1.5       # recovered: loss back under 1.5 x the pre-spike median

# Trace k starts at 2026-03-01T00:00:00Z + k hours (the shared set uses January).
CLOCK_BASE = 1772323200.0


# ------------------------------------------------------------------ numbers

def sig7(v):
    """v as stored: 7 significant digits; NaN and infinities pass through."""
    v = float(v)
    if not math.isfinite(v):
        return v
    return float(format(v, ".7g"))


def to_json(v):
    """Replace non-finite floats, anywhere in v, by their JSON strings."""
    if isinstance(v, dict):
        return {k: to_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [to_json(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")
    return v


def from_json(v):
    if isinstance(v, dict):
        return {k: from_json(x) for k, x in v.items()}
    if v == "NaN":
        return math.nan
    if v == "Infinity":
        return math.inf
    if v == "-Infinity":
        return -math.inf
    return v


def ok_num(v):
    return v is not None and math.isfinite(v)


def med(xs):
    return statistics.median(xs) if xs else math.nan


def l2(t):
    """L2 norm of a tensor in float64 (inf or NaN if it holds one)."""
    return float(torch.linalg.vector_norm(t.detach().to(torch.float64)))


# ------------------------------------------------------------------ data, all made here

def teacher_classes(seed, n=8000, d=20, k=5, width=32, noise=0.5):
    """Labels from a random two-layer tanh teacher, with Gaussian noise on its
    logits (label noise grows with `noise`)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    w1 = torch.randn(d, width, generator=g) / math.sqrt(d) * 2.0
    w2 = torch.randn(width, k, generator=g) / math.sqrt(width) * 3.0
    logits = torch.tanh(x @ w1) @ w2 + noise * torch.randn(n, k, generator=g)
    return x, logits.argmax(1)


def teacher_regression(seed, n=8000, d=10, noise=0.05):
    """y = sin(x.a) cos(x.b) + 0.3 x.c + noise, a smooth nonlinear target."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    a, b, c = (torch.randn(d, generator=g) / math.sqrt(d) for _ in range(3))
    y = torch.sin(2 * x @ a) * torch.cos(x @ b) + 0.3 * x @ c
    return x, (y + noise * torch.randn(n, generator=g))[:, None]


def markov_text(seed, n=40000, vocab=16, fanout=3):
    """A symbol stream from a sparse random second-order Markov chain: each
    pair of symbols has `fanout` likely successors, plus a little uniform
    leakage (so a model has to remember two symbols back)."""
    g = torch.Generator().manual_seed(seed)
    trans = torch.full((vocab * vocab, vocab), 0.02 / vocab)
    for ctx in range(vocab * vocab):
        nxt = torch.randperm(vocab, generator=g)[:fanout]
        trans[ctx, nxt] += torch.rand(fanout, generator=g) + 0.2
    cdf = (trans / trans.sum(1, keepdim=True)).cumsum(1).tolist()
    u = torch.rand(n, generator=g).tolist()
    out = [0, 1]
    for i in range(2, n):
        row = cdf[out[-2] * vocab + out[-1]]
        out.append(min(bisect.bisect_left(row, u[i]), vocab - 1))
    return torch.tensor(out, dtype=torch.long)


def bar_images(seed, n=4000, size=8, noise=0.5):
    """8x8 images of one bar (horizontal, vertical, diagonal, anti-diagonal:
    the class) at a random offset, with Gaussian pixel noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    off = torch.randint(0, size, (n,), generator=g)
    img = torch.zeros(n, size, size)
    r = torch.arange(size)
    for i in range(n):
        o = int(off[i])
        c = int(y[i])
        if c == 0:
            img[i, o, :] = 1
        elif c == 1:
            img[i, :, o] = 1
        elif c == 2:
            img[i, r, (r + o) % size] = 1
        else:
            img[i, r, (o - r) % size] = 1
    img += noise * torch.randn(n, size, size, generator=g)
    return img[:, None], y


def sampler(x, y, batch, seed):
    """step -> a random batch of (x, y), from its own generator."""
    g = torch.Generator().manual_seed(seed)

    def draw(step):
        i = torch.randint(0, x.shape[0], (batch,), generator=g)
        return x[i], y[i]
    return draw


def text_sampler(stream, batch, length, seed):
    g = torch.Generator().manual_seed(seed)

    def draw(step):
        start = torch.randint(0, stream.shape[0] - length - 1, (batch,), generator=g)
        idx = start[:, None] + torch.arange(length + 1)[None]
        w = stream[idx]
        return w[:, :-1], w[:, 1:]
    return draw


# ------------------------------------------------------------------ models

def mlp(sizes, act, norm=False):
    """Linear layers fc1 .. fcN with `act` between them (and LayerNorm ln1 ..
    before each activation with norm=True); the last one is `head`."""
    parts = []
    for i, (a, b) in enumerate(zip(sizes[:-2], sizes[1:-1]), 1):
        parts.append(("fc%d" % i, nn.Linear(a, b)))
        if norm:
            parts.append(("ln%d" % i, nn.LayerNorm(b)))
        parts.append(("act%d" % i, act()))
    parts.append(("head", nn.Linear(sizes[-2], sizes[-1])))
    return nn.Sequential(collections.OrderedDict(parts))


class ResidualMLP(nn.Module):
    """stem -> ReLU -> x + ReLU(block.fc(x)) -> x + ReLU(block2.fc(x)) -> head."""

    def __init__(self, d_in, width, d_out):
        super().__init__()
        self.stem = nn.Linear(d_in, width)
        self.block1 = nn.Linear(width, width)
        self.block2 = nn.Linear(width, width)
        self.head = nn.Linear(width, d_out)

    def forward(self, x):
        h = F.relu(self.stem(x))
        h = h + F.relu(self.block1(h))
        h = h + F.relu(self.block2(h))
        return self.head(h)


class GRULM(nn.Module):
    """Symbol language model: embedding, a one-layer GRU, a linear projection."""

    def __init__(self, vocab, emb, hidden):
        super().__init__()
        self.embed = nn.Embedding(vocab, emb)
        self.gru = nn.GRU(emb, hidden, batch_first=True)
        self.proj = nn.Linear(hidden, vocab)

    def forward(self, idx):
        h, _ = self.gru(self.embed(idx))
        return self.proj(h)


class BarCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.fc = nn.Linear(16 * 4 * 4, 4)

    def forward(self, x):
        h = F.relu(self.conv2(F.relu(self.conv1(x))))
        return self.fc(h.flatten(1))


def top_param(model):
    """The last weight with two or more dimensions: the output layer's."""
    return [n for n, p in model.named_parameters() if p.dim() >= 2][-1]


def xent(model, batch):
    x, y = batch
    out = model(x)
    return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))


def mse(model, batch):
    x, y = batch
    return F.mse_loss(model(x), y)


# ------------------------------------------------------------------ schedules

def warmup_linear(peak, warm, total):
    def lr(s):
        if s < warm:
            return peak * (s + 1) / warm
        return peak * max(0.0, total - s) / (total - warm)
    return lr


def cosine_restarts(peak, period, floor):
    def lr(s):
        return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * (s % period) / period))
    return lr


# ------------------------------------------------------------------ the recorder

class Half16Scaler:
    """A float16 loss scaler emulated on CPU: backward runs on loss x scale,
    each gradient is rounded to float16 (beyond 65504 it becomes infinite)
    and divided by the scale; any overflow skips the step and halves the
    scale, and `regrow` clean steps in a row double it."""

    def __init__(self, scale, regrow=200):
        self.scale = float(scale)
        self.regrow = regrow
        self.clean = 0

    def backward(self, loss, params):
        (loss * self.scale).backward()
        bad = False
        with torch.no_grad():
            for p in params:
                if p.grad is None:
                    continue
                h = p.grad.to(torch.float16)
                if not bool(torch.isfinite(h).all()):
                    bad = True
                p.grad = h.to(torch.float32) / self.scale
        return bad

    def after(self, overflowed):
        if overflowed:
            self.scale *= 0.5
            self.clean = 0
            return
        self.clean += 1
        if self.clean >= self.regrow:
            self.scale *= 2.0
            self.clean = 0


def step_is_bad(rec):
    """Non-finite loss, global grad norm or tensor grad norm on a step the
    trainer did not skip."""
    if rec.get("skipped"):
        return False
    vals = [rec["loss"], rec["grad_norm"]] + list(rec["layers"].values())
    return not all(ok_num(v) for v in vals)


class Recorder:
    """Runs optimiser steps on a model and keeps one trace record a step.

    Per step: the lr of this step's update, then the fault hook (may edit the
    model), the weight norms before the update, the loss of this step's batch,
    the per-tensor gradient norms after backward (a tensor without .grad is
    left out), their float64 global norm before clipping, clip_grad_norm_'s
    own pre-clip norm, the loss scaler's decision.  After the first bad step
    it keeps TAIL_AFTER_BAD more and then refuses further steps."""

    def __init__(self, model, opt, loss_fn, clock, max_norm=None, scaler=None):
        self.model, self.opt, self.loss_fn = model, opt, loss_fn
        self.clock, self.max_norm, self.scaler = clock, max_norm, scaler
        self.named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.records = []
        self.bad_at = None

    def done(self):
        return self.bad_at is not None and self.records[-1]["step"] >= self.bad_at + TAIL_AFTER_BAD

    def run(self, first, last, draw, lr_at, hook=None, clock_step=None):
        """Steps first .. last-1; `clock_step(step)` overrides the time stamp
        (a resumed run); returns False once the run has stopped."""
        params = [p for _, p in self.named]
        for step in range(first, last):
            if self.done():
                return False
            lr = lr_at(step)
            for grp in self.opt.param_groups:
                grp["lr"] = lr
            if hook is not None:
                with torch.no_grad():
                    hook(step, self.model)
            batch = draw(step)
            self.model.train()
            self.opt.zero_grad(set_to_none=True)
            weights = {n: sig7(l2(p)) for n, p in self.named}
            loss = self.loss_fn(self.model, batch)
            skipped = False
            scale = None
            if self.scaler is not None:
                scale = self.scaler.scale
                skipped = self.scaler.backward(loss, params)
            else:
                loss.backward()
            layers, total = {}, 0.0
            for n, p in self.named:
                if p.grad is None:
                    continue
                g = l2(p.grad)
                layers[n] = sig7(g)
                total += g * g
            rec = collections.OrderedDict()
            rec["step"] = step
            rec["time"] = round(clock_step(step) if clock_step else self.clock(step), 3)
            rec["loss"] = sig7(loss.item())
            rec["grad_norm"] = sig7(math.sqrt(total))
            rec["lr"] = sig7(lr)
            rec["layers"] = layers
            rec["weights"] = weights
            if self.max_norm is not None:
                pre = float(torch.nn.utils.clip_grad_norm_(params, self.max_norm))
                rec["clip"] = {"max_norm": self.max_norm, "pre_norm": sig7(pre)}
            if self.scaler is not None:
                rec["skipped"] = skipped
                rec["loss_scale"] = scale
                self.scaler.after(skipped)
            if not skipped:
                self.opt.step()
            self.records.append(rec)
            if self.bad_at is None and step_is_bad(rec):
                self.bad_at = step
        return not self.done()


def save(path, records):
    with open(path, "w") as f:
        for r in records:
            f.write(json.dumps(to_json(r), separators=(",", ":"), allow_nan=False) + "\n")


def load(path):
    with open(path) as f:
        return [from_json(json.loads(line)) for line in f if line.strip()]


# ------------------------------------------------------------------ labels

def effective(records):
    """The trace as the daemon keeps it: a re-sent step replaces the earlier
    one (a resumed run), in step order."""
    last = {}
    for r in records:
        last[r["step"]] = r
    return [last[s] for s in sorted(last)]


def explosion_onset(recs):
    rows = [r for r in recs if not r.get("skipped")]
    g = [r["grad_norm"] for r in rows]
    for t in range(len(g) - ONSET_MIN_TAIL + 1):
        if not ok_num(g[t]):
            continue
        base = [v for v in g[max(0, t - ONSET_BACK):t] if ok_num(v)]
        if len(base) < ONSET_MIN_BASE:
            continue
        bar = ONSET_X * med(base)
        if g[t] > bar and all((not ok_num(v)) or v > bar for v in g[t + 1:]):
            return rows[t]["step"]
    return None


def per_tensor(recs, top):
    names = list(recs[0]["weights"])
    good = [r for r in recs if not r.get("skipped") and not step_is_bad(r)]
    out = {}
    for n in names:
        have = [r for r in good if n in r["layers"]]
        small = zeros = 0
        rel = []
        for r in have:
            v = r["layers"][n]
            if v == 0.0:
                zeros += 1
                continue
            ref = r["layers"].get(top)
            q = v / ref if ref else math.inf
            rel.append(q)
            if q < VANISH_REL or v < VANISH_ABS:
                small += 1
        zero_tail = []
        for r in reversed(recs):
            if n not in r["layers"]:
                continue
            if r["layers"][n] != 0.0:
                break
            zero_tail.append(r["step"])
        out[n] = {
            "median_grad_norm": sig7(med([r["layers"][n] for r in have])) if have else None,
            "median_ratio_to_top": sig7(med(rel)) if rel else None,
            "vanish_fraction": sig7(small / len(have)) if len(have) >= MIN_RUN else None,
            "zero_fraction": sig7(zeros / len(have)) if have else None,
            "absent_fraction": sig7(sum(n not in r["layers"] for r in recs) / len(recs)),
            "dead_from_step": zero_tail[-1] if len(zero_tail) >= MIN_RUN else None,
        }
    return out


def ratios_to_trailing(recs, key):
    """(step, value / median of the preceding TRAIL finite values) for every
    finite value with at least 5 such predecessors; skipped steps left out."""
    rows = [r for r in recs if not r.get("skipped")]
    out = []
    for i, r in enumerate(rows):
        base = [x[key] for x in rows[max(0, i - TRAIL):i] if ok_num(x[key])]
        if len(base) >= 5 and ok_num(r[key]) and med(base) > 0:
            out.append((r["step"], r[key] / med(base)))
    return out


def clipping(recs):
    cl = [r["clip"] for r in recs if "clip" in r]
    if not cl:
        return None
    hit = [not (c["pre_norm"] <= c["max_norm"]) for c in cl]
    w = min(100, len(hit))
    return {"clip_rate": sig7(sum(hit) / len(hit)), "clipped_steps": sum(hit),
            "max_rate_in_100_steps": sig7(max(sum(hit[i:i + w]) for i in range(len(hit) - w + 1)) / w),
            "last_clipped_step": max((r["step"] for r, h in zip([r for r in recs if "clip" in r], hit) if h),
                                     default=None),
            "max_norm": cl[0]["max_norm"],
            "median_pre_norm": sig7(med([c["pre_norm"] for c in cl if ok_num(c["pre_norm"])]))}


def spikes(recs, steps):
    at = {r["step"]: i for i, r in enumerate(recs)}
    out = []
    for s in steps:
        i = at[s]
        prev = recs[max(0, i - TRAIL):i]
        lb = med([r["loss"] for r in prev if ok_num(r["loss"])])
        gb = med([r["grad_norm"] for r in prev if ok_num(r["grad_norm"])])
        back = None
        for k in range(1, len(recs) - i):
            if ok_num(recs[i + k]["loss"]) and recs[i + k]["loss"] <= RECOVERED_X * lb:
                back = k
                break
        out.append({"step": s, "loss_ratio": sig7(recs[i]["loss"] / lb),
                    "grad_norm_ratio": sig7(recs[i]["grad_norm"] / gb), "recovery_steps": back})
    return out


def derive(records, top, spike_steps=()):
    """Labels and statistics of a trace, from its records alone (plus the
    injected spike steps)."""
    recs = effective(records)
    names = list(recs[0]["weights"])
    pt = per_tensor(recs, top)
    bad = [r["step"] for r in recs if step_is_bad(r)]
    dead = [n for n in names if pt[n]["dead_from_step"] is not None]
    cl = clipping(recs)
    labels = {
        "first_nonfinite_step": bad[0] if bad else None,
        "nonfinite_steps": bad,
        "onset_step": explosion_onset(recs),
        "vanishing_params": [n for n in names if (pt[n]["vanish_fraction"] or 0.0) >= VANISH_SHARE],
        "dead_params": dead,
        "dead_from_step": min(pt[n]["dead_from_step"] for n in dead) if dead else None,
        "spike_steps": sorted(spike_steps),
        "clip_rate": cl["clip_rate"] if cl else None,
        "skipped_steps": [r["step"] for r in recs if r.get("skipped")],
    }
    fine = [r for r in recs if not r.get("skipped") and not step_is_bad(r)]
    losses = [r["loss"] for r in fine]
    norms = [r["grad_norm"] for r in fine]
    k = max(1, min(50, len(losses) // 10))
    gq = ratios_to_trailing(recs, "grad_norm")
    lq = ratios_to_trailing(recs, "loss")
    gtop = max(gq, key=lambda p: p[1], default=(None, 0.0))
    ltop = max(lq, key=lambda p: p[1], default=(None, 0.0))
    stats = {
        "records": len(records), "distinct_steps": len(recs),
        "loss_first_mean": sig7(sum(losses[:k]) / k), "loss_last_mean": sig7(sum(losses[-k:]) / k),
        "grad_norm_min": sig7(min(norms)), "grad_norm_median": sig7(med(norms)),
        "grad_norm_max": sig7(max(norms)),
        "max_grad_norm_ratio_to_trailing_median": [sig7(gtop[1]), gtop[0]],
        "max_loss_ratio_to_trailing_median": [sig7(ltop[1]), ltop[0]],
        "grad_norm_steps_above_5x_trailing_median": sum(q > 5 for _, q in gq),
        "grad_norm_steps_above_10x_trailing_median": sum(q > 10 for _, q in gq),
        "loss_steps_above_5x_trailing_median": [s for s, q in lq if q > SPIKE_X and s not in spike_steps],
        "clip": cl,
        "per_tensor": pt,
    }
    if spike_steps:
        stats["spikes"] = spikes(recs, sorted(spike_steps))
    return labels, stats


# ------------------------------------------------------------------ scenarios

SCENARIOS = collections.OrderedDict()


def scenario(seconds):
    """Register a scenario; `seconds` is the synthetic duration of a step.
    The function gets a clock (step -> time) and returns (model, records,
    entry), entry holding category, description and the expected alerts."""
    def reg(fn):
        fn.seconds = seconds
        SCENARIOS[fn.__name__] = fn
        return fn
    return reg


def seed(n):
    torch.manual_seed(n)


def healthy(**kw):
    return dict(category="healthy", expected_alerts=[], acceptable_alerts=[], **kw)


@scenario(0.05)
def healthy_warmup_linear_decay(clock):
    seed(4101)
    x, y = teacher_classes(4102, d=20, k=5, noise=0.6)
    model = mlp([20, 64, 64, 5], nn.ReLU)
    opt = torch.optim.AdamW(model.parameters(), lr=0.0, weight_decay=0.01)
    rec = Recorder(model, opt, xent, clock)
    total = 2000
    rec.run(0, total, sampler(x, y, 32, 4103), warmup_linear(3e-3, 200, total))
    return model, rec.records, healthy(
        model="MLP 20-64-64-5, ReLU", task="5-class labels of a random tanh teacher, logit noise 0.6",
        optimizer="AdamW wd 0.01, batch 32; lr linear warm-up 0 -> 3e-3 over 200 steps, then linear decay to 0 at 2000",
        cause="none (hard negative: the grad norm rises through the warm-up and falls as the lr decays)",
        injected={"warmup_steps": 200})


@scenario(0.03)
def healthy_sgdr_restarts(clock):
    seed(4201)
    x, y = teacher_regression(4202, d=10)
    model = mlp([10, 64, 64, 1], nn.Tanh)
    opt = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
    rec = Recorder(model, opt, mse, clock)
    rec.run(0, 2000, sampler(x, y, 32, 4203), cosine_restarts(0.08, 500, 1e-4))
    return model, rec.records, healthy(
        model="MLP 10-64-64-1, tanh", task="smooth nonlinear regression (sin x.a cos x.b + 0.3 x.c)",
        optimizer="SGD momentum 0.9, batch 32; SGDR: cosine from 0.08 to 1e-4, restarting every 500 steps",
        cause="none (hard negative: at each restart the lr jumps 800x and the loss and grad norm jump with it)",
        injected={"restart_steps": [500, 1000, 1500]})


@scenario(0.01)
def healthy_adam_batch4(clock):
    seed(4301)
    x, y = teacher_classes(4302, d=16, k=4, noise=1.5)
    model = mlp([16, 64, 64, 4], nn.GELU)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    rec = Recorder(model, opt, xent, clock)
    rec.run(0, 2500, sampler(x, y, 4, 4303), lambda s: 1e-3)
    return model, rec.records, healthy(
        model="MLP 16-64-64-4, GELU", task="4-class teacher labels with heavy logit noise (1.5)",
        optimizer="Adam lr 1e-3, batch 4",
        cause="none (hard negative: batches of 4 noisy samples make single-step jumps of loss and grad norm)")


@scenario(0.06)
def healthy_fp16_scaler_startup(clock):
    seed(4401)
    x, y = teacher_classes(4402, d=24, k=8, noise=0.4)
    model = mlp([24, 64, 64, 8], nn.ReLU, norm=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    scaler = Half16Scaler(2.0 ** 24, regrow=200)
    rec = Recorder(model, opt, xent, clock, scaler=scaler)
    rec.run(0, 2000, sampler(x, y, 64, 4403), lambda s: 1e-3)
    return model, rec.records, healthy(
        model="MLP 24-64-64-8 with LayerNorm, ReLU", task="8-class teacher labels",
        optimizer="Adam lr 1e-3, batch 64, emulated float16 loss scaler: initial scale 2^24, "
                  "overflow -> skip and halve, x2 after 200 clean steps",
        cause="none (hard negative: a start-up burst of skipped overflow steps while the scale comes down "
              "from 2^24, then one about every 200 steps when it grows back; skipped steps carry "
              "infinite gradient norms by design)")


@scenario(0.04)
def healthy_resumed_from_checkpoint(clock):
    """Train, keep a checkpoint every 250 steps, crash after step 1169,
    restart from the checkpoint of step 1000 (data order reseeded, as a
    loader without a saved sampler state does) and go on to 2000."""
    seed(4501)
    x, y = teacher_classes(4502, d=24, k=6, noise=0.5)
    model = mlp([24, 64, 64, 6], nn.SiLU)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = warmup_linear(1e-3, 100, 2000)
    rec = Recorder(model, opt, xent, clock)
    draw = sampler(x, y, 32, 4503)
    ckpts = {}
    for start in range(0, 1170, 250):           # a checkpoint every 250 steps
        ckpts[start] = (copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()))
        rec.run(start, min(start + 250, 1170), draw, sched)
    ckpt = ckpts[1000]                          # the crash comes after step 1169
    crash_time = rec.records[-1]["time"]
    model2 = mlp([24, 64, 64, 6], nn.SiLU)
    model2.load_state_dict(ckpt[0])
    opt2 = torch.optim.Adam(model2.parameters(), lr=1e-3)
    opt2.load_state_dict(ckpt[1])
    rec2 = Recorder(model2, opt2, xent, clock)
    restart = crash_time + 420.0            # seven minutes to notice and restart
    rec2.run(1000, 2000, sampler(x, y, 32, 4504), sched,
             clock_step=lambda s: restart + (s - 1000) * healthy_resumed_from_checkpoint.seconds)
    return model2, rec.records + rec2.records, healthy(
        model="MLP 24-64-64-6, SiLU", task="6-class teacher labels",
        optimizer="Adam, batch 32; lr warm-up to 1e-3 over 100 steps, linear decay to 0 at 2000",
        cause="none (hard negative: the run crashes after step 1169 and resumes from its step-1000 "
              "checkpoint with a reseeded data order, so steps 1000-1169 are sent again with other "
              "values and later times; the daemon keeps the re-sent ones)",
        injected={"crash_after_step": 1169, "resumed_from_step": 1000, "restart_gap_seconds": 420.0})


@scenario(0.08)
def healthy_gru_clip(clock):
    seed(4601)
    stream = markov_text(4602)
    model = GRULM(16, 16, 48)
    opt = torch.optim.Adam(model.parameters(), lr=4e-3)
    rec = Recorder(model, opt, xent, clock, max_norm=0.5)
    rec.run(0, 900, text_sampler(stream, 16, 32, 4603), lambda s: 4e-3)
    return model, rec.records, healthy(
        model="GRU language model: embedding 16, GRU hidden 48, projection to 16 symbols",
        task="next symbol of a sparse random second-order Markov chain (16 symbols, 3 likely successors per pair)",
        optimizer="Adam lr 4e-3, batch 16 x 32 symbols, clip_grad_norm_ max_norm 0.5",
        cause="none (hard negative: the grad norm rises slowly, from about 0.17 to 0.45, as the model "
              "sharpens its predictions; the threshold sits just above it and clips a few outlier steps)")


@scenario(0.05)
def explode_lr_range_test(clock):
    """An lr range test left running: the lr grows 1% a step until the run
    blows up."""
    seed(4701)
    x, y = teacher_regression(4702, d=10)
    model = mlp([10, 64, 64, 64, 1], nn.Tanh)
    opt = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
    rec = Recorder(model, opt, mse, clock)
    rec.run(0, 1500, sampler(x, y, 64, 4703), lambda s: 1e-2 * 1.01 ** s)
    return model, rec.records, dict(
        category="explode", expected_alerts=["grad_explosion", "nonfinite"],
        acceptable_alerts=["grad_spike", "loss_spike", "divergence"],
        model="MLP 10-64-64-64-1, tanh", task="smooth nonlinear regression",
        optimizer="SGD momentum 0.9, batch 64, lr 1e-2 x 1.01^step (an lr range test nobody stopped)",
        cause="the lr grows past the stable range; the grad norm grows for several steps before overflowing")


@scenario(0.03)
def nan_inf_pixel_batch(clock):
    seed(4801)
    x, y = bar_images(4802)
    model = BarCNN()
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    base = sampler(x, y, 32, 4803)
    bad_step = 430

    def draw(step):
        xb, yb = base(step)
        if step == bad_step:
            xb = xb.clone()
            xb[5, 0, 3, 6] = math.inf          # one dead-pixel reading of +inf
        return xb, yb
    rec = Recorder(model, opt, xent, clock)
    rec.run(0, 1000, draw, lambda s: 0.02)
    return model, rec.records, dict(
        category="nonfinite", expected_alerts=["nonfinite"], acceptable_alerts=[],
        model="CNN conv 1-8 3x3, conv 8-16 3x3 stride 2, linear 256-4, ReLU",
        task="8x8 noisy bar images, 4 orientations", optimizer="SGD momentum 0.9, lr 0.02, batch 32",
        cause="one pixel of one image in the batch of step %d is +inf; the trainer does not check" % bad_step,
        injected={"inf_input_step": bad_step})


@scenario(0.04)
def vanishing_deep_sigmoid(clock):
    seed(4901)
    x, y = teacher_classes(4902, d=16, k=4, noise=0.3)
    model = mlp([16] + [40] * 10 + [4], nn.Sigmoid)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    rec = Recorder(model, opt, xent, clock)
    rec.run(0, 500, sampler(x, y, 64, 4903), lambda s: 0.05)
    return model, rec.records, dict(
        category="vanishing", expected_alerts=["vanishing"], acceptable_alerts=[],
        model="MLP 16-40x10-4, sigmoid, PyTorch default init", task="4-class teacher labels",
        optimizer="SGD momentum 0.9, lr 0.05, batch 64",
        cause="ten sigmoid layers: each multiplies the backward signal by at most 0.25 x a small weight "
              "gain, so the lower layers get almost no gradient from the first step")


@scenario(0.02)
def dead_relu_residual_bias_shift(clock):
    seed(5001)
    x, y = teacher_classes(5002, d=20, k=5, noise=0.4)
    model = ResidualMLP(20, 64, 5)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    shift_at = 1000

    def hook(step, m):
        if step == shift_at:
            m.block2.bias -= 60.0           # a faulty in-place edit of one bias
    rec = Recorder(model, opt, xent, clock)
    rec.run(0, 1600, sampler(x, y, 64, 5003), lambda s: 1e-3, hook=hook)
    return model, rec.records, dict(
        category="dead", expected_alerts=["dead_layer"],
        acceptable_alerts=["no_gradient", "loss_spike", "divergence"],
        model="residual MLP: stem 20-64, two residual ReLU blocks 64-64, head 64-5", task="5-class teacher labels",
        optimizer="Adam lr 1e-3, batch 64",
        cause="at step %d a faulty edit subtracts 60 from block2.bias: every ReLU of the block is off for "
              "every input, so block2's weight and bias get exactly zero gradient; the skip path keeps "
              "the rest of the net learning (hard: the loss barely moves)" % shift_at,
        injected={"bias_shift_step": shift_at, "param": "block2.bias", "shift": -60.0})


SPIKES = [380, 820, 1240]


@scenario(0.03)
def spike_unnormalised_batches(clock):
    seed(5101)
    x, y = teacher_classes(5102, d=24, k=6, noise=0.4)
    model = mlp([24, 96, 64, 6], nn.ReLU)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    base = sampler(x, y, 64, 5103)

    def draw(step):
        xb, yb = base(step)
        if step in SPIKES:
            xb = xb * 25.0 + 40.0           # a shard written without normalisation
        return xb, yb
    rec = Recorder(model, opt, xent, clock)
    rec.run(0, 1500, draw, lambda s: 1e-3)
    return model, rec.records, dict(
        category="spike", expected_alerts=["loss_spike"], acceptable_alerts=["grad_spike"],
        model="MLP 24-96-64-6, ReLU", task="6-class teacher labels", optimizer="Adam lr 1e-3, batch 64",
        cause="the batches of steps %s come from a shard stored without normalisation (x 25 + 40)" % SPIKES,
        injected={"corrupted_batch_steps": SPIKES}, spike_steps=SPIKES)


@scenario(0.08)
def clip_gru_threshold_too_low(clock):
    seed(5201)
    stream = markov_text(5202)
    model = GRULM(16, 16, 32)
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    rec = Recorder(model, opt, xent, clock, max_norm=0.005)
    rec.run(0, 800, text_sampler(stream, 16, 24, 5203), lambda s: 0.5)
    return model, rec.records, dict(
        category="clip", expected_alerts=["clip_saturation"], acceptable_alerts=["clip_surge"],
        model="GRU language model: embedding 16, GRU hidden 32, projection to 16 symbols",
        task="next symbol of a sparse random second-order Markov chain", optimizer="SGD momentum 0.9, lr 0.5, batch 16 x 24",
        cause="clip_grad_norm_ max_norm 0.005, about 30x below the typical pre-clip norm: every step is clipped "
              "and the model learns slowly")


# ------------------------------------------------------------------ checks

def checks(name, entry, recs):
    """The claims a scenario makes about itself, as (ok, text)."""
    lab, st = entry["labels"], entry["stats"]
    out = []

    def want(cond, text):
        out.append((bool(cond), text))
    cat = entry["category"]
    if cat == "healthy":
        want(lab["first_nonfinite_step"] is None, "no non-finite step")
        want(lab["onset_step"] is None, "no explosion onset")
        want(not lab["vanishing_params"], "no vanishing tensor")
        want(not lab["dead_params"], "no dead tensor")
        want(st["loss_last_mean"] < 0.8 * st["loss_first_mean"], "the loss falls (%s -> %s)"
             % (st["loss_first_mean"], st["loss_last_mean"]))
        if lab["clip_rate"] is not None:
            want(0 < lab["clip_rate"] < 0.25, "clips sometimes, not mostly (rate %s)" % lab["clip_rate"])
    if name == "healthy_fp16_scaler_startup":
        sk = lab["skipped_steps"]
        want(sk[:3] == [0, 1, 2], "a start-up burst of skips from step 0")
        want(len([s for s in sk if s > 100]) >= 3, "later skips as the scale regrows (%d)"
             % len([s for s in sk if s > 100]))
    if name == "healthy_resumed_from_checkpoint":
        steps = [r["step"] for r in recs]
        want(len(steps) - len(set(steps)) == 170, "170 steps sent twice")
        want(sorted(set(steps)) == list(range(2000)), "steps 0..1999 after replacement")
    if name == "healthy_sgdr_restarts":
        lrs = {r["step"]: r["lr"] for r in recs}
        want(all(lrs[s] > 100 * lrs[s - 1] for s in (500, 1000, 1500)), "the lr jumps at each restart")
    if cat == "explode":
        fnf, on = lab["first_nonfinite_step"], lab["onset_step"]
        want(fnf is not None, "goes non-finite (%s)" % fnf)
        want(on is not None and fnf is not None and fnf - on >= 3, "sustained growth from %s before it" % on)
    if cat == "nonfinite":
        want(lab["first_nonfinite_step"] == entry["injected"]["inf_input_step"], "non-finite at the bad batch")
        want(lab["onset_step"] is None, "no growth before it")
    if cat == "vanishing":
        want(len(lab["vanishing_params"]) >= 4, "%d vanishing tensors" % len(lab["vanishing_params"]))
        want(not lab["dead_params"] and lab["first_nonfinite_step"] is None, "nothing else wrong")
    if cat == "dead":
        want(lab["dead_from_step"] == entry["injected"]["bias_shift_step"], "dead from the shift step")
        want(lab["dead_params"] == ["block2.weight", "block2.bias"], "exactly block2 dead (%s)" % lab["dead_params"])
        want(lab["first_nonfinite_step"] is None, "stays finite")
    if cat == "spike":
        for s in st["spikes"]:
            want(s["loss_ratio"] > SPIKE_X and (s["recovery_steps"] or 99) <= 20,
                 "spike at %d: loss %.1fx, back in %s steps" % (s["step"], s["loss_ratio"], s["recovery_steps"]))
        want(not st["loss_steps_above_5x_trailing_median"], "no other loss spike above 5x")
        want(lab["first_nonfinite_step"] is None and lab["onset_step"] is None, "no NaN, no explosion")
    if cat == "clip":
        want(lab["clip_rate"] is not None and lab["clip_rate"] >= 0.99, "clips every step (%s)" % lab["clip_rate"])
        want(lab["first_nonfinite_step"] is None, "stays finite")
    return out


# ------------------------------------------------------------------ driver

DEFINITIONS = {
    "first_nonfinite_step": "first step, not marked skipped, whose loss, grad_norm or any per-tensor grad "
                            "norm is NaN or infinite (null: none)",
    "nonfinite_steps": "every such step",
    "onset_step": "explosion onset: first step t whose finite grad_norm, and every grad_norm after it, is "
                  "above 10 x the median of the finite grad norms of the preceding min(t, 50) steps (at least "
                  "5); non-finite values after t count as above; at least 5 steps from t to the end; skipped "
                  "steps left out",
    "vanishing_params": "tensors whose grad norm is below 1e-4 x top_param's or below 1e-7 on at least half "
                        "of the finite steps on which they have a gradient (exact zeros not counted as "
                        "vanishing; needs 20 steps)",
    "dead_params": "tensors whose grad norm is exactly 0.0 on each of their last >= 20 present steps; "
                   "dead_from_step: the earliest first step of such a final run",
    "spike_steps": "steps fed a corrupted batch (from the scenario)",
    "clip_rate": "fraction of steps with clip.pre_norm > clip.max_norm; null without clipping",
    "skipped_steps": "steps the emulated float16 loss scaler skipped (overflow)",
    "resumed runs": "labels are derived from the trace after re-sent steps replace earlier ones",
}


def record(name, index):
    fn = SCENARIOS[name]
    torch.set_num_threads(1)
    start = CLOCK_BASE + 3600.0 * index
    model, recs, entry = fn(lambda s: start + s * fn.seconds)
    path = os.path.join(OUT, name + ".jsonl")
    save(path, recs)
    return entry, top_param(model)


def label(name, entry, top):
    recs = load(os.path.join(OUT, name + ".jsonl"))
    spike_steps = entry.pop("spike_steps", [])
    labels, stats = derive(recs, top, spike_steps)
    steps = sorted({r["step"] for r in recs})
    full = collections.OrderedDict()
    full["file"] = name + ".jsonl"
    full["category"] = entry.pop("category")
    for k in ("model", "task", "optimizer", "cause"):
        full[k] = entry.pop(k)
    full["steps"] = len(steps)
    full["lines"] = len(recs)
    full["tensors"] = len(recs[0]["weights"])
    full["step_seconds"] = SCENARIOS[name].seconds
    full["top_param"] = top
    full["injected"] = entry.pop("injected", {})
    full["labels"] = labels
    full["expected_alerts"] = entry.pop("expected_alerts")
    full["acceptable_alerts"] = entry.pop("acceptable_alerts")
    full["stats"] = stats
    res = checks(name, full, recs)
    full["verified"] = [t for ok, t in res if ok]
    full["failed_checks"] = [t for ok, t in res if not ok]
    return full, res


def summary(name, e):
    lab, st = e["labels"], e["stats"]
    bits = ["%d lines" % e["lines"], "loss %.3g -> %.3g" % (st["loss_first_mean"], st["loss_last_mean"]),
            "gnorm med %.3g max %.3g" % (st["grad_norm_median"], st["grad_norm_max"]),
            "max g/trail %.3gx@%s" % tuple(st["max_grad_norm_ratio_to_trailing_median"]),
            "max loss/trail %.3gx@%s" % tuple(st["max_loss_ratio_to_trailing_median"])]
    for k in ("first_nonfinite_step", "onset_step", "dead_from_step", "clip_rate"):
        if lab[k] is not None:
            bits.append("%s %s" % (k, lab[k]))
    if lab["vanishing_params"]:
        bits.append("vanishing %d" % len(lab["vanishing_params"]))
    if lab["skipped_steps"]:
        bits.append("skipped %d %s" % (len(lab["skipped_steps"]), lab["skipped_steps"][:12]))
    return "%-34s %s" % (name, "; ".join(bits))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="+", metavar="NAME")
    ap.add_argument("--check", action="store_true", help="re-derive labels from the files and compare")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    names = list(SCENARIOS)
    if args.list:
        print("\n".join(names))
        return 0
    os.makedirs(OUT, exist_ok=True)
    lpath = os.path.join(OUT, "labels.json")
    old = json.load(open(lpath)) if os.path.exists(lpath) else {"scenarios": {}}
    todo = args.only or names
    for n in todo:
        if n not in SCENARIOS:
            sys.exit("unknown scenario %s" % n)
    failed = 0
    scen = dict(old.get("scenarios", {}))
    for n in todo:
        if args.check:
            e = old["scenarios"][n]
            labels, _ = derive(load(os.path.join(OUT, e["file"])), e["top_param"], e["labels"]["spike_steps"])
            same = labels == e["labels"]
            print("%-34s labels %s" % (n, "match" if same else "DIFFER"))
            failed += not same
            continue
        entry, top = record(n, names.index(n))
        full, res = label(n, entry, top)
        scen[n] = full
        print(summary(n, full), flush=True)
        for ok, t in res:
            print("    %s %s" % ("ok  " if ok else "FAIL", t))
        failed += sum(not ok for ok, _ in res)
    if not args.check:
        doc = collections.OrderedDict()
        doc["format"] = ("one JSON object per line and optimiser step, in the step shape of gradwatch's "
                         "ingest API; a resumed run re-sends steps (later lines replace earlier ones)")
        doc["definitions"] = DEFINITIONS
        doc["generator"] = "tests/eval/record_traces.py, torch %s, CPU, one thread" % torch.__version__
        doc["held_out"] = "never used to choose or tune a detector threshold"
        doc["scenarios"] = collections.OrderedDict((n, scen[n]) for n in names if n in scen)
        with open(lpath, "w") as f:
            json.dump(to_json(doc), f, indent=1, allow_nan=False)
            f.write("\n")
    print("%d failed checks" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
