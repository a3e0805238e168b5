"""Exact negative log-likelihood on a dataset split: nats per example and bits per dimension."""
from __future__ import annotations

import math
from typing import Dict, Iterable

import torch

from ..data.batching import dataset_batches


@torch.no_grad()
def nll_from_batches(model, batches: Iterable) -> Dict[str, float]:
    """Mean -log p(x) over (x, y) batches (float64 accumulation) for a model with ``log_prob``."""
    was_training = model.training
    model.eval()
    conditional = model.conditional
    total, count = 0.0, 0
    for x, y in batches:
        total += -model.log_prob(x, y if conditional else None).double().sum().item()
        count += x.shape[0]
    model.train(was_training)
    value = total / max(count, 1)
    return {"nll_nats": value, "bits_per_dim": value / (model.dims * math.log(2.0)), "n": count}


def nll(model, dataset, batch_size: int = 256, progress: bool = False) -> Dict[str, float]:
    """Mean -log p(x) over ``dataset``: nll_nats per example, bits_per_dim, n."""
    if not hasattr(model, "log_prob"):
        from ..errors import DgmError

        raise DgmError(f"the nll metric needs a likelihood model; this {type(model).__name__} has no log_prob "
                       f"(GANs on toy mixtures: --metric modes)")
    return nll_from_batches(model, dataset_batches(dataset, batch_size, model.device, progress))
