"""Tools that move through a generator's latent space (GANs, VAEs): interpolation, truncation, vector arithmetic.

* ``lerp``: straight lines, z(t) = (1 - t) z0 + t z1.
* ``slerp``: spherical interpolation (Shoemake 1985; for generative models White 2016, "Sampling generative
  networks"): z(t) = sin((1 - t) theta) / sin(theta) z0 + sin(t theta) / sin(theta) z1 with cos(theta) =
  z0.z1 / (|z0| |z1|). In high dimension the draws of N(0, I) live near a sphere of radius sqrt(d), which a straight
  line between two of them cuts through (its midpoint has norm ~ sqrt(d / 2)); the great-circle arc keeps the norm
  of equal-norm endpoints. For (anti)parallel endpoints (sin(theta) ~ 0) the formula is 0/0: ``slerp`` returns lerp,
  which is its limit for parallel vectors; for antiparallel ones no arc is singled out and lerp is a choice.
* truncation: ``dgm.nn.latent`` (the models call it from ``sample(n, truncation=PSI)``).
* arithmetic (Radford et al. 2016, DCGAN; White 2016 "attribute vectors"): the mean code of a set A minus that of a
  set B is a direction that adds "A-ness"; ``apply_vector`` adds it at several scales to other codes.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor

from ..errors import DgmError
from ..nn.latent import TRUNCATIONS, check_truncation, gaussian_latent  # noqa: F401  (re-exported)


def lerp(z0: Tensor, z1: Tensor, t) -> Tensor:
    """(1 - t) z0 + t z1 (broadcasting ``t`` against the codes)."""
    t = torch.as_tensor(t, dtype=z0.dtype)
    return (1 - t) * z0 + t * z1


def slerp(z0: Tensor, z1: Tensor, t) -> Tensor:
    """White 2016's spherical interpolation of the codes along their last axis; lerp where the codes are (within
    rounding: 1 - |cos(theta)| <= 16 machine epsilons) parallel or antiparallel, or one is zero."""
    t = torch.as_tensor(t, dtype=z0.dtype)
    cos = (z0 * z1).sum(-1, keepdim=True) / (z0.norm(dim=-1, keepdim=True) * z1.norm(dim=-1, keepdim=True))
    arc_ok = (1 - cos.abs()) > 16 * torch.finfo(z0.dtype).eps  # False for nan (a zero code): lerp
    theta = torch.acos(cos.clamp(-1, 1))
    s = torch.where(arc_ok, torch.sin(theta), torch.ones_like(theta))
    arc = (torch.sin((1 - t) * theta) * z0 + torch.sin(t * theta) * z1) / s
    return torch.where(arc_ok, arc, lerp(z0, z1, t))


INTERPOLATIONS = {"lerp": lerp, "slerp": slerp}


def decode(model, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
    """The model's output for codes z: G(z) for a GAN (G(z, y) for a class-conditional one: y as given, else the
    model's default labels), the mean image E[x|z] for a model with an encoder."""
    if "latent" in model.capabilities:
        return model.sample(len(z), z=z, mean=True)
    return model.sample(len(z), z=z) if y is None else model.sample(len(z), y=y, z=z)


def interpolation_grid(model, rows: int, steps: int, method: str = "slerp", generator: Optional[torch.Generator] = None,
                       z0: Optional[Tensor] = None, z1: Optional[Tensor] = None, y: Optional[Tensor] = None) -> Tensor:
    """(rows * steps, ...) outputs along ``rows`` paths of ``steps`` codes from z0 to z1 (row-major; each row one
    pair, its ends z0 and z1). Missing ends are drawn from N(0, I) with ``generator``. A class-conditional model
    keeps one label per row: ``y`` (rows,), or row i of class i mod K."""
    if method not in INTERPOLATIONS:
        raise DgmError(f"--interpolate must be one of {', '.join(INTERPOLATIONS)}, got {method!r}")
    if steps < 2:
        raise DgmError(f"--steps must be >= 2 (the two ends), got {steps}")
    d = model.config.latent_dim
    z0 = gaussian_latent(rows, d, generator) if z0 is None else z0
    z1 = gaussian_latent(rows, d, generator) if z1 is None else z1
    t = torch.linspace(0, 1, steps, dtype=z0.dtype)[:, None]  # (steps, 1) against (rows, 1, d)
    z = INTERPOLATIONS[method](z0[:, None], z1[:, None], t)
    if getattr(model, "conditional", False):
        y = torch.arange(rows) % model.config.num_classes if y is None else torch.as_tensor(y).reshape(-1).expand(rows)
        y = y.repeat_interleave(steps)
    return decode(model, z.reshape(rows * steps, d), y)


def mean_code(model, x: Tensor) -> Tensor:
    """The mean of the encoder's posterior means mu(x) over a set of inputs (models with an encoder)."""
    if "latent" not in model.capabilities:
        raise DgmError(f"{type(model).__name__} has no encoder to map images to codes; pass the codes of the two sets "
                       "to attribute_vector instead (for a GAN: the z that generated them)")
    return model.encode(x)[0].mean(0)


def attribute_vector(a: Tensor, b: Tensor, model=None) -> Tensor:
    """Mean code of set A minus mean code of set B. With ``model`` (one with an encoder, e.g. a VAE) a and b are
    inputs, encoded to their posterior means; without, a and b are codes, (n, latent_dim) -- the only way for a GAN,
    which has no encoder: keep the z of the samples you labelled A and B."""
    if model is None:
        return a.mean(0) - b.mean(0)
    return mean_code(model, a) - mean_code(model, b)


def apply_vector(z: Tensor, v: Tensor, scales: Sequence[float]) -> Tensor:
    """(len(z) * len(scales), d): each code z_i + s v for every scale s (row-major: one row of scales per code)."""
    s = torch.as_tensor(list(scales), dtype=z.dtype)
    return (z[:, None] + s[None, :, None] * v).reshape(-1, z.shape[-1])


#: the scales of the attribute vector in `dgm sample --arithmetic` (0: the reconstruction of the code itself)
ARITHMETIC_SCALES = (0.0, 0.5, 1.0, 1.5, 2.0)


def class_arithmetic(model, x: Tensor, y: Tensor, num_classes: int, a: int, b: int, n: int,
                     scales: Sequence[float] = ARITHMETIC_SCALES) -> Tensor:
    """The figure of `dgm sample --arithmetic A,B`: v = mean code of class A minus mean code of class B (encoder
    means over the labelled set x, y), added at ``scales`` to the codes of the first n images of the other classes.
    Returns (rows * (1 + len(scales)), C, H, W): per row the input image, then E[x | mu(x) + s v] for each scale."""
    k = num_classes
    if k < 2:
        raise DgmError("--arithmetic needs a dataset labelled with classes (e.g. digits, fashion-mnist)")
    for c in (a, b):
        if not 0 <= c < k:
            raise DgmError(f"--arithmetic classes must be labels in 0..{k - 1}, got {c}")
    if not ((y == a).any() and (y == b).any() and ((y != a) & (y != b)).any()):
        raise DgmError(f"--arithmetic {a},{b}: the test split lacks images of class {a}, {b} or of the others")
    if a == b:
        raise DgmError(f"--arithmetic A,B needs two different classes, got {a},{b}")
    v = attribute_vector(x[y == a], x[y == b], model)
    others = x[(y != a) & (y != b)][:n]
    out = decode(model, apply_vector(model.encode(others)[0], v, scales)).reshape(len(others), len(scales),
                                                                                  *others.shape[1:])
    return torch.cat([others[:, None].to(out.dtype), out], 1).reshape(-1, *others.shape[1:])
