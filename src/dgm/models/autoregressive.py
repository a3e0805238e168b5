"""Raster-order autoregressive models over discrete pixels: p(x) = prod_i p(x_i | x_<i).

Generation order: rows top to bottom, pixels left to right, and within a pixel the channels
R -> G -> B (seed 000). Inputs are (B, C, H, W) tensors of integer levels 0..K-1 (anything else is refused with a
ValueError by ``ImageModel.check_input``, which every ``forward`` calls first). ``forward`` returns (B, C, H, W)
Bernoulli logits when K == 2 and (B, K, C, H, W) logits otherwise.

Sampling methods (``sample``/``complete``, ``method=``): "naive" runs the network once per element; "cached"
(models that define ``_cache``: PixelCNN, Gated PixelCNN) keeps every layer's activations and computes only those
the new element makes computable (Ramachandran et al. 2017; ``dgm.nn.incremental``). Given the same uniforms both
give the same draws; their logits differ only by float summation order (docs/autoregressive.md).
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch

from .. import interrupt
from ..nn.blocks import evaluating
from ..nn.pixels import PixelLikelihood, bits_per_dim  # noqa: F401  (bits_per_dim: dgm.models re-exports it)
from .base import ImageModel, InputError

SAMPLE_METHODS = ("cached", "naive")


class AutoregressiveModel(ImageModel):
    """Shared likelihood, sampling and completion for every raster-order model."""

    capabilities = ("log_prob", "complete")
    sample_methods = ("naive",)  # models with a ``_cache`` put "cached" first (their default)
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

    def _draw_inputs(self, x, y, generator, noise):
        """A working copy of x on the model's device, the draws' labels and their uniforms (``noise`` or fresh ones
        from ``generator``), shared by every element-by-element sampler."""
        x = x.to(self.device).float().clone()
        y = self._default_labels(x.shape[0], y)
        if noise is None:
            noise = torch.rand(x.shape, generator=generator, device="cpu").to(self.device)
        return x, y, noise

    def sample_method(self, method: Optional[str] = None) -> str:
        """The sampling method to use: ``method`` checked against ``sample_methods``; None -> the model's default."""
        if method is None:
            return self.sample_methods[0]
        if method not in self.sample_methods:
            what = f"{type(self).__name__} has no {method!r} sampling" if method in SAMPLE_METHODS else \
                f"unknown sampling method {method!r}"
            raise InputError(f"{what}; choose one of {', '.join(self.sample_methods)}")
        return method

    @torch.no_grad()
    def sample(self, n: int, y: Optional[torch.Tensor] = None, generator: Optional[torch.Generator] = None,
               noise: Optional[torch.Tensor] = None, *, method: Optional[str] = None) -> torch.Tensor:
        """Draw n images (levels as float), one element at a time in the generation order.

        ``y``: class labels for a conditional model (default: 0, 1, 2, ... cycling).
        ``noise``: (n, C, H, W) uniforms in [0, 1) that fix every draw; default drawn from ``generator``.
        ``method``: "cached" or "naive" (one of ``sample_methods``; default: the first, "cached" where it exists).
        """
        c = self.config
        x = torch.zeros(n, c.channels, c.height, c.width, device=self.device)
        observed = torch.zeros(c.channels, c.height, c.width, dtype=torch.bool, device=self.device)
        return self.complete(x, observed, y=y, generator=generator, noise=noise, method=method)

    @torch.no_grad()
    def complete(self, x: torch.Tensor, observed: torch.Tensor, y: Optional[torch.Tensor] = None,
                 generator: Optional[torch.Generator] = None, noise: Optional[torch.Tensor] = None, *,
                 method: Optional[str] = None) -> torch.Tensor:
        """Sample the elements where ``observed`` is False, keep the others.

        ``observed`` is a bool mask broadcastable to x, e.g. (C, H, W) or (H, W). A raster-order
        model conditions each new element on every earlier element (observed or sampled); observed
        elements later in the order cannot inform it (that needs other orders, e.g. LMConv).
        ``method`` as for ``sample``.
        """
        method = self.sample_method(method)
        self.check_shape(x)
        self.check_levels(x)  # the unobserved values too: they are fed to the network (and NaN * 0 is NaN)
        try:
            obs = torch.broadcast_to(torch.as_tensor(observed, device=self.device).bool(), x.shape)
        except RuntimeError:
            raise InputError(f"expected observed as a mask broadcastable to x's shape {tuple(x.shape)}, got "
                             f"{tuple(torch.as_tensor(observed).shape)}") from None
        with evaluating(self):
            x, y, noise = self._draw_inputs(x, y, generator, noise)
            if method == "cached":
                self._complete_cached(x, obs, y, noise)
                return x
            if not self._depends_on_input:
                logits = self(x, y)
                for ch, i, j in self.order():
                    self._fill(x, obs, logits, noise, ch, i, j)
                return x
            for ch, i, j in self.order():
                if bool(obs[:, ch, i, j].all()):
                    continue
                interrupt.check()  # one network pass per element: stop promptly when asked
                self._fill(x, obs, self(x, y), noise, ch, i, j)
            return x

    def _fill(self, x, obs, logits, noise, ch, i, j) -> None:
        self._put(x, obs, logits[:, ch, i, j] if self.binary else logits[:, :, ch, i, j], noise, ch, i, j)

    def _put(self, x, obs, at, noise, ch, i, j) -> None:
        """Draw element (ch, i, j) from its logits ``at`` where it is not observed."""
        v = self._draw(at, noise[:, ch, i, j])
        x[:, ch, i, j] = torch.where(obs[:, ch, i, j], x[:, ch, i, j], v)

    # -- cached sampling -----------------------------------------------------------------------
    def _cache(self, n: int, y: Optional[torch.Tensor]):
        """The per-layer caches of n examples (models with "cached" in ``sample_methods``): an object whose
        ``step(ch, i, j)`` returns the logits of element (ch, i, j), (n, Kout), computed from the elements before it
        in the order, and whose ``put(ch, i, j, v)`` stores that element's value (levels, (n,))."""
        raise NotImplementedError

    def _complete_cached(self, x, obs, y, noise, logits: Optional[torch.Tensor] = None) -> None:
        """``complete`` with the caches: fills x in place; ``logits`` (public layout) receives every step's logits."""
        cache, c = self._cache(x.shape[0], y), self.config
        raster = ((ch, i, j) for i in range(c.height) for j in range(c.width) for ch in range(c.channels))
        for ch, i, j in raster:  # the order the caches are built for, whatever ``order()`` a subclass declares
            interrupt.check()
            at = cache.step(ch, i, j)
            at = at[:, 0] if self.binary else at
            if logits is not None:
                logits[(slice(None),) * (1 if self.binary else 2) + (ch, i, j)] = at
            if not bool(obs[:, ch, i, j].all()):
                self._put(x, obs, at, noise, ch, i, j)
            cache.put(ch, i, j, x[:, ch, i, j])

    @torch.no_grad()
    def _incremental_logits(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``forward(x)`` computed the cached way, one element at a time with x as every element's value; equal to
        ``forward`` up to float summation order (the tolerance test of cached sampling)."""
        self.check_input(x, y)
        b, c = x.shape[0], self.config
        shape = (b, c.channels, c.height, c.width) if self.binary else (b, c.levels, c.channels, c.height, c.width)
        out = torch.zeros(shape, device=self.device)
        with evaluating(self):
            self._complete_cached(x.float().clone(), torch.ones_like(x, dtype=torch.bool), y, None, logits=out)
        return out
