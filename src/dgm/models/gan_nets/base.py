"""The registry of GAN architectures and the two kinds of discriminator every architecture builds.

An architecture is one file that registers a ``GANArch``: ``build(config, energy) -> (G, D)`` plus the defaults
the config resolves from it. ``energy`` is None for a D that scores (a logit or a critic value), or the
reconstruction loss ("mse" | "l1") of an auto-encoder D (EBGAN, BEGAN), which the objective declares.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ...errors import DgmError
from ...part_options import Options, names
from ...registry import Registry


@dataclass(frozen=True)
class GANArch:
    """``build(config, energy) -> (generator, discriminator)``; ``data_kinds`` it accepts; ``hidden``: the default of
    ``--hidden`` (0 in the config); ``batch_norm_d``: whether ``--d-norm auto`` is batch norm when nothing else
    (a penalty, spectral norm, an energy D) regularises D; ``Options``: the dataclass of the options only this
    architecture reads (e.g. an attention resolution; ``config.arch_options``, declared in its file): given with
    another architecture they are refused, not ignored. ``defaults``: options the architecture's paper sets (SAGAN's
    hinge objective, StyleGAN's R1 gamma), filled only where the user gave none; ``ttur``: the paper's Adam
    (lr_d, lr_g, betas) (SAGAN's two time-scale rule), ahead of the objective's but behind --lr-d / --lr-g / --lr /
    --beta1 / --beta2; ``truncation_modes``: the model's truncations, default first (() = the GAN's);
    ``activation_modules``: whether every hidden layer of G ends in an activation module (``--g-layer-noise`` hooks
    them; False where G applies its activations as functions)."""

    build: Callable[..., Tuple[nn.Module, nn.Module]]
    data_kinds: Tuple[str, ...] = ("images", "points")
    hidden: int = 256
    batch_norm_d: bool = False
    Options: type = Options
    defaults: Mapping[str, Any] = field(default_factory=dict)
    ttur: Optional[Tuple[float, float, Tuple[float, float]]] = None
    truncation_modes: Tuple[str, ...] = ()
    activation_modules: bool = True

    @property
    def options(self) -> Tuple[str, ...]:
        """The names of this architecture's options (its flags)."""
        return names(self.Options)


GAN_ARCHS: Registry = Registry("GAN architecture", list_name="archs")

#: the class-conditioning modes of ``dgm train gan --conditional --cond MODE``
CONDS = ("concat", "projection", "ac")


def label_channels(c) -> int:
    """The extra input channels (images) or features (points, flat MLP input) D's first layer must accept for a
    config ``c``: K one-hot label maps with ``--cond concat`` (CGAN, Mirza & Osindero 2014), else 0."""
    return c.num_classes if getattr(c, "conditional", False) and c.cond == "concat" else 0


