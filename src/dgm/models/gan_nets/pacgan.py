"""The networks of PacGAN's toy experiments (setting B of ``dgm bench modes --protocol pacgan``).

Read from PacGAN's code (github.com/fjxmlzn/PacGAN, ``synthetic_data_experiments/2DGrid_GAN&PacGAN/pacgan_task.py``
and ``config.py``): G: z -> 4 x [Linear 400 without bias -> BatchNorm -> ReLU] -> Linear 2 (with bias);
D: 3 x LinearMaxout(200 units, 5 pieces) -> Linear 1, input 2 x packing degree. Weights ~ N(0, 0.02), biases 0
(BatchNorm: scale 1, shift 0); BatchNorm's population statistics move by 0.05 per step (``m * 0.05 + p * 0.95``).
Here ``--layers`` L gives G L + 1 hidden layers and D L maxout layers, ``--hidden`` H is G's width and D's is H / 2
(the preset: L = 3, H = 400).
"""
from __future__ import annotations

import torch.nn as nn
from torch import Tensor

from ...errors import DgmError
from ...nn.blocks import norm1d
from .base import GAN_ARCHS, GANArch, discriminator

INIT_STD = 0.02       # config.py "weights_init_std": 0.02, "biases_init": Constant(0.0)
MAXOUT_PIECES = 5     # config.py "disc_maxout_pieces": 5
BN_MOMENTUM = 0.05    # pacgan_task.py: bn_updates = m * 0.05 + p * 0.95


class Maxout(nn.Module):
    """Blocks' LinearMaxout: a Linear to units x pieces, then the max over each unit's pieces."""

    def __init__(self, d_in: int, units: int, pieces: int = MAXOUT_PIECES):
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(d_in, units * pieces)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x).view(x.shape[0], self.units, self.pieces).max(dim=2).values


class MaxoutScorer(nn.Module):
    """D: maxout layers (``features``), then a Linear to one logit (``head``)."""

    def __init__(self, d_in: int, hidden: int, layers: int, norm: str):
        super().__init__()
        blocks = []
        for i in range(layers):
            blocks += [Maxout(d_in if i == 0 else hidden, hidden), norm1d(norm, hidden)]
        self.net = nn.Sequential(*blocks)
        self.head = nn.Linear(hidden, 1)

    def features(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1))


def init(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, 0.0, INIT_STD)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def build(c, energy):
    """G: 4 x (Linear without bias, BatchNorm, ReLU) -> Linear 2; D: 3 maxout layers -> Linear 1 (PacGAN)."""
    if energy is not None:
        raise DgmError(f"--arch pacgan has no auto-encoder discriminator for {c.objective}; use --arch mlp")
    layers = []
    d_in = c.latent_dim
    for _ in range(c.layers + 1):
        layers += [nn.Linear(d_in, c.hidden, bias=False), nn.BatchNorm1d(c.hidden, momentum=BN_MOMENTUM), nn.ReLU()]
        d_in = c.hidden
    generator = nn.Sequential(*layers, nn.Linear(d_in, c.channels))
    width = max(1, c.hidden // 2)

    def scorer():
        return MaxoutScorer(c.channels * c.pack, width, c.layers, c.d_norm)

    d = discriminator(energy, scorer, None, c)
    generator.apply(init)
    d.apply(init)
    return generator, d


GAN_ARCHS.add("pacgan", GANArch(build, data_kinds=("points",), hidden=400),
              "PacGAN's toy networks: BatchNorm-ReLU generator (width --hidden), maxout discriminator (width hidden/2)")
