"""Cycle-consistency and identity losses of CycleGAN (Zhu, Park, Isola & Efros, ICCV 2017), pure functions.

With G: X -> Y and F: Y -> X, the cycle loss is L_cyc = E_x ||F(G(x)) - x||_1 + E_y ||G(F(y)) - y||_1 (eq. 2 of the
paper); each direction is one call of ``cycle_loss``. The identity loss (sec. 5.2, after Taigman et al. 2017) asks a
generator to leave an image of its target domain alone: L_idt = E_y ||G(y) - y||_1 + E_x ||F(x) - x||_1.
All losses are means over pixels and the batch (the paper's L1 norm divided by the number of values).
"""
from __future__ import annotations

from torch import Tensor


def cycle_loss(x: Tensor, reconstruction: Tensor) -> Tensor:
    """Zhu et al. 2017, eq. 2 (one direction): mean |F(G(x)) - x| over every value of the batch."""
    return (reconstruction - x).abs().mean()


def identity_loss(y: Tensor, mapped: Tensor) -> Tensor:
    """Zhu et al. 2017, sec. 5.2 (one generator): mean |G(y) - y| for y already in G's target domain."""
    return (mapped - y).abs().mean()


def paired_l1(target: Tensor, output: Tensor) -> Tensor:
    """Isola et al. 2017 (pix2pix): the supervised L1 term mean |G(x) - y| when the pairs (x, y) are known."""
    return (output - target).abs().mean()


__all__ = ["cycle_loss", "identity_loss", "paired_l1"]
