"""Metrics as registered objects: each says what it needs and how its value is labelled.

A metric file defines its function and registers it next to it::

    register(Metric("fid", "features", _fid, label=lambda c: f"FID ({c.tag})", default_for_images=True, ...))

``needs`` decides what ``compute`` receives:

* ``"run"``: ``compute(model, data, batch_size=..., progress=..., **options)`` with the run's model and dataset split,
  and by keyword each of its own options and the settings it names (``"seed"``);
* ``"features"`` / ``"probs"`` / ``"images"``: ``compute(c)`` with one `Comparison` ``c`` of real vs fake images.
  The feature network runs (once, reals through the cache) only when a selected metric needs features or class
  probabilities; metrics that can share work (P/R and D/C share one k-NN pass) do so through ``c.shared``.

Class-conditional samples carry their labels (``c.fake_labels``, the classes they were drawn for) next to the
real labels (``c.real_labels``): a ``conditional`` metric (CAS) needs them and the dataset's own classifier as the
network; a metric registered with ``per_class`` also reports per-class values when ``c.per_class`` is set
(`dgm eval --per-class`: intra-class FID).

A metric declares the `dgm eval` options it reads (``options``: ``dgm.options.Option``s with type, default, help and
validation; the command line is built from them, and an option no selected metric reads is refused). Image metrics
also read the options of the image pipeline (``IMAGE_OPTIONS``: -n, --real, --fake, ...) and, with a feature
network, ``NETWORK_OPTIONS``; image metrics find their own options' values in ``c.options``. ``check(ctx)`` refuses,
in one line and before anything is computed, what the metric cannot measure in this evaluation (`EvalContext`).

Image metrics are computed and reported in registration order; ``label(c)`` is what the JSON ``labels`` object says.
``min_images`` is the fewest real and fake images a metric is defined on (a covariance needs 2, a k-NN ball k + 1):
fewer is a one-line error before any feature is extracted or cached.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np
import torch

from ..options import Option, at_least, readers, union
from ..registry import Registry

NEEDS = ("run", "features", "probs", "images")
SETTINGS = ("seed",)  # evaluation settings a run metric receives when it names them in ``options``
#: options of every image metric: where the fakes and the reals come from
IMAGE_OPTIONS = (
    Option("n", int, 10000, "samples to draw from the run for image metrics", flag="-n", check=at_least(2, "-n")),
    Option("real", str, None, "real dataset to compare with (default: the run's)", metavar="DATASET"),
    Option("fake", str, None, "fake images: a folder of PNG/JPEG or an .npz/.npy file (uint8 or floats in [0, 1]) "
           "instead of sampling", metavar="PATH"),
    Option("data_dir", str, None, "folder holding the --real dataset's files"),
    Option("save_samples", str, None, "save the images evaluated as fakes (uint8) for reuse with --fake",
           metavar="FILE.npz"),
    Option("truncation", float, None, "models with a Gaussian latent: evaluate samples drawn with the truncation "
           "trick (as dgm sample --truncation)", metavar="PSI"),
    Option("truncation_mode", str, None, "--truncation: towards the mean latent (interpolate), resampling of |z_i| > "
           "PSI (resample, BigGAN), in W toward the mean w (w-mean, stylegan) (default: the model's first)",
           choices=("w-mean", "interpolate", "resample")),
)
#: options of the image metrics that run a feature network
NETWORK_OPTIONS = (
    Option("features", str, None, "feature network (dgm list features; default: dgm's classifier for digits and "
           "fashion-mnist, else inception-v3)"),
    Option("weights", str, None, "weights file of the feature network (inception-v3: "
           "pt_inception-2015-12-05-6726825d.pth; or set DGM_INCEPTION_WEIGHTS)"),
    Option("no_cache", bool, False, "recompute the real images' features (cache: $DGM_CACHE_DIR or ~/.cache/dgm)"),
)

METRICS: Registry = Registry("metric")


@dataclass(frozen=True)
class Metric:
    """A metric by name: what it needs, how it is computed, how its value is labelled."""
    name: str
    needs: str  # one of NEEDS
    compute: Callable[..., Dict[str, Any]]  # returns the JSON keys it reports
    label: Optional[Callable[["Comparison"], str]] = None  # the entry in `labels` (image metrics)
    options: Tuple[Union[Option, str], ...] = ()  # its own `dgm eval` options, and SETTINGS a run metric receives
    help: str = ""  # one line for `dgm list metrics`
    default_for_images: bool = False  # measured when an image GAN or `--fake` names no --metric
    same_shape: bool = False  # real and fake images must have the same (C, H, W)
    min_images: int = 1  # fewest real and fake images it is defined on (refused before anything is computed)
    per_class: bool = False  # also measured per class with --per-class (class-conditional samples vs real classes)
    conditional: bool = False  # measures class-conditional samples: needs their labels and the dataset's classifier
    check: Optional[Callable[["EvalContext"], None]] = None  # one-line DgmError for what it cannot measure here
    needs_train: bool = False  # also compares with the training split (c.train, c.train_features): copying

    def __post_init__(self):
        if self.needs not in NEEDS:
            raise ValueError(f"metric {self.name!r}: needs must be one of {NEEDS}, got {self.needs!r}")
        bad = [o for o in self.options if not isinstance(o, Option) and o not in SETTINGS]
        if bad or (self.settings and self.needs != "run"):
            raise ValueError(f"metric {self.name!r}: options {self.options}: Options, or settings {SETTINGS} (run "
                             "metrics only)")
        if not self.help:
            raise ValueError(f"metric {self.name!r} needs a one-line help")
        union([(self.name, self.all_options)])  # one declaration per name

    @property
    def own_options(self) -> Tuple[Option, ...]:
        """The `dgm eval` options this metric declares itself."""
        return tuple(o for o in self.options if isinstance(o, Option))

    @property
    def settings(self) -> Tuple[str, ...]:
        """The evaluation settings (SETTINGS) a run metric's compute receives."""
        return tuple(o for o in self.options if isinstance(o, str))

    @property
    def all_options(self) -> Tuple[Option, ...]:
        """Every `dgm eval` option this metric reads: its own, and those of the image pipeline it runs in."""
        family = (IMAGE_OPTIONS if self.needs != "run" else ()) + (NETWORK_OPTIONS if self.uses_network else ())
        return self.own_options + family

    @property
    def uses_network(self) -> bool:
        """True when the feature network must run (features or class probabilities)."""
        return self.needs in ("features", "probs")


