# SPDX-License-Identifier: MIT
"""gradwatch: tell gradwatchd how a training run is going, from Python.

A thin ctypes binding over libgradwatch, the C client library: a
:class:`Run` copies each step's values into the library's in-memory
buffer, and the library's own thread sends them to the daemon in the
background.  Logging never blocks, never raises into the training loop
and never does I/O; only :meth:`Run.flush` and :meth:`Run.close` wait,
each at most its timeout.  Errors raise only when a run is opened.

    import gradwatch
    with gradwatch.Run(project="mnist") as run:
        for step in range(steps):
            loss = train_step()
            run.log(step, loss=loss, grad_norm=norm, lr=lr)

Nothing is loaded at import: the library is found when the first run
opens ($GRADWATCH_LIB, a copy inside this package, the build/ folder of
the checkout this package sits in, then the system's library path).
The URL, token, spool directory and debug switch come from the same
environment variables as in C: GRADWATCH_URL, GRADWATCH_TOKEN,
GRADWATCH_SPOOL, GRADWATCH_DEBUG.  With a spool directory, what the daemon
could not take (it was down) waits on disk, and :func:`sync` (or
``gradwatch sync``) sends it later.  PyTorch users want
:func:`gradwatch.torch.watch`.
"""
from __future__ import annotations

import atexit
import ctypes
import enum
import json
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _ranks

__version__ = "0.1.0"
__all__ = [
    "Alert", "CriticalHealth", "GradwatchError", "Health", "Run", "Severity", "Status",
    "SyncResult", "library_path", "library_version", "sync",
]

_HERE = os.path.dirname(os.path.abspath(__file__))
_LIB_NAMES = ("libgradwatch.so.0", "libgradwatch.so")
_ALERTS_MAX = 64        # the library keeps at most this many per answer


class GradwatchError(Exception):
    """A run could not be opened: the library is missing, or an option is bad.

    ``status`` is the library's :class:`Status` (``None`` when the library
    itself could not be loaded) and ``str(err)`` says what was wrong.
    """

    def __init__(self, message: str, status: Optional["Status"] = None) -> None:
        super().__init__(message)
        self.status = status


class CriticalHealth(Exception):
    """Raised from a training step when the run became critical and the
    caller asked for it (``gradwatch.torch.watch(..., on_critical="raise")``),
    before the optimizer writes the step's update: stop, do not checkpoint.
    ``alerts`` are the firing alerts; ``step`` the step that was stopped."""

    def __init__(self, message: str, run: "Run", step: int, alerts: List["Alert"]) -> None:
        super().__init__(message)
        self.run = run
        self.step = step
        self.alerts = alerts


def _enum_str(self: enum.Enum) -> str:
    return "%s.%s" % (type(self).__name__, self.name)


def _enum_format(self: enum.Enum, spec: str) -> str:
    return format(_enum_str(self), spec)


# The enums below print their names (str(Health.CRITICAL) and
# f"{Health.CRITICAL}" are "Health.CRITICAL") on every Python: since 3.11
# an IntEnum prints its bare number, and format() of a str mixin printed its
# value before 3.11.  They still compare equal to their values.  The two
# methods sit in each class body because the enum machinery replaces
# inherited ones.

class Status(enum.IntEnum):
    """libgradwatch's result codes (GW_OK and the negative GW_E* codes)."""
    __str__ = _enum_str
    __format__ = _enum_format

    OK = 0
    INVALID = -1        # bad argument or option
    NO_MEMORY = -2
    FULL = -3           # buffer full: the value was dropped and counted
    NO_DAEMON = -4      # the daemon could not be reached (yet)
    TIMED_OUT = -5      # flush/close: not everything was sent in time
    CLOSED = -6         # the run is closed, or belongs to the parent of a fork
    REFUSED = -7        # the daemon refused the data; see Run.last_error
    SPOOLED = -8        # close: the rest is in the spool file, for sync()
    BUSY = -9           # sync: a spool file is in use by a running program

    @classmethod
    def of(cls, code: int) -> "Status":
        try:
            return cls(code)
        except ValueError:
            return cls.INVALID


class Health(enum.IntEnum):
    """The run's health as the daemon last reported it."""
    __str__ = _enum_str
    __format__ = _enum_format

    UNKNOWN = 0         # no answer from the daemon yet
    OK = 1
    WARNING = 2
    CRITICAL = 3


class Severity(str, enum.Enum):
    """An alert's severity; equal to the daemon's word for it ("critical")."""
    __str__ = _enum_str
    __format__ = _enum_format

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @classmethod
    def of(cls, word: str) -> Union["Severity", str]:
        """The member for word, or word itself when this version knows no such severity."""
        try:
            return cls(word)
        except ValueError:
            return word


