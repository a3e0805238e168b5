"""`dgm eval`: one entry point for run metrics (``needs == "run"``: nll, recon, modes) and image metrics (the rest,
`dgm list metrics`)."""
from __future__ import annotations

from typing import Any, Dict, Iterable, Mapping, Optional

import numpy as np

from .._version import __version__
from ..errors import DgmError, allocating
from .extractors import default_features, load_features
from .images import check_counts, evaluate_images, read_images, real_images, sample_images, sample_labels
from .provenance import provenance
from ..options import refuse_unread
from .registry import IMAGE_METRICS, METRICS, EvalContext, image_metrics, metric_options, option_readers
from .truncation import check_eval_truncation


#: evaluation settings every `dgm eval` has (not options of a metric), with their defaults
SETTINGS_DEFAULTS = {"split": "test", "batch_size": 256, "seed": 0, "checkpoint": "latest", "device": "cpu",
                     "progress": False, "ema": True, "compile": False}


def evaluate(run=None, metrics: Optional[Iterable[str]] = None, options: Optional[Mapping[str, Any]] = None,
             **kwargs) -> Dict:
    """Evaluate a run directory (its model's samples, or ``fake``) or a file/folder of ``fake`` images against the
    ``real`` dataset; returns one flat dict (what `dgm eval` prints as JSON).

    ``options`` is one mapping (keyword arguments are merged into it): the evaluation settings (split, batch_size,
    seed, checkpoint, device, progress, ema: False evaluates a GAN's raw generator instead of the EMA of its
    weights, compile: True compiles the model's networks, ``dgm.compiling.compile_model``) and the options the
    metrics declare (``dgm.metrics.metric_options()``: k, observe, orders_used,
    per_class, cells, n, real, fake, data_dir, save_samples, truncation, truncation_mode, features, weights, no_cache;
    ``use_cache=False`` is the old spelling of no_cache). An option that no selected metric reads, or that a
    selected metric cannot take here (its ``check``), is refused with a one-line DgmError before anything is
    computed; so are image sets smaller than a metric is defined on.

    The dict is valid strict JSON: a value that comes out NaN or infinite is reported as None with the reason under
    ``notes`` (a key present only then).
    """
    given = dict(options or {})
    given.update(kwargs)
    if "use_cache" in given:
        use_cache = given.pop("use_cache")
        given["no_cache"] = given.get("no_cache") or (not use_cache) or None
    declared = metric_options()
    unknown = sorted(set(given) - set(declared) - set(SETTINGS_DEFAULTS))
    if unknown:
        raise DgmError(f"unknown evaluation option(s) {', '.join(unknown)}; known: "
                       f"{', '.join(sorted(set(declared) | set(SETTINGS_DEFAULTS)))}")
    s = {k: given.pop(k) if given.get(k) is not None else v for k, v in SETTINGS_DEFAULTS.items()}
    given = {k: v for k, v in given.items() if k not in SETTINGS_DEFAULTS}
    fake, real = given.get("fake"), given.get("real")
    if run is None and fake is None:
        raise DgmError("name a run directory to evaluate, or pass --real DATASET --fake PATH")
    if run is None and real is None:
        raise DgmError("--fake needs --real DATASET to compare against (dgm list datasets)")
    if s["batch_size"] < 1:
        raise DgmError(f"--batch-size must be >= 1, got {s['batch_size']}")
    seed = s["seed"]
    if not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2 ** 64:
        raise DgmError(f"--seed must be an integer in 0..2**64-1, got {seed}")
    o = {name: option.validate(given.get(name)) for name, option in declared.items()}
    for m in metrics or ():
        METRICS.get(m)  # unknown names: one line with the nearest suggestion, before any loading
    result: Dict = {}
    model = None
    if run is not None:
        from ..runs import load, load_data

        model = load(run, checkpoint=s["checkpoint"], device=s["device"], ema=s["ema"])
        if s["compile"]:
            from ..compiling import compile_model

            compile_model(model)
    elif not s["ema"]:
        raise DgmError("--no-ema needs a run directory (a GAN trained with --ema-decay), not --fake images")
    elif s["compile"]:
        raise DgmError("--compile compiles a run's model; --fake images have none: drop --compile")
    names = list(metrics) if metrics else (default_metrics(model) if fake is None else default_image_metrics())
    image = [m for m in names if METRICS.get(m).needs != "run"]
    other = [m for m in names if METRICS.get(m).needs == "run"]
    if model is None and other:
        raise DgmError(f"{', '.join(other)} need(s) a run directory; with --real/--fake use image metrics "
                       f"({', '.join(IMAGE_METRICS)})")
    refuse_unread(given, option_readers(), names, "metric", lambda m: f"--metric {m}", declared,
                  prefer=default_metrics(model) if model is not None else default_image_metrics())
    data_name = real if real is not None else model.run_config["data"]["name"]
    ctx = EvalContext(model, tuple(names), o, given, data_name)
    _check_images(ctx, image, other)
    for m in names:
        if METRICS.get(m).check is not None:
            METRICS.get(m).check(ctx)
    if model is not None:
        result.update(run=str(run), step=model.trained_steps, checkpoint=s["checkpoint"], split=s["split"])
        if getattr(model, "has_ema", False):  # a GAN with an EMA of G: which weights made the samples
            result["ema"] = s["ema"]
        if o["truncation"] is not None:
            result.update(truncation=o["truncation"], truncation_mode=o["truncation_mode"] or model.truncation_modes[0])
        if other:
            data = load_data(model.run_config["data"], s["split"])
            for m in map(METRICS.get, other):  # each receives its own options and the settings it names
                kw = {**{k: s[k] for k in m.settings}, **{opt.name: o[opt.name] for opt in m.own_options}}
                flags = ", ".join(["--batch-size", *(opt.cli for opt in m.own_options if opt.type is int)])
                with allocating(f"measuring {m.name} (--batch-size {s['batch_size']})", f"lower {flags}"):
                    result.update(m.compute(model, data, batch_size=s["batch_size"], progress=s["progress"], **kw))
    net = None
    if image:
        net = _evaluate_images(result, model, image, o, s)
    notes = _null_non_finite(result)
    if notes:
        result["notes"] = notes
    result["provenance"] = provenance(model, result, split=s["split"], seed=seed, features=net)
    if o["truncation"] is not None:  # the samples depend on it
        result["provenance"].update(truncation=result["truncation"], truncation_mode=result["truncation_mode"])
    return result


