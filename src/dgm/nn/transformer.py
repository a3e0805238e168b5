"""A decoder-only transformer over one sequence of two segments (DALL-E's caption tokens, then image codes), with
incremental decoding through a key/value cache (Vaswani et al. 2017; Radford et al. 2019's pre-norm blocks;
Ramesh et al. 2021, sec. 2.2 for the two segments).

The sequence is ``text_len`` text positions followed by ``image_len`` image positions; each segment has its own
learned position table, and the token table covers both vocabularies (text ids first, image codes offset by
``text_vocab``). ``forward(tokens)`` gives, at every position i, the logits of the token at i + 1 (causal
self-attention: position i attends to positions <= i). ``step(tokens, cache)`` feeds one position per call and keeps
the keys and values of every earlier position in ``cache``, so decoding n positions costs n single-position passes
instead of n full ones; its logits equal the full recomputation's up to float round-off, and sampling with the same
uniforms gives the same tokens (``tests/test_transformer.py``).
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position i attends to positions <= i."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must divide by heads {heads}")
        self.heads, self.dim = heads, dim
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = dropout

    def _split(self, x: Tensor):
        b, t, _ = x.shape
        q, k, v = self.qkv(x).split(self.dim, dim=2)
        shape = (b, t, self.heads, self.dim // self.heads)
        return (a.reshape(shape).transpose(1, 2) for a in (q, k, v))

    def forward(self, x: Tensor, cache: Optional[Dict[str, Tensor]] = None) -> Tensor:
        """x (B, T, dim). With ``cache`` (a dict, empty at the first call) x holds the positions that follow the
        cached ones: their keys and values are appended and they attend to every cached position and to the earlier
        ones among themselves."""
        q, k, v = self._split(x)
        past = 0
        if cache is not None:
            if "k" in cache:
                past = cache["k"].shape[2]
                k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v
        t, s = q.shape[2], k.shape[2]
        att = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
        allowed = torch.ones(t, s, dtype=torch.bool, device=x.device).tril(past)  # query i sees keys <= past + i
        att = att.masked_fill(~allowed, float("-inf")).softmax(-1)
        att = F.dropout(att, self.dropout, self.training)
        y = (att @ v).transpose(1, 2).reshape(x.shape[0], t, self.dim)
        return self.out(y)


class Block(nn.Module):
    """Pre-norm block: x + attn(LN(x)), then x + MLP(LN(x)) (4x width, GELU)."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = CausalSelfAttention(dim, heads, dropout)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), nn.Dropout(dropout))

    def forward(self, x: Tensor, cache: Optional[Dict[str, Tensor]] = None) -> Tensor:
        x = x + self.attn(self.ln1(x), cache)
        return x + self.mlp(self.ln2(x))


