"""Pieces shared by latent-variable models (seed 002): Gaussian densities, the analytic KL, the IWAE bound, and the
discrete pixel likelihoods p(x|z) of a decoder.

Conventions: z has shape (B, D); a diagonal Gaussian is given by (mu, logvar); log-densities are summed over every
non-batch dimension, in nats. Images are integer levels 0..K-1 as everywhere in dgm.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

LOG_2PI = math.log(2 * math.pi)


def log_normal(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over the last dimension; broadcasts over leading ones."""
    return -0.5 * (LOG_2PI + logvar + (z - mu) ** 2 * torch.exp(-logvar)).sum(-1)


def log_std_normal(z: Tensor) -> Tensor:
    """log N(z; 0, I) summed over the last dimension."""
    return -0.5 * (LOG_2PI + z ** 2).sum(-1)


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) per example, in closed form (Kingma & Welling 2014, app. B):
    -1/2 sum_j (1 + log s_j^2 - mu_j^2 - s_j^2)."""
    return -0.5 * (1 + logvar - mu ** 2 - torch.exp(logvar)).sum(-1)


def reparameterize(mu: Tensor, logvar: Tensor, k: Optional[int] = None,
                   generator: Optional[torch.Generator] = None) -> Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I): (B, D), or (k, B, D) when k is given. With a (CPU) generator the
    noise is reproducible whatever the device."""
    shape = mu.shape if k is None else (k, *mu.shape)
    if generator is None:
        eps = torch.randn(shape, device=mu.device, dtype=mu.dtype)
    else:
        eps = torch.randn(shape, generator=generator, dtype=mu.dtype).to(mu.device)
    return mu + torch.exp(0.5 * logvar) * eps


def iwae_log_prob(mu: Tensor, logvar: Tensor, log_px_given_z: Callable[[Tensor], Tensor], k: int,
                  chunk: int = 0, generator: Optional[torch.Generator] = None) -> Tensor:
    """Importance-weighted estimate of log p(x) (Burda et al. 2016) with k samples z_i ~ q(z|x) = N(mu, exp(logvar)):

        log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x),

    a lower bound on log p(x) in expectation, equal to the ELBO's single-sample estimate at k = 1 and tightening as k
    grows. ``log_px_given_z`` maps z of shape (m, B, D) to (m, B). Samples are drawn ``chunk`` at a time (0: all k)
    and combined with a running log-sum-exp, so memory stays bounded for k = 5000. Returns (B,)."""
    def log_w(m: int) -> Tensor:
        z = reparameterize(mu, logvar, m, generator)                      # (m, B, D)
        return log_px_given_z(z) + log_std_normal(z) - log_normal(z, mu, logvar)

    return log_mean_exp_chunked(log_w, k, chunk).to(mu.dtype)


def log_mean_exp_chunked(log_w: Callable[[int], Tensor], k: int, chunk: int = 0) -> Tensor:
    """log (1/k) sum_i exp(w_i) over k log-weights drawn ``chunk`` at a time by ``log_w(m) -> (m, B)``, combined
    with a running log-sum-exp in float64. Returns (B,) float64."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    chunk = k if chunk <= 0 else min(chunk, k)
    total, done = None, 0
    while done < k:
        m = min(chunk, k - done)
        part = torch.logsumexp(log_w(m).double(), dim=0)
        total = part if total is None else torch.logaddexp(total, part)
        done += m
    return total - math.log(k)


# -- discrete pixel likelihoods p(x | decoder output) ------------------------------------------------------------------
LIKELIHOODS = ("bernoulli", "categorical", "logistic", "gaussian")


def params_per_pixel(likelihood: str, levels: int) -> int:
    """Decoder outputs per data element: 1 Bernoulli logit, K categorical logits, or a location and a log-scale."""
    return {"bernoulli": 1, "categorical": levels, "logistic": 2, "gaussian": 2}[likelihood]


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


def pixel_log_prob(x: Tensor, out: Tensor, likelihood: str, levels: int) -> Tensor:
    """log p(x | decoder output) summed per example. ``x``: (..., C, H, W) levels; ``out``: (..., C * P, H, W) with
    P = params_per_pixel, grouped by channel. Leading dimensions (e.g. k samples) broadcast against ``x``."""
    c = x.shape[-3]
    p = params_per_pixel(likelihood, levels)
    out = out.unflatten(-3, (c, p))                                   # (..., C, P, H, W)
    x = x.to(out.dtype)
    if likelihood == "bernoulli":
        logits = out[..., 0, :, :]
        lp = -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none")
    elif likelihood == "categorical":
        logp = torch.log_softmax(out, dim=-3)                         # over the K levels
        idx = x.long().unsqueeze(-3).expand(*logp.shape[:-3], 1, *logp.shape[-2:])
        lp = logp.gather(-3, idx).squeeze(-3)
    else:
        lp = discretized_log_prob(x, out[..., 0, :, :], out[..., 1, :, :].clamp(min=-7.0), levels, likelihood)
    return lp.flatten(-3).sum(-1)


def pixel_sample(out: Tensor, likelihood: str, levels: int, channels: int, mean: bool = False,
                 generator: Optional[torch.Generator] = None) -> Tensor:
    """Draw levels 0..K-1 from the decoder output (B, C * P, H, W); ``mean=True`` returns E[x] in levels instead
    (a float image for grids)."""
    out = out.float().unflatten(1, (channels, params_per_pixel(likelihood, levels)))
    b, c, _, h, w = out.shape
    u = torch.rand((b, c, h, w), generator=generator).to(out.device) if not mean else None
    if likelihood == "bernoulli":
        p = torch.sigmoid(out[:, :, 0])
        return p if mean else (u < p).float()
    if likelihood == "categorical":
        probs = torch.softmax(out, dim=2)
        if mean:
            return (probs * torch.arange(levels, device=out.device).view(1, 1, -1, 1, 1)).sum(2)
        return (probs.cumsum(2) < u.unsqueeze(2)).sum(2).clamp(max=levels - 1).float()
    loc, log_scale = out[:, :, 0], out[:, :, 1].clamp(min=-7.0)
    if mean:
        return ((loc.clamp(-1, 1) + 1) * (levels - 1) / 2)
    # inverse CDF of the continuous density, then the level whose bin holds the draw
    u = u.clamp(1e-6, 1 - 1e-6)
    q = torch.log(u) - torch.log1p(-u) if likelihood == "logistic" else math.sqrt(2) * torch.erfinv(2 * u - 1)
    v = loc + torch.exp(log_scale) * q
    return ((v + 1) * (levels - 1) / 2).round().clamp(0, levels - 1)


__all__ = ["LIKELIHOODS", "log_normal", "log_std_normal", "gaussian_kl", "reparameterize", "iwae_log_prob",
           "log_mean_exp_chunked", "discretized_log_prob", "pixel_log_prob", "pixel_sample", "params_per_pixel"]
