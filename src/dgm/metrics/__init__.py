"""Metrics by name (``METRICS``: nll, modes, fid, kid, is, pr, dc, swd, msssim), feature networks (``FEATURES``)
the metric functions on feature arrays (FID, KID, IS, P/R, D/C) and on images (SWD, MS-SSIM)."""
from ..registry import Registry
from .features import fid_from_features, frechet_distance, inception_score, kid_from_features
from .manifold import density_coverage, manifold_metrics, precision_recall
from .modes import mode_stats, modes
from .nll import nll
from .recon import recon
from .swd import sliced_wasserstein, swd
from .msssim import ms_ssim, msssim_diversity
from .images import IMAGE_METRICS, evaluate_images, read_images
from .extractors import FEATURES, load_features
from .evaluate import evaluate

METRICS: Registry = Registry("metric")
METRICS.add("nll", nll, "exact negative log-likelihood: nats per example and bits per dimension")
METRICS.add("recon", recon, "VQ-VAE: reconstruction NLL -log p(x|z_q(x)), pixel MSE and code perplexity")
METRICS.add("modes", modes, "toy mixtures: modes captured, % high-quality samples (< 3 std), reverse KL over modes")
for _name, _help in IMAGE_METRICS.items():  # computed together by `evaluate` (shared samples and features)
    METRICS.add(_name, "image", _help)

__all__ = ["METRICS", "FEATURES", "IMAGE_METRICS", "evaluate", "evaluate_images", "read_images", "load_features",
           "nll", "recon", "modes", "mode_stats", "fid_from_features", "frechet_distance", "kid_from_features",
           "inception_score", "precision_recall", "density_coverage", "manifold_metrics", "swd", "sliced_wasserstein",
           "ms_ssim", "msssim_diversity"]
