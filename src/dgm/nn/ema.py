"""Exponential moving average (EMA) of a network's weights: a shadow copy that averages the trained weights over time.

Sampling from the average of the generator's recent weights instead of the last ones is used by ProGAN (Karras et al.
2018), BigGAN (Brock et al. 2019) and StyleGAN; Yazici et al. 2019 ("The unusual effectiveness of averaging in GAN
training") measure why: the average damps the oscillation of the adversarial game. Here, after each update of the
network at step t:

    w_ema <- w                                   while t <= start (the shadow follows the raw weights),
    w_ema <- decay * w_ema + (1 - decay) * w     after,

for every parameter; buffers (batch-norm running statistics, spectral-norm vectors) are copied, not averaged.
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn


def ema_copy(module: nn.Module) -> nn.Module:
    """A frozen copy of ``module`` to hold its EMA (no gradients; registered beside it, so it is checkpointed)."""
    shadow = copy.deepcopy(module)
    for p in shadow.parameters():
        p.requires_grad_(False)
    return shadow


@torch.no_grad()
def ema_update(shadow: nn.Module, module: nn.Module, decay: float, step: int = 1, start: int = 0) -> None:
    """One EMA update of ``shadow`` towards ``module`` after update number ``step`` (copies while step <= start)."""
    params = dict(module.named_parameters())
    copy_all = step <= start or decay == 0
    for name, s in shadow.named_parameters():
        w = params[name].detach()
        if copy_all:
            s.copy_(w)
        else:
            s.mul_(decay).add_((1 - decay) * w)  # decay * w_ema + (1 - decay) * w, term by term
    buffers = dict(module.named_buffers())
    for name, b in shadow.named_buffers():
        b.copy_(buffers[name])
