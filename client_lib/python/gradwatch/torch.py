# SPDX-License-Identifier: MIT
"""gradwatch.torch: gradwatch for PyTorch training loops, in two lines.

    run = gradwatch.Run(project="cifar")
    gradwatch.torch.watch(model, run, optimizer)

From then on every optimizer step (not every micro-step of gradient
accumulation) sends the loss, the gradient L2 norm of every parameter
tensor that has a gradient (a frozen tensor, or one without a gradient
on a step, is absent on that step, not zero), the global norm before
clipping, the clipping, the learning rate and, once, each tensor's
shape, size and depth (its order in the model).

How it sees a step, whatever the script imports:

- The norms are taken when ``backward()`` has finished (after DDP and
  FSDP have synchronised the gradients, before anything clips them), on
  the tensors' device with the fused multi-tensor norm, and corrected
  for a ``GradScaler``'s scale.  So ``grad_norm`` is the norm before
  clipping however the script clips.
- The loss is the tensor ``backward()`` was called on (divided by the
  scaler's scale; the mean when several backward calls make a step).
  :meth:`Watcher.loss` records another value instead.
- ``torch.nn.utils.clip_grad_norm_`` is followed while a watcher is
  active, including where a module imported it by name before
  ``watch()``: each call logs its ``max_norm`` and the pre-clip norm.
  Clipping done some other way is still noticed (the gradients shrank
  between ``backward()`` and the step) and logged on the steps it clips.
- Everything of a step comes to the host in ONE copy.  On a GPU that
  copy is non-blocking, into pinned memory, and read when it is done (the
  next step at the latest), so the watcher never makes the host wait for
  the device; with ``on_critical`` the copy is synchronous, since the
  step must be stopped before the optimizer writes it.

Many processes (DDP, FSDP, any ``torch.distributed`` job): every rank
runs the same two lines.  The :class:`gradwatch.Run` of rank 0 sends and
those of the other ranks are silent; the run is one, named by the user
or by rank 0.  Names are the model's own (``module.``, FSDP's and
``torch.compile``'s wrapper prefixes removed).  The loss is rank 0's,
or with ``loss="mean"`` the mean over the ranks.  Sharded parameters
(FSDP, FSDP2/DTensor, or ``sharded=True`` for parameters split by hand)
are reported as the full tensors: the squared norms of the shards are
summed over the ranks, in one all-reduce a step fused with the mean loss
and ``on_critical``'s decision, which are the only other things that
need one.  With ``loss="mean"``, a sharded model or ``on_critical``,
``watch()`` must be called on every rank.

A ``GradScaler`` passed as ``scaler`` (or seen scaling a loss) adds each
step's loss scale and the steps it skipped.  ``on_critical`` acts on the
run's health before the optimizer writes a step: ``"raise"`` raises
:class:`gradwatch.CriticalHealth` (on every rank), a callable is called.
Supports torch 1.13 (Debian 12) and later.
"""
from __future__ import annotations

import math
import sys
import threading
import types
import warnings
import weakref
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch

from . import CriticalHealth, Health, Run

__all__ = ["Watcher", "watch", "clip_grad_norm_"]

_HAS_FOREACH_NORM = hasattr(torch, "_foreach_norm")
_vector_norm = getattr(getattr(torch, "linalg", None), "vector_norm", None)
_HOOKED_PARAMS = 16         # parameters whose gradient hook finds the end of backward()
_WRAPPER_PARTS = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")
_UPDATE_MAX_BYTES = 1 << 30 # update norms need a copy of the parameters: not beyond this

OnCritical = Union[None, str, Callable[[Run, int], Any]]
Sharded = Union[None, bool, Callable[[str, torch.Tensor], bool]]


def _local(t: torch.Tensor) -> torch.Tensor:
    """This rank's part of a tensor: a DTensor's local shard, else t."""
    to_local = getattr(t, "to_local", None)
    return to_local() if to_local is not None else t


def _norm(t: torch.Tensor) -> torch.Tensor:
    """The L2 norm of one tensor (a sparse one by its stored values)."""
    if t.is_sparse:
        t = t.coalesce()._values()
    if _vector_norm is not None:
        return _vector_norm(t)
    return t.norm()


def _norms(tensors: List[torch.Tensor], device: torch.device, order: int = 2) -> torch.Tensor:
    """The L2 (or, order 1, L1) norm of each tensor, as one float32 vector
    on device.  One fused call where the tensors allow it, else one norm
    each (on their own devices), stacked; never a copy to the host."""
    if not tensors:
        return torch.zeros(0, device=device)
    if order == 1:
        try:
            ns = torch._foreach_norm(tensors, 1) if _HAS_FOREACH_NORM else None
        except (RuntimeError, TypeError, NotImplementedError):
            ns = None
        if ns is None:
            ns = [t.abs().sum() for t in tensors]
        return torch.stack([n.to(device=device, dtype=torch.float32) for n in ns])
    if _HAS_FOREACH_NORM:
        try:
            ns = torch._foreach_norm(tensors)
        except (RuntimeError, TypeError, NotImplementedError):
            ns = None           # sparse, or a torch without it for these
        if ns is not None:
            try:
                return torch.stack(ns).to(device=device, dtype=torch.float32)
            except RuntimeError:    # on several devices
                return torch.stack([n.to(device=device, dtype=torch.float32) for n in ns])
    return torch.stack([_norm(t).to(device=device, dtype=torch.float32) for t in tensors])


def _l2(v: torch.Tensor) -> torch.Tensor:
    return (_vector_norm(v) if _vector_norm is not None else v.norm()).reshape(1)


# ---- what torch does, followed ------------------------------------------------
# Three functions are replaced while any watcher is active (and given
# back when the last one goes): clip_grad_norm_ (to log each clip),
# torch.autograd.backward (to know the loss a backward pass starts from)
# and GradScaler.scale (to know which losses are scaled, and by what).

_orig_clip = torch.nn.utils.clip_grad_norm_
_orig_backward = torch.autograd.backward
_watchers: "weakref.WeakSet[Watcher]" = weakref.WeakSet()
_patch_lock = threading.Lock()
_patch_users = 0            # watchers: backward and GradScaler.scale followed
_clip_users = 0             # watchers with follow_clip: clip_grad_norm_ followed
_rebound: List[Tuple[Dict[str, Any], str]] = []     # (module dict, name) given our clip
# The loss of the backward pass in progress.  Not thread-local: the hooks
# that read it run on autograd's device threads.
_root: List[Optional[torch.Tensor]] = [None]
_scaled: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()  # tensor -> scaler
_scaler_classes: List[Tuple[type, Any]] = []       # (class, its own scale())


