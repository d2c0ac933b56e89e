#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A healthy PyTorch run, watched by gradwatch: a 4 x 256 ReLU MLP learns
a synthetic ten-class Gaussian mixture (32 dimensions, made here from
the seed) with AdamW, a linear learning-rate warm-up and gradient
clipping at 3.0.  What the daemon should show: a falling loss, steady
gradient norms, occasional clipping, health ok and no alert.

    /usr/bin/python3 examples/torch_healthy.py [--url http://127.0.0.1:7070] [--steps 400]
"""
import sys
import time

from torch_common import finish, gradwatch, options, torch


def main():
    args = options(__doc__, 400).parse_args()
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    classes, dim, batch = 10, 32, 64
    centers = torch.randn(classes, dim, generator=g) * 0.35   # overlapping classes: the loss levels off near 1

    def sample(n):
        y = torch.randint(0, classes, (n,), generator=g)
        return centers[y] + torch.randn(n, dim, generator=g), y

    model = torch.nn.Sequential(
        torch.nn.Linear(dim, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, classes))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    warmup = 50
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))
    run = gradwatch.Run(project=args.project, name=args.run, url=args.url,
                        config={"example": "torch_healthy", "lr": 1e-3, "warmup": warmup, "clip": 3.0,
                                "batch": batch, "seed": args.seed, "model": "mlp 4x256 relu"})
    w = gradwatch.torch.watch(model, run, opt, weight_every=10,
                              on_critical="raise" if args.stop_on_critical else None)
    xv, yv = sample(1000)
    stopped = None
    t0 = time.time()
    s = 0
    val = float("nan")
    try:
        for s in range(args.steps):
            x, y = sample(batch)
            opt.zero_grad(set_to_none=True)
            out = model(x)
            loss = torch.nn.functional.cross_entropy(out, y)
            loss.backward()
            w.loss(loss)
            acc = (out.argmax(1) == y).float().mean()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 3.0)
            step = w.step
            opt.step()
            sched.step()
            if s % 10 == 0:
                run.log(step, metrics={"accuracy": acc.item()})
            if s % 100 == 99 or s == args.steps - 1:
                with torch.no_grad():
                    val = (model(xv).argmax(1) == yv).float().mean().item()
                run.log(step, metrics={"val_accuracy": val})
                if not args.quiet:
                    print("step %4d  loss %.4f  held-out accuracy %.3f  (%.1f s)"
                          % (step, loss.item(), val, time.time() - t0), flush=True)
        s = args.steps
    except gradwatch.CriticalHealth as e:
        stopped = e
    return finish(run, w, s, stopped, args, " val_accuracy=%.3f" % val)


if __name__ == "__main__":
    sys.exit(main())
