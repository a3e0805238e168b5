"""The sample grid: n draws of the model (for a model of 2-D points, a scatter over the true density)."""
from __future__ import annotations

import torch

from .registry import LABEL, NAIVE, SAVE_TENSOR, Figure, labels, register, sample_method, write_images


def _make(model, out, n, seed, label=None, naive=False, save_tensor=None):
    how = sample_method(model, naive)
    x = model.sample(n, y=labels(model, label, n), generator=torch.Generator().manual_seed(seed), **how)
    return write_images(model, x, out, save_tensor=save_tensor)


register(Figure("samples", ("sample", "images|points"), _make, "a grid of n samples (2-D points: a scatter over the "
                "true density)", options=(LABEL, NAIVE, SAVE_TENSOR)))
