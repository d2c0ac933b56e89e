#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Record sets of real PyTorch training runs as gradwatch traces.

Each scenario trains a small model on CPU (data generated here, one torch
thread, fixed seeds, a synthetic clock) and writes one ingest step a line to
FOLDER/NAME.jsonl; the labels are then derived from the written files with
the definitions of tests/data/traces/README.md and stored with the expected
alerts in FOLDER/labels.json.  Two sets:

  heldout   (default) tests/data/traces_heldout: never used to tune the
            detector; `make eval` reports them as a separate group.
  families  tests/data/traces_families: runs grouped into families
            (architecture/data/optimiser/fault), each labelled with its
            family and a split ("tune" or "heldout", by family), with the
            extra per-tensor fields "updates" and "adam_ratio"
            (tests/data/traces_families/README.md).

    /usr/bin/python3 tests/eval/record_traces.py              all heldout scenarios
    /usr/bin/python3 tests/eval/record_traces.py --set families --jobs 2
    /usr/bin/python3 tests/eval/record_traces.py --only NAME  some (labels.json updated in place)
    /usr/bin/python3 tests/eval/record_traces.py --check      re-derive labels from the files
    /usr/bin/python3 tests/eval/record_traces.py --list       scenario names
    --out DIR writes a set somewhere else (to compare a re-recording)

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


def markov_text(seed, n=40000, vocab=16, fanout=3, leak=0.02):
    """A symbol stream from a sparse random second-order Markov chain: each
    pair of symbols has `fanout` likely successors, plus a little uniform
    leakage (so a model has to remember two symbols back)."""
    g = torch.Generator().manual_seed(seed)
    trans = torch.full((vocab * vocab, vocab), leak / vocab)
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

    def __init__(self, model, opt, loss_fn, clock, max_norm=None, scaler=None, extras=False):
        self.model, self.opt, self.loss_fn = model, opt, loss_fn
        self.clock, self.max_norm, self.scaler = clock, max_norm, scaler
        self.named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.records = []
        self.bad_at = None
        # extras=True adds "updates" (and "adam_ratio" for Adam and AdamW) to
        # each record; without it the records are exactly as before.
        self.extras = extras
        self.adam = isinstance(opt, (torch.optim.Adam, torch.optim.AdamW))

    def adam_ratios(self, present):
        """Per tensor with a gradient: ||g||^2 / sum(exp_avg_sq), g the gradient
        as Adam will use it on this step (after clipping and unscaling; plus
        weight_decay x p for Adam's L2 decay, not for AdamW's), exp_avg_sq the
        optimiser state before this step (not bias-corrected).  Left out when
        the state is still empty (the tensor's first step) or sums to 0."""
        out = {}
        l2wd = not isinstance(self.opt, torch.optim.AdamW)
        for grp in self.opt.param_groups:
            for p in grp["params"]:
                n = self.pname.get(id(p))
                if n is None or n not in present or p.grad is None:
                    continue
                v = self.opt.state.get(p, {}).get("exp_avg_sq")
                if v is None:
                    continue
                g = p.grad.detach().to(torch.float64)
                if l2wd and grp.get("weight_decay"):
                    g = g + grp["weight_decay"] * p.detach().to(torch.float64)
                den = float(v.detach().to(torch.float64).sum())
                if den == 0.0:
                    continue
                out[n] = sig7(float((g * g).sum()) / den)
        return {n: out[n] for n in present if n in out}

    def extra_fields(self, rec, layers):
        """Take this step's optimiser step and put "updates" (the exact L2 norm
        of each tensor's change, float64) and, for Adam and AdamW,
        "adam_ratio" into rec, right after "weights" ("adam_ratio" left out
        while no tensor has optimiser state yet)."""
        if not hasattr(self, "pname"):
            self.pname = {id(p): n for n, p in self.named}
        ratio = self.adam_ratios(layers) if self.adam else None
        before = {n: p.detach().to(torch.float64).clone() for n, p in self.named if n in layers}
        self.opt.step()
        upd = {n: sig7(l2(p.detach().to(torch.float64) - before[n])) for n, p in self.named if n in layers}
        tail = [(k, rec.pop(k)) for k in list(rec) if k not in ("step", "time", "loss", "grad_norm", "lr",
                                                                 "layers", "weights")]
        rec["updates"] = upd
        if ratio:
            rec["adam_ratio"] = ratio
        for k, v in tail:
            rec[k] = v

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
            if self.extras and not skipped:
                self.extra_fields(rec, layers)
            elif not skipped:
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


# ================================================================== families
#
# `--set families`: runs grouped into families (architecture / data /
# optimiser / fault), written to tests/data/traces_families with per-tensor
# "updates" and "adam_ratio" besides the fields above.  The split is by
# family: Transformer, LSTM and residual-CNN runs are "heldout", MLP, plain
# CNN and GRU runs are "tune".

OUT_FAMILIES = os.path.join(TOP, "tests", "data", "traces_families")
# Trace k starts at 2026-04-01T00:00:00Z + k hours.
CLOCK_FAMILIES = 1775001600.0
HELDOUT_ARCHS = ("transformer", "lstm", "rescnn")
TUNE_ARCHS = ("mlp", "cnn", "gru")
FAMILIES = collections.OrderedDict()

FAMILY_SPLITS = {
    "rule": "split by family, never by seed: every Transformer, LSTM and residual-CNN run is 'heldout', "
            "every MLP, plain-CNN and GRU run is 'tune'",
    "heldout": "never used to choose or tune a detector threshold; includes faults (attention-logit growth) "
               "and data (char-level text, gratings, symbol-count sequences) the tune split lacks",
}
FAMILY_EXTRA_LABELS = ("vanishing_from_step", "exploding_param")
FAMILY_DEFINITIONS = {
    "family": "architecture/data/optimiser/fault of the run",
    "split": "tune or heldout, by family (see splits)",
    "no_gradient_params": "tensors that require grad but never have a gradient on any step of the trace "
                          "(absent from every step's layers)",
    "vanishing_from_step": "the step at which the scenario's change made the listed layers stop getting "
                           "gradient (from construction)",
    "vanishing_params_from_step": "vanishing_params, counted over the steps from vanishing_from_step on",
    "exploding_param": "the tensor whose gradient grows while the others stay normal (from construction)",
    "updates": "per tensor, the L2 norm of the step's parameter change, ||W_after - W_before|| (float64, exact)",
    "adam_ratio": "Adam/AdamW only: per tensor ||g||^2 / sum(exp_avg_sq), g the gradient the optimiser uses "
                  "(after clipping), exp_avg_sq its state before the step, not bias-corrected",
}


def family(seconds, arch, data, opt, fault):
    """Register a family scenario: `seconds` a step, its family
    arch/data/opt/fault and, from arch, its split."""
    assert arch in HELDOUT_ARCHS + TUNE_ARCHS, arch

    def reg(fn):
        fn.seconds = seconds
        fn.family = "/".join((arch, data, opt, fault))
        fn.split = "heldout" if arch in HELDOUT_ARCHS else "tune"
        FAMILIES[fn.__name__] = fn
        return fn
    return reg


def FRec(model, opt, loss_fn, clock, **kw):
    """The recorder of the family traces: updates and adam_ratio on."""
    return Recorder(model, opt, loss_fn, clock, extras=True, **kw)


def family_labels(records, extra, top):
    recs = effective(records)
    names = list(recs[0]["weights"])
    seen = set()
    for r in recs:
        seen.update(r["layers"])
    out = collections.OrderedDict()
    out["no_gradient_params"] = [n for n in names if n not in seen]
    for k in FAMILY_EXTRA_LABELS:
        if k in extra:
            out[k] = extra[k]
    if "vanishing_from_step" in extra:
        tail = [r for r in recs if r["step"] >= extra["vanishing_from_step"]]
        pt = per_tensor(tail, top)
        out["vanishing_params_from_step"] = [n for n in names if (pt[n]["vanish_fraction"] or 0.0) >= VANISH_SHARE]
    return out


def fault(category, expected, acceptable, **kw):
    return dict(category=category, expected_alerts=expected, acceptable_alerts=acceptable, **kw)


# ------------------------------------------------------------------ family data

def student_t(g, shape, df):
    """Student-t samples with integer df from generator g (df 1: Cauchy)."""
    z = torch.randn(shape, generator=g)
    chi = sum(torch.randn(shape, generator=g) ** 2 for _ in range(df))
    return z / torch.sqrt(chi / df)


def teacher_labels(x, g, k=5, width=32, noise=0.5, gain=2.0):
    d = x.shape[1]
    w1 = torch.randn(d, width, generator=g) / math.sqrt(d) * gain
    w2 = torch.randn(width, k, generator=g) / math.sqrt(width) * 3.0
    return (torch.tanh(x @ w1) @ w2 + noise * torch.randn(x.shape[0], k, generator=g)).argmax(1)


def flip_labels(y, share, k, seed):
    """Replace a share of the labels by uniformly random classes."""
    g = torch.Generator().manual_seed(seed)
    y = y.clone()
    m = torch.rand(y.shape[0], generator=g) < share
    y[m] = torch.randint(0, k, (int(m.sum()),), generator=g)
    return y


def char_text(seed, n=60000):
    """Character-level text from a toy grammar: sentences 'det [adj] noun
    verb det [adj] noun.' over a lexicon of made-up words (27 symbols:
    a-z less some, space, full stop)."""
    g = torch.Generator().manual_seed(seed)
    cons, vow = "bdfgklmnprstvz", "aeiou"

    def word(lo, hi):
        k = int(torch.randint(lo, hi + 1, (1,), generator=g))
        s = ""
        for i in range(k):
            pool = cons if i % 2 == 0 else vow
            s += pool[int(torch.randint(0, len(pool), (1,), generator=g))]
        return s
    lex = {"det": [word(1, 2) for _ in range(3)], "adj": [word(3, 5) for _ in range(6)],
           "noun": [word(3, 6) for _ in range(12)], "verb": [word(2, 5) for _ in range(8)]}

    def pick(c):
        return lex[c][int(torch.randint(0, len(lex[c]), (1,), generator=g))]
    out = []
    total = 0
    while total < n:
        parts = [pick("det")]
        if float(torch.rand(1, generator=g)) < 0.5:
            parts.append(pick("adj"))
        parts += [pick("noun"), pick("verb"), pick("det")]
        if float(torch.rand(1, generator=g)) < 0.5:
            parts.append(pick("adj"))
        parts.append(pick("noun"))
        s = " ".join(parts) + ". "
        out.append(s)
        total += len(s)
    text = "".join(out)[:n]
    chars = sorted(set(text))
    idx = {c: i for i, c in enumerate(chars)}
    return torch.tensor([idx[c] for c in text], dtype=torch.long), len(chars)


def grating_images(seed, n=3000, size=12, noise=0.8, regress=False):
    """size x size sinusoidal gratings, class = orientation (0, 45, 90, 135
    degrees), random frequency and phase, Gaussian pixel noise; regress=True
    gives the spatial frequency (centred, x 3) as the target instead."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    th = y.float() * math.pi / 4 + 0.15 * torch.randn(n, generator=g)
    fr = 0.6 + 0.8 * torch.rand(n, generator=g)
    ph = 2 * math.pi * torch.rand(n, generator=g)
    r = torch.arange(size).float() - size / 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    arg = (torch.cos(th)[:, None, None] * xx + torch.sin(th)[:, None, None] * yy) * fr[:, None, None]
    img = torch.sin(arg + ph[:, None, None]) + noise * torch.randn(n, size, size, generator=g)
    if regress:
        return img[:, None], 3.0 * (fr[:, None] - 1.0)
    return img[:, None], y


def count_sequences(seed, n=6000, length=16, vocab=8, k=4):
    """Symbol sequences; the class is whichever of the symbols 0..k-1
    occurs most often (ties: the smallest)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, vocab, (n, length), generator=g)
    counts = torch.stack([(x == c).sum(1) for c in range(k)], 1).float()
    y = (counts - 0.01 * torch.arange(k).float()).argmax(1)
    return x, y


