"""Unpaired translation data with a hidden ground truth: two image domains X and Y (``data_kind`` "pairs").

A ``PairDataset`` yields (x, y) with x from domain X and y from domain Y. In a training split the two are drawn
from two disjoint halves of the data, so that no true pair is ever seen (Zhu et al. 2017's unpaired setting); the
test split of a labelled pair dataset keeps the true pairs (``aligned``) so that translations can be scored.

* ``fashion-labels`` (and ``digits-labels``, its tiny built-in twin for tests): X = the images, Y = their label
  maps: every pixel classed background (grey level < 32 on [0, 255]), dark (32 <= level < 128) or bright (>= 128).
  A label map is a one-channel image of 3 grey levels (class 0, 1, 2 -> black, mid grey, white; -1, 0, 1 on the
  networks' scale). Training: X from one half of the training split (a fixed RandomState(0) permutation), Y from
  the label maps of the other half. ``--paired`` instead gives every training image with its own label map (the
  supervised pix2pix-style upper bound).
* ``fashion-classes`` with ``--classes A,B`` (e.g. sneaker,sandal): X = class A, Y = class B, training halves
  disjoint as above; no ground-truth pairs exist (scored by the shipped classifier and FID).
* ``pairs``: two folders of the user's own images, ``--data-dir A --data-dir-b B`` (each split 85/5/10 as the
  ``images`` dataset; options image_size, channels).
"""
from __future__ import annotations

import difflib
from typing import Optional, Tuple

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..errors import DgmError
from . import transforms as T
from .catalog import DATASETS, RawImages, existing_dir
from .image import ImageSpec

#: the fixed labelling of fashion-labels, on grey levels 0..255: background < DARK <= dark < BRIGHT <= bright
DARK, BRIGHT = 32, 128
LABEL_CLASSES = ("background", "dark", "bright")
#: Fashion-MNIST class names (Xiao et al. 2017), as `--classes` takes them
FASHION_CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                   "ankle-boot")
VAL_PAIRS = 1000  # pairs kept for the validation cycle error during training


def label_map(raw: Tensor, raw_levels: int) -> Tensor:
    """Integer classes 0/1/2 (background/dark/bright) of uint8 levels 0..raw_levels-1, by the fixed thresholds."""
    v = raw.to(torch.int64) * 255
    top = raw_levels - 1
    return (v >= DARK * top).to(torch.int64) + (v >= BRIGHT * top).to(torch.int64)


def label_map_of_unit(x: Tensor) -> Tensor:
    """The same labelling of images in [0, 1] (a generated image): level = 255 x."""
    v = x * 255
    return (v >= DARK).to(torch.int64) + (v >= BRIGHT).to(torch.int64)


