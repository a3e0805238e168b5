"""k-NN manifold metrics on feature arrays: precision/recall (Kynkäänniemi et al. 2019) and density/coverage
(Naeem et al. 2020), computed in row chunks so memory stays O(chunk x N), never N x N.

Squared distances come from one matrix product per chunk (|a|^2 + |b|^2 - 2 a.b, clamped at 0), and the four
numbers share three passes: real k-NN radii, fake k-NN radii, and one fake-vs-real pass.
"""
from __future__ import annotations

from typing import Dict, Iterable, Optional, Sequence, Tuple

import numpy as np
import torch

from .registry import Metric, register

DEFAULT_BUDGET = 256 << 20  # bytes of distance matrix (and temporaries) per chunk


def _to_tensor(x, dtype) -> torch.Tensor:
    t = x.detach().cpu() if hasattr(x, "detach") else torch.from_numpy(np.ascontiguousarray(x))
    if t.ndim != 2 or t.shape[0] < 2:
        raise ValueError(f"features must be a (N, D) array with N >= 2, got shape {tuple(t.shape)}")
    return t.to(dtype)


def _chunk_rows(n_cols: int, itemsize: int, budget_bytes: int) -> int:
    return max(1, min(65536, budget_bytes // max(1, n_cols * itemsize * 3)))  # distances + comparison temporaries


def _chunks(n_rows: int, n_cols: int, itemsize: int, budget_bytes: int, progress=None) -> Iterable[slice]:
    step = _chunk_rows(n_cols, itemsize, budget_bytes)
    for i in range(0, n_rows, step):
        yield slice(i, min(i + step, n_rows))
        if progress is not None:
            progress.update(min(step, n_rows - i))


def _sq_dist(a: torch.Tensor, b: torch.Tensor, a2: torch.Tensor, b2: torch.Tensor) -> torch.Tensor:
    """(len(a), len(b)) squared Euclidean distances: one GEMM, clamped at 0 against round-off."""
    return torch.addmm(a2[:, None] + b2[None, :], a, b.T, alpha=-2.0).clamp_(min=0)


def _kth_sq_radii(x: torch.Tensor, ks: Sequence[int], budget_bytes: int, progress=None) -> Dict[int, torch.Tensor]:
    """Squared distance from each row to its k-th nearest *other* row, for every k in ks, in one pass."""
    kmax = max(ks)
    if min(ks) < 1 or kmax >= x.shape[0]:
        raise ValueError(f"k must be in 1..{x.shape[0] - 1}, got {list(ks)}")
    x2 = (x * x).sum(1)
    out = {k: torch.empty(x.shape[0], dtype=x.dtype) for k in ks}
    for s in _chunks(x.shape[0], x.shape[0], x.element_size(), budget_bytes, progress):
        near = _sq_dist(x[s], x, x2[s], x2).topk(kmax + 1, dim=1, largest=False).values  # column 0: the row itself
        for k in ks:
            out[k][s] = near[:, k]
    return out


def knn_radii(x, k: int, budget_bytes: int = DEFAULT_BUDGET, dtype=None) -> torch.Tensor:
    """Distance from each row of x to its k-th nearest other row (the row itself excluded), chunked over rows."""
    x = _to_tensor(x, dtype or torch.float32)
    if not 1 <= k < x.shape[0]:
        raise ValueError(f"k must be in 1..{x.shape[0] - 1}, got {k}")
    return _kth_sq_radii(x, [k], budget_bytes)[k].sqrt()


def manifold_metrics(real, fake, k_pr: Optional[int] = 3, k_dc: Optional[int] = 5,
                     budget_bytes: int = DEFAULT_BUDGET, dtype=None, progress: bool = False) -> Dict[str, float]:
    """precision, recall (k_pr-NN balls) and density, coverage (k_dc-NN balls of the reals) in three chunked passes.

    precision: share of fakes inside some real ball; recall: share of reals inside some fake ball;
    density: (1/(k M)) sum_j #{real balls holding fake j}; coverage: share of real balls holding some fake.
    Pass None for k_pr or k_dc to skip that pair.
    """
    dtype = dtype or torch.float32
    r, f = _to_tensor(real, dtype), _to_tensor(fake, dtype)
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"real and fake features differ in dimension: {r.shape[1]} vs {f.shape[1]}")
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(r) + (len(f) if k_pr else 0) + len(f), desc="k-NN", unit="row", leave=False)
    rr = _kth_sq_radii(r, [k for k in (k_pr, k_dc) if k], budget_bytes, bar)
    rf = _kth_sq_radii(f, [k_pr], budget_bytes, bar)[k_pr] if k_pr else None
    r2, f2 = (r * r).sum(1), (f * f).sum(1)
    in_real_ball = torch.zeros(len(f), dtype=torch.bool)  # precision
    real_in_fake_ball = torch.zeros(len(r), dtype=torch.bool)  # recall
    density_count = 0
    nearest_fake = torch.full((len(r),), float("inf"), dtype=dtype)  # coverage
    for s in _chunks(len(f), len(r), r.element_size(), budget_bytes, bar):
        d = _sq_dist(f[s], r, f2[s], r2)  # rows: fakes, columns: reals
        if k_pr:
            in_real_ball[s] = (d <= rr[k_pr][None]).any(1)
            real_in_fake_ball |= (d <= rf[s, None]).any(0)
        if k_dc:
            density_count += int((d <= rr[k_dc][None]).sum())
            nearest_fake = torch.minimum(nearest_fake, d.min(0).values)
    if bar is not None:
        bar.close()
    out: Dict[str, float] = {}
    if k_pr:
        out.update(precision=in_real_ball.double().mean().item(), recall=real_in_fake_ball.double().mean().item())
    if k_dc:
        out.update(density=density_count / (k_dc * len(f)), coverage=(nearest_fake <= rr[k_dc]).double().mean().item())
    return out


