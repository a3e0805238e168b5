"""Test accuracy of a semi-supervised GAN's classifier (Salimans et al. 2016): argmax over its K real classes."""
from __future__ import annotations

from typing import Dict

import torch

from ..data.batching import dataset_batches
from ..data.image import fixed_draw
from ..errors import DgmError
from ..nn.blocks import evaluating
from .registry import Metric, register


@torch.no_grad()
def accuracy(model, dataset, batch_size: int = 256, progress: bool = False, seed: int = 0) -> Dict[str, float]:
    """The fraction of the split's images whose label is argmax_k of ``model.classify(x)`` (models that declare
    the ``classify`` capability, e.g. ssgan); ``accuracy_n``: the number of images (under dynamic binarization: one
    fixed draw from a CPU generator seeded with ``seed``)."""
    if "classify" not in model.capabilities:
        raise DgmError(f"the accuracy metric needs a model with a classifier (ssgan); this "
                       f"{type(model).__name__} has none")
    data = fixed_draw(dataset, torch.Generator().manual_seed(seed))
    correct = n = 0
    with evaluating(model):
        for x, y in dataset_batches(data, batch_size, model.device, progress):
            correct += int((model.classify(x).argmax(1) == y).sum())
            n += len(y)
    return {"accuracy": correct / max(n, 1), "accuracy_n": n}


register(Metric("accuracy", "run", accuracy, options=("seed",),
                help="semi-supervised GAN (ssgan): accuracy of its classifier on the split (argmax over K classes)"))
