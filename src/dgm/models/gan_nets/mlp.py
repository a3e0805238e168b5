"""MLP generator and discriminator (for 2-D points, as in the mode-collapse papers; also flat images)."""
from __future__ import annotations

import torch.nn as nn
from torch import Tensor

from ...nn.blocks import leaky_relu, mlp
from .base import GAN_ARCHS, GANArch, discriminator


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
    with a code of max(2, hidden / 8) units. D's input is ``--pack`` samples side by side."""
    points = c.data_kind == "points"
    shape = (c.channels,) if points else (c.channels, c.height, c.width)
    dim = c.channels * c.height * c.width
    d_in = dim * c.pack
    head = [] if points else [nn.Tanh(), nn.Unflatten(1, shape)]
    generator = nn.Sequential(mlp([c.latent_dim] + [c.hidden] * c.layers + [dim], nn.ReLU, "none"), *head)
    code = max(2, c.hidden // 8)

    def scorer():
        return MLPScorer(nn.Flatten(), mlp([d_in] + [c.hidden] * c.layers + [1], leaky_relu, c.d_norm))

    def autoencoder():
        enc = nn.Sequential(nn.Flatten(), mlp([d_in] + [c.hidden] * c.layers + [code], leaky_relu, c.d_norm))
        return enc, mlp([code] + [c.hidden] * c.layers + [d_in], leaky_relu, c.d_norm)

    return generator, discriminator(energy, scorer, autoencoder, c)


GAN_ARCHS.add("mlp", GANArch(build, data_kinds=("images", "points"), hidden=256),
              "MLPs (width --hidden, depth --layers): 2-D points or flattened images")
