"""BigGAN (Brock et al. 2019, "Large Scale GAN Training for High Fidelity Natural Image Synthesis") at small sizes.

SAGAN's recipe (self-attention at --attn-res, spectral norm in G and D, hinge loss, TTUR) with BigGAN's changes,
each switchable for the paper's Table 1:

* residual blocks (its Figure 15): G: CBN-ReLU-upsample-conv3x3-CBN-ReLU-conv3x3 + upsample-conv1x1 skip;
  D: ReLU-conv3x3-ReLU-conv3x3-avgpool + conv1x1-avgpool skip (no first ReLU in the first block), then ReLU,
  global sum pooling and a linear head;
* hierarchical latents (skip-z, ``--no-skip-z`` off): z is split into one chunk for the input layer and one per G
  block; each block's conditional batch norm (``dgm.nn.conditional``) reads its chunk;
* shared class embedding (conditional runs, --cond projection or ac; ``--no-shared-embed``: one embedding per
  block): each block's CBN reads [its z chunk, embed(y)]. With --cond concat (CGAN) the one class embedding is
  concatenated to the input chunk of z instead, and the CBNs read their z chunks only. D's conditional part is the
  generic one of ``gan_nets.base`` (projection, Miyato & Koyama 2018, as in BigGAN; the ACGAN head; or one-hot
  label planes appended to D's input for concat);
* orthogonal regularisation of G (``--ortho-reg``, default 1e-4; the off-diagonal form, in the GAN step);
* the truncation trick by resampling (``dgm sample RUN --truncation PSI``: |z_i| > PSI redrawn).

Sizes follow the DCGAN plan (8: 2 -> 4 -> 8, 28: 7 -> 14 -> 28, 32: 4 -> 8 -> 16 -> 32); G's channels halve per
block down to --hidden, D's double from --hidden. Weights start orthogonal, as in BigGAN's code.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ...errors import DgmError
from ...nn import SelfAttention, upsample
from ...nn.blocks import conv_plan
from ...nn.conditional import ConditionalBatchNorm
from .base import GAN_ARCHS, GANArch, discriminator, label_channels
from .sagan import TTUR, SAGANOptions, attention_at, orthogonal_init, spectral_g, square


class _BatchNorm(nn.BatchNorm2d):
    """Plain batch norm with CBN's call signature, for blocks that have nothing to condition on."""

    def forward(self, x: Tensor, h: Optional[Tensor] = None) -> Tensor:
        return super().forward(x)


def _norm(features: int, cond_dim: int) -> nn.Module:
    return ConditionalBatchNorm(features, cond_dim) if cond_dim else _BatchNorm(features)


class GBlock(nn.Module):
    """x -> conv(ReLU(CBN(conv(up(ReLU(CBN(x, h)))), h))) + conv1x1(up(x)) (Brock et al. 2019, Figure 15 (b))."""

    def __init__(self, cin: int, cout: int, cond_dim: int):
        super().__init__()
        self.bn1, self.conv1 = _norm(cin, cond_dim), nn.Conv2d(cin, cout, 3, 1, 1)
        self.bn2, self.conv2 = _norm(cout, cond_dim), nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1)

    def forward(self, x: Tensor, h: Optional[Tensor]) -> Tensor:
        o = self.conv1(upsample(F.relu(self.bn1(x, h))))
        o = self.conv2(F.relu(self.bn2(o, h)))
        return o + self.skip(upsample(x))


class DBlock(nn.Module):
    """x -> avgpool(conv(ReLU(conv(ReLU(x))))) + avgpool(conv1x1(x)) (Figure 15 (c)); the first block has no
    leading ReLU (its input is the image)."""

    def __init__(self, cin: int, cout: int, preact: bool):
        super().__init__()
        self.conv1, self.conv2, self.skip = nn.Conv2d(cin, cout, 3, 1, 1), nn.Conv2d(cout, cout, 3, 1, 1), \
            nn.Conv2d(cin, cout, 1)
        self.preact = preact

    def forward(self, x: Tensor) -> Tensor:
        o = F.relu(x) if self.preact else x
        o = self.conv2(F.relu(self.conv1(o)))
        return F.avg_pool2d(o, 2) + F.avg_pool2d(self.skip(x), 2)  # conv1x1 and avgpool commute


