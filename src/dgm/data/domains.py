"""Domain-adaptation data: a labelled source domain and a shifted target domain (``data_kind`` "domains").

A pair is registered under the name ``SOURCE:TARGET`` (``dgm list datasets``). Every target is built offline from
its source by a fixed, seeded recipe, so a split is the same on every machine:

* ``moons:moons-rotated``: sklearn's two moons (noise 0.1); the target is a fresh draw rotated by ``--rotation``
  degrees (default 30) about the moons' centre (0.5, 0.25). 2-D points.
* ``digits:digits-textured``: the 8x8 digits replicated to 3 channels; the target blends each digit onto a colour
  texture as MNIST-M does (Ganin et al. 2016): |texture - digit| per channel, the texture a 4x4 grid of random
  colours upsampled bilinearly (seeded per split).
* ``digits:digits-inverted``: the digits and their negatives 1 - x (one channel).
* ``fashion-mnist:fashion-textured`` / ``fashion-mnist:fashion-noisy`` (Fashion-MNIST installed): textured as above,
  or with Gaussian pixel noise of std 0.3 clipped to [0, 1] (one channel).

Item i of a split is ((2, *shape) stacked [source, target] inputs, (2,) [source label, target label]): the step
takes the source half with its labels and the target half without (its labels serve evaluation and ``--oracle``).
Images are on [-1, 1], points as drawn. Which target example goes with source example i is drawn afresh each epoch
from (seed, epoch) (``set_epoch``), so a resumed run meets the same pairs as an uninterrupted one.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from ..errors import DgmError
from .catalog import DATASETS

#: numpy / torch seeds of each split's draws (moons, textures, noise): same data on every machine
SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}
MOON_SIZES = {"train": 2000, "val": 500, "test": 1000}
MOON_NOISE, MOON_CENTRE, ROTATION = 0.1, (0.5, 0.25), 30.0
NOISE_STD = 0.3
CHUNK = 4096  # images shifted at a time


class DomainDataset(Dataset):
    """Source inputs ``xs`` with labels ``ys`` and target inputs ``xt`` with labels ``yt`` (float inputs: images
    on [-1, 1] or points); ``points``: the inputs are vectors, not images. Images are kept in float16 and come out
    in float32; a one-channel source of a 3-channel target comes out replicated to 3 channels."""

    data_kind = "domains"

    def __init__(self, name: str, split: str, xs: Tensor, ys: Tensor, xt: Tensor, yt: Tensor, num_classes: int,
                 points: bool = False):
        if xs.shape[2:] != xt.shape[2:] or xs.shape[1] not in (1, xt.shape[1]):
            raise DgmError(f"{name}: the two domains differ in shape ({tuple(xs.shape[1:])} vs {tuple(xt.shape[1:])})")
        self.name, self.split, self.points, self.num_classes = name, split, points, int(num_classes)
        store = torch.float32 if points else torch.float16  # images: half the memory (Fashion-MNIST's 60,000 x 3 x 28^2)
        self.xs, self.ys = xs.to(store).contiguous(), torch.as_tensor(ys, dtype=torch.int64)
        self.xt, self.yt = xt.to(store).contiguous(), torch.as_tensor(yt, dtype=torch.int64)
        self._pair = torch.arange(len(self)) % len(self.xt)  # target of item i (training: redrawn per epoch)

    def __len__(self) -> int:
        return max(len(self.xs), len(self.xt))

    def set_epoch(self, seed: int, epoch: int) -> None:
        """Pair the items with a fresh permutation of the target, drawn from (seed, epoch) alone."""
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        reps = math.ceil(len(self) / len(self.xt))
        self._pair = torch.cat([torch.randperm(len(self.xt), generator=g) for _ in range(reps)])[:len(self)]

    def take(self, indices) -> Tuple[Tensor, Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.int64)
        s, t = idx % len(self.xs), self._pair[idx]
        return torch.stack([self._inputs(self.xs[s]), self._inputs(self.xt[t])], 1), \
            torch.stack([self.ys[s], self.yt[t]], 1)

    def _inputs(self, x: Tensor) -> Tensor:
        """Stored inputs as the model takes them: float32, the source replicated to the target's channels."""
        x = x.to(torch.float32)
        return x if self.points or x.shape[1] == self.xt.shape[1] else x.expand(-1, self.xt.shape[1], -1, -1)

    def __getitem__(self, i) -> Tuple[Tensor, Tensor]:
        x, y = self.take([int(i)])
        return x[0], y[0]

    def domain(self, which: str) -> Tuple[Tensor, Tensor]:
        """All inputs and labels of the "source" or the "target" domain."""
        return (self._inputs(self.xs), self.ys) if which == "source" else (self._inputs(self.xt), self.yt)

    @property
    def shape(self) -> Tuple[int, ...]:
        return tuple(self.xt.shape[1:])

    def model_fields(self) -> dict:
        """The config fields a domain-adaptation model takes from this data."""
        if self.points:
            c, h, w = self.shape[0], 1, 1
        else:
            c, h, w = self.shape
        return {"data_kind": "domains", "channels": c, "height": h, "width": w, "levels": 0,
                "num_classes": self.num_classes}

    def __repr__(self) -> str:
        return (f"DomainDataset({self.name!r}, split={self.split!r}, n_source={len(self.xs)}, "
                f"n_target={len(self.xt)})")


