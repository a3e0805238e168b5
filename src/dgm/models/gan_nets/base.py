"""The registry of GAN architectures and the two kinds of discriminator every architecture builds.

An architecture is one file that registers a ``GANArch``: ``build(config, energy) -> (G, D)`` plus the defaults
the config resolves from it. ``energy`` is None for a D that scores (a logit or a critic value), or the
reconstruction loss ("mse" | "l1") of an auto-encoder D (EBGAN, BEGAN), which the objective declares.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence, Tuple

import torch.nn as nn
from torch import Tensor

from ...errors import DgmError
from ...registry import Registry


@dataclass(frozen=True)
class GANArch:
    """``build(config, energy) -> (generator, discriminator)``; ``data_kinds`` it accepts; ``hidden``: the default of
    ``--hidden`` (0 in the config); ``batch_norm_d``: whether ``--d-norm auto`` is batch norm when nothing else
    (a penalty, spectral norm, an energy D) regularises D; ``options``: the GANConfig fields only this architecture
    reads (e.g. an attention resolution): given with another architecture they are refused, not ignored.
    ``defaults``: GANConfig fields the architecture's paper sets, filled only where the user gave none (fields whose
    unset value is None or "auto", e.g. SAGAN's hinge objective); ``ttur``: the paper's Adam (lr_d, lr_g, betas)
    (SAGAN's two time-scale rule), ahead of the objective's but behind --lr-d / --lr-g / --lr / --beta1 / --beta2;
    ``truncation_modes``: the model's truncations, default first (() = the GAN's)."""

    build: Callable[..., Tuple[nn.Module, nn.Module]]
    data_kinds: Tuple[str, ...] = ("images", "points")
    hidden: int = 256
    batch_norm_d: bool = False
    options: Tuple[str, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)
    ttur: Optional[Tuple[float, float, Tuple[float, float]]] = None
    truncation_modes: Tuple[str, ...] = ()


GAN_ARCHS: Registry = Registry("GAN architecture", list_name="archs")


def pack(x: Tensor, m: int) -> Tensor:
    """PacGAN (Lin et al. 2018): consecutive groups of ``m`` samples concatenated into one D input, (N, C, ...) ->
    (N / m, m C, ...): points' features or images' channels side by side (sample k of a pack first). The batch's
    samples are i.i.d., so each pack holds m independent samples; m = 1 returns ``x`` itself."""
    if m == 1:
        return x
    if x.shape[0] % m:
        raise DgmError(f"--pack {m} needs a batch that is a multiple of {m}, got {x.shape[0]} samples")
    return x.reshape(x.shape[0] // m, m * x.shape[1], *x.shape[2:])


class Discriminator(nn.Module):
    """D(x) -> one score per input: a logit or a critic value, depending on the objective.

    D(x) = head(batch(features(pack(x)))), in three parts that later heads can reuse:

    - ``body.features(x)``: the architecture's network up to its last hidden representation, (N, F);
    - ``batch``: layers that see the whole batch (``--minibatch-disc``, ``--mbstd``; see ``batch_features.py``),
      each appending columns, (N, F + extra); None without them (no parameters, the old state_dict keys);
    - ``head``: the last linear layer, ``body.head`` (so its keys are where the old checkpoints have them).

    ``representation(x)`` is what the head reads. It is meant for the next heads as well: a projection
    discriminator (Miyato & Koyama 2018) adds <embed(y), representation(x)> to the score, an ACGAN (Odena et al.
    2017) puts a class head beside ``head`` on the same representation; neither needs to reshape this class.
    ``pack`` (PacGAN, Lin et al. 2018): x (N samples) is scored as N / m packs, so D returns N / m scores.
    """

    def __init__(self, body: nn.Module, pack: int = 1, batch: Sequence[nn.Module] = ()):
        super().__init__()
        self.body = body
        self.pack = pack
        self.batch = nn.Sequential(*batch) if batch else None
        extra = sum(layer.extra for layer in batch)
        if extra:  # the head reads F + extra features: a wider one in its place (``body.set_head`` where the body
            old = body.head  # keeps its head inside a stack, else the attribute ``head``)
            new = nn.Linear(old.in_features + extra, old.out_features, bias=old.bias is not None)
            body.set_head(new) if hasattr(body, "set_head") else setattr(body, "head", new)

    @property
    def head(self) -> nn.Module:
        return self.body.head

    @property
    def pointwise(self) -> bool:
        """Whether D scores each sample on its own (False with packing or batch features): its surface over the
        plane (``viz.toy``) is only defined then."""
        return self.pack == 1 and self.batch is None

    @property
    def split(self) -> bool:
        """Whether the body declares ``features`` and ``head``; an architecture's body without them (any module to
        one score) still works, as one opaque block, without batch layers or ``representation``."""
        return hasattr(self.body, "features") and hasattr(self.body, "head")

    def representation(self, x: Tensor) -> Tensor:
        """The head's input for a batch of samples x: (N / pack, F + extra)."""
        if not self.split:
            raise DgmError(f"this discriminator's body ({type(self.body).__name__}) has no features/head split")
        h = self.body.features(pack(x, self.pack))
        return h if self.batch is None else self.batch(h)

    def forward(self, x: Tensor) -> Tensor:
        if not self.split:
            y = pack(x, self.pack)
            return self.body(y).reshape(y.shape[0])
        h = self.representation(x)
        return self.head(h).reshape(h.shape[0])


