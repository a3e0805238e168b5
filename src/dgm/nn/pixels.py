"""Discrete pixel likelihoods p(x | network output), shared by autoregressive models, VAEs and the VQ-VAE.

Data are integer levels 0..K-1. A network gives P parameters per data element along one axis ``dim`` of its output
(P = ``params_per_pixel``): 1 Bernoulli logit (K = 2), K categorical logits, or a location and a log-scale of a
logistic / Gaussian density integrated over the bin of each level (discretized, Salimans et al. 2017, one
component). ``log_prob`` is elementwise, in nats; ``sample`` is an inverse-CDF draw from given uniforms, so a draw is
reproducible from its noise; ``mean`` is E[x] in levels (the location for the discretized densities). Also
``bits_per_dim``, the unit every NLL is reported in.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import DgmError

LIKELIHOODS = ("bernoulli", "categorical", "logistic", "gaussian")
MIN_LOG_SCALE = -7.0   # the discretized densities' log-scale is clamped here (bins are >= 2/255 wide)


def bits_per_dim(nll_nats, dims: int):
    """A per-example NLL in nats -> bits per dimension: nats / (dims ln 2)."""
    return nll_nats / (dims * math.log(2.0))


def _log1mexp(t: Tensor) -> Tensor:
    """log(1 - exp(t)) for t < 0, stable at both ends (Maechler 2012)."""
    t = t.clamp(max=-1e-12)
    ln2 = math.log(2.0)
    near = t > -ln2
    # each branch gets inputs where it is finite, so the branch torch.where discards has no inf/nan gradient
    a = torch.log(-torch.expm1(torch.where(near, t, torch.full_like(t, -ln2))))
    b = torch.log1p(-torch.exp(torch.where(near, torch.full_like(t, -ln2), t)))
    return torch.where(near, a, b)


def _log_cdf(kind: str, u: Tensor) -> Tensor:
    return -F.softplus(-u) if kind == "logistic" else torch.special.log_ndtr(u)


def discretized_log_prob(x: Tensor, loc: Tensor, log_scale: Tensor, levels: int, kind: str) -> Tensor:
    """log P(x) per element for a logistic or Gaussian density integrated over the bin of each level
    (Salimans et al. 2017, one component): levels map to centres in [-1, 1] with half-width 1/(K-1); the first and
    last bins extend to -inf and +inf, so the K probabilities sum to one."""
    centre = x * (2.0 / (levels - 1)) - 1.0
    half = 1.0 / (levels - 1)
    inv = torch.exp(-log_scale)
    hi = _log_cdf(kind, (centre + half - loc) * inv)          # log F(upper edge)
    lo = _log_cdf(kind, (centre - half - loc) * inv)          # log F(lower edge)
    top = _log_cdf(kind, -(centre - half - loc) * inv)        # log(1 - F(lower edge)), symmetric densities
    mid = hi + _log1mexp(lo - hi)
    return torch.where(x <= 0, hi, torch.where(x >= levels - 1, top, mid))


@dataclass(frozen=True)
class PixelLikelihood:
    """p(x | out) for levels 0..``levels``-1; ``kind`` one of ``LIKELIHOODS``.

    ``out`` holds ``params_per_pixel`` numbers along axis ``dim``; x has the shape of ``out`` without that axis
    (or broadcasts to it: leading sample dimensions of ``out``, e.g. k importance samples, are allowed).
    """

    kind: str
    levels: int

    def __post_init__(self):
        if self.kind not in LIKELIHOODS:
            raise DgmError(f"unknown pixel likelihood {self.kind!r}; choose one of {', '.join(LIKELIHOODS)}")
        if self.kind == "bernoulli" and self.levels != 2:
            raise DgmError(f"a Bernoulli likelihood needs binary data, got {self.levels} levels")

    @property
    def params_per_pixel(self) -> int:
        """1 Bernoulli logit, K categorical logits, or a location and a log-scale."""
        return {"bernoulli": 1, "categorical": self.levels}.get(self.kind, 2)

    def _loc_scale(self, out: Tensor, dim: int):
        return out.select(dim, 0), out.select(dim, 1).clamp(min=MIN_LOG_SCALE)

    def log_prob(self, x: Tensor, out: Tensor, dim: int = -3) -> Tensor:
        """log p(x | out) per element, in nats, in ``out``'s dtype."""
        x = x.to(out.dtype)
        if self.kind == "bernoulli":
            logits = out.select(dim, 0)
            return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none")
        if self.kind == "categorical":
            logp = torch.log_softmax(out, dim=dim)                    # over the K levels
            shape = list(logp.shape)
            shape[dim] = 1
            return logp.gather(dim, x.long().unsqueeze(dim).expand(shape)).squeeze(dim)
        loc, log_scale = self._loc_scale(out, dim)
        return discretized_log_prob(x, loc, log_scale, self.levels, self.kind)

    def sample(self, out: Tensor, u: Tensor, dim: int = -3) -> Tensor:
        """Levels (float) drawn by inverse CDF from uniforms ``u`` in [0, 1) of the shape of ``out`` without ``dim``."""
        out = out.float()
        if self.kind == "bernoulli":
            return (u < torch.sigmoid(out.select(dim, 0))).float()
        if self.kind == "categorical":
            cdf = torch.softmax(out, dim=dim).cumsum(dim)
            return (cdf < u.unsqueeze(dim)).sum(dim).clamp(max=self.levels - 1).float()
        # inverse CDF of the continuous density, then the level whose bin holds the draw
        loc, log_scale = self._loc_scale(out, dim)
        u = u.clamp(1e-6, 1 - 1e-6)
        q = torch.log(u) - torch.log1p(-u) if self.kind == "logistic" else math.sqrt(2) * torch.erfinv(2 * u - 1)
        v = loc + torch.exp(log_scale) * q
        return ((v + 1) * (self.levels - 1) / 2).round().clamp(0, self.levels - 1)

    def mean(self, out: Tensor, dim: int = -3) -> Tensor:
        """E[x | out] in levels (a float image for grids). Exact for Bernoulli and categorical; for the discretized
        densities the location as a level, clamped to [0, K-1] (E[x] up to the mass the edge bins gather)."""
        out = out.float()
        if self.kind == "bernoulli":
            return torch.sigmoid(out.select(dim, 0))
        if self.kind == "categorical":
            shape = [1] * out.dim()
            shape[dim] = -1
            return (torch.softmax(out, dim=dim) * torch.arange(self.levels, device=out.device).view(shape)).sum(dim)
        loc = out.select(dim, 0)
        return (loc.clamp(-1, 1) + 1) * (self.levels - 1) / 2

    # -- decoder layout: (..., C * P, H, W), the P parameters of each channel next to each other ---------------------
    def image_log_prob(self, x: Tensor, out: Tensor) -> Tensor:
        """log p(x | out) summed per example; ``x`` (..., C, H, W), ``out`` (..., C * P, H, W)."""
        out = out.unflatten(-3, (x.shape[-3], self.params_per_pixel))    # (..., C, P, H, W)
        return self.log_prob(x, out).flatten(-3).sum(-1)

    def image_draw(self, out: Tensor, mean: bool = False, generator: Optional[torch.Generator] = None) -> Tensor:
        """Levels drawn from p(x | out) for ``out`` (B, C * P, H, W), uniforms from ``generator`` (CPU);
        ``mean=True``: E[x | out] instead."""
        out = out.float().unflatten(1, (out.shape[1] // self.params_per_pixel, self.params_per_pixel))
        if mean:
            return self.mean(out, dim=2)
        b, c, _, h, w = out.shape
        return self.sample(out, torch.rand((b, c, h, w), generator=generator).to(out.device), dim=2)


__all__ = ["LIKELIHOODS", "PixelLikelihood", "bits_per_dim", "discretized_log_prob"]
