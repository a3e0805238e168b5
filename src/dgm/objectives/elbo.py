"""The ELBO's pieces and the IWAE bound (seed 002): Gaussian densities, the analytic KL, the reparameterisation
trick, and importance-weighted estimates of log p(x) for latent-variable models.

Conventions: z has shape (B, D); a diagonal Gaussian is given by (mu, logvar); log-densities are summed over the last
dimension, in nats. The pixel likelihoods p(x|z) of decoders live in ``dgm.nn.pixels``.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch
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


__all__ = ["LOG_2PI", "log_normal", "log_std_normal", "gaussian_kl", "reparameterize", "iwae_log_prob",
           "log_mean_exp_chunked"]
