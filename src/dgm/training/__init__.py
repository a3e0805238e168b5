"""One training engine for every family."""
from .config import TrainConfig
from .engine import Trainer, TrainingStopped, seed_everything
from .steps import STEPS, LikelihoodStep, TrainStep
from .gan_step import GANStep
from .vae_step import AAEStep, AVBStep, FactorVAEStep, VAEStep
from .vq_step import VQStep
from .cyclegan_step import CycleGANStep
from .info_step import InfoGANStep
from .ssgan_step import SSGANStep
from .ali_step import ALIStep
from .dvae_step import DVAEStep
from .vae_gan_step import VAEGANStep
from .adapt_step import AdaptStep
from .fair_step import FairStep
from .clip_step import ClipStep

__all__ = ["TrainConfig", "Trainer", "TrainingStopped", "seed_everything", "STEPS", "LikelihoodStep", "TrainStep", "GANStep",
           "VAEStep", "VQStep", "AAEStep", "AVBStep", "FactorVAEStep", "CycleGANStep",
           "InfoGANStep", "SSGANStep", "ALIStep", "DVAEStep", "VAEGANStep", "AdaptStep", "FairStep", "ClipStep"]
