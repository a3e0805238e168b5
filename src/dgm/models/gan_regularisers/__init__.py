"""GAN regularisers by name (``GANConfig.regularisers``): R1, packing, minibatch features, EMA, conditioning,
unrolling, instance noise, GDPP, orthogonal regularisation, and the practice options of issue 38 (experience replay,
label flipping, noise in G's layers, D's joint batches).

Each module of this package is one regulariser registered with ``@register`` (see ``base.py``); every module here is
imported, in the order of the file names, so adding a regulariser is adding one file (plus its test and a line of
docs/gan.md).
"""
import importlib
import pkgutil

from .base import REGULARISERS, Regulariser, flag, register

for _m in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _m != "base":
        importlib.import_module(f"{__name__}.{_m}")

__all__ = ["REGULARISERS", "Regulariser", "register", "flag"]
