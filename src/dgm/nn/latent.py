"""Draws from a standard Gaussian latent prior z ~ N(0, I), optionally truncated (the "truncation trick").

Two truncations trade diversity for fidelity, both with a knob PSI:

* ``"interpolate"`` (StyleGAN, Karras et al. 2019, section 5): move each draw towards the mean latent,
  z' = z_mean + PSI (z - z_mean). StyleGAN does it in W with the average w; for a generator fed z ~ N(0, I)
  directly the mean is 0, the prior's mode, so z' = PSI z. PSI = 1 is the ordinary sampler (z untouched) and
  PSI = 0 gives every draw the mode z = 0, hence one image. The default of every model here.
* ``"resample"`` (BigGAN, Brock et al. 2019, section 3.1): redraw every component with |z_i| > PSI until all lie
  in [-PSI, PSI], i.e. sample the truncated normal. PSI is a threshold > 0 (PSI = 0 would leave nothing to draw),
  and a large PSI approaches the ordinary sampler without equalling it.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ..errors import DgmError

#: the truncations ``gaussian_latent`` knows, default first
TRUNCATIONS = ("interpolate", "resample")


def check_truncation(psi: float, mode: str = "interpolate") -> None:
    """A one-line DgmError unless PSI suits the truncation ``mode``."""
    if mode not in TRUNCATIONS:
        raise DgmError(f"--truncation-mode must be one of {', '.join(TRUNCATIONS)}, got {mode!r}")
    if mode == "interpolate" and not 0 <= psi <= 1:
        raise DgmError(f"--truncation PSI must be in [0, 1] (1: the ordinary sampler, 0: the mean latent), got {psi}")
    if mode == "resample" and not psi > 0:
        raise DgmError(f"--truncation PSI is a threshold > 0 for resampling (BigGAN), got {psi}")


#: rounds of rejection sampling before the remaining outliers are drawn by the inverse CDF (never reached for the
#: usual thresholds: at PSI 0.5 an entry survives 100 rounds with probability 0.62 ** 100 ~ 1e-21)
REJECTION_ROUNDS = 100


def gaussian_latent(n: int, dim: int, generator: Optional[torch.Generator] = None, truncation: Optional[float] = None,
                    mode: str = "interpolate", rounds: int = REJECTION_ROUNDS) -> Tensor:
    """(n, dim) draws of N(0, I) on the CPU, truncated with PSI = ``truncation`` (None: not truncated; see above).
    "resample" redraws the entries beyond PSI (``rounds`` times at most), then draws what is left from the
    truncated normal's inverse CDF, Phi^-1(U(Phi(-PSI), Phi(PSI))): the same distribution, in bounded time for any
    PSI > 0 (a tiny PSI accepts almost no draw: the loop alone never ended)."""
    z = torch.randn(n, dim, generator=generator)
    if truncation is None:
        return z
    check_truncation(truncation, mode)
    if mode == "interpolate":
        return z if truncation == 1 else truncation * z
    out = z.clone()
    bad = out.abs() > truncation
    for _ in range(rounds):  # rejection sampling of the truncated normal, one round per redraw of the outliers
        if not bad.any():
            return out
        out[bad] = torch.randn(int(bad.sum()), generator=generator)
        bad = out.abs() > truncation
    if bad.any():
        normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0)
        lo = normal.cdf(torch.tensor(-float(truncation), dtype=torch.float64))
        u = lo + (1 - 2 * lo) * torch.rand(int(bad.sum()), generator=generator, dtype=torch.float64)
        out[bad] = torch.special.ndtri(u).clamp(-truncation, truncation).to(out.dtype)
    return out
