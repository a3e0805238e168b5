"""Metrics: run-level metrics by name (``METRICS``: nll, modes) and functions on feature arrays (FID, KID, IS, P/R, D/C)."""
from ..registry import Registry
from .features import (density_coverage, fid_from_features, frechet_distance, inception_score, kid_from_features,
                       precision_recall)
from .modes import mode_stats, modes
from .nll import nll

METRICS: Registry = Registry("metric")
METRICS.add("nll", nll, "exact negative log-likelihood: nats per example and bits per dimension")
METRICS.add("modes", modes, "toy mixtures: modes captured, % high-quality samples (< 3 std), reverse KL over modes")

__all__ = ["METRICS", "nll", "modes", "mode_stats", "fid_from_features", "frechet_distance", "kid_from_features",
           "inception_score", "precision_recall", "density_coverage"]