@dataclass(frozen=True, repr=False)
class Alert:
    """A firing alert, as the daemon's last answer reported it.

    ``str(alert)`` is one line for people, ``critical nonfinite on fc.weight
    at step 30 (since 28): ...``; ``repr(alert)`` names every field."""
    kind: str                   # "nonfinite", "grad_explosion", ...
    severity: Union[Severity, str]  # a Severity; a plain str if the daemon is newer
    series: Optional[str]       # the layer or series; None for the whole run
    onset_step: Optional[int]   # the first bad step, where known
    fire_step: int
    message: str

    def __str__(self) -> str:
        sev = self.severity.value if isinstance(self.severity, Severity) else self.severity
        where = " on " + self.series if self.series else ""
        since = "" if self.onset_step is None else " (since %d)" % self.onset_step
        return "%s %s%s at step %d%s: %s" % (sev, self.kind, where, self.fire_step, since, self.message)

    def __repr__(self) -> str:
        sev = str(self.severity) if isinstance(self.severity, Severity) else repr(self.severity)
        return "Alert(kind=%r, severity=%s, series=%r, onset_step=%r, fire_step=%r, message=%r)" % (
            self.kind, sev, self.series, self.onset_step, self.fire_step, self.message)


# ---- the C library ---------------------------------------------------------

class _Options(ctypes.Structure):
    _fields_ = [
        ("url", ctypes.c_char_p),
        ("run", ctypes.c_char_p),
        ("project", ctypes.c_char_p),
        ("config_json", ctypes.c_char_p),
        ("token", ctypes.c_char_p),
        ("buffer_points", ctypes.c_size_t),
        ("flush_interval_ms", ctypes.c_uint),
        ("meta_json", ctypes.c_char_p),
        ("spool_dir", ctypes.c_char_p),
        ("spool_max_bytes", ctypes.c_size_t),
    ]


class _SyncStats(ctypes.Structure):
    _fields_ = [
        ("files", ctypes.c_uint),
        ("files_done", ctypes.c_uint),
        ("records", ctypes.c_uint64),
        ("values", ctypes.c_uint64),
        ("refused", ctypes.c_uint64),
        ("damaged_bytes", ctypes.c_uint64),
    ]


_SAY_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p)


class _Alert(ctypes.Structure):
    _fields_ = [
        ("kind", ctypes.c_char * 32),
        ("severity", ctypes.c_char * 16),
        ("series", ctypes.c_char * 128),
        ("onset_step", ctypes.c_int64),
        ("fire_step", ctypes.c_int64),
        ("message", ctypes.c_char * 256),
    ]


_P = ctypes.c_void_p
_I = ctypes.c_int
_I64 = ctypes.c_int64
_D = ctypes.c_double
# name: (restype, argtypes, blocks).  The calls that may wait go through a
# CDLL (the GIL is released); the others through a PyDLL, which keeps the
# GIL and so skips releasing and taking it again on every value.
_PROTOS: Dict[str, Tuple[Any, List[Any], bool]] = {
    "gw_open": (_I, [ctypes.POINTER(_P), ctypes.POINTER(_Options)], False),
    "gw_layer": (_I, [_P, ctypes.c_char_p, _I64, _I], False),
    "gw_layer_shape": (_I, [_P, ctypes.c_char_p, ctypes.POINTER(_I64), _I, _I], False),
    "gw_metric": (_I, [_P, ctypes.c_char_p], False),
    "gw_loss": (_I, [_P, _I64, _D], False),
    "gw_grad_norm": (_I, [_P, _I64, _D], False),
    "gw_lr": (_I, [_P, _I64, _D], False),
    "gw_layer_grad": (_I, [_P, _I64, _I, _D], False),
    "gw_layer_weight": (_I, [_P, _I64, _I, _D], False),
    "gw_layer_update": (_I, [_P, _I64, _I, _D], False),
    "gw_layer_adam_ratio": (_I, [_P, _I64, _I, _D], False),
    "gw_clip": (_I, [_P, _I64, _D, _D], False),
    "gw_skipped": (_I, [_P, _I64, _I, _D], False),
    "gw_metric_value": (_I, [_P, _I64, _I, _D], False),
    "gw_step_time": (_I, [_P, _I64, _D], False),
    "gw_health": (_I, [_P], False),
    "gw_alerts": (_I, [_P, ctypes.POINTER(_Alert), _I], False),
    "gw_dropped": (ctypes.c_uint64, [_P], False),
    "gw_run": (ctypes.c_char_p, [_P], False),
    "gw_errmsg": (ctypes.c_char_p, [_P], False),
    "gw_flush": (_I, [_P, _I], True),
    "gw_close_status": (_I, [_P, _I, _I], True),
    "gw_sync": (_I, [ctypes.c_char_p, ctypes.POINTER(_Options), _I, ctypes.POINTER(_SyncStats),
                     _SAY_CB, ctypes.c_void_p], True),
    "gw_strerror": (ctypes.c_char_p, [_I], False),
    "gw_version": (ctypes.c_char_p, [], False),
}


