"""LMConv: one network for many generation orders, built from locally masked convolutions
(Jain, Abbeel & Pathak 2020, Locally Masked Convolution for Autoregressive Models).

Every convolution's mask follows the order at each location (``dgm.nn.lmconv``): the first layer opens the taps that
read earlier pixels, the later layers the earlier pixels and the location itself. The network is a small gated
residual stack (Gated PixelCNN units, van den Oord et al. 2016, on one stream: the local masks need no separate
vertical and horizontal stacks), with dilations cycling 1, 2, 4 to widen the receptive field cheaply; a 1x1 output
head gives a Bernoulli logit (binary data) or K categorical logits per pixel. Parameters are shared across the
model's orders (default: the 8 S-curve variants, as the paper trains on binarized MNIST), and the any-order contract
(``AnyOrderModel``) gives the order ensemble, completion with maximum-context orders and one order per training
example (``order_sampling="batch"``: one per batch, as the official code draws them). Greyscale only: the masks order
pixels, not the channels inside a pixel.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import DgmError
from ..nn.lmconv import LocallyMaskedConv2d, TapMasks, tap_masks
from .anyorder import AnyOrderConfig, AnyOrderModel, greyscale_only
from .base import MODELS

_CACHE_SIZE = 64   # single-order mask sets kept per model (the model's orders plus completion orders)
ORDER_SAMPLING = ("example", "batch")   # how training draws orders (LMConvConfig.order_sampling)


@dataclass
class LMConvConfig(AnyOrderConfig):
    orders: int = 8                 # the paper's 8 S-curve variants
    order_family: str = "s-curve"   # raster | s-curve | hilbert | mixed (dgm.nn.orders)
    hidden: int = 32                # channels of the residual stream
    layers: int = 6                 # gated residual blocks
    kernel: int = 3                 # kernel of every block (dilated 1, 2, 4, ... up to dilation_cycle)
    first_kernel: int = 3           # the input layer (its mask excludes the centre)
    dilation_cycle: int = 3         # block l uses dilation 2 ** (l % dilation_cycle); 1 = no dilation
    order_sampling: str = "example"  # example | batch: one order per training example, or per batch (official code)

    @classmethod
    def tiny(cls) -> Dict[str, Any]:
        return {**super().tiny(), "hidden": 8, "layers": 2, "orders": 2}

    def __post_init__(self):
        post = getattr(super(), "__post_init__", None)
        if post is not None:
            post()
        if self.data_kind == "images":
            greyscale_only("lmconv", self.channels)
        if self.hidden < 1 or self.layers < 1 or self.dilation_cycle < 1:
            raise DgmError("--hidden, --layers and --dilation-cycle must be >= 1")
        for name in ("first_kernel", "kernel"):
            k = getattr(self, name)
            if k < 1 or k % 2 == 0:
                raise DgmError(f"--{name.replace('_', '-')} must be an odd positive number, got {k}")
        if self.order_sampling not in ORDER_SAMPLING:
            raise DgmError(f"--order-sampling must be {' or '.join(ORDER_SAMPLING)}, got {self.order_sampling!r}")


def _gate(t: torch.Tensor) -> torch.Tensor:
    a, b = t.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class _Block(nn.Module):
    """h + 1x1(tanh(a) * sigmoid(b)), (a, b) = LMConv(ELU(h)): a gated residual unit with a local mask."""

    def __init__(self, h: int, k: int, dilation: int):
        super().__init__()
        self.conv = LocallyMaskedConv2d(h, 2 * h, k, dilation)
        self.out = nn.Conv2d(h, h, 1)

    def forward(self, h: torch.Tensor, masks: TapMasks) -> torch.Tensor:
        return h + self.out(_gate(self.conv(F.elu(h), masks)))


@MODELS.register("lmconv", help="LMConv: locally masked convolutions, one network for many orders "
                                 "(Jain et al. 2020)")
class LMConv(AnyOrderModel):
    """Locally masked gated PixelCNN over any orders of the pixels."""

    Config = LMConvConfig

    def __init__(self, config: LMConvConfig):
        super().__init__(config)
        c, h = config, config.hidden
        # input: the scaled pixel and a constant 1 (so zero padding is told apart from a pixel at 0)
        self.inp = LocallyMaskedConv2d(c.channels + 1, h, c.first_kernel)
        self.blocks = nn.ModuleList(_Block(h, c.kernel, 2 ** (i % c.dilation_cycle)) for i in range(c.layers))
        self.head = nn.Sequential(nn.ELU(), nn.Conv2d(h, h, 1), nn.ELU(), nn.Conv2d(h, c.channels * self.out_per_channel, 1))
        self._cache: Dict[Tuple[str, bytes], Dict[Tuple[int, int, bool], TapMasks]] = {}

    # -- masks: built once per order (and geometry), never from the batch -------------------------------------------
    def _geometries(self):
        c = self.config
        return [(c.first_kernel, 1, False)] + [(c.kernel, 2 ** (i % c.dilation_cycle), True) for i in range(c.layers)]

    def _build(self, order: torch.Tensor) -> Dict[Tuple[int, int, bool], TapMasks]:
        c = self.config
        return {g: tap_masks(order, c.height, c.width, *g) for g in set(self._geometries())}

    def masks(self, order: torch.Tensor) -> Dict[Tuple[int, int, bool], TapMasks]:
        """The ``TapMasks`` of every layer geometry (kernel, dilation, centre) for one permutation, cached."""
        key = (str(order.device), order.cpu().numpy().tobytes())
        if key not in self._cache:
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = self._build(order)
        return self._cache[key]

    def _run(self, x: torch.Tensor, masks: Dict[Tuple[int, int, bool], TapMasks]) -> torch.Tensor:
        geos = self._geometries()
        inp = self.scaled_input(x)
        t = self.inp(torch.cat([inp, torch.ones_like(inp[:, :1])], 1), masks[geos[0]])
        for block, g in zip(self.blocks, geos[1:]):
            t = block(t, masks[g])
        return self._shape_logits(self.head(t))

    def _logits(self, x: torch.Tensor, y: Optional[torch.Tensor], order: torch.Tensor) -> torch.Tensor:
        return self._run(x, self.masks(order.to(x.device)))

    def training_log_prob(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """log p(x_b; pi_b), the orders drawn uniformly from the global RNG: one per example (``order_sampling``
        "example", AnyOrderModel), or one for the whole batch ("batch", as the official code of Jain et al. 2020)."""
        if self.config.order_sampling == "example":
            return super().training_log_prob(x, y)
        return self.log_prob(x, y, order=int(torch.randint(self.order_table.shape[0], (1,))))

    # -- cached sampling: every layer's activation map is the cache ----------------------------------------------
    sample_methods = ("cached", "naive")

    def _cached_steps(self, x: torch.Tensor, order: torch.Tensor, draw=None) -> torch.Tensor:
        """Every layer's output at location p depends only on pixels before p in the order (``dgm.nn.lmconv``), so
        it is final once the pixel before p is placed and never changes after. The walk computes, at p's step, every
        layer at p only: a masked k x k window of the layer below's map (its open taps read p itself, computed just
        before, or locations earlier in the order, computed at their own steps), the gate, the residual and the head.
        A draw costs O(D L k^2 h^2) instead of the D full passes (O(D^2 ...)) of naive sampling
        (AnyOrderModel._cached_steps)."""
        c = self.config
        b, hgt, wid = x.shape[0], c.height, c.width
        dtype = next(self.parameters()).dtype
        masks = self.masks(order.to(x.device))
        geos = self._geometries()
        convs = [self.inp] + [block.conv for block in self.blocks]
        pad = max(k // 2 * d for k, d, _ in geos)
        pw = wid + 2 * pad                       # the maps are (B, (H + 2 pad) * (W + 2 pad), channels), zero margin

        def plane(channels):
            return torch.zeros(b, (hgt + 2 * pad) * pw, channels, dtype=dtype, device=x.device)

        def inside(m):                           # (B, H*W, ch) -> the map's inside, as (B, H, W, ch)
            return m.view(b, hgt + 2 * pad, pw, -1)[:, pad:pad + hgt, pad:pad + wid]

        inp = plane(c.channels + 1)
        inside(inp)[..., :c.channels] = self.scaled_input(x).permute(0, 2, 3, 1)
        inside(inp)[..., c.channels] = 1
        maps = [inp] + [plane(c.hidden) for _ in self.blocks]          # maps[l]: what layer l reads (ELU'd)
        # per layer: the taps' offsets in the flat map, the weight as (k*k*Cin, Cout) in tap-major order, the masks
        # as (H*W, k*k, 1) (a location's row is contiguous)
        offsets = [torch.tensor([(a - k // 2) * d * pw + (e - k // 2) * d for a in range(k) for e in range(k)],
                                device=x.device) for k, d, _ in geos]
        weights = [conv.weight.permute(0, 2, 3, 1).reshape(conv.out_channels, -1).T.contiguous() for conv in convs]
        taps = [masks[g].mask.to(dtype).reshape(g[0] * g[0], hgt * wid).T.contiguous().unsqueeze(-1) for g in geos]
        out_w = [block.out.weight[:, :, 0, 0].T.contiguous() for block in self.blocks]
        head = [(m.weight[:, :, 0, 0].T.contiguous(), m.bias) for m in self.head if isinstance(m, nn.Conv2d)]
        flat = x.view(b, -1)
        out = torch.empty(b, hgt * wid, c.channels * self.out_per_channel, dtype=dtype, device=x.device)
        for pos in order.tolist():
            i, j = divmod(pos, wid)
            centre = (i + pad) * pw + j + pad
            t = None
            for layer, conv in enumerate(convs):
                window = maps[layer].index_select(1, offsets[layer] + centre) * taps[layer][pos]   # (B, k*k, Cin)
                a = torch.addmm(conv.bias, window.reshape(b, -1), weights[layer])
                if layer == 0:
                    t = a
                else:
                    t = t + torch.addmm(self.blocks[layer - 1].out.bias, _gate(a), out_w[layer - 1])
                if layer < len(self.blocks):
                    maps[layer + 1][:, centre] = F.elu(t)
            logits = t
            for w, bias in head:                                            # ELU, 1x1, ELU, 1x1 at one location
                logits = torch.addmm(bias, F.elu(logits), w)
            self._emit(out, flat, pos, logits, draw)
            inp[:, centre, :c.channels] = self.scaled_input(flat[:, pos:pos + 1])
        return out
