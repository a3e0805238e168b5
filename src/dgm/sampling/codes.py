"""InfoGAN's code-variation figure (Chen et al. 2016, fig. 2): rows = the categorical code's values, columns = one
continuous code swept over [-SPAN, SPAN] (the paper goes past the training range [-1, 1]), one z for the whole
figure and the other continuous codes at 0."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ..errors import DgmError

#: columns of the figure and the half-range of the sweep (Chen et al. 2016 sweep c'_j from -2 to 2)
STEPS, SPAN = 10, 2.0


def code_variation_grid(model, index: int, generator: Optional[torch.Generator] = None, steps: int = STEPS,
                        span: float = SPAN) -> Tensor:
    """(rows * steps, C, H, W) images, row-major: row r has categorical code r (one row when K = 0), column j has
    continuous code ``index`` = -span + 2 span j / (steps - 1); z is one draw from ``generator``."""
    if "info_codes" not in model.capabilities:
        raise DgmError(f"--vary-code needs an InfoGAN run; {type(model).__name__} has no codes")
    c = model.config
    if not 0 <= index < c.cont_codes:
        have = f"0..{c.cont_codes - 1}" if c.cont_codes else "none (trained with --cont-codes 0)"
        raise DgmError(f"--vary-code {index}: the index of a continuous code; this run has {have}")
    rows = max(c.cat_codes, 1)
    n = rows * steps
    z = model.sample_latent(1, generator).expand(n, -1)
    cat = torch.arange(rows).repeat_interleave(steps) if c.cat_codes else None
    cont = torch.zeros(n, c.cont_codes)
    cont[:, index] = torch.linspace(-span, span, steps).repeat(rows)
    return model.sample(n, z=z, cat=cat, cont=cont, generator=generator)


__all__ = ["code_variation_grid", "STEPS", "SPAN"]
