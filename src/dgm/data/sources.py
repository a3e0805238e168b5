"""Loaders of the standard image datasets: digits, MNIST, Fashion-MNIST, binarized MNIST, CIFAR-10."""
from __future__ import annotations

import os
from typing import Optional

import numpy as np

from ..errors import DgmError
from .catalog import DATASETS, RawImages, check_labels, existing_dir, find_file, holdout, require_dir
from .idx import read_bytes, read_idx

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"  # Debian package dataset-fashion-mnist
_IDX_FILES = {  # split -> (images, labels)
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_HOLDING = ", ".join(f"{n}[.gz]" for pair in _IDX_FILES.values() for n in pair)
_AMAT_FILES = {"train": "binarized_mnist_train.amat", "val": "binarized_mnist_valid.amat",
               "test": "binarized_mnist_test.amat"}
_AMAT_DIMS = 784
_CIFAR_SUBDIR = "cifar-10-batches-bin"
_CIFAR_TRAIN = [f"data_batch_{i}.bin" for i in range(1, 6)]
_CIFAR_TEST = "test_batch.bin"
_CIFAR_RECORD = 1 + 3 * 32 * 32  # label byte, then the R, G and B planes, each row-major 32x32


@DATASETS.register("digits", help="scikit-learn 8x8 handwritten digits (1797 images, 17 grey levels, 10 classes); "
                   "built in, no download")
def _digits(split: str, data_dir: Optional[str] = None) -> RawImages:
    """UCI optical digits as shipped with scikit-learn; fixed split 1257/180/360 by RandomState(0)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    perm = np.random.RandomState(0).permutation(len(d.target))
    idx = {"test": perm[:360], "val": perm[360:540], "train": perm[540:]}[split]
    raw = d.images[idx].astype(np.uint8)[:, None]
    return RawImages(raw, d.target[idx].astype(np.int64), 17, 10)


_digits.builtin = True  # no files to read: --data-dir does not apply


PADDED_SIZE = 32  # --image-size 32 for mnist / fashion-mnist: 28x28 zero-padded by PAD px on each side
PAD = 2


def _padded_size(dataset: str, image_size) -> int:
    """The pixels of padding on each side for ``image_size`` (None or 28: 0; 32: 2); others refused in one line."""
    if image_size is None:
        return 0
    size = int(image_size) if isinstance(image_size, str) and image_size.strip().isdigit() else image_size
    if size not in (28, PADDED_SIZE) or isinstance(size, bool):
        raise DgmError(f"{dataset}: --image-size must be 28 (as stored) or {PADDED_SIZE} (zero padding of {PAD} px on "
                       f"each side), got {image_size!r}")
    return PAD if size == PADDED_SIZE else 0


def pad_images(raw: np.ndarray, pad: int) -> np.ndarray:
    """(N, C, H, W) levels with ``pad`` zero pixels added on each side: the background of MNIST and Fashion-MNIST is 0,
    so a 28x28 digit becomes a 32x32 one (as in LeNet-5's input, LeCun et al. 1998) with nothing resampled; cropping
    the border off gives the original back exactly."""
    if not pad:
        return raw
    return np.pad(raw, ((0, 0), (0, 0), (pad, pad), (pad, pad)))


def _load_idx(dataset: str, data_dir: str, split: str, fix: str, pad: int = 0) -> RawImages:
    """An MNIST-format split: val = last min(5000, N//10) training images (see `catalog.holdout`); ``pad`` zero pixels
    on each side (``--image-size 32``)."""
    img_name, lbl_name = _IDX_FILES["test" if split == "test" else "train"]
    img_path = find_file(dataset, data_dir, img_name, fix)
    lbl_path = find_file(dataset, data_dir, lbl_name, fix)
    images, labels = read_idx(img_path), read_idx(lbl_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise DgmError(f"{img_path}: expected uint8 images of shape (N, H, W), found {images.dtype} "
                       f"{tuple(images.shape)}; re-download or reinstall it")
    if labels.ndim != 1:
        raise DgmError(f"{lbl_path}: expected a 1-D label file, found shape {tuple(labels.shape)}; "
                       "re-download or reinstall it")
    if len(images) != len(labels):
        raise DgmError(f"{img_path} has {len(images)} images but {lbl_path} has {len(labels)} labels; "
                       "re-download or reinstall them")
    labels = check_labels(lbl_path, labels, 10)
    if split != "test":
        s = holdout(len(images), split)
        images, labels = images[s], labels[s]
    return RawImages(pad_images(images[:, None], pad), labels, 256, 10)


@DATASETS.register("mnist", help="MNIST 28x28 handwritten digits from IDX files in --data-dir "
                   "(55000/5000/10000 split; --image-size 32: zero-padded by 2 px)")
def _mnist(split: str, data_dir: Optional[str] = None, image_size: Optional[int] = None) -> RawImages:
    """LeCun et al. 1998; needs the four IDX files, plain or gzipped."""
    pad = _padded_size("mnist", image_size)
    d = require_dir("mnist", data_dir, _IDX_HOLDING)
    return _load_idx("mnist", d, split, f"pass --data-dir DIR holding {_IDX_HOLDING}", pad)


@DATASETS.register("fashion-mnist", help="Fashion-MNIST 28x28 clothing images (55000/5000/10000 split; --image-size "
                   f"32: zero-padded by 2 px); default --data-dir {FASHION_MNIST_DIR}")
def _fashion_mnist(split: str, data_dir: Optional[str] = None, image_size: Optional[int] = None) -> RawImages:
    """Xiao et al. 2017; IDX files from --data-dir or the Debian package dataset-fashion-mnist."""
    pad = _padded_size("fashion-mnist", image_size)
    fix = "install them with `apt-get install -y dataset-fashion-mnist` or pass --data-dir DIR"
    d = existing_dir("fashion-mnist", data_dir or FASHION_MNIST_DIR, _IDX_HOLDING, fix)
    return _load_idx("fashion-mnist", d, split, fix, pad)


@DATASETS.register("binarized-mnist", help="fixed binarized MNIST of Larochelle & Murray 2011 (.amat files in "
                   "--data-dir; 50000/10000/10000, unlabelled)")
def _binarized_mnist(split: str, data_dir: Optional[str] = None) -> RawImages:
    """Larochelle & Murray 2011 (NADE) binarized MNIST; one image of 784 0/1 values per line."""
    holding = ", ".join(_AMAT_FILES.values())
    d = require_dir("binarized-mnist", data_dir, holding)
    path = find_file("binarized-mnist", d, _AMAT_FILES[split], f"pass --data-dir DIR holding {holding}", gz=False)
    x = _parse_amat(path)
    return RawImages(x.reshape(-1, 1, 28, 28), np.full(len(x), -1, dtype=np.int64), 2, 0)


def _parse_amat(path: str) -> np.ndarray:
    """(N, 784) uint8 from an .amat file; a one-line error names the first bad line."""
    data = read_bytes(path)
    width = 2 * _AMAT_DIMS  # "0 1 ... 1\n"
    if data and len(data) % width == 0:  # fast path for the canonical layout
        a = np.frombuffer(data, dtype=np.uint8).reshape(-1, width)
        vals = a[:, 0::2]
        if (a[:, 1:-1:2] == 32).all() and (a[:, -1] == 10).all() and ((vals == 48) | (vals == 49)).all():
            return vals - 48
    rows = []
    for lineno, line in enumerate(data.split(b"\n"), 1):
        toks = line.split()
        if not toks:
            continue
        if len(toks) != _AMAT_DIMS:
            raise DgmError(f"{path}: line {lineno} has {len(toks)} values, expected {_AMAT_DIMS}; "
                           "re-download the file")
        joined = b"".join(toks)
        if len(joined) != _AMAT_DIMS or joined.translate(None, b"01"):
            bad = next(t for t in toks if t not in (b"0", b"1"))
            raise DgmError(f"{path}: line {lineno} holds {bad.decode(errors='replace')!r}, expected only 0 or 1; "
                           "re-download the file")
        rows.append(joined)
    if not rows:
        raise DgmError(f"{path}: no images in the file; re-download it")
    return np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(-1, _AMAT_DIMS) - 48


@DATASETS.register("cifar10", help="CIFAR-10 32x32 colour images, binary version in --data-dir "
                   "(45000/5000/10000 split, 10 classes)")
def _cifar10(split: str, data_dir: Optional[str] = None) -> RawImages:
    """Krizhevsky 2009 (binary version); val = last min(5000, N//10) training images."""
    holding = f"{', '.join(_CIFAR_TRAIN)} and {_CIFAR_TEST} (or {_CIFAR_SUBDIR}/)"
    d = require_dir("cifar10", data_dir, holding)
    names = [_CIFAR_TEST] if split == "test" else _CIFAR_TRAIN
    sub = os.path.join(d, _CIFAR_SUBDIR)
    if not os.path.isfile(os.path.join(d, names[0])) and os.path.isdir(sub):
        d = sub
    fix = f"pass --data-dir DIR holding {holding}"
    parts = [_read_cifar(find_file("cifar10", d, n, fix, gz=False)) for n in names]
    raw = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if split != "test":
        s = holdout(len(raw), split)
        raw, labels = raw[s], labels[s]
    return RawImages(raw, labels, 256, 10)


def _read_cifar(path: str):
    """(images (N, 3, 32, 32) uint8, labels int64) from one CIFAR-10 binary batch."""
    data = read_bytes(path)
    if not data or len(data) % _CIFAR_RECORD:
        raise DgmError(f"{path}: length {len(data)} is not a positive multiple of the {_CIFAR_RECORD}-byte "
                       "CIFAR-10 record; re-download it")
    a = np.frombuffer(data, dtype=np.uint8).reshape(-1, _CIFAR_RECORD)
    return a[:, 1:].reshape(-1, 3, 32, 32), check_labels(path, a[:, 0], 10)
