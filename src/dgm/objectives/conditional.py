"""The class loss of an auxiliary-classifier GAN (ACGAN, Odena et al. 2017). A pure function.

ACGAN's discriminator has a second head, p(c | x), beside its real/fake score. With the log-likelihood of the
correct class L_C = E log p(c = c_real | x_real) + E log p(c = c_fake | G(z, c_fake)), the discriminator
maximises L_S + L_C and the generator L_C - L_S (L_S: the adversarial objective). As losses to minimise:

    D: loss_d + w * (CE(logits(x_real), c_real) + CE(logits(G(z, c)), c)),      G: loss_g + w * CE(logits(G(z, c)), c)

with CE(l, c) = mean_i [logsumexp_k l_ik - l_i,c_i] the mean cross-entropy and w = ``--ac-weight`` (1 in the paper).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def class_loss(logits: Tensor, y: Tensor) -> Tensor:
    """Mean cross-entropy -E log softmax(logits)_y of the labels y (N,) under class logits (N, K)."""
    return F.cross_entropy(logits.float(), y.long())


def acgan_d_class_loss(logits_real: Tensor, y_real: Tensor, logits_fake: Tensor, y_fake: Tensor,
                       weight: float = 1.0) -> Tensor:
    """D's ACGAN term: w (CE on the real batch with its labels + CE on the fakes with the labels they were asked for)."""
    return weight * (class_loss(logits_real, y_real) + class_loss(logits_fake, y_fake))


def acgan_g_class_loss(logits_fake: Tensor, y_fake: Tensor, weight: float = 1.0) -> Tensor:
    """G's ACGAN term: w CE of the labels its samples were generated for."""
    return weight * class_loss(logits_fake, y_fake)
