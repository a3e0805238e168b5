"""CPU threads that fit the machine.

Two torch processes that each use every core slow each other down many times over (on 2 cores two trainings side by
side took 7.9x as long as one alone, `benchmarks/concurrent_runs.py`). Every dgm process that computes registers
itself (a small file per process in a per-user folder, removed when it ends), and a process without ``--threads``
uses its fair share of the cores: the cores divided by the dgm processes running, at least one, and never more than
it would have had alone (torch's count: the cores, or ``OMP_NUM_THREADS``). A training run without ``--threads``
looks again every few seconds (``adapt``), so it gives cores back when another dgm process starts and takes them
again when it ends.

The last bits of a CPU result depend on the thread count: a run is repeatable bit for bit, and a resumed run equals
an uninterrupted one, at a fixed ``--threads N`` (stored in config.json, so ``--resume`` uses it), or when it ran
alone.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator, Optional, Tuple

from .errors import DgmError

_alone: Optional[int] = None  # this process's torch thread count before dgm changed it
_adaptive = False             # apply(..., adaptive=True): adapt() may change the count
_at_exit = False


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _folder() -> Path:
    base = os.environ.get("DGM_RUNTIME_DIR") or os.path.join(tempfile.gettempdir(), f"dgm-{os.getuid()}")
    return Path(base) / "threads"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def others() -> int:
    """How many other live dgm processes of this user compute on this machine (stale files are removed)."""
    folder = _folder()
    if not folder.is_dir():
        return 0
    count = 0
    for f in folder.iterdir():
        if not f.name.isdigit() or int(f.name) == os.getpid():
            continue
        if _alive(int(f.name)):
            count += 1
        else:
            with contextlib.suppress(OSError):
                f.unlink()
    return count


def default_threads() -> Tuple[int, str]:
    """(threads, why): this process's fair share of the cores among the running dgm processes."""
    import torch

    alone = _alone if _alone is not None else torch.get_num_threads()
    k = others()
    n = max(1, min(alone, cores() // (k + 1)))
    return n, f"{n} thread(s): {cores()} cores shared by {k + 1} dgm process(es) (--threads N to choose)"


def check(threads: Optional[int]) -> None:
    if threads is not None and not 1 <= threads <= 4096:
        raise DgmError(f"--threads must be in 1..4096, got {threads}")


def apply(n: int, adaptive: bool = False) -> None:
    """Compute on ``n`` threads from now on, registered for other dgm processes to see (``release`` ends it);
    ``adaptive``: ``adapt`` may change the count to the fair share later."""
    global _alone, _adaptive, _at_exit
    import torch

    check(n)
    if _alone is None:
        _alone = torch.get_num_threads()
    _adaptive = adaptive
    torch.set_num_threads(n)
    folder = _folder()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / str(os.getpid())).write_text(str(n))
    except OSError:  # a read-only or full temp folder: threads still work, others just cannot see this process
        return
    if not _at_exit:
        atexit.register(_unregister)
        _at_exit = True


def adapt() -> int:
    """For a process applied with ``adaptive``: move to the fair share now (the other dgm processes may have started
    or ended); returns the thread count."""
    import torch

    if _adaptive:
        n = default_threads()[0]
        if n != torch.get_num_threads():
            apply(n, adaptive=True)
    return torch.get_num_threads()


def _unregister() -> None:
    with contextlib.suppress(OSError):
        (_folder() / str(os.getpid())).unlink()


def release(before: int) -> None:
    """Back to ``before`` threads, no longer registered nor adaptive."""
    global _alone, _adaptive
    import torch

    torch.set_num_threads(before)
    _unregister()
    _alone, _adaptive = None, False


@contextlib.contextmanager
def using(threads: Optional[int]) -> Iterator[int]:
    """Compute on ``threads`` threads (None: ``default_threads()``) inside the block, registered for other dgm
    processes to see; the thread count before the block is restored after it."""
    import torch

    check(threads)
    before = torch.get_num_threads()
    n = default_threads()[0] if threads is None else threads
    apply(n)
    try:
        yield n
    finally:
        release(before)


__all__ = ["cores", "others", "default_threads", "check", "apply", "adapt", "release", "using"]
