"""Incremental evaluation of (masked) convolutions: the per-layer caches of cached sampling (Ramachandran et al.
2017, Fast Generation for Convolutional Autoregressive Models; after Paine et al. 2016, Fast WaveNet).

A raster-order model draws element (c, i, j) after every earlier one. Naive sampling runs the whole network again
for each element. Cached sampling keeps every layer's activation map (a ``Plane``, zero-padded like the convolution
that reads it) and at each step computes each layer only where an activation has just become computable: at
position (i, j), for the output channels of data channel c (the channel groups of ``MaskedConv2d``), from a window
of the layer below (``ConvAt``). Positions and channels not yet computed hold stale finite values that only masked
(zero) weights touch, so every result equals the full forward pass up to the order of float summation.
"""
from __future__ import annotations

from typing import List, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .masked import MaskedConv2d

Index = Union[slice, Tensor]


class Plane:
    """A (B, C, H, W) activation map stored zero-padded by ``pad`` = (left, right, top, bottom), as F.pad takes it."""

    def __init__(self, like: Tensor, b: int, c: int, h: int, w: int, pad: Tuple[int, int, int, int] = (0, 0, 0, 0)):
        left, right, top, bottom = pad
        self.t = like.new_zeros(b, c, h + top + bottom, w + left + right)
        self.left, self.top, self.width = left, top, w

    def put(self, i: int, j: int, value: Tensor, idx: Index = slice(None)) -> None:
        """Store (B, n) values at position (i, j), channels ``idx``."""
        self.t[:, idx, i + self.top, j + self.left] = value

    def put_row(self, i: int, value: Tensor) -> None:
        """Store a whole row, (B, C, W)."""
        self.t[:, :, i + self.top, self.left:self.left + self.width] = value

    def at(self, i: int, j: int) -> Tensor:
        """The (B, C) values at position (i, j)."""
        return self.t[:, :, i + self.top, j + self.left]


def _index(groups: Tensor, g: int) -> Index:
    """The channels of group g: a slice when they are contiguous (the usual case), else an index tensor."""
    idx = (groups == g).nonzero().flatten()
    lo, hi = int(idx[0]), int(idx[-1]) + 1
    return slice(lo, hi) if hi - lo == len(idx) else idx


class ConvAt:
    """A ``MaskedConv2d`` (or an unmasked ``nn.Conv2d`` without padding) evaluated at one output position for the
    output channels of one group, or over one whole output row.

    The masked weight is taken once (call again after the weights change). Rows of a raster kernel below its
    centre are all masked, so the window stops at the centre row.
    """

    def __init__(self, conv: nn.Conv2d, n_groups: int = 1):
        masked = isinstance(conv, MaskedConv2d)
        w = conv.weight * conv.mask if masked else conv.weight
        self.full_w, self.bias = w, conv.bias
        left, _, top, _ = conv._pad if masked else (0, 0, 0, 0)
        self.left, self.top = left, top
        if masked and conv.shape == "raster":
            w = w[:, :, : w.shape[2] // 2 + 1]
        self.rows, self.cols = w.shape[2], w.shape[3]
        groups = conv.out_groups if masked and n_groups > 1 else torch.zeros(w.shape[0], dtype=torch.long)
        bias = conv.bias if conv.bias is not None else w.new_zeros(w.shape[0])
        self.parts: List[Tuple[Index, Tensor, Tensor]] = []
        for g in range(n_groups):
            idx = _index(groups, g)
            if isinstance(idx, Tensor):
                idx = idx.to(w.device)
            self.parts.append((idx, w[idx].reshape(len(bias[idx]), -1), bias[idx]))

    def index(self, g: int = 0) -> Index:
        """The output channels of group g."""
        return self.parts[g][0]

    def __call__(self, plane: Plane, i: int, j: int, g: int = 0) -> Tensor:
        """(B, n_g): the outputs of group g at (i, j), from the window of ``plane`` that the convolution reads."""
        r = i + plane.top - self.top
        c = j + plane.left - self.left
        window = plane.t[:, :, r:r + self.rows, c:c + self.cols].reshape(plane.t.shape[0], -1)
        _, w, b = self.parts[g]
        return F.linear(window, w, b)

    def vec(self, v: Tensor, g: int = 0) -> Tensor:
        """A 1x1 convolution on the (B, C) vector of one position: (B, n_g)."""
        _, w, b = self.parts[g]
        return F.linear(v, w, b)

    def row(self, plane: Plane, i: int) -> Tensor:
        """(B, C_out, 1, W): every output channel along output row i (all its inputs must be final)."""
        r = i + plane.top - self.top
        c = plane.left - self.left
        kh, kw = self.full_w.shape[2:]
        slab = plane.t[:, :, r:r + kh, c:c + plane.width + kw - 1]
        return F.conv2d(slab, self.full_w, self.bias)


__all__ = ["Plane", "ConvAt"]
