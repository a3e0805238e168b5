"""Pictures: sample grids (and later density plots, manifolds, curves)."""
from .grid import make_grid, save_grid

__all__ = ["make_grid", "save_grid"]
