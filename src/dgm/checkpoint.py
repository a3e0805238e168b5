"""Checkpoints: atomic writes, keep-last-K, safe loading (weights_only), every RNG state."""
from __future__ import annotations

import contextlib
import os
import pickle
import random
import re
import warnings
from pathlib import Path
from typing import IO, Any, Dict, Iterator, List, Optional

import numpy as np
import torch

from .errors import DgmError

_NAME = re.compile(r"^ckpt-(\d{8})\.pt$")


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"ckpt-{step:08d}.pt"


def best_path(run_dir: Path) -> Path:
    """The best-on-validation checkpoint (written when the run evaluates; never pruned)."""
    return Path(run_dir) / "checkpoints" / "best.pt"


def resolve(run_dir: Path, which: Optional[str] = None) -> Path:
    """'latest' (default), 'best', or a file path -> the checkpoint file to load."""
    if which in (None, "latest"):
        path = latest_checkpoint(run_dir)
        if path is None:
            raise DgmError(f"{run_dir} has no checkpoint yet (checkpoints/ is empty); train it first")
        return path
    if which == "best":
        path = best_path(run_dir)
        if not path.is_file():
            raise DgmError(f"{run_dir} has no best.pt (it is written at each validation); use --checkpoint latest "
                           "or train with --eval-every N")
        return path
    return Path(which)


def list_checkpoints(run_dir: Path) -> List[Path]:
    """Checkpoint files of a run, oldest first."""
    d = Path(run_dir) / "checkpoints"
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: Path) -> Optional[Path]:
    ckpts = list_checkpoints(run_dir)
    return ckpts[-1] if ckpts else None


@contextlib.contextmanager
def atomic_file(path: Path, mode: str = "wb") -> Iterator[IO]:
    """Open ``PATH.tmp`` for writing; when the block ends, fsync it and rename it over ``path``.

    Readers see the old file or the new one, never half of one. On any failure (disk full, an exception, an
    interrupt) the temporary file is removed and ``path`` keeps its old content; only SIGKILL or power loss can
    leave a ``*.tmp`` behind (``remove_stale_tmp`` clears those once the writer lock is held again).
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def remove_stale_tmp(run_dir: Path) -> None:
    """Delete the temporary files a killed writer left in a run folder (call only while holding its lock)."""
    run_dir = Path(run_dir)
    for d in (run_dir, run_dir / "checkpoints"):
        if d.is_dir():
            for p in d.glob("*.tmp"):
                with contextlib.suppress(OSError):
                    p.unlink()


def save_atomic(state: Dict[str, Any], path: Path) -> None:
    """Write a checkpoint to a temporary file in the same folder, fsync, then rename over the target."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, "wb") as f:
        torch.save(state, f)


def prune(run_dir: Path, keep_last: int) -> None:
    for p in list_checkpoints(run_dir)[:-keep_last]:
        p.unlink(missing_ok=True)


def load_checkpoint(path: Path, map_location="cpu") -> Dict[str, Any]:
    """Load with ``weights_only=True``: tensors and plain containers only, never arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise DgmError(f"no checkpoint file {path}")
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols would be lines of their own
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise DgmError(f"{path}: refused to load: it holds Python objects, not only tensors ({_unpickle_reason(e)}); "
                       "dgm never runs code from a file: use a checkpoint dgm wrote") from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise DgmError(f"{path}: unreadable or corrupt checkpoint ({type(e).__name__}); "
                       "resume from an older one in the same folder or retrain") from None
    if not isinstance(state, dict) or "model" not in state:
        raise DgmError(f"{path}: not a dgm checkpoint (no model weights inside)")
    return state


def _unpickle_reason(e: Exception) -> str:
    """The part of torch's weights-only refusal that says what was found (its advice to load with weights_only=False
    would run the file's code, so it is left out)."""
    text = str(e)
    m = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n\n|$)", text, re.S)
    reason = " ".join((m.group(1) if m else text.strip().splitlines()[0] if text.strip() else type(e).__name__).split())
    reason = reason.split(". ")[0].rstrip(".")  # what was found; not torch's advice that follows
    return reason if len(reason) <= 200 else reason[:reason.rfind(" ", 0, 200)] + " ..."


def plain_names(weights: Dict[str, Any]) -> Dict[str, Any]:
    """``weights`` with the ``_orig_mod.`` that a ``torch.compile``-d module's state_dict puts in its names taken out
    (dgm saves the model's own state_dict, never a compiled wrapper's; this reads one written by other code)."""
    if not any("_orig_mod." in k for k in weights):
        return weights
    return {k.replace("_orig_mod.", ""): v for k, v in weights.items()}


def load_weights(module: torch.nn.Module, weights: Dict[str, Any], path: Path) -> None:
    """``module.load_state_dict(weights)``; weights of another model or config end in a one-line DgmError."""
    try:
        module.load_state_dict(plain_names(weights))
    except (RuntimeError, KeyError, TypeError, ValueError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[-1].strip()
        raise DgmError(f"{path}: this checkpoint was written by another model or config ({first[:160]}); "
                       "pass the run it belongs to") from None


# -- RNG state, stored as tensors and plain numbers so that weights_only loading accepts it --------
def rng_state() -> Dict[str, Any]:
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
        "python": {"version": py_state[0], "state": list(py_state[1]), "gauss": py_state[2]},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    """Restore ``rng_state()``; its tensors may have been loaded onto a GPU (map_location), RNG states live on the host."""
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].cpu().numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
