"""Reusable layers."""
from .masked import MaskedConv2d, channel_groups, shift_down
from .pixels import LIKELIHOODS, PixelLikelihood, bits_per_dim
from .spectral import apply_spectral_norm
from .vq import VectorQuantizer

__all__ = ["MaskedConv2d", "channel_groups", "shift_down", "apply_spectral_norm", "VectorQuantizer",
           "LIKELIHOODS", "PixelLikelihood", "bits_per_dim"]
