"""Image datasets: raw uint8 levels in memory, binarized / quantized / scaled on access."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..errors import DgmError
from . import transforms as T

BINARIZE = (None, "fixed", "dynamic")
SCALES = ("levels", "pm1")


@dataclass(frozen=True)
class ImageSpec:
    """Shape and value range of a model's image input."""

    channels: int
    height: int
    width: int
    levels: int  # K discrete levels (2 = binary)
    num_classes: int  # 0 when unlabelled
    scale: str = "levels"  # "levels": 0..K-1 as float32; "pm1": level/(K-1)*2-1 in [-1, 1]

    @property
    def dims(self) -> int:
        return self.channels * self.height * self.width

    @property
    def shape(self) -> Tuple[int, int, int]:
        return (self.channels, self.height, self.width)


def check_transform(binarize: Optional[str], levels: Optional[int], scale: str,
                    raw_levels: Optional[int] = None) -> None:
    """One-line errors for a bad binarize / levels / scale combination (levels <= raw_levels when given)."""
    if binarize not in BINARIZE:
        raise DgmError(f"unknown binarize {binarize!r}; choose one of: none, fixed, dynamic")
    if scale not in SCALES:
        raise DgmError(f"unknown scale {scale!r}; choose one of: {', '.join(SCALES)}")
    if levels is not None:
        if binarize is not None:
            raise DgmError("binarize and levels cannot be combined (binarizing already gives 2 levels); "
                           "drop one of them")
        top = levels if raw_levels is None else raw_levels
        if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or not 2 <= levels <= top:
            rng = "an integer >= 2" if raw_levels is None else f"an integer in 2..{raw_levels} for this dataset"
            raise DgmError(f"levels must be {rng}, not {levels!r}")


def _tensor(a, dtype: torch.dtype) -> Tensor:
    """A tensor owning its memory (numpy inputs may be read-only views of file buffers)."""
    if isinstance(a, np.ndarray):
        return torch.from_numpy(np.array(a, dtype={torch.uint8: np.uint8, torch.int64: np.int64}[dtype]))
    return torch.as_tensor(a, dtype=dtype)


class ImageDataset(Dataset):
    """(x float32 (C, H, W), y int64) pairs from uint8 levels 0..raw_levels-1 kept in memory."""

    def __init__(self, name: str, split: str, raw: Tensor, labels: Tensor, raw_levels: int, num_classes: int,
                 binarize: Optional[str] = None, levels: Optional[int] = None, scale: str = "levels"):
        check_transform(binarize, levels, scale, raw_levels)
        self.name, self.split = name, split
        self.raw, self.labels = _tensor(raw, torch.uint8), _tensor(labels, torch.int64)
        if self.raw.ndim != 4 or self.labels.shape != self.raw.shape[:1]:
            raise ValueError(f"raw must be (N, C, H, W) and labels (N,), got {tuple(self.raw.shape)} "
                             f"and {tuple(self.labels.shape)}")
        self.raw_levels, self.binarize, self._levels = int(raw_levels), binarize, levels
        self._drawn: Optional[Tensor] = None  # a fixed draw of the dynamic binarization (``with_fixed_draw``)
        k = 2 if binarize is not None else int(levels or raw_levels)
        _, c, h, w = self.raw.shape
        self.spec = ImageSpec(c, h, w, k, int(num_classes), scale)

    def __len__(self) -> int:
        return self.raw.shape[0]

    def __getitem__(self, i) -> Tuple[Tensor, Tensor]:
        if self._drawn is not None:
            return self._scaled(self._drawn[i].to(torch.float32)), self.labels[i]
        return self._transform(self.raw[i], dynamic=True), self.labels[i]

    def tensors(self) -> Tuple[Tensor, Tensor]:
        """All examples transformed at once, (N, C, H, W) and (N,); "dynamic" samples once (global RNG), or gives
        the fixed draw of ``with_fixed_draw``."""
        if self._drawn is not None:
            return self._scaled(self._drawn.to(torch.float32)), self.labels.clone()
        return self._transform(self.raw, dynamic=True), self.labels.clone()

    def with_fixed_draw(self, generator: torch.Generator) -> "ImageDataset":
        """This split with its random transform drawn once, for evaluation: under dynamic binarization a copy that
        always gives the same Bernoulli draw of every example, taken now from ``generator`` (a CPU generator; the
        whole split at once, in order, so the draw does not depend on batch sizes or reading order). Training keeps
        drawing afresh from the global RNG on every access. Other transforms are deterministic: ``self``."""
        if self.binarize != "dynamic":
            return self
        d = copy.copy(self)
        d._drawn = T.binarize_dynamic(self.raw, self.raw_levels, generator=generator).to(torch.uint8)
        return d

    def to_model_levels(self, raw_uint8: Tensor) -> Tensor:
        """The deterministic transform of raw levels (fixed threshold even under dynamic binarization)."""
        raw = torch.as_tensor(raw_uint8)
        if raw.numel() and (int(raw.min()) < 0 or int(raw.max()) >= self.raw_levels):
            raise DgmError(f"{self.name}: input levels must lie in 0..{self.raw_levels - 1}, found "
                           f"{int(raw.min())}..{int(raw.max())}; rescale the image first")
        return self._transform(raw, dynamic=False)

    def _transform(self, raw: Tensor, dynamic: bool) -> Tensor:
        if self.binarize == "dynamic" and dynamic:
            x = T.binarize_dynamic(raw, self.raw_levels)
        elif self.binarize is not None:
            x = T.binarize_fixed(raw, self.raw_levels)
        elif self._levels is not None:
            x = T.quantize(raw, self.raw_levels, self._levels)
        else:
            x = raw.to(torch.float32)
        return self._scaled(x)

    def _scaled(self, x: Tensor) -> Tensor:
        """Levels 0..K-1 (float32) on the spec's scale."""
        return T.to_pm1(x, self.spec.levels) if self.spec.scale == "pm1" else x

    def __repr__(self) -> str:
        return (f"ImageDataset({self.name!r}, split={self.split!r}, n={len(self)}, spec={self.spec}, "
                f"raw_levels={self.raw_levels}, binarize={self.binarize!r})")


def fixed_draw(dataset, generator: torch.Generator):
    """``dataset`` for evaluation: an ImageDataset under dynamic binarization with one draw fixed from ``generator``
    (``ImageDataset.with_fixed_draw``); any other dataset (toy points drawn once per split, a TensorDataset of levels)
    as it is."""
    return dataset.with_fixed_draw(generator) if isinstance(dataset, ImageDataset) else dataset
