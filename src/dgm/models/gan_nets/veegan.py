"""The tanh MLPs of the VEEGAN / GDPP toy experiments (setting A of ``dgm bench modes --protocol veegan``).

Read from GDPP's code (github.com/M-Elfeki/GDPP, ``gdppgan_Synthetic.py``; VEEGAN's toy networks):
G: z -> [FC hidden, tanh] x layers -> FC 2; D: FC hidden, tanh -> ... -> FC hidden -> tanh -> FC 1 (a logit).
Every weight is initialised orthogonally with gain 1.4 (``slim.arg_scope(..., tf.orthogonal_initializer(gain=1.4))``),
biases 0 (slim's default). The preset sets hidden 128, layers 2, z in R^256.
"""
from __future__ import annotations

import torch.nn as nn
from torch import Tensor

from ...errors import DgmError
from ...nn.blocks import mlp
from .base import GAN_ARCHS, GANArch, discriminator

ORTHOGONAL_GAIN = 1.4  # gdppgan_Synthetic.py: tf.orthogonal_initializer(gain=1.4) on every fully connected layer


class TanhScorer(nn.Module):
    """D: tanh MLP to one logit; ``features`` is the last tanh layer (GDPP's ``h``), ``head`` the logit layer."""

    def __init__(self, d_in: int, hidden: int, layers: int, norm: str):
        super().__init__()
        self.net = mlp([d_in] + [hidden] * layers, nn.Tanh, norm)
        self.act = nn.Tanh()  # the activation after the last hidden layer (GDPP: h = tanh(h_2))
        self.head = nn.Linear(hidden, 1)

    def features(self, x: Tensor) -> Tensor:
        return self.act(self.net(x.flatten(1)))


def orthogonal_init(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.orthogonal_(m.weight, ORTHOGONAL_GAIN)
        nn.init.zeros_(m.bias)


def build(c, energy):
    """G: tanh MLP latent -> 2; D: tanh MLP on ``--pack`` points side by side, to one logit."""
    if energy is not None:
        raise DgmError(f"--arch veegan has no auto-encoder discriminator for {c.objective}; use --arch mlp")
    generator = mlp([c.latent_dim] + [c.hidden] * c.layers + [c.channels], nn.Tanh)

    def scorer():
        return TanhScorer(c.channels * c.pack, c.hidden, c.layers, c.d_norm)

    d = discriminator(energy, scorer, None, c)
    generator.apply(orthogonal_init)
    d.apply(orthogonal_init)
    return generator, d


GAN_ARCHS.add("veegan", GANArch(build, data_kinds=("points",), hidden=128),
              "tanh MLPs of the VEEGAN/GDPP toy experiments (orthogonal init, gain 1.4); --protocol veegan")
