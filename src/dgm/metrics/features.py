"""Sample-quality metrics on feature arrays (numpy or torch in, float out): FID, KID, Inception Score.

No network here: features come from any extractor (Inception-v3, the shipped classifiers, ...).
"""
from __future__ import annotations

import math
import warnings
from typing import Optional, Tuple

import numpy as np

from ..errors import DgmError
from ..options import Option
from .registry import Metric, register


def _as2d(x, name: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < 2:
        raise ValueError(f"{name} must be a (N, D) array with N >= 2, got shape {a.shape}")
    return a


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Heusel et al. 2017: ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^{1/2}), in float64.

    tr((S1 S2)^{1/2}) is computed as the sum of square roots of the eigenvalues of the symmetric PSD matrix
    S1^{1/2} S2 S1^{1/2} (same spectrum as S1 S2): no complex parts, and near-singular covariances are fine
    (negative round-off eigenvalues are clipped to 0).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    r1 = _psd_sqrt(s1)
    m = r1 @ s2 @ r1
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)


def gaussian_stats(features) -> Tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of (N, D) features, float64."""
    f = _as2d(features, "features")
    return f.mean(0), np.cov(f, rowvar=False)


def fid_from_features(real, fake) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) feature sets.

    Warns when a set has fewer samples than dimensions: its covariance is then singular and FID is biased.
    """
    r, f = _as2d(real, "real"), _as2d(fake, "fake")
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"real and fake features differ in dimension: {r.shape[1]} vs {f.shape[1]}")
    for name, a in (("real", r), ("fake", f)):
        if a.shape[0] < a.shape[1]:
            warnings.warn(f"FID: {a.shape[0]} {name} samples < feature dimension {a.shape[1]}; the covariance is "
                          f"singular and the estimate is strongly biased (use more samples)", stacklevel=2)
    return frechet_distance(*gaussian_stats(r), *gaussian_stats(f))


def intra_fid_from_features(real, real_labels, fake, fake_labels) -> Tuple[float, dict]:
    """Intra-class FID (Miyato & Koyama 2018, section 5): for each class k of the fakes' labels, the FID between the
    real features of class k and the features of the fakes drawn for class k; returns (mean over classes,
    {k: FID_k}). Every class must hold at least 2 reals and 2 fakes. One warning (not one per class) when a class
    has fewer samples than dimensions."""
    r, f = _as2d(real, "real"), _as2d(fake, "fake")
    ry, fy = np.asarray(real_labels).reshape(-1), np.asarray(fake_labels).reshape(-1)
    if len(ry) != len(r) or len(fy) != len(f):
        raise ValueError(f"labels must give one class per row: {len(ry)} labels for {len(r)} reals, "
                         f"{len(fy)} for {len(f)} fakes")
    per, fewest = {}, None
    for k in np.unique(fy).tolist():
        rk, fk = r[ry == k], f[fy == k]
        if len(rk) < 2 or len(fk) < 2:
            raise ValueError(f"intra-class FID needs >= 2 reals and fakes of every class; class {k} has {len(rk)} "
                             f"reals and {len(fk)} fakes")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            per[int(k)] = fid_from_features(rk, fk)
        fewest = min(len(rk), len(fk)) if fewest is None else min(fewest, len(rk), len(fk))
    if fewest is not None and fewest < r.shape[1]:
        warnings.warn(f"intra-class FID: a class has only {fewest} real or fake samples < feature dimension "
                      f"{r.shape[1]}; its covariance is singular and the estimate is biased (use more)", stacklevel=2)
    return float(np.mean(list(per.values()))), per


def _poly_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def kid_from_features(real, fake, subsets: int = 100, subset_size: int = 1000, seed: int = 0
                      ) -> Tuple[float, float]:
    """Bińkowski et al. 2018: unbiased MMD^2 with the kernel k(x, y) = (x.y / d + 1)^3, mean and std over subsets.

    Each subset draws ``subset_size`` rows without replacement from each set (capped at the smaller set size).
    """
    r, f = _as2d(real, "real"), _as2d(fake, "fake")
    m = min(subset_size, r.shape[0], f.shape[0])
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(subsets):
        x = r[rng.choice(r.shape[0], m, replace=False)]
        y = f[rng.choice(f.shape[0], m, replace=False)]
        kxx, kyy, kxy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
        vals.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                    - 2 * kxy.mean())
    vals = np.array(vals)
    return float(vals.mean()), float(vals.std())


