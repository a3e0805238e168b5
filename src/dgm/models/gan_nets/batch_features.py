"""Discriminator layers that look at the whole batch: minibatch discrimination and minibatch standard deviation.

Both map D's last hidden features h (N, F) -- one row per discriminator input (per pack, with packing) -- to
(N, F + extra): the input features followed by ``extra`` batch statistics, which the head then scores. A D that can
compare a sample with the rest of its batch sees a collapsed batch (all samples alike) and can reject it.

This file registers no architecture (``gan_nets/__init__`` imports it like the others, harmlessly); the layers are
built by ``base.Discriminator`` from the config (``--minibatch-disc``, ``--mbstd``), for every architecture.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor


class MinibatchDiscrimination(nn.Module):
    """Salimans et al. 2016, sec. 3.2: M_i = h_i T, a (B, C) matrix per row (T: F x B x C, B kernels of dimension C);
    c_b(i, j) = exp(-||M_i,b - M_j,b||_1); o(i)_b = sum_j c_b(i, j) over the whole batch (j = i included, as in the
    paper's formula; that term is the constant 1); output [h_i, o(i)] of width F + B."""

    def __init__(self, in_features: int, kernels: int, dim: int):
        super().__init__()
        self.kernels, self.dim = kernels, dim
        # T ~ N(0, 0.05^2): small, so that the L1 distances start O(1) and exp(-.) is not flat (the paper gives none)
        self.T = nn.Parameter(torch.randn(in_features, kernels * dim) * 0.05)

    @property
    def extra(self) -> int:
        return self.kernels

    def forward(self, h: Tensor) -> Tensor:
        m = (h @ self.T).view(h.shape[0], self.kernels, self.dim).transpose(0, 1)  # (B, N, C)
        l1 = torch.cdist(m, m, p=1)                                              # (B, N, N): ||M_i,b - M_j,b||_1
        o = torch.exp(-l1).sum(dim=2).t()                                        # (N, B)
        return torch.cat([h, o], dim=1)


class MinibatchStdDev(nn.Module):
    """Karras et al. 2018 (ProGAN), sec. 3: split the batch into groups of ``group`` rows (row i in group i mod N/G,
    as ProGAN's reshape (G, -1, ...)); the standard deviation of each feature over its group (biased, + 1e-8 inside
    the root), averaged over the features, is appended as one more feature to every row of the group (width F + 1).

    On a conv D the features are the flattened last feature map, and one appended scalar feeding the linear head is
    the same as ProGAN's appended constant feature map feeding a linear layer. A batch that ``group`` does not divide
    uses the largest divisor of N that is <= ``group`` (ProGAN: min(group, N), N a multiple of it).
    """

    extra = 1

    def __init__(self, group: int = 4):
        super().__init__()
        self.group = group

    def forward(self, h: Tensor) -> Tensor:
        n = h.shape[0]
        g = min(self.group, n)
        while n % g:
            g -= 1
        y = h.reshape(g, n // g, -1)                                   # (G, N/G, F)
        std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt()             # (N/G, F)
        s = std.mean(dim=1, keepdim=True)                              # (N/G, 1)
        return torch.cat([h, s.repeat(g, 1)], dim=1)                   # row i gets its group's value s[i mod N/G]


__all__ = ["MinibatchDiscrimination", "MinibatchStdDev"]
