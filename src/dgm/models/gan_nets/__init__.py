"""GAN architectures by name (``dgm train gan --arch NAME``, ``dgm list archs``).

Each module of this package is one architecture that registers ``build(config, energy) -> (G, D)`` in
``GAN_ARCHS`` (see ``base.py``); every module here is imported, so adding an architecture is adding one file.
"""
import importlib
import pkgutil

from .base import GAN_ARCHS, AutoencoderDiscriminator, Discriminator, GANArch, discriminator

for _m in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _m != "base":
        importlib.import_module(f"{__name__}.{_m}")

__all__ = ["GAN_ARCHS", "GANArch", "Discriminator", "AutoencoderDiscriminator", "discriminator"]