class PairDataset(Dataset):
    """(x, y) examples of two image domains kept as uint8 levels; x and y come out on the spec's scale.

    ``aligned``: item i's x and y are a true pair (test/val splits of labelled data, and --paired training).
    ``truth``: "labels" (Y holds X's label maps), "classes" (X and Y are two classes ``classes``) or None.
    ``features``: the shipped feature network for FID on these images (None: no FID).
    ``source_a`` / ``source_b``: the indices of X's and Y's images in the split they were drawn from.
    """

    data_kind = "pairs"

    def __init__(self, name: str, split: str, raw_a: Tensor, levels_a: int, raw_b: Tensor, levels_b: int,
                 aligned: bool, truth: Optional[str] = None, features: Optional[str] = None,
                 classes: Optional[Tuple[int, int]] = None, source_a=None, source_b=None, paired: bool = False,
                 scale: str = "pm1"):
        self.name, self.split = name, split
        self.raw_a, self.raw_b = torch.as_tensor(raw_a, dtype=torch.uint8), torch.as_tensor(raw_b, dtype=torch.uint8)
        if self.raw_a.shape[1:] != self.raw_b.shape[1:]:
            raise DgmError(f"{name}: the two domains differ in shape ({tuple(self.raw_a.shape[1:])} vs "
                           f"{tuple(self.raw_b.shape[1:])}); pass image_size / --image-channels so they agree")
        if not len(self.raw_a) or not len(self.raw_b):
            raise DgmError(f"{name}: the {split} split of a domain is empty; add images")
        self.aligned, self.truth, self.features, self.classes = aligned, truth, features, classes
        self.paired = paired  # training pairs are true pairs (the supervised upper bound)
        self.source_a, self.source_b = source_a, source_b
        _, c, h, w = self.raw_a.shape
        self.spec = ImageSpec(c, h, w, int(levels_a), 0, scale)
        self.spec_b = ImageSpec(c, h, w, int(levels_b), 0, scale)

    def __len__(self) -> int:
        return max(len(self.raw_a), len(self.raw_b))

    def _scaled(self, raw: Tensor, levels: int) -> Tensor:
        x = raw.to(torch.float32)
        return T.to_pm1(x, levels) if self.spec.scale == "pm1" else x

    def __getitem__(self, i) -> Tuple[Tensor, Tensor]:
        a = self.raw_a[i % len(self.raw_a)]
        b = self.raw_b[i % len(self.raw_b)]
        return self._scaled(a, self.spec.levels), self._scaled(b, self.spec_b.levels)

    def model_fields(self) -> dict:
        """The config fields a translation model takes from this data (``DATA_FIELDS`` plus ``levels_b``)."""
        s = self.spec
        return {"data_kind": "pairs", "channels": s.channels, "height": s.height, "width": s.width,
                "levels": s.levels, "num_classes": 0, "levels_b": self.spec_b.levels}

    def domain(self, which: str) -> Tensor:
        """All images of domain "a" (X) or "b" (Y) on the spec's scale, (N, C, H, W)."""
        raw, levels = (self.raw_a, self.spec.levels) if which == "a" else (self.raw_b, self.spec_b.levels)
        return self._scaled(raw, levels)

    def __repr__(self) -> str:
        return (f"PairDataset({self.name!r}, split={self.split!r}, n_x={len(self.raw_a)}, n_y={len(self.raw_b)}, "
                f"aligned={self.aligned})")


def _halves(n: int) -> Tuple[np.ndarray, np.ndarray]:
    """Two disjoint halves of range(n) by a fixed RandomState(0) permutation (sorted)."""
    perm = np.random.RandomState(0).permutation(n)
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2:])


def _labels_pair(name: str, split: str, raw: RawImages, paired: bool, features: str) -> PairDataset:
    images = torch.as_tensor(np.ascontiguousarray(raw.raw))
    maps = label_map(images, raw.raw_levels).to(torch.uint8)
    if split == "train" and not paired:
        a, b = _halves(len(images))
        return PairDataset(name, split, images[a], raw.raw_levels, maps[b], 3, aligned=False, truth="labels",
                           features=features, source_a=a, source_b=b)
    n = len(images) if split != "val" else min(VAL_PAIRS, len(images))
    idx = np.arange(n)
    return PairDataset(name, split, images[:n], raw.raw_levels, maps[:n], 3, aligned=True, truth="labels",
                       features=features, source_a=idx, source_b=idx, paired=paired and split == "train")


def _fashion(split: str, data_dir: Optional[str]) -> RawImages:
    from .sources import _fashion_mnist

    return _fashion_mnist(split, data_dir=data_dir)


@DATASETS.register("fashion-labels", help="translation: Fashion-MNIST images <-> their 3-class label maps "
                   "(background/dark/bright at grey levels 32, 128); unpaired halves, true test pairs")
def _fashion_labels(split: str, data_dir: Optional[str] = None, paired: bool = False) -> PairDataset:
    """X = Fashion-MNIST images, Y = their label maps; see the module docstring."""
    return _labels_pair("fashion-labels", split, _fashion(split, data_dir), bool(paired), "fashion-mnist")


@DATASETS.register("digits-labels", help="translation: sklearn 8x8 digits <-> their 3-class label maps "
                   "(as fashion-labels; built in, tiny: for tests)")
