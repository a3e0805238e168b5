"""Metrics by name (NLL now; sample-quality metrics land with the evaluation issue)."""
from ..registry import Registry
from .modes import modes
from .nll import nll

METRICS: Registry = Registry("metric")
METRICS.add("nll", nll, "exact negative log-likelihood: nats per example and bits per dimension")
METRICS.add("modes", modes, "toy mixtures: modes captured, % high-quality samples (< 3 std), reverse KL over modes")

__all__ = ["METRICS", "nll"]
