"""PixelCNN: masked convolutions, type A first then type B (van den Oord et al., 2016, Pixel RNN)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import DgmError
from ..nn import MaskedConv2d
from ..nn.blocks import MaskedOutputHead
from ..nn.incremental import ConvAt, Plane
from .autoregressive import AutoregressiveModel
from .base import MODELS, ModelConfig


@dataclass
class PixelCNNConfig(ModelConfig):
    hidden: int = 32        # channels h inside residual blocks (2h between blocks)
    layers: int = 6         # residual blocks, each 1x1 -> kxk -> 1x1, all mask B
    first_kernel: int = 7   # the mask-A input convolution
    kernel: int = 3         # the kxk convolution of each residual block
    conditional: bool = False  # class-conditional (uses the dataset's labels)

    @classmethod
    def tiny(cls) -> Dict[str, Any]:
        return {**super().tiny(), "hidden": 8, "layers": 2, "first_kernel": 3}

    def __post_init__(self):
        if self.hidden < self.channels:
            raise DgmError(f"--hidden {self.hidden} is smaller than the {self.channels} image channels; "
                           f"use --hidden >= {self.channels}")
        if self.layers < 1:
            raise DgmError(f"--layers must be >= 1, got {self.layers}")
        for name in ("first_kernel", "kernel"):
            k = getattr(self, name)
            if k < 1 or k % 2 == 0:
                raise DgmError(f"--{name.replace('_', '-')} must be an odd positive number, got {k}")
        if self.conditional and self.num_classes < 1:
            raise DgmError("--conditional needs a labelled dataset (this one has no classes)")
        if not self.conditional:
            self.num_classes = 0  # labels are ignored


class _ResidualBlock(nn.Module):
    def __init__(self, h: int, k: int, groups: int, n_cond: int):
        super().__init__()
        self.reduce = MaskedConv2d(2 * h, h, 1, "B", n_groups=groups)
        self.conv = MaskedConv2d(h, h, k, "B", n_groups=groups)
        self.expand = MaskedConv2d(h, 2 * h, 1, "B", n_groups=groups)
        self.cond = nn.Embedding(n_cond, h) if n_cond else None

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor]) -> torch.Tensor:
        t = self.reduce(F.relu(x))
        if self.cond is not None:
            t = t + self.cond(y)[:, :, None, None]
        t = self.expand(F.relu(self.conv(F.relu(t))))
        return x + t


@MODELS.register("pixelcnn", help="PixelCNN with mask-A/B convolutions and residual blocks (van den Oord et al. 2016)")
class PixelCNN(AutoregressiveModel):
    """PixelCNN: a stack of masked convolutions; has the blind spot of seed 000."""

    Config = PixelCNNConfig
    sample_methods = ("cached", "naive")

    def __init__(self, config: PixelCNNConfig):
        super().__init__(config)
        c, h = config, config.hidden
        n_cond = c.num_classes  # 0 unless conditional (resolved by the config)
        self.inp = MaskedConv2d(c.channels, 2 * h, c.first_kernel, "A", n_groups=c.channels)
        self.blocks = nn.ModuleList(_ResidualBlock(h, c.kernel, c.channels, n_cond) for _ in range(c.layers))
        self.head = MaskedOutputHead(2 * h, c.channels, self.out_per_channel)

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        self.check_input(x, y)
        t = self.inp(self.scaled_input(x))
        for block in self.blocks:
            t = block(t, y)
        return self._shape_logits(self.head(t))

    def _cache(self, n: int, y: Optional[torch.Tensor]) -> "_PixelCNNCache":
        return _PixelCNNCache(self, n, y)


class _PixelCNNCache:
    """Cached sampling of a PixelCNN: the input of every k x k convolution is a ``Plane``; the 1x1 convolutions and
    the residual stream need only the current pixel's vectors. Step (ch, i, j) computes channel group ch of every
    layer at (i, j); groups < ch of that pixel were computed at earlier steps, groups > ch are masked out."""

    def __init__(self, model: PixelCNN, n: int, y: Optional[torch.Tensor]):
        c, g, h = model.config, model.config.channels, model.config.hidden
        like = next(model.parameters())
        self.model, self.scale = model, 2.0 / (c.levels - 1)
        self.x = Plane(like, n, c.channels, c.height, c.width, model.inp._pad)
        self.inp = ConvAt(model.inp, g)
        self.stream = [like.new_zeros(n, 2 * h) for _ in range(c.layers + 1)]  # residual stream at this pixel
        self.blocks = []
        for b in model.blocks:
            plane = Plane(like, n, h, c.height, c.width, b.conv._pad)  # relu(reduce(relu(stream)) + label)
            cond = b.cond(y) if b.cond is not None else None
            self.blocks.append((ConvAt(b.reduce, g), ConvAt(b.conv, g), ConvAt(b.expand, g), plane,
                                like.new_zeros(n, h), cond))
        self.hidden, self.out = ConvAt(model.head.hidden, g), ConvAt(model.head.out, g)
        self.head = like.new_zeros(n, 2 * h)

    def step(self, ch: int, i: int, j: int) -> torch.Tensor:
        idx = self.inp.index(ch)
        self.stream[0][:, idx] = self.inp(self.x, i, j, ch)
        for k, (reduce, conv, expand, plane, conv_out, cond) in enumerate(self.blocks):
            t = reduce.vec(F.relu(self.stream[k]), ch)
            if cond is not None:
                t = t + cond[:, reduce.index(ch)]
            plane.put(i, j, F.relu(t), reduce.index(ch))
            conv_out[:, conv.index(ch)] = conv(plane, i, j, ch)
            t = expand.vec(F.relu(conv_out), ch)
            self.stream[k + 1][:, idx] = self.stream[k][:, idx] + t
        self.head[:, self.hidden.index(ch)] = self.hidden.vec(F.relu(self.stream[-1]), ch)
        return self.out.vec(F.relu(self.head), ch)

    def put(self, ch: int, i: int, j: int, v: torch.Tensor) -> None:
        self.x.put(i, j, v.to(self.x.t.dtype) * self.scale - 1.0, ch)
