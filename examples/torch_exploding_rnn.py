#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""An RNN whose gradients explode, watched by gradwatch: an Elman tanh RNN
(64 units, recurrent weights orthogonal x 1.5) learns the adding problem
(sequences of 50, made here from the seed) with SGD and momentum; after
step 150 the learning rate grows by 10% a step, as a badly set schedule
would.  With seed 1 the gradient norm, about 0.1 to 5 until then, climbs
from about step 160 (9 at 163, 53 at 168, 1.7e3 at 170, 3.3e5 at 175,
2.4e18 at 185), is infinite at step 186 and the loss and every
gradient are NaN after it; seeds 2 and 3 go the same way, a step or two
apart.  What the daemon shows (seed 1): divergence of the loss at step
169 and grad_explosion at 172, both critical, while the norm climbs,
then nonfinite at 186, which supersedes the explosion.  With
--stop-on-critical the script stops at the first critical answer (step
173 or so: the answer comes a few steps after the data), before any NaN
update, exits 2 and marks the run failed.

    /usr/bin/python3 examples/torch_exploding_rnn.py [--url URL] [--steps 220] [--stop-on-critical]
"""
import math
import sys
import time

from torch_common import finish, gradwatch, options, torch

T, H, BATCH = 50, 64, 32


def adding_batch(g):
    """The adding problem: a random sequence of values, two of them
    marked; the target is their sum."""
    x = torch.rand(BATCH, T, 2, generator=g)
    x[:, :, 1] = 0
    idx = torch.stack([torch.randperm(T, generator=g)[:2] for _ in range(BATCH)])
    x[torch.arange(BATCH)[:, None], idx, 1] = 1
    return x, (x[:, :, 0] * x[:, :, 1]).sum(1, keepdim=True)


class AddingRNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = torch.nn.RNN(2, H, nonlinearity="tanh", batch_first=True)
        self.head = torch.nn.Linear(H, 1)
        with torch.no_grad():
            torch.nn.init.orthogonal_(self.rnn.weight_hh_l0)
            self.rnn.weight_hh_l0.mul_(1.5)

    def forward(self, x):
        h, _ = self.rnn(x)
        return self.head(h[:, -1])


def main():
    args = options(__doc__, 220).parse_args()
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    model = AddingRNN()
    lr0, ramp_at, ramp = 0.01, 150, 1.1
    opt = torch.optim.SGD(model.parameters(), lr=lr0, momentum=0.9)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: ramp ** max(0, s - ramp_at))
    run = gradwatch.Run(project=args.project, name=args.run, url=args.url,
                        config={"example": "torch_exploding_rnn", "lr": lr0, "ramp_after": ramp_at,
                                "ramp": ramp, "seq": T, "hidden": H, "w_hh_scale": 1.5, "seed": args.seed})
    w = gradwatch.torch.watch(model, run, opt, on_critical="raise" if args.stop_on_critical else None)
    first_bad = None
    peak = 0.0
    stopped = None
    s = 0
    try:
        for s in range(args.steps):
            x, y = adding_batch(g)
            opt.zero_grad(set_to_none=True)
            loss = (model(x) - y).pow(2).mean()
            loss.backward()
            w.loss(loss)
            step, lr = w.step, opt.param_groups[0]["lr"]
            opt.step()
            sched.step()
            lv, gn = w.last_loss, w.last_grad_norm      # what the watcher sent
            if first_bad is None and not (math.isfinite(lv) and math.isfinite(gn)):
                first_bad = step
            elif first_bad is None:
                peak = max(peak, gn)
            if not args.quiet and (s % 25 == 0 or 155 <= s <= (first_bad or 1 << 30) + 1):
                print("step %3d  loss %-10.4g grad norm %-10.4g lr %.3g  health %s"
                      % (step, lv, gn, lr, run.health.name.lower()), flush=True)
            if args.step_ms > 0:
                time.sleep(args.step_ms / 1000)
        s = args.steps
    except gradwatch.CriticalHealth as e:
        stopped = e
    return finish(run, w, s, stopped, args, " first_nonfinite=%s max_finite_grad_norm=%.3g"
                  % ("none" if first_bad is None else first_bad, peak))


if __name__ == "__main__":
    sys.exit(main())
