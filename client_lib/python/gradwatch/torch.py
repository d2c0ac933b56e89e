# SPDX-License-Identifier: MIT
"""gradwatch.torch: gradwatch for PyTorch training loops, in two lines.

    run = gradwatch.Run(project="cifar")
    w = gradwatch.torch.watch(model, run, optimizer)

From then on every optimizer step (not every micro-step of gradient
accumulation) sends the gradient L2 norm of every parameter tensor that
has a gradient (frozen tensors, whose ``.grad`` is None, are left out of
that step: absent, not zero), the global norm before clipping, the
learning rate and, once, each tensor's shape, size and depth (its order
in ``model.named_parameters()``).  The norms are computed on the
tensors' device with the fused multi-tensor norm (``torch._foreach_norm``
where this torch has it) and come to the host in ONE copy per step: the
loss recorded with :meth:`Watcher.loss`, the clipping and the loss scale
ride in the same copy.

``torch.nn.utils.clip_grad_norm_`` is followed while a watcher is active
(its return value is the pre-clip norm; the step's norms are taken
before it clips), or call :func:`clip_grad_norm_` from here.  A
``GradScaler`` passed as ``scaler`` adds each step's loss scale and the
steps it skipped.  ``on_critical`` acts on the run's health before the
optimizer writes a step: ``"raise"`` raises :class:`gradwatch.CriticalHealth`,
a callable is called.  Supports torch 1.13 (Debian 12) and later.
"""
from __future__ import annotations

import math
import threading
import types
import weakref
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple, Union

import torch

from . import CriticalHealth, Health, Run

__all__ = ["Watcher", "watch", "clip_grad_norm_"]

_HAS_FOREACH_NORM = hasattr(torch, "_foreach_norm")
_vector_norm = getattr(getattr(torch, "linalg", None), "vector_norm", None)

OnCritical = Union[None, str, Callable[[Run, int], Any]]


def _norm(t: torch.Tensor) -> torch.Tensor:
    """The L2 norm of one tensor (a sparse one by its stored values)."""
    if t.is_sparse:
        t = t.coalesce()._values()
    if _vector_norm is not None:
        return _vector_norm(t)
    return t.norm()


def _norms(tensors: List[torch.Tensor], device: torch.device) -> torch.Tensor:
    """The L2 norm of each tensor, as one float32 vector on device.  One
    fused call where the tensors allow it, else one norm each (on their
    own devices), stacked; never a copy to the host."""
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


# ---- clip_grad_norm_ -------------------------------------------------------

_orig_clip = torch.nn.utils.clip_grad_norm_
_watchers: "weakref.WeakSet[Watcher]" = weakref.WeakSet()
_patch_lock = threading.Lock()
_patch_users = 0


def clip_grad_norm_(parameters: Union[torch.Tensor, Iterable[torch.Tensor]], max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    **kwargs: Any) -> torch.Tensor:
    """``torch.nn.utils.clip_grad_norm_``, seen by the active watchers: each
    takes its tensors' norms before the clipping, and logs the step's
    clipping (``max_norm``, and the returned pre-clip norm) with its next
    optimizer step.  Same arguments, same result."""
    if isinstance(parameters, torch.Tensor):
        params: List[torch.Tensor] = [parameters]
    else:
        params = list(parameters)
    mine = [w for w in list(_watchers) if w._covers(params)]
    for w in mine:
        w._before_clip()
    total = _orig_clip(params, max_norm, norm_type, error_if_nonfinite, **kwargs)
    for w in mine:
        w._after_clip(total, max_norm, norm_type)
    return total


def _patch_clip() -> None:
    global _patch_users
    with _patch_lock:
        _patch_users += 1
        if _patch_users == 1:
            torch.nn.utils.clip_grad_norm_ = clip_grad_norm_
            torch.nn.utils.clip_grad.clip_grad_norm_ = clip_grad_norm_


