"""Minibatch discrimination (Salimans et al. 2016, sec. 3.2): a batch-level layer between D's body and its head
(``gan_nets.batch_features.MinibatchDiscrimination``); it runs before ``--mbstd``'s (the file names' order)."""
from __future__ import annotations

from dataclasses import dataclass

from ...errors import DgmError
from ..gan_nets.batch_features import MinibatchDiscrimination
from .base import Regulariser, register


@register("minibatch-disc", "minibatch discrimination (Salimans et al. 2016): D compares each input with its batch")
@dataclass
class MinibatchDisc(Regulariser):
    minibatch_disc: int = 0           # minibatch discrimination (Salimans et al. 2016): number of kernels B (0: off)
    minibatch_disc_dim: int = 5       # dimension C of each minibatch-discrimination kernel

    @property
    def d_batch_features(self) -> int:
        return self.minibatch_disc

    def check(self, config) -> None:
        if self.minibatch_disc < 0:
            raise DgmError(f"--minibatch-disc must be >= 0, got {self.minibatch_disc}")
        if self.minibatch_disc_dim < 1:
            raise DgmError(f"--minibatch-disc-dim must be >= 1, got {self.minibatch_disc_dim}")
        if self.minibatch_disc and config.objective_spec.kind == "energy":
            raise DgmError(f"--minibatch-disc / --mbstd need a scoring discriminator; {config.objective} has an "
                           "auto-encoder D: drop the option or choose another objective")

    def d_batch_layer(self, features: int):
        return MinibatchDiscrimination(features, self.minibatch_disc, self.minibatch_disc_dim)
