"""Domain adaptation (``dgm.models.adapt``): the classifier's accuracy on the source and target test splits, how
well a fresh domain classifier tells the two domains apart from the learned features (and the proxy A-distance of
Ben-David et al. 2007 derived from its error), and with --baselines the share of the source-only-to-oracle gap
that the run closes."""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np
import torch

from ..errors import DgmError
from ..options import Option
from .registry import Metric, register


def proxy_a_distance(error: float) -> float:
    """The proxy A-distance 2 (1 - 2 err) of a domain classifier with test error ``err`` (0: the domains cannot be
    told apart, 2: perfectly)."""
    return 2.0 * (1.0 - 2.0 * error)


def gap_closed(acc: float, acc_source_only: float, acc_oracle: float) -> float:
    """(acc - acc_src) / (acc_oracle - acc_src): 0 at the source-only baseline, 1 at the oracle (NaN when the two
    baselines are equal)."""
    gap = acc_oracle - acc_source_only
    return (acc - acc_source_only) / gap if gap != 0 else float("nan")


def domain_classifier_accuracy(fs: np.ndarray, ft: np.ndarray, seed: int = 0) -> Tuple[float, int]:
    """A fresh logistic-regression domain classifier (sklearn, standardised features): fitted on one half of each
    domain's features (a permutation seeded with ``seed``), scored on the other halves; (accuracy, test size)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rs = np.random.RandomState(seed)
    halves = []
    for f, label in ((fs, 0), (ft, 1)):
        if len(f) < 2:
            raise DgmError("the domain classifier needs >= 2 examples of each domain in the split")
        perm = rs.permutation(len(f))
        k = len(f) // 2
        halves.append((f[perm[:k]], f[perm[k:]], label))
    x_fit = np.concatenate([a for a, _, _ in halves])
    y_fit = np.concatenate([np.full(len(a), lab) for a, _, lab in halves])
    x_test = np.concatenate([b for _, b, _ in halves])
    y_test = np.concatenate([np.full(len(b), lab) for _, b, lab in halves])
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(x_fit.astype(np.float64), y_fit)
    return float(clf.score(x_test.astype(np.float64), y_test)), int(len(y_test))


@torch.no_grad()
def _features_and_predictions(model, x: torch.Tensor, batch_size: int, domain: str):
    feats, preds = [], []
    for s in range(0, len(x), batch_size):
        xb = x[s:s + batch_size].to(model.device)
        feats.append(model.encode(xb, domain).float().cpu())
        preds.append(model.classify(xb, domain).argmax(1).cpu())
    return torch.cat(feats).numpy(), torch.cat(preds)


def target_accuracy(model, dataset, batch_size: int = 256) -> float:
    x, y = dataset.domain("target")
    return float((_features_and_predictions(model, x, batch_size, "target")[1] == y).float().mean())


def _baseline(path: str, model, dataset, batch_size: int, role: str) -> float:
    from ..runs import load

    base = load(path, device=str(model.device))
    if "adapt" not in base.capabilities:
        raise DgmError(f"--baselines: {path} is a {base.run_config['model']} run, not an adapt run ({role})")
    mine, theirs = model.run_config["data"]["name"], base.run_config["data"]["name"]
    if theirs != mine:
        raise DgmError(f"--baselines: {path} ({role}) was trained on {theirs}, this run on {mine}; compare runs of "
                       "one domain pair")
    return target_accuracy(base, dataset, batch_size)


def _check_baselines(value: str) -> None:
    parts = [p for p in str(value).split(",")]
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise DgmError(f"--baselines takes two runs SRC_RUN,ORACLE_RUN (source-only and --oracle), got {value!r}")


def adaptation(model, dataset, batch_size: int = 256, progress: bool = False, seed: int = 0,
               baselines: Optional[str] = None) -> Dict[str, float]:
    """source_accuracy and target_accuracy of C(F(x)) on the split, domain_accuracy of a fresh logistic-regression
    domain classifier on F's features (``domain_classifier_accuracy``), proxy_a_distance = 2 (1 - 2 err) of it, and
    with ``baselines`` = "SRC_RUN,ORACLE_RUN" gap_closed = (acc - acc_src) / (acc_oracle - acc_src) on the target
    accuracies (plus the baselines' own)."""
    if "adapt" not in model.capabilities:
        raise DgmError(f"the adaptation metric needs a domain-adaptation run (dgm train adapt); this "
                       f"{type(model).__name__} has none")
    (xs, ys), (xt, yt) = dataset.domain("source"), dataset.domain("target")
    fs, ps = _features_and_predictions(model, xs, batch_size, "source")
    ft, pt = _features_and_predictions(model, xt, batch_size, "target")
    acc_d, n_d = domain_classifier_accuracy(fs, ft, seed)
    out = {"target_accuracy": float((pt == yt).float().mean()), "source_accuracy": float((ps == ys).float().mean()),
           "domain_accuracy": acc_d, "proxy_a_distance": proxy_a_distance(1.0 - acc_d), "domain_test_n": n_d,
           "target_n": len(yt), "source_n": len(ys)}
    if baselines is not None:
        _check_baselines(baselines)
        src, oracle = (p.strip() for p in baselines.split(","))
        a_src = _baseline(src, model, dataset, batch_size, "source-only")
        a_oracle = _baseline(oracle, model, dataset, batch_size, "oracle")
        out.update(source_only_target_accuracy=a_src, oracle_target_accuracy=a_oracle,
                   gap_closed=gap_closed(out["target_accuracy"], a_src, a_oracle))
    return out


register(Metric("adaptation", "run", adaptation, options=(
    "seed", Option("baselines", str, None, "(adaptation) the source-only and the --oracle run of the same domain "
                   "pair, for gap_closed = (acc - acc_src) / (acc_oracle - acc_src)", metavar="SRC_RUN,ORACLE_RUN",
                   check=_check_baselines)),
    help="domain adaptation (adapt): target and source accuracy, a fresh logistic domain classifier's accuracy on the "
         "features and its proxy A-distance 2(1 - 2 err); --baselines SRC,ORACLE adds gap_closed"))

__all__ = ["adaptation", "proxy_a_distance", "gap_closed", "domain_classifier_accuracy", "target_accuracy"]
