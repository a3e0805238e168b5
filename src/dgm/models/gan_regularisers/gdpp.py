"""GDPP (Elfeki et al. 2019): W x the DPP diversity loss (``objectives.diversity.gdpp_loss``) on G, computed on D's
representation (the head's input) of the fakes and of the real batch."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ...errors import DgmError
from ...objectives.diversity import gdpp_loss
from .base import Regulariser, register


@register("gdpp", "GDPP (Elfeki et al. 2019): a DPP diversity loss on G over D's features")
@dataclass
class GDPP(Regulariser):
    gdpp: float = 0.0                 # weight W of GDPP's DPP diversity loss on G, over D's features (0: off)

    wants_representations = True

    def check(self, config) -> None:
        if not self.gdpp >= 0:
            raise DgmError(f"--gdpp must be >= 0 (0: off), got {self.gdpp}")
        if self.gdpp and (config.objective_spec.kind == "energy" or config.unroll_steps):
            raise DgmError("--gdpp compares D's features of fakes and reals in G's loss: it needs a scoring "
                           f"discriminator and no --unroll-steps ({config.objective}, {config.unroll_steps} unrolling "
                           "steps here); drop one of them")

    def setup(self, step) -> None:
        if not getattr(step.model.discriminator, "split", False):
            raise DgmError(f"--gdpp needs D's last hidden features; --arch {step.model.config.arch}'s discriminator "
                           "has no features/head split: drop --gdpp or choose another --arch")

    def g_loss_on_d(self, step, h_real, h_fake):
        """The loss over the global batch: under DDP every process gathers all processes' representations (the fakes'
        with their gradient) and computes the same loss, so the averaged gradient equals the one-process gradient of
        the loss on the union batch. The loss pairs fake i with real i (eigenvectors index samples), so both are put
        in the one-process order: z is split in contiguous slices (``GANStep._inputs``), the real batch by the
        DistributedSampler, which deals sample j to process j mod W."""
        if step.engine.info.distributed:
            from torch.distributed.nn.functional import all_gather

            h_fake = torch.cat(all_gather(h_fake.float()))
            h_real = torch.stack(all_gather(h_real.detach().float())).transpose(0, 1).flatten(0, 1)
        loss = gdpp_loss(h_fake, h_real)
        return self.gdpp * loss, {"gdpp": float(loss.detach())}