def precision_recall(real, fake, k: int = 3, budget_bytes: int = DEFAULT_BUDGET, dtype=None) -> Tuple[float, float]:
    """Kynkäänniemi et al. 2019: improved precision and recall with k-NN balls (chunked)."""
    m = manifold_metrics(real, fake, k_pr=k, k_dc=None, budget_bytes=budget_bytes, dtype=dtype)
    return m["precision"], m["recall"]


def density_coverage(real, fake, k: int = 5, budget_bytes: int = DEFAULT_BUDGET, dtype=None) -> Tuple[float, float]:
    """Naeem et al. 2020: density and coverage with the reals' k-NN balls (chunked)."""
    m = manifold_metrics(real, fake, k_pr=None, k_dc=k, budget_bytes=budget_bytes, dtype=dtype)
    return m["density"], m["coverage"]


def _knn(c) -> Dict[str, float]:
    """P/R and D/C of the first m fakes vs m reals, from one k-NN pass shared by whichever of the two is selected."""
    return c.shared("manifold", lambda: manifold_metrics(
        c.real_features[c.perm.numpy()], c.fake_features[:c.m], k_pr=3 if "pr" in c.metrics else None,
        k_dc=5 if "dc" in c.metrics else None, progress=c.progress))


def _pr(c) -> Dict[str, float]:
    r = _knn(c)
    return {"precision": r["precision"], "recall": r["recall"]}


def _dc(c) -> Dict[str, float]:
    r = _knn(c)
    return {"density": r["density"], "coverage": r["coverage"]}


register(Metric("pr", "features", _pr, label=lambda c: f"precision/recall (k=3) ({c.tag}, {c.m} vs {c.m})",
                default_for_images=True, same_shape=True, min_images=4,
                help="precision and recall with k=3 nearest-neighbour balls in feature space (Kynkäänniemi et al. "
                     "2019)"))
register(Metric("dc", "features", _dc, label=lambda c: f"density/coverage (k=5) ({c.tag}, {c.m} vs {c.m})",
                default_for_images=True, same_shape=True, min_images=6,
                help="density and coverage with k=5 nearest-neighbour balls of the reals (Naeem et al. 2020)"))

__all__ = ["knn_radii", "manifold_metrics", "precision_recall", "density_coverage"]
