"""The nearest-neighbour sanity check of memorisation: each sample beside its K nearest training images, in pixel
space (OUT.png) and in the feature space of the metric network (OUT-features.png), with the distances (OUT.json)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict

import numpy as np
import torch

from ..errors import DgmError
from ..options import Option
from .registry import Figure, register, undo_on_failure


def _check_k(k):
    if not 1 <= k <= 100:
        raise DgmError(f"--nearest K must be in 1..100 (training images beside each sample), got {k}")


def nearest_training(samples: torch.Tensor, train: torch.Tensor, net, k: int) -> Dict[str, Dict[str, np.ndarray]]:
    """For unit-range samples (N, C, H, W) and training images (M, C, H, W): space -> {"index": int64 (N, k) rows of
    ``train``, "distance": float64 (N, k)}, nearest first, in "pixels" (Euclidean on the [0, 1] pixels) and
    "features" (Euclidean on ``net``'s features; the training images' are cached as `dgm eval`'s reals)."""
    from ..metrics.copying import nearest_neighbours
    from ..metrics.extractors import extract
    from ..metrics.images import reference_features

    if samples.shape[1:] != train.shape[1:]:
        raise DgmError(f"samples are {tuple(samples.shape[1:])} but the training images {tuple(train.shape[1:])} "
                       "(C, H, W); compare images of one size")
    if k > len(train):
        raise DgmError(f"--nearest {k}: the training split holds only {len(train)} images")
    out = {}
    for space, (q, r) in (("pixels", (samples.flatten(1).double().numpy(), train.flatten(1).double().numpy())),
                          ("features", (extract(net, samples)[0], reference_features(net, train)[0]))):
        d, i = nearest_neighbours(q, r, k)
        out[space] = {"index": i, "distance": d}
    return out


@torch.no_grad()
def _make(model, out, n, seed, nearest=None, features=None, weights=None):
    from ..metrics.extractors import default_features, load_features
    from ..metrics.images import real_images
    from ..viz import save_grid

    data_cfg = model.run_config["data"]
    net = load_features(features or default_features(data_cfg["name"]), weights, device=model.device)
    train = real_images(data_cfg, "train")
    samples = model.to_unit(model.sample(n, generator=torch.Generator().manual_seed(seed))).float().cpu()
    found = nearest_training(samples, train, net, nearest)
    out = Path(out)
    paths = {"pixels": out, "features": out.with_name(out.stem + "-features" + out.suffix)}
    table = out.with_suffix(".json")
    with undo_on_failure(*paths.values(), table):
        for space, path in paths.items():
            rows = torch.cat([torch.cat([samples[j:j + 1], train[found[space]["index"][j]]]) for j in range(n)])
            save_grid(rows, path, nrow=nearest + 1)
        table.write_text(json.dumps({
            "what": f"each of {n} samples (seed {seed}) and its {nearest} nearest images of the training split "
                    f"({len(train)} images): Euclidean distance on the [0, 1] pixels, and on the {net.label} "
                    "features; indices are rows of the training split",
            "features": net.name, "features_sha256": net.weights_sha256, "n_train": len(train),
            "pixels": {"png": paths["pixels"].name, "index": found["pixels"]["index"].tolist(),
                       "distance": found["pixels"]["distance"].tolist()},
            "feature_space": {"png": paths["features"].name, "index": found["features"]["index"].tolist(),
                               "distance": found["features"]["distance"].tolist()}}, allow_nan=False) + "\n")
    return [paths["pixels"], paths["features"], table]


register(Figure("nearest", ("sample", "images"), _make, "memorisation check: each of n samples (one per row) beside "
                "its K nearest training images, in pixel space (PNG) and in the metric network's feature space "
                "(-features.png), distances in a JSON", n=16, max_n=1000,
                options=(Option("nearest", int, None, "K: the training images shown beside each sample", metavar="K",
                                required=True, check=_check_k),
                         Option("features", str, None, "feature network of the second panel (dgm list features; "
                                "default: dgm's classifier for digits and fashion-mnist, else inception-v3)"),
                         Option("weights", str, None, "weights file of the feature network (inception-v3: "
                                "pt_inception-2015-12-05-6726825d.pth; or set DGM_INCEPTION_WEIGHTS)")),
                file=lambda model, seed, o: f"nearest{o['nearest']}-seed{seed}.png", selected_by="nearest"))