def _digits_labels(split: str, data_dir: Optional[str] = None, paired: bool = False) -> PairDataset:
    """X = digits images (17 levels), Y = their label maps; see the module docstring."""
    from .sources import _digits

    return _labels_pair("digits-labels", split, _digits(split), bool(paired), "digits")


_digits_labels.builtin = True


def parse_classes(classes) -> Tuple[int, int]:
    """'sneaker,sandal' -> (7, 5); one-line errors for a wrong count or an unknown name (with the nearest)."""
    if classes is None:
        raise DgmError("fashion-classes needs --classes A,B (two of: " + ", ".join(FASHION_CLASSES) + ")")
    names = [c.strip().lower() for c in str(classes).split(",") if c.strip()]
    if len(names) != 2:
        raise DgmError(f"--classes takes two Fashion-MNIST classes A,B (e.g. sneaker,sandal), got {classes!r}")
    out = []
    for c in names:
        if c not in FASHION_CLASSES:
            close = difflib.get_close_matches(c, FASHION_CLASSES, n=1, cutoff=0.4)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise DgmError(f"unknown Fashion-MNIST class {c!r}{hint} (known: {', '.join(FASHION_CLASSES)})")
        out.append(FASHION_CLASSES.index(c))
    if out[0] == out[1]:
        raise DgmError(f"--classes needs two different classes, got {classes!r}")
    return out[0], out[1]


@DATASETS.register("fashion-classes", help="translation: one Fashion-MNIST class <-> another (--classes A,B, "
                   "e.g. sneaker,sandal); unpaired halves, no true pairs")
def _fashion_classes(split: str, data_dir: Optional[str] = None, classes: Optional[str] = None,
                     paired: bool = False) -> PairDataset:
    """X = images of class A, Y = images of class B; training draws them from two disjoint halves of the split."""
    ca, cb = parse_classes(classes)
    if paired:
        raise DgmError("fashion-classes has no true pairs (two different garments); drop --paired")
    raw = _fashion(split, data_dir)
    images, labels = torch.as_tensor(np.ascontiguousarray(raw.raw)), raw.labels
    if split == "train":
        a, b = _halves(len(images))
    else:
        a = b = np.arange(len(images))
    ia, ib = a[labels[a] == ca], b[labels[b] == cb]
    return PairDataset("fashion-classes", split, images[ia], raw.raw_levels, images[ib], raw.raw_levels,
                       aligned=False, truth="classes", features="fashion-mnist", classes=(ca, cb),
                       source_a=ia, source_b=ib)


@DATASETS.register("pairs", help="translation: two folders of your images, --data-dir A --data-dir-b B "
                   "(options image_size, channels; each split 85/5/10)")
def _pairs(split: str, data_dir: Optional[str] = None, data_dir_b: Optional[str] = None,
           image_size: Optional[int] = None, channels: int = 3, paired: bool = False) -> PairDataset:
    """Unpaired images of two folders (no ground truth: scored by the cycle error only)."""
    from .folder import _images

    if data_dir is None or data_dir_b is None:
        raise DgmError("pairs needs --data-dir A --data-dir-b B, two folders of PNG/JPEG images (domains X and Y)")
    if paired:
        raise DgmError("pairs reads two unpaired folders; drop --paired")
    existing_dir("pairs", data_dir_b, "PNG/JPEG files", "pass --data-dir-b DIR holding domain Y's images")
    ra = _images(split, data_dir=data_dir, image_size=image_size, channels=channels)
    rb = _images(split, data_dir=data_dir_b, image_size=image_size, channels=channels)
    return PairDataset("pairs", split, ra.raw, 256, rb.raw, 256, aligned=False)


for _loader in (_fashion_labels, _digits_labels, _fashion_classes, _pairs):
    _loader.is_pairs = True

__all__ = ["PairDataset", "label_map", "label_map_of_unit", "parse_classes", "DARK", "BRIGHT", "LABEL_CLASSES",
           "FASHION_CLASSES"]
