"""StyleGAN's layers (Karras et al. 2019, "A Style-Based Generator Architecture for GANs"; StyleGAN2, 2020).

* Mapping network f: Z -> W, an 8-layer MLP on pixel-normalised z, equalized LR with lr multiplier 0.01.
* AdaIN (Huang & Belongie 2017): AdaIN(x_i, y) = y_{s,i} (x_i - mu(x_i)) / sigma(x_i) + y_{b,i}, with mu and
  sigma over the H x W positions of channel i of one example, and y = (y_s, y_b) = A(w), a learned affine map.
* Noise inputs: x + B * noise, one noise image per example shared by all channels, B a learned per-channel scale.
* Weight (de)modulation (StyleGAN2): w'_ijk = s_i w_ijk, then w''_ijk = w'_ijk / sqrt(sum_{i,k} w'_ijk^2 + eps).
* Truncation in W: w' = w_avg + psi (w - w_avg), on the layers before a cut-off only.
* Style mixing: layers before the crossover take w1, the others w2.

Per-layer latents are tensors (B, n_layers, w_dim).
"""
from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .equalized import EqualizedLinear, pixel_norm


def adain(x: Tensor, y_s: Tensor, y_b: Tensor, eps: float = 1e-8) -> Tensor:
    """y_s (x - mu(x)) / sigma(x) + y_b per example and channel; sigma = sqrt(biased variance + eps).

    ``x`` (B, C, H, W); ``y_s``, ``y_b`` (B, C).
    """
    mu = x.mean(dim=(2, 3), keepdim=True)
    sigma = (x.var(dim=(2, 3), unbiased=False, keepdim=True) + eps).sqrt()
    return y_s[:, :, None, None] * (x - mu) / sigma + y_b[:, :, None, None]


class StyleMod(nn.Module):
    """The learned affine map "A": w -> (y_s, y_b), an equalized linear layer with y_s starting around 1.

    The bias of y_s starts at 1 and that of y_b at 0, so a fresh layer rescales x by about 1.
    """

    def __init__(self, w_dim: int, channels: int):
        super().__init__()
        self.affine = EqualizedLinear(w_dim, 2 * channels, gain=1.0)
        with torch.no_grad():
            self.affine.bias[:channels] = 1.0
        self.channels = channels

    def forward(self, w: Tensor) -> Tuple[Tensor, Tensor]:
        y = self.affine(w)
        return y[:, :self.channels], y[:, self.channels:]


class AdaIN(nn.Module):
    """x, w -> AdaIN(x, A(w)): StyleGAN's per-layer style input."""

    def __init__(self, w_dim: int, channels: int, eps: float = 1e-8):
        super().__init__()
        self.style = StyleMod(w_dim, channels)
        self.eps = eps

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        y_s, y_b = self.style(w)
        return adain(x, y_s, y_b, self.eps)


class NoiseInput(nn.Module):
    """x + B_c * noise: a (B, 1, H, W) noise image broadcast over channels, B_c a learned scale per channel (init 0).

    ``noise`` can be passed (for the stochastic-variation figure); otherwise it is drawn from N(0, 1).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor, noise: Optional[Tensor] = None) -> Tensor:
        if noise is None:
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
        return x + self.weight.view(1, -1, 1, 1) * noise


class ModulatedConv2d(nn.Module):
    """StyleGAN2's convolution: the style s = A(w) scales the input channels of the weight, and demodulation
    rescales each output channel's weight to unit norm (so unit-variance inputs give unit-variance outputs).

    The weight is stored N(0, 1) and scaled by 1 / sqrt(in_channels k^2) at run time (equalized LR). The
    per-example weights are applied as one grouped convolution (groups = batch size), padding k // 2.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int, demodulate: bool = True,
                 eps: float = 1e-8):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.affine = EqualizedLinear(w_dim, in_channels, gain=1.0, bias_init=1.0)
        self.demodulate, self.eps = demodulate, eps

    def modulated_weight(self, w: Tensor) -> Tensor:
        """The per-example weight (B, out, in, k, k): s_i w_ijk, divided by sqrt(sum_{i,k} (s_i w_ijk)^2 + eps)."""
        s = self.affine(w)                                              # (B, in)
        weight = self.scale * self.weight[None] * s[:, None, :, None, None]
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum(dim=(2, 3, 4), keepdim=True) + self.eps)
        return weight

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        b, c, h, wd = x.shape
        weight = self.modulated_weight(w)
        out = F.conv2d(x.reshape(1, b * c, h, wd), weight.reshape(-1, c, *weight.shape[3:]),
                       padding=weight.shape[-1] // 2, groups=b)
        return out.view(b, -1, *out.shape[2:])


class MappingNetwork(nn.Module):
    """f: z -> w, pixel norm of z then ``n_layers`` equalized linear layers with LeakyReLU(0.2) (StyleGAN).

    ``lr_mul`` (0.01 in StyleGAN) slows the mapping network's updates. The buffer ``w_avg`` tracks E_z f(z) for
    truncation: ``update_w_avg(w, beta)`` sets w_avg <- beta w_avg + (1 - beta) mean_batch(w) (beta 0.995).
    """

    def __init__(self, z_dim: int, w_dim: int, n_layers: int = 8, hidden: Optional[int] = None,
                 lr_mul: float = 0.01, normalize: bool = True):
        super().__init__()
        sizes = [z_dim] + [hidden or w_dim] * (n_layers - 1) + [w_dim] if n_layers else []
        layers = []  # n_layers = 0: w = the (normalised) z itself, z_dim = w_dim (StyleGAN's ablation without mapping)
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [EqualizedLinear(a, b, lr_mul=lr_mul), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers)
        self.normalize = normalize
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: Tensor) -> Tensor:
        return self.net(pixel_norm(z) if self.normalize else z)

    @torch.no_grad()
    def update_w_avg(self, w: Tensor, beta: float = 0.995) -> None:
        self.w_avg.copy_(beta * self.w_avg + (1 - beta) * w.detach().mean(dim=0))


def truncate(w: Tensor, w_avg: Tensor, psi: float, cutoff: Optional[int] = None) -> Tensor:
    """w' = w_avg + psi (w - w_avg) on layers l < ``cutoff`` of per-layer latents ``w`` (B, n_layers, w_dim);
    layers l >= cutoff keep w. ``cutoff=None`` truncates every layer."""
    truncated = w_avg + psi * (w - w_avg)
    if cutoff is None:
        return truncated
    before = torch.arange(w.shape[1], device=w.device) < cutoff
    return torch.where(before[None, :, None], truncated, w)


def mix_styles(w1: Tensor, w2: Tensor, crossover: Union[int, Tensor], n_layers: int) -> Tensor:
    """Per-layer latents (B, n_layers, w_dim): w1 on layers l < ``crossover``, w2 on layers l >= crossover.

    ``crossover`` is one layer index or one per example (B,); ``crossover = n_layers`` means no mixing.
    """
    layer = torch.arange(n_layers, device=w1.device)
    crossover = torch.as_tensor(crossover, device=w1.device).reshape(-1, 1)
    first = (layer[None, :] < crossover)[:, :, None]                  # (B or 1, n_layers, 1)
    return torch.where(first, w1[:, None, :], w2[:, None, :])
