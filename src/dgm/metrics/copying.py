"""Memorisation checks: the three-sample data-copying test (Meehan, Chaudhuri & Dasgupta, AISTATS 2020) and the
share of samples closer to the training set than to held-out data, on feature arrays; nearest neighbours.

The test compares three sets: the training set T, a held-out set P_n (the evaluated split) and the samples Q_m.
L(x) is the distance from x to its nearest training point. T is partitioned into cells by k-means; in each cell
pi the Mann-Whitney U statistic compares L over the samples in pi with L over the held-out points in pi, as a
z-score Z_U(pi); cells holding fewer than ``min_cell`` samples (the paper's tau) are dropped, and the rest are
averaged weighted by their share of held-out points:

    C_T(P_n, Q_m) = sum_pi P_n(pi) Z_U(pi) / sum_pi P_n(pi).

C_T << 0: samples lie closer to their training neighbours than new data does (copying); C_T >> 0: farther
(underfitting); about 0 for samples as new as held-out data.
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np
import torch

from ..errors import DgmError
from ..options import Option, at_least
from .manifold import DEFAULT_BUDGET
from .registry import Metric, register

MIN_CELL = 20  # fewest samples a cell needs to count (Meehan et al. 2020: the normal approximation of U)


def nearest_neighbours(query, ref, k: int = 1, chunk: int = 0, budget_bytes: int = DEFAULT_BUDGET
                       ) -> Tuple[np.ndarray, np.ndarray]:
    """The k nearest rows of ``ref`` (N, D) to each row of ``query`` (M, D) in Euclidean distance: (distances float64
    (M, k), indices int64 (M, k)), nearest first. Candidates come from one float64 matrix product per chunk of
    rows; the distances returned are recomputed as ||q - r|| directly, so an identical row is at exactly 0.
    ``chunk``: query rows per pass (0: as many as keep each pass's temporaries within ``budget_bytes``)."""
    q = torch.as_tensor(np.asarray(query, dtype=np.float64)).flatten(1)
    r = torch.as_tensor(np.asarray(ref, dtype=np.float64)).flatten(1)
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"query and reference rows differ in size: {q.shape[1]} vs {r.shape[1]}")
    if not 1 <= k <= len(r):
        raise ValueError(f"k must be in 1..{len(r)}, got {k}")
    r2 = (r * r).sum(1)
    per_row = 8 * (len(r) + min(len(r), k + 8) * (r.shape[1] + 2))  # distances, and the candidates' differences
    chunk = chunk or max(1, min(4096, budget_bytes // per_row))
    dist, idx = [], []
    for i in range(0, len(q), chunk):
        qs = q[i:i + chunk]
        d2 = torch.addmm(r2[None, :], qs, r.T, alpha=-2.0)  # |r|^2 - 2 q.r: the order of |q - r|^2 for each row
        cand = d2.topk(min(len(r), k + 8), dim=1, largest=False).indices  # a margin against round-off near ties
        exact = (qs[:, None, :] - r[cand]).norm(dim=2)
        order = exact.argsort(dim=1, stable=True)[:, :k]
        dist.append(exact.gather(1, order))
        idx.append(cand.gather(1, order))
    return torch.cat(dist).numpy(), torch.cat(idx).numpy()


def mann_whitney_z(x, y) -> float:
    """Z-score of the Mann-Whitney U statistic of x against y: U = #{(i, j): x_i > y_j} + #{x_i = y_j} / 2, centred by
    m n / 2 and scaled by its tie-corrected standard deviation sqrt(m n / 12 (N + 1 - sum(t^3 - t) / (N (N - 1)))),
    N = m + n, t the sizes of tied groups; no continuity correction. Negative: x tends to be smaller. 0 when every
    value is tied."""
    x, y = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    m, n = len(x), len(y)
    if m == 0 or n == 0:
        raise ValueError(f"the Mann-Whitney U statistic needs values on both sides, got {m} and {n}")
    both = np.concatenate([x, y])
    values, inverse, counts = np.unique(both, return_inverse=True, return_counts=True)
    midrank = np.cumsum(counts) - (counts - 1) / 2.0  # the mean rank of each tied group (ranks from 1)
    u = midrank[inverse[:m]].sum() - m * (m + 1) / 2.0
    big = m + n
    var = m * n / 12.0 * ((big + 1) - (counts ** 3 - counts).sum() / (big * (big - 1)))
    return 0.0 if var <= 0 else float((u - m * n / 2.0) / np.sqrt(var))


def copying_test(train, heldout, fake, cells: int = 5, min_cell: int = MIN_CELL, seed: int = 0) -> Dict:
    """The data-copying statistic C_T of samples ``fake`` against training features ``train`` and held-out features
    ``heldout`` (each (N, D)), with ``cells`` k-means cells of the training set (sklearn, ``seed``, 10 restarts).

    Returns ``statistic`` (C_T), ``cells_used`` (cells with >= ``min_cell`` samples and >= 1 held-out point),
    ``cell_z`` (Z_U of each cell, None for a dropped one), ``cell_fake`` / ``cell_heldout`` (counts per cell), and
    the nearest-training distances of both sets (``fake_distance``, ``heldout_distance``)."""
    from sklearn.cluster import KMeans

    train, heldout, fake = (np.asarray(a, np.float64) for a in (train, heldout, fake))
    if not 1 <= cells <= len(train):
        raise DgmError(f"--cells must be in 1..{len(train)} (the training images), got {cells}")
    km = KMeans(n_clusters=cells, n_init=10, random_state=seed).fit(train)
    cell_p, cell_q = km.predict(heldout), km.predict(fake)
    d_p, d_q = nearest_neighbours(heldout, train)[0][:, 0], nearest_neighbours(fake, train)[0][:, 0]
    zs, weights, used = [], [], []
    for pi in range(cells):
        q, p = d_q[cell_q == pi], d_p[cell_p == pi]
        if len(q) >= min_cell and len(p) >= 1:
            z = mann_whitney_z(q, p)
            zs.append(z)
            weights.append(len(p))
            used.append(z)
        else:
            used.append(None)
    if not zs:
        raise DgmError(f"copying: no k-means cell of the training set holds >= {min_cell} samples and a held-out "
                       f"image ({len(fake)} samples in {cells} cells); evaluate more samples (-n) or fewer --cells")
    return {"statistic": float(np.average(zs, weights=weights)), "cells_used": len(zs), "cell_z": used,
            "cell_fake": np.bincount(cell_q, minlength=cells).tolist(),
            "cell_heldout": np.bincount(cell_p, minlength=cells).tolist(), "fake_distance": d_q,
            "heldout_distance": d_p}


def closer_to_train(train, heldout, fake) -> Tuple[float, float]:
    """(share of samples whose nearest training point is strictly closer than their nearest held-out point, the same
    share for the held-out points themselves with each one's own row left out of the held-out set). The second is
    the value of samples as new as held-out data (it is not 1/2: it grows with the training set's size); a copying
    model comes near 1."""
    train, heldout, fake = (np.asarray(a, np.float64) for a in (train, heldout, fake))
    to_train = nearest_neighbours(fake, train)[0][:, 0]
    to_heldout = nearest_neighbours(fake, heldout)[0][:, 0]
    if len(heldout) < 2:
        raise DgmError("closer_to_train needs >= 2 held-out images")
    h_train = nearest_neighbours(heldout, train)[0][:, 0]
    h_other = nearest_neighbours(heldout, heldout, k=2)  # the row itself (at 0) is first unless a duplicate is
    own = h_other[1][:, 0] == np.arange(len(heldout))
    h_heldout = np.where(own, h_other[0][:, 1], h_other[0][:, 0])
    return float(np.mean(to_train < to_heldout)), float(np.mean(h_train < h_heldout))


def _copying(c) -> Dict:
    cells = c.options.get("cells") or 5
    r = copying_test(c.train_features, c.real_features, c.fake_features, cells=cells, seed=c.seed)
    share, baseline = closer_to_train(c.train_features, c.real_features, c.fake_features)
    return {"copying_statistic": r["statistic"], "copying_cells": cells, "copying_cells_used": r["cells_used"],
            "copying_cell_z": r["cell_z"], "closer_to_train": share, "closer_to_train_heldout": baseline}


CELLS = Option("cells", int, 5, "copying: k-means cells of the training features (Meehan et al. 2020; cells with < "
               f"{MIN_CELL} samples are dropped)", check=at_least(1, "--cells"))
register(Metric("copying", "features", _copying, options=(CELLS,), same_shape=True, min_images=MIN_CELL,
                needs_train=True,
                label=lambda c: f"data-copying test C_T (Meehan et al. 2020: {c.options.get('cells') or 5} k-means "
                                f"cells of the training set, Mann-Whitney z of nearest-training distances, samples "
                                f"vs the held-out split; << 0: copying) and closer_to_train (share of samples nearer "
                                f"a training than a held-out image) ({c.tag})",
                help="memorisation: the three-sample data-copying test (Meehan et al. 2020) and the share of samples "
                     "closer to the training set than to held-out data"))

__all__ = ["nearest_neighbours", "mann_whitney_z", "copying_test", "closer_to_train"]
