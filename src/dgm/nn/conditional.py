"""Conditional batch normalisation: batch norm whose gain and bias are functions of a conditioning vector.

de Vries et al. 2017 ("Modulating early visual processing by language"); Dumoulin et al. 2017 (conditional
instance norm). As used by the projection-discriminator GAN's generator (Miyato & Koyama 2018: class-conditional
BN) and by BigGAN (Brock et al. 2019: gain and bias are linear maps of [shared class embedding, chunk of z]):

    CBN(x, h)_c = (1 + gamma_c(h)) * (x_c - mu_c) / sqrt(var_c + eps) + beta_c(h),

with mu_c, var_c the ordinary batch statistics (running averages in eval mode), and gamma(h) = W_g h,
beta(h) = W_b h linear maps of ``h`` (N, cond_dim) -- a one-hot label, a learned class embedding, or BigGAN's
[embedding, z chunk]. Both maps start at zero, so a fresh layer is plain batch norm with gain 1 and bias 0.
"""
from __future__ import annotations

import torch.nn as nn
from torch import Tensor


class ConditionalBatchNorm(nn.Module):
    """Batch norm over ``features`` channels (``dims`` 1: (N, C) or 2: (N, C, H, W)) with gain 1 + W_g h and bias
    W_b h from the conditioning vector ``h`` (N, cond_dim)."""

    def __init__(self, features: int, cond_dim: int, dims: int = 2, eps: float = 1e-5, momentum: float = 0.1,
                 bias: bool = False):
        super().__init__()
        if dims not in (1, 2):
            raise ValueError(f"dims must be 1 (N, C) or 2 (N, C, H, W), got {dims}")
        norm = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
        self.norm = norm(features, eps=eps, momentum=momentum, affine=False)
        self.gain = nn.Linear(cond_dim, features, bias=bias)
        self.bias = nn.Linear(cond_dim, features, bias=bias)
        for layer in (self.gain, self.bias):
            nn.init.zeros_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        self.dims = dims

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        if h.dim() != 2 or h.shape[0] != x.shape[0]:
            raise ValueError(f"the conditioning vector must be (N, cond_dim) with N = {x.shape[0]}, got "
                             f"{tuple(h.shape)}")
        shape = (x.shape[0], -1) + (1,) * (x.dim() - 2)
        return (1 + self.gain(h)).view(shape) * self.norm(x) + self.bias(h).view(shape)
