"""The on-disk cache of the real images' features: verified on every read, never trusted.

Each entry is one ``.npz`` holding the arrays and a ``meta`` record: the cache key (a hash of the exact real
pixels and the feature network), and for every array its shape, dtype and the sha256 of its bytes. A read
returns the arrays only when all of that matches what this evaluation expects and every value is finite;
anything else (a truncated or altered file, rows or a dimension that do not fit, NaN) is ignored with a
one-line warning on stderr and the caller recomputes.

Threat model (docs/evaluation.md): the cache lives under the user's own home by default. When the cache folder
is shared, another user could plant an entry under the expected name with features of their choosing; the
digest cannot stop that (anyone can compute it), so an entry is only read when the current user owns it and
nobody else can write to it, and entries are only written into a folder that nobody else can write to.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import Dict, Optional

import numpy as np

FORMAT = 2  # version of the entry layout; part of the key, so older entries are simply never read


def cache_dir() -> Path:
    """$DGM_CACHE_DIR, else $XDG_CACHE_HOME/dgm, else ~/.cache/dgm."""
    if os.environ.get("DGM_CACHE_DIR"):
        return Path(os.environ["DGM_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dgm"


def warn(message: str) -> None:
    """One line on stderr (the cache never stops an evaluation)."""
    print(f"dgm: warning: {message}", file=sys.stderr)


def _describe(a: np.ndarray) -> Dict:
    return {"shape": list(a.shape), "dtype": str(a.dtype),
            "sha256": hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()}


def _private(st: os.stat_result) -> Optional[str]:
    """None when a file or folder belongs to this user and only this user can write to it; else why not."""
    getuid = getattr(os, "getuid", None)
    if getuid is not None and st.st_uid != getuid():
        return f"it belongs to another user (uid {st.st_uid})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "other users can write to it"
    return None


def load(path: Path, key: str, expect: Dict[str, tuple]) -> Optional[Dict[str, np.ndarray]]:
    """The arrays of the entry at ``path`` when it is this user's, was written for ``key`` and holds arrays of the
    expected shapes (``expect``: name -> shape) whose bytes match their recorded digests, all finite; else None
    (with a one-line warning when a file was there but could not be used)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError as e:
        warn(f"ignoring the feature cache entry {path} ({e.strerror}); recomputing")
        return None
    why = None
    try:
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            why = _private(st) if stat.S_ISREG(st.st_mode) else "not a regular file"
            if why is None:
                with np.load(f, allow_pickle=False) as z:
                    meta = json.loads(str(z["meta"]))
                    arrays = {name: z[name] for name in expect}
    except Exception as e:  # truncated, not a zip, missing arrays, bad JSON: all the same to the reader
        why = f"unreadable: {type(e).__name__}"
    if why is None:
        why = _mismatch(meta, arrays, key, expect)
    if why is not None:
        warn(f"ignoring the feature cache entry {path} ({why}); recomputing")
        return None
    return arrays


def _mismatch(meta, arrays: Dict[str, np.ndarray], key: str, expect: Dict[str, tuple]) -> Optional[str]:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("key") != key:
        return "written for other images or another feature network"
    for name, shape in expect.items():
        a, want = arrays[name], meta.get("arrays", {}).get(name)
        if tuple(a.shape) != tuple(shape):
            return f"{name} has shape {tuple(a.shape)}, expected {tuple(shape)}"
        if want != _describe(a):
            return f"{name} does not match its recorded shape, dtype and sha256"
        if not np.isfinite(a).all():
            return f"{name} holds NaN or infinite values"
    return None


def store(path: Path, key: str, arrays: Dict[str, np.ndarray]) -> None:
    """Write an entry atomically (a private temporary file renamed over ``path``); a folder other users can write
    to, or any OS error, is a one-line warning and no entry: the evaluation goes on."""
    folder = path.parent
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        why = _private(os.stat(folder))
        if why is not None:
            warn(f"not writing to the feature cache {folder} ({why}); set DGM_CACHE_DIR to a private folder")
            return
        meta = {"format": FORMAT, "key": key, "arrays": {n: _describe(a) for n, a in arrays.items()}}
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=path.name + ".", suffix=".tmp")  # mode 0600
        with os.fdopen(fd, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta)), **arrays)
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        warn(f"could not write the feature cache entry {path} ({e.strerror or e}); results are not affected")
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


__all__ = ["cache_dir", "load", "store", "FORMAT"]
