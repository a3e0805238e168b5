"""Reusable layers."""
from .masked import MaskedConv2d, channel_groups, shift_down

__all__ = ["MaskedConv2d", "channel_groups", "shift_down"]
