#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""What gradwatch costs a PyTorch training loop: on the CPU (the default),
or on a GPU with --device cuda (see gpu_main below).

1. watch() on a 100-tensor model (50 Linear(128, 128) layers with ReLU,
   weights and biases; batch 64, SGD with momentum): the same model and
   data, watched and unwatched, trained step by step in alternation in
   the same process, the watched one sending to a real gradwatchd
   started here on a scratch database.  Each round gives the median step
   time of each; the overhead is the median over rounds of (watched /
   unwatched - 1).  The watcher's own time per step (its hook, measured
   inside) is printed beside it, as it is far less noisy.
2. The cost of one Python logging call: run.log_loss(), run.log() with
   three scalars, and run.log() with 100 named layers.

Prints every figure, then RESULT lines for scripts.  Goal: overhead under
3% of the step.  Environment: BENCH_ROUNDS (7), BENCH_STEPS (20 a block),
BENCH_STRICT (1: exit 1 when the goal is missed), GW_BUILD.

With --device cuda: a 12-layer GPT (GPT-2 small's shape, 148 tensors,
bf16 autocast, fused AdamW, clip_grad_norm_ 1.0, batch 8 x 1024 tokens)
trained in blocks of BENCH_STEPS steps, each block timed between two
device synchronisations, rotating through the variants round by round:
unwatched; watch() (its default: the one copy non-blocking, read a step
later); watch(on_critical="raise") (the copy synchronous, as the guard
must be); and two loggers of the same norms for comparison, a common
TensorBoard one (add_scalar of each tensor's p.grad.norm().item()) and a
careful one (the norms stacked, one .tolist(), add_scalars).  Each
variant trains its own copy of the model on the same batches.  The
overhead of a variant is the median over rounds of its block time over
the unwatched block's of the same round, minus 1.  Goal: watch() under
1% of a step.
"""
import copy
import math
import os
import statistics
import sys
import time
import timeit

TOP = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "lib"))
sys.path.insert(0, os.path.join(TOP, "client_lib", "python"))
from gwtest import BUILD, Daemon  # noqa: E402

if not os.environ.get("GRADWATCH_LIB"):
    lib = os.path.join(BUILD, "libgradwatch.so.0")
    if "/san-" in BUILD:
        lib = os.path.join(TOP, "build", "libgradwatch.so.0")
    os.environ["GRADWATCH_LIB"] = lib
try:
    import torch
except ImportError:
    print("torch_overhead: %s has no torch (python3-torch); skipped" % sys.executable)
    sys.exit(0)
import gradwatch  # noqa: E402
import gradwatch.torch  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
STEPS = int(os.environ.get("BENCH_STEPS", "20"))
LAYERS, WIDTH, BATCH = 50, 128, 64
GOAL = 3.0


def make_model():
    mods = []
    for _ in range(LAYERS):
        mods += [torch.nn.Linear(WIDTH, WIDTH), torch.nn.ReLU()]
    return torch.nn.Sequential(*mods[:-1])


def one_step(model, opt, x, y, w=None):
    """One training step; its time in seconds."""
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    if w is not None:
        w.loss(loss)
    opt.step()
    return time.perf_counter() - t0


def round_of_steps(plain, opt_p, watched, opt_w, w, batches, watched_first):
    """Steps of the two models, alternating one by one (so that both see
    the same machine load); the step times of each."""
    tp, tw = [], []
    for x, y in batches:
        if watched_first:
            tw.append(one_step(watched, opt_w, x, y, w))
            tp.append(one_step(plain, opt_p, x, y))
        else:
            tp.append(one_step(plain, opt_p, x, y))
            tw.append(one_step(watched, opt_w, x, y, w))
    return tp, tw


def main():
    torch.manual_seed(0)
    print("== torch_overhead: torch %s on %d thread(s), %d cores; %d rounds of %d steps of each model"
          % (torch.__version__, torch.get_num_threads(), os.cpu_count(), ROUNDS, STEPS))
    plain = make_model()
    watched = copy.deepcopy(plain)
    ntensors = sum(1 for _ in watched.parameters())
    opt_p = torch.optim.SGD(plain.parameters(), lr=1e-3, momentum=0.9)
    opt_w = torch.optim.SGD(watched.parameters(), lr=1e-3, momentum=0.9)
    batches = [(torch.randn(BATCH, WIDTH), torch.randn(BATCH, WIDTH)) for _ in range(STEPS)]
    results = []
    with Daemon() as d:
        run = gradwatch.Run(project="bench", name="torch-overhead", url=d.url)
        w = gradwatch.torch.watch(watched, run, opt_w)
        hook = []
        inner = w._before_step

        def timed_hook():
            t0 = time.perf_counter()
            inner()
            hook.append(time.perf_counter() - t0)
        w._before_step = timed_hook
        round_of_steps(plain, opt_p, watched, opt_w, w, batches[:3], False)     # warm up
        hook.clear()
        ratios, meds_p, meds_w = [], [], []
        for r in range(ROUNDS):
            tp, tw = round_of_steps(plain, opt_p, watched, opt_w, w, batches, r % 2 == 1)
            mp, mw = statistics.median(tp), statistics.median(tw)
            meds_p.append(mp)
            meds_w.append(mw)
            ratios.append(mw / mp - 1)
            print("  round %d: unwatched %.2f ms, watched %.2f ms a step: %+.2f%%"
                  % (r + 1, mp * 1e3, mw * 1e3, ratios[-1] * 100))
        ok = run.flush(10.0)
        step_ms = statistics.median(meds_p) * 1e3
        over = statistics.median(ratios) * 100
        hook_us = statistics.median(hook) * 1e6
        hook_pct = hook_us / 1e3 / step_ms * 100
        st, info = d.get("/api/v1/runs/torch-overhead")
        sent = [s["points"] for s in info.get("series", []) if s["kind"] == "layer_grad"]
        print("model: %d tensors, %d parameters; step %.2f ms unwatched (median)"
              % (ntensors, sum(p.numel() for p in plain.parameters()), step_ms))
        print("watch() overhead: %+.2f%% of the step (median of %d rounds; spread %+.2f%% to %+.2f%%)"
              % (over, ROUNDS, min(ratios) * 100, max(ratios) * 100))
        print("watcher's own time: %.0f us a step = %.2f%% of the step (median of %d steps)"
              % (hook_us, hook_pct, len(hook)))
        print("the daemon received %d layer series of %s points; everything acknowledged: %s"
              % (len(sent), sorted(set(sent)), ok))
        results.append("RESULT bench=torch_overhead tensors=%d step_ms=%.3f overhead_pct=%.3f "
                       "hook_us=%.1f hook_pct=%.3f rounds=%d steps=%d"
                       % (ntensors, step_ms, over, hook_us, hook_pct, ROUNDS, STEPS))
        w.remove()

        # ---- one Python logging call -------------------------------------------------
        names = {"layer%d.weight" % i: 0.5 for i in range(100)}
        run.log(0, layers=names)                    # registers them once
        n = 100000
        calls = {
            "log_loss": (lambda: run.log_loss(1, 0.5), n),
            "log(loss, grad_norm, lr)": (lambda: run.log(1, loss=0.5, grad_norm=1.0, lr=0.1), n // 4),
            "log(layers=100 names)": (lambda: run.log(1, layers=names), n // 100),
        }
        for what, (f, k) in calls.items():
            best = min(timeit.repeat(f, number=k, repeat=5)) / k
            per = best / (100 if "100" in what else 1)
            print("one %s call: %.0f ns%s" % (what, best * 1e9,
                                              " (%.0f ns a layer)" % (per * 1e9) if "100" in what else ""))
            results.append("RESULT bench=py_log call=%s ns=%.0f"
                           % (what.split("(")[0] + ("_layers100" if "100" in what else
                                                      "_3" if "lr" in what else ""), best * 1e9))
        run.close(10.0)
    verdict = "PASS" if over < GOAL else "FAIL"
    print("goal: watch() overhead < %.0f%% of a CPU step: %+.2f%% -> %s" % (GOAL, over, verdict))
    for line in results:
        print(line)
    if verdict == "FAIL" and os.environ.get("BENCH_STRICT") == "1":
        return 1
    return 0


# ---- on a GPU ------------------------------------------------------------------

class Block(torch.nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.h = h
        self.ln_1 = torch.nn.LayerNorm(d)
        self.c_attn = torch.nn.Linear(d, 3 * d)
        self.c_proj = torch.nn.Linear(d, d)
        self.ln_2 = torch.nn.LayerNorm(d)
        self.c_fc = torch.nn.Linear(d, 4 * d)
        self.mlp_proj = torch.nn.Linear(4 * d, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.h, d // self.h).transpose(1, 2) for z in (q, k, v))
        sdpa = getattr(torch.nn.functional, "scaled_dot_product_attention", None)
        if sdpa is not None:
            y = sdpa(q, k, v, is_causal=True)
        else:               # torch 1.13 (the dry run)
            a = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
            a = a.masked_fill(torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1), float("-inf"))
            y = a.softmax(-1) @ v
        x = x + self.c_proj(y.transpose(1, 2).contiguous().view(b, t, d))
        return x + self.mlp_proj(torch.nn.functional.gelu(self.c_fc(self.ln_2(x))))


class GPT(torch.nn.Module):
    """GPT-2 small's shape: 12 layers, 768 wide, 12 heads, tied embedding."""

    def __init__(self, layers=12, d=768, heads=12, vocab=50304, block=1024):
        super().__init__()
        self.wte = torch.nn.Embedding(vocab, d)
        self.wpe = torch.nn.Embedding(block, d)
        self.h = torch.nn.ModuleList([Block(d, heads) for _ in range(layers)])
        self.ln_f = torch.nn.LayerNorm(d)

    def forward(self, idx, targets):
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for blk in self.h:
            x = blk(x)
        logits = self.ln_f(x) @ self.wte.weight.t()
        return torch.nn.functional.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.view(-1))


