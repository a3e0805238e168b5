"""Samples under the truncation trick (``dgm.nn.latent``): PSI z towards the mean, BigGAN's resampling, or StyleGAN's
move toward the mean w."""
from __future__ import annotations

import torch

from ..errors import DgmError
from ..options import Option
from .registry import LABEL, SAVE_TENSOR, Figure, labels, register, write_images


def _mode(model, mode):
    mode = mode or model.truncation_modes[0]
    if mode not in model.truncation_modes:
        raise DgmError(f"--truncation-mode {mode}: this run has {', '.join(model.truncation_modes)}")
    return mode


def _make(model, out, n, seed, truncation=None, truncation_mode=None, label=None, save_tensor=None):
    mode = _mode(model, truncation_mode)
    x = model.sample(n, y=labels(model, label, n), generator=torch.Generator().manual_seed(seed),
                     truncation=truncation, truncation_mode=mode)
    return write_images(model, x, out, save_tensor=save_tensor)


register(Figure("truncation", ("gaussian-latent",), _make, "n samples drawn with the truncation trick",
                options=(Option("truncation", float, None, "PSI (interpolate: PSI z, in [0, 1], 1 = ordinary "
                                "sampling; resample: threshold)", metavar="PSI", required=True),
                         Option("truncation_mode", str, None, "towards the mean latent (interpolate), resampling of "
                                "|z_i| > PSI (resample, BigGAN) or in W toward the tracked mean w (w-mean, stylegan "
                                "runs) (default: the run's first: w-mean for stylegan, resample for biggan, else "
                                "interpolate)", choices=("w-mean", "interpolate", "resample")),
                         LABEL, SAVE_TENSOR),
                file=lambda model, seed, o: f"truncation-{_mode(model, o['truncation_mode'])}-{o['truncation']:g}"
                                            f"-seed{seed}.png",
                selected_by="truncation"))
