"""Pure transforms between raw integer levels and model inputs (binarize, quantize, scale, dequantize)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

_BELOW_ONE = 1.0 - 2.0 ** -24  # largest float32 below 1


def binarize_fixed(raw: Tensor, raw_levels: int) -> Tensor:
    """Threshold at half range: level >= (raw_levels-1)/2 -> 1 (e.g. digits 8..16, bytes 128..255)."""
    return (raw.to(torch.float32) >= (raw_levels - 1) / 2).to(torch.float32)


def binarize_dynamic(raw: Tensor, raw_levels: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """Bernoulli(raw/(raw_levels-1)) draws (Salakhutdinov & Murray 2008); global RNG when no generator."""
    p = raw.to(torch.float32) / (raw_levels - 1)
    return torch.bernoulli(p, generator=generator)


def quantize(raw: Tensor, raw_levels: int, k: int) -> Tensor:
    """Map raw levels 0..raw_levels-1 onto k levels: floor(raw*k/raw_levels), clamped to k-1."""
    q = torch.div(raw.to(torch.int64) * k, raw_levels, rounding_mode="floor")
    return q.clamp_(0, k - 1).to(torch.float32)


def to_pm1(x: Tensor, k: int) -> Tensor:
    """Integer levels 0..k-1 -> [-1, 1]."""
    return x.to(torch.float32) / (k - 1) * 2 - 1


def from_pm1(x: Tensor, k: int) -> Tensor:
    """[-1, 1] -> nearest integer level 0..k-1 (inverse of `to_pm1`), as float32."""
    return torch.round((x.to(torch.float32) + 1) / 2 * (k - 1)).clamp_(0, k - 1)


def dequantize(x: Tensor, k: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """Uniform dequantization (x + u)/k in [0, 1), u ~ U[0, 1) (Theis et al. 2016)."""
    u = torch.rand(x.shape, generator=generator, dtype=torch.float32, device=x.device)
    # float32 rounding can push (k-1+u)/k up to exactly 1; keep the half-open interval
    return ((x.to(torch.float32) + u) / k).clamp_(max=_BELOW_ONE)
