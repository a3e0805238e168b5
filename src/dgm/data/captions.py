"""Captioned images whose captions can be checked automatically (issue 37, the DALL-E recipe in miniature).

``captions-digits`` / ``captions-fashion``: one or two items (an 8x8 digit or a Fashion-MNIST image) on a 32x32
canvas (``--image-size 48``), each in one quadrant, small or large; ``-colour`` variants also paint each item red,
green, blue or white (3 channels). Every image keeps the attribute tuple of each item, (class, position, size,
colour), and its caption, e.g. "a small sandal top left and a large red bag bottom right" (items in reading order:
top left, top right, bottom left, bottom right).

Compositional hold-out: an item's *combination* is its whole tuple (10 x 4 x 2 = 80, x 4 colours = 320). A fixed
share of the combinations (``unseen_share``, default 25 %, drawn by RandomState(SPLIT_SEED), every single attribute
value still seen) never appears in train or val; the test split holds ``TEST_SEEN`` images made of seen
combinations only, then ``TEST_UNSEEN`` images with at least one unseen item (``unseen``: True). Each split is drawn
from its own seed (``SPLIT_SEEDS``) and takes its item images from the same split of the base dataset, so the
test items are images no model saw. Generated, never downloaded; Fashion-MNIST's files come from --data-dir or
the Debian package dataset-fashion-mnist.
"""
from __future__ import annotations

import copy
import itertools
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DgmError
from .catalog import DATASETS
from .image import ImageDataset

ATTRIBUTES = ("class", "position", "size", "colour")
POSITIONS = ("top left", "top right", "bottom left", "bottom right")
SIZES = ("small", "large")
COLOURS = ("red", "green", "blue", "white")
_RGB = np.array([[1.0, 0.2, 0.2], [0.2, 1.0, 0.2], [0.3, 0.3, 1.0], [1.0, 1.0, 1.0]])
CLASS_WORDS = {
    "digits": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    "fashion": ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"),
}
IMAGE_SIZES = (32, 48)
SMALL = 0.625  # a small item's side, as a share of the quadrant's (a large item fills its quadrant)
SPLIT_SIZES = {"train": 20_000, "val": 2_000}
TEST_SEEN, TEST_UNSEEN = 2_000, 2_000
SPLIT_SEEDS = {"train": 1, "val": 2, "test": 3}
SPLIT_SEED = 0  # the held-out combinations
MAX_ITEMS = 2


def combinations(colour: bool) -> List[Tuple[int, int, int, int]]:
    """Every item tuple (class, position, size, colour); colour is -1 without colours."""
    return [(c, p, s, k) for c, p, s, k in itertools.product(range(10), range(len(POSITIONS)), range(len(SIZES)),
                                                              range(len(COLOURS)) if colour else (-1,))]


def unseen_combinations(colour: bool, share: float = 0.25) -> frozenset:
    """The held-out item tuples: round(share x all) of them, drawn by RandomState(SPLIT_SEED) so that every value
    of every attribute is still in some seen tuple."""
    if not 0.0 <= share < 1.0:
        raise DgmError(f"captions: the unseen share must lie in [0, 1), got {share}")
    combos = combinations(colour)
    n = int(round(share * len(combos)))
    rs = np.random.RandomState(SPLIT_SEED)
    for _ in range(1000):
        pick = [combos[i] for i in rs.choice(len(combos), n, replace=False)]
        seen = set(combos) - set(pick)
        if all({t[a] for t in seen} == {t[a] for t in combos} for a in range(4)):
            return frozenset(pick)
    raise DgmError(f"captions: no hold-out of {n} combinations keeps every attribute value seen; lower the share")


def caption(items: Sequence[Tuple[int, int, int, int]], base: str) -> str:
    """The caption of an image's items (in the order given), e.g. "a small red sandal top left and a large bag ..."."""
    words = CLASS_WORDS[base]
    parts = []
    for c, p, s, k in items:
        colour = f"{COLOURS[k]} " if k >= 0 else ""
        parts.append(f"a {SIZES[s]} {colour}{words[c]} {POSITIONS[p]}")
    return " and ".join(parts)


