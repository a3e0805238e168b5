"""MADE: a masked autoencoder whose masks make it autoregressive (Germain et al. 2015, "MADE: Masked Autoencoder
for Distribution Estimation").

An MLP over the D = H*W pixels (greyscale) whose weight masks follow the *degrees* of its units: input pixel d has
degree r(d), its rank in the generation order (0..D-1); every hidden unit k of layer l has a degree m_l(k) drawn
once per order, uniformly from [min m_{l-1}, D-2]. A unit may read another of degree <= its own, an output d only
units of degree < r(d) (and, through the direct input-output connection, the pixels of rank < r(d)), so output d
depends on exactly the pixels earlier in the order. Each of the model's N orders has its own hidden degrees
(connectivity-agnostic training: the paper's mask sampling with a finite pool of N masks, one order per training
example), stored in the ``hidden_degrees`` buffer beside ``order_table``; ``log_prob(x)`` averages the N
probabilities (the paper's test-time ensemble).

Binary data: the pixel values are the inputs and one Bernoulli logit per pixel the outputs; K levels: one-hot
inputs (D*K) and K logits per pixel.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import DgmError
from .anyorder import AnyOrderConfig, AnyOrderModel, greyscale_only
from .base import MODELS


@dataclass
class MADEConfig(AnyOrderConfig):
    hidden: int = 500  # units per hidden layer
    layers: int = 1  # hidden layers
    order_family: str = "random"  # orders from: raster, s-curve, hilbert (8 each), mixed (24), random (raster + N-1 random)

    @classmethod
    def tiny(cls) -> Dict[str, Any]:
        return {**super().tiny(), "hidden": 16, "orders": 2}

    def __post_init__(self):
        super().__post_init__()
        greyscale_only("made", self.channels)
        if self.hidden < 1 or self.layers < 1:
            raise DgmError(f"--hidden and --layers must be >= 1, got {self.hidden} and {self.layers}")


def ranks(order: torch.Tensor) -> torch.Tensor:
    """rank[p] = where position p comes in ``order`` (the inverse permutation)."""
    r = torch.empty_like(order)
    r[order] = torch.arange(order.numel(), device=order.device)
    return r


@MODELS.register("made", help="MADE: masked autoencoder, order-agnostic over --orders N (Germain et al. 2015)")
class MADE(AnyOrderModel):
    """MADE over N orders with per-order hidden degrees; exact likelihood under each order, ensemble by default."""

    Config = MADEConfig

    def __init__(self, config: MADEConfig):
        super().__init__(config)
        d, h, k = config.height * config.width, config.hidden, config.levels
        self.in_per_pixel = 1 if self.binary else k
        sizes = [d * self.in_per_pixel] + [h] * config.layers
        self.hidden_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.out = nn.Linear(h, d * self.out_per_channel)
        self.direct = nn.Linear(d * self.in_per_pixel, d * self.out_per_channel, bias=False)
        gen = torch.Generator().manual_seed(config.order_seed + 1)
        degrees = torch.empty(config.orders, config.layers, h, dtype=torch.long)
        top = max(d - 2, 0)
        for i in range(config.orders):
            low = 0
            for layer in range(config.layers):
                degrees[i, layer] = torch.randint(low, top + 1, (h,), generator=gen)
                low = min(int(degrees[i, layer].min()), top)
        self.register_buffer("hidden_degrees", degrees)

    def _degrees_for(self, order: torch.Tensor) -> torch.Tensor:
        """The hidden degrees of ``order``: its own if it is one of the model's orders, else those of order 0
        (any degrees give a valid MADE for any order; these keep the choice deterministic)."""
        hit = (self.order_table == order).all(1).nonzero()
        return self.hidden_degrees[int(hit[0]) if hit.numel() else 0]

    def masks(self, order: torch.Tensor):
        """The 0/1 masks of the hidden layers, the output layer and the direct connection for ``order``."""
        r = ranks(order)
        deg = self._degrees_for(order)
        rin = r.repeat_interleave(self.in_per_pixel)  # inputs laid out pixel-major: (d, level)
        rout = r.repeat_interleave(self.out_per_channel)
        hidden = [rin[None, :] <= deg[0][:, None]]
        hidden += [deg[i - 1][None, :] <= deg[i][:, None] for i in range(1, deg.shape[0])]
        out = deg[-1][None, :] < rout[:, None]
        direct = rin[None, :] < rout[:, None]
        return hidden, out, direct

    def _inputs(self, x: torch.Tensor) -> torch.Tensor:
        return self._pixel_inputs(x.reshape(x.shape[0], -1), self.out.weight.dtype).flatten(1)

    def _logits(self, x: torch.Tensor, y: Optional[torch.Tensor], order: torch.Tensor) -> torch.Tensor:
        hidden, out_mask, direct = self.masks(order)
        v = self._inputs(x)
        t = v
        for layer, m in zip(self.hidden_layers, hidden):
            t = F.relu(F.linear(t, layer.weight * m, layer.bias))
        out = F.linear(t, self.out.weight * out_mask, self.out.bias) + F.linear(v, self.direct.weight * direct)
        return self._layout(out)

    # -- cached sampling ---------------------------------------------------------------------------
    sample_methods = ("cached", "naive")

    def _cached_steps(self, x: torch.Tensor, order: torch.Tensor, draw=None) -> torch.Tensor:
        """A hidden unit of degree m reads only inputs (or units) of degree <= m, so it is final once the pixel of
        rank m is placed, and the pixel of rank i reads only units of degree < i and inputs of rank < i. The walk
        keeps the units computed so far (0 until then, so no mask is needed) and the first layer's running
        pre-activation; placing the pixel of rank i adds its inputs to that sum and computes the units of degree i,
        each once per image. Pixel i's logits cost O(H K + D K^2) instead of a full pass (AnyOrderModel)."""
        n, kin, kout = x.shape[0], self.in_per_pixel, self.out_per_channel
        flat = x.view(n, -1)
        d = flat.shape[1]
        w = self.out.weight
        deg = self._degrees_for(order.to(self.order_table.device))
        by_degree = [torch.split(torch.argsort(dl, stable=True), torch.bincount(dl, minlength=d).tolist())
                     for dl in deg]  # by_degree[layer][m]: the layer's units of degree m
        units = [w.new_zeros(n, self.config.hidden) for _ in self.hidden_layers]
        first = w.new_zeros(n, self.config.hidden)  # running pre-activation of the first layer (no bias)
        placed = w.new_zeros(n, d * kin)             # the inputs of the pixels placed so far, 0 elsewhere
        out = w.new_empty(n, d, kout)
        for rank, pos in enumerate(order.tolist()):
            rows = slice(pos * kout, (pos + 1) * kout)
            logits = units[-1] @ w[rows].T + self.out.bias[rows] + placed @ self.direct.weight[rows].T
            self._emit(out, flat, pos, logits, draw)
            cols = slice(pos * kin, (pos + 1) * kin)
            v = self._inputs(flat[:, pos:pos + 1])
            placed[:, cols] = v
            first = first + v @ self.hidden_layers[0].weight[:, cols].T
            for layer, (lin, groups) in enumerate(zip(self.hidden_layers, by_degree)):
                new = groups[rank]  # bincount(minlength=d): one group per rank
                if new.numel():
                    pre = first[:, new] if layer == 0 else units[layer - 1] @ lin.weight[new].T
                    units[layer][:, new] = F.relu(pre + lin.bias[new])
        return out
