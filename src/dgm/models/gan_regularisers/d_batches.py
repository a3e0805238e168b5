"""How D sees a step's real and fake batches (ganhacks tip 4): ``separate`` forward passes, one all-real and one
all-fake (dgm's default: a D with batch statistics normalises each on its own), or one ``joint`` pass over the two
batches concatenated (batch norm, minibatch features and --mbstd then see both). For a D without batch statistics
the two give the same outputs; either way the critic is one module call, so DDP sees one forward per backward."""
from __future__ import annotations

from dataclasses import dataclass

from ...errors import DgmError
from .base import Regulariser, register

D_BATCHES = ("separate", "joint")


@register("d-batches", "D's real and fake batches in separate passes (default) or one joint pass")
@dataclass
class DBatches(Regulariser):
    d_batches: str = "separate"       # separate: D scores reals and fakes in two passes | joint: one concatenated pass

    gan_step_only = True

    @property
    def d_joint(self) -> bool:
        return self.d_batches == "joint"

    def active(self) -> bool:
        return self.d_batches != "separate"  # separate is dgm's step as it was, bit for bit

    def check(self, config) -> None:
        if self.d_batches not in D_BATCHES:
            raise DgmError(f"--d-batches must be one of {', '.join(D_BATCHES)}, got {self.d_batches!r}")
