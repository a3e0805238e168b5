"""Exact negative log-likelihood on a dataset split: nats per example and bits per dimension."""
from __future__ import annotations

import math
from typing import Dict

import torch
from tqdm.auto import tqdm


@torch.no_grad()
def nll(model, dataset, batch_size: int = 256, progress: bool = False) -> Dict[str, float]:
    """Mean -log p(x) over ``dataset`` (float64 accumulation) for a model with ``log_prob``."""
    model.eval()
    device = model.device
    conditional = bool(getattr(model.config, "num_classes", 0))
    total, count = 0.0, 0
    starts = range(0, len(dataset), batch_size)
    for s in tqdm(starts, disable=not progress, desc="nll", mininterval=1.0):
        items = [dataset[i] for i in range(s, min(s + batch_size, len(dataset)))]
        x = torch.stack([it[0] for it in items]).to(device)
        y = torch.stack([torch.as_tensor(it[1]) for it in items]).to(device) if conditional else None
        total += -model.log_prob(x, y).double().sum().item()
        count += x.shape[0]
    value = total / max(count, 1)
    return {"nll_nats": value, "bits_per_dim": value / (model.dims * math.log(2.0)), "n": count}
