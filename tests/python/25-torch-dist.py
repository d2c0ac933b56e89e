#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""gradwatch.torch.watch() in distributed jobs, each of two ranks over gloo
on the CPU started as torchrun starts them (tests/python/torchdist.py is
one rank), every rank running the same lines, against a live gradwatchd:
DDP shows as one run under the model's own names, sent by rank 0 alone,
with norms equal to torch's of the synchronised gradients and rank 0's
loss, or the mean over the ranks with loss="mean", and the world size in
the run's meta; parameters sharded by hand over the ranks are reported as
the full tensors; on_critical="raise" stops every rank at the same step.
FSDP itself cannot run on this torch (1.13 with Python 3.11 cannot import
torch.distributed.fsdp), so the sharded path is tested by hand here and
FSDP on the GPU machine's torch (bench/torch_gpu.py)."""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gwpy import TAP, Daemon, require_lib, require_torch, series_match, torch_job  # noqa: E402

require_lib()
require_torch()
t = TAP()
tmp = tempfile.mkdtemp(prefix="gw-dist.")


def runs_of(d, project):
    return d.get("/api/v1/runs?project=" + project)[1]["runs"]


LAYERS = ["emb.weight", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]

with Daemon() as d:
    for mode in ("ddp", "ddp-mean"):
        r0, r1 = torch_job(mode, d.url, tmp)
        t.ok(r0 is not None and r1 is not None, "%s: both ranks finish" % mode)
        if r0 is None or r1 is None:
            continue
        runs = runs_of(d, "dist-" + mode)
        t.is_(len(runs), 1, "%s: one run for the job" % mode)
        key = runs[0]["run"]
        t.is_((r0["key"], r1["key"]), (key, key), "%s: both ranks name it the same (rank 0 chose)" % mode)
        t.is_((r0["is_sender"], r1["is_sender"]), (True, False), "%s: rank 0 sends, rank 1 does not" % mode)
        st, info = d.get("/api/v1/runs/" + key)
        names = sorted(s["name"] for s in info["series"] if s["kind"] == "layer_grad")
        t.is_(names, sorted(LAYERS), "%s: the model's own names, no module. prefix" % mode)
        dmeta = (info.get("meta") or {}).get("distributed") or {}
        t.is_((dmeta.get("world_size"), dmeta.get("rank")), (2, 0), "%s: world size and rank in meta" % mode)
        series_match(t, d, key, r0["steps"], LAYERS + ["grad_norm"], lambda e, n: e[n],
             "%s: every norm equals torch's of the synchronised gradient" % mode)
        want = "loss_mean" if mode == "ddp-mean" else "loss_rank0"
        series_match(t, d, key, r0["steps"], ["loss"], lambda e, n: e[want],
             "%s: the loss is %s" % (mode, "the mean over the ranks" if mode == "ddp-mean" else "rank 0's"))

    r0, r1 = torch_job("shard", d.url, tmp)
    t.ok(r0 is not None and r1 is not None, "shard: both ranks finish")
    if r0 and r1:
        runs = runs_of(d, "dist-shard")
        t.is_(len(runs), 1, "shard: one run")
        key = runs[0]["run"]
        series_match(t, d, key, r0["steps"], ["a_weight", "b_weight", "odd_weight"], lambda e, n: e[n],
             "shard: each sharded tensor's norm is the full tensor's (a rank with an empty part included)")
        series_match(t, d, key, r0["steps"], ["c_bias"], lambda e, n: e[n],
             "shard: a replicated tensor is not counted once per rank")
        series_match(t, d, key, r0["steps"], ["grad_norm"], lambda e, n: e[n], "shard: the global norm of the full model")

    r0, r1 = torch_job("guard", d.url, tmp)
    t.ok(r0 is not None and r1 is not None, "guard: both ranks finish, none hangs")
    if r0 and r1:
        t.is_((r0["stopped"], r1["stopped"]), (3, 3),
              "guard: a NaN batch on rank 1 stops both ranks at that step")
        t.ok(r0["finite_weights"] and r1["finite_weights"], "guard: before the NaN reached the weights")
shutil.rmtree(tmp, ignore_errors=True)
t.done()