def adding_task(seed, n=6000, length=20, heavy_df=None):
    """Adding problem: inputs (value, marker) pairs, target the sum of the
    two marked values; heavy_df gives the values Student-t tails."""
    g = torch.Generator().manual_seed(seed)
    if heavy_df:
        v = student_t(g, (n, length), heavy_df) * 0.5
    else:
        v = torch.rand(n, length, generator=g)
    m = torch.zeros(n, length)
    a = torch.randint(0, length // 2, (n,), generator=g)
    b = torch.randint(length // 2, length, (n,), generator=g)
    m[torch.arange(n), a] = 1
    m[torch.arange(n), b] = 1
    return torch.stack([v, m], 2), (v * m).sum(1, keepdim=True)


# ------------------------------------------------------------------ family models

class TinyGPT(nn.Module):
    """Decoder-only Transformer: token embedding tied to the output head,
    learned positions, `layers` pre-norm blocks (parameter-free RMS norm;
    fused bias-free qkv, attention output proj, GELU MLP fc/out), final
    norm.  No QK-norm unless qk_norm.  Keeps the largest attention logit of
    the last forward in .logit_max."""

    def __init__(self, vocab, d=48, heads=4, layers=1, ctx=32, dropout=0.0, qk_norm=False):
        super().__init__()
        self.heads, self.qk_norm, self.drop = heads, qk_norm, dropout
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(0.02 * torch.randn(ctx, d))
        self.blocks = []
        for i in range(layers):
            blk = nn.Module()
            blk.qkv = nn.Linear(d, 3 * d, bias=False)
            blk.proj = nn.Linear(d, d, bias=False)
            blk.fc = nn.Linear(d, 4 * d, bias=False)
            blk.out = nn.Linear(4 * d, d, bias=False)
            setattr(self, "h%d" % i, blk)
            self.blocks.append(blk)
        nn.init.normal_(self.tok.weight, std=0.05)
        self.logit_max = 0.0

    @staticmethod
    def norm(x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)

    def forward(self, idx):
        return self.norm(self.trunk(idx)) @ self.tok.weight.t()

    def trunk(self, idx):
        """The residual stream after the blocks, before the final norm."""
        B, T = idx.shape
        x = self.tok(idx) + self.pos[:T]
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
        top = 0.0
        for blk in self.blocks:
            q, k, v = blk.qkv(self.norm(x)).chunk(3, -1)
            hd = q.shape[-1] // self.heads
            q, k, v = (t.reshape(B, T, self.heads, hd).transpose(1, 2) for t in (q, k, v))
            if self.qk_norm:
                q, k = self.norm(q), self.norm(k)
            att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
            top = max(top, float(att.detach().abs().max()))
            att = att.masked_fill(mask, float("-inf")).softmax(-1)
            if self.drop:
                att = F.dropout(att, self.drop, self.training)
            h = (att @ v).transpose(1, 2).reshape(B, T, -1)
            x = x + F.dropout(blk.proj(h), self.drop, self.training)
            x = x + F.dropout(blk.out(F.gelu(blk.fc(self.norm(x)))), self.drop, self.training)
        self.logit_max = top
        return x


class LSTMLM(nn.Module):
    """Symbol model: embedding, one LSTM layer (biases optional), linear head
    without bias; per-position logits (seq=True) or the last position's (a
    sequence classifier).  skip=True adds the embedding to the LSTM output
    before the head (a bigram shortcut; needs emb == hidden)."""

    def __init__(self, vocab, emb, hidden, n_out, seq=True, bias=False, skip=False):
        super().__init__()
        self.seq, self.skip = seq, skip
        self.embed = nn.Embedding(vocab, emb)
        self.lstm = nn.LSTM(emb, hidden, batch_first=True, bias=bias)
        self.head = nn.Linear(hidden, n_out, bias=False)

    def forward(self, idx):
        e = self.embed(idx)
        h, _ = self.lstm(e)
        if self.skip:
            h = h + e
        return self.head(h if self.seq else h[:, -1])


class LSTMReg(nn.Module):
    """Real-valued sequences -> LSTM (no biases) -> linear head on the last
    state."""

    def __init__(self, d_in, hidden, d_out):
        super().__init__()
        self.lstm = nn.LSTM(d_in, hidden, batch_first=True, bias=False)
        self.head = nn.Linear(hidden, d_out)

    def forward(self, x):
        h, _ = self.lstm(x)
        return self.head(h[:, -1])


class ResCNN(nn.Module):
    """stem conv 1->c 3x3, two residual blocks x + c2(relu(c1(relu(x))))
    with a 2x2 average pool between them (c2 started at 0.2 x its default
    scale, SkipInit-style), global average pool, dropout, linear head.  Only
    b2.c1 and the head have biases."""

    def __init__(self, c=12, classes=4, dropout=0.0):
        super().__init__()
        self.stem = nn.Conv2d(1, c, 3, padding=1, bias=False)
        self.b1 = nn.Module()
        self.b1.c1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.b1.c2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.b2 = nn.Module()
        self.b2.c1 = nn.Conv2d(c, c, 3, padding=1)
        self.b2.c2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.head = nn.Linear(c, classes)
        self.drop = dropout
        with torch.no_grad():
            self.b1.c2.weight.mul_(0.2)
            self.b2.c2.weight.mul_(0.2)

    def forward(self, x):
        h = self.stem(x)
        h = h + self.b1.c2(F.relu(self.b1.c1(F.relu(h))))
        h = F.avg_pool2d(h, 2)
        h = h + self.b2.c2(F.relu(self.b2.c1(F.relu(h))))
        h = F.relu(h).mean((2, 3))
        return self.head(F.dropout(h, self.drop, self.training))


def bias_free_mlp(sizes, act):
    """fc1 .. head without biases (3-4 tensors: small traces)."""
    parts = []
    for i, (a, b) in enumerate(zip(sizes[:-2], sizes[1:-1]), 1):
        parts.append(("fc%d" % i, nn.Linear(a, b, bias=False)))
        parts.append(("act%d" % i, act()))
    parts.append(("head", nn.Linear(sizes[-2], sizes[-1], bias=False)))
    return nn.Sequential(collections.OrderedDict(parts))


def triangular(base, peak, half):
    """Triangular cyclic lr: base -> peak over `half` steps and back."""
    def lr(s):
        p = (s % (2 * half)) / half
        return base + (peak - base) * (p if p <= 1 else 2 - p)
    return lr


def warmup_cosine(peak, warm, total, floor=0.0):
    def lr(s):
        if s < warm:
            return peak * (s + 1) / warm
        return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * min(1.0, (s - warm) / (total - warm))))
    return lr


def const(v):
    return lambda s: v
# ------------------------------------------------------------------ family scenarios: tune, healthy

def markov_order1(seed, n=30000, vocab=16, fanout=2, leak=0.02):
    """A first-order chain: each symbol has `fanout` likely successors."""
    g = torch.Generator().manual_seed(seed)
    trans = torch.full((vocab, vocab), leak / vocab)
    for c in range(vocab):
        nxt = torch.randperm(vocab, generator=g)[:fanout]
        trans[c, nxt] += torch.rand(fanout, generator=g) + 0.2
    cdf = (trans / trans.sum(1, keepdim=True)).cumsum(1).tolist()
    u = torch.rand(n, generator=g).tolist()
    out = [0]
    for i in range(1, n):
        out.append(min(bisect.bisect_left(cdf[out[-1]], u[i]), vocab - 1))
    return torch.tensor(out, dtype=torch.long)