def _base_items(base: str, split: str, data_dir: Optional[str]) -> Tuple[torch.Tensor, np.ndarray]:
    """The base dataset's split as float images in [0, 1] (N, 1, h, w) and labels."""
    if base == "digits":
        from .sources import _digits

        raw = _digits(split)
    else:
        from .sources import _fashion_mnist

        raw = _fashion_mnist(split, data_dir=data_dir)
    x = torch.from_numpy(np.asarray(raw.raw)).float() / (raw.raw_levels - 1)
    return x, np.asarray(raw.labels)


def _resized(x: torch.Tensor, side: int) -> torch.Tensor:
    return F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False,
                         antialias=side < x.shape[-1]).clamp(0, 1)


def _draw_items(rs: np.random.RandomState, unseen: frozenset, colour: bool, want_unseen: Optional[bool]):
    """One image's item tuples (1 or 2 items in distinct quadrants, reading order). want_unseen False: only seen
    tuples; True: at least one unseen tuple; None: any."""
    while True:
        n = 1 + rs.randint(MAX_ITEMS)
        positions = sorted(rs.choice(len(POSITIONS), n, replace=False))
        items = [(int(rs.randint(10)), int(p), int(rs.randint(len(SIZES))),
                  int(rs.randint(len(COLOURS))) if colour else -1) for p in positions]
        has = any(t in unseen for t in items)
        if want_unseen is None or has == want_unseen:
            return items


