"""Total correlation by the density-ratio trick (Kim & Mnih 2018, FactorVAE): a discriminator D tells codes
z ~ q(z) from codes with each dimension permuted independently across the batch (draws of prod_j q(z_j)).

With two logits, softmax(D(z))_0 = P(z from q(z)), so at the optimum logit_0 - logit_1 = log q(z) / prod_j q(z_j) and

    TC(z) = KL(q(z) || prod_j q(z_j)) ~= E_q[logit_0(z) - logit_1(z)].
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor


def permute_dims(z: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
    """z (B, D) with every column shuffled by its own random permutation of the batch (Kim & Mnih 2018, Alg. 2):
    each column keeps its values (a sample of the marginal q(z_j)), the dependence between columns is broken."""
    keys = torch.rand(z.shape, generator=generator, dtype=torch.float32)
    return torch.gather(z, 0, keys.argsort(dim=0).to(z.device))


def tc_estimate(logits: Tensor) -> Tensor:
    """The TC estimate E[logit_0 - logit_1] over D's logits (B, 2) on codes z ~ q(z|x) (the VAE's extra term)."""
    return (logits[:, 0] - logits[:, 1]).mean()


def tc_discriminator_loss(logits_q: Tensor, logits_perm: Tensor) -> Tensor:
    """D's cross-entropy: class 0 for codes of q(z), class 1 for permuted codes; the mean of the two halves."""
    zeros = torch.zeros(logits_q.shape[0], dtype=torch.long, device=logits_q.device)
    ones = torch.ones(logits_perm.shape[0], dtype=torch.long, device=logits_perm.device)
    return 0.5 * (F.cross_entropy(logits_q, zeros) + F.cross_entropy(logits_perm, ones))


def tc_accuracy(logits_q: Tensor, logits_perm: Tensor) -> Tensor:
    """D's accuracy over both halves: argmax 0 on codes of q(z), 1 on permuted codes."""
    right = (logits_q.argmax(1) == 0).float().sum() + (logits_perm.argmax(1) == 1).float().sum()
    return right / (logits_q.shape[0] + logits_perm.shape[0])


__all__ = ["permute_dims", "tc_estimate", "tc_discriminator_loss", "tc_accuracy"]
