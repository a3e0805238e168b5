"""Classification accuracy score (CAS) of class-conditional samples (Ravuri & Vinyals 2019, in its simplest form).

Samples are drawn for requested labels y (balanced: labels 0, 1, ..., K-1 cycling, so every class gets n / K of
them); dgm's own classifier of the dataset, trained on real images (`dgm.metrics.classifiers`), labels each
sample, and CAS is the share it labels as asked:

    CAS = (1 / n) sum_i [argmax_k p(k | x_i) = y_i],      cas_per_class[k]: the same over the samples drawn for k.

A model that ignores its label scores about 1 / K, one whose samples are as recognisable as the test set scores
the classifier's test accuracy (``cas_real``, the same score of the real images of the split, is printed beside).
Ravuri & Vinyals train a classifier on samples and test it on real data; scoring the samples with a fixed
classifier trained on real data (as in the ACGAN and BigGAN papers' "classification accuracy") is what
`dgm eval --metric cas` measures: cheaper, and comparable between runs because the classifier is fixed.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np
import torch

from ..errors import DgmError
from .classifiers import CLASSIFIERS
from .registry import Metric, register


def balanced_labels(n: int, num_classes: int) -> torch.Tensor:
    """The labels conditional samples are drawn for: 0, 1, ..., K-1 cycling (n // K or n // K + 1 per class)."""
    return torch.arange(n) % num_classes


def cas_from_probs(probs, labels, num_classes: Optional[int] = None) -> Tuple[float, Dict[int, float]]:
    """(share of rows whose argmax is their label, {class: that share among the rows of the class}) for
    (N, K) class probabilities or logits and (N,) integer labels; classes without rows are left out."""
    p = np.asarray(probs)
    y = np.asarray(labels).reshape(-1)
    if p.ndim != 2 or len(p) != len(y) or len(y) == 0:
        raise ValueError(f"need (N, K) probabilities and (N,) labels with N >= 1, got {p.shape} and {y.shape}")
    hit = p.argmax(1) == y
    k = num_classes or p.shape[1]
    return float(hit.mean()), {c: float(hit[y == c].mean()) for c in range(k) if (y == c).any()}


def check_cas(model, dataset: Optional[str], features: Optional[str] = None, fake: bool = False) -> None:
    """One-line DgmError unless CAS can be measured: a class-conditional run on a dataset dgm ships a classifier
    for, scored with that classifier (``features``: the --features given, if any)."""
    if fake:
        raise DgmError("cas needs a class-conditional run directory (its samples are drawn for known labels), "
                       "not --fake images")
    if model is not None and not model.conditional:
        raise DgmError(f"cas measures class-conditional samples; this {model.run_config['model']} run is "
                       "unconditional: train with --conditional")
    if dataset not in CLASSIFIERS:
        raise DgmError(f"cas needs dgm's classifier of the run's dataset, shipped for {', '.join(CLASSIFIERS)} "
                       f"only; {dataset} has none")
    if features is not None and features != dataset:
        raise DgmError(f"cas scores samples with the {dataset} classifier; --features {features} would replace it: "
                       "drop --features or evaluate cas in its own call")


def _cas(c) -> dict:
    if c.fake_labels is None:
        raise DgmError("cas needs the labels the samples were drawn for: evaluate a class-conditional run")
    if int(c.fake_labels.max()) >= c.net.num_classes:
        raise DgmError(f"cas: the {c.net.label} knows {c.net.num_classes} classes, the samples were drawn for "
                       f"labels up to {int(c.fake_labels.max())}")
    cas, per = cas_from_probs(c.fake_probs, c.fake_labels, c.net.num_classes)
    out = {"cas": cas, "cas_per_class": {str(k): v for k, v in per.items()}}
    if c.real_labels is not None:
        out["cas_real"] = cas_from_probs(c.real_probs, c.real_labels, c.net.num_classes)[0]
    return out


def _label(c) -> str:
    counts = np.bincount(c.fake_labels)
    per = f"{counts.min()}" if counts.min() == counts.max() else f"{counts.min()}-{counts.max()}"
    return (f"CAS ({c.net.label} accuracy on {per} samples per class drawn for labels 0..{len(counts) - 1}; "
            f"cas_real: the same on the real images)")


def _check(ctx) -> None:
    check_cas(ctx.model, ctx.dataset, ctx.given.get("features"), fake=ctx.was_given("fake"))


register(Metric("cas", "probs", _cas, label=_label, min_images=1, conditional=True, check=_check,
                help="classification accuracy score: dgm's classifier's accuracy on class-conditional samples "
                     "against the labels they were drawn for (conditional runs on digits / fashion-mnist)"))

__all__ = ["balanced_labels", "cas_from_probs", "check_cas"]
