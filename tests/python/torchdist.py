# SPDX-License-Identifier: MIT
"""One rank of a distributed job for 25-torch-dist.py (not a test itself).
Started like torchrun starts a rank (RANK, WORLD_SIZE, MASTER_ADDR,
MASTER_PORT in the environment), it trains with gradwatch.torch.watch()
in the mode given as argv[1], writes what it saw (the reference norms and
losses it computed itself, its run's key) as JSON to argv[2], and exits 0.
Modes: ddp, ddp-mean (loss="mean"), shard (parameters split by hand over
the ranks, sharded=...), guard (on_critical="raise"); and where torch can
run them (2.x; gpu_checks.py), fsdp1 (FullyShardedDataParallel with
use_orig_params=True) and fsdp2 (fully_shard), on the CPU."""
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "client_lib", "python"))
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import gradwatch  # noqa: E402
import gradwatch.torch as gwt  # noqa: E402

mode, out_path, url = sys.argv[1], sys.argv[2], sys.argv[3]
STEPS = 6
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(20, 6)
        self.fc1 = torch.nn.Linear(6, 16)
        self.fc2 = torch.nn.Linear(16, 3)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(self.emb(x).mean(1))))


def gathered(v):
    """v of every rank, in rank order (a side collective of the test)."""
    out = [None] * world
    dist.all_gather_object(out, v)
    return out


seen = {"rank": rank, "steps": {}}
if mode in ("ddp", "ddp-mean", "guard"):
    torch.manual_seed(0)
    model = torch.nn.parallel.DistributedDataParallel(Net())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = gradwatch.Run(project="dist-" + mode, url=url, config={"mode": mode})
    w = gwt.watch(model, run, opt, loss="mean" if mode == "ddp-mean" else "auto",
                  on_critical="raise" if mode == "guard" else None)
    torch.manual_seed(100 + rank)
    stopped = None
    for s in range(STEPS):
        x, y = torch.randint(0, 20, (8, 4)), torch.randint(0, 3, (8,))
        opt.zero_grad(set_to_none=True)
        out = model(x)
        if mode == "guard" and s == 3 and rank == 1:
            out = out * float("nan")        # one rank's batch goes bad
        loss = torch.nn.functional.cross_entropy(out, y)
        loss.backward()
        ref = {n: p.grad.norm().item() for n, p in model.module.named_parameters()}
        ref["grad_norm"] = math.sqrt(sum(v * v for v in ref.values()))
        losses = gathered(loss.item())
        ref["loss_rank0"] = losses[0]
        ref["loss_mean"] = sum(losses) / world
        seen["steps"][s] = ref
        try:
            opt.step()
        except gradwatch.CriticalHealth as e:
            stopped = e.step
            break
    seen["stopped"] = stopped
    seen["finite_weights"] = all(bool(torch.isfinite(p).all()) for p in model.parameters())
elif mode == "shard":
    # The full model on every rank (same seed) is the reference; each rank
    # trains its half of every weight's rows, a bias replicated on all
    # ranks, and a tensor only rank 0 has rows of (rank 1's part is empty).
    torch.manual_seed(0)
    full = {"a.weight": torch.randn(8, 5), "b.weight": torch.randn(6, 3), "odd.weight": torch.randn(4),
            "c.bias": torch.randn(5)}
    xs = {k: torch.randn(v.shape) for k, v in full.items()}

    def loss_of(params, sl):
        tot = 0
        for k, p in params.items():
            tot = tot + ((p * xs[k][sl(k)]) ** 2).sum() + (p ** 3).sum() * 0.01
        return tot

    def rows(k):
        n = full[k].shape[0]
        if k == "c.bias":
            return slice(0, n)                   # replicated
        if k == "odd.weight":
            return slice(0, n) if rank == 0 else slice(n, n)
        h = n // world
        return slice(rank * h, (rank + 1) * h)

    class Shard(torch.nn.Module):
        def __init__(self):
            super().__init__()
            for k, v in full.items():
                self.register_parameter(k.replace(".", "_"), torch.nn.Parameter(v[rows(k)].clone()))

    model = Shard()
    names = {k.replace(".", "_"): k for k in full}
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    run = gradwatch.Run(project="dist-shard", url=url)
    w = gwt.watch(model, run, opt, sharded=lambda name, p: name != "c_bias")
    ref_params = {k: torch.nn.Parameter(v.clone()) for k, v in full.items()}
    for s in range(STEPS):
        opt.zero_grad(set_to_none=True)
        mine = {names[n]: p for n, p in model.named_parameters()}
        # The replicated bias is in every rank's loss: its gradient is the
        # same everywhere (as a replicated parameter's would be after DDP).
        part = loss_of(mine, rows)
        part.backward()
        for p in ref_params.values():
            p.grad = None
        loss_of(ref_params, lambda k: slice(None)).backward()
        ref = {n.replace(".", "_"): ref_params[n].grad.norm().item() for n in full}
        ref["c_bias"] = mine["c.bias"].grad.norm().item()
        full_sq = sum(ref_params[n].grad.norm().item() ** 2 for n in full if n != "c.bias")
        ref["grad_norm"] = math.sqrt(full_sq + ref["c_bias"] ** 2)
        seen["steps"][s] = ref
        opt.step()
        with torch.no_grad():
            for k, p in ref_params.items():
                p -= 0.01 * p.grad
elif mode in ("fsdp1", "fsdp2"):
    # Every rank makes every rank's batches; the reference is the whole
    # model's gradient of the mean of the ranks' losses, which is what
    # FSDP's averaged gradients are.
    import copy
    torch.manual_seed(0)
    ref = Net()
    model = copy.deepcopy(ref)
    if mode == "fsdp1":
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
        model = FSDP(model, use_orig_params=True, device_id=torch.device("cpu"))
    else:
        from torch.distributed.fsdp import fully_shard
        from torch.distributed.device_mesh import init_device_mesh
        mesh = init_device_mesh("cpu", (world,))
        for m in (model.fc1, model.fc2):
            fully_shard(m, mesh=mesh)
        fully_shard(model, mesh=mesh)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ropt = torch.optim.SGD(ref.parameters(), lr=0.1)
    run = gradwatch.Run(project="dist-" + mode, url=url)
    w = gwt.watch(model, run, opt)
    gens = [torch.Generator().manual_seed(100 + r) for r in range(world)]
    for s in range(STEPS):
        data = [(torch.randint(0, 20, (8, 4), generator=g), torch.randint(0, 3, (8,), generator=g))
                for g in gens]
        opt.zero_grad(set_to_none=True)
        ropt.zero_grad(set_to_none=True)
        x, y = data[rank]
        torch.nn.functional.cross_entropy(model(x), y).backward()
        sum(torch.nn.functional.cross_entropy(ref(a), b) for a, b in data).div(world).backward()
        e = {n: p.grad.norm().item() for n, p in ref.named_parameters()}
        e["grad_norm"] = math.sqrt(sum(v * v for v in e.values()))
        seen["steps"][s] = e
        opt.step()
        ropt.step()
seen["key"] = run.key
seen["is_sender"] = getattr(run, "is_sender", None)
w.remove()
run.close(10.0)
with open(out_path, "w") as f:
    json.dump(seen, f)
dist.barrier()
dist.destroy_process_group()