def clip_grad_norm_(parameters: Union[torch.Tensor, Iterable[torch.Tensor]], max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    **kwargs: Any) -> torch.Tensor:
    """``torch.nn.utils.clip_grad_norm_``, seen by the active watchers: each
    logs the step's clipping (``max_norm``, and the returned pre-clip
    norm) with its next optimizer step.  Same arguments, same result."""
    if isinstance(parameters, torch.Tensor):
        params: List[torch.Tensor] = [parameters]
    else:
        params = list(parameters)
    mine = [w for w in list(_watchers) if w._covers(params)]
    total = None
    if (len(mine) == 1 and norm_type == 2.0 and not error_if_nonfinite
            and kwargs.get("foreach") in (None, True) and set(kwargs) <= {"foreach"}):
        total = mine[0]._clip_with_norms(params, float(max_norm))
    if total is None:
        total = _orig_clip(params, max_norm, norm_type, error_if_nonfinite, **kwargs)
    for w in mine:
        w._after_clip(total, max_norm, norm_type)
    return total


def _backward(tensors: Any, *args: Any, **kwargs: Any) -> Any:
    """torch.autograd.backward, remembering the loss it starts from."""
    root = tensors[0] if isinstance(tensors, (list, tuple)) and len(tensors) == 1 else tensors
    prev = _root[0]
    _root[0] = root if isinstance(root, torch.Tensor) and root.numel() == 1 else None
    try:
        return _orig_backward(tensors, *args, **kwargs)
    finally:
        _root[0] = prev


def _scale_of(orig: Any) -> Callable[..., Any]:
    def scale(self: Any, outputs: Any) -> Any:
        out = orig(self, outputs)
        if isinstance(out, torch.Tensor):
            try:
                _scaled[out] = self
            except TypeError:
                pass
        return out
    return scale


def _scaler_types() -> List[type]:
    """The GradScaler classes of this torch that define scale() themselves."""
    out = []
    for mod in ("torch.cuda.amp", "torch.amp", "torch.cpu.amp"):
        try:
            cls = getattr(__import__(mod, fromlist=["GradScaler"]), "GradScaler", None)
        except Exception:
            continue
        if isinstance(cls, type) and "scale" in cls.__dict__ and cls not in out:
            out.append(cls)
    return out


def _rebind_imported_clip() -> None:
    """Give our clip_grad_norm_ to every module that imported torch's by
    name (``from torch.nn.utils import clip_grad_norm_``) before watch()."""
    for name, mod in list(sys.modules.items()):
        if mod is None or name.startswith(("torch.", "gradwatch")) or name == "torch":
            continue
        try:
            d = vars(mod)
            hits = [k for k, v in list(d.items()) if v is _orig_clip]
        except Exception:
            continue
        for k in hits:
            d[k] = clip_grad_norm_
            _rebound.append((d, k))


def _patch_clip() -> None:
    global _clip_users
    with _patch_lock:
        _clip_users += 1
        if _clip_users > 1:
            return
        torch.nn.utils.clip_grad_norm_ = clip_grad_norm_
        torch.nn.utils.clip_grad.clip_grad_norm_ = clip_grad_norm_
        _rebind_imported_clip()


def _unpatch_clip() -> None:
    global _clip_users
    with _patch_lock:
        _clip_users -= 1
        if _clip_users > 0:
            return
        if torch.nn.utils.clip_grad_norm_ is clip_grad_norm_:
            torch.nn.utils.clip_grad_norm_ = _orig_clip
        if torch.nn.utils.clip_grad.clip_grad_norm_ is clip_grad_norm_:
            torch.nn.utils.clip_grad.clip_grad_norm_ = _orig_clip
        for d, k in _rebound:
            if d.get(k) is clip_grad_norm_:
                d[k] = _orig_clip
        _rebound.clear()


def _patch() -> None:
    global _patch_users
    with _patch_lock:
        _patch_users += 1
        if _patch_users > 1:
            return
        torch.autograd.backward = _backward
        try:
            for cls in _scaler_types():
                orig = cls.__dict__.get("scale")
                if orig is not None:
                    _scaler_classes.append((cls, orig))
                    cls.scale = _scale_of(orig)
        except Exception:
            pass


def _unpatch() -> None:
    global _patch_users
    with _patch_lock:
        _patch_users -= 1
        if _patch_users > 0:
            return
        if torch.autograd.backward is _backward:
            torch.autograd.backward = _orig_backward
        for cls, orig in _scaler_classes:
            cls.scale = orig
        _scaler_classes.clear()


# ---- the model and the process group ------------------------------------------

def _unwrap(model: torch.nn.Module) -> Tuple[torch.nn.Module, Optional[torch.nn.Module]]:
    """The model inside DDP / DataParallel / torch.compile wrappers, and the
    DDP wrapper if there is one."""
    ddp = None
    for _ in range(8):
        kind = type(model).__name__
        if kind in ("DistributedDataParallel", "DataParallel") and hasattr(model, "module"):
            if kind == "DistributedDataParallel":
                ddp = model
            model = model.module
        elif kind == "OptimizedModule" and hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            break
    return model, ddp


def _clean(name: str) -> str:
    for part in _WRAPPER_PARTS:
        name = name.replace(part, "")
    return name


def _is_fsdp(model: torch.nn.Module) -> bool:
    return any(type(m).__name__ == "FullyShardedDataParallel" for m in model.modules())


def _replicas(p: torch.Tensor, world: int) -> float:
    """How many ranks hold each element of p: 1 for a shard, the group's
    size for a replicated tensor (for a DTensor, the product of its mesh's
    replicated dimensions)."""
    placements = getattr(p, "placements", None)
    mesh = getattr(p, "device_mesh", None)
    if placements is None or mesh is None:
        return 1.0
    n = 1.0
    for dim, pl in enumerate(placements):
        if type(pl).__name__ == "Replicate":
            n *= mesh.size(dim)
    return n


