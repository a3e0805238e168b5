"""Completion NLL: -log p(hidden half | observed half) in nats per example, over a dataset split.

Any-order models (LMConv, MADE, NADE) use the k maximum-context orders among their own (``--orders-used k``,
``dgm.nn.orders.max_context_orders``), each made context-first, so every hidden pixel is predicted from the
whole observed half; with k > 1 the per-order probabilities are averaged (log-mean-exp), as in Jain et al. 2020.
Raster-order models report the one honest number they can give: the NLL of their raster conditionals of the
hidden pixels, a normalised distribution over the hidden half that only reads the observed pixels that come
earlier in raster order (exact for ``--observe top``; the plain marginal of the top half for ``bottom``), see
``AutoregressiveModel.completion_nll``. The split is binarized by the same seeded draw as the nll metric.
"""
from __future__ import annotations

from typing import Dict, Optional

import torch

from ..data.batching import dataset_batches
from ..data.image import fixed_draw
from ..errors import DgmError
from ..nn.blocks import evaluating
from ..nn.orders import REGIONS, region_mask
from ..nn.pixels import bits_per_dim
from ..options import Option, at_least
from .registry import Metric, register


def completion(model, dataset, batch_size: int = 256, progress: bool = False, seed: int = 0,
               observe: Optional[str] = None, orders_used: Optional[int] = None) -> Dict:
    """Mean completion NLL over ``dataset``: nll_nats per example, bits_per_dim per hidden element, the orders."""
    if "complete" not in model.capabilities:
        raise DgmError(f"the completion metric needs an autoregressive model; this {type(model).__name__} cannot "
                       "complete images")
    if observe is None:
        raise DgmError(f"--metric completion needs --observe {'|'.join(REGIONS)} (the half that is given)")
    c = model.config
    mask = region_mask(observe, c.height, c.width)
    k = 1 if orders_used is None else orders_used
    chosen, info = model.completion_choice(mask, k)
    gen = torch.Generator().manual_seed(seed)
    total, count = 0.0, 0
    with evaluating(model), torch.no_grad():
        for x, y in dataset_batches(fixed_draw(dataset, gen), batch_size, model.device, progress):
            labels = y if model.conditional else None
            total += model.completion_nll(x, mask, labels, orders=chosen).double().sum().item()
            count += x.shape[0]
    value = total / max(count, 1)
    hidden = int((~mask).sum()) * c.channels
    return {"nll_nats": value, "bits_per_dim": bits_per_dim(value, hidden), "hidden_dims": hidden,
            "observe": observe, "orders_used": k, **info, "n": count}


def _check(ctx) -> None:
    """completion reports its own nll_nats: it is not combined with the nll metric in one JSON object."""
    if "nll" in ctx.metrics:
        raise DgmError("the nll and completion metrics both report nll_nats: evaluate them in two calls")


OPTIONS = (Option("observe", str, None, "the observed half (the NLL is of the other half)", choices=REGIONS),
           Option("orders_used", int, None, "how many maximum-context orders of an any-order model to average "
                  "(log-mean-exp; default 1)", check=at_least(1, "--orders-used")))
register(Metric("completion", "run", completion, options=("seed", *OPTIONS), check=_check,
                help="NLL of the hidden half given the observed half (--observe; any-order models: max-context "
                     "orders)"))
