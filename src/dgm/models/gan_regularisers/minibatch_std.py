"""Minibatch standard deviation (Karras et al. 2018, ProGAN): one batch-statistics feature appended to D's last
features (``gan_nets.batch_features.MinibatchStdDev``), after minibatch discrimination's (the file names' order)."""
from __future__ import annotations

from dataclasses import dataclass

from ...errors import DgmError
from ..gan_nets.batch_features import MinibatchStdDev
from .base import Regulariser, register


@register("mbstd", "minibatch standard deviation (Karras et al. 2018): one feature of D's batch statistics")
@dataclass
class MinibatchStd(Regulariser):
    mbstd: bool = False               # minibatch standard deviation feature (Karras et al. 2018, ProGAN)
    mbstd_group: int = 4              # group size of --mbstd (ProGAN: 4)

    d_batch_features = 1

    def check(self, config) -> None:
        if self.mbstd_group < 1:
            raise DgmError(f"--mbstd-group must be >= 1, got {self.mbstd_group}")
        if self.mbstd and config.objective_spec.kind == "energy":
            raise DgmError(f"--minibatch-disc / --mbstd need a scoring discriminator; {config.objective} has an "
                           "auto-encoder D: drop the option or choose another objective")

    def d_batch_layer(self, features: int):
        return MinibatchStdDev(self.mbstd_group)
