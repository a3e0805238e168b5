"""The registry of GAN architectures and the two kinds of discriminator every architecture builds.

An architecture is one file that registers a ``GANArch``: ``build(config, energy) -> (G, D)`` plus the defaults
the config resolves from it. ``energy`` is None for a D that scores (a logit or a critic value), or the
reconstruction loss ("mse" | "l1") of an auto-encoder D (EBGAN, BEGAN), which the objective declares.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import torch.nn as nn
from torch import Tensor

from ...registry import Registry


@dataclass(frozen=True)
class GANArch:
    """``build(config, energy) -> (generator, discriminator)``; ``data_kinds`` it accepts; ``hidden``: the default of
    ``--hidden`` (0 in the config); ``batch_norm_d``: whether ``--d-norm auto`` is batch norm when nothing else
    (a penalty, spectral norm, an energy D) regularises D."""

    build: Callable[..., Tuple[nn.Module, nn.Module]]
    data_kinds: Tuple[str, ...] = ("images", "points")
    hidden: int = 256
    batch_norm_d: bool = False


GAN_ARCHS: Registry = Registry("GAN architecture", list_name="archs")


class Discriminator(nn.Module):
    """D(x) -> one score per example: a logit or a critic value, depending on the objective."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x).reshape(x.shape[0])


class AutoencoderDiscriminator(nn.Module):
    """EBGAN / BEGAN: D is an auto-encoder; its output is a per-example reconstruction energy.

    ``loss="mse"`` (EBGAN: mean squared error) or ``"l1"`` (BEGAN: mean absolute error, eta = 1).
    ``features(x)`` gives the encoder's code, which EBGAN's pulling-away term spreads apart.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, loss: str):
        super().__init__()
        self.encoder, self.decoder, self.loss = encoder, decoder, loss

    def energy_and_code(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        h = self.encoder(x)
        r = self.decoder(h).reshape(x.shape)
        err = (r - x) ** 2 if self.loss == "mse" else (r - x).abs()
        return err.flatten(1).mean(1), h

    def forward(self, x: Tensor) -> Tensor:
        return self.energy_and_code(x)[0]


def discriminator(energy: Optional[str], scorer: Callable[[], nn.Module],
                  autoencoder: Callable[[], Tuple[nn.Module, nn.Module]]) -> nn.Module:
    """A scoring D from ``scorer()``, or an auto-encoder D from ``autoencoder() -> (encoder, decoder)``."""
    if energy is None:
        return Discriminator(scorer())
    return AutoencoderDiscriminator(*autoencoder(), energy)
