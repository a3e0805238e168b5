"""Which devices exist here, and a one-line refusal of a --device that does not (or of --amp on a CPU without
native bf16)."""
from __future__ import annotations

import re
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


#: what benchmarks/amp_compile.py measured for bf16 autocast against float32 on a CPU without native bf16
CPU_BF16_MEASURED = "trained at 0.07-0.30x the images/s of float32 (4 models, 2 runs, AVX2 AMD EPYC, 2026-12-07)"


def cpu_native_bf16() -> bool:
    """True where the CPU computes in bf16 natively: the avx512_bf16 or amx_bf16 flag in /proc/cpuinfo (Linux; other
    systems: False) and PyTorch built with oneDNN, whose kernels use them."""
    import torch

    try:
        with open("/proc/cpuinfo") as f:
            flags = set(re.findall(r"\w+", " ".join(ln for ln in f if ln.startswith("flags"))))
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"}) and torch.backends.mkldnn.is_available()


def check_cpu_amp() -> None:
    """Refuse --amp on a CPU, in one line, unless it has native bf16 (``cpu_native_bf16``)."""
    if not cpu_native_bf16():
        raise DgmError(f"--amp on this CPU: it has no native bf16 (avx512_bf16 or AMX), and bf16 autocast without it "
                       f"was measured slower: {CPU_BF16_MEASURED}, benchmarks/amp_compile.py; --amp is offered on CUDA "
                       "and on CPUs with native bf16: drop --amp")
