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


def user_fault(exc: BaseException) -> "DgmError | None":
    """The one-line DgmError for an exception a user can cause outside dgm's own checks, else None.

    For the CLI boundary: OS errors (full disk, read-only or missing folders, a file where a folder is
    expected) and memory errors from absurd sizes are the user's to fix, so they get what happened and
    what to do; anything else is a bug and keeps its traceback.
    """
    import errno as _errno

    if isinstance(exc, DgmError):
        return exc
    if isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and any(
            s in str(exc) for s in ("can't allocate memory", "out of memory", "not enough memory"))):
        return DgmError("not enough memory for these sizes; lower -n, --batch-size or the model's width")
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
