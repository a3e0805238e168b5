"""Regularisers of the discriminator: gradient penalties, weight clipping, instance noise. Pure functions."""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor


def gradient_penalty(critic: Callable[[Tensor], Tensor], points: Tensor, target: float = 1.0) -> Tensor:
    """E (||grad_x D(x_hat)||_2 - target)^2 at ``points`` (Gulrajani et al. 2017; Kodali et al. 2017).

    Differentiable (create_graph) so the penalty trains the critic's parameters.
    """
    points = points.detach().requires_grad_(True)
    out = critic(points)
    (grad,) = torch.autograd.grad(out.sum(), points, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - target) ** 2).mean()


def interpolates(real: Tensor, fake: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
    """WGAN-GP's x_hat = t x + (1 - t) G(z), t ~ U[0, 1] per example: points on lines between real and fake."""
    t = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), generator=generator, device=real.device)
    return t * real + (1 - t) * fake.detach()


def perturbed(real: Tensor, c: float = 0.5, generator: Optional[torch.Generator] = None) -> Tensor:
    """DRAGAN's x_hat = t x + (1 - t) x_p with x_p = x + c * std(x) * U[0, 1] (Kodali et al. 2017): points near the data."""
    noise = torch.rand(real.shape, generator=generator, device=real.device)
    x_p = real + c * real.std() * noise
    t = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), generator=generator, device=real.device)
    return t * real + (1 - t) * x_p


@torch.no_grad()
def clip_weights(module: torch.nn.Module, c: float) -> None:
    """WGAN (Arjovsky et al. 2017): w <- clip(w, -c, c) for every parameter of the critic, after its update."""
    for p in module.parameters():
        p.clamp_(-c, c)


def instance_noise_std(step: int, std: float, decay_steps: int) -> float:
    """Instance noise (Sonderby et al. 2017; Arjovsky & Bottou 2017), annealed linearly from ``std`` to 0."""
    if std <= 0 or decay_steps <= 0:
        return 0.0
    return std * max(0.0, 1.0 - step / decay_steps)
