"""Gated PixelCNN: vertical + horizontal stacks, gated tanh*sigmoid units, no blind spot
(van den Oord et al., 2016, Conditional Image Generation with PixelCNN Decoders)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn

from ..nn import MaskedConv2d, channel_groups, shift_down
from ..nn.blocks import MaskedOutputHead
from .autoregressive import AutoregressiveModel
from .base import MODELS
from .pixelcnn import PixelCNNConfig


@dataclass
class GatedPixelCNNConfig(PixelCNNConfig):
    hidden: int = 32   # p: channels of each stack
    layers: int = 6    # gated layers


def _gate(t: torch.Tensor) -> torch.Tensor:
    a, b = t.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class _GatedLayer(nn.Module):
    """One layer of both stacks; the vertical stack feeds the horizontal one shifted down a row."""

    def __init__(self, in_ch: int, p: int, k: int, first: bool, groups: int, n_cond: int):
        super().__init__()
        gate_groups = torch.cat([channel_groups(p, groups)] * 2)  # tanh half and sigmoid half alike
        self.first = first
        self.v = MaskedConv2d(in_ch, 2 * p, k, shape="vertical")
        self.h = MaskedConv2d(in_ch, 2 * p, k, "A" if first else "B", shape="horizontal",
                              n_groups=groups, out_groups=gate_groups)
        self.v_to_h = nn.Conv2d(2 * p, 2 * p, 1)  # sees only rows above: no mask needed
        self.h_out = MaskedConv2d(p, p, 1, "B", n_groups=groups)
        self.cond = nn.Embedding(n_cond, 4 * p) if n_cond else None

    def forward(self, v: torch.Tensor, h: torch.Tensor, y: Optional[torch.Tensor]):
        v_pre = self.v(v)
        h_pre = self.h(h) + self.v_to_h(shift_down(v_pre))
        if self.cond is not None:
            bv, bh = self.cond(y)[:, :, None, None].chunk(2, dim=1)
            v_pre, h_pre = v_pre + bv, h_pre + bh
        h_new = self.h_out(_gate(h_pre))
        return _gate(v_pre), h_new if self.first else h + h_new


@MODELS.register("gated-pixelcnn", help="Gated PixelCNN: vertical+horizontal stacks, no blind spot, optional class conditioning")
class GatedPixelCNN(AutoregressiveModel):
    """Gated PixelCNN; every earlier pixel is in its receptive field given enough layers."""

    Config = GatedPixelCNNConfig

    def __init__(self, config: GatedPixelCNNConfig):
        super().__init__(config)
        c, p = config, config.hidden
        n_cond = c.num_classes  # 0 unless conditional (resolved by the config)
        self.layers = nn.ModuleList(
            _GatedLayer(c.channels if i == 0 else p, p, c.first_kernel if i == 0 else c.kernel, i == 0, c.channels, n_cond)
            for i in range(c.layers))
        self.head = MaskedOutputHead(p, c.channels, self.out_per_channel)

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        self.check_input(x, y)
        v = h = self.scaled_input(x)
        for layer in self.layers:
            v, h = layer(v, h, y)
        return self._shape_logits(self.head(h))
