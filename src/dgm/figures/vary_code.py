"""InfoGAN's code variation (Chen et al. 2016, fig. 2): ``dgm.sampling.codes.code_variation_grid``."""
from __future__ import annotations

import torch

from ..options import Option
from .registry import SAVE_TENSOR, Figure, register, write_images


def _make(model, out, n, seed, vary_code=0, save_tensor=None):
    from ..sampling.codes import STEPS, code_variation_grid

    x = code_variation_grid(model, vary_code, generator=torch.Generator().manual_seed(seed))
    return write_images(model, x, out, nrow=STEPS, save_tensor=save_tensor)


register(Figure("vary-code", ("info_codes",), _make, "InfoGAN runs: rows = the categorical code's values, 10 columns "
                "= one continuous code swept from -2 to 2 (one z; Chen et al. 2016, fig. 2)",
                options=(Option("vary_code", int, 0, "the continuous code to sweep", metavar="I"), SAVE_TENSOR),
                n=None, file=lambda model, seed, o: f"vary-code-{o['vary_code']}-seed{seed}.png",
                selected_by="vary_code"))