def inception_score(probs, splits: int = 10, eps: float = 1e-12) -> Tuple[float, float]:
    """Salimans et al. 2016: exp(E_x KL(p(y|x) || p(y))) on each of ``splits`` chunks; mean and std over chunks.

    ``probs``: (N, K) class probabilities (rows summing to 1).
    """
    p = _as2d(probs, "probs")
    if np.any(p < 0) or not np.allclose(p.sum(1), 1.0, atol=1e-4):
        raise ValueError("probs must be class probabilities: non-negative rows that sum to 1 (apply softmax)")
    if not 1 <= splits <= p.shape[0]:
        raise ValueError(f"splits must be in 1..{p.shape[0]}, got {splits}")
    scores = []
    for chunk in np.array_split(p, splits):
        py = chunk.mean(0, keepdims=True)
        kl = (chunk * (np.log(chunk + eps) - np.log(py + eps))).sum(1)
        scores.append(math.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def _fid(c) -> dict:
    out = {"fid": fid_from_features(c.real_features, c.fake_features)}
    if c.per_class:  # --per-class: intra-class FID of the classes the fakes were drawn for
        mean, per = intra_fid_from_features(c.real_features, c.real_labels, c.fake_features, c.fake_labels)
        out.update(intra_fid=mean, fid_per_class={str(k): v for k, v in per.items()})
    return out


def _kid(c) -> dict:
    kid, std = kid_from_features(c.real_features, c.fake_features,
                                 subset_size=min(1000, len(c.real_features), len(c.fake_features)), seed=c.seed)
    return {"kid": kid, "kid_std": std}


def _is(c) -> dict:
    score, std = inception_score(c.fake_probs, min(10, len(c.fake_probs)))
    return {"is": score, "is_std": std, "is_real": inception_score(c.real_probs, min(10, len(c.real_probs)))[0]}


def _fid_label(c) -> str:
    if not c.per_class:
        return f"FID ({c.tag})"
    return f"FID ({c.tag}); intra_fid: mean FID of real vs generated images of each class (Miyato & Koyama 2018)"


def _check_fid(ctx) -> None:
    """--per-class compares the samples drawn for each class with that class's reals: a class-conditional run."""
    if not ctx.was_given("per_class"):
        return
    if ctx.model is None:
        raise DgmError("--per-class needs a class-conditional run directory (samples drawn for known labels), not "
                       "--fake images")
    if not ctx.model.conditional:
        raise DgmError(f"--per-class compares the samples drawn for each class with that class's real images; this "
                       f"{ctx.model.run_config['model']} run is unconditional: train with --conditional")


PER_CLASS = Option("per_class", bool, False, "class-conditional runs: also the intra-class FID (intra_fid, "
                   "fid_per_class; Miyato & Koyama 2018)")
register(Metric("fid", "features", _fid, label=_fid_label, default_for_images=True, same_shape=True,
                min_images=2, per_class=True, options=(PER_CLASS,), check=_check_fid, help="Fréchet distance of Gaussians fitted to real and fake features (Heusel et al. 2017)"))
register(Metric("kid", "features", _kid, label=lambda c: f"KID ({c.tag})", default_for_images=True, same_shape=True,
                min_images=2, help="unbiased cubic-kernel MMD^2 of features, mean and std over subsets (Bińkowski et al. 2018)"))
register(Metric("is", "probs", _is, default_for_images=True, min_images=2,
                label=lambda c: f"IS ({c.net.label} class probabilities, {min(10, len(c.fake_probs))} splits)",
                help="Inception Score of the fakes' class probabilities (Salimans et al. 2016)"))

__all__ = ["frechet_distance", "gaussian_stats", "fid_from_features", "intra_fid_from_features", "kid_from_features", "inception_score"]
