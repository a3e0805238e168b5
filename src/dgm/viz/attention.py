"""SAGAN's attention figure (Zhang et al. 2019, Figure 1): where a few query positions of a generated image look.

One row per image: the image with the query cells marked, then one heat map per query, the softmax weights
beta_{i, j} over the attended positions i of query j (column j of the block's beta), stretched to [0, 1] per map,
upsampled (nearest) to the image size and laid over the image in grey.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .grid import save_grid


def query_cells(side: int, k: int = 4) -> List[Tuple[int, int]]:
    """k query cells (row, col) of a side x side attention grid, spread over its quarters (and its centre)."""
    a, b = side // 4, (3 * side) // 4
    return [(a, a), (a, b), (b, a), (b, b), (side // 2, side // 2)][:k]


def attention_panels(images: Tensor, beta: Tensor, queries: Sequence[Tuple[int, int]] = ()) -> Tensor:
    """(N (1 + Q), 3, H, W) tiles in [0, 1]: for each image, itself with red query marks, then its Q heat maps."""
    n, c, h, w = images.shape
    side = int(round(beta.shape[-1] ** 0.5))
    if side * side != beta.shape[-1]:
        raise ValueError(f"beta must be (N, S*S, S*S) for a square map, got {tuple(beta.shape)}")
    queries = list(queries) or query_cells(side)
    grey = images.float().cpu().mean(1, keepdim=True).expand(n, 3, h, w)
    rows = []
    for b in range(n):
        marked = grey[b].clone()
        maps = []
        for r, col in queries:
            y0, y1, x0, x1 = r * h // side, (r + 1) * h // side, col * w // side, (col + 1) * w // side
            marked[:, y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)] = torch.tensor([1.0, 0.0, 0.0])[:, None, None]
            m = beta[b, :, r * side + col].float().cpu().view(1, 1, side, side)
            m = (m - m.min()) / (m.max() - m.min()).clamp_min(1e-12)
            m = F.interpolate(m, size=(h, w), mode="nearest")[0, 0]
            heat = torch.stack([m, 0.2 * m, 1 - m])
            maps.append(0.6 * heat + 0.4 * grey[b])
        rows += [marked] + maps
    return torch.stack(rows)


def save_attention_maps(images: Tensor, beta: Tensor, path, queries: Sequence[Tuple[int, int]] = ()) -> Path:
    """Write ``attention_panels`` as a PNG grid, one image per row; returns the path."""
    queries = list(queries) or query_cells(int(round(beta.shape[-1] ** 0.5)))
    return save_grid(attention_panels(images, beta, queries), path, nrow=1 + len(queries))
