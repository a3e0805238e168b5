"""Gated PixelCNN: vertical + horizontal stacks, gated tanh*sigmoid units, no blind spot
(van den Oord et al., 2016, Conditional Image Generation with PixelCNN Decoders)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..nn import MaskedConv2d, channel_groups, shift_down
from ..nn.blocks import MaskedOutputHead
from ..nn.incremental import ConvAt, Plane
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
    sample_methods = ("cached", "naive")

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

    def _cache(self, n: int, y: Optional[torch.Tensor]) -> "_GatedCache":
        return _GatedCache(self, n, y)


class _LayerCache:
    """One gated layer's caches: its outputs (the vertical stack, input of the next vertical convolution; the
    horizontal stack, input of the next horizontal one or of the head), v_to_h of the row above, the gate here."""

    def __init__(self, layer: _GatedLayer, nxt: Optional[_GatedLayer], like: torch.Tensor, n: int, shape,
                 groups: int, y: Optional[torch.Tensor]):
        c, h, w = shape
        p = layer.h_out.out_channels
        self.first = layer.first
        self.v, self.h, self.out = ConvAt(layer.v), ConvAt(layer.h, groups), ConvAt(layer.h_out, groups)
        self.v_to_h = ConvAt(layer.v_to_h)
        self.bv = self.bh = None
        if layer.cond is not None:
            self.bv, self.bh = layer.cond(y).chunk(2, dim=1)
        self.v_out = Plane(like, n, p, h, w, nxt.v._pad if nxt else (0, 0, 0, 0))
        self.h_out = Plane(like, n, p, h, w, nxt.h._pad if nxt else (0, 0, 0, 0))
        self.above = None  # (n, 2p, W): v_to_h(shift_down(v_pre)) along the current row
        self.gate = like.new_zeros(n, p)


class _GatedCache:
    """Cached sampling of a Gated PixelCNN. The vertical stack at row r reads row r itself (right of the current
    pixel too), so it is computed one whole row at a time when that row of x is final, at the start of row r + 1;
    the horizontal stack needs it only shifted down a row. The horizontal stack is computed per position and
    channel group, from a ``Plane`` of each layer's input (the window is the current row up to the pixel)."""

    def __init__(self, model: GatedPixelCNN, n: int, y: Optional[torch.Tensor]):
        c = model.config
        like = next(model.parameters())
        self.scale, self.n, self.width = 2.0 / (c.levels - 1), n, c.width
        layers = list(model.layers)
        # x feeds both stacks of layer 0: padded for the vertical kernel, which covers the horizontal one
        self.x = Plane(like, n, c.channels, c.height, c.width, layers[0].v._pad)
        shape = (c.channels, c.height, c.width)
        self.layers = [_LayerCache(layer, nxt, like, n, shape, c.channels, y)
                       for layer, nxt in zip(layers, layers[1:] + [None])]
        self.hidden, self.head_out = ConvAt(model.head.hidden, c.channels), ConvAt(model.head.out, c.channels)
        self.head = like.new_zeros(n, c.hidden)

    def _rows_above(self, i: int) -> None:
        """Start of row i: the vertical stack at row i - 1 (final now) and what it feeds the horizontal stack."""
        src = self.x
        for s in self.layers:
            if i == 0:  # shift_down puts zeros above the first row
                zeros = self.x.t.new_zeros(self.n, s.v.full_w.shape[0], 1, self.width)
                s.above = F.conv2d(zeros, s.v_to_h.full_w, s.v_to_h.bias)[:, :, 0]
                continue
            v_pre = s.v.row(src, i - 1)                                                   # (n, 2p, 1, W)
            s.above = F.conv2d(v_pre, s.v_to_h.full_w, s.v_to_h.bias)[:, :, 0]
            if s.bv is not None:
                v_pre = v_pre + s.bv[:, :, None, None]
            s.v_out.put_row(i - 1, _gate(v_pre)[:, :, 0])
            src = s.v_out

    def step(self, ch: int, i: int, j: int) -> torch.Tensor:
        if ch == 0 and j == 0:
            self._rows_above(i)
        src = self.x
        for s in self.layers:
            idx, out = s.h.index(ch), s.out.index(ch)
            h_pre = s.h(src, i, j, ch) + s.above[:, idx, j]
            if s.bh is not None:
                h_pre = h_pre + s.bh[:, idx]
            s.gate[:, out] = _gate(h_pre)
            h_new = s.out.vec(s.gate, ch)
            s.h_out.put(i, j, h_new if s.first else src.at(i, j)[:, out] + h_new, out)
            src = s.h_out
        self.head[:, self.hidden.index(ch)] = self.hidden.vec(F.relu(src.at(i, j)), ch)
        return self.head_out.vec(F.relu(self.head), ch)

    def put(self, ch: int, i: int, j: int, v: torch.Tensor) -> None:
        self.x.put(i, j, v.to(self.x.t.dtype) * self.scale - 1.0, ch)
