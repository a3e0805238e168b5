"""Locally masked convolution (Jain, Abbeel & Pathak 2020, Locally Masked Convolution for Autoregressive Models).

A k x k convolution whose mask changes from one output location to the next so that it follows a generation order:
at output location p, the kernel tap that reads location q is open iff q comes before p in the order,
rank(q) < rank(p) ("first" layer, the centre excluded, like mask A), or rank(q) <= rank(p) (every later layer: the
only location with equal rank is p itself, whose features already depend only on earlier pixels). By induction the
output at p depends only on pixels strictly earlier than p, for any order and any kernel size or dilation.

The paper's code unfolds k*k patches (k*k*Cin*H*W numbers per example, kept for the backward pass). Here the sum
over taps is taken the other way round, which is exact and needs no unfolded tensor:

    out(p) = bias + sum_t M_t(p) * (W_t x)(p + offset_t)

W_t x is a 1x1 convolution (Cout*H*W numbers, freed after the tap), shifting it is slicing a zero-padded copy, and
M_t(p) is the open/closed mask of tap t at location p. Autograd keeps x once and the masks, not k*k copies. The masks
depend only on the order (never on the batch): ``tap_masks`` builds them once per order and says which taps are
closed everywhere (skipped) and which are open wherever they read inside the image; those go together into one
ordinary convolution with a fixed mask, and only the remaining taps take the 1x1-shift-multiply path. For one
S-curve order that is one 3x3 convolution plus the left and right taps. Masks are functional: the weight is never
edited.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class TapMasks:
    """The masks of one kernel geometry for one order (``mask`` (k*k, H, W)) or one order per example
    (``mask`` (B, k*k, H, W)); ``skip`` taps are closed everywhere, ``full`` taps open wherever they read inside the
    image (they need no multiply, outside it the padded input is zero: they form one fixed-mask convolution)."""

    mask: Tensor
    skip: Tuple[bool, ...]
    full: Tuple[bool, ...]
    kernel: int
    dilation: int


def _offsets(kernel: int, dilation: int):
    h = kernel // 2
    return [((a - h) * dilation, (b - h) * dilation) for a in range(kernel) for b in range(kernel)]


def _inside(h: int, w: int, kernel: int, dilation: int, device) -> Tensor:
    """(k*k, H, W): True where tap t at location p reads a location inside the image."""
    r = torch.arange(h, device=device)[:, None]
    c = torch.arange(w, device=device)[None, :]
    return torch.stack([((r + di >= 0) & (r + di < h) & (c + dj >= 0) & (c + dj < w))
                        for di, dj in _offsets(kernel, dilation)])


def _summarise(mask: Tensor, kernel: int, dilation: int) -> TapMasks:
    h, w = mask.shape[-2:]
    m = mask.bool().reshape(-1, kernel * kernel, h, w)
    inside = _inside(h, w, kernel, dilation, mask.device)
    skip = tuple(bool(v) for v in ~m.any(dim=(0, 2, 3)))
    full = tuple(bool(v) for v in (m | ~inside).all(dim=3).all(dim=2).all(dim=0))
    return TapMasks(mask, skip, full, kernel, dilation)


def tap_masks(order: Tensor, height: int, width: int, kernel: int, dilation: int = 1,
              centre: bool = True) -> TapMasks:
    """The masks of a locally masked k x k convolution (dilation d) for a generation order.

    ``order``: (H*W,) a permutation of the flat positions (row * W + col; entry i is the position generated i-th),
    or (N, H*W) one order per example. Tap t at location p is open iff it reads q inside the image with
    rank(q) < rank(p), or q = p when ``centre`` (every layer but the first).
    """
    order = torch.as_tensor(order).long()
    flat = order.reshape(-1, height * width)
    n, hw = flat.shape
    rank = torch.empty_like(flat).scatter_(1, flat, torch.arange(hw, device=flat.device).expand(n, hw))
    rank = rank.view(n, 1, height, width)
    p = kernel // 2 * dilation
    padded = F.pad(rank, (p, p, p, p), value=hw)       # outside the image: later than everything, always closed
    masks = []
    for di, dj in _offsets(kernel, dilation):
        q = padded[:, :, p + di:p + di + height, p + dj:p + dj + width]
        masks.append((q <= rank) if (di, dj) == (0, 0) and centre else (q < rank))
    mask = torch.cat(masks, dim=1).float()
    return _summarise(mask if order.dim() > 1 else mask[0], kernel, dilation)


class LocallyMaskedConv2d(nn.Conv2d):
    """A k x k convolution (stride 1, 'same' zero padding, optional dilation) masked per location by ``TapMasks``.

    ``forward(x, masks)``: x (B, Cin, H, W); masks from ``tap_masks`` for this kernel size and dilation, one order
    for the batch or one per example. Parameters are those of ``nn.Conv2d`` (``weight``, ``bias``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1, bias: bool = True):
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation, bias=bias)

    def forward(self, x: Tensor, masks: TapMasks) -> Tensor:  # type: ignore[override]
        k, d = self.kernel_size[0], self.dilation[0]
        if (masks.kernel, masks.dilation) != (k, d):
            raise ValueError(f"masks are for a {masks.kernel}x{masks.kernel} kernel with dilation {masks.dilation}, "
                             f"this layer is {k}x{k} with dilation {d}")
        b, _, h, w = x.shape
        p = k // 2 * d
        mask = masks.mask.to(x.dtype)
        mask = mask.unsqueeze(2) if mask.dim() == 4 else mask.unsqueeze(1)   # (B, k*k, 1, H, W) or (k*k, 1, H, W)
        dense = [t for t in range(k * k) if masks.full[t] and not masks.skip[t]]
        if dense:  # the taps open everywhere inside the image: one ordinary convolution with a fixed mask
            fixed = torch.zeros(k * k, dtype=x.dtype, device=x.device)
            fixed[dense] = 1
            out = F.conv2d(x, self.weight * fixed.view(1, 1, k, k), self.bias, padding=p, dilation=d)
        else:
            out = x.new_zeros(b, self.out_channels, h, w) if self.bias is None else \
                self.bias.view(1, -1, 1, 1).expand(b, -1, h, w)
        for t, (di, dj) in enumerate(_offsets(k, d)):
            if masks.skip[t] or masks.full[t]:
                continue
            a, c = divmod(t, k)
            y = F.conv2d(x, self.weight[:, :, a:a + 1, c:c + 1])       # W_t x at every input location
            if (di, dj) != (0, 0):
                y = F.pad(y, (p, p, p, p))[:, :, p + di:p + di + h, p + dj:p + dj + w]   # read at p + offset_t
            out = torch.addcmul(out, mask[:, t] if mask.dim() == 5 else mask[t], y)
        return out


def unfold_reference(conv: LocallyMaskedConv2d, x: Tensor, masks: TapMasks) -> Tensor:
    """The paper's formulation, for tests and the memory benchmark: unfold the k*k patches of every location
    (B, Cin*k*k, H*W), zero the closed taps, and multiply by the flattened weight."""
    k, d = conv.kernel_size[0], conv.dilation[0]
    b, cin, h, w = x.shape
    patches = F.unfold(x, k, dilation=d, padding=k // 2 * d).view(b, cin, k * k, h * w)
    mask = masks.mask.to(x.dtype).reshape(-1, 1, k * k, h * w)
    out = conv.weight.reshape(conv.out_channels, -1) @ (patches * mask).view(b, cin * k * k, h * w)
    out = out.view(b, -1, h, w)
    return out if conv.bias is None else out + conv.bias.view(1, -1, 1, 1)


__all__ = ["LocallyMaskedConv2d", "TapMasks", "tap_masks", "unfold_reference"]
