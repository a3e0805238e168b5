"""The symmetric contrastive (InfoNCE) loss of CLIP (Radford et al. 2021, fig. 3)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def clip_logits(image_emb: Tensor, text_emb: Tensor, scale: Tensor) -> Tensor:
    """logits[i, j] = scale * <image_i, text_j> (embeddings already unit-norm)."""
    return scale * image_emb.float() @ text_emb.float().T


def clip_loss(image_emb: Tensor, text_emb: Tensor, scale: Tensor) -> Tensor:
    """(CE(logits, arange) + CE(logits.T, arange)) / 2 with logits = scale * img @ txt.T: pair i is image i with
    text i; the other texts (images) of the batch are its negatives."""
    logits = clip_logits(image_emb, text_emb, scale)
    target = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


__all__ = ["clip_logits", "clip_loss"]
