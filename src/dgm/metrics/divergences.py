"""Divergences between 1-D distributions, for checking GAN theory on toy data.

Densities are passed as callables ``logf(x) -> log f(x)`` evaluated on a 1-D numpy grid (a torch tensor is
accepted and converted); integrals are trapezoid rules on that grid, so the grid must cover the mass of both
densities and be fine enough to resolve them. All values are in nats.

Formulas (Goodfellow et al. 2014; Arjovsky et al. 2017):

- KL(p || q) = int p(x) log(p(x) / q(x)) dx
- JS(p || q) = 1/2 KL(p || m) + 1/2 KL(q || m), m = (p + q) / 2, so 0 <= JS <= log 2
- D*(x) = p(x) / (p(x) + q(x)) = sigmoid(log p(x) - log q(x)), the optimal discriminator for a fixed generator
- V(G, D) = E_p log D(x) + E_q log(1 - D(x)); at D = D*, V(G, D*) = 2 JS(p || q) - log 4
  (the lecture writes "JS - log 4" with JS = KL(p||m) + KL(q||m), i.e. without the 1/2)
- W1(P, Q) = int |F_P(x) - F_Q(x)| dx in 1-D; for two samples of equal size n this is
  1/n sum_i |a_(i) - b_(i)| over the sorted samples (the optimal coupling in 1-D is monotone).
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Union

import numpy as np

ArrayLike = Union[np.ndarray, "torch.Tensor"]  # noqa: F821
LogDensity = Callable[[np.ndarray], ArrayLike]

_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy >= 2.0 renamed trapz

__all__ = ["js_divergence", "kl_divergence", "wasserstein1_1d", "optimal_discriminator", "gan_value"]


def _as_numpy(v) -> np.ndarray:
    if hasattr(v, "detach"):  # a torch tensor
        v = v.detach().cpu().numpy()
    return np.asarray(v, dtype=np.float64)


def _grid(grid) -> np.ndarray:
    g = _as_numpy(grid).reshape(-1)
    if g.size < 2 or np.any(np.diff(g) <= 0):
        raise ValueError("grid must be a 1-D, strictly increasing array with at least 2 points")
    return g


def _log_on(logf, x: np.ndarray) -> np.ndarray:
    """log f on x: ``logf`` is a callable, or already an array of values on x."""
    v = _as_numpy(logf(x) if callable(logf) else logf).reshape(-1)
    if v.shape != x.shape:
        raise ValueError(f"log density gave {v.shape[0]} values for {x.shape[0]} points")
    return v


def _kl_integrand(lp: np.ndarray, lq: np.ndarray) -> np.ndarray:
    """p (log p - log q), with 0 log 0 = 0 and +inf where p > 0 = q."""
    p = np.exp(lp)
    with np.errstate(invalid="ignore"):
        out = p * (lp - lq)
    return np.where(p > 0, out, 0.0)


def kl_divergence(logp: LogDensity, logq: LogDensity, grid) -> float:
    """KL(p || q) = int p log(p / q) dx in nats, by the trapezoid rule on ``grid`` (+inf if q = 0 where p > 0)."""
    x = _grid(grid)
    return float(_trapezoid(_kl_integrand(_log_on(logp, x), _log_on(logq, x)), x))


def js_divergence(logp: LogDensity, logq: LogDensity, grid) -> float:
    """JS(p || q) = 1/2 KL(p || m) + 1/2 KL(q || m), m = (p + q)/2, in nats (in [0, log 2]), trapezoid on ``grid``.

    log m = logaddexp(log p, log q) - log 2 (stable log-sum-exp), so tails where both densities underflow
    in linear space contribute exactly 0 instead of NaN.
    """
    x = _grid(grid)
    lp, lq = _log_on(logp, x), _log_on(logq, x)
    lm = np.logaddexp(lp, lq) - math.log(2.0)
    integrand = 0.5 * _kl_integrand(lp, lm) + 0.5 * _kl_integrand(lq, lm)
    return float(_trapezoid(integrand, x))


def optimal_discriminator(logp: LogDensity, logq: LogDensity, x) -> np.ndarray:
    """D*(x) = p(x) / (p(x) + q(x)) = sigmoid(log p(x) - log q(x)) (Goodfellow et al. 2014, Prop. 1).

    ``logp``/``logq`` are callables (or arrays of log densities at ``x``). Computed from the log-ratio with a
    stable sigmoid, so it is exact where p and q both underflow; NaN only where both are exactly 0.
    """
    xs = _as_numpy(x).reshape(-1)
    d = _log_on(logp, xs) - _log_on(logq, xs)
    out = np.empty_like(d)
    pos = d >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-d[pos]))
    e = np.exp(d[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def gan_value(logp: LogDensity, logq: LogDensity, grid, d_logit: Optional[Callable] = None) -> float:
    """V(G, D) = int p log D + q log(1 - D) dx (Goodfellow et al. 2014, eq. 1) by the trapezoid rule on ``grid``.

    ``d_logit(x)`` gives D's logits l (D = sigmoid(l)); by default D = D*, with l = log p - log q, for which
    V(G, D*) = 2 JS(p || q) - log 4. Uses log D = -softplus(-l) and log(1 - D) = -softplus(l).
    """
    x = _grid(grid)
    lp, lq = _log_on(logp, x), _log_on(logq, x)
    logit = lp - lq if d_logit is None else _log_on(d_logit, x)
    softplus = lambda v: np.logaddexp(0.0, v)  # noqa: E731
    p, q = np.exp(lp), np.exp(lq)
    with np.errstate(invalid="ignore"):
        integrand = np.where(p > 0, -p * softplus(-logit), 0.0) + np.where(q > 0, -q * softplus(logit), 0.0)
    return float(_trapezoid(integrand, x))


def wasserstein1_1d(a, b) -> float:
    """Exact Wasserstein-1 (earth mover's) distance between two 1-D empirical distributions.

    Equal sizes: mean |sort(a) - sort(b)| (in 1-D the monotone coupling is optimal). Unequal sizes:
    ``scipy.stats.wasserstein_distance`` (int |F_a - F_b| dx over the empirical CDFs); scipy is installed with
    scikit-learn, a dependency of dgm. Accepts numpy arrays or torch tensors of any shape (flattened).
    """
    a, b = _as_numpy(a).reshape(-1), _as_numpy(b).reshape(-1)
    if a.size == 0 or b.size == 0:
        raise ValueError("wasserstein1_1d needs non-empty samples")
    if a.size == b.size:
        return float(np.mean(np.abs(np.sort(a) - np.sort(b))))
    from scipy.stats import wasserstein_distance

    return float(wasserstein_distance(a, b))
