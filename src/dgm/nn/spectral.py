"""Spectral normalisation (Miyato et al. 2018) of every linear / convolutional weight of a module.

Uses PyTorch's own parametrization (one power-iteration step per training forward, u and v kept as buffers),
so W_SN = W / sigma(W) and a network of 1-Lipschitz activations is at most 1-Lipschitz.
"""
from __future__ import annotations

import torch.nn as nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

_LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


def apply_spectral_norm(module: nn.Module, n_power_iterations: int = 1) -> nn.Module:
    """Parametrize the ``weight`` of every Linear / Conv layer inside ``module`` (in place); returns ``module``."""
    for m in list(module.modules()):
        if isinstance(m, _LAYERS):
            _spectral_norm(m, n_power_iterations=n_power_iterations)
    return module
