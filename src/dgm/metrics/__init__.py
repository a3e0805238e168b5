"""Metrics by name (``METRICS``, `dgm list metrics`: each a registered `Metric`), feature networks (``FEATURES``),
the metric functions on feature arrays (FID, KID, IS, P/R, D/C) and on images (SWD, MS-SSIM).

A metric registers itself in its own file; every module of this package is imported here, so adding a metric is
adding one file. Image metrics are computed and reported in import order: the ones named below first, then any
other module of the package in alphabetical order.
"""
import importlib as _importlib
import pkgutil as _pkgutil

from .registry import IMAGE_METRICS, METRICS, Comparison, Metric, image_metrics, register
from .features import fid_from_features, frechet_distance, inception_score, kid_from_features  # fid, kid, is
from .manifold import density_coverage, manifold_metrics, precision_recall  # pr, dc
from .swd import sliced_wasserstein, swd  # swd
from .msssim import ms_ssim, msssim_diversity  # msssim
from .nll import nll  # nll
from .recon import recon  # recon
from .modes import mode_stats, modes  # modes
from .images import evaluate_images, read_images
from .extractors import FEATURES, load_features
from .evaluate import evaluate
from .cas import cas_from_probs  # cas
from .truncation import truncation_curve

for _m in _pkgutil.iter_modules(__path__):  # the rest (new metric files) register on import
    _importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["METRICS", "Metric", "Comparison", "register", "image_metrics", "FEATURES", "IMAGE_METRICS", "evaluate",
           "evaluate_images", "read_images", "load_features", "nll", "recon", "modes", "mode_stats",
           "fid_from_features", "frechet_distance", "kid_from_features", "inception_score", "precision_recall",
           "density_coverage", "manifold_metrics", "swd", "sliced_wasserstein", "ms_ssim", "msssim_diversity",
           "cas_from_probs", "truncation_curve"]
