"""Rows of codes between random pairs (lerp, or White 2016's slerp): ``dgm.sampling.latent.interpolation_grid``."""
from __future__ import annotations

import torch

from ..options import Option, at_least
from .registry import LABEL, SAVE_TENSOR, Figure, labels, register, write_images

STEPS = Option("steps", int, 8, "images per row, ends included", check=at_least(2, "--steps"))


def _make(model, out, n, seed, interpolate="slerp", steps=8, label=None, save_tensor=None):
    from ..sampling.latent import interpolation_grid

    y = labels(model, label, n)
    x = interpolation_grid(model, n, steps, interpolate, generator=torch.Generator().manual_seed(seed), y=y)
    return write_images(model, x, out, nrow=steps, save_tensor=save_tensor)


register(Figure("interpolate", ("images", "gaussian-latent"), _make, "n rows of --steps images along a line (lerp) "
                "or a great-circle arc (slerp, White 2016) between two random codes",
                options=(Option("interpolate", str, "slerp", "the path between the codes", choices=("lerp", "slerp")),
                         STEPS, LABEL, SAVE_TENSOR),
                n=8, file=lambda model, seed, o: f"interpolate-{o['interpolate']}-seed{seed}.png",
                selected_by="interpolate"))
