"""Scores of an unpaired translation run against the ground truth it never saw in pairs (Zhu et al. 2017, sec. 5.1).

The paper scores labels -> photo by running an FCN on the generated photo and comparing its labelling with the
input labels, and photo -> labels directly, each with per-pixel accuracy, per-class accuracy and class IoU
(Long et al. 2015's definitions on a confusion matrix accumulated over the whole set). Here, on ``fashion-labels``,
the FCN is replaced by the fixed labelling that made the label maps (``dgm.data.pairs.label_map_of_unit``):
images -> labels is scored directly (the generated map quantised to its 3 grey levels), labels -> images by
labelling the generated image. Both directions also report the cycle error mean |F(G(x)) - x| on [0, 1], FID to the
real images of the target domain with the shipped classifier's features (omitted for the label-map domain: the
classifier has never seen label maps, so a distance in its feature space says nothing about them), and for class
pairs (``fashion-classes``) the rate at which the shipped classifier assigns the target class.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np
import torch

from ..data.pairs import label_map_of_unit
from ..errors import DgmError
from .extractors import extract, load_features
from .features import fid_from_features
from .registry import Metric, register

MAX_PAIRS = 2000  # images per domain scored (the first of the split), to keep CPU evaluation short
NO_FID_LABELS = ("omitted: the target domain is label maps, on which the feature network was never trained, so a "
                 "distance between feature statistics would not measure their quality")


def confusion(pred: torch.Tensor, truth: torch.Tensor, k: int) -> np.ndarray:
    """(k, k) counts, rows = true class, columns = predicted class, over every pixel."""
    idx = truth.reshape(-1).to(torch.int64) * k + pred.reshape(-1).to(torch.int64)
    return torch.bincount(idx, minlength=k * k).reshape(k, k).double().numpy()


def pixel_accuracy(hist: np.ndarray) -> float:
    """Share of pixels whose predicted class is the true one: sum_i n_ii / sum_ij n_ij."""
    return float(np.trace(hist) / max(hist.sum(), 1))


def class_accuracy(hist: np.ndarray) -> float:
    """Mean over the classes present in the truth of n_ii / t_i (t_i: pixels of true class i)."""
    t = hist.sum(1)
    present = t > 0
    return float((np.diag(hist)[present] / t[present]).mean()) if present.any() else 0.0


def class_iou(hist: np.ndarray) -> float:
    """Mean over classes present in the truth or the prediction of n_ii / (t_i + p_i - n_ii); a class absent
    from both has no IoU and is left out."""
    union = hist.sum(1) + hist.sum(0) - np.diag(hist)
    seen = union > 0
    return float((np.diag(hist)[seen] / union[seen]).mean()) if seen.any() else 0.0


def _scores(pred: torch.Tensor, truth: torch.Tensor, k: int) -> Dict[str, float]:
    h = confusion(pred, truth, k)
    return {"pixel_accuracy": pixel_accuracy(h), "class_accuracy": class_accuracy(h), "class_iou": class_iou(h)}


@torch.no_grad()
def _run(model, x: torch.Tensor, direction: str, batch_size: int):
    """(translations, reconstructions) of x, in batches, on the [-1, 1] scale (CPU)."""
    outs, recs = [], []
    for i in range(0, len(x), batch_size):
        _, t, r = model.triplets(x[i:i + batch_size].to(model.device), direction)
        outs.append(t.clamp(-1, 1).cpu())
        recs.append(r.clamp(-1, 1).cpu())
    return torch.cat(outs), torch.cat(recs)


def _unit(x: torch.Tensor) -> torch.Tensor:
    return ((x + 1) / 2).clamp(0, 1)


def _to_levels(x: torch.Tensor, levels: int) -> torch.Tensor:
    """[-1, 1] images -> nearest integer level 0..levels-1."""
    return (_unit(x) * (levels - 1)).round().to(torch.int64)


def translation(model, dataset, batch_size: int = 256, progress: bool = False, seed: int = 0) -> Dict[str, Any]:
    """Per direction ``x_to_y`` / ``y_to_x``: pixel / class accuracy and class IoU against the hidden truth (None
    when the data has none), cycle error, FID to the target domain, and the target-class rate for class pairs."""
    if "translate" not in model.capabilities:
        raise DgmError(f"the translation metric is for translation runs (cyclegan); this is a {type(model).__name__}")
    if getattr(dataset, "data_kind", None) != "pairs":
        raise DgmError("the translation metric needs the run's pair dataset")
    xa, xb = dataset.domain("a")[:MAX_PAIRS], dataset.domain("b")[:MAX_PAIRS]
    net = load_features(dataset.features) if dataset.features else None
    result: Dict[str, Any] = {"n": int(min(len(xa), len(xb))), "n_x": len(xa), "n_y": len(xb)}
    if net is not None:
        result.update(features=net.name, features_sha256=net.weights_sha256)
    for direction, src, dst in (("x_to_y", xa, xb), ("y_to_x", xb, xa)):
        out, rec = _run(model, src, direction, batch_size)
        entry: Dict[str, Any] = {"pixel_accuracy": None, "class_accuracy": None, "class_iou": None,
                                 "cycle_error": float((rec - src).abs().double().mean() / 2)}
        if dataset.truth == "labels" and dataset.aligned:
            if direction == "x_to_y":  # the generated map, quantised to the 3 classes, against the true map
                entry.update(_scores(_to_levels(out, model.config.levels_b), _to_levels(dst, 3), 3))
            else:  # the fixed labelling of the generated image against the input map
                entry.update(_scores(label_map_of_unit(_unit(out)), _to_levels(src, 3), 3))
        else:
            entry["scores_note"] = "no ground-truth pairs in this dataset: pixel/class scores are not defined"
        target_is_labels = dataset.truth == "labels" and direction == "x_to_y"
        if net is None or target_is_labels:
            entry["fid"] = None
            entry["fid_note"] = NO_FID_LABELS if target_is_labels else "no shipped feature network for these images"
        else:
            f_fake, p_fake = extract(net, _unit(out), batch_size)
            f_real, _ = extract(net, _unit(dst), batch_size)
            entry["fid"] = fid_from_features(f_real, f_fake)
            if dataset.truth == "classes":
                target = dataset.classes[1] if direction == "x_to_y" else dataset.classes[0]
                entry["target_class_rate"] = float((p_fake.argmax(1) == target).mean())
        result[direction] = entry
    return result


register(Metric("translation", "run", translation,
                help="translation runs: pixel/class accuracy and IoU vs the hidden truth, cycle error, FID to the "
                "target domain, target-class rate (Zhu et al. 2017's FCN-score protocol)"))

__all__ = ["translation", "confusion", "pixel_accuracy", "class_accuracy", "class_iou"]
