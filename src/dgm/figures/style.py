"""StyleGAN's two figures (Karras et al. 2019): the style-mixing grid and stochastic variation
(``dgm.sampling.style``)."""
from __future__ import annotations

import torch

from ..options import Option
from .registry import SAVE_TENSOR, Figure, register, write_images


def _mix(model, out, n, seed, style_mix=True, save_tensor=None):
    from ..sampling.style import style_mixing_grid

    x, nrow = style_mixing_grid(model, generator=torch.Generator().manual_seed(seed))
    return write_images(model, x, out, nrow=nrow, save_tensor=save_tensor)


def _sweep(model, out, n, seed, noise_sweep=True, save_tensor=None):
    from ..sampling.style import noise_sweep

    x, nrow = noise_sweep(model, generator=torch.Generator().manual_seed(seed))
    return write_images(model, x, out, nrow=nrow, save_tensor=save_tensor)


register(Figure("style-mix", ("styles",), _mix, "stylegan runs: B sources in the top row; rows of A sources taking "
                "B's coarse, middle or fine styles (Karras et al. 2019, fig. 3)",
                options=(Option("style_mix", bool, False, "the style-mixing figure"), SAVE_TENSOR), n=None,
                file=lambda model, seed, o: f"style-mix-seed{seed}.png", selected_by="style_mix"))
register(Figure("noise-sweep", ("styles",), _sweep, "stylegan runs: stochastic variation, rows of one w under several "
                "noise draws, then the per-pixel std over 64 draws (Karras et al. 2019, fig. 4)",
                options=(Option("noise_sweep", bool, False, "the stochastic-variation figure"), SAVE_TENSOR), n=None,
                file=lambda model, seed, o: f"noise-sweep-seed{seed}.png", selected_by="noise_sweep"))
