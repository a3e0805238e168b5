"""Instance noise (Sonderby et al. 2017; Arjovsky & Bottou 2017): Gaussian noise on D's inputs, real and fake, its
std annealed linearly to 0 (``objectives.instance_noise_std``)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ...errors import DgmError
from ...objectives.penalties import instance_noise_std
from .base import Regulariser, register


@register("instance-noise", "Gaussian instance noise on D's inputs, annealed to 0")
@dataclass
class InstanceNoise(Regulariser):
    instance_noise: float = 0.0       # std of Gaussian instance noise on D's inputs, annealed to 0
    noise_decay_steps: int = 0        # 0: anneal over the whole run

    def check(self, config) -> None:
        if not self.instance_noise >= 0 or self.noise_decay_steps < 0:
            raise DgmError(f"--instance-noise and --noise-decay-steps must be >= 0, got {self.instance_noise} and "
                           f"{self.noise_decay_steps}")

    def d_inputs(self, step, xs):
        decay = self.noise_decay_steps or step.engine.total_steps
        s = instance_noise_std(step.engine.global_step, self.instance_noise, decay)
        if s == 0:
            return xs
        return tuple(x + s * torch.randn_like(x) for x in xs)