def _check_images(ctx: EvalContext, image, other) -> None:
    """What the image pipeline cannot do in this evaluation: -n, --data-dir or --truncation where nothing is drawn or
    read, an audio run, a feature network no selected metric uses."""
    model, o = ctx.model, ctx.options
    if ctx.was_given("n") and ctx.was_given("fake"):
        raise DgmError("-n sets how many samples to draw from the run; --fake images are counted as they are: drop -n")
    if ctx.was_given("data_dir") and not ctx.was_given("real"):
        raise DgmError("--data-dir is the folder of the --real dataset's files; give --real DATASET too, or drop it")
    if o["truncation"] is not None or o["truncation_mode"] is not None:
        check_eval_truncation(model, o["truncation"], o["truncation_mode"], run_metrics=other)
    if model is not None and model.config.data_kind == "audio" and (image or ctx.was_given("fake")
                                                                     or ctx.was_given("real")):
        flag = "--fake" if ctx.was_given("fake") else "--real" if ctx.was_given("real") else \
            f"--metric {','.join(image)}"
        raise DgmError(f"{flag} is for image runs; this audio run is evaluated with --metric nll only")


def _evaluate_images(result: Dict, model, image, o: Dict, s: Dict):
    """Draw (or read) the fakes, load the reals and the feature network, compute the image metrics into ``result``;
    returns the feature network used (None when no selected metric needs one)."""
    data_cfg = {"name": o["real"], "data_dir": o["data_dir"]} if o["real"] is not None else model.run_config["data"]
    chosen = [METRICS.get(m) for m in image]
    split = s["split"]
    with_labels = o["per_class"] or any(m.conditional for m in chosen)  # real labels: per-class FID, cas_real
    reals, real_labels = real_images(data_cfg, split, labels=True) if with_labels else \
        (real_images(data_cfg, split), None)
    train = None
    if any(m.needs_train for m in chosen):  # memorisation: the held-out split is compared with the training one
        names = ", ".join(m.name for m in chosen if m.needs_train)
        if split == "train":
            raise DgmError(f"{names} compares the samples with the training images and a held-out split; --split "
                           "train is the training split itself: use --split test or val")
        train = real_images(data_cfg, "train")
    net = None  # loaded before sampling, so that a missing weights file fails fast
    if any(m.uses_network for m in chosen):
        net = load_features(o["features"] or default_features(data_cfg["name"]), o["weights"], device=s["device"])
    fake_labels = None
    if o["fake"] is not None:
        fakes = read_images(o["fake"], channels=reals.shape[1])
        check_counts(chosen, len(reals), len(fakes))
        result["fake"] = str(o["fake"])
    else:
        check_counts(chosen, len(reals), o["n"])  # before sampling
        fake_labels = sample_labels(model, o["n"])
        if o["per_class"]:
            _check_class_counts(real_labels, fake_labels, model.config.num_classes, data_cfg["name"], split)
        with allocating(f"drawing {o['n']} samples to measure (in batches of --batch-size {s['batch_size']})",
                        "lower -n or --batch-size"):
            fakes = sample_images(model, o["n"], s["batch_size"], s["seed"], s["progress"], o["truncation"],
                                  o["truncation_mode"])
    if o["save_samples"]:
        np.savez_compressed(o["save_samples"], images=(fakes.numpy() * 255).round().astype(np.uint8),
                            dgm_version=np.array(__version__))  # marks the file as dgm's (dgm.outputs)
        result["samples_file"] = str(o["save_samples"])
    result.update(real=data_cfg["name"], split=split)
    with allocating(f"measuring {', '.join(image)} on {len(reals)} real and {len(fakes)} generated images",
                    "lower -n or --batch-size (or measure on a smaller --split)"):
        result.update(evaluate_images(reals, fakes, image, features=net, weights=o["weights"],
                                      dataset=data_cfg["name"], batch_size=s["batch_size"], seed=s["seed"],
                                      use_cache=not o["no_cache"], progress=s["progress"], device=s["device"],
                                      real_labels=real_labels, fake_labels=fake_labels, per_class=o["per_class"],
                                      options=o, train=train))
    return net


def _check_class_counts(real_labels, fake_labels, k: int, dataset: str, split: str) -> None:
    """--per-class fits a Gaussian to each class's reals and fakes: refuse, before sampling, a class with fewer
    than 2 of either (a covariance needs 2)."""
    reals = np.bincount(np.asarray(real_labels), minlength=k)
    fakes = np.bincount(np.asarray(fake_labels), minlength=k)
    for c in range(k):
        if reals[c] < 2:
            raise DgmError(f"--per-class: class {c} has {reals[c]} real image(s) in the {split} split of {dataset}; "
                           "intra-class FID needs >= 2 per class: use a larger split (--split train) or drop --per-class")
    if fakes.min() < 2:
        raise DgmError(f"--per-class: -n {len(fake_labels)} draws {fakes.min()} sample(s) of some class; intra-class "
                       f"FID needs >= 2 per class: use -n {2 * k} or more")


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
