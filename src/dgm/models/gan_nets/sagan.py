"""SAGAN (Zhang et al. 2019, "Self-Attention Generative Adversarial Networks") at small image sizes.

DCGAN-shaped networks (stride-2 (transposed) convolutions) with one self-attention block (``dgm.nn.SelfAttention``,
the paper's f, g, h, v with gamma starting at 0) in G and in D, at the largest feature map no larger than
``--attn-res`` (16: the 16x16 map of a 32x32 image, 14x14 of 28x28, 8x8 of 8x8 digits). As in the paper, G and D
are both spectrally normalised (G here, D through ``--spectral-norm``, on by default for this architecture), the
default loss is the hinge loss and the default optimiser the two time-scale rule: Adam, lr_D 4e-4, lr_G 1e-4,
betas (0, 0.9). Weights start orthogonal (Saxe et al. 2014), as in the authors' and BigGAN's code.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch.nn as nn
from torch import Tensor

from ...errors import DgmError
from ...nn import SelfAttention, apply_spectral_norm
from ...nn.blocks import conv_plan, leaky_relu, norm2d
from ...nn.conditional import ConditionalBatchNorm
from ...part_options import Options
from .base import GAN_ARCHS, GANArch, discriminator, label_channels
from .dcgan import ConvEncoder

#: TTUR (Heusel et al. 2017) as SAGAN sets it: (lr_D, lr_G, Adam betas)
TTUR = (4e-4, 1e-4, (0.0, 0.9))


def attention_at(sizes: Sequence[int], res: int, where: str) -> Optional[int]:
    """The index in ``sizes`` (a network's feature-map sides) of the largest map <= ``res``; None for res 0."""
    if res == 0:
        return None
    fits = [i for i, s in enumerate(sizes) if s <= res]
    if not fits:
        raise DgmError(f"--attn-res {res} is below every feature map of {where} ({', '.join(map(str, sizes))}); give "
                       f"--attn-res {min(sizes)} or more, or 0 for no attention")
    return max(fits, key=lambda i: sizes[i])


def orthogonal_init(module: nn.Module) -> None:
    """Orthogonal weights and zero biases for every convolution / linear layer, except the gain and bias maps of
    conditional batch norm, which start at zero (a fresh CBN is plain batch norm)."""
    keep = {id(m) for cbn in module.modules() if isinstance(cbn, ConditionalBatchNorm) for m in cbn.modules()}
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and id(m) not in keep:
            nn.init.orthogonal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def spectral_g(module: nn.Module) -> nn.Module:
    """Spectral norm on G's layers (SAGAN, BigGAN), except conditional batch norm's zero-initialised maps (the
    spectral norm of a zero matrix is 0: W / sigma would be 0 / 0)."""
    keep = {id(m) for cbn in module.modules() if isinstance(cbn, ConditionalBatchNorm) for m in cbn.modules()}
    for m in list(module.modules()):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and id(m) not in keep:
            apply_spectral_norm(m)
    return module


class SAGANGenerator(nn.Module):
    """z -> linear -> (C0, s0, s0), stride-2 transposed convolutions with BN + ReLU (self-attention after the one
    reaching the chosen map), a 3x3 convolution to the image channels, tanh. Channels halve per block down to
    --hidden.

    Class-conditional (``classes`` K > 0, ``forward(z, y)``): ``cond="concat"`` (CGAN) feeds [z, embed(y)], a learned
    K-dimensional label embedding, to the linear layer; otherwise (projection, ac) every batch norm is class-
    conditional as in SAGAN's code (after Miyato & Koyama 2018): ``ConditionalBatchNorm`` with h = one-hot(y), a
    gain 1 + gamma_y and a bias beta_y per class and channel."""

    def __init__(self, latent: int, channels: int, size: int, base: int, attn_res: int, classes: int = 0,
                 cond: str = ""):
        super().__init__()
        s0, k = conv_plan(size)
        widths = [base * 2 ** max(k - 1 - i, 0) for i in range(k + 1)]  # at s0, 2 s0, ..., size
        at = attention_at([s0 * 2 ** i for i in range(1, k + 1)], attn_res, "the generator")
        self.c0, self.s0, self.classes = widths[0], s0, classes
        self.concat = bool(classes) and cond == "concat"
        cbn = bool(classes) and not self.concat

        def bn(features, dims):
            if cbn:
                return ConditionalBatchNorm(features, classes, dims)
            return nn.BatchNorm1d(features) if dims == 1 else nn.BatchNorm2d(features)

        if self.concat:
            self.embed = nn.Embedding(classes, classes)
        z_in = latent + (classes if self.concat else 0)
        self.project = nn.Sequential(nn.Linear(z_in, self.c0 * s0 * s0), bn(self.c0 * s0 * s0, 1), nn.ReLU())
        layers = []
        for i in range(k):
            layers += [nn.ConvTranspose2d(widths[i], widths[i + 1], 4, 2, 1), bn(widths[i + 1], 2), nn.ReLU()]
            if i == at:
                layers.append(SelfAttention(widths[i + 1]))
        layers += [nn.Conv2d(widths[-1], channels, 3, 1, 1), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """G(z) or G(z, y): the same conditioning as DCGAN's generator (its attributes project, body, embed, c0, s0,
        classes, concat have the same meaning here), so its forward serves both."""
        from .dcgan import DCGANGenerator

        return DCGANGenerator.forward(self, z, y)


class SAGANEncoder(ConvEncoder):
    """Stride-2 convolutions with LeakyReLU(0.2) (--d-norm after all but the first), self-attention after the one
    reaching the chosen map; ``features`` flattens the last map, ``head`` is linear."""

    def __init__(self, channels: int, size: int, base: int, norm: str, attn_res: int, out: int = 1):
        super().__init__()
        s0, k = conv_plan(size)
        at = attention_at([size // 2 ** (i + 1) for i in range(k)], attn_res, "the discriminator")
        layers, c = [], channels
        for i in range(k):
            w = base * 2 ** i
            layers += [nn.Conv2d(c, w, 4, 2, 1)] + ([norm2d(norm, w)] if i else []) + [leaky_relu()]
            if i == at:
                layers.append(SelfAttention(w))
            c = w
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c * s0 * s0, out)


@dataclass
class SAGANOptions(Options):
    attn_res: int = 16                # self-attention at the largest feature map <= this size (0: none)

    def check(self, config) -> None:
        if self.attn_res < 0:
            raise DgmError(f"--attn-res must be >= 0, got {self.attn_res}")


def square(c, arch: str) -> None:
    if c.height != c.width:
        raise DgmError(f"--arch {arch} needs square images, got {c.height}x{c.width}")


def build(c, energy):
    """G and D as above with --hidden base channels; spectral norm on G here (on D by GAN through --spectral-norm).
    Energy objectives (ebgan, began) get DCGAN's auto-encoder D. Conditional runs: G as in ``SAGANGenerator``; D's
    first layer also reads K one-hot label planes with --cond concat (projection / ac: ``gan_nets.base``)."""
    from .dcgan import dcgan_autoencoder

    square(c, "sagan")
    k = c.num_classes if getattr(c, "conditional", False) else 0
    generator = SAGANGenerator(c.latent_dim, c.channels, c.height, c.hidden, c.attn_res, k, c.cond if k else "")

    def scorer():
        return SAGANEncoder(c.channels * c.pack + label_channels(c), c.height, c.hidden, c.d_norm, c.attn_res)

    d = discriminator(energy, scorer, lambda: dcgan_autoencoder(c), c)
    orthogonal_init(generator)
    orthogonal_init(d)
    return spectral_g(generator), d


GAN_ARCHS.add("sagan", GANArch(build, data_kinds=("images",), hidden=32, Options=SAGANOptions,
                               defaults={"objective": "hinge", "spectral_norm": True}, ttur=TTUR),
              "SAGAN (Zhang et al. 2019): DCGAN-shaped G/D with self-attention at --attn-res, spectral norm in G "
              "and D, hinge loss and TTUR by default")
