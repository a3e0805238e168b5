"""Domain-adversarial losses on a domain discriminator's logits (source = domain 0, target = domain 1), the gradient
reversal layer and the DANN schedules. One logit per example: sigma(l) is D's probability of "target".

* D's own loss: binary cross-entropy with the true domains, averaged over the two halves.
* ``reverse`` (Ganin & Lempitsky 2015, DANN): the features are trained through a gradient reversal layer on D's
  loss, so they receive -lambda times D's gradient: they maximise D's loss while D minimises it.
* ``flip`` (Tzeng et al. 2017, ADDA; GAN-style): the features minimise D's loss with the domain labels flipped.
* ``uniform`` (Tzeng et al. 2015, domain confusion): the features minimise the cross-entropy of D's prediction to
  the uniform [1/2, 1/2].
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

DOMAIN_LOSSES = ("reverse", "flip", "uniform", "none")


def domain_loss(d_source: Tensor, d_target: Tensor) -> Tensor:
    """D's loss: (BCE(d_s, 0) + BCE(d_t, 1)) / 2 = (mean softplus(d_s) + mean softplus(-d_t)) / 2."""
    return 0.5 * (F.softplus(d_source).mean() + F.softplus(-d_target).mean())


def flipped_loss(d_source: Tensor, d_target: Tensor) -> Tensor:
    """The features' loss of ``flip``: D's loss with the labels flipped, (BCE(d_s, 1) + BCE(d_t, 0)) / 2."""
    return 0.5 * (F.softplus(-d_source).mean() + F.softplus(d_target).mean())


def uniform_loss(d_source: Tensor, d_target: Tensor) -> Tensor:
    """The features' loss of ``uniform``: the cross-entropy of sigma(l) to [1/2, 1/2], -(log sigma(l) +
    log sigma(-l)) / 2, averaged over both domains (its minimum, log 2, is at l = 0)."""
    ce = 0.5 * (F.softplus(-torch.cat([d_source, d_target])) + F.softplus(torch.cat([d_source, d_target])))
    return ce.mean()


def inverted_label_loss(d_target: Tensor) -> Tensor:
    """ADDA's target-encoder loss (Tzeng et al. 2017): the target features called source, BCE(d_t, 0) = mean
    softplus(d_t)."""
    return F.softplus(d_target).mean()


def domain_accuracy(d_source: Tensor, d_target: Tensor) -> Tensor:
    """The fraction of both halves D puts on their own side of logit 0 (each half weighted 1/2)."""
    return 0.5 * ((d_source < 0).float().mean() + (d_target > 0).float().mean())


class _Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lam):
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.lam * grad, None


def reverse_gradient(x: Tensor, lam: float) -> Tensor:
    """The gradient reversal layer (Ganin & Lempitsky 2015): the identity forward, -lam times the gradient
    backward."""
    return _Reverse.apply(x, float(lam))


def dann_lambda(p: float, gamma: float = 10.0) -> float:
    """DANN's adaptation weight at training progress p in [0, 1]: 2 / (1 + exp(-gamma p)) - 1 (0 at the start,
    near 1 at the end)."""
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0


def dann_lr_factor(p: float, alpha: float = 10.0, beta: float = 0.75) -> float:
    """DANN's learning-rate factor at progress p: mu_p = mu_0 / (1 + alpha p)^beta."""
    return 1.0 / (1.0 + alpha * p) ** beta


__all__ = ["DOMAIN_LOSSES", "domain_loss", "flipped_loss", "uniform_loss", "inverted_label_loss", "domain_accuracy", "reverse_gradient",
           "dann_lambda", "dann_lr_factor"]
