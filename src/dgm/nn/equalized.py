"""Equalized learning rate and pixelwise feature normalisation (Karras et al. 2018, ProGAN).

Equalized learning rate: weights are stored as w ~ N(0, 1) and multiplied at run time by He's constant
c = gain / sqrt(fan_in), so Adam's scale-free updates change every layer at the same relative speed.
With a learning-rate multiplier m (StyleGAN's mapping network uses m = 0.01; Karras et al. 2019) the stored
weight starts at N(0, 1/m^2) and the run-time weight is w * c * m: the same initial layer, m times slower updates.
The bias is stored as b / m and used as b.

Pixel norm: b_xy = a_xy / sqrt(1/C sum_c (a_xy^c)^2 + eps), eps = 1e-8, at every position of every example.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


class EqualizedLinear(nn.Module):
    """y = x (w c m)^T + b m, with c = gain / sqrt(in_features) applied at run time (ProGAN)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, gain: float = math.sqrt(2),
                 lr_mul: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features  # as nn.Linear's (read by base.Discriminator)
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), bias_init / lr_mul)) if bias else None
        self.scale = gain / math.sqrt(in_features) * lr_mul
        self.lr_mul = lr_mul

    def forward(self, x: Tensor) -> Tensor:
        bias = None if self.bias is None else self.bias * self.lr_mul
        return F.linear(x, self.weight * self.scale, bias)


class EqualizedConv2d(nn.Module):
    """A convolution whose N(0, 1) weight is scaled at run time by gain / sqrt(in_channels k^2) (ProGAN)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 bias: bool = True, gain: float = math.sqrt(2), lr_mul: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size) / lr_mul)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = gain / math.sqrt(in_channels * kernel_size ** 2) * lr_mul
        self.lr_mul, self.stride, self.padding = lr_mul, stride, padding

    def forward(self, x: Tensor) -> Tensor:
        bias = None if self.bias is None else self.bias * self.lr_mul
        return F.conv2d(x, self.weight * self.scale, bias, self.stride, self.padding)


def pixel_norm(x: Tensor, eps: float = 1e-8) -> Tensor:
    """x / sqrt(mean_c x^2 + eps), the mean over the channel axis (dim 1) (ProGAN's pixelwise normalisation)."""
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


class PixelNorm(nn.Module):
    """``pixel_norm`` as a layer, for G after each convolution (ProGAN) and on z (StyleGAN's mapping network)."""

    def __init__(self, eps: float = 1e-8):
        super().__init__()
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return pixel_norm(x, self.eps)
