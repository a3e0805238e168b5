"""The VAE/GAN losses (Larsen et al. 2016, "Autoencoding beyond pixels using a learned similarity metric", eq. 5-9)
as pure functions of the discriminator's outputs and features."""
from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor


def feature_nll(f_x: Tensor, f_rec: Tensor) -> Tensor:
    """L_llike^{Dis_l} per example (eq. 8): -log N(Dis_l(x) | Dis_l(x~), I) = 1/2 ||Dis_l(x) - Dis_l(x~)||^2 +
    d/2 log(2 pi), over the d features of D's l-th layer (flattened), in nats."""
    f_x, f_rec = f_x.flatten(1), f_rec.flatten(1)
    return 0.5 * (f_x - f_rec).pow(2).sum(1) + 0.5 * f_x.shape[1] * math.log(2 * math.pi)


def vae_gan_d_loss(d_real: Tensor, d_rec: Tensor, d_prior: Tensor) -> Tensor:
    """-L_GAN (eq. 9) on D's logits: -[E log D(x) + E log(1 - D(Dec(z~q(z|x)))) + E log(1 - D(Dec(z_p)))], a
    reconstruction and a prior sample both counted as fakes."""
    return F.softplus(-d_real).mean() + F.softplus(d_rec).mean() + F.softplus(d_prior).mean()


def vae_gan_g_loss(d_rec: Tensor, d_prior: Tensor) -> Tensor:
    """The decoder's side of L_GAN in its non-saturating form (Goodfellow et al. 2014, sec. 3; the authors' code):
    -[E log D(Dec(z~q(z|x))) + E log D(Dec(z_p))]."""
    return F.softplus(-d_rec).mean() + F.softplus(-d_prior).mean()


__all__ = ["feature_nll", "vae_gan_d_loss", "vae_gan_g_loss"]
