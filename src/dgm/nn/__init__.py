"""Reusable layers."""
from .attention import SelfAttention
from .equalized import EqualizedConv2d, EqualizedLinear, PixelNorm, pixel_norm
from .masked import MaskedConv2d, channel_groups, shift_down
from .pixels import LIKELIHOODS, PixelLikelihood, bits_per_dim
from .resample import RESAMPLE_MODES, Downsample, Upsample, blur, blur_kernel, downsample, fade_in, upsample
from .spectral import apply_spectral_norm
from .style import (AdaIN, MappingNetwork, ModulatedConv2d, NoiseInput, StyleMod, adain, mix_styles,
                    truncate)
from .vq import VectorQuantizer

__all__ = ["MaskedConv2d", "channel_groups", "shift_down", "apply_spectral_norm", "VectorQuantizer",
           "LIKELIHOODS", "PixelLikelihood", "bits_per_dim"]
# the GAN lineage: SAGAN (attention), ProGAN (equalized, resample), StyleGAN (style)
__all__ += ["SelfAttention", "EqualizedLinear", "EqualizedConv2d", "PixelNorm", "pixel_norm", "RESAMPLE_MODES",
            "Upsample", "Downsample", "upsample", "downsample", "blur", "blur_kernel", "fade_in", "AdaIN", "StyleMod",
            "adain", "NoiseInput", "ModulatedConv2d", "MappingNetwork", "truncate", "mix_styles"]
