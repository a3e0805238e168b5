"""NADE: the neural autoregressive distribution estimator (Larochelle & Murray 2011), any order, and its
order-agnostic ensemble EoNADE (Uria, Murray & Larochelle 2014, "A Deep and Tractable Density Estimator").

For an order pi of the D = H*W pixels (greyscale), the pixel generated i-th is predicted from
h_i = sigmoid(c + sum_{j<i} W[:, pi_j] v(x_{pi_j})), with v the pixel value (binary) or its one-hot (K levels),
through V[pi_i] h_i + b[pi_i]. Sharing W across the D conditionals makes every hidden pre-activation one step of a
running sum, so all D conditionals cost O(D H) (an exclusive cumulative sum over the order), not O(D^2 H).
``--orders 1`` is classic NADE; N > 1 trains the shared weights on N orders, one drawn per example, and
``log_prob(x)`` is the ensemble over them (EoNADE's test-time average, here over a fixed set of N orders).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

import torch
import torch.nn as nn

from ..errors import DgmError
from .anyorder import AnyOrderConfig, AnyOrderModel, greyscale_only
from .base import MODELS


@dataclass
class NADEConfig(AnyOrderConfig):
    hidden: int = 500  # hidden units H shared by the D conditionals
    order_family: str = "random"  # orders from: raster, s-curve, hilbert (8 each), mixed (24), random (raster + N-1 random)

    @classmethod
    def tiny(cls) -> Dict[str, Any]:
        return {**super().tiny(), "hidden": 16, "orders": 2}

    def __post_init__(self):
        super().__post_init__()
        greyscale_only("nade", self.channels)
        if self.hidden < 1:
            raise DgmError(f"--hidden must be >= 1, got {self.hidden}")


@MODELS.register("nade", help="NADE / EoNADE with --orders N: weight-shared O(DH) conditionals (Larochelle & Murray 2011)")
class NADE(AnyOrderModel):
    """NADE under any order of the pixels; exact likelihood, ensemble over the model's orders by default."""

    Config = NADEConfig

    def __init__(self, config: NADEConfig):
        super().__init__(config)
        d, h = config.height * config.width, config.hidden
        self.in_per_pixel = 1 if self.binary else config.levels
        self.W = nn.Parameter(torch.randn(d, self.in_per_pixel, h) * (1.0 / (d * self.in_per_pixel) ** 0.5))
        self.c = nn.Parameter(torch.zeros(h))
        self.V = nn.Parameter(torch.randn(d, self.out_per_channel, h) * (1.0 / h ** 0.5))
        self.b = nn.Parameter(torch.zeros(d, self.out_per_channel))

    #: elements (examples * D * H) of the hidden activations computed at once: bounds the memory of evaluation
    #: and keeps the working set in cache (about 3x faster on a CPU than one pass over a batch of 64 at 28x28)
    chunk_elements = 2 ** 23

    def _logits(self, x: torch.Tensor, y: Optional[torch.Tensor], order: torch.Tensor) -> torch.Tensor:
        v = self._pixel_inputs(x.reshape(x.shape[0], -1), self.W.dtype)  # (B, D, Kin)
        W, V, b = self.W[order], self.V[order], self.b[order]  # everything in generation order
        step_b = max(1, self.chunk_elements // (W.shape[0] * W.shape[2]))
        logits = torch.cat([self._conditionals(v[i:i + step_b, order], W, V, b)
                            for i in range(0, x.shape[0], step_b)])  # (B, D, Kout), generation order
        out = torch.empty_like(logits)
        out[:, order] = logits  # back to positions
        return self._layout(out)

    # -- cached sampling: the running pre-activation is the cache ------------------------------------
    sample_methods = ("cached", "naive")

    def _cached_steps(self, x: torch.Tensor, order: torch.Tensor, draw=None) -> torch.Tensor:
        """The cache is the running sum a = sum_{j<i} W[pi_j] v(x_pi_j) of the pixels already placed: pixel i's
        logits come from sigmoid(c + a) in O(H K) and a grows by its input, so a whole image costs O(D H K), not
        the D network passes (O(D^2 H K)) of naive sampling (AnyOrderModel._cached_steps)."""
        flat = x.view(x.shape[0], -1)
        acc = torch.zeros(x.shape[0], self.W.shape[2], dtype=self.W.dtype, device=x.device)
        out = torch.empty(x.shape[0], flat.shape[1], self.V.shape[1], dtype=self.W.dtype, device=x.device)
        for pos in order.tolist():
            logits = torch.sigmoid(self.c + acc) @ self.V[pos].T + self.b[pos]  # (B, Kout)
            self._emit(out, flat, pos, logits, draw)
            acc = acc + self._pixel_inputs(flat[:, pos], self.W.dtype) @ self.W[pos]
        return out

    def _conditionals(self, v, W, V, b) -> torch.Tensor:
        """Logits of every pixel in generation order from the inputs v (B, D, Kin) in generation order."""
        step = torch.einsum("bdk,dkh->bdh", v, W)  # what pixel i adds to the running pre-activation
        # exclusive running sum (pixels 0..i-1 of the order), shifted rather than cumsum - step so that pixel i's
        # own value cannot leak into its conditional through rounding
        pre = self.c + torch.cat([torch.zeros_like(step[:, :1]), torch.cumsum(step[:, :-1], 1)], 1)
        return torch.einsum("bdh,dkh->bdk", torch.sigmoid(pre), V) + b
