"""`dgm eval`: one entry point for run metrics (``needs == "run"``: nll, recon, modes) and image metrics (the rest,
`dgm list metrics`)."""
from __future__ import annotations

from typing import Dict, Iterable, Optional

import numpy as np

from ..errors import DgmError
from .extractors import default_features, load_features
from .cas import check_cas
from .images import check_counts, evaluate_images, read_images, real_images, sample_images, sample_labels
from .provenance import provenance
from .registry import IMAGE_METRICS, METRICS, image_metrics
from .truncation import check_eval_truncation


def evaluate(run=None, metrics: Optional[Iterable[str]] = None, *, real: Optional[str] = None, fake=None,
             split: str = "test", data_dir: Optional[str] = None, n: int = 10000, features: Optional[str] = None,
             weights: Optional[str] = None, batch_size: int = 256, seed: int = 0, checkpoint: str = "latest",
             device: str = "cpu", use_cache: bool = True, progress: bool = False,
             save_samples: Optional[str] = None, k: Optional[int] = None, observe: Optional[str] = None,
             orders_used: Optional[int] = None, ema: bool = True, per_class: bool = False,
             truncation: Optional[float] = None, truncation_mode: Optional[str] = None) -> Dict:
    """Evaluate a run directory (its model's samples, or ``fake``) or a file/folder of ``fake`` images against the
    ``real`` dataset; returns one flat dict (what `dgm eval` prints as JSON). ``k``: importance samples for the
    NLL of latent-variable models (default 5000); ``observe`` and ``orders_used``: the observed half and the
    number of maximum-context orders of the completion metric; ``ema=False``: a GAN's raw generator instead of
    the EMA of its weights (`dgm eval --no-ema`). ``per_class``: fid also reports intra-class FID of a
    class-conditional run (``intra_fid``, ``fid_per_class``); ``truncation`` / ``truncation_mode``: the samples are
    drawn with the truncation trick (models with a Gaussian latent; recorded as ``truncation``).

    The dict is valid strict JSON: a value that comes out NaN or infinite is reported as None with the reason under
    ``notes`` (a key present only then). Options that no selected metric uses (-k, --features, --weights) and
    image sets smaller than a metric is defined on are refused with a one-line DgmError before anything is computed.
    """
    if run is None and fake is None:
        raise DgmError("name a run directory to evaluate, or pass --real DATASET --fake PATH")
    if run is None and real is None:
        raise DgmError("--fake needs --real DATASET to compare against (dgm list datasets)")
    if n < 2:
        raise DgmError(f"-n must be >= 2 samples, got {n}")
    if batch_size < 1:
        raise DgmError(f"--batch-size must be >= 1, got {batch_size}")
    if k is not None and k < 1:
        raise DgmError(f"-k must be >= 1 importance samples, got {k}")
    if not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2 ** 64:
        raise DgmError(f"--seed must be an integer in 0..2**64-1, got {seed}")
    for m in metrics or ():
        METRICS.get(m)  # unknown names: one line with the nearest suggestion, before any loading
    result: Dict = {}
    model = None
    if run is not None:
        from ..runs import load, load_data

        model = load(run, checkpoint=checkpoint, device=device, ema=ema)
    elif not ema:
        raise DgmError("--no-ema needs a run directory (a GAN trained with --ema-decay), not --fake images")
    names = list(metrics) if metrics else (default_metrics(model) if fake is None else default_image_metrics())
    image = [m for m in names if METRICS.get(m).needs != "run"]
    other = [m for m in names if METRICS.get(m).needs == "run"]
    _check_options(model, names, k=k, features=features, weights=weights)
    _check_completion_options(names, observe, orders_used)
    data_name = real if real is not None else model.run_config["data"]["name"]
    _check_conditional(model, image, data_name, features=features, fake=fake is not None, per_class=per_class)
    if truncation is not None or truncation_mode is not None:
        check_eval_truncation(model, truncation, truncation_mode, run_metrics=other)
    if model is not None and model.config.data_kind == "audio" and (image or fake is not None or real is not None):
        flag = "--fake" if fake is not None else "--real" if real is not None else f"--metric {','.join(image)}"
        raise DgmError(f"{flag} is for image runs; this audio run is evaluated with --metric nll only")
    if model is not None:
        result.update(run=str(run), step=model.trained_steps, checkpoint=checkpoint, split=split)
        if getattr(model, "has_ema", False):  # a GAN with an EMA of G: which weights made the samples
            result["ema"] = ema
        if truncation is not None:
            result.update(truncation=truncation, truncation_mode=truncation_mode or model.truncation_modes[0])
        if other:
            data = load_data(model.run_config["data"], split)
            options = {"k": k, "seed": seed, "observe": observe, "orders_used": orders_used}  # RUN_OPTIONS; each metric receives those it declares
            for m in map(METRICS.get, other):
                result.update(m.compute(model, data, batch_size=batch_size, progress=progress,
                                        **{o: options[o] for o in m.options}))
    elif other:
        raise DgmError(f"{', '.join(other)} need(s) a run directory; with --real/--fake use image metrics "
                       f"({', '.join(IMAGE_METRICS)})")
    if image:
        data_cfg = {"name": real, "data_dir": data_dir} if real is not None else model.run_config["data"]
        chosen = [METRICS.get(m) for m in image]
        with_labels = per_class or any(m.conditional for m in chosen)  # real labels: per-class FID, cas_real
        reals, real_labels = real_images(data_cfg, split, labels=True) if with_labels else \
            (real_images(data_cfg, split), None)
        net = None  # loaded before sampling, so that a missing weights file fails fast
        if any(METRICS.get(m).uses_network for m in image):
            net = load_features(features or default_features(data_cfg["name"]), weights, device=device)
        fake_labels = None
        if fake is not None:
            fakes = read_images(fake, channels=reals.shape[1])
            check_counts(chosen, len(reals), len(fakes))
            result["fake"] = str(fake)
        else:
            check_counts(chosen, len(reals), n)  # before sampling
            fakes = sample_images(model, n, batch_size, seed, progress, truncation, truncation_mode)
            fake_labels = sample_labels(model, n)
        if save_samples:
            np.savez_compressed(save_samples, images=(fakes.numpy() * 255).round().astype(np.uint8))
            result["samples_file"] = str(save_samples)
        result.update(real=data_cfg["name"], split=split)
        result.update(evaluate_images(reals, fakes, image, features=net, weights=weights,
                                      dataset=data_cfg["name"], batch_size=batch_size, seed=seed,
                                      use_cache=use_cache, progress=progress, device=device,
                                      real_labels=real_labels, fake_labels=fake_labels, per_class=per_class))
    notes = _null_non_finite(result)
    if notes:
        result["notes"] = notes
    result["provenance"] = provenance(model, result, split=split, seed=seed, features=net if image else None)
    if truncation is not None:  # the samples depend on it
        result["provenance"].update(truncation=result["truncation"], truncation_mode=result["truncation_mode"])
    return result


