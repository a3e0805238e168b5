"""One writer per run folder: an exclusive lock file ``RUN/.dgm.lock`` holding pid, host and start time.

Two ``dgm train --out D`` at once, or a ``--resume`` into a run that is still training, would interleave
checkpoints and logs. The first process creates the lock file with ``O_CREAT | O_EXCL`` (atomic on local
file systems) before anything else is written; a second one gets a one-line error naming the holder.
The lock is released on every exit path (return, exception, SIGINT/SIGTERM turned into exceptions); a
lock left by a process that died without cleaning up (SIGKILL, power loss) is recognised as stale when its
pid no longer runs on this host, and taken over. ``claim_new`` picks and locks a fresh folder in one step, so
two trainings started at once without ``--out`` never choose the same ``runs/MODEL-DATA-N``.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, List, Optional

from .errors import DgmError

LOCK_NAME = ".dgm.lock"


class LockedError(DgmError):
    """The run folder is locked by another process (live, on another host, or with an unreadable lock file)."""


def _pid_alive(pid: int) -> bool:
    """True when a process with this pid exists on this machine (signal 0 probes without sending)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return True
    return True


def _read_holder(path: Path) -> Optional[dict]:
    """The lock file's record, or None when it is empty or not ours (a writer may be mid-way: retry briefly)."""
    for _ in range(20):
        try:
            text = path.read_text()
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError):  # binary garbage is unreadable too
            return None
        if text.strip():
            try:
                rec = json.loads(text)
            except json.JSONDecodeError:
                return None
            ok = isinstance(rec, dict) and isinstance(rec.get("pid"), int) and not isinstance(rec.get("pid"), bool) \
                and 0 < rec["pid"] < 2 ** 31 and isinstance(rec.get("host"), str)
            return rec if ok else None  # a record dgm did not write (absurd pid, no host): unreadable
        time.sleep(0.05)
    return None


def _os_error(run_dir: Path, e: OSError) -> DgmError:
    """A one-line error for a run folder that cannot be created or written."""
    if isinstance(e, (NotADirectoryError, FileExistsError)) and not run_dir.is_dir():
        return DgmError(f"--out {run_dir}: a file (not a folder) is in the way; choose another --out or remove it")
    why = e.strerror or type(e).__name__
    return DgmError(f"cannot write to run folder {run_dir} ({why}); choose a writable --out or fix its permissions")


class RunLock:
    """The exclusive writer lock of one run folder; use as a context manager or ``acquire()``/``release()``."""

    def __init__(self, run_dir) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._token: Optional[str] = None
        self._created: List[Path] = []
        self._old_term = None

    def _make_dirs(self) -> None:
        missing, d = [], self.run_dir
        while not d.exists() and d != d.parent:
            missing.append(d)
            d = d.parent
        for d in reversed(missing):
            try:
                d.mkdir()
            except FileExistsError:  # another process made it meanwhile: not ours to remove
                continue
            self._created.append(d)

    def acquire(self) -> "RunLock":
        """Take the lock or raise a DgmError naming the process that holds it."""
        try:
            self._make_dirs()
            for _ in range(3):  # a stale lock is removed once and the creation retried
                try:
                    fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                except FileExistsError:
                    self._check_holder()
                    continue
                self._token = f"{os.getpid()}-{time.time_ns()}"
                record = {"pid": os.getpid(), "host": socket.gethostname(), "token": self._token,
                          "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
                try:
                    os.write(fd, (json.dumps(record) + "\n").encode())
                finally:
                    os.close(fd)
                break
            else:
                raise DgmError(f"cannot take the lock {self.path}: it keeps reappearing; is another dgm starting here?")
        except OSError as e:
            self._remove_created()
            raise _os_error(self.run_dir, e) from None
        except BaseException:
            self._remove_created()
            raise
        self._trap_sigterm()
        return self

    def try_acquire(self) -> bool:
        """Take the lock if no other process holds it; False (nothing taken) when one does."""
        try:
            self.acquire()
        except LockedError:
            return False
        return True

    def _check_holder(self) -> None:
        """Remove a stale lock (dead pid on this host); raise the one-line error for a live holder."""
        rec = _read_holder(self.path)
        if rec == {}:  # vanished meanwhile: retry
            return
        if rec is None:
            raise LockedError(f"{self.run_dir} is locked by {self.path}, which is unreadable; if no dgm process writes "
                           f"to this folder, delete {self.path} and retry")
        pid, host = rec.get("pid"), rec.get("host")
        if host == socket.gethostname() and isinstance(pid, int) and not _pid_alive(pid):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)  # stale: its process is gone
            return
        where = f"pid {pid} on {host}, started {rec.get('started', '?')}"
        fix = ("wait for it to finish or stop it, then retry" if host == socket.gethostname() else
               f"wait for it to finish; if that process is gone, delete {self.path}")
        raise LockedError(f"{self.run_dir} is being written by another dgm process ({where}); {fix}, "
                       "or choose another --out")

    def _trap_sigterm(self) -> None:
        """SIGTERM (default: die at once) becomes SystemExit, so `finally` blocks release the lock."""
        if threading.current_thread() is not threading.main_thread():
            return
        with contextlib.suppress(ValueError, OSError):
            if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
                self._old_term = signal.signal(signal.SIGTERM, _terminate)

    def release(self) -> None:
        """Remove the lock file if it is still ours, and folders made by acquire() that stayed empty."""
        if self._token is None:
            return
        rec = _read_holder(self.path)
        if rec and rec.get("token") == self._token:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        self._token = None
        if self._old_term is not None:
            with contextlib.suppress(ValueError, OSError):
                signal.signal(signal.SIGTERM, self._old_term)
            self._old_term = None
        self._remove_created()

    def _remove_created(self) -> None:
        for d in reversed(self._created):
            with contextlib.suppress(OSError):
                d.rmdir()  # only succeeds when nothing was written into it
        self._created = []

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _terminate(signum, frame) -> None:
    raise SystemExit(128 + signum)


def is_main_rank() -> bool:
    """Distributed runs share one folder: only rank 0 (or a single process) takes the lock."""
    return int(os.environ.get("RANK", "0") or 0) == 0


@contextlib.contextmanager
def run_lock(run_dir) -> Iterator[Optional[RunLock]]:
    """Hold the writer lock of `run_dir` for the duration of the block (no-op on ranks other than 0)."""
    if not is_main_rank():
        yield None
        return
    with RunLock(run_dir) as lock:
        yield lock


def claim_new(base, taken: Callable[[Path], bool]) -> RunLock:
    """Lock the first folder of BASE, BASE-2, BASE-3, ... that no other process holds and that is not ``taken``
    (already holds a run). Taking the lock is what reserves a folder, so two processes starting at once get
    different ones; ``taken`` is checked again under the lock, since a run may have finished there meanwhile."""
    base = Path(base)
    for k in itertools.count(1):
        path = base if k == 1 else base.with_name(f"{base.name}-{k}")
        if taken(path):
            continue
        lock = RunLock(path)
        if not lock.try_acquire():
            continue
        if taken(path):
            lock.release()
            continue
        return lock
    raise AssertionError("unreachable")