def gpu_main(size, dev_name="cuda"):
    """The GPU benchmark (dev_name "cpu" runs it on the CPU, to try the
    script where there is no GPU: its figures then mean nothing)."""
    dev = torch.device(dev_name)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    devname = torch.cuda.get_device_name() if dev.type == "cuda" else "cpu"
    torch.manual_seed(0)
    cfg = {"tiny": dict(layers=2, d=64, heads=4, vocab=512, block=64),
           "gpt2": dict(layers=12, d=768, heads=12, vocab=50304, block=1024)}[size]
    batch, seq = (2, 64) if size == "tiny" else (8, 1024)
    base = GPT(**cfg).to(dev)
    ntensors = sum(1 for _ in base.parameters())
    data = [(torch.randint(0, cfg["vocab"], (batch, seq), device=dev),
             torch.randint(0, cfg["vocab"], (batch, seq), device=dev)) for _ in range(STEPS)]
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:
        SummaryWriter = None
    import tempfile
    logdir = tempfile.mkdtemp(prefix="gw-tb.")
    variants = ["unwatched", "watch", "watch_guard"] + (["tb_common", "tb_careful"] if SummaryWriter else [])
    models, opts, extra = {}, {}, {}
    with Daemon() as d:
        for v in variants:
            models[v] = copy.deepcopy(base)
            try:
                opts[v] = torch.optim.AdamW(models[v].parameters(), lr=1e-4, fused=True)
            except (TypeError, RuntimeError):
                opts[v] = torch.optim.AdamW(models[v].parameters(), lr=1e-4)
            if v.startswith("watch"):
                run = gradwatch.Run(project="bench", name="gpu-" + v, url=d.url)
                extra[v] = (run, gradwatch.torch.watch(models[v], run, opts[v],
                                                        on_critical="raise" if v == "watch_guard" else None))
            elif v.startswith("tb"):
                extra[v] = SummaryWriter(os.path.join(logdir, v))
        names = {v: [n for n, _ in models[v].named_parameters()] for v in variants}

        def step(v, i, x, y):
            m, opt = models[v], opts[v]
            opt.zero_grad(set_to_none=True)
            with torch.autocast(dev.type, dtype=torch.bfloat16):
                loss = m(x, y)
            loss.backward()
            if v == "tb_common":
                wr = extra[v]
                for n, p in m.named_parameters():
                    wr.add_scalar("grad/" + n, p.grad.norm().item(), i)
            torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
            if v == "tb_careful":
                wr = extra[v]
                ns = torch.stack(torch._foreach_norm([p.grad for p in m.parameters()])).tolist()
                wr.add_scalars("grad", dict(zip(names[v], ns)), i)
            opt.step()

        def block(v, k):
            sync()
            t0 = time.perf_counter()
            for i, (x, y) in enumerate(data):
                step(v, k * STEPS + i, x, y)
            sync()
            return (time.perf_counter() - t0) / len(data)

        for v in variants:          # warm-up: kernels, allocator, autotuning
            block(v, 0)
        # Each variant against the unwatched model in adjacent blocks, the
        # order alternating round by round (ABBA), so that a drift of the
        # machine cancels in each round's ratio.  watch() gets twice the
        # rounds: its figure is the one with a goal.
        ratios = {v: [] for v in variants[1:]}
        k = 1
        for v in variants[1:]:
            for r in range(ROUNDS * (2 if v == "watch" else 1)):
                pair = ("unwatched", v) if r % 2 == 0 else (v, "unwatched")
                got = {}
                for u in pair:
                    got[u] = block(u, k)
                    k += 1
                ratios[v].append(got[v] / got["unwatched"] - 1)
            print("  %-12s rounds: %s" % (v, " ".join("%+.1f" % (x * 100) for x in ratios[v])), flush=True)
        base_ms = block("unwatched", k) * 1e3
        over = {v: statistics.median(ratios[v]) * 100 for v in variants[1:]}
        # The watcher's own time on the host, per step.
        run, w = extra["watch"]
        spent = []
        for name in ("_before_step", "_backward_done_last"):
            inner = getattr(w, name)

            def timed(*a, _inner=inner, **kw):
                t0 = time.perf_counter()
                try:
                    return _inner(*a, **kw)
                finally:
                    spent.append(time.perf_counter() - t0)
            setattr(w, name, timed)
        block("watch", k + 1)
        host_us = sum(spent) / len(data) * 1e6
        for v in variants:
            if v.startswith("watch"):
                run, w = extra[v]
                w.flush()
                run.flush(10.0)
        st, info = d.get("/api/v1/runs/gpu-watch")
        layer_pts = sorted(set(s["points"] for s in info.get("series", []) if s["kind"] == "layer_grad"))
        loss_pts = [s["points"] for s in info.get("series", []) if s["kind"] == "loss"]
        for v in variants:
            if v.startswith("watch"):
                extra[v][0].close(10.0)
    print("model: GPT %s, %d tensors, %.0fM parameters, batch %d x %d, bf16 autocast; %s"
          % (size, ntensors, sum(p.numel() for p in base.parameters()) / 1e6, batch, seq,
             devname))
    print("step %.2f ms unwatched" % base_ms)
    for v in variants[1:]:
        print("%-12s %+6.2f%% of a step (median of %d paired rounds)" % (v, over[v], len(ratios[v])))
    print("the watcher's own host time: %.0f us a step (%.2f%% of the step)" % (host_us, host_us / 10 / base_ms))
    print("the daemon got %s points per layer series of gpu-watch, %s of its loss" % (layer_pts, loss_pts))
    print("RESULT bench=torch_gpu device=%s tensors=%d step_ms=%.3f %s"
          % (devname.replace(" ", "_"), ntensors, base_ms,
             " ".join("%s_pct=%.3f" % (v, over[v]) for v in variants[1:])))
    verdict = "PASS" if over["watch"] < 1.0 else "FAIL"
    print("goal: watch() overhead < 1%% of a GPU step: %+.2f%% -> %s" % (over["watch"], verdict))
    return 1 if verdict == "FAIL" and os.environ.get("BENCH_STRICT") == "1" else 0


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--size", default="gpt2", choices=["gpt2", "tiny"])
    ap.add_argument("--dry-run", action="store_true", help="the GPU benchmark on the CPU, tiny")
    a = ap.parse_args()
    if a.dry_run:
        sys.exit(gpu_main("tiny", "cpu"))
    if a.device == "cuda":
        if not torch.cuda.is_available():
            print("torch_overhead: --device cuda, but torch %s sees no GPU" % torch.__version__)
            sys.exit(1)
        sys.exit(gpu_main(a.size))
    sys.exit(main())