def linear_tanh_regression(seed, n=8000, d=10):
    """y = 1.5 x.c + tanh(2 x.a), c and a random unit-scale directions."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    a, c = (torch.randn(d, 1, generator=g) / math.sqrt(d) for _ in range(2))
    return x, 1.5 * x @ c + torch.tanh(2 * x @ a)


def dropout_mlp(sizes, act, p):
    parts = []
    for i, (a, b) in enumerate(zip(sizes[:-2], sizes[1:-1]), 1):
        parts += [("fc%d" % i, nn.Linear(a, b, bias=False)), ("act%d" % i, act()), ("drop%d" % i, nn.Dropout(p))]
    parts.append(("head", nn.Linear(sizes[-2], sizes[-1], bias=False)))
    return nn.Sequential(collections.OrderedDict(parts))


@family(0.01, "mlp", "teacher-regression", "sgd", "healthy-batch1")
def fam_mlp_batch1_sgd(clock):
    seed(6001)
    x, y = teacher_regression(6002, d=8, noise=0.1)
    model = bias_free_mlp([8, 32, 32, 1], nn.Tanh)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    rec = FRec(model, opt, mse, clock)
    rec.run(0, 600, sampler(x, y, 1, 6003), const(0.05))
    return model, rec.records, healthy(
        model="MLP 8-32-32-1, tanh, no biases", task="smooth nonlinear regression, target noise 0.1",
        optimizer="plain SGD lr 0.05, batch 1",
        cause="none (hard negative: one sample a step, so the loss and grad norm jump by orders of "
              "magnitude from step to step)")


@family(0.01, "mlp", "teacher-classes", "adam", "healthy-batch2")
def fam_mlp_batch2_adam(clock):
    seed(6011)
    x, y = teacher_classes(6012, d=16, k=4, noise=0.8)
    model = mlp([16, 48, 4], nn.GELU)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 500, sampler(x, y, 2, 6013), const(1e-3))
    return model, rec.records, healthy(
        model="MLP 16-48-4, GELU", task="4-class teacher labels, logit noise 0.8",
        optimizer="Adam lr 1e-3, batch 2",
        cause="none (hard negative: batches of two noisy samples; single-step loss and grad-norm jumps)")


@family(0.01, "mlp", "heavy-tailed-inputs", "sgd", "healthy-batch8")
def fam_mlp_batch8_heavy_inputs_sgd(clock):
    seed(6021)
    g = torch.Generator().manual_seed(6040)
    x = student_t(g, (8000, 12), 2)
    y = teacher_labels(x, g, k=3, noise=0.3)
    model = bias_free_mlp([12, 64, 64, 3], nn.ReLU)
    opt = torch.optim.SGD(model.parameters(), lr=0.008)
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 700, sampler(x, y, 8, 6041), const(0.008))
    return model, rec.records, healthy(
        model="MLP 12-64-64-3, ReLU, no biases", task="3-class teacher labels on Student-t (df 2) inputs",
        optimizer="plain SGD lr 0.008, batch 8",
        cause="none (hard negative: a batch holding an extreme input gives a single step of several times "
              "the usual loss and over ten times the usual grad norm, normal for this run)")


@family(0.02, "mlp", "student-t-targets", "adam", "healthy-heavy-tailed-targets")
def fam_mlp_student_t_targets(clock):
    seed(6031)
    x, y = linear_tanh_regression(6032, d=10)
    g = torch.Generator().manual_seed(6033)
    y = y + 0.3 * student_t(g, y.shape, 2)
    model = mlp([10, 64, 1], nn.SiLU)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    rec = FRec(model, opt, mse, clock)
    rec.run(0, 500, sampler(x, y, 32, 6034), const(3e-3))
    return model, rec.records, healthy(
        model="MLP 10-64-1, SiLU", task="regression y = 1.5 x.c + tanh(2 x.a) plus 0.3 x Student-t (df 2) noise: "
        "infinite-variance targets", optimizer="Adam lr 3e-3, batch 32, MSE",
        cause="none (hard negative: a batch holding an extreme target gives a loss and grad norm many times "
              "the usual, on single steps throughout the run)")


@family(0.02, "mlp", "teacher-classes-25pct-label-noise", "sgd-momentum", "healthy-label-noise")
def fam_mlp_label_noise(clock):
    seed(6041)
    x, y = teacher_classes(6042, d=20, k=5, noise=0.3)
    y = flip_labels(y, 0.25, 5, 6043)
    model = bias_free_mlp([20, 64, 64, 5], nn.ReLU)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 700, sampler(x, y, 32, 6044), const(0.05))
    return model, rec.records, healthy(
        model="MLP 20-64-64-5, ReLU, no biases", task="5-class teacher labels, 25% of them replaced by random classes",
        optimizer="SGD momentum 0.9, lr 0.05, batch 32",
        cause="none (hard negative: the loss stays high and noisy; it cannot go below the noise floor)")


@family(0.02, "mlp", "teacher-classes", "sgd-momentum", "healthy-dropout-triangular-lr")
def fam_mlp_dropout_triangular(clock):
    seed(6051)
    x, y = teacher_classes(6052, d=20, k=5, noise=0.4)
    model = dropout_mlp([20, 96, 96, 5], nn.ReLU, 0.3)
    opt = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 500, sampler(x, y, 32, 6053), triangular(0.002, 0.1, 125))
    return model, rec.records, healthy(
        model="MLP 20-96-96-5, ReLU, dropout 0.3, no biases", task="5-class teacher labels",
        optimizer="SGD momentum 0.9, batch 32; triangular cyclic lr 0.002 -> 0.1 -> 0.002 every 250 steps",
        cause="none (hard negative: the lr rises 50x twice; loss and grad norm swell with it)",
        injected={"lr_cycle_steps": 250})


@family(0.02, "mlp", "teacher-classes", "adamw", "healthy-long-warmup")
def fam_mlp_long_warmup(clock):
    seed(6061)
    x, y = teacher_classes(6062, d=24, k=6, noise=0.5)
    model = bias_free_mlp([24, 96, 96, 6], nn.GELU)
    opt = torch.optim.AdamW(model.parameters(), lr=0.0, weight_decay=0.01)
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 1100, sampler(x, y, 32, 6063), warmup_cosine(3e-3, 1000, 1100))
    return model, rec.records, healthy(
        model="MLP 24-96-96-6, GELU, no biases", task="6-class teacher labels",
        optimizer="AdamW wd 0.01, batch 32; lr linear warm-up 0 -> 3e-3 over 1000 steps, cosine to 0 at 1100",
        cause="none (hard negative: a 1000-step warm-up: the updates grow 1000x and the grad norm changes "
              "all through it)", injected={"warmup_steps": 1000})


@family(0.02, "mlp", "teacher-regression", "sgd-momentum", "healthy-weight-decay")
def fam_mlp_weight_decay(clock):
    seed(6071)
    x, y = teacher_regression(6072, d=10, noise=0.05)
    model = mlp([10, 64, 64, 1], nn.Tanh)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-3)
    rec = FRec(model, opt, mse, clock)
    rec.run(0, 400, sampler(x, y, 32, 6073), const(0.05))
    return model, rec.records, healthy(
        model="MLP 10-64-64-1, tanh", task="smooth nonlinear regression",
        optimizer="SGD momentum 0.9, lr 0.05, weight decay 5e-3, batch 32",
        cause="none (hard negative: strong weight decay shrinks the weight norms all run long)")


BAD2 = [400, 401]


@family(0.02, "mlp", "teacher-classes", "sgd-momentum", "healthy-two-bad-batches")
def fam_mlp_two_bad_batches(clock):
    seed(6081)
    x, y = teacher_classes(6082, d=16, k=4, noise=0.4)
    model = bias_free_mlp([16, 64, 64, 4], nn.ReLU)
    opt = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9)
    base = sampler(x, y, 32, 6083)

    def draw(step):
        xb, yb = base(step)
        if step in BAD2:
            xb = xb * 4.0 + 10.0                # two shards written with another scaling
        return xb, yb
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 500, draw, const(0.03))
    return model, rec.records, dict(
        category="healthy", expected_alerts=[], acceptable_alerts=["loss_spike", "grad_spike"],
        model="MLP 16-64-64-4, ReLU, no biases", task="4-class teacher labels",
        optimizer="SGD momentum 0.9, lr 0.03, batch 32",
        cause="two back-to-back batches (steps %s) from a shard with other scaling (x 4 + 10) knock the weights; "
              "momentum carries the kick a few steps and the loss is back to normal within about 30 steps: "
              "a loss spike, not divergence" % BAD2,
        injected={"corrupted_batch_steps": BAD2}, spike_steps=BAD2)


@family(0.03, "cnn", "bar-images", "sgd-momentum", "healthy-batch4")
def fam_cnn_batch4(clock):
    seed(6091)
    x, y = bar_images(6092, noise=0.6)
    model = BarCNN()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 600, sampler(x, y, 4, 6093), const(0.01))
    return model, rec.records, healthy(
        model="CNN conv 1-8 3x3, conv 8-16 3x3 stride 2, linear 256-4, ReLU", task="8x8 noisy bar images",
        optimizer="SGD momentum 0.9, lr 0.01, batch 4",
        cause="none (hard negative: batches of four images, noisy loss and grad norm)")


@family(0.03, "cnn", "bar-images", "sgd-momentum", "healthy-warm-restarts")
def fam_cnn_warm_restarts(clock):
    seed(6101)
    x, y = bar_images(6102, noise=0.8)
    model = BarCNN()
    opt = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 400, sampler(x, y, 32, 6103), cosine_restarts(0.05, 130, 1e-4))
    return model, rec.records, healthy(
        model="CNN conv 1-8 3x3, conv 8-16 3x3 stride 2, linear 256-4, ReLU", task="8x8 bar images, pixel noise 0.8",
        optimizer="SGD momentum 0.9, batch 32; SGDR cosine 0.05 -> 1e-4 restarting every 130 steps",
        cause="none (hard negative: the lr jumps 500x at each restart)", injected={"restart_steps": [130, 260, 390]})


class GRUSmall(nn.Module):
    """Embedding, a one-layer GRU without biases, linear projection."""

    def __init__(self, vocab, emb, hidden):
        super().__init__()
        self.embed = nn.Embedding(vocab, emb)
        self.gru = nn.GRU(emb, hidden, batch_first=True, bias=False)
        self.proj = nn.Linear(hidden, vocab)

    def forward(self, idx):
        h, _ = self.gru(self.embed(idx))
        return self.proj(h)


@family(0.05, "gru", "markov-text", "sgd-momentum", "healthy-curriculum-switch")
def fam_gru_curriculum(clock):
    seed(6111)
    easy = markov_order1(6112, n=30000, vocab=16, fanout=2)
    hard = markov_text(6113, n=40000, vocab=16, fanout=3)
    switch = 350
    de, dh = text_sampler(easy, 16, 24, 6114), text_sampler(hard, 16, 24, 6115)
    model = GRUSmall(16, 16, 48)
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 650, lambda s: de(s) if s < switch else dh(s), const(0.5))
    return model, rec.records, healthy(
        model="GRU language model: embedding 16, GRU hidden 48 (no biases), projection to 16 symbols",
        task="next symbol: first-order Markov chain (2 likely successors) until step %d, then a second-order "
             "chain (3 likely successors per pair)" % switch,
        optimizer="SGD momentum 0.9, lr 0.5, batch 16 x 24",
        cause="none (hard negative: at the curriculum switch the loss jumps to a new, harder task and falls "
              "again)", injected={"curriculum_switch_step": switch})


# ------------------------------------------------------------------ family scenarios: tune, faults

def he_init_times(model, gain):
    """Every Linear weight drawn N(0, (gain x He std)^2): an init `gain`
    times too large."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                m.weight.normal_(0, gain * math.sqrt(2.0 / m.in_features))


EXPLODE_ACCEPT = ["grad_spike", "loss_spike", "divergence"]


@family(0.02, "mlp", "linear-tanh-regression", "sgd-momentum", "bad-init")
def fam_mlp_bad_init_deep_relu(clock):
    seed(6201)
    x, y = linear_tanh_regression(6202, d=16)
    model = bias_free_mlp([16] + [64] * 8 + [1], nn.ReLU)
    he_init_times(model, 1.5)
    opt = torch.optim.SGD(model.parameters(), lr=7e-5, momentum=0.9)
    rec = FRec(model, opt, mse, clock)
    rec.run(0, 300, sampler(x, y, 32, 6203), const(7e-5))
    return model, rec.records, fault(
        "explode", ["grad_explosion", "nonfinite"], EXPLODE_ACCEPT,
        model="MLP 16-64x8-1, ReLU, no biases; weights N(0, (1.5 x He std)^2)",
        task="regression y = 1.5 x.c + tanh(2 x.a)", optimizer="SGD momentum 0.9, lr 7e-5, batch 32, MSE",
        cause="init 1.5x too large through 9 ReLU layers: the output is 1.5^9 = 38x too large at step 0, the "
              "first updates make the weights larger still and the grad norm grows several-fold a step "
              "until it overflows (unhealthy from step 0)", injected={"init_gain_over_he": 1.5})


# Settings chosen by trying neighbours (the runs are near a threshold: a
# little less and the bad init recovers, a little more and it overflows at
# step 2; a larger initial loss scale makes the forgotten tensor show at once).
LR_DEEPER = 2e-5
SCALE0_GRU = 0          # log2 of the initial loss scale
RESCNN_INIT = 3.0
RESCNN_INIT_LR = 5e-5
SCALE_EVERY_TF = 100


@family(0.02, "mlp", "teacher-regression", "sgd-momentum", "bad-init")
def fam_mlp_bad_init_deeper_relu(clock):
    seed(6211)
    x, y = teacher_regression(6212, d=16)
    model = bias_free_mlp([16] + [64] * 10 + [1], nn.ReLU)
    he_init_times(model, 1.4)
    opt = torch.optim.SGD(model.parameters(), lr=LR_DEEPER, momentum=0.9)
    rec = FRec(model, opt, mse, clock)
    rec.run(0, 300, sampler(x, y, 32, 6213), const(LR_DEEPER))
    return model, rec.records, fault(
        "explode", ["grad_explosion", "nonfinite"], EXPLODE_ACCEPT,
        model="MLP 16-64x10-1, ReLU, no biases; weights N(0, (1.4 x He std)^2)",
        task="smooth nonlinear regression", optimizer="SGD momentum 0.9, lr %g, batch 32, MSE" % LR_DEEPER,
        cause="init 1.4x too large through 11 ReLU layers (40x at the output): unhealthy from step 0, the "
              "grad norm grows until it overflows", injected={"init_gain_over_he": 1.4})


@family(0.02, "mlp", "linear-tanh-regression", "sgd-momentum", "lr-typo-x100")
def fam_mlp_lr_typo_stage2(clock):
    seed(6221)
    x, y = linear_tanh_regression(6222, d=12)
    model = mlp([12, 64, 64, 1], nn.Tanh)
    opt = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
    stage2 = 300

    def lr(s):
        return 0.005 if s < stage2 else 0.5         # meant 0.005 again: typed 5e-1 for 5e-3
    rec = FRec(model, opt, mse, clock)
    rec.run(0, 1000, sampler(x, y, 32, 6223), lr)
    return model, rec.records, fault(
        "explode", ["grad_explosion", "nonfinite"], EXPLODE_ACCEPT,
        model="MLP 12-64-64-1, tanh", task="regression y = 1.5 x.c + tanh(2 x.a)",
        optimizer="SGD momentum 0.9, batch 32, MSE; lr 0.005, and from step %d (a second stage meant to keep "
                  "0.005) 0.5 by a typo" % stage2,
        cause="lr typo x100 in the second stage: past the stable range the weights oscillate with growing "
              "amplitude, the grad norm grows for about 20 steps and overflows",
        injected={"typo_from_step": stage2, "lr_meant": 0.005, "lr_used": 0.5})


@family(0.03, "cnn", "bar-images", "adam", "lr-typo-x100")
def fam_cnn_lr_typo_adam(clock):
    seed(6241)
    x, y = bar_images(6242, noise=0.6)
    model = BarCNN()
    opt = torch.optim.Adam(model.parameters(), lr=0.0)
    resume = 300

    def lr(s):
        return 2e-3 if s < resume else 0.2
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 420, sampler(x, y, 32, 6243), lr)
    return model, rec.records, fault(
        "divergence", ["divergence"], ["loss_spike", "grad_spike"],
        model="CNN conv 1-8 3x3, conv 8-16 3x3 stride 2, linear 256-4, ReLU", task="8x8 noisy bar images",
        optimizer="Adam, batch 32; lr 2e-3, and from step %d 0.2 (a restarted job, typed 2e-1 for 2e-3)" % resume,
        cause="lr x100 with Adam from step %d: each update moves every weight by about the lr, the model "
              "is thrown out of its basin and the loss climbs to chance and stays there" % resume,
        injected={"typo_from_step": resume, "lr_meant": 2e-3, "lr_used": 0.2})