class _Lib:
    """The loaded library: one attribute per gw_ function, prototypes set."""

    def __init__(self, path: str) -> None:
        self.path = path
        fast = ctypes.PyDLL(path)
        slow = ctypes.CDLL(path)
        for name, (res, args, blocks) in _PROTOS.items():
            f = getattr(slow if blocks else fast, name)
            f.restype = res
            f.argtypes = args
            setattr(self, name[3:], f)


_lib: Optional[_Lib] = None
_lib_lock = threading.Lock()


def _candidates() -> List[str]:
    """Where to look for libgradwatch, in order (see the module's doc)."""
    out = [os.path.join(_HERE, n) for n in _LIB_NAMES]
    top = os.path.dirname(os.path.dirname(os.path.dirname(_HERE)))
    if os.path.exists(os.path.join(top, "client_lib", "include", "gradwatch.h")):
        out += [os.path.join(top, "build", n) for n in _LIB_NAMES]
    return out


def _load() -> _Lib:
    """Load the library once; GradwatchError says where it looked."""
    global _lib
    if _lib is not None:
        return _lib
    with _lib_lock:
        if _lib is not None:
            return _lib
        env = os.environ.get("GRADWATCH_LIB")
        if env:
            try:
                _lib = _Lib(env)
            except (OSError, AttributeError) as e:
                raise GradwatchError("gradwatch: cannot load $GRADWATCH_LIB=%s: %s" % (env, e)) from None
            return _lib
        tried = []
        for path in _candidates():
            if os.path.exists(path):
                try:
                    _lib = _Lib(path)
                    return _lib
                except (OSError, AttributeError) as e:
                    tried.append("%s (%s)" % (path, e))
            else:
                tried.append(path + " (absent)")
        for name in _LIB_NAMES:
            try:
                _lib = _Lib(name)
                return _lib
            except (OSError, AttributeError) as e:
                tried.append("%s on the library path (%s)" % (name, e))
        raise GradwatchError(
            "gradwatch: libgradwatch not found; build it with `make` in the "
            "repository, install it (`make install`), or set GRADWATCH_LIB to "
            "its path.  Tried: " + "; ".join(tried))


def library_path() -> str:
    """The path of the libgradwatch in use (loading it if need be)."""
    return _load().path


def library_version() -> str:
    """The loaded libgradwatch's version (GW_VERSION)."""
    return _load().version().decode()


# ---- open runs, exit and fork ------------------------------------------------

_open_runs: Dict[int, "Run"] = {}   # id(run) -> run, until closed
_registry_lock = threading.Lock()
_hooks_installed = False


def _install_hooks() -> None:
    """Once, at the first open: close runs at exit, disown them in a fork child."""
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_close_all_at_exit)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_child)


def _after_fork_child() -> None:
    # The child's copies of the parent's handles are inert in C already
    # (every call returns GW_ECLOSED); forget them here so that the child
    # neither counts those as errors nor closes them at its exit.  No lock:
    # the child has one thread, and the parent's lock may have been held.
    global _registry_lock
    _registry_lock = threading.Lock()
    for run in list(_open_runs.values()):
        run._disown()
    _open_runs.clear()


def _close_all_at_exit() -> None:
    # An uncaught exception ended the program: its runs failed.  (In an
    # interactive shell sys.last_value is any earlier error, so not there.)
    crashed = (getattr(sys, "last_value", None) is not None
               and not hasattr(sys, "ps1") and "IPython" not in sys.modules)
    for run in list(_open_runs.values()):
        if run._pid == os.getpid():
            run.close(failed=crashed)


# ---- runs ------------------------------------------------------------------

Number = Union[int, float]


def _to_bytes(s: Optional[str]) -> Optional[bytes]:
    return None if s is None else s.encode("utf-8", "surrogateescape")


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def _default_key() -> str:
    """C's default run key, program-YYYYmmdd-HHMMSS-xxxxxx, with the script's
    name for the program (C would see "python3"); "python" in a notebook."""
    arg0 = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if arg0.endswith(".py"):
        arg0 = arg0[:-3]
    if arg0 in ("", "-c", "-m", "ipykernel_launcher", "__main__") or "ipykernel" in sys.modules:
        arg0 = "python"
    prog = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._:-") else "-" for ch in arg0)
    prog = "-".join(p for p in prog.split("-") if p)[:48].strip("-") or "run"
    return "%s-%s-%06x" % (prog, time.strftime("%Y%m%d-%H%M%S"), int.from_bytes(os.urandom(3), "big"))


