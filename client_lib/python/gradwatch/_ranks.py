# SPDX-License-Identifier: MIT
"""Which process of a distributed job this is, and the job's one run key.

A job of N processes (torchrun, SLURM, MPI, torch.distributed) is one
run: rank 0 sends, the others are silent.  The rank comes from
torch.distributed when it is initialised, else from the launcher's
environment.  The key, when the user gives none, is made by rank 0 and
published in torch.distributed's key-value store, where the other ranks
look it up when they need it; nothing here is a collective, so a script
that opens its run on rank 0 only does not hang."""
from __future__ import annotations

import os
import sys
from typing import Any, Dict, Optional, Tuple

_STORE_KEY = "gradwatch/run-key"
_ENV = (("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"),          # torchrun
        ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE"),
        ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
         "OMPI_COMM_WORLD_LOCAL_SIZE"),
        ("PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS"))


def _dist() -> Any:
    """torch.distributed when the program imported it and it is initialised."""
    d = sys.modules.get("torch.distributed")
    try:
        if d is not None and d.is_available() and d.is_initialized():
            return d
    except Exception:
        pass
    return None


def _int(name: Optional[str]) -> Optional[int]:
    try:
        return int(os.environ[name]) if name else None
    except (KeyError, ValueError):
        return None


def where() -> Dict[str, Any]:
    """{"rank", "world_size", "local_rank", "local_world_size", "backend",
    "source"} of this process; world_size 1 outside a job."""
    d = _dist()
    if d is not None:
        out = {"rank": d.get_rank(), "world_size": d.get_world_size(), "source": "torch.distributed"}
        try:
            out["backend"] = str(d.get_backend())
        except Exception:
            pass
        out["local_rank"] = _int("LOCAL_RANK")
        out["local_world_size"] = _int("LOCAL_WORLD_SIZE")
        return out
    for rank, size, local, lsize in _ENV:
        r, n = _int(rank), _int(size)
        if r is not None and n is not None and n > 1:
            return {"rank": r, "world_size": n, "local_rank": _int(local),
                    "local_world_size": _int(lsize), "source": rank}
    return {"rank": 0, "world_size": 1, "source": None}


def _store() -> Any:
    d = _dist()
    if d is None:
        return None
    try:
        return d.distributed_c10d._get_default_store()
    except Exception:
        return None


def publish_key(key: str) -> None:
    """Rank 0: make key the job's run key for the other ranks."""
    st = _store()
    if st is not None:
        try:
            st.set(_STORE_KEY, key)
            st.add(_STORE_KEY + "/set", 1)      # a counter the others read without waiting
        except Exception:
            pass


def lookup_key() -> Optional[str]:
    """Another rank: rank 0's run key if it was published, else None;
    never waits."""
    st = _store()
    if st is None:
        return None
    try:
        if st.add(_STORE_KEY + "/set", 0) > 0:  # (check() is missing from torch 1.13's stores)
            return st.get(_STORE_KEY).decode("utf-8", "replace")
    except Exception:
        pass
    return None


def meta_of(w: Dict[str, Any]) -> Dict[str, Any]:
    """The run's meta.distributed for a job (what rank 0 sends)."""
    out = {"world_size": w["world_size"], "rank": w["rank"]}
    for k in ("local_world_size", "backend", "source"):
        if w.get(k) is not None:
            out[k] = w[k]
    return out


def split(w: Dict[str, Any]) -> Tuple[bool, int, int]:
    """(is the sending rank, rank, world size)."""
    return w["rank"] == 0, w["rank"], w["world_size"]