def xent_sum(model, batch):
    """Cross-entropy summed over the batch's tokens (reduction='sum')."""
    x, y = batch
    out = model(x)
    return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1), reduction="sum")


class ScaleBug:
    """Emulated mixed precision in which one tensor is left out of the loss
    scaler: the loss scale starts at `scale0` and doubles every `every`
    steps (the scaler's overflow check covers only the float32 parameter
    group, which never overflows); the forgotten tensor's gradient stays
    multiplied by the scale and is held in float16, so it overflows to inf
    once an element passes 65504.  (The float32 gradients are unscaled
    exactly, so they are left as computed.)"""

    def __init__(self, param, scale0, every):
        self.scale0, self.every, self.step = scale0, every, 0
        param.register_hook(lambda g: (g * self.scale()).to(torch.float16).to(torch.float32))

    def scale(self):
        return self.scale0 * 2.0 ** (self.step // self.every)

    def hook(self, step, model):
        self.step = step


@family(0.05, "gru", "markov-text", "adam", "one-layer-explosion-loss-scale-bug")
def fam_gru_embed_scale_bug(clock):
    seed(6301)
    stream = markov_text(6302)
    model = GRUSmall(16, 16, 32)
    model.proj.bias.requires_grad_(False)           # a frozen output bias: fewer tensors
    bug = ScaleBug(model.embed.weight, 2.0 ** SCALE0_GRU, 100)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    rec = FRec(model, opt, xent_sum, clock)
    rec.run(0, 2000, text_sampler(stream, 16, 24, 6303), const(3e-3), hook=bug.hook)
    return model, rec.records, fault(
        "one_layer_explosion", ["grad_explosion", "nonfinite"], EXPLODE_ACCEPT,
        model="GRU language model: embedding 16 (its gradient held in float16), GRU hidden 32 (no biases), "
              "projection to 16 symbols (bias frozen)",
        task="next symbol of a sparse second-order Markov chain", optimizer="Adam lr 3e-3, batch 16 x 24",
        cause="a loss-scaling bug: the embedding is missing from the scaler's parameter group, so its gradient "
              "stays multiplied by the loss scale (%g, doubling every 100 steps: 8x by step 300, 128x by 700, "
              "1024x by 1000) while the other tensors' gradients are normal; Adam normalises most of it away, "
              "until the float16 gradient overflows and Adam writes NaN into the embedding" % 2.0 ** SCALE0_GRU,
        injected={"scale0": 2.0 ** SCALE0_GRU, "doubling_every": 100},
        extra_labels={"exploding_param": "embed.weight"})


class SigmoidNet(nn.Module):
    """z = sigmoid(fc1 x + b1); h = tanh(fc2 z + skip x); head h.  Only fc1
    has a bias; `skip` is a linear shortcut from the input."""

    def __init__(self, d, width, k):
        super().__init__()
        self.fc1 = nn.Linear(d, width)
        self.fc2 = nn.Linear(width, width, bias=False)
        self.skip = nn.Linear(d, width, bias=False)
        self.head = nn.Linear(width, k, bias=False)

    def forward(self, x):
        return self.head(torch.tanh(self.fc2(torch.sigmoid(self.fc1(x))) + self.skip(x)))


@family(0.02, "mlp", "teacher-classes", "sgd-momentum", "midrun-saturation")
def fam_mlp_sigmoid_saturation(clock):
    seed(6401)
    x, y = teacher_classes(6402, d=16, k=4, noise=0.4)
    model = SigmoidNet(16, 64, 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    at = 600

    def hook(step, m):
        if step == at:
            m.fc1.bias -= 25.0          # a faulty re-initialisation writes into the running model
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 720, sampler(x, y, 32, 6403), const(0.1), hook=hook)
    return model, rec.records, fault(
        "vanishing", ["vanishing"], ["loss_spike", "divergence"],
        model="MLP 16-64-64-4 with an input shortcut: tanh(fc2 sigmoid(fc1 x + b) + skip x) -> head; only fc1 "
              "has a bias",
        task="4-class teacher labels", optimizer="SGD momentum 0.9, lr 0.1, batch 32",
        cause="at step %d a faulty edit subtracts 25 from fc1.bias: every sigmoid unit sits at about "
              "sigmoid(-25) ~ 1e-11 for every input, so fc1 gets gradients about 1e-10 of their size before "
              "(not exactly zero) and fc2, fed almost nothing, too; the shortcut and the head keep learning" % at,
        injected={"shift_step": at, "param": "fc1.bias", "shift": -25.0},
        extra_labels={"vanishing_from_step": at})


class GatedMLP(nn.Module):
    """h = relu(fc1 x) * sigmoid(gate x) (the gate branch optionally
    detached), then fc2, head."""

    def __init__(self, d, width, k, detach_gate):
        super().__init__()
        self.detach_gate = detach_gate
        self.fc1 = nn.Linear(d, width, bias=False)
        self.gate = nn.Linear(d, width, bias=False)
        self.fc2 = nn.Linear(width, width, bias=False)
        self.head = nn.Linear(width, k, bias=False)

    def forward(self, x):
        g = torch.sigmoid(self.gate(x))
        if self.detach_gate:
            g = g.detach()              # the bug: meant to stop gradient into x only
        return self.head(F.relu(self.fc2(F.relu(self.fc1(x)) * g)))


@family(0.02, "mlp", "teacher-classes", "adam", "detached-branch")
def fam_mlp_detached_gate(clock):
    seed(6501)
    x, y = teacher_classes(6502, d=20, k=5, noise=0.4)
    model = GatedMLP(20, 64, 5, detach_gate=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 500, sampler(x, y, 32, 6503), const(1e-3))
    return model, rec.records, fault(
        "no_gradient", ["no_gradient"], [],
        model="gated MLP: relu(fc1 x) * sigmoid(gate x) -> fc2 -> head, 20-64-64-5, no biases",
        task="5-class teacher labels", optimizer="Adam lr 1e-3, batch 32",
        cause="the gate branch's output is .detach()ed, so gate.weight requires grad but never gets one; "
              "the rest trains normally (the gate stays at its random init)",
        injected={"detached_params": ["gate.weight"]})


class BarCNN3(nn.Module):
    """BarCNN with a third conv defined but left out of forward (a
    refactor dropped the call)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(16, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 4 * 4, 4)

    def forward(self, x):
        h = F.relu(self.conv2(F.relu(self.conv1(x))))
        return self.fc(h.flatten(1))


LR_BCE = 3e-3


def manual_bce(model, batch):
    """Binary cross-entropy written out by hand: log(sigmoid(z)) and
    log(1 - sigmoid(z)); sigmoid rounds to exactly 1.0 in float32 past
    z ~ 17, and log(1 - 1) = -inf."""
    x, y = batch
    p = torch.sigmoid(model(x)[:, 0])
    return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()


@family(0.02, "mlp", "binary-teacher-2pct-label-noise", "adam", "log-zero-in-loss")
def fam_mlp_bce_log0(clock):
    seed(6521)
    g = torch.Generator().manual_seed(6522)
    x = torch.randn(8000, 16, generator=g)
    w = torch.randn(16, generator=g)
    y = (x @ w > 0).float()
    flip = torch.rand(8000, generator=g) < 0.02
    y[flip] = 1 - y[flip]
    model = mlp([16, 64, 1], nn.ReLU)
    opt = torch.optim.Adam(model.parameters(), lr=LR_BCE)
    rec = FRec(model, opt, manual_bce, clock)
    rec.run(0, 2000, sampler(x, y, 32, 6523), const(LR_BCE))
    return model, rec.records, fault(
        "nonfinite", ["nonfinite"], ["loss_spike", "grad_spike"],
        model="MLP 16-64-1, ReLU, one logit", task="binary labels of a random hyperplane, 2% flipped",
        optimizer="Adam lr %g, batch 32" % LR_BCE,
        cause="a hand-written binary cross-entropy, log(sigmoid(z)) and log(1 - sigmoid(z)); the nearly "
              "separable data drive the logits up until sigmoid(z) rounds to 1.0 for a sample whose label "
              "was flipped: log(0) = -inf, an infinite loss and NaN gradients")


@family(0.03, "cnn", "bar-images", "adam", "bad-batches-unnormalised")
def fam_cnn_unnormalised_batches(clock):
    seed(6601)
    x, y = bar_images(6602, noise=0.6)
    model = BarCNN()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    base = sampler(x, y, 32, 6603)
    bad = [220, 380]

    def draw(step):
        xb, yb = base(step)
        if step in bad:
            xb = xb * 25.0 + 40.0           # a shard stored without normalisation
        return xb, yb
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 420, draw, const(2e-3))
    return model, rec.records, fault(
        "spike", ["loss_spike"], ["grad_spike"],
        model="CNN conv 1-8 3x3, conv 8-16 3x3 stride 2, linear 256-4, ReLU", task="8x8 noisy bar images",
        optimizer="Adam lr 2e-3, batch 32",
        cause="the batches of steps %s come from a shard stored without normalisation (x 25 + 40)" % bad,
        injected={"corrupted_batch_steps": bad}, spike_steps=bad)


@family(0.02, "mlp", "teacher-classes", "adam", "bad-batches-shuffled-labels")
def fam_mlp_shuffled_labels(clock):
    seed(6611)
    x, y = teacher_classes(6612, d=20, k=5, noise=0.2)
    model = mlp([20, 64, 5], nn.ReLU)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    base = sampler(x, y, 32, 6613)
    bad = [380, 381]
    g = torch.Generator().manual_seed(6614)

    def draw(step):
        xb, yb = base(step)
        if step in bad:
            yb = yb[torch.randperm(yb.shape[0], generator=g)]     # labels of another order
        return xb, yb
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 480, draw, const(2e-3))
    return model, rec.records, fault(
        "spike", ["loss_spike"], ["grad_spike"],
        model="MLP 20-64-5, ReLU", task="5-class teacher labels (logit noise 0.2)",
        optimizer="Adam lr 2e-3, batch 32",
        cause="a loader bug pairs the inputs of steps %s with shuffled labels" % bad,
        injected={"corrupted_batch_steps": bad}, spike_steps=bad)


@family(0.05, "gru", "markov-text", "adam", "clip-threshold-too-low")
def fam_gru_clip_too_low_adam(clock):
    seed(6621)
    stream = markov_text(6622)
    model = GRUSmall(16, 16, 32)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    rec = FRec(model, opt, xent, clock, max_norm=1e-3)
    rec.run(0, 350, text_sampler(stream, 16, 24, 6623), const(3e-3))
    return model, rec.records, fault(
        "clip", ["clip_saturation"], ["clip_surge"],
        model="GRU language model: embedding 16, GRU hidden 32 (no biases), projection to 16 symbols",
        task="next symbol of a sparse second-order Markov chain",
        optimizer="Adam lr 3e-3, batch 16 x 24, clip_grad_norm_ max_norm 1e-3",
        cause="max_norm 1e-3 (meant 1.0): every step is clipped, by a factor of hundreds; Adam's "
              "normalisation hides most of it from the loss, so only the clip statistics show it")


@family(0.02, "mlp", "teacher-classes", "sgd-momentum", "dead-relu-bias-shift")
def fam_mlp_dead_relu(clock):
    seed(6641)
    x, y = teacher_classes(6642, d=20, k=5, noise=0.4)
    model = mlp([20, 64, 64, 5], nn.ReLU)
    opt = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9)
    at = 350

    def hook(step, m):
        if step == at:
            m.fc2.bias -= 50.0
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 500, sampler(x, y, 32, 6643), const(0.03), hook=hook)
    return model, rec.records, fault(
        "dead", ["dead_layer"], ["no_gradient", "loss_spike", "divergence", "vanishing"],
        model="MLP 20-64-64-5, ReLU", task="5-class teacher labels", optimizer="SGD momentum 0.9, lr 0.03, batch 32",
        cause="at step %d a faulty edit subtracts 50 from fc2.bias: every fc2 ReLU is off for every input, so "
              "fc2 and everything below it get exactly zero gradient; the head only learns the class "
              "frequencies (loss to chance)" % at,
        injected={"bias_shift_step": at, "param": "fc2.bias", "shift": -50.0})


@family(0.03, "cnn", "bar-images", "adam", "dead-relu-bias-shift")
def fam_cnn_dead_relu(clock):
    seed(6651)
    x, y = bar_images(6652, noise=0.6)
    model = BarCNN()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    at = 300

    def hook(step, m):
        if step == at:
            m.conv1.bias -= 30.0
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 420, sampler(x, y, 32, 6653), const(2e-3), hook=hook)
    return model, rec.records, fault(
        "dead", ["dead_layer"], ["no_gradient", "loss_spike", "divergence", "vanishing"],
        model="CNN conv 1-8 3x3, conv 8-16 3x3 stride 2, linear 256-4, ReLU", task="8x8 noisy bar images",
        optimizer="Adam lr 2e-3, batch 32",
        cause="at step %d a faulty edit subtracts 30 from conv1.bias: conv1's ReLUs never fire again, conv1 gets "
              "exactly zero gradient and conv2 sees only its bias" % at,
        injected={"bias_shift_step": at, "param": "conv1.bias", "shift": -30.0})


# ------------------------------------------------------------------ family scenarios: heldout, healthy

def tf_desc(m, vocab):
    return ("Transformer: %d block(s), d %d, %d heads, context %d, %d symbols; token embedding tied to the head, "
            "learned positions, parameter-free RMS norms, no QK-norm, no biases"
            % (len(m.blocks), m.tok.weight.shape[1], m.heads, m.pos.shape[0], vocab))


@family(0.06, "transformer", "markov-text", "adamw", "healthy-warmup-cosine")
def fam_tf_markov_warmup_cosine(clock):
    seed(7001)
    stream = markov_text(7002)
    model = TinyGPT(16, d=48, heads=4, layers=1, ctx=32)
    opt = torch.optim.AdamW(model.parameters(), lr=0.0, weight_decay=0.01)
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 500, text_sampler(stream, 16, 32, 7003), warmup_cosine(3e-3, 100, 500))
    return model, rec.records, healthy(
        model=tf_desc(model, 16), task="next symbol of a sparse second-order Markov chain",
        optimizer="AdamW wd 0.01, batch 16 x 32; lr warm-up to 3e-3 over 100 steps, cosine to 0 at 500",
        cause="none", injected={"warmup_steps": 100})


@family(0.04, "transformer", "char-text", "adamw", "healthy-batch2")
def fam_tf_char_batch2(clock):
    seed(7011)
    stream, vocab = char_text(7012)
    model = TinyGPT(vocab, d=48, heads=4, layers=1, ctx=32)
    opt = torch.optim.AdamW(model.parameters(), lr=0.0, weight_decay=0.01)
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 500, text_sampler(stream, 2, 32, 7013), warmup_cosine(2e-3, 50, 500, floor=2e-4))
    return model, rec.records, healthy(
        model=tf_desc(model, vocab), task="next character of toy-grammar text",
        optimizer="AdamW wd 0.01, batch 2 x 32; lr warm-up to 2e-3 over 50 steps, cosine to 2e-4",
        cause="none (hard negative: two sequences a step, noisy loss and grad norm)")


@family(0.06, "transformer", "markov-text", "adamw", "healthy-curriculum-switch")
def fam_tf_markov_curriculum(clock):
    seed(7021)
    easy = markov_order1(7022, n=30000, vocab=16, fanout=2)
    hard = markov_text(7023, n=40000, vocab=16, fanout=3)
    switch = 300
    de, dh = text_sampler(easy, 16, 32, 7024), text_sampler(hard, 16, 32, 7025)
    model = TinyGPT(16, d=48, heads=4, layers=1, ctx=32)
    opt = torch.optim.AdamW(model.parameters(), lr=0.0, weight_decay=0.01)
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 700, lambda s: de(s) if s < switch else dh(s), lambda s: 3e-3 * min(1.0, (s + 1) / 50))
    return model, rec.records, healthy(
        model=tf_desc(model, 16),
        task="next symbol: a first-order Markov chain (2 likely successors) until step %d, then a second-order "
             "chain (3 likely successors per pair)" % switch,
        optimizer="AdamW wd 0.01, batch 16 x 32; lr warm-up to 3e-3 over 50 steps, then constant",
        cause="none (hard negative: at the curriculum switch the loss jumps to the harder task's level and "
              "falls again)", injected={"curriculum_switch_step": switch})


@family(0.05, "transformer", "char-text", "adamw", "healthy-dropout-weight-decay")
def fam_tf_char_dropout_wd(clock):
    seed(7031)
    stream, vocab = char_text(7032)
    model = TinyGPT(vocab, d=48, heads=4, layers=1, ctx=32, dropout=0.1)
    opt = torch.optim.AdamW(model.parameters(), lr=0.0, weight_decay=0.1)
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 500, text_sampler(stream, 16, 32, 7033), warmup_cosine(3e-3, 50, 500))
    return model, rec.records, healthy(
        model=tf_desc(model, vocab) + "; dropout 0.1 on attention and residual branches",
        task="next character of toy-grammar text",
        optimizer="AdamW wd 0.1, batch 16 x 32; lr warm-up to 3e-3 over 50 steps, cosine to 0 at 500",
        cause="none")


TF_BAD2 = [380, 381]


@family(0.06, "transformer", "char-text", "adamw", "healthy-two-bad-batches")
def fam_tf_two_bad_batches(clock):
    seed(7041)
    stream, vocab = char_text(7042)
    model = TinyGPT(vocab, d=48, heads=4, layers=1, ctx=32)
    opt = torch.optim.AdamW(model.parameters(), lr=0.0, weight_decay=0.01)
    base = text_sampler(stream, 16, 32, 7043)
    g = torch.Generator().manual_seed(7044)

    def draw(step):
        xb, yb = base(step)
        if step in TF_BAD2:                 # a shard of another tokenisation: one symbol repeated
            junk = torch.randint(0, vocab, (xb.shape[0], 1), generator=g).expand(-1, xb.shape[1] + 1)
            xb, yb = junk[:, :-1].clone(), junk[:, 1:].clone()
        return xb, yb
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 500, draw, warmup_cosine(3e-3, 50, 500, floor=3e-4))
    return model, rec.records, dict(
        category="healthy", expected_alerts=[], acceptable_alerts=["loss_spike", "grad_spike"],
        model=tf_desc(model, vocab), task="next character of toy-grammar text",
        optimizer="AdamW wd 0.01, batch 16 x 32; lr warm-up to 3e-3 over 50 steps, cosine to 3e-4 at 600",
        cause="two back-to-back batches (steps %s) of junk (each sequence one character repeated, from a shard "
              "of another tokenisation) give a loss spike; the loss is back to normal within a few steps: "
              "not divergence" % TF_BAD2,
        injected={"corrupted_batch_steps": TF_BAD2}, spike_steps=TF_BAD2)


@family(0.05, "transformer", "char-text", "adamw", "healthy-high-lr-with-qk-norm")
def fam_tf_char_qknorm_high_lr(clock):
    seed(7101)
    stream, vocab = char_text(7102)
    model = TinyGPT(vocab, d=48, heads=4, layers=1, ctx=32, qk_norm=True)
    opt = torch.optim.AdamW(model.parameters(), lr=0.0, weight_decay=0.0)
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 500, text_sampler(stream, 16, 32, 7103), lambda s: 8e-2 * min(1.0, (s + 1) / 400))
    return model, rec.records, healthy(
        model=tf_desc(model, vocab).replace("no QK-norm", "QK-norm (RMS-normalised queries and keys)"),
        task="next character of toy-grammar text",
        optimizer="AdamW (no weight decay), batch 16 x 32; lr linear warm-up to 8e-2 over 400 steps, then constant",
        cause="none (the control of fam_tf_char_attn_logit_growth: the same data, seeds and high lr, but "
              "with QK-norm the attention logits stay bounded and training is stable)")


@family(0.02, "lstm", "symbol-count-sequences", "adam", "healthy-batch1")
def fam_lstm_count_batch1(clock):
    seed(7201)
    x, y = count_sequences(7202, n=6000, length=12, vocab=6, k=3)
    model = LSTMLM(6, 8, 32, 3, seq=False)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 500, sampler(x, y, 1, 7203), const(2e-3))
    return model, rec.records, healthy(
        model="LSTM classifier: embedding 8, LSTM hidden 32 (no biases), head on the last state (no bias)",
        task="which of symbols 0-2 occurs most often in a sequence of 12 symbols from 6",
        optimizer="Adam lr 2e-3, batch 1",
        cause="none (hard negative: one sequence a step; the loss of single steps runs from 0.02 to 3)")


@family(0.03, "lstm", "symbol-count-sequences-30pct-label-noise", "adam", "healthy-label-noise")
def fam_lstm_count_label_noise(clock):
    seed(7211)
    x, y = count_sequences(7212, n=6000, length=12, vocab=6, k=3)
    y = flip_labels(y, 0.3, 3, 7213)
    model = LSTMLM(6, 8, 32, 3, seq=False)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 450, sampler(x, y, 32, 7214), const(3e-3))
    return model, rec.records, healthy(
        model="LSTM classifier: embedding 8, LSTM hidden 32 (no biases), head on the last state (no bias)",
        task="which of symbols 0-2 occurs most often in 12 symbols; 30% of the labels replaced by random ones",
        optimizer="Adam lr 3e-3, batch 32",
        cause="none (hard negative: a high, noisy loss floor)")


@family(0.05, "lstm", "markov-text", "sgd-momentum", "healthy-triangular-lr")
def fam_lstm_markov_triangular(clock):
    seed(7221)
    stream = markov_text(7222)
    model = LSTMLM(16, 16, 32, 16)
    opt = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 400, text_sampler(stream, 16, 24, 7223), triangular(0.02, 1.0, 100))
    return model, rec.records, healthy(
        model="LSTM language model: embedding 16, LSTM hidden 32 (no biases), head to 16 symbols (no bias)",
        task="next symbol of a sparse second-order Markov chain",
        optimizer="SGD momentum 0.9, batch 16 x 24; triangular cyclic lr 0.02 -> 1.0 -> 0.02 every 200 steps",
        cause="none (hard negative: the lr rises 50x twice)", injected={"lr_cycle_steps": 200})


@family(0.03, "lstm", "adding-task-student-t", "adam", "healthy-heavy-tailed")
def fam_lstm_adding_heavy_tailed(clock):
    seed(7231)
    x, y = adding_task(7232, n=6000, length=16, heavy_df=2)
    model = LSTMReg(2, 32, 1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    rec = FRec(model, opt, mse, clock)
    rec.run(0, 450, sampler(x, y, 16, 7233), const(3e-3))
    return model, rec.records, healthy(
        model="LSTM regressor: inputs (value, marker), LSTM hidden 32 (no biases), linear head on the last state",
        task="adding problem over 16 steps with Student-t (df 2) values: heavy-tailed inputs and targets",
        optimizer="Adam lr 3e-3, batch 16, MSE",
        cause="none (hard negative: batches holding an extreme value give single steps of many times the usual "
              "loss and grad norm)")


def rescnn_desc(dropout=0.0):
    return ("residual CNN: stem conv 1-12, two residual blocks of two 3x3 convs (12 channels, 2x2 average pool "
            "between them), global average pool, %slinear head; biases only in b2.c1 and the head"
            % ("dropout %.1f, " % dropout if dropout else ""))


@family(0.03, "rescnn", "gratings", "sgd-momentum", "healthy-batch8")
def fam_rescnn_batch8(clock):
    seed(7301)
    x, y = grating_images(7302)
    model = ResCNN()
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 400, sampler(x, y, 8, 7303), const(0.02))
    return model, rec.records, healthy(
        model=rescnn_desc(), task="12x12 sinusoidal gratings, class = orientation (4), pixel noise 0.8",
        optimizer="SGD momentum 0.9, lr 0.02, batch 8", cause="none (hard negative: small batches)")


@family(0.04, "rescnn", "gratings", "sgd-momentum", "healthy-warm-restarts")
def fam_rescnn_warm_restarts(clock):
    seed(7311)
    x, y = grating_images(7312)
    model = ResCNN()
    opt = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 400, sampler(x, y, 32, 7313), cosine_restarts(0.05, 130, 1e-4))
    return model, rec.records, healthy(
        model=rescnn_desc(), task="12x12 sinusoidal gratings, class = orientation (4), pixel noise 0.8",
        optimizer="SGD momentum 0.9, batch 32; SGDR cosine 0.05 -> 1e-4 restarting every 130 steps",
        cause="none (hard negative: the lr jumps 500x at each restart)", injected={"restart_steps": [130, 260, 390]})


# ------------------------------------------------------------------ family scenarios: heldout, faults

@family(0.04, "rescnn", "gratings", "sgd-momentum", "bad-init")
def fam_rescnn_bad_init(clock):
    seed(7401)
    x, y = grating_images(7402, regress=True)
    model = ResCNN(classes=1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan = m.weight[0].numel()
                m.weight.normal_(0, RESCNN_INIT * math.sqrt(2.0 / fan))
    opt = torch.optim.SGD(model.parameters(), lr=RESCNN_INIT_LR, momentum=0.9)
    rec = FRec(model, opt, mse, clock)
    rec.run(0, 300, sampler(x, y, 32, 7403), const(RESCNN_INIT_LR))
    return model, rec.records, fault(
        "explode", ["grad_explosion", "nonfinite"], EXPLODE_ACCEPT,
        model=rescnn_desc().replace("linear head", "linear head to one output") +
        "; every conv N(0, (%g x He std)^2), the SkipInit scaling skipped" % RESCNN_INIT,
        task="12x12 sinusoidal gratings, regression of the spatial frequency",
        optimizer="SGD momentum 0.9, lr %g, batch 32, MSE" % RESCNN_INIT_LR,
        cause="conv weights %gx too large and the residual branches not scaled down: each block multiplies "
              "the signal, the loss starts at 170 (against about 0.5) and the first updates make the weights "
              "larger still; the grad norm grows several-fold a step until it overflows (unhealthy from "
              "step 0)" % RESCNN_INIT,
        injected={"init_gain_over_he": RESCNN_INIT})


@family(0.05, "lstm", "markov-text", "sgd", "lr-typo-x100")
def fam_lstm_lr_typo(clock):
    seed(7411)
    stream = markov_text(7412)
    model = LSTMLM(16, 16, 32, 16)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    resume = 250

    def lr(s):
        return 1.0 if s < resume else 100.0
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 600, text_sampler(stream, 16, 24, 7413), lr)
    return model, rec.records, fault(
        "divergence", ["divergence", "vanishing"], ["loss_spike", "grad_spike", "grad_explosion"],
        model="LSTM language model: embedding 16, LSTM hidden 32 (no biases), head to 16 symbols (no bias)",
        task="next symbol of a sparse second-order Markov chain",
        optimizer="plain SGD, batch 16 x 24; lr 1.0, and from step %d (a restarted job) 100 by a typo" % resume,
        cause="lr x100 from step %d: the first updates blow the head and the LSTM weights up, every gate "
              "saturates, the loss jumps from 2.4 to 30-40 and stays there, and the embedding and LSTM "
              "weights get gradients 1e-6 to 1e-5 of the head's from then on" % resume,
        injected={"typo_from_step": resume, "lr_meant": 1.0, "lr_used": 100.0},
        extra_labels={"vanishing_from_step": resume})


@family(0.04, "rescnn", "gratings", "sgd-momentum", "lr-typo-x100")
def fam_rescnn_lr_typo(clock):
    seed(7421)
    x, y = grating_images(7422)
    model = ResCNN()
    opt = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
    stage2 = 250

    def lr(s):
        return 0.02 if s < stage2 else 2.0
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 500, sampler(x, y, 32, 7423), lr)
    return model, rec.records, fault(
        "explode", ["grad_explosion", "nonfinite"], EXPLODE_ACCEPT,
        model=rescnn_desc(), task="12x12 sinusoidal gratings, class = orientation (4)",
        optimizer="SGD momentum 0.9, batch 32; lr 0.02, and from step %d (a second stage meant to keep 0.02) "
                  "2.0 by a typo" % stage2,
        cause="lr x100 from step %d" % stage2, injected={"typo_from_step": stage2, "lr_meant": 0.02, "lr_used": 2.0})


ATTN_ACCEPT = ["loss_spike", "grad_spike", "grad_explosion"]


def attn_run(clock, seed0, data, d, layers, peak, warm, steps):
    seed(seed0)
    if data == "char":
        stream, vocab = char_text(seed0 + 1)
    else:
        stream, vocab = markov_text(seed0 + 1), 16
    model = TinyGPT(vocab, d=d, heads=4, layers=layers, ctx=32)
    opt = torch.optim.AdamW(model.parameters(), lr=0.0, weight_decay=0.0)
    trace = []

    def hook(step, m):
        if step % 10 == 0 and step:
            trace.append([step - 1, sig7(m.logit_max)])
    rec = FRec(model, opt, xent, clock)
    rec.run(0, steps, text_sampler(stream, 16, 32, seed0 + 2), lambda s: peak * min(1.0, (s + 1) / warm), hook=hook)
    return model, rec.records, vocab, trace


@family(0.05, "transformer", "char-text", "adamw", "attention-logit-growth")
def fam_tf_char_attn_logit_growth(clock):
    model, recs, vocab, trace = attn_run(clock, 7101, "char", 48, 1, 8e-2, 400, 600)
    return model, recs, fault(
        "attention", ["divergence"], ATTN_ACCEPT,
        model=tf_desc(model, vocab), task="next character of toy-grammar text",
        optimizer="AdamW (no weight decay), batch 16 x 32; lr linear warm-up to 8e-2 over 400 steps, then constant",
        cause="lr too high for a Transformer without QK-norm: the model learns while the lr is small, then the "
              "largest attention logit grows from tens to thousands, so each attention row is all but one-hot, "
              "and the loss climbs back up and stays there (Wortsman et al. 2023)",
        evidence={"attention_logit_max": trace})


@family(0.06, "transformer", "markov-text", "adamw", "attention-logit-growth")
def fam_tf_markov_attn_logit_growth(clock):
    model, recs, vocab, trace = attn_run(clock, 7101, "markov", 48, 1, 8e-2, 800, 850)
    return model, recs, fault(
        "attention", ["divergence"], ATTN_ACCEPT,
        model=tf_desc(model, 16), task="next symbol of a sparse second-order Markov chain",
        optimizer="AdamW (no weight decay), batch 16 x 32; lr linear warm-up to 8e-2 over 800 steps",
        cause="a long warm-up to an lr too high without QK-norm: the model learns the chain while the lr is "
              "moderate, then the attention logits grow into the thousands and the loss jumps back up and "
              "stays above its low", evidence={"attention_logit_max": trace})


@family(0.06, "transformer", "markov-text", "adam", "one-layer-explosion-loss-scale-bug")
def fam_tf_pos_scale_bug(clock):
    seed(7501)
    stream = markov_text(7502)
    model = TinyGPT(16, d=48, heads=4, layers=1, ctx=32)
    bug = ScaleBug(model.pos, 1.0, SCALE_EVERY_TF)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    rec = FRec(model, opt, xent_sum, clock)
    rec.run(0, 2000, text_sampler(stream, 16, 32, 7503), const(2e-3), hook=bug.hook)
    return model, rec.records, fault(
        "one_layer_explosion", ["grad_explosion", "nonfinite"], EXPLODE_ACCEPT,
        model=tf_desc(model, 16) + "; the position table's gradient held in float16",
        task="next symbol of a sparse second-order Markov chain",
        optimizer="Adam lr 2e-3, batch 16 x 32, cross-entropy summed over tokens",
        cause="a loss-scaling bug: the learned position table is missing from the scaler's parameter group, so "
              "its gradient stays multiplied by the loss scale (1, doubling every %d steps) while the other "
              "tensors' are normal; Adam normalises most of it away, until the float16 gradient overflows and "
              "Adam writes NaN into the table" % SCALE_EVERY_TF,
        injected={"scale0": 1.0, "doubling_every": SCALE_EVERY_TF}, extra_labels={"exploding_param": "pos"})


@family(0.05, "lstm", "markov-text", "adam", "midrun-saturation")
def fam_lstm_gate_saturation(clock):
    seed(7601)
    stream = markov_text(7602)
    model = LSTMLM(16, 24, 24, 16, bias=True, skip=True)
    model.lstm.bias_hh_l0.requires_grad_(False)     # one bias vector is enough
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    at = 350
    H = 24

    def hook(step, m):
        if step == at:                  # a faulty re-initialisation of the gate biases (i, f, o; not g)
            m.lstm.bias_ih_l0[0:2 * H] -= 25.0
            m.lstm.bias_ih_l0[3 * H:4 * H] -= 25.0
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 500, text_sampler(stream, 16, 24, 7603), const(3e-3), hook=hook)
    return model, rec.records, fault(
        "vanishing", ["vanishing"], ["loss_spike", "divergence"],
        model="LSTM language model: embedding 24, LSTM hidden 24 (bias_ih only), head (no bias) on LSTM output "
              "plus the embedding (a bigram shortcut)",
        task="next symbol of a sparse second-order Markov chain", optimizer="Adam lr 3e-3, batch 16 x 24",
        cause="at step %d a faulty re-initialisation subtracts 25 from the input, forget and output gate biases: "
              "every gate sits at sigmoid(-25) ~ 1e-11, the LSTM's output is ~0 and its weights get gradients "
              "1e-18 of their size before or less (not exactly zero); the shortcut keeps a bigram model "
              "learning" % at,
        injected={"shift_step": at, "param": "lstm.bias_ih_l0 (i, f, o gates)", "shift": -25.0},
        extra_labels={"vanishing_from_step": at})


class AdapterGPT(TinyGPT):
    """TinyGPT with a bottleneck adapter after the block, whose output is
    .detach()ed (the bug)."""

    def __init__(self, vocab, **kw):
        super().__init__(vocab, **kw)
        d = self.tok.weight.shape[1]
        self.adapter = nn.Module()
        self.adapter.down = nn.Linear(d, 8, bias=False)
        self.adapter.up = nn.Linear(8, d, bias=False)

    def forward(self, idx):
        x = self.trunk(idx)
        x = x + self.adapter.up(F.gelu(self.adapter.down(self.norm(x)))).detach()
        return self.norm(x) @ self.tok.weight.t()


@family(0.05, "transformer", "char-text", "adamw", "detached-branch")
def fam_tf_detached_adapter(clock):
    seed(7701)
    stream, vocab = char_text(7702)
    model = AdapterGPT(vocab, d=48, heads=4, layers=1, ctx=32)
    opt = torch.optim.AdamW(model.parameters(), lr=0.0, weight_decay=0.01)
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 350, text_sampler(stream, 16, 32, 7703), warmup_cosine(3e-3, 50, 350, floor=3e-4))
    return model, rec.records, fault(
        "no_gradient", ["no_gradient"], [],
        model=tf_desc(model, vocab) + "; a bottleneck adapter (48-8-48, GELU) on the residual stream",
        task="next character of toy-grammar text",
        optimizer="AdamW wd 0.01, batch 16 x 32; lr warm-up to 3e-3 over 50 steps, cosine to 3e-4",
        cause="the adapter's output is added to the residual stream .detach()ed: adapter.down.weight and "
              "adapter.up.weight require grad but never get one (they stay at their init; the trunk trains)",
        injected={"detached_params": ["adapter.down.weight", "adapter.up.weight"]})


class AuxLSTM(LSTMLM):
    """LSTMLM classifier with an auxiliary head whose loss term was dropped
    (its output is computed and discarded)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.aux = nn.Linear(self.lstm.hidden_size, 2)

    def forward(self, idx):
        h, _ = self.lstm(self.embed(idx))
        self.aux_out = self.aux(h[:, -1])          # for a parity loss that is no longer added
        return self.head(h[:, -1])


@family(0.03, "lstm", "symbol-count-sequences", "adam", "unused-head")
def fam_lstm_unused_aux_head(clock):
    seed(7711)
    x, y = count_sequences(7712, n=6000, length=12, vocab=6, k=3)
    model = AuxLSTM(6, 8, 32, 3, seq=False)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 350, sampler(x, y, 32, 7713), const(3e-3))
    return model, rec.records, fault(
        "no_gradient", ["no_gradient"], [],
        model="LSTM classifier: embedding 8, LSTM hidden 32 (no biases), head on the last state; an auxiliary "
              "2-way head (aux) computed every step", task="which of symbols 0-2 occurs most often in 12 symbols",
        optimizer="Adam lr 3e-3, batch 32",
        cause="the auxiliary head's loss term was dropped from the total loss but the head is still computed and "
              "handed to the optimiser: aux.weight and aux.bias never get a gradient",
        injected={"detached_params": ["aux.weight", "aux.bias"]})


