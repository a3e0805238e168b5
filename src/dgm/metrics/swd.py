"""Sliced Wasserstein distance on Laplacian-pyramid patches (Karras et al. 2018, ProGAN, appendix D).

- Pyramid: G_0 = x, G_{l+1} = down(G_l) = (k * G_l)[::2, ::2] with the 5x5 binomial filter
  k = [1,4,6,4,1]^T [1,4,6,4,1] / 256 (reflect padding); up(g) inserts zeros and filters with 4k.
  Laplacian L_l = G_l - up(G_{l+1}), the last level is the coarsest Gaussian level, so
  x = L_0 + up(L_1 + up(L_2 + ...)) exactly (odd sizes: down keeps ceil(H/2), up fills the finer grid).
- SWD(A, B) = E_theta W1(<A, theta>, <B, theta>) over random unit directions theta; in 1-D, for equal
  sample sizes, W1 = mean_i |a_(i) - b_(i)| over the sorted projections.
"""
from __future__ import annotations

from typing import Dict, List

import torch
import torch.nn.functional as F

from ..errors import DgmError
from .registry import Metric, register

__all__ = ["gaussian_pyramid", "laplacian_pyramid", "reconstruct", "random_directions", "sliced_wasserstein",
           "swd"]

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])


def _blur(x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """Per-channel 5x5 binomial filter (times ``gain``), same size output, reflect padding (replicate if < 3 px)."""
    c = x.shape[1]
    k1 = _BINOMIAL.to(x.dtype)
    k = (torch.outer(k1, k1) / 256.0 * gain).to(x.device).expand(c, 1, 5, 5)
    mode = "reflect" if min(x.shape[-2:]) >= 3 else "replicate"
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode=mode), k, groups=c)


def _down(x: torch.Tensor) -> torch.Tensor:
    """Filter, then keep every other pixel: (H, W) -> (ceil(H/2), ceil(W/2))."""
    return _blur(x)[..., ::2, ::2]


def _up(g: torch.Tensor, size) -> torch.Tensor:
    """Zero insertion into the finer grid ``size`` (g sits on its even pixels), then the filter times 4."""
    out = g.new_zeros(*g.shape[:-2], *size)
    out[..., ::2, ::2] = g
    return _blur(out, gain=4.0)


