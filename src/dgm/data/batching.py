"""Batches from map-style datasets of (x, y) pairs."""
from __future__ import annotations

import torch
from tqdm.auto import tqdm

from .. import interrupt


def collate(items):
    """[(x, y), ...] -> (stacked x, stacked y)."""
    xs, ys = zip(*items)
    return torch.stack(xs), torch.stack([torch.as_tensor(y) for y in ys])


def dataset_batches(dataset, batch_size: int, device, progress: bool = False):
    """(x, y) batches of a dataset in order, moved to ``device``; a requested stop (``dgm.interrupt``) ends it."""
    for s in tqdm(range(0, len(dataset), batch_size), disable=not progress, desc="eval", mininterval=1.0):
        interrupt.check()
        x, y = collate([dataset[i] for i in range(s, min(s + batch_size, len(dataset)))])
        yield x.to(device), y.to(device)
