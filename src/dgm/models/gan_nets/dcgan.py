"""DCGAN (Radford et al. 2016) for square images of size 8, 28, 32, 64, ..."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ...errors import DgmError
from ...nn.blocks import conv_plan, leaky_relu, norm2d
from ...nn.conditional import ConditionalBatchNorm
from .base import GAN_ARCHS, GANArch, discriminator, label_channels


class DCGANGenerator(nn.Module):
    """Radford et al. 2016: project z, then stride-2 transposed convolutions with BN + ReLU, tanh output.

    Class-conditional (``classes`` K > 0, ``forward(z, y)``): ``cond="concat"`` (CGAN) projects [z, embed(y)], a
    learned K-dimensional label embedding; otherwise (the projection discriminator's G, Miyato & Koyama 2018, also
    used with ACGAN here) every batch norm is class-conditional, ``ConditionalBatchNorm`` with h = one-hot(y): a
    gain 1 + gamma_y and a bias beta_y per class and channel."""

    def __init__(self, latent: int, channels: int, size: int, base: int, classes: int = 0, cond: str = ""):
        super().__init__()
        s0, k = conv_plan(size)
        c = base * 2 ** (k - 1)
        self.c0, self.s0, self.classes = c, s0, classes
        self.concat = bool(classes) and cond == "concat"
        self.cbn = bool(classes) and not self.concat

        def bn(features, dims):
            if self.cbn:
                return ConditionalBatchNorm(features, classes, dims)
            return nn.BatchNorm1d(features) if dims == 1 else nn.BatchNorm2d(features)

        if self.concat:
            self.embed = nn.Embedding(classes, classes)
        z_in = latent + (classes if self.concat else 0)
        self.project = nn.Sequential(nn.Linear(z_in, c * s0 * s0), bn(c * s0 * s0, 1), nn.ReLU())
        ups = []
        for i in range(k - 1):
            ups += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1), bn(c // 2, 2), nn.ReLU()]
            c //= 2
        ups += [nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh()]
        self.body = nn.Sequential(*ups)

    def forward(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        if not self.classes:
            return self.body(self.project(z).view(z.shape[0], self.c0, self.s0, self.s0))
        if y is None:
            raise ValueError("this generator is class-conditional: pass the labels y")
        if self.concat:
            z = torch.cat([z, self.embed(y).to(z.dtype)], 1)
            return self.body(self.project(z).view(z.shape[0], self.c0, self.s0, self.s0))
        h = F.one_hot(y.long(), self.classes).to(z.dtype)
        x = _run(self.project, z, h).view(z.shape[0], self.c0, self.s0, self.s0)
        return _run(self.body, x, h)


def _run(layers: nn.Sequential, x: Tensor, h: Tensor) -> Tensor:
    """A Sequential whose conditional batch norms also read the class code h."""
    for layer in layers:
        x = layer(x, h) if isinstance(layer, ConditionalBatchNorm) else layer(x)
    return x


class ConvEncoder(nn.Module):
    """A convolutional ``body`` and a linear ``head`` on its flattened last map (DCGAN's and SAGAN's encoders)."""

    def features(self, x: Tensor) -> Tensor:
        """The flattened last feature map (the input of the linear head)."""
        return self.body(x).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class DCGANEncoder(ConvEncoder):
    """Radford et al. 2016: stride-2 convolutions with LeakyReLU(0.2), no norm on the first layer; a linear head."""

    def __init__(self, channels: int, size: int, base: int, out: int, norm: str):
        super().__init__()
        s0, k = conv_plan(size)
        layers, c = [nn.Conv2d(channels, base, 4, 2, 1), leaky_relu()], base
        for i in range(k - 1):
            layers += [nn.Conv2d(c, 2 * c, 4, 2, 1), norm2d(norm, 2 * c), leaky_relu()]
            c *= 2
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c * s0 * s0, out)


def dcgan_init(m: nn.Module) -> None:
    """Radford et al. 2016: weights ~ N(0, 0.02); batch-norm scales ~ N(1, 0.02). A class-conditional batch norm
    gets the same per class (one-hot h: gain 1 + W_g[:, y] with W_g ~ N(0, 0.02), bias W_b = 0). ``Module.apply``
    visits its Linear maps first, so the last word here is the conditional norm's."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)) and m.affine:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)
    elif isinstance(m, ConditionalBatchNorm):
        nn.init.normal_(m.gain.weight, 0.0, 0.02)
        nn.init.zeros_(m.bias.weight)


def dcgan_autoencoder(c):
    """The auto-encoder D of the energy objectives (EBGAN, BEGAN) for square images, shared by dcgan, sagan and
    biggan: a DCGAN encoder to a 4 x --hidden code (reading ``--pack`` images and, with --cond concat, K one-hot label
    planes) and a DCGAN generator as decoder. Returns (encoder, decoder)."""
    code = 4 * c.hidden
    enc = DCGANEncoder(c.channels * c.pack + label_channels(c), c.height, c.hidden, code, c.d_norm)
    return enc, nn.Sequential(DCGANGenerator(code, c.channels * c.pack, c.height, c.hidden))


def build(c, energy):
    """G: DCGAN generator with --hidden base channels; D: DCGAN encoder with one output, or (energy) an encoder to a
    4 x hidden code and a DCGAN generator as decoder. Weights initialised as in the paper. D's input is ``--pack``
    images with their channels side by side, plus K one-hot label planes with --cond concat."""
    k = c.num_classes if c.conditional else 0
    generator = DCGANGenerator(c.latent_dim, c.channels, c.height, c.hidden, k, c.cond if k else "")
    if c.height != c.width:
        raise DgmError(f"DCGAN needs square images, got {c.height}x{c.width}")

    def scorer():
        return DCGANEncoder(c.channels * c.pack + label_channels(c), c.height, c.hidden, 1, c.d_norm)

    d = discriminator(energy, scorer, lambda: dcgan_autoencoder(c), c)
    generator.apply(dcgan_init)
    d.apply(dcgan_init)
    return generator, d


GAN_ARCHS.add("dcgan", GANArch(build, data_kinds=("images",), hidden=32, batch_norm_d=True),
              "DCGAN (Radford et al. 2016): stride-2 (transposed) convolutions, batch norm in G (and D by default)")
