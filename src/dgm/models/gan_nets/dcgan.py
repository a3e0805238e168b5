"""DCGAN (Radford et al. 2016) for square images of size 8, 28, 32, 64, ...

Its options (``--arch dcgan``): how G doubles its maps, ``--upsample transpose`` (the paper's stride-2 transposed
convolution), ``pixelshuffle`` (a 3x3 convolution to 4x the channels, then PixelShuffle(2): Shi et al. 2016) or
``nearest`` (nearest-neighbour x2, then a 3x3 convolution); how D halves them, ``--downsample stride`` (the paper's
stride-2 convolution) or ``avgpool`` (a 3x3 convolution, then 2x2 average pooling); and G's activation,
``--g-activation relu`` (the paper's) or ``leaky-relu`` (LeakyReLU(0.2), as D's: ganhacks tip 5). The defaults
build the networks of every earlier run, with the same parameter names.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ...errors import DgmError
from ...nn.blocks import conv_plan, leaky_relu, norm2d
from ...nn.conditional import ConditionalBatchNorm
from ...part_options import Options
from .base import GAN_ARCHS, GANArch, discriminator, label_channels

UPSAMPLES = ("transpose", "pixelshuffle", "nearest")
DOWNSAMPLES = ("stride", "avgpool")
G_ACTIVATIONS = ("relu", "leaky-relu")


@dataclass
class DCGANOptions(Options):
    upsample: str = "transpose"       # G's x2 upsampling: transpose (conv) | pixelshuffle (Shi et al. 2016) | nearest
    downsample: str = "stride"        # D's /2 downsampling: stride (conv) | avgpool (3x3 conv, then 2x2 average pool)
    g_activation: str = "relu"        # G's hidden activation: relu (DCGAN) | leaky-relu (LeakyReLU(0.2), as D's)

    def check(self, config) -> None:
        for name, allowed in (("upsample", UPSAMPLES), ("downsample", DOWNSAMPLES), ("g_activation", G_ACTIVATIONS)):
            if getattr(self, name) not in allowed:
                raise DgmError(f"--{name.replace('_', '-')} must be one of {', '.join(allowed)}, got "
                               f"{getattr(self, name)!r}")


def up_layers(c_in: int, c_out: int, mode: str) -> List[nn.Module]:
    """Layers doubling the height and width of a (c_in, s, s) map to (c_out, 2s, 2s), by ``mode`` (UPSAMPLES)."""
    if mode == "transpose":
        return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1)]
    if mode == "pixelshuffle":
        return [nn.Conv2d(c_in, 4 * c_out, 3, 1, 1), nn.PixelShuffle(2)]
    return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1)]


def down_layers(c_in: int, c_out: int, mode: str) -> List[nn.Module]:
    """Layers halving the height and width of a (c_in, s, s) map to (c_out, s/2, s/2), by ``mode`` (DOWNSAMPLES)."""
    if mode == "stride":
        return [nn.Conv2d(c_in, c_out, 4, 2, 1)]
    return [nn.Conv2d(c_in, c_out, 3, 1, 1), nn.AvgPool2d(2)]


def g_activation(name: str) -> nn.Module:
    return nn.ReLU() if name == "relu" else leaky_relu()


class DCGANGenerator(nn.Module):
    """Radford et al. 2016: project z, then stride-2 transposed convolutions with BN + ReLU, tanh output
    (``upsample``, ``activation``: the other doublings and LeakyReLU, see the module's docstring).

    Class-conditional (``classes`` K > 0, ``forward(z, y)``): ``cond="concat"`` (CGAN) projects [z, embed(y)], a
    learned K-dimensional label embedding; otherwise (the projection discriminator's G, Miyato & Koyama 2018, also
    used with ACGAN here) every batch norm is class-conditional, ``ConditionalBatchNorm`` with h = one-hot(y): a
    gain 1 + gamma_y and a bias beta_y per class and channel."""

    def __init__(self, latent: int, channels: int, size: int, base: int, classes: int = 0, cond: str = "",
                 upsample: str = "transpose", activation: str = "relu"):
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
        self.project = nn.Sequential(nn.Linear(z_in, c * s0 * s0), bn(c * s0 * s0, 1), g_activation(activation))
        ups = []
        for i in range(k - 1):
            ups += [*up_layers(c, c // 2, upsample), bn(c // 2, 2), g_activation(activation)]
            c //= 2
        ups += [*up_layers(c, channels, upsample), nn.Tanh()]
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

    def __init__(self, channels: int, size: int, base: int, out: int, norm: str, downsample: str = "stride"):
        super().__init__()
        s0, k = conv_plan(size)
        layers, c = [*down_layers(channels, base, downsample), leaky_relu()], base
        for i in range(k - 1):
            layers += [*down_layers(c, 2 * c, downsample), norm2d(norm, 2 * c), leaky_relu()]
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


def dcgan_autoencoder(c, opts: Optional[DCGANOptions] = None):
    """The auto-encoder D of the energy objectives (EBGAN, BEGAN) for square images, shared by dcgan, sagan and
    biggan: a DCGAN encoder to a 4 x --hidden code (reading ``--pack`` images and, with --cond concat, K one-hot label
    planes) and a DCGAN generator as decoder. Returns (encoder, decoder). ``opts`` (dcgan's options): the encoder
    downsamples by ``--downsample``, the decoder upsamples by ``--upsample`` (its activation stays ReLU: it is D's)."""
    o = opts or DCGANOptions()
    code = 4 * c.hidden
    enc = DCGANEncoder(c.channels * c.pack + label_channels(c), c.height, c.hidden, code, c.d_norm, o.downsample)
    return enc, nn.Sequential(DCGANGenerator(code, c.channels * c.pack, c.height, c.hidden, upsample=o.upsample))


def build(c, energy):
    """G: DCGAN generator with --hidden base channels; D: DCGAN encoder with one output, or (energy) an encoder to a
    4 x hidden code and a DCGAN generator as decoder. Weights initialised as in the paper. D's input is ``--pack``
    images with their channels side by side, plus K one-hot label planes with --cond concat."""
    k = c.num_classes if c.conditional else 0
    o = c.arch_options
    generator = DCGANGenerator(c.latent_dim, c.channels, c.height, c.hidden, k, c.cond if k else "", o.upsample,
                               o.g_activation)
    if c.height != c.width:
        raise DgmError(f"DCGAN needs square images, got {c.height}x{c.width}")

    def scorer():
        return DCGANEncoder(c.channels * c.pack + label_channels(c), c.height, c.hidden, 1, c.d_norm, o.downsample)

    d = discriminator(energy, scorer, lambda: dcgan_autoencoder(c, o), c)
    generator.apply(dcgan_init)
    d.apply(dcgan_init)
    return generator, d


GAN_ARCHS.add("dcgan", GANArch(build, data_kinds=("images",), hidden=32, batch_norm_d=True, Options=DCGANOptions),
              "DCGAN (Radford et al. 2016): stride-2 (transposed) convolutions, batch norm in G (and D by default)")