def log_softmax16_xent(model, batch):
    """Cross-entropy as log(softmax(z)) with the probabilities in float16 (an
    autocast region, emulated: rounded to float16): a probability under
    float16's smallest subnormal (~3e-8) becomes 0.0, its log -inf, and the
    backward of log divides 0 by 0: NaN, even where that entry is not the
    target."""
    x, y = batch
    out = model(x)
    logp = torch.log(torch.softmax(out, -1).to(torch.float16).to(torch.float32))
    return F.nll_loss(logp.reshape(-1, logp.shape[-1]), y.reshape(-1))


@family(0.05, "transformer", "char-text", "adamw", "log-zero-in-loss")
def fam_tf_log_softmax16_underflow(clock):
    seed(7801)
    stream, vocab = char_text(7802)
    model = TinyGPT(vocab, d=48, heads=4, layers=1, ctx=32)
    opt = torch.optim.AdamW(model.parameters(), lr=0.0, weight_decay=0.0)
    rec = FRec(model, opt, log_softmax16_xent, clock)
    rec.run(0, 1500, text_sampler(stream, 16, 32, 7803), lambda s: 1e-2 * min(1.0, (s + 1) / 50))
    return model, rec.records, fault(
        "nonfinite", ["nonfinite"], ["loss_spike", "grad_spike"],
        model=tf_desc(model, vocab), task="next character of toy-grammar text",
        optimizer="AdamW (no weight decay), batch 16 x 32; lr warm-up to 1e-2 over 50 steps",
        cause="the loss is written log(softmax(z)) inside a float16 region instead of log_softmax: as the model "
              "learns, the logit of a character impossible in its context falls ever further below the top one; "
              "once its probability rounds to 0.0 in float16 (a gap of about 17) its log is -inf and the "
              "backward pass of log gives NaN gradients (the loss of that step can still be finite)")