class _Group:
    """The process group a watcher reduces over (WORLD unless given)."""

    def __init__(self, group: Any) -> None:
        self.group = group
        self.rank, self.size, self.dist = 0, 1, None
        try:
            import torch.distributed as dist
            if dist.is_available() and dist.is_initialized():
                self.dist = dist
                self.rank = dist.get_rank(group)
                self.size = dist.get_world_size(group)
        except Exception:
            self.dist = None

    @property
    def on(self) -> bool:
        return self.dist is not None and self.size > 1

    def all_reduce(self, v: torch.Tensor) -> None:
        self.dist.all_reduce(v, group=self.group)


class _Layout:
    """What the values of one step's host copy are, in order."""
    __slots__ = ("step", "idx", "n", "present", "clip_max", "post", "loss", "scale", "weights", "flag",
                 "adam", "upd_step", "upd_idx")

    def __init__(self, step: int) -> None:
        self.step = step
        self.idx: List[int] = []            # the tensors the norms are of
        self.n = 0
        self.present: Optional[int] = None  # sharded: offset of the "had a gradient" flags
        self.clip_max: Optional[float] = None   # a seen clip: its max_norm
        self.post = False                   # the global norm now, to find an unseen clip
        self.loss = False
        self.scale = False
        self.weights = False
        self.flag = False                   # rank 0's "critical", reduced
        self.adam: List[int] = []           # positions in idx with an Adam ratio
        self.upd_step = -1                  # the step the update norms are of
        self.upd_idx: List[int] = []        # and their tensors


# ---- the watcher -----------------------------------------------------------

