"""A word-level tokenizer for captions (issue 37): lower-cased whitespace-split words of the training captions.

Ids: 0 is the pad token; the words follow in sorted order, 1..V. A model that wants a pad token distinct per text
position (the DALL-E transformer: "pad tokens distinct per text position", Ramesh et al. 2021, appendix B.2) encodes
with ``distinct_pads=True``: position p is then padded with ``pad_id(p)`` = V + 1 + p, after every word id, so word
ids never change. The tokenizer is its word list: ``words`` goes into a run's model config (JSON) and
``Tokenizer(words)`` rebuilds it. An unknown word is refused in one line naming it and the nearest known word.
"""
from __future__ import annotations

import difflib
from typing import Iterable, List, Sequence, Union

import torch
from torch import Tensor

from ..errors import DgmError

PAD = "<pad>"


def split_words(text: str) -> List[str]:
    """A caption's words: lower case, split on whitespace."""
    return text.lower().split()


class Tokenizer:
    """Word <-> id for a fixed vocabulary (``words``: distinct, lower case, sorted when built ``from_texts``)."""

    def __init__(self, words: Sequence[str]):
        words = list(words)
        bad = [w for w in words if not isinstance(w, str) or w != w.lower() or not w or len(w.split()) != 1 or w == PAD]
        if bad or len(set(words)) != len(words):
            raise DgmError(f"a tokenizer's words must be distinct lower-case words without spaces (and not {PAD}); "
                           f"got {bad[:3] or 'repeated words'}")
        self.words = words
        self._ids = {w: i + 1 for i, w in enumerate(words)}

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> "Tokenizer":
        """The tokenizer of every word of ``texts`` (a training split's captions)."""
        return cls(sorted({w for t in texts for w in split_words(t)}))

    @property
    def pad(self) -> int:
        """The shared pad id (0)."""
        return 0

    def pad_id(self, position: int) -> int:
        """The pad id of text position ``position`` under ``distinct_pads``: V + 1 + position."""
        return len(self.words) + 1 + int(position)

    def vocab_size(self, length: int = 0, distinct_pads: bool = False) -> int:
        """Ids in use: the pad and the V words, plus ``length`` position pads with ``distinct_pads``."""
        return len(self.words) + 1 + (length if distinct_pads else 0)

    def ids_of(self, text: str) -> List[int]:
        """A text's word ids; unknown words are one line naming them and the nearest known word."""
        words = split_words(text)
        unknown = [w for w in dict.fromkeys(words) if w not in self._ids]
        if unknown:
            hints = []
            for w in unknown[:5]:
                near = difflib.get_close_matches(w, self.words, n=1)
                hints.append(f"{w!r}" + (f" (nearest: {near[0]!r})" if near else ""))
            raise DgmError(f"unknown word(s) {', '.join(hints)} in {text!r}; the tokenizer knows the "
                           f"{len(self.words)} words of the training captions")
        return [self._ids[w] for w in words]

    def encode(self, texts: Union[str, Sequence[str]], length: int, distinct_pads: bool = False) -> Tensor:
        """(n, length) int64 ids of ``texts``, padded at the end (with 0, or ``pad_id(p)`` at position p with
        ``distinct_pads``). A text with more than ``length`` words, or none, is refused in one line."""
        if isinstance(texts, str):
            texts = [texts]
        out = torch.empty(len(texts), length, dtype=torch.int64)
        pads = (torch.arange(length) + len(self.words) + 1) if distinct_pads else torch.zeros(length, dtype=torch.int64)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise DgmError(f"expected texts as strings, got {type(t).__name__}")
            ids = self.ids_of(t)
            if not ids:
                raise DgmError("an empty text has no words to encode; give a caption")
            if len(ids) > length:
                raise DgmError(f"{t!r} has {len(ids)} words; this model reads at most {length}")
            out[i] = pads
            out[i, :len(ids)] = torch.tensor(ids, dtype=torch.int64)
        return out

    def is_pad(self, ids: Tensor) -> Tensor:
        """True where ``ids`` holds a pad (the shared one or a position's)."""
        return (ids == 0) | (ids > len(self.words))

    def decode(self, ids: Union[Tensor, Sequence[Sequence[int]]]) -> List[str]:
        """The texts of (n, length) ids, pads dropped."""
        ids = torch.as_tensor(ids, dtype=torch.int64)
        if ids.dim() == 1:
            ids = ids[None]
        if ids.numel() and (int(ids.min()) < 0):
            raise DgmError(f"token ids must be >= 0, got {int(ids.min())}")
        return [" ".join(self.words[int(i) - 1] for i in row if 0 < int(i) <= len(self.words)) for row in ids]


__all__ = ["Tokenizer", "PAD", "split_words"]
