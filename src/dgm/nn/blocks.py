"""Building blocks shared by several model families: MLPs, norm layers by name, the stride-2 conv plan, the
masked output head of the PixelCNNs, and ``evaluating(module)`` (eval mode for a block of code, then the previous
mode back)."""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import DgmError
from .masked import MaskedConv2d, channel_groups

NORMS = ("batch", "layer", "none")


def leaky_relu() -> nn.Module:
    """LeakyReLU(0.2), the discriminators' activation since DCGAN (Radford et al. 2016)."""
    return nn.LeakyReLU(0.2)


def norm1d(kind: str, n: int) -> nn.Module:
    """A norm layer for (B, n) features: batch | layer | none."""
    return {"batch": lambda: nn.BatchNorm1d(n), "layer": lambda: nn.LayerNorm(n), "none": nn.Identity}[kind]()


def norm2d(kind: str, c: int) -> nn.Module:
    """A norm layer for (B, c, H, W) maps: batch | layer (one group over all channels) | none."""
    return {"batch": lambda: nn.BatchNorm2d(c), "layer": lambda: nn.GroupNorm(1, c), "none": nn.Identity}[kind]()


def mlp(sizes: Sequence[int], act: Callable[[], nn.Module] = nn.ReLU, norm: Optional[str] = None) -> nn.Sequential:
    """Linear layers through ``sizes``; between two of them a norm layer and an activation, none after the last.

    ``norm``: None puts no norm slot in the stack; a name of ``NORMS`` puts that layer (``"none"``: an Identity, so
    that the parameter names are those of a stack with a real norm, as in the GAN's checkpoints).
    """
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            if norm is not None:
                layers.append(norm1d(norm, b))
            layers.append(act())
    return nn.Sequential(*layers)


def conv_plan(size: int) -> Tuple[int, int]:
    """(start size, number of x2 up/downsamplings) of a stride-2 conv stack: 8 -> (2, 2), 28 -> (7, 2), 32 -> (4, 3)."""
    s, k = size, 0
    while s % 2 == 0 and s // 2 >= 2 and k < 3:
        s, k = s // 2, k + 1
    if k == 0:
        raise DgmError(f"a convolutional network needs an even image size (8, 28, 32, 64, ...), got {size}; "
                       "use --arch mlp")
    return s, k


class MaskedOutputHead(nn.Module):
    """ReLU -> 1x1 (mask B) -> ReLU -> 1x1 (mask B) to ``out_per_channel`` numbers per data channel: the output
    stack of the PixelCNNs (van den Oord et al. 2016), keeping each channel's outputs on its own inputs."""

    def __init__(self, width: int, channels: int, out_per_channel: int):
        super().__init__()
        n_out = channels * out_per_channel
        self.hidden = MaskedConv2d(width, width, 1, "B", n_groups=channels)
        self.out = MaskedConv2d(width, n_out, 1, "B", n_groups=channels, out_groups=channel_groups(n_out, channels))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.out(F.relu(self.hidden(F.relu(h))))


@contextlib.contextmanager
def evaluating(module: nn.Module) -> Iterator[nn.Module]:
    """Eval mode inside the block (batch norm on running statistics, no dropout); the previous mode afterwards."""
    was = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was)


__all__ = ["NORMS", "leaky_relu", "norm1d", "norm2d", "mlp", "conv_plan", "MaskedOutputHead", "evaluating"]