def _unpatch_clip() -> None:
    global _patch_users
    with _patch_lock:
        _patch_users -= 1
        if _patch_users == 0:
            if torch.nn.utils.clip_grad_norm_ is clip_grad_norm_:
                torch.nn.utils.clip_grad_norm_ = _orig_clip
            if torch.nn.utils.clip_grad.clip_grad_norm_ is clip_grad_norm_:
                torch.nn.utils.clip_grad.clip_grad_norm_ = _orig_clip


# ---- the watcher -----------------------------------------------------------

class Watcher:
    """Reports a model's gradients to a :class:`gradwatch.Run` at each
    optimizer step; made by :func:`watch`.

    ``step`` is the step number the next optimizer step is logged under
    (it counts optimizer steps from ``start_step``, skipped ones
    included); ``last_step`` the last one taken (-1 before any);
    ``last_grad_norm`` and ``last_loss`` the values last logged.  Log
    your own values for a step with ``run.log(w.step, ...)`` before the
    optimizer step, or ``run.log(w.last_step, ...)`` after it.
    """

    def __init__(self, model: torch.nn.Module, run: Run, optimizer: Optional[torch.optim.Optimizer] = None,
                 *, scaler: Any = None, every: int = 1, weight_every: int = 0,
                 on_critical: OnCritical = None, local_nonfinite: bool = True,
                 follow_clip: bool = True, start_step: int = 0, log_lr: bool = True) -> None:
        if on_critical is not None and on_critical != "raise" and not callable(on_critical):
            raise ValueError("on_critical: expected None, \"raise\" or a callable")
        if every < 1:
            raise ValueError("every: expected >= 1")
        self.run = run
        self.optimizer = optimizer
        self.scaler = scaler
        self.every = int(every)
        self.weight_every = int(weight_every)
        self.on_critical = on_critical
        self.local_nonfinite = local_nonfinite
        self.log_lr = log_lr
        self.step = int(start_step)
        self.last_step = -1
        self.critical = False           # the last step found the run critical
        self.last_grad_norm = math.nan  # the last logged step's global norm
        self.last_loss = math.nan       # and its loss (from Watcher.loss)
        self._start = int(start_step)
        named = list(model.named_parameters())
        self._names = [n for n, _ in named]
        self._params = [p for _, p in named]
        self._param_ids = set(id(p) for p in self._params)
        self._lid: List[Optional[int]] = [None] * len(self._params)
        self._sig: Optional[List[int]] = None     # param indices with a grad, last step
        self._sig_ids: List[int] = []             # their layer ids
        self._loss_sum: Optional[torch.Tensor] = None
        self._loss_n = 0
        self._pre: Optional[torch.Tensor] = None  # pre-clip norms of this step
        self._pre_idx: Optional[List[int]] = None
        self._clips: List[Tuple[torch.Tensor, float]] = []
        self._stepped = False
        self._called_back = False
        self._active = True
        self._undo: List[Callable[[], None]] = []
        self._device = self._params[0].device if self._params else torch.device("cpu")
        if optimizer is not None:
            self._hook_optimizer(optimizer)
        if scaler is not None:
            self._hook_scaler(scaler)
        if follow_clip:
            _patch_clip()
            self._undo.append(_unpatch_clip)
        _watchers.add(self)

    # ---- hooks ---------------------------------------------------------------

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

    def _hook_scaler(self, scaler: Any) -> None:
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

    def _self(self) -> "Watcher":
        return self

    def _covers(self, params: Sequence[torch.Tensor]) -> bool:
        return bool(params) and self._active and id(params[0]) in self._param_ids

    # ---- public ----------------------------------------------------------------

    def loss(self, loss: Union[torch.Tensor, float]) -> None:
        """Record the loss of a (micro-)batch: the next optimizer step logs
        the mean of those recorded since the last one, within its single
        copy to the host (so no ``.item()`` here).  Never raises."""
        try:
            if isinstance(loss, torch.Tensor):
                t = loss.detach().reshape(-1)[:1]
            else:
                t = torch.tensor([float(loss)], device=self._device)
            self._loss_sum = t if self._loss_sum is None else self._loss_sum + t.to(self._loss_sum.device)
            self._loss_n += 1
        except Exception as e:
            self.run._fail("Watcher.loss", "cannot record", "(%s: %s)" % (type(e).__name__, e))

    def log_grads(self) -> None:
        """Log the model's current gradients as one step, for loops with no
        optimizer to hook (``watch(model, run)``): call it where the
        optimizer step would be.  May raise CriticalHealth (see watch)."""
        self._before_step()
        self._after_step()

    def remove(self) -> None:
        """Stop watching: unhook the optimizer, the scaler and the clip hook."""
        if not self._active:
            return
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

    # ---- one step ----------------------------------------------------------------

    def _with_grad(self) -> Tuple[List[int], List[torch.Tensor]]:
        idx = []
        grads = []
        for i, p in enumerate(self._params):
            g = p.grad
            if g is not None:
                idx.append(i)
                grads.append(g)
        return idx, grads

    def _before_clip(self) -> None:
        # The norms that matter are the ones before clipping: take them now.
        if self._pre is not None or not self._due():
            return
        try:
            with torch.no_grad():
                idx, grads = self._with_grad()
                if grads:
                    self._pre = _norms(grads, self._device)
                    self._pre_idx = idx
        except Exception as e:
            self.run._fail("clip_grad_norm_", "cannot take the norms", "(%s: %s)" % (type(e).__name__, e))

    def _after_clip(self, total: Any, max_norm: float, norm_type: float) -> None:
        if norm_type != 2.0 or not self._due():
            return              # grad_norm is an L2 norm; skip an L-inf clip's
        if isinstance(total, torch.Tensor):
            self._clips.append((total.detach().reshape(1), float(max_norm)))

    def _due(self) -> bool:
        return (self.step - self._start) % self.every == 0

    def _ids_for(self, idx: List[int]) -> List[int]:
        """Layer ids of the params at idx, registering the new ones."""
        if idx == self._sig:
            return self._sig_ids
        ids = []
        for i in idx:
            lid = self._lid[i]
            if lid is None:
                p = self._params[i]
                lid = self.run.register_layer(self._names[i], shape=tuple(p.shape), depth=i)
                self._lid[i] = lid
            ids.append(lid)
        self._sig, self._sig_ids = idx, ids
        return ids

    def _before_step(self) -> None:
        """The optimizer is about to apply the gradients: log them, then act
        on the run's health (which may raise CriticalHealth)."""
        self._stepped = True
        step = self.step
        run = self.run
        if not self._due():
            self._loss_sum, self._loss_n = None, 0
            return self._check(step, False)
        bad = False
        try:
            with torch.no_grad():
                if self._pre is not None:
                    idx, norms = self._pre_idx or [], self._pre
                else:
                    idx, grads = self._with_grad()
                    norms = _norms(grads, self._device) if grads else None
                dev = self._device
                parts = []
                n = len(idx)
                if norms is not None:
                    parts.append(norms)
                    parts.append((_vector_norm(norms) if _vector_norm is not None else norms.norm()).reshape(1))
                clipped = bool(self._clips)
                if clipped:
                    parts.append(self._clips[0][0].to(device=dev, dtype=torch.float32))
                has_loss = self._loss_sum is not None
                if has_loss:
                    parts.append((self._loss_sum.to(device=dev, dtype=torch.float32) / self._loss_n))
                scale = self._scale_tensor()
                if scale is not None:
                    parts.append(scale)
                wn = self.weight_every > 0 and (step - self._start) % self.weight_every == 0 and n > 0
                if wn:
                    parts.append(_norms([self._params[i].detach() for i in idx], dev))
                vals = torch.cat(parts).tolist() if parts else []    # the one copy
            k = 0
            if norms is not None:
                ids = self._ids_for(idx)
                run.log_layer_grads(step, ids, vals[:n])
                gnorm = vals[n]
                run.log_grad_norm(step, gnorm)
                self.last_grad_norm = gnorm
                k = n + 1
                bad = not math.isfinite(gnorm)
            if clipped:
                run.log_clip(step, self._clips[0][1], vals[k])
                k += 1
            if has_loss:
                run.log_loss(step, vals[k])
                self.last_loss = vals[k]
                bad = bad or not math.isfinite(vals[k])
                k += 1
            if scale is not None:
                run.log_skipped(step, False, vals[k])
                k += 1
            if wn:
                f = run.log_layer_weight
                for lid, v in zip(self._sig_ids, vals[k:k + n]):
                    f(step, lid, v)
            if self.log_lr and self.optimizer is not None:
                run.log_lr(step, self.optimizer.param_groups[0]["lr"])
        except Exception as e:
            run._fail("watch", "cannot log the step", "(%s: %s)" % (type(e).__name__, e))
        finally:
            self._pre = self._pre_idx = None
            self._clips = []
            self._loss_sum, self._loss_n = None, 0
        self._check(step, bad and self.local_nonfinite)

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
                vals = torch.cat(parts).tolist()
            self.run.log_skipped(step, True, vals[0])
            if len(vals) > 1:
                self.run.log_loss(step, vals[1])
        except Exception as e:
            self.run._fail("watch", "cannot log the skipped step", "(%s: %s)" % (type(e).__name__, e))
        finally:
            self._pre = self._pre_idx = None
            self._clips = []
            self._loss_sum, self._loss_n = None, 0
        self._after_step()

    def _check(self, step: int, nonfinite: bool) -> None:
        """Act on critical health before the optimizer writes the step."""
        if self.on_critical is None:
            return
        crit = nonfinite or self.run.health == Health.CRITICAL
        if not crit:
            self.critical = False
            self._called_back = False
            return
        self.critical = True
        if self.on_critical == "raise":
            alerts = self.run.alerts
            what = ", ".join("%s%s" % (a.kind, " on " + a.series if a.series else "") for a in alerts)
            if not what:
                what = "a non-finite loss or gradient norm at this step"
            raise CriticalHealth("gradwatch: run %s is critical at step %d (%s); the optimizer "
                                 "step was not taken" % (self.run.key, step, what),
                                 self.run, step, alerts)
        if not self._called_back:
            self._called_back = True
            self.on_critical(self.run, step)     # type: ignore[operator]


