"""The semi-supervised GAN's losses (Salimans et al. 2016, sec. 5) as pure functions of D's class logits.

D outputs K logits l_1..l_K for the real classes; the fake class K+1 has its logit fixed at 0. So
p(y = k | x) = exp(l_k) / (Z(x) + 1) with Z(x) = sum_k exp(l_k), and D(x) = 1 - p(K+1 | x) = Z(x) / (Z(x) + 1): the
logit of D(x) is log Z(x) = logsumexp(l). Supervised: -log p(y | x, y < K+1) on labelled images (a softmax over the K
real logits); unsupervised: -log D(real) - log(1 - D(fake)); G: non-saturating -log D(G(z)), or feature matching.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def real_logit(logits: Tensor) -> Tensor:
    """log Z(x) = logsumexp_k l_k, the logit of D(x) = Z / (Z + 1) (the fake logit is fixed at 0)."""
    return torch.logsumexp(logits, 1)


def real_probability(logits: Tensor) -> Tensor:
    """D(x) = Z(x) / (Z(x) + 1) = 1 - p(K+1 | x)."""
    return torch.sigmoid(real_logit(logits))


def supervised_loss(logits: Tensor, y: Tensor) -> Tensor:
    """-E log p(y | x, y < K+1): cross-entropy of the softmax over the K real classes."""
    return F.cross_entropy(logits, y)


def unsupervised_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """-E log D(real) - E log(1 - D(fake)), with log D = -softplus(-log Z) and log(1 - D) = -softplus(log Z)."""
    return F.softplus(-real_logit(real_logits)).mean() + F.softplus(real_logit(fake_logits)).mean()


def generator_loss(fake_logits: Tensor) -> Tensor:
    """Non-saturating: -E log D(G(z))."""
    return F.softplus(-real_logit(fake_logits)).mean()


def feature_matching(real_features: Tensor, fake_features: Tensor) -> Tensor:
    """||E f(x) - E f(G(z))||^2 on D's last hidden features (Salimans et al. 2016, sec. 3.1)."""
    return ((real_features.mean(0) - fake_features.mean(0)) ** 2).sum()


__all__ = ["real_logit", "real_probability", "supervised_loss", "unsupervised_loss", "generator_loss",
           "feature_matching"]
