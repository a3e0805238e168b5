"""EMA of the generator's weights (Karras et al. 2018; Yazici et al. 2019; ``dgm.nn.ema``): a frozen copy of G,
``model.generator_ema``, averaged after each G update and sampled by default (``--no-ema``: the raw G)."""
from __future__ import annotations

from dataclasses import dataclass

from ...errors import DgmError
from ...nn.ema import ema_copy, ema_update
from .base import Regulariser, register


@register("ema", "exponential moving average of G's weights, sampled by default")
@dataclass
class EMA(Regulariser):
    ema_decay: float = 0.0            # EMA of G's weights sampled by default (e.g. 0.999; 0: off; dgm.nn.ema)
    ema_start: int = 0                # the EMA copies G until this training step, then averages

    def check(self, config) -> None:
        if not 0 <= self.ema_decay < 1:
            raise DgmError(f"--ema-decay must be in [0, 1) (0: no EMA), got {self.ema_decay}")
        if self.ema_start < 0 or (self.ema_start and not self.ema_decay):
            raise DgmError(f"--ema-start must be >= 0 and needs --ema-decay > 0, got {self.ema_start}")

    def build(self, model) -> None:
        model.generator_ema = ema_copy(model.generator)  # part of the state dict: checkpoints hold it

    def after_g(self, step) -> None:
        m = step.model  # its step: the training step, = D updates so far
        ema_update(m.generator_ema, m.generator, self.ema_decay, step.d_steps, self.ema_start)
