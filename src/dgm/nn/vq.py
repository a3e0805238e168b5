"""Vector quantisation (van den Oord et al. 2017; seed 002): nearest-neighbour lookup in a learned codebook, the
straight-through gradient, and the codebook / commitment losses (or EMA codebook updates)."""
from __future__ import annotations

from typing import Dict, Tuple

import torch
import torch.distributed as dist
import torch.nn as nn
from torch import Tensor


class VectorQuantizer(nn.Module):
    """z_e (B, D, h, w) -> z_q (B, D, h, w) with every D-vector replaced by its nearest codebook row.

    Returns (z_q_st, codes, terms): z_q_st = z_e + sg(z_q - z_e) equals z_q in value and passes the decoder's
    gradient to the encoder unchanged (straight-through); codes (B, h, w) are the indices; terms holds
    ``codebook`` = mean ||sg(z_e) - e||^2 (zero with EMA updates), ``commitment`` = mean ||z_e - sg(e)||^2 (means
    over positions and the D dimensions) and ``perplexity`` of the code usage in the batch. With ``ema=True`` the
    codebook follows exponential moving averages of the assigned encoder outputs in training mode (van den Oord et
    al. 2017, app. A.1), with Laplace smoothing of the counts; under DDP the counts and sums are all-reduced.
    """

    def __init__(self, num_codes: int, dim: int, ema: bool = False, decay: float = 0.99, eps: float = 1e-5):
        super().__init__()
        self.num_codes, self.dim, self.ema, self.decay, self.eps = num_codes, dim, ema, decay, eps
        embed = torch.empty(num_codes, dim).uniform_(-1.0 / num_codes, 1.0 / num_codes)
        if ema:
            self.register_buffer("embedding", embed)
            self.register_buffer("cluster_size", torch.ones(num_codes))
            self.register_buffer("embed_sum", embed.clone())
        else:
            self.embedding = nn.Parameter(embed)

    def nearest(self, flat: Tensor) -> Tensor:
        """Index of the nearest codebook row (squared Euclidean distance) for each row of flat (N, D)."""
        e = self.embedding
        d = (flat ** 2).sum(1, keepdim=True) - 2 * flat @ e.t() + (e ** 2).sum(1)[None]
        return d.argmin(1)

    def lookup(self, codes: Tensor) -> Tensor:
        """codes (B, h, w) -> codebook vectors (B, D, h, w)."""
        return self.embedding[codes].permute(0, 3, 1, 2).contiguous()

    def forward(self, z_e: Tensor) -> Tuple[Tensor, Tensor, Dict[str, Tensor]]:
        b, d, h, w = z_e.shape
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, d)
        codes = self.nearest(flat.detach().to(self.embedding.dtype))
        if self.ema and self.training:
            self._ema_update(flat.detach().to(self.embedding.dtype), codes)
        z_q = self.lookup(codes.view(b, h, w)).to(z_e.dtype)
        commitment = ((z_e - z_q.detach()) ** 2).mean()
        codebook = torch.zeros((), device=z_e.device) if self.ema else ((z_e.detach() - z_q) ** 2).mean()
        usage = torch.bincount(codes, minlength=self.num_codes).float() / codes.numel()
        perplexity = torch.exp(-(usage * torch.log(usage + 1e-10)).sum())
        z_q_st = z_e + (z_q - z_e).detach()
        return z_q_st, codes.view(b, h, w), {"codebook": codebook, "commitment": commitment,
                                              "perplexity": perplexity.detach()}

    @torch.no_grad()
    def _ema_update(self, flat: Tensor, codes: Tensor) -> None:
        onehot = torch.zeros(len(codes), self.num_codes, device=flat.device, dtype=flat.dtype)
        onehot.scatter_(1, codes[:, None], 1.0)
        counts, sums = onehot.sum(0), onehot.t() @ flat
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(counts)
            dist.all_reduce(sums)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (n + self.num_codes * self.eps) * n
        self.embedding.copy_(self.embed_sum / smoothed[:, None])


__all__ = ["VectorQuantizer"]
