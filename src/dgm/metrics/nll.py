"""Exact negative log-likelihood on a dataset split: nats per example and bits per dimension."""
from __future__ import annotations

import math
from typing import Dict, Iterable

import torch
from tqdm.auto import tqdm


@torch.no_grad()
def nll_from_batches(model, batches: Iterable) -> Dict[str, float]:
    """Mean -log p(x) over (x, y) batches (float64 accumulation) for a model with ``log_prob``."""
    was_training = model.training
    model.eval()
    conditional = bool(getattr(model.config, "num_classes", 0))
    total, count = 0.0, 0
    for x, y in batches:
        total += -model.log_prob(x, y if conditional else None).double().sum().item()
        count += x.shape[0]
    model.train(was_training)
    value = total / max(count, 1)
    return {"nll_nats": value, "bits_per_dim": value / (model.dims * math.log(2.0)), "n": count}


def collate(items):
    """[(x, y), ...] -> (stacked x, stacked y)."""
    xs, ys = zip(*items)
    return torch.stack(xs), torch.stack([torch.as_tensor(y) for y in ys])


def dataset_batches(dataset, batch_size: int, device, progress: bool = False):
    """(x, y) batches of a dataset in order, moved to ``device``."""
    for s in tqdm(range(0, len(dataset), batch_size), disable=not progress, desc="eval", mininterval=1.0):
        x, y = collate([dataset[i] for i in range(s, min(s + batch_size, len(dataset)))])
        yield x.to(device), y.to(device)


def nll(model, dataset, batch_size: int = 256, progress: bool = False) -> Dict[str, float]:
    """Mean -log p(x) over ``dataset``: nll_nats per example, bits_per_dim, n."""
    return nll_from_batches(model, dataset_batches(dataset, batch_size, model.device, progress))
