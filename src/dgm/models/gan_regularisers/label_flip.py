"""Label flipping (Salimans et al. 2016's noisy labels; ganhacks tip 6): in D's loss only, the targets of a share P of
D's examples are swapped, real <-> fake, each example flipped independently with probability P; G's loss keeps its
targets. Only for objectives whose D loss is a per-example loss against real / fake targets (``Objective.targets``):
the logit family and LSGAN. The coin flips come from a stream fixed by (seed, D update) for the global batch, of
which each process takes its rows, so a resumed run flips what an uninterrupted one does."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ...errors import DgmError
from ...objectives import OBJECTIVES
from .base import Regulariser, register


@register("label-flip", "label flipping: D's targets of a share P of its examples swapped (D's loss only)")
@dataclass
class LabelFlip(Regulariser):
    flip_labels: float = 0.0          # share P of D's targets swapped real<->fake (0: off; logit objectives, lsgan)

    gan_step_only = True

    def check(self, config) -> None:
        if not 0 <= self.flip_labels <= 1:
            raise DgmError(f"--flip-labels must be in [0, 1], got {self.flip_labels}")
        if not self.flip_labels:
            return
        if config.objective_spec.targets is None:
            have = ", ".join(n for n in OBJECTIVES.names() if OBJECTIVES.get(n).targets is not None)
            raise DgmError(f"--flip-labels swaps real/fake targets; objective {config.objective} has none (objectives "
                           f"with targets: {have}): drop --flip-labels or choose one of them")
        if config.unroll_steps:
            raise DgmError("--flip-labels does not flip the targets of the unrolled copies of D's update; drop "
                           "--flip-labels or --unroll-steps")

    def flips(self, step, n_real: int, n_fake: int):
        """Bool masks (n_real,), (n_fake,) of this process's D outputs: drawn for the global batch; the real batch
        is dealt to the processes in turn (sample j to process j mod W), the fakes in contiguous slices."""
        info = step.engine.info
        w, r = info.world_size, info.rank
        gen = torch.Generator().manual_seed(step.engine.cfg.seed * 1_000_003 + step.d_steps + (3 << 40))
        real = torch.rand(n_real * w, generator=gen) < self.flip_labels
        fake = torch.rand(n_fake * w, generator=gen) < self.flip_labels
        dev = step.model.device
        return real[r::w].to(dev), fake[r * n_fake:(r + 1) * n_fake].to(dev)
