"""Masked convolutions for raster-order autoregressive models (van den Oord et al., 2016a/b).

Masks are functional: the stored weight is never edited; ``forward`` convolves with ``weight * mask``.
Channels are split into ``n_groups`` contiguous groups (one per data channel, R -> G -> B); at the
centre pixel an output of group g may see inputs of group < g (mask "A") or <= g (mask "B").
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def channel_groups(n_channels: int, n_groups: int) -> torch.Tensor:
    """Group id of each of ``n_channels`` channels split into ``n_groups`` contiguous blocks."""
    return torch.arange(n_channels) * n_groups // n_channels


def _centre_mask(in_groups: torch.Tensor, out_groups: torch.Tensor, mask_type: str) -> torch.Tensor:
    if mask_type == "A":
        return (in_groups[None, :] < out_groups[:, None]).float()
    if mask_type == "B":
        return (in_groups[None, :] <= out_groups[:, None]).float()
    raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")


class MaskedConv2d(nn.Conv2d):
    """A convolution that sees only earlier pixels (and earlier channel groups at the centre).

    ``shape`` picks the receptive field of one layer with kernel size k:
    - ``"raster"``: a k x k kernel, rows above plus the left part of the current row (PixelCNN);
    - ``"vertical"``: a (k//2+1) x k kernel over the current row and the rows above, padded so the
      output keeps the input size (Gated PixelCNN vertical stack; shift it down one row before it
      feeds a horizontal stack);
    - ``"horizontal"``: a 1 x (k//2+1) kernel over the current row up to the current pixel.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask_type: str = "B",
                 shape: str = "raster", n_groups: int = 1, in_groups: torch.Tensor | None = None,
                 out_groups: torch.Tensor | None = None, bias: bool = True):
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        h = kernel_size // 2
        if shape == "raster":
            kh, kw, pad = kernel_size, kernel_size, (h, h, h, h)
        elif shape == "vertical":
            kh, kw, pad = h + 1, kernel_size, (h, h, h, 0)
        elif shape == "horizontal":
            kh, kw, pad = 1, h + 1, (h, 0, 0, 0)
        else:
            raise ValueError(f"shape must be raster, vertical or horizontal, got {shape!r}")
        super().__init__(in_channels, out_channels, (kh, kw), padding=0, bias=bias)
        self.shape, self.mask_type, self._pad = shape, mask_type, pad
        in_groups = channel_groups(in_channels, n_groups) if in_groups is None else in_groups
        out_groups = channel_groups(out_channels, n_groups) if out_groups is None else out_groups
        mask = torch.ones(out_channels, in_channels, kh, kw)
        if shape == "raster":
            mask[:, :, h + 1:, :] = 0
            mask[:, :, h, h + 1:] = 0
            mask[:, :, h, h] = _centre_mask(in_groups, out_groups, mask_type)
        elif shape == "horizontal":
            mask[:, :, 0, h] = _centre_mask(in_groups, out_groups, mask_type)
        self.register_buffer("mask", mask, persistent=False)
        self.out_groups = out_groups  # the group of each output channel (cached sampling computes one group a step)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, self._pad), self.weight * self.mask, self.bias)


def shift_down(x: torch.Tensor) -> torch.Tensor:
    """Move every row one step down (row 0 becomes zeros): row i then holds only rows < i."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1, :]
