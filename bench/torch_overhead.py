#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""What gradwatch costs a PyTorch training loop on the CPU.

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
"""
import copy
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


if __name__ == "__main__":
    sys.exit(main())
