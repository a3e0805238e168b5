"""Orthogonal regularisation of G (Brock et al. 2019, BigGAN): beta sum_W ||W^T W - diag(W^T W)||_F^2 over G's
weights (``objectives.orthogonal_regularization_of``), added to G's loss in the GAN step and logged as ortho_reg."""
from __future__ import annotations

from dataclasses import dataclass

from ...errors import DgmError
from ...objectives.orthogonal import orthogonal_regularization_of
from .base import Regulariser, register


@register("ortho", "orthogonal regularisation of G's weights (Brock et al. 2019)")
@dataclass
class Orthogonal(Regulariser):
    ortho_reg: float = 0.0            # orthogonal reg. beta of G (0: off; biggan: 1e-4 unless given)

    def resolve(self, config, given) -> None:
        if "ortho_reg" not in given:  # the architecture's paper value (BigGAN: 1e-4)
            self.ortho_reg = config.arch_spec.defaults.get("ortho_reg", 0.0)

    def check(self, config) -> None:
        if not self.ortho_reg >= 0:
            raise DgmError(f"--ortho-reg must be >= 0, got {self.ortho_reg}")

    def g_loss_on_weights(self, step):
        ortho = orthogonal_regularization_of(step.model.generator, self.ortho_reg)
        return ortho, {"ortho_reg": float(ortho.detach())}