# -- the shifts -----------------------------------------------------------------------------------------------------

def moons(n: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """n points of sklearn's two moons (noise 0.1) and their moon (0/1), from RandomState(seed)."""
    from sklearn.datasets import make_moons

    x, y = make_moons(n, noise=MOON_NOISE, random_state=seed)
    return x.astype(np.float32), y.astype(np.int64)


def rotate(x: np.ndarray, degrees: float, centre=MOON_CENTRE) -> np.ndarray:
    """Points x (n, 2) rotated counter-clockwise by ``degrees`` about ``centre``."""
    a = math.radians(degrees)
    r = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=np.float64)
    c = np.asarray(centre, dtype=np.float64)
    return ((x.astype(np.float64) - c) @ r.T + c).astype(np.float32)


def textures(n: int, height: int, width: int, seed: int) -> Tensor:
    """n colour textures (n, 3, H, W) in [0, 1]: a k x k grid of uniform random colours per image (k = 2 up to 16
    px, 4 above), upsampled bilinearly, from torch.Generator seeded with ``seed``."""
    g = torch.Generator().manual_seed(seed)
    k = 2 if max(height, width) <= 16 else 4
    coarse = torch.rand(n, 3, k, k, generator=g)
    return F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False).clamp(0, 1)


def textured(x: Tensor, seed: int) -> Tensor:
    """Images x (N, C, H, W) in [0, 1] blended onto colour textures as MNIST-M: |texture - x| per channel (x
    replicated to 3 channels); (N, 3, H, W) in [0, 1]."""
    x3 = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
    return (textures(len(x), x.shape[2], x.shape[3], seed) - x3).abs()


def inverted(x: Tensor, seed: int = 0) -> Tensor:
    """The negatives 1 - x of images in [0, 1]."""
    return 1 - x


