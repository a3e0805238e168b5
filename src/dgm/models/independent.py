"""Independent-pixel baseline: p(x) = prod_i p(x_i), one learned distribution per element."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn

from .autoregressive import AutoregressiveModel
from .base import MODELS, ModelConfig


@dataclass
class IndependentConfig(ModelConfig):
    """The data shape only; class labels are ignored (num_classes resolved to 0)."""

    def __post_init__(self):
        self.num_classes = 0


@MODELS.register("independent", help="baseline: every pixel independent (a learned marginal per element)")
class IndependentPixels(AutoregressiveModel):
    """The baseline an autoregressive model must beat: no pixel sees any other."""

    Config = IndependentConfig
    _depends_on_input = False

    def __init__(self, config: IndependentConfig):
        super().__init__(config)
        c = config
        self.logits = nn.Parameter(torch.zeros(c.channels * self.out_per_channel, c.height, c.width))

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        self.check_input(x, y)
        return self._shape_logits(self.logits.unsqueeze(0).expand(x.shape[0], -1, -1, -1))
