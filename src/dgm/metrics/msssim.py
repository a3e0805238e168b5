"""Multi-scale SSIM (Wang, Simoncelli & Bovik 2003) and the MS-SSIM diversity score (Odena et al. 2017).

At scale j (j = 1..M, image average-pooled 2x2 between scales), with Gaussian-window local statistics
(valid convolution) and C1 = (k1 L)^2, C2 = (k2 L)^2:

    l_j  = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1)
    cs_j = (2 sigma_xy + C2) / (sigma_x^2 + sigma_y^2 + C2)
    MS-SSIM = [l_M]^{beta_M} * prod_{j=1..M} [cs_j]^{beta_j},   beta = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

as in Wang's msssim.m: mean(cs_j map) for j < M and mean(l_M * cs_M map) at the coarsest scale; means run over
channels and positions (as Google's msssim.py used by Odena et al.). A negative mean is clamped to 0 before the
fractional power (as tf.image.ssim_multiscale does), so values lie in [0, 1].

torchmetrics' multiscale_structural_similarity_index_measure is not used: it ignores ``kernel_size`` for Gaussian
windows (size from sigma), reflect-pads and averages the coarsest-scale SSIM over the padded border while cropping
cs, and ReLU-normalises by default; this file computes the paper's formula with valid windows.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DgmError
from .registry import Metric, register

__all__ = ["MSSSIM_WEIGHTS", "ms_ssim", "msssim_diversity", "msssim_settings"]

MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def msssim_settings(size: int, scales: Optional[int] = None, kernel_size: Optional[int] = None) -> Tuple[int, int]:
    """(scales, kernel_size) for images whose smaller side is ``size``; the coarsest scale must hold the window.

    Rule when not given: kernel_size = min(11, largest odd <= max(size // 2, 3)) (the standard 11 whenever two
    scales can hold it), then scales = the largest s <= 5 with size // 2^(s-1) >= kernel_size. Given ``scales``
    only: kernel_size = min(11, largest odd <= size // 2^(scales-1)). E.g. 8 -> (2, 3), 28 -> (2, 11),
    64 -> (3, 11), >= 176 -> (5, 11).
    """
    def odd_at_most(v: int) -> int:
        return v if v % 2 else v - 1

    if scales is not None and not 1 <= scales <= 5:
        raise DgmError(f"MS-SSIM scales must be between 1 and 5, got {scales}")
    if kernel_size is not None and (kernel_size < 1 or kernel_size % 2 == 0):
        raise DgmError(f"MS-SSIM kernel_size must be a positive odd number, got {kernel_size}")
    if kernel_size is None:
        kernel_size = min(11, odd_at_most(size // 2 ** (scales - 1) if scales else max(size // 2, 3)))
        if kernel_size < 3:
            raise DgmError(f"images of {size} px are too small for MS-SSIM with {scales or 1} scale(s): the coarsest "
                           f"scale needs >= 3 px; use larger images or fewer scales")
    if scales is None:
        scales = max((s for s in range(1, 6) if size // 2 ** (s - 1) >= kernel_size), default=0)
    if scales == 0 or size // 2 ** (scales - 1) < kernel_size:
        raise DgmError(f"images of {size} px are too small for MS-SSIM with {scales or 1} scale(s) and a "
                       f"{kernel_size}x{kernel_size} window; use larger images, fewer scales or a smaller kernel_size")
    return scales, kernel_size


def _window(kernel_size: int, sigma: float, dtype) -> torch.Tensor:
    """Gaussian window exp(-r^2 / (2 sigma^2)) truncated to kernel_size x kernel_size, normalised to sum 1."""
    t = torch.arange(kernel_size, dtype=dtype) - (kernel_size - 1) / 2
    g = torch.exp(-t ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return torch.outer(g, g)


def _l_cs(x: torch.Tensor, y: torch.Tensor, win: torch.Tensor, c1: float, c2: float):
    """Maps of luminance l and contrast-structure cs from local Gaussian-weighted statistics (valid positions)."""
    c = x.shape[1]
    k = win.expand(c, 1, *win.shape)
    mu_x, mu_y, xx, yy, xy = (F.conv2d(v, k, groups=c) for v in (x, y, x * x, y * y, x * y))
    var_x = (xx - mu_x ** 2).clamp_min(0)
    var_y = (yy - mu_y ** 2).clamp_min(0)
    cov = xy - mu_x * mu_y
    lum = (2 * mu_x * mu_y + c1) / (mu_x ** 2 + mu_y ** 2 + c1)
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    return lum, cs


def ms_ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, scales: Optional[int] = None,
            kernel_size: Optional[int] = None, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Per-pair MS-SSIM (N,) of images (N, C, H, W) (Wang et al. 2003); scales/kernel from ``msssim_settings``.

    With fewer than 5 scales the first ``scales`` standard exponents are renormalised to sum to 1 (1 scale = SSIM).
    """
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    if x.dim() != 4 or x.shape != y.shape:
        raise DgmError(f"ms_ssim needs two image batches of the same shape (N, C, H, W), got {tuple(x.shape)} and "
                       f"{tuple(y.shape)}")
    scales, kernel_size = msssim_settings(min(x.shape[-2:]), scales, kernel_size)
    beta = torch.tensor(MSSSIM_WEIGHTS[:scales], dtype=torch.float64)
    if scales < 5:
        beta = beta / beta.sum()
    out_dtype = x.dtype if x.is_floating_point() else torch.float32
    x, y = x.to(torch.float64), y.to(torch.float64)
    win = _window(kernel_size, sigma, torch.float64).to(x.device)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    terms = []
    for j in range(scales):
        if j > 0:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        lum, cs = _l_cs(x, y, win, c1, c2)
        term = cs if j < scales - 1 else lum * cs
        terms.append(term.flatten(1).mean(1).clamp_min(0))
    val = torch.stack(terms, 1).pow(beta.to(x.device)).prod(1)
    return val.to(out_dtype)


def msssim_diversity(images, pairs: int = 1000, seed: int = 0, data_range: float = 1.0,
                     batch_size: int = 256) -> float:
    """Mean MS-SSIM over ``pairs`` random pairs of distinct images (Odena et al. 2017): lower = more diverse."""
    images = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images)
    if images.dim() != 4:
        raise DgmError(f"msssim_diversity needs images of shape (N, C, H, W), got {tuple(images.shape)}")
    n = len(images)
    if n < 2 or pairs < 1:
        raise DgmError(f"msssim_diversity needs at least 2 images and pairs >= 1, got {n} images and pairs={pairs}")
    g = torch.Generator().manual_seed(seed)
    i = torch.randint(0, n, (pairs,), generator=g)
    j = (i + torch.randint(1, n, (pairs,), generator=g)) % n  # uniform over the other n - 1 images
    total = 0.0
    for s in range(0, pairs, batch_size):
        total += ms_ssim(images[i[s:s + batch_size]], images[j[s:s + batch_size]], data_range).double().sum().item()
    return total / pairs



def _msssim(c) -> dict:
    return {"msssim": msssim_diversity(c.fake, seed=c.seed), "msssim_real": msssim_diversity(c.real, seed=c.seed)}


register(Metric("msssim", "images", _msssim, min_images=2,
                label=lambda c: "mean MS-SSIM of random fake pairs (msssim_real: same for real pairs)",
                help="mean MS-SSIM of random pairs of fakes: diversity, lower = more diverse (Odena et al. 2017)"))