def register(metric: Metric) -> Metric:
    """Add ``metric`` to METRICS under its name (a name registered twice is an error; its options must agree with
    other metrics' options of the same name)."""
    if not isinstance(metric, Metric):
        raise TypeError(f"register() takes a Metric, got {type(metric).__name__}")
    union([(m.name, m.all_options) for m in METRICS.values()] + [(metric.name, metric.all_options)])
    METRICS.add(metric.name, metric, metric.help)
    return metric


def metric_options() -> Dict[str, Option]:
    """name -> Option over every registered metric (what `dgm eval` offers)."""
    return union((m.name, m.all_options) for m in METRICS.values())


def option_readers() -> Dict[str, List[str]]:
    """option name -> the metrics that read it."""
    return readers((m.name, m.all_options) for m in METRICS.values())


@dataclass
class EvalContext:
    """What a metric's ``check`` sees before anything is computed: the run's model (None with --fake), the selected
    metric names, every option's value (defaults filled in), the options given, and the real dataset's name."""
    model: Any
    metrics: Tuple[str, ...]
    options: Dict[str, Any]
    given: Dict[str, Any]
    dataset: Optional[str]

    def was_given(self, name: str) -> bool:
        value = self.given.get(name)
        return value is not None and value is not False


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
    with both sets' features (float32 (N, dim)) and class probabilities (float64 (N, K)); for a metric registered with
    ``needs_train`` (copying) also the training split's images and features."""
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
    options: Dict[str, Any] = field(default_factory=dict)  # the evaluation's option values (image metrics' own too)
    train: Optional[torch.Tensor] = None  # the training split's images, for metrics registered with needs_train
    train_features: Optional[np.ndarray] = None  # their features (float32 (N_train, dim)), when the network ran
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


__all__ = ["Metric", "Comparison", "EvalContext", "METRICS", "NEEDS", "SETTINGS", "IMAGE_OPTIONS", "NETWORK_OPTIONS",
           "IMAGE_METRICS", "register", "image_metrics", "metric_options", "option_readers"]
