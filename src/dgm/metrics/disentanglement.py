"""Disentanglement of a model's codes on a dataset that knows its generative factors (``shapes``): the FactorVAE
metric (Kim & Mnih 2018) and the mutual information gap, MIG (Chen et al. 2018). Codes are the means of
``model.encode(x)``.

Both functions here take ``codes(factors) -> (n, D)``, the codes of the images of given factor tuples, and the
factor sizes, so they are tested on fake encoders (the true factors, random codes) as well as on models. Every
random draw comes from one numpy RandomState seeded with ``seed`` (`dgm eval --seed`).
"""
from __future__ import annotations

from typing import Callable, Dict, Sequence

import numpy as np
import torch

from ..errors import DgmError
from ..nn.blocks import evaluating
from ..options import Option, at_least
from .registry import Metric, register

Codes = Callable[[np.ndarray], np.ndarray]
PRUNE_VARIANCE = 0.05  # code dimensions with a smaller variance over the data are collapsed: they get no votes
MIG_BINS = 20
_CHUNK = 1024  # factor tuples encoded per call


def sample_factors(sizes: Sequence[int], n: int, rng: np.random.RandomState) -> np.ndarray:
    """n factor tuples (n, K) int64, each factor uniform over its values, independently."""
    return np.stack([rng.randint(0, k, size=n) for k in sizes], axis=1).astype(np.int64)


def _codes_of(codes: Codes, factors: np.ndarray) -> np.ndarray:
    return np.concatenate([np.asarray(codes(factors[a:a + _CHUNK]), dtype=np.float64)
                           for a in range(0, len(factors), _CHUNK)])


def factor_vae_score(codes: Codes, sizes: Sequence[int], seed: int = 0, train_votes: int = 10_000,
                     eval_votes: int = 5_000, vote_batch: int = 64, scale_points: int = 10_000) -> Dict[str, float]:
    """The FactorVAE metric (Kim & Mnih 2018, sec. 4): the accuracy of a majority-vote classifier code dim -> factor.

    Each code dimension is divided by its std over ``scale_points`` random images; dimensions whose variance there
    is below 0.05 are pruned. A vote fixes one factor k (uniform) at a random value, draws ``vote_batch`` images with
    the other factors random, and records (argmin over the active dims of the normalised codes' variance, k). The
    classifier maps each dim to its most frequent factor among the ``train_votes`` votes (ties: the lower factor);
    the score is its accuracy on ``eval_votes`` further votes. No active dimension: 0."""
    rng = np.random.RandomState(seed)
    z = _codes_of(codes, sample_factors(sizes, scale_points, rng))
    var = z.var(axis=0, ddof=1)
    active = np.flatnonzero(var >= PRUNE_VARIANCE)
    out = {"factor_vae_score": 0.0, "factor_vae_train_accuracy": 0.0, "active_dims": int(len(active)),
           "code_dims": int(z.shape[1])}
    if not len(active):
        return out
    std = np.sqrt(var[active])

    def votes(n: int) -> np.ndarray:
        k = rng.randint(0, len(sizes), size=n)
        f = sample_factors(sizes, n * vote_batch, rng).reshape(n, vote_batch, len(sizes))
        f[np.arange(n), :, k] = rng.randint(0, np.asarray(sizes)[k])[:, None]  # factor k fixed within each vote
        c = _codes_of(codes, f.reshape(-1, len(sizes)))[:, active].reshape(n, vote_batch, -1) / std
        return np.stack([c.var(axis=1, ddof=1).argmin(axis=1), k], axis=1)

    train, test = votes(train_votes), votes(eval_votes)
    counts = np.zeros((len(active), len(sizes)), dtype=np.int64)
    np.add.at(counts, (train[:, 0], train[:, 1]), 1)
    classify = counts.argmax(axis=1)
    out["factor_vae_train_accuracy"] = float((classify[train[:, 0]] == train[:, 1]).mean())
    out["factor_vae_score"] = float((classify[test[:, 0]] == test[:, 1]).mean())
    return out


def _discretize(z: np.ndarray, bins: int) -> np.ndarray:
    """Each column of z (n, D) as bin numbers 0..bins-1 of ``bins`` equal-width bins over its range."""
    out = np.zeros(z.shape, dtype=np.int64)
    for j in range(z.shape[1]):
        edges = np.histogram(z[:, j], bins)[1]
        out[:, j] = np.digitize(z[:, j], edges[1:-1])
    return out


def _mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    """I(a; b) in nats of two discrete columns, from their empirical joint distribution."""
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    joint = np.zeros((ia.max() + 1, ib.max() + 1))
    np.add.at(joint, (ia, ib), 1.0)
    joint /= joint.sum()
    pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])).sum())


def _entropy(a: np.ndarray) -> float:
    p = np.unique(a, return_counts=True)[1] / len(a)
    return float(-(p * np.log(p)).sum())


