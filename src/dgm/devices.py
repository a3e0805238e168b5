"""Which devices exist here, and a one-line refusal of a --device that does not."""
from __future__ import annotations

from typing import List

from .errors import DgmError


def available() -> List[str]:
    """The device names this machine can run on: cpu, then cuda:0..N-1 and mps where PyTorch sees them."""
    import torch

    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    return names


def check_device(name: str, auto: bool = False) -> str:
    """``name`` if it is a device of this machine (``cuda`` = ``cuda:0``; ``auto`` where ``auto`` is allowed),
    else a DgmError naming the devices that exist."""
    here = available()
    ok = (name == "auto" and auto) or name in here or (name == "cuda" and "cuda:0" in here)
    if not ok:
        words = ("auto, " if auto else "") + ", ".join(here + (["cuda"] if "cuda:0" in here else []))
        raise DgmError(f"--device {name}: no such device on this machine; devices here: {words}")
    return name
