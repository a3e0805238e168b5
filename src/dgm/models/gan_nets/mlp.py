"""MLP generator and discriminator (for 2-D points, as in the mode-collapse papers; also flat images)."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
from torch import Tensor

from ...nn.blocks import leaky_relu, mlp
from .base import GAN_ARCHS, GANArch, discriminator, label_channels


class MLPGenerator(nn.Sequential):
    """The MLP generator, a Sequential (MLP, [tanh, unflatten]) as before (keys ``0.<i>.weight``); ``forward(z, y)``
    takes (and an unconditional one ignores) labels so every generator has one signature."""

    def forward(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        return super().forward(z)


class LabelConcatGenerator(nn.Module):
    """CGAN's generator (Mirza & Osindero 2014): G(z, y) = net([z, embed(y)]) with a learned label embedding of
    ``dim`` numbers per class (Radford's trick 16: "discrete variables: use an embedding layer")."""

    def __init__(self, net: nn.Module, classes: int, dim: int):
        super().__init__()
        self.net, self.embed = net, nn.Embedding(classes, dim)

    def forward(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        if y is None:
            raise ValueError("this generator is class-conditional: pass the labels y")
        return self.net(torch.cat([z, self.embed(y).to(z.dtype)], 1))


class MLPScorer(nn.Sequential):
    """Flatten, then an MLP to one score: ``features`` is the MLP up to its last hidden layer, ``head`` its last
    Linear. A Sequential (Flatten, MLP) as before, so checkpoints keep their keys (``body.1.<i>.weight``)."""

    def features(self, x: Tensor) -> Tensor:
        return self[1][:-1](self[0](x))

    @property
    def head(self) -> nn.Module:
        return self[1][-1]

    def set_head(self, layer: nn.Module) -> None:
        self[1][-1] = layer


def build(c, energy):
    """G: ReLU MLP, latent -> data (tanh + unflatten for images); D: LeakyReLU(0.2) MLP, or an MLP auto-encoder
    with a code of max(2, hidden / 8) units. D's input is ``--pack`` samples side by side.

    Class-conditional (--conditional): D as in ``base.Discriminator`` (concat: K one-hot features after the flat
    input). This G has no batch norm to make class-conditional, so with every --cond it reads [z, embed(y)], a
    learned K-dimensional label embedding (CGAN's generator)."""
    points = c.data_kind == "points"
    shape = (c.channels,) if points else (c.channels, c.height, c.width)
    dim = c.channels * c.height * c.width
    d_in = dim * c.pack + label_channels(c)
    head = [] if points else [nn.Tanh(), nn.Unflatten(1, shape)]
    k = c.num_classes if c.conditional else 0
    generator = MLPGenerator(mlp([c.latent_dim + k] + [c.hidden] * c.layers + [dim], nn.ReLU, "none"), *head)
    if k:
        generator = LabelConcatGenerator(generator, k, k)
    code = max(2, c.hidden // 8)

    def scorer():
        return MLPScorer(nn.Flatten(), mlp([d_in] + [c.hidden] * c.layers + [1], leaky_relu, c.d_norm))

    def autoencoder():
        enc = nn.Sequential(nn.Flatten(), mlp([d_in] + [c.hidden] * c.layers + [code], leaky_relu, c.d_norm))
        return enc, mlp([code] + [c.hidden] * c.layers + [dim * c.pack], leaky_relu, c.d_norm)

    return generator, discriminator(energy, scorer, autoencoder, c, flat=True)


GAN_ARCHS.add("mlp", GANArch(build, data_kinds=("images", "points"), hidden=256),
              "MLPs (width --hidden, depth --layers): 2-D points or flattened images")
