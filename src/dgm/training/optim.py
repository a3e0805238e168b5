"""The optimizer table: one entry per ``--optimizer`` name, used by the engine and by the GAN's unrolled D.

Each entry builds the torch optimizer and writes its update rule out of place, so the unrolled GAN
(Metz et al. 2017) can differentiate through D's own step with D's current moments.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Tuple

import torch
from torch import Tensor


def _adam_rule(group: dict, p: Tensor, g: Tensor, st: dict) -> Tensor:
    """Kingma & Ba 2015 with bias correction; also AdamW's moments (weight decay is left out of the copies)."""
    b1, b2 = group["betas"]
    lr, eps = group["lr"], group["eps"]
    m = st.get("exp_avg", torch.zeros_like(p)).detach()
    v = st.get("exp_avg_sq", torch.zeros_like(p)).detach()
    t = float(st.get("step", 0)) + 1
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    st["exp_avg"], st["exp_avg_sq"], st["step"] = m.detach(), v.detach(), t
    m_hat = m / (1 - b1 ** t)
    v_hat = v / (1 - b2 ** t)
    return p - lr * m_hat / ((v_hat + 1e-16).sqrt() + eps)  # +1e-16: finite second derivative at v = 0


def _rmsprop_rule(group: dict, p: Tensor, g: Tensor, st: dict) -> Tensor:
    """Tieleman & Hinton 2012: v <- a v + (1 - a) g^2; p <- p - lr g / (sqrt(v) + eps)."""
    a, eps = group["alpha"], group["eps"]
    v = st.get("square_avg", torch.zeros_like(p)).detach()
    v = a * v + (1 - a) * g * g
    st["square_avg"] = v.detach()
    return p - group["lr"] * g / ((v + 1e-16).sqrt() + eps)


def _sgd_rule(group: dict, p: Tensor, g: Tensor, st: dict) -> Tensor:
    """torch.optim.SGD: buf = g on the first step, then mu * buf + g; p <- p - lr buf (plain g without momentum)."""
    mu = group.get("momentum", 0.0)
    if not mu:
        return p - group["lr"] * g
    buf = st.get("momentum_buffer")
    buf = g if buf is None else mu * buf.detach() + g
    st["momentum_buffer"] = buf.detach()
    return p - group["lr"] * buf


@dataclass(frozen=True)
class OptimizerEntry:
    """``make(params, lr, betas, weight_decay)`` builds it; ``rule(group, p, g, state) -> p'`` is its step out of place.

    ``state`` is a copy of the optimizer's state for p (moments as constants), advanced in place for the next copy.
    """

    cls: type
    make: Callable[..., torch.optim.Optimizer]
    rule: Callable[[dict, Tensor, Tensor, dict], Tensor]


OPTIMIZERS: Dict[str, OptimizerEntry] = {
    "adam": OptimizerEntry(torch.optim.Adam, lambda ps, lr, betas, wd: torch.optim.Adam(
        ps, lr=lr, betas=betas, weight_decay=wd), _adam_rule),
    "adamw": OptimizerEntry(torch.optim.AdamW, lambda ps, lr, betas, wd: torch.optim.AdamW(
        ps, lr=lr, betas=betas, weight_decay=wd), _adam_rule),
    "sgd": OptimizerEntry(torch.optim.SGD, lambda ps, lr, betas, wd: torch.optim.SGD(  # beta1 is the momentum
        ps, lr=lr, momentum=betas[0], weight_decay=wd), _sgd_rule),
    "rmsprop": OptimizerEntry(torch.optim.RMSprop, lambda ps, lr, betas, wd: torch.optim.RMSprop(
        ps, lr=lr, weight_decay=wd), _rmsprop_rule),
}


def make_optimizer(kind: str, params, lr: float, betas: Tuple[float, float], weight_decay: float = 0.0):
    """The optimizer ``kind`` (a key of ``OPTIMIZERS``) over ``params``."""
    return OPTIMIZERS[kind].make(params, lr, betas, weight_decay)


def differentiable_step(opt: torch.optim.Optimizer, group: dict, p: Tensor, g: Tensor, st: dict) -> Tensor:
    """One step of ``opt``'s own rule for parameter p, differentiable in g (and through g in whatever made it)."""
    entry = next((e for e in OPTIMIZERS.values() if type(opt) is e.cls), OPTIMIZERS["sgd"])
    return entry.rule(group, p, g, st)
