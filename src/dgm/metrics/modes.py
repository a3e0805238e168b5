"""Mode coverage on toy Gaussian mixtures: modes captured, % high-quality samples, reverse KL over modes.

The protocol of Srivastava et al. 2017 (VEEGAN, Sec. 5.1) as implemented by Lin et al. 2018 (PacGAN;
github.com/fjxmlzn/PacGAN, synthetic_data_experiments/PacGAN/pacgan/extensions.py, class MetricLogger):

* draw ``N_EVAL_SAMPLES`` = 2,500 points from the trained generator;
* assign each point to its nearest mode (Euclidean distance; the mixtures are isotropic with one std);
* a point is *high quality* if that distance is below ``HQ_THRESHOLD`` = 3 standard deviations
  (PacGAN: ``sqrt(sum((x - mu)^2 / var)) < dis_thre`` with ``dis_thre=3``);
* *modes* = the number of mixture components with at least one high-quality point assigned to them;
* *high_quality* = high-quality points / ALL generated points (PacGAN's "good points percentage");
* *reverse_kl* = KL(q || uniform), q = histogram over modes of the high-quality points, in nats
  (PacGAN, Table 1's "reverse KL"). PacGAN's MetricLogger logs the entropy H(q) of that same histogram
  (scipy.stats.entropy, natural log); KL(q || uniform) = log M - H(q).
"""
from __future__ import annotations

import contextlib
import math

from typing import Dict

import numpy as np
import torch

from ..errors import DgmError
from ..nn.blocks import evaluating
from .registry import Metric, register

# 2,500 generated samples per evaluation: VEEGAN ("We generate 2500 samples from each trained model", akashgit/VEEGAN
# index.md, the paper's project page) and PacGAN ("num_log_figure_sample": 2500 in 2DRing/2DGrid config.py, the
# points the MetricLogger scores every epoch).
N_EVAL_SAMPLES = 2500
# High quality: within 3 standard deviations of the nearest mode (VEEGAN: "within three standard deviations of the
# nearest mode, for the 2D dataset"; PacGAN extensions.py MetricLogger(dis_thre=3), strict "<").
HQ_THRESHOLD = 3.0

_CHUNK = 65_536  # points per block of the (chunk, M) distance matrix


def _as_float64(x) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64)
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


def mode_stats(points, means, std: float, threshold: float = HQ_THRESHOLD, *, chunk_size: int = _CHUNK) -> dict:
    """Mode coverage of ``points`` (n, D) against a mixture with ``means`` (M, D) and isotropic ``std``.

    Numpy arrays or torch tensors. Returns ``modes`` (components with at least one high-quality point),
    ``high_quality`` (fraction of ALL points within ``threshold`` * std of their nearest mean), ``reverse_kl``
    (KL(q || uniform) in nats over the modes' histogram q of high-quality points; inf when there are none),
    ``counts`` (high-quality points per mode) and ``n``.
    """
    mu = _as_float64(means)
    mu = mu.reshape(mu.shape[0], -1)
    m, dim = mu.shape
    x = _as_float64(points).reshape(-1, dim)
    n = x.shape[0]
    if not std > 0:
        raise ValueError(f"std must be > 0, got {std}")
    limit = float(threshold) * float(std)
    counts = torch.zeros(m, dtype=torch.int64)
    for block in x.split(max(int(chunk_size), 1)):
        dist = ((block[:, None, :] - mu[None]) ** 2).sum(-1).sqrt()  # (b, M) Euclidean
        best, idx = dist.min(dim=1)  # first minimum on ties, like numpy's argmin
        hq = best < limit  # NaN / inf points are never high quality
        counts += torch.bincount(idx[hq], minlength=m)
    total = int(counts.sum())
    if total == 0:
        reverse_kl = float("inf")
    else:
        q = counts[counts > 0].double() / total  # 0 * log 0 = 0
        reverse_kl = float((q * (q * m).log()).sum().clamp_min(0.0))
    return {"modes": int((counts > 0).sum()), "high_quality": total / n if n else 0.0, "reverse_kl": reverse_kl,
            "counts": [int(c) for c in counts], "n": int(n)}


def modes(model, data, batch_size: int = 256, progress: bool = False, n: int = N_EVAL_SAMPLES,
          seed: int = 0) -> Dict[str, float]:
    """Mode coverage of a GAN trained on a toy mixture: modes, high_quality, reverse_kl over n samples."""
    means, std = getattr(data, "means", None), getattr(data, "std", None)
    if means is None or std is None:
        name = getattr(data, "name", type(data).__name__)
        raise DgmError(f"the modes metric needs a run trained on a toy mixture (ring8, grid25); "
                       f"this run's data is {name!r} (use --metric nll or another metric)")
    if n < 1:
        raise DgmError(f"the modes metric needs n >= 1 samples, got {n}")
    with evaluating(model) if hasattr(model, "training") else contextlib.nullcontext(), torch.no_grad():
        x = model.sample(n, generator=torch.Generator().manual_seed(seed))
    x = torch.as_tensor(x).detach().float().cpu()
    dim = torch.as_tensor(means).reshape(len(means), -1).shape[1]
    if x.shape[0] != n or x[0].numel() != dim:
        raise DgmError(f"the modes metric needs {n} generated points of dimension {dim}; "
                       f"the model returned shape {tuple(x.shape)}")
    s = mode_stats(x, means, std)
    rkl = float(s["reverse_kl"])
    # no high-quality sample at all: the mode histogram (and its KL) is undefined -> JSON null, not "Infinity"
    return {"modes": s["modes"], "high_quality": float(s["high_quality"]), "reverse_kl": rkl if math.isfinite(rkl) else None,
            "num_modes": len(s["counts"]), "n_samples": int(s["n"])}


# no options: `dgm eval` draws the 2,500 points with seed 0 whatever --seed says (as it always has)
register(Metric("modes", "run", modes, options=("seed",),
                help="toy mixtures: modes captured, % high-quality samples (< 3 std), reverse KL over modes"))

__all__ = ["N_EVAL_SAMPLES", "HQ_THRESHOLD", "mode_stats", "modes"]