class Watcher:
    """Reports a model's gradients to a :class:`gradwatch.Run` at each
    optimizer step; made by :func:`watch`.

    ``step`` is the step number the next optimizer step is logged under
    (it counts optimizer steps from ``start_step``, skipped ones
    included); ``last_step`` the last one taken (-1 before any);
    ``last_grad_norm`` and ``last_loss`` the values last logged (on rank
    0; a step late on a GPU without ``on_critical``).  Log your own
    values for a step with ``run.log(w.step, ...)`` before the optimizer
    step, or ``run.log(w.last_step, ...)`` after it.
    """

    def __init__(self, model: torch.nn.Module, run: Run, optimizer: Optional[torch.optim.Optimizer] = None,
                 *, scaler: Any = None, every: int = 1, weight_every: int = 0,
                 on_critical: OnCritical = None, local_nonfinite: bool = True,
                 follow_clip: bool = True, start_step: int = 0, log_lr: bool = True,
                 loss: Optional[str] = "auto", sharded: Sharded = None, group: Any = None,
                 adam_ratio: bool = True, update_every: int = 10) -> None:
        if on_critical is not None and on_critical != "raise" and not callable(on_critical):
            raise ValueError("on_critical: expected None, \"raise\" or a callable")
        if every < 1:
            raise ValueError("every: expected >= 1")
        if loss not in (None, False, "auto", "mean"):
            raise ValueError("loss: expected \"auto\", \"mean\" or None")
        self.run = run
        self.optimizer = optimizer
        self.scaler = None
        self.every = int(every)
        self.weight_every = int(weight_every)
        self.adam_ratio = bool(adam_ratio)
        self.update_every = max(0, int(update_every))
        self.on_critical = on_critical
        self.local_nonfinite = local_nonfinite
        self.log_lr = log_lr
        self.step = int(start_step)
        self.last_step = -1
        self.critical = False           # the last step found the run critical
        self.last_grad_norm = math.nan  # the last logged step's global norm
        self.last_loss = math.nan       # and its loss
        self._start = int(start_step)
        self._group = _Group(group)
        if self._group.on:
            run._join_job(self._world_rank(), self._group.dist.get_world_size())
            run._publish_key()
        self._sender = run.is_sender
        self._loss_mode = loss or None
        self._explicit_loss = False
        if self._loss_mode == "mean" and self._group.size == 1 and self._world_size_env() > 1:
            raise ValueError("loss=\"mean\": torch.distributed is not initialised; call "
                             "init_process_group() before watch()")
        inner, self._ddp = _unwrap(model)
        named = list(inner.named_parameters())
        self._names = [_clean(n) for n, _ in named]
        self._params = [p for _, p in named]
        self._param_ids = set(id(p) for p in self._params)
        self._param_bytes = sum(p.numel() * p.element_size() for p in self._params if p.requires_grad)
        self._sharded = self._sharded_weights(sharded, model)    # None, or a replica count per tensor
        if self._sharded is not None and self._group.size == 1 and self._world_size_env() > 1:
            raise ValueError("a sharded model: torch.distributed is not initialised; call "
                             "init_process_group() before watch()")
        self._lid: List[Optional[int]] = [None] * len(self._params)
        self._all_registered = False
        self._sig: Optional[List[int]] = None     # param indices with a grad, last step
        self._sig_ids: List[int] = []             # their layer ids
        self._loss_sum: Optional[torch.Tensor] = None
        self._loss_n = 0
        self._pre: Optional[Tuple[List[int], torch.Tensor, Optional[torch.Tensor]]] = None
        self._clips: List[Tuple[torch.Tensor, float]] = []
        self._queued = False            # a callback waits for the end of this backward()
        self._pre_raw: Optional[torch.Tensor] = None     # _pre's norms before unscaling
        self._pre_grads: List[torch.Tensor] = []         # the gradients they are of
        self._pre_versions: List[int] = []               # and their versions then
        self._unseen_clip = False       # a clip we do not follow was found
        self._stepped = False
        self._called_back = False
        self._active = True
        self._undo: List[Callable[[], None]] = []
        self._upd_snap: Optional[Tuple[int, List[int], List[torch.Tensor]]] = None  # before a step
        self._upd_done: Optional[Tuple[int, List[int], torch.Tensor]] = None  # its update norms
        self._pending: List[Tuple[_Layout, torch.Tensor, Any, int]] = []    # async copies
        self._spare: List[Tuple[torch.Tensor, Any]] = []                    # pinned buffers, events
        self._device = self._params[0].device if self._params else torch.device("cpu")
        self._sync_copy = on_critical is not None or self._device.type != "cuda"
        if optimizer is not None:
            self._hook_optimizer(optimizer)
        if scaler is not None:
            self._adopt_scaler(scaler)
        self._hook_grads()
        self._follow_clip = follow_clip
        _patch()
        self._undo.append(_unpatch)
        if follow_clip:
            _patch_clip()
            self._undo.append(_unpatch_clip)
        _watchers.add(self)
        run._on_close.append(self.remove)   # the run's end ends the watch
        self._undo.append(lambda: run._on_close.remove(self.remove))

    # ---- set-up ----------------------------------------------------------------

    @staticmethod
    def _world_size_env() -> int:
        import os
        try:
            return int(os.environ.get("WORLD_SIZE", "1"))
        except ValueError:
            return 1

    def _world_rank(self) -> int:
        try:
            return self._group.dist.get_rank()
        except Exception:
            return 0

    def _sharded_weights(self, sharded: Sharded, model: torch.nn.Module) -> Optional[List[float]]:
        """For a sharded model, 1/(ranks holding each element) per tensor: the
        weight of this rank's squared norm in the sum over ranks."""
        if sharded is False or not self._group.on:
            return None
        dtensor = any(hasattr(p, "placements") for p in self._params)
        if sharded is None and not dtensor and not _is_fsdp(model):
            return None
        out = []
        for n, p in zip(self._names, self._params):
            if callable(sharded) and not isinstance(sharded, bool):
                out.append(1.0 if sharded(n, p) else 1.0 / self._group.size)
            elif hasattr(p, "placements"):
                out.append(1.0 / _replicas(p, self._group.size))
            else:
                out.append(1.0)
        return out

    def _hook_optimizer(self, opt: torch.optim.Optimizer) -> None:
        # The hooks hold the watcher: it lives as long as the optimizer
        # does (or until remove()), whether or not the caller keeps it.
        wself = self._self
        if hasattr(opt, "register_step_pre_hook") and hasattr(opt, "register_step_post_hook"):
            def pre(_opt: Any, _args: Any, _kwargs: Any) -> None:
                w = wself()
                if w is not None and w._active:
                    w._before_step()

            def post(_opt: Any, _args: Any, _kwargs: Any) -> None:
                w = wself()
                if w is not None and w._active:
                    w._after_step()
            handles = [opt.register_step_pre_hook(pre), opt.register_step_post_hook(post)]
            self._undo.append(lambda: [h.remove() for h in handles])
            return
        # torch 1.13: wrap the instance's step.  A bound method of the
        # optimizer, so that an LR scheduler's own wrapper (which rebinds
        # step.__func__ to the optimizer) keeps working and counting.
        orig = opt.step

        def step(opt_self: Any, *args: Any, **kwargs: Any) -> Any:
            w = wself()
            if w is None or not w._active:
                return orig(*args, **kwargs)
            w._before_step()
            out = orig(*args, **kwargs)
            w._after_step()
            return out
        if getattr(orig, "_with_counter", False):
            step._with_counter = True   # type: ignore[attr-defined]
        bound = types.MethodType(step, opt)
        opt.step = bound                # type: ignore[assignment]

        def undo() -> None:
            if opt.__dict__.get("step") is bound:
                if isinstance(orig, types.MethodType) and orig.__func__ is type(opt).step:
                    del opt.step
                else:
                    opt.step = orig     # type: ignore[assignment]
        self._undo.append(undo)

    def _adopt_scaler(self, scaler: Any) -> None:
        if self.scaler is scaler:
            return
        self.scaler = scaler
        wself = self._self
        orig = scaler.step

        def step(sc_self: Any, optimizer: Any, *args: Any, **kwargs: Any) -> Any:
            w = wself()
            if w is None or not w._active or optimizer is not w.optimizer:
                return orig(optimizer, *args, **kwargs)
            w._stepped = False
            out = orig(optimizer, *args, **kwargs)
            if not w._stepped:
                w._skipped_step()
            return out
        bound = types.MethodType(step, scaler)
        scaler.step = bound

        def undo() -> None:
            if scaler.__dict__.get("step") is bound:
                del scaler.step
        self._undo.append(undo)

    def _hook_grads(self) -> None:
        """Gradient hooks on a few tensors spread over the model: the first
        to fire in a backward() queues the callback that takes the norms
        when it has finished."""
        trainable = [p for p in self._params if p.requires_grad]
        if not trainable:
            return
        k = min(_HOOKED_PARAMS, len(trainable))
        picks = sorted(set(round(i * (len(trainable) - 1) / max(k - 1, 1)) for i in range(k)))
        wself = self._self
        handles = []
        for i in picks:
            p = trainable[i]
            if hasattr(p, "register_post_accumulate_grad_hook"):
                handles.append(p.register_post_accumulate_grad_hook(lambda _p: wself()._on_grad()))
            else:
                handles.append(p.register_hook(lambda _g: wself()._on_grad()))
        self._undo.append(lambda: [h.remove() for h in handles])

    def _self(self) -> "Watcher":
        return self

    def _covers(self, params: Sequence[torch.Tensor]) -> bool:
        return bool(params) and self._active and id(params[0]) in self._param_ids

    # ---- public ----------------------------------------------------------------

    def loss(self, loss: Union[torch.Tensor, float]) -> None:
        """Record the loss of a (micro-)batch instead of the automatic one:
        the next optimizer step logs the mean of those recorded since the
        last one, within its single copy to the host (so no ``.item()``
        here).  Never raises."""
        if not self._explicit_loss:
            self._explicit_loss = True          # from now on, only these
            self._loss_sum, self._loss_n = None, 0
        self._add_loss(loss)

    def log_grads(self) -> None:
        """Log the model's current gradients as one step, for loops with no
        optimizer to hook (``watch(model, run)``): call it where the
        optimizer step would be.  May raise CriticalHealth (see watch)."""
        self._before_step()
        self._after_step()

    def flush(self) -> None:
        """Log the steps whose values are still on their way from the GPU
        (waiting for them), and update norms not sent yet.  Called by
        remove() and when the run closes."""
        self._drain(block=True)
        upd, self._upd_done = self._upd_done, None
        if upd is not None and self._sender and self._sharded is None:
            try:
                for i, v in zip(upd[1], upd[2].tolist()):
                    self.run.log_layer_update(upd[0], self._lid_of(i), v)
            except Exception as e:
                self.run._fail("watch", "cannot log the update norms", "(%s: %s)" % (type(e).__name__, e))

    def remove(self) -> None:
        """Stop watching: log what is pending, unhook the optimizer, the
        scaler, the gradients and the followed torch functions."""
        if not self._active:
            return
        try:
            self.flush()
        except Exception:
            pass
        self._active = False
        _watchers.discard(self)
        for undo in reversed(self._undo):
            try:
                undo()
            except Exception:
                pass
        self._undo = []

    def __enter__(self) -> "Watcher":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()

    # ---- during backward() --------------------------------------------------------

    def _on_grad(self) -> None:
        if self._queued or not self._active:
            return
        self._queued = True
        root = _root[0]
        if root is not None and not self._explicit_loss and self._loss_mode is not None:
            sc = _scaled.get(root)
            if sc is not None and self.scaler is None:
                self._adopt_scaler(sc)
            self._add_loss(root.detach(), scaled=sc is not None)
        try:
            torch.autograd.Variable._execution_engine.queue_callback(self._backward_done)
        except Exception:
            self._queued = False

    def _backward_done(self) -> None:
        # Runs at the end of backward(), but before callbacks queued after
        # ours (DDP's gradient averaging): queue again to come after them.
        try:
            torch.autograd.Variable._execution_engine.queue_callback(self._backward_done_last)
        except Exception:
            self._backward_done_last()

    def _backward_done_last(self) -> None:
        self._queued = False
        if not self._active or not self._due():
            return
        if self._ddp is not None and not getattr(self._ddp, "require_backward_grad_sync", True):
            return          # a no_sync() micro-step: gradients not averaged yet
        try:
            with torch.no_grad():
                idx, raw, has = self._measure()
                grads = [self._params[i].grad for i in idx]
                self._pre_raw, self._pre_grads = raw, grads
                self._pre_versions = [g._version for g in grads]
                self._pre = (idx, self._unscaled(raw), has)
        except Exception as e:
            self._pre = None
            self.run._fail("watch", "cannot take the norms", "(%s: %s)" % (type(e).__name__, e))

    def _add_loss(self, loss: Union[torch.Tensor, float], scaled: bool = False) -> None:
        try:
            if isinstance(loss, torch.Tensor):
                t = loss.detach().reshape(-1)[:1].to(dtype=torch.float32)
                if scaled:
                    s = self._scale_tensor()
                    if s is not None:
                        t = t / s.to(t.device)
            else:
                t = torch.tensor([float(loss)], device=self._device)
            self._loss_sum = t if self._loss_sum is None else self._loss_sum + t.to(self._loss_sum.device)
            self._loss_n += 1
        except Exception as e:
            self.run._fail("Watcher.loss", "cannot record", "(%s: %s)" % (type(e).__name__, e))

    # ---- measuring ----------------------------------------------------------------

    def _unscaled(self, v: torch.Tensor) -> torch.Tensor:
        """Norms (or squared norms, sharded) of gradients a GradScaler scaled,
        as they will be once unscaled."""
        scale = self._scale_tensor()
        if scale is None or not v.numel():
            return v
        return v / (scale * scale) if self._sharded is not None else v / scale

    def _grads_unchanged(self) -> bool:
        """True if the gradients are the ones _pre measured, untouched since."""
        k = 0
        for i, p in enumerate(self._params):
            g = p.grad
            if g is None:
                continue
            if (k >= len(self._pre_grads) or g is not self._pre_grads[k]
                    or g._version != self._pre_versions[k]):
                return False
            k += 1
        return k == len(self._pre_grads)

    def _clip_with_norms(self, params: List[torch.Tensor], max_norm: float) -> Optional[torch.Tensor]:
        """clip_grad_norm_(params, max_norm) computed from the norms taken
        at the end of backward(), when they are of exactly these untouched
        float32 gradients on one device (the usual case): the same
        arithmetic as torch's, one pass over the gradients fewer.  None
        when it cannot be done that way (torch's own then runs)."""
        if self._pre is None or self._pre_raw is None or self._sharded is not None:
            return None
        grads = [p.grad for p in params if p.grad is not None]
        if len(grads) != len(self._pre_grads) or not grads:
            return None
        dev = grads[0].device
        for g, h, v in zip(grads, self._pre_grads, self._pre_versions):
            if g is not h or g._version != v or g.dtype != torch.float32 or g.is_sparse \
                    or g.device != dev:
                return None
        with torch.no_grad():
            total = _l2(self._pre_raw.to(dev)).reshape(())
            coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
            if _HAS_FOREACH_NORM and hasattr(torch, "_foreach_mul_"):
                torch._foreach_mul_(grads, coef)
            else:
                for g in grads:
                    g.mul_(coef)
        return total

    def _measure(self) -> Tuple[List[int], torch.Tensor, Optional[torch.Tensor]]:
        """The gradients now: (tensor indices, values, had-a-gradient flags).
        Unsharded: the norms of the tensors that have a gradient.  Sharded:
        every trainable tensor's weighted squared local norm (to be summed
        over the ranks), and its flag.  As they are (scaled, if a
        GradScaler scaled them)."""
        dev = self._device
        if self._sharded is None:
            idx, grads = [], []
            for i, p in enumerate(self._params):
                g = p.grad
                if g is not None:
                    idx.append(i)
                    grads.append(_local(g))
            return idx, _norms(grads, dev), None
        idx, grads, where, has = [], [], [], []
        for i, p in enumerate(self._params):
            if not p.requires_grad:
                continue
            k = len(idx)
            idx.append(i)
            g = p.grad
            if g is not None:
                g = _local(g)
                if g.numel() > 0:
                    grads.append(g)
                    where.append(k)
            has.append(0.0 if g is None else 1.0)
        sq = torch.zeros(len(idx), device=dev)
        if grads:
            sq[torch.tensor(where, device=dev)] = _norms(grads, dev) ** 2
        w = torch.tensor([self._sharded[i] for i in idx], device=dev)
        return idx, sq * w, torch.tensor(has, device=dev)

    def _after_clip(self, total: Any, max_norm: float, norm_type: float) -> None:
        if norm_type != 2.0 or not self._due():
            return              # grad_norm is an L2 norm; skip an L-inf clip's
        if isinstance(total, torch.Tensor):
            self._clips.append((total.detach().reshape(1), float(max_norm)))

    def _due(self) -> bool:
        return (self.step - self._start) % self.every == 0

    def _ids_for(self, idx: List[int]) -> List[int]:
        """Layer ids of the params at idx, registering the new ones.  The
        first time, every trainable tensor is registered: the daemon then
        knows the ones that never get a gradient (a detached branch)."""
        if idx == self._sig:
            return self._sig_ids
        if not self._all_registered:
            self._all_registered = True
            for i, p in enumerate(self._params):
                if p.requires_grad:
                    self._lid_of(i)
        ids = [self._lid_of(i) for i in idx]
        self._sig, self._sig_ids = idx, ids
        return ids

    def _look_for_unseen_clip(self) -> bool:
        """Whether to measure the gradients again before the step: only when
        they changed since backward() and not by a clip we followed (an
        unscale_, a clip by other means)."""
        if self._clips or not self._follow_clip or self._pre is None:
            return False
        return not self._grads_unchanged()

    # ---- one step ------------------------------------------------------------------

    def _before_step(self) -> None:
        """The optimizer is about to apply the gradients: log them, then act
        on the run's health (which may raise CriticalHealth)."""
        self._stepped = True
        step = self.step
        self._drain(block=False)
        if not self._due():
            self._pre = self._pre_raw = None
            self._pre_grads, self._pre_versions = [], []
            self._loss_sum, self._loss_n = None, 0
            return self._check(step, False, None)
        vals: Optional[List[float]] = None
        lay = _Layout(step)
        try:
            with torch.no_grad():
                vec, lay = self._step_vector(step)
                self._snapshot_for_update(step, lay.idx)
                if self._sync_copy or not vec.is_cuda:
                    if self._sender or self.on_critical is not None:
                        vals = vec.tolist() if vec.numel() else []     # the one copy
                elif self._sender:
                    self._copy_async(lay, vec)
        except Exception as e:
            self.run._fail("watch", "cannot log the step", "(%s: %s)" % (type(e).__name__, e))
        finally:
            self._pre = self._pre_raw = None
            self._pre_grads, self._pre_versions = [], []
            self._clips = []
            self._loss_sum, self._loss_n = None, 0
        bad, flag = False, None
        if vals is not None:
            bad, flag = self._emit(lay, vals)
        self._check(step, bad and self.local_nonfinite, flag)

    def _step_vector(self, step: int) -> Tuple[torch.Tensor, _Layout]:
        """Everything of the step as one float32 vector on the device (after
        the one all-reduce, if one is needed), and what it holds."""
        lay = _Layout(step)
        dev = self._device
        idx, v, has = self._pre if self._pre is not None else self._measure()
        sharded = self._sharded is not None
        # The parts that are summed over the ranks, when they are.
        red: List[Tuple[str, torch.Tensor]] = []
        if sharded:
            red += [("sq", v), ("has", has)]
        now = None
        if self._look_for_unseen_clip():
            now = self._measure()[1]
            red.append(("post", (now.sum() if sharded else (now * now).sum()).reshape(1)))
        lay.weights = (self.weight_every > 0 and (step - self._start) % self.weight_every == 0
                       and len(idx) > 0)
        if lay.weights:
            wts = _norms([_local(self._params[i].detach()) for i in idx], dev)
            if sharded:
                wts = wts * wts * torch.tensor([self._sharded[i] for i in idx], device=dev)
            red.append(("wts", wts))
        mean = self._loss_mode == "mean" and self._group.on
        if mean:
            s = self._loss_sum if self._loss_sum is not None else torch.zeros(1, device=dev)
            red += [("loss_sum", s.reshape(1)), ("loss_n", torch.tensor([float(self._loss_n)], device=dev))]
        apos, vsum = self._adam_sums(idx)
        if vsum is not None:
            red.append(("vsum", vsum))
        upd, self._upd_done = self._upd_done, None
        if upd is not None:
            red.append(("upd", upd[2]))
        guard = self.on_critical is not None and self._group.on
        if guard:
            crit = self._sender and self.run.health == Health.CRITICAL
            red.append(("flag", torch.tensor([1.0 if crit else 0.0], device=dev)))
        got = {k: t.to(device=dev, dtype=torch.float32).reshape(-1) for k, t in red}
        if self._group.on and (sharded or mean or guard):
            r = torch.cat(list(got.values()))
            self._group.all_reduce(r)       # the one collective of the step
            got = dict(zip(got, torch.split(r, [t.numel() for t in got.values()])))
        norms = got["sq"].clamp(min=0).sqrt() if sharded else v
        # The host vector: norms, global, clip, post, loss, scale, weights, flag, present.
        lay.idx, lay.n = idx, len(idx)
        parts = [norms, _l2(norms)] if lay.n else [torch.zeros(1, device=dev)]
        if self._clips:
            lay.clip_max = self._clips[0][1]
            parts.append(self._clips[0][0])
        if "post" in got:
            lay.post = True
            parts.append(got["post"].clamp(min=0).sqrt())
        if mean:
            lay.loss = True
            parts.append(got["loss_sum"] / got["loss_n"].clamp(min=1))
        elif self._loss_sum is not None:
            lay.loss = True
            parts.append(self._loss_sum / self._loss_n)
        scale = self._scale_tensor()
        if scale is not None:
            lay.scale = True
            parts.append(scale)
        if lay.weights:
            parts.append(got["wts"].clamp(min=0).sqrt() if sharded else got["wts"])
        if guard:
            lay.flag = True
            parts.append(got["flag"])
        if vsum is not None:
            # The gradient the optimizer will use: after a followed clip,
            # or as measured again, or as at the end of backward().
            used = norms
            if now is not None and not sharded and now.numel() == norms.numel():
                used = now
            elif self._clips:
                total = _l2(norms)
                used = norms * torch.clamp(self._clips[0][1] / (total + 1e-6), max=1.0)
            pick = torch.tensor(apos, device=dev)
            lay.adam = apos
            parts.append(used[pick] ** 2 / got["vsum"])
        if upd is not None:
            lay.upd_step, lay.upd_idx = upd[0], upd[1]
            parts.append(got["upd"].clamp(min=0).sqrt() if sharded else got["upd"])
        if sharded:
            lay.present = 1
            parts.append(got["has"])
        return torch.cat([p.to(device=dev, dtype=torch.float32).reshape(-1) for p in parts]), lay

    def _adam_sums(self, idx: List[int]) -> Tuple[List[int], Optional[torch.Tensor]]:
        """For an Adam-family optimizer: the positions in idx of the tensors
        with a second-moment state, and each one's sum(v) before this step
        (weighted for a sharded model, to be summed over the ranks)."""
        if not self.adam_ratio or self.optimizer is None or not idx:
            return [], None
        state = self.optimizer.state
        pos, vs = [], []
        for k, i in enumerate(idx):
            st = state.get(self._params[i])
            v = st.get("exp_avg_sq") if st else None
            if isinstance(v, torch.Tensor) and not v.is_sparse and v.numel() == self._params[i].numel():
                pos.append(k)
                vs.append(_local(v))
        if not vs:
            return [], None
        sums = _norms(vs, self._device, order=1)
        if self._sharded is not None:
            sums = sums * torch.tensor([self._sharded[idx[k]] for k in pos], device=self._device)
        return pos, sums

    def _snapshot_for_update(self, step: int, idx: List[int]) -> None:
        """Before an optimizer step whose update norms are due: keep a copy
        of the tensors (at most _UPDATE_MAX_BYTES of them)."""
        if (self.update_every <= 0 or (step - self._start) % self.update_every != 0 or not idx
                or self._param_bytes > _UPDATE_MAX_BYTES):
            return
        self._upd_snap = (step, idx, [_local(self._params[i].detach()).clone() for i in idx])

    def _update_norms(self) -> None:
        """After the optimizer step: the update norms, for the next copy."""
        snap, self._upd_snap = self._upd_snap, None
        if snap is None:
            return
        step, idx, olds = snap
        try:
            with torch.no_grad():
                news = [_local(self._params[i].detach()) for i in idx]
                if hasattr(torch, "_foreach_sub"):
                    diffs = torch._foreach_sub(news, olds)
                else:
                    diffs = [a - b for a, b in zip(news, olds)]
                n = _norms(diffs, self._device)
                if self._sharded is not None:
                    n = n * n * torch.tensor([self._sharded[i] for i in idx], device=self._device)
                self._upd_done = (step, idx, n)
        except Exception as e:
            self.run._fail("watch", "cannot take the update norms", "(%s: %s)" % (type(e).__name__, e))

    def _lid_of(self, i: int) -> int:
        """Layer id of tensor i, registering it (with its shape and depth)."""
        lid = self._lid[i]
        if lid is None:
            p = self._params[i]
            shape = tuple(getattr(p, "_unpadded_unsharded_size", None) or p.shape)
            lid = self.run.register_layer(self._names[i], shape=shape, depth=i)
            self._lid[i] = lid
        return lid

    def _emit(self, lay: _Layout, vals: List[float]) -> Tuple[bool, Optional[bool]]:
        """Log one step's values (on the sending rank); returns (non-finite
        loss or global norm, rank 0's reduced "critical" or None)."""
        run = self.run
        step = lay.step
        bad = False
        n = lay.n
        norms = vals[:n]
        gnorm = vals[n] if n else None
        pos = [n + 1]

        def take(present: bool, count: Optional[int] = None) -> Any:
            """The next value (or list of count values) where present, else None."""
            if not present:
                return None
            k = pos[0]
            pos[0] += 1 if count is None else count
            return vals[k] if count is None else vals[k:k + count]
        clip_total = take(lay.clip_max is not None)
        post = take(lay.post)
        loss = take(lay.loss)
        scale = take(lay.scale)
        wts = take(lay.weights, n)
        flag = take(lay.flag)
        flag = None if flag is None else flag > 0
        adam = take(bool(lay.adam), len(lay.adam))
        upd = take(bool(lay.upd_idx), len(lay.upd_idx))
        k = pos[0]
        idx = lay.idx
        if lay.present is not None:         # sharded: leave out the tensors no rank had
            keep = [j for j in range(n) if vals[k + j] > 0]
            if len(keep) < n:
                idx = [lay.idx[j] for j in keep]
                norms = [norms[j] for j in keep]
                wts = [wts[j] for j in keep] if wts is not None else None
        if gnorm is not None:
            bad = not math.isfinite(gnorm)
        if loss is not None:
            bad = bad or not math.isfinite(loss)
        if not self._sender:
            return bad, flag
        try:
            if gnorm is not None and idx:
                ids = self._ids_for(idx)
                run.log_layer_grads(step, ids, norms)
                run.log_grad_norm(step, gnorm)
                self.last_grad_norm = gnorm
            if clip_total is not None:
                run.log_clip(step, lay.clip_max, clip_total)
            elif post is not None and gnorm is not None and math.isfinite(gnorm) and \
                    post < gnorm * (1 - 1e-4):
                # The gradients shrank between backward() and the step, and
                # not by a clip_grad_norm_ we saw: a clip all the same.
                run.log_clip(step, post, gnorm)
                if not self._unseen_clip:
                    self._unseen_clip = True
                    warnings.warn("gradwatch: the gradients were clipped by a function gradwatch "
                                  "does not follow; it logs those clips only on the steps they clip "
                                  "(call torch.nn.utils.clip_grad_norm_ or gradwatch.torch."
                                  "clip_grad_norm_ to log every step's clipping)", stacklevel=3)
            if loss is not None:
                run.log_loss(step, loss)
                self.last_loss = loss
            if scale is not None:
                run.log_skipped(step, False, scale)
            if wts is not None:
                f = run.log_layer_weight
                for lid, v in zip(self._ids_for(idx), wts):
                    f(step, lid, v)
            if adam is not None:
                f = run.log_layer_adam_ratio
                for k, v in zip(lay.adam, adam):
                    f(step, self._lid_of(lay.idx[k]), v)
            if upd is not None:
                f = run.log_layer_update
                for i, v in zip(lay.upd_idx, upd):
                    f(lay.upd_step, self._lid_of(i), v)
            if self.log_lr and self.optimizer is not None:
                run.log_lr(step, self.optimizer.param_groups[0]["lr"])
        except Exception as e:
            run._fail("watch", "cannot log the step", "(%s: %s)" % (type(e).__name__, e))
        return bad, flag

    # ---- copies from a GPU -----------------------------------------------------------

    def _copy_async(self, lay: _Layout, vec: torch.Tensor) -> None:
        """Start the step's copy to pinned memory; _drain logs it when done."""
        n = vec.numel()
        buf, ev = None, None
        for i, (b, e) in enumerate(self._spare):
            if b.numel() >= n:
                buf, ev = self._spare.pop(i)
                break
        if buf is None:
            buf = torch.empty(max(n, 64), dtype=torch.float32, pin_memory=True)
            ev = torch.cuda.Event()
        buf[:n].copy_(vec, non_blocking=True)
        ev.record()
        self._pending.append((lay, buf, ev, n))

    def _drain(self, block: bool) -> None:
        """Log the pending steps whose copies are done; with block, all of
        them.  A copy still running from before the previous step is waited
        for: values reach the run a step late at most."""
        while self._pending:
            lay, buf, ev, n = self._pending[0]
            if not (block or ev.query() or lay.step < self.step - 1):
                return
            ev.synchronize()
            self._pending.pop(0)
            vals = buf[:n].tolist()
            self._spare.append((buf, ev))
            self._emit(lay, vals)

    # ---- the rest of a step -------------------------------------------------------------

    def _scale_tensor(self) -> Optional[torch.Tensor]:
        """The scaler's current loss scale as a float32 [1] tensor on the
        model's device, without a copy to the host, or None."""
        sc = self.scaler
        if sc is None or not sc.is_enabled():
            return None
        t = getattr(sc, "_scale", None)
        if isinstance(t, torch.Tensor):
            return t.detach().reshape(1).to(device=self._device, dtype=torch.float32)
        return torch.tensor([float(sc.get_scale())], device=self._device)

    def _after_step(self) -> None:
        if self._upd_snap is not None:
            self._update_norms()
        self.last_step = self.step
        self.step += 1

    def _skipped_step(self) -> None:
        """The scaler found inf/NaN gradients and skipped the optimizer: log
        the skip, the scale and the loss (one copy), no gradient norms."""
        step = self.step
        try:
            with torch.no_grad():
                scale = self._scale_tensor()
                parts = [scale if scale is not None else torch.zeros(1, device=self._device)]
                if self._loss_sum is not None:
                    parts.append(self._loss_sum.to(device=self._device, dtype=torch.float32) / self._loss_n)
                if self._sender:
                    vals = torch.cat(parts).tolist()
                    self.run.log_skipped(step, True, vals[0])
                    if len(vals) > 1:
                        self.run.log_loss(step, vals[1])
        except Exception as e:
            self.run._fail("watch", "cannot log the skipped step", "(%s: %s)" % (type(e).__name__, e))
        finally:
            self._pre = self._pre_raw = None
            self._pre_grads, self._pre_versions = [], []
            self._clips = []
            self._loss_sum, self._loss_n = None, 0
        self._after_step()

    def _check(self, step: int, nonfinite: bool, flag: Optional[bool]) -> None:
        """Act on critical health before the optimizer writes the step.  In a
        group, rank 0's view (flag) decides for every rank."""
        if self.on_critical is None:
            return
        if flag is not None:
            crit = nonfinite or flag
        else:
            crit = nonfinite or (self._sender and self.run.health == Health.CRITICAL)
        if not crit:
            self.critical = False
            self._called_back = False
            return
        self.critical = True
        if self.on_critical == "raise":
            alerts = self.run.alerts if self._sender else []
            what = ", ".join("%s%s" % (a.kind, " on " + a.series if a.series else "") for a in alerts)
            if not what:
                what = "a non-finite loss or gradient norm at this step" if nonfinite else \
                    "as rank 0's run says"
            raise CriticalHealth("gradwatch: run %s is critical at step %d (%s); the optimizer "
                                 "step was not taken" % (self.run.key, step, what),
                                 self.run, step, alerts)
        if not self._called_back:
            self._called_back = True
            self.on_critical(self.run, step)     # type: ignore[operator]


