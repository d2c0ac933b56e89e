#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A deep sigmoid network whose gradients vanish, watched by gradwatch: 12
fully connected sigmoid layers of 64 units, initialised with N(0, 0.01^2)
weights (far too small for sigmoid), trained with SGD on a synthetic
five-class task made here from the seed.  Each layer shrinks the gradient
about forty-fold on its way down (sigmoid's slope is at most 1/4, the
weights are tiny), so the first layer's gradient norm is some 1e-17 of
the last one's and nothing is learned: the loss stays at ln 5.  What the
daemon shows: the heatmap's rows fading from the output to the input, a
flat loss, and critical vanishing alerts on nine of the twelve weight
tensors at step 24 (the depth profile: early layers decades below late
ones, once 25 steps give a baseline).

    /usr/bin/python3 examples/torch_vanishing.py [--url URL] [--steps 300]
"""
import sys

from torch_common import finish, gradwatch, options, torch

DEPTH, WIDTH, DIM, CLASSES, BATCH = 12, 64, 20, 5, 64


def main():
    args = options(__doc__, 300).parse_args()
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    centers = torch.randn(CLASSES, DIM, generator=g) * 2

    def sample(n):
        y = torch.randint(0, CLASSES, (n,), generator=g)
        return centers[y] + torch.randn(n, DIM, generator=g), y

    layers = []
    for i in range(DEPTH):
        lin = torch.nn.Linear(DIM if i == 0 else WIDTH, CLASSES if i == DEPTH - 1 else WIDTH)
        torch.nn.init.normal_(lin.weight, 0.0, 0.01)
        torch.nn.init.zeros_(lin.bias)
        layers += [lin] if i == DEPTH - 1 else [lin, torch.nn.Sigmoid()]
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = gradwatch.Run(project=args.project, name=args.run, url=args.url,
                        config={"example": "torch_vanishing", "depth": DEPTH, "width": WIDTH,
                                "act": "sigmoid", "init_std": 0.01, "lr": 0.1, "seed": args.seed})
    w = gradwatch.torch.watch(model, run, opt, weight_every=10,
                              on_critical="raise" if args.stop_on_critical else None)
    stopped = None
    s = 0
    first = last = None
    try:
        for s in range(args.steps):
            x, y = sample(BATCH)
            opt.zero_grad(set_to_none=True)
            out = model(x)
            loss = torch.nn.functional.cross_entropy(out, y)
            loss.backward()
            w.loss(loss)
            step = w.step
            if s % 50 == 0 or s == args.steps - 1:
                first = model[0].weight.grad.norm().item()
                last = model[-1].weight.grad.norm().item()
                acc = (out.argmax(1) == y).float().mean().item()
                run.log(step, metrics={"accuracy": acc})
                if not args.quiet:
                    print("step %3d  loss %.4f  accuracy %.2f  |grad| first layer %.3g, last %.3g  "
                          "health %s" % (step, loss.item(), acc, first, last, run.health.name.lower()),
                          flush=True)
            opt.step()
        s = args.steps
    except gradwatch.CriticalHealth as e:
        stopped = e
    ratio = first / last if first is not None and last else float("nan")
    return finish(run, w, s, stopped, args, " first_to_last_grad_ratio=%.3g" % ratio)


if __name__ == "__main__":
    sys.exit(main())
