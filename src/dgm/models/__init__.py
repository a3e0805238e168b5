"""Models by name: ``MODELS.get(name)`` or ``build_model(name, config_dict)``.

A model registers itself in its own file (``@MODELS.register``); every module of this package is imported below,
so adding a model is adding one file.
"""
import importlib as _importlib
import pkgutil as _pkgutil

from .base import DATA_FIELDS, MODELS, ImageModel, InputError, ModelConfig, build_model
from .autoregressive import AutoregressiveModel, bits_per_dim
from .pixelcnn import PixelCNN, PixelCNNConfig
from .gated_pixelcnn import GatedPixelCNN, GatedPixelCNNConfig
from .independent import IndependentPixels
from .gan import GAN, GANConfig
from .vae import AAE, AVB, VAE, AAEConfig, AVBConfig, BetaVAE, BetaVAEConfig, FactorVAE, FactorVAEConfig, VAEConfig
from .vqvae import VQVAE, VQPrior, VQPriorConfig, VQVAEConfig

for _m in _pkgutil.iter_modules(__path__):  # the rest (new model files) register on import
    _importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["MODELS", "DATA_FIELDS", "ImageModel", "InputError", "ModelConfig", "build_model", "AutoregressiveModel",
           "bits_per_dim", "PixelCNN", "PixelCNNConfig", "GatedPixelCNN", "GatedPixelCNNConfig", "IndependentPixels", "GAN", "GANConfig",
           "VAE", "VAEConfig", "BetaVAE", "BetaVAEConfig", "AAE", "AAEConfig", "AVB", "AVBConfig", "FactorVAE",
           "FactorVAEConfig",
           "VQVAE", "VQVAEConfig", "VQPrior", "VQPriorConfig"]
