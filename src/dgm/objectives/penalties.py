"""Regularisers of the discriminator: gradient penalties, weight clipping, instance noise. Pure functions.

A gradient penalty is an entry ``Penalty(points, target, weight, every)``: lambda E (||grad D(x_hat)|| - target)^2
at points x_hat drawn by ``PENALTY_POINTS[points]``. WGAN-GP, DRAGAN and R1 are three entries, not three branches.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional

import torch
from torch import Tensor


def gradient_penalty(critic: Callable[..., Tensor], points: Tensor, target: float = 1.0,
                     y: Optional[Tensor] = None) -> Tensor:
    """E (||grad_x D(x_hat)||_2 - target)^2 at ``points`` (Gulrajani et al. 2017; Kodali et al. 2017).

    Differentiable (create_graph) so the penalty trains the critic's parameters. A packed critic (PacGAN,
    ``critic.pack = m``) scores packs of m consecutive points: the norm is that of the gradient w.r.t. each pack.
    ``y``: the points' labels for a class-conditional critic, D(x_hat, y); the gradient is still w.r.t. x_hat only.
    """
    points = points.detach().requires_grad_(True)
    out = critic(points) if y is None else critic(points, y)
    (grad,) = torch.autograd.grad(out.sum(), points, create_graph=True)
    m = getattr(critic, "pack", 1)
    return ((grad.reshape(grad.shape[0] // m, -1).norm(2, dim=1) - target) ** 2).mean()


def _per_group(n: int, group: int, like: Tensor, generator) -> Tensor:
    """t ~ U[0, 1], one per group of ``group`` consecutive examples (a pack), shaped to broadcast over ``like``."""
    t = torch.rand((n // group,) + (1,) * (like.dim() - 1), generator=generator, device=like.device)
    return t if group == 1 else t.repeat_interleave(group, dim=0)


def interpolates(real: Tensor, fake: Tensor, generator: Optional[torch.Generator] = None, group: int = 1) -> Tensor:
    """WGAN-GP's x_hat = t x + (1 - t) G(z), t ~ U[0, 1] per example (per pack of ``group`` examples for a packed
    critic): points on lines between real and fake (packs)."""
    t = _per_group(real.shape[0], group, real, generator)
    return t * real + (1 - t) * fake.detach()


def perturbed(real: Tensor, c: float = 0.5, generator: Optional[torch.Generator] = None, group: int = 1) -> Tensor:
    """DRAGAN's x_hat = t x + (1 - t) x_p with x_p = x + c * std(x) * U[0, 1] (Kodali et al. 2017): points near the data.
    t per example, or per pack of ``group`` examples for a packed critic."""
    noise = torch.rand(real.shape, generator=generator, device=real.device)
    x_p = real + c * real.std() * noise
    t = _per_group(real.shape[0], group, real, generator)
    return t * real + (1 - t) * x_p


def real_points(real: Tensor, fake: Tensor, penalty: "Penalty", group: int = 1) -> Tensor:
    return real


PENALTY_POINTS: Dict[str, Callable[..., Tensor]] = {  # (real, fake, penalty, group) -> x_hat
    "interpolates": lambda real, fake, p, group=1: interpolates(real, fake, group=group),  # WGAN-GP
    "perturbed": lambda real, fake, p, group=1: perturbed(real, p.scale, group=group),      # DRAGAN
    "real": real_points,                                                                    # R1 (Mescheder et al. 2018)
}


@dataclass(frozen=True)
class Penalty:
    """``weight`` E (||grad_x D(x_hat)||_2 - ``target``)^2 at x_hat from ``PENALTY_POINTS[points]``.

    ``every = k`` is lazy regularisation (Karras et al. 2020, StyleGAN2): the penalty is applied on every k-th
    discriminator update only, with weight ``weight * k`` so that its average strength is unchanged.
    ``scale`` is DRAGAN's perturbation c (``perturbed`` points only); ``name`` is the key in the training log.
    """

    points: str
    target: float = 1.0
    weight: float = 10.0
    every: int = 1
    scale: float = 0.5
    name: str = "gradient_penalty"

    def __post_init__(self):
        if self.points not in PENALTY_POINTS:
            raise ValueError(f"unknown penalty points {self.points!r}; choose one of: {', '.join(PENALTY_POINTS)}")
        if self.every < 1:
            raise ValueError(f"a penalty's interval must be >= 1, got {self.every}")

    def sample(self, real: Tensor, fake: Tensor, group: int = 1) -> Tensor:
        """The points x_hat where this penalty looks at D's gradient (``group``: a packed critic's pack size)."""
        return PENALTY_POINTS[self.points](real, fake, self, group)

    def applies(self, d_step: int) -> bool:
        """Whether discriminator update number ``d_step`` (from 0) carries this penalty."""
        return d_step % self.every == 0

    @property
    def step_weight(self):
        """The weight on the updates that carry the penalty: ``weight * every``."""
        return self.weight * self.every


def r1(gamma: float = 10.0, every: int = 1) -> Penalty:
    """R1 (Mescheder et al. 2018): gamma/2 E_{x ~ data} ||grad D(x)||^2, a zero-centred penalty on real points."""
    return Penalty("real", target=0.0, weight=gamma / 2, every=every, name="r1")


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