def count_binary(seed0, n=6000, length=12, flip=0.02):
    """Binary: does symbol 0 occur more often than symbol 1? (ties: no);
    a share `flip` of the labels flipped."""
    g = torch.Generator().manual_seed(seed0)
    x = torch.randint(0, 6, (n, length), generator=g)
    y = ((x == 0).sum(1) > (x == 1).sum(1)).float()
    m = torch.rand(n, generator=g) < flip
    y[m] = 1 - y[m]
    return x, y


def manual_bce16(model, batch):
    """manual_bce with sigmoid's output in float16 (emulated): it rounds to
    exactly 1.0 past z ~ 8.3."""
    x, y = batch
    p = torch.sigmoid(model(x)[:, 0]).to(torch.float16).to(torch.float32)
    return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()


@family(0.03, "lstm", "symbol-count-binary-2pct-label-noise", "adam", "log-zero-in-loss")
def fam_lstm_bce_log0(clock):
    seed(7811)
    x, y = count_binary(7812)
    model = LSTMLM(6, 8, 32, 1, seq=False)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    rec = FRec(model, opt, manual_bce16, clock)
    rec.run(0, 2000, sampler(x, y, 32, 7813), const(1e-2))
    return model, rec.records, fault(
        "nonfinite", ["nonfinite"], ["loss_spike", "grad_spike"],
        model="LSTM classifier: embedding 8, LSTM hidden 32 (no biases), one logit on the last state",
        task="does symbol 0 occur more often than symbol 1 in 12 symbols from 6; 2% of the labels flipped",
        optimizer="Adam lr 1e-2, batch 32",
        cause="a hand-written binary cross-entropy, log(sigmoid(z)) and log(1 - sigmoid(z)), with sigmoid "
              "computed in float16 (emulated): the logits grow until sigmoid(z) rounds to exactly 1.0 (z > ~8.3) "
              "on a sample whose label was flipped; log(0) = -inf, an infinite loss and NaN gradients")


