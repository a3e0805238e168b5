"""``shapes``: a procedural look-alike of dSprites (Matthey et al. 2017), rendered by dgm, with known factors.

It is NOT the released dSprites file: the sprites are drawn here from implicit curves, so pixels differ from the
published images, while the factor grid is the same size and meaning:

    shape 3 (square, ellipse, heart) x scale 6 (0.5..1) x orientation 40 (2 pi k / 40) x pos x 32 x pos y 32

= 737,280 binary images, 64x64 (``--image-size 32`` for CPU budgets). Every image is a pure function of its factor
tuple (``render``), which the disentanglement metrics need. The splits are fixed subsets of the grid
(``SPLIT_SIZES``: 20,000 / 2,000 / 2,000 tuples, disjoint, drawn by numpy RandomState(0)); only a split's images
are rendered (20,000 x 64 x 64 bytes = 82 MB for train), never the whole grid.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from ..errors import DgmError
from .catalog import DATASETS
from .image import ImageDataset

FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES = (3, 6, 40, 32, 32)
SHAPES = ("square", "ellipse", "heart")
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = 2 * np.pi * np.arange(40) / 40  # dSprites repeats 0 as 2 pi; here 40 distinct angles
POSITIONS = np.linspace(0.0, 1.0, 32)
GRID_SIZE = int(np.prod(FACTOR_SIZES))  # 737,280
SPLIT_SIZES = {"train": 20_000, "val": 2_000, "test": 2_000}
SPLIT_SEED = 0
IMAGE_SIZES = (64, 32)
_MARGIN, _RADIUS = 0.2, 0.18  # centres lie in [0.2, 0.8] of the image; a scale-1 sprite reaches 0.18 from its centre
_CHUNK = 1024  # images rendered per vectorised pass


def factor_index(factors) -> np.ndarray:
    """(n, 5) factor tuples -> (n,) indices into the grid (shape slowest, pos_y fastest, as dSprites' order)."""
    f = np.asarray(factors, dtype=np.int64).reshape(-1, len(FACTOR_SIZES))
    return np.ravel_multi_index(tuple(f.T), FACTOR_SIZES)


def factor_tuples(index) -> np.ndarray:
    """(n,) grid indices -> (n, 5) int64 factor tuples (inverse of ``factor_index``)."""
    return np.stack(np.unravel_index(np.asarray(index, dtype=np.int64), FACTOR_SIZES), axis=1).astype(np.int64)


def check_factors(factors) -> np.ndarray:
    """(n, 5) int64 factor tuples, or a one-line error naming the factor out of range."""
    f = np.asarray(factors)
    if f.ndim != 2 or f.shape[1] != len(FACTOR_SIZES):
        raise DgmError(f"shapes: factor tuples must have shape (n, {len(FACTOR_SIZES)}) ({', '.join(FACTOR_NAMES)}), "
                       f"got {f.shape}")
    f = f.astype(np.int64)
    for k, (name, size) in enumerate(zip(FACTOR_NAMES, FACTOR_SIZES)):
        if len(f) and (f[:, k].min() < 0 or f[:, k].max() >= size):
            raise DgmError(f"shapes: factor {name} must lie in 0..{size - 1}, got {f[:, k].min()}..{f[:, k].max()}")
    return f


def _inside(shape: int, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Membership of one canonical sprite (unit size, upright) at local coordinates (p right, q down)."""
    if shape == 0:  # square
        return np.maximum(np.abs(p), np.abs(q)) <= 0.75
    if shape == 1:  # ellipse, axes 1 and 0.5
        return p * p + 4 * q * q <= 1.0
    x, y = 1.15 * p, 0.15 - 1.15 * q  # heart: (x^2 + y^2 - 1)^3 <= x^2 y^3, point down
    x2 = x * x
    return (x2 + y * y - 1) ** 3 <= x2 * y ** 3


def render(factors, image_size: int = 64) -> np.ndarray:
    """The binary images (n, 1, S, S) uint8 of factor tuples (n, 5): exactly the same pixels for the same tuple."""
    f = check_factors(factors)
    s = int(image_size)
    u = ((np.arange(s) + 0.5) / s).astype(np.float32)  # pixel centres in [0, 1]
    out = np.empty((len(f), 1, s, s), dtype=np.uint8)
    for shape in range(len(SHAPES)):
        rows = np.flatnonzero(f[:, 0] == shape)
        for a in range(0, len(rows), _CHUNK):
            i = rows[a:a + _CHUNK]
            g = f[i]
            r = (_RADIUS * SCALES[g[:, 1]]).astype(np.float32)[:, None, None]
            th = ORIENTATIONS[g[:, 2]][:, None, None]
            cx = (_MARGIN + (1 - 2 * _MARGIN) * POSITIONS[g[:, 3]]).astype(np.float32)[:, None, None]
            cy = (_MARGIN + (1 - 2 * _MARGIN) * POSITIONS[g[:, 4]]).astype(np.float32)[:, None, None]
            dx, dy = (u[None, None, :] - cx) / r, (u[None, :, None] - cy) / r  # column x, row y (down)
            c, sn = np.cos(th).astype(np.float32), np.sin(th).astype(np.float32)
            out[i, 0] = _inside(shape, c * dx + sn * dy, c * dy - sn * dx)  # rotated by -theta into the sprite frame
    return out


def split_indices(split: str) -> np.ndarray:
    """The grid indices of a split: disjoint fixed subsets (``SPLIT_SIZES``) of one RandomState(0) permutation,
    sorted."""
    rs = np.random.RandomState(SPLIT_SEED)
    pick = rs.choice(GRID_SIZE, size=sum(SPLIT_SIZES.values()), replace=False)
    a, b = SPLIT_SIZES["test"], SPLIT_SIZES["test"] + SPLIT_SIZES["val"]
    part = {"test": pick[:a], "val": pick[a:b], "train": pick[b:]}[split]
    return np.sort(part)


class ShapesDataset(ImageDataset):
    """A split of ``shapes``: binary images (rendered once, when loaded) and their factor tuples (``factors``).

    Labels are -1 (no classes); the generative factors are ``factors`` (N, 5) int64, with ``factor_names`` and
    ``factor_sizes``. ``images(factors)`` renders any tuple of the whole grid as model inputs (the split's
    transform applied), which is what the disentanglement metrics draw from."""

    factor_names: Sequence[str] = FACTOR_NAMES
    factor_sizes: Sequence[int] = FACTOR_SIZES

    def __init__(self, split: str, image_size: int = 64, binarize: Optional[str] = None,
                 levels: Optional[int] = None, scale: str = "levels"):
        self.image_size = image_size
        self.indices = split_indices(split)
        self.factors = torch.from_numpy(factor_tuples(self.indices))
        raw = render(self.factors.numpy(), image_size)
        super().__init__("shapes", split, raw, np.full(len(raw), -1, dtype=np.int64), 2, 0,
                         binarize=binarize, levels=levels, scale=scale)

    def images(self, factors) -> Tensor:
        """Model inputs (n, 1, S, S) float32 for factor tuples (n, 5) of the whole grid (deterministic transform)."""
        return self.to_model_levels(torch.from_numpy(render(factors, self.image_size)))


def _image_size(image_size) -> int:
    if image_size is None:
        return IMAGE_SIZES[0]
    size = int(image_size) if isinstance(image_size, str) and image_size.strip().isdigit() else image_size
    if isinstance(size, bool) or size not in IMAGE_SIZES:
        raise DgmError(f"shapes: --image-size must be 64 (default) or 32, got {image_size!r}")
    return int(size)


@DATASETS.register("shapes", help="procedural dSprites look-alike (not the released dSprites pixels): binary 64x64 "
                   "sprites (--image-size 32), 3 shapes x 6 scales x 40 orientations x 32 x 32 positions; "
                   "20000/2000/2000 fixed tuples of the grid; knows its factors (--metric disentanglement)")
def _shapes(split: str, data_dir: Optional[str] = None, image_size: Optional[int] = None,
            binarize: Optional[str] = None, levels: Optional[int] = None, scale: str = "levels") -> ShapesDataset:
    """Rendered by dgm from its factor tuples; see the module docstring for the grid and splits."""
    return ShapesDataset(split, _image_size(image_size), binarize, levels, scale)


_shapes.builtin = True  # generated: --data-dir does not apply
_shapes.takes_transform = True  # load_dataset passes binarize / levels / scale to it
_shapes.factors = FACTOR_NAMES  # a dataset that knows its generative factors

__all__ = ["ShapesDataset", "render", "factor_index", "factor_tuples", "split_indices", "FACTOR_NAMES",
           "FACTOR_SIZES", "SPLIT_SIZES"]