def watch(model: torch.nn.Module, run: Run, optimizer: Optional[torch.optim.Optimizer] = None, *,
          scaler: Any = None, every: int = 1, weight_every: int = 0,
          on_critical: OnCritical = None, local_nonfinite: bool = True,
          follow_clip: bool = True, start_step: int = 0, log_lr: bool = True) -> Watcher:
    """Watch ``model``'s gradients: log them to ``run`` at each step of
    ``optimizer`` (or at each :meth:`Watcher.log_grads` without one).

    ``scaler``: a ``torch.cuda.amp.GradScaler`` (or ``torch.amp``'s) used
    with the optimizer; adds the loss scale and the skipped steps.
    ``every``: log every n-th optimizer step (steps are still counted).
    ``weight_every``: also log the weight norms every n-th step (0: never).
    ``on_critical``: ``"raise"`` raises :class:`gradwatch.CriticalHealth`
    from the optimizer step, before it updates the weights, while the run
    is critical; a callable ``f(run, step)`` is called once each time the
    run turns critical.  Critical means: the daemon says so, or (with
    ``local_nonfinite``) this step's loss or global gradient norm is NaN or
    infinite, which the daemon calls critical anyway, only later.
    ``follow_clip``: while watching, ``torch.nn.utils.clip_grad_norm_``
    is this module's :func:`clip_grad_norm_` (same result), so that the
    norms before clipping and the clipping itself are logged.
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
                   follow_clip=follow_clip, start_step=start_step, log_lr=log_lr)
