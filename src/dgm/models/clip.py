"""CLIP in miniature (Radford et al. 2021): an image encoder and a text encoder projected to one unit-norm space,
trained with the symmetric contrastive loss (objectives/contrastive.py) at a learned temperature.

Images: a small conv net, pooled to a 4x4 grid (the captions name quadrants, so where an item is must survive),
flattened and projected. Texts: word and position embeddings, ``text_layers`` pre-norm transformer layers over the
words (pads masked out), the mean over the words, projected (``text_layers 0``: the mean of the word + position
embeddings through an MLP). logits = s * img @ txt.T with s = exp(t), t learned from log(1/0.07) and clamped so
that s <= 100, as CLIP does. The tokenizer (data/tokenizer.py) is the config's ``vocab``, taken from the training
captions, so ``dgm.load`` rebuilds it from the run config alone. The reranker of the DALL-E recipe is ``score``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..data.tokenizer import Tokenizer
from ..errors import DgmError
from .base import MODELS, ImageModel, InputError, ModelConfig

MAX_SCALE = 100.0  # CLIP clamps the logit scale at 100
INIT_SCALE = 1 / 0.07  # CLIP's initial temperature 0.07


@dataclass
class ClipConfig(ModelConfig):
    embed_dim: int = 64               # size of the shared embedding
    hidden: int = 32                  # channels of the image encoder (doubled after the first stride-2 layer)
    text_dim: int = 64                # width of the text encoder
    text_layers: int = 1              # transformer layers of the text encoder (0: a mean-pooled MLP)
    text_heads: int = 4               # attention heads (must divide --text-dim)
    vocab: List[str] = field(default_factory=list, metadata={"cli": False})  # the tokenizer's words (from the data)
    text_length: int = field(default=16, metadata={"cli": False})  # most words of a caption (from the data)

    @classmethod
    def tiny(cls) -> Dict[str, Any]:
        return {**super().tiny(), "embed_dim": 8, "hidden": 4, "text_dim": 8, "text_heads": 2}

    def __post_init__(self):
        # a clip run is always "captioned" (dgm train sets it with vocab); "images" lets a config be built bare (no
        # words yet: every text is then refused by the tokenizer), as the tests that build every model do
        if self.data_kind not in ("captioned", "images"):
            raise DgmError("clip needs captioned images (dgm list datasets: captions-digits, captions-fashion)")
        for name in ("embed_dim", "hidden", "text_dim", "text_heads", "text_length"):
            if getattr(self, name) < 1:
                raise DgmError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.text_layers < 0:
            raise DgmError(f"--text-layers must be >= 0, got {self.text_layers}")
        if self.text_layers and self.text_dim % self.text_heads:
            raise DgmError(f"--text-heads {self.text_heads} must divide --text-dim {self.text_dim}")
        Tokenizer(self.vocab)  # one line for a vocabulary that is not a tokenizer's

    @classmethod
    def refuse_unused(cls, given: Dict[str, Any]) -> None:
        if given.get("text_layers") == 0 and "text_heads" in given:
            raise DgmError("--text-heads sets the attention heads of the text transformer; --text-layers 0 has "
                           "none: drop --text-heads")


class _TextLayer(nn.Module):
    """A pre-norm transformer layer: x + attn(LN(x)) with pads masked, then x + MLP(LN(x))."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: Tensor, pad: Tensor) -> Tensor:
        h = self.ln1(x)
        x = x + self.attn(h, h, h, key_padding_mask=pad, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


@MODELS.register("clip", help="CLIP: conv image encoder and word transformer projected to one unit-norm space, "
                 "symmetric contrastive (InfoNCE) loss, learned temperature; needs captioned data")
class Clip(ImageModel):
    Config = ClipConfig
    train_step = "clip"
    data_kinds = ("captioned",)
    default_metrics = ("retrieval",)
    default_figure = "retrieval"
    capabilities = ("text_image",)
    can_sample = False
    summary_format = "val contrastive loss {clip_loss:.3f} (batches of 256), in-batch recall@1 {batch_r1:.3f}"

    def __init__(self, config: ClipConfig):
        super().__init__(config)
        c = config
        self.tokenizer = Tokenizer(c.vocab)
        h = c.hidden
        self.image_encoder = nn.Sequential(
            nn.Conv2d(c.channels, h, 3, padding=1), nn.ReLU(),
            nn.Conv2d(h, 2 * h, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(2 * h, 2 * h, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(2 * h, 2 * h, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(2 * h * 16, c.embed_dim))
        d = c.text_dim
        self.word_embedding = nn.Embedding(self.tokenizer.vocab_size(), d)
        self.position_embedding = nn.Parameter(torch.randn(c.text_length, d) * 0.02)
        self.text_layers = nn.ModuleList(_TextLayer(d, c.text_heads) for _ in range(c.text_layers))
        self.text_head = (nn.Sequential(nn.LayerNorm(d), nn.Linear(d, c.embed_dim)) if c.text_layers else
                          nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, c.embed_dim)))
        self.log_scale = nn.Parameter(torch.full((), math.log(INIT_SCALE)))

    @property
    def scale(self) -> Tensor:
        """s = exp(t), clamped so that s <= 100."""
        return self.log_scale.clamp(max=math.log(MAX_SCALE)).exp()

    def text_ids(self, texts: Union[str, Sequence[str], Tensor]) -> Tensor:
        """(n, text_length) token ids of ``texts`` (strings, encoded by the tokenizer) or ids as given, checked."""
        if isinstance(texts, Tensor):
            ids = texts
            v, n = self.tokenizer.vocab_size(), self.config.text_length
            if ids.dtype != torch.int64 or ids.dim() != 2 or ids.shape[1] != n:
                raise InputError(f"expected token ids as an int64 tensor of shape (n, {n}), got {ids.dtype} "
                                 f"{tuple(ids.shape)}")
            if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= v):
                raise InputError(f"expected token ids in 0..{v - 1}, got values from {int(ids.min())} to "
                                 f"{int(ids.max())}")
            if bool((ids == self.tokenizer.pad).all(1).any()):
                raise InputError("a text of pads only has no words to embed")
            return ids.to(self.device)
        return self.tokenizer.encode(texts, self.config.text_length).to(self.device)

    def embed_images(self, x: Tensor) -> Tensor:
        """(B, embed_dim) unit-norm image embeddings; x: levels 0..K-1, checked."""
        self.check_input(x)
        return F.normalize(self.image_encoder(self.scaled_input(x)).float(), dim=-1)

    def embed_texts(self, texts: Union[str, Sequence[str], Tensor]) -> Tensor:
        """(n, embed_dim) unit-norm text embeddings of strings or of (n, text_length) token ids."""
        ids = self.text_ids(texts)
        pad = ids == self.tokenizer.pad
        h = self.word_embedding(ids) + self.position_embedding[:ids.shape[1]]
        for layer in self.text_layers:
            h = layer(h, pad)
        keep = (~pad).unsqueeze(-1).to(h.dtype)
        pooled = (h * keep).sum(1) / keep.sum(1)
        return F.normalize(self.text_head(pooled).float(), dim=-1)

    def forward(self, x: Tensor, ids: Tensor):
        """(image embeddings, text embeddings, logit scale) of a batch of pairs: what the training step needs."""
        return self.embed_images(x), self.embed_texts(ids), self.scale

    @torch.no_grad()
    def score(self, x: Tensor, texts: Union[str, Sequence[str], Tensor]) -> Tensor:
        """(B,) cosine similarity of image i with text i (one text: with every image); higher is a better match,
        for reranking samples by their caption."""
        img = self.embed_images(x)
        txt = self.embed_texts(texts)
        if len(txt) == 1:
            txt = txt.expand_as(img)
        if len(txt) != len(img):
            raise InputError(f"score: {len(img)} images and {len(txt)} texts; give one text, or one per image")
        return (img * txt).sum(-1)

    def sample(self, n: int, y=None, generator=None) -> Tensor:
        raise DgmError("clip scores image-text pairs and draws no images; it reranks the samples of a text-to-image "
                       "model")


__all__ = ["Clip", "ClipConfig", "MAX_SCALE"]
