"""Fair representations by an adversary on the code (LAFTR, Madras et al. 2018; Edwards & Storkey 2016; seed 002,
part II "Learning fair representations").

An encoder f maps features x to a code z (``--code-dim``, 8 as in LAFTR); a classifier g predicts the label y from z;
an adversary h guesses the sensitive attribute a from z (and from y for equalized odds); an optional decoder k
reconstructs x from (z, a). The encoder, classifier and decoder minimise

    L_C(g(z), y) + beta L_rec(k(z, a), x) + gamma L_adv(h)

and the adversary maximises L_adv (``dgm.objectives.fairness``: LAFTR's group-normalised l1, or a cross-entropy
adversary). ``--fairness dp`` aims at demographic parity (groups by a), ``eo`` at equalized odds (groups by a and y,
the adversary reads y). The data are tabular rows with a sensitive attribute (``adult``, ``fair-toy``); the step is
``dgm.training.fair_step``; ``dgm eval RUN --metric fairness`` measures accuracy, the parity and odds gaps and how
well a fresh classifier still finds a in the frozen code.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from ..errors import DgmError
from ..nn.blocks import evaluating, mlp
from .base import MODELS, ImageModel, InputError, ModelConfig

FAIRNESS = ("dp", "eo")
ADVERSARIES = ("l1", "ce")


@dataclass
class FairConfig(ModelConfig):
    data_kind: str = "points"
    fairness: str = "dp"              # dp: demographic parity (adversary groups by a) | eo: equalized odds (by a and y)
    fair_weight: float = 1.0          # gamma, the weight of the adversary's objective for the encoder (0: unconstrained)
    adversary: str = "l1"             # l1: LAFTR's group-normalised l1 | ce: cross-entropy (Edwards & Storkey 2016)
    recon_weight: float = 0.0         # beta, the weight of the reconstruction of x from (z, a) (0: no decoder)
    adv_steps: int = 1                # adversary updates (on the batch's detached codes) per encoder update
    code_dim: int = 8                 # size of the code z (LAFTR: 8)
    hidden: int = 64                  # units of each hidden layer (encoder, classifier, adversary, decoder)

    @classmethod
    def tiny(cls) -> Dict[str, Any]:
        return {"hidden": 8, "code_dim": 4}

    def __post_init__(self):
        if self.data_kind != "points":
            raise DgmError("fair models tabular rows with a sensitive attribute (--data adult or fair-toy)")
        if self.fairness not in FAIRNESS:
            raise DgmError(f"--fairness must be one of {', '.join(FAIRNESS)}, got {self.fairness!r}")
        if self.adversary not in ADVERSARIES:
            raise DgmError(f"--adversary must be one of {', '.join(ADVERSARIES)}, got {self.adversary!r}")
        if self.code_dim < 1 or self.hidden < 1 or self.adv_steps < 1:
            raise DgmError(f"--code-dim, --hidden and --adv-steps must be >= 1, got {self.code_dim}, {self.hidden} "
                           f"and {self.adv_steps}")
        if not (self.fair_weight >= 0 and self.recon_weight >= 0):
            raise DgmError(f"--fair-weight and --recon-weight must be >= 0, got {self.fair_weight} and "
                           f"{self.recon_weight}")


@MODELS.register("fair", help="fair representations (LAFTR): encoder, classifier and an adversary on the code that "
                 "must not find the sensitive attribute; --fairness dp|eo, --fair-weight GAMMA")
class FairModel(ImageModel):
    Config = FairConfig
    train_step = "fair"
    data_kinds = ("points",)
    input_scale = "pm1"
    can_sample = False
    capabilities = ("fair",)
    default_metrics = ("fairness",)
    default_figure = "fair-codes"
    summary_format = "val accuracy {accuracy:.3f}, demographic parity gap {dp_gap:.3f}"

    def __init__(self, config: FairConfig):
        super().__init__(config)
        c = config
        d = c.channels
        self.encoder = mlp([d, c.hidden, c.code_dim], nn.LeakyReLU)
        self.classifier = mlp([c.code_dim, c.hidden, 1], nn.LeakyReLU)
        self.adversary = mlp([c.code_dim + (c.fairness == "eo"), c.hidden, 1], nn.LeakyReLU)
        self.decoder = mlp([c.code_dim + 1, c.hidden, d], nn.LeakyReLU) if c.recon_weight > 0 else None

    def check_x(self, x: Tensor) -> None:
        if x.ndim != 2 or x.shape[1] != self.config.channels:
            raise InputError(f"expected rows of shape (N, {self.config.channels}), got {tuple(x.shape)}")
        if x.is_complex() or not bool(torch.isfinite(x).all()):
            raise InputError("expected x to hold finite real numbers")

    def encode(self, x: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        """The code z = f(x) as (z, None), like a deterministic encoder (the representation probes apply)."""
        self.check_x(x)
        return self.encoder(x.to(self.device, next(self.encoder.parameters()).dtype)), None

    def classify(self, x: Tensor) -> Tensor:
        """The classifier's logit of y = 1 for each row (N,)."""
        with evaluating(self):
            return self.classifier(self.encode(x)[0])[:, 0]

    def adversary_logit(self, z: Tensor, y: Tensor) -> Tensor:
        """h's logit of a = 1 from the code (and from y for equalized odds) (N,)."""
        inp = torch.cat([z, y[:, None].to(z.dtype)], 1) if self.config.fairness == "eo" else z
        return self.adversary(inp)[:, 0]

    def terms(self, x: Tensor, a: Tensor) -> Dict[str, Tensor]:
        """The code, the classifier's logits and (with a decoder) the squared reconstruction error per row."""
        z = self.encoder(x)
        out = {"z": z, "logit": self.classifier(z)[:, 0]}
        if self.decoder is not None:
            out["rec"] = (self.decoder(torch.cat([z, a[:, None].to(z.dtype)], 1)) - x).pow(2).sum(1)
        return out

    def sample(self, n: int, y=None, generator=None) -> Tensor:
        raise DgmError("fair learns a representation and a classifier, not a distribution to sample from")


__all__ = ["FairModel", "FairConfig"]
