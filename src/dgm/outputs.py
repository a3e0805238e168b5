"""Files a command writes: refuse an output path that cannot be written before any work is done, and leave nothing
half written when a command fails."""
from __future__ import annotations

import contextlib
from pathlib import Path

from .errors import DgmError


#: what a run folder holds that no output flag may replace (its checkpoints/ folder is protected as a whole)
RUN_FILES = ("config.json", "metrics.jsonl", ".dgm.lock")


def check_output(path, flag: str, make_parent: bool = False, inputs=()) -> None:
    """Refuse, before any work is done, an output file whose folder cannot hold it (``make_parent``: missing
    folders are made, as for `dgm sample --out`), one inside a run folder's checkpoints/ or over its config,
    metrics or lock, and one that is one of the command's ``inputs`` (a checkpoint file being read)."""
    p = Path(path)
    if p.is_dir():
        raise DgmError(f"{flag} {path} is a folder; give a file name")
    resolved = p.resolve()
    run = resolved.parent.parent if resolved.parent.name == "checkpoints" else resolved.parent
    if (run / "config.json").is_file() and (resolved.parent.name == "checkpoints" or resolved.name in RUN_FILES):
        raise DgmError(f"{flag} {path} would write into the run folder {run}'s own files (checkpoints, config, "
                       "metrics); choose another path, e.g. in its samples/ folder")
    if any(resolved == Path(i).resolve() for i in inputs if i is not None):
        raise DgmError(f"{flag} {path} is the file this command reads; choose another path")
    folder = p.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if folder.exists() and not folder.is_dir():
        raise DgmError(f"{flag} {path}: {folder} is a file, not a folder; choose another path")
    if folder != p.parent and not make_parent:
        raise DgmError(f"{flag} {path}: the folder {p.parent} does not exist; create it or choose another path")


@contextlib.contextmanager
def undo_on_failure(*paths):
    """Remove again the files among ``paths`` (and the folders made for them) that a failing command created,
    so that a failure (a full disk, a refused option) leaves nothing half written."""
    new = [Path(p) for p in paths if p is not None and not Path(p).exists()]
    made = set()
    for p in new:
        d = p.parent
        while not d.exists() and d != d.parent:
            made.add(d)
            d = d.parent
    try:
        yield
    except BaseException:
        for p in new:
            with contextlib.suppress(OSError):
                p.unlink()
        for d in sorted(made, key=lambda d: len(d.parts), reverse=True):
            with contextlib.suppress(OSError):
                d.rmdir()
        raise


__all__ = ["check_output", "undo_on_failure"]
