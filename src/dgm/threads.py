"""CPU threads that fit the machine.

Two torch processes that each use every core slow each other down several times over (on 2 cores a training run
took 2.6x as long beside one other busy process, against ~1.2x with one thread each). Every dgm process that
computes registers how many threads it uses (a small file per process in a per-user folder, removed when it ends),
and a process started without ``--threads`` takes the cores the others leave free, at least one, and never more
than it would have had alone (torch's count: the cores, or ``OMP_NUM_THREADS``). Two processes started within the
same instant may both see the machine free.

A training run stores its count in config.json, so that ``--resume`` computes with the same number of threads (the
last bits of a CPU result depend on it); ``--threads N`` chooses it.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator, Optional, Tuple

from .errors import DgmError


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


def used_by_others() -> int:
    """Threads registered by the other live dgm processes of this user on this machine (stale files removed)."""
    total = 0
    folder = _folder()
    if not folder.is_dir():
        return 0
    for f in folder.iterdir():
        try:
            pid, n = int(f.name), int(f.read_text().strip() or 0)
        except (ValueError, OSError):
            continue
        if pid == os.getpid():
            continue
        if _alive(pid):
            total += max(n, 0)
        else:
            with contextlib.suppress(OSError):
                f.unlink()
    return total


def default_threads() -> Tuple[int, str]:
    """(threads, why): the cores other dgm processes leave free, at least 1, at most this process's torch count."""
    import torch

    alone = torch.get_num_threads()
    others = used_by_others()
    n = max(1, min(alone, cores() - others))
    return n, f"{n} thread(s): {cores()} cores, {others} used by other dgm processes (--threads N to choose)"


def check(threads: Optional[int]) -> None:
    if threads is not None and not 1 <= threads <= 4096:
        raise DgmError(f"--threads must be in 1..4096, got {threads}")


_at_exit = False


def apply(n: int) -> None:
    """Compute on ``n`` threads from now on, registered for other dgm processes to see (``release`` ends it)."""
    global _at_exit
    import torch

    check(n)
    torch.set_num_threads(n)
    folder = _folder()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / str(os.getpid())).write_text(str(n))
    except OSError:  # a read-only or full temp folder: threads still work, others just cannot see them
        return
    if not _at_exit:
        atexit.register(_unregister)
        _at_exit = True


def _unregister() -> None:
    with contextlib.suppress(OSError):
        (_folder() / str(os.getpid())).unlink()


def release(before: int) -> None:
    """Back to ``before`` threads, and no longer registered."""
    import torch

    torch.set_num_threads(before)
    _unregister()


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


__all__ = ["cores", "used_by_others", "default_threads", "check", "apply", "release", "using"]