class CaptionDataset(ImageDataset):
    """A split of a captioned dataset: images (uint8, 256 levels), ``captions`` (list of str), ``attributes``
    (N, 2, 4) int64 (class, position, size, colour of each item; -1 where an image has one item or no colours),
    ``unseen`` (N,) bool (an item's combination is held out of training; test split only). ``labels``: the class of
    the first item."""

    attribute_names = ATTRIBUTES
    #: (N, L) token ids of the captions in a copy made by ``with_text`` (batches are then (image, ids))
    text_ids: Optional[torch.Tensor] = None

    def __init__(self, name: str, base: str, split: str, image_size: int = 32, colour: bool = False,
                 unseen_share: float = 0.25, data_dir: Optional[str] = None, binarize: Optional[str] = None,
                 levels: Optional[int] = None, scale: str = "levels"):
        self.base, self.colour, self.image_size = base, colour, image_size
        self.unseen_combinations = unseen_combinations(colour, unseen_share)
        self.class_words = CLASS_WORDS[base]
        rs = np.random.RandomState(SPLIT_SEEDS[split])
        if split == "test":
            plan = [False] * TEST_SEEN + [True] * TEST_UNSEEN
        else:
            plan = [False] * SPLIT_SIZES[split]
        items = [_draw_items(rs, self.unseen_combinations, colour, u) for u in plan]
        x, labels = _base_items(base, split, data_dir)
        by_class = [np.flatnonzero(labels == c) for c in range(10)]
        if any(len(ix) == 0 for ix in by_class):
            raise DgmError(f"{name}: the {split} split of {base} lacks a class; it cannot draw every caption")
        quad = image_size // 2
        sides = (int(round(SMALL * quad)), quad)
        scaled = [_resized(x, s)[:, 0].numpy() for s in sides]  # every base image at both sizes, once
        channels = 3 if colour else 1
        canvas = np.zeros((len(items), channels, image_size, image_size), dtype=np.float32)
        attrs = np.full((len(items), MAX_ITEMS, 4), -1, dtype=np.int64)
        for i, its in enumerate(items):
            for j, (c, p, s, k) in enumerate(its):
                img = scaled[s][by_class[c][rs.randint(len(by_class[c]))]]
                side = sides[s]
                top = (p // 2) * quad + (quad - side) // 2
                left = (p % 2) * quad + (quad - side) // 2
                paint = _RGB[k][:, None, None] if colour else np.ones((1, 1, 1))
                canvas[i, :, top:top + side, left:left + side] = img[None] * paint
                attrs[i, j] = (c, p, s, k)
        raw = np.rint(canvas * 255).astype(np.uint8)
        self.captions = [caption(its, base) for its in items]
        self.attributes = torch.from_numpy(attrs)
        self.unseen = torch.tensor(plan, dtype=torch.bool)
        super().__init__(name, split, raw, attrs[:, 0, 0].copy(), 256, 10, binarize=binarize, levels=levels,
                         scale=scale)

    def words(self) -> List[str]:
        """Every word of this split's captions, sorted."""
        return sorted({w for c in self.captions for w in c.split()})

    def text_fields(self) -> dict:
        """The config fields a text model takes from this (training) split: ``vocab``, its tokenizer's words, and
        ``text_length``, the most words of a caption (every split's captions have at most this many: one or two
        items of at most 6 words, joined by "and")."""
        from .tokenizer import Tokenizer

        per_item = 5 + self.colour  # "a small red sandal top left"
        return {"vocab": Tokenizer.from_texts(self.captions).words, "text_length": MAX_ITEMS * per_item + 1}

    def with_text(self, encode: Callable[[List[str]], torch.Tensor]) -> "CaptionDataset":
        """A copy whose examples are (image, token ids) instead of (image, label): ``encode(captions)`` gives the
        (N, L) ids of every caption once (a text model's tokenizer). What a text model trains on; ``labels``,
        ``captions`` and every other attribute stay as they are."""
        d = copy.copy(self)
        d.text_ids = encode(self.captions)
        return d

    def __getitem__(self, i):
        x, y = super().__getitem__(i)
        return (x, self.text_ids[i]) if self.text_ids is not None else (x, y)

    def tensors(self):
        x, y = super().tensors()
        return (x, self.text_ids.clone()) if self.text_ids is not None else (x, y)


def _image_size(name: str, image_size) -> int:
    if image_size is None:
        return IMAGE_SIZES[0]
    size = int(image_size) if isinstance(image_size, str) and image_size.strip().isdigit() else image_size
    if isinstance(size, bool) or size not in IMAGE_SIZES:
        raise DgmError(f"{name}: --image-size must be 32 (default) or 48, got {image_size!r}")
    return int(size)


def _register(name: str, base: str, colour: bool) -> None:
    what = {"digits": "8x8 digits", "fashion": "Fashion-MNIST items"}[base]
    paint = ", painted red/green/blue/white" if colour else ""

    def load(split: str, data_dir: Optional[str] = None, image_size: Optional[int] = None,
             unseen_share: float = 0.25, binarize: Optional[str] = None, levels: Optional[int] = None,
             scale: str = "levels") -> CaptionDataset:
        if base == "digits" and data_dir is not None:
            raise DgmError(f"{name} is built into dgm and reads no files; drop --data-dir")
        return CaptionDataset(name, base, split, _image_size(name, image_size), colour, unseen_share, data_dir,
                              binarize, levels, scale)

    load.takes_transform = True
    load.builtin = base == "digits"
    load.captioned = True
    DATASETS.add(name, load, f"captioned: 1-2 {what} on a 32x32 canvas (--image-size 48){paint}, each in a quadrant, "
                 "small or large, with its caption and attributes; 25% of item combinations held out of training "
                 "(test: 2000 seen + 2000 unseen)")


_register("captions-digits", "digits", False)
_register("captions-digits-colour", "digits", True)
_register("captions-fashion", "fashion", False)
_register("captions-fashion-colour", "fashion", True)

__all__ = ["CaptionDataset", "caption", "combinations", "unseen_combinations", "ATTRIBUTES", "POSITIONS", "SIZES",
           "COLOURS", "CLASS_WORDS"]
