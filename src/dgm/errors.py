"""User-facing errors: one line that says what is wrong and how to fix it."""


class DgmError(Exception):
    """A mistake in the user's input (bad option, missing file, corrupt data).

    The CLI prints ``dgm: error: <message>`` and exits with status 2, without a traceback
    (``--debug`` shows it).
    """


def checkpoint_mismatch(exc: RuntimeError, path=None) -> DgmError:
    """The one line for ``load_state_dict``'s error on weights that do not fit the model built from the config."""
    import re

    text = str(exc)
    m = re.search(r"size mismatch for ([\w.]+): copying a param with shape torch.Size\((\[.*?\])\) from checkpoint, "
                  r"the shape in current model is torch.Size\((\[.*?\])\)", text)
    if m:
        detail = f"{m.group(1)} is {m.group(2)} in the checkpoint, {m.group(3)} in the model"
    else:
        m = re.search(r"(Missing|Unexpected) key\(s\) in state_dict: ([^\n]*)", text)
        detail = f"{m.group(1).lower()} tensors {m.group(2).strip().rstrip('.')[:80]}" if m else "its tensors do not fit"
    where = f"{path}: " if path is not None else ""
    return DgmError(f"{where}this checkpoint was written by another model or config ({detail}); use it with the "
                    "run that wrote it")


def is_memory_error(exc: BaseException) -> bool:
    """A failed allocation: Python's MemoryError, or torch's allocator error (CPU or CUDA)."""
    if isinstance(exc, MemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(
        s in str(exc) for s in ("can't allocate memory", "out of memory", "not enough memory"))


def free_memory() -> "int | None":
    """Bytes this process may still allocate: the machine's available memory (/proc/meminfo), or less under an
    address-space limit (RLIMIT_AS); None where neither can be read."""
    free = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    free = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            with open("/proc/self/statm") as f:
                used = int(f.read().split()[0]) * resource.getpagesize()
            free = max(soft - used, 0) if free is None else min(free, max(soft - used, 0))
    except (ImportError, OSError, ValueError, IndexError):
        pass
    return free


def human_bytes(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"


def _tried(exc: BaseException) -> str:
    """' (an allocation of 4.0 GB failed)' when the allocator said how much it was asked for, else ''."""
    import re

    m = re.search(r"tried to allocate (\d+(?:\.\d+)?) ?(bytes|[KMGT]iB)", str(exc))
    if not m:
        return ""
    scale = {"bytes": 1, "KiB": 2 ** 10, "MiB": 2 ** 20, "GiB": 2 ** 30, "TiB": 2 ** 40}[m.group(2)]
    return f" (an allocation of {human_bytes(float(m.group(1)) * scale)} failed)"


class allocating:
    """``with allocating(WHAT, FIX):`` -- a memory error inside the block becomes one DgmError line saying what was
    being allocated, how large the failed allocation was (when the allocator says) and the flag that controls it:
    ``not enough memory drawing 64 samples (an allocation of 4.0 GB failed); lower -n``. The innermost block names
    the error (an outer one passes the DgmError through)."""

    def __init__(self, what: str, fix: str):
        self.what, self.fix = what, fix

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is not None and not isinstance(exc, DgmError) and is_memory_error(exc):
            raise DgmError(f"not enough memory {self.what}{_tried(exc)}; {self.fix}") from None
        return False


def user_fault(exc: BaseException) -> "DgmError | None":
    """The one-line DgmError for an exception a user can cause outside dgm's own checks, else None.

    For the CLI boundary: OS errors (full disk, read-only or missing folders, a file where a folder is
    expected) and memory errors from absurd sizes are the user's to fix, so they get what happened and
    what to do; anything else is a bug and keeps its traceback.
    """
    import errno as _errno

    if isinstance(exc, DgmError):
        return exc
    if is_memory_error(exc):
        return DgmError(f"not enough memory{_tried(exc)} (dgm did not say for what: please report it); lower -n, "
                        "--batch-size or the model's size")
    if isinstance(exc, RuntimeError) and "Error(s) in loading state_dict" in str(exc):
        return checkpoint_mismatch(exc)
    if not isinstance(exc, OSError):
        return None
    code = exc.errno
    if code is None:  # no system error: a library could not read a file (e.g. PIL: not an image, truncated)
        what = str(exc) or type(exc).__name__
        named = f"{exc.filename}: " if exc.filename is not None and str(exc.filename) not in what else ""
        return DgmError(f"{named}{what}; a file could not be read (damaged, or not the format expected)")
    where = exc.filename if exc.filename is not None else "a file"
    if code == _errno.ENOSPC or code == getattr(_errno, "EDQUOT", -1):
        return DgmError(f"no space left on the device writing {where}; free some space or write elsewhere")
    if code in (_errno.EROFS, _errno.EACCES, _errno.EPERM):
        return DgmError(f"cannot write {where} ({exc.strerror or 'permission denied'}); choose a folder you can "
                        "write to or fix its permissions")
    if code == _errno.ENOTDIR or isinstance(exc, NotADirectoryError):
        return DgmError(f"{where}: a file is in the way where a folder is expected; choose another path")
    if code == _errno.EISDIR:
        return DgmError(f"{where} is a folder; give a file name")
    if code == _errno.EEXIST:
        return DgmError(f"{where} already exists and is in the way; choose another path or remove it")
    if code == _errno.ENOENT:
        return DgmError(f"{where}: no such file or folder; check the path (does its parent folder exist?)")
    if code == _errno.ENAMETOOLONG:
        return DgmError(f"{where}: file name too long; choose a shorter path")
    return DgmError(f"{where}: {exc.strerror or type(exc).__name__}; check the path and the disk")