def with_labels(x: Tensor, y: Optional[Tensor], classes: int, flat: bool) -> Tensor:
    """CGAN's D input: x with K one-hot label maps of y appended, as K constant planes after an image's channels,
    or (``flat``, or 2-D points) as K features after the flattened sample. ``classes`` 0: x itself."""
    if not classes:
        return x
    if y is None:
        raise ValueError("this discriminator is class-conditional (--cond concat): pass the labels y")
    onehot = F.one_hot(y.long(), classes).to(x.dtype)
    if flat or x.dim() == 2:
        return torch.cat([x.flatten(1), onehot], 1)
    return torch.cat([x, onehot[:, :, None, None].expand(-1, -1, *x.shape[2:])], 1)


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

    Class-conditional (``classes`` K > 0, ``cond``; ``forward(x, y)``, labels y (N,)):

    - ``concat`` (CGAN, Mirza & Osindero 2014): one-hot label maps appended to x (``with_labels``; the body's first
      layer was built for ``label_channels(config)`` more inputs; ``flat``: as K features after flattening);
    - ``projection`` (Miyato & Koyama 2018): score + <embed(y), phi(x)>, phi = ``representation(x)``, embed an
      ``nn.Embedding(K, F)`` (Glorot-uniform as in their code);
    - ``ac`` (ACGAN, Odena et al. 2017): a linear class head beside ``head`` on the same representation,
      ``class_logits(x)``; the score itself ignores y.

    An unconditional D (K = 0) has none of these parameters: old checkpoints keep their keys.
    """

    def __init__(self, body: nn.Module, pack: int = 1, batch: Sequence[nn.Module] = (), classes: int = 0,
                 cond: str = "", flat: bool = False):
        super().__init__()
        self.body = body
        self.pack = pack
        self.batch = nn.Sequential(*batch) if batch else None
        extra = sum(layer.extra for layer in batch)
        if extra:  # the head reads F + extra features: a wider one in its place (``body.set_head`` where the body
            old = body.head  # keeps its head inside a stack, else the attribute ``head``)
            new = nn.Linear(old.in_features + extra, old.out_features, bias=old.bias is not None)
            body.set_head(new) if hasattr(body, "set_head") else setattr(body, "head", new)
        self.cond = cond if classes else ""
        self.concat_classes = classes if self.cond == "concat" else 0  # one-hot maps appended to the input
        self.flat = flat
        if self.cond in ("projection", "ac") and not self.split:
            raise DgmError(f"--cond {self.cond} needs a discriminator body with features(x) and a linear head; this "
                           f"architecture's ({type(body).__name__}) has none")
        if self.cond == "projection":
            self.embed = nn.Embedding(classes, body.head.in_features)
            nn.init.xavier_uniform_(self.embed.weight)
        elif self.cond == "ac":
            self.class_head = nn.Linear(body.head.in_features, classes)

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

    def representation(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """The head's input for a batch of samples x: (N / pack, F + extra) (y: the labels, with --cond concat)."""
        if not self.split:
            raise DgmError(f"this discriminator's body ({type(self.body).__name__}) has no features/head split")
        h = self.body.features(pack(with_labels(x, y, self.concat_classes, self.flat), self.pack))
        return h if self.batch is None else self.batch(h)

    def scores(self, x: Tensor, y: Optional[Tensor] = None) -> Tuple[Tensor, Optional[Tensor]]:
        """(D(x, y), class logits (N, K) with --cond ac, else None) from ONE pass through the body."""
        if not self.split:
            x = pack(with_labels(x, y, self.concat_classes, self.flat), self.pack)
            return self.body(x).reshape(x.shape[0]), None
        return self.scores_of(self.representation(x, y), y)

    def scores_of(self, h: Tensor, y: Optional[Tensor] = None) -> Tuple[Tensor, Optional[Tensor]]:
        """``scores`` from the representation h = ``representation(x, y)`` (for a caller that also needs h)."""
        out = self.head(h).reshape(h.shape[0])
        if self.cond == "projection":
            if y is None:
                raise ValueError("this discriminator is class-conditional (--cond projection): pass the labels y")
            out = out + (self.embed(y) * h).sum(1)
        return out, (self.class_head(h) if self.cond == "ac" else None)

    def class_logits(self, x: Tensor) -> Tensor:
        """ACGAN's class head on the representation of x: (N, K) logits of p(c | x) (--cond ac only)."""
        if self.cond != "ac":
            raise DgmError("class_logits needs a discriminator trained with --cond ac (ACGAN)")
        return self.class_head(self.representation(x))

    def forward(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        return self.scores(x, y)[0]


class AutoencoderDiscriminator(nn.Module):
    """EBGAN / BEGAN: D is an auto-encoder; its output is a per-input reconstruction energy.

    ``loss="mse"`` (EBGAN: mean squared error) or ``"l1"`` (BEGAN: mean absolute error, eta = 1).
    ``energy_and_code(x)`` also gives the encoder's code, which EBGAN's pulling-away term spreads apart.
    ``pack`` (PacGAN): the auto-encoder reconstructs packs of m samples, one energy per pack.
    ``classes`` K > 0 (--cond concat): the encoder also reads K one-hot label maps (``with_labels``); the decoder
    reconstructs x alone, so the energy is that of x given its label.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, loss: str, pack: int = 1, classes: int = 0,
                 flat: bool = False):
        super().__init__()
        self.encoder, self.decoder, self.loss, self.pack = encoder, decoder, loss, pack
        self.concat_classes, self.flat = classes, flat

    pointwise = property(lambda self: self.pack == 1)

    def energy_and_code(self, x: Tensor, y: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        x = pack(x, self.pack)
        h = self.encoder(with_labels(x, y, self.concat_classes, self.flat))
        r = self.decoder(h).reshape(x.shape)
        err = (r - x) ** 2 if self.loss == "mse" else (r - x).abs()
        return err.flatten(1).mean(1), h

    def forward(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        return self.energy_and_code(x, y)[0]


def _batch_parts(config) -> list:
    """The config's regularisers that add a batch-level layer to D (``d_batch_features`` > 0), in their order."""
    return [p for p in (config.regularisers.values() if config is not None else ()) if p.d_batch_features]


def batch_layers(config, features: int) -> list:
    """The batch-level layers of D the config's regularisers add (``--minibatch-disc``, then ``--mbstd``: each one's
    ``d_batch_layer``), each reading the features the previous one leaves; [] without a config."""
    layers = []
    for part in _batch_parts(config):
        layers.append(part.d_batch_layer(features))
        features += part.d_batch_features
    return layers


def discriminator(energy: Optional[str], scorer: Callable[[], nn.Module],
                  autoencoder: Callable[[], Tuple[nn.Module, nn.Module]], config=None, flat: bool = False) -> nn.Module:
    """A scoring D from ``scorer()`` (a body with ``features(x)`` and a linear ``head``), or an auto-encoder D from
    ``autoencoder() -> (encoder, decoder)``. ``config`` (a GANConfig) brings packing, the batch-level layers and
    class conditioning; the architecture builds its D's first layer for ``config.pack`` samples plus
    ``label_channels(config)`` label maps (``flat``: its input is flattened, the labels are K features)."""
    m = getattr(config, "pack", 1)
    classes = config.num_classes if getattr(config, "conditional", False) else 0
    cond = config.cond if classes else ""
    if energy is None:
        body = scorer()
        wanted = bool(_batch_parts(config))
        if wanted and not (hasattr(body, "features") and hasattr(body, "head")):
            raise DgmError("--minibatch-disc / --mbstd need a discriminator body with features(x) and a linear head; "
                           f"this architecture's ({type(body).__name__}) has none")
        return Discriminator(body, m, batch_layers(config, body.head.in_features) if wanted else [], classes, cond,
                             flat)
    if _batch_parts(config):
        raise DgmError("--minibatch-disc / --mbstd need a scoring discriminator; the energy objectives (ebgan, "
                       "began) have an auto-encoder D: drop the option or choose another objective")
    if cond not in ("", "concat"):
        raise DgmError(f"--cond {cond} needs a scoring discriminator; the energy objectives (ebgan, began) have an "
                       "auto-encoder D: use --cond concat or another objective")
    return AutoencoderDiscriminator(*autoencoder(), energy, m, label_channels(config) if config else 0, flat)
