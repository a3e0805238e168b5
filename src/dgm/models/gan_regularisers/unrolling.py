"""The unrolled GAN (Metz et al. 2017): G's loss is taken against K differentiable updates of a copy of D. The
updates use D's own optimizer rule (``training.optim``), so the step that unrolls lives in ``training/gan_step.py``
(``GANStep.unrolled_g_loss``); this file declares the option and its checks."""
from __future__ import annotations

from dataclasses import dataclass

from ...errors import DgmError
from .base import Regulariser, register


@register("unroll", "unrolled GAN (Metz et al. 2017): G's loss against K differentiable updates of D")
@dataclass
class Unrolling(Regulariser):
    unroll_steps: int = 0             # unrolled GAN (Metz et al. 2017): K differentiable D updates

    def check(self, config) -> None:
        if not 0 <= self.unroll_steps <= 1000:  # each training step runs K extra D updates: the paper used up to 10
            raise DgmError(f"--unroll-steps must be in 0..1000, got {self.unroll_steps}")
