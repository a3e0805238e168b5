"""Fairness of a classifier on a representation (``fair`` runs; Madras et al. 2018, sec. 5): on the evaluated split
with labels y, sensitive attribute a and predictions p = 1[logit > 0],

* ``accuracy``: mean(p == y);
* ``dp_gap``: |P(p = 1 | a = 0) - P(p = 1 | a = 1)| (demographic parity);
* ``eo_gap_tpr`` / ``eo_gap_fpr``: the same gap among y = 1 (true-positive rates) and y = 0 (false-positive rates)
  (equalized odds);
* ``probe_accuracy``: a fresh L2 logistic regression (scikit-learn, C = 1, standardised codes) fitted on the frozen
  codes of the train split to predict a, scored on the evaluated split; beside ``majority_rate``, the share of the
  evaluated split's larger group (what always guessing it scores). A probe near the majority rate finds no a in
  the code.
"""
from __future__ import annotations

from typing import Dict

import numpy as np
import torch

from ..errors import DgmError
from ..nn.blocks import evaluating
from .registry import Metric, register


def _rate(p: torch.Tensor, mask: torch.Tensor) -> float:
    return float(p[mask].double().mean()) if bool(mask.any()) else float("nan")


def gaps(pred: torch.Tensor, y: torch.Tensor, a: torch.Tensor) -> Dict[str, float]:
    """accuracy, dp_gap, eo_gap_tpr, eo_gap_fpr of 0/1 predictions (nan where a group is empty)."""
    pred, y, a = pred.long(), y.long(), a.long()
    return {"accuracy": float((pred == y).double().mean()),
            "dp_gap": abs(_rate(pred, a == 0) - _rate(pred, a == 1)),
            "eo_gap_tpr": abs(_rate(pred, (a == 0) & (y == 1)) - _rate(pred, (a == 1) & (y == 1))),
            "eo_gap_fpr": abs(_rate(pred, (a == 0) & (y == 0)) - _rate(pred, (a == 1) & (y == 0)))}


@torch.no_grad()
def _codes_and_logits(model, x: torch.Tensor, batch_size: int = 4096):
    zs, ls = [], []
    with evaluating(model):
        for s in range(0, len(x), batch_size):
            xb = x[s:s + batch_size].to(model.device)
            zs.append(model.encode(xb)[0].double().cpu())
            ls.append(model.classify(xb).double().cpu())
    return torch.cat(zs), torch.cat(ls)


def probe(train_z: np.ndarray, train_a: np.ndarray, z: np.ndarray, a: np.ndarray) -> float:
    """Accuracy on (z, a) of an L2 logistic regression fitted on standardised (train_z, train_a)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if len(np.unique(train_a)) < 2:
        return float((a == train_a[0]).mean())
    scale = StandardScaler().fit(train_z)
    clf = LogisticRegression(C=1.0, max_iter=1000).fit(scale.transform(train_z), train_a)
    return float((clf.predict(scale.transform(z)) == a).mean())


def fairness_of(model, x, y, a, probe_train=None) -> Dict[str, float]:
    """The gaps of the model's predictions on (x, y, a), and with ``probe_train`` = (x_train, a_train) the probe."""
    z, logit = _codes_and_logits(model, x)
    out = gaps((logit > 0).long(), y, a)
    share = float(a.double().mean())
    out["majority_rate"] = max(share, 1 - share)
    if probe_train is not None:
        tz, _ = _codes_and_logits(model, probe_train[0])
        out["probe_accuracy"] = probe(tz.numpy(), probe_train[1].numpy(), z.numpy(), a.numpy())
    out["n"] = len(y)
    return out


def fairness(model, data, batch_size: int = 256, progress: bool = False) -> Dict[str, float]:
    """The metric of the module docstring on the evaluated split; the probe is fitted on the train split."""
    from ..runs import load_data

    if not hasattr(data, "sensitive"):
        raise DgmError(f"--metric fairness needs rows with a sensitive attribute (adult, fair-toy); "
                       f"{getattr(data, 'name', 'this dataset')} has none")
    train = load_data(model.run_config["data"], "train")
    out = fairness_of(model, data.points, data.labels, data.sensitive, (train.points, train.sensitive))
    out["protocol"] = (f"predictions 1[logit > 0] on the {data.split} split ({len(data)} rows); probe: L2 logistic "
                       f"regression (C=1, standardised codes) fitted on the {len(train)} train-split codes to predict "
                       "the sensitive attribute")
    return out


def _check(ctx) -> None:
    if ctx.model is not None and "fair" not in getattr(ctx.model, "capabilities", ()):
        raise DgmError(f"--metric fairness measures a fair representation's classifier (dgm train fair); this "
                       f"{type(ctx.model).__name__} has none")


register(Metric("fairness", "run", fairness, check=_check,
                help="fair runs: accuracy, demographic-parity and equalized-odds gaps, and a probe's accuracy at "
                     "finding the sensitive attribute in the frozen code (beside the majority rate)"))

__all__ = ["gaps", "probe", "fairness_of", "fairness"]
