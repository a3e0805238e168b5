"""Sample grids as PNG files."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from PIL import Image

from ..outputs import png_info


def make_grid(images: torch.Tensor, nrow: Optional[int] = None, pad: int = 2, min_cell: int = 32) -> np.ndarray:
    """Tile (N, C, H, W) images in [0, 1] into one uint8 array (rows, cols[, 3]).

    Small images are enlarged by an integer factor (nearest neighbour) so cells are at least
    ``min_cell`` pixels wide: an 8x8 digit stays readable.
    """
    x = images.detach().float().cpu().clamp(0, 1)
    if x.dim() != 4:
        raise ValueError(f"expected (N, C, H, W) images, got shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    scale = max(1, math.ceil(min_cell / max(h, w)))
    if scale > 1:
        x = x.repeat_interleave(scale, 2).repeat_interleave(scale, 3)
        h, w = h * scale, w * scale
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    ncol_rows = math.ceil(n / nrow)
    grid = torch.full((c, ncol_rows * (h + pad) + pad, nrow * (w + pad) + pad), 0.5)
    for k in range(n):
        r, col = divmod(k, nrow)
        grid[:, pad + r * (h + pad): pad + r * (h + pad) + h, pad + col * (w + pad): pad + col * (w + pad) + w] = x[k]
    arr = (grid * 255 + 0.5).to(torch.uint8).numpy()
    return arr[0] if c == 1 else arr.transpose(1, 2, 0)


def save_grid(images: torch.Tensor, path, nrow: Optional[int] = None) -> Path:
    """Write a grid of (N, C, H, W) images in [0, 1] as a PNG; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(make_grid(images, nrow)).save(path, pnginfo=png_info() if path.suffix.lower() == ".png" else None)
    return path
