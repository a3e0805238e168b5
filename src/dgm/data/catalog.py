"""The dataset registry and the small helpers its loaders share."""
from __future__ import annotations

import os
from typing import NamedTuple, Optional

import numpy as np

from ..errors import DgmError
from ..registry import Registry

DATASETS: Registry = Registry("dataset")
SPLITS = ("train", "val", "test")
VAL_SIZE = 5000  # the usual MNIST/CIFAR-10 hold-out: last 5000 training images


class RawImages(NamedTuple):
    """What an image loader returns: uint8 levels (N, C, H, W), int64 labels, level and class counts."""

    raw: np.ndarray
    labels: np.ndarray
    raw_levels: int
    num_classes: int


def holdout(n: int, split: str) -> slice:
    """Train/val slices of an n-image training file: val = last min(5000, n//10), so tiny files keep a train part."""
    n_val = min(VAL_SIZE, n // 10)
    return slice(0, n - n_val) if split == "train" else slice(n - n_val, n)


def require_dir(dataset: str, data_dir: Optional[str], holding: str) -> str:
    """The data directory, or a one-line error saying that `dataset` needs --data-dir holding `holding`."""
    if data_dir is None:
        raise DgmError(f"{dataset} needs --data-dir DIR holding {holding}")
    return existing_dir(dataset, data_dir, holding)


def existing_dir(dataset: str, data_dir: str, holding: str, fix: str = "") -> str:
    """`data_dir` expanded, or a one-line error when it is not a directory."""
    d = os.path.expanduser(os.fspath(data_dir))
    if not os.path.isdir(d):
        fix = fix or f"pass --data-dir DIR holding {holding}"
        raise DgmError(f"{dataset}: data directory {d} does not exist; {fix}")
    return d


def find_file(dataset: str, data_dir: str, name: str, fix: str, gz: bool = True) -> str:
    """`data_dir/name` (or `name.gz`), or a one-line error naming what is missing and `fix`."""
    for cand in (name, name + ".gz") if gz else (name,):
        p = os.path.join(data_dir, cand)
        if os.path.isfile(p):
            return p
    suffix = "[.gz]" if gz else ""
    raise DgmError(f"{dataset}: no {name}{suffix} in {data_dir}; {fix}")


def check_labels(path: str, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Labels as int64, or a one-line error naming the file when one is outside 0..num_classes-1."""
    labels = labels.astype(np.int64)
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        i = int(np.argmax(bad))
        raise DgmError(f"{path}: label {labels[i]} at index {i} is outside 0..{num_classes - 1}; "
                       "re-download or reinstall it")
    return labels
