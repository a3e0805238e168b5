"""Class-conditional GANs (issue 16): both networks read the label y. --cond says how D does (``gan_nets.base``:
CGAN's concatenated label maps, the projection discriminator, ACGAN's class head); each architecture's G follows its
paper. The GAN step draws the fakes' labels and adds ACGAN's class loss (``objectives.conditional``)."""
from __future__ import annotations

from dataclasses import dataclass

from ...errors import DgmError
from ..gan_nets.base import CONDS
from .base import Regulariser, register


@register("conditional", "class-conditional G and D on the dataset's labels: concat (CGAN), projection, ac (ACGAN)")
@dataclass
class Conditioning(Regulariser):
    conditional: bool = False         # class-conditional on the dataset's labels (needs a labelled dataset)
    cond: str = "projection"          # --conditional: concat (CGAN) | projection (Miyato & Koyama 2018) | ac (ACGAN)
    ac_weight: float = 1.0            # --cond ac: weight of the class loss (Odena et al. 2017)

    @classmethod
    def refuse(cls, given, defaults) -> None:
        super().refuse(given, defaults)
        if "ac_weight" in given and given.get("cond", cls.cond) != "ac":
            raise DgmError("--ac-weight is the weight of ACGAN's class loss: give --cond ac, or drop it")

    def check(self, config) -> None:
        """--conditional needs labels, a scoring D for projection / ac, and one sample per D input (no packing)."""
        if self.cond not in CONDS:
            raise DgmError(f"--cond must be one of {', '.join(CONDS)}, got {self.cond!r}")
        if not self.conditional:
            return
        if config.num_classes < 1:
            raise DgmError("--conditional needs a labelled dataset (e.g. digits, mnist, fashion-mnist, an image folder "
                           "with class subfolders); this one has no classes: drop --conditional")
        if config.objective_spec.kind == "energy" and self.cond != "concat":
            raise DgmError(f"--cond {self.cond} needs a scoring discriminator; {config.objective} has an auto-encoder "
                           "D: use --cond concat or another objective")
        if config.pack > 1:
            raise DgmError("--pack scores packs of samples that may have different labels; it does not combine with "
                           "--conditional: drop one")
        if self.cond == "ac" and config.unroll_steps:
            raise DgmError("--unroll-steps does not unroll ACGAN's class loss; use --cond concat or projection, or "
                           "drop --unroll-steps")
        if not self.ac_weight >= 0:
            raise DgmError(f"--ac-weight must be >= 0, got {self.ac_weight}")