def watch(model: torch.nn.Module, run: Run, optimizer: Optional[torch.optim.Optimizer] = None, *,
          scaler: Any = None, every: int = 1, weight_every: int = 0,
          on_critical: OnCritical = None, local_nonfinite: bool = True,
          follow_clip: bool = True, start_step: int = 0, log_lr: bool = True,
          loss: Optional[str] = "auto", sharded: Sharded = None, group: Any = None,
          adam_ratio: bool = True, update_every: int = 10) -> Watcher:
    """Watch ``model``'s gradients: log them to ``run`` at each step of
    ``optimizer`` (or at each :meth:`Watcher.log_grads` without one).

    ``scaler``: a ``torch.cuda.amp.GradScaler`` (or ``torch.amp``'s) used
    with the optimizer; adds the loss scale and the skipped steps (a
    scaler seen scaling the loss is adopted without it).
    ``every``: log every n-th optimizer step (steps are still counted).
    ``weight_every``: also log the weight norms every n-th step (0: never).
    ``on_critical``: ``"raise"`` raises :class:`gradwatch.CriticalHealth`
    from the optimizer step, before it updates the weights, while the run
    is critical; a callable ``f(run, step)`` is called once each time the
    run turns critical.  Critical means: the daemon says so (to rank 0),
    or (with ``local_nonfinite``) this step's loss or global gradient norm
    is NaN or infinite, which the daemon calls critical anyway, only later.
    ``follow_clip``: log each ``clip_grad_norm_`` call and look for other
    clipping (see the module's documentation).
    ``loss``: ``"auto"`` logs the loss ``backward()`` was called on (rank
    0's), ``"mean"`` its mean over the ranks, ``None`` none unless
    :meth:`Watcher.loss` is called.
    ``sharded``: ``None`` detects FSDP and DTensor parameters; ``True``:
    every parameter is a shard of the same-named tensor on every rank;
    ``False``: none is; or a function ``f(name, param)`` saying which are.
    ``group``: the process group the model lives in (default: all ranks).
    ``adam_ratio``: with an Adam-family optimizer, also log each tensor's
    ||g||^2 / sum(v), the squared gradient over the second-moment estimate
    before the step (one fused pass over v, in the same copy); a jump of it
    comes before loss spikes.  ``update_every``: every n-th logged step,
    also each tensor's update norm ||W after - W before|| (it needs a copy
    of the parameters during the step: skipped above 1 GiB of them; 0:
    never); sent with the next step's copy.
    ``start_step``: the first step's number; ``log_lr``: log the first
    parameter group's learning rate.  Returns the :class:`Watcher`;
    ``remove()`` it (or use it in a ``with``) to stop.
    """
    if optimizer is not None:
        for w in list(_watchers):
            if w.optimizer is optimizer:
                w.remove()       # watching again (a re-run notebook cell)
    return Watcher(model, run, optimizer, scaler=scaler, every=every, weight_every=weight_every,
                   on_critical=on_critical, local_nonfinite=local_nonfinite,
                   follow_clip=follow_clip, start_step=start_step, log_lr=log_lr,
                   loss=loss, sharded=sharded, group=group, adam_ratio=adam_ratio,
                   update_every=update_every)