def noisy(x: Tensor, seed: int) -> Tensor:
    """x + N(0, NOISE_STD^2) per pixel (torch.Generator seeded with ``seed``), clipped to [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    return (x + NOISE_STD * torch.randn(x.shape, generator=g)).clamp(0, 1)


def _unit(split: str, source: str, data_dir: Optional[str]) -> Tuple[Tensor, Tensor, int]:
    """The split of image dataset ``source`` as floats in [0, 1], its labels and class count."""
    from .sources import _digits, _fashion_mnist

    raw = _digits(split) if source == "digits" else _fashion_mnist(split, data_dir=data_dir)
    x = torch.from_numpy(np.ascontiguousarray(raw.raw)).to(torch.float32) / (raw.raw_levels - 1)
    return x, torch.from_numpy(raw.labels), raw.num_classes


def _image_pair(name: str, source: str, shift: Callable[[Tensor, int], Tensor]):
    def load(split: str, data_dir: Optional[str] = None) -> DomainDataset:
        x, y, k = _unit(split, source, data_dir)
        # in chunks (Fashion-MNIST's textures at once would take 0.6 GB); chunk c is shifted with seed (split, c)
        t = torch.cat([(shift(x[i:i + CHUNK], SPLIT_SEEDS[split] * 1_000_003 + i // CHUNK) * 2 - 1).to(torch.float16)
                       for i in range(0, len(x), CHUNK)])
        return DomainDataset(name, split, x * 2 - 1, y, t, y.clone(), k)

    return load


def _moons(split: str, data_dir: Optional[str] = None, rotation: Optional[float] = None) -> DomainDataset:
    """Two moons and a rotated fresh draw of them (see the module docstring)."""
    deg = ROTATION if rotation is None else float(rotation)
    if not math.isfinite(deg):
        raise DgmError(f"--rotation must be a finite number of degrees, got {rotation}")
    n, seed = MOON_SIZES[split], SPLIT_SEEDS[split]
    xs, ys = moons(n, 2 * seed)
    xt, yt = moons(n, 2 * seed + 1)
    return DomainDataset("moons:moons-rotated", split, torch.from_numpy(xs), torch.from_numpy(ys),
                         torch.from_numpy(rotate(xt, deg)), torch.from_numpy(yt), 2, points=True)


PAIRS: Dict[str, Tuple[Callable, str]] = {
    "moons:moons-rotated": (_moons, "two moons -> the moons rotated by --rotation degrees (default 30)"),
    "digits:digits-textured": (_image_pair("digits:digits-textured", "digits", textured),
                               "8x8 digits (3 channels) -> the digits blended onto colour textures (MNIST-M style)"),
    "digits:digits-inverted": (_image_pair("digits:digits-inverted", "digits", inverted),
                               "8x8 digits -> their negatives 1 - x"),
    "fashion-mnist:fashion-textured": (_image_pair("fashion-mnist:fashion-textured", "fashion-mnist", textured),
                                       "Fashion-MNIST (3 channels) -> blended onto colour textures (MNIST-M style)"),
    "fashion-mnist:fashion-noisy": (_image_pair("fashion-mnist:fashion-noisy", "fashion-mnist", noisy),
                                    "Fashion-MNIST -> with Gaussian pixel noise, std 0.3"),
}
for _name, (_loader, _help) in PAIRS.items():
    _loader.is_domains = True
    _loader.builtin = not _name.startswith("fashion")
    DATASETS.add(_name, _loader, "adaptation: " + _help + "; source labelled, target labels for evaluation only")


def domain_pairs() -> Tuple[str, ...]:
    """The registered SOURCE:TARGET names."""
    return tuple(n for n in DATASETS.names() if getattr(DATASETS.get(n), "is_domains", False))


def check_domain_name(name: str) -> None:
    """A one-line DgmError unless ``name`` is a registered SOURCE:TARGET pair: a plain dataset lacks a target; an
    unknown target of a known source names the targets it has."""
    if name in domain_pairs():
        return
    known = ", ".join(domain_pairs())
    if ":" not in name:
        raise DgmError(f"domain adaptation needs a source and a target, --data SOURCE:TARGET; {name} names one "
                       f"domain (pairs: {known})")
    source, target = name.split(":", 1)
    targets = [p.split(":", 1)[1] for p in domain_pairs() if p.split(":", 1)[0] == source]
    if targets:
        raise DgmError(f"unknown target {target!r} for source {source}; its targets: {', '.join(targets)}")
    raise DgmError(f"unknown source {source!r} of --data {name}; domain pairs: {known}")


__all__ = ["DomainDataset", "moons", "rotate", "textures", "textured", "inverted", "noisy", "domain_pairs",
           "check_domain_name", "PAIRS"]
