"""Noise in every layer of G (Zhao et al. 2017, EBGAN; ganhacks tip 13): Gaussian noise of std sigma added to the
output of every hidden activation of the generator, in training mode only (sampling, eval and the EMA copy run G in
eval mode: unaffected). sigma is annealed linearly to 0 over --g-noise-decay-steps (0: the whole run), as instance
noise is, unless --g-noise-constant.

The noise is added by forward hooks on G's activation modules (ReLU, LeakyReLU, Tanh, ...), registered when training
starts; the activation whose output is G's output (DCGAN's tanh) is not hidden and gets none. An architecture whose
generator applies its activations as functions (``GANArch.activation_modules`` False: biggan, stylegan) has nothing
to hook and is refused. The noise comes from the global RNG, which the checkpoint holds. Under --compile an annealed
noise keeps G eager (its std changes every step; a compiled G would be recompiled for each value).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from ...errors import DgmError
from ...nn.blocks import evaluating
from ...objectives.penalties import instance_noise_std
from .base import Regulariser, register

ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.ELU, nn.SiLU, nn.GELU, nn.Sigmoid, nn.Softplus, nn.PReLU)


@register("g-layer-noise", "Gaussian noise after every hidden layer of G in training (EBGAN), annealed to 0")
@dataclass
class GLayerNoise(Regulariser):
    non_negative = ("g_layer_noise", "g_noise_decay_steps")
    g_layer_noise: float = 0.0        # Gaussian noise std after each hidden layer of G, in training (0: off)
    g_noise_decay_steps: int = 0      # anneal --g-layer-noise linearly to 0 over N steps (0: the whole run)
    g_noise_constant: bool = False    # keep --g-layer-noise constant instead of annealing it

    @property
    def eager_g(self) -> bool:
        return not self.g_noise_constant  # the annealed sigma, a new float each step, would recompile a compiled G

    def check(self, config) -> None:
        if self.g_noise_constant and self.g_noise_decay_steps:
            raise DgmError("--g-noise-decay-steps anneals the noise, --g-noise-constant keeps it: drop one")
        if self.g_layer_noise and not config.arch_spec.activation_modules:
            raise DgmError(f"--g-layer-noise hooks G's activation modules; --arch {config.arch}'s generator applies "
                           "its activations as functions: drop --g-layer-noise or choose another --arch")

    def sigma(self, step) -> float:
        """The noise std at the current training step."""
        if self.g_noise_constant:
            return self.g_layer_noise
        decay = self.g_noise_decay_steps or step.engine.total_steps
        return instance_noise_std(step.engine.global_step, self.g_layer_noise, decay)

    def setup(self, step) -> None:
        m = step.model
        probe = lambda: m.sample(2, generator=torch.Generator().manual_seed(0), ema=False)  # noqa: E731
        step.g_noise_hooks = hook_hidden_activations(m.generator, lambda: self.sigma(step), probe)


def hook_hidden_activations(g: nn.Module, sigma, probe) -> list:
    """Forward hooks adding N(0, sigma()^2) noise to the output of every hidden activation module of ``g`` while ``g``
    is in training mode; returns the hook handles. ``probe()`` runs g once (in eval mode, without gradients, the RNG
    left as it was) to find the activation whose output is g's output: it is not hidden and gets no noise."""
    acts = [m for m in g.modules() if isinstance(m, ACTIVATIONS)]
    seen = []
    handles = [m.register_forward_hook(lambda m, i, o: seen.append((m, o))) for m in acts]
    try:
        with evaluating(g), torch.no_grad(), torch.random.fork_rng(devices=[]):
            out = probe()
    finally:
        for h in handles:
            h.remove()
    hidden = [m for m in acts if not any(m is n and _same(o, out) for n, o in seen)]
    if not hidden:
        raise DgmError(f"--g-layer-noise: the generator ({type(g).__name__}) has no hidden activation module to "
                       "add noise after; drop --g-layer-noise")

    def add_noise(module, inputs, out):
        s = sigma()
        if not module.training or s == 0:
            return None
        return out + s * torch.randn_like(out)

    return [m.register_forward_hook(add_noise) for m in hidden]


def _same(a, b) -> bool:
    """Whether tensor b is tensor a or a view of all of it (a generator may reshape its last activation's output)."""
    return torch.is_tensor(a) and torch.is_tensor(b) and a.data_ptr() == b.data_ptr() and a.numel() == b.numel()