class AutoencoderDiscriminator(nn.Module):
    """EBGAN / BEGAN: D is an auto-encoder; its output is a per-input reconstruction energy.

    ``loss="mse"`` (EBGAN: mean squared error) or ``"l1"`` (BEGAN: mean absolute error, eta = 1).
    ``energy_and_code(x)`` also gives the encoder's code, which EBGAN's pulling-away term spreads apart.
    ``pack`` (PacGAN): the auto-encoder reconstructs packs of m samples, one energy per pack.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, loss: str, pack: int = 1):
        super().__init__()
        self.encoder, self.decoder, self.loss, self.pack = encoder, decoder, loss, pack

    pointwise = property(lambda self: self.pack == 1)

    def energy_and_code(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        x = pack(x, self.pack)
        h = self.encoder(x)
        r = self.decoder(h).reshape(x.shape)
        err = (r - x) ** 2 if self.loss == "mse" else (r - x).abs()
        return err.flatten(1).mean(1), h

    def forward(self, x: Tensor) -> Tensor:
        return self.energy_and_code(x)[0]


def batch_layers(config, features: int) -> list:
    """The batch-level layers the config asks for, in this order: minibatch discrimination, then minibatch stddev."""
    from .batch_features import MinibatchDiscrimination, MinibatchStdDev

    layers = []
    if getattr(config, "minibatch_disc", 0):
        layers.append(MinibatchDiscrimination(features, config.minibatch_disc, config.minibatch_disc_dim))
        features += config.minibatch_disc
    if getattr(config, "mbstd", False):
        layers.append(MinibatchStdDev(config.mbstd_group))
    return layers


def discriminator(energy: Optional[str], scorer: Callable[[], nn.Module],
                  autoencoder: Callable[[], Tuple[nn.Module, nn.Module]], config=None) -> nn.Module:
    """A scoring D from ``scorer()`` (a body with ``features(x)`` and a linear ``head``), or an auto-encoder D from
    ``autoencoder() -> (encoder, decoder)``. ``config`` (a GANConfig) brings packing and the batch-level layers;
    the architecture builds its D's first layer for ``config.pack`` samples."""
    m = getattr(config, "pack", 1)
    if energy is None:
        body = scorer()
        wanted = getattr(config, "minibatch_disc", 0) or getattr(config, "mbstd", False)
        if wanted and not (hasattr(body, "features") and hasattr(body, "head")):
            raise DgmError("--minibatch-disc / --mbstd need a discriminator body with features(x) and a linear head; "
                           f"this architecture's ({type(body).__name__}) has none")
        return Discriminator(body, m, batch_layers(config, body.head.in_features) if wanted else [])
    if batch_layers(config, 1):
        raise DgmError("--minibatch-disc / --mbstd need a scoring discriminator; the energy objectives (ebgan, "
                       "began) have an auto-encoder D: drop the option or choose another objective")
    return AutoencoderDiscriminator(*autoencoder(), energy, m)
