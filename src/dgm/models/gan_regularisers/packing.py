"""PacGAN (Lin et al. 2018): D scores packs of m samples concatenated (``gan_nets.base.pack``); every architecture
builds its D's first layer for m x the input (``config.pack``), and the penalties take the gradient per pack."""
from __future__ import annotations

from dataclasses import dataclass

from ...errors import DgmError
from .base import Regulariser, register


@register("pack", "PacGAN (Lin et al. 2018): D scores packs of m samples, all real or all generated")
@dataclass
class Packing(Regulariser):
    pack: int = 1                     # PacGAN (Lin et al. 2018): D scores packs of m samples; --batch-size = m x packs

    def active(self) -> bool:
        return self.pack != 1  # pack 1 is no packing, bit for bit

    def check(self, config) -> None:
        if self.pack < 1:
            raise DgmError(f"--pack must be >= 1, got {self.pack}")

    def setup(self, step) -> None:
        batch = step.engine.cfg.batch_size
        per_process = batch // step.engine.info.world_size
        if per_process % self.pack:
            raise DgmError(f"--pack {self.pack} groups each process's batch into packs of {self.pack} samples; "
                           f"--batch-size {batch} gives {per_process} per process: use a multiple of "
                           f"{self.pack} (PacGAN: --batch-size = {self.pack} x the number of packs)")
