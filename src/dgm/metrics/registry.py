"""Metrics as registered objects: each says what it needs and how its value is labelled.

A metric file defines its function and registers it next to it::

    register(Metric("fid", "features", _fid, label=lambda c: f"FID ({c.tag})", default_for_images=True, ...))

``needs`` decides what ``compute`` receives:

* ``"run"``: ``compute(model, data, batch_size=..., progress=..., **options)`` with the run's model and dataset split;
  ``options`` names keyword arguments of `evaluate` passed on (``"k"``, ``"seed"``);
* ``"features"`` / ``"probs"`` / ``"images"``: ``compute(c)`` with one `Comparison` ``c`` of real vs fake images.
  The feature network runs (once, reals through the cache) only when a selected metric needs features or class
  probabilities; metrics that can share work (P/R and D/C share one k-NN pass) do so through ``c.shared``.

Class-conditional samples carry their labels (``c.fake_labels``, the classes they were drawn for) next to the
real labels (``c.real_labels``): a ``conditional`` metric (CAS) needs them and the dataset's own classifier as the
network; a metric registered with ``per_class`` also reports per-class values when ``c.per_class`` is set
(`dgm eval --per-class`: intra-class FID).

Image metrics are computed and reported in registration order; ``label(c)`` is what the JSON ``labels`` object says.
``min_images`` is the fewest real and fake images a metric is defined on (a covariance needs 2, a k-NN ball k + 1):
fewer is a one-line error before any feature is extracted or cached.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import numpy as np
import torch

from ..registry import Registry

NEEDS = ("run", "features", "probs", "images")
RUN_OPTIONS = ("k", "seed", "observe", "orders_used")  # what `evaluate` can pass on to a run metric

METRICS: Registry = Registry("metric")


@dataclass(frozen=True)
class Metric:
    """A metric by name: what it needs, how it is computed, how its value is labelled."""
    name: str
    needs: str  # one of NEEDS
    compute: Callable[..., Dict[str, Any]]  # returns the JSON keys it reports
    label: Optional[Callable[["Comparison"], str]] = None  # the entry in `labels` (image metrics)
    options: Tuple[str, ...] = ()  # RUN_OPTIONS passed to a run metric's compute
    help: str = ""  # one line for `dgm list metrics`
    default_for_images: bool = False  # measured when an image GAN or `--fake` names no --metric
    same_shape: bool = False  # real and fake images must have the same (C, H, W)
    min_images: int = 1  # fewest real and fake images it is defined on (refused before anything is computed)
    per_class: bool = False  # also measured per class with --per-class (class-conditional samples vs real classes)
    conditional: bool = False  # measures class-conditional samples: needs their labels and the dataset's classifier

    def __post_init__(self):
        if self.needs not in NEEDS:
            raise ValueError(f"metric {self.name!r}: needs must be one of {NEEDS}, got {self.needs!r}")
        bad = [o for o in self.options if o not in RUN_OPTIONS]
        if bad or (self.options and self.needs != "run"):
            raise ValueError(f"metric {self.name!r}: options {self.options} (run metrics only, from {RUN_OPTIONS})")
        if not self.help:
            raise ValueError(f"metric {self.name!r} needs a one-line help")

    @property
    def uses_network(self) -> bool:
        """True when the feature network must run (features or class probabilities)."""
        return self.needs in ("features", "probs")


def register(metric: Metric) -> Metric:
    """Add ``metric`` to METRICS under its name (a name registered twice is an error)."""
    if not isinstance(metric, Metric):
        raise TypeError(f"register() takes a Metric, got {type(metric).__name__}")
    METRICS.add(metric.name, metric, metric.help)
    return metric


def image_metrics() -> list:
    """The registered image metrics (everything but run metrics), in registration order."""
    return [m for m in METRICS.values() if m.needs != "run"]


class _ImageMetricNames(Mapping):
    """name -> help of the image metrics, always in step with METRICS (the old ``IMAGE_METRICS`` dict)."""

    def __getitem__(self, name: str) -> str:
        if name not in METRICS or METRICS.get(name).needs == "run":
            raise KeyError(name)
        return METRICS.help(name)

    def __iter__(self) -> Iterator[str]:
        return iter([m.name for m in image_metrics()])

    def __len__(self) -> int:
        return len(image_metrics())


IMAGE_METRICS: Mapping = _ImageMetricNames()


@dataclass
class Comparison:
    """What an image metric's ``compute`` receives: real and fake images (float (N, C, H, W) in [0, 1]), the names
    of the selected metrics, the evaluation settings and, when a selected metric needs them, the feature network
    with both sets' features (float32 (N, dim)) and class probabilities (float64 (N, K))."""
    real: torch.Tensor
    fake: torch.Tensor
    metrics: Tuple[str, ...]
    seed: int = 0
    progress: bool = False
    swd_images: int = 4096
    net: Optional[torch.nn.Module] = None
    real_features: Optional[np.ndarray] = None
    real_probs: Optional[np.ndarray] = None
    fake_features: Optional[np.ndarray] = None
    fake_probs: Optional[np.ndarray] = None
    real_labels: Optional[np.ndarray] = None  # int64 (N_real,) classes of the reals, when the dataset has labels
    fake_labels: Optional[np.ndarray] = None  # int64 (N_fake,) classes the fakes were drawn for (conditional runs)
    per_class: bool = False  # --per-class: per_class metrics also report one value per class
    _shared: Dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def m(self) -> int:
        """How many pairs metrics that compare equally many reals and fakes use: min(N_real, N_fake)."""
        return min(len(self.real), len(self.fake))

    @property
    def perm(self) -> torch.Tensor:
        """Indices of the m reals to pair with the first m fakes: a seeded random subset only when there are more
        reals than fakes; otherwise the order is kept, so identical sets pair image for image."""
        return self.shared("perm", lambda: torch.arange(self.m) if len(self.real) == self.m else
                           torch.randperm(len(self.real), generator=torch.Generator().manual_seed(self.seed))[:self.m])

    @property
    def tag(self) -> str:
        """How the features are named in labels, e.g. 'digits classifier features'."""
        return f"{self.net.label} features"

    def shared(self, key: str, make: Callable[[], Any]) -> Any:
        """``make()`` computed once per comparison and shared by every metric that asks for ``key``."""
        if key not in self._shared:
            self._shared[key] = make()
        return self._shared[key]


__all__ = ["Metric", "Comparison", "METRICS", "NEEDS", "RUN_OPTIONS", "IMAGE_METRICS", "register", "image_metrics"]