@family(0.03, "lstm", "adding-task", "adam", "bad-batches-unnormalised")
def fam_lstm_adding_unnormalised_batches(clock):
    seed(7901)
    x, y = adding_task(7902, n=6000, length=16)
    model = LSTMReg(2, 32, 1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    base = sampler(x, y, 32, 7903)
    bad = [250, 400]

    def draw(step):
        xb, yb = base(step)
        if step in bad:                 # raw sensor units: values x 25 + 40, targets with them
            xb = xb.clone()
            xb[:, :, 0] = xb[:, :, 0] * 25.0 + 40.0
            yb = (xb[:, :, 0] * xb[:, :, 1]).sum(1, keepdim=True)
        return xb, yb
    rec = FRec(model, opt, mse, clock)
    rec.run(0, 450, draw, const(3e-3))
    return model, rec.records, fault(
        "spike", ["loss_spike"], ["grad_spike"],
        model="LSTM regressor: inputs (value, marker), LSTM hidden 32 (no biases), linear head on the last state",
        task="adding problem over 16 steps (values uniform in [0, 1])", optimizer="Adam lr 3e-3, batch 32, MSE",
        cause="the batches of steps %s come from a shard in raw units (values x 25 + 40)" % bad,
        injected={"corrupted_batch_steps": bad}, spike_steps=bad)


@family(0.06, "transformer", "markov-text", "adamw", "clip-threshold-too-low")
def fam_tf_clip_too_low(clock):
    seed(7911)
    stream = markov_text(7912)
    model = TinyGPT(16, d=48, heads=4, layers=1, ctx=32)
    opt = torch.optim.AdamW(model.parameters(), lr=0.0, weight_decay=0.01)
    rec = FRec(model, opt, xent, clock, max_norm=1e-3)
    rec.run(0, 350, text_sampler(stream, 16, 32, 7913), warmup_cosine(3e-3, 50, 350, floor=3e-4))
    return model, rec.records, fault(
        "clip", ["clip_saturation"], ["clip_surge"],
        model=tf_desc(model, 16), task="next symbol of a sparse second-order Markov chain",
        optimizer="AdamW wd 0.01, batch 16 x 32, lr warm-up to 3e-3, cosine; clip_grad_norm_ max_norm 1e-3",
        cause="max_norm 1e-3 (meant 1.0): every step is clipped by a factor of hundreds or more")


@family(0.05, "lstm", "markov-text", "sgd-momentum", "clip-threshold-too-low")
def fam_lstm_clip_too_low(clock):
    seed(7921)
    stream = markov_text(7922)
    model = LSTMLM(16, 16, 32, 16)
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    rec = FRec(model, opt, xent, clock, max_norm=0.005)
    rec.run(0, 400, text_sampler(stream, 16, 24, 7923), const(0.5))
    return model, rec.records, fault(
        "clip", ["clip_saturation"], ["clip_surge"],
        model="LSTM language model: embedding 16, LSTM hidden 32 (no biases), head to 16 symbols (no bias)",
        task="next symbol of a sparse second-order Markov chain",
        optimizer="SGD momentum 0.9, lr 0.5, batch 16 x 24, clip_grad_norm_ max_norm 0.005",
        cause="max_norm 0.005, far below the typical pre-clip norm: every step is clipped and the loss crawls")


@family(0.04, "rescnn", "gratings", "sgd-momentum", "dead-relu-bias-shift")
def fam_rescnn_dead_relu(clock):
    seed(7931)
    x, y = grating_images(7932)
    model = ResCNN()
    opt = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9)
    at = 300

    def hook(step, m):
        if step == at:
            m.b2.c1.bias -= 200.0
    rec = FRec(model, opt, xent, clock)
    rec.run(0, 400, sampler(x, y, 32, 7933), const(0.03), hook=hook)
    return model, rec.records, fault(
        "dead", ["dead_layer"], ["no_gradient", "loss_spike", "divergence", "vanishing"],
        model=rescnn_desc(), task="12x12 sinusoidal gratings, class = orientation (4)",
        optimizer="SGD momentum 0.9, lr 0.03, batch 32",
        cause="at step %d a faulty edit subtracts 200 from b2.c1.bias: the block's inner ReLUs never fire again, "
              "so b2.c1 and b2.c2 get exactly zero gradient; the skip path keeps the rest learning" % at,
        injected={"bias_shift_step": at, "param": "b2.c1.bias", "shift": -200.0})
# ------------------------------------------------------------------ family checks

def _loss_median(recs, lo, hi):
    xs = [r["loss"] for r in recs if lo <= r["step"] < hi and ok_num(r["loss"]) and not r.get("skipped")]
    return med(xs)


