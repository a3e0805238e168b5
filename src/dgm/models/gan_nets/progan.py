"""ProGAN (Karras et al. 2018, "Progressive Growing of GANs"): G and D grow 4x4 -> 8x8 -> ... -> the data size.

Growing. Training starts at 4x4 for ``--phase-images`` images, then each new resolution fades in over
``--phase-images`` images (alpha linear 0 -> 1) and is stabilised for as many again. The current (level, alpha) is a
pure function of the images shown so far (``progan_schedule``), which the GAN step passes to ``set_progress`` before
every update, so a resumed run is exact, also in the middle of a fade-in. Both networks hold every resolution's
layers from the start (one fixed state_dict for checkpoints and DDP); layers not used yet get a zero gradient (the
``0 * sum`` term of ``_touch``), so DDP sees every parameter in every step and Adam leaves them where they are.

G, at level k with alpha: ``fade_in(up(to_rgb[k-1](h_{k-1})), to_rgb[k](block_k(h_{k-1})), alpha)``, then nearest
upsampling to the data size (so samples and evaluation always see data-size images). D mirrors it:
``fade_in(from_rgb[k-1](down(x)), block_k(from_rgb[k](x)), alpha)``, after average-pooling its input to the current
resolution. Real images are faded in like G's output (``reals``: the 2x2 mean of the current resolution upsampled,
blended with alpha; the paper's appendix A.1), so G and the data change in the same way during a fade-in.

Switches for the paper's Table 1: ``--no-growing`` (full resolution from the start), ``--no-eqlr`` (plain layers with
He's initialisation instead of the run-time scale of ``dgm.nn.equalized``), ``--no-pixelnorm`` (no pixelwise feature
vector normalisation in G); minibatch stddev is the shared ``--mbstd`` (appended to D's last features, before the
linear head); the paper's loss is ``--objective wgan-gp --drift 0.001``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ...errors import DgmError
from ...nn.equalized import EqualizedConv2d, EqualizedLinear, PixelNorm
from ...nn.resample import downsample, fade_in, upsample
from ...part_options import Options
from .base import GAN_ARCHS, GANArch, discriminator, label_channels

def progan_schedule(shown: int, levels: int, phase: int, growing: bool = True) -> Tuple[int, float]:
    """(level, alpha) after ``shown`` images: level 0 is 4x4, ``levels - 1`` the data size.

    Level 0 for ``phase`` images, then per new level a fade-in of ``phase`` images (alpha = t / phase) and a
    stabilisation of ``phase`` images (alpha = 1); the last level stays. Without growing: (levels - 1, 1.0)."""
    if not growing or levels == 1 or shown < phase:
        return (levels - 1, 1.0) if not growing or levels == 1 else (0, 1.0)
    k, r = divmod(shown - phase, 2 * phase)
    if k + 1 >= levels:
        return levels - 1, 1.0
    return k + 1, min(r / phase, 1.0)


def _levels(size: int) -> int:
    """Number of resolutions 4, 8, ..., size; a one-line error unless size is 4 x a power of 2."""
    n = int(round(math.log2(size / 4))) if size >= 4 else -1
    if n < 0 or 4 * 2 ** n != size:
        raise DgmError(f"--arch progan grows from 4x4 by doubling: it needs a square image size of 4 x 2^k (8, 16, 32, "
                       f"64), got {size}; for mnist / fashion-mnist pass --image-size 32")
    return n + 1


def _conv(cin: int, cout: int, k: int, eqlr: bool, gain: float = math.sqrt(2)) -> nn.Module:
    """A k x k convolution (padding k // 2): equalized (N(0, 1) weights scaled at run time), or plain with He's
    initialisation N(0, gain^2 / fan_in), zero bias (the paper's baseline without equalized learning rate)."""
    if eqlr:
        return EqualizedConv2d(cin, cout, k, padding=k // 2, gain=gain)
    conv = nn.Conv2d(cin, cout, k, padding=k // 2)
    nn.init.normal_(conv.weight, 0.0, gain / math.sqrt(cin * k * k))
    nn.init.zeros_(conv.bias)
    return conv


def _linear(cin: int, cout: int, eqlr: bool, gain: float = math.sqrt(2)) -> nn.Module:
    if eqlr:
        return EqualizedLinear(cin, cout, gain=gain)
    lin = nn.Linear(cin, cout)
    nn.init.normal_(lin.weight, 0.0, gain / math.sqrt(cin))
    nn.init.zeros_(lin.bias)
    return lin


def _act() -> nn.Module:
    return nn.LeakyReLU(0.2)


def _widths(levels: int, hidden: int) -> list:
    """Channels per level: ``hidden`` at the data size, doubling per halving of the resolution, at most 4 x hidden
    (the paper: 16 at 1024^2 doubling up to 512)."""
    return [min(hidden * 2 ** (levels - 1 - k), 4 * hidden) for k in range(levels)]


class _Progressive(nn.Module):
    """The progress shared by G and D: a buffer of the images shown (in the state_dict, so a loaded run samples at
    the resolution it reached) and the schedule read from it."""

    def __init__(self, levels: int, phase: int, growing: bool):
        super().__init__()
        self.levels, self.phase, self.growing = levels, phase, growing
        self.register_buffer("shown", torch.zeros((), dtype=torch.long))

    def set_progress(self, images: int) -> None:
        """The images shown before the coming update (the GAN step calls this)."""
        self.shown.fill_(int(images))

    @property
    def stage(self) -> Tuple[int, float]:
        """The current (level, alpha)."""
        return progan_schedule(int(self.shown), self.levels, self.phase, self.growing)

    def _touch(self, out: Tensor) -> Tensor:
        """out + 0 * (sum of every parameter): the layers of other resolutions get zero gradients, not none, so DDP
        reduces the same parameters in every step and one process matches many."""
        if not torch.is_grad_enabled():
            return out
        return out + 0.0 * sum(p.sum() for p in self.parameters())


class ProGANGenerator(_Progressive):
    """z -> (pixel norm) -> dense 4x4 -> conv 3x3; per level: up x2, two conv 3x3; to_rgb: 1x1, linear output.
    LeakyReLU(0.2) and (unless --no-pixelnorm) pixel norm after every conv (Karras et al. 2018, Table 2).
    ``classes`` K > 0: the input is [z, one-hot(y)] (the paper's conditional variant), ``forward(z, y)``."""

    def __init__(self, latent: int, channels: int, size: int, hidden: int, phase: int, growing: bool = True,
                 eqlr: bool = True, pixelnorm: bool = True, classes: int = 0):
        levels = _levels(size)
        super().__init__(levels, phase, growing)
        w = _widths(levels, hidden)
        norm = PixelNorm if pixelnorm else nn.Identity
        self.w0, self.classes = w[0], classes
        self.input_norm = norm()
        # the paper's dense layer to 4x4 uses gain sqrt(2) / 4 (one 4x4 map per input unit)
        self.dense = _linear(latent + classes, w[0] * 16, eqlr, gain=math.sqrt(2) / 4)
        self.blocks = nn.ModuleList([nn.Sequential(_act(), norm(), _conv(w[0], w[0], 3, eqlr), _act(), norm())])
        for k in range(1, levels):
            self.blocks.append(nn.Sequential(_conv(w[k - 1], w[k], 3, eqlr), _act(), norm(),
                                             _conv(w[k], w[k], 3, eqlr), _act(), norm()))
        self.to_rgb = nn.ModuleList([_conv(w[k], channels, 1, eqlr, gain=1.0) for k in range(levels)])

    def at(self, z: Tensor, level: int, alpha: float) -> Tensor:
        """G's image at ``level`` (4 * 2^level pixels a side) with fade-in ``alpha``; ``z``: G's input, [z, one-hot(y)]
        for a conditional G."""
        h = self.blocks[0](self.dense(self.input_norm(z)).view(z.shape[0], self.w0, 4, 4))
        for k in range(1, level):
            h = self.blocks[k](upsample(h))
        if level == 0:
            return self.to_rgb[0](h)
        new = self.to_rgb[level](self.blocks[level](upsample(h)))
        if alpha >= 1:
            return new
        return fade_in(upsample(self.to_rgb[level - 1](h)), new, alpha)

    def forward(self, z: Tensor, y=None) -> Tensor:
        if self.classes:
            if y is None:
                raise ValueError("this generator is class-conditional: pass the labels y")
            z = torch.cat([z, F.one_hot(y.long(), self.classes).to(z.dtype)], 1)
        level, alpha = self.stage
        x = self.at(z, level, alpha)
        for _ in range(level, self.levels - 1):  # nearest upsampling to the data size
            x = upsample(x)
        return self._touch(x)


class ProGANDiscriminator(_Progressive):
    """from_rgb: 1x1 conv; per level: two conv 3x3, then the 2x2 mean; at 4x4: conv 3x3, dense (the paper's 4x4
    conv) -> ``features``; ``head``: linear to one score (LeakyReLU(0.2) throughout; Karras et al. 2018, Table 2)."""

    def __init__(self, channels: int, size: int, hidden: int, phase: int, growing: bool = True, eqlr: bool = True):
        levels = _levels(size)
        super().__init__(levels, phase, growing)
        w = _widths(levels, hidden)
        self.eqlr = eqlr
        self.from_rgb = nn.ModuleList([nn.Sequential(_conv(channels, w[k], 1, eqlr), _act()) for k in range(levels)])
        self.blocks = nn.ModuleList([nn.Sequential(_conv(w[0], w[0], 3, eqlr), _act(), nn.Flatten(),
                                                   _linear(w[0] * 16, w[0], eqlr), _act())])
        for k in range(1, levels):
            self.blocks.append(nn.Sequential(_conv(w[k], w[k], 3, eqlr), _act(), _conv(w[k], w[k - 1], 3, eqlr),
                                             _act()))
        self.head = _linear(w[0], 1, eqlr, gain=1.0)

    def set_head(self, layer: nn.Module) -> None:
        """``base.Discriminator`` widens the head for --mbstd: the wider one is built equalized like the rest."""
        self.head = _linear(layer.in_features, layer.out_features, self.eqlr, gain=1.0)

    def _pool(self, x: Tensor, level: int) -> Tensor:
        """x (data size) average-pooled to level's resolution by repeated 2x2 means."""
        for _ in range(level, self.levels - 1):
            x = downsample(x)
        return x

    def reals(self, x: Tensor) -> Tensor:
        """Real images as G makes them now: at the current resolution, during a fade-in
        (1 - alpha) up(down(x)) + alpha x, then nearest-upsampled back to the data size."""
        level, alpha = self.stage
        x_l = self._pool(x, level)
        if level > 0 and alpha < 1:
            x_l = fade_in(upsample(downsample(x_l)), x_l, alpha)
        for _ in range(level, self.levels - 1):
            x_l = upsample(x_l)
        return x_l

    def features_at(self, x: Tensor, level: int, alpha: float) -> Tensor:
        """D's features of x (at level's resolution) with fade-in ``alpha``."""
        h = self.from_rgb[level](x)
        if level > 0:
            h = downsample(self.blocks[level](h))
            if alpha < 1:
                h = fade_in(self.from_rgb[level - 1](downsample(x)), h, alpha)
        for k in range(level - 1, 0, -1):
            h = downsample(self.blocks[k](h))
        return self.blocks[0](h)

    def features(self, x: Tensor) -> Tensor:
        level, alpha = self.stage
        return self._touch(self.features_at(self._pool(x, level), level, alpha))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


@dataclass
class ProGANOptions(Options):
    """--arch progan's switches (the paper's Table 1 rows)."""

    phase_images: int = 60000         # images shown per fade-in and per stabilisation of each resolution
    growing: bool = True              # progressive growing from 4x4 (--no-growing: the data size throughout)
    eqlr: bool = True                 # equalized learning rate (--no-eqlr: plain layers with He's init)
    pixelnorm: bool = True            # pixelwise feature normalisation after each conv of G

    def check(self, config) -> None:
        if self.phase_images < 1:
            raise DgmError(f"--phase-images must be >= 1, got {self.phase_images}")


def build(c, energy):
    """G and D as in Karras et al. 2018 (Table 2) with --hidden channels at the data size (doubling per halving, up to
    4 x hidden); a scoring D only (ProGAN's objectives: wgan-gp (+ --drift), non-saturating, hinge, ...)."""
    if c.height != c.width:
        raise DgmError(f"--arch progan needs square images, got {c.height}x{c.width}")
    if energy is not None:
        raise DgmError(f"--arch progan has a scoring discriminator; {c.objective} needs an auto-encoder D: choose "
                       "another --objective or --arch dcgan")
    if c.d_norm not in ("none", "auto"):
        raise DgmError(f"--arch progan has no normalisation layers in D (the paper's); drop --d-norm {c.d_norm}")
    if c.spectral_norm and c.eqlr:
        raise DgmError("--spectral-norm normalises plain Linear/Conv layers; --arch progan's are equalized: add "
                       "--no-eqlr or drop --spectral-norm")
    phase = c.phase_images
    classes = c.num_classes if getattr(c, "conditional", False) else 0
    g = ProGANGenerator(c.latent_dim, c.channels, c.height, c.hidden, phase, c.growing, c.eqlr, c.pixelnorm, classes)

    def scorer():
        cin = c.channels * c.pack + label_channels(c)  # --cond concat: K one-hot label planes too
        return ProGANDiscriminator(cin, c.height, c.hidden, phase, c.growing, c.eqlr)

    return g, discriminator(None, scorer, None, c)


GAN_ARCHS.add("progan", GANArch(build, data_kinds=("images",), hidden=32,
                                Options=ProGANOptions),
              "ProGAN (Karras et al. 2018): progressive growing with fade-in, equalized lr, pixel norm (+ --mbstd)")
