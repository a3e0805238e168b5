"""Up- and downsampling by 2 for the progressive GAN lineage, and ProGAN's fade-in.

Modes (``RESAMPLE_MODES``):

* ``nearest``: up, each pixel becomes a 2x2 block (ProGAN); down, the top-left pixel of each 2x2 block.
* ``bilinear``: ``F.interpolate(..., mode="bilinear", align_corners=False)``; going down by exactly 2 this is the
  mean of each 2x2 block (ProGAN's downscaling).
* ``blur``: StyleGAN's "bilinear up/down" (Karras et al. 2019, row B of its Table 1, after Zhang 2019): up,
  nearest then a blur; down, a blur then the 2x2 mean. The blur is the separable binomial filter
  k = [1, 2, 1]^T [1, 2, 1] / 16 (sums to 1), applied to each channel alone (depthwise) with one pixel of zero
  padding on every side, as StyleGAN's code does, so the map keeps its size.

Fade-in (Karras et al. 2018): while a new resolution grows in, the output is (1 - alpha) up(low) + alpha high.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

RESAMPLE_MODES = ("nearest", "bilinear", "blur")


def blur_kernel(taps: Sequence[float] = (1.0, 2.0, 1.0)) -> Tensor:
    """The 2-D filter outer(taps, taps) / sum, so that it sums to 1."""
    k = torch.tensor(taps, dtype=torch.float32)
    k = torch.outer(k, k)
    return k / k.sum()


def blur(x: Tensor, taps: Sequence[float] = (1.0, 2.0, 1.0)) -> Tensor:
    """Each channel convolved with ``blur_kernel(taps)``, zero-padded to keep H x W."""
    c = x.shape[1]
    k = blur_kernel(taps).to(x)
    weight = k.expand(c, 1, *k.shape)
    return F.conv2d(x, weight, padding=k.shape[-1] // 2, groups=c)


def _check(mode: str) -> None:
    if mode not in RESAMPLE_MODES:
        raise ValueError(f"unknown resampling mode {mode!r}; choose one of: {', '.join(RESAMPLE_MODES)}")


def upsample(x: Tensor, mode: str = "nearest") -> Tensor:
    """(B, C, H, W) -> (B, C, 2H, 2W)."""
    _check(mode)
    if mode == "bilinear":
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    up = F.interpolate(x, scale_factor=2, mode="nearest")
    return blur(up) if mode == "blur" else up


def downsample(x: Tensor, mode: str = "bilinear") -> Tensor:
    """(B, C, H, W) -> (B, C, H/2, W/2)."""
    _check(mode)
    if mode == "nearest":
        return x[..., ::2, ::2]
    if mode == "bilinear":
        return F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)
    return F.avg_pool2d(blur(x), 2)


class Upsample(nn.Module):
    """``upsample`` as a layer."""

    def __init__(self, mode: str = "nearest"):
        super().__init__()
        _check(mode)
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        return upsample(x, self.mode)


class Downsample(nn.Module):
    """``downsample`` as a layer."""

    def __init__(self, mode: str = "bilinear"):
        super().__init__()
        _check(mode)
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        return downsample(x, self.mode)


def fade_in(low_up: Tensor, high: Tensor, alpha: float) -> Tensor:
    """(1 - alpha) low_up + alpha high: ProGAN's blend of the upsampled old output and the new layer's output."""
    return (1 - alpha) * low_up + alpha * high
