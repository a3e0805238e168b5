"""Raster-order autoregressive models over discrete pixels: p(x) = prod_i p(x_i | x_<i).

Generation order: rows top to bottom, pixels left to right, and within a pixel the channels
R -> G -> B (seed 000). Inputs are (B, C, H, W) tensors of integer levels 0..K-1 (anything else is refused with a
ValueError by ``ImageModel.check_input``, which every ``forward`` calls first). ``forward`` returns (B, C, H, W)
Bernoulli logits when K == 2 and (B, K, C, H, W) logits otherwise.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch

from ..nn.blocks import evaluating
from ..nn.pixels import PixelLikelihood, bits_per_dim  # noqa: F401  (bits_per_dim: dgm.models re-exports it)
from .base import ImageModel, InputError


class AutoregressiveModel(ImageModel):
    """Shared likelihood, sampling and completion for every raster-order model."""

    capabilities = ("log_prob", "complete")
    _depends_on_input = True  # False for baselines whose logits ignore x (one-pass sampling)

    def __init__(self, config):
        super().__init__(config)
        #: p(x_i | x_<i): Bernoulli logits for binary data, K-way categorical otherwise
        self.pixels = PixelLikelihood("bernoulli" if config.levels == 2 else "categorical", config.levels)

    # -- shapes --------------------------------------------------------------------------------
    @property
    def binary(self) -> bool:
        return self.config.levels == 2

    @property
    def out_per_channel(self) -> int:
        """Output logits per data channel: 1 Bernoulli logit, or K categorical logits."""
        return 1 if self.binary else self.config.levels

    def order(self) -> List[Tuple[int, int, int]]:
        """The generation order as (channel, row, column) triples."""
        c = self.config
        return [(ch, i, j) for i in range(c.height) for j in range(c.width) for ch in range(c.channels)]

    def _shape_logits(self, out: torch.Tensor) -> torch.Tensor:
        """(B, C*Kout, H, W) grouped by channel -> the public logits layout."""
        if self.binary:
            return out
        b, _, h, w = out.shape
        c, k = self.config.channels, self.config.levels
        return out.view(b, c, k, h, w).transpose(1, 2)

    # -- likelihood ----------------------------------------------------------------------------
    def conditionals(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """log p(x_i | x_<i) for every element, shape (B, C, H, W), in nats (``forward`` checks x and y)."""
        logits = self(x, y)
        return self.log_prob_from_logits(logits, x)

    def log_prob_from_logits(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x_i | x_<i) per element from the public logits layout, in nats."""
        if logits.dtype in (torch.float16, torch.bfloat16):  # AMP: take the likelihood in float32
            logits = logits.float()
        return self.pixels.log_prob(x, logits.unsqueeze(1) if self.binary else logits, dim=1)

    def log_prob(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Exact log-likelihood of each example, shape (B,), in nats."""
        return self.conditionals(x, y).flatten(1).sum(1)

    def completion_nll(self, x: torch.Tensor, observed: torch.Tensor, y: Optional[torch.Tensor] = None,
                       orders=None) -> torch.Tensor:
        """-sum over the hidden elements of log p(x_i | x_<i) in raster order, shape (B,), nats.

        ``observed``: a bool mask broadcastable to x, True where given. This is the NLL of a proper (normalised)
        distribution over the hidden elements, q(x_h | x_o) = prod_{i hidden} p(x_i | x_<i), but it only uses
        the observed elements EARLIER in raster order: for ``top`` it is exactly -log p(x_bottom | x_top), for
        ``bottom`` it is -log p(x_top) (no conditioning at all), for ``left``/``right`` each hidden pixel sees the
        observed pixels above it and to its left only. A raster model cannot condition on later pixels without
        marginalising them (intractable), so this is the honest number it can give. ``orders`` must be None.
        """
        if orders is not None:
            raise InputError(f"this {type(self).__name__} has the raster order only; pass orders=None")
        self.check_shape(x)
        try:
            obs = torch.broadcast_to(torch.as_tensor(observed, device=x.device).bool(), x.shape)
        except RuntimeError:
            raise InputError(f"expected observed as a mask broadcastable to x's shape {tuple(x.shape)}, got "
                             f"{tuple(torch.as_tensor(observed).shape)}") from None
        return -(self.conditionals(x, y) * ~obs).flatten(1).sum(1)

    def completion_choice(self, observed: torch.Tensor, k: int = 1):
        """(orders for ``completion_nll``, a description for `dgm eval`) with the observed pixel mask ``observed``:
        the raster order only (None), so k must be 1."""
        if k != 1:
            raise InputError(f"--orders-used {k}: this {type(self).__name__} has the raster order only; drop "
                             "--orders-used")
        return None, {"orders": "raster", "conditioning": "raster-causal: each hidden pixel sees the observed "
                                                          "pixels earlier in raster order only"}

    # -- sampling ------------------------------------------------------------------------------
    def _draw(self, logits_at: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Inverse-CDF draw from per-example logits using uniforms ``u`` (so draws are reproducible)."""
        return self.pixels.sample(logits_at.unsqueeze(1) if self.binary else logits_at, u, dim=1)

    def _default_labels(self, n: int, y: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        """The labels of n draws: y as given (one label for all, or n), checked; 0, 1, 2, ... cycling when None."""
        if not self.conditional:
            self.check_labels(y, n)  # refuses labels
            return None
        if y is None:
            return torch.arange(n, device=self.device) % self.config.num_classes
        y = torch.as_tensor(y, device=self.device)
        y = y.reshape(-1).expand(n) if y.numel() == 1 else y
        self.check_labels(y, n)
        return y.long()

    @torch.no_grad()
    def sample(self, n: int, y: Optional[torch.Tensor] = None, generator: Optional[torch.Generator] = None,
               noise: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Draw n images (levels as float) by running the network once per element (naive sampling).

        ``y``: class labels for a conditional model (default: 0, 1, 2, ... cycling).
        ``noise``: (n, C, H, W) uniforms in [0, 1) that fix every draw; default drawn from ``generator``.
        """
        c = self.config
        x = torch.zeros(n, c.channels, c.height, c.width, device=self.device)
        observed = torch.zeros(c.channels, c.height, c.width, dtype=torch.bool, device=self.device)
        return self.complete(x, observed, y=y, generator=generator, noise=noise)

    @torch.no_grad()
    def complete(self, x: torch.Tensor, observed: torch.Tensor, y: Optional[torch.Tensor] = None,
                 generator: Optional[torch.Generator] = None, noise: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Sample the elements where ``observed`` is False, keep the others.

        ``observed`` is a bool mask broadcastable to x, e.g. (C, H, W) or (H, W). A raster-order
        model conditions each new element on every earlier element (observed or sampled); observed
        elements later in the order cannot inform it (that needs other orders, e.g. LMConv).
        """
        self.check_shape(x)
        self.check_levels(x)  # the unobserved values too: they are fed to the network (and NaN * 0 is NaN)
        try:
            obs = torch.broadcast_to(torch.as_tensor(observed, device=self.device).bool(), x.shape)
        except RuntimeError:
            raise InputError(f"expected observed as a mask broadcastable to x's shape {tuple(x.shape)}, got "
                             f"{tuple(torch.as_tensor(observed).shape)}") from None
        with evaluating(self):
            n = x.shape[0]
            x = x.to(self.device).float().clone()
            y = self._default_labels(n, y)
            if noise is None:
                noise = torch.rand(x.shape, generator=generator, device="cpu").to(self.device)
            if not self._depends_on_input:
                logits = self(x, y)
                for ch, i, j in self.order():
                    self._fill(x, obs, logits, noise, ch, i, j)
                return x
            for ch, i, j in self.order():
                if bool(obs[:, ch, i, j].all()):
                    continue
                self._fill(x, obs, self(x, y), noise, ch, i, j)
            return x

    def _fill(self, x, obs, logits, noise, ch, i, j) -> None:
        at = logits[:, ch, i, j] if self.binary else logits[:, :, ch, i, j]
        v = self._draw(at, noise[:, ch, i, j])
        x[:, ch, i, j] = torch.where(obs[:, ch, i, j], x[:, ch, i, j], v)
