"""InfoGAN's variational mutual-information term (Chen et al. 2016, eq. 4-5) as pure functions of tensors.

For a categorical code c ~ Cat(1/K) and continuous codes c' ~ U[-1, 1]^N fed to G, an auxiliary network Q(c | x)
gives the lower bound L_I(G, Q) = E[log Q(c | G(z, c))] + H(c) <= I(c; G(z, c)). Both G and Q maximise it, i.e.
minimise ``info_loss`` = CE(c) + the Gaussian NLL of c' (the constant H(c) dropped). Q's Gaussian has a fixed unit
standard deviation (as in the paper's MNIST experiments), so its NLL is 1/2 (c' - mu)^2 + 1/2 log(2 pi) per code.
"""
from __future__ import annotations

import math
from typing import Dict, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def categorical_ce(logits: Tensor, c: Tensor) -> Tensor:
    """-E log Q(c | x): cross-entropy of Q's categorical logits (n, K) at the codes c (n,) fed to G."""
    return F.cross_entropy(logits, c)


def gaussian_nll(mean: Tensor, c: Tensor) -> Tensor:
    """-E log N(c; mean, 1), summed over the N continuous codes, averaged over the batch (unit std, fixed)."""
    return (0.5 * (c - mean) ** 2 + _HALF_LOG_2PI).sum(1).mean()


def mi_lower_bound(logits: Tensor, c: Tensor) -> Tensor:
    """The categorical part of L_I: H(c) - CE = log K - CE <= H(c) = log K (CE >= 0), in nats."""
    return math.log(logits.shape[1]) - categorical_ce(logits, c)


def info_loss(cat_logits: Tensor, cat: Tensor, cont_mean: Tensor, cont: Tensor) -> Tuple[Tensor, Dict[str, Tensor]]:
    """CE(c) + NLL(c') (each term only when its code exists: K > 0, N > 0), and the logged parts: ``mi_cat``
    (log K - CE) and ``nll_cont``."""
    loss = cat_logits.new_zeros(())
    parts: Dict[str, Tensor] = {}
    if cat_logits.shape[1]:
        ce = categorical_ce(cat_logits, cat)
        loss = loss + ce
        parts["mi_cat"] = (math.log(cat_logits.shape[1]) - ce).detach()
    if cont_mean.shape[1]:
        nll = gaussian_nll(cont_mean, cont)
        loss = loss + nll
        parts["nll_cont"] = nll.detach()
    return loss, parts


__all__ = ["categorical_ce", "gaussian_nll", "mi_lower_bound", "info_loss"]