class Run:
    """One training run, reported to gradwatchd.

    ``Run(project="cifar", name="resnet18-lr0.1", config={"lr": 0.1})``
    opens it and starts the library's sender; nothing contacts the daemon
    yet, so opening never blocks.  Every argument is optional and has the
    C library's default: ``url`` is ``$GRADWATCH_URL`` or
    ``http://127.0.0.1:7070``, ``token`` is ``$GRADWATCH_TOKEN``, ``name``
    (the run key, 1 to 128 of ``[A-Za-z0-9._:-]``) is made as in C from
    the program's name (here the script's), the time and a random suffix,
    ``train-20250101-120000-a1b2c3``; ``buffer_points`` (values
    buffered, 1048576) and ``flush_interval`` (seconds between sends, 0.25).
    ``config`` is a dict sent once as the run's configuration (or a JSON
    object as a string); ``meta`` a dict whose members join the run's
    metadata (``GET /api/v1/runs/{run}`` gives them back in ``meta``),
    e.g. ``{"distributed": {"world_size": 8, "rank": 0}}``; it may not
    use the keys project, config, layers or detector.  ``spool_dir``
    (``$GRADWATCH_SPOOL`` when None, no spool when unset or ""; ``~`` is
    expanded) is where values wait when the daemon is down, up to
    ``spool_max_bytes`` (256 MiB) per run: see :func:`sync`.  ``close_timeout`` bounds the wait in
    :meth:`close` when it is not given, at the end of a ``with`` block and
    at exit.  Raises :class:`GradwatchError` when the library cannot be
    loaded or an option is invalid.

    The ``log*`` methods never raise and never block: a value that cannot
    be logged (the buffer is full, a bad step or id) is dropped and
    counted (:attr:`dropped`, :attr:`errors`).  A run is closed by
    :meth:`close`, by leaving its ``with`` block (as failed if an exception
    left it), or at the interpreter's exit.  A run inherited by a forked
    child is inert there: every call does nothing.
    """

    def __init__(self, project: Optional[str] = None, name: Optional[str] = None, *,
                 url: Optional[str] = None, config: Union[Mapping[str, Any], str, None] = None,
                 token: Optional[str] = None, buffer_points: int = 0,
                 flush_interval: Optional[float] = None, close_timeout: float = 5.0,
                 meta: Union[Mapping[str, Any], str, None] = None, spool_dir: Optional[str] = None,
                 spool_max_bytes: int = 0) -> None:
        lib = _load()
        job = _ranks.where()
        if job["world_size"] > 1:
            if isinstance(meta, str):
                try:
                    meta = json.loads(meta)
                except ValueError as e:
                    raise GradwatchError("gradwatch: meta: %s" % e, Status.INVALID) from None
            meta = dict(meta or {})
            meta.setdefault("distributed", _ranks.meta_of(job))
        if isinstance(config, Mapping):
            try:
                config = json.dumps(dict(config), default=str, allow_nan=False)
            except (TypeError, ValueError) as e:
                raise GradwatchError("gradwatch: config: %s" % e, Status.INVALID) from None
        if isinstance(meta, Mapping):
            try:
                meta = json.dumps(dict(meta), default=str, allow_nan=False)
            except (TypeError, ValueError) as e:
                raise GradwatchError("gradwatch: meta: %s" % e, Status.INVALID) from None
        if spool_max_bytes < 0:
            raise GradwatchError("gradwatch: spool_max_bytes: expected >= 0", Status.INVALID)
        if flush_interval is None or flush_interval <= 0:
            flush_ms = 0
        else:
            flush_ms = max(1, int(round(flush_interval * 1000)))
        if buffer_points < 0:
            raise GradwatchError("gradwatch: buffer_points: expected >= 0", Status.INVALID)
        self.rank = job["rank"]
        self.world_size = job["world_size"]
        self.is_sender = job["rank"] == 0
        self._on_close: List[Callable[[], None]] = []
        if not self.is_sender:
            self._silent_init(lib, name, project, close_timeout)
            return
        if name is None:
            name = _default_key()
        if spool_dir is not None:
            spool_dir = os.path.expanduser(os.fspath(spool_dir))
        opt = _Options(_to_bytes(url), _to_bytes(name), _to_bytes(project),
                       _to_bytes(config), _to_bytes(token), buffer_points, flush_ms,
                       _to_bytes(meta), _to_bytes(spool_dir), spool_max_bytes)
        h = _P()
        rc = lib.open(ctypes.byref(h), ctypes.byref(opt))
        if rc != 0:
            why = _text(lib.errmsg(None) or b"") or _text(lib.strerror(rc))
            raise GradwatchError("gradwatch: cannot open the run: %s" % why, Status.of(rc))
        self._lib = lib
        self._h: Optional[int] = h.value
        self._pid = os.getpid()
        self._key = _text(lib.run(h))
        self._project = project
        self._close_timeout = float(close_timeout)
        self._debug = os.environ.get("GRADWATCH_DEBUG", "") not in ("", "0")
        self._said = False
        self._errors = 0
        self._final_dropped = 0
        self._layers: Dict[str, int] = {}
        self._metrics: Dict[str, int] = {}
        self._alert_buf = (_Alert * _ALERTS_MAX)()
        self._close_lock = threading.Lock()
        self.last_status = Status.OK
        # The hot path's functions, bound once.
        self._loss = lib.loss
        self._grad_norm = lib.grad_norm
        self._lr = lib.lr
        self._layer_grad = lib.layer_grad
        self._layer_weight = lib.layer_weight
        self._layer_update = lib.layer_update
        self._layer_adam = lib.layer_adam_ratio
        self._metric_value = lib.metric_value
        self._silent = False
        with _registry_lock:
            _install_hooks()
            _open_runs[id(self)] = self
        if self.world_size > 1:
            _ranks.publish_key(self._key)

    def _silent_init(self, lib: "_Lib", name: Optional[str], project: Optional[str],
                     close_timeout: float) -> None:
        """A rank other than 0 of a distributed job: the run is rank 0's; this
        one sends nothing and every call does nothing."""
        self._lib = lib
        self._h = None
        self._silent = True
        self._pid = os.getpid()
        self._key = name
        self._project = project
        self._close_timeout = float(close_timeout)
        self._debug = False
        self._said = False
        self._errors = 0
        self._final_dropped = 0
        self._layers = {}
        self._metrics = {}
        self._alert_buf = (_Alert * _ALERTS_MAX)()
        self._close_lock = threading.Lock()
        self.last_status = Status.OK
        self._loss = self._grad_norm = self._lr = lib.loss
        self._layer_grad = self._layer_weight = self._metric_value = lib.layer_grad
        self._layer_update = self._layer_adam = lib.layer_grad

    # ---- what the run is -----------------------------------------------------

    @property
    def key(self) -> Optional[str]:
        """The run key in use (the ``name`` given, or the one made up).  On
        a rank other than 0 of a distributed job, rank 0's, once it has
        published it (None until then)."""
        if self._key is None and self._silent:
            self._key = _ranks.lookup_key()
        return self._key

    def _join_job(self, rank: int, world_size: int) -> None:
        """torch.distributed says this process is rank `rank` of a job the
        run was opened without knowing of: rank 0 publishes its key, any
        other rank stops its own run (nothing logged yet, normally) and
        goes silent."""
        if self.world_size > 1 or world_size <= 1:
            return
        self.rank, self.world_size = rank, world_size
        if rank == 0:
            self._publish_key()
            return
        with self._close_lock:
            h, self._h = self._h, None
        with _registry_lock:
            _open_runs.pop(id(self), None)
        if h is not None and self._pid == os.getpid():
            self._lib.close_status(h, 0, 0)
        self.is_sender = False
        self._silent = True
        self._key = None

    def _publish_key(self) -> None:
        """Rank 0: publish the key again (torch.distributed may have been
        initialised only after the run was opened)."""
        if self.is_sender and self.world_size > 1 and self._key is not None:
            _ranks.publish_key(self._key)

    @property
    def project(self) -> Optional[str]:
        return self._project

    @property
    def closed(self) -> bool:
        """True once closed (or when inherited by a forked child)."""
        return self._h is None and not self._silent

    @property
    def health(self) -> Health:
        """The daemon's latest word on the run (UNKNOWN before its first answer)."""
        return Health(self._lib.health(self._h)) if self._h is not None else Health.UNKNOWN

    @property
    def alerts(self) -> List[Alert]:
        """The alerts firing at the daemon's latest answer (at most 64)."""
        if self._h is None:
            return []
        n = min(self._lib.alerts(self._h, self._alert_buf, _ALERTS_MAX), _ALERTS_MAX)
        out = []
        for a in self._alert_buf[:n]:
            out.append(Alert(kind=_text(a.kind), severity=Severity.of(_text(a.severity)),
                             series=_text(a.series) or None,
                             onset_step=a.onset_step if a.onset_step >= 0 else None,
                             fire_step=a.fire_step, message=_text(a.message)))
        return out

    @property
    def dropped(self) -> int:
        """Values dropped because the buffer was full (the library's count)."""
        if self._h is None:
            return self._final_dropped
        return self._lib.dropped(self._h)

    @property
    def errors(self) -> int:
        """Values this binding could not log (bad step, id or value)."""
        return self._errors

    @property
    def last_error(self) -> str:
        """The last problem the sender met, for a person ("" if none)."""
        if self._h is None:
            return ""
        return _text(self._lib.errmsg(self._h) or b"")

    def __repr__(self) -> str:
        state = ("rank %d of %d, silent" % (self.rank, self.world_size) if self._silent else
                 "closed" if self._h is None else self.health.name.lower())
        return "<gradwatch.Run %s %s>" % (self.key, state)

    # ---- failures on the hot path ------------------------------------------

    def _fail(self, what: str, rc: int, detail: Any = "") -> None:
        """A value was not logged: count it, and say so once under GRADWATCH_DEBUG."""
        if rc == Status.FULL:
            return                      # counted by the library (dropped)
        self._errors += 1
        if self._debug and not self._said:
            self._said = True
            try:
                msg = rc if isinstance(rc, str) else self._lib.strerror(rc).decode()
                sys.stderr.write("gradwatch: %s: %s: %s %s (further errors are only counted)\n"
                                 % (self._key, what, msg, detail))
            except Exception:
                pass

    def _retry(self, what: str, f: Callable[..., int], err: Exception, *args: Any) -> None:
        # A value ctypes would not take as it was (a tensor, numpy's
        # float32, a string): try int() and float(), else count it.
        try:
            conv = [self._h] + [int(a) if t is int else float(a)
                                for a, t in zip(args, _KINDS[what])]
            rc = f(*conv)
        except Exception as e:
            self._fail(what, "cannot convert", "(%s: %s)" % (type(e).__name__, e))
            return
        if rc:
            self._fail(what, rc, args)

    # ---- logging: the fast, specific calls ---------------------------------

    def log_loss(self, step: int, value: Number) -> None:
        """The step's training loss (NaN and infinities are fine)."""
        try:
            rc = self._loss(self._h, step, value)
        except Exception as e:
            return self._retry("log_loss", self._loss, e, step, value)
        if rc:
            self._fail("log_loss", rc, (step,))

    def log_grad_norm(self, step: int, value: Number) -> None:
        """The step's global gradient L2 norm, before any clipping."""
        try:
            rc = self._grad_norm(self._h, step, value)
        except Exception as e:
            return self._retry("log_grad_norm", self._grad_norm, e, step, value)
        if rc:
            self._fail("log_grad_norm", rc, (step,))

    def log_lr(self, step: int, value: Number) -> None:
        """The step's learning rate."""
        try:
            rc = self._lr(self._h, step, value)
        except Exception as e:
            return self._retry("log_lr", self._lr, e, step, value)
        if rc:
            self._fail("log_lr", rc, (step,))

    def log_layer_grad(self, step: int, layer: int, value: Number) -> None:
        """The gradient L2 norm of a tensor registered as ``layer`` (an id)."""
        try:
            rc = self._layer_grad(self._h, step, layer, value)
        except Exception as e:
            return self._retry("log_layer_grad", self._layer_grad, e, step, layer, value)
        if rc:
            self._fail("log_layer_grad", rc, (step, layer))

    def log_layer_grads(self, step: int, layers: Sequence[int], values: Sequence[Number]) -> None:
        """Many tensors' gradient norms at once: ``values[i]`` is ``layers[i]``'s."""
        f = self._layer_grad
        h = self._h
        for lid, v in zip(layers, values):
            try:
                rc = f(h, step, lid, v)
            except Exception as e:
                self._retry("log_layer_grad", f, e, step, lid, v)
                continue
            if rc:
                self._fail("log_layer_grads", rc, (step, lid))

    def log_layer_weight(self, step: int, layer: int, value: Number) -> None:
        """The weight L2 norm of a tensor registered as ``layer``."""
        try:
            rc = self._layer_weight(self._h, step, layer, value)
        except Exception as e:
            return self._retry("log_layer_weight", self._layer_weight, e, step, layer, value)
        if rc:
            self._fail("log_layer_weight", rc, (step, layer))

    def log_layer_update(self, step: int, layer: int, value: Number) -> None:
        """The L2 norm of this step's update of a tensor, ||W after - W before||."""
        try:
            rc = self._layer_update(self._h, step, layer, value)
        except Exception as e:
            return self._retry("log_layer_update", self._layer_update, e, step, layer, value)
        if rc:
            self._fail("log_layer_update", rc, (step, layer))

    def log_layer_adam_ratio(self, step: int, layer: int, value: Number) -> None:
        """For Adam-family optimizers: the tensor's ||g||^2 / sum(v), the
        squared gradient over the second-moment estimate before the step."""
        try:
            rc = self._layer_adam(self._h, step, layer, value)
        except Exception as e:
            return self._retry("log_layer_adam_ratio", self._layer_adam, e, step, layer, value)
        if rc:
            self._fail("log_layer_adam_ratio", rc, (step, layer))

    def log_metric(self, step: int, metric: int, value: Number) -> None:
        """A named scalar registered as ``metric`` (an id from :meth:`register_metric`)."""
        try:
            rc = self._metric_value(self._h, step, metric, value)
        except Exception as e:
            return self._retry("log_metric", self._metric_value, e, step, metric, value)
        if rc:
            self._fail("log_metric", rc, (step, metric))

    def log_clip(self, step: int, max_norm: Number, pre_norm: Number) -> None:
        """The step's clipping: the limit and the norm before clipping."""
        f = self._lib.clip
        try:
            rc = f(self._h, step, max_norm, pre_norm)
        except Exception as e:
            return self._retry("log_clip", f, e, step, max_norm, pre_norm)
        if rc:
            self._fail("log_clip", rc, (step,))

    def log_skipped(self, step: int, skipped: bool, loss_scale: Number = 0.0) -> None:
        """Mixed precision: whether the optimizer skipped the step, and the
        loss scale (0 or less: none)."""
        f = self._lib.skipped
        try:
            rc = f(self._h, step, 1 if skipped else 0, loss_scale)
        except Exception as e:
            return self._retry("log_skipped", f, e, step, 1 if skipped else 0, loss_scale)
        if rc:
            self._fail("log_skipped", rc, (step,))

    def log_step_time(self, step: int, t: Number) -> None:
        """The step's wall time (seconds since the epoch); else the send time is used."""
        f = self._lib.step_time
        try:
            rc = f(self._h, step, t)
        except Exception as e:
            return self._retry("log_step_time", f, e, step, t)
        if rc:
            self._fail("log_step_time", rc, (step,))

    # ---- registration ----------------------------------------------------------

    def register_layer(self, name: str, *, numel: Optional[int] = None,
                       shape: Optional[Sequence[int]] = None, depth: Optional[int] = None) -> int:
        """Register a parameter tensor once and return its id for
        :meth:`log_layer_grad` (the same id for the same name).  ``shape``,
        ``numel`` and ``depth`` (its order in the model) are sent as the
        run's layer metadata.  Returns -1 (and counts an error) if the
        name is refused: 1 to 256 bytes of UTF-8."""
        lid = self._layers.get(name)
        if lid is not None:
            return lid
        if self._h is None:
            return -1
        lib = self._lib
        try:
            bname = name.encode("utf-8")
            d = -1 if depth is None else int(depth)
            if shape is not None:
                dims = [int(x) for x in shape]
                arr = (_I64 * max(1, len(dims)))(*dims)
                lid = lib.layer_shape(self._h, bname, arr, len(dims), d)
            else:
                lid = lib.layer(self._h, bname, -1 if numel is None else int(numel), d)
        except Exception as e:
            self._fail("register_layer", "cannot register", "%r (%s)" % (name, e))
            return -1
        if lid < 0:
            self._fail("register_layer", lid, repr(name))
            return -1
        self._layers[name] = lid
        return lid

    def register_metric(self, name: str) -> int:
        """Register a named scalar once; its id for :meth:`log_metric`, or -1."""
        mid = self._metrics.get(name)
        if mid is not None:
            return mid
        if self._h is None:
            return -1
        try:
            mid = self._lib.metric(self._h, name.encode("utf-8"))
        except Exception as e:
            self._fail("register_metric", "cannot register", "%r (%s)" % (name, e))
            return -1
        if mid < 0:
            self._fail("register_metric", mid, repr(name))
            return -1
        self._metrics[name] = mid
        return mid

    # ---- logging: everything at once -----------------------------------------

    def log(self, step: int, *, loss: Optional[Number] = None, grad_norm: Optional[Number] = None,
            lr: Optional[Number] = None, layers: Optional[Mapping[str, Number]] = None,
            weights: Optional[Mapping[str, Number]] = None,
            clip: Union[Tuple[Number, Number], Mapping[str, Number], None] = None,
            skipped: Optional[bool] = None, loss_scale: Optional[Number] = None,
            metrics: Optional[Mapping[str, Number]] = None, time: Optional[Number] = None,
            updates: Optional[Mapping[str, Number]] = None,
            adam_ratio: Optional[Mapping[str, Number]] = None) -> None:
        """Log any of a step's values; ``None`` (the default) means "no value".

        ``layers``, ``weights`` and ``updates`` map tensor names to gradient,
        weight and update norms, ``adam_ratio`` to ||g||^2 / sum(v) (Adam's
        second moment), ``metrics`` names to scalars; names are registered the first
        time they are seen.  ``clip`` is ``(max_norm, pre_norm)`` or a dict
        with those keys; ``grad_norm`` is the norm before clipping.
        ``skipped`` and ``loss_scale`` describe a mixed-precision step.
        Never raises: a value that cannot be logged is counted."""
        try:
            if loss is not None:
                self.log_loss(step, loss)
            if grad_norm is not None:
                self.log_grad_norm(step, grad_norm)
            if lr is not None:
                self.log_lr(step, lr)
            if layers:
                for name, v in layers.items():
                    lid = self._layers.get(name)
                    if lid is None:
                        lid = self.register_layer(name)
                    if lid >= 0:
                        self.log_layer_grad(step, lid, v)
            for values, f in ((weights, self.log_layer_weight), (updates, self.log_layer_update),
                              (adam_ratio, self.log_layer_adam_ratio)):
                for name, v in (values or {}).items():
                    lid = self._layers.get(name)
                    if lid is None:
                        lid = self.register_layer(name)
                    if lid >= 0:
                        f(step, lid, v)
            if clip is not None:
                if isinstance(clip, Mapping):
                    self.log_clip(step, clip["max_norm"], clip["pre_norm"])
                else:
                    self.log_clip(step, clip[0], clip[1])
            if skipped is not None or loss_scale is not None:
                self.log_skipped(step, bool(skipped), 0.0 if loss_scale is None else loss_scale)
            if metrics:
                for name, v in metrics.items():
                    mid = self._metrics.get(name)
                    if mid is None:
                        mid = self.register_metric(name)
                    if mid >= 0:
                        self.log_metric(step, mid, v)
            if time is not None:
                self.log_step_time(step, time)
        except Exception as e:
            self._fail("log", "cannot log", "(%s: %s)" % (type(e).__name__, e))

    # ---- waiting and closing ---------------------------------------------------

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything logged so far is accepted by the daemon, at
        most ``timeout`` seconds.  True if it was; else :attr:`last_status`
        says why (NO_DAEMON, TIMED_OUT, REFUSED)."""
        if self._h is None:
            return False
        rc = self._lib.flush(self._h, max(0, int(timeout * 1000)))
        self.last_status = Status.of(rc)
        return rc == 0

    def close(self, timeout: Optional[float] = None, *, failed: bool = False) -> bool:
        """Send what is left (within ``timeout`` seconds, else the run's
        ``close_timeout``), mark the run finished (or failed) and stop the
        sender.  True if everything arrived; :attr:`last_status` says why
        not (SPOOLED: the rest is in the spool file).  Closing again does
        nothing.  Watchers of the run (gradwatch.torch) log what they hold
        and stop first."""
        for f in list(self._on_close):
            try:
                f()
            except Exception:
                pass
        if self._silent:
            self._silent = False
            return True
        with self._close_lock:
            h = self._h
            if h is None:
                return False
            self._final_dropped = self._lib.dropped(h)
            self._h = None
        with _registry_lock:
            _open_runs.pop(id(self), None)
        if self._pid != os.getpid():
            return False                # a fork child's copy: the parent's to close
        t = self._close_timeout if timeout is None else timeout
        rc = self._lib.close_status(h, 1 if failed else 0, max(0, int(t * 1000)))
        self.last_status = Status.of(rc)
        return rc == 0

    def _disown(self) -> None:
        """In a fork child: forget the parent's handle without touching it."""
        self._h = None
        self._close_lock = threading.Lock()

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close(failed=exc_type is not None)


