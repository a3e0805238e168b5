"""Models by name: ``MODELS.get(name)`` or ``build_model(name, config_dict)``."""
from .base import DATA_FIELDS, MODELS, ImageModel, InputError, ModelConfig, build_model
from .autoregressive import AutoregressiveModel, bits_per_dim
from .pixelcnn import PixelCNN, PixelCNNConfig
from .gated_pixelcnn import GatedPixelCNN, GatedPixelCNNConfig
from .independent import IndependentPixels
from .gan import GAN, GANConfig
from .vae import AAE, AVB, VAE, AAEConfig, AVBConfig, BetaVAE, BetaVAEConfig, VAEConfig
from .vqvae import VQVAE, VQPrior, VQPriorConfig, VQVAEConfig

__all__ = ["MODELS", "DATA_FIELDS", "ImageModel", "InputError", "ModelConfig", "build_model", "AutoregressiveModel",
           "bits_per_dim", "PixelCNN", "PixelCNNConfig", "GatedPixelCNN", "GatedPixelCNNConfig", "IndependentPixels", "GAN", "GANConfig",
           "VAE", "VAEConfig", "BetaVAE", "BetaVAEConfig", "AAE", "AAEConfig", "AVB", "AVBConfig",
           "VQVAE", "VQVAEConfig", "VQPrior", "VQPriorConfig"]
