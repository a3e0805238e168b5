"""Decode one image file safely: every Pillow mode to 8-bit grey or RGB, failures as one-line errors.

Pillow's own ``convert("L")`` clips 16-bit grey (mode ``I;16``/``I``) at 255 instead of rescaling, and
``numpy.asarray`` of a palette image gives palette indices, not colours; both silently change what is
scored or trained on. Here 16-bit and 32-bit integer images are rescaled from 0..65535 to 0..255, palette
images go through RGBA so their transparency is honoured, an alpha channel is dropped, and files larger
than Pillow's decompression-bomb limit are refused before they are decoded.
"""
from __future__ import annotations

import warnings
from typing import Optional

import numpy as np

from ..errors import DgmError

_WIDE = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # integer modes holding 16-bit samples (PNG 16-bit grey)


def _to_8bit(im):
    """An image Pillow's convert("L"/"RGB") maps correctly: 16-bit and float images rescaled to 8 bits."""
    from PIL import Image

    if im.mode in _WIDE:
        a = np.asarray(im).astype(np.float64)
        return Image.fromarray(np.rint(np.clip(a, 0, 65535) / 257.0).astype(np.uint8), "L")
    if im.mode == "F":
        a = np.asarray(im, dtype=np.float64)
        if not np.isfinite(a).all():
            raise ValueError("it holds NaN or infinite pixel values")
        if a.size and (a.min() < 0 or a.max() > 1):
            raise ValueError(f"float pixels must lie in [0, 1], found {a.min():.3g}..{a.max():.3g}")
        return Image.fromarray(np.rint(a * 255).astype(np.uint8), "L")
    if im.mode == "PA" or (im.mode == "P" and "transparency" in im.info):
        return im.convert("RGBA")  # colours and transparency come from the palette; alpha is dropped later
    return im  # L, RGB, P, LA, RGBA, CMYK, ...: Pillow's convert() maps them by their mode


def natural_mode(im) -> str:
    """"L" for grey images (incl. 1-bit, 16-bit, grey+alpha), "RGB" for everything else (palette included)."""
    return "L" if im.mode in ("1", "L", "LA", "La", "F") + _WIDE else "RGB"


def open_image(path, mode: Optional[str] = None, fix: str = "remove or replace the file"):
    """A fully decoded 8-bit Pillow image of `path` in `mode` ("L" or "RGB"; None: its natural mode).

    Raises a one-line DgmError, ending in `fix`, for unreadable, truncated or oversized (decompression-bomb)
    files.
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                target = mode or natural_mode(im)
                im.load()
                out = _to_8bit(im)
                out = out.convert(target) if out.mode != target else out.copy()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DgmError(f"{path}: image too large to decode safely ({e.args[0].split('.')[0]}); "
                       f"downscale it first or {fix}") from None
    except DgmError:
        raise
    except MemoryError:
        raise DgmError(f"{path}: not enough memory to decode this image; downscale it first or {fix}") from None
    except Exception as e:  # Pillow raises OSError, ValueError, SyntaxError, EOFError, struct/zlib errors
        raise DgmError(f"{path}: cannot read this image ({e}); {fix}") from None
    return out


def read_image(path, mode: Optional[str] = None, fix: str = "remove or replace the file") -> np.ndarray:
    """uint8 (H, W) for "L" or (H, W, 3) for "RGB" from one image file (see open_image)."""
    return np.asarray(open_image(path, mode, fix), dtype=np.uint8)


def check_finite(a: np.ndarray, what) -> np.ndarray:
    """`a` unchanged, or a one-line error when a float array holds NaN or infinite values."""
    if np.issubdtype(a.dtype, np.floating) and a.size and not np.isfinite(a).all():
        bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
        raise DgmError(f"{what}: {bad} value(s) are NaN or infinite; images must be finite (uint8 0..255 or "
                       "floats in [0, 1])")
    return a