class TwoSegmentTransformer(nn.Module):
    """Logits over ``text_vocab + image_vocab`` tokens for a sequence of ``text_len`` text then ``image_len`` image
    positions; see the module docstring."""

    def __init__(self, text_vocab: int, image_vocab: int, text_len: int, image_len: int, dim: int = 128,
                 heads: int = 4, layers: int = 4, dropout: float = 0.0):
        super().__init__()
        self.text_vocab, self.image_vocab = text_vocab, image_vocab
        self.text_len, self.image_len = text_len, image_len
        self.tokens = nn.Embedding(text_vocab + image_vocab, dim)
        self.text_pos = nn.Parameter(torch.zeros(text_len, dim))
        self.image_pos = nn.Parameter(torch.zeros(image_len, dim))
        nn.init.normal_(self.text_pos, std=0.02)
        nn.init.normal_(self.image_pos, std=0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, dropout) for _ in range(layers))
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, text_vocab + image_vocab)

    @property
    def length(self) -> int:
        return self.text_len + self.image_len

    def positions(self, start: int, count: int) -> Tensor:
        """The position embeddings of positions start .. start + count - 1 (text table, then image table)."""
        pos = torch.cat([self.text_pos, self.image_pos])
        return pos[start:start + count]

    def embed(self, tokens: Tensor, start: int = 0) -> Tensor:
        """Token plus position embeddings of tokens (B, T) placed at positions start .. start + T - 1."""
        if start + tokens.shape[1] > self.length:
            raise ValueError(f"{start + tokens.shape[1]} positions, the model has {self.length}")
        return self.tokens(tokens) + self.positions(start, tokens.shape[1])

    def body(self, h: Tensor, caches: Optional[List[Dict[str, Tensor]]] = None) -> Tensor:
        """The blocks and the head on embedded inputs h (B, T, dim) -> logits (B, T, vocab)."""
        for i, block in enumerate(self.blocks):
            h = block(h, None if caches is None else caches[i])
        return self.head(self.ln(h))

    def forward(self, tokens: Tensor) -> Tensor:
        """Logits (B, T, vocab): at position i, of the token at position i + 1."""
        return self.body(self.embed(tokens))

    def new_cache(self) -> List[Dict[str, Tensor]]:
        return [{} for _ in self.blocks]

    def step(self, tokens: Tensor, caches: List[Dict[str, Tensor]]) -> Tensor:
        """Feed the positions after the cached ones (tokens (B, T), usually T = 1); logits (B, T, vocab)."""
        start = caches[0]["k"].shape[2] if caches and "k" in caches[0] else 0
        return self.body(self.embed(tokens, start), caches)

    def allowed(self, position: int) -> slice:
        """The token ids that may stand at ``position``: text ids in the text segment, image codes after it."""
        return slice(0, self.text_vocab) if position < self.text_len else slice(self.text_vocab, None)


def draw(logits: Tensor, uniform: Tensor, temperature: float = 1.0, top_k: Optional[int] = None) -> Tensor:
    """Inverse-CDF draws from softmax(logits / temperature) restricted to the top_k largest logits: for each row the
    smallest index whose cumulative probability exceeds its uniform (B,) -> (B,) indices."""
    z = logits.double() / temperature
    if top_k is not None and top_k < z.shape[-1]:
        kth = z.topk(top_k, dim=-1).values[..., -1:]
        z = z.masked_fill(z < kth, float("-inf"))
    cdf = z.softmax(-1).cumsum(-1)
    idx = torch.searchsorted(cdf, uniform.double().unsqueeze(-1).clamp(max=1 - 1e-12) * cdf[..., -1:],
                          right=True).squeeze(-1)  # right: a zero-probability id is never drawn, even for u = 0
    return idx.clamp(max=z.shape[-1] - 1)


@torch.no_grad()
def generate(model: TwoSegmentTransformer, prefix: Tensor, uniforms: Tensor, temperature: float = 1.0,
             top_k: Optional[int] = None, cached: bool = True) -> Tensor:
    """Complete prefix (B, P) to the model's full length: position P + j is drawn with uniforms[:, j] from the
    logits at position P + j - 1, restricted to the ids allowed there (``model.allowed``). ``cached=False`` recomputes
    the whole sequence for every position (the reference the cache is tested against)."""
    seq = prefix
    caches = model.new_cache() if cached else None
    logits = model.step(seq, caches)[:, -1] if cached else None
    for j in range(model.length - prefix.shape[1]):
        pos = seq.shape[1]
        if not cached:
            logits = model(seq)[:, -1]
        ids = model.allowed(pos)
        offset = ids.start or 0
        tok = draw(logits[:, ids], uniforms[:, j], temperature, top_k) + offset
        seq = torch.cat([seq, tok[:, None]], 1)
        if cached and seq.shape[1] < model.length:
            logits = model.step(tok[:, None], caches)[:, -1]
    return seq


__all__ = ["CausalSelfAttention", "Block", "TwoSegmentTransformer", "draw", "generate"]
