"""BigGAN's orthogonal regularisation (Brock et al. 2019), the off-diagonal form. Pure functions.

The seed relaxes ||W^T W - I||^2 to R(W) = beta ||W^T W - diag(W^T W)||_F^2 = beta ||W^T W (.) (1 - I)||_F^2:
filters are pushed to be pairwise orthogonal, their norms are left free. A layer's weight (out, in[, k, k]) is
flattened to M = weight.flatten(1), one row per output channel (filter); the seed's W is M^T (one column per
filter), so W^T W = M M^T is the (out x out) Gram matrix of the filters. BigGAN uses beta = 1e-4 on G.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor


def orthogonal_regularization(weight: Tensor, beta: float = 1e-4) -> Tensor:
    """beta ||W^T W (.) (1 - I)||_F^2 with W = weight.flatten(1)^T; 0 when the filters are orthogonal."""
    m = weight.flatten(1)
    gram = m @ m.t()                                      # W^T W
    off = gram * (1 - torch.eye(gram.shape[0], device=gram.device, dtype=gram.dtype))
    return beta * off.pow(2).sum()


def orthogonal_regularization_of(module: nn.Module, beta: float = 1e-4) -> Tensor:
    """The sum of ``orthogonal_regularization`` over every parameter of ``module`` with 2 or more dimensions
    (linear and convolution weights; the raw weight under spectral norm), except embeddings, as BigGAN does."""
    skip = {id(p) for m in module.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    terms = [orthogonal_regularization(p, beta) for p in module.parameters() if p.dim() >= 2 and id(p) not in skip]
    return torch.stack(terms).sum() if terms else torch.zeros(())
