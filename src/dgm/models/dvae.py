"""The discrete VAE of DALL-E (Ramesh et al. 2021, sec. 2.1 and appendix A; seed 002 "DALL-E model").

An encoder gives logits over K codes for each cell of an (h, w) grid; training relaxes the categorical q(z|x) with
the Gumbel-softmax (Jang et al. 2017; Maddison et al. 2017) at a temperature annealed from 1 to 1/16 (cosine), feeds
the relaxed one-hot vectors' mixture of codebook rows to the decoder, and maximises

    E_q[log p(x | z)] - beta KL(q(z|x) || U(K)),    KL per cell = sum_k q_k log q_k + log K,

with beta warmed up linearly from 0 (the paper: to 6.6 over the first 5,000 updates). ``--straight-through`` uses
the hard one-hot of the relaxed draw in the forward pass and the relaxed gradient (Bengio et al. 2013). At
evaluation the codes are the argmax of the logits; ``codes(x)`` / ``decode_codes`` / ``reconstruct`` make it a code
model like the VQ-VAE (``--metric recon``: reconstruction NLL, codes used, code perplexity).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..errors import DgmError
from .base import MODELS, ModelConfig
from .vqvae import CodeModel, conv_decoder, conv_encoder, resolve_downsample


def gumbel_softmax(logits: Tensor, tau: float, hard: bool = False, dim: int = 1,
                   uniform: Optional[Tensor] = None) -> Tensor:
    """A relaxed one-hot draw softmax((logits + g) / tau), g = -log(-log u) standard Gumbel noise (u given, or drawn
    from the global generator). ``hard``: the one-hot of its argmax in the forward pass, the relaxed gradient."""
    if uniform is None:
        uniform = torch.rand_like(logits, dtype=torch.float32)
    g = -torch.log(-torch.log(uniform.clamp(1e-10, 1 - 1e-7)))
    soft = ((logits.float() + g) / tau).softmax(dim)
    if not hard:
        return soft
    return _StraightThrough.apply(soft, dim)


class _StraightThrough(torch.autograd.Function):
    """Forward: the exact one-hot of the argmax along ``dim``; backward: the gradient passes to the relaxed draw as
    it is (one_hot + soft - soft.detach() would leave round-off in the forward values)."""

    @staticmethod
    def forward(ctx, soft: Tensor, dim: int) -> Tensor:
        return F.one_hot(soft.argmax(dim), soft.shape[dim]).movedim(-1, dim).to(soft.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad, None


def kl_to_uniform(logits: Tensor, dim: int = 1) -> Tensor:
    """KL(q || U(K)) per example, summed over the cells: sum_cells (sum_k q_k log q_k + log K); q = softmax(logits)."""
    logq = logits.float().log_softmax(dim)
    per_cell = (logq.exp() * logq).sum(dim) + math.log(logits.shape[dim])
    return per_cell.flatten(1).sum(1)


def cosine_temperature(step: int, start: float, end: float, steps: int) -> float:
    """start at step 0, end from ``steps`` on, a half cosine between: end + (start - end) (1 + cos(pi t / T)) / 2."""
    t = min(max(step, 0), steps) / steps if steps > 0 else 1.0
    return end + (start - end) * (1 + math.cos(math.pi * t)) / 2


def linear_warmup(step: int, value: float, steps: int) -> float:
    """value * min(1, step / steps) (value at once when steps is 0)."""
    return value if steps <= 0 else value * min(1.0, max(step, 0) / steps)


@dataclass
class DVAEConfig(ModelConfig):
    codes: int = 512                  # K, the codebook size (DALL-E: 8192)
    code_dim: int = 64                # size of each codebook row the decoder reads
    hidden: int = 64                  # channels of the encoder / decoder
    downsample: int = 0               # stride-2 layers: 0 = auto (1 up to 16x16 images, else 2: 32x32 -> 8x8 codes)
    kl_weight: float = 6.6            # beta, reached after --kl-warmup steps (DALL-E: 6.6)
    kl_warmup: int = 5000             # steps of the linear warm-up of beta from 0 (DALL-E: 5000; 0: none)
    temp_start: float = 1.0           # Gumbel-softmax temperature at step 0 (DALL-E: 1)
    temp_end: float = 0.0625          # temperature at the end of the anneal (DALL-E: 1/16)
    temp_steps: int = 5000            # steps of the cosine anneal (DALL-E: 150000; 0: temp-end at once)
    straight_through: bool = False    # hard one-hot forward, relaxed gradient

    @classmethod
    def tiny(cls) -> Dict[str, Any]:
        return {**super().tiny(), "codes": 8, "code_dim": 4, "hidden": 8}

    def __post_init__(self):
        if self.data_kind != "images":
            raise DgmError("a discrete VAE needs image data")
        if self.codes < 2 or self.code_dim < 1 or self.hidden < 1:
            raise DgmError(f"--codes must be >= 2, --code-dim and --hidden >= 1; got {self.codes}, {self.code_dim}, "
                           f"{self.hidden}")
        if self.downsample < 0 or self.kl_weight < 0 or self.kl_warmup < 0 or self.temp_steps < 0:
            raise DgmError("--downsample, --kl-weight, --kl-warmup and --temp-steps must be >= 0")
        if not (self.temp_start > 0 and self.temp_end > 0):
            raise DgmError(f"--temp-start and --temp-end must be > 0, got {self.temp_start} and {self.temp_end}")
        resolve_downsample(self)


@MODELS.register("dvae", help="discrete VAE (DALL-E): K-way code logits per cell, Gumbel-softmax relaxation with "
                 "an annealed temperature, KL to the uniform prior with a warm-up")
class DVAE(CodeModel):
    Config = DVAEConfig
    train_step = "dvae"  # its prior is a later model (the transformer)
    summary_format = ("val reconstruction NLL {rec_nats:.3f} nats/example, {codes_used:.0f} codes used, "
                      "perplexity {perplexity:.1f}")

    def __init__(self, config: DVAEConfig):
        super().__init__(config)
        c = config
        self.encoder = conv_encoder(c.channels, c.hidden, c.downsample, c.codes)
        self.codebook = nn.Embedding(c.codes, c.code_dim)
        self.decoder = conv_decoder(c.code_dim, c.hidden, c.downsample, c.channels * self.pixels.params_per_pixel)

    @property
    def num_codes(self) -> int:
        return self.config.codes

    def temperature(self, step: int) -> float:
        c = self.config
        return cosine_temperature(step, c.temp_start, c.temp_end, c.temp_steps)

    def kl_weight(self, step: int) -> float:
        return linear_warmup(step, self.config.kl_weight, self.config.kl_warmup)

    def logits(self, x: Tensor) -> Tensor:
        """The encoder's code logits (B, K, h, w); x is checked."""
        self.check_input(x)
        return self.encoder(self.scaled_input(x))

    def decode_soft(self, z: Tensor) -> Tensor:
        """Decoder output for (relaxed) one-hot maps z (B, K, h, w): the decoder reads sum_k z_k e_k."""
        emb = torch.einsum("bkhw,kd->bdhw", z.to(self.codebook.weight.dtype), self.codebook.weight)
        return self.decoder(emb)

    def terms(self, x: Tensor, tau: Optional[float] = None) -> Dict[str, Tensor]:
        """rec = -log p(x | z) per example and kl = KL(q(z|x) || U) per example. With ``tau`` (training) z is a
        Gumbel-softmax draw at that temperature (hard with --straight-through); without, the argmax codes."""
        logits = self.logits(x)
        if tau is None:
            z = F.one_hot(logits.argmax(1), self.config.codes).movedim(-1, 1).float()
        else:
            z = gumbel_softmax(logits, tau, hard=self.config.straight_through)
        rec = -self.pixels.image_log_prob(x, self.decode_soft(z))
        return {"rec": rec, "kl": kl_to_uniform(logits), "logits": logits}

    @torch.no_grad()
    def codes(self, x: Tensor) -> Tensor:
        """The code map of x: (B, h, w) indices in 0..K-1 (argmax of the logits)."""
        return self.logits(x).argmax(1)

    def decode_codes(self, codes: Tensor) -> Tensor:
        """Decoder output (likelihood parameters, (B, C * P, H, W)) for a code map (B, h, w)."""
        return self.decoder(self.codebook(codes).movedim(-1, 1))

    def sample(self, n: int, y=None, generator=None) -> Tensor:
        raise DgmError("a discrete VAE alone has no prior to sample from; its prior is the text-image transformer")


__all__ = ["DVAE", "DVAEConfig", "gumbel_softmax", "kl_to_uniform", "cosine_temperature", "linear_warmup"]