def _check_options(model, names, *, k, features, weights) -> None:
    """Refuse options that would be silently ignored by every selected metric."""
    what = ", ".join(names)
    if k is not None:
        nll_k = [m for m in names if "k" in METRICS.get(m).options]
        if not nll_k:
            raise DgmError(f"-k sets the importance samples of the nll metric, which is not selected ({what}); "
                           "drop -k or add --metric nll")
        if model is not None and "elbo" not in model.capabilities:
            raise DgmError(f"-k sets the importance samples of latent-variable models (vae, beta-vae, aae, avb); "
                           f"the nll of this {type(model).__name__} is exact and uses none: drop -k")
    networked = "/".join(m.name for m in image_metrics() if m.uses_network)
    for flag, value in (("--features", features), ("--weights", weights)):
        if value is not None and not any(METRICS.get(m).uses_network for m in names):
            raise DgmError(f"{flag} is for the feature network of {networked}; none of the selected metrics ({what}) "
                           f"uses one: drop {flag} or choose such a metric with --metric")


def _check_conditional(model, image, dataset, *, features, fake: bool, per_class: bool) -> None:
    """Refuse, before anything is loaded or sampled, what class-conditional metrics cannot measure: cas or
    --per-class on an unconditional run, --fake images (no labels), or a dataset without dgm's classifier."""
    chosen = [METRICS.get(m) for m in image]
    if per_class:
        capable = [m.name for m in image_metrics() if m.per_class]
        if not any(m.per_class for m in chosen):
            raise DgmError(f"--per-class is measured by {', '.join(capable)} only (intra-class FID); add --metric fid "
                           "or drop --per-class")
        if fake or model is None:
            raise DgmError("--per-class needs a class-conditional run directory (samples drawn for known labels), "
                           "not --fake images")
        if not model.conditional:
            raise DgmError(f"--per-class compares the samples drawn for each class with that class's real images; "
                           f"this {model.run_config['model']} run is unconditional: train with --conditional")
    if any(m.conditional for m in chosen):
        check_cas(model, dataset, features, fake=fake)


def _check_completion_options(names, observe, orders_used) -> None:
    """--observe and --orders-used belong to the completion metric, which reports its own nll_nats (so it is not
    combined with nll in one JSON object)."""
    if "completion" not in names:
        for flag, value in (("--observe", observe), ("--orders-used", orders_used)):
            if value is not None:
                raise DgmError(f"{flag} is an option of the completion metric; add --metric completion or drop {flag}")
        return
    if "nll" in names:
        raise DgmError("the nll and completion metrics both report nll_nats: evaluate them in two calls")
    if orders_used is not None and orders_used < 1:
        raise DgmError(f"--orders-used must be >= 1, got {orders_used}")


def _null_non_finite(result: Dict, prefix: str = "") -> Dict[str, str]:
    """Replace NaN and infinite floats (also in nested dicts) by None, in place; returns key -> reason."""
    notes = {}
    for key, value in result.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            notes.update(_null_non_finite(value, f"{name}."))
        elif isinstance(value, (float, np.floating)) and not np.isfinite(value):
            result[key] = None
            notes[name] = (f"could not be computed: the value came out {value} (degenerate images or features, or "
                           "too few of them); see docs/evaluation.md")
    return notes


def default_image_metrics() -> list:
    """What `dgm eval --fake` measures without --metric: the metrics registered with default_for_images."""
    return [m.name for m in image_metrics() if m.default_for_images]


def default_metrics(model) -> list:
    """What `dgm eval RUN` measures without --metric: the NLL of likelihood and latent-variable models, the
    reconstruction of a VQ-VAE, mode coverage of a GAN on 2-D points, sample quality of an image GAN."""
    return list(model.default_metrics)


__all__ = ["evaluate", "default_metrics", "default_image_metrics"]
