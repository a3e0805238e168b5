"""CycleGAN (Zhu, Park, Isola & Efros, ICCV 2017): unpaired image-to-image translation X <-> Y.

Two ResNet generators G: X -> Y and F: Y -> X (Johnson et al. 2016, as in the paper's appendix) and two PatchGAN
discriminators D_Y (real y vs G(x)) and D_X (real x vs F(y)). The losses live in ``dgm.objectives`` (the adversarial
one from ``OBJECTIVES``, least squares by default as in the paper; ``cycle_loss`` and ``identity_loss``); the
alternating updates, the image pools and the learning-rate decay in ``dgm.training.cyclegan_step``.

Generator, sized for 28x28 / 32x32 images (the paper's for 128x128 has k = 64 and 6 blocks):
c7s1-k, d2k, d4k, n x R4k, u2k, uk, c7s1-C -- 7x7 convolutions with reflection padding at both ends, two
stride-2 downsamplings and two stride-2 transposed convolutions, instance norm + ReLU after every layer but the
last, tanh at the end. Default k = 16, n = 4. A side divisible by 4 passes through unchanged (28 -> 14 -> 7 ->
14 -> 28; 32 -> 16 -> 8 -> 16 -> 32); any other side is reflection-padded up to the next multiple of 4 and the
output cropped back (8x8 digits pass as they are: 8 -> 4 -> 2).

Discriminator: the paper's 70x70 PatchGAN is C64-C128-C256-C512 (4x4 convolutions, stride 2, 2, 2, 1, leaky ReLU
0.2, instance norm but on the first) and a 4x4 convolution to one channel. On 28x28 images a 70x70 patch is the
whole image, so here D is C(k)-C(2k) (stride 2, 1) and the output convolution (stride 1): its receptive field is
16x16 pixels (r = 1 -> 4 -> 7 -> 16, r_in = (r_out - 1) s + k), and on a 28x28 input it scores a 12x12 map of
overlapping 16x16 patches. ``PatchDiscriminator.receptive_field`` computes it for other depths (``d_layers`` 3
gives the paper's 70x70). Instance norm's statistics are image-wide; the field is that of the convolutions.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..errors import DgmError
from ..objectives import OBJECTIVES
from .base import MODELS, ImageModel, InputError, ModelConfig

DIRECTIONS = ("x_to_y", "y_to_x")


@dataclass
class CycleGANConfig(ModelConfig):
    data_kind: str = "pairs"
    levels_b: int = field(default=2, metadata={"cli": False})  # grey levels of domain Y (from the dataset)
    objective: str = "lsgan"        # adversarial loss (dgm list objectives; logit/critic kinds without penalties)
    base_channels: int = 16         # k of c7s1-k (the paper: 64)
    res_blocks: int = 4             # residual blocks of each generator (the paper: 6 at 128x128, 9 at 256x256)
    d_channels: int = 16            # width of D's first layer (the paper: 64)
    d_layers: int = 1               # conv layers of D after the first, stride 2 but the last (70x70 field: 3; 1: 16x16)
    cycle_weight: float = 10.0      # lambda of the cycle loss
    identity_weight: Optional[float] = None  # weight of the identity loss (none: 0.5 x --cycle-weight; 0: off)
    cycle_forward: bool = True      # the forward cycle x -> G(x) -> F(G(x)) ~ x (--no-cycle-forward: off)
    cycle_backward: bool = True     # the backward cycle y -> F(y) -> G(F(y)) ~ y (--no-cycle-backward: off)
    gan: bool = True                # the adversarial terms (--no-gan: cycle / identity / paired L1 only)
    pool_size: int = 50             # generated images per direction kept for D (0: no pool)
    decay_from: float = 0.5         # lr constant, then linear to 0 from this step (< 1: fraction of the run)
    l1_weight: float = 100.0        # --paired runs only: weight of the supervised L1 (pix2pix: 100)

    def __post_init__(self):
        if self.objective not in OBJECTIVES.names():
            OBJECTIVES.get(self.objective)  # one line with the nearest name
        obj = OBJECTIVES.get(self.objective)
        if obj.beyond_a_score() is not None:
            raise DgmError(f"cyclegan cannot use objective {self.objective!r}: it needs "
                           f"{obj.beyond_a_score()}, which a pair of PatchGANs does not have; choose one of: "
                           f"{', '.join(usable_objectives())}")
        for name in ("base_channels", "res_blocks", "d_channels"):
            if getattr(self, name) < 1:
                raise DgmError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.d_layers < 0:
            raise DgmError(f"--d-layers must be >= 0, got {self.d_layers}")
        if self.pool_size < 0:
            raise DgmError(f"--pool-size must be >= 0, got {self.pool_size}")
        if self.decay_from < 0:
            raise DgmError(f"--decay-from must be >= 0 (a fraction below 1, else a step), got {self.decay_from}")
        if self.cycle_weight < 0 or (self.identity_weight is not None and self.identity_weight < 0):
            raise DgmError("--cycle-weight and --identity-weight must be >= 0")

    @property
    def identity(self) -> float:
        return 0.5 * self.cycle_weight if self.identity_weight is None else self.identity_weight

    @classmethod
    def tiny(cls) -> Dict[str, Any]:
        return {"base_channels": 4, "res_blocks": 1, "d_channels": 4, "pool_size": 4}


def usable_objectives() -> Tuple[str, ...]:
    """The registered objectives whose hooks a CycleGAN can call (no energy, penalty, clipping, options)."""
    return tuple(n for n in OBJECTIVES.names() if OBJECTIVES.get(n).beyond_a_score() is None)


class ResidualBlock(nn.Module):
    """R_k: two 3x3 convolutions (reflection padding, instance norm, ReLU between) plus the identity."""

    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), nn.InstanceNorm2d(c), nn.ReLU(True),
                                  nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), nn.InstanceNorm2d(c))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResNetGenerator(nn.Module):
    """c7s1-k, d2k, d4k, n x R4k, u2k, uk, c7s1-C with tanh (see the module docstring); images in [-1, 1]."""

    def __init__(self, channels: int, k: int, blocks: int):
        super().__init__()

        def norm_relu(c):
            return [nn.InstanceNorm2d(c), nn.ReLU(True)]

        layers = [nn.ReflectionPad2d(3), nn.Conv2d(channels, k, 7), *norm_relu(k),
                  nn.Conv2d(k, 2 * k, 3, stride=2, padding=1), *norm_relu(2 * k),
                  nn.Conv2d(2 * k, 4 * k, 3, stride=2, padding=1), *norm_relu(4 * k)]
        layers += [ResidualBlock(4 * k) for _ in range(blocks)]
        layers += [nn.ConvTranspose2d(4 * k, 2 * k, 3, stride=2, padding=1, output_padding=1), *norm_relu(2 * k),
                   nn.ConvTranspose2d(2 * k, k, 3, stride=2, padding=1, output_padding=1), *norm_relu(k),
                   nn.ReflectionPad2d(3), nn.Conv2d(k, channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        ph, pw = -h % 4, -w % 4
        if ph or pw:  # reflection-pad up to a multiple of 4, crop the output back
            x = F.pad(x, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "replicate")
        return self.net(x)[..., :h, :w]


class PatchDiscriminator(nn.Module):
    """PatchGAN (Isola et al. 2017): 4x4 convolutions C(k) s2, then ``layers`` more C(2^i k) (stride 2 but the
    last, stride 1), then a 4x4 convolution to one score per patch; leaky ReLU 0.2, instance norm but on the first."""

    def __init__(self, channels: int, k: int, layers: int):
        super().__init__()
        mods = [nn.Conv2d(channels, k, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        c = k
        for i in range(1, layers + 1):
            out = k * min(2 ** i, 8)
            stride = 1 if i == layers else 2
            mods += [nn.Conv2d(c, out, 4, stride=stride, padding=1), nn.InstanceNorm2d(out), nn.LeakyReLU(0.2, True)]
            c = out
        mods.append(nn.Conv2d(c, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*mods)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def receptive_field(self) -> int:
        """Side of the input patch one output score sees: r_in = (r_out - 1) stride + kernel, from the output back."""
        r = 1
        for m in reversed([m for m in self.net if isinstance(m, nn.Conv2d)]):
            r = (r - 1) * m.stride[0] + m.kernel_size[0]
        return r


@MODELS.register("cyclegan", help="CycleGAN (Zhu et al. 2017): unpaired translation X <-> Y; ResNet generators, "
                 "PatchGANs, least squares + cycle + identity losses, image pools (--data fashion-labels)")
class CycleGAN(ImageModel):
    """G: X -> Y, F: Y -> X, D_X, D_Y; ``translate(x, direction)``; images on the [-1, 1] scale."""

    Config = CycleGANConfig
    train_step = "cyclegan"
    data_kinds = ("pairs",)
    input_scale = "pm1"
    default_metrics = ("translation",)
    can_sample = False
    capabilities = ("translate",)
    default_figure = "translate"
    summary_format = "val cycle error x->y->x {cycle_x:.4f}, y->x->y {cycle_y:.4f} (mean |.| on [0, 1])"

    def __init__(self, config: CycleGANConfig):
        super().__init__(config)
        c = config
        self.objective = OBJECTIVES.get(c.objective)
        self.G = ResNetGenerator(c.channels, c.base_channels, c.res_blocks)
        self.F = ResNetGenerator(c.channels, c.base_channels, c.res_blocks)
        self.D_X = PatchDiscriminator(c.channels, c.d_channels, c.d_layers)
        self.D_Y = PatchDiscriminator(c.channels, c.d_channels, c.d_layers)

    def check_domain(self, x: Tensor, domain: str) -> None:
        """InputError unless x is a (B, C, H, W) batch of this model's shape with values in [-1, 1]."""
        self.check_shape(x)
        if not x.is_floating_point() or not bool(((x >= -1) & (x <= 1)).all()):
            raise InputError(f"expected images of domain {domain} on the [-1, 1] scale (finite floats)")

    def translate(self, x: Tensor, direction: str = "x_to_y") -> Tensor:
        """G(x) for "x_to_y", F(y) for "y_to_x"; images in [-1, 1]."""
        if direction not in DIRECTIONS:
            raise InputError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
        self.check_domain(x, direction[0].upper())
        net = self.G if direction == "x_to_y" else self.F
        return net(x.to(self.device, next(net.parameters()).dtype))

    def triplets(self, x: Tensor, direction: str = "x_to_y") -> Tuple[Tensor, Tensor, Tensor]:
        """(input, translation, reconstruction) for one direction: (x, G(x), F(G(x))) or (y, F(y), G(F(y)))."""
        t = self.translate(x, direction)
        back = "y_to_x" if direction == "x_to_y" else "x_to_y"
        return x, t, self.translate(t.clamp(-1, 1), back)

    def to_unit(self, x: Tensor) -> Tensor:
        return ((x + 1) / 2).clamp(0, 1)

    def sample(self, n: int, y=None, generator: Optional[torch.Generator] = None) -> Tensor:
        raise DgmError("a cyclegan translates images and draws none of its own: use "
                       "`dgm sample RUN --translate test` (or a folder of images)")
