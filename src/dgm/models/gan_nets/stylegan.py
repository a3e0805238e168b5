"""StyleGAN (Karras et al. 2019, "A Style-Based Generator Architecture for GANs"), at one fixed resolution.

Generator: a mapping network f: z -> w (``--mapping-layers``, 8 in the paper; 0: w is the pixel-normalised z), a
synthesis network from a learned constant s0 x s0 input (``--no-const-input``: a linear layer of w, as in ProGAN)
through two 3x3 convolutions per resolution, blur upsampling (nearest, then [1,2,1]^2 / 16) between resolutions.
Each convolution is followed by a noise input x + B_c noise (``--no-noise`` drops them), LeakyReLU(0.2) and a
style: AdaIN(x, A(w_l)) = y_s (x - mu(x)) / sigma(x) + y_b per channel, ``--modulation adain`` (default); or
StyleGAN2's weight modulation / demodulation (Karras et al. 2020), ``--modulation demod``; or no style at all,
``--modulation none``: ProGAN's pixelwise normalisation with w entering through the input layer only (row B of
the paper's Table 1). Every layer l reads its own w_l from per-layer latents (B, L, w_dim): style mixing feeds
w1 = f(z1) before a random crossover layer and w2 = f(z2) after it (``--style-mix-prob``), truncation moves w
toward the tracked mean w_avg (EMA, beta 0.995) on the layers before ``--truncation-cutoff``.

Discriminator: the ProGAN / StyleGAN D: fromRGB 1x1, per resolution two 3x3 convolutions and a blur downsampling
(``--d-residual``, the default: StyleGAN2's residual blocks, (block(x) + 1x1(down(x))) / sqrt 2), a last 3x3
convolution and a dense layer as ``features(x)``, a linear head; ``--mbstd`` adds the minibatch standard
deviation to those features (the existing batch layer). Equalized learning rate in both networks.

No progressive growing (``--arch progan`` grows): the networks train at the data's resolution from step 0.
Class-conditional runs (``--conditional``, every ``--cond``): StyleGAN2-ADA's conditional mapping (Karras et al.
2020b): f reads [pixel_norm(z), pixel_norm(embed(y))], a learned w_dim-dimensional class embedding, so every
style carries the class (the tracked w_avg is the mean over the classes drawn in training). D's conditioning is the
generic one of ``gan_nets.base`` (concat: fromRGB reads K more one-hot label planes).

The randomness of a training forward (noise images, the second z and the crossover layer) is drawn by the GAN step
through ``draw_inputs`` from the (seed, update) stream of z, so resumed and multi-process runs are exact.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ...errors import DgmError
from ...nn.equalized import EqualizedConv2d, EqualizedLinear, pixel_norm
from ...nn.resample import downsample, upsample
from ...nn.style import AdaIN, MappingNetwork, ModulatedConv2d, NoiseInput, mix_styles, truncate
from ...part_options import Options
from .base import GAN_ARCHS, GANArch, discriminator, label_channels

MODULATIONS = ("adain", "demod", "none")
W_AVG_BETA = 0.995  # StyleGAN's dlatent_avg_beta


def style_plan(size: int) -> Tuple[int, int]:
    """(start size s0 >= 4, number k of x2 upsamplings) with s0 2^k = size: 8 -> (4, 1), 28 -> (7, 2), 32 -> (4, 3)."""
    s, k = size, 0
    while s % 2 == 0 and s // 2 >= 4:
        s, k = s // 2, k + 1
    if k == 0:
        raise DgmError(f"--arch stylegan needs an image size s0 x 2^k with s0 >= 4, k >= 1 (8, 28, 32, 64, ...), "
                       f"got {size}")
    return s, k


def widths(base: int, k: int) -> List[int]:
    """Channels per resolution, coarse to fine: base 2^(k - r), at most 8 base (fewer channels at finer scales)."""
    return [min(base * 2 ** (k - r), 8 * base) for r in range(k + 1)]


def style_ranges(n_layers: int) -> Dict[str, Tuple[int, int]]:
    """Layer ranges [start, stop) of the coarse, middle and fine styles (the paper's Figure 3 at 1024^2: 4^2-8^2,
    16^2-32^2, 64^2-1024^2). Here: coarse = the first half of the resolutions, fine = the last one, middle between
    (with two resolutions: layers 0-1 coarse, 2 middle, 3 fine)."""
    res = n_layers // 2
    c1 = 2 * max(1, res // 2)
    c2 = max(c1 + 1, n_layers - 2)
    return {"coarse": (0, c1), "middle": (c1, c2), "fine": (c2, n_layers)}


class SynthesisLayer(nn.Module):
    """[blur upsample] -> 3x3 conv -> noise input -> LeakyReLU(0.2) -> AdaIN(., A(w)) (StyleGAN), or
    [up] -> modulated / demodulated 3x3 conv -> noise -> bias -> LeakyReLU (StyleGAN2), or
    [up] -> 3x3 conv -> noise -> LeakyReLU -> pixel norm (``none``: ProGAN, no style).
    ``conv=False`` (the first layer of an AdaIN / none generator) starts at the input tensor itself."""

    def __init__(self, cin: int, cout: int, w_dim: int, modulation: str, noise: bool, up: bool, conv: bool = True):
        super().__init__()
        self.up, self.modulation = up, modulation
        demod = modulation == "demod"
        self.conv = None
        if conv:
            self.conv = ModulatedConv2d(cin, cout, 3, w_dim) if demod else EqualizedConv2d(cin, cout, 3, padding=1)
        self.bias = nn.Parameter(torch.zeros(cout)) if (demod or not conv) else None
        self.noise = NoiseInput(cout) if noise else None
        self.style = AdaIN(w_dim, cout) if modulation == "adain" else None

    def forward(self, x: Tensor, w: Tensor, noise: Optional[Tensor] = None) -> Tensor:
        if self.up:
            x = upsample(x, "blur")
        if self.conv is not None:
            x = self.conv(x, w) if self.modulation == "demod" else self.conv(x)
        if self.noise is not None:
            x = self.noise(x, noise)
        if self.bias is not None:
            x = x + self.bias.view(1, -1, 1, 1)
        x = F.leaky_relu(x, 0.2)
        if self.style is not None:
            return self.style(x, w)
        return pixel_norm(x) if self.modulation == "none" else x


class StyleGANGenerator(nn.Module):
    """z -> w = f(z) -> per-layer latents (B, L, w_dim) -> synthesis; see the module docstring. ``classes`` K > 0:
    w = f([pixel_norm(z), pixel_norm(embed(y))]) (StyleGAN2-ADA's conditional mapping), ``forward(z, y)``."""

    def __init__(self, latent: int, channels: int, size: int, base: int, mapping_layers: int = 8,
                 const_input: bool = True, noise: bool = True, modulation: str = "adain", mix_prob: float = 0.9,
                 classes: int = 0):
        super().__init__()
        s0, k = style_plan(size)
        ch = widths(base, k)
        self.latent_dim, self.s0, self.mix_prob, self.modulation = latent, s0, mix_prob, modulation
        self.classes = classes
        if classes and not mapping_layers:
            raise DgmError("--conditional with --arch stylegan feeds the labels through the mapping network: give "
                           "--mapping-layers 1 or more")
        # conditional: the input [z, embed(y)] is normalised part by part here, not as a whole by the network
        self.mapping = MappingNetwork(latent + (latent if classes else 0), latent, mapping_layers,
                                      normalize=not classes)
        if classes:
            self.embed = nn.Embedding(classes, latent)
        if const_input:
            self.const = nn.Parameter(torch.ones(1, ch[0], s0, s0))  # StyleGAN initialises its constant to 1
        else:
            self.input = EqualizedLinear(latent, ch[0] * s0 * s0, gain=math.sqrt(2) / 4)  # ProGAN's first dense
        demod = modulation == "demod"
        layers = [SynthesisLayer(ch[0], ch[0], latent, modulation, noise, up=False, conv=demod),
                  SynthesisLayer(ch[0], ch[0], latent, modulation, noise, up=False)]
        self.sizes = [s0, s0]
        for r in range(1, k + 1):
            layers += [SynthesisLayer(ch[r - 1], ch[r], latent, modulation, noise, up=True),
                       SynthesisLayer(ch[r], ch[r], latent, modulation, noise, up=False)]
            self.sizes += [s0 * 2 ** r] * 2
        self.layers = nn.ModuleList(layers)
        self.has_noise = noise
        if demod:  # StyleGAN2's toRGB: modulated by the last layer's w, not demodulated, plus a bias
            self.to_rgb = ModulatedConv2d(ch[-1], channels, 1, latent, demodulate=False)
            self.rgb_bias = nn.Parameter(torch.zeros(channels))
        else:
            self.to_rgb = EqualizedConv2d(ch[-1], channels, 1, gain=1.0)

    @property
    def n_layers(self) -> int:
        """L: the number of per-layer latents (two per resolution)."""
        return len(self.layers)

    def synthesis(self, ws: Tensor, noise: Optional[List[Tensor]] = None) -> Tensor:
        """Images from per-layer latents ``ws`` (B, L, w_dim); ``noise``: one (B, 1, H_l, W_l) image per layer (None:
        drawn from the global RNG). The output is linear (no tanh), as in StyleGAN."""
        b = ws.shape[0]
        if hasattr(self, "const"):
            x = self.const.expand(b, -1, -1, -1)
        else:
            x = self.input(ws[:, 0]).view(b, -1, self.s0, self.s0)
        for i, layer in enumerate(self.layers):
            x = layer(x, ws[:, i], None if noise is None else noise[i])
        if self.modulation == "demod":
            return self.to_rgb(x, ws[:, -1]) + self.rgb_bias.view(1, -1, 1, 1)
        return self.to_rgb(x)

    def broadcast(self, w: Tensor) -> Tensor:
        """(B, w_dim) -> (B, L, w_dim): the same w for every layer."""
        return w[:, None].expand(-1, self.n_layers, -1)

    def map(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """w = f(z), or for a conditional G f([pixel_norm(z), pixel_norm(embed(y))]) (labels y (B,) required)."""
        if not self.classes:
            return self.mapping(z)
        if y is None:
            raise ValueError("this generator is class-conditional: pass the labels y")
        return self.mapping(torch.cat([pixel_norm(z), pixel_norm(self.embed(y.long()).to(z.dtype))], 1))

    def _track(self, w: Tensor) -> None:
        """w_avg <- beta w_avg + (1 - beta) mean(w), the mean over all processes' batches under DDP."""
        m = w.detach().mean(dim=0, keepdim=True)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(m)
            m = m / dist.get_world_size()
        self.mapping.update_w_avg(m, W_AVG_BETA)

    def forward(self, z: Tensor, y: Optional[Tensor] = None, noise: Optional[List[Tensor]] = None,
                mix_z: Optional[Tensor] = None, crossover: Optional[Tensor] = None) -> Tensor:
        """G(z); with ``mix_z`` and ``crossover`` (B,), layers l < crossover read f(z), the others f(mix_z) (style
        mixing; crossover = L: no mixing). In training mode each call updates the tracked w_avg."""
        w = self.map(z, y)
        if self.training:
            self._track(w)
        if mix_z is None:
            return self.synthesis(self.broadcast(w), noise)
        return self.synthesis(mix_styles(w, self.map(mix_z, y), crossover, self.n_layers), noise)

    def truncated(self, z: Tensor, psi: float, cutoff: int = 0, noise: Optional[List[Tensor]] = None,
                  y: Optional[Tensor] = None) -> Tensor:
        """Truncation in W: w' = w_avg + psi (f(z) - w_avg) on the layers l < ``cutoff`` (0: every layer); y: the
        labels of a conditional G (w_avg is the mean over all classes)."""
        ws = truncate(self.broadcast(self.map(z, y)), self.mapping.w_avg, psi, cutoff or None)
        return self.synthesis(ws, noise)

    def draw_inputs(self, n: int, generator: Optional[torch.Generator] = None, mixing: bool = False,
                    device=None) -> Dict[str, object]:
        """The random inputs of n forwards besides z, from ``generator``: ``noise`` (one image per layer) and, with
        ``mixing``, ``mix_z`` and ``crossover``: L (no mixing) with probability 1 - p, else uniform on 1..L-1."""
        out: Dict[str, object] = {}
        if self.has_noise:
            out["noise"] = [torch.randn(n, 1, s, s, generator=generator).to(device) for s in self.sizes]
        if mixing and self.mix_prob > 0:
            mix_z = torch.randn(n, self.latent_dim, generator=generator)
            mixed = torch.rand(n, generator=generator) < self.mix_prob
            layer = torch.randint(1, self.n_layers, (n,), generator=generator)
            out["mix_z"] = mix_z.to(device)
            out["crossover"] = torch.where(mixed, layer, torch.full_like(layer, self.n_layers)).to(device)
        return out


class DBlock(nn.Module):
    """Two 3x3 convolutions with LeakyReLU(0.2), then blur downsampling (ProGAN / StyleGAN); ``residual``:
    (block(x) + 1x1(down(x))) / sqrt(2) (StyleGAN2)."""

    def __init__(self, cin: int, cout: int, residual: bool):
        super().__init__()
        self.conv1 = EqualizedConv2d(cin, cin, 3, padding=1)
        self.conv2 = EqualizedConv2d(cin, cout, 3, padding=1)
        self.skip = EqualizedConv2d(cin, cout, 1, bias=False, gain=1.0) if residual else None

    def forward(self, x: Tensor) -> Tensor:
        h = F.leaky_relu(self.conv1(x), 0.2)
        h = downsample(F.leaky_relu(self.conv2(h), 0.2), "blur")
        if self.skip is None:
            return h
        return (h + self.skip(downsample(x, "blur"))) / math.sqrt(2)


class StyleGANDiscriminator(nn.Module):
    """fromRGB -> DBlocks down to s0 -> 3x3 conv -> dense = ``features(x)``; ``head``: linear to one score."""

    def __init__(self, channels: int, size: int, base: int, residual: bool):
        super().__init__()
        s0, k = style_plan(size)
        ch = widths(base, k)
        self.from_rgb = EqualizedConv2d(channels, ch[-1], 1)
        self.blocks = nn.Sequential(*[DBlock(ch[r], ch[r - 1], residual) for r in range(k, 0, -1)])
        self.final = EqualizedConv2d(ch[0], ch[0], 3, padding=1)
        self.dense = EqualizedLinear(ch[0] * s0 * s0, ch[0])
        self.head = nn.Linear(ch[0], 1)

    def features(self, x: Tensor) -> Tensor:
        h = self.blocks(F.leaky_relu(self.from_rgb(x), 0.2))
        h = F.leaky_relu(self.final(h), 0.2)
        return F.leaky_relu(self.dense(h.flatten(1)), 0.2)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def _check(c, energy) -> None:
    if energy is not None:
        raise DgmError(f"--arch stylegan needs a scoring discriminator; {c.objective} has an auto-encoder D: choose "
                       "another objective (non-saturating, wgan-gp, hinge, ...)")
    if c.height != c.width:
        raise DgmError(f"--arch stylegan needs square images, got {c.height}x{c.width}")
    if c.spectral_norm:
        raise DgmError("--spectral-norm: the stylegan D uses equalized learning rate layers instead; drop it")
    if c.d_norm not in ("auto", "none"):
        raise DgmError(f"--d-norm {c.d_norm}: the stylegan D has no normalisation layers; drop --d-norm")


@dataclass
class StyleGANOptions(Options):
    mapping_layers: int = 8           # layers of the mapping network z -> w (0: w = the normalised z)
    const_input: bool = True          # learned constant input (--no-const-input: a linear layer of w)
    noise: bool = True                # per-layer noise inputs with learned per-channel scales
    modulation: str = "adain"         # adain | demod (StyleGAN2 weight demodulation) | none (no styles)
    style_mix_prob: float = 0.9       # share of fakes mixing two w's at a random crossover layer
    truncation_cutoff: int = 0        # sample --truncation moves w on layers < this only (0: all layers)
    d_residual: bool = True           # residual D blocks (StyleGAN2; --no-d-residual: the plain ProGAN D)

    def check(self, config) -> None:
        if self.modulation not in MODULATIONS:
            raise DgmError(f"--modulation must be one of {', '.join(MODULATIONS)}, got {self.modulation!r}")
        if self.mapping_layers < 0 or self.truncation_cutoff < 0:
            raise DgmError("--mapping-layers and --truncation-cutoff must be >= 0")
        if not 0 <= self.style_mix_prob <= 1:
            raise DgmError(f"--style-mix-prob must be in [0, 1], got {self.style_mix_prob}")
        if self.modulation == "none" and self.const_input:
            raise DgmError("--modulation none feeds w through the input layer only: give --no-const-input too")
        if self.modulation == "none" and self.style_mix_prob > 0:
            raise DgmError("--modulation none has no per-layer styles to mix: give --style-mix-prob 0")


def build(c, energy):
    """G: StyleGAN's generator with --hidden channels at the finest resolution (doubling coarser, at most 8x), w_dim
    = --latent-dim; D: the ProGAN / StyleGAN D with the same widths, for ``--pack`` images side by side."""
    _check(c, energy)
    g = StyleGANGenerator(c.latent_dim, c.channels, c.height, c.hidden, c.mapping_layers, c.const_input, c.noise,
                          c.modulation, c.style_mix_prob, c.num_classes if getattr(c, "conditional", False) else 0)

    def scorer():
        return StyleGANDiscriminator(c.channels * c.pack + label_channels(c), c.height, c.hidden, c.d_residual)

    return g, discriminator(None, scorer, None, c)


GAN_ARCHS.add("stylegan", GANArch(build, data_kinds=("images",), hidden=32,
                                  Options=StyleGANOptions, defaults={"r1": 10.0}, activation_modules=False),
              "StyleGAN (Karras et al. 2019): mapping network, AdaIN or StyleGAN2 demodulation, constant input, noise, "
              "style mixing, W truncation; fixed resolution; R1 gamma 10 by default")
