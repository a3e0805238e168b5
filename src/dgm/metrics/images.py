"""Sample quality of images: draw (or read) fakes, embed both sets with a feature network, compute the metrics.

Images travel as float (N, C, H, W) in [0, 1]. Features of the real set are cached on disk under a key that
hashes the exact real pixels together with the feature network's name and weights; every read of the cache is
verified (`dgm.metrics.cache`).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Dict, Iterable, Optional, Tuple

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.decode import check_finite, read_image
from ..errors import DgmError
from . import cache
from .cache import cache_dir
from .extractors import default_features, extract, load_features
from .registry import IMAGE_METRICS, METRICS, Comparison, image_metrics

_CACHE_VERSION = f"{cache.FORMAT}"


def unit_images(x: torch.Tensor, spec) -> torch.Tensor:
    """Model-space images (levels 0..K-1, or [-1, 1] when spec.scale == "pm1") -> float32 in [0, 1]."""
    x = x.to(torch.float32)
    return ((x + 1) / 2).clamp(0, 1) if spec.scale == "pm1" else x / (spec.levels - 1)


def real_images(data_cfg: Dict, split: str, labels: bool = False):
    """Every image of a dataset split as the run's model saw them (same binarization / levels), in [0, 1];
    ``labels=True``: (images, int64 (N,) labels, or None when the dataset has no classes)."""
    from ..data import ImageDataset
    from ..runs import load_data

    ds = load_data(data_cfg, split)
    if not isinstance(ds, ImageDataset):
        raise DgmError(f"{data_cfg['name']} holds 2-D points, not images; evaluate toy runs with --metric modes")
    images = unit_images(ds.to_model_levels(ds.raw), ds.spec)
    if not labels:
        return images
    return images, (ds.labels.clone() if ds.spec.num_classes else None)


def read_images(path, channels: Optional[int] = None) -> torch.Tensor:
    """Images from a .npz/.npy file ((N, H, W), (N, H, W, C) or (N, C, H, W); uint8 or finite floats in [0, 1]) or a
    folder of PNG/JPEG/BMP files, as float (N, C, H, W) in [0, 1].

    Files are decoded by their mode (`dgm.data.decode`: palette colours, not indices; 16-bit rescaled; alpha
    dropped) to grey when ``channels`` is 1, RGB when it is 3, else grey only when every file is grey. Unreadable,
    truncated and oversized files, NaN or infinite values and empty sets are one-line errors.
    """
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp"))
        if not files:
            raise DgmError(f"{p} holds no .png/.jpg images; pass a folder of images or an .npz file")
        mode = {1: "L", 3: "RGB"}.get(channels)
        fix = "remove or replace the file, or pass an .npz of images"
        arrays = [read_image(f, mode, fix) for f in files]
        if mode is None and len({a.ndim for a in arrays}) > 1:  # grey and colour files: all as RGB
            arrays = [read_image(f, "RGB", fix) for f in files]
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise DgmError(f"the images in {p} differ in size ({', '.join(map(str, sorted(shapes)[:3]))}); "
                           "resize them to one size first")
        a = np.stack(arrays)
    elif p.suffix in (".npz", ".npy") and p.is_file():
        _check_numpy_sizes(p)  # before numpy allocates what a header claims
        try:
            z = np.load(p, allow_pickle=False)
            if isinstance(z, np.ndarray):
                a = z
            else:
                keys = list(z.keys())
                key = "images" if "images" in keys else keys[0] if len(keys) == 1 else None
                if key is None:
                    raise DgmError(f"{p} holds arrays {keys}; name the image array 'images'")
                a = z[key]  # read here: an object array fails now, inside the try
        except DgmError:
            raise
        except Exception as e:  # malformed file, object arrays: one line, no traceback
            raise DgmError(f"cannot read {p} as numpy data ({e}); save images with numpy.savez") from None
    else:
        raise DgmError(f"{p} is neither a folder of images nor an .npz/.npy file")
    return _to_unit_nchw(a, p)


def _check_numpy_sizes(p: Path) -> None:
    """Refuse an .npy (or an .npz member) whose header claims more data than the file holds, before numpy allocates
    it (a 200-byte file could claim terabytes)."""
    import zipfile

    from numpy.lib import format as npformat

    def check(f, stored: int, name: str) -> None:
        try:
            version = npformat.read_magic(f)
            shape, _, dtype = (npformat.read_array_header_1_0(f) if version == (1, 0) else
                               npformat.read_array_header_2_0(f))
        except Exception as e:
            raise DgmError(f"cannot read {name} as numpy data ({e}); save images with numpy.savez") from None
        claimed = int(np.prod(shape, dtype=np.float64)) * max(dtype.itemsize, 1)
        if not dtype.hasobject and claimed > stored:
            raise DgmError(f"{name}: its header claims an array of shape {shape} ({claimed:,} bytes) but the file "
                           f"holds {stored:,}; the file is truncated or not what numpy wrote")

    if p.suffix == ".npy":
        with open(p, "rb") as f:
            check(f, p.stat().st_size, str(p))
        return
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError) as e:
        raise DgmError(f"cannot read {p} as numpy data ({e}); save images with numpy.savez") from None
    with zf:
        for info in zf.infolist():
            if info.filename.endswith(".npy"):
                stored = info.file_size
                if info.compress_type == zipfile.ZIP_DEFLATED:  # deflate expands at most about 1032x
                    stored = min(stored, 1032 * info.compress_size + 1024)
                with zf.open(info) as f:
                    check(f, stored, f"{p} ({info.filename})")


def _to_unit_nchw(a: np.ndarray, p: Path) -> torch.Tensor:
    if a.ndim == 3:
        a = a[:, None]
    elif a.ndim == 4 and a.shape[-1] in (1, 3, 4) and a.shape[1] not in (1, 3):
        a = a[..., :3].transpose(0, 3, 1, 2) if a.shape[-1] == 4 else a.transpose(0, 3, 1, 2)
    if a.ndim != 4 or a.shape[1] not in (1, 3):
        raise DgmError(f"{p}: images must be (N, H, W), (N, H, W, C) or (N, C, H, W) with 1 or 3 channels, "
                       f"got shape {a.shape}")
    if len(a) == 0:
        raise DgmError(f"{p} holds no images (shape {a.shape}); evaluate at least 2")
    if a.dtype == np.uint8:
        return torch.from_numpy(a.astype(np.float32) / 255.0)
    if not np.issubdtype(a.dtype, np.floating):
        raise DgmError(f"{p}: images must be uint8 (0..255) or floats in [0, 1], got {a.dtype}")
    check_finite(a, p)
    if a.size and (a.min() < 0 or a.max() > 1):
        raise DgmError(f"{p}: float images must lie in [0, 1] (found {a.min():.3g}..{a.max():.3g}); rescale, e.g. "
                       "(x + 1) / 2 for [-1, 1]")
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def sample_labels(model, n: int) -> Optional[torch.Tensor]:
    """The labels `sample_images` draws a class-conditional model's n samples for (0, 1, ..., K-1 cycling: balanced);
    None for an unconditional model."""
    return torch.arange(n) % model.config.num_classes if model.conditional else None


@torch.no_grad()
def sample_images(model, n: int, batch_size: int = 256, seed: int = 0, progress: bool = False,
                  truncation: Optional[float] = None, truncation_mode: Optional[str] = None,
                  labels: Optional[torch.Tensor] = None) -> torch.Tensor:
    """n samples of a trained image model in [0, 1] (class-conditional models cycle through the classes,
    `sample_labels`, or draw for the (n,) ``labels`` given); ``truncation``: PSI of the truncation trick for models
    with a Gaussian latent."""
    if model.points:
        raise DgmError("this run models 2-D points, not images; evaluate it with --metric modes")
    gen = torch.Generator().manual_seed(seed)
    labels = sample_labels(model, n) if labels is None else torch.as_tensor(labels).long().reshape(n)
    trunc = {} if truncation is None else {"truncation": truncation,
                                           "truncation_mode": truncation_mode or model.truncation_modes[0]}
    out = []
    for i in tqdm(range(0, n, batch_size), desc="sampling", disable=not progress, leave=False):
        m = min(batch_size, n - i)
        y = labels[i:i + m].to(model.device) if labels is not None else None
        out.append(model.to_unit(model.sample(m, y=y, generator=gen, **trunc)).float().cpu())
    return torch.cat(out)


def reference_features(net, images: torch.Tensor, batch_size: int = 256, use_cache: bool = True,
                       progress: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """Features and class probabilities of the real images, read from / written to the on-disk cache.

    A cached entry is used only when it verifies (`dgm.metrics.cache.load`: this user's, written for these exact
    pixels and network, the expected rows and dimensions, matching digests, finite); otherwise it is recomputed
    and replaced. Probabilities are stored in float64, so a cached evaluation prints the same numbers as a fresh one.
    """
    h = hashlib.sha256()
    h.update(f"{_CACHE_VERSION}|{net.name}|{net.weights_sha256}|{tuple(images.shape)}|".encode())
    h.update(images.contiguous().numpy().tobytes())
    key = h.hexdigest()
    path = cache_dir() / "features" / f"{net.name}-{len(images)}-{key[:20]}.npz"
    expect = {"features": (len(images), net.dim), "probs": (len(images), net.num_classes)}
    if use_cache:
        hit = cache.load(path, key, expect)
        if hit is not None:
            return hit["features"], hit["probs"]
    feats, probs = extract(net, images, batch_size, progress, desc="real features")
    if use_cache:
        cache.store(path, key, {"features": feats, "probs": probs})
    return feats, probs


def parse_metrics(names: Iterable[str]) -> list:
    """The image metrics among ``names`` (one-line DgmError for unknown names and run metrics), in the order given."""
    out = []
    for m in names:
        if METRICS.get(m).needs == "run":
            raise DgmError(f"{m} needs a run directory; compare images with image metrics ({', '.join(IMAGE_METRICS)})")
        out.append(m)
    return out


def check_counts(metrics: Iterable, n_real: int, n_fake: int) -> None:
    """One-line DgmError when there are fewer real or fake images than a selected metric (a `Metric`) is defined on
    (its ``min_images``), before any feature is extracted or cached."""
    for m in metrics:
        for what, count in (("fake", n_fake), ("real", n_real)):
            if count < m.min_images:
                raise DgmError(f"{m.name} needs at least {m.min_images} {what} images, got {count}; "
                               f"evaluate more images or choose other metrics (dgm list metrics)")


def evaluate_images(real: torch.Tensor, fake: torch.Tensor, metrics: Iterable[str], features=None,
                    weights: Optional[str] = None, dataset: Optional[str] = None, batch_size: int = 256,
                    seed: int = 0, use_cache: bool = True, progress: bool = False, device="cpu",
                    swd_images: int = 4096, real_labels=None, fake_labels=None, per_class: bool = False,
                    options: Optional[Dict] = None, train: Optional[torch.Tensor] = None) -> Dict:
    """The named image metrics of fake vs real images (both float (N, C, H, W) in [0, 1]), as a flat dict.

    Feature metrics use ``features`` (a FEATURES name or a loaded network; default: dgm's classifier for ``dataset``
    when it ships one, else inception-v3), run once over each set for all of them. P/R/D/C and SWD compare equally
    many reals and fakes: m = min(N) of each, the reals a seeded random subset when there are more of them; SWD uses
    at most ``swd_images`` of each. Metrics are computed in registration order; ``labels`` says what each measured.

    ``real_labels`` / ``fake_labels``: (N,) classes of the reals and the classes the fakes were drawn for, for the
    conditional metrics (cas) and ``per_class`` (fid: intra-class FID). ``train``: the training split's images (float
    (N, C, H, W) in [0, 1]), for the metrics that compare with it (copying); their features are cached as the reals'.
    """
    names = parse_metrics(metrics)
    chosen = [m for m in image_metrics() if m.name in names]
    real_labels, fake_labels = (None if a is None else np.asarray(a, dtype=np.int64).reshape(-1)
                                for a in (real_labels, fake_labels))
    for labels, images, what in ((real_labels, real, "real"), (fake_labels, fake, "fake")):
        if labels is not None and len(labels) != len(images):
            raise DgmError(f"{len(labels)} {what} labels for {len(images)} {what} images: give one label per image")
    if per_class and not any(m.per_class for m in chosen):
        raise DgmError(f"--per-class is measured by {', '.join(m.name for m in image_metrics() if m.per_class)} only; "
                       f"add --metric fid or drop --per-class")
    needs = [m.name for m in chosen if m.conditional] + (["--per-class"] if per_class else [])
    if needs and fake_labels is None:
        raise DgmError(f"{', '.join(needs)} need(s) the labels the samples were drawn for: evaluate a "
                       "class-conditional run (train with --conditional)")
    if per_class and real_labels is None:
        raise DgmError("--per-class compares each class's samples with the real images of that class; the real "
                       "dataset has no labels")
    if real.shape[1:] != fake.shape[1:] and any(m.same_shape for m in chosen):
        raise DgmError(f"real images are {tuple(real.shape[1:])} but fakes are {tuple(fake.shape[1:])} "
                       f"(C, H, W); evaluate fakes of the dataset's size")
    check_counts(chosen, len(real), len(fake))
    needs_train = [m.name for m in chosen if m.needs_train]
    if needs_train and train is None:
        raise DgmError(f"{', '.join(needs_train)} need(s) the training images: evaluate through dgm.metrics.evaluate "
                       "or pass train=")
    if needs_train and train.shape[1:] != real.shape[1:]:
        raise DgmError(f"training images are {tuple(train.shape[1:])} but the reals are {tuple(real.shape[1:])} "
                       "(C, H, W); compare images of one dataset")
    out: Dict = {"n_real": len(real), "n_fake": len(fake)}
    if needs_train:
        out["n_train"] = len(train)
    c = Comparison(real, fake, tuple(m.name for m in chosen), seed=seed, progress=progress, swd_images=swd_images,
                   real_labels=real_labels, fake_labels=fake_labels, per_class=per_class, options=dict(options or {}),
                   train=train if needs_train else None)
    if any(m.uses_network for m in chosen):
        net = features if isinstance(features, torch.nn.Module) else \
            load_features(features or default_features(dataset), weights, device=device)
        out["features"] = net.name
        out["feature_network"] = f"{net.label} ({net.dim}-d features, {net.num_classes} classes, weights sha256 " \
                                 f"{net.weights_sha256})"
        c.net = net
        c.real_features, c.real_probs = reference_features(net, real, batch_size, use_cache, progress)
        c.fake_features, c.fake_probs = extract(net, fake, batch_size, progress, desc="fake features")
        if needs_train:
            c.train_features = reference_features(net, train, batch_size, use_cache, progress)[0]
    labels = {}
    for m in chosen:
        out.update(m.compute(c))
        if m.label is not None:
            labels[m.name] = m.label(c)
    out["labels"] = labels
    return out


__all__ = ["IMAGE_METRICS", "unit_images", "real_images", "read_images", "sample_labels", "sample_images", "reference_features",
           "evaluate_images", "check_counts", "cache_dir"]
