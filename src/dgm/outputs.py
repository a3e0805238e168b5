"""Files a command writes: refuse an output path that cannot be written before any work is done, and leave nothing
half written when a command fails."""
from __future__ import annotations

import contextlib
from pathlib import Path

from ._version import __version__
from .errors import DgmError


#: what a run folder holds that no output flag may replace (its checkpoints/ folder is protected as a whole)
RUN_FILES = ("config.json", "metrics.jsonl", ".dgm.lock")


#: how dgm marks the files its output flags write (a PNG's "Software" text, a WAV's INFO/ISFT chunk, an .npz key),
#: so that a later command may replace them without --force
MARK = "dgm"
_WAV_MARK = b"LIST" + (4 + 8 + 4).to_bytes(4, "little") + b"INFO" + b"ISFT" + (4).to_bytes(4, "little") + b"dgm\0"


def png_info():
    """The PIL ``pnginfo`` of a PNG dgm writes."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Software", f"{MARK} {__version__}")
    return info


def savefig(fig, path, **kwargs) -> None:
    """matplotlib's ``fig.savefig(path, **kwargs)``, a PNG marked as dgm's."""
    meta = {"Software": f"{MARK} {__version__}"} if Path(path).suffix.lower() == ".png" else None
    fig.savefig(path, metadata=meta, **kwargs)


def mark_wav(path) -> None:
    """Append an INFO chunk naming dgm to a WAV file just written (readers skip chunks after the data)."""
    with open(path, "r+b") as f:
        f.seek(0, 2)
        end = f.tell()
        if end % 2:
            f.write(b"\0")
            end += 1
        f.write(_WAV_MARK)
        f.seek(4)
        f.write((end + len(_WAV_MARK) - 8).to_bytes(4, "little"))


def save_tensor(x, path) -> None:
    """``torch.save(x, path)``, the file marked as dgm's by its zip comment (torch.load reads it unchanged)."""
    import zipfile

    import torch

    torch.save(x, path)
    with zipfile.ZipFile(path, "a") as z:
        z.comment = f"{MARK} {__version__}".encode()


def made_by_dgm(path) -> bool:
    """Whether the file at ``path`` is one dgm wrote for an output (then replacing it loses nothing of the user's)."""
    p = Path(path)
    suffix = p.suffix.lower()
    try:
        if suffix == ".png":
            from PIL import Image

            with Image.open(p) as im:
                return str(im.info.get("Software", "")).startswith(MARK + " ")
        if suffix == ".wav":
            with open(p, "rb") as f:
                f.seek(max(p.stat().st_size - len(_WAV_MARK), 0))
                return f.read() == _WAV_MARK
        if suffix == ".pt":
            import zipfile

            with zipfile.ZipFile(p) as z:
                return z.comment.startswith(MARK.encode() + b" ")
        if suffix == ".npz":
            import numpy as np

            with np.load(p, allow_pickle=False) as z:
                return "dgm_version" in z.files
    except Exception:  # unreadable: not one of dgm's  # noqa: BLE001
        return False
    return False


def check_output(path, flag: str, make_parent: bool = False, inputs=(), force: "bool | None" = None) -> None:
    """Refuse, before any work is done, an output file whose folder cannot hold it (``make_parent``: missing
    folders are made, as for `dgm sample --out`), one inside a run folder's checkpoints/ or over its config,
    metrics or lock, and one that is one of the command's ``inputs`` (a checkpoint file being read). With ``force``
    False, also an existing file that dgm did not write (True: --force replaces it; None: not checked)."""
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
    if force is False and (p.exists() or p.is_symlink()) and not made_by_dgm(p):
        raise DgmError(f"{flag} {path} exists and is not a file dgm wrote; choose another path, or pass --force to "
                       "replace it")
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


__all__ = ["MARK", "png_info", "savefig", "mark_wav", "save_tensor", "made_by_dgm", "check_output", "undo_on_failure"]