def _check_images(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.dim() != 4:
        raise DgmError(f"{name} must be a float tensor of shape (N, C, H, W), got shape {tuple(x.shape)}")
    return x if x.is_floating_point() else x.float()


def gaussian_pyramid(x: torch.Tensor, levels: int) -> List[torch.Tensor]:
    """Gaussian pyramid [G_0 = x, G_1, ..., G_{levels-1}], each level half the size (rounded up) of the one above."""
    x = _check_images(x)
    if levels < 1:
        raise DgmError(f"levels must be >= 1, got {levels}")
    pyr = [x]
    for _ in range(levels - 1):
        pyr.append(_down(pyr[-1]))
    return pyr


def laplacian_pyramid(x: torch.Tensor, levels: int) -> List[torch.Tensor]:
    """Laplacian pyramid (Burt & Adelson 1983): L_l = G_l - up(G_{l+1}), last level = coarsest Gaussian level."""
    g = gaussian_pyramid(x, levels)
    return [g[i] - _up(g[i + 1], g[i].shape[-2:]) for i in range(levels - 1)] + [g[-1]]


def reconstruct(pyramid: List[torch.Tensor]) -> torch.Tensor:
    """Invert ``laplacian_pyramid``: G_l = L_l + up(G_{l+1}) from the coarsest level up; returns G_0 = x."""
    g = pyramid[-1]
    for lap in reversed(pyramid[:-1]):
        g = lap + _up(g, lap.shape[-2:])
    return g


def random_directions(d: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` directions uniform on the unit sphere in R^d, as the columns of a (d, n) float64 matrix."""
    dirs = torch.randn(d, n, generator=generator, dtype=torch.float64)
    return dirs / dirs.norm(dim=0, keepdim=True)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, projections: int = 512, repeats: int = 4,
                       seed: int = 0) -> float:
    """Sliced W1 between equal-size point sets a, b (M, D): mean over directions of mean_i |sort(a.t)_i - sort(b.t)_i|.

    Repeat r uses ``random_directions(D, projections, g)``, the r-th draw from
    ``g = torch.Generator().manual_seed(seed)``; the result is the mean over repeats (equivalently over all
    ``repeats * projections`` directions).
    """
    a = torch.as_tensor(a).to(torch.float64)
    b = torch.as_tensor(b).to(torch.float64)
    if a.dim() != 2 or a.shape != b.shape:
        raise DgmError(f"sliced_wasserstein needs two (M, D) sets of the same shape, got {tuple(a.shape)} "
                       f"and {tuple(b.shape)}")
    if a.shape[0] == 0 or projections < 1 or repeats < 1:
        raise DgmError("sliced_wasserstein needs M >= 1 points, projections >= 1 and repeats >= 1")
    g = torch.Generator().manual_seed(seed)
    chunk = max(1, (1 << 22) // a.shape[0])  # directions per matmul: bounds memory to ~32 MB per projected set
    results = []
    for _ in range(repeats):
        dirs = random_directions(a.shape[1], projections, g)
        total = 0.0
        for s in range(0, projections, chunk):
            d = dirs[:, s:s + chunk]
            pa, _ = torch.sort(a @ d, dim=0)
            pb, _ = torch.sort(b @ d, dim=0)
            total += (pa - pb).abs().sum().item()
        results.append(total / (a.shape[0] * projections))
    return float(sum(results) / len(results))


def _patches(level: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, p: int) -> torch.Tensor:
    """Patches level[n, :, y:y+p, x:x+p] at top-left corners ys, xs (N, P) -> (N * P, C, p, p)."""
    n, c = level.shape[:2]
    off = torch.arange(p)
    img = torch.arange(n).view(n, 1, 1, 1, 1)
    ch = torch.arange(c).view(1, 1, c, 1, 1)
    rows = (ys.view(n, -1, 1, 1, 1) + off.view(1, 1, 1, p, 1))
    cols = (xs.view(n, -1, 1, 1, 1) + off.view(1, 1, 1, 1, p))
    return level[img, ch, rows, cols].reshape(-1, c, p, p)


def _standardize(desc: torch.Tensor, stats_from: torch.Tensor) -> torch.Tensor:
    """Per-channel (x - mean) / std, with mean and std over patches and pixels of ``stats_from`` (N, C, p, p)."""
    mean = stats_from.mean(dim=(0, 2, 3), keepdim=True)
    std = stats_from.std(dim=(0, 2, 3), unbiased=False, keepdim=True)
    std = torch.where(std > 0, std, torch.ones_like(std))  # a constant channel stays constant (0), not NaN
    return (desc - mean) / std


def swd(real: torch.Tensor, fake: torch.Tensor, patch_size: int = 7, patches_per_image: int = 128,
        min_resolution: int = 16, projections: int = 512, repeats: int = 4, seed: int = 0,
        normalize: str = "per_set") -> Dict:
    """SWD x 1e3 between 7x7 Laplacian-pyramid patches of real and fake images per level (Karras et al. 2018, app. D).

    Levels run from full resolution down by factors of 2 while the smaller side stays >= max(min_resolution,
    patch_size), always keeping the full-resolution level; patch_size is clipped to the image size. Both sets use
    n = min(N_real, N_fake) images (a seeded random subset of the larger one) and, per level, the same seeded random
    patch positions (so swd(x, x) = 0 exactly). Each channel of the descriptors is standardised per level by each
    set's own mean and std (``normalize="per_set"``, default: ProGAN's protocol, so numbers compare with the paper's;
    blind to a per-channel brightness/contrast shift of the fakes) or by the statistics of the union of real and fake
    descriptors (``"union"``: such shifts are measured too).
    Returns {"swd": mean over levels, "swd_levels": {"<resolution>": value, finest first}}.
    """
    real, fake = _check_images(real, "real"), _check_images(fake, "fake")
    if real.shape[1:] != fake.shape[1:]:
        raise DgmError(f"real and fake images must have the same (C, H, W), got {tuple(real.shape[1:])} and "
                       f"{tuple(fake.shape[1:])}")
    if normalize not in ("union", "per_set"):
        raise DgmError(f"normalize must be 'union' or 'per_set', got {normalize!r}")
    if patch_size < 1 or patches_per_image < 1:
        raise DgmError("patch_size and patches_per_image must be >= 1")
    g = torch.Generator().manual_seed(seed)
    n = min(len(real), len(fake))
    if n == 0:
        raise DgmError("swd needs at least one real and one fake image")
    real = real[torch.randperm(len(real), generator=g)[:n]] if len(real) > n else real
    fake = fake[torch.randperm(len(fake), generator=g)[:n]] if len(fake) > n else fake
    h, w = real.shape[-2:]
    p = min(patch_size, h, w)
    floor, levels, side = max(min_resolution, p), 1, min(h, w)
    while (side + 1) // 2 >= floor:
        side, levels = (side + 1) // 2, levels + 1
    x = torch.cat([real, fake]).to(torch.float64)
    out: Dict[str, float] = {}
    for level in laplacian_pyramid(x, levels):
        lh, lw = level.shape[-2:]
        ys = torch.randint(0, lh - p + 1, (n, patches_per_image), generator=g)
        xs = torch.randint(0, lw - p + 1, (n, patches_per_image), generator=g)
        dr, df = _patches(level[:n], ys, xs, p), _patches(level[n:], ys, xs, p)
        if normalize == "union":
            both = torch.cat([dr, df])
            dr, df = _standardize(dr, both), _standardize(df, both)
        else:
            dr, df = _standardize(dr, dr), _standardize(df, df)
        key = str(lh) if lh == lw else f"{lh}x{lw}"
        out[key] = 1e3 * sliced_wasserstein(dr.flatten(1), df.flatten(1), projections, repeats, seed)
    return {"swd": float(sum(out.values()) / len(out)), "swd_levels": out}


def _swd(c) -> dict:
    k = min(c.m, c.swd_images)
    return swd(c.real[c.perm[:k]], c.fake[:k], seed=c.seed)


register(Metric("swd", "images", _swd, same_shape=True,
                label=lambda c: f"SWD x1e3 (ProGAN protocol: Laplacian-pyramid 7x7 patches, 128 per image, "
                                f"{min(c.m, c.swd_images)} vs {min(c.m, c.swd_images)} images)",
                help="sliced Wasserstein distance of Laplacian-pyramid patches, x1e3 (Karras et al. 2018)"))
