"""Metrics by name (NLL now; sample-quality metrics land with the evaluation issue)."""
from ..registry import Registry
from .nll import nll

METRICS: Registry = Registry("metric")
METRICS.add("nll", nll, "exact negative log-likelihood: nats per example and bits per dimension")

__all__ = ["METRICS", "nll"]
