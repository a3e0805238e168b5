"""Image completion: read a picture, keep part of it, let the model sample the rest."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..data.decode import open_image
from ..errors import DgmError

REGIONS = ("top", "left", "bottom", "right")


def image_to_levels(path, channels: int, height: int, width: int, levels: int) -> torch.Tensor:
    """Load a PNG/JPEG as a (C, H, W) tensor of levels 0..K-1 (8-bit values rounded to K levels).

    Images of another size are resized (bilinear) to the model's size.
    """
    path = Path(path)
    if not path.is_file():
        raise DgmError(f"--complete-from {path}: no such file")
    img = open_image(path, "L" if channels == 1 else "RGB", fix="give --complete-from a PNG or JPEG file")
    if img.size != (width, height):
        img = img.resize((width, height), Image.BILINEAR)
    a = np.asarray(img, dtype=np.float64) / 255.0
    a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    if levels == 2:
        x = a >= 0.5
    else:
        x = np.rint(a * (levels - 1))
    return torch.from_numpy(x.astype(np.float32))


def observed_mask(region: str, channels: int, height: int, width: int) -> torch.Tensor:
    """Bool (C, H, W) mask, True where pixels are kept: the named half of the image."""
    m = torch.zeros(channels, height, width, dtype=torch.bool)
    if region == "top":
        m[:, : height // 2] = True
    elif region == "bottom":
        m[:, height - height // 2:] = True
    elif region == "left":
        m[:, :, : width // 2] = True
    elif region == "right":
        m[:, :, width - width // 2:] = True
    else:
        raise DgmError(f"--observe must be one of {', '.join(REGIONS)}, got {region!r}")
    return m


def complete_from_file(model, path, n: int, region: str = "top", y=None, generator=None, method=None):
    """Return (observed image with the hidden part greyed, n completions), both in levels; ``method``: as for
    ``model.complete`` (None: the model's default)."""
    c = model.config
    x = image_to_levels(path, c.channels, c.height, c.width, c.levels)
    mask = observed_mask(region, c.channels, c.height, c.width)
    done = model.complete(x.expand(n, -1, -1, -1), mask, y=y, generator=generator, method=method)
    shown = torch.where(mask, x, torch.full_like(x, (c.levels - 1) / 2))
    return shown, done