# The argument kinds of each logging call, for the conversion retry.
_KINDS: Dict[str, Tuple[type, ...]] = {
    "log_loss": (int, float), "log_grad_norm": (int, float), "log_lr": (int, float),
    "log_layer_grad": (int, int, float), "log_layer_weight": (int, int, float),
    "log_layer_update": (int, int, float), "log_layer_adam_ratio": (int, int, float),
    "log_metric": (int, int, float), "log_clip": (int, float, float),
    "log_skipped": (int, int, float), "log_step_time": (int, float),
}


# ---- spool files ---------------------------------------------------------------

@dataclass(frozen=True)
class SyncResult:
    """What :func:`sync` did.  True (as a bool) when everything went."""
    status: Status              # OK, or the first problem
    files: int                  # spool files found
    files_done: int             # sent in full and removed
    records: int                # records the daemon accepted
    values: int                 # the values in them
    refused: int                # records it refused (dropped)
    damaged_bytes: int          # torn or corrupt bytes skipped
    messages: List[str]         # what the library said, for people

    def __bool__(self) -> bool:
        return self.status == Status.OK


def sync(path: Union[str, "os.PathLike[str]", None] = None, url: Optional[str] = None,
         token: Optional[str] = None, timeout: float = 60.0) -> SyncResult:
    """Send spool files to the daemon, as ``gradwatch sync`` does: ``path``
    is a spool file or a directory of them (``*.gwspool``, oldest first;
    None: ``$GRADWATCH_SPOOL``, and GradwatchError when that is unset).
    Each file's records go in order, each until the daemon takes it
    (retrying while it is down or busy, for at most ``timeout`` seconds
    in all), and a file is removed once all of it was taken.  ``url`` and
    ``token`` default to $GRADWATCH_URL and $GRADWATCH_TOKEN.  Returns a
    :class:`SyncResult`; raises :class:`GradwatchError` only when the
    library cannot be loaded or there is no path.  Blocks (without the
    GIL)."""
    lib = _load()
    if path is None:
        path = os.environ.get("GRADWATCH_SPOOL") or None
        if path is None:
            raise GradwatchError("gradwatch: sync: no path given and $GRADWATCH_SPOOL is not set",
                                 Status.INVALID)
    messages: List[str] = []

    def say(_arg: Any, line: bytes) -> None:
        messages.append(_text(line))

    cb = _SAY_CB(say)
    opt = _Options(url=_to_bytes(url), token=_to_bytes(token))
    st = _SyncStats()
    ms = int(max(0.001, float(timeout)) * 1000)
    where = os.fsencode(os.path.expanduser(os.fspath(path)))
    rc = lib.sync(where, ctypes.byref(opt), min(ms, 2 ** 31 - 1), ctypes.byref(st), cb, None)
    return SyncResult(status=Status.of(rc), files=st.files, files_done=st.files_done, records=st.records,
                      values=st.values, refused=st.refused, damaged_bytes=st.damaged_bytes, messages=messages)
