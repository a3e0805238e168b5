"""SAGAN's self-attention block (Zhang et al. 2019, "Self-Attention Generative Adversarial Networks").

With x_i the feature vector at position i of N = H W positions and 1x1 convolutions f, g, h, v:

    s_ij = f(x_i)^T g(x_j),   beta_ij = exp(s_ij) / sum_i exp(s_ij),   o_j = v(sum_i beta_ij h(x_i)),
    y_j  = gamma o_j + x_j,   gamma a learned scalar that starts at 0 (the block starts as the identity).

f and g map C channels to C/8 as in the paper. h maps C to C/2 and v back to C, as in the authors' released
code (the paper writes C/8 for h as well; both are the ``value_reduction`` argument). The softmax is over i, the
attended position, for each output position j: column j of beta is the attention map of position j.
"""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor

from .spectral import apply_spectral_norm


class SelfAttention(nn.Module):
    """y = gamma v(h beta) + x with beta = softmax_i(f^T g) (SAGAN, Zhang et al. 2019).

    ``spectral=True`` puts spectral norm (Miyato et al. 2018) on f, g, h and v, as SAGAN does in G and D.
    ``keep_attention=True`` stores the last beta (B, N, N), detached, as ``self.attention`` for figures.
    """

    def __init__(self, channels: int, reduction: int = 8, value_reduction: int = 2, spectral: bool = False,
                 keep_attention: bool = False):
        super().__init__()
        key, value = max(1, channels // reduction), max(1, channels // value_reduction)
        self.f = nn.Conv2d(channels, key, 1, bias=False)
        self.g = nn.Conv2d(channels, key, 1, bias=False)
        self.h = nn.Conv2d(channels, value, 1, bias=False)
        self.v = nn.Conv2d(value, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))
        self.keep_attention = keep_attention
        self.attention: Optional[Tensor] = None
        if spectral:
            apply_spectral_norm(self)

    def forward(self, x: Tensor, return_attention: bool = False) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        b, c, height, width = x.shape
        f, g, h = self.f(x).flatten(2), self.g(x).flatten(2), self.h(x).flatten(2)  # (B, C', N)
        s = f.transpose(1, 2) @ g                 # s[b, i, j] = f(x_i)^T g(x_j)
        beta = torch.softmax(s, dim=1)            # normalised over i for each j
        o = self.v((h @ beta).view(b, -1, height, width))  # o_j = v(sum_i beta_ij h(x_i))
        y = self.gamma * o + x
        if self.keep_attention:
            self.attention = beta.detach()
        return (y, beta) if return_attention else y
