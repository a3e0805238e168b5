"""Figures of `dgm sample` by name (``FIGURES``, `dgm list figures`: each a registered `Figure`).

A figure registers itself in its own file; every module of this package is imported here, so adding a figure is
adding one file (docs/design.md).
"""
import importlib as _importlib
import pkgutil as _pkgutil

from .registry import FIGURES, Figure, can_make, choose, draw, figure_options, register, resolve

for _m in _pkgutil.iter_modules(__path__):
    _importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["FIGURES", "Figure", "register", "figure_options", "can_make", "choose", "resolve", "draw"]