def family_checks(name, entry, recs):
    """The claims a family scenario makes about itself, as (ok, text)."""
    recs = effective(recs)
    lab, st, inj = entry["labels"], entry["stats"], entry["injected"]
    cat = entry["category"]
    n = len(recs)
    last = recs[-1]["step"]
    out = []

    def want(cond, text):
        out.append((bool(cond), text))
    if cat == "healthy":
        want(lab["first_nonfinite_step"] is None, "no non-finite step")
        want(lab["onset_step"] is None, "no explosion onset")
        want(not lab["vanishing_params"], "no vanishing tensor")
        want(not lab["dead_params"], "no dead tensor")
        want(not lab["no_gradient_params"], "every tensor gets a gradient")
        k = max(10, min(50, n // 10))
        if "curriculum_switch_step" in inj:
            sw = inj["curriculum_switch_step"]
            a, b = _loss_median(recs, 0, 10), _loss_median(recs, sw - k, sw)
            c, d = _loss_median(recs, sw, sw + k), _loss_median(recs, last + 1 - k, last + 1)
            want(b < 0.8 * a, "the loss falls before the switch (median %.4g -> %.4g)" % (a, b))
            want(c > 1.1 * b, "the loss jumps at the switch (median %.4g -> %.4g)" % (b, c))
            want(d < 0.8 * c, "and falls again (median %.4g -> %.4g)" % (c, d))
        else:
            a, b = _loss_median(recs, 0, k), _loss_median(recs, last + 1 - k, last + 1)
            c, d = st["loss_first_mean"], st["loss_last_mean"]
            want(b < 0.8 * a or d < 0.8 * c, "the loss falls (first and last %d steps: median %.4g -> %.4g, "
                 "mean %.4g -> %.4g)" % (k, a, b, c, d))
        if lab["clip_rate"] is not None:
            want(0 < lab["clip_rate"] < 0.25, "clips sometimes, not mostly (rate %s)" % lab["clip_rate"])
        for s in st.get("spikes", []):
            want(s["loss_ratio"] > 2 and (s["recovery_steps"] or 999) <= 30,
                 "bad batch at %d: loss %.1fx, back under 1.5x in %s steps" % (s["step"], s["loss_ratio"],
                                                                              s["recovery_steps"]))
        if lab["spike_steps"]:
            s0 = lab["spike_steps"][-1]
            pre = _loss_median(recs, s0 - 50, lab["spike_steps"][0])
            post = _loss_median(recs, s0 + 30, s0 + 80)
            want(post <= RECOVERED_X * pre, "no divergence: loss median of steps +30..+80 %.4g vs %.4g before"
                 % (post, pre))
    if cat in ("explode", "one_layer_explosion"):
        fnf, on = lab["first_nonfinite_step"], lab["onset_step"]
        want(fnf is not None, "goes non-finite (%s)" % fnf)
        if cat == "explode" and "init_gain_over_he" not in inj:
            want(on is not None and fnf is not None and fnf - on >= 3,
                 "sustained growth from %s before it" % on)
        if "typo_from_step" in inj and on is not None:
            want(on >= inj["typo_from_step"], "the growth starts after the typo (%s >= %s)"
                 % (on, inj["typo_from_step"]))
        if "init_gain_over_he" in inj:
            want(fnf is not None and 5 <= fnf <= 25, "overflows 5-25 steps after the start (%s)" % fnf)
            if fnf:
                g = [r["grad_norm"] for r in recs if r["step"] < fnf]
                want(len(g) >= 3 and g[-1] > 1e3 * g[0] and g[0] > 100 * 1.0,
                     "unhealthy from step 0 (grad norm %.3g) and growing (%.3g at step %d)" % (g[0], g[-1], fnf - 1))
    if cat == "one_layer_explosion":
        p = lab["exploding_param"]
        every = inj["doubling_every"]
        fnf = lab["first_nonfinite_step"] or last + 1

        def gmed(name, lo, hi):
            return med([r["layers"][name] for r in recs if lo <= r["step"] < min(hi, fnf)
                        and name in r["layers"] and ok_num(r["layers"][name])])
        base = gmed(p, 0, 20)
        for k, x in ((3.3, 5), (6.6, 50), (10.0, 500)):
            at = int(k * every)
            if at + 10 > fnf:
                continue
            q = gmed(p, at - 10, at + 10) / base
            want(q >= x, "%s's grad norm at step ~%d is %.3gx its start (want >= %g)" % (p, at, q, x))
        for n in recs[0]["weights"]:
            if n == p or n in lab["no_gradient_params"]:
                continue
            a, b = gmed(n, 50, 150), gmed(n, fnf - 100, fnf)
            want(b < 10 * a, "%s stays normal (median %.3g -> %.3g)" % (n, a, b))
        bad = [r for r in recs if r["step"] == lab["first_nonfinite_step"]]
        if bad:
            nf = sorted(n for n, v in bad[0]["layers"].items() if not ok_num(v))
            want(nf == [p] and ok_num(bad[0]["loss"]), "the first non-finite gradient is %s's alone, the loss "
                 "finite (%s)" % (p, nf))
        share = med([r["layers"][p] / r["grad_norm"] for r in recs if r["step"] < 100 and ok_num(r["grad_norm"])])
        want(share < 0.5, "hidden at first: %s is %.2g of the global norm over steps 0-99" % (p, share))
    if cat in ("divergence", "attention"):
        want(lab["first_nonfinite_step"] is None, "stays finite")
        meds = [(r["step"], _loss_median(recs, r["step"] - 25, r["step"] + 25)) for r in recs[25:-25:10]]
        lo_step, lo = min(meds, key=lambda t: t[1])
        end = _loss_median(recs, last - 49, last + 1)
        want(end > 1.3 * lo, "the loss climbs from its low (50-step median %.4g at step %d) to %.4g at the end"
             % (lo, lo_step, end))
        if "typo_from_step" in inj:
            t = inj["typo_from_step"]
            before = _loss_median(recs, t - 50, t)
            want(end > 1.3 * before, "and ends above its level before the typo (%.4g -> %.4g)" % (before, end))
    if cat == "attention":
        tr = entry.get("evidence", {}).get("attention_logit_max", [])
        early = max(v for s, v in tr if s < 100)
        late = max(v for s, v in tr if s >= last - 100)
        want(late > 20 * early, "the largest attention logit grows from %.3g (steps < 100) to %.3g" % (early, late))
    if cat == "vanishing":
        v = lab["vanishing_params_from_step"]
        at = lab["vanishing_from_step"]
        want(len(v) >= 2, "%d tensors vanish from step %d (%s)" % (len(v), at, v))
        for n in v:
            a = med([r["layers"][n] for r in recs if at - 100 <= r["step"] < at and n in r["layers"]])
            b = med([r["layers"][n] for r in recs if r["step"] >= at and n in r["layers"]])
            want(b < 1e-4 * a and b > 0, "%s: median grad norm %.3g before, %.3g after" % (n, a, b))
        want(not lab["dead_params"] and lab["first_nonfinite_step"] is None, "nothing else wrong")
    if cat == "no_gradient":
        want(lab["no_gradient_params"] == inj["detached_params"], "never-active tensors %s"
             % lab["no_gradient_params"])
        k = max(10, min(50, n // 10))
        a, b = _loss_median(recs, 0, k), _loss_median(recs, last + 1 - k, last + 1)
        want(b < 0.8 * a, "the rest trains (loss median %.4g -> %.4g)" % (a, b))
        want(lab["first_nonfinite_step"] is None and not lab["dead_params"], "nothing else wrong")
    if cat == "nonfinite":
        fnf = lab["first_nonfinite_step"]
        want(fnf is not None, "goes non-finite (%s)" % fnf)
        want(lab["onset_step"] is None, "without a growing grad norm before it")
        if fnf is not None:
            a, b = _loss_median(recs, 0, 20), _loss_median(recs, fnf - 50, fnf)
            want(b < 0.8 * a, "trains normally until then (loss median %.4g -> %.4g)" % (a, b))
    if cat == "spike":
        for s in st["spikes"]:
            want(s["loss_ratio"] > SPIKE_X and (s["recovery_steps"] or 99) <= 20,
                 "spike at %d: loss %.1fx, back in %s steps" % (s["step"], s["loss_ratio"], s["recovery_steps"]))
        want(not st["loss_steps_above_5x_trailing_median"], "no other loss spike above 5x")
        want(lab["first_nonfinite_step"] is None and lab["onset_step"] is None, "no NaN, no explosion")
        want(not lab["dead_params"], "nothing dies")
    if cat == "clip":
        want(lab["clip_rate"] is not None and lab["clip_rate"] >= 0.99, "clips every step (%s)" % lab["clip_rate"])
        want(lab["first_nonfinite_step"] is None, "stays finite")
    if cat == "dead":
        want(lab["dead_from_step"] == inj["bias_shift_step"], "dead from the shift step (%s)" % lab["dead_from_step"])
        want(inj["param"] in lab["dead_params"], "%s among the dead %s" % (inj["param"], lab["dead_params"]))
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

SETS = collections.OrderedDict([
    ("heldout", dict(registry=SCENARIOS, out=OUT, clock=CLOCK_BASE, checks=checks)),
    ("families", dict(registry=FAMILIES, out=OUT_FAMILIES, clock=CLOCK_FAMILIES, checks=family_checks)),
])


def record(setname, name, index, out):
    fn = SETS[setname]["registry"][name]
    torch.set_num_threads(1)
    start = SETS[setname]["clock"] + 3600.0 * index
    model, recs, entry = fn(lambda s: start + s * fn.seconds)
    path = os.path.join(out, name + ".jsonl")
    save(path, recs)
    return entry, top_param(model)


def _record_job(job):
    """A worker's share of --jobs: record one scenario, time it."""
    import time
    t0 = time.time()
    entry, top = record(*job)
    return job[1], entry, top, time.time() - t0


def label(setname, name, entry, top, out):
    recs = load(os.path.join(out, name + ".jsonl"))
    spike_steps = entry.pop("spike_steps", [])
    labels, stats = derive(recs, top, spike_steps)
    steps = sorted({r["step"] for r in recs})
    fn = SETS[setname]["registry"][name]
    full = collections.OrderedDict()
    full["file"] = name + ".jsonl"
    if setname == "families":
        full["family"] = fn.family
        full["split"] = fn.split
        labels.update(family_labels(recs, entry.pop("extra_labels", {}), top))
        evidence = entry.pop("evidence", None)
    full["category"] = entry.pop("category")
    for k in ("model", "task", "optimizer", "cause"):
        full[k] = entry.pop(k)
    full["steps"] = len(steps)
    full["lines"] = len(recs)
    full["tensors"] = len(recs[0]["weights"])
    full["step_seconds"] = fn.seconds
    full["top_param"] = top
    full["injected"] = entry.pop("injected", {})
    full["labels"] = labels
    full["expected_alerts"] = entry.pop("expected_alerts")
    full["acceptable_alerts"] = entry.pop("acceptable_alerts")
    full["stats"] = stats
    if setname == "families" and evidence:
        full["evidence"] = evidence
    res = SETS[setname]["checks"](name, full, recs)
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
    if lab.get("no_gradient_params"):
        bits.append("no gradient %s" % lab["no_gradient_params"])
    return "%-34s %s" % (name, "; ".join(bits))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", choices=list(SETS), default="heldout",
                    help="which set of scenarios (default heldout: tests/data/traces_heldout)")
    ap.add_argument("--only", nargs="+", metavar="NAME")
    ap.add_argument("--check", action="store_true", help="re-derive labels from the files and compare")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--out", metavar="DIR", help="write the files here instead of the set's folder")
    ap.add_argument("--jobs", type=int, default=1, help="record this many scenarios at once (one thread each)")
    args = ap.parse_args()
    cfg = SETS[args.set]
    reg = cfg["registry"]
    out = os.path.abspath(args.out) if args.out else cfg["out"]
    names = list(reg)
    if args.list:
        for n in names:
            print(n if args.set == "heldout" else "%-44s %-8s %s" % (n, reg[n].split, reg[n].family))
        return 0
    os.makedirs(out, exist_ok=True)
    lpath = os.path.join(out, "labels.json")
    old = json.load(open(lpath)) if os.path.exists(lpath) else {"scenarios": {}}
    todo = args.only or names
    for n in todo:
        if n not in reg:
            sys.exit("unknown scenario %s" % n)
    failed = 0
    scen = dict(old.get("scenarios", {}))
    if args.check:
        for n in todo:
            e = old["scenarios"][n]
            labels, _ = derive(load(os.path.join(out, e["file"])), e["top_param"], e["labels"]["spike_steps"])
            if args.set == "families":
                labels.update(family_labels(load(os.path.join(out, e["file"])),
                                            {k: e["labels"][k] for k in FAMILY_EXTRA_LABELS if k in e["labels"]},
                                            e["top_param"]))
            same = labels == e["labels"]
            print("%-34s labels %s" % (n, "match" if same else "DIFFER"))
            failed += not same
        print("%d failed checks" % failed)
        return 1 if failed else 0
    jobs = [(args.set, n, names.index(n), out) for n in todo]
    if args.jobs > 1:
        import multiprocessing
        pool = multiprocessing.get_context("fork").Pool(args.jobs, maxtasksperchild=1)
        results = pool.imap_unordered(_record_job, jobs)
    else:
        pool = None
        results = map(_record_job, jobs)
    for n, entry, top, secs in results:
        full, res = label(args.set, n, entry, top, out)
        scen[n] = full
        print(summary(n, full) + ("  [%.0f s]" % secs if args.set == "families" else ""), flush=True)
        for ok, t in res:
            print("    %s %s" % ("ok  " if ok else "FAIL", t))
        failed += sum(not ok for ok, _ in res)
    if pool is not None:
        pool.close()
        pool.join()
    doc = collections.OrderedDict()
    doc["format"] = ("one JSON object per line and optimiser step, in the step shape of gradwatch's "
                     "ingest API; a resumed run re-sends steps (later lines replace earlier ones)")
    if args.set == "families":
        doc["format"] += ("; family traces add per-tensor \"updates\" and, for Adam and AdamW, \"adam_ratio\" "
                          "(tests/data/traces_families/README.md)")
        doc["definitions"] = dict(DEFINITIONS, **FAMILY_DEFINITIONS)
    else:
        doc["definitions"] = DEFINITIONS
    doc["generator"] = "tests/eval/record_traces.py, torch %s, CPU, one thread" % torch.__version__
    if args.set == "families":
        doc["generator"] += " (--set families)"
        doc["splits"] = FAMILY_SPLITS
    else:
        doc["held_out"] = "never used to choose or tune a detector threshold"
    doc["scenarios"] = collections.OrderedDict((n, scen[n]) for n in names if n in scen)
    with open(lpath, "w") as f:
        json.dump(to_json(doc), f, indent=1, allow_nan=False)
        f.write("\n")
    print("%d failed checks" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