class BigGANGenerator(nn.Module):
    """z (and y) -> linear -> (C0, s0, s0) -> residual up-blocks (attention after the chosen one) -> BN-ReLU-conv3x3
    -> tanh. ``conditions(z, y)`` gives the input chunk and each block's CBN input."""

    def __init__(self, latent: int, channels: int, size: int, base: int, attn_res: int, skip_z: bool = True,
                 num_classes: int = 0, shared_embed: bool = True, embed_dim: int = 0, concat: bool = False):
        super().__init__()
        s0, k = conv_plan(size)
        if skip_z and latent < k + 1:
            raise DgmError(f"--skip-z splits z into {k + 1} chunks (input + {k} blocks): --latent-dim must be >= "
                           f"{k + 1}, got {latent}")
        widths = [base * 2 ** max(k - 1 - i, 0) for i in range(k + 1)]
        self.c0, self.s0, self.skip_z, self.num_classes = widths[0], s0, skip_z, num_classes
        self.concat = bool(num_classes) and concat  # CGAN: the class embedding enters once, with z's input chunk
        self.chunks = [len(t) for t in torch.arange(latent).tensor_split(k + 1 if skip_z else 1)]
        embed_dim = (embed_dim or base) if num_classes else 0
        if num_classes:  # one embedding shared by all blocks, or one per block (BigGAN's baseline)
            self.embed = nn.ModuleList([nn.Embedding(num_classes, embed_dim)
                                        for _ in range(1 if shared_embed or self.concat else k)])
        self.project = nn.Linear(self.chunks[0] + (embed_dim if self.concat else 0), self.c0 * s0 * s0)
        z_dims = self.chunks[1:] if skip_z else [0] * k
        cbn_embed = 0 if self.concat else embed_dim
        self.blocks = nn.ModuleList([GBlock(widths[i], widths[i + 1], z_dims[i] + cbn_embed) for i in range(k)])
        self.attn_after = attention_at([s0 * 2 ** i for i in range(1, k + 1)], attn_res, "the generator")
        self.attention = SelfAttention(widths[self.attn_after + 1]) if self.attn_after is not None else None
        self.out = nn.Sequential(nn.BatchNorm2d(widths[-1]), nn.ReLU(), nn.Conv2d(widths[-1], channels, 3, 1, 1),
                                 nn.Tanh())

    def conditions(self, z: Tensor, y: Optional[Tensor] = None) -> Tuple[Tensor, List[Optional[Tensor]]]:
        """(the input layer's chunk of z (with --cond concat: [chunk, class embedding]), [block k's CBN input:
        [z chunk k, class embedding] (concat: z chunk k) or None])."""
        parts = z.split(self.chunks, dim=1)
        k = len(self.blocks)
        zs = list(parts[1:]) if self.skip_z else [None] * k
        if self.num_classes and y is None:
            raise ValueError("this generator is class-conditional: give labels y (N,)")
        if self.concat:
            return torch.cat([parts[0], self.embed[0](y).to(z.dtype)], 1), zs
        if self.num_classes:
            es = [self.embed[0](y)] * k if len(self.embed) == 1 else [e(y) for e in self.embed]
        else:
            es = [None] * k
        hs = [None if a is None and b is None else torch.cat([t for t in (a, b) if t is not None], 1)
              for a, b in zip(zs, es)]
        return parts[0], hs

    def forward(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        z0, hs = self.conditions(z, y)
        x = self.project(z0).view(z.shape[0], self.c0, self.s0, self.s0)
        for i, (block, h) in enumerate(zip(self.blocks, hs)):
            x = block(x, h)
            if i == self.attn_after:
                x = self.attention(x)
        return self.out(x)


class BigGANEncoder(nn.Module):
    """Residual down-blocks (attention after the chosen one), ReLU, global sum pooling: ``features`` (N, C); a linear
    ``head`` to one score."""

    def __init__(self, channels: int, size: int, base: int, attn_res: int, out: int = 1):
        super().__init__()
        _, k = conv_plan(size)
        widths = [channels] + [base * 2 ** i for i in range(k)]
        self.blocks = nn.ModuleList([DBlock(widths[i], widths[i + 1], preact=i > 0) for i in range(k)])
        self.attn_after = attention_at([size // 2 ** (i + 1) for i in range(k)], attn_res, "the discriminator")
        self.attention = SelfAttention(widths[self.attn_after + 1]) if self.attn_after is not None else None
        self.head = nn.Linear(widths[-1], out)

    def features(self, x: Tensor) -> Tensor:
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i == self.attn_after:
                x = self.attention(x)
        return F.relu(x).sum(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


@dataclass
class BigGANOptions(SAGANOptions):
    skip_z: bool = True               # hierarchical latents, a chunk of z per G block (off: z at the input)
    shared_embed: bool = True         # conditional: one class embedding for all G blocks (off: one each)


def build(c, energy):
    """G and D as above with --hidden channels; spectral norm on G here (on D by GAN through --spectral-norm).
    Conditional runs (``c.conditional``): G's CBN reads the class embedding (concat: G's input does); D's
    conditioning is the generic one (its first layer reads K more label planes with concat).
    Energy objectives (ebgan, began) get DCGAN's auto-encoder D."""
    from .dcgan import dcgan_autoencoder

    square(c, "biggan")
    classes = c.num_classes if getattr(c, "conditional", False) else 0
    if getattr(c, "conditional", False) and not classes:
        raise DgmError("--conditional needs a labelled dataset (num_classes > 0)")
    if not classes and not c.shared_embed:
        raise DgmError("--no-shared-embed concerns the class embedding of a conditional run; drop it (this run is "
                       "unconditional)")
    concat = bool(classes) and c.cond == "concat"
    if concat and not c.shared_embed:
        raise DgmError("--no-shared-embed: with --cond concat the class embedding enters once, at G's input; drop it "
                       "or use --cond projection / ac")
    generator = BigGANGenerator(c.latent_dim, c.channels, c.height, c.hidden, c.attn_res, c.skip_z, classes,
                                c.shared_embed, concat=concat)

    def scorer():
        return BigGANEncoder(c.channels * c.pack + label_channels(c), c.height, c.hidden, c.attn_res)

    d = discriminator(energy, scorer, lambda: dcgan_autoencoder(c), c)
    orthogonal_init(generator)
    orthogonal_init(d)
    return spectral_g(generator), d


GAN_ARCHS.add("biggan", GANArch(build, data_kinds=("images",), hidden=32,
                                Options=BigGANOptions,
                                defaults={"objective": "hinge", "spectral_norm": True, "ortho_reg": 1e-4}, ttur=TTUR,
                                truncation_modes=("resample", "interpolate"), activation_modules=False),
              "BigGAN (Brock et al. 2019): residual G/D, skip-z into conditional batch norm, shared class embedding, "
              "orthogonal regularisation, truncation by resampling; SAGAN's attention, spectral norm, hinge, TTUR")