def mig(codes: Codes, sizes: Sequence[int], seed: int = 0, points: int = 10_000, bins: int = MIG_BINS) -> Dict:
    """The mutual information gap (Chen et al. 2018): over ``points`` random images, each code dim discretised into
    ``bins`` equal-width bins; for each factor k, (the largest minus the second largest I(code_j; v_k)) / H(v_k);
    MIG is the mean over factors. A factor with more values than bins cannot reach a gap of 1 (its binned code
    holds at most log(bins) nats: 0.81 for 40 orientations in 20 bins)."""
    rng = np.random.RandomState(seed)
    f = sample_factors(sizes, points, rng)
    z = _discretize(_codes_of(codes, f), bins)
    gaps = []
    for k in range(len(sizes)):
        h = _entropy(f[:, k])
        if h <= 0:
            continue
        mi = sorted((_mutual_information(z[:, j], f[:, k]) for j in range(z.shape[1])), reverse=True)
        gaps.append((mi[0] - (mi[1] if len(mi) > 1 else 0.0)) / h)
    return {"mig": float(np.mean(gaps)) if gaps else 0.0, "mig_per_factor": [float(g) for g in gaps]}


def model_codes(model, dataset, batch_size: int = 256) -> Codes:
    """codes(factors) -> the means of ``model.encode`` on ``dataset.images(factors)`` (float64 numpy)."""
    @torch.no_grad()
    def codes(factors: np.ndarray) -> np.ndarray:
        x = dataset.images(factors)
        out = []
        with evaluating(model):
            for a in range(0, len(x), batch_size):
                out.append(model.encode(x[a:a + batch_size].to(model.device))[0].double().cpu())
        return torch.cat(out).numpy()

    return codes


def disentanglement(model, dataset, batch_size: int = 256, progress: bool = False, seed: int = 0,
                    train_votes: int = 10_000, eval_votes: int = 5_000, vote_batch: int = 64,
                    code_points: int = 10_000) -> Dict:
    """FactorVAE score and MIG of the model's code means on images drawn from the dataset's whole factor grid."""
    codes = model_codes(model, dataset, batch_size)
    sizes = list(dataset.factor_sizes)
    out = factor_vae_score(codes, sizes, seed, train_votes, eval_votes, vote_batch, code_points)
    out.update(mig(codes, sizes, seed, code_points))
    out["factors"] = list(dataset.factor_names)
    out["n_images"] = 2 * code_points + (train_votes + eval_votes) * vote_batch
    out["protocol"] = (f"codes = means of encode(x) on images of the whole factor grid of {dataset.name} (not only "
                       f"the split); FactorVAE: dims scaled by their std over {code_points} images, variance < "
                       f"{PRUNE_VARIANCE} pruned, {train_votes} train / {eval_votes} eval votes of {vote_batch} "
                       f"images, majority vote; MIG: {code_points} images, {MIG_BINS} equal-width bins per dim")
    return out


def _check(ctx) -> None:
    """A dataset without known factors, or a model without an encoder, is refused in one line."""
    from ..data import DATASETS

    if ctx.dataset not in DATASETS or not getattr(DATASETS.get(ctx.dataset), "factors", None):
        known = ", ".join(n for n in DATASETS.names() if getattr(DATASETS.get(n), "factors", None))
        raise DgmError(f"--metric disentanglement needs a dataset that knows its generative factors ({known}); "
                       f"{ctx.dataset} does not")
    needs_encoder(ctx, "disentanglement")


def needs_encoder(ctx, metric: str) -> None:
    """One line refusing a run whose model has no ``encode(x)`` (metrics of an encoder's codes)."""
    if ctx.model is not None and not hasattr(ctx.model, "encode"):
        raise DgmError(f"--metric {metric} measures the codes of an encoder (ali, vae, beta-vae, factor-vae, ...); "
                       f"this {type(ctx.model).__name__} has no encode(x)")


OPTIONS = (
    Option("train_votes", int, 10_000, "disentanglement: votes that train the FactorVAE metric's majority-vote "
           "classifier", check=at_least(1, "--train-votes")),
    Option("eval_votes", int, 5_000, "disentanglement: votes that score it", check=at_least(1, "--eval-votes")),
    Option("vote_batch", int, 64, "disentanglement: images per vote (one factor fixed)",
           check=at_least(2, "--vote-batch")),
    Option("code_points", int, 10_000, "disentanglement: images for the codes' scale (FactorVAE) and for MIG",
           check=at_least(2, "--code-points")),
)
register(Metric("disentanglement", "run", disentanglement, options=(*OPTIONS, "seed"), check=_check,
                help="FactorVAE score and MIG of an encoder's code means (datasets with known factors: shapes)"))

__all__ = ["factor_vae_score", "mig", "model_codes", "disentanglement", "sample_factors"]
