"""Latent-variable models: the sample grid plus reconstructions of test images and, for a 2-D latent, the decoded
manifold and the encoded test set by label (``dgm.viz.latent``; Kingma & Welling 2014, fig. 4)."""
from __future__ import annotations

from pathlib import Path

from ..options import Option
from .registry import LABEL, SAVE_TENSOR, Figure, register
from .samples import _make as _samples


def _make(model, out, n, seed, plots=True, label=None, save_tensor=None):
    from ..runs import load_data
    from ..viz.latent import save_latent_plots

    paths = _samples(model, out, n, seed, label=label, save_tensor=save_tensor)
    xt, yt = load_data(model.run_config["data"], "test").tensors()[:2]
    return paths + list(save_latent_plots(model, xt, yt, Path(paths[0]).parent).values())


register(Figure("plots", ("images", "latent", "sample"), _make, "latent-variable models: the sample grid, reconstructions of "
                "test images and, for a 2-D latent, the decoded manifold and the encoded test set by label",
                options=(Option("plots", bool, False, "the latent-variable figures"), LABEL, SAVE_TENSOR),
                selected_by="plots"))
