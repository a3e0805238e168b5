"""R1 (Mescheder et al. 2018): gamma/2 E_{x ~ data} ||grad D(x)||^2 on real points, for any scoring D; lazy with
--r1-every K (StyleGAN2: on every K-th D update, weight gamma/2 x K). ``objectives.penalties.r1`` is the entry."""
from __future__ import annotations

from dataclasses import dataclass

from ...errors import DgmError
from ...objectives.penalties import r1
from .base import Regulariser, register


@register("r1", "R1 gradient penalty on real points (Mescheder et al. 2018), lazy with --r1-every (StyleGAN2)")
@dataclass
class R1(Regulariser):
    r1: float = 0.0                   # R1 gamma: gamma/2 E||grad D(x)||^2 on reals (0: off; stylegan: 10 unless given)
    r1_every: int = 1                 # lazy R1 (StyleGAN2): on every K-th D update only, with weight gamma/2 x K

    def resolve(self, config, given) -> None:
        if "r1" not in given:  # the architecture's paper value (StyleGAN: 10), which yields to the objective's own
            obj = config.objective_spec  # penalty (wgan-gp, dragan) and to an auto-encoder D (ebgan, began)
            self.r1 = 0.0 if obj.kind == "energy" or obj.penalty else config.arch_spec.defaults.get("r1", 0.0)
        self.r1 = float(self.r1)

    def check(self, config) -> None:
        if self.r1 < 0 or (self.r1 and config.objective_spec.kind == "energy"):
            raise DgmError(f"--r1 must be >= 0 and needs a scoring discriminator ({config.objective} has an "
                           f"auto-encoder D), got {self.r1}")
        if self.r1_every < 1 or (self.r1_every != 1 and not self.r1):
            raise DgmError(f"--r1-every must be >= 1 and needs --r1 GAMMA > 0, got {self.r1_every}")

    def penalties(self):
        return [r1(self.r1, self.r1_every)]
