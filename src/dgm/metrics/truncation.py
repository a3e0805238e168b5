"""Evaluation under the truncation trick, and the truncation curve: sample quality against PSI.

Truncating the latent (``dgm.nn.latent``: StyleGAN's interpolation PSI z towards the mean, or BigGAN's
resampling of |z_i| > PSI) trades diversity for fidelity: Brock et al. 2019 (BigGAN, section 3.1 and figure 4)
plot IS against FID as PSI shrinks. `truncation_curve` measures that trade-off for any model with a Gaussian
latent: for each truncation mode and PSI it draws n samples (the same seed, so PSI is the only change) and
computes the named image metrics against the real split. With ``fid`` and ``pr``, fidelity is precision (share of
samples on the real manifold) and diversity is recall (share of the real manifold the samples cover); CAS joins
them for a class-conditional run.

    rows = dgm.metrics.truncation_curve(dgm.load("runs/gan-digits"), [0.25, 0.5, 0.75, 1.0], ("fid", "pr"))
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from ..errors import DgmError
from ..nn.latent import check_truncation


def check_eval_truncation(model, psi: Optional[float], mode: Optional[str], run_metrics: Sequence[str] = ()) -> None:
    """One-line DgmError unless the samples of ``model`` can be drawn with truncation PSI in ``mode``."""
    if psi is None:
        raise DgmError("--truncation-mode needs --truncation PSI")
    if model is None:
        raise DgmError("--truncation draws the samples of a run with the truncation trick; --fake images are "
                       "already drawn: drop --truncation or evaluate the run")
    if not model.truncation_modes:
        raise DgmError(f"--truncation needs a model with a Gaussian latent (gan, vae, beta-vae, aae, avb); "
                       f"{model.run_config['model']} has none")
    if run_metrics:
        raise DgmError(f"--truncation changes the samples of image metrics; {', '.join(run_metrics)} draw(s) none "
                       "of them: evaluate it in another call")
    mode = mode or model.truncation_modes[0]
    if mode not in model.truncation_modes:
        raise DgmError(f"--truncation-mode {mode}: this model truncates by {', '.join(model.truncation_modes)}")
    _check_psi(psi, mode)


def _check_psi(psi: float, mode: str) -> None:
    """PSI for ``mode``: StyleGAN's move toward the mean w takes [-1, 1]; the latent modes, ``check_truncation``."""
    if mode != "w-mean":
        check_truncation(psi, mode)
    elif not -1 <= psi <= 1:
        raise DgmError(f"--truncation PSI in W must be in [-1, 1] (1: ordinary sampling, 0: the mean w), got {psi}")


def truncation_curve(model, psis: Iterable[float], metrics: Sequence[str] = ("fid", "pr"), *,
                     modes: Optional[Sequence[str]] = None, n: int = 2000, split: str = "test", seed: int = 0,
                     batch_size: int = 256, features=None, use_cache: bool = True, baseline: bool = True,
                     progress: bool = False) -> List[Dict]:
    """One row per (truncation mode, PSI): {"mode", "psi", <the metrics' JSON keys>}, for a model with a
    Gaussian latent against the ``split`` of its own dataset. ``modes``: default every mode the model declares;
    a PSI a mode cannot take (0 for "resample") is skipped. ``baseline``: first a row with mode and psi None,
    the ordinary sampler. Every point draws ``n`` samples with the same ``seed``; the real features come from
    the cache after the first point. ``cas`` is measured only for a class-conditional run."""
    from .extractors import default_features, load_features
    from .images import evaluate_images, real_images, sample_images, sample_labels
    from .registry import METRICS

    modes = tuple(modes or model.truncation_modes)
    psis = [float(p) for p in psis]
    if not model.truncation_modes:
        raise DgmError(f"a truncation curve needs a model with a Gaussian latent; {type(model).__name__} has none")
    for mode in modes:
        check_eval_truncation(model, 1.0, mode)
    metrics = [m for m in metrics if not (METRICS.get(m).conditional and not model.conditional)]
    if any(METRICS.get(m).needs == "run" for m in metrics):
        raise DgmError(f"a truncation curve measures image metrics; got {', '.join(metrics)}")
    data_cfg = model.run_config["data"]
    reals, real_labels = real_images(data_cfg, split, labels=True)
    if (features is None or isinstance(features, str)) and any(METRICS.get(m).uses_network for m in metrics):
        features = load_features(features or default_features(data_cfg["name"]))  # loaded once for every point
    fake_labels = sample_labels(model, n)
    points = [(None, None)] if baseline else []
    points += [(mode, psi) for mode in modes for psi in psis if _valid(psi, mode)]
    rows = []
    for mode, psi in points:
        fakes = sample_images(model, n, batch_size, seed, progress, psi, mode)
        r = evaluate_images(reals, fakes, metrics, features=features, dataset=data_cfg["name"], batch_size=batch_size,
                            seed=seed, use_cache=use_cache, progress=progress, real_labels=real_labels,
                            fake_labels=fake_labels)
        rows.append({"mode": mode, "psi": psi, **{k: _finite_or_none(v) for k, v in r.items()}})
    return rows


def _finite_or_none(v):
    """NaN and infinite values as None, so that rows are strict JSON (as `dgm eval` prints them)."""
    return None if isinstance(v, (float, np.floating)) and not np.isfinite(v) else v


def _valid(psi: float, mode: str) -> bool:
    try:
        _check_psi(psi, mode)
    except DgmError:
        return False
    return True


__all__ = ["check_eval_truncation", "truncation_curve"]
